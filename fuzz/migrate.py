"""The migration fuzzing campaign.

    python -m fuzz.migrate --jobs 8 [--time S] [--runs N] [--seed X]
                           [--generator hypothesis|atheris|smith|mix|LIST] [--out DIR]

Worker processes generate modules and check them with ``fuzz.oracle``
(uninterrupted vs migrated at several random checkpoints, single hops in
every direction and multi-hop chains, plus wasmtime).  The work is a
sequence of *units* numbered k = worker, worker + jobs, ...; unit k is a
function of (seed, worker, k) only, so a campaign replays exactly:

* ``hypothesis``: a seeded hypothesis session of ``HYPOTHESIS_EXAMPLES``
  examples of ``fuzz.gen.modules()``, its first failure shrunk by hypothesis;
* ``smith``: ``fuzz.smith.from_bytes`` on seeded random bytes, shrunk by
  cutting those bytes and the hop chain;
* ``atheris``: a short coverage-guided libFuzzer session
  (``fuzz.atheris_target``) over the shared corpus, whose crash inputs are
  shrunk like smith's.

``--runs N`` caps the number of units, ``--time S`` the wall time.  The
output directory holds ``corpus/`` (inputs worth re-running: every failing
input is re-checked first on the next start; atheris keeps its coverage
corpus there; hypothesis its example database), ``failures/<id>/`` (one
reproducer per failure, written atomically: module.wasm, module.wat,
case.json, images/ of every hop, replay.txt) and ``summary.json``.

A worker that crashes or exceeds the per-case timeout is killed and
restarted after its case is recorded as a failure.  Exit status: 0 clean,
1 failures, 2 usage error.
"""

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from multiprocessing.connection import wait

from engine.images import atomic_dir

GENERATORS = ('hypothesis', 'smith', 'atheris')
MIX_WEIGHTS = (('hypothesis', 5), ('smith', 3), ('atheris', 2))
CASE_TIMEOUT = 120          # seconds without a sign of life from a worker
ATHERIS_SESSION = 20        # seconds per atheris unit
HYPOTHESIS_EXAMPLES = 20   # examples per hypothesis unit (its first ones are tiny)
ATHERIS_MAX_FAILURES = 3   # failing inputs of one session that are shrunk and saved
SHRINK_SECONDS = 30         # minimisation budget per failure
GRACE = 45                  # after --time, how long workers may finish minimising


class UsageError(Exception):
    pass


# ================================================================ reproducers

def write_reproducer(directory, case, images=True):
    """A reproducer folder for ``case`` (a dict: wasm, entry, args, hops,
    mismatch, wasmtime, generator, ...)."""
    from fuzz import gen, oracle

    def fill(tmp):
        with open(os.path.join(tmp, 'module.wasm'), 'wb') as f:
            f.write(case['wasm'])
        try:
            wat = gen.wasm_to_wat(case['wasm'])
        except Exception as e:
            wat = f'(; wasm-tools print failed: {e} ;)'
        with open(os.path.join(tmp, 'module.wat'), 'w') as f:
            f.write(wat)
        meta = {k: v for k, v in case.items() if k not in ('wasm', 'input')}
        meta['args'] = [oracle.encode_value(v) for v in case['args']]
        meta['hops'] = [[rt, n] for rt, n in case['hops']]
        meta['module_sha256'] = hashlib.sha256(case['wasm']).hexdigest()
        if case.get('input') is not None:
            meta['input_hex'] = bytes(case['input']).hex()
        if images and len(case['hops']) > 1:
            # the image sets of every hop, as the failing run wrote them
            try:
                oracle.migrated(case['wasm'], case['entry'], tuple(case['args']), case['hops'],
                                image_dir=os.path.join(tmp, 'images'))
            except Exception as e:
                meta['images_note'] = f'run stopped early: {type(e).__name__}: {e}'
        with open(os.path.join(tmp, 'case.json'), 'w') as f:
            json.dump(meta, f, indent=1)
            f.write('\n')
        cmd = f'python -m fuzz.replay {os.path.abspath(directory)}'
        with open(os.path.join(tmp, 'replay.txt'), 'w') as f:
            f.write(cmd + '\n')
        with open(os.path.join(tmp, 'README'), 'w') as f:
            f.write(f'Migration fuzzing failure ({case.get("generator")}).\n\n'
                    + '\n'.join(case['mismatch']) + '\n\n'
                    f'Replay: {cmd}\n'
                    'case.json: entry, args (bit patterns; null = null ref), hops '
                    '([runtime, instructions run before the checkpoint], the last runs to the end).\n'
                    'images/hop<i>: the set saved at checkpoint i; images/hop<i>-<runtime>: '
                    'it translated for the next hop.\n')
    atomic_dir(directory, fill)


