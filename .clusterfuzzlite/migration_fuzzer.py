"""OSS-Fuzz entry point: uninterrupted vs migrated runs of generated
modules (``fuzz.atheris_target``); a mismatch is a crash."""

import sys

from fuzz import atheris_target

if __name__ == '__main__':
    atheris_target.main(sys.argv)
