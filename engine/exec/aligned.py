"""Known alignment of integers in a function body, so the compiled tier can
index a typed view of memory without testing an address's low bits.

``zeros(fi)`` is a flow-insensitive analysis: for every integer local, a
number of low bits that are zero in every value it ever holds (its
default 0 has all of them; each ``local.set``/``local.tee`` keeps only what
the value set has), solved to a fixpoint, and for every load and store the
zero low bits of its address operand.  An address built as ``i * 56`` or
``p & -8`` then needs no test, whatever path led there.

The facts hold in every state a run of the function reaches.  A state
given from outside (a restored image) may break them: ``Facts.keeps``
says whether a frame's values do, and the executor interprets the frame
when they do not.
"""

_WIDTH = {'i32': 32, 'i64': 64}
_MIN2 = frozenset(('add', 'sub', 'or', 'xor'))
ROUNDS = 6          # fixpoint rounds before giving up (no facts at all)


class Facts:
    """``locals``: local index -> zero low bits (only the nonzero ones);
    ``address``: pc of a load/store -> zero low bits of its address."""
    __slots__ = ('locals', 'address', 'masks')

    def __init__(self, local_zeros, address):
        self.locals = {j: z for j, z in local_zeros.items() if z}
        self.address = address
        # what a frame's value of each such local must not have set
        self.masks = tuple((j, (1 << min(z, 64)) - 1) for j, z in sorted(self.locals.items()))

    def keeps(self, values):
        """Whether the locals in ``values`` (a frame's, locals first) have
        the zero low bits the facts say."""
        for j, m in self.masks:
            v = values[j]
            if v.__class__ is int and v & m:
                return False
        return True


NONE = Facts({}, {})


def of(fi):
    """``zeros(fi)``, cached on its validation info (shared by every
    instance of the module, as the code is)."""
    cache = fi.info.__dict__
    f = cache.get('aligned')
    if f is None:
        f = cache['aligned'] = zeros(fi)
    return f


def low_zeros(v, width):
    """Zero low bits of the ``width``-bit constant ``v`` (``width`` when it
    is 0)."""
    v &= (1 << width) - 1
    return width if v == 0 else (v & -v).bit_length() - 1


def zeros(fi):
    """The Facts of defined function ``fi`` (see the module docstring)."""
    types = list(fi.type.params) + list(fi.code.locals)
    nparams = len(fi.type.params)
    init = {j: _WIDTH[t] for j, t in enumerate(types) if t in _WIDTH and j >= nparams}
    if not init:
        return NONE
    prog = _compact(fi)
    if prog is None:
        return NONE
    have = dict(init)
    for _ in range(ROUNDS):
        got, address = _pass(prog, have)
        new = {j: min(init[j], got.get(j, init[j])) for j in init}
        if not any(new.values()):           # the optimistic pass kept nothing
            return NONE
        if new == have:
            return Facts(have, address)
        have = new
    return NONE


# the instruction kinds of the compact form (_compact): what each does to
# the abstract stack of zero bits
(GET, SET, TEE, CONST, MIN2, MUL, AND, SHL, EXTEND, WRAP, SELECT, UNARY, LOAD, STORE,
 BINARY, POP, PUSH, FORGET) = range(18)


def _compact(fi):
    """The body as (kind, argument, height before, pc) for ``_pass``, the
    unreachable instructions left out (they never run); None if an
    instruction's operand count is not what validation says."""
    body, heights = fi.code.body, fi.info.heights
    n = len(body)
    prog = []
    for i, ins in enumerate(body):
        h = heights[i]
        if h < 0:
            continue
        after = heights[i + 1] if i + 1 < n else -1
        op = ins.op
        t, _, name = op.partition('.')
        w = _WIDTH.get(t)
        arg, delta = None, None
        if op == 'local.get':
            kind, arg, delta = GET, ins.imm, 1
        elif op == 'local.set':
            kind, arg, delta = SET, ins.imm, -1
        elif op == 'local.tee':
            kind, arg, delta = TEE, ins.imm, 0
        elif w and name == 'const':
            kind, arg, delta = CONST, low_zeros(ins.imm, w), 1
        elif w and name in _MIN2:
            kind, delta = MIN2, -1
        elif w and name == 'mul':
            kind, arg, delta = MUL, w, -1
        elif w and name == 'and':
            kind, delta = AND, -1
        elif w and name == 'shl':
            prev = body[i - 1]
            kind, arg, delta = SHL, (w, prev.imm % w if prev.op == f'{t}.const' else 0), -1
        elif op in ('i64.extend_i32_u', 'i64.extend_i32_s'):
            kind, delta = EXTEND, 0
        elif op == 'i32.wrap_i64':
            kind, delta = WRAP, 0
        elif op in ('select', 'select_t'):
            kind, delta = SELECT, -2
        elif t in _NUMERIC and 'load' in name:
            kind, delta = LOAD, 0
        elif t in _NUMERIC and name in _UNARY:
            kind, delta = UNARY, 0
        elif t in _NUMERIC and 'store' in name:
            kind, delta = STORE, -2
        elif t in _NUMERIC and name in _BINARY:
            kind, delta = BINARY, -1
        elif op in ('drop', 'global.set'):
            kind, delta = POP, -1
        elif op in ('global.get', 'memory.size') or t in _NUMERIC and name == 'const':
            kind, delta = PUSH, 1
        else:                       # control flow, calls, anything else: unknown
            kind, arg = FORGET, max(after, 0)
        if delta is not None and after >= 0 and h + delta != after:
            return None             # not the effect modelled: no facts (never seen)
        prog.append((kind, arg, h, i))
    return prog


