"""Tail calls (Wasm 3.0 ``return_call``, ``return_call_indirect``) in both
executor models, and migration of runs that use them: a frame after a tail
call is an ordinary frame whose caller is the replaced frame's caller, so a
checkpoint taken anywhere must save, translate and restore.

Expected values are computed by hand (sums of 1..n)."""

import pytest
import wasmtime

from conformance.migration import migrate_call
from engine import embedding as E
from engine.migrate import translate as tr
from wat_helpers import invalid_wat

RUNTIMES = ('wasmedge', 'wamr')

# $start (i32 param) tail-calls $acc (i64, i64 params): the frame above
# "run"'s call then has other parameters than the called type; $acc and
# $acc_ind tail-call each other directly and through the table; a value
# (1000) waits on "run"'s operand stack below the call; $log tail-calls a
# host function.  (ACC: the type, memory, global, table and the two
# accumulator functions, shared with ENTRY_TAIL below.)
ACC = r'''  (type $t (func (param i64 i64) (result i64)))
  (memory 1)
  (global $calls (mut i32) (i32.const 0))
  (table 2 funcref)
  (elem (i32.const 0) $acc $acc_ind)
  (func $acc (type $t)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (i64.store (i32.const 8) (local.get 1))
    (if (result i64) (i64.eqz (local.get 0))
      (then (local.get 1))
      (else (return_call $acc_ind (i64.sub (local.get 0) (i64.const 1))
                                  (i64.add (local.get 1) (local.get 0))))))
  (func $acc_ind (type $t)
    (return_call_indirect (type $t) (local.get 0) (local.get 1) (i32.const 0)))
'''
TAIL = r'''(module
  (import "spectest" "print_i32" (func $print (param i32)))
''' + ACC + r'''  (func $start (param i32) (result i64)
    (return_call $acc (i64.extend_i32_u (local.get 0)) (i64.const 0)))
  (func $log (param i32) (return_call $print (local.get 0)))
  (func (export "run") (param i32) (result i64)
    (call $log (local.get 0))
    (i64.add (i64.const 1000) (call $start (local.get 0))))
  (func (export "calls") (result i32) (global.get $calls))
)'''


