"""The compiled tier of the WAMR model: ``FastExecutor`` runs functions
compiled by ``engine.exec.compile`` and keeps the WAMR interpreter's
contract exactly (same cells, frames with ``ip``/``lp``/labels, byte-offset
``pc`` and ``steps`` at every stop, same counts, same traps).

The generated code is the WasmEdge model's (whole values in Python
variables); only the model's control flow differs, and ``WamrGen`` says
where: a branch to a loop continues *after* the ``loop`` (not counted), a
false ``if`` continues after its ``else`` (not counted) or after its
``end`` (not counted, when it has no ``else``), and an ``else`` reached
from the then-arm continues at the ``end``, which is counted (see
``engine/exec/wamr.py``).  Branches out of a block land on its ``end``
(counted) in both models.

The WAMR state is made from the compiled frames only where a run leaves
compiled code (``Stop``, ``Reenter``, a trap), as ``fast_wasmedge`` does
(``compile.unwind``): locals and operands become cells by their types (the
validator's operand types at the pc), labels are the static control stack
at the pc (the function's label, then one per open block, taken from the
interpreter's own pre-decoded ``block``/``loop``/``if`` arguments; a
label is open from its instruction up to and including its ``end``), the
pc is the instruction's byte offset and a caller's ``ip`` the byte after
its call.  Entering compiled code at a leader turns the top frame's cells
back into values the same way.
"""

from . import wamr as R
from .compile import GENERATORS, FuncGen, ready, unwind
from .fast_wasmedge import INTERPRETED_BATCH, CompiledTier
from .cells import CELLS
from .wamr import _cells_of, _values_of
from ..valid import block_structure, operand_trace, operand_types

NAME = R.NAME             # the model (images, checkpoint) is WAMR's
V128_CELLS = 4            # the widest value, in cells


class WamrGen(FuncGen):
    """The generator with WAMR's branch landings and counts."""

    def landing(self, b):
        t = b.target - 1
        return b.target if self.body[t].op == 'loop' else t

    def if_false(self, i):
        info = self.info
        if i in info.else_of:
            return info.else_of[i] + 1, 0
        return info.end_of[i] + 1, 0

    def else_jump(self, i):
        return self.end_of_else(i)

    def loop_head(self, pc):
        return pc > 0 and self.body[pc - 1].op == 'loop'


GENERATORS[NAME] = WamrGen


class Layout:
    """How one function's compiled frames map to WAMR frames: its
    interpreter code, leaders by byte offset, cell types and labels by
    instruction index (each computed once, when first needed)."""
    __slots__ = ('code', 'body', 'entry', 'index', 'start', 'module', 'defidx', '_trace', '_blocks',
                 '_types', '_labels', '_cells', '_of', '_at')

    KEY = 'fast:wamr:layout'

    @classmethod
    def of(cls, store, c):
        fi = store.funcs[c.addr]
        lay = fi.cache.get(cls.KEY)
        if lay is None:
            lay = fi.cache[cls.KEY] = cls(store, fi, c)
        elif lay._of is not c.entry:              # lazy arms grown: other entries
            lay.entries(c)
        return lay

    def __init__(self, store, fi, c):
        self.code = R.code_of(store, c.addr)
        self.body = body = fi.code.body
        self.entries(c)
        self.start = body[0].offset
        self.module = fi.module.module
        self.defidx = fi.idx - len(self.module.imported('func'))
        self._trace = self._blocks = None
        self._types = {}
        self._labels = {}
        self._cells = {}
        self._at = None

    def entries(self, c):
        """The leaders where compiled code can be entered, by byte offset
        (``c.entry``, which lazy arms change as they grow)."""
        body = self.body
        self.entry = {body[pc].offset: blk for pc, blk in c.entry.items()}
        self.index = {body[pc].offset: pc for pc in c.entry}
        self._of = c.entry

    def at(self, offset):
        """The instruction index at byte offset ``offset`` (None: no
        instruction starts there)."""
        if self._at is None:
            self._at = {ins.offset: i for i, ins in enumerate(self.body)}
        return self._at.get(offset)

    def trace(self):
        if self._trace is None:
            self._trace = operand_trace(self.module, self.defidx)
        return self._trace

    def frame_types(self, pc):
        """Types of the locals and of the operands before instruction pc."""
        t = self._types.get(pc)
        if t is None:
            if pc == 0:                     # a call's entry: no operands (no validation pass)
                ops = ()
            elif self.body[pc].op == 'end':   # may be reached only by branches: the label's types
                ops = operand_types(self.module, self.defidx, pc)
            else:
                ops = self.trace()[pc]
            t = self._types[pc] = tuple(self.code.types) + tuple(ops)
        return t

    def labels(self, pc):
        """The WAMR control stack before instruction pc (a fresh list)."""
        return list(self.label_tuple(pc))

    def label_tuple(self, pc):
        lab = self._labels.get(pc)
        if lab is None and pc == 0:         # a call's entry: no block open yet
            lab = self._labels[0] = (self.code.func_label,)
        if lab is None:
            if self._blocks is None:
                self._blocks = block_structure(self.module, self.defidx, self._trace)
            args, body = self.code.args, self.body
            lab = [self.code.func_label]
            for b in self._blocks.open_at(pc):
                a = args[body[b].offset]
                lab.append(a[0] if body[b].op == 'if' else a)
            lab = self._labels[pc] = tuple(lab)
        return lab

    def enters(self, pc, frame, cells):
        """The locals' and operands' types if the interpreter's frame at
        instruction pc holds what the compiled code assumes there (its
        static labels and cell count), else None: a frame restored with
        other labels runs in the interpreter, which acts on them."""
        types = self.frame_types(pc)
        if tuple(frame.labels) != self.label_tuple(pc) or cells != self.cell_count(pc):
            return None
        return types

    def cell_count(self, pc):
        n = self._cells.get(pc)
        if n is None:
            n = self._cells[pc] = sum(CELLS[t] for t in self.frame_types(pc))
        return n


