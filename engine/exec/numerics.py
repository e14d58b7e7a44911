"""Scalar numeric instructions (spec section "Execution / Numerics").

``OPS[name](*operands) -> result`` for every non-prefixed numeric instruction
(``i32.eqz`` .. ``i64.extend32_s``) and the saturating truncations
(``*.trunc_sat_*``).  Operands and results are unsigned bit patterns: i32/f32
in [0, 2**32), i64/f64 in [0, 2**64).  Comparisons return 0 or 1.  Trapping
operators raise ``errors.Trap`` with the testsuite's message text.

Floats are computed with Python doubles, which is exact for f64 and, for f32,
correctly rounded for add/sub/mul/div/sqrt (a double has more than 2*24+2
significand bits, so rounding twice gives the same result as rounding once).
Integer->f32 conversions whose source does not fit a double exactly are
rounded by hand from the exact integer.

NaN results follow the spec's nondeterminism rule deterministically: if an
operand is a NaN, the result is that operand with the quiet bit set (so a
canonical NaN in gives a canonical NaN out and any NaN in gives an arithmetic
NaN out); a NaN created from non-NaN operands is the positive canonical NaN.
abs/neg/copysign/reinterpret are pure bit operations that keep every payload.

The helpers ``f32_from_bits``, ``f32_to_bits``, ``f64_from_bits``,
``f64_to_bits``, ``signed``, ``f32_is_nan``/``f64_is_nan``, ``f32_nan``/
``f64_nan`` (NaN result of a binary op), ``int_to_f32_bits`` and the functions
in ``OPS`` are public so that ``engine/exec/simd.py`` can apply them lane-wise.
"""

import math
import struct
from array import array

from ..errors import Trap

__all__ = [
    'OPS', 'signed', 'f32_from_bits', 'f32_to_bits', 'f64_from_bits',
    'f64_to_bits', 'f32_is_nan', 'f64_is_nan', 'f32_nan', 'f64_nan',
    'int_to_f32_bits',
    'F32_CANON_NAN', 'F64_CANON_NAN',
]

# ---------------------------------------------------------------------------
# Constants and bit-level helpers

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF

F32_SIGN = 0x80000000
F32_ABS = 0x7FFFFFFF
F32_INF = 0x7F800000
F32_QUIET = 0x00400000
F32_CANON_NAN = 0x7FC00000

F64_SIGN = 0x8000000000000000
F64_ABS = 0x7FFFFFFFFFFFFFFF
F64_INF = 0x7FF0000000000000
F64_QUIET = 0x0008000000000000
F64_CANON_NAN = 0x7FF8000000000000

_INF = math.inf

# Precompiled converters (bound methods: no per-call format parsing).
_pack_I = struct.Struct('<I').pack
_unpack_I = struct.Struct('<I').unpack
_pack_f = struct.Struct('<f').pack
_unpack_f = struct.Struct('<f').unpack
_pack_II = struct.Struct('<II').pack
_unpack_ff = struct.Struct('<ff').unpack
_pack_Q = struct.Struct('<Q').pack
_unpack_Q = struct.Struct('<Q').unpack
_pack_d = struct.Struct('<d').pack
_unpack_d = struct.Struct('<d').unpack
# two f64 slots seen as floats (_F2) and as their bits (_Q2): an operand's
# bits go in and its float comes out with no pack/unpack calls (the engine
# runs single-threaded; units of a campaign are processes)
_F2 = array('d', (0.0, 0.0))
_Q2 = memoryview(_F2).cast('B').cast('Q')

_TRAP_DIV0 = 'integer divide by zero'
_TRAP_OVERFLOW = 'integer overflow'
_TRAP_INVALID = 'invalid conversion to integer'


def signed(x, bits):
    """Two's complement reading of the unsigned ``bits``-wide pattern ``x``
    (the spec's signed_N)."""
    if x >> (bits - 1):
        return x - (1 << bits)
    return x


def f32_from_bits(x):
    """The value of f32 bit pattern ``x`` as a Python float (exact; a
    signalling NaN comes back quiet, so never use this to move NaNs)."""
    return _unpack_f(_pack_I(x))[0]


def f32_to_bits(x):
    """Round Python float ``x`` to the nearest f32 (ties to even; overflow
    goes to +-inf) and return its bit pattern."""
    try:
        return _unpack_I(_pack_f(x))[0]
    except OverflowError:           # struct refuses finite values that round to inf
        return 0xFF800000 if x < 0 else F32_INF


