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


def archive(forks=None) -> Path | None:
    """The WasmEdge fork's archive where forks.build.forks_dir looks, or None."""
    p = forks_dir(forks) / ARCHIVE
    return p if p.is_file() else None


def missing_reason(forks=None) -> str:
    return (f'the WasmEdge fork archive {ARCHIVE} is absent (looked in '
            f'{forks_dir(forks)}; set WASM_MIGRATE_FORKS)')


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
    try:
        tmp.rename(dest)            # atomic; fails if another process got there first
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (dest / '.done').is_file():      # a dead run's partial folder
            raise RuntimeError(f'{dest}: incomplete extraction in the way; remove it and retry')
    return dest


def app_dir(name: str) -> Path | None:
    """The app's folder in the cache: its .wasm, the authors' type tables and
    ``expect-images/``; None without the archive."""
    if name not in APPS:
        raise ValueError(f'unknown app {name!r} (known: {", ".join(APPS)})')
    d = apps_dir()
    return None if d is None else d / name


def app_path(name: str) -> Path | None:
    """Path of the app's .wasm in the cache, extracting it on first use."""
    d = app_dir(name)
    return None if d is None else d / f'{name}.wasm'
