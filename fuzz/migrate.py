"""The migration fuzzing campaign.

    python -m fuzz.migrate --jobs 8 [--time S] [--runs N] [--seed X]
                           [--generator hypothesis|atheris|smith|gen|mix|LIST] [--out DIR]
                           [--scheduler tcp://HOST:PORT] [--tier fast|interp]
                           [--without FEATURE[,FEATURE...]]

Worker processes generate modules and check them with ``fuzz.oracle``
(uninterrupted vs migrated at several random checkpoints, single hops in
every direction and multi-hop chains, plus wasmtime, plus the same
uninterrupted run under the other executor tier, instruction count
included).  Every run uses ``--tier`` (default ``fast``, the compiled
tier; recorded in summary.json and each case.json).  The work is a
sequence of *units* numbered k = worker, worker + jobs, ...; unit k is a
function of (seed, worker, k) only, so a campaign replays exactly:

* ``hypothesis``: a seeded hypothesis session of ``HYPOTHESIS_EXAMPLES``
  examples of ``fuzz.gen.modules()``, its first failure shrunk by hypothesis
  (the generator's features, as for ``gen`` and ``atheris`` below, are
  ``fuzz.gen``'s defaults, GC included, less those of ``--without``:
  ``campaign_features``; smith's modules have no GC);
* ``smith``: ``fuzz.smith.from_bytes`` on seeded random bytes, shrunk by
  cutting those bytes and the hop chain;
* ``gen``: ``fuzz.gen.from_bytes`` on seeded random bytes (not in the
  default mix; the mutation testing's killing test runs the first units of
  such a campaign, ``fuzz.mutation_testing``), shrunk like smith's;
* ``atheris``: a short coverage-guided libFuzzer session
  (``fuzz.atheris_target``) over the shared corpus, whose crash inputs are
  shrunk like smith's.

``--runs N`` caps the number of units, ``--time S`` the wall time.  The
output directory holds ``corpus/`` (inputs worth re-running: every failing
input is re-checked first on the next start; atheris keeps its coverage
corpus there; hypothesis its example database), ``failures/<id>/`` (one
reproducer per failure, written atomically: module.wasm, module.wat,
case.json, images/ of every hop, replay.txt) and ``summary.json``.

Integrity (issue 13).  Progress is journaled as it happens
(``fuzz.journal``: ``progress.jsonl``) and ``summary.json`` is rewritten
atomically every few seconds, so after a SIGKILL of the coordinator a
restart with the same ``--out`` and options continues with the units not
yet done, the remaining ``--time``, and the failures already found; it first
removes what the dead run left (its temporary image directory, atheris work
folders, whose crash inputs join the failing corpus, half-renamed
reproducers).  A unit whose worker dies or hangs is infrastructure's loss,
not a failure: it is retried on a fresh worker up to ``--retries`` times and
listed under ``infra``; only a unit that is lost on every attempt becomes a
``crash`` or ``hang`` finding (with the module it was running).  Every final
reproducer is replayed by ``python -m fuzz.replay`` in a fresh process
before it is reported; one that does not fail there is reported under
``nondeterministic`` with what was tried, not as a failure.

Where the units run is the executor's business (``fuzz.dispatch``): local
worker processes, or with ``--scheduler`` the tasks of a Dask cluster
(``fuzz.cluster``); the campaign loop, journal and summary are these either
way.  Each reproducer's case.json also says where the migrated run first
departs from the uninterrupted one (``fuzz.trace``).

Exit status: 0 clean, 1 failures (or non-deterministic ones), 2 usage error
(or the cluster's scheduler went away; the campaign can be resumed).
"""

import argparse
import fcntl
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

from engine.migrate.images import atomic_dir, write_file_atomic
from fuzz import journal as jn
from fuzz.dispatch import ExecutorError, LocalExecutor, lane_goes_on

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENERATORS = ('hypothesis', 'smith', 'atheris', 'gen')
MIX = ('hypothesis', 'smith', 'atheris')        # --generator mix
MIX_WEIGHTS = (('hypothesis', 5), ('smith', 3), ('atheris', 2), ('gen', 6))
CASE_TIMEOUT = 120          # seconds without a sign of life from a worker
ATHERIS_SESSION = 20        # seconds per atheris unit
HYPOTHESIS_EXAMPLES = 20   # examples per hypothesis unit (its first ones are tiny)
ATHERIS_MAX_FAILURES = 3   # failing inputs of one session that are shrunk and saved
SHRINK_SECONDS = 30         # minimisation budget per failure
GRACE = 45                  # after --time, how long workers may finish minimising
RETRIES = 2                 # fresh workers a lost unit is given before it is a finding
SUMMARY_EVERY = 5           # seconds between atomic rewrites of summary.json
REPLAY_TIMEOUT = 120        # seconds for the fresh-process replay of a reproducer


class UsageError(Exception):
    pass


# ================================================================ reproducers

def write_reproducer(directory, case, images=True):
    """A reproducer folder for ``case`` (a dict: wasm, entry, args, hops,
    mismatch, wasmtime, generator, tier, ...)."""
    from fuzz import gen, oracle
    tier = case.get('tier', oracle.TIER)

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
                                image_dir=os.path.join(tmp, 'images'), tier=tier)
            except Exception as e:
                meta['images_note'] = f'run stopped early: {type(e).__name__}: {e}'
            # where the migrated run first departs from the uninterrupted one (fuzz.trace)
            from fuzz import trace
            meta['divergence'] = trace.locate(case['wasm'], case['entry'], case['args'], case['hops'],
                                              tier=tier)
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
                    'case.json: entry, args (bit patterns; null = null ref), tier (the executor '
                    'tier of every run), hops '
                    '([runtime, instructions run before the checkpoint], the last runs to the end), '
                    'divergence (the first instruction where the migrated run departs from the '
                    'uninterrupted one; python -m fuzz.replay DIR --trace shows it).\n'
                    'images/hop<i>: the set saved at checkpoint i; images/hop<i>-<runtime>: '
                    'it translated for the next hop.\n')
    atomic_dir(directory, fill)


