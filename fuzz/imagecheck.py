"""A second, independent reader of image directories, for the oracle.

Each hop of a migrated run writes its image set with ``engine.migrate.images`` and
reads it back with the same module: a writer and a reader that are wrong
the same way (an offset stored as a chunk index and multiplied back, a list
written reversed and read reversed) cancel out and every run still agrees.
This reader follows docs/images.md field by field with nothing but
``struct`` and ``json``, shares no code with ``engine/migrate/images.py``, and
``check_dir`` compares what it decodes with the ``ImageSet`` the run meant
to write and with what the engine's reader returned.
"""

import functools
import json
import os
import re
import struct

VALTYPE = {0x7F: ('i32', 1), 0x7E: ('i64', 2), 0x7D: ('f32', 1), 0x7C: ('f64', 2),
           0x7B: ('v128', 4), 0x70: ('funcref', 1), 0x6F: ('externref', 1),
           0x69: ('exnref', 1),     # version 3: an index into exception.img's table
           0x6E: ('anyref', 1)}     # version 4: an entry id of gc.img
NONE = 0xFFFFFFFF                   # a null reference cell
CHUNK, PAGE = 4096, 65536
# docs/images.md, "manifest.json": the format name and the versions of the
# two frame layouts (written down here, not taken from the engine's writer,
# whose constants a reader sharing them would accept whatever they became)
FORMAT = 'wasm-migrate-images'
VERSIONS = (1, 2, 3, 4, 5)        # 3: Wasm 3.0 state (memory{i}.img, exception.img); 4: gc.img;
                                  # 5: link.img (functions of other instances)
GC_KINDS = ('struct', 'array', 'i31', 'host')     # docs/images.md "GC heap": kind byte 0 .. 3
GC_PAYLOAD = {0: 0, 1: 4, 2: 4, 3: 4, 4: 4, 5: 8, 6: 16, 7: 4, 8: 4}   # field tag -> payload bytes
FRAME_LAYOUTS = ('one-file', 'per-file')
# docs/images.md "GC heap": the tag a field of each number storage type has
# (num32, num64, num128); a reference field has one of the others
GC_NUM_TAG = {'i8': 4, 'i16': 4, 'i32': 4, 'f32': 4, 'i64': 5, 'f64': 5, 'v128': 6}
GC_REF_TAGS = frozenset((0, 1, 2, 3, 7, 8))


class ImageCheckError(Exception):
    """The files disagree with the documented layout or with what was meant."""


class _Bytes:
    def __init__(self, name, data):
        self.name, self.data, self.at = name, data, 0

    def u32(self, what):
        if self.at + 4 > len(self.data):
            raise ImageCheckError(f'{self.name}: {what}: file ends at byte {len(self.data)}')
        (v,) = struct.unpack_from('<I', self.data, self.at)
        self.at += 4
        return v

    def u32s(self, n, what):
        if self.at + 4 * n > len(self.data):
            raise ImageCheckError(f'{self.name}: {what}: file ends at byte {len(self.data)}')
        out = list(struct.unpack_from(f'<{n}I', self.data, self.at))
        self.at += 4 * n
        return out

    def take(self, n, what):
        if self.at + n > len(self.data):
            raise ImageCheckError(f'{self.name}: {what}: file ends at byte {len(self.data)}')
        out = self.data[self.at:self.at + n]
        self.at += n
        return out

    def done(self):
        if self.at != len(self.data):
            raise ImageCheckError(f'{self.name}: {len(self.data) - self.at} bytes after the last field')


def _file(directory, name, required=True):
    try:
        with open(os.path.join(directory, name), 'rb') as f:
            return f.read()
    except FileNotFoundError:
        if required:
            raise ImageCheckError(f'{name}: missing') from None
        return None


