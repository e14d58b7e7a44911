"""Abstract syntax of modules (spec chapter "Structure").

Values of numeric types are carried everywhere as unsigned bit patterns
(Python ints): i32/f32 in [0, 2**32), i64/f64 in [0, 2**64), v128 in
[0, 2**128) with lane 0 in the low bits.  Keeping floats as bits makes NaN
payloads and -0 exact and lets both runtime models share one representation.

References: None is null (of either reference type); a non-null funcref is a
function address (int index into ``Store.funcs``); a non-null externref is an
``ExternRef`` host value.
"""

import re
from dataclasses import dataclass, field
from typing import List, Optional, Tuple, Union

I32, I64, F32, F64, V128 = 'i32', 'i64', 'f32', 'f64', 'v128'


class RefType(str):
    """A reference type ``(ref null? ht)`` (Wasm 3.0, syntax/types.rst).

    ``heap`` is an abstract heap type name ('func', 'extern', and the bottoms
    'nofunc', 'noextern') or an int: a concrete type index of the module
    (typed function references).  It is a ``str`` whose text is the type's
    text form, with the 2.0 abbreviations for ``(ref null func)`` =
    'funcref' and ``(ref null extern)`` = 'externref', so every value type
    stays a string, the 2.0 names compare and hash as before and a table
    keyed by 'funcref' finds ``FUNCREF``.

    Extending it: GC's heap types ('any', 'eq', 'i31', 'struct', 'array',
    'none') are more names in ``HEAP_TOPS`` (heap type -> the top of its
    hierarchy, which also names the value representation, ``value_class``)
    and in ``heap_matches``'s lattice, as exceptions' ('exn', 'noexn') are:
    ``exnref`` is ``RefType(True, 'exn')``, its text 'exnref' an abbreviation
    like 'funcref'.  A concrete index stays an int; GC's subtype declarations
    would make ``heap_matches`` walk the declared supertypes instead of
    comparing canonical keys only.
    """

    def __new__(cls, nullable, heap, top=None):
        abbrev = _ABBREV.get(heap) if nullable else None
        text = abbrev or f"(ref {'null ' if nullable else ''}{heap})"
        obj = str.__new__(cls, text)
        obj.nullable = nullable
        obj.heap = heap
        if top is not None:
            obj.top = top       # a concrete index's hierarchy: 'func' or 'any' (GC)
        return obj

    def __getnewargs__(self):
        return (self.nullable, self.heap, getattr(self, 'top', None))

    def __reduce__(self):
        return (RefType, self.__getnewargs__())


_ABBREV = {'func': 'funcref', 'extern': 'externref', 'exn': 'exnref',
           'any': 'anyref', 'eq': 'eqref', 'i31': 'i31ref', 'struct': 'structref',
           'array': 'arrayref', 'none': 'nullref'}
# abstract heap type -> top of its hierarchy (values of the types below a top
# share one representation: funcref a function address, externref ExternRef,
# exnref an exception object (exception handling, Wasm 3.0), anyref a GC
# object, an i31 or a host reference (GC, Wasm 3.0))
HEAP_TOPS = {'func': 'func', 'nofunc': 'func', 'extern': 'extern', 'noextern': 'extern',
             'exn': 'exn', 'noexn': 'exn',
             'any': 'any', 'eq': 'any', 'i31': 'any', 'struct': 'any', 'array': 'any',
             'none': 'any'}
HEAP_BOTTOMS = {'nofunc', 'noextern', 'noexn', 'none'}

FUNCREF, EXTERNREF = RefType(True, 'func'), RefType(True, 'extern')
EXNREF = RefType(True, 'exn')
ANYREF = RefType(True, 'any')
NUM_TYPES = (I32, I64, F32, F64)
REF_TYPES = (FUNCREF, EXTERNREF, EXNREF)
_ABBREV_TYPES = {a: RefType(True, h) for h, a in _ABBREV.items()}
VAL_TYPES = NUM_TYPES + (V128,) + REF_TYPES


def reftype(t):
    """``t`` as a RefType (a plain 'funcref'/'externref' string too), or None
    for a number or vector type (or None)."""
    if isinstance(t, RefType):
        return t
    if t == 'funcref':
        return FUNCREF
    if t == 'externref':
        return EXTERNREF
    if t == 'exnref':
        return EXNREF
    return _ABBREV_TYPES.get(t) if isinstance(t, str) else None


_REF_TEXT = re.compile(r'\(ref (null )?(func|extern|exn|nofunc|noextern|noexn|any|eq|i31|struct|'
                       r'array|none|0|[1-9][0-9]*)\)')