# ================================================================ worker side

def _unit_rng(seed, worker, k):
    h = hashlib.sha256(f'{seed}:{worker}:{k}'.encode()).digest()
    return random.Random(h)


def _pick_generator(gens, rng):
    if len(gens) == 1:
        return gens[0]
    weights = dict(MIX_WEIGHTS)
    return rng.choices(gens, [weights[g] for g in gens])[0]


class Worker:
    """Runs units and reports to the parent over a pipe (synchronous sends,
    so nothing is lost if the process dies right after)."""

    def __init__(self, conn, cfg, worker):
        self.conn, self.cfg, self.worker = conn, cfg, worker
        self.wasmtime = cfg['wasmtime']
        self.reused = False

    def send(self, *msg):
        self.conn.send(msg)

    # -- one failing case, saved at once and again when minimised
    def failed(self, fid, case, minimized):
        case = dict(case, minimized=minimized, worker=self.worker, seed=self.cfg['seed'])
        try:
            write_reproducer(os.path.join(self.cfg['out'], 'failures', fid), case)
        except Exception as e:
            case['mismatch'] = case['mismatch'] + [f'(writing the reproducer failed: {e})']
        self.send('fail', fid, {k: v for k, v in case.items()}, minimized)

    def _case(self, gm, failure, generator, unit, data=None):
        return {'generator': generator, 'unit': unit, 'wasm': gm.wasm, 'entry': gm.entry,
                'args': list(failure.args), 'hops': [tuple(h) for h in failure.hops],
                'mismatch': failure.mismatch, 'wasmtime': self.wasmtime, 'input': data}

    # -- byte-driven generators
    def bytes_case(self, generator, data):
        """(checks, failure, module) for input bytes of a byte generator."""
        from fuzz import gen, oracle, smith
        if generator == 'smith':
            gm = smith.from_bytes(data)
            if gm is None:
                return 0, None, None
        else:
            gm = gen.from_bytes(data)
        checks, failure = oracle.check_module(gm.wasm, gm.entry, gm.args, oracle.case_rng(data),
                                              wasmtime=self.wasmtime)
        return checks, failure, gm

    def shrink_bytes(self, generator, data, gm, failure):
        """Cut chunks out of the input while some check still fails, then
        shorten the hop chain; the smallest failing case within the budget."""
        from fuzz import oracle
        deadline = time.time() + self.cfg['shrink_seconds']
        best, best_gm, best_fail = data, gm, failure
        chunk = max(1, len(best) // 2)
        while chunk >= 1 and time.time() < deadline:
            i, changed = 0, False
            while i < len(best) and time.time() < deadline:
                cand = best[:i] + best[i + chunk:]
                self.send('beat')
                try:
                    _, f, g = self.bytes_case(generator, cand)
                except Exception:
                    f = None
                if f is not None:
                    best, best_gm, best_fail, changed = cand, g, f, True
                else:
                    i += chunk
            if not changed:
                chunk //= 2
        hops = shrink_hops(best_gm.wasm, best_gm.entry, best_fail, deadline + 10, self.send)
        return best, best_gm, oracle.Failure(best_fail.args, hops[0], hops[1])

    def unit_bytes(self, generator, unit, data, fid=None, found=None):
        from fuzz import oracle
        self.send('start', unit, generator)
        fid = fid or f'{generator}-s{self.cfg["seed"]}-w{self.worker}-u{unit}'
        try:
            checks, failure, gm = self.bytes_case(generator, data)
        except Exception as e:      # the generator itself broke: still a reproducer
            self.save_input(generator, data)
            self.failed(fid, {'generator': generator, 'unit': unit, 'wasm': b'', 'entry': '',
                              'args': [], 'hops': [('wasmedge', None)], 'input': data,
                              'wasmtime': self.wasmtime,
                              'mismatch': [f'generator failed: {type(e).__name__}: {e}'
                                           + oracle._where(e)]}, False)
            return
        self.send('checks', 1, checks)
        if failure is None:
            return
        self.save_input(generator, data)
        self.failed(fid, dict(self._case(gm, failure, generator, unit, data), found_at=found or time.time()),
                    False)
        data, gm, failure = self.shrink_bytes(generator, data, gm, failure)
        self.failed(fid, self._case(gm, failure, generator, unit, data), True)

    def save_input(self, generator, data):
        d = os.path.join(self.cfg['out'], 'corpus', f'failing-{generator}')
        os.makedirs(d, exist_ok=True)
        name = hashlib.sha1(data).hexdigest()
        tmp = os.path.join(d, '.' + name)
        with open(tmp, 'wb') as f:
            f.write(data)
        os.replace(tmp, os.path.join(d, name))

    # -- hypothesis
    def unit_hypothesis(self, unit, rng):
        from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
        from hypothesis import strategies as st
        from hypothesis.database import DirectoryBasedExampleDatabase
        from fuzz import gen, oracle
        state = {'first': None, 'last': None, 'deadline': None}
        fid = f'hypothesis-s{self.cfg["seed"]}-w{self.worker}-u{unit}'
        db = DirectoryBasedExampleDatabase(os.path.join(self.cfg['out'], 'corpus', 'hypothesis'))
        # the saved failing examples are replayed once, by worker 0's first
        # hypothesis unit: replaying them in every unit would only find them again
        phases = [Phase.generate, Phase.shrink]
        if self.worker == 0 and not self.reused:
            phases.insert(0, Phase.reuse)
            self.reused = True

        class Mismatch(Exception):
            pass

        class StopShrinking(BaseException):
            pass

        @seed(rng.getrandbits(64))
        @settings(max_examples=HYPOTHESIS_EXAMPLES, database=db, deadline=None, print_blob=False,
                  verbosity=Verbosity.quiet,
                  suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
                  phases=phases)
        @given(gen.modules(), st.randoms(use_true_random=False))
        def prop(gm, rnd):
            if state['deadline'] and time.time() > state['deadline']:
                raise StopShrinking()
            self.send('beat')
            checks, failure = oracle.check_module(gm.wasm, gm.entry, gm.args, rnd,
                                                  wasmtime=self.wasmtime)
            if not state['first']:
                self.send('checks', 1, checks)
            if failure is not None:
                case = self._case(gm, failure, 'hypothesis', unit)
                if not state['first']:
                    state['first'] = case
                    state['deadline'] = time.time() + self.cfg['shrink_seconds']
                    self.failed(fid, case, False)
                state['last'] = (gm, failure)
                raise Mismatch('; '.join(failure.mismatch))
            if state['first'] is None:
                state['first'] = False

        self.send('start', unit, 'hypothesis')
        try:
            prop()
        except (Mismatch, StopShrinking):
            pass
        except Exception as e:
            # hypothesis itself; when shrinking was cut short, its replay of
            # the last example stops drawing early and it reports "flaky"
            if state['last'] is None:
                raise
            if not (state['deadline'] and time.time() > state['deadline']):
                self.send('note', f'hypothesis: {type(e).__name__}: {str(e)[:300]}')
        if state['last'] is not None:
            gm, failure = state['last']
            hops = shrink_hops(gm.wasm, gm.entry, failure, time.time() + 10, self.send)
            failure = oracle.Failure(failure.args, hops[0], hops[1])
            self.failed(fid, self._case(gm, failure, 'hypothesis', unit), True)

    # -- atheris
    def unit_atheris(self, unit, rng, budget):
        """A libFuzzer session in a child process; its crash inputs are
        re-checked and shrunk here."""
        base = os.path.join(self.cfg['out'], 'corpus')
        corpus = os.path.join(base, 'atheris')
        os.makedirs(corpus, exist_ok=True)
        if len(os.listdir(corpus)) < 4:
            # libFuzzer starts from one empty input and grows it slowly, and
            # short inputs make trivial modules: start from full-size ones
            for _ in range(8):
                data = rng.randbytes(rng.randint(256, 2048))
                with open(os.path.join(corpus, hashlib.sha1(data).hexdigest()), 'wb') as f:
                    f.write(data)
        work = tempfile.mkdtemp(prefix=f'atheris-w{self.worker}-', dir=base)
        stats = os.path.join(work, 'stats')
        env = dict(os.environ, FUZZ_STATS=stats, FUZZ_COLLECT=work, FUZZ_WASMTIME='1' if self.wasmtime else '0')
        seconds = max(1, int(budget))
        cmd = [sys.executable, '-m', 'fuzz.atheris_target', f'-seed={rng.getrandbits(31) + 1}',
               f'-max_total_time={seconds}', '-max_len=4096', '-len_control=0', f'-timeout={CASE_TIMEOUT // 2}',
               '-rss_limit_mb=4096', f'-artifact_prefix={work}/', corpus]
        self.send('start', unit, 'atheris')
        log = open(os.path.join(work, 'log'), 'w')
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                preexec_fn=_die_with_parent,
                                cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        limit = time.time() + seconds + 60
        while proc.poll() is None:
            if time.time() > limit:
                proc.kill()
                proc.wait()
                break
            self.send('beat')
            time.sleep(1)
        log.close()
        try:
            with open(stats) as f:
                execs, checks = map(int, f.read().split())
        except (OSError, ValueError):
            execs = checks = 0
        self.send('checks', execs, checks)
        artifacts = sorted(n for n in os.listdir(work) if n.split('-')[0] in ('mismatch', 'crash', 'timeout', 'oom', 'leak'))
        artifacts = artifacts[:ATHERIS_MAX_FAILURES]
        for n, name in enumerate(artifacts):
            with open(os.path.join(work, name), 'rb') as f:
                data = f.read()
            fid = f'atheris-s{self.cfg["seed"]}-w{self.worker}-u{unit}-{n}'
            found = os.path.getmtime(os.path.join(work, name))   # when libFuzzer saw it
            if name.startswith(('mismatch', 'crash')):
                self.unit_bytes('atheris', unit, data, fid, found)
                continue
            from fuzz import gen
            gm = gen.from_bytes(data)
            with open(os.path.join(work, 'log')) as f:
                tail = f.read()[-2000:]
            self.failed(fid, {'generator': 'atheris', 'unit': unit, 'wasm': gm.wasm, 'entry': gm.entry,
                              'args': list(gm.args[0]), 'hops': [('wasmedge', None)],
                              'mismatch': [f'libFuzzer {name.split("-")[0]}: {tail}'],
                              'wasmtime': self.wasmtime, 'input': data}, False)
        shutil.rmtree(work, ignore_errors=True)

    # -- the loop
    def rerun_corpus(self):
        """Saved failing inputs first (worker 0 only: one re-check is enough)."""
        base = os.path.join(self.cfg['out'], 'corpus')
        for generator in ('smith', 'atheris'):
            d = os.path.join(base, f'failing-{generator}')
            if not os.path.isdir(d):
                continue
            for name in sorted(os.listdir(d)):
                if name.startswith('.'):
                    continue
                if self.cfg['deadline'] and time.time() > self.cfg['deadline']:
                    return
                with open(os.path.join(d, name), 'rb') as f:
                    data = f.read()
                self.unit_bytes(generator, f'corpus-{name[:12]}', data,
                                f'{generator}-corpus-{name[:12]}')

    def run(self, start_unit):
        cfg = self.cfg
        if self.worker == 0 and start_unit == 0:
            self.rerun_corpus()
        k = start_unit
        while True:
            if cfg['runs'] is not None and k >= cfg['runs']:
                break
            if cfg['deadline'] and time.time() > cfg['deadline']:
                break
            rng = _unit_rng(cfg['seed'], self.worker, k)
            generator = _pick_generator(cfg['generators'], rng)
            self.send('unit', k)
            self_test(k)
            if generator == 'hypothesis':
                self.unit_hypothesis(k, rng)
            elif generator == 'smith':
                data = rng.randbytes(rng.randint(64, 2048))
                self.unit_bytes('smith', k, data)
            else:
                left = (cfg['deadline'] - time.time()) if cfg['deadline'] else ATHERIS_SESSION
                self.unit_atheris(k, rng, min(ATHERIS_SESSION, max(1, left)))
            self.send('done', k)
            k += cfg['jobs']
        self.send('exit')


def signature(mismatch):
    """What kind of failure this is, without the case's numbers: failures
    with one signature are most likely one bug."""
    import re
    first = mismatch[0] if mismatch else ''
    first = re.sub(r'^migrated( run)? [^:]*: (hop \d+ \([^)]*\) at step \d+, )?', 'migrated: ', first)
    return re.sub(r'0x[0-9a-f]+|\d+', 'N', first)[:200]


def _die_with_parent():
    """In the libFuzzer child: be killed when the worker is (a hung worker
    is killed by the campaign, and must not leave a fuzzer running)."""
    try:
        import ctypes
        import signal
        ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except Exception:
        pass


def self_test(unit):
    """``FUZZ_MIGRATE_SELFTEST=crash:K`` or ``hang:K`` makes a worker die or
    hang at unit K: how the tests prove that the campaign survives both."""
    spec = os.environ.get('FUZZ_MIGRATE_SELFTEST', '')
    kind, _, k = spec.partition(':')
    if k.isdigit() and int(k) == unit:
        if kind == 'crash':
            os._exit(3)
        if kind == 'hang':
            time.sleep(3600)


def shrink_hops(wasm, entry, failure, deadline, beat):
    """A shorter hop chain that still fails: drop checkpoints one at a time
    (a dropped hop's instructions go to the hop after it).  A failure of
    the uninterrupted run (one hop) has nothing to shorten."""
    from fuzz import oracle
    hops, mismatch = list(failure.hops), failure.mismatch
    changed = True
    while changed and len(hops) > 2 and time.time() < deadline:
        changed = False
        for i in range(len(hops) - 1):
            cand = hops[:i] + hops[i + 1:]
            if cand[i][1] is not None:
                cand[i] = (cand[i][0], cand[i][1] + hops[i][1])
            beat('beat')
            m = oracle.check(wasm, entry, failure.args, cand, wasmtime=False)
            if m:
                hops, mismatch, changed = cand, m, True
                break
    return hops, mismatch


def worker_main(conn, cfg, worker, start_unit):
    w = Worker(conn, cfg, worker)
    try:
        w.run(start_unit)
    except BaseException as e:
        try:
            w.send('crash', f'{type(e).__name__}: {e}\n{traceback.format_exc()}')
        except Exception:
            pass
        raise


# ================================================================ parent side

class Campaign:
    def __init__(self, cfg):
        self.cfg = cfg
        self.start = time.time()
        self.runs = self.checks = 0
        self.failures = {}              # id -> case summary
        self.first_failure = None
        self.per_gen = {g: {'runs': 0, 'checks': 0, 'failures': 0} for g in cfg['generators']}
        self.workers = {}               # id -> state dict
        self.notes = []
        self.last_line = 0

    def spawn(self, w, start_unit):
        ctx = multiprocessing.get_context('spawn')
        rd, wr = ctx.Pipe(duplex=False)
        p = ctx.Process(target=worker_main, args=(wr, self.cfg, w, start_unit), daemon=True)
        p.start()
        wr.close()
        self.workers[w] = {'proc': p, 'conn': rd, 'unit': start_unit, 'case': None,
                           'generator': None, 'last': time.time(), 'exited': False}

    def record_failure(self, fid, case, minimized):
        if fid not in self.failures:
            at = min(case.get('found_at') or time.time(), time.time()) - self.start
            if self.first_failure is None or at < self.first_failure:
                self.first_failure = max(0.0, at)
            g = case.get('generator')
            if g in self.per_gen:
                self.per_gen[g]['failures'] += 1
        self.failures[fid] = {'generator': case.get('generator'), 'mismatch': case['mismatch'][:3],
                              'signature': signature(case['mismatch']),
                              'minimized': minimized,
                              'dir': os.path.join(self.cfg['out'], 'failures', fid)}

    def lost_worker(self, w, why):
        """A worker died or hung: record its unit as a failure, restart it."""
        st = self.workers[w]
        unit, generator = st['unit'], st['generator'] or 'unknown'
        fid = f'{why}-s{self.cfg["seed"]}-w{w}-u{unit}'
        case = {'generator': generator, 'unit': unit, 'mismatch': [f'worker {why} in unit {unit} ({generator})'
                                                                  + (f': {st.get("crash")}' if st.get('crash') else '')]}
        self.record_failure(fid, case, False)
        d = os.path.join(self.cfg['out'], 'failures', fid)

        def fill(tmp):
            with open(os.path.join(tmp, 'case.json'), 'w') as f:
                json.dump(dict(case, seed=self.cfg['seed'], worker=w, kind=why,
                               rerun=f'python -m fuzz.migrate --jobs {self.cfg["jobs"]} --seed {self.cfg["seed"]} '
                                     f'--generator {",".join(self.cfg["generators"])}'), f, indent=1)
            with open(os.path.join(tmp, 'README'), 'w') as f:
                f.write(f'Worker {w} {why} while running unit {unit} ({generator}); the unit is a function of '
                        f'(seed, worker, unit), so rerunning the campaign with the same --seed and --jobs repeats it.\n')
        atomic_dir(d, fill)
        self.notes.append(case['mismatch'][0])
        next_unit = unit + self.cfg['jobs']
        if not self.time_up() and (self.cfg['runs'] is None or next_unit < self.cfg['runs']):
            self.spawn(w, next_unit)
        else:
            del self.workers[w]

    def time_up(self):
        return self.cfg['deadline'] is not None and time.time() > self.cfg['deadline']

    def handle(self, w, msg):
        st = self.workers[w]
        st['last'] = time.time()
        kind = msg[0]
        if kind == 'unit':
            st['unit'] = msg[1]
        elif kind == 'start':
            st['generator'] = msg[2]
        elif kind == 'checks':
            self.runs += msg[1]
            self.checks += msg[2]
            g = st['generator']
            if g in self.per_gen:
                self.per_gen[g]['runs'] += msg[1]
                self.per_gen[g]['checks'] += msg[2]
        elif kind == 'fail':
            self.record_failure(msg[1], msg[2], msg[3])
        elif kind == 'crash':
            st['crash'] = msg[1].splitlines()[0]
            self.notes.append(f'worker {w}: {msg[1]}')
        elif kind == 'note':
            self.notes.append(msg[1])
        elif kind == 'exit':
            st['exited'] = True

    def progress(self, final=False):
        el = time.time() - self.start
        tty = sys.stderr.isatty()
        if not (tty or final or el - self.last_line >= 10):
            return
        self.last_line = el
        line = (f'\r[{el:6.0f}s] runs {self.runs} ({self.runs / el if el else 0:.1f}/s)  '
                f'checks {self.checks}  failures {len(self.failures)}  workers {len(self.workers)}  ')
        if self.cfg['progress']:
            sys.stderr.write(line + ('\n' if final or not tty else ''))
            sys.stderr.flush()

    def loop(self):
        for w in range(self.cfg['jobs']):
            self.spawn(w, w)
        last_progress = 0
        while self.workers:
            conns = {st['conn']: w for w, st in self.workers.items()}
            for c in wait(list(conns), timeout=0.5):
                w = conns[c]
                try:
                    while c.poll():
                        self.handle(w, c.recv())
                except (EOFError, OSError):
                    st = self.workers[w]
                    st['proc'].join(5)
                    if st['exited']:
                        del self.workers[w]
                    else:
                        self.lost_worker(w, 'crash')
            now = time.time()
            for w, st in list(self.workers.items()):
                hard = self.cfg['deadline'] is not None and now > self.cfg['deadline'] + self.cfg['grace']
                if now - st['last'] > self.cfg['case_timeout'] or hard:
                    st['proc'].kill()          # the process this campaign started
                    st['proc'].join()
                    if hard:
                        self.notes.append(f'worker {w} stopped {self.cfg["grace"]}s after --time '
                                          f'(unit {st["unit"]} unfinished)')
                        del self.workers[w]
                    else:
                        self.lost_worker(w, 'hang')
            if now - last_progress > 1:
                self.progress()
                last_progress = now
        self.progress(final=True)

    def summary(self):
        el = time.time() - self.start
        sigs = {}
        for fid, f in sorted(self.failures.items()):
            sigs.setdefault(f['signature'], []).append(fid)
        return {'runs': self.runs, 'checks': self.checks, 'failures': len(self.failures),
                'distinct_failures': len(sigs), 'signatures': sigs,
                'elapsed': round(el, 3), 'execs_per_sec': round(self.runs / el, 3) if el else 0.0,
                'first_failure_seconds': None if self.first_failure is None else round(self.first_failure, 3),
                'generators': self.per_gen, 'seed': self.cfg['seed'], 'jobs': self.cfg['jobs'],
                'runtimes': list(self.cfg['runtimes']),
                'failure_dirs': {k: v['dir'] for k, v in sorted(self.failures.items())},
                'failure_details': self.failures, 'notes': self.notes[-20:]}


def parse(argv):
    p = argparse.ArgumentParser(prog='python -m fuzz.migrate', description=__doc__.split('\n\n')[0])
    p.add_argument('--jobs', type=int, default=os.cpu_count() or 1, help='worker processes')
    p.add_argument('--time', type=float, help='stop starting new units after S seconds')
    p.add_argument('--runs', type=int, help='number of units (modules; an atheris unit is a session)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--generator', default='mix',
                   help='hypothesis, smith, atheris, mix (all), or a comma-separated list')
    p.add_argument('--out', default='fuzz-out', help='corpus, failures and summary.json go here')
    p.add_argument('--no-wasmtime', action='store_true', help='skip the wasmtime comparison')
    p.add_argument('--case-timeout', type=float, default=CASE_TIMEOUT)
    p.add_argument('--shrink-seconds', type=float, default=SHRINK_SECONDS)
    p.add_argument('--quiet', action='store_true', help='no progress line')
    a = p.parse_args(argv)
    if a.jobs < 1:
        raise UsageError(f'--jobs must be at least 1, got {a.jobs}')
    if a.time is not None and a.time <= 0:
        raise UsageError(f'--time must be positive, got {a.time}')
    if a.runs is not None and a.runs < 1:
        raise UsageError(f'--runs must be at least 1, got {a.runs}')
    if a.time is None and a.runs is None:
        raise UsageError('give --time S and/or --runs N (a campaign must end)')
    gens = GENERATORS if a.generator == 'mix' else tuple(g.strip() for g in a.generator.split(','))
    for g in gens:
        if g not in GENERATORS:
            raise UsageError(f'--generator: unknown generator {g!r} (expected {", ".join(GENERATORS)} or mix)')
    if a.case_timeout <= 0 or a.shrink_seconds < 0:
        raise UsageError('--case-timeout must be positive and --shrink-seconds not negative')
    out = os.path.abspath(a.out)
    try:
        os.makedirs(os.path.join(out, 'failures'), exist_ok=True)
        os.makedirs(os.path.join(out, 'corpus'), exist_ok=True)
    except OSError as e:
        raise UsageError(f'--out {a.out}: cannot create directory: {e.strerror}')
    if not os.access(out, os.W_OK):
        raise UsageError(f'--out {a.out}: not writable')
    from fuzz.oracle import available_runtimes
    return {'jobs': a.jobs, 'runs': a.runs, 'seed': a.seed, 'generators': tuple(dict.fromkeys(gens)),
            'out': out, 'wasmtime': not a.no_wasmtime, 'case_timeout': a.case_timeout,
            'shrink_seconds': a.shrink_seconds, 'progress': not a.quiet, 'time': a.time,
            'grace': GRACE, 'runtimes': available_runtimes(), 'deadline': None}


def main(argv=None):
    try:
        cfg = parse(argv)
    except UsageError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    c = Campaign(cfg)
    cfg['deadline'] = None if cfg['time'] is None else c.start + cfg['time']
    try:
        c.loop()
    except KeyboardInterrupt:
        for st in c.workers.values():
            st['proc'].kill()
        c.notes.append('interrupted')
    s = c.summary()
    tmp = os.path.join(cfg['out'], '.summary.json.tmp')
    with open(tmp, 'w') as f:
        json.dump(s, f, indent=1)
        f.write('\n')
    os.replace(tmp, os.path.join(cfg['out'], 'summary.json'))
    brief = {k: v for k, v in s.items() if k not in ('failure_details', 'notes')}
    print(json.dumps(brief, indent=1))
    for fid, d in sorted(s['failure_dirs'].items()):
        print(f'FAIL {fid}: python -m fuzz.replay {d}', file=sys.stderr)
    return 1 if s['failures'] else 0


if __name__ == '__main__':
    sys.exit(main())
