"""Tests of the migration oracle, the campaign driver and replay.

Truth: hand-computed results of a small module, the uninterrupted run (for
migrated ones), and the oracle's ability to *fail*: a translator that
corrupts one cell must be reported, or a clean report would prove nothing.
"""

import json
import os
import random
import subprocess
import sys

import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings, strategies as st

from engine.migrate import images as im
from fuzz import gen, migrate, oracle, replay

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNTIMES = oracle.available_runtimes()

# sum of 1..n into an i64 global and memory, returned as i32; with a call
# so that checkpoints land in two-frame states too
WAT = '''
(module
  (memory (export "mem") 1)
  (global $acc (export "acc") (mut i64) (i64.const 0))
  (func $add (param $k i32)
    (global.set $acc (i64.add (global.get $acc) (i64.extend_i32_u (local.get $k))))
    (i32.store (i32.mul (local.get $k) (i32.const 4)) (local.get $k)))
  (func (export "run") (param $n i32) (result i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.gt_u (local.get $i) (local.get $n)))
        (call $add (local.get $i))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.wrap_i64 (global.get $acc))))
'''
N = 10
EXPECTED = N * (N + 1) // 2          # 55


@pytest.fixture(scope='module')
def sum_wasm():
    return wasmtime.wat2wasm(WAT)


def test_uninterrupted_matches_hand_computed(sum_wasm):
    for rt in RUNTIMES:
        out = oracle.uninterrupted(sum_wasm, 'run', (N,), rt)
        assert out.trap is None and out.results == [EXPECTED]
        assert out.globals == [EXPECTED]
        for k in range(N + 1):
            assert int.from_bytes(out.memory[4 * k:4 * k + 4], 'little') == k
        assert out.steps > 50


def test_migration_at_every_step_agrees(sum_wasm):
    total = oracle.uninterrupted(sum_wasm, 'run', (N,)).steps
    for a in RUNTIMES:
        for b in RUNTIMES:
            for n in range(0, total, 3):
                assert oracle.check(sum_wasm, 'run', (N,), [(a, n), (b, None)]) == []


def test_multi_hop_chain_keeps_images(sum_wasm, tmp_path):
    a, b = RUNTIMES[0], RUNTIMES[-1]
    hops = [(a, 20), (b, 15), (a, 30), (b, None)]
    out = oracle.migrated(sum_wasm, 'run', (N,), hops, image_dir=str(tmp_path))
    assert out.results == [EXPECTED]
    assert [rt for rt, _ in out.hops] == [a, b, a]
    assert [s for _, s in out.hops] == [20, 35, 65]
    for i, (rt, _) in enumerate(hops[:-1]):
        nxt = hops[i + 1][0]
        if i % 2 == 0:
            assert im.read_images(str(tmp_path / f'hop{i}')).runtime == rt
            assert im.read_images(str(tmp_path / f'hop{i}-{nxt}')).runtime == nxt
        else:       # the translated set was written over the set the hop read
            assert im.read_images(str(tmp_path / f'hop{i}')).runtime == nxt
            assert not (tmp_path / f'hop{i}-{nxt}').exists()


def test_clamp_keeps_checkpoints_before_the_end():
    assert oracle.clamp([('wasmedge', 500), ('wamr', None)], 40) == [('wasmedge', 39), ('wamr', None)]
    assert oracle.clamp([('wasmedge', 30), ('wamr', 30), ('wasmedge', None)], 40) == \
        [('wasmedge', 30), ('wamr', 9), ('wasmedge', None)]


# ---------------------------------------------------------------- the oracle can fail

def _corrupting(field):
    real = oracle.translate

    def bad(images, module, info, to):
        images = real(images, module, info, to)
        if field == 'cell':
            fr = images.frames[-1]                  # the host-called frame: holds $n and $i
            fr.cells[0] ^= 1
        elif field == 'global':
            t, cells = images.globals[0]
            images.globals[0] = (t, [cells[0] ^ 0x100] + list(cells[1:]))
        elif field == 'memory':
            off = min(images.memory)                # offset -> 4096 bytes
            chunk = images.memory[off]
            images.memory[off] = bytes([chunk[0]]) + bytes([chunk[1] ^ 0xFF]) + chunk[2:]
        return images
    return bad


