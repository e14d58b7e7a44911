"""Migration mode (issue 3's acceptance check) on spec files and on
generated programs: a run stopped at an instruction count, moved to the
other runtime model and back, must end with the results, memory, globals
and tables of the uninterrupted run.

Truth is the uninterrupted run of the same call (whose results the spec
assertions themselves check), and the check is shown to fail when the
translator corrupts one cell.
"""

import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance import migration
from conformance.migration import Migrator, StoreState, checkpoint_points, migrate_call
from conformance.runner import run_script
from conformance.wast import parse_file, parse_wast
from engine import embedding
from engine.migrate import translate as tr
from engine.errors import Exhaustion, Trap, UncaughtException
from fuzz import gen
from spectests import manifest as mf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNTIMES = ('wasmedge', 'wamr')


def suite_file(name):
    try:
        directory = mf.suite_dir('wasm-2.0')
    except mf.ManifestError as e:
        pytest.skip(f'spec testsuite not available: {e}')
    return os.path.join(directory, name + '.wast')


def migrate_file(path, runtime, name=None):
    m = Migrator(name or os.path.basename(path), runtime)
    outcomes = run_script(parse_file(path), executor=runtime, migrator=m, standard=2)   # 2.0 files
    return m.stats, outcomes


# ------------------------------------------------------------ spec files

# A cheap sample covering calls, every kind of branch, blocks, multi-value,
# i64 cells, memory, globals, bulk memory, references and v128 lanes (the
# whole suite runs in `python -m conformance --migrate --runtime both`).
SPEC_FILES = ['fac', 'br_table', 'loop', 'select', 'i64', 'local_tee', 'left-to-right', 'block',
              'if', 'func', 'unwind', 'simd_lane', 'bulk', 'global', 'memory', 'return']


@pytest.mark.parametrize('runtime', RUNTIMES)
@pytest.mark.parametrize('name', SPEC_FILES)
def test_spec_file_migrates_without_mismatch(name, runtime):
    stats, outcomes = migrate_file(suite_file(name), runtime)
    failed = [o for o in outcomes if o.status == 'failed']
    assert not failed, failed[:5]
    assert stats['mismatches'] == 0
    assert stats['direction'] == f'{runtime}->{migration.other_runtime(runtime)}->{runtime}'
    assert stats['migrated'] > 0 and stats['checkpoints'] >= stats['migrated']
    assert stats['points'] >= stats['migrated']


def test_a_corrupted_cell_is_reported(monkeypatch):
    """Flip the low bit of the top frame's first cell on every translation:
    the migrated runs of fac must then differ, and the failure must name
    the line and the checkpoint."""
    real = tr.translate

    def corrupting(images, module, info, to):
        out = real(images, module, info, to)
        top = out.frames[0]
        if top.cells:
            top.cells[0] ^= 1
        return out
    monkeypatch.setattr(tr, 'translate', corrupting)
    stats, outcomes = migrate_file(suite_file('fac'), 'wasmedge')
    failed = [o for o in outcomes if o.status == 'failed']
    assert stats['mismatches'] > 0 and len(failed) == stats['mismatches']
    assert all(o.reason.startswith(f'migration mismatch at line {o.line}, checkpoint at ')
               for o in failed), failed


def test_store_is_left_in_the_uninterrupted_state():
    """After a migrated call the store holds exactly what a plain run leaves."""
    wat = '''(module (memory 1) (global $g (export "g") (mut i32) (i32.const 0))
      (func (export "f") (param i32) (result i32)
        (local $i i32)
        (loop $l (i32.store8 (local.get $i) (i32.add (local.get $i) (local.get 0)))
          (global.set $g (i32.add (global.get $g) (local.get $i)))
          (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 50))))
        (memory.grow (i32.const 1))))'''
    plain, migrated = (embedding.store_init('wasmedge') for _ in range(2))
    addrs = []
    for store in (plain, migrated):
        module = embedding.module_decode(__import__('wasmtime').wat2wasm(wat))
        inst = embedding.module_instantiate(store, module, [])
        addrs.append(inst.exports['f'][1])
    want = embedding.func_invoke(plain, addrs[0], [7])
    got, rep = migrate_call(migrated, addrs[1], [7], 'wasmedge', 'wamr', seed='x')
    assert got == want == [1] and rep.mismatch is None and rep.points >= 3
    assert StoreState(plain).diff(migrated) is None
    assert bytes(migrated.mems[0].data[:50]) == bytes((i + 7) & 0xFF for i in range(50))


