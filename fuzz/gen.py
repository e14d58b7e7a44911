"""Generator of valid, terminating Wasm modules (2.0, plus exception handling,
typed function references and GC of 3.0) for differential testing.

One core, ``build_module(chooser)``, makes every decision through an abstract
*chooser* (``integers(lo, hi)``, ``choice(seq)``, ``boolean()``), so the same
generator runs from hypothesis (``modules()``: shrinks towards the first,
simplest option of every choice) and from raw fuzzer bytes (``from_bytes``:
deterministic, and when the bytes run out every choice is the minimal one).

Why the programs are valid: code is produced while tracking the typed operand
stack of the current block, exactly like the validation algorithm (spec
appendix/algorithm.rst) would, and every block is closed by making its stack
equal to the block's result types.

Why they terminate: the call graph is a DAG (function i calls only j > i, and
call_indirect only reaches table slots > i, table 0 is never written), a
function's self-recursion is guarded by a shared depth global, and every loop
owns a counter local that is decremented at its head; the only branches back
to a loop are ``br_if`` on that counter.  A static cost estimate (loop bounds
times body size, plus callee costs) keeps a run within a few thousand
instructions.

Proposals beyond the MVP come and go with ``features`` (names as in
wasm-tools: ``'simd'``, ``'reference-types'``, and the Wasm 3.0
``'multi-memory'``, ``'memory64'``, ``'tail-call'`` of the section "Wasm
3.0" below and ``'exceptions'``, ``'legacy-exceptions'`` (with
``'exceptions'`` only), ``'function-references'`` and ``'gc'`` (with
``'function-references'`` only) of ``fuzz.gen3``; default ``FEATURES``, all of them: ``KNOWN_FEATURES``), for
engines built without them, such as
the WAMR fork's iwasm (``WAMR_BUILD_SIMD=0`` and ``WAMR_BUILD_REF_TYPES=0``;
the real forks get ``forks.programs.FORK_FEATURES``, none): without SIMD no v128
type or instruction; without reference types one table, no reference type,
no table.*/ref.*/typed select, no passive element segment, no linking.
Without the 3.0 features a seed draws exactly the choices it drew
before they existed, so it keeps its module; with them (the default) the
3.0 actions join the draws and a seed's module changed.  Drawn after
every other choice, each function of every module starts with an *early
exit* (``ModuleGen.reach``: a compare-and-branch out of a block with
temporaries left below its result), so a seed keeps the rest of its module.

Floating-point NaN results are non-deterministic in Wasm; with
``canonicalize_nans`` (the default) every NaN-producing float operation is
followed by a sequence replacing a NaN by the canonical NaN, so results can
be compared bit-exactly with another engine such as wasmtime.
"""

import subprocess
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from conformance.wat import wasm_tools     # the one finder of the binary
from engine import opcodes, syntax
from engine.syntax import (I32, I64, F32, F64, V128, FUNCREF, EXTERNREF, FuncType, Instr)
from fuzz import encode, gen3, linked

NUM = (I32, I64, F32, F64)
ALL_TYPES = (I32, I64, F32, F64, V128, FUNCREF, EXTERNREF)

MAX_FUNCS = 5
MAX_DEPTH = 3              # nesting of block/loop/if
MAX_LOOP = 20              # iterations of one loop
RECURSION_LIMIT = 3        # bound on the shared depth global
BUDGET = 3000              # estimated instructions executed per call of any function
MAX_CODE = 400             # instructions per function body
PAGE = 65536
CHUNK_BYTES = 4096         # the image files' dirty-chunk size (memory.img)

# ---------------------------------------------------------------- choosers


class Chooser:
    """Decisions of the generator; subclasses supply ``integers``."""

    def integers(self, lo, hi):
        raise NotImplementedError

    def choice(self, seq):
        return seq[self.integers(0, len(seq) - 1)]

    def boolean(self):
        return self.integers(0, 1) == 1

    def weighted(self, pairs):
        """Pick an item from (weight, item) pairs; shrinks to the first."""
        total = sum(w for w, _ in pairs)
        r = self.integers(0, total - 1)
        for w, item in pairs:
            if r < w:
                return item
            r -= w
        return pairs[-1][1]


class BytesChooser(Chooser):
    """Consumes fuzzer bytes; when they run out, every choice is minimal."""

    def __init__(self, data):
        self.data = bytes(data)
        self.pos = 0

    def integers(self, lo, hi):
        span = hi - lo
        if span <= 0:
            return lo
        n = (span.bit_length() + 7) // 8
        if self.pos >= len(self.data):
            return lo
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return lo + int.from_bytes(chunk, 'little') % (span + 1)


class DrawChooser(Chooser):
    """Wraps a hypothesis ``draw`` so each choice is a shrinkable integer."""

    # (lo, hi) -> its strategy, shared by every module a process generates:
    # a strategy is immutable, and hypothesis validates and unwraps it once
    _cache = {}

    def __init__(self, draw):
        self._draw = draw

    def integers(self, lo, hi):
        if hi <= lo:
            return lo
        s = self._cache.get((lo, hi))
        if s is None:
            import hypothesis.strategies as st
            s = self._cache[(lo, hi)] = st.integers(lo, hi).wrapped_strategy
        return self._draw(s)


class RandomChooser(Chooser):
    """Backed by ``random.Random`` (handy for quick scripts and benchmarks)."""

    def __init__(self, seed=0):
        import random
        self.rng = random.Random(seed)

    def integers(self, lo, hi):
        return lo if hi <= lo else self.rng.randint(lo, hi)


# ---------------------------------------------------------------- values

I32_VALS = (0, 1, 2, 0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, 7, 8, 31, 32, 33, 0xFF, 0x80,
            0xFFFF, 0x8000, 0x10000, 0xFFFFFFFE, 100, 0xFFFFFF80)
I64_VALS = (0, 1, 2, 0xFFFFFFFFFFFFFFFF, 0x8000000000000000, 0x7FFFFFFFFFFFFFFF, 7, 63, 64,
            0xFFFFFFFF, 0x80000000, 0x100000000, 0xFF, 0xFFFF, 0xFFFFFFFFFFFFFFFE)
F32_VALS = (0x00000000, 0x3F800000, 0x80000000, 0xBF800000, 0x7F800000, 0xFF800000,
            0x7FC00000, 0x7FA00001, 0xFFC00123, 0x00000001, 0x80000001, 0x007FFFFF,
            0x7F7FFFFF, 0x3F000000, 0x3FC00000, 0x40200000, 0xBFC00000, 0x4F000000,
            0xCF000000, 0x5F000000, 0xDF000000, 0x4F800000, 0x40490FDB)
F64_VALS = (0x0000000000000000, 0x3FF0000000000000, 0x8000000000000000, 0xBFF0000000000000,
            0x7FF0000000000000, 0xFFF0000000000000, 0x7FF8000000000000, 0x7FF4000000000001,
            0xFFF8000000000123, 0x0000000000000001, 0x000FFFFFFFFFFFFF, 0x7FEFFFFFFFFFFFFF,
            0x3FE0000000000000, 0x3FF8000000000000, 0x4004000000000000, 0xBFF8000000000000,
            0x41E0000000000000, 0xC1E0000000000000, 0x43E0000000000000, 0xC3E0000000000000,
            0x41F0000000000000, 0x400921FB54442D18, 0x36A0000000000000)
INTERESTING = {I32: I32_VALS, I64: I64_VALS, F32: F32_VALS, F64: F64_VALS}
BITS = {I32: 32, I64: 64, F32: 32, F64: 64, V128: 128}
CANON_NAN = {F32: 0x7FC00000, F64: 0x7FF8000000000000}
LANES = {'i8x16': 16, 'i16x8': 8, 'i32x4': 4, 'i64x2': 2, 'f32x4': 4, 'f64x2': 2}


