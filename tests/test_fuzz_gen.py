"""Tests of the fuzz module generators and the wasmtime oracle.

Truth comes from outside our engine: wasm-tools validates (Wasm 2.0
feature set), wasmtime executes with fuel metering (termination), and the
oracle's exact bits are checked against hand-computed values.
"""

import collections
import os
import random
import subprocess

import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings

from engine import syntax
from fuzz import encode, gen, oracle, smith
from fuzz import wasmtime_oracle as wo
from gen_helpers import late_off

FUEL = 10 ** 6


def check_module(gm):
    """Valid Wasm 2.0, and every call ends (result or trap) within FUEL."""
    err = gen.validate(gm.wasm)
    assert err is None, err + gm.wat
    outcomes = []
    for args in gm.args:
        assert len(args) == len(gm.params)
        if not wo.can_run(gm.wasm):
            # legacy exception handling, which wasmtime cannot run: the engine's step limit
            out = oracle.uninterrupted(gm.wasm, gm.entry, args, 'wasmedge', tier='interp')
            assert out.trap != oracle.STEP_LIMIT, gm.wat
            outcomes.append(out)
            continue
        out = wo.run(gm.wasm, gm.entry, args, fuel=FUEL)
        assert out.trap != wo.OUT_OF_FUEL, gm.wat
        if out.trap is None:
            assert len(out.results) == len(gm.results)
        outcomes.append(out)
    return outcomes


# ---------------------------------------------------------------- generator

@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(gen.modules())
def test_hypothesis_modules_are_valid_and_terminate(gm):
    check_module(gm)


def test_random_chooser_modules_valid_and_terminate():
    for seed in range(60):
        check_module(gen.from_seed(seed))


def test_from_bytes_deterministic_and_never_raises():
    rng = random.Random(1234)
    for i in range(80):
        data = bytes(rng.getrandbits(8) for _ in range(rng.choice((0, 1, 7, 50, 300, 2000))))
        a = gen.from_bytes(data)
        b = gen.from_bytes(data)
        assert a.wasm == b.wasm and a.args == b.args
        assert gen.validate(a.wasm) is None


def test_from_bytes_exhausted_input_is_minimal():
    gm = gen.from_bytes(b'')
    assert gen.validate(gm.wasm) is None
    assert gm.params == () and gm.results == ()
    out = wo.run(gm.wasm, gm.entry, gm.args[0], fuel=FUEL)
    assert out.trap is None and out.results == []
    assert gen.from_bytes(b'\x00' * 10).wasm == gen.from_bytes(b'\x00' * 10).wasm


def _instrs(gm):
    names = set()
    for f in gm.module.funcs:
        names.update(i.op for i in f.body)
    return names


def test_generated_programs_cover_the_feature_list():
    ops, types, traps = set(), set(), set()
    blocktypes = set()
    memoryless = 0
    for seed in range(300):
        gm = gen.from_seed(seed)
        ops |= _instrs(gm)
        if gm.memory is None:
            memoryless += 1
            # no memory 0: only the 3.0 section's memories (each exported as mem{i}), if any
            mems = sorted(e.name for e in gm.module.exports if e.kind == 'memory')
            assert mems == [f'mem{i}' for i in range(len(gm.module.mems))] and not gm.module.imports
            assert bool(gm.module.datas) <= bool(gm.module.mems)
        types.update(gm.params)
        for g in gm.module.globals:
            types.add(g.type.valtype)
        for f in gm.module.funcs:
            for i in f.body:
                if i.op in ('block', 'loop', 'if') and isinstance(i.imm, int):
                    ft = gm.module.types[i.imm]
                    blocktypes.add((bool(ft.params), len(ft.results) > 1))
    # the traps over more seeds: linked and memoryless modules, and entries
    # ending in an uncaught exception (Wasm 3.0), thinned the rare ones
    # (without the legacy exception forms, which wasmtime cannot run)
    for seed in range(600):
        gm = gen.from_seed(seed, features=gen.FEATURES - {'legacy-exceptions'})
        for args in gm.args:
            out = wo.run(gm.wasm, gm.entry, args, fuel=FUEL)
            traps.add(out.trap)
    need = {'block', 'loop', 'if', 'else', 'br', 'br_if', 'br_table', 'return', 'call',
            'call_indirect', 'unreachable', 'select', 'local.tee', 'global.set', 'global.get',
            'memory.grow', 'memory.size', 'memory.fill', 'memory.copy', 'memory.init',
            'data.drop', 'table.get', 'table.set', 'table.grow', 'table.fill', 'table.copy',
            'table.init', 'elem.drop', 'ref.null', 'ref.func', 'ref.is_null',
            'i32.load8_s', 'i64.load32_u', 'i64.store16', 'f64.store', 'v128.load',
            'v128.store', 'v128.load8_lane', 'i8x16.shuffle', 'i32.div_s', 'i64.rem_u'}
    assert need <= ops, need - ops
    assert sum(1 for o in ops if '.' in o and o.split('.')[0] in gen.LANES) > 150
    assert set(syntax.VAL_TYPES) <= types       # exnref: the exception global (fuzz.gen3)
    assert {(True, False), (False, True), (True, True)} <= blocktypes
    assert None in traps
    assert {'integer divide by zero', 'out of bounds memory access', 'unreachable',
            'undefined element', 'uninitialized element', 'indirect call type mismatch',
            'out of bounds table access', 'integer overflow', wo.UNCAUGHT, 'null '} <= traps, traps
    assert wo.OUT_OF_FUEL not in traps
    assert 15 <= memoryless <= 50, memoryless