def _check_header(man):
    """manifest.json's format and version as docs/images.md gives them:
    version 1 (one stack{i}.img per frame) has no ``frames`` key, version 2
    names its layout in ``frames``."""
    if man.get('format') != FORMAT:
        raise ImageCheckError(f'manifest.json: format {man.get("format")!r}, documented {FORMAT!r}')
    version = man.get('version')
    if type(version) is not int or version not in VERSIONS:
        raise ImageCheckError(f'manifest.json: version {version!r}, documented: one of {VERSIONS}')
    if version == 1 and 'frames' in man:
        raise ImageCheckError('manifest.json: "frames" in a version 1 manifest')
    if version >= 2 and man.get('frames') not in FRAME_LAYOUTS:
        raise ImageCheckError(f'manifest.json: version {version} with frames {man.get("frames")!r}, '
                              f'documented: one of {FRAME_LAYOUTS}')


def _check_version(directory, man):
    """docs/images.md: version 5 exactly when the set has link.img, else
    version 4 exactly when the set has gc.img (a module using GC), else
    version 3 exactly when the set holds Wasm 3.0 state
    files (exception.img, memory{i}.img / mem_page_count{i}.img for i >= 1),
    else version 2 exactly when its frames are in one file (stacks.img),
    else version 1."""
    names = set(os.listdir(directory))
    v3 = 'exception.img' in names or any(re.fullmatch(r'(memory|mem_page_count)[1-9][0-9]*\.img', n)
                                         for n in names)
    want = 5 if 'link.img' in names else 4 if 'gc.img' in names else 3 if v3 else \
        2 if 'stacks.img' in names else 1
    if man.get('version') != want:
        raise ImageCheckError(f'manifest.json: version {man.get("version")!r}, but a set of these files '
                              f'is version {want} (docs/images.md)')


