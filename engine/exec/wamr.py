"""WAMR-style interpreter (the classic interpreter's model).

State, as WAMR's classic interpreter keeps it:

- the PC is a byte offset into the function's raw code (``Func.body_bytes``,
  the bytes after the local declarations); dispatch goes by that offset;
- the value stack is one list of 32-bit cells: i32/f32/references one cell,
  i64/f64 two (low word first), v128 four (lowest word first); a funcref
  cell is a store function address, an externref cell the handle, null is
  ``0xFFFFFFFF``;
- a frame is {func, ip, lp, labels}: ``lp`` is where its params + locals
  start on the cell stack (its operands follow them), ``ip`` is where the
  frame resumes once its callee returns (only meaningful for callers; the
  top frame's position is ``Executor.pc``), ``labels`` is its control stack
  (WAMR's csp area) of ``(begin_addr, target_addr, frame_sp, cell_num)``.

Labels are pushed and popped as ``translate.wamr_labels`` documents: the
function's own label at call entry, one per block/loop/if entered, popped
by ``end``; a branch reads ``frame_sp``/``cell_num`` of its target label,
keeps the top ``cell_num`` cells, drops the cells down to ``frame_sp`` and
pops the labels above the target, then continues at the target's
``target_addr``, as WAMR's ``POP_CSP_N`` does: for a block or if that is
its ``end``, which then runs and pops the label; for a loop its
``begin_addr`` (label kept); for the function label the final ``end``,
which returns.  ``else`` reached from the then-arm jumps to the ``end``
the same way.  So WAMR runs one instruction more than the WasmEdge model
per branch out of a block (WasmEdge continues after the ``end``), and the
same instruction count can name different points in the two models; the
translator maps positions, never counts.

Each function is pre-decoded once into three lists indexed by byte offset:
``ops`` (case of the run loop), ``args`` (resolved immediate) and ``nxt``
(offset of the following instruction).  Cell counts that depend on operand
types (drop, select, locals, branch values) are resolved at pre-decode time
by a small replay of the validator's type stack.
"""

import operator
import struct

from . import exceptions, fusion, gc, memories, memory_access, numerics
from ..errors import Exhaustion, Trap
from ..limits import CallDepthError, run_bounded
from ..opcodes import BY_NAME
from .wasmedge import resolve_callee
from .. import syntax as S
from ..runtime import default_value
from ..valid import blocktype_of
from .cells import CELLS, NONE, from_cells as value_of_cells, value_cells as cells_of_value

MAX_STACK = 1_000_000
NAME = 'wamr'

_M32 = 0xFFFFFFFF
_BIG = 1 << 62


class Frame:
    """One activation (see the module docstring)."""
    __slots__ = ('func', 'ip', 'lp', 'labels', 'code')

    def __init__(self, func, ip, lp, labels, code):
        self.func = func
        self.ip = ip
        self.lp = lp
        self.labels = labels
        self.code = code

    def __repr__(self):
        return (f'Frame(func={self.func}, ip={self.ip}, lp={self.lp}, '
                f'labels={self.labels})')


class Code:
    """The pre-decoded form of one function."""
    __slots__ = ('ops', 'args', 'fops', 'fargs', 'nxt', 'param_cells', 'local_cells', 'zeros',
                 'result_cells', 'results', 'func_label', 'mem', 'dirty', 'types', 'sites')

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)


# Operation kinds of the run loop (hot ones first: the loop tests in order;
# 31 is free: call_indirect is a CALL whose argument is (table, type)).
(LOCAL_GET, CONST, NOP, BR_IF, LOCAL_SET, BIN, I32_ADD, I32_SUB, BR,
 LOCAL_TEE, I32_EQZ, I32_LT_S, I32_LT_U, I32_EQ, I32_NE, I32_AND, BIN64,
 UN, BLOCK, END, IF, ELSE, CALL, RETURN, LOAD, STORE, GLOBAL_GET, GLOBAL_SET,
 DROP, SELECT, BR_TABLE, _FREE, GENERIC, UNREACHABLE, LOCAL_GET2,
 LOCAL_SET2, LOCAL_TEE2, CONSTN, DROPN, SELECTN, LOCAL_GETN, LOCAL_SETN,
 LOCAL_TEEN, I32_GT_S, I32_GT_U, I32_LE_S, I32_LE_U, I32_GE_S, I32_GE_U,
 I32_MUL, I32_OR, I32_SHL, I32_SHR_U, I64_ADD, I64_SUB, I64_EQZ) = range(56)
RETURN_CALL = _FREE      # tail calls take the free slot below the superinstructions

# Superinstructions (engine.exec.fusion): local.get+unop, any shape over
# two-cell operands (i64, f64: one general case), then one case per shape
# over one-cell values in fusion.SHAPES order (the run loop tests for all of
# them at once with F_FIRST), the conditions from F_COND, the ifs from F_IF.
F_FIRST = 56
F_UNARY = 56
WIDE = 57
SHAPES = fusion.numbered(F_FIRST + 2)
F_COND = F_FIRST + 2 + len(fusion.VALUE_SHAPES)
F_IF = F_COND + len(fusion.COND_SOURCES)
_SRC_KIND = {fusion.STACK: 0, fusion.LOCAL: 1, fusion.CONST: 2}
_DST_KIND = {fusion.PUSH: 0, fusion.SET: 1, fusion.BRIF: 2}

_INLINE = {
    'i32.add': I32_ADD, 'i32.sub': I32_SUB, 'i32.eqz': I32_EQZ,
    'i32.lt_s': I32_LT_S, 'i32.lt_u': I32_LT_U, 'i32.eq': I32_EQ,
    'i32.ne': I32_NE, 'i32.and': I32_AND, 'i32.gt_s': I32_GT_S,
    'i32.gt_u': I32_GT_U, 'i32.le_s': I32_LE_S, 'i32.le_u': I32_LE_U,
    'i32.ge_s': I32_GE_S, 'i32.ge_u': I32_GE_U, 'i32.mul': I32_MUL,
    'i32.or': I32_OR, 'i32.shl': I32_SHL, 'i32.shr_u': I32_SHR_U,
    'i64.add': I64_ADD, 'i64.sub': I64_SUB, 'i64.eqz': I64_EQZ,
}

_CONSTS = frozenset(('i32.const', 'i64.const', 'f32.const', 'f64.const',
                     'v128.const'))

# Loads: name -> (bytes, unpack_from(mem, ea) -> (value,), result mask,
# result cells); stores: name -> (bytes, pack_into, value mask, value cells).
# An 8-byte access moves its two cells as they lie in memory (cell count 0
# in the run loop: no 64-bit integer joined or split).
_LOADS = {name: (w, memory_access.unpacker(w, sg), mask, CELLS[BY_NAME[name].sig[1][0]])
          if w != 8 else (w, struct.Struct('<II').unpack_from, mask, 0)
          for name, (w, sg, mask) in memory_access.LOADS.items()}
