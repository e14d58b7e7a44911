"""The programs the fork matrix runs.

* the authors' apps (n-body, binary-trees, sqlite-bench) with their type
  tables and expected images, read from the WasmEdge fork's archive
  (`test/migration/apps/`) into the cache;
* C programs of `forks/programs/*.c`, built with clang for wasm32-wasi
  when clang and a WASI sysroot are installed;
* hand-written WASI-free modules (`forks/programs/*.wat`) that both forks
  load and run long enough for iwasm's SIGINT;
* modules of the project's generator (`fuzz.gen`) whose entry takes and
  returns numbers only, so the forks' command lines can pass and print them,
  made without SIMD and reference types (`FORK_FEATURES`), which the WAMR
  fork's build (`WAMR_BUILD_SIMD=0`, reference types off by default)
  cannot load; an added export `run_many` repeats the entry to some
  million instructions, so that iwasm's SIGINT lands inside the run.
"""

from __future__ import annotations

import copy
import hashlib
import math
import shutil
import struct
import subprocess
from pathlib import Path

from forks import apps, build as fork_build
from forks.runtimes import TYPE_TABLES, Program

HERE = Path(__file__).resolve().parent
C_SOURCES = HERE / 'programs'
SQLITE_MASK = r'\d+(\.\d+)?( micros/op| MB/s)?'   # sqlite-bench prints timings


class ProgramError(Exception):
    pass


def authors_apps(forks: str | None = None) -> Path:
    """The archive's test/migration/apps, extracted once into the cache."""
    d = apps.apps_dir(forks)
    if d is None:
        raise ProgramError(apps.missing_reason(forks) + ' (or pass --forks DIR)')
    return d


def _tables(d: Path):
    return d if all((d / t).is_file() for t in TYPE_TABLES) else None


def authors_programs(forks=None, sqlite=False, nbody_steps=1000) -> list:
    apps = authors_apps(forks)
    out = [
        Program('n-body', apps / 'n-body' / 'n-body.wasm', argv=(str(nbody_steps),),
                tables=_tables(apps / 'n-body')),
        Program('binary-trees', apps / 'binary-trees' / 'binary-trees.wasm',
                tables=_tables(apps / 'binary-trees')),
    ]
    if sqlite:
        out.append(Program('sqlite-bench', apps / 'sqlite-bench' / 'sqlite-bench.wasm',
                           argv=('--benchmarks=fillseq', '--num=10', '--db=.'), preopen=True,
                           stack_size=1048576, tables=_tables(apps / 'sqlite-bench'),
                           mask=SQLITE_MASK, timeout=1800))
    return out


def expect_images(forks=None) -> dict:
    """The authors' `expect-images`: app -> (Program as their test runs it, limit, dir)."""
    apps = authors_apps(forks)
    limits = {'n-body': 1000, 'binary-trees': 1000, 'sqlite-bench': 100000}
    out = {}
    for name, limit in limits.items():
        d = apps / name
        if (d / 'expect-images').is_dir():
            out[name] = (Program(name, d / f'{name}.wasm', tables=_tables(d),
                                 timeout=1800), limit,
                         d / 'expect-images')
    return out


# ------------------------------------------------------------ C programs

C_ARGS = {'loops': ('12',), 'recurse': ('7',), 'files': ('1500',)}
C_PREOPEN = {'files'}


def clang_missing() -> str | None:
    if not shutil.which('clang'):
        return 'clang not installed (apt-get install clang wasi-libc)'
    return None


def c_programs(cache: Path) -> tuple[list, str | None]:
    """The C programs built for wasm32-wasi, and why some are missing (or None)."""
    why = clang_missing()
    if why:
        return [], why
    out = []
    for src in sorted(C_SOURCES.glob('*.c')):
        key = hashlib.sha256(src.read_bytes()).hexdigest()[:12]
        wasm = cache / f'{src.stem}-{key}.wasm'
        if not wasm.is_file():
            cache.mkdir(parents=True, exist_ok=True)
            tmp = wasm.with_suffix('.tmp')
            r = subprocess.run(['clang', '--target=wasm32-wasi', '--sysroot=/usr', '-O1', str(src),
                                '-o', str(tmp)], capture_output=True, text=True)
            if r.returncode:
                first = (r.stderr.strip().splitlines() or ['?'])[0]
                return out, (f'clang cannot build {src.name} for wasm32-wasi ({first}); '
                             f'apt-get install wasi-libc')
            tmp.rename(wasm)
        out.append(Program(f'c-{src.stem}', wasm, argv=C_ARGS.get(src.stem, ()),
                           preopen=src.stem in C_PREOPEN))
    return out, None


