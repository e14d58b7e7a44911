"""Superinstructions: short, frequent instruction sequences that an
interpreter runs as one dispatch, while still counting every instruction.

Stack code spends most of its instructions fetching operands and storing
results (``local.get a; i32.const 1; i32.add; local.set a`` is four
dispatches for one addition).  ``fusions(body, ...)`` finds, in a
function's flat instruction list, sequences of the shape

    [operands] binop [destination]

with operands each a ``local.get`` or a constant (0, 1 or 2 of them: the
rest come from the operand stack, in order) and the destination a
``local.set`` (SET), a ``br_if`` (BRIF), an ``if`` (IF) or nothing (PUSH: the result stays
on the stack), ``binop`` being a numeric instruction of two operands and one
result.  Each executor turns a match at index ``i`` into one case of its run
loop that does the work of instructions ``i .. i+k-1``, counts ``k`` and
continues at ``i+k``; the plain instructions stay in place behind it, so a
branch or a return into the middle of a sequence runs them one by one.

Exact stops: a fused case is only taken while the remaining step budget
covers the longest sequence (``LONGEST``); the last steps of a budget run
the plain instructions, so ``run(n)`` stops before the same instruction
with the same count as without fusion.  A binop that can trap (integer
division and remainder) is only fused as the last instruction of its
sequence, so a trap leaves the same PC and count as the plain code (the
operand stack of a trapped run is never looked at again).
"""

from typing import Callable, Dict, NamedTuple, Optional

from .. import faults
from .numerics import OPS
from ..opcodes import BY_NAME

STACK, LOCAL, CONST = 'stack', 'local', 'const'
PUSH, SET, BRIF, IF = 'push', 'set', 'br_if', 'if'
LONGEST = 4                 # instructions of the longest sequence

# The shapes the interpreters implement, in their case order: results
# kept (PUSH, SET), then conditions (BRIF, IF) over the same four sources.
VALUE_SHAPES = ((LOCAL, LOCAL, PUSH), (LOCAL, CONST, PUSH), (LOCAL, LOCAL, SET),
                (LOCAL, CONST, SET), (STACK, LOCAL, PUSH), (STACK, CONST, PUSH),
                (STACK, STACK, SET), (STACK, LOCAL, SET), (STACK, CONST, SET))
COND_SOURCES = ((LOCAL, LOCAL), (LOCAL, CONST), (STACK, STACK), (STACK, CONST))
COND_SHAPES = tuple(src + (dst,) for dst in (BRIF, IF) for src in COND_SOURCES)
SHAPES = VALUE_SHAPES + COND_SHAPES


def numbered(first):
    """Shape -> case number, from ``first`` in ``SHAPES`` order."""
    return {shape: first + i for i, shape in enumerate(SHAPES)}


def operands(fu, local=lambda x: x):
    """The fetched operands of a match as case arguments: (src1, src2)
    with locals mapped by ``local`` and stack operands as None."""
    return tuple(None if kind == STACK else local(v) if kind == LOCAL else v
                 for kind, v in (fu.src1, fu.src2))


_CONSTS = frozenset(('i32.const', 'i64.const', 'f32.const', 'f64.const'))
_TRAPS = frozenset(('div_s', 'div_u', 'rem_s', 'rem_u'))


class Fused(NamedTuple):
    k: int                  # instructions covered
    src1: tuple             # (STACK, None) | (LOCAL, index) | (CONST, value)
    src2: tuple
    fn: Callable            # numerics.OPS[binop]
    binop: str
    dst: str                # PUSH | SET | BRIF
    dst_arg: Optional[int]  # SET: local index; BRIF/IF: index of the br_if/if


_TYPES = {}                 # (name, arity) -> numeric_types(name, arity)


