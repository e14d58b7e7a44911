"""Linked programs: a generated module and the *provider* module whose
functions, mutable globals, table and memory it imports (and, from the
embedder itself, the host functions of ``HOST_FUNCS``), plus, when the
provider exports ``SHARED``, a third instance, the *relay*, that imports
that function (which the main module holds without importing it, as a
link): a second peer holding a function another peer defines, so a
checkpoint must choose which instance its link names (docs/images.md
"Links": the defining one).

The provider travels inside the main module's bytes as a custom section
(``wasm-migrate:provider``; engines ignore custom sections), so everything
that hands a case around as one ``module.wasm`` (oracle, reproducers,
replay, minimisation) carries it along unchanged.  ``instantiate`` puts the
provider into the store first and links the main module against its
exports; a restore does the same in a fresh store, so the provider's
instance exists (with the same addresses) before the main module's image
set, which holds the imported state, is loaded into it.
"""

import functools

from engine import embedding, syntax
from fuzz import encode
from fuzz.encode import u32

SECTION = 'wasm-migrate:provider'
# the import module name, also the provider's peer name: longer than 16
# bytes (18-31), so link.img's name fields are not short, 4-byte-aligned
# ones only (the relay's name is short)
PROVIDER = 'wasm-migrate-provider'
HOST = 'host'                  # the import module name of the embedder's own functions
RELAY = 'relay'                # the peer name of the relay instance
ALIAS = 'provider-again'       # a second peer name of the provider (peers)
SHARED = 'pf_shared'           # the provider's export the relay imports


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
    if SHARED in pinst.exports:
        embedding.module_instantiate(store, relay_module(), [pinst.exports[SHARED]], run_start=True)
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


@functools.cache
def relay_module():
    """The relay: imports the provider's ``SHARED`` (of type i32 -> i32)
    and defines one function of its own calling it, exporting both.  The
    same Module object every time, so ``peers`` knows its instances."""
    m = syntax.Module()
    m.types = [syntax.FuncType(('i32',), ('i32',))]
    m.imports = [syntax.Import(PROVIDER, SHARED, 'func', 0)]
    body = [('local.get', 0), ('call', 0), ('i32.const', 1), ('i32.add',), ('end',)]
    m.funcs = [syntax.Func(0, [], [syntax.Instr(*ins) for ins in body])]
    m.exports = [syntax.Export('shared', 'func', 0), syntax.Export('own', 'func', 1)]
    module = embedding.module_decode(encode.encode_module(m))
    embedding.module_validate(module)
    return module


def peers(store, inst):
    """The instances a checkpoint of ``inst`` may link to (``checkpoint.save``
    and ``restore``'s ``peers``) for a linked module: the provider, found
    as the owner of its imported functions, so that a restore in a fresh
    store gets that store's provider, after the relay when the store has
    one (first, so that only the rule "the defining peer" names the
    provider in a link to the function both hold), and the provider once
    more under a second name (``ALIAS``, last: as a script registering an
    instance twice names it; the rule's defining peer is then its first
    name); None for a module without a provider."""
    provider = next((owner for owner in (store.funcs[a].module for a in inst.funcaddrs)
                     if owner is not None and owner is not inst), None)
    if provider is None:
        return None
    relay = next((f.module for f in store.funcs
                  if getattr(f.module, 'module', None) is relay_module()), None)
    out = {RELAY: relay} if relay is not None else {}
    out.update({PROVIDER: provider, ALIAS: provider})
    return out
