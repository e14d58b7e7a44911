"""Migration mode: every call of a script, stopped and moved between the
runtime models at several instruction counts, must end exactly as the
uninterrupted run did (issue 3's acceptance test).

For one call of function ``funcaddr`` the check is:

1. capture the whole store (memories, tables, globals, element and data
   segments of every instance, since the call may reach other instances);
2. run it uninterrupted in model A: total steps N, results, final store;
3. for each checkpoint count k (1, N//2, N-1 and two random ones, all in
   0..N-1 so that the run is still going): reset the store, run k steps in
   A, ``checkpoint.save``, encode to the image files' bytes and decode them,
   translate to model B, restore in B, run one more step, save again,
   encode/decode, translate back to A through the runtime-neutral form
   (neutral.json bytes and its checking reader), restore, run to the end; then compare
   results and the whole store with the uninterrupted run, bit for bit.
   Before each restore the instance's own memory, tables, globals and
   segments are put back to their state *before the call*, so whatever the
   resumed run sees of them can only come from the images;
4. leave the store in the uninterrupted run's final state.

An image set describes one instance (as in the migration forks).  A
reference to a function of another instance is saved as a link to it by
name (engine/migrate/links.py): the runner passes every instance the script
made as ``peers`` to the save and the restore, named by its registered
name, ``$id``, else ``line N`` of its module command (so an anonymous
module, or one whose instantiation trapped after writing its functions
into a shared table, is linked too; docs/images.md "Limits").  While the
stack holds a *frame* of another instance, the run goes on instruction by
instruction to the next point where it can be saved.  A call with no such
point is skipped with the reason, not failed (none in the pinned 2.0 and
3.0 suites since links, against 21 and 30 per direction before); so is a
point whose GC heap holds what an image set cannot express (an object of a
type the module does not define: ``checkpoint.GCHeapError``).  GC state itself migrates
(``engine/migrate/gcheap.py``); GC results and store contents are compared
with the uninterrupted run's by graph isomorphism (types, field values and
sharing), since the migrated run's objects are rebuilt ones.
"""

import hashlib
import random

from engine.migrate import checkpoint, images as im, neutral, translate as tr
from engine.migrate.checkpoint import CheckpointError, ForeignInstanceError
from engine.errors import Exhaustion, Trap, WasmError
from engine.syntax import Exn, ExternRef, Struct

RUNTIMES = ('wasmedge', 'wamr')
SKIP_REASONS_KEPT = 20


def other_runtime(runtime):
    """Model B for a run starting in ``runtime``."""
    return 'wamr' if runtime == 'wasmedge' else 'wasmedge'


class MigrationMismatch(Exception):
    """A migrated run did not end like the uninterrupted one."""


# ------------------------------------------------------------ store state

