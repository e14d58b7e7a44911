"""The fork matrix machinery on a small program: routes between the engine's
models pass; a deliberate engine fault makes them fail, each failure is
saved as a reproducer whose commands.sh replays the mismatch, and the
replay stops reproducing once the fault is taken out of the commands."""

import json
import subprocess
import sys

import pytest
import wasmtime

from forks import matrix
from forks.runtimes import Program, runtimes

LOOP = '''(module
  (memory (export "mem") 1)
  (func (export "run") (param i32) (result i32 i64)
    (local i32 i64)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get 0)))
        (local.set 1 (i32.add (local.get 1) (i32.mul (local.get 0) (local.get 0))))
        (local.set 2 (i64.add (local.get 2) (i64.extend_i32_u (local.get 1))))
        (i32.store (i32.and (local.get 0) (i32.const 1020)) (local.get 1))
        (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
        (br $next)))
    (local.get 1) (local.get 2)))'''
ROUTES = [('ours-wasmedge', 'ours-wamr'), ('ours-wamr', 'ours-wasmedge'),
          ('ours-wamr', 'ours-wamr')]


@pytest.fixture
def prog(tmp_path):
    p = tmp_path / 'loop.wasm'
    p.write_bytes(wasmtime.wat2wasm(LOOP))
    return Program('loop', p, argv=('40',), invoke='run', results=('i32', 'i64'))


def run_matrix(out, prog, points=2, known=None):
    rts = runtimes(('ours-wamr', 'ours-wasmedge'))
    m = matrix.Matrix(out, rts, points=points, seed=1, progress=lambda msg: None, known=known)
    m.run([prog], ROUTES, image_points=())
    return m, m.report(ROUTES)


def test_routes_between_the_engine_models_pass(tmp_path, prog):
    m, doc = run_matrix(tmp_path / 'out', prog)
    # 40 iterations: sum of squares 22140, and the i64 running sum (hand-computed)
    ref = m.refs[('loop', 'ours-wamr')][0]
    assert ref.status == 'ok' and ref.results == [22140, sum(sum(k * k for k in range(n, 41))
                                                             for n in range(1, 41))]
    assert doc['uninterrupted']['loop'] == '2/2 agree'
    assert doc['totals'] == {'pass': 6, 'noise': 0, 'fail': 0, 'known': 0, 'refused': 0, 'unreached': 0}
    for c in doc['cases']:
        assert c['reached'] and c['point'].startswith('N=')
    md = (tmp_path / 'out' / 'matrix.md').read_text()
    assert '| ours-wasmedge -> ours-wamr |' in md
    assert json.loads((tmp_path / 'out' / 'matrix.json').read_text())['routes'] == \
        [f'{s} -> {t}' for s, t in ROUTES]
    assert not (tmp_path / 'out' / 'repro').exists()
    assert not list((tmp_path / 'out' / 'work' / 'loop').iterdir())     # passing cases cleaned up


def test_a_forced_mismatch_is_saved_as_a_replayable_reproducer(tmp_path, prog, monkeypatch):
    monkeypatch.setenv('WASM_MIGRATE_FAULT', 'pc_offset')     # translator writes the PC one too far
    m, doc = run_matrix(tmp_path / 'out', prog)
    fails = [c for c in doc['cases'] if c['verdict'] == 'fail']
    assert fails, doc['cases']
    assert doc['cells'][f'{fails[0]["src"]} -> {fails[0]["tgt"]}']['loop']['fail'] >= 1
    assert '**FAIL**' in (tmp_path / 'out' / 'matrix.md').read_text()
    repro = tmp_path / 'out' / 'repro' / f'loop-{fails[0]["src"]}--{fails[0]["tgt"]}-{fails[0]["k"]}'
    assert str(repro) == fails[0]['repro']
    script = (repro / 'commands.sh').read_text()
    assert 'export WASM_MIGRATE_FAULT=pc_offset' in script and '--checkpoint-at' in script
    assert str(tmp_path / 'out' / 'work') not in script          # runs from the reproducer folder
    assert (repro / 'program' / 'inputs' / 'loop.wasm').read_bytes() == prog.wasm.read_bytes()
    assert ' loop.wasm ' in script                               # run from the work folder
    monkeypatch.delenv('WASM_MIGRATE_FAULT')
    replay = lambda: subprocess.run([sys.executable, '-m', 'forks', 'replay', str(repro)],
                                    capture_output=True, text=True)
    r = replay()
    assert r.returncode == 1 and 'mismatch reproduces' in r.stdout, r.stdout + r.stderr
    (repro / 'commands.sh').write_text(script.replace('export WASM_MIGRATE_FAULT=pc_offset\n', ''))
    r = replay()
    assert r.returncode == 0 and 'no mismatch this time' in r.stdout, r.stdout + r.stderr


