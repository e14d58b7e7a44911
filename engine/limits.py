"""Resource limits of one engine use (spec appendix "Implementation
Limitations"): how big a module, memory or table may get, how deep calls
may nest, how many instances a store holds, and how long a run may take.

Every limit is checked *before* the thing it bounds is allocated or
started, and exceeding one raises ``LimitError`` naming the limit (the
command-line flag's name), the value asked for and the maximum -- never a
Python ``MemoryError`` and never an endless allocation.  Growing a memory or
table past its limit is not an error: ``memory.grow``/``table.grow`` return
-1, as the spec allows an implementation to.  Exceeding the call depth is
the spec's "call stack exhausted" trap (``CallDepthError``, both an
``Exhaustion`` and a ``LimitError``).

The defaults are generous enough for the whole spec testsuite and for real
programs (a 1 GiB memory, ten million table entries, 10,000 nested calls,
100 memories: wasmtime's validator refuses more);
a restored GC heap may hold four million objects, each array as long as a
table may be (the limit ``array.new`` obeys at run time); the step budget
and the wall-clock limit are off by default because a
long run is not an error in itself (``--progress`` shows one), and on in
the robustness campaigns.
"""

import time
from dataclasses import dataclass, fields, replace
from typing import Optional

from .errors import Exhaustion, WasmError


@dataclass(frozen=True)
class Limits:
    max_module_bytes: int = 64 << 20        # size of the binary module
    max_funcs: int = 1_000_000              # functions of a module, imports counted
    max_memory_pages: int = 16384           # 64 KiB pages of a memory (1 GiB)
    max_memories: int = 100                 # memories of a module, imports counted (wasmparser's too)
    max_table_elems: int = 10_000_000       # entries of a table
    max_instances: int = 100_000            # module instances in one store
    max_call_depth: int = 10_000            # nested Wasm calls (frames)
    max_gc_objects: int = 4_000_000         # GC objects of a heap read from an image set
    max_steps: Optional[int] = None         # instructions one run may execute
    timeout: Optional[float] = None         # seconds one run may take

    def check(self, name, value, what=''):
        """Raise LimitError when ``value`` exceeds limit ``name``."""
        maximum = getattr(self, name)
        if maximum is not None and value > maximum:
            raise LimitError(name, value, maximum, what)


DEFAULT = Limits()
NAMES = tuple(f.name for f in fields(Limits))
SIZES = ('max_module_bytes', 'max_funcs', 'max_memories', 'max_memory_pages', 'max_table_elems')  # what reading checks


class LimitError(WasmError):
    """A resource limit was exceeded; ``limit`` is its name (as in
    ``Limits``), ``value`` what was asked for, ``maximum`` the limit."""

    def __init__(self, limit, value, maximum, what='', message=None):
        self.limit, self.value, self.maximum = limit, value, maximum
        flag = '--' + limit.replace('_', '-')
        text = message or (f'{what + ": " if what else ""}{value} exceeds the limit '
                           f'{flag} {maximum}')
        super().__init__(f'limit exceeded: {text}' if message is None else text)


class CallDepthError(LimitError, Exhaustion):
    """More nested calls than ``max_call_depth``: the spec's exhaustion
    trap, whose message the testsuite checks."""

    def __init__(self, maximum):
        LimitError.__init__(self, 'max_call_depth', maximum + 1, maximum,
                            message='call stack exhausted')
        self.where = f'--max-call-depth {maximum}'


def of(store):
    """The limits of a store (a store made without any has the defaults)."""
    return getattr(store, 'limits', None) or DEFAULT


def with_options(base=None, **values):
    """``base`` with the given limits replaced; ``None`` values keep the
    base's (what the command-line flags give when not passed)."""
    given = {k: v for k, v in values.items() if v is not None}
    unknown = set(given) - set(NAMES)
    if unknown:
        raise TypeError(f'unknown limits {sorted(unknown)}')
    return replace(base or DEFAULT, **given)


CHUNK = 100_000       # instructions between wall-clock checks (a few 10 ms)


def run_bounded(ex, limits=None, stop_at=None, poll=None, chunk=CHUNK):
    """Run executor ``ex`` until it finishes (True), until ``stop_at``
    instructions in total have executed or ``poll()`` returns True (False),
    enforcing ``limits.max_steps`` (counted from where this call starts)
    and ``limits.timeout``.  ``poll`` is called every ``chunk``
    instructions (a trigger file, a progress line)."""
    limits = limits or DEFAULT
    if ex.finished:
        return True
    first = ex.steps
    stop_steps = None if limits.max_steps is None else first + limits.max_steps
    deadline = None if limits.timeout is None else time.monotonic() + limits.timeout
    chunked = deadline is not None or poll is not None
    while True:
        budget = None
        for bound in (stop_at, stop_steps):
            if bound is not None:
                left = bound - ex.steps
                budget = left if budget is None else min(budget, left)
        if stop_at is not None and ex.steps >= stop_at:
            return False
        if stop_steps is not None and ex.steps >= stop_steps:
            raise LimitError('max_steps', ex.steps - first + 1, limits.max_steps,
                             'instructions executed')
        if chunked:
            budget = chunk if budget is None else min(budget, chunk)
        if ex.run(budget):
            return True
        if deadline is not None and time.monotonic() > deadline:
            raise LimitError('timeout', round(limits.timeout + time.monotonic() - deadline, 3),
                             limits.timeout, f'seconds of run time ({ex.steps - first} '
                                             f'instructions executed)')
        if poll is not None and poll():
            return False


# ------------------------------------------------------------ command lines

_HELP = {
    'max_module_bytes': 'largest module file in bytes',
    'max_funcs': 'most functions in a module (imports counted)',
    'max_memories': 'most memories in a module (imports counted)',
    'max_memory_pages': 'most 64 KiB pages a memory may have (declared, grown or restored)',
    'max_table_elems': 'most entries a table may have (declared, grown or restored)',
    'max_instances': 'most module instances in one store',
    'max_call_depth': 'most nested calls before "call stack exhausted"',
    'max_gc_objects': 'most GC objects (structs, arrays, i31s, host references) in the heap '
                      'of a restored image set or neutral document',
    'max_steps': 'most instructions one run may execute (default: no limit)',
    'timeout': 'most seconds one run may take (default: no limit)',
}


def count(text):
    """argparse type: a non-negative integer (decimal or 0x hex)."""
    import argparse
    try:
        n = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a whole number') from None
    if n < 0:
        raise argparse.ArgumentTypeError(f'{text} is negative; a count of instructions or '
                                         f'items is 0 or more')
    return n


def seconds(text):
    """argparse type: a positive number of seconds."""
    import argparse
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number of seconds') from None
    if not x > 0 or x == float('inf'):
        raise argparse.ArgumentTypeError(f'{text} is not a positive number of seconds')
    return x


def add_arguments(parser, names=NAMES):
    """The ``--max-…``/``--timeout`` flags of ``names`` on an argparse parser."""
    group = parser.add_argument_group('resource limits')
    for name in names:
        default = getattr(DEFAULT, name)
        help_text = _HELP[name] + ('' if default is None else f' (default: {default})')
        group.add_argument('--' + name.replace('_', '-'), dest='limit_' + name,
                           type=seconds if name == 'timeout' else count,
                           metavar='S' if name == 'timeout' else 'N', help=help_text)


def from_arguments(a, base=None):
    """The Limits a parsed command line asks for."""
    return with_options(base, **{name: getattr(a, 'limit_' + name, None) for name in NAMES})
