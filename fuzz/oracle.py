"""Migration oracles: an uninterrupted run is the truth a migrated run must
reproduce exactly.

``uninterrupted`` runs an export to its end in one runtime model.
``migrated`` runs the same call as a chain of hops: run some instructions,
``checkpoint.save``, write the image set to disk, read it back, translate it
to the next hop's model, instantiate the module in a fresh store of that
model (without its start function) and ``checkpoint.restore`` into it, run on.
``check`` compares the two (results or trap, memory byte for byte, every
global, every table, instruction count) and optionally the uninterrupted run
against wasmtime, and returns human-readable mismatch lines.

Every exception that escapes the engine during a migrated run (ImageError,
CheckpointError, KeyError, ...) becomes a mismatch line, never a crash of
the caller: a fuzzer must record it, not die of it.
"""

import copy
import dataclasses
import os
import random
import shutil
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from engine.migrate import checkpoint, images as im, neutral
from engine import embedding
from engine.migrate.checkpoint import ForeignInstanceError
from engine.errors import Trap, UncaughtException, WasmError
from engine.runtime import TIERS  # noqa: F401  (re-exported for the campaign)
from engine.syntax import Exn, ExternRef, RefType, Struct, value_class
from engine.migrate.translate import images_from_snapshot, snapshot_from_images, translate
from fuzz import countcheck, imagecheck, linked, neutralcheck, refusal, tablecheck

RUNTIMES = ('wasmedge', 'wamr')
# a hop named 'neutral:R' runs in model R after its state went through the
# runtime-neutral form (neutral.json) instead of a direct translation
NEUTRAL = 'neutral:'
# a hop named 'cli:R' is translated into model R by the command line a user
# runs (`python -m engine translate DIR --to R --out D --frames one-file`),
# whose options are strings argparse made, not the oracle's constants
CLI = 'cli:'
ROUTES = RUNTIMES + tuple(NEUTRAL + r for r in RUNTIMES) + tuple(CLI + r for r in RUNTIMES)
CLI_SHARE = 0.125           # of the calls: one single hop goes through the command line
HELD_STEPS = 200            # the source runs on this far past a single hop's checkpoint


def model(route):
    """The runtime model a hop runs in."""
    for prefix in (NEUTRAL, CLI):
        if route.startswith(prefix):
            return route[len(prefix):]
    return route
# the executor tier of every run (TIERS: 'interp', 'fast'): the campaign
# runs the compiled tier and checks it against the interpreter in each model
# (compare_tiers)
TIER = 'fast'


def other_tier(tier):
    """The tier the tier check runs against ``tier``."""
    return 'interp' if tier == 'fast' else 'fast'


MAX_STEPS = 5_000_000          # a generated run is far shorter; beyond this it hangs
COUNT_WALK_STEPS = 100_000     # runs up to this long get the counts' independent check (~400,000 steps/s)
STEP_LIMIT = 'step limit reached'

Hop = Tuple[str, Optional[int]]

# image files of a throw-away migration go to RAM when possible: on a disk
# file system creating and removing the small files costs more than the run.
# A campaign names its own folder (FUZZ_TMP_ROOT) so that a restart can
# remove what a killed run left there.
_TMP_ROOT = '/dev/shm' if os.access('/dev/shm', os.W_OK) else None


def _tmp_root():
    root = os.environ.get('FUZZ_TMP_ROOT')
    if root:
        os.makedirs(root, exist_ok=True)
        return root
    return _TMP_ROOT


def available_runtimes():
    """The runtime models whose executor exists in this tree (the WAMR one
    may still be missing while it is being written)."""
    out = ['wasmedge']
    try:
        import engine.exec.wamr  # noqa: F401
        out.append('wamr')
    except ImportError:
        pass
    return tuple(out)


@dataclass
class Outcome:
    """What one call did, in module-level terms (funcrefs as function
    indices) so that runs in different stores compare directly.

    ``results`` is None when the call trapped; ``trap`` then holds the
    message (``STEP_LIMIT`` if the run did not end within ``MAX_STEPS``).
    ``hops`` lists (runtime, steps at the checkpoint) of every checkpoint
    actually taken."""
    results: Optional[list]
    trap: Optional[str]
    steps: int
    memory: Optional[bytes]
    globals: list
    tables: list
    exports: dict = field(default_factory=dict)     # name -> (kind, module index)
    hops: list = field(default_factory=list)
    error: Optional[str] = None                     # engine failure (not a Wasm trap)
    # every memory by index (``memory`` is the first; multi-memory has more)
    memories: list = field(default_factory=list)
    # each element segment's contents by index (empty once dropped): a
    # passive segment is instance state a migration carries (gc_elems),
    # its GC objects shared with the heap the globals and tables reach
    elems: list = field(default_factory=list)
    # the instruction counts right after a handler caught an exception (the
    # first and the last catch of an uninterrupted run; compare ignores them)
    catches: list = field(default_factory=list)


class EngineFailure(Exception):
    """An exception out of the engine where none may happen; carries the
    stage for the mismatch line."""


# ---------------------------------------------------------------- helpers

def _module(wasm):
    return linked.decoded(wasm)


def _instantiate(store, wasm, run_start):
    """The module's instance; a module with imports brings its provider
    (``fuzz.linked``), which is instantiated first in the same store."""
    module = _module(wasm)
    try:
        externs = linked.imports_for(store, module, wasm)
    except ValueError as e:
        raise EngineFailure(str(e))
    return embedding.module_instantiate(store, module, externs, run_start=run_start)


def _entry(inst, entry):
    kind, addr = inst.exports.get(entry, (None, None))
    if kind != 'func':
        raise EngineFailure(f'no exported function {entry!r}')
    return addr


def _module_value(v, to_index):
    """A store value as a module-level value: funcref address -> index."""
    if isinstance(v, int) and not isinstance(v, bool) and to_index is not None:
        if v not in to_index:
            return ('foreign funcref address', v)
        return to_index[v]
    return v


class GCRef(tuple):
    """A GC object of an outcome as structure, not identity (two runs'
    objects are never the same Python objects): ``('gc', n, heap)``, n the
    object's number in the outcome's heap, ``heap`` every object reachable
    from the outcome's globals, tables and results, numbered in the order a
    breadth-first walk from them in that order meets them, each as (kind,
    canonical type, fields with references as ('gc', m)).  Equal exactly
    when the two heaps are isomorphic by that walk: the same types and
    field values, the same sharing and cycles, the same root reaching the
    same object."""

    def __new__(cls, n, heap):
        return tuple.__new__(cls, ('gc', n, heap))

    def __reduce__(self):
        return (GCRef, (self[1], self[2]))

    def __repr__(self):
        kind, _, fields = self[2][self[1]]
        return f'{kind}#{self[1]}({", ".join(_show(f) for f in fields)})'


