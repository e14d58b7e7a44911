"""Instruction traces, and the first instruction where a migrated run
departs from the uninterrupted one (``python -m fuzz.replay DIR --trace``).

A reproducer says *that* the migrated run ended differently; a runtime
engineer needs *where* it went wrong.  ``divergence`` re-runs both
executions of a reproducer with a ``Tracer`` as the oracle's runner
(``oracle.uninterrupted(..., run=)`` / ``oracle.migrated(..., run=)``): the
tracer drives the executor one instruction at a time (``ex.run(1)``, the
executors' own stop-anywhere interface) and records after each one

    {"i": 7, "hop": 1, "model": "wamr", "step": 31, "instance": "main",
     "func": 1, "pc": {"wasmedge": 12, "wamr": 27}, "op": "i32.store",
     "top": null, "writes": [[1024, "2a000000"]], "trap": null}

``i`` numbers the records, ``step`` is the model's own instruction
count (the two models count differently), ``func`` the function index in
its instance (``main`` or the ``provider`` of a linked module), ``pc``
where the instruction stands in both models' units (WasmEdge instruction
index, WAMR byte offset from the code start), ``top`` the operand stack's
top value after the instruction (type:bits, ``func N`` for a funcref by
module index, ``null``; null when the frame's operand stack is empty),
``writes`` the memory bytes the instruction wrote, as [address, hex] (for
stores and ``memory.fill/copy/init``, read back after the instruction),
``trap`` its trap message (``engine: ...`` when the engine itself failed).

The traces are compared record by record on instance, func, pc, op, top,
writes and trap.  Structural steps that one model counts and the other
does not (whether a branch's landing on a block's ``end`` is a step) are
left out of the comparison: ``block``, ``loop``, ``else`` and ``end`` of a
block.  Before the first compared instruction after each restore, the
whole state of both runs (``state``: frames with locals and operands,
memory, globals, tables, element segments' contents, the segments dropped
so far) is compared too, so a state the migration got wrong is reported
where it happened, not where it first shows.  GC objects compare by
structure, never identity (a restored object is a new Python object): the
state numbers them as ``oracle.gc_views`` does (frames, then globals,
tables, element segments; shared objects and cycles keep one number) and
lists the heap once, and a record's ``top`` shows an object one level deep
(``struct(0x7, struct)``).  The first
difference is the divergence (``divergence``: its kind, both records, what
differs, the checkpoints); if none differs the report says why the runs
still end differently, if they do (e.g. memory no instruction read after
the checkpoint).

Tracing costs nothing when it is not asked for: the executors' run loops
have no hook; only this runner steps them.
"""

import json
import time

from engine.errors import Trap
from engine.migrate.checkpoint import dropped_segments
from engine.migrate.state import from_cells
from engine.migrate.typetables import CALLS
from engine.syntax import ExternRef, Struct
from engine.valid import operand_types

from fuzz import oracle

MAX_RECORDS = 500_000          # a reproducer's run is far shorter
MAX_SECONDS = 60               # per traced run
SKIPPED = ('block', 'loop', 'else')
_STORE_WIDTH = {'i32.store': 4, 'i64.store': 8, 'f32.store': 4, 'f64.store': 8,
                'i32.store8': 1, 'i32.store16': 2, 'i64.store8': 1, 'i64.store16': 2,
                'i64.store32': 4, 'v128.store': 16, 'v128.store8_lane': 1,
                'v128.store16_lane': 2, 'v128.store32_lane': 4, 'v128.store64_lane': 8}
_BULK = ('memory.fill', 'memory.copy', 'memory.init')
_CELLS = {'i32': 1, 'f32': 1, 'i64': 2, 'f64': 2, 'v128': 4, 'funcref': 1, 'externref': 1}
KEY = ('instance', 'func', 'pc', 'op', 'top', 'writes', 'trap')


class TraceLimit(Exception):
    pass


