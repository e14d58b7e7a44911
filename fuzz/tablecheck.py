"""The forks' type tables against the WAMR model's frames.

The migration forks cannot tell the type of a value on their operand
stacks; when they dump a run they look up every frame's slots in three
*type-table* files (``engine typetables``; layout in
engine/migrate/typetables.py).  A wrong table makes a fork write a wrong
image set, so the campaign checks them: the tables of each module it
migrates are written to disk once, read back here by a reader of their
own (not the engine's), and at every WAMR checkpoint each frame's slots,
as the image set holds them (cells per local and operand), must be what
the tables give at that frame's position: the function's local record
and the operand stack there -- the record before the next instruction for
the top frame, the caller record after the call for every frame below
it.  Modules using GC or exceptions are checked too (neither fork runs
them, but ``engine typetables`` writes their tables all the same; their
exnref and GC references have the byte 0 there, taken as one cell).
"""

import os
import struct

from engine.migrate import typetables

# a table byte -> the cells of such a slot in the WAMR model (255: a
# reference, one cell); 0 is what the tables give an exnref or a reference
# of the any hierarchy (one cell each in the WAMR model; the forks have
# neither) and a type validation does not know, where no run stands
CELLS = {1: 1, 2: 2, 4: 4, 255: 1, 0: 1}
_CACHE = {}                 # module sha256 -> tables (a campaign migrates each module many times)
_CACHE_SIZE = 8


class TableMismatch(Exception):
    """The type tables and a frame of a WAMR set disagree."""


def read(directory, nimported):
    """fidx -> (local bytes, {offset: [records]}) of the three files in
    ``directory``, for the functions after the ``nimported`` imported ones
    (whose records carry no address)."""
    def data(name):
        with open(os.path.join(directory, name), 'rb') as f:
            return f.read()
    funcs, offsets, table = (data(n) for n in ('tablemap_func', 'tablemap_offset', 'type_table'))
    if len(funcs) % 12:
        raise TableMismatch(f'tablemap_func: {len(funcs)} bytes, not whole records of 12')
    entries = [struct.unpack_from('<IQ', funcs, p) for p in range(0, len(funcs), 12)]
    if [i for i, _ in entries] != list(range(len(entries))):
        raise TableMismatch('tablemap_func: the records are not function 0, 1, 2, ... in order')
    defined = entries[nimported:]
    out, spans = {}, []
    for n, (fidx, addr) in enumerate(defined):
        end = defined[n + 1][1] if n + 1 < len(defined) else len(offsets)
        (count,) = struct.unpack_from('<I', offsets, addr)
        positions, p = {}, addr + 4 + count
        while p < end:
            off, at = struct.unpack_from('<IQ', offsets, p)
            p += 12
            spans.append((at, fidx, off))
        out[fidx] = (bytes(offsets[addr + 4:addr + 4 + count]), positions)
    # a position's records run up to the next position's (a call's caller record behind its own)
    spans.sort()
    for j, (at, fidx, off) in enumerate(spans):
        end = spans[j + 1][0] if j + 1 < len(spans) else len(table)
        records = []
        while at < end:
            (n,) = struct.unpack_from('<I', table, at)
            records.append(bytes(table[at + 4:at + 4 + n]))
            at += 4 + n
        out[fidx][1][off] = records
    return out


def tables_of(module, info, sha, directory):
    """The module's tables: written by the engine into ``directory`` (once
    per module of a process) and read back here."""
    hit = _CACHE.get(sha)
    if hit is None:
        typetables.write(module, info, directory)
        hit = read(directory, len(module.imported('func')))
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[sha] = hit
    return hit


def check(images, tables, where):
    """Every frame of the WAMR set ``images`` against ``tables``."""
    for k, fr in enumerate(images.frames):
        fidx = fr.entry_fidx
        offset = images.pc[1] if k == 0 else images.frames[k - 1].return_offset
        if fidx not in tables:
            raise TableMismatch(f'{where}: stack{k + 1}.img: function {fidx} has no type table entry')
        local, positions = tables[fidx]
        records = positions.get(offset)
        which = 0 if k == 0 else 1
        if records is None or len(records) <= which:
            raise TableMismatch(f'{where}: stack{k + 1}.img: function {fidx} offset {offset}: the '
                                f'tables hold no {"caller " if which else ""}record there')
        sizes = local + records[which]
        want = [CELLS.get(b) for b in sizes]
        if want != list(fr.slot_cells):
            raise TableMismatch(f'{where}: stack{k + 1}.img: function {fidx} offset {offset}: '
                                f'slots of {list(fr.slot_cells)} cells, the type tables say '
                                f'{list(sizes)} (locals {list(local)})')
