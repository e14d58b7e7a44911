"""The GC heap of a stopped run as explicit data (Wasm 3.0 GC: structs,
arrays, i31 and host references seen as anyref), for checkpoints, image
sets (``gc.img``), the translator and the neutral form.

Structs and arrays have identity (``ref.eq``) and may form cycles, so they
cannot be written as values the way exceptions are: each object is written
once with an *entry id* and every reference to it is that id.  i31 and host
references have no identity and are entries per distinct value.  See
docs/images.md "GC heap" for the files; this module is the one place that
reads or writes them.

Three forms of the same heap:

- store level (executors): ``syntax.Struct`` / ``Array`` holding a
  canonical type key and store-level fields (function *addresses*);
- module level (``state.Snapshot``, as a funcref is a function index
  there): ``Obj`` holding the module's type index and module-level fields.
  ``Out`` / ``In`` convert between the two, keeping sharing;
- entries (``ImageSet.heap``): what ``gc.img`` holds, fields tagged.
"""

import dataclasses
import operator
import struct

from .. import deftypes, faults
from .. import limits as L
from .. import syntax as S
from ..exec.cells import NONE
from ..syntax import ExternRef, HostRef, I31, value_class

FILE = 'gc.img'
MAGIC = b'GCH1'
KINDS = ('struct', 'array', 'i31', 'host')
# field tags (docs/images.md "GC heap")
NULL, T_I31, OBJ, FUNC, NUM32, NUM64, NUM128, HOST, EXN = range(9)
_NUM_TAG = {'i8': NUM32, 'i16': NUM32, 'i32': NUM32, 'f32': NUM32,
            'i64': NUM64, 'f64': NUM64, 'v128': NUM128}
_BITS = {'i8': 8, 'i16': 16, 'i32': 32, 'f32': 32, 'i64': 64, 'f64': 64, 'v128': 128}


class HeapError(Exception):
    """Raised by ``Out`` for state it cannot express; the checkpoint turns
    it into its own ``GCHeapError``."""


class Obj:
    """A struct or array at module level: ``typeidx`` a type index of the
    module, ``kind`` 'struct' or 'array', ``fields`` module-level values.
    Compared by identity, as the object it stands for."""
    __slots__ = ('typeidx', 'kind', 'fields')

    def __init__(self, typeidx, kind, fields):
        self.typeidx, self.kind, self.fields = typeidx, kind, fields

    def __repr__(self):
        return f'Obj({self.kind} {self.typeidx}, {len(self.fields)} fields)'


# ------------------------------------------------------------ the module

def uses_gc(module):
    """Whether sets of ``module`` carry a heap (docs/images.md "GC heap"):
    it defines a struct or array type, mentions an anyref-class type, or
    has a GC instruction.  Cached on the module."""
    hit = module.__dict__.get('_uses_gc')
    if hit is None:
        hit = module.__dict__['_uses_gc'] = _uses_gc(module)
    return hit


def _uses_gc(module):
    from ..opcodes import GC_OPS, GC_BRANCHES
    if any(isinstance(ct, (S.StructType, S.ArrayType)) for ct in module.types):
        return True
    types = [t for ct in module.types for t in deftypes.storage_types(ct)]
    types += [g.type.valtype for g in module.globals] + [t.type.elemtype for t in module.tables]
    types += [e.type for e in module.elems] + [t for f in module.funcs for t in f.locals]
    for imp in module.imports:
        types.append(getattr(imp.desc, 'valtype', None) or getattr(imp.desc, 'elemtype', None))
    if any(t is not None and t not in ('i8', 'i16') and value_class(t) == 'anyref' for t in types):
        return True
    ops = set(GC_OPS) | set(GC_BRANCHES)
    return any(ins.op in ops for f in module.funcs for ins in f.body)


