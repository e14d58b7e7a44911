"""Memory and table instructions beyond 2.0's single 32-bit memory
(Wasm 3.0 multi-memory, memory64, table64), shared by both interpreters.

Both run loops keep their inlined fast path for memory 0 when it is
32-bit; an instruction that names another memory, or whose memory or
table has the i64 address type, is decided here (``general``) and run as a
value-level function (``instruction``), as ``simd.instruction`` does:
``(fn, params, results)`` with ``fn`` taking and returning values, which
the WasmEdge model applies to its whole-value stack and the WAMR model to
its 32-bit cells (an i64 address is two cells there).

Semantics (exec/instructions.rst): the effective address ``addr + offset``
is computed without wrapping, so a 64-bit address plus offset past 2^64
traps like any other out-of-bounds access; ``memory.grow`` and
``table.grow`` return -1 of the address type on failure; bulk operations
check their whole ranges before writing anything.
"""

from ..errors import Trap
from ..opcodes import BY_NAME, memidx
from . import memory_access

PAGE_SIZE = 65536
_MASK = {'i32': 0xFFFFFFFF, 'i64': 0xFFFFFFFFFFFFFFFF}

_MEM_OPS = frozenset(('memory.size', 'memory.grow', 'memory.fill', 'memory.copy',
                      'memory.init'))
_TABLE_OPS = frozenset(('table.get', 'table.set', 'table.size', 'table.grow',
                        'table.fill', 'table.copy', 'table.init'))


def _trap_mem():
    raise Trap('out of bounds memory access')


def _trap_table():
    raise Trap('out of bounds table access')


def is_memory_op(name):
    kind = BY_NAME[name].imm if name in BY_NAME else None
    return kind in ('memarg', 'memarg_lane') or name in _MEM_OPS


def general(store, inst, ins):
    """True when ``ins`` needs this module: a memory instruction on a
    memory other than 0 or on a 64-bit memory, a table instruction on a
    64-bit table (for call_indirect see ``indirect64``)."""
    name = ins.op
    if is_memory_op(name):
        if not inst.memaddrs:
            return False
        if memidx(ins) or store.mems[inst.memaddrs[0]].type.at != 'i32':
            return True
        return name == 'memory.copy' and ins.imm[1] != 0
    if name in _TABLE_OPS:
        xs = ins.imm if name == 'table.copy' else (
            (ins.imm[1],) if name == 'table.init' else (ins.imm,))
        return any(store.tables[inst.tableaddrs[x]].type.at != 'i32' for x in xs)
    return False


def indirect64(store, inst, ins):
    """Is ``ins`` a call_indirect / return_call_indirect through a 64-bit
    table (whose i64 index is two cells in the WAMR model)?"""
    return ins.op in ('call_indirect', 'return_call_indirect') and \
        store.tables[inst.tableaddrs[ins.imm[1]]].type.at != 'i32'


def uses_general(store, fi):
    """Does any instruction of function ``fi`` need this module?  Kept on
    its validation info, which the instances of its module share: what it
    asks of them (their memories' and tables' address types) is the
    module's, imports included (an import matches only its own type)."""
    hit = fi.info.__dict__.get('uses_general')
    if hit is None:
        inst = fi.module
        plain = len(inst.memaddrs) < 2 and not any(
            store.mems[a].type.at != 'i32' for a in inst.memaddrs) and not any(
            store.tables[a].type.at != 'i32' for a in inst.tableaddrs)
        hit = fi.info.__dict__['uses_general'] = not plain and any(
            general(store, inst, ins) or indirect64(store, inst, ins) for ins in fi.code.body)
    return hit


def pop_i64(stack):
    """A ``pop()`` of one i64 from a cell stack (low word below)."""
    def pop():
        hi = stack.pop()
        return stack.pop() | hi << 32
    return pop


def instruction(store, inst, ins):
    """``(fn, params, results)`` for one memory or table instruction:
    ``fn(*operand values)`` returns the result value (or None), params and
    results are value types with the real address types."""
    name = ins.op
    imm = ins.imm
    op = BY_NAME[name]
    if name in _TABLE_OPS:
        return _table_op(store, inst, name, imm)
    memi = store.mems[inst.memaddrs[memidx(ins)]]
    at = memi.type.at
    params, results = op.sig
    params = (at,) + tuple(params[1:]) if params else ()
    if op.imm in ('memarg', 'memarg_lane'):
        if op.code[0] == 0xFD and name not in ('v128.load', 'v128.store'):
            from . import simd
            fn = simd.instruction(name, imm, memi)[0]
        elif name in memory_access.LOADS:
            fn = _load(memi, imm[1], *memory_access.LOADS[name])
        else:
            fn = _store(memi, imm[1], *memory_access.STORES[name])
        return fn, params, tuple(results)
    return _memory_op(store, inst, name, imm, memi, at)