def gc_views(seqs):
    """``seqs`` (lists of values: globals, each table, results) with every
    GC struct or array replaced by its ``GCRef`` (an externalized one by
    ('extern', its GCRef)); unchanged without any.  Numbered as
    ``structural`` numbers them, so the two agree on what is isomorphic."""
    numbering = _Numbering()
    views = [[numbering.walk(v)[0] for v in seq] for seq in seqs]
    if not numbering.order:
        return seqs
    heap = numbering.heap()

    def top(view):
        if isinstance(view, tuple) and len(view) == 2:
            if view[0] == 'gc':
                return GCRef(view[1], heap)
            if view[0] == 'extern':
                return ('extern', top(view[1]))
        if isinstance(view, tuple) and len(view) == 3 and view[0] == 'exn':
            return ('exn', view[1], tuple(top(f) for f in view[2]))
        return view
    return [[top(v) for v in seq] for seq in views]


def _gc_head(v):
    """(kind, type) of a GC object, None for any other value: a store's
    ``Struct``/``Array`` (its canonical type), or a snapshot's module-level
    object (``engine.migrate.gcheap.Obj``: ``kind``, ``typeidx``,
    ``fields``)."""
    if isinstance(v, Struct):
        return (v.ref_kind, v.type)
    kind = getattr(v, 'kind', None)
    if kind in ('struct', 'array') and hasattr(v, 'typeidx') and hasattr(v, 'fields'):
        return (kind, v.typeidx)
    return None


# values that are never, and never hold, a GC object (most of a snapshot)
_PLAIN = frozenset((int, float, str, bytes, bool, type(None), RefType))   # a RefType is a str


_FIELDS = {}     # type -> its dataclass field names (() for any other type)


class _Numbering:
    """GC objects numbered in the order a walk meets them (first the values
    walked, then the objects' fields breadth-first: ``heap``), every other
    part kept as itself unless it holds a GC object."""

    def __init__(self):
        self.index, self.order = {}, []

    def walk(self, v):
        """(v as compared, whether it holds a GC object)."""
        t = type(v)
        if t in _PLAIN:
            return v, False
        if t is list or t is tuple:           # (no GC object is a plain sequence)
            return self.seq(v)
        if _gc_head(v) is not None:
            n = self.index.get(id(v))
            if n is None:
                n = self.index[id(v)] = len(self.order)
                self.order.append(v)
            return ('gc', n), True
        if isinstance(v, ExternRef) and not isinstance(v.value, int):
            inner, gc = self.walk(v.value)       # an externalized GC object
            return (('extern', inner), True) if gc else (v, False)
        if isinstance(v, Exn):
            # an exception carrying GC objects (its fields, or an object's
            # field holding it): Exn's own __eq__ would compare them by identity
            fields = [self.walk(f) for f in v.fields]
            if not any(gc for _, gc in fields):
                return v, False
            return ('exn', v.tag, tuple(f for f, _ in fields)), True
        names = _FIELDS.get(t)
        if names is None:
            names = _FIELDS[t] = tuple(f.name for f in dataclasses.fields(v)) \
                if dataclasses.is_dataclass(v) and not isinstance(v, type) else ()
        if names:
            parts = [self.walk(getattr(v, name)) for name in names]
            name = t.__name__
        elif isinstance(v, (list, tuple)):
            return self.seq(v)
        elif isinstance(v, dict):
            parts, name = [self.walk((k, e)) for k, e in v.items()], 'dict'
        else:
            return v, False
        if not any(gc for _, gc in parts):
            return v, False
        return (name,) + tuple(p for p, _ in parts), True

    def seq(self, v):
        if _PLAIN.issuperset(map(type, v)):        # a table's, a stack's plain values
            return v, False
        parts = [self.walk(e) for e in v]
        if not any(gc for _, gc in parts):
            return v, False
        return ('seq',) + tuple(p for p, _ in parts), True

    def heap(self):
        """Every object met, and those its fields reach, as (kind, type,
        fields) with references as ('gc', m)."""
        heap, k = [], 0
        while k < len(self.order):
            o = self.order[k]
            heap.append(_gc_head(o) + (tuple(self.walk(f)[0] for f in o.fields),))
            k += 1
        return tuple(heap)


def structural(x):
    """``x`` (a snapshot: dataclasses, lists, dicts of values) with every GC
    object (a store's ``Struct``/``Array`` or a snapshot's ``gcheap.Obj``)
    replaced by ('gc', n), n its number in the order a walk of ``x`` and
    then of the objects' fields meets it, paired with the objects' contents:
    two snapshots read from different places (their objects never the same
    Python objects) are equal by it exactly when their states are
    isomorphic (see ``GCRef``).  A part holding no GC object stays itself,
    compared by its own ``__eq__``."""
    numbering = _Numbering()
    root, _ = numbering.walk(x)
    return root, numbering.heap()


def _final_state(store, inst):
    """Memory, globals, tables, element segments of ``inst`` (module-level
    values; GC objects as ``GCRef``: ``_outcome``)."""
    from engine.migrate.translate import ModuleView
    view = ModuleView.of(inst.module, inst.info)
    to_index = {a: i for i, a in enumerate(inst.funcaddrs)}
    memories = [bytes(store.mems[a].data) for a in inst.memaddrs]
    globs = [_module_value(store.globals[a].value, to_index if t == 'funcref' else None)
             for t, a in zip(view.global_types, inst.globaladdrs)]
    tables = [[_module_value(v, to_index if t == 'funcref' else None) for v in store.tables[a].elem]
              for t, a in zip(view.table_types, inst.tableaddrs)]
    elems = [[_module_value(v, to_index if value_class(seg.type) == 'funcref' else None)
              for v in store.elems[a].elem]
             for seg, a in zip(inst.module.elems, inst.elemaddrs)]
    exports = {name: (kind, _index_of(inst, kind, addr)) for name, (kind, addr) in inst.exports.items()}
    return memories, globs, tables, elems, exports


def _index_of(inst, kind, addr):
    seq = {'func': inst.funcaddrs, 'table': inst.tableaddrs, 'memory': inst.memaddrs,
           'global': inst.globaladdrs}.get(kind, [])
    return seq.index(addr) if addr in seq else None


def _results(store, inst, entry_addr, results):
    types = store.funcs[entry_addr].type.results
    to_index = {a: i for i, a in enumerate(inst.funcaddrs)}
    return [_module_value(v, to_index if t == 'funcref' else None) for t, v in zip(types, results)]


def _outcome(store, inst, ex, entry_addr, trap=None, hops=()):
    memories, globs, tables, elems, exports = _final_state(store, inst)
    results = None if trap is not None else _results(store, inst, entry_addr, ex.results or [])
    views = gc_views([globs, *tables, results or [], *elems])
    globs, tables = views[0], views[1:1 + len(tables)]
    if results is not None:
        results = views[1 + len(tables)]
    elems = views[2 + len(tables):]
    return Outcome(results, trap, ex.steps, memories[0] if memories else None, globs, tables, exports,
                   list(hops), memories=memories, elems=elems)


def _run(ex, budget):
    """Run up to ``budget`` instructions (None: to the end, within
    MAX_STEPS).  Returns (finished, trap message or None)."""
    try:
        if budget is None:
            limit = MAX_STEPS - ex.steps
            if limit <= 0 or not ex.run(limit):
                return True, STEP_LIMIT
            return True, None
        return ex.run(budget), None
    except Trap as e:            # Exhaustion included
        return True, e.message
    except UncaughtException as e:
        # the run ended in an exception nobody caught: compared like a trap,
        # with its tag and fields (wasmtime's by the message's start only)
        return True, str(e)


# ---------------------------------------------------------------- the runs

