"""Coverage-guided migration fuzzing with atheris (libFuzzer).

The engine and the migration oracle are instrumented, so libFuzzer keeps the
inputs that reach new code of the executors, the image reader/writer and the
translator.  An input is decoded by ``fuzz.gen.from_bytes`` into a valid,
terminating module; the same bytes pick the checkpoint points (see
``oracle.case_rng``).  A mismatch raises ``MigrationMismatch``, which makes
libFuzzer save the input as a crash artifact.

    python -m fuzz.atheris_target [libFuzzer flags] [CORPUS_DIR ...]

``FUZZ_STATS=FILE`` makes the target keep ``executions checks`` in FILE
(the campaign driver reads it; libFuzzer's own output has no check count).
``FUZZ_WASMTIME=0`` skips the wasmtime comparison, ``FUZZ_TIER=interp|fast`` sets
the executor tier (default fast), ``FUZZ_FEATURES=a,b,...`` the generator's
features (default ``fuzz.gen.FEATURES``; the campaign passes its own, so
its worker remakes the same module from a saved input).  ``FUZZ_COLLECT=DIR``
(campaign mode) saves a failing input as ``DIR/mismatch-<sha1>`` instead of
raising, so that one session goes on to find more than its first failure.
"""

import os
import sys

import atheris

with atheris.instrument_imports(include=['engine', 'fuzz.oracle']):
    from fuzz import oracle
from engine.migrate.images import write_file_atomic   # instrumented above, with the oracle

from fuzz import gen


class MigrationMismatch(Exception):
    """A migrated run differs from the uninterrupted one (or wasmtime)."""


_STATS = os.environ.get('FUZZ_STATS')
_WASMTIME = os.environ.get('FUZZ_WASMTIME', '1') != '0'
_TIER = os.environ.get('FUZZ_TIER', oracle.TIER)
_COLLECT = os.environ.get('FUZZ_COLLECT')
_FEATURES = (gen.FEATURES if os.environ.get('FUZZ_FEATURES') is None
             else frozenset(f for f in os.environ['FUZZ_FEATURES'].split(',') if f))
_counts = [0, 0]


def run_case(data: bytes):
    """(checks, Failure or None, GeneratedModule) of one input; what the
    campaign driver also calls to reproduce a saved crash input."""
    gm = gen.from_bytes(data, features=_FEATURES)
    checks, failure = oracle.check_module(gm.wasm, gm.entry, gm.args, oracle.case_rng(data),
                                          wasmtime=_WASMTIME, tier=_TIER, stops=gm.stops)
    return checks, failure, gm


def TestOneInput(data: bytes):
    checks, failure, _ = run_case(data)
    _counts[0] += 1
    _counts[1] += checks
    if _STATS:
        with open(_STATS, 'w') as f:
            f.write(f'{_counts[0]} {_counts[1]}\n')
    if failure is not None and _COLLECT:
        import hashlib
        write_file_atomic(os.path.join(_COLLECT, 'mismatch-' + hashlib.sha1(data).hexdigest()),
                          bytes(data))
    elif failure is not None:
        raise MigrationMismatch(f'args {failure.args!r}, hops {oracle.describe(failure.hops)}: '
                                + '; '.join(failure.mismatch))


def main(argv=None):
    atheris.Setup(list(sys.argv if argv is None else argv), TestOneInput)
    atheris.Fuzz()


if __name__ == '__main__':
    main()