def f64_from_bits(x):
    """The value of f64 bit pattern ``x`` as a Python float."""
    _Q2[0] = x
    return _F2[0]


def f64_to_bits(x):
    """Bit pattern of Python float ``x`` as an f64."""
    _F2[0] = x
    return _Q2[0]


def f32_is_nan(x):
    """Whether f32 bit pattern ``x`` is a NaN (any payload)."""
    return (x & F32_ABS) > F32_INF


def f64_is_nan(x):
    """Whether f64 bit pattern ``x`` is a NaN (any payload)."""
    return (x & F64_ABS) > F64_INF


def f32_nan(a, b):
    """NaN result of a binary f32 op: propagate the first NaN operand, quieted;
    a NaN made from non-NaN operands is canonical."""
    if (a & F32_ABS) > F32_INF:
        return a | F32_QUIET
    if (b & F32_ABS) > F32_INF:
        return b | F32_QUIET
    return F32_CANON_NAN


def f64_nan(a, b):
    """NaN result of a binary f64 op (see ``f32_nan``)."""
    if (a & F64_ABS) > F64_INF:
        return a | F64_QUIET
    if (b & F64_ABS) > F64_INF:
        return b | F64_QUIET
    return F64_CANON_NAN


def _round_int(n, prec):
    """Round the integer ``n`` to ``prec`` significant bits, ties to even, and
    return the rounded integer (exact conversion source for a float)."""
    m = -n if n < 0 else n
    shift = m.bit_length() - prec
    if shift <= 0:
        return n
    q = m >> shift
    rem = m & ((1 << shift) - 1)
    half = 1 << (shift - 1)
    if rem > half or (rem == half and q & 1):
        q += 1
    q <<= shift
    return -q if n < 0 else q


def int_to_f32_bits(n):
    """f32 bit pattern nearest to integer ``n`` (correct single rounding,
    also for |n| >= 2**53 where going through a double would round twice)."""
    if -0x20000000000000 <= n <= 0x20000000000000:
        return _unpack_I(_pack_f(float(n)))[0]      # exact double, one rounding
    if n.bit_length() > 128:                        # beyond any f32 (not from Wasm)
        return 0xFF800000 if n < 0 else F32_INF
    return f32_to_bits(float(_round_int(n, 24)))


# ---------------------------------------------------------------------------
# Integer operators (spec iadd_N ... iextendM_s_N)

