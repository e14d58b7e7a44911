"""Robustness campaigns: hostile inputs must end in a typed outcome, fast.

    python -m fuzz.robust --target module|images|wast --inputs N --jobs J --out DIR

Unlike ``fuzz.migrate`` (valid programs, compared between models) these
campaigns feed the engine *broken* input, the way a careless user or an
attacker would, and check one contract: every input ends in a typed outcome
(a result, or one of the engine's own errors: ``DecodeError``,
``ValidationError``, ``LinkError``, ``Trap``, ``LimitError``,
``ImageError``, ... / exit status 0, 1 or 2 of a command) within
``--hang`` seconds (default 2) of CPU time.  Anything else -- a Python
exception such as ``MemoryError``, ``IndexError``, ``RecursionError``, a
run over the time bound, a half-written output directory -- is a *finding*,
saved as a reproducer under ``DIR/findings/<target>-<hash>/`` (the input
plus ``finding.json`` with the exception and traceback) and replayed with
``python -m fuzz.robust --replay DIR/findings/<id>``.

Targets (mutation-based; every input is derived from ``--seed`` and its
index, so a campaign is repeatable and ``--out`` resumes where it ended):

``module``  raw module bytes (valid seeds from the generator and the spec
            suite, mutated: bit flips, random bytes, huge LEB128 counts,
            u32 overwrites, insertions, deletions, splices, truncation)
            through decode, validate, instantiate and a call of every
            exported function, in turn in the two runtime models and the
            two tiers (the compiled one, ``engine run``'s default, and the
            interpreter).
``images``  image sets of both models and neutral snapshots (taken from
            generated modules and the GC programs of ``fuzz.gcseeds``
            stopped mid-run) with byte flips, truncated
            or missing files, a file from another module's set, and
            field-level corruption (manifest and neutral.json fields set to
            wrong types and ranges, deep JSON nesting, huge page counts and
            u32 fields, ``gc.img`` and ``link.img`` corrupted by
            structure), through
            ``engine restore``/``translate``/``inspect``.
``wast``    scripts of the spec suite's own commands (a module and the
            assertions after it), mutated as text, through the .wast parser
            and the script runner under both models and both tiers.

Runs use the campaign limits (``CAMPAIGN_LIMITS``: 256 KiB modules, 256
memory pages, 100,000 table entries, 20,000 instructions and 1 s per call), so a mutated infinite
loop is a ``LimitError``, not a hang.  A coverage-guided variant of the
module target is ``python -m fuzz.robust_atheris``.
"""

import argparse
import contextlib
import hashlib
import io
import json
import multiprocessing
import os
import random
import resource
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback

from engine import embedding, limits as L, syntax
from engine.errors import WasmError
from engine.migrate.images import write_file_atomic

TARGETS = ('module', 'images', 'wast')
CAMPAIGN_LIMITS = L.Limits(max_module_bytes=256 << 10, max_memory_pages=256, max_table_elems=100_000, max_instances=1000,
                           max_call_depth=2000, max_steps=20_000, timeout=1.0)
LIMIT_FLAGS = ['--max-module-bytes', str(256 << 10), '--max-memory-pages', '256',
               '--max-table-elems', '100000']
RUN_FLAGS = LIMIT_FLAGS + ['--max-steps', '20000', '--timeout', '1']
HARD_STOP = 20.0            # CPU seconds: an input still running is cut off (a hang finding)
ADDRESS_SPACE = 3 << 30     # per worker: a runaway allocation fails fast instead of swapping


class HardStop(BaseException):
    """Raised by the alarm in an input that runs far past the hang bound."""


# ------------------------------------------------------------ mutations

INTERESTING_U32 = (0, 1, 0x7F, 0x80, 0xFF, 0x10000, 0x10001, 0x4000, 0x4001, 0x7FFFFFFF,
                   0x80000000, 0xFFFFFFFE, 0xFFFFFFFF, 0x10000000)
INTERESTING_LEB = (b'\xff\xff\xff\xff\x0f', b'\x80\x80\x80\x80\x10', b'\x80\x80\x04',
                   b'\x81\x80\x04', b'\xff\xff\x03', b'\x00', b'\x7f', b'\x80\x00')


