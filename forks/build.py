"""Build the pinned migration forks once into a cache outside the checkout.

The cache key is the sha256 of the source archive (and of the patch applied
to it), so a changed archive builds afresh and an unchanged one is never
rebuilt.  Layout: ``$WASM_MIGRATE_CACHE`` (default ``~/.cache/wasm-migrate``)
``/forks/<name>-<key>/{src,build,built.json}``.  ``built.json`` is written
last, so a build killed half-way is redone, never used.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


class BuildError(Exception):
    """A fork could not be built; the message says what to do."""


@dataclass(frozen=True)
class Fork:
    name: str            # "wamr" or "wasmedge"
    archive: str         # file name under the forks directory
    patches: tuple       # patch files (relative to the forks directory), applied with -p1
    configure: tuple     # cmake arguments
    build_dir: str       # relative to the source root
    targets: tuple       # ninja targets
    binary: str          # relative to the build dir
    libdir: str | None   # relative to the build dir, for LD_LIBRARY_PATH
    packages: tuple      # (what, how to check, Debian package)


def _has_header(path: str):
    return lambda: any(Path(d, path).exists() for d in ("/usr/include", "/usr/local/include"))


def _has_tool(*names):
    return lambda: any(shutil.which(n) for n in names)


_COMMON = (
    ("cmake", _has_tool("cmake"), "cmake"),
    ("ninja", _has_tool("ninja", "ninja-build"), "ninja-build"),
    ("a C compiler", _has_tool("cc", "gcc", "clang"), "gcc"),
    ("a C++ compiler", _has_tool("c++", "g++", "clang++"), "g++"),
)

FORKS = {
    "wamr": Fork(
        name="wamr",
        archive="wamr-migration-b57e6356.tar.gz",
        patches=("patches/wamr-dump-present-pages.patch",),
        configure=("-DWAMR_BUILD_INTERP=1", "-DWAMR_BUILD_FAST_INTERP=0", "-DWAMR_BUILD_AOT=0",
                   "-DWAMR_BUILD_JIT=0", "-DWAMR_BUILD_FAST_JIT=0", "-DWAMR_BUILD_LIBC_WASI=1",
                   "-DWAMR_BUILD_SIMD=0"),
        build_dir="product-mini/platforms/linux",
        targets=(),
        binary="iwasm",
        libdir=None,
        packages=_COMMON,
    ),
    "wasmedge": Fork(
        name="wasmedge",
        archive="wasmedge-migration-eb7cc4b2.tar.gz",
        patches=(),
        configure=("-DCMAKE_BUILD_TYPE=Release", "-DWASMEDGE_BUILD_AOT_RUNTIME=OFF",
                   "-DWASMEDGE_BUILD_TESTS=OFF", "-DWASMEDGE_BUILD_PLUGINS=OFF"),
        build_dir=".",
        targets=("wasmedge",),
        binary="tools/wasmedge/wasmedge",
        libdir="lib/api",
        packages=_COMMON + (
            ("spdlog headers", _has_header("spdlog/spdlog.h"), "libspdlog-dev"),
            ("fmt headers", _has_header("fmt/format.h"), "libfmt-dev"),
        ),
    ),
}


def cache_root() -> Path:
    env = os.environ.get("WASM_MIGRATE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "wasm-migrate"


def forks_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The folder holding the archives: explicit, $WASM_MIGRATE_FORKS, else
    ../shared/forks next to the checkout (or next to the folder of git
    worktrees it sits in)."""
    for cand in (explicit, os.environ.get("WASM_MIGRATE_FORKS")):
        if cand:
            return Path(cand)
    near = [PROJECT.parent / "shared" / "forks", PROJECT.parent.parent / "shared" / "forks"]
    return next((p for p in near if p.is_dir()), near[0])


