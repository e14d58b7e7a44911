"""The compiled tier of the WAMR model (engine/exec/fast_wamr.py) against
the WAMR interpreter: stopped at ANY step count N it holds exactly the
interpreter's state (byte-offset pc, cells, frames with ip/lp/labels,
steps, globals, memory, tables), its checkpoint is byte for byte the
interpreter's, it resumes to the same end, traps identically, and resumes
from restored image sets.  The helpers are test_fast_tier's, run with
``model='wamr'``."""

import pytest
import wasmtime

from engine import embedding
from engine.exec.fast_wamr import FastExecutor
from engine.migrate import checkpoint, images as im
from engine.syntax import ExternRef
from fuzz import gen, linked
from test_fast_tier import (WAT, FBITS, _generated, check_against_wasmtime, check_chunked,
                            check_every_stop, check_exhaustion, length, outcome, points_for, run,
                            setup, state)
import test_exec_wamr

M32 = 0xFFFFFFFF


def saved_equal(tmp_path):
    """A ``saved`` check for check_every_stop: both tiers' checkpoints at the
    stop, written as image directories, are byte for byte equal."""
    count = [0]

    def check(a, b):
        count[0] += 1
        dirs, refused = [], []
        for tier, (store, inst, ex) in (('interp', a), ('fast', b)):
            sha = im.module_sha256(b'')     # the same for both: only the bytes are compared
            d = tmp_path / f'{count[0]}-{tier}'
            try:
                images = checkpoint.save(ex, inst, sha, peers=linked.peers(store, inst))
            except checkpoint.ForeignInstanceError as e:    # stopped in a frame of the provider
                refused.append(str(e))
                continue
            im.write_images(images, str(d))
            dirs.append(d)
        assert len(refused) in (0, 2) and len(set(refused)) <= 1, refused
        if refused:
            return
        names = sorted(p.name for p in dirs[0].iterdir())
        assert names == sorted(p.name for p in dirs[1].iterdir())
        for name in names:
            assert (dirs[0] / name).read_bytes() == (dirs[1] / name).read_bytes(), \
                (a[2].steps, name)
    return check


def every_stop(wasm, entry, args, tmp_path=None, limit=100):
    total = length(wasm, entry, args, 'wamr')
    check_every_stop(wasm, entry, args, points_for(total, limit), 'wamr',
                     saved_equal(tmp_path) if tmp_path is not None else None)


@pytest.fixture(scope='module')
def wasm():
    return wasmtime.wat2wasm(WAT)


@pytest.mark.parametrize('entry,args', [
    ('mix', [9]), ('trap', [0]), ('trap', [4]), ('oob', [0]), ('oob', [2]), ('deep', [30]),
    ('ifelse', [0]), ('ifelse', [1]), ('unreach', [0]), ('unreach', [1]), ('bigexpr', [0]),
    ('bigexpr', [3]), ('fill', [30]), ('scan', [0]), ('scan', [90]),
    ('floats', [0x7FF0000000000001]), ('floats', [0x8000000000000000]),
    ('floats', [0x4000000000000000])] + [('fbits', [x, y, 3]) for x, y in FBITS])
def test_every_stop_of_handwritten_functions(wasm, entry, args, tmp_path):
    every_stop(wasm, entry, args, tmp_path)


@pytest.mark.parametrize('name,args,expect', test_exec_wamr.CASES)
def test_every_stop_of_the_wamr_interpreters_module(name, args, expect, tmp_path):
    """Cells of i64/f64/v128/references, multi-value blocks and calls,
    branches to the function label, tables: the WAMR interpreter's own
    test module, with its hand-computed results."""
    every_stop(test_exec_wamr.DATA, name, args, tmp_path)
    store, inst, ex = setup(test_exec_wamr.DATA, name, args, 'fast', model='wamr')
    assert isinstance(ex, FastExecutor)
    assert ex.run() and ex.results == expect


