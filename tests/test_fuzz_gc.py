"""The fuzz generator's 'gc' feature (fuzz.gen3, issue 10): GC modules are
valid (wasm-tools with every feature on), the engine's decoder reads back
what fuzz.encode wrote, both executor models and wasmtime agree on their
runs, objects made early are live at a checkpoint in the middle of the
entry, and the oracle compares GC state as structure (fuzz.oracle.GCRef).
GC is one of the generator's default features, so every default campaign
has GC objects live across its checkpoints."""

import dataclasses
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings

from conformance.wat import wasm_tools
from engine import embedding
from engine import syntax as S
from engine.binary import decode_module
from fuzz import encode, gen, linked, oracle

FEATURES = gen.FEATURES
SEEDS = range(24)
GC_OPS = {'struct.new', 'struct.new_default', 'struct.get', 'struct.set', 'array.new_fixed',
          'array.len', 'ref.eq', 'ref.i31', 'extern.convert_any', 'any.convert_extern'}


def _gc_module(seed):
    gm = gen.from_seed(seed, features=FEATURES)
    ops = {i.op for f in gm.module.funcs for i in f.body}
    return gm, ops


def _gc_modules():
    out = [(s, *_gc_module(s)) for s in SEEDS]
    return [(s, gm, ops) for s, gm, ops in out if 'struct.new' in ops]


@pytest.fixture(scope='module')
def gc_modules():
    return _gc_modules()


def _uses_gc(gm):
    return any(i.op == 'struct.new' for f in gm.module.funcs for i in f.body)


def test_gc_is_a_default_feature():
    """Default modules use GC; leaving 'gc' out (or 'function-references',
    which GC's typed references need) leaves it out entirely."""
    assert 'gc' in gen.FEATURES and gen.KNOWN_FEATURES == gen.FEATURES
    defaults = [gen.from_seed(s) for s in range(12)]
    assert sum(map(_uses_gc, defaults)) >= 6
    assert [gm.wasm for gm in defaults[:3]] == [gen.from_seed(s, features=gen.FEATURES).wasm
                                                 for s in range(3)]
    for off in ({'gc'}, {'function-references'}):
        for s in range(12):
            gm = gen.from_seed(s, features=gen.FEATURES - off)
            assert not _uses_gc(gm), (off, s)
            assert gen.validate(gm.wasm, gen.FEATURES - off) is None, (off, s)
    with pytest.raises(ValueError, match='unknown generator features'):
        gen.from_seed(0, features={'gcc'})


def test_most_modules_use_gc(gc_modules):
    # half the modules: three in four of the two thirds not left plain
    assert len(gc_modules) >= len(SEEDS) // 3
    seen = set().union(*(ops for _, _, ops in gc_modules))
    assert GC_OPS <= seen, GC_OPS - seen
    assert {'ref.test', 'ref.cast', 'br_on_cast', 'array.get', 'array.set'} & seen


def test_minimal_draws_still_use_gc():
    # hypothesis shrinks towards the minimal draws, and fuzzer bytes run out
    # into them: a module whose entry still creates, shares and uses
    # objects across its body
    gm = gen.from_bytes(b'', features=FEATURES)
    body = [i.op for i in gm.module.funcs[0].body]
    first_new = body.index('struct.new')
    assert 'ref.eq' in body[first_new:] and 'array.len' in body[first_new:]
    assert gen.validate(gm.wasm, FEATURES) is None
    ref = oracle.uninterrupted(gm.wasm, gm.entry, gm.args[0], 'wasmedge')
    assert oracle.compare_wasmtime(gm.wasm, gm.entry, gm.args[0], ref) == []


def test_gc_modules_validate_with_every_feature(gc_modules):
    for seed, gm, _ in gc_modules:
        proc = subprocess.run([wasm_tools(), 'validate', '--features', 'all', '-'], input=gm.wasm,
                              capture_output=True)
        assert proc.returncode == 0, (seed, proc.stderr.decode())
        assert gen.validate(gm.wasm, FEATURES) is None, seed
        assert gen.validate(gm.wasm, FEATURES - {'gc'}) is not None     # not without 'gc'


