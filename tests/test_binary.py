"""Binary decoder: hand-made edge cases checked against the spec text and
wasmtime's assembler, then the official testsuite (every binary
assert_malformed must fail with the expected message, every other binary
module must decode) and a cross-check of decoded instructions against
``wasm-tools print``."""

import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from engine import syntax as S
from engine import binary
from engine.binary import decode_module
from engine.errors import DecodeError
from engine.opcodes import BY_NAME

wasmtime = pytest.importorskip('wasmtime')

HEADER = b'\x00asm\x01\x00\x00\x00'


def wat(text):
    return decode_module(wasmtime.wat2wasm(text))


def sec(sid, payload):
    """A section with a one-byte size (payloads here are short)."""
    assert len(payload) < 128
    return bytes([sid, len(payload)]) + payload


def vec(*items):
    return bytes([len(items)]) + b''.join(items)


def malformed(data, message, standard=3):
    with pytest.raises(DecodeError) as e:
        decode_module(data, standard=standard)
    assert e.value.message.startswith(message), e.value
    return e.value


TYPE0 = sec(1, vec(b'\x60\x00\x00'))                 # type 0: [] -> []
FUNC0 = sec(3, vec(b'\x00'))                          # one function of type 0


def code(*bodies):
    """Code section; each body is (local decl bytes, instruction bytes)."""
    entries = []
    for locs, instrs in bodies:
        b = locs + instrs
        entries.append(bytes([len(b)]) + b)
    return sec(10, vec(*entries))


# ------------------------------------------------------------------ LEB128

@pytest.mark.parametrize('raw, n, value', [
    (b'\x00', 32, 0), (b'\x7f', 32, 127), (b'\x80\x01', 32, 128),
    (b'\x80\x80\x80\x80\x00', 32, 0),                 # overlong but 5 bytes: fine
    (b'\xff\xff\xff\xff\x0f', 32, 0xFFFFFFFF),
    (b'\x01', 1, 1),                                   # limits flag (vu1)
])
def test_unsigned_leb(raw, n, value):
    assert binary._uN(raw, 0, n) == (value, len(raw))


def test_u1_fits_one_byte():
    # a continuation bit on a 1-bit field leaves no bits for a second byte
    with pytest.raises(DecodeError, match='integer representation too long'):
        binary._uN(b'\x80\x00', 0, 1)
    with pytest.raises(DecodeError, match='integer too large'):
        binary._uN(b'\x02', 0, 1)


@pytest.mark.parametrize('raw, message', [
    (b'\x80\x80\x80\x80\x80\x00', 'integer representation too long'),
    (b'\xff\xff\xff\xff\x1f', 'integer too large'),   # bit 32 set
    (b'\x80\x80\x80\x80\x10', 'integer too large'),
    (b'\x80\x80\x80\x80\x70', 'integer too large'),
])
def test_unsigned_leb_errors(raw, message):
    with pytest.raises(DecodeError) as e:
        binary._uN(raw, 0, 32)
    assert e.value.message == message


@pytest.mark.parametrize('raw, n, value', [
    (b'\x7f', 32, -1), (b'\x40', 32, -64), (b'\x3f', 32, 63),
    (b'\xff\xff\xff\xff\x07', 32, 0x7FFFFFFF),
    (b'\x80\x80\x80\x80\x78', 32, -0x80000000),
    (b'\xff\xff\xff\xff\x7f', 32, -1),                # overlong -1
    (b'\x80\x80\x80\x80\x80\x80\x80\x80\x80\x7f', 64, -(1 << 63)),
    (b'\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00', 64, (1 << 63) - 1),
    (b'\xff\xff\xff\xff\x0f', 33, 0xFFFFFFFF),        # s33 block type index
])
def test_signed_leb(raw, n, value):
    assert binary._sN(raw, 0, n) == (value, len(raw))


