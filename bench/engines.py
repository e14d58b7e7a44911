"""The engines a benchmark runs side by side on the same wasm bytes: this
project's two runtime models in each execution tier, and the other Python
engines (pywasm, pwasm's interpreter and compile mode) and wasmtime when
they are installed (``pip install .[bench]``).

``prepare(engine, wasm, call)`` does the untimed part (decode, validate,
instantiate) and returns a function doing the timed part, which returns
the result to check.  ``call`` is ``('invoke', export, args)`` for a kernel
(result: the unsigned integer its single i32/i64 result is) or
``('wasi', argv)`` for a WASI command (result: (exit code, stdout bytes)),
or a ``bench.baseline.Timed`` holding it with the CPU seconds a child
process measured.
An engine that is not installed, or cannot run the module, raises
``Unavailable`` with the reason, which the table shows in place of a time.
"""

import inspect
import io

from bench.baseline import ISSUE9

# ours, then the interpreters issue 9 measured (bench.baseline), then the others
THEN = (f'wasmedge/interp@{ISSUE9}', f'wamr/interp@{ISSUE9}')
ENGINES = ('wasmedge/interp', 'wamr/interp', 'wasmedge/fast', 'wamr/fast') + THEN + (
    'pywasm', 'pwasm-interp', 'pwasm-compile', 'wasmtime')
OURS = ENGINES[:4]


class Unavailable(Exception):
    """The engine cannot run this workload here (the message says why)."""


MASKS = {'i32': (1 << 32) - 1, 'i64': (1 << 64) - 1}


def tiers_supported():
    """True when ``engine.runtime.Store`` takes an execution ``tier``."""
    from engine import runtime
    return 'tier' in inspect.signature(runtime.Store).parameters


def our_store(model, tier='interp', limits=None):
    """A store of runtime ``model`` running in ``tier``; Unavailable for the
    fast tier in a build that has only the interpreter."""
    from engine import runtime
    if tiers_supported():
        return runtime.Store(model, limits, tier=tier)
    if tier != 'interp':
        raise Unavailable(f"tier {tier!r} is not in this build (engine.runtime.Store takes no tier)")
    return runtime.Store(model, limits)


def prepare(engine, wasm, call):
    if engine not in ENGINES:
        raise ValueError(f'unknown engine {engine!r}')
    if engine in OURS:
        model, tier = engine.split('/')
        return _ours(model, tier, wasm, call)
    if engine in THEN:
        from bench import baseline
        return baseline.prepare(engine.split('/')[0], wasm, call, Unavailable)
    return {'pywasm': _pywasm, 'pwasm-interp': _pwasm, 'pwasm-compile': _pwasm,
            'wasmtime': _wasmtime}[engine](engine, wasm, call)


def _missing(package):
    raise Unavailable(f'{package} is not installed (pip install .[bench])')


# ------------------------------------------------------------ this project

def _ours(model, tier, wasm, call):
    from engine import embedding
    from engine.wasi import preview1 as wasi
    store = our_store(model, tier)
    # the executor's modules are imported now, not in the timed run (a
    # one-time cost of the process, as pwasm's imports are before its run)
    store.new_executor()
    module = embedding.module_decode(wasm)
    if call[0] == 'invoke':
        _, export, args = call
        inst = embedding.module_instantiate(store, module, [])
        addr = inst.exports[export][1]
        mask = MASKS[store.funcs[addr].type.results[0]]
        return lambda: embedding.func_invoke(store, addr, args)[0] & mask
    out = io.BytesIO()
    host = wasi.Wasi(wasi.WasiConfig(args=call[1], stdout=out, stderr=io.BytesIO(),
                                     deterministic=True))
    funcs = host.imports(store)
    externs = []
    for imp in module.imports:
        if imp.module != wasi.MODULE or imp.name not in funcs:
            raise Unavailable(f'import {imp.module}.{imp.name} is not provided')
        externs.append(funcs[imp.name])
    inst = embedding.module_instantiate(store, module, externs, run_start=False)
    host.bind(store, inst)
    addr = inst.exports['_start'][1]

    def go():
        try:
            store.invoke(addr, [])
            code = 0
        except wasi.WasiExit as e:
            code = e.code
        return code, out.getvalue()
    return go


