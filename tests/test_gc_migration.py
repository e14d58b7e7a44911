"""GC heap migration (Wasm 3.0 GC, engine/migrate/gcheap.py): structs,
arrays, i31, cycles, shared objects, packed fields, subtypes and casts,
GC references in globals, tables, locals, the operand stack, exception
fields and a passive element segment, checkpointed at every instruction
in both models and both translation directions (image files and the
neutral form), and the readers' checks of gc.img and the neutral heap.

Expected values are computed by hand (below) and checked against wasmtime
as independent truth."""

import json

import pytest
import wasmtime

from conformance.migration import migrate_call, roundtrip
from conformance.wat import wat_to_binary
from engine import embedding as E, faults
from engine import syntax as S
from engine.migrate import checkpoint, gcheap, images as im, neutral, translate as tr
from engine.migrate.images import ImageError

RUNTIMES = ('wasmedge', 'wamr')
PAIRS = [(a, b) for a in RUNTIMES for b in RUNTIMES]

# $a = node(1, self): a cycle; $b = sub(2, $a, 0x1FF -> i8 0xFF) in the global
# and thrown in an exception caught with catch_ref (its exnref in $ex, thrown
# again and caught: $c); $a in table slot 0, i31 0x7FFFFFFF in slot 1; $x an
# i16 array [0x2345, 0xFFFE, 0x2345]; $r = array.new_elem of the passive
# segment (i31 42, a node the segment holds: shared with $r[1]).
# Results, by hand:
#   ref.eq($a.1, $a) = 1                 cycle kept
#   ref.eq($g, $b) = 1                   sharing between global and local
#   ref.eq(table[0], $a) = 1             sharing between table and local
#   ref.test (ref $sub) $g = 1, of $a = 0   subtype after restore
#   struct.get_s $sub 2 = 0xFF sign-extended = 0xFFFFFFFF   packed i8
#   i31.get_u table[1] = 0x7FFFFFFF
#   array.get_u $x[1] = 0xFFFE, array.get_s $x[0] = 0x2345 = 9029   packed i16
#   ref.eq($c, $b) = 1                   an exception's field keeps identity
#   ref.eq($r[1], segment element 1) = 1 the segment's object is shared
#   i31.get_u $r[0] = 42
EXPECTED = [1, 1, 1, 1, 0, 0xFFFFFFFF, 0x7FFFFFFF, 0xFFFE, 9029, 1, 1, 42]

PROGRAM = r'''(module
  (type $node (sub (struct (field (mut i32)) (field (mut (ref null $node))))))
  (type $sub (sub final $node (struct (field (mut i32)) (field (mut (ref null $node))) (field i8))))
  (type $arr (array (mut i16)))
  (type $refs (array (mut anyref)))
  (tag $e (param (ref null $node)))
  (global $g (mut (ref null $node)) (ref.null $node))
  (table $t 2 anyref)
  (elem $seg anyref (item (ref.i31 (i32.const 42))) (item (struct.new $node (i32.const 9) (ref.null $node))))
  (func (export "run") (result i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)
    (local $a (ref null $node)) (local $b (ref null $node)) (local $x (ref null $arr))
    (local $r (ref null $refs)) (local $ex exnref) (local $c (ref null $node))
    (local.set $a (struct.new $node (i32.const 1) (ref.null $node)))
    (struct.set $node 1 (local.get $a) (local.get $a))
    (local.set $b (struct.new $sub (i32.const 2) (local.get $a) (i32.const 0x1FF)))
    (global.set $g (local.get $b))
    (table.set $t (i32.const 0) (local.get $a))
    (table.set $t (i32.const 1) (ref.i31 (i32.const -1)))
    (local.set $x (array.new $arr (i32.const 0x12345) (i32.const 3)))
    (array.set $arr (local.get $x) (i32.const 1) (i32.const -2))
    (local.set $r (array.new_elem $refs $seg (i32.const 0) (i32.const 2)))
    (block $h (result (ref null $node) exnref)
      (try_table (catch_ref $e $h) (throw $e (local.get $b)))
      unreachable)
    (local.set $ex)
    (drop)
    (local.set $c
      (block $h2 (result (ref null $node))
        (try_table (catch $e $h2) (throw_ref (local.get $ex)))
        unreachable))
    (ref.eq (struct.get $node 1 (local.get $a)) (local.get $a))
    (ref.eq (global.get $g) (local.get $b))
    (ref.eq (ref.cast (ref null eq) (table.get $t (i32.const 0))) (local.get $a))
    (ref.test (ref $sub) (global.get $g))
    (ref.test (ref $sub) (local.get $a))
    (struct.get_s $sub 2 (ref.cast (ref $sub) (global.get $g)))
    (i31.get_u (ref.cast (ref i31) (table.get $t (i32.const 1))))
    (array.get_u $arr (local.get $x) (i32.const 1))
    (array.get_s $arr (local.get $x) (i32.const 0))
    (ref.eq (local.get $c) (local.get $b))
    (ref.eq (ref.cast (ref null eq) (array.get $refs (local.get $r) (i32.const 1)))
            (ref.cast (ref null eq) (array.get $refs (array.new_elem $refs $seg (i32.const 1) (i32.const 1)) (i32.const 0))))
    (i31.get_u (ref.cast (ref i31) (array.get $refs (local.get $r) (i32.const 0)))))
  ;; a cyclic node returned twice, and an i31: results that are GC references
  (func (export "pair") (result (ref null $node) (ref null $node) anyref)
    (local $a (ref null $node))
    (local.set $a (struct.new $node (i32.const 5) (ref.null $node)))
    (struct.set $node 1 (local.get $a) (local.get $a))
    (local.get $a) (local.get $a) (ref.i31 (i32.const 3))))'''


