"""Checkpoint and restore: an executor's live state to an image set in its
own runtime model, and back.

A WasmEdge-style executor saves through the neutral ``state.Snapshot``
(its frames are already whole values and instruction indices, so nothing is
lost).  A WAMR-style executor saves its cells and its own label stack as
they are, so the images show exactly what that interpreter held; the
translator checks those labels against the code when it reads them.

The module instance is the one the run belongs to: frames of functions of
other instances cannot be expressed in an image set and are refused.  A
*reference* to a function of another instance is saved as a link to one of
the named ``peers`` (migrate/links.py) and resolved against the peers
given to the restore.
"""

from dataclasses import replace

from .. import faults
from . import images as im, memories
from ..errors import WasmError
from .images import CELLS, CHUNK, NONE, FrameImage, ImageError, ImageSet
from ..runtime import CHUNK_SHIFT
from ..syntax import ExternRef, value_class
from .state import Frame, Snapshot
from . import exnstate, gcheap, links as lk
from ..exec.cells import from_cells, value_cells
from .translate import ModuleView, images_from_snapshot, snapshot_from_images, store_images


class CheckpointError(WasmError):
    """The run cannot be saved."""


class ForeignInstanceError(CheckpointError):
    """The run's stack holds a frame or a function reference of another
    module instance: an image set describes one instance only."""


class GCHeapError(CheckpointError):
    """The run's GC heap holds what an image set cannot express (an object
    of a type the module does not define, made by another instance):
    nothing is written rather than a wrong image set."""


# ------------------------------------------------------------ store parts

class _Index(dict):
    """Function address -> module function index; ``tags`` the same for
    tag addresses, ``inst`` the instance (exnref fields' types), ``links``
    the checkpoint's ``links.LinkTable`` (None: no store, no peers)."""
    __slots__ = ('tags', 'inst', 'gc', 'links')


def _addr_to_index(inst, store=None, peers=None):
    out = _Index((addr, i) for i, addr in enumerate(inst.funcaddrs))
    out.tags = {addr: i for i, addr in enumerate(getattr(inst, 'tagaddrs', ()))}
    out.inst = inst
    out.links = None if store is None else lk.LinkTable(store, len(inst.funcaddrs), peers,
                                                        _foreign_function)
    out.gc = gcheap.Out(inst.module, lambda a: _func_out(a, out),
                        lambda v: _ref_out('exnref', v, out, 'an exnref field of a GC object'))
    return out


def _gc_in(inst, funcaddrs=None):
    """A ``gcheap.In`` for one restore (exnref fields through ``_ref_in``);
    ``funcaddrs``: the store address of every function index, links
    resolved (``links.func_addrs``), which ``_ref_in`` uses too."""
    gin = gcheap.In(inst, funcaddrs=funcaddrs)
    gin.exn_in = lambda v: _ref_in('exnref', v, inst, gin)
    return gin


def _resolve_links(store, inst, view, snap, peers):
    """The address of every function index of ``snap`` (links resolved
    against ``peers``), each link checked against the typed references
    holding it; raises before anything of the instance is changed."""
    addrs = lk.func_addrs(inst, snap.links, peers)
    if snap.links:
        lk.check_types(store, inst.module, addrs, len(inst.funcaddrs), snap.links,
                       _funcref_places(inst.module, view, snap))
    return addrs


def _funcref_places(module, view, snap):
    """(type, value, where) of every value of a snapshot: frame slots,
    globals, tables, and the fields of the GC objects and exceptions they
    reach (each object once)."""
    def values():
        top_first = snap.frames[::-1]
        for k, fr in enumerate(top_first, 1):
            for j, (t, v) in enumerate(zip(fr.types, fr.locals + fr.stack)):
                yield t, v, f'stack{k}.img slot {j}'
            for d, v in enumerate(fr.caught):
                yield 'exnref', v, f'stack{k}.img caught exception {d}'
        for k, (t, v) in enumerate(zip(view.global_types, snap.globals)):
            yield t, v, f'global.img global {k}'
        for k, (t, entries) in enumerate(zip(view.table_types, snap.tables)):
            for j, v in enumerate(entries):
                yield t, v, f'table.img table {k}[{j}]'
        for i, vals in snap.gc_elems:
            for j, v in enumerate(vals):
                yield module.elems[i].type, v, f'{gcheap.FILE} segment {i}[{j}]'
    seen, work = set(), list(values())
    tags = exnstate.tag_types(module) if exnstate.uses_exceptions(module) else ()
    while work:
        t, v, where = work.pop()
        yield t, v, where
        inner = v.value if isinstance(v, ExternRef) else v
        if id(inner) in seen:
            continue
        if isinstance(inner, gcheap.Obj):
            seen.add(id(inner))
            types = gcheap.field_types(module, inner.typeidx, len(inner.fields))
            work += [(ft, f, f'{gcheap.FILE} {inner.kind} of type {inner.typeidx} field {i}')
                     for i, (ft, f) in enumerate(zip(types, inner.fields))]
        elif value_class(t) == 'exnref' and inner is not None and tags:
            seen.add(id(inner))
            work += [(ft, f, f'{exnstate.FILE} field {i} of an exception of tag {inner.tag}')
                     for i, (ft, f) in enumerate(zip(tags[inner.tag].params, inner.fields))]


