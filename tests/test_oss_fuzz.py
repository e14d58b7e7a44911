"""The OSS-Fuzz / ClusterFuzzLite layout (issue 11): ``.clusterfuzzlite/
build.sh`` builds both atheris fuzzers into $OUT without Docker, and the
built entry points run inputs as libFuzzer binaries do."""

import os
import subprocess
import zipfile

import pytest

pytest.importorskip('atheris')

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp('out')
    env = dict(os.environ, OUT=str(out), PYTHONPATH=ROOT)
    env.pop('SRC', None)
    p = subprocess.run(['bash', os.path.join(ROOT, '.clusterfuzzlite', 'build.sh')], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return out


def test_layout_is_complete():
    for name in ('project.yaml', 'build.sh', 'Dockerfile', 'migration_fuzzer.py', 'robust_fuzzer.py'):
        assert os.path.isfile(os.path.join(ROOT, '.clusterfuzzlite', name)), name
    with open(os.path.join(ROOT, '.clusterfuzzlite', 'project.yaml')) as f:
        assert 'language: python' in f.read()


@pytest.mark.parametrize('fuzzer', ['migration_fuzzer', 'robust_fuzzer'])
def test_built_fuzzer_runs_seed_inputs(built, fuzzer, tmp_path):
    for ext in ('', '.options', '_seed_corpus.zip'):
        assert (built / f'{fuzzer}{ext}').is_file()
    corpus = tmp_path / 'corpus'
    corpus.mkdir()
    with zipfile.ZipFile(built / f'{fuzzer}_seed_corpus.zip') as z:
        names = sorted(z.namelist())
        assert len(names) >= 8
        for n in names[:2]:
            (corpus / n).write_bytes(z.read(n))
    # run as ClusterFuzz does, with the limits of the fuzzer's own .options
    # (the migration fuzzer declares 4 GiB of RSS, libFuzzer's default is 2)
    opts = [f'-{k.strip()}={v.strip()}' for k, eq, v in
            (line.partition('=') for line in (built / f'{fuzzer}.options').read_text().splitlines())
            if eq and k.strip() in ('rss_limit_mb', 'timeout')]
    assert any(o.startswith('-rss_limit_mb=') for o in opts)
    # launched by a shell that forks: exec'd straight from this (pytest
    # worker) process, the fuzzer would inherit its peak RSS as its own
    # (Linux keeps ru_maxrss across exec), which libFuzzer's RSS limit reads:
    # a worker that had grown past 4 GiB made a "out-of-memory" of 91 MiB
    cmd = [str(built / fuzzer), '-runs=3', '-max_len=4096', *opts, str(corpus)]
    p = subprocess.run(['sh', '-c', '"$0" "$@"; exit $?', *cmd],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert 'INITED' in p.stderr and 'Done ' in p.stderr
    assert not list(tmp_path.glob('crash-*'))


def test_build_without_out_is_a_clear_error():
    env = dict(os.environ)
    env.pop('OUT', None)
    p = subprocess.run(['bash', os.path.join(ROOT, '.clusterfuzzlite', 'build.sh')], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and 'OUT' in p.stderr
