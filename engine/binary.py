"""Binary format (spec chapter "Binary Format"): ``decode_module(bytes)``.

The decoder reads with an integer index into one ``bytes`` object.  Like the
spec's reference interpreter it does not cut the input into per-section
sub-streams: a section or function body is decoded from where it starts and
its declared size is checked afterwards ("section size mismatch").  That is
what makes the error texts agree with the testsuite's ``assert_malformed``
expectations (e.g. a body that runs into the next one reports the opcode it
meets there).

Function bodies are decoded into one flat instruction list (structured
instructions included) whose ``Instr.offset``/``end`` are byte offsets from
the first byte after the local declarations, so both runtime models can use
the same decoding: WasmEdge walks the list, WAMR walks ``body_bytes``.
"""

import contextvars
from functools import partial

from . import syntax as S
from .deftypes import storage_types
from .errors import DecodeError
from .limits import DEFAULT as DEFAULT_LIMITS
from .opcodes import OPS

MAGIC = b'\x00asm'
VERSION = b'\x01\x00\x00\x00'

EOS = 'unexpected end'
EOS_SECTION = 'unexpected end of section or function'

# value type encodings (binary/types.rst)
VALTYPES = {0x7F: S.I32, 0x7E: S.I64, 0x7D: S.F32, 0x7C: S.F64,
            0x7B: S.V128, 0x70: S.FUNCREF, 0x6F: S.EXTERNREF}
# abstract heap types (binary/types.rst): the negative s33 values as one byte
HEAPTYPES = {0x70: 'func', 0x6F: 'extern', 0x73: 'nofunc', 0x72: 'noextern',
             0x69: 'exn', 0x74: 'noexn',
             0x6E: 'any', 0x6D: 'eq', 0x6C: 'i31', 0x6B: 'struct', 0x6A: 'array', 0x71: 'none'}
# a heap type's byte alone is the nullable reference type's shorthand
REFTYPES = {b: S.reftype(S.RefType(True, h)) for b, h in HEAPTYPES.items()}
VALTYPES.update(REFTYPES)
REF_NULL, REF = 0x63, 0x64      # (ref null ht), (ref ht)
# GC's type section (binary/types.rst): rec groups, sub types, composite types
REC, SUB, SUB_FINAL = 0x4E, 0x50, 0x4F
FUNC_TYPE, STRUCT_TYPE, ARRAY_TYPE = 0x60, 0x5F, 0x5E
PACKED = {0x78: 'i8', 0x77: 'i16'}
# the composite kind of each type index while decoding a module ('func' or
# another: its concrete references get RefType.top, see syntax.value_class)
_KINDS = contextvars.ContextVar('kinds', default=None)

SECTION_NAMES = {0: 'custom', 1: 'type', 2: 'import', 3: 'function',
                 4: 'table', 5: 'memory', 6: 'global', 7: 'export',
                 8: 'start', 9: 'element', 10: 'code', 11: 'data',
                 12: 'data count', 13: 'tag'}
# the order non-custom sections must appear in (data count sits before code)
SECTION_ORDER = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8, 9: 9,
                 12: 10, 10: 11, 11: 12, 13: 5.5}     # tags: after memory, before globals
EXTERN_KINDS = ('func', 'table', 'memory', 'global', 'tag')

# opcode tables built from the shared instruction index
SINGLE = [None] * 256                  # byte -> (name, imm kind)
PREFIXED = {}                          # prefix byte -> {u32 sub-opcode: (name, imm kind)}
for _op in OPS:
    if len(_op.code) == 1:
        SINGLE[_op.code[0]] = (_op.name, _op.imm)
    else:
        PREFIXED.setdefault(_op.code[0], {})[_op.code[1]] = (_op.name, _op.imm)
