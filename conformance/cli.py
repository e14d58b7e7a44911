"""``python -m conformance``: run the pinned spec testsuite against the engine.

One task per file (parsed once, run under each runtime asked for), largest
file first, in worker processes; each command has a time limit so one hang
costs one command, not the run.  Prints a per-file table, optionally writes JUnit XML and JSON, and exits 0 only if
every file had the outcome the manifest expects (1 otherwise; 2 for user
errors such as a missing suite, a bad option or a .wast that does not parse).
"""

import argparse
import fnmatch
import json
import os
import re
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from engine import limits as L
from spectests import manifest as mf

from .runner import run_script
from .wast import WastSyntaxError, parse_file

RUNTIMES = ('wasmedge', 'wamr')
_COLUMNS = [('module', 'module'), ('return', 'assert_return'), ('trap', 'assert_trap'),
            ('exhaust', 'assert_exhaustion'), ('invalid', 'assert_invalid'),
            ('malformed', 'assert_malformed'), ('unlink', 'assert_unlinkable'),
            ('uninst', 'assert_uninstantiable'), ('exception', 'assert_exception'),
            ('custom', 'custom'), ('other', 'register+action')]
# command kinds counted in another column
_COLUMN_OF = {'register': 'register+action', 'action': 'register+action',
              'module_definition': 'module', 'module_instance': 'module',
              'assert_malformed_custom': 'custom', 'assert_invalid_custom': 'custom'}
SUITES = ('wasm-2.0', 'wasm-3.0')
STANDARD = {'wasm-2.0': 2, 'wasm-3.0': 3}   # the validation rules each suite checks


class UsageError(Exception):
    pass


def run_file(path, runtimes, timeout, allowed, migrate=None, limits=None, expected=None,
             suite=None, name=None, tier='interp'):
    """Worker: parse one file once, run it under each runtime; plain dicts
    (one per runtime) go back to the parent.  ``migrate``: None, or a dict
    runtime -> the model to migrate to (migration mode).  ``expected``: dict
    runtime -> (lines expected to fail, reason) from the manifest."""
    start = time.time()
    error = None
    try:
        commands = parse_file(path)
    except WastSyntaxError as e:
        error = f'parse error: {e}'
    except Exception as e:   # pragma: no cover - a parser bug
        error = f'parser crashed: {type(e).__name__}: {e}'
    parse_time = time.time() - start
    results = []
    for runtime in runtimes:
        start = time.time()
        result = {'file': name or os.path.basename(path), 'path': path, 'runtime': runtime,
                  'suite': suite, 'counts': {}, 'failures': [], 'skips': [], 'xfails': [],
                  'error': error}
        migrator = None
        if migrate:
            from .migration import Migrator
            # a pinned file's migration skips must be the manifest's (kind
            # "migration"); an unpinned file's are only counted
            allowed_migration = None if name is None else \
                {line: reason for (kind, line), reason in allowed.items() if kind == 'migration'}
            migrator = Migrator(os.path.basename(path), runtime, migrate[runtime],
                                allowed=allowed_migration)
        if error is None:
            _tally(result, run_script(commands, executor=runtime, timeout=timeout,
                                      migrator=migrator, limits=limits,
                                      standard=STANDARD.get(suite), tier=tier), allowed,
                   (expected or {}).get(runtime))
        if migrator is not None:
            result['migration'] = migrator.stats
        result['time'] = time.time() - start + parse_time
        results.append(result)
    return results


def _tally(result, outcomes, allowed, expected=None):
    """Count outcomes by column.  ``expected``: {line: reason} of the
    commands the manifest expects to fail: such a failure counts as 'xfail',
    and such a command that passes is a failure ("xpass": the manifest must
    drop it)."""
    xlines = expected or {}
    for o in outcomes:
        kind = _COLUMN_OF.get(o.kind, o.kind)
        counts = result['counts'].setdefault(kind, {'passed': 0, 'failed': 0, 'skipped': 0})
        status = o.status
        if status == 'skipped' and (o.kind, o.line) not in allowed:
            status = 'failed'
            o = type(o)(o.kind, o.line, 'failed', f'unexpected skip: {o.reason}')
        xpass = False
        if o.line in xlines:
            if status == 'failed':
                status = 'xfail'
            elif status == 'passed':
                status, xpass = 'failed', True
                o = type(o)(o.kind, o.line, 'failed',
                            f'passes, but the manifest expects it to fail ({xlines[o.line]}): '
                            f'record the suite again (python -m spectests.manifest --update --record)')
        counts[status] = counts.get(status, 0) + 1
        if status == 'failed':
            result['failures'].append(dict(o.to_json(), xpass=True) if xpass else o.to_json())
        elif status == 'xfail':
            result.setdefault('xfails', []).append(o.to_json())
        elif status == 'skipped':
            result['skips'].append(o.to_json())