def mutate_bytes(rng, data, others=()):
    """1-4 random byte-level mutations of ``data``."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(9)
        pos = rng.randint(0, len(b))
        if kind == 0 and b:                                    # bit flip
            p = rng.randrange(len(b))
            b[p] ^= 1 << rng.randrange(8)
        elif kind == 1 and b:                                  # random byte
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif kind == 2:                                        # huge/odd LEB128
            b[pos:pos + rng.randint(0, 5)] = rng.choice(INTERESTING_LEB)
        elif kind == 3 and len(b) >= 4:                        # u32 overwrite
            p = rng.randrange(len(b) - 3)
            b[p:p + 4] = rng.choice(INTERESTING_U32).to_bytes(4, 'little')
        elif kind == 4:                                        # insert random bytes
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == 5 and b:                                  # delete a range
            b[pos:pos + rng.randint(1, 16)] = b''
        elif kind == 6 and b:                                  # duplicate a range
            n = rng.randint(1, 32)
            b[pos:pos] = b[pos:pos + n]
        elif kind == 7:                                        # truncate
            del b[rng.randint(0, len(b)):]
        elif kind == 8 and others:                             # splice with another seed
            o = rng.choice(others)
            q = rng.randint(0, len(o))
            b[pos:] = o[q:q + rng.randint(0, 256)]
    return bytes(b)


SIZES = (0, 1, 2, 255, 256, 257, 16384, 16385, 65535, 65536, 65537, 100_000, 100_001,
         10_000_000, 10_000_001, 0x7FFFFFFF, 0xFFFFFFFF)


def mutate_module(rng, data):
    """A field-level change of a module that still decodes: memory and
    table sizes, constants and immediates, functions or exports multiplied
    (what byte mutation rarely reaches past the section framing)."""
    from engine import syntax as S
    from engine.binary import decode_module
    from engine.errors import DecodeError
    from fuzz.encode import encode_module
    try:
        m = decode_module(data)
    except (DecodeError, L.LimitError):
        return mutate_bytes(rng, data)
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(6)
        if kind == 0 and m.mems:
            lo = rng.choice(SIZES) % 65537
            hi = rng.choice((None, lo, lo + 1, 65536))
            m.mems[0].type = S.MemType(S.Limits(lo, hi if hi is None or hi >= lo else None))
        elif kind == 1 and m.tables:
            t = rng.choice(m.tables)
            lo = rng.choice(SIZES)
            t.type = S.TableType(S.Limits(lo, rng.choice((None, lo, 0xFFFFFFFF))), t.type.elemtype)
        elif kind in (2, 3):
            bodies = [f.body for f in m.funcs] + [g.init for g in m.globals] + \
                [d.offset for d in m.datas if d.mode == 'active'] + \
                [e.offset for e in m.elems if e.mode == 'active']
            consts = [ins for body in bodies for ins in body
                      if ins.op in ('i32.const', 'i64.const') or
                      (isinstance(ins.imm, int) and ins.op not in ('call', 'br', 'br_if'))]
            if consts:
                ins = rng.choice(consts)
                bits = 64 if ins.op == 'i64.const' else 32
                ins.imm = rng.choice(SIZES + (rng.getrandbits(bits),)) & ((1 << bits) - 1)
        elif kind == 4 and m.funcs and len(data) < 20000:
            m.funcs = m.funcs * rng.choice((2, 10, 100))
        elif kind == 5 and m.funcs:
            f = rng.choice(m.funcs)
            f.locals = list(f.locals) + [rng.choice(S.VAL_TYPES)] * rng.choice((1, 1000, 60000))
    try:
        return encode_module(m)
    except Exception:       # an immediate the encoder cannot write: fall back to bytes
        return mutate_bytes(rng, data)


WEIRD_JSON = ('abc', None, [], {}, -5, -1, 2 ** 70, 1.5, True, 'x' * 300, [1, 2], {'a': 1},
              'wasmedge', 'i32', 0, 4294967295, 65536, 65537, float('inf'))


def deep_json(depth):
    return '[' * depth + ']' * depth


def corrupt_json(rng, raw):
    """A JSON document with one field (at a random path) set to a value of
    the wrong type or range, a key added or removed, or deep nesting."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return mutate_bytes(rng, raw)
    kind = rng.randrange(6)
    if kind == 0:
        return deep_json(rng.choice((100, 5000, 100000))).encode()
    paths = []

    def walk(x, path):
        paths.append(path)
        if len(paths) > 5000:
            return
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, path + (k,))
        elif isinstance(x, list):
            for i, v in enumerate(x[:50]):
                walk(v, path + (i,))
    walk(doc, ())
    aimed = [p for p in paths if len(p) > 1 and p[0] in HEAP_KEYS]
    if aimed and rng.random() < 0.5:         # a GC document: its heap and segments
        paths = [()] + aimed
    path = rng.choice(paths[1:] or paths)
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    last = path[-1] if path else None
    if last is None:
        return json.dumps(rng.choice(WEIRD_JSON)).encode()
    if kind == 1 and isinstance(parent, dict):
        del parent[last]
    elif kind == 2 and isinstance(parent, dict):
        parent['extra' + str(rng.randrange(9))] = rng.choice(WEIRD_JSON)
    elif kind == 3:
        parent[last] = '@DEEP@'             # spliced in as text: json cannot build it
    elif kind == 4 and isinstance(parent[last], int) and not isinstance(parent[last], bool):
        parent[last] = rng.choice((-1, parent[last] + 1, parent[last] - 1, 2 ** 32, 2 ** 64,
                                   rng.choice(INTERESTING_U32)))
    else:
        parent[last] = rng.choice(WEIRD_JSON)
    try:
        text = json.dumps(doc)
    except (ValueError, RecursionError):
        return raw
    return text.replace('"@DEEP@"', deep_json(rng.choice((50, 3000, 100000)))).encode()