_STORES = {name: (w, memory_access.packer(w), mask, CELLS[BY_NAME[name].sig[0][1]])
           if w != 8 else (w, struct.Struct('<II').pack_into, mask, 0)
           for name, (w, mask) in memory_access.STORES.items()}

# Instructions whose operands and results are all i32: the WasmEdge model's
# closures work on a cell stack unchanged.
_I32_ONLY = frozenset(('memory.size', 'memory.grow', 'memory.fill',
                       'memory.copy', 'memory.init', 'data.drop', 'elem.drop',
                       'table.size', 'table.copy', 'table.init'))


# f64 operations on cells: the operands' four cells are written into CELL4
# and read back as two floats (F64X2) for Python's own float operation; a
# result that is a number goes back to two cells the same way, a NaN (whose
# payload Python does not keep) is made by the exact ``numerics`` function
# on the operands' bits.  Joining cells into 64-bit integers for each
# operation cost a third more (the joined integers are multi-digit).
_PAIR = bytearray(16)
CELL4 = memoryview(_PAIR).cast('I')
F64X2 = memoryview(_PAIR).cast('d')
_NAN = float('nan')
F64_FLOAT = {
    'f64.add': operator.add, 'f64.sub': operator.sub, 'f64.mul': operator.mul,
    'f64.div': operator.truediv,     # ZeroDivisionError: the exact function
    'f64.eq': operator.eq, 'f64.ne': operator.ne, 'f64.lt': operator.lt,
    'f64.gt': operator.gt, 'f64.le': operator.le, 'f64.ge': operator.ge,
}


def _trap_mem():
    raise Trap('out of bounds memory access')


def _trap_table():
    raise Trap('out of bounds table access')


# ------------------------------------------------------------ values ↔ cells

def _values_of(types, cells):
    out, pos = [], 0
    for t in types:
        n = CELLS[t]
        out.append(value_of_cells(t, cells[pos:pos + n]))
        pos += n
    return out


def _cells_of(types, values):
    out = []
    for t, v in zip(types, values):
        out.extend(cells_of_value(t, v))
    return out


# ------------------------------------------------------------ pre-decoding

def code_of(store, funcaddr):
    """The cached pre-decoded code of a (non-host) function."""
    fi = store.funcs[funcaddr]
    c = fi.cache.get(NAME)
    if c is None:
        c = fi.cache[NAME] = fusion.pre_decode(compile_func, store, fi, NAME)
    return c


def _blocktype(types, bt):
    if bt is None:
        return (), ()
    if isinstance(bt, str):
        return (), (bt,)
    ft = types[bt]
    return tuple(ft.params), tuple(ft.results)


def _ncells(ts):
    return sum(CELLS.get(t, 1) for t in ts)


