"""Code generation for the compiled tier: one Wasm function -> one Python
function (generated source, compiled once and cached on its FuncInst).

Shape of the generated function (WasmEdge model: instruction indices,
whole values)::

    def F(n, d, l0=0, l1=0):             # n: step budget, d: calls allowed
        nonlocal N                       # the budget left, on return
        l2 = 0                           # declared locals
        try:                             # a call: the entry block
            while True:
                if n < 7: raise Stop() if n >= 0 else Resume
                n -= 7                   # one subtraction per segment
                ...                      # straight-line code on l*/s* vars
                b = 3; break
        except Resume:                   # a resume (n < 0): block b, locals, operands
            d, b, V = d; n = -1 - n; l0 = V[0]; ...; s0 = V[nlocals] ...
        while True:
            if b == 3: ...

A call passes the budget in and returns the function's results only (one
value as itself, several as a tuple, none as None): the budget left comes
back in the closure cell ``N`` that every compiled function of the store
shares (``budget_cell``), so a return builds no tuple.

Wasm locals are Python locals ``l<i>``, the operand at height ``h`` is
``s<h>`` (heights are static), pure operations are fused into expressions
and only materialised when needed.  A *block* starts at a *leader* (pc 0, a
branch's landing instruction, the two sides of an ``if``/``br_if``, the
instruction after ``else``'s jump); it is cut into *segments* after each
call, and each segment is charged its exact instruction count (as the
interpreter counts) at its start, before anything in it runs.

No state is kept outside the Python frames while compiled code runs: the
executor rebuilds the interpreter's stack and frames from the traceback of
``Stop`` / ``Reenter`` / a trap, reading each compiled frame's locals and
mapping its line number to (pc, segment) through ``Compiled.lines``.

A big function (more than ``LAZY_ARMS`` leaders) gets *lazy arms*: the
dispatch holds the arms of a few blocks near its entry, and the runs of
blocks between them end in a leaf raising ``Miss``, unwound like a ``Stop``
at the start of the block jumped to; the function is then generated again
with that block and geometrically more (``grow``).
"""

import bisect
import functools
import math
import re
import struct
import types
from array import array
from itertools import repeat
from typing import NamedTuple, Optional, Tuple

from .. import deftypes, faults
from .. import syntax as S
from . import aligned, gc, memories, memory_access, numerics
from .exceptions import has_handlers
from ..errors import Trap
from ..opcodes import BY_NAME
from ..runtime import TYPED_VIEWS, default_value

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF
OOB = 'out of bounds memory access'
STRUCT_OOB = 'requires a buffer'      # struct's bounds message: a trap, not a bug
INDEX_OOB = 'bytearray index out of range'   # one-byte accesses index the memory
VIEW_OOB = 'index out of bounds on dimension 1'    # aligned ones index a typed view


class Stop(Exception):
    """The budget does not cover the next segment: stop before it."""


class Reenter(Exception):
    """Stop before a call (no compiled call depth left, or a callee that
    runs in the interpreter): the interpreter makes the call."""


# Typed function references and GC (3.0) are left to the interpreter: a
# function using one of these runs interpreted as a whole (exact by construction).
_INTERPRETED = frozenset(('call_ref', 'return_call_ref', 'br_on_null', 'br_on_non_null',
                          'ref.as_non_null')) | gc.OPS | gc.BRANCHES


class Resume(Exception):
    """Raised by a compiled function's entry check when it is entered to
    resume (a negative budget) and caught in the function itself."""


class Miss(Exception):
    """A jump to a block whose arm was not generated (lazy arms, see
    ``LAZY_ARMS``): stop at the block's start; the executor has the
    function generated again with that block (``grow``) and goes on.
    Its arguments: the Compiled function and the block number."""


class Tag(NamedTuple):
    """What a generated line stands for, for the unwinder (``Compiled.lines``).
    ``kind``: 'instr' (an instruction's line, or a trap in it), 'reenter'
    (the depth test before a call), 'call' (the call itself), 'stop' (a
    segment's budget check) or 'miss' (a jump to a block without code);
    ``at``: the instruction's pc; ``seg``, ``segk``: its segment's first pc
    and length; ``h``: the operand height (at a call, the height below its
    operands); ``extra``: the path's steps before the segment not yet
    subtracted from n (FuncGen.pre; at a call, the height with its
    operands); ``ahead``: at a call, the steps after it charged ahead
    (FuncGen.precharge); ``given``: (height below, tuple expression) of
    operands given straight to a call (FuncGen.call), or None."""
    kind: str
    at: int
    seg: int
    segk: int
    h: int
    extra: int
    ahead: int = 0
    given: Optional[Tuple[int, str]] = None
    batch: int = 0


_tag = tuple.__new__     # Tag(...) without NamedTuple's __new__ (once per instruction)


class Fresh(NamedTuple):
    """The value the line just emitted computed (a load, a call), which a
    ``local.set`` next may take straight into the local (FuncGen.write_local):
    ``line`` (the emitted line, as ``FuncGen.out`` holds it), ``slot`` (the
    name the value is in: an operand slot, or an f64 load's float), ``expr``
    (the computing expression), ``bits`` (an f64 load's exact bits, else
    None) and ``lines`` (how many lines to take back: 2 when an f64 load's
    NaN test follows its line)."""
    line: tuple
    slot: str
    expr: str
    bits: Optional[str]
    lines: int


class Uncompilable(Exception):
    """The function uses something the generator does not handle; it runs
    in the interpreter."""


class Compiled:
    """A compiled function: ``fn``, the leader -> block map ``entry``, the
    line -> Tag map ``lines``, its ``code`` object and frame layout;
    ``heads`` (block -> (leader pc, operand height)), ``key`` (its entry in
    the shared code cache) and ``present`` (the leaders whose arms its code
    has, None: all) for lazy arms; ``facts`` (aligned.Facts, None: none)
    what its code assumes of its locals' low bits."""
    __slots__ = ('fn', 'entry', 'lines', 'code', 'addr', 'nlocals', 'nparams',
                 'arity', 'source', 'floats', 'defaults', 'heads', 'key', 'present', 'model',
                 'ahead', 'facts')

    def steps_to_entry(self, body, i):
        """How many steps the interpreter takes from instruction ``i`` (no
        entry) before the executor looks again: through straight-line
        code up to the next entry, or past the first call or branch
        (where it is in a callee or anywhere).  At least 1; a stop may
        come first, as always."""
        memo = self.ahead
        if memo is None or memo[0] is not self.entry:
            memo = self.ahead = (self.entry, {})
        k = memo[1].get(i)
        if k is None:
            entry, j, k = self.entry, i, 1
            while body[j].op not in _FLOW_ENDS and j + 1 < len(body) and j + 1 not in entry:
                j += 1
                k += 1
            memo[1][i] = k
        return k

    def expects(self, values):
        """Whether a frame holding ``values`` (locals first) has what the
        code assumes of its locals (``facts``); else the interpreter runs it."""
        return self.facts is None or self.facts.keeps(values)

    def fresh(self, values):
        """Whether a frame holding ``values`` (locals and operands) at pc 0
        is one a call makes (declared locals at their defaults, no
        operands): then it is entered by calling ``fn`` with its params."""
        return self.defaults is not None and values[self.nparams:] == self.defaults


# ------------------------------------------------------------ runtime helpers

def _mark(dirty, d, n):
    if n:
        a, b = d >> 12, (d + n - 1) >> 12
        dirty[a:b + 1] = b'\x01' * (b - a + 1)


def dirty_span(dirty, first, last, lo, hi, up):
    """Flag the chunks of bytes ``first + lo`` to ``last + hi``: a batched
    loop's stores at a local that stepped from ``first`` to ``last``, up or
    down (``FuncGen.spans``); a local that wrapped around the address
    space flags every chunk from ``lo`` on."""
    if not up:
        first, last = last, first
    if last < first:
        first, last = 0, len(dirty) << 12
    a = (first + lo) >> 12
    b = min((last + hi) >> 12, len(dirty) - 1)
    if a <= b:
        dirty[a:b + 1] = b'\x01' * (b - a + 1)


def mem_fill(mi, d, v, n):
    mem = mi.data
    if d + n > len(mem):
        raise Trap(OOB)
    mem[d:d + n] = bytes((v & 0xFF,)) * n
    _mark(mi.dirty, d, n)


def mem_copy(mi, d, s, n):
    mem = mi.data
    if s + n > len(mem) or d + n > len(mem):
        raise Trap(OOB)
    mem[d:d + n] = mem[s:s + n]
    _mark(mi.dirty, d, n)


def mem_init(store, mi, ma, da, d, s, n):
    from ..runtime import memory_init
    memory_init(store, ma, da, d, s, n)
    _mark(mi.dirty, d, n)


def indirect(site, store, elem, ft, i, model='wasmedge'):
    """The compiled callee of a ``call_indirect`` through entry ``i`` of the
    table's ``elem``, checked as the interpreter checks it and then kept in
    the call site's ``site`` (funcaddr -> function: a funcaddr's type and
    code never change), so the next call through that entry is one lookup
    (the generated code calls this when that lookup fails)."""
    if i >= len(elem):
        raise Trap('undefined element')
    a = elem[i]
    if a is None:
        raise Trap(f'uninitialized element {i}')
    fi = store.funcs[a]
    if fi.type is not ft and not deftypes.deftype_matches(S.type_key(fi.type), S.type_key(ft)):
        raise Trap('indirect call type mismatch')
    c = ready(store, a, model)
    if c is None:                   # cold: the interpreter makes this call
        raise Reenter()
    f = site[a] = c.fn
    return f


def fdiv(x, y):
    """f64.div in the float domain (IEEE: x / 0 is an infinity or a NaN)."""
    try:
        return x / y
    except ZeroDivisionError:
        if x != x or x == 0.0:
            return math.nan
        return math.copysign(math.inf, x) * math.copysign(1.0, y)


def fsqrt(x):
    """f64.sqrt in the float domain (a negative operand gives a NaN)."""
    return math.sqrt(x) if x >= 0.0 else math.nan


def floats_of(*bits):
    """The floats of f64 bit patterns (a resume's f64 locals)."""
    return struct.unpack(f'<{len(bits)}d', struct.pack(f'<{len(bits)}Q', *bits))


def fbits(f, b):
    """The bits of an f64 local held as the float ``f`` (``b``: its exact
    bits, kept only while ``f`` is a NaN, whose payload a float may lose)."""
    if f != f:
        return b
    _FA[0] = f
    return _QA[0]


def budget_cell(store):
    """The closure cell through which the store's compiled functions hand
    the budget left back to their caller (created on first use)."""
    cell = store.budget
    if cell is None:
        cell = store.budget = types.CellType(0)
    return cell


def call_host(host, args):
    return host(args)


def interpreted(*args, **kw):
    """Stands for a function that runs in the interpreter only."""
    raise Reenter()


_S = {c: struct.Struct('<' + c) for c in 'bBhHiIqQd'}
# the struct codes with a typed view of memory 0 (runtime.MemInst.typed)
_VIEWS = {'I': 'VI', 'Q': 'VQ', 'd': 'VD'}
_FMT = {1: 'b', 2: 'h', 4: 'i', 8: 'q'}
# scalar loads (memory_access.LOADS): name -> (struct char, result mask or None)
_LOADS = {name: (_FMT[w] if signed else _FMT[w].upper(), mask if signed else None)
          for name, (w, signed, mask) in memory_access.LOADS.items() if w != 16}
# scalar stores: name -> (struct char, value mask or None, width); the value
# is masked only when narrower than its type
_STORES = {name: (_FMT[w].upper(), mask if w < (8 if name[1:3] == '64' else 4) else None, w)
           for name, (w, mask) in memory_access.STORES.items() if w != 16}

_S32, _S64 = '0x80000000', '0x8000000000000000'
# pure binary operators inlined as Python: name -> (value template, condition template)
_BIN = {}
for _t, _m, _sb, _bits in (('i32', str(M32), _S32, 31), ('i64', str(M64), _S64, 63)):
    _BIN.update({
        f'{_t}.add': (f'({{a}} + {{b}}) & {_m}', None),
        f'{_t}.sub': (f'({{a}} - {{b}}) & {_m}', None),
        f'{_t}.mul': (f'({{a}} * {{b}}) & {_m}', None),
        f'{_t}.and': ('{a} & {b}', None),
        f'{_t}.or': ('{a} | {b}', None),
        f'{_t}.xor': ('{a} ^ {b}', None),
        f'{_t}.shl': (f'({{a}} << ({{b}} & {_bits})) & {_m}', None),
        f'{_t}.shr_u': (f'{{a}} >> ({{b}} & {_bits})', None),
        f'{_t}.shr_s': (f'((({{a}} ^ {_sb}) - {_sb}) >> ({{b}} & {_bits})) & {_m}', None),
        f'{_t}.eq': (None, '{a} == {b}'),
        f'{_t}.ne': (None, '{a} != {b}'),
        f'{_t}.lt_u': (None, '{a} < {b}'),
        f'{_t}.gt_u': (None, '{a} > {b}'),
        f'{_t}.le_u': (None, '{a} <= {b}'),
        f'{_t}.ge_u': (None, '{a} >= {b}'),
        f'{_t}.lt_s': (None, f'({{a}} ^ {_sb}) < ({{b}} ^ {_sb})'),
        f'{_t}.gt_s': (None, f'({{a}} ^ {_sb}) > ({{b}} ^ {_sb})'),
        f'{_t}.le_s': (None, f'({{a}} ^ {_sb}) <= ({{b}} ^ {_sb})'),
        f'{_t}.ge_s': (None, f'({{a}} ^ {_sb}) >= ({{b}} ^ {_sb})'),
    })
