"""The robustness campaigns (fuzz/robust.py): inputs are repeatable, the
contract is judged right (typed outcome vs untyped exception vs hang),
findings are saved and replay, and a short campaign of each target runs
clean and resumes."""

import json
import os
import time

import pytest
import wasmtime

from engine import embedding
from fuzz import robust
from spectests import manifest as mf

SUITE = mf.testsuite_root()
needs_suite = pytest.mark.skipif(not os.path.isdir(os.path.join(SUITE, 'wasm-2.0')),
                                 reason='spec testsuite not found')


def test_inputs_are_a_function_of_seed_and_index():
    seeds = [wasmtime.wat2wasm('(module (memory 1) (func (export "f") (result i32) '
                               'i32.const 7))')]
    a = [robust.make_input('module', seeds, i, 3) for i in range(50)]
    b = [robust.make_input('module', seeds, i, 3) for i in range(50)]
    c = [robust.make_input('module', seeds, i, 4) for i in range(50)]
    assert a == b and a != c
    assert len(set(a)) > 40


def test_the_issues_module_cases_are_typed():
    """What the issue measured: tables/memories near 2^32 entries."""
    for text in ('(module (table 0xffffffff funcref))', '(module (memory 65536))',
                 '(module (memory 257))'):
        assert robust.check_module(wasmtime.wat2wasm(text), 'wasmedge') == 'LimitError'
    spin = wasmtime.wat2wasm('(module (func (export "f") (loop (br 0))))')
    assert robust.check_module(spin, 'wamr') == 'LimitError'
    assert robust.check_module(b'\0asm\1\0\0\0\5\2', 'wasmedge') == 'DecodeError'


def test_judge_tells_typed_untyped_and_hangs(monkeypatch, tmp_path):
    assert robust.judge('module', b'\0asm', 0, str(tmp_path), 2.0) == ('DecodeError', None)

    def boom(*a):
        return [][1]
    monkeypatch.setattr(robust, 'run_input', boom)
    outcome, finding = robust.judge('module', b'x', 5, str(tmp_path), 2.0)
    assert finding['kind'] == 'untyped' and finding['error'].startswith('IndexError')
    assert 'Traceback' in finding['traceback'] and finding['index'] == 5

    def slow(*a):
        end = time.process_time() + 0.3
        while time.process_time() < end:
            pass
        return 'ok'
    monkeypatch.setattr(robust, 'run_input', slow)
    outcome, finding = robust.judge('module', b'x', 0, str(tmp_path), 0.2)
    assert outcome == 'ok' and finding['kind'] == 'hang'


def test_findings_are_saved_and_replay(tmp_path, capsys):
    out = str(tmp_path)
    os.makedirs(os.path.join(out, 'findings'))
    data = wasmtime.wat2wasm('(module (table 0xffffffff funcref))')
    ident = robust.save_finding(out, 'module', data, {'kind': 'untyped', 'error': 'MemoryError',
                                                      'index': 0})
    d = os.path.join(out, 'findings', ident)
    assert robust.load_finding(d)[1] == data
    assert robust.replay(d) == 0                       # fixed: a LimitError now
    assert 'now ends in LimitError' in capsys.readouterr().out
    files = {'manifest.json': b'{"steps": "abc"}', 'module.wasm': data}
    ident = robust.save_finding(out, 'images', files, {'kind': 'untyped', 'error': 'x'})
    assert robust.load_finding(os.path.join(out, 'findings', ident))[1] == files


def test_image_corruptions_end_in_exit_2(tmp_path):
    seeds = robust._image_seeds(3)
    assert seeds
    files = dict(seeds[0])
    name = 'manifest.json' if 'manifest.json' in files else 'neutral.json'
    for bad in (b'[' * 100000 + b']' * 100000, b'{"steps": null}', b'[]'):
        files[name] = bad
        for index in range(4):
            assert robust.check_images(files, index, str(tmp_path)).endswith('exit 2')


