"""Runtime structure and module instantiation (spec exec/runtime.rst,
exec/modules.rst), shared by both executors.

Classes (plain objects with __slots__, addresses are indices into the
Store's lists):

- ``Store``: ``funcs``, ``tables``, ``mems``, ``globals``, ``elems``,
  ``datas`` lists of instances; ``executor`` ('wasmedge' | 'wamr');
  ``new_executor()`` makes a fresh executor object of that kind.
- ``FuncInst``: ``type`` (FuncType), ``module`` (ModuleInst or None for host
  functions), ``code`` (syntax.Func or None), ``host`` (callable taking a
  list of argument values and returning a list of results, or None),
  ``info`` (the validator's FuncInfo), ``idx`` (function index in its
  module, imports counted), ``cache`` (dict an executor may fill with its
  pre-decoded form of ``code``, keyed by executor name).
- ``TableInst``: ``type`` (TableType, min tracks the current size), ``elem``
  (list of references); ``grow(n, ref) -> old size or -1``.
- ``MemInst``: ``type`` (MemType), ``data`` (bytearray, grown in place so
  executors may keep a reference); ``grow(n) -> old page count or -1``;
  ``typed(holder)``: typed views of ``data`` for aligned accesses, kept
  current in ``holder`` across resizes.
- ``GlobalInst``: ``type`` (GlobalType), ``value``.
- ``ElemInst``: ``type`` (reference type), ``elem`` (list of refs; emptied
  by elem.drop).  ``DataInst``: ``data`` (bytes; emptied by data.drop).
- ``ModuleInst``: ``types``, ``funcaddrs``, ``tableaddrs``, ``memaddrs``,
  ``globaladdrs``, ``elemaddrs``, ``dataaddrs``, ``exports`` (dict name ->
  (kind, addr)), ``module`` (syntax.Module), ``info`` (ModuleInfo).

``instantiate(store, module, info, externvals)`` follows the spec order:
import matching, globals and element references by constant-expression
evaluation, allocation, active element then data segments (each bounds
checked as a whole, earlier writes stay), then the start function.
"""

import sys
from dataclasses import replace
from itertools import compress

from . import limits as L
from .exec import numerics
from . import deftypes
from . import syntax as S
from .errors import LinkError, Trap

PAGE_SIZE = 65536
TIERS = ('interp', 'fast')      # executors: the interpreter, the compiled tier
MAX_PAGES = 65536               # 4 GiB, the spec's limit for 32-bit memories
MAX_PAGES_64 = 1 << 48          # 2^64 bytes: the limit for 64-bit memories (memory64)
# Implementation limits (grow fails past them, instantiation refuses a larger
# minimum): the store's ``limits`` (engine/limits.py).


class FuncInst:
    __slots__ = ('type', 'module', 'code', 'host', 'info', 'idx', 'cache')

    def __init__(self, type, module=None, code=None, host=None, info=None,
                 idx=None):
        self.type = type
        self.module = module
        self.code = code
        self.host = host
        self.info = info
        self.idx = idx
        self.cache = {}

    def __repr__(self):
        return f'FuncInst({self.type}, idx={self.idx}, host={self.host is not None})'


class TableInst:
    __slots__ = ('type', 'elem', 'limit', 'keys')

    def __init__(self, type, init=None, limit=L.DEFAULT.max_table_elems, keys=()):
        self.type = type
        self.keys = keys        # the defining module's type keys (deftypes), for import matching
        self.limit = limit
        self.elem = [init] * type.limits.min

    def grow(self, n, init=None):
        """growtable: fail (-1) past the max or the u32 size range."""
        old = len(self.elem)
        new = old + n
        mx = self.type.limits.max
        if new > (0xFFFFFFFF if self.type.at == S.I32 else 0xFFFFFFFFFFFFFFFF) \
                or (mx is not None and new > mx) or new > self.limit:
            return -1
        self.elem.extend([init] * n)
        self.type = replace(self.type, limits=S.Limits(new, mx))
        return old