def compile_func(store, fi):
    """Pre-decode a function body into the byte-offset indexed run-loop
    form, replaying the operand type stack to size every cell move."""
    inst = fi.module
    info = fi.info
    if info is None:
        raise RuntimeError('function has no validation info')
    func = fi.code
    body = func.body
    nbytes = len(func.body_bytes) or (body[-1].end if body else 0)
    memi = store.mems[inst.memaddrs[0]] if inst.memaddrs else None
    mem = memi.data if memi is not None else None
    mtypes = inst.types
    params = tuple(fi.type.params)
    results = tuple(fi.type.results)
    local_types = list(params) + list(func.locals)
    local_off = []
    off = 0
    for t in local_types:
        local_off.append(off)
        off += CELLS[t]
    param_cells = _ncells(params)
    zeros = []
    for t in func.locals:
        zeros.extend(cells_of_value(t, default_value(t)))
    result_cells = _ncells(results)
    last = len(body) - 1
    final_end = body[last].offset
    func_label = (0, final_end, 0, result_cells)

    ops = [UNREACHABLE] * (nbytes + 1)
    args = [None] * (nbytes + 1)
    nxt = [0] * (nbytes + 1)
    else_if = {e: i for i, e in info.else_of.items()}
    end_of = info.end_of
    sites = []
    bound = fusion.binder(sites, store, inst, memi, fi)

    # type-stack replay: ctrl entries [kind, height, params, results, index]
    tstack = []
    ctrl = [['func', 0, (), results, -1]]

    def pop():
        if len(tstack) > ctrl[-1][1]:
            return tstack.pop()
        return None

    def popn(n):
        for _ in range(n):
            pop()

    def unreachable():
        del tstack[ctrl[-1][1]:]

    def branch(depth):
        """(labels to pop, continue offset) of a branch to label ``depth``."""
        tgt = ctrl[-1 - depth]
        if tgt[0] == 'func':
            return depth, final_end
        if tgt[0] == 'loop':
            return depth, body[tgt[4]].end
        return depth, body[end_of[tgt[4]]].offset      # the end pops the label

    gen = memories.uses_general(store, fi)   # several memories, memory64, table64
    for i, ins in enumerate(body):
        name = ins.op
        imm = ins.imm
        o = ins.offset
        nxt[o] = ins.end
        k, a = GENERIC, None
        if gen and memories.general(store, inst, ins):
            _, p, r = memories.instruction(store, inst, ins)
            a = bound(o, _cell_closure, memories, ins)
            popn(len(p))
            tstack.extend(r)
        elif gen and memories.indirect64(store, inst, ins):
            # a 1-tuple around (table, type): the run loop pops an i64 index
            ft = mtypes[imm[0]]
            pop()
            popn(len(ft.params))
            if name == 'call_indirect':
                k, a = CALL, bound(o, _table_call64, imm)
                tstack.extend(ft.results)
            else:
                k, a = RETURN_CALL, bound(o, fusion.tail, _table_call64, (imm,), final_end)
                unreachable()
        elif name == 'local.get':
            n = CELLS[local_types[imm]]
            k = LOCAL_GET if n == 1 else LOCAL_GET2 if n == 2 else LOCAL_GETN
            a = local_off[imm]
            tstack.append(local_types[imm])
        elif name == 'local.set' or name == 'local.tee':
            n = CELLS[local_types[imm]]
            tee = name == 'local.tee'
            if n == 1:
                k = LOCAL_TEE if tee else LOCAL_SET
            elif n == 2:
                k = LOCAL_TEE2 if tee else LOCAL_SET2
            else:
                k = LOCAL_TEEN if tee else LOCAL_SETN
            a = local_off[imm]
            if not tee:
                pop()
        elif name in _CONSTS:
            t = name[:-6]
            cells = cells_of_value(t, imm)
            if len(cells) == 1:
                k, a = CONST, cells[0]
            else:
                k, a = CONSTN, cells
            tstack.append(t)
        elif name in _INLINE:
            k = _INLINE[name]
            p, r = BY_NAME[name].sig
            popn(len(p))
            tstack.extend(r)
        elif name in ('block', 'loop', 'if', 'try_table', 'try'):
            # try_table / legacy try: a label like a block's; the handlers are
            # the try_table labels on this stack (exceptions.Handlers)
            bp, br_ = _blocktype(mtypes, blocktype_of(ins))
            if name == 'if':
                pop()
            popn(len(bp))
            h = len(tstack)
            frame_sp = _ncells(tstack)
            if name == 'loop':
                label = (ins.end, ins.end, frame_sp, _ncells(bp))
            else:
                label = (ins.end, body[end_of[i]].offset, frame_sp, _ncells(br_))
            ctrl.append([name, h, bp, br_, i])
            tstack.extend(bp)
            if name == 'if':
                k = IF
                if i in info.else_of:
                    a = (label, body[info.else_of[i]].end, True)
                else:
                    a = (label, body[end_of[i]].offset + 1, False)
            else:
                k, a = BLOCK, label
        elif name == 'else':
            k, a = ELSE, body[end_of[else_if[i]]].offset
            c = ctrl[-1]
            del tstack[c[1]:]
            tstack.extend(c[2])
        elif name == 'catch' or name == 'catch_all':
            # reached from the arm before it: on to the end, as from a then-arm
            c = ctrl[-1]
            k, a = ELSE, body[end_of[c[4]]].offset
            del tstack[c[1]:]
            if name == 'catch':
                tstack.extend(store.tags[inst.tagaddrs[imm]].type.params)
        elif name in ('throw', 'throw_ref', 'rethrow'):
            a = bound(o, _throw, name, imm, o, i)
            if name == 'throw':
                popn(len(store.tags[inst.tagaddrs[imm]].type.params))
            unreachable()
        elif name == 'end' or name == 'delegate':
            c = ctrl.pop()
            del tstack[c[1]:]
            tstack.extend(c[3])
            k = RETURN if i == last else END
        elif name == 'br':
            k, a = BR, (imm,) + branch(imm)
            unreachable()
        elif name == 'br_if':
            pop()
            k, a = BR_IF, (imm,) + branch(imm)
        elif name == 'br_table':
            labels, default = imm
            k, a = BR_TABLE, [(x,) + branch(x) for x in list(labels) + [default]]
            unreachable()
        elif name == 'return':
            k = RETURN
            unreachable()
        elif name == 'unreachable':
            k = UNREACHABLE
            unreachable()
        elif name == 'nop':
            k = NOP
        elif name == 'call':
            ft = store.funcs[inst.funcaddrs[imm]].type
            k, a = CALL, bound(o, fusion.funcaddr, imm)
            popn(len(ft.params))
            tstack.extend(ft.results)
        elif name == 'call_indirect':
            typeidx, tableidx = imm
            ft = mtypes[typeidx]
            k, a = CALL, bound(o, fusion.table_call, imm)   # resolved by CALL
            pop()
            popn(len(ft.params))
            tstack.extend(ft.results)
        elif name == 'call_ref':           # CALL through the reference: (None, type)
            ft = mtypes[imm]
            k, a = CALL, (None, ft)
            pop()
            popn(len(ft.params))
            tstack.extend(ft.results)
        elif name == 'br_on_null' or name == 'br_on_non_null':
            t = S.reftype(pop())
            if name == 'br_on_null':
                tstack.append(None if t is None else S.RefType(False, t.heap, getattr(t, "top", None)))
            a = _br_on(name == 'br_on_null', (imm,) + branch(imm))
        elif name == 'ref.as_non_null':
            t = S.reftype(pop())
            tstack.append(None if t is None else S.RefType(False, t.heap, getattr(t, "top", None)))
            a = _ref_as_non_null
        elif name == 'return_call' or name == 'return_call_indirect' \
                or name == 'return_call_ref':
            # tail calls: argument as for CALL, plus the final end's offset
            if name == 'return_call':
                ft = store.funcs[inst.funcaddrs[imm]].type
                k, a = RETURN_CALL, bound(o, fusion.tail, fusion.funcaddr, (imm,), final_end)
            elif name == 'return_call_ref':
                ft = mtypes[imm]
                k, a = RETURN_CALL, ((None, ft), final_end)
                pop()
            else:
                ft = mtypes[imm[0]]
                k, a = RETURN_CALL, bound(o, fusion.tail, fusion.table_call, (imm,), final_end)
                pop()
            popn(len(ft.params))
            unreachable()
        elif name == 'drop':
            t = pop()
            n = CELLS.get(t, 1)
            k, a = (DROP, None) if n == 1 else (DROPN, n)
        elif name == 'select':
            pop()
            t = pop()
            t2 = pop()
            if imm:
                t = imm[0]
            elif t is None:
                t = t2
            n = CELLS.get(t, 1)
            k, a = (SELECT, None) if n == 1 else (SELECTN, n)
            tstack.append(t)
        elif name == 'global.get' or name == 'global.set':
            t = store.globals[inst.globaladdrs[imm]].type.valtype
            a = bound(o, _global, name, imm)
            if name == 'global.get':
                tstack.append(t)
                if t in ('i32', 'f32'):
                    k = GLOBAL_GET
            else:
                pop()
                if t in ('i32', 'f32'):
                    k = GLOBAL_SET
        elif name in _LOADS:
            w, unpack, mask, n = _LOADS[name]
            k, a = LOAD, (imm[1], w, unpack, mask, n)
            pop()
            tstack.append(BY_NAME[name].sig[1][0])
        elif name in _STORES:
            w, pack, mask, n = _STORES[name]
            k, a = STORE, (imm[1], w, pack, mask, n)
            popn(2)
        elif name == 'ref.null':
            k, a = CONST, NONE
            tstack.append(imm)
        elif name == 'ref.func':
            k, a = CONST, bound(o, fusion.funcaddr, imm)
            tstack.append('funcref')
        elif name == 'ref.is_null':
            pop()
            tstack.append('i32')
            a = _ref_is_null
        elif name in ('table.get', 'table.set', 'table.grow', 'table.fill'):
            et = store.tables[inst.tableaddrs[imm]].type.elemtype
            a = bound(o, _table_op, name, imm)
            if name == 'table.get':
                pop()
                tstack.append(et)
            elif name == 'table.set':
                popn(2)
            elif name == 'table.grow':
                popn(2)
                tstack.append('i32')
            else:
                popn(3)
        elif name in gc.OPS:
            fn, p, r = gc.instruction(store, inst, ins)
            a = memories.cell_closure(fn, p, r) if name in gc.MODULE_ONLY \
                else bound(o, _cell_closure, gc, ins)
            popn(len(p))
            tstack.extend(r)
        elif name in gc.BRANCHES:
            x, rt1, rt2 = imm
            pop()
            diff = S.RefType(False, rt1.heap, getattr(rt1, 'top', None)) if rt2.nullable else rt1
            tstack.append(rt2 if name == 'br_on_cast_fail' else diff)
            a = bound(o, _br_on_cast, rt2, name == 'br_on_cast', (x,) + branch(x))
        elif name in _I32_ONLY:
            from .wasmedge import _generic
            a = bound(o, _generic, name, imm)
            p, r = BY_NAME[name].sig
            popn(len(p))
            tstack.extend(r)
        else:
            p, r = BY_NAME[name].sig
            popn(len(p))
            tstack.extend(r)
            if name in numerics.OPS:
                k, a = _numeric(None, None, memi, None, name, imm)
            else:                              # SIMD: v128 loads and stores take memory 0
                k = _numeric(None, None, memi, None, name, imm)[0]
                a = bound(o, _simd, name, imm)
        ops[o] = k
        args[o] = a
    fops, fargs = list(ops), list(args)
    for i, op, a in fusion.cached(info, NAME, lambda: _fused(body, ops, args, local_types, local_off,
                                                              last)):
        fops[i], fargs[i] = op, a
    return Code(ops=ops, args=args, fops=fops, fargs=fargs, nxt=nxt, param_cells=param_cells,
                local_cells=off, zeros=zeros, result_cells=result_cells,
                results=results, func_label=func_label, mem=mem,
                dirty=memi.dirty if memi is not None else None, types=local_types, sites=sites)