def test_result_types_other_than_the_bottom_functions_are_refused(tmp_path, capsys):
    """Found by the images campaign (input 2,265,883): a manifest naming
    two of its entry's three result types passed every check, and the
    restored run printed a v128 as an f64 (OverflowError).  Project sets
    and neutral.json (whose entry may be empty) both refuse it."""
    from engine import cli
    from engine.migrate import images as im, neutral
    # a module of no imports: the CLI links nothing but spectest and WASI
    seeds = [s for s in robust._image_seeds(24) if 'manifest.json' in s and robust.FORK not in s
             and not embedding.module_decode(s['module.wasm']).imports]
    assert seeds
    files = dict(seeds[0])
    manifest = json.loads(files['manifest.json'])
    results = manifest['results']
    # a non-empty list of other types (an empty one records none)
    manifest['results'] = results[1:] if len(results) > 1 else ['i64'] if results != ['i64'] else ['i32']
    files['manifest.json'] = json.dumps(manifest).encode()
    d = tmp_path / 'set'
    im.write_dir(files, str(d))
    for argv in (['restore', str(d), '--runtime', 'wamr'], ['restore', str(d), '--runtime', 'wasmedge'],
                 ['translate', str(d), '--to', 'neutral', '--out', str(tmp_path / 'n')]):
        assert cli.main(argv) == 2
        assert 'manifest.json: results: [' in capsys.readouterr().err
    # the same through neutral.json, with and without an entry
    files['manifest.json'] = json.dumps(dict(manifest, results=results)).encode()
    im.write_dir(files, str(d))
    assert cli.main(['translate', str(d), '--to', 'neutral', '--out', str(tmp_path / 'n')]) == 0
    doc_path = tmp_path / 'n' / neutral.FILE
    doc = json.loads(doc_path.read_text())
    for entry in (doc['entry'], ''):
        doc_path.write_text(json.dumps(dict(doc, entry=entry, results=manifest['results'])))
        assert cli.main(['restore', str(tmp_path / 'n'), '--runtime', 'wamr']) == 2
        assert 'results' in capsys.readouterr().err


@needs_suite
@pytest.mark.parametrize('target', robust.TARGETS)
def test_short_campaign_is_clean_and_resumes(target, tmp_path, monkeypatch):
    monkeypatch.setenv('WASM_TESTSUITE', SUITE)
    out = str(tmp_path / 'c')
    st = robust.campaign(target, 60, 1, out, seed=1, quiet=True)
    assert st['inputs'] == 60 and st['untyped'] == 0 and st['hangs'] == 0, st['findings']
    assert sum(st['outcomes'].values()) == 60
    st = robust.campaign(target, 20, 1, out, seed=1, quiet=True)
    assert st['inputs'] == 80 and st['next_index'] == 80
    with open(os.path.join(out, 'stats.json')) as f:
        assert json.load(f)['targets'][target]['inputs'] == 80


def test_fork_layout_page_count_is_checked_before_allocating(tmp_path):
    """Found by the images campaign: the fork reader allocated whatever
    mem_page_count.img said (65536 pages: 4 GiB, 12 s CPU) before checking."""
    forks = [s for s in robust._image_seeds(12) if robust.FORK in s]
    assert forks
    files = dict(forks[0], **{'mem_page_count.img': (65536).to_bytes(4, 'little')})
    started = time.process_time()
    assert robust.check_images(files, 0, str(tmp_path)) == 'restore exit 2'
    assert time.process_time() - started < 2


@needs_suite
def test_all_targets_cut_by_time_leave_no_false_findings(tmp_path, monkeypatch):
    """--time ends each target by terminating its workers: that must not
    show up as a finding of the next target's workers (they are forked
    after the driver installed its own SIGTERM handler), nor leave any
    worker running."""
    import multiprocessing
    monkeypatch.setenv('WASM_TESTSUITE', SUITE)
    out = str(tmp_path / 'all')
    assert robust.main(['--target', 'all', '--inputs', '1000000', '--time', '3', '--jobs', '2',
                        '--out', out, '--quiet']) == 0
    stats = robust.load_stats(out)['targets']
    assert sorted(stats) == sorted(robust.TARGETS)
    assert all(st['inputs'] > 0 and not st['findings'] for st in stats.values())
    assert multiprocessing.active_children() == []


@needs_suite
def test_module_seeds_reach_wasm_3_encodings(monkeypatch):
    """The module target's seeds hold 3.0 modules, so mutations start from
    64-bit limits, tags, try_table and typed references as well; the valid
    ones instantiate and run to a typed outcome under the campaign's checks."""
    from engine import binary, errors, syntax
    monkeypatch.setenv('WASM_TESTSUITE', SUITE)
    seeds = robust._module_seeds(0)
    features = set()
    for data in seeds:
        try:
            m = binary.decode_module(data, standard=2)
        except errors.WasmError:
            m = None
        if m is not None:
            continue                                    # a 2.0 module
        try:
            m = binary.decode_module(data, standard=3)
        except errors.WasmError:
            continue
        if any(mem.type.at == 'i64' for mem in m.mems):
            features.add('memory64')
        if getattr(m, 'tags', None):
            features.add('tags')
        if any(syntax.reftype(t) is not None and isinstance(syntax.reftype(t).heap, int)
               for f in m.funcs for t in f.locals):
            features.add('typed refs')
        for rt in ('wasmedge', 'wamr'):
            for tier in ('fast', 'interp'):             # a typed outcome, never an exception
                assert robust.check_module(data, rt, tier)
    assert {'memory64', 'tags'} <= features, features