def _pass(prog, have):
    """One pass over the compact body with the locals' facts ``have``:
    the least zero bits each local is set to, and each access's address
    zero bits.  The abstract stack holds zero bits per operand; after
    anything not modelled here (control flow, calls, other types) nothing
    is known."""
    got, address = {}, {}
    st = []
    for kind, arg, h, i in prog:
        if len(st) != h:            # entered from unreachable code
            st = [0] * h
        if kind == GET:
            st.append(have.get(arg, 0))
        elif kind == SET or kind == TEE:
            if arg in have:
                v = st[-1]
                if v < got.get(arg, 64):
                    got[arg] = v
            if kind == SET:
                st.pop()
        elif kind == CONST:
            st.append(arg)
        elif kind == LOAD:
            address[i] = st[-1]
            st[-1] = 0
        elif kind == STORE:
            address[i] = st[-2]
            del st[-2:]
        elif kind == BINARY:
            st.pop()
            st[-1] = 0
        elif kind == MIN2:
            b = st.pop()
            if b < st[-1]:
                st[-1] = b
        elif kind == MUL:
            b = st.pop()
            st[-1] = min(arg, st[-1] + b)
        elif kind == AND:
            b = st.pop()
            if b > st[-1]:
                st[-1] = b
        elif kind == SHL:
            st.pop()
            st[-1] = min(arg[0], st[-1] + arg[1])
        elif kind == EXTEND:
            if st[-1] >= 32:
                st[-1] = 64
        elif kind == WRAP:
            if st[-1] > 32:
                st[-1] = 32
        elif kind == SELECT:
            st.pop()
            b = st.pop()
            if b < st[-1]:
                st[-1] = b
        elif kind == UNARY:
            st[-1] = 0
        elif kind == POP:
            st.pop()
        elif kind == PUSH:
            st.append(0)
        else:
            st = [0] * arg
    return got, address


_NUMERIC = frozenset(('i32', 'i64', 'f32', 'f64'))
_UNARY = frozenset((
    'clz', 'ctz', 'popcnt', 'eqz', 'abs', 'neg', 'sqrt', 'ceil', 'floor', 'trunc', 'nearest',
    'wrap_i64', 'extend_i32_s', 'extend_i32_u', 'extend8_s', 'extend16_s', 'extend32_s',
    'trunc_f32_s', 'trunc_f32_u', 'trunc_f64_s', 'trunc_f64_u', 'trunc_sat_f32_s',
    'trunc_sat_f32_u', 'trunc_sat_f64_s', 'trunc_sat_f64_u', 'convert_i32_s', 'convert_i32_u',
    'convert_i64_s', 'convert_i64_u', 'demote_f64', 'promote_f32', 'reinterpret_f32',
    'reinterpret_f64', 'reinterpret_i32', 'reinterpret_i64'))
_BINARY = frozenset((
    'add', 'sub', 'mul', 'div', 'div_s', 'div_u', 'rem_s', 'rem_u', 'and', 'or', 'xor', 'shl',
    'shr_s', 'shr_u', 'rotl', 'rotr', 'eq', 'ne', 'lt', 'lt_s', 'lt_u', 'gt', 'gt_s', 'gt_u',
    'le', 'le_s', 'le_u', 'ge', 'ge_s', 'ge_u', 'min', 'max', 'copysign'))
