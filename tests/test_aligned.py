"""engine/exec/aligned.py: the zero low bits of integer locals and of
addresses, computed by hand for small functions, and what the compiled
tier does with them (no alignment test where they are known; a frame
whose locals break them, as a restored image may, runs as the
interpreter runs it)."""

import pytest
import wasmtime

from engine import embedding, runtime
from engine.exec import aligned
from test_fast_tier import check_every_stop, length, outcome, same, setup


def facts(wat, k=0):
    store = runtime.Store('wasmedge', None)
    inst = embedding.module_instantiate(
        store, embedding.module_decode(wasmtime.wat2wasm(wat)), [])
    return aligned.zeros(store.funcs[inst.funcaddrs[k]])


def func(params, locals_, body):
    return f'(module (memory 1) (func {params} {locals_} {body}))'


@pytest.mark.parametrize('body, want', [
    # index * 56: three zero bits whatever the index
    ('(local.set 1 (i32.mul (local.get 0) (i32.const 56)))', {1: 3, 2: 64}),
    # a mask clears low bits; a shift by a constant adds them
    ('(local.set 1 (i32.and (local.get 0) (i32.const -8)))', {1: 3, 2: 64}),
    ('(local.set 1 (i32.shl (local.get 0) (i32.const 4)))', {1: 4, 2: 64}),
    # a pointer stepped by 16 from 0, in a loop: the fixpoint keeps 4 bits
    ('(loop (local.set 1 (i32.add (local.get 1) (i32.const 16))) (br_if 0 (local.get 0)))', {1: 4, 2: 64}),
    # stepped by 1 somewhere: nothing; a parameter: nothing
    ('(local.set 1 (i32.const 64)) (local.set 1 (i32.add (local.get 1) (i32.const 1)))', {2: 64}),
    ('(local.set 1 (local.get 0))', {2: 64}),
    # through another local, and into a 64-bit one (i64.extend_i32_u)
    ('(local.set 1 (i32.mul (local.get 0) (i32.const 24))) (local.set 2 (i64.extend_i32_u (local.get 1)))',
     {1: 3, 2: 3}),
    # a block's result: what a branch carried is not tracked, so nothing
    ('(local.set 1 (block (result i32) (br_if 0 (i32.const 3) (local.get 0)) (drop) (i32.const 8)))',
     {2: 64}),
    # a value loaded from memory or returned by a call: nothing
    ('(local.set 1 (i32.load (i32.const 0)))', {2: 64}),
    # never set (the i64 local in every case above too): its default 0 has
    # every bit clear
    ('(drop (local.get 1))', {1: 32, 2: 64}),
])
def test_zero_bits_of_locals_by_hand(body, want):
    got = facts(func('(param i32)', '(local i32 i64)', body))
    assert got.locals == want


def test_zero_bits_of_addresses_by_hand():
    wat = func('(param i32)', '(local i32)',
               '(local.set 1 (i32.mul (local.get 0) (i32.const 40)))'     # pcs 0-3
               '(drop (f64.load offset=16 (local.get 1)))'                # 4, 5, 6
               '(i64.store (i32.add (local.get 1) (i32.const 4)) (i64.const 0))'  # 7-11
               '(drop (i32.load (local.get 0)))')                         # 12, 13, 14
    got = facts(wat)
    assert got.address == {5: 3, 11: 2, 13: 0}
    assert got.masks == ((1, 7),)
    assert got.keeps([5, 48]) and not got.keeps([0, 12])


