"""Scalar numerics (engine/exec/numerics.py) against hand-computed values from the
spec text (exec/numerics.rst) and against the official testsuite's
assertions, evaluated directly on OPS."""

import concurrent.futures
import json
import math
import os
import re
import shutil
import struct
import subprocess

import pytest

from engine.exec import numerics as N
from engine import opcodes
from engine.errors import Trap

OPS = N.OPS
TESTSUITE = '/work/shared/testsuite/wasm-2.0'


def f32(x):
    return struct.unpack('<I', struct.pack('<f', x))[0]


def f64(x):
    return struct.unpack('<Q', struct.pack('<d', x))[0]


def trap(name, *args):
    with pytest.raises(Trap) as e:
        OPS[name](*args)
    return e.value.message


NEG0_32, NEG0_64 = 0x80000000, 0x8000000000000000
INF32, INF64 = 0x7F800000, 0x7FF0000000000000
CNAN32, CNAN64 = 0x7FC00000, 0x7FF8000000000000
SNAN32, SNAN64 = 0x7FA00000, 0x7FF4000000000000    # signalling payloads


# --------------------------------------------------------------------------
# Coverage of the instruction table

def test_ops_cover_every_scalar_numeric_instruction():
    want = {op.name for op in opcodes.OPS
            if (len(op.code) == 1 and 0x45 <= op.code[0] <= 0xC4)
            or (op.code[0] == 0xFC and op.code[1] < 8)}
    assert set(OPS) == want


# --------------------------------------------------------------------------
# Integers

def test_int_wrap_and_compare():
    assert OPS['i32.add'](0xFFFFFFFF, 1) == 0
    assert OPS['i32.sub'](0, 1) == 0xFFFFFFFF
    assert OPS['i64.mul'](0x8000000000000000, 2) == 0
    assert OPS['i32.mul'](0x10000, 0x10000) == 0
    assert OPS['i32.lt_s'](0xFFFFFFFF, 0) == 1        # -1 < 0
    assert OPS['i32.lt_u'](0xFFFFFFFF, 0) == 0
    assert OPS['i64.ge_s'](0x8000000000000000, 0x7FFFFFFFFFFFFFFF) == 0
    assert OPS['i32.eqz'](0) == 1 and OPS['i64.eqz'](5) == 0
    assert type(OPS['i32.eq'](1, 1)) is int


def test_int_division():
    assert trap('i32.div_s', 1, 0) == 'integer divide by zero'
    assert trap('i64.rem_u', 1, 0) == 'integer divide by zero'
    assert trap('i32.div_s', 0x80000000, 0xFFFFFFFF) == 'integer overflow'
    assert trap('i64.div_s', 1 << 63, (1 << 64) - 1) == 'integer overflow'
    assert OPS['i32.rem_s'](0x80000000, 0xFFFFFFFF) == 0
    assert OPS['i32.div_s'](-7 & 0xFFFFFFFF, 2) == -3 & 0xFFFFFFFF   # toward zero
    assert OPS['i32.rem_s'](-7 & 0xFFFFFFFF, 2) == -1 & 0xFFFFFFFF   # dividend's sign
    assert OPS['i32.rem_s'](7, -2 & 0xFFFFFFFF) == 1
    assert OPS['i32.div_u'](0xFFFFFFFF, 2) == 0x7FFFFFFF
    assert OPS['i64.rem_u'](0x8000000000000001, 1000) == 0x8000000000000001 % 1000


def test_int_shifts_and_bits():
    assert OPS['i32.shl'](1, 32) == 1                 # count mod 32
    assert OPS['i32.shl'](1, 33) == 2
    assert OPS['i64.shl'](1, 64) == 1
    assert OPS['i32.shr_s'](0x80000000, 31) == 0xFFFFFFFF
    assert OPS['i32.shr_u'](0x80000000, 63) == 1
    assert OPS['i64.shr_s'](0x8000000000000000, 63) == (1 << 64) - 1
    assert OPS['i32.rotl'](0x80000001, 1) == 3
    assert OPS['i32.rotr'](1, 0x20 + 1) == 0x80000000
    assert OPS['i64.rotl'](0x8000000000000000, 0) == 0x8000000000000000
    assert OPS['i32.clz'](0) == 32 and OPS['i64.clz'](1) == 63
    assert OPS['i32.ctz'](0) == 32 and OPS['i64.ctz'](1 << 63) == 63
    assert OPS['i64.popcnt']((1 << 64) - 1) == 64