def _layout(module, typeidx):
    """(is a struct, storage types) of a struct or array type, cached on the
    module (every object of a heap asks)."""
    cache = module.__dict__.setdefault('_gc_layout', {})
    hit = cache.get(typeidx)
    if hit is None:
        ct = module.types[typeidx]
        if isinstance(ct, S.StructType):
            hit = (True, [f.storage for f in ct.fields])
        else:
            hit = (False, [ct.field.storage])
        cache[typeidx] = hit
    return hit


def field_types(module, obj_typeidx, n):
    """The storage type of each of the ``n`` fields of an object of type
    ``obj_typeidx`` (a struct's own list, an array's element type n times):
    what a walker of the heap needs to know which fields hold references."""
    struct_, st = _layout(module, obj_typeidx)
    return st if struct_ else st * n


def _index_of_key(module):
    """Canonical key -> the first type index of ``module`` with that key."""
    cache = module.__dict__.get('_gc_key_index')
    keys = deftypes.module_keys(module)
    if cache is None or cache[0] is not keys:
        out = {}
        for i, k in enumerate(keys):
            out.setdefault(k, i)
        cache = module.__dict__['_gc_key_index'] = (keys, out)
    return cache[1]


def matches(module, v, t):
    """Whether module-level GC value ``v`` (not null) may sit in a slot or
    field of reference type ``t`` (its anyref or externref class); cached
    on the module by (the value's type, ``t``)."""
    what = v.typeidx if isinstance(v, Obj) else v.__class__
    cache = module.__dict__.setdefault('_gc_matches', {})
    hit = cache.get((what, t))
    if hit is None:
        hit = cache[(what, t)] = _matches(module, v, t)
    return hit


def _matches(module, v, t):
    r = S.reftype(t)
    if value_class(t) == 'externref':
        return r.heap not in S.HEAP_BOTTOMS
    heap = deftypes.resolve(r.heap, deftypes.module_keys(module))
    if heap is None:
        return False
    if isinstance(v, Obj):
        return deftypes.heap_sub(deftypes.module_keys(module)[v.typeidx], heap)
    if isinstance(v, I31):
        return deftypes.heap_sub('i31', heap)
    return heap == 'any'            # a host reference


# ------------------------------------------------------------ store <-> module

def _is_ref(st):
    return st not in _NUM_TAG


class _Copy:
    """One direction of a heap copy (store level <-> module level), each
    object copied once (``memo``: id of the source -> (copy, source)), so
    sharing and cycles carry over; no recursion, so long lists are fine.
    A direction says what a leaf is (copied as it is), how an object and
    a function or exnref field cross, and which side holds the type index."""

    def value(self, t, v):
        """A value of an anyref- or externref-class slot."""
        if v is None:
            return None
        if value_class(t) == 'externref':
            inner = v.value
            return v if isinstance(inner, int) else ExternRef(self.any(inner))
        return self.any(v)

    def any(self, v):
        if self._leaf(v):
            return v
        hit = self.memo.get(id(v))
        if hit is not None:
            return hit[0]
        root = self._new(v)
        work = [v]
        while work:
            src = work.pop()
            copy = self.memo[id(src)][0]
            types = field_types(self.module, self._typeidx(src, copy), len(src.fields))
            for i, (st, f) in enumerate(zip(types, src.fields)):
                copy.fields[i] = self._field(st, f, work)
        return root

    def _field(self, st, f, work):
        if not _is_ref(st) or f is None:
            return f
        c = value_class(st)
        if c == 'funcref':
            return self._func(f)
        if c == 'exnref':
            return self._exn(f)
        inner = f.value if c == 'externref' else f
        if self._leaf(inner):
            return f                                # a host externref, an i31, a host anyref
        hit = self.memo.get(id(inner))
        if hit is None:
            self._new(inner)
            work.append(inner)
            hit = self.memo[id(inner)]
        return ExternRef(hit[0]) if c == 'externref' else hit[0]


