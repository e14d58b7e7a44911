"""WASI preview 1 in the engine, under both executor models, against
wasmtime's WASI as the reference."""

import os
import subprocess
import sys

import pytest

from wasi_helpers import HERE
from wasi_helpers import app, engine_run, wasmtime_run

ROOT = os.path.dirname(HERE)
RUNTIMES = ('wasmedge', 'wamr')


def cli(*args, cwd=None, stdin=b''):
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.run([sys.executable, '-m', 'engine', *map(str, args)], cwd=cwd or ROOT,
                       env=env, capture_output=True, input=stdin)
    return p.returncode, p.stdout, p.stderr


def wat(text):
    import wasmtime
    return wasmtime.wat2wasm(text)


# ------------------------------------------------------------ the authors' apps

@pytest.mark.parametrize('runtime', RUNTIMES)
def test_n_body_matches_wasmtime_and_iwasm(runtime):
    wasm = open(app('n-body'), 'rb').read()
    expected = wasmtime_run(wasm, ['n-body.wasm', '1000'])
    assert expected == (0, b'-0.169075164\n-0.169087605\n', b'')    # iwasm n-body.wasm 1000
    assert engine_run(wasm, ['n-body.wasm', '1000'], runtime=runtime) == expected


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_binary_trees_matches_wasmtime(runtime):
    wasm = open(app('binary-trees'), 'rb').read()
    expected = wasmtime_run(wasm, ['binary-trees.wasm', '6'])
    assert expected[1].endswith(b'long lived tree of depth 6\t check: 127\n')
    assert engine_run(wasm, ['binary-trees.wasm', '6'], runtime=runtime) == expected


def test_cli_runs_start_with_guest_args_and_passes_stdout():
    status, out, err = cli('run', app('n-body'), '--runtime', 'wamr', '--', '1000')
    assert (status, out, err) == (0, b'-0.169075164\n-0.169087605\n', b'')


# ------------------------------------------------------------ imports, exit codes

def test_every_missing_import_is_listed_at_once(tmp_path):
    m = tmp_path / 'm.wasm'
    m.write_bytes(wat('''(module
      (import "env" "a" (func))
      (import "wasi_snapshot_preview1" "no_such_call" (func))
      (import "wasi_snapshot_preview1" "fd_write" (func (param i32)))
      (import "spectest" "nothing" (global i32))
      (import "env" "b" (memory 1))
      (func (export "_start")))'''))
    status, out, err = cli('run', m)
    assert status == 2 and out == b''
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, err
    for needle in ('5 imports cannot be provided', 'env.a: unknown import',
                   'wasi_snapshot_preview1.no_such_call: unknown import',
                   'wasi_snapshot_preview1.fd_write: incompatible import type',
                   'spectest.nothing: unknown import', 'env.b: unknown import'):
        assert needle in lines[0], (needle, lines[0])


EXIT_WAT = '''(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "bye\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 4))
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $exit (i32.const 42))
    unreachable))'''


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_exit_code_is_the_guests(tmp_path, runtime):
    m = tmp_path / 'exit.wasm'
    m.write_bytes(wat(EXIT_WAT))
    assert wasmtime_run(m.read_bytes(), ['x']) == (42, b'bye\n', b'')
    assert engine_run(m.read_bytes(), ['x'], runtime=runtime) == (42, b'bye\n', b'')
    assert cli('run', m, '--runtime', runtime) == (42, b'bye\n', b'')


def test_start_missing_is_a_clear_error(tmp_path):
    m = tmp_path / 'lib.wasm'
    m.write_bytes(wat('(module (func (export "f")))'))
    status, out, err = cli('run', m)
    assert status == 2 and b'no --invoke' in err and b'_start' in err