RESTORED_WAT = '''(module (memory 1)
  (data (i32.const 0) "\\01\\02\\03\\04\\05\\06\\07\\08\\09\\0a\\0b\\0c\\0d\\0e\\0f\\10\\11\\12\\13\\14\\15\\16\\17\\18")
  (func (export "f") (param $n i32) (result i64) (local $p i32) (local $acc i64)
    (local.set $p (i32.const 8))
    (loop $l
      (local.set $acc (i64.add (i64.rotl (local.get $acc) (i64.const 7)) (i64.load (local.get $p))))
      (f64.store offset=24 (local.get $p) (f64.add (f64.load offset=24 (local.get $p)) (f64.const 1.5)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (i64.add (local.get $acc) (i64.load offset=24 (local.get $p)))))'''


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
def test_known_aligned_accesses_have_no_test_and_stop_like_the_interpreter(model):
    wasm = wasmtime.wat2wasm(RESTORED_WAT)
    store, inst, ex = setup(wasm, 'f', [5], 'fast', model=model)
    ex.run()
    from engine.exec.compile import CACHE
    src = store.funcs[inst.funcaddrs[0]].cache[CACHE[model]].source
    assert '& 7' not in src and 'w1_3 = l1 >> 3' in src, src
    assert 'VQ[w1_3]' in src and 'VD[w1_3 + 3]' in src, src
    check_every_stop(wasm, 'f', [5], range(1, length(wasm, 'f', [5], model) + 1), model)


STEPPED_WAT = '''(module (memory 1)
  (data (i32.const 0) "\\01\\02\\03\\04\\05\\06\\07\\08\\09\\0a\\0b\\0c\\0d\\0e\\0f\\10\\11\\12\\13\\14\\15\\16\\17\\18\\19\\1a\\1b\\1c\\1d\\1e\\1f\\20\\21\\22\\23\\24\\25\\26\\27\\28")
  (func (export "f") (param $n i32) (result i64) (local $p i32) (local $acc i64)
    (loop $l
      (local.set $acc (i64.add (local.get $acc) (i64.load (local.get $p))))
      (local.set $acc (i64.xor (local.get $acc) (i64.load offset=8 (local.get $p))))
      (local.set $p (i32.and (i32.add (local.get $p) (i32.const 8)) (i32.const 24)))
      (if (i32.and (local.get $n) (i32.const 1))
        (then (local.set $acc (i64.add (local.get $acc) (i64.load offset=8 (local.get $p))))))
      (local.set $acc (i64.rotl (local.get $acc) (i64.load (local.get $p))))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $acc)))'''


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
def test_a_shifted_index_is_made_again_after_its_local_is_written(model):
    """A typed view's index at a local (``w<j>_<k>``, ``FuncGen.shifted``)
    serves the loads at that local until the local is written: loads before
    and after ``$p`` steps (0, 8, 16, 24, 0 ...; and in a branch taken on
    odd turns) read what the interpreter reads, at every stop."""
    wasm = wasmtime.wat2wasm(STEPPED_WAT)
    store, inst, ex = setup(wasm, 'f', [7], 'fast', model=model)
    ex.run()
    from engine.exec.compile import CACHE
    src = store.funcs[inst.funcaddrs[0]].cache[CACHE[model]].source
    assert src.count('w1_3 = l1 >> 3') >= 2, src
    check_every_stop(wasm, 'f', [7], range(1, length(wasm, 'f', [7], model) + 1), model)


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
def test_a_frame_whose_locals_break_the_facts_runs_as_the_interpreter_runs_it(model):
    """A state from outside (here: the pointer local set to an odd address
    in a stopped frame, as a corrupted image could hold) is one the
    compiled code does not expect: the executor interprets that frame, so
    the unaligned loads and stores read and write what the interpreter's do."""
    wasm = wasmtime.wat2wasm(RESTORED_WAT)
    total = length(wasm, 'f', [6], model)
    for n in (4, 9, 20, total // 2):
        runs = []
        for tier in ('interp', 'fast'):
            store, inst, ex = setup(wasm, 'f', [6], tier, model=model)
            assert not ex.run(n)
            base = ex.frames[-1].vpos if model == 'wasmedge' else ex.frames[-1].lp
            assert ex.stack[base + 1] == 8             # $p, one value or one cell
            ex.stack[base + 1] = 9
            runs.append(outcome(store, inst, ex, None))
        assert same(*runs), n
        assert runs[0][2]['results'] != outcome(*setup(wasm, 'f', [6], 'interp', model=model),
                                                None)[2]['results']