def parse_valtype(text):
    """The value type named by ``text`` (a type's ``str``, as image
    manifests and neutral.json write it), or None."""
    if not isinstance(text, str):
        return None
    if text in VAL_TYPES or text in _ABBREV_TYPES:
        return reftype(text) or text
    m = _REF_TEXT.fullmatch(text)
    if m is None or len(text) > 40:
        return None
    heap = m.group(2)
    t = RefType(bool(m.group(1)), int(heap) if heap[0].isdigit() else heap)
    return t if t == text else None     # only the canonical spelling


_TOP_TYPES = {'func': FUNCREF, 'extern': EXTERNREF, 'exn': EXNREF, 'any': ANYREF}


def is_ref(t):
    return reftype(t) is not None


_PLAIN = frozenset(('i32', 'i64', 'f32', 'f64', 'v128', 'i8', 'i16'))


def value_class(t):
    """The nullable top type whose values (and cells, image codes, text
    form) a value of type ``t`` shares: 'funcref' for every function
    reference type, 'externref' for the extern ones, 'exnref' for the
    exception ones, 'anyref' for GC references (a concrete type index
    names a struct or array type when the decoder marked the type so,
    ``RefType.top``), ``t`` itself otherwise."""
    try:
        if t in _PLAIN:             # numbers, vectors, packed fields: most calls
            return t
        if type(t) is RefType:
            return t.value_class    # a RefType's class is fixed when it is made: kept on it
    except TypeError:               # not a type at all (unhashable): as before
        pass
    except AttributeError:          # the first asking of this RefType
        pass
    r = reftype(t)
    if r is None:
        return t
    c = r.__dict__.get('value_class')   # 'funcref' as a plain str: FUNCREF's
    if c is not None:
        return c
    if isinstance(r.heap, int):
        c = ANYREF if getattr(r, 'top', 'func') == 'any' else FUNCREF
    else:
        c = _TOP_TYPES[HEAP_TOPS[r.heap]]
    r.value_class = c
    return c


ValType = str
BlockType = Union[None, str, int]   # empty | single result value type | type index


@dataclass(frozen=True)
class FuncType:
    params: Tuple[ValType, ...]
    results: Tuple[ValType, ...]

    def __str__(self):
        return f"[{' '.join(self.params)}] -> [{' '.join(self.results)}]"


PACKED_TYPES = ('i8', 'i16')      # storage types of struct and array fields only


@dataclass(frozen=True)
class FieldType:
    """A struct field or array element (GC): a storage type (a value type
    or a packed 'i8' / 'i16') and whether it is mutable."""
    storage: str
    mut: bool = False

    def __str__(self):
        return f'(mut {self.storage})' if self.mut else str(self.storage)


@dataclass(frozen=True)
class StructType:
    fields: Tuple[FieldType, ...]

    def __str__(self):
        return f"(struct {' '.join(f'(field {f})' for f in self.fields)})"


@dataclass(frozen=True)
class ArrayType:
    field: FieldType

    def __str__(self):
        return f'(array {self.field})'


CompType = Union[FuncType, StructType, ArrayType]


@dataclass(frozen=True)
class Limits:
    min: int
    max: Optional[int] = None


@dataclass(frozen=True)
class TableType:
    limits: Limits
    elemtype: ValType
    at: ValType = I32              # address type: i64 for a 64-bit table (table64)


@dataclass(frozen=True)
class MemType:
    limits: Limits
    at: ValType = I32              # address type: i64 for a 64-bit memory (memory64)


@dataclass(frozen=True)
class GlobalType:
    mut: bool
    valtype: ValType


class ExternRef:
    """A host reference (``ref.extern n`` in scripts)."""
    __slots__ = ('value',)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, ExternRef) and other.value == self.value

    def __hash__(self):
        return hash(('extern', self.value))

    def __repr__(self):
        return f'ExternRef({self.value!r})'


class HostRef:
    """A host reference seen as an anyref (``ref.host n`` in 3.0 scripts):
    what ``any.convert_extern`` makes of ``ExternRef(n)``, and back."""
    __slots__ = ('value',)
    ref_kind = 'host'

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, HostRef) and other.value == self.value

    def __hash__(self):
        return hash(('host', self.value))

    def __repr__(self):
        return f'HostRef({self.value!r})'


class Exn:
    """A caught exception as an ``exnref`` value (spec: an exception
    instance {tag, fields}): ``tag`` is the store's tag address, ``fields``
    the thrown values (a tuple, typed by the tag's parameters).  Exceptions
    have no observable identity (exnref is not an eqref), so a value."""
    __slots__ = ('tag', 'fields')
    ref_kind = 'exn'

    def __init__(self, tag, fields):
        self.tag = tag
        self.fields = tuple(fields)

    def __eq__(self, other):
        return isinstance(other, Exn) and other.tag == self.tag and other.fields == self.fields

    def __hash__(self):
        return hash(('exn', self.tag, self.fields))

    def __repr__(self):
        return f'Exn(tag={self.tag}, fields={self.fields!r})'