def _foreign_function(v):
    raise ForeignInstanceError(f'function address {v} is not a function of this module '
                               f'nor of a named peer instance')


def _func_out(v, to_index):
    """The module function index of address ``v``, or a link's index past
    them when another (named) instance holds it."""
    if faults.FUNCREF_ADDRESS: return v
    if v not in to_index:
        if to_index.links is None:
            _foreign_function(v)
        return to_index.links.index(v)
    return to_index[v]


def _ref_out(t, v, to_index, where='the state'):
    """A store-level reference as the module-level value a snapshot holds
    (``where`` names the slot for a refusal); GC values as ``gcheap.Obj``
    graphs, each object once per checkpoint."""
    c = value_class(t)
    if v is not None and c == 'funcref':
        return _func_out(v, to_index)
    if c == 'anyref' or c == 'externref':
        try:
            return to_index.gc.value(t, v)
        except gcheap.HeapError as e:
            raise GCHeapError(f'{e} (in {where})') from None
    if c == 'exnref' and v is not None:
        tags = to_index.tags
        if v.tag not in tags:
            raise ForeignInstanceError(f'exception of tag address {v.tag}, which the module '
                                       f'neither defines nor imports')
        params = exnstate.tag_types(to_index.inst.module)[tags[v.tag]].params
        return exnstate.Exn(tags[v.tag], [_ref_out(ft, f, to_index, f'a field of an exception in {where}')
                                          for ft, f in zip(params, v.fields)])
    return v


def _ref_in(t, v, inst, gin):
    """A module-level value as the store-level one of ``inst``; ``gin``
    (a ``gcheap.In``, one per restore) rebuilds each GC object once."""
    c = value_class(t)
    if v is not None and c == 'funcref':
        return gin.funcaddrs[v]
    if c == 'exnref' and v is not None:
        return exnstate.exn_in(v, inst, lambda ft, f: _ref_in(ft, f, inst, gin))
    if c == 'anyref' or c == 'externref':
        return gin.value(t, v)
    return v


def _caught_out(ex, inst, to_index, k, fidx, pc):
    """The exceptions the open legacy catch arms of frame ``k`` caught."""
    if not exnstate.uses_exceptions(inst.module):
        return []
    n = exnstate.catch_depth(inst.module, len(inst.module.imported('func')), fidx, pc)
    return [_ref_out('exnref', ex.caught[(k, d)], to_index) for d in range(n)]


def _caught_in(ex, inst, snap, gin):
    ex.caught = {(k, d): _ref_in('exnref', v, inst, gin)
                 for k, fr in enumerate(snap.frames) for d, v in enumerate(fr.caught)}


