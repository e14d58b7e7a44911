"""Links (issue 10): references to functions of other instances in a
checkpoint, saved as (instance name, function index) in link.img
(image version 5, neutral.json version 4) and resolved against the peers
named at restore (engine/migrate/links.py, docs/images.md "Links")."""

import json
import os
import struct

import pytest
import wasmtime

from conformance.migration import StoreState, migrate_call
from engine import embedding as E
from engine.migrate import checkpoint, fork_images, images as im, links, neutral
from engine.migrate import translate as tr
from engine.migrate.checkpoint import ForeignInstanceError
from engine.migrate.images import ImageError
from fuzz import imagecheck, robust

RUNTIMES = ('wasmedge', 'wamr')

# $A defines the functions; $B imports only its table, so every function it
# reaches through the table (kept in a local, a global, its own table and
# on the operand stack) belongs to another instance.  The image campaign
# seeds its corruptions with the same two (fuzz.robust).
A = robust.LINK_PROVIDER
B = robust.LINK_USER


# a module on its own: its sets hold no links
C = '''(module
  (type $r (func (result i32)))
  (func $k (type $r) (i32.const 7))
  (table 1 funcref)
  (elem (i32.const 0) $k)
  (func (export "run") (param $n i32) (result i32)
    (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (call_indirect (type $r) (i32.const 0))))
      (br_if $l (i32.gt_s (local.tee $n (i32.sub (local.get $n) (i32.const 1))) (i32.const 0))))
    (local.get $acc)))'''

N = 6


def _world(runtime):
    """A fresh store with $A (registered as "A") and $B importing its table."""
    store = E.store_init(runtime)
    a = E.module_instantiate(store, E.module_decode(wasmtime.wat2wasm(A)), [])
    b = E.module_instantiate(store, E.module_decode(wasmtime.wat2wasm(B)), [a.exports['t']])
    return store, a, b


def _uninterrupted(runtime='wasmedge'):
    store, _, b = _world(runtime)
    return list(E.func_invoke(store, b.exports['run'][1], [N]))


def _stopped(runtime, k, peers_of=lambda a: {'A': a}):
    """(store, a, b, images) of ``run`` stopped at the first savable
    instruction from ``k`` on (a frame of $A is not: it is stepped over)."""
    store, a, b = _world(runtime)
    ex = store.new_executor(runtime)
    ex.start(b.exports['run'][1], [N])
    ex.run(k)
    while True:
        try:
            return store, a, b, checkpoint.save(ex, b, 'ab' * 32, 'run', [], peers=peers_of(a))
        except ForeignInstanceError:
            assert not ex.run(1)


def _set(runtime='wasmedge', k=12):
    return _stopped(runtime, k)[3]


def test_without_peers_a_foreign_function_is_refused():
    store, a, b = _world('wasmedge')
    ex = store.new_executor('wasmedge')
    ex.start(b.exports['run'][1], [N])
    ex.run(5)
    with pytest.raises(ForeignInstanceError, match='nor of a named peer'):
        checkpoint.save(ex, b, 'ab' * 32, 'run', [])


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_a_saved_set_names_the_defining_instance_and_is_version_5(runtime):
    """B defines one function (index 0), so $A's $inc (met first, in the
    local) is index 1 and $dbl index 2, wherever they are held."""
    images = _set(runtime)
    assert images.links == [links.Link('A', 1), links.Link('A', 0)]
    assert images.tables == [[2, 1], [1]] and images.globals == [('funcref', [2])]
    files = im.encode_files(images)
    assert json.loads(files['manifest.json'])['version'] == im.LINK_VERSION
    assert files[im.LINK_FILE] == links.MAGIC + struct.pack('<III', 2, 1, 1) + b'A' + \
        struct.pack('<II', 0, 1) + b'A'
    assert im.decode_files(files).links == images.links


@pytest.mark.parametrize('route', ['translate', 'neutral'])
@pytest.mark.parametrize('src', RUNTIMES)
def test_a_migrated_call_across_instances_resumes_to_the_same_result(src, route):
    """Saved in one model with peers, through the files' bytes, into the
    other model (directly or as neutral.json), restored into a *fresh*
    store (another host) whose $A is the peer "A": the same result."""
    want = _uninterrupted()
    dst = 'wamr' if src == 'wasmedge' else 'wasmedge'
    for k in (1, 7, 20, 33, 60):
        _, _, _, images = _stopped(src, k)
        assert images.links, k
        images = im.decode_files(im.encode_files(images))
        store, a, b = _world(dst)
        if route == 'translate':
            moved = tr.translate(images, b.module, b.info, dst)
        else:
            snap = tr.snapshot_from_images(images, b.module, b.info)
            doc = neutral.document_from_snapshot(snap, b.module, b.info, images.module_sha256)
            assert doc['version'] == neutral.LINK_VERSION and doc['links']
            snap = neutral.snapshot_from_document(neutral.loads(neutral.dumps(doc)), b.module, b.info)
            assert snap.links == images.links
            moved = tr.images_from_snapshot(snap, b.module, b.info, dst, images.module_sha256)
        moved = im.decode_files(im.encode_files(moved))
        assert moved.runtime == dst and moved.links == images.links
        ex = checkpoint.restore(store, b, moved, peers={'A': a})
        ex.run()
        assert list(ex.results) == want, (k, route)


