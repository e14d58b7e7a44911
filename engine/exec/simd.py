"""Vector numerics and memory access (spec "Execution / Instructions / Vector
instructions" and the lane-wise operators of "Numerics").

A v128 is a 128-bit unsigned int with lane 0 in the low bits, so splitting
it into lanes is ``v.to_bytes(16, 'little')`` followed by one precompiled
``struct`` unpack, and joining is a pack followed by ``int.from_bytes``.
Signed lanes come from the signed struct formats, so no per-lane sign fixing
is needed; results whose lanes may be negative are packed with a signed
format, which writes the same two's complement bytes.

Float lanes are bit patterns and go through ``engine.exec.numerics`` one lane at
a time, so NaN propagation, -0 and rounding are exactly the scalar rules.
Pure bit operations (abs, neg, bitwise, splat, lane moves) never look at a
float value and keep every NaN payload.

Public interface, shared by both executors:

``instruction(name, imm, memi) -> (fn, params, results)``
    ``fn(*operands)`` computes the instruction with its immediates bound
    (lane index, shuffle pattern, memarg offset), returning the result value
    or None when ``results`` is empty.  ``params``/``results`` are the value
    types from ``opcodes.BY_NAME[name].sig``, operands bottom first.  Memory
    instructions take the i32 address as their first operand and raise
    ``Trap('out of bounds memory access')``; ``memi`` is memory 0's MemInst.

``OPS[name]``
    the pure function of every SIMD instruction without immediates and
    without memory access.
"""

import operator
import struct

from . import numerics
from ..errors import Trap
from ..opcodes import BY_NAME, OPS as _ALL_OPS

__all__ = ['instruction', 'OPS', 'SIMD_NAMES']

M128 = (1 << 128) - 1
_from_bytes = int.from_bytes

# Lane width (bits) -> (unsigned struct, signed struct) over 16 bytes.
_ST = {
    8: (struct.Struct('<16B'), struct.Struct('<16b')),
    16: (struct.Struct('<8H'), struct.Struct('<8h')),
    32: (struct.Struct('<4I'), struct.Struct('<4i')),
    64: (struct.Struct('<2Q'), struct.Struct('<2q')),
}
_F32 = struct.Struct('<4f')
_F64 = struct.Struct('<2d')
_SHAPES = {'i8x16': 8, 'i16x8': 16, 'i32x4': 32, 'i64x2': 64,
           'f32x4': 32, 'f64x2': 64}


def _rep(w):
    """The v128 with value 1 in every ``w``-bit lane: lane-wise splat by
    multiplication (x * REP puts x in every lane when x fits a lane)."""
    return sum(1 << i for i in range(0, 128, w))


_REP = {w: _rep(w) for w in (8, 16, 32, 64)}


def _trap():
    raise Trap('out of bounds memory access')


# ---------------------------------------------------------------- factories

def _map2(w, signed_in, signed_out, lane):
    """Lane-wise binary operator: ``lane(x, y)`` on the lanes of both
    operands (read signed or unsigned); its results must fit the output
    format, which is what makes the pack exact."""
    unpack = _ST[w][signed_in].unpack
    pack = _ST[w][signed_out].pack

    def op(a, b):
        return _from_bytes(pack(*map(lane, unpack(a.to_bytes(16, 'little')),
                                     unpack(b.to_bytes(16, 'little')))),
                           'little')
    return op


def _map1(w, signed_in, signed_out, lane):
    """Lane-wise unary operator (see ``_map2``)."""
    unpack = _ST[w][signed_in].unpack
    pack = _ST[w][signed_out].pack

    def op(a):
        return _from_bytes(pack(*map(lane, unpack(a.to_bytes(16, 'little')))),
                           'little')
    return op


def _sat(lo, hi):
    def clamp(x):
        return lo if x < lo else hi if x > hi else x
    return clamp