def uninterrupted(wasm, entry, args, runtime='wasmedge', run=_run, tier=TIER) -> Outcome:
    """Instantiate (start function included) and run ``entry(args)`` to its
    end in ``runtime`` under ``tier``.  A trap during instantiation is the outcome's trap.
    Decode/validation/link errors raise (the module is not a valid case).
    ``run`` runs the executor (``_run``; ``fuzz.trace`` steps and records)."""
    wasm = bytes(wasm)
    store = embedding.store_init(runtime, tier=tier)
    try:
        inst = _instantiate(store, wasm, True)
    except Trap as e:
        return Outcome(None, f'instantiation: {e.message}', 0, None, [], [])
    addr = _entry(inst, entry)
    ex = store.new_executor()
    ex.start(addr, list(args))
    catches = _record_catches(ex)
    _, trap = run(ex, None)
    out = _outcome(store, inst, ex, addr, trap)
    out.catches = catches
    return out


def _record_catches(ex):
    """[first, last] instruction count at which ``ex`` caught an
    exception (filled as it runs): every throw of either model and tier is
    unwound by the executor's ``unwind`` (exceptions.run_catching), which
    raises when nothing catches."""
    catches = []
    unwind = ex.unwind

    def recording(e):
        unwind(e)
        catches[1 if catches else 0:] = [ex.steps]
    ex.unwind = recording
    return catches


def migrated(wasm, entry, args, hops, image_dir=None, run=_run, tier=TIER) -> Outcome:
    """Run ``entry(args)`` as the chain ``hops`` = [(runtime, steps), ...,
    (runtime, None)]: each hop runs ``steps`` more instructions in its model,
    then checkpoints through image files (``image_dir/hop{i}``, plus the
    translated set in ``image_dir/hop{i}-{runtime}`` for even ``i``, written
    over ``image_dir/hop{i}`` for odd ``i``; a temporary directory
    unless ``image_dir`` is given) into a fresh store of the next hop's
    model.  If the run ends before a hop's checkpoint, later hops are not
    taken.  Every store (the first and each restored hop's) runs ``tier``.
    Exceptions from save/images/translate/restore propagate as
    ``EngineFailure`` naming the hop and stage."""
    wasm = bytes(wasm)
    hops = [(rt, n) for rt, n in hops]
    if not hops:
        raise ValueError('hops must name at least one runtime')
    for rt, _ in hops:
        if rt not in ROUTES:
            raise ValueError(f'unknown runtime {rt!r} in hops (expected one of {ROUTES})')
    if hops[0][0] not in RUNTIMES:
        raise ValueError(f'the first hop runs before any checkpoint: {hops[0][0]!r} is not a runtime')
    sha = im.module_sha256(wasm)
    tmp = None
    if image_dir is None:
        tmp = image_dir = tempfile.mkdtemp(prefix='fuzz-images-', dir=_tmp_root())
    os.makedirs(image_dir, exist_ok=True)
    hidden = imagecheck.hidden_beside(os.path.join(image_dir, 'hop0'))
    try:
        store = embedding.store_init(hops[0][0], tier=tier)
        try:
            inst = _instantiate(store, wasm, True)
        except Trap as e:
            return Outcome(None, f'instantiation: {e.message}', 0, None, [], [])
        addr = _entry(inst, entry)
        result_types = list(store.funcs[addr].type.results)
        ex = store.new_executor()
        ex.start(addr, list(args))
        taken = []
        for i, (runtime, budget) in enumerate(hops):
            last = i == len(hops) - 1
            finished, trap = run(ex, None if last else budget)
            if finished:
                return _outcome(store, inst, ex, addr, trap, taken)
            at = ex.steps
            route = hops[i + 1][0]
            nxt = model(route)
            stage = 'save'
            try:
                images, ended, trap = _save(ex, inst, sha, entry, result_types, run)
                if ended:                       # ended while in another instance's code
                    return _outcome(store, inst, ex, addr, trap, taken)
                at = ex.steps
                taken.append((runtime, at))
                if len(hops) == 2:
                    stage = 'a checkpoint held while the run goes on'
                    _held_while_running(ex, inst, images, sha)
                stage = 'write_images'
                d = os.path.join(image_dir, f'hop{i}')
                written = images
                im.write_images(images, d, extra={'module.wasm': wasm})
                stage = 'read_images'
                images = _load_dir(d, im.ImageSet, wasm)
                stage = 'independent image check'
                imagecheck.check_dir(d, written, images, {'module.wasm': wasm}, hidden)
                stage = "the forks' type tables"
                _tables_agree(images, inst, sha, image_dir)
                if (i + at) % 2:
                    # memory.img may list its chunks in any order (a fork's
                    # writer need not sort them): half the hops read them
                    # last first
                    images = chunks_reversed(images)
                stage = f'instantiate in {nxt}'
                store = embedding.store_init(nxt, tier=tier)
                inst = _instantiate(store, wasm, False)
                peers = linked.peers(store, inst)       # the fresh store's provider
                snap, untranslated = None, images
                if route != nxt:
                    stage = f'{images.runtime} -> neutral.json -> {nxt}'
                    images, snap = _via_neutral(images, inst, os.path.join(image_dir, f'hop{i}-neutral'),
                                                wasm, nxt, hidden)
                else:
                    stage = f'translate {images.runtime}->{nxt}'
                    images = translate(images, inst.module, inst.info, nxt)
                stage = 'write translated images'
                # every other hop: the frames in one file (version 2), and the
                # set written over the folder it was read from (a replaced set)
                d2 = os.path.join(image_dir, f'hop{i}-{nxt}' if i % 2 == 0 else f'hop{i}')
                written = images
                layout = im.FRAME_LAYOUTS[i % 2]
                if route.startswith(CLI):
                    stage = 'engine translate (the command line)'
                    layout = 'one-file'
                    _cli_translate(d, d2, nxt, layout)
                else:
                    im.write_images(images, d2, extra={'module.wasm': wasm}, frames=layout)
                images = im.read_images(d2)
                imagecheck.check_dir(d2, written, images, {'module.wasm': wasm}, hidden)
                stage = "the forks' type tables (translated set)"
                _tables_agree(images, inst, sha, image_dir)
                # an API user restores the translated set without files: read
                # as it is in memory, or decoded from its files in memory, it
                # must describe the same state
                stage = 'reading the translated set as held in memory'
                read = snapshot_from_images(images, inst.module, inst.info)
                _same_snapshots(snapshot_from_images(written, inst.module, inst.info), read,
                                'the translated set read in memory and read back from its files')
                if at % 3 == 0:     # a third of the hops (it compares whole states ~10 times)
                    _differences_seen(snapshot_from_images(images, inst.module, inst.info, memory=False),
                                      f'{sha}:{i}:{at}', 'the translated set (its memory as chunks)')
                if im.decode_files(im.encode_files(written, layout)) != images:
                    raise EngineFailure('the translated set decoded from its files in memory '
                                        '(images.decode_files) differs from the set read from disk')
                if at % 3 == 1:     # another third: broken on purpose, it must be refused
                    stage = 'refusal of the translated set broken on purpose'
                    refusal.check_set(images, inst.module, inst.info, layout, f'{sha}:{i}:{at}')
                    refusal.check_snapshot(read, inst.module, inst.info, nxt, sha, f'{sha}:{i}:{at}')
                stage = f'restore in {nxt}'
                if snap is not None and len(hops) > 2:
                    # in a chain, as `engine restore DIR` does with a neutral.json:
                    # straight from the document, its memory whole, no image set
                    ex = checkpoint.restore_snapshot(store, inst, snap, nxt, images.module_sha256,
                                                     peers=peers)
                else:
                    if route == nxt != untranslated.runtime and len(hops) == 2 and at % 2:
                        # a single direct hop into the other model at an odd count:
                        # the set as saved, restored straight into it (`restore
                        # --runtime`), must hold what the translated set holds
                        stage = f'restore the {untranslated.runtime} set straight into {nxt}'
                        direct = checkpoint.save(checkpoint.restore(store, inst, untranslated, runtime=nxt,
                                                                    peers=peers),
                                                 inst, sha, entry, result_types, peers=peers)
                        _same_snapshots(snapshot_from_images(direct, inst.module, inst.info),
                                        snapshot_from_images(images, inst.module, inst.info),
                                        'the set restored straight from the untranslated one '
                                        'and the translated set')
                        stage = f'restore in {nxt}'
                    ex = checkpoint.restore(store, inst, images, peers=peers)
                addr = _entry(inst, entry)
            except Exception as e:
                raise EngineFailure(f'hop {i} ({runtime} -> {nxt}) at step {at}, '
                                    f'{stage}: {type(e).__name__}: {e}') from e
        raise AssertionError('unreachable: the last hop runs to the end')
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _same_snapshots(a, b, what):
    """Two readings of what must be one state: the same by the oracle's own
    isomorphism (``structural``), and the engine's ``Snapshot`` equality
    (an API for users comparing checkpoints, ``gcheap.same_state``) must
    agree with it."""
    if structural(a) != structural(b):
        raise EngineFailure(f'{what} describe different states')
    if not a == b:
        raise EngineFailure(f'{what}: the same state, but Snapshot equality (gcheap.same_state) '
                            f'calls them different')


