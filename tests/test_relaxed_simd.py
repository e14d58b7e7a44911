"""Relaxed SIMD (Wasm 3.0): the engine's one deterministic choice per
instruction (engine/exec/simd.py ``_relaxed``), the same in both models and
both tiers, checked on inputs where the allowed results differ, against
values computed by hand."""

import struct

import pytest
import wasmtime

from engine import embedding as E

WAT = r'''(module
  (func (export "dot") (param v128 v128) (result v128)
    (i16x8.relaxed_dot_i8x16_i7x16_s (local.get 0) (local.get 1)))
  (func (export "dot_add") (param v128 v128 v128) (result v128)
    (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get 0) (local.get 1) (local.get 2)))
  (func (export "madd") (param v128 v128 v128) (result v128)
    (f32x4.relaxed_madd (local.get 0) (local.get 1) (local.get 2)))
  (func (export "nmadd") (param v128 v128 v128) (result v128)
    (f32x4.relaxed_nmadd (local.get 0) (local.get 1) (local.get 2)))
  (func (export "laneselect") (param v128 v128 v128) (result v128)
    (i32x4.relaxed_laneselect (local.get 0) (local.get 1) (local.get 2)))
  (func (export "min") (param v128 v128) (result v128)
    (f32x4.relaxed_min (local.get 0) (local.get 1)))
  (func (export "swizzle") (param v128 v128) (result v128)
    (i8x16.relaxed_swizzle (local.get 0) (local.get 1)))
  (func (export "trunc") (param v128) (result v128)
    (i32x4.relaxed_trunc_f32x4_s (local.get 0)))
)'''


def v(fmt, *xs):
    return int.from_bytes(struct.pack('<' + fmt, *xs), 'little')


F32 = lambda x: struct.unpack('<I', struct.pack('<f', x))[0]   # noqa: E731
ONE_PLUS = 0x3F800800                   # 1 + 2^-12: its square is 1 + 2^-11 + 2^-24


@pytest.mark.parametrize('runtime, tier', [('wasmedge', 'interp'), ('wasmedge', 'fast'),
                                           ('wamr', 'interp')])
def test_relaxed_choices(runtime, tier):
    store = E.store_init(runtime, None, tier)
    inst = E.module_instantiate(store, E.module_decode(wasmtime.wat2wasm(WAT)), [])

    def call(name, *args):
        return E.func_invoke(store, inst.exports[name][1], list(args))[0]

    m8 = v('16b', *[-128] * 16)
    # both operands signed, the pair sum 2 * 16384 wrapped to 16 bits
    assert call('dot', m8, m8) == v('8h', *[-32768] * 8)
    assert call('dot', v('16b', *[-2, 3] * 8), v('16b', *[5, 7] * 8)) == v('8h', *[11] * 8)
    assert call('dot_add', m8, m8, v('4i', 1, 2, 3, 4)) == \
        v('4I', *[(-65536 + k) & 0xFFFFFFFF for k in (1, 2, 3, 4)])
    # unfused: (1 + 2^-12)^2 rounds to 1 + 2^-11 first, so adding -(1 + 2^-11)
    # gives 0 (fused would keep 2^-24)
    a = v('4I', *[ONE_PLUS] * 4)
    c = v('4I', *[0xBF801000] * 4)       # -(1 + 2^-11)
    assert call('madd', a, a, c) == 0
    assert call('nmadd', a, a, v('4I', *[0x3F801000] * 4)) == 0
    # laneselect: every mask bit selects, as bitselect
    assert call('laneselect', v('4I', *[0xFFFFFFFF] * 4), 0, v('4I', 0xFFFF0000, 0, 1, 0xFFFFFFFF)) \
        == v('4I', 0xFFFF0000, 0, 1, 0xFFFFFFFF)
    # min as f32x4.min: a NaN operand comes back (payload kept), -0 < +0
    got = call('min', v('4I', 0x7FC00001, F32(-0.0), F32(1.0), F32(2.0)),
               v('4I', F32(1.0), F32(0.0), F32(-3.0), F32(2.0)))
    assert struct.unpack('<4I', got.to_bytes(16, 'little')) == \
        (0x7FC00001, F32(-0.0), F32(-3.0), F32(2.0))
    # swizzle: an index >= 16 selects 0
    assert call('swizzle', v('16B', *range(1, 17)), v('16B', 0, 15, 16, 255, *[1] * 12)) == \
        v('16B', 1, 16, 0, 0, *[2] * 12)
    # trunc: saturating, NaN -> 0
    assert call('trunc', v('4I', 0x7FC00000, F32(3e9), F32(-3e9), F32(-2.5))) == \
        v('4i', 0, 2**31 - 1, -2**31, -2)
