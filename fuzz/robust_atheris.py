"""Coverage-guided robustness fuzzing of raw module bytes with atheris.

The same contract as ``fuzz.robust --target module`` (every input ends in a
typed outcome, within the time bound), but libFuzzer picks the inputs by
the coverage they reach in the instrumented decoder, validator, runtime and
executors.  An untyped exception propagates, so libFuzzer saves the input
as a crash artifact; ``-timeout=2`` makes an input over 2 s a timeout
artifact.  Either replays with ``python -m fuzz.robust_atheris ARTIFACT``.

    python -m fuzz.robust_atheris -runs=100000 -timeout=2 -rss_limit_mb=3072 CORPUS_DIR

``ROBUST_STATS=FILE`` keeps ``inputs <outcome counts as JSON>`` in FILE
every 1,000 inputs (libFuzzer's own output counts executions only).
"""

import json
import os
import sys

import atheris

with atheris.instrument_imports(include=['engine']):
    from engine import binary, runtime, valid
    from engine.exec import wamr as exec_wamr, wasmedge as exec_wasmedge  # noqa: F401

from engine.migrate.images import write_file_atomic
from fuzz import robust

_STATS = os.environ.get('ROBUST_STATS')
_counts = {}
_n = [0]


def TestOneInput(data: bytes):
    _n[0] += 1
    outcome = robust.check_module(data, ('wasmedge', 'wamr')[_n[0] % 2])
    _counts[outcome] = _counts.get(outcome, 0) + 1
    if _STATS and _n[0] % 1000 == 0:
        write_file_atomic(_STATS, f'{_n[0]} {json.dumps(_counts, sort_keys=True)}\n')


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    if len(argv) == 2 and os.path.isfile(argv[1]):     # replay one artifact
        with open(argv[1], 'rb') as f:
            print(robust.check_module(f.read(), 'wasmedge'))
        return 0
    atheris.Setup(argv, TestOneInput)
    atheris.Fuzz()


if __name__ == '__main__':
    sys.exit(main())
