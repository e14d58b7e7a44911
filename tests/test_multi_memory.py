"""Multi-memory, memory64 and table64 (Wasm 3.0) in both executor models
and the compiled tier, and migration of runs that use them: a checkpoint
at every instruction, moved between the models through image bytes and
neutral.json, must finish like the uninterrupted run; broken image files
for the new state are refused naming file and field.

Independent truth: wasmtime (multi-memory and memory64 enabled) for the
results; hand-computed bytes for the memory and table contents."""

import json
import os
import struct

import pytest
import wasmtime

from conformance.migration import migrate_call
from fuzz import imagecheck
from engine import embedding as E
from engine.errors import Trap, ValidationError
from engine.migrate import checkpoint, images as im, neutral
from engine.migrate.translate import snapshot_from_images, translate
from wat_helpers import invalid_wat

RUNTIMES = ('wasmedge', 'wamr')

# Memory 0 is 32-bit, memory 1 64-bit (grown at run time), the table is
# 64-bit and called through; a data segment and the bulk operations name
# memory 1, memory.copy goes between the two (i32 length: one side is
# 32-bit).  The loop keeps values on the stack across every kind of
# instruction, so the checkpoints see i64 addresses in frames too.
WAT = r'''(module
  (type $bin (func (param i64 i64) (result i64)))
  (memory $m0 1 2)
  (memory $m1 i64 1 3)
  (table $t i64 4 funcref)
  (elem (table $t) (i64.const 0) func $add $mul)
  (data (memory $m1) (i64.const 16) "\01\02\03\04")
  (global $g (mut i64) (i64.const 0))
  (func $add (type $bin) (i64.add (local.get 0) (local.get 1)))
  (func $mul (type $bin) (i64.add (i64.mul (local.get 0) (local.get 1)) (i64.const 1)))
  (func (export "run") (param $n i32) (result i64)
    (local $i i32) (local $acc i64)
    (global.set $g (memory.grow $m1 (i64.const 1)))
    (drop (table.grow $t (ref.null func) (i64.const 2)))
    (loop $l
      (i32.store $m0 (i32.mul (local.get $i) (i32.const 4)) (i32.add (local.get $i) (i32.const 3)))
      (local.set $acc
        (call_indirect $t (type $bin) (local.get $acc)
          (i64.load32_u $m0 (i32.mul (local.get $i) (i32.const 4)))
          (i64.extend_i32_u (i32.and (local.get $i) (i32.const 1)))))
      (i64.store $m1 offset=65536 (i64.mul (i64.extend_i32_u (local.get $i)) (i64.const 8))
                 (local.get $acc))
      (memory.copy $m0 $m1 (i32.const 1024) (i64.const 65536) (i32.const 16))
      (memory.fill $m1 (i64.const 4096) (i32.const 0xAB) (i64.const 8))
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
    (i64.add (local.get $acc)
      (i64.add (i64.load $m1 (i64.const 16))
        (i64.add (i64.extend_i32_u (i32.load $m0 (i32.const 1028)))
          (i64.add (memory.size $m1) (table.size $t))))))
  (func (export "load1") (param i64) (result i32) (i32.load $m1 (local.get 0)))
  (func (export "grow1") (param i64) (result i64) (memory.grow $m1 (local.get 0)))
  (func (export "get") (param i64) (result funcref) (table.get $t (local.get 0)))
)'''


@pytest.fixture(scope='module')
def wasm():
    return wasmtime.wat2wasm(WAT)


def wasmtime_run(wasm, n):
    cfg = wasmtime.Config()
    cfg.wasm_multi_memory = True
    cfg.wasm_memory64 = True
    engine = wasmtime.Engine(cfg)
    store = wasmtime.Store(engine)
    inst = wasmtime.Instance(store, wasmtime.Module(engine, wasm), [])
    return inst.exports(store)['run'](store, n)


def instance(wasm, runtime, tier='interp'):
    store = E.store_init(runtime, **({'tier': tier} if tier != 'interp' else {}))
    inst = E.module_instantiate(store, E.module_decode(wasm), [])
    return store, inst


