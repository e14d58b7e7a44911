"""Dirty-chunk tracking (``MemInst.dirty``): every writer of guest memory
flags the 4 KiB chunks it writes, and checkpoints read only those.

Truth is computed here independently, by scanning the whole memory: the
non-zero chunks must all be flagged (no writer forgot to mark), and the
image files written from the flags must be byte for byte the ones a full
scan gives.
"""


import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings

from engine.migrate import checkpoint, fork_images, images as im, neutral
from engine import embedding
from engine.binary import decode_module
from engine.errors import Trap, UncaughtException
from engine.runtime import CHUNK_SHIFT
from fuzz import gen, linked

RUNTIMES = ('wasmedge', 'wamr')
CHUNK = 1 << CHUNK_SHIFT
PAGES = 1024
SHA = 'a' * 64


def scanned(data):
    """Byte offsets of the non-zero chunks, by looking at every chunk."""
    zero = bytes(CHUNK)
    return [off for off in range(0, len(data), CHUNK) if bytes(data[off:off + CHUNK]) != zero]


def flagged(mem):
    return {i << CHUNK_SHIFT for i, f in enumerate(mem.dirty) if f}


def memory_img(data):
    """memory.img as docs/images.md describes it, from a full scan."""
    return b''.join(off.to_bytes(4, 'little') + bytes(data[off:off + CHUNK])
                    for off in scanned(data))


# ------------------------------------------------------------ a big memory, few chunks written

BIG = wasmtime.wat2wasm(f'''
(module
  (memory (export "mem") {PAGES})
  (data (i32.const 70000) "active")
  (data "passive")
  (func (export "go") (result i32)
    (i64.store (i32.const 8190) (i64.const -1))            ;; straddles chunks 1 and 2
    (i32.store8 (i32.const 40000000) (i32.const 7))
    (f64.store (i32.const 40960) (f64.const 1.5))
    (memory.fill (i32.const 12000000) (i32.const 9) (i32.const 10000))
    (memory.copy (i32.const 50000000) (i32.const 70000) (i32.const 6))
    (memory.init 1 (i32.const 60000000) (i32.const 0) (i32.const 7))
    (i32.store (i32.const 20000000) (i32.const 0))          ;; flagged but stays zero
    (v128.store64_lane 1 (i32.const 30000000) (v128.const i64x2 0 5))
    (v128.store (i32.const 30007290) (v128.const i32x4 1 2 3 4))     ;; straddles two chunks
    (drop (memory.grow (i32.const 1)))
    (i32.store (i32.const {PAGES * 65536 + 65532}) (i32.const 1))   ;; last bytes of the grown page
    (memory.fill (i32.const 8000) (i32.const 0) (i32.const 200))    ;; zeroes part of chunk 1
    (i32.const 0)))
''')