def decode_dir(directory):
    """The image directory as a plain dict, straight from docs/images.md."""
    man = json.loads(_file(directory, 'manifest.json'))
    _check_header(man)
    _check_version(directory, man)
    b = _Bytes('program_counter.img', _file(directory, 'program_counter.img'))
    pc = (b.u32('fidx'), b.u32('offset'))
    b.done()
    b = _Bytes('frame.img', _file(directory, 'frame.img'))
    nframes = b.u32('count')
    b.done()
    frames = []
    # version 2 with "frames": "one-file": every frame in stacks.img, each
    # after its u32 length; otherwise one stack{i}.img per frame
    one = _Bytes('stacks.img', _file(directory, 'stacks.img')) if (
        man.get('version') in (2, 3, 4, 5) and man.get('frames') == 'one-file') else None
    for i in range(1, nframes + 1):
        if one is None:
            name = f'stack{i}.img'
            b = _Bytes(name, _file(directory, name))
        else:
            name = f'stacks.img frame {i}'
            b = _Bytes(name, one.take(one.u32(f'frame {i} length'), f'frame {i}'))
        entry, ret_f, ret_o, nslots = (b.u32(w) for w in ('entry fidx', 'return fidx',
                                                           'return offset', 'slot count'))
        slot_cells = list(b.take(nslots, 'cells per slot'))
        if any(c not in (1, 2, 4) for c in slot_cells):
            raise ImageCheckError(f'{name}: cells per slot: {slot_cells} (only 1, 2, 4 are documented)')
        cells = b.u32s(sum(slot_cells), 'cells')
        labels = [tuple(b.u32s(4, f'label {k}')) for k in range(b.u32('label count'))]
        b.done()
        if labels and man.get('runtime') == 'wasmedge':
            raise ImageCheckError(f'{name}: {len(labels)} labels in a wasmedge set (docs/images.md: '
                                  f'label count 0, WasmEdge keeps no label stack)')
        frames.append({'entry_fidx': entry, 'return_fidx': ret_f, 'return_offset': ret_o,
                       'slot_cells': slot_cells, 'cells': cells, 'labels': labels})
    if one is not None:
        one.done()
    raw = _file(directory, 'mem_page_count.img', required=False)
    pages = None
    if raw is not None:
        b = _Bytes('mem_page_count.img', raw)
        pages = b.u32('pages')
        b.done()
    b = _Bytes('memory.img', _file(directory, 'memory.img'))
    memory = {}
    while b.at < len(b.data):
        off = b.u32('byte offset')
        if off % CHUNK or off + CHUNK > (pages or 0) * PAGE:
            raise ImageCheckError(f'memory.img: byte offset {off:#x} is not a multiple of {CHUNK} '
                                  f'inside {pages or 0} pages')
        memory[off] = b.take(CHUNK, f'chunk at {off:#x}')
    # version 3: memory i >= 1 in mem_page_count{i}.img and memory{i}.img
    memories = []
    while man.get('version') in (3, 4, 5):
        i = len(memories) + 1
        raw = _file(directory, f'mem_page_count{i}.img', required=False)
        if raw is None:
            break
        b = _Bytes(f'mem_page_count{i}.img', raw)
        mpages = b.u32('pages')
        b.done()
        b = _Bytes(f'memory{i}.img', _file(directory, f'memory{i}.img'))
        chunks = {}
        while b.at < len(b.data):
            off = b.u32('byte offset')
            if off % CHUNK or off + CHUNK > mpages * PAGE:
                raise ImageCheckError(f'memory{i}.img: byte offset {off:#x} is not a multiple of '
                                      f'{CHUNK} inside {mpages} pages')
            chunks[off] = b.take(CHUNK, f'chunk at {off:#x}')
        memories.append((mpages, chunks))
    b = _Bytes('global.img', _file(directory, 'global.img'))
    globs = []
    for k in range(b.u32('count')):
        code = b.take(1, f'global {k} type')[0]
        if code not in VALTYPE:
            raise ImageCheckError(f'global.img: global {k}: type code {code:#x} is not documented')
        t, n = VALTYPE[code]
        globs.append((t, b.u32s(n, f'global {k} cells')))
    b.done()
    tables = []
    raw = _file(directory, 'table.img', required=False)
    if raw is not None:
        b = _Bytes('table.img', raw)
        for k in range(b.u32('count')):
            tables.append(b.u32s(b.u32(f'table {k} size'), f'table {k} entries'))
        b.done()
    dropped = ([], [])
    raw = _file(directory, 'segment.img', required=False)
    if raw is not None:
        b = _Bytes('segment.img', raw)
        dropped = tuple(b.u32s(b.u32(f'{what} count'), what) for what in ('elem', 'data'))
        b.done()
    exceptions, caught = _exceptions(directory, man, nframes, globs)
    heap, gc_elems = _gc_heap(directory, man, globs)
    return {'links': _links(directory), 'heap': heap, 'gc_elems': gc_elems, 'runtime': man['runtime'], 'module_sha256': man['module_sha256'], 'pc': pc,
            'frames': frames, 'page_count': pages, 'memory': memory, 'globals': globs,
            'tables': tables, 'steps': man.get('steps', 0),
            'dropped_elems': dropped[0], 'dropped_datas': dropped[1], 'memories': memories,
            'exceptions': exceptions, 'caught': caught}


