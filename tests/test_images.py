"""Image files: exact bytes of every field, round trip, and rejection of
broken sets with an error naming the file and field."""

import dataclasses
import json
import os
import struct

import pytest

from engine.migrate import images as im


def sample():
    return im.ImageSet(
        runtime='wamr', module_sha256='ab' * 32, pc=(3, 17),
        frames=[im.FrameImage(3, 1, 42, [1, 2], [7, 0x89ABCDEF, 0x01234567],
                              [(5, 30, 0, 1), (im.NONE, im.NONE, 2, 0)]),
                im.FrameImage(1, im.NONE, im.NONE, [4], [1, 2, 3, 4], [])],
        page_count=2, memory={4096: bytes(range(256)) * 16},
        globals=[('i64', [1, 2]), ('f32', [0x7FC00000])],
        tables=[[0, im.NONE, 2]], entry='main', results=['i32'], steps=99,
        dropped_elems=[1], dropped_datas=[0, 2])


def test_frame_bytes_are_exactly_the_documented_layout():
    f = sample().frames[0]
    b = im.encode_frame(f)
    expect = struct.pack('<4I', 3, 1, 42, 2) + bytes([1, 2]) + struct.pack(
        '<3I', 7, 0x89ABCDEF, 0x01234567) + struct.pack('<I', 2) + struct.pack(
        '<8I', 5, 30, 0, 1, 0xFFFFFFFF, 0xFFFFFFFF, 2, 0)
    assert b == expect


def test_round_trip(tmp_path):
    s = sample()
    d = tmp_path / 'img'
    im.write_images(s, str(d))
    assert sorted(os.listdir(d)) == sorted(
        ['manifest.json', 'program_counter.img', 'frame.img', 'stack1.img', 'stack2.img',
         'memory.img', 'mem_page_count.img', 'global.img', 'table.img', 'segment.img'])
    assert (d / 'program_counter.img').read_bytes() == struct.pack('<2I', 3, 17)
    assert (d / 'memory.img').read_bytes()[:4] == struct.pack('<I', 4096)
    assert im.read_images(str(d)) == s


def test_overwrite_is_whole(tmp_path):
    d = tmp_path / 'img'
    im.write_images(sample(), str(d))
    s = sample()
    s.frames = s.frames[:1]
    s.frames[0].return_fidx = im.NONE
    im.write_images(s, str(d))
    assert not (d / 'stack2.img').exists()
    assert len(im.read_images(str(d)).frames) == 1


@pytest.mark.parametrize('error', [OSError(28, 'No space left on device'), KeyboardInterrupt()])
def test_a_write_failing_part_way_leaves_the_old_set_and_no_staging(tmp_path, monkeypatch, error):
    """Nothing half-written on disk: a set whose writing fails after some
    of its files (a full disk, an interrupt) leaves the set it was to
    replace as it was and no staging folder beside it; the failure is
    the caller's to see."""
    d = tmp_path / 'img'
    im.write_images(sample(), str(d))
    before = {f: (d / f).read_bytes() for f in os.listdir(d)}
    written = []

    class FailingOS:
        """The os module, but for writes after the first file's."""
        def __getattr__(self, name):
            return getattr(os, name)

        def write(self, fd, data):
            if written:
                raise error
            written.append(fd)
            return os.write(fd, data)
    monkeypatch.setattr(im, 'os', FailingOS())
    with pytest.raises(type(error)):
        im.write_images(sample(), str(d))
    monkeypatch.undo()
    assert written, 'the write failed before any file'
    assert {f: (d / f).read_bytes() for f in os.listdir(d)} == before
    assert os.listdir(tmp_path) == ['img']


def corrupt(tmp_path, name, mutate):
    d = tmp_path / 'img'
    im.write_images(sample(), str(d))
    p = d / name
    data = p.read_bytes() if p.exists() else b''
    new = mutate(data)
    if new is None:
        p.unlink()
    else:
        p.write_bytes(new)
    with pytest.raises(im.ImageError) as e:
        im.read_images(str(d))
    return str(e.value)


