"""Exception handling (Wasm 3.0 tags, throw, throw_ref, try_table, exnref;
the legacy try/catch/delegate/rethrow binaries) in both executor models,
the compiled tier's hand-over, and migration of the new state: caught
exnref values on the stack, in locals, a global and a table, the handlers
active in each frame, the exception a legacy catch arm holds.

Expected values are computed by hand in the comments."""

import json
import os

import pytest
import wasmtime

from conformance.migration import migrate_call
from conformance.wat import wat_to_binary
from engine import embedding as E
from engine.binary import decode_module
from engine.errors import DecodeError, Trap, UncaughtException
from engine.migrate import checkpoint, images as im, neutral, translate as tr
from engine.migrate.fork_images import write_fork_images
from engine.migrate.images import ImageError

RUNTIMES = ('wasmedge', 'wamr')
PAIRS = [('wasmedge', 'wamr'), ('wamr', 'wasmedge')]

# $thrower throws $e(v, 3v) when v is odd.  $middle calls it with i and
# i + 1 (so one of them throws, v = i if i is odd else i + 1) inside a
# try_table whose catch_ref lands in $h with (v, 3v, exnref); it keeps the
# exnref in a local, a global and a table, stores v at 32 and rethrows the
# exception with throw_ref.  "run" catches it (catch $e, fields only) in a
# loop: acc += v for i = 0 .. n-1, i.e. 1 + 1 + 3 + 3 + 5 = 13 for n = 5.
TRY_TABLE = r'''(module
  (tag $e (param i32 i64))
  (global $g (mut exnref) (ref.null exn))
  (table $t 2 exnref)
  (memory 1)
  (func $thrower (param i32)
    (i32.store (i32.const 16) (local.get 0))
    (if (i32.and (local.get 0) (i32.const 1))
      (then (throw $e (local.get 0) (i64.extend_i32_u (i32.mul (local.get 0) (i32.const 3)))))))
  (func $middle (param i32) (result i32)
    (local $x exnref) (local $v i32)
    (block $h (result i32 i64 exnref)
      (try_table (catch_ref $e $h)
        (call $thrower (local.get 0))
        (call $thrower (i32.add (local.get 0) (i32.const 1))))
      (return (i32.const -1)))
    (local.set $x)
    (drop)
    (local.set $v)
    (global.set $g (local.get $x))
    (table.set $t (i32.const 1) (local.get $x))
    (i32.store (i32.const 32) (local.get $v))
    (throw_ref (global.get $g)))
  (func (export "run") (param i32) (result i32)
    (local $i i32) (local $acc i32)
    (loop $l
      (block $done (result i32 i64)
        (try_table (catch $e $done)
          (local.set $acc (i32.add (local.get $acc) (call $middle (local.get $i)))))
        (local.set $acc (i32.add (local.get $acc) (i32.const 1000)))
        (br $done (i32.const 0) (i64.const 0)))
      (drop)
      (local.set $acc (i32.add (local.get $acc)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get 0))))
    (local.get $acc))
  (func (export "uncaught") (param i32) (call $thrower (local.get 0)))
  (func (export "null") (throw_ref (ref.null exn)))
)'''

# Legacy (flat text, which wasm-tools reads).  $rethrower: thrower(i)
# throws $e(i) for i < 2, else $f; catch $e gives 100 + i, except i = 1
# (101), which rethrows the caught $e from inside an if in the arm;
# catch_all gives 7.  $delegator's inner try delegates to the outer one,
# whose catch $e adds 1000 to the field.  run(4) = 100 + 1001 + 7 + 7 = 1115.
LEGACY = r'''(module
  (tag $e (param i32))
  (tag $f)
  (func $thrower (param i32)
    local.get 0
    i32.const 2
    i32.lt_u
    if
      local.get 0
      throw $e
    end
    throw $f)
  (func $rethrower (param i32) (result i32)
    try (result i32)
      local.get 0
      call $thrower
      i32.const 0
    catch $e
      i32.const 100
      i32.add
      local.tee 0
      i32.const 101
      i32.eq
      if
        rethrow 1
      end
      local.get 0
    catch_all
      i32.const 7
    end)
  (func $delegator (param i32) (result i32)
    try (result i32)
      try (result i32)
        local.get 0
        call $rethrower
      delegate 0
    catch $e
      i32.const 1000
      i32.add
    end)
  (func (export "run") (param i32) (result i32)
    (local $i i32) (local $acc i32)
    loop $l
      local.get $acc
      local.get $i
      call $delegator
      i32.add
      local.set $acc
      local.get $i
      i32.const 1
      i32.add
      local.tee $i
      local.get 0
      i32.lt_u
      br_if $l
    end
    local.get $acc)
)'''


