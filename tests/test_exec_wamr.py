"""The WAMR-style executor: hand-computed results, the label/cell invariant
against ``translate.wamr_labels`` and the WasmEdge model at every
instruction boundary, and checkpoint / translate / restore at every step."""

import hashlib

import pytest
import wasmtime

from engine.migrate import checkpoint
from engine import embedding as E
from engine.exec import wamr as W
from engine.migrate import images as im, translate as T
from engine.errors import Exhaustion, Trap
from engine.migrate.images import CELLS
from engine.syntax import ExternRef
from wat_helpers import BRT_FUNC

M32 = 0xFFFFFFFF

WAT = r'''
(module
  (type $ii (func (param i32) (result i32)))
  (memory 1)
  (table $t 4 funcref)
  (table $e 2 externref)
  (elem (i32.const 0) $double $inc)
  (global $g (mut i64) (i64.const 5))

  (func $double (type $ii) (i32.mul (local.get 0) (i32.const 2)))
  (func $inc (type $ii) (i32.add (local.get 0) (i32.const 1)))

  ;; block/loop/if with params and results, br out of an if, i64/f64 locals
  (func (export "nest") (param i32) (result i64 i32) (local i64 f64)
    (local.set 1 (i64.const 0x100000003))
    (local.set 2 (f64.const 1.5))
    (i64.const 7) (local.get 0)
    (block $b (param i64 i32) (result i64 i32)
      (loop $l (param i64 i32) (result i64 i32)
        (local.set 0)
        (local.get 1) (i64.add)
        (local.get 0) (i32.const 1) (i32.sub) (local.tee 0)
        (br_if $l (i32.gt_s (local.get 0) (i32.const 0))))
      (if (param i64 i32) (result i64 i32) (i32.eqz (local.get 0))
        (then (i32.const 100) (i32.add) (br $b))
        (else (drop) (i64.const 1) (i64.sub) (i32.const 200))))
    (local.set 0)
    (i64.trunc_f64_s (f64.mul (local.get 2) (f64.const 2)))
    (i64.add)
    (local.get 0))

''' + BRT_FUNC + r'''
  ;; direct and indirect calls, funcref/externref/v128 locals
  (func (export "calls") (param i32 externref) (result i32 externref)
    (local funcref v128)
    (local.set 2 (ref.func $inc))
    (local.set 3 (v128.const i32x4 1 2 3 4))
    (table.set $e (i32.const 1) (local.get 1))
    (table.set $t (i32.const 2) (local.get 2))
    (call $double (local.get 0))
    (call_indirect $t (type $ii) (i32.const 2))
    (i32x4.extract_lane 2 (i32x4.add (local.get 3) (i32x4.splat (i32.const 10))))
    (i32.add)
    (ref.is_null (local.get 2))
    (i32.add)
    (table.get $e (i32.const 1)))

  (func $fac (export "fac") (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0))
      (then (i64.const 1))
      (else (i64.mul (local.get 0) (call $fac (i64.sub (local.get 0) (i64.const 1)))))))

  (func $mix (param i64 f64 i32) (result i64 f64)
    (i64.shl (local.get 0) (i64.const 4))
    (f64.add (local.get 1) (f64.convert_i32_u (local.get 2))))

  ;; a caller frame holding i64/f64/v128 operands below a multi-value call
  (func (export "deep") (param i32) (result i64) (local i64)
    (v128.const i64x2 3 4)
    (i64.const 100)
    (call $mix (i64.const 2) (f64.const 0.5) (local.get 0))
    (i64.trunc_f64_u)
    (i64.add)
    (i64.add)
    (local.set 1)
    (i64x2.extract_lane 1)
    (local.get 1)
    (i64.add))

  (func (export "mem") (param i64) (result i64)
    (i64.store (i32.const 8) (local.get 0))
    (v128.store (i32.const 16) (v128.const i64x2 0x1111 0x2222))
    (global.set $g (i64.add (global.get $g) (i64.load (i32.const 16))))
    (i64.add (i64.load (i32.const 8)) (global.get $g)))

  (func (export "sel") (param i32) (result i64 v128)
    (select (i64.const 1) (i64.const 2) (local.get 0))
    (drop (f64.const 3))
    (select (result v128) (v128.const i32x4 1 1 1 1) (v128.const i32x4 2 2 2 2)
            (local.get 0)))

  ;; branches to the function label land on the final end with the results
  (func (export "brfn") (param i32) (result i32)
    (i64.const 1)
    (br_if 0 (i32.const 7) (local.get 0))
    (drop) (drop)
    (i32.const 9) (br 0))

  (func (export "div") (param i32 i32) (result i32) (i32.div_u (local.get 0) (local.get 1)))
  (func $runaway (export "runaway") (param i64) (call $runaway (local.get 0)))
)
'''

