"""Exception handling (spec exec/instructions.rst "throw", "throw_ref",
"try_table"; and the legacy try/catch/delegate/rethrow of the 3.0
testsuite's legacy/ files), shared by both runtime models.

An exception is raised in a run loop as ``Thrown`` (the instruction's
position and the ``syntax.Exn``); the executor's ``run`` catches it outside
its hot loop and asks ``find_handler`` frame by frame, innermost first,
where it is caught.  Which handlers are active in a frame follows from its
position alone, as its labels do: the ``try_table`` (or legacy ``try``)
blocks whose body holds the position, innermost first, with a ``delegate``
moving the search to the block its label names.  So the handler stack of a
frame is the ``try_table`` entries among its open blocks (the WAMR model's
label stack holds exactly those entries; the WasmEdge model derives them
from the PC), and what a migration must carry is the caught ``exnref``
values, which are ordinary operands, locals, globals or table entries,
plus, for the legacy ``rethrow``, the exception each open ``catch`` arm
caught (``Executor.caught``, keyed by (frame index, catch depth)).

``Handlers`` is the per-function table: for every instruction index the
innermost open block, each block's parent, each try's body range, clauses
(tag addresses of the instance) and delegate target, and each position's
number of open legacy catch arms.
"""

from ..errors import UncaughtException
from ..syntax import Exn  # noqa: F401  (the exnref value, re-exported for the executors)

EXN_OPS = frozenset(('throw', 'throw_ref', 'try_table', 'try', 'catch', 'catch_all',
                     'delegate', 'rethrow'))
_OPEN = frozenset(('block', 'loop', 'if', 'try_table', 'try'))


class Thrown(Exception):
    """An exception in flight inside a run loop: ``at`` is the instruction
    index (WasmEdge model) or byte offset (WAMR model) of the throwing
    instruction in the top frame."""

    def __init__(self, exn, at):
        super().__init__('exception')
        self.exn = exn
        self.at = at


# the most steps one turn of a run loop is given: a budget under 2**30 is a
# one-digit int, whose arithmetic CPython does on its fast path (a run to
# the end at 2**62 made every count a multi-digit operation); a longer run
# takes more turns, and a turn's end is an exact stop like any other
CHUNK = (1 << 30) - 1


def run_catching(ex, max_steps):
    """An executor's ``run``: its loop (``ex._run``, CHUNK steps at most at
    a time) until the budget is spent or the call returns, each exception
    thrown unwound by ``ex.unwind`` (which raises ``UncaughtException`` when
    nothing catches it) and the run continued with the steps left."""
    while True:
        before = ex.steps
        turn = CHUNK if max_steps is None or max_steps > CHUNK else max_steps
        try:
            if ex._run(turn):
                return True
        except Thrown as e:
            ex.unwind(e)
        if max_steps is not None:
            max_steps -= ex.steps - before
            if max_steps <= 0:
                return False


def exception_of(ex, e):
    """The exception a ``Thrown`` carries; for ``rethrow`` (an int: the
    catch depth) the one that catch arm of the top frame caught."""
    exn = e.exn
    return ex.caught[(len(ex.frames) - 1, exn)] if exn.__class__ is int else exn


def uncaught(exn):
    """The error an exception no handler caught becomes at the host."""
    e = UncaughtException('uncaught exception', f'tag address {exn.tag}, fields '
                                                 f'[{" ".join(map(str, exn.fields))}]')
    e.exn = exn
    return e


class Try:
    """One try_table or legacy try block (instruction index ``pos``)."""
    __slots__ = ('pos', 'table', 'body_end', 'clauses', 'catches', 'delegate', 'delegate_at')

    def __init__(self, pos, table):
        self.pos = pos
        self.table = table          # try_table (True) or legacy try
        self.body_end = None        # index of the first catch / catch_all / delegate / end
        self.clauses = ()           # try_table: (kind, tag address or None, label)
        self.catches = []           # legacy: (index of catch/catch_all, tag address or None)
        self.delegate = None        # legacy: block the delegate names (-1: the caller)
        self.delegate_at = None     # legacy: index of the delegate


