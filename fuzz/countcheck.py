"""An independent truth for the two models' instruction counts, for the oracle.

Each model's count is otherwise compared only with itself (across tiers,
across a migration), so a change that makes one model count differently
and nothing else (an ``else`` jumping onto the ``end`` instead of past it,
which then runs as a no-op) agrees everywhere.  docs/images.md
("Instruction counts") documents how the counts of one run relate:

    WasmEdge's count - WAMR's count = (taken branches to loops)
        + (ifs entered with a false condition) - (then-arms that ran into their else)
        - (legacy try bodies or catch arms that ran into a catch/catch_all)

``events`` counts those three by a walk of its own: it steps the WAMR
model one instruction at a time (``ex.run(1)``, the executors'
stop-anywhere interface; no hook in the run loops) and classifies each
executed instruction from the module's code by where the next one
stands, not from either executor's compiled form.  The oracle then
requires the relation between the two uninterrupted runs' counts.

Wasm 3.0 instructions add no term: ``return_call``, ``return_call_ref`` and
``return_call_indirect`` count once in both models and replace the frame
(the walk sees a new top frame, as for a call), and instructions on
memories >= 1 or on 64-bit memories are ordinary single steps.

Exception handling (``throw``, ``throw_ref``, ``try_table``, a catch
moving to its label) is not among the three kinds: the walk classifies
only ``if``/``else``/branches, a throw caught in the same frame is counted
alike by both models (measured: the relation held unchanged on 250
generated modules with exceptions, whose catches target block labels,
never loops), and an entry ending in an uncaught exception ends the walk
like a trap.  The relation is checked on the 3.0 modules of every
campaign.  The legacy ``try`` adds the last term, the ``else`` row's
twin: a body or arm running into the next ``catch``/``catch_all`` is
counted one more in WAMR (measured on the generator's legacy modules).
"""

BRANCHES = ('br', 'br_if', 'br_table')


class Events:
    """What the walk saw (docs/images.md's three kinds of jumps)."""

    def __init__(self):
        self.loop_branches = self.false_ifs = self.then_into_else = self.arm_into_catch = 0
        self.steps = 0

    def wasmedge_count(self, wamr_count):
        """The WasmEdge model's count of the run, from the WAMR model's."""
        return (wamr_count + self.loop_branches + self.false_ifs - self.then_into_else
                - self.arm_into_catch)

    def __str__(self):
        return (f'{self.loop_branches} taken branches to loops, {self.false_ifs} ifs entered with a '
                f'false condition, {self.then_into_else} then-arms into their else, '
                f'{self.arm_into_catch} legacy try arms into a catch')


def _index(fi, cache):
    """Instruction index of each WAMR pc (byte offset) of ``fi``'s body."""
    table = cache.get(id(fi))
    if table is None:
        table = cache[id(fi)] = {ins.offset: i for i, ins in enumerate(fi.code.body)}
    return table


def events(ex, limit):
    """Step ``ex`` (a started WAMR-model executor) to its end or trap, at
    most ``limit`` instructions; the Events, or None past ``limit``."""
    from engine.errors import Trap, UncaughtException
    store = ex.store
    out, cache = Events(), {}
    while ex.steps < limit:
        if ex.finished:                 # a host function's call: no instruction at all
            return out
        fr = ex.frames[-1]
        fi = store.funcs[fr.func]
        table = _index(fi, cache)
        body = fi.code.body
        i = table[ex.pc]
        op = body[i].op
        depth = len(ex.frames)
        try:
            if ex.run(1):
                return out
        except (Trap, UncaughtException):     # an exception nobody caught ends the run too
            return out
        if len(ex.frames) != depth or ex.frames[-1] is not fr:
            continue                    # a call or a return: no jump of the table
        j = table.get(ex.pc)
        if op == 'if' and j != i + 1:
            out.false_ifs += 1
        elif op in BRANCHES and j is not None and j <= i and body[j - 1].op == 'loop':
            out.loop_branches += 1      # backwards to just after a loop: its body's start
        elif op == 'else':
            out.then_into_else += 1     # WAMR runs an else only when the then-arm reaches it
        elif op in ('catch', 'catch_all'):
            out.arm_into_catch += 1     # likewise a catch: only when the arm before reaches it
    return None