L = 0x100000003
ONES = 0x00000001_00000001_00000001_00000001
TWOS = 2 * ONES

# name, args, hand-computed results
CASES = [
    ('nest', [3], [7 + 3 * L + 3, 100]),
    ('nest', [0], [7 + L - 1 + 3, 200]),
    ('brt', [0], [10]), ('brt', [1], [12]), ('brt', [2], [13]), ('brt', [7], [12]),
    ('calls', [5, ExternRef(9)], [2 * 5 + 1 + 13 + 0, ExternRef(9)]),
    ('calls', [0, None], [14, None]),
    ('fac', [5], [120]),
    ('deep', [7], [(2 << 4) + 7 + 100 + 4]),
    ('mem', [0x100000001], [0x100000001 + 5 + 0x1111]),
    ('sel', [1], [1, ONES]), ('sel', [0], [2, TWOS]),
    ('brfn', [1], [7]), ('brfn', [0], [9]),
]

DATA = wasmtime.wat2wasm(WAT)
SHA = hashlib.sha256(DATA).hexdigest()
MODULE = E.module_decode(DATA)
INFO = E.module_validate(MODULE)
VIEW = T.ModuleView(MODULE, INFO)


def fresh(kind, run_start=True):
    store = E.store_init(kind)
    return store, E.module_instantiate(store, MODULE, [], run_start)


def started(kind, name, args):
    store, inst = fresh(kind)
    ex = store.new_executor()
    ex.start(inst.exports[name][1], list(args))
    return store, inst, ex


def memory(store, inst):
    return bytes(store.mems[inst.memaddrs[0]].data)


def outcome(store, inst, ex):
    """What a finished run left: results, memory, the i64 global."""
    return (ex.results, memory(store, inst),
            store.globals[inst.globaladdrs[0]].value)


def reference(name, args):
    store, inst, ex = started('wamr', name, args)
    ex.run()
    return outcome(store, inst, ex), ex.steps


# ------------------------------------------------------------ plain results

@pytest.mark.parametrize('name,args,expect', CASES)
def test_results_by_hand(name, args, expect):
    store, inst = fresh('wamr')
    assert E.func_invoke(store, inst.exports[name][1], args) == expect


@pytest.mark.parametrize('arg,edge_steps,wamr_steps', [(0, 8, 8), (1, 11, 11), (7, 11, 11),
                                                     (2, 14, 14)])
def test_branch_lands_on_the_end_as_in_wamr(arg, edge_steps, wamr_steps):
    """WAMR's br continues at the target label's target_addr, the block's
    ``end``, which then runs and pops the label; the WasmEdge model lands on
    that ``end`` too, as the real WasmEdge does (docs/images.md, "Instruction
    counts").  Counted by hand on ``brt``: 6 instructions up to the
    br_table, then the target block's ``end`` and what follows it."""
    for kind, steps in (('wasmedge', edge_steps), ('wamr', wamr_steps)):
        store, inst, ex = started(kind, 'brt', [arg])
        ex.run()
        assert ex.steps == steps, kind


def _op_at(position):
    fidx, idx = position[-1]
    return MODULE.funcs[fidx - VIEW.nimported].body[idx].op


