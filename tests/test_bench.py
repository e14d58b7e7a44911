"""``python -m bench`` runs and writes its JSON; the label-replay workload's
one-pass block structure gives exactly what replaying the code from the
start gives (no timing is asserted: bench/results.json records the speed)."""

import json
import os
import subprocess
import sys

import pytest

from engine import embedding
from engine.migrate.translate import ModuleView
from engine.valid import blocks_open_at, operand_types
from fuzz import gen

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_block_structure_equals_replaying_from_the_start():
    for seed in range(12):
        gm = gen.from_seed(seed)
        module = embedding.module_decode(gm.wasm)
        info = embedding.module_validate(module)
        view = ModuleView(module, info)
        for k, f in enumerate(module.funcs):
            fidx = view.nimported + k
            for pc in range(len(f.body)):
                got = view.open_blocks(fidx, pc)
                assert [b for b, _ in got] == blocks_open_at(f.body, pc)
                assert all(list(t) == operand_types(module, k, b) for b, t in got)


def test_bench_quick_run_writes_json(tmp_path):
    out = tmp_path / 'r.json'
    p = subprocess.run([sys.executable, '-m', 'bench', 'label-replay', '--quick', '--json', str(out)],
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    rows = json.loads(out.read_text())['workloads']['label-replay']['rows']
    assert [r['labels'] for r in rows] == [2001, 8001]
    assert all(r['cpu_seconds'] >= 0 for r in rows)
    p = subprocess.run([sys.executable, '-m', 'bench', 'nope'], cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "unknown workload 'nope'" in p.stderr


# ------------------------------------------------------------ issue 9's workloads

def run_bench(*args):
    return subprocess.run([sys.executable, '-m', 'bench', *map(str, args)], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True,
                          timeout=600)


def test_kernel_expected_values_are_what_wasmtime_computes():
    """Each kernel's Python mirror (the value every engine is checked
    against) agrees with wasmtime on the kernel's wasm, f64 bits included."""
    import wasmtime
    from bench.kernels import KERNELS, wasm_of
    for name, (_, wat, expected, result, (_, quick)) in KERNELS.items():
        store = wasmtime.Store()
        inst = wasmtime.Instance(store, wasmtime.Module(store.engine, wasm_of(wat)), [])
        got = inst.exports(store)['run'](store, quick) & ((1 << int(result[1:])) - 1)
        assert got == expected(quick), name


def test_quick_run_reports_every_engine_and_the_table(tmp_path):
    """A smoke run of three cheap workloads: every engine has a row, with a
    time or the reason there is none; the fast tier is reported unavailable
    exactly when the build has no tiers; one campaign unit runs clean;
    --table renders the JSON."""
    from bench.engines import ENGINES, tiers_supported
    out = tmp_path / 'r.json'
    p = run_bench('fib', 'deep-stack', 'campaign', '--quick', '--json', out)
    assert p.returncode == 0, p.stderr
    report = json.loads(out.read_text())
    rows = {r['engine']: r for r in report['workloads']['fib']['rows']}
    assert list(rows) == list(ENGINES)
    for engine, r in rows.items():
        assert r['status'] in ('ok', 'unavailable', 'error', 'wrong result'), r
        assert (r['cpu_seconds'] is None) == (r['status'] != 'ok'), r
    assert all(rows[e]['status'] == 'ok' for e in ('wasmedge/interp', 'wamr/interp', 'wasmtime'))
    fast = {rows['wasmedge/fast']['status'], rows['wamr/fast']['status']}
    assert fast == ({'ok'} if tiers_supported() else {'unavailable'})
    stack = [r for r in report['workloads']['deep-stack']['rows'] if r['engine'].endswith('interp')]
    assert sorted(r['case'] for r in stack) == sorted(['500 frames, stack{i}.img',
                                                       '500 frames, stacks.img'] * 2)
    assert all(r['status'] == 'ok' for r in stack)
    (camp,) = report['workloads']['campaign']['rows']
    assert camp['status'] == 'ok' and camp['checks'] > 0 and camp['checks_per_second'] > 0, camp
    assert {(r['model'], r['case']) for r in report['ratios']} == {
        (m, 'fib(12)') for m in ('wasmedge', 'wamr')}
    p = run_bench('--table', '--json', out)
    assert p.returncode == 0 and '| fib(12) |' in p.stdout and '| 500 frames, stacks.img |' in p.stdout


def test_a_wrong_result_is_an_error_not_a_time():
    from bench.compute import measure
    from bench.kernels import FIB, wasm_of
    row = measure('wasmedge/interp', wasm_of(FIB), ('invoke', 'run', [10]), 56)
    assert row['status'] == 'wrong result' and row['cpu_seconds'] is None
    assert 'got 55, expected 56' in row['why']
    assert measure('wasmedge/interp', wasm_of(FIB), ('invoke', 'run', [10]), 55)['status'] == 'ok'


def test_a_short_run_is_repeated_afresh_and_its_least_time_kept(monkeypatch):
    """Runs are repeated while fewer than ``repeat`` took under ``budget``
    CPU seconds in all, each with its own prepare (cold again); the row
    keeps the least time and says how many runs there were."""
    from bench import compute
    seconds = iter([0.5, 0.2, 0.3, 0.4])
    prepared = []

    def prepare(engine, wasm, call):
        prepared.append(engine)
        s = next(seconds)
        return lambda: compute.Timed(55, s)
    monkeypatch.setattr(compute, 'prepare', prepare)
    row = compute.measure('e', b'', ('invoke', 'run', [10]), 55, repeat=3, budget=1.0)
    assert (row['cpu_seconds'], row['runs'], len(prepared)) == (0.2, 3, 3)
    seconds = iter([0.7, 0.4, 0.1])                   # 1.1 s after two runs: no third
    row = compute.measure('e', b'', ('invoke', 'run', [10]), 55, repeat=3, budget=1.0)
    assert (row['cpu_seconds'], row['runs']) == (0.4, 2)
    seconds = iter([2.5])                             # one long run is enough
    assert compute.measure('e', b'', ('invoke', 'run', [10]), 55)['runs'] == 1
    seconds = iter([0.1, 0.1])                        # a wrong second result spoils the row
    results = iter([55, 54])
    monkeypatch.setattr(compute, 'prepare', lambda e, w, c: (lambda: compute.Timed(next(results),
                                                                                   next(seconds))))
    row = compute.measure('e', b'', ('invoke', 'run', [10]), 55)
    assert row['status'] == 'wrong result' and row['cpu_seconds'] is None


def test_repeat_sets_the_rule_and_the_table_says_it(tmp_path, monkeypatch):
    """``--repeat N``: up to N runs while under N/3 s in all, recorded in
    the JSON and stated in the table; below 1 it is refused."""
    from bench import __main__ as cli, compute, report
    seconds = iter([0.3] * 5 + [9])
    monkeypatch.setattr(compute, 'prepare', lambda e, w, c: (lambda: compute.Timed(55, next(seconds))))
    monkeypatch.setattr(compute, 'REPEAT', 3)
    monkeypatch.setattr(compute, 'REPEAT_BUDGET', 1.0)
    compute.REPEAT, compute.REPEAT_BUDGET = compute.repeat_rule(5)
    row = compute.measure('e', b'', ('invoke', 'run', [10]), 55)
    assert row['runs'] == 5                           # 1.5 s < 5/3 s: all five
    out = tmp_path / 'r.json'
    assert cli.main(['label-replay', '--quick', '--repeat', '6', '--json', str(out)]) == 0
    r = json.loads(out.read_text())
    assert r['repeat'] == 6 and 'the least of up to 6 when the runs took under 2 s' in report.render(r)
    assert cli.main(['label-replay', '--repeat', '0', '--json', str(out)]) == 2


def test_a_missing_engine_is_reported_as_such(monkeypatch):
    from bench.compute import measure
    from bench.kernels import FIB, wasm_of
    monkeypatch.setitem(sys.modules, 'pwasm', None)         # import pwasm -> ImportError
    row = measure('pwasm-compile', wasm_of(FIB), ('invoke', 'run', [10]), 55)
    assert row['status'] == 'unavailable' and 'pwasm is not installed' in row['why']


def test_pwasm_compiles_cold_as_ours_does(tmp_path, monkeypatch):
    """pwasm's disk cache of generated code would let a second bench run
    time it without compiling; the bench turns the cache off."""
    codegen = pytest.importorskip('pwasm.codegen')
    from bench.compute import measure
    from bench.kernels import FIB, wasm_of
    monkeypatch.setattr(codegen, 'CACHE_DIR', str(tmp_path / 'pwasm'))
    assert measure('pwasm-compile', wasm_of(FIB), ('invoke', 'run', [10]), 55)['status'] == 'ok'
    assert codegen.CACHE_DIR is None and not (tmp_path / 'pwasm').exists()


def test_readme_table_is_generated_from_the_json(tmp_path):
    out = tmp_path / 'r.json'
    assert run_bench('fib', '--quick', '--json', out).returncode == 0
    readme = tmp_path / 'README.md'
    readme.write_text('# x\n\n<!-- bench:begin -->\nold\n<!-- bench:end -->\n\ntail\n')
    p = run_bench('--table', '--json', out, '--readme', readme)
    assert p.returncode == 0, p.stderr
    text = readme.read_text()
    assert 'old' not in text and '| fib(12) |' in text and text.endswith('<!-- bench:end -->\n\ntail\n')
    readme.write_text('no markers\n')
    p = run_bench('--table', '--json', out, '--readme', readme)
    assert p.returncode == 2 and 'markers' in p.stderr


def _have_commit(rev):
    p = subprocess.run(['git', '-C', ROOT, 'rev-parse', '--verify', '--quiet', f'{rev}^{{commit}}'],
                       capture_output=True)
    return p.returncode == 0


def test_the_interpreter_issue_9_measured_runs_from_its_commit(tmp_path, monkeypatch):
    """The 30x target's baseline is the interpreter of the day issue 9 was
    filed: its commit's engine (the flat layout of that day, not today's
    package) runs in a child, answers right and reports the child's CPU
    time; a commit missing from the history is unavailable, naming it."""
    from bench import baseline
    from bench.compute import measure
    from bench.engines import Unavailable
    from bench.kernels import FIB, wasm_of
    monkeypatch.setattr(baseline, 'CACHE', tmp_path / 'cache')
    if not _have_commit(baseline.ISSUE9):
        pytest.skip(f'commit {baseline.ISSUE9} is not in this clone\'s history')
    home = baseline.engine_at(baseline.ISSUE9, Unavailable)
    assert (home / 'engine' / 'exec_wasmedge.py').is_file() and not (home / 'engine' / 'exec').exists()
    assert [p.name for p in (tmp_path / 'cache').iterdir()] == [home.name]     # no staging left
    for model in ('wasmedge', 'wamr'):
        row = measure(f'{model}/interp@{baseline.ISSUE9}', wasm_of(FIB), ('invoke', 'run', [15]), 610)
        assert row['status'] == 'ok' and row['cpu_seconds'] > 0, row
        row = measure(f'{model}/interp@{baseline.ISSUE9}', wasm_of(FIB), ('invoke', 'run', [15]), 611)
        assert row['status'] == 'wrong result' and 'got 610' in row['why'], row
    with pytest.raises(Unavailable, match='commit 0123456789abcdef is not in'):
        baseline.engine_at('0123456789abcdef', Unavailable)


def test_the_engines_runs_are_taken_in_turn(monkeypatch):
    """``measure_all``: one run of each engine that wants more per round
    (a slow spell of the machine falls on all alike), each engine's row as
    ``measure`` makes it, in the engines' order."""
    from bench import compute
    order = []
    seconds = {'a': iter([0.2, 0.1, 0.3]), 'b': iter([2.0]), 'c': iter([0.3, 0.4, 0.2])}

    def prepare(engine, wasm, call):
        order.append(engine)
        s = next(seconds[engine])
        return lambda: compute.Timed(55, s)
    monkeypatch.setattr(compute, 'prepare', prepare)
    monkeypatch.setattr(compute, 'REPEAT', 3)
    monkeypatch.setattr(compute, 'REPEAT_BUDGET', 1.0)
    rows = compute.measure_all(['a', 'b', 'c'], b'', ('invoke', 'run', [10]), 55)
    assert order == ['a', 'b', 'c', 'a', 'c', 'a', 'c']
    assert [(r['engine'], r['cpu_seconds'], r['runs']) for r in rows] == [
        ('a', 0.1, 3), ('b', 2.0, 1), ('c', 0.2, 3)]