def test_decoder_reads_back_the_types(gc_modules):
    # the rec group, the open supertype, the packed fields, as encoded
    for seed, gm, _ in gc_modules[:6]:
        m = decode_module(gm.wasm)
        assert m.types[:5] == gm.module.types[:5]
        assert m.recs[:4] == [1, 1, 2, 1]
        assert m.subs[0] == (False, ()) and m.subs[1][1] == (0,)
        assert isinstance(m.types[3], S.ArrayType) and m.types[2].fields[1].storage.heap == 2


def test_encode_gc_instructions_by_hand():
    node = S.RefType(False, 2, 'any')
    assert encode.instr('struct.get', (2, 1)) == b'\xfb\x02\x02\x01'
    assert encode.instr('ref.test', node) == b'\xfb\x14\x02'
    assert encode.instr('ref.cast', S.RefType(True, 'eq')) == b'\xfb\x17\x6d'
    # flags: source nullable (1), target not (0)
    assert encode.instr('br_on_cast', (0, S.ANYREF, node)) == b'\xfb\x18\x01\x00\x6e\x02'
    assert encode.instr('array.new_fixed', (4, 3)) == b'\xfb\x08\x04\x03'
    assert encode.valtype(S.RefType(True, 'i31')) == b'\x6c'


@pytest.mark.parametrize('part', range(3))
def test_models_and_wasmtime_agree(gc_modules, part):
    for seed, gm, _ in gc_modules[part::3]:
        args = gm.args[0]
        ref = oracle.uninterrupted(gm.wasm, gm.entry, args, 'wasmedge')
        wamr = oracle.uninterrupted(gm.wasm, gm.entry, args, 'wamr')
        assert oracle.compare(ref, wamr, 'wamr', steps=False) == [], seed
        assert oracle.compare_wasmtime(gm.wasm, gm.entry, args, ref) == [], seed
        # the heap is in the final state, as structure, even after a trap or
        # an uncaught exception: the entry's GC prologue (which cannot trap)
        # shared its objects through the globals first
        assert any(isinstance(g, oracle.GCRef) for g in ref.globals), (seed, ref.trap)


def test_some_gc_modules_run_to_their_end(gc_modules):
    """Not every GC module ends in a trap or an uncaught exception: some
    return, so their results and final heap are compared too."""
    ends = [oracle.uninterrupted(gm.wasm, gm.entry, gm.args[0], 'wasmedge').trap
            for _, gm, _ in gc_modules]
    assert ends.count(None) >= 3, ends


def _objects(values):
    return [v for v in values if isinstance(v, S.Struct)]


def _wide_exception_steps(gm):
    """The instructions the entry runs first for its wide exception
    (``gen3.ModuleFeatures3.deep_catch``: its blocks, the catch to its
    last stop, the global.set and the blocks' ends), 0 without one."""
    body = gm.module.funcs[0].body
    depth = next(k for k, ins in enumerate(body) if (ins.op, ins.imm) != ('block', None))
    return gm.stops[-1] + 1 + depth if depth else 0


