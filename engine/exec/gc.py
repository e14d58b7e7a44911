"""GC instructions (Wasm 3.0, exec/instructions.rst "Aggregate Reference
Instructions", "Scalar Reference Instructions", casts), shared by both
interpreters.

Like ``memories.instruction``, an instruction is a value-level function
``(fn, params, results)``: ``fn`` takes operand values and returns the
result value (or None); the WasmEdge model applies it to its whole-value
stack, the WAMR model to its 32-bit cells, where a GC reference is one cell
holding the object itself (as an exnref cell holds the exception), null
being ``cells.NONE``.  Branching casts (br_on_cast, br_on_cast_fail) are a
predicate (``cast_test``) the executors wrap as their branch closures.

The heap objects are explicit data (``syntax.Struct``, ``syntax.Array``,
``syntax.I31``): a struct or array holds its canonical defined type
(``deftypes``) and a list of field values, packed fields as their masked
integers, so the whole state stays inspectable.
"""

from .. import deftypes
from .. import syntax as S
from ..errors import Trap
from ..opcodes import GC_BRANCHES, GC_OPS
from ..runtime import default_value

_M32 = 0xFFFFFFFF
ANYREF, EXTERNREF, I32 = S.ANYREF, S.EXTERNREF, S.I32
I31REF = S.RefType(False, 'i31')
_WIDTH = {'i8': 1, 'i16': 2, 'i32': 4, 'f32': 4, 'i64': 8, 'f64': 8, 'v128': 16}
_PACK_MASK = {'i8': 0xFF, 'i16': 0xFFFF}

OPS, BRANCHES = GC_OPS, GC_BRANCHES



def unpacked(st):
    """The value type a storage type's values are on the stack: i32 for i8/i16."""
    return I32 if st in _PACK_MASK else st


def _pack(st, v):
    m = _PACK_MASK.get(st)
    return v & m if m is not None else v


def _extend(st, v, signed):
    """A packed field read by get_s / get_u (an unpacked one as it is)."""
    if st == 'i8':
        return (v | 0xFFFFFF00) if signed and v & 0x80 else v
    if st == 'i16':
        return (v | 0xFFFF0000) if signed and v & 0x8000 else v
    return v


def _null(what):
    raise Trap(f'null {what} reference')


def _span(r, d, n):
    """The elements of array ``r`` after checking it is not null and
    holds [d, d + n)."""
    if r is None:
        _null('array')
    fields = r.fields
    if d + n > len(fields):
        raise Trap('out of bounds array access')
    return fields


def top_class(rt, module):
    """The value class (syntax.value_class) of a reference type of
    ``module``: the representation its values share."""
    if isinstance(rt.heap, int):
        return S.FUNCREF if isinstance(module.types[rt.heap], S.FuncType) else ANYREF
    return S.value_class(S.RefType(True, rt.heap))


def cast_test(store, inst, rt):
    """A predicate ``v -> bool``: does reference value ``v`` have type
    ``rt`` (a RefType of the instance's module)?  The runtime type of a
    value is its object's defined type, a function's type, or the abstract
    type of an i31, host or extern reference (exec/instructions.rst ref.test)."""
    heap = deftypes.resolve(rt.heap, deftypes.module_keys(inst.module))
    nullable = rt.nullable
    funcs = store.funcs
    sub = deftypes.heap_sub

    def test(v):
        if v is None:
            return nullable
        if v.__class__ is int:
            return sub(S.type_key(funcs[v].type), heap)
        k = getattr(v, 'ref_kind', None)
        if k == 'struct' or k == 'array':
            return sub(v.type, heap)
        if k == 'i31':
            return heap in ('i31', 'eq', 'any')
        if k == 'host':
            return heap == 'any'
        if k == 'exn':
            return heap == 'exn'
        return heap == 'extern'     # an ExternRef
    return test


# The instructions whose ``instruction(...)`` closure is the module's alone
# (no store, instance or limits in it): the pre-decoders share it between
# the module's instances (fusion.binder).
MODULE_ONLY = frozenset(('ref.eq', 'ref.i31', 'i31.get_s', 'i31.get_u', 'any.convert_extern',
                         'extern.convert_any', 'struct.new', 'struct.new_default', 'struct.get',
                         'struct.get_s', 'struct.get_u', 'struct.set', 'array.len', 'array.copy',
                         'array.get', 'array.get_s', 'array.get_u', 'array.set', 'array.fill'))


def instruction(store, inst, ins):
    """``(fn, params, results)`` for one GC instruction (not a branch)."""
    name, imm = ins.op, ins.imm
    module = inst.module
    types = module.types
    if name == 'ref.eq':
        def fn(a, b):
            if a is None or b is None:
                return 1 if a is b else 0
            return 1 if a is b or (a.__class__ is S.I31 and a == b) else 0
        return fn, (S.RefType(True, 'eq'),) * 2, (I32,)
    if name == 'ref.i31':
        return (lambda x: S.I31(x & 0x7FFFFFFF)), (I32,), (I31REF,)
    if name in ('i31.get_s', 'i31.get_u'):
        signed = name == 'i31.get_s'

        def fn(r):
            if r is None:
                _null('i31')
            v = r.value
            return (v | 0x80000000) if signed and v & 0x40000000 else v
        return fn, (S.RefType(True, 'i31'),), (I32,)
    if name == 'any.convert_extern':
        def fn(r):
            if r is None:
                return None
            v = r.value
            return v if getattr(v, 'ref_kind', None) in ('struct', 'array', 'i31') \
                else S.HostRef(v)
        return fn, (EXTERNREF,), (ANYREF,)
    if name == 'extern.convert_any':
        def fn(r):
            if r is None:
                return None
            return S.ExternRef(r.value if r.__class__ is S.HostRef else r)
        return fn, (ANYREF,), (EXTERNREF,)
    if name == 'ref.test' or name == 'ref.cast':
        test = cast_test(store, inst, imm)
        cls = top_class(imm, module)
        if name == 'ref.test':
            return (lambda v: 1 if test(v) else 0), (cls,), (I32,)

        def fn(v):
            if not test(v):
                raise Trap('cast failure')
            return v
        return fn, (cls,), (cls,)
    keys = deftypes.module_keys(module)
    if name.startswith('struct.'):
        return _struct(name, imm, types, keys)
    return _array(store, inst, name, imm, types, keys)


