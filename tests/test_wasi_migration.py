"""WASI commands migrated at random points between the WasmEdge model and
the WAMR model, with files open, through image sets on disk and through
neutral.json: stdout, stderr and every file must equal the uninterrupted
run's byte for byte (deterministic mode fixes clock and random)."""

import io
import os
import random
import shutil
import subprocess
import sys

import pytest

from wasi_helpers import HERE, app, compile_c, engine_start, finish, wasmtime_run

ROOT = os.path.dirname(HERE)
RUNTIMES = ('wasmedge', 'wamr')
OTHER = {'wasmedge': 'wamr', 'wamr': 'wasmedge'}
ARGV = ['journal.wasm', '20']


def make_data(root):
    os.makedirs(root)
    with open(os.path.join(root, 'in.txt'), 'w') as f:
        f.write(''.join(f'item number {i} {"x" * (i % 13)}\n' for i in range(24)))
    with open(os.path.join(root, 'log.txt'), 'w') as f:
        f.write('existing log\n')
    return root


def files_of(root):
    return {name: open(os.path.join(root, name), 'rb').read() for name in sorted(os.listdir(root))}


@pytest.fixture(scope='module')
def journal(tmp_path_factory):
    """The program, and its uninterrupted deterministic run: (stdout,
    stderr, files) and the instruction count (the smaller of the two
    models': the WAMR model counts some control instructions the WasmEdge
    model does not)."""
    tmp = tmp_path_factory.mktemp('journal')
    wasm = compile_c('journal', str(tmp))
    runs = []
    for rt in RUNTIMES:
        data = make_data(str(tmp / f'full-{rt}'))
        _, _, wasi, ex, out, err = engine_start(wasm, ARGV, [(data, '/data')], runtime=rt,
                                                deterministic=True)
        assert finish(wasi, ex) == 0
        runs.append(((out.getvalue(), err.getvalue(), files_of(data)), ex.steps))
    assert runs[0][0] == runs[1][0]           # both models, the same bytes
    return wasm, runs[0][0], min(runs[0][1], runs[1][1])


def test_uninterrupted_run_matches_wasmtime(journal, tmp_path):
    import re
    wasm, (out, err, files), _ = journal
    data = make_data(str(tmp_path / 'wt'))
    code, w_out, w_err = wasmtime_run(wasm, ARGV, [(data, '/data')], tmp=str(tmp_path))
    mask = lambda b: re.sub(rb't=\d+ r=[0-9a-f]+', b't=? r=?', b)   # real clock and random there
    assert (code, mask(w_out), w_err) == (0, mask(out), err)
    assert files_of(data) == files
    assert b'24 lines' in out and files['log.txt'].startswith(b'existing log\nentry 0: ')


def save(ex, inst, wasi, wasm, directory):
    """Checkpoint to an image directory with its wasi.json, then end the
    host side of the run as a stopped process would."""
    from engine.migrate import checkpoint, images as im
    from engine import cli
    images = checkpoint.save(ex, inst, im.module_sha256(wasm), '_start', [])
    im.write_images(images, directory, extra=dict({cli.MODULE_FILE: wasm}, **cli.wasi_files(wasi)))
    wasi.close()


def resume(directory, runtime, dirs):
    from engine import cli
    from engine.wasi import state as wasi_state
    out, err = io.BytesIO(), io.BytesIO()
    wasi = wasi_state.restore(wasi_state.read(directory), dirs, io.BytesIO(), out, err)
    ex, inst, _, _ = cli.resume(directory, runtime, wasi=wasi)
    return ex, inst, wasi, out, err


def to_other(directory, runtime, via_neutral, tmp):
    """Translate on disk, through neutral.json or directly."""
    from engine import cli
    target = os.path.join(tmp, f'{os.path.basename(directory)}-{runtime}')
    if via_neutral:
        neutral_dir = directory + '-neutral'
        assert cli.main(['translate', directory, '--to', 'neutral', '--out', neutral_dir]) == 0
        return neutral_dir
    assert cli.main(['translate', directory, '--to', runtime, '--out', target]) == 0
    return target


