"""Reference oracle: run a module's export under wasmtime (wasmtime-py) and
report the outcome in the engine's value representation.

wasmtime-py cannot pass v128 values to or from Python (it aborts), and f32
NaNs lose their signalling bit when converted to Python floats.  So the
export is never called directly: a small *shim* module imports it (and every
exported global) through a ``Linker`` and exposes wrappers that carry f32/f64
as i32/i64 bit patterns (``reinterpret``) and a v128 as two i64 halves.
Traps are reported with the spec testsuite's message texts.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import wasmtime

from engine import syntax
from fuzz import linked

NONNULL_FUNCREF = 'funcref'   # wasmtime cannot tell which function: compare non-null only

_TYPE_NAMES = {'i32': 'i32', 'i64': 'i64', 'f32': 'f32', 'f64': 'f64', 'v128': 'v128',
               'funcref': 'funcref', 'externref': 'externref', 'anyref': 'externref'}
# how each type crosses the Python boundary
_WIRE = {'i32': ('i32',), 'i64': ('i64',), 'f32': ('i32',), 'f64': ('i64',),
         'v128': ('i64', 'i64'), 'funcref': ('funcref',), 'externref': ('externref',)}
_MASK = {'i32': 0xFFFFFFFF, 'i64': 0xFFFFFFFFFFFFFFFF}

_TRAPS = {
    wasmtime.TrapCode.STACK_OVERFLOW: 'call stack exhausted',
    wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS: 'out of bounds memory access',
    wasmtime.TrapCode.HEAP_MISALIGNED: 'out of bounds memory access',
    wasmtime.TrapCode.TABLE_OUT_OF_BOUNDS: 'out of bounds table access',
    wasmtime.TrapCode.INDIRECT_CALL_TO_NULL: 'uninitialized element',
    wasmtime.TrapCode.BAD_SIGNATURE: 'indirect call type mismatch',
    wasmtime.TrapCode.INTEGER_OVERFLOW: 'integer overflow',
    wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO: 'integer divide by zero',
    wasmtime.TrapCode.BAD_CONVERSION_TO_INTEGER: 'invalid conversion to integer',
    wasmtime.TrapCode.UNREACHABLE: 'unreachable',
    wasmtime.TrapCode.OUT_OF_FUEL: 'out of fuel',
    # ref.as_non_null, call_ref, throw_ref on null: the spec's "null reference",
    # "null function reference", "null exception reference" (wasmtime has one code)
    wasmtime.TrapCode.NULL_REFERENCE: 'null ',
    # GC: array.get/set/fill/copy past the end, ref.cast of another type
    wasmtime.TrapCode.ARRAY_OUT_OF_BOUNDS: 'out of bounds array access',
    wasmtime.TrapCode.CAST_FAILURE: 'cast failure',
}
# a Wasm exception no handler caught (exception handling): the engine's
# UncaughtException message, which fuzz.oracle reports as the outcome's trap
UNCAUGHT = 'uncaught exception'
OUT_OF_FUEL = 'out of fuel'
# the legacy exception handling forms, which wasmtime (50) does not implement
# ("legacy_exceptions feature required"): fuzz.oracle skips its comparison
# for a module using any of them, the engine's own checks all still run
LEGACY_EXCEPTION_OPS = frozenset({'try', 'catch', 'catch_all', 'delegate', 'rethrow'})


def can_run(wasm):
    """Whether wasmtime can run ``wasm``: not when it uses the legacy
    exception handling forms."""
    from engine import binary
    m = binary.decode_module(wasm)
    return not any(i.op in LEGACY_EXCEPTION_OPS for f in m.funcs for i in f.body)


@dataclass
class Outcome:
    """What one call did.  ``results`` is None when it trapped (``trap``
    then holds the spec message, or ``'out of fuel'``)."""
    results: Optional[List[object]]
    trap: Optional[str]
    memories: Dict[str, bytes] = field(default_factory=dict)
    globals: Dict[str, object] = field(default_factory=dict)
    tables: Dict[str, List[object]] = field(default_factory=dict)
    fuel_used: Optional[int] = None


_ENGINES = {}


def _engine(fuel):
    key = bool(fuel)
    if key not in _ENGINES:
        cfg = wasmtime.Config()
        cfg.consume_fuel = key
        cfg.cranelift_opt_level = 'none'     # compile fast: modules run once
        # the generator's Wasm 3.0 features (fuzz.gen.WASM3_FEATURES)
        cfg.wasm_tail_call = True
        cfg.wasm_multi_memory = True
        cfg.wasm_memory64 = True
        cfg.wasm_threads = False
        cfg.wasm_relaxed_simd = False
        cfg.wasm_exceptions = True              # fuzz.gen's 'exceptions'
        cfg.wasm_function_references = True     # and 'function-references'
        cfg.wasm_gc = True                      # and 'gc' (fuzz.gen3's GC feature)
        _ENGINES[key] = wasmtime.Engine(cfg)
    return _ENGINES[key]


_MODULES = {}           # (fuel, wasm bytes or shim text) -> compiled wasmtime.Module
_MODULES_KEPT = 16


def _compiled(engine, key, make):
    """A compiled ``wasmtime.Module`` (immutable; every run still gets a
    fresh Store and Instance), kept for the next calls on the same bytes: a
    campaign runs each module once per argument tuple."""
    m = _MODULES.get(key)
    if m is None:
        if len(_MODULES) >= _MODULES_KEPT:
            del _MODULES[next(iter(_MODULES))]
        m = _MODULES[key] = wasmtime.Module(engine, make())
    return m


def type_name(vt):
    return _TYPE_NAMES[str(vt)]


def _wat_string(s):
    return '"' + ''.join(ch if ch.isalnum() or ch in '_-.' else ''.join(
        '\\%02x' % b for b in ch.encode()) for ch in s) + '"'


def _to_wire(t, lget):
    """Shim code turning wire locals (via ``lget(k)``) into one value of t."""
    if t == 'f32':
        return [lget(0), 'f32.reinterpret_i32']
    if t == 'f64':
        return [lget(0), 'f64.reinterpret_i64']
    if t == 'v128':
        return ['v128.const i64x2 0 0', lget(0), 'i64x2.replace_lane 0', lget(1),
                'i64x2.replace_lane 1']
    return [lget(0)]


def _from_wire(t, local):
    """Shim code pushing the wire values of the value held in ``local``."""
    get = f'local.get {local}'
    if t == 'f32':
        return [get, 'i32.reinterpret_f32']
    if t == 'f64':
        return [get, 'i64.reinterpret_f64']
    if t == 'v128':
        return [get, 'i64x2.extract_lane 0', get, 'i64x2.extract_lane 1']
    return [get]


def _wire_types(types):
    return [w for t in types for w in _WIRE[t]]


def _shim(entry, params, results, global_types):
    """WAT of the shim module for export ``entry`` and the given globals."""
    lines = ['(module']
    if entry is not None:
        lines.append(f'(import "m" {_wat_string(entry)} (func $f (param {" ".join(params)}) '
                     f'(result {" ".join(results)})))')
    for k, (name, t, mut) in enumerate(global_types):
        gt = f'(mut {t})' if mut else t
        lines.append(f'(import "m" {_wat_string(name)} (global $g{k} {gt}))')
    if entry is not None:
        wparams = _wire_types(params)
        body = []
        pos = 0
        for t in params:
            n = len(_WIRE[t])
            body += _to_wire(t, lambda i, base=pos: f'local.get {base + i}')
            pos += n
        body.append('call $f')
        first = len(wparams)
        for i in reversed(range(len(results))):
            body.append(f'local.set {first + i}')
        for i, t in enumerate(results):
            body += _from_wire(t, first + i)
        lines.append(f'(func (export "call") (param {" ".join(wparams)}) '
                     f'(result {" ".join(_wire_types(results))}) (local {" ".join(results)})')
        lines += body
        lines.append(')')
    for k, (name, t, mut) in enumerate(global_types):
        lines.append(f'(func (export "g{k}") (result {" ".join(_WIRE[t])}) (local {t}) '
                     f'global.get $g{k} local.set 0 {" ".join(_from_wire(t, 0))})')
    lines.append(')')
    return '\n'.join(lines)


def _flat_args(types, args):
    out = []
    for t, v in zip(types, args):
        if t == 'v128':
            out += [_signed(v & _MASK['i64'], 64), _signed(v >> 64, 64)]
        elif t in ('i32', 'f32'):
            out.append(_signed(v, 32))
        elif t in ('i64', 'f64'):
            out.append(_signed(v, 64))
        elif t == 'externref':
            out.append(None if v is None else v.value if isinstance(v, syntax.ExternRef) else v)
        else:
            if v is not None:
                raise ValueError('only null funcref arguments can be passed to wasmtime')
            out.append(None)
    return out


def _signed(v, bits):
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _ref(v):
    if isinstance(v, wasmtime.Val):
        v = v.value
    return v


def _from_flat(types, flat):
    out = []
    it = iter(flat)
    for t in types:
        if t in ('i32', 'f32'):
            out.append(next(it) & _MASK['i32'])
        elif t in ('i64', 'f64'):
            out.append(next(it) & _MASK['i64'])
        elif t == 'v128':
            lo = next(it) & _MASK['i64']
            hi = next(it) & _MASK['i64']
            out.append(lo | hi << 64)
        elif t == 'funcref':
            out.append(None if _ref(next(it)) is None else NONNULL_FUNCREF)
        else:
            v = _ref(next(it))
            out.append(None if v is None else syntax.ExternRef(v))
    return out


def _as_list(r, n):
    if n == 0:
        return []
    if n == 1:
        return [r]
    return list(r)


def _trap_message(exc, wasm):
    code = getattr(exc, 'trap_code', None)
    if code == getattr(wasmtime.TrapCode, 'UNCAUGHT_EXCEPTION', None) or (
            code is None and 'thrown Wasm exception' in str(exc)):
        return UNCAUGHT
    msg = _TRAPS.get(code)
    if msg is None:
        text = str(exc)
        for known in ('call stack exhausted', 'all fuel consumed'):
            if known in text:
                return OUT_OF_FUEL if 'fuel' in known else known
        return text
    if code == wasmtime.TrapCode.TABLE_OUT_OF_BOUNDS:
        # call_indirect past the table end is "undefined element" in the spec
        frames = exc.frames
        if frames:
            off = frames[0].module_offset
            if 0 <= off < len(wasm) and wasm[off] == 0x11:
                return 'undefined element'
    return msg


_VT = {0x7F: 'i32', 0x7E: 'i64', 0x7D: 'f32', 0x7C: 'f64', 0x7B: 'v128', 0x70: 'funcref',
       0x6F: 'externref', 0x69: 'exnref',
       0x6E: 'anyref', 0x6D: 'eqref', 0x6C: 'i31ref', 0x6B: 'structref', 0x6A: 'arrayref',
       0x71: 'nullref'}
_PACKED = (0x78, 0x77)      # i8, i16: storage types of GC fields only
_TYPED_REF = {0x63: 'ref null', 0x64: 'ref'}     # (ref null? ht): ht a byte or an s33 index


class _Reader:
    def __init__(self, data, pos=0):
        self.data, self.pos = data, pos

    def byte(self):
        b = self.data[self.pos]
        self.pos += 1
        return b

    def u32(self):
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result

    def valtype(self):
        b = self.byte()
        if b in _TYPED_REF:
            return f'({_TYPED_REF[b]} {self.u32()})'   # an s33 >= 0 reads as u32; abstract: one byte
        return _VT[b]

    def skip_const_expr(self):
        while True:
            op = self.byte()
            if op == 0x0B:
                return
            if op in (0x41, 0x42, 0x23, 0xD2):
                self.u32()            # LEB bytes; the value does not matter here
            elif op == 0x43:
                self.pos += 4
            elif op == 0x44:
                self.pos += 8
            elif op == 0xD0:
                self.u32()            # the heap type: a byte, or a type index (s33 >= 0)
            elif op == 0xFD:
                self.u32()
                self.pos += 16
            elif op in (0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E):
                pass                  # extended-const arithmetic


def _rec_group(r):
    """The types of one type-section entry (GC: a rec group 0x4E of
    subtypes, a subtype 0x50/0x4F with supertypes, or a composite type):
    a function type as (params, results), a struct or array type as None."""
    n = 1
    if r.data[r.pos] == 0x4E:
        r.byte()
        n = r.u32()
    out = []
    for _ in range(n):
        if r.data[r.pos] in (0x50, 0x4F):
            r.byte()
            for _ in range(r.u32()):
                r.u32()
        kind = r.byte()
        if kind == 0x60:
            params = [r.valtype() for _ in range(r.u32())]
            results = [r.valtype() for _ in range(r.u32())]
            out.append((params, results))
            continue
        for _ in range(r.u32() if kind == 0x5F else 1):     # struct fields, array element
            if r.data[r.pos] in _PACKED:
                r.byte()
            else:
                r.valtype()
            r.byte()                # mutability
        out.append(None)
    return out


def export_types(wasm):
    """{export name: ('func', (params, results)) | ('global', (type, mutable)) |
    (kind, None)} read from the binary: wasmtime-py aborts when asked to
    print a v128 type, so types are never read through it."""
    r = _Reader(wasm, 8)
    types, funcs, globals_, exports = [], [], [], []
    while r.pos < len(wasm):
        sid = r.byte()
        size = r.u32()
        end = r.pos + size
        if sid == 1:
            for _ in range(r.u32()):
                types += _rec_group(r)
        elif sid == 2:
            for _ in range(r.u32()):
                for _name in ('module', 'field'):
                    n = r.u32()           # (``r.pos += r.u32()`` would add to the old pos)
                    r.pos += n
                kind = r.byte()
                if kind == 0:
                    funcs.append(r.u32())
                elif kind == 1:
                    r.byte()
                    flags = r.byte()
                    r.u32()
                    if flags & 1:
                        r.u32()
                elif kind == 2:
                    flags = r.byte()
                    r.u32()
                    if flags & 1:
                        r.u32()
                else:
                    globals_.append((r.valtype(), bool(r.byte())))
        elif sid == 3:
            funcs += [r.u32() for _ in range(r.u32())]
        elif sid == 6:
            for _ in range(r.u32()):
                t = r.valtype()
                mut = bool(r.byte())
                r.skip_const_expr()
                globals_.append((t, mut))
        elif sid == 7:
            for _ in range(r.u32()):
                n = r.u32()
                name = wasm[r.pos:r.pos + n].decode('utf-8')
                r.pos += n
                kind = r.byte()
                exports.append((name, kind, r.u32()))
        r.pos = end
    out = {}
    for name, kind, idx in exports:
        if kind == 0:
            out[name] = ('func', types[funcs[idx]])
        elif kind == 3:
            out[name] = ('global', globals_[idx])
        else:
            out[name] = ({1: 'table', 2: 'memory'}[kind], None)
    return out


def run(wasm, entry, args, fuel=None):
    """Instantiate ``wasm`` afresh, call export ``entry`` with ``args``
    (engine representation) and return an ``Outcome`` with the results or
    trap, every exported memory, global (by export name) and table."""
    engine = _engine(fuel)
    store = wasmtime.Store(engine)
    if fuel:
        store.set_fuel(fuel)
    wasm = bytes(wasm)
    module = _compiled(engine, (bool(fuel), wasm), lambda: wasm)
    etypes = export_types(wasm)
    ftype = etypes.get(entry, (None, None))[1] if etypes.get(entry, ('',))[0] == 'func' else None
    gtypes = [(name, t[0], t[1]) for name, (kind, t) in etypes.items() if kind == 'global']
    if ftype is None:
        raise KeyError(f'no exported function {entry!r}')
    params, results = ftype
    imports = []
    provider = linked.provider_of(wasm)
    if provider is not None:            # a two-instance program: link the provider's exports
        pex = wasmtime.Instance(store, _compiled(engine, (bool(fuel), provider), lambda: provider),
                                []).exports(store)
        imports = [_host_func(store, imp.name) if imp.module == linked.HOST else pex[imp.name]
                   for imp in module.imports]
    try:
        inst = wasmtime.Instance(store, module, imports)
    except wasmtime.Trap as exc:
        return Outcome(None, _trap_message(exc, wasm))
    linker = wasmtime.Linker(engine)
    linker.define_instance(store, 'm', inst)
    text = _shim(entry, params, results, gtypes)
    shim = linker.instantiate(store, _compiled(engine, (bool(fuel), text),
                                               lambda: wasmtime.wat2wasm(text))).exports(store)
    try:
        raw = shim['call'](store, *_flat_args(params, args))
        out = Outcome(_from_flat(results, _as_list(raw, len(_wire_types(results)))), None)
    except wasmtime.Trap as exc:
        out = Outcome(None, _trap_message(exc, wasm))
    except wasmtime.WasmtimeError as exc:
        out = Outcome(None, _trap_message(exc, wasm))
    if fuel:
        out.fuel_used = fuel - store.get_fuel()
        store.set_fuel(10 ** 9)         # the getters below must not run dry
    exports = inst.exports(store)
    for k, (name, t, _) in enumerate(gtypes):
        raw = shim[f'g{k}'](store)
        out.globals[name] = _from_flat([t], _as_list(raw, len(_WIRE[t])))[0]
    for name, (kind, _) in etypes.items():
        if kind == 'memory':
            mem = exports[name]
            out.memories[name] = bytes(mem.read(store, 0, mem.data_len(store)))
        elif kind == 'table':
            tab = exports[name]
            t = type_name(tab.type(store).element)
            out.tables[name] = [_from_flat([t], [tab.get(store, i)])[0]
                                for i in range(tab.size(store))]
    return out


def _host_func(store, name):
    """The embedder's function ``name`` of ``fuzz.linked.HOST_FUNCS`` (i32
    parameters and results only: as the engine's host gets them)."""
    params, results, fn = linked.host_func(name)
    assert set(params + results) <= {'i32'}
    ft = wasmtime.FuncType([wasmtime.ValType.i32() for _ in params],
                           [wasmtime.ValType.i32() for _ in results])

    def call(*args):
        out = fn([a & 0xFFFFFFFF for a in args])
        return _signed(out[0], 32) if len(out) == 1 else None
    return wasmtime.Func(store, ft, call)


def run_generated(gm, args=None, fuel=None):
    """Run a ``fuzz.gen.GeneratedModule`` (first argument tuple by default)."""
    return run(gm.wasm, gm.entry, gm.args[0] if args is None else args, fuel)
