"""Wasm 3.0 GC: iso-recursive type canonicalisation and subtyping
(engine/deftypes.py) on hand-built type sections, a struct / array / i31
program in both executor models, its traps, and checkpoints of GC state
(the heap itself: tests/test_gc_migration.py).

Expected values are computed by hand in the comments."""

import pytest

from conformance.migration import migrate_call
from conformance.wat import wat_to_binary
from engine import deftypes as D
from engine import embedding as E
from engine import syntax as S
from engine.binary import decode_module
from engine.errors import Trap, ValidationError
from engine.migrate import checkpoint, images as im
from engine.valid import validate_module

RUNTIMES = ('wasmedge', 'wamr')
I32 = S.I32


def ref(x, null=True, top='any'):
    return S.RefType(null, x, top)


def struct(*fields):
    return S.StructType(tuple(S.FieldType(*f) if isinstance(f, tuple) else S.FieldType(f)
                              for f in fields))


def keys_of(types, recs=(), subs=None):
    return D.canonicalize(S.Module(types=list(types), recs=list(recs), subs=dict(subs or {})))


# ------------------------------------------------------------ canonical keys

def test_plain_types_are_their_own_keys():
    # a final type alone in its group naming no index: the composite type itself,
    # so 2.0 function types keep comparing by structure
    ft = S.FuncType((I32,), ())
    assert keys_of([ft, struct(I32)]) == [ft, struct(I32)]


def test_rec_groups_are_compared_whole_and_by_position():
    # (rec (type $a (struct (field (ref null $b)))) (type $b (struct (field (ref null $a)))))
    a = struct(ref(1))
    b = struct(ref(0))
    k1 = keys_of([a, b], recs=[2])
    # the same group in another module, after an unrelated type: indices shift by 1
    k2 = keys_of([S.FuncType((), ()), struct(ref(2)), struct(ref(1))], recs=[1, 2])
    assert k1[0] == k2[1] and k1[1] == k2[2]
    # both refer to the other one: the group is symmetric, yet position 0 != position 1
    assert k1[0] != k1[1]
    assert k1[0] is k2[1]                     # interned: equal keys are one object
    # the same two types as two singleton groups do not even validate (forward use),
    # and one type alone is not the group's member
    assert keys_of([struct(ref(0))])[0] != k1[0]


def test_a_type_in_a_group_differs_from_the_same_type_alone():
    ft = S.FuncType((), ())
    alone = keys_of([ft])[0]
    pair = keys_of([S.FuncType((), ()), S.FuncType((), ())], recs=[2])
    assert alone == ft and pair[0] != ft and pair[0] != pair[1]


def test_references_to_earlier_types_close_over_their_keys():
    # $s = (struct i32); $f = (func (param (ref $s))): $f's key names $s's key,
    # so an equal $s at another index gives an equal $f
    k1 = keys_of([struct(I32), S.FuncType((ref(0, False),), ())])
    k2 = keys_of([S.FuncType((), ()), struct(I32), S.FuncType((ref(1, False),), ())])
    assert k1[1] == k2[2]
    k3 = keys_of([struct(S.I64), S.FuncType((ref(0, False),), ())])
    assert k1[1] != k3[1]


def test_finality_and_supertypes_are_part_of_the_key():
    s = struct()
    final_default = keys_of([s])[0]
    final_explicit = keys_of([struct()], subs={0: (True, ())})[0]
    open_ = keys_of([struct()], subs={0: (False, ())})[0]
    assert final_default == final_explicit and open_ != final_default


# ------------------------------------------------------------ subtyping

def _chain():
    # $a = (sub (struct)); $b = (sub $a (struct (field i32))); $c = (sub final $b (struct i32 i64))
    types = [struct(), struct(I32), struct(I32, S.I64), S.ArrayType(S.FieldType('i8', True)),
             S.FuncType((), ())]
    subs = {0: (False, ()), 1: (False, (0,)), 2: (True, (1,))}
    return types, subs, keys_of(types, subs=subs)


def test_declared_supertypes_are_walked_transitively():
    _, _, k = _chain()
    assert D.deftype_matches(k[2], k[0]) and D.deftype_matches(k[1], k[0])
    assert not D.deftype_matches(k[0], k[1]) and not D.deftype_matches(k[0], k[2])


