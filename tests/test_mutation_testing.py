"""The killing test of the mutation testing (fuzz.mutation_testing) fails
when the migration path is wrong, so a mutation run cannot report every
mutant "killed" or "survived" because its harness is broken: it passes on
the real code, fails for deliberate faults of engine/faults.py (in-process,
and through the environment switch as cosmic-ray runs it), and its scope
and run state stay where they belong."""

import contextlib
import io
import os
import subprocess
import sys

import pytest

from engine import faults
from fuzz import mutation_testing as mt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAVE_SPEC = os.path.isdir(mt.spec_dir())


def test_a_slice_of_the_killing_test_passes_on_the_real_code():
    out = io.StringIO()
    spec = ('labels.wast', 'global.wast') if HAVE_SPEC else ()
    assert mt.kill(units=4, spec=spec, out=out) == 0, out.getvalue()
    assert out.getvalue() == ''


@pytest.mark.parametrize('fault', ['lost_label', 'global_width', 'chunk_index', 'neutral_dropped',
                                   'br_table_default', 'i64_cell_order', 'link_target'])
def test_the_killing_test_fails_for_a_deliberate_fault(fault, monkeypatch):
    monkeypatch.setattr(faults, fault.upper(), True)
    out = io.StringIO()
    assert mt.kill(spec=(), out=out) == 1
    assert out.getvalue().startswith('DIVERGENCE campaign unit ')


def test_the_gc_part_checks_the_gc_programs_and_names_itself(monkeypatch):
    """The campaign's generated modules use no GC: the GC part (the
    programs of fuzz/gcseeds.py through oracle.check_module) passes on the
    real code, fails for the GC heap fault, and a kill there is recorded
    as the GC part's (also when carried through the ledger)."""
    from fuzz import mutation_ledger
    out = io.StringIO()
    assert mt.kill(units=0, spec=(), out=out) == 0, out.getvalue()
    monkeypatch.setattr(faults, 'GC_IDENTITY', True)
    assert mt.kill(units=0, spec=(), out=out) == 1
    part = mt.killing_part(out.getvalue())
    assert part[0] == 'gc' and part[1] in mt.KILL_GC, out.getvalue()
    carried = mutation_ledger.output_of('abc', {'outcome': 'killed', 'part': list(part)})
    assert mt.killing_part(carried) == part


