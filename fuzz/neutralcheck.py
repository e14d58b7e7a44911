"""An independent check of the labels in neutral.json, for the oracle.

``engine/migrate/neutral.py`` writes each frame's spec labels with ``labels_at``
and its reader compares them with ``labels_at`` again: a wrong
``continuation``, ``arity`` or ``height`` is written, read back, found
"matching" and never used by a restore (the models rebuild their own
control state), so a migrated run still agrees.  This check derives the
labels from docs/images.md's definition with its own walk of the function
body (the matching ``end`` by counting), taking the open blocks from a
plain scan (``valid.blocks_open_at``, not the block structure
``labels_at`` uses) and the operand heights at each block instruction from
the validator (``valid.operand_types``), and compares them with the file
as written.
"""

import json
import os

from engine.valid import blocks_open_at, blocktype_of, operand_types


# docs/images.md, "Runtime-neutral snapshot (neutral.json, versions 1 and
# 2)": the header the document must carry (this checker's own copy: the
# engine's writer and reader share neutral.VERSION, so a changed constant
# there writes and accepts another version without anything disagreeing).
# Version 2 holds Wasm 3.0 state and always has the "memories" key;
# version 1 never has it.  Version 3 is a module using GC: version 2's
# keys plus "heap" and "gc_elems".  Version 4 holds links to other
# instances' functions: version 2's keys, version 3's for a module using
# GC, plus a non-empty "links" list.
FORMAT = 'wasm-migrate-neutral'
VERSIONS = (1, 2, 3, 4)


class NeutralCheckError(Exception):
    """neutral.json's header or labels disagree with docs/images.md or the code."""


def _blocktype(module, bt):
    if bt is None:
        return (), ()
    if isinstance(bt, str):
        return (), (bt,)
    ft = module.types[bt]
    return tuple(ft.params), tuple(ft.results)


def _matching_end(body, b):
    """The ``end`` closing the block at ``b``, by counting; the ends of
    the whole body come from one pass, kept for the body (the oracle asks
    again for every frame it checks)."""
    ends = _ENDS.get(id(body))
    if ends is None or ends[0] is not body:
        ends = (body, {})
        opened = []
        for i, ins in enumerate(body):
            op = ins.op
            if op in ('block', 'loop', 'if', 'try_table', 'try'):
                opened.append(i)
            elif op in ('end', 'delegate') and opened:    # delegate closes a legacy try
                ends[1][opened.pop()] = i
        if len(_ENDS) > 256:
            _ENDS.clear()
        _ENDS[id(body)] = ends
    end = ends[1].get(b)
    if end is None:
        raise NeutralCheckError(f'block at {b} has no end')
    return end


_ENDS = {}      # id(body) -> (body, block -> its end): the body is held, so its id stays its own


def expected_labels(module, fidx, pc):
    """The labels of a frame of (module-level) function ``fidx`` stopped at
    instruction ``pc``, outermost (the function's) first."""
    nimported = sum(1 for i in module.imports if i.kind == 'func')
    f = module.funcs[fidx - nimported]
    body = f.body
    results = module.types[f.typeidx].results
    out = [{'kind': 'func', 'instr': None, 'arity': len(results), 'height': 0,
            'continuation': len(body)}]
    for b in blocks_open_at(body, pc):
        ins = body[b]
        params, res = _blocktype(module, blocktype_of(ins))
        below = len(operand_types(module, fidx - nimported, b)) - (ins.op == 'if')
        loop = ins.op == 'loop'
        out.append({'kind': ins.op, 'instr': b, 'arity': len(params if loop else res),
                    'height': below - len(params),
                    'continuation': b + 1 if loop else _matching_end(body, b) + 1})
    return out


CHUNK, PAGE = 4096, 65536