def _int_shape(shape, w):
    """Operators of one integer shape, keyed by full instruction name."""
    mask = (1 << w) - 1
    rep = _REP[w]
    high = rep << (w - 1)               # the top bit of every lane
    low = M128 ^ high
    smin, smax = -(1 << (w - 1)), (1 << (w - 1)) - 1
    n = 128 // w
    unpack_u, unpack_s = (s.unpack for s in _ST[w])
    ops = {}
    p = shape + '.'

    # add/sub without carries across lanes: add the low w-1 bits of every
    # lane, then fix each lane's top bit by xor (no carry leaves a lane).
    def add(a, b):
        return ((a & low) + (b & low)) ^ ((a ^ b) & high)

    def sub(a, b):
        return ((a | high) - (b & low)) ^ ((a ^ ~b) & high)

    def neg(a):
        return sub(0, a)

    ops[p + 'add'] = add
    ops[p + 'sub'] = sub
    ops[p + 'neg'] = neg
    ops[p + 'abs'] = _map1(w, True, False, lambda x: x if x >= 0 else -x)

    # comparisons: -1 (all ones) or 0 per lane, packed signed
    cmps = {'eq': operator.eq, 'ne': operator.ne}
    if w < 64:
        cmps.update({'lt_u': operator.lt, 'gt_u': operator.gt,
                     'le_u': operator.le, 'ge_u': operator.ge})
    for nm, f in cmps.items():
        ops[p + nm] = _map2(w, False, True,
                            (lambda f: lambda x, y: -f(x, y))(f))
    for nm, f in (('lt_s', operator.lt), ('gt_s', operator.gt),
                  ('le_s', operator.le), ('ge_s', operator.ge)):
        ops[p + nm] = _map2(w, True, True,
                            (lambda f: lambda x, y: -f(x, y))(f))

    # shifts: the count is taken modulo the lane width
    keep_l = [rep * ((mask << k) & mask) for k in range(w)]
    keep_r = [rep * (mask >> k) for k in range(w)]
    wm = w - 1
    pack_s = _ST[w][1].pack

    def shl(a, s):
        k = s & wm
        return (a << k) & keep_l[k]

    def shr_u(a, s):
        k = s & wm
        return (a >> k) & keep_r[k]

    def shr_s(a, s):
        k = s & wm
        return _from_bytes(pack_s(*[x >> k for x in
                                    unpack_s(a.to_bytes(16, 'little'))]),
                           'little')

    ops[p + 'shl'] = shl
    ops[p + 'shr_u'] = shr_u
    ops[p + 'shr_s'] = shr_s

    def all_true(a):
        return 1 if all(unpack_u(a.to_bytes(16, 'little'))) else 0

    def bitmask(a):
        r = 0
        for i in range(n):
            r |= ((a >> (w * i + wm)) & 1) << i
        return r

    ops[p + 'all_true'] = all_true
    ops[p + 'bitmask'] = bitmask

    def splat(x):
        return (x & mask) * rep

    ops[p + 'splat'] = splat

    if w in (16, 32, 64):
        ops[p + 'mul'] = _map2(w, False, False, lambda x, y: (x * y) & mask)
    if w in (8, 16, 32):
        ops[p + 'min_s'] = _map2(w, True, True, min)
        ops[p + 'max_s'] = _map2(w, True, True, max)
        ops[p + 'min_u'] = _map2(w, False, False, min)
        ops[p + 'max_u'] = _map2(w, False, False, max)
    if w in (8, 16):
        cs = _sat(smin, smax)
        cu = _sat(0, mask)
        ops[p + 'add_sat_s'] = _map2(w, True, True, lambda x, y: cs(x + y))
        ops[p + 'sub_sat_s'] = _map2(w, True, True, lambda x, y: cs(x - y))
        ops[p + 'add_sat_u'] = _map2(w, False, False, lambda x, y: cu(x + y))
        ops[p + 'sub_sat_u'] = _map2(w, False, False,
                                     lambda x, y: x - y if x > y else 0)
        ops[p + 'avgr_u'] = _map2(w, False, False,
                                  lambda x, y: (x + y + 1) >> 1)
    return ops