def test_canonicalized_float_ops_give_canonical_nans():
    """0/0 through the generator's canonicalization yields exactly 0x7fc00000."""
    fg_module = gen.ModuleGen(gen.RandomChooser(0))
    fg_module.nfuncs = 1
    fg_module.sigs = [syntax.FuncType((), ('f32', 'v128'))]
    fg_module.globals = [(syntax.I32, True, ('i32.const', 0))]
    fg_module.depth_global = 0
    fg = gen.FuncGen(fg_module, 0)
    fg.emit('f32.const', 0)
    fg.emit('f32.const', 0)
    fg.emit_pure(__import__('engine.opcodes', fromlist=['BY_NAME']).BY_NAME['f32.div'])
    fg.emit('v128.const', 0)
    fg.emit('v128.const', 0)
    fg.emit_pure(__import__('engine.opcodes', fromlist=['BY_NAME']).BY_NAME['f64x2.div'])
    fg.emit('end')
    m = syntax.Module(types=[fg_module.sigs[0]],
                      funcs=[syntax.Func(0, fg.declared, [syntax.Instr(o, i) for o, i in fg.code])],
                      exports=[syntax.Export('f', 'func', 0)])
    wasm = encode.encode_module(m)
    assert gen.validate(wasm) is None
    out = wo.run(wasm, 'f', [])
    assert out.results == [0x7FC00000, 0x7FF8000000000000 * (1 + (1 << 64))]


def test_nan_nondeterministic_classification():
    assert gen.nan_nondeterministic('f32.add')
    assert gen.nan_nondeterministic('f64.promote_f32')
    assert gen.nan_nondeterministic('f32x4.demote_f64x2_zero')
    assert gen.nan_nondeterministic('f64x2.nearest')
    for name in ('f32.neg', 'f64.abs', 'f32.copysign', 'f32x4.pmin', 'i32.trunc_f32_s',
                 'f32.convert_i32_s', 'f32.reinterpret_i32', 'f32x4.eq', 'f64x2.splat'):
        assert not gen.nan_nondeterministic(name), name


def test_encoder_leb():
    assert encode.u32(624485) == bytes([0xE5, 0x8E, 0x26])
    assert encode.sleb(-123456) == bytes([0xC0, 0xBB, 0x78])
    assert encode.sleb(63) == b'\x3f' and encode.sleb(64) == b'\xc0\x00'
    assert encode.instr('i32.const', 0xFFFFFFFF) == b'\x41\x7f'
    assert encode.instr('i8x16.shuffle', tuple(range(16))) == b'\xfd\x0d' + bytes(range(16))
    assert encode.instr('select', ('i32',)) == b'\x1c\x01\x7f'


# ---------------------------------------------------------------- smith

def test_smith_modules_valid_and_terminate():
    made = 0
    for n in range(12):
        gm = smith.from_seed(n)
        if gm is None:
            continue
        made += 1
        assert gm.entry == 'run' and gm.memory == 'mem'
        check_module(gm)
    assert made >= 10


def test_smith_deterministic():
    seed = bytes(range(256)) * 2
    a, b = smith.from_bytes(seed), smith.from_bytes(seed)
    assert a.wasm == b.wasm and a.args == b.args


# ---------------------------------------------------------------- oracle

def wat_run(wat, entry, args=(), fuel=None):
    return wo.run(wasmtime.wat2wasm(wat), entry, list(args), fuel)


def test_oracle_f32_signalling_nan_bits_survive():
    wat = '''(module
      (func (export "id") (param f32) (result f32) local.get 0)
      (func (export "c") (result f32 f64) f32.const nan:0x200001 f64.const -nan:0x4000000000001))'''
    assert wat_run(wat, 'id', [0x7FA00001]).results == [0x7FA00001]
    assert wat_run(wat, 'id', [0xFF800001]).results == [0xFF800001]
    assert wat_run(wat, 'c').results == [0x7FA00001, 0xFFF4000000000001]


def test_oracle_v128_params_and_results():
    wat = '''(module
      (func (export "k") (result v128 i32)
        v128.const i32x4 1 2 3 0x80000000 i32.const -1)
      (func (export "add") (param v128 v128) (result v128)
        local.get 0 local.get 1 i64x2.add))'''
    assert wat_run(wat, 'k').results == [
        (0x80000000 << 96) | (3 << 64) | (2 << 32) | 1, 0xFFFFFFFF]
    a = (5 << 64) | 0xFFFFFFFFFFFFFFFF
    b = (7 << 64) | 2
    assert wat_run(wat, 'add', [a, b]).results == [(12 << 64) | 1]