def test_modules_and_scripts_run_in_both_models_and_both_tiers_by_index(monkeypatch):
    """The compiled tier is ``engine run``'s default, so hostile modules and
    scripts meet it too: index i runs model i % 2 in tier (i // 2) % 2, so a
    finding's replay (by its index) runs where it was found; and the tier
    reaches the store (a module with a loop compiles its function)."""
    seen = []
    monkeypatch.setattr(robust, 'check_module', lambda d, rt, tier: seen.append(('module', rt, tier)))
    monkeypatch.setattr(robust, 'check_wast', lambda d, rt, tier: seen.append(('wast', rt, tier)))
    for index in range(4):
        robust.run_input('module', b'', index, None)
        robust.run_input('wast', '', index, None)
    assert seen[::2] == [('module', 'wasmedge', 'fast'), ('module', 'wamr', 'fast'),
                         ('module', 'wasmedge', 'interp'), ('module', 'wamr', 'interp')]
    assert [x[1:] for x in seen[1::2]] == [x[1:] for x in seen[::2]]
    monkeypatch.undo()
    stores = []
    real = robust.embedding.store_init
    monkeypatch.setattr(robust.embedding, 'store_init',
                        lambda *a: stores.append(real(*a)) or stores[-1])
    loop = wasmtime.wat2wasm('(module (func (export "f") (local i32) (loop (br_if 0 (i32.lt_u '
                             '(local.tee 0 (i32.add (local.get 0) (i32.const 1))) (i32.const 50))))))')
    assert robust.check_module(loop, 'wamr', 'fast') == 'ok'
    assert stores[-1].tier == 'fast' and any(
        'fast' in k for fi in stores[-1].funcs for k in fi.cache if isinstance(k, str))


# ------------------------------------------------------------ GC image sets

def _gc_seeds():
    return robust._gc_image_seeds([])


def test_gc_programs_agree_with_wasmtime_and_hand_values():
    """fuzz/gcseeds.py's programs, 12 rounds: list = (0+..+11) + ref.eq 1
    + shorts[1] (-9 as u16 = 65527) + i31 7 + bytes[2] (300 & 255 = 44);
    stack = i31 11 + len 2 + ref.eq 1 + len 12; exn = ref.eq of the box
    the rethrown exception carries with the box 1 + the last i31 11 + its
    round number 11."""
    from fuzz import gcseeds
    from engine import embedding
    expected = {'list': 66 + 1 + 65527 + 7 + 44, 'stack': 11 + 2 + 1 + 12, 'exn': 1 + 11 + 11}
    for (text, entry, name), (wasm, _, _) in zip(gcseeds.PROGRAMS, gcseeds.gc_modules()):
        store = wasmtime.Store()
        inst = wasmtime.Instance(store, wasmtime.Module(store.engine, text), [])
        args = [robust.GC_ROUNDS] + ([None] if entry == 'run' else [])
        assert inst.exports(store)[entry](store, *args) == expected[name]
        for rt in ('wasmedge', 'wamr'):
            s = embedding.store_init(rt)
            i = embedding.module_instantiate(s, embedding.module_decode(wasm), [])
            ex = s.new_executor()
            ex.start(i.exports[entry][1], gcseeds.host_args(entry, robust.GC_ROUNDS))
            assert ex.run(10 ** 6) and ex.results == [expected[name]]


