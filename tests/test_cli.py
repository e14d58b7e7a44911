"""The engine's command line: run, checkpoint, translate, restore, inspect,
and every user error ending in one clear line with exit status 2.

Truth comes from wasmtime (the uninterrupted results) and from the
documented image layout (the files ``run --checkpoint-at`` must write).
"""

import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys

import pytest
import wasmtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAVE_WAMR = importlib.util.find_spec('engine.exec.wamr') is not None
RUNTIMES = ['wasmedge', 'wamr'] if HAVE_WAMR else ['wasmedge']

# A loop that fills memory and calls a recursive function, so a stop in the
# middle has several frames, open blocks, a dirty memory page and a global.
WAT = '''
(module
  (memory (export "mem") 1)
  (global $acc (mut i64) (i64.const 0))
  (func $fib (param $n i32) (result i64)
    (if (result i64) (i32.lt_u (local.get $n) (i32.const 2))
      (then (i64.extend_i32_u (local.get $n)))
      (else (i64.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func (export "run") (param $n i32) (param $x f64) (result i64 f64 i32)
    (local $i i32) (local $sum i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store (i32.mul (local.get $i) (i32.const 4))
                   (i32.mul (local.get $i) (local.get $i)))
        (global.set $acc (i64.add (global.get $acc)
                                  (call $fib (i32.rem_u (local.get $i) (i32.const 9)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.set $i (i32.const 0))
    (block $d2
      (loop $l2
        (br_if $d2 (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $sum (i32.add (local.get $sum)
                                 (i32.load (i32.mul (local.get $i) (i32.const 4)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l2)))
    (global.get $acc)
    (f64.mul (local.get $x) (f64.const 2.5))
    (local.get $sum))
  (func (export "boom") (result i32) unreachable)
)
'''
ARGS = ['40', '-1.25']