# the ops of _BIN whose result modulo 2**width depends only on their operands
# modulo 2**width: raw template (operands may be raw too) and width mask
_MOD = {}
for _t, _m in (('i32', str(M32)), ('i64', str(M64))):
    _MOD.update({f'{_t}.add': ('{a} + {b}', _m), f'{_t}.sub': ('{a} - {b}', _m),
                 f'{_t}.mul': ('{a} * {b}', _m)})
# bitwise ops: their result's low bits are those of their operands' low bits,
# so raw operands are wrapped once, after the op
_BITWISE = {f'{_t}.{_k}': (_s, _m) for _t, _m in (('i32', str(M32)), ('i64', str(M64)))
            for _k, _s in (('and', '&'), ('or', '|'), ('xor', '^'))}
# shifts read only the low bits of their count
_SHIFTS = {f'{_t}.{_k}': _b for _t, _b in (('i32', 31), ('i64', 63))
           for _k in ('shl', 'shr_u', 'shr_s')}
# rotates of atoms: name -> (width, mask); x << k | x >> (w - k), both
# counts taken modulo w (a count of 0 leaves x)
_ROTATES = {f'{_t}.{_k}': (_w, str(_m)) for _t, _w, _m in (('i32', 32, M32), ('i64', 64, M64))
            for _k in ('rotl', 'rotr')}
_UN = {
    'i32.wrap_i64': f'{{a}} & {M32}',
    'i64.extend_i32_u': '{a}',
    'i64.extend_i32_s': f'(({{a}} ^ {_S32}) - {_S32}) & {M64}',
}

# a jump to a small block that is not a loop head emits that block in place
# (to this depth, up to this many instructions, in a function of at most
# INLINE_BODY instructions and while its code is short: a large function,
# mostly run a few times (libc's start-up, printf, malloc), costs more to
# generate and compile than inlining saves; at 20000 lines the authors'
# n-body spent three quarters of its run compiling, and with inlining up to
# 1500 lines in every function binary-trees spent half of its run there)
INLINE_DEPTH, INLINE_SIZE, INLINE_LINES, INLINE_BODY = 4, 48, 1500, 400
# the most turns of a batched loop one entry covers (a loop that runs on
# enters again: a budget check and a new iterator per BATCH turns)
BATCH = 4096
# the largest step of a local whose stores a batched loop flags as one span
# (FuncGen.spans): a larger one would flag chunks it steps over
CHUNK_STEP = 4096
# ... and while its code is under INLINE_RATIO lines per instruction of the
# function: in libc's cold code (stdio's exit flush, printf) inlining to 1500
# lines made a 169-instruction function 1556 lines, and compiling it cost
# more than its one call; the kernels stay under the ratio
INLINE_RATIO = 3
# more blocks than this in the dispatch loop: a binary-search if-tree on the
# block number instead of a chain of ``b == k`` tests
DISPATCH_CHAIN = 8
# a br_table of more distinct targets than this: its operand indexes a
# tuple of target numbers, searched by an if-tree (log2 tests; a chain of
# thousands of ``elif`` is also more nesting than CPython compiles)
BR_TABLE_CHAIN = 8
# tiering (``ready``): a function of L > COLD_SIZE instructions is compiled
# once it has been entered HOT_STEPS * L // COLD_SIZE times; a smaller one
# at once.  (150 and 3, the same L // 50 for big functions, took 3-7% off
# the apps, but the hypothesis campaign then compiled fewer of its modules'
# loops and missed the fault ``fast_count`` for 240 s, caught in ~50 s at
# 400: docs/architecture.md)
COLD_SIZE, HOT_STEPS = 400, 8
# lazy arms: a function of more than LAZY_ARMS leaders gets the dispatch
# arms of the LAZY_FIRST leaders after its entry only, and more when a jump
# misses (``grow``): libc's big functions run a few of their blocks (in
# binary-trees malloc runs 10 of its 262), and generating and compiling
# the rest cost more than the run; the kernels stay under it.  Each miss
# generates the function again, so too few at first costs too: with 8 the
# apps compiled 5986 (binary-trees) and 3039 (n-body) lines, with 32 4959
# and 2629; later 32 compiled 5114 and 2711 lines, 64 4418 and 2711
# (callgrind: binary-trees 2.6% fewer instructions in both models, n-body
# the same; 128 more than 64 again)
LAZY_ARMS, LAZY_FIRST = 16, 64
# the deepest operand stack the generator takes: the symbolic stack's
# bookkeeping (materialising, pinning, a local's or slot's old readers)
# scans the operands per instruction, so deeper stacks made generation
# quadratic (a function of 4000 constants under a call took a second, of
# 64000 minutes); compiled C code stays below 16, and a deeper function
# runs in the interpreter
MAX_HEIGHT = 128
# most steps after a call charged before it (FuncGen.precharge): a stop
# comes that much earlier per frame, and the interpreter runs the rest
PRECHARGE = 64
# f64 in the float domain: exact for every non-NaN result (a NaN result is
# recomputed by the exact operations, which give its payload)
_FBIN = {'f64.add': '+', 'f64.sub': '-', 'f64.mul': '*', 'f64.div': '/', 'f64.eq': '==',
         'f64.ne': '!=', 'f64.lt': '<', 'f64.gt': '>', 'f64.le': '<=', 'f64.ge': '>='}
_FCMP = frozenset(('f64.eq', 'f64.ne', 'f64.lt', 'f64.gt', 'f64.le', 'f64.ge'))
_FUN = {'f64.neg': '-{a}', 'f64.abs': 'abs({a})', 'f64.sqrt': 'FSQRT({a})',
        'f64.convert_i32_u': 'float({a})',
        'f64.convert_i32_s': f'float(({{a}} ^ {_S32}) - {_S32})',
        'f64.convert_i64_u': 'float({a})',
        'f64.convert_i64_s': f'float(({{a}} ^ {_S64}) - {_S64})'}
_FA = array('d', [0.0])                    # one float and its bits, shared
_QA = memoryview(_FA).cast('B').cast('Q')
_TERMINATORS = frozenset(('br', 'br_if', 'br_table', 'if', 'else', 'return', 'unreachable'))
_CALLS = frozenset(('call', 'call_indirect'))
# where straight-line code ends for Compiled.steps_to_entry
_FLOW_ENDS = _TERMINATORS | _CALLS | frozenset((
    'return_call', 'return_call_indirect', 'call_ref', 'return_call_ref', 'throw', 'throw_ref',
    'rethrow', 'try_table', 'try', 'br_on_null', 'br_on_non_null', 'br_on_cast',
    'br_on_cast_fail', 'delegate', 'catch', 'catch_all'))
# the rarer instructions run through the interpreter's closure over a list:
# name -> (values popped, values pushed)
_GENERIC = {
    'table.get': (1, 1), 'table.set': (2, 0), 'table.size': (0, 1), 'table.grow': (2, 1),
    'table.fill': (3, 0), 'table.copy': (3, 0), 'table.init': (3, 0), 'elem.drop': (0, 0),
    'data.drop': (0, 0),
}
_LOCAL = re.compile(r'^l\d+$')
_ATOM = re.compile(r'^[A-Za-z_][A-Za-z_0-9]*$|^-?\d+$|^None$')
# integer arithmetic on l*/s* variables that cannot raise (no division,
# power, call, subscript or float): evaluating it again later gives the same
# value (every digit run taken whole: with ``\d+`` free to split one, a
# failing match backtracked over every split, exponential in the digits of
# an i64 constant)
_PURE = re.compile(r'^(?!.*\*\*)(?:[ls]\d+(?!\d)|\d+(?!\d)|if|else|not|and|or|[\s()+\-*&|^~<>=!])*$')
_TOKEN = re.compile(r'@R\d+@')
# a local's new value that steps it by a constant (the forms of ``_MOD``'s
# add and sub): ``l + c``, ``(l + c) & m``, ``l + c if l < w - c else l - (w - c)``
_STEP = re.compile(r'^\(?(l\d+) ([+-]) (\d+)\)?(?: & (\d+)| if (l\d+) (<|>=) (\d+) else (l\d+) ([+-]) (\d+))?$')
# an address an f64 load's bits may be read again at (its base a name
# whose writes materialise the operand first, or none)
_REREAD = re.compile(r'^(?:([ls]\d+)(?: \+ \d+)?|\d+)$')
# instructions that never write memory (but their stores and atomics), so
# operands reading it again need not be materialised before them
_KEEPS_MEMORY = ('local.', 'global.', 'i32.', 'i64.', 'f32.', 'f64.', 'select', 'drop',
                 'ref.', 'unreachable')
_NO_REFS = frozenset()
_NO_CODE = frozenset(('nop', 'block', 'loop', 'end'))
_CONSTS = frozenset(('i32.const', 'i64.const', 'f32.const', 'f64.const', 'v128.const'))
_FLOAT = re.compile(r'^-?\d+(\.\d+)?(e[-+]\d+)?$')    # repr of a finite float


def _traps(name):
    """Numeric instructions that may trap are evaluated on their own line."""
    if name[0] != 'i':
        return False
    return ('.div_' in name or '.rem_' in name
            or ('.trunc_' in name and '_sat_' not in name))


class _E:
    """A symbolic operand: a Python expression, the l*/s* variables it
    reads, and an optional boolean form (comparisons)."""
    __slots__ = ('expr', 'refs', 'cond', 'size', 'fexpr', 'raw', 'facts')

    def __init__(self, expr, refs=frozenset(), cond=None, size=1, fexpr=None, raw=None,
                 facts=None):
        self.expr, self.refs, self.cond, self.size = expr, refs, cond, size
        self.fexpr = fexpr      # f64 only: the value as a Python float (None: not known)
        # integers: the value before its final wrap (congruent to it modulo
        # 2**width, maybe out of range or negative), for consumers that only
        # read the low bits (_MOD): one mask for a chain instead of one per op
        self.raw = raw
        # comparisons of locals: what a branch on it tells of them, as
        # (when true, when false), each ((local, least, greatest), ...)
        self.facts = facts


def _slot(q, floats=False, _made={}):
    """The operand held in slot ``s<q>`` (with its float ``g<q>``), one
    object per slot: operands are never changed in place."""
    e = _made.get((q, floats))
    if e is None:
        name = f's{q}'
        e = _made[q, floats] = _E(name, frozenset((name,)), fexpr=f'g{q}' if floats else None)
    return e


def _address(base, offset):
    """The effective address of a load or store: ``base + offset``, one
    number when the base is a constant (a static datum of the module)."""
    if base.isdigit():
        return str(int(base) + offset)
    return _p(base) if not offset else f'{_p(base)} + {offset}'


def _p(e):
    return e if _ATOM.match(e) else f'({e})'


def _step(x, name):
    """The signed step by which ``name = x`` moves local ``name`` (modulo
    2**32 or 2**64 when it may wrap), or None when it is no such step."""
    m = x is not None and _STEP.match(x)
    if not m or m.group(1) != name:
        return None
    up = m.group(2) == '+'
    c = int(m.group(3))
    mask, other = m.group(4), m.group(5)
    if mask is None and other is None:            # cannot wrap here
        return c if up else -c
    if mask is not None:
        w = int(mask) + 1
    else:                                         # the arm that wraps: l - (w - c) or l + (w - c)
        rest = int(m.group(10))
        w = rest + c
        if (other, m.group(8)) != (name, name) or (m.group(6), m.group(7), m.group(9)) != (
                ('<', str(rest), '-') if up else ('>=', str(c), '+')):
            return None
    if w not in (1 << 32, 1 << 64):
        return None
    return ((c if up else -c) + (w >> 1)) % w - (w >> 1)