def _store_parts(store, inst, view, live=False, view_index=None):
    """Memory, globals and tables of the instance, module-level, and the
    offsets of the memory's written chunks (the only ones that can be
    non-zero).  ``live``: the memory is the instance's own bytearray, not a
    copy, for a caller that is done with it before the run goes on.
    ``view_index``: the checkpoint's ``_addr_to_index`` (one heap walk:
    objects shared with the frames are the same)."""
    to_index = view_index if view_index is not None else _addr_to_index(inst)
    if inst.memaddrs:
        mem = store.mems[inst.memaddrs[0]]
        page_count, memory = len(mem.data) // im.PAGE, mem.data if live else bytes(mem.data)
        chunks = mem.dirty_offsets()
    else:
        page_count, memory, chunks = None, b'', []
    globs = [_ref_out(t, store.globals[a].value, to_index, f'global {i}')
             for i, (t, a) in enumerate(zip(view.global_types, inst.globaladdrs))]
    tables = [[_ref_out(t, v, to_index, f'table {i} entry {j}')
               for j, v in enumerate(store.tables[a].elem)]
              for i, (t, a) in enumerate(zip(view.table_types, inst.tableaddrs))]
    dropped_elems, dropped_datas = dropped_segments(store, inst)
    gc_elems = [(i, [_ref_out(inst.module.elems[i].type, v, to_index, f'element segment {i}')
                     for v in store.elems[inst.elemaddrs[i]].elem])
                for i in gcheap.gc_elem_indices(inst.module, dropped_elems)]
    return page_count, memory, globs, tables, dropped_elems, dropped_datas, chunks, gc_elems


def dropped_segments(store, inst):
    """(element segments, data segments) of ``inst`` dropped so far, by
    index: emptied at run time although the module gives them contents."""
    return ([i for i, a in enumerate(inst.elemaddrs)
             if not store.elems[a].elem and inst.module.elems[i].init],
            [i for i, a in enumerate(inst.dataaddrs)
             if not store.datas[a].data and inst.module.datas[i].init])


def load_memory(mem, snap):
    """The snapshot's memory into ``mem``, in place (executors hold
    references to ``data`` and ``dirty``).  A snapshot read for a restore
    holds only the images' chunks: the memory is zeroed in place, each chunk
    written once, and exactly those chunks flagged dirty, so the next
    checkpoint starts from them; a whole memory (``neutral.json``) is
    copied once by ``MemInst.load``."""
    if snap.memory is not None:
        mem.load(snap.memory, snap.chunks)
        return
    data, dirty = mem.data, mem.dirty
    size = snap.page_count * im.PAGE
    if len(data) == size:
        _zero(data)
    else:
        mem.resize(bytes(size))
    for off, chunk in snap.chunk_data.items():
        data[off:off + CHUNK] = chunk
    dirty[:] = bytes(len(data) >> CHUNK_SHIFT)
    for off in snap.chunk_data:
        dirty[off >> CHUNK_SHIFT] = 1


def _zero(buf):
    """Zero a bytearray in place at memset speed (no zero copy built and
    copied over it: a 64 MiB memory takes milliseconds, not tens of them)."""
    import ctypes
    if buf:
        ctypes.memset((ctypes.c_char * len(buf)).from_buffer(buf), 0, len(buf))


def _load_store_parts(store, inst, view, snap, gin):
    if inst.memaddrs:
        mem = store.mems[inst.memaddrs[0]]
        load_memory(mem, snap)
        from ..syntax import Limits, MemType
        mem.type = replace(mem.type, limits=Limits(snap.page_count, mem.type.limits.max))
        if faults.MEM64_TYPE: mem.type = MemType(mem.type.limits)
        memories.restore(store, inst, snap.memories)
    for t, a, v in zip(view.global_types, inst.globaladdrs, snap.globals):
        store.globals[a].value = _ref_in(t, v, inst, gin)
    for t, a, entries in zip(view.table_types, inst.tableaddrs, snap.tables):
        tab = store.tables[a]
        tab.elem[:] = [_ref_in(t, v, inst, gin) for v in entries]
        from ..syntax import Limits
        tab.type = replace(tab.type, limits=Limits(len(entries), tab.type.limits.max))
    from ..runtime import eval_const
    heap_elems = dict(snap.gc_elems)
    for i, a in enumerate(inst.elemaddrs):      # what instantiation left, minus the drops
        seg = inst.module.elems[i]
        keep = seg.mode == 'passive' and i not in snap.dropped_elems
        if i in heap_elems:                     # part of the heap: as saved, shared
            store.elems[a].elem = [_ref_in(seg.type, v, inst, gin) for v in heap_elems[i]]
            continue
        store.elems[a].elem = [eval_const(store, inst, x) for x in seg.init] if keep else []
    for i, a in enumerate(inst.dataaddrs):
        seg = inst.module.datas[i]
        keep = seg.mode == 'passive' and i not in snap.dropped_datas
        store.datas[a].data = bytes(seg.init) if keep else b''