@pytest.mark.parametrize('tier', ['interp', 'fast'])
@pytest.mark.parametrize('runtime', RUNTIMES)
def test_runs_like_wasmtime(wasm, runtime, tier):
    store, inst = instance(wasm, runtime, tier)
    for n in (1, 2, 7):
        store, inst = instance(wasm, runtime, tier)
        assert E.func_invoke(store, inst.exports['run'][1], [n]) == [wasmtime_run(wasm, n)]
    # the state by hand: memory 1 grew by one page, its data segment, the
    # fill, the accumulator stored at 65536 + 8 i; the table grew by two
    acc = 0
    accs = []
    for i in range(7):
        acc = (acc + i + 3) if i % 2 == 0 else (acc * (i + 3) + 1)
        accs.append(acc)
    m0, m1 = (store.mems[a] for a in inst.memaddrs)
    assert (m0.type.at, m1.type.at) == ('i32', 'i64')
    assert len(m1.data) == 2 * 65536 and m1.type.limits.min == 2
    assert m1.data[16:20] == b'\x01\x02\x03\x04' and m1.data[4096:4104] == b'\xab' * 8
    assert [struct.unpack_from('<Q', m1.data, 65536 + 8 * i)[0] for i in range(7)] == accs
    assert m0.data[1024:1040] == m1.data[65536:65552]
    assert [struct.unpack_from('<I', m0.data, 4 * i)[0] for i in range(7)] == [i + 3 for i in range(7)]
    tab = store.tables[inst.tableaddrs[0]]
    assert tab.type.at == 'i64' and len(tab.elem) == 6


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_bounds_and_grow_failure(wasm, runtime):
    """i64 addresses past the end (and past 2^32, 2^64 - 1) trap; grow past
    the maximum returns -1 as an i64; table.get past the end traps."""
    store, inst = instance(wasm, runtime)
    load1, grow1, get = (inst.exports[n][1] for n in ('load1', 'grow1', 'get'))
    assert E.func_invoke(store, load1, [65532]) == [0]
    for addr in (65533, 1 << 32, (1 << 64) - 1):
        with pytest.raises(Trap, match='out of bounds memory access'):
            E.func_invoke(store, load1, [addr])
    assert E.func_invoke(store, grow1, [3]) == [(1 << 64) - 1]      # max 3 pages
    assert E.func_invoke(store, grow1, [2]) == [1]
    assert E.func_invoke(store, grow1, [1 << 40]) == [(1 << 64) - 1]
    assert E.func_invoke(store, get, [1]) == [inst.funcaddrs[1]]
    with pytest.raises(Trap, match='out of bounds table access'):
        E.func_invoke(store, get, [1 << 32])


def test_limits_checked_before_allocation():
    """A 64-bit memory's or table's minimum beyond the resource limits is
    refused (LimitError) before anything is allocated, and a 64-bit grow
    fails (-1 as an i64) at the limit."""
    from engine.limits import LimitError, Limits
    wasm = wasmtime.wat2wasm('(module (memory i64 100000))')
    store = E.store_init('wasmedge', limits=Limits(max_memory_pages=16))
    with pytest.raises(LimitError, match='memory 0 minimum pages'):
        E.module_instantiate(store, E.module_decode(wasm), [])
    wasm = wasmtime.wat2wasm('(module (memory $s i64 1) (func (export "g") (result i64)'
                             ' (memory.grow $s (i64.const 20))))')
    store = E.store_init('wamr', limits=Limits(max_memory_pages=16))
    inst = E.module_instantiate(store, E.module_decode(wasm), [])
    assert E.func_invoke(store, inst.exports['g'][1], []) == [(1 << 64) - 1]
    assert len(store.mems[inst.memaddrs[0]].data) == 65536
    wasm = wasmtime.wat2wasm('(module (table i64 0x1_0000_0000_0000 funcref))')
    with pytest.raises(LimitError, match='table 0 minimum size'):
        E.module_instantiate(E.store_init('wasmedge'), E.module_decode(wasm), [])