# ================================================================ worker side

def _unit_rng(seed, worker, k):
    h = hashlib.sha256(f'{seed}:{worker}:{k}'.encode()).digest()
    return random.Random(h)


BYTE_GENERATORS = ('smith', 'gen')     # a unit checks one module made from seeded bytes


def unit_data(generator, rng):
    """The input bytes of a unit of a byte generator, drawn from its rng."""
    return rng.randbytes(rng.randint(64, 2048) if generator == 'smith' else 2048)


def campaign_features(without=()):
    """The generator features of a campaign's hypothesis, gen and atheris
    units: ``fuzz.gen``'s defaults (GC among them: objects live across the
    checkpoints) less ``--without``'s, for a campaign against an engine
    that lacks some."""
    from fuzz import gen
    unknown = set(without) - gen.KNOWN_FEATURES
    if unknown:
        raise UsageError(f'--without: unknown generator features {sorted(unknown)} '
                         f'(known: {", ".join(sorted(gen.KNOWN_FEATURES))})')
    return gen.FEATURES - frozenset(without)


def _without_option(cfg):
    """`` --without A,B`` for a campaign's features left out, '' for none
    (a rerun command must make the same modules)."""
    from fuzz import gen
    left_out = sorted(gen.FEATURES - set(cfg.get('features', gen.FEATURES)))
    return f' --without {",".join(left_out)}' if left_out else ''


def bytes_module(generator, data, features=None):
    """The module a byte generator makes of ``data`` (None: smith made
    none); ``features``: the gen generator's (default ``fuzz.gen``'s)."""
    from fuzz import gen, smith
    if generator == 'smith':
        return smith.from_bytes(data)
    return gen.from_bytes(data) if features is None else gen.from_bytes(data, features=features)


def check_bytes(gm, data, wasmtime, tier):
    """(checks, first Failure or None) of a byte generator's module: the
    checkpoint points are a function of the input bytes."""
    from fuzz import oracle
    return oracle.check_module(gm.wasm, gm.entry, gm.args, oracle.case_rng(data), wasmtime=wasmtime,
                               tier=tier, stops=gm.stops)


def campaign_units(seed, jobs, generators, units):
    """(unit, generator, rng) of units 0 .. ``units``-1 of a campaign with
    ``--seed``, ``--jobs`` and ``--generator``: unit k runs on lane k % jobs
    from the rng of (seed, lane, k), exactly as ``Worker.run`` draws it."""
    for k in range(units):
        rng = _unit_rng(seed, k % jobs, k)
        yield k, _pick_generator(generators, rng), rng


def _pick_generator(gens, rng):
    if len(gens) == 1:
        return gens[0]
    weights = dict(MIX_WEIGHTS)
    return rng.choices(gens, [weights[g] for g in gens])[0]


