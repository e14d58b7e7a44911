"""Checkpoint image files: the on-disk form of a stopped execution.

The layout follows the image directories of the WasmEdge and WAMR migration
forks, so one directory describes a stopped run whichever runtime wrote it.
Every file is little-endian; ``NONE`` (0xFFFFFFFF, i.e. -1 as u32) marks an
absent index.  docs/images.md documents every field; this module is the one
place that reads or writes them.

=====================  ======================================================
file                   contents
=====================  ======================================================
manifest.json          format name, version, runtime that wrote the set,
                       module sha256, entry export, result types, step count
program_counter.img    u32 fidx, u32 offset of the next instruction of the
                       top frame (WasmEdge: instruction index; WAMR: byte
                       offset after the local declarations)
frame.img              u32 frame count
stack{i}.img           i = 1 is the top frame.  u32 entry fidx, u32 return
                       fidx, u32 return offset (where the caller resumes;
                       NONE for the frame the host called), u32 slot count,
                       u8 cells per slot (1, 2 or 4) for locals then
                       operands, the u32 cells, u32 label count, then
                       4 x u32 per label (begin_addr, target_addr, frame_sp,
                       cell_num; NONE for none)
memory.img             repeated: u32 byte offset, 4096 bytes (only pages
                       that are not all zero)
mem_page_count.img     u32 number of 64 KiB pages (absent: no memory)
global.img             u32 count, then per global u8 value-type code and
                       its cells (u32 each, count implied by the type)
table.img              u32 table count, then per table u32 size and size
                       u32 entries (function index, externref handle, NONE
                       for null)
segment.img            u32 count, u32 indices of dropped element segments,
                       then the same for dropped data segments
gc.img                 version 4 (a module using GC): the GC heap, each
                       object once with an id; every anyref/externref
                       cell is then an entry id (migrate/gcheap.py)
link.img               version 5 (functions of other instances): the
                       links, (instance name, function index); function
                       index nfuncs + i is link i (migrate/links.py)
=====================  ======================================================
"""

import json
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .. import faults
from .. import syntax as S
from ..errors import WasmError
from ..exec.cells import CELLS, NONE  # noqa: F401 (part of the image format)

FORMAT = 'wasm-migrate-images'
VERSION = 1                      # what a set with one file per frame is written as
ONE_FILE_VERSION = 2             # a set whose frames are all in FRAMES_FILE
WASM3_VERSION = 3                # a set holding Wasm 3.0 state, either frame layout:
                                 # memory{i}.img files (several memories) and/or
                                 # EXN_FILE (exception state), each only when needed
GC_VERSION = 4                   # a set of a module that uses GC: version 3's files plus
                                 # GC_FILE (the heap; every anyref/externref cell an entry id)
LINK_VERSION = 5                 # a set holding links to other instances' functions:
                                 # version 4's files (gc.img exactly for a module using
                                 # GC) plus LINK_FILE
VERSIONS = (VERSION, ONE_FILE_VERSION, WASM3_VERSION, GC_VERSION, LINK_VERSION)
EXN_FILE = 'exception.img'
GC_FILE = 'gc.img'
LINK_FILE = 'link.img'
FRAME_LAYOUTS = ('per-file', 'one-file')   # stack{i}.img (the forks') or FRAMES_FILE
FRAMES_FILE = 'stacks.img'
CHUNK = 4096                     # dirty-page granularity of memory.img
PAGE = 65536                     # Wasm page
RUNTIMES = ('wasmedge', 'wamr')

# Binary value-type codes (spec binary/types.rst), used in global.img.
TYPE_CODES = {'i32': 0x7F, 'i64': 0x7E, 'f32': 0x7D, 'f64': 0x7C,
              'v128': 0x7B, 'funcref': 0x70, 'externref': 0x6F, 'exnref': 0x69,
              'anyref': 0x6E}
CODE_TYPES = {code: t for t, code in TYPE_CODES.items()}


class ImageError(WasmError):
    """A broken, truncated or mismatched image set."""


@dataclass
class FrameImage:
    """One stack{i}.img."""
    entry_fidx: int
    return_fidx: int                       # NONE for the host-called frame
    return_offset: int
    slot_cells: List[int]                  # 1, 2 or 4 per local/operand slot
    cells: List[int]                       # u32 cells of all slots in order
    labels: List[Tuple[int, int, int, int]] = field(default_factory=list)