def test_foreign_frames_are_stepped_over_and_foreign_refs_linked():
    """An image set describes one instance.  While a frame of another
    instance is on the stack the run is saved at the next instruction where
    none is (the call still migrates); a table of the instance holding a
    function of another instance is saved with a link to it
    (engine/migrate/links.py): the runner names every instance it made,
    by its registered name or $id, else by the line of its module command
    (an anonymous module; one whose instantiation trapped after writing
    its functions into a shared table)."""
    text = '''
      (module $A
        (func $f (export "f") (param i32) (result i32)
          (i32.mul (local.get 0) (i32.const 3)))
        (func $k (result i32) (i32.const 42))
        (table (export "t") 3 funcref)
        (elem (i32.const 0) $k))
      (register "A" $A)
      (module
        (import "A" "f" (func $f (param i32) (result i32)))
        (func (export "g") (result i32) (i32.add (call $f (i32.const 5)) (i32.const 1)))
        (export "f" (func $f)))
      (assert_return (invoke "g") (i32.const 16))
      (assert_return (invoke "f" (i32.const 2)) (i32.const 6))
      (module
        (import "A" "t" (table 3 funcref))
        (type $r (func (result i32)))
        (func (export "h") (result i32) (call_indirect (type $r) (i32.const 0))))
      (assert_return (invoke "h") (i32.const 42))
      (module
        (import "A" "t" (table 3 funcref))
        (func $m (result i32) (i32.const 7))
        (elem (i32.const 1) $m))
      (assert_trap
        (module
          (import "A" "t" (table 3 funcref))
          (func $n (result i32) (i32.const 8))
          (elem (i32.const 2) $n)
          (func $start (unreachable))
          (start $start))
        "unreachable")
      (module
        (import "A" "t" (table 3 funcref))
        (type $r (func (result i32)))
        (func (export "h1") (param i32) (result i32)
          (call_indirect (type $r) (local.get 0))))
      (assert_return (invoke "h1" (i32.const 1)) (i32.const 7))
      (assert_return (invoke "h1" (i32.const 2)) (i32.const 8))
    '''
    script = parse_wast(text)
    for runtime in RUNTIMES:
        m = Migrator('inline', runtime)
        outcomes = run_script(script, executor=runtime, migrator=m)
        assert [o.status for o in outcomes] == ['passed'] * len(outcomes)
        st_ = m.stats
        assert st_['skipped'] == 0 and st_['mismatches'] == 0, st_['skips']
        # g (stepping over the frames of A's f), f (inside A itself), h
        # (A's $k in the table: a link to ("A", 1)) and h1 twice (links to
        # the anonymous module's $m and the trapped one's $n, by line)
        assert st_['migrated'] == 5


def test_the_runner_names_every_instance_it_made():
    """Registered names first, then $ids, then "line N" of the module
    command (anonymous instances and ones whose instantiation trapped)."""
    from conformance.runner import _Script
    from engine import embedding as emb
    s = _Script(emb, 'wasmedge')
    s.migrator = Migrator('inline', 'wasmedge')      # only a migrating run names by line
    wat = '(module (table (export "t") 1 funcref) (func $f) (elem (i32.const 0) $f))'
    a = s.instantiate(emb.module_decode(__import__('wasmtime').wat2wasm(wat)), 3)
    s.bind(s.named, '$A', a)
    s.bind(s.registry, 'A', a)
    trapping = ('(module (import "A" "t" (table 1 funcref)) (func $g) (elem (i32.const 0) $g) '
                '(func $s (unreachable)) (start $s))')
    with pytest.raises(Trap):
        s.instantiate(emb.module_decode(__import__('wasmtime').wat2wasm(trapping)), 9)
    peers = s.peers()
    assert list(peers) == ['spectest', 'A', '$A', 'line 3', 'line 9']
    assert peers['line 3'] is a and peers['line 9'] is not a
    assert s.store.tables[a.tableaddrs[0]].elem[0] == peers['line 9'].funcaddrs[0]
    # made once per change of a name, not once per migrated call
    assert s.peers() is peers
    s.bind(s.registry, 'B', peers['line 9'])
    s.bind(s.named, '$A', None)
    assert list(s.peers()) == ['spectest', 'A', 'B', 'line 3', 'line 9']