def frame_fidx(store, inst, to_index, k, funcaddr):
    """The module function index a frame runs; an image set can only hold
    functions defined by the instance being saved."""
    if funcaddr not in to_index:
        raise ForeignInstanceError(f'frame {k} runs function address {funcaddr}, '
                              f'which belongs to another module instance')
    if store.funcs[funcaddr].module is not inst:
        raise ForeignInstanceError(f'frame {k} runs function {to_index[funcaddr]}, imported from '
                              f'another module instance')
    return to_index[funcaddr]


# ------------------------------------------------------------ WasmEdge model

def snapshot_wasmedge(ex, inst, live=False, peers=None) -> Snapshot:
    """The WasmEdge executor's frames (bottom first) as neutral frames.

    A frame's locals are ``stack[vpos : vpos+locals]``; its operands run up
    to the next frame's ``vpos`` (the callee's params were the caller's
    top operands) or to the stack top.  ``from_pc`` of a callee is the
    instruction after the caller's call, so the caller stands at
    ``from_pc - 1``.  ``live``: see ``_store_parts``; ``peers``: see
    ``save``."""
    view = ModuleView.of(inst.module, inst.info)
    to_index = _addr_to_index(inst, ex.store, peers)
    frames = []
    n = len(ex.frames)
    for k, fr in enumerate(ex.frames):
        fidx = frame_fidx(ex.store, inst, to_index, k, fr.func)
        top = k == n - 1
        pc = ex.pc if top else ex.frames[k + 1].from_pc - 1
        end = len(ex.stack) if top else ex.frames[k + 1].vpos
        values = ex.stack[fr.vpos:end]
        frames.append(Frame(fidx, pc, values[:fr.locals], values[fr.locals:],
                            caught=_caught_out(ex, inst, to_index, k, fidx, pc)))
    # types (and with them the funcref conversion) need the frame above each one
    top_first = list(reversed(frames))
    for k, fr in enumerate(top_first):
        fr.types = view.frame_types(fr.fidx, fr.pc, top_first[k - 1].fidx if k else None)
        values = fr.locals + fr.stack
        if len(values) != len(fr.types):
            raise CheckpointError(f'frame of function {fr.fidx} at {fr.pc} holds '
                                  f'{len(values)} values, validation says {len(fr.types)}')
        vals = [_ref_out(t, v, to_index, f'frame {n - 1 - k} (function {fr.fidx}) slot {j}')
                for j, (t, v) in enumerate(zip(fr.types, values))]
        fr.locals, fr.stack = vals[:len(fr.locals)], vals[len(fr.locals):]
    page_count, memory, globs, tables, d_elems, d_datas, chunks, gc_elems = \
        _store_parts(ex.store, inst, view, live, to_index)
    return Snapshot(frames=frames, page_count=page_count, memory=memory, globals=globs,
                    global_types=view.global_types, tables=tables, steps=ex.steps,
                    dropped_elems=d_elems, dropped_datas=d_datas, chunks=chunks,
                    memories=memories.capture(ex.store, inst), gc_elems=gc_elems,
                    links=to_index.links.entries)


def restore_wasmedge(store, inst, snap: Snapshot, peers=None):
    from ..exec.wasmedge import Executor, Frame as WFrame, code_of
    view = ModuleView.of(inst.module, inst.info)
    gin = _gc_in(inst, _resolve_links(store, inst, view, snap, peers))     # before any change
    _load_store_parts(store, inst, view, snap, gin)
    ex = store.new_executor('wasmedge') if hasattr(store, 'new_executor') else Executor(store)
    stack, frames = [], []
    for k, fr in enumerate(snap.frames):
        addr = inst.funcaddrs[fr.fidx]
        code = code_of(store, addr)
        vals = [_ref_in(t, v, inst, gin) for t, v in zip(fr.types, fr.locals + fr.stack)] \
            if fr.types else fr.locals + fr.stack
        from_pc = None if k == 0 else snap.frames[k - 1].pc + 1
        frames.append(WFrame(addr, from_pc, code.nlocals, code.arity,
                             len(stack) - (code.nparams if faults.VPOS and k else 0)))
        stack.extend(vals)
    ex.stack, ex.frames, ex.pc = stack, frames, snap.frames[-1].pc
    ex.steps, ex.results, ex.finished = snap.steps, None, False
    _caught_in(ex, inst, snap, gin)
    return ex


# ------------------------------------------------------------ WAMR model

