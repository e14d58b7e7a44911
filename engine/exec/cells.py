"""Values as 32-bit cells, the stack unit of WAMR's classic interpreter:
i32/f32/references one cell, i64/f64 two (low word first), v128 four
(lowest word first); a null reference is ``NONE``.  The WAMR model holds
its stack this way and the image files store it so."""

from typing import List

from ..syntax import ExternRef, value_class

NONE = 0xFFFFFFFF


class _Cells(dict):
    """Cells per value type; every reference type (3.0 typed references
    too) is one cell, like the 2.0 type whose values it shares."""
    def __missing__(self, t):
        c = value_class(t)
        if c == t:
            raise KeyError(t)
        return self[c]


CELLS = _Cells({'i32': 1, 'f32': 1, 'funcref': 1, 'externref': 1, 'exnref': 1, 'anyref': 1,
                'i64': 2, 'f64': 2, 'v128': 4})


def value_cells(t: str, v) -> List[int]:
    """Split a value into 32-bit cells, low word first (WAMR's layout);
    what the WAMR executor itself holds."""
    n = CELLS[t]
    if n == 1 and t not in _NUM1:
        t = value_class(t)
    if t == 'funcref':
        return [NONE if v is None else v]
    if t == 'externref':
        return [NONE if v is None else v.value]
    if t == 'exnref' or t == 'anyref':   # the exception / GC object itself (one cell)
        return [NONE if v is None else v]
    if n == 1:
        return [v]
    return [(v >> (32 * k)) & 0xFFFFFFFF for k in range(n)]


def from_cells(t: str, cells: List[int]):
    """Join cells back into one value of type ``t``."""
    if len(cells) == 1 and t not in _NUM1:
        t = value_class(t)
    if t == 'funcref':
        return None if cells[0] == NONE else cells[0]
    if t == 'externref':
        return None if cells[0] == NONE else ExternRef(cells[0])
    if t == 'exnref' or t == 'anyref':
        return None if cells[0] is NONE or cells[0] == NONE else cells[0]
    v = 0
    for k, c in enumerate(cells):
        v |= c << (32 * k)
    return v


_NUM1 = frozenset(('i32', 'f32'))


def cells_of(types: List[str]) -> int:
    return sum(CELLS[t] for t in types)