class Tracer:
    """The oracle's runner that records every instruction it runs, and the
    whole state (``state``) before chosen compared instructions: in the
    migrated run the first one after each restore (``at_restore``), in the
    uninterrupted run those of ``capture_at`` (the same points)."""

    def __init__(self, limit=MAX_RECORDS, seconds=MAX_SECONDS, capture_at=(), at_restore=False):
        self.records = []
        self.deadline = time.time() + seconds
        self.hop = -1
        self.limit = limit
        self.checkpoints = []       # compared index of the first instruction after each restore
        self.ncompared = 0
        self.capture_at = set(capture_at)
        self.at_restore = at_restore
        self.states = {}            # compared index -> state (dict) or error text

    def run(self, ex, budget):
        """``oracle._run`` one instruction at a time."""
        if budget != 1 or self.hop < 0:     # _save's single steps stay in the hop
            self.hop += 1
            if self.hop:
                self.checkpoints.append(self.ncompared)
                if self.at_restore:
                    self.capture_at.add(self.ncompared)
        model = ex.model
        # the budget is instructions counted, not run(1) calls: a WasmEdge
        # false `if` with an `else` counts both in one call
        stop = oracle.MAX_STEPS if budget is None else ex.steps + budget
        while ex.steps < stop:
            if ex.finished:
                return True, None
            rec = self._before(ex, model)
            try:
                done = ex.run(1)
            except Trap as e:
                rec['trap'] = e.message
                self._after(ex, model, rec)
                return True, e.message
            except Exception as e:      # the engine broke on this instruction: it is the divergence
                rec['trap'] = f'engine: {type(e).__name__}: {e}'
                rec.pop('_range', None)
                self.records.append({k: v for k, v in rec.items() if k != '_main'})
                raise
            self._after(ex, model, rec)
            if done:
                return True, None
        if budget is None:
            return True, oracle.STEP_LIMIT
        return ex.finished, None

    # -- one instruction
    def _before(self, ex, model):
        if len(self.records) >= self.limit:
            raise TraceLimit(f'more than {self.limit} instructions traced')
        if not len(self.records) & 1023 and time.time() > self.deadline:
            raise TraceLimit(f'{len(self.records)} instructions traced, out of time')
        fi, pc = _where(ex, model)
        ins = fi.code.body[pc]
        main = ex.store.funcs[ex.frames[0].func].module
        skip = ins.op in SKIPPED or (ins.op == 'end' and pc != len(fi.code.body) - 1)
        if not skip:
            if self.ncompared in self.capture_at and self.ncompared not in self.states:
                try:
                    self.states[self.ncompared] = state(ex, model)
                except Exception as e:          # a state the extractor cannot read is itself a finding
                    self.states[self.ncompared] = f'state unreadable: {type(e).__name__}: {e}'
            self.ncompared += 1
        rec = {'i': len(self.records), 'hop': self.hop, 'model': model, 'step': ex.steps,
               'instance': 'main' if fi.module is main else 'provider', 'func': fi.idx,
               'pc': {'wasmedge': pc, 'wamr': ins.offset}, 'op': ins.op, 'top': None, 'writes': [],
               'trap': None,
               '_main': main, '_skip': skip}
        if ins.op in _STORE_WIDTH or ins.op in _BULK:
            memarg = ins.imm[0] if isinstance(ins.imm, tuple) and isinstance(ins.imm[0], tuple) else ins.imm
            if ins.op in _STORE_WIDTH:
                ops = _operands(ex, model, fi, pc, 2)
                if len(ops) == 2:
                    rec['_range'] = (ops[0][1] + memarg[1], _STORE_WIDTH[ins.op])
            else:
                ops = _operands(ex, model, fi, pc, 3)
                if len(ops) == 3:
                    rec['_range'] = (ops[0][1], ops[2][1])
        return rec

    def _after(self, ex, model, rec):
        main = rec.pop('_main')
        rng = rec.pop('_range', None)
        if rng is not None and main.memaddrs:
            data = ex.store.mems[main.memaddrs[0]].data
            ea, n = rng
            if 0 <= ea and ea + n <= len(data):
                rec['writes'] = [[ea, bytes(data[ea:ea + min(n, 4096)]).hex()]]
        if rec['trap'] is not None:
            pass
        elif ex.frames and not ex.finished:
            fi, pc = _where(ex, model)
            ops = _operands(ex, model, fi, pc, 1)
            if ops:
                rec['top'] = _show(ops[0], main)
        elif ex.results:
            rec['top'] = repr(ex.results[-1])
        self.records.append(rec)


