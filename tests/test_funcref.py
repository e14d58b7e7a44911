"""Typed function references (Wasm 3.0: ``call_ref``, ``return_call_ref``,
``br_on_null``, ``br_on_non_null``, ``ref.as_non_null``, ``(ref null? $t)``
locals, globals and tables with an initializer, typed ``select``) in both
executor models, and migration of runs that hold typed references: in
frames (non-nullable locals, operands), in a global and in a table, and
frames that a ``return_call_ref`` replaced.

Results are compared with wasmtime (which runs typed function references)
and, for the small cases, with values computed by hand."""

import json

import pytest
import wasmtime

from conformance.migration import migrate_call, roundtrip
from engine import embedding as E
from engine import syntax as S
from engine.errors import Trap
from engine.migrate import checkpoint, neutral
from engine.migrate import translate as tr
from engine.migrate.images import NONE, ImageError
from wat_helpers import invalid_wat

RUNTIMES = ('wasmedge', 'wamr')

# "run" n: $pick gives $double for odd n and null for even n (typed
# select); br_on_null skips the call_ref on null; br_on_non_null takes the
# global once it is set (the first call sets it to $inc); the table (of
# (ref null $ii), initialised to $inc by its initializer) gets $double at
# 2; $step recurses n times through return_call_ref, applying table[n & 3]
# by call_ref each time.
FUNCREF = r'''(module
  (type $ii (func (param i32) (result i32)))
  (type $acc (func (param i32 i32) (result i32)))
  (elem declare func $double $inc $step)
  (global $g (mut (ref null $ii)) (ref.null $ii))
  (global $gf (ref $ii) (ref.func $double))
  (table $t 4 (ref null $ii) (ref.func $inc))
  (memory 1)
  (func $double (type $ii) (i32.mul (local.get 0) (i32.const 2)))
  (func $inc (type $ii) (i32.add (local.get 0) (i32.const 1)))
  (func $step (type $acc)
    (local $f (ref $acc))
    (local.set $f (ref.func $step))
    (if (result i32) (i32.eqz (local.get 0))
      (then (local.get 1))
      (else
        (return_call_ref $acc
          (i32.sub (local.get 0) (i32.const 1))
          (call_ref $ii (local.get 1) (table.get $t (i32.and (local.get 0) (i32.const 3))))
          (local.get $f)))))
  (func $pick (param i32) (result (ref null $ii))
    (select (result (ref null $ii)) (global.get $gf) (ref.null $ii)
            (i32.and (local.get 0) (i32.const 1))))
  (func (export "run") (param i32) (result i32)
    (local $r (ref $ii)) (local $sum i32)
    (block $null
      (local.set $r (br_on_null $null (call $pick (local.get 0))))
      (local.set $sum (call_ref $ii (i32.const 5) (local.get $r))))
    (block $nn (result (ref $ii))
      (br_on_non_null $nn (global.get $g))
      (global.set $g (ref.func $inc))
      (ref.as_non_null (global.get $g)))
    (local.set $r)
    (table.set $t (i32.const 2) (global.get $gf))
    (i32.store (i32.const 0) (call_ref $ii (local.get $sum) (local.get $r)))
    (i32.add (i32.load (i32.const 0)) (call $step (local.get 0) (i32.const 1))))
  (func (export "null-call") (result i32)
    (call_ref $ii (i32.const 1) (ref.null $ii)))
  (func (export "null-tail") (result i32)
    (return_call_ref $ii (i32.const 1) (ref.null $ii)))
  (func (export "as-non-null") (result i32)
    (drop (ref.as_non_null (global.get $g))) (i32.const 7))
  (func (export "hold") (param i32) (result (ref $ii))
    (local $k (ref $ii))
    (local.set $k (ref.func $inc))
    (loop $l
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br_if $l (local.get 0)))
    (local.get $k))
)'''

# $double, $inc, $step, $pick, run, ... (no imports)
DOUBLE, INC, STEP = 0, 1, 2


def _bytes():
    return wasmtime.wat2wasm(FUNCREF)


def instance(runtime):
    store = E.store_init(runtime)
    module = E.module_decode(_bytes())
    return store, E.module_instantiate(store, module, [])