def test_abstract_heap_lattice():
    _, _, k = _chain()
    hs = D.heap_sub
    assert hs(k[2], 'struct') and hs(k[2], 'eq') and hs(k[2], 'any')
    assert not hs(k[2], 'array') and not hs(k[2], 'func')
    assert hs(k[3], 'array') and not hs(k[3], 'struct')
    assert hs(k[4], 'func') and not hs(k[4], 'any')
    assert hs('none', k[2]) and hs('none', k[3]) and not hs('none', k[4])
    assert hs('nofunc', k[4]) and not hs('nofunc', k[2])
    assert hs('i31', 'eq') and hs('i31', 'any') and not hs('i31', 'struct')
    assert hs('none', 'i31') and hs('noextern', 'extern') and not hs('none', 'extern')
    assert not hs('any', 'eq') and not hs('struct', k[2])


def test_value_type_matching_by_index_and_nullability():
    _, _, k = _chain()
    assert S.matches(ref(2, False), ref(0, True), k)
    assert not S.matches(ref(2, True), ref(0, False), k)
    assert S.matches(ref(1), S.RefType(True, 'struct'), k)
    assert not S.matches(ref(0), ref(1), k)


@pytest.mark.parametrize('types, subs, recs, msg', [
    ([struct(), struct()], {1: (True, (0,))}, [], 'final super type'),       # $0 is final
    ([struct(I32), struct(S.I64)], {0: (False, ()), 1: (True, (0,))}, [], 'does not match'),
    ([struct((I32, True)), struct((I32, False))], {0: (False, ()), 1: (True, (0,))}, [],
     'does not match'),                                                     # mutability
    # a supertype later in the same group, or in a later group
    ([struct(), struct()], {0: (True, (1,)), 1: (False, ())}, [2], 'forward use'),
    ([struct(), struct()], {0: (True, (1,)), 1: (False, ())}, [], 'unknown type 1'),
    ([struct(), struct()], {1: (True, (0, 0))}, [], 'multiple supertypes'),
])
def test_invalid_subtype_declarations(types, subs, recs, msg):
    with pytest.raises(ValidationError, match=msg):
        validate_module(S.Module(types=types, subs=subs, recs=recs))


def test_width_and_depth_subtyping_of_structs_validates():
    # (sub $0 (struct (field (ref $1)) (field i32))) below (struct (field (ref null struct)))
    types = [struct(S.RefType(True, 'struct')), struct(), struct(ref(1, False), I32)]
    validate_module(S.Module(types=types, subs={0: (False, ()), 2: (True, (0,))}))


def test_decoder_reads_rec_sub_and_packed_fields():
    # (rec (type (sub (struct (field (mut i8))))) (type (sub final 0 (struct (field (mut i8)) (field i16)))))
    body = bytes([0x01, 0x4E, 0x02,
                  0x50, 0x00, 0x5F, 0x01, 0x78, 0x01,
                  0x4F, 0x01, 0x00, 0x5F, 0x02, 0x78, 0x01, 0x77, 0x00])
    m = decode_module(b'\0asm\1\0\0\0' + bytes([0x01, len(body)]) + body)
    assert m.recs == [2] and m.subs == {0: (False, ()), 1: (True, (0,))}
    assert m.types[1] == struct(('i8', True), ('i16', False))
    validate_module(m)
    k = D.module_keys(m)
    assert D.deftype_matches(k[1], k[0]) and D.kind(k[0]) == 'struct'


# ------------------------------------------------------------ execution