def test_int_extend_and_wrap():
    assert OPS['i32.extend8_s'](0x80) == 0xFFFFFF80
    assert OPS['i32.extend8_s'](0x1237F) == 0x7F
    assert OPS['i32.extend16_s'](0x8000) == 0xFFFF8000
    assert OPS['i64.extend8_s'](0xFF) == (1 << 64) - 1
    assert OPS['i64.extend32_s'](0x80000000) == 0xFFFFFFFF80000000
    assert OPS['i64.extend32_s'](0x1_7FFFFFFF) == 0x7FFFFFFF
    assert OPS['i64.extend_i32_s'](0xFFFFFFFF) == (1 << 64) - 1
    assert OPS['i64.extend_i32_u'](0xFFFFFFFF) == 0xFFFFFFFF
    assert OPS['i32.wrap_i64'](0x123456789) == 0x23456789


def test_signed_helper():
    assert N.signed(0xFFFFFFFF, 32) == -1
    assert N.signed(0x7F, 8) == 127 and N.signed(0x80, 8) == -128


# --------------------------------------------------------------------------
# Floats

def test_float_arith_rounding():
    assert OPS['f32.add'](f32(1.0), f32(2.0 ** -24)) == f32(1.0)        # tie -> even
    assert OPS['f32.add'](f32(1.0), f32(2.0 ** -23)) == 0x3F800001
    assert OPS['f32.mul'](0x7F7FFFFF, f32(2.0)) == INF32               # overflow
    assert OPS['f32.mul'](0xFF7FFFFF, f32(2.0)) == 0xFF800000
    assert OPS['f32.div'](f32(1.0), f32(3.0)) == 0x3EAAAAAB
    assert OPS['f32.div'](f32(1.0), 0) == INF32
    assert OPS['f32.div'](f32(-1.0), 0) == 0xFF800000
    assert OPS['f32.div'](f32(1.0), NEG0_32) == 0xFF800000
    assert OPS['f32.div'](0, 0) == CNAN32
    assert OPS['f64.div'](NEG0_64, 0) == CNAN64
    assert OPS['f64.div'](f64(1.0), NEG0_64) == 0xFFF0000000000000
    assert OPS['f32.sqrt'](f32(2.0)) == 0x3FB504F3
    assert OPS['f32.sqrt'](NEG0_32) == NEG0_32
    assert OPS['f32.sqrt'](f32(-1.0)) == CNAN32
    assert OPS['f64.sqrt'](0xFFF0000000000000) == CNAN64
    assert OPS['f64.add'](INF64, 0xFFF0000000000000) == CNAN64
    assert OPS['f32.mul'](INF32, 0) == CNAN32
    # smallest subnormal products
    assert OPS['f32.mul'](1, f32(0.5)) == 0       # 2**-150: tie -> even (0)
    assert OPS['f32.mul'](3, f32(0.5)) == 2       # 1.5 ulp -> 2


def test_nan_propagation_keeps_payload_and_quiets():
    assert OPS['f32.add'](SNAN32, f32(1.0)) == SNAN32 | 0x400000
    assert OPS['f32.add'](f32(1.0), 0xFFA00001) == 0xFFE00001
    assert OPS['f64.mul'](SNAN64, f64(2.0)) == SNAN64 | (1 << 51)
    assert OPS['f32.sqrt'](0xFF800001) == 0xFFC00001
    assert OPS['f32.min'](CNAN32, 0) == CNAN32
    assert OPS['f64.max'](f64(1.0), 0xFFF8000000000000) == 0xFFF8000000000000
    assert OPS['f32.ceil'](SNAN32) == SNAN32 | 0x400000
    assert OPS['f64.nearest'](SNAN64) == SNAN64 | (1 << 51)


def test_bitwise_float_ops_keep_signalling_nans():
    assert OPS['f32.neg'](SNAN32) == SNAN32 | NEG0_32
    assert OPS['f32.abs'](0xFFA00001) == 0x7FA00001
    assert OPS['f64.copysign'](SNAN64, NEG0_64) == SNAN64 | NEG0_64
    assert OPS['f32.copysign'](f32(2.0), 0xFFC00000) == f32(-2.0)
    assert OPS['f32.reinterpret_i32'](SNAN32) == SNAN32
    assert OPS['i64.reinterpret_f64'](SNAN64) == SNAN64


