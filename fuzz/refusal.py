"""The refusal oracle: a stopped run's checkpoint, broken on purpose in a
way docs/images.md forbids, must be refused with a typed error whose
message begins with the file and place that are broken; never accepted,
never an untyped exception.  Asked of the image set as files and as the
in-memory set an API user hands over, of neutral.json (the JSON path of
the broken field) and of a Snapshot given to ``images_from_snapshot`` (the
frame).

Why beside fuzz/robust.py: the robustness campaign breaks sets at random
and requires *some* typed outcome, which cannot tell a refusal for the
right reason from one for another, nor see a message naming the wrong
frame.  Here every break is made from the state the generators just
reached (each frame depth, table, memory, link and value type they reach)
and is invalid by construction (an index one past the end, a return
address naming another function, a width the slot does not have, a file
cut short), so the place its refusal must name is known.  Where a bound
is broken the value just inside it must still be accepted, so a reader
that refuses too much is seen as well."""

import copy
import dataclasses
import json
import random

from engine.errors import WasmError
from engine.limits import Limits
from engine.migrate import images as im, neutral
from engine.migrate.translate import ModuleView, images_from_snapshot, snapshot_from_images
from engine.syntax import value_class

NONE = 0xFFFFFFFF
PAGE = 65536
CHUNK_ENTRY = 4 + 4096          # memory{i}.img: u32 byte offset + one 4 KiB chunk
INTS = {'i32': 32, 'i64': 64}
NUMBER_TYPES = ('i32', 'i64', 'f32', 'f64')
PACKED_BITS = {'i8': 8, 'i16': 16}      # GC field storage types narrower than their cells
BREAKS_PER_CHECK = 3            # breaks tried per set, document or snapshot
DECODER = 'decoder'             # a break the file decoder itself must refuse (its layout's)
MODULE = 'module'               # a break of the files only the module shows


class NotRefused(Exception):
    """A broken checkpoint was accepted, refused untyped, or refused naming
    another place; or one just inside a bound was refused."""


def refused(what, place, read):
    """``read()`` must raise a WasmError whose message starts with ``place``."""
    try:
        read()
    except WasmError as e:
        if not str(e).startswith(place):
            raise NotRefused(f'{what}: refused naming another place: {str(e)[:300]!r} '
                             f'(expected it to begin {place!r})') from None
        return
    except Exception as e:
        raise NotRefused(f'{what}: {type(e).__name__}: {str(e)[:300]} instead of a refusal '
                         f'naming {place!r}') from e
    raise NotRefused(f'{what}: accepted (expected a refusal naming {place!r})')


def accepted(what, read):
    """``read()`` of a checkpoint just inside a bound must not refuse it."""
    try:
        read()
    except Exception as e:
        raise NotRefused(f'{what}: refused: {type(e).__name__}: {str(e)[:300]}') from e


def _limits(rng, view, images):
    """Engine limits for one check: caps around the sizes the set holds,
    above or below each type's own maximum, so both decide the bound."""
    pages = [p for p in [images.page_count] + [m.page_count for m in images.memories]
             if p is not None]
    entries = [len(t) for t in images.tables]
    # the table cap bounds a GC heap's arrays too: left wide for a set with a heap
    return Limits(max_memory_pages=max(pages, default=0) + rng.choice((0, 1, 2, 1 << 20)),
                  max_table_elems=max(entries, default=0) + (
                      1 << 40 if images.heap is not None else rng.choice((0, 1, 3, 1 << 40))))


# ------------------------------------------------------------ image sets

def _copy(images):
    """A copy of ``images`` whose frames, tables, globals, lists, memories
    and heap list a break may change; the memory chunks and the heap's
    entries, which a break replaces but never changes, are shared (a deep
    copy cost more than the checks)."""
    return dataclasses.replace(
        images, frames=[dataclasses.replace(f, slot_cells=list(f.slot_cells), cells=list(f.cells),
                                            labels=list(f.labels)) for f in images.frames],
        tables=[list(t) for t in images.tables], globals=list(images.globals),
        results=list(images.results), dropped_elems=list(images.dropped_elems),
        dropped_datas=list(images.dropped_datas), memories=list(images.memories),
        exceptions=list(images.exceptions), caught=list(images.caught),
        heap=None if images.heap is None else list(images.heap))