class Out(_Copy):
    """Store-level GC values of one stopped run -> module level (``Obj``).
    ``func_index`` maps a function address to the module's index (or
    raises); ``exn_out`` a store exnref to module level (exnstate)."""

    def __init__(self, module, func_index, exn_out=None):
        self.module, self._func, self._exn = module, func_index, exn_out
        self.memo = {}

    @staticmethod
    def _leaf(x):
        return isinstance(x, int) or x.ref_kind in ('i31', 'host')

    @staticmethod
    def _typeidx(src, copy):
        return copy.typeidx

    def _new(self, s):
        idx = _index_of_key(self.module).get(s.type)
        if idx is None:
            raise HeapError(f'a GC {s.ref_kind} of a type the module does not define '
                            f'(made by another instance)')
        o = Obj(idx, s.ref_kind, [None] * len(s.fields))
        self.memo[id(s)] = (o, s)
        return o


class In(_Copy):
    """Module-level GC values -> store-level ones of instance ``inst``:
    all objects reachable are allocated first, then filled (cycles).
    ``exn_in`` maps a module-level exnref field to the store's."""

    def __init__(self, inst, exn_in=None, funcaddrs=None):
        self.inst, self.module = inst, inst.module
        # the address of every function index, links (migrate/links.py) included
        self.funcaddrs = inst.funcaddrs if funcaddrs is None else funcaddrs
        self.keys = deftypes.module_keys(inst.module)
        self.exn_in = exn_in
        self.memo = {}

    @staticmethod
    def _leaf(x):
        return not isinstance(x, Obj)

    @staticmethod
    def _typeidx(src, copy):
        return src.typeidx

    def _func(self, f):
        return self.funcaddrs[f]

    def _exn(self, f):
        return self.exn_in(f)

    def _new(self, o):
        cls = S.Struct if o.kind == 'struct' else S.Array
        s = cls(self.keys[o.typeidx], [None] * len(o.fields))
        self.memo[id(o)] = (s, o)
        return s


# ------------------------------------------------------------ module level -> entries

class HeapTable:
    """Module-level GC values -> entry ids of ``gc.img``'s table; each
    object gets one entry (its fields tagged), i31 and host values one
    entry per distinct value."""

    def __init__(self, module):
        self.module = module
        self.entries = []          # ('struct'|'array', typeidx, [(tag, payload)]) | ('i31'|'host', n)
        self.ids = {}              # id(Obj) -> (entry id, Obj)
        self.values = {}           # ('i31'|'host', n) -> entry id
        self.elems = []            # (elem index, [entry ids or NONE])
        self.exns = None           # the set's exnstate.ExnTable (exnref fields are its indices)

    def cell(self, t, v):
        """The cell of a value of an anyref- or externref-class slot."""
        if v is None:
            return NONE
        if faults.GC_IDENTITY:
            self.ids = {}          # the fault: each slot writes its own copies
        if value_class(t) == 'externref':
            inner = v.value
            return self._value('host', inner) if isinstance(inner, int) else self.ref(inner)
        return self.ref(v)

    def _value(self, kind, n):
        k = self.values.get((kind, n))
        if k is None:
            k = self.values[(kind, n)] = len(self.entries)
            self.entries.append((kind, n))
        return k

    def ref(self, v):
        if isinstance(v, I31):
            return self._value('i31', v.value)
        if isinstance(v, HostRef):
            return self._value('host', v.value)
        hit = self.ids.get(id(v))
        if hit is not None:
            return hit[0]
        root = self._new(v)
        work = [v]
        while work:
            o = work.pop()
            fields = self.entries[self.ids[id(o)][0]][2]
            types = field_types(self.module, o.typeidx, len(o.fields))
            for st, f in zip(types, o.fields):
                fields.append(self._field(st, f, work))
        return root

    def _new(self, o):
        k = len(self.entries)
        self.ids[id(o)] = (k, o)
        self.entries.append((o.kind, o.typeidx, []))
        return k

    def _field(self, st, f, work):
        tag = _NUM_TAG.get(st)
        if tag is not None:
            return (tag, f)
        if f is None:
            return (NULL, 0)
        c = value_class(st)
        if c == 'funcref':
            return (FUNC, f)
        if c == 'exnref':
            return (EXN, self.exns.cell(f))
        inner = f.value if c == 'externref' else f
        if isinstance(inner, int) or isinstance(inner, HostRef):
            return (HOST, inner if isinstance(inner, int) else inner.value)
        if isinstance(inner, I31):
            return (T_I31, inner.value)
        hit = self.ids.get(id(inner))
        if hit is None:
            self._new(inner)
            work.append(inner)
            hit = self.ids[id(inner)]
        return (OBJ, hit[0])

    def add_elem(self, i, t, values):
        self.elems.append((i, [self.cell(t, v) for v in values]))


