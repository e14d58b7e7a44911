"""The refusal oracle (fuzz/refusal.py): checkpoints of generated runs,
broken on purpose, are refused naming the broken file and place, the
value just inside each bound is accepted, and a reader that accepts a
break, refuses it untyped or names another place fails the oracle."""

import collections
import re

import pytest

from engine import embedding
from engine.migrate import checkpoint, images as im, neutral, translate
from engine.migrate.images import ImageError
from engine.migrate.translate import snapshot_from_images
from fuzz import gen, linked, oracle, refusal
from tests.test_oracle_checks import stops_every


def _stopped_sets(seeds=range(12), every=53, per_run=3):
    """(module, info, image set read back) of generated runs stopped every
    ``every`` instructions, in both models."""
    for seed in seeds:
        gm = gen.from_seed(seed)
        for runtime in ('wasmedge', 'wamr'):
            for n, (inst, images) in enumerate(stops_every(gm, runtime, every)):
                if n == per_run:
                    break
                yield inst, im.decode_files(im.encode_files(images))


def _sets_with_catch_arms(most=4):
    """Sets of generated dives stopped with a legacy catch arm open."""
    found = 0
    for seed in range(400):
        gm = gen.from_seed(seed)
        if not gm.stops:
            continue
        for runtime in ('wasmedge', 'wamr'):
            store = embedding.store_init(runtime, tier='interp')
            inst = oracle._instantiate(store, gm.wasm, True)
            ex = store.new_executor()
            ex.start(oracle._entry(inst, gm.entry), list(gm.args[0]))
            if ex.run(gm.stops[0]) is not False:
                continue
            images = checkpoint.save(ex, inst, 'x' * 64, gm.entry, list(gm.results),
                                     peers=linked.peers(store, inst))
            if images.caught:
                yield inst, im.decode_files(im.encode_files(images))
                found += 1
                if found == most:
                    return


def test_every_break_of_generated_sets_is_refused_naming_its_place():
    tried = collections.Counter()
    for n, (inst, images) in enumerate(_stopped_sets()):
        for layout in im.FRAME_LAYOUTS:
            tried.update(refusal.check_set(images, inst.module, inst.info, layout, f'{n}:{layout}'))
    arms = list(_sets_with_catch_arms())
    assert len(arms) == 4
    for n, (inst, images) in enumerate(arms):
        for seed in range(8):
            tried.update(refusal.check_set(images, inst.module, inst.info, 'per-file', f'{n}:{seed}'))
    names = [f.__name__ for f in refusal.SET_BREAKS + refusal.SIZE_BREAKS + refusal.FILE_BREAKS]
    assert set(tried) == set(names), tried          # every kind of break was reached


def test_broken_documents_and_snapshots_are_refused_naming_the_field():
    places = collections.Counter()
    for n, (inst, images) in enumerate(_stopped_sets(per_run=2)):
        snap = snapshot_from_images(images, inst.module, inst.info)
        doc = neutral.document_from_snapshot(snap, inst.module, inst.info, images.module_sha256)
        for seed in range(3):
            places.update(re.sub(r'\[\d+\]', '[]', re.sub(r'\["\d+"\]', '[k]', p))
                          for p in refusal.check_document(doc, inst.module, inst.info, f'{n}:{seed}'))
            refusal.check_snapshot(snap, inst.module, inst.info, 'wamr', images.module_sha256, seed)
    assert {'frames[].func:', 'frames[].pc:', 'frames[].labels[]:', 'frames[].labels:',
            'frames[].locals[].value:', 'steps:', 'results[]:', 'memory.pages:', 'memory.chunks[k]:',
            'memories[].pages:', 'globals[]:', 'globals[].value:', 'tables[][]:', 'dropped_elems[]:',
            'dropped_datas[]:'} <= set(places), places
    assert any(p.startswith('heap[]') for p in places), places     # a GC module's objects


def test_a_break_accepted_refused_untyped_or_named_elsewhere_fails():
    def refuse(message, kind=ImageError):
        def read():
            raise kind(message)
        return read
    refusal.refused('x', 'stack2.img:', refuse('stack2.img: function 9 ...'))
    with pytest.raises(refusal.NotRefused, match='another place'):
        refusal.refused('x', 'stack2.img:', refuse('stack1.img: function 9 ...'))
    with pytest.raises(refusal.NotRefused, match='IndexError'):
        refusal.refused('x', 'stack2.img:', refuse('list index out of range', IndexError))
    with pytest.raises(refusal.NotRefused, match='accepted'):
        refusal.refused('x', 'stack2.img:', lambda: None)
    with pytest.raises(refusal.NotRefused, match='refused'):
        refusal.accepted('x', refuse('table.img: table 0 size: 5 is outside ...'))


def _first_failure(check):
    for n, (inst, images) in enumerate(_stopped_sets(range(20))):
        try:
            check(n, inst, images)
        except refusal.NotRefused as e:
            return str(e)
    return None


