"""Re-run a reproducer folder written by ``python -m fuzz.migrate``.

    python -m fuzz.replay DIR [--images OUT] [--trace [--trace-out OUT]]

Reads DIR/module.wasm and DIR/case.json (entry, args, hops, whether the
wasmtime comparison was on, the executor tier: ``tier``, 'interp' when a
reproducer older than the field lacks it), runs the same checks under the
same tier and prints the mismatch
(exit 1) or ``no longer fails`` (exit 0).  A missing or broken folder is a
one-line error with exit 2.  ``--images OUT`` keeps the image sets of
every hop of the replayed run.

``--trace`` also re-runs the uninterrupted and the migrated execution
instruction by instruction (``fuzz.trace``) and shows the first instruction
at which their states differ, both states side by side; ``--trace-out OUT``
writes both traces (``uninterrupted.jsonl``, ``migrated.jsonl``, one JSON
object per instruction; format in docs/campaigns.md) and the report
(``divergence.json``) there.
"""

import argparse
import json
import os
import sys

from fuzz import oracle


class ReproducerError(Exception):
    pass


def load(directory):
    """(wasm, case dict with decoded args and hops) of a reproducer folder."""
    if not os.path.isdir(directory):
        raise ReproducerError(f'{directory}: not a directory')
    wasm_path = os.path.join(directory, 'module.wasm')
    case_path = os.path.join(directory, 'case.json')
    try:
        with open(wasm_path, 'rb') as f:
            wasm = f.read()
    except OSError as e:
        raise ReproducerError(f'{wasm_path}: cannot read: {e.strerror}')
    try:
        with open(case_path) as f:
            case = json.load(f)
    except OSError as e:
        raise ReproducerError(f'{case_path}: cannot read: {e.strerror}')
    except ValueError as e:
        raise ReproducerError(f'{case_path}: not valid JSON: {e}')
    if not isinstance(case, dict):
        raise ReproducerError(f'{case_path}: expected a JSON object')
    for key, kind in (('entry', str), ('args', list), ('hops', list)):
        if not isinstance(case.get(key), kind):
            raise ReproducerError(f'{case_path}: field {key!r} missing or not a {kind.__name__}')
    try:
        case['args'] = tuple(oracle.decode_value(v) for v in case['args'])
    except ValueError as e:
        raise ReproducerError(f'{case_path}: field \'args\': {e}')
    hops = []
    for i, h in enumerate(case['hops']):
        ok = (isinstance(h, list) and len(h) == 2 and h[0] in (oracle.RUNTIMES if i == 0 else oracle.ROUTES)
              and (h[1] is None or (isinstance(h[1], int) and not isinstance(h[1], bool) and h[1] >= 0)))
        if not ok or (h[1] is None) != (i == len(case['hops']) - 1):
            raise ReproducerError(f'{case_path}: hops[{i}] = {h!r}: expected [runtime, steps] with runtime '
                                  f'in {oracle.RUNTIMES} (later hops also {oracle.ROUTES[2:]}), '
                                  f'steps >= 0, and null steps for the last hop only')
        hops.append((h[0], h[1]))
    if not hops:
        raise ReproducerError(f'{case_path}: field \'hops\' is empty')
    case['hops'] = hops
    case['tier'] = case.get('tier', 'interp')     # written before campaigns ran the compiled tier
    if case['tier'] not in oracle.TIERS:
        raise ReproducerError(f'{case_path}: field \'tier\' = {case["tier"]!r}: expected one of '
                              f'{", ".join(oracle.TIERS)}')
    return wasm, case


def replay(directory, image_dir=None):
    """Mismatch lines of the reproducer now (empty: it no longer fails)."""
    wasm, case = load(directory)
    tier = case['tier']
    try:
        ref = oracle.uninterrupted(wasm, case['entry'], case['args'], 'wasmedge', tier=tier)
    except oracle.EngineFailure as e:
        raise ReproducerError(f'{directory}: {e}')
    except Exception as e:
        if not hasattr(e, 'message'):          # an engine crash is the failure itself
            return [f'uninterrupted run failed: {type(e).__name__}: {e}']
        raise ReproducerError(f'{directory}/module.wasm: {type(e).__name__}: {e}')
    hops = case['hops']
    out = []
    if len(hops) == 1:
        # a failure of the uninterrupted run: wasmtime, the other tier or the other model
        if case.get('wasmtime', True):
            out += oracle.compare_wasmtime(wasm, case['entry'], case['args'], ref)
        out += oracle.compare_tiers(wasm, case['entry'], case['args'], ref, 'wasmedge', tier)
        if hops[0][0] != 'wasmedge':
            try:
                other = oracle.uninterrupted(wasm, case['entry'], case['args'], hops[0][0], tier=tier)
                out += oracle.compare(ref, other, f'uninterrupted {hops[0][0]}', steps=False)
                if not out and hops[0][0] == 'wamr':
                    out += oracle.compare_counts(wasm, case['entry'], case['args'], ref, other)
                out += oracle.compare_tiers(wasm, case['entry'], case['args'], other, hops[0][0],
                                            tier)
            except Exception as e:
                out.append(f'uninterrupted run in {hops[0][0]} failed: {type(e).__name__}: {e}')
        return out
    return oracle.check(wasm, case['entry'], case['args'], hops, image_dir=image_dir, tier=tier)