# The instance's parts of a pre-decoded function: fusion.binder's makers,
# (store, inst, memory 0, FuncInst, *params) -> argument (and fusion's
# funcaddr, table_call, tail).

def _table_call64(store, inst, memi, fi, imm):
    """A 1-tuple around (table, type): the run loop pops an i64 index."""
    return (fusion.table_call(store, inst, memi, fi, imm),)


def _cell_closure(store, inst, memi, fi, ops, ins):
    """A memories or gc instruction as a closure on cells."""
    return memories.cell_closure(*ops.instruction(store, inst, ins))


def _global(store, inst, memi, fi, name, imm):
    """global.get/set's GlobalInst (one cell), else a closure over it."""
    g = store.globals[inst.globaladdrs[imm]]
    t = g.type.valtype
    if t in ('i32', 'f32'):
        return g
    return (_global_get if name == 'global.get' else _global_set)(g, S.value_class(t))


def _simd(store, inst, memi, fi, name, imm):
    return _numeric(store, inst, memi, fi, name, imm)[1]


def _numeric(store, inst, memi, fi, name, imm):
    """(case, argument) of a numeric or SIMD instruction on cells."""
    if name in numerics.OPS:
        fn = numerics.OPS[name]
        p, r = BY_NAME[name].sig
    else:
        from . import simd
        fn, p, r = simd.instruction(name, imm, memi)
    pc_ = tuple(CELLS[t] for t in p)
    rc = CELLS[r[0]] if r else 0
    if pc_ == (1, 1) and rc == 1:
        return BIN, fn
    if pc_ == (1,) and rc == 1:
        return UN, fn
    if name in F64_FLOAT:            # on cells (rc 1: a comparison)
        return BIN64, (F64_FLOAT[name], fn, rc)
    if pc_ == (2, 2) and rc == 2:
        return BIN64, fn
    return GENERIC, _adapt(fn, pc_, rc)


def _fused(body, ops, args, local_types, local_off, last):
    """The superinstruction cases of a function as (byte offset, case,
    argument) over its plain ``ops``/``args``; store-independent, so
    computed once per function of a decoded module (``fusion.cached``)."""
    fops, fargs = list(ops), list(args)
    one, two = {'i32', 'f32'}, {'i64', 'f64'}
    if last and ops[body[last - 1].offset] in (END, NOP):   # its labels go with the frame
        fops[body[last - 1].offset], fargs[body[last - 1].offset] = RETURN, 1

    def dst_arg(fu):
        return local_off[fu.dst_arg] if fu.dst == fusion.SET else \
            args[body[fu.dst_arg].offset] if fu.dst in (fusion.BRIF, fusion.IF) else None

    for i, (x, f, name) in fusion.unary_fusions(
            body, lambda x: local_types[x] in one or local_types[x] in two,
            lambda p, r: p in one.union(two) and r in one.union(two)).items():
        fops[body[i].offset] = F_UNARY
        fargs[body[i].offset] = (local_off[x], CELLS[local_types[x]] == 2, f,
                                 CELLS[BY_NAME[name].sig[1][0]] == 2, body[i + 1].end)
    for i, fu in fusion.fusions(body, SHAPES, lambda x: local_types[x] in one,
                                lambda p, r: one.issuperset(p) and r in one).items():
        fops[body[i].offset] = op = SHAPES[fu.src1[0], fu.src2[0], fu.dst]
        srcs = fusion.operands(fu, local_off.__getitem__)
        after = body[i + fu.k - 1].end
        if op >= F_COND:        # sources (as COND_SOURCES), operands, test, target, k - 1, next pc
            fargs[body[i].offset] = ((op - F_COND) % len(fusion.COND_SOURCES),) + srcs + (
                fu.fn, dst_arg(fu), fu.k - 1, after)
        else:
            fargs[body[i].offset] = tuple(v for v in srcs if v is not None) + (fu.fn,) + (
                (dst_arg(fu),) if fu.dst == fusion.SET else ()) + (after,)
    shapes = {s for s in SHAPES if s[2] != fusion.IF}
    for i, fu in fusion.fusions(body, shapes, lambda x: local_types[x] in two,
                                lambda p, r: two.issuperset(p)).items():
        fops[body[i].offset] = WIDE
        (k1, v1), (k2, v2) = fu.src1, fu.src2
        g = F64_FLOAT.get(fu.binop)
        fargs[body[i].offset] = (
            local_off[v1] if k1 == fusion.LOCAL else None, _SRC_KIND[k2],
            local_off[v2] if k2 == fusion.LOCAL else v2, fu.fn, _DST_KIND[fu.dst],
            dst_arg(fu), CELLS[BY_NAME[fu.binop].sig[1][0]], fu.k - 1, body[i + fu.k - 1].end,
            g, numerics.f64_from_bits(v2) if g is not None and k2 == fusion.CONST else None)
    return fusion.changes(ops, args, fops, fargs)


def _throw(store, inst, memi, fi, name, imm, at, index):
    """throw / throw_ref / rethrow on the cell stack, raising ``Thrown``
    (``rethrow``: the caught slot, which the executor resolves)."""
    Thrown, Exn = exceptions.Thrown, exceptions.Exn
    if name == 'throw':
        tag = inst.tagaddrs[imm]
        types = store.tags[tag].type.params
        nc = _ncells(types)

        def f(stack):
            fields = _values_of(types, stack[len(stack) - nc:])
            del stack[len(stack) - nc:]
            raise Thrown(Exn(tag, fields), at)
    elif name == 'throw_ref':
        def f(stack):
            v = stack.pop()
            if v is NONE or v == NONE:
                raise Trap('null exception reference')
            raise Thrown(v, at)
    else:
        slot = exceptions.handlers_of(fi).rethrow[index]

        def f(stack):
            raise Thrown(slot, at)
    return f