@pytest.mark.parametrize('field', ['cell', 'global', 'memory'])
def test_oracle_detects_a_corrupted_translation(sum_wasm, monkeypatch, field):
    monkeypatch.setattr(oracle, 'translate', _corrupting(field))
    total = oracle.uninterrupted(sum_wasm, 'run', (N,)).steps
    mismatch = oracle.check(sum_wasm, 'run', (N,), [(RUNTIMES[0], total // 2), (RUNTIMES[-1], None)])
    assert mismatch, f'corrupted {field} went unnoticed'
    assert all(m.startswith('migrated') for m in mismatch)


def test_engine_exception_is_a_mismatch_not_a_crash(sum_wasm, monkeypatch):
    def boom(*a):
        raise KeyError('lost frame')
    monkeypatch.setattr(oracle, 'translate', boom)
    mismatch = oracle.check(sum_wasm, 'run', (N,), [(RUNTIMES[0], 10), (RUNTIMES[0], None)])
    assert len(mismatch) == 1 and 'KeyError' in mismatch[0] and 'lost frame' in mismatch[0]


def test_wasmtime_comparison_catches_a_wrong_result(sum_wasm):
    ref = oracle.uninterrupted(sum_wasm, 'run', (N,))
    assert oracle.compare_wasmtime(sum_wasm, 'run', (N,), ref) == []
    ref.results = [EXPECTED + 1]
    assert oracle.compare_wasmtime(sum_wasm, 'run', (N,), ref)


# ---------------------------------------------------------------- property

@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(gen.modules(), st.randoms(use_true_random=False))
def test_generated_modules_migrate_exactly(gm, rnd):
    """Random checkpoint points, every direction, multi-hop chains."""
    checks, failure = oracle.check_module(gm.wasm, gm.entry, gm.args, rnd, wasmtime=True)
    assert checks > 0
    assert failure is None, (f'args {failure.args} hops {failure.hops}: '
                             + '\n'.join(failure.mismatch) + '\n' + gm.wat)


# ---------------------------------------------------------------- campaign CLI

def _run(*args, env=None, timeout=600):
    e = dict(os.environ)
    e.pop('WASM_MIGRATE_FAULT', None)
    e.update(env or {})
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=e)


def test_campaign_end_to_end(tmp_path):
    out = tmp_path / 'camp'
    p = _run('-m', 'fuzz.migrate', '--runs', '3', '--jobs', '2', '--generator', 'smith',
             '--out', str(out), '--shrink-seconds', '5')
    assert 'Traceback' not in p.stderr, p.stderr
    summary = json.loads((out / 'summary.json').read_text())
    for key in ('runs', 'checks', 'failures', 'elapsed', 'execs_per_sec', 'first_failure_seconds',
                'generators'):
        assert key in summary
    assert summary['generators']['smith']['runs'] == summary['runs'] >= 1
    # the compiled tier by default, recorded in the summary and the journal's header
    assert summary['tier'] == 'fast'
    assert json.loads((out / 'progress.jsonl').read_text().split('\n')[0])['tier'] == 'fast'
    assert summary['checks'] >= summary['runs']
    # status 0 exactly when clean; every failure left a reproducer that replays
    assert p.returncode == (1 if summary['failures'] else 0), p.stdout + p.stderr
    assert (summary['first_failure_seconds'] is None) == (summary['failures'] == 0)
    for d in summary['failure_dirs'].values():
        r = _run('-m', 'fuzz.replay', d)
        assert r.returncode == 1 and r.stdout.strip(), r.stdout + r.stderr


def test_unit_crashing_every_attempt_is_a_crash_finding(tmp_path):
    out = tmp_path / 'crash'
    p = _run('-m', 'fuzz.migrate', '--runs', '3', '--jobs', '1', '--generator', 'smith',
             '--out', str(out), '--quiet', '--retries', '1',
             env={'FUZZ_MIGRATE_SELFTEST': 'crash:1'})
    summary = json.loads((out / 'summary.json').read_text())
    assert p.returncode == 1
    crash = [k for k in summary['failure_dirs'] if k.startswith('crash-')]
    assert crash == ['crash-s0-w0-u1']
    assert json.loads((out / 'failures' / crash[0] / 'case.json').read_text())['unit'] == 1
    assert summary['infra']['lost_attempts'] == 2       # the first try and one retry
    assert summary['units'] == 3                         # units 0 and 2 ran: the worker was restarted


def test_unit_hanging_every_attempt_is_a_hang_finding(tmp_path):
    out = tmp_path / 'hang'
    p = _run('-m', 'fuzz.migrate', '--runs', '2', '--jobs', '1', '--generator', 'smith',
             '--out', str(out), '--quiet', '--case-timeout', '3', '--retries', '1',
             env={'FUZZ_MIGRATE_SELFTEST': 'hang:0'})
    summary = json.loads((out / 'summary.json').read_text())
    assert p.returncode == 1
    assert 'hang-s0-w0-u0' in summary['failure_dirs']
    assert [e['why'] for e in summary['infra']['events']] == ['hang', 'hang']


@pytest.mark.parametrize('args, text', [
    (['--jobs', '0', '--runs', '1'], '--jobs'),
    (['--runs', '1', '--generator', 'afl'], "unknown generator 'afl'"),
    (['--jobs', '1'], '--time'),
    (['--time', '-3'], '--time'),
    (['--jobs', 'many', '--runs', '1'], '--jobs'),
])
def test_usage_errors_exit_2(args, text, tmp_path):
    p = _run('-m', 'fuzz.migrate', '--out', str(tmp_path / 'o'), *args)
    assert p.returncode == 2
    assert text in p.stderr and 'Traceback' not in p.stderr


# ---------------------------------------------------------------- replay

def _failing_case(sum_wasm):
    return {'generator': 'test', 'wasm': sum_wasm, 'entry': 'run', 'args': [N],
            'hops': [(RUNTIMES[0], 40), (RUNTIMES[-1], None)], 'wasmtime': True,
            'mismatch': ['(made by the test)']}


def test_reproducer_replays(sum_wasm, tmp_path, monkeypatch, capsys):
    d = str(tmp_path / 'repro')
    monkeypatch.setattr(oracle, 'translate', _corrupting('cell'))
    migrate.write_reproducer(d, _failing_case(sum_wasm))
    for name in ('module.wasm', 'module.wat', 'case.json', 'replay.txt', 'README', 'images/hop0'):
        assert os.path.exists(os.path.join(d, name)), name
    assert open(os.path.join(d, 'replay.txt')).read().strip() == f'python -m fuzz.replay {d}'
    assert replay.main([d]) == 1
    assert 'migrated' in capsys.readouterr().out
    monkeypatch.undo()
    assert replay.main([d]) == 0
    assert 'no longer fails' in capsys.readouterr().out


def test_replay_errors_are_one_line(tmp_path, sum_wasm):
    p = _run('-m', 'fuzz.replay', str(tmp_path / 'missing'))
    assert p.returncode == 2 and 'not a directory' in p.stderr and 'Traceback' not in p.stderr
    d = tmp_path / 'broken'
    d.mkdir()
    (d / 'module.wasm').write_bytes(sum_wasm)
    (d / 'case.json').write_text('{"entry": "run", "args": [1], "hops": [["wamr", 3]]}')
    p = _run('-m', 'fuzz.replay', str(d))
    assert p.returncode == 2 and 'hops[0]' in p.stderr and 'Traceback' not in p.stderr
    (d / 'case.json').write_text('{"entry": "run", "args": [-1], "hops": [["wamr", null]]}')
    p = _run('-m', 'fuzz.replay', str(d))
    assert p.returncode == 2 and "'args'" in p.stderr and 'Traceback' not in p.stderr


def test_plans_cover_every_direction_and_multi_hop():
    ps = oracle.plans(random.Random(1), 100, ('wasmedge', 'wamr'))
    singles = {(p[0][0], p[1][0]) for p in ps if len(p) == 2}
    assert singles >= {('wasmedge', 'wasmedge'), ('wasmedge', 'wamr'),
                       ('wamr', 'wasmedge'), ('wamr', 'wamr')}
    assert singles >= {('wasmedge', 'neutral:wamr'), ('wamr', 'neutral:wasmedge')}
    multi = [[rt for rt, _ in p] for p in ps if len(p) == 4]
    assert ['wasmedge', 'neutral:wamr', 'wasmedge', 'wamr'] in multi
    assert ['wamr', 'neutral:wasmedge', 'wamr', 'wasmedge'] in multi
    for p in ps:
        assert sum(n for _, n in p[:-1]) < 100
    # the last instruction, where every label a branch forgot to pop is still held
    assert [('wasmedge', 99), ('wamr', None)] in ps and [('wamr', 99), ('wasmedge', None)] in ps


def test_atheris_mismatches_are_saved_while_the_session_runs(tmp_path, monkeypatch):
    """A session's collected mismatch is checked when it appears (once, and
    not while its file is still being written), not only when the session
    ends; at most ATHERIS_MAX_FAILURES per session."""
    seen = []
    monkeypatch.setattr(migrate.Worker, 'unit_bytes',
                        lambda self, g, unit, data, fid, found: seen.append((fid, data)))
    w = migrate.Worker(None, {'seed': 3, 'out': str(tmp_path), 'wasmtime': False}, 1)
    handled = []
    (tmp_path / 'mismatch-b').write_bytes(b'B')
    (tmp_path / 'mismatch-c.tmp').write_bytes(b'C')
    (tmp_path / 'log').write_text('')
    w.atheris_artifacts(7, str(tmp_path), handled, ('mismatch',))
    assert seen == [('atheris-s3-w1-u7-0', b'B')]
    os.replace(tmp_path / 'mismatch-c.tmp', tmp_path / 'mismatch-c')
    for k in 'adef':
        (tmp_path / f'mismatch-{k}').write_bytes(k.encode())
    w.atheris_artifacts(7, str(tmp_path), handled, ('mismatch', 'crash'))
    assert seen[1:] == [('atheris-s3-w1-u7-1', b'a'), ('atheris-s3-w1-u7-2', b'C')]
    assert len(handled) == migrate.ATHERIS_MAX_FAILURES == 3


# ---------------------------------------------------------------- tiers

@pytest.fixture
def executors(monkeypatch):
    """(model, tier of the store, executor class) of every executor made."""
    from engine import runtime
    made = []
    real = runtime.Store.new_executor

    def recording(self, kind=None, tier=None):
        ex = real(self, kind, tier)
        made.append((kind or self.executor, self.tier, type(ex).__module__.split('.')[-1]))
        return ex
    monkeypatch.setattr(runtime.Store, 'new_executor', recording)
    return made


def test_campaign_worker_runs_the_fast_tier_by_default(tmp_path, executors):
    """The default campaign configuration checks under the compiled tier:
    every executor of the checks in either model (the uninterrupted runs and
    each restored hop of a single-checkpoint plan) is the compiled tier's,
    except those of the tier check (one run per model), the multi-hop chains
    and the generator's stops, which are the interpreter's
    (oracle.check_module)."""
    cfg = migrate.parse(['--runs', '1', '--out', str(tmp_path), '--no-wasmtime'])
    assert cfg['tier'] == 'fast'
    w = migrate.Worker(None, cfg, 0)
    checks, failure, gm = w.bytes_case('atheris', bytes(range(200)))
    assert failure is None and checks > 3
    assert {t for _, t, _ in executors} == {'fast', 'interp'}
    for model in ('wasmedge', 'wamr'):
        made = [(t, cls) for m, t, cls in executors if m == model]
        interp = [x for x in made if x[1] == model]
        # per argument tuple: the tier check's run, and the chains' and the
        # stops' hops in the model
        assert interp and all(t == 'interp' for t, _ in interp)
        assert len(interp) >= min(2, len(gm.args))
        assert all(cls == f'fast_{model}' for t, cls in made if t == 'fast')
    assert sum(1 for m, t, cls in executors if cls == 'fast_wasmedge') > 2 * min(2, len(gm.args))
    cfg = migrate.parse(['--runs', '1', '--out', str(tmp_path), '--tier', 'interp'])
    assert cfg['tier'] == 'interp'


def _one_more(real):
    """``real`` (a run method) counting one instruction more at the end."""
    def one_more(self, max_steps=None):
        done = real(self, max_steps)
        if done:
            self.steps += 1
        return done
    return one_more


def test_tier_disagreement_is_a_failure(sum_wasm, monkeypatch):
    """A compiled tier that counts one instruction more (or computes a
    different value) than the interpreter is reported by check_module,
    naming both tiers; likewise when the campaign runs the interpreter."""
    from engine.exec import fast_wasmedge
    real = fast_wasmedge.FastExecutor.run
    rnd = random.Random(0)
    total = oracle.uninterrupted(sum_wasm, 'run', (N,)).steps
    # the plans, the tier check of each model, the uninterrupted run of each other model
    assert oracle.check_module(sum_wasm, 'run', [(N,)], rnd, wasmtime=False) == (
        len(list(oracle.plans(random.Random(0), total, RUNTIMES))) + 2 * len(RUNTIMES) - 1, None)
    monkeypatch.setattr(fast_wasmedge.FastExecutor, 'run', _one_more(real))
    for tier, other in (('fast', 'interp'), ('interp', 'fast')):
        checks, failure = oracle.check_module(sum_wasm, 'run', [(N,)], rnd, wasmtime=False, tier=tier)
        assert checks == 1 and failure.hops == [('wasmedge', None)]
        line, = failure.mismatch
        assert f'under the {other} tier (against the {tier} tier)' in line
        assert 'instructions executed' in line
    monkeypatch.setattr(fast_wasmedge.FastExecutor, 'run', real)

    def wrong(self, max_steps=None):
        done = real(self, max_steps)
        if done and self.results:
            self.results = [self.results[0] + 1]
        return done
    monkeypatch.setattr(fast_wasmedge.FastExecutor, 'run', wrong)
    _, failure = oracle.check_module(sum_wasm, 'run', [(N,)], rnd, wasmtime=False)
    assert f'results [{hex(EXPECTED)}], expected [{hex(EXPECTED + 1)}]' in failure.mismatch[0]
    monkeypatch.setattr(fast_wasmedge.FastExecutor, 'run', real)
    # the WAMR model's compiled tier is checked the same way, after the
    # WasmEdge tier check and WAMR's uninterrupted run
    if 'wamr' in RUNTIMES:
        from engine.exec import fast_wamr
        monkeypatch.setattr(fast_wamr.FastExecutor, 'run', _one_more(fast_wamr.FastExecutor.run))
        # under the fast tier the count relation between the models sees it
        # first (fuzz/countcheck.py); under the interpreter, the tier check
        checks, failure = oracle.check_module(sum_wasm, 'run', [(N,)], rnd, wasmtime=False)
        assert checks == 2 and failure.hops == [('wamr', None)]
        checks, failure = oracle.check_module(sum_wasm, 'run', [(N,)], rnd, wasmtime=False,
                                              tier='interp')
        assert checks == 3 and failure.hops == [('wamr', None)]
        line, = failure.mismatch
        assert line.startswith('uninterrupted wamr under the fast tier (against the interp tier): ')


def test_replay_honours_the_recorded_tier(sum_wasm, tmp_path, executors, capsys):
    """case.json's tier is the tier of every replayed run; a reproducer
    written before the field existed replays under the interpreter."""
    case = dict(_failing_case(sum_wasm), wasmtime=False)
    for tier, cls in (('fast', 'fast_wasmedge'), ('interp', 'wasmedge'), (None, 'wasmedge')):
        d = tmp_path / f'repro-{tier}'
        migrate.write_reproducer(str(d), dict(case, tier=tier or 'fast'), images=False)
        meta = json.loads((d / 'case.json').read_text())
        assert meta['tier'] == (tier or 'fast')
        if tier is None:
            del meta['tier']
            (d / 'case.json').write_text(json.dumps(meta))
        del executors[:]
        assert replay.main([str(d)]) == 0
        assert {c for m, _, c in executors if m == 'wasmedge'} == {cls}
    meta['tier'] = 'jit'
    (d / 'case.json').write_text(json.dumps(meta))
    assert replay.main([str(d)]) == 2
    assert "field 'tier' = 'jit'" in capsys.readouterr().err