def show_divergence(report, out=sys.stdout):
    """The report of ``fuzz.trace.divergence`` for a reader: the two states
    at the first differing instruction, side by side."""
    cps = ', '.join(str(c) for c in report.get('checkpoints', [])) or 'none'
    print(f'trace: {report["instructions"]["uninterrupted"]} instructions uninterrupted, '
          f'{report["instructions"]["migrated"]} migrated; checkpoints before compared '
          f'instruction {cps}', file=out)
    if not report.get('found'):
        print(f'no instruction differs: {report.get("note", "")}', file=out)
        return
    x, y = report['uninterrupted'], report['migrated']
    print(f'first divergent instruction: #{report["index"]} of the compared instructions '
          f'(last checkpoint before it: #{report["after_checkpoint"]}); {report["kind"]}:', file=out)
    for line in report['what']:
        print(f'  {line}', file=out)

    def cell(rec, field):
        if 'op' not in rec:         # the run ended (or the migration failed) before this instruction
            return (rec.get('error') or rec.get('ended', '')) if field == 'instruction' else '-'
        return {'model @ step': lambda: f'{rec["model"]} @ {rec["step"]}',
                'function': lambda: f'{rec["instance"]} {rec["func"]}',
                'pc (wasmedge, wamr)': lambda: f'{rec["pc"]["wasmedge"]}, {rec["pc"]["wamr"]}',
                'instruction': lambda: rec['op'], 'stack top after': lambda: str(rec['top']),
                'memory writes': lambda: json.dumps(rec['writes'])}[field]()
    fields = ('model @ step', 'function', 'pc (wasmedge, wamr)', 'instruction', 'stack top after',
              'memory writes')
    rows = [('', 'uninterrupted', 'migrated')] + [(f, cell(x, f), cell(y, f)) for f in fields]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    for r in rows:
        mark = '  <--' if r[0] not in ('', 'model @ step') and r[1] != r[2] else ''
        print(f'  {r[0]:<{w0}}  {r[1]:<{w1}}  {r[2]}{mark}', file=out)


def trace_reproducer(directory, out_dir=None):
    """The divergence report of a reproducer (and its traces in ``out_dir``)."""
    from fuzz import trace
    wasm, case = load(directory)
    if len(case['hops']) < 2:
        raise ReproducerError(f'{directory}: not a migrated run (one hop): nothing to trace')
    keep = {}
    report = trace.divergence(wasm, case['entry'], case['args'], case['hops'], keep=keep,
                              tier=case['tier'])
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        for name in ('uninterrupted', 'migrated'):
            trace.write_jsonl(keep[name], os.path.join(out_dir, f'{name}.jsonl'))
        with open(os.path.join(out_dir, 'divergence.json'), 'w') as f:
            json.dump(report, f, indent=1)
            f.write('\n')
    return report


def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m fuzz.replay', description=__doc__.split('\n\n')[0])
    p.add_argument('dir', metavar='DIR', help='a failures/<id> folder of a campaign')
    p.add_argument('--images', metavar='OUT', help='keep the image sets of every hop here')
    p.add_argument('--trace', action='store_true',
                   help='trace both runs and show the first instruction where they differ')
    p.add_argument('--trace-out', metavar='OUT', help='with --trace: write both traces (JSON lines) '
                   'and divergence.json here')
    a = p.parse_args(argv)
    try:
        mismatch = replay(a.dir, a.images)
        report = trace_reproducer(a.dir, a.trace_out) if a.trace else None
    except ReproducerError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    except OSError as e:
        print(f'error: --trace-out {a.trace_out}: {e.strerror}', file=sys.stderr)
        return 2
    for line in mismatch:
        print(line)
    if report is not None:
        show_divergence(report)
    if mismatch:
        return 1
    print('no longer fails')
    return 0


if __name__ == '__main__':
    sys.exit(main())
