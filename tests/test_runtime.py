"""Runtime structure and instantiation: linking, initialisation order,
segment bounds (2.0 semantics), the start function, the spectest module."""

import struct

import pytest
import wasmtime

from engine import embedding as E
from engine import runtime as R
from engine import syntax as S
from engine.errors import LinkError, Trap


def inst_of(store, wat, imports=()):
    return E.module_instantiate(store, E.module_decode(wasmtime.wat2wasm(wat)),
                                list(imports))


def export(inst, name):
    return E.instance_export(inst, name)


def test_spectest_module():
    store = E.store_init()
    st = E.spectest_instance(store)
    g = lambda n: E.global_read(store, export(st, n)[1])
    assert g('global_i32') == 666 and g('global_i64') == 666
    assert g('global_f32') == struct.unpack('<I', struct.pack('<f', 666.6))[0]
    assert g('global_f64') == struct.unpack('<Q', struct.pack('<d', 666.6))[0]
    tab = store.tables[export(st, 'table')[1]]
    assert len(tab.elem) == 10 and tab.type.limits.max == 20
    mem = store.mems[export(st, 'memory')[1]]
    assert mem.size() == 1 and mem.type.limits.max == 2
    assert E.func_invoke(store, export(st, 'print_i32')[1], [1]) == []
    with pytest.raises(LinkError, match='unknown export'):
        export(st, 'nope')


def test_imports_and_subtyping():
    store = E.store_init()
    st = E.spectest_instance(store)
    wat = '''(module (import "s" "t" (table 5 funcref)) (import "s" "m" (memory 1))
                     (import "s" "g" (global i32)) (import "s" "f" (func (param i32))))'''
    ok = [export(st, 'table'), export(st, 'memory'), export(st, 'global_i32'),
          export(st, 'print_i32')]
    inst_of(store, wat, ok)
    bad = [
        [export(st, 'table'), export(st, 'memory'), export(st, 'global_i64'), ok[3]],
        [export(st, 'table'), export(st, 'memory'), ok[2], export(st, 'print_i64')],
        [export(st, 'memory'), export(st, 'memory'), ok[2], ok[3]],
    ]
    for ev in bad:
        with pytest.raises(LinkError, match='incompatible import type'):
            inst_of(store, wat, ev)
    # memory max 2 does not fit an import demanding max 1; min 3 too big
    for mt in ('(memory 1 1)', '(memory 3)'):
        with pytest.raises(LinkError, match='incompatible import type'):
            inst_of(store, f'(module (import "s" "m" {mt}))', [export(st, 'memory')])
    inst_of(store, '(module (import "s" "m" (memory 0 3)))', [export(st, 'memory')])


def test_imported_global_in_initialisers_and_order():
    store = E.store_init()
    st = E.spectest_instance(store)
    wat = '''(module
      (import "s" "g" (global $i i32))
      (global $a i32 (global.get $i))
      (global $r funcref (ref.func $f))
      (memory 1)
      (data (global.get $i) "\\01\\02")
      (func $f (export "f") (result i32) (i32.load16_u (i32.const 666)))
      (func (export "a") (result i32) (global.get $a))
      (func (export "r") (result funcref) (global.get $r)))'''
    inst = inst_of(store, wat, [export(st, 'global_i32')])
    assert E.func_invoke(store, export(inst, 'a')[1], []) == [666]
    assert E.func_invoke(store, export(inst, 'f')[1], []) == [0x0201]
    assert E.func_invoke(store, export(inst, 'r')[1], []) == [export(inst, 'f')[1]]


def test_segments_trap_keeping_earlier_writes():
    """2.0: segments are applied in order, each checked as a whole; the
    writes of earlier segments to an imported memory/table stay."""
    store = E.store_init()
    owner = inst_of(store, '''(module (memory (export "m") 1) (table (export "t") 2 funcref)
      (func (export "peek") (param i32) (result i32) (i32.load8_u (local.get 0))))''')
    m, t = export(owner, 'm'), export(owner, 't')
    bad_data = '''(module (import "o" "m" (memory 1)) (import "o" "t" (table 2 funcref))
      (data (i32.const 0) "a") (data (i32.const 65535) "bc") (data (i32.const 5) "d"))'''
    with pytest.raises(Trap, match='out of bounds memory access'):
        inst_of(store, bad_data, [m, t])
    peek = export(owner, 'peek')[1]
    assert E.func_invoke(store, peek, [0]) == [ord('a')]
    assert E.func_invoke(store, peek, [65535]) == [0]
    assert E.func_invoke(store, peek, [5]) == [0]
    bad_elem = '''(module (import "o" "m" (memory 1)) (import "o" "t" (table 2 funcref))
      (func $f) (elem (i32.const 0) $f) (elem (i32.const 1) $f $f)
      (data (i32.const 9) "z"))'''
    with pytest.raises(Trap, match='out of bounds table access'):
        inst_of(store, bad_elem, [m, t])
    tab = store.tables[t[1]].elem
    assert tab[0] is not None and tab[1] is None
    assert E.func_invoke(store, peek, [9]) == [0]     # data after elems: not run
    # zero-length segment exactly at the end is fine
    inst_of(store, '''(module (import "o" "m" (memory 1)) (import "o" "t" (table 2 funcref))
      (data (i32.const 65536) "") (elem (i32.const 2) func))''', [m, t])