def test_objects_are_live_mid_entry(gc_modules):
    """Stopped halfway through the entry's run (after the wide exception
    some modules throw first), the frames' cells hold
    objects the prologue made and the GC globals objects too (what a
    checkpoint there has to carry)."""
    checked = 0
    for seed, gm, _ in gc_modules:
        args = gm.args[0]
        total = oracle.uninterrupted(gm.wasm, gm.entry, args, 'wamr').steps
        lead = _wide_exception_steps(gm)
        if total - lead < 120:
            continue
        for runtime in ('wasmedge', 'wamr'):
            store = embedding.store_init(runtime)
            inst = oracle._instantiate(store, gm.wasm, True)
            ex = store.new_executor()
            ex.start(oracle._entry(inst, gm.entry), list(args))
            assert ex.run(lead + (total - lead) // 2) is False, seed        # stopped, not finished
            live = _objects(ex.stack)
            assert live, (seed, runtime)
            globs = [store.globals[inst.globaladdrs[k]].value for k in gc_globals(gm)]
            assert _objects(globs), (seed, runtime)
        checked += 1
    assert checked >= 5


def test_the_gc_prologue_never_traps(monkeypatch):
    """The objects are made before anything may end the entry: no run traps
    inside a function's GC prologue (its numbers are constants, locals or
    globals, never a division, conversion or load that risky modules let
    trap), so a trapping module still has its heap at every checkpoint
    before the trap.  Run one instruction at a time, so the trapping
    instruction is the one the run stood before."""
    from engine.errors import Trap, UncaughtException
    from fuzz import gen3
    spans = {}
    made = gen3.FuncGC.prologue_gc

    def recording(self):
        start = len(self.code)
        made(self)
        spans[self.idx] = (start, len(self.code))
    monkeypatch.setattr(gen3.FuncGC, 'prologue_gc', recording)
    trapped = 0
    for seed in range(150):
        spans.clear()
        gm = gen.from_seed(seed, features=FEATURES)
        if not spans or spans[0][0] == spans[0][1]:
            continue                    # no GC in this module
        store = embedding.store_init('wasmedge')
        inst = oracle._instantiate(store, gm.wasm, True)
        nimported = len(inst.funcaddrs) - len(inst.module.funcs)
        ex = store.new_executor()
        ex.start(oracle._entry(inst, gm.entry), list(gm.args[0]))
        while not ex.finished and ex.steps < 100_000:
            fi, pc = store.funcs[ex.frames[-1].func], ex.pc
            try:
                ex.run(1)
            except Trap as e:
                trapped += 1
                if fi.module is inst:
                    start, end = spans.get(fi.idx - nimported, (0, 0))
                    assert not start <= pc < end, (seed, fi.idx, pc, str(e))
                break
            except UncaughtException:
                break
    assert trapped >= 10


def test_a_third_of_default_modules_stay_compiled_whole():
    """The compiled tier interprets every function using GC, typed
    references or exceptions, and every function of a GC module starts with
    its GC prologue: GC is drawn only among the two thirds of modules that
    use the 3.0 features, so a third still run compiled whole (loops
    included: what a compiled-tier fault such as ``fast_count`` needs)."""
    from engine.exec.compile import _INTERPRETED
    from engine.exec.exceptions import has_handlers
    compiled = gc = 0
    for seed in range(120):
        gm = gen.from_seed(seed)
        bodies = [f.body for f in gm.module.funcs]
        gc += _uses_gc(gm)
        compiled += not any(has_handlers(b) or any(i.op in _INTERPRETED for i in b) for b in bodies)
    assert 30 <= compiled <= 50 and gc >= 45, (compiled, gc)


def gc_globals(gm):
    """Indices of the module's globals of GC types (NODE, A, anyref)."""
    m = decode_module(gm.wasm)
    imported = len(m.imported('global'))
    return [imported + i for i, g in enumerate(m.globals)
            if S.value_class(g.type.valtype) == S.ANYREF]


def test_gcref_is_structure_not_identity():
    t = ('struct', ())
    a1, a2 = S.Struct(t, [1, None]), S.Struct(t, [1, None])
    b1, b2 = S.Struct(t, [1, None]), S.Struct(t, [1, None])
    a1.fields[1] = a1                   # a cycle
    a2.fields[1] = a2
    b1.fields[1] = a1                   # b1 -> a1
    b2.fields[1] = a2
    shared = oracle.gc_views([[a1, b1, a1], []])
    again = oracle.gc_views([[a2, b2, a2], []])
    assert shared == again              # isomorphic: equal
    # the same shapes but the third root a different (equal-looking) object
    c = S.Struct(t, [1, None])
    c.fields[1] = c
    split = oracle.gc_views([[a2, b2, c], []])
    assert split != shared
    assert repr(shared[0][0]) == 'struct#0(0x1, #0)'
    # a field value differs
    a2.fields[0] = 2
    assert oracle.gc_views([[a2, b2, a2], []]) != shared
    # no GC object: unchanged
    assert oracle.gc_views([[1, None], [2]]) == [[1, None], [2]]


def test_gcref_sees_through_externalized_objects():
    """A global or table holding ``extern.convert_any`` of a struct, or a
    field holding one: two runs' rebuilt objects are equal by structure
    (an ``ExternRef`` alone would compare the objects by identity)."""
    t = ('struct', ())

    def roots(value=1):
        a = S.Struct(t, [value, None])
        b = S.Struct(t, [2, S.ExternRef(a)])       # b's field: a, externalized
        return [[S.ExternRef(a), b], [S.ExternRef(7)]]
    one, two = oracle.gc_views(roots()), oracle.gc_views(roots())
    assert one == two
    assert one[0][0] == ('extern', one[0][0][1]) and isinstance(one[0][0][1], oracle.GCRef)
    assert one[1] == [S.ExternRef(7)]               # a host reference stays itself
    assert oracle.gc_views(roots(value=3)) != one
    assert oracle._show(one[0][0]) == 'ref.extern struct#0(0x1, null)'



@dataclasses.dataclass
class _Snap:
    frames: list
    globals: list
    memory: bytes


def test_structural_sees_sharing_and_contents():
    """``structural`` on snapshot-like dataclasses: equal for two copies of
    one state (other objects, same shape), not when a field or the sharing
    differs; parts without GC objects compared as themselves."""
    t = ('struct', ())

    def state(split=False, value=7):
        a = S.Struct(t, [value, None])
        b = S.Struct(t, [1, a])
        a.fields[1] = b                 # a <-> b
        return _Snap([[b, 3]], [a, S.Struct(t, [value, b]) if split else a, None], b'\x01')
    assert oracle.structural(state()) == oracle.structural(state())
    assert oracle.structural(state()) != oracle.structural(state(split=True))
    assert oracle.structural(state()) != oracle.structural(state(value=8))
    plain = _Snap([[1, 2]], [None], b'\x00')
    assert oracle.structural(plain) == (plain, ())


def test_an_exception_carrying_objects_is_compared_by_structure():
    """An exnref whose fields hold GC objects (and an object whose field
    holds that exception: a cycle through exception.img), as two readings
    of one image set give them: equal by ``structural`` and ``gc_views``
    although no object is the same (``Exn.__eq__`` would compare the
    objects by identity), unequal when a field inside differs."""
    t = ('struct', ())

    def state(value=7):
        box = S.Struct(t, [None, value])
        exn = S.Exn(0, [box, 3])
        box.fields[0] = exn
        return _Snap([[exn, 1]], [box], b''), [[exn], [box]]
    one, two, other = state(), state(), state(value=8)
    assert one[0].frames[0][0] != two[0].frames[0][0]          # as Exn.__eq__ sees them
    assert oracle.structural(one[0]) == oracle.structural(two[0])
    assert oracle.structural(one[0]) != oracle.structural(other[0])
    assert oracle.gc_views(one[1]) == oracle.gc_views(two[1])
    assert oracle.gc_views(one[1]) != oracle.gc_views(other[1])
    assert oracle._show(oracle.gc_views(one[1])[0][0]) == 'exn 0(struct#0(exn 0(#0, 0x3), 0x7), 0x3)'
    plain = S.Exn(1, [5, None])                 # no object inside: compared as itself
    assert oracle.gc_views([[plain]]) == [[plain]]


def test_compare_names_a_split_sharing():
    t = ('struct', ())
    a = S.Struct(t, [5])
    shared = oracle.gc_views([[a, a]])[0]
    split = oracle.gc_views([[a, S.Struct(t, [5])]])[0]
    e = oracle.Outcome([], None, 1, None, shared, [])
    f = oracle.Outcome([], None, 1, None, split, [])
    out = oracle.compare(e, f, 'x')
    # global 0 prints alike (a struct holding 5), global 1 is another object
    assert out == ['x: global 0 = struct#0(0x5), expected struct#0(0x5) (alike, but the heaps '
                   'differ: sharing or objects reached)',
                   'x: global 1 = struct#1(0x5), expected struct#0(0x5)']
    assert oracle.compare(e, oracle.Outcome([], None, 1, None, oracle.gc_views([[a, a]])[0], []), 'x') == []


def _saved(gm, steps, runtime='wasmedge'):
    """The image set of ``gm``'s entry stopped after ``steps`` instructions,
    with the instance it ran in."""
    from engine.migrate import checkpoint
    store = embedding.store_init(runtime)
    inst = oracle._instantiate(store, gm.wasm, True)
    ex = store.new_executor()
    ex.start(oracle._entry(inst, gm.entry), list(gm.args[0]))
    assert ex.run(steps) is False
    return checkpoint.save(ex, inst, '0' * 64, gm.entry, peers=linked.peers(store, inst)), inst


def test_structural_snapshots_of_a_gc_checkpoint(gc_modules, tmp_path):
    """A GC checkpoint read twice (in memory, and back from its files) holds
    objects that are never the same Python objects: ``structural`` finds
    the two equal, and finds a changed field or a split sharing (as
    Snapshot's own equality does)."""
    from engine.migrate import gcheap, images as im
    from engine.migrate.translate import snapshot_from_images, translate
    checked = 0
    for seed, gm, _ in gc_modules:
        total = oracle.uninterrupted(gm.wasm, gm.entry, gm.args[0], 'wasmedge').steps
        if total < 120:
            continue
        images, inst = _saved(gm, total // 2)
        wamr = translate(images, inst.module, inst.info, 'wamr')
        d = tmp_path / f's{seed}'
        im.write_images(wamr, str(d), extra={'module.wasm': gm.wasm})
        a = snapshot_from_images(wamr, inst.module, inst.info)
        b = snapshot_from_images(im.read_images(str(d)), inst.module, inst.info)
        objs = [v for v in a.globals if isinstance(v, gcheap.Obj)]
        assert objs, seed
        assert not {id(o) for o in objs} & {id(v) for v in b.globals}     # other objects
        assert oracle.structural(a) == oracle.structural(b), seed
        assert a == b       # Snapshot's own equality pairs the objects too (gcheap)
        # a field changed
        o = objs[0]
        k = next(i for i, f in enumerate(o.fields) if isinstance(f, int))
        o.fields[k] ^= 1
        assert oracle.structural(a) != oracle.structural(b), seed
        o.fields[k] ^= 1
        # the anyref global made to share the object in both; then in one
        # a copy of it instead: equal contents, the sharing split
        g, gany = a.globals.index(o), a.global_types.index('anyref')
        a.globals[gany], b.globals[gany] = a.globals[g], b.globals[g]
        assert oracle.structural(a) == oracle.structural(b), seed
        a.globals[gany] = gcheap.Obj(o.typeidx, o.kind, list(o.fields))
        assert oracle.structural(a) != oracle.structural(b), seed
        assert a != b
        checked += 1
        if checked == 4:
            break
    assert checked >= 2



def test_migrations_of_gc_modules_agree(gc_modules):
    """Every check of the campaign (models, tiers, wasmtime, migrated runs
    in every direction, the independent image and neutral checks) on GC
    modules: no mismatch."""
    import random
    checks = 0
    for seed, gm, _ in gc_modules[:6]:
        n, failure = oracle.check_module(gm.wasm, gm.entry, gm.args, random.Random(seed),
                                         stops=gm.stops)
        assert failure is None, (seed, failure)
        checks += n
    assert checks >= 60


_FAULT_SCRIPT = '''
import random, sys
from fuzz import gen, oracle
gm = gen.from_seed(int(sys.argv[1]))
n, failure = oracle.check_module(gm.wasm, gm.entry, gm.args, random.Random(0), stops=gm.stops)
print(failure.mismatch[0] if failure else 'clean')
'''


def test_the_gc_identity_fault_is_caught(gc_modules):
    """With the deliberate fault ``gc_identity`` (the heap writer copies
    each slot's objects: sharing lost), the first GC module's checks fail
    on a migrated run (a GC global compared as structure, or what the run
    does with the split objects), and pass without it."""
    import os
    import sys
    from engine.faults import ENV
    seed = gc_modules[0][0]
    env = dict(os.environ, **{ENV: 'gc_identity'})
    proc = subprocess.run([sys.executable, '-c', _FAULT_SCRIPT, str(seed)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith('migrated '), proc.stdout     # a migrated run differs
    clean = subprocess.run([sys.executable, '-c', _FAULT_SCRIPT, str(seed)],
                           env={k: v for k, v in os.environ.items() if k != ENV},
                           capture_output=True, text=True, timeout=600)
    assert clean.stdout.strip() == 'clean', clean.stdout + clean.stderr


def test_a_default_campaign_makes_gc_modules_and_without_gc_does_not(tmp_path):
    """A campaign's features: the generator's defaults, GC included; ``--gc``
    is still accepted (and changes nothing), ``--without gc`` leaves GC out,
    an unknown name or ``--gc`` with ``--without gc`` is a usage error."""
    from fuzz import migrate

    def features(*argv):
        return migrate.parse(['--runs', '1', '--out', str(tmp_path), *argv])['features']
    assert features() == features('--gc') == sorted(gen.FEATURES)
    assert features('--without', 'gc') == sorted(gen.FEATURES - {'gc'})
    assert features('--without', 'gc,simd', '--without', 'tail-call') == \
        sorted(gen.FEATURES - {'gc', 'simd', 'tail-call'})
    for bad in (['--without', 'gcc'], ['--gc', '--without', 'gc']):
        with pytest.raises(migrate.UsageError):
            features(*bad)
    # a crash or hang finding's rerun command makes the same modules
    cfg = migrate.parse(['--runs', '1', '--out', str(tmp_path), '--without', 'simd,gc'])
    assert migrate._without_option(cfg) == ' --without gc,simd'
    assert migrate._without_option(migrate.parse(['--runs', '1', '--out', str(tmp_path)])) == ''
    assert _uses_gc(migrate.bytes_module('gen', b'', frozenset(features())))
    assert not _uses_gc(migrate.bytes_module('gen', b'', frozenset(features('--without', 'gc'))))


_TRAPS_WAT = '''(module
  (type $s (struct (field (mut i32))))
  (type $a (array (mut i8)))
  (func (export "null") (result i32) (struct.get $s 0 (ref.null $s)))
  (func (export "cast") (result i32)
    (struct.get $s 0 (ref.cast (ref $s) (array.new_default $a (i32.const 1)))))
  (func (export "oob") (result i32)
    (array.get_u $a (array.new_default $a (i32.const 2)) (i32.const 2)))
  (func (export "ok") (result i32)
    (array.get_s $a (array.new $a (i32.const 255) (i32.const 2)) (i32.const 1))))'''


@pytest.mark.parametrize('entry, trap', [('null', 'null structure reference'),
                                         ('cast', 'cast failure'),
                                         ('oob', 'out of bounds array access'),
                                         ('ok', None)])
def test_gc_traps_agree_with_wasmtime(entry, trap):
    """The GC traps the generator's risky modules may end in: the engine's
    message, and wasmtime's trap code mapped to it (fuzz.wasmtime_oracle)."""
    from conformance.wat import wat_to_binary
    from fuzz import wasmtime_oracle as wo
    wasm = wat_to_binary(_TRAPS_WAT)
    ref = oracle.uninterrupted(wasm, entry, (), 'wasmedge')
    assert ref.trap == trap
    if trap is None:
        assert ref.results == [0xFFFFFFFF]      # i8 255 read signed: -1
    else:
        assert ref.trap.startswith(wo.run(wasm, entry, []).trap)
    assert oracle.compare_wasmtime(wasm, entry, (), ref) == []


@pytest.fixture(scope='module')
def compiled_room():
    # the compiled tier raises the recursion limit: now, not inside a
    # hypothesis test (which warns), as fuzz.migrate's workers do
    from engine.exec.fast_wasmedge import recursion_room
    recursion_room()


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(gm=gen.modules(features=FEATURES))
def test_hypothesis_gc_modules_validate_and_agree(compiled_room, gm):
    """The default campaign's hypothesis source: valid, and both models end alike."""
    assert gen.validate(gm.wasm, FEATURES) is None
    ref = oracle.uninterrupted(gm.wasm, gm.entry, gm.args[0], 'wasmedge')
    wamr = oracle.uninterrupted(gm.wasm, gm.entry, gm.args[0], 'wamr')
    assert oracle.compare(ref, wamr, 'wamr', steps=False) == []


_ATHERIS_SCRIPT = '''
from fuzz import atheris_target as t
_, _, gm = t.run_case(b'')     # the minimal draws: a GC module if GC is on
print(sorted(t._FEATURES) == sorted(t.gen.FEATURES),
      any(i.op == 'struct.new' for f in gm.module.funcs for i in f.body))
'''


@pytest.mark.parametrize('features, expected', [(None, 'True True'),
                                                (sorted(gen.FEATURES - {'gc'}), 'False False')])
def test_atheris_sessions_take_the_campaigns_features(features, expected):
    """An atheris session makes its modules with the campaign's features
    (``FUZZ_FEATURES``, which the campaign sets), so the worker that
    re-checks a saved input remakes the same module: default GC, none
    under ``--without gc``."""
    import os
    import sys
    env = {k: v for k, v in os.environ.items() if k != 'FUZZ_FEATURES'}
    if features is not None:
        env['FUZZ_FEATURES'] = ','.join(features)
    proc = subprocess.run([sys.executable, '-c', _ATHERIS_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.stdout.strip() == expected, proc.stdout + proc.stderr[-2000:]