def save_wamr(ex, inst, module_sha256, peers=None) -> ImageSet:
    """The executor's state as a WAMR image set: cells and labels exactly as
    held (funcref cells as module function indices, or links to ``peers``),
    caller frames resuming just after their call."""
    view = ModuleView.of(inst.module, inst.info)
    to_index = _addr_to_index(inst, ex.store, peers)
    frames = ex.frames
    stack = ex.stack
    nfr = len(frames)
    out = []
    heap = gcheap.HeapTable(inst.module) if gcheap.uses_gc(inst.module) else None
    exns = exnstate.ExnTable(inst.module, heap)
    if heap is not None:
        heap.exns = exns
    caught = []
    callee = None                              # fidx of the frame above
    for k in range(nfr - 1, -1, -1):          # top first
        fr = frames[k]
        fidx = frame_fidx(ex.store, inst, to_index, k, fr.func)
        top = k == nfr - 1
        unit = ex.pc if top else fr.ip
        starts, after_call = view.index_of_offset(fidx, unit)
        table = starts if top else after_call
        if unit not in table:
            raise CheckpointError(f'frame {k} of function {fidx} stands at byte offset {unit}, '
                                  f'which is not {"an instruction" if top else "after a call"}')
        pc = table[unit]
        types = view.frame_types(fidx, pc, callee)
        if None in types:
            raise CheckpointError(f'frame {k} of function {fidx} is in unreachable code at {pc}')
        end = len(stack) if top else frames[k + 1].lp
        cells = list(stack[fr.lp:end])
        slot_cells = [CELLS[t] for t in types]
        if sum(slot_cells) != len(cells):
            raise CheckpointError(f'frame {k} of function {fidx} at offset {unit} holds '
                                  f'{len(cells)} cells, validation says {sum(slot_cells)}')
        pos = 0
        for j, (t, nc) in enumerate(zip(types, slot_cells)):
            if heap is not None and value_class(t) in ('anyref', 'externref'):
                v = from_cells(t, [cells[pos]])
                cells[pos] = heap.cell(t, _ref_out(t, v, to_index,
                                                   f'frame {k} (function {fidx}) slot {j}'))
            elif cells[pos] != NONE and value_class(t) == 'funcref':
                cells[pos] = _ref_out(t, cells[pos], to_index)
            elif value_class(t) == 'exnref':
                cells[pos] = exns.cell(None if cells[pos] is NONE or cells[pos] == NONE
                                       else _ref_out(t, cells[pos], to_index))
            pos += nc
        caught += [(nfr - k, d, exns.cell(v))
                   for d, v in enumerate(_caught_out(ex, inst, to_index, k, fidx, pc))]
        if k > 0:
            ret = (to_index.get(frames[k - 1].func, NONE), frames[k - 1].ip)
        else:
            ret = (NONE, NONE)
        out.append(FrameImage(fidx, ret[0], ret[1], slot_cells, cells,
                              [tuple(l) for l in fr.labels]))
        callee = fidx
    page_count, memory, globs, tables, d_elems, d_datas, chunks, gc_elems = \
        _store_parts(ex.store, inst, view, live=True, view_index=to_index)
    parts = store_images(view, memory, globs, tables, chunks, exns)
    if heap is not None:
        for i, values in gc_elems:
            heap.add_elem(i, inst.module.elems[i].type, values)
    return ImageSet(runtime='wamr', module_sha256=module_sha256,
                    pc=(out[0].entry_fidx, ex.pc), frames=out, page_count=page_count,
                    **parts,
                    steps=ex.steps, dropped_elems=d_elems, dropped_datas=d_datas,
                    exceptions=exns.entries, caught=caught,
                    memories=memories.capture(ex.store, inst),
                    heap=None if heap is None else heap.entries,
                    gc_elems=[] if heap is None else heap.elems,
                    links=to_index.links.entries)