def test_cells_that_cannot_run_say_why(tmp_path, prog, monkeypatch):
    monkeypatch.setenv('WASM_MIGRATE_CACHE', str(tmp_path / 'empty-cache'))
    rts = runtimes(('iwasm', 'ours-wamr'))
    m = matrix.Matrix(tmp_path / 'out', rts, points=1, seed=0, progress=lambda msg: None)
    routes = [('iwasm', 'ours-wamr'), ('ours-wamr', 'ours-wamr')]
    m.run([prog], routes, image_points=())
    doc = m.report(routes)
    assert doc['cells']['iwasm -> ours-wamr']['loop'] == \
        {'na': 'iwasm: wamr fork not built (run: python -m forks build wamr)'}
    assert doc['cells']['ours-wamr -> ours-wamr']['loop']['pass'] == 1
    assert 'n/a[1]' in (tmp_path / 'out' / 'matrix.md').read_text()


def test_bad_usage_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, '-m', 'forks', 'matrix', '--routes', 'iwasm:jvm',
                        '--out', str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: bad route 'iwasm:jvm'")
    r = subprocess.run([sys.executable, '-m', 'forks', 'replay', str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and 'no commands.sh' in r.stderr


def test_failures_explained_by_a_documented_defect_are_counted_apart(tmp_path, prog, monkeypatch):
    monkeypatch.setenv('WASM_MIGRATE_FAULT', 'pc_offset')
    known = [{'finding': 'X1', 'program': 'loop$', 'src': '.*', 'tgt': '.*', 'detail': '.*'}]
    m, doc = run_matrix(tmp_path / 'out', prog, known=known)
    verdicts = [c['verdict'] for c in doc['cases']]
    assert 'known' in verdicts and 'fail' not in verdicts
    other = [{'finding': 'X2', 'program': 'other$', 'src': '.*', 'tgt': '.*', 'detail': '.*'}]
    m, doc = run_matrix(tmp_path / 'out2', prog, known=other)     # does not match: still failures
    assert 'fail' in [c['verdict'] for c in doc['cases']]
    m, doc = run_matrix(tmp_path / 'out', prog, known=known)
    c = next(c for c in doc['cases'] if c['verdict'] == 'known')
    assert c['detail'][0] == 'known fork defect X1 (docs/fork-findings.md)' and c['repro']
    assert 'known defect)' in (tmp_path / 'out' / 'matrix.md').read_text()


def test_image_sets_at_equal_counts_match_the_real_wasmedge_and_the_authors(tmp_path):
    """Real wasmedge --dispatch-limit 1000 and the engine's WasmEdge model at
    the same count write byte-identical image files, equal to the authors'
    expect-images (n-body, run as their test script runs it)."""
    from forks import build, programs
    if build.locate('wasmedge') is None:
        pytest.skip('the wasmedge fork is not built (run: python -m forks build wasmedge)')
    expect = programs.expect_images()
    rts = runtimes(('wasmedge', 'ours-wasmedge'))
    m = matrix.Matrix(tmp_path, rts, points=1, seed=0, progress=lambda msg: None)
    prog, limit, d = expect['n-body']
    m.image_check(prog, limit, d, label='n-body')
    row = m.images[0]
    assert row['sets'] == {'wasmedge': '9 files', 'ours-wasmedge': '9 files', 'expect-images': '9 files'}
    assert (row['verdict'], row['detail']) == ('same', [])


def test_instruction_count_of_a_trapping_engine_run(tmp_path):
    """A trapping run prints no summary line; its count comes from the trap
    message, so checkpoints are drawn inside the engine's own run."""
    from forks.runtimes import Ours, execute
    wasm = tmp_path / 'trap.wasm'
    wasm.write_bytes(wasmtime.wat2wasm('(module (func (export "run") (param i32) (result i32)'
                                       ' (i32.div_u (i32.const 7) (local.get 0))))'))
    counts = {}
    for arg in ('1', '0'):
        o = execute(Ours('wamr').run(Program('t', wasm, argv=(arg,), invoke='run',
                                             results=('i32',)), tmp_path))
        counts[arg] = matrix.instructions('ours-wamr', o)
    assert counts['1'] is not None and counts['0'] is not None
    assert counts['0'] <= counts['1']
    assert matrix.instructions('ours-wamr', matrix.Outcome(
        b'', b'trap: integer overflow (in function 3 at instruction 57 (i64.trunc_f64_s), '
        b'byte offset 151, instruction count 67)\n', 1, 0.1)) == 67


def test_memory_images_compare_by_content():
    """A page of zeros listed by one side (a fork lists present pages) and
    absent from the other (the engine lists non-zero ones) is the same
    memory; any differing byte is not."""
    from forks.matrix import _same_memory

    def img(pages):
        return b''.join(off.to_bytes(4, 'little') + data for off, data in pages)
    page = bytes(range(256)) * 16
    one = img([(0, page)])
    assert _same_memory(one, img([(0, page), (4096, bytes(4096))]))[0]
    assert _same_memory(one, one) == (True, 'memory.img same content; 0 zero page(s) listed by one side only')
    assert not _same_memory(one, img([(0, page), (4096, b'\x01' + bytes(4095))]))[0]
    assert not _same_memory(one, img([(4096, page)]))[0]
    assert not _same_memory(one, None)[0]


def test_the_authors_tables_call_indirect_defect_is_classified_as_f1():
    """F1 (docs/fork-findings.md) as iwasm shows it: the type bytes come from
    the authors' tables (no caller record after call_indirect: the next
    position's stack, one value more) but the cells from the frame, so the
    file is malformed; a frame laid out so, as the SIGINT'd iwasm wrote it
    for n-body's function 43 stopped in its call_indirect, is refused with
    the message the known-defects entry matches, for the authors' apps only."""
    import struct
    from engine.migrate import fork_images
    from engine.migrate.images import ImageError
    labels = [(0, 228, 0, 1), (2, 0xFFFFFFFF, 0, 0), (78, 0xFFFFFFFF, 0, 0)]
    data = (struct.pack('<4I', 43, 53, 349, 9) + bytes([1] * 9)
            + struct.pack('<8I', 1082, 1, 3688, 1, 1081, 4468, 1, 1082)
            + struct.pack('<I', len(labels)) + b''.join(struct.pack('<4I', *lab) for lab in labels))
    with pytest.raises(ImageError) as e:
        fork_images.parse_frame('stack5.img', data, 'wamr')
    m = matrix.Matrix.__new__(matrix.Matrix)
    m.known = json.loads(matrix.KNOWN_DEFECTS.read_text())['defects']
    line = f'translate wamr -> wasmedge fail (exit 2): error: {e.value}'
    assert 'end: 44 unexpected trailing bytes' in line

    def case(program, src):
        return matrix.Case(program, src, 'ours-wasmedge', 0, detail=[line])
    assert m.known_defect(case('n-body', 'iwasm')) == 'F1'
    assert m.known_defect(case('binary-trees', 'iwasm')) == 'F1'
    assert m.known_defect(case('gen-1', 'iwasm')) is None        # our own tables: no excuse
    assert m.known_defect(case('n-body', 'ours-wamr')) is None
    # the WasmEdge fork's form: the type bytes and as many values, refused by the check
    line = ('translate wasmedge -> wamr fail (exit 2): error: stack2.img: type stack: '
            '[1, 1, 1, 1, 1, 1, 1, 1, 1], but function 43 at offset 163 has [1, 1, 1, 1, 1, 1, 1, 1] '
            '(i32 i32 i32 i32 i32 i32 i32 i32); type tables of another module? (byte 16)')
    assert m.known_defect(matrix.Case('n-body', 'wasmedge', 'ours-wamr', 0, detail=[line])) == 'F1'
    assert m.known_defect(matrix.Case('c-loops', 'wasmedge', 'ours-wamr', 0, detail=[line])) is None