class Worker:
    """Runs units and reports to the parent over a pipe (synchronous sends,
    so nothing is lost if the process dies right after)."""

    def __init__(self, conn, cfg, worker, attempt=0):
        self.conn, self.cfg, self.worker, self.attempt = conn, cfg, worker, attempt
        self.wasmtime = cfg['wasmtime']
        from fuzz.oracle import TIER
        self.tier = cfg.get('tier', TIER)
        self.features = frozenset(cfg['features']) if 'features' in cfg else campaign_features()
        # either tier runs compiled code (the tier check runs the other one): its
        # recursion limit is raised now, not inside a hypothesis test (which warns)
        from engine.exec.fast_wasmedge import recursion_room
        recursion_room()
        # a resumed campaign already replayed the saved hypothesis examples
        self.reused = cfg.get('resumed', False)

    def send(self, *msg):
        self.conn.send(msg)

    def inflight(self, wasm, entry, args):
        """The case about to be checked, kept where the coordinator finds it
        if this worker hangs or dies on it (the hang finding's module)."""
        d = os.path.join(self.cfg['out'], '.inflight')
        os.makedirs(d, exist_ok=True)
        base = os.path.join(d, f'w{self.worker}')
        from fuzz import oracle
        write_file_atomic(base + '.json', json.dumps(
            {'wasm': bytes(wasm).hex(), 'entry': entry,
             'args': [[oracle.encode_value(v) for v in a] for a in args]}))

    # -- one failing case, saved at once and again when minimised
    def failed(self, fid, case, minimized, final=None):
        """Save (or overwrite) the reproducer of ``fid``; the ``final`` one
        (default: the minimised one) is replayed in a fresh process first."""
        case = dict(case, minimized=minimized, worker=self.worker, seed=self.cfg['seed'],
                    tier=case.get('tier') or self.tier)
        d = os.path.join(self.cfg['out'], 'failures', fid)
        try:
            write_reproducer(d, case)
        except Exception as e:
            case['mismatch'] = case['mismatch'] + [f'(writing the reproducer failed: {e})']
        if minimized if final is None else final:
            case['replay'] = self.verify(d, case)
        self.send('fail', fid, {k: v for k, v in case.items()}, minimized)

    def verify(self, d, case):
        """Does the reproducer fail in a fresh ``python -m fuzz.replay``?
        If not, what else was tried: the same check again in this process
        (which tells a failure that depends on this process's caches from
        one that does not come back at all)."""
        tried = ['python -m fuzz.replay in a fresh process']
        cmd = [sys.executable, '-m', 'fuzz.replay', d]
        if not case.get('wasm'):
            # the generator itself failed: run it on the saved input in a fresh process
            tried = ['the generator on input_hex in a fresh process']
            mod = 'smith' if case.get('generator') == 'smith' else 'gen'
            kw = '' if mod == 'smith' or not case.get('features') else \
                f', features={sorted(case["features"])!r}'
            cmd = [sys.executable, '-c', f'import json, sys; from fuzz import {mod}\n'
                   f'data = bytes.fromhex(json.load(open(sys.argv[1]))["input_hex"])\n'
                   f'try:\n    {mod}.from_bytes(data{kw})\nexcept Exception as e:\n'
                   f'    print(type(e).__name__, e); sys.exit(1)', os.path.join(d, 'case.json')]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, cwd=ROOT, preexec_fn=_die_with_parent)
        limit = time.time() + REPLAY_TIMEOUT
        while proc.poll() is None and time.time() < limit:
            self.send('beat')
            time.sleep(0.2)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            return {'verdict': 'replays', 'tried': tried + [f'the replay hung (> {REPLAY_TIMEOUT} s)']}
        text = proc.stdout.read().decode(errors='replace').strip()
        proc.stdout.close()
        if proc.returncode == 1:
            return {'verdict': 'replays', 'tried': tried, 'replay_output': text[:500]}
        if proc.returncode != 0:
            return {'verdict': 'not replayable', 'tried': tried, 'replay_output': text[:500]}
        from fuzz import gen, oracle, smith
        tried.append('the same check again in the campaign worker')
        try:
            if not case.get('wasm'):
                bytes_module(case.get('generator'), case['input'], case.get('features'))
                again = []
            else:
                again = oracle.check(case['wasm'], case['entry'], tuple(case['args']), case['hops'],
                                     wasmtime=False, tier=case.get('tier') or self.tier)
        except Exception as e:
            again = [f'{type(e).__name__}: {e}']
        if again:
            return {'verdict': 'nondeterministic', 'tried': tried,
                    'why': 'fails again in the worker but not in a fresh process: it depends on '
                           'state the worker process accumulated (caches of earlier cases)',
                    'worker_output': again[:3]}
        return {'verdict': 'nondeterministic', 'tried': tried,
                'why': 'did not fail again, neither in a fresh process nor in the worker'}

    def _case(self, gm, failure, generator, unit, data=None):
        return {'generator': generator, 'unit': unit, 'wasm': gm.wasm, 'entry': failure.entry or gm.entry,
                'args': list(failure.args), 'hops': [tuple(h) for h in failure.hops],
                'mismatch': failure.mismatch, 'wasmtime': self.wasmtime, 'input': data,
                'tier': failure.tier, 'features': sorted(self.features)}

    # -- byte-driven generators
    def bytes_case(self, generator, data):
        """(checks, failure, module) for input bytes of a byte generator."""
        gm = bytes_module(generator, data, self.features)
        if gm is None:
            return 0, None, None
        self.inflight(gm.wasm, gm.entry, gm.args)
        checks, failure = check_bytes(gm, data, self.wasmtime, self.tier)
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
        hops = shrink_hops(best_gm.wasm, best_gm.entry, best_fail, deadline + 10, self.send, self.tier)
        return best, best_gm, oracle.Failure(best_fail.args, hops[0], hops[1], best_fail.tier,
                                             best_fail.entry)

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
                              'wasmtime': self.wasmtime, 'features': sorted(self.features),
                              'mismatch': [f'generator failed: {type(e).__name__}: {e}'
                                           + oracle._where(e)]}, False, final=True)
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
        write_file_atomic(os.path.join(d, hashlib.sha1(data).hexdigest()), bytes(data))

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
        @given(gen.modules(features=self.features), st.randoms(use_true_random=False))
        def prop(gm, rnd):
            if state['deadline'] and time.time() > state['deadline']:
                raise StopShrinking()
            self.send('beat')
            self.inflight(gm.wasm, gm.entry, gm.args)
            checks, failure = oracle.check_module(gm.wasm, gm.entry, gm.args, rnd,
                                                  wasmtime=self.wasmtime, tier=self.tier,
                                                  stops=gm.stops)
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
            hops = shrink_hops(gm.wasm, gm.entry, failure, time.time() + 10, self.send, self.tier)
            failure = oracle.Failure(failure.args, hops[0], hops[1], failure.tier, failure.entry)
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
        env = dict(os.environ, FUZZ_STATS=stats, FUZZ_COLLECT=work, FUZZ_WASMTIME='1' if self.wasmtime else '0',
                   FUZZ_TIER=self.tier, FUZZ_FEATURES=','.join(sorted(self.features)))
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
        handled = []
        while proc.poll() is None:
            if time.time() > limit:
                proc.kill()
                proc.wait()
                break
            self.send('beat')
            # a collected mismatch is checked and saved as soon as libFuzzer
            # finds it, not only when the session ends
            self.atheris_artifacts(unit, work, handled, ('mismatch',))
            time.sleep(1)
        log.close()
        try:
            with open(stats) as f:
                execs, checks = map(int, f.read().split())
        except (OSError, ValueError):
            execs = checks = 0
        self.send('checks', execs, checks)
        self.atheris_artifacts(unit, work, handled, ('mismatch', 'crash', 'timeout', 'oom', 'leak'))
        shutil.rmtree(work, ignore_errors=True)

    def atheris_artifacts(self, unit, work, handled, kinds):
        """Check and save the finished artifacts of kinds ``kinds`` in the
        session folder ``work`` not yet in ``handled`` (which this extends),
        at most ATHERIS_MAX_FAILURES per session."""
        names = sorted(n for n in os.listdir(work)
                       if n.split('-')[0] in kinds and not n.endswith('.tmp') and n not in handled)
        for name in names[:max(0, ATHERIS_MAX_FAILURES - len(handled))]:
            n = len(handled)
            handled.append(name)
            with open(os.path.join(work, name), 'rb') as f:
                data = f.read()
            fid = f'atheris-s{self.cfg["seed"]}-w{self.worker}-u{unit}-{n}'
            found = os.path.getmtime(os.path.join(work, name))   # when libFuzzer saw it
            if name.startswith(('mismatch', 'crash')):
                self.unit_bytes('atheris', unit, data, fid, found)
                continue
            gm = bytes_module('atheris', data, self.features)
            with open(os.path.join(work, 'log')) as f:
                tail = f.read()[-2000:]
            self.failed(fid, {'generator': 'atheris', 'unit': unit, 'wasm': gm.wasm, 'entry': gm.entry,
                              'args': list(gm.args[0]), 'hops': [('wasmedge', None)],
                              'mismatch': [f'libFuzzer {name.split("-")[0]}: {tail}'],
                              'wasmtime': self.wasmtime, 'input': data}, False, final=True)

    # -- the loop
    def rerun_corpus(self):
        """Saved failing inputs first (worker 0 only: one re-check is enough)."""
        base = os.path.join(self.cfg['out'], 'corpus')
        listing = self.cfg.get('corpus_files')
        if listing is None:         # a journal written before the listing was kept
            listing = corpus_listing(self.cfg['out'])
        for generator in CORPUS_GENERATORS:
            for name in listing.get(generator, ()):
                path = os.path.join(base, f'failing-{generator}', name)
                if not os.path.exists(path):
                    continue
                if self.cfg['deadline'] and time.time() > self.cfg['deadline']:
                    return
                with open(path, 'rb') as f:
                    data = f.read()
                self.unit_bytes(generator, f'corpus-{name[:12]}', data,
                                f'{generator}-corpus-{name[:12]}')

    def run(self, start_unit):
        cfg = self.cfg
        if self.worker == 0 and start_unit == 0 and not cfg.get('corpus_done'):
            self.rerun_corpus()
            self.send('corpus')
        k = start_unit
        while lane_goes_on(cfg, k):
            rng = _unit_rng(cfg['seed'], self.worker, k)
            generator = _pick_generator(cfg['generators'], rng)
            self.send('unit', k)
            try:            # the case of an earlier unit is not this unit's
                os.remove(os.path.join(cfg['out'], '.inflight', f'w{self.worker}.json'))
            except OSError:
                pass
            self_test(k, self.attempt)
            self.attempt = 0            # only the retried unit is a retry
            if generator == 'hypothesis':
                self.unit_hypothesis(k, rng)
            elif generator in BYTE_GENERATORS:
                self.unit_bytes(generator, k, unit_data(generator, rng))
            else:
                left = (cfg['deadline'] - time.time()) if cfg['deadline'] else ATHERIS_SESSION
                self.unit_atheris(k, rng, min(ATHERIS_SESSION, max(1, left)))
            self.send('done', k)
            if cfg.get('one_unit'):     # a Dask task runs one unit (fuzz.cluster)
                break
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