# ---------------------------------------------------------------- reading an executor

def _where(ex, model):
    """(function instance, instruction index) where ``ex`` stands."""
    fi = ex.store.funcs[ex.frames[-1].func]
    if model == 'wasmedge':
        return fi, ex.pc
    return fi, _offsets(fi)[0][ex.pc]


def _offsets(fi):
    """({byte offset: index} of instruction starts, {offset after a call: index of the call})."""
    t = fi.cache.get('trace-offsets')
    if t is None:
        body = fi.code.body
        t = fi.cache['trace-offsets'] = ({ins.offset: i for i, ins in enumerate(body)},
                                         {ins.end: i for i, ins in enumerate(body) if ins.op in CALLS})
    return t


def _types(fi, pc):
    """Operand types before instruction ``pc`` of function instance ``fi``."""
    cache = fi.cache.setdefault('trace-types', {})
    t = cache.get(pc)
    if t is None:
        nimported = len(fi.module.funcaddrs) - len(fi.module.module.funcs)
        t = cache[pc] = operand_types(fi.module.module, fi.idx - nimported, pc)
    return t


def _decode(model, raw, types):
    """Values of ``types`` from a stack region (whole values or cells)."""
    out, pos = [], 0
    for t in types:
        if model == 'wasmedge':
            out.append(raw[pos])
            pos += 1
        else:
            k = _CELLS.get(t, 1)
            out.append(from_cells(t, raw[pos:pos + k]) if t else raw[pos])
            pos += k
    if pos != len(raw):
        raise ValueError(f'stack region of {len(raw)} entries holds {types}')
    return out


def _operands(ex, model, fi, pc, n):
    """The top ``n`` operands (top last) as (type, value), or fewer."""
    types = _types(fi, pc)
    types = types[max(0, len(types) - n):]
    out, end = [], len(ex.stack)
    for t in reversed(types):
        size = 1 if model == 'wasmedge' else _CELLS.get(t, 1)
        out.append((t, _decode(model, ex.stack[end - size:end], [t])[0]))
        end -= size
    return out[::-1]


def _popped_by_call(store, fi, ins):
    """Operands the call ``ins`` took from its frame: the called type's
    parameters (not the running callee's, which a tail call may have
    replaced by a function of other parameters), and the table index of a
    ``call_indirect`` or the reference of a ``call_ref``."""
    inst = fi.module
    if ins.op == 'call':
        return len(store.funcs[inst.funcaddrs[ins.imm]].type.params)
    if ins.op == 'call_indirect':
        return len(inst.types[ins.imm[0]].params) + 1
    return len(inst.types[ins.imm].params) + 1           # call_ref