def _ref_is_null(stack):
    stack[-1] = 1 if stack[-1] == NONE else 0


def _take(stack, labels, fbase, branch):
    """A branch a GENERIC closure took (rare: br_on_*), as BR does it
    inline (POP_CSP_N): cut the cells to the target label's frame_sp
    keeping its cell_num, pop the labels above it; the continue offset."""
    depth, npop, pc = branch
    frame_sp, keep = labels[-1 - depth][2:4]
    top, lb = len(stack) - keep, fbase + frame_sp
    if top > lb:
        del stack[lb:top]
    if npop:
        del labels[len(labels) - npop:]
    return pc


def _ref_as_non_null(stack):
    if stack[-1] == NONE:
        raise Trap('null reference')


def _br_on(on_null, branch):
    """br_on_null / br_on_non_null as a GENERIC closure returning the taken
    branch (depth, labels to pop, continue offset) or None, as WAMR's
    BR_ON_NULL pops the reference and branches through label_pop_csp_n (a
    br_on_null that is not taken pushes it back)."""
    if on_null:
        def f(stack):
            if stack[-1] == NONE:
                stack.pop()
                return branch
            return None
    else:
        def f(stack):
            if stack[-1] == NONE:
                stack.pop()
                return None
            return branch
    return f


def _br_on_cast(store, inst, memi, fi, rt2, on_cast, branch):
    """br_on_cast / br_on_cast_fail as a GENERIC closure on cells: the
    reference cell stays; the branch is taken when the cast to ``rt2``
    succeeds (br_on_cast) or fails (br_on_cast_fail)."""
    test, cls = gc.cast_test(store, inst, rt2), gc.top_class(rt2, inst.module)

    def f(stack):
        return branch if test(value_of_cells(cls, [stack[-1]])) == on_cast else None
    return f


def _global_get(g, t):
    n = CELLS[t]
    if t == 'funcref' or t == 'exnref' or t == 'anyref':   # exnref/anyref: the object itself
        def f(stack):
            v = g.value
            stack.append(NONE if v is None else v)
    elif t == 'externref':
        def f(stack):
            v = g.value
            stack.append(NONE if v is None else v.value)
    else:
        def f(stack):
            v = g.value
            stack.extend([(v >> (32 * j)) & _M32 for j in range(n)])
    return f


def _global_set(g, t):
    n = CELLS[t]

    def f(stack):
        cells = stack[len(stack) - n:]
        del stack[len(stack) - n:]
        g.value = value_of_cells(t, cells)
    return f


def _table_op(store, inst, memi, fi, name, imm):
    """table.get/set/grow/fill: table entries are values, operands cells."""
    tab = store.tables[inst.tableaddrs[imm]]
    et = tab.type.elemtype
    if name == 'table.get':
        def f(stack):
            i = stack[-1]
            if i >= len(tab.elem):
                _trap_table()
            stack[-1] = cells_of_value(et, tab.elem[i])[0]
    elif name == 'table.set':
        def f(stack):
            v = value_of_cells(et, [stack.pop()])
            i = stack.pop()
            if i >= len(tab.elem):
                _trap_table()
            tab.elem[i] = v
    elif name == 'table.grow':
        def f(stack):
            n = stack.pop()
            v = value_of_cells(et, [stack[-1]])
            stack[-1] = tab.grow(n, v) & _M32
    else:
        def f(stack):
            n = stack.pop()
            v = value_of_cells(et, [stack.pop()])
            d = stack.pop()
            if d + n > len(tab.elem):
                _trap_table()
            tab.elem[d:d + n] = [v] * n
    return f