def mutate_gc_img(rng, data):
    """A structured corruption of ``gc.img`` (docs/images.md "GC heap")
    that keeps its framing, so the checks behind the decoder are reached:
    a type index out of range or of the other composite kind, an object
    id out of range or naming an entry of another kind, a field tag or
    payload of the wrong kind or width, a field dropped or added, segment
    ids and indices out of range -- or a huge entry count, field count or
    segment length written into the header, which must be refused before
    anything of that size is allocated."""
    from engine.errors import WasmError
    from engine.migrate import gcheap
    try:
        entries, elems = gcheap.decode(data)
    except WasmError:
        return mutate_bytes(rng, data)
    entries = [list(e[:2]) + ([list(e[2])] if len(e) > 2 else []) for e in entries]
    elems = [(i, list(cells)) for i, cells in elems]
    objs = [k for k, e in enumerate(entries) if e[0] in ('struct', 'array')]
    ids = (len(entries), len(entries) + 1, 0xFFFFFFFE, 0xFFFFFFFF, 0x7FFFFFFF,
           rng.randrange(len(entries) + 1))
    kind = rng.randrange(8)
    if kind == 0:                                          # a huge count in a header
        which = rng.randrange(3)
        huge = rng.choice((0xFFFFFFFF, 0x7FFFFFFF, 0x10000000, 1 << 20, len(data)))
        if which == 1 and objs:                            # an object's field count
            k = rng.choice(objs)
            pos = len(gcheap.encode([tuple(e) for e in entries[:k]], [])) - 4 + 1 + 4
        elif which == 2 and elems:                         # a segment's length
            j = rng.randrange(len(elems))
            pos = len(gcheap.encode([tuple(e) for e in entries], elems[:j])) + 4
        else:                                              # the entry count
            pos = 4
        return data[:pos] + huge.to_bytes(4, 'little') + data[pos + 4:]
    if kind == 1 and objs:                                 # type index
        e = entries[rng.choice(objs)]
        e[1] = rng.choice((e[1] + 1, e[1] - 1 if e[1] else 0xFFFFFFFF, rng.randrange(8),
                           0xFFFFFFFF, 1000))
    elif kind == 2 and objs:                               # struct <-> array
        e = entries[rng.choice(objs)]
        e[0] = 'array' if e[0] == 'struct' else 'struct'
    elif kind == 3 and objs:                               # a field's payload
        fields = entries[rng.choice(objs)][2]
        if fields:
            i = rng.randrange(len(fields))
            tag, x = fields[i]
            if tag in (gcheap.OBJ, gcheap.EXN):
                x = rng.choice(ids + tuple(k for k, e in enumerate(entries) if e[0] in ('i31', 'host')))
            elif tag == gcheap.NUM64:
                x = rng.choice((0, 1 << 63, (1 << 64) - 1))
            elif tag == gcheap.NUM128:
                x = rng.choice((0, (1 << 128) - 1))
            else:
                x = rng.choice(INTERESTING_U32)
            fields[i] = (tag, x)
    elif kind == 4 and objs:                               # a field's tag
        fields = entries[rng.choice(objs)][2]
        if fields:
            i = rng.randrange(len(fields))
            tag = rng.randrange(gcheap.EXN + 1)
            x = 0 if tag in (gcheap.NUM64, gcheap.NUM128, gcheap.NULL) else rng.choice(ids)
            fields[i] = (tag, x)
    elif kind == 5 and objs:                               # a field dropped or added
        fields = entries[rng.choice(objs)][2]
        if fields and rng.random() < 0.5:
            del fields[rng.randrange(len(fields))]
        else:
            fields.append(rng.choice(((gcheap.NULL, 0), (gcheap.NUM32, 1), (gcheap.OBJ, 0),
                                      (gcheap.T_I31, 3))))
    elif kind == 6 and elems:                              # a segment
        j = rng.randrange(len(elems))
        i, cells = elems[j]
        if cells and rng.random() < 0.6:
            cells[rng.randrange(len(cells))] = rng.choice(ids)
        else:
            elems[j] = (rng.choice((i + 1, 0xFFFFFFFF, 0, 99)), cells)
    else:                                                  # i31/host values, entries dropped
        if entries and rng.random() < 0.5:
            del entries[rng.randrange(len(entries))]
        else:
            vals = [k for k, e in enumerate(entries) if e[0] in ('i31', 'host')]
            if vals:
                entries[rng.choice(vals)][1] = rng.choice((1 << 31, 0xFFFFFFFF, 0x7FFFFFFF))
    try:
        return gcheap.encode([tuple(e) for e in entries], elems)
    except (struct.error, OverflowError, ValueError):
        return mutate_bytes(rng, data)


def mutate_link_img(rng, data):
    """A structured corruption of ``link.img`` (docs/images.md "Links")
    that keeps its framing: a function index past the peer's functions or
    at the top of u32, a name changed, emptied or made invalid UTF-8, a
    link dropped (cells then name one past the table) or listed twice, or
    a huge count in the header."""
    from engine.migrate import images as im, links
    try:
        entries = [(l.instance.encode(), l.fidx) for l in links.decode(data)]
    except im.ImageError:
        return mutate_bytes(rng, data)
    kind = rng.randrange(5)
    k = rng.randrange(len(entries))
    if kind == 0:
        return data[:4] + rng.choice((0xFFFFFFFF, 1 << 20, len(data))).to_bytes(4, 'little') + data[8:]
    if kind == 1:
        entries[k] = (entries[k][0], rng.choice((entries[k][1] + 1, 1000, 0xFFFFFFFF)))
    elif kind == 2:
        entries[k] = (rng.choice((b'', b'\xff\xfe', b'B', entries[k][0] * 3)), entries[k][1])
    elif kind == 3 and len(entries) > 1:
        del entries[k]
    else:
        entries.append(entries[k])
    return links.MAGIC + struct.pack('<I', len(entries)) + b''.join(
        struct.pack('<II', fidx, len(name)) + name for name, fidx in entries)


HEAP_KEYS = ('heap', 'gc_elems')   # neutral.json v3: what corrupt_json aims at half the time


def mutate_image_set(rng, files, others):
    """One structured corruption of an image set or neutral directory."""
    files = dict(files)
    names = sorted(files)
    name = rng.choice(names)
    if 'gc.img' in files and rng.random() < 0.3:               # the GC heap, structured
        files['gc.img'] = mutate_gc_img(rng, files['gc.img'])
        if rng.random() < 0.2 and others:                      # with another set's gc.img
            donors = [o for o in others if 'gc.img' in o]
            if donors:
                files['gc.img'] = rng.choice(donors)['gc.img']
        return files
    if 'link.img' in files and rng.random() < 0.3:             # the links, structured
        files['link.img'] = mutate_link_img(rng, files['link.img'])
        return files
    kind = rng.randrange(7)
    if kind == 0:                                              # bytes of one file
        files[name] = mutate_bytes(rng, files[name])
    elif kind == 1:                                            # truncated file
        files[name] = files[name][:rng.randint(0, max(0, len(files[name]) - 1))]
    elif kind == 2:                                            # missing file
        del files[name]
    elif kind == 3 and others:                                 # file of another set
        other = rng.choice(others)
        pick = rng.choice(sorted(other))
        files[pick] = other[pick]
    elif kind == 4 and name.endswith('.json'):                 # field-level corruption
        files[name] = corrupt_json(rng, files[name])
    elif kind == 5 and len(files[name]) >= 4:                  # a u32 field
        p = rng.randrange(0, len(files[name]) - 3) & ~3 if rng.random() < 0.7 else 0
        files[name] = (files[name][:p] + rng.choice(INTERESTING_U32).to_bytes(4, 'little')
                       + files[name][p + 4:])
    else:                                                      # the json file, always
        js = [n for n in names if n.endswith('.json')]
        if js:
            files[js[0]] = corrupt_json(rng, files[js[0]])
        if 'mem_page_count.img' in files and rng.random() < 0.3:
            files['mem_page_count.img'] = rng.choice((65536, 16385, 0xFFFFFFFF, 1 << 20, 257)) \
                .to_bytes(4, 'little')
    return files


