"""The memories after memory 0 (Wasm 3.0 multi-memory) of a stopped run:
in the live store, in a snapshot, in an image set and in neutral.json.

Memory 0 keeps the fields (``page_count``, ``memory``) and the files
(``memory.img``, ``mem_page_count.img``) it always had, so a set of a
module with one memory is byte for byte what earlier versions wrote.
Memory ``i >= 1`` is ``MemoryImage(page_count, chunks)`` at position
``i - 1`` of ``ImageSet.memories`` / ``Snapshot.memories``, kept in the
sparse form both files and documents use (the 4 KiB chunks that are not
all zero), and stored in ``memory{i}.img`` / ``mem_page_count{i}.img``
(the same layouts as memory 0's) and in neutral.json's ``memories``
(see docs/images.md, image format version 3 and neutral version 2).

A 64-bit memory (memory64) needs no other layout: with the u32 byte
offsets of ``memory.img`` an image set holds memories up to 4 GiB (65536
pages), and a larger one is refused when checkpointing.
"""

import json
import re
import struct
from dataclasses import dataclass, field, replace
from typing import Dict, List

from .. import faults
from .images import CHUNK, PAGE, ImageError, _Reader, read_chunks

MEMORY_FILE = 'memory{}.img'
PAGES_FILE = 'mem_page_count{}.img'
MAX_IMAGE_PAGES = 65536                 # u32 byte offsets in memory{i}.img

_DECIMAL = re.compile(r'(0|[1-9][0-9]*)\Z')
_HEX_CHUNK = re.compile(r'[0-9a-f]{%d}\Z' % (2 * CHUNK))


@dataclass
class MemoryImage:
    """One memory other than memory 0: its size and its non-zero chunks."""
    page_count: int
    chunks: Dict[int, bytes] = field(default_factory=dict)   # byte offset -> 4096 bytes


# ------------------------------------------------------------ live store

