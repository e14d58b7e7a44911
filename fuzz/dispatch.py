"""Where a campaign's work units run: the executor abstraction of
``fuzz.migrate``.

The campaign (``migrate.Campaign``) thinks in *lanes*: lane ``w`` runs the
units ``w, w + jobs, w + 2 * jobs, ...`` in order, each a function of
(seed, w, unit) only.  An executor starts a lane at a unit, reports what
the lane says as ``(w, message)`` pairs (the worker protocol of
``fuzz.migrate``: ``unit``, ``start``, ``checks``, ``fail``, ``done``,
``beat``, ...), and two events of its own: ``('lost', 'crash')`` when the
lane's process died without saying goodbye, ``('gone',)`` when it ended
normally.  The campaign loop, the retries of lost units, the journal and
the summary are the same whatever runs the lanes.

``LocalExecutor`` runs each lane in a spawned process of this machine
(``--jobs N``).  ``fuzz.cluster.DaskExecutor`` runs each unit as a task of
a Dask cluster (``--scheduler``), and its task runs that one unit in a
``LocalExecutor`` lane on the Dask worker: the process, pipe and watchdog
code is this one piece either way.  This module never imports Dask.
"""

import multiprocessing
import time
from multiprocessing.connection import wait


class ExecutorError(Exception):
    """The executor itself failed (e.g. the cluster's scheduler went away):
    the campaign stops as interrupted and can be resumed."""


def lane_goes_on(cfg, unit):
    """Whether a lane starts ``unit`` (the lane's next one): not past
    ``--runs`` nor past the deadline.  The lane loop of a worker process
    and the Dask executor's chaining of unit tasks both ask this."""
    if cfg['runs'] is not None and unit >= cfg['runs']:
        return False
    return not (cfg.get('deadline') and time.time() > cfg['deadline'])


class LocalExecutor:
    """Lanes as spawned processes talking over a pipe (synchronous sends:
    what a worker said before dying is not lost)."""

    def __init__(self, target):
        self.target = target            # worker_main(conn, cfg, w, unit, attempt)
        self.lanes = {}                 # w -> {'proc', 'conn', 'exited'}

    def start(self, w, cfg, unit, attempt=0):
        ctx = multiprocessing.get_context('spawn')
        rd, wr = ctx.Pipe(duplex=False)
        p = ctx.Process(target=self.target, args=(wr, cfg, w, unit, attempt), daemon=True)
        p.start()
        wr.close()
        self.lanes[w] = {'proc': p, 'conn': rd, 'exited': False}

    def events(self, timeout):
        """What the lanes said within ``timeout`` seconds."""
        out = []
        conns = {lane['conn']: w for w, lane in self.lanes.items()}
        for c in wait(list(conns), timeout=timeout) if conns else ():
            w = conns[c]
            lane = self.lanes[w]
            try:
                while c.poll():
                    msg = c.recv()
                    lane['exited'] |= msg[0] == 'exit'
                    out.append((w, msg))
            except (EOFError, OSError):
                lane['proc'].join(5)
                del self.lanes[w]
                c.close()
                out.append((w, ('gone',) if lane['exited'] else ('lost', 'crash')))
        if not conns:
            time.sleep(timeout)
        return out

    def stop(self, w):
        """Kill lane ``w``'s process (hung, or past the hard deadline)."""
        lane = self.lanes.pop(w, None)
        if lane is not None:
            lane['proc'].kill()         # the process this executor started
            lane['proc'].join()
            lane['conn'].close()

    def close(self):
        for w in list(self.lanes):
            self.stop(w)

    def describe(self):
        return f'workers {len(self.lanes)}'