CHUNK_SHIFT = 12            # dirty-tracking granularity: 4 KiB chunks
CHUNK_SIZE = 1 << CHUNK_SHIFT


def nonzero_offsets(data, offsets=None, end=None):
    """Byte offsets of the 4 KiB chunks of ``data`` holding a non-zero
    byte, ascending: of ``offsets`` only when given (the flagged chunks),
    else of every chunk (a full scan); chunks from ``end`` on are left out."""
    if end is None:
        end = len(data)
    if offsets is None:
        offsets = range(0, end, CHUNK_SIZE)
    zero = bytes(CHUNK_SIZE)
    return [off for off in offsets
            if off < end and data[off:off + CHUNK_SIZE] != zero]


class MemInst:
    """A memory instance.  ``dirty`` has one flag per 4 KiB chunk of
    ``data``, set by every writer (``dirty[ea >> CHUNK_SHIFT] = 1`` for the
    first and the last byte written), so a checkpoint writes the chunks
    ever written without scanning the whole memory.  ``holders``: the dicts
    that hold typed views of ``data`` (``typed``), rebound at each resize."""
    __slots__ = ('type', 'data', 'limit', 'dirty', 'views', 'holders')

    def __init__(self, type, limit=L.DEFAULT.max_memory_pages):
        self.type = type
        self.limit = limit
        self.data = bytearray(type.limits.min * PAGE_SIZE)
        self.dirty = bytearray(len(self.data) >> CHUNK_SHIFT)
        self.views = None
        self.holders = []

    def size(self):
        return len(self.data) // PAGE_SIZE

    def typed(self, holder):
        """Put into ``holder`` (a compiled function's globals) ``VI``,
        ``VQ``, ``VD``: u32, u64 and f64 views of ``data`` (little-endian
        hosts only; else nothing), whose aligned loads and stores index
        instead of calling ``struct``.  A view forbids resizing ``data``:
        ``resize`` releases them and binds new ones in every holder."""
        if not TYPED_VIEWS:
            return False
        if self.views is None:
            self.views = _views(self.data)
        self.holders.append(holder)
        holder.update(zip(_VIEW_NAMES, self.views))
        return True

    def resize(self, data=None, extra=0):
        """``data`` (when given) in place of the contents, then ``extra``
        zero bytes appended: the only ways the length changes, with the
        typed views released around it."""
        if not extra and len(data) == len(self.data):
            self.data[:] = data
            return
        views = self.views
        if views is not None:
            for v in views:
                v.release()
            self.views = None
        try:
            if data is not None:
                self.data[:] = data
            if extra:
                self.data.extend(bytes(extra))
        finally:
            if views is not None:
                self.views = views = _views(self.data)
                for h in self.holders:
                    h.update(zip(_VIEW_NAMES, views))

    def mark(self, ea, n):
        """Flag the chunks of the ``n`` bytes written at ``ea`` (a writer
        outside the interpreters' inlined stores calls this)."""
        if n > 0:
            first, last = ea >> CHUNK_SHIFT, (ea + n - 1) >> CHUNK_SHIFT
            self.dirty[first:last + 1] = b'\x01' * (last - first + 1)

    def dirty_offsets(self):
        """Byte offsets of the flagged chunks, ascending: the only chunks
        that can hold a non-zero byte.  C-speed over the flags, so the cost
        is in the chunks flagged, not in the memory's size."""
        return [i << CHUNK_SHIFT for i in compress(range(len(self.dirty)), self.dirty)]

    def load(self, data, offsets=None):
        """Replace the contents by ``data`` in place (executors hold
        ``data`` and ``dirty``); the flags become ``offsets`` (the chunks
        that may be non-zero; None: found by scanning ``data``)."""
        self.resize(data)
        self.dirty[:] = bytes(len(self.data) >> CHUNK_SHIFT)
        if offsets is None:
            offsets = nonzero_offsets(self.data)
        dirty = self.dirty
        for off in offsets:
            dirty[off >> CHUNK_SHIFT] = 1

    def grow(self, n):
        """growmem: fail (-1) past the max or 65536 pages; zero-filled."""
        old = len(self.data) // PAGE_SIZE
        new = old + n
        mx = self.type.limits.max
        if new > (MAX_PAGES if self.type.at == S.I32 else MAX_PAGES_64) \
                or (mx is not None and new > mx) or new > self.limit:
            return -1
        if n:
            self.resize(extra=n * PAGE_SIZE)
            self.dirty.extend(bytes((n * PAGE_SIZE) >> CHUNK_SHIFT))
        self.type = replace(self.type, limits=S.Limits(new, mx))
        return old


