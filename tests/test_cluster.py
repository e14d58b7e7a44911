"""The campaign on a Dask cluster (issue 11): a real scheduler and two
workers on loopback (``dask scheduler`` / ``dask worker --no-nanny``
processes), a seeded campaign through ``--scheduler``, one worker killed
with SIGKILL while it runs a unit; the summary and the reproducers must be
those of the local campaign with the same seed and unit count, and the lost
unit must be listed as infrastructure's loss.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from spectests import manifest as mf

pytest.importorskip('distributed')

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNITS = 6
CAMPAIGN = ['-m', 'fuzz.migrate', '--runs', str(UNITS), '--jobs', '2', '--generator', 'smith',
            '--seed', '7', '--quiet', '--shrink-seconds', '0', '--no-wasmtime']
SAME = ('units', 'runs', 'checks', 'failures', 'distinct_failures', 'signatures', 'generators',
        'status', 'seed', 'jobs')


def _env(**extra):
    e = dict(os.environ, PYTHONPATH=ROOT)
    for k in ('FUZZ_MIGRATE_SELFTEST', 'WASM_MIGRATE_FAULT'):
        e.pop(k, None)
    e.update(extra)
    return e


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _unit_processes(pid):
    """The unit processes a Dask worker runs now (spawned children; not
    multiprocessing's resource tracker, which stays)."""
    kids = set()
    try:
        tids = os.listdir(f'/proc/{pid}/task')      # a task thread starts them
    except OSError:
        return []
    for tid in tids:
        try:
            with open(f'/proc/{pid}/task/{tid}/children') as f:
                kids.update(int(x) for x in f.read().split())
        except OSError:
            pass
    out = []
    for k in sorted(kids):
        try:
            with open(f'/proc/{k}/cmdline', 'rb') as f:
                if b'spawn_main' in f.read():
                    out.append(k)
        except OSError:
            pass
    return out


@contextlib.contextmanager
def _cluster(tmp_path):
    """tcp address of a scheduler with two one-thread workers, and the
    workers' processes; everything is killed at the end."""
    port = _free_port()
    addr = f'tcp://127.0.0.1:{port}'
    logs = []
    procs = []

    def start(args, name):
        log = open(tmp_path / f'{name}.log', 'wb')
        logs.append(log)
        p = subprocess.Popen([sys.executable, '-m', *args], cwd=ROOT, env=_env(), stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(p)
        return p
    try:
        start(['distributed.cli.dask_scheduler', '--host', '127.0.0.1', '--port', str(port),
               '--no-dashboard'], 'scheduler')
        workers = [start(['distributed.cli.dask_worker', addr, '--nthreads', '1', '--no-nanny',
                          '--no-dashboard', '--host', '127.0.0.1'], f'worker{i}') for i in range(2)]
        from distributed import Client
        limit = time.time() + 60
        client = None
        while True:
            try:
                client = client or Client(addr, timeout=5, set_as_default=False)
                if len(client.scheduler_info()['workers']) == 2:
                    break
            except OSError:
                pass
            assert time.time() < limit, 'the local Dask cluster did not come up in 60 s'
            time.sleep(0.5)
        client.close()
        yield addr, workers
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)     # its own session: the process and its children
            p.wait()
        for log in logs:
            log.close()


@pytest.fixture
def cluster(tmp_path):
    """A cluster of this test only (the test may kill its workers)."""
    with _cluster(tmp_path) as c:
        yield c


@pytest.fixture(scope='module')
def shared_cluster(tmp_path_factory):
    """A cluster the tests that leave it intact share."""
    with _cluster(tmp_path_factory.mktemp('cluster')) as c:
        yield c


def _summary(out):
    return json.loads((out / 'summary.json').read_text())


def _cases(out):
    """Each reproducer's case.json, without the time it was found."""
    cases = {}
    for fid in sorted(os.listdir(out / 'failures')):
        case = json.loads((out / 'failures' / fid / 'case.json').read_text())
        case.pop('found_at', None)
        cases[fid] = case
    return cases


def test_campaign_on_a_cluster_survives_a_killed_worker_and_ends_like_local(tmp_path, cluster):
    addr, workers = cluster
    # a fault: failures, minimising and reproducers to compare; unit 3 starts
    # 6 s late and names its process, so the test kills the worker running it
    pidfile = tmp_path / 'slow.pid'
    env = _env(WASM_MIGRATE_FAULT='pc_offset', FUZZ_MIGRATE_SELFTEST=f'slow:3:{pidfile}')
    local = tmp_path / 'local'
    p = subprocess.run([sys.executable, *CAMPAIGN, '--out', str(local)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 1, p.stderr[-2000:]

    out = tmp_path / 'dask'
    proc = subprocess.Popen([sys.executable, *CAMPAIGN, '--out', str(out), '--scheduler', addr],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pidfile.unlink()        # the local campaign's
    killed = None
    limit = time.time() + 120
    while killed is None and proc.poll() is None and time.time() < limit:
        if pidfile.exists():
            slow = int(pidfile.read_text())
            for wp in workers:
                if slow in _unit_processes(wp.pid):     # mid-run, mid-unit
                    os.kill(wp.pid, signal.SIGKILL)
                    killed = wp.pid
        time.sleep(0.05)
    stdout, stderr = proc.communicate(timeout=300)
    assert killed is not None, 'the campaign ended before a worker could be killed mid-unit'
    assert proc.returncode == 1, stderr[-2000:]

    got, want = _summary(out), _summary(local)
    assert {k: got[k] for k in SAME} == {k: want[k] for k in SAME}
    assert got['failure_dirs'].keys() == want['failure_dirs'].keys()
    assert got['infra']['lost_attempts'] >= 1, got['infra']
    assert [(e['worker'], e['unit'], e['why']) for e in got['infra']['events']] == [(1, 3, 'crash')]
    assert _cases(out) == _cases(local)
    for fid in got['failure_dirs']:
        replay = (out / 'failures' / fid / 'replay.txt').read_text()
        assert replay.strip() == f'python -m fuzz.replay {out / "failures" / fid}'


def test_a_unit_hanging_on_the_cluster_is_retried_then_a_hang_finding(tmp_path, shared_cluster):
    addr, _ = shared_cluster
    out = tmp_path / 'dask'
    env = _env(FUZZ_MIGRATE_SELFTEST='hang:1')        # unit 1 hangs on every attempt
    p = subprocess.run([sys.executable, '-m', 'fuzz.migrate', '--runs', '4', '--jobs', '2',
                        '--generator', 'smith', '--seed', '7', '--quiet', '--no-wasmtime',
                        '--case-timeout', '6', '--retries', '1', '--out', str(out),
                        '--scheduler', addr], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 1, p.stderr[-2000:]
    s = _summary(out)
    assert s['units'] == 4 and s['status'] == 'finished'
    assert [(e['worker'], e['unit'], e['why'], e['attempt']) for e in s['infra']['events']] == \
        [(1, 1, 'hang', 1), (1, 1, 'hang', 2)]
    assert list(s['failure_dirs']) == ['hang-s7-w1-u1']
    case = json.loads((out / 'failures' / 'hang-s7-w1-u1' / 'case.json').read_text())
    assert case['kind'] == 'hang'


@pytest.mark.skipif(not os.path.isdir(os.path.join(mf.testsuite_root(), 'wasm-2.0')),
                    reason='spec testsuite not available')
def test_conformance_migrate_on_the_cluster_equals_local(shared_cluster):
    addr, _ = shared_cluster
    outs = []
    for extra in ([], ['--scheduler', addr]):
        p = subprocess.run([sys.executable, '-m', 'conformance', '--migrate', '--quiet', 'forward',
                            'br_table', *extra], cwd=ROOT, env=_env(), capture_output=True, text=True,
                           timeout=300)
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
        lines = [x for x in p.stdout.splitlines() if x.startswith(('wasm-2.0:', 'migration'))]
        # the totals without the elapsed time and where it ran
        outs.append([x.split(' (')[0] if x.startswith('wasm-2.0:') else x for x in lines])
    assert outs[0] == outs[1] and len(outs[0]) == 2
    assert '0 mismatches' in outs[0][1]


def test_mutation_check_on_the_cluster_carries_the_fault_to_the_workers(tmp_path, shared_cluster):
    addr, _ = shared_cluster        # its workers run without WASM_MIGRATE_FAULT
    p = subprocess.run([sys.executable, '-m', 'fuzz.mutants', 'global_width', '--scheduler', addr,
                        '--time', '120', '--out', str(tmp_path), '--campaign-arg=--generator=smith'],
                       cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    row = json.loads((tmp_path / 'mutants.json').read_text())['results'][0]
    assert row['caught'] and '--scheduler' in row['command']
    assert any(v['verdict'] == 'fault' for v in row['reproducers'].values())


def test_the_campaign_tier_reaches_the_cluster_workers(tmp_path, shared_cluster):
    """``--tier interp`` travels with the tasks: the workers check under the
    interpreter, and their tier check (the compiled tier, broken by
    ``fast_count``) writes a reproducer whose case.json names that tier."""
    addr, _ = shared_cluster
    p = subprocess.run([sys.executable, '-m', 'fuzz.mutants', 'fast_count', '--scheduler', addr,
                        '--tier', 'interp', '--time', '120', '--out', str(tmp_path),
                        '--campaign-arg=--generator=smith'],
                       cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    row = json.loads((tmp_path / 'mutants.json').read_text())['results'][0]
    assert row['caught'] and '--tier interp' in row['command']
    caught = [n for n, v in row['reproducers'].items() if v['verdict'] == 'fault']
    case = json.loads((tmp_path / 'fast_count' / 'failures' / caught[0] / 'case.json').read_text())
    assert case['tier'] == 'interp'
    assert 'under the fast tier (against the interp tier)' in case['mismatch'][0]
    assert json.loads((tmp_path / 'fast_count' / 'summary.json').read_text())['tier'] == 'interp'