del _op
# Wasm 2.0 has no exception handling: those opcodes are illegal there, and the
# 2.0 testsuite's malformed binaries rely on it (the standard is chosen per
# decode, see decode_module)
SINGLE_2 = [None if e is not None and e[0] in (
    'throw', 'throw_ref', 'try_table', 'try', 'catch', 'catch_all', 'delegate', 'rethrow',
    'ref.eq')
    else e for e in SINGLE]
_STANDARD = contextvars.ContextVar('standard', default=3)

_U32_MASK = 0xFFFFFFFF
# Implementation limit on declared locals per function (spec appendix
# "Implementation Limitations"; wasmparser uses the same bound).  Without it a
# fuzzed count near 2**32 would try to build a list of billions of entries.
MAX_LOCALS = 50000
_U64_MASK = 0xFFFFFFFFFFFFFFFF


def _fail(message, p):
    raise DecodeError(message, f'byte 0x{p:x}')


# ---------------------------------------------------------------- values

def _uN(data, p, n):
    """Unsigned LEB128 of at most n bits (binary/values.rst): too many bytes is
    "integer representation too long"; unused high bits set in the last
    possible byte is "integer too large".  Returns (value, new position)."""
    result = 0
    shift = 0
    while True:
        if n <= 0:
            _fail('integer representation too long', p)
        b = data[p]
        if n < 7 and (b & 0x7F) >= (1 << n):
            _fail('integer too large', p)
        result |= (b & 0x7F) << shift
        p += 1
        if b < 0x80:
            return result, p
        shift += 7
        n -= 7


def _sN(data, p, n):
    """Signed LEB128 of at most n bits; the unused bits of the last possible
    byte must all equal the sign bit."""
    result = 0
    shift = 0
    while True:
        if n <= 0:
            _fail('integer representation too long', p)
        b = data[p]
        if n < 7:
            mask = (-1 << (n - 1)) & 0x7F
            m = b & mask
            if m != 0 and m != mask:
                _fail('integer too large', p)
        result |= (b & 0x7F) << shift
        p += 1
        shift += 7
        if b < 0x80:
            if b & 0x40:
                result -= 1 << shift
            return result, p
        n -= 7


def _u32(data, p):
    b = data[p]
    if b < 0x80:
        return b, p + 1
    return _uN(data, p, 32)


def _len32(data, p):
    """A length or vector count: a u32 that cannot exceed the bytes left
    (checked up front so huge counts fail fast, as in the reference)."""
    n, q = _u32(data, p)
    if n > len(data) - p:
        _fail('length out of bounds', p)
    return n, q


def _bytes(data, p, n):
    q = p + n
    if q > len(data):
        raise IndexError
    return data[p:q], q


def _name(data, p):
    n, q = _len32(data, p)
    raw, q = _bytes(data, q, n)
    try:
        return raw.decode('utf-8'), q
    except UnicodeDecodeError:
        _fail('malformed UTF-8 encoding', p)


# ---------------------------------------------------------------- types

def _heaptype(data, p):
    """A heap type: an abstract one (one byte) or a type index (s33 >= 0)."""
    b = data[p]
    h = HEAPTYPES.get(b)
    if h is not None:
        return h, p + 1
    v, q = _sN(data, p, 33)
    if v < 0:
        _fail('malformed heap type', p)
    return v, q


def _ref(nullable, ht):
    """(ref null? ht), a concrete one marked with its hierarchy's top."""
    if isinstance(ht, int):
        kinds = _KINDS.get()
        if kinds is not None and ht < len(kinds) and kinds[ht] != 'func':
            return S.RefType(nullable, ht, 'any')
    return S.RefType(nullable, ht)


def _valtype(data, p):
    b = data[p]
    t = VALTYPES.get(b)
    if t is not None and t.__class__ is S.RefType and S.HEAP_TOPS.get(t.heap) in ('exn', 'any') \
            and _STANDARD.get() < 3:
        t = None                        # no exception handling nor GC in 2.0
    if t is None:
        if b == REF or b == REF_NULL:
            ht, p = _heaptype(data, p + 1)
            return _ref(b == REF_NULL, ht), p
        if b & 0x80:          # a multi-byte s7 can never be a value type
            _fail('integer representation too long', p + 1)
        _fail('malformed value type', p)
    return t, p + 1