def _widening(shape, w):
    """Operators producing ``w``-bit lanes from ``w/2``-bit lanes: extend,
    extmul, extadd_pairwise, and narrow (the reverse, from ``w`` to
    ``w/2``) where it exists.  Results always fit the wider lane, so the
    wide format packs them exactly."""
    h = w // 2
    src = {8: 'i8x16', 16: 'i16x8', 32: 'i32x4'}[h]
    ops = {}
    half = 128 // w                     # number of result lanes
    for sx, sg in (('s', True), ('u', False)):
        unpack = _ST[h][sg].unpack
        pack = _ST[w][sg].pack

        def ext_low(a, unpack=unpack, pack=pack):
            return _from_bytes(pack(*unpack(a.to_bytes(16, 'little'))[:half]),
                               'little')

        def ext_high(a, unpack=unpack, pack=pack):
            return _from_bytes(pack(*unpack(a.to_bytes(16, 'little'))[half:]),
                               'little')

        def extmul_low(a, b, unpack=unpack, pack=pack):
            return _from_bytes(pack(*map(
                operator.mul, unpack(a.to_bytes(16, 'little'))[:half],
                unpack(b.to_bytes(16, 'little'))[:half])), 'little')

        def extmul_high(a, b, unpack=unpack, pack=pack):
            return _from_bytes(pack(*map(
                operator.mul, unpack(a.to_bytes(16, 'little'))[half:],
                unpack(b.to_bytes(16, 'little'))[half:])), 'little')

        ops[f'{shape}.extend_low_{src}_{sx}'] = ext_low
        ops[f'{shape}.extend_high_{src}_{sx}'] = ext_high
        ops[f'{shape}.extmul_low_{src}_{sx}'] = extmul_low
        ops[f'{shape}.extmul_high_{src}_{sx}'] = extmul_high
        if w in (16, 32):
            def pairwise(a, unpack=unpack, pack=pack):
                x = unpack(a.to_bytes(16, 'little'))
                return _from_bytes(pack(*map(operator.add, x[0::2], x[1::2])),
                                   'little')
            ops[f'{shape}.extadd_pairwise_{src}_{sx}'] = pairwise
    if w in (16, 32):
        # narrow: the w-bit lanes of a then b, read signed, saturated to
        # the signed or unsigned h-bit range
        unpack = _ST[w][True].unpack
        for sx, sg, lo, hi in (('s', True, -(1 << (h - 1)), (1 << (h - 1)) - 1),
                               ('u', False, 0, (1 << h) - 1)):
            pack = _ST[h][sg].pack
            clamp = _sat(lo, hi)

            def narrow(a, b, unpack=unpack, pack=pack, clamp=clamp):
                return _from_bytes(pack(*map(
                    clamp, unpack(a.to_bytes(16, 'little'))
                    + unpack(b.to_bytes(16, 'little')))), 'little')
            ops[f'{src}.narrow_{shape}_{sx}'] = narrow
    return ops


def _float_shape(shape, w):
    """Operators of f32x4 / f64x2: scalar numerics per lane on bit patterns
    (comparisons and pmin/pmax read the lanes as Python floats, which
    compares exactly like IEEE)."""
    t = 'f%d' % w
    sc = numerics.OPS
    unpack_u = _ST[w][0].unpack
    pack_u = _ST[w][0].pack
    fl = (_F32 if w == 32 else _F64).unpack
    pack_s = _ST[w][1].pack
    sign = _REP[w] << (w - 1)
    nsign = M128 ^ sign
    mask = (1 << w) - 1
    ops = {}
    p = shape + '.'

    def lanewise2(f):
        def op(a, b):
            return _from_bytes(pack_u(*map(f, unpack_u(a.to_bytes(16, 'little')),
                                           unpack_u(b.to_bytes(16, 'little')))),
                               'little')
        return op

    def lanewise1(f):
        def op(a):
            return _from_bytes(pack_u(*map(f, unpack_u(a.to_bytes(16, 'little')))),
                               'little')
        return op

    for nm in ('add', 'sub', 'mul', 'div', 'min', 'max'):
        ops[p + nm] = lanewise2(sc[f'{t}.{nm}'])
    for nm in ('sqrt', 'ceil', 'floor', 'trunc', 'nearest'):
        ops[p + nm] = lanewise1(sc[f'{t}.{nm}'])

    def abs_(a):
        return a & nsign

    def neg(a):
        return a ^ sign

    ops[p + 'abs'] = abs_
    ops[p + 'neg'] = neg

    for nm, f in (('eq', operator.eq), ('ne', operator.ne),
                  ('lt', operator.lt), ('gt', operator.gt),
                  ('le', operator.le), ('ge', operator.ge)):
        def cmp(a, b, f=f):
            return _from_bytes(pack_s(*[-f(x, y) for x, y in zip(
                fl(a.to_bytes(16, 'little')), fl(b.to_bytes(16, 'little')))]),
                'little')
        ops[p + nm] = cmp

    def pmin(a, b):
        # fpmin(z1, z2) = z2 if z2 < z1 else z1: an operand, bit-exact
        ab = a.to_bytes(16, 'little')
        bb = b.to_bytes(16, 'little')
        return _from_bytes(pack_u(*[y if fy < fx else x for x, y, fx, fy in zip(
            unpack_u(ab), unpack_u(bb), fl(ab), fl(bb))]), 'little')

    def pmax(a, b):
        # fpmax(z1, z2) = z2 if z1 < z2 else z1
        ab = a.to_bytes(16, 'little')
        bb = b.to_bytes(16, 'little')
        return _from_bytes(pack_u(*[y if fx < fy else x for x, y, fx, fy in zip(
            unpack_u(ab), unpack_u(bb), fl(ab), fl(bb))]), 'little')

    ops[p + 'pmin'] = pmin
    ops[p + 'pmax'] = pmax

    def splat(x):
        return (x & mask) * _REP[w]

    ops[p + 'splat'] = splat
    return ops


