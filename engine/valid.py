"""Validation (spec chapter "Validation", checked with the algorithm of the
appendix "Validation Algorithm").

``validate_module(module)`` checks a decoded module and returns a
``ModuleInfo`` whose per-function side tables (operand heights, matching
``end``/``else`` and resolved branch targets) let both executors run the flat
instruction list without re-deriving block structure at run time.

Operand types are the ``syntax`` type strings; ``None`` is the algorithm's
``Unknown`` (an operand popped from a polymorphic stack).  Error messages are
the spec testsuite's ``assert_invalid`` texts; where the reference
interpreter appends an index ("unknown global 1") we do too, since the
testsuite compares by prefix.
"""

import contextvars
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple

from . import deftypes
from . import syntax as S
from .errors import ValidationError
from .opcodes import GC_OPS, OPS

I32, I64, F32, F64, V128 = S.I32, S.I64, S.F32, S.F64, S.V128
FUNCREF, EXTERNREF = S.FUNCREF, S.EXTERNREF

MAX_PAGES = 65536


# --------------------------------------------------------------- results

class Branch(NamedTuple):
    """Where a taken br/br_if/br_table label continues and how the operand
    stack is cut: keep the top ``keep`` values, drop ``erase`` below them.
    (A NamedTuple: immutable like a frozen dataclass, much cheaper to build.)"""
    target: int        # instr index to continue at (block/if: after 'end'; loop: after 'loop')
    keep: int          # label arity
    erase: int         # height at branch - keep - label_height (0 in dead code)
    label_height: int  # operand height at label entry, below the block's params


@dataclass
class FuncInfo:
    """Side tables for one defined function (see docs/architecture.md)."""
    heights: List[int]                 # operand height before instr i; -1 in unreachable code
    end_of: Dict[int, int]             # block/loop/if index -> matching 'end' index
    else_of: Dict[int, int]            # if index -> its 'else' index
    branches: Dict[int, List[Branch]]  # br/br_if: [one]; br_table: one per label, default last
    max_height: int                    # maximal operand height (values, locals excluded)


@dataclass
class ModuleInfo:
    """What validation learnt about a module: side tables of the defined
    functions plus the context C (types of every index space)."""
    funcs: List[FuncInfo]              # per defined function
    func_types: List[S.FuncType]       # per function index, imports first
    tables: List[S.TableType] = field(default_factory=list)
    mems: List[S.MemType] = field(default_factory=list)
    globals: List[S.GlobalType] = field(default_factory=list)
    elems: List[str] = field(default_factory=list)      # reference type per elem segment
    refs: frozenset = frozenset()                       # C.refs: declared function refs
    tags: List[S.FuncType] = field(default_factory=list)  # per tag index, imports first


class _Invalid(Exception):
    """Raised inside the checkers; turned into ValidationError with a
    location by the caller that knows it (cheap to raise, no formatting)."""


def _fail(msg):
    raise _Invalid(msg)


# ------------------------------------------------------------- opcode tables
# Precomputed so the per-instruction loop is a dict lookup plus list ops.

def _lanes(name):
    shape = name.split('.', 1)[0]
    return {'i8x16': 16, 'i16x8': 8, 'i32x4': 4, 'f32x4': 4,
            'i64x2': 2, 'f64x2': 2}[shape]