def test_min_max_zeros():
    assert OPS['f32.min'](0, NEG0_32) == NEG0_32
    assert OPS['f32.min'](NEG0_32, 0) == NEG0_32
    assert OPS['f32.max'](0, NEG0_32) == 0
    assert OPS['f64.max'](NEG0_64, 0) == 0
    assert OPS['f64.min'](0, NEG0_64) == NEG0_64
    assert OPS['f32.min'](f32(1.0), f32(-2.0)) == f32(-2.0)


def test_rounding_to_integral():
    assert OPS['f32.nearest'](f32(2.5)) == f32(2.0)
    assert OPS['f32.nearest'](f32(3.5)) == f32(4.0)
    assert OPS['f32.nearest'](f32(-0.5)) == NEG0_32
    assert OPS['f64.nearest'](f64(0.5)) == 0
    assert OPS['f64.nearest'](f64(-2.5)) == f64(-2.0)
    assert OPS['f32.ceil'](f32(-0.5)) == NEG0_32
    assert OPS['f64.ceil'](f64(0.25)) == f64(1.0)
    assert OPS['f32.floor'](f32(-0.5)) == f32(-1.0)
    assert OPS['f64.floor'](f64(0.5)) == 0
    assert OPS['f32.trunc'](f32(-0.9)) == NEG0_32
    assert OPS['f64.trunc'](f64(-1.5)) == f64(-1.0)
    assert OPS['f32.nearest'](f32(8388609.0)) == f32(8388609.0)       # 2**23+1
    assert OPS['f64.ceil'](f64(4503599627370497.0)) == f64(4503599627370497.0)
    assert OPS['f32.floor'](0xFF800000) == 0xFF800000
    assert OPS['f64.trunc'](NEG0_64) == NEG0_64


def test_float_compare():
    assert OPS['f32.eq'](0, NEG0_32) == 1
    assert OPS['f32.eq'](CNAN32, CNAN32) == 0
    assert OPS['f64.ne'](CNAN64, CNAN64) == 1
    assert OPS['f32.lt'](f32(-1.0), 0) == 1
    assert OPS['f64.ge'](CNAN64, 0) == 0
    assert OPS['f32.le'](SNAN32, INF32) == 0


# --------------------------------------------------------------------------
# Conversions

def test_convert_rounds_once_from_the_exact_integer():
    assert OPS['f32.convert_i32_s'](0x1000001) == 0x4B800000            # 2**24+1 -> 2**24
    assert OPS['f32.convert_i32_s'](0x1000003) == 0x4B800002            # tie -> even (up)
    assert OPS['f32.convert_i32_u'](0xFFFFFFFF) == f32(4294967296.0)
    assert OPS['f32.convert_i32_s'](0x80000000) == f32(-2147483648.0)
    # 2**53 + 2**29 + 1 is above the f32 halfway point; via a double it would
    # first round to the tie 2**53 + 2**29 and then to even (down).
    n = (1 << 53) + (1 << 29) + 1
    assert OPS['f32.convert_i64_u'](n) == 0x5A000001
    assert OPS['f32.convert_i64_s']((-n) & N.M64) == 0xDA000001
    assert OPS['f32.convert_i64_u']((1 << 64) - 1) == f32(2.0 ** 64)
    assert OPS['f32.convert_i64_s'](1 << 63) == f32(-2.0 ** 63)
    assert OPS['f64.convert_i64_s'](9007199254740993) == f64(9007199254740992.0)
    assert OPS['f64.convert_i64_u'](9007199254740995) == f64(9007199254740996.0)
    assert OPS['f64.convert_i64_u']((1 << 64) - 1) == f64(2.0 ** 64)
    assert OPS['f64.convert_i32_s'](0xFFFFFFFF) == f64(-1.0)
    assert OPS['f64.convert_i32_u'](0xFFFFFFFF) == f64(4294967295.0)


