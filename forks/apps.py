"""The authors' WASI test applications (``test/migration/apps/*/*.wasm`` in
the WasmEdge fork's archive), extracted once into the cache outside the
checkout and never copied into the repository.

``app_path('n-body')`` gives the path of ``n-body.wasm``; ``None`` when the
archive is not on this machine (``missing_reason()`` says where it looked).
"""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

from .build import cache_root, forks_dir

ARCHIVE = 'wasmedge-migration-eb7cc4b2.tar.gz'
APPS = ('n-body', 'binary-trees', 'sqlite-bench')


def _candidates(forks=None):
    seen = []
    for d in (forks_dir(forks), Path('/work/shared/forks')):
        if d not in seen:
            seen.append(d)
    return [d / ARCHIVE for d in seen]


def archive(forks=None) -> Path | None:
    for p in _candidates(forks):
        if p.is_file():
            return p
    return None


def missing_reason(forks=None) -> str:
    return (f'the WasmEdge fork archive {ARCHIVE} is absent (looked in '
            f'{", ".join(str(p.parent) for p in _candidates(forks))}; set WASM_MIGRATE_FORKS)')


def apps_dir(forks=None) -> Path | None:
    """The archive's whole ``test/migration/apps`` folder (apps, type tables,
    expected images), extracted once into the cache; None without the archive."""
    src = archive(forks)
    if src is None:
        return None
    st = src.stat()
    dest = cache_root() / 'apps' / f'{src.name}-{st.st_size}-{int(st.st_mtime)}'
    if (dest / '.done').is_file():
        return dest
    tmp = dest.with_name(f'{dest.name}.tmp{os.getpid()}')
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    marker = '/test/migration/apps/'
    with tarfile.open(src) as tar:
        for m in tar.getmembers():
            if marker in m.name and m.isfile():
                out = tmp / m.name.split(marker, 1)[1]
                out.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(m) as f:
                    out.write_bytes(f.read())
    (tmp / '.done').write_text('')
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def app_path(name: str) -> Path | None:
    """Path of the app's .wasm in the cache, extracting it on first use."""
    if name not in APPS:
        raise ValueError(f'unknown app {name!r} (known: {", ".join(APPS)})')
    d = apps_dir()
    return None if d is None else d / name / f'{name}.wasm'


def app_dir(name: str) -> Path | None:
    """The app's whole folder in the cache (its .wasm, the authors' type
    tables, ``expect-images/``); ``None`` without the archive."""
    if name not in APPS:
        raise ValueError(f'unknown app {name!r} (known: {", ".join(APPS)})')
    d = apps_dir()
    return None if d is None else d / name