def instance(runtime, text=PROGRAM):
    data = wat_to_binary(text)
    store = E.store_init(runtime)
    inst = E.module_instantiate(store, E.module_decode(data), [])
    return store, inst, data


def steps_of(runtime, name='run'):
    store, inst, _ = instance(runtime)
    ex = store.new_executor(runtime)
    ex.start(inst.exports[name][1], [])
    assert ex.run(10 ** 6)
    return ex.steps


def stopped(runtime, k, name='run', text=PROGRAM):
    store, inst, data = instance(runtime, text)
    ex = store.new_executor(runtime)
    ex.start(inst.exports[name][1], [])
    if k:
        assert not ex.run(k)
    return ex, inst, data


def test_expected_values_agree_with_wasmtime():
    store = wasmtime.Store()
    inst = wasmtime.Instance(store, wasmtime.Module(store.engine, PROGRAM), [])
    assert [x & 0xFFFFFFFF for x in inst.exports(store)['run'](store)] == EXPECTED
    for rt in RUNTIMES:
        s, i, _ = instance(rt)
        assert E.func_invoke(s, i.exports['run'][1], []) == EXPECTED


@pytest.mark.parametrize('a, b', PAIRS)
def test_every_instruction_migrates_through_images(a, b):
    """Stop at every instruction in ``a``, save, files, translate to ``b``,
    files, restore in a fresh instance of ``b``: the run ends as the
    uninterrupted one did."""
    n = steps_of(a)
    assert n > 40
    for k in range(n):
        ex, inst, data = stopped(a, k)
        images = roundtrip(checkpoint.save(ex, inst, im.module_sha256(data), 'run'))
        assert images.heap is not None
        images = roundtrip(tr.translate(images, inst.module, inst.info, b))
        store2, inst2, _ = instance(b)
        ex2 = checkpoint.restore(store2, inst2, images)
        assert ex2.run(10 ** 6) and ex2.results == EXPECTED, (a, b, k)


@pytest.mark.parametrize('a, b', [('wasmedge', 'wamr'), ('wamr', 'wasmedge')])
def test_every_instruction_migrates_both_ways_and_through_neutral(a, b):
    """conformance's chain a -> b -> a (the way back through neutral.json),
    at every instruction, with the whole store compared afterwards (GC
    contents by isomorphism)."""
    store, inst, _ = instance(a)
    results, report = migrate_call(store, inst.exports['run'][1], [], a, b, seed=1,
                                   points=lambda n: range(n))
    assert results == EXPECTED
    assert report.mismatch is None and report.skipped is None
    assert report.points == steps_of(a) and report.checkpoints >= 2 * (report.points - 1)