def test_demote_promote():
    assert OPS['f32.demote_f64'](f64(1e300)) == INF32                   # overflow
    assert OPS['f32.demote_f64'](f64(-1e300)) == 0xFF800000
    # just below the overflow threshold (FLT_MAX + half ulp) rounds to FLT_MAX
    assert OPS['f32.demote_f64'](f64(3.4028235677973362e38)) == 0x7F7FFFFF
    assert OPS['f32.demote_f64'](f64(3.4028235677973366e38)) == INF32
    assert OPS['f32.demote_f64'](f64(1e-50)) == 0                       # underflow
    assert OPS['f32.demote_f64'](f64(-1e-50)) == NEG0_32
    assert OPS['f32.demote_f64'](f64(2.0 ** -149)) == 1                 # min subnormal
    assert OPS['f32.demote_f64'](f64(2.0 ** -150)) == 0                 # tie -> even
    assert OPS['f32.demote_f64'](f64(3 * 2.0 ** -150)) == 2
    assert OPS['f32.demote_f64'](CNAN64) == CNAN32
    assert OPS['f32.demote_f64'](0xFFF8000000000000) == 0xFFC00000
    assert OPS['f32.demote_f64'](SNAN64) & 0x7FC00000 == 0x7FC00000     # arithmetic NaN
    assert OPS['f64.promote_f32'](CNAN32) == CNAN64
    assert OPS['f64.promote_f32'](SNAN32) & 0x7FF8000000000000 == 0x7FF8000000000000
    assert OPS['f64.promote_f32'](1) == f64(2.0 ** -149)
    assert OPS['f64.promote_f32'](NEG0_32) == NEG0_64


def test_trunc_bounds():
    assert OPS['i32.trunc_f32_s'](f32(-2147483648.0)) == 0x80000000
    assert trap('i32.trunc_f32_s', f32(2147483648.0)) == 'integer overflow'
    assert OPS['i32.trunc_f32_s'](f32(2147483520.0)) == 2147483520
    assert OPS['i32.trunc_f64_s'](f64(-2147483648.9)) == 0x80000000
    assert trap('i32.trunc_f64_s', f64(-2147483649.0)) == 'integer overflow'
    assert OPS['i32.trunc_f64_s'](f64(2147483647.9)) == 0x7FFFFFFF
    assert OPS['i32.trunc_f32_u'](f32(-0.9)) == 0
    assert trap('i32.trunc_f32_u', f32(-1.0)) == 'integer overflow'
    assert OPS['i32.trunc_f64_u'](f64(4294967295.9)) == 0xFFFFFFFF
    assert trap('i32.trunc_f64_u', f64(4294967296.0)) == 'integer overflow'
    assert OPS['i64.trunc_f64_s'](f64(-2.0 ** 63)) == 1 << 63
    assert trap('i64.trunc_f64_s', f64(2.0 ** 63)) == 'integer overflow'
    assert trap('i64.trunc_f32_s', f32(-2.0 ** 64)) == 'integer overflow'
    assert OPS['i64.trunc_f64_u'](f64(2.0 ** 64 - 2048)) == (1 << 64) - 2048
    assert trap('i64.trunc_f32_u', f32(2.0 ** 64)) == 'integer overflow'
    assert trap('i32.trunc_f32_s', CNAN32) == 'invalid conversion to integer'
    assert trap('i64.trunc_f64_u', SNAN64) == 'invalid conversion to integer'
    assert trap('i64.trunc_f64_u', INF64) == 'integer overflow'


def test_trunc_sat():
    assert OPS['i32.trunc_sat_f32_s'](CNAN32) == 0
    assert OPS['i32.trunc_sat_f32_s'](f32(3e9)) == 0x7FFFFFFF
    assert OPS['i32.trunc_sat_f32_s'](f32(-3e9)) == 0x80000000
    assert OPS['i32.trunc_sat_f64_u'](f64(-5.0)) == 0
    assert OPS['i32.trunc_sat_f64_u'](INF64) == 0xFFFFFFFF
    assert OPS['i64.trunc_sat_f64_s'](0xFFF0000000000000) == 1 << 63
    assert OPS['i64.trunc_sat_f64_s'](INF64) == (1 << 63) - 1
    assert OPS['i64.trunc_sat_f32_u'](f32(2.0 ** 64)) == (1 << 64) - 1
    assert OPS['i64.trunc_sat_f32_u'](f32(-0.5)) == 0
    assert OPS['i64.trunc_sat_f64_s'](f64(-1.5)) == (1 << 64) - 1


