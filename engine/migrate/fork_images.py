"""The image files exactly as the WasmEdge and WAMR migration forks write
and read them, converted to and from the project's ``ImageSet``.

The forks' directories hold ``program_counter.img``, ``frame.img``,
``stack{i}.img``, ``memory.img``, ``mem_page_count.img`` and
``global.img``; nothing names the module, the entry, the step count, and
nothing holds tables, dropped segments or WASI state.  Every difference
from the project's own layout (docs/images.md, "The forks' own layout"):

=====================  ==================================================
field                  the forks
=====================  ==================================================
PC unit                byte offset after the local declarations in both
                       forks (WasmEdge too: ``Instruction::getOffset``);
                       the project's WasmEdge model uses instruction
                       indices
return address         byte offset *after* the caller's call in both
                       forks; the bottom frame's is not ``-1``: WAMR
                       writes the frame's own (fidx, resume offset),
                       WasmEdge its own (fidx, offset of its final end)
type stack             ``u32 n`` + n bytes per frame (locals included),
                       from the type tables: 1/2/4 cells, 255 for a
                       reference (``typetables.REF``)
values                 WAMR: the frame's cells (a reference is 1 cell);
                       WasmEdge: 4 x type byte bytes per value, so a
                       reference is 1020 bytes of host memory
labels                 WAMR: its control stack, ``frame_sp`` in *bytes*
                       above the locals, a ``block`` target ``-1`` until
                       WAMR's block-address cache resolves it; WasmEdge:
                       computed for WAMR but with ``frame_sp`` taken from
                       a union field (see ``wasmedge_labels``) and
                       ``cell_num`` always 0
memory.img             present 4 KiB pages; a missing page means "as
                       instantiated", not "zero"
mem_page_count.img     same; absent (WasmEdge) without a memory
global.img             raw values, no count, no type codes: i32/f32 4
                       bytes, i64/f64 8; others: WAMR writes nothing,
                       WasmEdge 16 bytes (a host pointer for references)
tables, segments       not saved: assumed as instantiated
link.img               none: the forks restore one instance and have no
                       way to name another's function; a state holding
                       links is refused when writing, a link.img when
                       reading
=====================  ==================================================

Reading takes a freshly instantiated instance of the module (start
function not run) as the "as instantiated" baseline for memory pages,
unsaved globals, tables and dropped segments.  Anything the forks cannot
express (a reference the fork cannot write, tables changed since
instantiation ...) is refused, never dropped silently.
"""

import os
import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from . import images as im
from .images import CHUNK, NONE, PAGE, ImageError, ImageSet, _Reader
from ..runtime import nonzero_offsets
from .state import Frame, Snapshot, cells_of, from_cells, to_cells
from .translate import ModuleView, images_from_snapshot, snapshot_from_images, wamr_labels
from .typetables import REF, type_bytes
from ..valid import blocks_open_at

FORKS = im.RUNTIMES                      # ('wasmedge', 'wamr')
FILES = ('program_counter.img', 'frame.img', 'memory.img', 'mem_page_count.img', 'global.img')
FINDINGS = 'docs/fork-findings.md'


@dataclass
class ForkFrame:
    """One stack{i}.img as the fork wrote it; ``at`` maps field names to
    their byte positions, for error messages."""
    entry_fidx: int
    return_fidx: int
    return_offset: int
    types: bytes
    cells: List[int]
    labels: List[Tuple[int, int, int, int]]
    at: Dict[str, int] = field(default_factory=dict)


@dataclass
class ForkFiles:
    """A fork's image directory, parsed but not yet checked against the
    module."""
    runtime: str
    pc: Tuple[int, int]
    frames: List[ForkFrame]              # top first (stack1.img)
    page_count: Optional[int]
    memory: Dict[int, bytes]
    globals_raw: bytes


# ------------------------------------------------------------ parsing

def _cells_of_byte(runtime, b):
    """How many u32 cells the fork writes for a value of type byte ``b``."""
    if b == REF:
        return 1 if runtime == 'wamr' else REF
    return b


