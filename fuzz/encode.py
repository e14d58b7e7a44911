"""A small binary encoder for ``engine.syntax.Module`` (spec "Binary Format").

The fuzz generator builds modules as syntax objects and encodes them here
directly: emitting bytes is much faster than going through the text format,
and keeps the generator independent of the engine's own decoder (which is
one of the things under test).
"""

import itertools
import struct

from engine import opcodes, syntax

VALTYPE_BYTE = {
    syntax.I32: 0x7F, syntax.I64: 0x7E, syntax.F32: 0x7D, syntax.F64: 0x7C,
    syntax.V128: 0x7B, syntax.FUNCREF: 0x70, syntax.EXTERNREF: 0x6F, syntax.EXNREF: 0x69,
}
# a GC field's packed storage types (binary/types.rst "Composite Types")
PACKED_BYTE = {'i8': 0x78, 'i16': 0x77}
EXTERN_KIND_BYTE = {'func': 0, 'table': 1, 'memory': 2, 'global': 3, 'tag': 4}
# abstract heap types (Wasm 3.0 binary/types.rst "Heap Types"); a concrete
# type index is its s33
HEAPTYPE_BYTE = {'func': 0x70, 'extern': 0x6F, 'exn': 0x69, 'nofunc': 0x73, 'noextern': 0x72,
                 'noexn': 0x74,
                 'any': 0x6E, 'eq': 0x6D, 'i31': 0x6C, 'struct': 0x6B, 'array': 0x6A, 'none': 0x71}


def u32(n):
    """Unsigned LEB128 (spec: binary/values "Integers")."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def sleb(n):
    """Signed LEB128; ``n`` is a Python int of either sign."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if (n == 0 and not b & 0x40) or (n == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def signed(bits, n):
    """Reinterpret an unsigned bit pattern of width ``bits`` as signed."""
    n &= (1 << bits) - 1
    return n - (1 << bits) if n >> (bits - 1) else n


def vec(items):
    """A vector: length then the already-encoded items."""
    items = list(items)
    return u32(len(items)) + b''.join(items)


def name(s):
    data = s.encode('utf-8')
    return u32(len(data)) + data


def heaptype(h):
    return sleb(h) if isinstance(h, int) else bytes([HEAPTYPE_BYTE[h]])


def valtype(t):
    b = VALTYPE_BYTE.get(t)
    if b is not None:
        return bytes([b])
    if t.nullable and t.heap in HEAPTYPE_BYTE:
        return bytes([HEAPTYPE_BYTE[t.heap]])      # anyref, eqref, ...: the one-byte shorthand
    # (ref null? ht) without a one-byte abbreviation (typed function references)
    return (b'\x63' if t.nullable else b'\x64') + heaptype(t.heap)


def limits(lim, at='i32'):
    """Limits; flag 0x04 marks a 64-bit memory or table (memory64/table64)."""
    wide = 0x04 if at == 'i64' else 0
    if lim.max is None:
        return bytes([wide]) + u32(lim.min)
    return bytes([1 | wide]) + u32(lim.min) + u32(lim.max)


def blocktype(bt):
    if bt is None:
        return b'\x40'
    if isinstance(bt, str):
        return valtype(bt)
    return sleb(bt)          # type index as s33


def _memarg(align, offset, mem):
    if mem:
        return u32(align | 0x40) + u32(mem) + u32(offset)
    return u32(align) + u32(offset)