# ------------------------------------------------------------ gc.img bytes

def encode(entries, elems):
    """``gc.img``'s bytes."""
    out = [MAGIC, struct.pack('<I', len(entries))]
    for e in entries:
        kind = e[0]
        out.append(bytes([KINDS.index(kind)]))
        if kind in ('i31', 'host'):
            out.append(struct.pack('<I', e[1]))
            continue
        out.append(struct.pack('<II', e[1], len(e[2])))
        for tag, x in e[2]:
            out.append(bytes([tag]))
            if tag == NUM64:
                out.append(struct.pack('<Q', x))
            elif tag == NUM128:
                out.append(x.to_bytes(16, 'little'))
            elif tag != NULL:
                out.append(struct.pack('<I', x))
    out.append(struct.pack('<I', len(elems)))
    for i, cells in elems:
        out.append(struct.pack(f'<II{len(cells)}I', i, len(cells), *cells))
    return b''.join(out)


def decode(data, limits=None):
    """``gc.img``'s entries and segments, checked for structure and against
    ``limits`` (object count, array length) before they are built (every
    field's meaning is checked against the module by ``read_table``)."""
    from .images import _Reader
    limits = limits or L.DEFAULT
    r = _Reader(FILE, data)
    if bytes(r.raw(4, 'magic')) != MAGIC:
        r.pos = 0
        r.fail('magic', f'{bytes(data[:4])!r} is not {MAGIC!r}')
    n = r.u32('entry count')
    if n > len(data):
        r.fail('entry count', f'{n} entries cannot fit in {len(data)} bytes')
    limits.check('max_gc_objects', n, f'{FILE}: entry count')
    entries = []
    for k in range(n):
        code = r.raw(1, f'entry {k} kind')[0]
        if code >= len(KINDS):
            r.fail(f'entry {k} kind', f'{code} is not 0 (struct), 1 (array), 2 (i31) or 3 (host)')
        kind = KINDS[code]
        if kind == 'i31':
            v = r.u32(f'entry {k} i31 value')
            if v >= 1 << 31:
                r.fail(f'entry {k} i31 value', f'{v:#x} is not below 2^31')
            entries.append((kind, v))
            continue
        if kind == 'host':
            v = r.u32(f'entry {k} host handle')
            if v == NONE:
                r.fail(f'entry {k} host handle', f'{v:#x} is the null marker')
            entries.append((kind, v))
            continue
        typeidx = r.u32(f'entry {k} type index')
        count = r.u32(f'entry {k} field count')
        if count > len(data) - r.pos:
            r.fail(f'entry {k} field count', f'{count} fields cannot fit in the '
                                             f'{len(data) - r.pos} bytes left')
        if kind == 'array':
            limits.check('max_table_elems', count, f'{FILE}: entry {k} array length')
        fields = []
        for i in range(count):
            where = f'entry {k} field {i}'
            tag = r.raw(1, f'{where} tag')[0]
            if tag > EXN:
                r.fail(f'{where} tag', f'{tag} is not a field tag 0 .. {EXN}')
            if tag == NULL:
                x = 0
            elif tag == NUM64:
                (x,) = struct.unpack('<Q', bytes(r.raw(8, where)))
            elif tag == NUM128:
                x = int.from_bytes(bytes(r.raw(16, where)), 'little')
            else:
                x = r.u32(where)
            fields.append((tag, x))
        entries.append((kind, typeidx, fields))
    elems = []
    nseg = r.u32('segment count')
    last = -1
    for j in range(nseg):
        i = r.u32(f'segment {j} index')
        if i <= last:
            r.fail(f'segment {j} index', f'{i} is not above the previous one ({last})')
        last = i
        m = r.u32(f'segment {j} length')
        if m * 4 > len(data) - r.pos:
            r.fail(f'segment {j} length', f'{m} elements cannot fit in the file')
        elems.append((i, r.u32s(m, f'segment {j} elements')))
    r.end()
    return entries, elems


