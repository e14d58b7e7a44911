"""``python -m bench [WORKLOAD ...] [--quick] [--json FILE]``: run the named
workloads (default: all), print a table of CPU seconds, write JSON."""

import argparse
import json
import os
import platform
import sys
import time

from bench import load
from engine.images import write_file_atomic


def main(argv=None):
    workloads = load()
    p = argparse.ArgumentParser(prog='python -m bench', description=__doc__.split('\n\n')[0])
    p.add_argument('names', nargs='*', metavar='WORKLOAD',
                   help='workloads to run (default: all): ' + ', '.join(workloads))
    p.add_argument('--quick', action='store_true', help='smaller sizes (a smoke run)')
    p.add_argument('--json', default=os.path.join('bench', 'results.json'), metavar='FILE',
                   help='where to write the results (default bench/results.json)')
    a = p.parse_args(argv)
    unknown = [n for n in a.names if n not in workloads]
    if unknown:
        print(f'error: unknown workload {unknown[0]!r}; expected one of: {", ".join(workloads)}',
              file=sys.stderr)
        return 2
    report = {'date': time.strftime('%Y-%m-%d %H:%M:%S %Z'), 'python': platform.python_version(),
              'machine': platform.machine(), 'cpus': os.cpu_count(), 'quick': a.quick, 'workloads': {}}
    print(f'{"workload":<14} {"case":<24} {"cpu s":>8}  details')
    for name in a.names or list(workloads):
        desc, fn = workloads[name]
        rows = fn(a.quick)
        report['workloads'][name] = {'description': desc, 'rows': rows}
        for r in rows:
            extra = ', '.join(f'{k}={v}' for k, v in r.items() if k not in ('case', 'cpu_seconds'))
            print(f'{name:<14} {r["case"]:<24} {r["cpu_seconds"]:>8.3f}  {extra}', flush=True)
    write_file_atomic(a.json, json.dumps(report, indent=1) + '\n')
    print(f'written: {a.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