def _started(runtime, wasm=BIG, entry='go'):
    module = decode_module(wasm)
    store = embedding.store_init(runtime)
    inst = embedding.module_instantiate(store, module, [])
    ex = store.new_executor()
    ex.start(inst.exports[entry][1], [])
    return store, inst, ex


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_big_memory_checkpoints_equal_a_full_scan_at_every_instruction(runtime):
    store, inst, ex = _started(runtime)
    mem = store.mems[inst.memaddrs[0]]
    base = fork_images.baseline_of(*_started(runtime)[:2])
    assert flagged(mem) == {69632}               # the active segment's chunk (70000 // 4096 = 17)
    points = 0
    while True:
        data = bytes(mem.data)
        truth = scanned(data)
        assert set(truth) <= flagged(mem)
        images = checkpoint.save(ex, inst, SHA)
        assert im.encode_files(images)['memory.img'] == memory_img(data)
        assert images.page_count == len(data) // 65536
        # the neutral form and the forks' layout, from the same flags
        snap = checkpoint.snapshot_wasmedge(ex, inst) if runtime == 'wasmedge' else \
            checkpoint.snapshot_from_images(images, inst.module, inst.info)
        doc = neutral.document_from_snapshot(snap, inst.module, inst.info, SHA)
        assert doc['memory']['chunks'] == {str(o): data[o:o + CHUNK].hex() for o in truth}
        files = fork_images.fork_files(snap, inst.module, inst.info, runtime, base)
        present = sorted(set(truth) | set(scanned(base.memory)))
        assert files['memory.img'] == b''.join(o.to_bytes(4, 'little') + data[o:o + CHUNK]
                                               for o in present)
        points += 1
        if ex.run(1):
            break
    assert points >= 14
    # what the run flagged, exactly: the chunks written (zero or not)
    written = {70000, 4096, 8192, 40000000, 40960, 20000000, 30000000, 30003200, 30007296,
               50000000, 60000000, PAGES * 65536 + 61440}
    written = {o & ~(CHUNK - 1) for o in written} | \
        {o for o in range(12000000 & ~(CHUNK - 1), 12010000, CHUNK)}
    assert flagged(mem) == written
    assert 20000000 & ~(CHUNK - 1) not in scanned(mem.data)


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_checkpoint_reads_only_the_flagged_chunks(runtime):
    """A byte put behind the tracker's back is not seen: the checkpoint
    never looks at unflagged chunks (its cost follows what was written)."""
    store, inst, ex = _started(runtime)
    ex.run(3)
    mem = store.mems[inst.memaddrs[0]]
    mem.data[33 * CHUNK] = 1                         # not flagged
    images = checkpoint.save(ex, inst, SHA)
    assert 33 * CHUNK not in images.memory
    assert sorted(images.memory) == [o for o in scanned(mem.data) if o != 33 * CHUNK]


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_restore_flags_exactly_the_restored_chunks(runtime, tmp_path):
    store, inst, ex = _started(runtime)
    ex.run(9)
    images = checkpoint.save(ex, inst, SHA)
    im.write_images(images, str(tmp_path / 'set'))
    back = im.read_images(str(tmp_path / 'set'))
    store2 = embedding.store_init(runtime)
    inst2 = embedding.module_instantiate(store2, inst.module, [], run_start=False)
    ex2 = checkpoint.restore(store2, inst2, back)
    mem2 = store2.mems[inst2.memaddrs[0]]
    assert bytes(mem2.data) == bytes(store.mems[inst.memaddrs[0]].data)
    assert flagged(mem2) == set(images.memory) == set(scanned(mem2.data))
    assert len(mem2.dirty) == len(mem2.data) >> CHUNK_SHIFT
    ex2.run()
    ex.run()
    assert bytes(mem2.data) == bytes(store.mems[inst.memaddrs[0]].data)
    assert set(scanned(mem2.data)) <= flagged(mem2)


def test_grow_adds_clean_flags():
    store, inst, ex = _started('wasmedge')
    mem = store.mems[inst.memaddrs[0]]
    assert len(mem.dirty) == PAGES * 16
    assert mem.grow(2) == PAGES
    assert len(mem.dirty) == (PAGES + 2) * 16 and not any(mem.dirty[PAGES * 16:])


# ------------------------------------------------------------ the compiled tier's spans

SPANS = wasmtime.wat2wasm('''
(module
  (memory 2)
  (func (export "up") (param $p i32) (param $k i32)       ;; i32.store at p + 8, p += 4
    (loop $l
      (i32.store offset=8 (local.get $p) (i32.const -1))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      (br_if $l (local.tee $k (i32.sub (local.get $k) (i32.const 1))))))
  (func (export "down") (param $p i32) (param $k i32)     ;; i64.store at p, p -= 8
    (loop $l
      (i64.store (local.get $p) (i64.const -1))
      (local.set $p (i32.add (local.get $p) (i32.const -8)))
      (br_if $l (local.tee $k (i32.sub (local.get $k) (i32.const 1)))))))
''')