def test_checkpoint_points():
    assert checkpoint_points(0, 's') == []
    assert checkpoint_points(1, 's') == [0]
    pts = checkpoint_points(1000, 'file:12')
    assert {1, 500, 999} <= set(pts) and all(0 <= p < 1000 for p in pts)
    assert pts == checkpoint_points(1000, 'file:12')


def test_conformance_cli_migrate_flag():
    p = subprocess.run([sys.executable, '-m', 'conformance', '--migrate', 'fac', '--runtime', 'both',
                        '--jobs', '1', '-q'], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    summary = [l for l in p.stdout.splitlines() if l.startswith('migration (')]
    assert len(summary) == 1 and ', 0 mismatches' in summary[0], p.stdout
    assert 'wasmedge->wamr->wasmedge' in summary[0] and 'wamr->wasmedge->wamr' in summary[0]


# ------------------------------------------------------------ generated programs

def _instance(store, wasm):
    """The generated module's instance; a linked one's provider first
    (its frames and state are another instance's: the migration mode
    steps over the provider's frames and resets only the main instance)."""
    from fuzz import linked
    module = embedding.module_decode(wasm)
    return embedding.module_instantiate(store, module, linked.imports_for(store, module, wasm))


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(gm=gen.modules(), data=st.data())
def test_generated_programs_migrate_at_random_points(gm, data):
    from fuzz import linked             # a linked module's links name its provider
    for a in RUNTIMES:
        b = migration.other_runtime(a)
        store = embedding.store_init(a)
        inst = _instance(store, gm.wasm)
        addr = inst.exports[gm.entry][1]
        for args in gm.args:
            def points(n):
                return data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3,
                                          unique=True), label=f'points of {n}')
            try:
                _, rep = migrate_call(store, addr, list(args), a, b, seed=None, points=points,
                                      peers=linked.peers(store, inst))
            except (Trap, Exhaustion, UncaughtException):
                continue           # the uninterrupted run traps (or throws): nothing to compare with
            assert rep.mismatch is None, rep.mismatch
            assert rep.skipped is None, rep.skipped