COUNTS = r'''
(module
  (elem declare func $id)
  (func (export "loop") (param i32)
    (loop $l (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 1))))))
  (func (export "ifelse") (param i32)
    (if (local.get 0) (then (nop)) (else (nop))))
  (func (export "ifonly") (param i32)
    (if (local.get 0) (then (nop))))
  (func $tc (param i32) (result i32)
    (if (result i32) (local.get 0)
      (then (return_call $tc (i32.sub (local.get 0) (i32.const 1))))
      (else (i32.const 42))))
  (func $id (param i32) (result i32) (local.get 0))
  (func (export "mixed") (param i32) (result i32)
    ;; a function the generator refuses (a tail call) between compiled ones
    (local i32)
    (loop $l
      (local.set 1 (i32.add (local.get 1) (call $tc (i32.and (local.get 0) (i32.const 3)))))
      (local.set 1 (i32.add (local.get 1) (call $id (local.get 0))))
      (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))
    (local.get 1))
  (func (export "simd") (param i32) (result i32) (local v128)
    (local.set 1 (i32x4.splat (local.get 0)))
    (block $d (loop $l
      (br_if $d (i32.eqz (local.get 0)))
      (local.set 1 (i32x4.add (local.get 1) (v128.const i32x4 1 2 3 4)))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br $l)))
    (i32x4.extract_lane 2 (local.get 1)))
  (func (export "refs") (param externref i32) (result externref funcref i32)
    (local.get 0)
    (ref.func $id)
    (call $id (local.get 1))
    (if (result i32) (ref.is_null (local.get 0)) (then (i32.const 1)) (else (i32.const 2)))
    (i32.add))
  (func (export "table") (param i32) (result i32) (local i32)
    (block $out (loop $l
      (local.set 1 (i32.add (local.get 1) (i32.const 1)))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br_table $l $out $l (i32.and (local.get 0) (i32.const 3)))))
    (local.get 1))
)
'''


@pytest.fixture(scope='module')
def counts():
    return wasmtime.wat2wasm(COUNTS)


@pytest.mark.parametrize('entry,args,wamr_steps,wasmedge_steps', [
    # loop; then per iteration local.get const sub tee br_if (5); a taken
    # br_if continues after the loop in WAMR (uncounted), on the loop in
    # WasmEdge (counted); then the loop's end and the final end
    ('loop', [3], 1 + 5 * 3 + 2, 1 + 5 * 3 + 2 + 2),
    # true: local.get if nop else; WAMR's else jumps to the end (counted),
    # WasmEdge's past it
    ('ifelse', [1], 6, 5),
    # false: WAMR continues after the else, WasmEdge counts the else
    ('ifelse', [0], 5, 6),
    # false without else: WAMR skips the end, WasmEdge lands on it
    ('ifonly', [0], 3, 4),
])
def test_counts_follow_each_models_rules(counts, entry, args, wamr_steps, wasmedge_steps):
    """Hand-counted instruction counts: both tiers of each model count as
    that model's interpreter does, and the two models differ where their
    branch rules do."""
    for model, expect in (('wamr', wamr_steps), ('wasmedge', wasmedge_steps)):
        for tier in ('interp', 'fast'):
            store, inst, ex = setup(counts, entry, args, tier, model=model)
            assert ex.run() and ex.steps == expect, (model, tier)


@pytest.mark.parametrize('entry,args,expect', [
    ('loop', [4], []), ('ifelse', [0], []), ('ifelse', [1], []), ('ifonly', [1], []),
    ('mixed', [6], [6 * 42 + 21]), ('simd', [5], [5 + 15]),
    ('refs', [ExternRef(3), 4], [ExternRef(3), None, 6]), ('refs', [None, 4], [None, None, 5]),
    ('table', [10], [1]), ('table', [12], [3])])
def test_every_stop_of_wamr_control_flow(counts, entry, args, expect, tmp_path):
    every_stop(counts, entry, args, tmp_path)
    store, inst, ex = setup(counts, entry, args, 'fast', model='wamr')
    assert ex.run()
    if entry == 'refs':         # the funcref is $id's store address
        expect[1] = inst.funcaddrs[4]
    assert ex.results == expect


@pytest.mark.parametrize('sizes', [(1,), (1, 2, 3), (2, 5, 17), (40, 200)])
def test_many_resumes(wasm, counts, sizes):
    for entry, args in (('mix', [40]), ('deep', [60]), ('fill', [300]), ('scan', [0])):
        check_chunked(wasm, entry, args, sizes, model='wamr')
    check_chunked(counts, 'mixed', [9], sizes, model='wamr')


