"""The WasmEdge-style executor against hand-computed values and against
wasmtime running the same module, plus stepping (run(max_steps))."""

import pytest
import wasmtime

from engine import embedding as E
from engine.exec import wasmedge as X
from engine.errors import Exhaustion, Trap

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF

WAT = r'''
(module
  (type $ii (func (param i32) (result i32)))
  (memory (export "mem") 1 3)
  (table 4 funcref)
  (elem (i32.const 0) $double $inc)
  (global $g (mut i32) (i32.const 7))

  (func $fac (export "fac") (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0))
      (then (i64.const 1))
      (else (i64.mul (local.get 0)
                     (call $fac (i64.sub (local.get 0) (i64.const 1)))))))

  (func $fib (export "fib") (param i32) (result i32)
    (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))
      (then (local.get 0))
      (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                     (call $fib (i32.sub (local.get 0) (i32.const 2)))))))

  (func $double (type $ii) (i32.mul (local.get 0) (i32.const 2)))
  (func $inc (type $ii) (i32.add (local.get 0) (i32.const 1)))

  (func (export "sum") (param i32) (result i32) (local i32)
    (block
      (loop
        (br_if 1 (i32.eqz (local.get 0)))
        (local.set 1 (i32.add (local.get 1) (local.get 0)))
        (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
        (br 0)))
    (local.get 1))

  ;; multi-value block with params, branch carrying two values out of a nest
  (func (export "multi") (param i32) (result i32 i32)
    (i32.const 100)
    (local.get 0)
    (block (param i32 i32) (result i32 i32)
      (block (param i32 i32) (result i32 i32)
        (br_if 1 (i32.const 5) (i32.const 6) (i32.eqz (local.get 0)))
        (drop) (drop) (drop) (drop)
        (i32.const 1) (i32.const 2))
      (i32.add (i32.const 10))))

  (func (export "swap") (param i32 i32) (result i32 i32)
    (local.get 1) (local.get 0))

  (func (export "brtable") (param i32) (result i32)
    (block (block (block (block
      (br_table 0 1 2 3 (local.get 0)))
      (return (i32.const 10)))
      (return (i32.const 11)))
      (return (i32.const 12)))
    (i32.const 13))

  (func (export "indirect") (param i32 i32) (result i32)
    (call_indirect (type $ii) (local.get 1) (local.get 0)))

  (func (export "memops") (param i32 i32) (result i64)
    (i32.store (local.get 0) (local.get 1))
    (i32.store8 offset=4 (local.get 0) (i32.const 0x1ff))
    (i64.add (i64.load (local.get 0)) (i64.load16_s offset=2 (local.get 0))))

  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "size") (result i32) (memory.size))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))

  (func (export "div") (param i32 i32) (result i32)
    (i32.div_s (local.get 0) (local.get 1)))

  (func (export "glob") (param i32) (result i32)
    (global.set $g (i32.add (global.get $g) (local.get 0)))
    (global.get $g))

  (func (export "select") (param i32) (result i32)
    (select (i32.const 3) (i32.const 4) (local.get 0)))

  (func (export "ifelse") (param i32) (result i32) (local i32)
    (if (local.get 0)
      (then (local.set 1 (i32.const 1)))
      (else (local.set 1 (i32.const 2))))
    (if (i32.gt_s (local.get 0) (i32.const 5))
      (then (local.set 1 (i32.add (local.get 1) (i32.const 100)))))
    (local.get 1))

  (func (export "unreachable") (unreachable))
  (func $runaway (export "runaway") (call $runaway))

  (func (export "bulk") (result i32)
    (memory.fill (i32.const 100) (i32.const 0xab) (i32.const 8))
    (memory.copy (i32.const 104) (i32.const 100) (i32.const 4))
    (i32.load (i32.const 104)))
)
'''


@pytest.fixture(scope='module')
def env():
    data = wasmtime.wat2wasm(WAT)
    store = E.store_init('wasmedge')
    inst = E.module_instantiate(store, E.module_decode(data), [])
    wt_store = wasmtime.Store()
    wt_inst = wasmtime.Instance(wt_store, wasmtime.Module(wt_store.engine, data), [])
    return store, inst, wt_store, wt_inst


def call(env, name, *args):
    store, inst, _, _ = env
    return E.func_invoke(store, E.instance_export(inst, name)[1], list(args))


def wt(env, name, *args):
    _, _, s, i = env
    r = i.exports(s)[name](s, *args)
    if r is None:
        return []
    return list(r) if isinstance(r, (list, tuple)) else [r]


def u(v, bits):
    return v & ((1 << bits) - 1)