def test_conformance_migrate_goes_through_the_neutral_form():
    """The hop back to the first model goes through neutral.json: a fault in
    the neutral writer alone (dropped data segments forgotten) fails the
    bulk-memory script's migrated calls."""
    env = dict(os.environ, WASM_MIGRATE_FAULT='neutral_dropped')
    p = subprocess.run([sys.executable, '-m', 'conformance', '--migrate', 'bulk', '--runtime', 'wasmedge',
                        '--jobs', '1', '-q'], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 1, p.stdout + p.stderr
    summary = [l for l in p.stdout.splitlines() if l.startswith('migration (')]
    assert len(summary) == 1 and ', 0 mismatches' not in summary[0], p.stdout


# ------------------------------------------------------------ restore costs

RESTORE_WAT = '''(module
  (memory 2)
  (data (i32.const 0) "hello, data segment")
  (func (export "f") (result i32)
    (i32.store (i32.const 0) (i32.const 0))              ;; part of the segment's chunk
    (i32.store (i32.const 4) (i32.const 0))
    (i32.store (i32.const 8) (i32.const 0))
    (i32.store (i32.const 12) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 0))
    (i32.store (i32.const 70000) (i32.const 0x01020304))  ;; the second page
    (nop)
    (i32.load (i32.const 70000))))'''


def _stopped(runtime):
    """A run of RESTORE_WAT stopped at its nop, and the images of it."""
    import wasmtime
    from engine.migrate import checkpoint, images as im
    wasm = bytes(wasmtime.wat2wasm(RESTORE_WAT))
    store = embedding.store_init(runtime)
    inst = embedding.module_instantiate(store, embedding.module_decode(wasm), [], run_start=False)
    ex = store.new_executor()
    ex.start(inst.exports['f'][1], [])
    ex.run(18)                              # 6 stores of 3 instructions
    images = checkpoint.save(ex, inst, im.module_sha256(wasm), 'f', ['i32'])
    return wasm, bytes(store.mems[inst.memaddrs[0]].data), images


@pytest.mark.parametrize('saved', RUNTIMES)
@pytest.mark.parametrize('target', RUNTIMES)
def test_restore_reads_the_images_once_and_writes_memory_once(monkeypatch, saved, target):
    """checkpoint.restore turns the images into the neutral form once (also
    when it translates them to the other model, and for WAMR, whose loader
    used to read them a second time), never builds the whole memory there,
    and leaves exactly the saved memory in a fresh instance whose data
    segment had written a chunk the images hold as zeros; the dirty flags
    are exactly the chunks it restored."""
    from engine.migrate import checkpoint, images as im
    wasm, memory, images = _stopped(saved)
    assert sorted(images.memory) == [69632]             # chunk 0 is all zeros again
    calls = []
    real = tr.snapshot_from_images

    def counted(*args, **kw):
        calls.append(kw.get('memory', True))
        return real(*args, **kw)
    monkeypatch.setattr(tr, 'snapshot_from_images', counted)
    monkeypatch.setattr(checkpoint, 'snapshot_from_images', counted)
    store = embedding.store_init(target)
    inst = embedding.module_instantiate(store, embedding.module_decode(wasm), [], run_start=False)
    mem = store.mems[inst.memaddrs[0]]
    data, dirty = mem.data, mem.dirty
    assert data[:5] == b'hello'
    ex = checkpoint.restore(store, inst, images, target)
    assert calls == [False]
    assert mem.data is data and mem.dirty is dirty        # in place: executors hold them
    assert bytes(mem.data) == memory
    assert [k for k, f in enumerate(mem.dirty) if f] == [70000 >> 12]
    assert ex.run() and ex.results == [0x01020304] and ex.steps == images.steps + 4   # nop, const, load, end


def test_restore_of_a_whole_memory_flags_its_non_zero_chunks():
    """The neutral form holds the whole memory: restoring it copies it once
    and flags the non-zero chunks dirty."""
    from engine.migrate import checkpoint
    wasm, memory, images = _stopped('wasmedge')
    module = embedding.module_decode(wasm)
    store = embedding.store_init('wasmedge')
    inst = embedding.module_instantiate(store, module, [], run_start=False)
    snap = tr.snapshot_from_images(images, inst.module, inst.info)
    assert snap.chunk_data is None and len(snap.memory) == 2 * 65536
    ex = checkpoint.restore_wasmedge(store, inst, snap)
    mem = store.mems[inst.memaddrs[0]]
    assert bytes(mem.data) == memory
    assert [k for k, f in enumerate(mem.dirty) if f] == [70000 >> 12]
    assert ex.run() and ex.results == [0x01020304]


def test_a_pinned_files_migration_skip_must_be_allowed(monkeypatch):
    """With ``allowed`` (a pinned file: the manifest's skips of kind
    "migration") a call that cannot be migrated fails its command unless
    its line is listed; without it (an unpinned file) it is only counted."""
    script = parse_wast('''
      (module (func (export "f") (result i32) (i32.const 1)))
      (assert_return (invoke "f") (i32.const 1))''')

    def skipping(store, funcaddr, args, a, b, seed, peers=None):
        rep = migration.CallReport()
        rep.skipped, rep.points = 'cannot checkpoint: for the test', 1
        return [1], rep
    monkeypatch.setattr(migration, 'migrate_call', skipping)
    for allowed, status in ((None, 'passed'), ({3: 'why'}, 'passed'), ({}, 'failed'),
                            ({4: 'another line'}, 'failed')):
        m = Migrator('inline', 'wasmedge', allowed=allowed)
        outcomes = run_script(script, executor='wasmedge', migrator=m)
        assert outcomes[-1].status == status, allowed
        assert m.stats['skipped'] == 1
        if status == 'failed':
            assert 'unexpected migration skip at line 3' in outcomes[-1].reason