def _key(fork: Fork, source: Path) -> str:
    h = hashlib.sha256()
    h.update(fork.name.encode())
    for rel in (fork.archive, *fork.patches):
        p = source / rel
        if not p.is_file():
            raise BuildError(f"{fork.name}: {p} not found (pass --forks DIR or set WASM_MIGRATE_FORKS)")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    h.update(repr(fork.configure).encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Built:
    """A built fork: how to run it."""
    name: str
    binary: Path
    libdir: Path | None
    root: Path

    def env(self) -> dict:
        env = dict(os.environ)
        if self.libdir:
            env["LD_LIBRARY_PATH"] = str(self.libdir) + (
                ":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
        return env


def _paths(fork: Fork, source: Path) -> tuple[Path, Path, Path]:
    root = cache_root() / "forks" / f"{fork.name}-{_key(fork, source)}"
    src = root / "src"
    build = src / fork.build_dir / "build"
    return root, src, build


def _built(fork: Fork, root: Path, build: Path) -> Built:
    return Built(fork.name, build / fork.binary, build / fork.libdir if fork.libdir else None, root)


def locate(name: str, source: str | os.PathLike | None = None) -> Built | None:
    """The cached build of fork `name`, or None if it was never (completely) built."""
    fork = FORKS[name]
    root, _src, build = _paths(fork, forks_dir(source))
    if (root / "built.json").is_file() and (build / fork.binary).is_file():
        return _built(fork, root, build)
    return None


def missing_packages(name: str) -> list[str]:
    """System packages the fork's build needs and this machine lacks, as 'what (Debian pkg)'."""
    return [f"{what} (apt-get install {pkg})" for what, check, pkg in FORKS[name].packages if not check()]


def _run(cmd, cwd, log, progress):
    """Run a build step, streaming ninja's [n/N] progress; the full output goes to `log`."""
    with open(log, "a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        last = 0.0
        for line in proc.stdout:
            out.write(line)
            m = re.match(r"\[(\d+)/(\d+)\]", line)
            if m and progress and time.monotonic() - last > 5:
                last = time.monotonic()
                progress(f"  {m.group(1)}/{m.group(2)} build steps")
        if proc.wait():
            raise BuildError(f"`{' '.join(cmd)}` failed in {cwd} (exit {proc.returncode}); log: {log}")


def build(name: str, source: str | os.PathLike | None = None, jobs: int | None = None,
          progress=None) -> Built:
    """Build fork `name` into the cache unless it is there already; return how to run it."""
    fork = FORKS[name]
    src_dir = forks_dir(source)
    root, src, build_dir = _paths(fork, src_dir)
    done = locate(name, source)
    if done:
        return done
    missing = missing_packages(name)
    if missing:
        raise BuildError(f"building {name} needs: " + ", ".join(missing))
    say = progress or (lambda msg: None)
    root.mkdir(parents=True, exist_ok=True)
    log = root / "build.log"
    if not (src / "CMakeLists.txt").is_file():
        say(f"{name}: extracting {fork.archive}")
        shutil.rmtree(src, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix="src-"))
        try:
            with tarfile.open(src_dir / fork.archive) as tar:
                tar.extractall(tmp, filter="data")
            (top,) = list(tmp.iterdir())
            for patch in fork.patches:
                say(f"{name}: applying {patch}")
                _run(["patch", "-p1", "-i", str(src_dir / patch)], top, log, None)
            top.rename(src)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    build_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if not (build_dir / "build.ninja").is_file():
        say(f"{name}: configuring (log: {log})")
        _run(["cmake", "..", "-G", "Ninja", *fork.configure], build_dir, log, None)
    say(f"{name}: compiling (log: {log})")
    _run(["ninja", f"-j{jobs or os.cpu_count() or 2}", *fork.targets], build_dir, log, say)
    binary = build_dir / fork.binary
    if not binary.is_file():
        raise BuildError(f"{name}: build finished but {binary} is missing; log: {log}")
    stamp = {"fork": name, "archive": fork.archive, "binary": str(binary),
             "seconds": round(time.monotonic() - started, 1)}
    tmp_stamp = root / "built.json.tmp"
    tmp_stamp.write_text(json.dumps(stamp, indent=1) + "\n")
    tmp_stamp.replace(root / "built.json")
    say(f"{name}: built {binary} in {stamp['seconds']} s")
    return _built(fork, root, build_dir)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m forks build",
                                 description="Build the pinned WAMR/WasmEdge migration forks into the cache.")
    ap.add_argument("which", nargs="*", metavar="FORK",
                    help="forks to build: " + ", ".join(FORKS) + " (default: both)")
    ap.add_argument("--forks", metavar="DIR", help="folder holding the archives (default ../shared/forks)")
    ap.add_argument("--jobs", type=int, default=None, help="parallel compile jobs (default: all cores)")
    args = ap.parse_args(argv)
    unknown = [n for n in args.which if n not in FORKS]
    if unknown:
        ap.error(f"unknown fork {unknown[0]!r}; choose from {', '.join(FORKS)}")
    status = 0
    for name in args.which or list(FORKS):
        try:
            b = build(name, args.forks, args.jobs, progress=lambda m: print(m, flush=True))
            print(f"{name}: {b.binary}")
        except BuildError as e:
            print(f"error: {e}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
