"""WasmEdge-style interpreter: the function body is the flat instruction list
(syntax.Func.body), PC is an index into it, the operand stack holds whole
values and a frame is {func, from_pc, locals, arity, vpos}.

Each function is pre-decoded once (cached on its FuncInst) into two
parallel lists, ``ops`` (small ints selecting a case of the run loop) and
``args`` (the resolved immediate: a constant, a local index, a bound
numeric function, a branch record, a store object...).  Branch records come
from the validator's side table, so there is no label stack at run time:
a branch keeps ``keep`` values, drops everything above the label's entry
height and jumps.  ``block``/``loop``/inner ``end`` are no-ops; the
function's final ``end`` returns.  Control flow lands and counts where the
real WasmEdge's does (its ``--dispatch-limit`` must stop at the same
place): a branch lands on the block's ``end`` or on the ``loop``, a false
``if`` on its ``end``, or after its ``else`` with the ``else`` counted.

All execution state lives in ``stack``, ``frames`` and ``pc`` on the
executor, and the loop is one ``while`` that can stop after any number of
instructions (``run(max_steps)``), so a run can be checkpointed and resumed
between any two instructions.
"""

from .. import deftypes, faults
from .. import syntax as S
from . import exceptions, fusion, gc, memories, memory_access, numerics
from ..errors import Exhaustion, Trap
from ..limits import CallDepthError, run_bounded
from ..runtime import PAGE_SIZE, default_value, memory_init, table_init

MAX_STACK = 1_000_000
NAME = 'wasmedge'

_M32 = 0xFFFFFFFF
_BIG = 1 << 62


class Frame:
    """An activation: ``locals`` = params + declared locals, stored on the
    value stack from ``vpos``; ``from_pc`` = where the caller continues."""
    __slots__ = ('func', 'from_pc', 'locals', 'arity', 'vpos')

    def __init__(self, func, from_pc, locals, arity, vpos):
        self.func = func
        self.from_pc = from_pc
        self.locals = locals
        self.arity = arity
        self.vpos = vpos

    def __repr__(self):
        return (f'Frame(func={self.func}, from_pc={self.from_pc}, '
                f'locals={self.locals}, arity={self.arity}, vpos={self.vpos})')


class Code:
    """The pre-decoded form of one function: ``ops``/``args`` one case per
    instruction, ``fops``/``fargs`` the same with superinstructions
    (``engine.exec.fusion``) at the start of every fused sequence."""
    __slots__ = ('ops', 'args', 'fops', 'fargs', 'nparams', 'nlocals', 'zeros',
                 'arity', 'mem', 'dirty', 'sites')

    def __init__(self, ops, args, fops, fargs, nparams, zeros, arity, mem, dirty, sites=()):
        self.ops = ops
        self.args = args
        self.fops = fops
        self.fargs = fargs
        self.nparams = nparams
        self.zeros = zeros
        self.nlocals = nparams + len(zeros)
        self.arity = arity
        self.mem = mem
        self.dirty = dirty          # memory 0's chunk flags (MemInst.dirty)
        self.sites = sites          # the instance's arguments (fusion.binder)


# Operation kinds of the run loop (hot ones first: the loop tests in order;
# 30 is free: call_indirect is a CALL whose argument is (table, type)).
(LOCAL_GET, CONST, NOP, BR_IF, LOCAL_SET, BIN, I32_ADD, I32_SUB, BR,
 LOCAL_TEE, I32_EQZ, I32_LT_S, I32_LT_U, I32_EQ, I32_NE, I32_AND, I64_ADD,
 I64_SUB, UN, IF, JUMP, CALL, RETURN, LOAD, STORE, GLOBAL_GET, GLOBAL_SET,
 DROP, SELECT, BR_TABLE, _FREE, GENERIC, UNREACHABLE, I32_GT_S,
 I32_GT_U, I32_LE_S, I32_LE_U, I32_GE_S, I32_GE_U, I32_MUL, I32_OR,
 I32_SHL, I32_SHR_U) = range(43)
RETURN_CALL = _FREE      # tail calls take the free slot below the superinstructions

# Superinstructions (engine.exec.fusion): local.get+unop, then one case per
# shape in fusion.SHAPES order (the run loop tests for all of them at once
# with F_FIRST), the conditions from F_COND, the ifs among them from F_IF.
F_FIRST = 43
F_UNARY = 43                    # local.get x; unop
SHAPES = fusion.numbered(F_FIRST + 1)
F_COND = F_FIRST + 1 + len(fusion.VALUE_SHAPES)
F_IF = F_COND + len(fusion.COND_SOURCES)
# A branch lands on a loop or a block's end (a no-op that counts); a
# condition right after one absorbs it, so sequences reach one more.
LONGEST = fusion.LONGEST + 1

