"""The runtime-neutral on-disk form (neutral.json): round trips through it
at every instruction of a program resume to the hand-computed results,
labels equal hand-derived spec labels, every corrupted field is refused
with its path named, and the command line reads and writes it.
"""

import copy
import json
import os
import subprocess
import sys

import pytest
import wasmtime

from engine.migrate import checkpoint, images as im, neutral
from engine import cli, embedding
from engine.syntax import ExternRef
from engine.migrate.translate import images_from_snapshot, snapshot_from_images

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Nested block/loop/if, call, call_indirect through a table that the run
# rewrites with a funcref local, br_table, and locals of every kind.
PROGRAM = '''
(module
  (type $t (func (param i32) (result i32)))
  (memory 1)
  (table $tab 2 funcref)
  (global $g (mut externref) (ref.null extern))
  (elem (i32.const 0) $sq $inc)
  (func $sq (type $t) (i32.mul (local.get 0) (local.get 0)))
  (func $inc (type $t) (i32.add (local.get 0) (i32.const 1)))
  (func $pick (param $k i32) (result i64)
    (local $r i64)
    (block $out
      (block $b2
        (block $b1
          (block $b0
            (br_table $b0 $b1 $b2 (i32.rem_u (local.get $k) (i32.const 3))))
          (local.set $r (i64.const 100))
          (br $out))
        (local.set $r (i64.shl (i64.extend_i32_u (local.get $k)) (i64.const 32)))
        (br $out))
      (local.set $r (i64.const -1)))
    (local.get $r))
  (func (export "run") (param $n i32) (param $e externref)
        (result i64 f64 v128 i32 externref)
    (local $acc i64) (local $f f64) (local $v v128) (local $fr funcref) (local $i i32)
    (global.set $g (local.get $e))
    (local.set $fr (ref.func $sq))
    (local.set $f (f64.const 0.5))
    (local.set $v (v128.const i32x4 1 2 3 4))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.and (local.get $i) (i32.const 1))
          (then
            (local.set $acc (i64.add (local.get $acc) (call $pick (local.get $i))))
            (if (i32.eq (local.get $i) (i32.const 3))
              (then (table.set $tab (i32.const 1) (local.get $fr)))))
          (else
            (local.set $f (f64.add (local.get $f) (f64.convert_i32_u
              (call_indirect (type $t) (local.get $i)
                (i32.and (i32.shr_u (local.get $i) (i32.const 1)) (i32.const 1))))))))
        (i64.store (i32.mul (local.get $i) (i32.const 8)) (local.get $acc))
        (local.set $v (i32x4.add (local.get $v) (local.get $v)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (local.get $acc) (local.get $f) (local.get $v) (local.get $i) (global.get $g)))
'''
# By hand, run(8, extern 7):
#  odd i: $pick(1) = 1<<32, $pick(3) = 100, $pick(5) = -1, $pick(7) = 7<<32;
#         after i = 3 table[1] holds $sq instead of $inc
#  even i: table[(i>>1)&1](i): $sq(0) = 0, $inc(2) = 3, $sq(4) = 16, $sq(6) = 36
#  v doubles 8 times.
EXPECTED = [(8 << 32) + 99,                                     # i64 (wrapping)
            0x404BC00000000000,                                 # f64 55.5 = 0.5+0+3+16+36
            (256 | 512 << 32 | 768 << 64 | 1024 << 96),         # v128 i32x4 256 512 768 1024
            8, ExternRef(7)]
ARGS = [8, ExternRef(7)]


@pytest.fixture(scope='module')
def wasm():
    return wasmtime.wat2wasm(PROGRAM)


def instance(runtime, wasm):
    store = embedding.store_init(runtime)
    inst = cli.instantiate(store, wasm, 'program.wasm', run_start=False)
    return store, inst


def started(runtime, wasm):
    store, inst = instance(runtime, wasm)
    ex = store.new_executor()
    ex.start(inst.exports['run'][1], ARGS)
    return ex, inst


def test_hand_computed_results_hold(wasm):
    assert 55.5 == 0.5 + 0 + 3 + 16 + 36
    import struct
    assert struct.unpack('<Q', struct.pack('<d', 55.5))[0] == EXPECTED[1]
    for runtime in im.RUNTIMES:
        ex, _ = started(runtime, wasm)
        assert ex.run() and ex.results == EXPECTED


