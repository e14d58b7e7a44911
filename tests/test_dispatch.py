"""The executor abstraction of the campaign (``fuzz.dispatch``): the local
path never imports Dask, and ``--scheduler`` without the ``cluster`` extra
is a one-line error."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(code, tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop('WASM_MIGRATE_FAULT', None)
    return subprocess.run([sys.executable, '-c', code, str(tmp_path / 'out')], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_local_campaign_does_not_import_dask(tmp_path):
    p = _run('import sys\n'
             'from fuzz import migrate\n'
             'rc = migrate.main(["--jobs", "1", "--runs", "1", "--generator", "smith", "--quiet",\n'
             '                   "--no-wasmtime", "--out", sys.argv[1]])\n'
             'loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed"))\n'
             'print("LOADED", loaded)\n'
             'sys.exit(rc)', tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    assert 'LOADED []' in p.stdout


def test_scheduler_without_the_cluster_extra_is_a_clear_error(tmp_path):
    p = _run('import sys\n'
             'sys.modules["distributed"] = None      # as if not installed\n'
             'from fuzz import migrate\n'
             'sys.exit(migrate.main(["--scheduler", "tcp://127.0.0.1:1", "--runs", "1",\n'
             '                       "--out", sys.argv[1]]))', tmp_path)
    assert p.returncode == 2
    assert p.stderr.strip() == ('error: --scheduler needs dask and distributed: '
                                'pip install "wasm-migrate[cluster]"')