def test_fac_fib_by_hand(env):
    assert call(env, 'fac', 20) == [2432902008176640000]
    assert call(env, 'fac', 25) == [u(15511210043330985984000000, 64)]
    assert call(env, 'fib', 15) == [610]
    assert call(env, 'sum', 100) == [5050]


@pytest.mark.parametrize('name,args,bits', [
    ('fac', (0,), 64), ('fac', (5,), 64), ('fac', (21,), 64),
    ('fib', (10,), 32), ('sum', (1000,), 32),
    ('brtable', (0,), 32), ('brtable', (1,), 32), ('brtable', (2,), 32),
    ('brtable', (3,), 32), ('brtable', (4,), 32), ('brtable', (99,), 32),
    ('indirect', (0, 21), 32), ('indirect', (1, 21), 32),
    ('select', (0,), 32), ('select', (1,), 32),
    ('ifelse', (0,), 32), ('ifelse', (1,), 32), ('ifelse', (9,), 32),
    ('div', (-7, 2), 32),
])
def test_against_wasmtime(env, name, args, bits):
    mine = call(env, name, *[u(a, 32) for a in args])
    theirs = [u(v, bits) for v in wt(env, name, *args)]
    assert mine == theirs


def test_multi_value(env):
    assert call(env, 'multi', 0) == [5, 6]   # br_if 1 leaves both blocks
    assert call(env, 'multi', 1) == [1, 2 + 10]
    assert call(env, 'swap', 1, 2) == [2, 1]
    assert [u(v, 32) for v in wt(env, 'multi', 0)] == [5, 6]


def test_memory(env):
    # store 0x80000001 at 0; byte 4 = 0xff; i64 load = 0xff_80000001,
    # i64.load16_s at 2 = 0x8000 sign-extended.
    expect = u(0xFF80000001 + u(-0x8000, 64), 64)
    assert call(env, "memops", 0, 0x80000001) == [expect]
    assert call(env, 'bulk') == [0xABABABAB]
    with pytest.raises(Trap, match='out of bounds memory access'):
        call(env, 'load', 65533)
    assert call(env, 'size') == [1]
    assert call(env, 'grow', 1) == [1]
    assert call(env, 'load', 65533) == [0]
    assert call(env, 'grow', 2) == [M32]      # max is 3 pages
    assert call(env, 'size') == [2]


def test_globals(env):
    assert call(env, 'glob', 3) == [10]
    assert call(env, 'glob', 5) == [15]


def test_traps(env):
    with pytest.raises(Trap, match='integer divide by zero'):
        call(env, 'div', 1, 0)
    with pytest.raises(Trap, match='integer overflow'):
        call(env, 'div', 0x80000000, M32)
    with pytest.raises(Trap, match='unreachable'):
        call(env, 'unreachable')
    with pytest.raises(Trap, match='uninitialized element'):
        call(env, 'indirect', 2, 1)
    with pytest.raises(Trap, match='undefined element'):
        call(env, 'indirect', 4, 1)
    with pytest.raises(Exhaustion, match='call stack exhausted'):
        call(env, 'runaway')
    # the store is still usable after traps
    assert call(env, 'fib', 5) == [5]


def stepped(env, name, args, k):
    store, inst, _, _ = env
    ex = X.Executor(store)
    ex.start(E.instance_export(inst, name)[1], args)
    rounds = 0
    before = 0
    while not ex.run(max_steps=k):
        rounds += 1
        assert ex.frames, 'unfinished run must keep its frames'
        # k instructions, or k+1 when the last was a false 'if' whose 'else'
        # WasmEdge counts as executed too
        assert ex.steps - before in (k, k + 1)
        before = ex.steps
    return ex.results, ex.steps, rounds


@pytest.mark.parametrize('name,args', [
    ('fib', [7]), ('multi', [0]), ('multi', [1]), ('brtable', [2]),
    ('ifelse', [9]), ('fac', [6])])
def test_stepping_every_k(env, name, args):
    full, total, _ = stepped(env, name, args, None)
    assert total > 0
    for k in range(1, total + 2):
        res, steps, rounds = stepped(env, name, args, k)
        assert res == full and steps == total
        assert rounds <= (total - 1) // k


def test_indirect_type_mismatch():
    wat = '''(module (table 1 funcref) (elem (i32.const 0) $f)
      (func $f (param i64))
      (func (export "go") (call_indirect (i32.const 0))))'''
    store = E.store_init()
    inst = E.module_instantiate(store, E.module_decode(wasmtime.wat2wasm(wat)), [])
    with pytest.raises(Trap, match='indirect call type mismatch'):
        E.func_invoke(store, inst.exports['go'][1], [])
