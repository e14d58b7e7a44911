"""OSS-Fuzz entry point: raw module bytes through the decoder, validator
and both executors (``fuzz.robust_atheris``); an untyped exception is a
crash."""

import sys

from fuzz import robust_atheris

if __name__ == '__main__':
    sys.exit(robust_atheris.main(sys.argv))