# ------------------------------------------------------------ entries -> module level

def read_table(module, entries, func_types, fail):
    """The module-level values of ``gc.img``'s entries (an Obj, an I31, a
    HostRef for a host entry), every field checked against the module:
    ``fail(field, message)`` raises.  Two passes: allocate, then fill."""
    types = module.types
    out = []
    for k, e in enumerate(entries):
        kind = e[0]
        if kind == 'i31':
            if not 0 <= e[1] < 1 << 31:     # a heap built in memory had no decoder's check
                fail(f'entry {k} i31 value', f'{e[1]:#x} is not below 2^31')
            out.append(I31(e[1]))
            continue
        if kind == 'host':
            out.append(HostRef(e[1]))
            continue
        x, fields = e[1], e[2]
        if x >= len(types):
            fail(f'entry {k} type index', f'{x} but the module has {len(types)} types')
        want = S.StructType if kind == 'struct' else S.ArrayType
        if not isinstance(types[x], want):
            fail(f'entry {k} type index', f'type {x} is {types[x]}, not a {kind} type')
        if kind == 'struct' and len(fields) != len(types[x].fields):
            fail(f'entry {k} field count', f'{len(fields)} but struct type {x} has '
                                           f'{len(types[x].fields)} fields')
        out.append(Obj(x, kind, [None] * len(fields)))
    for k, e in enumerate(entries):
        o = out[k]
        if not isinstance(o, Obj):
            continue
        for i, (st, (tag, x)) in enumerate(zip(field_types(module, o.typeidx, len(e[2])), e[2])):
            o.fields[i] = _read_field(module, st, tag, x, out, func_types,
                                      lambda m, i=i: fail(f'entry {k} field {i}', m))
    return out


_TAG_NAMES = ('null', 'i31', 'object', 'funcref', 'num32', 'num64', 'num128', 'host', 'exnref')


class PendingExn(int):
    """An exnref field as read from ``gc.img``: an index into
    ``exception.img``'s table, which is read after the heap (its fields
    may name heap entries); ``fill_exns`` replaces it."""
    __slots__ = ()


def fill_exns(table, exns, fail):
    """Replace the exnref fields read by ``read_table`` by the exceptions
    of ``exception.img`` they name."""
    for k, o in enumerate(table):
        if isinstance(o, Obj):
            for i, f in enumerate(o.fields):
                if f.__class__ is PendingExn:
                    if f >= len(exns):
                        fail(f'entry {k} field {i}', f'exnref {int(f)} but exception.img holds '
                                                     f'{len(exns)} exceptions')
                    o.fields[i] = exns[f]