def test_validation():
    invalid = invalid_wat
    invalid('(module (memory i64 1) (func (drop (i32.load (i32.const 0)))))', 'type mismatch')
    invalid('(module (memory 1) (memory 1) (func (drop (i32.load 2 (i32.const 0)))))',
            'unknown memory 2')
    invalid('(module (table i64 1 funcref) (func (call_indirect (i32.const 0))))',
            'type mismatch')
    invalid('(module (memory 1) (memory i64 1) (func'
            ' (memory.copy 0 1 (i32.const 0) (i64.const 0) (i64.const 0))))', 'type mismatch')
    # the 2.0 rules still refuse a second memory
    m = E.module_decode(wasmtime.wat2wasm('(module (memory 1) (memory 1))'))
    with pytest.raises(ValidationError, match='multiple memories'):
        E.module_validate(m, standard=2)
    E.module_validate(E.module_decode(wasmtime.wat2wasm('(module (memory 1) (memory 1))')))


@pytest.mark.parametrize('a, b', [('wasmedge', 'wamr'), ('wamr', 'wasmedge')])
def test_migrates_at_every_instruction(wasm, a, b):
    """Checkpoint after every instruction count, move a -> b -> a (through
    image bytes and neutral.json), finish, and compare results, every
    memory, table and global with the uninterrupted run."""
    store, inst = instance(wasm, a)
    results, report = migrate_call(store, inst.exports['run'][1], [3], a, b, seed=None,
                                   points=lambda n: list(range(n)))
    assert results == [wasmtime_run(wasm, 3)]
    assert report.mismatch is None and report.skipped is None
    assert report.points == report.steps > 80
    assert report.checkpoints >= report.points


def stopped_images(wasm, runtime, steps=40):
    store, inst = instance(wasm, runtime)
    ex = store.new_executor(runtime) if hasattr(store, 'new_executor') else None
    ex.start(inst.exports['run'][1], [3])
    assert not ex.run(steps)
    sha = im.module_sha256(wasm)
    return store, inst, checkpoint.save(ex, inst, sha, 'run', ['i64'])


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_image_files_of_several_memories(wasm, runtime, tmp_path):
    """Memory 1 goes to memory1.img / mem_page_count1.img in a version 3
    set; memory 0 keeps its file names; the set reads back equal, and
    restores into a run that finishes like the uninterrupted one."""
    store, inst, images = stopped_images(wasm, runtime)
    assert len(images.memories) == 1 and images.memories[0].page_count == 2
    d = str(tmp_path / 'ck')
    im.write_images(images, d)
    names = sorted(os.listdir(d))
    assert {'memory.img', 'mem_page_count.img', 'memory1.img', 'mem_page_count1.img'} <= set(names)
    assert 'memory2.img' not in names
    assert json.load(open(os.path.join(d, 'manifest.json')))['version'] == 3
    assert struct.unpack('<I', open(os.path.join(d, 'mem_page_count1.img'), 'rb').read()) == (2,)
    back = im.read_images(d)
    assert back.memories == images.memories
    imagecheck.check_dir(d, images, back)       # the second reader, from docs/images.md
    assert back.memories[0].chunks[0][16:20] == b'\x01\x02\x03\x04'
    store2, inst2 = instance(wasm, runtime)
    ex = checkpoint.restore(store2, inst2, back)
    ex.run()
    assert ex.results == [wasmtime_run(wasm, 3)]


def test_single_memory_sets_are_unchanged(tmp_path):
    """A module with one 32-bit memory still writes version 1 and no
    memory{i}.img (existing sets and the forks' layout)."""
    wasm = wasmtime.wat2wasm('(module (memory 1) (func (export "f") (result i32)'
                             ' (i32.store (i32.const 0) (i32.const 7)) (i32.load (i32.const 0))))')
    store, inst = instance(wasm, 'wasmedge')
    ex = store.new_executor('wasmedge')
    ex.start(inst.exports['f'][1], [])
    ex.run(3)
    images = checkpoint.save(ex, inst, im.module_sha256(wasm), 'f', ['i32'])
    d = str(tmp_path / 'ck')
    im.write_images(images, d)
    assert json.load(open(os.path.join(d, 'manifest.json')))['version'] == 1
    assert not [n for n in os.listdir(d) if n.startswith(('memory1', 'mem_page_count1'))]