def test_oracle_state_globals_memory_tables():
    wat = '''(module
      (memory (export "mem") 1 1)
      (global (export "gf") (mut f32) (f32.const 0))
      (global (export "gv") (mut v128) (v128.const i64x2 0 0))
      (global (export "gi") i64 (i64.const -2))
      (global (export "ge") (mut externref) (ref.null extern))
      (table (export "t") 3 funcref)
      (elem (i32.const 1) func $f)
      (func $f (export "f") (param externref) (result externref funcref)
        (global.set $gf_ (f32.const nan:0x1))
        (global.set $gv_ (v128.const i8x16 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16))
        (global.set $ge_ (local.get 0))
        (i32.store (i32.const 8) (i32.const 0xdeadbeef))
        local.get 0 ref.func $f)
      (global $gf_ (export "gf_") (mut f32) (f32.const 0))
      (global $gv_ (export "gv_") (mut v128) (v128.const i64x2 0 0))
      (global $ge_ (export "ge_") (mut externref) (ref.null extern)))'''
    out = wat_run(wat, 'f', [syntax.ExternRef(3)])
    assert out.trap is None
    assert out.results == [syntax.ExternRef(3), wo.NONNULL_FUNCREF]
    assert out.globals['gf_'] == 0x7F800001
    assert out.globals['gv_'] == int.from_bytes(bytes(range(1, 17)), 'little')
    assert out.globals['ge_'] == syntax.ExternRef(3)
    assert out.globals['gi'] == 0xFFFFFFFFFFFFFFFE
    assert out.globals['ge'] is None
    assert out.memories['mem'][8:12] == bytes([0xEF, 0xBE, 0xAD, 0xDE])
    assert len(out.memories['mem']) == 65536
    assert out.tables['t'] == [None, wo.NONNULL_FUNCREF, None]


TRAP_WAT = '''(module
  (type $ii (func (param i32) (result i32)))
  (table 2 funcref) (elem (i32.const 0) func $id)
  (memory 1)
  (func $id (param i32) (result i32) local.get 0)
  (func (export "div0") (result i32) (i32.div_u (i32.const 1) (i32.const 0)))
  (func (export "ovf") (result i32) (i32.div_s (i32.const 0x80000000) (i32.const -1)))
  (func (export "conv") (result i32) (i32.trunc_f32_s (f32.const nan)))
  (func (export "oob") (result i64) (i64.load (i32.const 65530)))
  (func (export "unr") unreachable)
  (func (export "null") (result i32) (call_indirect (type $ii) (i32.const 0) (i32.const 1)))
  (func (export "undef") (result i32) (call_indirect (type $ii) (i32.const 0) (i32.const 2)))
  (func (export "sig") (call_indirect (i32.const 0)))
  (func (export "tget") (result funcref) (table.get (i32.const 5)))
  (func (export "tinit") (table.init 1 (i32.const 0) (i32.const 0) (i32.const 1)))
  (func (export "tdropped") (table.init 0 (i32.const 0) (i32.const 0) (i32.const 1)))
  (func (export "minit") (memory.init 0 (i32.const 65535) (i32.const 0) (i32.const 2)))
  (func $rec (export "rec") (result i32) (i32.add (call $rec) (i32.const 1)))
  (func (export "spin") (loop (br 0)))
  (elem func $id)
  (data "ab"))'''


@pytest.mark.parametrize('entry,message', [
    ('div0', 'integer divide by zero'),
    ('ovf', 'integer overflow'),
    ('conv', 'invalid conversion to integer'),
    ('oob', 'out of bounds memory access'),
    ('unr', 'unreachable'),
    ('null', 'uninitialized element'),
    ('undef', 'undefined element'),
    ('sig', 'indirect call type mismatch'),
    ('tget', 'out of bounds table access'),
    ('tinit', None),
    ('tdropped', 'out of bounds table access'),
    ('minit', 'out of bounds memory access'),
    ('rec', 'call stack exhausted'),
])
def test_oracle_trap_messages(entry, message):
    out = wat_run(TRAP_WAT, entry)
    assert out.trap == message
    assert (out.results is None) == (message is not None)


def test_oracle_out_of_fuel():
    out = wat_run(TRAP_WAT, 'spin', fuel=5000)
    assert out.trap == wo.OUT_OF_FUEL and out.fuel_used == 5000


def test_export_types_reads_v128_without_wasmtime():
    wasm = wasmtime.wat2wasm('''(module (func (export "f") (param v128 externref) (result f32))
      (global (export "g") (mut v128) (v128.const i64x2 0 0)) (memory (export "m") 1))''')
    assert wo.export_types(wasm) == {
        'f': ('func', (['v128', 'externref'], ['f32'])),
        'g': ('global', ('v128', True)),
        'm': ('memory', None)}


class _LoneSwitch(gen.FuncGen):
    """Function bodies that are one generated switch and nothing else (the
    cases hold only their marks), so that its memory word can be foretold."""

    def seq(self, st, out, steps, loop_counter=None):
        if self.depth == 0:
            self.do_switch(st, None)
        self.finish(st, out)


