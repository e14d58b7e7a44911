"""Resource limits (engine/limits.py): each one is a typed error naming the
limit, raised before the thing it bounds is allocated or run; growing past
a size limit fails (-1) as the spec allows; the defaults leave real
programs and the spec suite alone."""

import json
import time

import pytest
import wasmtime

from engine import embedding, limits as L
from engine.migrate import images as im, neutral
from engine.errors import Exhaustion, Trap
from engine.limits import CallDepthError, LimitError, Limits

RUNTIMES = ['wasmedge', 'wamr']


def wasm(text):
    return wasmtime.wat2wasm(text)


def instance(text, runtime='wasmedge', limits=None):
    store = embedding.store_init(runtime, limits)
    module = embedding.module_decode(wasm(text), limits)
    return store, embedding.module_instantiate(store, module, [])


def call(store, inst, name, *args):
    return embedding.func_invoke(store, inst.exports[name][1], list(args))


def limit_of(excinfo):
    return excinfo.value.limit, excinfo.value.value, excinfo.value.maximum


# ------------------------------------------------------------ module size and functions

def test_module_size_is_checked_before_decoding():
    data = wasm('(module (func) (func))')
    with pytest.raises(LimitError) as e:
        embedding.module_decode(data, Limits(max_module_bytes=len(data) - 1))
    assert limit_of(e) == ('max_module_bytes', len(data), len(data) - 1)
    assert '--max-module-bytes' in str(e.value)
    embedding.module_decode(data, Limits(max_module_bytes=len(data)))


def test_function_count_counts_imports():
    text = '(module (import "spectest" "print" (func)) (func) (func))'
    with pytest.raises(LimitError) as e:
        embedding.module_decode(wasm(text), Limits(max_funcs=2))
    assert limit_of(e) == ('max_funcs', 3, 2)
    embedding.module_decode(wasm(text), Limits(max_funcs=3))


def test_memory_count_counts_imports_and_defaults_to_wasmtimes_100():
    """Decoding refuses more memories than ``max_memories``, imported ones
    counted; so does instantiating a module built in memory (no decoder);
    the default is the 100 wasmtime's validator allows (checked against
    wasmtime itself)."""
    from engine import syntax
    text = '(module (import "m" "m" (memory 0)) (memory 0) (memory 1))'
    with pytest.raises(LimitError) as e:
        embedding.module_decode(wasm(text), Limits(max_memories=2))
    assert limit_of(e) == ('max_memories', 3, 2)
    assert 'memories: 3 exceeds the limit --max-memories 2' in str(e.value)
    embedding.module_decode(wasm(text), Limits(max_memories=3))
    many = wasm('(module' + ' (memory 0)' * 101 + ')')
    with pytest.raises(wasmtime.WasmtimeError, match='memories count exceeds limit of 100'):
        wasmtime.Module(wasmtime.Engine(), many)
    with pytest.raises(LimitError) as e:
        embedding.module_decode(many)
    assert limit_of(e) == ('max_memories', 101, 100)
    hundred = wasm('(module' + ' (memory 0)' * 100 + ')')
    wasmtime.Module(wasmtime.Engine(), hundred)
    module = embedding.module_decode(hundred)
    module.mems.append(syntax.Mem(syntax.MemType(syntax.Limits(0))))
    with pytest.raises(LimitError) as e:
        embedding.module_instantiate(embedding.store_init('wamr'), module, [])
    assert limit_of(e) == ('max_memories', 101, 100)


# ------------------------------------------------------------ memory and tables

def test_memory_near_4gib_is_a_limit_error_not_a_memoryerror():
    started = time.monotonic()
    with pytest.raises(LimitError) as e:
        instance('(module (memory 65536))')
    assert limit_of(e) == ('max_memory_pages', 65536, L.DEFAULT.max_memory_pages)
    assert 'memory 0 minimum pages' in str(e.value)
    assert time.monotonic() - started < 2


