"""The authors' WASI test applications (``test/migration/apps/*/*.wasm`` in
the WasmEdge fork's archive), extracted once into the cache outside the
checkout and never copied into the repository.

``app_path('n-body')`` gives the path of ``n-body.wasm``; ``None`` when the
archive is not on this machine (``missing_reason()`` says where it looked).
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from .build import cache_root, forks_dir

ARCHIVE = 'wasmedge-migration-eb7cc4b2.tar.gz'
APPS = ('n-body', 'binary-trees', 'sqlite-bench')


def _candidates():
    seen = []
    for d in (forks_dir(), Path('/work/shared/forks')):
        if d not in seen:
            seen.append(d)
    return [d / ARCHIVE for d in seen]


def archive() -> Path | None:
    for p in _candidates():
        if p.is_file():
            return p
    return None


def missing_reason() -> str:
    return (f'the WasmEdge fork archive {ARCHIVE} is absent (looked in '
            f'{", ".join(str(p.parent) for p in _candidates())}; set WASM_MIGRATE_FORKS)')


def app_path(name: str) -> Path | None:
    """Path of the app's .wasm in the cache, extracting it on first use."""
    if name not in APPS:
        raise ValueError(f'unknown app {name!r} (known: {", ".join(APPS)})')
    src = archive()
    if src is None:
        return None
    st = src.stat()
    root = cache_root() / 'apps' / f'{src.name}-{st.st_size}-{int(st.st_mtime)}'
    out = root / f'{name}.wasm'
    if out.is_file():
        return out
    member = f'{src.name[:-len(".tar.gz")]}/test/migration/apps/{name}/{name}.wasm'
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(src) as tar:
        f = tar.extractfile(member)
        if f is None:
            raise FileNotFoundError(f'{member} is not a file in {src}')
        tmp = out.with_suffix(f'.tmp{os.getpid()}')
        tmp.write_bytes(f.read())
        os.replace(tmp, out)
    return out
