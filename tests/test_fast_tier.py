"""The compiled tier (engine/exec/fast_wasmedge.py, engine/exec/compile.py) against the
WasmEdge-model interpreter: stopped at ANY step count N it holds exactly the
interpreter's state (pc, stack, frames, steps, globals, memory, tables),
resumes to the same end, traps identically, and resumes from restored
image sets."""

import random
import re

import pytest
import wasmtime

from engine.migrate import checkpoint, images as im
from engine import embedding
from engine import limits as L
from engine.errors import Trap, UncaughtException
from engine.exec import exceptions
from engine.exec.fast_wasmedge import FastExecutor
from fuzz import gen, linked, oracle

M32 = 0xFFFFFFFF
F64 = {x: __import__('struct').unpack('<Q', __import__('struct').pack('<d', float(x)))[0]
       for x in ('0', '-0', '1', '-1', '2', '4', '9', 'inf', '-inf', 'nan')}


def setup(wasm, entry, args, tier, limits=None, model='wasmedge'):
    store = embedding.store_init(model, limits, tier)
    module = linked.decoded(wasm)
    inst = embedding.module_instantiate(store, module, linked.imports_for(store, module, wasm))
    addr = inst.exports[entry][1]
    ex = store.new_executor()
    ex.start(addr, list(args))
    return store, inst, ex


def state(store, inst, ex, trapped=False):
    """Everything a stop exposes (after a trap the operand stack is not part
    of the contract: the run is over)."""
    mem = bytes(store.mems[inst.memaddrs[0]].data) if inst.memaddrs else None
    if ex.model == 'wamr':
        frames = [(f.func, f.ip, f.lp, list(f.labels)) for f in ex.frames]
    else:
        frames = [(f.func, f.from_pc, f.locals, f.arity, f.vpos) for f in ex.frames]
    return dict(pc=ex.pc, steps=ex.steps, finished=ex.finished,
                stack=None if trapped else list(ex.stack), frames=frames, results=ex.results,
                globals=[store.globals[a].value for a in inst.globaladdrs], memory=mem,
                tables=[list(store.tables[a].elem) for a in inst.tableaddrs])


def same(ra, rb):
    """Two runs' ``outcome``s agree: GC objects by structure and sharing
    (``oracle.structural``), since the two stores' objects are never the
    same Python objects; every other value by ==."""
    return oracle.structural(ra) == oracle.structural(rb)


def run(ex, n):
    """(finished, trap message or None)."""
    try:
        return ex.run(n), None
    except Trap as e:
        return True, e.message
    except UncaughtException as e:                # ends the run too (tag and fields)
        return True, str(e)


def outcome(store, inst, ex, n):
    done, trap = run(ex, n)
    return done, trap, state(store, inst, ex, trap is not None)


def length(wasm, entry, args, model='wasmedge'):
    store, inst, ex = setup(wasm, entry, args, 'interp', model=model)
    run(ex, None)
    return ex.steps


def check_every_stop(wasm, entry, args, points, model='wasmedge', saved=None):
    """For every N in ``points``: the two tiers stopped at N are identical,
    and so are they after running on to the end.  ``saved(a, b)``, when
    given, checks the two stopped runs further (their checkpoints)."""
    for n in points:
        a = setup(wasm, entry, args, 'interp', model=model)
        b = setup(wasm, entry, args, 'fast', model=model)
        assert b[2].tier == 'fast' and b[2].model == model
        ra, rb = outcome(*a, n), outcome(*b, n)
        assert same(ra, rb), f'stop at N={n}'
        if saved is not None and not ra[0]:
            saved(a, b)
        if not ra[0]:
            ra, rb = outcome(*a, None), outcome(*b, None)
            assert same(ra, rb), f'resumed after N={n}'


def check_chunked(wasm, entry, args, sizes, seed=0, model='wasmedge'):
    """Resuming the compiled tier many times (each stop hands it over to the
    interpreter mid-function) against the interpreter run the same way."""
    rnd = random.Random(seed)
    a = setup(wasm, entry, args, 'interp', model=model)
    b = setup(wasm, entry, args, 'fast', model=model)
    while True:
        k = rnd.choice(sizes)
        ra, rb = outcome(*a, k), outcome(*b, k)
        assert same(ra, rb), f'chunk ending at {a[2].steps}'
        if ra[0]:
            return


def points_for(total, limit=100):
    """Every N of a short run; else the first 25, the last 12 and a
    random spread."""
    if total + 2 <= limit:
        return range(total + 2)
    rnd = random.Random(total)
    pts = set(range(25)) | set(range(total - 10, total + 2))
    pts |= set(rnd.sample(range(total), max(0, min(total, limit - len(pts)))))
    return sorted(pts)


WAT = r'''
(module
  (type $ii (func (param i32) (result i32)))
  (memory (export "mem") 1 3)
  (table 4 funcref)
  (elem (i32.const 0) $twice $next)
  (global $g (mut i32) (i32.const 7))
  (func $twice (type $ii) (i32.shl (local.get 0) (i32.const 1)))
  (func $next (type $ii) (i32.add (local.get 0) (i32.const 3)))
  (func (export "mix") (param i32) (result i32) (local i32 i64 f64)
    (block $out
      (loop $l
        (br_if $out (i32.eqz (local.get 0)))
        (i32.store (i32.mul (local.get 0) (i32.const 4)) (local.get 0))
        (local.set 1 (i32.add (local.get 1)
          (call_indirect (type $ii) (local.get 0) (i32.and (local.get 0) (i32.const 1)))))
        (local.set 2 (i64.add (local.get 2) (i64.load32_u (i32.mul (local.get 0) (i32.const 4)))))
        (local.set 3 (f64.add (local.get 3) (f64.convert_i32_u (local.get 0))))
        (global.set $g (i32.add (global.get $g) (i32.const 1)))
        (if (i32.and (local.get 0) (i32.const 2))
          (then (local.set 1 (i32.xor (local.get 1) (i32.const 0x55))))
          (else (local.set 1 (i32.rotl (local.get 1) (i32.const 3)))))
        (br_table 0 0 1 (i32.const 0) (local.tee 0 (i32.sub (local.get 0) (i32.const 1))))
        ))
    (i32.add (local.get 1) (i32.add (i32.wrap_i64 (local.get 2))
                                    (i32.trunc_f64_u (local.get 3)))))
  (func (export "trap") (param i32) (result i32)
    (i32.store (i32.const 0) (i32.const 9))
    (i32.div_u (i32.const 10) (call $deep (local.get 0))))
  (func (export "oob") (param i32) (result i32)
    (i32.load (i32.add (local.get 0) (i32.const 65534))))
  (func $deep (export "deep") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0))
      (else (i32.add (i32.const 1) (call $deep (i32.sub (local.get 0) (i32.const 1)))))))
  (func (export "fill") (param i32)
    (loop $l
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (i32.store8 offset=8192 (local.get 0) (local.get 0))
      (br_if $l (local.get 0)))
    (memory.fill (i32.const 40000) (i32.const 7) (i32.const 9000)))
  (func $runaway (export "runaway") (call $runaway))
  (func (export "floats") (param f64) (result i64 f64) (local f64 f64)
    ;; float-domain fusion: NaN payloads, -0, infinities, comparisons
    (local.set 1 (f64.add (f64.mul (local.get 0) (f64.const nan:0x8000000000004))
                          (f64.const -0)))
    (local.set 2 (f64.sub (f64.neg (local.get 0)) (f64.const inf)))
    (if (f64.gt (local.get 1) (local.get 2))
      (then (local.set 2 (f64.abs (local.get 1)))))
    (i64.reinterpret_f64 (f64.add (local.get 1) (local.get 2)))
    (f64.mul (f64.convert_i32_s (i32.const -3)) (local.tee 1 (f64.neg (local.get 0)))))
  (func (export "scan") (param i32) (result i32) (local i32)
    (loop $l
      (local.set 1 (i32.add (local.get 1) (i32.load8_u offset=65530 (local.get 0))))
      (local.set 0 (i32.add (local.get 0) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get 0) (i32.const 100))))
    (local.get 1))
  (func (export "bigexpr") (param i32) (result i32) (local i32)
    ;; an expression too big to fuse, materialised inside an inlined branch
    (if (local.get 0) (then
      (local.set 1 (i32.mul (i32.add (i32.add (i32.add (i32.add (i32.add (i32.add
        (i32.add (local.get 0) (i32.const 1)) (i32.const 2)) (i32.const 3)) (i32.const 4))
        (i32.const 5)) (i32.const 6)) (i32.const 7)) (local.get 0)))))
    (i32.add (local.get 1) (i32.const 1)))
  (func (export "unreach") (param i32) (result i32)
    (if (local.get 0) (then (nop) (drop (i32.const 1)) (unreachable)))
    (i32.const 2))
  (func (export "ifelse") (param i32) (result i32)
    (if (result i32) (local.get 0) (then (i32.const 1)) (else (i32.const 2))))
  (func (export "fdiv") (param f64 f64) (result i64 i64 i64 i32)
    ;; f64.div and f64.sqrt in the float domain: x / 0, -0 divisors, NaNs,
    ;; infinities, negative square roots, a loaded operand
    (f64.store (i32.const 64) (local.get 1))
    (i64.reinterpret_f64 (f64.div (f64.add (local.get 0) (f64.const 1))
                                  (f64.mul (f64.load (i32.const 64)) (f64.const 2))))
    (i64.reinterpret_f64 (f64.sqrt (f64.sub (local.get 0) (local.get 1))))
    (i64.reinterpret_f64 (f64.div (f64.sqrt (local.get 0)) (f64.neg (local.get 1))))
    (f64.gt (f64.div (local.get 0) (local.get 1)) (f64.const 1)))
  (func (export "modchain") (param i32 i64) (result i32)
    ;; sums, differences, products and left shifts wrapped once at the end of
    ;; a chain (negative on the way), shift counts out of range, narrow
    ;; stores and a wrap reading the chain's low bits
    (i32.store8 offset=100 (i32.const 0) (i32.sub (i32.mul (local.get 0) (i32.const -3))
                                                  (i32.const 1000)))
    (i32.store16 offset=200 (i32.const 0) (i32.shl (i32.sub (i32.const 0) (local.get 0))
                                                   (i32.const 33)))
    (i64.store32 offset=300 (i32.const 0) (i64.mul (i64.sub (i64.const 0) (local.get 1))
                                                   (local.get 1)))
    (i32.add
      (i32.add (i32.wrap_i64 (i64.sub (i64.mul (local.get 1) (i64.const 0x9E3779B97F4A7C15))
                                      (i64.const 5)))
               (i32.shr_u (i32.sub (i32.const 1) (local.get 0))
                          (i32.sub (i32.const 0) (i32.const 29))))
      (i32.add (i32.load offset=100 (i32.const 0))
               (i32.add (i32.load offset=200 (i32.const 0)) (i32.load offset=300 (i32.const 0))))))
  (func (export "fbits") (param i64 i64 i32) (result i64 i64 i64 i64 i64 i64)
    (local f64 f64 f64)
    ;; f64 locals and loaded operands held as Python floats: NaN payloads,
    ;; -0 and infinities through loads, local copies, tees, stores, a call
    ;; with a loaded operand below it, and a loop stopped anywhere
    (i64.store (i32.const 128) (local.get 0))
    (i64.store (i32.const 136) (local.get 1))
    (local.set 3 (f64.load (i32.const 128)))
    (local.set 4 (local.get 3))
    (local.set 5 (f64.add (f64.load (i32.const 136)) (local.get 4)))
    (f64.store (i32.const 144) (f64.mul (local.get 5) (f64.const -1)))
    (f64.store (i32.const 152) (local.get 4))
    (f64.store (i32.const 160) (f64.load (i32.const 136)))
    (loop $l
      (local.set 4 (f64.sub (local.tee 3 (f64.mul (local.get 4) (f64.load (i32.const 136))))
                            (local.get 5)))
      (local.set 5 (f64.div (local.get 5) (f64.load (i32.const 128))))
      (br_if $l (local.tee 2 (i32.sub (local.get 2) (i32.const 1)))))
    (i64.load (i32.const 144)) (i64.load (i32.const 152)) (i64.load (i32.const 160))
    (i64.reinterpret_f64 (local.get 4))
    (i64.reinterpret_f64 (block (result f64) (f64.load (i32.const 136))
                                (drop (call $twice (i32.const 1)))))
    (i64.reinterpret_f64 (f64.add (local.get 3) (local.get 5))))
)
'''
# bit patterns for "fbits": a signalling NaN with a payload, a negative quiet
# NaN with one, -0, infinities, ordinary values
FBITS = [(0x7FF0000000000004, F64['1']), (F64['-0'], F64['-0']), (F64['inf'], F64['-inf']),
         (0xFFF8000000000123, 0x4004000000000000), (0x3FF8000000000000, 0x7FF4000000000000),
         (F64['2'], F64['9']), (F64['-1'], F64['0'])]