def _frame_func(rng, view, images, nfuncs):
    k = rng.randrange(len(images.frames))
    bad = rng.choice([nfuncs] + ([view.nimported - 1] if view.nimported else []))
    b = _copy(images)
    b.frames[k].entry_fidx = bad
    if k:
        b.frames[k - 1].return_fidx = bad     # the frame above agrees: the function is at fault
    else:
        b.pc = (bad, b.pc[1])
    return f'frame {k + 1} runs function {bad}', f'stack{k + 1}.img:', b, None


def _return_fidx(rng, view, images, nfuncs):
    if len(images.frames) < 2:
        return None
    k = rng.randrange(1, len(images.frames))
    other = [f for f in range(view.nimported, nfuncs) if f != images.frames[k].entry_fidx]
    if not other:
        return None
    b = _copy(images)
    b.frames[k - 1].return_fidx = rng.choice(other)
    return (f'frame {k} returns into function {b.frames[k - 1].return_fidx}, the frame below '
            f'runs {images.frames[k].entry_fidx}', f'stack{k}.img:', b, None)


def _labels(rng, view, images, nfuncs):
    k = rng.randrange(len(images.frames))
    b = _copy(images)
    fr = b.frames[k]
    if images.runtime == 'wamr' and fr.labels and rng.random() < 0.5:
        fr.labels.pop(rng.randrange(len(fr.labels)))
        what = 'one label fewer'
    else:
        fr.labels.insert(rng.randrange(len(fr.labels) + 1), (0, 0, 0, 0))
        what = 'one label more'
    return f'frame {k + 1} with {what} ({images.runtime})', f'stack{k + 1}.img:', b, None