_INLINE = {
    'i32.add': I32_ADD, 'i32.sub': I32_SUB, 'i32.eqz': I32_EQZ,
    'i32.lt_s': I32_LT_S, 'i32.lt_u': I32_LT_U, 'i32.eq': I32_EQ,
    'i32.ne': I32_NE, 'i32.and': I32_AND, 'i64.add': I64_ADD,
    'i64.sub': I64_SUB, 'i32.gt_s': I32_GT_S, 'i32.gt_u': I32_GT_U,
    'i32.le_s': I32_LE_S, 'i32.le_u': I32_LE_U, 'i32.ge_s': I32_GE_S,
    'i32.ge_u': I32_GE_U, 'i32.mul': I32_MUL, 'i32.or': I32_OR,
    'i32.shl': I32_SHL, 'i32.shr_u': I32_SHR_U,
}

_CONSTS = frozenset(('i32.const', 'i64.const', 'f32.const', 'f64.const',
                     'v128.const'))

# Loads: name -> (bytes, unpack_from(mem, ea) -> (value,), result mask);
# a signed load unpacks signed and the mask wraps it to the result width.
_LOADS = {name: (w, memory_access.unpacker(w, sg), mask)
          for name, (w, sg, mask) in memory_access.LOADS.items()}
# Stores: name -> (bytes, pack_into(mem, ea, value), value mask = wrap to
# the stored width).
_STORES = {name: (w, memory_access.packer(w), mask)
           for name, (w, mask) in memory_access.STORES.items()}


def _trap_mem():
    raise Trap('out of bounds memory access')


def _trap_table():
    raise Trap('out of bounds table access')


# ------------------------------------------------------------ pre-decoding

def code_of(store, funcaddr):
    """The cached pre-decoded code of a (non-host) function."""
    fi = store.funcs[funcaddr]
    c = fi.cache.get(NAME)
    if c is None:
        c = fi.cache[NAME] = fusion.pre_decode(compile_func, store, fi, NAME)
    return c