@pytest.mark.parametrize('raw, n, message', [
    (b'\xff\xff\xff\xff\x0f', 32, 'integer too large'),      # sign bits disagree
    (b'\x80\x80\x80\x80\x70', 32, 'integer too large'),
    (b'\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01', 64, 'integer too large'),
    (b'\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00', 64,
     'integer representation too long'),
])
def test_signed_leb_errors(raw, n, message):
    with pytest.raises(DecodeError) as e:
        binary._sN(raw, 0, n)
    assert e.value.message == message


def test_truncated_leb_is_unexpected_end():
    malformed(HEADER + b'\x01\x80', 'unexpected end')          # section size cut short
    # i32.const whose LEB operand runs off the end of the module
    malformed(HEADER + TYPE0 + FUNC0 + b'\x0a\x05\x01\x03\x00\x41\x80',
              'unexpected end of section or function')


# ------------------------------------------------------------------ header and sections

def test_header():
    malformed(b'', 'unexpected end')
    malformed(b'\x00as', 'unexpected end')
    malformed(b'\x00asm', 'unexpected end')
    malformed(b'asm\x00\x01\x00\x00\x00', 'magic header not detected')
    malformed(b'\x00asm\x02\x00\x00\x00', 'unknown binary version')
    m = decode_module(HEADER)
    assert m.types == [] and m.funcs == [] and m.start is None


def test_section_order_duplicates_and_ids():
    malformed(HEADER + FUNC0 + TYPE0, 'unexpected content after last section')
    malformed(HEADER + TYPE0 + TYPE0, 'unexpected content after last section')
    malformed(HEADER + b'\x0e\x00', 'malformed section id')    # 13 is the tag section (3.0)
    malformed(HEADER + b'\x01\x05\x00', 'length out of bounds')
    malformed(HEADER + sec(1, b'\x01\x60\x00\x00\x00'), 'section size mismatch')
    # data count (12) goes between element (9) and code (10)
    m = decode_module(HEADER + sec(12, b'\x00') + sec(10, b'\x00'))
    assert m.datacount == 0
    malformed(HEADER + sec(10, b'\x00') + sec(12, b'\x00'),
              'unexpected content after last section')


def test_custom_sections_anywhere():
    c1 = sec(0, b'\x03abc' + b'xyz')
    c2 = sec(0, b'\x00')
    m = decode_module(HEADER + c1 + TYPE0 + c2 + FUNC0 + c1
                      + code((b'\x00', b'\x0b')) + c2)
    assert m.customs == [('abc', b'xyz'), ('', b''), ('abc', b'xyz'), ('', b'')]
    malformed(HEADER + sec(0, b'\x02\xff\xfe'), 'malformed UTF-8 encoding')
    malformed(HEADER + b'\x00\x01\x05abcde', 'unexpected end')   # name longer than section


def test_error_location_names_byte_and_section():
    e = malformed(HEADER + TYPE0 + sec(3, vec(b'\x80\x80\x80\x80\x10')),
                  'integer too large')
    assert 'function section' in e.where and 'byte 0x' in e.where


# ------------------------------------------------------------------ functions and code

def test_body_offsets_locals_and_bytes():
    locs = b'\x02\x02\x7f\x01\x7e'              # 2 x i32, 1 x i64
    instrs = b'\x41\x7f\x1a\x02\x40\x0b\x0b'      # i32.const -1; drop; block; end; end
    m = decode_module(HEADER + TYPE0 + FUNC0 + code((locs, instrs)))
    f = m.funcs[0]
    assert f.typeidx == 0
    assert f.locals == ['i32', 'i32', 'i64']
    assert f.body_bytes == instrs
    assert [(i.op, i.imm, i.offset, i.end) for i in f.body] == [
        ('i32.const', 0xFFFFFFFF, 0, 2), ('drop', None, 2, 3),
        ('block', None, 3, 5), ('end', None, 5, 6), ('end', None, 6, 7)]