# ------------------------------------------------------------ pywasm

def _pywasm(engine, wasm, call):
    try:
        import pywasm
    except ImportError:
        _missing('pywasm')
    runtime = pywasm.core.Runtime()
    desc = pywasm.core.ModuleDesc.from_reader(io.BytesIO(wasm))
    if call[0] == 'invoke':
        inst = runtime.instance(desc)
        _, export, args = call
        addr = [e for e in inst.exps if e.name == export][0].data.data
        result = runtime.machine.store.func[addr].type.rets[0]
        mask = MASKS['i64' if result == pywasm.core.ValType.i64() else 'i32']
        return lambda: runtime.invocate(inst, export, list(args))[0] & mask
    host = pywasm.wasi.Preview1(list(call[1]), {}, {})
    out = io.BytesIO()
    host.fd[1].pipe = out
    host.fd[2].pipe = io.BytesIO()
    host.bind(runtime)
    inst = runtime.instance(desc)
    return lambda: (host.main(runtime, inst), out.getvalue())


# ------------------------------------------------------------ pwasm

def _cold():
    """Turn off pwasm's disk cache of generated code (~/.cache/pwasm by
    default): with it warm, its compile mode loads code an earlier run
    compiled, so a second bench run would time pwasm without its
    compilation while ours includes it.  Both engines start cold."""
    try:
        from pwasm import codegen
    except ImportError:
        return
    if hasattr(codegen, 'CACHE_DIR'):
        codegen.CACHE_DIR = None


def _pwasm(engine, wasm, call):
    try:
        import pwasm
        from pwasm.wasi import Exit, WasiLite
    except ImportError:
        _missing('pwasm')
    mode = 'interpret' if engine == 'pwasm-interp' else 'compile'
    _cold()
    module = pwasm.decode_module(wasm)
    if call[0] == 'invoke':
        _, export, args = call
        inst = pwasm.instantiate(module, {}, mode=mode)
        fn = getattr(inst.exports, export)
        exp = next(e for e in module.exports if e.name == export)
        mask = MASKS['i32']
        try:
            results = inst.functions[exp.index].type.results
            mask = MASKS['i64' if str(results[0]) == 'i64' else 'i32']
        except (AttributeError, IndexError):
            pass

        def go():
            r = fn(*args)
            return (r[0] if isinstance(r, (list, tuple)) else r) & mask
        return go
    host = WasiLite(args=list(call[1]))
    inst = pwasm.instantiate(module, {'wasi_snapshot_preview1': host.imports(module)}, mode=mode)
    host.bind(inst)
    start = getattr(inst.exports, '_start')

    def go():
        try:
            start()
            code = 0
        except Exit as e:
            code = e.code
        if host.unsupported_calls:
            raise Unavailable(f'pwasm WASI lacks {", ".join(sorted(set(host.unsupported_calls)))}')
        return code, bytes(host.stdout)
    return go


# ------------------------------------------------------------ wasmtime

def _wasmtime(engine, wasm, call):
    try:
        import wasmtime
    except ImportError:
        _missing('wasmtime')
    eng = wasmtime.Engine()
    store = wasmtime.Store(eng)
    module = wasmtime.Module(eng, wasm)
    if call[0] == 'invoke':
        _, export, args = call
        inst = wasmtime.Instance(store, module, [])
        fn = inst.exports(store)[export]
        mask = MASKS['i64' if str(fn.type(store).results[0]) == 'i64' else 'i32']
        return lambda: fn(store, *args) & mask
    import tempfile
    cfg = wasmtime.WasiConfig()
    cfg.argv = list(call[1])
    tmp = tempfile.NamedTemporaryFile(prefix='bench-wasmtime-', suffix='.out')
    cfg.stdout_file = tmp.name
    store.set_wasi(cfg)
    linker = wasmtime.Linker(eng)
    linker.define_wasi()
    inst = linker.instantiate(store, module)
    start = inst.exports(store)['_start']

    def go():
        try:
            start(store)
            code = 0
        except wasmtime.ExitTrap as e:
            code = e.code
        with open(tmp.name, 'rb') as f:
            data = f.read()
        tmp.close()
        return code, data
    return go
