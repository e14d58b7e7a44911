"""Deliberate faults for the mutation check (``python -m fuzz.mutants``).

A fuzzer that never fails proves little unless it is shown to fail when the
code is wrong.  Each fault below is a small, plausible bug in the
translator, the image writer or an executor; ``fuzz.mutants`` switches one
on through the environment variable ``WASM_MIGRATE_FAULT`` and checks that
the migration campaign notices it.

The variable is read once, when this module is first imported, into
module-level booleans (``PC_OFFSET`` ...).  The hooks in the engine are one
``if faults.X`` each on paths that run per checkpoint or per pre-decoded
function, never per executed instruction, so a normal run (variable unset)
pays nothing measurable.  Tests may flip the booleans directly.
"""

import os
import sys

ENV = 'WASM_MIGRATE_FAULT'

# name -> what goes wrong (one line each; fuzz.mutants prints these)
FAULTS = {
    'pc_offset': 'translator writes the top frame PC one instruction too far '
                 '(WasmEdge index + 1, WAMR offset of the next instruction)',
    'i64_cell_order': 'state.to_cells splits an i64 high word first (from_cells still expects low first)',
    'lost_label': 'translator drops the innermost WAMR label of every frame when writing',
    'frame_sp': 'WAMR label replay counts values instead of cells for frame_sp',
    'cell_num': 'WAMR label replay gives a loop label its result cells instead of its param cells',
    'vpos': 'WasmEdge restore sets a callee frame\'s VPos as at call time '
            '(subtracting its params once more)',
    'dirty_page': 'memory.img writer stops one chunk early: the last dirty 4 KiB chunk is lost',
    'global_width': 'global.img writer stores an i64/f64 global in one cell',
    'br_table_default': 'WasmEdge pre-decoder counts the br_table default depth from the '
                        'outermost label instead of the innermost',
    'return_address': 'translator writes a caller\'s return offset at the call itself '
                      '(WAMR) or one past it (WasmEdge)',
    # one per blind spot of issue 13: each is invisible to a campaign that
    # lacks the matching generator/oracle feature
    'neutral_dropped': 'neutral.json writer forgets the dropped data segments '
                       '(only the route through the neutral form sees it)',
    'funcref_address': 'checkpoint writes a funcref as its store address instead of the '
                       'module function index (equal in a fresh single-instance store)',
    'chunk_index': 'memory.img writer stores a chunk\'s index instead of its byte offset and '
                   'the reader multiplies it back (symmetric: round trips cancel out)',
    'grown_tail': 'memory.img writer skips chunks past the memory\'s declared minimum '
                  '(what memory.grow added)',
    # the compiled tier against the interpreter (oracle.compare_tiers)
    'fast_count': 'compiled tier charges a loop\'s back-edge one instruction more than '
                  'the interpreter counts',
    # Wasm 3.0 state (multi-memory, memory64, tail calls)
    'second_memory': 'checkpoint takes the dirty chunks of memories 1.. from memory 0\'s bytes '
                     '(the offsets are right, the data is memory 0\'s)',
    'mem64_type': 'restore rebuilds a memory\'s type from its limits alone: a 64-bit memory '
                  'comes back with 32-bit addresses',
    'tail_caller_params': 'translator pops the running callee\'s parameters from its caller\'s '
                          'operands, not the called type\'s (a tail call replaced the callee)',
    # Wasm 3.0 state (fuzz.gen's 'exceptions' and 'function-references')
    'exn_handler': 'neutral.json lists a frame\'s handlers without its innermost try_table '
                   '(writer and reader derive them alike: they agree)',
    'exn_tag': 'exception.img writer stores an exception\'s tag index one too high and the '
               'reader subtracts it back (symmetric: round trips cancel out)',
    'typed_nullable': 'neutral.json writer loses a typed reference slot\'s nullability '
                      '((ref $t) written as (ref null $t))',
    # Wasm 3.0 GC heap (gc.img, neutral heap)
    'gc_identity': 'gc.img / neutral heap writer writes each slot\'s objects anew: two '
                   'references to one struct become two copies (ref.eq is lost after restore)',
    # links to functions of other instances (link.img)
    'link_target': 'restore resolves a link to the function after the one it names in the '
                   'peer instance (the right instance, the wrong function)',
}