def self_test(unit, attempt=0):
    """``FUZZ_MIGRATE_SELFTEST=crash:K``, ``hang:K`` or ``kill:K`` makes a
    worker die, hang, or SIGKILL itself (first attempt only, like an OOM
    killer) at unit K: how the tests prove that the campaign survives all;
    ``slow:K:FILE`` makes unit K's first attempt write its process id to
    FILE and start 6 s late (a unit surely running when a test kills the
    cluster worker that runs it).
    (``worker-fault:NAME`` switches a fault on in the workers only.)"""
    spec = os.environ.get('FUZZ_MIGRATE_SELFTEST', '')
    kind, _, k = spec.partition(':')
    k, _, path = k.partition(':')
    if k.isdigit() and int(k) == unit:
        if kind == 'crash':
            os._exit(3)
        if kind == 'hang':
            time.sleep(3600)
        if kind == 'slow' and attempt == 0:
            write_file_atomic(path, str(os.getpid()))
            time.sleep(6)
        if kind == 'kill' and attempt == 0:
            import signal
            os.kill(os.getpid(), signal.SIGKILL)


def shrink_hops(wasm, entry, failure, deadline, beat, tier=None):
    """A shorter hop chain that still fails: drop checkpoints one at a time
    (a dropped hop's instructions go to the hop after it).  A failure of
    the uninterrupted run (one hop) has nothing to shorten."""
    from fuzz import oracle
    hops, mismatch = list(failure.hops), failure.mismatch
    entry = failure.entry or entry
    changed = True
    while changed and len(hops) > 2 and time.time() < deadline:
        changed = False
        for i in range(len(hops) - 1):
            cand = hops[:i] + hops[i + 1:]
            if cand[i][1] is not None:
                cand[i] = (cand[i][0], cand[i][1] + hops[i][1])
            cand[0] = (oracle.model(cand[0][0]), cand[0][1])    # the first hop has no route
            beat('beat')
            m = oracle.check(wasm, entry, failure.args, cand, wasmtime=False,
                             tier=failure.tier or tier or oracle.TIER)
            if m:
                hops, mismatch, changed = cand, m, True
                break
    return hops, mismatch