def test_too_many_locals():
    big = b'\xff\xff\xff\xff\x0f\x7f'          # 2**32 - 1 locals
    one = b'\x01\x7e'
    malformed(HEADER + TYPE0 + FUNC0 + code((b'\x02' + big + one, b'\x0b')),
              'too many locals')


def test_function_and_code_counts():
    malformed(HEADER + TYPE0 + FUNC0, 'function and code section have inconsistent lengths')
    malformed(HEADER + TYPE0 + code((b'\x00', b'\x0b')),
              'function and code section have inconsistent lengths')


def test_body_structure_errors():
    # an 'else' outside an 'if' ends the block; the reference then wants 0x0B
    malformed(HEADER + TYPE0 + FUNC0 + code((b'\x00', b'\x02\x40\x05\x0b\x0b')),
              'END opcode expected')
    malformed(HEADER + TYPE0 + FUNC0 + code((b'\x00', b'\x04\x40\x05\x05\x0b\x0b')),
              'END opcode expected')
    malformed(HEADER + TYPE0 + FUNC0 + code((b'\x00', b'\x27\x0b')), 'illegal opcode')
    malformed(HEADER + TYPE0 + FUNC0 + code((b'\x00', b'\xfc\x12\x0b')), 'illegal opcode')
    malformed(HEADER + TYPE0 + FUNC0 + code((b'\x00', b'\xfd\x9a\x01\x0b')), 'illegal opcode')
    # body shorter than the instructions: decoding runs on, size is checked after
    malformed(HEADER + TYPE0 + FUNC0 + b'\x0a\x04\x01\x02\x00\x01\x0b',
              'section size mismatch')
    malformed(HEADER + TYPE0 + FUNC0 + b'\x0a\x04\x01\x02\x00\x01',
              'unexpected end of section or function')


def test_memory_zero_bytes_and_memop_flags():
    mem = sec(5, vec(b'\x00\x01'))
    def body(instrs):
        return HEADER + TYPE0 + FUNC0 + mem + code((b'\x00', instrs))
    # Wasm 2.0: reserved zero bytes, alignment exponents below 32
    malformed(body(b'\x3f\x01\x1a\x0b'), 'zero byte expected', 2)
    malformed(body(b'\x41\x00\x40\x80\x00\x1a\x0b'), 'zero byte expected', 2)
    malformed(body(b'\x41\x00\x28\x20\x00\x1a\x0b'), 'malformed memop flags', 2)
    m = decode_module(body(b'\x41\x00\x28\x1f\x80\x01\x1a\x0b'))
    assert m.funcs[0].body[1].imm == (31, 128)       # too-large alignment is a validation error
    # Wasm 3.0 (multi-memory): memory indices; flag bit 6 puts one in the memarg
    assert decode_module(body(b'\x3f\x01\x1a\x0b')).funcs[0].body[0].imm == 1
    assert decode_module(body(b'\x41\x00\x28\x20\x00\x1a\x0b')).funcs[0].body[1].imm == (32, 0)
    assert decode_module(body(b'\x41\x00\x28\x42\x02\x07\x1a\x0b')).funcs[0].body[1].imm == (2, 7, 2)
    assert decode_module(body(b'\x41\x00\x28\x42\x00\x07\x1a\x0b')).funcs[0].body[1].imm == (2, 7)
    malformed(body(b'\x41\x00\x28\x80\x01\x00\x1a\x0b'), 'malformed memop flags')
    # memory64: u64 offsets; limits flags 4/5 (i64 address type), others malformed
    m = decode_module(body(b'\x41\x00\x28\x02\x80\x80\x80\x80\x10\x1a\x0b'))
    assert m.funcs[0].body[1].imm == (2, 1 << 32)
    m = decode_module(HEADER + sec(5, vec(b'\x05\x01\x80\x80\x04')))
    assert m.mems[0].type == S.MemType(S.Limits(1, 1 << 16), S.I64)
    malformed(HEADER + sec(5, vec(b'\x03\x01\x02')), 'malformed limits flags')
    malformed(HEADER + sec(5, vec(b'\x03\x01\x02')), 'integer too large', 2)


