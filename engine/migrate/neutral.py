"""The runtime-neutral form of a stopped run on disk: ``neutral.json``.

The image sets of ``images.py`` follow one runtime model each (byte offsets
and cells for WAMR, instruction indices and a label-less stack for
WasmEdge).  This form follows neither: it is the spec's own picture of an
execution — a stack of activation frames, each with its locals, its operand
values and its labels — so a third runtime, or a person, can read or write
a stopped run without knowing either model.  docs/images.md documents every
field.

Labels are derived from the code (a label per open block, loop or if, plus
the function's own) when writing, and checked against the code when
reading; they add nothing a reader must trust, but they make the document
self-explaining and catch a frame put at the wrong instruction.

Every field is checked against the module when reading; errors are
``NeutralError`` naming the field path, e.g.
``neutral.json: frames[1].operands[2]: type i64 expected, got f32``.
"""

import json
import os
import re

from .. import faults
from . import memories
from .images import CHUNK, NONE, PAGE, ImageError, write_dir
from .state import Frame, Snapshot
from ..syntax import Exn, ExternRef, RefType, VAL_TYPES, parse_valtype, value_class
from ..valid import blocktype_of
from . import exnstate, gcheap
from .links import Link
from .translate import CALLS, ModuleView, check_ref, link_types, memory_chunks, wrong_results

FORMAT = 'wasm-migrate-neutral'
VERSION = 1
# a document holding Wasm 3.0 state: always "memories" (the memories after
# memory 0, multi-memory; [] for one memory), and 3.0 reference types
# (typed references, exnref values) and, for a module with exception
# handling, each frame's active handlers and caught exceptions
WASM3_VERSION = 2
# a document of a module that uses GC (gcheap.uses_gc): version 2's keys
# plus "heap" (every struct and array once) and "gc_elems"
GC_VERSION = 3
# a document holding links to other instances' functions (migrate/links.py):
# version 2's keys, version 3's exactly for a module using GC, plus "links";
# a funcref value n + i (n: the module's functions) is links[i]
LINK_VERSION = 4
VERSIONS = (VERSION, WASM3_VERSION, GC_VERSION, LINK_VERSION)
FILE = 'neutral.json'

_HEX_DIGITS = {'f32': 8, 'f64': 16, 'v128': 32}
_INT_BITS = {'i32': 32, 'i64': 64}
_DECIMAL = re.compile(r'(0|[1-9][0-9]*)\Z')
_HEX_CHUNK = re.compile(r'[0-9a-fA-F]{%d}\Z' % (2 * CHUNK))
_TOP_KEYS = ('format', 'version', 'module_sha256', 'entry', 'results', 'steps', 'frames',
             'memory', 'globals', 'tables', 'dropped_elems', 'dropped_datas')
_FRAME_KEYS = ('func', 'pc', 'locals', 'operands', 'labels')
_EXN_FRAME_KEYS = _FRAME_KEYS + ('handlers', 'caught')


class NeutralError(ImageError):
    """A broken neutral document, or one that does not fit the module."""


def _fail(where, message):
    raise NeutralError(f'{FILE}: {where}: {message}' if where else f'{FILE}: {message}')


# ------------------------------------------------------------ values