def numeric_types(name, arity):
    """(operand types, result type) of a numeric instruction of ``arity``
    operands and one result, else None."""
    key = (name, arity)
    try:
        return _TYPES[key]
    except KeyError:
        pass
    op = BY_NAME.get(name)
    out = None
    if op is not None and op.sig is not None and name in OPS:
        params, results = op.sig
        if len(params) == arity and len(results) == 1:
            out = params, results[0]
    _TYPES[key] = out
    return out


def fusions(body, shapes, local_ok=lambda i: True,
            types_ok=lambda params, result: True) -> Dict[int, Fused]:
    """Index -> ``Fused`` for every sequence of ``body`` (a flat instruction
    list) whose shape ``(src1 kind, src2 kind, dst)`` is in ``shapes`` (the
    cases an executor implements); at each index the longest match wins.
    ``local_ok(i)``/``types_ok(params, result)`` restrict the locals and
    the binops an executor moves in one case (WAMR: by cell count)."""
    out = {}
    n = len(body)
    # the binops (two operands, one result) of the body: a sequence ends at one
    binops = {}
    for j, ins in enumerate(body):
        types = numeric_types(ins.op, 2)
        if types is not None and types_ok(*types):
            binops[j] = types
    starts = sorted({j - m for j in binops for m in (0, 1, 2) if j - m >= 0})
    for i in starts:
        best = None
        for m in range(2, -1, -1):               # operands fetched by the sequence
            j = i + m
            types = binops.get(j)
            if types is None:
                continue
            srcs = []
            for ins in body[i:j]:
                if ins.op == 'local.get' and local_ok(ins.imm):
                    srcs.append((LOCAL, ins.imm))
                elif ins.op in _CONSTS:
                    srcs.append((CONST, ins.imm))
                else:
                    break
            if len(srcs) != m:
                continue
            srcs = [(STACK, None)] * (2 - m) + srcs
            traps = body[j].op.split('.')[1] in _TRAPS
            nxt = body[j + 1] if j + 1 < n else None
            cands = []
            if nxt is not None and not traps:
                if nxt.op == 'local.set' and local_ok(nxt.imm):
                    cands.append((SET, nxt.imm, m + 2))
                elif nxt.op in ('br_if', 'if') and types[1] == 'i32':
                    cands.append((BRIF if nxt.op == 'br_if' else IF, j + 1, m + 2))
            cands.append((PUSH, None, m + 1))
            for dst, arg, k in cands:
                if k >= 2 and (srcs[0][0], srcs[1][0], dst) in shapes:
                    best = Fused(k, srcs[0], srcs[1], OPS[body[j].op], body[j].op, dst, arg)
                    break
            if best is not None:
                break
        if best is not None:
            out[i] = best
    return out


def unary_fusions(body, local_ok=lambda i: True, types_ok=lambda param, result: True):
    """Index -> (local index, ``numerics.OPS`` function, name) for every
    ``local.get x; unop`` pair (two instructions; the unop is the last, so
    one that traps leaves the plain code's PC and count)."""
    out = {}
    for i in range(len(body) - 1):
        ins = body[i]
        if ins.op == 'local.get' and local_ok(ins.imm):
            types = numeric_types(body[i + 1].op, 1)
            if types is not None and types_ok(types[0][0], types[1]):
                out[i] = (ins.imm, OPS[body[i + 1].op], body[i + 1].op)
    return out


def changes(ops, args, fops, fargs):
    """(index, case, argument) wherever ``fops``/``fargs`` (an executor's
    fused form) differ from its plain ``ops``/``args``."""
    return [(i, fops[i], fargs[i]) for i in range(len(ops))
            if fops[i] != ops[i] or fargs[i] is not args[i]]


_plain = [False]      # set while ``pre_decode`` makes a form without superinstructions


def cached(info, model, compute):
    """``compute()`` (a function's fused cases, which depend on its code
    only, never on the store) once per function of a decoded module: kept
    on its validation info, which every instance of the module shares, so
    the fresh stores of a migration chain do not search it again.  No
    case while ``pre_decode`` makes a plain form."""
    if _plain[0]:
        return ()
    memo = info.__dict__.setdefault('fused', {})
    out = memo.get(model)
    if out is None:
        out = memo[model] = compute()
    return out