# the one change _differences_seen makes to an exception or a GC object:
# (attribute, new value from the old)
_HEAD_CHANGES = {'exception': ('tag', lambda tag: tag + 1),
                 'GC object': ('kind', lambda kind: 'array' if kind == 'struct' else 'struct'),
                 'GC type': ('typeidx', lambda typeidx: typeidx + 1)}


def _differences_seen(snap, seed, what):
    """The engine's ``Snapshot ==`` must see every difference, not only
    agree where two readings are one state: a deep copy of ``snap`` is
    equal to it; then, one at a time and undone after, the copy gets one
    change of each sort the state holds (a list one element short, a dict
    -- a reading's memory chunks -- one key short, an exception of another
    tag, a GC object of the other kind, one of the next type index, one
    place of an object held in several getting a copy of it instead),
    picked at random among those of
    its sort; where the oracle's ``structural`` sees the change, ``==``
    must say unequal both ways round (a lenient comparison is often so
    only one way: a length or key-set test turned into an inclusion)."""
    twin = copy.deepcopy(snap)
    base = structural(snap)
    if structural(twin) != base:        # an exception's GC fields: compared by identity there
        return
    if not (snap == twin and twin == snap):
        raise EngineFailure(f'{what}: Snapshot equality (gcheap.same_state) calls a deep copy of '
                            f'the state different')
    sites = {'list': [], 'dict': [], 'exception': [], 'GC object': []}
    sites['GC type'] = sites['GC object']       # the same objects, another change (drawn last)
    holders = {}                                # id of a GC object -> [(list, index) holding it]
    seen, todo = set(), [twin]
    while todo:
        v = todo.pop()
        if type(v) in _PLAIN or id(v) in seen:
            continue
        seen.add(id(v))
        if isinstance(v, list):
            if v:
                sites['list'].append(v)
            if any(type(e) not in _PLAIN for e in v):
                todo.extend(v)
                for i, e in enumerate(v):
                    if _gc_head(e) is not None and not isinstance(e, Struct):
                        holders.setdefault(id(e), []).append((v, i))
        elif isinstance(v, tuple):
            todo.extend(v)
        elif isinstance(v, dict):
            if v:
                sites['dict'].append(v)
            todo.extend(v.values())
        elif isinstance(v, Exn):
            sites['exception'].append(v)
            todo.extend(v.fields)
        elif _gc_head(v) is not None and not isinstance(v, Struct):
            sites['GC object'].append(v)
            todo.append(v.fields)
        elif isinstance(v, ExternRef):
            todo.append(v.value)
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            todo.extend(getattr(v, f.name) for f in dataclasses.fields(v))
    # an object held in two places or more: one of them gets a copy of it
    sites['shared GC object'] = [places for places in holders.values() if len(places) > 1]
    rng = random.Random(seed)
    for sort, found in sites.items():
        if not found:
            continue
        x = rng.choice(found)
        if sort == 'list':
            last = x.pop()
            undo = lambda: x.append(last)                               # noqa: E731
        elif sort == 'shared GC object':
            held, at = rng.choice(x)
            obj = held[at]
            held[at] = copy.copy(obj)
            held[at].fields = list(obj.fields)
            undo = lambda: held.__setitem__(at, obj)                    # noqa: E731
        elif sort == 'dict':
            key = rng.choice(list(x))
            value = x.pop(key)
            undo = lambda: x.__setitem__(key, value)                    # noqa: E731
        else:
            name, change = _HEAD_CHANGES[sort]
            old = getattr(x, name)
            setattr(x, name, change(old))
            undo = lambda: setattr(x, name, old)                        # noqa: E731
        try:
            if structural(twin) != base:
                try:
                    same = snap == twin or twin == snap
                except Exception as e:
                    raise EngineFailure(f'{what}: Snapshot equality (gcheap.same_state) raised '
                                        f'{type(e).__name__}: {e} on two states that differ in one '
                                        f'{sort}') from e
                if same:
                    raise EngineFailure(f'{what}: Snapshot equality (gcheap.same_state) calls two '
                                        f'states equal that differ in one {sort}')
        finally:
            undo()


def _held_while_running(ex, inst, saved, sha):
    """An API user may keep a checkpoint while the run goes on (to migrate
    it later, or twice): neither the saved set nor a WasmEdge snapshot taken
    with ``snapshot_wasmedge``'s default (a copy of the memory) may change
    as the run writes on.  The source runs ``HELD_STEPS`` further (by
    ``_run``: this side run is not part of the migrated run a custom
    runner records); the state it is in then is thrown away."""
    before = im.encode_files(saved)
    peers = linked.peers(ex.store, inst)
    held = checkpoint.snapshot_wasmedge(ex, inst, peers=peers) if ex.model == 'wasmedge' else None
    finished, _ = _run(ex, HELD_STEPS)
    if im.encode_files(saved) != before:
        raise EngineFailure(f'the saved image set changed as the run went on to step {ex.steps}: '
                            f'it shares state with the running executor')
    if held is not None:
        held.entry, held.results = saved.entry, saved.results
        if im.encode_files(images_from_snapshot(held, inst.module, inst.info, 'wasmedge', sha)) != before:
            raise EngineFailure(f'a snapshot held while the run went on to step {ex.steps} no longer '
                                f'describes the checkpoint: it shares state with the running executor')
        if not finished:
            _equality_agrees(held, ex, inst, peers)
    # a rollback: the checkpoint restored into the instance that ran on (its
    # memory and tables maybe grown, segments dropped, globals changed) is
    # the checkpoint again, nothing of the later state left
    back = checkpoint.restore(ex.store, inst, saved, peers=peers)
    again = checkpoint.save(back, inst, sha, saved.entry, saved.results, peers=peers)
    if im.encode_files(again) != before:
        raise EngineFailure(f'the checkpoint restored into its own instance after the run went on '
                            f'to step {ex.steps} (a rollback) saves as another state')


