"""The embedding interface (spec appendix/embedding.rst) that the
conformance runner and other hosts use; thin wrappers over binary, valid,
runtime and the store's executor."""

from . import deftypes, runtime
from . import syntax as S
from .errors import LinkError, Trap

_INFO_ATTR = '_module_info'


def store_init(executor='wasmedge', limits=None, tier='interp'):
    """A new, empty store whose functions run on the given executor and
    tier ('interp' | 'fast', the compiled tier), within ``limits``
    (``engine.limits.Limits``; default: ``limits.DEFAULT``)."""
    return runtime.Store(executor, limits, tier)


def module_decode(data, limits=None, standard=3):
    """Binary -> Module (raises DecodeError, or LimitError for a module
    larger than ``limits`` allow); ``standard=2``: the 2.0 binary format
    (no exception handling, 2.0 encodings only)."""
    from .binary import decode_module
    return decode_module(bytes(data), limits, standard)


def module_validate(module, standard=3):
    """Module -> ModuleInfo (raises ValidationError); cached on the module.
    ``standard``: 3 (Wasm 3.0, the default) or 2, the Wasm 2.0 rules where
    3.0 relaxed them (``valid.STANDARDS``); a module validated once keeps
    the standard it was validated under."""
    info = getattr(module, _INFO_ATTR, None)
    if info is None:
        from .valid import validate_module
        info = validate_module(module, standard)
        setattr(module, _INFO_ATTR, info)
    return info


def module_instantiate(store, module, externvals, run_start=True):
    """Validate if needed, link and instantiate (LinkError / Trap)."""
    info = module_validate(module)
    return runtime.instantiate(store, module, info,
                               [tuple(ev) for ev in externvals], run_start)


def instance_export(inst, name):
    """The extern value exported under ``name``: (kind, addr)."""
    try:
        return inst.exports[name]
    except KeyError:
        raise LinkError('unknown export') from None


def _check_value(t, v, store=None, fi=None):
    r = S.reftype(t)
    if r is not None:
        if v is None:
            return r.nullable
        if S.value_class(r) == S.EXTERNREF:
            return isinstance(v, S.ExternRef) and r.heap not in S.HEAP_BOTTOMS
        if S.value_class(r) == S.EXNREF:
            return isinstance(v, S.Exn) and r.heap not in S.HEAP_BOTTOMS
        if S.value_class(r) == S.ANYREF:    # GC: a host reference, an i31, a struct or array
            kind = getattr(v, 'ref_kind', None)
            have = {'host': 'any', 'i31': 'i31'}.get(kind) or \
                (v.type if kind in ('struct', 'array') else None)
            if have is None:
                return False
            want = r.heap
            if isinstance(want, int):
                if fi is None or fi.module is None:
                    return False
                want = deftypes.resolve(want, deftypes.module_keys(fi.module.module))
            return want is not None and deftypes.heap_sub(have, want)
        if not isinstance(v, int) or r.heap in S.HEAP_BOTTOMS:
            return False
        if isinstance(r.heap, int):     # (ref $t): a function of that type
            if store is None or fi is None or fi.module is None or not 0 <= v < len(store.funcs):
                return False
            return S.type_key(store.funcs[v].type) == S.type_key(fi.module.types[r.heap])
        return True
    bits = {S.I32: 32, S.F32: 32, S.I64: 64, S.F64: 64, S.V128: 128}[t]
    return isinstance(v, int) and 0 <= v < (1 << bits)


def func_invoke(store, funcaddr, args):
    """Call a function with argument values (syntax.py representation)."""
    fi = store.funcs[funcaddr]
    params = fi.type.params
    args = list(args)
    if len(args) != len(params):
        raise Trap('wrong number of arguments')
    for t, v in zip(params, args):
        if not _check_value(t, v, store, fi):
            raise Trap(f'argument type mismatch: {v!r} for {t}')
    return list(store.invoke(funcaddr, args))


def func_type(store, funcaddr):
    return store.funcs[funcaddr].type


def global_read(store, globaladdr):
    return store.globals[globaladdr].value


def global_write(store, globaladdr, value):
    g = store.globals[globaladdr]
    if not g.type.mut:
        raise Trap('global is immutable')
    g.value = value


def spectest_instance(store):
    """The testsuite's "spectest" host module, allocated in ``store``."""
    return runtime.spectest_instance(store)