def _make_int_ops(N):
    """Build the integer operator table for width N (32 or 64)."""
    M = (1 << N) - 1
    HALF = 1 << (N - 1)
    FULL = 1 << N
    SH = N - 1                    # shift-count mask
    MIN = HALF                    # bit pattern of the most negative value

    def eqz(a):
        return 1 if a == 0 else 0

    def eq(a, b):
        return 1 if a == b else 0

    def ne(a, b):
        return 1 if a != b else 0

    def lt_u(a, b):
        return 1 if a < b else 0

    def gt_u(a, b):
        return 1 if a > b else 0

    def le_u(a, b):
        return 1 if a <= b else 0

    def ge_u(a, b):
        return 1 if a >= b else 0

    # Signed order = unsigned order after flipping the sign bit.
    def lt_s(a, b):
        return 1 if (a ^ HALF) < (b ^ HALF) else 0

    def gt_s(a, b):
        return 1 if (a ^ HALF) > (b ^ HALF) else 0

    def le_s(a, b):
        return 1 if (a ^ HALF) <= (b ^ HALF) else 0

    def ge_s(a, b):
        return 1 if (a ^ HALF) >= (b ^ HALF) else 0

    def clz(a):
        return N - a.bit_length()

    def ctz(a):
        if a == 0:
            return N
        return (a & -a).bit_length() - 1

    def popcnt(a):
        return a.bit_count()

    def add(a, b):
        return (a + b) & M

    def sub(a, b):
        return (a - b) & M

    def mul(a, b):
        return (a * b) & M

    def div_u(a, b):
        if b == 0:
            raise Trap(_TRAP_DIV0)
        return a // b

    def rem_u(a, b):
        if b == 0:
            raise Trap(_TRAP_DIV0)
        return a % b

    def div_s(a, b):
        """Quotient truncated toward zero; INT_MIN / -1 overflows."""
        if b == 0:
            raise Trap(_TRAP_DIV0)
        if a == MIN and b == M:
            raise Trap(_TRAP_OVERFLOW)
        x = a - FULL if a & HALF else a
        y = b - FULL if b & HALF else b
        q = abs(x) // abs(y)
        if (x < 0) != (y < 0):
            q = -q
        return q & M

    def rem_s(a, b):
        """Remainder with the dividend's sign; INT_MIN rem -1 is 0."""
        if b == 0:
            raise Trap(_TRAP_DIV0)
        x = a - FULL if a & HALF else a
        y = b - FULL if b & HALF else b
        r = abs(x) % abs(y)
        if x < 0:
            r = -r
        return r & M

    def and_(a, b):
        return a & b

    def or_(a, b):
        return a | b

    def xor(a, b):
        return a ^ b

    def shl(a, b):
        return (a << (b & SH)) & M

    def shr_u(a, b):
        return a >> (b & SH)

    def shr_s(a, b):
        x = a - FULL if a & HALF else a
        return (x >> (b & SH)) & M

    def rotl(a, b):
        k = b & SH
        return ((a << k) | (a >> (N - k))) & M

    def rotr(a, b):
        k = b & SH
        return ((a >> k) | (a << (N - k))) & M

    def extend8_s(a):
        return (((a & 0xFF) ^ 0x80) - 0x80) & M

    def extend16_s(a):
        return (((a & 0xFFFF) ^ 0x8000) - 0x8000) & M

    t = f'i{N}.'
    ops = {
        t + 'eqz': eqz, t + 'eq': eq, t + 'ne': ne,
        t + 'lt_s': lt_s, t + 'lt_u': lt_u, t + 'gt_s': gt_s, t + 'gt_u': gt_u,
        t + 'le_s': le_s, t + 'le_u': le_u, t + 'ge_s': ge_s, t + 'ge_u': ge_u,
        t + 'clz': clz, t + 'ctz': ctz, t + 'popcnt': popcnt,
        t + 'add': add, t + 'sub': sub, t + 'mul': mul,
        t + 'div_s': div_s, t + 'div_u': div_u,
        t + 'rem_s': rem_s, t + 'rem_u': rem_u,
        t + 'and': and_, t + 'or': or_, t + 'xor': xor,
        t + 'shl': shl, t + 'shr_s': shr_s, t + 'shr_u': shr_u,
        t + 'rotl': rotl, t + 'rotr': rotr,
        t + 'extend8_s': extend8_s, t + 'extend16_s': extend16_s,
    }
    for f in ops.values():
        f.__qualname__ = f.__name__ = f'i{N}_{f.__name__}'
    return ops


# ---------------------------------------------------------------------------
# f32 operators (spec fadd_32 ...): operands unpacked in one struct call

def f32_add(a, b):
    x, y = _unpack_ff(_pack_II(a, b))
    r = x + y
    if r != r:
        return f32_nan(a, b)
    try:
        return _unpack_I(_pack_f(r))[0]
    except OverflowError:
        return 0xFF800000 if r < 0 else F32_INF


def f32_sub(a, b):
    x, y = _unpack_ff(_pack_II(a, b))
    r = x - y
    if r != r:
        return f32_nan(a, b)
    try:
        return _unpack_I(_pack_f(r))[0]
    except OverflowError:
        return 0xFF800000 if r < 0 else F32_INF


def f32_mul(a, b):
    x, y = _unpack_ff(_pack_II(a, b))
    r = x * y
    if r != r:
        return f32_nan(a, b)
    try:
        return _unpack_I(_pack_f(r))[0]
    except OverflowError:
        return 0xFF800000 if r < 0 else F32_INF


def f32_div(a, b):
    x, y = _unpack_ff(_pack_II(a, b))
    try:
        r = x / y
    except ZeroDivisionError:       # Python refuses /0; IEEE gives inf or NaN
        if x != x or x == 0.0:
            return f32_nan(a, b)
        return ((a ^ b) & F32_SIGN) | F32_INF
    if r != r:
        return f32_nan(a, b)
    try:
        return _unpack_I(_pack_f(r))[0]
    except OverflowError:
        return 0xFF800000 if r < 0 else F32_INF