def _equality_agrees(held, ex, inst, peers):
    """The engine's state equality (``gcheap.same_state``, behind
    ``Snapshot.__eq__``) and the oracle's isomorphism must agree on each
    global and table of two states of one run, ``held`` and the state the
    run went on to: sometimes the same, sometimes not (an object of the same
    type but another length or other fields in its place)."""
    from engine.migrate import gcheap
    try:
        now = checkpoint.snapshot_wasmedge(ex, inst, peers=peers)
    except ForeignInstanceError:            # in a frame of the provider
        return
    for what, xs, ys in (('global', held.globals, now.globals), ('table', held.tables, now.tables)):
        for k, (x, y) in enumerate(zip(xs, ys)):
            same = structural(x) == structural(y)
            if gcheap.same_state(x, y) != same:
                raise EngineFailure(f'{what} {k} at the checkpoint and at step {ex.steps}: the oracle '
                                    f'finds them {"the same" if same else "different"}, Snapshot '
                                    f'equality (gcheap.same_state) does not')


def cli_loads(wasm):
    """Whether ``python -m engine`` can instantiate ``wasm``: it provides
    the spectest and WASI imports only, not a linked module's provider."""
    return all(imp.module in ('spectest', 'wasi_snapshot_preview1') for imp in _module(wasm).imports)