def _struct(name, imm, types, keys):
    if name in ('struct.new', 'struct.new_default'):
        st = types[imm]
        key = keys[imm]
        fields = st.fields
        if name == 'struct.new_default':
            zeros = [default_value(unpacked(f.storage)) for f in fields]
            return (lambda: S.Struct(key, list(zeros))), (), (ANYREF,)
        packs = [f.storage for f in fields]

        def fn(*vals):
            return S.Struct(key, [_pack(p, v) for p, v in zip(packs, vals)])
        return fn, tuple(unpacked(f.storage) for f in fields), (ANYREF,)
    x, y = imm
    f = types[x].fields[y]
    st = f.storage
    t = unpacked(st)
    if name == 'struct.set':
        def fn(r, v):
            if r is None:
                _null('structure')
            r.fields[y] = _pack(st, v)
        return fn, (ANYREF, t), ()
    signed = name == 'struct.get_s'

    def fn(r):
        if r is None:
            _null('structure')
        return _extend(st, r.fields[y], signed)
    return fn, (ANYREF,), (t,)


def _read_data(st, raw, s, n):
    """n elements of storage type ``st`` from bytes ``raw`` at ``s``."""
    w = _WIDTH[st]
    if s + n * w > len(raw):
        raise Trap('out of bounds memory access')
    return [int.from_bytes(raw[s + k * w:s + (k + 1) * w], 'little') for k in range(n)]


def _array(store, inst, name, imm, types, keys):
    if name == 'array.len':
        def fn(r):
            if r is None:
                _null('array')
            return len(r.fields)
        return fn, (ANYREF,), (I32,)
    if name == 'array.copy':
        def fn(dst, d, src, s, n):
            if dst is None or src is None:
                _null('array')
            fields = _span(dst, d, n)          # checked before the source (spec order)
            fields[d:d + n] = _span(src, s, n)[s:s + n]
        return fn, (ANYREF, I32, ANYREF, I32, I32), ()
    x = imm[0] if isinstance(imm, tuple) else imm
    at = types[x]
    st = at.field.storage
    t = unpacked(st)
    key = keys[x]
    Array = S.Array
    limit = store.limits.max_table_elems

    def size(n):
        if n > limit:
            raise Trap(f'out of memory: an array of {n} elements is past the limit '
                       f'of {limit} (max_table_elems)')
        return n
    if name == 'array.new':
        return (lambda v, n: Array(key, [_pack(st, v)] * size(n))), (t, I32), (ANYREF,)
    if name == 'array.new_default':
        zero = default_value(t)
        return (lambda n: Array(key, [zero] * size(n))), (I32,), (ANYREF,)
    if name == 'array.new_fixed':
        return (lambda *vals: Array(key, [_pack(st, v) for v in vals])), (t,) * imm[1], (ANYREF,)
    if name == 'array.new_data':
        di = store.datas[inst.dataaddrs[imm[1]]]
        return (lambda s, n: Array(key, _read_data(st, di.data, s, n))), (I32, I32), (ANYREF,)
    if name == 'array.new_elem':
        ei = store.elems[inst.elemaddrs[imm[1]]]

        def fn(s, n):
            if s + n > len(ei.elem):
                raise Trap('out of bounds table access')
            return Array(key, ei.elem[s:s + n])
        return fn, (I32, I32), (ANYREF,)
    if name in ('array.get', 'array.get_s', 'array.get_u'):
        signed = name == 'array.get_s'

        def fn(r, i):
            return _extend(st, _span(r, i, 1)[i], signed)
        return fn, (ANYREF, I32), (t,)
    if name == 'array.set':
        def fn(r, i, v):
            _span(r, i, 1)[i] = _pack(st, v)
        return fn, (ANYREF, I32, t), ()
    if name == 'array.fill':
        def fn(r, d, v, n):
            fields = _span(r, d, n)            # checked before n values are made
            fields[d:d + n] = [_pack(st, v)] * n
        return fn, (ANYREF, I32, t, I32), ()
    if name == 'array.init_data':
        di = store.datas[inst.dataaddrs[imm[1]]]

        def fn(r, d, s, n):
            fields = _span(r, d, n)            # the array's bounds before the data's
            fields[d:d + n] = _read_data(st, di.data, s, n)
        return fn, (ANYREF, I32, I32, I32), ()
    if name == 'array.init_elem':
        ei = store.elems[inst.elemaddrs[imm[1]]]

        def fn(r, d, s, n):
            fields = _span(r, d, n)
            if s + n > len(ei.elem):
                raise Trap('out of bounds table access')
            fields[d:d + n] = ei.elem[s:s + n]
        return fn, (ANYREF, I32, I32, I32), ()
    raise AssertionError(name)      # pragma: no cover - OPS lists the names above