def _conversions():
    """Lane conversions between shapes (spec vcvtop)."""
    sc = numerics.OPS
    u32 = _ST[32][0]
    u64 = _ST[64][0]
    ops = {}

    def per32(f):
        unpack, pack = u32.unpack, u32.pack

        def op(a):
            return _from_bytes(pack(*map(f, unpack(a.to_bytes(16, 'little')))),
                               'little')
        return op

    ops['i32x4.trunc_sat_f32x4_s'] = per32(sc['i32.trunc_sat_f32_s'])
    ops['i32x4.trunc_sat_f32x4_u'] = per32(sc['i32.trunc_sat_f32_u'])
    ops['f32x4.convert_i32x4_s'] = per32(sc['f32.convert_i32_s'])
    ops['f32x4.convert_i32x4_u'] = per32(sc['f32.convert_i32_u'])

    def narrow64(f):
        # two f64 lanes -> the two low 32-bit lanes, high lanes zero
        unpack = u64.unpack

        def op(a):
            x, y = unpack(a.to_bytes(16, 'little'))
            return f(x) | (f(y) << 32)
        return op

    ops['i32x4.trunc_sat_f64x2_s_zero'] = narrow64(sc['i32.trunc_sat_f64_s'])
    ops['i32x4.trunc_sat_f64x2_u_zero'] = narrow64(sc['i32.trunc_sat_f64_u'])
    ops['f32x4.demote_f64x2_zero'] = narrow64(sc['f32.demote_f64'])

    def widen_low(f):
        # the two low 32-bit lanes -> two 64-bit lanes
        def op(a):
            return f(a & 0xFFFFFFFF) | (f((a >> 32) & 0xFFFFFFFF) << 64)
        return op

    ops['f64x2.convert_low_i32x4_s'] = widen_low(sc['f64.convert_i32_s'])
    ops['f64x2.convert_low_i32x4_u'] = widen_low(sc['f64.convert_i32_u'])
    ops['f64x2.promote_low_f32x4'] = widen_low(sc['f64.promote_f32'])
    return ops


def _misc():
    """Bitwise operators and the i8x16/i16x8/i32x4 one-offs."""
    ops = {}
    ops['v128.not'] = lambda a: a ^ M128
    ops['v128.and'] = operator.and_
    ops['v128.andnot'] = lambda a, b: a & (b ^ M128)
    ops['v128.or'] = operator.or_
    ops['v128.xor'] = operator.xor
    # bitselect(v1, v2, c): bits of v1 where c is 1, of v2 where c is 0
    ops['v128.bitselect'] = lambda a, b, c: (a & c) | (b & (c ^ M128))
    ops['v128.any_true'] = lambda a: 1 if a else 0

    popcnt_table = bytes(bin(i).count('1') for i in range(256))

    def popcnt(a):
        return _from_bytes(a.to_bytes(16, 'little').translate(popcnt_table),
                           'little')
    ops['i8x16.popcnt'] = popcnt

    zeros = bytes(240)

    def swizzle(a, s):
        # each index byte of s selects a byte of a; 16..255 select zero:
        # a 256-byte translation table does exactly that
        return _from_bytes(s.to_bytes(16, 'little').translate(
            a.to_bytes(16, 'little') + zeros), 'little')
    ops['i8x16.swizzle'] = swizzle

    s16 = _ST[16][1].unpack
    u32 = _ST[32][0].pack

    def dot(a, b):
        x = s16(a.to_bytes(16, 'little'))
        y = s16(b.to_bytes(16, 'little'))
        return _from_bytes(u32(*[
            (x[i] * y[i] + x[i + 1] * y[i + 1]) & 0xFFFFFFFF
            for i in range(0, 8, 2)]), 'little')
    ops['i32x4.dot_i16x8_s'] = dot

    def q15(x, y):
        r = (x * y + 0x4000) >> 15
        return 0x7FFF if r > 0x7FFF else r      # only -1 * -1 overflows
    ops['i16x8.q15mulr_sat_s'] = _map2(16, True, True, q15)
    return ops


