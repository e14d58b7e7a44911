"""The pinned spec testsuite: which files, at which commit, with which hashes,
and what outcome the project expects from each.

The suite's files are never copied into this repository; ``manifest.json``
pins them (sha256 per top-level .wast file) so that a run against a
different or edited suite is refused instead of silently compared.

    python -m spectests.manifest --update [--testsuite DIR]

recomputes the hashes and lists the text-format-only malformed cases that
wat2wasm accepts anyway (``text_only``): the runner checks that the engine
refuses the binary wat2wasm emits for them as malformed, so nothing is
skipped.
"""

import argparse
import hashlib
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANIFEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'manifest.json')

COMMITS = {
    'wasm-2.0': 'a8101597d3c3c660086c3cd1eedee608ff18d3c3',
    'wasm-3.0': '193e551ff22663995b1ac95dc62344133669e14b',
}
SUPPORTED = ('wasm-2.0',)   # the suites the engine is meant to pass


class ManifestError(Exception):
    """Suite missing, a file missing or changed: a user-facing error."""


def testsuite_root(option=None):
    """--testsuite DIR > $WASM_TESTSUITE > <project root>/../shared/testsuite."""
    if option:
        return os.path.abspath(option)
    env = os.environ.get('WASM_TESTSUITE')
    if env:
        return os.path.abspath(env)
    return os.path.normpath(os.path.join(ROOT, '..', 'shared', 'testsuite'))


def suite_dir(suite, option=None):
    root = testsuite_root(option)
    path = os.path.join(root, suite)
    if not os.path.isdir(path):
        raise ManifestError(
            f'testsuite folder {path} not found; point --testsuite or WASM_TESTSUITE at the '
            f'folder holding {suite}/ (WebAssembly/testsuite at commit {COMMITS.get(suite, "?")})')
    return path


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def load():
    try:
        with open(MANIFEST, encoding='utf-8') as f:
            return json.load(f)
    except FileNotFoundError:
        raise ManifestError(f'{MANIFEST} missing; run python -m spectests.manifest --update') from None


def suite_entry(suite, manifest=None):
    manifest = manifest or load()
    try:
        return manifest['suites'][suite]
    except KeyError:
        known = ', '.join(sorted(manifest.get('suites', {})))
        raise ManifestError(f'unknown suite {suite!r} (known: {known})') from None


def verify(suite, directory, names, manifest=None):
    """Check that every named file exists in ``directory`` with the pinned hash."""
    files = suite_entry(suite, manifest)['files']
    problems = []
    for name in names:
        path = os.path.join(directory, name)
        if name not in files:
            problems.append(f'{name}: not in the manifest')
        elif not os.path.isfile(path):
            problems.append(f'{path}: missing')
        elif sha256_file(path) != files[name]['sha256']:
            problems.append(f'{path}: sha256 differs from the manifest (expected testsuite commit '
                            f'{suite_entry(suite, manifest)["commit"]})')
    if problems:
        raise ManifestError('testsuite does not match spectests/manifest.json:\n  ' +
                            '\n  '.join(problems))


def allowed_skips(suite, name, manifest=None):
    """{(kind, line): reason} of the skips the manifest allows for a file
    (none in the pinned suite: every command is checked)."""
    entry = suite_entry(suite, manifest)['files'].get(name, {})
    return {(s['kind'], s['line']): s['reason'] for s in entry.get('skips', [])}


def _text_only_cases(path):
    """Malformed-text assertions whose text wat2wasm nevertheless accepts:
    the runner checks that the engine refuses the binary it emits."""
    from conformance.runner import TEXT_ONLY, wat_to_binary
    from conformance.wast import parse_file
    import wasmtime
    cases = []
    for cmd in parse_file(path):
        if cmd.kind == 'assert_malformed' and cmd.target.kind != 'binary':
            try:
                wat_to_binary(cmd.target.source)
            except wasmtime.WasmtimeError:
                continue
            cases.append({'kind': cmd.kind, 'line': cmd.line, 'check': TEXT_ONLY,
                          'expected': cmd.expected})
    return cases


def update(option=None):
    manifest = {'about': 'Pinned WebAssembly/testsuite files (never copied here); '
                         'regenerate with python -m spectests.manifest --update',
                'suites': {}}
    for suite, commit in COMMITS.items():
        directory = suite_dir(suite, option)
        files = {}
        for name in sorted(os.listdir(directory)):
            if not name.endswith('.wast'):
                continue
            path = os.path.join(directory, name)
            entry = {'sha256': sha256_file(path)}
            if suite in SUPPORTED:
                entry['expected'] = 'pass'
                entry['skips'] = []
                entry['text_only'] = _text_only_cases(path)
            files[name] = entry
        manifest['suites'][suite] = {'commit': commit, 'supported': suite in SUPPORTED,
                                     'files': files}
    with open(MANIFEST, 'w', encoding='utf-8') as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write('\n')
    return manifest


def main(argv=None):
    ap = argparse.ArgumentParser(prog='python -m spectests.manifest', description=__doc__.split('\n\n')[0])
    ap.add_argument('--update', action='store_true', help='recompute hashes and allowed skips')
    ap.add_argument('--testsuite', metavar='DIR', help='folder holding wasm-2.0/ (and wasm-3.0/)')
    args = ap.parse_args(argv)
    try:
        if args.update:
            m = update(args.testsuite)
            for suite, entry in m['suites'].items():
                skips = sum(len(f.get('skips', [])) for f in entry['files'].values())
                text = sum(len(f.get('text_only', [])) for f in entry['files'].values())
                print(f'{suite}: {len(entry["files"])} files, {skips} allowed skips, {text} '
                      f'text-only malformed cases checked through their binary')
        else:
            for suite in SUPPORTED:
                entry = suite_entry(suite)
                verify(suite, suite_dir(suite, args.testsuite), sorted(entry['files']))
                print(f'{suite}: {len(entry["files"])} files match the manifest')
    except ManifestError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