def _exceptions(directory, man, nframes, globs):
    """docs/images.md "Exceptions": exception.img (version 3 only) is the
    table of exception instances, (tag index, cells), then the caught list
    of (frame 1..count, catch depth, table index); an exnref global's cell
    is NONE or an index into the table."""
    raw = _file(directory, 'exception.img', required=False)
    exceptions, caught = [], []
    if raw is not None:
        if man.get('version') not in (3, 4, 5):
            raise ImageCheckError(f'exception.img in a version {man.get("version")} set '
                                  f'(documented: 3, 4 and 5 only)')
        b = _Bytes('exception.img', raw)
        for k in range(b.u32('exception count')):
            tag = b.u32(f'exception {k} tag')
            exceptions.append((tag, b.u32s(b.u32(f'exception {k} cell count'), f'exception {k} fields')))
        for k in range(b.u32('caught count')):
            frame, depth, index = b.u32s(3, f'caught {k}')
            if not 1 <= frame <= nframes or index >= len(exceptions):
                raise ImageCheckError(f'exception.img: caught {k}: frame {frame} of {nframes}, '
                                      f'exception {index} of {len(exceptions)}')
            caught.append((frame, depth, index))
        for frame in {f for f, _, _ in caught}:
            depths = [d for f, d, _ in caught if f == frame]
            if sorted(depths) != list(range(len(depths))):
                raise ImageCheckError(f'exception.img: frame {frame} has caught depths {depths}, '
                                      f'documented: 0, 1, ... (one per open catch arm, outermost first)')
        b.done()
    for k, (t, cells) in enumerate(globs):
        if t == 'exnref' and cells[0] != NONE and cells[0] >= len(exceptions):
            raise ImageCheckError(f'global.img: global {k}: exnref cell {cells[0]} but exception.img '
                                  f'holds {len(exceptions)} exceptions')
    return exceptions, caught


def _gc_heap(directory, man, globs):
    """docs/images.md "GC heap": gc.img (version 4 only): magic GCH1, u32
    entry count, per entry a kind byte (struct, array: u32 type index, u32
    field count, per field a tag byte and its payload; i31: u32 < 2^31;
    host: u32 handle), then u32 segment count, per segment u32 index
    (ascending), u32 length, u32 entry ids.  Object fields name struct or
    array entries; a GC global's cell is NONE or an entry id."""
    raw = _file(directory, 'gc.img', required=False)
    if raw is None:
        if man.get('version') == 4:
            raise ImageCheckError('gc.img: missing from a version 4 set')
        return None, []
    b = _Bytes('gc.img', raw)
    if b.take(4, 'magic') != b'GCH1':
        raise ImageCheckError(f'gc.img: magic {raw[:4]!r}, documented GCH1')
    entries = []
    for k in range(b.u32('entry count')):
        kind = b.take(1, f'entry {k} kind')[0]
        if kind >= len(GC_KINDS):
            raise ImageCheckError(f'gc.img: entry {k}: kind {kind} is not documented')
        if kind >= 2:
            v = b.u32(f'entry {k} value')
            if (kind == 2 and v >= 1 << 31) or (kind == 3 and v == NONE):
                raise ImageCheckError(f'gc.img: entry {k}: {GC_KINDS[kind]} value {v:#x} out of range')
            entries.append((GC_KINDS[kind], v))
            continue
        typeidx, n = b.u32(f'entry {k} type index'), b.u32(f'entry {k} field count')
        fields = []
        for i in range(n):
            tag = b.take(1, f'entry {k} field {i} tag')[0]
            if tag not in GC_PAYLOAD:
                raise ImageCheckError(f'gc.img: entry {k} field {i}: tag {tag} is not documented')
            fields.append((tag, int.from_bytes(b.take(GC_PAYLOAD[tag], f'entry {k} field {i}'),
                                               'little')))
        entries.append((GC_KINDS[kind], typeidx, tuple(fields)))
    for k, e in enumerate(entries):
        for i, (tag, x) in enumerate(e[2] if len(e) == 3 else ()):
            if tag == 2 and (x >= len(entries) or len(entries[x]) != 3):
                raise ImageCheckError(f'gc.img: entry {k} field {i}: object {x} is not a struct or '
                                      f'array entry of the {len(entries)}')
    elems, last = [], -1
    for j in range(b.u32('segment count')):
        i = b.u32(f'segment {j} index')
        if i <= last:
            raise ImageCheckError(f'gc.img: segment {j}: index {i} not ascending')
        last = i
        cells = b.u32s(b.u32(f'segment {j} length'), f'segment {j} elements')
        if any(c != NONE and c >= len(entries) for c in cells):
            raise ImageCheckError(f'gc.img: segment {j}: an element names no entry')
        elems.append((i, cells))
    b.done()
    for k, (t, cells) in enumerate(globs):
        if t in ('anyref', 'externref') and cells[0] != NONE and cells[0] >= len(entries):
            raise ImageCheckError(f'global.img: global {k}: cell {cells[0]} but gc.img holds '
                                  f'{len(entries)} entries')
    return entries, elems


