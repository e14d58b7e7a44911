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

    def __new__(cls, nullable, heap):
        abbrev = _ABBREV.get(heap) if nullable else None
        text = abbrev or f"(ref {'null ' if nullable else ''}{heap})"
        obj = str.__new__(cls, text)
        obj.nullable = nullable
        obj.heap = heap
        return obj

    def __getnewargs__(self):
        return (self.nullable, self.heap)

    def __reduce__(self):
        return (RefType, (self.nullable, self.heap))


_ABBREV = {'func': 'funcref', 'extern': 'externref', 'exn': 'exnref'}
# abstract heap type -> top of its hierarchy (values of the types below a top
# share one representation: funcref a function address, externref ExternRef,
# exnref an exception object (exception handling, Wasm 3.0))
HEAP_TOPS = {'func': 'func', 'nofunc': 'func', 'extern': 'extern', 'noextern': 'extern',
             'exn': 'exn', 'noexn': 'exn'}
HEAP_BOTTOMS = {'nofunc', 'noextern', 'noexn'}

FUNCREF, EXTERNREF = RefType(True, 'func'), RefType(True, 'extern')
EXNREF = RefType(True, 'exn')
NUM_TYPES = (I32, I64, F32, F64)
REF_TYPES = (FUNCREF, EXTERNREF, EXNREF)
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
    return None


_REF_TEXT = re.compile(r'\(ref (null )?(func|extern|exn|nofunc|noextern|noexn|0|[1-9][0-9]*)\)')


def parse_valtype(text):
    """The value type named by ``text`` (a type's ``str``, as image
    manifests and neutral.json write it), or None."""
    if not isinstance(text, str):
        return None
    if text in VAL_TYPES:
        return reftype(text) or text
    m = _REF_TEXT.fullmatch(text)
    if m is None or len(text) > 40:
        return None
    heap = m.group(2)
    t = RefType(bool(m.group(1)), int(heap) if heap[0].isdigit() else heap)
    return t if t == text else None     # only the canonical spelling


_TOP_TYPES = {'func': FUNCREF, 'extern': EXTERNREF, 'exn': EXNREF}


def is_ref(t):
    return reftype(t) is not None


def value_class(t):
    """The nullable top type whose values (and cells, image codes, text
    form) a value of type ``t`` shares: 'funcref' for every function
    reference type, 'externref' for the extern ones, 'exnref' for the
    exception ones, ``t`` itself otherwise."""
    r = reftype(t)
    if r is None:
        return t
    if isinstance(r.heap, int):
        return FUNCREF
    return _TOP_TYPES[HEAP_TOPS[r.heap]]


def type_key(ft, types=None):
    """A canonical key of a function type: equal keys <=> equivalent types.
    Types that mention concrete type indices carry their module-independent
    key (set by validation, ``canonicalize``); others are their own key."""
    return ft.__dict__.get('_key', ft)


def canonicalize(types):
    """Give every type of a module that mentions a type index its canonical
    key (indices replaced by the keys of the types they name; a reference
    to the type itself or a later one stays relative), so types of
    different modules or indices compare by structure (3.0 type equivalence
    for rec groups of one type)."""
    keys = []
    for i, ft in enumerate(types):
        def close(t, i=i):
            r = reftype(t)
            if r is None or not isinstance(r.heap, int):
                return t
            j = r.heap
            return ('ref', r.nullable, keys[j] if j < i else ('rec', j - i))
        if any(isinstance(getattr(t, 'heap', None), int) for t in ft.params + ft.results):
            key = ('func', tuple(map(close, ft.params)), tuple(map(close, ft.results)))
            object.__setattr__(ft, '_key', key)
            keys.append(key)
        else:
            keys.append(ft)
    return keys


def heap_matches(h1, h2, keys):
    """h1 <= h2 for heap types (valid/matching.rst), ``keys`` the module's
    canonical type keys for concrete indices."""
    if h1 == h2:
        return True
    if isinstance(h1, int):
        if isinstance(h2, int):
            return h1 < len(keys) and h2 < len(keys) and keys[h1] == keys[h2]
        return h2 == 'func'
    if h1 in HEAP_BOTTOMS:
        top = HEAP_TOPS[h1]
        return (h2 == top or HEAP_TOPS.get(h2) == top) if not isinstance(h2, int) \
            else top == 'func'
    return False


def matches(t1, t2, keys=()):
    """Value type t1 <= t2 (valid/matching.rst); None (the validation
    algorithm's Unknown / bottom) matches anything."""
    if t1 == t2 or t1 is None or t2 is None:
        return True
    r1, r2 = reftype(t1), reftype(t2)
    if r1 is None or r2 is None:
        return False
    return (r2.nullable or not r1.nullable) and heap_matches(r1.heap, r2.heap, keys)

ValType = str
BlockType = Union[None, str, int]   # empty | single result value type | type index


@dataclass(frozen=True)
class FuncType:
    params: Tuple[ValType, ...]
    results: Tuple[ValType, ...]

    def __str__(self):
        return f"[{' '.join(self.params)}] -> [{' '.join(self.results)}]"


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
    types: List[FuncType] = field(default_factory=list)
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

    def imported(self, kind):
        return [imp for imp in self.imports if imp.kind == kind]