def worker_main(conn, cfg, worker, start_unit, attempt=0):
    _die_with_parent()          # a coordinator killed with SIGKILL takes its workers along
    spec = os.environ.get('FUZZ_MIGRATE_SELFTEST', '')
    if spec.startswith('worker-fault:'):
        # a fault only this process has (the test of non-replaying reproducers)
        from engine import faults
        setattr(faults, faults.check_name(spec.split(':', 1)[1]).upper(), True)
    w = Worker(conn, cfg, worker, attempt)
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
    def __init__(self, cfg, resume=None, executor=None):
        self.cfg = cfg
        self.executor = executor or LocalExecutor(worker_main)
        self.start = time.time()
        resume = resume or jn.resume_state([])
        self.offset = resume['elapsed']         # campaign seconds spent by earlier runs
        self.done = dict(resume['done'])        # (worker, unit) -> outcome
        self.runs, self.checks = resume['runs'], resume['checks']
        self.failures = dict(resume['failures'])   # id -> case summary
        self.first_failure = min((f['found'] for f in self.failures.values()
                                  if f.get('found') is not None), default=None)
        self.per_gen = {g: {'runs': 0, 'checks': 0, 'failures': 0} for g in cfg['generators']}
        for g, c in resume['per_gen'].items():
            self.per_gen.setdefault(g, {'runs': 0, 'checks': 0, 'failures': 0}).update(c)
        self.infra = list(resume['infra'])       # units lost to the infrastructure
        self.attempts = {}                       # (worker, unit) -> lost attempts in this run
        for r in self.infra:
            self.attempts[(r['worker'], r['unit'])] = max(self.attempts.get((r['worker'], r['unit']), 0),
                                                          r['attempt'])
        self.resumed = bool(resume['done'] or resume['elapsed'])
        self.workers = {}               # id -> state dict
        self.notes = []
        self.last_line = 0
        self.status = 'running'
        self.journal = jn.Journal(cfg['out'])
        self.last_summary = 0

    def now(self):
        """Campaign time: seconds since the first run of this campaign began."""
        return self.offset + time.time() - self.start

    def next_unit(self, w, k):
        """The first unit of worker ``w`` from ``k`` on that is not done yet."""
        while (w, k) in self.done:
            k += self.cfg['jobs']
        return k

    def want(self, k):
        return not self.time_up() and (self.cfg['runs'] is None or k < self.cfg['runs'])

    def spawn(self, w, start_unit, attempt=0):
        self.executor.start(w, self.cfg, start_unit, attempt)
        self.workers[w] = {'unit': start_unit, 'case': None,
                           'generator': None, 'last': time.time(),
                           'runs': 0, 'checks': 0}

    def record_failure(self, fid, case, minimized):
        if fid not in self.failures:
            at = min(case.get('found_at') or time.time(), time.time()) - self.start + self.offset
            if self.first_failure is None or at < self.first_failure:
                self.first_failure = max(0.0, at)
            g = case.get('generator')
            if g in self.per_gen:
                self.per_gen[g]['failures'] += 1
        else:
            at = self.failures[fid].get('found')
        rec = {'generator': case.get('generator'), 'mismatch': case['mismatch'][:3],
               'signature': signature(case['mismatch']), 'minimized': minimized,
               'unit': case.get('unit'), 'worker': case.get('worker'), 'found': at,
               'replay': case.get('replay', {'verdict': 'pending'}),
               'dir': os.path.join(self.cfg['out'], 'failures', fid)}
        self.failures[fid] = rec
        self.journal.append({'event': 'failure', 'fid': fid, 'unit': rec['unit'],
                             'worker': rec['worker'], 'record': rec})

    def lost_worker(self, w, why):
        """A worker died or hung.  Its unit is retried on a fresh worker;
        only a unit lost on every attempt is a finding of the code."""
        st = self.workers.pop(w)
        unit, generator = st['unit'], st['generator'] or 'unknown'
        if (w, unit) in self.done:
            # lost after its unit was done (before the next began): the lane goes on
            self.notes.append(f'worker {w} {why} after finishing unit {unit}')
            k = self.next_unit(w, unit + self.cfg['jobs'])
            if self.want(k):
                self.spawn(w, k)
            return
        attempt = self.attempts.get((w, unit), 0) + 1
        self.attempts[(w, unit)] = attempt
        detail = f'worker {w} {why} in unit {unit} ({generator}), attempt {attempt}' + (
            f': {st.get("crash")}' if st.get('crash') else '')
        event = {'worker': w, 'unit': unit, 'generator': generator, 'why': why,
                 'attempt': attempt, 'at': round(self.now(), 3), 'detail': detail}
        self.infra.append(event)
        self.journal.append(dict(event, event='infra'))
        self.notes.append(detail)
        if not isinstance(unit, int):
            # lost in the corpus re-check: not retried, the worker goes on with its units
            self.cfg['corpus_done'] = True
            unit = self.next_unit(w, w) - self.cfg['jobs']
            if self.want(unit + self.cfg['jobs']):
                self.spawn(w, unit + self.cfg['jobs'])
            return
        if attempt <= self.cfg['retries']:
            if not self.time_up():
                self.spawn(w, unit, attempt)
            return
        self.lost_for_good(w, unit, generator, why, attempt)
        self.unit_done(w, unit, why, generator, st)
        k = self.next_unit(w, unit + self.cfg['jobs'])
        if self.want(k):
            self.spawn(w, k)

    def lost_for_good(self, w, unit, generator, why, attempts):
        """A ``crash`` or ``hang`` finding: the unit's seed, and the module
        the worker was checking when it was lost."""
        fid = f'{why}-s{self.cfg["seed"]}-w{w}-u{unit}'
        case = {'generator': generator, 'unit': unit, 'worker': w,
                'mismatch': [f'worker {why} in unit {unit} ({generator}) on all {attempts} attempts'],
                'replay': {'verdict': 'replays', 'tried': [f'the unit, on {attempts} fresh workers']}}
        inflight = os.path.join(self.cfg['out'], '.inflight', f'w{w}.json')
        try:
            with open(inflight) as f:
                cur = json.load(f)
        except (OSError, ValueError):
            cur = None
        d = os.path.join(self.cfg['out'], 'failures', fid)

        def fill(tmp):
            meta = dict(case, seed=self.cfg['seed'], kind=why, tier=self.cfg['tier'],
                        rerun=f'python -m fuzz.migrate --jobs {self.cfg["jobs"]} --seed {self.cfg["seed"]} '
                              f'--tier {self.cfg["tier"]} '
                              f'--generator {",".join(self.cfg["generators"])}'
                              + _without_option(self.cfg))
            if cur:
                with open(os.path.join(tmp, 'module.wasm'), 'wb') as f:
                    f.write(bytes.fromhex(cur['wasm']))
                meta.update(entry=cur['entry'], args=cur['args'][0] if cur['args'] else [],
                            hops=[['wasmedge', None]])
            with open(os.path.join(tmp, 'case.json'), 'w') as f:
                json.dump(meta, f, indent=1)
            with open(os.path.join(tmp, 'README'), 'w') as f:
                f.write(f'Worker {w} {why} while running unit {unit} ({generator}) on each of '
                        f'{attempts} attempts.  module.wasm (if present) is the module it was '
                        f'checking; the unit is a function of (seed, worker, unit), so rerunning '
                        f'the campaign with the same --seed and --jobs repeats it.\n')
        atomic_dir(d, fill)
        self.record_failure(fid, case, False)

    def unit_done(self, w, unit, outcome, generator, st):
        self.done[(w, unit)] = outcome
        self.journal.append({'event': 'unit', 'worker': w, 'unit': unit, 'outcome': outcome,
                             'generator': generator, 'runs': st['runs'], 'checks': st['checks']})
        self.runs += st['runs']
        self.checks += st['checks']
        if generator in self.per_gen:
            self.per_gen[generator]['runs'] += st['runs']
            self.per_gen[generator]['checks'] += st['checks']
        st['runs'] = st['checks'] = 0

    def time_up(self):
        return self.cfg['deadline'] is not None and time.time() > self.cfg['deadline']

    def handle(self, w, msg):
        st = self.workers[w]
        st['last'] = time.time()
        kind = msg[0]
        if kind == 'unit':
            st['unit'] = msg[1]
            st['runs'] = st['checks'] = 0
        elif kind == 'start':
            st['generator'] = msg[2]
            if isinstance(st['unit'], int) and msg[1] != st['unit']:
                st['unit'] = msg[1]     # the corpus re-check names its own units
        elif kind == 'checks':
            st['runs'] += msg[1]
            st['checks'] += msg[2]
        elif kind == 'fail':
            self.record_failure(msg[1], msg[2], msg[3])
        elif kind == 'done':
            unit = msg[1]
            mine = [f for f in self.failures.values() if f.get('unit') == unit and f.get('worker') == w]
            self.unit_done(w, unit, 'fail' if mine else 'ok', st['generator'], st)
        elif kind == 'corpus':
            self.journal.append({'event': 'corpus'})
            self.runs += st['runs']
            self.checks += st['checks']
            st['runs'] = st['checks'] = 0
        elif kind == 'crash':
            st['crash'] = msg[1].splitlines()[0]
            self.notes.append(f'worker {w}: {msg[1]}')
        elif kind == 'note':
            self.notes.append(msg[1])

    def progress(self, final=False):
        el = time.time() - self.start
        tty = sys.stderr.isatty()
        if not (tty or final or el - self.last_line >= 10):
            return
        self.last_line = el
        runs = self.runs + sum(st['runs'] for st in self.workers.values())
        checks = self.checks + sum(st['checks'] for st in self.workers.values())
        line = (f'\r[{self.now():6.0f}s] units {len(self.done)}  runs {runs} ({runs / el if el else 0:.1f}/s)  '
                f'checks {checks} ({checks / el if el else 0:.1f}/s)  failures {len(self.failures)}  '
                f'retried {len(self.infra)}  lanes {len(self.workers)}  {self.executor.describe()}  ')
        if self.cfg['progress']:
            sys.stderr.write(line + ('\n' if final or not tty else ''))
            sys.stderr.flush()

    def loop(self):
        for w in range(self.cfg['jobs']):
            k = self.next_unit(w, w)
            if self.want(k) or (w == 0 and not self.cfg.get('corpus_done')):
                self.spawn(w, k)
        last_progress = 0
        while self.workers:
            for w, msg in self.executor.events(0.5):
                if w not in self.workers:
                    continue
                if msg[0] == 'gone':
                    del self.workers[w]
                elif msg[0] == 'lost':
                    self.lost_worker(w, msg[1])
                else:
                    self.handle(w, msg)
            now = time.time()
            for w, st in list(self.workers.items()):
                hard = self.cfg['deadline'] is not None and now > self.cfg['deadline'] + self.cfg['grace']
                if now - st['last'] > self.cfg['case_timeout'] or hard:
                    self.executor.stop(w)
                    if hard:
                        self.notes.append(f'worker {w} stopped {self.cfg["grace"]}s after --time '
                                          f'(unit {st["unit"]} unfinished)')
                        del self.workers[w]
                    else:
                        self.lost_worker(w, 'hang')
            if now - last_progress > 1:
                self.progress()
                last_progress = now
            if now - self.last_summary > SUMMARY_EVERY:
                self.write_summary()
        self.progress(final=True)

    def write_summary(self):
        """summary.json, atomically; also the campaign time for a restart."""
        self.last_summary = time.time()
        self.journal.append({'event': 'elapsed', 'seconds': round(self.now(), 3)})
        s = self.summary()
        write_file_atomic(os.path.join(self.cfg['out'], 'summary.json'),
                          json.dumps(s, indent=1) + '\n', sync=True)
        return s

    def summary(self):
        el = self.now()
        real = {k: v for k, v in self.failures.items()
                if v['replay'].get('verdict') in ('replays', 'pending')}
        nondet = {k: v for k, v in self.failures.items() if k not in real}
        sigs = {}
        for fid, f in sorted(real.items()):
            sigs.setdefault(f['signature'], []).append(fid)
        retried = sorted({(r['worker'], r['unit']) for r in self.infra}, key=str)
        return {'status': self.status, 'resumed': self.resumed,
                'units': len(self.done), 'runs': self.runs, 'checks': self.checks,
                'failures': len(real), 'distinct_failures': len(sigs), 'signatures': sigs,
                'elapsed': round(el, 3), 'execs_per_sec': round(self.runs / el, 3) if el else 0.0,
                'first_failure_seconds': None if self.first_failure is None else round(self.first_failure, 3),
                'generators': self.per_gen, 'seed': self.cfg['seed'], 'jobs': self.cfg['jobs'],
                'runtimes': list(self.cfg['runtimes']), 'tier': self.cfg['tier'],
                'features': list(self.cfg['features'] if 'features' in self.cfg
                                 else sorted(campaign_features())),
                'failure_dirs': {k: v['dir'] for k, v in sorted(real.items())},
                'failure_details': real,
                'nondeterministic': {k: {'dir': v['dir'], 'mismatch': v['mismatch'], **v['replay']}
                                     for k, v in sorted(nondet.items())},
                'infra': {'retried_units': [{'worker': w, 'unit': u} for w, u in retried],
                          'lost_attempts': len(self.infra), 'events': self.infra[-50:]},
                'notes': self.notes[-20:]}