def _switch_path(body):
    """(slot, cases expected to run, whether the default was chosen,
    whether a case broke out) of the switch in ``body`` (Instr list) with a
    constant selector, read off its shape; None for other selectors."""
    k = next(i for i, ins in enumerate(body) if ins.op == 'br_table')
    if body[k - 1].op != 'i32.const':
        return None
    targets, default = body[k].imm
    sel = body[k - 1].imm
    cases, breaks = [], set()
    i = k + 1
    while i + 9 < len(body) and body[i].op == 'end' and body[i + 3].op == 'i32.load':
        slot = body[i + 1].imm
        cases.append(len(cases))
        i += 9                                  # end and the 8 instructions of the mark
        if body[i].op == 'br':
            breaks.add(len(cases) - 1)
            i += 1
    first = targets[sel] if sel < len(targets) else default
    path = []
    for case in range(first, len(cases)):
        path.append(case)
        if case in breaks:
            break
    return slot, path, sel >= len(targets), bool(path) and path[-1] < len(cases) - 1


def test_switch_cases_record_the_dispatch_in_memory(monkeypatch):
    """Every case of a generated switch leaves its number in the switch's
    memory word (word * 8 + case + 1), so the word tells which label the
    br_table chose (wasmtime's run against the cases read off the code),
    and the selectors take the default as well as listed targets."""
    monkeypatch.setattr(gen, 'FuncGen', _LoneSwitch)
    seen = {'default': 0, 'listed': 0, 'break': 0, 'cases run': 0}
    for seed in range(120):
        # (no tail chain: the entry may run it first, and it stores into memory 0)
        gm = gen.from_seed(seed, features=gen.FEATURES - {'tail-call'})
        if gm.memory is None:       # (a module without memory has no switches)
            continue
        assert gen.validate(gm.wasm) is None
        found = _switch_path(gm.module.funcs[0].body)
        if found is None:
            continue
        slot, path, by_default, broke = found
        init = bytearray(256)
        for d in gm.module.datas:
            if d.mode == 'active' and d.memory == 0:
                off = d.offset[0].imm
                init[off:off + len(d.init)] = d.init
        word = int.from_bytes(init[slot:slot + 4], 'little')
        for case in path:
            word = (word << 3 | (case + 1)) & 0xFFFFFFFF
        if not wo.can_run(gm.wasm):
            continue
        out = wo.run(gm.wasm, gm.entry, gm.args[0], fuel=FUEL)
        if out.trap is not None:
            continue
        assert int.from_bytes(out.memories['mem'][slot:slot + 4], 'little') == word, gm.wat
        seen['default' if by_default else 'listed'] += 1
        seen['break'] += broke
        seen['cases run'] += bool(path)
    assert (seen['default'] >= 20 and seen['listed'] >= 8 and seen['break'] >= 1
            and seen['cases run'] >= 40), seen


SIMD_SHAPES = ('v128', 'i8x16', 'i16x8', 'i32x4', 'i64x2', 'f32x4', 'f64x2')


def _types_and_ops(wasm):
    """Every value type and every instruction name of a decoded module."""
    from engine.embedding import module_decode
    m = module_decode(wasm)
    # function types' params and results (GC's struct and array types have none)
    types = {t for ft in m.types if isinstance(ft, syntax.FuncType) for t in (*ft.params, *ft.results)}
    types |= {t for f in m.funcs for t in f.locals} | {g.type.valtype for g in m.globals}
    ops, imms = set(), []
    for expr in [f.body for f in m.funcs] + [g.init for g in m.globals]:
        for ins in expr:
            ops.add(ins.op)
            imms.append((ins.op, ins.imm))
            if ins.op in ('block', 'loop', 'if') and isinstance(ins.imm, str):
                types.add(ins.imm)
            if ins.op == 'select' and ins.imm:
                types.update(ins.imm)
    return m, types, ops, imms


def test_features_off_leave_out_simd_and_reference_types():
    """Without features: no v128 type or instruction anywhere, no reference
    type, one table, no ref/table instruction or typed select (what the WAMR
    fork's iwasm, built without SIMD and reference types, loads), checked on
    the decoded module and by wasm-tools validating Wasm 2.0 without both."""
    seen = set()
    for seed in range(150):
        g = gen.from_seed(seed, features=frozenset())
        m, types, ops, imms = _types_and_ops(g.wasm)
        assert types <= {'i32', 'i64', 'f32', 'f64'}, (seed, types)
        assert not [o for o in ops if o.split('.')[0] in SIMD_SHAPES], seed
        assert not [o for o in ops if o.startswith(('ref.', 'table.', 'elem.'))], seed
        assert not [i for o, i in imms if o == 'select' and i], seed
        assert len(m.tables) == 1 and not m.imports and len(m.elems) == 1, seed
        p = subprocess.run([gen.wasm_tools(), 'validate', '--features=wasm2,-simd,-reference-types',
                            '-'], input=g.wasm, capture_output=True)
        assert p.returncode == 0, (seed, p.stderr)
        seen |= ops
    # ... while still covering the rest of Wasm 2.0
    assert {'call_indirect', 'memory.fill', 'memory.init', 'data.drop', 'i64.trunc_sat_f64_u',
            'i32.extend8_s', 'br_table', 'f64.load', 'i64.store32'} <= seen