def test_the_killing_test_command_fails_with_the_fault_switched_on_by_the_environment():
    """What cosmic-ray runs for each mutant: exit status 1 is 'killed'."""
    env = dict(os.environ, PYTHONPATH=ROOT, WASM_MIGRATE_FAULT='pc_offset')
    r = subprocess.run([sys.executable, '-m', 'fuzz.mutation_testing', 'kill'], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    assert 'DIVERGENCE' in r.stdout


def test_a_harness_crash_counts_as_a_divergence(monkeypatch):
    from fuzz import oracle

    def broken(*a, **k):
        raise KeyError('boom')
    monkeypatch.setattr(oracle, 'check_module', broken)
    out = io.StringIO()
    assert mt.kill(units=1, spec=(), out=out) == 1
    assert 'harness raised KeyError' in out.getvalue()


def test_scope_names_functions_that_exist():
    lines = mt.scope_lines()
    assert set(lines) == set(mt.SCOPE)
    for rel, entries in mt.SCOPE.items():
        if entries is not None:
            assert lines[rel], rel
    src = open(os.path.join(ROOT, 'engine', 'exec', 'wamr.py')).read().splitlines()
    start = next(i + 1 for i, l in enumerate(src) if l.strip().startswith('def start('))
    assert start in lines['engine/exec/wamr.py']
    assert mt.in_scope('engine/migrate/state.py', 1, 1, lines)
    # the instruction implementations of the run loop are not in scope
    add = next(i + 1 for i, l in enumerate(src) if 'if name in numerics.OPS' in l)
    assert add not in lines['engine/exec/wamr.py']
    # the run loops' branch bookkeeping is (the loop moved once into _run,
    # and the scope lost it without an error)
    for rel, needle in (('wamr.py', 'del labels[len(labels) - npop:]'),
                        ('wasmedge.py', 'from_pc')):
        src = open(os.path.join(ROOT, 'engine', 'exec', rel)).read().splitlines()
        run = next(i for i, l in enumerate(src) if 'def _run(' in l)
        hits = [i + 1 for i, l in enumerate(src) if needle in l and i > run]
        assert hits and set(hits) <= lines['engine/exec/' + rel], rel


def test_a_scope_pattern_matching_almost_nothing_is_stale(monkeypatch):
    monkeypatch.setitem(mt.SCOPE, 'engine/exec/wamr.py', [('Executor.run', 'no such code')])
    with pytest.raises(SystemExit, match='stale'):
        mt.scope_lines()


def test_run_state_outside_the_checkout_is_required(capsys):
    assert mt.main(['init', '--work', os.path.join(ROOT, 'mutation-state')]) == 2
    assert 'inside the checkout' in capsys.readouterr().err
    assert not os.path.exists(os.path.join(ROOT, 'mutation-state'))


@pytest.mark.skipif(not HAVE_SPEC, reason='spec testsuite not found')
def test_a_tree_copy_outside_the_checkout_finds_the_spec_suite(tmp_path, monkeypatch):
    """Mutants are tested in a copy under ~/.cache, whose ../shared is not
    the suite's: the killing test there must still find its spec files (a
    session once failed its baseline on this)."""
    monkeypatch.delenv('WASM_TESTSUITE', raising=False)
    tree = mt.copy_tree(tmp_path)
    code = ('import os, fuzz.mutation_testing as m; '
            'print(os.path.isfile(os.path.join(m.spec_dir(), "labels.wast")), m.ROOT)')
    r = subprocess.run([sys.executable, '-c', code], cwd=tree, env=mt._env(tree),
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ['True', str(tree)], r.stdout + r.stderr


def test_every_judged_survivor_still_names_code_of_its_file():
    """docs/mutation-survivors.json is keyed by file and changed lines: a
    judgement whose original lines left the file (moved, rewritten) would
    silently judge nothing."""
    assert mt.stale_judgements() == []


def test_the_killing_tests_campaign_part_is_the_first_units_of_its_campaign(tmp_path, monkeypatch):
    """The construction behind the 120 s criterion: a fault the campaign
    part catches in unit k is caught by the campaign of mt.campaign_command
    in its unit k (fuzz.migrate --runs k + 1), the same module and plans."""
    import re
    monkeypatch.setattr(faults, 'LOST_LABEL', True)
    out = io.StringIO()
    assert mt.kill(spec=(), out=out) == 1
    part, unit = mt.killing_part(out.getvalue())
    assert part == 'campaign', out.getvalue()
    env = dict(os.environ, PYTHONPATH=ROOT, WASM_MIGRATE_FAULT='lost_label')
    cmd = [sys.executable] + mt.campaign_command(units=unit + 1) + [
        '--out', str(tmp_path / 'c'), '--shrink-seconds', '0', '--quiet', '--no-wasmtime']
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 1, r.stdout + r.stderr
    failed = os.listdir(tmp_path / 'c' / 'failures')
    assert [int(re.search(r'-u(\d+)$', f).group(1)) for f in failed] == [unit], failed


def test_a_mutant_runs_only_the_tests_that_execute_its_statement(tmp_path):
    """``tests_for``: a statement in a function body is tested by the tests
    that execute it and a statement none executes is not tested; what runs
    at import (no test's context), outside a function or on a ``def`` line
    (its defaults) reaches later tests without their executing it: the
    whole killing test."""
    from types import SimpleNamespace
    src = tmp_path / 'engine' / 'x.py'
    src.parent.mkdir()
    src.write_text('K = 1\ndef f(a, b=K):\n    if a:\n        return (a +\n                1)\n    return b\n')
    ran = {'engine/x.py': {1: {''}, 2: {'campaign:3'}, 3: {'campaign:3', 'spec:if.wast'},
                           4: {'campaign:3'}}}

    def at(first, last=None):
        return SimpleNamespace(module_path='engine/x.py', start_pos=(first, 0), end_pos=(last or first, 0))
    assert mt.tests_for(tmp_path, ran, at(3)) == {'campaign:3', 'spec:if.wast'}
    assert mt.tests_for(tmp_path, ran, at(5)) == {'campaign:3'}     # a continuation line: its statement's
    assert mt.tests_for(tmp_path, ran, at(6)) == set()
    assert mt.tests_for(tmp_path, ran, at(1)) is mt.WHOLE
    assert mt.tests_for(tmp_path, ran, at(2)) is mt.WHOLE
    assert mt.kill_command(tmp_path, {'spec:if.wast', 'campaign:3'})[-2:] == ['--tests', 'campaign:3,spec:if.wast']


def test_the_killing_test_runs_the_tests_it_is_given_and_says_which(tmp_path):
    """``kill --tests``: the named tests only (it passes on the unmutated
    code and says how many of each part ran); a label naming no test is a
    clear error."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop('WASM_MIGRATE_FAULT', None)
    cmd = [sys.executable, '-m', 'fuzz.mutation_testing', 'kill', '--tests']
    r = subprocess.run(cmd + ['campaign:1,gc:list'], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (f'1 of {mt.KILL_UNITS} campaign units, 1 of {len(mt.KILL_GC)} GC programs, '
            f'0 of {len(mt.KILL_SPEC)} spec files') in r.stdout
    r = subprocess.run(cmd + ['campaign:1,unit 2'], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0 and "error: --tests: 'unit 2' is not" in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr


@pytest.mark.skipif(not HAVE_SPEC, reason='spec testsuite not found')
def test_each_test_of_the_killing_test_is_measured_in_its_own_context(tmp_path):
    """``killing_tests`` labels each executed statement with the tests that
    ran it: the campaign unit's and the spec file's code under their own
    labels (the interpreter loop under both), nothing under a test that did
    not run."""
    tests = {'campaign:0', 'spec:select.wast'}
    ran = mt.killing_tests(mt.ROOT, tmp_path, tests)
    seen = set().union(*(labels for lines in ran.values() for labels in lines.values()))
    assert tests <= seen <= tests | {''}, seen
    loop = mt._statement_of(mt.ROOT, 'engine/exec/wasmedge.py')
    both = [n for n, labels in ran['engine/exec/wasmedge.py'].items() if labels == tests]
    assert both and all(mt._in_body(mt.ROOT, 'engine/exec/wasmedge.py', loop.get(n, n)) for n in both)
    assert (tmp_path / mt.KILLING_TESTS).exists()


def test_error_paths_are_recognised_in_every_spelling():
    """Branches into the rejection of bad input are set apart from the
    coverage target: a raise, a module's ``_fail``, an object's ``.fail``
    and a ``fail`` passed in as a parameter (engine/migrate/memories.py,
    exnstate.py) alike; an ordinary call is not one."""
    for line in ("    raise ImageError('x')", "        _fail('f', 'm')", "  self.fail(where, 'm')",
                 "            fail(f'exception {k} tag', 'm')", "    _exn_fail(f'caught', 'm')"):
        assert mt.HOSTILE.search(line), line
    for line in ("    failures.append(x)", "    out = fail_count + 1", "    unfail(x)"):
        assert not mt.HOSTILE.search(line), line


@pytest.mark.skipif(not HAVE_SPEC, reason='spec testsuite not found')
def test_the_spec_parts_neutral_route_is_read_by_the_independent_checker(monkeypatch):
    """conformance's neutral hop derives a frame's handlers from the code
    when writing and reading alike: handlers written without their tags
    pass it, and the killing test's spec part catches them through
    fuzz.neutralcheck (and leaves conformance as it found it)."""
    from conformance import migration
    from engine.migrate import neutral
    real = neutral.handlers_at

    def tagless(*a):
        out = real(*a)
        for h in out:
            for c in h.get('legacy_catches', ()):
                c['tag'] = None
        return out
    monkeypatch.setattr(neutral, 'handlers_at', tagless)
    before = migration.through_neutral
    out = io.StringIO()
    assert mt.kill(units=0, spec=('wasm-3.0/legacy/try_catch.wast',), out=out) == 1
    assert 'NeutralCheckError' in out.getvalue() and 'legacy' in out.getvalue()
    assert migration.through_neutral is before


def test_every_file_of_the_scope_is_given_to_cosmic_ray():
    """SCOPE restricts the mutants cosmic-ray makes of its ``module-path``
    files: a SCOPE file missing there gets no mutants at all, silently
    (the Wasm 3.0 modules once did)."""
    import tomllib
    with open(mt.CONFIG, 'rb') as f:
        paths = tomllib.load(f)['cosmic-ray']['module-path']
    assert set(mt.SCOPE) <= set(paths), set(mt.SCOPE) - set(paths)


def _config(path, files):
    path.write_text('[cosmic-ray]\nmodule-path = [' + ', '.join(f'"{f}"' for f in files) + ']\n'
                    'timeout = 60.0\nexcluded-modules = []\ntest-command = "true"\n'
                    '[cosmic-ray.distributor]\nname = "local"\n')
    return path


def test_a_session_gains_the_mutants_of_files_the_scope_gained(tmp_path):
    """``extend`` adds the work items of module-path files the session has
    none of, keeping the results so far (the Wasm 3.0 modules joined the
    scope after a session had run for hours)."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkResult, WorkerOutcome
    work = tmp_path / 'work'
    mt.init(work, config=_config(tmp_path / 'one.toml', ['engine/migrate/state.py']))
    with use_db(str(mt._db(work)), WorkDB.Mode.open) as wdb:
        before = [w.job_id for w in wdb.work_items]
        wdb.set_result(before[0], WorkResult(output='x', test_outcome=TestOutcome.KILLED,
                                             worker_outcome=WorkerOutcome.NORMAL))
    two = _config(tmp_path / 'two.toml', ['engine/migrate/state.py', 'engine/migrate/exnstate.py'])
    added = mt.extend(work, config=two)
    with use_db(str(mt._db(work)), WorkDB.Mode.open) as wdb:
        items = list(wdb.work_items)
        files = {str(m.module_path) for w in items for m in w.mutations}
        kept = dict(wdb.results)
    assert added > 0 and len(items) == len(before) + added
    assert files == {'engine/migrate/state.py', 'engine/migrate/exnstate.py'}
    assert kept[before[0]].test_outcome == TestOutcome.KILLED
    assert mt.extend(work, config=two) == 0            # nothing new the second time
    # a grown file that is not the tree's version cannot be added
    three = _config(tmp_path / 'three.toml', ['engine/migrate/state.py', 'engine/migrate/memories.py'])
    (mt._tree(work) / 'engine/migrate/memories.py').write_text('# another version\n')
    with pytest.raises(SystemExit, match='memories.py changed since the session began'):
        mt.extend(work, config=three)


def test_ledger_keys_follow_a_function_not_its_place_in_the_file(tmp_path):
    """A mutant's ledger key names the function it mutates by its source:
    it survives lines added above the function, and changes when the
    function itself changes (so its mutants are tested again)."""
    from fuzz.mutation_ledger import Keys
    one = 'X = 1\n\ndef a(x):\n    return x + 1 + 2\n\ndef b(y):\n    return y - 1\n'
    two = 'X = 1\nZ = 3\n\n\ndef a(x):\n    return x + 1 + 2\n\ndef b(y):\n    return y - 2\n'
    (tmp_path / 'one').mkdir()
    (tmp_path / 'two').mkdir()
    (tmp_path / 'one' / 'm.py').write_text(one)
    (tmp_path / 'two' / 'm.py').write_text(two)
    k1 = Keys(tmp_path / 'one', 'm.py').keys([('core/AddSub', None, 0, 4), ('core/AddSub', None, 1, 4),
                                              ('core/AddSub', None, 2, 7)])
    # the file's occurrences move (Z's line adds none here, but a's lines shift by two)
    k2 = Keys(tmp_path / 'two', 'm.py').keys([('core/AddSub', None, 0, 6), ('core/AddSub', None, 1, 6),
                                              ('core/AddSub', None, 2, 9)])
    assert k1[('core/AddSub', 0)] == k2[('core/AddSub', 0)]
    assert k1[('core/AddSub', 1)] == k2[('core/AddSub', 1)]
    assert k1[('core/AddSub', 0)] != k1[('core/AddSub', 1)]          # the rank in the function
    assert k1[('core/AddSub', 2)] != k2[('core/AddSub', 2)]          # b changed
    # a module-level line belongs to the whole file, which changed
    m1 = Keys(tmp_path / 'one', 'm.py').keys([('core/NumberReplacer', None, 0, 1)])
    m2 = Keys(tmp_path / 'two', 'm.py').keys([('core/NumberReplacer', None, 0, 1)])
    assert m1 != m2


def test_a_ledger_carries_killed_and_judged_results_into_a_fresh_session(tmp_path):
    """``export`` writes what a later killing test cannot overturn (killed,
    timeout); ``init --carry`` gives those results to the same mutants of
    a fresh session, with their killing part; an unexplained survivor is
    not carried (it is tested again)."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkResult, WorkerOutcome
    from fuzz import mutation_ledger
    cfg = _config(tmp_path / 'one.toml', ['engine/migrate/state.py'])
    work = tmp_path / 'work'
    mt.init(work, config=cfg)
    with use_db(str(mt._db(work)), WorkDB.Mode.open) as wdb:
        jobs = sorted(w.job_id for w in wdb.pending_work_items)
        killed, timed, survived = jobs[:3]
        wdb.set_result(killed, WorkResult(output='...\nDIVERGENCE campaign unit 7 wamr -> wasmedge\n',
                                          test_outcome=TestOutcome.KILLED, worker_outcome=WorkerOutcome.NORMAL))
        wdb.set_result(timed, WorkResult(output='timeout', test_outcome=TestOutcome.KILLED,
                                         worker_outcome=WorkerOutcome.NORMAL))
        wdb.set_result(survived, WorkResult(output='ok', diff='--- a\n+++ b\n-x = 1\n+x = 2',
                                            test_outcome=TestOutcome.SURVIVED,
                                            worker_outcome=WorkerOutcome.NORMAL))
    ledger = tmp_path / 'ledger.json'
    assert mt.export(work, ledger) == 2
    commit, entries = mutation_ledger.read(ledger)
    assert sorted(e['outcome'] for e in entries.values()) == ['killed', 'timeout']
    work2 = tmp_path / 'work2'
    mt.init(work2, config=cfg, carry=ledger)
    # job ids are new in each session: the same mutant is the same operator and occurrence
    name = {r['job']: (r['operator'], r['occurrence']) for r in mt.results(work)}
    killed, timed, survived = name[killed], name[timed], name[survived]
    rows = {(r['operator'], r['occurrence']): r for r in mt.results(work2)}
    assert rows[killed]['outcome'] == 'killed' and rows[killed]['carried']
    assert (rows[killed]['killed by'], rows[killed]['unit']) == ('campaign', 7)
    assert rows[timed]['outcome'] == 'timeout' and rows[timed]['carried']
    assert rows[survived]['outcome'] == 'pending'
    assert sum(r['carried'] for r in rows.values()) == 2
    # the carried session exports the same ledger again
    again = tmp_path / 'again.json'
    mt.export(work2, again)
    assert mutation_ledger.read(again)[1] == entries
    # a file that is not a ledger is refused, naming it
    bad = tmp_path / 'bad.json'
    bad.write_text('{"version": 1, "results": {"k": {"outcome": "maybe"}}}')
    with pytest.raises(mutation_ledger.LedgerError, match='bad.json: entry k'):
        mt.init(tmp_path / 'work3', config=cfg, carry=bad)


def test_a_ledger_carries_each_mutant_its_own_result_in_a_function_partly_in_scope(tmp_path):
    """A mutant's rank in its function counts the mutants outside the
    scope too (``export`` keys every work item): ``init --carry`` once
    ranked the pending ones alone, and gave 179 mutants of the
    executors' run loops another mutant's result.  Each in-scope mutant of
    wamr.py gets a result naming it (its own campaign unit); a fresh
    session must carry every one to the same mutant."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkResult, WorkerOutcome
    cfg = _config(tmp_path / 'wamr.toml', ['engine/exec/wamr.py'])
    work = tmp_path / 'work'
    mt.init(work, config=cfg)
    with use_db(str(mt._db(work)), WorkDB.Mode.open) as wdb:
        pending = sorted(wdb.pending_work_items, key=lambda w: w.job_id)
        skipped = wdb.num_work_items - len(pending)
        for unit, w in enumerate(pending):
            wdb.set_result(w.job_id, WorkResult(
                output=f'DIVERGENCE campaign unit {unit} wamr -> wasmedge\n',
                test_outcome=TestOutcome.KILLED, worker_outcome=WorkerOutcome.NORMAL))
    assert skipped > 0 and len(pending) > 100      # the file is partly in the scope
    ledger = tmp_path / 'ledger.json'
    assert mt.export(work, ledger) == len(pending)
    mt.init(tmp_path / 'work2', config=cfg, carry=ledger)

    def units(w):
        return {(r['operator'], r['occurrence']): r['unit'] for r in mt.results(w)}
    want = units(work)
    assert sorted(want.values()) == list(range(len(pending)))
    assert units(tmp_path / 'work2') == want


def test_every_session_command_without_a_session_says_to_run_init(tmp_path, capsys):
    """``report`` once ended in cosmic-ray's FileNotFoundError traceback."""
    for cmd in (['report'], ['export', '--to', str(tmp_path / 'l.json')], ['rerun'],
                ['run', '--time', '1'], ['campaign', '--time', '1']):
        with pytest.raises(SystemExit, match='no session in .*run "python -m fuzz.mutation_testing init"'):
            mt.main(cmd + ['--work', str(tmp_path / 'none')])
    assert not (tmp_path / 'l.json').exists()


def test_the_per_mutant_limit_counts_cpu_not_waiting():
    """A mutant that loops is stopped by its CPU seconds (SIGXCPU), which a
    killing test waiting for a busy core does not spend."""
    spin = subprocess.run([sys.executable, '-c', 'while True: pass'], preexec_fn=lambda: mt._limit_cpu(1),
                          timeout=60)
    assert spin.returncode == -mt.signal.SIGXCPU
    wait = subprocess.run([sys.executable, '-c', 'import time; time.sleep(2)'],
                          preexec_fn=lambda: mt._limit_cpu(1), timeout=60)
    assert wait.returncode == 0


def _unjudged_survivors(tmp_path, n):
    """A session of state.py's mutants with ``n`` of them recorded as
    survivors no rule judges: (work, [(job, report row)])."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkResult, WorkerOutcome
    cfg = _config(tmp_path / 'one.toml', ['engine/migrate/state.py'])
    work = tmp_path / 'work'
    mt.init(work, config=cfg)
    with use_db(str(mt._db(work)), WorkDB.Mode.open) as wdb:
        items = {w.job_id: w.mutations[0] for w in wdb.pending_work_items}
    tree = mt._tree(work)
    picked = []
    for job, m in sorted(items.items()):
        diff = mt._mutated_diff(str(m.module_path), m, tree)
        row = {'file': str(m.module_path), 'line': m.start_pos[0], 'diff': diff, 'outcome': 'survived',
               'operator': m.operator_name, 'root': tree}
        if diff and mt.auto_kind(row)[0] is None:
            picked.append((job, row))
            if len(picked) == n:
                break
    with use_db(str(mt._db(work)), WorkDB.Mode.open) as wdb:
        for job, row in picked:
            wdb.set_result(job, WorkResult(output='ok', diff=row['diff'], test_outcome=TestOutcome.SURVIVED,
                                           worker_outcome=WorkerOutcome.NORMAL))
    return work, picked


def test_a_judged_survivor_is_carried_only_while_its_judgement_stands(tmp_path, monkeypatch):
    """A ledger once carried an 'equivalent' judgement whose entry had left
    docs/mutation-survivors.json (it was wrong: the mutant is killed), and
    the report showed it as an untested survivor; with the judgement
    withdrawn, the mutant is tested again."""
    from fuzz import mutation_ledger
    work, [(job, row)] = _unjudged_survivors(tmp_path, 1)
    cfg = tmp_path / 'one.toml'
    diff = row['diff']
    judgement = {(row['file'], mt._diff_key(diff)): ('equivalent', 'a reason')}
    monkeypatch.setattr(mt, 'classified', lambda: judgement)
    ledger = tmp_path / 'ledger.json'
    assert mt.export(work, ledger) == 1
    assert list(mutation_ledger.read(ledger)[1].values()) == [{'outcome': 'survived', 'kind': 'equivalent'}]
    key = {r['job']: (r['operator'], r['occurrence']) for r in mt.results(work)}[job]
    for name, judged, outcome in (('standing', judgement, 'survived'), ('withdrawn', {}, 'pending')):
        monkeypatch.setattr(mt, 'classified', lambda: judged)
        mt.init(tmp_path / name, config=cfg, carry=ledger)
        rows = {(r['operator'], r['occurrence']): r for r in mt.results(tmp_path / name)}
        assert rows[key]['outcome'] == outcome, name


def test_a_run_killed_while_a_mutant_is_applied_leaves_the_sessions_tree_unmutated(tmp_path):
    """The next run copies its workers' trees from the session's tree: a
    mutant left applied there would be in every later test."""
    import signal
    import time
    cfg = _config(tmp_path / 'one.toml', ['engine/migrate/state.py'])
    work = tmp_path / 'work'
    mt.init(work, config=cfg)
    original = (mt._tree(work) / 'engine/migrate/state.py').read_text()
    started = tmp_path / 'started'
    driver = f'''
import sys
from fuzz import mutation_testing as mt
mt.baseline = lambda tree: 1.0
mt.killing_tests = lambda tree, work: {{'engine/migrate/state.py': dict.fromkeys(range(1, 10000), {{'campaign:0'}})}}
mt.kill_command = lambda tree, tests=None: [sys.executable, '-c',
    'import os, pathlib, time; pathlib.Path(os.environ["STARTED"]).touch(); time.sleep(60)']
mt.run({str(work)!r}, 60, jobs=1, timeout=60)
'''
    proc = subprocess.Popen([sys.executable, '-c', driver], cwd=ROOT, start_new_session=True,
                            env=dict(os.environ, STARTED=str(started)))
    try:
        deadline = time.time() + 60
        while not started.exists() and time.time() < deadline:
            time.sleep(0.1)
        assert started.exists(), 'the run never started a mutant'
        mutated = (work / 'tree1' / 'engine/migrate/state.py').read_text()
        assert mutated != original             # the mutant is applied, in the worker's copy
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert (mt._tree(work) / 'engine/migrate/state.py').read_text() == original


def test_a_fresh_session_measures_what_the_killing_test_executes_again(tmp_path):
    """A session's coverage of the killing test was kept over ``init``, so
    a new session on new code skipped its mutants as not executed."""
    cfg = _config(tmp_path / 'one.toml', ['engine/migrate/state.py'])
    work = tmp_path / 'work'
    work.mkdir()
    (work / mt.KILLING_TESTS).write_text('{}')
    mt.init(work, config=cfg)
    assert not (work / mt.KILLING_TESTS).exists()


@pytest.mark.parametrize('signame', ['SIGINT', 'SIGTERM'])
def test_an_interrupted_run_stops_its_tests_and_keeps_what_finished(tmp_path, signame):
    """SIGINT or SIGTERM to ``run``: the killing test running now is
    stopped (its process group killed), its mutant stays pending (no
    result: it did not finish), the finished ones are kept, the file is
    put back, and the command exits 130 without a traceback."""
    import signal
    import time
    from cosmic_ray.work_db import WorkDB, use_db
    cfg = _config(tmp_path / 'one.toml', ['engine/migrate/state.py'])
    work = tmp_path / 'work'
    mt.init(work, config=cfg)
    with use_db(mt._session(work), WorkDB.Mode.open) as wdb:
        pending = len(list(wdb.pending_work_items))
    pids = tmp_path / 'pids'
    pids.mkdir()
    # the first mutant's test passes at once (a survivor), every later one sleeps
    driver = f'''
import sys
from fuzz import mutation_testing as mt
mt.baseline = lambda tree: 1.0
mt.killing_tests = lambda tree, work: {{'engine/migrate/state.py': dict.fromkeys(range(1, 10000), {{'campaign:0'}})}}
mt.kill_command = lambda tree, tests=None: [sys.executable, '-c',
    'import os, pathlib, time; d = pathlib.Path(os.environ["PIDS"]); n = len(list(d.iterdir())); '
    '(d / str(os.getpid())).touch(); time.sleep(0 if n == 0 else 120)']
sys.exit(mt.main(['run', '--work', {str(work)!r}, '--time', '100', '--timeout', '60']))
'''
    proc = subprocess.Popen([sys.executable, '-c', driver], cwd=ROOT, start_new_session=True,
                            env=dict(os.environ, PIDS=str(pids)), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while len(list(pids.iterdir())) < 2 and time.time() < deadline:
            time.sleep(0.1)
        assert len(list(pids.iterdir())) == 2, 'the run never started a second mutant'
        time.sleep(0.5)
        proc.send_signal(getattr(signal, signame))
        out, _ = proc.communicate(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out
    assert b'Traceback' not in out and b'interrupted: 1 results recorded' in out, out
    for pid in (int(p.name) for p in pids.iterdir()):
        status = f'/proc/{pid}/status'
        state = open(status).read().split('State:')[1].split()[0] if os.path.exists(status) else 'gone'
        assert state in ('gone', 'Z'), (pid, state)     # the sleeping test is gone (or a zombie of init's)
    with use_db(mt._session(work), WorkDB.Mode.open) as wdb:
        assert len(list(wdb.pending_work_items)) == pending - 1
    assert (work / 'tree1' / 'engine/migrate/state.py').read_text() == \
        (mt._tree(work) / 'engine/migrate/state.py').read_text(), out


def test_rerun_takes_survivors_judged_of_a_kind_only_when_asked(tmp_path, monkeypatch):
    """After an oracle for what a judgement took as unreached is added (the
    refusal oracle, for 'bad input'), ``rerun --judged 'bad input'`` tests
    those survivors again; without it only the unexplained ones are."""
    work, picked = _unjudged_survivors(tmp_path, 2)
    (plain, _), (judged, row) = picked
    monkeypatch.setattr(mt, 'classified', lambda: {(row['file'], mt._diff_key(row['diff'])):
                                                   ('bad input', 'a reason')})
    taken = []
    monkeypatch.setattr(mt, 'run', lambda work, budget, jobs=1, timeout=None, log=None, only=None:
                        taken.append(only))
    mt.rerun(work)
    mt.rerun(work)                              # the plain one is pending now, the judged one kept
    mt.rerun(work, judged=('bad input',), files=['engine/migrate/images.py'])
    mt.rerun(work, judged=('bad input',))
    assert taken == [{plain}, set(), set(), {judged}]
    # --only: these mutants of the ones asked for, no others (nothing judged:
    # the new session's survivors may be the ones judged above)
    monkeypatch.setattr(mt, 'classified', lambda: {})
    (tmp_path / 'only').mkdir()
    work, picked = _unjudged_survivors(tmp_path / 'only', 2)
    (first, _), (second, _) = picked
    taken.clear()
    mt.main(['rerun', '--work', str(work), '--only', second])
    assert taken == [{second}]


def test_judge_records_a_survivors_change_and_the_report_then_counts_it(tmp_path, monkeypatch):
    """``judge FILE:LINE`` writes the survivor's changed lines with the kind
    and reason to the survivors list, after which the report gives it that
    verdict; a place with no unexplained survivor, an unknown kind and an
    empty reason are refused and leave the list as it was."""
    work, [(job, row)] = _unjudged_survivors(tmp_path, 1)
    listed = tmp_path / 'survivors.json'
    listed.write_text('[]\n')
    monkeypatch.setattr(mt, 'SURVIVORS', listed)
    at = f'{row["file"]}:{row["line"]}'
    mt.main(['judge', at, '--kind', 'equivalent', '--reason', ' a hand-checked reason ', '--work', str(work)])
    import json
    entries = json.loads(listed.read_text())
    assert entries == [{'file': row['file'], 'change': mt._diff_key(row['diff']), 'kind': 'equivalent',
                        'reason': 'a hand-checked reason'}]
    rows = mt.results(work)
    mt.summarise(rows, mt.classified())
    assert [r['verdict'] for r in rows if r['job'] == job] == ['equivalent']
    before = listed.read_text()
    for args, message in (([at, '--kind', 'equivalent', '--reason', 'again'], 'no unexplained survivor'),
                          ([f'{row["file"]}:1', '--kind', 'bad input', '--reason', 'x'], 'no unexplained'),
                          ([row['file'], '--kind', 'bad input', '--reason', 'x'], 'expected FILE:LINE'),
                          ([at, '--kind', 'equivalent', '--reason', '  '], 'reason is empty')):
        with pytest.raises(SystemExit, match=message):
            mt.main(['judge'] + args + ['--work', str(work)])
    with pytest.raises(SystemExit):
        mt.main(['judge', at, '--kind', 'harmless', '--reason', 'x', '--work', str(work)])
    assert listed.read_text() == before
    assert not list(tmp_path.glob('*.tmp')) and not list(tmp_path.glob('.*.tmp'))


def test_the_default_work_folder_is_under_the_projects_cache_root(tmp_path):
    """``--work``'s default follows ``$WASM_MIGRATE_CACHE`` as every other
    cache of the project does (forks.build.cache_root), with or without it."""
    import subprocess
    import sys
    code = ('from fuzz import mutation_testing as m; from forks.build import cache_root; '
            'print(m.DEFAULT_WORK); print(cache_root() / "mutation")')
    for env in ({'WASM_MIGRATE_CACHE': str(tmp_path)}, {}):
        full = {k: v for k, v in os.environ.items() if k != 'WASM_MIGRATE_CACHE'}
        out = subprocess.run([sys.executable, '-c', code], env={**full, **env}, capture_output=True,
                             text=True, check=True).stdout.split()
        assert out[0] == out[1], out
        assert out[0] == (str(tmp_path / 'mutation') if env else out[0]), out