def wasmtime_results(name, args):
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    inst = wasmtime.Instance(store, wasmtime.Module(engine, _bytes()), [])
    return inst.exports(store)[name](store, *args)


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_typed_references_run_like_wasmtime(runtime):
    store, inst = instance(runtime)
    run = inst.exports['run'][1]
    got = [E.func_invoke(store, run, [n])[0] for n in range(8)]
    engine = wasmtime.Engine()
    wstore = wasmtime.Store(engine)
    winst = wasmtime.Instance(wstore, wasmtime.Module(engine, _bytes()), [])
    want = [winst.exports(wstore)['run'](wstore, n) for n in range(8)]
    assert got == want
    # by hand, n = 1 on a fresh instance: 11 (inc(double(5))) + 2 (inc(1))
    store, inst = instance(runtime)
    assert E.func_invoke(store, inst.exports['run'][1], [1]) == [13]


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_null_references_trap(runtime):
    store, inst = instance(runtime)
    for name, msg in (('null-call', 'null function reference'),
                      ('null-tail', 'null function reference'),
                      ('as-non-null', 'null reference')):
        with pytest.raises(Trap, match=msg):
            E.func_invoke(store, inst.exports[name][1], [])
    E.func_invoke(store, inst.exports['run'][1], [0])       # sets $g
    assert E.func_invoke(store, inst.exports['as-non-null'][1], []) == [7]


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_tail_calls_through_references_run_in_constant_frames(runtime):
    store, inst = instance(runtime)
    n = 20_000
    assert store.limits.max_call_depth < n
    # n & 3 cycles inc, inc, double, inc over table 0..3 (2 is $double)
    acc = 1
    for k in range(n, 0, -1):
        acc = (acc * 2 if k & 3 == 2 else acc + 1) & 0xFFFFFFFF
    got = E.func_invoke(store, inst.exports['run'][1], [n])[0]
    assert got == (acc + 1) & 0xFFFFFFFF       # even n: sum 0, inc(0) stored
    assert got == wasmtime_results('run', [n]) & 0xFFFFFFFF


def test_validation_of_typed_references():
    invalid = invalid_wat
    invalid('(module (func (local (ref func)) (drop (local.get 0))))', 'uninitialized local')
    invalid('(module (type $t (func)) (func (param funcref) (call_ref $t (local.get 0))))',
            'type mismatch')
    invalid('(module (type $t (func)) (table 1 (ref $t)))', 'type mismatch')
    invalid('(module (type $t (func)) (func (result (ref $t)) (ref.null $t)))',
            'type mismatch')
    # (ref $t) <: (ref null $t) <: funcref, and an equivalent type elsewhere
    E.module_validate(E.module_decode(wasmtime.wat2wasm(
        '(module (type $t (func)) (type $u (func)) (elem declare func $f)'
        ' (func $f (type $t)) (func (result funcref) (ref.func $f))'
        ' (func (result (ref null $u)) (ref.func $f)))')))


@pytest.mark.parametrize('a, b', [('wasmedge', 'wamr'), ('wamr', 'wasmedge')])
@pytest.mark.parametrize('n', [2, 3])
def test_typed_references_migrate_at_every_point(a, b, n):
    """Checkpoint after every instruction count of "run" (typed locals,
    operands, global and table, call_ref frames, frames replaced by
    return_call_ref, both br_on_* taken and not taken), move it a -> b
    (images) -> a (neutral.json), finish, and compare results, memory,
    globals and tables with the uninterrupted run."""
    store, inst = instance(a)
    run = inst.exports['run'][1]
    E.func_invoke(store, run, [1])          # $g set: br_on_non_null taken from now on
    results, report = migrate_call(store, run, [n], a, b, seed=None,
                                   points=lambda k: list(range(k)))
    assert results == [wasmtime_twice(n)]
    assert report.mismatch is None and report.skipped is None
    assert report.points == report.steps > 60


def wasmtime_twice(n):
    """wasmtime's "run" n after a "run" 1 on the same instance."""
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    inst = wasmtime.Instance(store, wasmtime.Module(engine, _bytes()), [])
    inst.exports(store)['run'](store, 1)
    return inst.exports(store)['run'](store, n)


@pytest.mark.parametrize('a, b', [('wasmedge', 'wamr'), ('wamr', 'wasmedge')])
def test_first_run_migrates_at_every_point(a, b):
    """The first call (global still null: br_on_non_null falls through,
    ref.as_non_null of the freshly set global)."""
    store, inst = instance(a)
    results, report = migrate_call(store, inst.exports['run'][1], [3], a, b, seed=None,
                                   points=lambda k: list(range(k)))
    assert results == [wasmtime_results('run', [3])]
    assert report.mismatch is None and report.points == report.steps