_FIXED = {}     # name -> (params list, results tuple); no immediate to check
_MEMOPS = {}    # name -> (params list, results tuple, width, lanes or 0)
_LANEOPS = {}   # name -> (params list, results tuple, lanes)
for _op in OPS:
    if _op.sig is None:
        continue
    _p, _r = list(_op.sig[0]), tuple(_op.sig[1])
    if _op.imm in (None, 'i32', 'i64', 'f32', 'f64', 'v128'):
        _FIXED[_op.name] = (_p, _r)
    elif _op.imm == 'memarg':
        _MEMOPS[_op.name] = (_p, _r, _op.width, 0)
    elif _op.imm == 'memarg_lane':
        _MEMOPS[_op.name] = (_p, _r, _op.width, 16 // _op.width)
    elif _op.imm == 'lane':
        _LANEOPS[_op.name] = (_p, _r, _lanes(_op.name))
del _op, _p, _r

_NUMVEC = frozenset((I32, I64, F32, F64, V128, None))
_CONST_OPS = frozenset(('i32.const', 'i64.const', 'f32.const', 'f64.const',
                        'v128.const', 'ref.null', 'ref.func', 'global.get',
                        # extended constant expressions (Wasm 3.0)
                        'i32.add', 'i32.sub', 'i32.mul', 'i64.add', 'i64.sub', 'i64.mul',
                        # GC (Wasm 3.0)
                        'struct.new', 'struct.new_default', 'array.new', 'array.new_default',
                        'array.new_fixed', 'ref.i31', 'any.convert_extern', 'extern.convert_any'))
_CONST_OPS_2 = frozenset((
    'i32.const', 'i64.const', 'f32.const', 'f64.const', 'v128.const', 'ref.null', 'ref.func',
    'global.get'))
# The standards validate_module knows: 3 (the default, Wasm 3.0) and 2, whose
# rules the Wasm 2.0 testsuite checks where 3.0 relaxed them (constant
# expressions: no arithmetic, global.get of imported globals only).
STANDARDS = (2, 3)
_STANDARD = contextvars.ContextVar('standard', default=3)   # for the few texts 3.0 changed
_CONST_TYPE = {'i32.const': I32, 'i64.const': I64, 'f32.const': F32,
               'f64.const': F64, 'v128.const': V128}

# control frame fields (a frame is a list, mutated in place); _KEYS: the
# module's canonical type keys (for subtyping), _INITS: length of the
# initialized-locals log at entry (3.0 local_init)
_KIND, _START, _END, _HEIGHT, _UNREACH, _DEAD, _LABEL, _POS, _PENDING, _KEYS, _INITS = range(11)


# ----------------------------------------------------------------- context

class _Context:
    """The validation context C of the spec (valid/conventions.rst)."""
    __slots__ = ('types', 'funcs', 'tables', 'mems', 'globals', 'elems',
                 'ndatas', 'refs', 'keys', 'functypeidx', 'tags')

    def __init__(self, types, funcs, tables, mems, globals_, elems, ndatas, refs,
                 keys=(), functypeidx=(), tags=()):
        self.keys = keys                # canonical type keys (syntax.canonicalize)
        self.functypeidx = functypeidx  # type index per function index
        self.types = types
        self.funcs = funcs
        self.tables = tables
        self.mems = mems
        self.globals = globals_
        self.elems = elems
        self.ndatas = ndatas
        self.refs = refs
        self.tags = tags


def _blocktype(ctx, bt):
    """Expand a block type to (params, results) tuples."""
    if bt is None:
        return (), ()
    if isinstance(bt, str):
        _check_valtype(ctx, bt)
        return (), (bt,)
    ft = _functype(ctx.types, bt)
    return tuple(ft.params), tuple(ft.results)


def _functype(types, x, unknown='unknown type'):
    """Type ``x``, which must be a function type (GC: not a struct or array)."""
    if x >= len(types):
        _fail(unknown)
    ft = types[x]
    if not isinstance(ft, S.FuncType):
        _fail('type mismatch')
    return ft


# --------------------------------------------------------- function bodies

def _pop(stack, frame, expect):
    """pop_val(expect) of the algorithm (slow path, also for Unknown)."""
    if len(stack) == frame[_HEIGHT]:
        if frame[_UNREACH]:
            return None
        _fail('type mismatch')
    actual = stack.pop()
    if actual != expect and actual is not None and expect is not None \
            and not S.matches(actual, expect, frame[_KEYS]):
        _fail('type mismatch')
    return actual


def _pop_ref(stack, frame):
    """Pop a reference operand; its RefType, or None (Unknown)."""
    t = _pop(stack, frame, None)
    if t is None:
        return None
    r = S.reftype(t)
    if r is None:
        _fail('type mismatch')
    return r


def _check_valtype(ctx, t):
    """A value type is valid when its heap type's index names a type."""
    r = S.reftype(t)
    if r is not None and isinstance(r.heap, int) and r.heap >= len(ctx.types):
        _fail(f'unknown type {r.heap}')


def _defaultable(t):
    r = S.reftype(t)
    return r is None or r.nullable


def _pop_vals(stack, frame, types):
    """pop_vals: pop ``types`` (last on top); return the actual types."""
    n = len(types)
    if n and len(stack) - n >= frame[_HEIGHT] and stack[-n:] == list(types):
        del stack[-n:]
        return list(types)
    popped = [None] * n
    for k in range(n - 1, -1, -1):
        popped[k] = _pop(stack, frame, types[k])
    return popped


def _close_vals(stack, frame, types):
    """At a block's end (and else, catch, catch_all, delegate): pop its
    results, then nothing may be left; the reference interpreter's messages
    (check_block: "instruction requires" for the results, "block requires"
    for what is left)."""
    h = frame[_HEIGHT]
    n = len(types)
    if len(stack) - h == n and (not n or stack[h:] == list(types)):
        del stack[h:]
        return
    top = stack[max(h, len(stack) - n):]
    if len(top) < n and not frame[_UNREACH] or not all(
            a is None or b is None or a == b or S.matches(a, b, frame[_KEYS])
            for a, b in zip(top, types[n - len(top):])):
        shown = ['_'] * (n - len(top)) if frame[_UNREACH] else []
        _fail(f'type mismatch: instruction requires [{" ".join(types)}] '
              f'but stack has [{" ".join(shown + [t or "_" for t in top])}]')
    if len(stack) - len(top) != h:
        _fail(f'type mismatch: block requires [{" ".join(types)}] '
              f'but stack has [{" ".join(t or "_" for t in stack[h:])}]')
    del stack[h:]


def _check_code(ctx, params, results, local_types, body, stop=None, trace=None, unset=None):
    """Validate one expression (function body or constant expression) with
    the appendix algorithm.  Returns a FuncInfo, or, when ``stop`` is given,
    the operand type stack before instruction ``stop``.  ``trace`` (a list)
    receives the operand type stack before every instruction, in one pass
    (the forks' type tables need all of them).

    Raises _Invalid with attribute ``index`` (the failing instruction)."""
    locals_ = list(params) + list(local_types)
    nlocals = len(locals_)
    keys = ctx.keys
    # each distinct type once: a body may declare a great many locals of few types
    distinct = set(local_types)
    for t in distinct:
        _check_valtype(ctx, t)
    # 3.0 local_init: non-defaultable locals must be set before they are read;
    # a set inside a block is forgotten at its end (inits: the log of sets)
    nondefault = {t for t in distinct if not _defaultable(t)}
    uninit = {len(params) + k for k, t in enumerate(local_types)
              if t in nondefault} if nondefault else set()
    inits = []
    funcs = ctx.funcs
    types = ctx.types
    gtypes = ctx.globals
    tables = ctx.tables
    nmems = len(ctx.mems)
    FIXED, MEMOPS, LANEOPS = _FIXED, _MEMOPS, _LANEOPS

    n = len(body)
    heights = [-1] * n
    end_of = {}
    else_of = {}
    branches = {}
    stack = []
    func_frame = ['func', (), tuple(results), 0, False, False, tuple(results), -1, [], keys, 0]
    ctrls = [func_frame]
    cur = func_frame
    cur_h = 0
    live = True          # current frame neither unreachable nor dead

    limit = n if stop is None else min(stop, n)
    i = 0
    try:
        while i < limit:
            if trace is not None:
                trace.append(tuple(stack))
            ins = body[i]
            op = ins.op
            if live:
                heights[i] = len(stack)

            sig = FIXED.get(op)
            if sig is not None:
                plist, res = sig
                np = len(plist)
                if np:
                    if len(stack) - np >= cur_h and stack[-np:] == plist:
                        del stack[-np:]
                    else:
                        for k in range(np - 1, -1, -1):
                            _pop(stack, cur, plist[k])
                if res:
                    stack.extend(res)
                i += 1
                continue

            sig = MEMOPS.get(op)
            if sig is not None:
                plist, res, width, lanes = sig
                imm = ins.imm
                x = imm[-1] if len(imm) == (4 if lanes else 3) else 0    # multi-memory
                if x or not nmems:
                    _mem(ctx, x)
                if (1 << imm[0]) > width:
                    _fail('alignment must not be larger than natural')
                if x or imm[1] > 0xFFFFFFFF or ctx.mems[0].at != I32:
                    plist = _memop_params(ctx, x, imm[1], plist)
                if lanes and imm[2] >= lanes:
                    _fail('invalid lane index')
                np = len(plist)
                if len(stack) - np >= cur_h and stack[-np:] == plist:
                    del stack[-np:]
                else:
                    for k in range(np - 1, -1, -1):
                        _pop(stack, cur, plist[k])
                if res:
                    stack.extend(res)
                i += 1
                continue

            if op == 'local.get':
                x = ins.imm
                if x >= nlocals:
                    _fail(f'unknown local {x}')
                if uninit and x in uninit:
                    _fail('uninitialized local')
                stack.append(locals_[x])
            elif op == 'local.set':
                x = ins.imm
                if x >= nlocals:
                    _fail(f'unknown local {x}')
                t = locals_[x]
                if len(stack) > cur_h and stack[-1] == t:
                    stack.pop()
                else:
                    _pop(stack, cur, t)
                if uninit and x in uninit:
                    uninit.discard(x)
                    inits.append(x)
            elif op == 'local.tee':
                x = ins.imm
                if x >= nlocals:
                    _fail(f'unknown local {x}')
                t = locals_[x]
                if len(stack) > cur_h and stack[-1] == t:
                    pass
                else:
                    _pop(stack, cur, t)
                    stack.append(t)
                if uninit and x in uninit:
                    uninit.discard(x)
                    inits.append(x)
            elif op == 'br_if':
                x = ins.imm
                if x >= len(ctrls):
                    _fail('unknown label')
                _pop(stack, cur, I32)
                tgt = ctrls[-1 - x]
                label = tgt[_LABEL]
                h = len(stack)
                _pop_vals(stack, cur, label)
                stack.extend(label)
                branches[i] = [_branch(tgt, i, 0, h, live)]
            elif op == 'br':
                x = ins.imm
                if x >= len(ctrls):
                    _fail('unknown label')
                tgt = ctrls[-1 - x]
                label = tgt[_LABEL]
                h = len(stack)
                _pop_vals(stack, cur, label)
                branches[i] = [_branch(tgt, i, 0, h, live)]
                del stack[cur_h:]
                cur[_UNREACH] = True
                live = False
            elif op == 'try_table':
                bp, br_ = _blocktype(ctx, ins.imm[0])
                _pop_vals(stack, cur, bp)
                branches[i] = _catch_branches(ctx, ctrls, ins.imm[1], i, len(stack), live)
                cur = _open(ctrls, op, bp, br_, br_, i, stack, live, keys, inits)
                cur_h = cur[_HEIGHT]
                live = not cur[_DEAD]
            elif op == 'br_on_null' or op == 'br_on_non_null':
                x = ins.imm
                if x >= len(ctrls):
                    _fail('unknown label')
                tgt = ctrls[-1 - x]
                label = tgt[_LABEL]
                r = _pop_ref(stack, cur)
                nonnull = None if r is None else _nonnull(r)
                if op == 'br_on_null':
                    # taken: the null is dropped and the label's values kept
                    h = len(stack)
                    _pop_vals(stack, cur, label)
                    stack.extend(label)
                    branches[i] = [_branch(tgt, i, 0, h, live)]
                    stack.append(nonnull)
                else:
                    # taken: the (non-null) reference is the label's last value
                    if not label or S.reftype(label[-1]) is None:
                        _fail('type mismatch')
                    branches[i] = _branch_with_ref(stack, cur, tgt, i, live, nonnull)
            elif op == 'br_on_cast' or op == 'br_on_cast_fail':
                x, rt1, rt2 = ins.imm
                if x >= len(ctrls):
                    _fail('unknown label')
                _check_valtype(ctx, rt1)
                _check_valtype(ctx, rt2)
                if not S.matches(rt2, rt1, keys):
                    _fail('type mismatch')
                tgt = ctrls[-1 - x]
                label = tgt[_LABEL]
                _pop(stack, cur, rt1)
                # rt1 less rt2: what a failed cast leaves (non-null when rt2 takes null)
                diff = _nonnull(rt1) if rt2.nullable else rt1
                taken, rest = (rt2, diff) if op == 'br_on_cast' else (diff, rt2)
                if not label or not S.matches(taken, label[-1], keys):
                    _fail('type mismatch')
                branches[i] = _branch_with_ref(stack, cur, tgt, i, live, taken)
                stack.append(rest)
            elif op == 'block' or op == 'loop' or op == 'if' or op == 'try':
                bp, br_ = _blocktype(ctx, ins.imm)
                if op == 'if':
                    _pop(stack, cur, I32)
                _pop_vals(stack, cur, bp)
                cur = _open(ctrls, op, bp, br_, bp if op == 'loop' else br_, i, stack, live,
                            keys, inits)
                cur_h = cur[_HEIGHT]
                live = not cur[_DEAD]
            elif op == 'end' or op == 'delegate':
                _close_vals(stack, cur, cur[_END])
                kind = cur[_KIND]
                if kind == 'if' and not _params_cover(cur):
                    _fail('type mismatch')
                if op == 'delegate':            # legacy: closes a try, names an outer label
                    if kind != 'try':
                        _fail('delegate without try')
                    if ins.imm >= len(ctrls) - 1:
                        _fail('unknown label')
                if len(inits) > cur[_INITS]:
                    uninit.update(inits[cur[_INITS]:])
                    del inits[cur[_INITS]:]
                ctrls.pop()
                if kind != 'func':
                    end_of[cur[_POS]] = i
                _resolve(cur, i + 1, branches)
                stack.extend(cur[_END])
                if not ctrls:
                    i += 1
                    break
                cur = ctrls[-1]
                cur_h = cur[_HEIGHT]
                live = not (cur[_UNREACH] or cur[_DEAD])
            elif op == 'else':
                if cur[_KIND] != 'if':
                    _fail('else without if')
                _close_vals(stack, cur, cur[_END])
                else_of[cur[_POS]] = i
                cur[_KIND] = 'else'
                if len(inits) > cur[_INITS]:
                    uninit.update(inits[cur[_INITS]:])
                    del inits[cur[_INITS]:]
                cur[_UNREACH] = False
                stack.extend(cur[_START])
                live = not cur[_DEAD]
            elif op == 'call':
                x = ins.imm
                if x >= len(funcs):
                    _fail(f'unknown function {x}')
                ft = funcs[x]
                _pop_vals(stack, cur, ft.params)
                stack.extend(ft.results)
            elif op == 'throw' or op == 'throw_ref' or op == 'rethrow':
                if op == 'throw':
                    params = list(_tag(ctx, ins.imm).params)
                    top = stack[max(cur_h, len(stack) - len(params)):]
                    if not all(S.matches(a, b, keys) for a, b in
                               zip(top, params[len(params) - len(top):])) or (
                            len(top) < len(params) and not cur[_UNREACH]):
                        _fail(f'type mismatch: instruction requires [{" ".join(params)}] '
                              f'but stack has [{" ".join(t or "_" for t in top)}]')
                    _pop_vals(stack, cur, params)
                elif op == 'throw_ref':
                    _pop(stack, cur, S.EXNREF)
                else:
                    if ins.imm >= len(ctrls):
                        _fail('unknown label')
                    if ctrls[-1 - ins.imm][_KIND] not in ('catch', 'catch_all'):
                        _fail('invalid rethrow label')
                del stack[cur_h:]
                cur[_UNREACH] = True
                live = False
            elif op == 'catch' or op == 'catch_all':
                if cur[_KIND] not in ('try', 'catch'):
                    _fail(f'{op} without try')
                _close_vals(stack, cur, cur[_END])
                cur[_KIND] = op
                cur[_UNREACH] = False
                if len(inits) > cur[_INITS]:
                    uninit.update(inits[cur[_INITS]:])
                    del inits[cur[_INITS]:]
                if op == 'catch':
                    stack.extend(_tag(ctx, ins.imm).params)
                live = not cur[_DEAD]
            elif op == 'global.get':
                x = ins.imm
                if x >= len(gtypes):
                    _fail(f'unknown global {x}')
                stack.append(gtypes[x].valtype)
            elif op == 'global.set':
                x = ins.imm
                if x >= len(gtypes):
                    _fail(f'unknown global {x}')
                gt = gtypes[x]
                if not gt.mut:      # the 2.0 testsuite's text, then 3.0's
                    _fail('global is immutable' if _STANDARD.get() < 3 else 'immutable global')
                _pop(stack, cur, gt.valtype)
            elif op == 'drop':
                if len(stack) > cur_h:
                    stack.pop()
                elif not cur[_UNREACH]:
                    _fail('type mismatch')
            elif op == 'select':
                ts = ins.imm
                if ts is None:
                    _pop(stack, cur, I32)
                    t1 = _pop(stack, cur, None)
                    t2 = _pop(stack, cur, None)
                    if t1 not in _NUMVEC or t2 not in _NUMVEC:
                        _fail('type mismatch')
                    if t1 != t2 and t1 is not None and t2 is not None:
                        _fail('type mismatch')
                    stack.append(t2 if t1 is None else t1)
                else:
                    if len(ts) != 1:
                        _fail('invalid result arity')
                    t = ts[0]
                    _check_valtype(ctx, t)
                    _pop(stack, cur, I32)
                    _pop(stack, cur, t)
                    _pop(stack, cur, t)
                    stack.append(t)
            elif op == 'unreachable':
                del stack[cur_h:]
                cur[_UNREACH] = True
                live = False
            elif op == 'return':
                _pop_vals(stack, cur, func_frame[_END])
                del stack[cur_h:]
                cur[_UNREACH] = True
                live = False
            elif op == 'br_table':
                labels, default = ins.imm
                _pop(stack, cur, I32)
                if default >= len(ctrls):
                    _fail('unknown label')
                arity = len(ctrls[-1 - default][_LABEL])
                h = len(stack)
                out = []
                for x in labels:
                    if x >= len(ctrls):
                        _fail('unknown label')
                    tgt = ctrls[-1 - x]
                    label = tgt[_LABEL]
                    if len(label) != arity:
                        _fail('type mismatch')
                    stack.extend(_pop_vals(stack, cur, label))
                    out.append(_branch(tgt, i, len(out), h, live))
                tgt = ctrls[-1 - default]
                _pop_vals(stack, cur, tgt[_LABEL])
                out.append(_branch(tgt, i, len(out), h, live))
                branches[i] = out
                del stack[cur_h:]
                cur[_UNREACH] = True
                live = False
            elif op == 'call_indirect':
                ft = _indirect_type(ins.imm, tables, types)
                _pop(stack, cur, tables[ins.imm[1]].at)
                _pop_vals(stack, cur, ft.params)
                stack.extend(ft.results)
            elif op == 'call_ref':
                ft = _ref_type(ins.imm, types, stack, cur)
                _pop_vals(stack, cur, ft.params)
                stack.extend(ft.results)
            elif op == 'return_call' or op == 'return_call_indirect' \
                    or op == 'return_call_ref':
                # tail calls: the callee's results are the caller's, then
                # the rest of the block is unreachable, as after 'return'
                if op == 'return_call':
                    x = ins.imm
                    if x >= len(funcs):
                        _fail(f'unknown function {x}')
                    ft = funcs[x]
                elif op == 'return_call_ref':
                    ft = _ref_type(ins.imm, types, stack, cur)
                else:
                    ft = _indirect_type(ins.imm, tables, types)
                    _pop(stack, cur, tables[ins.imm[1]].at)
                fres = func_frame[_END]
                if len(ft.results) != len(fres) or not all(
                        S.matches(a, b, keys) for a, b in zip(ft.results, fres)):
                    _fail('type mismatch')
                _pop_vals(stack, cur, ft.params)
                del stack[cur_h:]
                cur[_UNREACH] = True
                live = False
            else:
                sig = LANEOPS.get(op)
                if sig is not None:
                    plist, res, lanes = sig
                    if ins.imm >= lanes:
                        _fail('invalid lane index')
                    _pop_vals(stack, cur, plist)
                    stack.extend(res)
                else:
                    _check_other(ctx, op, ins.imm, stack, cur)
            i += 1
        else:
            if stop is None:
                _fail('END opcode expected')
        if stop is not None:
            if unset is not None:
                unset.update(uninit)
                if stop < n and body[stop].op in ('end', 'else'):
                    # branches land here too (and a false if on its else),
                    # from before the block's sets: its entry state holds
                    unset.update(inits[cur[_INITS]:])
            return stack
        if i != n:
            _fail('unexpected instructions after end')
    except _Invalid as e:
        e.index = i
        raise
    max_height = max(heights) if heights else 0
    if len(results) > max_height:
        max_height = len(results)
    return FuncInfo(heights, end_of, else_of, branches, max_height)


def _params_cover(frame):
    """An 'if' without 'else' passes its params through the missing arm:
    they must match its results."""
    st, en = frame[_START], frame[_END]
    return len(st) == len(en) and all(S.matches(a, b, frame[_KEYS]) for a, b in zip(st, en))


def _ref_type(x, types, stack, frame):
    """call_ref / return_call_ref x: the function type x, after popping the
    (ref null x) operand."""
    ft = _functype(types, x, f'unknown type {x}')
    _pop(stack, frame, S.RefType(True, x))
    return ft


def _branch_with_ref(stack, cur, tgt, i, live, ref):
    """The branch of br_on_non_null / br_on_cast / br_on_cast_fail: it
    carries the reference operand (type ``ref``) as the label's last value,
    above the label's other values, which stay on the stack."""
    label = tgt[_LABEL]
    stack.append(ref)
    h = len(stack)
    _pop_vals(stack, cur, label)
    stack.extend(label[:-1])
    return [_branch(tgt, i, 0, h, live)]


def _branch(tgt, i, slot, h, live):
    """Branch record to label frame ``tgt`` taken at instr ``i`` with operand
    height ``h``; for a block/if frame the target is filled in at its 'end'."""
    keep = len(tgt[_LABEL])
    lh = tgt[_HEIGHT]
    erase = h - keep - lh if live else 0
    if tgt[_KIND] == 'loop':
        return Branch(tgt[_POS] + 1, keep, erase, lh)
    tgt[_PENDING].append((i, slot, keep, erase, lh))
    return None


def _tag(ctx, x):
    if x >= len(ctx.tags):
        _fail(f'unknown tag {x}')
    return ctx.tags[x]


_EXN = S.RefType(False, 'exn')     # what catch_ref and catch_all_ref push


def _catch_branches(ctx, ctrls, clauses, i, h, live):
    """The Branch of each catch clause of a try_table at instr ``i``: the
    clause's label is counted outside the try_table, and carries the tag's
    fields (catch, catch_ref) and the (ref exn) (catch_ref, catch_all_ref)."""
    out = []
    for kind, x, label in clauses:
        if label >= len(ctrls):
            _fail('unknown label')
        vals = tuple(_tag(ctx, x).params) if kind < 2 else ()
        if kind & 1:
            vals += (_EXN,)
        tgt = ctrls[-1 - label]
        lt = tgt[_LABEL]
        if len(lt) != len(vals) or not all(S.matches(a, b, ctx.keys) for a, b in zip(vals, lt)):
            _fail('type mismatch')
        out.append(_branch(tgt, i, len(out), h + len(vals), live))
    return out


def _resolve(frame, target, branches):
    """At a block/if/function 'end' the label's target (the instruction after
    it) is known: fill in the branches recorded while it was open."""
    for i, slot, keep, erase, lh in frame[_PENDING]:
        branches[i][slot] = Branch(target, keep, erase, lh)


def _check_other(ctx, op, imm, stack, cur):
    """Instructions with index immediates that are rare in hot code."""
    if op == 'ref.null':
        _check_valtype(ctx, imm)
        stack.append(imm)
    elif op == 'ref.is_null':
        _pop_ref(stack, cur)
        stack.append(I32)
    elif op == 'ref.as_non_null':
        r = _pop_ref(stack, cur)
        stack.append(None if r is None else _nonnull(r))
    elif op == 'ref.func':
        if imm >= len(ctx.funcs):
            _fail(f'unknown function {imm}')
        if imm not in ctx.refs:
            _fail('undeclared function reference')
        stack.append(_func_ref_type(ctx, imm))
    elif op == 'memory.size':
        stack.append(_mem(ctx, imm).at)
    elif op == 'memory.grow':
        at = _mem(ctx, imm).at
        _pop(stack, cur, at)
        stack.append(at)
    elif op == 'memory.fill':
        at = _mem(ctx, imm).at
        _pop_vals(stack, cur, (at, I32, at))
    elif op == 'memory.copy':
        # the length is i64 only when both memories are 64-bit
        at1, at2 = _mem(ctx, imm[0]).at, _mem(ctx, imm[1]).at
        _pop_vals(stack, cur, (at1, at2, I32 if I32 in (at1, at2) else I64))
    elif op == 'memory.init':
        y, x = imm if imm.__class__ is tuple else (imm, 0)
        at = _mem(ctx, x).at
        if y >= ctx.ndatas:
            _fail(f'unknown data segment {y}')
        _pop_vals(stack, cur, (at, I32, I32))
    elif op == 'data.drop':
        if imm >= ctx.ndatas:
            _fail(f'unknown data segment {imm}')
    elif op == 'table.get':
        tt = _table(ctx, imm)
        _pop(stack, cur, tt.at)
        stack.append(tt.elemtype)
    elif op == 'table.set':
        tt = _table(ctx, imm)
        _pop(stack, cur, tt.elemtype)
        _pop(stack, cur, tt.at)
    elif op == 'table.size':
        stack.append(_table(ctx, imm).at)
    elif op == 'table.grow':
        tt = _table(ctx, imm)
        _pop(stack, cur, tt.at)
        _pop(stack, cur, tt.elemtype)
        stack.append(tt.at)
    elif op == 'table.fill':
        tt = _table(ctx, imm)
        _pop(stack, cur, tt.at)
        _pop(stack, cur, tt.elemtype)
        _pop(stack, cur, tt.at)
    elif op == 'table.copy':
        x, y = imm
        tt1 = _table(ctx, x)
        tt2 = _table(ctx, y)
        if not S.matches(tt2.elemtype, tt1.elemtype, ctx.keys):
            _fail('type mismatch')
        # the length is i64 only when both tables are 64-bit
        _pop_vals(stack, cur, (tt1.at, tt2.at, I32 if I32 in (tt1.at, tt2.at) else I64))
    elif op == 'table.init':
        y, x = imm          # (elemidx, tableidx); the table is checked first
        tt = _table(ctx, x)
        if y >= len(ctx.elems):
            _fail(f'unknown elem segment {y}')
        if not S.matches(ctx.elems[y], tt.elemtype, ctx.keys):
            _fail('type mismatch')
        _pop_vals(stack, cur, (tt.at, I32, I32))
    elif op == 'elem.drop':
        if imm >= len(ctx.elems):
            _fail(f'unknown elem segment {imm}')
    elif op == 'i8x16.shuffle':
        if max(imm) >= 32:
            _fail('invalid lane index')
        _pop_vals(stack, cur, (V128, V128))
        stack.append(V128)
    elif op in GC_OPS:
        _check_gc(ctx, op, imm, stack, cur)
    else:
        _fail(f'unknown instruction {op}')


# ------------------------------------------------------------------ GC

EQREF, I31REF = S.RefType(True, 'eq'), S.RefType(True, 'i31')
ARRAYREF = S.RefType(True, 'array')


def _ref_to(ctx, x, nullable):
    """(ref null? x) for type index x, marked with its hierarchy."""
    return S.RefType(nullable, x, None if isinstance(ctx.types[x], S.FuncType) else 'any')


def _nonnull(r):
    return S.RefType(False, r.heap, getattr(r, 'top', None))


def _top_of(ctx, r):
    """(ref null top) of the hierarchy a reference type belongs to."""
    h = r.heap
    if isinstance(h, int):
        return FUNCREF if isinstance(ctx.types[h], S.FuncType) else S.ANYREF
    return S.RefType(True, S.HEAP_TOPS[h])


def _composite(ctx, x, cls):
    if x >= len(ctx.types):
        _fail(f'unknown type {x}')
    ct = ctx.types[x]
    if not isinstance(ct, cls):
        _fail('type mismatch')
    return ct


def _unpacked(st):
    return I32 if st in S.PACKED_TYPES else st


def _field_read(op, st):
    """get on a packed field needs get_s/get_u, and they need a packed one."""
    if (op.endswith('_s') or op.endswith('_u')) != (st in S.PACKED_TYPES):
        _fail('type mismatch')
    return _unpacked(st)


def _check_gc(ctx, op, imm, stack, cur):
    """GC instructions (valid/instructions.rst, aggregate and scalar
    reference instructions, casts)."""
    pop = _pop
    if op == 'ref.eq':
        _pop_vals(stack, cur, (EQREF, EQREF))
        stack.append(I32)
    elif op == 'ref.i31':
        pop(stack, cur, I32)
        stack.append(S.RefType(False, 'i31'))
    elif op == 'i31.get_s' or op == 'i31.get_u':
        pop(stack, cur, I31REF)
        stack.append(I32)
    elif op == 'any.convert_extern' or op == 'extern.convert_any':
        src, dst = ('extern', 'any') if op == 'any.convert_extern' else ('any', 'extern')
        r = pop(stack, cur, S.RefType(True, src))
        stack.append(S.RefType(r is None or S.reftype(r).nullable, dst))
    elif op == 'ref.test' or op == 'ref.cast':
        _check_valtype(ctx, imm)
        pop(stack, cur, _top_of(ctx, imm))
        stack.append(I32 if op == 'ref.test' else imm)
    elif op.startswith('struct.'):
        x = imm if op.startswith('struct.new') else imm[0]
        st = _composite(ctx, x, S.StructType)
        if op == 'struct.new':
            _pop_vals(stack, cur, [_unpacked(f.storage) for f in st.fields])
            stack.append(_ref_to(ctx, x, False))
        elif op == 'struct.new_default':
            if not all(_defaultable(_unpacked(f.storage)) for f in st.fields):
                _fail('type mismatch')
            stack.append(_ref_to(ctx, x, False))
        else:
            y = imm[1]
            if y >= len(st.fields):
                _fail(f'unknown field {y}')
            f = st.fields[y]
            if op == 'struct.set':
                if not f.mut:
                    _fail('immutable field')
                pop(stack, cur, _unpacked(f.storage))
                pop(stack, cur, _ref_to(ctx, x, True))
            else:
                t = _field_read(op, f.storage)
                pop(stack, cur, _ref_to(ctx, x, True))
                stack.append(t)
    elif op == 'array.len':
        pop(stack, cur, ARRAYREF)
        stack.append(I32)
    else:
        _check_array(ctx, op, imm, stack, cur)


def _check_array(ctx, op, imm, stack, cur):
    x = imm[0] if isinstance(imm, tuple) else imm
    at = _composite(ctx, x, S.ArrayType)
    f = at.field
    t = _unpacked(f.storage)
    ref = _ref_to(ctx, x, True)
    if op in ('array.set', 'array.fill', 'array.copy', 'array.init_data', 'array.init_elem') \
            and not f.mut:
        _fail('immutable array')
    if op in ('array.new_data', 'array.init_data'):
        if S.reftype(t) is not None:
            _fail('array type is not numeric or vector')
        if imm[1] >= ctx.ndatas:
            _fail(f'unknown data segment {imm[1]}')
    if op in ('array.new_elem', 'array.init_elem'):
        if imm[1] >= len(ctx.elems):
            _fail(f'unknown elem segment {imm[1]}')
        if not S.matches(ctx.elems[imm[1]], t, ctx.keys):
            _fail('type mismatch')
    if op == 'array.new':
        _pop_vals(stack, cur, (t, I32))
    elif op == 'array.new_default':
        if not _defaultable(t):
            _fail('type mismatch')
        _pop(stack, cur, I32)
    elif op == 'array.new_fixed':
        _pop_vals(stack, cur, (t,) * imm[1])
    elif op == 'array.new_data' or op == 'array.new_elem':
        _pop_vals(stack, cur, (I32, I32))
    elif op in ('array.get', 'array.get_s', 'array.get_u'):
        t = _field_read(op, f.storage)
        _pop_vals(stack, cur, (ref, I32))
        stack.append(t)
        return
    elif op == 'array.set':
        _pop_vals(stack, cur, (ref, I32, t))
        return
    elif op == 'array.fill':
        _pop_vals(stack, cur, (ref, I32, t, I32))
        return
    elif op == 'array.copy':
        sf = _composite(ctx, imm[1], S.ArrayType).field
        if not deftypes.storage_matches(sf.storage, f.storage, ctx.keys):
            _fail('array types do not match')
        _pop_vals(stack, cur, (ref, I32, _ref_to(ctx, imm[1], True), I32, I32))
        return
    else:                               # array.init_data / array.init_elem
        _pop_vals(stack, cur, (ref, I32, I32, I32))
        return
    stack.append(_ref_to(ctx, x, False))


def _table(ctx, x):
    if x >= len(ctx.tables):
        _fail(f'unknown table {x}')
    return ctx.tables[x]


def _open(ctrls, op, params, results, label, i, stack, live, keys, inits):
    """Push the control frame of a block-like instruction at ``i`` whose
    parameters were just popped, and push them back as the block's operands."""
    cur = [op, params, results, len(stack), False, not live, label, i, [], keys, len(inits)]
    ctrls.append(cur)
    stack.extend(params)
    return cur


def _mem(ctx, x):
    if x >= len(ctx.mems):
        _fail(f'unknown memory {x}')
    return ctx.mems[x]


def _memop_params(ctx, x, offset, plist):
    """A load/store's operand types for memory ``x`` (multi-memory,
    memory64): the address (first operand) is the memory's address type,
    and a 32-bit memory's offset must fit in 32 bits."""
    if ctx.mems[x].at == I32:
        if offset > 0xFFFFFFFF:
            _fail('offset out of range')
        return plist
    return [I64] + plist[1:]


def _func_ref_type(ctx, x):
    """ref.func x: (ref $t) with $t the function's type index (3.0); funcref
    for a function whose type index is not known (a context without one)."""
    if x < len(ctx.functypeidx):
        return S.RefType(False, ctx.functypeidx[x])
    return FUNCREF


def _indirect_type(imm, tables, types):
    """The function type of call_indirect / return_call_indirect (typeidx,
    tableidx), after checking both indices and that the table holds funcrefs."""
    y, x = imm
    if x >= len(tables):
        _fail(f'unknown table {x}')
    ft = _functype(types, y)
    if S.value_class(tables[x].elemtype) != FUNCREF:
        _fail('type mismatch')
    return ft


# ------------------------------------------------------ constant expressions

def _const_expr(ctx, expr, t, ops=_CONST_OPS):
    """An initializer: valid with result [t] and built of constant
    instructions only (valid/instructions.rst "Constant Expressions"; 3.0
    adds i32/i64 add, sub and mul).  ``ctx.globals`` holds the globals it
    may read: a global's initializer the imported and earlier globals, a
    segment's every global; ``global.get`` must name an immutable one."""
    if len(expr) == 2:                      # fast path: one instruction + end
        ins = expr[0]
        op = ins.op
        ct = _CONST_TYPE.get(op)
        if ct is None:
            if op == 'ref.null':
                ct = ins.imm
                _check_valtype(ctx, ct)
            elif op == 'ref.func':
                if ins.imm >= len(ctx.funcs):
                    _fail(f'unknown function {ins.imm}')
                ct = _func_ref_type(ctx, ins.imm)
            elif op == 'global.get':
                x = ins.imm
                if x >= len(ctx.globals):
                    _fail(f'unknown global {x}')
                gt = ctx.globals[x]
                if gt.mut:
                    _fail('constant expression required')
                ct = gt.valtype
        if ct is not None:
            if ct != t and not S.matches(ct, t, ctx.keys):
                _fail('type mismatch')
            return
    # general case: only constant instructions, then type-check like a body
    for ins in expr[:-1]:
        if ins.op not in ops:
            _fail('constant expression required')
    try:
        _check_code(ctx, (), (t,), (), expr)
    except _Invalid as e:
        raise _Invalid(e.args[0]) from None
    for ins in expr[:-1]:
        if ins.op == 'global.get' and ctx.globals[ins.imm].mut:
            _fail('constant expression required')


# ------------------------------------------------------------------ types

def _check_limits(lim, bound, msg):
    """Limits within ``bound`` and min <= max (valid/types.rst)."""
    if lim.min > bound:
        _fail(msg)
    if lim.max is not None:
        if lim.max > bound:
            _fail(msg)
        if lim.min > lim.max:
            _fail('size minimum must not be greater than maximum')


def _check_tabletype(tt):
    if tt.at == I64:
        _check_limits(tt.limits, 0xFFFFFFFFFFFFFFFF, 'table size must be at most 2^64-1')
    else:
        _check_limits(tt.limits, 0xFFFFFFFF, 'table size must be at most 2^32-1')


def _check_memtype(mt):
    if mt.at == I64:        # memory64: 2^48 pages of 64 KiB span the 2^64 bytes
        _check_limits(mt.limits, 1 << 48, 'memory size must be at most 2^48 pages')
    else:
        _check_limits(mt.limits, MAX_PAGES,
                      'memory size must be at most 65536 pages (4GiB)')


# ----------------------------------------------------------------- modules

def _free_funcidx(module):
    """C.refs: function indices occurring outside function bodies and the
    start function (globals, element segments, exports)."""
    refs = set()
    for g in module.globals + [t for t in module.tables if t.init is not None]:
        for ins in g.init:
            if ins.op == 'ref.func':
                refs.add(ins.imm)
    for e in module.elems:
        for expr in e.init:
            for ins in expr:
                if ins.op == 'ref.func':
                    refs.add(ins.imm)
        if e.offset:
            for ins in e.offset:
                if ins.op == 'ref.func':
                    refs.add(ins.imm)
    for d in module.datas:
        if d.offset:
            for ins in d.offset:
                if ins.op == 'ref.func':
                    refs.add(ins.imm)
    for ex in module.exports:
        if ex.kind == 'func':
            refs.add(ex.index)
    return frozenset(refs)


def _context(module):
    """Build C (and check imports, whose types it contains)."""
    types = module.types
    funcs, tables, mems, globals_, tags = [], [], [], [], []
    typeidx = []
    keys = module.__dict__['_type_keys'] = deftypes.canonicalize(module)   # deftypes.module_keys
    _check_types(module, keys)
    probe = _Context(types, (), (), (), (), (), 0, frozenset(), keys)
    for k, imp in enumerate(module.imports):
        where = f'import {k}'
        try:
            if imp.kind == 'func':
                funcs.append(_functype(types, imp.desc))
                typeidx.append(imp.desc)
            elif imp.kind == 'table':
                _check_tabletype(imp.desc)
                _check_valtype(probe, imp.desc.elemtype)
                tables.append(imp.desc)
            elif imp.kind == 'memory':
                _check_memtype(imp.desc)
                mems.append(imp.desc)
            elif imp.kind == 'tag':
                tags.append(_tagtype(types, imp.desc))
            else:
                _check_valtype(probe, imp.desc.valtype)
                globals_.append(imp.desc)
        except _Invalid as e:
            raise ValidationError(e.args[0], where) from None
    nimported_globals = len(globals_)
    for k, f in enumerate(module.funcs):
        try:
            funcs.append(_functype(types, f.typeidx))
        except _Invalid as e:
            raise ValidationError(e.args[0], f'func {len(funcs)}') from None
        typeidx.append(f.typeidx)
    tables.extend(t.type for t in module.tables)
    mems.extend(m.type for m in module.mems)
    globals_.extend(g.type for g in module.globals)
    elems = [e.type for e in module.elems]
    for k, t in enumerate(module.tags):
        try:
            tags.append(_tagtype(types, t))
        except _Invalid as e:
            raise ValidationError(e.args[0], f'tag {len(tags)}') from None
    ctx = _Context(types, funcs, tables, mems, globals_, elems,
                   len(module.datas), _free_funcidx(module), keys, typeidx, tags)
    return ctx, nimported_globals


def _check_types(module, keys):
    """The type section (valid/types.rst, rec types): each rec group sees
    the types before it and its own; a subtype declares at most one
    supertype, an earlier non-final type whose composite type it matches."""
    types = module.types
    for start, n in deftypes.rec_groups(module):
        probe = _Context(types[:start + n], (), (), (), (), (), 0, frozenset(), keys)
        for i in range(start, start + n):
            try:
                ct = types[i]
                for t in deftypes.storage_types(ct):
                    if t not in S.PACKED_TYPES:
                        _check_valtype(probe, t)
                final, sups = deftypes.sub_of(module, i)
                if len(sups) > 1:
                    _fail(f'multiple supertypes of type {i}')
                for x in sups:
                    if x >= i:
                        _fail(f'unknown type {x}' if x >= start + n else
                              f'forward use of type {x} as a supertype of type {i}')
                    if deftypes.sub_of(module, x)[0]:
                        _fail(f'sub type {i} has final super type {x}')
                    if not deftypes.comptype_matches(ct, types[x], keys):
                        _fail(f'sub type {i} does not match super type {x}')
            except _Invalid as e:
                raise ValidationError(e.args[0], f'type {i}') from None


def _tagtype(types, tag):
    """A tag's function type: its parameters are the exception's fields,
    its results must be empty."""
    ft = _functype(types, tag.typeidx)
    if ft.results:
        _fail('non-empty tag result type')
    return ft


def validate_module(module: S.Module, standard=3) -> ModuleInfo:
    """Check ``module`` against valid/modules.rst; return its ModuleInfo.

    Raises errors.ValidationError(message, where)."""
    if standard not in STANDARDS:
        raise ValueError(f'unknown standard {standard!r}')
    token = _STANDARD.set(standard)
    try:
        return _validate_module(module, standard)
    finally:
        _STANDARD.reset(token)


def _validate_module(module, standard):
    ctx, nig = _context(module)
    # C': a global's initializer sees the imported and the earlier globals,
    # a segment every global (Wasm 3.0); in 2.0 both saw the imported ones only
    ops = _CONST_OPS if standard >= 3 else _CONST_OPS_2
    def seeing(n):
        return _Context(ctx.types, ctx.funcs, ctx.tables, ctx.mems, ctx.globals[:n],
                        ctx.elems, ctx.ndatas, ctx.refs, ctx.keys, ctx.functypeidx)
    where = None
    try:
        for k, g in enumerate(module.globals):
            where = f'global {nig + k}'
            _check_valtype(ctx, g.type.valtype)
            _const_expr(seeing(nig + k if standard >= 3 else nig), g.init, g.type.valtype, ops)
        cctx = ctx if standard >= 3 else seeing(nig)
        for k, t in enumerate(module.tables):
            where = f'table {k}'
            _check_tabletype(t.type)
            _check_valtype(ctx, t.type.elemtype)
            if t.init is not None:      # tables come before the globals: imported ones only
                _const_expr(seeing(nig), t.init, t.type.elemtype, ops)
            elif not _defaultable(t.type.elemtype):
                _fail('type mismatch')
        for k, m in enumerate(module.mems):
            where = f'memory {k}'
            _check_memtype(m.type)
        for k, e in enumerate(module.elems):
            where = f'elem {k}'
            _check_valtype(ctx, e.type)
            for expr in e.init:
                _const_expr(cctx, expr, e.type, ops)
            if e.mode == 'active':
                if e.table >= len(ctx.tables):
                    _fail(f'unknown table {e.table}')
                _const_expr(cctx, e.offset, ctx.tables[e.table].at, ops)
                if not S.matches(e.type, ctx.tables[e.table].elemtype, ctx.keys):
                    _fail('type mismatch')
        for k, d in enumerate(module.datas):
            where = f'data {k}'
            if d.mode == 'active':
                if d.memory >= len(ctx.mems):
                    _fail(f'unknown memory {d.memory}')
                _const_expr(cctx, d.offset, ctx.mems[d.memory].at, ops)
    except _Invalid as e:
        raise ValidationError(e.args[0], where) from None

    infos = []
    nif = len(ctx.funcs) - len(module.funcs)
    for k, f in enumerate(module.funcs):
        ft = ctx.funcs[nif + k]
        try:
            infos.append(_check_code(ctx, ft.params, ft.results, f.locals, f.body))
        except _Invalid as e:
            idx = getattr(e, 'index', 0)
            off = f.body[idx].offset if idx < len(f.body) else -1
            raise ValidationError(
                e.args[0], f'func {nif + k} instr {idx} @{off}') from None

    try:
        where = 'start'
        if module.start is not None:
            x = module.start
            if x >= len(ctx.funcs):
                _fail(f'unknown function {x}')
            ft = ctx.funcs[x]
            if ft.params or ft.results:
                _fail('start function')
        names = set()
        for k, ex in enumerate(module.exports):
            where = f'export {k}'
            x = ex.index
            space = {'func': (ctx.funcs, 'function'), 'table': (ctx.tables, 'table'),
                     'memory': (ctx.mems, 'memory'), 'global': (ctx.globals, 'global'),
                     'tag': (ctx.tags, 'tag')}
            lst, what = space[ex.kind]
            if x >= len(lst):
                _fail(f'unknown {what} {x}')
            if ex.name in names:
                _fail('duplicate export name')
            names.add(ex.name)
        where = 'module'
        if len(ctx.mems) > 1 and standard < 3:
            _fail('multiple memories')
    except _Invalid as e:
        raise ValidationError(e.args[0], where) from None

    return ModuleInfo(infos, ctx.funcs, ctx.tables, ctx.mems, ctx.globals,
                      ctx.elems, ctx.refs, ctx.tags)


def _replay_context(module):
    """The validation context C of a (valid) module for replaying its
    bodies, built once per module (building it costs milliseconds)."""
    cache = module.__dict__.setdefault('_operand_types_cache', {})
    ctx = cache.get('ctx')
    if ctx is None:
        ctx = cache['ctx'] = _context(module)[0]
    return ctx


def operand_types(module: S.Module, funcidx: int, pc: int) -> list:
    """Operand types on the stack before instruction ``pc`` of defined
    function ``funcidx`` (index into module.funcs), by replaying validation.

    The module must be valid.  Entries are value type strings; in
    unreachable code an entry may be None (the algorithm's Unknown)."""
    # Cached per module: the migration check asks for the same positions
    # thousands of times, and building C and replaying the body dominate.
    cache = module.__dict__.get('_operand_types_cache')
    if cache is None:
        cache = module.__dict__['_operand_types_cache'] = {}
    key = (funcidx, pc)
    hit = cache.get(key)
    if hit is None:
        ctx = _replay_context(module)
        f = module.funcs[funcidx]
        ft = module.types[f.typeidx]
        if f.body[pc].op in _CLOSE_OPS:
            hit = _types_at_end(module, funcidx, ctx, f, ft, pc)
        elif len(f.body) <= TRACED_BODY and ('asked', funcidx) in cache:
            # a small body asked about again: one pass gives every position
            # (the fuzz oracle's random stops would replay it each time)
            trace = []
            _check_code(ctx, ft.params, ft.results, f.locals, f.body, trace=trace)
            for i, types in enumerate(trace):
                if f.body[i].op not in _CLOSE_OPS:
                    cache[funcidx, i] = types
            hit = trace[pc]
        else:
            cache['asked', funcidx] = True
            hit = tuple(_check_code(ctx, ft.params, ft.results, f.locals, f.body, stop=pc))
        cache[key] = hit
    return list(hit)


# bodies of at most this many instructions have every position's operand
# types cached at the second question about a new position (at most
# TRACED_BODY**2 / 2 entries; a body asked once, as most in the spec suite's
# migrations, costs only the replay up to its position)
TRACED_BODY = 2048


def unset_locals(module: S.Module, funcidx: int, pc: int) -> frozenset:
    """Indices of the non-defaultable locals of defined function ``funcidx``
    that are not initialized before instruction ``pc`` (3.0 local_init):
    the only locals of a non-nullable type that may hold no value (null)."""
    cache = module.__dict__.setdefault('_unset_locals_cache', {})
    key = (funcidx, pc)
    hit = cache.get(key)
    if hit is not None:
        return hit
    f = module.funcs[funcidx]
    if all(_defaultable(t) for t in f.locals):
        hit = cache[key] = frozenset()
    else:
        ctx = _replay_context(module)
        ft = module.types[f.typeidx]
        unset = set()
        _check_code(ctx, ft.params, ft.results, f.locals, f.body, stop=pc, unset=unset)
        hit = cache[key] = frozenset(unset)
    return hit


def operand_trace(module: S.Module, funcidx: int) -> list:
    """Operand type stacks before every instruction of defined function
    ``funcidx``, from one validation pass (``operand_types`` for all pcs),
    as tuples (a body of thousands of instructions: copying each stack
    into a list cost as much as the pass)."""
    ctx = _replay_context(module)
    f = module.funcs[funcidx]
    ft = module.types[f.typeidx]
    trace = []
    _check_code(ctx, ft.params, ft.results, f.locals, f.body, trace=trace)
    return trace


_BLOCK_OPS = frozenset(('block', 'loop', 'if', 'try_table', 'try'))
_CLOSE_OPS = frozenset(('end', 'delegate'))


class BlockStructure:
    """The nesting of one function's blocks, from one pass over its code
    (``block_structure``): which blocks are open before any instruction
    and the operand types at each block's entry.  Label replay at a frame
    then costs the number of open labels, not the code before the PC
    (a stop deep inside 100k nested blocks would otherwise be quadratic)."""

    __slots__ = ('innermost', 'parent', 'entry_types')

    def __init__(self, body, entry_types):
        self.entry_types = entry_types      # block index -> operand types before it
        self.innermost = innermost = [-1] * (len(body) + 1)   # innermost block open before i
        self.parent = parent = {}           # block index -> enclosing block (-1: none)
        cur = -1
        for i, ins in enumerate(body):
            innermost[i] = cur
            op = ins.op
            if op in _BLOCK_OPS:
                parent[i] = cur
                cur = i
            elif op in _CLOSE_OPS and cur != -1:
                cur = parent[cur]
        innermost[len(body)] = cur

    def open_at(self, pc):
        """Same as ``blocks_open_at``: open blocks before ``pc``, outermost first."""
        out = []
        b = self.innermost[pc]
        while b != -1:
            out.append(b)
            b = self.parent[b]
        out.reverse()
        return out


def block_structure(module: S.Module, funcidx: int, trace=None) -> BlockStructure:
    """The ``BlockStructure`` of defined function ``funcidx``, cached per
    module (``trace``: its ``operand_trace``, when the caller has it)."""
    cache = module.__dict__.get('_block_structure_cache')
    if cache is None:
        cache = module.__dict__['_block_structure_cache'] = {}
    bs = cache.get(funcidx)
    if bs is None:
        body = module.funcs[funcidx].body
        if trace is None:
            trace = operand_trace(module, funcidx)
        entry = {i: trace[i] for i, ins in enumerate(body) if ins.op in _BLOCK_OPS}
        bs = cache[funcidx] = BlockStructure(body, entry)
    return bs


def blocktype_of(ins):
    """The block type of a block/loop/if/try/try_table instruction."""
    return ins.imm[0] if ins.op == 'try_table' else ins.imm


def blocks_open_at(body, pc):
    """Indices of the block/loop/if instructions still open before
    instruction ``pc``, outermost first: besides the function's own, the
    labels of the control stack there."""
    open_blocks = []
    for i in range(pc):
        op = body[i].op
        if op in _BLOCK_OPS:
            open_blocks.append(i)
        elif op in _CLOSE_OPS and open_blocks:
            open_blocks.pop()
    return open_blocks


def _types_at_end(module, funcidx, ctx, f, ft, pc):
    """At an ``end`` the stack is the block's entry height plus its results,
    however the ``end`` is reached: a branch lands there (WAMR's target_addr
    of a block, and both models' target for the function label) straight
    from unreachable code, where replaying validation knows nothing."""
    open_blocks = blocks_open_at(f.body, pc)
    if not open_blocks:
        return tuple(ft.results)
    b = open_blocks[-1]
    params, results = _blocktype(ctx, blocktype_of(f.body[b]))
    below = operand_types(module, funcidx, b)
    if f.body[b].op == 'if':
        below = below[:-1]
    return tuple(below[:len(below) - len(params)]) + results
