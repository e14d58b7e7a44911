"""Benchmarks: a registry of named workloads, run by ``python -m bench``.

A workload is a function ``fn(quick) -> list of rows``; each row is a dict
with at least ``case`` and ``cpu_seconds`` (process CPU time, which a shared
machine disturbs less than wall time).  Register one with ``@workload(name,
description)`` in a module listed in ``MODULES``.  Performance claims in
this project are shown by a committed run of ``python -m bench``
(``bench/results.json``), never by timed tests.
"""

import importlib
import time

WORKLOADS = {}            # name -> (description, function)
MODULES = ('bench.compute', 'bench.checkpoints', 'bench.label_replay')


def workload(name, description):
    def register(fn):
        WORKLOADS[name] = (description, fn)
        return fn
    return register


def load():
    for m in MODULES:
        importlib.import_module(m)
    return WORKLOADS


class cpu:
    """``with cpu() as t: ...`` then ``t.seconds``: CPU time of this process."""

    def __enter__(self):
        self.t0 = time.process_time()
        return self

    def __exit__(self, *exc):
        self.seconds = time.process_time() - self.t0