def test_start_function_runs_after_segments_and_can_trap():
    store = E.store_init()
    inst = inst_of(store, '''(module (memory 1) (global $g (mut i32) (i32.const 0))
      (data (i32.const 0) "\\2a")
      (func $s (global.set $g (i32.load8_u (i32.const 0))))
      (start $s)
      (func (export "g") (result i32) (global.get $g)))''')
    assert E.func_invoke(store, export(inst, 'g')[1], []) == [42]
    with pytest.raises(Trap, match='unreachable'):
        inst_of(store, '(module (func $s unreachable) (start $s))')


def test_memory_and_table_grow():
    m = R.MemInst(S.MemType(S.Limits(1, 3)))
    assert m.grow(0) == 1 and m.grow(2) == 1 and m.grow(1) == -1
    assert len(m.data) == 3 * R.PAGE_SIZE and m.type.limits.min == 3
    u = R.MemInst(S.MemType(S.Limits(0)))
    assert u.grow(R.MAX_PAGES + 1) == -1
    t = R.TableInst(S.TableType(S.Limits(1, 4), S.FUNCREF))
    assert t.grow(3, 7) == 1 and t.elem == [None, 7, 7, 7] and t.grow(1) == -1
    big = R.TableInst(S.TableType(S.Limits(0x10), S.FUNCREF))
    assert big.grow(0xFFFFFFF0) == -1


def test_invoke_checks_arguments():
    store = E.store_init()
    inst = inst_of(store, '(module (func (export "f") (param i32)))')
    f = export(inst, 'f')[1]
    assert E.func_invoke(store, f, [1]) == []
    with pytest.raises(Trap):
        E.func_invoke(store, f, [])
    with pytest.raises(Trap):
        E.func_invoke(store, f, [1 << 40])


def test_externref_and_ref_func_values():
    store = E.store_init()
    inst = inst_of(store, '''(module (table $t 2 externref)
      (func (export "set") (param externref) (table.set $t (i32.const 1) (local.get 0)))
      (func (export "get") (param i32) (result externref) (table.get $t (local.get 0))))''')
    E.func_invoke(store, export(inst, 'set')[1], [S.ExternRef(5)])
    assert E.func_invoke(store, export(inst, 'get')[1], [1]) == [S.ExternRef(5)]
    assert E.func_invoke(store, export(inst, 'get')[1], [0]) == [None]
    with pytest.raises(Trap, match='out of bounds table access'):
        E.func_invoke(store, export(inst, 'get')[1], [2])


EXTENDED_CONST = '''(module
  (import "spectest" "global_i32" (global $imp i32))
  (global $a i32 (i32.add (global.get $imp) (i32.mul (i32.const 3) (i32.const 4))))
  (global $b i64 (i64.sub (i64.const 0) (i64.mul (i64.const 0x100000000) (i64.const 3))))
  (global $c i32 (i32.sub (global.get $a) (i32.const 0x7fffffff)))
  (memory 1)
  (table 4 funcref)
  (func $f (result i32) (i32.const 7))
  (elem (offset (i32.sub (global.get $a) (i32.const 677))) $f)
  (data (offset (i32.mul (global.get $a) (i32.const 2))) "\\2a")
  (export "a" (global $a)) (export "b" (global $b)) (export "c" (global $c))
  (export "m" (memory 0)) (export "t" (table 0)))'''


def test_extended_constant_expressions():
    """Wasm 3.0: i32/i64 add, sub, mul and global.get of any earlier
    immutable global in initializers and segment offsets (values by hand:
    666 + 12 = 678; 0 - 3*2^32 wraps; 678 - (2^31-1) wraps)."""
    store = E.store_init()
    spectest = E.spectest_instance(store)
    imp = [export(spectest, 'global_i32')]
    inst = inst_of(store, EXTENDED_CONST, imp)
    g = lambda n: E.global_read(store, export(inst, n)[1])
    assert g('a') == 678
    assert g('b') == (-3 << 32) & (2 ** 64 - 1)
    assert g('c') == (678 - 0x7fffffff) & 0xffffffff
    assert store.mems[export(inst, 'm')[1]].data[1356] == 0x2a
    assert store.tables[export(inst, 't')[1]].elem[1] is not None


def test_extended_constant_expressions_are_3_0_only():
    """Under the 2.0 rules (the 2.0 testsuite's) the same module is invalid:
    arithmetic is no constant instruction, and only imported globals are seen."""
    from engine.errors import ValidationError
    from engine.valid import validate_module
    module = E.module_decode(wasmtime.wat2wasm(EXTENDED_CONST))
    validate_module(module, 3)
    with pytest.raises(ValidationError, match='constant expression required'):
        validate_module(module, 2)
    later = E.module_decode(wasmtime.wat2wasm(
        '(module (global $x i32 (i32.const 1)) (global i32 (global.get $x)))'))
    validate_module(later, 3)
    with pytest.raises(ValidationError, match='unknown global'):
        validate_module(later, 2)
    mutable = E.module_decode(wasmtime.wat2wasm(
        '(module (global $x (mut i32) (i32.const 1)) (global i32 (global.get $x)))'))
    with pytest.raises(ValidationError, match='constant expression required'):
        validate_module(mutable, 3)