def f32_min(a, b):
    """Smaller operand; NaN wins; min(-0, +0) = -0 (sign bits or-ed)."""
    x, y = _unpack_ff(_pack_II(a, b))
    if x < y:
        return a
    if y < x:
        return b
    if x == y:
        return a | b
    return f32_nan(a, b)


def f32_max(a, b):
    """Larger operand; NaN wins; max(-0, +0) = +0 (sign bits and-ed)."""
    x, y = _unpack_ff(_pack_II(a, b))
    if x > y:
        return a
    if y > x:
        return b
    if x == y:
        return a & b
    return f32_nan(a, b)


def f32_copysign(a, b):
    return (a & F32_ABS) | (b & F32_SIGN)


def f32_abs(a):
    return a & F32_ABS


def f32_neg(a):
    return a ^ F32_SIGN


def f32_sqrt(a):
    if (a & F32_ABS) > F32_INF:
        return a | F32_QUIET
    if a & F32_SIGN and a != F32_SIGN:      # negative, not -0: invalid
        return F32_CANON_NAN
    return _unpack_I(_pack_f(math.sqrt(_unpack_f(_pack_I(a))[0])))[0]


def _f32_rounder(fn):
    """Wrap an integral rounding ``fn`` (float -> int) as an f32 operator:
    values already integral (|x| >= 2**23, inf) pass through, NaN is
    quieted, and a zero result keeps the operand's sign."""
    def op(a):
        e = (a >> 23) & 0xFF
        if e >= 150:                        # |x| >= 2**23, inf or NaN
            if e == 0xFF and a & 0x7FFFFF:
                return a | F32_QUIET
            return a
        r = fn(_unpack_f(_pack_I(a))[0])
        if r == 0:
            return a & F32_SIGN
        return _unpack_I(_pack_f(r))[0]
    return op


f32_ceil = _f32_rounder(math.ceil)
f32_floor = _f32_rounder(math.floor)
f32_trunc = _f32_rounder(math.trunc)
f32_nearest = _f32_rounder(round)           # round(float) ties to even


def f32_eq(a, b):
    x, y = _unpack_ff(_pack_II(a, b))
    return 1 if x == y else 0


def f32_ne(a, b):
    x, y = _unpack_ff(_pack_II(a, b))
    return 1 if x != y else 0


def f32_lt(a, b):
    x, y = _unpack_ff(_pack_II(a, b))
    return 1 if x < y else 0


def f32_gt(a, b):
    x, y = _unpack_ff(_pack_II(a, b))
    return 1 if x > y else 0


def f32_le(a, b):
    x, y = _unpack_ff(_pack_II(a, b))
    return 1 if x <= y else 0


def f32_ge(a, b):
    x, y = _unpack_ff(_pack_II(a, b))
    return 1 if x >= y else 0


# ---------------------------------------------------------------------------
# f64 operators

def f64_add(a, b):
    _Q2[0] = a
    _Q2[1] = b
    r = _F2[0] + _F2[1]
    if r != r:
        return f64_nan(a, b)
    _F2[0] = r
    return _Q2[0]


def f64_sub(a, b):
    _Q2[0] = a
    _Q2[1] = b
    r = _F2[0] - _F2[1]
    if r != r:
        return f64_nan(a, b)
    _F2[0] = r
    return _Q2[0]


def f64_mul(a, b):
    _Q2[0] = a
    _Q2[1] = b
    r = _F2[0] * _F2[1]
    if r != r:
        return f64_nan(a, b)
    _F2[0] = r
    return _Q2[0]


def f64_div(a, b):
    _Q2[0] = a
    _Q2[1] = b
    x, y = _F2
    try:
        r = x / y
    except ZeroDivisionError:
        if x != x or x == 0.0:
            return f64_nan(a, b)
        return ((a ^ b) & F64_SIGN) | F64_INF
    if r != r:
        return f64_nan(a, b)
    _F2[0] = r
    return _Q2[0]


def f64_min(a, b):
    """Smaller operand; NaN wins; min(-0, +0) = -0."""
    _Q2[0] = a
    _Q2[1] = b
    x, y = _F2
    if x < y:
        return a
    if y < x:
        return b
    if x == y:
        return a | b
    return f64_nan(a, b)