class Handlers:
    """Static exception tables of one function (see the module docstring)."""
    __slots__ = ('innermost', 'parent', 'depth', 'tries', 'catch_depth', 'rethrow',
                 'index_at', 'index_before')

    def __init__(self, body, tagaddrs):
        n = len(body)
        self.innermost = innermost = [-1] * (n + 1)
        self.parent = parent = {}
        self.depth = depth = {}            # block -> number of blocks enclosing it
        self.tries = tries = {}
        self.catch_depth = catch_depth = [0] * (n + 1)
        self.rethrow = rethrow = {}        # rethrow index -> caught slot it rethrows
        self.index_at = {ins.offset: i for i, ins in enumerate(body)}
        self.index_before = {ins.end: i for i, ins in enumerate(body)}
        open_ = []                         # [block index, in a catch arm]
        arms = 0
        for i, ins in enumerate(body):
            innermost[i] = open_[-1][0] if open_ else -1
            catch_depth[i] = arms
            op = ins.op
            if op in _OPEN:
                parent[i] = open_[-1][0] if open_ else -1
                depth[i] = len(open_)
                if op == 'try_table':
                    t = tries[i] = Try(i, True)
                    t.clauses = tuple((k, None if x is None else tagaddrs[x], label)
                                      for k, x, label in ins.imm[1])
                elif op == 'try':
                    tries[i] = Try(i, False)
                open_.append([i, False])
            elif op == 'catch' or op == 'catch_all':
                b = open_[-1]
                t = tries[b[0]]
                if t.body_end is None:
                    t.body_end = i
                t.catches.append((i, tagaddrs[ins.imm] if op == 'catch' else None))
                if not b[1]:
                    b[1] = True
                    arms += 1
            elif op == 'rethrow':
                k = len(open_) - 1 - ins.imm
                rethrow[i] = sum(1 for e in open_[:k + 1] if e[1]) - 1
            elif op == 'end' or op == 'delegate':
                if not open_:
                    continue
                b, in_arm = open_.pop()
                if in_arm:
                    arms -= 1
                    # the end is reached from the body or by a branch too,
                    # with no arm entered: no caught exception is kept there
                    catch_depth[i] = arms
                t = tries.get(b)
                if t is not None and t.body_end is None:
                    t.body_end = i
                if op == 'delegate':
                    t.delegate_at = i
                    k = len(open_) - 1 - ins.imm
                    t.delegate = open_[k][0] if k >= 0 else -1
        innermost[n] = open_[-1][0] if open_ else -1
        catch_depth[n] = arms

    def find(self, pos, tag):
        """Where an exception of tag address ``tag`` raised at instruction
        ``pos`` (a call in progress: its index) is caught in this frame:
        (Try, clause number) for a try_table, (Try, index of the catch /
        catch_all) for a legacy try; None: it leaves the frame."""
        tries = self.tries
        parent = self.parent
        b = self.innermost[pos]
        while b != -1:
            t = tries.get(b)
            if t is not None and b < pos < t.body_end:
                if t.table:
                    for k, (kind, x, _) in enumerate(t.clauses):
                        if kind >= 2 or x == tag:
                            return t, k
                else:
                    for ci, x in t.catches:
                        if x is None or x == tag:
                            return t, ci
                    if t.delegate is not None:
                        pos = t.delegate_at
                        b = t.delegate
                        continue
            b = parent[b]
        return None


def handlers_of(fi):
    """The cached ``Handlers`` of a defined function (``FuncInst``)."""
    h = fi.cache.get('exn')
    if h is None:
        h = fi.cache['exn'] = Handlers(fi.code.body, fi.module.tagaddrs)
    return h


def has_handlers(body):
    """Whether a body uses any exception instruction (such a function is not
    compiled by the fast tier)."""
    return any(ins.op in EXN_OPS for ins in body)