def _read_field(module, st, tag, x, table, func_types, fail):
    want = _NUM_TAG.get(st)
    if want is not None:
        if tag != want:
            fail(f'tag {_TAG_NAMES[tag]} in a field of type {st} (expected {_TAG_NAMES[want]})')
        if x >= 1 << _BITS[st]:
            fail(f'{x:#x} does not fit a field of type {st}')
        return x
    r = S.reftype(st)
    if tag == NULL:
        if not r.nullable:
            fail(f'null in a field of non-nullable type {st}')
        return None
    c = value_class(st)
    if c == 'funcref':
        if tag != FUNC:
            fail(f'tag {_TAG_NAMES[tag]} in a field of type {st} (expected null or funcref)')
        if x >= len(func_types):
            fail(f'function index {x} out of range (the module has {len(func_types)} functions)')
        if isinstance(r.heap, int) and func_types[x] is not None and not deftypes.deftype_matches(
                S.type_key(func_types[x]), S.type_key(module.types[r.heap])):
            fail(f'function {x} does not have type {r.heap} as {st} requires')
        return x
    if c == 'exnref':
        if tag != EXN:
            fail(f'tag {_TAG_NAMES[tag]} in a field of type {st} (expected null or exnref)')
        return PendingExn(x)
    if tag == T_I31:
        if x >= 1 << 31:
            fail(f'i31 value {x:#x} is not below 2^31')
        v = I31(x)
    elif tag == HOST:
        if x == NONE:
            fail(f'host handle {x:#x} is the null marker')
        v = ExternRef(x) if c == 'externref' else HostRef(x)
    elif tag == OBJ:
        if x >= len(table) or not isinstance(table[x], Obj):
            fail(f'object {x} names no struct or array entry (the table holds {len(table)} entries)')
        v = table[x]
    else:
        fail(f'tag {_TAG_NAMES[tag]} in a field of type {st}')
    if c == 'externref' and not isinstance(v, ExternRef):
        v = ExternRef(v)
    if not matches(module, v.value if c == 'externref' else v, st):
        fail(f'{_describe(v)} does not match the field type {st}')
    return v


def _describe(v):
    if isinstance(v, ExternRef):
        v = v.value
    if isinstance(v, Obj):
        return f'a {v.kind} of type {v.typeidx}'
    if isinstance(v, I31):
        return f'i31 {v.value}'
    return f'host reference {getattr(v, "value", v)}'


def lookup(table, t, cell, fail, where):
    """The module-level value of the cell of an anyref- or externref-class
    slot in a set with a heap (``fail(where, message)`` raises)."""
    if cell == NONE:
        return None
    if cell >= len(table):
        fail(where, f'entry {cell} but {FILE} holds {len(table)} entries')
    v = table[cell]
    if value_class(t) == 'externref':
        return ExternRef(v.value if isinstance(v, HostRef) else v)
    return v


def check_value(module, t, v, where, fail):
    """A GC value read for a slot of type ``t``: it must match the type."""
    if v is None:
        return v
    inner = v.value if isinstance(v, ExternRef) else v
    if isinstance(inner, int):
        return v
    if not matches(module, inner, t):
        fail(where, f'{_describe(v)} does not match the slot type {t}')
    return v


def check_elems(module, elems, dropped, fail):
    """``gc.img``'s segments must be exactly the passive, not dropped
    element segments of an anyref-class type; their element ids checked
    by the caller's ``lookup``."""
    want = gc_elem_indices(module, dropped)
    got = [i for i, _ in elems]
    if got != want:
        fail('segments', f'element segments {got}, but the passive, not dropped ones of a GC '
                         f'type are {want}')


def gc_elem_indices(module, dropped):
    return [i for i, seg in enumerate(module.elems)
            if seg.mode == 'passive' and value_class(seg.type) == 'anyref'
            and i not in dropped]


# ------------------------------------------------------------ neutral.json "heap"

_HEX = {'f32': 8, 'f64': 16, 'v128': 32}


class JsonHeap:
    """Module-level GC values -> the neutral document's values, each
    object once in ``heap`` (its index the object id)."""

    def __init__(self, module, exn=None):
        self.module = module
        self.exn = exn          # exnref field -> its neutral value (neutral.encode_value)
        self.heap = []
        self.ids = {}

    def value(self, t, v):
        if v is None:
            return None
        if faults.GC_IDENTITY:
            self.ids = {}
        if value_class(t) == 'externref':
            if isinstance(v.value, int):
                return {'extern': v.value}
            v = v.value
        work = []
        out = self._ref(v, work)
        while work:
            o, doc = work.pop()
            types = field_types(self.module, o.typeidx, len(o.fields))
            doc['fields'] = [self._field(st, f, work) for st, f in zip(types, o.fields)]
        return out

    def _ref(self, v, work):
        if isinstance(v, I31):
            return {'i31': v.value}
        if isinstance(v, HostRef):
            return {'host': v.value}
        k = self.ids.get(id(v))
        if k is None:
            k = len(self.heap)
            self.ids[id(v)] = (k, v)
            doc = {v.kind: v.typeidx, 'fields': []}
            self.heap.append(doc)
            work.append((v, doc))
        else:
            k = k[0]
        return {'ref': k}

    def _field(self, st, f, work):
        if st in _NUM_TAG:
            return f'0x{f:0{_HEX[st]}x}' if st in _HEX else f
        if f is None:
            return None
        c = value_class(st)
        if c == 'funcref':
            return f
        if c == 'exnref':
            return self.exn(f)
        inner = f.value if c == 'externref' else f
        if isinstance(inner, int):
            return {'extern': inner}
        return self._ref(inner, work)