def engine(*args, cwd=None):
    """``python -m engine ARGS`` -> (status, stdout, stderr)."""
    p = subprocess.run([sys.executable, '-m', 'engine', *map(str, args)], cwd=cwd or ROOT,
                       capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def wasmtime_results(wasm, name, args):
    store = wasmtime.Store()
    inst = wasmtime.Instance(store, wasmtime.Module(store.engine, wasm), [])
    out = inst.exports(store)[name](store, *args)
    return list(out) if isinstance(out, (list, tuple)) else [out]


def f64_line(x):
    bits = struct.unpack('<Q', struct.pack('<d', x))[0]
    return f'f64:{x!r} (bits 0x{bits:016x})'


@pytest.fixture(scope='module')
def module(tmp_path_factory):
    d = tmp_path_factory.mktemp('cli')
    path = d / 'm.wasm'
    path.write_bytes(wasmtime.wat2wasm(WAT))
    return path


@pytest.fixture(scope='module')
def uninterrupted(module):
    status, out, err = engine('run', module, '--invoke', 'run', '--args', *ARGS)
    assert status == 0, err
    steps = int(err.split('#', 1)[1].split()[0])
    return out, steps


@pytest.fixture(scope='module')
def images(module, uninterrupted, tmp_path_factory):
    """A wasmedge image set stopped in the middle of the run."""
    _, steps = uninterrupted
    d = tmp_path_factory.mktemp('img') / 'a'
    status, out, err = engine('run', module, '--invoke', 'run', '--args', *ARGS,
                              '--checkpoint-at', steps // 2, '--runtime', 'wasmedge', '--images', d)
    assert status == 0, err
    return d


# ------------------------------------------------------------ happy paths

def test_run_prints_the_results_wasmtime_computes(module, uninterrupted):
    out, steps = uninterrupted
    acc, x, total = wasmtime_results(module.read_bytes(), 'run', [40, -1.25])
    assert out.splitlines() == [f'i64:{acc}', f64_line(x), f'i32:{total}']
    assert steps > 1000


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_run_trap_is_status_1_with_its_location(module, runtime):
    status, out, err = engine('run', module, '--invoke', 'boom', '--runtime', runtime)
    # boom is function 2; its body is [unreachable, end]: instruction 0 at
    # byte offset 0 (no locals), and it is the first instruction executed
    assert status == 1 and out == ''
    assert err.strip() == ('trap: unreachable (in function 2 at instruction 0 (unreachable), '
                           'byte offset 0, instruction count 1)')


def test_checkpoint_writes_the_documented_image_set(images, uninterrupted):
    _, steps = uninterrupted
    names = set(os.listdir(images))
    frames = struct.unpack('<I', (images / 'frame.img').read_bytes())[0]
    assert frames >= 2          # stopped inside $fib (or between calls with the loop open)
    assert {'manifest.json', 'program_counter.img', 'frame.img', 'memory.img',
            'mem_page_count.img', 'global.img', 'module.wasm'} <= names
    assert {f'stack{i}.img' for i in range(1, frames + 1)} <= names
    manifest = json.loads((images / 'manifest.json').read_text())
    assert manifest['runtime'] == 'wasmedge' and manifest['steps'] == steps // 2
    assert manifest['entry'] == 'run' and manifest['results'] == ['i64', 'f64', 'i32']
    assert struct.unpack('<I', (images / 'mem_page_count.img').read_bytes()) == (1,)
    mem = (images / 'memory.img').read_bytes()
    assert len(mem) == 4 + 4096 and mem[:4] == bytes(4)       # one dirty chunk, at 0
    assert struct.unpack_from('<I', mem, 4 + 4 * 3)[0] == 9    # memory[3] = 3 * 3 already
    glob = (images / 'global.img').read_bytes()
    assert glob[:5] == struct.pack('<I', 1) + b'\x7e' and len(glob) == 4 + 1 + 8


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_translate_then_restore_gives_the_uninterrupted_results(images, uninterrupted, runtime,
                                                                tmp_path):
    out, _ = uninterrupted
    other = tmp_path / 'b'
    status, msg, err = engine('translate', images, '--to', 'wamr', '--out', other)
    assert status == 0, err
    assert json.loads((other / 'manifest.json').read_text())['runtime'] == 'wamr'
    status, got, err = engine('restore', other, '--runtime', runtime)
    assert status == 0, err
    assert got == out


def test_restore_chain_stops_again_and_finishes(images, uninterrupted, tmp_path):
    out, steps = uninterrupted
    nxt = tmp_path / 'c'
    status, _, err = engine('restore', images, '--checkpoint-at', steps // 2 + 7, '--out', nxt)
    assert status == 0, err
    assert json.loads((nxt / 'manifest.json').read_text())['steps'] == steps // 2 + 7
    status, got, err = engine('restore', nxt, '--runtime', RUNTIMES[-1])
    assert status == 0, err
    assert got == out


def test_inspect_shows_the_fields(images, uninterrupted):
    _, steps = uninterrupted
    status, out, err = engine('inspect', images)
    assert status == 0, err
    lines = out.splitlines()
    assert 'runtime      wasmedge' in lines
    assert f'steps        {steps // 2}' in lines
    assert any(l.startswith('entry        run -> [i64 f64 i32]') for l in lines)
    assert any(l.startswith('pc           function ') for l in lines)
    assert any(l.startswith('frame 1 ') for l in lines)
    assert 'memory       1 pages, 1 non-zero 4 KiB chunks' in lines
    assert any(l.startswith('global 0     i64 ') for l in lines)


# ------------------------------------------------------------ user errors

def one_error_line(status, out, err, *needles):
    assert status == 2, (status, out, err)
    assert 'Traceback' not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_missing_module(tmp_path):
    one_error_line(*engine('run', tmp_path / 'nope.wasm', '--invoke', 'f'), 'nope.wasm')


def test_malformed_module(tmp_path):
    bad = tmp_path / 'bad.wasm'
    bad.write_bytes(b'\0asm\x01\0\0\0\x01\x05')
    one_error_line(*engine('run', bad, '--invoke', 'f'), 'bad.wasm', 'length out of bounds')
    bad.write_bytes(b'not wasm at all')
    one_error_line(*engine('run', bad, '--invoke', 'f'), 'bad.wasm', 'magic header')


def test_invalid_module(tmp_path):
    bad = tmp_path / 'invalid.wasm'
    # (func (result i32)) with an empty body: valid binary, invalid code
    bad.write_bytes(b'\0asm\x01\0\0\0\x01\x05\x01\x60\x00\x01\x7f\x03\x02\x01\x00'
                b'\x0a\x04\x01\x02\x00\x0b')
    one_error_line(*engine('run', bad, '--invoke', 'f'), 'invalid.wasm', 'type mismatch')


def test_unknown_export(module):
    one_error_line(*engine('run', module, '--invoke', 'nosuch'), "'nosuch'", 'run')


@pytest.mark.parametrize('args, needle', [
    (['1'], 'takes 2 arguments'),
    (['x', '1.0'], "'x'"),
    (['1', 'pi'], "'pi'"),
    (['0x1_0000_0000', '1'], 'i32'),
])
def test_bad_args(module, args, needle):
    one_error_line(*engine('run', module, '--invoke', 'run', '--args', *args), needle)


def test_checkpoint_without_images_dir(module):
    one_error_line(*engine('run', module, '--invoke', 'run', '--args', *ARGS,
                           '--checkpoint-at', '5'), '--images')


def _broken_copy(images, tmp_path, name, how):
    d = tmp_path / 'broken'
    shutil.copytree(images, d)
    p = d / name
    data = p.read_bytes()
    if how == 'truncate':
        p.write_bytes(data[:-1])
    elif how == 'extend':
        p.write_bytes(data + b'\0')
    elif how == 'delete':
        p.unlink()
    else:
        p.write_bytes(how(data))
    return d


def _set_u32(pos, value):
    return lambda data: data[:pos] + struct.pack('<I', value) + data[pos + 4:]


BROKEN = [
    ('manifest.json', lambda d: d[:len(d) // 2], 'manifest.json'),
    ('manifest.json', lambda d: d.replace(b'"version": 1', b'"version": 7'), 'version'),
    ('manifest.json', lambda d: d.replace(b'"wasmedge"', b'"jvm"'), 'runtime'),
    ('program_counter.img', 'truncate', 'program_counter.img'),
    ('program_counter.img', _set_u32(4, 99999), 'stack1.img'),
    ('frame.img', 'truncate', 'frame.img'),
    ('frame.img', _set_u32(0, 0), 'frame.img'),
    ('frame.img', _set_u32(0, 40), 'stack'),
    ('stack1.img', 'truncate', 'stack1.img'),
    ('stack1.img', 'extend', 'stack1.img'),
    ('stack1.img', _set_u32(12, 1), 'stack1.img'),
    ('stack2.img', 'delete', 'stack2.img'),
    ('memory.img', 'truncate', 'memory.img'),
    ('memory.img', _set_u32(0, 123), 'memory.img'),
    ('mem_page_count.img', 'truncate', 'mem_page_count.img'),
    ('mem_page_count.img', _set_u32(0, 70000), 'mem_page_count.img'),
    ('global.img', 'truncate', 'global.img'),
    ('global.img', lambda d: d[:4] + b'\x7f' + d[5:], 'global.img'),
    ('global.img', lambda d: d[:6], 'global.img'),
    ('manifest.json', lambda d: _manifest(d, steps='abc'), 'manifest.json: steps'),
    ('manifest.json', lambda d: _manifest(d, steps=None), 'manifest.json: steps'),
    ('manifest.json', lambda d: _manifest(d, steps=[1]), 'manifest.json: steps'),
    ('manifest.json', lambda d: _manifest(d, steps=-5), 'manifest.json: steps'),
    ('manifest.json', lambda d: _manifest(d, steps=True), 'manifest.json: steps'),
    ('manifest.json', lambda d: _manifest(d, results=[['i32']]), 'manifest.json: results'),
    ('manifest.json', lambda d: _manifest(d, results='i64'), 'manifest.json: results'),
    ('manifest.json', lambda d: _manifest(d, entry=7), 'manifest.json: entry'),
    ('manifest.json', lambda d: _manifest(d, entry=None, drop='entry'), 'manifest.json: entry'),
    ('manifest.json', lambda d: b'[' * 100000 + b']' * 100000, 'manifest.json'),
    ('mem_page_count.img', _set_u32(0, 20000), '--max-memory-pages 16384'),
]


def _manifest(data, drop=None, **fields):
    doc = json.loads(data)
    doc.update(fields)
    if drop:
        del doc[drop]
    return json.dumps(doc).encode()


@pytest.mark.parametrize('name, how, needle', BROKEN,
                         ids=[f'{n}-{h if isinstance(h, str) else i}' for i, (n, h, _) in enumerate(BROKEN)])
@pytest.mark.parametrize('command', ['restore', 'translate', 'inspect'])
def test_broken_image_files_are_refused(images, tmp_path, name, how, needle, command):
    d = _broken_copy(images, tmp_path, name, how)
    out = tmp_path / 'out'
    args = {'restore': ['restore', d], 'translate': ['translate', d, '--to', 'wamr', '--out', out],
            'inspect': ['inspect', d]}[command]
    status, stdout, err = engine(*args)
    if command == 'inspect' and status == 0:
        # inspect only reads the files: a set that is well-formed but does
        # not fit the module (e.g. a PC beyond the code) is for restore to refuse
        assert needle in ('stack1.img', 'stack', 'global.img', 'mem_page_count.img',
                          '--max-memory-pages 16384'), err
        return
    one_error_line(status, stdout, err, needle)
    assert not out.exists(), 'translate left something in --out'


def test_module_mismatch(images, tmp_path):
    other = tmp_path / 'other.wasm'
    other.write_bytes(wasmtime.wat2wasm('(module (func (export "run")))'))
    one_error_line(*engine('restore', images, '--module', other), 'module_sha256')
    out = tmp_path / 'out'
    one_error_line(*engine('translate', images, '--to', 'wamr', '--out', out, '--module', other),
                   'module_sha256')
    assert not out.exists()


def test_missing_module_file_in_image_dir(images, tmp_path):
    d = _broken_copy(images, tmp_path, 'module.wasm', 'delete')
    one_error_line(*engine('restore', d), 'module.wasm')


def test_missing_image_dir(tmp_path):
    one_error_line(*engine('restore', tmp_path / 'none'), 'none')
    one_error_line(*engine('inspect', tmp_path / 'none'), 'none')


def test_failed_translate_keeps_the_old_out_dir(images, tmp_path):
    out = tmp_path / 'out'
    status, _, err = engine('translate', images, '--to', 'wamr', '--out', out)
    assert status == 0, err
    before = {n: (out / n).read_bytes() for n in os.listdir(out)}
    d = _broken_copy(images, tmp_path, 'stack1.img', 'truncate')
    one_error_line(*engine('translate', d, '--to', 'wasmedge', '--out', out), 'stack1.img')
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before
    assert [n for n in os.listdir(tmp_path) if n.startswith('.')] == []


def test_out_is_a_file(images, tmp_path):
    out = tmp_path / 'out'
    out.write_text('precious')
    one_error_line(*engine('translate', images, '--to', 'wamr', '--out', out), str(out))
    assert out.read_text() == 'precious'
    assert [n for n in os.listdir(tmp_path) if n.startswith('.')] == []


def test_out_is_a_foreign_folder(images, tmp_path):
    out = tmp_path / 'notes'
    out.mkdir()
    (out / 'todo.txt').write_text('keep me')
    one_error_line(*engine('translate', images, '--to', 'wamr', '--out', out), 'not an image directory')
    one_error_line(*engine('restore', images, '--checkpoint-at', '1', '--out', out),
                   'not an image directory')
    one_error_line(*engine('run', images / 'module.wasm', '--invoke', 'run', '--args', *ARGS,
                           '--checkpoint-at', '1', '--images', out), 'not an image directory')
    assert (out / 'todo.txt').read_text() == 'keep me'


# ------------------------------------------------------------ issue 12: CLI fixes and limits

@pytest.mark.parametrize('command', ['run', 'restore'])
def test_negative_checkpoint_at_is_refused(module, images, command):
    args = (['run', module, '--invoke', 'run', '--args', *ARGS, '--images', 'x']
            if command == 'run' else ['restore', images, '--out', 'x'])
    status, out, err = engine(*args, '--checkpoint-at', '-5')
    assert status == 2 and '--checkpoint-at: -5 is negative' in err and 'Traceback' not in err


def test_restore_checkpoint_without_out_fails_before_running(images, tmp_path):
    """The check comes first: the run is never started (no result printed)."""
    for flag in (['--checkpoint-at', '999999999'], ['--trigger', str(tmp_path / 't')]):
        status, out, err = engine('restore', images, *flag)
        one_error_line(status, out, err, '--out DIR')
        assert out == ''


def test_restore_checkpoint_at_or_before_the_images_is_refused(images, uninterrupted, tmp_path):
    manifest = json.loads((images / 'manifest.json').read_text())
    held = manifest['steps']
    for n in (held, held - 1, 0):
        status, out, err = engine('restore', images, '--checkpoint-at', n, '--out', tmp_path / 'o')
        one_error_line(status, out, err, f'--checkpoint-at {n}', f'after {held} instructions')
        assert not (tmp_path / 'o').exists()
    status, out, err = engine('restore', images, '--checkpoint-at', held + 1, '--out', tmp_path / 'o')
    assert status == 0 and f'checkpoint after {held + 1} instructions' in out


def test_inspect_explains_both_counts(images):
    status, out, err = engine('inspect', images)
    assert status == 0
    steps_line = [l for l in out.splitlines() if l.startswith('counted as ')][0]
    other = [l for l in out.splitlines() if l.startswith('other count ')][0]
    assert 'translation keeps the count' in steps_line
    assert 'not derivable' in other and 'Instruction counts' in other


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_max_steps_and_call_depth_flags(module, uninterrupted, runtime):
    _, steps = uninterrupted
    status, out, err = engine('run', module, '--invoke', 'run', '--args', *ARGS,
                              '--runtime', runtime, '--max-steps', 1000)
    one_error_line(status, out, err, '--max-steps 1000')
    if runtime == 'wasmedge':      # the count is the model's own (see docs/images.md)
        status, out, err = engine('run', module, '--invoke', 'run', '--args', *ARGS,
                                  '--max-steps', steps)
        assert status == 0, err
    status, out, err = engine('run', module, '--invoke', 'run', '--args', *ARGS,
                              '--runtime', runtime, '--max-call-depth', 3)
    assert status == 1 and err.startswith('trap: call stack exhausted (--max-call-depth 3, '
                                          'in function 0 at instruction'), err


def test_timeout_flag_stops_a_long_run(tmp_path):
    spin = tmp_path / 'spin.wasm'          # never ends, in either tier
    spin.write_bytes(wasmtime.wat2wasm('(module (func (export "spin") (loop (br 0))))'))
    for tier in ('interp', 'fast'):
        status, out, err = engine('run', spin, '--invoke', 'spin', '--timeout', '0.5',
                                  '--tier', tier)
        one_error_line(status, out, err, '--timeout 0.5')


def test_progress_flag_prints_the_count(tmp_path):
    spin = tmp_path / 'spin.wasm'          # never ends: only the timeout stops it
    spin.write_bytes(wasmtime.wat2wasm('(module (func (export "spin") (loop (br 0))))'))
    status, out, err = engine('run', spin, '--invoke', 'spin', '--progress', '--timeout', '2.5')
    assert status == 2, err
    lines = [l for l in err.splitlines() if l.startswith('# ') and 'instructions' in l]
    assert lines and all('M/s' in l for l in lines)


def test_memory_and_module_size_flags(module, tmp_path):
    big = tmp_path / 'big.wasm'
    big.write_bytes(wasmtime.wat2wasm('(module (memory 65536) (func (export "f")))'))
    one_error_line(*engine('run', big, '--invoke', 'f'), 'memory 0 minimum pages: 65536',
                   '--max-memory-pages 16384')
    one_error_line(*engine('run', big, '--invoke', 'f', '--max-memory-pages', 10), 'big.wasm',
                   '--max-memory-pages 10')
    one_error_line(*engine('run', module, '--invoke', 'run', '--max-module-bytes', 100),
                   'module size in bytes', '--max-module-bytes 100')
    tab = tmp_path / 'tab.wasm'
    tab.write_bytes(wasmtime.wat2wasm('(module (table 0xffffffff funcref) (func (export "f")))'))
    one_error_line(*engine('run', tab, '--invoke', 'f'), 'table 0 minimum size: 4294967295',
                   '--max-table-elems')


def test_restore_checks_page_count_against_the_memory_limit(images, tmp_path):
    d = _broken_copy(images, tmp_path, 'mem_page_count.img', _set_u32(0, 2))
    assert engine('restore', d)[0] == 0          # 2 pages fit the module and the default
    status, out, err = engine('restore', d, '--max-memory-pages', 1)
    one_error_line(status, out, err, 'mem_page_count.img: page count: 2',
                   '--max-memory-pages 1')


# ------------------------------------------------------------ frames in one file

@pytest.mark.parametrize('runtime', RUNTIMES)
def test_one_file_frames_round_trip_in_both_models(module, uninterrupted, runtime, tmp_path):
    """run --frames one-file writes stacks.img (version 2, recorded in the
    manifest); restore reads it in either model, translate keeps or changes
    the layout, and every route gives wasmtime's results."""
    out, steps = uninterrupted
    one = tmp_path / 'one'
    status, _, err = engine('run', module, '--invoke', 'run', '--args', *ARGS, '--runtime', runtime,
                            '--checkpoint-at', steps // 2, '--images', one, '--frames', 'one-file')
    assert status == 0, err
    names = set(os.listdir(one))
    assert 'stacks.img' in names and not any(n.startswith('stack') and n[5].isdigit() for n in names)
    manifest = json.loads((one / 'manifest.json').read_text())
    assert manifest['version'] == 2 and manifest['frames'] == 'one-file'
    status, text, err = engine('inspect', one)
    assert status == 0 and 'all in stacks.img' in text, err
    for to in RUNTIMES:
        status, got, err = engine('restore', one, '--runtime', to)
        assert status == 0 and got == out, err
    per = tmp_path / 'per'
    status, _, err = engine('translate', one, '--to', RUNTIMES[-1], '--out', per)
    assert status == 0, err
    assert json.loads((per / 'manifest.json').read_text())['version'] == 1 and \
        (per / 'stack1.img').exists()
    back = tmp_path / 'back'
    status, _, err = engine('translate', per, '--to', runtime, '--out', back, '--frames', 'one-file')
    assert status == 0 and (back / 'stacks.img').exists(), err
    nxt = tmp_path / 'next'
    status, _, err = engine('restore', back, '--checkpoint-at', steps // 2 + 5, '--out', nxt,
                            '--frames', 'one-file')
    assert status == 0 and (nxt / 'stacks.img').exists(), err
    status, got, err = engine('restore', nxt)
    assert status == 0 and got == out, err


def test_corrupt_one_file_frames_are_one_clear_error(module, uninterrupted, tmp_path):
    _, steps = uninterrupted
    one = tmp_path / 'one'
    status, _, err = engine('run', module, '--invoke', 'run', '--args', *ARGS, '--checkpoint-at',
                            steps // 2, '--images', one, '--frames', 'one-file')
    assert status == 0, err
    p = one / 'stacks.img'
    data = p.read_bytes()
    p.write_bytes(data[:20] + b'\x03' + data[21:])      # frame 1's first cells-per-slot byte
    status, out, err = engine('restore', one)
    one_error_line(status, out, err, 'stacks.img: frame 1', 'cells per slot [0]', '3 is not 1, 2 or 4')


def test_one_file_frames_are_refused_for_the_forks_layout(module, tmp_path):
    status, out, err = engine('run', module, '--invoke', 'run', '--args', *ARGS, '--checkpoint-at',
                              5, '--images', tmp_path / 'f', '--format', 'fork', '--frames',
                              'one-file')
    one_error_line(status, out, err, '--frames one-file', 'one file per frame')
    assert not (tmp_path / 'f').exists()


# ------------------------------------------------------------ start-up

LOADED = ('import sys, runpy\nsys.argv = ["engine"] + sys.argv[1:]\ntry:\n'
          '    runpy.run_module("engine", run_name="__main__")\nexcept SystemExit:\n    pass\n'
          'print(" ".join(sorted(sys.modules)), file=sys.stderr)\n')


def loaded_modules(*args):
    p = subprocess.run([sys.executable, '-c', LOADED, *map(str, args)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    return p.stdout, set(p.stderr.split())


def test_run_imports_only_what_the_command_needs(module, tmp_path):
    """``run`` of a module without WASI imports, with literal arguments,
    loads neither the .wast grammar (lark, conformance), nor WASI, nor the
    checkpoint code, nor fuzz; the same check on a WASI command and on a
    checkpointing run shows those do load when needed."""
    out, mods = loaded_modules('run', module, '--invoke', 'run', '--args', '3', '0x1p-2')
    assert out.splitlines()[1] == f64_line(0.625)
    assert 'engine.exec.wasmedge' in mods
    for name in ('lark', 'conformance', 'conformance.wast', 'engine.wasi.preview1', 'engine.wasi.state',
                 'engine.migrate.checkpoint', 'engine.migrate.translate', 'engine.migrate.neutral', 'engine.migrate.fork_images',
                 'fuzz', 'forks', 'hypothesis'):
        assert name not in mods, name
    _, mods = loaded_modules('run', module, '--invoke', 'run', '--args', '40', '1',
                             '--checkpoint-at', 100, '--images', tmp_path / 'i')
    assert 'engine.migrate.checkpoint' in mods and 'lark' not in mods and 'engine.wasi.preview1' not in mods
    wasi = tmp_path / 'hello.wasm'
    wasi.write_bytes(wasmtime.wat2wasm(
        '(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))'
        ' (memory (export "memory") 1) (func (export "_start") (call $exit (i32.const 3))))'))
    _, mods = loaded_modules('run', wasi)
    assert 'engine.wasi.preview1' in mods and 'lark' not in mods


def test_the_cli_knows_the_wasi_module_name_without_importing_it():
    from engine import cli
    from engine.wasi import preview1 as wasi
    assert cli.WASI_MODULE == wasi.MODULE


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_restore_format_fork_reads_and_decodes_the_module_once(module, uninterrupted, runtime,
                                                               tmp_path, monkeypatch, capsys):
    from engine import cli, embedding
    out, steps = uninterrupted
    d = tmp_path / 'fork'
    assert cli.main(['run', str(module), '--invoke', 'run', '--args', *ARGS, '--runtime', 'wasmedge',
                     '--checkpoint-at', str(steps // 2), '--images', str(d), '--format', 'fork']) == 0
    capsys.readouterr()
    decoded, read = [], []
    real_decode, real_read = embedding.module_decode, cli.read_module
    monkeypatch.setattr(embedding, 'module_decode',
                        lambda *a, **k: decoded.append(1) or real_decode(*a, **k))
    monkeypatch.setattr(cli, 'read_module', lambda *a, **k: read.append(1) or real_read(*a, **k))
    assert cli.main(['restore', str(d), '--format', 'fork', '--from', 'wasmedge', '--runtime',
                     runtime, '--module', str(module), '--invoke', 'run']) == 0
    assert capsys.readouterr().out == out
    assert decoded == [1] and read == [1]


def test_wamr_checkpoints_are_the_same_in_both_tiers(module, tmp_path):
    """``run --runtime wamr --checkpoint-at N`` writes the same files under
    --tier fast (the default) as under --tier interp, and restoring them in
    either tier prints the same results and count."""
    status, _, err = engine('run', module, '--invoke', 'run', '--args', *ARGS, '--runtime', 'wamr',
                            '--tier', 'interp')
    assert status == 0, err
    steps = int(err.split('#', 1)[1].split()[0])
    for n in (1, steps // 3, steps - 2):
        dirs = {}
        for tier in ('interp', 'fast'):
            d = dirs[tier] = tmp_path / f'{n}-{tier}'
            status, out, err = engine('run', module, '--invoke', 'run', '--args', *ARGS,
                                      '--runtime', 'wamr', '--checkpoint-at', n, '--images', d,
                                      '--tier', tier)
            assert status == 0, err
        names = sorted(p.name for p in dirs['interp'].iterdir())
        assert names == sorted(p.name for p in dirs['fast'].iterdir())
        for name in names:
            assert (dirs['interp'] / name).read_bytes() == (dirs['fast'] / name).read_bytes(), name
        got = [engine('restore', dirs['fast'], '--tier', tier) for tier in ('interp', 'fast')]
        assert got[0][0] == 0 and got[0][1] == got[1][1]
        assert got[0][2].split('#')[1].split(',')[0] == got[1][2].split('#')[1].split(',')[0]
