"""The compiled tier of the WasmEdge model: ``FastExecutor`` runs functions
compiled by ``engine.exec.compile`` and keeps the interpreter's contract exactly
(same ``stack``, ``frames``, ``pc``, ``steps`` at every stop, same counts,
same traps).

How a run goes: the top frame's ``pc`` is a *leader* of its compiled
function -> the compiled function is entered there with the frame's locals
and operands (a resume: ``compile.Resume``), and runs (calling compiled callees as Python calls)
until it returns to this frame's caller, or raises:

- ``Stop``: a segment's instruction count exceeds the budget left.  The
  executor rebuilds stack and frames from the compiled frames on the
  traceback (each frame's ``l*``/``s*`` variables, its line -> pc) and lets
  the interpreter run the last few steps, so the run stops before exactly
  the instruction the interpreter would stop before.
- ``Reenter``: a call the compiled code leaves to the interpreter (the
  compiled call-depth allowance is spent, or the callee is not compiled):
  rebuilt the same way, positioned before the call.
- a trap: steps and frames rebuilt, pc after the trapping instruction, as
  the interpreter leaves them.
- ``Miss``: a jump to a block whose code was not generated (lazy arms):
  rebuilt as at a ``Stop`` before that block, the function is generated
  again with it (``compile.grow``), and the run goes on compiled.

When ``pc`` is not a leader (after a restore, or after the interpreter ran
the last steps of a previous ``run``), the interpreter runs one instruction
at a time until it reaches one.

A function the generator refused runs in the interpreter INTERPRETED_BATCH steps
at a time (stepping one at a time there cost 4x the interpreter).

The allowance ``d`` given to compiled code is at most the call depth left
(``Limits.max_call_depth``), the value-stack room left divided by the widest
frame of the store, and ``PY_DEPTH`` (Python recursion), so the
interpreter itself makes every call that could exceed a limit and raises
its own ``CallDepthError`` / exhaustion at the same instruction.
"""

import struct
import sys

from . import exceptions, wasmedge as W
from .compile import INDEX_OOB, OOB, STRUCT_OOB, VIEW_OOB, Miss, Reenter, Stop, budget_cell, grow, ready, unwind
from ..errors import Trap

PY_DEPTH = 1500           # compiled Wasm calls nested in one Python entry
INTERPRETED_BATCH = 256   # steps per interpreter run in a function without compiled code
NAME = W.NAME             # the model (images, checkpoint) is WasmEdge's


def recursion_room():
    """Python's recursion limit raised to what PY_DEPTH nested compiled
    calls need (a caller may do it early, e.g. before a hypothesis test,
    which warns when the limit changes inside it)."""
    need = 3 * PY_DEPTH + 1000
    if sys.getrecursionlimit() < need:
        sys.setrecursionlimit(need)