# the typed views of MemInst.typed: native byte order, so little-endian hosts only
TYPED_VIEWS = sys.byteorder == 'little'
_VIEW_NAMES = ('VI', 'VQ', 'VD')


def _views(data):
    whole = memoryview(data)
    views = tuple(whole.cast(code) for code in 'IQd')
    whole.release()
    return views


class GlobalInst:
    __slots__ = ('type', 'value', 'keys')

    def __init__(self, type, value, keys=()):
        self.type = type
        self.value = value
        self.keys = keys        # the defining module's type keys (deftypes), for import matching


class ElemInst:
    __slots__ = ('type', 'elem')

    def __init__(self, type, elem):
        self.type = type
        self.elem = elem


class TagInst:
    """A tag (exception handling): its type, the fields' types as params.
    Tags are generative: each definition instantiated is a new address, and
    a catch matches by address, so an imported tag is its exporter's."""
    __slots__ = ('type',)

    def __init__(self, type):
        self.type = type


class DataInst:
    __slots__ = ('data',)

    def __init__(self, data):
        self.data = data


class ModuleInst:
    __slots__ = ('types', 'funcaddrs', 'tableaddrs', 'memaddrs',
                 'globaladdrs', 'elemaddrs', 'dataaddrs', 'exports',
                 'module', 'info', 'tagaddrs')

    def __init__(self, module=None, info=None):
        self.types = list(module.types) if module is not None else []
        self.funcaddrs = []
        self.tableaddrs = []
        self.memaddrs = []
        self.globaladdrs = []
        self.elemaddrs = []
        self.dataaddrs = []
        self.tagaddrs = []
        self.exports = {}
        self.module = module
        self.info = info


class Store:
    __slots__ = ('funcs', 'tables', 'mems', 'globals', 'elems', 'datas',
                 'executor', 'limits', 'instances', 'tier', 'tags', 'budget')

    def __init__(self, executor='wasmedge', limits=None, tier='interp'):
        if executor not in ('wasmedge', 'wamr'):
            raise ValueError(f'unknown executor {executor!r}')
        if tier not in TIERS:
            raise ValueError(f'unknown tier {tier!r} (expected one of {", ".join(TIERS)})')
        self.tier = tier
        self.limits = limits or L.DEFAULT
        self.instances = 0          # module instances made in this store
        self.funcs = []
        self.tables = []
        self.mems = []
        self.globals = []
        self.elems = []
        self.datas = []
        self.tags = []
        self.executor = executor
        self.budget = None          # the compiled tier's budget cell (compile.budget_cell)

    def new_executor(self, kind=None, tier=None):
        """A fresh executor of ``kind`` and ``tier`` (default: the
        store's), imported lazily; either model runs over the same store.
        Both models have a compiled tier."""
        fast = (tier or self.tier) == 'fast'
        if (kind or self.executor) == 'wamr':
            if fast:
                from .exec.fast_wamr import Executor
            else:
                from .exec.wamr import Executor
        elif fast:
            from .exec.fast_wasmedge import Executor
        else:
            from .exec.wasmedge import Executor
        return Executor(self)

    def invoke(self, funcaddr, args):
        fi = self.funcs[funcaddr]
        if fi.host is not None:
            return list(fi.host(list(args)))
        return self.new_executor().invoke(funcaddr, list(args))


# ---------------------------------------------------------------- allocation

def default_value(t):
    """The zero of a value type (locals, table fill): 0 or null."""
    return None if S.is_ref(t) else 0


