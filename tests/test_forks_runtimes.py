"""forks.runtimes against the real forks (skipped, naming the build command,
when they are not built) and the result parsing against hand-written output."""

import math
import os
import shutil
import subprocess
import sys

import pytest
import wasmtime

from forks import build as fb
from forks import matrix, programs
from forks.runtimes import (IMAGES, Iwasm, Ours, Program, Step, WasmEdge, execute, image_files,
                            parse_results, prepare, runtimes, same_results)

FIB = '''(module
  (func $fib (export "fib") (param i32) (result i32)
    (if (result i32) (i32.lt_u (local.get 0) (i32.const 2)) (then (local.get 0))
      (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                     (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
  (func (export "many") (param i64 f32) (result i64 f64 i32)
    (local.get 0) (f64.promote_f32 (local.get 1)) (i32.const -1)))'''


def fork(name):
    built = fb.locate(name)
    if built is None:
        pytest.skip(f'the {name} fork is not built (run: python -m forks build {name})')
    return built


def app(name):
    try:
        return programs.authors_apps() / name
    except programs.ProgramError as e:
        pytest.skip(str(e))


@pytest.fixture
def fib_wasm(tmp_path):
    p = tmp_path / 'fib.wasm'
    p.write_bytes(wasmtime.wat2wasm(FIB))
    return p


def test_results_as_each_runtime_prints_them():
    types = ['i64', 'f64', 'i32']
    want = [2**64 - 5, 1.5, 2**32 - 1]
    assert parse_results('0xfffffffffffffffb:i64,1.5:f64,0xffffffff:i32\n', types) == want  # iwasm
    assert parse_results('18446744073709551611\n1.5\n4294967295\n', types) == want          # wasmedge
    assert parse_results('i64:18446744073709551611 (-5)\nf64:1.5 (bits 0x3ff8000000000000)\n'
                         'i32:4294967295 (-1)\n', types) == want                            # engine
    assert parse_results('0x5:i32', ['i32', 'i32']) is None          # wrong count
    assert parse_results('Exception: unreachable', ['i32']) is None
    assert same_results([1, 0.1 + 1e-9], [1, 0.1]) and not same_results([1, 0.1], [1, 0.2])
    assert same_results([math.nan], [math.nan]) and not same_results([2], [3])


def test_iwasm_and_wasmedge_invoke_an_export(tmp_path, fib_wasm):
    prog = Program('fib', fib_wasm, argv=('20',), invoke='fib', results=('i32',))
    many = Program('many', fib_wasm, argv=('-5', '1.5'), invoke='many', results=('i64', 'f64', 'i32'))
    for rt in (Iwasm(fork('wamr')), WasmEdge(fork('wasmedge'))):
        o = execute(rt.run(prog, tmp_path))
        assert o.exit_code == 0 and parse_results(o.stdout.decode(), prog.results) == [6765], rt.name
        o = execute(rt.run(many, tmp_path))
        assert parse_results(o.stdout.decode(), many.results) == [2**64 - 5, 1.5, 2**32 - 1], rt.name


def test_n_body_on_both_forks_prints_the_known_energies(tmp_path):
    prog = Program('n-body', app('n-body') / 'n-body.wasm', argv=('1000',))
    for rt in (Iwasm(fork('wamr')), WasmEdge(fork('wasmedge'))):
        o = execute(rt.run(prog, tmp_path))
        assert (o.exit_code, o.stdout) == (0, b'-0.169075164\n-0.169087605\n'), rt.name


def test_wasmedge_dispatch_limit_reproduces_the_authors_expect_images(tmp_path):
    we = WasmEdge(fork('wasmedge'))
    d = app('n-body')
    prog = Program('n-body', tmp_path / 'n-body.wasm', tables=d)
    prepare(prog, tmp_path / 'w', d)
    shutil.copyfile(d / 'n-body.wasm', tmp_path / 'w' / 'n-body.wasm')   # same argv[0] as theirs
    prog = Program('n-body', tmp_path / 'w' / 'n-body.wasm')
    o = execute(we.checkpoint(prog, tmp_path / 'w', 1000))
    assert o.exit_code == 0
    assert image_files(tmp_path / 'w' / IMAGES) == image_files(d / 'expect-images')
    # the run stopped: the energies after the loop were not printed
    assert b'-0.169' not in o.stdout


def test_wasmedge_checkpoint_without_type_tables_is_lost_with_exit_status_0(tmp_path):
    """Fork finding H3 (docs/fork-findings.md): exit 0, the error only on stdout, no images."""
    we = WasmEdge(fork('wasmedge'))
    prog = Program('n-body', app('n-body') / 'n-body.wasm')
    prepare(prog, tmp_path / 'w')
    o = execute(we.checkpoint(prog, tmp_path / 'w', 1000))
    assert o.exit_code == 0 and image_files(tmp_path / 'w' / IMAGES) == {}
    assert b'[error] Not found type stack tables' in o.stdout