def test_default_features_keep_simd_and_reference_types():
    ops, types = set(), set()
    for seed in range(40):
        _, t, o, _ = _types_and_ops(gen.from_seed(seed).wasm)
        ops |= o
        types |= t
    assert {'v128', 'funcref', 'externref'} <= types
    assert any(o.startswith('i32x4.') for o in ops) and 'table.get' in ops
    with pytest.raises(ValueError, match='unknown generator features'):
        gen.from_seed(0, features={'stack-switching'})


def test_host_references_reach_tables_and_globals():
    """Non-null externrefs come only from the host (the entry's arguments):
    the entry of a module with an externref scratch table often takes one
    and stores it there, and the values are spread over 32 bits (not only
    below the function count, where a funcref check would pass them)."""
    from engine.syntax import ExternRef
    from fuzz import oracle
    in_tables = large = 0
    for seed in range(200):     # 36-38 and 16-18 of them in recent generators
        gm = gen.from_seed(seed)
        for args in gm.args[:1]:
            out = oracle.uninterrupted(gm.wasm, gm.entry, args)
            refs = [v for t in out.tables for v in t if isinstance(v, ExternRef)]
            in_tables += bool(refs)
            large += any(r.value >= 4 for r in refs)
            assert all(r.value != 0xFFFFFFFF for r in refs)      # the null cell
    assert in_tables >= 25 and large >= 10, (in_tables, large)


def test_loop_back_branches_cross_blocks_in_every_compare_shape():
    """Back-branches to a loop from inside a nested block, in each of the
    three loop-test shapes (counter, i32 compare, widened i64 compare): the
    fused compare-and-branch superinstructions then pop labels, the path
    the WAMR run loop's scope had left unreached."""
    from engine import binary
    shapes = {}
    for seed in range(120):     # (the 3.0 actions of fuzz.gen3 thinned the loops of 60)
        for f in binary.decode_module(gen.from_seed(seed).wasm).funcs:
            for prev, ins in zip(f.body, f.body[1:]):
                if ins.op == 'br_if' and ins.imm > 0:
                    shapes[prev.op] = shapes.get(prev.op, 0) + 1
    assert all(shapes.get(op, 0) >= 5 for op in ('local.get', 'i32.ne', 'i64.ne')), shapes


# ---------------------------------------------------------------- Wasm 3.0 features

def _memtypes(m):
    return [i.desc for i in m.imports if i.kind == 'memory'] + [x.type for x in m.mems]


def test_wasm3_features_appear_over_seeds():
    """The default features put several memories (imported ones, 0-page
    ones, 64-bit ones, a 64-bit one alone), memory instructions naming
    memory >= 1 (SIMD lanes included), copies between two memories, data
    segments into memory >= 1 and tail calls of every kind into the modules
    often; what the counts say is also valid under wasm-tools with exactly
    those proposals and ends within the fuel under wasmtime."""
    from collections import Counter
    seen = Counter()
    for seed in range(150):
        gm = gen.from_seed(seed)
        m = gm.module
        mems = _memtypes(m)
        seen['several memories'] += len(mems) > 1
        seen['three memories'] += len(mems) > 2
        seen['an imported memory >= 1'] += sum(1 for i in m.imports if i.kind == 'memory') > 1
        seen['64-bit memory'] += any(t.at == 'i64' for t in mems)
        seen['64-bit memory alone'] += len(mems) == 1 and mems[0].at == 'i64'
        seen['64-bit beside 32-bit'] += len({t.at for t in mems}) == 2
        seen['0-page memory'] += any(t.limits.min == 0 for t in mems)
        seen['data into memory >= 1'] += any(d.mode == 'active' and d.memory for d in m.datas)
        ops = Counter()
        for f in m.funcs:
            for i in f.body:
                if i.op in ('return_call', 'return_call_indirect'):
                    ops[i.op] += 1
                elif i.op == 'memory.copy' and i.imm[0] != i.imm[1]:
                    ops['memory.copy between two'] += 1
                elif i.op == 'memory.init' and isinstance(i.imm, tuple):
                    ops['memory.init into memory >= 1'] += 1
                elif i.op in ('memory.size', 'memory.grow', 'memory.fill') and i.imm:
                    ops[i.op + ' of memory >= 1'] += 1
                elif isinstance(i.imm, tuple) and '.load' in i.op or '.store' in i.op:
                    if len(i.imm) == (4 if i.op.endswith('_lane') else 3):
                        ops['lane access of memory >= 1' if i.op.endswith('_lane')
                            else 'access of memory >= 1'] += 1
        t64 = [k for k, t in enumerate(m.tables) if t.type.at == 'i64']
        seen['64-bit table'] += bool(t64)
        seen['call through the 64-bit table'] += any(
            i.op in ('call_indirect', 'return_call_indirect') and i.imm[1] in t64
            for f in m.funcs for i in f.body)
        self_tail = any(i.op == 'return_call' and i.imm == k + sum(1 for x in m.imports if x.kind == 'func')
                        for k, f in enumerate(m.funcs) for i in f.body)
        seen['self tail call'] += self_tail
        for k in ops:
            seen[k] += 1
        if seed < 40:
            check_module(gm)
    want = {'several memories': 40, 'three memories': 15, 'an imported memory >= 1': 3,
            '64-bit memory': 25, '64-bit memory alone': 2, '64-bit beside 32-bit': 10,
            '0-page memory': 15, 'data into memory >= 1': 15, 'return_call': 60,
            'return_call_indirect': 6, 'self tail call': 20, 'memory.copy between two': 10,
            'memory.init into memory >= 1': 5, 'memory.size of memory >= 1': 30,
            'memory.grow of memory >= 1': 20, 'memory.fill of memory >= 1': 10,
            'access of memory >= 1': 40, 'lane access of memory >= 1': 3,
            '64-bit table': 40, 'call through the 64-bit table': 10}
    low = {k: (seen[k], n) for k, n in want.items() if seen[k] < n}
    assert not low, (low, seen)