@pytest.mark.parametrize('a, b', PAIRS)
def test_gc_results_keep_their_sharing(a, b):
    """Results that are GC references, the run stopped at every
    instruction: the two node results are one object whose field 1 is
    itself, the third the i31 3."""
    for k in range(steps_of(a, 'pair')):
        ex, inst, data = stopped(a, k, 'pair')
        images = roundtrip(tr.translate(roundtrip(checkpoint.save(ex, inst, im.module_sha256(data))),
                                        inst.module, inst.info, b))
        store2, inst2, _ = instance(b)
        ex2 = checkpoint.restore(store2, inst2, images)
        assert ex2.run(10 ** 6)
        x, y, z = ex2.results
        assert x is y and x.fields == [5, x] and isinstance(x, S.Struct) and z == S.I31(3), k


def _heap_set(runtime='wasmedge', k=None):
    """A saved set stopped just before the result computation (every slot
    filled: the locals, the global, the table, the segment)."""
    n = steps_of(runtime)
    ex, inst, data = stopped(runtime, k if k is not None else n - 40)
    return checkpoint.save(ex, inst, im.module_sha256(data), 'run'), inst


def test_the_heap_is_written_once_per_object():
    images, inst = _heap_set()
    objs = [e for e in images.heap if e[0] in ('struct', 'array')]
    # $a, $b, $x, $r, the segment's node: each once although referenced
    # from several places ($a: itself, $b, the table, a local; $b: the
    # global, a local, the exception)
    kinds = sorted((e[0], e[1]) for e in objs)
    assert kinds == [('array', 2), ('array', 3), ('struct', 0), ('struct', 0), ('struct', 1)]
    a = next(i for i, e in enumerate(images.heap) if e[:2] == ('struct', 0) and e[2][0] == (4, 1))
    assert images.heap[a][2] == [(gcheap.NUM32, 1), (gcheap.OBJ, a)]          # the cycle
    b = next(i for i, e in enumerate(images.heap) if e[0] == 'struct' and e[1] == 1)
    assert images.heap[b][2] == [(gcheap.NUM32, 2), (gcheap.OBJ, a), (gcheap.NUM32, 0xFF)]
    assert images.globals[0] == ('anyref', [b])
    assert images.tables[0][0] == a
    assert [i for i, _ in images.gc_elems] == [0]
    assert b'"version": 4' in im.encode_files(images)['manifest.json']


def _corrupt(images, inst, **change):
    """Encode, decode and read the set after ``change``: gc.img bytes
    (``raw``) or a change to its entries (``heap``)."""
    files = im.encode_files(images)
    if 'raw' in change:
        files['gc.img'] = change['raw'](files['gc.img'])
    if 'drop' in change:
        del files['gc.img']
    back = im.decode_files(files)
    if 'heap' in change:
        change['heap'](back.heap)
    if 'cell' in change:
        change['cell'](back)
    return tr.snapshot_from_images(back, inst.module, inst.info)


def _entry(heap, kind, typeidx):
    return next(i for i, e in enumerate(heap) if e[0] == kind and e[1] == typeidx)


def _set_entry(heap, i, **kw):
    kind, x, fields = heap[i]
    heap[i] = (kind, kw.get('typeidx', x), kw.get('fields', fields))