def encode_value(t, v, tags=(), gc=None):
    """One value in the document's scheme: i32/i64 unsigned decimal
    numbers; f32/f64/v128 hex bit patterns with every digit (NaN payloads
    and -0 stay exact); funcref a function index or null; externref
    {"extern": n} or null; exnref {"exn": {"tag": k, "fields": [typed
    values]}} or null (``tags``: the module's tag types); with ``gc`` (a
    ``gcheap.JsonHeap``: a module using GC) anyref and externref values
    as its references ({"ref": id}, {"i31": n}, ...)."""
    if t in _INT_BITS:
        return v
    if t in _HEX_DIGITS:
        return f'0x{v:0{_HEX_DIGITS[t]}x}'
    if value_class(t) == 'funcref':
        return v
    if gc is not None and value_class(t) in ('anyref', 'externref'):
        return gc.value(t, v)
    if value_class(t) == 'exnref' and v is not None:
        return {'exn': {'tag': v.tag, 'fields': [_typed(ft, f, tags, gc) for ft, f in
                                                 zip(tags[v.tag].params, v.fields)]}}
    return None if v is None else {'extern': v.value}


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def decode_value(t, x, where, nfuncs, view=None, unset=False, tags=(), gc=None):
    """The value ``x`` of type ``t`` from the document, checked (a 3.0
    typed reference against its type too, given the module's ``view``);
    ``gc``: (module, heap objects, function types) of a GC document."""
    v = _decode_value(t, x, where, nfuncs, tags, gc)
    if view is not None and t not in VAL_TYPES:
        try:
            check_ref(view, t, v, f'{FILE}: {where}', unset)
        except ImageError as e:
            raise NeutralError(str(e)) from None
    return v


def _decode_value(t, x, where, nfuncs, tags, gc=None):
    if t in _INT_BITS:
        bits = _INT_BITS[t]
        if not _is_int(x) or not 0 <= x < 1 << bits:
            _fail(where, f'{json.dumps(x)} is not an {t} (an unsigned integer 0 .. {(1 << bits) - 1})')
        return x
    if t in _HEX_DIGITS:
        n = _HEX_DIGITS[t]
        if not isinstance(x, str) or not re.fullmatch(r'0x[0-9a-fA-F]{%d}' % n, x):
            _fail(where, f'{json.dumps(x)} is not an {t} (a bit pattern "0x" + {n} hex digits)')
        return int(x, 16)
    if gc is not None and value_class(t) in ('anyref', 'externref'):
        module, heap, func_types = gc
        return gcheap.json_value(module, t, x, heap, func_types, where, _fail, slot=True)
    if value_class(t) == 'anyref':
        _fail(where, f'a value of GC type {t} in a document of a module that does not use GC')
    if x is None:
        return None
    if value_class(t) == 'exnref':
        return _decode_exn(x, where, nfuncs, tags, gc)
    if value_class(t) == 'funcref':
        if not _is_int(x) or not 0 <= x < nfuncs:
            _fail(where, f'{json.dumps(x)} is not a funcref (null or a function index '
                         f'0 .. {nfuncs - 1})')
        return x
    if not (isinstance(x, dict) and list(x) == ['extern'] and _is_int(x['extern'])
            and 0 <= x['extern'] < NONE):
        _fail(where, f'{json.dumps(x)} is not an externref (null or {{"extern": n}}, '
                     f'0 <= n < {NONE})')
    return ExternRef(x['extern'])


def _typed(t, v, tags=(), gc=None):
    if faults.TYPED_NULLABLE and isinstance(getattr(t, 'heap', None), int):
        return {'type': RefType(True, t.heap), 'value': encode_value(t, v, tags, gc)}
    return {'type': t, 'value': encode_value(t, v, tags, gc)}


def _decode_typed(t, x, where, nfuncs, view=None, unset=False, tags=(), gc=None):
    _keys(x, ('type', 'value'), where)
    if x['type'] != t:
        got = x['type'] if parse_valtype(x['type']) else json.dumps(x['type'])
        _fail(where, f'type {t} expected, got {got}')
    return decode_value(t, x['value'], f'{where}.value', nfuncs, view, unset, tags, gc)


def _decode_exn(x, where, nfuncs, tags, gc=None):
    """An exnref: the tag of the module and its fields, typed by the tag."""
    _keys(x, ('exn',), where)
    e = x['exn']
    _keys(e, ('tag', 'fields'), f'{where}.exn')
    tag = _index(e['tag'], f'{where}.exn.tag', len(tags), 'a tag index') if tags else \
        _fail(f'{where}.exn.tag', 'the module has no tags')
    params = tags[tag].params
    fields = _list(e['fields'], f'{where}.exn.fields', len(params))
    return Exn(tag, [_decode_typed(ft, f, f'{where}.exn.fields[{i}]', nfuncs, tags=tags, gc=gc)
                     for i, (ft, f) in enumerate(zip(params, fields))])