@pytest.mark.parametrize('src,dst', [('wamr', 'wasmedge'), ('wasmedge', 'wamr')])
def test_round_trip_through_neutral_json_at_every_step(wasm, src, dst):
    """src images -> neutral.json text -> dst images -> restore finishes
    with the uninterrupted results, at every instruction; and the neutral
    form loses nothing: back to src images gives the very same set."""
    sha = im.module_sha256(wasm)
    ex, inst = started(src, wasm)
    stops = 0
    while True:                     # a stop before each instruction, the first one included
        images = checkpoint.save(ex, inst, sha, 'run', ['i64', 'f64', 'v128', 'i32', 'externref'])
        snap = snapshot_from_images(images, inst.module, inst.info)
        text = neutral.dumps(neutral.document_from_snapshot(snap, inst.module, inst.info, sha))
        doc = neutral.loads(text)
        store2, inst2 = instance(dst, wasm)
        back = neutral.snapshot_from_document(doc, inst2.module, inst2.info)
        again = images_from_snapshot(back, inst2.module, inst2.info, src, sha)
        assert again == images, f'step {ex.steps}'
        ex2 = checkpoint.restore(store2, inst2,
                                 images_from_snapshot(back, inst2.module, inst2.info, dst, sha))
        assert ex2.run() and ex2.results == EXPECTED, f'step {ex.steps}'
        stops += 1
        if ex.run(1):
            break
    # WasmEdge counts the 'else' a false 'if' skips without stopping there
    assert ex.results == EXPECTED and stops <= ex.steps and stops > 300


# ------------------------------------------------------------ hand example

HAND = '''
(module
  (type $pi (func (param i32) (result i32)))
  (memory 1 2)
  (table 2 funcref)
  (global (mut f64) (f64.const -0))
  (elem (i32.const 0) $g)
  (elem $e func $g)
  (data $d "x")
  (func $g (param i32) (result i32) (local.get 0))
  (func (export "f") (param $x i32) (result i32)
    i32.const 7
    block (result i32)
      i32.const 1
      loop (type $pi)
        local.get $x
        if (result i32)
          i32.const 2
          call $g
        else
          i32.const 3
        end
        i32.add
      end
    end
    i32.add))
'''
# Instruction indices of "f": 0 i32.const 7, 1 block, 2 i32.const 1, 3 loop,
# 4 local.get, 5 if, 6 i32.const 2, 7 call, 8 else, 9 i32.const 3, 10 end,
# 11 i32.add, 12 end, 13 end, 14 i32.add, 15 end.  Stopped inside $g, "f"
# stands at the call (7) with operands [7, 1] (the 2 went to $g).
HAND_F_LABELS = [
    {'kind': 'func', 'instr': None, 'arity': 1, 'height': 0, 'continuation': 16},
    {'kind': 'block', 'instr': 1, 'arity': 1, 'height': 1, 'continuation': 14},
    {'kind': 'loop', 'instr': 3, 'arity': 1, 'height': 1, 'continuation': 4},   # arity = params
    {'kind': 'if', 'instr': 5, 'arity': 1, 'height': 2, 'continuation': 11},
]
HAND_G_LABELS = [{'kind': 'func', 'instr': None, 'arity': 1, 'height': 0, 'continuation': 2}]


@pytest.fixture(scope='module')
def hand_wasm():
    return wasmtime.wat2wasm(HAND)


def hand_doc(hand_wasm, runtime='wasmedge'):
    store, inst = instance(runtime, hand_wasm)
    ex = store.new_executor()
    ex.start(inst.exports['f'][1], [5])
    assert not ex.run(8)            # i32.const, block, i32.const, loop, local.get, if, i32.const, call
    sha = im.module_sha256(hand_wasm)
    images = checkpoint.save(ex, inst, sha, 'f', ['i32'])
    snap = snapshot_from_images(images, inst.module, inst.info)
    return neutral.document_from_snapshot(snap, inst.module, inst.info, sha), inst