# $pt = (struct (mut i32) i8); $bytes = (array (mut i8)); $outer = (struct (ref $bytes)).
# run(x): p = new $pt(x, 0x1FF -> 0xFF); p.0 += 5; a = array.new_data $bytes "\01\80\ff\07" [0..4);
# a[3] = 0x17F -> 0x7F; the sum of get_s over a is 1 - 128 - 1 + 127 = -1;
# result = p.0 + get_s(p.1) + sum + i31.get_s(ref.i31(-2)) + len(a)
#        = (x + 5) + (-1) + (-1) + (-2) + 4 = x + 5
GC_PROGRAM = r'''(module
  (type $pt (struct (field (mut i32)) (field i8)))
  (type $bytes (array (mut i8)))
  (type $outer (struct (field (ref $bytes))))
  (memory 1)
  (data $d "\01\80\ff\07")
  (global $keep (mut (ref null $outer)) (ref.null $outer))
  (global $seven (ref i31) (ref.i31 (i32.const 7)))
  (func (export "run") (param $x i32) (result i32)
    (local $p (ref null $pt)) (local $a (ref null $bytes)) (local $i i32) (local $sum i32)
    (local.set $p (struct.new $pt (local.get $x) (i32.const 0x1FF)))
    (struct.set $pt 0 (local.get $p) (i32.add (struct.get $pt 0 (local.get $p)) (i32.const 5)))
    (local.set $a (array.new_data $bytes $d (i32.const 0) (i32.const 4)))
    (array.set $bytes (local.get $a) (i32.const 3) (i32.const 0x17F))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (array.len (local.get $a))))
        (local.set $sum (i32.add (local.get $sum)
                                 (array.get_s $bytes (local.get $a) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (global.set $keep (struct.new $outer (ref.as_non_null (local.get $a))))
    (i32.add (i32.add (struct.get $pt 0 (local.get $p)) (struct.get_s $pt 1 (local.get $p)))
      (i32.add (i32.add (local.get $sum) (i31.get_s (ref.i31 (i32.const -2))))
               (array.len (local.get $a)))))
  (func (export "unsigned") (result i32)      ;; 0xFF + 0x80 + 7 (the global's i31) = 390
    (i32.add (i32.add (struct.get_u $pt 1 (struct.new $pt (i32.const 0) (i32.const -1)))
                      (array.get_u $bytes (array.new_fixed $bytes 2 (i32.const 1) (i32.const 0x80))
                                   (i32.const 1)))
             (i31.get_u (global.get $seven))))
  (func (export "cast") (param $v i32) (result i32)  ;; an i31 is not a struct: 2; a $pt is: 1
    (local $r anyref)
    (local.set $r (if (result anyref) (local.get $v)
                    (then (struct.new_default $pt)) (else (ref.i31 (i32.const 3)))))
    (block $no (result anyref)
      (drop (br_on_cast_fail $no anyref (ref $pt) (local.get $r)))
      (return (i32.const 1)))
    (drop)
    (i32.const 2))
  (func (export "eq") (result i32)   ;; identity for structs, value for i31: 1 + 0 + 10 = 11
    (local $s eqref)
    (local.set $s (struct.new_default $pt))
    (i32.add (ref.eq (local.get $s) (local.get $s))
      (i32.add (ref.eq (local.get $s) (struct.new_default $pt))
               (i32.mul (i32.const 10) (ref.eq (ref.i31 (i32.const 5)) (ref.i31 (i32.const 5)))))))
  (func (export "null-get") (result i32) (struct.get $pt 0 (ref.null $pt)))
  (func (export "oob") (result i32) (array.get_u $bytes (array.new_default $bytes (i32.const 2)) (i32.const 2)))
  (func (export "bad-cast") (result i32)
    (struct.get $pt 0 (ref.cast (ref $pt) (ref.i31 (i32.const 1)))))
  (func (export "keep") (result i32)   ;; the array the last "run" kept: its last byte
    (array.get_u $bytes (struct.get $outer 0 (ref.as_non_null (global.get $keep))) (i32.const 3)))
)'''


def instance(runtime, text=GC_PROGRAM):
    store = E.store_init(runtime)
    data = wat_to_binary(text)
    inst = E.module_instantiate(store, E.module_decode(data), [])
    return store, inst, data


def call(store, inst, name, args=()):
    return E.func_invoke(store, inst.exports[name][1], list(args))


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_struct_array_i31_program(runtime):
    store, inst, _ = instance(runtime)
    assert call(store, inst, 'run', [10]) == [15]
    assert call(store, inst, 'run', [0xFFFFFFFB]) == [0]        # -5 + 5
    assert call(store, inst, 'unsigned') == [390]
    assert call(store, inst, 'cast', [1]) == [1] and call(store, inst, 'cast', [0]) == [2]
    assert call(store, inst, 'eq') == [11]
    assert call(store, inst, 'keep') == [0x7F]
    kept = store.globals[inst.globaladdrs[0]].value           # explicit, inspectable heap data
    assert isinstance(kept, S.Struct) and isinstance(kept.fields[0], S.Array)
    assert kept.fields[0].fields == [1, 0x80, 0xFF, 0x7F]
    assert D.kind(kept.type) == 'struct' and kept.type == D.module_keys(inst.module)[2]