@pytest.mark.parametrize('change, message', [
    (dict(raw=lambda b: b[:-3]), r'^gc.img: segment 0 length: 2 elements cannot fit in the file'),
    (dict(raw=lambda b: b[:30]), r'^gc.img: entry \d+ .*truncated'),
    (dict(raw=lambda b: b'XXXX' + b[4:]), r"^gc.img: magic: b'XXXX' is not b'GCH1'"),
    (dict(raw=lambda b: b + b'\0'), r'^gc.img: end: 1 unexpected trailing bytes'),
    (dict(drop=True), r'^gc.img: missing from a version-4 set'),
    (dict(heap=lambda h: _set_entry(h, _entry(h, 'struct', 1), typeidx=99)),
     r'^gc.img: entry \d+ type index: 99 but the module has \d+ types'),
    (dict(heap=lambda h: _set_entry(h, _entry(h, 'struct', 1), typeidx=2)),
     r'^gc.img: entry \d+ type index: type 2 is \(array .*\), not a struct type'),
    (dict(heap=lambda h: _set_entry(h, _entry(h, 'struct', 1), fields=h[_entry(h, 'struct', 1)][2][:2])),
     r'^gc.img: entry \d+ field count: 2 but struct type 1 has 3 fields'),
    (dict(heap=lambda h: _set_entry(h, _entry(h, 'struct', 1),
                                    fields=[(4, 2), (2, 999), (4, 0xFF)])),
     r'^gc.img: entry \d+ field 1: object 999 names no struct or array entry'),
    (dict(heap=lambda h: _set_entry(h, _entry(h, 'struct', 1), fields=[(4, 2), (0, 0), (4, 0x100)])),
     r'^gc.img: entry \d+ field 2: 0x100 does not fit a field of type i8'),
    (dict(heap=lambda h: _set_entry(h, _entry(h, 'struct', 1), fields=[(5, 2), (0, 0), (4, 1)])),
     r'^gc.img: entry \d+ field 0: tag num64 in a field of type i32 \(expected num32\)'),
    # a node field holding the i16 array: not a (ref null $node)
    (dict(heap=lambda h: _set_entry(h, _entry(h, 'struct', 1),
                                    fields=[(4, 2), (2, _entry(h, 'array', 2)), (4, 1)])),
     r'^gc.img: entry \d+ field 1: a array of type 2 does not match the field type \(ref null 0\)'),
    (dict(cell=lambda s: s.globals.__setitem__(0, ('anyref', [777]))),
     r'^global.img: global 0: entry 777 but gc.img holds \d+ entries'),
    (dict(cell=lambda s: s.globals.__setitem__(0, ('anyref', [_entry(s.heap, 'array', 2)]))),
     r'^global.img: global 0: a array of type 2 does not match the slot type \(ref null 0\)'),
    (dict(cell=lambda s: s.gc_elems.clear()),
     r'^gc.img: segments: element segments \[\], but the passive, not dropped ones of a GC type are \[0\]'),
])
def test_corrupt_gc_img_is_refused_naming_file_and_field(change, message):
    images, inst = _heap_set()
    with pytest.raises(ImageError, match=message):
        _corrupt(images, inst, **change)


def test_gc_img_in_a_set_of_a_module_without_gc_is_refused():
    images, inst = _heap_set()
    files = im.encode_files(images)
    store, inst2, data = instance('wasmedge', '(module (func (export "f") nop))')
    ex = store.new_executor('wasmedge')
    ex.start(inst2.exports['f'][1], [])
    plain = im.encode_files(checkpoint.save(ex, inst2, im.module_sha256(data)))
    assert 'gc.img' not in plain and b'"version": 1' in plain['manifest.json']
    plain['gc.img'] = files['gc.img']
    with pytest.raises(ImageError, match=r'^gc.img: present in a version-1 set'):
        im.decode_files(plain)


def _doc(images, inst):
    snap = tr.snapshot_from_images(images, inst.module, inst.info)
    return json.loads(neutral.dumps(neutral.document_from_snapshot(
        snap, inst.module, inst.info, images.module_sha256)))


def test_neutral_heap_round_trip():
    images, inst = _heap_set()
    doc = _doc(images, inst)
    assert doc['version'] == 3 and len(doc['heap']) == 5
    a = next(i for i, o in enumerate(doc['heap']) if o.get('struct') == 0 and o['fields'][0] == 1)
    assert doc['heap'][a] == {'struct': 0, 'fields': [1, {'ref': a}]}
    assert doc['gc_elems'][0]['values'][0] == {'i31': 42}
    snap = neutral.snapshot_from_document(doc, inst.module, inst.info)
    back = tr.images_from_snapshot(snap, inst.module, inst.info, 'wamr', images.module_sha256)
    store, inst2, _ = instance('wamr')
    ex = checkpoint.restore(store, inst2, roundtrip(back))
    assert ex.run(10 ** 6) and ex.results == EXPECTED


