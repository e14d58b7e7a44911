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


def measure(engine, wasm, call, expected):
    """One engine's row: prepare (untimed), run (timed), check the result.
    ``expected`` is a value or a function of the result returning an error
    text (None when right)."""
    row = {'engine': engine}
    try:
        go = prepare(engine, wasm, call)
        t0 = time.process_time()
        got = go()
        row['cpu_seconds'] = round(time.process_time() - t0, 4)
        if isinstance(got, Timed):                  # timed in a child process
            got, row['cpu_seconds'] = got.value, round(got.seconds, 4)
    except Unavailable as e:
        return dict(row, cpu_seconds=None, status='unavailable', why=str(e))
    except Exception as e:                      # noqa: BLE001 - reported in the table
        return dict(row, cpu_seconds=None, status='error', why=f'{type(e).__name__}: {e}'[:300])
    wrong = expected(got) if callable(expected) else (
        None if got == expected else f'got {got!r}, expected {expected!r}')
    if wrong:
        return dict(row, cpu_seconds=None, status='wrong result', why=wrong[:300])
    return dict(row, status='ok')


def kernel_rows(name, quick, engines=ENGINES):
    desc, wat, expected, _, sizes = KERNELS[name]
    n = sizes[1] if quick else sizes[0]
    wasm = wasm_of(wat)
    want = expected(n)
    return [dict(measure(e, wasm, ('invoke', 'run', [n]), want), case=f'{name}({n})')
            for e in engines]


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
    return [dict(measure(e, wasm, call, reference), case=case) for e in engines]


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