def test_immediates_match_wat():
    m = wat('''(module (memory 1) (table 2 funcref) (type $t (func (param i32) (result i32)))
      (func (param i32) (result i32)
        i64.const -2 drop
        f32.const nan:0x200001 drop
        f64.const -0x0p+0 drop
        v128.const i32x4 1 2 3 0xffffffff drop
        i32.const 7 i32.const 8 local.get 0 select (result i32) drop
        (block (type $t) (local.get 0)) drop
        (block (result i64) (i64.const 1)) drop
        local.get 0 i32.load16_u offset=12 align=1 drop
        i32.const 0 v128.const i64x2 0 0 v128.load32_lane offset=4 3 drop
        v128.const i64x2 0 0 v128.const i64x2 0 0
        i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 31 drop
        i32.const 0 i32.const 0 i32.const 0 memory.copy
        ref.null extern drop
        local.get 0 call_indirect 0 (type $t) drop
        (br_table 0 0 0 (local.get 0))))''')
    imms = [(i.op, i.imm) for i in m.funcs[0].body if i.op != 'drop']
    assert ('i64.const', 0xFFFFFFFFFFFFFFFE) in imms
    assert ('f32.const', 0x7FA00001) in imms
    assert ('f64.const', 0x8000000000000000) in imms
    assert ('v128.const', 1 | 2 << 32 | 3 << 64 | 0xFFFFFFFF << 96) in imms
    assert ('select', ('i32',)) in imms
    assert ('block', 0) in imms and ('block', 'i64') in imms
    assert ('i32.load16_u', (0, 12)) in imms
    assert ('v128.load32_lane', (2, 4, 3)) in imms
    assert ('i8x16.shuffle', tuple(range(15)) + (31,)) in imms
    assert ('memory.copy', (0, 0)) in imms
    assert ('ref.null', 'externref') in imms
    assert ('call_indirect', (0, 0)) in imms
    assert ('br_table', ((0, 0), 0)) in imms
    assert m.funcs[0].body[-1].op == 'end'


def test_prefixed_subopcode_is_u32_leb():
    # 0xFD 0x80 0x01 = sub-opcode 128 (i16x8.abs); overlong 0xFC 0x88 0x00 = 8 (memory.init)
    mem = sec(5, vec(b'\x00\x01'))
    data = HEADER + TYPE0 + FUNC0 + mem + sec(12, b'\x01') + code(
        (b'\x00', b'\xfd\x0c' + bytes(16) + b'\xfd\x80\x01\x1a'
         b'\x41\x00\x41\x00\x41\x00\xfc\x88\x00\x00\x00\x0b')) + sec(11, vec(b'\x01\x00'))
    ops = [(i.op, i.imm) for i in decode_module(data).funcs[0].body]
    assert ('i16x8.abs', None) in ops and ('memory.init', 0) in ops


def test_data_count_required_and_consistent():
    mem = sec(5, vec(b'\x00\x01'))
    drop = code((b'\x00', b'\xfc\x09\x00\x0b'))          # data.drop 0
    passive = sec(11, vec(b'\x01\x00'))
    malformed(HEADER + TYPE0 + FUNC0 + mem + drop + passive, 'data count section required')
    m = decode_module(HEADER + TYPE0 + FUNC0 + mem + sec(12, b'\x01') + drop + passive)
    assert m.funcs[0].body[0].op == 'data.drop' and m.datacount == 1
    malformed(HEADER + mem + sec(12, b'\x02') + passive,
              'data count and data section have inconsistent lengths')
    malformed(HEADER + mem + sec(12, b'\x01'),
              'data count and data section have inconsistent lengths')