def alloc_func(store, type, module, code, info, idx):
    store.funcs.append(FuncInst(type, module, code, None, info, idx))
    return len(store.funcs) - 1


def alloc_hostfunc(store, type, fn):
    store.funcs.append(FuncInst(type, None, None, fn))
    return len(store.funcs) - 1


def alloc_table(store, type, init=None, keys=()):
    store.tables.append(TableInst(type, init, store.limits.max_table_elems, keys))
    return len(store.tables) - 1


def alloc_mem(store, type):
    store.mems.append(MemInst(type, store.limits.max_memory_pages))
    return len(store.mems) - 1


def alloc_global(store, type, value, keys=()):
    store.globals.append(GlobalInst(type, value, keys))
    return len(store.globals) - 1


def alloc_elem(store, type, refs):
    store.elems.append(ElemInst(type, refs))
    return len(store.elems) - 1


def alloc_data(store, data):
    store.datas.append(DataInst(data))
    return len(store.datas) - 1


# ------------------------------------------------------- constant expressions

# extended constant expressions (Wasm 3.0): integer add, sub, mul
_CONST_BINOPS = {op: numerics.OPS[op] for op in
                 ('i32.add', 'i32.sub', 'i32.mul', 'i64.add', 'i64.sub', 'i64.mul')}

def eval_const(store, inst, expr):
    """Evaluate a constant expression (the validator allows only these)."""
    stack = []
    for ins in expr:
        op = ins.op
        if op in ('i32.const', 'i64.const', 'f32.const', 'f64.const',
                  'v128.const'):
            stack.append(ins.imm)
        elif op == 'ref.null':
            stack.append(None)
        elif op == 'ref.func':
            stack.append(inst.funcaddrs[ins.imm])
        elif op == 'global.get':
            stack.append(store.globals[inst.globaladdrs[ins.imm]].value)
        elif op in _CONST_BINOPS:
            b = stack.pop()
            stack.append(_CONST_BINOPS[op](stack.pop(), b))
        elif op == 'end':
            break
        elif op in _CONST_GC:      # GC allocations and conversions (Wasm 3.0)
            from .exec import gc
            fn, params, _ = gc.instruction(store, inst, ins)
            n = len(params)
            args = stack[len(stack) - n:] if n else []
            del stack[len(stack) - n:]
            stack.append(fn(*args))
        else:
            raise Trap(f'constant expression required ({op})')
    return stack[-1]


_CONST_GC = frozenset(('struct.new', 'struct.new_default', 'array.new', 'array.new_default',
                       'array.new_fixed', 'ref.i31', 'any.convert_extern', 'extern.convert_any'))


# ------------------------------------------------------------ import matching

def match_limits(actual, expected):
    """Limits subtyping: at least as large, at most as big a max."""
    if actual.min < expected.min:
        return False
    if expected.max is None:
        return True
    return actual.max is not None and actual.max <= expected.max


def extern_type(store, kind, addr):
    """The current external type of an extern value (sizes included)."""
    if kind == 'func':
        return store.funcs[addr].type
    if kind == 'table':
        t = store.tables[addr]
        return replace(t.type, limits=S.Limits(len(t.elem), t.type.limits.max))
    if kind == 'memory':
        m = store.mems[addr]
        return replace(m.type, limits=S.Limits(m.size(), m.type.limits.max))
    if kind == 'tag':
        return store.tags[addr].type
    return store.globals[addr].type


def match_import(store, module, imp, externval):
    kind, addr = externval
    if kind != imp.kind:
        return False
    actual = extern_type(store, kind, addr)
    if kind == 'func':      # 3.0: the function's type is a subtype of the import's
        return deftypes.deftype_matches(S.type_key(actual), S.type_key(module.types[imp.desc]))
    if kind == 'tag':
        return S.type_key(actual) == S.type_key(module.types[imp.desc.typeidx])
    keys = deftypes.module_keys(module)
    if kind == 'table':
        akeys = getattr(store.tables[addr], 'keys', ())
        return (_same_type(actual.elemtype, akeys, imp.desc.elemtype, keys)
                and actual.at == imp.desc.at and match_limits(actual.limits, imp.desc.limits))
    if kind == 'memory':
        return actual.at == imp.desc.at and match_limits(actual.limits, imp.desc.limits)
    if actual.mut != imp.desc.mut:
        return False
    akeys = getattr(store.globals[addr], 'keys', ())
    if actual.mut:
        return _same_type(actual.valtype, akeys, imp.desc.valtype, keys)
    return deftypes.matches_across(actual.valtype, akeys, imp.desc.valtype, keys)