def read_json_heap(module, raw, func_types, fail, exn=None, limits=None):
    """The ``heap`` list of a neutral document as ``Obj``s, every field
    checked (``fail(where, message)`` raises) and the object count and
    array lengths against ``limits``.  Two passes: allocate, fill.
    ``exn(x, where, heap)`` reads an exnref field's value."""
    types = module.types
    limits = limits or L.DEFAULT
    if not isinstance(raw, list):
        fail('heap', 'expected a list of objects')
    limits.check('max_gc_objects', len(raw), 'neutral.json: heap objects')
    out = []
    for k, d in enumerate(raw):
        where = f'heap[{k}]'
        kind = next((x for x in ('struct', 'array') if isinstance(d, dict) and x in d), None)
        if kind is None or sorted(d) != sorted((kind, 'fields')):
            fail(where, 'expected {"struct": type index, "fields": [...]} or '
                        '{"array": type index, "fields": [...]}')
        x = d[kind]
        if not _int(x) or not 0 <= x < len(types):
            fail(f'{where}.{kind}', f'{x!r} is not a type index (0 .. {len(types) - 1})')
        want = S.StructType if kind == 'struct' else S.ArrayType
        if not isinstance(types[x], want):
            fail(f'{where}.{kind}', f'type {x} is {types[x]}, not a {kind} type')
        fields = d['fields']
        if not isinstance(fields, list):
            fail(f'{where}.fields', 'expected a list')
        if kind == 'struct' and len(fields) != len(types[x].fields):
            fail(f'{where}.fields', f'{len(fields)} fields, but struct type {x} has '
                                    f'{len(types[x].fields)}')
        if kind == 'array':
            limits.check('max_table_elems', len(fields), f'neutral.json: {where} array length')
        out.append(Obj(x, kind, [None] * len(fields)))
    for k, (o, d) in enumerate(zip(out, raw)):
        for i, (st, f) in enumerate(zip(field_types(module, o.typeidx, len(o.fields)),
                                        d['fields'])):
            o.fields[i] = json_value(module, st, f, out, func_types, f'heap[{k}].fields[{i}]', fail,
                                     exn=exn)
    return out