# ------------------------------------------------------------------ element and data segments

OFF0 = b'\x41\x00\x0b'


@pytest.mark.parametrize('payload, mode, table, etype, n, has_offset', [
    # segments of function indices hold (ref func) (Wasm 3.0), expressions their own type
    (b'\x00' + OFF0 + b'\x02\x00\x01', 'active', 0, '(ref func)', 2, True),
    (b'\x01\x00\x01\x01', 'passive', 0, '(ref func)', 1, False),
    (b'\x02\x01' + OFF0 + b'\x00\x01\x00', 'active', 1, '(ref func)', 1, True),
    (b'\x03\x00\x02\x00\x01', 'declarative', 0, '(ref func)', 2, False),
    (b'\x04' + OFF0 + b'\x02\xd2\x00\x0b\xd0\x70\x0b', 'active', 0, 'funcref', 2, True),
    (b'\x05\x6f\x01\xd0\x6f\x0b', 'passive', 0, 'externref', 1, False),
    (b'\x06\x01' + OFF0 + b'\x70\x01\xd2\x01\x0b', 'active', 1, 'funcref', 1, True),
    (b'\x07\x70\x01\xd2\x00\x0b', 'declarative', 0, 'funcref', 1, False),
])
def test_element_encodings(payload, mode, table, etype, n, has_offset):
    m = decode_module(HEADER + sec(9, b'\x01' + payload))
    (e,) = m.elems
    assert (e.mode, e.table, e.type, len(e.init)) == (mode, table, etype, n)
    assert (e.offset is not None) == has_offset
    if has_offset:
        assert [(i.op, i.imm) for i in e.offset] == [('i32.const', 0), ('end', None)]
    for expr in e.init:
        assert expr[-1].op == 'end' and expr[0].op in ('ref.func', 'ref.null')
    if payload[0] in (0, 1, 3):
        assert [ex[0].imm for ex in e.init] == list(payload[-n:])


def test_element_encodings_agree_with_wat():
    m = wat('''(module (table $a 1 funcref) (table $b 1 funcref) (func $f)
      (elem (table $b) (i32.const 0) func $f $f)
      (elem declare func $f)
      (elem funcref (ref.null func) (ref.func $f)))''')
    assert [(e.mode, e.table, len(e.init)) for e in m.elems] == [
        ('active', 1, 2), ('declarative', 0, 1), ('passive', 0, 2)]
    assert [[i.op for i in ex] for ex in m.elems[2].init] == [
        ['ref.null', 'end'], ['ref.func', 'end']]


def test_element_errors():
    malformed(HEADER + sec(9, b'\x01\x01\x01\x00'), 'malformed element kind')
    malformed(HEADER + sec(9, b'\x01\x05\x7f\x00'), 'malformed reference type')
    malformed(HEADER + sec(9, b'\x01\x08'), 'malformed elements segment kind')


@pytest.mark.parametrize('payload, mode, memory, init', [
    (b'\x00' + OFF0 + b'\x02hi', 'active', 0, b'hi'),
    (b'\x01\x03abc', 'passive', 0, b'abc'),
    (b'\x02\x00' + OFF0 + b'\x00', 'active', 0, b''),
])
def test_data_encodings(payload, mode, memory, init):
    m = decode_module(HEADER + sec(11, b'\x01' + payload))
    (d,) = m.datas
    assert (d.mode, d.memory, d.init) == (mode, memory, init)
    assert (d.offset is None) == (mode == 'passive')


def test_data_errors():
    malformed(HEADER + sec(11, b'\x01\x03'), 'malformed data segment kind')
    malformed(HEADER + sec(11, b'\x01\x01\x05ab'), 'length out of bounds')
    malformed(HEADER + b'\x0b\x03\x01\x00\x41', 'unexpected end of section or function')


# ------------------------------------------------------------------ imports, exports, globals, types