def _broken(wasm, tmp_path, change):
    store, inst, images = stopped_images(wasm, 'wamr')
    d = str(tmp_path / 'ck')
    im.write_images(images, d)
    change(d)
    store2, inst2 = instance(wasm, 'wamr')
    return lambda: checkpoint.restore(store2, inst2, im.read_images(d))


def _write(d, name, data):
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


@pytest.mark.parametrize('change, msg', [
    (lambda d: os.remove(os.path.join(d, 'mem_page_count1.img')),
     r'mem_page_count1.img: missing, but memory1.img is present'),
    (lambda d: (os.remove(os.path.join(d, 'mem_page_count1.img')),
                os.remove(os.path.join(d, 'memory1.img'))),
     r'mem_page_count1.img: missing: the set holds 1 memories but the module has 2'),
    (lambda d: _write(d, 'mem_page_count1.img', struct.pack('<I', 4)),
     r'mem_page_count1.img: page count: 4 is outside'),
    (lambda d: _write(d, 'mem_page_count1.img', struct.pack('<I', 70000)),
     r'mem_page_count1.img: .*page count.*70000 exceeds 65536'),
    (lambda d: _write(d, 'mem_page_count1.img', b'\x01\x00'),
     r'mem_page_count1.img'),
    (lambda d: _write(d, 'memory1.img', struct.pack('<I', 4097) + bytes(4096)),
     r'memory1.img: page offset: 0x1001 is not a multiple of 4096'),
    (lambda d: _write(d, 'memory1.img', struct.pack('<I', 2 * 65536) + bytes(4096)),
     r'memory1.img: page offset: 0x20000 beyond memory of 2 pages'),
    (lambda d: _write(d, 'memory1.img', struct.pack('<I', 0) + bytes(100)),
     r'memory1.img'),
    (lambda d: (_write(d, 'mem_page_count2.img', struct.pack('<I', 1)),
                _write(d, 'memory2.img', b'')),
     r'mem_page_count2.img: present: the set holds 3 memories but the module has 2'),
])
def test_broken_memory_files_are_refused(wasm, tmp_path, change, msg):
    with pytest.raises(im.ImageError, match=msg):
        _broken(wasm, tmp_path, change)()


def test_version_1_set_of_a_multi_memory_module_is_refused(wasm, tmp_path):
    def downgrade(d):
        p = os.path.join(d, 'manifest.json')
        m = json.load(open(p))
        m['version'] = 1
        del m['frames']
        _write(d, 'manifest.json', json.dumps(m).encode())
    with pytest.raises(im.ImageError, match='the set holds 1 memories but the module has 2'):
        _broken(wasm, tmp_path, downgrade)()


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_neutral_holds_every_memory(wasm, runtime):
    store, inst, images = stopped_images(wasm, runtime)
    module, info = inst.module, inst.info
    snap = snapshot_from_images(images, module, info)
    doc = neutral.document_from_snapshot(snap, module, info, images.module_sha256)
    assert doc['version'] == 2 and len(doc['memories']) == 1
    assert doc['memories'][0]['pages'] == 2
    back = neutral.snapshot_from_document(json.loads(neutral.dumps(doc)), module, info)
    assert back.memories == snap.memories
    # the other model from the neutral form, and its set equals a translation
    other = 'wamr' if runtime == 'wasmedge' else 'wasmedge'
    assert translate(images, module, info, other).memories == images.memories

    def refused(edit, msg):
        d = json.loads(neutral.dumps(doc))
        edit(d)
        with pytest.raises(neutral.NeutralError, match=msg):
            neutral.snapshot_from_document(d, module, info)
    refused(lambda d: d.pop('memories'), 'memories: missing')
    refused(lambda d: d['memories'].append(d['memories'][0]),
            'memories: 2 memories, but the module has 1 after memory 0')
    refused(lambda d: d['memories'][0].update(pages=9), r'memories\[0\].pages: 9 is not a page count')
    refused(lambda d: d['memories'][0]['chunks'].update({'5': '00' * 4096}),
            r'memories\[0\].chunks\["5"\]: offset 5 is not a multiple')
    refused(lambda d: d.update(version=1), 'memories: unknown field')