@pytest.fixture(scope='module')
def wasm():
    return wasmtime.wat2wasm(WAT)


@pytest.mark.parametrize('entry,args', [
    ('mix', [9]), ('trap', [0]),
    ('trap', [4]), ('oob', [0]), ('oob', [2]), ('deep', [30]), ('ifelse', [0]),
    ('ifelse', [1]), ('unreach', [0]), ('unreach', [1]), ('bigexpr', [0]), ('bigexpr', [3]), ('fill', [30]), ('scan', [0]), ('scan', [90]), ('floats', [0x7FF0000000000001]), ('floats', [0x8000000000000000]),
    ('floats', [0x4000000000000000]), ('modchain', [5, 7]), ('modchain', [M32, (1 << 64) - 1])] + [
        ('fdiv', [F64[x], F64[y]]) for x, y in (
            ('1', '0'), ('-1', '0'), ('0', '0'), ('1', '-0'), ('-0', '-0'), ('inf', 'inf'),
            ('-inf', '0'), ('nan', '1'), ('4', '2'), ('-1', 'nan'), ('9', '-inf'))] + [
        ('fbits', [x, y, 3]) for x, y in FBITS])
def test_every_stop_of_handwritten_functions(wasm, entry, args):
    check_every_stop(wasm, entry, args, points_for(length(wasm, entry, args)))


@pytest.mark.parametrize('entry,args', [
    ('fac', [10]), ('fib', [8]), ('sum', [20]), ('multi', [0]), ('multi', [3]), ('swap', [1, 2]),
    ('brtable', [0]), ('brtable', [2]), ('brtable', [9]), ('indirect', [0, 5]),
    ('indirect', [1, 5]), ('indirect', [3, 5]), ('indirect', [9, 5]),
    ('memops', [8, 0x12345678]), ('grow', [1]), ('grow', [5]), ('size', []), ('load', [65534]),
    ('div', [7, 2]), ('div', [7, 0]), ('div', [0x80000000, M32]), ('glob', [3]),
    ('select', [0]), ('select', [1]), ('ifelse', [0]), ('ifelse', [7]), ('unreachable', []),
    ('bulk', [])])
def test_every_stop_of_the_interpreters_test_module(entry, args):
    from test_exec_wasmedge import WAT as EXEC_WAT
    wasm = wasmtime.wat2wasm(EXEC_WAT)
    check_every_stop(wasm, entry, args, points_for(length(wasm, entry, args)))


@pytest.mark.parametrize('sizes', [(1,), (1, 2, 3), (2, 5, 17), (40, 200)])
def test_many_resumes(wasm, sizes):
    check_chunked(wasm, 'mix', [40], sizes)
    check_chunked(wasm, 'deep', [60], sizes)
    check_chunked(wasm, 'fill', [300], sizes)
    check_chunked(wasm, 'scan', [0], sizes)


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
@pytest.mark.parametrize('batch', [1, 3])
def test_a_batched_loop_entered_again_after_its_batch(wasm, model, batch, monkeypatch):
    """A batched loop's entry covers at most compile.BATCH turns (a fresh
    iterator over bytes when the budget covers them all, a ``repeat`` of
    the turns it covers when not): with a batch of 1 or 3 turns, every
    stop in loops of 30 and more turns (a store's span, an exit by br_if
    and one by return) is the interpreter's, and so is the run on to the
    end."""
    from engine.exec import compile as C
    monkeypatch.setattr(C, 'BATCH', batch)
    for entry, args in (('fill', [30]), ('scan', [0]), ('scan', [90])):
        store, inst, ex = setup(wasm, entry, args, 'fast', model=model)
        assert 'for _ in BI:' in C.compiled(store, inst.exports[entry][1], model).source
        check_every_stop(wasm, entry, args, points_for(length(wasm, entry, args, model), 150),
                         model=model)


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
@pytest.mark.parametrize('chunk', [1, 3, 17])
def test_a_run_longer_than_one_turn_is_the_same_run(wasm, model, chunk, monkeypatch):
    """A run takes at most exceptions.CHUNK steps per turn of its loop (a
    one-digit budget); turns ending anywhere, in either tier, change
    nothing: the same end state and count, and a budget stops where it
    stops in one turn."""
    for entry, args in (('mix', [40]), ('deep', [60]), ('fill', [300]), ('scan', [0]), ('trap', [4])):
        want = outcome(*setup(wasm, entry, args, 'interp', model=model), None)
        half = want[2]['steps'] // 2
        stopped = outcome(*setup(wasm, entry, args, 'interp', model=model), half)
        assert not stopped[0] and stopped[2]['steps'] >= half
        with monkeypatch.context() as m:
            m.setattr(exceptions, 'CHUNK', chunk)
            for tier in ('interp', 'fast'):
                assert same(outcome(*setup(wasm, entry, args, tier, model=model), None), want), \
                    (entry, tier)
                assert same(outcome(*setup(wasm, entry, args, tier, model=model), half), stopped), \
                    (entry, tier)


def test_results_and_traps_match_wasmtime(wasm):
    """Independent truth: wasmtime runs the same module."""
    check_against_wasmtime(wasm, 'wasmedge')


def check_against_wasmtime(wasm, model):
    """The compiled tier of ``model`` on WAT's functions: results and traps
    as wasmtime's."""
    wt_store = wasmtime.Store()
    wt = wasmtime.Instance(wt_store, wasmtime.Module(wt_store.engine, wasm), [])

    def call(name, *args):
        r = wt.exports(wt_store)[name](wt_store, *args)
        return list(r) if isinstance(r, (list, tuple)) else [r]
    for entry, args in (('mix', [3]), ('mix', [40]), ('deep', [500]), ('bigexpr', [5]),
                        ('modchain', [5, 7]), ('modchain', [123456, 99])):
        store, inst, ex = setup(wasm, entry, args, 'fast', model=model)
        assert ex.run()
        assert [v - (1 << 32) if v >= 1 << 31 else v for v in ex.results] == call(entry, *args)
    for entry, args, message in (('trap', [0], 'integer divide by zero'),
                                 ('oob', [2], 'out of bounds memory access'),
                                 ('scan', [0], 'out of bounds memory access')):
        store, inst, ex = setup(wasm, entry, args, 'fast', model=model)
        with pytest.raises(Trap, match=message):
            ex.run()
        with pytest.raises(wasmtime.Trap):
            call(entry, *args)


def test_call_depth_and_stack_exhaustion_like_the_interpreter(wasm):
    check_exhaustion(wasm, 'wasmedge')


def check_exhaustion(wasm, model):
    """Call depth limits and runaway recursion end both tiers of ``model``
    at the same instruction, with the same frames."""
    for entry, depth in (('deep', 5), ('deep', 17), ('deep', 1600), ('deep', 3300),
                         ('runaway', 9), ('runaway', 4000)):
        check_depth_limits(wasm, entry, [4000] if entry == 'deep' else [], [depth], model)


def check_depth_limits(wasm, entry, args, depths, model='wasmedge'):
    """Each call depth limit of ``depths`` ends both tiers at the same
    instruction, with the same frames."""
    for depth in depths:
        lim = L.with_options(max_call_depth=depth)
        got = []
        for tier in ('interp', 'fast'):
            store, inst, ex = setup(wasm, entry, args, tier, lim, model=model)
            with pytest.raises(Trap, match='call stack exhausted'):
                ex.run()
            got.append((ex.steps, ex.pc, len(ex.frames), state(store, inst, ex, True)['frames']))
        assert got[0] == got[1], depth


def test_store_marks_dirty_chunks(wasm):
    store, inst, ex = setup(wasm, 'fill', [5000], 'fast')
    mi = store.mems[inst.memaddrs[0]]
    mi.dirty[:] = bytes(len(mi.dirty))
    ex.run()
    # bytes 8192..13191 (chunks 2, 3), then 40000..48999 (chunks 9..11)
    assert [i for i, f in enumerate(mi.dirty) if f] == [2, 3, 9, 10, 11]


CROSSING_WAT = """(module (memory 2)
  (func (export "store") (param $op i32) (param $ea i32)
    (block (block (block (block (block (block (block
      (br_table 0 1 2 3 4 5 6 (local.get $op)))
      (i32.store16 (local.get $ea) (i32.const 0x0101)) (return))
      (i32.store (local.get $ea) (i32.const 0x01010101)) (return))
      (i64.store (local.get $ea) (i64.const 0x0101010101010101)) (return))
      (f32.store (local.get $ea) (f32.const 1)) (return))
      (f64.store (local.get $ea) (f64.const 1)) (return))
      (i64.store32 offset=4 (local.get $ea) (i64.const 0x01010101)) (return))
    (f64.store (local.get $ea) (f64.const nan:0x1)))
  (func (export "static")
    (i64.store (i32.const 4092) (i64.const -1))           ;; 4092..4099: chunks 0, 1
    (i32.store (i32.const 8188) (i32.const -1))           ;; 8188..8191: chunk 1
    (i32.store16 offset=12280 (i32.const 7) (i32.const -1))))  ;; 12287..12288: chunks 2, 3
"""