def _sub_obj(doc):
    return next(o for o in doc['heap'] if o.get('struct') == 1)


@pytest.mark.parametrize('change, message', [
    (lambda d: _sub_obj(d).update(struct=99), r'heap\[\d\]\.struct: 99 is not a type index'),
    (lambda d: _sub_obj(d).update(struct=2), r'heap\[\d\]\.struct: type 2 is \(array .*\), not a struct type'),
    (lambda d: _sub_obj(d)['fields'].pop(), r'heap\[\d\]\.fields: 2 fields, but struct type 1 has 3'),
    (lambda d: _sub_obj(d)['fields'].__setitem__(1, {'ref': 50}),
     r'heap\[\d\]\.fields\[1\]: \{"ref": 50\} names no object \(the heap holds 5\)'),
    (lambda d: _sub_obj(d)['fields'].__setitem__(2, 256), r'heap\[\d\]\.fields\[2\]: 256 is not an i8'),
    (lambda d: d['globals'][0].update(value={'ref': 9}), r'globals\[0\]\.value: \{"ref": 9\} names no object'),
    (lambda d: d.update(version=2), r'version: 2, but a module that uses GC is written as version 3'),
    (lambda d: d.pop('heap'), r'^neutral.json: heap: missing'),
])
def test_corrupt_neutral_heap_is_refused_naming_the_path(change, message):
    images, inst = _heap_set()
    doc = _doc(images, inst)
    change(doc)
    with pytest.raises(neutral.NeutralError, match=message):
        neutral.snapshot_from_document(doc, inst.module, inst.info)


def test_a_heap_past_the_object_limit_is_refused_before_it_is_built(tmp_path, capsys):
    """gc.img's entry count and array lengths, and a neutral heap, are
    checked against --max-gc-objects / --max-table-elems (the limit
    array.new obeys) before any object is made: a typed error naming the
    flag, on the command line one line and exit 2."""
    from engine import cli
    from engine.limits import LimitError, Limits
    images, inst = _heap_set()
    files = im.encode_files(images)
    n = len(images.heap)                               # 7 entries, 5 of them structs/arrays
    im.decode_files(files, Limits(max_gc_objects=n))
    with pytest.raises(LimitError, match=rf'gc.img: entry count: {n} exceeds the limit '
                                         rf'--max-gc-objects {n - 1}'):
        im.decode_files(files, Limits(max_gc_objects=n - 1))
    longest = max(len(e[2]) for e in images.heap if e[0] == 'array')
    with pytest.raises(LimitError, match=rf'gc.img: entry \d+ array length: {longest} exceeds '
                                         rf'the limit --max-table-elems {longest - 1}'):
        im.decode_files(files, Limits(max_table_elems=longest - 1))
    doc = _doc(images, inst)
    with pytest.raises(LimitError, match=r'neutral.json: heap objects: 5 exceeds the limit '
                                         r'--max-gc-objects 4'):
        neutral.snapshot_from_document(doc, inst.module, inst.info, Limits(max_gc_objects=4))
    with pytest.raises(LimitError, match=r'neutral.json: heap\[\d\] array length'):
        neutral.snapshot_from_document(doc, inst.module, inst.info,
                                       Limits(max_table_elems=longest - 1))
    ck = tmp_path / 'ck'
    im.write_images(images, str(ck))
    (ck / 'module.wasm').write_bytes(wat_to_binary(PROGRAM))
    assert cli.main(['restore', str(ck), '--max-gc-objects', str(n - 1)]) == 2
    err = capsys.readouterr().err
    assert f'--max-gc-objects {n - 1}' in err and 'Traceback' not in err
    assert cli.main(['restore', str(ck), '--max-gc-objects', str(n)]) == 0