def parse_frame(name, data, runtime) -> ForkFrame:
    r = _Reader(name, data)
    at = {}
    entry = r.u32('entry fidx')
    at['return fidx'] = r.pos
    ret_fidx = r.u32('return fidx')
    at['return offset'] = r.pos
    ret_off = r.u32('return offset')
    at['type stack'] = r.pos
    n = r.u32('type stack size')
    if n > len(data):
        r.fail('type stack size', f'{n} entries cannot fit in {len(data)} bytes')
    types = bytes(r.raw(n, 'type stack'))
    for k, b in enumerate(types):
        if b not in (1, 2, 4, REF):
            r.pos = at['type stack'] + 4 + k
            r.fail(f'type stack [{k}]', f'{b} is not a cell size (1, 2, 4) or {REF} (reference)')
    at['values'] = r.pos
    cells = r.u32s(sum(_cells_of_byte(runtime, b) for b in types), 'values')
    at['labels'] = r.pos
    nlabels = r.u32('label count')
    if nlabels * 16 > len(data):
        r.fail('label count', f'{nlabels} labels cannot fit in {len(data)} bytes')
    labels = [tuple(r.u32s(4, f'label {k}')) for k in range(nlabels)]
    r.end()
    return ForkFrame(entry, ret_fidx, ret_off, types, cells, labels, at)


def parse_files(get, runtime) -> ForkFiles:
    """Parse a fork's files (``get(name, required)`` -> bytes or None)."""
    if runtime not in FORKS:
        raise ImageError(f'unknown fork {runtime!r}: expected one of {FORKS}')
    if get(im.LINK_FILE, False) is not None:
        raise ImageError(f"{im.LINK_FILE}: present, but the forks' layout has no links (a "
                         f'reference to another instance\'s function): this is a set of the '
                         f"project's own layout (read it without --format fork), not a fork's")
    pc, nframes = im.read_pc_and_frame_count(get)
    frames = []
    for i in range(1, nframes + 1):
        name = f'stack{i}.img'
        frames.append(parse_frame(name, get(name), runtime))
    if get(f'stack{nframes + 1}.img', False) is not None:
        raise ImageError(f'frame.img: frame count: {nframes}, but stack{nframes + 1}.img exists '
                         f'(a set mixed from two dumps?)', 'byte 0')
    page_count = im.read_page_count(get)
    memory = {}
    mem_raw = get('memory.img', page_count is not None)
    if mem_raw is not None:
        r = _Reader('memory.img', mem_raw)
        limit = (page_count or 0) * PAGE
        while r.pos < len(r.data):
            start = r.pos
            off = r.u32(f'page offset #{len(memory)}')
            if off % CHUNK or off + CHUNK > limit or off in memory:
                r.pos = start
                why = (f'{off:#x} is not a multiple of {CHUNK}' if off % CHUNK else
                       f'{off:#x} appears twice' if off in memory else
                       f'{off:#x} beyond memory of {page_count or 0} pages')
                r.fail(f'page offset #{len(memory)}', why)
            memory[off] = bytes(r.raw(CHUNK, f'page data at {off:#x}'))
    return ForkFiles(runtime, pc, frames, page_count, memory, get('global.img'))


def read_fork_files(directory, runtime) -> ForkFiles:
    if not os.path.isdir(directory):
        raise ImageError(f'fork image directory {directory} does not exist')
    return parse_files(lambda name, required=True: im._read(directory, name, required), runtime)


# ------------------------------------------------------------ baseline

@dataclass
class Baseline:
    """The module instance as instantiated: what the forks assume for
    everything their images do not hold."""
    page_count: Optional[int]
    memory: bytes
    globals: List[object]
    tables: List[List[object]]
    dropped_elems: List[int]
    dropped_datas: List[int]
    chunks: Optional[List[int]] = None      # as Snapshot.chunks
    gc_elems: list = field(default_factory=list)   # as Snapshot.gc_elems (a GC module: refused)


def baseline_of(store, inst) -> Baseline:
    """The baseline from a fresh instance (start function not run)."""
    from .checkpoint import _store_parts
    view = ModuleView.of(inst.module, inst.info)
    return Baseline(*_store_parts(store, inst, view))


# ------------------------------------------------------------ labels

def fork_wamr_labels(view, fidx, pc):
    """The labels WAMR holds, in its on-disk units: ``frame_sp`` in bytes."""
    return [(b, t, 4 * sp, n) for b, t, sp, n in wamr_labels(view, fidx, pc)]