def _memory_part(m, where):
    """One ``{"pages": n, "chunks": {...}}`` as docs/images.md lays it out."""
    if not isinstance(m, dict) or sorted(m) != ['chunks', 'pages']:
        raise NeutralCheckError(f'neutral.json {where}: keys {sorted(m) if isinstance(m, dict) else m!r}, '
                                f'docs/images.md says "pages" and "chunks"')
    pages = m['pages']
    if type(pages) is not int or not 0 <= pages <= 65536:
        raise NeutralCheckError(f'neutral.json {where}.pages: {pages!r} is not a page count')
    for key, hexdigits in m['chunks'].items():
        if not key.isdigit() or int(key) % CHUNK or int(key) + CHUNK > pages * PAGE:
            raise NeutralCheckError(f'neutral.json {where}.chunks: offset {key!r} is not a multiple of '
                                    f'{CHUNK} inside {pages} pages')
        if len(hexdigits) != 2 * CHUNK or bytes.fromhex(hexdigits) == bytes(CHUNK):
            raise NeutralCheckError(f'neutral.json {where}.chunks[{key}]: not the hex of a non-zero '
                                    f'{CHUNK}-byte chunk')


def _check_memories(doc, module):
    """docs/images.md "memories (version 2)": one entry per memory after
    memory 0, exactly when the module has several (counted from the
    module's own imports and definitions)."""
    n = len(module.mems) + sum(1 for i in module.imports if i.kind == 'memory')
    # docs/images.md "version": a version-2 (and 3, 4) document always has
    # "memories", a version-1 document never
    if (doc.get('version') != VERSIONS[0]) != ('memories' in doc):
        raise NeutralCheckError(f'neutral.json: version {doc.get("version")!r} '
                                f'{"with" if "memories" in doc else "without"} "memories"')
    if n > 1 and 'memories' not in doc:
        raise NeutralCheckError(f'neutral.json: no "memories", but the module has {n} memories')
    more = doc.get('memories', [])
    if not isinstance(more, list) or len(more) != max(n - 1, 0):
        raise NeutralCheckError(f'neutral.json memories: {len(more) if isinstance(more, list) else more!r} '
                                f'entries, the module has {max(n - 1, 0)} memories after memory 0')
    for i, m in enumerate(more):
        _memory_part(m, f'memories[{i}]')
    if n:
        _memory_part(doc['memory'], 'memory')


def expected_handlers(module, fidx, pc):
    """The try_table handlers active in a frame at ``pc``, outermost
    first, as docs/images.md writes them (``handlers``: each try_table
    whose body holds ``pc``, with its clauses as written; kind 1 and 3 carry
    the exnref).  The body is the instructions between ``try_table`` and
    its ``end`` (spec syntax: ``try_table bt catch* instr* end``), so at the
    ``end`` itself, where nothing can throw, the handler is no longer listed
    (its label still is)."""
    nimported = sum(1 for i in module.imports if i.kind == 'func')
    body = module.funcs[fidx - nimported].body
    return [{'instr': b, 'catches': [{'tag': tag, 'label': label, 'ref': kind in (1, 3)}
                                     for kind, tag, label in body[b].imm[1]]}
            for b in blocks_open_at(body, pc)
            if body[b].op == 'try_table' and _matching_end(body, b) != pc]


def _try_parts(body, b):
    """The legacy ``try`` at ``b``'s own ``catch``/``catch_all``
    instructions, then its ``delegate`` or ``end``: [(index, op)]."""
    parts, depth = [], 0
    for i in range(b + 1, len(body)):
        op = body[i].op
        if op in ('block', 'loop', 'if', 'try_table', 'try'):
            depth += 1
        elif op in ('end', 'delegate') and depth:
            depth -= 1
        elif depth == 0 and op in ('catch', 'catch_all', 'delegate', 'end'):
            parts.append((i, op))
            if op in ('delegate', 'end'):
                break
    return parts


