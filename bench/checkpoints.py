"""Checkpoint and restore costs, and the migration fuzz campaign's rate.

* ``checkpoint-memory``: a checkpoint (save + write the image directory) of
  a run whose 64 MiB memory had 1 MiB written, against one whose whole
  memory is 1 MiB (all written).  Issue 9's target: at most 3x, i.e. the
  cost follows what changed, not the memory's size.  The restore (read +
  load into a fresh instance) is timed too and checked byte for byte.
* ``deep-stack``: a run stopped 10,000 frames deep (the default call-depth
  limit), saved and restored in both frame layouts (one ``stack{i}.img``
  per frame, the forks'; or all frames in ``stacks.img``), then finished
  with the right result.
* ``campaign``: ``python -m fuzz.migrate`` on a fixed, seeded number of
  units: checks per CPU second.

Each runs on this project's engines only (both models; the fast tier when
the build has it): no other engine can stop and save a run.
"""

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from bench import workload
from bench.engines import OURS, Unavailable, our_store
from bench.kernels import wasm_of

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MiB = 1 << 20
PAGE = 65536
DEPTH = 10_000                 # frames: engine.limits' default max_call_depth

MEMORY_WAT = '''(module
  (memory {pages})
  (func (export "fill") (param $n i32) (local $off i32)
    (memory.fill (i32.const 0) (i32.const 0xA5) (local.get $n))
    (block $done (loop $chunk
      (br_if $done (i32.ge_u (local.get $off) (local.get $n)))
      (i32.store (local.get $off) (i32.shr_u (local.get $off) (i32.const 12)))
      (local.set $off (i32.add (local.get $off) (i32.const 4096)))
      (br $chunk))))
  (func (export "idle") (result i32) (i32.const 7)))'''

STACK_WAT = '''(module
  (memory 1)
  (func $down (export "down") (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (call $down (i32.sub (local.get $n) (i32.const 1))) (i32.const 1))))))'''


def _instance(engine, wasm):
    from engine import embedding
    model, tier = engine.split('/')
    store = our_store(model, tier)
    inst = embedding.module_instantiate(store, embedding.module_decode(wasm), [], run_start=False)
    return store, inst


def _best(fn, repeat):
    """(least CPU seconds of ``repeat`` calls, the last call's value)."""
    best, value = None, None
    for _ in range(repeat):
        t0 = time.process_time()
        value = fn()
        t = time.process_time() - t0
        best = t if best is None else min(best, t)
    return best, value


def _ours(run):
    """Rows of ``run(engine)`` for each of our engines, with the reason
    when one cannot run (the fast tier in a build without it)."""
    rows = []
    for engine in OURS:
        try:
            for row in run(engine):
                rows.append(dict(row, engine=engine, status='ok'))
        except Unavailable as e:
            rows.append({'case': 'all', 'engine': engine, 'cpu_seconds': None,
                         'status': 'unavailable', 'why': str(e)})
        except Exception as e:                  # noqa: BLE001 - reported in the table
            rows.append({'case': 'all', 'engine': engine, 'cpu_seconds': None, 'status': 'error',
                         'why': f'{type(e).__name__}: {e}'[:300]})
    return rows


def checkpoint_restore(engine, wasm, ex, inst, entry, frames, repeat):
    """Time save + write and read + restore of the stopped ``ex``; returns
    (checkpoint s, restore s, restored executor, its instance, bytes on disk)."""
    from engine.migrate import checkpoint, images as im
    sha = im.module_sha256(wasm)
    tmp = tempfile.mkdtemp(prefix='bench-ckpt-')
    out = os.path.join(tmp, 'images')
    try:
        save, _ = _best(lambda: im.write_images(checkpoint.save(ex, inst, sha, entry, ['i32']),
                                                out, frames=frames), repeat)
        size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
        fresh = []

        def load():
            store, inst2 = _instance(engine, wasm)
            fresh.append((store, inst2))            # instantiation is not the restore's cost
            t0 = time.process_time()
            ex2 = checkpoint.restore(store, inst2, im.read_images(out))
            return time.process_time() - t0, ex2, inst2
        restores = [load() for _ in range(repeat)]
        t, ex2, inst2 = min(restores, key=lambda r: r[0])
        return save, t, ex2, inst2, size
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------ memory