def _reftype(data, p):
    b = data[p]
    t = REFTYPES.get(b)
    if t is None:
        if b == REF or b == REF_NULL:
            ht, p = _heaptype(data, p + 1)
            return _ref(b == REF_NULL, ht), p
        if b & 0x80:
            _fail('integer representation too long', p + 1)
        _fail('malformed reference type', p)
    return t, p + 1


def _resulttype(data, p):
    n, p = _len32(data, p)
    ts = []
    for _ in range(n):
        t, p = _valtype(data, p)
        ts.append(t)
    return tuple(ts), p


def _functype(data, p):
    b = data[p]
    if b != 0x60:
        if b & 0x80:          # s7 form: a second byte is always too long
            _fail('integer representation too long', p + 1)
        _fail('malformed function type', p)
    params, p = _resulttype(data, p + 1)
    results, p = _resulttype(data, p)
    return S.FuncType(params, results), p


def _fieldtype(data, p):
    st = PACKED.get(data[p])
    if st is None:
        st, p = _valtype(data, p)
    else:
        p += 1
    m = data[p]
    if m > 1:
        _fail('malformed mutability', p)
    return S.FieldType(st, bool(m)), p + 1


def _comptype(data, p):
    b = data[p]
    if b == STRUCT_TYPE:
        fields, p = _vec(data, p + 1, _fieldtype)
        return S.StructType(tuple(fields)), p
    if b == ARRAY_TYPE:
        f, p = _fieldtype(data, p + 1)
        return S.ArrayType(f), p
    return _functype(data, p)


def _subtype(data, p):
    """subtype ::= 0x50 vec(typeidx) comptype | 0x4F vec(typeidx) comptype
    | comptype (final, no supertype).  Returns ((final, supers), comptype)."""
    b = data[p]
    if b == SUB or b == SUB_FINAL:
        sups, p = _vec(data, p + 1, _u32)
        ct, p = _comptype(data, p)
        return (b == SUB_FINAL, tuple(sups)), ct, p
    ct, p = _comptype(data, p)
    return (True, ()), ct, p


def _typesec(data, p, m):
    """The type section: rec groups (0x4E vec(subtype)) or single subtypes,
    into ``m.types``, ``m.recs``, ``m.subs``."""
    n, p = _len32(data, p)
    types, recs, subs = [], [], {}
    gc = _STANDARD.get() >= 3
    for _ in range(n):
        if gc and data[p] == REC:
            k, p = _len32(data, p + 1)
        else:
            k = 1
            if not gc:      # 2.0: function types only
                ct, p = _functype(data, p)
                types.append(ct)
                recs.append(1)
                continue
        for _ in range(k):
            sub, ct, p = _subtype(data, p)
            if sub != (True, ()):
                subs[len(types)] = sub
            types.append(ct)
        recs.append(k)
    m.types, m.recs, m.subs = types, recs, subs
    # mark concrete references by their hierarchy, now that all kinds are known
    kinds = ['func' if isinstance(t, S.FuncType) else 'any' for t in types]
    _KINDS.set(kinds)
    if 'any' in kinds:
        for k, t in enumerate(types):
            if any(isinstance(getattr(x, 'heap', None), int) for x in storage_types(t)):
                types[k] = _retop(t, kinds)
    return p


def _retop(t, kinds):
    def fix(v):
        if isinstance(getattr(v, 'heap', None), int) and v.heap < len(kinds) \
                and kinds[v.heap] != 'func':
            return S.RefType(v.nullable, v.heap, 'any')
        return v
    if isinstance(t, S.FuncType):
        return S.FuncType(tuple(map(fix, t.params)), tuple(map(fix, t.results)))
    if isinstance(t, S.StructType):
        return S.StructType(tuple(S.FieldType(fix(f.storage), f.mut) for f in t.fields))
    return S.ArrayType(S.FieldType(fix(t.field.storage), t.field.mut))