@pytest.mark.parametrize('a,b', [('wasmedge', 'wamr'), ('wamr', 'wasmedge')])
def test_every_point_of_the_call_migrates_both_ways(a, b):
    """The conformance check at every instruction count: a -> b -> a
    through the translator and neutral.json, compared with the
    uninterrupted run (results and the whole store), nothing skipped."""
    store, inst_a, inst_b = _world(a)
    addr = inst_b.exports['run'][1]
    results, rep = migrate_call(store, addr, [N], a, b, seed='links',
                                points=lambda n: range(n), peers={'A': inst_a})
    assert results == _uninterrupted()
    assert rep.mismatch is None and rep.skipped is None and rep.points == rep.steps
    # without peers: nothing can be saved once the tables are read
    store, inst_a, inst_b = _world(a)
    _, rep = migrate_call(store, inst_b.exports['run'][1], [N], a, b, seed='links',
                          points=lambda n: [n // 2])
    assert rep.skipped and 'nor of a named peer' in rep.skipped


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_an_unresolved_link_is_a_typed_error_and_changes_nothing(runtime):
    store, a, b, images = _stopped(runtime, 20)
    ex = store.new_executor(runtime)               # a second call changes B's state first
    ex.start(b.exports['run'][1], [2])
    ex.run()
    before = StoreState(store)
    for peers, why in (({}, "no peer instance of that name (peers given: none)"),
                       ({'B': b}, "no peer instance of that name (peers given: 'B')"),
                       ({'A': b}, "instance 'A' has 1 functions")):
        with pytest.raises(links.UnresolvedLink) as e:
            checkpoint.restore(store, b, images, peers=peers)
        assert str(e.value).startswith("link.img: link to function ") and why in str(e.value)
        assert "of instance 'A'" in str(e.value) and e.value.link.instance == 'A'
        assert before.diff(store) is None          # nothing half restored
        other = 'wamr' if runtime == 'wasmedge' else 'wasmedge'
        with pytest.raises(links.UnresolvedLink):
            checkpoint.restore(store, b, images, runtime=other, peers=peers)
        assert before.diff(store) is None


def _plain_set(runtime='wamr', peers=None):
    """A set of module C (no other instance reachable)."""
    store = E.store_init(runtime)
    c = E.module_instantiate(store, E.module_decode(wasmtime.wat2wasm(C)), [])
    ex = store.new_executor(runtime)
    ex.start(c.exports['run'][1], [N])
    ex.run(9)
    return checkpoint.save(ex, c, 'ab' * 32, 'run', [], peers=peers)


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_sets_without_links_are_written_as_before(runtime):
    """No link.img, the version the other files need (1 per file, 2 one
    file), read back as before; the bytes do not depend on the peers
    given when nothing links to them."""
    _, a, _ = _world(runtime)
    plain = _plain_set(runtime)
    with_peers = _plain_set(runtime, peers={'A': a})
    for frames, version in (('per-file', 1), ('one-file', 2)):
        files = im.encode_files(plain, frames)
        assert files == im.encode_files(with_peers, frames)
        assert im.LINK_FILE not in files
        assert json.loads(files['manifest.json'])['version'] == version
        assert im.decode_files(files).links == []
        module, info = _c_module()
        snap = tr.snapshot_from_images(im.decode_files(files), module, info)
        assert neutral.document_from_snapshot(snap, module, info, 'ab' * 32)['version'] \
            == neutral.VERSION


def _c_module():
    m = E.module_decode(wasmtime.wat2wasm(C))
    store = E.store_init('wamr')
    c = E.module_instantiate(store, m, [])
    return c.module, c.info


def _files(**change):
    files = im.encode_files(_set('wamr'))
    files.update(change)
    return files


def _link_img(entries, count=None, magic=links.MAGIC):
    out = [magic, struct.pack('<I', len(entries) if count is None else count)]
    for name, fidx in entries:
        raw = name if isinstance(name, bytes) else name.encode()
        out.append(struct.pack('<II', fidx, len(raw)) + raw)
    return b''.join(out)


@pytest.mark.parametrize('data,message', [
    (b'LNK2' + bytes(8), 'link.img: magic: '),
    (_link_img([]), 'link.img: link count: 0'),
    (_link_img([('A', 0)], count=0x10000000), 'link.img: link count: 268435456 links cannot fit'),
    (_link_img([('A', 0)])[:-1], 'link.img: link 0 name length: 1 bytes, but only 0 remain'),
    (_link_img([('A', 0)])[:10], 'link.img: link count: 1 links cannot fit in 10 bytes'),
    (_link_img([('ABCDEFGHIJ', 0)], count=2), 'link.img: link 1 function index: truncated'),
    (_link_img([('', 0)]), 'link.img: link 0 name length: 0'),
    (_link_img([('x' * 70000, 0)]), 'link.img: link 0 name length: 70000 bytes, more than'),
    (_link_img([(b'\xff', 0)]), 'link.img: link 0 name: not valid UTF-8'),
    (_link_img([('A', 0), ('A', 0)]), 'link.img: link 1: function 0 of instance \'A\' is listed twice'),
    (_link_img([('A', 0)]) + b'x', 'link.img: end: 1 unexpected trailing bytes'),
])
def test_a_corrupted_link_img_names_the_file_and_field(data, message):
    with pytest.raises(ImageError) as e:
        im.decode_files(_files(**{im.LINK_FILE: data}))
    assert str(e.value).startswith(message), str(e.value)


def test_link_img_and_the_version_go_together():
    files = _files()
    del files[im.LINK_FILE]
    with pytest.raises(ImageError, match='link.img: missing from a version-5 set'):
        im.decode_files(files)
    plain = im.encode_files(_plain_set())
    plain[im.LINK_FILE] = _link_img([('A', 0)])
    with pytest.raises(ImageError, match='link.img: present in a version-1 set'):
        im.decode_files(plain)


def test_a_cell_past_the_links_is_refused_against_the_module():
    images = _set('wamr')
    _, _, b = _world('wamr')
    images.links = images.links[:1]                # the cells now name a link that is gone
    bad = im.decode_files(im.encode_files(images))
    with pytest.raises(ImageError, match=r'function index \d+ out of range|table 1: function index'):
        tr.snapshot_from_images(bad, b.module, b.info)


def test_neutral_links_are_checked():
    images = _set('wasmedge')
    _, _, b = _world('wasmedge')
    snap = tr.snapshot_from_images(images, b.module, b.info)
    doc = neutral.document_from_snapshot(snap, b.module, b.info, images.module_sha256)
    for links_value, message in (([], 'links: empty'),
                                 ([{'instance': '', 'func': 0}], 'links[0].instance'),
                                 ([{'instance': 'A'}], 'links[0].func: missing'),
                                 ([{'instance': 'A', 'func': 0}] * 2, 'links[1]: function 0')):
        bad = dict(doc, links=links_value)
        with pytest.raises(neutral.NeutralError, match=message.replace('[', r'\[').replace(']', r'\]')):
            neutral.snapshot_from_document(bad, b.module, b.info)
    older = dict(doc, version=neutral.WASM3_VERSION)
    with pytest.raises(neutral.NeutralError, match='links: unknown field'):
        neutral.snapshot_from_document(older, b.module, b.info)


def test_the_forks_layout_refuses_links(tmp_path):
    images = _set('wamr')
    store, a, b = _world('wamr')
    snap = tr.snapshot_from_images(images, b.module, b.info)
    base = fork_images.Baseline(snap.page_count, snap.memory, snap.globals, snap.tables,
                                snap.dropped_elems, snap.dropped_datas)
    for fork in RUNTIMES:
        with pytest.raises(ImageError, match="link.img: the state holds 2 link.*forks' layout"):
            fork_images.fork_files(snap, b.module, b.info, fork, base)
    files = im.encode_files(images)
    with pytest.raises(ImageError, match="link.img: present, but the forks' layout has no links"):
        fork_images.parse_files(lambda name, required=True: files.get(name), 'wamr')


def test_the_independent_reader_decodes_link_img(tmp_path):
    images = _set('wamr')
    d = str(tmp_path / 'set')
    im.write_images(images, d, frames='one-file')
    imagecheck.check_dir(d, images, im.read_images(d))
    assert imagecheck.decode_dir(d)['links'] == [(l.instance, l.fidx) for l in images.links]
    os.remove(os.path.join(d, im.LINK_FILE))
    with pytest.raises(imagecheck.ImageCheckError, match='version 5, but a set of these files is version'):
        imagecheck.decode_dir(d)


# A GC struct of $G holding a function of $A in a field, and an exception
# of $G whose field is one: links inside gc.img and exception.img.
G = '''(module
  (type $r (func (param i32) (result i32)))
  (type $box (struct (field (mut funcref))))
  (tag $e (param funcref))
  (import "A" "t" (table $t 2 funcref))
  (global $g (mut (ref null $box)) (ref.null $box))
  (func (export "run") (param $n i32) (result i32)
    (local $acc i32)
    (global.set $g (struct.new $box (table.get $t (i32.const 0))))
    (table.set $t (i32.const 0) (ref.null func))
    (loop $l
      (local.set $acc (i32.add (local.get $acc)
        (block $h (result funcref)
          (try_table (catch $e $h)
            (throw $e (struct.get $box 0 (global.get $g))))
          (unreachable))
        (drop) (i32.const 1)))
      (table.set $t (i32.const 1) (struct.get $box 0 (global.get $g)))
      (local.set $acc (call_indirect $t (type $r) (local.get $acc) (i32.const 1)))
      (br_if $l (i32.gt_s (local.tee $n (i32.sub (local.get $n) (i32.const 1)))
                          (i32.const 0))))
    (local.get $acc)))'''


def _gc_world(runtime):
    store = E.store_init(runtime)
    a = E.module_instantiate(store, E.module_decode(wasmtime.wat2wasm(A)), [])
    g = E.module_instantiate(store, E.module_decode(wasmtime.wat2wasm(G)), [a.exports['t']])
    return store, a, g


@pytest.mark.parametrize('a,b', [('wasmedge', 'wamr'), ('wamr', 'wasmedge')])
def test_links_in_gc_fields_migrate(a, b):
    """The only reference to $A's $dbl once the loop runs is a struct
    field (gc.img) and, while caught, an exception's field: every point
    migrates both ways, through the translator and neutral.json."""
    store, inst_a, inst_g = _gc_world(a)
    plain_store, _, plain_g = _gc_world(a)
    want = list(E.func_invoke(plain_store, plain_g.exports['run'][1], [4]))
    results, rep = migrate_call(store, inst_g.exports['run'][1], [4], a, b, seed='gc',
                                points=lambda n: range(n), peers={'A': inst_a})
    assert results == want
    assert rep.mismatch is None and rep.skipped is None and rep.points == rep.steps
    # a stopped run's set: version 5 with gc.img and link.img
    ex = store.new_executor(a)
    ex.start(inst_g.exports['run'][1], [4])
    ex.run(8)
    images = checkpoint.save(ex, inst_g, 'ab' * 32, 'run', [], peers={'A': inst_a})
    files = im.encode_files(images)
    assert json.loads(files['manifest.json'])['version'] == im.LINK_VERSION
    assert im.GC_FILE in files and im.LINK_FILE in files


# $A's $dbl held in a slot of a typed reference type, (ref $r): imported
# as a global's value, on the stack for call_ref
T = '''(module
  (type $r (func (param i32) (result i32)))
  (import "A" "gf" (global $gf (ref $r)))
  (func (export "run") (param $n i32) (result i32)
    (local $acc i32)
    (loop $l
      (local.set $acc (call_ref $r (i32.add (local.get $acc) (local.get $n)) (global.get $gf)))
      (br_if $l (i32.gt_s (local.tee $n (i32.sub (local.get $n) (i32.const 1)))
                          (i32.const 0))))
    (local.get $acc)))'''

# a peer whose function 0 has another type than $A's
X = '''(module (func (result i32) (i32.const 1)) (func (param i32) (result i32) (local.get 0)))'''


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_a_link_in_a_typed_slot_must_resolve_to_a_function_of_that_type(runtime):
    store = E.store_init(runtime)
    a = E.module_instantiate(store, E.module_decode(wasmtime.wat2wasm(A)), [])
    t = E.module_instantiate(store, E.module_decode(wasmtime.wat2wasm(T)), [a.exports['gf']])
    x = E.module_instantiate(store, E.module_decode(wasmtime.wat2wasm(X)), [])
    want = list(E.func_invoke(store, t.exports['run'][1], [N]))
    ex = store.new_executor(runtime)
    ex.start(t.exports['run'][1], [N])
    ex.run(10)
    images = im.decode_files(im.encode_files(
        checkpoint.save(ex, t, 'ab' * 32, 'run', [], peers={'A': a})))
    assert images.links == [links.Link('A', 0)] and images.globals == [('funcref', [1])]
    before = StoreState(store)
    with pytest.raises(links.LinkTypeMismatch) as e:
        checkpoint.restore(store, t, images, peers={'A': x})
    assert str(e.value).startswith("link.img: link to function 0 of instance 'A': it has type ")
    assert 'global.img global 0 is of type (ref 0)' in str(e.value)
    assert before.diff(store) is None
    ex = checkpoint.restore(store, t, images, peers={'A': a})
    ex.run()
    assert list(ex.results) == want