def test_gc_identity_fault_loses_sharing():
    """With the deliberate fault two references to one object come back as
    two copies.  Stopped 40 instructions before the end (the first two
    ref.eq already computed): ref.eq(table[0], $a), ref.eq($c, $b) and the
    segment's node against $r[1] turn 0."""
    images, inst = _heap_set('wamr')
    faults.GC_IDENTITY = True
    try:
        bad = roundtrip(tr.translate(roundtrip(images), inst.module, inst.info, 'wasmedge'))
    finally:
        faults.GC_IDENTITY = False
    store, inst2, _ = instance('wasmedge')
    ex = checkpoint.restore(store, inst2, bad)
    assert ex.run(10 ** 6)
    assert ex.results == EXPECTED[:2] + [0] + EXPECTED[3:9] + [0, 0, 42]


# An exception carrying struct $x, caught with catch_ref; its exnref stored
# in $x's own field: a cycle through exception.img and gc.img.  Thrown again
# from the field and caught: the payload is $x itself (ref.eq 1 -> 10) and
# its field 1 is 5: f() = 15.
EXN_FIELD = r'''(module
  (type $s (struct (field (mut exnref)) (field i32)))
  (tag $e (param (ref null $s)))
  (func (export "f") (result i32)
    (local $x (ref null $s)) (local $y (ref null $s)) (local $ex exnref)
    (local.set $x (struct.new $s (ref.null exn) (i32.const 5)))
    (block $h (result (ref null $s) exnref)
      (try_table (catch_ref $e $h) (throw $e (local.get $x))) unreachable)
    (local.set $ex)
    (drop)
    (struct.set $s 0 (local.get $x) (local.get $ex))
    (local.set $ex (ref.null exn))
    nop
    (local.set $y (block $h2 (result (ref null $s))
      (try_table (catch $e $h2) (throw_ref (struct.get $s 0 (local.get $x)))) unreachable))
    (i32.add (i32.mul (i32.const 10) (ref.eq (local.get $y) (local.get $x)))
             (struct.get $s 1 (local.get $y)))))'''


def test_exnref_field_program_agrees_with_wasmtime():
    store = wasmtime.Store()
    inst = wasmtime.Instance(store, wasmtime.Module(store.engine, EXN_FIELD), [])
    assert inst.exports(store)['f'](store) == 15


@pytest.mark.parametrize('a, b', PAIRS)
def test_an_exnref_field_migrates_at_every_instruction(a, b):
    """Odd stops through the direct translation, even ones through
    neutral.json."""
    from conformance.migration import through_neutral
    n = steps_of_text(a, EXN_FIELD, 'f')
    for k in range(n):
        ex, inst, data = stopped(a, k, 'f', EXN_FIELD)
        images = roundtrip(checkpoint.save(ex, inst, im.module_sha256(data), 'f'))
        images = roundtrip(tr.translate(images, inst.module, inst.info, b) if k % 2 else
                           through_neutral(images, inst, b))
        store2, inst2, _ = instance(b, EXN_FIELD)
        ex2 = checkpoint.restore(store2, inst2, images)
        assert ex2.run(10 ** 6) and ex2.results == [15], (a, b, k)


def steps_of_text(runtime, text, name):
    store, inst, _ = instance(runtime, text)
    ex = store.new_executor(runtime)
    ex.start(inst.exports[name][1], [])
    assert ex.run(10 ** 6)
    return ex.steps