def _limits(data, p):
    flag, p = _uN(data, p, 1)          # only 0 / 1: anything else "integer too large"
    lo, p = _u32(data, p)
    hi = None
    if flag:
        hi, p = _u32(data, p)
    return S.Limits(lo, hi), p


def _addr_limits(data, p, standard):
    """Limits and address type (Wasm 3.0: bounds are u64, flag bit 2 is
    the i64 address type of memory64/table64; flags other than 0, 1, 4, 5
    are "malformed limits flags").  Under ``standard`` 2 only 0 and 1 with
    u32 bounds exist."""
    b = data[p]
    if standard < 3:
        lim, p = _limits(data, p)
        return lim, S.I32, p
    if b & 0xFA:
        _fail('malformed limits flags', p)
    lo, p = _uN(data, p + 1, 64)       # u64 bounds; validation checks their range
    hi = None
    if b & 1:
        hi, p = _uN(data, p, 64)
    return S.Limits(lo, hi), S.I64 if b & 4 else S.I32, p


def _tabletype(data, p, standard=3):
    et, p = _reftype(data, p)
    lim, at, p = _addr_limits(data, p, standard)
    return S.TableType(lim, et, at), p


def _memtype(data, p, standard=3):
    lim, at, p = _addr_limits(data, p, standard)
    return S.MemType(lim, at), p


def _globaltype(data, p):
    t, p = _valtype(data, p)
    m = data[p]
    if m > 1:
        _fail('malformed mutability', p)
    return S.GlobalType(bool(m), t), p + 1


# ---------------------------------------------------------------- instructions