def instance(runtime, text, tier='interp'):
    store = E.store_init(runtime, tier=tier) if tier != 'interp' else E.store_init(runtime)
    data = wat_to_binary(text)
    inst = E.module_instantiate(store, E.module_decode(data), [])
    return store, inst, data


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_try_table_catch_ref_and_throw_ref(runtime):
    store, inst, _ = instance(runtime, TRY_TABLE)
    assert E.func_invoke(store, inst.exports['run'][1], [5]) == [13]
    mem = store.mems[inst.memaddrs[0]].data
    assert mem[32] == 5 and mem[16] == 5          # the last v, the last thrower argument
    g = store.globals[inst.globaladdrs[0]].value
    assert g.tag == inst.tagaddrs[0] and g.fields == (5, 15)
    assert store.tables[inst.tableaddrs[0]].elem == [None, g]


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_uncaught_and_null(runtime):
    store, inst, _ = instance(runtime, TRY_TABLE)
    with pytest.raises(UncaughtException) as e:
        E.func_invoke(store, inst.exports['uncaught'][1], [3])
    assert e.value.exn.fields == (3, 9)
    assert E.func_invoke(store, inst.exports['uncaught'][1], [2]) == []
    with pytest.raises(Trap, match='null exception reference'):
        E.func_invoke(store, inst.exports['null'][1], [])


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_legacy_try_catch_delegate_rethrow(runtime):
    store, inst, _ = instance(runtime, LEGACY)
    assert E.func_invoke(store, inst.exports['run'][1], [4]) == [1115]


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_exception_crosses_instances(runtime):
    """A tag is its exporter's: an instance importing it catches the
    exporter's throws by tag; one defining its own tag of the same type
    does not (catch_all does).  Hand-computed: 42 + 1, then 7."""
    store = E.store_init(runtime)
    a = E.module_instantiate(store, E.module_decode(wat_to_binary(r'''(module
      (tag (export "e") (param i32))
      (func (export "throw") (param i32) (throw 0 (local.get 0))))''')), [])
    b = E.module_instantiate(store, E.module_decode(wat_to_binary(r'''(module
      (import "a" "e" (tag $e (param i32)))
      (import "a" "throw" (func $throw (param i32)))
      (tag $mine (param i32))
      (func (export "own") (result i32)
        (block $h (result i32)
          (try_table (catch $e $h) (call $throw (i32.const 42)))
          (i32.const -1))
        (i32.const 1) (i32.add))
      (func (export "other") (result i32)
        (block $h
          (block $m (result i32)
            (try_table (catch $mine $m) (catch_all $h) (call $throw (i32.const 5)))
            (i32.const 0))
          (return))
        (i32.const 7)))''')), [a.exports['e'], a.exports['throw']])
    assert E.func_invoke(store, b.exports['own'][1], []) == [43]
    assert E.func_invoke(store, b.exports['other'][1], []) == [7]


@pytest.mark.parametrize('text, arg, want', [(TRY_TABLE, 5, 13), (LEGACY, 4, 1115)])
def test_fast_tier_hands_exceptions_to_the_interpreter(text, arg, want):
    """Functions with handlers are Uncompilable; a stop at any N leaves the
    same state in both tiers."""
    store, inst, data = instance('wasmedge', text, 'fast')
    assert E.func_invoke(store, inst.exports['run'][1], [arg]) == [want]
    total = None
    for n in range(1, 400, 3):
        states = []
        for tier in ('interp', 'fast'):
            store, inst, _ = instance('wasmedge', text, tier)
            ex = store.new_executor()
            ex.start(inst.exports['run'][1], [arg])
            done = ex.run(n)
            states.append((done, ex.steps, ex.pc, list(ex.stack),
                           [(f.func, f.from_pc) for f in ex.frames], dict(ex.caught)))
        assert states[0] == states[1], n
        if states[0][0]:
            total = states[0][1]
            break
    assert total is not None and total > 100


