"""Divergence localisation (issue 11): ``fuzz.trace`` finds the first
instruction where a migrated run departs from the uninterrupted one.

Hand-written modules with a deliberate fault switched on, where the point
is known by construction (which instruction sits after the checkpoint, the
value a swapped i64 must show, the instruction that reads the dropped
segment), plus the reproducers a real mutation check writes for three
faults, checked against the checkpoint position counted independently
(plain ``run(1)`` steps, not the tracer) and against the same replay with
the fault off.
"""

import json
import os
import random
import subprocess
import sys

import pytest

from engine import embedding, faults
from fuzz import gen, linked, oracle, trace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def wat(src):
    import wasmtime
    return wasmtime.wat2wasm(src)


@pytest.fixture
def fault(monkeypatch):
    def on(name):
        monkeypatch.setattr(faults, name.upper(), True)
    return on


def test_no_divergence_without_a_fault():
    for seed in range(6):
        gm = gen.from_seed(seed)
        args = tuple(gm.args[0])
        ref = oracle.uninterrupted(gm.wasm, gm.entry, args)
        for hops in oracle.plans(random.Random(seed), ref.steps):
            assert not oracle.check(gm.wasm, gm.entry, args, hops)
            r = trace.divergence(gm.wasm, gm.entry, args, hops)
            assert not r['found'], (seed, hops, r)
            assert 'kind' not in r


def test_swapped_i64_is_seen_in_the_state_right_after_the_restore(fault):
    fault('i64_cell_order')
    wasm = wat('(module (func (export "run") (result i64) '
               'i64.const 0x100000002 nop i64.const 0 i64.add))')
    r = trace.divergence(wasm, 'run', (), [('wamr', 1), ('wasmedge', None)])
    # checkpoint after one instruction: the value sits on the stack, halves swapped
    assert r['found'] and r['kind'] == 'state after restore'
    assert r['index'] == 1 and r['after_checkpoint'] == 1 and r['checkpoints'] == [1]
    assert r['what'] == ['frame 0 (main function 0) operand 0: i64:0x200000001, expected i64:0x100000002']
    assert r['uninterrupted']['op'] == r['migrated']['op'] == 'nop'


def test_kept_data_segment_is_reported_at_the_restore_and_shows_at_the_memory_init(fault):
    fault('neutral_dropped')
    wasm = wat('(module (memory 1) (data $d "abcd") (func (export "run") (result i32) '
               'data.drop $d nop i32.const 0 i32.const 0 i32.const 4 memory.init $d '
               'i32.const 0 i32.load))')
    kept = {}
    r = trace.divergence(wasm, 'run', (), [('wasmedge', 1), ('neutral:wamr', None)], keep=kept)
    # wrong where it happened: the restore kept the dropped segment
    assert r['found'] and r['kind'] == 'state after restore' and r['index'] == 1
    assert r['what'] == ['dropped data segments [], expected [0]']
    # ... and where it first shows: memory.init copies instead of trapping
    x, y = (trace.compared(kept[k])[5] for k in ('uninterrupted', 'migrated'))
    assert x['op'] == y['op'] == 'memory.init' and x['pc'] == y['pc'] == {'wasmedge': 5, 'wamr': 10}
    assert x['trap'] == 'out of bounds memory access' and y['trap'] is None
    assert y['writes'] == [[0, b'abcd'.hex()]]


def test_wrong_label_height_diverges_at_the_first_instruction_using_the_lost_value(fault):
    fault('frame_sp')
    wasm = wat('(module (func (export "run") (result i64) '
               'i64.const 9 (block (result i64) i64.const 5 nop br 0) i64.add))')
    r = trace.divergence(wasm, 'run', (), [('wasmedge', 3), ('wamr', None)])
    # compared: i64.const, i64.const, nop | br, i64.add: the branch drops the
    # outer i64 and the add is the first instruction that cannot be done
    assert r['checkpoints'] == [2]
    assert r['found'] and r['kind'] == 'instruction' and r['index'] == 4
    assert r['uninterrupted']['op'] == 'i64.add' and r['uninterrupted']['top'] == 'i64:0xe'
    assert r['migrated']['trap'].startswith('engine: ')


