"""The mutation ledger: results of a mutation session kept in the checkout
(``docs/mutation-ledger.json``), so a run of the whole scope can be spread
over several sessions on different machines while the code moves on.

A full run of the migration path's mutants takes hours of an idle machine,
and every session starts without the last one's ``--work``.  ``export``
writes each tested mutant's result under a key that names the mutant by
the code it mutates, not by its place in the file: the file, the
qualified name of the innermost function holding it, a hash of that
function's source, the mutation operator and the mutant's rank among that
operator's mutants of the function.  ``carry`` (``init --carry``) gives a
fresh session's mutant the recorded result when its key is in the ledger,
that is when the function it mutates is unchanged since the ledger was
written; every mutant of a changed function is tested again.

Only results that a later killing test cannot overturn in the mutant's
favour are carried: killed (by the campaign, the GC part, the spec part, the harness or
the timeout) and judged survivors (docs/mutation-survivors.json or a rule:
equivalent, bad input, fault hook).  Unexplained survivors and mutants the
killing test did not execute are tested again, since the generators and
oracles may have grown to reach them.  A killed result stays valid while
the rest of the code changes only as far as the killing test still
reaches the mutant; ``rerun --outcome killed --sample N`` checks a sample
of the carried ones with the current killing test (docs/mutation-testing.md).
"""

import ast
import hashlib
import json
from pathlib import Path

LEDGER_VERSION = 1
CARRIED = 'carried from the ledger'      # the start of a carried result's output


def function_spans(source):
    """(first line, last line, qualified name) of every function and class
    of ``source``, decorators included."""
    spans = []

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f'{prefix}{child.name}'
                first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                spans.append((first, child.end_lineno, name))
                walk(child, name + '.')
            else:
                walk(child, prefix)
    walk(ast.parse(source), '')
    return spans


class Keys:
    """The ledger keys of one file's mutants, as the file is in ``root``."""

    def __init__(self, root, rel):
        self.rel = rel
        source = (Path(root) / rel).read_text()
        self.lines = source.splitlines()
        self.spans = function_spans(source)
        self.whole = hashlib.sha1(source.encode()).hexdigest()

    def owner(self, line):
        """(name, source hash) of the innermost function or class holding
        ``line``; a module-level line is owned by the whole file."""
        best = None
        for lo, hi, name in self.spans:
            if lo <= line <= hi and (best is None or hi - lo < best[1] - best[0]):
                best = (lo, hi, name)
        if best is None:
            return '<module>', self.whole
        text = '\n'.join(self.lines[best[0] - 1:best[1]])
        return best[2], hashlib.sha1(text.encode()).hexdigest()

    def keys(self, mutations):
        """{(operator, occurrence): key} for ``mutations`` of this file
        (each a (operator name, operator args, occurrence, start line)
        tuple); the rank counts the operator's mutants (of the same
        arguments) in the same function, in source order."""
        groups = {}
        for op, args, occ, line in mutations:
            name, digest = self.owner(line)
            tag = op + (json.dumps(args, sort_keys=True) if args else '')
            groups.setdefault((tag, name, digest), []).append((occ, op))
        out = {}
        for (tag, name, digest), occs in groups.items():
            for rank, (occ, op) in enumerate(sorted(occs)):
                raw = f'{self.rel}\0{name}\0{digest}\0{tag}\0{rank}'
                out[(op, occ)] = hashlib.sha1(raw.encode()).hexdigest()[:20]
        return out


def session_keys(root, items):
    """job id -> ledger key of every work item (its first mutation) whose
    file is in ``root``."""
    per_file = {}
    for item in items:
        m = item.mutations[0]
        per_file.setdefault(str(m.module_path), []).append((item.job_id, m))
    out = {}
    for rel, jobs in per_file.items():
        if not (Path(root) / rel).is_file():
            continue
        keys = Keys(root, rel).keys([(m.operator_name, m.operator_args, m.occurrence, m.start_pos[0])
                                     for _, m in jobs])
        for job, m in jobs:
            out[job] = keys[(m.operator_name, m.occurrence)]
    return out


def entry(row):
    """What the ledger keeps of a report row (``mutation_testing.results``
    after ``summarise``), or None when it must be tested again."""
    if row['verdict'] == 'killed':
        return {'outcome': row['outcome'], 'part': [row.get('killed by'), row.get('unit')]}
    if row['verdict'] in ('equivalent', 'bad input', 'fault hook') and row['outcome'] == 'survived':
        return {'outcome': 'survived', 'kind': row['verdict']}
    return None


def write(path, commit, results):
    """The ledger file, written whole or not at all (one entry a line, so
    its diffs stay readable)."""
    path = Path(path)
    body = ',\n'.join(f'  {json.dumps(k)}: {json.dumps(v, sort_keys=True)}'
                      for k, v in sorted(results.items()))
    text = (f'{{"version": {LEDGER_VERSION}, "commit": {json.dumps(commit)},\n"results": {{\n'
            + body + '\n}}\n')
    from engine.migrate.images import write_file_atomic     # not at import: the killing test's tree
    write_file_atomic(str(path), text)


class LedgerError(Exception):
    """A ledger file that is not one this module wrote."""


def read(path):
    """(commit, {key: entry}) of a ledger file."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise LedgerError(f'{path}: {e}') from None
    if not isinstance(doc, dict) or doc.get('version') != LEDGER_VERSION \
            or not isinstance(doc.get('results'), dict):
        raise LedgerError(f'{path}: not a version {LEDGER_VERSION} mutation ledger')
    for k, v in doc['results'].items():
        if not isinstance(v, dict) or v.get('outcome') not in ('killed', 'timeout', 'survived'):
            raise LedgerError(f'{path}: entry {k}: not a recorded result')
    return doc.get('commit'), doc['results']


def output_of(commit, e):
    """The output a carried result gets in the session: it names the
    ledger's commit and keeps the killing part readable by
    ``mutation_testing.killing_part`` (and a timeout by its last word)."""
    part = e.get('part') or [None, None]
    if e['outcome'] == 'timeout':
        tail = 'timeout'
    elif e['outcome'] == 'survived':
        tail = f'judged {e.get("kind")}'
    elif part[0] == 'campaign':
        tail = f'DIVERGENCE campaign unit {part[1]} '
    elif part[0] == 'gc':
        tail = f'DIVERGENCE gc program {part[1]} '
    elif part[0] == 'spec':
        tail = 'DIVERGENCE spec '
    elif part[0] == 'harness':
        tail = 'DIVERGENCE harness raised'
    else:
        tail = 'killed'
    return f'{CARRIED} at {commit}: {tail}'
