"""The generator's crowded modules (fuzz/gen.py ``ModuleGen.crowd``): about
one in 16 of the modules with reference types holds counts past CPython's
cached small integers and orders nothing else makes (an entry frame of 257
or more values, 257 or more globals, a typed slot holding a function of a
twin type, the entry exported after names sorting after it).  They appear
at the stated frequency over a fixed seed set, leave the modules without
reference types alone, are live at checkpoints in both models, and migrate
like the uninterrupted run (the oracle, wasmtime included)."""

import random

import pytest

from engine import embedding
from engine.migrate import checkpoint, neutral
from engine.syntax import FuncType, RefType
from fuzz import gen, linked, oracle

SEEDS = range(320)


def crowd_shapes(m):
    """The crowd shapes ``m`` (a generated syntax.Module) holds, read from
    the module itself."""
    shapes = set()
    if len(m.funcs[0].locals) >= 257:
        shapes.add('locals')
    if len(m.imported('global')) + len(m.globals) >= 257:
        shapes.add('globals')
    for g in m.globals:
        t = g.type.valtype
        if isinstance(t, RefType) and isinstance(t.heap, int) and g.init[0].op == 'ref.func':
            declared = m.funcs[g.init[0].imm - len(m.imported('func'))].typeidx
            if declared != t.heap and m.types[declared] == m.types[t.heap]:
                shapes.add('twin')
    names = [e.name for e in m.exports]
    if names[-1] == 'run' and any(n > 'run' for n in names[:-1]):
        shapes.add('run last')
    return shapes


@pytest.fixture(scope='module')
def generated():
    return [(s, gen.from_seed(s)) for s in SEEDS]


def crowded(generated):
    return [(s, gm) for s, gm in generated if crowd_shapes(gm.module)]


def test_crowds_appear_about_once_in_16_with_every_shape(generated):
    crowds = crowded(generated)
    assert len(SEEDS) / 32 <= len(crowds) <= len(SEEDS) / 8, len(crowds)
    twins = 0
    for seed, gm in crowds:
        shapes = crowd_shapes(gm.module)
        # never one shape without the others (but the twin, which needs
        # typed references in use)
        assert {'locals', 'globals', 'run last'} <= shapes, (seed, shapes)
        twins += 'twin' in shapes
        assert len(gm.module.funcs[0].locals) >= 257
        assert gm.entry == 'run'
    assert twins >= 3, twins
    for seed, gm in generated:
        if not crowd_shapes(gm.module):
            assert gm.module.exports[0].name == 'run' and len(gm.module.globals) < 257, seed


def test_modules_without_reference_types_are_never_crowded():
    """The forks' modules (made without reference types) keep their seeds'
    modules: no crowd is drawn for them; nor for a fuzzer's input that ran
    out of bytes (every choice then minimal)."""
    plain = frozenset()
    for s in range(160):
        assert not crowd_shapes(gen.from_seed(s, features=plain).module), s
    assert not crowd_shapes(gen.from_bytes(b'').module)
    assert not crowd_shapes(gen.from_bytes(bytes(4)).module)


def _checkpoint(gm, runtime, at):
    store = embedding.store_init(runtime, tier='interp')
    inst = oracle._instantiate(store, gm.wasm, True)
    ex = store.new_executor()
    ex.start(oracle._entry(inst, gm.entry), list(gm.args[0]))
    assert ex.run(at) is False
    return ex, inst


def test_crowds_are_live_at_checkpoints(generated):
    """At a checkpoint after the entry's first instructions, the entry's
    frame holds 257 or more values (WasmEdge) and cells (WAMR), the image
    set and neutral.json list 257 or more globals, and the twin-typed
    global holds its function."""
    seen = 0
    for seed, gm in crowded(generated)[:6]:
        m = gm.module
        snaps = []
        for rt in oracle.RUNTIMES:
            ex, inst = _checkpoint(gm, rt, 2)
            images = checkpoint.save(ex, inst, 'x' * 64, gm.entry, list(gm.results),
                                     peers=linked.peers(ex.store, inst))
            assert len(images.globals) >= 257
            bottom = images.frames[-1]                  # the entry's (frames[0] is the top)
            assert bottom.entry_fidx == len(m.imported('func'))
            assert len(bottom.slot_cells) >= 257 and len(bottom.cells) >= 257
            snap = oracle.snapshot_from_images(images, inst.module, inst.info)
            assert len(snap.frames[0].locals) >= 257 + len(gm.params)
            snaps.append(snap)
            doc = neutral.document_from_snapshot(snap, inst.module, inst.info, 'x' * 64)
            assert len(doc['globals']) >= 257
        # by structure: a GC module's growing array is an object from the
        # start (gen3.ModuleGC.gc_reach), one of each model's heap
        assert [oracle.structural(v) for v in snaps[0].globals] == \
            [oracle.structural(v) for v in snaps[1].globals]
        if 'twin' in crowd_shapes(m):
            # the crowd's last global (a GC module's two float globals follow it)
            k = max(k for k, g in enumerate(m.globals) if g.init[0].op == 'ref.func')
            assert snaps[0].globals[len(m.imported('global')) + k] == m.globals[k].init[0].imm
        seen += 1
    assert seen >= 4


def test_crowded_modules_migrate_like_the_uninterrupted_run(generated):
    """The oracle's checks (wasmtime, both tiers, both models, single and
    multi-hop migrations through image files and neutral.json) on crowded
    modules, one with a twin-typed global among them."""
    crowds = crowded(generated)
    picked = [x for x in crowds if 'twin' in crowd_shapes(x[1].module)][:2] + \
        [x for x in crowds if 'twin' not in crowd_shapes(x[1].module)][:1]
    assert len(picked) == 3
    for seed, gm in picked:
        checks, failure = oracle.check_module(gm.wasm, gm.entry, gm.args, random.Random(seed),
                                              stops=gm.stops)
        assert failure is None and checks > 5, (seed, failure)