def cleanup(out, tmp_root):
    """Remove what a dead coordinator left: its temporary image directory,
    half-renamed reproducer folders, the in-flight cases, and atheris work
    folders, whose crash inputs join the failing corpus to be re-checked.
    Returns the names of those inputs (in ``failing-atheris``)."""
    moved = []
    shutil.rmtree(tmp_root, ignore_errors=True)
    shutil.rmtree(os.path.join(out, '.inflight'), ignore_errors=True)
    for sub in ('failures', 'corpus'):
        d = os.path.join(out, sub)
        for name in os.listdir(d) if os.path.isdir(d) else []:
            if name.startswith(('.tmp-', '.old-')):
                shutil.rmtree(os.path.join(d, name), ignore_errors=True)
    corpus = os.path.join(out, 'corpus')
    for name in os.listdir(corpus) if os.path.isdir(corpus) else []:
        if not name.startswith('atheris-w'):
            continue
        work = os.path.join(corpus, name)
        for art in os.listdir(work):
            if art.split('-')[0] in ('mismatch', 'crash'):
                dst = os.path.join(corpus, 'failing-atheris')
                os.makedirs(dst, exist_ok=True)
                with open(os.path.join(work, art), 'rb') as f:
                    data = f.read()
                moved.append(hashlib.sha1(data).hexdigest())
                with open(os.path.join(dst, moved[-1]), 'wb') as f:
                    f.write(data)
        shutil.rmtree(work, ignore_errors=True)
    return moved