def _task(args):
    return run_file(*args)


def _cell(counts):
    if not counts:
        return ''
    text = str(counts['passed'])
    if counts['failed']:
        text += f' F{counts["failed"]}'
    if counts.get('xfail'):
        text += f' X{counts["xfail"]}'
    if counts['skipped']:
        text += f' S{counts["skipped"]}'
    return text


def _table(results, out):
    name_w = max([len(r['file']) for r in results] + [4])
    header = f'{"file":<{name_w}}  {"runtime":<8}' + ''.join(f' {c:>10}' for c, _ in _COLUMNS) + \
        '    time  result'
    print(header, file=out)
    print('-' * len(header), file=out)
    for r in results:
        cells = ''.join(f' {_cell(r["counts"].get(k)):>10}' for _, k in _COLUMNS)
        verdict = 'ok' if _ok(r) else ('ERROR' if r['error'] else 'FAIL')
        print(f'{r["file"]:<{name_w}}  {r["runtime"]:<8}{cells} {r["time"]:6.1f}s  {verdict}', file=out)


def _migration_table(results, out):
    rows = [r for r in results if 'migration' in r]
    if not rows:
        return
    name_w = max([len(r['file']) for r in rows] + [4])
    header = (f'{"file":<{name_w}}  {"direction":<24} {"calls":>6} {"migrated":>8} {"points":>7} '
              f'{"ckpts":>7} {"mismatch":>8} {"skipped":>7}')
    print('\nmigration\n' + header, file=out)
    print('-' * len(header), file=out)
    for r in rows:
        m = r['migration']
        print(f'{r["file"]:<{name_w}}  {m["direction"]:<24} {m["calls"]:>6} {m["migrated"]:>8} '
              f'{m["points"]:>7} {m["checkpoints"]:>7} {m["mismatches"]:>8} {m["skipped"]:>7}', file=out)
    for r in rows:
        for s in r['migration']['skips'][:3]:
            print(_safe(f'  {r["file"]} [{r["runtime"]}] line {s["line"]} skipped: {s["reason"]}'), file=out)


def _migration_totals(results):
    keys = ('calls', 'migrated', 'points', 'checkpoints', 'mismatches', 'skipped')
    tot = dict.fromkeys(keys, 0)
    for r in results:
        for k in keys:
            tot[k] += r.get('migration', {}).get(k, 0)
    return tot


def _ok(r):
    return not r['error'] and not r['failures']


def _totals(results):
    tot = {'passed': 0, 'failed': 0, 'xfail': 0, 'skipped': 0}
    for r in results:
        for c in r['counts'].values():
            for k in tot:
                tot[k] += c.get(k, 0)
    return tot