def _load(memi, off, w, signed, mask):
    mem = memi.data
    unpack = memory_access.unpacker(w, signed)

    def load(addr):
        ea = addr + off
        if ea + w > len(mem):
            _trap_mem()
        return unpack(mem, ea)[0] & mask
    return load


def _store(memi, off, w, mask):
    mem = memi.data
    pack = memory_access.packer(w)
    mark = memi.mark

    def store(addr, v):
        ea = addr + off
        if ea + w > len(mem):
            _trap_mem()
        pack(mem, ea, v & mask)
        mark(ea, w)
    return store


def _memory_op(store, inst, name, imm, memi, at):
    mem = memi.data
    if name == 'memory.size':
        def size():
            return len(mem) // PAGE_SIZE
        return size, (), (at,)
    if name == 'memory.grow':
        m = _MASK[at]

        def grow(n):
            return memi.grow(n) & m
        return grow, (at,), (at,)
    if name == 'memory.fill':
        def fill(d, v, n):
            if d + n > len(mem):
                _trap_mem()
            mem[d:d + n] = bytes((v & 0xFF,)) * n
            memi.mark(d, n)
        return fill, (at, 'i32', at), ()
    if name == 'memory.copy':
        src = store.mems[inst.memaddrs[imm[1]]]
        sat = src.type.at
        smem = src.data

        def copy(d, s, n):
            if s + n > len(smem) or d + n > len(mem):
                _trap_mem()
            mem[d:d + n] = smem[s:s + n]
            memi.mark(d, n)
        return copy, (at, sat, 'i32' if 'i32' in (at, sat) else 'i64'), ()
    # memory.init
    from ..runtime import memory_init
    dataidx = imm[0] if imm.__class__ is tuple else imm
    ma, da = inst.memaddrs[memidx_of_init(imm)], inst.dataaddrs[dataidx]

    def init(d, s, n):
        memory_init(store, ma, da, d, s, n)
    return init, (at, 'i32', 'i32'), ()


def memidx_of_init(imm):
    return imm[1] if imm.__class__ is tuple else 0


def _table_op(store, inst, name, imm):
    if name == 'table.copy':
        dt = store.tables[inst.tableaddrs[imm[0]]]
        st = store.tables[inst.tableaddrs[imm[1]]]
        ats = (dt.type.at, st.type.at)

        def copy(d, s, n):
            if s + n > len(st.elem) or d + n > len(dt.elem):
                _trap_table()
            dt.elem[d:d + n] = st.elem[s:s + n]
        return copy, ats + ('i32' if 'i32' in ats else 'i64',), ()
    if name == 'table.init':
        from ..runtime import table_init
        elemidx, tableidx = imm
        ta, ea = inst.tableaddrs[tableidx], inst.elemaddrs[elemidx]

        def init(d, s, n):
            table_init(store, ta, ea, d, s, n)
        return init, (store.tables[ta].type.at, 'i32', 'i32'), ()
    tab = store.tables[inst.tableaddrs[imm]]
    at, et = tab.type.at, tab.type.elemtype
    if name == 'table.get':
        def get(i):
            if i >= len(tab.elem):
                _trap_table()
            return tab.elem[i]
        return get, (at,), (et,)
    if name == 'table.set':
        def set_(i, v):
            if i >= len(tab.elem):
                _trap_table()
            tab.elem[i] = v
        return set_, (at, et), ()
    if name == 'table.size':
        def size():
            return len(tab.elem)
        return size, (), (at,)
    if name == 'table.grow':
        m = _MASK[at]

        def grow(v, n):
            return tab.grow(n, v) & m
        return grow, (et, at), (at,)

    def fill(d, v, n):
        if d + n > len(tab.elem):
            _trap_table()
        tab.elem[d:d + n] = [v] * n
    return fill, (at, et, at), ()


def stack_closure(fn, nparams, nresults):
    """``f(stack)`` applying a value-level ``fn`` to a whole-value stack
    (the WasmEdge model)."""
    if nparams == 0:
        def f(stack):
            stack.append(fn())
    elif nparams == 1:
        if nresults:
            def f(stack):
                stack[-1] = fn(stack[-1])
        else:
            def f(stack):
                fn(stack.pop())
    else:
        def f(stack):
            args = stack[len(stack) - nparams:]
            del stack[len(stack) - nparams:]
            r = fn(*args)
            if nresults:
                stack.append(r)
    return f


def cell_closure(fn, params, results):
    """``f(stack)`` applying a value-level ``fn`` to a stack of 32-bit
    cells (the WAMR model): operands joined from their cells, the result
    split into cells."""
    from .cells import CELLS, from_cells, value_cells
    sizes = [CELLS[t] for t in params]
    total = sum(sizes)
    rt = results[0] if results else None

    def f(stack):
        i = base = len(stack) - total
        vals = []
        for t, n in zip(params, sizes):
            vals.append(from_cells(t, stack[i:i + n]))
            i += n
        del stack[base:]
        r = fn(*vals)
        if rt is not None:
            stack.extend(value_cells(rt, r))
    return f
