"""``python -m fuzz.mutation_testing``: mutation testing of the migration
path with cosmic-ray, the migration campaign and the migrated spec suite
being the test that must kill every mutant (issue 12, part 4).

The deliberate faults of ``engine/faults.py`` are bugs somebody wrote down;
a mutation tool writes thousands nobody thought of.  Cosmic-ray makes the
mutants (its operators over the modules and functions of ``SCOPE``), this
module runs the *killing test* against each: a fixed, seeded slice of the
migration campaign (``fuzz.gen.from_seed`` modules checked by
``fuzz.oracle.check_module``, every route of ``oracle.plans``: direct hops,
the neutral route, multi-hop chains, the independent image reader) and a few
migrated spec files (``conformance --migrate``), run in one process and
stopped at the first divergence.

    python -m fuzz.mutation_testing kill        # the killing test (exit 1 = mutant killed)
    python -m fuzz.mutation_testing init        # a cosmic-ray session of the mutants in SCOPE
    python -m fuzz.mutation_testing init --carry docs/mutation-ledger.json   # ... reusing recorded results
    python -m fuzz.mutation_testing export      # the session's results -> docs/mutation-ledger.json
    python -m fuzz.mutation_testing extend      # ... plus the files SCOPE gained since
    python -m fuzz.mutation_testing run --time S [--jobs N]
    python -m fuzz.mutation_testing report [--json OUT]
    python -m fuzz.mutation_testing campaign --sample N --time 120
    python -m fuzz.mutation_testing coverage --time S

All run state (the session database, a private copy of the tree in which
mutants are applied, coverage data) lives in ``--work`` (default
``$WASM_MIGRATE_CACHE/mutation``, ``~/.cache/wasm-migrate/mutation``
unless set), never in the checkout: cosmic-ray
mutates files in place.  ``fuzz/cosmic-ray.toml`` is the committed
configuration (``cosmic-ray init``/``exec`` work with it too, from a copy of
the tree).  A session is resumable: ``run`` only takes pending mutants, in
a seeded random order, so a run cut short by ``--time`` is a uniform sample
of the scope.

A mutant on a statement the killing test never executes cannot be killed
by it; ``run`` records such a mutant as survived ("not executed by the
killing test") without running the test (the coverage of the killing test
is measured once per session).  See docs/mutation-testing.md.
"""

import argparse
import ast
import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from spectests.manifest import testsuite_root

from . import mutation_ledger

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / 'fuzz' / 'cosmic-ray.toml'
LEDGER = ROOT / 'docs' / 'mutation-ledger.json'
SURVIVORS = ROOT / 'docs' / 'mutation-survivors.json'
# under the project's one cache root, as forks.build.cache_root (not imported:
# the killing test's tree copies hold no forks/)
DEFAULT_WORK = Path(os.environ.get('WASM_MIGRATE_CACHE') or Path.home() / '.cache' / 'wasm-migrate') / 'mutation'

# ------------------------------------------------------------ scope

# file -> what of it is mutated: None (the whole module) or a list of
# entries: 'qual.name' (a whole function) or ('qual.name', regex) (the lines
# of that function matching the regex: the label and save/restore lines of
# the run loops, not every instruction's implementation)
SCOPE = {
    'engine/migrate/state.py': None,
    'engine/exec/cells.py': None,
    'engine/migrate/images.py': None,
    'engine/migrate/translate.py': None,
    'engine/migrate/checkpoint.py': None,
    'engine/migrate/neutral.py': None,
    'engine/migrate/memories.py': None,      # Wasm 3.0: memories after the first, 64-bit ones
    'engine/migrate/exnstate.py': None,      # Wasm 3.0: handlers and caught exceptions
    'engine/migrate/gcheap.py': None,        # Wasm 3.0: the GC heap (gc.img, neutral heap)
    'engine/migrate/links.py': None,         # functions of other instances (link.img)
    'engine/exec/wamr.py': [
        'Executor.start', 'Executor.unwind', 'compile_func.branch',
        ('compile_func', r'label|frame_sp|_ncells|ctrl\.|end_of|else_of'),
        ('Executor._run', r'\blabels\b|\blab\b|lpush|npop|func_label|frame_sp|cell_num'),
    ],
    'engine/exec/wasmedge.py': [
        'Executor.start', 'Executor.unwind', 'compile_func.br',
        ('compile_func', r"'if'|'else'|'end'|'block'|'loop'|br_table|else_of|end_of|else_if"),
        # vpos where a frame is made or left, not the locals' accesses stack[vpos + x]
        ('Executor._run', r'\bkeep\b|\blh\b|(?<!\[)\bvpos\b|from_pc|fbase|target'),
    ],
}


def _functions(tree):
    """qualified name -> (first line, last line) of every function."""
    out = {}

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if not isinstance(child, ast.ClassDef):
                    first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                    out[name] = (first, child.end_lineno)
                walk(child, name + '.')
            else:
                walk(child, prefix)
    walk(tree, '')
    return out


def scope_lines(root=ROOT):
    """file -> set of line numbers in scope (None: the whole file)."""
    out = {}
    for rel, entries in SCOPE.items():
        if entries is None:
            out[rel] = None
            continue
        src = (root / rel).read_text()
        lines = src.splitlines()
        funcs = _functions(ast.parse(src))
        chosen = set()
        for e in entries:
            name, pattern = (e, None) if isinstance(e, str) else e
            if name not in funcs:
                raise SystemExit(f'error: {rel}: no function {name!r} (SCOPE in {__file__} is stale)')
            lo, hi = funcs[name]
            rx = re.compile(pattern) if pattern else None
            # a nested function listed on its own is not part of its parent's pattern lines
            picked = {n for n in range(lo, hi + 1) if rx is None or rx.search(lines[n - 1])}
            if rx is not None and len(picked) < 3:     # the code moved: the scope would shrink unseen
                raise SystemExit(f'error: {rel}: {name!r} has {len(picked)} lines matching '
                                 f'{pattern!r} (SCOPE in {__file__} is stale)')
            chosen |= picked
        out[rel] = chosen
    return out


def in_scope(rel, start_line, end_line, lines):
    chosen = lines.get(rel, ())
    if chosen is None:
        return True
    return any(n in chosen for n in range(start_line, end_line + 1))


# ------------------------------------------------------------ the killing test

# the campaign part of the killing test: the first KILL_UNITS units of the
# campaign ``python -m fuzz.migrate --seed 0 --jobs 2 --generator gen,smith``
# (fuzz.migrate.campaign_units: the same modules, arguments and checkpoint
# plans), so that such a campaign that gets past unit KILL_UNITS - 1 catches
# every mutant this part kills (``campaign`` checks it); then spec files
# chosen for coverage of the migration path at a few seconds per run
KILL_CAMPAIGN = {'seed': 0, 'jobs': 2, 'generators': ('gen', 'smith')}
KILL_UNITS = 72
KILL_SPEC = ('labels.wast', 'br_table.wast', 'block.wast', 'loop.wast', 'if.wast', 'br_if.wast',
             'local_tee.wast', 'global.wast', 'bulk.wast', 'return.wast', 'select.wast',
             'ref_func.wast', 'table_grow.wast',
             # Wasm 3.0 state (validated by the 3.0 rules): handlers and
             # exnrefs, typed references, several and 64-bit memories and
             # tables, unset non-nullable locals; each under a second of CPU
             'wasm-3.0/try_table.wast', 'wasm-3.0/throw.wast', 'wasm-3.0/throw_ref.wast',
             'wasm-3.0/unwind.wast', 'wasm-3.0/call_ref.wast', 'wasm-3.0/br_on_null.wast',
             'wasm-3.0/br_on_non_null.wast', 'wasm-3.0/ref_as_non_null.wast',
             'wasm-3.0/local_init.wast', 'wasm-3.0/memory-multi.wast', 'wasm-3.0/memory_copy1.wast',
             'wasm-3.0/address64.wast', 'wasm-3.0/table_grow64.wast',
             'wasm-3.0/legacy/try_catch.wast', 'wasm-3.0/legacy/rethrow.wast',
             'wasm-3.0/legacy/try_delegate.wast', 'wasm-3.0/legacy/throw.wast')
