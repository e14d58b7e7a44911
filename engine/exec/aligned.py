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


def low_zeros(v, width=64):
    """Zero low bits of the constant ``v`` (``width`` when it is 0)."""
    return _ctz(v, width)


def _ctz(v, width):
    v &= (1 << width) - 1
    return width if v == 0 else (v & -v).bit_length() - 1


def zeros(fi):
    """The Facts of defined function ``fi`` (see the module docstring)."""
    types = list(fi.type.params) + list(fi.code.locals)
    nparams = len(fi.type.params)
    init = {j: _WIDTH[t] for j, t in enumerate(types) if t in _WIDTH and j >= nparams}
    if not init:
        return NONE
    have = dict(init)
    for _ in range(ROUNDS):
        done = _pass(fi, have)
        if done is None:
            return NONE
        got, address = done
        new = {j: min(init[j], got.get(j, init[j])) for j in init}
        if new == have:
            return Facts(have, address)
        have = new
    return NONE


def _pass(fi, have):
    """One pass over the body with the locals' facts ``have``: the least
    zero bits each local is set to, and each access's address zero bits
    (None if an instruction's effect is not the one modelled).
    The abstract stack holds zero bits per operand; after anything not
    modelled here (control flow, calls, other types) nothing is known."""
    body, heights = fi.code.body, fi.info.heights
    got, address = {}, {}
    st = []
    n = len(body)
    for i, ins in enumerate(body):
        h = heights[i]
        if h < 0:                   # unreachable code: never runs
            continue
        if len(st) != h:            # entered from unreachable code
            st = [0] * h
        op = ins.op
        t, _, name = op.partition('.')
        w = _WIDTH.get(t)
        if op == 'local.get':
            st.append(have.get(ins.imm, 0))
        elif op in ('local.set', 'local.tee'):
            j = ins.imm
            if j in have:
                got[j] = min(got.get(j, 64), st[-1])
            if op == 'local.set':
                st.pop()
        elif w and name == 'const':
            st.append(_ctz(ins.imm, w))
        elif w and name in _MIN2:
            b = st.pop()
            st[-1] = min(st[-1], b)
        elif w and name == 'mul':
            b = st.pop()
            st[-1] = min(w, st[-1] + b)
        elif w and name == 'and':
            b = st.pop()
            st[-1] = max(st[-1], b)
        elif w and name == 'shl':
            st.pop()
            prev = body[i - 1]
            k = prev.imm % w if prev.op == f'{t}.const' else 0
            st[-1] = min(w, st[-1] + k)
        elif op in ('i64.extend_i32_u', 'i64.extend_i32_s'):
            if st[-1] >= 32:
                st[-1] = 64
        elif op == 'i32.wrap_i64':
            st[-1] = min(32, st[-1])
        elif op in ('select', 'select_t'):
            st.pop()
            b = st.pop()
            st[-1] = min(st[-1], b)
        elif t in _NUMERIC and name in _UNARY or 'load' in name and t in _NUMERIC:
            if 'load' in name:
                address[i] = st[-1]
            st[-1] = 0
        elif t in _NUMERIC and 'store' in name:
            address[i] = st[-2]
            del st[-2:]
        elif t in _NUMERIC and name in _BINARY:
            st.pop()
            st[-1] = 0
        elif op in ('drop', 'global.set'):
            st.pop()
        elif op in ('global.get', 'memory.size') or t in _NUMERIC and name == 'const':
            st.append(0)
        else:                       # control flow, calls, anything else: unknown
            st = [0] * heights[i + 1] if i + 1 < n and heights[i + 1] >= 0 else []
            continue
        if i + 1 < n and heights[i + 1] >= 0 and len(st) != heights[i + 1]:
            return None             # not the effect modelled: no facts (never seen)
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