# ------------------------------------------------------------ hand-written modules

# export, arguments, result types: about 5-7 million instructions each, long
# enough for a SIGINT to land inside an iwasm run, short enough for the engine
WAT_RUNS = {'fib': ('fib', ('27',), ('i32',)),
            'sieve': ('run', ('3', '30000'), ('i32', 'i64')),
            'floats': ('run', ('150000',), ('f64', 'f32', 'i64'))}


def wat_programs(cache: Path) -> list:
    """The WASI-free modules of `forks/programs/*.wat`, each with its entry."""
    import wasmtime
    out = []
    for src in sorted(C_SOURCES.glob('*.wat')):
        entry, argv, results = WAT_RUNS[src.stem]
        wasm = cache / f'{src.stem}-{hashlib.sha256(src.read_bytes()).hexdigest()[:12]}.wasm'
        if not wasm.is_file():
            cache.mkdir(parents=True, exist_ok=True)
            wasm.write_bytes(wasmtime.wat2wasm(src.read_text()))
        out.append(Program(f'wat-{src.stem}', wasm, argv=argv, invoke=entry, results=results))
    return out


# ------------------------------------------------------------ generated modules

NUMERIC = ('i32', 'i64', 'f32', 'f64')
FORK_FEATURES = frozenset()     # fuzz.gen proposals every fork's build loads
GEN_INSTRUCTIONS = 5_000_000    # a generated run's length, as the hand-written modules'


def _arg_text(t, v) -> str | None:
    """An argument as the forks' command lines take it; None if they cannot
    (NaN or infinite floats do not survive their decimal parsing)."""
    if t in ('i32', 'i64'):
        return str(v)
    raw = v.to_bytes(4 if t == 'f32' else 8, 'little')
    f = struct.unpack('<f' if t == 'f32' else '<d', raw)[0]
    if math.isnan(f) or math.isinf(f):
        return None
    return repr(f)


def repeated(g, times: int) -> bytes:
    """Generated module `g` plus an export `run_many` of the entry's type that
    calls the entry `times` (>= 2) times with its own arguments (results of all
    but the last call dropped): the same code, run long."""
    from engine import syntax
    from engine.syntax import Instr
    from fuzz import encode
    m = copy.copy(g.module)
    entry = m.funcs[0]                          # `run` (no imports)
    ft = m.types[entry.typeidx]
    n = len(ft.params)
    call = [Instr('local.get', i) for i in range(n)] + [Instr('call', 0)]
    body = ([Instr('i32.const', times), Instr('local.set', n), Instr('loop', None)]
            + call + [Instr('drop') for _ in ft.results]
            + [Instr('local.get', n), Instr('i32.const', 1), Instr('i32.sub'),
               Instr('local.tee', n), Instr('i32.const', 1), Instr('i32.gt_u'),
               Instr('br_if', 0), Instr('end')]
            + call + [Instr('end')])
    m.funcs = [*m.funcs, syntax.Func(entry.typeidx, [syntax.I32], body)]
    m.exports = [*m.exports, syntax.Export('run_many', 'func', len(m.funcs) - 1)]
    return encode.encode_module(m)


def generated_programs(cache: Path, count: int, seed: int = 0, scan: int = 400) -> list:
    """Up to `count` generated modules (seeds from `seed` on) that the forks
    can run: entry of numbers only, no trap (a repeated run would end at its
    first call), run through `run_many` for about GEN_INSTRUCTIONS."""
    from fuzz import gen, oracle
    out = []
    cache.mkdir(parents=True, exist_ok=True)
    for s in range(seed, seed + scan):
        if len(out) >= count:
            break
        g = gen.from_seed(s, features=FORK_FEATURES)
        if g.module.imports or g.memory is None:    # iwasm aborts without a memory (H15)
            continue
        if any(t not in NUMERIC for t in (*g.params, *g.results)):
            continue
        for args in g.args:
            texts = [_arg_text(t, v) for t, v in zip(g.params, args)]
            if None not in texts:
                break
        else:
            continue
        once = oracle.uninterrupted(g.wasm, g.entry, args)
        if once.trap is not None:
            continue
        data = repeated(g, max(2, GEN_INSTRUCTIONS // max(1, once.steps)))
        wasm = cache / f'gen-{s}-{hashlib.sha256(data).hexdigest()[:12]}.wasm'
        if not wasm.is_file():
            wasm.write_bytes(data)
        out.append(Program(f'gen-{s}', wasm, argv=tuple(texts), invoke='run_many',
                           results=tuple(g.results)))
    return out