_WASM2_TYPES = frozenset(('i32', 'i64', 'f32', 'f64', 'v128', 'funcref', 'externref'))


def _wasm3_types(types):
    """Whether any of ``types`` is a 3.0 reference type: typed references,
    exnref (a document holding one is version 2)."""
    return any(t is not None and t not in _WASM2_TYPES for t in types)


# ------------------------------------------------------------ labels

def labels_at(view, fidx, pc):
    """The spec labels of a frame of function ``fidx`` stopped at
    instruction index ``pc``, outermost (the function's) first.

    Replaying the code from the start to ``pc`` gives the blocks that are
    open there.  Each label has ``arity`` (what a branch to it carries:
    results, params for a loop), ``height`` (operand values below the
    block's params at entry; the condition of ``if`` already popped) and
    ``continuation`` (where a branch goes on: after the matching ``end``,
    the loop body's first instruction for a loop, and one past the final
    ``end`` — i.e. return — for the function)."""
    body = view.func(fidx, f'{FILE}: function {fidx}').body
    info = view.info.funcs[fidx - view.nimported]
    out = [{'kind': 'func', 'instr': None, 'arity': len(view.func_types[fidx].results),
            'height': 0, 'continuation': len(body)}]
    for b, types in view.open_blocks(fidx, pc):
        ins = body[b]
        params, results = view.blocktype(blocktype_of(ins))
        below = len(types) - (ins.op == 'if')
        loop = ins.op == 'loop'
        out.append({'kind': ins.op, 'instr': b,
                    'arity': len(params if loop else results),
                    'height': below - len(params),
                    'continuation': b + 1 if loop else info.end_of[b] + 1})
    return out


def handlers_at(view, fidx, pc):
    """The handlers active in a frame at ``pc``, outermost first: each
    try_table (or legacy try) whose body holds ``pc``, with its catch
    clauses as written in the code (tag index or null, label depth, and
    whether the exnref is passed); derived from the code like the labels."""
    body = view.func(fidx, f'{FILE}: function {fidx}').body
    out = []
    for b in exnstate.open_handlers(view.module, view.nimported, fidx, pc):
        ins = body[b]
        if ins.op == 'try_table':
            out.append({'instr': b, 'catches': [
                {'tag': x, 'label': label, 'ref': bool(kind & 1)}
                for kind, x, label in ins.imm[1]]})
        else:
            h = exnstate.handlers(view.module, view.nimported, fidx).tries[b]
            out.append({'instr': b, 'legacy_catches': [
                {'tag': body[ci].imm if body[ci].op == 'catch' else None, 'instr': ci}
                for ci, _ in h.catches], 'delegate': h.delegate_at})
    if faults.EXN_HANDLER and out:
        del out[-1]
    return out


# ------------------------------------------------------------ snapshot → document