def test_table_near_2_32_is_a_limit_error_not_a_memoryerror():
    with pytest.raises(LimitError) as e:
        instance('(module (table 0xffffffff funcref))')
    assert limit_of(e) == ('max_table_elems', 0xFFFFFFFF, L.DEFAULT.max_table_elems)
    with pytest.raises(LimitError):
        instance('(module (table 11 externref))', limits=Limits(max_table_elems=10))
    instance('(module (table 10 externref))', limits=Limits(max_table_elems=10))


GROW = '''(module (memory 1) (table 1 funcref)
  (func (export "mem") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "tab") (param i32) (result i32) (table.grow (ref.null func) (local.get 0))))'''


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_grow_past_a_limit_fails_with_minus_one(runtime):
    store, inst = instance(GROW, runtime, Limits(max_memory_pages=3, max_table_elems=5))
    assert call(store, inst, 'mem', 3) == [0xFFFFFFFF]        # 1 + 3 > 3
    assert call(store, inst, 'mem', 2) == [1]                 # exactly 3
    assert call(store, inst, 'tab', 5) == [0xFFFFFFFF]
    assert call(store, inst, 'tab', 4) == [1]


def test_instances_per_store():
    limits = Limits(max_instances=2)
    store = embedding.store_init('wasmedge', limits)
    module = embedding.module_decode(wasm('(module)'))
    embedding.module_instantiate(store, module, [])
    embedding.module_instantiate(store, module, [])
    with pytest.raises(LimitError) as e:
        embedding.module_instantiate(store, module, [])
    assert limit_of(e) == ('max_instances', 3, 2)


# ------------------------------------------------------------ calls and steps

REC = '''(module
  (func $down (export "down") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0))
      (else (i32.add (i32.const 1) (call $down (i32.sub (local.get 0) (i32.const 1)))))))
  (func (export "spin") (loop (br 0)))
  (func (export "count") (param i32) (loop (br_if 0 (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))))'''


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_call_depth_is_the_spec_exhaustion_trap(runtime):
    store, inst = instance(REC, runtime, Limits(max_call_depth=50))
    assert call(store, inst, 'down', 49) == [49]      # 50 frames: the limit
    with pytest.raises(CallDepthError) as e:
        call(store, inst, 'down', 50)                 # 51 frames
    assert isinstance(e.value, Exhaustion) and isinstance(e.value, LimitError)
    assert e.value.message == 'call stack exhausted'  # what assert_exhaustion checks
    assert e.value.limit == 'max_call_depth' and '--max-call-depth 50' in str(e.value)


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_step_budget(runtime):
    store, inst = instance(REC, runtime)
    ex = store.new_executor()
    ex.start(inst.exports['count'][1], [10])
    ex.run()
    exact = ex.steps
    store, inst = instance(REC, runtime, Limits(max_steps=exact))
    assert call(store, inst, 'count', 10) == []
    store, inst = instance(REC, runtime, Limits(max_steps=exact - 1))
    with pytest.raises(LimitError) as e:
        call(store, inst, 'count', 10)
    assert e.value.limit == 'max_steps' and not isinstance(e.value, Trap)
    store, inst = instance(REC, runtime, Limits(max_steps=10_000))
    with pytest.raises(LimitError):
        call(store, inst, 'spin')


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_timeout_ends_an_endless_loop(runtime):
    store, inst = instance(REC, runtime, Limits(timeout=0.3))
    started = time.monotonic()
    with pytest.raises(LimitError) as e:
        call(store, inst, 'spin')
    assert e.value.limit == 'timeout'
    assert time.monotonic() - started < 2


def test_run_bounded_stops_at_a_point_and_counts_from_its_start():
    store, inst = instance(REC)
    ex = store.new_executor()
    ex.start(inst.exports['spin'][1], [])
    assert L.run_bounded(ex, Limits(max_steps=100), stop_at=60) is False
    assert ex.steps == 60
    # the budget counts from where this call starts: 100 more
    with pytest.raises(LimitError):
        L.run_bounded(ex, Limits(max_steps=100))
    assert ex.steps == 160