@pytest.mark.parametrize('runtime', im.RUNTIMES)
def test_hand_example_document(hand_wasm, runtime):
    doc, _ = hand_doc(hand_wasm, runtime)
    i32 = lambda v: {'type': 'i32', 'value': v}
    assert doc['frames'] == [
        {'func': 1, 'pc': 7, 'locals': [i32(5)], 'operands': [i32(7), i32(1)],
         'labels': HAND_F_LABELS},
        {'func': 0, 'pc': 0, 'locals': [i32(2)], 'operands': [], 'labels': HAND_G_LABELS}]
    assert doc['globals'] == [{'type': 'f64', 'value': '0x8000000000000000'}]   # -0 exact
    assert doc['tables'] == [[0, None]]
    assert doc['memory'] == {'pages': 1, 'chunks': {}}
    assert doc['dropped_elems'] == [0] and doc['dropped_datas'] == []     # active elem 0 dropped
    assert (doc['entry'], doc['results'], doc['steps']) == ('f', ['i32'], 8)


def test_value_scheme_round_trips_exactly():
    cases = [('i32', 0xFFFFFFFF, 4294967295), ('i64', 1 << 63, 1 << 63),
             ('f32', 0x7FC00001, '0x7fc00001'), ('f64', 0x8000000000000000, '0x8000000000000000'),
             ('v128', 1, '0x' + '0' * 31 + '1'), ('funcref', 3, 3), ('funcref', None, None),
             ('externref', ExternRef(0), {'extern': 0}), ('externref', None, None)]
    for t, v, text in cases:
        assert neutral.encode_value(t, v) == text
        assert neutral.decode_value(t, json.loads(json.dumps(text)), 'x', 4) == v


def broken(doc, path, value):
    """A copy of ``doc`` with the field at ``path`` set (or deleted when
    ``value`` is DELETE)."""
    doc = copy.deepcopy(doc)
    *parents, last = path
    node = doc
    for p in parents:
        node = node[p]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return doc


DELETE = object()
BAD = [
    (('frames', 0, 'operands', 1, 'type'), 'f32',
     'neutral.json: frames[0].operands[1]: type i32 expected, got f32'),
    (('frames', 0, 'operands'), [{'type': 'i32', 'value': 7}],
     'neutral.json: frames[0].operands: 1 values, but function 1 at instruction 7 has 2'),
    (('frames', 1, 'locals', 0, 'value'), 1 << 32, 'neutral.json: frames[1].locals[0].value:'),
    (('frames', 1, 'locals', 0, 'value'), -1, 'neutral.json: frames[1].locals[0].value:'),
    (('frames', 1, 'locals', 0, 'value'), True, 'neutral.json: frames[1].locals[0].value:'),
    (('frames', 0, 'labels', 3, 'height'), 1,
     'neutral.json: frames[0].labels[3]: {"arity": 1, "continuation": 11, "height": 1'),
    (('frames', 0, 'labels', 2, 'arity'), True, 'neutral.json: frames[0].labels[2]:'),
    (('frames', 0, 'labels'), HAND_F_LABELS[:3],
     'neutral.json: frames[0].labels: 3 labels, but function 1 has 4 open at instruction 7'),
    (('frames', 0, 'pc'), 6, 'neutral.json: frames[0].pc: a frame with a frame above it'),
    (('frames', 0, 'pc'), 99, 'neutral.json: frames[0].pc: 99 is not an instruction index'),
    (('frames', 1, 'func'), 1, 'neutral.json: frames[1].func: function 1, but frames[0] is '
                               'calling function 0'),
    (('frames', 0, 'func'), 0, 'neutral.json: frames[0].pc: 7 is not an instruction index of '
                               'function 0 (0 .. 1)'),
    (('frames', 0, 'func'), 5, 'neutral.json: frames[0].func: 5 is not a function index'),
    (('frames', 1, 'pc'), 1, 'neutral.json: frames[1].operands: 0 values, but function 0 at '
                             'instruction 1 has 1 (i32)'),
    (('frames',), [], 'neutral.json: frames: empty'),
    (('frames', 0, 'stack'), [], 'neutral.json: frames[0].stack: unknown field'),
    (('memory', 'pages'), 3, 'neutral.json: memory.pages: 3 is not a page count within the '
                             "memory's limits 1 .. 2"),
    (('memory', 'pages'), None, 'neutral.json: memory.pages'),
    (('memory', 'chunks'), {'5': '00' * 4096}, 'neutral.json: memory.chunks["5"]: offset 5'),
    (('memory', 'chunks'), {'65536': '00' * 4096}, 'neutral.json: memory.chunks["65536"]'),
    (('memory', 'chunks'), {'0': 'zz'}, 'neutral.json: memory.chunks["0"]: expected 8192 hex'),
    (('memory', 'chunks'), {'0x0': '00' * 4096}, 'neutral.json: memory.chunks["0x0"]'),
    (('globals',), [], 'neutral.json: globals: 0 entries, but 1 expected'),
    (('globals', 0, 'value'), '0x0', 'neutral.json: globals[0].value: "0x0" is not an f64'),
    (('globals', 0, 'value'), 0.0, 'neutral.json: globals[0].value'),
    (('globals', 0), {'type': 'f64'}, 'neutral.json: globals[0].value: missing'),
    (('tables', 0, 0), 2, 'neutral.json: tables[0][0]: 2 is not a funcref'),
    (('tables', 0, 0), {'extern': 1}, 'neutral.json: tables[0][0]'),
    (('tables', 0), [None], "neutral.json: tables[0]: 1 entries, outside the table's limits 2"),
    (('tables',), {}, 'neutral.json: tables: expected a list'),
    (('dropped_elems',), [0, 0], 'neutral.json: dropped_elems[1]: 0 appears twice'),
    (('dropped_datas',), [1], 'neutral.json: dropped_datas[0]: 1 is not a data segment index'),
    (('results',), ['i64'], "neutral.json: results: ['i64'] but 'f' returns ['i32']"),
    (('results',), ['int'], 'neutral.json: results[0]: "int" is not a value type'),
    (('entry',), 'nope', 'neutral.json: entry: "nope" is not an exported function'),
    (('steps',), -1, 'neutral.json: steps'),
    (('steps',), DELETE, 'neutral.json: steps: missing'),
    (('extra',), 1, 'neutral.json: extra: unknown field'),
]