def pre_decode(compile_func, store, fi, model, plain=None):
    """``compile_func(store, fi)``: an interpreter's pre-decoded form of a
    function, without superinstructions in a store of the compiled tier unless the
    function runs in the interpreter there for good (the generator refused
    it).  Otherwise the interpreter runs it only until it is compiled, and
    the matching would cost more than it saves (binary-trees: 9%); its
    plain instructions count and stop the same (``plain``: that choice made
    by the caller).

    Made once per function of a decoded module and form: the instances of
    a module (a migration check restores into fresh stores again and
    again) get a copy with only the instance's parts made anew, the
    ``sites`` the pre-decoder took from its store (``binder``)."""
    if plain is None:
        plain = False
        if store.tier == 'fast':
            from .compile import left_to_interpreter
            plain = not left_to_interpreter(fi, model)
    info = fi.info
    memo = info.__dict__.setdefault('pre_decoded', {}) if info is not None else {}
    key = (model, plain, faults.BR_TABLE_DEFAULT)
    t = memo.get(key)
    if t is not None:
        return _rebind(t, store, fi)
    _plain[0] = plain
    try:
        code = compile_func(store, fi)
    finally:
        _plain[0] = False
    memo[key] = _template(code)
    return code


def binder(sites, store, inst, memi, fi):
    """``bound(pos, maker, *params)``: a pre-decoder's argument at ``pos``
    that depends on the instance (a function address, a table, a global,
    memory 0, a closure over them): ``maker(store, inst, memi, fi,
    *params)``, noted in ``sites`` so that another instance of the module
    gets its own (``_rebind``)."""
    def bound(pos, maker, *params):
        sites.append((pos, maker, params))
        return maker(store, inst, memi, fi, *params)
    return bound


# Makers both pre-decoders share (the others are each executor's own).

def funcaddr(store, inst, memi, fi, x):
    """call's, return_call's and ref.func's function address."""
    return inst.funcaddrs[x]


def table_call(store, inst, memi, fi, imm):
    """call_indirect's (table, type), resolved by the run loop's CALL."""
    return store.tables[inst.tableaddrs[imm[1]]], inst.types[imm[0]]


def tail(store, inst, memi, fi, maker, params, end):
    """A tail call's argument: the callee's (``maker``), and where its
    function's final end is (an index or a byte offset)."""
    return maker(store, inst, memi, fi, *params), end


def _clone(code):
    c = object.__new__(type(code))
    for s in type(code).__slots__:
        setattr(c, s, getattr(code, s))
    return c


def _template(code):
    """``code`` without its instance: the sites' arguments and memory 0
    left out (a template must not keep a store alive), each site noting
    whether the fused form shares the plain argument there."""
    t = _clone(code)
    t.args, t.fargs = list(code.args), list(code.fargs)
    t.sites = [(pos, maker, params, code.fargs[pos] is code.args[pos])
               for pos, maker, params in code.sites]
    for pos, _, _, shared in t.sites:
        t.args[pos] = None
        if shared:
            t.fargs[pos] = None
    t.mem = t.dirty = None
    return t


def _rebind(t, store, fi):
    """The template ``t`` for the instance of ``fi``: its sites made from
    that instance, memory 0 its own; the rest shared (never written)."""
    inst = fi.module
    memi = store.mems[inst.memaddrs[0]] if inst.memaddrs else None
    c = _clone(t)
    if t.sites:
        args = c.args = list(t.args)
        fargs = c.fargs = list(t.fargs)
        for pos, maker, params, shared in t.sites:
            a = args[pos] = maker(store, inst, memi, fi, *params)
            if shared:
                fargs[pos] = a
    c.mem = memi.data if memi is not None else None
    c.dirty = memi.dirty if memi is not None else None
    return c
