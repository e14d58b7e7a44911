"""The durable record of a campaign's progress: ``OUT/progress.jsonl``.

A coordinator killed with SIGKILL leaves no chance to write anything, so
everything a restart needs is appended here as it happens, one JSON object
per line, flushed and fsync'd: the campaign's options (first line), every
finished unit with its counts and outcome, every failure and every unit
lost to the infrastructure, the elapsed campaign time, and ``finished``.
A torn last line (killed mid-write) is ignored on reading.

``resume_state`` folds the lines into what a restarted coordinator needs:
which units are done, the counters of finished units, the failures found
in them and the campaign time already spent.
"""

import json
import os

from engine.migrate.images import write_file_atomic

NAME = 'progress.jsonl'
# the options a resumed campaign must share with the one it continues
SAME = ('seed', 'jobs', 'generators', 'runs', 'wasmtime', 'tier', 'features')
# what a journal written before an option existed ran with (features: the
# generator's defaults before 'gc' joined them; --gc was not journaled)
OLD = {'tier': 'interp',
       'features': ['exceptions', 'function-references', 'legacy-exceptions', 'memory64',
                    'multi-memory', 'reference-types', 'simd', 'tail-call']}


class Journal:
    def __init__(self, out):
        self.path = os.path.join(out, NAME)
        self._f = None

    def read(self):
        """Every complete record (a torn last line is dropped)."""
        try:
            with open(self.path, 'rb') as f:
                lines = f.read().split(b'\n')
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                break                   # torn write: nothing after it was acknowledged
        return out

    def start(self, header):
        """A new campaign: the journal holds only ``header`` (atomically)."""
        write_file_atomic(self.path, json.dumps(dict(header, event='campaign')) + '\n', sync=True)

    def append(self, record):
        if self._f is None:
            self._f = open(self.path, 'a')
        self._f.write(json.dumps(record) + '\n')
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None


def resumable(records, cfg):
    """None if ``records`` describe a campaign a restart with ``cfg`` may
    continue; else why not ('' when there is nothing to continue)."""
    if not records or records[0].get('event') != 'campaign':
        return ''
    if any(r.get('event') == 'finished' for r in records):
        return ''
    head = records[0]
    diff = [k for k in SAME if _norm(head.get(k, OLD.get(k))) != _norm(cfg.get(k))]
    if diff:
        return ', '.join(f'--{k} was {head.get(k, OLD.get(k))!r}, now {cfg.get(k)!r}' for k in diff)
    return None


def _norm(v):
    return list(v) if isinstance(v, (list, tuple)) else v


def resume_state(records):
    """What the finished part of an interrupted campaign amounts to."""
    st = {'done': {}, 'runs': 0, 'checks': 0, 'per_gen': {}, 'failures': {},
          'elapsed': 0.0, 'infra': [], 'nondeterministic': {}, 'corpus_done': False}
    pending = {}
    for r in records:
        ev = r.get('event')
        if ev == 'unit':
            st['done'][(r['worker'], r['unit'])] = r['outcome']
            st['runs'] += r['runs']
            st['checks'] += r['checks']
            g = st['per_gen'].setdefault(r['generator'], {'runs': 0, 'checks': 0, 'failures': 0})
            g['runs'] += r['runs']
            g['checks'] += r['checks']
        elif ev == 'failure':
            pending[r['fid']] = r
        elif ev == 'infra':
            st['infra'].append({k: v for k, v in r.items() if k != 'event'})
        elif ev == 'elapsed':
            st['elapsed'] = max(st['elapsed'], r['seconds'])
        elif ev == 'corpus':
            st['corpus_done'] = True
    for fid, r in pending.items():
        unit = r.get('unit')
        # a failure of a unit that did not finish is found again when it reruns
        if isinstance(unit, int) and (r.get('worker'), unit) not in st['done']:
            continue
        if not isinstance(unit, int) and not st['corpus_done']:
            continue
        st['failures'][fid] = r['record']
        g = r['record'].get('generator')
        if g in st['per_gen']:
            st['per_gen'][g]['failures'] += 1
    return st