def compile_func(store, fi):
    """Pre-decode a function body into the run loop's (ops, args) form."""
    inst = fi.module
    info = fi.info
    if info is None:
        raise RuntimeError('function has no validation info')
    body = fi.code.body
    last = len(body) - 1
    mem = store.mems[inst.memaddrs[0]].data if inst.memaddrs else None
    memi = store.mems[inst.memaddrs[0]] if inst.memaddrs else None
    else_if = {e: i for i, e in info.else_of.items()}
    branches = info.branches
    ops = []
    args = []
    sites = []
    bound = fusion.binder(sites, store, inst, memi, fi)
    exn = exceptions.handlers_of(fi) if exceptions.has_handlers(body) else None
    if exn is not None:     # a catch / catch_all reached from the arm before it: past the end
        for t in exn.tries.values():
            for ci, _ in t.catches:
                else_if[ci] = t.pos

    def br(b):
        # Like WasmEdge (PC += PCOffset - 1, then PC++): a branch lands ON the
        # block's 'end' or the 'loop' instruction, which then runs as a no-op
        # (and counts); the function label's target is its final 'end'.
        return (b.target - 1, b.keep, b.label_height)

    gen = memories.uses_general(store, fi)   # several memories, memory64, table64
    for i, ins in enumerate(body):
        name = ins.op
        imm = ins.imm
        if gen and memories.general(store, inst, ins):
            k, a = GENERIC, bound(i, _stack_closure, memories, ins)
        elif name == 'local.get':
            k, a = LOCAL_GET, imm
        elif name in _CONSTS:
            k, a = CONST, imm
        elif name == 'local.set':
            k, a = LOCAL_SET, imm
        elif name == 'local.tee':
            k, a = LOCAL_TEE, imm
        elif name in _INLINE:
            k, a = _INLINE[name], None
        elif name in ('block', 'loop', 'nop', 'try_table', 'try', 'delegate'):
            k, a = NOP, None
        elif name in ('catch', 'catch_all'):
            k, a = JUMP, info.end_of[else_if[i]] + 1
        elif name in ('throw', 'throw_ref', 'rethrow'):
            k, a = GENERIC, bound(i, _throw, name, imm, i)
        elif name == 'end':
            k, a = (RETURN, None) if i == last else (NOP, None)
        elif name == 'br_if':
            k, a = BR_IF, br(branches[i][0])
        elif name == 'br':
            k, a = BR, br(branches[i][0])
        elif name == 'br_table':
            k, a = BR_TABLE, [br(b) for b in branches[i]]
            if faults.BR_TABLE_DEFAULT: a[-1] = br(faults.mirrored_default_branch(body, info, inst.types, fi.type.results, i))
        elif name == 'if':
            # WasmEdge's false 'if': without 'else' it lands on the 'end'; with
            # one it continues after the 'else' and counts the 'else' as
            # executed (runIfElseOp: Stat->incInstrCount()), marked by a < 0
            k = IF
            a = -(info.else_of[i] + 1) if i in info.else_of else info.end_of[i]
        elif name == 'else':
            k, a = JUMP, info.end_of[else_if[i]] + 1
        elif name == 'return':
            k, a = RETURN, None
        elif name == 'call':
            k, a = CALL, bound(i, fusion.funcaddr, imm)
        elif name == 'call_indirect':       # CALL resolves it through the table
            k, a = CALL, bound(i, fusion.table_call, imm)
        elif name == 'return_call':         # tail calls: argument as for CALL, plus
            k, a = RETURN_CALL, bound(i, fusion.tail, fusion.funcaddr, (imm,), last)    # the final end
        elif name == 'return_call_indirect':
            k, a = RETURN_CALL, bound(i, fusion.tail, fusion.table_call, (imm,), last)
        elif name == 'call_ref':            # CALL through a reference: (None, type)
            k, a = CALL, (None, inst.types[imm])
        elif name == 'return_call_ref':
            k, a = RETURN_CALL, ((None, inst.types[imm]), last)
        elif name == 'br_on_null' or name == 'br_on_non_null':
            k, a = GENERIC, _br_on(name == 'br_on_null', br(branches[i][0]))
        elif name in _LOADS:
            n, unpack, mask = _LOADS[name]
            k, a = LOAD, (imm[1], n, unpack, mask)
        elif name in _STORES:
            n, pack, mask = _STORES[name]
            k, a = STORE, (imm[1], n, pack, mask)
        elif name == 'global.get':
            k, a = GLOBAL_GET, bound(i, _global, imm)
        elif name == 'global.set':
            k, a = GLOBAL_SET, bound(i, _global, imm)
        elif name == 'drop':
            k, a = DROP, None
        elif name == 'select':
            k, a = SELECT, None
        elif name == 'unreachable':
            k, a = UNREACHABLE, None
        elif name == 'ref.null':
            k, a = CONST, None
        elif name == 'ref.func':
            k, a = CONST, bound(i, fusion.funcaddr, imm)
        elif name in numerics.OPS:
            f = numerics.OPS[name]
            if len(_sig(name)[0]) == 2:
                k, a = BIN, f
            else:
                k, a = UN, f
        elif name in gc.OPS:
            k, a = GENERIC, (_stack_closure(store, inst, memi, fi, gc, ins) if name in gc.MODULE_ONLY
                             else bound(i, _stack_closure, gc, ins))
        elif name in gc.BRANCHES:
            k, a = GENERIC, bound(i, _br_on_cast, imm[2], name == 'br_on_cast', br(branches[i][0]))
        else:
            k, a = GENERIC, bound(i, _generic, name, imm)
        ops.append(k)
        args.append(a)
    fops, fargs = list(ops), list(args)
    for i, op, a in fusion.cached(info, NAME, lambda: _fused(body, ops, args, branches, br, last)):
        fops[i], fargs[i] = op, a
    zeros = [default_value(t) for t in fi.code.locals]
    return Code(ops, args, fops, fargs, len(fi.type.params), zeros, len(fi.type.results),
                mem, memi.dirty if memi is not None else None, sites)


# The instance's parts of a pre-decoded function: fusion.binder's makers,
# (store, inst, memory 0, FuncInst, *params) -> argument (and fusion's
# funcaddr, table_call, tail).

def _global(store, inst, memi, fi, x):
    return store.globals[inst.globaladdrs[x]]


def _stack_closure(store, inst, memi, fi, ops, ins):
    """A memories or gc instruction as a closure on the value stack."""
    fn, p, r = ops.instruction(store, inst, ins)
    return memories.stack_closure(fn, len(p), len(r))


def _fused(body, ops, args, branches, br, last):
    """The superinstruction cases of a function as (index, case, argument)
    over its plain ``ops``/``args``; store-independent, so computed once
    per function of a decoded module (``fusion.cached``)."""
    fops, fargs = list(ops), list(args)
    if last and ops[last - 1] == NOP:   # an end (or nop) right before the final end
        fops[last - 1], fargs[last - 1] = RETURN, 1
    for i, (x, f, _) in fusion.unary_fusions(body).items():
        fops[i], fargs[i] = F_UNARY, (x, f)
    for i, fu in fusion.fusions(body, SHAPES).items():
        fops[i] = op = SHAPES[fu.src1[0], fu.src2[0], fu.dst]
        srcs = fusion.operands(fu)
        if op >= F_COND:        # sources (as COND_SOURCES), operands, test, target, k - 1
            fargs[i] = ((op - F_COND) % len(fusion.COND_SOURCES),) + srcs + (
                fu.fn, br(branches[fu.dst_arg][0]) if fu.dst == fusion.BRIF
                else args[fu.dst_arg], fu.k - 1)
        else:
            fargs[i] = tuple(v for v in srcs if v is not None) + (fu.fn,) + (
                (fu.dst_arg,) if fu.dst == fusion.SET else ())
    for i in range(len(body) - 1):      # no-op; condition -> the condition counting k + 1
        if ops[i] == NOP and fops[i + 1] >= F_COND and fops[i + 1] < F_IF + len(fusion.COND_SOURCES):
            fops[i], fargs[i] = fops[i + 1], fargs[i + 1][:-1] + (fargs[i + 1][-1] + 1,)
    return fusion.changes(ops, args, fops, fargs)