def expected_legacy_handlers(module, fidx, pc):
    """The legacy ``try`` blocks whose body holds ``pc``, outermost first,
    as docs/images.md writes them (``handlers``: ``{"instr", "legacy_catches":
    [{"tag": k or null, "instr": j}], "delegate": j or null}``): the body is
    the instructions after ``try`` up to its first ``catch``/``catch_all``,
    its ``delegate`` or its ``end``."""
    nimported = sum(1 for i in module.imports if i.kind == 'func')
    body = module.funcs[fidx - nimported].body
    out = []
    for b in blocks_open_at(body, pc):
        if body[b].op != 'try':
            continue
        parts = _try_parts(body, b)
        if pc < parts[0][0]:
            out.append({'instr': b,
                        'legacy_catches': [{'tag': body[i].imm if op == 'catch' else None, 'instr': i}
                                           for i, op in parts if op in ('catch', 'catch_all')],
                        'delegate': parts[-1][0] if parts[-1][1] == 'delegate' else None})
    return out


def expected_caught(module, fidx, pc):
    """How many legacy catch arms are open at ``pc`` (docs/images.md
    ``caught``: one exception each): the open ``try`` blocks with one of
    their own ``catch``/``catch_all`` before ``pc`` and their ``end`` not
    reached (at the ``end``, also reached from the body, no arm is open)."""
    nimported = sum(1 for i in module.imports if i.kind == 'func')
    body = module.funcs[fidx - nimported].body
    n = 0
    for b in blocks_open_at(body, pc):
        if body[b].op != 'try':
            continue
        parts = _try_parts(body, b)
        if parts[-1][0] != pc and any(i < pc and op in ('catch', 'catch_all') for i, op in parts):
            n += 1
    return n


def _uses_exceptions(module):
    """Tags (defined or imported) or try blocks: its runs can hold exception state."""
    return bool(module.tags) or any(i.kind == 'tag' for i in module.imports) or \
        any(i.op in ('try_table', 'try') for f in module.funcs for i in f.body)


def _check_exceptions(doc, k, fr, module):
    """A frame's ``handlers`` (its try_table entries) and ``caught`` (one
    exception per open legacy catch arm) against the code."""
    if not _uses_exceptions(module):
        return
    if doc.get('version') not in (2, 3, 4) or 'handlers' not in fr or 'caught' not in fr:
        raise NeutralCheckError(f'neutral.json frames[{k}]: a module with exception handling needs '
                                f'version 2 (3 with GC, 4 with links) with "handlers" and "caught"')
    got = [h for h in fr['handlers'] if 'catches' in h]
    want = expected_handlers(module, fr['func'], fr['pc'])
    if got != want:
        raise NeutralCheckError(f'neutral.json frames[{k}].handlers = {got}, the code says {want}')
    got = [h for h in fr['handlers'] if 'legacy_catches' in h]
    want = expected_legacy_handlers(module, fr['func'], fr['pc'])
    if got != want:
        raise NeutralCheckError(f'neutral.json frames[{k}].handlers (legacy) = {got}, the code says {want}')
    want = expected_caught(module, fr['func'], fr['pc'])
    if len(fr['caught']) != want:
        raise NeutralCheckError(f'neutral.json frames[{k}].caught has {len(fr["caught"])} exceptions, '
                                f'the code has {want} legacy catch arms open at {fr["pc"]}')


WASM2_TYPES = frozenset(('i32', 'i64', 'f32', 'f64', 'v128', 'funcref', 'externref'))


def _needs_version_2(doc, module):
    """docs/images.md: version 2 exactly for a module with exception
    handling or several memories, or a run holding a 3.0 reference type
    (typed references, exnref) in a frame, a global, a table or the
    results; the tables' types read from the module itself."""
    tables = [t.type.elemtype for t in module.tables] + \
        [i.desc.elemtype for i in module.imports if i.kind == 'table']
    nmems = len(module.mems) + sum(1 for i in module.imports if i.kind == 'memory')
    typed = [x.get('type') for fr in doc.get('frames', ()) for x in fr.get('locals', []) + fr.get('operands', [])]
    typed += [g.get('type') for g in doc.get('globals', ())] + list(doc.get('results', ()))
    return _uses_exceptions(module) or nmems > 1 or any(str(t) not in WASM2_TYPES for t in typed + tables)