@pytest.mark.parametrize('a, b', PAIRS)
@pytest.mark.parametrize('text, arg, want', [(TRY_TABLE, 5, 13), (LEGACY, 4, 1115)],
                         ids=['try_table', 'legacy'])
def test_migrates_at_every_instruction(text, arg, want, a, b):
    """Checkpoint after every instruction count, move a -> b (image bytes)
    -> a (through neutral.json), finish, compare results, memory, globals
    and tables (the exnref global and table entry) with the uninterrupted
    run."""
    store, inst, _ = instance(a, text)
    results, report = migrate_call(store, inst.exports['run'][1], [arg], a, b, seed=None,
                                   points=lambda n: list(range(n)))
    assert results == [want]
    assert report.mismatch is None and report.skipped is None
    assert report.points == report.steps > 100
    assert report.checkpoints >= report.points


def _stop_with_exnref(runtime):
    """A run stopped in $middle just after its catch_ref stored the exnref
    in the global: the set holds exnref values and handlers."""
    store, inst, data = instance(runtime, TRY_TABLE)
    ex = store.new_executor(runtime)
    ex.start(inst.exports['run'][1], [5])
    while True:
        ex.run(1)
        g = store.globals[inst.globaladdrs[0]].value
        if g is not None:
            break
    return store, inst, data, ex


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_image_files_hold_the_exception_table(runtime, tmp_path):
    store, inst, data, ex = _stop_with_exnref(runtime)
    sha = im.module_sha256(data)
    saved = checkpoint.save(ex, inst, sha)
    assert saved.exceptions == [(0, [1, 3, 0])]          # tag 0, fields (1, 3)
    d = tmp_path / 'ck'
    im.write_images(saved, str(d))
    manifest = json.loads((d / 'manifest.json').read_text())
    assert manifest['version'] == im.WASM3_VERSION and manifest['frames'] == 'per-file'
    raw = (d / im.EXN_FILE).read_bytes()
    assert raw == bytes.fromhex('01000000' '00000000' '03000000' '01000000' '03000000'
                                '00000000' '00000000')
    back = im.read_images(str(d))
    assert back.exceptions == saved.exceptions and back.caught == []
    snap = tr.snapshot_from_images(back, inst.module, inst.info)
    assert snap.globals[0].tag == 0 and snap.globals[0].fields == (1, 3)
    # a table naming a tag the module does not have, and a truncated file
    (d / im.EXN_FILE).write_bytes(raw[:4] + (5).to_bytes(4, 'little') + raw[8:])
    with pytest.raises(ImageError, match=r'exception.img: exception 0 tag: 5 but the module '
                                         r'has 1 tags'):
        tr.snapshot_from_images(im.read_images(str(d)), inst.module, inst.info)
    (d / im.EXN_FILE).write_bytes(raw[:10])
    with pytest.raises(ImageError, match='exception.img'):
        im.read_images(str(d))
    os.remove(d / im.EXN_FILE)          # the exnref cells then name nothing
    with pytest.raises(ImageError, match=r'^stack1.img: slot 1: exnref 0 but exception.img '
                                         r'holds 0 exceptions'):
        tr.snapshot_from_images(im.read_images(str(d)), inst.module, inst.info)


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_neutral_form_lists_handlers_and_exnrefs(runtime):
    store, inst, data, ex = _stop_with_exnref(runtime)
    sha = im.module_sha256(data)
    snap = tr.snapshot_from_images(checkpoint.save(ex, inst, sha), inst.module, inst.info)
    doc = neutral.document_from_snapshot(snap, inst.module, inst.info, sha)
    assert doc['version'] == neutral.WASM3_VERSION
    assert doc['globals'][0] == {'type': 'exnref', 'value': {'exn': {'tag': 0, 'fields': [
        {'type': 'i32', 'value': 1}, {'type': 'i64', 'value': 3}]}}}
    run, middle = doc['frames']
    # "run" stands at its call inside the try_table (catch $e -> label 0)
    assert [h['catches'] for h in run['handlers']] == [[{'tag': 0, 'label': 0, 'ref': False}]]
    assert middle['handlers'] == [] and middle['caught'] == []
    back = neutral.snapshot_from_document(json.loads(neutral.dumps(doc)), inst.module, inst.info)
    assert back.globals == snap.globals
    bad = json.loads(neutral.dumps(doc))
    bad['frames'][0]['handlers'] = []
    with pytest.raises(neutral.NeutralError, match=r'frames\[0\].handlers'):
        neutral.snapshot_from_document(bad, inst.module, inst.info)
    bad = json.loads(neutral.dumps(doc))
    bad['globals'][0]['value']['exn']['tag'] = 3
    with pytest.raises(neutral.NeutralError, match=r'globals\[0\].value.exn.tag'):
        neutral.snapshot_from_document(bad, inst.module, inst.info)