def _block_params(types, bt):
    return types[bt].params if isinstance(bt, int) else ()


def resolve_callee(a, pop, funcs):
    """(FuncInst, funcaddr) of a call's argument: a funcaddr, or (table,
    type) of an indirect call, whose table index is popped and checked, or
    (None, type) of call_ref, whose function reference is popped (its type
    is guaranteed by validation)."""
    if a.__class__ is tuple:
        tab, ft = a
        if tab is None:                 # call_ref: the reference is the callee
            a = pop()
            if a is None or a == 0xFFFFFFFF:    # null (a value, or WAMR's null cell)
                raise Trap('null function reference')
            return funcs[a], a
        i = pop()
        if i >= len(tab.elem):
            raise Trap('undefined element')
        a = tab.elem[i]
        if a is None:
            raise Trap(f'uninitialized element {i}')
        fi = funcs[a]
        if fi.type is not ft and not deftypes.deftype_matches(S.type_key(fi.type), S.type_key(ft)):
            raise Trap('indirect call type mismatch')
        return fi, a
    return funcs[a], a


def _throw(store, inst, memi, fi, name, imm, at):
    """throw / throw_ref / rethrow as a closure raising ``Thrown``
    (``rethrow`` names the caught slot; the executor fills in the exception)."""
    Thrown, Exn = exceptions.Thrown, exceptions.Exn
    if name == 'throw':
        tag = inst.tagaddrs[imm]
        n = len(store.tags[tag].type.params)

        def f(stack):
            fields = stack[len(stack) - n:]
            del stack[len(stack) - n:]
            raise Thrown(Exn(tag, fields), at)
    elif name == 'throw_ref':
        def f(stack):
            v = stack.pop()
            if v is None:
                raise Trap('null exception reference')
            raise Thrown(v, at)
    else:
        slot = exceptions.handlers_of(fi).rethrow[at]

        def f(stack):
            raise Thrown(slot, at)
    return f


def _sig(name):
    from ..opcodes import BY_NAME
    return BY_NAME[name].sig


def _br_on(on_null, branch):
    """br_on_null / br_on_non_null as a GENERIC closure: it returns the
    branch (target, keep, label height) when taken, after dropping a null
    (br_on_null); otherwise None, leaving a non-null reference (br_on_null)
    or dropping the null (br_on_non_null)."""
    if on_null:
        def f(stack):
            if stack[-1] is None:
                stack.pop()
                return branch
            return None
    else:
        def f(stack):
            if stack[-1] is None:
                stack.pop()
                return None
            return branch
    return f


def _br_on_cast(store, inst, memi, fi, rt, on_cast, branch):
    """br_on_cast / br_on_cast_fail as a GENERIC closure: the reference
    stays on the stack either way; the branch is taken when the cast to
    ``rt`` succeeds (br_on_cast) or fails (br_on_cast_fail)."""
    test = gc.cast_test(store, inst, rt)

    def f(stack):
        return branch if test(stack[-1]) == on_cast else None
    return f


def _take(stack, fbase, branch):
    """A branch a GENERIC closure took (rare: br_on_*), as BR does it inline:
    keep the label's values, drop the operands down to its height; the pc."""
    target, keep, lh = branch
    top, lb = len(stack) - keep, fbase + lh
    if top > lb:
        del stack[lb:top]
    return target