def memory_case(engine, pages, written, repeat):
    from engine import embedding
    wasm = wasm_of(MEMORY_WAT.format(pages=pages))
    store, inst = _instance(engine, wasm)
    embedding.func_invoke(store, inst.exports['fill'][1], [written])
    ex = store.new_executor()
    ex.start(inst.exports['idle'][1], [])
    save, restore, ex2, inst2, size = checkpoint_restore(engine, wasm, ex, inst, 'idle', 'per-file',
                                                         repeat)
    original = store.mems[inst.memaddrs[0]].data
    if ex2.store.mems[inst2.memaddrs[0]].data != original:
        raise AssertionError('the restored memory differs from the saved one')
    if not ex2.run() or ex2.results != [7]:
        raise AssertionError(f'the restored run ended with {ex2.results}, expected [7]')
    return {'case': f'{pages * PAGE // MiB} MiB memory, {written // 1024} KiB written',
            'cpu_seconds': round(save, 4), 'restore_cpu_seconds': round(restore, 4),
            'image_bytes': size}


@workload('checkpoint-memory', 'checkpoint (save + write) of a 64 MiB memory with 1 MiB written '
                               'vs a 1 MiB memory; restore timed and checked too')
def checkpoint_memory(quick=False):
    repeat = 1 if quick else 5
    big = 4 if quick else 64                    # MiB

    def run(engine):
        small = memory_case(engine, MiB // PAGE, MiB, repeat)
        large = memory_case(engine, big * MiB // PAGE, MiB, repeat)
        large['ratio_to_1MiB'] = round(large['cpu_seconds'] / max(small['cpu_seconds'], 1e-6), 2)
        return [small, large]
    return _ours(run)


# ------------------------------------------------------------ deep stack

def run_to_depth(ex, frames):
    """Advance ``ex`` (running ``down``) until it holds ``frames`` frames:
    single steps for the first two calls give the steps per call, then one
    run covers the rest."""
    marks = []
    while len(marks) < 2:
        before = len(ex.frames)
        ex.run(1)
        if len(ex.frames) > before:
            marks.append(ex.steps)
    per_call = marks[1] - marks[0]
    ex.run((frames - 3) * per_call)
    if len(ex.frames) != frames:
        raise AssertionError(f'expected {frames} frames, the run holds {len(ex.frames)}')


def stack_case(engine, frames_layout, depth, repeat):
    wasm = wasm_of(STACK_WAT)
    store, inst = _instance(engine, wasm)
    ex = store.new_executor()
    ex.start(inst.exports['down'][1], [depth - 1])     # down(n) nests n + 1 frames
    run_to_depth(ex, depth)
    save, restore, ex2, _, size = checkpoint_restore(engine, wasm, ex, inst, 'down', frames_layout,
                                                     repeat)
    if not ex2.run() or ex2.results != [depth - 1]:
        raise AssertionError(f'the restored run ended with {ex2.results}, expected [{depth - 1}]')
    name = 'stacks.img' if frames_layout == 'one-file' else 'stack{i}.img'
    return {'case': f'{depth} frames, {name}', 'cpu_seconds': round(save, 4),
            'restore_cpu_seconds': round(restore, 4), 'image_bytes': size}


@workload('deep-stack', 'checkpoint and restore of a run 10,000 frames deep, one file per frame '
                        'vs all frames in one file')
def deep_stack(quick=False):
    depth = 500 if quick else DEPTH
    return _ours(lambda engine: [stack_case(engine, layout, depth, 1)
                                 for layout in ('per-file', 'one-file')])


# ------------------------------------------------------------ campaign

@workload('campaign', 'migration fuzz checks per CPU second: python -m fuzz.migrate on a fixed, '
                      'seeded number of hypothesis units, one worker')
def campaign(quick=False):
    """The campaign itself (coordinator, worker, oracle, wasmtime, journal)
    in a child process; CPU seconds of it and its worker, checks from its
    summary.json.  Units are functions of (seed, worker, unit): the same
    work on every run."""
    units = 1 if quick else 10
    out = tempfile.mkdtemp(prefix='bench-campaign-')
    cmd = [sys.executable, '-m', 'fuzz.migrate', '--jobs', '1', '--runs', str(units), '--seed', '1',
           '--generator', 'hypothesis', '--out', os.path.join(out, 'c')]
    row = {'case': f'{units} hypothesis units, seed 1', 'engine': 'fuzz.migrate'}
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        try:
            with open(os.path.join(out, 'c', 'summary.json')) as f:
                summary = json.load(f)
        except (OSError, ValueError):
            summary = {}
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if p.returncode != 0 or 'checks' not in summary:
        what = 'it found failures' if p.returncode == 1 else f'exit status {p.returncode}'
        return [dict(row, cpu_seconds=None, status='error',
                     why=f'{" ".join(cmd[1:])}: {what}: {(p.stderr or p.stdout)[-300:]}')]
    return [dict(row, cpu_seconds=round(cpu, 3), status='ok', checks=summary['checks'],
                 modules=summary.get('runs'),
                 checks_per_second=round(summary['checks'] / max(cpu, 1e-9), 1))]