NUMBERS = ('0', '-1', '0xffffffff', '4294967296', '0x1_0000_0000', '-0x8000_0000', '1e309',
           'nan:0x7fffff', 'inf', '-nan', '0x7fffffffffffffff', '18446744073709551616', '65536',
           '65537', '99999999999999999999999')


def mutate_text(rng, text):
    """1-3 text-level mutations of a .wast script."""
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice((0, 1, 2, 3, 3, 3, 3, 4, 5, 5))    # mostly still parses
        pos = rng.randint(0, len(text))
        if kind == 0 and text:
            text = text[:pos] + chr(rng.choice((40, 41, 34, 59, 32, 10, rng.randrange(32, 127)))) \
                + text[pos + 1:]
        elif kind == 1:
            text = text[:pos] + text[pos + rng.randint(1, 20):]
        elif kind == 2:
            n = rng.randint(1, 60)
            text = text[:pos] + text[pos:pos + n] + text[pos:]
        elif kind == 3:
            import re
            nums = [m.span() for m in re.finditer(r'(?<![\w$.])-?(0x)?[0-9][0-9a-fA-F_.]*', text)]
            if nums:
                a, b = rng.choice(nums)
                text = text[:a] + rng.choice(NUMBERS) + text[b:]
        elif kind == 4:
            text = text[:pos]
        else:
            text = text[:pos] + rng.choice(('(', ')', '(block', '(loop', 'end', '"\\ff"',
                                            '(memory 65536)', '(table 0xffffffff funcref)',
                                            'unreachable', '(call 0)')) + text[pos:]
    return text


# ------------------------------------------------------------ seeds

SEED_FILES = ('address.wast', 'block.wast', 'br_table.wast', 'bulk.wast', 'call.wast',
              'call_indirect.wast', 'data.wast', 'elem.wast', 'exports.wast', 'func.wast',
              'global.wast', 'imports.wast', 'linking.wast', 'loop.wast', 'memory.wast',
              'memory_grow.wast', 'ref_func.wast', 'simd_lane.wast', 'start.wast', 'table.wast',
              'table_grow.wast', 'binary.wast', 'fac.wast', 'select.wast')

# Wasm 3.0 seeds, so mutations start from the 3.0 encodings (64-bit limits
# and addresses, memory indices, typed references, tags and try_table, tail
# calls, relaxed SIMD, GC types the engine refuses, legacy try/catch).
SEED_FILES_3 = ('address64.wast', 'memory64.wast', 'memory_grow64.wast', 'table64.wast',
                'table_grow64.wast', 'memory-multi.wast', 'load1.wast', 'store1.wast',
                'memory_copy1.wast', 'call_ref.wast', 'br_on_null.wast', 'br_on_non_null.wast',
                'return_call.wast', 'return_call_indirect.wast', 'return_call_ref.wast',
                'tag.wast', 'throw.wast', 'throw_ref.wast', 'try_table.wast',
                'relaxed_laneselect.wast', 'relaxed_madd_nmadd.wast', 'i31.wast',
                'struct.wast', 'array.wast', 'br_on_cast.wast', 'type-rec.wast',
                'legacy/try_catch.wast', 'legacy/rethrow.wast')


def _forms(text):
    """Top-level parenthesised forms of a .wast text (strings and comments
    respected), as (start, end) spans."""
    from conformance.wast import blank_comments
    clean = blank_comments(text)
    spans, depth, start, i, n = [], 0, 0, 0, len(clean)
    while i < n:
        ch = clean[i]
        if ch == '"':
            i += 1
            while i < n and clean[i] != '"':
                i += 2 if clean[i] == '\\' else 1
        elif ch == '(':
            if depth == 0:
                start = i
            depth += 1
        elif ch == ')':
            depth -= 1
            if depth == 0:
                spans.append((start, i + 1))
        i += 1
    return [text[a:b] for a, b in spans]


def _spec_dir(suite='wasm-2.0'):
    from spectests import manifest as mf
    return mf.suite_dir(suite)


def build_seeds(target, directory, count=40):
    """The seed corpus of a target, built once and kept in ``directory``."""
    path = os.path.join(directory, f'seeds-{target}.json')
    if os.path.exists(path):
        with open(path) as f:
            return _load_seeds(target, json.load(f))
    if target == 'module':
        seeds = _module_seeds(count)
        raw = [s.hex() for s in seeds]
    elif target == 'images':
        seeds = _image_seeds(count)
        raw = [{k: v.hex() for k, v in s.items()} for s in seeds]
    else:
        seeds = _wast_seeds()
        raw = seeds
    os.makedirs(directory, exist_ok=True)
    write_file_atomic(path, json.dumps(raw))
    return seeds


def _load_seeds(target, raw):
    if target == 'module':
        return [bytes.fromhex(s) for s in raw]
    if target == 'images':
        return [{k: bytes.fromhex(v) for k, v in s.items()} for s in raw]
    return raw


def _module_seeds(count):
    from fuzz import gen
    seeds = [gen.from_seed(k).wasm for k in range(count)]
    for suite, names in (('wasm-2.0', SEED_FILES), ('wasm-3.0', SEED_FILES_3)):
        try:
            directory = _spec_dir(suite)
        except Exception:
            continue
        for name in names:
            seeds += _file_modules(os.path.join(directory, name), 12)
    return seeds


def _file_modules(path, most):
    """Up to ``most`` module binaries of a spec file's module, assert_trap,
    assert_malformed and assert_invalid commands (text converted)."""
    from conformance.wat import wat_to_binary
    from conformance.wast import parse_file
    if not os.path.exists(path):
        return []
    found = []
    for cmd in parse_file(path):
        src = getattr(cmd, 'target', None)
        if cmd.kind not in ('module', 'assert_trap', 'assert_malformed', 'assert_invalid') \
                or not hasattr(src, 'kind') or len(found) >= most:
            continue
        try:
            found.append(src.source if src.kind == 'binary' else wat_to_binary(src.source))
        except Exception:
            pass
    return found


