"""Campaign units on a Dask cluster (``python -m fuzz.migrate --scheduler``).

The client keeps everything a local campaign keeps (``migrate.Campaign``:
lanes, retries, journal, summary, ``--out``); only the units run on the
cluster.  ``DaskExecutor`` is the executor of ``fuzz.dispatch`` for that:
each unit of a lane is one task (``run_unit``), and the lane's next unit is
submitted when the task ends, by the same rule a local worker process
follows (``dispatch.lane_goes_on``).

On the Dask worker, ``run_unit`` runs the unit exactly as a local campaign
does, in a spawned process through ``dispatch.LocalExecutor``, with a
scratch ``--out`` of its own (the worker need not share a file system with
the client).  It relays every message of that process to the client over a
``distributed.Queue``, the reproducer folder with each failure and the new
corpus files at the end, so the client writes failures, reproducers and
corpus into its ``--out`` as a local campaign would.  The relay watches its
process like the local coordinator does (a process that dies or is silent
for ``--case-timeout`` loses its unit, reported as ``lost``), and the client
watches the relays: a Dask worker that leaves the cluster (killed, OOM) or
whose relay is silent loses its unit, which the campaign retries on another
worker (``infra`` in the summary).  A unit is a function of (seed, lane,
unit), so the reproducers are the same as a local campaign's.

The deliberate fault (``WASM_MIGRATE_FAULT``) and the self-test switch of
the client's environment go with every task, so ``python -m fuzz.mutants
--scheduler`` checks faults on a cluster.
"""

import os
import pickle
import shutil
import tempfile
import threading
import time
import uuid

from engine.migrate.images import atomic_dir, write_file_atomic
from fuzz.dispatch import ExecutorError, LocalExecutor, lane_goes_on

# environment variables of the client that each unit's process gets
PASSED_ENV = ('WASM_MIGRATE_FAULT', 'FUZZ_MIGRATE_SELFTEST')
KEEPALIVE = 5          # seconds between a relay's signs of life while its unit runs
WATCH_EVERY = 1.0      # seconds between the client's looks at the cluster's workers
_ENV_LOCK = threading.Lock()


class ClusterError(ExecutorError):
    pass


def connect(address, timeout=20):
    """A ``distributed.Client`` of the scheduler at ``address``, or a
    ClusterError saying what is missing or unreachable."""
    try:
        from distributed import Client
    except ImportError:
        raise ClusterError('--scheduler needs dask and distributed: pip install "wasm-migrate[cluster]"')
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except Exception as e:          # OSError, TimeoutError, ValueError of a bad address ...
        raise ClusterError(f'--scheduler {address}: cannot connect: {type(e).__name__}: {e}')


def cluster_threads(client):
    """Task slots of the cluster now (the default number of lanes)."""
    return sum(w.get('nthreads', 1) for w in client.scheduler_info()['workers'].values())


# ================================================================ client side