def test_flags_parse_and_override():
    import argparse
    ap = argparse.ArgumentParser()
    L.add_arguments(ap)
    a = ap.parse_args(['--max-memory-pages', '7', '--timeout', '1.5'])
    got = L.from_arguments(a)
    assert got.max_memory_pages == 7 and got.timeout == 1.5
    assert got.max_table_elems == L.DEFAULT.max_table_elems
    for bad in (['--max-steps', '-1'], ['--timeout', '0'], ['--max-funcs', 'x']):
        with pytest.raises(SystemExit):
            ap.parse_args(bad)


# ------------------------------------------------------------ image sets and snapshots

STOPPED = '''(module (memory 1 4) (table 2 funcref) (global (mut i32) (i32.const 5))
  (func (export "f") (result i32) (local i32)
    (loop (local.set 0 (i32.add (local.get 0) (i32.const 1)))
          (br_if 0 (i32.lt_u (local.get 0) (i32.const 100))))
    (local.get 0)))'''


def _stopped(runtime='wasmedge', text=STOPPED, steps=50):
    """(module bytes, instance, image set) of export f stopped after ``steps``."""
    from engine.migrate import checkpoint
    data = wasm(text)
    store = embedding.store_init(runtime)
    inst = embedding.module_instantiate(store, embedding.module_decode(data), [])
    ex = store.new_executor()
    ex.start(inst.exports['f'][1], [])
    ex.run(steps)
    results = list(store.funcs[inst.exports['f'][1]].type.results)
    return data, inst, checkpoint.save(ex, inst, im.module_sha256(data), 'f', results)


def test_image_page_count_checked_against_module_and_limits_before_allocating():
    from engine.migrate.translate import snapshot_from_images
    from engine.migrate.images import ImageError
    data, inst, images = _stopped()
    images.page_count = 5                      # the module's max is 4
    with pytest.raises(ImageError, match=r"mem_page_count.img: page count: 5 is outside the "
                                         r"memory's limits 1 \.\. 4"):
        snapshot_from_images(images, inst.module, inst.info)
    images.page_count = 3
    with pytest.raises(ImageError, match='capped by --max-memory-pages 2'):
        snapshot_from_images(images, inst.module, inst.info, Limits(max_memory_pages=2))
    images.page_count, images.tables = 1, [[im.NONE] * 3]
    with pytest.raises(ImageError, match='table.img: table 0 size: 3 is outside .*capped by '
                                         '--max-table-elems 2'):
        snapshot_from_images(images, inst.module, inst.info, Limits(max_table_elems=2))


def test_neutral_sizes_and_deep_json():
    from engine.migrate.translate import snapshot_from_images
    data, inst, images = _stopped()
    snap = snapshot_from_images(images, inst.module, inst.info)
    doc = neutral.document_from_snapshot(snap, inst.module, inst.info, im.module_sha256(data))
    doc['memory']['pages'] = 3
    neutral.snapshot_from_document(json.loads(json.dumps(doc)), inst.module, inst.info)
    with pytest.raises(neutral.NeutralError, match=r'memory.pages: 3 .*--max-memory-pages 2'):
        neutral.snapshot_from_document(doc, inst.module, inst.info, Limits(max_memory_pages=2))
    with pytest.raises(neutral.NeutralError, match='not valid JSON'):
        neutral.loads(b'[' * 100000 + b']' * 100000)


@pytest.mark.parametrize('field, value', [
    ('steps', 'abc'), ('steps', None), ('steps', [3]), ('steps', -1), ('steps', 2 ** 64),
    ('steps', 1.5), ('results', [['i32']]), ('results', 'i32'), ('results', [7]),
    ('entry', 3), ('entry', None)])
def test_manifest_field_types(field, value):
    from engine.migrate.images import ImageError
    _, _, images = _stopped()
    files = im.encode_files(images)
    doc = json.loads(files['manifest.json'])
    doc[field] = value
    files['manifest.json'] = json.dumps(doc).encode()
    with pytest.raises(ImageError, match=f'manifest.json: {field}: '):
        im.decode_files(files)