def _same_type(t1, keys1, t2, keys2):
    """Equivalent value types (mutable globals and tables are invariant);
    a concrete heap type is resolved in its own module (``keys1`` the
    exporter's type keys, ``keys2`` the importer's)."""
    return deftypes.matches_across(t1, keys1, t2, keys2) and \
        deftypes.matches_across(t2, keys2, t1, keys1)


# -------------------------------------------------------------- instantiation

def instantiate(store, module, info, externvals, run_start=True):
    """Spec "Instantiation": link, allocate, run segments, run start.

    ``run_start=False`` is for restoring a checkpoint: the saved state
    already holds the start function's effects.

    Returns the ModuleInst; raises LinkError when the imports do not match
    and Trap when a segment is out of bounds or the start function traps
    (the instance's effects on shared imports then remain, as in 2.0).
    """
    if len(externvals) != len(module.imports):
        raise LinkError('unknown import')
    for imp, ev in zip(module.imports, externvals):
        if not match_import(store, module, imp, ev):
            raise LinkError('incompatible import type')

    check_limits(store.limits, module, store.instances)
    store.instances += 1
    keys = deftypes.module_keys(module)
    inst = ModuleInst(module, info)
    for kind, addr in externvals:
        if kind == 'func':
            inst.funcaddrs.append(addr)
        elif kind == 'table':
            inst.tableaddrs.append(addr)
        elif kind == 'memory':
            inst.memaddrs.append(addr)
        elif kind == 'tag':
            inst.tagaddrs.append(addr)
        else:
            inst.globaladdrs.append(addr)

    # Functions first, so ref.func in initialisers sees their addresses.
    nimp = len(inst.funcaddrs)
    finfos = getattr(info, 'funcs', None) or []
    for i, f in enumerate(module.funcs):
        fi = finfos[i] if i < len(finfos) else None
        inst.funcaddrs.append(alloc_func(store, module.types[f.typeidx], inst,
                                         f, fi, nimp + i))
    for t in module.tables:
        inst.tableaddrs.append(alloc_table(store, t.type, keys=keys))
    for m in module.mems:
        inst.memaddrs.append(alloc_mem(store, m.type))
    for t in module.tags:
        store.tags.append(TagInst(module.types[t.typeidx]))
        inst.tagaddrs.append(len(store.tags) - 1)
    # Global initialisers may read imported globals only (validated), and
    # the already allocated ones are harmlessly visible too.
    for g in module.globals:
        v = eval_const(store, inst, g.init)
        inst.globaladdrs.append(alloc_global(store, g.type, v, keys))
    # 3.0 table initializers (they may read the globals)
    for t, ta in zip(module.tables, inst.tableaddrs[len(inst.tableaddrs) - len(module.tables):]):
        if t.init is not None:
            v = eval_const(store, inst, t.init)
            tab = store.tables[ta]
            tab.elem[:] = [v] * len(tab.elem)
    for e in module.elems:
        refs = [eval_const(store, inst, x) for x in e.init]
        inst.elemaddrs.append(alloc_elem(store, e.type, refs))
    for d in module.datas:
        inst.dataaddrs.append(alloc_data(store, bytes(d.init)))
    for ex in module.exports:
        addrs = {'func': inst.funcaddrs, 'table': inst.tableaddrs,
                 'memory': inst.memaddrs, 'global': inst.globaladdrs,
                 'tag': inst.tagaddrs}[ex.kind]
        inst.exports[ex.name] = (ex.kind, addrs[ex.index])

    for i, e in enumerate(module.elems):
        ea = inst.elemaddrs[i]
        if e.mode == 'active':
            off = eval_const(store, inst, e.offset)
            table_init(store, inst.tableaddrs[e.table], ea, off, 0,
                       len(e.init))
            store.elems[ea].elem = []
        elif e.mode == 'declarative':
            store.elems[ea].elem = []
    for i, d in enumerate(module.datas):
        if d.mode == 'active':
            da = inst.dataaddrs[i]
            off = eval_const(store, inst, d.offset)
            memory_init(store, inst.memaddrs[d.memory], da, off, 0,
                        len(d.init))
            store.datas[da].data = b''

    if run_start and module.start is not None:
        store.invoke(inst.funcaddrs[module.start], [])
    return inst