def test_wasm3_modules_need_their_proposals():
    """wasm-tools refuses some of the modules without the 3.0 proposals
    (so the features really are in them) and accepts them all with."""
    refused = 0
    for seed in range(30):
        gm = gen.from_seed(seed)
        assert gen.validate(gm.wasm) is None
        refused += gen.validate(gm.wasm, features=frozenset()) is not None
    assert refused > 15


def test_features_off_leave_out_wasm3_and_keep_the_modules():
    """Without the 3.0 features a seed draws exactly what it drew before
    they existed (the forks' FORK_FEATURES modules do not change): no
    second memory, no 64-bit memory, no tail call."""
    from forks.programs import FORK_FEATURES
    assert not FORK_FEATURES & gen.WASM3_FEATURES
    two = gen.FEATURES - gen.WASM3_FEATURES
    for seed in range(40):
        gm = gen.from_seed(seed, features=two)
        mems = _memtypes(gm.module)
        assert len(mems) <= 1 and all(t.at == 'i32' for t in mems), seed
        assert not any(i.op.startswith('return_call') for f in gm.module.funcs for i in f.body), seed
        assert gen.validate(gm.wasm, features=two) is None
    # the default generator draws like the 2.0 one up to its first 3.0
    # decision (after the module-level 2.0 plan): the same functions' types
    for seed in range(40):
        a, b = gen.ModuleGen(gen.RandomChooser(seed), features=two), gen.ModuleGen(gen.RandomChooser(seed))
        a.build()
        b.build()
        assert (a.sigs, a.linked, a.has_memory, a.mem_limits) == (b.sigs, b.linked, b.has_memory,
                                                                  b.mem_limits)


def test_tail_chains_replace_frames():
    """A module with a long tail chain runs it in a bounded number of
    frames: both models replace the frame at each return_call, so the
    deepest stack is far below the chain's iterations."""
    from engine import embedding
    from fuzz import oracle
    checked = 0
    for seed in range(200):
        mg = gen.ModuleGen(gen.RandomChooser(seed))
        gm = mg.build()
        if mg.chain is None or mg.chain.iterations < 40 or gm.params:
            continue
        loop = mg.chain.first + len(mg.chain.sigs)
        for runtime in ('wasmedge', 'wamr'):
            store = embedding.store_init(runtime)
            inst = oracle._instantiate(store, gm.wasm, True)
            ex = store.new_executor(runtime)
            ex.start(oracle._entry(inst, gm.entry), list(gm.args[0]))
            deepest = in_loop = 0
            try:
                while not ex.run(1):
                    deepest = max(deepest, len(ex.frames))
                    in_loop += store.funcs[ex.frames[-1].func].module is inst and \
                        inst.funcaddrs.index(ex.frames[-1].func) == loop
            except Exception:
                pass
            if in_loop > 40 * 10:
                assert deepest < 12, (seed, runtime, deepest)
                checked += 1
        if checked >= 4:
            break
    assert checked >= 4


def test_table_init_names_a_passive_segment():
    """An active or declarative segment is dropped at instantiation, so a
    ``table.init`` of one traps unless empty: every generated one names a
    passive segment, in linked modules (whose scratch table is table 0) as
    in the others (the validator checks its type against the table's)."""
    from fuzz import linked
    seen = set()
    for seed in range(200):
        m = gen.from_seed(seed).module
        is_linked = any(i.module == linked.PROVIDER for i in m.imports)
        for f in m.funcs:
            for i in f.body:
                if i.op == 'table.init':
                    elem, _ = i.imm
                    assert m.elems[elem].mode == 'passive', (seed, i.imm)
                    seen.add(is_linked)
    assert seen == {False, True}