def test_manifest_deep_json_and_missing_field():
    from engine.migrate.images import ImageError
    _, _, images = _stopped()
    files = im.encode_files(images)
    deep = dict(files, **{'manifest.json': b'[' * 100000 + b']' * 100000})
    with pytest.raises(ImageError, match='manifest.json: not valid JSON'):
        im.decode_files(deep)
    doc = json.loads(files['manifest.json'])
    del doc['steps']
    with pytest.raises(ImageError, match='manifest.json: steps: missing'):
        im.decode_files(dict(files, **{'manifest.json': json.dumps(doc).encode()}))


# ------------------------------------------------------------ the models' instruction counts

COUNT_CASES = {   # body of (func (export "f") (result i32)) -> WAMR's count - WasmEdge's
    'i32.const 1': 0,
    '(block (result i32) i32.const 1)': 0,
    '(block (result i32) i32.const 1 br 0)': 0,                     # both land on the end
    '(block (result i32) i32.const 1 i32.const 1 br_if 0)': 0,
    '(block (result i32) i32.const 1 i32.const 0 br_if 0)': 0,
    '(block (result i32) i32.const 1 i32.const 0 br_table 0)': 0,
    '(block (result i32) (block (result i32) i32.const 1 br 1))': 0,
    '(if (result i32) (i32.const 1) (then i32.const 2) (else i32.const 3))': 1,   # then-arm: WAMR
    '(if (result i32) (i32.const 0) (then i32.const 2) (else i32.const 3))': -1,  # false if: WE
    '(if (i32.const 0) (then nop)) i32.const 0': -1,
    '(if (i32.const 1) (then nop)) i32.const 0': 0,
    '(block (result i32) i32.const 1 return)': 0,
    'i32.const 1 br 0': 0,
    '(local i32) (loop (br_if 0 (i32.lt_u (local.tee 0 (i32.add (local.get 0) (i32.const 1))) '
    '(i32.const 3)))) (local.get 0)': -2,                            # two branches to the loop
    '(block (result i32) (loop (result i32) i32.const 1 i32.const 1 br_if 1 drop i32.const 2))': 0,
}


@pytest.mark.parametrize('body, extra', COUNT_CASES.items(), ids=range(len(COUNT_CASES)))
def test_instruction_count_difference(body, extra):
    """docs/images.md "Instruction counts", row by row."""
    counts = []
    for rt in RUNTIMES:
        store, inst = instance(f'(module (func (export "f") (result i32) {body}))', rt)
        ex = store.new_executor()
        ex.start(inst.exports['f'][1], [])
        assert ex.run() is True
        counts.append(ex.steps)
    assert counts[1] - counts[0] == extra, counts


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_image_funcref_out_of_range_is_refused(runtime):
    """Found by the images campaign: a funcref cell naming no function of
    the module reached WAMR's loader (IndexError)."""
    from engine.migrate import checkpoint
    from engine.migrate.images import ImageError
    from engine.migrate.translate import translate
    text = '''(module (func $g) (elem declare func $g)
      (func (export "f") (local funcref) (local i32)
        (local.set 0 (ref.func $g))
        (loop (local.set 1 (i32.add (local.get 1) (i32.const 1)))
              (br_if 0 (i32.lt_u (local.get 1) (i32.const 50))))))'''
    data, _, images = _stopped(runtime, text, 40)
    assert images.frames[0].cells[0] == 0          # local 0 holds function 0 ($g)
    images.frames[0].cells[0] = 128
    for model in RUNTIMES:
        fresh = embedding.store_init(model)
        inst2 = embedding.module_instantiate(fresh, embedding.module_decode(data), [],
                                             run_start=False)
        with pytest.raises(ImageError, match='stack1.img: slot 0: function index 128 out of '
                                             'range'):
            checkpoint.restore(fresh, inst2, images if model == runtime else
                               translate(images, inst2.module, inst2.info, model))