class UnknownFault(ValueError):
    """``WASM_MIGRATE_FAULT`` (or a command-line fault name) is not a fault."""


def check_name(name, where=ENV):
    """``name`` if it is a fault, else an error naming ``where`` it came
    from and listing the valid names."""
    if name not in FAULTS:
        raise UnknownFault(f'{where}: unknown fault {name!r}; expected one of: '
                           + ', '.join(FAULTS))
    return name


def _active():
    name = os.environ.get(ENV, '').strip()
    if not name:
        return None
    try:
        return check_name(name)
    except UnknownFault as e:
        # import time: no caller can catch this usefully, and a traceback
        # would hide the one line that matters
        print(f'error: {e}', file=sys.stderr)
        raise SystemExit(2)


ACTIVE = _active()          # the fault switched on, or None

PC_OFFSET = ACTIVE == 'pc_offset'
I64_CELL_ORDER = ACTIVE == 'i64_cell_order'
LOST_LABEL = ACTIVE == 'lost_label'
FRAME_SP = ACTIVE == 'frame_sp'
CELL_NUM = ACTIVE == 'cell_num'
VPOS = ACTIVE == 'vpos'
DIRTY_PAGE = ACTIVE == 'dirty_page'
GLOBAL_WIDTH = ACTIVE == 'global_width'
BR_TABLE_DEFAULT = ACTIVE == 'br_table_default'
RETURN_ADDRESS = ACTIVE == 'return_address'
NEUTRAL_DROPPED = ACTIVE == 'neutral_dropped'
FUNCREF_ADDRESS = ACTIVE == 'funcref_address'
CHUNK_INDEX = ACTIVE == 'chunk_index'
GROWN_TAIL = ACTIVE == 'grown_tail'
FAST_COUNT = ACTIVE == 'fast_count'
SECOND_MEMORY = ACTIVE == 'second_memory'
MEM64_TYPE = ACTIVE == 'mem64_type'
TAIL_CALLER_PARAMS = ACTIVE == 'tail_caller_params'
EXN_HANDLER = ACTIVE == 'exn_handler'
EXN_TAG = ACTIVE == 'exn_tag'
TYPED_NULLABLE = ACTIVE == 'typed_nullable'
GC_IDENTITY = ACTIVE == 'gc_identity'
LINK_TARGET = ACTIVE == 'link_target'



def mirrored_default_branch(body, info, types, results, i):
    """The branch record (``valid.Branch`` fields) that br_table ``i``'s
    default would get from a pre-decoder counting its label depth from the
    wrong end of the control stack (from the function's label inwards
    instead of from the innermost label outwards)."""
    from .valid import Branch
    open_blocks = []
    for j in range(i):
        op = body[j].op
        if op in ('block', 'loop', 'if'):
            open_blocks.append(j)
        elif op == 'end' and open_blocks:
            open_blocks.pop()
    depth = len(open_blocks) - body[i].imm[1]       # labels: the function's + open blocks
    if depth >= len(open_blocks):
        return Branch(len(body), len(results), 0, 0)  # the function's label: return
    b = open_blocks[-1 - depth]
    bt = body[b].imm
    if bt is None:
        params, res = (), ()
    elif isinstance(bt, str):
        params, res = (), (bt,)
    else:
        params, res = types[bt].params, types[bt].results
    height = info.heights[b] - len(params) - (body[b].op == 'if')   # if: the condition is popped
    if body[b].op == 'loop':
        return Branch(b + 1, len(params), 0, height)
    return Branch(info.end_of[b] + 1, len(res), 0, height)