def wasmedge_labels(view, fidx, pc, cell_sums):
    """The labels the WasmEdge fork writes for a frame of ``fidx`` at
    instruction ``pc`` (``Migrator::getCtrlStack``), meant for WAMR:

    - the function's own label is (0, offset of the final end, 0, 0);
    - block/if: (offset after the block type, offset of the matching end,
      sp, 0); loop: (offset after the block type, the same, sp, 0);
    - ``cell_num`` is always 0 (``CtrlPush`` never sets it);
    - ``sp`` is ``WamrCellSums[Instr.getJump().StackEraseBegin]``: on a
      block instruction that union member aliases ``JumpElse``, which is 0
      for block and loop and the distance from the ``if`` to its ``else``
      (or ``end``) for ``if``; ``WamrCellSums`` counts cells from the
      bottom of the *whole* stack (all frames, locals included).  The
      value is in cells, where WAMR reads bytes.

    ``cell_sums[j]`` = cells of the first j values of the whole stack.  An
    index beyond it reads outside the fork's vector; the entry is then
    ``None`` (unknown)."""
    module = view.module
    body = view.func(fidx, 'frame').body
    info = view.info.funcs[fidx - view.nimported]
    labels = [(0, body[-1].offset, 0, 0)]
    for b in blocks_open_at(body, pc):
        ins = body[b]
        if ins.op == 'if':
            jump_else = info.else_of.get(b, info.end_of[b]) - b
        else:
            jump_else = 0
        sp = cell_sums[jump_else] if jump_else < len(cell_sums) else None
        target = ins.end if ins.op == 'loop' else body[info.end_of[b]].offset
        labels.append((ins.end, target, sp, 0))
    del module
    return labels


def _cell_sums(snap_frames_bottom_first, runtime):
    sums = [0]
    for fr in snap_frames_bottom_first:
        for b in type_bytes(fr.types):
            sums.append(sums[-1] + b)
    return sums


# ------------------------------------------------------------ fork -> snapshot

def _fail(name, ff, field_name, message):
    pos = ff.at.get(field_name, 0) if ff is not None else 0
    raise ImageError(f'{name}: {field_name}: {message}', f'byte {pos}')


