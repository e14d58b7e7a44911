"""forks.build: the cache key, the stamp written last, the missing-package
message, and a real (tiny) CMake/Ninja build through the same code path."""

import dataclasses
import io
import json
import subprocess
import sys
import tarfile

import pytest

from forks import build as fb


def _archive(path, files):
    with tarfile.open(path, 'w:gz') as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f'toy-src/{name}')
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


TOY = {
    'CMakeLists.txt': 'cmake_minimum_required(VERSION 3.10)\nproject(toy C)\nadd_executable(toy toy.c)\n',
    'toy.c': '#include <stdio.h>\nint main(void) { puts("toy ok"); return 0; }\n',
}


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A fork 'toy' whose archive is a one-file C project, built into a private cache."""
    src = tmp_path / 'forks'
    src.mkdir()
    _archive(src / 'toy.tar.gz', TOY)
    monkeypatch.setenv('WASM_MIGRATE_CACHE', str(tmp_path / 'cache'))
    fork = fb.Fork(name='toy', archive='toy.tar.gz', patches=(), configure=(), build_dir='.',
                   targets=(), binary='toy', libdir=None, packages=fb._COMMON)
    monkeypatch.setitem(fb.FORKS, 'toy', fork)
    return src


def test_missing_packages_are_named_with_their_debian_package(toy, monkeypatch):
    fork = dataclasses.replace(fb.FORKS['wasmedge'], packages=(
        ('cmake', lambda: True, 'cmake'),
        ('spdlog headers', lambda: False, 'libspdlog-dev'),
        ('fmt headers', lambda: False, 'libfmt-dev')))
    monkeypatch.setitem(fb.FORKS, 'wasmedge', fork)
    assert fb.missing_packages('wasmedge') == ['spdlog headers (apt-get install libspdlog-dev)',
                                               'fmt headers (apt-get install libfmt-dev)']
    broken = dataclasses.replace(fb.FORKS['toy'], packages=(('ninja', lambda: False, 'ninja-build'),))
    monkeypatch.setitem(fb.FORKS, 'toy', broken)
    with pytest.raises(fb.BuildError, match=r'building toy needs: ninja \(apt-get install ninja-build\)'):
        fb.build('toy', toy)
    assert not (fb.cache_root() / 'forks').exists()      # nothing half-made


def test_missing_archive_names_the_folder_and_the_option(tmp_path, monkeypatch):
    monkeypatch.setenv('WASM_MIGRATE_CACHE', str(tmp_path / 'cache'))
    with pytest.raises(fb.BuildError, match=r'wamr-migration-b57e6356.tar.gz not found \(pass --forks DIR'):
        fb.locate('wamr', tmp_path)


def test_build_once_then_locate_from_the_stamp(toy):
    assert fb.locate('toy', toy) is None
    said = []
    built = fb.build('toy', toy, jobs=1, progress=said.append)
    assert subprocess.run([built.binary], capture_output=True, text=True).stdout == 'toy ok\n'
    stamp = json.loads((built.root / 'built.json').read_text())
    assert stamp['fork'] == 'toy' and stamp['binary'] == str(built.binary)
    assert any('configuring' in m for m in said) and any('built' in m for m in said)
    assert fb.locate('toy', toy) == built
    log = (built.root / 'build.log').read_text()
    again = fb.build('toy', toy, progress=said.append)      # cached: no new build step
    assert again == built and (built.root / 'build.log').read_text() == log


def test_a_build_without_its_stamp_is_not_used(toy):
    built = fb.build('toy', toy, jobs=1)
    (built.root / 'built.json').unlink()                    # as if killed before the stamp
    assert fb.locate('toy', toy) is None
    assert fb.build('toy', toy, jobs=1) == built            # finished, stamp written again
    assert fb.locate('toy', toy) == built


def test_a_changed_archive_gets_a_new_cache_key(toy):
    built = fb.build('toy', toy, jobs=1)
    _archive(toy / 'toy.tar.gz', dict(TOY, **{'toy.c': TOY['toy.c'].replace('ok', 'v2')}))
    assert fb.locate('toy', toy) is None
    rebuilt = fb.build('toy', toy, jobs=1)
    assert rebuilt.root != built.root
    assert subprocess.run([rebuilt.binary], capture_output=True, text=True).stdout == 'toy v2\n'


def test_failed_build_points_at_its_log(toy):
    _archive(toy / 'toy.tar.gz', dict(TOY, **{'toy.c': 'this is not C'}))
    with pytest.raises(fb.BuildError, match=r'`ninja -j1` failed .* log: .*build.log'):
        fb.build('toy', toy, jobs=1)
    assert fb.locate('toy', toy) is None


def test_python_m_forks_entry_points():
    run = lambda *a: subprocess.run([sys.executable, '-m', 'forks', *a], capture_output=True, text=True)
    r = run()
    assert r.returncode == 2 and 'python -m forks build' in r.stdout and 'matrix' in r.stdout
    r = run('build', 'nosuchfork')
    assert r.returncode == 2 and "unknown fork 'nosuchfork'" in r.stderr
    r = run('frobnicate')
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr
    assert run('build', '--help').returncode == 0