def test_imports_exports_globals_limits():
    m = wat('''(module (type (func))
      (import "m" "f" (func (type 0)))
      (import "m" "t" (table 1 2 externref))
      (import "m" "mem" (memory 3))
      (import "m" "g" (global (mut f64)))
      (global $g i64 (i64.const 5))
      (export "e" (global $g)) (start 0))''')
    assert [(i.module, i.name, i.kind) for i in m.imports] == [
        ('m', 'f', 'func'), ('m', 't', 'table'), ('m', 'mem', 'memory'), ('m', 'g', 'global')]
    assert m.imports[0].desc == 0
    assert m.imports[1].desc.limits.max == 2 and m.imports[1].desc.elemtype == 'externref'
    assert m.imports[2].desc.limits.min == 3 and m.imports[2].desc.limits.max is None
    assert m.imports[3].desc.mut and m.imports[3].desc.valtype == 'f64'
    assert [(i.op, i.imm) for i in m.globals[0].init] == [('i64.const', 5), ('end', None)]
    assert (m.exports[0].name, m.exports[0].kind, m.exports[0].index) == ('e', 'global', 1)
    assert m.start == 0
    malformed(HEADER + sec(2, vec(b'\x01m\x01f\x05\x00')), 'malformed import kind')   # 4: tag (3.0)
    malformed(HEADER + sec(6, vec(b'\x7f\x02\x41\x00\x0b')), 'malformed mutability')
    malformed(HEADER + sec(5, vec(b'\x02\x00')), 'integer too large', 2)
    malformed(HEADER + sec(4, vec(b'\x70\x81\x00\x00')), 'integer representation too long', 2)
    malformed(HEADER + sec(5, vec(b'\x02\x00')), 'malformed limits flags')     # Wasm 3.0
    malformed(HEADER + sec(4, vec(b'\x70\x81\x00\x00')), 'malformed limits flags')
    malformed(HEADER + sec(1, vec(b'\x60\x01\x40\x00')), 'malformed value type')
    malformed(HEADER + sec(1, vec(b'\xe0\x7f\x00\x00')), 'integer representation too long')


# ------------------------------------------------------------------ the official testsuite

def suite_dir():
    root = os.environ.get('WASM_TESTSUITE') or os.path.join(
        os.path.dirname(__file__), '..', '..', 'shared', 'testsuite')
    for d in (os.path.join(root, 'wasm-2.0'), root):
        if os.path.isdir(d) and any(f.endswith('.wast') for f in os.listdir(d)):
            return d
    return None


def _convert(args):
    wast, out = args
    name = os.path.basename(wast)[:-5]
    wasm_dir = os.path.join(out, name)
    os.makedirs(wasm_dir, exist_ok=True)
    js = os.path.join(wasm_dir, name + '.json')
    if shutil.which('wasm-tools'):
        cmd = ['wasm-tools', 'json-from-wast', wast, '-o', js, '--wasm-dir', wasm_dir]
    else:
        cmd = ['wast2json', wast, '-o', js]
    r = subprocess.run(cmd, capture_output=True)
    if r.returncode != 0 or not os.path.exists(js):
        return name, None, None
    return name, js, os.path.dirname(js)


@pytest.fixture(scope='session')
def suite(tmp_path_factory):
    d = suite_dir()
    if d is None:
        pytest.skip('spec testsuite not found (set WASM_TESTSUITE)')
    if not (shutil.which('wasm-tools') or shutil.which('wast2json')):
        pytest.skip('neither wasm-tools nor wast2json installed')
    out = str(tmp_path_factory.mktemp('wast-json'))
    wasts = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith('.wast'))
    with ThreadPoolExecutor(8) as pool:
        converted = list(pool.map(_convert, [(w, out) for w in wasts]))
    result = {}
    for name, js, base in converted:
        if js is not None:
            with open(js) as fh:
                result[name] = (json.load(fh)['commands'], base)
    return result