class StoreState:
    """Copies of every mutable part of a store (cheap: bytes and lists)."""

    __slots__ = ('mems', 'tables', 'globals', 'elems', 'datas')

    def __init__(self, store):
        self.mems = [(bytes(m.data), m.type, bytes(m.dirty)) for m in store.mems]
        self.tables = [(list(t.elem), t.type) for t in store.tables]
        self.globals = [g.value for g in store.globals]
        self.elems = [list(e.elem) for e in store.elems]
        self.datas = [d.data for d in store.datas]

    def apply(self, store, inst=None):
        """Put the store (or only ``inst``'s parts) back into this state.
        Memories and tables change in place: pre-decoded code holds them."""
        if inst is None:
            mems, tables = range(len(self.mems)), range(len(self.tables))
            globs, elems, datas = range(len(self.globals)), range(len(self.elems)), range(len(self.datas))
        else:
            mems, tables, globs = inst.memaddrs, inst.tableaddrs, inst.globaladdrs
            elems, datas = inst.elemaddrs, inst.dataaddrs
        for a in mems:
            data, typ, dirty = self.mems[a]
            m = store.mems[a]
            if m.data != data:
                m.resize(data)
            m.dirty[:] = dirty
            m.type = typ
        for a in tables:
            elem, typ = self.tables[a]
            t = store.tables[a]
            if t.elem != elem:
                t.elem[:] = elem
            t.type = typ
        for a in globs:
            store.globals[a].value = self.globals[a]
        for a in elems:
            store.elems[a].elem = list(self.elems[a])
        for a in datas:
            store.datas[a].data = self.datas[a]

    def diff(self, store):
        """First difference of the live ``store`` to this state as text, or
        None when they are equal (no copies: this runs once per checkpoint).
        GC objects are paired once across the whole store (``_same``)."""
        seen = {}
        same = lambda x, y: _same(x, y, seen)      # noqa: E731
        for a, (m, (d2, t2, _)) in enumerate(zip(store.mems, self.mems)):
            d1 = m.data
            if d1 != d2:
                if len(d1) != len(d2):
                    return f'memory {a}: {len(d1) // 65536} pages, uninterrupted run has {len(d2) // 65536}'
                pos = next(i for i in range(len(d1)) if d1[i] != d2[i])
                return f'memory {a} byte {pos:#x}: {d1[pos]:#04x}, uninterrupted run has {d2[pos]:#04x}'
            if _limits(m.type) != _limits(t2):
                return f'memory {a} limits: {_limits(m.type)}, uninterrupted run has {_limits(t2)}'
        for a, (t, (e2, t2)) in enumerate(zip(store.tables, self.tables)):
            e1 = t.elem
            if len(e1) != len(e2) or not all(map(same, e1, e2)):
                if len(e1) != len(e2):
                    return f'table {a}: {len(e1)} entries, uninterrupted run has {len(e2)}'
                pos = next(i for i in range(len(e1)) if not _same(e1[i], e2[i], dict(seen)))
                return f'table {a} entry {pos}: {_show(e1[pos])}, uninterrupted run has {_show(e2[pos])}'
            if _limits(t.type) != _limits(t2):
                return f'table {a} limits: {_limits(t.type)}, uninterrupted run has {_limits(t2)}'
        for a, (g, v2) in enumerate(zip(store.globals, self.globals)):
            if not same(g.value, v2):
                return f'global {a}: {_show(g.value)}, uninterrupted run has {_show(v2)}'
        for a, (e, e2) in enumerate(zip(store.elems, self.elems)):
            if len(e.elem) != len(e2) or not all(map(same, e.elem, e2)):
                return f'element segment {a}: {len(e.elem)} refs, uninterrupted run has {len(e2)}'
        for a, (d, d2) in enumerate(zip(store.datas, self.datas)):
            if d.data != d2:
                return f'data segment {a}: {len(d.data)} bytes, uninterrupted run has {len(d2)}'
        return None


def _limits(t):
    lim = getattr(t, 'limits', None)
    return (lim.min, lim.max) if lim is not None else t


def _same(a, b, seen=None):
    """Bit-exact equality of two values (type included: 0 is not null).
    GC objects of two separate runs are the same when the graphs they span
    are isomorphic: one-to-one paired objects of equal types and fields
    (so sharing and cycles must match too, not identity).  ``seen``: the
    pairing so far, shared across the values of one comparison."""
    if type(a) is not type(b):
        return False
    if isinstance(a, Struct):          # Array too
        seen = {} if seen is None else seen
        pa, pb = seen.get(('a', id(a))), seen.get(('b', id(b)))
        if pa is not None or pb is not None:
            return pa is b and pb is a
        seen[('a', id(a))], seen[('b', id(b))] = b, a
        return a.type == b.type and len(a.fields) == len(b.fields) and \
            all(_same(x, y, seen) for x, y in zip(a.fields, b.fields))
    if isinstance(a, ExternRef) and isinstance(a.value, Struct):     # an externalized one
        return _same(a.value, b.value, seen)
    if isinstance(a, Exn):      # a value: its fields may be objects, compared as above
        return a.tag == b.tag and len(a.fields) == len(b.fields) and \
            all(_same(x, y, seen) for x, y in zip(a.fields, b.fields))
    return a == b


def same_values(xs, ys):
    """``_same`` over two lists with one pairing: two results that are one
    object must be one object in the other run too."""
    seen = {}
    return len(xs) == len(ys) and all(_same(x, y, seen) for x, y in zip(xs, ys))


def _show(v):
    if v is None:
        return 'null'
    if isinstance(v, int):
        return hex(v)
    return repr(v)


def foreign(error):
    """A documented limit (a frame of another instance, or a funcref of an
    instance that is not a named peer; GC heap state an image set cannot
    express, checkpoint.GCHeapError), not an inconsistency that is a bug:
    the call is skipped with the reason."""
    return isinstance(error, (checkpoint.ForeignInstanceError, checkpoint.GCHeapError))


# ------------------------------------------------------------ image bytes

def roundtrip(images):
    """The image set through its file bytes and back (``images.encode_files``
    and the checking reader), so every hop exercises the on-disk format."""
    return im.decode_files(im.encode_files(images))




# ------------------------------------------------------------ one call