def _expr(data, p, info=None):
    """Decode instructions from p up to and including the 'end' that closes
    the expression; returns (flat instruction list, position after it).

    Offsets are relative to p.  Nesting is tracked only to find the closing
    'end' and to reject an 'else' outside an 'if' ("END opcode expected",
    since the reference stops a block at 0x05 and then demands 0x0B).
    ``info`` (a dict) gets 'uses_data' set when memory.init/data.drop occur.
    """
    base = p
    out = []
    append = out.append
    Instr = S.Instr
    single = SINGLE if _STANDARD.get() >= 3 else SINGLE_2
    blocks = []          # per open block: True if it is an 'if' still before its 'else'
    # Wasm 3.0 (multi-memory, memory64) widens memory immediates; 2.0 rules on request
    std3 = info is None or info.get('standard', 3) >= 3
    while True:
        start = p
        b = data[p]
        p += 1
        entry = single[b]
        if entry is None:
            if b in PREFIXED and (b != 0xFB or single is SINGLE):     # GC: 3.0 only
                sub, p = _u32(data, p)
                entry = PREFIXED[b].get(sub)
                if entry is None:
                    _fail(f'illegal opcode {b:02x} {sub:02x}', start)
            else:
                _fail(f'illegal opcode {b:02x}', start)
        name, kind = entry
        if kind is None:
            if b == 0x0B:
                append(Instr(name, None, start - base, p - base))
                if not blocks:
                    return out, p
                blocks.pop()
                continue
            if b == 0x05:
                if not blocks or blocks[-1] is not True:
                    _fail('END opcode expected', start)
                blocks[-1] = False
            elif b == 0x19 and (not blocks or blocks[-1] != 'try'):
                _fail('END opcode expected', start)     # catch_all outside a legacy try
            imm = None
        elif kind == 'localidx' or kind == 'labelidx' or kind == 'funcidx' \
                or kind == 'globalidx' or kind == 'tableidx' or kind == 'typeidx' \
                or kind == 'elemidx' or kind == 'dataidx':
            imm = data[p]
            if imm < 0x80:
                p += 1
            else:
                imm, p = _uN(data, p, 32)
            if kind == 'dataidx' and info is not None:
                info['uses_data'] = True
            elif b == 0x18:                   # delegate closes a legacy try
                if not blocks or blocks[-1] != 'try':
                    _fail('END opcode expected', start)
                blocks.pop()

        elif kind == 'i32':
            v = data[p]
            if v < 0x40:
                imm = v
                p += 1
            elif v < 0x80:
                imm = v + 0xFFFFFF80
                p += 1
            else:
                v, p = _sN(data, p, 32)
                imm = v & _U32_MASK
        elif kind == 'memarg':
            if std3:
                imm, p = _memarg(data, p)
            else:
                align, p = _u32(data, p)
                if align >= 32:
                    _fail('malformed memop flags', p - 1)
                offset, p = _u32(data, p)
                imm = (align, offset)
        elif kind == 'blocktype':
            v = data[p]
            if v == 0x40:
                imm = None
                p += 1
            elif v & 0xC0 == 0x40:
                imm, p = _valtype(data, p)
            else:
                v, p = _sN(data, p, 33)
                imm = v & _U32_MASK      # a negative index is out of range anyway
            blocks.append('try' if b == 0x06 else b == 0x04)
        elif kind == 'tagidx':
            imm, p = _u32(data, p)
            if b == 0x07 and (not blocks or blocks[-1] != 'try'):
                _fail('END opcode expected', start)     # catch outside a legacy try
        elif kind == 'try_table':
            v = data[p]
            if v == 0x40:
                bt = None
                p += 1
            elif v & 0xC0 == 0x40 or v == 0x63 or v == 0x64:
                bt, p = _valtype(data, p)
            else:
                v, p = _sN(data, p, 33)
                bt = v & _U32_MASK
            n, p = _len32(data, p)
            clauses = []
            for _ in range(n):
                ck = data[p]
                if ck > 3:
                    _fail('malformed catch clause', p)
                p += 1
                x = None
                if ck < 2:
                    x, p = _u32(data, p)
                label, p = _u32(data, p)
                clauses.append((ck, x, label))
            imm = (bt, tuple(clauses))
            blocks.append(False)
        elif kind == 'i64':
            v, p = _sN(data, p, 64)
            imm = v & _U64_MASK
        elif kind == 'f32':
            q = p + 4
            if q > len(data):
                raise IndexError
            imm = int.from_bytes(data[p:q], 'little')
            p = q
        elif kind == 'f64':
            q = p + 8
            if q > len(data):
                raise IndexError
            imm = int.from_bytes(data[p:q], 'little')
            p = q
        elif kind == 'br_table':
            n, p = _len32(data, p)
            labels = []
            for _ in range(n):
                x, p = _u32(data, p)
                labels.append(x)
            default, p = _u32(data, p)
            imm = (tuple(labels), default)
        elif kind == 'call_indirect':
            y, p = _u32(data, p)
            x, p = _u32(data, p)
            imm = (y, x)
        elif kind == 'memidx':
            if std3:
                imm, p = _u32(data, p)
            else:
                if data[p] != 0:
                    _fail('zero byte expected', p)
                p += 1
                imm = 0
        elif kind == 'lane':
            imm = data[p]
            p += 1
        elif kind == 'memarg_lane':
            if std3:
                imm, p = _memarg(data, p)
                imm = imm[:2] + (data[p],) + imm[2:]
            else:
                align, p = _u32(data, p)
                if align >= 32:
                    _fail('malformed memop flags', p - 1)
                offset, p = _u32(data, p)
                imm = (align, offset, data[p])
            p += 1
        elif kind == 'v128':
            q = p + 16
            if q > len(data):
                raise IndexError
            imm = int.from_bytes(data[p:q], 'little')
            p = q
        elif kind == 'shuffle':
            q = p + 16
            if q > len(data):
                raise IndexError
            imm = tuple(data[p:q])
            p = q
        elif kind == 'reftype':          # ref.null's heap type: imm is the null's type
            ht, p = _heaptype(data, p)
            imm = _ref(True, ht)
        elif kind == 'select_t':
            imm, p = _resulttype(data, p)
        elif kind == 'memory.init':
            imm, p = _u32(data, p)
            if std3:
                x, p = _u32(data, p)
                if x:
                    imm = (imm, x)      # (dataidx, memidx) for a memory other than 0
            else:
                if data[p] != 0:
                    _fail('zero byte expected', p)
                p += 1
            if info is not None:
                info['uses_data'] = True
        elif kind == 'memory.copy':
            if std3:
                x, p = _u32(data, p)
                y, p = _u32(data, p)
                imm = (x, y)
            else:
                if data[p] != 0:
                    _fail('zero byte expected', p)
                if data[p + 1] != 0:
                    _fail('zero byte expected', p + 1)
                p += 2
                imm = (0, 0)
        elif kind == 'table.init' or kind == 'table.copy' or kind == 'field' \
                or kind == 'array_fixed' or kind == 'type_data' or kind == 'type_elem' \
                or kind == 'type_type':
            x, p = _u32(data, p)
            y, p = _u32(data, p)
            imm = (x, y)
            if kind == 'type_data' and info is not None:
                info['uses_data'] = True
        elif kind == 'ref_test' or kind == 'ref_test_null':
            ht, p = _heaptype(data, p)
            imm = _ref(kind == 'ref_test_null', ht)
        elif kind == 'br_on_cast':
            flags = data[p]
            if flags > 3:
                _fail('malformed br_on_cast flags', p)
            label, p = _u32(data, p + 1)
            ht1, p = _heaptype(data, p)
            ht2, p = _heaptype(data, p)
            imm = (label, _ref(bool(flags & 1), ht1), _ref(bool(flags & 2), ht2))
        else:   # pragma: no cover - the opcode table has no other kinds
            raise AssertionError(kind)
        append(Instr(name, imm, start - base, p - base))