def check_limits(limits, module, instances=0):
    """Refuse, before allocating anything, a module whose instance would
    exceed the limits: its memory or table minimums, its function count,
    one instance too many."""
    limits.check('max_instances', instances + 1, 'module instances in the store')
    limits.check('max_funcs', len(module.imported('func')) + len(module.funcs), 'functions')
    limits.check('max_memories', len(module.imported('memory')) + len(module.mems), 'memories')
    for i, t in enumerate(module.tables, len(module.imported('table'))):
        limits.check('max_table_elems', t.type.limits.min, f'table {i} minimum size')
    for i, m in enumerate(module.mems, len(module.imported('memory'))):
        limits.check('max_memory_pages', m.type.limits.min, f'memory {i} minimum pages')


def table_init(store, tableaddr, elemaddr, d, s, n):
    """table.init semantics: check both ranges, then copy."""
    tab = store.tables[tableaddr].elem
    src = store.elems[elemaddr].elem
    if s + n > len(src) or d + n > len(tab):
        raise Trap('out of bounds table access')
    tab[d:d + n] = src[s:s + n]


def memory_init(store, memaddr, dataaddr, d, s, n):
    """memory.init semantics: check both ranges, then copy."""
    mem = store.mems[memaddr].data
    src = store.datas[dataaddr].data
    if s + n > len(src) or d + n > len(mem):
        raise Trap('out of bounds memory access')
    mem[d:d + n] = src[s:s + n]
    store.mems[memaddr].mark(d, n)


# ------------------------------------------------------------ spectest module

def spectest_instance(store):
    """The testsuite's "spectest" host module (see the testsuite README)."""
    inst = ModuleInst()
    i32, i64, f32, f64 = S.I32, S.I64, S.F32, S.F64

    def printer(*_):
        return lambda args: []

    for name, params in (('print', ()), ('print_i32', (i32,)),
                         ('print_i64', (i64,)), ('print_f32', (f32,)),
                         ('print_f64', (f64,)), ('print_i32_f32', (i32, f32)),
                         ('print_f64_f64', (f64, f64))):
        a = alloc_hostfunc(store, S.FuncType(params, ()), printer())
        inst.funcaddrs.append(a)
        inst.exports[name] = ('func', a)
    for name, t, v in (('global_i32', i32, 666), ('global_i64', i64, 666),
                       ('global_f32', f32, 0x4426A666),      # 666.6f
                       ('global_f64', f64, 0x4084D4CCCCCCCCCD)):  # 666.6
        a = alloc_global(store, S.GlobalType(False, t), v)
        inst.globaladdrs.append(a)
        inst.exports[name] = ('global', a)
    a = alloc_table(store, S.TableType(S.Limits(10, 20), S.FUNCREF))
    inst.tableaddrs.append(a)
    inst.exports['table'] = ('table', a)
    a = alloc_table(store, S.TableType(S.Limits(10, 20), S.FUNCREF, S.I64))   # Wasm 3.0
    inst.tableaddrs.append(a)
    inst.exports['table64'] = ('table', a)
    a = alloc_mem(store, S.MemType(S.Limits(1, 2)))
    inst.memaddrs.append(a)
    inst.exports['memory'] = ('memory', a)
    return inst