def test_fork_layout_refuses_a_gc_module(tmp_path):
    from engine.migrate import fork_images
    images, inst = _heap_set('wamr')
    store, inst2, _ = instance('wamr')
    with pytest.raises(ImageError, match=r"^gc.img: the module uses GC .* the forks' layout has "
                                         r'no GC heap format'):
        fork_images.write_fork_images(images, str(tmp_path / 'f'), store, inst2)
    assert not (tmp_path / 'f').exists()


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_the_independent_checkers_read_gc_sets(tmp_path, runtime):
    """fuzz/imagecheck.py decodes gc.img from docs/images.md alone and
    agrees with the engine; fuzz/neutralcheck.py checks the version-3
    heap (ids in range, each object reached); both refuse a broken one."""
    from fuzz import imagecheck, neutralcheck
    images, inst = _heap_set(runtime)
    d = str(tmp_path / 'set')
    im.write_images(images, d, frames='one-file')
    imagecheck.check_dir(d, images, im.read_images(d))
    mine = imagecheck.decode_dir(d)
    assert mine['heap'] == imagecheck.as_dict(images)['heap'] and len(mine['heap']) == 7  # 5 objects, 2 i31
    doc = _doc(images, inst)
    neutralcheck.check_doc(doc, inst.module)
    doc['heap'].append({'struct': 0, 'fields': [3, None]})
    with pytest.raises(neutralcheck.NeutralCheckError, match=r'heap\[5\]: not reachable'):
        neutralcheck.check_doc(doc, inst.module)
    doc['globals'][0]['value'] = {'ref': 40}
    with pytest.raises(neutralcheck.NeutralCheckError, match=r'\{"ref": 40\} names no heap object'):
        neutralcheck.check_doc(doc, inst.module)
    raw = bytearray(open(f'{d}/gc.img', 'rb').read())
    raw[4:8] = (1).to_bytes(4, 'little')           # one entry: the rest is trailing bytes
    open(f'{d}/gc.img', 'wb').write(bytes(raw))
    with pytest.raises(imagecheck.ImageCheckError, match=r'^gc.img'):
        imagecheck.decode_dir(d)


def test_command_line_saves_inspects_translates_and_restores_gc_state(tmp_path, capsys):
    """run --checkpoint-at, inspect (image set and neutral), translate to
    neutral, restore in the other model: the same results; the forks'
    layout is refused with one line, no traceback."""
    from engine import cli
    wasm = tmp_path / 'prog.wasm'
    wasm.write_bytes(wat_to_binary(PROGRAM))
    ck, ckn = str(tmp_path / 'ck'), str(tmp_path / 'ckn')
    assert cli.main(['run', str(wasm), '--invoke', 'run', '--runtime', 'wamr',
                     '--checkpoint-at', '60', '--images', ck]) == 0
    assert cli.main(['inspect', ck]) == 0
    out = capsys.readouterr().out
    assert 'gc heap      7 entries (5 structs/arrays), 1 GC element segments (gc.img)' in out
    assert cli.main(['translate', ck, '--to', 'neutral', '--out', ckn]) == 0
    assert cli.main(['inspect', ckn]) == 0
    out = capsys.readouterr().out
    assert 'format       wasm-migrate-neutral version 3' in out and 'gc heap      5 objects' in out
    assert 'global 0     anyref:struct of type 1 (3 fields)' in out
    assert cli.main(['restore', ckn, '--runtime', 'wasmedge']) == 0
    out = capsys.readouterr().out
    assert out.split('#')[0].split() == [f'i32:{v}' for v in EXPECTED[:5]] + [
        'i32:4294967295', '(-1)'] + [f'i32:{v}' for v in EXPECTED[6:]]
    assert cli.main(['run', str(wasm), '--invoke', 'run', '--runtime', 'wamr', '--checkpoint-at',
                     '60', '--images', str(tmp_path / 'f'), '--format', 'fork']) == 2
    assert "the forks' layout has no GC heap format" in capsys.readouterr().err


# A linked list built in a loop (no recursion anywhere: saving, the files,
# the neutral form and restoring walk it with work lists), externalized
# into an externref global, and a host reference seen as an anyref
# (any.convert_extern of the argument ref.extern 7).  f(k) = 0 + 1 + ...
# + (k-1) summed over the list read back, + 1 for ref.test (ref any) of the
# host reference.
LIST = r'''(module
  (type $n (struct (field i32) (field (ref null $n))))
  (global $e (mut externref) (ref.null extern))
  (func (export "f") (param $k i32) (param $h externref) (result i32)
    (local $l (ref null $n)) (local $i i32) (local $s i32) (local $a anyref)
    (local.set $a (any.convert_extern (local.get $h)))
    (block $d (loop $top
      (br_if $d (i32.ge_u (local.get $i) (local.get $k)))
      (local.set $l (struct.new $n (local.get $i) (local.get $l)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $top)))
    (global.set $e (extern.convert_any (local.get $l)))
    nop
    (local.set $l (ref.cast (ref null $n) (any.convert_extern (global.get $e))))
    (block $d2 (loop $t2
      (br_if $d2 (ref.is_null (local.get $l)))
      (local.set $s (i32.add (local.get $s) (struct.get $n 0 (local.get $l))))
      (local.set $l (struct.get $n 1 (local.get $l)))
      (br $t2)))
    (i32.add (local.get $s) (ref.test (ref any) (local.get $a)))))'''