def _generic(store, inst, memi, fi, name, imm):
    """A closure ``f(stack)`` for the rarer instructions; one that may
    branch returns the taken branch (see ``_br_on``)."""
    if name == 'ref.is_null':
        def f(stack):
            stack[-1] = 1 if stack[-1] is None else 0
        return f
    if name == 'ref.as_non_null':
        def f(stack):
            if stack[-1] is None:
                raise Trap('null reference')
        return f
    if name == 'memory.size':
        def f(stack):
            stack.append(len(memi.data) // PAGE_SIZE)
        return f
    if name == 'memory.grow':
        def f(stack):
            r = memi.grow(stack[-1])
            stack[-1] = r & _M32
        return f
    if name == 'memory.fill':
        mem = memi.data

        def f(stack):
            n = stack.pop()
            v = stack.pop()
            d = stack.pop()
            if d + n > len(mem):
                _trap_mem()
            mem[d:d + n] = bytes((v & 0xFF,)) * n
            memi.mark(d, n)
        return f
    if name == 'memory.copy':
        mem = memi.data

        def f(stack):
            n = stack.pop()
            s = stack.pop()
            d = stack.pop()
            if s + n > len(mem) or d + n > len(mem):
                _trap_mem()
            mem[d:d + n] = mem[s:s + n]
            memi.mark(d, n)
        return f
    if name == 'memory.init':
        ma, da = inst.memaddrs[0], inst.dataaddrs[imm]

        def f(stack):
            n = stack.pop()
            s = stack.pop()
            memory_init(store, ma, da, stack.pop(), s, n)
        return f
    if name == 'data.drop':
        di = store.datas[inst.dataaddrs[imm]]

        def f(stack):
            di.data = b''
        return f
    if name == 'elem.drop':
        ei = store.elems[inst.elemaddrs[imm]]

        def f(stack):
            ei.elem = []
        return f
    if name in ('table.get', 'table.set', 'table.size', 'table.grow',
                'table.fill'):
        tab = store.tables[inst.tableaddrs[imm]]
        if name == 'table.get':
            def f(stack):
                i = stack[-1]
                if i >= len(tab.elem):
                    _trap_table()
                stack[-1] = tab.elem[i]
        elif name == 'table.set':
            def f(stack):
                v = stack.pop()
                i = stack.pop()
                if i >= len(tab.elem):
                    _trap_table()
                tab.elem[i] = v
        elif name == 'table.size':
            def f(stack):
                stack.append(len(tab.elem))
        elif name == 'table.grow':
            def f(stack):
                n = stack.pop()
                v = stack[-1]
                stack[-1] = tab.grow(n, v) & _M32
        else:
            def f(stack):
                n = stack.pop()
                v = stack.pop()
                d = stack.pop()
                if d + n > len(tab.elem):
                    _trap_table()
                tab.elem[d:d + n] = [v] * n
        return f
    if name == 'table.copy':
        dt = store.tables[inst.tableaddrs[imm[0]]]
        st = store.tables[inst.tableaddrs[imm[1]]]

        def f(stack):
            n = stack.pop()
            s = stack.pop()
            d = stack.pop()
            if s + n > len(st.elem) or d + n > len(dt.elem):
                _trap_table()
            dt.elem[d:d + n] = st.elem[s:s + n]
        return f
    if name == 'table.init':
        elemidx, tableidx = imm
        ta, ea = inst.tableaddrs[tableidx], inst.elemaddrs[elemidx]

        def f(stack):
            n = stack.pop()
            s = stack.pop()
            table_init(store, ta, ea, stack.pop(), s, n)
        return f
    return _simd(memi, name, imm)


def _simd(memi, name, imm):
    """SIMD instructions other than v128.load/store/const: the pure
    ``simd.instruction`` function adapted to the whole-value stack, with one
    closure shape per operand count so the hot path has no loop or splat."""
    from . import simd
    fn, params, results = simd.instruction(name, imm, memi)
    n = len(params)
    if results:
        if n == 1:
            def f(stack):
                stack[-1] = fn(stack[-1])
        elif n == 2:
            def f(stack):
                b = stack.pop()
                stack[-1] = fn(stack[-1], b)
        elif n == 3:
            def f(stack):
                c = stack.pop()
                b = stack.pop()
                stack[-1] = fn(stack[-1], b, c)
        else:
            def f(stack):
                stack.append(fn())
    else:
        def f(stack):
            b = stack.pop()
            fn(stack.pop(), b)
    return f


# ---------------------------------------------------------------- executor

class Executor:
    """Runs functions of a Store; see the module docstring for the state."""
    model = NAME               # the runtime model whose state this executor holds

    def __init__(self, store):
        self.store = store
        self.stack = []
        self.frames = []
        self.pc = 0
        self.steps = 0
        self.results = None
        self.finished = True
        self.caught = {}       # (frame index, catch depth) -> Exn of an open legacy catch arm

    # -- the embedder's view
    def invoke(self, funcaddr, args):
        """Run a function to completion and return its results."""
        self.start(funcaddr, args)
        run_bounded(self, self.store.limits)
        return self.results

    def start(self, funcaddr, args):
        """Set up the entry frame of a call from the host; no step runs."""
        store = self.store
        fi = store.funcs[funcaddr]
        self.steps = 0
        self.results = None
        if fi.host is not None:
            self.results = list(fi.host(list(args)))
            self.finished = True
            return
        code = code_of(store, funcaddr)
        self.stack = list(args)
        self.stack.extend(code.zeros)
        self.frames = [Frame(funcaddr, None, code.nlocals, code.arity, 0)]
        self.pc = 0
        self.finished = False

    def run(self, max_steps=None):
        """Execute up to ``max_steps`` instructions (all if None); True when
        the entry call has returned (results in ``self.results``).  An
        exception thrown in the run is caught here, outside the hot loop:
        the frames are unwound to its handler and the run goes on."""
        return exceptions.run_catching(self, max_steps)

    def unwind(self, e):
        """Pop frames until a handler catches ``e`` (a ``Thrown`` whose
        ``at`` is the index of the throwing instruction in the top frame),
        and continue there; none: the run ends with ``UncaughtException``."""
        store = self.store
        stack, frames = self.stack, self.frames
        exn = exceptions.exception_of(self, e)
        pos = e.at
        while frames:
            frame = frames[-1]
            fi = store.funcs[frame.func]
            found = exceptions.handlers_of(fi).find(pos, exn.tag) \
                if exceptions.has_handlers(fi.code.body) else None
            if found is not None:
                t, k = found
                fbase = frame.vpos + frame.locals
                if t.table:                 # try_table: a branch to the clause's label
                    kind, _, _ = t.clauses[k]
                    b = fi.info.branches[t.pos][k]
                    del stack[fbase + b.label_height:]
                    if kind < 2:
                        stack.extend(exn.fields)
                    if kind & 1:
                        stack.append(exn)
                    self.pc = b.target - 1      # lands on the end / loop, as a branch does
                else:                       # legacy: into the catch arm
                    body = fi.code.body
                    h = fi.info.heights[t.pos] - len(_block_params(fi.module.types, body[t.pos].imm))
                    del stack[fbase + h:]
                    if body[k].op == 'catch':
                        stack.extend(exn.fields)
                    h = exceptions.handlers_of(fi)
                    self.caught[(len(frames) - 1, h.catch_depth[k + 1] - 1)] = exn
                    self.pc = k + 1
                return
            del stack[frame.vpos:]
            frames.pop()
            if frames:
                pos = frame.from_pc - 1
        self.finished = True
        self.pc = 0
        raise exceptions.uncaught(exn)

    def _run(self, budget):
        """One turn of ``run``: at most ``budget`` (< 2**30) steps."""
        if self.finished:
            return True
        n = budget
        store = self.store
        max_frames = store.limits.max_call_depth
        funcs = store.funcs
        stack = self.stack
        frames = self.frames
        pop = stack.pop
        push = stack.append
        frame = frames[-1]
        code = code_of(store, frame.func)
        # superinstructions while the budget covers the longest one, then
        # the plain instructions for the last steps (exact stops)
        lim = LONGEST - 1 if n >= LONGEST else 0
        ops = code.fops if lim else code.ops
        args = code.fargs if lim else code.args
        mem = code.mem
        dirty = code.dirty
        vpos = frame.vpos
        fbase = vpos + frame.locals
        pc = self.pc
        try:
            while True:
                if n <= lim:
                    if n <= 0:
                        break
                    lim = 0
                    ops = code.ops
                    args = code.args
                n -= 1
                op = ops[pc]
                a = args[pc]
                pc += 1
                if op >= F_FIRST:   # superinstructions: count k, continue at +k
                    if op >= F_COND:     # [local.get|const]{0,2} compare; br_if / if
                        src, x, y, f, t, k = a
                        pc += k
                        n -= k
                        if src == 0:
                            c = f(stack[vpos + x], stack[vpos + y])
                        elif src == 1:
                            c = f(stack[vpos + x], y)
                        else:
                            if src == 2:
                                y = pop()
                            c = f(pop(), y)
                        if op < F_IF:
                            if c:        # as BR_IF below
                                target, keep, lh = t
                                top = len(stack) - keep
                                lb = fbase + lh
                                if top > lb:
                                    del stack[lb:top]
                                pc = target
                        elif not c:      # as IF below
                            if t < 0:
                                pc = -t
                                n -= 1
                            else:
                                pc = t
                    elif op < 48:
                        if op == 43:     # F_UNARY: local.get x; unop
                            x, f = a
                            pc += 1
                            n -= 1
                            push(f(stack[vpos + x]))
                        elif op == 44:   # local.get x; local.get y; binop
                            x, y, f = a
                            pc += 2
                            n -= 2
                            push(f(stack[vpos + x], stack[vpos + y]))
                        elif op == 45:   # local.get x; const y; binop
                            x, y, f = a
                            pc += 2
                            n -= 2
                            push(f(stack[vpos + x], y))
                        elif op == 46:   # local.get x; local.get y; binop; local.set d
                            x, y, f, d = a
                            pc += 3
                            n -= 3
                            stack[vpos + d] = f(stack[vpos + x], stack[vpos + y])
                        else:            # local.get x; const y; binop; local.set d
                            x, y, f, d = a
                            pc += 3
                            n -= 3
                            stack[vpos + d] = f(stack[vpos + x], y)
                    elif op == 48:       # local.get x; binop
                        x, f = a
                        pc += 1
                        n -= 1
                        stack[-1] = f(stack[-1], stack[vpos + x])
                    elif op == 49:       # const y; binop
                        y, f = a
                        pc += 1
                        n -= 1
                        stack[-1] = f(stack[-1], y)
                    elif op == 50:       # binop; local.set d
                        f, d = a
                        pc += 1
                        n -= 1
                        b = pop()
                        stack[vpos + d] = f(pop(), b)
                    elif op == 51:       # local.get x; binop; local.set d
                        x, f, d = a
                        pc += 2
                        n -= 2
                        stack[vpos + d] = f(pop(), stack[vpos + x])
                    else:                # const y; binop; local.set d
                        y, f, d = a
                        pc += 2
                        n -= 2
                        stack[vpos + d] = f(pop(), y)
                elif op < 9:
                    if op == 0:      # LOCAL_GET
                        push(stack[vpos + a])
                    elif op == 1:    # CONST
                        push(a)
                    elif op == 2:    # NOP
                        pass
                    elif op == 3:    # BR_IF
                        if pop():
                            target, keep, lh = a
                            top = len(stack) - keep
                            lb = fbase + lh
                            if top > lb:
                                del stack[lb:top]
                            pc = target
                    elif op == 4:    # LOCAL_SET
                        stack[vpos + a] = pop()
                    elif op == 5:    # BIN
                        b = pop()
                        stack[-1] = a(stack[-1], b)
                    elif op == 6:    # I32_ADD
                        b = pop()
                        stack[-1] = (stack[-1] + b) & 0xFFFFFFFF
                    elif op == 7:    # I32_SUB
                        b = pop()
                        stack[-1] = (stack[-1] - b) & 0xFFFFFFFF
                    else:            # BR
                        target, keep, lh = a
                        top = len(stack) - keep
                        lb = fbase + lh
                        if top > lb:
                            del stack[lb:top]
                        pc = target
                elif op < 19:
                    if op == 9:      # LOCAL_TEE
                        stack[vpos + a] = stack[-1]
                    elif op == 10:   # I32_EQZ
                        stack[-1] = 0 if stack[-1] else 1
                    elif op == 11:   # I32_LT_S
                        b = pop()
                        stack[-1] = 1 if (stack[-1] ^ 0x80000000) < (b ^ 0x80000000) else 0
                    elif op == 12:   # I32_LT_U
                        b = pop()
                        stack[-1] = 1 if stack[-1] < b else 0
                    elif op == 13:   # I32_EQ
                        b = pop()
                        stack[-1] = 1 if stack[-1] == b else 0
                    elif op == 14:   # I32_NE
                        b = pop()
                        stack[-1] = 1 if stack[-1] != b else 0
                    elif op == 15:   # I32_AND
                        b = pop()
                        stack[-1] &= b
                    elif op == 16:   # I64_ADD
                        b = pop()
                        stack[-1] = (stack[-1] + b) & 0xFFFFFFFFFFFFFFFF
                    elif op == 17:   # I64_SUB
                        b = pop()
                        stack[-1] = (stack[-1] - b) & 0xFFFFFFFFFFFFFFFF
                    else:            # UN
                        stack[-1] = a(stack[-1])
                elif op < 25:
                    if op > 22:
                        if op == 23:     # LOAD
                            off, w, unpack, mask = a
                            ea = stack[-1] + off
                            if ea + w > len(mem):
                                _trap_mem()
                            stack[-1] = unpack(mem, ea)[0] & mask
                        else:            # STORE
                            off, w, pack, mask = a
                            v = pop()
                            ea = pop() + off
                            if ea + w > len(mem):
                                _trap_mem()
                            pack(mem, ea, v & mask)
                            dirty[ea >> 12] = 1
                            dirty[(ea + w - 1) >> 12] = 1
                    else:
                        if op == 19:     # IF
                            if not pop():
                                if a < 0:
                                    pc = -a
                                    n -= 1
                                else:
                                    pc = a
                        elif op == 20:   # JUMP (else reached from the then-arm)
                            pc = a
                        elif op == 21:   # CALL (a funcaddr) or call_indirect (a (table, type))
                            if a.__class__ is tuple:     # indirect: through the table
                                fi, a = resolve_callee(a, pop, funcs)
                            else:
                                fi = funcs[a]
                            if fi.host is not None:
                                np = len(fi.type.params)
                                cargs = stack[len(stack) - np:]
                                del stack[len(stack) - np:]
                                stack.extend(fi.host(cargs))
                                continue
                            c = fi.cache.get(NAME)
                            if c is None:
                                c = code_of(store, a)
                            if len(frames) >= max_frames:
                                raise CallDepthError(max_frames)
                            if len(stack) > MAX_STACK:
                                raise Exhaustion('call stack exhausted')
                            vpos = len(stack) - c.nparams
                            frame = Frame(a, pc, c.nlocals, c.arity, vpos)
                            frames.append(frame)
                            stack.extend(c.zeros)
                            fbase = vpos + c.nlocals
                            code = c
                            ops = c.fops if lim else c.ops
                            args = c.fargs if lim else c.args
                            mem = c.mem
                            dirty = c.dirty
                            pc = 0
                        else:            # RETURN (also the function's last end)
                            if a:            # superinstruction: a no-op right before the final end
                                n -= a
                            ar = frame.arity
                            if ar:
                                res = stack[len(stack) - ar:]
                                del stack[vpos:]
                                stack.extend(res)
                            else:
                                del stack[vpos:]
                            frames.pop()
                            if not frames:
                                self.results = stack[:]
                                del stack[:]
                                self.finished = True
                                self.pc = 0
                                self.steps += budget - n
                                return True
                            pc = frame.from_pc
                            frame = frames[-1]
                            code = c = funcs[frame.func].cache[NAME]
                            vpos = frame.vpos
                            fbase = vpos + frame.locals
                            ops = c.fops if lim else c.ops
                            args = c.fargs if lim else c.args
                            mem = c.mem
                            dirty = c.dirty
                elif op == 25:       # GLOBAL_GET
                    push(a.value)
                elif op == 26:       # GLOBAL_SET
                    a.value = pop()
                elif op == 27:       # DROP
                    pop()
                elif op == 28:       # SELECT
                    c = pop()
                    b = pop()
                    if not c:
                        stack[-1] = b
                elif op == 29:       # BR_TABLE
                    i = pop()
                    target, keep, lh = a[i] if i < len(a) else a[-1]
                    top = len(stack) - keep
                    lb = fbase + lh
                    if top > lb:
                        del stack[lb:top]
                    pc = target
                elif op == 31:       # GENERIC (br_on_null/br_on_non_null: a taken branch)
                    b = a(stack)
                    if b is not None:
                        pc = _take(stack, fbase, b)
                elif op == 32:       # UNREACHABLE
                    raise Trap('unreachable')
                elif op == 30:       # RETURN_CALL: the callee replaces this frame
                    a, last = a
                    fi, a = resolve_callee(a, pop, funcs)
                    np = len(fi.type.params)
                    cargs = stack[len(stack) - np:]
                    del stack[vpos:]
                    if fi.host is not None:
                        # results on top, then this function's final end
                        # returns them; that end is part of this step
                        stack.extend(fi.host(cargs))
                        pc = last
                        n += 1
                        continue
                    c = fi.cache.get(NAME)
                    if c is None:
                        c = code_of(store, a)
                    stack.extend(cargs)
                    if len(stack) > MAX_STACK:
                        raise Exhaustion('call stack exhausted')
                    frame = Frame(a, frame.from_pc, c.nlocals, c.arity, vpos)
                    frames[-1] = frame
                    stack.extend(c.zeros)
                    fbase = vpos + c.nlocals
                    code = c
                    ops = c.fops if lim else c.ops
                    args = c.fargs if lim else c.args
                    mem = c.mem
                    dirty = c.dirty
                    pc = 0
                else:
                    b = pop()
                    x = stack[-1]
                    if op == 33:     # I32_GT_S
                        stack[-1] = 1 if (x ^ 0x80000000) > (b ^ 0x80000000) else 0
                    elif op == 34:   # I32_GT_U
                        stack[-1] = 1 if x > b else 0
                    elif op == 35:   # I32_LE_S
                        stack[-1] = 1 if (x ^ 0x80000000) <= (b ^ 0x80000000) else 0
                    elif op == 36:   # I32_LE_U
                        stack[-1] = 1 if x <= b else 0
                    elif op == 37:   # I32_GE_S
                        stack[-1] = 1 if (x ^ 0x80000000) >= (b ^ 0x80000000) else 0
                    elif op == 38:   # I32_GE_U
                        stack[-1] = 1 if x >= b else 0
                    elif op == 39:   # I32_MUL
                        stack[-1] = (x * b) & 0xFFFFFFFF
                    elif op == 40:   # I32_OR
                        stack[-1] = x | b
                    elif op == 41:   # I32_SHL
                        stack[-1] = (x << (b & 31)) & 0xFFFFFFFF
                    else:            # I32_SHR_U
                        stack[-1] = x >> (b & 31)
        except RecursionError:
            raise Exhaustion('call stack exhausted')
        except exceptions.Thrown:
            self.pc = pc
            self.steps += budget - n
            raise
        except Trap:
            self.pc = pc
            self.steps += budget - n
            self.finished = True
            raise
        self.pc = pc
        self.steps += budget - n
        return False

    @property
    def func(self):
        """The current function's address (top frame)."""
        return self.frames[-1].func if self.frames else None