# the GC part: the hand-written GC programs of fuzz/gcseeds.py (a heap with
# cycles and sharing, a passive GC element segment, an exception carrying a
# struct and an i32), each run with its rounds and checkpointed by
# oracle.check_module at fuzz.robust's GC stops and at random points along
# every route.  Added when the campaign's GC modules had no tag with a GC
# parameter and no GC element segment; they have both now (fuzz/gen3.py),
# and the GC part stays as a second, hand-written source of that state
KILL_GC = ('list', 'stack', 'exn')
MEMORY_LIMIT = 2 << 30          # a mutant that allocates without bound dies of MemoryError, not the machine


def spec_dir(suite='wasm-2.0'):
    return os.path.join(testsuite_root(), suite)


def spec_file(name):
    """(suite, path) of a KILL_SPEC entry: ``suite/file`` or a 2.0 file's name."""
    suite, _, file = name.partition('/') if name.startswith('wasm-') else ('wasm-2.0', '', name)
    return suite, os.path.join(spec_dir(suite), file)


def campaign_command(units=None, **extra):
    """The ``fuzz.migrate`` command whose first units the killing test runs."""
    c = KILL_CAMPAIGN
    cmd = ['-m', 'fuzz.migrate', '--seed', str(c['seed']), '--jobs', str(c['jobs']),
           '--generator', ','.join(c['generators'])]
    if units is not None:
        cmd += ['--runs', str(units)]
    for k, v in extra.items():
        cmd += [f'--{k.replace("_", "-")}'] + ([] if v is True else [str(v)])
    return cmd


def kill(units=KILL_UNITS, spec=KILL_SPEC, out=sys.stdout, keep_going=False, gc=KILL_GC,
         contexts=False):
    """The killing test: 0 when every check agrees, 1 at the first
    divergence (printed), with ``keep_going`` the number of failures.
    ``units``: how many units of the campaign (an int, or a set of them);
    ``gc``: the GC programs of fuzz/gcseeds.py checked (by name);
    ``contexts``: each part runs in its own coverage.py context (``test_of``
    names), for ``killing_tests``."""
    import traceback
    failures = 0
    enter = _switch_context if contexts else (lambda label: None)

    def fail(what):
        nonlocal failures
        failures += 1
        print(f'DIVERGENCE {what}', file=out, flush=True)
        return not keep_going
    try:
        from fuzz import oracle
        from fuzz.migrate import bytes_module, campaign_units, check_bytes, unit_data
        c = KILL_CAMPAIGN
        wanted = range(units) if isinstance(units, int) else units
        for k, generator, rng in campaign_units(c['seed'], c['jobs'], c['generators'],
                                                max(wanted, default=-1) + 1):
            data = unit_data(generator, rng)
            if k not in wanted:
                continue
            enter(test_of('campaign', k))
            gm = bytes_module(generator, data)
            if gm is None:
                continue
            _, failure = check_bytes(gm, data, False, oracle.TIER)
            if failure is not None and fail(f'campaign unit {k} ({generator}): '
                                            f'{failure.entry or gm.entry}{failure.args} '
                                            f'hops {oracle.describe(failure.hops)}: '
                                            + '; '.join(failure.mismatch)):
                return 1
        failed = _gc_part(gc, fail, enter)
        if failed is not None:
            return failed
        with _neutral_checked():
            failed = _spec_part(spec, fail, enter)
        if failed is not None:
            return failed
    except Exception as e:           # a mutant that breaks the harness itself is killed too
        fail(f'harness raised {type(e).__name__}: {e}\n{traceback.format_exc()}')
        return 1
    return min(failures, 1) if not keep_going else failures


def _gc_part(names, fail, enter):
    """The GC programs of fuzz/gcseeds.py through ``oracle.check_module``
    (no wasmtime, as in the campaign part): 1 (stop: killed) or None."""
    from fuzz import gcseeds, oracle
    from fuzz.robust import GC_ROUNDS, GC_STOPS
    for wasm, entry, name in gcseeds.gc_modules():
        if name not in names:
            continue
        enter(test_of('gc', name))
        _, failure = oracle.check_module(wasm, entry, [gcseeds.host_args(entry, GC_ROUNDS)],
                                         random.Random(0), wasmtime=False, stops=GC_STOPS)
        if failure is not None and fail(f'gc program {name}: {failure.entry or entry}{failure.args} '
                                        f'hops {oracle.describe(failure.hops)}: '
                                        + '; '.join(failure.mismatch)):
            return 1
    return None


def _spec_part(spec, fail, enter):
    """The spec files migrated: 1 (stop: killed) or 2 (a file missing) or
    None to go on."""
    from conformance.cli import run_file
    from conformance.migration import other_runtime
    from fuzz import oracle
    for name in spec:
        enter(test_of('spec', name))
        suite, path = spec_file(name)
        if not os.path.exists(path):
            print(f'error: spec file {path} is missing (set WASM_TESTSUITE)', file=sys.stderr)
            return 2
        migrate = {rt: other_runtime(rt) for rt in oracle.RUNTIMES}
        for r in run_file(path, oracle.RUNTIMES, 60, None, migrate, suite=suite):
            bad = ([r['error']] if r['error'] else []) + [str(f) for f in r['failures']]
            if bad and fail(f'spec {name} ({r["runtime"]}): {bad[0]}'[:2000]):
                return 1
    return None


@contextlib.contextmanager
def _neutral_checked():
    """The spec part's route through neutral.json (``conformance.migration.
    through_neutral``) with the document also read by the independent
    checker (``fuzz.neutralcheck``), as the campaign's neutral hops are:
    a writer and reader that agree on a wrong handler list or version
    pass each other, not the checker."""
    from conformance import migration
    from engine.migrate import neutral, translate as tr
    from fuzz import neutralcheck
    real = migration.through_neutral

    def checked(images, inst, dst):
        snap = tr.snapshot_from_images(images, inst.module, inst.info)
        doc = neutral.document_from_snapshot(snap, inst.module, inst.info, images.module_sha256)
        neutralcheck.check_doc(neutral.loads(neutral.dumps(doc)), inst.module)
        return real(images, inst, dst)
    migration.through_neutral = checked
    try:
        yield
    finally:
        migration.through_neutral = real


def test_of(part, name):
    """The label of one test of the killing test: a campaign unit, a GC
    program or a spec file (``part:name``)."""
    return f'{part}:{name}'


def _switch_context(label):
    """Record what runs from here on under coverage.py context ``label``
    (when the killing test runs under coverage)."""
    import coverage
    cov = coverage.Coverage.current()
    if cov is not None:
        cov.switch_context(label)


def kill_selected(labels, out=sys.stdout, contexts=False):
    """The killing test restricted to the tests ``labels`` names (in the
    killing test's order), and a line saying which ran when it passes."""
    picked = {}
    for label in labels:
        part, _, name = label.partition(':')
        if part not in ('campaign', 'gc', 'spec') or not name:
            raise SystemExit(f'error: --tests: {label!r} is not campaign:K, gc:NAME or spec:FILE')
        picked.setdefault(part, set()).add(name)
    units = {int(k) for k in picked.get('campaign', ()) if k.isdigit()}
    spec = [f for f in KILL_SPEC if f in picked.get('spec', ())]
    gc = [g for g in KILL_GC if g in picked.get('gc', ())]
    code = kill(units=units, spec=spec, gc=gc, out=out, contexts=contexts)
    if code == 0:
        print(f'passed the tests executing the mutated statement: {len(units)} of {KILL_UNITS} '
              f'campaign units, {len(gc)} of {len(KILL_GC)} GC programs, {len(spec)} of '
              f'{len(KILL_SPEC)} spec files', file=out, flush=True)
    return code


def _limit_memory():
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (ImportError, ValueError, OSError):
        pass


# ------------------------------------------------------------ sessions

def _tree(work):
    return Path(work) / 'tree'