GC_HEAP_TYPES = frozenset(('any', 'eq', 'i31', 'struct', 'array', 'none'))
GC_OPS = frozenset(('ref.i31', 'i31.get_s', 'i31.get_u', 'any.convert_extern', 'extern.convert_any',
                    'ref.eq', 'ref.test', 'ref.cast', 'br_on_cast', 'br_on_cast_fail'))


def _uses_gc(module):
    """docs/images.md "GC heap": a struct or array type, a type of the
    any hierarchy anywhere the module names value types, or a GC
    instruction (this checker's own reading of the module)."""
    from engine import syntax as S
    if any(isinstance(t, (S.StructType, S.ArrayType)) for t in module.types):
        return True

    def gc_type(t):
        heap = getattr(t, 'heap', None)
        if isinstance(heap, int):
            return isinstance(module.types[heap], (S.StructType, S.ArrayType))
        return heap in GC_HEAP_TYPES or t in ('anyref', 'eqref', 'i31ref', 'structref',
                                              'arrayref', 'nullref')
    types = [t for ft in module.types if isinstance(ft, S.FuncType) for t in ft.params + ft.results]
    types += [g.type.valtype for g in module.globals] + [t.type.elemtype for t in module.tables]
    types += [e.type for e in module.elems] + [t for f in module.funcs for t in f.locals]
    types += [getattr(i.desc, 'valtype', None) or getattr(i.desc, 'elemtype', None)
              for i in module.imports]
    return any(gc_type(t) for t in types if t is not None) or any(
        i.op in GC_OPS or i.op.startswith(('struct.', 'array.')) for f in module.funcs for i in f.body)


# docs/images.md "Values" and "heap": a number field's width in bits; i8,
# i16, i32, i64 are unsigned decimals below 2^bits, f32, f64 and v128 the
# string "0x" and *all* bits / 4 hex digits of the bit pattern (this
# checker's own table: the engine's writer and reader share one, so a
# changed width is written and read back alike)
NUMBER_BITS = {'i8': 8, 'i16': 16, 'i32': 32, 'i64': 64, 'f32': 32, 'f64': 64, 'v128': 128}
HEX_DIGITS = frozenset('0123456789abcdefABCDEF')


def _number_written(st, v):
    """Whether ``v`` is a field of number type ``st`` as documented."""
    bits = NUMBER_BITS[st]
    if st in ('f32', 'f64', 'v128'):
        return isinstance(v, str) and len(v) == 2 + bits // 4 and v[:2] == '0x' and set(v[2:]) <= HEX_DIGITS
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << bits


def _typed_values(x, path):
    """Every typed value {"type": t, "value": v} inside a JSON value (frames'
    locals and operands, caught exceptions' fields, globals), with its path."""
    if isinstance(x, dict):
        if sorted(x) == ['type', 'value']:
            yield path, x
        for k, v in x.items():
            yield from _typed_values(v, f'{path}.{k}')
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _typed_values(v, f'{path}[{i}]')


def _check_numbers(doc):
    """docs/images.md "Values": every typed value of a number type written
    with its width (an f32 as "0x" and 8 hex digits, ...), wherever it is."""
    for key in doc.keys() - {'heap'}:           # heap fields are plain values: _check_heap
        for path, tv in _typed_values(doc[key], key):
            t, v = tv['type'], tv['value']
            if t in NUMBER_BITS and not _number_written(t, v):
                raise NeutralCheckError(f'neutral.json {path}: {json.dumps(v)} is not '
                                        f'{"a" if t == "v128" else "an"} {t} as docs/images.md writes it')


def _refs(x):
    """Every {"ref": n} inside a JSON value."""
    if isinstance(x, dict):
        if list(x) == ['ref']:
            yield x['ref']
        else:
            for v in x.values():
                yield from _refs(v)
    elif isinstance(x, list):
        for v in x:
            yield from _refs(v)


