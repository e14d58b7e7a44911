"""Modules from ``wasm-tools smith``, restricted to Wasm 2.0.

smith explores shapes our own generator does not (odd section layouts,
imports-free but export-everything modules, deep expression trees); with
``--ensure-termination`` it threads a fuel global through loops and calls,
so every run ends, by trapping with ``unreachable`` when the fuel is gone.
The seed bytes also pick which exported function to call and its arguments.
"""

import hashlib
import os
import subprocess
import tempfile

from engine import syntax
from fuzz import encode, gen
from fuzz.wasmtime_oracle import export_types

# Everything beyond Wasm 2.0 off; small memories and tables; no imports so
# that a module instantiates on its own; every entity exported so that the
# final state (memories, globals, tables) can be compared.
SMITH_FLAGS = (
    '--ensure-termination', '--fuel', '100',
    '--threads-enabled', 'false', '--shared-everything-threads-enabled', 'false',
    '--tail-call-enabled', 'false', '--exceptions-enabled', 'false',
    '--gc-enabled', 'false', '--memory64-enabled', 'false',
    '--relaxed-simd-enabled', 'false', '--extended-const-enabled', 'false',
    '--custom-descriptors-enabled', 'false', '--compact-imports-enabled', 'false',
    '--wide-arithmetic-enabled', 'false', '--custom-page-sizes-enabled', 'false',
    '--simd-enabled', 'true', '--reference-types-enabled', 'true',
    '--bulk-memory-enabled', 'true', '--multi-value-enabled', 'true',
    '--saturating-float-to-int-enabled', 'true', '--sign-extension-ops-enabled', 'true',
    '--max-memories', '0', '--max-memory32-bytes', str(4 * 65536),
    '--memory-max-size-required', 'true', '--max-tables', '2', '--max-table-elements', '64',
    '--table-max-size-required', 'true',
    '--max-imports', '0', '--min-funcs', '1', '--max-funcs', '12', '--min-exports', '1',
    '--max-instructions', '200', '--max-data-segments', '8',
    '--max-element-segments', '8', '--max-elements', '16',
)


def _shape(c):
    """The module interface smith must implement: an entry function of a
    seed-chosen signature, a memory and a few mutable globals, all exported
    (smith's ``--exports``), so that results and final state are observable."""
    mg = gen.ModuleGen(c)
    mg.nfuncs = 0
    params = tuple(mg.valtype() for _ in range(c.integers(0, 3)))
    results = tuple(mg.valtype() for _ in range(c.integers(0, 3)))
    m = syntax.Module()
    m.types = [syntax.FuncType(params, results)]
    m.funcs = [syntax.Func(0, [], [syntax.Instr('unreachable'), syntax.Instr('end')])]
    m.mems = [syntax.Mem(syntax.MemType(syntax.Limits(1, 1 + c.integers(0, 2))))]
    m.exports = [syntax.Export('run', 'func', 0), syntax.Export('mem', 'memory', 0)]
    for k in range(c.integers(0, 3)):
        t = mg.valtype()
        m.globals.append(syntax.Global(syntax.GlobalType(True, t),
                                       [syntax.Instr(*mg.const_instr(t)), syntax.Instr('end')]))
        m.exports.append(syntax.Export(f'g{k}', 'global', k))
    return encode.encode_module(m), mg


def smith_wasm(seed, canonicalize_nans=True, fuel=100, shape=None):
    """Binary module for ``seed`` (bytes), or None if smith could not make
    one; ``shape`` is an optional module whose exports smith must provide."""
    flags = list(SMITH_FLAGS)
    flags[flags.index('--fuel') + 1] = str(fuel)
    if canonicalize_nans:
        flags += ['--canonicalize-nans', 'true']
    with tempfile.TemporaryDirectory() as tmp:
        if shape is not None:
            path = os.path.join(tmp, 'shape.wasm')
            with open(path, 'wb') as f:
                f.write(shape)
            flags += ['--exports', path]
        out = os.path.join(tmp, 'out.wasm')
        proc = subprocess.run([gen.wasm_tools(), 'smith', *flags, '-o', out],
                              input=bytes(seed), capture_output=True)
        if proc.returncode or not os.path.exists(out):
            return None
        with open(out, 'rb') as f:
            return f.read()


def from_bytes(seed, canonicalize_nans=True, fuel=100):
    """A ``GeneratedModule`` for ``seed`` (entry ``run``), or None in the rare
    case smith fails on the seed.  The seed's hash picks the interface and
    arguments, the seed itself drives smith."""
    c = gen.BytesChooser(hashlib.sha256(bytes(seed)).digest() * 4)
    shape, mg = _shape(c)
    wasm = smith_wasm(seed, canonicalize_nans, fuel, shape)
    if wasm is None:
        return None
    exports = export_types(wasm)
    params, results = exports['run'][1]
    args = [tuple(mg.arg_value(t) for t in params) for _ in range(c.integers(1, 3))]
    globals_ = [(name, t[0], t[1]) for name, (kind, t) in exports.items() if kind == 'global']
    memory = next((name for name, (kind, _) in exports.items() if kind == 'memory'), None)
    return gen.GeneratedModule(wasm, None, 'run', tuple(params), tuple(results), args,
                               globals_, memory)


def from_seed(n, length=512, **kw):
    """Convenience: smith module from the n-th pseudo-random seed."""
    data = b''.join(hashlib.sha256(b'%d:%d' % (n, i)).digest() for i in range((length + 31) // 32))
    return from_bytes(data[:length], **kw)


__all__ = ['SMITH_FLAGS', 'smith_wasm', 'from_bytes', 'from_seed']