def test_gc_seeds_hold_a_live_heap_and_restore_clean(tmp_path):
    """The images campaign's GC seeds: version-4 sets of both models whose
    gc.img holds structs, arrays, i31 and host entries, a cycle and a GC
    element segment (and sets with exception.img); neutral v3 documents
    with a heap; every one restores to the uninterrupted result (exit 0);
    a fork-layout set given a GC module is refused (exit 2)."""
    from engine.migrate import gcheap, images as im
    seeds = _gc_seeds()
    sets = [s for s in seeds if 'gc.img' in s]
    docs = [s for s in seeds if 'neutral.json' in s]
    runtimes = {json.loads(s['manifest.json'])['runtime'] for s in sets}
    assert runtimes == set(im.RUNTIMES) and len(sets) >= 12 and len(docs) >= 6
    assert all(json.loads(s['manifest.json'])['version'] == 4 for s in sets)
    kinds, cycle, segs = set(), False, False
    for s in sets:
        entries, elems = gcheap.decode(s['gc.img'])
        kinds |= {e[0] for e in entries}
        cycle |= any(e[0] == 'struct' and (gcheap.OBJ, k) in e[2] for k, e in enumerate(entries))
        segs |= bool(elems)
    assert kinds == {'struct', 'array', 'i31', 'host'} and cycle and segs
    assert any('exception.img' in s for s in sets)        # a cycle through an exception
    assert all(json.loads(d['neutral.json'])['version'] == 3 and json.loads(d['neutral.json'])['heap']
               for d in docs)
    for s in seeds:
        assert robust.check_images(s, 0, str(tmp_path)) == 'restore exit 0'
    forks = [s for s in robust._image_seeds(12) if robust.FORK in s]
    assert forks
    wasm = sets[0]['module.wasm']
    assert robust.check_images(dict(forks[0], **{'module.wasm': wasm}), 0, str(tmp_path)) == \
        'restore exit 2'


def test_gc_img_huge_counts_are_refused_before_allocating(tmp_path, capsys):
    """A huge entry count, field count or segment length in gc.img's
    headers: exit 2 naming gc.img and the field, well within the bound."""
    import random
    from engine import cli
    from engine.migrate import images as im
    s = next(s for s in _gc_seeds() if 'gc.img' in s)
    seen = set()
    for k in range(200):
        rng = random.Random(k)
        bad = robust.mutate_gc_img(rng, s['gc.img'])
        if len(bad) != len(s['gc.img']) or bad == s['gc.img']:
            continue
        d = tmp_path / f'set{k}'
        im.write_dir(dict(s, **{'gc.img': bad}), str(d))
        started = time.process_time()
        status = cli.main(['restore', str(d), '--runtime', 'wamr'])
        err = capsys.readouterr().err
        assert time.process_time() - started < 2
        assert status in (0, 1, 2) and "Traceback" not in err     # 1: the run traps
        for field in ('entry count', 'field count', 'segment 0 length'):
            if status == 2 and 'gc.img: ' in err and field in err:
                seen.add(field)
    assert seen == {'entry count', 'field count', 'segment 0 length'}


def test_gc_img_structured_corruption_reaches_the_semantic_checks(tmp_path):
    """Most mutate_gc_img outputs still decode (so the checks against the
    module are what refuses them), and every one ends typed."""
    from engine.errors import WasmError
    from engine.migrate import gcheap
    seeds = [s for s in _gc_seeds() if 'gc.img' in s]
    decodes = 0
    for k in range(120):
        rng = __import__('random').Random(k)
        s = seeds[k % len(seeds)]
        bad = dict(s, **{'gc.img': robust.mutate_gc_img(rng, s['gc.img'])})
        try:
            gcheap.decode(bad['gc.img'])
            decodes += 1
        except WasmError:
            pass
        assert robust.check_images(bad, k, str(tmp_path)).endswith(('exit 0', 'exit 1', 'exit 2'))
    assert decodes > 60


def test_link_seeds_are_version_5_and_end_typed(tmp_path):
    """The images campaign's link seeds: version-5 sets of both models
    with link.img and neutral v4 documents; without peers on the command
    line restore, translate and a neutral document's inspect refuse the
    module (its import, exit 2, no traceback); inspect reads a set, links
    included (exit 0); structured corruptions of link.img end typed too,
    many of them refused."""
    import random
    seeds = robust._link_image_seeds()
    sets = [s for s in seeds if 'manifest.json' in s]
    docs = [s for s in seeds if 'neutral.json' in s]
    assert len(sets) == 6 and len(docs) == 3
    assert all(json.loads(s['manifest.json'])['version'] == 5 and 'link.img' in s for s in sets)
    assert all(json.loads(d['neutral.json'])['version'] == 4 for d in docs)
    for s in seeds:
        assert robust.check_images(s, 0, str(tmp_path)) == 'restore exit 2'
        assert robust.check_images(s, 2, str(tmp_path)) == \
            ('inspect exit 0' if s in sets else 'inspect exit 2')
        assert robust.check_images(s, 1, str(tmp_path)) == 'translate exit 2'
    rng = random.Random(3)
    outcomes = []
    for i in range(60):
        s = sets[i % len(sets)]
        bad = dict(s, **{'link.img': robust.mutate_link_img(rng, s['link.img'])})
        outcomes.append(robust.check_images(bad, 2, str(tmp_path)))
    assert set(outcomes) <= {'inspect exit 0', 'inspect exit 2'}
    assert outcomes.count('inspect exit 2') > 10