def _relaxed(ops):
    """Relaxed SIMD (Wasm 3.0): the spec allows each of these a set of
    results; this engine always gives one, the same in both models and
    tiers, chosen to be the corresponding deterministic instruction:

    - relaxed_swizzle = i8x16.swizzle (an index >= 16 selects 0);
    - relaxed_trunc* = trunc_sat* (NaN -> 0, saturating out of range);
    - relaxed_madd(a, b, c) = a * b + c and relaxed_nmadd = -(a * b) + c,
      *unfused*: the product is rounded, then the sum (f32x4/f64x2.mul then
      add, NaNs as those give them);
    - relaxed_laneselect = v128.bitselect (every bit of the mask counts);
    - relaxed_min/max = f32x4/f64x2.min/max (a NaN lane is NaN as those give
      it, -0 below +0);
    - relaxed_q15mulr_s = i16x8.q15mulr_sat_s (-32768 * -32768 saturates);
    - relaxed_dot_i8x16_i7x16_s: both operands signed, each pair's sum
      wrapped to 16 bits; the _add_s form adds the two adjacent 16-bit sums
      (sign-extended) and the i32 lane of c, wrapping.
    """
    ops['i8x16.relaxed_swizzle'] = ops['i8x16.swizzle']
    for sfx in ('f32x4_s', 'f32x4_u', 'f64x2_s_zero', 'f64x2_u_zero'):
        ops[f'i32x4.relaxed_trunc_{sfx}'] = ops[f'i32x4.trunc_sat_{sfx}']
    for shape in ('f32x4', 'f64x2'):
        mul, add, neg = ops[shape + '.mul'], ops[shape + '.add'], ops[shape + '.neg']
        ops[shape + '.relaxed_madd'] = lambda a, b, c, mul=mul, add=add: add(mul(a, b), c)
        ops[shape + '.relaxed_nmadd'] = \
            lambda a, b, c, mul=mul, add=add, neg=neg: add(neg(mul(a, b)), c)
        ops[shape + '.relaxed_min'] = ops[shape + '.min']
        ops[shape + '.relaxed_max'] = ops[shape + '.max']
    for shape in ('i8x16', 'i16x8', 'i32x4', 'i64x2'):
        ops[shape + '.relaxed_laneselect'] = ops['v128.bitselect']
    ops['i16x8.relaxed_q15mulr_s'] = ops['i16x8.q15mulr_sat_s']
    s8 = _ST[8][1].unpack
    s16p = _ST[16][1].pack
    u32 = _ST[32][0]

    def pairs(a, b):
        x = s8(a.to_bytes(16, 'little'))
        y = s8(b.to_bytes(16, 'little'))
        return [((x[i] * y[i] + x[i + 1] * y[i + 1] + 0x8000) & 0xFFFF) - 0x8000
                for i in range(0, 16, 2)]

    def dot(a, b):
        return _from_bytes(s16p(*pairs(a, b)), 'little')

    def dot_add(a, b, c):
        p = pairs(a, b)
        acc = u32.unpack(c.to_bytes(16, 'little'))
        return _from_bytes(u32.pack(*[(p[2 * i] + p[2 * i + 1] + acc[i]) & 0xFFFFFFFF
                                      for i in range(4)]), 'little')
    ops['i16x8.relaxed_dot_i8x16_i7x16_s'] = dot
    ops['i32x4.relaxed_dot_i8x16_i7x16_add_s'] = dot_add


def _build_ops():
    ops = {}
    for shape, w in _SHAPES.items():
        if shape[0] == 'i':
            ops.update(_int_shape(shape, w))
        else:
            ops.update(_float_shape(shape, w))
    for shape, w in (('i16x8', 16), ('i32x4', 32), ('i64x2', 64)):
        ops.update(_widening(shape, w))
    ops.update(_conversions())
    ops.update(_misc())
    _relaxed(ops)
    # keep exactly the instructions that exist (the factories are uniform
    # over shapes; the instruction set is not)
    return {k: v for k, v in ops.items()
            if k in BY_NAME and BY_NAME[k].imm is None}


OPS = _build_ops()

SIMD_NAMES = tuple(op.name for op in _ALL_OPS if op.code[0] == 0xFD)