def _cli_translate(src, dst, runtime, layout):
    """``python -m engine translate`` in a child process, as a user runs
    it, on the engine being checked (its PYTHONPATH first)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(embedding.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    r = subprocess.run([sys.executable, '-m', 'engine', 'translate', src, '--to', runtime, '--out', dst,
                        '--frames', layout], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise EngineFailure(f'`engine translate {src} --to {runtime} --frames {layout}` exited '
                            f'{r.returncode}: {(r.stderr or r.stdout).strip()[-2000:]}')


def _tables_agree(images, inst, sha, image_dir):
    """A WAMR set's frames against the forks' type tables of the module
    (``fuzz.tablecheck``)."""
    if images.runtime == 'wamr':
        tablecheck.check(images, tablecheck.tables_of(inst.module, inst.info, sha,
                                                      os.path.join(image_dir, 'type-tables')),
                         'the set')


def _save(ex, inst, sha, entry, result_types, run=_run):
    """``checkpoint.save``, or, while the stack holds a frame of another
    instance (a call into the provider), the first point after it where an
    image set can hold the run; its links must name the defining peers
    (``links_name_definers``).  Returns (images, ended, trap): ``ended``
    when the run finished first (``trap``: its trap message or None)."""
    peers = linked.peers(ex.store, inst)
    while True:
        try:
            images = checkpoint.save(ex, inst, sha, entry, result_types, peers=peers)
            links_name_definers(images, ex.store, peers)
            return images, False, None
        except ForeignInstanceError as e:
            if not holds_foreign(ex, inst, peers):
                raise EngineFailure(f'save refused a checkpoint at step {ex.steps} ({e}), but no '
                                    f'frame, value, global or table entry of the run belongs to '
                                    f'another instance') from e
            finished, trap = run(ex, 1)
            if finished:
                return None, True, trap


def links_name_definers(images, store, peers):
    """docs/images.md "Links": a link names the peer that *defines* the
    function when one does, whatever other peer imports it too (the relay
    of fuzz.linked holds a function of the provider), by the first of its
    names (fuzz.linked names the provider twice), else the first peer
    holding it; the restore could not tell, as every such name resolves
    to one address in a store made alike."""
    for k, link in enumerate(images.links):
        addr = peers[link.instance].funcaddrs[link.fidx]
        owner = store.funcs[addr].module
        definer = next((name for name, p in peers.items() if p is owner), None)
        want = definer if definer is not None else \
            next(name for name, p in peers.items() if addr in p.funcaddrs)
        if link.instance != want:
            why = (f'peer {want!r} defines that function (docs/images.md "Links": the defining '
                   f'peer, by its first name)' if definer is not None else
                   f'no peer defines that function and {want!r} holds it first (docs/images.md '
                   f'"Links")')
            raise EngineFailure(f'link {k} names {link}, but {why}')


def holds_foreign(ex, inst, peers=None):
    """The oracle's own reason for a refused checkpoint: a frame runs a
    function of another instance, or the address of a function that is not
    ``inst``'s nor one of ``peers``' (which a save links to) sits on the
    stack, in a global or in a table of ``inst`` (for a single-instance
    module, or a linked one with its provider as the peer: never).  Without
    this check a save that wrongly refuses (e.g. a null funcref taken for a
    foreign one, a link not found among the peers) would only move the
    checkpoint later and go unnoticed."""
    store = ex.store
    if any(getattr(store.funcs[f.func], 'module', None) is not inst for f in ex.frames):
        return True
    foreign = set(range(len(store.funcs))) - set(inst.funcaddrs)
    for peer in (peers or {}).values():
        foreign -= set(peer.funcaddrs)
    if not foreign:
        return False
    values = list(ex.stack) + [store.globals[a].value for a in inst.globaladdrs]
    values += [v for a in inst.tableaddrs for v in store.tables[a].elem]
    return any(type(v) is int and v in foreign for v in values)


def _via_neutral(images, inst, directory, wasm, runtime, hidden=frozenset()):
    """The set as neutral.json on disk, read back: (the set written in
    ``runtime`` from it, the document's snapshot).  ``hidden``: as
    ``imagecheck.check_nothing_left_beside``."""
    snap = snapshot_from_images(images, inst.module, inst.info)
    doc = neutral.document_from_snapshot(snap, inst.module, inst.info, images.module_sha256)
    neutral.write_neutral(doc, directory, extra={'module.wasm': wasm})
    neutralcheck.check_dir(directory, inst.module)
    imagecheck.check_extra(directory, {'module.wasm': wasm})
    imagecheck.check_nothing_left_beside(directory, hidden)
    doc = _load_dir(directory, dict, wasm)
    snap = neutral.snapshot_from_document(doc, inst.module, inst.info)
    if images.steps % 3 == 1:   # a third of the hops (their snapshot: migrated's refusal check)
        refusal.check_document(doc, inst.module, inst.info, f'{images.module_sha256}:{images.steps}')
    # a JSON object's members have no order (RFC 8259): another writer may
    # put them in any, and the document must read as the same state
    try:
        other = neutral.snapshot_from_document(_members_reversed(doc), inst.module, inst.info)
    except WasmError as e:
        raise EngineFailure(f'neutral.json with its objects\' members in reverse order is refused: '
                            f'{e}') from e
    if structural(other) != structural(snap):
        raise EngineFailure('neutral.json with its objects\' members in reverse order reads as '
                            'another state')
    return images_from_snapshot(snap, inst.module, inst.info, runtime, images.module_sha256), snap


def _load_dir(directory, kind, wasm):
    """The set or document in ``directory`` read as ``engine restore`` and
    ``translate`` read a folder (``cli.load_any``: a neutral document or an
    image set, told apart by its files, and checked against the
    ``module.wasm`` beside it); it must be of ``kind`` (ImageSet or dict)."""
    from engine import cli
    got, data, _ = cli.load_any(directory)
    if not isinstance(got, kind) or data != wasm:
        raise EngineFailure(f'{directory} (written as {"neutral.json" if kind is dict else "an image set"}) '
                            f'reads as {"neutral.json" if isinstance(got, dict) else "an image set"}'
                            + ('' if data == wasm else ' with another module.wasm'))
    return got


def _members_reversed(x):
    """A JSON value with every object's members in reverse order."""
    if isinstance(x, dict):
        return {k: _members_reversed(x[k]) for k in reversed(list(x))}
    if isinstance(x, list):
        return [_members_reversed(v) for v in x]
    return x


# ---------------------------------------------------------------- comparing

def _show(v):
    if isinstance(v, ExternRef):
        return f'ref.extern {v.value}'
    if isinstance(v, tuple) and len(v) == 2 and v[0] == 'extern':
        return f'ref.extern {_show(v[1])}'      # an externalized GC object (gc_views)
    if v is None:
        return 'null'
    if isinstance(v, int):
        return hex(v)
    if isinstance(v, tuple) and len(v) == 2 and v[0] == 'gc':
        return f'#{v[1]}'           # a GCRef's field referring to another object
    if isinstance(v, tuple) and len(v) == 3 and v[0] == 'exn':     # an exception carrying objects
        return f'exn {v[1]}(' + ', '.join(_show(f) for f in v[2]) + ')'
    return repr(v)


def _heap_note(e, a):
    """Why two GC references that print alike differ: the rest of the heap
    (what they share with other roots, what they reach)."""
    if isinstance(e, GCRef) and isinstance(a, GCRef) and repr(e) == repr(a):
        return ' (alike, but the heaps differ: sharing or objects reached)'
    return ''


def _first_diff(a, b):
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def compare(expected: Outcome, actual: Outcome, label, steps=True) -> List[str]:
    """Mismatch lines of ``actual`` against ``expected``."""
    out = []
    if expected.trap != actual.trap:
        out.append(f'{label}: trap {actual.trap!r}, expected {expected.trap!r}')
    elif expected.results != actual.results:
        out.append(f'{label}: results [{", ".join(map(_show, actual.results or []))}], '
                   f'expected [{", ".join(map(_show, expected.results or []))}]')
    if steps and expected.steps != actual.steps:
        out.append(f'{label}: {actual.steps} instructions executed, expected {expected.steps}')
    if expected.memory != actual.memory:
        if expected.memory is None or actual.memory is None:
            out.append(f'{label}: memory presence differs')
        elif len(expected.memory) != len(actual.memory):
            out.append(f'{label}: memory is {len(actual.memory) // 65536} pages, '
                       f'expected {len(expected.memory) // 65536}')
        else:
            i = _first_diff(expected.memory, actual.memory)
            ndiff = sum(1 for x, y in zip(expected.memory, actual.memory) if x != y)
            out.append(f'{label}: memory differs in {ndiff} bytes, first at 0x{i:x} '
                       f'(0x{actual.memory[i]:02x}, expected 0x{expected.memory[i]:02x})')
    for k, (e, a) in enumerate(zip(expected.memories[1:], actual.memories[1:]), 1):
        if e != a:                      # memories after memory 0 (multi-memory)
            if len(e) != len(a):
                out.append(f'{label}: memory {k} is {len(a) // 65536} pages, expected {len(e) // 65536}')
            else:
                i = _first_diff(e, a)
                out.append(f'{label}: memory {k} differs in {sum(x != y for x, y in zip(e, a))} bytes, '
                           f'first at 0x{i:x} (0x{a[i]:02x}, expected 0x{e[i]:02x})')
    if len(expected.memories) != len(actual.memories):
        out.append(f'{label}: {len(actual.memories)} memories, expected {len(expected.memories)}')
    for k, (e, a) in enumerate(zip(expected.globals, actual.globals)):
        if e != a:
            out.append(f'{label}: global {k} = {_show(a)}, expected {_show(e)}' + _heap_note(e, a))
    if len(expected.globals) != len(actual.globals):
        out.append(f'{label}: {len(actual.globals)} globals, expected {len(expected.globals)}')
    for what, es, acts in (('table', expected.tables, actual.tables),
                           ('element segment', expected.elems, actual.elems)):
        for k, (e, a) in enumerate(zip(es, acts)):
            if e != a:
                if len(e) != len(a):
                    out.append(f'{label}: {what} {k} has {len(a)} entries, expected {len(e)}')
                else:
                    i = _first_diff(e, a)
                    out.append(f'{label}: {what} {k}[{i}] = {_show(a[i])}, expected {_show(e[i])}'
                               + _heap_note(e[i], a[i]))
    if len(expected.elems) != len(actual.elems):
        out.append(f'{label}: {len(actual.elems)} element segments, expected {len(expected.elems)}')
    return out


def _wasmtime_view(o: Outcome):
    """The uninterrupted outcome as wasmtime_oracle reports it: exported
    entities by name, funcrefs only as null / non-null."""
    from fuzz.wasmtime_oracle import NONNULL_FUNCREF

    def ref(v):
        foreign = isinstance(v, tuple) and v[:1] == ('foreign funcref address',)   # a link
        return NONNULL_FUNCREF if foreign or isinstance(v, int) and not isinstance(v, bool) else v
    mems, globs, tabs = {}, {}, {}
    for name, (kind, idx) in o.exports.items():
        if kind == 'memory' and idx is not None and idx < len(o.memories):
            mems[name] = o.memories[idx]
        elif kind == 'global':
            globs[name] = o.globals[idx]
        elif kind == 'table':
            tabs[name] = o.tables[idx]
    return mems, globs, tabs, ref


def wasmtime_runs(wasm):
    """Whether the wasmtime comparison applies to ``wasm`` (see
    ``compare_wasmtime``)."""
    from fuzz import wasmtime_oracle as wo
    return wo.can_run(wasm)


def compare_wasmtime(wasm, entry, args, ref: Outcome) -> List[str]:
    """Mismatch lines of our uninterrupted outcome against wasmtime; none
    for a module wasmtime cannot run (legacy exception handling:
    ``wasmtime_oracle.can_run``), whose checks are the models', tiers' and
    migrations' only."""
    from fuzz import wasmtime_oracle as wo
    if not wasmtime_runs(wasm):
        return []
    try:
        w = wo.run(wasm, entry, list(args))
    except Exception as e:
        return [f'wasmtime: cannot run the module: {type(e).__name__}: {e}']
    out = []
    result_types = wo.export_types(wasm)[entry][1][1]
    if ref.trap is not None or w.trap is not None:
        ours = (ref.trap or '').replace('instantiation: ', '')
        if w.trap is None or ref.trap is None or not ours.startswith(w.trap):
            out.append(f'wasmtime: trap {w.trap!r}, engine {ref.trap!r}')
    else:
        mems, globs, tabs, conv = _wasmtime_view(ref)
        ours = [conv(v) if t == 'funcref' else v for t, v in zip(result_types, ref.results)]
        if ours != w.results:
            out.append(f'wasmtime: results [{", ".join(map(_show, w.results))}], '
                       f'engine [{", ".join(map(_show, ours))}]')
    if ref.trap is None or not ref.trap.startswith('instantiation'):
        mems, globs, tabs, conv = _wasmtime_view(ref)
        for name, data in w.memories.items():
            if mems.get(name) != data:
                mine = mems.get(name) or b''
                i = _first_diff(mine, data)
                out.append(f'wasmtime: memory {name!r} differs (first at 0x{i:x}; '
                           f'{len(data)} vs engine {len(mine)} bytes)')
        for name, v in w.globals.items():
            mine = globs.get(name)
            mine = conv(mine) if v == wo.NONNULL_FUNCREF else mine
            if mine != v:
                out.append(f'wasmtime: global {name!r} = {_show(v)}, engine {_show(mine)}')
        for name, entries in w.tables.items():
            mine = [conv(v) for v in tabs.get(name, [])]
            if mine != entries:
                out.append(f'wasmtime: table {name!r} differs from engine')
    return out


def clamp(hops, total):
    """Checkpoint budgets cut so that every checkpoint falls strictly before
    the run's end (``total`` instructions): a hop whose checkpoint would lie
    beyond the end is given the remaining instructions minus one, or 0."""
    out, done = [], 0
    for i, (rt, n) in enumerate(hops):
        if i == len(hops) - 1:
            out.append((rt, None))
            break
        n = max(0, min(int(n), total - 1 - done))
        done += n
        out.append((rt, n))
    return out


def check(wasm, entry, args, hops, reference='wasmedge', wasmtime=False,
          image_dir=None, ref=None, tier=TIER) -> List[str]:
    """Mismatch lines (empty when all agree) of the migrated run ``hops``
    against the uninterrupted run in ``reference`` (``ref`` reuses an
    outcome already computed), and of the uninterrupted run against
    wasmtime when ``wasmtime`` is set (only meaningful for modules whose
    NaNs are canonicalised).  Both runs use ``tier``."""
    out = []
    if ref is None:
        try:
            ref = uninterrupted(wasm, entry, args, reference, tier=tier)
        except Exception as e:
            return [f'uninterrupted run in {reference} failed: {type(e).__name__}: {e}'
                    + _where(e)]
    if wasmtime:
        out += compare_wasmtime(wasm, entry, args, ref)
    hops = clamp(hops, ref.steps)
    try:
        mig = migrated(wasm, entry, args, hops, image_dir, tier=tier)
    except EngineFailure as e:
        return out + [f'migrated run {describe(hops)}: {e}' + _where(e.__cause__ or e)]
    except Exception as e:
        return out + [f'migrated run {describe(hops)}: {type(e).__name__}: {e}' + _where(e)]
    # instruction counts are compared only within one model: the two
    # interpreters need not count the same way
    out += compare(ref, mig, f'migrated {describe(hops)}',
                   steps=all(model(rt) == reference for rt, _ in hops))
    return out


def compare_tiers(wasm, entry, args, ref: Outcome, runtime='wasmedge', tier=TIER) -> List[str]:
    """Mismatch lines of the uninterrupted run in ``runtime`` under the
    other tier against ``ref`` (the same run under ``tier``).  One model
    counts the same in both tiers, so the instruction count is compared too."""
    other = other_tier(tier)
    label = f'uninterrupted {runtime} under the {other} tier (against the {tier} tier)'
    try:
        out = uninterrupted(wasm, entry, args, runtime, tier=other)
    except Exception as e:
        return [f'{label} failed: {type(e).__name__}: {e}' + _where(e)]
    return compare(ref, out, label)


def compare_counts(wasm, entry, args, wasmedge: Outcome, wamr: Outcome) -> List[str]:
    """Mismatch lines of the two models' instruction counts of one run
    against docs/images.md's relation, with the jumps counted by an
    independent walk (``fuzz.countcheck``; runs up to COUNT_WALK_STEPS)."""
    if STEP_LIMIT in (wasmedge.trap, wamr.trap) or wamr.steps > COUNT_WALK_STEPS:
        return []
    store = embedding.store_init('wamr', tier='interp')
    try:
        inst = _instantiate(store, wasm, True)
    except Trap:
        return []
    ex = store.new_executor()
    ex.start(_entry(inst, entry), list(args))
    ev = countcheck.events(ex, COUNT_WALK_STEPS + 1)
    if ev is None or ex.steps != wamr.steps:
        return [] if ev is None else [f'counts: the stepped WAMR run counted {ex.steps} instructions, '
                                      f'the uninterrupted one {wamr.steps}']
    want = ev.wasmedge_count(wamr.steps)
    if want == wasmedge.steps:
        return []
    return [f'counts: WasmEdge model {wasmedge.steps} instructions, WAMR model {wamr.steps}; with '
            f'{ev} (an independent walk) docs/images.md gives WasmEdge {want}']


def chunks_reversed(images):
    """The same image set with every memory's chunks in the opposite order."""
    return dataclasses.replace(
        images, memory=dict(reversed(images.memory.items())),
        memories=[dataclasses.replace(m, chunks=dict(reversed(m.chunks.items())))
                  for m in images.memories])


def _where(e):
    """The innermost engine frame of an unexpected exception (not for the
    engine's own Wasm errors, whose messages already say where)."""
    if isinstance(e, WasmError) or e is None:
        return ''
    tb = traceback.extract_tb(e.__traceback__)
    for fr in reversed(tb):
        if '/engine/' in fr.filename:
            return f' [{os.path.basename(fr.filename)}:{fr.lineno} in {fr.name}]'
    return ''


def describe(hops):
    return ' -> '.join(f'{rt}' + (f'@{n}' if n is not None else '') for rt, n in hops)


# ---------------------------------------------------------------- plans

def plans(rng: random.Random, total, runtimes=None, multi=True, stops=(), cli=False):
    """Hop chains for one run of ``total`` instructions: one single
    checkpoint for every ordered pair of runtime models, at a random point,
    and multi-hop chains A->B->A->B starting from each model; then, for
    each of ``stops`` (counts the generator knows to be worth one, e.g. the
    bottom of a deep call chain) inside the run, a checkpoint there from
    each model into the other.  ``cli``: the command line can load the
    module (``cli_loads``), so a hop may go through it."""
    runtimes = tuple(runtimes or available_runtimes())
    out = []

    def point(lo=0):
        return rng.randint(lo, max(lo, total - 1)) if total > 0 else 0
    for a in runtimes:
        for b in runtimes:
            out.append([(a, point()), (b, None)])
    for k, a in enumerate(runtimes):
        # the route through the runtime-neutral form, into the other model
        out.append([(a, point()), (NEUTRAL + runtimes[(k + 1) % len(runtimes)], None)])
    for k, a in enumerate(runtimes):
        # the last instruction: whatever the run's control state accumulated
        # (a label a branch forgot to pop) is still there to be checked
        if total > 1:
            out.append([(a, total - 1), (runtimes[(k + 1) % len(runtimes)], None)])
    if multi:
        for k, a in enumerate(runtimes):
            b = runtimes[(k + 1) % len(runtimes)]
            cuts = sorted(point() for _ in range(3))
            budgets = [cuts[0], cuts[1] - cuts[0], cuts[2] - cuts[1]]
            out.append([(a, budgets[0]), (NEUTRAL + b, budgets[1]), (a, budgets[2]), (b, None)])
    for s in stops:
        if 0 < s < total:
            for k, a in enumerate(runtimes):
                out.append([(a, s), (runtimes[(k + 1) % len(runtimes)], None)])
            # and through neutral.json: a deep stop's frame indices pass 256,
            # beyond CPython's cached small ints (an `is` taken for `==`)
            out.append([(runtimes[-1], s), (NEUTRAL + runtimes[0], None)])
    # drawn after every older choice: now and then one single hop into the
    # other model goes through the command line instead of the API
    singles = [k for k, h in enumerate(out) if len(h) == 2 and h[1][0] in runtimes and h[0][0] != h[1][0]]
    if cli and singles and rng.random() < CLI_SHARE:
        k = rng.choice(singles)
        out[k] = [out[k][0], (CLI + out[k][1][0], None)]
    return out


# ---------------------------------------------------------------- case files

def encode_value(v):
    """A Wasm value (engine representation) for case.json."""
    if isinstance(v, ExternRef):
        return {'externref': v.value}
    return v


def decode_value(v):
    if isinstance(v, dict):
        if set(v) != {'externref'} or not isinstance(v['externref'], int):
            raise ValueError(f'bad value {v!r}: expected an integer, null or {{"externref": n}}')
        return ExternRef(v['externref'])
    if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
        raise ValueError(f'bad value {v!r}: expected an unsigned integer bit pattern, null or '
                         f'{{"externref": n}}')
    return v


# ---------------------------------------------------------------- one module

@dataclass
class Failure:
    """The first failing check of a module: enough to replay it (``tier``:
    the tier the failing check ran under, when not the campaign's;
    ``entry``: the export it called, when not the module's entry)."""
    args: tuple
    hops: list
    mismatch: List[str]
    tier: Optional[str] = None
    entry: Optional[str] = None     # when not the module's entry (a host function's export)


def check_module(wasm, entry, args_list, rng, wasmtime=True, runtimes=None,
                 reference='wasmedge', max_args=2, tier=TIER, stops=()):
    """Every check for one module: per argument tuple, the uninterrupted run
    against wasmtime, against itself under the other tier and against the
    other runtime model (itself checked under the other tier too), then
    migrated runs along ``plans`` (``stops``:
    the generator's ``GeneratedModule.stops``, plus the first and the last
    catch of the uninterrupted run); the uninterrupted runs and
    the single-checkpoint plans under ``tier``, the tier check, the
    multi-hop chains and the stops' plans under the other tier.  Then the
    same for every host function the module re-exports (``host_entries``:
    an entry without code), with arguments from ``rng``.  Returns (number
    of checks, first Failure or None)."""
    runtimes = tuple(runtimes or available_runtimes())
    checks = 0
    for args in list(args_list)[:max_args]:
        n, failure = _check_call(wasm, entry, tuple(args), rng, wasmtime, runtimes, reference, tier, stops)
        checks += n
        if failure is not None:
            return checks, failure
    for name, ft in host_entries(wasm):
        args = tuple(rng.getrandbits(32) for _ in ft.params)
        n, failure = _check_call(wasm, name, args, rng, wasmtime, runtimes, reference, tier, ())
        checks += n
        if failure is not None:
            failure.entry = name
            return checks, failure
    return checks, None


def host_entries(wasm):
    """(export name, type) of the functions ``wasm`` imports from the
    embedder (``fuzz.linked.HOST``) and exports again."""
    module = _module(wasm)
    fimps = [imp for imp in module.imports if imp.kind == 'func']
    return [(e.name, module.types[fimps[e.index].desc]) for e in module.exports
            if e.kind == 'func' and e.index < len(fimps) and fimps[e.index].module == linked.HOST]


def _check_call(wasm, entry, args, rng, wasmtime, runtimes, reference, tier, stops):
    """(checks, first Failure or None) of one call: see ``check_module``."""
    checks = 0
    try:
        ref = uninterrupted(wasm, entry, args, reference, tier=tier)
    except Exception as e:
        return checks + 1, Failure(args, [(reference, None)], [
            f'uninterrupted run in {reference} failed: {type(e).__name__}: {e}' + _where(e)])
    if wasmtime and wasmtime_runs(wasm):
        checks += 1
        bad = compare_wasmtime(wasm, entry, args, ref)
        if bad:
            return checks, Failure(args, [(reference, None)], bad)
    checks += 1
    bad = compare_tiers(wasm, entry, args, ref, reference, tier)
    if bad:
        return checks, Failure(args, [(reference, None)], bad)
    for rt in runtimes:
        if rt == reference:
            continue
        checks += 1
        try:
            other = uninterrupted(wasm, entry, args, rt, tier=tier)
            bad = compare(ref, other, f'uninterrupted {rt}', steps=False)
            if not bad and {reference, rt} == {'wasmedge', 'wamr'}:
                bad = compare_counts(wasm, entry, args, *((ref, other) if rt == 'wamr' else (other, ref)))
        except Exception as e:
            bad = [f'uninterrupted run in {rt} failed: {type(e).__name__}: {e}' + _where(e)]
        if bad:
            return checks, Failure(args, [(rt, None)], bad)
        checks += 1                     # that model's compiled tier against its interpreter
        bad = compare_tiers(wasm, entry, args, other, rt, tier)
        if bad:
            return checks, Failure(args, [(rt, None)], bad)
    # the first and the last catch are stops too: there the state is what
    # unwinding wrote (operands cut to the handler's label, the exception's
    # values and exnref pushed) before any handler instruction uses it
    stops = tuple(stops) + tuple(c for c in sorted(set(ref.catches)) if c not in stops)
    for hops in plans(rng, ref.steps, runtimes, stops=stops, cli=cli_loads(wasm)):
        checks += 1
        # the multi-hop chains and the generator's stops run under the
        # other tier: the compiled tier hands only a stop's last few
        # instructions to the interpreter, whose own call and branch
        # bookkeeping a checkpoint would otherwise seldom see; so does the
        # WAMR model's checkpoint at the last instruction, where every
        # label the interpreter's branches forgot to pop is still held
        run_tier = other_tier(tier) if len(hops) > 2 or hops[0][1] in stops \
            or hops[0] == ('wamr', ref.steps - 1) else tier
        bad = check(wasm, entry, args, hops, reference, ref=ref, tier=run_tier)
        if bad:
            return checks, Failure(args, clamp(hops, ref.steps), bad,
                                   run_tier if run_tier != tier else None)
    return checks, None


def case_rng(data: bytes):
    """The checkpoint-point chooser of a byte-driven case (atheris, smith):
    a function of the input only, so a saved input replays exactly."""
    import hashlib
    return random.Random(hashlib.sha256(b'plans:' + bytes(data)).digest())