class FuncGen:
    """Generates the source of one function (see the module docstring)."""

    def __init__(self, store, fi, addr, model):
        self.store, self.fi, self.addr, self.model = store, fi, addr, model
        self.present = None        # lazy arms: the leaders to generate arms for (None: all)
        self.inst = fi.module
        self.body = fi.code.body
        self.info = fi.info
        self.aligned = aligned.of(fi).address     # pc -> zero low bits of its address
        self.nparams = len(fi.type.params)
        types = list(fi.type.params) + list(fi.code.locals)
        self.f64locals = {j for j, t in enumerate(types) if t == 'f64'}
        self.gets = {}         # local -> local.get's operand (operands never change in place)
        self.nlocals = self.nparams + len(fi.code.locals)
        self.arity = len(fi.type.results)
        # where the run of ``end``s that closes the body starts
        k = len(self.body)
        while k and self.body[k - 1].op == 'end':
            k -= 1
        self.final_ends = k
        self.regions = {}      # token in a check line -> [most steps a path charges]
        self.bindings = {}     # name in the code -> (kind, module-level index), see bind()
        self.out = []          # (indent, text, tag)
        self.tag = None
        self.general = False   # uses memories.general instructions (set by build)
        # local -> (least, greatest) value it holds on the path being
        # emitted, from the branches taken to get there (``narrow``)
        self.facts = {}

    # -- control-flow analysis
    def leaders(self):
        """Leader pc -> operand height there (see the module docstring);
        found once per function and model (lazy arms generate a function
        again as it grows), like the refusal of what the generator cannot
        compile."""
        known = self.info.__dict__.setdefault('fast_leaders', {})
        key = (self.model, MAX_HEIGHT)
        lead = known.get(key)
        # (with the segments' lengths, found as they are needed)
        self.seglen = known.setdefault((key, 'segments'), {})
        if lead is None:
            try:
                if has_handlers(self.body):   # throw, try_table, legacy try: the interpreter runs it
                    raise Uncompilable('exception handling')
                lead = self._leaders()
            except Uncompilable as e:
                lead = str(e)               # (the reason, not the exception and its frames)
            known[key] = lead
        if lead.__class__ is str:
            raise Uncompilable(lead)
        return lead

    def _leaders(self):
        body, info, heights = self.body, self.info, self.info.heights
        for ins in body:
            if ins.op in _INTERPRETED:
                raise Uncompilable(ins.op)
        if info.max_height > MAX_HEIGHT:
            raise Uncompilable(f'operand stack {info.max_height} deep (the generator takes {MAX_HEIGHT})')
        lead = {0: 0}
        last = len(body) - 1

        def add(pc, h):
            old = lead.setdefault(pc, h)
            if old != h:
                raise Uncompilable(f'leader {pc}: heights {old} and {h}')

        for i, ins in enumerate(body):
            h = heights[i]
            if h < 0:
                continue
            op = ins.op
            if op in ('br', 'br_if', 'br_table'):
                for b in info.branches[i]:
                    add(self.landing(b), b.label_height + b.keep)
                if op == 'br_if':
                    add(i + 1, h - 1)
            elif op == 'if':
                add(i + 1, h - 1)
                add(self.if_false(i)[0], h - 1)
            elif op == 'else':
                add(self.else_jump(i), h)
        if any(pc > last for pc in lead):
            raise Uncompilable('leader past the end')
        return lead

    def successors(self):
        """Leader -> the leaders its block may jump to (what lazy arms
        generate next after a miss: the blocks likely to run soon)."""
        body, info, lead, last = self.body, self.info, self.lead, len(self.body) - 1
        out = {}
        for pc in lead:
            nxt, i = [], pc
            while True:
                op = body[i].op
                if info.heights[i] >= 0:
                    if op in ('br', 'br_if', 'br_table'):
                        nxt += [self.landing(b) for b in info.branches[i]]
                        if op == 'br_if':
                            nxt.append(i + 1)
                    elif op == 'if':
                        nxt += [i + 1, self.if_false(i)[0]]
                    elif op == 'else':
                        nxt.append(self.else_jump(i))
                if op in _TERMINATORS or op == 'return' or i == last:
                    break
                if i + 1 in lead:
                    nxt.append(i + 1)
                    break
                i += 1
            out[pc] = tuple(dict.fromkeys(q for q in nxt if q in lead and q != pc))
        return out

    def end_of_else(self, i):
        if not hasattr(self, '_else_if'):
            self._else_if = {e: j for j, e in self.info.else_of.items()}
        return self.info.end_of[self._else_if[i]]

    # -- the model's control flow: where branches land and what they count
    # (WasmEdge here; fast_wamr.WamrGen overrides them for WAMR's rules)
    def landing(self, b):
        """The instruction a taken branch ``b`` continues at (counted):
        the block's ``end``, or the ``loop`` itself."""
        return b.target - 1

    def if_false(self, i):
        """(pc, extra steps) of an ``if`` at ``i`` whose condition is false:
        past its ``else`` (counting it), or onto its ``end``."""
        if i in self.info.else_of:
            return self.info.else_of[i] + 1, 1
        return self.info.end_of[i], 0

    def else_jump(self, i):
        """Where an ``else`` at ``i`` reached from the then-arm continues:
        past the ``end``."""
        return self.end_of_else(i) + 1

    def loop_head(self, pc):
        """Whether leader ``pc`` starts a loop's body (hot: first in the
        dispatch chain, never emitted in place)."""
        return self.body[pc].op == 'loop'

    # -- emission
    def emit(self, ind, text, tag=None):
        self.out.append((ind, text, tag if tag is not None else self.tag))

    def generate(self):
        lead = self.lead = self.leaders()
        self.blocks = {pc: k for k, pc in enumerate(sorted(lead))}
        self.targets = set()       # blocks some arm jumps to (see dispatch)
        self.held = 0              # lines of the arms generated, not yet in out
        fi = self.fi
        params = ', '.join(f'l{j}=0' for j in range(self.nparams))
        self.emit(0, f'def F(n, d, {params}):')
        self.emit(1, 'nonlocal N')
        # the declared locals at their defaults, one chained assignment per
        # default (a -O0 C function declares hundreds: compile time)
        by_default = {}
        for j, t in enumerate(fi.code.locals, self.nparams):
            by_default.setdefault(repr(default_value(t)), []).append(f'l{j}')
            if t == 'f64':
                by_default.setdefault('0.0', []).append(f'f{j}')
        for value, names in by_default.items():
            self.emit(1, ' = '.join(names) + f' = {value}')
        if self.stores:
            self.emit(1, 'D = MI.dirty')
        # a call runs the entry block straight from the start, as a loop
        # its jumps leave with ``break``; a resume (n = -1 - budget, d =
        # (allowance, block, values)) fails the entry's budget check, which
        # raises Resume for a negative n (so a call tests nothing more), and
        # goes to the dispatch loop, which holds block 0 only if an arm
        # jumps to it (else the executor enters a frame at pc 0 by a call:
        # Compiled.defaults)
        arm = self.arm(0, lead[0], entry=True)
        self.emit(1, 'try:')
        for j in sorted(self.f64locals):      # the f64 params as floats
            if j < self.nparams:
                self.emit(2, f'QA[0] = l{j}; f{j} = FA[0]')
        out = 1 if arm and arm[0][1] == 'while True:' else 2
        first = next(k for k, (_, t, _) in enumerate(arm) if t.startswith('if n < '))
        ind, text, tag = arm[first]
        arm[first] = (ind, text.replace(': raise Stop()', ': raise Stop() if n >= 0 else Resume'), tag)
        self.out += [(i - out, t, g) for i, t, g in arm]
        self.emit(1, 'except Resume:')
        self.emit(2, 'd, b, V = d; n = -1 - n')
        L = self.nlocals
        if L:
            self.emit(2, ', '.join(f'l{j}' for j in range(L)) + f', = V[:{L}]')
        maxh = max(lead.values())
        if maxh:
            self.emit(2, f'h = len(V) - {L}')
            for j in range(maxh):
                self.emit(2, f'if h > {j}: s{j} = V[{L + j}]')
        if self.f64locals:                    # every f64 local as a float
            floats = sorted(self.f64locals)
            self.emit(2, ', '.join(f'f{j}' for j in floats)
                      + f', = FL({", ".join(f"l{j}" for j in floats)})')
        present = self.present
        if present is None:
            # the arms of the blocks some arm jumps to, from the entry's on:
            # a block no arm jumps to is entered only where it is emitted in
            # place (in each of its predecessors), so it needs no arm and is
            # no entry; a run stopped on the way to it steps in the
            # interpreter to an entry
            pcs = sorted(lead)
            arms, made = {}, set()
            while True:
                new = sorted(self.targets - made)
                if not new:
                    if self.arm0_again(arms):       # it may jump to more
                        continue
                    break
                for blk in new:
                    made.add(blk)
                    if pcs[blk]:
                        arms[pcs[blk]] = self.arm(pcs[blk], lead[pcs[blk]])
            self.dropped = {pc for pc in lead if pc and pc not in arms}
        else:
            # lazy arms: those of ``present``, less the ones no arm jumps to
            # (known once all are made: one made later, with less room to
            # emit blocks in place, may jump where another did not)
            arms = {pc: self.arm(pc, lead[pc]) for pc in sorted(lead) if pc in present}
            self.arm0_again(arms)
            self.dropped = {pc for pc in arms if pc and self.blocks[pc] not in self.targets}
            for pc in self.dropped:
                del arms[pc]
        order = [pc for pc in sorted(lead) if pc in arms]
        # lazy arms: every leader is an entry, the missing ones miss
        self.resume0 = 0 in order or present is not None
        self.missing = present is not None and len(order) < len(lead)
        if self.missing:
            self.emit(1, 'while True:')
            self.dispatch_lazy([(self.blocks[pc], arms[pc]) for pc in order], 2)
        elif not order:                     # one block: no dispatch loop
            pass
        elif len(order) <= DISPATCH_CHAIN:
            self.emit(1, 'while True:')
            # a chain, hot blocks first: loop heads, then the rest
            loops = [pc for pc in order if self.loop_head(pc)]
            order = loops + [pc for pc in order if pc not in set(loops)]
            for k, pc in enumerate(order):
                self.emit(2, f'{"if" if k == 0 else "elif"} b == {self.blocks[pc]}:')
                self.out += arms[pc]
            self.emit(2, 'else:')
            self.emit(3, 'raise RuntimeError("bad block")')
        else:
            self.emit(1, 'while True:')
            self.tree([(self.blocks[pc], arms[pc]) for pc in order], 2)
        for k, (ind, text, tag) in enumerate(self.out):    # the regions' checks
            if '@R' in text:
                self.out[k] = (ind, _TOKEN.sub(lambda m: str(self.regions[m.group(0)][0]), text), tag)

    def arm0_again(self, arms):
        """Add block 0's arm in the dispatch to ``arms`` (leader -> lines)
        if it has none and an arm jumps to it or it is a loop (a run stopped
        in it resumes at its head); True when it did."""
        if 0 in arms or not (self.blocks[0] in self.targets or self.loop_head(0)):
            return False
        arms[0] = self.arm(0, self.lead[0])
        return True

    def arm(self, pc, h, entry=False):
        """The lines of the block at leader pc (indented for a chain)."""
        start = len(self.out)
        self.block(pc, h, entry)
        arm = self.out[start:]
        del self.out[start:]
        self.held += len(arm)
        return arm

    def dispatch_lazy(self, arms, ind):
        """The dispatch with arms missing: a tree over the present arms and
        the runs of missing blocks between them, whose leaves miss."""
        leaves, nxt = [], 0
        for blk, lines in arms:
            if blk > nxt:
                leaves.append((nxt, None))
            leaves.append((blk, lines))
            nxt = blk + 1
        if nxt < len(self.lead):
            leaves.append((nxt, None))
        self.tree(leaves, ind)

    def tree(self, arms, ind):
        """Dispatch on ``b`` by binary search over the (block, lines)
        ``arms`` sorted by block: log2 tests instead of a chain's scan."""
        if len(arms) == 1:
            if arms[0][1] is None:          # missing blocks (dispatch_lazy)
                self.emit(ind, 'raise Miss(__wasm__, b)', Tag('miss', 0, 0, 0, 0, 0))
            else:
                self.out += [(i + ind - 2, t, g) for i, t, g in arms[0][1]]
            return
        mid = len(arms) // 2
        self.emit(ind, f'if b < {arms[mid][0]}:')
        self.tree(arms[:mid], ind + 1)
        self.emit(ind, 'else:')
        self.tree(arms[mid:], ind + 1)

    @property
    def stores(self):
        if not hasattr(self, '_stores'):
            self._stores = any(i.op in _STORES or i.op in ('memory.fill', 'memory.copy',
                                                            'memory.init')
                               or (i.op.startswith('v128.store')) for i in self.body)
        return self._stores

    def segment_length(self, s):
        k = self.seglen.get(s)
        if k is None:
            k = self.seglen[s] = self._segment_length(s)
        return k

    def _segment_length(self, s):
        body = self.body
        last = len(body) - 1
        i = s
        while True:
            op = body[i].op
            if op in _TERMINATORS or op in _CALLS or i == last:
                return i - s + 1
            if i + 1 in self.lead:
                return i - s + 1
            i += 1

    def block(self, pc0, h0, entry=False):
        """Emit the arm of the block at leader pc0 (a ``while True`` when it
        jumps to itself or is the ``entry``, run before the dispatch loop);
        small successors are emitted inline."""
        start = self._start = len(self.out)
        self.jumps = []           # (index in out, indent, target block)
        self.self_block = self.blocks[pc0]
        self.depth = 0
        # whether the path emitted so far tested the call allowance ``d``
        # (constant in a call): a later call on it needs no test of its own
        self.d_checked = False
        self.synced = False        # whether N holds n (just after a compiled call)
        self.region = None
        self.facts = {}            # an arm is entered from anywhere
        self.fresh = None          # the last result line (Fresh, see write_local)
        self.marks, self.wrote = [], {}    # dirty marks at locals, writes to locals (``span``)
        self.body_at(pc0, h0, 4)
        self.tag = None
        if faults.FAST_COUNT:       # the mutation check: a back-edge charged one step too many
            self.jumps = [(i, ind, t, total + 1 if t == self.self_block and total else total)
                          for i, ind, t, total in self.jumps]
        arm = self.out[start:]
        selfs = {total for _, _, t, total in self.jumps if t == self.self_block}
        # (the entry's arm is a loop its jumps leave by ``break``: none when
        # it only returns, as a leaf function does)
        looped = bool(selfs) or (entry and bool(self.jumps))
        # a loop whose every iteration charges the same K and that makes no
        # call: the turns the budget covers (BATCH at most) are counted off
        # by a C iterator that makes no int per turn (over ZB's bytes, or a
        # ``repeat`` near the budget's end), n holds the last such turn's
        # budget and a turn's own is n + K * (turns left) (``_batch_text``,
        # the jumps out, ``unwind``)
        batched = (len(selfs) == 1 and None not in selfs and 0 not in selfs
                   and not any(g and g.kind in ('call', 'reenter') for _, _, g in arm))
        if batched:
            K = selfs.pop()
            arm, spans = self.spans(arm)
            check = arm[0]
            tok = _TOKEN.search(check[1]).group(0)
            sp = bool(spans)
            many = K * (BATCH - 1)
            loop = ([(4 + sp, f'if n >= {tok} + {many}: BI = iter(ZB); n -= {many}', None),
                     (4 + sp, f'else: BI = RP(None, (n - {tok}) // {K} + 1); n = {tok} + (n - {tok}) % {K}',
                      None), (4 + sp, 'for _ in BI:', check[2])]
                    + [(i + 2 + sp, _batch_text(t, K), g and g._replace(batch=K))
                       for i, t, g in arm[1:]]
                    + [(4 + sp, 'else:', None), (5 + sp, f'n -= {K}', None),
                       (5 + sp, 'continue', None)])
            if spans:
                # the loop's stores at a stepping local flag their chunks
                # once, as a span, whichever way the loop is left
                loop = ([(4, f'z{k} = {base}', None) for k, (base, *_) in enumerate(spans)]
                        + [(4, 'try:', None)] + loop + [(4, 'finally:', None)]
                        + [(5, f'DS(D, z{k}, {base}, {lo}, {hi}, {up})', None)
                           for k, (base, lo, hi, up) in enumerate(spans)])
            self.out[start:] = [(3, 'while True:', None), (4, check[1], check[2])] + loop + [
                (4, 'break', None)]
            shift = 4 + (len(spans) + 1 if spans else 0)
        elif looped:
            self.out[start:] = [(i + 1, t, g) for i, t, g in arm]
            self.out.insert(start, (3, 'while True:', None))
            shift = 1
        else:
            shift = 0
        # resolve the jump placeholders
        for idx, jind, target, total in sorted(self.jumps, reverse=True):
            if target != self.self_block:
                self.targets.add(target)
            k = start + idx + shift
            i0, _, g = self.out[k]
            charge = [(i0, f'n -= {total}', g)] if total else []
            if batched and target != self.self_block:     # n at the turn's start
                charge = [(i0, f'n += {K} * BI.__length_hint__() - {total}', g)]
            if looped and target == self.self_block:
                repl = ([] if batched else charge) + [(i0, 'continue', g)]
            elif looped:
                repl = charge + [(i0, f'b = {target}', g), (i0, 'break', g)]
            else:
                repl = charge + [(i0, f'b = {target}', g), (i0, 'continue', g)]
            self.out[k:k + 1] = repl

    def spans(self, arm):
        """A batched loop's arm without the dirty marks of its stores at a
        local it only steps one way, by at most a chunk per write (or not
        at all), and those locals' spans: (local, offset of the first byte,
        of the last, up).  Every address such a store writes lies between
        the local's values on entering and on leaving the loop, so one span
        flagged on leaving covers them (flags mean "may be non-zero": a
        span may flag chunks no store wrote, never miss one).  Jump
        placeholders are renumbered for the lines taken out."""
        by = {}
        for base, lo, hi, lines in self.marks:
            by.setdefault(base, []).append((lo, hi, lines))
        spans, drop = [], set()
        for base, marks in by.items():
            ups = set()
            for x in self.wrote.get(base, ()):
                c = _step(x, base)
                if c is None or abs(c) > CHUNK_STEP:
                    break
                if c:
                    ups.add(c > 0)
            else:
                if len(ups) <= 1:
                    spans.append((base, min(lo for lo, _, _ in marks), max(hi for _, hi, _ in marks),
                                  ups != {False}))
                    drop.update(id(line) for _, _, lines in marks for line in lines)
        if not drop:
            return arm, []
        gone = [k for k, line in enumerate(arm) if id(line) in drop]
        self.jumps = [(i - bisect.bisect_left(gone, i), ind, t, total) for i, ind, t, total in self.jumps]
        return [line for line in arm if id(line) not in drop], spans

    def body_at(self, pc0, h0, ind, pre=None):
        """The instructions of the block at leader pc0, up to its jumps;
        ``pre``: steps charged on the path since its region's check (None:
        the block starts a region)."""
        self.st = [_slot(j) for j in range(h0)]
        pc = pc0
        body, last = self.body, len(self.body) - 1
        self.begin_segment(pc, ind, pre)
        while True:
            ins = body[pc]
            op = ins.op
            self.tag = _tag(Tag, ('instr', pc, self.seg, self.segk, len(self.st), self.pre, 0, None, 0))
            if pc == last or op == 'return':
                self.ret(ind)
                return
            if op in _TERMINATORS:
                self.terminator(pc, ins, ind)
                return
            if op in _CALLS:
                self.call(pc, ins, ind)
                if pc + 1 in self.lead:
                    self.goto(ind, pc + 1)
                    return
                pc += 1
                if self.over:                   # charged already: no check, no charge
                    self.region = [0]           # (its own, not the call's region)
                    self.begin_segment(pc, ind, -self.over)
                    self.precharged = True
                else:
                    self.begin_segment(pc, ind, None)
                continue
            self.instr(pc, ins, ind)
            if pc + 1 in self.lead:
                self.tag = _tag(Tag, ('instr', pc, self.seg, self.segk, len(self.st), self.pre, 0, None, 0))
                self.goto(ind, pc + 1)
                return
            pc += 1

    def block_size(self, pc):
        """Instructions from leader pc to its block's end (calls included)."""
        body, last = self.body, len(self.body) - 1
        i = pc
        while not (body[i].op in _TERMINATORS or i == last or i + 1 in self.lead):
            i += 1
        return i - pc + 1

    def begin_segment(self, s, ind, pre):
        """A segment: straight-line instructions up to a call, a branch or
        the next leader.  A *region* (a block's arm, the code after a call)
        starts with one budget check for all its paths: the sum of what its
        segments charge bounds any path through it.  Charges along a path
        are subtracted once, where the path leaves the region."""
        self.seg, self.segk = s, self.segment_length(s)
        if pre is None:
            self.precharged = False
            tok = f'@R{len(self.regions)}@'
            self.region = self.regions[tok] = [0]
            self.pre = 0
            self.emit(ind, f'if n < {tok}: raise Stop()',
                      Tag('stop', s, s, self.segk, len(self.st), 0))
        else:
            self.pre = pre

    def charged(self, extra=0):
        """Steps the path has taken since its region's check."""
        total = self.pre + self.segk + extra
        self.region[0] = max(self.region[0], total)
        return total

    def goto(self, ind, pc):
        """Go on at leader ``pc``: where only ``end``s are left up to the
        function's end, and the path's check covers them, the return right
        here with the operands as they are (no slot for a block's result
        just to return it); else the operands materialised and ``jump``."""
        body = self.body
        if (self.region is not None and self.blocks[pc] != self.self_block
                and pc >= self.final_ends):
            total = self.charged()
            # (precharged: only if the call's charge covered exactly these)
            if not self.precharged or total == pc - len(body):
                self.seg, self.segk, self.pre = pc, len(body) - pc, total
                self.ret(ind)
                return
        self.flush_all(ind)
        self.jump(ind, pc)

    def jump(self, ind, pc, extra=0):
        target = self.blocks[pc]
        total = None if self.region is None else self.charged(extra)
        if self.precharged:
            tail = self.tail_size(pc)
            if total and total == -tail and target != self.self_block:
                # a tail charged ahead too (precharge): in place, unchecked
                saved = (list(self.st), self.seg, self.segk, self.tag, self.pre, self.synced,
                         self.facts)
                self.depth += 1
                self.body_at(pc, self.lead[pc], ind, total)
                self.depth -= 1
                self.st, self.seg, self.segk, self.tag, self.pre, self.synced, self.facts = saved
                return
            # the end of precharged code: all charged, and the code after the
            # jump, which the check before the call does not cover, checks anew
            assert total == 0, total
            total = None
        if (target != self.self_block and self.depth < INLINE_DEPTH and len(self.body) <= INLINE_BODY
                and len(self.out) + self.held < min(INLINE_LINES, INLINE_RATIO * len(self.body))
                and not self.loop_head(pc) and self.block_size(pc) <= INLINE_SIZE):
            saved = (list(self.st), self.seg, self.segk, self.tag, self.pre, self.region,
                     self.d_checked, self.precharged, self.synced, self.facts)
            self.depth += 1
            self.body_at(pc, self.lead[pc], ind, total)
            self.depth -= 1
            (self.st, self.seg, self.segk, self.tag, self.pre, self.region,
             self.d_checked, self.precharged, self.synced, self.facts) = saved
            return
        # a placeholder line, resolved when the arm is complete (indices are
        # relative to the arm's first line)
        self.jumps.append((len(self.out) - self._start, ind, self.blocks[pc], total))
        self.emit(ind, '#jump')

    # -- the symbolic stack
    def push(self, expr, refs, cond=None, size=1, fexpr=None, raw=None, facts=None):
        e = _E(expr, refs, cond, size, fexpr, raw, facts)
        self.st.append(e)
        if size > 12 or len(expr) > 160:        # keep expressions small
            self.materialise(len(self.st) - 1, self.ind)

    def pop(self):
        return self.st.pop()

    def assign_slot(self, p, expr, ind):
        """Emit ``s<p> = expr``, first materialising pending operands that
        still read the old ``s<p>``."""
        name = f's{p}'
        for q in range(len(self.st)):
            if q != p and name in self.st[q].refs and self.st[q].expr != f's{q}':
                self.materialise(q, ind)
        self.emit(ind, f'{name} = {expr}')

    def materialise(self, q, ind):
        e = self.st[q]
        name = f's{q}'
        if e.expr == name:
            return
        self.st[q] = _slot(q, bool(e.fexpr))
        # the entry itself is now a slot; others reading s<q> must go first
        for r in range(len(self.st)):
            if r != q and name in self.st[r].refs and self.st[r].expr != f's{r}':
                self.materialise(r, ind)
        if e.fexpr:
            self.float_to_bits(f'g{q}', name, e, ind)
        else:
            self.emit(ind, f'{name} = {e.expr}')

    def float_to_bits(self, fvar, var, e, ind):
        """``fvar = e``'s float; ``var`` = its bits: those of the float
        unless it is a NaN, whose payload only the exact operations give."""
        if re.search(rf'\b{fvar}\b', e.expr):
            # the exact form reads the old float (a load's g<h>): set it last
            self.emit(ind, f'tf = {e.fexpr}')
            self.emit(ind, f'if tf == tf: FA[0] = tf; {var} = QA[0]')
            self.emit(ind, f'else: {var} = {e.expr}')
            self.emit(ind, f'{fvar} = tf')
            return
        self.emit(ind, f'{fvar} = {e.fexpr}')
        self.emit(ind, f'if {fvar} == {fvar}: FA[0] = {fvar}; {var} = QA[0]')
        self.emit(ind, f'else: {var} = {e.expr}')

    def bits(self, e, ind):
        """An expression of ``e``'s bits, evaluating float-domain values once."""
        if e.fexpr is None or _ATOM.match(e.expr):
            return e.expr
        self.ntemp = getattr(self, 'ntemp', 0) + 1
        t = f't{self.ntemp}'
        self.float_to_bits('t', t, e, ind)
        return t

    def flush_all(self, ind):
        for q in range(len(self.st)):
            self.materialise(q, ind)

    def set_result(self, expr, ind):
        """Push a value computed now (loads, calls, trapping numerics)."""
        p = len(self.st)
        self.assign_slot(p, expr, ind)
        self.fresh = Fresh(self.out[-1], f's{p}', expr, None, 1)
        self.st.append(_slot(p))

    def push_local(self, j):
        """local.get: an f64 local is the float ``f<j>`` (its bits: ``FB``)."""
        e = self.gets.get(j)
        if e is None:
            name = f'l{j}'
            e = self.gets[j] = (_E(f'FB(f{j}, {name})', frozenset((name,)), fexpr=f'f{j}')
                                if j in self.f64locals else _E(name, frozenset((name,))))
        self.st.append(e)

    def write_local(self, j, e, ind):
        """An f64 local is written as its float ``f<j>``; its bits ``l<j>``
        are written only when that is a NaN (the exact operations give the
        payload), so ``l<j>`` is stale except then (``unwind``, ``FB``)."""
        name = f'l{j}'
        for q in range(len(self.st)):
            if name in self.st[q].refs:
                self.materialise(q, ind)
        fresh = self.fresh
        taken = fresh is not None and self.out and self.out[-1] is fresh.line and \
            (e.expr if j not in self.f64locals else e.fexpr) == fresh.slot
        # what the arm writes to its locals (an f64 local's: unknown), for
        # the dirty spans of a batched loop (``span``)
        self.wrote.setdefault(name, []).append(
            None if j in self.f64locals else fresh.expr if taken else e.expr)
        facts = self.facts
        if name in facts or (name, 2) in facts or (name, 3) in facts:
            # what branches told of it is void, and its shifted names stale
            self.facts = {k: v for k, v in facts.items()
                          if k != name and not (k.__class__ is tuple and k[0] == name)}
        if taken:
            # the value was computed by the line just emitted (a load, a
            # call): that line sets the local instead of an operand slot
            # no other operand reads (-O0 C code stores every result)
            line = self.out.pop()
            if j not in self.f64locals:
                self.out.append((line[0], f'{name} = {fresh.expr}', line[2]))
            else:
                # an f64 load: its line and, unless its bits are read
                # again (``reread``), the line reading them for a NaN
                first = self.out.pop() if fresh.lines == 2 else line
                self.out.append((first[0], f'f{j} = {fresh.expr}', first[2]))
                self.out.append((line[0], f'if f{j} != f{j}: {name} = {fresh.bits}', line[2]))
        elif j not in self.f64locals:
            self.emit(ind, f'{name} = {e.expr}')
        elif e.fexpr is None:
            self.emit(ind, f'{name} = {e.expr}; QA[0] = {name}; f{j} = FA[0]')
        elif _ATOM.match(e.fexpr) and (_ATOM.match(e.expr) or e.expr == f'FB({e.fexpr}, l{e.fexpr[1:]})'):
            src = e.expr if _ATOM.match(e.expr) else f'l{e.fexpr[1:]}'
            if src != name:
                self.emit(ind, f'{name} = {src}; f{j} = {e.fexpr}')
        elif not e.refs and _FLOAT.match(e.fexpr):  # a finite constant: never a NaN
            self.emit(ind, f'f{j} = {e.fexpr}')
        elif name in e.refs:                # reads the old value: the exact form first
            self.emit(ind, f't = {e.fexpr}')
            self.emit(ind, f'if t != t: {name} = {e.expr}')
            self.emit(ind, f'f{j} = t')
        else:
            self.emit(ind, f'f{j} = {e.fexpr}')
            self.emit(ind, f'if f{j} != f{j}: {name} = {e.expr}')

    # -- instructions
    def pin(self, ind):
        """Before memory may change: materialise the operands whose exact
        form reads memory again (an f64 load's bits, see ``_REREAD``)."""
        for q, e in enumerate(self.st):
            if 'UQ(MEM, ' in e.expr:
                self.materialise(q, ind)

    def instr(self, pc, ins, ind):
        op, imm = ins.op, ins.imm
        self.ind = ind
        # the most frequent first (locals and constants keep memory and are
        # never ``memories.general``)
        if op == 'local.get':
            self.push_local(imm)
            return
        if op in _NO_CODE:
            return
        if op in _CONSTS:
            if op == 'f64.const':
                x = struct.unpack('<d', struct.pack('<Q', imm))[0]
                self.push(str(imm), frozenset(), fexpr=repr(x) if math.isfinite(x) else None)
            else:                           # (small: kept as it is)
                self.st.append(_E(str(imm), _NO_REFS))
            return
        if op == 'local.set':
            self.write_local(imm, self.pop(), ind)
            return
        if not op.startswith(_KEEPS_MEMORY) or 'atomic' in op or (
                'store' in op and op not in _STORES):   # (_STORES pin after their pops)
            self.pin(ind)
        if self.general and memories.general(self.store, self.inst, ins):
            self.memory_general(pc, ins, ind)
        elif op == 'local.tee':
            e = self.pop()
            self.write_local(imm, e, ind)
            self.push_local(imm)
        elif op in _FBIN and self.st[-1].fexpr and self.st[-2].fexpr:
            b, a = self.pop(), self.pop()
            refs, size = a.refs | b.refs, a.size + b.size + 1
            fx = (f'FDIV({a.fexpr}, {b.fexpr})' if op == 'f64.div' else
                  f'{_p(a.fexpr)} {_FBIN[op]} {_p(b.fexpr)}')
            if op in _FCMP:
                self.push(f'1 if {fx} else 0', refs, fx, size)
            else:
                f = self.numeric(op)
                self.push(f'{f}({a.expr}, {b.expr})', refs, None, size, fexpr=fx)
        elif op in _FUN and (self.st[-1].fexpr or op.startswith('f64.convert')):
            a = self.pop()
            f = self.numeric(op)
            fx = _FUN[op].format(a=_p(a.fexpr or a.expr))
            self.push(f'{f}({a.expr})', a.refs, None, a.size + 1, fexpr=fx)
        elif op == 'drop':
            self.pop()
        elif op == 'select':
            c, b, a = self.pop(), self.pop(), self.pop()
            cond = c.cond or c.expr
            self.push(f'{_p(a.expr)} if {_p(cond)} else {_p(b.expr)}', a.refs | b.refs | c.refs,
                      size=a.size + b.size + c.size)
        elif op == 'global.get':
            g = self.bind(f'G{imm}', 'global', imm)
            self.set_result(f'{g}.value', ind)
        elif op == 'global.set':
            g = self.bind(f'G{imm}', 'global', imm)
            self.emit(ind, f'{g}.value = {self.bits(self.pop(), ind)}')
        elif op in _MOD:
            b, a = self.pop(), self.pop()
            tmpl, m = _MOD[op]
            raw = tmpl.format(a=_p(a.raw or a.expr), b=_p(b.raw or b.expr))
            size = a.size + b.size + 1
            w = int(m) + 1
            if (op[4:] in ('add', 'sub') and a.raw is None and a.expr.isidentifier()
                    and b.expr.isdigit() and 0 < int(b.expr) < w):
                # a wrapped variable plus or minus a constant: one compare
                # (specialised for small ints) instead of a generic ``&``
                c, A = int(b.expr), a.expr
                least, greatest = self.bounds(A, w.bit_length() - 1)
                if op[4:] == 'add':
                    val = (f'{A} + {c}' if greatest + c < w else    # cannot wrap here
                           f'{A} + {c} if {A} < {w - c} else {A} - {w - c}')
                else:
                    val = (f'{A} - {c}' if least >= c else
                           f'{A} - {c} if {A} >= {c} else {A} + {w - c}')
                self.push(val, a.refs, None, size, raw=raw)
            else:
                self.push(f'({raw}) & {m}', a.refs | b.refs, None, size, raw=raw)
        elif op in _BITWISE and (self.st[-1].raw is not None or self.st[-2].raw is not None):
            b, a = self.pop(), self.pop()
            sym, m = _BITWISE[op]
            raw = f'{_p(a.raw or a.expr)} {sym} {_p(b.raw or b.expr)}'
            size = a.size + b.size + 1
            if sym == '&' and (a.raw is None or b.raw is None):
                # one operand in range bounds the result: no wrap needed
                self.push(raw, a.refs | b.refs, None, size)
            else:                           # one wrap for the whole chain
                self.push(f'({raw}) & {m}', a.refs | b.refs, None, size, raw=raw)
        elif op in _BIN:
            b, a = self.pop(), self.pop()
            val, cond = _BIN[op]
            A, B = _p(a.expr), _p(b.expr)
            refs, size = a.refs | b.refs, a.size + b.size + 1
            if op in _SHIFTS:                   # the count: its low bits only
                bits = _SHIFTS[op]
                B = str(int(B) & bits) if B.isdigit() else f'({_p(b.raw or b.expr)} & {bits})'
                if op.endswith('shl'):          # and so the shifted value's
                    raw = f'{_p(a.raw or a.expr)} << {B}'
                    self.push(f'({raw}) & {_MOD[op[:4] + "add"][1]}', refs, None, size, raw=raw)
                    return
                val = val.replace(f'({{b}} & {bits})', '{b}')
            if cond is not None:
                c = cond.format(a=A, b=B)
                self.push(f'1 if {c} else 0', refs, c, size, facts=self.order(op, A, B))
            else:
                self.push(val.format(a=A, b=B), refs, None, size)
        elif op in _ROTATES and _ATOM.match(self.st[-1].expr) and _ATOM.match(self.st[-2].expr) \
                and not self.st[-2].expr.startswith('-'):
            # operands read twice: atoms only (else the numeric function)
            b, a = self.pop(), self.pop()
            w, m = _ROTATES[op]
            left = op.endswith('rotl')
            A, B = a.expr, b.expr
            if B.lstrip('-').isdigit():
                k = int(B) % w if left else -int(B) % w
                val = f'(({A} << {k}) | ({A} >> {w - k})) & {m}' if k else A
            else:
                up, down = (f'{B} & {w - 1}', f'-{B} & {w - 1}')[::1 if left else -1]
                val = f'(({A} << ({up})) | ({A} >> ({down}))) & {m}'
            self.push(val, a.refs | b.refs, None, a.size + b.size + 1)
        elif op == 'i32.wrap_i64' and self.st[-1].raw is not None:
            a = self.pop()                      # the low 32 bits of the raw form
            self.push(f'{_p(a.raw)} & {M32}', a.refs, None, a.size + 1, raw=a.raw)
        elif op in _UN:
            a = self.pop()
            self.push(_UN[op].format(a=_p(a.expr)), a.refs, None, a.size + 1)
        elif op in ('i32.eqz', 'i64.eqz'):
            a = self.pop()
            c = f'not {_p(a.cond)}' if a.cond else f'not {_p(a.expr)}'
            facts = a.facts and a.facts[::-1]
            if a.cond is None and _LOCAL.match(a.expr):     # x == 0, or x >= 1
                m = M32 if op[:3] == 'i32' else M64
                facts = (((a.expr, 0, 0),), ((a.expr, 1, m),))
            self.push(f'1 if {c} else 0', a.refs, c, a.size + 1, facts=facts)
        elif op == 'ref.null':
            self.push('None', frozenset())
        elif op == 'ref.func':
            self.push(self.bind(f'RF{imm}', 'funcaddr', imm), frozenset())
        elif op == 'ref.is_null':
            a = self.pop()
            c = f'{_p(a.expr)} is None'
            if not a.refs:                      # a constant reference
                c = str(a.expr == 'None')
            self.push(f'1 if {c} else 0', a.refs, c, a.size + 1)
        elif op == 'f64.load':
            # read as a float (the float domain); its bits ``s<p>`` are read
            # too only when it is a NaN (a float may not keep the payload)
            a = self.pop()
            p = len(self.st)
            name = f's{p}'
            for q in range(p):
                if name in self.st[q].refs and self.st[q].expr != f's{q}':
                    self.materialise(q, ind)
            x, ea = self.read('d', a.expr, imm[1], ind, self.known(pc, imm[1]))
            self.emit(ind, f'g{p} = {x}')
            again = _REREAD.match(ea)
            if again:
                # its bits: the memory read again, which stays valid while
                # the operand is pending (``pin``) and its base unchanged
                self.fresh = Fresh(self.out[-1], f'g{p}', x, f'UQ(MEM, {ea})[0]', 1)
                base = frozenset((again.group(1),)) if again.group(1) else frozenset()
                self.st.append(_E(f'UQ(MEM, {ea})[0]', frozenset((name,)) | base, fexpr=f'g{p}'))
                return
            self.emit(ind, f'if g{p} != g{p}: {name} = UQ(MEM, {ea})[0]')
            self.fresh = Fresh(self.out[-1], f'g{p}', x, f'UQ(MEM, {ea})[0]', 2)
            # (``s<p>`` may be unbound: read only when a NaN)
            self.st.append(_E(f'{name} if g{p} != g{p} else FB(g{p}, 0)', frozenset((name,)),
                              fexpr=f'g{p}'))
        elif op in _LOADS:
            ch, mask = _LOADS[op]
            a = self.pop()
            x = f'MEM[{_address(a.expr, imm[1])}]' if ch == 'B' else self.read(
                ch, a.expr, imm[1], ind, self.known(pc, imm[1]))[0]
            self.set_result(x if mask is None else f'{x} & {mask}', ind)
        elif op in _STORES:
            ch, mask, w = _STORES[op]
            v, a = self.pop(), self.pop()
            self.pin(ind)
            ea = _address(a.expr, imm[1])
            if not _ATOM.match(ea):
                self.emit(ind, f'ea = {ea}')
                ea = 'ea'
            if op == 'f64.store' and v.fexpr is not None:   # a float: its bits unless a NaN
                fx = v.fexpr
                if not _ATOM.match(fx):
                    self.emit(ind, f't = {fx}')
                    fx = 't'
                last = '' if ea.isdigit() else f'; D[({ea} + 7) >> 12] = 1'
                self.emit(ind, f'if {fx} != {fx}: PQ(MEM, {ea}, {v.expr}){last}')
                crossing = self.write(ind, 'd', ea, fx, 'elif', self.known(pc, imm[1]))
            else:
                vx = self.bits(v, ind) if mask is None or v.raw is None else v.raw
                val = vx if mask is None else f'{_p(vx)} & {mask}'
                if w == 1:
                    self.emit(ind, f'MEM[{ea}] = {val}')
                    crossing = True
                else:
                    crossing = self.write(ind, ch, ea, val, known=self.known(pc, imm[1]))
            if ea.isdigit():                    # a static datum: its chunks now
                self.emit(ind, '; '.join(f'D[{c}] = 1' for c in
                                         sorted({int(ea) >> 12, (int(ea) + w - 1) >> 12})))
            else:
                self.emit(ind, f'D[{ea} >> 12] = 1')
                lines = [self.out[-1]]
                # the chunk of the last byte too, when the store crosses into
                # it (a test is cheaper than a second mark, rarely needed)
                if not crossing:
                    self.emit(ind, f'if {ea} & 4095 > {4096 - w}: D[({ea} + {w - 1}) >> 12] = 1')
                    lines.append(self.out[-1])
                if _LOCAL.match(a.expr):        # at a local plus the offset: maybe a span
                    self.marks.append((a.expr, imm[1], imm[1] + w - 1, lines))
        elif op == 'v128.load':
            a = self.pop()
            self.emit(ind, f'ea = {_p(a.expr)} + {imm[1]}')
            self.emit(ind, 'if ea + 16 > len(MEM): raise Trap(OOB)')
            self.set_result("int.from_bytes(MEM[ea:ea + 16], 'little')", ind)
        elif op == 'v128.store':
            v, a = self.pop(), self.pop()
            self.emit(ind, f'ea = {_p(a.expr)} + {imm[1]}')
            self.emit(ind, 'if ea + 16 > len(MEM): raise Trap(OOB)')
            self.emit(ind, f"MEM[ea:ea + 16] = ({v.expr}).to_bytes(16, 'little')")
            self.emit(ind, 'D[ea >> 12] = 1; D[(ea + 15) >> 12] = 1')
        elif op == 'memory.size':
            self.set_result('len(MEM) >> 16', ind)
        elif op == 'memory.grow':
            a = self.pop()
            self.set_result(f'MI.grow({a.expr}) & {M32}', ind)
        elif op in ('memory.fill', 'memory.copy'):
            c, b, a = self.pop(), self.pop(), self.pop()
            fn = 'mem_fill' if op == 'memory.fill' else 'mem_copy'
            self.emit(ind, f'{fn}(MI, {a.expr}, {b.expr}, {c.expr})')
        elif op == 'memory.init':
            c, b, a = self.pop(), self.pop(), self.pop()
            da = self.bind(f'DA{imm}', 'dataaddr', imm)
            self.emit(ind, f'mem_init(STORE, MI, MA, {da}, {a.expr}, {b.expr}, {c.expr})')
        elif op in numerics.OPS:
            f = self.numeric(op)
            sig = BY_NAME[op].sig
            k = len(sig[0])
            args = [self.pop() for _ in range(k)][::-1]
            call = f'{f}({", ".join(a.expr for a in args)})'
            if _traps(op):
                self.set_result(call, ind)
            else:
                refs = frozenset().union(*(a.refs for a in args))
                self.push(call, refs, None, sum(a.size for a in args) + 1)
        else:
            self.generic(pc, ins, ind)

    def numeric(self, op):
        """The name of numerics.OPS[op] in the generated code."""
        return self.bind(f'O_{op.replace(".", "_")}', 'numeric', op)

    def known(self, pc, offset):
        """Zero low bits of the address of the access at pc (its base's,
        ``aligned.zeros``, and its offset's)."""
        return min(self.aligned.get(pc, 0), aligned.low_zeros(offset, 64))

    def read(self, ch, base, offset, ind, known=0):
        """(expression, address) of a load of struct code ``ch`` at
        ``base + offset``: a typed view's element when the address is
        aligned (``MemInst.typed``; known when static or from ``known``,
        its zero low bits, else tested), else ``struct``.  A base that is
        no single name is computed into ``ea``."""
        ea = _address(base, offset)
        view = self.view(ch)
        if view is None:
            return f'U{ch}(MEM, {ea})[0]', ea
        w = _S[ch].size
        k = w.bit_length() - 1
        if ea.isdigit():
            a = int(ea)
            return (f'{view}[{a >> k}]' if a % w == 0 else f'U{ch}(MEM, {a})[0]'), ea
        if not _ATOM.match(base) or offset % w:
            self.emit(ind, f'ea = {ea}')
            base, offset, ea = 'ea', 0, 'ea'
        index = self.shifted(base, k, ind)
        if offset:
            index = f'{_p(index)} + {offset >> k}'
        if known >= k:
            return f'{view}[{index}]', ea
        return f'({view}[{index}] if not {base} & {w - 1} else U{ch}(MEM, {ea})[0])', ea

    def shifted(self, base, k, ind):
        """``base >> k``, a typed view's index at ``base``: for a local, a
        name set once on the path being emitted (``w<j>_<k>``, kept in
        ``facts`` under (local, k) until the local is written), as nbody's
        loads read seven fields at one base."""
        assert k in (2, 3)          # the views' element sizes (write_local's test)
        if not _LOCAL.match(base):
            return f'{base} >> {k}'
        key = (base, k)
        name = self.facts.get(key)
        if name is None:
            name = f'w{base[1:]}_{k}'
            self.emit(ind, f'{name} = {base} >> {k}')
            self.facts = dict(self.facts)
            self.facts[key] = name
        return name

    def write(self, ind, ch, ea, val, first='if', known=0):
        """The store of ``val`` with struct code ``ch`` at ``ea`` (a name or
        a number): into a typed view when aligned (known from ``known``,
        its zero low bits, or tested), else by ``struct``;
        ``first``: ``elif`` when it continues an ``if`` just emitted.
        True when the chunk of its last byte is marked dirty already (an
        aligned store stays in one chunk; the unaligned branch marks it)."""
        view = self.view(ch)
        w = _S[ch].size
        k = w.bit_length() - 1
        lead = 'else: ' if first == 'elif' else ''
        if view is None or (ea.isdigit() and int(ea) % w):
            self.emit(ind, f'{lead}P{ch}(MEM, {ea}, {val})')
            return False
        if ea.isdigit() or known >= k:
            at = int(ea) >> k if ea.isdigit() else f'{ea} >> {k}'
            self.emit(ind, f'{lead}{view}[{at}] = {val}')
        else:
            self.emit(ind, f'{first} {ea} & {w - 1}: P{ch}(MEM, {ea}, {val}); D[({ea} + {w - 1}) >> 12] = 1')
            self.emit(ind, f'else: {view}[{ea} >> {k}] = {val}')
        return True

    def view(self, ch):
        """The name of memory 0's typed view for struct code ``ch``, or None
        (no such view, or none on this host)."""
        name = _VIEWS.get(ch)
        if name is None or not TYPED_VIEWS:
            return None
        return self.bind(name, 'view', None)

    def bind(self, name, kind, arg):
        """Names the generated code reads from its namespace: store objects
        by module-level index, so one code object serves every instance."""
        self.bindings[name] = (kind, arg)
        return name

    def generic(self, pc, ins, ind):
        """Anything else (tables, drops, SIMD): the interpreter's closure over
        a list holding the operands."""
        op, imm = ins.op, ins.imm
        if op in _GENERIC:
            npop, npush = _GENERIC[op]
        elif op.startswith(('v128.', 'i8x16.', 'i16x8.', 'i32x4.', 'i64x2.', 'f32x4.', 'f64x2.')):
            from . import simd
            mi = self.store.mems[self.inst.memaddrs[0]] if self.inst.memaddrs else None
            try:
                _, params, results = simd.instruction(op, imm, mi)
            except Exception as e:
                raise Uncompilable(f'{op}: {e}')
            npop, npush = len(params), len(results)
        else:
            raise Uncompilable(op)
        g = f'X{pc}'
        self.bind(g, 'generic', (op, imm))
        args = [self.pop() for _ in range(npop)][::-1]
        # a store among them (v128.store*_lane) marks its own dirty chunks
        self.emit(ind, f'T = [{", ".join(a.expr for a in args)}]')
        self.emit(ind, f'{g}(T)')
        for j in range(npush):
            self.set_result(f'T[{j}]', ind)

    def memory_general(self, pc, ins, ind):
        """An instruction on a memory other than 0, or on a 64-bit memory or
        table (``memories.general``): the interpreter's value-level function,
        called like a generic closure on a list of the operands."""
        _, params, results = memories.instruction(self.store, self.inst, ins)
        g = self.bind(f'XM{pc}', 'memories', pc)
        args = [self.pop() for _ in params][::-1]
        self.emit(ind, f'T = [{", ".join(a.expr for a in args)}]')
        self.emit(ind, f'{g}(T)')
        for j in range(len(results)):
            self.set_result(f'T[{j}]', ind)

    def call(self, pc, ins, ind):
        inst = self.inst
        indirect = ins.op == 'call_indirect'
        if indirect:
            ft = inst.types[ins.imm[0]]
        else:
            addr = inst.funcaddrs[ins.imm]
            ft = self.store.funcs[addr].type
        np_, nr = len(ft.params), len(ft.results)
        h = len(self.st)
        below = h - np_ - (1 if indirect else 0)
        to_host = not indirect and self.store.funcs[addr].host is not None
        # operands below the call's are materialised (the callee may write
        # what they read), and so are its own unless they are _PURE: those
        # go straight into the call, and a tag gives the unwinder their
        # expressions (a Reenter before the call reads them)
        for q in range(h):
            if q < below or to_host or not _PURE.match(self.st[q].expr):
                self.materialise(q, ind)
        vals = [e.expr for e in self.st[below:]]
        given = (below, f'({"".join(v + ", " for v in vals)})') if vals and any(
            v != f's{q}' for q, v in enumerate(vals, below)) else None
        self.tag = Tag('reenter', pc, self.seg, self.segk, h, self.pre, given=given)
        if not self.d_checked:
            self.emit(ind, 'if not d: raise Reenter()')
            self.d_checked = True
        self.tag = Tag('instr', pc, self.seg, self.segk, h, self.pre, given=given)
        args = ', '.join(vals[:np_])
        if indirect:
            # the table's element list itself: tables change it in place only
            # (grow extends it, a restore assigns its slice)
            t = self.bind(f'TE{ins.imm[1]}', 'elements', ins.imm[1])
            self.bind(f'FT{pc}', 'type', ins.imm[0])
            x = vals[-1]
            k = self.bind(f'K{pc}', 'callsite', None)
            self.emit(ind, f'try: f = {k}[{t}[{x}]]')     # no such entry or not seen: indirect
            self.emit(ind, f'except LookupError: f = indirect({k}, STORE, {t}, FT{pc}, {x})')
            callee = 'f'
        else:
            fi = self.store.funcs[addr]
            if fi.host is not None:             # part of the code cache's key
                callee = None
                host = self.bind(f'H{ins.imm}', 'host', ins.imm)
            else:
                callee = self.bind(f'C{ins.imm}', 'func', ins.imm)
        self.st[below:] = []
        res = [f's{j}' for j in range(below, below + nr)]
        x = self.charged()
        if x > 0:                               # the path's charge, and the continuations'
            over = self.precharge(pc)
            if over:
                self.charged(over)              # the region's check covers them
            self.emit(ind, f'n -= {x + over}')
            self.synced = False
        else:                                   # a call in precharged continuations
            over = -x
        self.over = over
        self.region = None                      # the code after the call checks again,
        self.precharged = False                 # unless charged ahead (body_at)
        self.tag = Tag('call', pc, self.seg, self.segk, below, h, over, given)
        if callee is None:
            self.emit(ind, f'{"".join(r + ", " for r in res)}{"_ = " if not res else "= "}'
                           f'{host}([{args}])')
            self.synced = False                 # a host function may run other code
        else:
            sep = ', ' if np_ else ''
            lhs = f'{", ".join(res)} = ' if res else ''
            made = f'{callee}(n, d - 1{sep}{args}); n = N'
            self.emit(ind, lhs + made)
            self.synced = True                  # N is n
            if nr == 1:                         # a local.set next sets the local instead
                self.fresh = Fresh(self.out[-1], res[0], made, None, 1)
        for r in res:
            self.st.append(_E(r, frozenset((r,))))

    def ret(self, ind):
        res = self.st[len(self.st) - self.arity:] if self.arity else []
        vals = ', '.join(self.bits(e, ind) for e in res)
        k = self.charged()
        if k:
            self.emit(ind, f'N = n - {k}; return {vals}')
        else:                                   # a precharged continuation
            self.emit(ind, f'return {vals}' if self.synced else f'N = n; return {vals}')

    def precharge(self, pc):
        """Steps of the code after the call at pc that the call's region
        check covers and its charge subtracts before the call: the segments
        that follow it up to the next call (and on after that one), a
        return or a jump, as long as each path through them charges the
        same (no false ``if`` counting an ``else``), at most PRECHARGE.
        That code then needs no check and no subtraction of its own (one
        check and one subtraction per call of a small function).  A stop
        inside the callee is exact still: ``unwind`` adds each caller's
        precharged steps (the 'call' Tag's ``ahead``) to the budget left."""
        body, last = self.body, len(self.body) - 1
        total = 0
        s = pc + 1
        while s <= last and s not in self.lead:
            k = self.segment_length(s)
            e = s + k - 1
            op = body[e].op
            if op == 'unreachable' or (op == 'if' and self.if_false(e)[1]):
                break
            if total + k > PRECHARGE:
                break
            total += k
            if op in _CALLS:
                s = e + 1
                continue
            # a jump on to a tail (see tail_size) takes it in too
            if op == 'br':
                to = self.landing(self.info.branches[e][0])
            elif op == 'else':
                to = self.else_jump(e)
            elif op not in _TERMINATORS and e != last:
                to = e + 1                      # falls onto a leader
            else:
                break
            t = self.tail_size(to)
            if t and total + t <= PRECHARGE:
                total += t
            break
        return total

    def tail_size(self, pc):
        """The instructions of the block at leader pc if it runs straight
        to the function's return (no call, no branch, no loop head, at
        most 8), else 0: precharged code jumping there emits it in place."""
        body, last = self.body, len(self.body) - 1
        if self.loop_head(pc):
            return 0
        i = pc
        while i - pc < 8:
            op = body[i].op
            if i == last or op == 'return':
                return i - pc + 1
            if op in _CALLS or op in _TERMINATORS or i + 1 in self.lead:
                return 0
            i += 1
        return 0

    def branch_to(self, b, ind):
        """Move the kept values to the target's slots and jump."""
        land = self.landing(b)
        lh, keep = b.label_height, b.keep
        top = len(self.st)
        for q in range(top - keep, top):
            if self.st[q].fexpr:
                self.materialise(q, ind)
        kept = self.st[top - keep:] if keep else []
        dst = [f's{lh + j}' for j in range(keep)]
        srcs = [e.expr for e in kept]
        moves = [(d_, s_) for d_, s_ in zip(dst, srcs) if d_ != s_]
        if moves:
            self.emit(ind, f'{", ".join(d_ for d_, _ in moves)} = '
                           f'{", ".join(s_ for _, s_ in moves)}')
        self.jump(ind, land)

    def terminator(self, pc, ins, ind):
        op = ins.op
        info = self.info
        if op == 'unreachable':
            self.charged()                      # the region's check covers this path too
            self.emit(ind, "raise Trap('unreachable')")
        elif op == 'br':
            b = info.branches[pc][0]
            self._materialise_below(b.label_height, ind)
            self.branch_to(b, ind)
        elif op == 'br_if':
            b = info.branches[pc][0]
            c = self.pop()
            cond = c.cond or c.expr
            if any(r[0] == 's' for r in c.refs):
                # the condition reads a slot that materialising could overwrite
                self.emit(ind, f'c = {cond}')
                cond = 'c'
            # below the label: same slots on both paths; the kept values move
            # only when taken, so the rest is materialised on each side
            self._materialise_below(b.label_height, ind)
            self.emit(ind, f'if {cond}:')
            saved, facts = list(self.st), self.facts
            self.narrow(c, True)
            self.branch_to(b, ind + 1)
            self.st, self.facts = saved, facts
            self.narrow(c, False)
            self.goto(ind, pc + 1)
        elif op == 'br_table':
            brs = info.branches[pc]
            c = self.pop()
            self.emit(ind, f'i = {c.expr}')
            low = min(b.label_height for b in brs)
            self._materialise_below(low, ind)
            groups = {}
            for k, b in enumerate(brs[:-1]):
                groups.setdefault((b.target, b.keep, b.label_height), []).append(k)
            default = brs[-1]
            saved = list(self.st)
            dkey = (default.target, default.keep, default.label_height)
            if len(groups) - (dkey in groups) > BR_TABLE_CHAIN:
                self.br_table_tree(brs, groups, dkey, saved, ind)
                return
            first = True
            for key, idxs in groups.items():
                if key == dkey:
                    continue
                test = f'i == {idxs[0]}' if len(idxs) == 1 else f'i in {set(idxs)!r}'
                self.emit(ind, f'{"if" if first else "elif"} {test}:')
                first = False
                self.st = list(saved)
                self._materialise_below(key[2], ind + 1)
                self.branch_to(brs[idxs[0]], ind + 1)
            self.st = list(saved)
            if not first:
                self.emit(ind, 'else:')
                self._materialise_below(default.label_height, ind + 1)
                self.branch_to(default, ind + 1)
            else:
                self._materialise_below(default.label_height, ind)
                self.branch_to(default, ind)
        elif op == 'if':
            c = self.pop()
            cond = c.cond or c.expr
            if any(r[0] == 's' for r in c.refs):   # materialising could overwrite it
                self.emit(ind, f'c = {cond}')
                cond = 'c'
            self.flush_all(ind)
            self.emit(ind, f'if {cond}:')
            facts = self.facts
            self.narrow(c, True)
            self.jump(ind + 1, pc + 1)
            self.facts = facts
            self.narrow(c, False)
            land, extra = self.if_false(pc)
            self.jump(ind, land, extra=extra)
        elif op == 'else':
            self.goto(ind, self.else_jump(pc))

    def br_table_tree(self, brs, groups, dkey, saved, ind):
        """A br_table of many targets: ``k``, the number of the target of
        index ``i`` (from a tuple constant; the default's past the
        others; ``i`` itself when each index has a target of its own), then
        a binary search over k, each target's branch emitted once."""
        targets = [(key, idxs) for key, idxs in groups.items() if key != dkey]
        number = {key: j for j, (key, _) in enumerate(targets)}
        default = len(targets)
        table = tuple(number.get(key, default) for key in
                      ((b.target, b.keep, b.label_height) for b in brs[:-1]))
        k = 'i'
        if any(t != min(j, default) for j, t in enumerate(table)):     # (i >= default: the default)
            k = 'k'
            self.emit(ind, f'k = {table!r}[i] if i < {len(table)} else {default}')
        leaves = [(j, brs[idxs[0]]) for j, (_, idxs) in enumerate(targets)] + [(default, brs[-1])]

        def search(leaves, ind):
            if len(leaves) == 1:
                b = leaves[0][1]
                self.st = list(saved)
                self._materialise_below(b.label_height, ind)
                self.branch_to(b, ind)
                return
            mid = len(leaves) // 2
            self.emit(ind, f'if {k} < {leaves[mid][0]}:')
            search(leaves[:mid], ind + 1)
            self.emit(ind, 'else:')
            search(leaves[mid:], ind + 1)
        search(leaves, ind)
        self.st = list(saved)

    # -- what branches tell of locals (a counted loop's ``i + 1`` after
    # ``br_if (i >= n)`` cannot wrap: no wrap test)
    def bounds(self, x, width):
        """(least, greatest) of operand text ``x`` on this path."""
        if x.isdigit():
            return int(x), int(x)
        return self.facts.get(x, (0, (1 << width) - 1))

    def order(self, op, A, B):
        """The facts of an unsigned comparison ``A op B`` (``_E.facts``), or
        None: for X < Y, X is at most Y's greatest - 1 and Y at least X's
        least + 1; for X <= Y, the same without the 1."""
        kind = op[4:]
        if kind not in ('lt_u', 'le_u', 'gt_u', 'ge_u') or not (
                _LOCAL.match(A) or _LOCAL.match(B)):
            return None
        width = 32 if op[:3] == 'i32' else 64
        strict, lo, hi = {'lt_u': (1, A, B), 'le_u': (0, A, B),
                          'gt_u': (1, B, A), 'ge_u': (0, B, A)}[kind]

        def less(strict, x, y):         # x < y (strict) or x <= y
            out = []
            if _LOCAL.match(x):
                out.append((x, 0, self.bounds(y, width)[1] - strict))
            if _LOCAL.match(y):
                out.append((y, self.bounds(x, width)[0] + strict, (1 << width) - 1))
            return tuple(out)
        # when false: the converse holds with strictness swapped
        return less(strict, lo, hi), less(1 - strict, hi, lo)

    def narrow(self, c, taken):
        """The facts of the path on which condition ``c`` is ``taken``."""
        if not c.facts:
            return
        facts = dict(self.facts)
        for x, least, greatest in c.facts[0 if taken else 1]:
            old = facts.get(x)
            facts[x] = (least, greatest) if old is None else (
                max(old[0], least), min(old[1], greatest))
        self.facts = facts

    def _materialise_below(self, h, ind):
        for q in range(min(h, len(self.st))):
            self.materialise(q, ind)