def state(ex, model):
    """The whole state of a stopped run in module terms: every frame's
    function, locals and operands, and the main instance's memory,
    globals, tables and element segments (``oracle``'s normal form).  GC
    objects are shown by number (``oracle.gc_views``, one numbering over
    frames, globals, tables and segments in that order) and described once
    in ``heap``: a restored object is a new Python object, so only
    structure and sharing compare."""
    store = ex.store
    main = store.funcs[ex.frames[0].func].module
    frames, values = [], []
    for i, fr in enumerate(ex.frames):
        fi = store.funcs[fr.func]
        top = i == len(ex.frames) - 1
        if top:
            pc = _where(ex, model)[1]
            ops = list(_types(fi, pc))
        else:
            nxt = ex.frames[i + 1]
            pc = nxt.from_pc - 1 if model == 'wasmedge' else _offsets(fi)[1][fr.ip]
            ops = list(_types(fi, pc))
            k = _popped_by_call(store, fi, fi.code.body[pc])
            ops = ops[:len(ops) - k]
        local_types = list(fi.type.params) + list(fi.code.locals)
        lo = fr.vpos if model == 'wasmedge' else fr.lp
        hi = len(ex.stack) if top else (ex.frames[i + 1].vpos if model == 'wasmedge' else ex.frames[i + 1].lp)
        values.append(_decode(model, ex.stack[lo:hi], local_types + ops))
        frames.append({'instance': 'main' if fi.module is main else 'provider', 'func': fi.idx,
                       'pc': pc, 'types': local_types + ops, 'nlocals': len(local_types)})
    memory, globs, tables, elems, _ = oracle._final_state(store, main)     # no exports
    views = oracle.gc_views(values + [globs, *tables, *elems])
    heap = next((_gcref(v).heap for seq in views for v in seq if _gcref(v) is not None), ())
    for f, vals in zip(frames, views):
        shown = [_show(tv, main) for tv in zip(f.pop('types'), vals)]
        n = f.pop('nlocals')
        f.update(locals=shown[:n], operands=shown[n:])
    globs = [_by_number(v) for v in views[len(frames)]]
    first = len(frames) + 1
    tables = [[_by_number(v) for v in seq] for seq in views[first:first + len(tables)]]
    # element segments' contents (what table.init and array.new_elem copy;
    # a GC segment's objects are shared with tables and globals)
    segments = [[_by_number(v) for v in seq] for seq in views[first + len(tables):]]
    # segments dropped so far: a restore that forgets one is wrong before any
    # instruction runs, although no instruction may ever read the segment
    dropped_elems, datas = dropped_segments(store, main)
    dropped = {'data': datas, 'elem': dropped_elems}
    return {'frames': frames, 'memory': memory, 'globals': globs, 'tables': tables,
            'elems': segments, 'dropped': dropped, 'heap': heap}


class _Ref:
    """A ``GCRef`` taken apart: its number and the heap it is numbered in."""
    __slots__ = ('n', 'heap', 'extern')

    def __init__(self, n, heap, extern):
        self.n, self.heap, self.extern = n, heap, extern


def _gcref(v):
    """``v`` (a ``gc_views`` value) as a ``_Ref``, None if no GC object."""
    if isinstance(v, oracle.GCRef):
        return _Ref(v[1], v[2], False)
    if isinstance(v, tuple) and len(v) == 2 and v[0] == 'extern' and isinstance(v[1], oracle.GCRef):
        return _Ref(v[1][1], v[1][2], True)
    return None


def _by_number(v):
    """A global's or table slot's view with a GC object as its number only
    (its contents are compared once, in the state's ``heap``)."""
    r = _gcref(v)
    if r is None:
        return v
    return f'{"extern " if r.extern else ""}{r.heap[r.n][0]}#{r.n}'


def state_diff(x, y):
    """What differs between two ``state`` results, one line each (at most 8)."""
    if isinstance(x, str) or isinstance(y, str):
        return [f'uninterrupted: {x}' if isinstance(x, str) else f'migrated: {y}']
    out = []
    if len(x['frames']) != len(y['frames']):
        out.append(f'{len(y["frames"])} frames, expected {len(x["frames"])}')
    for k, (f, g) in enumerate(zip(x['frames'], y['frames'])):
        where = f'frame {k} ({f["instance"]} function {f["func"]})'
        if (f['instance'], f['func'], f['pc']) != (g['instance'], g['func'], g['pc']):
            out.append(f'{where}: at {g["instance"]} function {g["func"]} instruction {g["pc"]}, '
                       f'expected instruction {f["pc"]}')
            continue
        for part in ('locals', 'operands'):
            a, b = f[part], g[part]
            if len(a) != len(b):
                out.append(f'{where}: {len(b)} {part}, expected {len(a)}')
            for j, (u, v) in enumerate(zip(a, b)):
                if u != v:
                    out.append(f'{where} {part[:-1]} {j}: {v}, expected {u}')
    for j, (u, v) in enumerate(zip(x['globals'], y['globals'])):
        if u != v:
            out.append(f'global {j}: {_show_any(v)}, expected {_show_any(u)}')
    for part, name in (('tables', 'table'), ('elems', 'element segment')):
        for j, (u, v) in enumerate(zip(x[part], y[part])):
            if u != v:
                k = next((i for i, (p, q) in enumerate(zip(u, v)) if p != q), min(len(u), len(v)))
                out.append(f'{name} {j} differs from slot {k} ({len(v)} slots, expected {len(u)})')
    for kind in ('data', 'elem'):
        u, v = x['dropped'][kind], y['dropped'][kind]
        if u != v:
            out.append(f'dropped {kind} segments {v}, expected {u}')
    hx, hy = x.get('heap', ()), y.get('heap', ())
    if len(hx) != len(hy):
        out.append(f'{len(hy)} GC objects reachable, expected {len(hx)}')
    for n, (u, v) in enumerate(zip(hx, hy)):
        if u != v:
            out.append(f'GC object {oracle.GCRef(n, hy)!r}, expected {oracle.GCRef(n, hx)!r}')
    a, b = x['memory'], y['memory']
    if a != b:
        if a is None or b is None or len(a) != len(b):
            out.append(f'memory size {len(b or b"")} bytes, expected {len(a or b"")}')
        else:
            diff = [i for i in range(len(a)) if a[i] != b[i]]
            out.append(f'memory: {len(diff)} bytes differ in 0x{diff[0]:x}..0x{diff[-1]:x} '
                       f'(4 KiB chunks {sorted({i >> 12 for i in diff})[:8]}); first: 0x{b[diff[0]]:02x}, '
                       f'expected 0x{a[diff[0]]:02x}')
    return out[:8]