@dataclass
class ImageSet:
    """A whole image directory in memory."""
    runtime: str
    module_sha256: str
    pc: Tuple[int, int]                    # (fidx, offset) of the top frame
    frames: List[FrameImage]               # frames[0] is the top (stack1.img)
    page_count: Optional[int]              # None: module has no memory
    memory: Dict[int, bytes]               # byte offset -> 4096 bytes
    globals: List[Tuple[str, List[int]]]   # (value type, cells)
    tables: List[List[int]]
    entry: str = ''                        # export the host invoked
    results: List[str] = field(default_factory=list)
    steps: int = 0                         # instructions executed before the stop
    dropped_elems: List[int] = field(default_factory=list)
    dropped_datas: List[int] = field(default_factory=list)
    frames_layout: str = 'per-file'        # as read (FRAME_LAYOUTS); writers choose their own
    # exception handling (EXN_FILE): the exnref values' table, (tag index,
    # field cells), an exnref cell anywhere being an index into it; and the
    # exception each open legacy catch arm caught: (frame i of stack{i}.img,
    # catch depth, table index)
    exceptions: List[Tuple[int, List[int]]] = field(default_factory=list)
    caught: List[Tuple[int, int, int]] = field(default_factory=list)
    memories: list = field(default_factory=list)   # memories 1.. (migrate.memories.MemoryImage)
    # the GC heap (GC_FILE, docs/images.md "GC heap"): None for a module
    # that does not use GC; else gcheap's entries, and the passive element
    # segments of a GC type as (index, entry ids)
    heap: Optional[list] = None
    gc_elems: List[Tuple[int, List[int]]] = field(default_factory=list)
    # functions of other instances (LINK_FILE, docs/images.md "Links"):
    # links.Link each; function index nfuncs + i (any funcref cell, GC or
    # exception field) names links[i]
    links: list = field(default_factory=list)


def module_sha256(data: bytes) -> str:
    import hashlib          # here: a run that saves nothing never loads OpenSSL
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- writing

def _u32(x):
    return struct.pack('<I', x & 0xFFFFFFFF)


def _u32s(xs):
    return struct.pack(f'<{len(xs)}I', *[x & 0xFFFFFFFF for x in xs])


def encode_frame(frame: FrameImage) -> bytes:
    out = [_u32(frame.entry_fidx), _u32(frame.return_fidx),
           _u32(frame.return_offset), _u32(len(frame.slot_cells)),
           bytes(frame.slot_cells), _u32s(frame.cells),
           _u32(len(frame.labels))]
    for label in frame.labels:
        out.append(_u32s(label))
    return b''.join(out)