def f64_max(a, b):
    """Larger operand; NaN wins; max(-0, +0) = +0."""
    _Q2[0] = a
    _Q2[1] = b
    x, y = _F2
    if x > y:
        return a
    if y > x:
        return b
    if x == y:
        return a & b
    return f64_nan(a, b)


def f64_copysign(a, b):
    return (a & F64_ABS) | (b & F64_SIGN)


def f64_abs(a):
    return a & F64_ABS


def f64_neg(a):
    return a ^ F64_SIGN


def f64_sqrt(a):
    if (a & F64_ABS) > F64_INF:
        return a | F64_QUIET
    if a & F64_SIGN and a != F64_SIGN:
        return F64_CANON_NAN
    _Q2[0] = a
    _F2[0] = math.sqrt(_F2[0])
    return _Q2[0]


def _f64_rounder(fn):
    """f64 counterpart of ``_f32_rounder`` (integral from |x| >= 2**52)."""
    def op(a):
        e = (a >> 52) & 0x7FF
        if e >= 1075:
            if e == 0x7FF and a & 0xFFFFFFFFFFFFF:
                return a | F64_QUIET
            return a
        _Q2[0] = a
        r = fn(_F2[0])
        if r == 0:
            return a & F64_SIGN
        _F2[0] = r
        return _Q2[0]
    return op


f64_ceil = _f64_rounder(math.ceil)
f64_floor = _f64_rounder(math.floor)
f64_trunc = _f64_rounder(math.trunc)
f64_nearest = _f64_rounder(round)


def f64_eq(a, b):
    _Q2[0] = a
    _Q2[1] = b
    return 1 if _F2[0] == _F2[1] else 0


def f64_ne(a, b):
    _Q2[0] = a
    _Q2[1] = b
    return 1 if _F2[0] != _F2[1] else 0


def f64_lt(a, b):
    _Q2[0] = a
    _Q2[1] = b
    return 1 if _F2[0] < _F2[1] else 0


def f64_gt(a, b):
    _Q2[0] = a
    _Q2[1] = b
    return 1 if _F2[0] > _F2[1] else 0


def f64_le(a, b):
    _Q2[0] = a
    _Q2[1] = b
    return 1 if _F2[0] <= _F2[1] else 0


def f64_ge(a, b):
    _Q2[0] = a
    _Q2[1] = b
    return 1 if _F2[0] >= _F2[1] else 0


# ---------------------------------------------------------------------------
# Conversions

def i32_wrap_i64(a):
    return a & M32


def i64_extend_i32_s(a):
    return ((a ^ F32_SIGN) - F32_SIGN) & M64


def i64_extend_i32_u(a):
    return a


def i64_extend32_s(a):
    return (((a & M32) ^ F32_SIGN) - F32_SIGN) & M64


def _make_trunc(lo, hi, sat_lo, sat_hi, mask, unpack_one, pack_one):
    """trunc (trapping) and trunc_sat for one float source and integer range.

    A float x is convertible iff lo < x < hi; the open bounds are doubles
    chosen so that exactly the floats whose truncation fits lie inside."""
    sat_lo &= mask
    sat_hi &= mask

    def trunc(a):
        x = unpack_one(pack_one(a))[0]
        if lo < x < hi:
            return int(x) & mask
        if x != x:
            raise Trap(_TRAP_INVALID)
        raise Trap(_TRAP_OVERFLOW)

    def trunc_sat(a):
        x = unpack_one(pack_one(a))[0]
        if lo < x < hi:
            return int(x) & mask
        if x != x:
            return 0
        return sat_lo if x < 0 else sat_hi

    return trunc, trunc_sat


def _trunc_table():
    """All 16 float->int truncations, named as in opcodes.py."""
    ranges = {
        # -2**63 - 1 is no double: the next double below -2**63 is as good,
        # since no double lies strictly between the two.
        (32, 's'): (-2147483649.0, 2147483648.0, -(1 << 31), (1 << 31) - 1),
        (32, 'u'): (-1.0, 4294967296.0, 0, M32),
        (64, 's'): (math.nextafter(-2.0 ** 63, -_INF), 2.0 ** 63,
                    -(1 << 63), (1 << 63) - 1),
        (64, 'u'): (-1.0, 2.0 ** 64, 0, M64),
    }
    srcs = {'f32': (_unpack_f, _pack_I), 'f64': (_unpack_d, _pack_Q)}
    ops = {}
    for (N, sx), (lo, hi, sat_lo, sat_hi) in ranges.items():
        for src, (unp, pk) in srcs.items():
            t, ts = _make_trunc(lo, hi, sat_lo, sat_hi, (1 << N) - 1, unp, pk)
            t.__name__ = t.__qualname__ = f'i{N}_trunc_{src}_{sx}'
            ts.__name__ = ts.__qualname__ = f'i{N}_trunc_sat_{src}_{sx}'
            ops[f'i{N}.trunc_{src}_{sx}'] = t
            ops[f'i{N}.trunc_sat_{src}_{sx}'] = ts
    return ops