def _chunks(lo, hi):
    return set(range(lo & ~(CHUNK - 1), hi + 1, CHUNK))


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_a_batched_loop_flags_its_stores_as_one_span(runtime):
    """The compiled tier flags the stores of a loop at a local it steps one
    way once, as the span between the local's values on entering and on
    leaving the loop (``FuncGen.spans``), however the loop is left: done,
    stopped by the budget (every stop in a range), or trapping out of
    bounds.  At every stop the flags hold each chunk the interpreter
    flagged (which flags exactly the stores) and at most the chunk the local
    stepped into last; a local that wrapped around the address space flags
    every chunk."""
    cases = [('up', [4000, 2000], lambda p: (4008, p + 8 + 3), (4008, 4008 + 4 * 1999 + 3)),
             ('down', [90000, 3000], lambda p: (p, 90000 + 7), (90000 - 8 * 2999, 90007))]
    for entry, args, span, written in cases:
        for tier in ('interp', 'fast'):                  # run to the end: the same flags
            store, inst, ex = setup_spans(runtime, tier, entry, args)
            ex.run()
            src = ''.join(v.source for fi in store.funcs
                          for v in fi.info.__dict__.get('fast_code', {}).values() if v is not None)
            assert ('DS(D, ' in src) == (tier == 'fast'), (entry, tier)
            assert flagged(store.mems[0]) == _chunks(*written), (entry, tier)
        for stop in range(1, 2000, 97):
            got = {}
            for tier in ('interp', 'fast'):
                store, inst, ex = setup_spans(runtime, tier, entry, args)
                ex.run(stop)
                got[tier] = flagged(store.mems[0])
                assert set(scanned(store.mems[0].data)) <= got[tier]
            assert got['interp'] <= got['fast'], (entry, stop)
            assert got['fast'] <= _chunks(*span(_local(ex, 0))), (entry, stop)
    # out of bounds: the trap, not an error of the flagging, ends the run
    for tier in ('interp', 'fast'):
        store, inst, ex = setup_spans(runtime, tier, 'up', [2 * 65536 - 4000, 5000])
        with pytest.raises(Trap):
            ex.run()
        assert flagged(store.mems[0]) >= _chunks(2 * 65536 - 4000 + 8, 2 * 65536 - 1)
    # a local that wraps: 20, 12, 4 stored, then 0xFFFFFFFC traps; leaving
    # the loop below where it came in, the span is every chunk
    store, inst, ex = setup_spans(runtime, 'fast', 'down', [20, 100])
    with pytest.raises(Trap):
        ex.run()
    assert scanned(store.mems[0].data) == [0]
    assert flagged(store.mems[0]) == _chunks(0, 2 * 65536 - 1)


def test_the_steps_a_span_is_made_of():
    """The generator's forms of a local stepped by a constant (``_MOD``'s
    add and sub, wrapping or proved not to), read back as signed steps;
    anything else is no step, and the loop keeps its stores' own flags."""
    from engine.exec.compile import _step
    assert _step('l3 + 4', 'l3') == 4 and _step('l3 - 8', 'l3') == -8
    assert _step('l3 + 4 if l3 < 4294967292 else l3 - 4294967292', 'l3') == 4
    assert _step('l3 + 4294967288 if l3 < 8 else l3 - 8', 'l3') == -8        # i32.add -8
    assert _step('l3 - 1 if l3 >= 1 else l3 + 4294967295', 'l3') == -1
    assert _step('(l3 + 18446744073709551615) & 18446744073709551615', 'l3') == -1
    for other in ('l3 + 4 if l3 < 4294967291 else l3 - 4294967292', 'l2 + 4', 'l3 * 2',
                  '(l3 + 1) & 255', 'l3 - 1 if l3 >= 2 else l3 + 4294967295', 's0', None,
                  'l3 + 4 if l3 < 4294967292 else l2 - 4294967292'):
        assert _step(other, 'l3') is None, other


def setup_spans(runtime, tier, entry, args):
    store = embedding.store_init(runtime, None, tier)
    inst = embedding.module_instantiate(store, decode_module(SPANS), [])
    store.mems[0].dirty[:] = bytes(len(store.mems[0].dirty))
    ex = store.new_executor()
    ex.start(inst.exports[entry][1], list(args))
    return store, inst, ex


def _local(ex, j):
    """Local j (i32: one cell in the WAMR model) of the top frame: where
    the run stopped."""
    return ex.stack[(ex.frames[-1].lp if ex.model == 'wamr' else ex.frames[-1].vpos) + j]


# ------------------------------------------------------------ every writer marks (generated modules)