def test_same_fork_checkpoint_and_restore(tmp_path):
    """wasmedge at an exact count and iwasm by SIGINT: the checkpointed
    output followed by the restored output is the uninterrupted output
    (once each fork's own lines are taken out of stdout)."""
    d = app('n-body')
    full = b'-0.169075164\n-0.169087605\n'
    we = WasmEdge(fork('wasmedge'))
    prog = Program('n-body', d / 'n-body.wasm', argv=('1000',))
    prepare(prog, tmp_path / 'we', d)
    ck = execute(we.checkpoint(prog, tmp_path / 'we', 200000))
    rs = execute(we.restore(prog, tmp_path / 'we'))
    noise = []
    out = matrix._denoise(ck.stdout.decode(), noise) + matrix._denoise(rs.stdout.decode(), noise)
    assert (rs.exit_code, out) == (0, full.decode()) and noise == ['wasmedge statistics log']

    iw = Iwasm(fork('wamr'))
    seconds = execute(iw.run(prog, tmp_path)).seconds
    for attempt in range(8):
        prepare(prog, tmp_path / 'iw', d)
        ck = execute(iw.checkpoint(prog, tmp_path / 'iw', seconds * (0.3 + attempt * 0.05)))
        if (tmp_path / 'iw' / 'program_counter.img').is_file():
            break
    else:
        pytest.skip('no SIGINT landed inside the run in 8 tries (machine too busy)')
    rs = execute(iw.restore(prog, tmp_path / 'iw'))
    noise = []
    out = matrix._denoise(ck.stdout.decode(), noise) + matrix._denoise(rs.stdout.decode(), noise)
    assert (rs.exit_code, out) == (0, full.decode()) and noise == ['iwasm page_count']


def test_a_step_runs_the_same_from_its_shell_line(tmp_path, fib_wasm):
    step = Ours('wamr').run(Program('fib', fib_wasm, argv=('10',), invoke='fib', results=('i32',)),
                            tmp_path)
    direct = execute(step)
    line = step.shell(tmp_path)
    assert str(tmp_path) not in line                      # relative: it replays from a copy
    shell = subprocess.run(['sh', '-c', line], cwd=tmp_path, capture_output=True)
    assert direct.stdout == shell.stdout == b'i32:55\n'


def test_missing_forks_are_reported_with_the_build_command(tmp_path, monkeypatch):
    monkeypatch.setenv('WASM_MIGRATE_CACHE', str(tmp_path))
    rts = runtimes(('iwasm', 'wasmedge', 'ours-wamr'))
    assert rts['iwasm'] == 'wamr fork not built (run: python -m forks build wamr)'
    assert rts['wasmedge'] == 'wasmedge fork not built (run: python -m forks build wasmedge)'
    assert isinstance(rts['ours-wamr'], Ours)
    with pytest.raises(ValueError, match='unknown runtime'):
        runtimes(('jvm',))


@pytest.mark.parametrize('kind', ['pipe', 'file'])
def test_stdio_filetypes_match_the_real_wasmedge(kind, tmp_path_factory, tmp_path):
    """The engine reports the stdio file types the real wasmedge reports (so
    wasi-libc buffers alike and instruction counts agree under a pipe); the
    real iwasm agrees for a file and says `socket_stream` (6) for a pipe."""
    from wasi_helpers import compile_c, stdio_filetypes
    we, iw = fork('wasmedge'), fork('wamr')
    m = tmp_path / 'filetypes.wasm'
    m.write_bytes(compile_c('filetypes', str(tmp_path_factory.mktemp('c'))))
    ours = {rt: stdio_filetypes([sys.executable, '-m', 'engine', 'run', str(m), '--runtime', rt],
                                kind, tmp_path, dict(os.environ, PYTHONPATH=str(fb.PROJECT)))
            for rt in ('wasmedge', 'wamr')}
    env = dict(os.environ, LD_LIBRARY_PATH=str(we.libdir))
    real = stdio_filetypes([str(we.binary), str(m)], kind, tmp_path, env)
    assert ours['wasmedge'] == ours['wamr'] == real
    want = {'pipe': 0, 'file': 4}[kind]
    assert real == {fd: (want, want) for fd in range(3)}
    assert stdio_filetypes([str(iw.binary), str(m)], kind, tmp_path) == \
        {fd: (6, 6) if kind == 'pipe' else (want, want) for fd in range(3)}


def test_iwasm_runs_the_generated_modules_of_the_matrix(tmp_path):
    """The matrix's generated modules (no SIMD, no reference types) load in
    the WAMR fork's iwasm and give the engine's results."""
    iw = Iwasm(fork('wamr'))
    progs = programs.generated_programs(tmp_path / 'gen', 4)
    assert len(progs) == 4
    for prog in progs:
        o = execute(iw.run(prog, tmp_path))
        text = (o.stdout + o.stderr).decode(errors='replace')
        assert 'load failed' not in text, (prog.name, text)
        ref = execute(Ours('wamr').run(prog, tmp_path))
        if ref.exit_code == 0:
            assert o.exit_code == 0, (prog.name, text)
            assert same_results(parse_results(o.stdout.decode(), prog.results),
                                parse_results(ref.stdout.decode(), prog.results)), prog.name
        else:       # a trap: iwasm reports it too
            assert 'Exception:' in text, (prog.name, text)


def test_image_sets_agree_with_the_real_wasmedge_under_a_pipe(tmp_path):
    """With stdout a pipe (the guest sees `unknown`, wasi-libc buffers fully)
    the engine's WasmEdge model and the real wasmedge stop at the same
    point: byte-identical image sets at equal counts.  The engine reporting a
    character device here made them differ (n-body at 300000)."""
    fork('wasmedge')
    app('n-body')
    rts = runtimes(['wasmedge', 'ours-wasmedge'])
    m = matrix.Matrix(tmp_path, rts, points=1, seed=0, progress=lambda msg: None, known=[])
    prog = next(p for p in programs.authors_programs() if p.name == 'n-body')
    m.image_check(prog, 300000, pipe=True)
    row = m.images[-1]
    assert row['verdict'] == 'same', row