@pytest.mark.parametrize('name,mutate,words', [
    ('stack1.img', lambda b: b[:-3], ['stack1.img', 'label 1']),
    ('stack1.img', lambda b: b + b'\0', ['stack1.img', 'trailing']),
    ('stack1.img', lambda b: b[:16] + b'\x03' + b[17:], ['stack1.img', 'cells per slot']),
    ('stack2.img', lambda b: None, ['stack2.img', 'missing']),
    ('frame.img', lambda b: struct.pack('<I', 0), ['frame.img', 'frame count']),
    ('program_counter.img', lambda b: b[:6], ['program_counter.img', 'offset']),
    ('program_counter.img', lambda b: struct.pack('<2I', 9, 0), ['program_counter.img', 'fidx']),
    ('memory.img', lambda b: struct.pack('<I', 5) + b[4:], ['memory.img', 'page offset']),
    ('memory.img', lambda b: struct.pack('<I', 3 * 65536) + b[4:], ['memory.img', 'beyond']),
    ('memory.img', lambda b: b[:100], ['memory.img', 'page data']),
    ('mem_page_count.img', lambda b: struct.pack('<I', 70000), ['mem_page_count.img']),
    ('global.img', lambda b: b[:4] + b'\x55' + b[5:], ['global.img', 'global 0 type']),
    ('global.img', lambda b: b[:-1], ['global.img', 'global 1 value']),
    ('table.img', lambda b: b + b'\1', ['table.img']),
    ('segment.img', lambda b: b[:-2], ['segment.img', 'dropped data']),
    ('manifest.json', lambda b: b'{', ['manifest.json', 'JSON']),
    ('manifest.json', lambda b: b.replace(b'"version": 1', b'"version": 7'), ['manifest.json', 'version']),
    ('manifest.json', lambda b: b.replace(b'"wamr"', b'"v8"'), ['manifest.json', 'runtime']),
])
def test_broken_sets_are_rejected_naming_file_and_field(tmp_path, name, mutate, words):
    msg = corrupt(tmp_path, name, mutate)
    for w in words:
        assert w in msg, msg


def test_wrong_module_is_rejected():
    s = sample()
    with pytest.raises(im.ImageError, match='module_sha256'):
        im.check_module(s, b'\0asm\1\0\0\0')


def test_missing_directory(tmp_path):
    with pytest.raises(im.ImageError, match='does not exist'):
        im.read_images(str(tmp_path / 'nope'))


# ------------------------------------------------------------ frames in one file (version 2)

def one_file(tmp_path, mutate=None, manifest=None):
    d = tmp_path / 'one'
    im.write_images(sample(), str(d), frames='one-file')
    if mutate is not None:
        p = d / im.FRAMES_FILE
        p.write_bytes(mutate(p.read_bytes()))
    if manifest is not None:
        p = d / 'manifest.json'
        p.write_bytes(manifest(p.read_bytes()))
    return d


def test_one_file_frames_round_trip_and_layout(tmp_path):
    d = one_file(tmp_path)
    names = sorted(os.listdir(d))
    assert im.FRAMES_FILE in names and not [n for n in names if n.startswith('stack') and
                                            n != im.FRAMES_FILE]
    f1, f2 = (im.encode_frame(f) for f in sample().frames)
    assert (d / im.FRAMES_FILE).read_bytes() == (struct.pack('<I', len(f1)) + f1
                                                 + struct.pack('<I', len(f2)) + f2)
    doc = json.loads((d / 'manifest.json').read_text())
    assert doc['version'] == 2 and doc['frames'] == 'one-file'
    back = im.read_images(str(d))
    assert back.frames_layout == 'one-file'
    assert dataclasses.replace(back, frames_layout='per-file') == sample()
    # the default stays the forks' layout, version 1, with no frames key
    im.write_images(sample(), str(tmp_path / 'per'))
    doc = json.loads((tmp_path / 'per' / 'manifest.json').read_text())
    assert doc['version'] == 1 and 'frames' not in doc
    assert im.read_images(str(tmp_path / 'per')).frames_layout == 'per-file'


@pytest.mark.parametrize('mutate,manifest,words', [
    (lambda b: b[:-3], None, ['stacks.img', 'frame 2 length', 'only 34 remain']),
    (lambda b: b + b'\0', None, ['stacks.img', 'end', 'trailing']),
    (lambda b: struct.pack('<I', 10 ** 6) + b[4:], None, ['stacks.img', 'frame 1 length']),
    (lambda b: b[:20] + b'\x03' + b[21:], None, ['stacks.img', 'frame 1', 'cells per slot [0]']),
    (lambda b: b'', None, ['stacks.img', 'frame 1 length', 'truncated']),
    (None, lambda b: b.replace(b'"frames": "one-file"', b'"frames": "two"'),
     ['manifest.json', 'frames']),
    (None, lambda b: b.replace(b'"version": 2', b'"version": 1'), ['stack1.img', 'missing']),
])
def test_corrupt_one_file_frames_are_refused_naming_file_and_field(tmp_path, mutate, manifest,
                                                                   words):
    d = one_file(tmp_path, mutate, manifest)
    with pytest.raises(im.ImageError) as e:
        im.read_images(str(d))
    for w in words:
        assert w in str(e.value), str(e.value)


def test_unknown_frames_layout_is_a_programming_error():
    with pytest.raises(ValueError, match='frames layout'):
        im.encode_files(sample(), frames='zip')