def checkpoint_points(n, seed):
    """Instruction counts to stop at: first, middle, last and two random
    ones, all < n (a stop needs the run to be unfinished)."""
    if n < 1:
        return []
    rng = random.Random(seed)
    points = {1, n // 2, n - 1, rng.randrange(n), rng.randrange(n)}
    return sorted(p for p in points if 0 <= p < n)


class CallReport:
    __slots__ = ('steps', 'points', 'checkpoints', 'skipped', 'mismatch')

    def __init__(self):
        self.steps = 0
        self.points = 0          # checkpoint counts tried
        self.checkpoints = 0     # saves done (two per point unless the run ends first)
        self.skipped = None      # reason, when the call cannot be migrated
        self.mismatch = None     # first difference, as text


def _sha_of(inst):
    """A stable stand-in for the module binary's digest (the images only
    need it to refuse a foreign module, which cannot happen here)."""
    sha = getattr(inst.module, '_migration_sha', None)
    if sha is None:
        sha = hashlib.sha256(repr(id(inst.module)).encode()).hexdigest()
        try:
            inst.module._migration_sha = sha
        except AttributeError:
            pass
    return sha


def run_uninterrupted(store, funcaddr, args, runtime=None):
    """(executor, results) of the call run to its end (store's model by default)."""
    ex = store.new_executor(runtime)
    ex.start(funcaddr, list(args))
    ex.run()
    return ex, list(ex.results or [])


def migrate_call(store, funcaddr, args, a, b, seed, points=None, before=None, peers=None):
    """Run the call uninterrupted in model ``a`` and migrated ``a -> b -> a``
    at each checkpoint count; returns (results, report).  ``points``: the
    counts, or a function of the total step count giving them (default:
    ``checkpoint_points`` seeded with ``seed``).  ``peers``: the other
    instances by name, whose functions the images then hold as links.

    ``before`` is the store state before the call (captured if None).
    Traps and exhaustion of the uninterrupted run propagate as they would
    from a plain invoke; the store is left as the uninterrupted run left it.
    """
    if before is None:
        before = StoreState(store)
    fi = store.funcs[funcaddr]
    ex, results = run_uninterrupted(store, funcaddr, args, a)
    report = CallReport()
    report.steps = ex.steps
    if fi.host is not None or ex.steps < 1:
        return results, report
    after = StoreState(store)
    inst = fi.module
    sha = _sha_of(inst)
    result_types = list(fi.type.results)
    if points is None:
        points = checkpoint_points(ex.steps, seed)
    elif callable(points):
        points = points(ex.steps)
    migrated_points = 0
    try:
        for k in points:
            report.points += 1
            where = f'checkpoint at {k}/{ex.steps} ({a}->{b}->{a})'
            try:
                got, saves = _migrated_run(store, inst, funcaddr, args, k, a, b,
                                           before, sha, result_types, 4 * ex.steps + 10000, peers)
            except CheckpointError as e:
                if not foreign(e):
                    report.mismatch = f'{where}: CheckpointError: {e}'
                    break
                report.skipped = f'cannot checkpoint: {e}'
                continue                    # no own-instance point from k on
            except (Trap, Exhaustion) as e:
                report.mismatch = f'{where}: resumed run raised {type(e).__name__}: {e}'
                break
            except WasmError as e:
                report.mismatch = f'{where}: {type(e).__name__}: {e}'
                break
            except MigrationMismatch as e:
                report.mismatch = f'{where}: {e}'
                break
            except Exception as e:          # a crash in save/translate/restore
                report.mismatch = f'{where}: internal error: {type(e).__name__}: {e}'
                break
            report.checkpoints += saves
            migrated_points += 1
            if len(got) != len(results) or not same_values(got, results):
                report.mismatch = (f'{where}: results [{" ".join(map(_show, got))}], uninterrupted '
                                   f'run has [{" ".join(map(_show, results))}]')
                break
            d = after.diff(store)
            if d:
                report.mismatch = f'{where}: {d}'
                break
    finally:
        after.apply(store)
    if migrated_points:
        report.skipped = None               # migrated at some of its points
    return results, report


def _migrated_run(store, inst, funcaddr, args, k, a, b, before, sha, result_types, budget,
                  peers=None):
    """One a -> b -> a chain stopped first after k steps; (results, saves).
    ``budget`` bounds the resumed run, so a migration that loops fails
    instead of hanging."""
    before.apply(store)
    ex = store.new_executor(a)
    ex.start(funcaddr, list(args))
    if k and ex.run(k):
        raise MigrationMismatch(f'run in {a} finished after {ex.steps} steps, before the stop')
    ex = _hop(store, inst, ex, a, b, before, sha, result_types, must=True, peers=peers)
    if ex.run(1):                       # ended in b: nothing left to move back
        return list(ex.results or []), 1
    ex = _hop(store, inst, ex, b, a, before, sha, result_types, via_neutral=True, peers=peers)
    if ex.finished:                     # ended in b while inside another instance
        return list(ex.results or []), 1
    if not ex.run(budget):
        raise MigrationMismatch(f'resumed run did not end within {budget} more steps')
    return list(ex.results or []), 2


def _hop(store, inst, ex, src, dst, before, sha, result_types, must=False, via_neutral=False,
         peers=None):
    """Save ``ex`` (model ``src``), through bytes, translate to ``dst``
    (``via_neutral``: through neutral.json bytes instead of directly),
    restore with the instance reset to its pre-call state (so what the
    resumed run sees can only come from the images).

    An image set describes one instance: while the stack holds a frame or
    a function reference of another one, the run goes on instruction by
    instruction to the next point it can be saved at; if there is none,
    ``ex`` comes back finished (or, with ``must``, the error is raised)."""
    while True:
        try:
            saved = checkpoint.save(ex, inst, sha, '', result_types, peers=peers)
            break
        except ForeignInstanceError as e:
            if ex.run(1):
                if must:
                    raise ForeignInstanceError(f'{e} (and at every later instruction)') from None
                return ex
    images = roundtrip(saved)
    if images.runtime != src:
        raise MigrationMismatch(f'save wrote {images.runtime} images from a {src} executor')
    if via_neutral:
        images = through_neutral(images, inst, dst)
    else:
        images = tr.translate(images, inst.module, inst.info, dst)
    if images.runtime != dst:
        raise MigrationMismatch(f'translate to {dst} wrote {images.runtime} images')
    before.apply(store, inst)
    return checkpoint.restore(store, inst, images, peers=peers)


def through_neutral(images, inst, dst):
    """The set as neutral.json bytes, read back by the checking reader and
    written in model ``dst``: the runtime-neutral route of a hop."""
    snap = tr.snapshot_from_images(images, inst.module, inst.info)
    doc = neutral.document_from_snapshot(snap, inst.module, inst.info, images.module_sha256)
    snap = neutral.snapshot_from_document(neutral.loads(neutral.dumps(doc)), inst.module, inst.info)
    return tr.images_from_snapshot(snap, inst.module, inst.info, dst, images.module_sha256)


# ------------------------------------------------------------ per script

class Migrator:
    """Migration bookkeeping of one script run (one file, one start model).
    ``allowed``: None (skips are counted only), or {line: reason} of the
    calls that may be skipped (a pinned file: the manifest's skips of kind
    "migration"); any other skip fails its command."""

    def __init__(self, file, runtime, other=None, allowed=None):
        self.file = file
        self.allowed = allowed
        self.a = runtime
        self.b = other or other_runtime(runtime)
        self.stats = {'direction': f'{self.a}->{self.b}->{self.a}', 'calls': 0, 'migrated': 0,
                      'points': 0, 'checkpoints': 0, 'mismatches': 0, 'skipped': 0,
                      'skips': []}

    def invoke(self, store, funcaddr, args, line, peers=None):
        """The call's results (like a plain invoke); raises MigrationMismatch
        naming the line and the checkpoint when a migrated run differs.
        ``peers``: the script's named instances (runner ``peers()``)."""
        results, rep = migrate_call(store, funcaddr, args, self.a, self.b,
                                    seed=f'{self.file}:{line}', peers=peers)
        st = self.stats
        st['calls'] += 1
        st['points'] += rep.points
        st['checkpoints'] += rep.checkpoints
        if rep.skipped:
            st['skipped'] += 1
            if len(st['skips']) < SKIP_REASONS_KEPT:
                st['skips'].append({'line': line, 'reason': rep.skipped})
        elif rep.points:
            st['migrated'] += 1
        if rep.mismatch:
            st['mismatches'] += 1
            raise MigrationMismatch(f'migration mismatch at line {line}, {rep.mismatch}')
        if rep.skipped and self.allowed is not None and line not in self.allowed:
            raise MigrationMismatch(f'unexpected migration skip at line {line}: {rep.skipped} '
                                    f'(spectests/manifest.json lists the allowed ones, kind '
                                    f'"migration", with their reasons)')
        return results
