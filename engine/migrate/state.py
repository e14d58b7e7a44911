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
  means the same thing in a fresh instance of the same module.  An index
  past the module's functions names a function of another instance
  (``Snapshot.links``, migrate/links.py).
"""

from dataclasses import dataclass, field
from typing import List, Optional

from .. import faults
from ..exec.cells import CELLS, NONE, cells_of, from_cells, value_cells  # noqa: F401 (re-exported)


@dataclass
class Frame:
    fidx: int                   # function index in the module (imports counted)
    pc: int                     # instruction index (see module docstring)
    locals: List[object]        # params then declared locals
    stack: List[object]         # this frame's operand values, bottom first
    types: List[str] = field(default_factory=list)   # types of locals + stack
    caught: List[object] = field(default_factory=list)  # per open legacy catch arm (exnstate)


@dataclass(eq=False)
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
    # The memory as an image set's chunks (byte offset -> 4096 bytes) when
    # read for a restore (``snapshot_from_images(memory=False)``): ``memory``
    # is then None and the chunks go straight into the instance's memory,
    # which is built once, not assembled here and copied again.
    chunk_data: Optional[dict] = None
    # memories 1.. (multi-memory) as migrate.memories.MemoryImage, in order
    memories: list = field(default_factory=list)
    # the passive, not dropped element segments of a GC element type as
    # (segment index, module-level values): part of the heap (gcheap)
    gc_elems: list = field(default_factory=list)
    # functions of other instances (links.Link): a funcref value
    # ``nfuncs + i`` anywhere (slot, global, table, field) is links[i]
    links: list = field(default_factory=list)

    def __eq__(self, other):
        """The same stopped state: every field equal, GC objects (two
        readings make two ``gcheap.Obj`` graphs) paired one to one across
        the whole snapshot, so sharing and cycles must match too."""
        if not isinstance(other, Snapshot):
            return NotImplemented
        from .gcheap import same_state
        return same_state(self, other)


# ------------------------------------------------------------ values ↔ cells
# (exec/cells.py; the translator's path goes through to_cells)

def to_cells(t: str, v) -> List[int]:
    """``value_cells`` on the translator's path (where a fault may sit)."""
    cells = value_cells(t, v)
    return cells[::-1] if faults.I64_CELL_ORDER and t == 'i64' else cells