# ------------------------------------------------------- immediate operators

def _lane_op(name, lane):
    """extract_lane / replace_lane with the lane index bound."""
    shape, _, what = name.partition('.')
    w = _SHAPES[shape]
    mask = (1 << w) - 1
    sh = w * lane
    if what == 'replace_lane':
        hole = M128 ^ (mask << sh)

        def replace(a, x):
            return (a & hole) | ((x & mask) << sh)
        return replace
    if what == 'extract_lane_s':
        top = 1 << (w - 1)

        def extract_s(a):
            return ((((a >> sh) & mask) ^ top) - top) & 0xFFFFFFFF
        return extract_s

    def extract(a):
        return (a >> sh) & mask
    return extract


def _shuffle(pattern):
    pick = operator.itemgetter(*pattern)

    def shuffle(a, b):
        return _from_bytes(bytes(pick(a.to_bytes(16, 'little')
                                      + b.to_bytes(16, 'little'))), 'little')
    return shuffle


# ---------------------------------------------------------------- memory

_EXTEND_LOADS = {
    # name -> (source lanes struct, wide struct)
    'v128.load8x8_s': (struct.Struct('<8b'), _ST[16][1]),
    'v128.load8x8_u': (struct.Struct('<8B'), _ST[16][0]),
    'v128.load16x4_s': (struct.Struct('<4h'), _ST[32][1]),
    'v128.load16x4_u': (struct.Struct('<4H'), _ST[32][0]),
    'v128.load32x2_s': (struct.Struct('<2i'), _ST[64][1]),
    'v128.load32x2_u': (struct.Struct('<2I'), _ST[64][0]),
}


def _memory_op(name, imm, memi):
    """A memory instruction with its offset (and lane) bound; ``mem`` is
    the memory's bytearray, which grows in place."""
    if memi is None:
        raise ValueError(f'{name}: module has no memory')
    mem = memi.data
    mark = memi.mark
    off = imm[1]
    width = BY_NAME[name].width

    if name in _EXTEND_LOADS:
        src, wide = _EXTEND_LOADS[name]
        unpack_from = src.unpack_from
        pack = wide.pack

        def load_ext(addr):
            ea = addr + off
            if ea + 8 > len(mem):
                _trap()
            return _from_bytes(pack(*unpack_from(mem, ea)), 'little')
        return load_ext

    if name.endswith('_splat'):
        rep = _REP[width * 8]

        def load_splat(addr):
            ea = addr + off
            if ea + width > len(mem):
                _trap()
            return _from_bytes(mem[ea:ea + width], 'little') * rep
        return load_splat

    if name in ('v128.load', 'v128.load32_zero', 'v128.load64_zero'):
        def load(addr):
            ea = addr + off
            if ea + width > len(mem):
                _trap()
            return _from_bytes(mem[ea:ea + width], 'little')
        return load

    if name == 'v128.store':
        def store(addr, v):
            ea = addr + off
            if ea + 16 > len(mem):
                _trap()
            mem[ea:ea + 16] = v.to_bytes(16, 'little')
            mark(ea, 16)
        return store

    lane = imm[2]
    sh = width * 8 * lane
    mask = (1 << (width * 8)) - 1
    if name.startswith('v128.load'):
        hole = M128 ^ (mask << sh)

        def load_lane(addr, v):
            ea = addr + off
            if ea + width > len(mem):
                _trap()
            return (v & hole) | (_from_bytes(mem[ea:ea + width], 'little') << sh)
        return load_lane

    def store_lane(addr, v):
        ea = addr + off
        if ea + width > len(mem):
            _trap()
        mem[ea:ea + width] = ((v >> sh) & mask).to_bytes(width, 'little')
        mark(ea, width)
    return store_lane


# ---------------------------------------------------------------- interface

def instruction(name, imm, memi):
    """``(fn, params, results)`` for one SIMD instruction; see the module
    docstring."""
    op = BY_NAME.get(name)
    if op is None or op.code[0] != 0xFD:
        raise ValueError(f'not a SIMD instruction: {name!r}')
    params, results = op.sig
    kind = op.imm
    if kind is None:
        fn = OPS[name]
    elif kind == 'lane':
        fn = _lane_op(name, imm)
    elif kind == 'shuffle':
        fn = _shuffle(imm)
    elif kind == 'v128':
        def fn(c=imm):
            return c
    else:                               # memarg, memarg_lane
        fn = _memory_op(name, imm, memi)
    return fn, params, results