def test_legacy_catch_arm_state_is_checked():
    """Stopped inside $rethrower's catch $e arm: the caught exception is in
    exception.img's caught list; a set without it is refused."""
    store, inst, data = instance('wamr', LEGACY)
    ex = store.new_executor('wamr')
    ex.start(inst.exports['run'][1], [4])
    while not ex.caught:
        ex.run(1)
    saved = checkpoint.save(ex, inst, im.module_sha256(data))
    assert saved.caught == [(1, 0, 0)] and saved.exceptions == [(0, [0])]
    tr.translate(saved, inst.module, inst.info, 'wasmedge')
    saved.caught = []
    with pytest.raises(ImageError, match=r'exception.img: caught frame 1 depth 0: missing'):
        tr.translate(saved, inst.module, inst.info, 'wasmedge')


def test_fork_layout_refuses_exception_state(tmp_path):
    store, inst, data, ex = _stop_with_exnref('wamr')
    saved = checkpoint.save(ex, inst, im.module_sha256(data))
    with pytest.raises(ImageError, match='exception handling'):
        write_fork_images(saved, str(tmp_path / 'f'), store, inst)


def test_wasm_2_binary_format_has_no_exception_opcodes():
    """The 2.0 suite's malformed binaries rely on 0x06-0x0a being illegal."""
    body = bytes.fromhex('0061736d01000000' '01040160' '0000' '03020100' '0a05010300' '0a0b')
    with pytest.raises(DecodeError, match='illegal opcode'):
        decode_module(body, standard=2)
    assert [i.op for i in decode_module(body).funcs[0].body] == ['throw_ref', 'end']   # 3.0
    tag = bytes.fromhex('0061736d01000000' '01040160' '0000' '0d03010000')
    assert len(decode_module(tag).tags) == 1
    with pytest.raises(DecodeError, match='malformed section id'):
        decode_module(tag, standard=2)


def test_cli_checkpoint_inspect_translate_restore(tmp_path, capsys):
    """The user's path: a WAMR checkpoint holding an exnref (version 3),
    inspect shows the exception table, neutral and WasmEdge restores finish
    with the uninterrupted result (13)."""
    from engine import cli
    wasm = tmp_path / 'm.wasm'
    wasm.write_bytes(wat_to_binary(TRY_TABLE))
    ck, ckn, ckw = (str(tmp_path / n) for n in ('ck', 'ckn', 'ckw'))
    assert cli.main(['run', str(wasm), '--invoke', 'run', '--args', '5', '--runtime', 'wamr',
                     '--checkpoint-at', '60', '--images', ck]) == 0
    capsys.readouterr()
    assert cli.main(['inspect', ck]) == 0
    out = capsys.readouterr().out
    assert 'global 0     exnref 00000000' in out
    assert 'exception 0  tag 0, fields 00000001 00000003 00000000' in out
    assert cli.main(['translate', ck, '--to', 'neutral', '--out', ckn]) == 0
    assert cli.main(['translate', ck, '--to', 'wasmedge', '--out', ckw]) == 0
    for d, extra in ((ckn, ['--runtime', 'wasmedge']), (ckw, []), (ck, [])):
        capsys.readouterr()
        assert cli.main(['restore', d, *extra]) == 0
        assert capsys.readouterr().out.strip() == 'i32:13'