def _imm(kind, imm):
    """Encode the immediates of one instruction by its opcodes.py kind."""
    if kind is None:
        return b''
    if kind == 'blocktype':
        return blocktype(imm)
    if kind == 'try_table':
        bt, clauses = imm
        return blocktype(bt) + vec(bytes([k]) + (u32(x) if k < 2 else b'') + u32(label)
                                   for k, x, label in clauses)
    if kind in ('tagidx', 'labelidx', 'funcidx', 'localidx', 'globalidx', 'tableidx', 'typeidx',
                'elemidx', 'dataidx'):
        return u32(imm)
    if kind == 'br_table':
        labels, default = imm
        return vec(u32(l) for l in labels) + u32(default)
    if kind in ('call_indirect', 'table.copy', 'table.init'):
        return u32(imm[0]) + u32(imm[1])
    if kind == 'memidx':
        return u32(imm or 0)
    if kind == 'memory.copy':
        return u32(imm[0]) + u32(imm[1])
    if kind == 'memory.init':
        return u32(imm) + b'\x00' if isinstance(imm, int) else u32(imm[0]) + u32(imm[1])
    if kind == 'memarg':            # (align, offset[, memidx]): flag 0x40 when a memory index follows
        return _memarg(imm[0], imm[1], imm[2] if len(imm) > 2 else 0)
    if kind == 'memarg_lane':
        return _memarg(imm[0], imm[1], imm[3] if len(imm) > 3 else 0) + bytes([imm[2]])
    if kind == 'i32':
        return sleb(signed(32, imm))
    if kind == 'i64':
        return sleb(signed(64, imm))
    if kind == 'f32':
        return struct.pack('<I', imm)
    if kind == 'f64':
        return struct.pack('<Q', imm)
    if kind == 'v128':
        return imm.to_bytes(16, 'little')
    if kind == 'reftype':            # ref.null's heap type (imm: the null's type)
        return heaptype(syntax.reftype(imm).heap)
    if kind in ('field', 'array_fixed', 'type_type', 'type_elem', 'type_data'):     # GC: two indices / counts
        return u32(imm[0]) + u32(imm[1])
    if kind == 'ref_test':           # ref.test / ref.cast: the target's heap type
        return heaptype(imm.heap)
    if kind == 'br_on_cast':         # (label, source, target): nullability in the flags byte
        label, t1, t2 = imm
        return bytes([int(t1.nullable) | int(t2.nullable) << 1]) + u32(label) \
            + heaptype(t1.heap) + heaptype(t2.heap)
    if kind == 'select_t':
        return vec(valtype(t) for t in imm)
    if kind == 'shuffle':
        return bytes(imm)
    if kind == 'lane':
        return bytes([imm])
    raise ValueError(f'unknown immediate kind {kind!r}')


_OPCODE_BYTES = {}
for _op in opcodes.OPS:
    _key = 'select_t' if _op is opcodes.SELECT_T else _op.name
    _code = _op.code
    _OPCODE_BYTES[_key] = (bytes([_code[0]]) if len(_code) == 1
                           else bytes([_code[0]]) + u32(_code[1]), _op.imm)


# ref.test / ref.cast have two opcodes each: the target (ref ht) or (ref null ht)
_OPCODE_BYTES['ref.test'] = (b'\xfb' + u32(20), 'ref_test')
_OPCODE_BYTES['ref.cast'] = (b'\xfb' + u32(22), 'ref_test')
_NULL_TARGET = {'ref.test': (b'\xfb' + u32(21), 'ref_test'),
                'ref.cast': (b'\xfb' + u32(23), 'ref_test')}


def instr(op, imm=None):
    """Encode one instruction given by text name (typed select: a tuple imm)."""
    if op == 'select' and imm:
        op = 'select_t'
    if op in _NULL_TARGET and imm.nullable:
        code, kind = _NULL_TARGET[op]
    else:
        code, kind = _OPCODE_BYTES[op]
    return code + _imm(kind, imm)


def expr(instrs):
    """Encode an instruction sequence (syntax.Instr or (op, imm) pairs);
    appends the final ``end`` if it is missing."""
    out = bytearray()
    last = None
    for ins in instrs:
        if isinstance(ins, syntax.Instr):
            op, imm = ins.op, ins.imm
        else:
            op, imm = ins
        out += instr(op, imm)
        last = op
    if last != 'end':
        out += b'\x0b'
    return bytes(out)


def functype(ft):
    return b'\x60' + vec(valtype(t) for t in ft.params) + vec(valtype(t) for t in ft.results)


def fieldtype(f):
    st = PACKED_BYTE.get(f.storage)
    return (bytes([st]) if st is not None else valtype(f.storage)) + bytes([int(f.mut)])


def comptype(ct):
    """A composite type: func, struct (0x5F) or array (0x5E)."""
    if isinstance(ct, syntax.StructType):
        return b'\x5f' + vec(fieldtype(f) for f in ct.fields)
    if isinstance(ct, syntax.ArrayType):
        return b'\x5e' + fieldtype(ct.field)
    return functype(ct)


def subtype(ct, sub):
    """A type with its subtype declaration (``Module.subs``): the bare
    composite type when final without supertypes, else 0x50 (open) or
    0x4F (final) and the supertypes."""
    if sub is None or sub == (True, ()):
        return comptype(ct)
    final, sups = sub
    return (b'\x4f' if final else b'\x50') + vec(u32(x) for x in sups) + comptype(ct)