def _slot_width(rng, view, images, nfuncs):
    k = rng.randrange(len(images.frames))
    fr = images.frames[k]
    if not fr.slot_cells:
        return None
    j = rng.randrange(len(fr.slot_cells))
    b = _copy(images)
    bf = b.frames[k]
    at = sum(fr.slot_cells[:j])
    if fr.slot_cells[j] == 1:
        bf.slot_cells[j] = 2
        bf.cells.insert(at, 0)
    else:
        bf.slot_cells[j] //= 2
        del bf.cells[at:at + fr.slot_cells[j] // 2]
    return (f'frame {k + 1} slot {j} of {bf.slot_cells[j]} cells, not {fr.slot_cells[j]}',
            f'stack{k + 1}.img:', b, None)


def _table_entry(rng, view, images, nfuncs):
    ks = [k for k, t in enumerate(view.table_types)
          if value_class(t) == 'funcref' and images.tables[k]]
    if not ks:
        return None
    k = rng.choice(ks)
    j = rng.randrange(len(images.tables[k]))
    b = _copy(images)
    b.tables[k][j] = nfuncs
    ok = None
    if view.table_types[k] == 'funcref' and nfuncs:      # any function fits a funcref table
        ok = _copy(images)
        ok.tables[k][j] = nfuncs - 1
    return f'table {k}[{j}] holds function {nfuncs} of {nfuncs}', 'table.img:', b, ok


def _page_count(rng, view, images, nfuncs, limits):
    parts = ([(None, images.page_count)] if images.page_count is not None else []) + \
            [(i, m.page_count) for i, m in enumerate(images.memories, 1)]
    if not parts:
        return None
    i, _ = rng.choice(parts)
    _, hi, _ = view.size_range('memory', i or 0, limits)
    b, ok = _copy(images), _copy(images)
    for s, n in ((b, hi + 1), (ok, hi)):
        if i is None:
            s.page_count = n
        else:
            s.memories[i - 1] = dataclasses.replace(s.memories[i - 1], page_count=n)
    name = 'mem_page_count.img' if i is None else f'mem_page_count{i}.img'
    return f'memory {i or 0} of {hi + 1} pages (at most {hi})', f'{name}:', b, ok


def _table_size(rng, view, images, nfuncs, limits):
    ks = [k for k in range(len(images.tables))
          if view.size_range('table', k, limits)[1] - len(images.tables[k]) < 64]
    if not ks:
        return None
    k = rng.choice(ks)
    hi = view.size_range('table', k, limits)[1]
    b = _copy(images)
    b.tables[k] += [NONE] * (hi + 1 - len(images.tables[k]))
    ok = None
    if view.table_types[k] in ('funcref', 'externref'):        # nullable: null entries fit
        ok = _copy(images)
        ok.tables[k] += [NONE] * (hi - len(images.tables[k]))
    return f'table {k} of {hi + 1} entries (at most {hi})', 'table.img:', b, ok


def _global_type(rng, view, images, nfuncs):
    ks = [k for k, (t, _) in enumerate(images.globals) if t in NUMBER_TYPES]
    if not ks:
        return None
    k = rng.choice(ks)
    t = images.globals[k][0]
    u = rng.choice([x for x in NUMBER_TYPES if x != t])
    b = _copy(images)
    b.globals[k] = (u, [0] * im.CELLS[u])
    return f'global {k} written as {u}, declared {t}', 'global.img:', b, None


def _global_funcref(rng, view, images, nfuncs):
    """A funcref global holding the first index past the functions (and
    links); the last one is accepted where any function fits."""
    ks = [k for k, (c, _) in enumerate(images.globals) if c == 'funcref']
    if not ks:
        return None
    k = rng.choice(ks)
    b = _copy(images)
    b.globals[k] = ('funcref', [nfuncs])
    ok = None
    if view.global_types[k] == 'funcref' and nfuncs:
        ok = _copy(images)
        ok.globals[k] = ('funcref', [nfuncs - 1])
    return f'global {k} holding function {nfuncs} of {nfuncs}', f'global.img: global {k}:', b, ok


def _dropped(rng, view, images, nfuncs):
    which = rng.choice(('dropped_elems', 'dropped_datas'))
    count = len(view.module.elems if which == 'dropped_elems' else view.module.datas)
    b = _copy(images)
    getattr(b, which).append(count)
    return f'{which} names segment {count} of {count}', 'segment.img:', b, None


def _results(rng, view, images, nfuncs):
    if not images.results:
        return None
    b = _copy(images)
    how = rng.randrange(3)
    if how == 0:
        b.results = list(images.results) + [rng.choice(NUMBER_TYPES)]
    elif how == 1:
        b.results = list(images.results[:-1])
        if not b.results:           # empty: not recorded, which is allowed
            return None
    else:
        j = rng.randrange(len(images.results))
        b.results[j] = rng.choice([t for t in NUMBER_TYPES if t != images.results[j]])
    return f'results {b.results}, not {images.results}', 'manifest.json:', b, None


def _gc_field(rng, view, images, nfuncs):
    """A number field of a GC object one past its storage type's range
    (an i8 field of 256 ...); the largest value that fits is accepted."""
    if not images.heap:
        return None
    from engine.migrate import gcheap
    fields = [(k, i, st) for k, e in enumerate(images.heap) if e[0] in ('struct', 'array')
              for i, st in enumerate(gcheap.field_types(view.module, e[1], len(e[2])))
              if st in PACKED_BITS]
    i31s = [k for k, e in enumerate(images.heap) if e[0] == 'i31']
    if i31s and (not fields or rng.random() < 0.3):
        k = rng.choice(i31s)
        b, ok = _copy(images), _copy(images)
        b.heap[k], ok.heap[k] = ('i31', 1 << 31), ('i31', (1 << 31) - 1)
        return f'gc.img entry {k}: an i31 of 2^31', f'gc.img: entry {k} i31 value:', b, ok, DECODER
    if not fields:
        return None
    k, i, st = rng.choice(fields)
    b, ok = _copy(images), _copy(images)
    for s, x in ((b, 1 << PACKED_BITS[st]), (ok, (1 << PACKED_BITS[st]) - 1)):
        e = s.heap[k]
        s.heap[k] = (e[0], e[1], [(tag, x) if j == i else (tag, y) for j, (tag, y) in enumerate(e[2])])
    return f'gc.img entry {k} field {i} ({st}) = {1 << PACKED_BITS[st]}', \
        f'gc.img: entry {k} field {i}:', b, ok


def _exn_tag(rng, view, images, nfuncs):
    if not images.exceptions:
        return None
    from engine.migrate import exnstate
    ntags = len(exnstate.tag_types(view.module))
    k = rng.randrange(len(images.exceptions))
    b = _copy(images)
    b.exceptions[k] = (ntags, images.exceptions[k][1])
    return f'exception {k} of tag {ntags} of {ntags}', f'exception.img: exception {k} tag:', b, None


def _exn_nesting(rng, view, images, nfuncs):
    """A chain of exceptions, each the field of the next, one deeper than
    exception.img allows; the deepest chain it allows is accepted.  (Or an
    exception whose field names itself or a later one.)"""
    from engine.migrate import exnstate
    from engine.syntax import reftype
    tag_types = exnstate.tag_types(view.module)

    def exn_cells(tag):             # cell positions of the tag's exnref fields, nullable or not
        params, pos, out = tag_types[tag].params, 0, []
        for t in params:
            if value_class(t) == 'exnref':
                out.append((pos, reftype(t).nullable))
            pos += im.CELLS[t]
        return out
    depth = []                      # docs/images.md: an exception is 1 deeper than its fields
    for tag, cells in images.exceptions:
        depth.append(1 + max((depth[cells[p]] for p, _ in exn_cells(tag) if cells[p] != NONE),
                             default=0))
    have = [(tag, cells) for tag, cells in images.exceptions
            if any(nullable for _, nullable in exn_cells(tag))]
    if not have:
        return None
    tag, cells = rng.choice(have)
    at = next(p for p, nullable in exn_cells(tag) if nullable)
    base = len(images.exceptions)
    if rng.random() < 0.3:          # a field naming its own exception (or a later one)
        b = _copy(images)
        b.exceptions.append((tag, cells[:at] + [base + rng.randrange(2)] + cells[at + 1:]))
        return (f'exception {base} holding exception {b.exceptions[-1][1][at]}',
                f'exception.img: exception {base} fields:', b, None)
    first = 1 + max((depth[cells[p]] for p, _ in exn_cells(tag) if p != at and cells[p] != NONE),
                    default=0)
    n = exnstate.MAX_NESTING + 2 - first         # the last is one too deep
    chain = [(tag, cells[:at] + [NONE if j == 0 else base + j - 1] + cells[at + 1:])
             for j in range(n)]
    b, ok = _copy(images), _copy(images)
    b.exceptions += chain
    ok.exceptions += chain[:-1]
    return (f'{n} exceptions nested in one another, the first {first} deep',
            f'exception.img: exception {base + n - 1} fields:', b, ok)


def _caught(rng, view, images, nfuncs):
    """An open catch arm's exception left out, listed twice, or one the
    exception table does not hold."""
    if not images.caught:
        return None
    j = rng.randrange(len(images.caught))
    frame, depth, _ = images.caught[j]
    b = _copy(images)
    r = rng.random()
    if r < 0.25:                            # names no exception of the table
        b.caught[j] = (frame, depth, len(images.exceptions))
        return (f'catch arm {depth} of frame {frame} holding exception {len(images.exceptions)} '
                f'of {len(images.exceptions)}', f'exception.img: caught {j} exception:', b, None,
                DECODER)
    if r < 0.6:
        del b.caught[j]
        what = 'missing'
    else:
        b.caught.insert(j + 1, images.caught[j])
        what = 'listed twice'
    return (f'the exception of catch arm {depth} of frame {frame} {what}',
            f'exception.img: caught frame {frame} depth {depth}:', b, None)


def _chunk(rng, view, images, nfuncs):
    """A memory chunk off the 4 KiB grid, past the memory's pages, or a
    byte short."""
    parts = ([(None, images.memory, images.page_count)] if images.memory else []) + \
            [(i, m.chunks, m.page_count) for i, m in enumerate(images.memories, 1) if m.chunks]
    if not parts:
        return None
    i, chunks, pages = rng.choice(parts)
    off = rng.choice(sorted(chunks))
    new = dict(chunks)
    how = rng.randrange(3)
    if how == 0:
        new[pages * PAGE] = new.pop(off)
        what = f'at {pages * PAGE:#x}, past {pages} pages'
    elif how == 1:
        moved = off + rng.choice((4, 2048))
        if moved in new or moved + 4096 > pages * PAGE:
            return None
        new[moved] = new.pop(off)
        what = f'at {moved:#x}, off the 4 KiB grid'
    else:
        new[off] = new[off][:-1]
        what = f'at {off:#x}, a byte short'
    b = _copy(images)
    if i is None:
        b.memory = new
    else:
        b.memories[i - 1] = dataclasses.replace(b.memories[i - 1], chunks=new)
    name = 'memory.img' if i is None else f'memory{i}.img'
    return f'a chunk of {name} {what}', f'{name}:', b, None, DECODER


SET_BREAKS = (_frame_func, _return_fidx, _labels, _slot_width, _table_entry, _global_type,
              _dropped, _results, _gc_field, _exn_tag, _exn_nesting, _caught, _chunk,
              _global_funcref)
SIZE_BREAKS = (_page_count, _table_size)


def _cut(rng, images, layout):
    """A file of the set cut short (what a crash mid-copy leaves): every
    file's counts then promise more than it holds, except a memory file
    cut at a chunk boundary, which is left alone."""
    files = im.encode_files(images, layout)
    names = [n for n in sorted(files) if n != 'manifest.json' and files[n]]
    name = rng.choice(names)
    data = files[name]
    n = rng.randint(1, len(data))
    if name.startswith('memory') and n % CHUNK_ENTRY == 0:
        n -= 1
        if not n:
            return None
    files[name] = data[:-n]
    return f'{name} without its last {n} bytes', f'{name}:', files


def _label_count(rng, images, layout):
    """A per-file frame whose label count runs past the end of the file."""
    k = rng.randrange(len(images.frames))
    files = im.encode_files(images, 'per-file')
    name = f'stack{k + 1}.img'
    data = files[name]
    at = len(data) - 16 * len(images.frames[k].labels) - 4
    more = len(images.frames[k].labels) + rng.choice((1, 1 << 20, NONE // 16))
    files[name] = data[:at] + more.to_bytes(4, 'little') + data[at + 4:]
    return f'{name} with {more} labels', f'{name}:', files


def _header(rng, images, layout):
    """A header file that contradicts the rest or the format: the PC in
    another function than the top frame's, no frames, a manifest of
    another format, version or runtime, a required file missing."""
    files = im.encode_files(images, layout)
    how = rng.randrange(4)
    if how == 0:
        other = images.pc[0] + rng.choice((1, -1))
        files['program_counter.img'] = (other & NONE).to_bytes(4, 'little') + \
            files['program_counter.img'][4:]
        return f'the PC in function {other & NONE}', 'program_counter.img:', files
    if how == 1:
        files['frame.img'] = bytes(4)
        return 'no frames', 'frame.img:', files
    if how == 2:
        man = json.loads(files['manifest.json'])
        if images.heap is not None and rng.random() < 0.3:     # gc.img in a set too old for it
            man['version'] = 1 if layout == 'per-file' and rng.random() < 0.5 else 3
            files['manifest.json'] = json.dumps(man).encode()
            return f'gc.img in a version-{man["version"]} set', 'gc.img:', files
        key, value = rng.choice((('format', 'wasm-images'), ('version', 99), ('steps', 1 << 64),
                                 ('steps', -1), ('runtime', 'wasmtime'), ('frames', 'two-files')))
        if key == 'frames' and layout == 'per-file':
            key, value = 'version', 0
        man[key] = value
        files['manifest.json'] = json.dumps(man).encode()
        return f'manifest.json with {key} {value!r}', 'manifest.json:', files
    required = ['program_counter.img', 'frame.img', 'global.img',
                'stack1.img' if layout == 'per-file' else 'stacks.img']
    if images.page_count is not None:
        required += ['mem_page_count.img']
    name = rng.choice(required)
    del files[name]
    if name == 'mem_page_count.img':       # the layout allows a set without memory: the module not
        return f'{name} missing', f'{name}:', files, MODULE
    return f'{name} missing', f'{name}:', files


def _gc_count(rng, images, layout):
    """gc.img promising more objects than its bytes could hold."""
    files = im.encode_files(images, layout)
    if 'gc.img' not in files:
        return None
    data = files['gc.img']
    n = len(data) + rng.choice((1, 1 << 20))
    files['gc.img'] = data[:4] + n.to_bytes(4, 'little') + data[8:]
    return f'gc.img with {n} objects', 'gc.img:', files


FILE_BREAKS = (_cut, _label_count, _header, _gc_count)


def check_set(images, module, info, layout, seed):
    """Break ``images`` (a set as read back, in either model) a few ways
    and require each break refused naming its place, read in memory and
    from its files; each bound's last allowed value accepted.  Returns the
    names of the breaks tried."""
    rng = random.Random(seed)
    view = ModuleView.of(module, info)
    nfuncs = len(view.func_types) + len(images.links)
    limits = _limits(rng, view, images)

    def in_memory(s):
        return lambda: snapshot_from_images(s, module, info, limits, memory=False)

    def decoded(files):
        return lambda: im.decode_files(files, limits)

    def from_files(files):
        return lambda: snapshot_from_images(im.decode_files(files, limits), module, info,
                                            limits, memory=False)
    tried = []
    for _ in range(BREAKS_PER_CHECK):
        pick = rng.randrange(len(SET_BREAKS) + len(SIZE_BREAKS) + len(FILE_BREAKS))
        if pick < len(SET_BREAKS) + len(SIZE_BREAKS):
            make = (SET_BREAKS + SIZE_BREAKS)[pick]
            got = make(rng, view, images, nfuncs, *((limits,) if make in SIZE_BREAKS else ()))
            if got is None:
                continue
            what, place, broken, ok = got[:4]
            tried.append(make.__name__)
            refused(f'{what} (the set in memory)', place, in_memory(broken))
            files = im.encode_files(broken, layout)
            refused(f'{what} (the set as {layout} files)', place,
                    decoded(files) if got[4:] == (DECODER,) else from_files(files))
            if ok is not None:
                accepted(f'{what}: the same one lower', in_memory(ok))
                accepted(f'{what}: the same one lower, as files',
                         from_files(im.encode_files(ok, layout)))
        else:
            make = FILE_BREAKS[pick - len(SET_BREAKS) - len(SIZE_BREAKS)]
            got = make(rng, images, layout)
            if got is not None:
                what, place, files = got[:3]
                tried.append(make.__name__)
                refused(what, place, from_files(files) if got[3:] == (MODULE,) else decoded(files))
    return tried


# ------------------------------------------------------------ neutral.json

def _copy_doc(doc):
    """A copy of the document whose frames, typed values, tables, memory
    page counts and segment lists a break may change (chunks shared)."""
    out = dict(doc)
    out['frames'] = [dict(fr, locals=[dict(x) for x in fr['locals']],
                          operands=[dict(x) for x in fr['operands']]) for fr in doc['frames']]
    out['globals'] = [dict(x) for x in doc['globals']]
    out['tables'] = [list(t) for t in doc['tables']]
    out['memory'] = dict(doc['memory'])
    if 'memories' in doc:
        out['memories'] = [dict(m) for m in doc['memories']]
    for k in ('dropped_elems', 'dropped_datas'):
        out[k] = list(doc[k])
    return out


def _doc_slots(doc):
    """(path, typed value) of every frame slot and global of a document."""
    for k, fr in enumerate(doc['frames']):
        for part in ('locals', 'operands'):
            for i, x in enumerate(fr[part]):
                yield f'frames[{k}].{part}[{i}]', x
    for k, x in enumerate(doc['globals']):
        yield f'globals[{k}]', x


def _at(doc, path):
    """The typed value at ``path`` (as _doc_slots names it) of ``doc``."""
    head, _, rest = path.partition('.')
    if head.startswith('globals'):
        return doc['globals'][int(head[8:-1])]
    part, _, i = rest.partition('[')
    return doc['frames'][int(head[7:-1])][part][int(i[:-1])]


def _doc_breaks(rng, doc, view, limits):
    """(what, place, broken document, document just inside or None)."""
    out = []
    nrefs = len(view.func_types) + len(doc.get('links', []))
    k = rng.randrange(len(doc['frames']))
    b = _copy_doc(doc)
    b['frames'][k]['func'] = nrefs
    out.append((f'frames[{k}] runs function {nrefs} of {nrefs}', f'frames[{k}].func:', b, None))
    slots = list(_doc_slots(doc))
    numbers = [(p, x) for p, x in slots if x['type'] in NUMBER_TYPES]
    if numbers:
        path, x = rng.choice(numbers)
        b = _copy_doc(doc)
        u = rng.choice([t for t in NUMBER_TYPES if t != x['type']])
        _at(b, path)['type'] = u
        out.append((f'{path} typed {u}, not {x["type"]}', f'{path}:', b, None))
    ints = [(p, x) for p, x in slots if x['type'] in INTS]
    if ints:
        path, x = rng.choice(ints)
        bits = INTS[x['type']]
        b, ok = _copy_doc(doc), _copy_doc(doc)
        _at(b, path)['value'] = 1 << bits
        _at(ok, path)['value'] = (1 << bits) - 1
        out.append((f'{path} = 2^{bits}', f'{path}.value:', b, ok))
    if doc['memory']['pages'] is not None:
        _, hi, _ = view.size_range('memory', 0, limits)
        b, ok = _copy_doc(doc), _copy_doc(doc)
        b['memory']['pages'] = hi + 1
        ok['memory']['pages'] = hi
        out.append((f'memory of {hi + 1} pages (at most {hi})', 'memory.pages:', b,
                    ok if hi <= 256 else None))      # a document's memory is built whole
    for i, m in enumerate(doc.get('memories', [])):
        _, hi, _ = view.size_range('memory', i + 1, limits)
        b = _copy_doc(doc)
        b['memories'][i]['pages'] = hi + 1
        out.append((f'memories[{i}] of {hi + 1} pages (at most {hi})',
                    f'memories[{i}].pages:', b, None))
    for k, t in enumerate(view.table_types):
        if value_class(t) == 'funcref' and doc['tables'][k]:
            j = rng.randrange(len(doc['tables'][k]))
            b = _copy_doc(doc)
            b['tables'][k][j] = nrefs
            out.append((f'tables[{k}][{j}] = function {nrefs} of {nrefs}',
                        f'tables[{k}][{j}]:', b, None))
    which = rng.choice(('dropped_elems', 'dropped_datas'))
    count = len(view.module.elems if which == 'dropped_elems' else view.module.datas)
    b = _copy_doc(doc)
    b[which].append(rng.choice(doc[which]) if doc[which] and rng.random() < 0.5 else count)
    out.append((f'{which} names segment {b[which][-1]} (of {count}, listed {doc[which]})',
                f'{which}[{len(doc[which])}]:', b, None))
    out.extend(_doc_shape_breaks(rng, doc, view))
    return out


def _doc_shape_breaks(rng, doc, view):
    """Fields missing or unknown, a PC past its function, labels not the
    code's, a negative count, a result that is no type, a chunk key off
    the grid."""
    out = []
    k = rng.randrange(len(doc['frames']))
    fr = doc['frames'][k]
    b = _copy_doc(doc)
    if rng.random() < 0.5:
        key = rng.choice(sorted(fr))
        del b['frames'][k][key]
        out.append((f'frames[{k}] without {key}', f'frames[{k}].{key}:', b, None))
    else:
        b['frames'][k]['stack'] = []
        out.append((f'frames[{k}] with a field "stack"', f'frames[{k}].stack:', b, None))
    b = _copy_doc(doc)
    n = len(view.func(fr['func'], 'frame').body)
    b['frames'][k]['pc'] = n
    out.append((f'frames[{k}].pc {n}, past function {fr["func"]}', f'frames[{k}].pc:', b, None))
    b = _copy_doc(doc)
    labels = b['frames'][k]['labels'] = [dict(x) for x in fr['labels']]
    if len(labels) > 1 and rng.random() < 0.5:
        labels.pop()
        out.append((f'frames[{k}] with its innermost label left out', f'frames[{k}].labels:', b, None))
    else:
        i = rng.randrange(len(labels))
        field = rng.choice(('arity', 'height', 'continuation'))
        labels[i][field] += 1
        out.append((f'frames[{k}].labels[{i}].{field} one more', f'frames[{k}].labels[{i}]:', b, None))
    b = _copy_doc(doc)
    b['steps'] = -1
    out.append(('steps -1', 'steps:', b, None))
    parts = [('memory', doc['memory'])] if doc['memory']['pages'] is not None else []
    parts += [(f'memories[{i}]', m) for i, m in enumerate(doc.get('memories', []))]
    if parts:
        j = rng.randrange(len(parts))
        where, m = parts[j]
        b = _copy_doc(doc)
        new = dict(m, chunks=dict(m['chunks']))
        if where == 'memory':
            b['memory'] = new
        else:
            b['memories'][j - (len(parts) - len(doc.get('memories', [])))] = new
        how = rng.randrange(3) if new['chunks'] else 0
        if how == 0 and where != 'memory':
            key = rng.choice(('pages', 'chunks', 'size'))
            if key == 'size':
                new['size'] = 0
            else:
                del new[key]
            out.append((f'{where} with "{key}" {"added" if key == "size" else "left out"}',
                        f'{where}:', b, None))
        elif how == 1:
            key = rng.choice(sorted(new['chunks']))
            new['chunks'][key] = new['chunks'][key][:-1]
            out.append((f'{where}.chunks["{key}"] a digit short', f'{where}.chunks["{key[:20]}"]:',
                        b, None))
        elif how == 2:
            key = rng.choice(sorted(new['chunks']))
            moved = str(int(key) + 4)
            if moved not in new['chunks']:
                new['chunks'][moved] = new['chunks'].pop(key)
                out.append((f'{where}: a chunk at byte {moved}', f'{where}.chunks["{moved[:20]}"]:',
                            b, None))
    if doc.get('heap'):
        k = rng.randrange(len(doc['heap']))
        b = _copy_doc(doc)
        b['heap'] = list(doc['heap'])
        obj = b['heap'][k] = dict(doc['heap'][k])
        kind = 'struct' if 'struct' in obj else 'array'
        if rng.random() < 0.5:
            obj['size'] = len(obj['fields'])
            out.append((f'heap[{k}] with a field "size"', f'heap[{k}]:', b, None))
        else:
            obj[kind] = len(view.module.types)
            out.append((f'heap[{k}] of type {obj[kind]} of {obj[kind]}', f'heap[{k}].{kind}:', b,
                        None))
    b = _copy_doc(doc)
    b['results'] = list(doc['results']) + ['i33']
    out.append(('a result of type i33', f'results[{len(doc["results"])}]:', b, None))
    return out


def check_document(doc, module, info, seed):
    """Break the neutral document ``doc`` a few ways; each must be refused
    naming the broken field's JSON path (``neutral.json: <path>:``).
    Returns the places broken."""
    rng = random.Random(seed)
    view = ModuleView.of(module, info)
    pages = [p for p in [doc['memory']['pages']] + [m['pages'] for m in doc.get('memories', [])]
             if p is not None]
    limits = Limits(max_memory_pages=max(pages, default=0) + rng.choice((0, 1, 2, 1 << 20)))
    breaks = _doc_breaks(rng, doc, view, limits)
    breaks = rng.sample(breaks, min(BREAKS_PER_CHECK, len(breaks)))
    for what, place, broken, ok in breaks:
        refused(what, f'{neutral.FILE}: {place}',
                lambda: neutral.snapshot_from_document(broken, module, info, limits))
        if ok is not None:
            accepted(f'{what}: the same one lower',
                     lambda: neutral.snapshot_from_document(ok, module, info, limits))
    return [place for _, place, _, _ in breaks]


# ------------------------------------------------------------ snapshots

def check_snapshot(snap, module, info, runtime, sha, seed):
    """A snapshot whose frame runs no function of the module must be
    refused by ``images_from_snapshot`` naming that frame (top first): the
    top four frames and one drawn."""
    rng = random.Random(seed)
    view = ModuleView.of(module, info)
    n = len(snap.frames)
    for k in sorted({min(j, n - 1) for j in range(4)} | {rng.randrange(n)}):     # top first
        bad = rng.choice([len(view.func_types) + len(snap.links)]
                         + ([view.nimported - 1] if view.nimported else []))
        b = copy.copy(snap)
        b.frames = list(snap.frames)
        b.frames[n - 1 - k] = dataclasses.replace(snap.frames[n - 1 - k], fidx=bad)
        refused(f'snapshot frame {k + 1} runs function {bad}', f'frame {k + 1}:',
                lambda: images_from_snapshot(b, module, info, runtime, sha))