def test_float_helpers():
    assert N.f32_to_bits(1e39) == INF32 and N.f32_to_bits(-1e39) == 0xFF800000
    assert N.f32_to_bits(1.0) == 0x3F800000
    assert N.f32_from_bits(0x3FC00000) == 1.5
    assert N.f64_to_bits(-0.0) == NEG0_64
    assert N.f64_from_bits(0x3FF8000000000000) == 1.5
    assert N.f32_is_nan(0xFF800001) and not N.f32_is_nan(0xFF800000)
    assert N.f64_is_nan(SNAN64) and not N.f64_is_nan(INF64)
    assert N.int_to_f32_bits(-(1 << 100)) == 0xF1800000


# --------------------------------------------------------------------------
# The official testsuite, evaluated on OPS

# Every assertion of these files must be evaluable and pass.
CORE_FILES = ['i32', 'i64', 'f32', 'f64', 'f32_bitwise', 'f64_bitwise',
              'f32_cmp', 'f64_cmp', 'conversions']
# Of these, only functions made of local.get / const / numeric ops are checked.
EXTRA_FILES = ['int_exprs', 'float_exprs', 'float_misc', 'int_literals',
               'float_literals']

_SIGS = {op.name: op.sig for op in opcodes.OPS}
_MASK = {'i32': N.M32, 'f32': N.M32, 'i64': N.M64, 'f64': N.M64}


def _parse_float(tok, t):
    """A float literal as wasm-tools prints it -> bit pattern of type t."""
    neg = tok.startswith('-')
    body = tok.lstrip('+-')
    bits, sign = (32, 0x80000000) if t == 'f32' else (64, 1 << 63)
    if body.startswith('nan'):
        expo = 0x7F800000 if t == 'f32' else 0x7FF0000000000000
        payload = int(body[6:], 16) if body.startswith('nan:') else (
            0x400000 if t == 'f32' else 1 << 51)
        return expo | payload | (sign if neg else 0)
    x = math.inf if body == 'inf' else float.fromhex(body)
    x = -x if neg else x
    return f32(x) if bits == 32 else f64(x)


def _functions(wasm_path):
    """export name -> (list of instrs) for functions of the simple shape."""
    text = subprocess.run(['wasm-tools', 'print', wasm_path], check=True,
                          capture_output=True, text=True).stdout
    exports, bodies, cur, nimported = {}, [], None, 0
    for line in text.splitlines():
        s = line.strip()
        if s.startswith('(export "') and '(func ' in s:
            name = json.loads(s[len('(export '):s.index(' (func')])
            exports[name] = int(s.rsplit('(func ', 1)[1].rstrip(')'))
        elif s.startswith('(import ') and '(func' in s:
            nimported += 1
        elif s.startswith('(func '):
            cur = []
            bodies.append(cur)
            names, nlocals = {}, 0    # $name -> local index, from the header
            for decl in re.findall(r'\((?:param|local)([^()]*)\)', s):
                toks = decl.split()
                if toks and toks[0].startswith('$'):
                    names[toks[0]] = nlocals
                    nlocals += 1
                else:
                    nlocals += len(toks)
            if s.count('(') == s.count(')'):    # one-line func: empty body
                cur = None
        elif cur is not None and s == ')':
            cur = None
        elif cur is not None:
            code = s.split(' (;', 1)[0].split()
            op = code[0]
            if op == 'local.get' and (code[1].isdigit() or code[1] in names):
                cur.append(('local', names.get(code[1]) if code[1] in names
                            else int(code[1])))
            elif op in ('i32.const', 'i64.const'):
                cur.append(('const', int(code[1]) & _MASK[op[:3]]))
            elif op in ('f32.const', 'f64.const'):
                cur.append(('const', _parse_float(code[1], op[:3])))
            elif op in OPS and len(code) == 1:
                cur.append(('op', OPS[op], len(_SIGS[op][0])))
            else:
                cur.append(('unsupported', s))
    funcs = {}
    for name, idx in exports.items():
        i = idx - nimported
        if 0 <= i < len(bodies) and all(k[0] != 'unsupported' for k in bodies[i]):
            funcs[name] = bodies[i]
    return funcs


def _run(body, args):
    stack = []
    for ins in body:
        if ins[0] == 'local':
            stack.append(args[ins[1]])
        elif ins[0] == 'const':
            stack.append(ins[1])
        else:
            n = ins[2]
            operands = stack[len(stack) - n:]
            del stack[len(stack) - n:]
            stack.append(ins[1](*operands))
    return stack


def _value(v):
    if v['type'] in _MASK and not str(v['value']).startswith('nan:'):
        return int(v['value']) & _MASK[v['type']]
    return None