def _db(work):
    return Path(work) / 'session.sqlite'


def _session(work):
    """The session database of ``work``; a clear error when ``init`` never
    made one there."""
    db = _db(work)
    if not db.exists():
        raise SystemExit(f'error: no session in {work}; run "python -m fuzz.mutation_testing init" first')
    return str(db)


TREE_PARTS = ('engine', 'fuzz', 'conformance', 'spectests')


def copy_tree(work, name='tree'):
    """A private copy of the checkout's code in which mutants are applied."""
    dst = Path(work) / name
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for part in TREE_PARTS:
        shutil.copytree(ROOT / part, dst / part, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
    return dst


def _env(tree):
    env = dict(os.environ)
    env['PYTHONPATH'] = str(tree)
    # the tree lives outside the checkout, so its ../shared is not the suite's
    env.setdefault('WASM_TESTSUITE', testsuite_root())
    env.pop('WASM_MIGRATE_FAULT', None)
    env['PYTHONDONTWRITEBYTECODE'] = '1'
    return env


def kill_command(tree, tests=None):
    """The killing test as a command; ``tests``: only these (labels)."""
    return [sys.executable, '-m', 'fuzz.mutation_testing', 'kill'] + _tests_option(tests)


def _tests_option(tests):
    return ['--tests', ','.join(sorted(tests))] if tests else []


def _commit():
    """The checkout's commit, ``+`` when its tracked files differ from it."""
    try:
        rev = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(['git', 'diff', '--quiet', 'HEAD', '--'] + list(TREE_PARTS), cwd=ROOT).returncode
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'
    return rev + ('+' if dirty else '')


def session_commit(work):
    path = Path(work) / 'session.json'
    try:
        return json.loads(path.read_text())['commit']
    except (OSError, ValueError, KeyError, TypeError):
        return 'unknown'


def init(work, config=CONFIG, carry=None):
    """A fresh session: the tree copied, cosmic-ray's work items for the
    scope's files, those outside the scope marked skipped; with ``carry``
    (a ledger file) the mutants of functions unchanged since the ledger
    was written get its results (fuzz/mutation_ledger.py)."""
    from cosmic_ray.config import load_config
    from cosmic_ray.commands.init import init as cr_init
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkResult, WorkerOutcome
    cfg = load_config(str(config))
    ledger = mutation_ledger.read(carry) if carry else None
    tree = copy_tree(work)
    # the lines the killing test executes are the new tree's to measure: a
    # cache left by an earlier session once marked the new code's mutants
    # "not executed" without testing them
    (Path(work) / KILLING_TESTS).unlink(missing_ok=True)
    lines = scope_lines(tree)
    db = _db(work)
    if db.exists():
        db.unlink()
    (Path(work) / 'session.json').write_text(json.dumps({'commit': _commit()}))
    cwd = os.getcwd()
    os.chdir(tree)              # work items name files relative to the tree
    try:
        with use_db(str(db), WorkDB.Mode.create) as wdb:
            cr_init([Path(p) for p in cfg['module-path']], wdb, cfg.operators_config)
            skip = [item.job_id for item in wdb.pending_work_items
                    if not any(in_scope(str(m.module_path), m.start_pos[0], m.end_pos[0], lines)
                               for m in item.mutations)]
            wdb.set_multiple_results(skip, WorkResult(output='outside the migration path (SCOPE)',
                                                      worker_outcome=WorkerOutcome.SKIPPED))
            total = wdb.num_work_items
            carried = _carry(wdb, tree, ledger) if ledger else 0
    finally:
        os.chdir(cwd)
    print(f'session {db}: {total} mutants, {total - len(skip)} in scope'
          + (f', {carried} results carried from {carry}' if ledger else ''), flush=True)
    return db


def _carry(wdb, tree, ledger):
    """Give the pending mutants whose ledger key is recorded its result; a
    judged survivor only while its judgement (docs/mutation-survivors.json
    or a rule) still stands."""
    from cosmic_ray.work_item import TestOutcome, WorkResult, WorkerOutcome
    commit, entries = ledger
    pending = list(wdb.pending_work_items)
    # keyed over every work item, as ``export`` keys them: a mutant's rank
    # counts the mutants of its function outside the scope too, so ranks
    # taken over the pending ones alone named another mutant in a function
    # only partly in the scope (the executors' run loops)
    keys = mutation_ledger.session_keys(tree, list(wdb.work_items))
    judged = classified()
    n = 0
    for item in pending:
        e = entries.get(keys.get(item.job_id))
        if e is None:
            continue
        m = item.mutations[0]
        diff = _mutated_diff(str(m.module_path), m, tree) if e['outcome'] == 'survived' else None
        if diff is not None and (str(m.module_path), _diff_key(diff)) not in judged and auto_kind(
                {'file': str(m.module_path), 'line': m.start_pos[0], 'diff': diff, 'outcome': 'survived',
                 'operator': m.operator_name, 'root': tree})[0] is None:
            continue        # its judgement was withdrawn since: tested again
        wdb.set_result(item.job_id, WorkResult(
            output=mutation_ledger.output_of(commit, e), diff=diff, worker_outcome=WorkerOutcome.NORMAL,
            test_outcome=TestOutcome.SURVIVED if e['outcome'] == 'survived' else TestOutcome.KILLED))
        n += 1
    return n


def export(work, path):
    """Write the session's carryable results to the ledger ``path``
    (what ``init --carry`` reads); returns how many."""
    from cosmic_ray.work_db import WorkDB, use_db
    rows = results(work)
    summarise(rows, classified())
    with use_db(_session(work), WorkDB.Mode.open) as wdb:
        keys = mutation_ledger.session_keys(_tree(work), list(wdb.work_items))
    out = {}
    for r in rows:
        e = mutation_ledger.entry(r)
        if e is not None:
            out[keys[r['job']]] = e
    mutation_ledger.write(path, session_commit(work), out)
    return len(out)


def extend(work, config=CONFIG):
    """Work items for the files of the configuration's module-path that the
    session has none of (the scope grew after ``init``), the results so far
    kept; those outside the scope marked skipped as by ``init``.  The new
    files must be the ones in the session's tree, or a later fresh copy
    (``rerun``) would apply their mutants to other code."""
    import importlib
    from cosmic_ray.config import load_config
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkResult, WorkerOutcome
    all_work_items = importlib.import_module('cosmic_ray.commands.init')._all_work_items
    cfg = load_config(str(config))
    tree = _tree(work)
    _session(work)
    lines = scope_lines(tree)
    cwd = os.getcwd()
    with use_db(_session(work), WorkDB.Mode.open) as wdb:
        have = {str(m.module_path) for item in wdb.work_items for m in item.mutations}
        new = [p for p in cfg['module-path'] if p not in have]
        for rel in new:
            if (tree / rel).read_bytes() != (ROOT / rel).read_bytes():
                raise SystemExit(f'error: {rel} changed since the session began (the tree in {tree} '
                                 f'holds another version); start a fresh session with "init"')
        os.chdir(tree)          # work items name files relative to the tree
        try:
            items = list(all_work_items([Path(p) for p in new], cfg.operators_config))
        finally:
            os.chdir(cwd)
        wdb.add_work_items(items)
        skip = [item.job_id for item in items
                if not any(in_scope(str(m.module_path), m.start_pos[0], m.end_pos[0], lines)
                           for m in item.mutations)]
        wdb.set_multiple_results(skip, WorkResult(output='outside the migration path (SCOPE)',
                                                  worker_outcome=WorkerOutcome.SKIPPED))
    print(f'session {_db(work)}: {len(items)} mutants added from {", ".join(new) or "no new file"}, '
          f'{len(items) - len(skip)} in scope', flush=True)
    return len(items) - len(skip)


def baseline(tree):
    """CPU seconds the killing test takes on the unmutated tree (it must
    pass): CPU, not wall time, so a loaded machine moves neither the
    baseline nor the per-mutant limit derived from it."""
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(kill_command(tree), cwd=tree, env=_env(tree), capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    took = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if r.returncode != 0:
        raise SystemExit(f'error: the killing test fails on the unmutated tree:\n{r.stdout}{r.stderr}')
    return took


KILLING_TESTS = 'killing-tests.json'


def killing_tests(tree, work, tests=None):
    """file -> line -> labels of the killing test's tests (``test_of``)
    that execute the statement there, '' for what runs before the first
    (imports); coverage.py with a context per test, measured once per
    session (``tests``: of these tests only)."""
    cache = Path(work) / KILLING_TESTS
    if cache.exists():
        return {rel: {int(n): set(v) for n, v in lines.items()}
                for rel, lines in json.loads(cache.read_text()).items()}
    data = Path(work) / '.coverage.kill'
    data.unlink(missing_ok=True)
    cmd = [sys.executable, '-m', 'coverage', 'run', f'--data-file={data}', '--source=engine',
           '-m', 'fuzz.mutation_testing', 'kill', '--contexts'] + _tests_option(tests)
    r = subprocess.run(cmd, cwd=tree, env=_env(tree), capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f'error: the killing test under coverage failed:\n{r.stdout}{r.stderr}')
    import coverage
    cov = coverage.Coverage(data_file=str(data))
    cov.load()
    out = {rel: {str(n): sorted(v) for n, v in
                 sorted(cov.get_data().contexts_by_lineno(str(tree / rel)).items())}
           for rel in SCOPE}
    cache.write_text(json.dumps(out))
    return {rel: {int(n): set(v) for n, v in lines.items()} for rel, lines in out.items()}


def _statement_of(tree, rel, cache={}):
    """line -> first line of the innermost statement containing it."""
    key = (str(tree), rel)
    if key not in cache:
        src = (Path(tree) / rel).read_text()
        owner = {}
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.stmt):
                # a compound statement owns only its header lines; its body's
                # statements claim theirs (ast.walk visits parents first)
                end = node.end_lineno
                body = getattr(node, 'body', None)
                if body and isinstance(body, list) and isinstance(body[0], ast.stmt):
                    end = body[0].lineno - 1
                for n in range(node.lineno, max(node.lineno, end) + 1):
                    owner[n] = node.lineno
        cache[key] = owner
    return cache[key]


WHOLE = None    # the whole killing test


def tests_for(tree, ran, mutation):
    """The labels of the tests that execute the mutated statement (empty:
    none does, the mutant cannot be killed), or WHOLE when it runs outside
    any one test: an import, or a statement outside a function (a
    constant, a default, a ``def`` line), whose value every later test
    sees without executing it.  A test that does not execute the mutated
    statement runs as on the unmutated code: the killing test's tests are
    deterministic and each builds its own modules and stores."""
    rel = str(mutation.module_path)
    owner = _statement_of(tree, rel)
    lines = ran.get(rel, {})
    labels = set()
    for n in range(mutation.start_pos[0], mutation.end_pos[0] + 1):
        labels |= lines.get(owner.get(n, n), set())
    if labels and ('' in labels or not _in_body(tree, rel, owner.get(mutation.start_pos[0]))):
        return WHOLE
    return labels


def _in_body(tree, rel, line, cache={}):
    """Whether ``line`` is in the body of a function of ``rel`` (not its
    ``def`` line, decorators or defaults, which run where it is defined)."""
    key = (str(tree), rel)
    if key not in cache:
        cache[key] = [(f.body[0].lineno, f.end_lineno)
                      for f in ast.walk(ast.parse((Path(tree) / rel).read_text()))
                      if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return line is not None and any(lo <= line <= hi for lo, hi in cache[key])


# the per-mutant limit is CPU seconds (RLIMIT_CPU of the killing test's
# process), so a run beside other work (nice 19, helpers, a CI run) counts
# no mutant as a timeout because it waited for a core; a wall-clock guard
# of this many times the limit catches a test blocked without using CPU
WALL_FACTOR = 10


def _limit_cpu(seconds):
    """In the child before exec: SIGXCPU after ``seconds`` of CPU, SIGKILL
    5 s later."""
    import resource
    soft = max(1, math.ceil(seconds))
    resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 5))