@pytest.mark.parametrize('model', ('wasmedge', 'wamr'))
def test_a_store_marks_the_chunk_of_its_last_byte_exactly_when_it_crosses_into_it(model):
    """Every width, at each address from 16 bytes before a 4 KiB chunk
    boundary to the boundary: the compiled tier flags the chunk the store
    starts in and the next one exactly when its last byte lies there (the
    generated code tests for the crossing instead of flagging twice)."""
    wasm = wasmtime.wat2wasm(CROSSING_WAT)
    widths = (2, 4, 8, 4, 8, 4, 8)
    for op, w in enumerate(widths):
        start = 4 if op == 5 else 0               # offset=4: the first byte is ea + 4
        for ea in range(4096 - 16 - start, 4097 - start):
            got = []
            for tier in ('interp', 'fast'):
                store, inst, ex = setup(wasm, 'store', [op, ea], tier, model=model)
                mi = store.mems[inst.memaddrs[0]]
                mi.dirty[:] = bytes(len(mi.dirty))
                ex.run()
                got.append([i for i, f in enumerate(mi.dirty) if f])
            first = ea + start
            want = [0, 1] if first < 4096 < first + w else [first >> 12]
            assert got == [want, want], (op, ea)
    got = []
    for tier in ('interp', 'fast'):                   # constant addresses: folded
        store, inst, ex = setup(wasm, 'static', [], tier, model=model)
        mi = store.mems[inst.memaddrs[0]]
        mi.dirty[:] = bytes(len(mi.dirty))
        ex.run()
        got.append([i for i, f in enumerate(mi.dirty) if f])
    assert got == [[0, 1, 2, 3]] * 2


LANE_WAT = """(module (memory 1)
  (func (export "lanes") (result i64)
    (v128.store8_lane 15 (i32.const 65535) (v128.const i8x16 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0x11))
    (v128.store16_lane 7 (i32.const 65532) (v128.const i16x8 0 0 0 0 0 0 0 0x2233))
    (v128.store32_lane 3 (i32.const 65528) (v128.const i32x4 0 0 0 0x44556677))
    (v128.store64_lane 1 (i32.const 65520) (v128.const i64x2 0 0x0102030405060708))
    (v128.store32_lane 0 (i32.const 65534) (v128.const i32x4 1 0 0 0))
    (i64.const 0)))"""


def test_a_vector_lane_store_at_the_end_of_memory():
    """A lane store of the last 1, 2, 4, 8 bytes stores just those (the
    dirty mark covers the lane, not 16 bytes: found by the campaign as a
    fast-tier trap that the interpreter does not raise); the last one runs
    past the end and traps in both tiers after the same instructions."""
    got = []
    for tier in ('interp', 'fast'):
        store, inst, ex = setup(wasmtime.wat2wasm(LANE_WAT), 'lanes', [], tier)
        mi = store.mems[inst.memaddrs[0]]
        with pytest.raises(Trap, match='out of bounds memory access'):
            ex.run()
        assert bytes(mi.data[65520:]) == bytes.fromhex('0807060504030201') + bytes.fromhex(
            '77665544') + bytes.fromhex('33220011')
        assert mi.dirty[15] == 1
        got.append((ex.steps, ex.pc))
    assert got[0] == got[1] == (15, 15)       # 4 stores of 3 instructions, then 3


def test_resume_from_restored_image_set(wasm, tmp_path):
    """A set saved by the interpreter at every few steps, restored into a
    fast store, runs to the interpreter's end; and the compiled tier's own
    checkpoints equal the interpreter's."""
    total = length(wasm, 'mix', [12])
    ref = setup(wasm, 'mix', [12], 'interp')
    run(ref[2], None)
    final = state(*ref)
    sha = im.module_sha256(wasm)
    for n in range(0, total, 37):
        a = setup(wasm, 'mix', [12], 'interp')
        b = setup(wasm, 'mix', [12], 'fast')
        run(a[2], n)
        run(b[2], n)
        sa = checkpoint.save(a[2], a[1], sha)
        sb = checkpoint.save(b[2], b[1], sha)
        im.write_images(sa, tmp_path / f'a{n}')
        im.write_images(sb, tmp_path / f'b{n}')
        for name in sorted(p.name for p in (tmp_path / f'a{n}').iterdir()):
            assert (tmp_path / f'a{n}' / name).read_bytes() == \
                (tmp_path / f'b{n}' / name).read_bytes(), (n, name)
        store = embedding.store_init('wasmedge', None, 'fast')
        inst = embedding.module_instantiate(store, linked.decoded(wasm), [], run_start=False)
        ex = checkpoint.restore(store, inst, im.read_images(tmp_path / f'a{n}'))
        assert isinstance(ex, FastExecutor)
        assert run(ex, None) == (True, None)
        got = state(store, inst, ex)
        assert (got['results'], got['steps'], got['memory'], got['globals']) == \
            (final['results'], final['steps'], final['memory'], final['globals'])


def _generated(seeds):
    for seed in seeds:
        gm = gen.from_seed(seed)
        for args in gm.args[:2]:
            yield seed, gm, args


@pytest.mark.parametrize("block", range(2))
def test_every_stop_of_generated_modules(block):
    """The migration campaign's generator: for each module, every N (all of
    them for short runs, 45 spread over the run otherwise), and a run
    resumed many times."""
    for seed, gm, args in _generated(range(block * 5, block * 5 + 5)):
        total = length(gm.wasm, gm.entry, args)
        check_every_stop(gm.wasm, gm.entry, args, points_for(total, 45))
        check_chunked(gm.wasm, gm.entry, args, (1, 3, 8, 50), seed)



def test_float_domain_division_and_square_root_by_hand(wasm):
    """IEEE by hand: x / ±0 is a signed infinity, -0 - -0 = +0, and both
    tiers give these bits ("fdiv" returns (x + 1) / (2y), sqrt(x - y),
    sqrt(x) / -y, x / y > 1; None: a NaN, not compared here)."""
    import math
    import struct

    def bits(v):
        return struct.unpack('<Q', struct.pack('<d', v))[0]
    inf, ninf = bits(math.inf), bits(-math.inf)
    cases = {('1', '0'): [inf, bits(1.0), ninf, 1],
             ('1', '-0'): [ninf, bits(1.0), inf, 0],
             ('-0', '-0'): [ninf, bits(0.0), None, 0],
             ('4', '2'): [bits(1.25), bits(math.sqrt(2.0)), bits(-1.0), 1]}
    for (x, y), want in cases.items():
        for tier in ('fast', 'interp'):
            store, inst, ex = setup(wasm, 'fdiv', [F64[x], F64[y]], tier)
            assert ex.run()
            got = [None if w is None else g for g, w in zip(ex.results, want)]
            assert got == want, (x, y, tier, [hex(v) for v in ex.results])


# ------------------------------------------------ generated float/dispatch modules

FPATTERNS = [0x7FF4000000000001, 0xFFF8000000000123, 0x7FF8000000000000, F64['-0'], F64['0'],
             F64['inf'], F64['-inf'], 0x3FF8000000000000, 0xC012000000000000, 0x0000000000000001]


def float_dispatch_module(seed):
    """A random module for the property test: a loop whose body dispatches
    with ``br_table`` to 9-14 blocks (so the compiled dispatch is a search
    tree), each block a random mix of f64 work on locals (held as floats),
    f64 loads/stores of NaN payloads, -0 and infinities, a call, branches
    and integer mixing of the floats' bits; the result folds all of it."""
    rnd = random.Random(seed)
    K = rnd.randint(9, 14)
    F = ['$a', '$b', '$c']

    def fx():
        k = rnd.randrange(5)
        if k == 0:
            return f'(local.get {rnd.choice(F)})'
        if k == 1:
            return f'(f64.load (i32.const {8 * rnd.randrange(len(FPATTERNS))}))'
        if k == 2:
            return f'(f64.const {rnd.choice(["1.5", "-0", "0", "inf", "-2.25", "nan:0x1234"])})'
        if k == 3:
            return f'(f64.convert_i64_s (local.get $i))'
        return f'(call $h {f"(local.get {rnd.choice(F)})"})'

    def stmt():
        k = rnd.randrange(9)
        x = rnd.choice(F)
        op = rnd.choice(['add', 'sub', 'mul', 'div', 'min', 'max', 'copysign'])
        if k == 0:
            return f'(local.set {x} (f64.{op} {fx()} {fx()}))'
        if k == 1:
            return (f'(f64.store (i32.const {8 * rnd.randrange(len(FPATTERNS))}) '
                    f'(f64.{op} {fx()} {fx()}))')
        if k == 2:
            return f'(local.set {x} (local.get {rnd.choice(F)}))'
        if k == 3:
            return f'(local.set {x} (f64.{rnd.choice(["sqrt", "neg", "abs", "floor"])} {fx()}))'
        if k == 4:
            return f'(local.set $i (i64.add (local.get $i) (i64.reinterpret_f64 {fx()})))'
        if k == 5:
            return (f'(if (f64.{rnd.choice(["lt", "ge", "eq", "ne"])} {fx()} {fx()}) '
                    f'(then (local.set {x} (f64.mul {fx()} (f64.const 3)))))')
        if k == 6:
            return f'(local.set {x} (local.tee {rnd.choice(F)} (f64.add {fx()} {fx()})))'
        if k == 7:
            return f'(local.set {x} (f64.const {rnd.choice(["-0", "0.5", "1e300", "5e-324"])}))'
        return f'(drop (f64.add {fx()} (local.get {x})))'

    cases = []
    for j in range(K):
        body = ' '.join(stmt() for _ in range(rnd.randint(1, 4)))
        exit_ = '(br $top)' if rnd.random() < 0.8 else '(br $out)'
        cases.append((j, body, exit_))
    inner = f'(br_table {" ".join(str(j) for j in range(K))} (i32.rem_u (local.get $n) (i32.const {K})))'
    for j, body, exit_ in cases:
        inner = f'(block {inner}) {body} (local.set $n (i32.sub (local.get $n) (i32.const 1))) ' \
                f'(br_if $out (i32.eqz (local.get $n))) {exit_}'
    data = ''.join(''.join(f'\\{b:02x}' for b in x.to_bytes(8, 'little')) for x in FPATTERNS)
    return f'''(module (memory 1) (data (i32.const 0) "{data}")
  (func $h (param f64) (result f64) (f64.sub (local.get 0) (f64.const 0.5)))
  (func (export "run") (param $n i32) (param $i i64) (result i64) (local $a f64) (local $b f64)
    (local $c f64)
    (local.set $a (f64.load (i32.const 0)))
    (block $out (loop $top {inner}))
    (i64.xor (local.get $i) (i64.xor (i64.reinterpret_f64 (local.get $a))
      (i64.xor (i64.reinterpret_f64 (local.get $b)) (i64.reinterpret_f64 (local.get $c)))))))'''


@pytest.mark.parametrize('seed', range(6))
def test_every_stop_of_generated_float_dispatch_modules(seed, model='wasmedge'):
    """Property: for every N (all of a short run, else a spread), a stop in
    the compiled tier lands on the interpreter's instruction with its
    state, f64 locals as bits; the module's function is compiled with a
    dispatch tree and float-domain locals."""
    from engine.exec.compile import compiled
    wasm = wasmtime.wat2wasm(float_dispatch_module(seed))
    for args in ([5, 0], [23, 7]):
        total = length(wasm, 'run', args, model)
        check_every_stop(wasm, 'run', args, points_for(total, 70), model)
        check_chunked(wasm, 'run', args, (1, 4, 9, 31), seed, model)
    store, inst, ex = setup(wasm, 'run', [3, 0], 'fast', model=model)
    ex.run()
    src = compiled(store, inst.exports['run'][1], model).source
    assert 'if b < ' in src and 'FB(f' in src