def _generated_run(gm, runtime, check_each_step, tier='interp'):
    """Run every call of a generated module; with ``check_each_step`` the
    flags are cleared before each instruction and every chunk it changed
    must be flagged after it (a writer that forgot to mark cannot hide
    behind a later marked write to the same chunk)."""
    store = embedding.store_init(runtime, None, tier)
    module = linked.decoded(gm.wasm)
    try:
        inst = embedding.module_instantiate(store, module,
                                            linked.imports_for(store, module, gm.wasm))
    except Trap:                                     # a trapping start function or segment
        return 0
    mems = store.mems
    for m in mems:
        assert set(scanned(m.data)) <= flagged(m), 'instantiation left a chunk unflagged'
    kind, addr = inst.exports[gm.entry]
    steps = 0
    for args in gm.args:
        ex = store.new_executor()
        ex.start(addr, list(args))
        try:
            if not check_each_step:
                ex.run(gen.BUDGET * 1000)
                continue
            while True:
                before = [bytes(m.data) for m in mems]
                for m in mems:
                    m.dirty[:] = bytes(len(m.dirty))
                done = ex.run(1)
                steps += 1
                for m, old in zip(mems, before):
                    new = m.data
                    changed = {o for o in range(0, min(len(old), len(new)), CHUNK)
                               if old[o:o + CHUNK] != new[o:o + CHUNK]}
                    assert changed <= flagged(m), (runtime, ex.steps, sorted(changed - flagged(m)))
                if done:
                    break
        except (Trap, UncaughtException):            # ends the call (exhaustion too)
            pass
    if not check_each_step:
        for m in mems:
            assert set(scanned(m.data)) <= flagged(m)
    return steps


@pytest.mark.parametrize('tier', ('interp', 'fast'))
@pytest.mark.parametrize('runtime', RUNTIMES)
def test_generated_modules_leave_no_nonzero_chunk_unflagged(runtime, tier):
    written = 0
    for seed in range(120):
        gm = gen.from_seed(seed)
        _generated_run(gm, runtime, False, tier)
        written += bool(gm.memory)
    assert written > 60


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(gen.modules())
def test_every_instruction_flags_what_it_changes(gm):
    for runtime in RUNTIMES:
        _generated_run(gm, runtime, True)


def test_generated_modules_exercise_the_memory_writers():
    """The two tests above mean something only if the generator writes
    memory in every way: scalar, lane and vector stores, fill, copy, init,
    data segments."""
    ops = set()
    for seed in range(120):
        gm = gen.from_seed(seed)
        for f in gm.module.funcs:
            ops.update(i.op for i in f.body)
        if any(d.mode == 'active' and d.init for d in gm.module.datas):
            ops.add('data segment')
    want = {'i32.store', 'i64.store8', 'f64.store', 'v128.store', 'memory.fill',
            'memory.copy', 'memory.init', 'data segment'}
    assert want <= ops, want - ops
    assert any(op.startswith('v128.store') and op.endswith('_lane') for op in ops)


# ------------------------------------------------------------ WASI host functions

@pytest.mark.parametrize('program,argv', [('stdio', ['stdio', '7', 'two words']),
                                          ('clock_random', ['c']), ('more', ['more'])])
def test_wasi_calls_flag_what_they_write(program, argv, tmp_path):
    """Each WASI call is run with the flags cleared: every chunk it changed
    must be flagged when it returns (fd_read, args/environ, clock, random,
    readdir, readlink, filestat, poll ...)."""
    from wasi_helpers import compile_c, engine_start, finish
    wasm = compile_c(program, str(tmp_path))
    (tmp_path / 'd').mkdir()
    store, inst, wasi, ex, out, err = engine_start(
        wasm, argv, dirs=[(str(tmp_path / 'd'), '/data')], env=[('GREETING', 'hi')],
        stdin=b'hello\nworld\n', deterministic=True)
    mem = store.mems[inst.memaddrs[0]]
    changing = set()

    def watched(name, host):
        def call(args):
            before = bytes(mem.data)
            saved = bytes(mem.dirty)
            mem.dirty[:] = bytes(len(mem.dirty))
            try:
                return host(args)
            finally:
                changed = {o for o in range(0, len(before), CHUNK)
                           if before[o:o + CHUNK] != mem.data[o:o + CHUNK]}
                assert changed <= flagged(mem), (name, sorted(changed - flagged(mem)))
                if changed:
                    changing.add(name)
                mem.dirty[:] = bytes(a | b for a, b in zip(saved, mem.dirty))
        return call

    for imp, addr in zip(inst.module.imported('func'), inst.funcaddrs):
        fi = store.funcs[addr]
        fi.host = watched(imp.name, fi.host)
    finish(wasi, ex)
    assert set(scanned(mem.data)) <= flagged(mem)
    assert changing, 'no WASI call wrote guest memory: the test checked nothing'
