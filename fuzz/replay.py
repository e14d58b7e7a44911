"""Re-run a reproducer folder written by ``python -m fuzz.migrate``.

    python -m fuzz.replay DIR [--images OUT]

Reads DIR/module.wasm and DIR/case.json (entry, args, hops, whether the
wasmtime comparison was on), runs the same checks and prints the mismatch
(exit 1) or ``no longer fails`` (exit 0).  A missing or broken folder is a
one-line error with exit 2.  ``--images OUT`` keeps the image sets of
every hop of the replayed run.
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
    return wasm, case


def replay(directory, image_dir=None):
    """Mismatch lines of the reproducer now (empty: it no longer fails)."""
    wasm, case = load(directory)
    try:
        oracle.uninterrupted(wasm, case['entry'], case['args'], 'wasmedge')
    except oracle.EngineFailure as e:
        raise ReproducerError(f'{directory}: {e}')
    except Exception as e:
        if not hasattr(e, 'message'):          # an engine crash is the failure itself
            return [f'uninterrupted run failed: {type(e).__name__}: {e}']
        raise ReproducerError(f'{directory}/module.wasm: {type(e).__name__}: {e}')
    hops = case['hops']
    out = []
    if len(hops) == 1:
        # a failure of the uninterrupted run: wasmtime or the other model
        ref = oracle.uninterrupted(wasm, case['entry'], case['args'], 'wasmedge')
        if case.get('wasmtime', True):
            out += oracle.compare_wasmtime(wasm, case['entry'], case['args'], ref)
        if hops[0][0] != 'wasmedge':
            try:
                other = oracle.uninterrupted(wasm, case['entry'], case['args'], hops[0][0])
                out += oracle.compare(ref, other, f'uninterrupted {hops[0][0]}', steps=False)
            except Exception as e:
                out.append(f'uninterrupted run in {hops[0][0]} failed: {type(e).__name__}: {e}')
        return out
    return oracle.check(wasm, case['entry'], case['args'], hops, image_dir=image_dir)


def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m fuzz.replay', description=__doc__.split('\n\n')[0])
    p.add_argument('dir', metavar='DIR', help='a failures/<id> folder of a campaign')
    p.add_argument('--images', metavar='OUT', help='keep the image sets of every hop here')
    a = p.parse_args(argv)
    try:
        mismatch = replay(a.dir, a.images)
    except ReproducerError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    if mismatch:
        for line in mismatch:
            print(line)
        return 1
    print('no longer fails')
    return 0


if __name__ == '__main__':
    sys.exit(main())