@pytest.mark.parametrize('a, b', [('wamr', 'wasmedge'), ('wasmedge', 'wamr')])
def test_a_long_list_and_host_references_migrate(a, b):
    from conformance.migration import through_neutral
    k = 3000
    store, inst, data = instance(a, LIST)
    ex = store.new_executor(a)
    ex.start(inst.exports['f'][1], [k, S.ExternRef(7)])
    while store.globals[inst.globaladdrs[0]].value is None:     # stop where the global holds it
        assert not ex.run(1)
    images = roundtrip(checkpoint.save(ex, inst, im.module_sha256(data), 'f'))
    assert len(images.heap) == k + 1 and ('host', 7) in images.heap     # k nodes, the host ref
    images = roundtrip(through_neutral(images, inst, b))
    store2, inst2, _ = instance(b, LIST)
    ex2 = checkpoint.restore(store2, inst2, images)
    assert ex2.run(10 ** 7) and ex2.results == [k * (k - 1) // 2 + 1]


def test_an_exnref_field_naming_no_exception_is_refused():
    ex, inst, data = stopped('wamr', steps_of_text('wamr', EXN_FIELD, 'f') - 12, 'f', EXN_FIELD)
    images = roundtrip(checkpoint.save(ex, inst, im.module_sha256(data), 'f'))
    k = _entry(images.heap, 'struct', 0)
    assert images.heap[k][2][0] == (gcheap.EXN, 0) and len(images.exceptions) == 1
    _set_entry(images.heap, k, fields=[(gcheap.EXN, 9), images.heap[k][2][1]])
    with pytest.raises(ImageError, match=r'^gc.img: entry 0 field 0: exnref 9 but exception.img '
                                         r'holds 1 exceptions'):
        tr.snapshot_from_images(images, inst.module, inst.info)


# Module A makes a struct of a type only it defines and exports it in an
# anyref global; module B imports that global: B's state holds an object
# whose type B cannot name, so B's run cannot be saved (one line, the slot
# named), while an i31 there is fine.
MAKER = r'''(module
  (type $p (struct (field i32) (field i64)))
  (global (export "g") (mut anyref) (struct.new $p (i32.const 1) (i64.const 2))))'''
USER = r'''(module
  (global $g (import "a" "g") (mut anyref))
  (func (export "f") (result i32)
    nop
    (global.set $g (ref.i31 (i32.const 9)))
    nop
    (i31.get_u (ref.cast (ref i31) (global.get $g)))))'''


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_an_object_of_a_type_the_module_lacks_is_refused(runtime):
    store = E.store_init(runtime)
    a = E.module_instantiate(store, E.module_decode(wat_to_binary(MAKER)), [])
    data = wat_to_binary(USER)
    b = E.module_instantiate(store, E.module_decode(data), [a.exports['g']])
    ex = store.new_executor(runtime)
    ex.start(b.exports['f'][1], [])
    with pytest.raises(checkpoint.GCHeapError, match=r'^a GC struct of a type the module does not '
                                                     r'define \(made by another instance\) \(in global 0\)'):
        checkpoint.save(ex, b, im.module_sha256(data), 'f')
    assert not ex.run(4)                        # the global now holds i31 9: saved and restored
    images = roundtrip(checkpoint.save(ex, b, im.module_sha256(data), 'f'))
    assert images.heap == [('i31', 9)] and images.globals == [('anyref', [0])]
    store2 = E.store_init(runtime)
    a2 = E.module_instantiate(store2, E.module_decode(wat_to_binary(MAKER)), [])
    b2 = E.module_instantiate(store2, E.module_decode(data), [a2.exports['g']])
    ex2 = checkpoint.restore(store2, b2, images)
    assert ex2.run(100) and ex2.results == [9]
