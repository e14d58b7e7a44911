"""The runtime-neutral form of a stopped execution (spec terms: a stack of
activation frames, each with its locals, its operand values and the position
of its next instruction; plus the store's memory, globals and tables).

Both runtime models save to and restore from their own image sets; the
translator goes through this form, so a new model only needs a mapping to
and from it.  Conventions:

- ``Frame.pc`` is an index into the function's flat instruction list.  For
  the top frame it is the next instruction to execute.  For every other
  frame it is the index of the ``call``/``call_indirect`` instruction that
  is in progress (its arguments are already popped, its results not yet
  pushed).
- Values use the syntax.py representation; function references are
  function *indices* of the module (not store addresses), so a snapshot
  means the same thing in a fresh instance of the same module.
"""

from dataclasses import dataclass, field
from typing import List, Optional

from . import faults
from .images import CELLS, NONE
from .syntax import ExternRef


@dataclass
class Frame:
    fidx: int                   # function index in the module (imports counted)
    pc: int                     # instruction index (see module docstring)
    locals: List[object]        # params then declared locals
    stack: List[object]         # this frame's operand values, bottom first
    types: List[str] = field(default_factory=list)   # types of locals + stack


@dataclass
class Snapshot:
    frames: List[Frame]         # outermost (host-called) first
    page_count: Optional[int]   # None: no memory
    memory: bytes               # the whole memory (page_count * 64 KiB); bytes or bytearray
    globals: List[object]       # every global of the module, imports first
    global_types: List[str]
    tables: List[List[object]]  # every table's entries (refs)
    entry: str = ''
    results: List[str] = field(default_factory=list)
    steps: int = 0
    dropped_elems: List[int] = field(default_factory=list)
    dropped_datas: List[int] = field(default_factory=list)
    # byte offsets of the only 4 KiB chunks of ``memory`` that may be
    # non-zero, ascending (a run's written chunks, an image's chunks);
    # None: any.  Writers look at these alone, so a checkpoint costs what
    # was written, not the memory's size.
    chunks: Optional[List[int]] = None


# ------------------------------------------------------------ values ↔ cells

def value_cells(t: str, v) -> List[int]:
    """Split a value into 32-bit cells, low word first (WAMR's layout);
    what the WAMR executor itself holds."""
    n = CELLS[t]
    if t == 'funcref':
        return [NONE if v is None else v]
    if t == 'externref':
        return [NONE if v is None else v.value]
    if n == 1:
        return [v]
    return [(v >> (32 * k)) & 0xFFFFFFFF for k in range(n)]


def to_cells(t: str, v) -> List[int]:
    """``value_cells`` on the translator's path (where a fault may sit)."""
    cells = value_cells(t, v)
    return cells[::-1] if faults.I64_CELL_ORDER and t == 'i64' else cells


def from_cells(t: str, cells: List[int]):
    """Join cells back into one value of type ``t``."""
    if t == 'funcref':
        return None if cells[0] == NONE else cells[0]
    if t == 'externref':
        return None if cells[0] == NONE else ExternRef(cells[0])
    v = 0
    for k, c in enumerate(cells):
        v |= c << (32 * k)
    return v


def cells_of(types: List[str]) -> int:
    return sum(CELLS[t] for t in types)
