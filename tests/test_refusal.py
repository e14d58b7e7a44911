"""The refusal oracle (fuzz/refusal.py): checkpoints of generated runs,
broken on purpose, are refused naming the broken file and place, the
value just inside each bound is accepted, and a reader that accepts a
break, refuses it untyped or names another place fails the oracle."""

import collections

import pytest

from engine.migrate import images as im, neutral, translate
from engine.migrate.images import ImageError
from engine.migrate.translate import snapshot_from_images
from fuzz import gen, oracle, refusal
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


def test_every_break_of_generated_sets_is_refused_naming_its_place():
    tried = collections.Counter()
    for n, (inst, images) in enumerate(_stopped_sets()):
        for layout in im.FRAME_LAYOUTS:
            tried.update(refusal.check_set(images, inst.module, inst.info, layout, f'{n}:{layout}'))
    names = [f.__name__ for f in refusal.SET_BREAKS + refusal.SIZE_BREAKS] + ['_cut', '_label_count']
    assert set(tried) == set(names), tried          # every kind of break was reached


def test_broken_documents_and_snapshots_are_refused_naming_the_field():
    places = collections.Counter()
    for n, (inst, images) in enumerate(_stopped_sets(per_run=2)):
        snap = snapshot_from_images(images, inst.module, inst.info)
        doc = neutral.document_from_snapshot(snap, inst.module, inst.info, images.module_sha256)
        for seed in range(3):
            places.update(p.split('[')[0].split('.')[0] if p.startswith('frames') else p.split('[')[0]
                          for p in refusal.check_document(doc, inst.module, inst.info, f'{n}:{seed}'))
            refusal.check_snapshot(snap, inst.module, inst.info, 'wamr', images.module_sha256, seed)
    assert {'frames', 'globals', 'memory.pages:', 'tables', 'dropped_elems',
            'dropped_datas'} <= set(places), places


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


def test_a_reader_that_lets_a_dropped_segment_past_its_count_is_seen(monkeypatch):
    monkeypatch.setattr(translate, '_checked_segments', lambda indices, count, what: list(indices))
    bad = _first_failure(lambda n, inst, images: refusal.check_set(
        images, inst.module, inst.info, 'per-file', n))
    assert bad and 'names segment' in bad and 'accepted' in bad, bad


def test_a_reader_naming_the_wrong_frame_is_seen(monkeypatch):
    real = translate.ModuleView.func
    monkeypatch.setattr(translate.ModuleView, 'func',
                        lambda self, fidx, where: real(self, fidx, where.replace('2', '1')))
    bad = _first_failure(lambda n, inst, images: refusal.check_set(
        images, inst.module, inst.info, 'per-file', n))
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