def tmp_root_for(out):
    """The campaign's own folder for throw-away image sets (in RAM when
    possible), named after its --out so a restart finds and removes it."""
    base = '/dev/shm' if os.access('/dev/shm', os.W_OK) else tempfile.gettempdir()
    return os.path.join(base, 'fuzz-images-' + hashlib.sha1(out.encode()).hexdigest()[:12])


def parse(argv):
    p = argparse.ArgumentParser(prog='python -m fuzz.migrate', description=__doc__.split('\n\n')[0])
    p.add_argument('--jobs', type=int, help='lanes: worker processes (default: the cores), or with '
                   '--scheduler concurrent units on the cluster (default: its worker threads)')
    p.add_argument('--scheduler', metavar='tcp://HOST:PORT',
                   help='run the units on this Dask cluster (needs the "cluster" extra)')
    p.add_argument('--time', type=float, help='stop starting new units after S seconds')
    p.add_argument('--runs', type=int, help='number of units (modules; an atheris unit is a session)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--generator', default='mix',
                   help='hypothesis, smith, atheris, gen, mix (the first three), or a comma-separated '
                        'list')
    p.add_argument('--out', default='fuzz-out', help='corpus, failures and summary.json go here')
    p.add_argument('--no-wasmtime', action='store_true', help='skip the wasmtime comparison')
    p.add_argument('--tier', choices=('fast', 'interp'), default='fast',
                   help='executor tier of every run (default fast, the compiled tier); the '
                        'uninterrupted run is also checked under the other tier')
    p.add_argument('--case-timeout', type=float, default=CASE_TIMEOUT)
    p.add_argument('--shrink-seconds', type=float, default=SHRINK_SECONDS)
    p.add_argument('--retries', type=int, default=RETRIES,
                   help='fresh workers a unit lost to a crash or hang gets before it is a finding')
    p.add_argument('--quiet', action='store_true', help='no progress line')
    p.add_argument('--without', action='append', default=[], metavar='FEATURE[,FEATURE...]',
                   help="generator features the hypothesis, gen and atheris modules leave out "
                        "(fuzz.gen's names, e.g. gc, simd, exceptions; repeatable); default none")
    p.add_argument('--gc', action='store_true',
                   help='accepted for old command lines: GC modules are a default now '
                        '(--without gc leaves them out)')
    a = p.parse_args(argv)
    if a.jobs is None and a.scheduler is None:
        a.jobs = os.cpu_count() or 1
    if a.jobs is not None and a.jobs < 1:
        raise UsageError(f'--jobs must be at least 1, got {a.jobs}')
    if a.time is not None and a.time <= 0:
        raise UsageError(f'--time must be positive, got {a.time}')
    if a.runs is not None and a.runs < 1:
        raise UsageError(f'--runs must be at least 1, got {a.runs}')
    if a.time is None and a.runs is None:
        raise UsageError('give --time S and/or --runs N (a campaign must end)')
    gens = MIX if a.generator == 'mix' else tuple(g.strip() for g in a.generator.split(','))
    for g in gens:
        if g not in GENERATORS:
            raise UsageError(f'--generator: unknown generator {g!r} (expected {", ".join(GENERATORS)} or mix)')
    without = sorted({f.strip() for w in a.without for f in w.split(',') if f.strip()})
    if a.gc and 'gc' in without:
        raise UsageError('--gc and --without gc contradict each other')
    features = sorted(campaign_features(without))
    if a.case_timeout <= 0 or a.shrink_seconds < 0 or a.retries < 0:
        raise UsageError('--case-timeout must be positive, --shrink-seconds and --retries not negative')
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
            'grace': GRACE, 'runtimes': available_runtimes(), 'deadline': None,
            'retries': a.retries, 'scheduler': a.scheduler, 'tier': a.tier,
            'features': features}