@pytest.mark.parametrize('path,value,message', BAD, ids=[str(b[0]) + repr(b[1])[:20] for b in BAD])
def test_corrupted_fields_are_named(hand_wasm, path, value, message):
    doc, inst = hand_doc(hand_wasm)
    neutral.snapshot_from_document(doc, inst.module, inst.info)     # the intact one passes
    with pytest.raises(neutral.NeutralError) as e:
        neutral.snapshot_from_document(broken(doc, path, value), inst.module, inst.info)
    assert str(e.value).startswith(message), str(e.value)


def test_externref_values_are_checked():
    for bad in ({'extern': -1}, {'extern': im.NONE}, {'extern': 1, 'x': 2}, 5, '0x1'):
        with pytest.raises(neutral.NeutralError, match=r'^neutral.json: w: .* is not an externref'):
            neutral.decode_value('externref', bad, 'w', 1)


@pytest.mark.parametrize('raw,message', [
    (b'{', 'neutral.json: not valid JSON'),
    (b'[' * 100000, 'neutral.json: not valid JSON'),
    (b'[]', "neutral.json: format: expected 'wasm-migrate-neutral'"),
    (b'{"format": "wasm-migrate-neutral", "version": 5}', 'neutral.json: version: 5 is not supported'),
    (b'{"format": "wasm-migrate-neutral", "version": 1, "module_sha256": "ab"}',
     'neutral.json: module_sha256: missing or not'),
])
def test_header_errors(raw, message):
    with pytest.raises(neutral.NeutralError) as e:
        neutral.loads(raw)
    assert str(e.value).startswith(message)


# ------------------------------------------------------------ command line