def _links(directory):
    """docs/images.md "Links": link.img (version 5 only, which
    ``_check_version`` ties to it): magic LNK1, u32 count (at least 1),
    per link u32 function index, u32 name length (at least 1), the
    instance name in UTF-8; no link twice."""
    raw = _file(directory, 'link.img', required=False)
    if raw is None:
        return []
    b = _Bytes('link.img', raw)
    if b.take(4, 'magic') != b'LNK1':
        raise ImageCheckError(f'link.img: magic {raw[:4]!r}, documented LNK1')
    n = b.u32('link count')
    if n == 0:
        raise ImageCheckError('link.img: no links (documented: a set without links has no link.img)')
    out = []
    for k in range(n):
        fidx = b.u32(f'link {k} function index')
        size = b.u32(f'link {k} name length')
        try:
            name = b.take(size, f'link {k} name').decode('utf-8')
        except UnicodeDecodeError:
            raise ImageCheckError(f'link.img: link {k}: name is not UTF-8') from None
        if not name or (name, fidx) in out:
            raise ImageCheckError(f'link.img: link {k}: {(name, fidx)} empty or listed twice')
        out.append((name, fidx))
    b.done()
    return out


def _heap_dict(images):
    if images.heap is None:
        return None
    return [(e[0], e[1], tuple((tag, x) for tag, x in e[2])) if len(e) == 3 else tuple(e)
            for e in images.heap]


def as_dict(images):
    """An ``engine.migrate.images.ImageSet`` in ``decode_dir``'s shape."""
    return {'runtime': images.runtime, 'module_sha256': images.module_sha256, 'pc': tuple(images.pc),
            'frames': [{'entry_fidx': f.entry_fidx, 'return_fidx': f.return_fidx,
                        'return_offset': f.return_offset, 'slot_cells': list(f.slot_cells),
                        'cells': list(f.cells), 'labels': [tuple(l) for l in f.labels]}
                       for f in images.frames],
            'page_count': images.page_count, 'memory': {k: bytes(v) for k, v in images.memory.items()},
            'globals': [(t, list(c)) for t, c in images.globals],
            'tables': [list(t) for t in images.tables], 'steps': images.steps,
            'dropped_elems': list(images.dropped_elems), 'dropped_datas': list(images.dropped_datas),
            'memories': [(m.page_count, {k: bytes(v) for k, v in m.chunks.items()})
                         for m in images.memories],
            'exceptions': [(tag, list(cells)) for tag, cells in images.exceptions],
            'caught': [tuple(e) for e in images.caught],
            'heap': _heap_dict(images),
            'gc_elems': [(i, list(cells)) for i, cells in images.gc_elems],
            'links': [(link.instance, link.fidx) for link in images.links]}


def _differences(a, b, path=''):
    if a == b:                  # the usual case, compared at C speed
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                yield f'{path}.{k}: present in one only'
            else:
                yield from _differences(a[k], b[k], f'{path}.{k}' if path else str(k))
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            yield from _differences(x, y, f'{path}[{i}]')
    elif a != b:
        sa, sb = repr(a), repr(b)
        yield f'{path}: {sa[:60]} vs {sb[:60]}'