def test_replay_trace_shows_both_states_and_writes_json_lines(tmp_path, fault):
    wasm = wat('(module (func (export "run") (result i64) '
               'i64.const 0x100000002 nop i64.const 0 i64.add))')
    d = tmp_path / 'repro'
    d.mkdir()
    (d / 'module.wasm').write_bytes(wasm)
    (d / 'case.json').write_text(json.dumps({'entry': 'run', 'args': [],
                                             'hops': [['wamr', 1], ['wasmedge', None]]}))
    env = dict(os.environ, PYTHONPATH=ROOT, WASM_MIGRATE_FAULT='i64_cell_order')
    p = subprocess.run([sys.executable, '-m', 'fuzz.replay', str(d), '--trace', '--trace-out',
                        str(tmp_path / 'tr')], cwd=ROOT, env=env, capture_output=True, text=True)
    assert p.returncode == 1, p.stderr
    assert 'first divergent instruction: #1' in p.stdout
    assert 'i64:0x200000001, expected i64:0x100000002' in p.stdout
    lines = (tmp_path / 'tr' / 'migrated.jsonl').read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    assert [r['op'] for r in recs] == ['i64.const', 'nop', 'i64.const', 'i64.add', 'end']
    assert [r['model'] for r in recs] == ['wamr', 'wasmedge', 'wasmedge', 'wasmedge', 'wasmedge']
    # i64.const 0x100000002 is 1 opcode + 5 LEB128 bytes: nop sits at byte 6
    assert recs[0]['pc'] == {'wasmedge': 0, 'wamr': 0} and recs[1]['pc'] == {'wasmedge': 1, 'wamr': 6}
    assert recs[0]['top'] == 'i64:0x100000002'
    # without the fault: the same command finds nothing
    env.pop('WASM_MIGRATE_FAULT')
    p = subprocess.run([sys.executable, '-m', 'fuzz.replay', str(d), '--trace'], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    assert p.returncode == 0 and 'no instruction differs' in p.stdout


def _compared_before(wasm, entry, args, runtime, steps):
    """How many non-structural instructions the uninterrupted run in
    ``runtime`` executes in its first ``steps`` instructions: plain
    ``run(1)`` steps and the function bodies, not the tracer."""
    store = embedding.store_init(runtime)
    module = linked.decoded(wasm)
    inst = embedding.module_instantiate(store, module, linked.imports_for(store, module, wasm),
                                        run_start=True)
    ex = store.new_executor()
    ex.start(inst.exports[entry][1], list(args))
    n = 0
    while ex.steps < steps:     # counted instructions: a WasmEdge false `if` counts its `else` too
        fi = store.funcs[ex.frames[-1].func]
        body = fi.code.body
        pc = ex.pc if runtime == 'wasmedge' else next(i for i, x in enumerate(body) if x.offset == ex.pc)
        op = body[pc].op
        n += not (op in ('block', 'loop', 'else') or (op == 'end' and pc != len(body) - 1))
        if ex.run(1):
            break
    return n


MUTANT_FAULTS = ('i64_cell_order', 'global_width', 'neutral_dropped')


@pytest.fixture(scope='module')
def mutation_check(tmp_path_factory):
    out = tmp_path_factory.mktemp('mutants')
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop('WASM_MIGRATE_FAULT', None)
    p = subprocess.run([sys.executable, '-m', 'fuzz.mutants', *MUTANT_FAULTS, '--time', '90',
                        '--out', str(out), '--campaign-arg=--generator=hypothesis,smith'],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return out, json.loads((out / 'mutants.json').read_text())


@pytest.mark.parametrize('name', MUTANT_FAULTS)
def test_mutation_check_reproducers_name_the_first_divergent_instruction(mutation_check, name):
    out, report = mutation_check
    row = next(r for r in report['results'] if r['fault'] == name)
    dirs = [os.path.join(out, name, 'failures', fid)
            for fid, v in row['reproducers'].items() if v['verdict'] == 'fault']
    assert dirs
    for d in dirs:
        with open(os.path.join(d, 'case.json')) as f:
            case = json.load(f)
        with open(os.path.join(d, 'module.wasm'), 'rb') as f:
            wasm = f.read()
        args = tuple(oracle.decode_value(v) for v in case['args'])
        hops = [tuple(h) for h in case['hops']]
        r = case['divergence']
        assert r['found'], (d, r)
        first = _compared_before(wasm, case['entry'], args, hops[0][0], hops[0][1])
        if r['kind'] in ('state after restore', 'migration failed'):
            # wrong at a checkpoint: with one checkpoint, exactly the one the case names
            assert r['index'] == first if len(hops) == 2 else r['index'] >= first
            assert r['after_checkpoint'] == r['index']
        else:
            assert r['index'] >= first      # an instruction after the first restore
        swapped = [x for x in r['what'] if 'i64:' in x]
        if name == 'i64_cell_order' and r['kind'] == 'state after restore' and swapped:
            got, want = (int(v.split('i64:')[1], 16)
                         for v in swapped[0].split(': ', 1)[1].split(', expected '))
            assert got == ((want & 0xFFFFFFFF) << 32) | (want >> 32)
        if name == 'global_width':
            assert any('global' in x for x in r['what']), r
        # the divergence is the fault's: without it (this process) the traces agree
        assert faults.ACTIVE is None
        again = trace.divergence(wasm, case['entry'], args, hops)
        assert not again['found'], again


def test_a_hop_stops_after_its_count_of_instructions_not_of_single_steps(fault):
    """In the WasmEdge model a false ``if`` with an ``else`` counts both in
    one step; a hop of N instructions must stop where ``run(N)`` stops (the
    campaign's checkpoint), not after N single steps (one instruction
    later: here past the division, whose trap the migrated run would
    otherwise reach before its checkpoint)."""
    fault('neutral_dropped')
    wasm = wat('(module (memory 1) (data $d "abcd") (func (export "run") (result i32) '
               'data.drop $d i32.const 0 (if (then nop) (else nop)) '
               'i32.const 1 i32.const 0 i32.div_u))')
    r = trace.divergence(wasm, 'run', (), [('wasmedge', 8), ('neutral:wamr', None)])
    # 8 instructions: data.drop, i32.const, if + else, nop, end, i32.const,
    # i32.const (7 single steps); the stop is before the division (compared
    # instruction 6: block structure is not compared), and the restore
    # keeps the dropped segment
    assert r['found'] and r['kind'] == 'state after restore', r
    assert r['checkpoints'] == [6] and r['what'] == ['dropped data segments [], expected [0]']


SHARED = '''(module
  (type $n (struct (field (mut i32)) (field (mut (ref null $n)))))
  (global $g (mut (ref null $n)) (ref.null $n))
  (func (export "run") (result i32) (local $l (ref null $n))
    (local.set $l (struct.new $n (i32.const 7) (ref.null $n)))
    (struct.set $n 1 (local.get $l) (local.get $l))
    (global.set $g (local.get $l))
    nop
    (ref.eq (local.get $l) (global.get $g))))'''


@pytest.mark.parametrize('runtime', ['wasmedge', 'wamr'])
def test_a_restored_gc_heap_compares_by_structure_and_sharing(runtime):
    """A restored GC object is a new Python object: the state after the
    restore agrees when the heap has the same shape (a cycle, one object
    shared by a local and a global), and the instruction tops show objects
    by contents, not identity."""
    kept = {}
    # checkpoint before the nop: compared i32.const, ref.null, struct.new,
    # local.set, local.get x2, struct.set, local.get, global.set
    r = trace.divergence(wat(SHARED), 'run', (), [(runtime, 9), ('wasmedge', None)], keep=kept)
    assert r['checkpoints'] == [9] and not r['found'], r
    tops = [x['top'] for x in trace.compared(kept['migrated'])]
    assert tops[2] == '(ref 0):struct(0x7, None)' and tops[7] == '(ref null 0):struct(0x7, struct)'
    assert tops[-2:] == ['i32:0x1', '1']


def _stopped(src, steps):
    """(store, instance, executor) of ``src``'s "run" stopped after
    ``steps`` instructions in the WasmEdge model."""
    store = embedding.store_init('wasmedge')
    inst = embedding.module_instantiate(store, linked.decoded(wat(src)), [])
    ex = store.new_executor()
    ex.start(inst.exports['run'][1], [])
    ex.run(steps)
    return store, inst, ex


def test_the_state_shows_gc_objects_by_number_with_one_heap():
    _, _, ex = _stopped(SHARED, 9)
    s = trace.state(ex, 'wasmedge')
    assert s['frames'][0]['locals'] == ['(ref null 0):struct#0']
    assert s['globals'] == ['struct#0']
    assert [h[0] for h in s['heap']] == ['struct'] and s['heap'][0][2] == (7, ('gc', 0))


def test_split_sharing_after_a_restore_is_reported_at_the_restore(fault):
    fault('gc_identity')
    r = trace.divergence(wat(SHARED), 'run', (), [('wamr', 9), ('wasmedge', None)])
    # the local and the global held one object; the restore made two
    assert r['found'] and r['kind'] == 'state after restore' and r['index'] == 9, r
    assert r['what'][0] == 'global 0: struct#1, expected struct#0'
    assert '2 GC objects reachable, expected 1' in r['what']


SEGMENTS = '''(module
  (table 2 funcref)
  (func $a (result i32) (i32.const 1))
  (func $b (result i32) (i32.const 2))
  (elem $s func $a $b)
  (func (export "run") (result i32)
    (nop)
    (table.init 0 (i32.const 0) (i32.const 0) (i32.const 2))
    (call_indirect (result i32) (i32.const 1))))'''


def test_the_state_shows_element_segments_and_a_wrong_one_is_reported():
    """The state holds each element segment's contents (what table.init
    will copy); a restore that wrote another function into a slot differs
    there, before the table.init that would copy it runs."""
    _, _, ex = _stopped(SEGMENTS, 1)
    good = trace.state(ex, 'wasmedge')
    assert good['elems'] == [[0, 1]] and good['tables'] == [[None, None]]
    store, inst, ex = _stopped(SEGMENTS, 1)
    seg = store.elems[inst.elemaddrs[0]].elem
    seg[1] = seg[0]
    bad = trace.state(ex, 'wasmedge')
    assert bad['elems'] == [[0, 0]]
    assert trace.state_diff(good, bad) == ['element segment 0 differs from slot 1 (2 slots, expected 2)']
