"""Campaign integrity (issue 13): a campaign survives a SIGKILL of its
coordinator (the restart continues and ends exactly like an uninterrupted
campaign), a killed worker's unit is retried instead of counted as a
failure, and every reported reproducer replays in a fresh process.

The campaigns are short, seeded, use the smith generator with a deliberate
fault switched on (so there are findings to keep), and wait generously: the
machine is shared.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from fuzz import journal as jn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNITS = 24
CAMPAIGN = ['-m', 'fuzz.migrate', '--runs', str(UNITS), '--jobs', '2', '--generator', 'smith',
            '--seed', '7', '--quiet', '--shrink-seconds', '0', '--no-wasmtime']


def _env(**extra):
    e = dict(os.environ, PYTHONPATH=ROOT, WASM_MIGRATE_FAULT='pc_offset')
    e.pop('FUZZ_MIGRATE_SELFTEST', None)
    e.update(extra)
    return e


def _campaign(out, env=None, timeout=900):
    return subprocess.run([sys.executable, *CAMPAIGN, '--out', str(out)], cwd=ROOT,
                          env=env or _env(), capture_output=True, text=True, timeout=timeout)


def _summary(out):
    return json.loads((out / 'summary.json').read_text())


def _done_units(out):
    return sum(1 for r in jn.Journal(str(out)).read() if r.get('event') == 'unit')


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp('whole') / 'camp'
    p = _campaign(out)
    assert p.returncode == 1, p.stderr[-2000:]
    return _summary(out)


def test_restart_after_sigkill_ends_like_an_uninterrupted_campaign(tmp_path, uninterrupted):
    out = tmp_path / 'camp'
    proc = subprocess.Popen([sys.executable, *CAMPAIGN, '--out', str(out)], cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    limit = time.time() + 600
    while _done_units(out) < 4 and proc.poll() is None and time.time() < limit:
        time.sleep(0.05)
    assert proc.poll() is None, 'the campaign ended before it could be killed; make it longer'
    proc.send_signal(signal.SIGKILL)                    # the coordinator only
    proc.wait()
    killed_at = _done_units(out)
    assert 4 <= killed_at < UNITS
    # what the dead run left: summary.json of the run so far, its image folder
    assert _summary(out)['status'] == 'running'
    time.sleep(1)                                       # workers die with their parent
    p = _campaign(out)
    assert p.returncode == 1, p.stderr[-2000:]
    s = _summary(out)
    assert s['status'] == 'finished' and s['resumed']
    assert s['units'] == uninterrupted['units'] == UNITS
    assert sorted(s['failure_dirs']) == sorted(uninterrupted['failure_dirs'])
    assert s['failures'] == uninterrupted['failures'] > 0
    assert s['checks'] == uninterrupted['checks']
    # no unit ran twice to completion, and nothing of the dead run is left
    units = [(r['worker'], r['unit']) for r in jn.Journal(str(out)).read() if r.get('event') == 'unit']
    assert len(units) == len(set(units)) == UNITS
    from fuzz.migrate import tmp_root_for
    assert not os.path.exists(tmp_root_for(str(out)))
    assert not [n for n in os.listdir(out / 'failures') if n.startswith('.')]


def test_killed_worker_is_retried_not_a_failure(tmp_path):
    out = tmp_path / 'camp'
    p = subprocess.run([sys.executable, '-m', 'fuzz.migrate', '--runs', '3', '--jobs', '1',
                        '--generator', 'smith', '--quiet', '--out', str(out)], cwd=ROOT,
                       env=_env(WASM_MIGRATE_FAULT='', FUZZ_MIGRATE_SELFTEST='kill:1'),
                       capture_output=True, text=True, timeout=600)
    s = _summary(out)
    assert p.returncode == 0, p.stderr[-2000:]
    assert s['failures'] == 0 and s['units'] == 3
    assert s['infra']['retried_units'] == [{'worker': 0, 'unit': 1}]
    assert s['infra']['events'][0]['why'] == 'crash'


def test_every_reported_reproducer_replays(uninterrupted):
    assert not uninterrupted['nondeterministic']
    for fid, f in uninterrupted['failure_details'].items():
        assert f['replay']['verdict'] == 'replays', (fid, f['replay'])


def test_a_reproducer_that_does_not_replay_is_reported_as_nondeterministic(tmp_path):
    """A fault switched on only inside the campaign's workers (the replay in
    a fresh process does not see it): the failure depends on process state."""
    out = tmp_path / 'camp'
    p = subprocess.run([sys.executable, '-m', 'fuzz.migrate', '--runs', '2', '--jobs', '1',
                        '--generator', 'smith', '--quiet', '--shrink-seconds', '0', '--no-wasmtime',
                        '--out', str(out)], cwd=ROOT,
                       env=_env(WASM_MIGRATE_FAULT='', FUZZ_MIGRATE_SELFTEST='worker-fault:pc_offset'),
                       capture_output=True, text=True, timeout=600)
    s = _summary(out)
    assert p.returncode == 1
    assert s['failures'] == 0 and s['nondeterministic']
    for v in s['nondeterministic'].values():
        assert v['verdict'] == 'nondeterministic'
        assert 'fresh process' in v['tried'][0] and 'process' in v['why']


def test_unfinished_campaign_with_other_options_is_refused(tmp_path):
    out = tmp_path / 'camp'
    out.mkdir()
    jn.Journal(str(out)).start({'seed': 1, 'jobs': 2, 'generators': ['smith'], 'runs': 5,
                                'wasmtime': True})
    p = subprocess.run([sys.executable, '-m', 'fuzz.migrate', '--runs', '5', '--jobs', '2',
                        '--generator', 'smith', '--seed', '2', '--out', str(out)], cwd=ROOT,
                       env=_env(), capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and '--seed was 1' in p.stderr and 'Traceback' not in p.stderr


def test_journal_ignores_a_torn_last_line(tmp_path):
    j = jn.Journal(str(tmp_path))
    j.start({'seed': 0})
    j.append({'event': 'unit', 'worker': 0, 'unit': 0, 'outcome': 'ok', 'generator': 'smith',
              'runs': 1, 'checks': 3})
    j.close()
    with open(j.path, 'a') as f:
        f.write('{"event": "unit", "wor')
    recs = j.read()
    assert [r['event'] for r in recs] == ['campaign', 'unit']
    assert jn.resume_state(recs)['checks'] == 3


def test_resume_needs_the_same_tier_and_old_journals_ran_the_interpreter():
    head = {'event': 'campaign', 'seed': 1, 'jobs': 2, 'generators': ['smith'], 'runs': 4,
            'wasmtime': True}
    cfg = dict(head, generators=('smith',), tier='fast', features=jn.OLD['features'])
    del cfg['event']
    assert jn.resumable([dict(head, tier='fast')], cfg) is None
    assert jn.resumable([dict(head, tier='interp')], cfg) == "--tier was 'interp', now 'fast'"
    # a journal written before --tier existed: that campaign interpreted
    assert jn.resumable([head], cfg) == "--tier was 'interp', now 'fast'"
    assert jn.resumable([head], dict(cfg, tier='interp')) is None


def test_resume_needs_the_same_generator_features_and_old_journals_had_no_gc(tmp_path):
    """The features make the modules: a campaign resumed with others
    (``--without``) would not be the one it continues.  A journal written
    before they were journaled ran the defaults of then, without 'gc'."""
    from fuzz import gen, migrate
    cfg = migrate.parse(['--runs', '4', '--out', str(tmp_path)])
    head = dict({k: cfg[k] for k in jn.SAME}, event='campaign')
    assert jn.resumable([head], cfg) is None
    assert jn.resumable([head], migrate.parse(['--runs', '4', '--gc', '--out', str(tmp_path)])) is None
    nogc = migrate.parse(['--runs', '4', '--without', 'gc', '--out', str(tmp_path)])
    assert jn.resumable([head], nogc).startswith('--features was [')
    old = {k: v for k, v in head.items() if k not in ('features', 'tier')}
    assert jn.resumable([old], dict(nogc, tier='interp')) is None
    assert jn.resumable([old], dict(cfg, tier='interp')).startswith('--features was [')
    assert sorted(gen.FEATURES - {'gc'}) == jn.OLD['features']


def test_sigint_stops_a_campaign_started_with_sigint_ignored(tmp_path):
    """A campaign started from a background job inherits SIGINT ignored;
    it still stops on SIGINT (as fuzz.mutants stops one whose fault is
    caught), with a complete summary saying so."""
    out = tmp_path / 'c'
    p = subprocess.Popen([sys.executable, '-m', 'fuzz.migrate', '--jobs', '1', '--time', '120',
                          '--seed', '1', '--out', str(out), '--quiet', '--generator=hypothesis'],
                         cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.time() + 60
        while not (out / 'summary.json').exists() and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(2)
        p.send_signal(signal.SIGINT)
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert json.loads((out / 'summary.json').read_text())['status'] == 'interrupted'


def test_a_resumed_campaign_rechecks_only_the_corpus_it_started_with(tmp_path):
    """Found by the CI gate (a race): the coordinator was killed before
    worker 0 had done its corpus re-check, so the restart re-checked the
    failing inputs the killed part had saved and reported them once more
    under corpus names.  The journal keeps the corpus as it was at the
    start; here the kill is played by cutting the journal after its header."""
    out = tmp_path / 'camp'
    argv = ['-m', 'fuzz.migrate', '--runs', '3', '--jobs', '1', '--generator', 'smith',
            '--seed', '7', '--quiet', '--shrink-seconds', '0', '--no-wasmtime', '--out', str(out)]
    p = subprocess.run([sys.executable, *argv], cwd=ROOT, env=_env(), capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 1, p.stderr[-2000:]
    first = sorted(_summary(out)['failure_dirs'])
    assert os.listdir(out / 'corpus' / 'failing-smith')     # the killed part saved its failures
    journal = out / jn.NAME
    head = journal.read_text().splitlines()[0]
    journal.write_text(head + '\n')                         # killed before anything else was recorded
    p = subprocess.run([sys.executable, *argv], cwd=ROOT, env=_env(), capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 1, p.stderr[-2000:]
    assert json.loads(journal.read_text().splitlines()[0]) == json.loads(head)   # continued, not restarted
    assert sorted(_summary(out)['failure_dirs']) == first                        # no corpus-* re-finds