def _show_any(v):
    if isinstance(v, str):              # already shown (a GC object by number: ``_by_number``)
        return v
    return f'{v:#x}' if isinstance(v, int) and not isinstance(v, bool) else repr(v)


def _show(tv, main):
    t, v = tv
    r = _gcref(v)
    if r is not None:                   # a frame's GC object, numbered (``state``)
        return f'{t}:{_by_number(v)}'
    if isinstance(v, Struct):           # a record's top: the object itself, one level deep
        return f'{t}:{_shallow(v)}'
    if t == 'funcref':
        if v is None:
            return 'null'
        return f'func {main.funcaddrs.index(v)}' if v in main.funcaddrs else f'func @{v}'
    if t == 'externref':
        if isinstance(v, ExternRef) and isinstance(v.value, Struct):
            return f'extern {_shallow(v.value)}'
        return 'null' if v is None else f'extern {getattr(v, "value", v)}'
    if isinstance(v, int):
        return f'{t}:{v:#x}'
    return f'{t}:{v!r}'


def _shallow(o):
    """A GC object's kind and fields, the objects it refers to by kind only:
    what two runs' objects share whatever their identity, at a cost
    independent of the heap behind them (it is shown at every instruction)."""
    fields = ', '.join(f.ref_kind if isinstance(f, Struct) else _show_any(f) for f in o.fields)
    return f'{o.ref_kind}({fields})'


# ---------------------------------------------------------------- comparing two runs

def _key(rec):
    return tuple(json.dumps(rec[k], sort_keys=True) for k in KEY)


def compared(records):
    """The records that take part in the comparison (see the docstring)."""
    return [r for r in records if not r['_skip']]


def trace(wasm, entry, args, hops=None, reference='wasmedge', limit=MAX_RECORDS, seconds=MAX_SECONDS,
          capture_at=(), tier=oracle.TIER):
    """The ``Tracer`` of the uninterrupted run in ``reference`` (``hops``
    None) or of the migrated run under ``tier``, and its outcome (or error
    text).  (Stepping one instruction at a time, the compiled tier hands
    every step to the interpreter.)"""
    t = Tracer(limit, seconds, capture_at, at_restore=hops is not None)
    try:
        if hops is None:
            outcome = oracle.uninterrupted(wasm, entry, tuple(args), reference, run=t.run, tier=tier)
        else:
            outcome = oracle.migrated(wasm, entry, tuple(args), list(hops), run=t.run, tier=tier)
    except TraceLimit as e:
        outcome = f'trace stopped: {e}'
    except Exception as e:
        outcome = f'{type(e).__name__}: {e}'
    return t, outcome