@pytest.mark.parametrize('runtime', RUNTIMES)
@pytest.mark.parametrize('name, msg', [('null-get', 'null structure reference'),
                                       ('oob', 'out of bounds array access'),
                                       ('bad-cast', 'cast failure')])
def test_gc_traps(runtime, name, msg):
    store, inst, _ = instance(runtime)
    with pytest.raises(Trap, match=msg):
        call(store, inst, name)


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_checkpoint_saves_gc_state(runtime):
    """A stop whose frame holds a struct reference writes a version-4 set
    whose gc.img holds the struct (type 0 $pt: fields 3 and 0x1FF masked
    to i8 0xFF) and the i31 of global $seven."""
    store, inst, data = instance(runtime)
    ex = store.new_executor(runtime)
    ex.start(inst.exports['run'][1], [3])
    ex.run(4)          # local.get, i32.const, struct.new, local.set: $p holds the struct
    files = im.encode_files(checkpoint.save(ex, inst, im.module_sha256(data)))
    assert b'"version": 4' in files['manifest.json']
    back = im.decode_files(files)
    assert back.heap == [('struct', 0, [(4, 3), (4, 0xFF)]), ('i31', 7)]


@pytest.mark.parametrize('a, b', [('wasmedge', 'wamr'), ('wamr', 'wasmedge')])
def test_migrating_a_gc_call_migrates_every_point(a, b):
    store, inst, _ = instance(a)
    results, report = migrate_call(store, inst.exports['run'][1], [10], a, b, seed=1)
    assert results == [15]
    assert report.mismatch is None and report.skipped is None and report.checkpoints > 0


# $f is declared a subtype of $t: the (ref null $t) table holds it, call_indirect
# through $t reaches it (7 + 1 = 8), and a stop inside $f migrates (no GC state)
SUBTYPED_CALL = r'''(module
  (type $t (sub (func (result i32))))
  (type $s (sub $t (func (result i32))))
  (table $tab 1 (ref null $t))
  (elem (table $tab) (i32.const 0) (ref null $t) (ref.func $f))
  (func $f (type $s) (i32.add (i32.const 3) (i32.const 4)))
  (func (export "run") (result i32)
    (i32.add (call_indirect $tab (type $t) (i32.const 0)) (i32.const 1))))'''


@pytest.mark.parametrize('a, b', [('wasmedge', 'wamr'), ('wamr', 'wasmedge')])
def test_a_subtyped_callee_migrates(a, b):
    store, inst, _ = instance(a, SUBTYPED_CALL)
    results, report = migrate_call(store, inst.exports['run'][1], [], a, b, seed=1,
                                   points=lambda n: range(n))
    assert results == [8]
    assert report.mismatch is None and report.skipped is None and report.checkpoints > 0


def test_reading_a_gc_slot_without_a_heap_is_refused():
    """A GC value in a document without a heap (a module that does not use
    GC) is refused on reading, not taken as a funcref or externref; a null
    in a non-nullable GC slot is refused as for typed function references."""
    from engine.migrate import neutral, translate
    from engine.migrate.images import ImageError
    with pytest.raises(neutral.NeutralError, match=r'frames\[0\]: a value of GC type structref '
                                                   r'in a document of a module that does not use GC'):
        neutral.decode_value(S.RefType(True, 'struct'), None, 'frames[0]', 1)
    with pytest.raises(ImageError, match=r'^stack1.img: slot 2: null in a slot of non-nullable '
                                         r'type \(ref 0\)'):
        translate.check_ref(None, ref(0, False), None, 'stack1.img: slot 2')
    assert translate.check_ref(None, S.FUNCREF, None, 'x') is None


# both ranges out of bounds: the array's is checked first; a fill of 2^32-1
# elements past the end traps before making any value
ORDER = r'''(module
  (type $a (array (mut i8)))
  (data $d "\01\02")
  (func (export "init") (array.init_data $a $d (array.new_default $a (i32.const 1))
                                              (i32.const 0) (i32.const 5) (i32.const 2)))
  (func (export "fill") (array.fill $a (array.new_default $a (i32.const 1))
                                      (i32.const 0) (i32.const 7) (i32.const -1))))'''


@pytest.mark.parametrize('runtime', RUNTIMES)
@pytest.mark.parametrize('name', ['init', 'fill'])
def test_array_bounds_come_first(runtime, name):
    store, inst, _ = instance(runtime, ORDER)
    with pytest.raises(Trap, match='out of bounds array access'):
        call(store, inst, name)