def _align(wamr_seq, edge_seq, position):
    """Pairs (wamr item, wasmedge item) at the same position.  Both models
    pass through the same positions in the same order except where a jump
    lands (docs/images.md, "Instruction counts"): WAMR also stands on the
    ``end`` a then-arm's ``else`` jumps to; WasmEdge also stands on the
    ``loop`` a branch lands on and on the ``else``/``end`` a false ``if``
    lands on."""
    pairs, i, j = [], 0, 0
    while i < len(wamr_seq) or j < len(edge_seq):
        pw = position(wamr_seq[i]) if i < len(wamr_seq) else None
        pe = position(edge_seq[j]) if j < len(edge_seq) else None
        if pw is not None and pw == pe:
            pairs.append((wamr_seq[i], edge_seq[j]))
            i, j = i + 1, j + 1
        elif pw is not None and _op_at(pw) == 'end' and (
                pe is None or (i + 1 < len(wamr_seq) and position(wamr_seq[i + 1]) == pe)):
            i += 1                                  # WAMR's extra stop on an end
        elif pe is not None and _op_at(pe) in ('loop', 'else', 'end'):
            j += 1                                  # WasmEdge's extra stop
        else:
            raise AssertionError(f'positions diverge: wamr {pw}, wasmedge {pe}')
    return pairs