def divergence(wasm, entry, args, hops, reference='wasmedge', limit=MAX_RECORDS, seconds=MAX_SECONDS,
               keep=None, tier=oracle.TIER):
    """Where the migrated run ``hops`` first departs from the uninterrupted
    run: a JSON-able dict (see the module docstring).  ``keep`` (a dict)
    receives both traces under 'uninterrupted' and 'migrated'."""
    hops = oracle.clamp(hops, oracle.uninterrupted(wasm, entry, tuple(args), reference, tier=tier).steps)
    mt, mig_out = trace(wasm, entry, args, hops, reference, limit, seconds, tier=tier)
    rt, ref_out = trace(wasm, entry, args, None, reference, limit, seconds, capture_at=mt.checkpoints,
                        tier=tier)
    ref, mig = rt.records, mt.records
    if keep is not None:
        keep.update(uninterrupted=ref, migrated=mig)
    a, b = compared(ref), compared(mig)
    report = {'hops': [[rt_, n] for rt_, n in hops], 'reference': reference, 'tier': tier,
              'instructions': {'uninterrupted': len(ref), 'migrated': len(mig)},
              'checkpoints': mt.checkpoints, 'found': False}

    def found(k, kind, what, migrated=None):
        cps = mt.checkpoints + ([k] if kind == 'migration failed' else [])   # the one that failed
        report.update(found=True, index=k, kind=kind, what=what,
                      after_checkpoint=max([c for c in cps if c <= k], default=None),
                      uninterrupted=_public(a[k]) if k < len(a) else {'ended': _brief(ref_out)},
                      migrated=migrated or (_public(b[k]) if k < len(b) else {'ended': _brief(mig_out)}))
        return report
    for k in range(max(len(a), len(b)) + 1):
        if k in mt.states and k in rt.states:
            diff = state_diff(rt.states[k], mt.states[k])
            if diff:        # wrong from the restore on, before any instruction ran
                return found(k, 'state after restore', diff)
        if k >= len(a) or k >= len(b):
            break
        if _key(a[k]) != _key(b[k]):
            return found(k, 'instruction', [f for f in KEY if a[k][f] != b[k][f]])
    if len(b) < len(a) and isinstance(mig_out, str) and not mig_out.startswith('trace stopped'):
        # the migration itself failed: the migrated run never runs instruction len(b)
        return found(len(b), 'migration failed', [mig_out], {'error': mig_out})
    if len(b) < len(a) and isinstance(mig_out, oracle.Outcome) and mig_out.trap == oracle.STEP_LIMIT:
        return found(len(b), 'instruction', ['the migrated run hit the step limit'])
    if len(a) != len(b):
        report.update(index=min(len(a), len(b)), kind='length',
                      note=f'the runs agree on every compared instruction but one runs '
                           f'{len(a)} and the other {len(b)}: uninterrupted {_brief(ref_out)}, '
                           f'migrated {_brief(mig_out)}')
    elif isinstance(ref_out, oracle.Outcome) and isinstance(mig_out, oracle.Outcome):
        report['note'] = ('every instruction agrees (position, operand top, memory writes) and so '
                          'does the state after each restore; the runs end alike unless: '
                          + ('; '.join(oracle.compare(ref_out, mig_out, 'migrated', steps=False))
                             or 'nothing differs'))
    else:
        report['note'] = f'uninterrupted {_brief(ref_out)}, migrated {_brief(mig_out)}'
    return report


def _public(rec):
    return {k: v for k, v in rec.items() if not k.startswith('_')}


def _brief(outcome):
    if isinstance(outcome, oracle.Outcome):
        return f'trap {outcome.trap!r}' if outcome.trap else f'results {outcome.results}'
    return str(outcome)


def write_jsonl(records, path):
    with open(path, 'w') as f:
        for r in records:
            f.write(json.dumps(_public(r)) + '\n')


def locate(wasm, entry, args, hops, seconds=20, tier=oracle.TIER):
    """``divergence`` for a reproducer's case.json: never raises (an engine
    failure becomes the report's ``error``), at most ``seconds`` per run."""
    try:
        return divergence(wasm, entry, args, hops, seconds=seconds, tier=tier)
    except Exception as e:
        return {'found': False, 'error': f'{type(e).__name__}: {e}'}
