"""Scalar loads and stores of linear memory, shared by both interpreters:
width, signedness and masks per instruction, and the fastest way CPython
has to move an integer in or out of a bytearray (``struct`` reads and
writes in place, without the slice copy ``int.from_bytes`` needs)."""

import struct

_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF
_M128 = (1 << 128) - 1

# name -> (bytes, signed, result mask)
LOADS = {
    'i32.load': (4, False, _M32), 'i64.load': (8, False, _M64),
    'f32.load': (4, False, _M32), 'f64.load': (8, False, _M64),
    'i32.load8_s': (1, True, _M32), 'i32.load8_u': (1, False, _M32),
    'i32.load16_s': (2, True, _M32), 'i32.load16_u': (2, False, _M32),
    'i64.load8_s': (1, True, _M64), 'i64.load8_u': (1, False, _M64),
    'i64.load16_s': (2, True, _M64), 'i64.load16_u': (2, False, _M64),
    'i64.load32_s': (4, True, _M64), 'i64.load32_u': (4, False, _M64),
    'v128.load': (16, False, _M128),
}
# name -> (bytes, value mask = wrap to the stored width)
STORES = {
    'i32.store': (4, _M32), 'i64.store': (8, _M64), 'f32.store': (4, _M32),
    'f64.store': (8, _M64), 'i32.store8': (1, 0xFF),
    'i32.store16': (2, 0xFFFF), 'i64.store8': (1, 0xFF),
    'i64.store16': (2, 0xFFFF), 'i64.store32': (4, _M32),
    'v128.store': (16, _M128),
}

_FORMATS = {1: 'b', 2: 'h', 4: 'i', 8: 'q'}


def _unpack_v128(mem, ea):
    return (int.from_bytes(mem[ea:ea + 16], 'little'),)


def _pack_v128(mem, ea, v):
    mem[ea:ea + 16] = v.to_bytes(16, 'little')


def unpacker(width, signed):
    """``f(mem, ea) -> (value,)`` reading ``width`` little-endian bytes
    (the caller has checked the bounds)."""
    if width == 16:
        return _unpack_v128
    fmt = _FORMATS[width]
    return struct.Struct('<' + (fmt if signed else fmt.upper())).unpack_from


def packer(width):
    """``f(mem, ea, value)`` writing the low ``width`` bytes of an unsigned
    ``value`` little-endian."""
    if width == 16:
        return _pack_v128
    return struct.Struct('<' + _FORMATS[width].upper()).pack_into