def _memarg(data, p):
    """Wasm 3.0 memarg: flags u32 (bit 6: a memory index follows; the
    rest, below 64, the alignment exponent), then a u64 offset.  Returns
    ((align, offset), p) for memory 0, ((align, offset, memidx), p) else."""
    flags, p = _u32(data, p)
    if flags >= 0x80:
        _fail('malformed memop flags', p - 1)
    x = 0
    if flags & 0x40:
        x, p = _u32(data, p)
    offset, p = _uN(data, p, 64)
    return ((flags & 0x3F, offset, x) if x else (flags & 0x3F, offset)), p


# ---------------------------------------------------------------- sections

def _vec(data, p, item):
    n, p = _len32(data, p)
    xs = []
    for _ in range(n):
        x, p = item(data, p)
        xs.append(x)
    return xs, p


def _import(data, p, standard=3):
    module, p = _name(data, p)
    name, p = _name(data, p)
    kind = data[p]
    p += 1
    if kind == 0:
        desc, p = _u32(data, p)
    elif kind == 1:
        desc, p = _tabletype(data, p, standard)
    elif kind == 2:
        desc, p = _memtype(data, p, standard)
    elif kind == 3:
        desc, p = _globaltype(data, p)
    elif kind == 4 and _STANDARD.get() >= 3:
        desc, p = _tag(data, p)
    else:
        _fail('malformed import kind', p - 1)
    return S.Import(module, name, EXTERN_KINDS[kind], desc), p


def _table(data, p, standard=3):
    """A table, or (3.0) 0x40 0x00 and a table with an initializer expression."""
    if data[p] == 0x40:
        if data[p + 1] != 0x00:
            _fail('malformed table', p + 1)
        tt, p = _tabletype(data, p + 2, standard)
        init, p = _expr(data, p)
        return S.Table(tt, init), p
    tt, p = _tabletype(data, p, standard)
    return S.Table(tt), p


def _mem(data, p, standard=3):
    mt, p = _memtype(data, p, standard)
    return S.Mem(mt), p