@functools.lru_cache(maxsize=None)
def _turns(k):
    """The bytes a full batch of k turns iterates over (one object for
    every namespace, not one per function and instance)."""
    return bytes(k)


_NAME_N = re.compile(r"""('[^']*'|"[^"]*")|\bn\b""")


def _batch_text(text, K):
    """A line of a batched loop's turn with the budget at the turn's start
    (the last turn's plus K for each turn left) wherever it reads n (the
    turn's lines only read it: the charges of its jumps out are placed
    after, ``block``)."""
    return _NAME_N.sub(lambda m: m.group(1) or f'(n + {K} * BI.__length_hint__())', text)


def unwind(e, trapped):
    """The compiled frames on ``e``'s traceback (a ``Stop``, ``Reenter`` or
    trap raised in compiled code), outermost first, as (Compiled, pc,
    locals, operands), and the step budget left at the stop.

    A caller stands at its call (operands below the arguments); the
    innermost frame at its region start (``Stop``), before its call
    (``Reenter``) or after the trapping instruction (a trap: the steps up to
    and including it are charged; its operands are whatever the trap left).
    Each line's tag says where it is and what its path charged: on a 'call'
    line the path is charged up to and including the call, and the Tag's
    ``ahead`` more, the steps after it charged ahead (FuncGen.precharge),
    which every caller adds to the budget left; elsewhere
    ``pre`` steps of the path before the segment are not yet subtracted
    from n (see FuncGen; negative after a call that charged ahead)."""
    chain = []
    tb = e.__traceback__
    while tb is not None:
        f = tb.tb_frame
        w = f.f_globals.get('__wasm__')
        if w is not None and f.f_code is w.code:
            chain.append((w, f.f_locals, tb.tb_lineno, f.f_globals))
        tb = tb.tb_next
    if not chain:
        raise RuntimeError('compiled tier: no compiled frame on the traceback') from e
    last = len(chain) - 1
    left = None
    ahead = 0                                     # the callers' precharged steps
    out = []
    for k, (w, L, line, g) in enumerate(chain):
        tag = w.lines[line]
        kind, at, seg, segk, h, extra = tag[:6]
        if tag.batch:                             # in a batched loop: the turn's budget
            L = dict(L, n=L['n'] + tag.batch * L['BI'].__length_hint__())
        if kind == 'miss':                        # at the start of the block it jumped to
            kind = 'stop'
            at, h = w.heads[L['b']]
        done = at - seg + (1 if trapped else 0)   # steps of this segment taken
        if k < last:
            pc = at                               # a caller, at its call
            ahead += tag.ahead
        elif kind == 'call':                      # the callee trapped or is left to the interpreter
            left = L['n'] + segk - done + tag.ahead
            pc = at + 1 if trapped else at
            if not trapped:
                h = extra
        elif kind == 'stop':
            left = L['n']
            pc = at
        else:                                     # a trap, or before a call
            left = L['n'] - extra - done
            pc = at + 1 if trapped else at
        locs = [L[f'l{j}'] for j in range(w.nlocals)]
        for j in w.floats:                        # f64 locals: their floats' bits
            f = L.get(f'f{j}')
            if f is not None:
                locs[j] = fbits(f, locs[j])
        if trapped and k == last:
            operands = [L[f's{j}'] for j in range(h) if f's{j}' in L]
        elif tag.given is not None and h > tag.given[0]:
            # a call's operands given straight to it (FuncGen.call)
            below, given = tag.given
            operands = [L[f's{j}'] for j in range(below)] + list(eval(given, g, L))
        else:
            operands = [L[f's{j}'] for j in range(h)]
        out.append((w, pc, locs, operands))
    return left + ahead, out


