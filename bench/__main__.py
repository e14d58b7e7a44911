"""``python -m bench [WORKLOAD ...] [--quick] [--repeat N] [--json FILE]``: run the named
workloads (default: all), print CPU seconds per engine and the ratios of
issue 9's targets, write JSON.  ``--table`` prints the tables of an
existing JSON instead; ``--readme`` also puts them into README.md."""

import argparse
import json
import os
import platform
import resource
import sys
import time

from bench import load
from bench.report import ratios, render, update_readme
from engine.migrate.images import write_file_atomic


def cpu_all():
    """CPU seconds of this process and of the children it waited for
    (the campaign workload runs one)."""
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + c.ru_utime + c.ru_stime


def main(argv=None):
    workloads = load()
    p = argparse.ArgumentParser(prog='python -m bench', description=__doc__.split('\n\n')[0])
    p.add_argument('names', nargs='*', metavar='WORKLOAD',
                   help='workloads to run (default: all): ' + ', '.join(workloads))
    p.add_argument('--quick', action='store_true', help='smaller sizes (a smoke run)')
    p.add_argument('--json', default=os.path.join('bench', 'results.json'), metavar='FILE',
                   help='where to write the results (default bench/results.json)')
    p.add_argument('--table', action='store_true',
                   help='print the Markdown tables of --json (run nothing)')
    p.add_argument('--readme', metavar='FILE', nargs='?', const='README.md',
                   help='with --table: put them into FILE (default README.md) between '
                        '<!-- bench:begin --> and <!-- bench:end -->')
    p.add_argument('--repeat', type=int, default=3, metavar='N',
                   help='time a run under a second up to N times, each prepared afresh, and '
                        'keep the least (while they take under N/3 s in all; default 3); the '
                        "engines' runs are taken in turn")
    a = p.parse_args(argv)
    if a.table or a.readme:
        return show(a)
    if a.repeat < 1:
        print(f'error: --repeat {a.repeat}: at least 1 run', file=sys.stderr)
        return 2
    from bench import compute
    compute.REPEAT, compute.REPEAT_BUDGET = compute.repeat_rule(a.repeat)
    unknown = [n for n in a.names if n not in workloads]
    if unknown:
        print(f'error: unknown workload {unknown[0]!r}; expected one of: {", ".join(workloads)}',
              file=sys.stderr)
        return 2
    report = {'date': time.strftime('%Y-%m-%d %H:%M:%S %Z'), 'python': platform.python_version(),
              'machine': platform.machine(), 'cpus': os.cpu_count(), 'quick': a.quick,
              'repeat': a.repeat, 'in_turn': True, 'workloads': {}}
    t0 = cpu_all()
    print(f'{"workload":<18} {"case":<30} {"engine":<16} {"cpu s":>8}  details')
    for name in a.names or list(workloads):
        desc, fn = workloads[name]
        rows = fn(a.quick)
        report['workloads'][name] = {'description': desc, 'rows': rows}
        for r in rows:
            cpu = r['cpu_seconds']
            extra = ', '.join(f'{k}={v}' for k, v in r.items()
                              if k not in ('case', 'cpu_seconds', 'engine', 'status'))
            print(f'{name:<18} {r["case"]:<30} {r.get("engine", ""):<16} '
                  f'{"-" if cpu is None else f"{cpu:.3f}":>8}  '
                  f'{"" if r.get("status", "ok") == "ok" else r["status"] + ": "}{extra}', flush=True)
    report['total_cpu_seconds'] = round(cpu_all() - t0, 1)
    report['ratios'] = ratios(report)
    write_file_atomic(a.json, json.dumps(report, indent=1) + '\n')
    print()
    print(render(report))
    print(f'written: {a.json}')
    return 0


def show(a):
    try:
        with open(a.json) as f:
            report = json.load(f)
    except (OSError, ValueError) as e:
        print(f'error: {a.json}: cannot read the results: {e}', file=sys.stderr)
        return 2
    if a.readme:
        try:
            update_readme(a.readme, report)
        except (OSError, ValueError) as e:
            print(f'error: {e}', file=sys.stderr)
            return 2
        print(f'tables of {a.json} written into {a.readme}')
        return 0
    print(render(report), end='')
    return 0


if __name__ == '__main__':
    sys.exit(main())