def _matches(got, exp):
    t, val = exp['type'], exp['value']
    if val == 'nan:canonical':
        absmask, canon = ((N.F32_ABS, N.F32_CANON_NAN) if t == 'f32'
                          else (N.F64_ABS, N.F64_CANON_NAN))
        return got & absmask == canon
    if val == 'nan:arithmetic':
        q = N.F32_CANON_NAN if t == 'f32' else N.F64_CANON_NAN
        return got & q == q
    return got == int(val) & _MASK[t]


def _check_file(name, tmp_path):
    src = os.path.join(TESTSUITE, name + '.wast')
    out = tmp_path / 'out.json'
    subprocess.run(['wasm-tools', 'json-from-wast', src, '-o', str(out),
                    '--wasm-dir', str(tmp_path)], check=True, capture_output=True)
    commands = json.loads(out.read_text())['commands']
    files = [str(tmp_path / c['filename']) for c in commands if c['type'] == 'module']
    with concurrent.futures.ThreadPoolExecutor(8) as pool:   # one process each
        printed = dict(zip(files, pool.map(_functions, files)))
    funcs, named = {}, {}
    checked, skipped, failures = 0, 0, []
    for c in commands:
        if c['type'] == 'module':
            funcs = printed[str(tmp_path / c['filename'])]
            if 'name' in c:
                named[c['name']] = funcs
            continue
        if c['type'] not in ('assert_return', 'assert_trap'):
            continue
        act = c['action']
        body = (named.get(act['module']) if 'module' in act else funcs) or {}
        body = body.get(act.get('field')) if act['type'] == 'invoke' else None
        args = [_value(a) for a in act.get('args', [])]
        exps = c.get('expected', [])
        if body is None or None in args or any(e['type'] not in _MASK for e in exps):
            skipped += 1
            continue
        checked += 1
        where = f"{name}.wast:{c['line']} {act['field']}{tuple(hex(a) for a in args)}"
        try:
            got = _run(body, args)
        except Trap as e:
            if c['type'] != 'assert_trap' or e.message != c['text']:
                failures.append(f'{where}: trapped {e.message!r}')
            continue
        if c['type'] == 'assert_trap':
            failures.append(f"{where}: expected trap {c['text']!r}, got {got}")
        elif len(got) != len(exps) or not all(map(_matches, got, exps)):
            failures.append(f"{where}: got {[hex(g) for g in got]}, "
                            f"expected {[e['value'] for e in exps]}")
    return checked, skipped, failures


needs_wasm_tools = pytest.mark.skipif(shutil.which('wasm-tools') is None,
                                      reason='wasm-tools not installed')


@needs_wasm_tools
@pytest.mark.parametrize('name', CORE_FILES)
def test_testsuite_core(name, tmp_path):
    checked, skipped, failures = _check_file(name, tmp_path)
    assert not failures, '\n'.join(failures[:20])
    assert skipped == 0 and checked > 0


@needs_wasm_tools
@pytest.mark.parametrize('name', EXTRA_FILES)
def test_testsuite_simple_functions(name, tmp_path):
    checked, skipped, failures = _check_file(name, tmp_path)
    assert not failures, '\n'.join(failures[:20])


# --------------------------------------------------------------------------
# Differential check against wasmtime on random and special bit patterns.
# Floats cross the boundary as integers (reinterpret inside the module) so
# every bit, signalling NaNs included, reaches both engines unchanged.

_CARRIER = {'i32': 'i32', 'f32': 'i32', 'i64': 'i64', 'f64': 'i64'}
_SPECIAL32 = [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x3F800000,
              0xBF800000, 0x3F000000, 0xBF000000, 0x7F7FFFFF, 0x00800000,
              0x007FFFFF, INF32, 0xFF800000, CNAN32, 0xFFC00000, SNAN32,
              0x7F800001, 0x4F000000, 0xCF000000, 0x4F800000, 0x5F000000,
              0xDF000000, 0x5F800000, 0x4B000000, 0x4B800001, 31, 32, 33]