def typesec(m):
    """The type section's entries: one per rec group (``Module.recs``; a
    group of one is the bare subtype, a larger one 0x4E and its types;
    types past the listed groups, interned later, are groups of one)."""
    recs = list(m.recs)
    recs += [1] * (len(m.types) - sum(recs))
    out, i = [], 0
    for n in recs:
        group = [subtype(m.types[k], m.subs.get(k)) for k in range(i, i + n)]
        out.append(group[0] if n == 1 else b'\x4e' + vec(group))
        i += n
    return out


def _section(sid, payload):
    return bytes([sid]) + u32(len(payload)) + payload


def _locals(types):
    """Compress declared locals into runs of equal type."""
    runs = ((sum(1 for _ in run), t) for t, run in itertools.groupby(types))
    return vec(u32(n) + valtype(t) for n, t in runs)


def _elem(seg):
    inits = vec(expr(e) for e in seg.init)
    if seg.mode == 'active':
        if seg.table == 0 and seg.type == syntax.FUNCREF:
            funcs = [e[0].imm for e in seg.init if len(e) == 2 and e[0].op == 'ref.func']
            if len(funcs) == len(seg.init):
                # the MVP form, the only one engines without reference types read
                return u32(0) + expr(seg.offset) + vec(u32(f) for f in funcs)
            return u32(4) + expr(seg.offset) + inits
        return u32(6) + u32(seg.table) + expr(seg.offset) + valtype(seg.type) + inits
    if seg.mode == 'passive':
        return u32(5) + valtype(seg.type) + inits
    return u32(7) + valtype(seg.type) + inits


def _data(seg):
    body = u32(len(seg.init)) + seg.init
    if seg.mode == 'active':
        if seg.memory == 0:
            return u32(0) + expr(seg.offset) + body
        return u32(2) + u32(seg.memory) + expr(seg.offset) + body
    return u32(1) + body


def _importdesc(imp):
    if imp.kind == 'func':
        return b'\x00' + u32(imp.desc)
    if imp.kind == 'table':
        return b'\x01' + valtype(imp.desc.elemtype) + limits(imp.desc.limits, imp.desc.at)
    if imp.kind == 'memory':
        return b'\x02' + limits(imp.desc.limits, imp.desc.at)
    return b'\x03' + valtype(imp.desc.valtype) + bytes([int(imp.desc.mut)])


def encode_module(m):
    """Encode a syntax.Module to the binary format (sections in spec order)."""
    out = bytearray(b'\x00asm\x01\x00\x00\x00')
    if m.types:
        out += _section(1, vec(typesec(m)))
    if m.imports:
        out += _section(2, vec(name(i.module) + name(i.name) + _importdesc(i) for i in m.imports))
    if m.funcs:
        out += _section(3, vec(u32(f.typeidx) for f in m.funcs))
    if m.tables:
        out += _section(4, vec(valtype(t.type.elemtype) + limits(t.type.limits, t.type.at) for t in m.tables))
    if m.mems:
        out += _section(5, vec(limits(mm.type.limits, mm.type.at) for mm in m.mems))
    if m.tags:
        out += _section(13, vec(b'\x00' + u32(t.typeidx) for t in m.tags))
    if m.globals:
        out += _section(6, vec(valtype(g.type.valtype) + bytes([int(g.type.mut)]) + expr(g.init)
                               for g in m.globals))
    if m.exports:
        out += _section(7, vec(name(e.name) + bytes([EXTERN_KIND_BYTE[e.kind]]) + u32(e.index)
                               for e in m.exports))
    if m.start is not None:
        out += _section(8, u32(m.start))
    if m.elems:
        out += _section(9, vec(_elem(s) for s in m.elems))
    if m.datacount is not None or m.datas:
        out += _section(12, u32(len(m.datas)))
    if m.funcs:
        bodies = []
        encoded = {}         # a function listed many times (a mutator's copies) is encoded once
        for f in m.funcs:
            body = encoded.get(id(f))
            if body is None:
                code = _locals(f.locals) + expr(f.body)
                body = encoded[id(f)] = u32(len(code)) + code
            bodies.append(body)
        out += _section(10, vec(bodies))
    if m.datas:
        out += _section(11, vec(_data(s) for s in m.datas))
    return bytes(out)