def test_fork_layout_refuses_several_memories(wasm, tmp_path):
    """The forks' image sets hold one memory: writing one for a module with
    two is refused, naming memory.img, and nothing is left on disk."""
    from engine.migrate import fork_images
    store, inst, images = stopped_images(wasm, 'wamr')
    d = str(tmp_path / 'fork')
    with pytest.raises(im.ImageError, match="memory.img: the module has 2 memories; the forks'"):
        fork_images.write_fork_images(images, d, store, inst)
    assert not os.path.exists(d)


def _tier_state(store, inst, ex):
    return dict(pc=ex.pc, steps=ex.steps, finished=ex.finished, stack=list(ex.stack),
                results=ex.results,
                frames=[(f.func, f.from_pc, f.locals, f.arity, f.vpos) for f in ex.frames],
                memories=[(bytes(store.mems[a].data), store.mems[a].type) for a in inst.memaddrs],
                dirty=[bytes(store.mems[a].dirty) for a in inst.memaddrs],
                tables=[(list(store.tables[a].elem), store.tables[a].type)
                        for a in inst.tableaddrs],
                globals=[store.globals[a].value for a in inst.globaladdrs])


def test_compiled_tier_stops_exactly(wasm):
    """The compiled tier runs the new forms through the interpreter's
    functions; stopped at every N it holds exactly the interpreter's state
    (every memory, its dirty flags, the table), and resumes to the same end."""
    from engine.exec import compile as C
    store, inst = instance(wasm, 'wasmedge', 'fast')
    run = inst.exports['run'][1]
    assert C.compiled(store, run).code is not None          # compiled, not interpreted
    total = None
    n = 0
    while total is None or n <= total + 1:
        states = []
        for tier in ('interp', 'fast'):
            store, inst = instance(wasm, 'wasmedge', tier)
            ex = store.new_executor()
            ex.start(inst.exports['run'][1], [3])
            done = ex.run(n)
            states.append((done, _tier_state(store, inst, ex)))
            if not done:
                ex.run()
            states.append(_tier_state(store, inst, ex))
            if total is None and tier == 'interp':
                total = ex.steps
        assert states[0] == states[2], f'stop at N={n}'
        assert states[1] == states[3], f'resumed after N={n}'
        n += 1
    assert total > 80


def test_memory_beyond_the_image_format_is_refused(monkeypatch):
    """A 64-bit memory grown past what u32 chunk offsets reach (65536
    pages, allowed by a raised --max-memory-pages) is refused at the
    checkpoint naming the memory, not written wrapped.  The bound is
    lowered here so the test does not allocate 4 GiB."""
    from engine.migrate import memories
    monkeypatch.setattr(memories, 'MAX_IMAGE_PAGES', 2)
    wasm = wasmtime.wat2wasm('(module (memory 1) (memory i64 2) (func (export "f") (result i64)'
                             ' (memory.grow 1 (i64.const 1))))')
    store, inst = instance(wasm, 'wamr')
    ex = store.new_executor('wamr')
    ex.start(inst.exports['f'][1], [])
    assert not ex.run(2)
    assert len(store.mems[inst.memaddrs[1]].data) == 3 * 65536
    with pytest.raises(im.ImageError, match='memory 1: 3 pages: an image set holds memories '
                                            'up to 2 pages'):
        checkpoint.save(ex, inst, im.module_sha256(wasm), 'f', ['i64'])


