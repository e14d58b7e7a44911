"""``python -m fuzz``: the short, deterministic migration campaign that
``tox -e fuzz`` and the CI smoke run.

Fixed seed and generators (hypothesis and smith: atheris' coverage feedback
depends on timing, so it stays out of the reproducible smoke), a fixed
number of units, two workers; ``--time S`` caps the wall time.  Any other
option is passed on to ``python -m fuzz.migrate`` (see its ``--help``).
Exit status as there: 0 clean, 1 failures, 2 usage error.
"""

import sys

from fuzz import migrate

DEFAULTS = {'--runs': '30', '--jobs': '2', '--seed': '0',
            '--generator': 'hypothesis,smith', '--out': '.fuzz-smoke'}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    given = {a.split('=', 1)[0] for a in argv if a.startswith('--')}
    extra = []
    for opt, value in DEFAULTS.items():
        if opt not in given:
            extra += [opt, value]
    return migrate.main(extra + argv)


if __name__ == '__main__':
    sys.exit(main())