def _global(data, p):
    gt, p = _globaltype(data, p)
    init, p = _expr(data, p)
    return S.Global(gt, init), p


def _tag(data, p):
    """tag ::= 0x00 typeidx (exception handling): the attribute byte must be 0."""
    if data[p] != 0:
        _fail('malformed tag attribute', p)
    x, p = _u32(data, p + 1)
    return S.Tag(x), p


def _export(data, p):
    name, p = _name(data, p)
    kind = data[p]
    if kind > 4 or (kind == 4 and _STANDARD.get() < 3):
        _fail('malformed export kind', p)
    idx, p = _u32(data, p + 1)
    return S.Export(name, EXTERN_KINDS[kind], idx), p


def _funcref_exprs(data, p):
    """vec(funcidx) as the const exprs [ref.func x, end] (flags 0..3)."""
    n, p = _len32(data, p)
    init = []
    for _ in range(n):
        start = p
        x, p = _u32(data, p)
        init.append([S.Instr('ref.func', x, 0, p - start),
                     S.Instr('end', None, p - start, p - start + 1)])
    return init, p


# A segment of function indices holds non-null references (3.0: (ref func))
REF_FUNC = S.RefType(False, 'func')


def _elemkind(data, p):
    if data[p] != 0x00:
        _fail('malformed element kind', p)
    return REF_FUNC, p + 1


def _elem(data, p):
    """The eight element segment encodings: bit 0 passive/declarative, bit 1
    explicit table index (active) or declarative (passive), bit 2 expressions
    instead of function indices."""
    flags, p = _u32(data, p)
    if flags > 7:
        _fail('malformed elements segment kind', p - 1)
    table = 0
    offset = None
    if flags & 1 == 0:                       # active
        mode = 'active'
        if flags & 2:
            table, p = _u32(data, p)
        offset, p = _expr(data, p)
    else:
        mode = 'declarative' if flags & 2 else 'passive'
    if flags & 4:
        if flags & 3:
            et, p = _reftype(data, p)
        else:
            et = S.FUNCREF
        init, p = _vec(data, p, _expr)
    else:
        if flags & 3:
            et, p = _elemkind(data, p)
        else:
            et = REF_FUNC
        init, p = _funcref_exprs(data, p)
    return S.Elem(et, init, mode, table, offset), p


def _data(data, p):
    flags, p = _u32(data, p)
    memory = 0
    offset = None
    if flags == 0:
        mode = 'active'
        offset, p = _expr(data, p)
    elif flags == 1:
        mode = 'passive'
    elif flags == 2:
        mode = 'active'
        memory, p = _u32(data, p)
        offset, p = _expr(data, p)
    else:
        _fail('malformed data segment kind', p - 1)
    n, p = _len32(data, p)
    init, p = _bytes(data, p, n)
    return S.Data(init, mode, memory, offset), p


def _code(data, p, info):
    """One code entry: size, local declarations, body.  Returns
    (locals, body, body_bytes, position after the entry)."""
    size, p = _len32(data, p)
    entry_start = p
    n, p = _len32(data, p)
    decls = []
    total = 0
    for _ in range(n):
        count, p = _u32(data, p)
        t, p = _valtype(data, p)
        decls.append((count, t))
        total += count
    if total > _U32_MASK:
        _fail('too many locals', entry_start)
    if total > MAX_LOCALS:
        _fail('too many locals (implementation limit)', entry_start)
    locals_ = []
    for count, t in decls:
        locals_.extend([t] * count)
    body_start = p
    body, p = _expr(data, p, info)
    if p != entry_start + size:
        _fail('section size mismatch', entry_start)
    return locals_, body, data[body_start:p], p


