"""The interpreter issue 9 measured: its target "fast tier >= 30x today's
interpreter" names the interpreter of the day the issue was filed, and the
interpreter has grown faster since (the same issue asked for that too), so
a ratio to today's interpreter understates the compiled tier against the
target.  To compare in one run on one machine, the bench runs that
interpreter itself: the engine of commit ``ISSUE9`` (the main branch's
last commit before the issue's first change, fb2c3e6's dirty chunk flags)
taken from this checkout's git history into a cache outside the checkout
and run in a child process on the same wasm bytes, timed inside the child
(CPU seconds of the call alone, as for every other engine).

A checkout without that history (a shallow clone, an unpacked archive)
reports the engine unavailable, naming the commit."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from forks.build import cache_root

ISSUE9 = '3040217'
ROOT = Path(__file__).resolve().parent.parent
CACHE = cache_root() / 'bench-baseline'


class Timed:
    """A result with the CPU seconds the child measured for it (the parent's
    own clock sees none of the child's work)."""

    def __init__(self, value, seconds):
        self.value, self.seconds = value, seconds


def engine_at(rev, unavailable):
    """The directory holding commit ``rev``'s ``engine/`` package, extracted
    once (into a temporary directory renamed into place, so an interrupted
    extraction leaves nothing half-written)."""
    try:
        full = subprocess.run(['git', '-C', str(ROOT), 'rev-parse', '--verify', '--quiet',
                               f'{rev}^{{commit}}'], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        raise unavailable(f'commit {rev}: git cannot be run here ({e})') from None
    sha = full.stdout.strip()
    if full.returncode != 0 or not sha:
        raise unavailable(f'commit {rev} is not in this checkout\'s history (a shallow clone?)')
    dest = CACHE / sha
    if (dest / 'engine' / '__init__.py').is_file():
        return dest
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{sha[:12]}-', dir=CACHE))
    try:
        archive = subprocess.run(['git', '-C', str(ROOT), 'archive', '--format=tar', sha, 'engine'],
                                 capture_output=True, timeout=120)
        if archive.returncode != 0:
            raise unavailable(f'commit {rev}: git archive failed: {archive.stderr.decode()[:200]}')
        untar = subprocess.run(['tar', '-x', '-C', str(tmp)], input=archive.stdout,
                               capture_output=True, timeout=120)
        if untar.returncode != 0:
            raise unavailable(f'commit {rev}: tar failed: {untar.stderr.decode()[:200]}')
        try:
            os.replace(tmp, dest)
        except OSError:
            if not (dest / 'engine' / '__init__.py').is_file():     # not another process's copy
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


# Run in the child: the engine API of that commit (runtime.Store(model),
# embedding.module_decode / module_instantiate / func_invoke, the one-file
# engine.wasi) is also today's apart from where WASI lives.
CHILD = r'''
import io, json, sys, time
home, wasm_path, model, call = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
sys.path.insert(0, home)
import engine
if not engine.__file__.startswith(home):
    raise SystemExit(f'the child imported {engine.__file__}, not the engine of {home}')
from engine import embedding, runtime
store = runtime.Store(model)
wasm = open(wasm_path, 'rb').read()
module = embedding.module_decode(wasm)
__import__('engine.exec_' + model)          # imported before the timed call, as in the parent
if call[0] == 'invoke':
    _, export, args = call
    inst = embedding.module_instantiate(store, module, [])
    addr = inst.exports[export][1]
    bits = {'i32': 32, 'i64': 64}[store.funcs[addr].type.results[0]]
    t0 = time.process_time()
    value = embedding.func_invoke(store, addr, args)[0] & ((1 << bits) - 1)
    seconds = time.process_time() - t0
else:
    try:
        from engine.wasi import preview1 as wasi
    except ImportError:
        from engine import wasi
    out = io.BytesIO()
    host = wasi.Wasi(wasi.WasiConfig(args=call[1], stdout=out, stderr=io.BytesIO()))
    funcs = host.imports(store)
    inst = embedding.module_instantiate(store, module, [funcs[i.name] for i in module.imports],
                                        run_start=False)
    host.bind(store, inst)
    t0 = time.process_time()
    try:
        store.invoke(inst.exports['_start'][1], [])
        code = 0
    except wasi.WasiExit as e:
        code = e.code
    seconds = time.process_time() - t0
    value = [code, out.getvalue().hex()]
print(json.dumps({'value': value, 'seconds': seconds}))
'''


def prepare(model, wasm, call, unavailable, rev=ISSUE9):
    """The timed part for ``model``'s interpreter at ``rev``: a function
    running the child and returning a ``Timed`` result (an invoke's masked
    integer, or a WASI run's (exit code, stdout bytes))."""
    home = engine_at(rev, unavailable)

    def go():
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, 'module.wasm')
            with open(path, 'wb') as f:
                f.write(wasm)
            p = subprocess.run([sys.executable, '-I', '-c', CHILD, str(home), path, model,
                                json.dumps(list(call))], capture_output=True, text=True, cwd=d)
        if p.returncode != 0:
            last = (p.stderr.strip().splitlines() or ['no output'])[-1]
            raise RuntimeError(f'the engine of {rev} failed: {last}'[:300])
        r = json.loads(p.stdout.strip().splitlines()[-1])
        value = r['value'] if call[0] == 'invoke' else (r['value'][0], bytes.fromhex(r['value'][1]))
        return Timed(value, r['seconds'])
    return go