def engine(*args):
    p = subprocess.run([sys.executable, '-m', 'engine', *map(str, args)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def one_error(status, out, err, needle):
    assert status == 2 and out == '' and len(err.strip().splitlines()) == 1, (status, out, err)
    assert err.startswith('error: ') and needle in err, err
    assert 'Traceback' not in err


def test_cli_end_to_end(hand_wasm, tmp_path):
    m = tmp_path / 'h.wasm'
    m.write_bytes(hand_wasm)
    status, out, err = engine('run', m, '--invoke', 'f', '--args', 5)
    assert (status, out) == (0, 'i32:10\n'), err                # 7 + (1 + $g(2))
    a, n, b = tmp_path / 'a', tmp_path / 'n', tmp_path / 'b'
    status, out, err = engine('run', m, '--invoke', 'f', '--args', 5, '--checkpoint-at', 8,
                              '--runtime', 'wamr', '--images', a)
    assert status == 0, err
    status, out, err = engine('translate', a, '--to', 'neutral', '--out', n)
    assert status == 0 and 'neutral snapshot in' in out, err
    assert sorted(os.listdir(n)) == ['module.wasm', 'neutral.json']
    doc = json.loads((n / 'neutral.json').read_text())
    assert doc['frames'][0]['labels'] == HAND_F_LABELS
    assert doc['frames'][1]['labels'] == HAND_G_LABELS

    status, out, err = engine('inspect', n)
    assert status == 0, err
    lines = out.splitlines()
    assert 'frames[0]    function 1, instruction 7 (call)' in lines
    assert '             operands: i32:7, i32:1' in lines
    assert '             label if @5 arity=1 height=2 continuation=11' in lines
    assert 'global 0     f64:-0.0 (bits 0x8000000000000000)' in lines

    for runtime in im.RUNTIMES:
        status, out, err = engine('restore', n, '--runtime', runtime)
        assert (status, out) == (0, 'i32:10\n'), err
    status, out, err = engine('translate', n, '--to', 'wasmedge', '--out', b)
    assert status == 0, err
    assert json.loads((b / 'manifest.json').read_text())['runtime'] == 'wasmedge'
    status, out, err = engine('restore', b, '--runtime', 'wamr')
    assert (status, out) == (0, 'i32:10\n'), err
    # neutral -> neutral rewrites the same document; images may overwrite a neutral dir
    status, out, err = engine('translate', n, '--to', 'neutral', '--out', n)
    assert status == 0 and json.loads((n / 'neutral.json').read_text()) == doc, err
    status, out, err = engine('translate', a, '--to', 'wamr', '--out', n)
    assert status == 0 and 'manifest.json' in os.listdir(n), err


def test_cli_errors(hand_wasm, tmp_path):
    doc, _ = hand_doc(hand_wasm)
    n = tmp_path / 'n'
    neutral.write_neutral(doc, str(n), extra={'module.wasm': hand_wasm})
    one_error(*engine('restore', n), 'a neutral snapshot follows no runtime model')

    (n / 'neutral.json').write_bytes(neutral.dumps(broken(doc, ('frames', 1, 'locals', 0, 'type'),
                                                          'i64')))
    for args in (('restore', n, '--runtime', 'wamr'), ('inspect', n),
                 ('translate', n, '--to', 'wamr', '--out', tmp_path / 'x')):
        one_error(*engine(*args), 'neutral.json: frames[1].locals[0]: type i32 expected, got i64')
    assert not (tmp_path / 'x').exists()

    (n / 'neutral.json').write_text('{"format": 1')
    one_error(*engine('inspect', n), 'neutral.json: not valid JSON')

    other = tmp_path / 'other.wasm'
    other.write_bytes(wasmtime.wat2wasm('(module (func (export "f")))'))
    neutral.write_neutral(doc, str(n), extra={'module.wasm': hand_wasm})
    one_error(*engine('restore', n, '--runtime', 'wamr', '--module', other),
              'neutral.json: module_sha256: the snapshot was taken from module')
    os.unlink(n / 'module.wasm')
    one_error(*engine('translate', n, '--to', 'wamr', '--out', tmp_path / 'y'), 'module.wasm')


def leaf_paths(x, path=()):
    yield path
    if isinstance(x, dict):
        for k, v in x.items():
            yield from leaf_paths(v, path + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from leaf_paths(v, path + (i,))


def test_any_junk_in_any_field_is_a_neutral_error(hand_wasm):
    """Every field (and the whole) replaced by junk of every JSON kind:
    either still a valid snapshot or a NeutralError naming a field, never
    another exception."""
    doc, inst = hand_doc(hand_wasm)
    junk = [None, True, -1, 2 ** 70, 1.5, 'x', [], [1], {}, {'a': 1}]
    checked = 0
    for path in list(leaf_paths(doc))[1:]:
        for value in junk:
            try:
                neutral.snapshot_from_document(broken(doc, path, value), inst.module, inst.info)
            except neutral.NeutralError as e:
                assert str(e).startswith('neutral.json: '), str(e)
                checked += 1
    assert checked > 500


def test_the_independent_checker_sees_number_widths_in_frames_and_globals(wasm, hand_wasm):
    """docs/images.md "Values": f64 as "0x" and 16 hex digits, v128 as 32,
    i32 below 2^32, wherever a typed value stands.  The engine's writer and
    reader share one width table (``neutral._HEX_DIGITS``), so a changed
    width round-trips; neutralcheck's own table sees it in a frame's
    locals and operands and in a global, not only in heap fields."""
    from fuzz import neutralcheck
    sha = im.module_sha256(wasm)
    ex, inst = started('wasmedge', wasm)
    assert not ex.run(12)
    images = checkpoint.save(ex, inst, sha, 'run', ['i64', 'f64', 'v128', 'i32', 'externref'])
    doc = neutral.document_from_snapshot(snapshot_from_images(images, inst.module, inst.info),
                                         inst.module, inst.info, sha)
    assert [x['type'] for x in doc['frames'][0]['locals']][3:5] == ['f64', 'v128']
    neutralcheck.check_doc(doc, inst.module)
    for path, value, message in [
            (('frames', 0, 'locals', 3, 'value'), '0x0' + doc['frames'][0]['locals'][3]['value'][2:],
             r'frames\[0\]\.locals\[3\]: "0x0[0-9a-f]{16}" is not an f64'),
            (('frames', 0, 'locals', 4, 'value'), doc['frames'][0]['locals'][4]['value'][:-1],
             r'frames\[0\]\.locals\[4\]: .* is not a v128'),
            (('frames', 0, 'locals', 0, 'value'), 1 << 32, r'frames\[0\]\.locals\[0\]: 4294967296 is not an i32')]:
        with pytest.raises(neutralcheck.NeutralCheckError, match=message):
            neutralcheck.check_doc(broken(doc, path, value), inst.module)
    doc, inst = hand_doc(hand_wasm)
    neutralcheck.check_doc(doc, inst.module)
    with pytest.raises(neutralcheck.NeutralCheckError, match=r'globals\[0\]: "0x08000000000000000" is not an f64'):
        neutralcheck.check_doc(broken(doc, ('globals', 0, 'value'), '0x08000000000000000'), inst.module)


def test_dumps_puts_what_fits_in_100_columns_on_one_line():
    """The layout rule (neutral.dumps): a list or object on one line when it
    fits in 100 columns at its indent, else one entry per line; the text is
    the same JSON (hand-written expectations)."""
    short = [1, 2, 3]
    long_ = ['x' * 40, 'y' * 40, 'z' * 10]          # 108 columns as one line
    doc = {'a': short, 'b': long_, 'c': {'d': [], 'e': {}}, 'f': {'g': [long_]}}
    text = neutral.dumps(doc).decode()
    assert text == (
        '{\n'
        ' "a": [1, 2, 3],\n'
        ' "b": [\n'
        '  "' + 'x' * 40 + '",\n'
        '  "' + 'y' * 40 + '",\n'
        '  "zzzzzzzzzz"\n'
        ' ],\n'
        ' "c": {"d": [], "e": {}},\n'
        ' "f": {\n'
        '  "g": [\n'
        '   [\n'
        '    "' + 'x' * 40 + '",\n'
        '    "' + 'y' * 40 + '",\n'
        '    "zzzzzzzzzz"\n'
        '   ]\n'
        '  ]\n'
        ' }\n'
        '}\n')
    assert json.loads(text) == doc
    exact = ['a' * 46, 'b' * 46]                    # exactly 100 columns: one line
    assert neutral.dumps(exact) == (json.dumps(exact) + '\n').encode()
    assert len(json.dumps(exact)) == 100 and neutral.dumps(exact + ['']).count(b'\n') == 5
