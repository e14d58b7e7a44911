"""The pinned spec testsuite: which files, at which commit, with which hashes,
and what outcome the project expects from each.

The suite's files are never copied into this repository; ``manifest.json``
pins them (sha256 per .wast file: wasm-2.0's top level; every file of
wasm-3.0, legacy/, custom/ and proposals/ included, named by their path
inside the suite folder) so that a run against a different or edited suite
is refused instead of silently compared.

    python -m spectests.manifest --update [--full] [--testsuite DIR] [--record REPORT.json ...]

recomputes the hashes and lists the text-format-only malformed cases that
wat2wasm accepts anyway (``text_only``): the runner checks that the engine
refuses the binary wat2wasm emits for them as malformed, so nothing is
skipped.  A file's ``skips`` may also list calls ``python -m conformance
--migrate`` is allowed to skip (kind "migration", line, reason; kept by
--update): none since links (issue 10), and any other migration skip of a
pinned file fails its command, so the list and the runs stay in step.

wasm-2.0 must pass whole.  wasm-3.0 may have expected failures, and only
these: per file and executor model, the lines of the commands that fail
(``xfail``, as compact ranges such as "3,5-7"), each file tagged with its feature group whose reason
(``spectests.features``) says why, e.g. "memory64/table64 not implemented
yet".  ``--record`` takes them from JSON reports of ``python -m conformance
--suite wasm-3.0 --runtime both --json REPORT.json``; without it the lists
already in the manifest are kept.  A listed command that passes is a
failure of the run too (the list must shrink as features land), and a group
whose feature is complete may list nothing.
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
SUPPORTED = ('wasm-2.0', 'wasm-3.0')   # the suites the engine is run on
WHOLE = ('wasm-2.0',)                   # the suites that may have no expected failure


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


def suite_files(suite, directory):
    """The .wast files of a suite folder as manifest names: wasm-2.0 its top
    level; wasm-3.0 every folder (legacy/, custom/, proposals/...)."""
    if suite in WHOLE:
        return sorted(n for n in os.listdir(directory) if n.endswith('.wast'))
    names = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        rel = os.path.relpath(root, directory)
        for n in files:
            if n.endswith('.wast'):
                names.append(n if rel == '.' else f'{rel}/{n}'.replace(os.sep, '/'))
    return sorted(names)


def pack_lines(lines):
    """[3, 5, 6, 7, 12] -> '3,5-7,12' (the manifest's compact line lists)."""
    parts, run = [], []
    for x in sorted(set(lines)):
        if run and x == run[-1] + 1:
            run.append(x)
            continue
        if run:
            parts.append(str(run[0]) if len(run) == 1 else f'{run[0]}-{run[-1]}')
        run = [x]
    if run:
        parts.append(str(run[0]) if len(run) == 1 else f'{run[0]}-{run[-1]}')
    return ','.join(parts)


def unpack_lines(text):
    """'3,5-7,12' -> [3, 5, 6, 7, 12]."""
    out = []
    for part in filter(None, text.split(',')):
        lo, _, hi = part.partition('-')
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def expected_failures(suite, name, runtime, manifest=None):
    """{line: reason} of the commands of a file expected to fail under
    ``runtime``; the reason is the command's feature group's."""
    entry = suite_entry(suite, manifest)['files'].get(name, {})
    from . import features
    out = {}
    for line in unpack_lines(entry.get('xfail', {}).get(runtime, '')):
        group = features.group_of(name, line)
        out[line] = f'{group}: {features.reason_of(group)}'
    return out


def allowed_skips(suite, name, manifest=None):
    """{(kind, line): reason} of the skips the manifest allows for a file
    (none in the pinned suite: every command is checked).  Kind
    "migration": an assert_return/invoke at that line that ``--migrate``
    may skip (conformance/migration.py; none since links, issue 10); any
    other migration skip of a pinned file fails its command."""
    entry = suite_entry(suite, manifest)['files'].get(name, {})
    return {(s['kind'], s['line']): s['reason'] for s in entry.get('skips', [])}


def _text_only_cases(path):
    """Malformed-text assertions whose text wat2wasm nevertheless accepts:
    the runner checks that the engine refuses the binary it emits."""
    from conformance.runner import TEXT_ONLY, wat_to_binary
    from conformance.wast import parse_file
    from conformance.wat import TextError
    cases = []
    for cmd in parse_file(path):
        if cmd.kind == 'assert_malformed' and cmd.target.kind != 'binary':
            try:
                wat_to_binary(cmd.target.source)
            except TextError:
                continue
            cases.append({'kind': cmd.kind, 'line': cmd.line, 'check': TEXT_ONLY,
                          'expected': cmd.expected})
    return cases


_MUST_CONVERT = ('module', 'module_definition', 'assert_trap', 'assert_invalid',
                 'assert_unlinkable', 'assert_uninstantiable')


def _unconvertible(path):
    """Text modules (that are not asserted malformed) which no route of
    conformance.wat reads (wat2wasm, wasm-tools, wasm-tools after unfolding):
    each listed with both converters' messages, never skipped silently
    (their commands fail, and are expected to only where the manifest's
    feature group says why)."""
    from conformance.wat import TextError, wat_to_binary
    from conformance.wast import ModuleSrc, parse_file
    out = []
    for cmd in parse_file(path):
        src = cmd.target
        if cmd.kind in _MUST_CONVERT and isinstance(src, ModuleSrc) and src.kind != 'binary':
            try:
                wat_to_binary(src.source)
            except TextError as e:
                out.append({'kind': cmd.kind, 'line': cmd.line, 'reason': str(e)})
    return out


def _recorded(reports):
    """{(suite, name, runtime): sorted failing lines} from conformance JSON reports."""
    out = {}
    for path in reports:
        try:
            with open(path, encoding='utf-8') as f:
                report = json.load(f)
        except (OSError, ValueError) as e:
            raise ManifestError(f'{path}: not a conformance JSON report ({e})') from None
        for r in report.get('results', []):
            if r.get('error'):
                raise ManifestError(f'{path}: {r.get("name", r["file"])} [{r["runtime"]}] did not '
                                    f'run ({r["error"][:200]}); fix that before recording')
            lines = sorted({f['line'] for f in r['failures'] if not f.get('xpass')} |
                           {f['line'] for f in r.get('xfails', [])})
            out[(r.get('suite', report.get('suite')), r.get('name', r['file']), r['runtime'])] = lines
    return out


def update(option=None, reports=(), full=False):
    from . import features
    old = {}
    try:
        old = load()
    except ManifestError:
        pass
    recorded = _recorded(reports)
    manifest = {'about': 'Pinned WebAssembly/testsuite files (never copied here); '
                         'regenerate with python -m spectests.manifest --update',
                'suites': {}}
    for suite, commit in COMMITS.items():
        directory = suite_dir(suite, option)
        files = {}
        previous = old.get('suites', {}).get(suite, {}).get('files', {})
        for name in suite_files(suite, directory):
            path = os.path.join(directory, name)
            entry = {'sha256': sha256_file(path)}
            # what the converters make of an unchanged file is kept (the
            # slow part); --full asks them again (e.g. after upgrading them)
            before = previous.get(name, {})
            same = not full and before.get('sha256') == entry['sha256']
            if suite in SUPPORTED:
                entry['expected'] = 'pass'
                # migration skips are judged by hand (with their reason): kept
                entry['skips'] = [s for s in before.get('skips', []) if s.get('kind') == 'migration']
                entry['text_only'] = before['text_only'] if same and 'text_only' in before \
                    else _text_only_cases(path)
            if suite not in WHOLE:
                entry['feature'] = features.group_of(name)
                entry['unconvertible'] = before['unconvertible'] \
                    if same and 'unconvertible' in before else _unconvertible(path)
                xfail = {}
                for runtime in ('wasmedge', 'wamr'):
                    key = (suite, name, runtime)
                    lines = recorded[key] if key in recorded else \
                        unpack_lines(previous.get(name, {}).get('xfail', {}).get(runtime, ''))
                    if lines:
                        xfail[runtime] = pack_lines(lines)
                if xfail:
                    for line in sorted({x for lines in xfail.values() for x in unpack_lines(lines)}):
                        group = features.group_of(name, line)
                        if features.reason_of(group) is None:
                            raise ManifestError(f'{suite}/{name}:{line}: failure recorded, but its '
                                                f'feature group {group!r} is complete: fix it')
                    entry['expected'] = 'xfail'
                    entry['xfail'] = xfail
            files[name] = entry
        manifest['suites'][suite] = {'commit': commit, 'supported': suite in SUPPORTED,
                                     'whole': suite in WHOLE, 'files': files}
        if suite not in WHOLE:
            manifest['suites'][suite]['features'] = {
                g: {'what': what, 'expected_failures': reason}
                for g, (what, reason) in features.GROUPS.items()}
    with open(MANIFEST, 'w', encoding='utf-8') as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write('\n')
    return manifest


def main(argv=None):
    ap = argparse.ArgumentParser(prog='python -m spectests.manifest', description=__doc__.split('\n\n')[0])
    ap.add_argument('--update', action='store_true', help='recompute hashes and allowed skips')
    ap.add_argument('--full', action='store_true',
                    help='with --update: convert every unchanged file again too (after upgrading '
                    'wasmtime or wasm-tools)')
    ap.add_argument('--record', metavar='REPORT', action='append', default=[],
                    help='with --update: take the expected failures of wasm-3.0 from this JSON report '
                    'of python -m conformance (repeatable)')
    ap.add_argument('--testsuite', metavar='DIR', help='folder holding wasm-2.0/ (and wasm-3.0/)')
    args = ap.parse_args(argv)
    try:
        if args.update:
            m = update(args.testsuite, args.record, args.full)
            for suite, entry in m['suites'].items():
                skips = sum(len(f.get('skips', [])) for f in entry['files'].values())
                text = sum(len(f.get('text_only', [])) for f in entry['files'].values())
                xfail = {rt: sum(len(unpack_lines(f.get('xfail', {}).get(rt, '')))
                             for f in entry['files'].values())
                         for rt in ('wasmedge', 'wamr')}
                print(f'{suite}: {len(entry["files"])} files, {skips} allowed skips, {text} '
                      f'text-only malformed cases checked through their binary, expected failures: '
                      f'{xfail["wasmedge"]} (wasmedge), {xfail["wamr"]} (wamr), text modules no '
                      f'converter reads: {sum(len(f.get("unconvertible", [])) for f in entry["files"].values())}')
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
