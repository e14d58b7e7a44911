"""The dives' variations (``fuzz.gen.ModuleGen.dive_variants``): at the
stop a generated module names, its frames hold what the rest of the
campaign's modules never do: functions past index 256 in a module without
tail calls, a caller whose call names one type entry while the function
above it was declared with its twin, and non-nullable locals not yet set in
functions after the imports.  Each is asserted on the generated module and
on the frames both models hold there, and such modules pass the oracle."""

import random

from engine import embedding
from engine.migrate import checkpoint, images as im
from engine.migrate.translate import CALLS_THROUGH, snapshot_from_images
from engine.syntax import RefType
from fuzz import gen, linked, oracle

SEEDS = range(400)


def _dives():
    for seed in SEEDS:
        gm = gen.from_seed(seed)
        if gm.dive is not None:
            yield seed, gm


def _tail_calls(module):
    return any(ins.op.startswith('return_call') for f in module.funcs for ins in f.body)


def _at_stop(gm, runtime='wasmedge'):
    """(module, snapshot) of the run stopped at the module's stop."""
    store = embedding.store_init(runtime, tier='interp')
    inst = oracle._instantiate(store, gm.wasm, True)
    ex = store.new_executor()
    entry = oracle._entry(inst, gm.entry)
    ex.start(entry, list(gm.args[0]))
    assert ex.run(gm.stops[0]) is False and ex.steps == gm.stops[0]
    images = checkpoint.save(ex, inst, im.module_sha256(gm.wasm), gm.entry,
                             list(store.funcs[entry].type.results), peers=linked.peers(store, inst))
    return inst.module, snapshot_from_images(images, inst.module, inst.info)


def _calls_at_stop(module, snap):
    """(caller frame, callee frame, call instruction) at the stop, lowest first."""
    n = len(module.imported('func'))
    for low, high in zip(snap.frames, snap.frames[1:]):
        yield low, high, module.funcs[low.fidx - n].body[low.pc]


def test_wide_dives_call_functions_past_256_in_modules_without_tail_calls():
    """Most dives of modules without tail calls (and a few others) come
    after 257-264 empty functions: at the stop, in both models, frames
    stand at a ``call`` of a function index >= 257 that runs above them.
    Modules made without reference types (the forks') never get them."""
    found, wide, total = [], 0, 0
    for seed, gm in _dives():
        total += 1
        module = gm.module
        if len(module.funcs) + len(module.imported('func')) <= 256:
            continue
        wide += 1
        if _tail_calls(module):
            continue
        for rt in oracle.RUNTIMES:
            m, snap = _at_stop(gm, rt)
            high = [(low.fidx, ins.imm) for low, hi, ins in _calls_at_stop(m, snap)
                    if ins.op == 'call' and ins.imm >= 257 and hi.fidx == ins.imm]
            assert high, (seed, rt)
        found.append(seed)
    assert len(found) >= 3 and wide < total, (found, wide, total)
    for seed in range(40):
        gm = gen.from_seed(seed, features=frozenset())
        assert len(gm.module.funcs) < 64, seed


def test_dives_call_through_a_twin_of_the_callees_type():
    """A dive's call_indirect / call_ref names one type entry while the
    function it called was declared with another, structurally equal one
    (valid: the call's check is structural); at the stop that caller holds
    the callee's frame above it, also in modules without tail calls."""
    found = []
    for seed, gm in _dives():
        module = gm.module
        m, snap = _at_stop(gm)
        twins = [(ins.op, hi.fidx) for low, hi, ins in _calls_at_stop(m, snap)
                 if ins.op in CALLS_THROUGH
                 and (named := ins.imm if ins.op == 'call_ref' else ins.imm[0])
                 != (declared := m.funcs[hi.fidx - len(m.imported('func'))].typeidx)
                 and m.types[named] == m.types[declared]]
        if twins:
            assert len(set(module.types)) < len(module.types), seed
            found.append((seed, _tail_calls(module), {op for op, _ in twins}))
    assert len(found) >= 10, found
    assert any(not tail for _, tail, _ in found), found
    assert {'call_indirect', 'call_ref'} <= set().union(*(ops for _, _, ops in found)), found


def test_dives_hold_unset_non_nullable_locals_after_the_imports():
    """In a linked module (imported functions first), frames of the dive
    hold a non-nullable typed local that is set only after their call: at
    the stop it is null in both models, and the set translates."""
    found = []
    for seed, gm in _dives():
        m = gm.module
        n = len(m.imported('func'))
        if not n:
            continue
        frames = []
        for rt in oracle.RUNTIMES:
            module, snap = _at_stop(gm, rt)
            frames.append([(fr.fidx, k) for fr in snap.frames for k, (t, v) in
                           enumerate(zip(fr.types, fr.locals))
                           if isinstance(t, RefType) and not t.nullable and v is None])
        assert frames[0] == frames[1], seed
        if frames[0]:
            assert all(fidx >= n for fidx, _ in frames[0])
            found.append(seed)
    assert len(found) >= 3, found


def test_the_oracle_passes_modules_with_every_variation():
    """A module with all three (wide, twin types, late locals), without
    tail calls, checked as the campaign checks it, wasmtime included."""
    for seed, gm in _dives():
        m = gm.module
        if _tail_calls(m) or len(m.funcs) <= 256 or len(set(m.types)) == len(m.types) or \
                not any(isinstance(t, RefType) and not t.nullable for f in m.funcs[-4:] for t in f.locals) \
                or not oracle.wasmtime_runs(gm.wasm):
            continue
        checks, failure = oracle.check_module(gm.wasm, gm.entry, gm.args[:1], random.Random(seed),
                                              stops=gm.stops)
        assert failure is None and checks > 10, (seed, failure)
        return
    raise AssertionError('no module with every variation')