def snapshot_from_fork(files: ForkFiles, module, info, base: Baseline,
                       entry_fidx=None, limits=None) -> Snapshot:
    """Check a fork's files against the module and read them into the
    neutral form.  ``entry_fidx``: the function the host called (the
    bottom frame must run it); ``limits``: engine/limits.py (page count)."""
    view = ModuleView.of(module, info)
    if len(view.mem_limits) > 1:
        raise ImageError(f'memory.img: the module has {len(view.mem_limits)} memories; the '
                         "forks' image sets hold one")
    from .gcheap import uses_gc
    if uses_gc(module):
        raise ImageError("gc.img: the module uses GC; the forks' layout has no GC heap format, "
                         "so no fork image set can hold its state")
    runtime = files.runtime
    frames = []
    n = len(files.frames)
    for k, ff in enumerate(files.frames):
        name = f'stack{k + 1}.img'
        fidx = ff.entry_fidx
        body = view.func(fidx, f'{name}: entry fidx').body
        starts, after_call = view.index_of_offset(fidx, None)
        if k == 0:
            if files.pc[0] != fidx:
                raise ImageError(f'program_counter.img: fidx: {files.pc[0]}, but stack1.img runs '
                                 f'function {fidx}', 'byte 0')
            offset = files.pc[1]
            if offset not in starts:
                raise ImageError(f'program_counter.img: offset: {offset} is not an instruction '
                                 f'start in function {fidx} (code of {body[-1].end} bytes)', 'byte 4')
            pc = starts[offset]
        else:
            above = files.frames[k - 1]
            where = f'stack{k}.img'
            if above.return_fidx != fidx:
                _fail(where, above, 'return fidx', f'{above.return_fidx}, but the frame below '
                      f'({name}) runs function {fidx}')
            offset = above.return_offset
            if offset not in after_call:
                _fail(where, above, 'return offset', f'{offset} is not just after a call in '
                      f'function {fidx}')
            pc = after_call[offset]
        callee = files.frames[k - 1].entry_fidx if k else None
        if callee is not None:
            ins = body[pc]
            if not view.may_call(fidx, pc, callee):
                _fail(f'stack{k}.img', files.frames[k - 1], 'entry fidx',
                      f'function {callee} cannot be the callee of function {fidx}\'s '
                      f'{ins.op} at offset {body[pc].offset}')
        types = view.frame_types(fidx, pc, callee)
        if None in types:
            _fail(name, ff, 'type stack', f'function {fidx} offset {offset} is unreachable code')
        want = type_bytes(types)
        if ff.types != want:
            _fail(name, ff, 'type stack', f'{list(ff.types)}, but function {fidx} at offset '
                  f'{offset} has {list(want)} ({" ".join(types)}); type tables of another module?')
        if runtime == 'wasmedge' and REF in ff.types:
            _fail(name, ff, 'values', 'a reference value: the WasmEdge fork writes 1020 bytes of '
                  f'host memory for it, not a function index ({FINDINGS}, F3)')
        values, pos = [], 0
        for t in types:
            c = im.CELLS[t]
            values.append(from_cells(t, ff.cells[pos:pos + c]))
            pos += c
        if k == n - 1:
            resume = offset if k == 0 else body[pc].end
            want_ret = (fidx, resume if runtime == 'wamr' else body[-1].offset)
            if (ff.return_fidx, ff.return_offset) != want_ret:
                _fail(name, ff, 'return fidx', f'({ff.return_fidx}, {ff.return_offset}), but the '
                      f'{runtime} fork writes {want_ret} for the bottom frame')
            if entry_fidx is not None and fidx != entry_fidx:
                _fail(name, ff, 'entry fidx', f'the bottom frame runs function {fidx}, not the '
                      f'entry (function {entry_fidx})')
        nloc = len(view.local_types(fidx))
        frames.append(Frame(fidx, pc, values[:nloc], values[nloc:], types))
    # labels need the whole stack (WasmEdge's sp) and each frame's pc
    bottom_first = list(reversed(frames))
    sums = _cell_sums(bottom_first, runtime)
    for k, (ff, fr) in enumerate(zip(files.frames, frames)):
        name = f'stack{k + 1}.img'
        got = [tuple(l) for l in ff.labels]
        if runtime == 'wamr':
            want = fork_wamr_labels(view, fr.fidx, fr.pc)
            body = view.func(fr.fidx, name).body
            opens = [None] + blocks_open_at(body, fr.pc)
            # a block's target stays -1 until WAMR's block-address cache knows it
            got = [(b, w[1] if t == NONE and o is not None and body[o].op == 'block' else t, sp, c)
                   for (b, t, sp, c), w, o in zip(got, want, opens)] + got[len(want):]
        else:
            want = wasmedge_labels(view, fr.fidx, fr.pc, sums)
            got = [g if len(w) != 4 or w[2] is not None else (g[0], g[1], None, g[3])
                   for g, w in zip(got, want)] + got[len(want):]
        if got != want:
            _fail(name, ff, 'labels', f'{got} do not match the code of function {fr.fidx} at '
                  f'instruction {fr.pc} (expected {want})')
    frames.reverse()                             # outermost first

    if view.has_memory != (files.page_count is not None):
        raise ImageError('mem_page_count.img: ' + ('missing, but the module has a memory'
                         if view.has_memory else 'present, but the module has no memory'))
    memory = b''
    if files.page_count is not None:
        if files.page_count < base.page_count:
            raise ImageError(f'mem_page_count.img: page count: {files.page_count} is below the '
                             f'{base.page_count} pages the module instantiates', 'byte 0')
        lo, hi, why = view.size_range('memory', 0, limits)     # before allocating it
        if files.page_count > hi:
            raise ImageError(f'mem_page_count.img: page count: {files.page_count} is outside {why}',
                             'byte 0')
        mem = bytearray(base.memory) + bytearray((files.page_count - base.page_count) * PAGE)
        for off, chunk in files.memory.items():
            mem[off:off + CHUNK] = chunk
        memory = bytes(mem)
        chunks = None if base.chunks is None else sorted(set(base.chunks) | set(files.memory))
    else:
        chunks = []
    globs = read_globals(files.globals_raw, runtime, view, base)
    return Snapshot(frames=frames, page_count=files.page_count, memory=memory,
                    globals=globs, global_types=view.global_types, chunks=chunks,
                    tables=[list(t) for t in base.tables], steps=0,
                    dropped_elems=list(base.dropped_elems), dropped_datas=list(base.dropped_datas))


_RAW_BYTES = {'i32': 4, 'f32': 4, 'i64': 8, 'f64': 8}