def _linked_snapshots(seed, gm, runtime):
    """Snapshots (with their module's function count) of ``gm``'s first
    call stopped at a third and two thirds of its run and at its stop,
    saved with the provider as the peer."""
    from engine import embedding
    from engine.migrate import checkpoint
    from engine.migrate.translate import snapshot_from_images
    from fuzz import linked, oracle
    total = oracle.uninterrupted(gm.wasm, gm.entry, gm.args[0], runtime).steps
    for k in sorted({total // 3, 2 * total // 3, *gm.stops}):
        store = embedding.store_init(runtime, tier='interp')
        inst = oracle._instantiate(store, gm.wasm, True)
        ex = store.new_executor()
        ex.start(oracle._entry(inst, gm.entry), list(gm.args[0]))
        try:
            if k < 1 or ex.run(k):
                continue
            images, ended, _ = oracle._save(ex, inst, 'x' * 64, gm.entry, [])
        except Exception:
            continue                    # trapped or threw before k
        if not ended:
            yield k, len(inst.funcaddrs), snapshot_from_images(images, inst.module, inst.info)


def test_linked_modules_hold_links_at_checkpoints():
    """The provider hands the main module functions it does not export
    (``ModuleGen.links``): checkpoints of linked modules save them as
    links to the provider (link.img), in frames (the entry's local and
    operands), globals, tables and exception fields, in both models; at
    a dive's stop frames above the entry hold one too.  The links name the provider's
    private functions, and a save without the provider as a peer refuses
    them (they are not the module's own functions)."""
    from engine import embedding
    from engine.migrate import checkpoint
    from engine.migrate.checkpoint import ForeignInstanceError
    from engine.migrate.exnstate import Exn
    from fuzz import linked, oracle
    places = collections.Counter()
    modules = 0
    for seed in range(120):
        gm = gen.from_seed(seed)
        if not gm.module.imports:
            continue
        modules += 1
        for runtime in ('wasmedge', 'wamr'):
            for k, n, snap in _linked_snapshots(seed, gm, runtime):
                if not snap.links:
                    continue
                places['saves'] += 1
                assert {(l.instance, l.fidx) for l in snap.links} <= \
                    {(linked.PROVIDER, f) for f in gen.PRIVATE_FUNCS}, (seed, snap.links)

                def held(vals):
                    return any(type(v) is int and v >= n for v in vals)

                def in_exception(v):
                    return isinstance(v, Exn) and (held(v.fields) or any(map(in_exception, v.fields)))
                places['frame'] += any(held(fr.locals + fr.stack) for fr in snap.frames)
                places['exception'] += any(map(in_exception, snap.globals))
                places['above the entry'] += any(held(fr.locals + fr.stack) for fr in snap.frames[1:])
                places['global'] += held(snap.globals)
                places['table'] += any(held(t) for t in snap.tables)
                places['two links'] += len(snap.links) > 1
        if modules >= 12:
            break
    assert modules >= 12
    assert places['saves'] >= 30, places
    assert all(places[p] for p in ('frame', 'above the entry', 'global', 'table', 'two links',
                                   'exception')), places
    # without the peer, the same state cannot be saved
    gm = next(g for g in map(gen.from_seed, range(120)) if g.module.imports)
    store = embedding.store_init('wasmedge')
    inst = oracle._instantiate(store, gm.wasm, True)
    ex = store.new_executor()
    ex.start(oracle._entry(inst, gm.entry), list(gm.args[0]))
    ex.run(1)
    with pytest.raises(ForeignInstanceError):
        checkpoint.save(ex, inst, 'x' * 64, gm.entry)
    assert checkpoint.save(ex, inst, 'x' * 64, gm.entry, peers=linked.peers(store, inst)).links


# ---- ModuleGen.reach: early exits

def _early_exit(body):
    """(global, result constant, instructions run when taken, whether the
    compare is 64-bit) of the early exit a body starts with
    (``ModuleGen.early_exit``): its block above an operand of its own,
    dropped after the global is set; a 64-bit compare branches out of three
    more blocks above the temporaries (which the outer block's ``br 0``
    drops when not taken), a narrow one with an odd constant out of one
    more."""
    assert body[0].op == 'i32.const' and body[1].op == 'block' and body[1].imm == syntax.I32
    b = next(i for i, ins in enumerate(body) if ins.op == 'br_if')
    wide = body[b - 1].op in ('i64.ge_u', 'i64.gt_s')
    ops = [i.op for i in body]
    if wide:
        assert body[b].imm == 3                     # a wide one leaves three inner blocks too
        assert body[b - 2].op == 'i64.const' and body[b - 3].op == 'i64.extend_i32_u'
        get = b - 4
        temps = get - 1 - 3
        assert ops[temps:get - 1] == ['block'] * 3 and 1 <= temps - 2 <= 2     # above the temporaries
        assert ops[b + 1:b + 9] == ['i32.const', 'i32.add', 'br', 'end', 'end', 'end', 'br', 'end']
        assert body[b + 3].imm == body[b + 7].imm == 0
    else:
        assert body[b - 1].op in ('i32.lt_u', 'i32.ne', 'i32.eq', 'i32.ge_u', 'i32.gt_s')
        assert body[b - 2].op == 'i32.const'
        assert body[b].imm in (0, 1)                # one inner block at most
        assert ops[2:2 + body[b].imm] == ['block'] * body[b].imm
        get = b - 3
        assert get - 1 - 2 - body[b].imm >= 1       # a temporary or two below the result
    assert body[get].op == 'global.get' and body[get - 1].op == 'i32.const'
    end = next(i for i, ins in enumerate(body) if ins.op == 'global.set')
    assert body[end + 1].op == 'drop'
    return body[get].imm, body[get - 1].imm, end + 1 - 3, wide


@pytest.mark.parametrize('runtime', oracle.RUNTIMES)
def test_early_exits_discard_their_temporaries(runtime, monkeypatch):
    """Every function of every module starts with an early exit: a
    compare-and-branch (fused by the interpreters) out of a block with 1-2
    temporaries below its result.  The entry's is taken: stopped a few
    instructions after it in the interpreter tier, the entry's frame holds
    the cells validation gives (``checkpoint.save`` checks), the global
    holds the block's result, and the set migrates into the other model
    and ends as the uninterrupted run does."""
    from engine import embedding
    from engine.migrate import checkpoint
    from fuzz import linked
    # the newer wide exception and bare i31 come first in the entry
    late_off(monkeypatch, newer_than='gc_wide')
    n, wide, deep = 0, 0, 0
    for seed in range(30):
        gm = gen.from_seed(seed)
        for f in gm.module.funcs[1:len(gm.module.funcs)]:
            if len(f.body) > 1 and f.body[1].op == 'block' and f.body[1].imm == syntax.I32:
                wide += _early_exit(f.body)[3]
                b = next(i for i, ins in enumerate(f.body) if ins.op == 'br_if')
                if f.body[b - 1].op.startswith('i32.'):     # narrow: an odd constant, one block more
                    assert f.body[b].imm == f.body[b - 2].imm & 1, seed
                    deep += f.body[b].imm
        g, result, steps, entry_wide = _early_exit(gm.module.funcs[0].body)
        assert not entry_wide
        body = gm.module.funcs[0].body
        assert next(ins.imm for ins in body if ins.op == 'br_if') == 0    # the entry's: none
        store = embedding.store_init(runtime, tier='interp')
        inst = oracle._instantiate(store, gm.wasm, True)
        ex = store.new_executor()
        ex.start(oracle._entry(inst, gm.entry), list(gm.args[0]))
        try:
            if ex.run(steps + 6):
                continue
        except Exception:
            continue
        images = checkpoint.save(ex, inst, 'x' * 64, gm.entry, [], peers=linked.peers(store, inst))
        snap = oracle.snapshot_from_images(images, inst.module, inst.info)
        assert snap.globals[g] == result, seed
        other = 'wamr' if runtime == 'wasmedge' else 'wasmedge'
        assert not oracle.check(gm.wasm, gm.entry, gm.args[0], [(runtime, steps + 6), (other, None)],
                                tier='interp'), seed
        n += 1
    assert n >= 20, n
    assert wide >= 10, wide         # outside the entries, compares widened to i64
    assert deep >= 10, deep         # ... or narrow ones inside one more block


def _fused_if_else(body):
    """The run ``ModuleGen.fused_if_else`` appended to a body, or None."""
    for k, ins in enumerate(body):
        if ins.op == 'if' and body[k - 1].op in ('i32.lt_u', 'i32.ne', 'i32.ge_s') \
                and body[k + 3].op == 'i32.const' and body[k + 4].op == 'br' and body[k + 4].imm == 0:
            assert body[k - 3].op == 'global.get' and body[k + 2].op == 'else'
            assert body[k + 5].op == 'end' and body[k + 6].op == 'global.set'
            return body[k - 3:k + 7]
    return None


@pytest.mark.parametrize('runtime', oracle.RUNTIMES)
def test_fused_if_else_arms_branch_out_and_migrate_at_every_stop(runtime):
    """Half the non-entry functions end their early exit with a fused
    compare-and-if whose else arm leaves by ``br 0``.  Each such run, in a
    function of its own with the global below and above the constant, stops
    at every instruction in the interpreter tier and migrates into the other
    model (and back), ending with wasmtime's global."""
    found, checked = 0, 0
    for seed in range(12):
        gm = gen.from_seed(seed)
        for f in gm.module.funcs[1:]:
            run = _fused_if_else(f.body)
            if run is None:
                continue
            found += 1
            if checked >= 6:
                continue
            k = run[1].imm
            text = ' '.join('if (result i32)' if i.op == 'if' else
                            f'{i.op}{"" if i.imm is None else " " + str(i.imm)}'
                            for i in run[1:-1])
            for start in (k - 1 if k else 0, k + 3):
                wat = (f'(module (global $g (mut i32) (i32.const {start})) (func (export "run") (result i32)'
                       f' global.get $g {text} global.set $g global.get $g))')
                wasm = wasmtime.wat2wasm(wat)
                want = wasmtime.Instance(s := wasmtime.Store(), wasmtime.Module(s.engine, wasm), []
                                         ).exports(s)['run'](s) & 0xFFFFFFFF
                ref = oracle.uninterrupted(wasm, 'run', (), runtime, tier='interp')
                assert ref.results == [want], (seed, wat)
                other = 'wamr' if runtime == 'wasmedge' else 'wasmedge'
                for n in range(ref.steps):
                    assert not oracle.check(wasm, 'run', (), [(runtime, n), (other, 1), (runtime, None)],
                                            reference=runtime, ref=ref, tier='interp'), (seed, n, wat)
            checked += 1
    assert found >= 10 and checked == 6, (found, checked)