def _image_seeds(count):
    """Image sets (both models), fork-layout sets and neutral documents of
    generated modules stopped half-way, from the first ``count`` generated
    modules (seeds 1000 on) that are still running at their stop point;
    then those of the GC programs (``_gc_image_seeds``) and of a program
    holding functions of another instance (``_link_image_seeds``).  A fork's layout
    holds no GC heap, and half the default modules have one: its sets
    come from the same seeds' modules made without 'gc', which are the
    modules these seeds were before GC became a default, so they keep their
    fork sets."""
    from fuzz import gen, gen3
    seeds = _stopped_seeds(count, None)
    seeds += [s for s in _stopped_seeds(count, gen.FEATURES - gen3.GC_FEATURES) if FORK in s]
    return seeds + _gc_image_seeds(seeds) + _link_image_seeds()


def _stopped_seeds(count, features):
    """The ``_sets_of`` of the first ``count`` modules of seeds 1000 on
    (``fuzz.gen``'s ``features``, None: its defaults) still running at
    their stop point."""
    from engine.migrate import images as im
    from fuzz import gen, linked
    seeds = []
    modules = 0
    for k in range(count * 20):
        if modules >= count:
            break
        before = len(seeds)
        gm = gen.from_seed(1000 + k) if features is None else gen.from_seed(1000 + k, features=features)
        args = list(gm.args[0]) if gm.args else []
        for rt in im.RUNTIMES:
            store = embedding.store_init(rt)
            module = embedding.module_decode(gm.wasm)     # a linked one brings its provider
            inst = embedding.module_instantiate(store, module, linked.imports_for(store, module, gm.wasm))
            addr = inst.exports[gm.entry][1]
            ex = store.new_executor()
            ex.start(addr, args)
            try:
                ex.run(200 + k * 37)
            except WasmError:
                continue
            if ex.finished:
                continue
            seeds += _sets_of(ex, inst, rt, gm.wasm, gm.entry, list(gm.results),
                              lambda store, module, wasm=gm.wasm: linked.imports_for(store, module, wasm))
        modules += len(seeds) > before
    return seeds


def _sets_of(ex, inst, rt, wasm, entry, results, imports):
    """The seeds of one stopped run: its image set, the fork layout of it
    (where a fork's layout can hold it), and (wasmedge runs) its neutral
    document.  ``imports(store, module)`` links a fresh instance."""
    from engine.migrate import checkpoint, fork_images, images as im, neutral
    from engine.migrate.translate import snapshot_from_images
    from fuzz import linked
    try:        # a linked module's references to its provider as links (link.img)
        images = checkpoint.save(ex, inst, im.module_sha256(wasm), entry, results,
                                 peers=linked.peers(ex.store, inst))
    except WasmError:
        return []
    files = im.encode_files(images)
    files['module.wasm'] = wasm
    out = [files]
    fresh = embedding.store_init(rt)
    fresh_module = embedding.module_decode(wasm)
    base = embedding.module_instantiate(fresh, fresh_module, imports(fresh, fresh_module),
                                        run_start=False)
    snap = snapshot_from_images(images, inst.module, inst.info)
    try:
        fork = fork_images.fork_files(snap, inst.module, inst.info, rt,
                                      fork_images.baseline_of(fresh, base))
        out.append(dict(fork, **{'module.wasm': wasm, FORK: f'{rt} {entry}'.encode()}))
    except WasmError:       # what a fork's layout cannot hold (docs/fork-findings.md), GC
        pass
    if rt == 'wasmedge':
        snap = snapshot_from_images(images, inst.module, inst.info)
        doc = neutral.document_from_snapshot(snap, inst.module, inst.info, im.module_sha256(wasm))
        out.append({neutral.FILE: neutral.dumps(doc), 'module.wasm': wasm})
    return out


# a program whose table (imported from its provider) holds the provider's
# functions, kept in a local, a global, its own table and on the operand
# stack (tests/test_links.py runs it at every instruction): its sets are
# version 5 with link.img (docs/images.md "Links").  The command line
# provides no imports (nor peers), so restore and translate refuse the
# module (exit 2); inspect reads the set and checks it, links included,
# against the module, which is what a corrupted link.img must survive.
LINK_PROVIDER = '''(module
  (type $r (func (param i32) (result i32)))
  (func $dbl (type $r) (i32.mul (local.get 0) (i32.const 2)))
  (func $inc (type $r) (i32.add (local.get 0) (i32.const 1)))
  (table (export "t") 2 funcref)
  (elem (i32.const 0) $dbl $inc)
  (global (export "gf") (ref $r) (ref.func $dbl)))'''
LINK_USER = '''(module
  (type $r (func (param i32) (result i32)))
  (import "A" "t" (table $t 2 funcref))
  (table $own 1 funcref)
  (global $keep (mut funcref) (ref.null func))
  (func (export "run") (param $n i32) (result i32)
    (local $acc i32) (local $f funcref)
    (local.set $f (table.get $t (i32.const 1)))
    (global.set $keep (table.get $t (i32.const 0)))
    (table.set $own (i32.const 0) (local.get $f))
    (loop $l
      (local.set $acc (call_indirect $t (type $r)
        (i32.add (local.get $acc) (local.get $n)) (i32.const 0)))
      (local.set $acc (call_indirect $own (type $r) (local.get $acc) (i32.const 0)))
      (local.set $acc (i32.and (local.get $acc) (i32.const 0xffff)))
      (drop (select (result funcref) (local.get $f) (global.get $keep) (local.get $n)))
      (br_if $l (i32.gt_s (local.tee $n (i32.sub (local.get $n) (i32.const 1)))
                          (i32.const 0))))
    (local.get $acc)))'''
LINK_STOPS = (6, 19, 40)


