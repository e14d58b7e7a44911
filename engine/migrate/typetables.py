"""The three *type-table* files the migration forks read when they dump a
run: ``tablemap_func``, ``tablemap_offset``, ``type_table``.

Neither fork knows the type of a value on its operand stack (WAMR holds
32-bit cells, WasmEdge 128-bit slots), so at dump time each looks up the
type stack of every frame in these tables, which the authors produce with
a separate tool (Wacret).  Here they come from the validator: one pass over
each function body (``valid.operand_trace``) gives the operand types before
every instruction.  Layout (little-endian, packed):

``tablemap_func``
    per function index i, imports included: ``u32 i, u64 addr``, addr = byte
    position of the function's entry in ``tablemap_offset`` (0 for imports).
``tablemap_offset``
    per defined function: ``u32 L`` and L bytes, the cell size of each
    parameter and declared local; then per code position ``u32 offset,
    u64 addr``, addr = byte position of its record in ``type_table``.
``type_table``
    per position ``u32 n`` and n cell-size bytes, the operand stack there,
    bottom first.  A position just after a ``call``/``call_indirect`` has a
    second record right after the first: the stack while the callee runs
    (the call's operands popped, its results not yet pushed), which is what
    a caller frame holds.

Positions are byte offsets from the first instruction after the local
declarations: 0 (the empty stack at entry), then the offset after each
instruction, i.e. the stack before the next one; after the final ``end``
the stack holds the function's results.  Cell sizes: i32/f32 1, i64/f64 2,
v128 4, references 255 (``REF``; one cell in WAMR, see docs/images.md).

In unreachable code (after ``br``, ``return``, ``unreachable`` ...)
validation knows only what the following instructions push; an operand of
unknown type (the algorithm's Unknown, e.g. from a ``select`` there) gets
the byte 0, no running program can ever stand there.  The one exception
is the position before an ``end``: a branch lands there (both forks stop
at a block's or the function's ``end`` after ``br``/``br_table`` to its
label), so it always lists the block's entry stack plus its results, as
``valid.operand_types`` does, never the unreachable code's guess.
"""

import os
import struct

from . import images as im
from ..syntax import value_class
from ..valid import blocktype_of, operand_trace

REF = 255
SIZES = {'i32': 1, 'f32': 1, 'i64': 2, 'f64': 2, 'v128': 4,
         'funcref': REF, 'externref': REF}
FILES = ('tablemap_func', 'tablemap_offset', 'type_table')
CALLS = ('call', 'call_indirect', 'call_ref')


def type_bytes(types):
    """Cell-size bytes of a list of value types: function and external
    references (typed ones too) are a reference; 0 for Unknown and for
    exnref and the any hierarchy, which neither fork has (the forks'
    layout refuses such a value: fork_images)."""
    return bytes(SIZES.get(value_class(t), 0) for t in types)


def _record(types):
    return struct.pack('<I', len(types)) + type_bytes(types)


def function_positions(module, info, defidx, calls=CALLS, ends=True):
    """(offset, [records]) of every code position of defined function
    ``defidx`` as the fork tables list them; the instructions named in
    ``calls`` get the second (caller) record; ``ends=False`` leaves the
    unreachable code's guess before an ``end``, as the authors' tables do."""
    f = module.funcs[defidx]
    ft = module.types[f.typeidx]
    trace = operand_trace(module, defidx)
    if ends:
        _stacks_at_ends(module, f.body, ft, trace)
    trace.append(trace[-1])     # after the final end: as before it (never looked up)
    out = [(0, [trace[0]])]
    for i, ins in enumerate(f.body):
        records = [trace[i + 1]]
        if ins.op in calls:
            callee = module.types[ins.imm[0]] if ins.op == 'call_indirect' else \
                module.types[ins.imm] if ins.op == 'call_ref' else info.func_types[ins.imm]
            popped = len(callee.params) + (1 if ins.op != 'call' else 0)
            records.append(trace[i][:len(trace[i]) - popped])
        out.append((ins.end, records))
    return out


def _stacks_at_ends(module, body, ft, trace):
    """Before each ``end``: the block's entry stack plus its results (or the
    function's results), whether or not the code before it is reachable."""
    open_blocks = []
    for i, ins in enumerate(body):
        if ins.op in ('block', 'loop', 'if', 'try_table', 'try'):
            open_blocks.append(i)
        elif ins.op == 'delegate':          # closes a legacy try; no end follows
            open_blocks.pop()
        elif ins.op == 'end':
            if not open_blocks:
                trace[i] = list(ft.results)
                continue
            b = open_blocks.pop()
            bt = blocktype_of(body[b])
            params, results = ((), ()) if bt is None else ((), (bt,)) if isinstance(bt, str) \
                else (module.types[bt].params, module.types[bt].results)
            below = trace[b][:-1] if body[b].op == 'if' else trace[b]
            trace[i] = list(below[:len(below) - len(params)]) + list(results)


def build(module, info, calls=CALLS, ends=True):
    """The three files as bytes, keyed by file name.  ``calls=('call',)``
    leaves out the caller record after ``call_indirect`` and ``ends=False``
    the branch's values before an unreachable ``end``, as the authors'
    tables do (docs/images.md explains why both are defects)."""
    nimp = len(module.imported('func'))
    func_recs, offsets, table = [], bytearray(), bytearray()
    for fidx in range(nimp):
        func_recs.append(struct.pack('<IQ', fidx, 0))
    for d, f in enumerate(module.funcs):
        func_recs.append(struct.pack('<IQ', nimp + d, len(offsets)))
        ft = module.types[f.typeidx]
        local_types = list(ft.params) + list(f.locals)
        offsets += struct.pack('<I', len(local_types)) + type_bytes(local_types)
        for off, records in function_positions(module, info, d, calls, ends):
            offsets += struct.pack('<IQ', off, len(table))
            for r in records:
                table += _record(r)
    return {'tablemap_func': b''.join(func_recs), 'tablemap_offset': bytes(offsets),
            'type_table': bytes(table)}


def write(module, info, directory):
    """Write the three files into ``directory`` (created if needed); each
    file is replaced atomically."""
    os.makedirs(directory, exist_ok=True)
    for name, data in build(module, info).items():
        im.write_file_atomic(os.path.join(directory, name), data)