def _adapt(fn, pcells, rc):
    """A closure ``f(stack)`` running the value function ``fn`` on the cell
    stack: join its operand cells, split its result."""
    total = sum(pcells)
    if pcells == (2,) and rc == 2:
        def f(stack):
            r = fn(stack[-2] | stack[-1] << 32)
            stack[-2] = r & _M32
            stack[-1] = r >> 32
        return f
    if pcells == (2,) and rc == 1:
        def f(stack):
            r = fn(stack[-2] | stack[-1] << 32)
            del stack[-1]
            stack[-1] = r
        return f
    if pcells == (1,) and rc == 2:
        def f(stack):
            r = fn(stack[-1])
            stack[-1] = r & _M32
            stack.append(r >> 32)
        return f
    if pcells == (2, 2) and rc == 1:
        def f(stack):
            r = fn(stack[-4] | stack[-3] << 32, stack[-2] | stack[-1] << 32)
            del stack[-3:]
            stack[-1] = r
        return f
    if pcells == (4,) and rc == 4:
        def f(stack):
            r = fn(stack[-4] | stack[-3] << 32 | stack[-2] << 64 | stack[-1] << 96)
            stack[-4:] = (r & _M32, (r >> 32) & _M32, (r >> 64) & _M32, r >> 96)
        return f
    if pcells == (4, 4) and rc == 4:
        def f(stack):
            r = fn(stack[-8] | stack[-7] << 32 | stack[-6] << 64 | stack[-5] << 96,
                   stack[-4] | stack[-3] << 32 | stack[-2] << 64 | stack[-1] << 96)
            del stack[-4:]
            stack[-4:] = (r & _M32, (r >> 32) & _M32, (r >> 64) & _M32, r >> 96)
        return f

    def f(stack):
        base = len(stack) - total
        vals = []
        i = base
        for n in pcells:
            v = stack[i]
            for j in range(1, n):
                v |= stack[i + j] << (32 * j)
            vals.append(v)
            i += n
        del stack[base:]
        r = fn(*vals)
        if rc == 1:
            stack.append(r)
        elif rc:
            stack.extend([(r >> (32 * j)) & _M32 for j in range(rc)])
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
        self.stack = _cells_of(fi.type.params, args)
        self.stack.extend(code.zeros)
        self.frames = [Frame(funcaddr, None, 0, [code.func_label], code)]
        self.pc = 0
        self.finished = False

    def run(self, max_steps=None):
        """Execute up to ``max_steps`` instructions (all if None); True when
        the entry call has returned (results in ``self.results``).  An
        exception thrown in the run is caught here, outside the hot loop:
        the frames are unwound to its handler and the run goes on."""
        return exceptions.run_catching(self, max_steps)

    def unwind(self, e):
        """Pop frames until a handler catches ``e`` (``at``: byte offset of
        the throwing instruction in the top frame) and continue there, as a
        branch to the clause's label does (its labels above the target
        popped, the cells cut to its ``frame_sp``, the values pushed); none:
        the run ends with ``UncaughtException``."""
        store = self.store
        stack, frames = self.stack, self.frames
        exn = exceptions.exception_of(self, e)
        at = e.at
        top = True
        while frames:
            frame = frames[-1]
            fi = store.funcs[frame.func]
            found = None
            if exceptions.has_handlers(fi.code.body):
                h = exceptions.handlers_of(fi)
                pos = h.index_at[at] if top else h.index_before[at]
                found = h.find(pos, exn.tag)
            if found is not None:
                t, k = found
                labels = frame.labels
                fbase = frame.lp + frame.code.local_cells
                d = h.depth[t.pos]          # blocks around the try: its label is labels[d + 1]
                if t.table:                 # a branch to the clause's label
                    kind, _, label = t.clauses[k]
                    lab = labels[d - label]
                    del labels[d - label + 1:]
                    del stack[fbase + lab[2]:]
                    if kind < 2:
                        stack.extend(_cells_of(store.tags[exn.tag].type.params, exn.fields))
                    if kind & 1:
                        stack.append(exn)
                    self.pc = lab[1]
                else:                       # legacy: into the catch arm, the try's label kept
                    lab = labels[d + 1]
                    del labels[d + 2:]
                    del stack[fbase + lab[2]:]
                    ins = fi.code.body[k]
                    if ins.op == 'catch':
                        stack.extend(_cells_of(store.tags[exn.tag].type.params, exn.fields))
                    self.caught[(len(frames) - 1, h.catch_depth[k + 1] - 1)] = exn
                    self.pc = ins.end
                frame.ip = None
                return
            del stack[frame.lp:]
            frames.pop()
            if frames:
                at = frames[-1].ip
                top = False
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
        code = frame.code
        # superinstructions while the budget covers the longest one, then
        # the plain instructions for the last steps (exact stops)
        lim = fusion.LONGEST - 1 if n >= fusion.LONGEST else 0
        ops = code.fops if lim else code.ops
        args = code.fargs if lim else code.args
        nxt = code.nxt
        mem = code.mem
        dirty = code.dirty
        labels = frame.labels
        lpush = labels.append
        c4, d2 = CELL4, F64X2
        lp = frame.lp
        fbase = lp + code.local_cells
        pc = self.pc
        try:
            while True:
                if n <= lim:
                    if n <= 0:
                        break
                    lim = 0
                    ops = frame.code.ops
                    args = frame.code.args
                n -= 1
                op = ops[pc]
                a = args[pc]
                pc = nxt[pc]
                if op >= F_FIRST:   # superinstructions: count k, continue after them
                    if op >= F_COND:     # [local.get|const]{0,2} compare; br_if / if
                        src, x, y, f, t, k, pc = a
                        n -= k
                        if src == 0:
                            c = f(stack[lp + x], stack[lp + y])
                        elif src == 1:
                            c = f(stack[lp + x], y)
                        else:
                            if src == 2:
                                y = pop()
                            c = f(pop(), y)
                        if op < F_IF:
                            if c:        # as BR_IF below
                                depth, npop, pc = t
                                lab = labels[-1 - depth]
                                top = len(stack) - lab[3]
                                lb = fbase + lab[2]
                                if top > lb:
                                    del stack[lb:top]
                                if npop:
                                    del labels[len(labels) - npop:]
                        elif c:          # as IF below
                            lpush(t[0])
                        else:
                            if t[2]:
                                lpush(t[0])
                            pc = t[1]
                    elif op < 62:
                        if op >= 58:     # i32 binops of locals and constants
                            if op == 58:     # local.get x; local.get y; binop
                                x, y, f, pc = a
                                n -= 2
                                push(f(stack[lp + x], stack[lp + y]))
                            elif op == 59:   # local.get x; const y; binop
                                x, y, f, pc = a
                                n -= 2
                                push(f(stack[lp + x], y))
                            elif op == 60:   # local.get x; local.get y; binop; local.set d
                                x, y, f, d, pc = a
                                n -= 3
                                stack[lp + d] = f(stack[lp + x], stack[lp + y])
                            else:            # local.get x; const y; binop; local.set d
                                x, y, f, d, pc = a
                                n -= 3
                                stack[lp + d] = f(stack[lp + x], y)
                        elif op == 56:   # F_UNARY: local.get x; unop
                            x, wide, f, rwide, pc = a
                            n -= 1
                            r = f(stack[lp + x] | stack[lp + x + 1] << 32 if wide else stack[lp + x])
                            if rwide:
                                push(r & 0xFFFFFFFF)
                                push(r >> 32)
                            else:
                                push(r)
                        else:            # WIDE: [local.get|const]{0,2} binop [local.set|br_if], 2-cell operands
                            s1, k2, s2, f, dst, d, rc, k1, pc, g, yf = a
                            n -= k1
                            if g is not None:     # f64 on cells (CELL4 / F64X2)
                                if k2 == 1:
                                    c4[2] = stack[lp + s2]
                                    c4[3] = stack[lp + s2 + 1]
                                elif k2 == 0:
                                    c4[3] = pop()
                                    c4[2] = pop()
                                if s1 is None:
                                    c4[1] = pop()
                                    c4[0] = pop()
                                else:
                                    c4[0] = stack[lp + s1]
                                    c4[1] = stack[lp + s1 + 1]
                                if rc == 2:
                                    try:
                                        r = g(d2[0], yf if k2 == 2 else d2[1])
                                    except ZeroDivisionError:
                                        r = _NAN
                                    if r == r:
                                        d2[0] = r
                                        lo = c4[0]
                                        hi = c4[1]
                                    else:
                                        r = f(c4[0] | c4[1] << 32,
                                              s2 if k2 == 2 else c4[2] | c4[3] << 32)
                                        lo = r & 0xFFFFFFFF
                                        hi = r >> 32
                                    if dst == 0:
                                        push(lo)
                                        push(hi)
                                    else:
                                        stack[lp + d] = lo
                                        stack[lp + d + 1] = hi
                                    continue
                                r = 1 if g(d2[0], yf if k2 == 2 else d2[1]) else 0
                            else:
                                if k2 == 2:
                                    y = s2
                                elif k2 == 1:
                                    y = stack[lp + s2] | stack[lp + s2 + 1] << 32
                                else:
                                    y = pop() << 32
                                    y |= pop()
                                if s1 is None:
                                    x = pop() << 32
                                    x |= pop()
                                else:
                                    x = stack[lp + s1] | stack[lp + s1 + 1] << 32
                                r = f(x, y)
                            if dst == 0:
                                push(r & 0xFFFFFFFF)
                                if rc == 2:
                                    push(r >> 32)
                            elif dst == 1:
                                stack[lp + d] = r & 0xFFFFFFFF
                                if rc == 2:
                                    stack[lp + d + 1] = r >> 32
                            elif r:
                                depth, npop, pc = d
                                lab = labels[-1 - depth]
                                top = len(stack) - lab[3]
                                lb = fbase + lab[2]
                                if top > lb:
                                    del stack[lb:top]
                                if npop:
                                    del labels[len(labels) - npop:]
                    elif op == 62:       # local.get x; binop
                        x, f, pc = a
                        n -= 1
                        stack[-1] = f(stack[-1], stack[lp + x])
                    elif op == 63:       # const y; binop
                        y, f, pc = a
                        n -= 1
                        stack[-1] = f(stack[-1], y)
                    elif op == 64:       # binop; local.set d
                        f, d, pc = a
                        n -= 1
                        b = pop()
                        stack[lp + d] = f(pop(), b)
                    elif op == 65:       # local.get x; binop; local.set d
                        x, f, d, pc = a
                        n -= 2
                        stack[lp + d] = f(pop(), stack[lp + x])
                    else:                # const y; binop; local.set d
                        y, f, d, pc = a
                        n -= 2
                        stack[lp + d] = f(pop(), y)
                elif op < 9:
                    if op == 0:      # LOCAL_GET
                        push(stack[lp + a])
                    elif op == 1:    # CONST
                        push(a)
                    elif op == 2:    # NOP
                        pass
                    elif op == 3:    # BR_IF
                        if pop():
                            depth, npop, pc = a
                            lab = labels[-1 - depth]
                            keep = lab[3]
                            top = len(stack) - keep
                            lb = fbase + lab[2]
                            if top > lb:
                                del stack[lb:top]
                            if npop:
                                del labels[len(labels) - npop:]
                    elif op == 4:    # LOCAL_SET
                        stack[lp + a] = pop()
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
                        depth, npop, pc = a
                        lab = labels[-1 - depth]
                        keep = lab[3]
                        top = len(stack) - keep
                        lb = fbase + lab[2]
                        if top > lb:
                            del stack[lb:top]
                        if npop:
                            del labels[len(labels) - npop:]
                elif op < 18:
                    if op < 13:
                        if op == 9:      # LOCAL_TEE
                            stack[lp + a] = stack[-1]
                        elif op == 10:   # I32_EQZ
                            stack[-1] = 0 if stack[-1] else 1
                        elif op == 11:   # I32_LT_S
                            b = pop()
                            stack[-1] = 1 if (stack[-1] ^ 0x80000000) < (b ^ 0x80000000) else 0
                        else:            # I32_LT_U
                            b = pop()
                            stack[-1] = 1 if stack[-1] < b else 0
                    else:
                        if op == 16:     # BIN64 (two 2-cell operands, 2-cell result)
                            if a.__class__ is tuple:   # f64 on cells (see WIDE)
                                g, f, rc = a
                                c4[3] = pop()
                                c4[2] = pop()
                                c4[1] = stack[-1]
                                c4[0] = stack[-2]
                                if rc == 1:
                                    del stack[-1]
                                    stack[-1] = 1 if g(d2[0], d2[1]) else 0
                                    continue
                                try:
                                    r = g(d2[0], d2[1])
                                except ZeroDivisionError:
                                    r = _NAN
                                if r == r:
                                    d2[0] = r
                                    stack[-2] = c4[0]
                                    stack[-1] = c4[1]
                                else:
                                    r = f(c4[0] | c4[1] << 32, c4[2] | c4[3] << 32)
                                    stack[-2] = r & 0xFFFFFFFF
                                    stack[-1] = r >> 32
                                continue
                            b = pop() << 32
                            b |= pop()
                            r = a(stack[-2] | stack[-1] << 32, b)
                            stack[-2] = r & 0xFFFFFFFF
                            stack[-1] = r >> 32
                        elif op == 13:   # I32_EQ
                            b = pop()
                            stack[-1] = 1 if stack[-1] == b else 0
                        elif op == 14:   # I32_NE
                            b = pop()
                            stack[-1] = 1 if stack[-1] != b else 0
                        elif op == 15:   # I32_AND
                            b = pop()
                            stack[-1] &= b
                        else:            # UN
                            stack[-1] = a(stack[-1])
                elif op < 24:
                    if op == 18:     # BLOCK / LOOP: push the label
                        lpush(a)
                    elif op == 19:   # END of a block/loop/if
                        labels.pop()
                    elif op == 20:   # IF
                        if pop():
                            lpush(a[0])
                        else:
                            if a[2]:
                                lpush(a[0])
                            pc = a[1]
                    elif op == 21:   # ELSE reached from the then-arm: on to the end
                        pc = a
                    elif op == 22:   # CALL (a funcaddr) or call_indirect (a (table, type))
                        if a.__class__ is tuple:     # indirect: through the table
                            fi, a = resolve_callee(a, pop, funcs) if len(a) == 2 else \
                                resolve_callee(a[0], memories.pop_i64(stack), funcs)
                        else:
                            fi = funcs[a]
                        if fi.host is not None:
                            ft = fi.type
                            nc = _ncells(ft.params)
                            cargs = _values_of(ft.params, stack[len(stack) - nc:])
                            del stack[len(stack) - nc:]
                            stack.extend(_cells_of(ft.results, fi.host(cargs)))
                            continue
                        c = fi.cache.get(NAME)
                        if c is None:
                            c = code_of(store, a)
                        if len(frames) >= max_frames:
                            raise CallDepthError(max_frames)
                        if len(stack) > MAX_STACK:
                            raise Exhaustion('call stack exhausted')
                        frame.ip = pc
                        lp = len(stack) - c.param_cells
                        labels = [c.func_label]
                        lpush = labels.append
                        frame = Frame(a, None, lp, labels, c)
                        frames.append(frame)
                        stack.extend(c.zeros)
                        fbase = lp + c.local_cells
                        ops = c.fops if lim else c.ops
                        args = c.fargs if lim else c.args
                        nxt = c.nxt
                        mem = c.mem
                        dirty = c.dirty
                        pc = 0
                    else:            # RETURN (also the function's last end)
                        if a:            # superinstruction: an end right before the final end
                            n -= a
                        c = frame.code
                        ar = c.result_cells
                        if ar:
                            res = stack[len(stack) - ar:]
                            del stack[lp:]
                            stack.extend(res)
                        else:
                            del stack[lp:]
                        frames.pop()
                        if not frames:
                            self.results = _values_of(c.results, stack)
                            del stack[:]
                            self.finished = True
                            self.pc = 0
                            self.steps += budget - n
                            return True
                        frame = frames[-1]
                        pc = frame.ip
                        frame.ip = None
                        c = frame.code
                        labels = frame.labels
                        lpush = labels.append
                        lp = frame.lp
                        fbase = lp + c.local_cells
                        ops = c.fops if lim else c.ops
                        args = c.fargs if lim else c.args
                        nxt = c.nxt
                        mem = c.mem
                        dirty = c.dirty
                elif op < 34:
                    if op == 24:     # LOAD
                        off, w, unpack, mask, nc = a
                        ea = stack[-1] + off
                        if ea + w > len(mem):
                            _trap_mem()
                        if nc == 1:
                            stack[-1] = unpack(mem, ea)[0] & mask
                            continue
                        if nc == 0:      # 8 bytes: the two cells as they lie
                            stack[-1], v = unpack(mem, ea)
                            push(v)
                            continue
                        v = unpack(mem, ea)[0] & mask
                        if nc == 2:
                            stack[-1] = v & 0xFFFFFFFF
                            push(v >> 32)
                        else:
                            stack[-1:] = (v & 0xFFFFFFFF, (v >> 32) & 0xFFFFFFFF,
                                          (v >> 64) & 0xFFFFFFFF, v >> 96)
                    elif op == 25:   # STORE
                        off, w, pack, mask, nc = a
                        if nc == 0:      # 8 bytes: the two cells as they lie
                            v = pop()
                            lo = pop()
                            ea = pop() + off
                            if ea + w > len(mem):
                                _trap_mem()
                            pack(mem, ea, lo, v)
                            dirty[ea >> 12] = 1
                            dirty[(ea + 7) >> 12] = 1
                            continue
                        if nc == 1:
                            v = pop()
                        elif nc == 2:
                            v = pop() << 32
                            v |= pop()
                        else:
                            v = stack[-4] | stack[-3] << 32 | stack[-2] << 64 | stack[-1] << 96
                            del stack[-4:]
                        ea = pop() + off
                        if ea + w > len(mem):
                            _trap_mem()
                        pack(mem, ea, v & mask)
                        dirty[ea >> 12] = 1
                        dirty[(ea + w - 1) >> 12] = 1
                    elif op == 26:   # GLOBAL_GET (one cell)
                        push(a.value)
                    elif op == 27:   # GLOBAL_SET (one cell)
                        a.value = pop()
                    elif op == 28:   # DROP
                        pop()
                    elif op == 29:   # SELECT
                        c = pop()
                        b = pop()
                        if not c:
                            stack[-1] = b
                    elif op == 30:   # BR_TABLE
                        i = pop()
                        depth, npop, pc = a[i] if i < len(a) else a[-1]
                        lab = labels[-1 - depth]
                        keep = lab[3]
                        top = len(stack) - keep
                        lb = fbase + lab[2]
                        if top > lb:
                            del stack[lb:top]
                        if npop:
                            del labels[len(labels) - npop:]
                    elif op == 31:   # RETURN_CALL: the callee replaces this frame
                        a, final_end = a
                        fi, a = resolve_callee(a, pop, funcs) if a.__class__ is not tuple \
                            or len(a) == 2 else resolve_callee(a[0], memories.pop_i64(stack), funcs)
                        ft = fi.type
                        nc = _ncells(ft.params)
                        cargs = stack[len(stack) - nc:]
                        del stack[lp:]
                        if fi.host is not None:
                            # results on top, then this function's final end
                            # returns them; that end is part of this step
                            stack.extend(_cells_of(ft.results, fi.host(_values_of(ft.params, cargs))))
                            pc = final_end
                            n += 1
                            continue
                        c = fi.cache.get(NAME)
                        if c is None:
                            c = code_of(store, a)
                        stack.extend(cargs)
                        if len(stack) > MAX_STACK:
                            raise Exhaustion('call stack exhausted')
                        labels = [c.func_label]
                        lpush = labels.append
                        frame = Frame(a, frame.ip, lp, labels, c)
                        frames[-1] = frame
                        stack.extend(c.zeros)
                        fbase = lp + c.local_cells
                        ops = c.fops if lim else c.ops
                        args = c.fargs if lim else c.args
                        nxt = c.nxt
                        mem = c.mem
                        dirty = c.dirty
                        pc = 0
                    elif op == 32:   # GENERIC (br_on_null/br_on_non_null: a taken branch)
                        b = a(stack)
                        if b is not None:
                            pc = _take(stack, labels, fbase, b)
                    else:            # UNREACHABLE
                        raise Trap('unreachable')
                elif op < 43:
                    if op == 34:     # LOCAL_GET2
                        i = lp + a
                        push(stack[i])
                        push(stack[i + 1])
                    elif op == 35:   # LOCAL_SET2
                        i = lp + a
                        stack[i + 1] = pop()
                        stack[i] = pop()
                    elif op == 36:   # LOCAL_TEE2
                        i = lp + a
                        stack[i] = stack[-2]
                        stack[i + 1] = stack[-1]
                    elif op == 37:   # CONSTN
                        stack.extend(a)
                    elif op == 38:   # DROPN
                        del stack[len(stack) - a:]
                    elif op == 39:   # SELECTN
                        c = pop()
                        if not c:
                            stack[len(stack) - 2 * a:len(stack) - a] = stack[len(stack) - a:]
                        del stack[len(stack) - a:]
                    elif op == 40:   # LOCAL_GETN (v128)
                        i = lp + a
                        stack.extend(stack[i:i + 4])
                    elif op == 41:   # LOCAL_SETN
                        i = lp + a
                        stack[i:i + 4] = stack[-4:]
                        del stack[-4:]
                    else:            # LOCAL_TEEN
                        i = lp + a
                        stack[i:i + 4] = stack[-4:]
                elif op > 52:
                    if op == 55:     # I64_EQZ
                        hi = pop()
                        stack[-1] = 0 if hi or stack[-1] else 1
                    else:            # I64_ADD / I64_SUB on (lo, hi) cell pairs
                        b = pop() << 32
                        b |= pop()
                        x = stack[-2] | stack[-1] << 32
                        r = (x + b if op == 53 else x - b) & 0xFFFFFFFFFFFFFFFF
                        stack[-2] = r & 0xFFFFFFFF
                        stack[-1] = r >> 32
                else:
                    b = pop()
                    x = stack[-1]
                    if op == 43:     # I32_GT_S
                        stack[-1] = 1 if (x ^ 0x80000000) > (b ^ 0x80000000) else 0
                    elif op == 44:   # I32_GT_U
                        stack[-1] = 1 if x > b else 0
                    elif op == 45:   # I32_LE_S
                        stack[-1] = 1 if (x ^ 0x80000000) <= (b ^ 0x80000000) else 0
                    elif op == 46:   # I32_LE_U
                        stack[-1] = 1 if x <= b else 0
                    elif op == 47:   # I32_GE_S
                        stack[-1] = 1 if (x ^ 0x80000000) >= (b ^ 0x80000000) else 0
                    elif op == 48:   # I32_GE_U
                        stack[-1] = 1 if x >= b else 0
                    elif op == 49:   # I32_MUL
                        stack[-1] = (x * b) & 0xFFFFFFFF
                    elif op == 50:   # I32_OR
                        stack[-1] = x | b
                    elif op == 51:   # I32_SHL
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