def tiering_module():
    """``big`` is longer than COLD_SIZE (runs interpreted until hot), called
    directly and through a table from a small compiled loop."""
    from engine.exec.compile import COLD_SIZE
    steps = ' '.join(f'(local.set 1 (i32.add (i32.mul (local.get 1) (i32.const {k * 2 + 3})) '
                     f'(local.get 0)))' for k in range(COLD_SIZE // 5 + 1))
    return f'''(module (type $t (func (param i32) (result i32))) (table 1 funcref)
  (elem (i32.const 0) $big)
  (func $big (type $t) (local i32)
    (local.set 1 (local.get 0))
    (loop $l {steps}
      (br_if $l (local.tee 0 (i32.and (i32.sub (local.get 0) (i32.const 1)) (i32.const 3)))))
    (local.get 1))
  (func (export "run") (param i32) (result i32) (local i32)
    (loop $l
      (local.set 1 (i32.xor (local.get 1) (call $big (local.get 0))))
      (local.set 1 (i32.add (local.get 1) (call_indirect (type $t) (local.get 0) (i32.const 0))))
      (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))
    (local.get 1)))'''


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
def test_a_big_function_runs_interpreted_until_hot(model):
    """Tiering: a function longer than COLD_SIZE is compiled only after
    HOT_STEPS * L // COLD_SIZE entries; until then its calls (direct, indirect)
    are left to the interpreter.  Stops at any N are the interpreter's, and
    the function is compiled by the end of a long run, not after one call."""
    from engine.exec.compile import CACHE, COLD_SIZE, HOT_STEPS
    wasm = wasmtime.wat2wasm(tiering_module())
    store, inst, ex = setup(wasm, 'run', [40], 'fast', model=model)
    big = store.funcs[inst.funcaddrs[0]]
    assert len(big.code.body) > COLD_SIZE
    ex.run(length(wasm, 'run', [1], model) - 3)         # one pass of the caller's loop
    assert CACHE[model] not in big.cache and big.cache['entries:' + CACHE[model]] >= 2
    ex.run()
    assert CACHE[model] in big.cache
    assert big.cache['entries:' + CACHE[model]] == HOT_STEPS * len(big.code.body) // COLD_SIZE
    total = length(wasm, 'run', [40], model)
    check_every_stop(wasm, 'run', [40], points_for(total, 60), model)
    check_chunked(wasm, 'run', [40], (1, 7, 300, 5000), 3, model)


PRECHARGED = '''(module (type $ii (func (param i32) (result i32))) (table 3 funcref)
  (elem (i32.const 0) $inc $sq)
  (func $inc (type $ii) (i32.add (local.get 0) (i32.const 1)))
  (func $sq (type $ii) (i32.mul (local.get 0) (local.get 0)))
  (tag $e)
  (func $slow (type $ii)       ;; throws: runs in the interpreter (Reenter at the call)
    (if (i32.eq (local.get 0) (i32.const 999)) (then (throw $e)))
    (i32.add (local.get 0) (i32.const 2)))
  (func (export "chain") (param i32 i32) (result i32)
    ;; each call's continuation is charged before the first call: stops in
    ;; the callees, a callee left to the interpreter, an uninitialised or
    ;; undefined element, a division by zero
    (i32.div_u
      (call_indirect (type $ii) (call $slow (call $sq (call $inc (local.get 0))))
                     (local.get 1))
      (call $inc (i32.sub (local.get 0) (i32.const 3)))))
  (func $none)
  (func (export "calls") (param i32) (result i32)
    ;; charged-ahead calls up to a leader (the if's end), then a new region
    (if (local.get 0) (then (call $none) (call $none) (call $none)))
    (call $inc (local.get 0)))
  (func (export "tail") (param i32) (result i32)
    ;; the code after the if (a division by zero for -1) charged ahead too
    (i32.div_u (i32.const 100)
      (if (result i32) (local.get 0) (then (call $inc (local.get 0))) (else (i32.const 1)))))
  (func $rec (export "rec") (param i32) (result i32)
    ;; recursion with two calls on a path and a loop after them
    (local i32)
    (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 1))
      (else
        (local.set 1 (i32.add (call $rec (i32.sub (local.get 0) (i32.const 1)))
                              (call $inc (local.get 0))))
        (loop $l
          (local.set 1 (i32.add (local.get 1) (i32.const 3)))
          (br_if $l (i32.and (local.get 1) (i32.const 4))))
        (local.get 1)))))'''


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
def test_a_stop_in_a_callee_whose_caller_charged_ahead(model):
    """A call charges the straight code after it before it is made
    (FuncGen.precharge): a stop inside the callee, a trap or a call left to
    the interpreter after it still lands on the interpreter's instruction
    with its count and state, and so does call stack exhaustion."""
    wasm = wasmtime.wat2wasm(PRECHARGED)
    for entry, args in (('chain', [5, 0]), ('chain', [5, 1]), ('chain', [5, 2]),
                        ('chain', [5, 7]), ('chain', [2, 1]), ('calls', [0]), ('calls', [1]),
                        ('tail', [5]), ('tail', [M32]), ('rec', [3])):
        check_every_stop(wasm, entry, args, points_for(length(wasm, entry, args, model)), model)
    check_chunked(wasm, 'rec', [12], (1, 2, 5, 11, 40), 1, model)
    check_depth_limits(wasm, 'rec', [20], (3, 7, 8), model)


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
def test_a_frame_at_pc_0_that_no_call_makes_runs_as_the_interpreter_runs_it(model):
    """The compiled tier enters a frame at pc 0 by calling its function
    with the params; a frame there whose declared local is not its default
    (as a restored image set may hold) is not such a frame: both tiers
    read the local it holds."""
    wasm = wasmtime.wat2wasm('''(module (func (export "f") (param i32) (result i32) (local i32)
      (i32.add (local.get 0) (local.get 1))))''')
    got = []
    for tier in ('interp', 'fast'):
        store, inst, ex = setup(wasm, 'f', [5], tier, model=model)
        ex.stack[-1] = 7                          # the declared local (one value, one cell)
        got.append(outcome(store, inst, ex, None))
    assert got[0] == got[1] and got[0][2]['results'] == [12]


# ------------------------------------------------ wrapping at the boundaries

WRAP_WAT = '''(module
  (func (export "wrap32") (param $x i32) (param $y i32) (result i32 i32 i32 i32 i32 i32)
    (i32.add (local.get $x) (i32.const 1))
    (i32.sub (local.get $x) (i32.const 3))
    (i32.add (local.get $x) (i32.const 0xFFFFFFFF))
    (i32.xor (i32.add (local.get $x) (local.get $y)) (i32.shr_u (local.get $x) (i32.const 3)))
    (i32.and (i32.sub (local.get $x) (local.get $y)) (i32.const 0xF0F0F0F0))
    (i32.or (i32.mul (local.get $x) (i32.const 0x9E3779B9)) (i32.sub (local.get $y) (i32.const 7))))
  (func (export "wrap64") (param $x i64) (param $y i64) (result i64 i64 i64 i64 i64)
    (i64.add (local.get $x) (i64.const 1))
    (i64.sub (local.get $x) (i64.const 0x8000000000000000))
    (i64.xor (i64.add (local.get $x) (i64.mul (local.get $y) (i64.const 0x9E3779B97F4A7C15)))
             (i64.shr_u (local.get $x) (i64.const 7)))
    (i64.and (i64.sub (local.get $x) (local.get $y)) (i64.sub (local.get $y) (local.get $x)))
    (i32.wrap_i64 (i64.or (i64.sub (local.get $x) (local.get $y)) (i64.const 1)))
    (i64.extend_i32_u)))'''


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
def test_wrapping_arithmetic_at_the_boundaries_matches_wasmtime(model):
    """Sums, differences and bitwise chains wrapped once (conditional wraps
    for a variable and a constant, one mask after a bitwise op on unwrapped
    operands) give wasmtime's results at 0, 1, the sign bit and all ones."""
    wasm = wasmtime.wat2wasm(WRAP_WAT)
    wt_store = wasmtime.Store()
    wt = wasmtime.Instance(wt_store, wasmtime.Module(wt_store.engine, wasm), [])
    for entry, width in (('wrap32', 32), ('wrap64', 64)):
        m = (1 << width) - 1
        edges = [0, 1, 2, 3, 7, 1 << (width - 1), (1 << (width - 1)) - 1, m - 1, m]
        for x in edges:
            for y in edges:
                signed = [v - (1 << width) if v >> (width - 1) else v for v in (x, y)]
                want = [v & m for v in wt.exports(wt_store)[entry](wt_store, *signed)]
                for tier in ('fast', 'interp'):
                    store, inst, ex = setup(wasm, entry, [x, y], tier, model=model)
                    assert ex.run()
                    assert list(ex.results) == want, (entry, tier, hex(x), hex(y))


# each function returns x + c or x - c on a path a branch on x narrowed:
# where the path bounds x so that the result cannot wrap, the generated
# code has no wrap test (NOWRAP); elsewhere it must keep it
BOUNDS_WAT = """(module
  (func (export "lt") (param $x i32) (param $n i32) (result i32)
    (block (br_if 0 (i32.ge_u (local.get $x) (local.get $n)))
      (return (i32.add (local.get $x) (i32.const 1))))
    (i32.const 7))
  (func (export "le") (param $x i32) (param $n i32) (result i32)
    (block (br_if 0 (i32.gt_u (local.get $x) (local.get $n)))
      (return (i32.add (local.get $x) (i32.const 1))))
    (i32.const 7))
  (func (export "const") (param $x i32) (param $n i32) (result i32)
    (block (br_if 0 (i32.ge_u (local.get $x) (i32.const 10)))
      (return (i32.add (local.get $x) (i32.const 4294967286))))
    (i32.const 7))
  (func (export "past") (param $x i32) (param $n i32) (result i32)
    (block (br_if 0 (i32.ge_u (local.get $x) (i32.const 10)))
      (return (i32.add (local.get $x) (i32.const 4294967287))))
    (i32.const 7))
  (func (export "eqz") (param $x i32) (param $n i32) (result i32)
    (if (i32.eqz (local.get $x)) (then (return (i32.sub (local.get $x) (i32.const 1)))))
    (i32.sub (local.get $x) (i32.const 1)))
  (func (export "merge") (param $x i32) (param $n i32) (result i32)
    (block (br_if 0 (i32.lt_u (local.get $x) (i32.const 5)))
      (local.set $n (i32.sub (local.get $x) (i32.const 5))))
    (local.set $x (i32.sub (local.get $x) (i32.const 3)))
    (i32.xor (local.get $x) (local.get $n)))
  (func (export "lower") (param $x i32) (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (local.get $x))
      (then (i32.sub (local.get $x) (i32.const 1)))
      (else (i32.sub (local.get $n) (i32.const 1)))))
  (func (export "rewritten") (param $x i32) (param $n i32) (result i32)
    (block (br_if 0 (i32.ge_u (local.get $x) (local.get $n)))
      (local.set $x (local.get $n))
      (return (i32.add (local.get $x) (i32.const 1))))
    (i32.const 7))
  (func (export "tee") (param $x i32) (param $n i32) (result i32)
    (block (br_if 0 (i32.eqz (i32.lt_u (local.tee $x (i32.add (local.get $x) (i32.const 1)))
                                       (local.get $n))))
      (return (i32.add (local.get $x) (i32.const 1))))
    (i32.const 7))
  (func (export "lt64") (param $x i32) (param $n i32) (result i64)
    (local $y i64)
    (local.set $y (i64.sub (i64.const 0) (i64.extend_i32_u (local.get $x))))
    (block (br_if 0 (i64.ge_u (local.get $y) (i64.const -2)))
      (return (i64.add (local.get $y) (i64.const 2))))
    (i64.add (local.get $y) (i64.const 2)))
  (func (export "count") (param $x i32) (param $n i32) (result i32)
    (local $s i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $x) (local.get $n)))
      (local.set $s (i32.add (local.get $s) (local.get $x)))
      (local.set $x (i32.add (local.get $x) (i32.const 1)))
      (br $next)))
    (local.get $s)))"""
# entry -> (sums generated without a wrap test, sums with one)
NOWRAP = {'lt': ({'l0 + 1'}, set()), 'le': (set(), {'l0 + 1'}),
          'const': ({'l0 + 4294967286'}, set()), 'past': (set(), {'l0 + 4294967287'}),
          'eqz': ({'l0 - 1'}, {'l0 - 1'}), 'merge': ({'l0 - 5'}, {'l0 - 3'}),
          'lower': ({'l0 - 1'}, {'l1 - 1'}), 'rewritten': (set(), {'l0 + 1'}),
          'tee': ({'l0 + 1'}, {'l0 + 1'}), 'lt64': ({'l2 + 2'}, {'l2 + 2'}),
          'count': ({'l0 + 1'}, set())}


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
def test_a_sum_a_branch_bounds_has_no_wrap_test_and_the_others_keep_it(model):
    """A local a taken or untaken branch bounds (x < n, x < 10, x != 0,
    through ``if``, ``br_if`` and ``i32.eqz`` of a comparison) plus or
    minus a constant that cannot wrap on that path is generated without
    the wrap test; on the other paths (x <= n, a local written after the
    branch, a block two paths reach, x + c past the bound) the test stays;
    the results are wasmtime's at the edges, and a counted loop stops where
    the interpreter stops."""
    from engine.exec import compile as C
    wasm = wasmtime.wat2wasm(BOUNDS_WAT)
    wt_store = wasmtime.Store()
    wt = wasmtime.Instance(wt_store, wasmtime.Module(wt_store.engine, wasm), [])
    m = (1 << 32) - 1
    edges = [0, 1, 2, 4, 5, 7, 9, 10, 1 << 31, m - 1, m]
    store, inst, _ = setup(wasm, 'lt', [0, 0], 'fast', model=model)
    for entry, (plain, tested) in NOWRAP.items():
        source = C.compiled(store, inst.exports[entry][1], model).source
        sums = re.findall(r'\b(l\d+ [-+] \d+)( if )?', source)
        assert plain <= {x for x, t in sums if not t}, (entry, source)
        assert tested <= {x for x, t in sums if t}, (entry, source)
        # count runs n - x iterations: edge pairs only where that is small
        pairs = ([(x, n) for x in edges for n in edges if n - x <= 10] if entry == 'count'
                 else [(x, n) for x in edges for n in edges])
        for x, n in pairs:
            signed = [v - (1 << 32) if v >> 31 else v for v in (x, n)]
            want = wt.exports(wt_store)[entry](wt_store, *signed) & (
                (1 << (64 if entry == 'lt64' else 32)) - 1)
            s, i, ex = setup(wasm, entry, [x, n], 'fast', model=model)
            assert ex.run() and ex.results == [want], (entry, x, n)
    total = length(wasm, 'count', [m - 6, m], model)
    check_every_stop(wasm, 'count', [m - 6, m], range(total + 1), model)


def switch_module(arms=40, tail=False):
    """``sw``: a loop dispatching through a br_table over ``arms`` blocks
    ($m picks how many of them run); each arm adds its own constant (with
    ``tail`` the last one ends in a ``return_call``, which the generator
    refuses).  The function has more leaders than LAZY_ARMS.  ``outer``
    calls it three times."""
    inner = '(br_table ' + ' '.join(f'$b{k}' for k in range(arms)) + \
        ' (i32.rem_u (i32.mul (local.get $n) (i32.const 7)) (local.get $m)))'
    for k in range(arms):
        end = ('(return_call $id (local.get $acc))' if tail and k == arms - 1 else '(br $top)')
        inner = (f'(block $b{k} {inner})\n (local.set $acc (i32.add (i32.mul (local.get $acc) '
                 f'(i32.const 3)) (i32.const {k * 11 + 1}))) {end}')
    return f'''(module
  (func $id (param i32) (result i32) (local.get 0))
  (func (export "outer") (param $n i32) (result i32)
    (i32.add (call $sw (local.get $n) (i32.const 2))
             (i32.add (call $sw (local.get $n) (i32.const 40)) (call $sw (local.get $n) (i32.const 40)))))
  (func $sw (export "sw") (param $n i32) (param $m i32) (result i32) (local $acc i32)
    (block $done
      (loop $top
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        {inner}))
    (local.get $acc)))'''


def _count_generations(monkeypatch):
    """Calls of compile.generate (first generations and regrowths)."""
    from engine.exec import compile as C
    made, real = [], C.generate

    def counted(store, fi, addr, model, present=None, succ=None):
        made.append(present)
        return real(store, fi, addr, model, present, succ)
    monkeypatch.setattr(C, 'generate', counted)
    return made


def test_code_is_cached_per_generator_settings(monkeypatch):
    """The code shared by a module's instances is kept per generator
    settings: a test that changes them gets code made with its settings,
    and the code made with other settings is not handed to later runs."""
    from engine.exec import compile as C
    from engine.exec.compile import compiled
    wasm = wasmtime.wat2wasm(switch_module(arms=C.LAZY_FIRST + 12))    # more than the first arms
    made = _count_generations(monkeypatch)

    def run():
        store, inst, ex = setup(wasm, 'sw', [6, 2], 'fast')
        assert ex.run() and ex.results == setup_results(wasm, 'sw', [6, 2], 'wasmedge')
        return compiled(store, inst.exports['sw'][1]).source

    plain = run()
    first = len(made)
    assert first >= 1 and 'raise Miss' in plain and run() == plain and len(made) == first
    with monkeypatch.context() as m:
        m.setattr(C, 'LAZY_ARMS', 1000)              # every arm at once
        whole = run()
        assert len(made) > first and 'raise Miss' not in whole
        grown = len(made)
    assert run() == plain and len(made) == grown          # the first code, not made again


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
def test_lazy_arms_generate_the_blocks_that_run(model, monkeypatch):
    """A function of more than LAZY_ARMS leaders gets the arms of the
    blocks near its entry first; a jump to a block without code (a
    ``Miss``) has it generated again with more, geometrically (a few
    regenerations for 40 arms), up to all of them; stops at any N are the
    interpreter's throughout, and a second instance of the module adopts
    the grown code without generating it again."""
    from engine.exec import compile as C
    from engine.exec.compile import LAZY_ARMS, compiled
    # no block in place: the small arms would be inlined into the br_table's
    # (as in libc's big functions, where INLINE_BODY stops it)
    monkeypatch.setattr(C, 'INLINE_DEPTH', 0)
    monkeypatch.setattr(C, 'LAZY_FIRST', 8)         # a few at first, of this module's 44
    wasm = wasmtime.wat2wasm(switch_module())
    made = _count_generations(monkeypatch)
    store, inst, ex = setup(wasm, 'sw', [6, 2], 'fast', model=model)
    assert ex.run() and ex.results == setup_results(wasm, 'sw', [6, 2], model)
    c = compiled(store, inst.exports['sw'][1], model)
    assert len(c.heads) > LAZY_ARMS + 1 and 'raise Miss' in c.source
    assert len(c.present) < len(c.heads) // 2          # two arms ran: not all generated
    first = len(made)
    store2, inst2, ex2 = setup(wasm, 'sw', [200, 40], 'fast', model=model)
    assert ex2.run() and ex2.results == setup_results(wasm, 'sw', [200, 40], model)
    c2 = compiled(store2, inst2.exports['sw'][1], model)
    assert c2.present == {pc for pc, _ in c2.heads} and 'raise Miss' not in c2.source
    assert 1 <= len(made) - first <= 4, made             # 8 -> 16 -> 32 -> all, not one per arm
    grown = len(made)
    # the first instance misses on a block the shared code has now: it adopts it
    ex3 = store.new_executor()
    ex3.start(inst.exports['sw'][1], [100, 40])
    assert ex3.run() and ex3.results == setup_results(wasm, 'sw', [100, 40], model)
    assert len(made) == grown and c.present == c2.present
    for args in ([30, 40], [12, 5]):
        total = length(wasm, 'sw', args, model)
        check_every_stop(wasm, 'sw', args, points_for(total, 80), model)
        check_chunked(wasm, 'sw', args, (1, 3, 17, 60), 2, model)


def setup_results(wasm, entry, args, model):
    """The interpreter's results of a run."""
    _, _, ex = setup(wasm, entry, args, 'interp', model=model)
    ex.run()
    return ex.results


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
def test_every_stop_with_every_function_lazy(model, monkeypatch):
    """Property: with lazy arms on every function (LAZY_ARMS 0) and the
    fewest arms generated at first (LAZY_FIRST 1), misses everywhere:
    generated modules, float dispatch modules, the charged-ahead calls and
    the tiering module stop exactly as the interpreter does at any N."""
    from engine.exec import compile as C
    monkeypatch.setattr(C, 'LAZY_ARMS', 0)
    monkeypatch.setattr(C, 'LAZY_FIRST', 1)

    class Uncached(dict):         # each run decodes anew: its code starts small again
        def __setitem__(self, key, value):
            pass
    monkeypatch.setattr(linked, '_DECODED', Uncached())
    made = _count_generations(monkeypatch)
    for seed, gm, args in _generated(range(3)):
        total = length(gm.wasm, gm.entry, args, model)
        check_every_stop(gm.wasm, gm.entry, args, points_for(total, 30), model)
        check_chunked(gm.wasm, gm.entry, args, (1, 3, 8, 50), seed, model)
    wasm = wasmtime.wat2wasm(float_dispatch_module(1))
    check_every_stop(wasm, 'run', [23, 7], points_for(length(wasm, 'run', [23, 7], model), 40), model)
    wasm = wasmtime.wat2wasm(PRECHARGED)
    for entry, args in (('chain', [5, 1]), ('calls', [1]), ('rec', [3])):
        check_every_stop(wasm, entry, args, points_for(length(wasm, entry, args, model), 60), model)
    assert sum(p is not None for p in made) >= 100          # regrowths: misses happened


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
def test_a_lazy_block_the_generator_refuses_leaves_the_function_to_the_interpreter(model, monkeypatch):
    """A block generated late holds an instruction the generator refuses
    (``return_call``): the function runs in the interpreter from then on,
    its compiled callers' calls to it included, and every stop is still
    the interpreter's."""
    from engine.exec import compile as C
    monkeypatch.setattr(C, 'INLINE_DEPTH', 0)
    monkeypatch.setattr(C, 'LAZY_FIRST', 8)         # the refused block made late, of 40
    wasm = wasmtime.wat2wasm(switch_module(tail=True))
    store, inst, ex = setup(wasm, 'outer', [50], 'fast', model=model)
    assert ex.run() and ex.results == setup_results(wasm, 'outer', [50], model)
    c = C.compiled(store, inst.exports['sw'][1], model)
    assert c.code is None and c.entry == {}
    # the interpreter keeps it now: its pre-decoded form has superinstructions
    code = store.funcs[inst.exports['sw'][1]].cache[model]
    assert code.fops != code.ops
    total = length(wasm, 'outer', [50], model)
    check_every_stop(wasm, 'outer', [50], points_for(total, 60), model)
    check_chunked(wasm, 'outer', [50], (1, 5, 40, 300), 4, model)


def handler_module(pad):
    """``h``: a loop inside a handler (which the generator refuses), after
    ``pad`` nops; ``main`` calls it 12 times and adds n * n."""
    return f"""(module
  (func $h (export "h") (param $n i32) (result i32) (local $acc i32)
    {'nop ' * pad}
    (block $out
      (try_table (catch_all $out)
        (loop $l
          (local.set $acc (i32.add (local.get $acc) (local.get $n)))
          (local.set $n (i32.sub (local.get $n) (i32.const 1)))
          (br_if $l (local.get $n)))))
    (local.get $acc))
  (func (export "main") (param $n i32) (result i32) (local $k i32) (local $s i32)
    (loop $again
      (local.set $s (i32.add (local.get $s) (call $h (local.get $n))))
      (br_if $again (i32.ne (local.tee $k (i32.add (local.get $k) (i32.const 1))) (i32.const 12))))
    (i32.add (local.get $s) (i32.mul (local.get $n) (local.get $n)))))"""


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
@pytest.mark.parametrize('pad', [0, 500])
def test_the_compiled_tier_pre_decodes_with_superinstructions_only_what_the_interpreter_keeps(
        model, pad):
    """In the compiled tier the interpreter runs a function only until it
    is compiled, unless the generator refuses it (here: a handler): the
    former is pre-decoded plain (no superinstructions to match), the latter
    fused, as every function of the interpreter tier is.  With ``pad`` the
    refused function is big, so it runs a few calls in the interpreter
    (pre-decoded plain) before the generator sees it, and is pre-decoded
    again, fused, when refused."""
    from engine.exec import compile as C
    wasm = wasmtime.wat2wasm(handler_module(pad))
    want = 12 * (50 * 51 // 2) + 2500
    assert (pad > C.COLD_SIZE) == bool(pad)          # big: cold for its first calls
    for tier in ('fast', 'interp'):
        store, inst, ex = setup(wasm, 'main', [50], tier, model=model)
        assert ex.run() and ex.results == [want]
        fused = {name: (lambda c: c.fops != c.ops)(store.funcs[inst.exports[name][1]].cache[model])
                 for name in ('h', 'main')}
        assert fused == ({'h': True, 'main': False} if tier == 'fast' else {'h': True, 'main': True})


def _entries_are_the_jump_targets(c):
    """Asserts that every block the source of Compiled ``c`` jumps to is an
    entry.  Returns (whether the entries other than pc 0 and the blocks
    without code (lazy: they miss) are exactly those blocks, whether some
    block is no entry); the first may be False where an arm made and then
    left out jumped to one more block."""
    import re
    jumped = {int(k) for k in re.findall(r'\bb = (\d+)$', c.source, re.M)}
    block = dict((pc, blk) for blk, (pc, _) in enumerate(c.heads))
    entries = {block[pc] for pc in c.entry} - {0}
    assert jumped - {0} <= entries
    missing = set() if c.present is None else {block[pc] for pc, _ in c.heads
                                               if pc not in c.present}
    return entries - missing == jumped - missing - {0}, len(c.entry) < len(c.heads)


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
@pytest.mark.parametrize('kernel', ['i64-loop', 'lazy switch', 'rollback', 'generated'])
def test_a_block_emitted_in_place_wherever_it_is_reached_has_no_arm_and_is_no_entry(model, kernel,
                                                                                    monkeypatch):
    """A block every predecessor emits in place gets no arm in the
    dispatch and is not an entry (a run stopped before it steps in the
    interpreter to the next entry): the entries are exactly the blocks some
    arm jumps to (and the function's start), in small functions, in lazy
    ones after they grew and in every function of generated modules (where
    an arm made late, with less room to emit blocks in place, jumps to a
    block an earlier one emitted in place); every stop stays the
    interpreter's."""
    from bench.kernels import KERNELS, wasm_of
    from engine.exec import compile as C
    if kernel == 'generated':
        some = False
        for seed in range(30):
            gm = gen.from_seed(seed)
            store, inst, ex = setup(gm.wasm, gm.entry, gm.args[0], 'fast', model=model)
            nimp = len(inst.module.imported('func'))
            for addr in inst.funcaddrs[nimp:]:
                c = C.compiled(store, addr, model)
                if c.code is not None:
                    some |= _entries_are_the_jump_targets(c)[1]
        assert some
        return
    if kernel == 'i64-loop':
        wasm, name, args = wasm_of(KERNELS['i64-loop'][1]), 'run', [40]
    elif kernel == 'rollback':      # block 0's arm, made last, jumps where the others do not
        from test_oracle_checks import ROLLBACK
        wasm, name, args = wasmtime.wat2wasm(ROLLBACK), 'run', [60]
        store, inst, ex = setup(wasm, name, args, 'fast', model=model)
        _entries_are_the_jump_targets(C.compiled(store, inst.exports[name][1], model))
        check_every_stop(wasm, name, args, points_for(length(wasm, name, args, model), 80), model)
        return
    else:           # 38 arms: a module of its own (tests that change the generator's
        # knobs leave their code cached on the decoded module of theirs), lazy
        # with 32 arms at first (small enough for blocks emitted in place)
        monkeypatch.setattr(C, 'LAZY_FIRST', 32)
        wasm, name, args = wasmtime.wat2wasm(switch_module(38)), 'sw', [60, 38]
    store, inst, ex = setup(wasm, name, args, 'fast', model=model)
    assert ex.run() and ex.results == setup_results(wasm, name, args, model)
    assert _entries_are_the_jump_targets(C.compiled(store, inst.exports[name][1], model)) == (True, True)
    total = length(wasm, name, args, model)
    check_every_stop(wasm, name, args, points_for(total, 50), model)


VIEWS_WAT = """(module (memory 1 8)
  (func $grow (param $n i32) (result i32) (memory.grow (local.get $n)))
  (func (export "walk") (param $n i32) (param $skew i32) (result i64)
    (local $i i32) (local $ea i32) (local $acc i64) (local $f f64)
    (loop $l
      ;; ea = i * 4104 + skew: every alignment when skew is odd, pages apart
      (local.set $ea (i32.add (i32.mul (local.get $i) (i32.const 4104)) (local.get $skew)))
      (if (i32.ge_u (i32.add (local.get $ea) (i32.const 24)) (i32.shl (memory.size) (i32.const 16)))
        (then (if (i32.eqz (i32.and (local.get $i) (i32.const 1)))
                (then (drop (memory.grow (i32.const 1))))            ;; grown here
                (else (drop (call $grow (i32.const 1)))))))           ;; or by a callee
      (i64.store (local.get $ea) (i64.add (i64.extend_i32_u (local.get $i)) (i64.const 0x0102030405060708)))
      (i32.store offset=8 (local.get $ea) (i32.mul (local.get $i) (i32.const 0x9e3779b9)))
      (f64.store offset=16 (local.get $ea) (f64.div (f64.convert_i32_u (local.get $i)) (f64.const 3)))
      (local.set $acc (i64.add (local.get $acc) (i64.load (local.get $ea))))
      (local.set $acc (i64.xor (local.get $acc) (i64.extend_i32_u (i32.load offset=8 (local.get $ea)))))
      (local.set $f (f64.add (local.get $f) (f64.load offset=16 (local.get $ea))))
      (local.set $acc (i64.rotl (local.get $acc) (i64.const 7)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (i64.add (local.get $acc) (i64.reinterpret_f64 (local.get $f))))
  (func (export "nan") (param $ea i32) (result i64)
    ;; a signalling NaN's payload through an f64 store and load
    (f64.store (local.get $ea) (f64.reinterpret_i64 (i64.const 0x7ff0000000000001)))
    (i64.reinterpret_f64 (f64.load (local.get $ea))))
  (func (export "nanlocal") (param $ea i32) (result i64) (local $x f64) (local $y i32)
    ;; loads straight into locals (the generator folds the two), kept exact
    (i64.store (local.get $ea) (i64.const 0x7ff0000000000001))
    (local.set $x (f64.load (local.get $ea)))
    (local.set $y (i32.load offset=4 (local.get $ea)))
    (f64.store offset=8 (local.get $ea) (local.get $x))
    (i64.add (i64.load offset=8 (local.get $ea)) (i64.extend_i32_u (local.get $y))))
  (func (export "at") (param $op i32) (param $ea i32) (result i64)
    (block (block (block (block (br_table 0 1 2 3 (local.get $op)))
      (return (i64.load (local.get $ea))))
      (return (i64.extend_i32_u (i32.load (local.get $ea)))))
      (return (i64.reinterpret_f64 (f64.load (local.get $ea)))))
    (i64.store (local.get $ea) (i64.const -1))
    (i64.const 0)))
"""


@pytest.mark.parametrize('model', ('wasmedge', 'wamr'))
def test_aligned_accesses_through_typed_views_match_wasmtime_across_growth(model):
    """Aligned 4- and 8-byte loads and stores of the compiled tier index
    typed views of memory (``MemInst.typed``), unaligned ones use struct:
    results as wasmtime's at every alignment while the memory grows under
    the views (in the function and in a callee), a NaN's payload kept,
    accesses at the end of memory in bounds or trapping as wasmtime's; and
    stopped anywhere, the state is the interpreter's."""
    wasm = wasmtime.wat2wasm(VIEWS_WAT)

    def call(name, *args):                      # a fresh instance: one page of memory
        wt_store = wasmtime.Store()
        wt = wasmtime.Instance(wt_store, wasmtime.Module(wt_store.engine, wasm), [])
        return wt.exports(wt_store)[name](wt_store, *args)
    for skew in range(9):
        store, inst, ex = setup(wasm, 'walk', [60, skew], 'fast', model=model)
        assert ex.run()
        assert store.mems[inst.memaddrs[0]].size() == 4
        assert ex.results == [call('walk', 60, skew) & (2**64 - 1)], skew
    for ea in (0, 3, 8):
        store, inst, ex = setup(wasm, 'nan', [ea], 'fast', model=model)
        assert ex.run() and ex.results == [0x7ff0000000000001]
        store, inst, ex = setup(wasm, 'nanlocal', [ea], 'fast', model=model)
        assert ex.run() and ex.results == [0x7ff0000000000001 + 0x7ff00000]
        assert ex.results == [call('nanlocal', ea)]
    end = 65536
    for op, ea in ((0, end - 8), (1, end - 4), (2, end - 8), (3, end - 8), (0, end - 7),
                   (0, end), (1, end), (1, end - 2), (2, end), (3, end), (3, end - 4)):
        store, inst, ex = setup(wasm, 'at', [op, ea], 'fast', model=model)
        try:
            want = call('at', op, ea) & (2**64 - 1)
        except wasmtime.Trap:
            with pytest.raises(Trap, match='out of bounds memory access'):
                ex.run()
        else:
            assert ex.run() and ex.results == [want], (op, ea)
    total = length(wasm, 'walk', [12, 5], model)
    check_every_stop(wasm, 'walk', [12, 5], points_for(total, 60), model)


def test_typed_views_follow_a_restored_memory_of_another_size():
    """A memory replaced by one of another size (a restore, ``MemInst.load``)
    releases the views compiled code holds and binds new ones over it."""
    wasm = wasmtime.wat2wasm(VIEWS_WAT)
    store, inst, ex = setup(wasm, 'at', [0, 8], 'fast')
    assert ex.run() and ex.results == [0]
    mi = store.mems[inst.memaddrs[0]]
    assert mi.views is not None and len(mi.holders) == 1
    image = bytearray(3 * 65536)
    image[3 * 65536 - 8:] = (0x1122334455667788).to_bytes(8, 'little')
    mi.load(image)
    ex = store.new_executor()
    ex.start(inst.exports['at'][1], [0, 3 * 65536 - 8])
    assert ex.run() and ex.results == [0x1122334455667788]
    mi.grow(1)                                  # and grows in place under them
    ex = store.new_executor()
    ex.start(inst.exports['at'][1], [0, 4 * 65536 - 8])
    assert ex.run() and ex.results == [0]


STRAIGHT_WAT = """(module
  (func (export "f") (param $n i32) (result i32) (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (local.get $n)))
      (local.set $acc (i32.xor (local.get $acc) (i32.const 0x55)))
      (local.set $acc (i32.add (local.get $acc) (i32.const 7)))
      (local.set $acc (i32.rotl (local.get $acc) (i32.const 3)))
      (local.set $acc (i32.mul (local.get $acc) (i32.const 31)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (local.get $n)))
    (local.get $acc)))"""


@pytest.mark.parametrize('model', ('wasmedge', 'wamr'))
def test_a_resume_between_entries_interprets_up_to_the_next_one_in_one_run(model, monkeypatch):
    """Stopped inside a block (no entry of compiled code there), a resume
    runs the interpreter up to the block's end in one run, not one run
    per instruction, then the compiled code: at most two interpreter runs
    for the rest of the call, and the interpreter's results."""
    wasm = wasmtime.wat2wasm(STRAIGHT_WAT)
    want = setup(wasm, 'f', [40], 'interp', model=model)[2]
    run(want, None)
    interp = None
    for n in range(1, 30):                          # the first two iterations
        store, inst, ex = setup(wasm, 'f', [40], 'fast', model=model)
        assert not ex.run(n)
        runs = []
        interp = interp or type(ex).INTERP
        monkeypatch.setattr(type(ex), 'INTERP', lambda self, k: runs.append(k) or interp(self, k))
        assert ex.run() and ex.results == want.results and ex.steps == want.steps
        monkeypatch.undo()
        assert len(runs) <= 2, (n, runs)


def given_args_module():
    """Calls whose arguments are expressions the compiled code passes
    straight to the callee (no operand slot): a cold two-parameter callee
    (a stub's Reenter), the same one through a table (``indirect``'s
    Reenter, its index an expression too), an operand below the arguments,
    and a recursion the call depth limit ends."""
    from engine.exec.compile import COLD_SIZE
    steps = ' '.join(f'(local.set 2 (i32.add (i32.mul (local.get 2) (i32.const {k * 2 + 3})) '
                     f'(local.get 1)))' for k in range(COLD_SIZE // 5 + 1))
    return f'''(module (type $t (func (param i32 i32) (result i32))) (table 2 funcref)
  (elem (i32.const 0) $big $rec)
  (func $big (type $t) (local i32)
    (local.set 2 (i32.sub (local.get 0) (local.get 1))) {steps}
    (local.get 2))
  (func $rec (type $t)
    (if (result i32) (i32.eqz (local.get 0)) (then (local.get 1))
      (else (i32.add (i32.const 3)
        (call $rec (i32.sub (local.get 0) (i32.const 1)) (i32.xor (local.get 1) (i32.const 5)))))))
  (func (export "run") (param i32) (result i32) (local i32)
    (loop $l
      (local.set 1 (i32.add (i32.mul (local.get 1) (i32.const 7))
        (call $big (i32.add (local.get 0) (i32.const 11)) (i32.xor (local.get 1) (local.get 0)))))
      (local.set 1 (i32.sub (local.get 1)
        (call_indirect (type $t) (i32.shl (local.get 0) (i32.const 3)) (local.get 1)
                                 (i32.and (local.get 0) (i32.const 1)))))
      (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))
    (local.get 1))
  (func (export "rec") (param i32) (result i32)
    (call $rec (i32.add (local.get 0) (i32.const 2)) (i32.mul (local.get 0) (i32.const 9)))))'''


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
def test_arguments_given_straight_to_a_call_are_the_operands_of_every_stop(model):
    """A call's pure arguments are not stored in operand slots: a stop
    while the callee is left to the interpreter (cold, through a table,
    at the depth limit) rebuilds them from their expressions, in order.
    Checked against the interpreter at every stop and at call depth limits."""
    wat = given_args_module()
    assert re.search(r'\(call \$big \(i32\.add', wat)
    wasm = wasmtime.wat2wasm(wat)
    store, inst, ex = setup(wasm, 'run', [9], 'fast', model=model)
    ex.run()
    from engine.exec.compile import CACHE
    src = store.funcs[inst.funcaddrs[2]].cache[CACHE[model]].source
    assert re.search(r'C0\(n, d - 1, l0 \+ 11 [^,]*, l1 \^ l0\)', src), src
    assert re.search(r'f\(n, d - 1, \(l0 << 3\)', src), src
    total = length(wasm, 'run', [9], model)
    check_every_stop(wasm, 'run', [9], points_for(total, 80), model)
    check_chunked(wasm, 'run', [9], (1, 3, 40, 700), 5, model)
    check_depth_limits(wasm, 'rec', [40], (2, 3, 6, 30), model)
    check_every_stop(wasm, 'rec', [6], range(1, length(wasm, 'rec', [6], model) + 1), model)


TAIL_ENDS_WAT = '''(module
  (func $g (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  (func (export "ends") (param i32) (result i32)
    (block $a (result i32)
      (block $b (result i32)
        (block $c (result i32)
          (call $g (local.get 0))
          (br_if $c (i32.and (local.get 0) (i32.const 1)))
          (br_if $b (i32.and (local.get 0) (i32.const 2)))
          (drop) (i32.const 7))
        (i32.const 5) (i32.add))))
  (func (export "deep") (param i32) (result i32)
    ''' + '(block (result i32) ' * 10 + '(call $g (local.get 0))' + ')' * 10 + ''')
  (func (export "crossed") (param i32) (result i32)
    (block $a (result i32)
      (block $b (result i32)
        (block $c (result i32)
          (br_if $b (i32.const 1) (i32.and (local.get 0) (i32.const 1)))
          (drop)
          (br_if $c (i32.const 2) (i32.and (local.get 0) (i32.const 2)))
          (drop)
          (i32.add (call $g (local.get 0)) (i32.const 1))))))
  (func (export "arms") (param i32) (result i32)
    (if (result i32) (local.get 0)
      (then (i32.mul (call $g (local.get 0)) (i32.const 3)))
      (else (block (result i32) (local.get 0) (br_if 0 (i32.const 1)) (drop) (i32.const 2))))))'''


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
def test_a_block_result_returned_by_the_ends_that_follow_stops_like_the_interpreter(model):
    """A path reaching only ``end``s up to the function's end returns its
    operands in place (FuncGen.goto), charging those ends: after a call
    whose charge covered them or not (one of the ends is a branch's
    landing; more ends than a call charges ahead), and from an ``else``.  Every stop is the interpreter's."""
    wasm = wasmtime.wat2wasm(TAIL_ENDS_WAT)
    for entry in ('ends', 'deep', 'crossed', 'arms'):
        for x in range(4):
            check_every_stop(wasm, entry, [x], range(1, length(wasm, entry, [x], model) + 1), model)


NAN_OPERANDS_WAT = '''(module (memory 1)
  (data (i32.const 0) "\\00\\00\\00\\00\\00\\00\\f0\\3f\\01\\00\\00\\00\\00\\00\\f4\\7f")
  (data (i32.const 16) "\\02\\00\\00\\00\\00\\00\\f8\\ff\\00\\00\\00\\00\\00\\00\\00\\40")
  (func $id (param f64) (result i64) (i64.reinterpret_f64 (local.get 0)))
  (func (export "f") (param i32) (result i64)
    (call $id (f64.sub (f64.load (local.get 0)) (f64.load offset=8 (local.get 0))))))'''


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
def test_a_float_sum_of_loads_materialised_for_a_call_keeps_the_nan_payload(model):
    """``1.0 - NaN`` (and ``NaN - 2.0``) of two loads, materialised as a
    call's argument: its exact form reads the loads' floats, so the slot's
    float is set only after it (a NaN in the second load once read an
    unbound bits variable).  Results and every stop are the interpreter's."""
    wasm = wasmtime.wat2wasm(NAN_OPERANDS_WAT)
    for x in (0, 16):
        check_every_stop(wasm, 'f', [x], range(1, length(wasm, 'f', [x], model) + 1), model)


REREAD_WAT = '''(module (memory 1)
  (data (i32.const 8) "\\01\\00\\00\\00\\00\\00\\f4\\7f\\02\\00\\00\\00\\00\\00\\f4\\ff")
  (func $clobber (param i32) (f64.store (local.get 0) (f64.const 3)))
  (func (export "store") (param $p i32) (result i64)
    ;; a NaN loaded, its memory overwritten, then its bits taken
    (local.get $p) (f64.load) (f64.const 1) (f64.add)
    (local.get $p) (f64.const 2) (f64.store)
    (i64.reinterpret_f64))
  (func (export "narrow") (param $p i32) (result i64)
    (local.get $p) (f64.load offset=8)
    (i32.store8 offset=15 (local.get $p) (i32.const 0))
    (i64.reinterpret_f64))
  (func (export "base") (param $p i32) (result i64) (local $q i32)
    (local.set $q (local.get $p))
    (local.get $q) (f64.load)
    (local.set $q (i32.const 0))
    (i64.reinterpret_f64))
  (func (export "call") (param $p i32) (result i64)
    (local.get $p) (f64.load) (f64.neg)
    (call $clobber (local.get $p))
    (i64.reinterpret_f64))
  (func (export "fill") (param $p i32) (result i64)
    (local.get $p) (f64.load offset=8)
    (memory.fill (local.get $p) (i32.const 0) (i32.const 32))
    (i64.reinterpret_f64))
  (func (export "local") (param $p i32) (result i64) (local $x f64)
    (local.set $x (f64.load (local.get $p)))
    (f64.store (local.get $p) (f64.const 5))
    (i64.reinterpret_f64 (local.get $x))))'''


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
def test_a_pending_f64_load_keeps_its_bits_when_memory_or_its_base_changes(model):
    """An f64 load's exact bits are memory read again while the operand
    is pending (no NaN test after each load): a store (wide or narrow), a
    call that stores, ``memory.fill`` or a write of the base local first
    materialise the operand.  A NaN payload taken after each is the one
    loaded, as in the interpreter, at every stop."""
    wasm = wasmtime.wat2wasm(REREAD_WAT)
    for entry in ('store', 'narrow', 'base', 'call', 'fill', 'local'):
        for p in (8, 16):
            got = []
            for tier in ('interp', 'fast'):
                store, inst, ex = setup(wasm, entry, [p], tier, model=model)
                run(ex, None)
                got.append(ex.results)
            assert got[0] == got[1], (entry, p, got)
            check_every_stop(wasm, entry, [p], range(1, length(wasm, entry, [p], model) + 1), model)


def rotates_module():
    """rotl/rotr of each width over locals, constant counts (in range, 0,
    the width, past it, negative) and a constant value."""
    funcs = []
    for t, w in (('i32', 32), ('i64', 64)):
        for op in ('rotl', 'rotr'):
            body = [f'(local.set 2 ({t}.{op} (local.get 0) (local.get 1)))']
            for k in (0, 1, 5, w - 1, w, w + 3, -1, -7):
                body.append(f'(local.set 2 ({t}.xor (local.get 2) ({t}.{op} (local.get 0) ({t}.const {k}))))')
            body.append(f'(local.set 2 ({t}.xor (local.get 2) ({t}.{op} ({t}.const -2) (local.get 1))))')
            funcs.append(f'(func (export "{t}.{op}") (param {t} {t}) (result {t}) (local {t})\n  '
                         + '\n  '.join(body) + '\n  (local.get 2))')
    return '(module\n' + '\n'.join(funcs) + ')'


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
def test_rotates_of_atoms_are_inlined_and_exact(model):
    """A rotate of locals and constants is a Python expression in the
    generated code (no call of the numeric function), with every count
    taken modulo the width: results are ``numerics``' own for counts 0, the
    width, past it and negative, and values with the top bit set."""
    from engine.exec import numerics
    from engine.exec.compile import compiled
    wasm = wasmtime.wat2wasm(rotates_module())
    for t, w in (('i32', 32), ('i64', 64)):
        m = (1 << w) - 1
        for op in ('rotl', 'rotr'):
            name = f'{t}.{op}'
            f = numerics.OPS[name]

            def expect(x, y):
                r = f(x, y)
                for k in (0, 1, 5, w - 1, w, w + 3, -1, -7):
                    r ^= f(x, k & m)
                return r ^ f(m - 1, y)
            for x, y in ((1, 1), (m, 3), (1 << (w - 1), w + 1), (0x12345678, 0), (5, m),
                         (0xDEADBEEF & m, w - 1)):
                store, inst, ex = setup(wasm, name, [x, y], 'fast', model=model)
                # the code checked below is the code that runs
                src = compiled(store, inst.exports[name][1], model).source
                ex.run()
                assert ex.results == [expect(x, y)], (model, name, x, y)
            assert 'O_' not in src and ' << ' in src, src


GROWN_TABLE = '''(module (type $v (func (result i32))) (table 1 funcref)
  (elem (i32.const 0) $a) (elem declare func $b)
  (func $a (type $v) (i32.const 7))
  (func $b (type $v) (i32.const 11))
  (func (export "run") (param i32) (result i32) (local i32)
    (loop $l
      (local.set 1 (i32.add (local.get 1) (call_indirect (type $v) (i32.const 0))))
      (if (i32.eq (local.get 0) (i32.const 3))
        (then (drop (table.grow (ref.func $b) (i32.const 1)))))
      (if (i32.lt_u (local.get 0) (i32.const 3))
        (then (local.set 1 (i32.add (local.get 1) (call_indirect (type $v) (i32.const 1))))))
      (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))
    (local.get 1)))'''


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
def test_call_indirect_sees_a_grown_table(model):
    """The compiled code holds a table's element list itself: a table grown
    while it runs (in place) is seen by its next call_indirect."""
    from engine.exec.compile import compiled
    wasm = wasmtime.wat2wasm(GROWN_TABLE)
    store, inst, ex = setup(wasm, 'run', [5], 'fast', model=model)
    src = compiled(store, inst.exports['run'][1], model).source
    assert 'TE0[' in src
    ex.run()
    assert ex.results == [5 * 7 + 2 * 11]      # entry 1 called in the passes after i is 3
    total = length(wasm, 'run', [5], model)
    check_every_stop(wasm, 'run', [5], range(1, total), model)


PURE_ARGS_WAT = '''(module
  (func $g (param i64) (result i64) local.get 0)
  (func (export "pure") (param i64 i64 i32) (result i64)
    local.get 0 i64.const -1 i64.add local.get 1 i64.const -1 i64.add i64.xor
    call $g)
  (func (export "mixed") (param i64 i64 i32) (result i64)
    local.get 0 i64.const -1 i64.add local.get 1 i64.const -1 i64.add i64.xor
    local.get 1 i64.clz local.get 2 select
    call $g))'''


def test_call_arguments_with_i64_constants_are_generated_promptly(tmp_path):
    """Whether a call's argument is pure arithmetic (given straight to the
    call) is a regex match; one that failed after several 20-digit
    constants (an i64 ``- 1``) backtracked over every way of splitting
    their digits, and generating this 10-instruction function never ended.
    Run by the CLI in a child with a deadline far above the seconds it
    takes: a hang fails, slowness within reason does not."""
    import subprocess
    import sys
    wasm = tmp_path / 'pure.wasm'
    wasm.write_bytes(wasmtime.wat2wasm(PURE_ARGS_WAT))
    for model in ('wasmedge', 'wamr'):
        for entry, args, want in (('pure', ['5', '7', '1'], 4 ^ 6),
                                  ('mixed', ['5', '7', '1'], 4 ^ 6), ('mixed', ['5', '7', '0'], 61)):
            out = subprocess.run([sys.executable, '-m', 'engine', 'run', '--tier', 'fast',
                                  '--runtime', model, '--invoke', entry, str(wasm), '--args', *args],
                                 capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, out.stderr
            assert out.stdout.split() == [f'i64:{want}'], (model, entry, args, out)
    store, inst, ex = setup(wasm.read_bytes(), 'pure', [5, 7, 1], 'fast')
    assert ex.run() and ex.results == [2]
    from engine.exec.compile import CACHE
    src = store.funcs[inst.funcaddrs[1]].cache[CACHE['wasmedge']].source
    assert re.search(r'C0\(n, d - 1, \(\(l0 \+ 18446744073709551615\) \^ \(l1 ', src), src


def deep_operands_module(heights):
    """One function per height h: h constants under a call, then h - 1 adds
    (their sum, h + 1 with the call's +1)."""
    funcs = ''.join(f'''
  (func (export "deep{h}") (result i32)
    {'i32.const 1 ' * h} call $inc {'i32.add ' * (h - 1)})''' for h in heights)
    return f'''(module
  (func $inc (param i32) (result i32) (i32.add (local.get 0) (i32.const 1))){funcs})'''


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
def test_a_function_deeper_than_the_generator_takes_runs_in_the_interpreter(model):
    """The symbolic stack's bookkeeping scans the operands per instruction,
    which made generation quadratic in the operand height: a function of
    more than MAX_HEIGHT operands is left to the interpreter (compiled C
    stays below 16), one of MAX_HEIGHT is compiled; both stop like the
    interpreter everywhere."""
    from engine.exec.compile import MAX_HEIGHT, left_to_interpreter
    deep, shallow = MAX_HEIGHT + 1, MAX_HEIGHT
    wasm = wasmtime.wat2wasm(deep_operands_module((shallow, deep)))
    for h, refused in ((shallow, False), (deep, True)):
        store, inst, ex = setup(wasm, f'deep{h}', [], 'fast', model=model)
        assert ex.run() and ex.results == [h + 1]
        fi = store.funcs[inst.exports[f'deep{h}'][1]]
        assert left_to_interpreter(fi, model) is refused
        total = length(wasm, f'deep{h}', [], model)
        check_every_stop(wasm, f'deep{h}', [], points_for(total, 40), model)


def br_table_module(targets, shared=False):
    """``run(i)``: a br_table over ``targets`` nested blocks; the code
    after each block adds its own amount and falls into the next one's
    (so each target gives another sum); ``shared``: index k goes to
    block k // 2 (targets shared, the table not the identity)."""
    idx = ' '.join(str(k // 2 if shared else k) for k in range(targets))
    inner = f'(block local.get 0 br_table {idx} {targets - 1})'
    for k in range(targets):
        inner = f'(block {inner} (local.set 1 (i32.add (local.get 1) (i32.const {k * 7 + 1}))))'
    return f'''(module
  (func (export "run") (param i32) (result i32) (local i32)
    (block {inner})
    (i32.add (local.get 1) (i32.const 1000))))'''


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
@pytest.mark.parametrize('shared', [False, True])
def test_a_br_table_of_many_targets_is_a_search_tree_that_stops_like_the_interpreter(model, shared):
    """More than BR_TABLE_CHAIN distinct targets: a binary search over the
    target numbers (i itself, or a tuple of them when targets are
    shared) instead of a chain of tests; every index, the default and a
    huge index reach the interpreter's block at its count, and every stop
    on the way is the interpreter's."""
    from engine.exec import compile as C
    n = 40
    wasm = wasmtime.wat2wasm(br_table_module(n, shared))
    wt = wasmtime.Store()
    run_wt = wasmtime.Instance(wt, wasmtime.Module(wt.engine, wasm), []).exports(wt)['run']
    for i in (0, 1, 7, n // 2 - 1, n // 2, n - 2, n - 1, n, 4294967295):
        store, inst, ex = setup(wasm, 'run', [i], 'fast', model=model)
        assert ex.run() and ex.results == [run_wt(wt, i - (i >> 31 << 32)) & M32]
        total = length(wasm, 'run', [i], model)
        check_every_stop(wasm, 'run', [i], points_for(total, 30), model)
    src = store.funcs[inst.funcaddrs[0]].cache[C.CACHE[model]].source
    assert 'elif i ==' not in src and 'elif i in' not in src, src
    assert (('k = (' in src) == shared) and re.search(r'if [ik] < \d+:', src), src


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
def test_a_br_table_of_thousands_of_targets_is_compiled(model, monkeypatch):
    """8000 targets: as a chain of ``elif`` that was more nesting than
    CPython's parser takes (a MemoryError, a traceback from ``engine
    run``); as a search tree it is compiled and runs as the interpreter
    does."""
    from engine.exec import compile as C
    monkeypatch.setattr(C, 'COLD_SIZE', 10 ** 9)      # compiled at its first call
    wasm = wasmtime.wat2wasm(br_table_module(8000))
    for i in (0, 3999, 7999, 70000):
        store, inst, ex = setup(wasm, 'run', [i], 'fast', model=model)
        ref = setup(wasm, 'run', [i], 'interp', model=model)[2]
        assert ex.run() and ref.run()
        assert (ex.results, ex.steps) == (ref.results, ref.steps)
        assert not C.left_to_interpreter(store.funcs[inst.funcaddrs[0]], model)


@pytest.mark.parametrize('model', ['wasmedge', 'wamr'])
def test_code_cpython_cannot_compile_leaves_the_function_to_the_interpreter(model, monkeypatch):
    """A generated source CPython's parser or compiler refuses (too deep,
    too big) is no error of the run: the function runs in the interpreter."""
    from engine.exec import compile as C
    wasm = wasmtime.wat2wasm(br_table_module(12))

    def refuse(*args, **kw):
        raise RecursionError('maximum recursion depth exceeded during compilation')
    monkeypatch.setattr(C, 'compile', refuse, raising=False)   # (the builtin, for C's code)
    monkeypatch.setattr(C, 'LAZY_ARMS', 10 ** 6)         # (a fresh code-cache key)
    for i in (0, 5, 11, 12):
        store, inst, ex = setup(wasm, 'run', [i], 'fast', model=model)
        ref = setup(wasm, 'run', [i], 'interp', model=model)[2]
        assert ex.run() and ref.run()
        assert (ex.results, ex.steps) == (ref.results, ref.steps)
        assert C.left_to_interpreter(store.funcs[inst.funcaddrs[0]], model)
