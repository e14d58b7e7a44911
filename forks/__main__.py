"""``python -m forks``: build the migration forks, run the fork matrix, replay a reproducer.

    python -m forks build [wamr|wasmedge] [--forks DIR]
    python -m forks matrix [options]        (python -m forks matrix --help)
    python -m forks replay DIR
"""

import sys

USAGE = __doc__.split('\n\n', 1)[1]


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help'):
        print('usage:\n' + USAGE.rstrip())
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == 'build':
        from forks import build
        return build.main(rest)
    if cmd == 'matrix':
        from forks import matrix
        return matrix.main(rest)
    if cmd == 'replay':
        from forks import matrix
        if len(rest) != 1:
            print('usage: python -m forks replay DIR', file=sys.stderr)
            return 2
        try:
            return matrix.replay(rest[0])
        except matrix.UsageError as e:
            print(f'error: {e}', file=sys.stderr)
            return 2
    print(f'error: unknown command {cmd!r}\nusage:\n' + USAGE.rstrip(), file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main())
