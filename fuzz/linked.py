"""Two-instance programs: a generated module and the *provider* module whose
functions, mutable globals, table and memory it imports (and, from the
embedder itself, the host functions of ``HOST_FUNCS``).

The provider travels inside the main module's bytes as a custom section
(``wasm-migrate:provider``; engines ignore custom sections), so everything
that hands a case around as one ``module.wasm`` (oracle, reproducers,
replay, minimisation) carries it along unchanged.  ``instantiate`` puts the
provider into the store first and links the main module against its
exports; a restore does the same in a fresh store, so the provider's
instance exists (with the same addresses) before the main module's image
set, which holds the imported state, is loaded into it.
"""

from engine import embedding
from fuzz.encode import u32

SECTION = 'wasm-migrate:provider'
PROVIDER = 'provider'          # the import module name
HOST = 'host'                  # the import module name of the embedder's own functions


def _mix(args):
    return [(args[0] * 0x9E3779B1 + 0x7F4A7C15) & 0xFFFFFFFF]


# what the embedder itself gives a linked module: (name, params, results,
# function of the argument list).  The module re-exports them, so a host
# function is also an entry (Executor.start of a function with no code)
HOST_FUNCS = (('mix', ('i32',), ('i32',), _mix),)


def host_func(name):
    """(params, results, function) of the host function ``name``."""
    for n, params, results, fn in HOST_FUNCS:
        if n == name:
            return params, results, fn
    raise KeyError(name)


def _leb(data, pos):
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, pos


def attach(main: bytes, provider: bytes) -> bytes:
    """``main`` with ``provider`` appended as a custom section."""
    name = SECTION.encode()
    payload = u32(len(name)) + name + provider
    return bytes(main) + b'\x00' + u32(len(payload)) + payload


def provider_of(wasm: bytes):
    """The provider module carried by ``wasm``, or None."""
    wasm = bytes(wasm)
    pos = 8
    want = SECTION.encode()
    try:
        while pos < len(wasm):
            sid = wasm[pos]
            size, pos = _leb(wasm, pos + 1)
            end = pos + size
            if sid == 0:
                n, p = _leb(wasm, pos)
                if wasm[p:p + n] == want:
                    return wasm[p + n:end]
            pos = end
    except IndexError:
        return None
    return None


_DECODED = {}           # wasm bytes -> decoded, validated Module (last few)


def decoded(wasm):
    """Decoding and validation are pure, and a case instantiates the same
    bytes once per hop: do them once per module (the provider's too)."""
    wasm = bytes(wasm)
    module = _DECODED.get(wasm)
    if module is None:
        module = embedding.module_decode(wasm)
        embedding.module_validate(module)
        if len(_DECODED) >= 8:
            _DECODED.pop(next(iter(_DECODED)))
        _DECODED[wasm] = module
    return module


def imports_for(store, module, wasm):
    """The extern values of ``module``'s imports: instantiates the provider
    carried by ``wasm`` in ``store`` (empty list when there is none)."""
    if not module.imports:
        return []
    provider = provider_of(wasm)
    if provider is None:
        imp = module.imports[0]
        raise ValueError(f'module imports {imp.module}.{imp.name} but carries no provider module')
    pinst = embedding.module_instantiate(store, decoded(provider), [], run_start=True)
    out = []
    for imp in module.imports:
        if imp.module == HOST and imp.kind == 'func':
            from engine import runtime, syntax
            params, results, fn = host_func(imp.name)
            out.append(('func', runtime.alloc_hostfunc(store, syntax.FuncType(params, results), fn)))
            continue
        if imp.module != PROVIDER or imp.name not in pinst.exports:
            raise ValueError(f'import {imp.module}.{imp.name}: not exported by the provider')
        out.append(pinst.exports[imp.name])
    return out


def peers(store, inst):
    """The instances a checkpoint of ``inst`` may link to (``checkpoint.save``
    and ``restore``'s ``peers``): ``{PROVIDER: the provider instance}``
    for a linked module, found as the owner of its imported functions, so
    that a restore in a fresh store gets that store's provider; None for
    a module without one."""
    for a in inst.funcaddrs:
        owner = getattr(store.funcs[a], 'module', None)
        if owner is not None and owner is not inst:
            return {PROVIDER: owner}
    return None
