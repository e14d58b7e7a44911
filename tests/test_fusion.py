"""Superinstructions (engine.exec.fusion) keep the exact-stop contract: a run in
budgets of any size stops before the same instruction, with the same count
and the same state, as the run one instruction at a time (which never
takes a superinstruction: its budget never covers one).

Truth: the one-step run of the same executor, and the instruction counts
of the unfused interpreter recorded below for fixed programs.
"""

import random

import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import embedding
from engine.exec import fusion
from engine.binary import decode_module
from engine.errors import Trap, UncaughtException
from fuzz import gen, linked, oracle
from wat_helpers import BRT_FUNC

RUNTIMES = ('wasmedge', 'wamr')


def state(store, ex):
    """Everything a checkpoint could see, as plain data; GC objects by
    structure and sharing (``oracle.structural``: the two runs' stores
    never share an object)."""
    if ex.__class__.__module__.endswith('wamr'):
        frames = [(f.func, f.ip, f.lp, list(f.labels)) for f in ex.frames]
    else:
        frames = [(f.func, f.from_pc, f.locals, f.arity, f.vpos) for f in ex.frames]
    return oracle.structural((ex.pc, ex.steps, ex.finished, frames, list(ex.stack),
                              [bytes(m.data) for m in store.mems], [g.value for g in store.globals],
                              [list(t.elem) for t in store.tables]))


def instance(runtime, wasm):
    store = embedding.store_init(runtime)
    module = linked.decoded(wasm)
    inst = embedding.module_instantiate(store, module, linked.imports_for(store, module, wasm))
    return store, inst


def trajectory(runtime, wasm, entry, args):
    """The state before every instruction of a one-step run, and its end."""
    store, inst = instance(runtime, wasm)
    ex = store.new_executor()
    ex.start(inst.exports[entry][1], list(args))
    states = {}
    end = None
    while True:
        states[ex.steps] = state(store, ex)
        try:
            if ex.run(1):
                end = oracle.structural(('results', ex.results, ex.steps))
                break
        except (Trap, UncaughtException) as e:
            end = ('trap', str(e), ex.steps, ex.pc)
            break
    return states, end


def check_budgets(runtime, wasm, entry, args, budgets):
    """Run in ``budgets`` (cycled) and compare each stop with the one-step run."""
    states, end = trajectory(runtime, wasm, entry, args)
    store, inst = instance(runtime, wasm)
    ex = store.new_executor()
    ex.start(inst.exports[entry][1], list(args))
    k = 0
    while True:
        before = ex.steps
        try:
            done = ex.run(budgets[k % len(budgets)])
        except (Trap, UncaughtException) as e:      # an uncaught exception ends a run too
            assert ('trap', str(e), ex.steps, ex.pc) == end
            return
        k += 1
        if done:
            assert oracle.structural(('results', ex.results, ex.steps)) == end
            return
        # a budget is spent exactly (an if counting its else may overshoot by one)
        assert ex.steps - before in (budgets[(k - 1) % len(budgets)],
                                     budgets[(k - 1) % len(budgets)] + 1)
        assert state(store, ex) == states[ex.steps], (runtime, ex.steps)


FIB = wasmtime.wat2wasm('''(module
  (memory 1)
  (global $g (mut i32) (i32.const 0))
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func (export "loop") (param $n i32) (result i32) (local $i i32) (local $s i32) (local $f f32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (i32.store8 (local.get $i) (i32.mul (local.get $i) (i32.const 7)))
      (local.set $s (i32.add (local.get $s) (i32.load (local.get $i))))
      (local.set $f (f32.add (local.get $f) (f32.const 1.5)))
      (global.set $g (i32.div_u (i32.const 100) (i32.sub (local.get $n) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.ne (i32.and (local.get $s) (i32.const 3)) (i32.const 7)))))
    (i32.add (local.get $s) (i32.trunc_f32_s (local.get $f)))))
''')


@pytest.mark.parametrize('runtime', RUNTIMES)
@pytest.mark.parametrize('budgets', [[4], [5], [7], [1, 4, 2, 9, 3], [13, 6]])
def test_fixed_programs_stop_where_the_one_step_run_does(runtime, budgets):
    check_budgets(runtime, FIB, 'fib', [7], budgets)
    check_budgets(runtime, FIB, 'loop', [40], budgets)


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_a_trap_inside_a_fused_sequence_counts_as_unfused(runtime):
    """i32.div_u by zero at the loop's last iteration (n - i = 0 is never
    reached, so make n smaller than the loop's exit): the trap's count and
    PC equal the one-step run's."""
    bad = wasmtime.wat2wasm('''(module (func (export "f") (param $n i32) (result i32) (local $i i32)
      (loop $l
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (drop (i32.div_u (local.get $n) (i32.sub (i32.const 5) (local.get $i))))
        (br_if $l (i32.lt_u (local.get $i) (i32.const 9))))
      (local.get $i)))''')
    for budgets in ([4], [5], [6], [100], [1000000]):
        check_budgets(runtime, bad, 'f', [3], budgets)


def test_counts_are_the_unfused_interpreters():
    """Instruction counts of whole runs, as the interpreter counted them
    before superinstructions existed (recorded from that version)."""
    for runtime, entry, arg, want in (('wasmedge', 'fib', 10, ([55], 2031)),
                                      ('wamr', 'fib', 10, ([55], 2032)),
                                      ('wasmedge', 'loop', 40, ([4752], 1412)),
                                      ('wamr', 'loop', 40, ([4752], 1372))):
        store, inst = instance(runtime, FIB)
        ex = store.new_executor()
        ex.start(inst.exports[entry][1], [arg])
        ex.run()
        assert (ex.results, ex.steps) == want, (runtime, entry)