def _feature_table(results, manifest, out):
    """Per feature group and runtime (wasm-3.0): files, clean files, commands
    passed / failed / expected to fail, and the group's reason."""
    from spectests import features
    rows = {}
    for r in results:
        if r.get('suite') in mf.WHOLE or r.get('suite') is None:
            continue
        entry = mf.suite_entry(r['suite'], manifest)['files'].get(r['file'], {})
        group = entry.get('feature') or features.group_of(r['file'])
        row = rows.setdefault((group, r['runtime']), {'files': 0, 'clean': 0, 'passed': 0,
                                                      'failed': 0, 'xfail': 0})
        row['files'] += 1
        row['clean'] += 1 if _ok(r) and not any(c.get('xfail') for c in r['counts'].values()) else 0
        for c in r['counts'].values():
            for k in ('passed', 'failed', 'xfail'):
                row[k] += c.get(k, 0)
    if not rows:
        return
    header = (f'{"feature group":<20} {"runtime":<8} {"files":>5} {"clean":>5} {"passed":>7} '
              f'{"failed":>6} {"xfail":>6}  expected failures because')
    print('\nper feature group (wasm-3.0)\n' + header, file=out)
    print('-' * len(header), file=out)
    order = list(features.GROUPS)
    for (group, runtime), row in sorted(rows.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
        reason = (features.reason_of(group) or 'commands needing another group\'s feature') \
            if row['xfail'] else ''
        print(f'{group:<20} {runtime:<8} {row["files"]:>5} {row["clean"]:>5} {row["passed"]:>7} '
              f'{row["failed"]:>6} {row["xfail"]:>6}  {reason or ""}', file=out)


_XML_BAD = re.compile('[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]')


def _xml(text):
    """Escape what XML 1.0 cannot hold (failure reasons may quote odd names)."""
    return _XML_BAD.sub(lambda m: '\\x%02x' % ord(m.group()), text)


def write_junit(results, path, suite):
    root = ET.Element('testsuites')
    for suite, runtime in sorted({(r.get('suite') or suite, r['runtime']) for r in results}):
        rs = [r for r in results if r['runtime'] == runtime and (r.get('suite') or suite) == suite]
        ts = ET.SubElement(root, 'testsuite', name=f'{suite}[{runtime}]', tests=str(len(rs)),
                           failures=str(sum(1 for r in rs if r['failures'])),
                           errors=str(sum(1 for r in rs if r['error'])),
                           time=f'{sum(r["time"] for r in rs):.3f}')
        for r in rs:
            tc = ET.SubElement(ts, 'testcase', classname=f'{suite}.{runtime}', name=r['file'],
                               time=f'{r["time"]:.3f}')
            if r['error']:
                ET.SubElement(tc, 'error', message=_xml(r['error'][:200])).text = _xml(r['error'])
            elif r['failures']:
                lines = [f'line {f["line"]} {f["kind"]}: {f["reason"]}' for f in r['failures']]
                ET.SubElement(tc, 'failure', message=f'{len(lines)} command(s) failed').text = \
                    _xml('\n'.join(lines))
            if r['skips']:
                ET.SubElement(tc, 'system-out').text = _xml('\n'.join(
                    f'skipped line {s["line"]} {s["kind"]}: {s["reason"]}' for s in r['skips']))
    ET.ElementTree(root).write(path, encoding='utf-8', xml_declaration=True)


def _matches(name, pat):
    """A manifest name (maybe legacy/x.wast) against a pattern: the whole name
    or its last part, with or without .wast."""
    return any(fnmatch.fnmatch(n, p) for n in (name, name.rsplit('/', 1)[-1])
               for p in (pat, pat + '.wast'))


def select_files(suite, directory, patterns, manifest, required=True, adhoc=True):
    """Manifest files matching the patterns (all if none); ad-hoc paths pass
    through if ``adhoc``.  ``required``: a pattern matching no file is a
    usage error."""
    names = sorted(mf.suite_entry(suite, manifest)['files'])
    if not patterns:
        return [(n, True) for n in names]
    chosen, seen = [], set()
    for pat in patterns:
        if os.path.isfile(pat) and os.path.basename(pat) not in names:
            if adhoc:
                chosen.append((os.path.abspath(pat), False))
            continue
        hits = [n for n in names if _matches(n, pat)]
        if not hits and required:
            raise UsageError(f'no {suite} file matches {pat!r}')
        for n in hits:
            if n not in seen:
                seen.add(n)
                chosen.append((n, True))
    return chosen


def parse_args(argv):
    ap = argparse.ArgumentParser(prog='python -m conformance',
                                 description='Run the pinned WebAssembly spec testsuite against the engine.')
    ap.add_argument('files', nargs='*', help='file names or glob patterns (default: the whole suite); '
                    'a path to another .wast file runs it unpinned')
    ap.add_argument('--suite', default='wasm-2.0', choices=SUITES + ('all',),
                    help='suite folder, or all of them (default: wasm-2.0)')
    ap.add_argument('--runtime', choices=RUNTIMES + ('both',), default='wasmedge',
                    help='executor model to run under (default: wasmedge)')
    ap.add_argument('--jobs', '-j', type=int, default=os.cpu_count() or 1,
                    help='worker processes (default: CPU count)')
    ap.add_argument('--scheduler', metavar='tcp://HOST:PORT',
                    help='run the files on this Dask cluster instead of local processes (its '
                    'workers must see the suite at the same path; needs the "cluster" extra)')
    ap.add_argument('--timeout', type=float, default=120.0, help='seconds per command (default: 120)')
    ap.add_argument('--testsuite', metavar='DIR',
                    help='folder holding the suite folders (else $WASM_TESTSUITE, else ../shared/testsuite)')
    ap.add_argument('--junit', metavar='FILE', help='write JUnit XML here')
    ap.add_argument('--json', metavar='FILE', help='write a JSON report here')
    ap.add_argument('--quiet', '-q', action='store_true', help='only the summary and failures '
                    '(plus a progress line on stderr every --progress-every seconds)')
    ap.add_argument('--progress-every', type=float, default=30.0, metavar='S',
                    help='seconds between progress lines in --quiet mode (default: 30)')
    ap.add_argument('--migrate', action='store_true',
                    help='also checkpoint every assert_return/invoke at several instruction counts, '
                    'move it to the other runtime model and back, and compare with the '
                    'uninterrupted run (--runtime picks the starting model)')
    ap.add_argument('--tier', choices=('interp', 'fast'), default='interp',
                    help='execution tier of either model: the interpreter, or the compiled tier '
                    '(default: interp)')
    L.add_arguments(ap, ('max_steps', 'max_call_depth', 'max_memory_pages', 'max_table_elems',
                         'max_instances'))
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error('--jobs must be at least 1')
    if args.timeout <= 0:
        ap.error('--timeout must be positive')
    if not args.progress_every > 0:
        ap.error('--progress-every must be positive')
    return args


def main(argv=None):
    args = parse_args(argv)   # argparse exits with 2 on bad options
    suites = SUITES if args.suite == 'all' else (args.suite,)
    runtimes = RUNTIMES if args.runtime == 'both' else (args.runtime,)
    plan = []
    try:
        manifest = mf.load()
        for suite in suites:
            mf.suite_entry(suite, manifest)
            directory = mf.suite_dir(suite, args.testsuite)
            # with several suites a pattern needs to match in one of them only;
            # an ad-hoc path runs once (with the first)
            chosen = select_files(suite, directory, args.files, manifest,
                                  required=len(suites) == 1, adhoc=suite == suites[0])
            mf.verify(suite, directory, [n for n, pinned in chosen if pinned], manifest)
            plan.append((suite, directory, chosen))
        for pat in args.files if len(suites) > 1 else ():
            if not os.path.isfile(pat) and not any(
                    _matches(n, pat) for _, _, chosen in plan for n, _ in chosen):
                raise UsageError(f'no file of {", ".join(suites)} matches {pat!r}')
    except (mf.ManifestError, UsageError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    migrate = None
    if args.migrate:
        from .migration import other_runtime
        migrate = {rt: other_runtime(rt) for rt in runtimes}
    tasks = []
    for suite, directory, chosen in plan:
        for name, pinned in chosen:
            path = os.path.join(directory, name) if pinned else name
            allowed = mf.allowed_skips(suite, name, manifest) if pinned else {}
            expected = {rt: mf.expected_failures(suite, name, rt, manifest) for rt in runtimes} \
                if pinned else None
            tasks.append((path, runtimes, args.timeout, allowed, migrate, L.from_arguments(args),
                          expected, suite, name if pinned else None, args.tier))
    tasks.sort(key=lambda t: -os.path.getsize(t[0]))     # largest first
    started = time.time()
    results = []
    beat = Heartbeat(len(tasks) * len(runtimes), args.progress_every if args.quiet else None)
    if args.scheduler:
        from fuzz import cluster
        try:
            client = cluster.connect(args.scheduler)
        except cluster.ClusterError as e:
            print(f'error: {e}', file=sys.stderr)
            return 2
        pool = client.get_executor(pure=False)      # concurrent.futures: the loop below
    elif args.jobs > 1 and len(tasks) > 1:
        pool = ProcessPoolExecutor(max_workers=args.jobs)
    else:
        pool = None
    if pool is None:
        for t in tasks:
            for r in _task(t):
                results.append(r)
                _progress(r, args.quiet)
            beat.tick(results)
    else:
        with pool:
            futures = {pool.submit(_task, t): t for t in tasks}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=beat.wait_time(), return_when=FIRST_COMPLETED)
                for fut in done:
                    try:
                        rs = fut.result()
                    except Exception as e:   # a worker died (e.g. killed by the OS)
                        path = futures[fut][0]
                        rs = [{'file': futures[fut][8] or os.path.basename(path), 'path': path,
                               'runtime': rt, 'suite': futures[fut][7],
                               'counts': {}, 'failures': [], 'skips': [], 'time': 0.0,
                               'error': f'worker failed: {type(e).__name__}: {e}'}
                              for rt in runtimes]
                    for r in rs:
                        results.append(r)
                        _progress(r, args.quiet)
                beat.tick(results)
        if args.scheduler:
            client.close()
    results.sort(key=lambda r: (suites.index(r['suite']) if r.get('suite') in suites else 0,
                                r['file'], r['runtime']))
    elapsed = time.time() - started
    out = sys.stdout
    for suite in suites:
        rs = [r for r in results if r.get('suite') == suite]
        if not args.quiet and rs:
            print(f'\n{suite}' if len(suites) > 1 else '', file=out)
            _table(rs, out)
    if args.migrate and not args.quiet:
        _migration_table(results, out)
    _report_failures(results, out)
    _feature_table(results, manifest, out)
    bad = [r for r in results if not _ok(r)]
    for suite in suites:
        rs = [r for r in results if r.get('suite') == suite]
        if not rs:
            continue
        tot = _totals(rs)
        nbad = sum(1 for r in rs if not _ok(r))
        xfail = f', {tot["xfail"]} expected failures (listed in the manifest)' if tot['xfail'] else ''
        print(f'\n{suite}: {len(rs) - nbad}/{len(rs)} file runs ok; commands: '
              f'{tot["passed"]} passed, {tot["failed"]} failed, {tot["skipped"]} skipped{xfail} '
              f'({elapsed:.1f}s, {args.scheduler or f"{args.jobs} jobs"})', file=out)
    tot = _totals(results)
    if args.migrate:
        mt = _migration_totals(results)
        directions = sorted({r['migration']['direction'] for r in results if 'migration' in r})
        print(f'migration ({", ".join(directions)}): {mt["migrated"]} of {mt["calls"]} calls '
              f'migrated at {mt["points"]} points ({mt["checkpoints"]} checkpoints), '
              f'{mt["mismatches"]} mismatches, {mt["skipped"]} skipped', file=out)
    try:
        if args.junit:
            write_junit(results, args.junit, args.suite)
        if args.json:
            with open(args.json, 'w', encoding='utf-8') as f:
                json.dump({'suite': args.suite,
                           'commits': {s: mf.suite_entry(s, manifest)['commit'] for s in suites},
                           'runtimes': list(runtimes), 'elapsed': elapsed, 'totals': tot,
                           'results': results}, f, indent=1)
    except OSError as e:
        print(f'error: cannot write report: {e}', file=sys.stderr)
        return 2
    if any((r['error'] or '').startswith('parse error') for r in results):
        return 2              # a bad .wast is a user error, not an engine failure
    return 0 if not bad else 1


class Heartbeat:
    """In --quiet mode, one progress line on stderr every ``every`` seconds
    (files done, failing, elapsed), so a long quiet run is visibly alive."""

    def __init__(self, total, every):
        self.total, self.every = total, every
        self.started = self.last = time.time()

    def wait_time(self):
        return None if self.every is None else max(0.1, self.every - (time.time() - self.last))

    def tick(self, results):
        if self.every is None or time.time() - self.last < self.every:
            return
        self.last = time.time()
        bad = sum(1 for r in results if not _ok(r))
        print(f'... {len(results)}/{self.total} file runs done, {bad} failing, '
              f'{self.last - self.started:.0f}s', file=sys.stderr, flush=True)


def _progress(r, quiet):
    if quiet:
        return
    status = 'ok' if _ok(r) else 'FAIL'
    print(f'  {r["file"]} [{r["runtime"]}] {status} ({r["time"]:.1f}s)', file=sys.stderr, flush=True)


def _safe(text):
    """Printable on any terminal encoding (reasons may hold lone surrogates)."""
    enc = getattr(sys.stdout, 'encoding', None) or 'utf-8'
    return text.encode(enc, 'backslashreplace').decode(enc)


def _report_failures(results, out, limit=20):
    for r in results:
        where = f'{r["suite"]}/{r["file"]}' if r.get('suite') else r['file']
        if r['error']:
            print(_safe(f'\n{where} [{r["runtime"]}]: {r["error"]}'), file=out)
        elif r['failures']:
            print(f'\n{where} [{r["runtime"]}]: {len(r["failures"])} failed', file=out)
            for f in r['failures'][:limit]:
                print(_safe(f'  line {f["line"]} {f["kind"]}: {f["reason"]}'), file=out)
            if len(r['failures']) > limit:
                print(f'  ... {len(r["failures"]) - limit} more', file=out)
