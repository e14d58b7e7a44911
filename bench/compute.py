"""The compute workloads: the WAT kernels of ``bench.kernels`` and the
authors' WASI apps (n-body, binary-trees from the WasmEdge fork's archive),
each run on every engine of ``bench.engines`` on the same wasm bytes.

One row per engine: ``cpu_seconds`` of the timed run, or ``None`` with a
``status`` saying why there is no time (``unavailable``: engine missing or
unable to run the module; ``error``: it raised; ``wrong result``: it
answered, but not the expected value, so its time means nothing)."""

import time

from bench import workload
from bench.baseline import Timed
from bench.engines import ENGINES, Unavailable, prepare
from bench.kernels import KERNELS, wasm_of

APPS = {   # app -> (arguments after argv[0], default and quick)
    'n-body': (['1500'], ['20']),
    'binary-trees': (['7'], ['4']),       # depth max(6, n): 4 is its smallest tree
}


# a run under a second is noisy (one sample of a 0.03 s kernel moved a
# ratio by 30% between two bench runs): such runs are repeated, each time
# prepared afresh (decoded, instantiated, compiled cold), and the least CPU
# time kept, as timeit does; every engine under the same rule.  ``--repeat
# N`` sets the count (on a machine whose speed comes and goes), the budget
# growing with it (``repeat_rule``)
REPEAT, REPEAT_BUDGET = 3, 1.0


def repeat_rule(n):
    """(runs, CPU seconds) of the repeat rule for ``--repeat n``: up to n
    runs while they took under n/3 s in all."""
    return n, n / 3


def measure(engine, wasm, call, expected, repeat=None, budget=None):
    """One engine's row: prepare (untimed), run (timed), check the result;
    again while fewer than ``repeat`` runs took less than ``budget`` CPU
    seconds in all (``runs``: how many; ``cpu_seconds``: the least).
    ``expected`` is a value or a function of the result returning an error
    text (None when right)."""
    runs = _runs(engine, wasm, call, expected, repeat, budget)
    while True:
        try:
            next(runs)
        except StopIteration as done:
            return done.value


def measure_all(engines, wasm, call, expected):
    """Every engine's row (``measure``), their runs taken in turn, one run
    of each engine that wants more per round: a slow spell of the machine
    (seen lasting seconds) then falls on every engine alike, not on all
    the runs of one."""
    going = {e: _runs(e, wasm, call, expected) for e in engines}
    rows = {}
    while going:
        for e in list(going):
            try:
                next(going[e])
            except StopIteration as done:
                rows[e] = done.value
                del going[e]
    return [rows[e] for e in engines]


def _runs(engine, wasm, call, expected, repeat=None, budget=None):
    """``measure`` as a generator: one timed run per step; returns the row."""
    repeat = REPEAT if repeat is None else repeat
    budget = REPEAT_BUDGET if budget is None else budget
    row = {'engine': engine}
    times = []
    while True:
        try:
            go = prepare(engine, wasm, call)
            t0 = time.process_time()
            got = go()
            seconds = time.process_time() - t0
            if isinstance(got, Timed):                  # timed in a child process
                got, seconds = got.value, got.seconds
        except Unavailable as e:
            return dict(row, cpu_seconds=None, status='unavailable', why=str(e))
        except Exception as e:                      # noqa: BLE001 - reported in the table
            return dict(row, cpu_seconds=None, status='error', why=f'{type(e).__name__}: {e}'[:300])
        wrong = expected(got) if callable(expected) else (
            None if got == expected else f'got {got!r}, expected {expected!r}')
        if wrong:
            return dict(row, cpu_seconds=None, status='wrong result', why=wrong[:300])
        times.append(seconds)
        if len(times) >= repeat or sum(times) >= budget:
            return dict(row, cpu_seconds=round(min(times), 4), runs=len(times), status='ok')
        del go, got
        yield


def kernel_rows(name, quick, engines=ENGINES):
    desc, wat, expected, _, sizes = KERNELS[name]
    n = sizes[1] if quick else sizes[0]
    wasm = wasm_of(wat)
    want = expected(n)
    return [dict(row, case=f'{name}({n})')
            for row in measure_all(engines, wasm, ('invoke', 'run', [n]), want)]


def app_rows(app, quick, engines=ENGINES):
    """The authors' WASI app on every engine; the expected stdout and exit
    code are wasmtime's (the independent reference), else a row saying the
    app is absent."""
    from forks import apps
    path = apps.app_path(app)
    args = APPS[app][1 if quick else 0]
    case = f'{app} {" ".join(args)}'
    if path is None:
        return [{'case': case, 'engine': e, 'cpu_seconds': None, 'status': 'unavailable',
                 'why': apps.missing_reason()} for e in engines]
    with open(path, 'rb') as f:
        wasm = f.read()
    call = ('wasi', [app] + args)
    try:
        reference = prepare('wasmtime', wasm, call)()
    except Exception as e:                      # noqa: BLE001
        return [{'case': case, 'engine': e_, 'cpu_seconds': None, 'status': 'unavailable',
                 'why': f'no reference output: wasmtime failed ({type(e).__name__}: {e})'}
                for e_ in engines]
    return [dict(row, case=case) for row in measure_all(engines, wasm, call, reference)]


def _register(name):
    desc = KERNELS[name][0]
    workload(name, desc + ' (every engine)')(lambda quick=False: kernel_rows(name, quick))


for _name in KERNELS:
    _register(_name)


@workload('app-n-body', "the authors' n-body WASI app from the WasmEdge fork (every engine)")
def app_n_body(quick=False):
    return app_rows('n-body', quick)


@workload('app-binary-trees', "the authors' binary-trees WASI app from the WasmEdge fork "
                              '(every engine)')
def app_binary_trees(quick=False):
    return app_rows('binary-trees', quick)