def document_from_snapshot(snap: Snapshot, module, info, module_sha256: str) -> dict:
    """The snapshot as a neutral document (a JSON-ready dict)."""
    view = ModuleView.of(module, info)
    tags = exnstate.tag_types(module)
    exn = exnstate.uses_exceptions(module)
    gc = gcheap.JsonHeap(module) if gcheap.uses_gc(module) else None
    if gc is not None:
        gc.exn = lambda v: encode_value('exnref', v, tags, gc)
    frames = []
    for k, fr in enumerate(snap.frames):
        callee = snap.frames[k + 1].fidx if k + 1 < len(snap.frames) else None
        types = view.frame_types(fr.fidx, fr.pc, callee)
        nloc = len(fr.locals)
        frames.append({
            'func': fr.fidx, 'pc': fr.pc,
            'locals': [_typed(t, v, tags, gc) for t, v in zip(types[:nloc], fr.locals)],
            'operands': [_typed(t, v, tags, gc) for t, v in zip(types[nloc:], fr.stack)],
            'labels': labels_at(view, fr.fidx, fr.pc)})
        if exn:
            frames[-1]['handlers'] = handlers_at(view, fr.fidx, fr.pc)
            frames[-1]['caught'] = [encode_value('exnref', v, tags, gc) for v in fr.caught]
    chunks = {str(off): chunk.hex()
              for off, chunk in memory_chunks(snap.memory, snap.chunks).items()}
    typed = _wasm3_types(list(view.global_types) + list(view.table_types) + list(snap.results)
                        + [x['type'] for fr in frames for x in fr['locals'] + fr['operands']])
    v2 = exn or typed or bool(snap.memories) or gc is not None or bool(snap.links)
    doc = {
        'format': FORMAT,
        'version': LINK_VERSION if snap.links else GC_VERSION if gc is not None
        else WASM3_VERSION if v2 else VERSION,
        'module_sha256': module_sha256,
        'entry': snap.entry, 'results': list(snap.results), 'steps': snap.steps,
        'frames': frames,
        'memory': {'pages': snap.page_count, 'chunks': chunks},
        'globals': [_typed(t, v, tags, gc) for t, v in zip(view.global_types, snap.globals)],
        'tables': [[encode_value(t, v, tags, gc) for v in entries]
                   for t, entries in zip(view.table_types, snap.tables)],
        'dropped_elems': list(snap.dropped_elems),
        'dropped_datas': [] if faults.NEUTRAL_DROPPED else list(snap.dropped_datas),
        **({'memories': memories.to_doc(snap.memories)} if v2 else {}),
    }
    if gc is not None:
        doc['gc_elems'] = [{'elem': i, 'values': [gc.value(module.elems[i].type, v) for v in vals]}
                           for i, vals in snap.gc_elems]
        doc['heap'] = gc.heap           # last: every value above has been walked
    if snap.links:
        doc['links'] = [{'instance': link.instance, 'func': link.fidx} for link in snap.links]
    return doc


def dumps(doc: dict) -> bytes:
    """JSON text meant to be read: an object or list goes on one line when
    it fits in 100 columns (a value, a label), else one entry per line."""
    return _layout(doc, 0)[0].encode() + b'\n'


def _layout(x, indent):
    """(text, one line?) of ``x`` at ``indent``: its one-line JSON when that
    fits, else one entry per line.  Built bottom up, so each value is
    turned into JSON once (a memory's hex is megabytes: dumping every
    subtree at every level cost the document's size times its depth)."""
    if type(x) is int:                      # (most leaves: cells, indices)
        return int.__repr__(x), True
    if not isinstance(x, (dict, list)) or not x:
        return json.dumps(x), True
    if isinstance(x, dict):
        heads, values, brackets = [json.dumps(k) + ': ' for k in x], x.values(), '{}'
    else:
        heads, values, brackets = [''] * len(x), x, '[]'
    parts = [_layout(v, indent + 1) for v in values]
    if all(flat for _, flat in parts):
        text = brackets[0] + ', '.join(h + t for h, (t, _) in zip(heads, parts)) + brackets[1] \
            if brackets == '[]' or all(type(k) is str for k in x) else json.dumps(x)  # (json quotes other keys)
        if indent + len(text) <= 100:
            return text, True
    pad = ' ' * (indent + 1)
    return (brackets[0] + '\n' + ',\n'.join(pad + h + t for h, (t, _) in zip(heads, parts)) + '\n'
            + ' ' * indent + brackets[1]), False


def write_neutral(doc: dict, directory: str, extra=None) -> None:
    """Write ``neutral.json`` (plus ``extra`` files) atomically, like an
    image set."""
    files = {FILE: dumps(doc)}
    files.update(extra or {})
    write_dir(files, directory)


# ------------------------------------------------------------ document → snapshot