def _stopped(runtime, name, args, steps):
    store, inst = instance(runtime)
    ex = store.new_executor(runtime)
    ex.start(inst.exports[name][1], args)
    assert not ex.run(steps)
    results = list(store.funcs[inst.exports[name][1]].type.results)
    return store, inst, checkpoint.save(ex, inst, 'a' * 64, name, results)


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_images_of_typed_references_are_checked_on_load(runtime):
    """"hold" keeps a (ref $ii) local ($inc) live across a loop: a set whose
    slot holds null, or a function of another type, is refused naming the
    file and the slot; the unchanged set reads back."""
    store, inst, images = _stopped(runtime, 'hold', [50], 20)
    images = roundtrip(images)
    tr.snapshot_from_images(images, inst.module, inst.info)
    frame = images.frames[0]
    slot = 1                                 # the param, then $k
    assert frame.cells[slot] == INC
    frame.cells[slot] = NONE
    with pytest.raises(ImageError, match=r'stack1.img: slot 1: null in a slot of '
                                         r'non-nullable type \(ref 0\)'):
        tr.snapshot_from_images(images, inst.module, inst.info)
    frame.cells[slot] = STEP                 # a function, but of type $acc
    with pytest.raises(ImageError, match=r'stack1.img: slot 1: function 2 has type'):
        tr.snapshot_from_images(images, inst.module, inst.info)


def test_neutral_document_of_typed_references():
    """A document holding typed reference types is version 2 and names
    them in their text form; a version-1 document cannot carry them, and a
    null in a non-nullable slot is refused."""
    store, inst, images = _stopped('wasmedge', 'hold', [50], 20)
    snap = tr.snapshot_from_images(images, inst.module, inst.info)
    doc = json.loads(neutral.dumps(neutral.document_from_snapshot(
        snap, inst.module, inst.info, images.module_sha256)))
    assert doc['version'] == 2 and doc['memories'] == []
    assert doc['frames'][0]['locals'][1] == {'type': '(ref 0)', 'value': INC}
    assert doc['globals'] == [{'type': '(ref null 0)', 'value': None},
                              {'type': '(ref 0)', 'value': DOUBLE}]
    assert doc['tables'] == [[INC] * 4]
    back = neutral.snapshot_from_document(json.loads(json.dumps(doc)), inst.module, inst.info)
    assert back.frames[0].locals == snap.frames[0].locals
    for change, msg in (
            (lambda d: (d.update(version=1), d.pop('memories')), r'version: 1, but the run holds 3.0 typed'),
            (lambda d: d['frames'][0]['locals'][1].update(value=None),
             r'frames\[0\].locals\[1\].value: null in a slot of non-nullable type'),
            (lambda d: d['globals'][1].update(value=STEP), r'globals\[1\].value: function 2')):
        bad = json.loads(json.dumps(doc))
        change(bad)
        with pytest.raises(neutral.NeutralError, match=msg):
            neutral.snapshot_from_document(bad, inst.module, inst.info)


def test_reference_type_texts():
    assert S.RefType(True, 'func') == 'funcref' and S.RefType(False, 3) == '(ref 3)'
    for text in ('funcref', 'externref', '(ref 3)', '(ref null 0)', '(ref func)',
                 '(ref null extern)'.replace('(ref null extern)', 'externref'), 'i32'):
        assert S.parse_valtype(text) == text
    for text in ('anyref', 'eqref', '(ref i31)', '(ref null struct)'.replace(
            '(ref null struct)', 'structref'), '(ref none)', 'nullref', '(ref array)'):
        assert S.parse_valtype(text) == text      # GC's abstract heap types (Wasm 3.0)
    for text in ('(ref null func)', '(ref  3)', '(ref 03)', '(ref anything)', '(ref null any)',
                 'ref', 3):
        assert S.parse_valtype(text) is None


@pytest.mark.parametrize('entry, args', [('run', [5]), ('null-tail', []), ('hold', [40])])
def test_compiled_tier_stops_like_the_interpreter(entry, args):
    """Functions using typed references are left to the interpreter by the
    compiled tier (which runs their callers and callees compiled where it
    can): a stop at every N leaves the same state in both tiers, and the
    resumed runs end alike."""
    from tests.test_fast_tier import check_chunked, check_every_stop, length
    wasm = _bytes()
    total = length(wasm, entry, args)
    check_every_stop(wasm, entry, args, range(total + 1))
    check_chunked(wasm, entry, args, (1, 2, 3, 7, 50))