class Struct:
    """A struct object (GC): its canonical defined type (a ``deftypes``
    key) and its field values (packed fields as masked integers).  A
    reference to it is the object itself; ref.eq compares identity."""
    __slots__ = ('type', 'fields')
    ref_kind = 'struct'

    def __init__(self, type, fields):
        self.type = type
        self.fields = fields

    def __repr__(self):
        return f'Struct({self.fields!r})'


class Array(Struct):
    """An array object (GC): its canonical defined type and its elements."""
    __slots__ = ()
    ref_kind = 'array'

    def __repr__(self):
        return f'Array({self.fields!r})'


class I31:
    """An i31 reference (GC): an unboxed 31-bit integer, compared by value."""
    __slots__ = ('value',)
    ref_kind = 'i31'

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        if other.__class__ is not I31:
            return NotImplemented
        return other.value == self.value

    def __hash__(self):
        return hash(('i31', self.value))

    def __repr__(self):
        return f'I31({self.value})'


class Instr:
    """One decoded instruction.

    ``offset`` is the byte offset of the opcode from the first instruction
    after the function's local declarations (WAMR's PC); ``end`` is the byte
    offset just after its immediates.  Inside a function body the
    instructions form one flat list (block/loop/if/else/end included), which
    is the WasmEdge-style code; the list index is WasmEdge's PC.
    """
    __slots__ = ('op', 'imm', 'offset', 'end')

    def __init__(self, op, imm=None, offset=0, end=0):
        self.op = op
        self.imm = imm
        self.offset = offset
        self.end = end

    def __repr__(self):
        return f'Instr({self.op!r}, {self.imm!r}, @{self.offset})'


Expr = List[Instr]   # flat, ends with an 'end' instruction


@dataclass
class Func:
    typeidx: int
    locals: List[ValType]          # declared locals only (params not included)
    body: Expr
    body_bytes: bytes = b''        # code after the local declarations (WAMR executes this)


@dataclass
class Table:
    type: TableType
    init: Optional[Expr] = None    # 3.0 initializer expression (default: ref.null)


@dataclass
class Mem:
    type: MemType


@dataclass
class Global:
    type: GlobalType
    init: Expr


@dataclass
class Elem:
    type: ValType                  # funcref | externref
    init: List[Expr]               # one constant expression per element
    mode: str                      # 'passive' | 'active' | 'declarative'
    table: int = 0
    offset: Optional[Expr] = None


@dataclass
class Data:
    init: bytes
    mode: str                      # 'passive' | 'active'
    memory: int = 0
    offset: Optional[Expr] = None


@dataclass
class Tag:
    typeidx: int                   # a function type with no results: the fields


@dataclass
class Import:
    module: str
    name: str
    kind: str                      # 'func' | 'table' | 'memory' | 'global' | 'tag'
    desc: object                   # typeidx int | TableType | MemType | GlobalType | Tag


@dataclass
class Export:
    name: str
    kind: str                      # 'func' | 'table' | 'memory' | 'global' | 'tag'
    index: int


@dataclass
class Module:
    # the defined types, flat; GC's rec groups and subtype declarations are
    # ``recs`` (the size of each rec group in order; empty: every type its own
    # group) and ``subs`` (type index -> (final, supertype indices) where not
    # the default (True, ())), see engine/deftypes.py
    types: List[CompType] = field(default_factory=list)
    funcs: List[Func] = field(default_factory=list)
    tables: List[Table] = field(default_factory=list)
    mems: List[Mem] = field(default_factory=list)
    globals: List[Global] = field(default_factory=list)
    elems: List[Elem] = field(default_factory=list)
    datas: List[Data] = field(default_factory=list)
    start: Optional[int] = None
    imports: List[Import] = field(default_factory=list)
    exports: List[Export] = field(default_factory=list)
    datacount: Optional[int] = None
    customs: List[Tuple[str, bytes]] = field(default_factory=list)
    tags: List[Tag] = field(default_factory=list)
    recs: List[int] = field(default_factory=list)
    subs: dict = field(default_factory=dict)

    def imported(self, kind):
        return [imp for imp in self.imports if imp.kind == kind]


# type equivalence and subtyping (GC's iso-recursive types) live in deftypes


def type_key(ct, types=None):
    """The canonical key of a module's type (``deftypes.canonicalize``)."""
    return ct.__dict__.get('_key', ct)


def canonicalize(types, recs=(), subs=None):
    return _deftypes.canonicalize(types, recs, subs)


def heap_matches(h1, h2, keys):
    return _deftypes.heap_matches(h1, h2, keys)


def matches(t1, t2, keys=()):
    """Value type t1 <= t2 (``deftypes.matches``)."""
    return _deftypes.matches(t1, t2, keys)


from . import deftypes as _deftypes  # noqa: E402  (last: deftypes reads this module)