def decode_module(data, limits=None, standard=3) -> S.Module:
    """Decode a binary module (binary/modules.rst) into a ``syntax.Module``;
    raises ``DecodeError`` with the spec testsuite's message, ``LimitError``
    for a module bigger than ``limits`` (engine/limits.py) allow.
    ``standard=2``: Wasm 2.0's binary format (no exception handling, 2.0 encodings only where
    3.0 reused bytes 2.0 rejects: limits flags, memory immediates)."""
    token = _STANDARD.set(standard)
    kinds = _KINDS.set(None)
    try:
        return _decode_module(data, limits, standard)
    finally:
        _STANDARD.reset(token)
        _KINDS.reset(kinds)


def _decode_module(data, limits, standard):
    data = bytes(data)
    limits = limits or DEFAULT_LIMITS
    limits.check('max_module_bytes', len(data), 'module size in bytes')
    if len(data) < 4:
        raise DecodeError(EOS, 'byte 0x0 (magic)')
    if data[:4] != MAGIC:
        raise DecodeError('magic header not detected', 'byte 0x0')
    if len(data) < 8:
        raise DecodeError(EOS, 'byte 0x4 (version)')
    if data[4:8] != VERSION:
        raise DecodeError('unknown binary version', 'byte 0x4')
    m = S.Module()
    functypes = []          # type indices from the function section
    codes = []
    info = {'uses_data': False, 'standard': standard}
    last = 0                # order rank of the last non-custom section
    p = 8
    end = len(data)
    sid = None
    try:
        while p < end:
            sid = data[p]
            if sid > 13 or (sid == 13 and standard == 2):
                _fail('malformed section id', p)
            if sid:
                rank = SECTION_ORDER[sid]
                if rank <= last:
                    _fail('unexpected content after last section', p)
                last = rank
            size, q = _len32(data, p + 1)
            start = q
            if sid == 0:
                name, q = _name(data, q)
                if q > start + size:
                    raise IndexError
                m.customs.append((name, data[q:start + size]))
                q = start + size
            elif sid == 1:
                q = _typesec(data, q, m)
            elif sid == 2:
                m.imports, q = _vec(data, q, partial(_import, standard=standard))
            elif sid == 3:
                functypes, q = _vec(data, q, _u32)
                limits.check('max_funcs', len(functypes) + sum(
                    imp.kind == 'func' for imp in m.imports), 'functions')
            elif sid == 4:
                m.tables, q = _vec(data, q, partial(_table, standard=standard))
            elif sid == 5:
                m.mems, q = _vec(data, q, partial(_mem, standard=standard))
                limits.check('max_memories', len(m.mems) + sum(
                    imp.kind == 'memory' for imp in m.imports), 'memories')
            elif sid == 6:
                m.globals, q = _vec(data, q, _global)
            elif sid == 7:
                m.exports, q = _vec(data, q, _export)
            elif sid == 8:
                m.start, q = _u32(data, q)
            elif sid == 9:
                m.elems, q = _vec(data, q, _elem)
            elif sid == 12:
                m.datacount, q = _u32(data, q)
            elif sid == 10:
                n, q = _len32(data, q)
                for _ in range(n):
                    c = _code(data, q, info)
                    q = c[3]
                    codes.append(c)
            elif sid == 11:
                m.datas, q = _vec(data, q, _data)
            elif sid == 13:
                m.tags, q = _vec(data, q, _tag)
            if q != start + size:
                _fail('section size mismatch', start)
            p = q
        sid = None
        if len(functypes) != len(codes):
            _fail('function and code section have inconsistent lengths', end)
        if m.datacount is not None and m.datacount != len(m.datas):
            _fail('data count and data section have inconsistent lengths', end)
        if m.datacount is None and info['uses_data']:
            _fail('data count section required', end)
    except IndexError:
        raise DecodeError(EOS_SECTION, _where(f'byte 0x{end:x}', sid)) from None
    except DecodeError as e:
        e.where = _where(e.where, sid)
        raise
    m.funcs = [S.Func(x, c[0], c[1], c[2]) for x, c in zip(functypes, codes)]
    return m


def _where(where, sid):
    if sid is None:
        return where
    return f'{where} in {SECTION_NAMES.get(sid, "unknown")} section'