def namespace(store, inst, bindings, c, model='wasmedge'):
    """The globals of one instance's copy of a compiled function."""
    ns = {'Trap': Trap, 'FA': _FA, 'QA': _QA, 'FB': fbits, 'FL': floats_of, 'Stop': Stop, 'Reenter': Reenter, 'Resume': Resume, 'OOB': OOB,
          'Miss': Miss,
          'FUNCS': store.funcs, 'STORE': store, 'mem_fill': mem_fill, 'mem_copy': mem_copy,
          'mem_init': mem_init, 'DS': dirty_span, 'RP': repeat, 'ZB': _turns(BATCH), 'FDIV': fdiv, 'FSQRT': fsqrt, '__wasm__': c,
          'compiled': compiled if model == 'wasmedge' else
          (lambda store, addr: compiled(store, addr, model)),
          'indirect': indirect if model == 'wasmedge' else
          (lambda site, store, elem, ft, i: indirect(site, store, elem, ft, i, model))}
    for ch, st in _S.items():
        ns['U' + ch] = st.unpack_from
        ns['P' + ch] = st.pack_into
    if inst.memaddrs:
        mi = store.mems[inst.memaddrs[0]]
        ns['MI'], ns['MEM'], ns['MA'] = mi, mi.data, inst.memaddrs[0]
    bind(ns, store, inst, bindings, c, model)
    return ns