def test_feature_groups_list_their_files():
    """``python -m spectests.features GROUP...`` (the CI's migrated list)."""
    import subprocess
    import sys
    from spectests import features
    files = features.files_of({'multi-memory', 'memory64'})
    assert len(files) == 65 and 'memory64.wast' in files and 'memory-multi.wast' in files
    assert features.reason_of('multi-memory') is None and features.reason_of('memory64') is None
    out = subprocess.run([sys.executable, '-m', 'spectests.features', 'memory64'],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == features.files_of({'memory64'}) and len(out) == 24
    bad = subprocess.run([sys.executable, '-m', 'spectests.features', 'nope'],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown feature group 'nope'" in bad.stderr


def test_cli_checkpoint_translate_restore(wasm, tmp_path):
    """The commands end to end: run to a checkpoint, inspect (every memory
    shown), translate through neutral.json to the other model, restore in
    both models; the fork layout is refused with one line, no traceback."""
    import subprocess
    import sys
    mod = tmp_path / 'm.wasm'
    mod.write_bytes(wasm)

    def engine(*args, ok=True):
        p = subprocess.run([sys.executable, '-m', 'engine', *map(str, args)],
                           capture_output=True, text=True)
        assert (p.returncode == 0) == ok, p.stderr
        return p.stdout + p.stderr
    want = f'i64:{wasmtime_run(wasm, 7)}'
    ck, ckn, ckw = tmp_path / 'ck', tmp_path / 'ckn', tmp_path / 'ckw'
    engine('run', mod, '--invoke', 'run', '--args', '7', '--checkpoint-at', '60', '--images', ck)
    out = engine('inspect', ck)
    assert 'memory 1     2 pages, 3 non-zero 4 KiB chunks (memory1.img)' in out
    engine('translate', ck, '--to', 'neutral', '--out', ckn)
    assert 'memory 1     2 pages' in engine('inspect', ckn)
    engine('translate', ckn, '--to', 'wamr', '--out', ckw)
    for src, rt in ((ckw, 'wamr'), (ck, 'wamr'), (ckn, 'wasmedge')):
        assert want in engine('restore', src, '--runtime', rt)
    out = engine('run', mod, '--invoke', 'run', '--args', '7', '--format', 'fork',
                 '--checkpoint-at', '60', '--images', tmp_path / 'f', ok=False)
    assert "memory.img: the module has 2 memories; the forks' image sets hold one" in out
    assert 'Traceback' not in out


def test_size_range_tops_by_address_type():
    """A type without a max tops at what validation lets a max be for its
    address type (Memtype_ok / Tabletype_ok): 2^16 pages for a 32-bit
    memory, 2^48 for a 64-bit one; 2^32 - 1 elements for a 32-bit table,
    2^64 - 1 for a 64-bit one.  So an image set of a 64-bit memory with
    more than 65536 pages, within a raised --max-memory-pages, passes the
    range check, and a 32-bit memory of as many pages is refused naming
    its limits (checked on page counts only: nothing is allocated)."""
    from engine.limits import Limits
    from engine.migrate import memories
    from engine.migrate.translate import ModuleView
    wasm = wasmtime.wat2wasm('(module (memory 1) (memory i64 2) (memory 3)'
                             ' (table 0 funcref) (table i64 1 funcref))')
    module = E.module_decode(wasm)
    view = ModuleView.of(module, E.module_validate(module))
    big = Limits(max_memory_pages=1 << 60, max_table_elems=1 << 70)
    assert view.size_range('memory', 0, big) == (1, 65536, "the memory's limits 1 .. 65536")
    assert view.size_range('memory', 1, big) == (2, 1 << 48, f"the memory's limits 2 .. {1 << 48}")
    assert view.size_range('table', 0, big) == (0, (1 << 32) - 1,
                                               f"the table's limits 0 .. {(1 << 32) - 1}")
    assert view.size_range('table', 1, big)[1] == (1 << 64) - 1
    # the default limits cap both kinds (16,384 pages)
    assert view.size_range('memory', 1, None)[1:] == (
        16384, f"the memory's limits 2 .. {1 << 48}, capped by --max-memory-pages 16384")
    raised = Limits(max_memory_pages=100_000)
    memories.check(view, [memories.MemoryImage(70_000), memories.MemoryImage(3)], raised)
    with pytest.raises(im.ImageError, match=r"mem_page_count2.img: page count: 70000 is outside "
                                            r"the memory's limits 3 \.\. 65536"):
        memories.check(view, [memories.MemoryImage(70_000), memories.MemoryImage(70_000)], raised)
    with pytest.raises(im.ImageError, match=r'70001 is outside the memory\'s limits 2 \.\. '
                                            rf'{1 << 48}, capped by --max-memory-pages 70000'):
        memories.check(view, [memories.MemoryImage(70_001), memories.MemoryImage(3)],
                       Limits(max_memory_pages=70_000))