# the killing tests running now (``run`` stops them when interrupted)
_RUNNING = set()


def test_mutant(tree, mutation, timeout, tests=WHOLE):
    """Apply one cosmic-ray mutation to ``tree`` (a copy of the code), run
    the killing test there (``tests``: only these of it), put the file
    back; a cosmic-ray WorkResult."""
    import difflib
    import cosmic_ray.plugins
    from cosmic_ray.mutating import use_mutation
    from cosmic_ray.work_item import TestOutcome, WorkResult, WorkerOutcome
    op = cosmic_ray.plugins.get_operator(mutation.operator_name)(**(mutation.operator_args or {}))
    path = Path(tree) / mutation.module_path
    with use_mutation(path, op, mutation.occurrence) as (original, mutated):
        if mutated is None:
            return WorkResult(worker_outcome=WorkerOutcome.NO_TEST)
        diff = '\n'.join(difflib.unified_diff(original.splitlines(), mutated.splitlines(),
                                               str(mutation.module_path), str(mutation.module_path),
                                               n=0, lineterm=''))
        proc = subprocess.Popen(kill_command(tree, tests), cwd=tree, env=_env(tree), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=lambda: _limit_cpu(timeout))
        _RUNNING.add(proc)
        try:
            out, _ = proc.communicate(timeout=WALL_FACTOR * timeout + 600)
        except subprocess.TimeoutExpired:       # blocked without using CPU
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            out = None
        finally:
            _RUNNING.discard(proc)
        if out is None or proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            return WorkResult(output='timeout', diff=diff, test_outcome=TestOutcome.KILLED,
                              worker_outcome=WorkerOutcome.NORMAL)
    outcome = TestOutcome.SURVIVED if proc.returncode == 0 else TestOutcome.KILLED
    return WorkResult(output=out.decode('utf-8', 'replace')[-4000:], diff=diff, test_outcome=outcome,
                      worker_outcome=WorkerOutcome.NORMAL)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f'signal {signum}')


def run(work, budget, seed=0, jobs=1, timeout=None, log=sys.stdout, only=None):
    """Test pending mutants (seeded random order) until ``budget`` seconds
    have passed, ``jobs`` at a time (each in its own fresh copy of the
    session's tree); results go to the session database as they come."""
    import threading
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkResult, WorkerOutcome
    tree = _tree(work)
    _session(work)
    # mutants are applied in fresh copies only: a run killed while a mutant
    # was applied leaves that copy mutated, never the session's own tree
    trees = []
    for k in range(1, jobs + 1):
        t = Path(work) / f'tree{k}'
        if t.exists():
            shutil.rmtree(t)
        shutil.copytree(tree, t)
        trees.append(t)
    base = baseline(tree)
    timeout = timeout or max(3 * base, base + 10)
    print(f'killing test: {base:.1f} CPU s unmutated; per-mutant limit {timeout:.0f} CPU s', file=log, flush=True)
    ran = killing_tests(tree, work)
    deadline = time.time() + budget
    lock = threading.Lock()
    stop = threading.Event()
    counts = {'done': 0}
    if threading.current_thread() is threading.main_thread():
        # also when started in the background, where SIGINT is ignored
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)
    with use_db(_session(work), WorkDB.Mode.open) as wdb:
        pending = sorted((w for w in wdb.pending_work_items if only is None or w.job_id in only),
                         key=lambda w: w.job_id)
        random.Random(seed).shuffle(pending)
        print(f'{len(pending)} mutants pending', file=log, flush=True)
        queue = list(reversed(pending))

        def record(item, result, took):
            with lock:
                wdb.set_result(item.job_id, result)
                counts['done'] += 1
                if took is not None:
                    m = item.mutations[0]
                    outcome = (result.test_outcome or result.worker_outcome).value
                    print(f'{counts["done"]:5d} {outcome:<11} {took:5.1f}s {m.module_path}:{m.start_pos[0]} '
                          f'{m.operator_name.split("/")[-1]}', file=log, flush=True)

        def worker(t):
            while time.time() < deadline and not stop.is_set():
                with lock:
                    if not queue:
                        return
                    item = queue.pop()
                m = item.mutations[0]
                tests = tests_for(tree, ran, m)
                if tests is not WHOLE and not tests:
                    record(item, WorkResult(output='not executed by the killing test',
                                            diff=_mutated_diff(str(m.module_path), m, tree),
                                            test_outcome=TestOutcome.SURVIVED,
                                            worker_outcome=WorkerOutcome.NORMAL), None)
                    continue
                start = time.time()
                result = test_mutant(t, m, timeout, tests)
                if stop.is_set():       # its test was stopped, not finished: stays pending
                    return
                record(item, result, time.time() - start)
        done = [threading.Event() for _ in trees]

        def lane(t, finished):
            try:
                worker(t)
            finally:
                finished.set()
        threads = [threading.Thread(target=lane, args=(t, e)) for t, e in zip(trees, done)]
        for th in threads:
            th.start()
        try:
            for th in threads:
                th.join()
        except KeyboardInterrupt:
            # SIGINT or SIGTERM: no new mutant, the running tests stopped
            # (their mutants stay pending, their files put back), every
            # finished result kept.  Each lane's own event says when it is
            # done: a join the signal interrupted may return at once later
            stop.set()
            for proc in list(_RUNNING):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            for finished in done:
                finished.wait()
            print(f'interrupted: {counts["done"]} results recorded; the mutants under test stay pending',
                  file=log, flush=True)
            raise
    return counts['done']