def test_results_and_traps_match_wasmtime(wasm):
    """Independent truth: wasmtime runs the same module."""
    check_against_wasmtime(wasm, 'wamr')


def test_call_depth_and_stack_exhaustion_like_the_interpreter(wasm):
    """Same steps, pc, frames (ip, lp, labels) at the limit in both tiers."""
    check_exhaustion(wasm, 'wamr')


def test_store_marks_dirty_chunks(wasm):
    store, inst, ex = setup(wasm, 'fill', [5000], 'fast', model='wamr')
    mi = store.mems[inst.memaddrs[0]]
    mi.dirty[:] = bytes(len(mi.dirty))
    ex.run()
    assert [i for i, f in enumerate(mi.dirty) if f] == [2, 3, 9, 10, 11]


def test_resume_from_restored_image_set(wasm, tmp_path):
    """A WAMR set saved by the interpreter, restored into a fast store, runs
    compiled to the interpreter's end."""
    total = length(wasm, 'mix', [12], 'wamr')
    ref = setup(wasm, 'mix', [12], 'interp', model='wamr')
    run(ref[2], None)
    final = state(*ref)
    sha = im.module_sha256(wasm)
    for n in range(1, total, 23):
        a = setup(wasm, 'mix', [12], 'interp', model='wamr')
        run(a[2], n)
        im.write_images(checkpoint.save(a[2], a[1], sha), str(tmp_path / f'a{n}'))
        store = embedding.store_init('wamr', None, 'fast')
        inst = embedding.module_instantiate(store, linked.decoded(wasm), [], run_start=False)
        ex = checkpoint.restore(store, inst, im.read_images(str(tmp_path / f'a{n}')))
        assert isinstance(ex, FastExecutor)
        assert run(ex, None) == (True, None)
        got = state(store, inst, ex)
        assert (got['results'], got['steps'], got['memory'], got['globals']) == \
            (final['results'], final['steps'], final['memory'], final['globals'])


@pytest.mark.parametrize("block", range(2))
def test_every_stop_of_generated_modules(block, tmp_path):
    """The migration campaign's generator: for each module, every N (all of
    them for short runs, 45 spread over the run otherwise) with the saved
    images compared, and a run resumed many times."""
    for seed, gm, args in _generated(range(block * 5, block * 5 + 5)):
        every_stop(gm.wasm, gm.entry, args, tmp_path / f'{seed}-{len(args)}', 45)
        check_chunked(gm.wasm, gm.entry, args, (1, 3, 8, 50), seed, model='wamr')


def test_outcome_helper_reports_traps(wasm):
    """The harness itself: a trap is reported with its message and the
    stack left out of the comparison."""
    store, inst, ex = setup(wasm, 'trap', [0], 'fast', model='wamr')
    done, trap, st = outcome(store, inst, ex, None)
    assert done and trap == 'integer divide by zero' and st['stack'] is None


def test_campaign_checks_the_wamr_compiled_tier(monkeypatch):
    """fuzz.oracle.check_module runs the WAMR model's uninterrupted run
    under the other tier too, instruction count included: the fault
    ``fast_count`` (each compiled back-edge charged once more) shows there."""
    import random
    from engine import faults
    from fuzz import oracle
    from test_mutants import LOOP
    data = wasmtime.wat2wasm(LOOP)
    interp = oracle.uninterrupted(data, 'f', (10,), 'wamr', tier='interp')
    # loop, 10 iterations of 9, the loop's end, local.get, the final end; a
    # taken br_if continues after the loop (WasmEdge counts 103)
    assert (interp.results, interp.steps) == ([55], 1 + 90 + 3)
    monkeypatch.setattr(faults, 'FAST_COUNT', True)
    fast = oracle.uninterrupted(data, 'f', (10,), 'wamr', tier='fast')
    assert (fast.results, fast.steps) == ([55], interp.steps + 9)     # nine back-edges
    assert oracle.compare_tiers(data, 'f', (10,), fast, 'wamr', 'fast') == [
        f'uninterrupted wamr under the interp tier (against the fast tier): '
        f'{interp.steps} instructions executed, expected {fast.steps}']
    monkeypatch.setattr(faults, 'FAST_COUNT', False)
    seen = []
    real = oracle.compare_tiers

    def spy(wasm, entry, args, ref, runtime='wasmedge', tier=oracle.TIER):
        seen.append((runtime, tier, ref.steps))
        return real(wasm, entry, args, ref, runtime, tier)
    monkeypatch.setattr(oracle, 'compare_tiers', spy)
    assert oracle.check_module(data, 'f', [(10,)], random.Random(0), wasmtime=False)[1] is None
    assert seen == [('wasmedge', 'fast', 103), ('wamr', 'fast', 94)]


