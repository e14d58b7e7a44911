"""fuzz.tablecheck: the forks' type tables, read back by a reader of their
own, against the frames of WAMR checkpoints."""

import random

import pytest
import wasmtime

from engine import embedding
from engine.migrate import checkpoint, images as im, typetables
from fuzz import gen, oracle, tablecheck

# $leaf runs under a call_indirect of $mid, which runs under a call of the
# entry: at a stop inside $leaf the frames below it sit after a call_indirect
# and after a call
WAT = '''(module
  (type $t (func (param i64) (result i64)))
  (table 1 funcref) (elem (i32.const 0) $leaf)
  (func $leaf (type $t) (local f64)
    (local.set 1 (f64.const 1.5))
    (i64.add (local.get 0) (i64.const 1)))
  (func $mid (param i32) (result i64) (local v128 i64)
    (i32.const 7)
    (i64.const 41) (i32.const 0) (call_indirect (type $t))
    (local.set 2) (drop)
    (local.get 2))
  (func (export "run") (result i64)
    (f32.const 2) (call $mid (i32.const 3)) (return)))'''


def _stopped(steps):
    wasm = wasmtime.wat2wasm(WAT)
    store = embedding.store_init('wamr', tier='interp')
    inst = embedding.module_instantiate(store, embedding.module_decode(wasm), [])
    ex = store.new_executor()
    ex.start(inst.exports['run'][1], [])
    assert not ex.run(steps)
    return inst, checkpoint.save(ex, inst, im.module_sha256(wasm), 'run', ['i64'])


def test_the_tables_agree_with_every_frame_of_a_run_and_a_defect_shows(tmp_path):
    """At every stop of the run (three frames deep inside ``$leaf``) the
    tables the engine writes agree with the WAMR set's frames; the
    authors' tables (no caller record after ``call_indirect``) and a table
    with one slot's size changed are refused, naming the frame."""
    inst, images = _stopped(8)                 # inside $leaf: entry -> $mid -> $leaf
    assert len(images.frames) == 3
    tables = tablecheck.tables_of(inst.module, inst.info, 'test-good', str(tmp_path / 'good'))
    for steps in range(1, 14):
        try:
            _, images_at = _stopped(steps)
        except AssertionError:
            break
        tablecheck.check(images_at, tables, f'step {steps}')
    authors = tmp_path / 'authors'
    authors.mkdir()
    for name, data in typetables.build(inst.module, inst.info, calls=('call',)).items():
        (authors / name).write_bytes(data)
    with pytest.raises(tablecheck.TableMismatch, match=r'stack2.img: function 1 offset \d+: the '
                                                       r'tables hold no caller record there'):
        tablecheck.check(images, tablecheck.read(str(authors), 0), 'the set')
    wrong = {fidx: (bytes([1]) + local[1:], positions) if fidx == 0 else (local, positions)
             for fidx, (local, positions) in tables.items()}      # $leaf's i64 parameter as one cell
    with pytest.raises(tablecheck.TableMismatch, match=r'stack1.img: function 0 offset \d+: slots of '
                                                       r'\[2, 2\b.*the type tables say \[1, 2\b'):
        tablecheck.check(images, wrong, 'the set')


def test_the_campaign_checks_the_tables_of_every_module(monkeypatch):
    """The oracle checks every WAMR set it reads (saved and translated)
    against the module's tables (written by the engine, read back by
    tablecheck), GC and exception modules included; every generated module
    passes."""
    seen = []
    check = tablecheck.check
    monkeypatch.setattr(tablecheck, 'check', lambda images, tables, where: seen.append(
        len(images.frames)) or check(images, tables, where))
    checked = 0
    for seed in range(30):
        gm = gen.from_seed(seed)
        before = len(seen)
        _, failure = oracle.check_module(gm.wasm, gm.entry, gm.args[:1], random.Random(seed),
                                         wasmtime=False, stops=gm.stops)
        assert failure is None, (seed, failure)
        checked += len(seen) > before
    assert checked >= 20 and len(seen) >= 200 and max(seen) >= 3, (checked, len(seen), max(seen))