def bind(ns, store, inst, bindings, c, model):
    """Adds to ``ns`` the names of ``bindings`` it does not have yet (a
    grown function keeps the callees its stubs have bound)."""
    mi = ns.get('MI')
    for name, (kind, arg) in bindings.items():
        if name in ns:
            continue
        if kind == 'view':                    # VI, VQ and VD at once
            mi.typed(ns)
            continue
        if kind == 'global':
            v = store.globals[inst.globaladdrs[arg]]
        elif kind == 'elements':
            v = store.tables[inst.tableaddrs[arg]].elem
        elif kind == 'type':
            v = inst.types[arg]
        elif kind == 'funcaddr':
            v = inst.funcaddrs[arg]
        elif kind == 'dataaddr':
            v = inst.dataaddrs[arg]
        elif kind == 'callsite':
            v = {}
        elif kind == 'numeric':
            v = numerics.OPS[arg]
        elif kind == 'generic':
            from .wasmedge import _generic
            v = _generic(store, inst, mi, None, arg[0], arg[1])
        elif kind == 'memories':              # the instruction at pc ``arg``
            fn, params, results = memories.instruction(
                store, inst, store.funcs[c.addr].code.body[arg])
            v = memories.stack_closure(fn, len(params), len(results))
        elif kind == 'host':
            v = store.funcs[inst.funcaddrs[arg]].host
        else:                                   # 'func'
            v = _stub(ns, name, store, inst.funcaddrs[arg], model)
        ns[name] = v