def encode_files(images: ImageSet, frames: str = 'per-file') -> Dict[str, bytes]:
    """Every file of the set as bytes, keyed by file name.  ``frames``:
    'per-file' (``stack{i}.img``, the forks' layout, version 1) or
    'one-file' (every frame in ``stacks.img``, version 2: a deep stack is
    one file instead of thousands)."""
    if frames not in FRAME_LAYOUTS:
        raise ValueError(f'frames layout {frames!r} is not one of {FRAME_LAYOUTS}')
    manifest = {'format': FORMAT, 'version': VERSION, 'runtime': images.runtime,
                'module_sha256': images.module_sha256, 'entry': images.entry,
                'results': images.results, 'steps': images.steps}
    if frames == 'one-file':
        manifest.update(version=ONE_FILE_VERSION, frames=frames)
    exn = images.exceptions or images.caught
    if exn or images.memories:      # Wasm 3.0 state: files the forks' layout lacks
        manifest.update(version=WASM3_VERSION, frames=frames)
    if images.heap is not None:
        manifest.update(version=GC_VERSION, frames=frames)
    if images.links:
        manifest.update(version=LINK_VERSION, frames=frames)
    files = {
        'manifest.json': json.dumps(manifest, indent=2).encode() + b'\n',
        'program_counter.img': _u32s(images.pc),
        'frame.img': _u32(len(images.frames)),
    }
    if frames == 'one-file':
        parts = []
        for frame in images.frames:
            data = encode_frame(frame)
            parts += (_u32(len(data)), data)
        files[FRAMES_FILE] = b''.join(parts)
    else:
        for i, frame in enumerate(images.frames, 1):
            files[f'stack{i}.img'] = encode_frame(frame)
    files['memory.img'] = b''.join(
        _u32(off // CHUNK if faults.CHUNK_INDEX else off) + images.memory[off]
        for off in sorted(images.memory)
        [:-1 if faults.DIRTY_PAGE else None])
    if images.page_count is not None:
        files['mem_page_count.img'] = _u32(images.page_count)
    glob = [_u32(len(images.globals))]
    for t, cells in images.globals:
        glob.append(bytes([TYPE_CODES[t]]) + _u32s(cells[:1] if faults.GLOBAL_WIDTH and t in ('i64', 'f64') else cells))
    files['global.img'] = b''.join(glob)
    tab = [_u32(len(images.tables))]
    for entries in images.tables:
        tab.append(_u32(len(entries)) + _u32s(entries))
    files['table.img'] = b''.join(tab)
    files['segment.img'] = b''.join(
        _u32(len(xs)) + _u32s(xs) for xs in (images.dropped_elems, images.dropped_datas))
    if exn:
        out = [_u32(len(images.exceptions))]
        for tag, cells in images.exceptions:
            out.append(_u32s([tag + faults.EXN_TAG, len(cells)] + list(cells)))
        out.append(_u32(len(images.caught)))
        for entry in images.caught:
            out.append(_u32s(entry))
        files[EXN_FILE] = b''.join(out)
    if images.memories:
        from . import memories
        files.update(memories.encode(images.memories))
    if images.heap is not None:
        from . import gcheap
        files[GC_FILE] = gcheap.encode(images.heap, images.gc_elems)
    if images.links:
        from . import links
        files[LINK_FILE] = links.encode(images.links)
    return files


def write_images(images: ImageSet, directory: str, extra=None, frames: str = 'per-file') -> None:
    """Write the set (plus ``extra`` files, name -> bytes; ``frames`` as for
    ``encode_files``) so that ``directory`` holds either the old content or
    the complete new set, never a half-written one."""
    files = encode_files(images, frames)
    files.update(extra or {})
    write_dir(files, directory)


def write_dir(files: Dict[str, bytes], directory: str) -> None:
    """Replace ``directory`` by one holding exactly ``files`` (name ->
    bytes), atomically.  Shared by every on-disk form of a stopped run."""
    def fill(tmp):
        # plain descriptors: a set is a dozen small files, written once each
        for name, data in files.items():
            fd = os.open(os.path.join(tmp, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
    atomic_dir(directory, fill)


def write_file_atomic(path: str, data, sync: bool = False) -> None:
    """Write ``data`` (bytes or str) to ``path`` through a hidden temporary
    sibling renamed into place: a reader sees the old file or the whole new
    one.  ``sync`` flushes it to disk first (records that must survive a
    crash).  The temporary name starts with '.' and ends with '.tmp', which
    every folder reader of the project skips."""
    parent, name = os.path.split(path)
    tmp = os.path.join(parent, f'.{name}.{os.getpid()}.tmp')
    with open(tmp, 'wb' if isinstance(data, (bytes, bytearray)) else 'w') as f:
        f.write(data)
        if sync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_dir(directory: str, fill) -> None:
    """Create or replace ``directory`` by calling ``fill(tmp)`` on a
    temporary sibling and renaming it into place: a reader sees the old
    content or the complete new one, never a half-written folder."""
    directory = os.path.abspath(directory)
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.tmp-', dir=parent)
    try:
        fill(tmp)
        old = None
        if os.path.exists(directory):
            old = tempfile.mkdtemp(prefix='.old-', dir=parent)
            os.rmdir(old)
            os.replace(directory, old)
        os.replace(tmp, directory)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ---------------------------------------------------------------- reading

class _Reader:
    """Sequential reads from one image file with errors naming the field."""

    def __init__(self, name, data):
        self.name, self.data, self.pos = name, data, 0

    def fail(self, field_name, message):
        raise ImageError(f'{self.name}: {field_name}: {message}',
                         f'byte {self.pos}')

    def u32(self, field_name):
        if self.pos + 4 > len(self.data):
            self.fail(field_name, 'truncated (expected u32)')
        (x,) = struct.unpack_from('<I', self.data, self.pos)
        self.pos += 4
        return x

    def u32s(self, n, field_name):
        if self.pos + 4 * n > len(self.data):
            self.fail(field_name, f'truncated (expected {n} u32)')
        xs = list(struct.unpack_from(f'<{n}I', self.data, self.pos))
        self.pos += 4 * n
        return xs

    def raw(self, n, field_name):
        if self.pos + n > len(self.data):
            self.fail(field_name, f'truncated (expected {n} bytes)')
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def end(self):
        if self.pos != len(self.data):
            self.fail('end', f'{len(self.data) - self.pos} unexpected trailing bytes')


def decode_frame(name: str, data: bytes) -> FrameImage:
    r = _Reader(name, data)
    entry = r.u32('entry fidx')
    ret_fidx = r.u32('return fidx')
    ret_off = r.u32('return offset')
    nslots = r.u32('slot count')
    if nslots > len(data):
        r.fail('slot count', f'{nslots} slots cannot fit in {len(data)} bytes')
    slot_cells = list(r.raw(nslots, 'cells per slot'))
    for k, c in enumerate(slot_cells):
        if c not in (1, 2, 4):
            r.fail(f'cells per slot [{k}]', f'{c} is not 1, 2 or 4')
    cells = r.u32s(sum(slot_cells), 'cells')
    nlabels = r.u32('label count')
    if nlabels * 16 > len(data):
        r.fail('label count', f'{nlabels} labels cannot fit in {len(data)} bytes')
    labels = [tuple(r.u32s(4, f'label {k}')) for k in range(nlabels)]
    r.end()
    return FrameImage(entry, ret_fidx, ret_off, slot_cells, cells, labels)


def _read(directory, name, required=True):
    path = os.path.join(directory, name)
    try:
        with open(path, 'rb') as f:
            return f.read()
    except FileNotFoundError:
        if required:
            raise ImageError(f'{name}: missing from image directory {directory}')
        return None
    except OSError as e:
        raise ImageError(f'{name}: cannot read: {e.strerror}')


def read_images(directory: str, limits=None) -> ImageSet:
    """Load and check an image directory (structure only; see
    ``check_module`` for the match with a module); ``limits``
    (engine/limits.py) bounds the GC heap before it is built."""
    if not os.path.isdir(directory):
        raise ImageError(f'image directory {directory} does not exist')
    return _decode(lambda name, required=True: _read(directory, name, required), limits)


def decode_files(files: Dict[str, bytes], limits=None) -> ImageSet:
    """The same checks on an image set held in memory as file name -> bytes
    (what ``encode_files`` gives), for callers that never touch the disk."""
    def get(name, required=True):
        if name in files:
            return files[name]
        if required:
            raise ImageError(f'{name}: missing from the image set')
        return None
    return _decode(get, limits)


def read_pc_and_frame_count(get):
    """``program_counter.img`` and ``frame.img``, laid out alike in the
    project's sets and the forks' own: ((fidx, offset), frame count >= 1)."""
    r = _Reader('program_counter.img', get('program_counter.img'))
    pc = (r.u32('fidx'), r.u32('offset'))
    r.end()
    r = _Reader('frame.img', get('frame.img'))
    nframes = r.u32('frame count')
    r.end()
    if nframes == 0:
        raise ImageError('frame.img: frame count: 0 (a stopped run has at least one frame)',
                         'byte 0')
    return pc, nframes


def read_page_count(get):
    """``mem_page_count.img`` (both layouts): Wasm pages, or None when the
    file is absent (a module without memory)."""
    page_raw = get('mem_page_count.img', False)
    if page_raw is None:
        return None
    r = _Reader('mem_page_count.img', page_raw)
    page_count = r.u32('page count')
    r.end()
    if page_count > 65536:
        raise ImageError(f'mem_page_count.img: page count: {page_count} exceeds 65536', 'byte 0')
    return page_count


def _decode(get, limits=None) -> ImageSet:
    raw = get('manifest.json')
    try:
        manifest = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise ImageError(f'manifest.json: not valid JSON: {str(e)[:200] or "nested too deeply"}')
    if not isinstance(manifest, dict) or manifest.get('format') != FORMAT:
        raise ImageError(f'manifest.json: format: expected {FORMAT!r}')
    version = manifest.get('version')
    if version not in VERSIONS or isinstance(version, bool):
        raise ImageError(f"manifest.json: version: {json.dumps(version)[:40]} "
                         f'is not supported (this tool reads versions {VERSION}, {ONE_FILE_VERSION}, '
                         f'{WASM3_VERSION}, {GC_VERSION} and {LINK_VERSION})')
    layout = 'per-file' if version == VERSION else manifest.get('frames')
    if layout not in FRAME_LAYOUTS:
        raise ImageError(f'manifest.json: frames: {json.dumps(layout)[:40]} is not one of '
                         f'{FRAME_LAYOUTS} (required from version {ONE_FILE_VERSION} on)')
    runtime = manifest.get('runtime')
    if runtime not in RUNTIMES:
        raise ImageError(f'manifest.json: runtime: {runtime!r} is not one of {RUNTIMES}')
    sha = manifest.get('module_sha256')
    if not isinstance(sha, str) or len(sha) != 64:
        raise ImageError('manifest.json: module_sha256: missing or not a sha256 hex digest')

    pc, nframes = read_pc_and_frame_count(get)
    frames = (read_one_file_frames(get(FRAMES_FILE), nframes) if layout == 'one-file' else
              [decode_frame(f'stack{i}.img', get(f'stack{i}.img')) for i in range(1, nframes + 1)])
    if frames[0].entry_fidx != pc[0]:
        raise ImageError(f'program_counter.img: fidx: {pc[0]} but stack1.img '
                         f'entry fidx is {frames[0].entry_fidx}')

    page_count = read_page_count(get)
    mem_raw = get('memory.img')
    if page_count is None and mem_raw:
        raise ImageError('mem_page_count.img: missing, but memory.img holds chunks')
    memory = read_chunks('memory.img', mem_raw, page_count or 0, CHUNK if faults.CHUNK_INDEX else 1)

    r = _Reader('global.img', get('global.img'))
    globs = []
    for k in range(r.u32('global count')):
        code = r.raw(1, f'global {k} type')[0]
        if code not in CODE_TYPES:
            r.fail(f'global {k} type', f'unknown value type code {code:#x}')
        t = CODE_TYPES[code]
        globs.append((t, r.u32s(CELLS[t], f'global {k} value')))
    r.end()

    tables = []
    tab_raw = get('table.img', required=False)
    if tab_raw is not None:
        r = _Reader('table.img', tab_raw)
        for k in range(r.u32('table count')):
            size = r.u32(f'table {k} size')
            if size * 4 > len(tab_raw):
                r.fail(f'table {k} size', f'{size} entries cannot fit in the file')
            tables.append(r.u32s(size, f'table {k} entries'))
        r.end()

    dropped = ([], [])
    seg_raw = get('segment.img', required=False)
    if seg_raw is not None:
        r = _Reader('segment.img', seg_raw)
        dropped = tuple(r.u32s(min(r.u32(f'{what} count'), len(seg_raw)), f'dropped {what} indices')
                        for what in ('elem', 'data'))
        r.end()

    exceptions, caught = [], []
    raw = get(EXN_FILE, False) if version >= WASM3_VERSION else None
    if raw is not None:             # absent: no exception state (an exnref cell then fails)
        r = _Reader(EXN_FILE, raw)
        for k in range(r.u32('exception count')):
            tag = r.u32(f'exception {k} tag') - faults.EXN_TAG
            n = r.u32(f'exception {k} cell count')
            if n * 4 > len(raw):
                r.fail(f'exception {k} cell count', f'{n} cells cannot fit in the file')
            exceptions.append((tag, r.u32s(n, f'exception {k} fields')))
        for k in range(r.u32('caught count')):
            entry = tuple(r.u32s(3, f'caught {k}'))
            if not 1 <= entry[0] <= nframes:
                r.fail(f'caught {k} frame', f'{entry[0]} is not a frame 1 .. {nframes}')
            if entry[2] >= len(exceptions):
                r.fail(f'caught {k} exception', f'{entry[2]} but the table holds '
                                                f'{len(exceptions)}')
            caught.append(entry)
        r.end()
    more = []
    if version >= WASM3_VERSION:
        from . import memories
        more = memories.decode(get)
    heap, gc_elems = None, []
    raw = get(GC_FILE, False) if version >= GC_VERSION else None
    if raw is not None:             # version 5: present exactly for a module using GC
        from . import gcheap
        heap, gc_elems = gcheap.decode(raw, limits)
    elif version == GC_VERSION:
        raise ImageError(f'{GC_FILE}: missing from a version-{GC_VERSION} set (the GC heap)')
    elif version < GC_VERSION and get(GC_FILE, False) is not None:
        raise ImageError(f'{GC_FILE}: present in a version-{version} set (a GC heap needs '
                         f'version {GC_VERSION})')
    links = []
    raw = get(LINK_FILE, False)
    if version == LINK_VERSION:
        if raw is None:
            raise ImageError(f'{LINK_FILE}: missing from a version-{LINK_VERSION} set (the links)')
        from . import links as lk
        links = lk.decode(raw)
    elif raw is not None:
        raise ImageError(f'{LINK_FILE}: present in a version-{version} set (links need '
                         f'version {LINK_VERSION})')

    entry, results, steps = _manifest_fields(manifest)
    return ImageSet(runtime=runtime, module_sha256=sha, pc=pc, frames=frames,
                    page_count=page_count, memory=memory, globals=globs,
                    tables=tables, entry=entry, results=results, steps=steps,
                    dropped_elems=dropped[0], dropped_datas=dropped[1], frames_layout=layout,
                    exceptions=exceptions, caught=caught, memories=more,
                    heap=heap, gc_elems=gc_elems, links=links)


def read_chunks(name, data, page_count, scale=1) -> Dict[int, bytes]:
    """A memory file (``memory.img``, ``memory{i}.img``): repeated u32
    byte offset and 4096 bytes, inside ``page_count`` pages, each offset
    once; byte offset -> chunk."""
    r = _Reader(name, data)
    chunks = {}
    limit = page_count * PAGE
    while r.pos < len(r.data):
        off = r.u32(f'page offset #{len(chunks)}') * scale
        if off % CHUNK:
            r.fail('page offset', f'{off:#x} is not a multiple of {CHUNK}')
        if off + CHUNK > limit:
            r.fail('page offset', f'{off:#x} beyond memory of {page_count} pages')
        if off in chunks:
            r.fail('page offset', f'{off:#x} appears twice')
        chunks[off] = bytes(r.raw(CHUNK, f'page data at {off:#x}'))
    return chunks


def read_one_file_frames(data: bytes, nframes: int) -> List[FrameImage]:
    """``stacks.img``: per frame (top first) a u32 byte length, then the
    bytes a ``stack{i}.img`` would hold; errors name the frame and field."""
    r = _Reader(FRAMES_FILE, data)
    frames = []
    for i in range(1, nframes + 1):
        n = r.u32(f'frame {i} length')
        if n > len(data) - r.pos:
            r.fail(f'frame {i} length', f'{n} bytes, but only {len(data) - r.pos} remain')
        start = r.pos                       # errors inside name the frame and its start
        frames.append(decode_frame(f'{FRAMES_FILE}: frame {i} (from byte {start})',
                                   r.raw(n, f'frame {i}')))
    r.end()
    return frames


MANIFEST_KEYS = ('format', 'version', 'runtime', 'module_sha256', 'entry', 'results', 'steps')


def _manifest_fields(manifest):
    """``entry``, ``results`` and ``steps`` of the manifest, each checked for
    its type and range (keys every writer of this version writes; other
    keys are ignored, for tools that add their own)."""
    missing = [k for k in MANIFEST_KEYS if k not in manifest]
    if missing:
        raise ImageError(f'manifest.json: {missing[0]}: missing')
    entry, results, steps = manifest['entry'], manifest['results'], manifest['steps']
    if not isinstance(entry, str):
        raise ImageError(f'manifest.json: entry: {json.dumps(entry)[:40]} is not a string '
                         f'(the name of the exported function)')
    if not isinstance(results, list) or not all(S.parse_valtype(t) for t in results):
        raise ImageError(f'manifest.json: results: {json.dumps(results)[:40]} is not a list '
                         f'of value types')
    results = [S.parse_valtype(t) for t in results]
    if not isinstance(steps, int) or isinstance(steps, bool) or not 0 <= steps < 1 << 64:
        raise ImageError(f'manifest.json: steps: {json.dumps(steps)[:40]} is not a count of '
                         f'instructions (an integer 0 .. 2^64-1)')
    return entry, list(results), steps


def check_module(images: ImageSet, module_bytes: bytes) -> None:
    """Refuse to resume an image set with a module other than the one that
    wrote it."""
    sha = module_sha256(module_bytes)
    if sha != images.module_sha256:
        raise ImageError(f'manifest.json: module_sha256: images were taken from module '
                         f'{images.module_sha256[:16]}…, not this module ({sha[:16]}…)')