def is_neutral_dir(directory: str) -> bool:
    return (os.path.isfile(os.path.join(directory, FILE))
            and not os.path.exists(os.path.join(directory, 'manifest.json')))


def loads(raw: bytes) -> dict:
    """Parse the document and check what does not need the module (format,
    version, module hash), so a caller can pick the module first."""
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise NeutralError(f'{FILE}: not valid JSON: {e}')
    if not isinstance(doc, dict) or doc.get('format') != FORMAT:
        raise NeutralError(f'{FILE}: format: expected {FORMAT!r}')
    if doc.get('version') not in VERSIONS or isinstance(doc.get('version'), bool):
        _fail('version', f'{json.dumps(doc.get("version"))} is not supported '
                         f'(this tool reads versions {VERSION}, {WASM3_VERSION}, {GC_VERSION} '
                         f'and {LINK_VERSION})')
    sha = doc.get('module_sha256')
    if not isinstance(sha, str) or not re.fullmatch(r'[0-9a-f]{64}', sha):
        _fail('module_sha256', 'missing or not a sha256 hex digest')
    return doc


def read_document(directory: str) -> dict:
    path = os.path.join(directory, FILE)
    try:
        with open(path, 'rb') as f:
            raw = f.read()
    except FileNotFoundError:
        raise NeutralError(f'{FILE}: missing from directory {directory}')
    except OSError as e:
        raise NeutralError(f'{FILE}: cannot read: {e.strerror}')
    return loads(raw)


def check_module(doc: dict, module_sha256: str) -> None:
    if doc['module_sha256'] != module_sha256:
        _fail('module_sha256', f'the snapshot was taken from module {doc["module_sha256"][:16]}…, '
                               f'not this module ({module_sha256[:16]}…)')


def _keys(x, keys, where):
    if not isinstance(x, dict):
        _fail(where, f'expected an object with keys {", ".join(keys)}')
    for k in keys:
        if k not in x:
            _fail(f'{where}.{k}' if where else k, 'missing')
    extra = [k for k in x if k not in keys]
    if extra:
        _fail(f'{where}.{extra[0]}' if where else extra[0], 'unknown field')


def _list(x, where, length=None):
    if not isinstance(x, list):
        _fail(where, f'expected a list, got {json.dumps(x)[:40]}')
    if length is not None and len(x) != length:
        _fail(where, f'{len(x)} entries, but {length} expected')
    return x


def _index(x, where, limit, what):
    if not _is_int(x) or not 0 <= x < limit:
        _fail(where, f'{json.dumps(x)[:40]} is not {what} (0 .. {limit - 1})')
    return x


def _canon(x):
    return json.dumps(x, sort_keys=True)