def read_globals(raw, runtime, view, base):
    """global.img: the raw values, in the module's global order."""
    r = _Reader('global.img', raw)
    out = []
    for k, t in enumerate(view.global_types):
        if t in _RAW_BYTES:
            out.append(from_cells(t, r.u32s(_RAW_BYTES[t] // 4, f'global {k} ({t})')))
        elif runtime == 'wamr':
            out.append(base.globals[k])          # WAMR skips it: as instantiated
        elif t == 'v128':
            out.append(from_cells(t, r.u32s(4, f'global {k} (v128)')))
        else:
            r.fail(f'global {k} ({t})', 'the WasmEdge fork writes a host pointer for a '
                   f'reference global ({FINDINGS}, F4)')
    r.end()
    return out


# ------------------------------------------------------------ snapshot -> fork

def _u32s(xs):
    return struct.pack(f'<{len(xs)}I', *[x & 0xFFFFFFFF for x in xs])


def fork_files(snap: Snapshot, module, info, runtime, base: Baseline) -> Dict[str, bytes]:
    """The files ``runtime``'s fork would write for this stopped run."""
    if runtime not in FORKS:
        raise ImageError(f'unknown fork {runtime!r}: expected one of {FORKS}')
    view = ModuleView.of(module, info)
    from .exnstate import uses_exceptions
    from .gcheap import uses_gc
    if uses_gc(module):
        raise ImageError("gc.img: the module uses GC (struct/array types, GC reference types or "
                         "instructions); the forks' layout has no GC heap format (neither fork "
                         "implements Wasm GC), so its state cannot be written in the forks' layout")
    if uses_exceptions(module):
        raise ImageError('the module uses exception handling (tags, try_table, try); neither '
                         "fork has it (the WasmEdge fork's 0.13.1 predates it, the WAMR fork is "
                         "built without WASM_BUILD_EXCE_HANDLING and has only the legacy form), "
                         "so its state cannot be written in the forks' layout")
    if len(view.mem_limits) > 1:
        raise ImageError(f'memory.img: the module has {len(view.mem_limits)} memories; the '
                         "forks' image sets hold one, so this state cannot be written")
    if snap.links:
        raise ImageError(f'link.img: the state holds {len(snap.links)} link(s) to functions of '
                         f'other instances ({snap.links[0]}, ...); the forks restore one '
                         "instance and have no link format, so this state cannot be written in "
                         "the forks' layout")
    if [list(t) for t in snap.tables] != [list(t) for t in base.tables]:
        raise ImageError('table.img: the tables differ from their instantiated contents; the '
                         "forks' image sets hold no tables, so this state cannot be written")
    if sorted(snap.dropped_elems) != sorted(base.dropped_elems) or \
            sorted(snap.dropped_datas) != sorted(base.dropped_datas):
        raise ImageError('segment.img: segments were dropped since instantiation; the forks\' '
                         'image sets hold no segment state, so this state cannot be written')
    top_first = list(reversed(snap.frames))
    sums = _cell_sums(snap.frames, runtime)
    files = {}
    for k, fr in enumerate(top_first):
        body = view.func(fr.fidx, f'frame {k + 1}').body
        types = fr.types or view.frame_types(fr.fidx, fr.pc, top_first[k - 1].fidx if k else None)
        tb = type_bytes(types)
        if 0 in tb:
            t = types[tb.index(0)]
            raise ImageError(f'stack{k + 1}.img: values: a value of type {t} has no type byte in the forks\' '
                             f'layout (neither fork has exception handling), so this state cannot '
                             f'be written')
        if runtime == 'wasmedge' and REF in tb:
            raise ImageError(f'stack{k + 1}.img: values: a reference value cannot be written for '
                             f'the WasmEdge fork, which holds 1020 bytes of host memory there '
                             f'({FINDINGS}, F3)')
        cells = []
        for t, v in zip(types, fr.locals + fr.stack):
            cells.extend(to_cells(t, v))
        if k + 1 < len(top_first):
            caller = top_first[k + 1]
            ret = (caller.fidx, view.func(caller.fidx, 'frame').body[caller.pc].end)
        elif runtime == 'wamr':
            ret = (fr.fidx, body[fr.pc].offset if k == 0 else body[fr.pc].end)
        else:
            ret = (fr.fidx, body[-1].offset)
        if runtime == 'wamr':
            labels = fork_wamr_labels(view, fr.fidx, fr.pc)
        else:
            labels = [(b, t, 0 if sp is None else sp, c)
                      for b, t, sp, c in wasmedge_labels(view, fr.fidx, fr.pc, sums)]
        files[f'stack{k + 1}.img'] = b''.join([
            _u32s([fr.fidx, ret[0], ret[1], len(tb)]), tb, _u32s(cells),
            _u32s([len(labels)])] + [_u32s(l) for l in labels])
    top = top_first[0]
    files['program_counter.img'] = _u32s([top.fidx, view.func(top.fidx, 'frame 1').body[top.pc].offset])
    files['frame.img'] = _u32s([len(top_first)])
    if snap.page_count is not None:
        files['mem_page_count.img'] = _u32s([snap.page_count])
        # the pages a fork finds present: every non-zero one, and every one
        # that differs from its instantiated content (grown pages start zero)
        present = sorted(set(nonzero_offsets(snap.memory, snap.chunks))
                         | set(nonzero_offsets(base.memory, base.chunks)))
        files['memory.img'] = b''.join(_u32s([off]) + snap.memory[off:off + CHUNK]
                                       for off in present)
    out = []
    for k, (t, v) in enumerate(zip(view.global_types, snap.globals)):
        if t in _RAW_BYTES or (t == 'v128' and runtime == 'wasmedge'):
            out.append(_u32s(to_cells(t, v)))
        elif runtime == 'wasmedge':
            raise ImageError(f'global.img: global {k} ({t}): the WasmEdge fork holds a host '
                             f'pointer there; a reference global cannot be written ({FINDINGS}, F4)')
        elif v != base.globals[k]:
            raise ImageError(f'global.img: global {k} ({t}): the WAMR fork does not save it and '
                             f'restores it as instantiated, but its value has changed')
    files['global.img'] = b''.join(out)
    return files


# ------------------------------------------------------------ WasmEdge's count

def wasmedge_instantiation_count(module):
    """Instructions the WasmEdge fork counts before the entry function
    starts: its ``--dispatch-limit`` counter also runs while instantiation
    evaluates constant expressions (each ``end`` included): every global's
    initializer, every element segment's item expressions, the offsets of
    active element and data segments.  Our step counter starts at the
    entry, so ``--dispatch-limit N`` is our step N minus this."""
    n = sum(len(g.init) for g in module.globals)
    for e in module.elems:
        n += sum(len(x) for x in e.init)
        if e.mode == 'active':
            n += len(e.offset)
    n += sum(len(d.offset) for d in module.datas if d.mode == 'active')
    return n


# ------------------------------------------------------------ public API

def read_fork_images(directory, runtime, module_bytes, store, inst, entry='_start',
                     results=None, steps=0, model=None) -> ImageSet:
    """A fork's image directory as the project's ``ImageSet`` of the same
    model (or of ``model``).  ``store``/``inst``: a fresh instance of the
    module (the "as instantiated" baseline); ``entry``: the export the fork
    ran (its function must be the bottom frame's)."""
    files = read_fork_files(directory, runtime)
    return image_set_from_fork(files, module_bytes, store, inst, entry, results, steps, model)


def image_set_from_fork(files, module_bytes, store, inst, entry='_start', results=None,
                        steps=0, model=None) -> ImageSet:
    kind, addr = inst.exports.get(entry, (None, None))
    if kind != 'func':
        raise ImageError(f'entry {entry!r}: not an exported function of the module (the fork '
                         f'images do not name their entry; give it with --invoke)')
    entry_fidx = inst.funcaddrs.index(addr)
    snap = snapshot_from_fork(files, inst.module, inst.info, baseline_of(store, inst), entry_fidx,
                              store.limits)
    snap.entry = entry
    snap.results = list(store.funcs[addr].type.results) if results is None else list(results)
    snap.steps = steps
    return images_from_snapshot(snap, inst.module, inst.info, model or files.runtime,
                                im.module_sha256(module_bytes))


def snapshot_of_images(images, inst):
    return snapshot_from_images(images, inst.module, inst.info)


def write_fork_images(images: ImageSet, directory, store, inst, runtime=None) -> None:
    """Write ``images`` (of either model) in the layout of fork ``runtime``
    (default: the images' own model), atomically.  ``store``/``inst``: a
    fresh instance of the module, the baseline the fork restores onto."""
    snap = snapshot_from_images(images, inst.module, inst.info)
    write_fork_snapshot(snap, directory, store, inst, runtime or images.runtime)


def write_fork_snapshot(snap, directory, store, inst, runtime) -> None:
    files = fork_files(snap, inst.module, inst.info, runtime, baseline_of(store, inst))
    im.write_dir(files, directory)