def _sets_checked(n, inst, images):
    for seed in range(4):
        refusal.check_set(images, inst.module, inst.info, 'per-file', f'{n}:{seed}')


def test_a_reader_that_lets_a_dropped_segment_past_its_count_is_seen(monkeypatch):
    monkeypatch.setattr(translate, '_checked_segments', lambda indices, count, what: list(indices))
    bad = _first_failure(_sets_checked)
    assert bad and 'names segment' in bad and 'accepted' in bad, bad


def test_a_reader_naming_the_wrong_frame_is_seen(monkeypatch):
    real = translate.ModuleView.func
    monkeypatch.setattr(translate.ModuleView, 'func',
                        lambda self, fidx, where: real(self, fidx, where.replace('2', '1')))
    bad = _first_failure(_sets_checked)
    assert bad and 'another place' in bad and "'stack1.img:" in bad, bad


def test_a_reader_that_takes_a_value_too_wide_is_seen(monkeypatch):
    monkeypatch.setattr(neutral, '_INT_BITS', {'i32': 33, 'i64': 64})

    def check(n, inst, images):
        snap = snapshot_from_images(images, inst.module, inst.info)
        doc = neutral.document_from_snapshot(snap, inst.module, inst.info, images.module_sha256)
        for seed in range(4):
            refusal.check_document(doc, inst.module, inst.info, f'{n}:{seed}')
    bad = _first_failure(check)
    assert bad and '= 2^32' in bad and 'accepted' in bad, bad


def test_the_campaign_oracle_runs_the_refusal_checks(monkeypatch):
    """oracle.check on generated modules with the segment check gone: a
    hop at a count of 1 mod 3 breaks its set and reports the acceptance."""
    monkeypatch.setattr(translate, '_checked_segments', lambda indices, count, what: list(indices))
    for seed in range(40):
        gm = gen.from_seed(seed)
        ref = oracle.uninterrupted(gm.wasm, gm.entry, gm.args[0])
        for at in range(1, min(ref.steps, 60), 3):
            bad = oracle.check(gm.wasm, gm.entry, gm.args[0], [('wasmedge', at), ('wamr', None)])
            if bad:
                assert 'refusal of the translated set' in bad[0] and 'accepted' in bad[0], bad
                return
    raise AssertionError('no hop broke a dropped-segment list')


def test_a_catch_arm_naming_no_exception_is_refused_in_memory_as_from_files():
    """Found by the refusal oracle: an image set built in memory whose catch
    arm names an exception past exception.img's table ended in IndexError
    (the decoder checks the index; the in-memory reader did not)."""
    inst, images = next(_sets_with_catch_arms(1))
    b = refusal._copy(images)
    frame, depth, _ = b.caught[0]
    b.caught[0] = (frame, depth, len(images.exceptions))
    place = 'exception.img: caught 0 exception:'
    refusal.refused('in memory', place, lambda: snapshot_from_images(b, inst.module, inst.info))
    refusal.refused('as files', place, lambda: snapshot_from_images(
        im.decode_files(im.encode_files(b)), inst.module, inst.info))


@pytest.mark.parametrize('how', ('past the pages', 'off the grid', 'short'))
def test_a_bad_chunk_of_a_set_built_in_memory_is_refused(how):
    """Found by the refusal oracle: a set built in memory had no check of
    its chunks (the decoder's were the only ones), so a chunk past the
    memory grew it, one off the grid landed on the wrong bytes and a short
    one shrank it, silently, at restore."""
    inst, images = next((inst, s) for inst, s in _stopped_sets(range(40)) if s.memory)
    off, pages = min(images.memory), images.page_count
    b = refusal._copy(images)
    chunk = b.memory.pop(off)
    if how == 'past the pages':
        b.memory[pages * im.PAGE] = chunk
    elif how == 'off the grid':
        b.memory[off + 4] = chunk
    else:
        b.memory[off] = chunk[:-1]
    refusal.refused(how, 'memory.img:', lambda: snapshot_from_images(b, inst.module, inst.info,
                                                                     memory=False))


def test_an_i31_past_31_bits_in_a_heap_built_in_memory_is_refused():
    """Found by the refusal oracle: gc.img's decoder refused an i31 entry
    of 2^31, but a heap built in memory took it as an i31 no program can
    make."""
    inst, images = next((inst, s) for inst, s in _stopped_sets(range(40))
                        if s.heap and any(e[0] == 'i31' for e in s.heap))
    k = next(k for k, e in enumerate(images.heap) if e[0] == 'i31')
    b = refusal._copy(images)
    b.heap[k] = ('i31', 1 << 31)
    refusal.refused('in memory', f'gc.img: entry {k} i31 value:',
                    lambda: snapshot_from_images(b, inst.module, inst.info))
    b.heap[k] = ('i31', (1 << 31) - 1)
    refusal.accepted('the largest i31', lambda: snapshot_from_images(b, inst.module, inst.info))