def _splat(value, bits):
    out = 0
    for i in range(128 // bits):
        out |= value << (i * bits)
    return out


CANON_V128 = {'f32x4': _splat(CANON_NAN[F32], 32), 'f64x2': _splat(CANON_NAN[F64], 64)}

_NAN_OPS = ('add', 'sub', 'mul', 'div', 'sqrt', 'min', 'max', 'ceil', 'floor', 'trunc',
            'nearest', 'promote', 'demote')


def nan_nondeterministic(name):
    """Whether the spec lets this instruction return a NaN of any payload
    (exec/numerics.rst: float arithmetic; not abs/neg/copysign/pmin/pmax,
    which move bits exactly)."""
    shape, _, base = name.partition('.')
    return shape in ('f32', 'f64', 'f32x4', 'f64x2') and base.split('_')[0] in _NAN_OPS


# ---------------------------------------------------------------- op pools

def _pools():
    pure, by_params, by_result, loads, stores, lane_loads, lane_stores = [], {}, {}, [], [], [], []
    for op in opcodes.OPS:
        if op.sig is None or '.relaxed_' in op.name:
            # relaxed SIMD: wasmtime (the oracle) may pick another allowed result
            continue
        params, results = op.sig
        if op.imm in (None, 'lane', 'shuffle'):
            pure.append(op)
            by_params.setdefault(tuple(params), []).append(op)
            if len(results) == 1:
                by_result.setdefault(results[0], []).append(op)
        elif op.imm == 'memarg':
            (loads if results else stores).append(op)
        elif op.imm == 'memarg_lane':
            (lane_loads if results else lane_stores).append(op)
    return pure, by_params, by_result, loads, stores, lane_loads, lane_stores


PURE_OPS, OPS_BY_PARAMS, OPS_BY_RESULT, LOAD_OPS, STORE_OPS, LANE_LOADS, LANE_STORES = _pools()
LOADS_BY_RESULT = {}
for _op in LOAD_OPS:
    LOADS_BY_RESULT.setdefault(_op.sig[1][0], []).append(_op)

DIVISIONS = frozenset(f'{t}.{op}_{s}' for t in ('i32', 'i64') for op in ('div', 'rem')
                      for s in 'su')

WASM3_FEATURES = frozenset({'multi-memory', 'memory64', 'tail-call'})   # see "Wasm 3.0" below
FEATURES = (frozenset({'simd', 'reference-types'}) | WASM3_FEATURES | gen3.EXN_FEATURES
            | gen3.GC_FEATURES)
# every feature the generator knows: all of them are defaults (a campaign
# leaves some out: ``fuzz.migrate --without``)
KNOWN_FEATURES = FEATURES


def _op_pools(features):
    """(pure, by params, by result, loads, stores, loads by result) of the ops
    the features allow (the full pools, unchanged, when they allow all)."""
    pools = (PURE_OPS, OPS_BY_PARAMS, OPS_BY_RESULT, LOAD_OPS, STORE_OPS, LOADS_BY_RESULT)
    if 'simd' in features:
        return pools

    def scalar(op):
        return V128 not in (*op.sig[0], *op.sig[1])

    def by(ops, key):
        out = {}
        for op in ops:
            out.setdefault(key(op), []).append(op)
        return out
    pure = [op for op in PURE_OPS if scalar(op)]
    loads = [op for op in LOAD_OPS if scalar(op)]
    return (pure, by(pure, lambda op: tuple(op.sig[0])),
            by([op for op in pure if len(op.sig[1]) == 1], lambda op: op.sig[1][0]),
            loads, [op for op in STORE_OPS if scalar(op)], by(loads, lambda op: op.sig[1][0]))


STOP = object()   # returned by a step after which the code is unreachable

# ---------------------------------------------------------------- result


@dataclass
class GeneratedModule:
    """A generated module plus how to run it."""
    wasm: bytes
    module: syntax.Module
    entry: str
    params: Tuple[str, ...]
    results: Tuple[str, ...]
    args: List[tuple]
    globals: List[Tuple[str, str, bool]] = field(default_factory=list)  # (export, type, mutable)
    memory: Optional[str] = 'mem'
    # instruction counts (the same in both models) worth a checkpoint of
    # their own: the bottom of a dive (``ModuleGen.dive``), a wide struct's
    # unset local (``ModuleGC.gc_wide``)
    stops: Tuple[int, ...] = ()
    # the count at the dive's bottom (``stops[0]``), None in a module that
    # does not dive
    dive: Optional[int] = None
    _wat: Optional[str] = field(default=None, repr=False, compare=False)

    @property
    def wat(self):
        """Text format for humans (reproducers), printed lazily by wasm-tools."""
        if self._wat is None:
            self._wat = wasm_to_wat(self.wasm)
        return self._wat



def validate(wasm, features=FEATURES):
    """None if wasm-tools accepts ``wasm`` as a Wasm 2.0 module plus the 3.0
    proposals among ``features`` (wasm-tools' names), else its message.
    With 'gc' also extended constant expressions, which the GC element
    segment's items use (``gen3.ModuleGC.gc_elem_item``)."""
    extra = ''.join(',' + f for f in sorted(set(features) & (WASM3_FEATURES | gen3.EXN_FEATURES
                                                             | gen3.GC_FEATURES)))
    if gen3.GC in features:
        extra += ',extended-const'
    proc = subprocess.run([wasm_tools(), 'validate', '--features=wasm2' + extra, '-'], input=wasm,
                          capture_output=True)
    return proc.stderr.decode(errors='replace') if proc.returncode else None


def wasm_to_wat(wasm):
    proc = subprocess.run([wasm_tools(), 'print', '-'], input=wasm, capture_output=True)
    if proc.returncode:
        return '(; wasm-tools print failed: %s ;)' % proc.stderr.decode(errors='replace')
    return proc.stdout.decode()


# ---------------------------------------------------------------- Wasm 3.0: memories, tail calls
#
# Features 'multi-memory', 'memory64' and 'tail-call' (names as in
# wasm-tools).  Every decision below is drawn only when its feature is on,
# so a module made without them is drawn exactly as before (the forks'
# FORK_FEATURES keep their modules).
#
# Extra memories (``ModuleGen.xmems``): memory 0 stays the 2.0 generator's
# (``has_memory``, export ``mem``); with multi-memory 1-2 more follow it,
# some imported from the provider where a module is linked, some with 0
# pages (grown by the entry's prologue or left to memory.size/grow), some
# with a data segment of their own; with memory64 some of them have i64
# addresses, and a module without memory 0 may have one 64-bit memory as its
# only one.  With memory64 and reference types half of the modules also get
# a 64-bit funcref table (table64; ``t64``, after the 2.0 tables), slot k
# holding function k, which calls and tail calls go through with i64 indices.  Each is exported as ``mem{i}`` (its index), so every oracle
# compares it.
#
# Tail calls keep termination: ``return_call``/``return_call_indirect``
# only to functions j > i (the DAG of calls), a self tail call guarded by
# the depth global (which it increments for good: at most
# RECURSION_LIMIT of them in a run), and a *tail chain* appended after the
# generated functions: T_0 .. T_{k-1} each tail-calling the next with
# parameters of its own, the last one a loop function L(n, acc) that
# tail-calls itself n times (a strictly decreasing counter), so a
# checkpoint inside it finds one replaced frame where the caller's call
# named T_0 (and a caller holding T_0's arguments popped, not L's).

WIDE_EXIT_DEPTH = 3  # blocks a wide early exit's branch leaves besides its own (ModuleGen.early_exit)
# an early exit not taken: the result plus one, out by ``br 0``; the entry's
# (always taken) skips these instructions (ModuleFeatures3.gc_wide counts them)
EARLY_EXIT_TAIL = (('i32.const', 1), ('i32.add', None), ('br', 0))
TAIL_STEP = 16      # instructions of one iteration of the chain's loop function (upper bound)


@dataclass
class XMem:
    """One memory of the 3.0 section: its index, type and how it is made."""
    index: int
    type: syntax.MemType
    imported: bool
    import_name: str = ''
    grown_first: bool = False       # the entry's prologue grows it by one page

    @property
    def at(self):
        return self.type.at

    @property
    def usable(self):
        """Accesses at low addresses do not trap (as far as the start goes)."""
        return self.type.limits.min > 0 or self.grown_first


@dataclass
class TailChain:
    """The appended functions: T_0 .. T_{k-1}, then L (see above)."""
    first: int                      # function index of T_0
    sigs: List[FuncType]            # T_j's types; L's is (i32, i64) -> results
    results: Tuple[str, ...]
    iterations: int
    cost: int
    slot: Optional[int] = None      # T_0's slot in table 0


class Wasm3Module:
    """ModuleGen's part for the 3.0 features (a mixin: module-level plan,
    the appended functions, the memories' declarations)."""

    def plan_wasm3(self):
        c = self.c
        self.tail = 'tail-call' in self.wasm3
        multi, wide = 'multi-memory' in self.wasm3, 'memory64' in self.wasm3
        count = 0
        if multi:
            count = c.weighted([(2, 0), (3, 1), (2, 2)])
        if not self.has_memory and wide and (count <= 1 or not multi) and c.boolean():
            count = 1                   # one 64-bit memory, the module's only one
        if not multi:
            count = min(count, 0 if self.has_memory else 1)
        base = 1 if self.has_memory else 0
        specs = []
        for k in range(count):
            only = not self.has_memory and count == 1
            at = I64 if wide and (only or c.integers(0, 2) == 0) else I32
            # memory 0 of a module without the 2.0 memory is empty more often:
            # a restore of a 0-page memory 0 (an empty memory.img)
            lo = c.weighted([(3 if k == 0 and not self.has_memory else 1, 0), (3, 1), (1, 2)])
            imported = self.linked and c.integers(0, 2) == 0
            specs.append((imported, at, syntax.Limits(lo, lo + c.integers(0, 2))))
        specs.sort(key=lambda s: not s[0])      # imported memories come first in the index space
        for k, (imported, at, lim) in enumerate(specs):
            x = XMem(base + k, syntax.MemType(lim, at), imported, f'pmem{base + k}' if imported else '')
            x.grown_first = lim.min == 0 and c.boolean()
            self.xmems.append(x)
            if lim.min and c.boolean():     # an active data segment into it
                # at its start or in its last chunk (memory{i}.img then holds
                # a chunk past offset 0)
                off = c.integers(0, 128) if c.boolean() else lim.min * 65536 - 16 - c.integers(0, 4000)
                self.datas.append(syntax.Data(bytes(c.integers(0, 255) for _ in range(c.integers(1, 16))),
                                              'active', x.index, [Instr(at + '.const', off), Instr('end')]))
        self.xpassive = None
        if self.xmems and not self.has_memory:      # memory.init's segment
            self.xpassive = len(self.datas)
            self.datas.append(syntax.Data(bytes(c.integers(0, 255) for _ in range(c.integers(0, 16))),
                                          'passive'))
        # table64: a 64-bit funcref table, slot k holding function k like
        # table 0, called through with i64 indices (after the 2.0 tables)
        self.t64 = 2 if wide and self.refs and c.boolean() else None
        if self.tail and c.integers(0, 2):
            self.plan_chain()

    def plan_chain(self):
        c = self.c
        k = c.integers(1, 3)
        results = self.sigs[0].results      # the entry can tail-call the chain
        sigs = [FuncType(tuple(self.valtype() for _ in range(c.integers(0, 3))), results)
                for _ in range(k)]
        iterations = c.weighted([(3, c.integers(1, 12)), (2, c.integers(40, 150))])
        cost = sum(len(ft.params) + 6 for ft in sigs) + TAIL_STEP * (iterations + 1) + len(results)
        # T_0 also sits in table 0's last slot when it is free (an indirect tail call's target)
        slot = self.table0_size - 1 if self.table0_size > self.nfuncs and c.boolean() else None
        self.chain = TailChain(self.fbase + self.nfuncs, sigs, results, iterations, cost, slot)

    def chain_funcs(self):
        """The tail chain's functions (appended after the generated ones)."""
        ch = self.chain
        if ch is None:
            return []
        c = self.c
        out = []
        loop = ch.first + len(ch.sigs)
        for j, ft in enumerate(ch.sigs):
            body = []
            gs = [gi for gi, (t, mut, _) in enumerate(self.globals)
                  if mut and gi not in (self.depth_global, self.link_global) and ft.params
                  and t == ft.params[0]]
            if gs and c.boolean():          # leave a trace of the frame that is replaced
                body += [('local.get', 0), ('global.set', c.choice(gs))]
            if j + 1 < len(ch.sigs):
                body += [self.const_instr(t) for t in ch.sigs[j + 1].params] + [('return_call', ch.first + j + 1)]
            else:
                body += [('i32.const', ch.iterations), ('i64.const', c.choice(I64_VALS)),
                         ('return_call', loop)]
            out.append(syntax.Func(self.type_index(ft), [], [Instr(op, imm) for op, imm in body + [('end', None)]]))
        # L(n, acc): while n: acc = acc * K + n, a store of acc, n -= 1 (a tail call)
        body = [('block', None), ('local.get', 0), ('i32.eqz', None), ('br_if', 0)]
        mems = ([(0, I32)] if self.has_memory else []) + [(x.index, x.at) for x in self.xmems
                                                           if x.type.limits.min]
        if mems:
            m, at = c.choice(mems)
            body += [('local.get', 0), ('i32.const', 7), ('i32.and', None), ('i32.const', 3), ('i32.shl', None)]
            if at == I64:
                body.append(('i64.extend_i32_u', None))
            body += [('local.get', 1), ('i64.store', (3, 8 * c.integers(0, 8)) + ((m,) if m else ()))]
        body += [('local.get', 0), ('i32.const', 1), ('i32.sub', None),
                 ('local.get', 1), ('i64.const', c.choice(I64_VALS) | 1), ('i64.mul', None),
                 ('local.get', 0), ('i64.extend_i32_u', None), ('i64.add', None),
                 ('return_call', loop), ('end', None)]
        gs = [gi for gi, (t, mut, _) in enumerate(self.globals) if mut and t == I64]
        if gs:
            body += [('local.get', 1), ('global.set', c.choice(gs))]
        body += [('local.get', 1) if t == I64 else self.const_instr(t) for t in ch.results]
        out.append(syntax.Func(self.type_index(FuncType((I32, I64), ch.results)), [],
                               [Instr(op, imm) for op, imm in body + [('end', None)]]))
        return out

    def assemble_wasm3(self, m, exports):
        """The extra memories: imports (after memory 0's), definitions,
        exports; T_0 into table 0."""
        if self.t64 is not None:
            m.tables.append(syntax.Table(syntax.TableType(syntax.Limits(self.nfuncs, self.nfuncs), FUNCREF,
                                                          I64)))
            m.elems.append(syntax.Elem(FUNCREF, [[Instr('ref.func', self.fbase + k), Instr('end')]
                                                 for k in range(self.nfuncs)],
                                       'active', self.t64, [Instr('i64.const', 0), Instr('end')]))
        if self.chain is not None and self.chain.slot is not None:
            m.elems.append(syntax.Elem(FUNCREF, [[Instr('ref.func', self.chain.first), Instr('end')]],
                                       'active', self.tix[0], [Instr('i32.const', self.chain.slot),
                                                               Instr('end')]))
        for x in self.xmems:
            if x.imported:
                m.imports.append(syntax.Import(linked.PROVIDER, x.import_name, 'memory', x.type))
            else:
                m.mems.append(syntax.Mem(x.type))
            exports.append(syntax.Export(f'mem{x.index}', 'memory', x.index))


class Wasm3Func:
    """FuncGen's part for the 3.0 features: instructions on the extra
    memories (``do_xmem``) and tail calls (``do_tail``)."""

    def grow_xmems_first(self):
        for x in self.mg.xmems:
            if x.grown_first:
                self.emit(x.at + '.const', 1)
                self.emit('memory.grow', x.index)
                self.emit('drop')

    @staticmethod
    def memarg_of(x, align, offset, *lane):
        """A memarg (lane) immediate: the memory index only for memory >= 1."""
        return (align, offset, *lane) + ((x.index,) if x.index else ())

    def xaddress(self, x, width):
        """An address of ``x``'s type: mostly in bounds, now and then not."""
        c = self.c
        at = x.at
        ls = self.locals_of(I32)
        risky = 1 if self.mg.risky or not x.usable else 0
        how = c.weighted([(60, 'low'), (10 if ls else 0, 'masked'), (10, 'page'), (20, 'tail'),
                          (risky, 'edge'), (risky, 'any')])
        if how == 'low':
            self.emit(at + '.const', c.integers(0, 64))
        elif how == 'tail':
            self.emit('memory.size', x.index)
            self.emit(at + '.const', 16)
            self.emit(at + '.shl')
            self.emit(at + '.const', c.integers(width, CHUNK_BYTES))
            self.emit(at + '.sub')
        elif how == 'masked':
            self.emit('local.get', c.choice(ls))
            self.emit('i32.const', 0xFFF)
            self.emit('i32.and')
            if at == I64:
                self.emit('i64.extend_i32_u')
        elif how == 'page':
            self.emit(at + '.const', c.integers(0, PAGE - width))
        elif how == 'edge':
            self.emit(at + '.const', PAGE - width + c.integers(1, width))
        else:
            self.value(at, 2)

    def xlength(self, at):
        c = self.c
        self.emit(at + '.const', c.weighted([(20, c.integers(0, 64)),
                                             (1 if self.mg.risky else 0, c.integers(8 * PAGE, 0xFFFFFFFF))]))

    def do_xmem(self, st, _):
        c = self.c
        mg = self.mg
        x = c.choice(mg.xmems)
        what = c.weighted([(5, 'load'), (5, 'store'), (2, 'size'), (2, 'grow'), (2, 'fill'),
                           (3, 'copy'), (2, 'init'), (2 if mg.simd else 0, 'lane')])
        if what not in ('size', 'grow') and not x.usable and not mg.risky:
            what = c.choice(('size', 'grow'))       # its accesses would trap
        if what == 'load':
            op = c.choice(mg.load_ops)
            self.xaddress(x, op.width)
            self.emit(op.name, self.memarg_of(x, *self.memarg(op.width)))
            st.append(op.sig[1][0])
        elif what == 'store':
            op = c.choice(mg.store_ops)
            self.xaddress(x, op.width)
            self.value(op.sig[0][1])
            self.emit(op.name, self.memarg_of(x, *self.memarg(op.width)))
        elif what == 'size':
            self.emit('memory.size', x.index)
            st.append(x.at)
        elif what == 'grow':
            if c.integers(0, 7):
                self.emit(x.at + '.const', c.integers(0, 2))
            else:
                self.value(x.at)
            self.emit('memory.grow', x.index)
            st.append(x.at)
        elif what == 'fill':
            self.xaddress(x, 1)
            self.value(I32)
            self.xlength(x.at)
            self.emit('memory.fill', x.index)
        elif what == 'copy':
            # between two memories (either way round), or within one
            others = mg.xmems + ([XMem(0, syntax.MemType(mg.mem_limits), False)] if mg.has_memory else [])
            y = c.choice(others)
            dst, src = (x, y) if c.boolean() else (y, x)
            self.xaddress(dst, 1)
            self.xaddress(src, 1)
            self.xlength(I64 if dst.at == src.at == I64 else I32)
            self.emit('memory.copy', (dst.index, src.index))
        elif what == 'init':
            seg = mg.passive_data if mg.has_memory else mg.xpassive
            size = len(mg.datas[seg].init)
            src = c.integers(0, size)
            n = c.integers(0, size - src)
            self.xaddress(x, 1)
            self.emit('i32.const', src)
            self.emit('i32.const', n)
            self.emit('memory.init', (seg, x.index) if x.index else seg)
        else:
            op = c.choice(LANE_LOADS + LANE_STORES)
            self.xaddress(x, op.width)
            self.value(V128)
            align, offset = self.memarg(op.width)
            self.emit(op.name, self.memarg_of(x, align, offset, c.integers(0, 16 // op.width - 1)))
            if op.sig[1]:
                st.append(V128)

    def do_tail(self, st, _):
        """A tail call: into the chain, to a later function with this one's
        results (directly or through table 0), or a guarded self tail call."""
        c = self.c
        mg = self.mg
        room = BUDGET - self.cost
        ch = mg.chain
        later = [j for j in range(self.idx + 1, mg.nfuncs)
                 if mg.sigs[j].results == self.ft.results and self.mult * mg.costs[j] <= room]
        callable_ = [j for j in range(self.idx + 1, mg.nfuncs) if self.mult * mg.costs[j] <= room]
        options = [(4 if ch and self.mult * ch.cost <= room else 0, 'chain'),
                   (3 if later else 0, 'later'), (2 if later else 0, 'indirect'),
                   (2 if self.mult == 1 and not self.self_called else 0, 'self'),
                   (2 if mg.t64 is not None and callable_ else 0, 'call64')]
        if not any(w for w, _ in options):
            return self.do_push(st, _)
        how = c.weighted(options)
        if how == 'chain':
            ft = ch.sigs[0]
            self.operands(st, ft.params)
            self.cost += self.mult * ch.cost
            indirect = ch.slot is not None and c.boolean()
            if indirect:
                self.emit('i32.const', ch.slot)
            if ft.results == self.ft.results and c.integers(0, 2):
                if indirect:
                    self.emit('return_call_indirect', (mg.type_index(ft), mg.tix[0]))
                else:
                    self.emit('return_call', ch.first)
                return STOP
            # a caller below the replaced frames
            if indirect:
                self.emit('call_indirect', (mg.type_index(ft), mg.tix[0]))
            else:
                self.emit('call', ch.first)
            st.extend(ft.results)
            return None
        if how == 'self':
            return self.tail_self(st)
        if how == 'call64':             # a plain call through the 64-bit table
            j = c.choice(callable_)
            ft = mg.sigs[j]
            self.operands(st, ft.params)
            self.cost += self.mult * mg.costs[j]
            self.emit('i64.const', j)
            self.emit('call_indirect', (mg.type_index(ft), mg.t64))
            st.extend(ft.results)
            return None
        j = c.choice(later)
        ft = mg.sigs[j]
        self.operands(st, ft.params)
        self.cost += self.mult * mg.costs[j]
        if how == 'later':
            self.emit('return_call', mg.fbase + j)
        elif mg.t64 is not None and c.boolean():
            self.emit('i64.const', j)
            self.emit('return_call_indirect', (mg.type_index(ft), mg.t64))
        else:
            self.emit('i32.const', j)
            self.emit('return_call_indirect', (mg.type_index(ft), mg.tix[0]))
        return STOP

    def enter_chain(self):
        """Half of the entries with a tail chain run it first thing (a
        caller frame below the chain's replaced frames for most of a run)."""
        ch = self.mg.chain
        if ch is None or not self.c.boolean():
            return
        for t in ch.sigs[0].params:
            self.emit(*self.mg.const_instr(t))
        self.emit('call', ch.first)
        self.cost += ch.cost
        for t in reversed(ch.results):
            self.sink(t)

    def tail_self(self, st):
        """``if depth < LIMIT { depth += 1; return_call self }``: the depth
        global only grows, so at most RECURSION_LIMIT of them run at all."""
        d = self.mg.depth_global
        self.self_called = True
        self.emit('global.get', d)
        self.emit('i32.const', RECURSION_LIMIT)
        self.emit('i32.lt_u')
        self.emit('if', None)
        self.labels.append(('if', (), None))
        self.emit('global.get', d)
        self.emit('i32.const', 1)
        self.emit('i32.add')
        self.emit('global.set', d)
        for t in self.ft.params:
            self.value(t)
        if self.c.boolean():        # through its own slot of table 0
            self.emit('i32.const', self.idx)
            self.emit('return_call_indirect', (self.mg.type_index(self.ft), self.mg.tix[0]))
        else:
            self.emit('return_call', self.mg.fbase + self.idx)
        self.labels.pop()
        self.emit('end')
        return None


# ---------------------------------------------------------------- module


class ModuleGen(Wasm3Module, gen3.ModuleFeatures3):
    """Builds one module; function bodies are made by ``FuncGen``."""

    def __init__(self, c, canonicalize_nans=True, features=FEATURES):
        unknown = set(features) - KNOWN_FEATURES
        if unknown:
            raise ValueError(f'unknown generator features {sorted(unknown)}; known: {sorted(KNOWN_FEATURES)}')
        self.c = c
        self.canon = canonicalize_nans
        self.simd = 'simd' in features
        self.refs = 'reference-types' in features
        self.init3(features)
        (self.pure_ops, self.ops_by_params, self.ops_by_result, self.load_ops, self.store_ops,
         self.loads_by_result) = _op_pools(features)
        self.types = []
        self.type_ids = {}
        self.wasm3 = frozenset(features) & WASM3_FEATURES
        self.xmems, self.chain, self.t64 = [], None, None      # (ModuleGen.plan_wasm3)

    def type_index(self, ft):
        idx = self.type_ids.get(ft)
        if idx is None:
            idx = self.type_ids[ft] = len(self.types)
            self.types.append(ft)
        return idx

    def valtype(self, allow_refs=True):
        pairs = [(6, I32), (4, I64), (3, F32), (3, F64)]
        if self.simd:
            pairs.append((3, V128))
        if allow_refs and self.refs:
            pairs += [(1, FUNCREF), (1, EXTERNREF)]
        return self.c.weighted(pairs)

    def const_value(self, t):
        """A bit pattern, mostly one of the edge cases of the type."""
        c = self.c
        if t == V128:
            kind = c.integers(0, 3)
            if kind == 0:
                return c.integers(0, (1 << 128) - 1)
            if kind == 1:
                shape = c.choice((I32, I64, F32, F64))
                return _splat(self.const_value(shape), BITS[shape])
            shape = c.choice((I64, F64))
            return self.const_value(shape) | (self.const_value(shape) << 64)
        if c.integers(0, 3):
            return c.choice(INTERESTING[t])
        return c.integers(0, (1 << BITS[t]) - 1)

    def const_instr(self, t):
        if t in REF_CONST:
            if t == FUNCREF and self.nfuncs and self.c.boolean():
                return ('ref.func', self.fbase + self.c.integers(0, self.nfuncs - 1))
            return ('ref.null', t)
        return (t + '.const', self.const_value(t))

    def arg_value(self, t):
        if t == FUNCREF:
            return None
        if t == EXTERNREF:
            # host references are any 32-bit value but the null cell (0xFFFFFFFF),
            # often beyond the module's function count
            c = self.c
            if not c.integers(0, 3):
                return None
            return syntax.ExternRef(c.integers(0, 3) if c.boolean() else c.integers(4, 0xFFFFFFFE))
        return self.const_value(t)

    def build(self):
        c = self.c
        n = self.nfuncs = c.integers(1, MAX_FUNCS)
        # a third of the modules also use out-of-bounds addresses, lengths and
        # indices now and then; the rest trap only through their arithmetic,
        # unreachable and call_indirect, so that most runs go a long way
        self.risky = c.integers(0, 2) == 2
        self.sigs = []
        for i in range(n):
            params = tuple(self.valtype() for _ in range(c.integers(0, 3)))
            results = tuple(self.valtype() for _ in range(c.integers(0, 3)))
            self.sigs.append(FuncType(params, results))
        self.choices3()
        # a quarter of the modules import functions, mutable globals, the
        # scratch table and the memory from a second instance (fuzz.linked)
        self.linked = self.refs and c.integers(0, 3) == 3
        # an eighth of the others have no memory (and so no data segments):
        # image sets and neutral.json without memory.img / pages
        self.has_memory = self.linked or c.integers(0, 7) > 0
        # imported functions first: the provider's, then the host's
        self.fbase = len(PROVIDER_FUNCS) + len(linked.HOST_FUNCS) if self.linked else 0
        self.tix = (1, 0) if self.linked else (0, 1)   # (call_indirect table, scratch table) indices
        # globals: imported ones first, user ones of every type, then the recursion depth counter
        self.globals = []
        if self.linked:
            for t in PROVIDER_GLOBALS:
                self.globals.append((t, True, None))
        # the provider's global holding a function the module does not import
        # (ModuleGen.links): no drawn code reads it (``FuncGen.globals_of``)
        self.link_global = len(self.globals) if self.linked else None
        if self.linked:
            self.globals.append((FUNCREF, True, None))
        self.nimported_globals = len(self.globals)
        for _ in range(c.integers(0, 6)):
            t = self.valtype()
            self.globals.append((t, c.integers(0, 2) > 0, self.const_instr(t)))
        self.exception_globals()
        self.depth_global = len(self.globals)
        self.globals.append((I32, True, ('i32.const', 0)))
        # memory with small bounds so memory.grow stays cheap and deterministic
        mem_min = c.integers(1, 2)
        self.mem_limits = syntax.Limits(mem_min, mem_min + c.integers(0, 2))
        # table 0: funcref, slot k holds function k, never written (call_indirect only)
        self.table0_size = n + c.integers(0, 3)
        # table 1: the scratch table for table.* instructions
        # (absent without reference types: one table only)
        if self.refs:
            self.t1_type = c.choice((FUNCREF, EXTERNREF))
            t1_min = c.integers(1, 4)
            self.t1_limits = syntax.Limits(t1_min, t1_min + c.integers(0, 4))
            self.passive_elem = [self.const_instr(self.t1_type) for _ in range(c.integers(0, 4))]
            # the host is the only source of non-null externrefs: with an
            # externref scratch table the entry often takes one, so tables,
            # globals and frames hold host references at checkpoints
            entry = self.sigs[0]
            if self.t1_type == EXTERNREF and EXTERNREF not in entry.params and len(entry.params) < 4 \
                    and c.boolean():
                self.sigs[0] = FuncType(entry.params + (EXTERNREF,), entry.results)
        self.datas = []
        for _ in range(c.integers(0, 2) if self.has_memory else 0):
            off = c.integers(0, 128)
            self.datas.append(syntax.Data(bytes(c.integers(0, 255) for _ in range(c.integers(0, 16))),
                                          'active', 0, [Instr('i32.const', off), Instr('end')]))
        self.passive_data = len(self.datas)
        if self.has_memory:
            self.datas.append(syntax.Data(bytes(c.integers(0, 255) for _ in range(c.integers(0, 16))),
                                          'passive'))
        # memory edges: the first function often grows the memory at once,
        # so stores near the end of memory land in grown pages, and drops the
        # passive segment, so later memory.init sees it dropped
        self.grow_first = self.has_memory and c.boolean()
        # ... and grow the scratch table by one too, so image sets often
        # hold a table beyond its declared minimum
        self.grow_table_first = self.refs and self.grow_first
        self.drop_first = self.has_memory and c.integers(0, 3) == 3
        # ... and half of those end by probing it (memory.init of one byte
        # traps exactly when the segment is dropped), so a lost drop shows
        self.probe_drop = self.drop_first and c.boolean()
        self.plan_wasm3()
        # bodies from the last function down, so callee costs are known
        self.costs = [0] * n
        bodies = [None] * n
        for i in reversed(range(n)):
            fg = FuncGen(self, i)
            bodies[i] = fg.generate()
            self.costs[i] = fg.total_cost()
        return self.assemble(bodies)

    def assemble(self, bodies):
        c = self.c
        m = syntax.Module()
        funcs = []
        for i, (locals_, code) in enumerate(bodies):
            funcs.append(syntax.Func(self.type_index(self.sigs[i]), locals_,
                                     [Instr(op, imm) for op, imm in code]))
        funcs += self.chain_funcs()
        m.funcs = funcs
        t0 = syntax.Table(syntax.TableType(syntax.Limits(self.table0_size), FUNCREF))
        t1 = syntax.TableType(self.t1_limits, self.t1_type) if self.refs else None
        if self.linked:
            m.imports = ([syntax.Import(linked.PROVIDER, name, 'func', self.type_index(ft))
                          for name, ft in PROVIDER_FUNCS]
                         + [syntax.Import(linked.HOST, name, 'func', self.type_index(FuncType(p, r)))
                            for name, p, r, _ in linked.HOST_FUNCS]
                         + [syntax.Import(linked.PROVIDER, f'pg{k}', 'global', syntax.GlobalType(True, t))
                            for k, t in enumerate(PROVIDER_GLOBALS)]
                         + [syntax.Import(linked.PROVIDER, LINK_GLOBAL, 'global',
                                          syntax.GlobalType(True, self.link_type()))]
                         + [syntax.Import(linked.PROVIDER, 'ptable', 'table', t1),
                            syntax.Import(linked.PROVIDER, 'pmem', 'memory', syntax.MemType(self.mem_limits))])
            m.tables = [t0]
        else:
            m.tables = [t0, syntax.Table(t1)] if self.refs else [t0]
            m.mems = [syntax.Mem(syntax.MemType(self.mem_limits))] if self.has_memory else []
        m.globals = [syntax.Global(syntax.GlobalType(mut, t), [Instr(*init), Instr('end')])
                     for t, mut, init in self.globals[self.nimported_globals:]]
        m.elems = [
            syntax.Elem(FUNCREF, [[Instr('ref.func', self.fbase + k), Instr('end')]
                                  for k in range(self.nfuncs)],
                        'active', self.tix[0], [Instr('i32.const', 0), Instr('end')]),
        ]
        if self.refs:
            m.elems.append(syntax.Elem(self.t1_type, [[Instr(*e), Instr('end')]
                                                      for e in self.passive_elem], 'passive'))
        self.assemble3(m)
        m.datas = self.datas
        m.datacount = len(self.datas)
        exports = [syntax.Export('run', 'func', self.fbase)]
        if self.linked:             # the host's functions, re-exported (oracle.host_entries)
            exports += [syntax.Export(f'host_{name}', 'func', len(PROVIDER_FUNCS) + k)
                        for k, (name, _, _, _) in enumerate(linked.HOST_FUNCS)]
        exports += [syntax.Export(f'f{i}', 'func', self.fbase + i) for i in range(1, self.nfuncs)]
        if self.has_memory:
            exports.append(syntax.Export('mem', 'memory', 0))
        self.assemble_wasm3(m, exports)
        self.assemble3_tables(m)
        exports.append(syntax.Export('table0', 'table', self.tix[0]))
        if self.refs:
            exports.append(syntax.Export('table1', 'table', self.tix[1]))
        ginfo = []
        for gi, (t, mut, _) in enumerate(self.globals):
            if not self.exported_global(t) or gi == self.link_global:
                continue
            exports.append(syntax.Export(f'g{gi}', 'global', gi))
            ginfo.append((f'g{gi}', t, mut))
        m.exports = exports
        m.types = self.types
        entry = self.sigs[0]
        args = [tuple(self.arg_value(t) for t in entry.params) for _ in range(c.integers(1, 3))]
        stops = self.dive(funcs)        # drawn last: a seed keeps the rest of its module
        dived = bool(stops)
        provider = self.provider() if self.linked else None
        stops = self.nest_arms(stops)   # newer still: after the provider's choices
        stops = self.dive_variants(m, stops)        # drawn after all of the above
        self.crowd(m)                               # drawn last of all
        self.assemble_host_tag(m)
        stops = self.links(m, stops)                # newer than everything above
        stops = self.gc_floats(m, stops)            # after the host tag's type and the links (fuzz.gen3)
        stops = self.reach(m, stops)                # after the float fields
        self.null_gc(m)                             # a GC type, no GC (fuzz.gen3)
        stops = self.gc_wide(m, stops)              # a wide struct (fuzz.gen3)
        stops = self.deep_catch(m, stops)           # a wide exception (fuzz.gen3)
        self.imported_any(m, provider)              # an imported anyref (fuzz.gen3)
        stops = self.bare_i31(m, stops)             # an i31 in code only (fuzz.gen3)
        self.far_entry(m, provider)                 # newest: defined functions past 256 (fuzz.gen3)
        wasm = encode.encode_module(m)
        if provider is not None:
            wasm = linked.attach(wasm, encode.encode_module(provider))
        return GeneratedModule(wasm, m, 'run', entry.params, entry.results, args, ginfo,
                               'mem' if self.has_memory else None, stops,
                               dive=stops[0] if dived else None)

    def dive(self, funcs):
        """A quarter of the modules *dive*: right after its straight-line
        prologue the entry calls a chain of 2-4 distinct functions, each
        with its own signature and an operand of its own under the call,
        whose last calls a recursion ``r(depth)`` (one frame per level, an
        operand a taken ``br_if`` discards at the bottom).  Depth is mostly
        0-4, an eighth of the time 258-270 frames: frame indices beyond
        CPython's cached small integers, so an ``is`` taken for ``==`` shows.
        Everything up to the bottom runs straight through, so the count at
        which the bottom's ``br_if`` has just been taken is known here (the
        same in both models: no loop, no ``if``): it is returned as the
        module's stop, where the oracle checkpoints every frame at once
        (random points rarely land four and more frames deep).  Appends the
        functions to ``funcs`` and the call to ``funcs[0]``."""
        c = self.c
        self.catcher_arm = None         # (tags, body, pos) for nest_arms
        self.dive_entry = self.dive_shift = 0
        if c.integers(0, 3):
            return ()
        k = c.integers(2, 4)
        depth = c.integers(258, 270) if not c.integers(0, 7) else c.integers(0, 4)
        first = self.fbase + len(funcs)             # e_0 .. e_{k-1}, then r
        sigs = [FuncType(tuple(self.valtype() for _ in range(c.integers(0, 3))),
                         tuple(self.valtype() for _ in range(c.integers(0, 1)))) for _ in range(k)]
        rec = first + k
        self.dive_span = (first, k)                 # (ModuleGen.dive_variants)

        def call(j, ft):
            return [self.const_instr(t) for t in ft.params] + [('call', j)]

        def tail(ft, results):
            return [('drop', None) for _ in ft.results] + [('drop', None)] + \
                [self.const_instr(t) for t in results] + [('end', None)]
        # in a module with the legacy exception forms, half the time the
        # chain's last function calls the recursion from a catch arm
        # (dive_catcher), the recursion's bottom throws after the stop, and
        # the function before catches that in a try around its call: an
        # exception crossing every recursion frame and an open arm
        tags = [t for t, ps in enumerate(getattr(self, 'tags', ())) if all(p in ALL_TYPES for p in ps)]
        catcher = getattr(self, 'legacy', False) and tags and c.boolean()
        tag = max(tags, key=lambda t: (len(self.tags[t]), t)) if catcher else None
        steps = 0
        for j, ft in enumerate(sigs):
            junk = self.const_instr(self.valtype())
            if catcher and j == k - 2:
                callee = sigs[j + 1]
                head = [junk, ('try', None)] + call(first + j + 1, callee)
                body = head + [('drop', None) for _ in callee.results] + \
                    [('catch_all', None), ('end', None), ('drop', None)] + \
                    [self.const_instr(t) for t in ft.results] + [('end', None)]
            elif j + 1 < k:
                head = [junk] + call(first + j + 1, sigs[j + 1])
                body = head + tail(sigs[j + 1], ft.results)
            elif catcher:
                head, rest = self.dive_catcher(c, tag, depth, rec)
                body = [junk] + head + rest + [('drop', None)] + \
                    [self.const_instr(t) for t in ft.results] + [('end', None)]
                steps += len(head)      # the throw lands past the catch, which is not executed
                arm_at = (len(funcs), len(head) - 1)    # the function, its `i32.const depth`
                head = []
            else:
                head = [junk, ('i32.const', depth), ('call', rec)]
                body = head + [('drop', None)] + [self.const_instr(t) for t in ft.results] + [('end', None)]
            steps += len(head)
            funcs.append(syntax.Func(self.type_index(ft), [self.valtype() for _ in range(c.integers(0, 2))],
                                     [Instr(op, imm) for op, imm in body]))
        level = [('block', None), self.const_instr(self.valtype()), ('local.get', 0), ('i32.eqz', None),
                 ('br_if', 0), ('drop', None), ('local.get', 0), ('i32.const', 1), ('i32.sub', None),
                 ('call', rec), ('end', None), ('end', None)]
        if catcher:         # the bottom throws after the stop, past the arm, to the try before it
            level[-1:] = [self.const_instr(t) for t in self.tags[tag]] + [('throw', tag), ('end', None)]
        funcs.append(syntax.Func(self.type_index(FuncType((I32,), ())),
                                 [self.valtype() for _ in range(c.integers(0, 2))],
                                 [Instr(op, imm) for op, imm in level]))
        # into the entry, after its prologue (straight-line: each instruction runs once)
        at = self.prologue
        enter = call(first, sigs[0])
        code = enter + [('drop', None) for _ in sigs[0].results]
        funcs[0].body[at:at] = [Instr(op, imm) for op, imm in code]
        steps += at + len(enter)
        if catcher:
            self.catcher_arm = (tags, funcs[arm_at[0]].body, arm_at[1])
        self.dive_entry = len(code)         # the entry's instructions of the dive (ModuleGen.links)
        return (steps + 10 * depth + 5,)

    def nest_arms(self, stops):
        """Most catcher dives nest 1-3 more legacy tries in the arm, each
        thrown into at once and caught (``catch`` of the thrown tag or
        ``catch_all``), the recursion called from the innermost arm: at the
        dive's stop the frame holds 2-4 open arms, each with its own caught
        exception (fields drawn anew) and a ``catch`` arm's fields under
        the next try.  The WAMR model keys a caught exception by (frame,
        arm depth), so a wrong depth shows at the stop's checkpoint (and
        only from three open arms on do ``d - 1`` and ``d >> 1`` differ).
        Drawn after every older choice of the module (the provider's too):
        a seed keeps the rest of it.  The tries go into the catcher before
        its call's ``i32.const``, the arms' ends after the call; the stop
        moves by the instructions that run before the call (each once, the
        arm instructions not: a throw caught in its own frame lands past
        them, alike in both models)."""
        if self.catcher_arm is None:
            return stops
        c = self.c
        tags, body, pos = self.catcher_arm
        n = c.weighted([(1, 0), (1, 1), (2, 2), (2, 3)])
        head, rest = [], []
        for _ in range(n):
            tag = c.choice(tags)
            arm = c.choice(('catch', 'catch_all'))
            head += [('try', None)] + [self.const_instr(t) for t in self.tags[tag]] + \
                [('throw', tag), (arm, tag if arm == 'catch' else None)]
            rest[:0] = [('drop', None) for _ in (self.tags[tag] if arm == 'catch' else ())] + [('end', None)]
        body[pos + 2:pos + 2] = [Instr(op, imm) for op, imm in rest]
        body[pos:pos] = [Instr(op, imm) for op, imm in head]
        return (stops[0] + len(head) - n,)

    def dive_catcher(self, c, tag, depth, rec):
        """The dive's call of its recursion from a legacy ``catch``/
        ``catch_all`` arm, the ``try`` two or three blocks deep (an operand
        under each inner block), taking
        parameters still on the stack when its body throws ``tag`` (the
        unwinding discards them down to the try's label; a ``catch`` arm
        holds the fields under the call): at the dive's stop that frame is
        several frames down in an open arm (neutral.json's ``caught``,
        exception.img).  (head, rest): the instructions up to the call,
        then the rest to the blocks' end."""
        nblocks = c.integers(2, 3)
        arm = c.choice(('catch', 'catch_all'))
        fields = list(self.tags[tag]) if arm == 'catch' else []
        params = tuple(self.valtype() for _ in range(c.integers(1, 2)))
        # an operand under each inner block: the labels at different heights
        blocks = [('block', None)]
        for _ in range(nblocks - 1):
            blocks += [self.const_instr(self.valtype()), ('block', None)]
        head = blocks + [self.const_instr(t) for t in params] + \
            [('try', self.type_index(FuncType(params, ())))] + \
            [self.const_instr(t) for t in self.tags[tag]] + [('throw', tag)] + \
            [(arm, tag if arm == 'catch' else None), ('i32.const', depth), ('call', rec)]
        rest = [('drop', None) for _ in fields] + [('end', None)] + \
            [('end', None), ('drop', None)] * (nblocks - 1) + [('end', None)]
        return head, rest

    def dive_variants(self, m, stops):
        """Three variations of a dive (``dive``), drawn after every other
        choice (a seed keeps the rest of its module), in modules with
        reference types (the forks' modules, made without, stay as they
        were).  Returns the stops, moved by the instructions added.

        * **indirect calls**: each call of the chain (the entry's into it,
          each function's into the next, the last one's into the
          recursion) is half the time a ``call_indirect`` through a table
          of its own (after the others) or, with typed references, a
          ``call_ref`` of a ``ref.func``.  The function so called is
          declared with a *twin* of the type the call names: a second,
          structurally equal entry of the type section (the call's check
          is structural; one-type rec groups are equivalent in 3.0), so at
          the stop the frame above the caller runs a function whose
          declared type is another entry than the call's.
        * **late non-nullable locals**: with typed references, half the
          chain's functions and the recursion get a ``(ref $t)`` local set
          only after their call: at the stop every such frame holds it
          unset (null), in a linked module in functions after the imports.
        * **wide**: in a module without tail calls (where a frame's callee
          must be the very function a ``call`` names) seven times in eight,
          else a quarter of the time, empty functions come before the
          dive's, so many that its first one has index 257-264: every frame
          above the entry, and every function its chain calls, has an index
          beyond CPython's cached small integers (a module of more than 256
          functions)."""
        if not stops or not self.refs:
            return stops
        c = self.c
        first, k = self.dive_span
        funcs = m.funcs
        dive = funcs[first - self.fbase:]          # e_0 .. e_{k-1}, then r
        typed = self.typed and self.use3
        # the k + 1 calls of the chain: caller, callee
        calls = [(funcs[0], first)] + [(dive[j], first + j + 1) for j in range(k)]
        forms = [c.weighted([(2, 'call'), (1, 'call_indirect'), (1 if typed else 0, 'call_ref')])
                 for _ in calls]
        late = [self.fbase + c.integers(0, self.nfuncs - 1) if typed and c.boolean() else None
                for _ in dive]
        tails = any(ins.op.startswith('return_call') for f in funcs for ins in f.body)
        shift = 257 - first + c.integers(0, 7) if c.integers(0, 7) > (5 if tails else 0) else 0
        self.dive_shift = shift             # (ModuleGen.links)

        def site(body, callee):
            return next(p for p, ins in enumerate(body) if ins.op == 'call' and ins.imm == callee)
        for j, (f, g) in enumerate(zip(dive, late)):      # after the function's own call
            if g is not None:
                x = len(self.types[f.typeidx].params) + len(f.locals)
                f.locals.append(syntax.RefType(False, funcs[g - self.fbase].typeidx))
                p = site(f.body, first + min(j + 1, k)) + 1
                f.body[p:p] = [Instr('ref.func', g), Instr('local.set', x)]
        table = len(m.imported('table')) + len(m.tables)
        slots, refs, twins = [], [], {}
        for (f, callee), form in zip(calls, forms):
            if form == 'call':
                continue
            g = funcs[callee - self.fbase]
            named = g.typeidx
            if named not in twins:
                ft = self.types[named]
                twins[named] = len(self.types)
                self.types.append(FuncType(ft.params, ft.results))
            g.typeidx = twins[named]
            p = site(f.body, callee)
            if f is funcs[0]:
                self.dive_entry += 1        # the entry's call became two instructions
            if form == 'call_indirect':
                f.body[p:p + 1] = [Instr('i32.const', len(slots)), Instr('call_indirect', (named, table))]
                slots.append(callee)
            else:
                f.body[p:p + 1] = [Instr('ref.func', callee), Instr('call_ref', named)]
                refs.append(callee)
        funcs[first - self.fbase:first - self.fbase] = [
            syntax.Func(self.type_index(FuncType((), ())), [], [Instr('end')]) for _ in range(shift)]
        for f in [funcs[0]] + dive:
            f.body = [Instr(ins.op, ins.imm + shift) if ins.op in ('call', 'ref.func') and ins.imm >= first
                      else ins for ins in f.body]

        def elem(xs, mode, *where):
            return syntax.Elem(FUNCREF, [[Instr('ref.func', x + shift), Instr('end')] for x in xs],
                               mode, *where)
        if slots:
            m.tables.append(syntax.Table(syntax.TableType(syntax.Limits(len(slots), len(slots)), FUNCREF)))
            m.elems.append(elem(slots, 'active', table, [Instr('i32.const', 0), Instr('end')]))
        if refs:
            m.elems.append(elem(refs, 'declarative'))
        return (stops[0] + len(slots) + len(refs),)

    def crowd(self, m):
        """About one in 16 of the modules with reference types is *crowded*
        (drawn after every other choice, so a seed keeps the rest of its
        module; the forks' modules, made without reference types, stay as
        they were): shapes past CPython's cached small integers (256) and
        orders nothing else makes, each a blind spot of the mutation run
        (docs/mutation-testing.md), all with counts or names that an
        ``is`` taken for ``==`` or an ordering test taken for equality
        would get wrong:

        * the entry gets 257-264 more locals (its frame, live at every
          checkpoint, holds 257 or more values, and more cells);
        * 257-264 more globals (image sets and neutral.json list 257 or
          more globals);
        * with typed references, a global of type ``(ref null $t')``
          holding a function declared with type ``$t``, where ``$t'`` is a
          twin (structurally equal, distinct) entry of ``$t``: a typed
          slot whose function's type is another entry than the slot's;
        * the entry ``run`` exported last, after exports whose names sort
          after it (``table0``, and ``zz`` for another function)."""
        c = self.c
        if not self.refs or c.integers(0, 15) != 15:      # not when a fuzzer's bytes ran out
            return
        palette = [self.valtype() for _ in range(c.integers(1, 3))]
        m.funcs[0].locals += [palette[j % len(palette)] for j in range(c.integers(257, 264))]
        ginit = {t: self.const_instr(t) for t in palette}
        m.globals += [syntax.Global(syntax.GlobalType(j % 2 == 0, palette[j % len(palette)]),
                                    [Instr(*ginit[palette[j % len(palette)]]), Instr('end')])
                      for j in range(c.integers(257, 264))]
        if self.typed and self.use3:
            g = self.fbase + c.integers(0, self.nfuncs - 1)
            ft = self.types[m.funcs[g - self.fbase].typeidx]
            self.types.append(FuncType(ft.params, ft.results))         # the twin
            m.globals.append(syntax.Global(
                syntax.GlobalType(True, syntax.RefType(True, len(self.types) - 1)),
                [Instr('ref.func', g), Instr('end')]))
        run = next(e for e in m.exports if e.name == 'run')
        m.exports.remove(run)
        if self.nfuncs > 1:
            m.exports.append(syntax.Export('zz', 'func', self.fbase + self.nfuncs - 1))
        m.exports.append(run)

    def provider(self):
        """The second instance's module (encoded by ``assemble``): a private
        helper function (so that the main module's function addresses are
        not its indices), the exported functions of PROVIDER_FUNCS, which
        read and write only the state the main module imports (its globals,
        table and memory: after a restore nothing else of the provider is
        restored), and an element segment putting those functions into the
        shared table.  Since 2026-12-02 (no draw: a seed keeps its module's
        choices) also functions it hands out without exporting them, for
        the main module to hold as *links* (``links``): the helper in the
        funcref global ``LINK_GLOBAL`` and a second private function
        (``PRIVATE_FUNCS``, of the helper's type) in the shared table's
        last initial slot.  Since 2026-12-03 (no draw) it exports the
        helper as ``linked.SHARED`` for the relay instance to import, so a
        link to it has two peers to name (fuzz.linked)."""
        c = self.c
        k = c.integers(1, 0xFFFF)
        m = syntax.Module()
        m.types = [FuncType((I32,), (I32,)), FuncType((), ())]
        mix = [('local.get', 0), ('i32.const', k), ('i32.mul',), ('i32.const', 13), ('i32.rotl',)]
        g = [('local.get', 0), ('global.get', 0), ('i32.add',), ('global.set', 0),
             ('i32.const', c.integers(0, 4096)), ('local.get', 0), ('i32.store', (2, 0)),
             ('global.get', 0), ('call', 0)]
        tail = [('memory.size', 0), ('i32.const', 16), ('i32.shl',), ('i32.const', c.integers(4, 4096)),
                ('i32.sub',), ('global.get', 0), ('i32.store', (0, 0))]
        grow = [('table.size', 0), ('local.get', 0), ('i32.add',)]
        # the second private function: pure, unlike any exported one of its type
        hidden = [('local.get', 0), ('i32.const', k ^ 0x5A5A), ('i32.xor',), ('i32.const', 7), ('i32.rotr',)]
        bodies = [(0, mix), (0, g), (1, tail), (0, grow), (0, hidden)]
        m.funcs = [syntax.Func(ti, [], [Instr(*ins) for ins in body] + [Instr('end')]) for ti, body in bodies]
        assert [m.types[ti] for ti, _ in bodies[1:1 + len(PROVIDER_FUNCS)]] == [ft for _, ft in PROVIDER_FUNCS]
        assert all(m.types[bodies[f][0]] == LINK_TYPE for f in PRIVATE_FUNCS)
        m.tables = [syntax.Table(syntax.TableType(self.t1_limits, self.t1_type))]
        m.mems = [syntax.Mem(syntax.MemType(self.mem_limits))] + [
            syntax.Mem(x.type) for x in self.xmems if x.imported]
        m.globals = [syntax.Global(syntax.GlobalType(True, t), [Instr(*self.const_instr_plain(t)), Instr('end')])
                     for t in PROVIDER_GLOBALS]
        m.globals.append(syntax.Global(syntax.GlobalType(True, self.link_type(0)),
                                       [Instr('ref.func', PRIVATE_FUNCS[0]), Instr('end')]))
        if self.t1_type == FUNCREF:
            n = min(self.t1_limits.min, len(PROVIDER_FUNCS))
            slots = [1 + (i % len(PROVIDER_FUNCS)) for i in range(n)]
            slots[self.t1_limits.min - 1:] = [PRIVATE_FUNCS[1]]      # the last initial slot
            m.elems = [syntax.Elem(FUNCREF, [[Instr('ref.func', f), Instr('end')] for f in slots],
                                   'active', 0, [Instr('i32.const', 0), Instr('end')])]
        m.exports = ([syntax.Export(name, 'func', 1 + i) for i, (name, _) in enumerate(PROVIDER_FUNCS)]
                     + [syntax.Export(f'pg{i}', 'global', i) for i in range(len(PROVIDER_GLOBALS))]
                     + [syntax.Export('ptable', 'table', 0), syntax.Export('pmem', 'memory', 0)]
                     + [syntax.Export(x.import_name, 'memory', k + 1)
                        for k, x in enumerate(x for x in self.xmems if x.imported)]
                     + [syntax.Export(LINK_GLOBAL, 'global', len(PROVIDER_GLOBALS)),
                        syntax.Export(linked.SHARED, 'func', PRIVATE_FUNCS[0])])
        return m

    def link_type(self, heap=None):
        """The type of the provider's ``LINK_GLOBAL``: ``(ref null $t)`` of
        ``LINK_TYPE`` in a module using typed references (``heap``: its
        index, the main module's own when None), else ``funcref``."""
        if not (self.typed and self.use3):
            return FUNCREF
        return syntax.RefType(True, self.type_index(LINK_TYPE) if heap is None else heap)

    def links(self, m, stops):
        """Links (2026-12-02; drawn after every other choice but the GC
        float fields', so a seed keeps the rest of its module): a linked module holds functions of
        the provider that it does not import, which a checkpoint saves as
        links to the provider instance (engine/migrate/links.py, link.img).
        The entry reads the provider's ``LINK_GLOBAL`` (and, with a funcref
        shared table, its slot holding the second private function) and
        keeps them, straight-line before the dive's call, in a funcref
        local, a table of its own (``call_indirect`` reaches them there),
        a funcref global of its own and its operand stack under the dive
        (set into the global after it); half the dive's chain functions
        hold the global's link under their call; functions after the entry
        (each half the time) and the entry after the dive call a link
        (``call_indirect`` through the own table, or with typed references
        ``call_ref`` on the global) and fold its result into an i32 global
        of their own, so a link resolved to the wrong function shows in
        the state; in a module using exceptions the entry, after its
        prologues, throws the link in an exception of a tag of its own
        (after the others) and keeps that in the exnref global and table.
        Returns the stops, moved by the instructions run before them."""
        if not self.linked:
            return stops
        c = self.c
        funcs, entry = m.funcs, m.funcs[0]
        lt = self.type_index(LINK_TYPE)
        nglob = len(m.imported('global'))
        own_g, acc = nglob + len(m.globals), nglob + len(m.globals) + 1
        m.globals += [syntax.Global(syntax.GlobalType(True, FUNCREF), [Instr('ref.null', FUNCREF), Instr('end')]),
                      syntax.Global(syntax.GlobalType(True, I32), [Instr('i32.const', 0), Instr('end')])]
        table = len(m.imported('table')) + len(m.tables)
        m.tables.append(syntax.Table(syntax.TableType(syntax.Limits(2, 2), FUNCREF)))
        local = len(self.types[entry.typeidx].params) + len(entry.locals)
        entry.locals.append(FUNCREF)
        shared = self.t1_type == FUNCREF            # the shared table holds a private function
        slots = [0, 1] if shared else [0]
        g = self.link_global
        keep = [('global.get', g), ('local.set', local),
                ('i32.const', 0), ('global.get', g), ('table.set', table)]
        if shared:
            keep += [('i32.const', 1), ('i32.const', self.t1_limits.min - 1), ('table.get', 0),
                     ('table.set', table)]
        keep += [('global.get', g)]                 # under the dive's call
        typed = self.typed and self.use3

        def call():
            if typed and c.boolean():
                how = [('global.get', g), ('call_ref', lt)]
            else:
                how = [('i32.const', c.choice(slots)), ('call_indirect', (lt, table))]
            return [('global.get', acc), ('i32.const', self.const_value(I32))] + how + \
                [('i32.add', None), ('global.set', acc)]
        after = [('global.set', own_g)] + call()
        at = self.prologue
        body_at = self.body_at + self.dive_entry
        if self.exn_global is not None:
            # after the entry's caught exceptions: one of a tag of its own
            # carrying the link and the exception caught before, kept in
            # the exnref global and table (exception.img's funcref field)
            tag = len(m.tags)
            m.tags.append(syntax.Tag(self.type_index(FuncType((self.link_type(), gen3.EXNREF), ()))))
            throw = [('block', gen3.EXNREF), ('try_table', (None, ((gen3.CATCH_ALL_REF, None, 0),))),
                     ('global.get', g), ('global.get', self.exn_global), ('throw', tag), ('end', None),
                     ('unreachable', None), ('end', None), ('global.set', self.exn_global),
                     ('i32.const', 0), ('global.get', self.exn_global), ('table.set', self.exn_table())]
            entry.body[body_at:body_at] = [Instr(op, imm) for op, imm in throw]
        entry.body[at + self.dive_entry:at + self.dive_entry] = [Instr(op, imm) for op, imm in after]
        entry.body[at:at] = [Instr(op, imm) for op, imm in keep]
        moved = len(keep)
        for f in funcs[1:self.nfuncs]:
            if c.boolean():
                f.body[0:0] = [Instr(op, imm) for op, imm in call()]
        if stops:                                   # the chain: e_0 .. e_{k-1}
            first, k = self.dive_span
            at = first - self.fbase + self.dive_shift
            for f in funcs[at:at + k]:
                if c.boolean():
                    nres = len(self.types[f.typeidx].results)
                    f.body.insert(len(f.body) - 1 - nres, Instr('drop'))
                    f.body.insert(0, Instr('global.get', g))
                    moved += 1
            stops = tuple(s + moved for s in stops)
        return stops

    def reach(self, m, stops):
        """Kinds of state the drawn code reached too seldom (2026-12-02,
        docs/mutation-testing.md "The generator's early exits, null slots,
        growing arrays and quiet tries"), drawn after every other choice
        (``assemble`` calls it last), so a seed keeps the rest of its
        module; returns the stops, moved by the entry's added steps.

        Every module gets an i32 global of its own and an *early exit*
        (``early_exit``) first thing in the entry (always taken there) and
        in every other function (taken or not); a GC module also probes
        null table slots and keeps a growing array, a module with the
        legacy forms runs quiet tries (``gen3.ModuleGC.gc_reach``)."""
        g = len(m.imported('global')) + len(m.globals)
        m.globals.append(syntax.Global(syntax.GlobalType(True, I32), [Instr('i32.const', 0), Instr('end')]))
        code = [self.early_exit(g, k == 0) for k in range(self.nfuncs)]
        steps = len(code[0]) - 3            # taken (early_exit)
        steps += self.gc_reach(m, g, code)
        for f, body in zip(m.funcs, code):
            f.body[0:0] = [Instr(op, imm) for op, imm in body]
        return tuple(s + steps for s in stops)

    def early_exit(self, g, entry):
        """An early exit out of a block with temporaries still on the stack
        (what a compiler makes of ``return r if cond`` inside an
        expression): ``block (result i32)``, 1-2 values of any number type
        left below the result, a comparison of the global ``g`` with a
        constant (the compare-and-branch pair the interpreters fuse) and
        ``br_if 0``, which discards the temporaries; not taken, the result
        plus one leaves by ``br 0``.  The result goes into ``g``, so which
        way it went shows.  In the entry (``entry``: first thing, ``g``
        still 0) the branch is always taken, so the added code's count is
        known (its length less the three instructions skipped; both
        models count the block's ``end``); elsewhere it goes either way.  The
        temporaries a branch failed to cut would sit below every later
        label of the frame.  The block stands above an operand of its own
        (dropped after it; no draw): its label's height is 1, not the
        frame's base, where a wrong sum of base and height (``base |
        height``) or another label of height 0 would cut the same values.
        Outside the entry the drawn ``ge_u``/``gt_s`` compare ``g`` widened
        to i64 (two cells per operand: WAMR's wide compare-and-branch) inside
        three more blocks above the temporaries, which the branch leaves too
        (depth 3: a label found by a wrong sum of depth and stack top,
        ``-1 << depth``, is another, and so is one counted from the wrong
        end, ``labels[-1 + depth]``, the first inner block, whose height is
        the temporaries' top; not taken, the result plus one leaves the
        inner blocks by ``br 0`` and their ends, then the outer one by ``br
        0``, which drops the temporaries); the narrow ones with an odd
        constant inside one more (depth 1)."""
        c = self.c
        code = [('i32.const', 0x51), ('block', I32)]
        temps = [self.const_instr_plain(self.valtype(allow_refs=False))
                 for _ in range(c.integers(1, 2))]
        tail = [('i32.const', self.const_value(I32)), ('global.get', g)]
        depth, outside = 0, []      # blocks the branch leaves besides its own; temporaries outside them
        if entry:
            tail += c.choice(([('i32.const', c.integers(1, 7)), ('i32.lt_u', None)],
                              [('i32.const', c.integers(1, 7)), ('i32.ne', None)],
                              [('i32.const', 0), ('i32.eq', None)]))
        else:
            k = c.integers(0, 7)
            op = c.choice(('i32.lt_u', 'i32.ne', 'i32.eq', 'i32.ge_u', 'i32.gt_s'))
            if op in ('i32.ge_u', 'i32.gt_s'):
                tail += [('i64.extend_i32_u', None), ('i64.const', k), ('i64' + op[3:], None)]
                # three inner blocks above the temporaries (no draw)
                depth, outside, temps = WIDE_EXIT_DEPTH, temps, []
            else:
                tail += [('i32.const', k), (op, None)]
                # an odd k (no draw): one inner block, left too (depth 1: a
                # label counted from the wrong end, labels[-1 + depth], is
                # the function's, two blocks down)
                depth = k & 1
        code += outside + [('block', I32)] * depth + temps + tail
        code += [('br_if', depth), *EARLY_EXIT_TAIL] + \
            [('end', None)] * depth + [('br', 0)] * bool(outside) + \
            [('end', None), ('global.set', g), ('drop', None)]
        if not entry and c.integers(0, 1) == 0:
            code += self.fused_if_else(g)
        return code

    def fused_if_else(self, g):
        """(Half the non-entry functions, after the early exit.)  A
        comparison of ``g`` with a constant deciding an ``if (result i32)``
        (the compare-and-if the interpreters fuse) whose else arm leaves by
        ``br 0`` with its result: a branch from inside the else arm reads
        the label the fused if pushed when it jumped there, which only an
        arm branching out of itself shows; the result goes into ``g``."""
        c = self.c
        return [('global.get', g), ('i32.const', c.integers(0, 7)),
                (c.choice(('i32.lt_u', 'i32.ne', 'i32.ge_s')), None), ('if', I32),
                ('i32.const', self.const_value(I32)), ('else', None),
                ('i32.const', self.const_value(I32)), ('br', 0), ('end', None), ('global.set', g)]

    def const_instr_plain(self, t):
        return (t + '.const', self.const_value(t))


REF_CONST = (FUNCREF, EXTERNREF)
# what a linked module imports from its provider (fuzz.linked), in import order;
# the provider defines them after its private helper (and before a second
# private function), so no function address of the store is its index in
# the main module (one more for these, two more from the host's on)
PROVIDER_FUNCS = (('pf_global', FuncType((I32,), (I32,))), ('pf_tail', FuncType((), ())),
                  ('pf_table', FuncType((I32,), (I32,))))
PROVIDER_GLOBALS = (I32, I64, F64)
# the provider's functions the main module does not import, handed to it
# (ModuleGen.links): the helper in LINK_GLOBAL (exported only for the relay,
# fuzz.linked), one more, not exported, in the shared table
PRIVATE_FUNCS = (0, 1 + len(PROVIDER_FUNCS))
LINK_TYPE = FuncType((I32,), (I32,))
LINK_GLOBAL = 'pfunc'


# ---------------------------------------------------------------- functions


class FuncGen(Wasm3Func, gen3.FuncFeatures3):
    """Generates one function body while tracking the typed operand stack."""

    def __init__(self, mg, idx):
        self.mg = mg
        self.c = mg.c
        self.idx = idx
        self.ft = mg.sigs[idx]
        self.local_types = list(self.ft.params)
        self.declared = []
        self.user_locals = list(range(len(self.ft.params)))
        self.scratch = {}
        self.code = []
        self.labels = []        # (kind, label types, counter local or None), innermost last
        self.cost = 0
        self.mult = 1
        self.depth = 0
        self.self_called = False
        self.in_try = 0         # open try_table / legacy try bodies
        self.uncounted = 0      # code outside the budget (FuncFeatures3.host_exception)

    # ---- bookkeeping

    def total_cost(self):
        return self.cost * (RECURSION_LIMIT + 1) if self.self_called else self.cost

    def emit(self, op, imm=None):
        self.code.append((op, imm))
        self.cost += self.mult

    def new_local(self, t):
        self.local_types.append(t)
        self.declared.append(t)
        return len(self.local_types) - 1

    def scratch_local(self, purpose, t):
        key = (purpose, t)
        if key not in self.scratch:
            self.scratch[key] = self.new_local(t)
        return self.scratch[key]

    def locals_of(self, t):
        return [i for i in self.user_locals if self.local_types[i] == t]

    def globals_of(self, t, mutable=False):
        return [gi for gi, (gt, mut, _) in enumerate(self.mg.globals)
                if gt == t and gi not in (self.mg.depth_global, self.mg.link_global)
                and (mut or not mutable)]

    def exhausted(self):
        return self.cost > BUDGET or len(self.code) - self.uncounted > MAX_CODE

    # ---- body

    def generate(self):
        c = self.c
        for _ in range(c.integers(0, 4)):
            t = self.mg.valtype()
            self.user_locals.append(self.new_local(t))
        results = self.ft.results
        self.labels.append(('block', results, None))
        self.locals3()
        if self.idx == 0 and self.mg.grow_first:
            self.emit('i32.const', 1)
            self.emit('memory.grow', 0)
            self.emit('drop')
            # and write the last word of the memory, grown or not
            self.address(4, tail=True)
            self.emit('i32.const', self.c.integers(1, 0xFFFFFFFF))
            self.emit('i32.store', (2, 0))
        if self.idx == 0 and self.mg.grow_table_first:
            self.emit('ref.null', self.mg.t1_type)
            self.emit('i32.const', 1)
            self.emit('table.grow', self.mg.tix[1])
            self.emit('drop')
        if self.idx == 0 and self.mg.drop_first:
            self.emit('data.drop', self.mg.passive_data)
        if self.idx == 0 and self.mg.refs and self.mg.t1_type == EXTERNREF and EXTERNREF in self.ft.params:
            # the host's reference goes into the scratch table (and a global)
            p = self.ft.params.index(EXTERNREF)
            self.emit('i32.const', self.c.integers(0, self.mg.t1_limits.min - 1))
            self.emit('local.get', p)
            self.emit('table.set', self.mg.tix[1])
            gs = self.globals_of(EXTERNREF, mutable=True)
            if gs:
                self.emit('local.get', p)
                self.emit('global.set', self.c.choice(gs))
        self.prologue_gc()                          # straight-line too (fuzz.gen3)
        if self.idx == 0:
            self.grow_xmems_first()
            self.mg.prologue = len(self.code)       # straight-line so far (ModuleGen.dive)
            self.enter_chain()
        self.prologue3()
        if self.idx == 0:
            self.mg.body_at = len(self.code)        # after the prologues (ModuleGen.links)
        self.body_seq(results)                      # seq([], results, 16), or split (fuzz.gen3)
        self.epilogue3()
        if self.idx == 0 and self.mg.probe_drop:
            self.emit('i32.const', 0)
            self.emit('i32.const', 0)
            self.emit('i32.const', min(1, len(self.mg.datas[self.mg.passive_data].init)))
            self.emit('memory.init', self.mg.passive_data)
        self.labels.pop()
        self.emit('end')
        return self.declared, self.code

    def seq(self, st, out, steps, loop_counter=None):
        """Emit code turning stack ``st`` into exactly ``out``; a loop body
        may end with its counted back-branch.  Returns STOP when it ended
        in code after which nothing runs (a return, a branch, a throw)."""
        for _ in range(self.c.integers(0, steps)):
            if self.exhausted():
                break
            if self.step(st) is STOP:
                return STOP
        if loop_counter is not None and self.c.integers(0, 3):
            params = self.labels[-1][1]
            self.finish(st, params)
            nested = self.c.integers(0, 3) == 0     # a `continue` from inside a block
            if nested:
                self.emit('block', self.block_type(params, params))
            self.loop_test(loop_counter)
            self.emit('br_if', int(nested))
            if nested:
                self.emit('end')
        self.finish(st, out)

    def loop_test(self, counter):
        """Push ``counter != 0`` (more iterations to go) in one of the three
        shapes compilers emit, chosen by the counter's index (no draw, so a
        seed keeps its module's choices): the counter itself, an i32
        compare with zero, a widened i64 compare; the executors fuse the
        compares with the ``br_if`` into superinstructions whose branch
        bookkeeping is their own."""
        self.emit('local.get', counter)
        if counter % 3 == 1:
            self.emit('i32.const', 0)
            self.emit('i32.ne')
        elif counter % 3 == 2:
            self.emit('i64.extend_i32_u')
            self.emit('i64.const', 0)
            self.emit('i64.ne')

    def finish(self, st, out):
        k = 0
        while k < len(st) and k < len(out) and st[k] == out[k]:
            k += 1
        while len(st) > k:
            self.sink(st.pop())
        for t in out[k:]:
            self.value(t)
            st.append(t)

    def sink(self, t):
        """Consume one value of type t, keeping it observable when possible
        (a GC one, a caught exception's field: ``FuncGC.keep_gc``)."""
        c = self.c
        if self.gcl and gen3.is_gc(t):
            return self.keep_gc(t)
        gs = self.globals_of(t, mutable=True)
        ls = self.locals_of(t)
        how = c.weighted([(3, 'drop'), (2 if gs else 0, 'global'), (1 if ls else 0, 'local')])
        if how == 'global':
            self.emit('global.set', c.choice(gs))
        elif how == 'local':
            self.emit('local.set', c.choice(ls))
        else:
            self.emit('drop')

    def operands(self, st, types):
        """Put ``types`` on top of the stack: reuse a matching top of ``st``,
        generate the rest; the values are consumed from ``st``."""
        n = len(types)
        k = min(n, len(st))
        while k and tuple(st[len(st) - k:]) != tuple(types[:k]):
            k -= 1
        if k and not self.c.integers(0, 3):
            k = 0                       # sometimes compute every operand afresh
        del st[len(st) - k:]
        for t in types[k:]:
            self.value(t)

    # ---- one step

    def step(self, st):
        c = self.c
        top = st[-1] if st else None
        deeper = self.depth < MAX_DEPTH
        non_loop = [l for l, (kind, _, _) in enumerate(reversed(self.labels)) if kind != 'loop']
        mem = self.mg.has_memory
        action = c.weighted([
            (10, 'push'), (25, 'op'), (4 if st else 0, 'sink'),
            (3 if st and self.locals_of(top) else 0, 'tee'),
            (6 if mem else 0, 'load'), (6 if mem else 0, 'store'),
            (2 if self.mg.simd and mem else 0, 'lane'),
            (4 if deeper else 0, 'block'), (5 if deeper else 0, 'if'), (6 if deeper else 0, 'loop'),
            (2, 'br'), (3, 'br_if'), (1, 'br_table'), (4 if deeper and mem else 0, 'switch'),
            (2 if deeper else 0, 'ladder'),
            (1, 'return'),
            (1 if self.depth else 0, 'unreachable'),
            (6 if self.idx + 1 < self.mg.nfuncs else 0, 'call'),
            (4 if self.mg.linked else 0, 'call_import'),
            (3 if self.idx + 1 < self.mg.nfuncs else 0, 'call_indirect'),
            (2 if self.mult == 1 and not self.self_called else 0, 'recurse'),
            (4 if mem else 0, 'memory'), (3 if self.mg.refs else 0, 'table'), (3, 'select'),
            (2 if self.mg.refs else 0, 'ref'), (2, 'global.set'),
            (8 if self.mg.xmems else 0, 'xmem'), (4 if self.mg.tail else 0, 'tail'),
            *self.weights3(deeper),
        ])
        return getattr(self, 'do_' + action.replace('.', '_'))(st, non_loop)

    def do_push(self, st, _):
        t = self.mg.valtype()
        self.value(t)
        st.append(t)

    def do_op(self, st, _):
        c = self.c
        cands = []
        for k in (1, 2, 3):
            if len(st) >= k:
                cands += self.mg.ops_by_params.get(tuple(st[len(st) - k:]), ())
        op = c.choice(cands) if cands and c.integers(0, 2) else c.choice(self.mg.pure_ops)
        params, results = op.sig
        self.operands(st, params)
        self.emit_pure(op)
        st.extend(results)

    def do_sink(self, st, _):
        self.sink(st.pop())

    def do_tee(self, st, _):
        self.emit('local.tee', self.c.choice(self.locals_of(st[-1])))

    def do_global_set(self, st, _):
        c = self.c
        t = st[-1] if st and c.boolean() else self.mg.valtype()
        gs = self.globals_of(t, mutable=True)
        if not gs:
            return self.do_push(st, _)
        self.operands(st, (t,))
        self.emit('global.set', c.choice(gs))

    def do_load(self, st, _):
        op = self.c.choice(self.mg.load_ops)
        self.address(op.width)
        self.emit(op.name, self.memarg(op.width))
        st.append(op.sig[1][0])

    def do_store(self, st, _):
        c = self.c
        op = c.choice(self.mg.store_ops)
        t = op.sig[0][1]
        if st and st[-1] == t and c.boolean():
            # keep the computed value: park it while the address is made
            s = self.scratch_local('store', t)
            st.pop()
            self.emit('local.set', s)
            self.address(op.width)
            self.emit('local.get', s)
        else:
            self.address(op.width)
            self.value(t)
        self.emit(op.name, self.memarg(op.width))

    def do_lane(self, st, _):
        c = self.c
        op = c.choice(LANE_LOADS + LANE_STORES)
        self.address(op.width)
        self.value(V128)
        align, offset = self.memarg(op.width)
        self.emit(op.name, (align, offset, c.integers(0, 16 // op.width - 1)))
        if op.sig[1]:
            st.append(V128)

    def block_type(self, params, results):
        if not params and len(results) <= 1:
            return results[0] if results else None
        return self.mg.type_index(FuncType(tuple(params), tuple(results)))

    def push_operand(self, st):
        t = self.mg.valtype()
        self.value(t)
        st.append(t)

    def structured(self, st, kind):
        c = self.c
        if c.integers(0, 3) == 0:
            # an operand the block's label sits above (its height in WAMR's
            # label, frame_sp): a branch out discards down to it, not to the
            # frame's base
            self.push_operand(st)
        np = c.integers(0, min(2, len(st)))
        params = tuple(st[len(st) - np:])
        results = tuple(self.mg.valtype() for _ in range(c.weighted([(3, 0), (4, 1), (2, 2), (1, 3)])))
        bt = self.block_type(params, results)
        counter = None
        saved_mult = self.mult
        if kind == 'loop':
            bound = c.integers(1, max(1, min(MAX_LOOP, BUDGET // (self.mult * 40))))
            counter = self.new_local(I32)
            self.emit('i32.const', bound)
            self.emit('local.set', counter)
        elif kind == 'if':
            self.condition()
        del st[len(st) - np:]
        self.emit(kind, bt)
        self.labels.append((kind, params if kind == 'loop' else results, counter))
        self.depth += 1
        steps = max(3, 11 - 2 * self.depth)
        if kind == 'loop':
            self.mult *= bound
            self.emit('local.get', counter)
            self.emit('i32.const', 1)
            self.emit('i32.sub')
            self.emit('local.set', counter)
            self.seq(list(params), results, steps, loop_counter=counter)
        elif kind == 'if':
            self.seq(list(params), results, steps)
            if params != results or c.integers(0, 2):
                self.emit('else')
                self.seq(list(params), results, steps)
        else:
            self.seq(list(params), results, steps)
        self.depth -= 1
        self.mult = saved_mult
        self.labels.pop()
        self.emit('end')
        st.extend(results)

    def do_block(self, st, _):
        self.structured(st, 'block')

    def do_if(self, st, _):
        self.structured(st, 'if')

    def do_loop(self, st, _):
        self.structured(st, 'loop')

    def do_br(self, st, non_loop):
        l = self.c.choice(non_loop)
        self.operands(st, self.labels[-1 - l][1])
        self.emit('br', l)
        return STOP

    def do_br_if(self, st, non_loop):
        c = self.c
        if c.integers(0, 2) == 0:
            self.push_operand(st)       # one the taken branch discards
        loops = [l for l, (kind, _, _) in enumerate(reversed(self.labels)) if kind == 'loop']
        if loops and c.boolean():
            # the outermost loop half the time: a back-branch across nested
            # blocks pops their labels inside the fused compare-and-branch
            l = loops[-1] if c.boolean() else c.choice(loops)
            _, types, counter = self.labels[-1 - l]
            self.operands(st, types)
            self.loop_test(counter)
        else:
            # the outer half of the labels half the time: a branch across
            # several labels of different heights (the blocks' own operands
            # below them) takes the target's height, not a nearer one's
            l = c.choice(non_loop[len(non_loop) // 2:] if c.boolean() else non_loop)
            types = self.labels[-1 - l][1]
            self.operands(st, types)
            self.condition()
        self.emit('br_if', l)
        st.extend(types)

    def do_br_table(self, st, non_loop):
        c = self.c
        # A br_table only tells its labels apart when several share the
        # types; prefer the most shared types, so nested targets differ.
        by_types = {}
        for l in non_loop:
            by_types.setdefault(tuple(self.labels[-1 - l][1]), []).append(l)
        if c.boolean():
            same = max(by_types.values(), key=len)
        else:
            same = by_types[tuple(self.labels[-1 - c.choice(non_loop)][1])]
        types = self.labels[-1 - same[0]][1]
        targets = tuple(c.choice(same) for _ in range(c.integers(0, 3)))
        self.operands(st, types)
        if c.boolean():
            self.emit('i32.const', c.integers(0, len(targets) + 1))
        else:
            self.value(I32)
        self.emit('br_table', (targets, c.choice(same)))
        return STOP

    def do_ladder(self, st, _):
        """An early exit from nested scopes: three blocks, the inner two each
        above an operand of its own (so the three labels stand at different
        heights, with different arities), and in the innermost, above one
        more operand, a ``br_if 2`` to the outermost, mostly taken (often as
        a compare the executors fuse with the branch).  The taken branch
        keeps the outer block's results at the outer label's height; a
        nearer label's height or arity leaves another stack."""
        c = self.c
        mg = self.mg
        kinds = [tuple(mg.valtype() for _ in range(c.integers(0, 2))) for _ in range(3)]
        inside = []
        for k, res in enumerate(kinds):
            if k:
                self.push_operand(inside[-1])
            self.emit('block', self.block_type((), res))
            self.labels.append(('block', res, None))
            inside.append([])
        self.push_operand(inside[-1])           # discarded by the taken branch
        self.operands(inside[-1], kinds[0])
        how = c.integers(0, 3)
        if how == 0:
            self.condition(((1, 0), (3, 1), (1, None)))
        else:                                   # x >= 0 (unsigned): always true, fused
            t = I64 if how == 3 else I32        # (an i64 compare: two cells per operand)
            self.value(t)
            self.emit(f'{t}.const', 0)
            self.emit(f'{t}.ge_u' if how != 2 else 'i32.lt_u')
        self.emit('br_if', 2)
        inside[-1].extend(kinds[0])
        for k in (2, 1, 0):
            self.finish(inside[k], kinds[k])
            self.labels.pop()
            self.emit('end')
            if k:
                inside[k - 1].extend(kinds[k])
        st.extend(kinds[0])

    def do_switch(self, st, _):
        """The shape compilers give a switch statement: nested blocks, one per
        case, a ``br_table`` on a selector that is often out of range (so
        the default is taken), and after each block's ``end`` that case's
        code, falling through to the next case or breaking out.  Every case
        first records itself in a memory word (``word = word * 8 + k`` for
        case k, counted from 1), so a dispatch to the wrong label changes
        the final memory; the cases share result types, so the values the
        branch carries flow on through the later cases to the code after
        the switch."""
        c = self.c
        ncases = c.integers(2, 4)
        types = tuple(self.mg.valtype() for _ in range(c.weighted([(3, 0), (2, 1), (1, 2)])))
        breaks = c.boolean()            # an exit block after the last case: ``break``
        slot = 4 * c.integers(0, 15)
        labels = ncases + breaks        # the switch's own labels, innermost first
        bt = self.block_type((), types)
        for _ in range(labels):
            self.emit('block', bt)
            self.labels.append(('block', types, None))
        self.depth += 1
        # the dispatch: targets anywhere in the switch, the default mostly
        # its last case or the exit
        targets = tuple(c.integers(0, labels - 1) for _ in range(c.integers(0, ncases)))
        default = c.weighted([(2, labels - 1), (1, c.integers(0, labels - 1))])
        self.operands([], types)        # (the blocks take no params: a fresh stack)
        if c.integers(0, 2):
            self.emit('i32.const', c.integers(0, len(targets) + 2))
        else:
            self.value(I32)
        self.emit('br_table', (targets, default))
        for case in range(ncases):
            self.labels.pop()
            self.emit('end')
            self.emit('i32.const', slot)
            self.emit('i32.const', slot)
            self.emit('i32.load', (2, 0))
            self.emit('i32.const', 3)
            self.emit('i32.shl')
            self.emit('i32.const', case + 1)
            self.emit('i32.or')
            self.emit('i32.store', (2, 0))
            self.seq(list(types), types, max(1, 4 - self.depth))
            if breaks and case < ncases - 1 and c.integers(0, 2) == 0:
                self.emit('br', ncases - 1 - case)
        if breaks:
            self.labels.pop()
            self.emit('end')
        self.depth -= 1
        st.extend(types)

    def do_return(self, st, _):
        self.operands(st, self.ft.results)
        self.emit('return')
        return STOP

    def do_unreachable(self, st, _):
        self.emit('unreachable')
        return STOP

    def do_call(self, st, _):
        c = self.c
        room = BUDGET - self.cost
        cands = [j for j in range(self.idx + 1, self.mg.nfuncs)
                 if self.mult * self.mg.costs[j] <= room]
        if not cands:
            return self.do_push(st, _)
        j = c.choice(cands)
        ft = self.mg.sigs[j]
        self.operands(st, ft.params)
        self.emit('call', self.mg.fbase + j)
        self.cost += self.mult * self.mg.costs[j]
        st.extend(ft.results)

    def do_call_import(self, st, _):
        """A call into the provider instance (a frame of another instance)."""
        q = self.c.integers(0, len(PROVIDER_FUNCS) - 1)
        ft = PROVIDER_FUNCS[q][1]
        self.operands(st, ft.params)
        self.emit('call', q)
        self.cost += self.mult * 20
        st.extend(ft.results)

    def do_call_indirect(self, st, _):
        c = self.c
        mg = self.mg
        later = list(range(self.idx + 1, mg.nfuncs))
        room = BUDGET - self.cost
        worst = max((mg.costs[j] for j in later), default=0)
        cheap = [j for j in later if self.mult * mg.costs[j] <= room]
        if self.mult * worst > room and not cheap:
            return self.do_push(st, _)
        j = c.choice(cheap) if cheap else None
        ft = mg.sigs[j] if j is not None and c.integers(0, 7) else FuncType(
            tuple(mg.valtype() for _ in range(c.integers(0, 2))),
            tuple(mg.valtype() for _ in range(c.integers(0, 2))))
        self.operands(st, ft.params)
        how = c.weighted([(12 if j is not None else 0, 'direct'),
                          (3 if self.mult * worst <= room else 0, 'dynamic'),
                          (2 if self.mult * worst <= room else 0, 'slot')])
        if how == 'direct':
            self.emit('i32.const', j)
            self.cost += self.mult * mg.costs[j]
        elif how == 'dynamic':
            # any value, folded into the slots above this function
            self.value(I32)
            self.emit('i32.const', mg.table0_size - self.idx)
            self.emit('i32.rem_u')
            self.emit('i32.const', self.idx + 1)
            self.emit('i32.add')
            self.cost += self.mult * worst
        else:
            # a slot that may be empty, out of range, or of another type
            self.emit('i32.const', c.integers(self.idx + 1, mg.table0_size + 2))
            self.cost += self.mult * worst
        self.emit('call_indirect', (mg.type_index(ft), mg.tix[0]))
        st.extend(ft.results)

    def do_recurse(self, st, _):
        """Self call guarded by the shared depth global (bounded recursion)."""
        d = self.mg.depth_global
        ft = self.ft
        self.self_called = True
        self.emit('global.get', d)
        self.emit('i32.const', RECURSION_LIMIT)
        self.emit('i32.lt_u')
        self.emit('if', self.block_type((), ft.results))
        self.labels.append(('if', ft.results, None))
        self.emit('global.get', d)
        self.emit('i32.const', 1)
        self.emit('i32.add')
        self.emit('global.set', d)
        for t in ft.params:
            self.value(t)
        self.emit('call', self.mg.fbase + self.idx)
        self.emit('global.get', d)
        self.emit('i32.const', 1)
        self.emit('i32.sub')
        self.emit('global.set', d)
        self.emit('else')
        for t in ft.results:
            self.value(t)
        self.labels.pop()
        self.emit('end')
        st.extend(ft.results)

    def do_memory(self, st, _):
        c = self.c
        what = c.weighted([(2, 'size'), (2, 'grow'), (3, 'fill'), (3, 'copy'), (3, 'init'),
                           (1, 'data.drop')])
        if what == 'size':
            self.emit('memory.size', 0)
            st.append(I32)
        elif what == 'grow':
            if c.integers(0, 7):
                self.emit('i32.const', c.integers(0, 2))
            else:
                self.value(I32)
            self.emit('memory.grow', 0)
            st.append(I32)
        elif what == 'fill':
            self.address(1)
            self.value(I32)
            self.length()
            self.emit('memory.fill', 0)
        elif what == 'copy':
            self.address(1)
            self.address(1)
            self.length()
            self.emit('memory.copy', (0, 0))
        elif what == 'init':
            size = len(self.mg.datas[self.mg.passive_data].init)
            src = c.integers(0, size)
            n = c.integers(0, size - src)
            if self.mg.risky and not c.integers(0, 7):
                src, n = c.integers(0, 17), c.integers(0, 17)    # may be out of bounds
            self.address(1)
            self.emit('i32.const', src)
            self.emit('i32.const', n)
            self.emit('memory.init', self.mg.passive_data)
        else:
            self.emit('data.drop', self.mg.passive_data)

    def do_table(self, st, _):
        c = self.c
        t1 = self.mg.t1_type
        what = c.weighted([(2, 'size'), (3, 'get'), (3, 'set'), (2, 'grow'), (2, 'fill'),
                           (2, 'copy'), (3, 'init'), (1, 'elem.drop')])
        sizes = (self.mg.table0_size, self.mg.t1_limits.min)

        def index(table, n=0):
            """A slot (of a range of n) mostly inside the table's initial size."""
            if sizes[table] - n >= 0 and (c.integers(0, 7) or not self.mg.risky):
                self.emit('i32.const', c.integers(0, sizes[table] - n))
            else:
                self.emit('i32.const', c.weighted([(8, c.integers(0, 5)), (1, 0xFFFFFFFF)]))

        def count(limit):
            self.emit('i32.const', c.integers(0, max(0, limit))
                      if c.integers(0, 7) or not self.mg.risky
                      else c.integers(0, 5))

        if what == 'size':
            self.emit('table.size', self.mg.tix[c.integers(0, 1)])
            st.append(I32)
        elif what == 'get':
            t = c.integers(0, 1)
            index(t, 1)
            self.emit('table.get', self.mg.tix[t])
            st.append(FUNCREF if t == 0 else t1)
        elif what == 'set':
            index(1, 1)
            self.value(t1)
            self.emit('table.set', self.mg.tix[1])
        elif what == 'grow':
            self.value(t1)
            self.emit('i32.const', c.integers(0, 3))
            self.emit('table.grow', self.mg.tix[1])
            st.append(I32)
        elif what == 'fill':
            n = c.integers(0, sizes[1])
            index(1, n)
            self.value(t1)
            count(n)
            self.emit('table.fill', self.mg.tix[1])
        elif what == 'copy':
            src = c.integers(0, 1) if t1 == FUNCREF else 1
            n = c.integers(0, min(sizes[1], sizes[src]))
            index(1, n)
            index(src, n)
            count(n)
            self.emit('table.copy', (self.mg.tix[1], self.mg.tix[src]))
        elif what == 'init':
            elen = len(self.mg.passive_elem)
            n = c.integers(0, min(sizes[1], elen))
            index(1, n)
            self.emit('i32.const', c.integers(0, elen - n))
            count(n)
            self.emit('table.init', (1, self.mg.tix[1]))    # (elem, table): the scratch table's passive segment
        else:
            self.emit('elem.drop', 1)

    def do_select(self, st, _):
        c = self.c
        t = st[-1] if st and c.boolean() else self.mg.valtype()
        self.operands(st, (t, t))
        self.value(I32)
        typed = syntax.is_ref(t) or (self.mg.refs and c.boolean())
        self.emit('select', (t,) if typed else None)
        st.append(t)

    def do_ref(self, st, _):
        c = self.c
        t = st[-1] if st and st[-1] in REF_CONST else c.choice(REF_CONST)
        self.operands(st, (t,))
        self.emit('ref.is_null')
        st.append(I32)

    def condition(self, weights=((2, 0), (1, 1), (3, None))):
        """An i32 for if/br_if: often a plain 0 or 1 (``weights`` of 0, 1 and
        None = a computed value), so that branches are taken about half of
        the time rather than almost always."""
        how = self.c.weighted(weights)
        if how is None:
            self.value(I32)
        else:
            self.emit('i32.const', how)

    # ---- single values

    def value(self, t, d=0):
        """Emit code pushing exactly one value of type t."""
        c = self.c
        if t not in REF_CONST and syntax.is_ref(t):
            return self.value3(t)
        ls = self.locals_of(t)
        gs = self.globals_of(t)
        if t in REF_CONST:
            tables = [ti for ti, tt in ((0, FUNCREF), (1, self.mg.t1_type)) if tt == t]
            how = c.weighted([(3, 'const'), (3 if ls else 0, 'local'), (2 if gs else 0, 'global'),
                              (1 if tables else 0, 'table')])
            if how == 'const':
                self.emit(*self.mg.const_instr(t))
            elif how == 'local':
                self.emit('local.get', c.choice(ls))
            elif how == 'global':
                self.emit('global.get', c.choice(gs))
            else:
                ti = c.choice(tables)
                size = self.mg.table0_size if ti == 0 else self.mg.t1_limits.min
                self.emit('i32.const', c.integers(0, size - 1)
                          if size and (c.integers(0, 7) or not self.mg.risky)
                          else c.integers(0, 4))
                self.emit('table.get', self.mg.tix[ti])
            return
        ops = self.mg.ops_by_result.get(t, ())
        how = c.weighted([(4, 'const'), (3 if ls else 0, 'local'), (2 if gs else 0, 'global'),
                          (4 if d < 2 else 0, 'op'), (2 if d < 2 and self.mg.has_memory else 0, 'load')])
        if how == 'const':
            self.emit(t + '.const', self.mg.const_value(t))
        elif how == 'local':
            self.emit('local.get', c.choice(ls))
        elif how == 'global':
            self.emit('global.get', c.choice(gs))
        elif how == 'op':
            op = c.choice(ops)
            for p in op.sig[0]:
                self.value(p, d + 1)
            self.emit_pure(op)
        else:
            op = c.choice(self.mg.loads_by_result[t])
            self.address(op.width)
            self.emit(op.name, self.memarg(op.width))

    def emit_pure(self, op):
        c = self.c
        imm = None
        if op.imm == 'lane':
            imm = c.integers(0, LANES[op.name.split('.')[0]] - 1)
        elif op.imm == 'shuffle':
            imm = tuple(c.integers(0, 31) for _ in range(16))
        elif op.name in DIVISIONS and (c.integers(0, 3) or not self.mg.risky):
            # mostly keep going: an odd divisor is never zero
            shape = op.name[:3]
            self.emit(shape + '.const', 1)
            self.emit(shape + '.or')
        elif op.name in DIVISIONS:
            shape = op.name[:3]         # risky modules: now and then certainly zero
            self.emit(shape + '.const', 0)
            self.emit(shape + '.mul')
        self.emit(op.name, imm)
        if self.mg.canon and nan_nondeterministic(op.name):
            self.canonicalize(op)

    def canonicalize(self, op):
        """Replace a NaN result by the canonical NaN (deterministic bits)."""
        shape = op.name.split('.')[0]
        rt = op.sig[1][0]
        s = self.scratch_local('canon', rt)
        self.emit('local.tee', s)
        if rt == V128:
            self.emit('v128.const', CANON_V128[shape])
            self.emit('local.get', s)
            self.emit('local.get', s)
            self.emit(shape + '.eq')
            self.emit('v128.bitselect')
        else:
            self.emit(rt + '.const', CANON_NAN[rt])
            self.emit('local.get', s)
            self.emit('local.get', s)
            self.emit(rt + '.eq')
            self.emit('select')

    # ---- memory operands

    def address(self, width, tail=False):
        """An i32 address: mostly in bounds, now and then out of bounds
        (``tail``: the end of the current memory)."""
        c = self.c
        ls = self.locals_of(I32)
        risky = 1 if self.mg.risky else 0
        how = 'tail' if tail else c.weighted([(80, 'low'), (10 if ls else 0, 'masked'), (10, 'page'),
                                              (20, 'tail'), (risky, 'edge'), (risky, 'any')])
        if how == 'low':
            self.emit('i32.const', c.integers(0, 64))
        elif how == 'tail':
            # the last 4 KiB chunk of the memory as it is now (grown or not)
            self.emit('memory.size', 0)
            self.emit('i32.const', 16)
            self.emit('i32.shl')
            self.emit('i32.const', width if tail else c.integers(width, CHUNK_BYTES))
            self.emit('i32.sub')
        elif how == 'masked':
            self.emit('local.get', c.choice(ls))
            self.emit('i32.const', 0xFFF)
            self.emit('i32.and')
        elif how == 'page':
            self.emit('i32.const', c.integers(0, PAGE - width))
        elif how == 'edge':
            self.emit('i32.const', PAGE - width + c.integers(1, width))
        else:
            self.value(I32, 2)

    def memarg(self, width):
        c = self.c
        align = c.integers(0, width.bit_length() - 1)
        offset = c.weighted([(40, 0), (10, c.integers(0, 64)),
                             (1 if self.mg.risky else 0, c.integers(0, 0xFFFFFFFF))])
        return (align, offset)

    def length(self):
        c = self.c
        # rarely a length past any memory this generator makes: traps before any work
        self.emit('i32.const', c.weighted([(20, c.integers(0, 64)),
                                           (1 if self.mg.risky else 0,
                                            c.integers(8 * PAGE, 0xFFFFFFFF))]))


# ---------------------------------------------------------------- entry points


def build_module(c, canonicalize_nans=True, features=FEATURES):
    """Generate one module from chooser ``c`` (see module docstring)."""
    return ModuleGen(c, canonicalize_nans, features).build()


def from_bytes(data, canonicalize_nans=True, features=FEATURES):
    """Deterministic module from fuzzer bytes; never fails."""
    return build_module(BytesChooser(data), canonicalize_nans, features)


def from_seed(seed, canonicalize_nans=True, features=FEATURES):
    return build_module(RandomChooser(seed), canonicalize_nans, features)


def modules(canonicalize_nans=True, features=FEATURES):
    """Hypothesis strategy of ``GeneratedModule``."""
    import hypothesis.strategies as st

    @st.composite
    def _modules(draw):
        return build_module(DrawChooser(draw), canonicalize_nans, features)
    return _modules()