def _int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def json_value(module, t, x, heap, func_types, where, fail, slot=False, exn=None):
    """A field (storage type ``t``), or (``slot``) a slot's value of an
    anyref- or externref-class type, from the neutral document, checked
    (a slot's nullability is the caller's: an unset local holds null)."""
    if t in _NUM_TAG:
        if t in _HEX:
            n = _HEX[t]
            if not isinstance(x, str) or len(x) != n + 2 or x[:2] != '0x' or not all(
                    ch in '0123456789abcdefABCDEF' for ch in x[2:]):
                fail(where, f'{x!r} is not an {t} (a bit pattern "0x" + {n} hex digits)')
            return int(x, 16)
        if not _int(x) or not 0 <= x < 1 << _BITS[t]:
            fail(where, f'{x!r} is not an {t} (an unsigned integer 0 .. {(1 << _BITS[t]) - 1})')
        return x
    r = S.reftype(t)
    if x is None:
        if not r.nullable and not slot:
            fail(where, f'null in a field of non-nullable type {t}')
        return None
    c = value_class(t)
    if c == 'funcref':
        if not _int(x) or not 0 <= x < len(func_types):
            fail(where, f'{x!r} is not a function index (0 .. {len(func_types) - 1})')
        if isinstance(r.heap, int) and func_types[x] is not None and not deftypes.deftype_matches(
                S.type_key(func_types[x]), S.type_key(module.types[r.heap])):
            fail(where, f'function {x} does not have type {r.heap} as {t} requires')
        return x
    if c == 'exnref' and exn is not None:
        return exn(x, where, heap)
    if c not in ('anyref', 'externref'):
        fail(where, f'{x!r} in a field of type {t}: only null is supported there')
    keys = ('ref', 'i31', 'host') if c == 'anyref' else ('ref', 'i31', 'extern')
    if not isinstance(x, dict) or len(x) != 1 or next(iter(x)) not in keys \
            or not _int(next(iter(x.values()))):
        fail(where, f'{x!r} is not a value of type {t} (null or one of '
                    + ', '.join(f'{{"{k}": n}}' for k in keys) + ')')
    (k, n), = x.items()
    if k == 'ref':
        if not 0 <= n < len(heap):
            fail(where, f'{{"ref": {n}}} names no object (the heap holds {len(heap)})')
        v = heap[n]
    elif k == 'i31':
        if not 0 <= n < 1 << 31:
            fail(where, f'i31 value {n} is not 0 .. 2^31-1')
        v = I31(n)
    else:
        if not 0 <= n < NONE:
            fail(where, f'host handle {n} is not 0 .. {NONE - 1}')
        v = HostRef(n)
        if c == 'externref':
            return ExternRef(n)
    if not matches(module, v, t):
        fail(where, f'{_describe(v)} does not match the type {t}')
    return ExternRef(v) if c == 'externref' else v


# ------------------------------------------------------------ comparing states

_PLAIN = frozenset((int, float, str, bytes, bool, type(None), S.RefType))   # a RefType is a str


def same_state(a, b):
    """Equality of two module-level states (snapshots, frames, values) in
    which ``Obj`` graphs are compared by isomorphism with one pairing for
    the whole comparison (no recursion through object chains)."""
    pairs, pending = {}, []
    if not _equal(a, b, pairs, pending):
        return False
    while pending:
        x, y = pending.pop()
        if x.typeidx != y.typeidx or x.kind != y.kind or len(x.fields) != len(y.fields):
            return False
        if not all(_equal(f, g, pairs, pending) for f, g in zip(x.fields, y.fields)):
            return False
    return True


def _equal(a, b, pairs, pending):
    if type(a) in _PLAIN and type(b) in _PLAIN:     # most of a state: no branch below applies
        return a == b
    if isinstance(a, Obj) or isinstance(b, Obj):
        if not (isinstance(a, Obj) and isinstance(b, Obj)):
            return False
        pa, pb = pairs.get(('a', id(a))), pairs.get(('b', id(b)))
        if pa is not None or pb is not None:
            return pa is b and pb is a
        pairs[('a', id(a))], pairs[('b', id(b))] = b, a
        pending.append((a, b))
        return True
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        if type(a) is not type(b) or len(a) != len(b):
            return False
        if _PLAIN.issuperset(map(type, a)) and _PLAIN.issuperset(map(type, b)):
            return all(map(operator.eq, a, b))      # plain values (most lists): ==, as below
        return all(_equal(x, y, pairs, pending) for x, y in zip(a, b))
    if isinstance(a, dict) or isinstance(b, dict):
        return isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys() and all(
            _equal(a[k], b[k], pairs, pending) for k in a)
    if isinstance(a, S.Exn) or isinstance(b, S.Exn):
        return type(a) is type(b) and a.tag == b.tag and _equal(a.fields, b.fields, pairs, pending)
    if isinstance(a, ExternRef) or isinstance(b, ExternRef):
        return type(a) is type(b) and _equal(a.value, b.value, pairs, pending)
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(
            _equal(getattr(a, f.name), getattr(b, f.name), pairs, pending)
            for f in dataclasses.fields(a))
    return a == b