def migrate(wasm, points, first, tmp, via_neutral):
    """Run stopping at each of ``points`` (instruction counts), moving to
    the other model each time, with the data directory copied to a new
    place (remapped with --dir semantics).  Returns stdout, stderr, files."""
    data = make_data(os.path.join(tmp, 'data0'))
    store, inst, wasi, ex, out, err = engine_start(wasm, ARGV, [(data, '/data')], runtime=first,
                                                   deterministic=True)
    outs, errs, runtime = [out], [err], first
    for k, point in enumerate(points):
        assert not ex.run(point - ex.steps), 'the run ended before the checkpoint'
        directory = os.path.join(tmp, f'hop{k}')
        save(ex, inst, wasi, wasm, directory)
        runtime = OTHER[runtime]
        src = to_other(directory, runtime, via_neutral, tmp)
        moved = os.path.join(tmp, f'data{k + 1}')
        shutil.copytree(data, moved, symlinks=True)
        data = moved
        ex, inst, wasi, out, err = resume(src, runtime, [(data, '/data')])
        outs.append(out)
        errs.append(err)
    assert finish(wasi, ex) == 0
    return (b''.join(o.getvalue() for o in outs), b''.join(e.getvalue() for e in errs),
            files_of(data))


@pytest.mark.parametrize('case', range(6))
def test_migrated_at_random_points_with_open_files(journal, tmp_path, case):
    wasm, expected, steps = journal
    rng = random.Random(f'wasi-migration-{case}')
    hops = 1 + case % 3
    points = sorted(rng.sample(range(1, steps * 9 // 10), hops))
    first = RUNTIMES[case % 2]
    got = migrate(wasm, points, first, str(tmp_path), via_neutral=case % 2 == 1)
    assert got == expected, f'points {points}, first {first}'


def test_migration_while_a_file_is_half_written(journal, tmp_path):
    """A checkpoint right after out.txt was flushed the first time, i.e.
    with data in the file and more in the guest's stdio buffer."""
    wasm, expected, steps = journal
    data = make_data(str(tmp_path / 'probe'))
    _, _, wasi, ex, _, _ = engine_start(wasm, ARGV, [(data, '/data')], deterministic=True)
    point = None
    while not ex.run(2000):
        out_txt = os.path.join(data, 'out.txt')
        if os.path.exists(out_txt) and os.path.getsize(out_txt) > 0:
            point = ex.steps
            break
    wasi.close()
    assert point is not None and point < steps
    assert migrate(wasm, [point], 'wamr', str(tmp_path / 'm'), via_neutral=False) == expected


def cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.run([sys.executable, '-m', 'engine', *map(str, args)], cwd=cwd, env=env,
                       capture_output=True)
    return p.returncode, p.stdout, p.stderr


def test_cli_checkpoint_translate_restore_continues_output(journal, tmp_path):
    wasm, (out, err, files), steps = journal
    (tmp_path / 'j.wasm').write_bytes(wasm)
    make_data(str(tmp_path / 'd'))
    status, a_out, a_err = cli('run', 'j.wasm', '--dir', 'd::/data', '--deterministic',
                               '--checkpoint-at', steps // 2, '--images', 'ck', '--', '20',
                               cwd=tmp_path)
    assert status == 0, a_err
    note, _, a_err = a_err.partition(b'checkpoint after')    # our note goes last, on stderr
    assert a_err.startswith(f' {steps // 2} instructions'.encode())
    assert out.startswith(a_out) and err.startswith(note)
    assert cli('translate', 'ck', '--to', 'neutral', '--out', 'n', cwd=tmp_path)[0] == 0
    assert cli('translate', 'n', '--to', 'wamr', '--out', 'w', cwd=tmp_path)[0] == 0
    shutil.copytree(tmp_path / 'd', tmp_path / 'moved')
    status, b_out, b_err = cli('restore', 'w', '--dir', 'moved::/data', cwd=tmp_path)
    assert status == 0, b_err
    assert (a_out + b_out, note + b_err) == (out, err)       # nothing repeated, nothing lost
    assert files_of(str(tmp_path / 'moved')) == files
    for directory in ('n', 'w'):            # neutral.json and images both carry wasi.json
        status, report, _ = cli('inspect', directory, cwd=tmp_path)
        assert status == 0 and b'wasi         args ["j.wasm", "20"]' in report
        assert b'fd 6        file preopen 0 path log.txt offset' in report
        assert b'bytes append' in report


@pytest.fixture()
def checkpointed(journal, tmp_path):
    """An image directory stopped halfway with files open, and its data."""
    wasm, _, steps = journal
    data = make_data(str(tmp_path / 'd'))
    _, inst, wasi, ex, _, _ = engine_start(wasm, ARGV, [(data, '/data')], deterministic=True)
    ex.run(steps // 2)
    save(ex, inst, wasi, wasm, str(tmp_path / 'ck'))
    return str(tmp_path / 'ck'), data


def restore_error(directory, dirs=()):
    from engine.wasi import state as wasi_state
    with pytest.raises(wasi_state.WasiStateError) as e:
        resume(directory, 'wamr', dirs)
    return str(e.value)


def test_restore_refuses_changed_files(checkpointed):
    ck, data = checkpointed
    with open(os.path.join(data, 'out.txt'), 'ab') as f:
        f.write(b'x')
    msg = restore_error(ck)
    assert 'out.txt' in msg and 'changed since the checkpoint' in msg and 'size' in msg


def test_restore_refuses_same_size_rewrites(checkpointed):
    ck, data = checkpointed
    path = os.path.join(data, 'in.txt')
    body = open(path, 'rb').read()
    open(path, 'wb').write(body.replace(b'item', b'ITEM', 1))
    assert 'content differs' in restore_error(ck)


def test_restore_refuses_missing_files_and_directories(checkpointed, tmp_path):
    ck, data = checkpointed
    os.unlink(os.path.join(data, 'log.txt'))
    msg = restore_error(ck)
    assert 'log.txt' in msg and 'missing' in msg
    msg = restore_error(ck, [(str(tmp_path / 'nowhere'), '/data')])
    assert 'preopens[0]' in msg and 'is missing' in msg
    assert "no preopen named '/elsewhere'" in restore_error(ck, [(data, '/elsewhere')])


def test_restore_cli_refuses_with_one_line(checkpointed, tmp_path):
    ck, data = checkpointed
    os.unlink(os.path.join(data, 'table.bin'))
    status, out, err = cli('restore', ck, '--runtime', 'wasmedge', cwd=tmp_path)
    assert status == 2 and out == b'' and len(err.strip().splitlines()) == 1
    assert b'table.bin' in err and b'missing' in err
    status, out, err = cli('restore', ck, '--env', 'A=B', cwd=tmp_path)
    assert status == 2 and b'--env: differs from the saved WASI state' in err


@pytest.mark.parametrize('edit,needle', [
    (lambda d: d.update(version=2), 'wasi.json: version: 2 is not supported'),
    (lambda d: d['fds'][5].update(offset=-1), 'wasi.json: fds[5].offset:'),
    (lambda d: d['fds'][4].pop('sha256'), 'wasi.json: fds[4].sha256: missing'),
    (lambda d: d['fds'][4].update(path='../x'), 'wasi.json: fds[4].path:'),
    (lambda d: d['fds'][6].update(append=False), 'wasi.json: fds[6].append: disagrees'),
    (lambda d: d['fds'][4].update(preopen=3), 'wasi.json: fds[4].preopen:'),
    (lambda d: d.update(extra=1), 'wasi.json: extra: unknown key'),
    (lambda d: d.update(stdout_written='12'), 'wasi.json: stdout_written: expected'),
    (lambda d: d['fds'].append(dict(d['fds'][4])), 'wasi.json: fds[8].fd: 4 appears twice'),
])
def test_wasi_json_is_checked_field_by_field(checkpointed, edit, needle):
    import json
    from engine.wasi import state as wasi_state
    ck, _ = checkpointed
    path = os.path.join(ck, 'wasi.json')
    doc = json.load(open(path))
    edit(doc)
    open(path, 'w').write(json.dumps(doc))
    with pytest.raises(wasi_state.WasiStateError) as e:
        wasi_state.read(ck)
    assert needle in str(e.value)


@pytest.mark.parametrize('name,argv', [('n-body', ['n-body.wasm', '1000']),
                                       ('binary-trees', ['binary-trees.wasm', '6'])])
def test_authors_apps_migrate_at_random_points(name, argv, tmp_path):
    wasm = open(app(name), 'rb').read()
    _, _, wasi, ex, out, err = engine_start(wasm, argv)
    assert finish(wasi, ex) == 0
    steps, expected = ex.steps, (out.getvalue(), err.getvalue())
    rng = random.Random(name)
    for k, first in enumerate(RUNTIMES):
        point = rng.randrange(1, steps)
        store, inst, wasi, ex, out, err = engine_start(wasm, argv, runtime=first)
        assert not ex.run(point)
        save(ex, inst, wasi, wasm, str(tmp_path / f'{k}'))
        src = to_other(str(tmp_path / f'{k}'), OTHER[first], k == 1, str(tmp_path))
        ex2, _, wasi2, out2, err2 = resume(src, OTHER[first], [])
        assert finish(wasi2, ex2) == 0
        assert (out.getvalue() + out2.getvalue(), err.getvalue() + err2.getvalue()) == expected
