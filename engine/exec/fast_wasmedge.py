"""The compiled tier of the WasmEdge model: ``FastExecutor`` runs functions
compiled by ``engine.exec.compile`` and keeps the interpreter's contract exactly
(same ``stack``, ``frames``, ``pc``, ``steps`` at every stop, same counts,
same traps).

How a run goes: the top frame's ``pc`` is a *leader* of its compiled
function -> the compiled function is entered there with the frame's locals
and operands (``R``), and runs (calling compiled callees as Python calls)
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

When ``pc`` is not a leader (after a restore, or after the interpreter ran
the last steps of a previous ``run``), the interpreter runs one instruction
at a time until it reaches one.

The allowance ``d`` given to compiled code is at most the call depth left
(``Limits.max_call_depth``), the value-stack room left divided by the widest
frame of the store, and ``PY_DEPTH`` (Python recursion), so the
interpreter itself makes every call that could exceed a limit and raises
its own ``CallDepthError`` / exhaustion at the same instruction.
"""

import struct
import sys

from . import wasmedge as W
from .compile import INDEX_OOB, OOB, STRUCT_OOB, Reenter, Stop, compiled
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


class FastExecutor(W.Executor):
    """The WasmEdge-model executor of the compiled tier."""
    tier = 'fast'

    def __init__(self, store):
        super().__init__(store)
        self._width = (0, 1)

    def _allowance(self):
        store = self.store
        nf = len(store.funcs)
        if self._width[0] != nf:
            w = 1
            for fi in store.funcs:
                if fi.info is not None and fi.code is not None:
                    w = max(w, len(fi.type.params) + len(fi.code.locals)
                            + fi.info.max_height + 1)
            self._width = (nf, w)
        d = min(store.limits.max_call_depth - len(self.frames), PY_DEPTH,
                (W.MAX_STACK - len(self.stack)) // self._width[1])
        return d if d > 0 else 0

    def run(self, max_steps=None):
        if self.finished:
            return True
        n = W._BIG if max_steps is None else max_steps
        store = self.store
        recursion_room()
        interp = W.Executor.run
        while n > 0:
            frames = self.frames
            frame = frames[-1]
            c = compiled(store, frame.func)
            blk = c.entry.get(self.pc)
            if blk is None:
                # not at a leader: step to one; in a function left to the
                # interpreter (no entry at all) run a batch, since single
                # steps through its loop would cost a dispatch each (a
                # compiled callee it calls meanwhile runs interpreted: exact)
                before = self.steps
                done = interp(self, 1 if c.entry else min(n, INTERPRETED_BATCH))
                n -= self.steps - before
                if done:
                    return True
                continue
            stack = self.stack
            vpos = frame.vpos
            try:
                r = c.fn(n, self._allowance(), R=(blk, stack[vpos:]))
            except (Stop, Reenter) as e:
                left = self._rebuild(e, False)
                self.steps += n - left
                n = left
                if isinstance(e, Stop):
                    return interp(self, n) if n > 0 else False
                if n > 0:                             # the call, by the interpreter
                    before = self.steps
                    if interp(self, 1):
                        return True
                    n -= self.steps - before
                continue
            except (struct.error, IndexError) as e:
                if STRUCT_OOB not in str(e) and INDEX_OOB != str(e):
                    raise
                self._trapped(e, n)
                raise Trap(OOB) from None
            except Trap as e:
                self._trapped(e, n)
                raise
            if c.arity:
                left = r[0]
                res = r[1:]
            else:
                left = r
                res = ()
            self.steps += n - left
            n = left
            frames.pop()
            del stack[vpos:]
            stack.extend(res)
            if not frames:
                self.results = stack[:]
                del stack[:]
                self.finished = True
                self.pc = 0
                return True
            self.pc = frame.from_pc
        return False

    def _trapped(self, e, n):
        left = self._rebuild(e, True)
        self.steps += n - left
        self.finished = True

    def _rebuild(self, e, trapped):
        """Stack, frames and pc from the compiled frames on ``e``'s
        traceback; returns the budget left at the stop."""
        chain = []
        tb = e.__traceback__
        while tb is not None:
            f = tb.tb_frame
            w = f.f_globals.get('__wasm__')
            if w is not None and f.f_code is w.code:
                chain.append((w, f.f_locals, tb.tb_lineno))
            tb = tb.tb_next
        if not chain:
            raise RuntimeError('compiled tier: no compiled frame on the traceback') from e
        stack, frames = self.stack, self.frames
        del stack[frames[-1].vpos:]
        last = len(chain) - 1
        left = None
        pc = None
        for k, (w, L, line) in enumerate(chain):
            # see compile.FuncGen: on a 'call' line the path is charged up to
            # and including the call; elsewhere ``pre`` steps of the path
            # before this segment are not yet subtracted from n
            kind, at, seg, segk, h, extra = w.lines[line]
            if k:
                W.code_of(self.store, w.addr)         # the interpreter's form, for its returns
                frames.append(W.Frame(w.addr, pc + 1, w.nlocals, w.arity, len(stack)))
            done = at - seg + (1 if trapped else 0)   # steps of this segment taken
            if k < last:
                pc = at                               # a caller, at its call
            elif kind == 'call':                      # the callee trapped or is left to the interpreter
                left = L['n'] + segk - done
                pc = at + 1 if trapped else at
                if not trapped:
                    h = extra
            elif kind == 'stop':
                left = L['n']
                pc = at
            else:                                     # a trap, or before a call
                left = L['n'] - extra - done
                pc = at + 1 if trapped else at
            stack.extend(L[f'l{j}'] for j in range(w.nlocals))
            if trapped and k == last:
                stack.extend(L[f's{j}'] for j in range(h) if f's{j}' in L)
            else:
                stack.extend(L[f's{j}'] for j in range(h))
        self.pc = pc
        return left


Executor = FastExecutor