def _check_heap(doc, module):
    """docs/images.md "heap (version 3: GC)": each object {"struct"|"array":
    type index, "fields"}, a struct with its type's field count, its
    number fields written as documented (``_number_written``); every
    {"ref": n} names an object, and every object is reached from the
    run's state (the writer writes what is reachable, each once)."""
    from engine import syntax as S
    heap = doc.get('heap')
    if not isinstance(heap, list) or not isinstance(doc.get('gc_elems'), list):
        raise NeutralCheckError('neutral.json: version 3 needs "heap" and "gc_elems" lists')
    for k, o in enumerate(heap):
        kind = 'struct' if 'struct' in o else 'array'
        if sorted(o) != sorted((kind, 'fields')) or not isinstance(o[kind], int) \
                or not 0 <= o[kind] < len(module.types):
            raise NeutralCheckError(f'neutral.json heap[{k}]: {json.dumps(o)[:80]} is not '
                                    f'{{"struct"|"array": type index, "fields": [...]}}')
        t = module.types[o[kind]]
        if not isinstance(t, S.StructType if kind == 'struct' else S.ArrayType):
            raise NeutralCheckError(f'neutral.json heap[{k}]: type {o[kind]} is not a {kind} type')
        if kind == 'struct' and len(o['fields']) != len(t.fields):
            raise NeutralCheckError(f'neutral.json heap[{k}]: {len(o["fields"])} fields, type '
                                    f'{o[kind]} has {len(t.fields)}')
        storages = [f.storage for f in t.fields] if kind == 'struct' else [t.field.storage] * len(o['fields'])
        for i, (st, v) in enumerate(zip(storages, o['fields'])):
            if st in NUMBER_BITS and not _number_written(st, v):
                raise NeutralCheckError(f'neutral.json heap[{k}].fields[{i}]: {json.dumps(v)} is not '
                                        f'{"a" if st == "v128" else "an"} {st} as docs/images.md writes it')
    roots = [v for key, v in doc.items() if key != 'heap']
    reached, todo = set(), list(_refs(roots))
    while todo:
        n = todo.pop()
        if not isinstance(n, int) or not 0 <= n < len(heap):
            raise NeutralCheckError(f'neutral.json: {{"ref": {n!r}}} names no heap object '
                                    f'(the heap holds {len(heap)})')
        if n not in reached:
            reached.add(n)
            todo.extend(_refs(heap[n]['fields']))
    if len(reached) != len(heap):
        k = min(set(range(len(heap))) - reached)
        raise NeutralCheckError(f'neutral.json heap[{k}]: not reachable from the run\'s state')


def check_dir(directory, module):
    """``check_doc`` of ``directory/neutral.json``."""
    with open(os.path.join(directory, 'neutral.json')) as f:
        check_doc(json.load(f), module)


def check_doc(doc, module):
    """Check the header against docs/images.md and compare every frame's
    labels (and handlers) with those read from the code; raises
    NeutralCheckError naming the first difference."""
    gc = _uses_gc(module)
    want = VERSIONS[3] if doc.get('links') else VERSIONS[2] if gc else \
        VERSIONS[1] if _needs_version_2(doc, module) else VERSIONS[0]
    for key, want in (('format', FORMAT), ('version', want)):
        if doc.get(key) != want or type(doc.get(key)) is not type(want):
            raise NeutralCheckError(f'neutral.json: {key} {doc.get(key)!r}, docs/images.md says {want!r}')
    _check_memories(doc, module)
    _check_numbers(doc)
    if gc:
        _check_heap(doc, module)
    for k, fr in enumerate(doc['frames']):
        _check_exceptions(doc, k, fr, module)
        want = expected_labels(module, fr['func'], fr['pc'])
        got = fr['labels']
        if len(got) != len(want):
            raise NeutralCheckError(f'neutral.json frames[{k}]: {len(got)} labels, the code of '
                                    f'function {fr["func"]} at {fr["pc"]} has {len(want)} open')
        for i, (g, w) in enumerate(zip(got, want)):
            if g != w:
                raise NeutralCheckError(f'neutral.json frames[{k}].labels[{i}] = {g}, the code '
                                        f'says {w}')
