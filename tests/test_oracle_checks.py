"""Oracle checks added by the mutation testing (docs/mutation-testing.md):
a checkpoint the engine refuses must have a reason the oracle can see, and
neutral.json's labels are compared with the code by an independent walk."""

import os
import random

import pytest

from engine.migrate import checkpoint, links, neutral
from engine import embedding
from engine.migrate.checkpoint import ForeignInstanceError
from fuzz import gen, linked, neutralcheck, oracle


def _unlinked(n=40, features=gen.FEATURES):
    for seed in range(n):
        gm = gen.from_seed(seed, features=features)
        if not linked.decoded(gm.wasm).imports:
            yield seed, gm


def test_a_single_instance_run_never_holds_anything_foreign():
    for seed, gm in list(_unlinked(12)):
        store = embedding.store_init('wamr')
        inst = oracle._instantiate(store, gm.wasm, True)
        ex = store.new_executor()
        ex.start(oracle._entry(inst, gm.entry), list(gm.args[0]))
        for _ in range(20):
            assert not oracle.holds_foreign(ex, inst)
            try:
                if ex.run(7):
                    break
            except Exception:
                break


def test_a_refused_checkpoint_without_a_foreign_frame_is_a_mismatch(monkeypatch):
    seed, gm = next((s, g) for s, g in _unlinked() if oracle.uninterrupted(
        g.wasm, g.entry, g.args[0]).steps > 10)

    def refuse(*a, **k):
        raise ForeignInstanceError('function address 4294967295 is not a function of this module')
    monkeypatch.setattr(checkpoint, 'save', refuse)
    bad = oracle.check(gm.wasm, gm.entry, gm.args[0], [('wamr', 5), ('wasmedge', None)])
    assert bad and 'save refused a checkpoint at step 5' in bad[0], bad


def _frames_with_blocks(limit=60):
    """(wasm, module, fidx, pc) of frames stopped inside blocks."""
    out = []
    for seed in range(limit):
        gm = gen.from_seed(seed)
        module = linked.decoded(gm.wasm)
        nimp = sum(1 for i in module.imports if i.kind == 'func')
        rng = random.Random(seed)
        for k, f in enumerate(module.funcs):
            for pc in rng.sample(range(len(f.body)), min(6, len(f.body))):
                out.append((gm, module, nimp + k, pc))
    return out


def test_the_independent_labels_agree_with_the_engines_on_generated_code():
    from engine.migrate.translate import ModuleView
    nested = 0
    for gm, module, fidx, pc in _frames_with_blocks():
        view = ModuleView.of(module, embedding.module_validate(module))
        if None in view.operand_types(fidx, pc):
            continue                            # unreachable code: no frame stops there
        mine = neutralcheck.expected_labels(module, fidx, pc)
        assert mine == neutral.labels_at(view, fidx, pc), (gm.wat, fidx, pc)
        nested += len(mine) > 2
    assert nested > 50