def test_traps_and_exhaustion():
    store, inst = fresh('wamr')
    with pytest.raises(Trap, match='integer divide by zero'):
        E.func_invoke(store, inst.exports['div'][1], [1, 0])
    with pytest.raises(Exhaustion, match='call stack exhausted'):
        E.func_invoke(store, inst.exports['runaway'][1], [1])
    assert E.func_invoke(store, inst.exports['div'][1], [M32, 2]) == [M32 // 2]


def test_conformance_file_under_wamr():
    """The real interpreter path the suite uses, on the block/branch files."""
    import subprocess
    import sys
    r = subprocess.run([sys.executable, '-m', 'conformance', '--runtime', 'wamr',
                        '--jobs', '1', '-q', 'block.wast', 'br_table.wast',
                        'loop.wast', 'if.wast'], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


# ------------------------------------------------------------ invariant

def _positions(ex, inst):
    """(fidx, instruction index) per frame, bottom first."""
    to_index = {a: i for i, a in enumerate(inst.funcaddrs)}
    out = []
    for k, fr in enumerate(ex.frames):
        fidx = to_index[fr.func]
        top = k == len(ex.frames) - 1
        unit = ex.pc if top else fr.ip
        starts, after_call = VIEW.index_of_offset(fidx, unit)
        out.append((fidx, (starts if top else after_call)[unit]))
    return out


@pytest.mark.parametrize('name,args,expect', CASES)
def test_labels_and_cells_at_every_step(name, args, expect):
    """At every instruction boundary: each frame's label stack equals the
    replay of its code, and its cells split by validation's types give
    exactly the values the WasmEdge model holds at the same position."""
    _, winst, wex = started('wamr', name, args)
    mine = []
    while True:
        pos = _positions(wex, winst)
        for (fidx, idx), fr in zip(pos, wex.frames):
            assert fr.labels == T.wamr_labels(VIEW, fidx, idx), (fidx, idx)
        # cell layout: the frames' cells partition the stack as typed
        callee = None
        for k in range(len(wex.frames) - 1, -1, -1):
            fidx, idx = pos[k]
            types = VIEW.frame_types(fidx, idx, callee)
            end = len(wex.stack) if k == len(wex.frames) - 1 else wex.frames[k + 1].lp
            assert end - wex.frames[k].lp == sum(CELLS[t] for t in types)
            callee = fidx
        snap = T.snapshot_from_images(checkpoint.save_wamr(wex, winst, SHA), MODULE, INFO)
        assert snap.steps == len(mine)
        mine.append(snap)
        if wex.run(1):
            break
    _, einst, eex = started('wasmedge', name, args)
    theirs = [checkpoint.snapshot_wasmedge(eex, einst)]
    while not eex.run(1):
        theirs.append(checkpoint.snapshot_wasmedge(eex, einst))
    for a, b in _align(mine, theirs, lambda s: [(f.fidx, f.pc) for f in s.frames]):
        assert [(f.locals, f.stack) for f in a.frames] == [(f.locals, f.stack) for f in b.frames]
    assert wex.results == eex.results == expect


# ------------------------------------------------------------ checkpoints

def _stopped_images(kind, name, args, save):
    """An image set at every instruction boundary of one run."""
    store, inst, ex = started(kind, name, args)
    sets = []
    while True:
        sets.append(save(ex, inst))
        if ex.run(1):
            return sets


def _resume(kind, images):
    store, inst = fresh(kind, run_start=False)
    ex = checkpoint.restore(store, inst, images)
    assert ex.steps == images.steps
    ex.run()
    return outcome(store, inst, ex), ex.steps


@pytest.mark.parametrize('name,args,expect', CASES)
def test_save_restore_at_every_step(name, args, expect, tmp_path):
    want, total = reference(name, args)
    assert want[0] == expect
    sets = _stopped_images('wamr', name, args,
                           lambda ex, inst: checkpoint.save_wamr(ex, inst, SHA))
    assert len(sets) == total
    for k, s in enumerate(sets):
        assert s.runtime == 'wamr' and s.steps == k
        if k % 7 == 3:                  # some through the files on disk
            d = tmp_path / f'ck{k}'
            im.write_images(s, str(d))
            s = im.read_images(str(d))
        assert _resume('wamr', s) == (want, total)


@pytest.mark.parametrize('name,args,expect', CASES)
def test_translate_both_ways_at_every_step(name, args, expect):
    want, total = reference(name, args)
    wamr_sets = _stopped_images('wamr', name, args,
                                lambda ex, inst: checkpoint.save_wamr(ex, inst, SHA))
    for s in wamr_sets:
        other = T.translate(s, MODULE, INFO, 'wasmedge')
        assert _resume('wasmedge', other)[0] == want
    edge_sets = _stopped_images('wasmedge', name, args,
                                lambda ex, inst: checkpoint.save(ex, inst, SHA))
    translated = [T.translate(s, MODULE, INFO, 'wamr') for s in edge_sets]

    def position(s):
        starts = VIEW.index_of_offset(s.pc[0], s.pc[1])[0]
        return [(f.entry_fidx, f.return_offset) for f in s.frames] + [(s.pc[0], starts[s.pc[1]])]
    for mine, other in _align(wamr_sets, translated, position):
        # the translator's rebuilt labels and cells equal what WAMR held
        assert [(f.labels, f.cells, f.slot_cells, f.return_fidx, f.return_offset)
                for f in other.frames] == \
               [(f.labels, f.cells, f.slot_cells, f.return_fidx, f.return_offset)
                for f in mine.frames]
        assert other.pc == mine.pc
        assert _resume('wamr', other)[0] == want


def test_load_keeps_image_labels():
    """restore_wamr takes labels from the images (not recomputed), and the
    translator refuses labels that do not match the code."""
    sets = _stopped_images('wamr', 'nest', [2], lambda ex, inst: checkpoint.save_wamr(ex, inst, SHA))
    s = max(sets, key=lambda s: len(s.frames[0].labels))
    assert len(s.frames[0].labels) == 3          # function, block, loop
    store, inst = fresh('wamr', run_start=False)
    ex = checkpoint.restore(store, inst, s)
    assert ex.frames[0].labels == s.frames[0].labels
    bad = im.ImageSet(**{**s.__dict__, 'frames': [im.FrameImage(
        **{**s.frames[0].__dict__, 'labels': s.frames[0].labels[:-1]})]})
    with pytest.raises(im.ImageError, match='labels'):
        checkpoint.restore(store, inst, bad)


def test_labels_in_a_wasmedge_set_are_refused(tmp_path):
    """docs/images.md: a wasmedge set's frames have label count 0 (WasmEdge
    keeps no label stack).  A set carrying labels anyway (the translator's
    WAMR labels written into a WasmEdge set) is refused by the engine's
    reader and by the independent checker, not silently dropped."""
    from fuzz import imagecheck
    sets = _stopped_images('wamr', 'nest', [2], lambda ex, inst: checkpoint.save_wamr(ex, inst, SHA))
    s = max(sets, key=lambda s: len(s.frames[0].labels))
    edge = T.translate(s, MODULE, INFO, 'wasmedge')
    assert edge.frames[0].labels == []
    store, inst = fresh('wasmedge', run_start=False)
    checkpoint.restore(store, inst, edge)
    bad = im.ImageSet(**{**edge.__dict__, 'frames': [im.FrameImage(
        **{**edge.frames[0].__dict__, 'labels': s.frames[0].labels})]})
    with pytest.raises(im.ImageError, match=r'stack1\.img: 3 labels in a wasmedge set'):
        checkpoint.restore(store, inst, bad)
    with pytest.raises(im.ImageError, match='labels in a wasmedge set'):
        T.translate(bad, MODULE, INFO, 'wamr')
    d = str(tmp_path / 'bad')
    im.write_images(bad, d)
    with pytest.raises(imagecheck.ImageCheckError, match=r'stack1\.img: 3 labels in a wasmedge set'):
        imagecheck.decode_dir(d)


def test_foreign_frame_is_refused():
    """A frame of another instance cannot be written into this module's set."""
    store, inst = fresh('wamr')
    other = E.module_instantiate(store, MODULE, [])
    ex = store.new_executor()
    ex.start(other.exports['fac'][1], [3])
    ex.run(2)
    with pytest.raises(checkpoint.CheckpointError, match='another module instance'):
        checkpoint.save_wamr(ex, inst, SHA)


def test_frame_in_imported_function_is_refused():
    """A frame running a function this instance imports from another one."""
    store, lib = fresh('wamr')
    wat = '''(module (import "lib" "fac" (func $f (param i64) (result i64)))
      (func (export "go") (result i64) (call $f (i64.const 3))))'''
    inst = E.module_instantiate(store, E.module_decode(wasmtime.wat2wasm(wat)),
                                [lib.exports['fac']])
    ex = store.new_executor()
    ex.start(inst.exports['go'][1], [])
    assert not ex.run(3)                    # i64.const, call, then inside fac
    assert len(ex.frames) == 2
    with pytest.raises(checkpoint.CheckpointError, match='another module instance'):
        checkpoint.save_wamr(ex, inst, SHA)


# ------------------------------------------------------------ f64 on cells

F64_BITS = (0, 1 << 63, 0x3FF8000000000000, 0xC002000000000000, 0x7FF0000000000000,
            0xFFF0000000000000, 0x7FF8000000000000, 0x7FF8000000000123,
            0xFFF8000000000456, 0x7FF0000000000001, 1, 0x7FEFFFFFFFFFFFFF, 0x4008000000000000)
F64_CONSTS = (0x4008000000000000, 0, 1 << 63, 0x7FF4000000000042)


def _f64_shapes(op, cmp):
    """Functions running ``op`` in every form the WAMR run loop has for it:
    both operands on the stack (BIN64), from locals and constants (WIDE),
    into a local, into a br_if."""
    res = 'i32' if cmp else 'f64'
    funcs = [
        f'(func (export "ss") (param f64 f64) (result {res}) '
        f'(f64.{op} (call $id (local.get 0)) (call $id (local.get 1))))',
        f'(func (export "ll") (param f64 f64) (result {res}) (f64.{op} (local.get 0) (local.get 1)))',
        f'(func (export "sl") (param f64 f64) (result {res}) (f64.{op} (call $id (local.get 0)) (local.get 1)))',
        f'(func (export "set") (param f64 f64) (result {res}) (local {res}) '
        f'(local.set 2 (f64.{op} (local.get 0) (local.get 1))) (local.get 2))',
        f'(func (export "sset") (param f64 f64) (result {res}) (local {res}) '
        f'(local.set 2 (f64.{op} (call $id (local.get 0)) (call $id (local.get 1)))) (local.get 2))',
    ]
    for k, c in enumerate(F64_CONSTS):
        funcs.append(f'(func (export "lc{k}") (param f64 f64) (result {res}) '
                     f'(f64.{op} (local.get 0) (f64.const {_f64_lit(c)})))')
        funcs.append(f'(func (export "sc{k}") (param f64 f64) (result {res}) '
                     f'(f64.{op} (call $id (local.get 0)) (f64.const {_f64_lit(c)})))')
        funcs.append(f'(func (export "cset{k}") (param f64 f64) (result {res}) (local {res}) '
                     f'(local.set 2 (f64.{op} (local.get 0) (f64.const {_f64_lit(c)}))) (local.get 2))')
    if cmp:
        for export, operands in (('brif', '(local.get 0) (local.get 1)'),
                                 ('brifs', '(call $id (local.get 0)) (call $id (local.get 1))'),
                                 ('brifc', '(local.get 0) (f64.const 3)')):
            funcs.append(f'(func (export "{export}") (param f64 f64) (result i32) (block (result i32) '
                         f'(br_if 0 (i32.const 1) (f64.{op} {operands})) drop (i32.const 0)))')
    return '(module (func $id (param f64) (result f64) (local.get 0))\n' + '\n'.join(funcs) + ')'


def _f64_lit(bits):
    from engine.exec import numerics
    if (bits & 0x7FFFFFFFFFFFFFFF) > 0x7FF0000000000000:
        return f'{"-" if bits >> 63 else ""}nan:0x{bits & 0xFFFFFFFFFFFFF:x}'
    return numerics.f64_from_bits(bits).hex()


@pytest.mark.parametrize('name', sorted(W.F64_FLOAT))
def test_f64_on_cells_is_exact_in_every_form(name):
    """The run loop's f64 operations on cells (Python floats, the exact
    function for a NaN or a division by zero) give the bits of
    ``numerics`` for every operand pair, fused (a whole run) and plain
    (one step at a time)."""
    from engine.exec import numerics
    op = name[4:]
    cmp = op in ('eq', 'ne', 'lt', 'gt', 'le', 'ge')
    module = E.module_decode(wasmtime.wat2wasm(_f64_shapes(op, cmp)))
    store = E.store_init('wamr')
    inst = E.module_instantiate(store, module, [])
    exact = numerics.OPS[name]
    forms = set()
    for _, addr in inst.exports.values():
        code = W.code_of(store, addr)
        forms |= {('wide', a[1], a[4]) for o, a in zip(code.fops, code.fargs)
                  if o == W.WIDE and a[9] is not None}
        forms |= {'bin64' for o, a in zip(code.ops, code.args) if o == W.BIN64 and a.__class__ is tuple}
    # every source kind (stack, local, const) and destination (push and set
    # for arithmetic; push and br_if for comparisons, whose i32 is not fused
    # into a local.set)
    assert forms == {'bin64'} | {('wide', k2, dst) for k2 in (0, 1, 2)
                                 for dst in ((0, 2) if cmp else (0, 1)) if (k2, dst) != (0, 0)}, forms
    checked = 0
    for export, (_, addr) in inst.exports.items():
        for a in F64_BITS:
            for b in F64_BITS:
                if export.startswith(('lc', 'sc', 'cset')):
                    b = F64_CONSTS[int(export[-1])]
                elif export == 'brifc':
                    b = 0x4008000000000000
                want = exact(a, b)
                if export.startswith('brif'):
                    want = 1 if want else 0
                got = E.func_invoke(store, addr, [a, b])
                assert got == [want] and type(got[0]) is int, (export, hex(a), hex(b))
                ex = store.new_executor()
                ex.start(addr, [a, b])
                while not ex.run(1):        # every cell an int (a bool would be dumped as one)
                    assert all(type(c) is int for c in ex.stack), (export, ex.stack)
                assert ex.results == [want] and type(ex.results[0]) is int, (
                    'stepped', export, hex(a), hex(b))
                checked += 1
    assert checked == len(inst.exports) * len(F64_BITS) ** 2