def _link_image_seeds():
    """Sets of ``LINK_USER`` stopped at ``LINK_STOPS`` in both models,
    saved with its provider as the peer "A" (version 5, link.img), and a
    neutral v4 document of each wasmedge one."""
    from conformance.wat import wat_to_binary
    from engine.migrate import checkpoint, images as im, neutral
    from engine.migrate.translate import snapshot_from_images
    provider, user = wat_to_binary(LINK_PROVIDER), wat_to_binary(LINK_USER)
    seeds = []
    for rt in im.RUNTIMES:            # one run per model, saved at each stop on its way
        store = embedding.store_init(rt)
        a = embedding.module_instantiate(store, embedding.module_decode(provider), [])
        b = embedding.module_instantiate(store, embedding.module_decode(user), [a.exports['t']])
        ex = store.new_executor()
        ex.start(b.exports['run'][1], [5])
        for k in LINK_STOPS:
            ex.run(k - ex.steps)
            while True:
                try:
                    images = checkpoint.save(ex, b, im.module_sha256(user), 'run', ['i32'],
                                             peers={'A': a})
                    break
                except checkpoint.ForeignInstanceError:     # in a frame of the provider
                    ex.run(1)
            seeds.append(dict(im.encode_files(images), **{'module.wasm': user}))
            if rt == 'wasmedge':
                snap = snapshot_from_images(images, b.module, b.info)
                doc = neutral.document_from_snapshot(snap, b.module, b.info, images.module_sha256)
                seeds.append({neutral.FILE: neutral.dumps(doc), 'module.wasm': user})
    return seeds


GC_STOPS = (12, 20, 30, 75, 140, 260)   # instructions before the stop (of each GC program's run)
GC_ROUNDS = 12                    # loop rounds of the GC programs' entries


def _gc_image_seeds(plain):
    """Image sets (version 4, with gc.img) and neutral v3 documents of the
    GC programs of ``fuzz.gcseeds`` stopped at ``GC_STOPS`` in both models,
    plus fork-layout sets of ``plain`` given a GC module instead of their
    own (a fork's layout has no GC heap: restoring one must be refused)."""
    from fuzz import gcseeds
    from engine.migrate import images as im
    seeds = []
    modules = gcseeds.gc_modules()
    for wasm, entry, _ in modules:
        for rt in im.RUNTIMES:
            for ex, inst in gcseeds.stopped_runs(rt, wasm, entry, GC_ROUNDS, GC_STOPS):
                seeds += _sets_of(ex, inst, rt, wasm, entry, ['i32'], lambda store, module: [])
    forks = [s for s in plain if FORK in s][:2]
    for s, (wasm, _, _) in zip(forks, modules):
        seeds.append(dict(s, **{'module.wasm': wasm}))
    return seeds


def _wast_seeds():
    """Small scripts: each module of the seed files with up to six of the
    commands after it."""
    directory = _spec_dir()
    seeds = []
    for name in SEED_FILES:
        with open(os.path.join(directory, name), encoding='utf-8') as f:
            forms = _forms(f.read())
        for i, form in enumerate(forms):
            if form.startswith('(module') and len(form) < 20000:
                seeds.append('\n'.join(forms[i:i + 7]))
    return seeds


# ------------------------------------------------------------ the checks

def _zero(t):
    return None if syntax.is_ref(t) else 0


def check_module(data, runtime, tier='interp'):
    """Decode, validate, instantiate (spectest imports) and call every
    exported function with zero arguments, in ``tier``.  Returns the
    outcome's name."""
    from engine.runtime import spectest_instance
    store = embedding.store_init(runtime, CAMPAIGN_LIMITS, tier)
    try:
        module = embedding.module_decode(data, CAMPAIGN_LIMITS)
        embedding.module_validate(module)
        spectest = spectest_instance(store)
        externs = []
        for imp in module.imports:
            ev = spectest.exports.get(imp.name) if imp.module == 'spectest' else None
            if ev is None:
                return 'LinkError'
            externs.append(ev)
        inst = embedding.module_instantiate(store, module, externs)
        outcome = 'ok'
        for kind, addr in list(inst.exports.values())[:8]:
            if kind != 'func':
                continue
            params = store.funcs[addr].type.params
            try:
                embedding.func_invoke(store, addr, [_zero(t) for t in params])
            except WasmError as e:
                outcome = type(e).__name__
        return outcome
    except WasmError as e:
        return type(e).__name__


class UnexpectedOutput(Exception):
    """A command broke the CLI contract without raising (e.g. half-written
    output, an exit status other than 0, 1, 2)."""


FORK = '@fork'   # not a file: marks a set in a fork's own layout (value: "<fork> <entry>")