CORPUS_GENERATORS = ('smith', 'atheris', 'gen')     # byte generators whose failing inputs are kept


def corpus_listing(out):
    """The saved failing inputs a campaign starts with, {generator: [names]}.
    Its corpus re-check covers these only (the list is kept in the journal),
    so a campaign resumed after a SIGKILL re-checks what the uninterrupted
    one would have, not the inputs its own first part saved."""
    found = {}
    for generator in CORPUS_GENERATORS:
        d = os.path.join(out, 'corpus', f'failing-{generator}')
        names = sorted(n for n in os.listdir(d) if not n.startswith('.')) if os.path.isdir(d) else []
        if names:
            found[generator] = names
    return found


def _refuse(message, executor):
    print(f'error: {message}', file=sys.stderr)
    if executor is not None:
        executor.close()
    return 2


def main(argv=None):
    try:
        cfg = parse(argv)
    except UsageError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    executor = None
    if cfg['scheduler']:
        from fuzz import cluster
        try:
            client = cluster.connect(cfg['scheduler'])
        except cluster.ClusterError as e:
            print(f'error: {e}', file=sys.stderr)
            return 2
        cfg['jobs'] = cfg['jobs'] or max(1, cluster.cluster_threads(client))
        executor = cluster.DaskExecutor(client)
    out = cfg['out']
    lock = open(os.path.join(out, '.lock'), 'w')
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return _refuse(f'--out {out}: another campaign is running there', executor)
    journal = jn.Journal(out)
    records = journal.read()
    header = {k: cfg[k] for k in jn.SAME}
    why = jn.resumable(records, header)
    if why:
        return _refuse(f'--out {out} holds an unfinished campaign with other options ({why}); '
                       f'rerun with its options to resume it, or use another --out', executor)
    cfg['tmp_root'] = tmp_root_for(out)
    crashes = cleanup(out, cfg['tmp_root'])
    os.makedirs(cfg['tmp_root'], exist_ok=True)
    os.environ['FUZZ_TMP_ROOT'] = cfg['tmp_root']      # the workers' (spawned) image sets
    if why is None:
        state = jn.resume_state(records)
        cfg['resumed'] = True
        cfg['corpus_done'] = state['corpus_done']
        cfg['corpus_files'] = records[0].get('corpus')
        if cfg['corpus_files'] is not None and crashes:    # the dead run's atheris crash inputs too
            had = cfg['corpus_files'].get('atheris', [])
            cfg['corpus_files']['atheris'] = sorted(set(had) | set(crashes))
    else:
        state = None
        cfg['corpus_files'] = corpus_listing(out)
        journal.start(dict(header, corpus=cfg['corpus_files']))
    c = Campaign(cfg, state, executor)
    c.journal = journal
    left = None if cfg['time'] is None else max(0.0, cfg['time'] - c.offset)
    cfg['deadline'] = None if left is None else c.start + left
    if c.resumed:
        c.notes.append(f'resumed after {c.offset:.1f} s with {len(c.done)} units done')
    c.write_summary()
    lost = None
    # SIGINT stops the campaign cleanly (summary written, resumable) even
    # when it was started from a background job, which inherits SIGINT
    # ignored: fuzz.mutants stops a campaign that way once its fault is caught
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        c.loop()
        c.status = 'finished'
    except KeyboardInterrupt:
        c.notes.append('interrupted')
        c.status = 'interrupted'
    except ExecutorError as e:
        lost = e
        print(f'error: {e}; the campaign can be resumed with the same command', file=sys.stderr)
        c.notes.append(f'interrupted: {e}')
        c.status = 'interrupted'
    finally:
        try:
            c.executor.close()
        except Exception:
            pass            # a cluster that is gone has nothing left to close
    s = c.write_summary()
    if c.status == 'finished':
        journal.append({'event': 'finished'})
    journal.close()
    shutil.rmtree(cfg['tmp_root'], ignore_errors=True)
    shutil.rmtree(os.path.join(out, '.inflight'), ignore_errors=True)
    brief = {k: v for k, v in s.items() if k not in ('failure_details', 'notes')}
    print(json.dumps(brief, indent=1))
    for fid, d in sorted(s['failure_dirs'].items()):
        print(f'FAIL {fid}: python -m fuzz.replay {d}', file=sys.stderr)
    for fid, v in sorted(s['nondeterministic'].items()):
        print(f'NONDETERMINISTIC {fid}: {v.get("why", v.get("verdict"))}: {v["dir"]}', file=sys.stderr)
    if lost is not None:
        return 2
    return 1 if s['failures'] or s['nondeterministic'] else 0


if __name__ == '__main__':
    sys.exit(main())