def rerun(work, which=('survived', 'not executed'), jobs=1, timeout=None, log=sys.stdout,
          sample=None, seed=0, carried=False, judged=(), files=None, only=None):
    """Test again, with the checkout's current killing test, the mutants of
    the session whose outcome is in ``which`` (after the generators or
    oracles were improved; ``sample``: a seeded sample of them): their
    results are reset and ``run`` takes them (a fresh tree copy, fresh
    coverage of the killing test).  Judged survivors (by hand or by rule)
    are left as they are, unless their kind is in ``judged`` (an oracle
    now checks what the judgement took as unreached: those that survive
    again keep it).  ``files``: only mutants of these files; ``only``:
    only these job ids."""
    from cosmic_ray.work_db import WorkDB, use_db
    rows = results(work)
    summarise(rows, classified())
    again = [r['job'] for r in rows if r['outcome'] in which
             and r['verdict'] in ('survived', 'killed') + tuple(judged)   # not the other judged ones
             and (r['carried'] or not carried) and (not files or r['file'] in files)
             and (only is None or r['job'] in only)]
    if sample is not None:
        random.Random(seed).shuffle(again)
        again = again[:sample]
    with use_db(_session(work), WorkDB.Mode.open) as wdb:
        from cosmic_ray.work_db import WorkResultStorage
        with wdb._session_maker.begin() as session:      # cosmic-ray has no "forget a result"
            session.query(WorkResultStorage).filter(WorkResultStorage.job_id.in_(again)).delete(
                synchronize_session=False)
    copy_tree(work)
    (Path(work) / KILLING_TESTS).unlink(missing_ok=True)
    print(f'{len(again)} mutants to test again', file=log, flush=True)
    return run(work, float('inf'), jobs=jobs, timeout=timeout, log=log, only=set(again))


# ------------------------------------------------------------ report

def _mutated_diff(rel, mutation, root=ROOT):
    """The diff of a mutant that was not run: cosmic-ray's mutation of the
    file in ``root``, which must be the session's code (its tree: the
    checkout may have moved on, and occurrences count from the code the
    session was made of)."""
    import difflib
    import cosmic_ray.plugins
    from cosmic_ray.mutating import mutate_code
    op = cosmic_ray.plugins.get_operator(mutation.operator_name)(**(mutation.operator_args or {}))
    original = (Path(root) / rel).read_text()
    mutated = mutate_code(original, op, mutation.occurrence)
    if mutated is None:
        return None
    return '\n'.join(difflib.unified_diff(original.splitlines(), mutated.splitlines(), rel, rel,
                                           n=0, lineterm=''))


def results(work):
    """One dict per mutant in scope: file, line, operator, outcome, diff."""
    from cosmic_ray.work_db import WorkDB, use_db
    rows = []
    # the rules read the code the session was made of: its tree (the
    # checkout may have moved on since)
    root = _tree(work) if _tree(work).is_dir() else ROOT
    with use_db(_session(work), WorkDB.Mode.open) as wdb:
        res = dict(wdb.results)
        for item in wdb.work_items:
            m = item.mutations[0]
            r = res.get(item.job_id)
            if r is not None and r.worker_outcome == 'skipped':
                continue
            diff = r.diff if r is not None else None
            carried = r is not None and (r.output or '').startswith(mutation_ledger.CARRIED)
            if r is None:
                outcome = 'pending'
            elif r.worker_outcome == 'no-test':
                outcome = 'no-test'
            elif r.output == 'not executed by the killing test':
                outcome = 'not executed'
                # recorded by run since 2026-12-01; before, made from the session's tree
                diff = diff or _mutated_diff(str(m.module_path), m, _tree(work))
            elif r.test_outcome == 'survived':
                outcome = 'survived'
            elif r.test_outcome == 'killed':
                outcome = 'timeout' if r.output == 'timeout' or carried and r.output.endswith(': timeout') \
                    else 'killed'
            else:
                outcome = 'incompetent'
            part, unit = killing_part(r.output) if outcome == 'killed' else \
                ('timeout', None) if outcome == 'timeout' else (None, None)
            rows.append({'job': item.job_id, 'file': str(m.module_path), 'line': m.start_pos[0],
                         'killed by': part, 'unit': unit, 'carried': carried,
                         'operator': m.operator_name.split('/')[-1], 'occurrence': m.occurrence,
                         'function': m.definition_name, 'outcome': outcome, 'diff': diff,
                         'output': (r.output or '')[:300] if r is not None else None,
                         'root': str(root)})
    return rows


# why a surviving mutant does not count against the score
# (docs/mutation-survivors.json: file, change (the -/+ lines), kind, reason)
KINDS = {
    'equivalent': 'behaves exactly like the original on every input',
    'bad input': 'differs only on corrupt or hostile image sets/documents, or only in an error '
                 "message's text: the robustness campaign's ground, never produced by a migration",
    'fault hook': 'inside a deliberate fault switch of engine/faults.py (off in every run)',
}


def classified():
    """(file, change) -> (kind, reason) of the surviving mutants judged
    not to count, from docs/mutation-survivors.json."""
    path = SURVIVORS
    if not path.exists():
        return {}
    out = {}
    for e in json.loads(path.read_text()):
        if e['kind'] not in KINDS:
            raise SystemExit(f'error: {path}: unknown kind {e["kind"]!r} (one of {", ".join(KINDS)})')
        out[(e['file'], e['change'])] = (e['kind'], e['reason'])
    return out


def judge(work, at, kind, reason, job=None):
    """Record why the unexplained survivor(s) of the session at ``at``
    (``FILE:LINE``) do not count: appends {file, change, kind, reason} to
    docs/mutation-survivors.json, written whole or not at all.  Several
    different survivors on one line need ``job`` to pick one; the same
    change twice (two operators making one edit) is one entry.  Returns the
    entries added."""
    if kind not in KINDS:
        raise SystemExit(f'error: unknown kind {kind!r} (one of {", ".join(KINDS)})')
    if not reason.strip():
        raise SystemExit('error: --reason is empty: say why the mutant does not count')
    rel, sep, line = at.rpartition(':')
    if not sep or not line.isdigit():
        raise SystemExit(f'error: {at!r}: expected FILE:LINE (e.g. engine/migrate/images.py:288)')
    rows = results(work)
    summarise(rows, classified())
    here = [r for r in rows if r['file'] == rel and r['line'] == int(line)]
    open_ = [r for r in here if r['verdict'] == 'survived' and (job is None or r['job'] == job)]
    if not open_:
        seen = ', '.join(f'{r["job"]} {r["operator"]} {r["verdict"]}' for r in here) or 'no mutants'
        raise SystemExit(f'error: {at}: no unexplained survivor' + (f' with job {job}' if job else '')
                         + f' there ({seen})')
    changes = {}
    for r in open_:
        changes.setdefault(_diff_key(r['diff']), []).append(r['job'])
    if len(changes) > 1:
        listed = '; '.join(f'--job {jobs[0]}: {c.replace(chr(10), " / ")}' for c, jobs in changes.items())
        raise SystemExit(f'error: {at}: {len(changes)} different survivors there, pick one: {listed}')
    entries = json.loads(SURVIVORS.read_text()) if SURVIVORS.exists() else []
    added = [{'file': rel, 'change': c, 'kind': kind, 'reason': reason.strip()} for c in changes]
    from engine.migrate.images import write_file_atomic     # not at import: the killing test's tree
    write_file_atomic(str(SURVIVORS), json.dumps(entries + added, indent=1, ensure_ascii=False) + '\n')
    return added