class DaskExecutor:
    def __init__(self, client):
        from distributed import Queue
        self.client = client
        self.queue = Queue(f'fuzz-migrate-{uuid.uuid4().hex}', client=client)
        self.lanes = {}             # w -> {'future', 'token', 'unit', 'cfg', 'addr', ...}
        self.reuse_given = False    # lane 0's first hypothesis unit replays the example database
        self.workers = set()
        self.last_watch = 0

    # -- starting units
    def start(self, w, cfg, unit, attempt=0):
        from fuzz.migrate import _pick_generator, _unit_rng
        generator = _pick_generator(cfg['generators'], _unit_rng(cfg['seed'], w, unit))
        corpus_check = w == 0 and unit == 0 and not cfg.get('corpus_done')
        reuse = w == 0 and generator == 'hypothesis' and not cfg.get('resumed') and not self.reuse_given
        self.reuse_given |= reuse
        wanted = []
        if corpus_check:
            wanted += ['failing-smith', 'failing-atheris']
        if reuse:
            wanted.append('hypothesis')
        if 'atheris' in (generator, *(cfg['generators'] if corpus_check else ())):
            wanted.append('atheris')
        token = uuid.uuid4().hex
        spec = {'cfg': dict(cfg, resumed=not reuse, one_unit=True), 'worker': w, 'unit': unit,
                'attempt': attempt, 'token': token, 'queue': self.queue.name,
                'corpus': _files(os.path.join(cfg['out'], 'corpus'), wanted),
                'env': {k: os.environ[k] for k in PASSED_ENV if k in os.environ}}
        fut = self.client.submit(run_unit, spec, key=f'fuzz-unit-w{w}-u{unit}-{token[:8]}', pure=False)
        self.lanes[w] = {'future': fut, 'token': token, 'unit': unit, 'cfg': cfg, 'addr': None,
                         'exited': False, 'ended_at': None}

    def stop(self, w):
        lane = self.lanes.pop(w, None)
        if lane is not None:
            self._abandon(lane)

    def close(self):
        for w in list(self.lanes):
            self.stop(w)
        try:
            self.queue.close()
        except Exception:
            pass
        self.client.close()

    def describe(self):
        busy = sum(1 for lane in self.lanes.values() if lane['addr'])
        return f'workers {len(self.workers)} (busy {busy})'

    # -- what happened
    def events(self, timeout):
        try:
            return self._events(timeout)
        except (OSError, TimeoutError) as e:    # CommClosedError is an OSError
            raise ClusterError(f'lost the Dask scheduler: {type(e).__name__}: {e}')

    def _events(self, timeout):
        out = []
        items = self.queue.get(batch=True)
        if not items:
            time.sleep(min(timeout, 0.2))
        for token, msg in items:
            # (looked up per message: a lane's next unit may start within this batch)
            w = next((w for w, lane in self.lanes.items() if lane['token'] == token), None)
            if w is None:
                continue            # a unit given up on (its worker was lost or it was stopped)
            self._message(w, self.lanes[w], pickle.loads(msg), out)
        self._watch(out)
        return out

    def _message(self, w, lane, msg, out):
        kind = msg[0]
        cfg = lane['cfg']
        if kind == 'hello':
            if lane['addr'] is not None:
                # the scheduler re-ran the task after its first worker died:
                # the unit is retried as the campaign's own attempt instead
                del self.lanes[w]
                self._abandon(lane)
                out.append((w, ('crash', f'Dask worker {lane["addr"]} was lost; the scheduler '
                                         f'gave its task to {msg[1]}')))
                out.append((w, ('lost', 'crash')))
                return
            lane['addr'] = msg[1]
            out.append((w, ('beat',)))
        elif kind == 'files':
            for rel, data in msg[1].items():
                _write_under(os.path.join(cfg['out'], 'corpus'), rel, data)
        elif kind == 'inflight':
            _write_under(os.path.join(cfg['out'], '.inflight'), f'w{w}.json', msg[1])
        elif kind == 'fail':
            fid, case, minimized, files = msg[1:]
            if files:
                atomic_dir(os.path.join(cfg['out'], 'failures', fid),
                           lambda tmp: [_write_under(tmp, rel, data) for rel, data in files.items()])
            out.append((w, ('fail', fid, case, minimized)))
        elif kind == 'exit':
            lane['exited'] = True
        elif kind in ('gone', 'lost'):
            del self.lanes[w]
            nxt = lane['unit'] + cfg['jobs']
            if kind == 'gone' and lane['exited'] and lane_goes_on(cfg, nxt):
                self.start(w, cfg, nxt)         # the lane's next unit, as a local worker would go on
                # the lane is on it from now on, even if its worker is lost before
                # the unit's process says so
                out.append((w, ('unit', nxt)))
            else:
                out.append((w, msg))
        else:
            out.append((w, msg))

    def _watch(self, out):
        """Lanes whose Dask worker left the cluster or whose task failed
        lost their unit; lanes still waiting for a free worker are alive."""
        now = time.time()
        if now - self.last_watch < WATCH_EVERY:
            return
        self.last_watch = now
        self.workers = set(self.client.scheduler_info()['workers'])
        for w, lane in list(self.lanes.items()):
            status = lane['future'].status
            gone = lane['addr'] is not None and lane['addr'] not in self.workers
            if status in ('error', 'cancelled') or gone:
                del self.lanes[w]
                self._abandon(lane)
                why = (f'Dask worker {lane["addr"]} left the cluster' if gone
                       else f'task {status}: {_task_error(lane["future"])}')
                out.append((w, ('crash', why)))
                out.append((w, ('lost', 'crash')))
            elif status == 'finished':
                # its last message is in the queue before the task returns
                lane['ended_at'] = lane['ended_at'] or now
                if now - lane['ended_at'] > 10:
                    del self.lanes[w]
                    out.append((w, ('lost', 'crash')))
            elif lane['addr'] is None:
                out.append((w, ('beat',)))     # queued: waiting for a worker is not a hang

    def _abandon(self, lane):
        from distributed import Event
        try:
            Event(f'cancel-{lane["token"]}', client=self.client).set()
            lane['future'].cancel()
        except Exception:
            pass


def _task_error(future):
    try:
        e = future.exception(timeout=1)
        return f'{type(e).__name__}: {e}'
    except Exception as e:
        return f'({type(e).__name__})'