def f32_convert_i32_s(a):
    # Exact in a double, so a single rounding to f32.
    return _unpack_I(_pack_f(float(a - 0x100000000 if a & F32_SIGN else a)))[0]


def f32_convert_i32_u(a):
    return _unpack_I(_pack_f(float(a)))[0]


def f32_convert_i64_s(a):
    return int_to_f32_bits(a - 0x10000000000000000 if a & F64_SIGN else a)


def f32_convert_i64_u(a):
    return int_to_f32_bits(a)


def f64_convert_i32_s(a):
    return _unpack_Q(_pack_d(float(a - 0x100000000 if a & F32_SIGN else a)))[0]


def f64_convert_i32_u(a):
    return _unpack_Q(_pack_d(float(a)))[0]


def f64_convert_i64_s(a):
    # int -> float in CPython rounds correctly (ties to even).
    return _unpack_Q(_pack_d(float(a - 0x10000000000000000 if a & F64_SIGN else a)))[0]


def f64_convert_i64_u(a):
    return _unpack_Q(_pack_d(float(a)))[0]


def f32_demote_f64(a):
    """Round to nearest f32; a NaN keeps sign and top payload bits, quieted."""
    if (a & F64_ABS) > F64_INF:
        return (((a >> 32) & F32_SIGN) | F32_CANON_NAN
                | ((a >> 29) & 0x7FFFFF))
    x = _unpack_d(_pack_Q(a))[0]
    try:
        return _unpack_I(_pack_f(x))[0]
    except OverflowError:
        return 0xFF800000 if x < 0 else F32_INF


def f64_promote_f32(a):
    """Exact widening; a NaN keeps sign and payload (shifted up), quieted."""
    if (a & F32_ABS) > F32_INF:
        return (((a & F32_SIGN) << 32) | F64_CANON_NAN
                | ((a & 0x7FFFFF) << 29))
    return _unpack_Q(_pack_d(_unpack_f(_pack_I(a))[0]))[0]


def _identity(a):
    """reinterpret: the bits are the value."""
    return a


# ---------------------------------------------------------------------------
# The table

OPS = {}
OPS.update(_make_int_ops(32))
OPS.update(_make_int_ops(64))
OPS['i64.extend32_s'] = i64_extend32_s
for _t in ('f32', 'f64'):
    for _op in ('add', 'sub', 'mul', 'div', 'min', 'max', 'copysign', 'abs',
                'neg', 'sqrt', 'ceil', 'floor', 'trunc', 'nearest',
                'eq', 'ne', 'lt', 'gt', 'le', 'ge'):
        OPS[f'{_t}.{_op}'] = globals()[f'{_t}_{_op}']
OPS.update(_trunc_table())
OPS.update({
    'i32.wrap_i64': i32_wrap_i64,
    'i64.extend_i32_s': i64_extend_i32_s,
    'i64.extend_i32_u': i64_extend_i32_u,
    'f32.convert_i32_s': f32_convert_i32_s,
    'f32.convert_i32_u': f32_convert_i32_u,
    'f32.convert_i64_s': f32_convert_i64_s,
    'f32.convert_i64_u': f32_convert_i64_u,
    'f64.convert_i32_s': f64_convert_i32_s,
    'f64.convert_i32_u': f64_convert_i32_u,
    'f64.convert_i64_s': f64_convert_i64_s,
    'f64.convert_i64_u': f64_convert_i64_u,
    'f32.demote_f64': f32_demote_f64,
    'f64.promote_f32': f64_promote_f32,
    'i32.reinterpret_f32': _identity,
    'i64.reinterpret_f64': _identity,
    'f32.reinterpret_i32': _identity,
    'f64.reinterpret_i64': _identity,
})
del _t, _op