def stale_judgements(root=ROOT):
    """Judged survivors of docs/mutation-survivors.json whose original lines
    (the ``-`` lines of ``change``) are no longer in their file: code that
    moved to another file or changed, so that no mutant matches the key any
    more (re-key or drop them)."""
    path = Path(root) / 'docs' / 'mutation-survivors.json'
    out = []
    for e in json.loads(path.read_text()) if path.exists() else []:
        f = Path(root) / e['file']
        lines = set(f.read_text().splitlines()) if f.exists() else set()
        if not all(l[1:] in lines for l in e['change'].splitlines() if l.startswith('-')):
            out.append(e)
    return out


def _diff_key(diff):
    """The changed lines of a mutant's diff (stable across line shifts)."""
    if not diff:
        return ''
    keep = [l for l in diff.splitlines() if l[:1] in '+-' and not l.startswith(('+++', '---'))]
    return '\n'.join(keep)


def _is_fail(stmt):
    """A ``raise`` or a call of a ``fail``/``_fail`` helper (which raises)."""
    if isinstance(stmt, ast.Raise):
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        f = stmt.value.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, 'id', '')
        return name.endswith('fail')
    return False


def _innermost(rel, line, root=ROOT, cache={}):
    """(innermost statement containing ``line``, enclosing function name) of
    ``rel`` as in ``root`` (the session's code)."""
    key = (str(root), rel)
    if key not in cache:
        tree = ast.parse((Path(root) / rel).read_text())
        stmts = []

        def walk(node, func):
            for child in ast.iter_child_nodes(node):
                f = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
                if isinstance(child, ast.stmt):
                    stmts.append((child.lineno, child.end_lineno, child, f))
                walk(child, f)
        walk(tree, None)
        cache[key] = stmts
    best = None
    for lo, hi, node, func in cache[key]:
        if lo <= line <= hi and (best is None or hi - lo <= best[1] - best[0]):
            best = (lo, hi, node, func)         # the smallest: a body's line is its own statement's
    return (best[2], best[3]) if best else (None, None)


def auto_kind(row):
    """(kind, reason) of a surviving mutant by rules that need no judging of
    the one case (docs/mutation-testing.md), or (None, None)."""
    change = _diff_key(row['diff'])
    if 'if faults.' in change:
        return 'fault hook', 'on a line guarded by a deliberate fault switch, which is off'
    root = row.get('root', ROOT)
    node, func = _innermost(row['file'], row['line'], root)
    if node is None:
        return None, None
    if _is_fail(node):
        return 'bad input', 'in the raise of an error for bad input (its message or arguments)'
    # (not for != made `is not`: on ints past 256 or fresh objects the check
    # then fires on a valid state, one the killing test may never reach)
    if isinstance(node, ast.If) and node.body and all(_is_fail(b) for b in node.body) and \
            not node.orelse and not row['operator'].endswith('NotEq_IsNot'):
        return 'bad input', 'in the test of a check whose only action is to reject bad input'
    if row['file'] == 'engine/migrate/neutral.py' and func == '_pretty':
        return 'equivalent', ("neutral.json's text layout (line breaks, indentation): the reader "
                              'parses the same JSON value')
    if row['outcome'] == 'not executed' and _hostile_line(row['file'], row['line'], root):
        return 'bad input', 'never executed by a migration: an error path for bad input'
    return None, None


def _hostile_line(rel, line, root=ROOT, cache={}):
    """Whether ``line`` of ``rel`` (as in ``root``) is in an error path for
    bad input (it or the next line raises / fails)."""
    key = (str(root), rel)
    if key not in cache:
        cache[key] = (Path(root) / rel).read_text().splitlines()
    src = cache[key]
    return any(HOSTILE.search(x) for x in src[line - 1:line + 1])


COLUMNS = ('mutants', 'tested', 'killed', 'survived', 'equivalent', 'bad input', 'fault hook',
           'incompetent')


def summarise(rows, judged):
    """Per module counts; every row gets its final 'verdict'."""
    per = {}
    for r in rows:
        s = per.setdefault(r['file'], dict.fromkeys(COLUMNS, 0))
        s['mutants'] += 1
        o = r['outcome']
        r['verdict'] = o
        if o in ('pending', 'no-test'):
            continue
        s['tested'] += 1
        if o in ('killed', 'timeout'):
            r['verdict'] = 'killed'
        elif o == 'incompetent':
            pass
        else:
            kind, why = judged.get((r['file'], _diff_key(r['diff'])), (None, None))
            if kind is None:
                kind, why = auto_kind(r)
                r['rule'] = kind is not None
            r['verdict'], r['why'] = kind or 'survived', why
        s[r['verdict']] += 1
    for s in per.values():
        _score(s)
    return per


def _score(s):
    live = s['killed'] + s['survived']
    s['score'] = round(100 * s['killed'] / live, 1) if live else None
    s['raw score'] = round(100 * s['killed'] / (s['tested'] - s['incompetent']), 1) \
        if s['tested'] - s['incompetent'] else None


def report(work, out=sys.stdout, json_path=None):
    rows = results(work)
    per = summarise(rows, classified())
    tot = {k: sum(s[k] for s in per.values()) for k in COLUMNS}
    _score(tot)
    cols = COLUMNS + ('score', 'raw score')
    print('| module | ' + ' | '.join(cols) + ' |', file=out)
    print('| --- ' * (len(cols) + 1) + '|', file=out)
    for f, s in sorted(per.items()) + [('total', tot)]:
        print(f'| {f} | ' + ' | '.join('-' if s[c] is None else str(s[c]) for c in cols) + ' |', file=out)
    stale = stale_judgements()
    if stale:
        print(f'\nwarning: {len(stale)} judged survivors in docs/mutation-survivors.json match no '
              'code any more: ' + '; '.join(f'{e["file"]}: {e["change"].splitlines()[0]}' for e in stale),
              file=out)
    carried = sum(r['carried'] for r in rows)
    if carried:
        print(f'\n{carried} results carried from a ledger (functions unchanged since; '
              '"rerun --outcome killed --carried --sample N" tests a sample again)', file=out)
    surv = [r for r in rows if r['verdict'] == 'survived']
    print(f'\n{len(surv)} surviving mutants not explained:', file=out)
    for r in sorted(surv, key=lambda r: (r['file'], r['line'])):
        print(f'- {r["file"]}:{r["line"]} {r["function"]} {r["operator"]} ({r["outcome"]}): '
              + _diff_key(r['diff']).replace('\n', ' / '), file=out)
    if json_path:
        Path(json_path).write_text(json.dumps({'modules': per, 'total': tot, 'mutants': rows}, indent=1))
    return per, tot, rows


# ------------------------------------------------------------ the 120 s campaign

def killing_part(output):
    """Which part of the killing test killed a mutant, from its output:
    ('campaign', unit), ('gc', program), ('spec', None), ('harness', None) or
    (None, None)."""
    output = output or ''
    m = re.search(r'DIVERGENCE campaign unit (\d+) ', output)
    if m:
        return 'campaign', int(m.group(1))
    m = re.search(r'DIVERGENCE gc program (\w+)', output)
    if m:
        return 'gc', m.group(1)
    if 'DIVERGENCE spec ' in output:
        return 'spec', None
    if 'DIVERGENCE harness raised' in output:
        return 'harness', None
    return None, None