_SPECIAL64 = [0, 1, (1 << 63) - 1, 1 << 63, N.M64, 0x3FF0000000000000,
              0xBFF0000000000000, 0x3FE0000000000000, 0xBFE0000000000000,
              0x7FEFFFFFFFFFFFFF, 0x0010000000000000, INF64,
              0xFFF0000000000000, CNAN64, 0xFFF8000000000000, SNAN64,
              0x41E0000000000000, 0xC1E0000000000000, 0x41F0000000000000,
              0x43E0000000000000, 0xC3E0000000000000, 0x43F0000000000000,
              0x47EFFFFFE0000000, 0x47EFFFFFF0000000, 0x36A0000000000000,
              0xFFFFFFFF, 0x80000000, 63, 64, 65, 1 << 53 | 1,
              # int -> f32 ties that a detour through a double would break
              0x8000008000000001, 0x4000004000000001, 0xBFFFFFBFFFFFFFFF,
              0x0020000020000001]


def _is_nan(bits, t):
    return N.f32_is_nan(bits) if t == 'f32' else N.f64_is_nan(bits)


def _sample(t, rng):
    wide = t in ('i64', 'f64')
    r = rng.random()
    if r < 0.4:
        return rng.choice(_SPECIAL64 if wide else _SPECIAL32) & _MASK[t]
    if r < 0.6 and t[0] == 'f':             # small-ish ordinary floats
        x = rng.choice([-1, 1]) * rng.uniform(0, 2.0 ** rng.randint(-5, 70))
        return f64(x) if wide else N.f32_to_bits(x)
    return rng.getrandbits(64 if wide else 32)


@pytest.mark.skipif(pytest.importorskip('wasmtime') is None, reason='no wasmtime')
def test_against_wasmtime():
    import random
    import wasmtime
    names = sorted(OPS)
    funcs = []
    for i, name in enumerate(names):
        params, results = _SIGS[name]
        body = ''.join(
            f'(local.get {j})' if p[0] == 'i' else
            f'({p}.reinterpret_{_CARRIER[p]} (local.get {j}))'
            for j, p in enumerate(params))
        body = f'({name} {body})'
        if results[0][0] == 'f':
            body = f'({_CARRIER[results[0]]}.reinterpret_{results[0]} {body})'
        ps = ' '.join(_CARRIER[p] for p in params)
        funcs.append(f'(func (export "f{i}") (param {ps}) '
                     f'(result {_CARRIER[results[0]]}) {body})')
    store = wasmtime.Store()
    inst = wasmtime.Instance(
        store, wasmtime.Module(store.engine, '(module ' + '\n'.join(funcs) + ')'), [])
    exports = inst.exports(store)
    rng = random.Random(1234)
    failures = []
    for i, name in enumerate(names):
        params, results = _SIGS[name]
        rt = results[0]
        fn = exports[f'f{i}']
        for _ in range(300):
            args = [_sample(p, rng) for p in params]
            wargs = [N.signed(a, 32 if _CARRIER[p] == 'i32' else 64)
                     for a, p in zip(args, params)]
            try:
                want = fn(store, *wargs) & _MASK[rt]
            except wasmtime.Trap as e:
                want = str(e).rsplit('wasm trap: ', 1)[1].strip()
            try:
                got = OPS[name](*args)
            except Trap as e:
                got = e.message
            if rt[0] == 'f' and isinstance(want, int) and _is_nan(want, rt):
                # Spec: canonical NaN unless some NaN operand is not canonical,
                # then any arithmetic NaN (quiet bit set).
                canon = N.F32_CANON_NAN if rt == 'f32' else N.F64_CANON_NAN
                absm = N.F32_ABS if rt == 'f32' else N.F64_ABS
                nan_in = [a & (N.F32_ABS if p == 'f32' else N.F64_ABS) ==
                          (N.F32_CANON_NAN if p == 'f32' else N.F64_CANON_NAN)
                          for a, p in zip(args, params)
                          if p[0] == 'f' and _is_nan(a, p)]
                bitwise = (name.split('.')[1] in ('abs', 'neg', 'copysign')
                           or 'reinterpret' in name)
                if bitwise:
                    ok = got == want
                elif all(nan_in):                 # only canonical NaNs in
                    ok = isinstance(got, int) and got & absm == canon
                else:
                    ok = isinstance(got, int) and got & canon == canon
            else:
                ok = got == want
            if not ok:
                failures.append(f'{name}{tuple(hex(a) for a in args)}: '
                                f'got {got if isinstance(got, str) else hex(got)}, '
                                f'wasmtime {want if isinstance(want, str) else hex(want)}')
    assert not failures, '\n'.join(failures[:30])