def test_a_wrong_neutral_label_is_seen_only_by_the_independent_check(monkeypatch):
    """The engine's writer and reader share ``labels_at``: a wrong
    continuation written is read back as matching and never used."""
    real = neutral.labels_at

    def shifted(view, fidx, pc):
        out = real(view, fidx, pc)
        for lab in out[1:]:
            lab['continuation'] += 1
        return out
    cases = []
    for seed in range(40):
        gm = gen.from_seed(seed)
        ref = oracle.uninterrupted(gm.wasm, gm.entry, gm.args[0])
        if ref.steps > 20:
            cases.append((gm, [('wasmedge', k) for k in range(5, ref.steps, max(1, ref.steps // 6))]))
    assert all(not oracle.check(gm.wasm, gm.entry, gm.args[0], [hops[0], ('neutral:wamr', None)])
               for gm, hops in cases[:5])
    monkeypatch.setattr(neutral, 'labels_at', shifted)
    seen = []
    for gm, hops in cases:
        for h in hops:
            bad = oracle.check(gm.wasm, gm.entry, gm.args[0], [h, ('neutral:wamr', None)])
            seen += bad
        if seen:
            break
    assert seen and 'NeutralCheckError' in seen[0], seen
    monkeypatch.setattr(neutralcheck, 'check_dir', lambda *a: None)
    gm, hops = cases[0]
    assert not any(oracle.check(gm.wasm, gm.entry, gm.args[0], [h, ('neutral:wamr', None)])
                   for h in hops)


def test_the_module_written_beside_a_set_is_checked(tmp_path):
    """A restore loads module.wasm from the image folder: the oracle checks
    that the copy written there is the module's bytes."""
    from fuzz import imagecheck
    (tmp_path / 'module.wasm').write_bytes(b'\0asm\1\0\0\0')
    imagecheck.check_extra(str(tmp_path), {'module.wasm': b'\0asm\1\0\0\0'})
    with pytest.raises(imagecheck.ImageCheckError, match='differ'):
        imagecheck.check_extra(str(tmp_path), {'module.wasm': b'\0asm\1\0\0\0\0'})
    with pytest.raises(imagecheck.ImageCheckError, match='cannot be read'):
        imagecheck.check_extra(str(tmp_path), {'other.wasm': b''})


def test_a_set_written_with_another_file_mode_is_seen(tmp_path):
    """The files of a written set are plain data files (0666 less the
    umask); one made executable, or group-writable, shows."""
    from engine.migrate import images as im
    from fuzz import imagecheck
    d = str(tmp_path / 'set')
    im.write_dir({'a.img': b'1', 'b.img': b'2'}, d)
    imagecheck.check_modes(d)
    for mode in [m for m in (0o755, 0o777, 0o600, 0o644) if m != imagecheck.FILE_MODE]:
        os.chmod(os.path.join(d, 'b.img'), mode)
        with pytest.raises(imagecheck.ImageCheckError, match='b.img: mode'):
            imagecheck.check_modes(d)


def test_a_translated_set_read_differently_in_memory_is_a_mismatch(monkeypatch):
    """The oracle restores from the files; it also reads the translated set
    as held in memory (what an API user restores) and requires the same
    state.  Here the in-memory reading is made to differ."""
    import dataclasses
    from engine.migrate import images as im
    read_back = set()
    real_read, real_snap = im.read_images, oracle.snapshot_from_images

    def read(d, *limits):
        out = real_read(d, *limits)
        read_back.add(id(out))
        return out

    def snap(images, module, info):
        s = real_snap(images, module, info)
        return s if id(images) in read_back else dataclasses.replace(s, steps=s.steps + 1)
    seed, gm = next((s, g) for s, g in _unlinked() if oracle.uninterrupted(
        g.wasm, g.entry, g.args[0]).steps > 10)
    assert not oracle.check(gm.wasm, gm.entry, gm.args[0], [('wamr', 5), ('wasmedge', None)])
    monkeypatch.setattr(im, 'read_images', read)
    monkeypatch.setattr(oracle, 'snapshot_from_images', snap)
    bad = oracle.check(gm.wasm, gm.entry, gm.args[0], [('wamr', 5), ('wasmedge', None)])
    assert bad and 'read in memory and read back from its files describe different' in bad[0], bad


def _documented(pattern):
    import os
    import re
    text = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             'docs', 'images.md')).read()
    return re.search(pattern, text)


def test_the_independent_checkers_hold_the_versions_docs_images_md_documents():
    """The header versions the oracle's own readers require are the
    documented ones (the engine's writer and reader share one constant each)."""
    from fuzz import imagecheck
    m = _documented(r'# Runtime-neutral snapshot \(`neutral.json`, versions (\d+), (\d+), (\d+) '
                    r'and (\d+)\)')
    assert m and tuple(int(g) for g in m.groups()) == neutralcheck.VERSIONS
    assert _documented(r'\| `version` \| `%d`, or `%d` exactly when the document holds Wasm 3.0 state'
                       r'.*; `%d` exactly for a module that uses GC.*; `%d` exactly when the run holds '
                       r'links' % neutralcheck.VERSIONS)
    assert _documented(r'\| `format` \| always `"%s"` \|' % neutralcheck.FORMAT)
    assert _documented(r'\| `format` \| always `"%s"` \|' % imagecheck.FORMAT)
    m = _documented(r'\| `version` \| `(\d)` \(one `stack\{i\}.img` per frame\), `(\d)` \(frames in one '
                    r'file, see "Frames in one file"\), `(\d)` \(a set holding Wasm 3.0 state, see '
                    r'"Version 3"\), `(\d)` \(a set of a module using GC, see "GC heap"\) or `(\d)` '
                    r'\(a set holding links')
    assert m and tuple(int(g) for g in m.groups()) == imagecheck.VERSIONS


@pytest.mark.parametrize('what', ['neutral', 'images'])
def test_a_version_the_engine_writes_and_accepts_but_the_docs_do_not_is_a_mismatch(what, monkeypatch):
    """A changed version constant is written and read back by the engine
    without complaint; only the independent checkers see it."""
    from engine.migrate import images as im
    # Wasm 2.0 state: sets of version 1 and neutral.json version 1 (VERSION)
    seed, gm = next((s, g) for s, g in _unlinked(features={'simd', 'reference-types'}) if oracle.uninterrupted(
        g.wasm, g.entry, g.args[0]).steps > 10)
    hops = [('wasmedge', 5), ('neutral:wamr' if what == 'neutral' else 'wamr', None)]
    assert not oracle.check(gm.wasm, gm.entry, gm.args[0], hops)
    if what == 'neutral':
        monkeypatch.setattr(neutral, 'VERSION', 0)
    else:
        monkeypatch.setattr(im, 'VERSION', 0)
        monkeypatch.setattr(im, 'VERSIONS', (0, im.ONE_FILE_VERSION))
    bad = oracle.check(gm.wasm, gm.entry, gm.args[0], hops)
    assert bad and ('NeutralCheckError' if what == 'neutral' else 'ImageCheckError') in bad[0], bad
    assert 'version 0' in bad[0]


def _dives(n=60):
    for seed in range(n):
        gm = gen.from_seed(seed)
        if gm.dive is not None:
            yield seed, gm


def snapshot_at_stop(gm, runtime):
    """The state of ``gm``'s first call stopped at the generator's first
    stop in ``runtime`` (interpreter tier), read back as a snapshot."""
    store = embedding.store_init(runtime, tier='interp')
    inst = oracle._instantiate(store, gm.wasm, True)
    ex = store.new_executor()
    ex.start(oracle._entry(inst, gm.entry), list(gm.args[0]))
    assert ex.run(gm.stops[0]) is False
    return oracle.snapshot_from_images(checkpoint.save(ex, inst, 'x' * 64, gm.entry, [],
                                                       peers=linked.peers(store, inst)),
                                       inst.module, inst.info)


def stops_every(gm, runtime, every):
    """(instance, image set) of ``gm``'s entry stopped every ``every``
    instructions (interpreter tier), until the run ends or traps; a stop
    inside another instance's code is skipped."""
    from engine.migrate import images as im
    store = embedding.store_init(runtime, tier='interp')
    inst = oracle._instantiate(store, gm.wasm, True)
    ex = store.new_executor()
    ex.start(oracle._entry(inst, gm.entry), list(gm.args[0]))
    sha = im.module_sha256(gm.wasm)
    types = list(store.funcs[oracle._entry(inst, gm.entry)].type.results)
    while True:
        try:
            if ex.run(every):
                return
        except Exception:
            return
        try:
            yield inst, checkpoint.save(ex, inst, sha, gm.entry, types, peers=linked.peers(store, inst))
        except ForeignInstanceError:
            continue

def test_a_dive_stops_at_its_bottom_with_distinct_functions_above_the_entry():
    """The generator's dives (gen.ModuleGen.dive): at the stop it names, both
    models hold the same frames, four and more, of distinct functions at
    depths 1-3, standing at the bottom's block end; some dives go past 257
    frames."""
    depths = []
    for seed, gm in _dives(200):
        held = []
        for rt in oracle.RUNTIMES:
            store = embedding.store_init(rt, tier='interp')
            inst = oracle._instantiate(store, gm.wasm, True)
            ex = store.new_executor()
            ex.start(oracle._entry(inst, gm.entry), list(gm.args[0]))
            assert ex.run(gm.stops[0]) is False and ex.steps == gm.stops[0]
            held.append([f.func for f in ex.frames])
            ex.run(1)                       # the block's end, then the function's
            assert len(ex.frames) == len(held[-1])
        assert held[0] == held[1]
        funcs = held[0]
        assert len(funcs) >= 4 and len(set(funcs[:4])) == 4, (seed, funcs[:6])
        depths.append(len(funcs))
    assert len(depths) >= 8 and max(depths) > 257 and min(depths) < 20, depths


def test_some_dives_stop_with_a_catch_arm_open_frames_below():
    """In modules with the legacy exception forms, a dive's last chain
    function may call the recursion from a catch arm two or three blocks
    deep: at the stop, in both models, that frame lies below the top ones
    with its caught exception, and the checkpoint round-trips."""
    found = 0
    for seed, gm in _dives(400):
        module = linked.decoded(gm.wasm)
        if not any([i.op for i in f.body[k - 1:k + 3]] in (['throw', c, 'i32.const', 'call']
                                                          for c in ('catch', 'catch_all'))
                   for f in module.funcs for k in range(1, len(f.body) - 2)):
            continue
        for rt in oracle.RUNTIMES:
            snap = snapshot_at_stop(gm, rt)
            holding = [k for k, fr in enumerate(snap.frames) if fr.caught]
            assert holding and len(snap.frames) - holding[0] >= 2, (seed, rt, holding)
        found += 1
    assert found >= 5, found


def test_some_dives_throw_from_their_bottom_to_a_try_frames_down():
    """With the catch arm, the recursion's bottom throws after the stop
    through every recursion frame and past the open arm to a try around
    the call one frame further down.  At the stop that frame's legacy
    handler is active; the run and its checkpoints agree everywhere
    (wasmtime cannot run legacy modules)."""
    found = 0
    for seed, gm in _dives(400):
        module = linked.decoded(gm.wasm)
        # the recursion's level: ``block`` of no result (every function
        # before the dive starts with an early exit, of an i32: gen.reach)
        if not any(len(f.body) > 2 and f.body[-2].op == 'throw' and f.body[0].op == 'block'
                   and f.body[0].imm is None for f in module.funcs):
            continue
        snap = snapshot_at_stop(gm, 'wamr')
        assert any(neutralcheck.expected_legacy_handlers(module, fr.fidx, fr.pc)
                   for fr in snap.frames[:-2]), seed
        checks, failure = oracle.check_module(gm.wasm, gm.entry, gm.args[:1], random.Random(seed),
                                              stops=gm.stops)
        assert failure is None, (seed, failure)
        found += 1
    assert found >= 3, found


def test_the_plans_checkpoint_at_the_generators_stops():
    plans = oracle.plans(random.Random(0), 100, stops=(40, 100, 0))
    assert [p for p in plans if p[0][1] == 40 and len(p) == 2] == [
        [('wasmedge', 40), ('wamr', None)], [('wamr', 40), ('wasmedge', None)],
        [('wamr', 40), (oracle.NEUTRAL + 'wasmedge', None)]]
    assert oracle.plans(random.Random(0), 100)[:len(plans) - 3] == plans[:-3]


def test_the_two_models_counts_are_checked_against_the_documented_relation():
    """docs/images.md: WasmEdge - WAMR = loop branches + false ifs - then-arms
    into their else, the events counted by fuzz.countcheck's own walk; a
    count-only change of either model breaks it."""
    import dataclasses
    import wasmtime
    from fuzz import countcheck
    wasm = wasmtime.wat2wasm('''(module (func (export "run") (result i32) (local i32)
      (loop (local.set 0 (i32.add (local.get 0) (i32.const 1)))
            (br_if 0 (i32.lt_u (local.get 0) (i32.const 4))))
      (if (i32.const 0) (then nop) (else nop))
      (if (i32.const 1) (then nop) (else nop))
      (if (i32.const 0) (then nop))
      (local.get 0)))''')
    ref = oracle.uninterrupted(wasm, 'run', (), 'wasmedge')
    wamr = oracle.uninterrupted(wasm, 'run', (), 'wamr')
    store = embedding.store_init('wamr', tier='interp')
    inst = oracle._instantiate(store, wasm, True)
    ex = store.new_executor()
    ex.start(oracle._entry(inst, 'run'), [])
    ev = countcheck.events(ex, 1000)
    assert (ev.loop_branches, ev.false_ifs, ev.then_into_else) == (3, 2, 1)     # by hand
    assert ref.steps - wamr.steps == 3 + 2 - 1
    assert oracle.compare_counts(wasm, 'run', (), ref, wamr) == []
    for a, b in ((dataclasses.replace(ref, steps=ref.steps + 1), wamr),
                 (ref, dataclasses.replace(wamr, steps=wamr.steps - 1))):
        bad = oracle.compare_counts(wasm, 'run', (), a, b)
        assert bad and bad[0].startswith('counts: '), bad


def test_the_count_relation_holds_on_generated_code():
    n = 0
    for seed in range(30):
        gm = gen.from_seed(seed)
        for args in gm.args[:1]:
            ref = oracle.uninterrupted(gm.wasm, gm.entry, args, 'wasmedge')
            wamr = oracle.uninterrupted(gm.wasm, gm.entry, args, 'wamr')
            assert oracle.compare_counts(gm.wasm, gm.entry, args, ref, wamr) == [], seed
            n += ref.steps != wamr.steps
    assert n > 5        # the counts do differ, and the walk accounts for it


# ---------------------------------------------------------------- Wasm 3.0 state (multi-memory)

def _stopped_with_memories(runtime, want_chunks=True):
    """(gm, store, inst, ex) of a generated run stopped with a written
    memory >= 1 (a version-3 image set)."""
    from engine.migrate.images import module_sha256
    for seed in range(200):
        gm = gen.from_seed(seed)
        module = linked.decoded(gm.wasm)
        if len(module.mems) + sum(1 for i in module.imports if i.kind == 'memory') < 2:
            continue
        ref = oracle.uninterrupted(gm.wasm, gm.entry, gm.args[0], runtime)
        for k in (ref.steps * 3 // 4, ref.steps // 2):
            store = embedding.store_init(runtime)
            inst = oracle._instantiate(store, gm.wasm, True)
            ex = store.new_executor(runtime)
            ex.start(oracle._entry(inst, gm.entry), list(gm.args[0]))
            try:
                if k < 1 or ex.run(k):
                    continue
            except Exception:
                continue
            if oracle.holds_foreign(ex, inst):
                continue
            images = checkpoint.save(ex, inst, module_sha256(gm.wasm), gm.entry,
                                     list(gm.results))
            if images.memories and (not want_chunks or any(m.chunks for m in images.memories)):
                return gm, inst, images
    raise AssertionError('no generated run with a written memory >= 1')


@pytest.mark.parametrize('runtime', ('wasmedge', 'wamr'))
def test_the_independent_image_reader_reads_the_memories_of_generated_runs(runtime, tmp_path):
    """A version-3 set of a generated multi-memory run: imagecheck's own
    reading of memory{i}.img / mem_page_count{i}.img agrees with the set,
    and a byte changed in memory1.img, or memory1.img read as memory 0's
    bytes, is a disagreement."""
    from engine.migrate import images as im
    from fuzz import imagecheck
    gm, inst, images = _stopped_with_memories(runtime)
    d = str(tmp_path / 'set')
    im.write_images(images, d)
    back = im.read_images(d)
    imagecheck.check_dir(d, images, back)
    mine = imagecheck.decode_dir(d)
    assert [p for p, _ in mine['memories']] == [m.page_count for m in images.memories]
    i = next(i for i, m in enumerate(images.memories, 1) if m.chunks)
    path = os.path.join(d, f'memory{i}.img')
    raw = bytearray(open(path, 'rb').read())
    raw[4 + 100] ^= 0x40                                # a byte of the first chunk
    open(path, 'wb').write(bytes(raw))
    with pytest.raises(imagecheck.ImageCheckError, match=rf'memories\[{i - 1}\]'):
        imagecheck.check_dir(d, images, back)
    os.remove(os.path.join(d, f'mem_page_count{i}.img'))
    with pytest.raises(imagecheck.ImageCheckError):
        imagecheck.check_dir(d, images, back)


def test_the_neutral_check_counts_the_memories(tmp_path):
    """neutralcheck reads ``memories`` by docs/images.md: one entry per
    memory after memory 0, each a page count and non-zero 4 KiB chunks."""
    import json
    from engine.migrate.translate import snapshot_from_images
    gm, inst, images = _stopped_with_memories('wasmedge')
    snap = snapshot_from_images(images, inst.module, inst.info)
    doc = neutral.document_from_snapshot(snap, inst.module, inst.info, images.module_sha256)
    d = str(tmp_path / 'n')
    neutral.write_neutral(doc, d)
    neutralcheck.check_dir(d, inst.module)
    for broken, why in ((lambda doc: doc['memories'].pop(), 'entries'),
                        (lambda doc: doc['memories'][0].update(pages=70000), 'page count'),
                        (lambda doc: doc['memories'][0]['chunks'].update({'4097': '00' * 4096}),
                         'offset'),
                        # docs/images.md: a version-2 or later document always has it
                        (lambda doc: doc.pop('memories'), 'without "memories"')):
        bad = json.loads(json.dumps(doc))
        broken(bad)
        neutral.write_neutral(bad, d)
        with pytest.raises(neutralcheck.NeutralCheckError, match=why):
            neutralcheck.check_dir(d, inst.module)


def test_the_oracle_compares_every_memory():
    """A difference in memory 1 alone is a mismatch, and the wasmtime view
    names the memory by its export."""
    gm = next(g for g in (gen.from_seed(s) for s in range(60))
              if sum(1 for e in linked.decoded(g.wasm).exports if e.kind == 'memory') >= 2)
    ref = oracle.uninterrupted(gm.wasm, gm.entry, gm.args[0])
    assert len(ref.memories) >= 2 and ref.memory == ref.memories[0]
    assert oracle.compare_wasmtime(gm.wasm, gm.entry, gm.args[0], ref) == []
    other = oracle.uninterrupted(gm.wasm, gm.entry, gm.args[0])
    k = len(other.memories) - 1
    changed = bytearray(other.memories[k] or b'\0')
    changed[0] ^= 1
    other.memories[k] = bytes(changed)
    bad = oracle.compare(ref, other, 'x')
    assert bad and f'memory {k}' in bad[0], bad
    mems, _, _, _ = oracle._wasmtime_view(ref)
    assert len(mems) == len(ref.memories)


def test_half_the_hops_hand_the_translator_the_chunks_last_first(monkeypatch):
    """memory.img lists its chunks in any order (docs/images.md); the
    oracle hands half its hops' sets to the translator last first, and the
    translation is the same as from the ascending set."""
    from engine.migrate import translate as tr
    seen = []
    real = oracle.translate

    def spy(images, module, info, to, limits=None):
        offs = list(images.memory)
        if len(offs) > 1:
            seen.append(offs != sorted(offs))
            again = real(oracle.chunks_reversed(images), module, info, to, limits)
            assert tr.snapshot_from_images(again, module, info) == \
                tr.snapshot_from_images(real(images, module, info, to, limits), module, info)
        return real(images, module, info, to, limits)
    monkeypatch.setattr(oracle, 'translate', spy)
    for seed, gm in _unlinked(60):
        total = oracle.uninterrupted(gm.wasm, gm.entry, gm.args[0]).steps
        if total < 40:
            continue
        hops = [('wamr', total // 4), ('wasmedge', total // 4 + 1), ('wamr', total // 4 + 2),
                ('wasmedge', total // 4 + 1), ('wamr', None)]
        assert not oracle.check(gm.wasm, gm.entry, gm.args[0], hops)
        if True in seen and False in seen:
            return
    raise AssertionError(f'no chain with several chunks read both ways: {seen}')


def test_a_set_of_another_version_than_its_files_say_is_seen(tmp_path):
    """docs/images.md: a set is version 3 exactly when it holds 3.0 state
    files, else 2 exactly when its frames are in one file, else 1; the
    engine's writer and reader share the version constants, the
    independent reader derives the version from the files."""
    import json
    from engine.migrate import images as im
    from fuzz import imagecheck
    seed, gm = next((s, g) for s, g in _unlinked(features=frozenset({'simd', 'reference-types'}))
                    if oracle.uninterrupted(g.wasm, g.entry, g.args[0]).steps > 10)
    store = embedding.store_init('wamr', tier='interp')
    inst = oracle._instantiate(store, gm.wasm, True)
    ex = store.new_executor()
    ex.start(oracle._entry(inst, gm.entry), list(gm.args[0]))
    ex.run(5)
    images = checkpoint.save(ex, inst, 'x' * 64, gm.entry, [])
    for layout, version, wrong in (('per-file', 1, 2), ('one-file', 2, 3), ('one-file', 2, 1)):
        d = str(tmp_path / f'{layout}-{wrong}')
        im.write_images(images, d, frames=layout)
        imagecheck.check_dir(d, images, im.read_images(d))
        path = os.path.join(d, 'manifest.json')
        man = json.load(open(path))
        assert man['version'] == version
        man['version'] = wrong
        if wrong == 1:
            del man['frames']
        else:
            man['frames'] = layout
        json.dump(man, open(path, 'w'))
        with pytest.raises(imagecheck.ImageCheckError, match=f'version {wrong}'):
            imagecheck.decode_dir(d)


def test_some_single_hops_go_through_the_command_line():
    """Now and then a single hop into the other model is translated by
    `python -m engine translate` (its options strings argparse made), never
    for a module the command line cannot instantiate (a linked one)."""
    chosen = [h for seed in range(80) for h in oracle.plans(random.Random(seed), 500, ('wasmedge', 'wamr'),
                                                            cli=True) if h[-1][0].startswith(oracle.CLI)]
    assert chosen and all(len(h) == 2 and h[0][0] != oracle.model(h[1][0]) for h in chosen)
    assert not [h for seed in range(80) for h in oracle.plans(random.Random(seed), 500, ('wasmedge', 'wamr'))
                if h[-1][0].startswith(oracle.CLI)]
    linked_ones = [g for g in (gen.from_seed(s) for s in range(40)) if linked.decoded(g.wasm).imports]
    assert linked_ones and not any(oracle.cli_loads(g.wasm) for g in linked_ones)


def test_a_fault_only_in_the_command_lines_translation_is_seen(monkeypatch):
    """The hop through the command line reads what the child process wrote:
    a translator fault switched on for that process alone (through the
    environment, which this process read long ago) shows."""
    seed, gm = next((s, g) for s, g in _unlinked() if oracle.uninterrupted(
        g.wasm, g.entry, g.args[0]).steps > 10)
    hops = [('wasmedge', 5), (oracle.CLI + 'wamr', None)]
    assert not oracle.check(gm.wasm, gm.entry, gm.args[0], hops)
    monkeypatch.setenv('WASM_MIGRATE_FAULT', 'pc_offset')
    bad = oracle.check(gm.wasm, gm.entry, gm.args[0], hops)
    assert bad, 'the command line\'s translation was not used'


def test_a_checkpoint_held_while_the_run_goes_on_must_not_change(monkeypatch):
    """A single hop's source runs on past its checkpoint; the saved set and
    a snapshot taken with snapshot_wasmedge's default must still describe
    the checkpoint.  A snapshot that shares the running memory is seen."""
    real = checkpoint.snapshot_wasmedge
    monkeypatch.setattr(checkpoint, 'snapshot_wasmedge',
                        lambda ex, inst, live=False, peers=None: real(ex, inst, True, peers))
    for seed, gm in _unlinked(60):
        ref = oracle.uninterrupted(gm.wasm, gm.entry, gm.args[0])
        if ref.memory and ref.steps > 40:
            for at in range(0, ref.steps - 1, max(1, ref.steps // 12)):
                bad = oracle.check(gm.wasm, gm.entry, gm.args[0], [('wasmedge', at), ('wamr', None)], ref=ref)
                if bad:
                    assert 'no longer describes the checkpoint' in bad[0], bad
                    return
    raise AssertionError('no generated run wrote its memory after a checkpoint')


def _gc_segment_runs(limit=80):
    """(seed, module, outcome) of generated runs ending with a live GC
    element segment holding objects."""
    for seed in range(limit):
        gm = gen.from_seed(seed)
        if linked.decoded(gm.wasm).imports:
            continue
        ref = oracle.uninterrupted(gm.wasm, gm.entry, gm.args[0])
        if any(isinstance(v, oracle.GCRef) for seg in ref.elems for v in seg):
            yield seed, gm, ref


def test_the_oracle_compares_the_element_segments(monkeypatch):
    """A passive segment is instance state a migration carries (gc_elems);
    its objects are compared with their sharing, so a restore that rebuilds
    the segment from the module instead (fresh objects, not those the heap
    shares) is a mismatch, as is any changed item."""
    from engine.migrate import gcheap
    seed, gm, ref = next(_gc_segment_runs())
    k = next(k for k, seg in enumerate(ref.elems) if seg)
    other = oracle.uninterrupted(gm.wasm, gm.entry, gm.args[0])
    assert oracle.compare(ref, other, 'x') == []
    other.elems[k] = other.elems[k][1:] + other.elems[k][:1] if len(set(map(repr, other.elems[k]))) > 1 \
        else other.elems[k][1:]
    bad = oracle.compare(ref, other, 'x')
    assert bad and f'element segment {k}' in bad[0], bad
    caught = 0
    monkeypatch.setattr(gcheap, 'gc_elem_indices', lambda module, dropped: [])
    for seed, gm, ref in _gc_segment_runs():
        hops = [('wasmedge', ref.steps // 2), ('wasmedge', None)]
        caught += bool(oracle.check(gm.wasm, gm.entry, gm.args[0], hops, ref=ref))
    assert caught, 'no run saw a segment rebuilt from the module'


def test_a_writer_leaving_its_staging_behind_is_a_mismatch(monkeypatch):
    """Nothing half-written on disk: a set written over another (every
    other hop) must not leave the replaced set beside it."""
    from engine.migrate import images as im
    real = im.atomic_dir

    def leave_old(directory, fill):
        if os.path.exists(directory):
            os.rename(directory, os.path.join(os.path.dirname(directory), '.old-kept'))
        real(directory, fill)
    seed, gm = next((s, g) for s, g in _unlinked() if oracle.uninterrupted(
        g.wasm, g.entry, g.args[0]).steps > 10)
    hops = [('wamr', 5), ('wasmedge', 3), ('wamr', None)]
    assert not oracle.check(gm.wasm, gm.entry, gm.args[0], hops)
    monkeypatch.setattr(im, 'atomic_dir', leave_old)
    bad = oracle.check(gm.wasm, gm.entry, gm.args[0], hops)
    assert bad and '.old-kept behind' in bad[0], bad


def test_snapshot_equality_must_agree_with_the_oracles_isomorphism(monkeypatch):
    """``Snapshot.__eq__`` is API (users compare checkpoints): where the
    oracle finds two readings of one state the same, it must say so too."""
    from engine.migrate import gcheap
    seed, gm = next((s, g) for s, g in _unlinked() if oracle.uninterrupted(
        g.wasm, g.entry, g.args[0]).steps > 10)
    monkeypatch.setattr(gcheap, 'same_state', lambda a, b: False)
    bad = oracle.check(gm.wasm, gm.entry, gm.args[0], [('wamr', 5), ('wasmedge', None)])
    assert bad and 'Snapshot equality (gcheap.same_state) calls them different' in bad[0], bad


def test_the_wamr_checkpoint_at_the_last_instruction_runs_in_the_interpreter(monkeypatch):
    """There every label the interpreter's branches forgot to pop is still
    held; under the compiled tier only the last few instructions would be
    the interpreter's."""
    runs = []
    real = oracle.check

    def check(wasm, entry, args, hops, *a, tier=oracle.TIER, **k):
        runs.append((list(hops), tier))
        return real(wasm, entry, args, hops, *a, tier=tier, **k)
    monkeypatch.setattr(oracle, 'check', check)
    seed, gm = next((s, g) for s, g in _unlinked() if oracle.uninterrupted(
        g.wasm, g.entry, g.args[0]).steps > 10)
    oracle.check_module(gm.wasm, gm.entry, [gm.args[0]], random.Random(0), wasmtime=False)
    total = oracle.uninterrupted(gm.wasm, gm.entry, gm.args[0], 'wasmedge').steps
    tiers = {h[0]: t for h, t in runs if len(h) == 2 and h[0][1] == total - 1 and h[1][1] is None}
    assert tiers == {('wamr', total - 1): 'interp', ('wasmedge', total - 1): oracle.TIER}, runs


def _linked_modules(count, seeds=range(200)):
    for seed in seeds:
        gm = gen.from_seed(seed)
        if linked.decoded(gm.wasm).imports:
            yield seed, gm
            count -= 1
            if not count:
                return


def test_linked_modules_migrate_with_their_links(monkeypatch):
    """Generated linked modules hold links to their provider at
    checkpoints (``gen.ModuleGen.links``); the oracle names the provider as
    the peer at every save and restore (the fresh store's at a restore),
    so every route of ``check_module`` (direct, neutral, chains, stops,
    straight into the other model) carries them, and the runs agree."""
    saved = []
    real = checkpoint.save

    def save(*a, **k):
        images = real(*a, **k)
        saved.append(len(images.links))
        return images
    monkeypatch.setattr(checkpoint, 'save', save)
    for seed, gm in _linked_modules(4):
        n, failure = oracle.check_module(gm.wasm, gm.entry, gm.args, random.Random(seed),
                                         wasmtime=False, stops=gm.stops)
        assert failure is None, (seed, failure)
    assert sum(1 for k in saved if k) >= 20 and max(saved) >= 2, saved


def test_a_link_resolved_to_the_wrong_function_is_caught(monkeypatch):
    """The fault ``link_target`` (a restore resolves a link to the peer's
    next function) fails the oracle on a linked module: the migrated run
    calls another function or holds another reference."""
    from engine import faults
    seed, gm = next(_linked_modules(1))
    assert oracle.check_module(gm.wasm, gm.entry, gm.args, random.Random(0), wasmtime=False,
                               stops=gm.stops)[1] is None
    monkeypatch.setattr(faults, 'LINK_TARGET', True)
    _, failure = oracle.check_module(gm.wasm, gm.entry, gm.args, random.Random(0), wasmtime=False,
                                     stops=gm.stops)
    assert failure is not None and failure.mismatch, seed


def test_a_provider_function_is_foreign_only_without_the_peer():
    """``holds_foreign`` with the provider as the peer: a value holding a
    provider function the module does not import is no reason to refuse
    a save (it is a link), a frame of the provider still is."""
    seed, gm = next(_linked_modules(1))
    store = embedding.store_init('wasmedge')
    inst = oracle._instantiate(store, gm.wasm, True)
    ex = store.new_executor()
    ex.start(oracle._entry(inst, gm.entry), list(gm.args[0]))
    ex.run(1)
    peers = linked.peers(store, inst)
    assert list(peers) == [linked.RELAY, linked.PROVIDER, linked.ALIAS] and peers[linked.PROVIDER] is not inst
    assert peers[linked.ALIAS] is peers[linked.PROVIDER]
    assert peers[linked.RELAY].module is linked.relay_module()
    assert oracle.holds_foreign(ex, inst) and not oracle.holds_foreign(ex, inst, peers)
    assert linked.peers(store, peers[linked.PROVIDER]) is None     # the provider imports nothing


def test_a_link_naming_a_peer_that_only_imports_the_function_is_a_failure():
    """The relay imports the provider's helper, which the entry holds (in
    its local, from the provider's LINK_GLOBAL): the saved link names the
    provider; the same function as the relay's import 0 resolves to the
    same address, but docs/images.md asks for the defining peer (by its
    first name), else for the first peer holding it."""
    seed, gm = next(_linked_modules(1))
    store = embedding.store_init('wasmedge')
    inst = oracle._instantiate(store, gm.wasm, True)
    ex = store.new_executor()
    ex.start(oracle._entry(inst, gm.entry), list(gm.args[0]))
    peers = linked.peers(store, inst)
    held = links.Link(linked.PROVIDER, gen.PRIVATE_FUNCS[0])
    images = None
    while not ex.finished and (images is None or held not in images.links):
        ex.run(1)
        try:
            images = checkpoint.save(ex, inst, 'x' * 64, gm.entry, peers=peers)
        except ForeignInstanceError:            # a frame of the provider on top
            images = None
    assert images is not None and held in images.links, seed
    oracle.links_name_definers(images, store, peers)
    k = images.links.index(held)
    images.links[k] = links.Link(linked.RELAY, 0)
    with pytest.raises(oracle.EngineFailure, match=f"link {k} names function 0 of instance 'relay', "
                                                   f"but peer '{linked.PROVIDER}' defines"):
        oracle.links_name_definers(images, store, peers)
    # the provider's second name resolves to it too, but is not its first
    images.links[k] = links.Link(linked.ALIAS, gen.PRIVATE_FUNCS[0])
    with pytest.raises(oracle.EngineFailure, match=f"names function {gen.PRIVATE_FUNCS[0]} of instance "
                                                   f"'{linked.ALIAS}', but peer '{linked.PROVIDER}' defines"):
        oracle.links_name_definers(images, store, peers)
    # with no defining peer (the relay alone, named twice), the first holder
    import dataclasses
    relay = {linked.RELAY: peers[linked.RELAY], 'again': peers[linked.RELAY]}
    oracle.links_name_definers(dataclasses.replace(images, links=[links.Link(linked.RELAY, 0)]), store, relay)
    with pytest.raises(oracle.EngineFailure, match="no peer defines that function and 'relay' holds it first"):
        oracle.links_name_definers(dataclasses.replace(images, links=[links.Link('again', 0)]), store, relay)


def test_a_reader_minding_json_member_order_is_a_mismatch(monkeypatch):
    """neutral.json's objects are unordered; the oracle reads each document
    also with every object's members reversed.  Here the reader's label
    comparison is made to mind the order (as ``_canon`` without sort_keys
    would)."""
    import json
    seed, gm = next((s, g) for s, g in _unlinked() if oracle.uninterrupted(
        g.wasm, g.entry, g.args[0]).steps > 10)
    hops = [('wasmedge', 9), (oracle.NEUTRAL + 'wamr', None)]
    assert not oracle.check(gm.wasm, gm.entry, gm.args[0], hops)
    monkeypatch.setattr(neutral, '_canon', lambda x: json.dumps(x))
    bad = oracle.check(gm.wasm, gm.entry, gm.args[0], hops)
    assert bad and 'members in reverse order' in bad[0], bad


def test_state_equality_and_the_oracle_agree_on_differing_states(monkeypatch):
    """Held while the run goes on, the checkpoint's globals and tables are
    compared with the later ones by both equalities; an engine equality
    that calls different objects the same is a mismatch."""
    from engine.migrate import gcheap
    real = gcheap.same_state
    monkeypatch.setattr(gcheap, 'same_state', lambda a, b: True if not isinstance(a, type(None))
                        and not hasattr(a, 'frames') else real(a, b))
    for seed in range(80):
        gm = gen.from_seed(seed)
        if linked.decoded(gm.wasm).imports:
            continue
        ref = oracle.uninterrupted(gm.wasm, gm.entry, gm.args[0])
        if ref.steps < 40:
            continue
        bad = oracle.check(gm.wasm, gm.entry, gm.args[0], [('wasmedge', 20), ('wamr', None)])
        if bad:
            assert 'Snapshot equality (gcheap.same_state) does not' in bad[0], bad
            return
    raise AssertionError('no run changed a global or table while a checkpoint was held')


def _shares_an_object(snap):
    """Whether a GC object of ``snap`` is held in two places or more."""
    held = [id(v) for part in (snap.globals, snap.tables, snap.gc_elems, snap.frames)
            for v in _values(part) if type(v).__name__ == 'Obj']
    return len(set(held)) < len(held)


def _values(x):
    """Every value in lists, frames and objects' fields under ``x``, each
    object's fields once."""
    out, todo, seen = [], [x], set()
    while todo:
        v = todo.pop()
        if isinstance(v, list):
            out.extend(v)
            todo.extend(v)
        elif hasattr(v, 'locals') and hasattr(v, 'stack'):
            todo += [v.locals, v.stack]
        elif type(v).__name__ == 'Obj' and id(v) not in seen:
            seen.add(id(v))
            todo.append(v.fields)
    return out


def _state_with_every_sort():
    """A generated run's translated state read with its memory as chunks
    (a dict), holding a caught exception and GC objects: seed 0 of the
    generator, the first stop (every 5 instructions) where it has all."""
    from engine.migrate import gcheap
    from engine.migrate.translate import snapshot_from_images
    from engine.syntax import Exn
    for inst, images in stops_every(gen.from_seed(0), 'wasmedge', 5):
        snap = snapshot_from_images(images, inst.module, inst.info, memory=False)
        text = repr([snap.frames, snap.globals, snap.tables, snap.gc_elems])
        if snap.chunk_data and 'Exn(' in text and 'Obj(' in text and _shares_an_object(snap):
            assert isinstance(next(iter(snap.chunk_data.values())), bytes)
            return snap, gcheap, Exn
    raise AssertionError('seed 0 no longer reaches a state with every sort: pick another')


def test_snapshot_equality_that_misses_a_difference_is_a_failure(monkeypatch):
    """``_differences_seen``: the engine's ``Snapshot ==`` passes on a real
    state, and each way of comparing leniently (a list's length, a dict's
    keys, an exception's tag, a GC object's kind or type index, the pairing
    of an object held twice with two objects: the mutants of
    ``gcheap._equal``/``same_state`` that survived the oracle's
    same-state checks) is caught: always, but for lists at some of the
    seeds (an object's field list has its own length test in ``same_state``,
    so a change there passes a lenient ``_equal``)."""
    snap, gcheap, Exn = _state_with_every_sort()
    for seed in range(6):
        oracle._differences_seen(snap, seed, 'state')
    equal, same_state = gcheap._equal, gcheap.same_state

    def lenient_lists(a, b, pairs, pending):
        if type(a) is list and type(b) is list:
            return len(a) >= len(b) and all(gcheap._equal(x, y, pairs, pending) for x, y in zip(a, b))
        return equal(a, b, pairs, pending)

    def lenient_dicts(a, b, pairs, pending):
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() is not b.keys() and all(gcheap._equal(a[k], b[k], pairs, pending) for k in a)
        return equal(a, b, pairs, pending)

    def lenient_tags(a, b, pairs, pending):
        if isinstance(a, Exn) and isinstance(b, Exn):
            return a.tag <= b.tag and gcheap._equal(a.fields, b.fields, pairs, pending)
        return equal(a, b, pairs, pending)

    def lenient_heads(differ):
        """same_state with its object-head test ``differ(x, y)``."""
        def same_state(a, b):
            pairs, pending = {}, []
            if not gcheap._equal(a, b, pairs, pending):
                return False
            while pending:
                x, y = pending.pop()
                if differ(x, y) or len(x.fields) != len(y.fields):
                    return False
                if not all(gcheap._equal(f, g, pairs, pending) for f, g in zip(x.fields, y.fields)):
                    return False
            return True
        return same_state

    def lenient_pairs(a, b, pairs, pending):
        # an object paired before met with one that is not: paired again
        if isinstance(a, gcheap.Obj) and isinstance(b, gcheap.Obj):
            pa, pb = pairs.get(('a', id(a))), pairs.get(('b', id(b)))
            if pa is not None and pb is not None:
                return pa is b and pb is a
            pairs[('a', id(a))], pairs[('b', id(b))] = b, a
            pending.append((a, b))
            return True
        return equal(a, b, pairs, pending)

    # a kind, or a type index, compared one way round only
    lenient_kinds = lenient_heads(lambda x, y: x.typeidx != y.typeidx or x.kind < y.kind)
    lenient_types = lenient_heads(lambda x, y: x.typeidx > y.typeidx or x.kind != y.kind)

    for name, fake, sort in (('_equal', lenient_lists, 'list'), ('_equal', lenient_dicts, 'dict'),
                             ('_equal', lenient_tags, 'exception'), ('same_state', lenient_kinds, 'GC object'),
                             ('same_state', lenient_types, 'GC type'),
                             ('_equal', lenient_pairs, 'shared GC object')):
        with monkeypatch.context() as m:
            m.setattr(gcheap, name, fake)
            caught = 0
            for seed in range(8):
                try:
                    oracle._differences_seen(snap, seed, 'state')
                except oracle.EngineFailure as e:
                    assert f'differ in one {sort}' in str(e), e
                    caught += 1
            assert caught >= (8 if sort != 'list' else 1), (sort, caught)
    assert (gcheap._equal, gcheap.same_state) == (equal, same_state)


ROLLBACK = '''
(module
  (memory 1 4)
  (global $g (mut i32) (i32.const 0))
  (func (export "run") (param $n i32) (result i32)
    (local $i i32)
    (loop $l
      (global.set $g (i32.add (global.get $g) (local.get $i)))
      (i32.store (i32.const 8) (global.get $g))
      (if (i32.eq (local.get $i) (i32.const 30))
        (then (drop (memory.grow (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (i32.add (memory.size) (global.get $g))))
'''


def test_a_rollback_that_keeps_the_later_state_is_a_mismatch(monkeypatch):
    """A single hop's checkpoint restored into its own instance after the
    run went on (a rollback: here the memory grew meanwhile) must save as
    the checkpoint again.  A restore that zeroes the memory in place but
    keeps its grown size is seen; unfaulted the run passes."""
    import wasmtime
    from engine.migrate import images as im
    wasm = wasmtime.wat2wasm(ROLLBACK)
    # 0 + 1 + ... + 59 = 1770, plus 2 pages
    assert oracle.uninterrupted(wasm, 'run', (60,)).results == [1772]
    hops = [('wasmedge', 500), ('wamr', None)]          # the grow: ~130 steps on
    assert oracle.check(wasm, 'run', (60,), hops) == []
    real = checkpoint.load_memory

    def keeps_size(mem, snap):
        if snap.memory is None and len(mem.data) > snap.page_count * im.PAGE:
            mem.data[:] = bytes(len(mem.data))
            for off, chunk in snap.chunk_data.items():
                mem.data[off:off + im.CHUNK] = chunk
            return
        real(mem, snap)
    monkeypatch.setattr(checkpoint, 'load_memory', keeps_size)
    bad = oracle.check(wasm, 'run', (60,), hops)
    assert bad and 'a rollback' in bad[0], bad


# two exceptions thrown and caught one after the other: block (1),
# try_table (2), i32.const (3), throw (4: caught, the state is the handler
# label's), end (5), block (6), try_table (7), i32.const (8), throw (9:
# caught), end, i32.add, the function's end: 12 instructions, result 7 + 5
CATCHING = '''(module
  (tag $e (param i32))
  (func (export "run") (result i32)
    (block $h1 (result i32)
      (try_table (catch $e $h1) (throw $e (i32.const 7)))
      (i32.const 0))
    (block $h2 (result i32)
      (try_table (catch $e $h2) (throw $e (i32.const 5)))
      (i32.const 0))
    (i32.add)))'''


def test_the_first_and_last_catch_of_a_run_are_stops(monkeypatch):
    """The uninterrupted run records the instruction counts right after
    its first and last catch (in both models and tiers alike), and every
    model checkpoints there into the other: where unwinding has just
    written the state, before a handler instruction reads it."""
    import wasmtime
    wasm = wasmtime.wat2wasm(CATCHING)
    for rt in oracle.RUNTIMES:
        for tier in ('interp', 'fast'):
            out = oracle.uninterrupted(wasm, 'run', (), rt, tier=tier)
            assert (out.steps, out.catches, out.results) == (12, [4, 9], [12]), (rt, tier)
    seen, real = [], oracle.check

    def recording(wasm, entry, args, hops, *rest, **kw):
        seen.append([tuple(h) for h in hops])
        return real(wasm, entry, args, hops, *rest, **kw)
    monkeypatch.setattr(oracle, 'check', recording)
    checks, failure = oracle.check_module(wasm, 'run', [()], random.Random(1), wasmtime=False)
    assert failure is None
    for at in (4, 9):
        for a, b in (('wasmedge', 'wamr'), ('wamr', 'wasmedge')):
            assert [(a, at), (b, None)] in seen, (at, a, seen)


# a catch_all into a label of no results, then a branch that cuts the
# operands back, then 100 rounds of a loop: a cell unwinding left behind
# lives from the catch (instruction 5: block, block, try_table,
# i32.const, throw) to the branch only
LEAK_WINDOW = '''(module
  (tag $e (param i32))
  (func (export "run") (result i32)
    (local $i i32)
    (block $out
      (block $h1
        (try_table (catch_all $h1) (throw $e (i32.const 7))))
      (br $out))
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 100))))
    (local.get $i)))'''


def test_a_catch_that_leaves_a_cell_behind_is_seen_at_the_catch_stop(monkeypatch):
    """A WAMR unwind that leaves one cell too many on the stack (a
    catch_all pushing the exception's values, say) changes no result when
    a branch cuts it away soon after; the catch stop's checkpoint sees the
    frame hold a cell more than validation says."""
    import wasmtime
    from engine.exec import wamr
    wasm = wasmtime.wat2wasm(LEAK_WINDOW)
    assert oracle.check_module(wasm, 'run', [()], random.Random(1), wasmtime=False)[1] is None
    real = wamr.Executor.unwind

    def leaky(self, e):
        real(self, e)
        self.stack.append(0)
    monkeypatch.setattr(wamr.Executor, 'unwind', leaky)
    assert oracle.uninterrupted(wasm, 'run', (), 'wamr', tier='interp').results == [100]
    _, failure = oracle.check_module(wasm, 'run', [()], random.Random(1), wasmtime=False)
    assert failure is not None and tuple(failure.hops[0]) == ('wamr', 5), failure
    assert any('holds 2 cells, validation says 1' in m for m in failure.mismatch), failure.mismatch


def test_the_providers_peer_name_is_long_and_the_relays_short():
    """link.img's instance names: the provider's past 16 bytes and not a
    multiple of 4 (a name field that changes the alignment of what
    follows), the relay's short, so both kinds reach every reader."""
    assert 16 < len(linked.PROVIDER.encode()) < 32 and len(linked.PROVIDER) % 4
    assert len(linked.RELAY.encode()) <= 8


@pytest.mark.parametrize('taken_for', ['image set', 'neutral.json'])
def test_a_folder_the_command_line_reads_as_the_other_kind_is_a_failure(monkeypatch, taken_for):
    """The oracle reads every folder it wrote as ``engine restore`` and
    ``translate`` do (``cli.load_any``, which tells an image set from a
    neutral document by its files): a detection that takes one for the
    other fails the hop that wrote it."""
    real = neutral.is_neutral_dir
    monkeypatch.setattr(neutral, 'is_neutral_dir',
                        (lambda d: False) if taken_for == 'image set' else (lambda d: True))
    seed, gm = next((s, g) for s, g in _unlinked() if oracle.uninterrupted(
        g.wasm, g.entry, g.args[0]).steps > 10)
    hops = [('wasmedge', 5), (oracle.NEUTRAL + 'wamr', None)] if taken_for == 'image set' \
        else [('wasmedge', 5), ('wamr', None)]
    bad = oracle.check(gm.wasm, gm.entry, gm.args[0], hops)
    missing = 'manifest.json' if taken_for == 'image set' else 'neutral.json'
    assert bad and f'{missing}: missing' in bad[0], bad
    monkeypatch.setattr(neutral, 'is_neutral_dir', real)
    assert oracle.check(gm.wasm, gm.entry, gm.args[0], hops) == []