def check_images(files, index, workdir):
    """Put the set on disk and run one of restore / translate / inspect on
    it through the CLI (with ``--format fork`` for a fork-layout set).
    Returns ``<command> exit <status>``."""
    from engine import cli
    src = os.path.join(workdir, 'in')
    out = os.path.join(workdir, 'out')
    for d in (src, out):
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(src)
    fork = files.get(FORK)
    for name, data in files.items():
        if name != FORK:
            with open(os.path.join(src, name), 'wb') as f:
                f.write(data)
    mode = index % 4
    if mode == 0:
        argv = ['restore', src, '--runtime', 'wamr' if index % 8 else 'wasmedge'] + RUN_FLAGS
    elif mode == 1:
        argv = ['translate', src, '--to', ('wasmedge', 'wamr', 'neutral')[index // 4 % 3],
                '--out', out] + LIMIT_FLAGS
    elif mode == 2:
        argv = ['inspect', src] + LIMIT_FLAGS
    else:
        argv = ['restore', src, '--runtime', 'wasmedge', '--checkpoint-at',
                str(1 + index % 5000), '--out', out] + RUN_FLAGS
    if fork is not None:        # the fork's layout: which fork, and the module, given apart
        which, _, entry = fork.decode('latin-1').partition(' ')
        argv += ['--format', 'fork', '--from', which, '--invoke', entry,
                 '--module', os.path.join(src, 'module.wasm')]
        if argv[0] == 'translate' and argv[3] == 'neutral':
            argv[3] = 'wamr'
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        try:
            status = cli.main(argv)
        except SystemExit as e:             # argparse refusing an option (a mutated --from)
            status = e.code
    if status not in (0, 1, 2):
        raise UnexpectedOutput(f'exit status {status!r}')
    if status == 2 and os.path.exists(out):
        raise UnexpectedOutput(f'{argv[0]} failed but left {out} behind')
    if status == 2 and 'Traceback' in sink.getvalue():
        raise UnexpectedOutput('a traceback on stderr')
    return f'{argv[0]} exit {status}'


class InternalError(Exception):
    """The script runner reported an untyped exception inside a command."""


def check_wast(text, runtime, tier='interp'):
    from conformance.runner import run_script
    from conformance.wast import WastSyntaxError, parse_wast
    try:
        commands = parse_wast(text)
    except WastSyntaxError:
        return 'WastSyntaxError'
    outcomes = run_script(commands, executor=runtime, timeout=HARD_STOP / 2,
                          limits=CAMPAIGN_LIMITS, tier=tier)
    for o in outcomes:
        if o.reason.startswith(('internal error', 'cannot set up')):
            raise InternalError(f'{o.kind} line {o.line}: {o.reason}')
    # a command cut off by the runner's wall-clock timeout is judged by the
    # CPU time it used (judge): on a shared machine wall time is not ours
    return 'ran ' + ','.join(sorted({o.status for o in outcomes})) if outcomes else 'empty'


# ------------------------------------------------------------ one input

def make_input(target, seeds, index, seed):
    rng = random.Random(f'{seed}:{target}:{index}')
    base = rng.choice(seeds)
    if target == 'module':
        if rng.random() < 0.4:
            return mutate_module(rng, base)
        return mutate_bytes(rng, base, seeds)
    if target == 'images':
        return mutate_image_set(rng, base, seeds)
    return mutate_text(rng, base)


def run_input(target, data, index, workdir):
    """Modules and scripts run in both models and both tiers in turn (the
    compiled tier, ``engine run``'s default, then the interpreter), chosen
    by the index, so a finding's replay runs where it was found."""
    runtime = ('wasmedge', 'wamr')[index % 2]
    tier = ('fast', 'interp')[index // 2 % 2]
    if target == 'module':
        return check_module(data, runtime, tier)
    if target == 'images':
        return check_images(data, index, workdir)
    return check_wast(data, runtime, tier)


def judge(target, data, index, workdir, hang):
    """(outcome, finding or None) of one input, with the CPU-time bound."""
    cpu = time.process_time()
    wall = time.monotonic()
    finding = None
    outcome = None
    try:
        outcome = run_input(target, data, index, workdir)
    except HardStop:
        finding = {'kind': 'hang', 'error': f'still running after {HARD_STOP}s CPU (cut off)'}
    except BaseException as e:                      # the contract: nothing untyped
        if isinstance(e, (KeyboardInterrupt, Stop)):
            raise
        finding = {'kind': 'untyped', 'error': f'{type(e).__name__}: {str(e)[:500]}',
                   'traceback': traceback.format_exc()[-4000:]}
    cpu = time.process_time() - cpu
    wall = time.monotonic() - wall
    if finding is None and cpu > hang:
        finding = {'kind': 'hang', 'error': f'{cpu:.2f}s CPU ({wall:.2f}s wall) > {hang}s',
                   'outcome': outcome}
    if finding is not None:
        finding.update(cpu_seconds=round(cpu, 3), wall_seconds=round(wall, 3), index=index)
    return outcome, finding


def save_finding(out, target, data, finding):
    if target == 'images':
        blob = json.dumps({k: v.hex() for k, v in sorted(data.items())}).encode()
    else:
        blob = bytes(data) if isinstance(data, (bytes, bytearray)) else \
            data.encode('utf-8', 'surrogatepass')
    ident = f'{target}-{hashlib.sha1(blob).hexdigest()[:12]}'
    d = os.path.join(out, 'findings', ident)
    if os.path.exists(d):
        return ident
    tmp = tempfile.mkdtemp(prefix='.tmp-', dir=os.path.join(out, 'findings'))
    if target == 'images':
        os.makedirs(os.path.join(tmp, 'input'))
        for name, b in data.items():
            with open(os.path.join(tmp, 'input', name), 'wb') as f:
                f.write(b)
    else:
        with open(os.path.join(tmp, 'input.wasm' if target == 'module' else 'input.wast'),
                  'wb') as f:
            f.write(blob)
    with open(os.path.join(tmp, 'finding.json'), 'w') as f:
        json.dump(dict(finding, target=target), f, indent=1)
    try:
        os.replace(tmp, d)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return ident


def load_finding(directory):
    with open(os.path.join(directory, 'finding.json')) as f:
        info = json.load(f)
    target = info['target']
    if target == 'images':
        src = os.path.join(directory, 'input')
        data = {}
        for name in os.listdir(src):
            with open(os.path.join(src, name), 'rb') as f:
                data[name] = f.read()
    else:
        name = 'input.wasm' if target == 'module' else 'input.wast'
        with open(os.path.join(directory, name), 'rb') as f:
            data = f.read()
        if target == 'wast':
            data = data.decode('utf-8', 'surrogatepass')
    return target, data, info


# ------------------------------------------------------------ workers

def _alarm(signum, frame):
    raise HardStop()


def _worker(target, seed, start, stop, step, first, out, hang, queue):
    for sig in (signal.SIGTERM, signal.SIGINT):     # not the driver's Stop: terminate() ends us
        signal.signal(sig, signal.SIG_DFL)
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or hard > ADDRESS_SPACE:
            resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, hard))
    except (ValueError, OSError):
        pass
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    signal.signal(signal.SIGPROF, _alarm)     # a CPU-time alarm: a starved worker is no hang
    seeds = build_seeds(target, out)
    workdir = tempfile.mkdtemp(prefix=f'robust-{target}-')
    counts, done, findings = {}, 0, []
    last = time.monotonic()
    try:
        for index in range(first, stop, step):
            data = make_input(target, seeds, index, seed)
            signal.setitimer(signal.ITIMER_PROF, HARD_STOP)
            try:
                outcome, finding = judge(target, data, index, workdir, hang)
            finally:
                signal.setitimer(signal.ITIMER_PROF, 0)
            done += 1
            key = outcome if finding is None else f'FINDING {finding["kind"]}'
            counts[key] = counts.get(key, 0) + 1
            if finding is not None:
                findings.append(save_finding(out, target, data, finding))
            if time.monotonic() - last > 2:
                queue.put((done, counts, findings))
                done, counts, findings = 0, {}, []
                last = time.monotonic()
    finally:
        queue.put((done, counts, findings))
        queue.put(None)
        shutil.rmtree(workdir, ignore_errors=True)


