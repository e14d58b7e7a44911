"""``python -m fuzz.mutants``: the mutation check of the migration fuzzer.

A campaign that reports no failures is only convincing if it does report
them when the code is wrong.  For each deliberate fault of
``engine/faults.py`` (all of them, or those named on the command line) this
runs the migration campaign ``python -m fuzz.migrate`` in a subprocess with
``WASM_MIGRATE_FAULT`` set and watches the reproducers it writes.

A reproducer only counts for the fault if it is the fault's doing:
``python -m fuzz.replay`` must fail on it with the fault switched on and
pass without it.  (A failure the real code has anyway proves nothing about
the fault; it is reported separately as "also without the fault".)  The
fault is *caught* when the first such reproducer was written within
``--time`` seconds of the campaign's start.  Once caught, the campaign is
interrupted (it still writes its summary.json) unless ``--full``.
With ``--scheduler tcp://HOST:PORT`` every campaign runs its units on that
Dask cluster; the fault travels with each task (``fuzz.cluster``), so the
workers need not be started with it.

Prints a table (fault | caught? | seconds to the first failure due to the
fault | checks ...), writes it as JSON (``OUT/mutants.json``) and exits 0
only if every fault was caught within ``--time`` seconds (and, with
``--baseline``, the campaign without any fault stayed clean).
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from engine.faults import ENV, FAULTS, UnknownFault, check_name
from engine.migrate.images import write_file_atomic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAMPAIGN_FILES = ('summary.json', 'campaign.log', 'corpus', 'failures')
GRACE = 120          # seconds a campaign may overrun --time (start-up, minimising) before it is killed
REPLAY_TIMEOUT = 120
# campaign options a fault's state needs beyond the defaults: none, since
# the default campaign makes GC modules too (gc_identity needed --gc before)
FAULT_CAMPAIGN_ARGS = {}


def _env(fault):
    env = dict(os.environ)
    env.pop(ENV, None)
    if fault is not None:
        env[ENV] = fault
    return env


def replay(directory, fault):
    """Exit status of ``fuzz.replay`` on a reproducer with ``fault`` on
    (None: off): 0 passes, 1 fails, 2 not replayable, None timed out."""
    try:
        r = subprocess.run([sys.executable, '-m', 'fuzz.replay', directory], cwd=ROOT,
                           env=_env(fault), capture_output=True, timeout=REPLAY_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None
    return r.returncode


def attribute(directory, fault):
    """Whether a reproducer of a campaign run with ``fault`` is due to it."""
    if not os.path.exists(os.path.join(directory, 'module.wasm')):
        return 'not replayable (worker crash or hang)'
    without = replay(directory, None)
    if without == 1:
        return 'also without the fault'
    if without != 0:
        return 'not replayable' if without == 2 else 'replay timed out'
    return 'fault' if replay(directory, fault) == 1 else 'not reproducible'


def _fresh(out):
    """An empty campaign folder: the campaign re-checks the failing inputs
    of its corpus first, which would make a fault look caught at once."""
    if os.path.isdir(out):
        if os.listdir(out) and not any(os.path.exists(os.path.join(out, n)) for n in CAMPAIGN_FILES):
            raise SystemExit(f'error: {out} exists and is not a campaign folder; not removing it')
        shutil.rmtree(out)
    os.makedirs(out)


def _reproducers(failures_dir):
    """Finished reproducer folders (they are renamed into place from
    temporary folders whose names start with a dot)."""
    try:
        names = os.listdir(failures_dir)
    except OSError:
        return []
    return sorted(n for n in names if not n.startswith('.'))


def campaign(fault, args, out):
    """Run one campaign with ``fault`` switched on (None: no fault) and
    return its row of the report."""
    _fresh(out)
    cmd = [sys.executable, '-m', 'fuzz.migrate', '--jobs', str(args.jobs),
           '--time', str(args.time), '--seed', str(args.seed), '--out', out,
           '--shrink-seconds', '0', '--quiet',      # minimising would only keep workers from searching
           '--tier', args.tier]
    if args.scheduler:
        # the campaign's tasks carry the fault to the cluster's workers (fuzz.cluster)
        cmd += ['--scheduler', args.scheduler]
    cmd += list(FAULT_CAMPAIGN_ARGS.get(fault, ())) + args.campaign_args
    row = {'fault': fault or '(none)', 'description': FAULTS.get(fault, 'no fault: the real code'),
           'command': f'{ENV}={fault or ""} ' + ' '.join(cmd), 'caught': None,
           'caught_seconds': None, 'first_failure_seconds': None, 'checks': None, 'runs': None,
           'failures': None, 'elapsed': None, 'exit_code': None, 'stopped_early': False,
           'reproducers': {}, 'error': None}
    failures_dir = os.path.join(out, 'failures')
    log_path = os.path.join(out, 'campaign.log')
    started = time.time()
    with open(log_path, 'wb') as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(fault), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        while True:
            done = proc.poll() is not None
            if fault is not None:
                for name in _reproducers(failures_dir):
                    if name in row['reproducers']:
                        continue
                    d = os.path.join(failures_dir, name)
                    try:        # written when the failure was found (before minimising)
                        found = os.path.getmtime(os.path.join(d, 'case.json')) - started
                    except OSError:
                        found = time.time() - started
                    verdict = attribute(d, fault)
                    row['reproducers'][name] = {'verdict': verdict, 'seconds': round(found, 1)}
                    if verdict == 'fault' and (row['caught_seconds'] is None
                                               or found < row['caught_seconds']):
                        row['caught_seconds'] = round(found, 1)
                if row['caught_seconds'] is not None and args.early_stop and not done \
                        and not row['stopped_early']:
                    # the rest cannot change the verdict; on SIGINT the campaign
                    # stops its workers and still writes summary.json
                    proc.send_signal(signal.SIGINT)
                    row['stopped_early'] = True
            if done:
                break
            if time.time() - started > args.time + GRACE:
                os.killpg(proc.pid, signal.SIGKILL)   # its own session: the campaign and its workers
                proc.wait()
                row['error'] = f'campaign still running {args.time + GRACE:g} s after its start; killed'
                break
            time.sleep(0.25)
        row['exit_code'] = proc.returncode
    row['wall_seconds'] = round(time.time() - started, 1)
    try:
        with open(os.path.join(out, 'summary.json')) as f:
            summary = json.load(f)
        for key in ('runs', 'checks', 'failures', 'elapsed', 'first_failure_seconds'):
            row[key] = summary.get(key)
    except (OSError, ValueError) as e:
        row['error'] = row['error'] or f'no readable summary.json ({e}); log: {_tail(log_path)}'
    if fault is None:
        row['clean'] = row['failures'] == 0 and row['exit_code'] == 0
    else:
        row['caught'] = row['caught_seconds'] is not None and row['caught_seconds'] <= args.time
    return row


def _tail(path, n=300):
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError:
        return ''
    return data[-n:].decode('utf-8', 'replace').strip().replace('\n', ' | ')


def _fmt(x):
    if x is None:
        return '-'
    return f'{x:.1f}' if isinstance(x, float) else str(x)


def table(rows):
    head = ('fault', 'caught?', 'seconds to first failure', 'checks', 'runs',
            'failures (due to fault)')
    lines = []
    for r in rows:
        if r['fault'] == '(none)':
            verdict = 'clean' if r.get('clean') else 'NOT CLEAN'
            due = _fmt(r['failures'])
        else:
            verdict = 'yes' if r['caught'] else 'NO'
            n = sum(1 for v in r['reproducers'].values() if v['verdict'] == 'fault')
            due = f'{_fmt(r["failures"])} ({n})'
        lines.append((r['fault'], verdict, _fmt(r['caught_seconds']), _fmt(r['checks']),
                      _fmt(r['runs']), due))
    widths = [max([len(h)] + [len(l[i]) for l in lines]) for i, h in enumerate(head)]
    fmt = ' | '.join(f'{{:<{w}}}' for w in widths)
    out = [fmt.format(*head), '-+-'.join('-' * w for w in widths)]
    out += [fmt.format(*l).rstrip() for l in lines]
    return '\n'.join(out)


def parser():
    p = argparse.ArgumentParser(
        prog='python -m fuzz.mutants',
        description='Run the migration campaign against each deliberate fault and report '
                    'which were caught and how fast.',
        epilog='faults (python -m fuzz.mutants --list): ' + ', '.join(FAULTS))
    p.add_argument('faults', nargs='*', metavar='FAULT', help='faults to check (default: all)')
    p.add_argument('--time', type=float, default=60, metavar='S',
                   help='campaign length per fault; a fault counts as caught only if its first '
                        'failure comes within S seconds (default 60)')
    p.add_argument('--jobs', type=int, default=2, metavar='N', help='campaign workers (default 2)')
    p.add_argument('--seed', type=int, default=1, metavar='X', help='campaign seed (default 1)')
    p.add_argument('--out', default=os.path.join('out', 'mutants'), metavar='DIR',
                   help='one campaign folder per fault, and mutants.json (default out/mutants)')
    p.add_argument('--baseline', action='store_true',
                   help='first run the campaign without a fault; it must be clean')
    p.add_argument('--full', dest='early_stop', action='store_false',
                   help='run every campaign for the whole --time (default: stop a campaign '
                        'once it has caught its fault)')
    p.add_argument('--scheduler', metavar='tcp://HOST:PORT',
                   help='run each campaign on this Dask cluster (fuzz.migrate --scheduler)')
    p.add_argument('--tier', choices=('fast', 'interp'), default='fast',
                   help='executor tier of the campaigns (fuzz.migrate --tier; default fast)')
    p.add_argument('--campaign-arg', dest='campaign_args', action='append', default=[],
                   metavar='ARG', help='extra argument for fuzz.migrate, e.g. '
                                       '--campaign-arg=--generator=hypothesis (repeatable)')
    p.add_argument('--list', action='store_true', help='list the faults and exit')
    return p


def main(argv=None):
    a = parser().parse_args(argv)
    if a.list:
        for name, desc in FAULTS.items():
            print(f'{name:<18} {desc}')
        return 0
    try:
        names = list(dict.fromkeys(check_name(n, 'fault argument') for n in a.faults)) or list(FAULTS)
    except UnknownFault as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    if a.time <= 0 or a.jobs < 1:
        print('error: --time must be > 0 and --jobs >= 1', file=sys.stderr)
        return 2
    if not os.path.exists(os.path.join(ROOT, 'fuzz', 'migrate.py')):
        print('error: fuzz/migrate.py (the campaign) is missing', file=sys.stderr)
        return 2
    out = os.path.abspath(a.out)
    rows = []
    for fault in ([None] if a.baseline else []) + names:
        print(f'# {fault or "(no fault)"}: campaign of up to {a.time:g} s, {a.jobs} jobs, '
              f'seed {a.seed}, {a.tier} tier', file=sys.stderr, flush=True)
        row = campaign(fault, a, os.path.join(out, fault or 'baseline'))
        rows.append(row)
        if fault is None:
            verdict = 'clean' if row['clean'] else f'NOT clean: {row["failures"]} failures'
        else:
            verdict = (f'caught after {row["caught_seconds"]} s' if row['caught']
                       else 'NOT caught')
            other = [n for n, v in row['reproducers'].items() if v['verdict'] != 'fault']
            if other:
                verdict += f' ({len(other)} other failures: ' + ', '.join(
                    sorted({row['reproducers'][n]['verdict'] for n in other})) + ')'
        print(f'#   {verdict}' + (f'; {row["error"]}' if row['error'] else ''),
              file=sys.stderr, flush=True)
    faulty = [r for r in rows if r['fault'] != '(none)']
    ok = all(r['caught'] for r in faulty) and all(r['clean'] for r in rows if r['fault'] == '(none)')
    report = {'time_limit': a.time, 'jobs': a.jobs, 'seed': a.seed, 'tier': a.tier, 'all_caught': ok,
              'results': rows}
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, 'mutants.json')
    write_file_atomic(path, json.dumps(report, indent=2) + '\n')
    print(table(rows))
    caught = sum(1 for r in faulty if r['caught'])
    print(f'{caught}/{len(faulty)} faults caught within {a.time:g} s; report: {path}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