def test_exception_table_nesting_is_bounded():
    """exception.img entries may nest (a field holding an earlier entry);
    a chain deeper than MAX_NESTING is refused before anything recurses."""
    from engine.migrate import exnstate
    module = decode_module(wat_to_binary('(module (tag (param exnref)))'))

    def fail(field, message):
        raise ImageError(f'{field}: {message}')
    chain = [(0, [0xFFFFFFFF])] + [(0, [k]) for k in range(exnstate.MAX_NESTING - 1)]
    assert len(exnstate.read_table(module, chain, 0, fail)) == exnstate.MAX_NESTING
    with pytest.raises(ImageError, match='nested 201 deep'):
        exnstate.read_table(module, chain + [(0, [len(chain) - 1])], 0, fail)
    with pytest.raises(ImageError, match='does not name an earlier exception'):
        exnstate.read_table(module, [(0, [0])], 0, fail)


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_cli_reports_uncaught_exceptions_and_exnref_results(runtime, tmp_path, capsys):
    from engine import cli
    wasm = tmp_path / 'u.wasm'
    wasm.write_bytes(wat_to_binary(r'''(module (tag $e (param i32))
      (func (export "f") (param i32) (throw $e (local.get 0)))
      (func (export "g") (result exnref)
        (block $h (result exnref)
          (try_table (catch_all_ref $h) (throw $e (i32.const 9))) (unreachable))))'''))
    assert cli.main(['run', str(wasm), '--invoke', 'f', '--args', '3', '--runtime', runtime]) == 2
    assert 'uncaught exception (tag address 0, fields [3])' in capsys.readouterr().err
    assert cli.main(['run', str(wasm), '--invoke', 'g', '--runtime', runtime]) == 0
    assert capsys.readouterr().out.strip() == 'exnref:tag 0 (9)'


# ------------------------------------------------ with typed references and multi-memory

def test_exnref_is_an_abstract_heap_type_of_the_reference_types():
    """exnref is (ref null exn) in the typed-reference representation: one
    RefType scheme, subtyping by syntax.matches, exnref values' class."""
    from engine import syntax as S
    from engine.exec.cells import CELLS
    exn, noexn = S.RefType(False, 'exn'), S.RefType(True, 'noexn')
    assert S.EXNREF == 'exnref' and S.EXNREF.heap == 'exn' and S.EXNREF.nullable
    assert S.parse_valtype('exnref') is S.EXNREF and S.parse_valtype('(ref exn)') == exn
    assert S.parse_valtype('(ref null exn)') is None      # only the canonical spelling
    assert S.parse_valtype('(ref null noexn)') == noexn
    assert S.value_class(exn) == S.value_class(noexn) == 'exnref' and CELLS[exn] == 1
    assert S.matches(exn, S.EXNREF) and S.matches(noexn, S.EXNREF) and S.matches(noexn, exn) is False
    assert not S.matches(S.EXNREF, exn) and not S.matches(S.EXNREF, S.FUNCREF)
    assert not S.matches(noexn, S.FUNCREF) and not S.matches(S.RefType(True, 'nofunc'), S.EXNREF)


def test_catch_ref_pushes_a_non_null_exnref():
    """catch_ref / catch_all_ref give (ref exn): a label of (ref exn) or of
    exnref takes it, one of another reference type does not."""
    def module(label):
        return wat_to_binary(f'''(module (tag $e)
          (func (result exnref)
            (block $h (result {label})
              (try_table (catch_all_ref $h) (throw $e))
              (unreachable))))''')
    for ok in ('(ref exn)', 'exnref'):
        E.module_validate(E.module_decode(module(ok)))
    from engine.errors import ValidationError
    with pytest.raises(ValidationError, match='type mismatch'):
        E.module_validate(E.module_decode(module('funcref')))