def campaign_reach(work, seconds, log=sys.stdout):
    """Units an unmutated campaign (``campaign_command``) finishes in
    ``seconds`` on this machine, and whether it failed (it must not)."""
    out = Path(work) / 'campaign' / 'reach'
    if out.exists():
        shutil.rmtree(out)
    tree = copy_tree(work, 'tree-campaign')
    first, wall = _campaign(tree, out, campaign_command(time=seconds), seconds)
    try:
        summary = json.loads((out / 'summary.json').read_text())
    except (OSError, ValueError):
        summary = {}
    units = summary.get('units')
    print(f'an unmutated {seconds:g} s campaign ({" ".join(campaign_command())}) finished '
          f'{units} units in {wall:.0f} s' + (' and FAILED' if first is not None else ''),
          file=log, flush=True)
    return units, first is None


def campaign_check(work, sample, seconds, seed=0, log=sys.stdout, only=None):
    """The 120 s criterion (docs/mutation-testing.md).  The campaign part of
    the killing test is the first KILL_UNITS units of ``campaign_command``,
    so a mutant it kills in unit k fails that campaign's unit k too: for a
    seeded sample of them the campaign's first k + 1 units (``--runs``) are
    run on the mutated tree and must report a failure (the construction
    checked).  A mutant killed only by the spec part or by the timeout has
    no such guarantee: it is hunted by a ``seconds`` campaign.  Returns the
    rows (job, part, unit, caught, seconds to the first failure)."""
    from cosmic_ray.mutating import use_mutation
    import cosmic_ray.plugins
    killed = [r for r in results(work) if r['outcome'] in ('killed', 'timeout')
              and (not only or r['job'] in only)]
    random.Random(seed).shuffle(killed)
    tree = copy_tree(work, 'tree-campaign')     # its own copy: a run may be using the others
    from cosmic_ray.work_db import WorkDB, use_db
    with use_db(_session(work), WorkDB.Mode.open) as wdb:
        items = {i.job_id: i for i in wdb.work_items}
    rows = []
    for r in killed[:sample]:
        m = items[r['job']].mutations[0]
        op = cosmic_ray.plugins.get_operator(m.operator_name)(**(m.operator_args or {}))
        out = Path(work) / 'campaign' / r['job']
        if out.exists():
            shutil.rmtree(out)
        part, unit = killing_part(r['output']) if r['outcome'] == 'killed' else ('timeout', None)
        cmd = campaign_command(units=unit + 1) if part == 'campaign' else campaign_command(time=seconds)
        with use_mutation(tree / m.module_path, op, m.occurrence):
            first, wall = _campaign(tree, out, cmd, seconds)
        row = {'job': r['job'], 'file': r['file'], 'line': r['line'], 'operator': r['operator'],
               'change': _diff_key(r['diff']), 'part': part, 'unit': unit,
               'caught': first is not None, 'first_failure_seconds': first, 'wall': round(wall, 1)}
        rows.append(row)
        how = (f'its campaign\'s first {unit + 1} units' if part == 'campaign'
               else f'a {seconds:g} s campaign')
        print(f'{r["file"]}:{r["line"]} {r["operator"]} (killed by the {part} part): '
              + (f'{how} failed after {first:.1f} s' if first is not None else f'{how} did NOT fail'),
              file=log, flush=True)
    return rows


def _campaign(tree, out, args, seconds):
    """(seconds to the first failure or None, wall seconds) of the campaign
    ``python args`` in ``tree`` writing to ``out``, stopped once a failure
    is written (or ``seconds`` + 120 s after its start)."""
    import signal
    cmd = [sys.executable] + list(args) + ['--out', str(out), '--shrink-seconds', '0', '--quiet']
    start = time.time()
    proc = subprocess.Popen(cmd, cwd=tree, env=_env(tree), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    first = None
    fdir = out / 'failures'
    while proc.poll() is None:
        if first is None:
            try:        # rewritten every few seconds; a reproducer folder comes later (replayed first)
                s = json.loads((out / 'summary.json').read_text())
            except (OSError, ValueError):
                s = {}
            if s.get('failures') or (fdir.is_dir() and any(not n.startswith('.') for n in os.listdir(fdir))):
                first = s.get('first_failure_seconds') or time.time() - start
                os.killpg(proc.pid, signal.SIGKILL)   # caught: the rest of the campaign cannot change that
                break
        if time.time() - start > seconds + 120:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.25)
    proc.wait()
    from fuzz.migrate import tmp_root_for
    shutil.rmtree(tmp_root_for(str(out)), ignore_errors=True)     # a killed campaign's image folder
    if first is None:
        try:
            s = json.loads((out / 'summary.json').read_text())
            first = s.get('first_failure_seconds')
        except (OSError, ValueError):
            pass
    return first, time.time() - start


# ------------------------------------------------------------ coverage of the campaign

def campaign_coverage(work, seconds, seed=1, jobs=2, out=sys.stdout, generator='mix'):
    """Branch coverage (coverage.py) of the scope reached by a seeded
    ``fuzz.migrate`` campaign alone (``--generator generator``), per module."""
    data = Path(work) / 'coverage'
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    rc = data / 'rc'
    rc.write_text(f'[run]\nbranch = True\nparallel = True\nconcurrency = multiprocessing\n'
                  f'data_file = {data}/.coverage\nsource = {ROOT}/engine\nsigterm = True\n')
    cmd = [sys.executable, '-m', 'coverage', 'run', f'--rcfile={rc}', '-m', 'fuzz.migrate',
           '--jobs', str(jobs), '--time', str(seconds), '--seed', str(seed),
           '--out', str(data / 'campaign'), '--quiet', '--generator', generator]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop('WASM_MIGRATE_FAULT', None)
    subprocess.run(cmd, cwd=ROOT, env=env)
    subprocess.run([sys.executable, '-m', 'coverage', 'combine', f'--rcfile={rc}'], cwd=ROOT, env=env,
                   capture_output=True)
    return branch_table(data / '.coverage', ROOT, out)


# a branch into one of these lines (or into the line before one) only
# handles bad input (a corrupt image set or document, an impossible state):
# the robustness campaign's ground
# (a raise, or a call of a fail helper: ``x.fail(``, ``_fail(``, ``_exn_fail(``, or a ``fail`` passed in)
HOSTILE = re.compile(r'^\s*(raise\b|(\w+\.)?(\w*_)?fail\()')
# a branch out of a line testing a deliberate fault's switch (engine/faults.py,
# off in every campaign) into the fault's code: never taken with the faults off
FAULT_SWITCH = re.compile(r'^\s*(el)?if faults\.[A-Z_]+\b')


def branch_table(data_file, root, out=sys.stdout):
    """Per module of SCOPE: statements and branches (restricted to the
    scope's lines for the executors) and how many of each were reached."""
    import coverage
    cov = coverage.Coverage(data_file=str(data_file))
    cov.load()
    lines = scope_lines(root)
    rows = {}
    for rel in SCOPE:
        path = str(Path(root) / rel)
        an = cov._analyze(path)
        chosen = lines[rel]
        stm = [n for n in an.statements if chosen is None or n in chosen]
        miss = [n for n in an.missing if chosen is None or n in chosen]
        stats = an.branch_stats()              # branch line -> (destinations, taken)
        missing = an.missing_branch_arcs()     # branch line -> destinations never taken
        blines = [l for l in stats if chosen is None or l in chosen]
        nbranch = sum(stats[l][0] for l in blines)
        br_missing = [(l, d) for l in blines for d in missing.get(l, ())]
        rows[rel] = {'statements': len(stm), 'missed_statements': sorted(miss),
                     'branches': nbranch, 'missed_branches': sorted(br_missing)}
    print('| module | statements | reached | branches | reached | branch coverage | missed, to an '
          'error for bad input or into a fault switch | coverage of the rest |', file=out)
    print('| --- | --- | --- | --- | --- | --- | --- | --- |', file=out)
    for rel, r in rows.items():
        src = (Path(root) / rel).read_text().splitlines()
        hostile = [(l, d) for l, d in r['missed_branches']
                   if (d > 0 and any(HOSTILE.search(x) for x in src[d - 1:d + 1]))
                   or FAULT_SWITCH.search(src[l - 1])]
        r['missed_hostile'] = hostile
        nb, nm, nh = r['branches'], len(r['missed_branches']), len(hostile)
        pct = 100 * (nb - nm) / nb if nb else 100
        rest = 100 * (nb - nm) / (nb - nh) if nb - nh else 100
        spct = 100 * (r['statements'] - len(r['missed_statements'])) / r['statements'] if r['statements'] else 100
        r.update(branch_pct=round(pct, 1), statement_pct=round(spct, 1), rest_pct=round(rest, 1))
        print(f'| {rel} | {r["statements"]} | {spct:.1f}% | {nb} | {nb - nm} | {pct:.1f}% | {nh} | '
              f'{rest:.1f}% |', file=out)
    return rows


