"""Tables of a ``python -m bench`` report (the dict written to
``bench/results.json``) as Markdown: CPU seconds per engine, the ratios
issue 9's targets name, the checkpoint costs, and every other workload's
rows.  ``python -m bench --table`` prints them from the JSON;
``--readme`` puts them into README.md between the two markers."""

import re

from bench.baseline import ISSUE9
from bench.engines import ENGINES, OURS

BEGIN, END = '<!-- bench:begin -->', '<!-- bench:end -->'
MODELS = ('wasmedge', 'wamr')
# workloads whose time is a loop's (the fast tier's 30x target)
LOOPS = ('fib', 'i64-loop', 'memory', 'mandelbrot', 'nbody', 'call-indirect')
SHORT = {'unavailable': 'n/a', 'error': 'error', 'wrong result': 'WRONG'}


def _side_by_side(w):
    """A workload run on other engines than ours (a compute workload)."""
    return any(r.get('engine') in ENGINES and r['engine'] not in OURS for r in w['rows'])


def _engine_rows(report):
    """{(workload, case): {engine: row}} of the compute workloads."""
    out = {}
    for name, w in report['workloads'].items():
        if _side_by_side(w):
            for r in w['rows']:
                out.setdefault((name, r['case']), {})[r['engine']] = r
    return out


def _cell(row, notes):
    if row is None:
        return ''
    if row.get('cpu_seconds') is not None and row.get('status', 'ok') == 'ok':
        return f'{row["cpu_seconds"]:.3f}'
    why = row.get('why', '')
    if why not in notes:
        notes.append(why)
    return f'{SHORT.get(row.get("status"), row.get("status"))} [{notes.index(why) + 1}]'


def _ratio(num, den):
    """num/den of two rows' seconds, or None when either has no time."""
    a = num and num.get('status') == 'ok' and num.get('cpu_seconds')
    b = den and den.get('status') == 'ok' and den.get('cpu_seconds')
    if not a or not b:
        return None
    return a / b


def ratios(report):
    """Per (case, model): fast÷interp speed-up (over today's interpreter
    and over the one issue 9 measured, bench.baseline), pwasm-compile÷fast
    and pwasm-interp÷interp (>= 1: ours is at least as fast)."""
    out = []
    for (name, case), rows in _engine_rows(report).items():
        for m in MODELS:
            interp, fast = rows.get(f'{m}/interp'), rows.get(f'{m}/fast')
            out.append({'workload': name, 'case': case, 'model': m,
                        'fast_speedup_over_interp': _ratio(interp, fast),
                        'fast_speedup_over_issue_interp': _ratio(rows.get(f'{m}/interp@{ISSUE9}'), fast),
                        'pwasm_compile_over_fast': _ratio(rows.get('pwasm-compile'), fast),
                        'pwasm_interp_over_interp': _ratio(rows.get('pwasm-interp'), interp)})
    return out


def _fmt(x):
    return 'n/a' if x is None else f'{x:.2f}'


def render(report):
    """The Markdown tables of one report."""
    from bench.compute import repeat_rule
    runs, budget = repeat_rule(report.get('repeat', 3))
    lines = [f'`python -m bench{" --quick" if report.get("quick") else ""}` on {report["date"]}, '
             f'Python {report["python"]}, {report["machine"]}, {report["cpus"]} CPUs'
             + (f', {report["total_cpu_seconds"]:.0f} s CPU in all' if 'total_cpu_seconds' in report
                else '') + '.', '',
             f'CPU seconds of the timed run, the least of up to {runs} when the runs took under '
             f'{budget:g} s in all, each prepared afresh'
             + (", the engines' runs taken in turn" if report.get('in_turn') else '')
             + ' (instantiation excluded; pwasm-compile includes its '
             'compilation, which happens at the first call, with its disk cache of generated code '
             'off; our fast tier includes its compilation too).', '']
    notes = []
    lines.append('| workload | ' + ' | '.join(ENGINES) + ' |')
    lines.append('|---|' + '---:|' * len(ENGINES))
    for (name, case), rows in _engine_rows(report).items():
        lines.append(f'| {case} | ' + ' | '.join(_cell(rows.get(e), notes) for e in ENGINES) + ' |')
    lines += ['', 'Ratios (issue 9 targets: fast ÷ interp ≥ 30 on the loop workloads, interp being '
              f'the interpreter of the day the issue was filed, interp@{ISSUE9}; '
              'pwasm-compile ÷ fast ≥ 1 everywhere; pwasm-interp ÷ interp ≥ 1):', '',
              f'| workload | model | interp ÷ fast | interp@{ISSUE9} ÷ fast | pwasm-compile ÷ fast '
              '| pwasm-interp ÷ interp |',
              '|---|---|---:|---:|---:|---:|']
    for r in ratios(report):
        lines.append(f'| {r["case"]} | {r["model"]} | {_fmt(r["fast_speedup_over_interp"])} | '
                     f'{_fmt(r.get("fast_speedup_over_issue_interp"))} | '
                     f'{_fmt(r["pwasm_compile_over_fast"])} | {_fmt(r["pwasm_interp_over_interp"])} |')
    ours = [r for w in report['workloads'].values() if not _side_by_side(w)
            for r in w['rows'] if r.get('engine') in OURS]
    if ours:
        lines += ['', 'Checkpoint (save + write the directory) and restore (read + load), CPU seconds '
                  '(target: the 64 MiB checkpoint with 1 MiB written ≤ 3 × the 1 MiB one):', '',
                  '| case | engine | checkpoint | restore | image bytes | ÷ 1 MiB case |',
                  '|---|---|---:|---:|---:|---:|']
        for r in ours:
            restore = r.get('restore_cpu_seconds')
            lines.append(f'| {r["case"]} | {r["engine"]} | {_cell(r, notes)} | '
                         f'{"" if restore is None else f"{restore:.3f}"} | {r.get("image_bytes", "")} | '
                         f'{r.get("ratio_to_1MiB", "")} |')
    other = [(name, r) for name, w in report['workloads'].items() for r in w['rows']
             if r.get('engine') not in ENGINES]
    if other:
        lines += ['', 'Other workloads:', '',
                  '| workload | case | engine | CPU s | details |', '|---|---|---|---:|---|']
        for name, r in other:
            details = ', '.join(f'{k}={v}' for k, v in r.items()
                                if k not in ('case', 'engine', 'cpu_seconds', 'status', 'why'))
            lines.append(f'| {name} | {r["case"]} | {r.get("engine", "")} | '
                         f'{_cell(r, notes)} | {details} |')
    if notes:
        lines += [''] + [f'[{k}] {n}' for k, n in enumerate(notes, 1)]
    return '\n'.join(lines) + '\n'


def update_readme(path, report):
    """Replace the text between the bench markers of ``path``."""
    with open(path) as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        raise ValueError(f'{path}: no {BEGIN} ... {END} markers to put the table between')
    new = re.sub(re.escape(BEGIN) + '.*?' + re.escape(END),
                 lambda _: f'{BEGIN}\n{render(report)}{END}', text, flags=re.S)
    with open(path, 'w') as f:
        f.write(new)