class FastExecutor(CompiledTier, R.Executor):
    """The WAMR-model executor of the compiled tier (the run loop is
    ``fast_wasmedge.CompiledTier``'s)."""
    INTERP = R.Executor.run
    MAX_STACK = R.MAX_STACK
    BIG = R._BIG

    @staticmethod
    def _width(fi):
        """Cells, counting every value as wide as a v128."""
        return V128_CELLS * (len(fi.type.params) + len(fi.code.locals) + fi.info.max_height + 1)

    def _entry(self, frame):
        c = ready(self.store, frame.func, NAME)
        if c is None or c.code is None:            # cold, or not compiled
            return INTERPRETED_BATCH
        lay = Layout.of(self.store, c)
        pc = self.pc
        blk = lay.entry.get(pc)
        if blk is None:
            if pc != lay.start:
                i = lay.at(pc)
                return 1 if i is None else c.steps_to_entry(lay.body, i)
            at = 0                                 # pc 0: entered by a call if fresh
        else:
            at = lay.index[pc]
        stack = self.stack
        types = lay.enters(at, frame, len(stack) - frame.lp)
        if types is None:
            return 1
        values = _values_of(types, stack[frame.lp:])
        if at == 0 and c.fresh(values):           # entered by a call
            return c, None, values[:c.nparams]
        if blk is None:
            return 1
        if not c.expects(values):
            return INTERPRETED_BATCH               # a state the code does not expect
        return c, blk, values

    def _returned(self, frame, res):
        frames, stack = self.frames, self.stack
        results = self.store.funcs[frame.func].type.results
        frames.pop()
        del stack[frame.lp:]
        stack.extend(_cells_of(results, res))
        if not frames:
            self.results = _values_of(results, stack)
            del stack[:]
            self.finished = True
            self.pc = 0
            return True
        caller = frames[-1]
        self.pc = caller.ip
        caller.ip = None
        return False

    def _rebuild(self, e, trapped):
        """Cells, frames, labels and pc from the compiled frames on ``e``'s
        traceback; returns the budget left at the stop."""
        left, chain = unwind(e, trapped)
        store = self.store
        stack, frames = self.stack, self.frames
        frame = frames[-1]
        del stack[frame.lp:]
        last = len(chain) - 1
        lay = at = None
        for k, (w, at_k, locs, operands) in enumerate(chain):
            if k:                                     # a callee of the frame below
                frame.ip = lay.body[at].end
                lay = Layout.of(store, w)
                frame = R.Frame(w.addr, None, len(stack), None, lay.code)
                frames.append(frame)
            else:
                lay = Layout.of(store, w)
            at = at_k
            types = lay.frame_types(at)
            frame.labels = lay.labels(at)
            stack.extend(_cells_of(types, locs))
            if not (trapped and k == last):           # after a trap the operands are not kept
                stack.extend(_cells_of(types[len(locs):], operands))
        self.pc = lay.body[at].offset
        return left


Executor = FastExecutor