def test_fusion_finds_the_sequences():
    body = decode_module(FIB).funcs[1].body
    found = {(f.src1[0], f.src2[0], f.binop, f.dst, f.k) for f in fusion.fusions(
        body, {(a, b, d) for a in (fusion.STACK, fusion.LOCAL, fusion.CONST)
               for b in (fusion.STACK, fusion.LOCAL, fusion.CONST)
               for d in (fusion.PUSH, fusion.SET, fusion.BRIF)}).values()}
    assert (fusion.LOCAL, fusion.LOCAL, 'i32.ge_u', fusion.BRIF, 4) in found
    assert (fusion.LOCAL, fusion.CONST, 'i32.add', fusion.SET, 4) in found
    assert (fusion.STACK, fusion.CONST, 'i32.ne', fusion.BRIF, 3) in found
    fib = fusion.fusions(decode_module(FIB).funcs[0].body, {(fusion.LOCAL, fusion.CONST, fusion.IF)})
    assert [(f.binop, f.dst, f.k) for f in fib.values()] == [('i32.lt_u', fusion.IF, 4)]
    # a division that can trap ends its sequence
    assert not any(b.startswith('i32.div') and d != fusion.PUSH for _, _, b, d, _ in found)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(gen.modules(), st.lists(st.integers(1, 12), min_size=1, max_size=6))
def test_generated_modules_stop_where_the_one_step_run_does(gm, budgets):
    for runtime in RUNTIMES:
        for args in gm.args[:2]:
            try:
                check_budgets(runtime, gm.wasm, gm.entry, args, budgets)
            except Trap:          # instantiation trapped: nothing to step
                pass


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_seeded_modules_stop_where_the_one_step_run_does(runtime):
    rng = random.Random(5)
    for seed in range(25):
        gm = gen.from_seed(seed)
        budgets = [rng.randint(1, 12) for _ in range(rng.randint(1, 5))]
        try:
            check_budgets(runtime, gm.wasm, gm.entry, gm.args[0], budgets)
        except Trap:
            pass


INSTANCES = r'''
(module
  (type $v (func (result i32)))
  (memory 1)
  (global $g (mut i32) (i32.const 0))
  (global $h (mut i64) (i64.const 0))
  (table $t 2 funcref)
  (elem (i32.const 0) $bump $peek)
  (func $bump (result i32)
    (global.set $g (i32.add (global.get $g) (i32.const 1)))
    (global.set $h (i64.add (global.get $h) (i64.const 0x100000000)))
    (i32.store (i32.const 16) (i32.add (i32.load (i32.const 16)) (i32.const 10)))
    (global.get $g))
  (func $peek (result i32) (i32.add (global.get $g) (i32.load (i32.const 16))))
  (func $tail (result i32) (return_call $peek))
  (func (export "run") (result i32)
    (drop (call $bump))
    (drop (call_indirect (type $v) (i32.const 0)))
    (drop (table.grow $t (ref.func $bump) (i32.const 1)))
    (drop (call_indirect (type $v) (i32.const 2)))
    (drop (memory.grow (i32.const 1)))
    (i32.add (call $tail) (i32.wrap_i64 (i64.shr_u (global.get $h) (i64.const 32)))))
  (func (export "size") (result i32) (i32.add (memory.size) (table.size $t)))
''' + BRT_FUNC + ')'


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_the_instances_of_a_module_share_its_pre_decoding_not_its_state(runtime, monkeypatch):
    """A function is pre-decoded once per decoded module; another instance
    (in the same store or a fresh one) gets its own functions, globals,
    tables and memory in the copy.  Hand-computed: each run bumps $g and
    memory[16] three times (+1, +10), $h by 1 << 32, grows memory and $t
    by one; it returns $g + memory[16] + ($h >> 32)."""
    from engine.exec import wamr, wasmedge
    ex = wamr if runtime == 'wamr' else wasmedge
    made = []
    real = ex.compile_func
    monkeypatch.setattr(ex, 'compile_func', lambda store, fi: made.append(fi.idx) or real(store, fi))
    module = embedding.module_decode(wasmtime.wat2wasm(INSTANCES))

    def run(store, inst, name, *args):
        return embedding.func_invoke(store, embedding.instance_export(inst, name)[1], list(args))

    store = embedding.store_init(runtime)
    a = embedding.module_instantiate(store, module, [])
    assert run(store, a, 'run') == [36] and run(store, a, 'run') == [72]
    assert sorted(made) == [0, 1, 2, 3]         # $bump, $peek, $tail, run
    b = embedding.module_instantiate(store, module, [])
    assert run(store, b, 'run') == [36] and run(store, b, 'size') == [2 + 3]
    assert run(store, a, 'size') == [3 + 4] and run(store, a, 'run') == [108]
    fresh = embedding.store_init(runtime)
    c = embedding.module_instantiate(fresh, module, [])
    assert run(fresh, c, 'run') == [36] and run(fresh, c, 'run') == [72]
    assert run(fresh, c, 'brt', 5) == [12]
    assert sorted(made) == [0, 1, 2, 3, 4, 5], 'pre-decoded again for another instance'
    if runtime == 'wasmedge':     # a fault switched on is its own form (fuzz.mutants, tests)
        from engine import faults
        monkeypatch.setattr(faults, 'BR_TABLE_DEFAULT', True)
        other = embedding.store_init(runtime)
        d = embedding.module_instantiate(other, module, [])
        assert run(other, d, 'brt', 5) == [10]
