"""Shared by the WASI tests: the reference run under wasmtime's WASI, a run
of the project's engine in-process, compiling the C test programs, and the
authors' apps from the fork archive."""

import io
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, 'wasi_programs')
CLANG_PACKAGES = 'clang lld wasi-libc libclang-rt-dev-wasm32'


def app(name):
    """Path of one of the authors' apps, or skip saying why."""
    from forks.apps import app_path, missing_reason
    path = app_path(name)
    if path is None:
        pytest.skip(missing_reason())
    return str(path)


def clang_reason():
    """Why C programs cannot be compiled here, or None."""
    clang = shutil.which('clang')
    if clang is None:
        return f'clang is missing (Debian packages: {CLANG_PACKAGES})'
    if not os.path.exists('/usr/include/wasm32-wasi/stdio.h') and \
            not os.path.exists('/usr/include/wasm32-wasip1/stdio.h'):
        return f'wasi-libc headers are missing (Debian packages: {CLANG_PACKAGES})'
    return None


_compiled = {}


def compile_c(name, tmp_root):
    """tests/wasi_programs/NAME.c -> wasm bytes (cached per session)."""
    if name in _compiled:
        return _compiled[name]
    reason = clang_reason()
    if reason:
        pytest.skip(reason)
    out = os.path.join(tmp_root, name + '.wasm')
    cmd = ['clang', '--target=wasm32-wasi', '--sysroot=/usr', '-O2', '-o', out,
           os.path.join(PROGRAMS, name + '.c')]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        if 'cannot find' in p.stderr or 'not found' in p.stderr:
            pytest.skip(f'wasm32-wasi toolchain incomplete ({p.stderr.strip().splitlines()[-1]}); '
                        f'Debian packages: {CLANG_PACKAGES}')
        raise AssertionError(f'{" ".join(cmd)} failed:\n{p.stderr}')
    with open(out, 'rb') as f:
        _compiled[name] = f.read()
    return _compiled[name]


def wasmtime_run(wasm, argv, dirs=(), env=(), stdin=b'', tmp=None):
    """(exit code, stdout, stderr) of wasmtime's WASI running _start."""
    import wasmtime
    tmp = tmp or __import__('tempfile').mkdtemp()
    out, err, inp = (os.path.join(tmp, n) for n in ('wt.out', 'wt.err', 'wt.in'))
    with open(inp, 'wb') as f:
        f.write(stdin)
    cfg = wasmtime.WasiConfig()
    cfg.argv = list(argv)
    cfg.env = [list(kv) for kv in env]
    cfg.stdout_file, cfg.stderr_file, cfg.stdin_file = out, err, inp
    for host, guest in dirs:
        cfg.preopen_dir(host, guest)
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    store.set_wasi(cfg)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    inst = linker.instantiate(store, wasmtime.Module(engine, wasm))
    code = 0
    try:
        inst.exports(store)['_start'](store)
    except wasmtime.ExitTrap as e:
        code = e.code
    with open(out, 'rb') as f, open(err, 'rb') as g:
        return code, f.read(), g.read()


def engine_start(wasm, argv, dirs=(), env=(), stdin=b'', runtime='wasmedge',
                 deterministic=False, seed=0):
    """Instantiate under the project's engine: (store, inst, wasi, executor
    positioned at _start, stdout stream, stderr stream)."""
    from engine import cli, embedding
    from engine.wasi.preview1 import Wasi, WasiConfig
    out, err = io.BytesIO(), io.BytesIO()
    wasi = Wasi(WasiConfig(argv, env, dirs, io.BytesIO(stdin), out, err,
                           deterministic=deterministic, seed=seed))
    store = embedding.store_init(runtime)
    inst = cli.instantiate(store, wasm, 'test.wasm', wasi=wasi)
    ex = store.new_executor()
    ex.start(inst.exports['_start'][1], [])
    return store, inst, wasi, ex, out, err


def finish(wasi, ex, budget=None):
    """Run to the end: exit code (0 when _start returns)."""
    from engine.wasi.preview1 import WasiExit
    try:
        ex.run(budget)
    except WasiExit as e:
        return e.code
    finally:
        if ex.finished:
            wasi.close()
    return 0


def engine_run(wasm, argv, dirs=(), env=(), stdin=b'', runtime='wasmedge', **kw):
    """(exit code, stdout, stderr) of the project's engine running _start."""
    _, _, wasi, ex, out, err = engine_start(wasm, argv, dirs, env, stdin, runtime, **kw)
    code = finish(wasi, ex)
    return code, out.getvalue(), err.getvalue()


WASMTIME_CLI = ('import sys, wasmtime as w\n'
                'e = w.Engine(); s = w.Store(e); c = w.WasiConfig()\n'
                'c.inherit_stdin(); c.inherit_stdout(); c.inherit_stderr(); s.set_wasi(c)\n'
                'l = w.Linker(e); l.define_wasi()\n'
                'try:\n'
                '    l.instantiate(s, w.Module.from_file(e, sys.argv[1])).exports(s)["_start"](s)\n'
                'except w.ExitTrap as x:\n'
                '    sys.exit(x.code)\n')


def wasmtime_command(wasm_path):
    """argv running a WASI command under wasmtime with the host's own stdio."""
    import sys
    return [sys.executable, '-c', WASMTIME_CLI, str(wasm_path)]


def stdio_filetypes(argv, kind, tmp, env=None):
    """Run `filetypes.wasm` (argv) with descriptors 0-2 all a pipe or all a
    regular file (`kind`); its report: {fd: (fdstat type, filestat type)}."""
    if kind == 'pipe':
        p = subprocess.run(argv, input=b'', capture_output=True, env=env, timeout=120)
        out = p.stdout
    else:
        names = [os.path.join(tmp, f'fd{i}') for i in range(3)]
        for n in names:
            open(n, 'wb').close()
        with open(names[0], 'rb') as i, open(names[1], 'wb') as o, open(names[2], 'wb') as e:
            p = subprocess.run(argv, stdin=i, stdout=o, stderr=e, env=env, timeout=120)
        with open(names[1], 'rb') as f:
            out = f.read()
    assert p.returncode == 0, (argv, p.returncode)
    report = {}
    for line in out.decode().splitlines():
        fd, a, b = line.split()
        report[int(fd[2:])] = (int(a), int(b))
    assert sorted(report) == [0, 1, 2], out
    return report