class CompiledTier:
    """The run loop of both models' compiled tiers (mixed into the model's
    interpreter ``Executor``).  A model supplies ``INTERP`` (its
    interpreter's ``run``), ``MAX_STACK`` and ``BIG``, and
    ``_entry(frame)`` (the Compiled function, block and values to
    enter it at the top frame's pc, or else how many steps the interpreter
    takes first: one to reach a leader, INTERPRETED_BATCH in a function that
    is not compiled), ``_returned(frame, res)``
    (pop the frame the compiled function returned from; True when that
    finished the run), ``_rebuild(e, trapped)`` (the state at a stop, a
    trap or a call left to the interpreter; the budget left) and
    ``_width(fi)`` (stack slots a frame of function ``fi`` may hold)."""
    tier = 'fast'
    _widest = (0, 1)

    def _allowance(self):
        store = self.store
        nf = len(store.funcs)
        if self._widest[0] != nf:
            w = 1
            for fi in store.funcs:
                if fi.info is not None and fi.code is not None:
                    w = max(w, self._width(fi))
            self._widest = (nf, w)
        d = min(store.limits.max_call_depth - len(self.frames), PY_DEPTH,
                (self.MAX_STACK - len(self.stack)) // self._widest[1])
        return d if d > 0 else 0

    def run(self, max_steps=None):
        if self.finished:
            return True
        n = self.BIG if max_steps is None else max_steps
        recursion_room()
        interp = type(self).INTERP                 # the plain function: interp(self, n)
        cell = budget_cell(self.store)             # where compiled code returns the budget left
        missed = None                              # the last Miss (a second one there is a bug)
        while n > 0:
            frame = self.frames[-1]
            entry = self._entry(frame)
            if entry.__class__ is int:
                before = self.steps
                done = interp(self, min(entry, n))
                n -= self.steps - before
                if done:
                    return True
                continue
            c, blk, values = entry
            turn = min(n, exceptions.CHUNK)           # a one-digit budget
            try:
                if blk is None:                       # a fresh frame at pc 0: the call
                    r = c.fn(turn, self._allowance(), *values)
                else:
                    r = c.fn(-1 - turn, (self._allowance(), blk, values))   # a resume
            except (Stop, Reenter, Miss) as e:
                left = self._rebuild(e, False)
                self.steps += turn - left
                n -= turn - left
                if e.__class__ is Miss:               # at a block without code: generate it
                    if missed == (e.args, self.steps):
                        raise RuntimeError(f'compiled tier: function {e.args[0].addr} misses block '
                                           f'{e.args[1]} again after generating it')
                    missed = (e.args, self.steps)
                    grow(self.store, *e.args)
                    continue
                if isinstance(e, Stop):
                    if left < n and left < turn:      # the turn's end, not the budget's: go on
                        continue
                    return interp(self, n) if n > 0 else False
                if n > 0:                             # the call, by the interpreter
                    before = self.steps
                    if interp(self, 1):
                        return True
                    n -= self.steps - before
                continue
            except (struct.error, IndexError) as e:
                if STRUCT_OOB not in str(e) and str(e) not in (INDEX_OOB, VIEW_OOB):
                    raise
                self._trapped(e, turn)
                raise Trap(OOB) from None
            except Trap as e:
                self._trapped(e, turn)
                raise
            left = cell.cell_contents
            res = (r,) if c.arity == 1 else r if c.arity else ()
            self.steps += turn - left
            n -= turn - left
            if self._returned(frame, res):
                return True
        return False

    def _trapped(self, e, n):
        left = self._rebuild(e, True)
        self.steps += n - left
        self.finished = True


class FastExecutor(CompiledTier, W.Executor):
    """The WasmEdge-model executor of the compiled tier."""
    INTERP = W.Executor.run
    MAX_STACK = W.MAX_STACK
    BIG = W._BIG

    @staticmethod
    def _width(fi):
        return len(fi.type.params) + len(fi.code.locals) + fi.info.max_height + 1

    def _entry(self, frame):
        c = ready(self.store, frame.func)
        if c is None:                              # cold: not compiled yet
            return INTERPRETED_BATCH
        values = self.stack[frame.vpos:]
        if self.pc == 0 and c.fresh(values):      # entered by a call
            return c, None, values[:c.nparams]
        blk = c.entry.get(self.pc)
        if blk is None:
            if c.code is None:
                return INTERPRETED_BATCH
            return c.steps_to_entry(self.store.funcs[frame.func].code.body, self.pc)
        if not c.expects(values):
            return INTERPRETED_BATCH               # a state the code does not expect
        return c, blk, values

    def _returned(self, frame, res):
        frames, stack = self.frames, self.stack
        frames.pop()
        del stack[frame.vpos:]
        stack.extend(res)
        if not frames:
            self.results = stack[:]
            del stack[:]
            self.finished = True
            self.pc = 0
            return True
        self.pc = frame.from_pc
        return False

    def _rebuild(self, e, trapped):
        """Stack, frames and pc from the compiled frames on ``e``'s
        traceback (compile.unwind); returns the budget left at the stop."""
        left, chain = unwind(e, trapped)
        stack, frames = self.stack, self.frames
        del stack[frames[-1].vpos:]
        pc = None
        for k, (w, at, locs, operands) in enumerate(chain):
            if k:
                W.code_of(self.store, w.addr)         # the interpreter's form, for its returns
                frames.append(W.Frame(w.addr, pc + 1, w.nlocals, w.arity, len(stack)))
            pc = at
            stack.extend(locs)
            stack.extend(operands)
        self.pc = pc
        return left


Executor = FastExecutor
