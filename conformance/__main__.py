"""Entry point: ``python -m conformance`` (see conformance/cli.py)."""

import sys

from .cli import main

try:
    sys.exit(main())
except KeyboardInterrupt:
    print('interrupted', file=sys.stderr)
    sys.exit(130)