def restore_wamr(store, inst, images, snap=None, peers=None):
    """An executor holding the images' cells and labels, ready to run();
    ``snap`` is the images' checked neutral form when the caller has it
    (read once: checkpoint.restore)."""
    from ..exec.wamr import Executor, Frame as WamrFrame, code_of
    if snap is None:
        snap = snapshot_from_images(images, inst.module, inst.info, store.limits, memory=False)
    view = ModuleView.of(inst.module, inst.info)
    gin = _gc_in(inst, _resolve_links(store, inst, view, snap, peers))     # before any change
    _load_store_parts(store, inst, view, snap, gin)
    ex = store.new_executor('wamr') if hasattr(store, 'new_executor') else Executor(store)
    stack, frames = [], []
    nfr = len(images.frames)
    for k in range(nfr - 1, -1, -1):          # bottom first
        fimg = images.frames[k]
        sfr = snap.frames[nfr - 1 - k]
        addr = inst.funcaddrs[fimg.entry_fidx]
        code = code_of(store, addr)
        cells = list(fimg.cells)
        pos = 0
        svals = sfr.locals + sfr.stack
        for j, t in enumerate(sfr.types):
            if cells[pos] != NONE and value_class(t) == 'funcref':
                cells[pos] = gin.funcaddrs[cells[pos]]
            elif value_class(t) == 'exnref':
                v = _ref_in(t, svals[j], inst, gin)
                cells[pos] = NONE if v is None else v
            elif value_class(t) in ('anyref', 'externref') and images.heap is not None:
                cells[pos] = value_cells(t, _ref_in(t, svals[j], inst, gin))[0]
            pos += CELLS[t]
        ip = images.frames[k - 1].return_offset if k > 0 else None
        frames.append(WamrFrame(addr, ip, len(stack), [tuple(l) for l in fimg.labels], code))
        stack.extend(cells)
    ex.stack, ex.frames, ex.pc = stack, frames, images.pc[1]
    ex.steps, ex.results, ex.finished = images.steps, None, False
    _caught_in(ex, inst, snap, gin)
    return ex


# ------------------------------------------------------------ public API

def save(ex, inst, module_sha256, entry='', results=(), peers=None) -> ImageSet:
    """The executor's current state as an image set of its own model.
    ``results``: the entry's result types; the run returns its bottom
    frame's function's (a tail call keeps them), which the set records
    when ``results`` is empty and which a given list must be.
    ``peers``: other instances by name (dict name -> instance); a
    reference to a function of one of them is saved as a link (the
    defining instance's name when it is a peer), any other foreign
    function is refused (``ForeignInstanceError``)."""
    if ex.finished:
        raise CheckpointError('the run has already finished: nothing to checkpoint')
    from ..exec.wasmedge import Executor as WasmEdgeExecutor
    if isinstance(ex, WasmEdgeExecutor):         # the compiled tier included
        snap = snapshot_wasmedge(ex, inst, live=True, peers=peers)
        snap.entry, snap.results = entry, _run_results(ex, results)
        return images_from_snapshot(snap, inst.module, inst.info, 'wasmedge', module_sha256)
    images = save_wamr(ex, inst, module_sha256, peers)
    images.entry, images.results = entry, _run_results(ex, results)
    return images


def _run_results(ex, results):
    own = list(ex.store.funcs[ex.frames[0].func].type.results)
    if results and [str(t) for t in results] != [str(t) for t in own]:
        raise CheckpointError(f'results [{" ".join(map(str, results))}] given, but the run returns '
                              f'[{" ".join(map(str, own))}] (its bottom frame\'s function)')
    return own


def restore(store, inst, images: ImageSet, runtime=None, peers=None):
    """An executor of ``runtime`` (default: the images' model), loaded and
    ready to ``run()``.  The images are read and checked once (frames,
    labels, sizes), their memory chunks written once into the instance;
    images of the other model are translated from that one reading.
    ``peers``: the instances the set's links name (dict name -> instance);
    a link none of them resolves is ``links.UnresolvedLink``, raised
    before the instance is touched."""
    limits = getattr(store, 'limits', None)
    runtime = runtime or images.runtime
    snap = snapshot_from_images(images, inst.module, inst.info, limits, memory=False)
    return restore_snapshot(store, inst, snap, runtime, images.module_sha256,
                            images if images.runtime == runtime else None, peers)


def restore_snapshot(store, inst, snap: Snapshot, runtime, module_sha256, images=None,
                     peers=None):
    """An executor of ``runtime`` loaded from a checked neutral snapshot
    (from an image set or ``neutral.json``); ``images``: the WAMR set it
    was read from, whose cells and labels are then loaded as they are."""
    if runtime == 'wasmedge':
        return restore_wasmedge(store, inst, snap, peers)
    if images is None:
        images = images_from_snapshot(snap, inst.module, inst.info, runtime, module_sha256)
    return restore_wamr(store, inst, images, snap, peers)