def _stub(ns, name, store, addr, model):
    """Compiles the callee on its first call and rebinds the caller's name."""
    def stub(*args):
        c = ready(store, addr, model)
        if c is None:               # cold: the interpreter makes this call
            raise Reenter()
        ns[name] = c.fn
        return c.fn(*args)
    return stub


# the runtime models with a compiled tier: model -> the FuncInst.cache key of
# its Compiled forms, and its generator (fast_wamr registers WAMR's)
CACHE = {'wasmedge': 'fast', 'wamr': 'fast:wamr'}
GENERATORS = {'wasmedge': FuncGen}


def ready(store, addr, model='wasmedge'):
    """The Compiled form of function ``addr`` if it is to run compiled
    now, else None: a function of L > COLD_SIZE instructions is compiled
    only after HOT_STEPS * L // COLD_SIZE entries (calls from compiled code,
    turns of the run loop in it: generating and compiling cost about its
    length), so big functions run a few times (start-up, printf) do not pay
    for their code."""
    fi = store.funcs[addr]
    key = CACHE[model]
    c = fi.cache.get(key)
    if c is not None:
        return c
    size = 0 if fi.host is not None else len(fi.code.body)
    if size > COLD_SIZE:
        k = 'entries:' + key
        seen = fi.cache.get(k, 0)
        if seen < HOT_STEPS * size // COLD_SIZE:
            fi.cache[k] = seen + 1
            return None
    return compiled(store, addr, model)