# ------------------------------------------------------------ command line

def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m fuzz.mutation_testing', description=__doc__.split('\n\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    k = sub.add_parser('kill', help='the killing test (exit 0 pass, 1 divergence)')
    k.add_argument('--keep-going', action='store_true', help='run everything, count the failures')
    k.add_argument('--tests', help='only these tests (comma-separated campaign:K, gc:NAME, spec:FILE)')
    k.add_argument('--contexts', action='store_true',
                   help='each test in its own coverage.py context (under coverage run)')
    for name, hlp in (('init', 'a fresh cosmic-ray session of the scope'),
                      ('extend', 'add the mutants of files the scope gained since init'),
                      ('export', 'write the carryable results to a ledger file (init --carry reads it)'),
                      ('run', 'test pending mutants'), ('report', 'the score table and survivors'),
                      ('rerun', 'test the unexplained survivors again with the current code'),
                      ('judge', 'record why an unexplained survivor does not count '
                                '(docs/mutation-survivors.json)'),
                      ('campaign', '120 s campaigns against a sample of killed mutants'),
                      ('coverage', 'branch coverage of the scope by a seeded campaign')):
        s = sub.add_parser(name, help=hlp)
        s.add_argument('--work', default=str(DEFAULT_WORK), help=f'run state (default {DEFAULT_WORK})')
        if name in ('run', 'campaign', 'coverage'):
            s.add_argument('--time', type=float, required=True, metavar='S',
                           help='run budget (run, coverage) or campaign length (campaign)')
            s.add_argument('--seed', type=int, default=0 if name != 'coverage' else 1)
        if name == 'rerun':
            s.add_argument('--outcome', action='append', choices=('survived', 'not executed', 'killed',
                                                                  'timeout'),
                           help='which results to test again (repeatable; default: survived and '
                                'not executed)')
            s.add_argument('--sample', type=int, help='only a seeded sample of them')
            s.add_argument('--judged', action='append', choices=KINDS, default=[],
                           help='also the survivors judged this kind (repeatable), after an oracle '
                                'for what that judgement took as unreached was added')
            s.add_argument('--file', action='append', help='only mutants of this file (repeatable)')
            s.add_argument('--only', action='append', metavar='JOB', help='only these mutants (repeatable)')
        if name in ('run', 'rerun'):
            s.add_argument('--timeout', type=float, help='CPU seconds per mutant (default 3x the killing test)')
            s.add_argument('--jobs', type=int, default=1, help='mutants tested at once (one tree copy each)')
        if name == 'campaign':
            s.add_argument('--sample', type=int, default=20)
            s.add_argument('--only', action='append', metavar='JOB', help='these killed mutants (repeatable)')
            s.add_argument('--json', help='write the rows here')
        if name == 'coverage':
            s.add_argument('--jobs', type=int, default=2)
            s.add_argument('--generator', default='mix',
                           help='the campaign\'s generators (fuzz.migrate --generator; default mix)')
            s.add_argument('--json', help='write the table here')
        if name == 'report':
            s.add_argument('--json', help='write the whole report here')
        if name == 'init':
            s.add_argument('--carry', metavar='LEDGER',
                           help='give mutants of unchanged functions the results of this ledger '
                                f'(e.g. {LEDGER.relative_to(ROOT)})')
        if name == 'judge':
            s.add_argument('at', metavar='FILE:LINE', help="the survivor's place, as report lists it")
            s.add_argument('--kind', required=True, choices=KINDS, help='; '.join(f'{k}: {v}' for k, v in
                                                                           KINDS.items()))
            s.add_argument('--reason', required=True, help='why, for a reader of the survivors list')
            s.add_argument('--job', help='which survivor, when the line has several different ones')
        if name == 'export':
            s.add_argument('--to', default=str(LEDGER), help=f'the ledger file (default {LEDGER})')
        if name == 'rerun':
            s.add_argument('--carried', action='store_true', help='only results carried from a ledger')
    a = p.parse_args(argv)
    if a.cmd == 'kill':
        _limit_memory()
        if a.tests is not None:
            return kill_selected(a.tests.split(','), contexts=a.contexts)
        return kill(keep_going=a.keep_going, contexts=a.contexts)
    work = Path(a.work).expanduser().resolve()
    if work == ROOT or ROOT in work.parents:
        print(f'error: --work {work} is inside the checkout; mutation state stays outside it',
              file=sys.stderr)
        return 2
    work.mkdir(parents=True, exist_ok=True)
    if a.cmd == 'init':
        try:
            init(work, carry=a.carry)
        except mutation_ledger.LedgerError as e:
            print(f'error: {e}', file=sys.stderr)
            return 2
    elif a.cmd == 'export':
        print(f'{export(work, a.to)} results written to {a.to}')
    elif a.cmd == 'extend':
        extend(work)
    elif a.cmd in ('run', 'rerun'):
        try:
            if a.cmd == 'run':
                run(work, a.time, a.seed, jobs=a.jobs, timeout=a.timeout)
            else:
                rerun(work, tuple(a.outcome or ('survived', 'not executed')), jobs=a.jobs,
                      timeout=a.timeout, sample=a.sample, carried=a.carried, judged=a.judged,
                      files=a.file, only=set(a.only) if a.only else None)
        except KeyboardInterrupt:
            return 130                  # run printed what it kept
    elif a.cmd == 'report':
        report(work, json_path=a.json)
    elif a.cmd == 'judge':
        for e in judge(work, a.at, a.kind, a.reason, job=a.job):
            print(f'judged {e["kind"]}: {e["file"]}: {e["change"].replace(chr(10), " / ")}')
    elif a.cmd == 'campaign':
        units, clean = campaign_reach(work, a.time)
        rows = campaign_check(work, a.sample, a.time, a.seed, only=a.only)
        parts = {}
        for r in rows:
            parts.setdefault(r['part'], []).append(r['caught'])
        for part, caught in sorted(parts.items(), key=lambda x: str(x[0])):
            print(f'killed by the {part} part: {sum(caught)}/{len(caught)} caught '
                  + ('by the first units of their campaign' if part == 'campaign'
                     else f'by a {a.time:g} s campaign'))
        # both lanes run their units in turn: past unit KILL_UNITS - 1 on each
        reach = clean and units is not None and units >= KILL_UNITS + KILL_CAMPAIGN['jobs']
        print(f'a {a.time:g} s campaign reaches {units} units: '
              + ('past' if reach else 'NOT past') + f' the killing test\'s {KILL_UNITS}')
        if a.json:
            Path(a.json).write_text(json.dumps({'reach_units': units, 'reach_clean': clean,
                                                'kill_units': KILL_UNITS, 'mutants': rows}, indent=1))
        return 0 if reach and all(r['caught'] for r in rows) else 1
    elif a.cmd == 'coverage':
        rows = campaign_coverage(work, a.time, a.seed, a.jobs, generator=a.generator)
        if a.json:
            Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