def _files(base, subdirs):
    """{relative path: bytes} of the files under ``base``/each of ``subdirs``."""
    out = {}
    for sub in subdirs:
        top = os.path.join(base, sub)
        for dirpath, dirs, names in os.walk(top):
            dirs[:] = [d for d in dirs if not d.startswith('.')]
            for n in names:
                if n.startswith('.'):
                    continue
                p = os.path.join(dirpath, n)
                try:
                    with open(p, 'rb') as f:
                        out[os.path.relpath(p, base)] = f.read()
                except OSError:
                    pass
    return out


def _write_under(base, rel, data):
    path = os.path.normpath(os.path.join(base, rel))
    if not path.startswith(os.path.abspath(base) + os.sep):
        raise ValueError(f'refusing to write {rel!r} outside {base}')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_file_atomic(path, data)


# ================================================================ worker side

def run_unit(spec):
    """A Dask task: one unit in a local lane process, relayed to the client."""
    from distributed import Event, Queue, get_worker
    from fuzz.migrate import worker_main
    cfg, w, token = dict(spec['cfg']), spec['worker'], spec['token']
    real_out = cfg['out']
    queue = Queue(spec['queue'])
    cancel = Event(f'cancel-{token}')

    def put(*msg):
        # pickled here: the queue's own encoding (msgpack) has no 128-bit ints
        queue.put((token, pickle.dumps(msg)))

    scratch = tempfile.mkdtemp(prefix='fuzz-unit-')
    try:
        for sub in ('failures', 'corpus', 'images'):
            os.makedirs(os.path.join(scratch, sub))
        for rel, data in spec['corpus'].items():
            _write_under(os.path.join(scratch, 'corpus'), rel, data)
        cfg.update(out=scratch, tmp_root=os.path.join(scratch, 'images'))
        put('hello', get_worker().address)
        lanes = LocalExecutor(worker_main)
        env = dict(spec['env'], FUZZ_TMP_ROOT=cfg['tmp_root'])
        with _ENV_LOCK:
            saved = {k: os.environ.get(k) for k in set(env) | set(PASSED_ENV)}
            for k in PASSED_ENV:
                os.environ.pop(k, None)
            os.environ.update(env)
            # a Dask worker may be a daemonic process, which multiprocessing
            # forbids to start children; the unit's process is ours to manage
            import multiprocessing
            daemon = multiprocessing.current_process()._config.pop('daemon', None)
            try:
                lanes.start(w, cfg, spec['unit'], spec['attempt'])
            finally:
                if daemon is not None:
                    multiprocessing.current_process()._config['daemon'] = daemon
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
        last_msg = last_sent = last_cancel_check = time.time()
        while True:
            for _, msg in lanes.events(0.5):
                last_msg = time.time()
                kind = msg[0]
                if kind == 'beat' and last_msg - last_sent < 1:
                    continue
                if kind == 'fail':
                    msg = msg + (_reproducer(scratch, real_out, msg[1]),)
                if kind in ('gone', 'lost'):
                    _finish(put, scratch, w, spec['corpus'], kind == 'lost')
                    put(*msg)
                    return kind
                put(*msg)
                last_sent = time.time()
            now = time.time()
            if now - last_msg > cfg['case_timeout']:
                lanes.stop(w)
                _finish(put, scratch, w, spec['corpus'], True)
                put('lost', 'hang')
                return 'hang'
            if now - last_cancel_check > 2:
                last_cancel_check = now
                if cancel.is_set():         # the client gave this unit to another worker
                    lanes.stop(w)
                    return 'cancelled'
            if now - last_sent > KEEPALIVE:
                put('beat')
                last_sent = now
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _reproducer(scratch, real_out, fid):
    """The files of a reproducer folder written in the scratch ``--out``,
    with the folder's path as the client will have it."""
    base = os.path.join(scratch, 'failures', fid)
    files = _files(os.path.join(scratch, 'failures'), [fid])
    old, new = os.path.join(scratch, 'failures').encode(), os.path.join(real_out, 'failures').encode()
    out = {}
    for rel, data in files.items():
        rel = os.path.relpath(os.path.join(os.path.join(scratch, 'failures'), rel), base)
        if rel in ('README', 'replay.txt', 'case.json'):
            data = data.replace(old, new)
        out[rel] = data
    return out


def _finish(put, scratch, w, shipped, lost):
    """New corpus files of the unit, and (if its process was lost) the case
    it was checking."""
    corpus = os.path.join(scratch, 'corpus')
    subs = [d for d in os.listdir(corpus) if not d.startswith(('atheris-w', '.'))]
    new = {rel: data for rel, data in _files(corpus, subs).items() if rel not in shipped}
    if new:
        put('files', new)
    if lost:
        try:
            with open(os.path.join(scratch, '.inflight', f'w{w}.json'), 'rb') as f:
                put('inflight', f.read())
        except OSError:
            pass