def binary_modules(commands, base):
    """(command, bytes) for every command that carries a binary module."""
    for c in commands:
        fn = c.get('binary_filename') or c.get('filename')
        if not fn or not fn.endswith('.wasm'):
            continue
        if c['type'] == 'assert_malformed' and c.get('module_type') != 'binary':
            continue
        with open(os.path.join(base, fn), 'rb') as fh:
            yield c, fh.read()


def check_file(suite, name):
    bad = []
    counts = {'malformed': 0, 'decoded': 0}
    commands, base = suite[name]
    for c, data in binary_modules(commands, base):
        if c['type'] == 'assert_malformed':
            counts['malformed'] += 1
            try:
                decode_module(data, standard=2)   # the 2.0 suite
                bad.append((c['line'], c['text'], 'decoded'))
            except DecodeError as e:
                if not e.message.startswith(c['text']):
                    bad.append((c['line'], c['text'], str(e)))
        else:
            counts['decoded'] += 1
            try:
                decode_module(data, standard=2)
            except DecodeError as e:
                bad.append((c['line'], c['type'], str(e)))
    return counts, bad


@pytest.mark.parametrize('name', ['binary', 'binary-leb128', 'custom'])
def test_suite_binary_files(suite, name):
    if name not in suite:
        pytest.skip(f'{name}.wast not converted')
    counts, bad = check_file(suite, name)
    assert counts['malformed'] > 0 and counts['decoded'] > 0
    assert bad == []


def test_suite_all_files_decode(suite):
    """Every binary module of every 2.0 script (module, assert_invalid,
    assert_unlinkable, assert_uninstantiable, assert_return's modules)
    decodes, and every binary assert_malformed fails with its text."""
    total = {'malformed': 0, 'decoded': 0}
    bad = []
    for name in sorted(suite):
        counts, b = check_file(suite, name)
        for k in total:
            total[k] += counts[k]
        bad += [(name,) + x for x in b]
    print(f'\nsuite: {total["decoded"]} modules decoded, '
          f'{total["malformed"]} malformed binaries rejected, {len(bad)} failures')
    assert total['decoded'] > 3000 and total['malformed'] > 700
    assert bad == []


# ------------------------------------------------------------------ cross-check against wasm-tools print

def _s(v, bits):
    return v - (1 << bits) if v >> (bits - 1) else v


def render(i):
    """Our Instr in wasm-tools' text syntax, or None where the text form is
    not canonical enough to compare (floats, block types)."""
    op, imm = i.op, i.imm
    kind = 'select_t' if op == 'select' and imm else BY_NAME[op].imm
    if kind in ('localidx', 'labelidx', 'funcidx', 'globalidx', 'elemidx',
                'dataidx', 'lane', 'tableidx', 'memory.init'):
        return f'{op} {imm}'
    if kind == 'i32':
        return f'{op} {_s(imm, 32)}'
    if kind == 'i64':
        return f'{op} {_s(imm, 64)}'
    if kind in ('memarg', 'memarg_lane'):
        parts = [op]
        if imm[1]:
            parts.append(f'offset={imm[1]}')
        if 1 << imm[0] != BY_NAME[op].width:
            parts.append(f'align={1 << imm[0]}')
        if kind == 'memarg_lane':
            parts.append(str(imm[2]))
        return ' '.join(parts)
    if kind == 'shuffle':
        return op + ' ' + ' '.join(map(str, imm))
    if kind == 'br_table':
        return op + ' ' + ' '.join(map(str, imm[0] + (imm[1],)))
    if kind == 'call_indirect':
        return f'{op} {imm[1]} (type {imm[0]})' if imm[1] else f'{op} (type {imm[0]})'
    if kind == 'table.init':
        return f'{op} {imm[1]} {imm[0]}' if imm[1] else f'{op} {imm[0]}'
    if kind == 'table.copy':
        return f'{op} {imm[0]} {imm[1]}' if imm != (0, 0) else op
    if kind == 'reftype':
        return f'{op} {imm[:-3]}'
    if kind == 'select_t':
        return f'{op} (result {" ".join(imm)})'
    if kind is None or kind in ('memidx', 'memory.copy'):
        return op
    return None