def check_extra(directory, extra):
    """The files written beside a set (``extra``: name -> bytes, e.g. the
    module.wasm a restore loads) must be there, byte for byte."""
    for name, data in (extra or {}).items():
        try:
            with open(os.path.join(directory, name), 'rb') as f:
                got = f.read()
        except OSError as e:
            raise ImageCheckError(f'{os.path.basename(directory)}/{name}: written beside the set '
                                  f'but cannot be read: {e.strerror}')
        if got != data:
            raise ImageCheckError(f'{os.path.basename(directory)}/{name}: {len(got)} bytes differ '
                                  f'from the {len(data)} written')


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()      # what any file the user creates gets


def check_modes(directory):
    """A set's files are plain data files: read-write as the user's umask
    allows, never executable (a writer passing another mode shows here)."""
    for name in sorted(os.listdir(directory)):
        mode = os.stat(os.path.join(directory, name)).st_mode & 0o7777
        if mode != FILE_MODE:
            raise ImageCheckError(f'{os.path.basename(directory)}/{name}: mode {mode:o}, expected '
                                  f'{FILE_MODE:o} (0666 less the umask)')


@functools.lru_cache(maxsize=8)
def _module_types(wasm):
    """The type section of a module (the engine's binary decoder: the
    module, not the image format, is what it reads)."""
    from engine.binary import decode_module
    return decode_module(wasm).types


def check_gc_tags(heap, wasm):
    """Each struct or array field of gc.img's entries (``decode_dir``'s
    ``heap``) has the tag docs/images.md gives its storage type in the
    module ``wasm``: a writer and a reader sharing one wrong table (an f32
    as num64) agree with each other but not with the documentation."""
    types = _module_types(bytes(wasm))
    for k, e in enumerate(heap or ()):
        if len(e) != 3 or e[1] >= len(types):
            continue
        t = types[e[1]]
        fields = getattr(t, 'fields', None)
        storages = [f.storage for f in fields] if fields is not None else [t.field.storage] * len(e[2])
        for i, (st, (tag, _)) in enumerate(zip(storages, e[2])):
            want = GC_NUM_TAG.get(st)
            if (tag != want) if want is not None else (tag not in GC_REF_TAGS):
                raise ImageCheckError(f'gc.img: entry {k} field {i}: tag {tag} in a field of type {st} '
                                      f'(docs/images.md: {want if want is not None else "a reference tag"})')


def hidden_beside(directory):
    """The hidden entries of ``directory``'s parent folder."""
    parent = os.path.dirname(os.path.abspath(directory))
    return frozenset(n for n in os.listdir(parent) if n.startswith('.'))


def check_nothing_left_beside(directory, there_before=frozenset()):
    """A writer may stage a set beside its directory (a hidden folder of
    the same parent, so one rename publishes it, and the set it replaces
    moved aside first) but must leave nothing of that behind: nothing
    half-written on disk.  ``there_before``: the hidden entries the parent
    had before anything was written."""
    left = sorted(hidden_beside(directory) - there_before)
    if left:
        raise ImageCheckError(f'writing {os.path.basename(directory)} left {", ".join(left)} behind '
                              f'in its parent directory')


def check_dir(directory, written, read_back, extra=None, there_before=frozenset()):
    """Raise ImageCheckError unless the files in ``directory``, decoded
    independently, equal both the set that was written and the set the
    engine's reader returned (and the ``extra`` files are there), and the
    writing left nothing beside it (``check_nothing_left_beside``)."""
    check_extra(directory, extra)
    check_modes(directory)
    check_nothing_left_beside(directory, there_before)
    mine = decode_dir(directory)
    if mine['heap'] and extra and 'module.wasm' in extra:
        check_gc_tags(mine['heap'], extra['module.wasm'])
    for what, other in (('the set written', written), ("the engine's reader", read_back)):
        diff = list(_differences(mine, as_dict(other)))
        if diff:
            raise ImageCheckError(f'independent reader of {os.path.basename(directory)} disagrees with '
                                  f'{what}: ' + '; '.join(diff[:3]))