@pytest.mark.parametrize('fault', ['frame_sp', 'cell_num'])
def test_restored_labels_the_code_does_not_imply_run_as_the_interpreter_runs_them(
        monkeypatch, fault):
    """Compiled code follows the static block structure; a frame restored
    with other labels (here a translator fault writes them) is entered only
    where its labels are the static ones, so the run goes on exactly as in
    the interpreter, which acts on the labels it holds."""
    from engine import faults
    from fuzz import oracle
    wasm = wasmtime.wat2wasm(
        '(module (func (export "run") (param i32) (result i64) (local i64)'
        ' (i64.const 9)'
        ' (loop $l (param i64) (result i64)'
        '   (block (result i64) (i64.const 5) (nop) (br 0)) (i64.add)'
        '   (local.tee 0 (i32.sub (local.get 0) (i32.const 1))) (br_if $l))))')
    monkeypatch.setattr(faults, fault.upper(), True)
    for at in range(2, 12):
        got = []
        for tier in ('interp', 'fast'):
            try:
                o = oracle.migrated(wasm, 'run', (3,), [('wasmedge', at), ('wamr', None)],
                                    tier=tier)
                got.append((o.results, o.trap, o.steps))
            except Exception as e:          # the engine's own failure on the bad labels
                got.append((type(e).__name__, str(e)))
        assert got[0] == got[1], at


def test_a_function_the_generator_refuses_runs_in_the_interpreter(counts):
    """``$tc`` (a tail call) is not compiled: the executor interprets it in
    runs of INTERPRETED_BATCH steps, and ``mixed``, calling it from a compiled
    loop, still stops exactly (test_every_stop_of_wamr_control_flow)."""
    from engine.exec.compile import compiled
    store, inst, ex = setup(counts, 'mixed', [3], 'fast', model='wamr')
    assert ex.run() and ex.results == [3 * 42 + 6]
    tc, mixed = inst.funcaddrs[3], inst.funcaddrs[5]
    assert compiled(store, tc, 'wamr').entry == {}
    assert compiled(store, mixed, 'wamr').entry


@pytest.mark.parametrize('seed', range(6))
def test_every_stop_of_generated_float_dispatch_modules(seed):
    """test_fast_tier's property (every N, dispatch tree, float-domain f64
    locals) in the WAMR model."""
    import test_fast_tier
    test_fast_tier.test_every_stop_of_generated_float_dispatch_modules(seed, model='wamr')


def test_a_call_entry_s_frame_layout_needs_no_validation_pass():
    """At pc 0 (a call's entry) the layout's cell types and labels come
    without replaying validation: the same as the replay gives (no operand,
    the function's own label only), for every function of generated
    modules, whatever their first instruction."""
    from engine.exec import compile as C
    from engine.exec.fast_wamr import Layout
    from engine.valid import block_structure, operand_trace
    firsts = set()
    for seed in range(40):
        gm = gen.from_seed(seed)
        store = embedding.store_init('wamr', None, 'fast')
        module = linked.decoded(gm.wasm)
        inst = embedding.module_instantiate(store, module, linked.imports_for(store, module, gm.wasm))
        nimp = len(module.imported('func'))
        for k, addr in enumerate(inst.funcaddrs[nimp:]):
            c = C.compiled(store, addr, 'wamr')
            if c.code is None:
                continue
            lay = Layout(store, store.funcs[addr], c)
            firsts.add(lay.body[0].op)
            types, labels = lay.frame_types(0), lay.label_tuple(0)
            assert lay._trace is None and lay._blocks is None      # no replay
            code = lay.code
            assert types == tuple(code.types) + tuple(operand_trace(module, k)[0])
            assert labels == (code.func_label,) + tuple(
                code.args[lay.body[b].offset] for b in block_structure(module, k).open_at(0))
    assert {'block', 'loop'} & firsts                # some start by opening a block