def printed_bodies(data):
    stripped = subprocess.run(['wasm-tools', 'strip', '-a', '-'], input=data,
                              capture_output=True, check=True).stdout
    text = subprocess.run(['wasm-tools', 'print', '-'], input=stripped,
                          capture_output=True, check=True).stdout.decode()
    funcs, cur = [], None
    for line in text.split('\n'):
        if line.startswith('  (func '):
            cur = []
            funcs.append(cur)
            if line.endswith(')') and line.count('(') == line.count(')'):
                cur = None
            continue
        if cur is not None:
            if line == '  )':
                cur = None
                continue
            line = re.sub(r'\s+', ' ', re.sub(r'\(;.*?;\)', '', line)).strip()
            if not line.startswith('(local '):
                cur.append(line)
    return funcs


@pytest.mark.parametrize('name', ['simd_lane', 'simd_load8_lane', 'simd_store64_lane', 'bulk', 'br_table',
                                  'select', 'memory_copy', 'table_copy', 'ref_func',
                                  'i64', 'address', 'call_indirect'])
def test_instructions_agree_with_wasm_tools_print(suite, name):
    if not shutil.which('wasm-tools') or name not in suite:
        pytest.skip('wasm-tools or script missing')
    commands, base = suite[name]
    checked = 0
    modules = [(c, d) for c, d in binary_modules(commands, base)
               if c['type'] in ('module', 'assert_unlinkable', 'assert_uninstantiable')]
    for c, data in modules[:12]:     # wasm-tools runs per module: keep the sample small
        m = decode_module(data)
        funcs = printed_bodies(data)
        assert len(funcs) == len(m.funcs)
        for f, lines in zip(m.funcs, funcs):
            assert f.body[-1].op == 'end' and f.body[-1].end == len(f.body_bytes)
            ours = f.body[:-1]
            assert len(ours) == len(lines), (c['line'], lines)
            for instr, line in zip(ours, lines):
                assert line.split(' ')[0] == instr.op
                r = render(instr)
                if r is not None and instr.op not in ('block', 'loop', 'if'):
                    assert r == line, (c['line'], instr)
                checked += 1
    assert checked > 0


# ------------------------------------------------------------------ robustness

from hypothesis import given, settings, strategies as st   # noqa: E402

SEED_MODULE = wasmtime.wat2wasm('''(module (memory 1) (table 1 funcref)
  (global (mut i32) (i32.const 1)) (data (i32.const 0) "ab") (elem (i32.const 0) 0)
  (func (export "f") (param i32) (result i32) (local i64 v128)
    (block (result i32) (if (result i32) (local.get 0) (then (i32.const 1)) (else (i32.const 2))))
    (br_table 0 0 (local.get 0)) drop
    (v128.const i32x4 1 2 3 4) (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 (local.get 2))
    (i32x4.extract_lane 1) (i32.load offset=4 (i32.const 0)) i32.add))''')


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_modules_only_raise_decode_errors(data):
    """No truncation or byte flip may escape as IndexError etc."""
    b = bytearray(SEED_MODULE)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(b) - 1))
        b[i] = data.draw(st.integers(0, 255))
    b = bytes(b[:data.draw(st.integers(0, len(b)))])
    try:
        decode_module(b)
    except DecodeError:
        pass


def test_huge_local_count_is_rejected_not_allocated():
    decl = b'\x01\xff\xff\xff\xff\x0f\x7f'      # 2**32 - 1 locals: within the spec's bound
    e = malformed(HEADER + TYPE0 + FUNC0 + code((decl, b'\x0b')), 'too many locals')
    assert 'implementation limit' in e.message