# $thrower writes its argument to memory 1 and throws $e(2i) computed
# through a call_ref; "run" catches it with catch_all_ref into a (ref exn)
# local (unset, so null, until the first catch), keeps it in the global,
# rethrows it into a catch $e and sums the fields: 0 + 2 + 4 + 6 = 12 for
# n = 4, plus memory 1's last argument 3 = 15.
WASM3 = r'''(module
  (type $ft (func (param i32) (result i32)))
  (tag $e (param i32))
  (memory $m0 1)
  (memory $m1 1)
  (global $g (mut exnref) (ref.null exn))
  (global $f (ref $ft) (ref.func $double))
  (func $double (type $ft) (i32.mul (local.get 0) (i32.const 2)))
  (func $thrower (param i32)
    (i32.store $m1 (i32.const 8) (local.get 0))
    (throw $e (call_ref $ft (local.get 0) (global.get $f))))
  (func (export "run") (param i32) (result i32)
    (local $i i32) (local $acc i32) (local $x (ref exn))
    (loop $l
      (block $h (result (ref exn))
        (try_table (catch_all_ref $h)
          (call $thrower (local.get $i)))
        (unreachable))
      (local.set $x)
      (global.set $g (local.get $x))
      (block $c (result i32)
        (try_table (catch $e $c) (throw_ref (local.get $x)))
        (unreachable))
      (local.set $acc (i32.add (local.get $acc)))
      (i32.store $m1 (i32.const 16) (local.get $acc))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get 0))))
    (i32.add (local.get $acc) (i32.load $m1 (i32.const 8))))
)'''


@pytest.mark.parametrize('a, b', PAIRS)
def test_exceptions_typed_references_and_two_memories_migrate(a, b):
    store, inst, _ = instance(a, WASM3)
    results, report = migrate_call(store, inst.exports['run'][1], [4], a, b, seed=None,
                                   points=lambda n: list(range(n)))
    assert results == [15]
    assert report.mismatch is None and report.skipped is None
    assert report.points == report.steps > 100


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_one_version_for_all_wasm_3_state(runtime, tmp_path):
    """A stop holding a caught exception in a module with two memories: one
    image set of version 3 with exception.img and memory1.img, one neutral
    document of version 2 with memories, handlers and the (ref exn) local."""
    store, inst, data = instance(runtime, WASM3)
    ex = store.new_executor(runtime)
    ex.start(inst.exports['run'][1], [4])
    while store.globals[inst.globaladdrs[0]].value is None:
        ex.run(1)
    sha = im.module_sha256(data)
    d = tmp_path / 'ck'
    im.write_images(checkpoint.save(ex, inst, sha), str(d))
    manifest = json.loads((d / 'manifest.json').read_text())
    assert manifest['version'] == im.WASM3_VERSION
    assert (d / im.EXN_FILE).exists() and (d / 'memory1.img').exists()
    back = im.read_images(str(d))
    assert back.exceptions == [(0, [0])] and len(back.memories) == 1
    snap = tr.snapshot_from_images(back, inst.module, inst.info)
    doc = neutral.document_from_snapshot(snap, inst.module, inst.info, sha)
    assert doc['version'] == neutral.WASM3_VERSION and len(doc['memories']) == 1
    run = doc['frames'][-1]
    assert run['locals'][3] == {'type': '(ref exn)', 'value': {'exn': {
        'tag': 0, 'fields': [{'type': 'i32', 'value': 0}]}}}
    assert run['handlers'] == [] and run['caught'] == []
    again = neutral.snapshot_from_document(json.loads(neutral.dumps(doc)), inst.module, inst.info)
    assert again.globals == snap.globals and again.memories == snap.memories
    # a version-1 document of this module is refused, naming why
    doc['version'] = neutral.VERSION
    del doc['memories']
    with pytest.raises(neutral.NeutralError, match='version: 1, but a module with exception '
                                                   'handling is written as version 2'):
        neutral.snapshot_from_document(doc, inst.module, inst.info)