def snapshot_from_document(doc: dict, module, info, limits=None) -> Snapshot:
    """Check every field of ``doc`` against the module (and memory and
    table sizes against ``limits``) and return the snapshot it describes."""
    view = ModuleView.of(module, info)
    v4 = doc['version'] == LINK_VERSION
    v3 = doc['version'] == GC_VERSION or v4 and gcheap.uses_gc(module)
    v2 = doc['version'] == WASM3_VERSION or v3 or v4
    if gcheap.uses_gc(module) != v3:
        _fail('version', f'{doc["version"]}, but a module that uses GC is written as version '
                         f'{GC_VERSION}' if not v3 else
              f'{GC_VERSION} (a GC heap), but the module does not use GC')
    _keys(doc, _TOP_KEYS + (('memories',) if v2 else ()) + (('heap', 'gc_elems') if v3 else ())
          + (('links',) if v4 else ()), '')
    links = _links(doc['links']) if v4 else []
    ftypes = link_types(view, links)       # links extend the function index space
    nfuncs, nrefs = len(view.func_types), len(ftypes)
    tags = exnstate.tag_types(module)
    gc = (module, gcheap.read_json_heap(
        module, doc['heap'], ftypes, _fail,
        lambda x, where, heap: _decode_exn(x, where, nrefs, tags, (module, heap, ftypes)),
        limits), ftypes) if v3 else None
    tags = exnstate.tag_types(module)
    exn = exnstate.uses_exceptions(module)
    if exn and not v2:
        _fail('version', f'{doc["version"]}, but a module with exception handling is written '
                         f'as version {WASM3_VERSION}')
    if not isinstance(doc['entry'], str):
        _fail('entry', 'expected the name of the exported function as a string')
    results = _list(doc['results'], 'results')
    for k, t in enumerate(results):
        if not parse_valtype(t):
            _fail(f'results[{k}]', f'{json.dumps(t)[:40]} is not a value type')
    results = [parse_valtype(t) for t in results]
    if not _is_int(doc['steps']) or doc['steps'] < 0:
        _fail('steps', f'{json.dumps(doc["steps"])[:40]} is not a count of instructions')

    raw_frames = _list(doc['frames'], 'frames')
    if not raw_frames:
        _fail('frames', 'empty (a stopped run has at least one frame)')
    frames = []
    for k, rf in enumerate(raw_frames):
        where = f'frames[{k}]'
        _keys(rf, _EXN_FRAME_KEYS if exn else _FRAME_KEYS, where)
        fidx = _index(rf['func'], f'{where}.func', nfuncs, 'a function index')
        body = view.func(fidx, f'{FILE}: {where}.func').body
        pc = _index(rf['pc'], f'{where}.pc', len(body),
                    f'an instruction index of function {fidx}')
        callee = None
        if k + 1 < len(raw_frames):
            ins = body[pc]
            if ins.op not in CALLS:
                _fail(f'{where}.pc', f'a frame with a frame above it must stand at its call, '
                                     f'but instruction {pc} of function {fidx} is {ins.op}')
            above = raw_frames[k + 1]
            callee = _index(above.get('func') if isinstance(above, dict) else None,
                            f'frames[{k + 1}].func', nfuncs, 'a function index')
            if not view.may_call(fidx, pc, callee):
                if view.tail_calls:
                    _fail(f'frames[{k + 1}].func', f'function {callee} has type '
                          f'{view.func_types[callee]}, whose results are not those of the '
                          f'{ins.op} of frames[{k}] ({view.call_type(fidx, pc)})')
                if ins.op == 'call':
                    _fail(f'frames[{k + 1}].func', f'function {callee}, but frames[{k}] is '
                                                  f'calling function {ins.imm}')
                _fail(f'frames[{k + 1}].func', f'function {callee} has type '
                      f'{view.func_types[callee]}, but frames[{k}] calls '
                      f'{"through a reference" if ins.op == "call_ref" else "indirectly"} '
                      f'with type {view.call_type(fidx, pc)}')
        types = view.frame_types(fidx, pc, callee)
        if None in types:
            _fail(f'{where}.pc', f'instruction {pc} of function {fidx} is unreachable code')
        nloc = len(view.local_types(fidx))
        values = []
        for part, ts in (('locals', types[:nloc]), ('operands', types[nloc:])):
            xs = _list(rf[part], f'{where}.{part}')
            if len(xs) != len(ts):
                _fail(f'{where}.{part}', f'{len(xs)} values, but function {fidx} at instruction '
                                         f'{pc} has {len(ts)} ({" ".join(ts) or "none"})')
            unset = view.unset_locals(fidx, pc) if part == 'locals' else ()
            values.extend(_decode_typed(t, x, f'{where}.{part}[{i}]', nrefs, view, i in unset,
                                        tags, gc)
                          for i, (t, x) in enumerate(zip(ts, xs)))
        got = _list(rf['labels'], f'{where}.labels')
        expect = labels_at(view, fidx, pc)
        for i, (g, e) in enumerate(zip(got, expect)):
            if _canon(g) != _canon(e):
                _fail(f'{where}.labels[{i}]', f'{_canon(g)[:200]} does not match the code of '
                      f'function {fidx} at instruction {pc} (expected {_canon(e)})')
        if len(got) != len(expect):
            _fail(f'{where}.labels', f'{len(got)} labels, but function {fidx} has {len(expect)} '
                                     f'open at instruction {pc}')
        caught = []
        if exn:
            expect = handlers_at(view, fidx, pc)
            if _canon(rf['handlers']) != _canon(expect):
                _fail(f'{where}.handlers', f'{_canon(rf["handlers"])[:200]} does not match the '
                      f'code of function {fidx} at instruction {pc} (expected {_canon(expect)})')
            n = exnstate.catch_depth(module, view.nimported, fidx, pc)
            caught = [decode_value('exnref', x, f'{where}.caught[{i}]', nrefs, tags=tags, gc=gc)
                      for i, x in enumerate(_list(rf['caught'], f'{where}.caught', n))]
            if None in caught:
                _fail(f'{where}.caught', 'null: a catch arm always holds its exception')
        frames.append(Frame(fidx, pc, values[:nloc], values[nloc:], types, caught))
    if doc['entry']:
        _check_entry(doc, module, view, frames[0].fidx, results)
    wrong = wrong_results(view, results, frames[0].fidx)
    if wrong:
        _fail('results', wrong)

    page_count, memory, chunks = _memory(doc['memory'], view, limits)
    more = memories.from_doc(doc['memories'] if v2 else [], view, limits, _fail)
    globs = [_decode_typed(t, x, f'globals[{k}]', nrefs, view, tags=tags, gc=gc)
             for k, (t, x) in enumerate(
        zip(view.global_types, _list(doc['globals'], 'globals', len(view.global_types))))]
    tables = []
    for k, (t, entries) in enumerate(zip(
            view.table_types, _list(doc['tables'], 'tables', len(view.table_types)))):
        entries = _list(entries, f'tables[{k}]')
        lo, hi, why = view.size_range('table', k, limits)
        if not lo <= len(entries) <= hi:
            _fail(f'tables[{k}]', f'{len(entries)} entries, outside {why}')
        tables.append([decode_value(t, x, f'tables[{k}][{i}]', nrefs, view, tags=tags, gc=gc)
                       for i, x in enumerate(entries)])
    dropped_elems = _segments(doc['dropped_elems'], 'dropped_elems', len(module.elems), 'element')
    gc_elems = _gc_elems(doc['gc_elems'], module, view, dropped_elems, nrefs, tags, gc) \
        if v3 else []
    if doc['version'] == VERSION and _wasm3_types(
            list(view.global_types) + list(view.table_types) + list(results)
            + [t for fr in frames for t in fr.types]):
        _fail('version', f'{VERSION}, but the run holds 3.0 typed reference types, which '
                         f'version {WASM3_VERSION} documents carry')
    return Snapshot(frames=frames, page_count=page_count, memory=memory, globals=globs,
                    global_types=view.global_types, tables=tables, entry=doc['entry'],
                    results=list(results), steps=doc['steps'], chunks=chunks, memories=more,
                    gc_elems=gc_elems, dropped_elems=dropped_elems, links=links,
                    dropped_datas=_segments(doc['dropped_datas'], 'dropped_datas',
                                            len(module.datas), 'data'))