def instance(runtime):
    store = E.store_init(runtime)
    spectest = E.spectest_instance(store)
    module = E.module_decode(wasmtime.wat2wasm(TAIL))
    inst = E.module_instantiate(store, module, [spectest.exports['print_i32']])
    return store, inst


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_tail_calls_run_in_constant_frames(runtime):
    """100,000 tail calls deep: far beyond the call-depth limit if a tail
    call kept its frame."""
    store, inst = instance(runtime)
    assert store.limits.max_call_depth < 100_000
    n = 100_000
    assert E.func_invoke(store, inst.exports['run'][1], [n]) == [1000 + n * (n + 1) // 2]
    assert E.func_invoke(store, inst.exports['calls'][1], []) == [n + 1]


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_indirect_tail_call_traps(runtime):
    store = E.store_init(runtime)
    module = E.module_decode(wasmtime.wat2wasm(r'''(module
      (type $v (func (result i32))) (type $w (func (result i64)))
      (table 3 funcref) (elem (i32.const 0) $one $wide)
      (func $one (result i32) (i32.const 1))
      (func $wide (result i64) (i64.const 2))
      (func (export "call") (param i32) (result i32)
        (return_call_indirect (type $v) (local.get 0))))'''))
    inst = E.module_instantiate(store, module, [])
    f = inst.exports['call'][1]
    assert E.func_invoke(store, f, [0]) == [1]
    for i, msg in ((1, 'indirect call type mismatch'), (2, 'uninitialized element'),
                   (3, 'undefined element')):
        with pytest.raises(Exception, match=msg):
            E.func_invoke(store, f, [i])


def test_tail_call_validation():
    invalid = invalid_wat
    # the callee's results must be the caller's
    invalid('(module (func $f (result i64) (i64.const 0)) (func (result i32) (return_call $f)))')
    invalid('(module (type $t (func (result i64))) (table 1 funcref)'
            ' (func (result i32) (return_call_indirect (type $t) (i32.const 0))))')
    # and the code after it is unreachable (stack-polymorphic), as after return
    E.module_validate(E.module_decode(wasmtime.wat2wasm(
        '(module (func $f (result i32) (i32.const 1))'
        ' (func (result i32) (return_call $f) (i32.add)))')))


@pytest.mark.parametrize('a, b', [('wasmedge', 'wamr'), ('wamr', 'wasmedge')])
def test_tail_recursive_loop_migrates_at_every_point(a, b):
    """Checkpoint after every instruction count of a tail-recursive run,
    move it a -> b -> a (through image bytes and neutral.json), finish, and
    compare results, memory and globals with the uninterrupted run."""
    store, inst = instance(a)
    run = inst.exports['run'][1]
    results, report = migrate_call(store, run, [12], a, b, seed=None,
                                   points=lambda n: list(range(n)))
    assert results == [1000 + 78]
    assert report.mismatch is None and report.skipped is None
    assert report.points == report.steps > 150
    assert report.checkpoints >= report.points


def test_frame_above_a_caller_may_be_a_tail_callee():
    """The translator's checks: with tail calls in the module, the frame
    above a caller stopped at ``call $start`` may run $acc (other params,
    same results), but not a function with other results."""
    store, inst = instance('wasmedge')
    view = tr.ModuleView.of(inst.module, inst.module._module_info)
    assert view.tail_calls
    run_idx = 5                                   # 1 import + $acc $acc_ind $start $log run
    body = inst.module.funcs[run_idx - 1].body
    pc = max(i for i, ins in enumerate(body) if ins.op == 'call')
    assert view.may_call(run_idx, pc, 3)          # $start itself
    assert view.may_call(run_idx, pc, 1) and view.may_call(run_idx, pc, 2)
    assert not view.may_call(run_idx, pc, 4)      # $log: no results
    # the caller's operands are typed by the called type ($start: one i32
    # popped), whichever function runs above
    assert view.frame_types(run_idx, pc, 1) == view.frame_types(run_idx, pc, 3) == \
        ['i32', 'i64']


# The exported entry itself tail-calls $acc (ACC above): the outermost frame then runs
# $acc / $acc_ind, not "run" (neutral.json once refused such a document:
# "frames[0].func: function 1, but the entry 'run' is function 4").
ENTRY_TAIL = '(module\n' + ACC + r'''  (func $other (result i32) (i32.const 7))
  (func (export "run") (param i32) (result i64)
    (return_call $acc (i64.extend_i32_u (local.get 0)) (i64.const 0)))
)'''


@pytest.mark.parametrize('a, b', [('wasmedge', 'wamr'), ('wamr', 'wasmedge')])
def test_an_entry_that_tail_calls_migrates_at_every_point(a, b):
    store = E.store_init(a)
    inst = E.module_instantiate(store, E.module_decode(wasmtime.wat2wasm(ENTRY_TAIL)), [])
    results, report = migrate_call(store, inst.exports['run'][1], [9], a, b, seed=None,
                                   points=lambda n: list(range(n)))
    assert results == [45]
    assert report.mismatch is None and report.skipped is None
    assert report.points == report.steps > 40


def test_neutral_bottom_frame_must_return_the_entrys_results():
    """With tail calls the bottom frame may run another function than the
    entry, but only one returning the entry's results."""
    import json
    from engine.migrate import checkpoint, neutral
    from engine.migrate.images import module_sha256
    wasm = wasmtime.wat2wasm(ENTRY_TAIL)
    store = E.store_init('wasmedge')
    module = E.module_decode(wasm)
    inst = E.module_instantiate(store, module, [])
    ex = store.new_executor('wasmedge')
    ex.start(inst.exports['run'][1], [9])
    assert not ex.run(12)
    images = checkpoint.save(ex, inst, module_sha256(wasm), 'run', ['i64'])
    snap = tr.snapshot_from_images(images, inst.module, inst.info)
    doc = neutral.document_from_snapshot(snap, inst.module, inst.info, images.module_sha256)
    assert doc['frames'][0]['func'] in (0, 1)           # $acc or $acc_ind, not "run" (3)
    back = neutral.snapshot_from_document(json.loads(neutral.dumps(doc)), inst.module, inst.info)
    assert back.frames[0].fidx == doc['frames'][0]['func']
    view = tr.ModuleView.of(inst.module, inst.info)
    neutral._check_entry(doc, inst.module, view, 0, ['i64'])
    with pytest.raises(neutral.NeutralError, match=r"frames\[0\].func: function 2, but the entry "
                                                   r"'run' is function 3 and function 2 does not "
                                                   r"return its results \['i64'\]"):
        neutral._check_entry(doc, inst.module, view, 2, ['i64'])     # $other: () -> i32


@pytest.mark.parametrize('a, b', [('wasmedge', 'wamr'), ('wamr', 'wasmedge')])
def test_the_fuzz_oracle_migrates_an_entry_that_tail_called_through_neutral_json(a, b):
    """The campaign's route names the entry in neutral.json: every stop of
    the run, through the document, finishes like the uninterrupted run."""
    from fuzz import oracle
    wasm = wasmtime.wat2wasm(ENTRY_TAIL)
    ref = oracle.uninterrupted(wasm, 'run', (9,), a)
    assert ref.results == [45]
    for k in range(1, ref.steps):
        assert oracle.check(wasm, 'run', (9,), [(a, k), (f'neutral:{b}', None)], a, ref=ref) == [], k