def capture(store, inst) -> List[MemoryImage]:
    """Memories 1.. of the instance, from their written chunks only (and
    every memory's size checked: a 64-bit one may outgrow the files)."""
    out = []
    zero = bytes(CHUNK)
    for k, a in enumerate(inst.memaddrs):
        if len(store.mems[a].data) > MAX_IMAGE_PAGES * PAGE:
            raise ImageError(f'memory {k}: {len(store.mems[a].data) // PAGE} pages: an image set '
                             f'holds memories up to {MAX_IMAGE_PAGES} pages (u32 byte offsets)')
    for a in inst.memaddrs[1:]:
        mem = store.mems[a]
        chunks = {}
        data = store.mems[inst.memaddrs[0]].data if faults.SECOND_MEMORY else mem.data
        for off in mem.dirty_offsets():
            chunk = bytes(data[off:off + CHUNK])
            if chunk != zero:
                chunks[off] = chunk
        out.append(MemoryImage(len(mem.data) // PAGE, chunks))
    return out


def restore(store, inst, memories: List[MemoryImage]) -> None:
    """Memories 1.. of the instance become the images' (in place: the
    executors hold each memory's ``data`` and ``dirty``)."""
    from ..syntax import Limits, MemType
    for a, part in zip(inst.memaddrs[1:], memories):
        mem = store.mems[a]
        data = bytearray(part.page_count * PAGE)
        for off, chunk in part.chunks.items():
            data[off:off + CHUNK] = chunk
        mem.load(data, sorted(part.chunks))
        mem.type = replace(mem.type, limits=Limits(part.page_count, mem.type.limits.max))
        if faults.MEM64_TYPE: mem.type = MemType(mem.type.limits)


def check(view, memories: List[MemoryImage], limits) -> None:
    """An image set's memories 1.. against the module and ``limits``."""
    want = len(view.mem_limits) - 1
    if len(memories) != max(want, 0):
        raise ImageError(f'{PAGES_FILE.format(len(memories) + 1 if len(memories) < want else len(memories))}: '
                         f'{"missing" if len(memories) < want else "present"}: the set holds '
                         f'{len(memories) + bool(view.has_memory)} memories but the module has '
                         f'{len(view.mem_limits)}')
    for i, part in enumerate(memories, 1):
        lo, hi, why = view.size_range('memory', i, limits)
        if not lo <= part.page_count <= hi:
            raise ImageError(f'{PAGES_FILE.format(i)}: page count: {part.page_count} is '
                             f'outside {why}')


# ------------------------------------------------------------ image files

def encode(memories: List[MemoryImage]) -> Dict[str, bytes]:
    files = {}
    for i, part in enumerate(memories, 1):
        files[PAGES_FILE.format(i)] = struct.pack('<I', part.page_count)
        files[MEMORY_FILE.format(i)] = b''.join(
            struct.pack('<I', off) + part.chunks[off] for off in sorted(part.chunks))
    return files


def decode(get) -> List[MemoryImage]:
    """``mem_page_count{i}.img`` and ``memory{i}.img`` for i = 1, 2, …
    while the page count file is present (version 3 sets)."""
    out = []
    i = 1
    while True:
        raw = get(PAGES_FILE.format(i), False)
        if raw is None:
            if get(MEMORY_FILE.format(i), False) is not None:
                raise ImageError(f'{PAGES_FILE.format(i)}: missing, but {MEMORY_FILE.format(i)} '
                                 f'is present')
            return out
        r = _Reader(PAGES_FILE.format(i), raw)
        pages = r.u32('page count')
        r.end()
        if pages > MAX_IMAGE_PAGES:
            r.fail('page count', f'{pages} exceeds {MAX_IMAGE_PAGES}')
        out.append(MemoryImage(pages, read_chunks(MEMORY_FILE.format(i),
                                                  get(MEMORY_FILE.format(i)), pages)))
        i += 1


# ------------------------------------------------------------ neutral.json

def to_doc(memories: List[MemoryImage]) -> list:
    return [{'pages': part.page_count,
             'chunks': {str(off): part.chunks[off].hex() for off in sorted(part.chunks)}}
            for part in memories]


def from_doc(raw, view, limits, fail) -> List[MemoryImage]:
    """neutral.json's ``memories`` (memories 1.. of the module), checked;
    ``fail(path, message)`` raises the document's error."""
    want = max(len(view.mem_limits) - 1, 0)
    if not isinstance(raw, list):
        fail('memories', 'expected a list of {"pages": n, "chunks": {...}}')
    if len(raw) != want:
        fail('memories', f'{len(raw)} memories, but the module has {want} after memory 0')
    out = []
    for i, m in enumerate(raw, 1):
        where = f'memories[{i - 1}]'
        if not isinstance(m, dict) or sorted(m) != ['chunks', 'pages']:
            fail(where, 'expected exactly the keys "pages" and "chunks"')
        pages = m['pages']
        lo, hi, why = view.size_range('memory', i, limits)
        if not isinstance(pages, int) or isinstance(pages, bool) or not lo <= pages <= hi:
            fail(f'{where}.pages', f'{json.dumps(pages)[:40]} is not a page count within {why}')
        if not isinstance(m['chunks'], dict):
            fail(f'{where}.chunks', 'expected an object {"<byte offset>": "<hex of 4096 bytes>"}')
        chunks = {}
        for key, text in m['chunks'].items():
            at = f'{where}.chunks["{key[:20]}"]'
            if not _DECIMAL.match(key):
                fail(at, 'the key must be a byte offset in decimal')
            off = int(key)
            if off % CHUNK or off + CHUNK > pages * PAGE:
                fail(at, f'offset {off} is not a multiple of {CHUNK} inside the memory of '
                         f'{pages} pages')
            if not isinstance(text, str) or not _HEX_CHUNK.match(text):
                fail(at, f'expected {2 * CHUNK} hex digits ({CHUNK} bytes)')
            chunk = bytes.fromhex(text)
            if chunk != bytes(CHUNK):
                chunks[off] = chunk
        out.append(MemoryImage(pages, chunks))
    return out
