"""Abstract syntax of modules (spec chapter "Structure").

Values of numeric types are carried everywhere as unsigned bit patterns
(Python ints): i32/f32 in [0, 2**32), i64/f64 in [0, 2**64), v128 in
[0, 2**128) with lane 0 in the low bits.  Keeping floats as bits makes NaN
payloads and -0 exact and lets both runtime models share one representation.

References: None is null (of either reference type); a non-null funcref is a
function address (int index into ``Store.funcs``); a non-null externref is an
``ExternRef`` host value.
"""

from dataclasses import dataclass, field
from typing import List, Optional, Tuple, Union

I32, I64, F32, F64, V128 = 'i32', 'i64', 'f32', 'f64', 'v128'
FUNCREF, EXTERNREF = 'funcref', 'externref'
EXNREF = 'exnref'      # exception handling (Wasm 3.0)
NUM_TYPES = (I32, I64, F32, F64)
REF_TYPES = (FUNCREF, EXTERNREF, EXNREF)
VAL_TYPES = NUM_TYPES + (V128,) + REF_TYPES

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


@dataclass(frozen=True)
class MemType:
    limits: Limits


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