def _stats_path(out):
    return os.path.join(out, 'stats.json')


def load_stats(out):
    try:
        with open(_stats_path(out)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {'targets': {}}


def save_stats(out, target, st):
    """Write this target's entry into stats.json, keeping the others (one
    campaign per target may run at the same time on the same --out)."""
    stats = load_stats(out)
    stats['targets'][target] = st
    write_file_atomic(_stats_path(out), json.dumps(stats, indent=1, sort_keys=True))


class Stop(Exception):
    """SIGTERM/SIGINT: end the campaign, keeping what it counted."""


def _stop(signum, frame):
    raise Stop()


def _merge(st, msg):
    """Add one worker report (inputs done, outcome counts, finding ids) to
    the target's stats; returns the inputs done."""
    done, counts, findings = msg
    st['inputs'] += done
    for k, v in counts.items():
        st['outcomes'][k] = st['outcomes'].get(k, 0) + v
    st['findings'] += [i for i in findings if i not in st['findings']]
    st['untyped'] = st['outcomes'].get('FINDING untyped', 0)
    st['hangs'] = st['outcomes'].get('FINDING hang', 0)
    return done


def campaign(target, inputs, jobs, out, seed=0, hang=2.0, max_time=None, quiet=False):
    """Run ``inputs`` more inputs of ``target`` (resuming the index where
    the last campaign in ``out`` ended); returns the target's cumulative
    stats."""
    os.makedirs(os.path.join(out, 'findings'), exist_ok=True)
    build_seeds(target, out)                    # once, before the workers start (they read the file)
    st = load_stats(out)['targets'].get(target) or dict({
        'inputs': 0, 'outcomes': {}, 'findings': [], 'untyped': 0, 'hangs': 0,
        'cpu_bound_seconds': hang, 'seconds': 0.0, 'next_index': 0, 'seed': seed})
    st['cpu_bound_seconds'] = hang
    if st.get('seed') != seed:
        st['next_index'], st['seed'] = 0, seed  # another seed: another input stream
    start = st['next_index']
    stop = start + inputs
    # spawned, not forked: a fork of a process that runs other threads (a
    # test runner's, a Dask client's) can inherit a held lock and hang
    ctx = multiprocessing.get_context('spawn')
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, daemon=True,
                         args=(target, seed, start, stop, jobs, start + w, out, hang, queue))
             for w in range(jobs)]
    for p in procs:
        p.start()
    began = last_print = last_save = time.monotonic()
    running, run_done = jobs, 0
    base_seconds = st['seconds']
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while running:
            if max_time is not None and time.monotonic() - began > max_time:
                break
            try:
                msg = queue.get(timeout=1)
            except Stop:
                raise
            except Exception:
                if not any(p.is_alive() for p in procs):
                    break
                continue
            if msg is None:
                running -= 1
                continue
            run_done += _merge(st, msg)
            now = time.monotonic()
            st['seconds'] = round(base_seconds + now - began, 1)
            if now - last_save > 30:
                save_stats(out, target, st)
                last_save = now
            if not quiet and now - last_print > 10:
                last_print = now
                print(f'[{target}] {st["inputs"]} inputs in total, {run_done} this run '
                      f'({run_done / (now - began):.0f}/s), {st["untyped"]} untyped, '
                      f'{st["hangs"]} hangs', file=sys.stderr, flush=True)
    except Stop:
        print(f'[{target}] stopped; counts kept in {_stats_path(out)}', file=sys.stderr)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(5)
        # drain what the workers reported before stopping
        while True:
            try:
                msg = queue.get_nowait()
            except Exception:
                break
            if msg:
                run_done += _merge(st, msg)
        st['seconds'] = round(base_seconds + time.monotonic() - began, 1)
        st['next_index'] = stop
        save_stats(out, target, st)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return st


def replay(directory):
    target, data, info = load_finding(directory)
    workdir = tempfile.mkdtemp(prefix='robust-replay-')
    try:
        outcome, finding = judge(target, data, info.get('index', 0), workdir, info.get(
            'cpu_bound_seconds', 2.0))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if finding is None:
        print(f'{directory}: fixed: now ends in {outcome}')
        return 0
    print(f'{directory}: still a finding: {finding["kind"]}: {finding["error"]}')
    if 'traceback' in finding:
        print(finding['traceback'])
    return 1


def main(argv=None):
    ap = argparse.ArgumentParser(prog='python -m fuzz.robust', description=__doc__.split('\n\n')[0])
    ap.add_argument('--target', choices=TARGETS + ('all',), default='all')
    ap.add_argument('--inputs', type=L.count, default=10_000, help='inputs per target (this run)')
    ap.add_argument('--jobs', type=int, default=2)
    ap.add_argument('--out', default='.robust', help='seeds, findings and stats.json (resumed)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--hang', type=float, default=2.0, help='CPU seconds per input (default 2)')
    ap.add_argument('--time', type=float, help='stop each target after this many seconds')
    ap.add_argument('--quiet', action='store_true')
    ap.add_argument('--replay', metavar='FINDING_DIR', help='re-run one saved finding')
    a = ap.parse_args(argv)
    if a.replay:
        return replay(a.replay)
    if a.jobs < 1:
        ap.error('--jobs must be at least 1')
    bad = 0
    for target in (TARGETS if a.target == 'all' else (a.target,)):
        st = campaign(target, a.inputs, a.jobs, a.out, a.seed, a.hang, a.time, a.quiet)
        top = ', '.join(f'{k} {v}' for k, v in sorted(st['outcomes'].items(), key=lambda x: -x[1])[:8])
        print(f'{target}: {st["inputs"]} inputs ({st["seconds"]:.0f}s), {st["untyped"]} untyped, '
              f'{st["hangs"]} hangs > {a.hang}s, {len(st["findings"])} reproducers; {top}')
        bad += st['untyped'] + st['hangs']
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