def _links(raw):
    """``links``: a non-empty list of {"instance": name, "func": index},
    each link once (a document without links has no such key)."""
    xs = _list(raw, 'links')
    if not xs:
        _fail('links', 'empty (a document without links is version 1 to 3 and has no "links")')
    out = []
    for k, x in enumerate(xs):
        _keys(x, ('instance', 'func'), f'links[{k}]')
        if not isinstance(x['instance'], str) or not x['instance']:
            _fail(f'links[{k}].instance', f'{json.dumps(x["instance"])[:40]} is not an '
                                          f'instance name (a non-empty string)')
        _index(x['func'], f'links[{k}].func', NONE, 'a function index')
        link = Link(x['instance'], x['func'])
        if link in out:
            _fail(f'links[{k}]', f'{link} is listed twice')
        out.append(link)
    return out


def _gc_elems(raw, module, view, dropped, nfuncs, tags, gc):
    """``gc_elems``: exactly the passive, not dropped element segments of a
    GC type, ascending, each element checked against the segment's type."""
    want = gcheap.gc_elem_indices(module, dropped)
    xs = _list(raw, 'gc_elems', len(want))
    out = []
    for k, (x, i) in enumerate(zip(xs, want)):
        _keys(x, ('elem', 'values'), f'gc_elems[{k}]')
        if x['elem'] != i:
            _fail(f'gc_elems[{k}].elem', f'{json.dumps(x["elem"])[:40]}, but the passive, not '
                                         f'dropped element segments of a GC type are {want}')
        t = module.elems[i].type
        out.append((i, [decode_value(t, v, f'gc_elems[{k}].values[{j}]', nfuncs, view,
                                     tags=tags, gc=gc)
                        for j, v in enumerate(_list(x['values'], f'gc_elems[{k}].values'))]))
    return out