def settings():
    """What the generated code depends on besides the module: the
    generator's settings and the fault switch (part of its cache key)."""
    return (INLINE_DEPTH, INLINE_SIZE, INLINE_LINES, INLINE_BODY, INLINE_RATIO, DISPATCH_CHAIN,
            LAZY_ARMS, LAZY_FIRST, PRECHARGE, CHUNK_STEP, BATCH, TYPED_VIEWS, MAX_HEIGHT,
            BR_TABLE_CHAIN, faults.FAST_COUNT)


def compiled(store, addr, model='wasmedge'):
    """The cached Compiled form of function ``addr`` in ``model``
    (FuncInst.cache)."""
    fi = store.funcs[addr]
    key = CACHE[model]
    c = fi.cache.get(key)
    if c is None:
        c = fi.cache[key] = build(store, addr, model)
    return c


def build(store, addr, model='wasmedge'):
    """The Compiled form of function ``addr`` (host functions: a wrapper)."""
    fi = store.funcs[addr]
    c = Compiled()
    c.addr = addr
    c.ahead = None
    c.nparams = len(fi.type.params)
    c.arity = len(fi.type.results)
    if fi.host is not None:
        host, nr, cell = fi.host, c.arity, budget_cell(store)

        def hostcall(n, d, *args):
            r = host(list(args))
            cell.cell_contents = n
            return (r[0] if nr == 1 else tuple(r)) if nr else None
        c.fn = hostcall
        _codeless(c)
        c.nlocals = c.nparams
        return c
    c.nlocals = c.nparams + len(fi.code.locals)
    inst = fi.module
    # the code depends on the module, on which imported functions are host
    # functions and on the generator's settings (which tests change, as they
    # flip the fault switch); it is cached on the function's validation
    # info, which every instance of a decoded module shares
    key = (model, settings(), tuple(store.funcs[a].host is not None
                                    for a in inst.funcaddrs[:len(inst.module.imported('func'))]))
    cache = fi.info.__dict__.setdefault('fast_code', {})
    if key not in cache:
        cache[key] = generate(store, fi, addr, model)
    hit = cache[key]
    if hit is None:
        c.fn = interpreted
        _codeless(c)
        _fuse(store, fi, model)
        return c
    c.key, c.model = key, model
    c.defaults = [default_value(t) for t in fi.code.locals]
    facts = aligned.of(fi)
    c.facts = facts if facts.masks else None
    ns = namespace(store, inst, hit.bindings, c, model)
    exec(hit.code, ns)
    proto = ns['MAKE'](0)
    c.fn = types.FunctionType(proto.__code__, ns, 'F', proto.__defaults__,
                              (budget_cell(store),))
    adopt(c, hit)
    return c


class Code:
    """One function's generated code, shared by every instance of its
    module (cached on its validation info): the code object of ``MAKE``,
    ``entry`` (leader -> block), ``tags`` (line -> tag), ``bindings``,
    ``source``, ``floats`` (its f64 locals), ``heads`` (block -> (leader,
    height)), and for lazy arms ``present`` (the leaders it has arms for)
    and ``succ`` (leader -> its successors)."""
    __slots__ = ('code', 'entry', 'tags', 'bindings', 'source', 'floats', 'heads', 'present', 'succ')


def generate(store, fi, addr, model, present=None, succ=None):
    """The Code of function ``addr`` (None if the generator refuses it);
    a function of more than LAZY_ARMS leaders gets lazy arms: ``present``
    (first: the leaders near the entry, see ``_more``)."""
    g = GENERATORS[model](store, fi, addr, model)
    try:
        g.general = memories.uses_general(store, fi)
        if present is None:
            lead = g.lead = g.leaders()
            if len(lead) > LAZY_ARMS + 1:
                succ = g.successors()
                present = _more(set(), succ[0], succ, LAZY_FIRST)
        g.present = present
        g.generate()
    except Uncompilable:
        return None
    # F is made inside MAKE so that N is a free variable; build gives it the
    # store's cell
    out = g.out
    pad = [' ' * (4 * i + 4) for i in range(max(ind for ind, _, _ in out) + 1)]
    tags = {k: tag for k, (_, _, tag) in enumerate(out, 2) if tag is not None}
    h = Code()
    h.source = 'def MAKE(N):\n' + '\n'.join([pad[ind] + text for ind, text, _ in out]) + '\n    return F\n'
    try:
        h.code = compile(h.source, f'<wasm function {fi.idx}>', 'exec')
    except (RecursionError, MemoryError, SyntaxError):
        # more nesting than CPython's parser or compiler takes (none known
        # since br_table's chain became a tree): the interpreter runs it
        return None
    h.entry = {pc: g.blocks[pc] for pc in g.lead if (pc or g.resume0) and pc not in g.dropped}
    h.tags, h.bindings, h.floats = tags, g.bindings, tuple(sorted(g.f64locals))
    h.heads = [(pc, g.lead[pc]) for pc in sorted(g.lead)]
    h.present, h.succ = present, succ
    return h


def _more(present, start, succ, k):
    """``present`` plus the leaders ``start`` and, breadth first over
    ``succ``, what follows them; then the leaders nearest the first one in
    the code: k leaders more in all (or all there are)."""
    out, queue, added = set(present), list(start), 0
    for p in queue:
        if added >= k:
            return out
        if p not in out:
            out.add(p)
            added += 1
            queue.extend(succ[p])
    for p in sorted(succ, key=lambda q: abs(q - start[0])):
        if added >= k:
            break
        if p not in out:
            out.add(p)
            added += 1
    return out


_REFUSED = compile('def MAKE(N):\n    def F(*args, **kw):\n        N\n        raise Reenter()\n'
                   '    return F\n', '<wasm function left to the interpreter>', 'exec')


def _interpreted(store, c):
    """``c`` runs in the interpreter from now on (lazy arms met a block the
    generator refuses): its function object, which callers' namespaces
    hold, leaves every call to the interpreter as ``interpreted`` does."""
    ns = c.fn.__globals__
    exec(_REFUSED, ns)
    c.fn.__code__ = ns['MAKE'](0).__code__
    _codeless(c)
    _fuse(store, store.funcs[c.addr], c.model)


def _codeless(c):
    """``c`` has no generated code (a host function's wrapper, or a
    function the interpreter runs): no entries, lines, source or floats."""
    c.entry, c.lines, c.code, c.source, c.floats, c.defaults = {}, {}, None, None, (), None
    c.facts = None


def left_to_interpreter(fi, model):
    """Whether the compiled tier has left function ``fi`` to the
    interpreter for good (the generator refused it)."""
    c = fi.cache.get(CACHE[model])
    return c is not None and c.code is None


def _fuse(store, fi, model):
    """The interpreter's pre-decoded form of ``fi``, made without
    superinstructions while it was to be compiled (``fusion.pre_decode``),
    made again with them now that the interpreter keeps it; frames running
    the old form go on with it (the same instructions at the same places)."""
    if model in fi.cache:
        from . import fusion, wamr, wasmedge
        fi.cache[model] = fusion.pre_decode((wamr if model == 'wamr' else wasmedge).compile_func,
                                            store, fi, model, plain=False)


def adopt(c, hit):
    """Point the Compiled ``c`` (its function object already made) at the
    code of ``hit``."""
    c.code = c.fn.__code__
    c.entry, c.lines, c.source, c.floats = hit.entry, hit.tags, hit.source, hit.floats
    c.heads, c.present = hit.heads, hit.present


def grow(store, c, blk):
    """After a ``Miss`` of ``c`` at block ``blk`` (the executor has unwound
    every compiled frame): its code with that block's arm, and
    geometrically more (all of them past half), so a function misses
    O(log blocks) times; swapped into ``c``'s function object in place
    (its callers' names for it stay valid)."""
    fi = store.funcs[c.addr]
    cache = fi.info.fast_code
    hit = cache[c.key]
    pc = c.heads[blk][0]
    if hit is not None and pc not in hit.present:   # (another instance may have grown it)
        present = _more(hit.present, [pc], hit.succ, max(len(hit.present), LAZY_FIRST))
        if 2 * len(present) >= len(hit.heads):
            present = {p for p, _ in hit.heads}
        hit = cache[c.key] = generate(store, fi, c.addr, c.model, present, hit.succ)
    if hit is None:                       # a block the generator refuses: all interpreted
        _interpreted(store, c)
        return
    ns = c.fn.__globals__
    bind(ns, store, fi.module, hit.bindings, c, c.model)
    exec(hit.code, ns)
    c.fn.__code__ = ns['MAKE'](0).__code__
    adopt(c, hit)