def _check_entry(doc, module, view, fidx, results):
    """The host called ``entry``: the outermost frame runs it (or, in a
    module with tail calls, a function with its results that it tail-called)
    and the results are its results."""
    exp = next((e for e in module.exports if e.name == doc['entry']), None)
    if exp is None or exp.kind != 'func':
        _fail('entry', f'{json.dumps(doc["entry"])} is not an exported function of the module')
    want = list(view.func_types[exp.index].results)
    if exp.index != fidx and not (view.tail_calls and list(view.func_types[fidx].results) == want):
        _fail('frames[0].func', f'function {fidx}, but the entry {doc["entry"]!r} is '
                                f'function {exp.index}'
                                + (f' and function {fidx} does not return its results {want}'
                                   if view.tail_calls else ''))
    if results != want:
        _fail('results', f'{results} but {doc["entry"]!r} returns {want}')


def _memory(raw, view, limits):
    _keys(raw, ('pages', 'chunks'), 'memory')
    pages = raw['pages']
    if not view.has_memory:
        if pages is not None:
            _fail('memory.pages', f'{json.dumps(pages)[:40]}, but the module has no memory '
                                  f'(expected null)')
        if raw['chunks'] != {}:
            _fail('memory.chunks', 'not empty, but the module has no memory')
        return None, b'', []
    lo, hi, why = view.size_range('memory', 0, limits)
    if not _is_int(pages) or not lo <= pages <= hi:
        _fail('memory.pages', f'{json.dumps(pages)[:40]} is not a page count within {why}')
    chunks = raw['chunks']
    if not isinstance(chunks, dict):
        _fail('memory.chunks', 'expected an object {"<byte offset>": "<hex of 4096 bytes>"}')
    memory = bytearray(pages * PAGE)
    for key, text in chunks.items():
        where = f'memory.chunks["{key[:20]}"]'
        if not _DECIMAL.match(key):
            _fail(where, 'the key must be a byte offset in decimal')
        off = int(key)
        if off % CHUNK or off + CHUNK > len(memory):
            _fail(where, f'offset {off} is not a multiple of {CHUNK} inside the memory of '
                         f'{pages} pages')
        if not isinstance(text, str) or not _HEX_CHUNK.match(text):
            _fail(where, f'expected {2 * CHUNK} hex digits ({CHUNK} bytes)')
        memory[off:off + CHUNK] = bytes.fromhex(text)
    # a bytearray: a copy of a large memory costs seconds
    return pages, memory, sorted(int(key) for key in chunks)


def _segments(raw, where, count, what):
    xs = _list(raw, where)
    for i, x in enumerate(xs):
        _index(x, f'{where}[{i}]', count, f'an {what} segment index' if what == 'element'
               else f'a {what} segment index')
        if x in xs[:i]:
            _fail(f'{where}[{i}]', f'{x} appears twice')
    return list(xs)
