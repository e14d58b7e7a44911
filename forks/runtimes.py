"""Run a program on one runtime: uninterrupted, up to a checkpoint, or from one.

Four runtimes, two per state model:

| name            | what                               | model    | checkpoint trigger          |
|-----------------|------------------------------------|----------|-----------------------------|
| `iwasm`         | the WAMR migration fork            | wamr     | SIGINT after a delay        |
| `wasmedge`      | the WasmEdge migration fork        | wasmedge | `--dispatch-limit N`        |
| `ours-wamr`     | the project's WAMR model           | wamr     | `--checkpoint-at N`         |
| `ours-wasmedge` | the project's WasmEdge model       | wasmedge | `--checkpoint-at N`         |

Every step is a plain command line (argv, working directory, environment,
and for iwasm the delay before SIGINT), built here and run by `execute`, so
a harness can write the exact commands of any run into a shell script.  The
project's engine is always called through `python -m engine`, never
imported: the harness checks whatever engine `PYTHONPATH` points at against
whatever fork builds it is given.

Image placement (the forks read and write fixed file names): iwasm dumps
into and restores from its working directory; wasmedge and the engine use
an image directory (`IMAGES` inside the working directory).
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from forks import build as fork_build

IMAGES = 'img'                  # image directory inside a work directory (wasmedge, engine)
TYPE_TABLES = ('tablemap_func', 'tablemap_offset', 'type_table')
MODELS = {'iwasm': 'wamr', 'wasmedge': 'wasmedge', 'ours-wamr': 'wamr', 'ours-wasmedge': 'wasmedge'}
RUNTIMES = tuple(MODELS)
FORK_OF = {'iwasm': 'wamr', 'wasmedge': 'wasmedge'}     # runtime -> forks.build name
NOT_OUTPUT = set(TYPE_TABLES) | {IMAGES, 'wamr_opcode.log'}   # work-dir entries that are not the program's


class Unavailable(Exception):
    """A runtime or route cannot run here; the message says why."""


# ------------------------------------------------------------ programs

@dataclass(frozen=True)
class Program:
    """One program and how to run it.

    WASI programs (`invoke` None) run `_start` with `argv`; other modules
    run the export `invoke` with `argv` as its arguments and `results` as
    its result types.  `preopen` grants the program its working directory
    as "." (the files it writes there are compared); `files` are put there
    first.  `stack_size` is iwasm's operand stack (sqlite-bench needs
    more than the default).  `tables` is a directory holding the type
    tables both forks need at dump time (None: `python -m engine
    typetables` makes them).  `mask` is a regex whose matches in stdout are
    replaced before comparing (timings a program prints)."""
    name: str
    wasm: Path
    argv: tuple = ()
    invoke: str | None = None
    results: tuple = ()
    preopen: bool = False
    env: tuple = ()
    files: tuple = ()               # (name, bytes)
    stack_size: int | None = None
    tables: Path | None = None
    mask: str | None = None
    timeout: float = 120.0

    @property
    def wasi(self) -> bool:
        return self.invoke is None


# ------------------------------------------------------------ steps and outcomes

@dataclass
class Step:
    """One command: argv run in cwd with extra env; `interrupt_after`
    seconds after starting it gets SIGINT (iwasm's checkpoint trigger)."""
    argv: list
    cwd: Path
    env: dict = field(default_factory=dict)
    interrupt_after: float | None = None
    timeout: float = 120.0
    what: str = ''
    stdout_null: bool = False       # stdout to /dev/null (a character device) instead of a pipe

    def args(self) -> list:
        """The argv as run: paths inside the working directory relative to
        it (the program sees the same argv[0] wherever the folder lies)."""
        cwd = str(self.cwd)
        return [os.path.relpath(a, cwd) if str(a).startswith(cwd + os.sep) else str(a)
                for a in self.argv]

    def shell(self, root: Path | None = None) -> str:
        """The step as a shell line; with `root`, the working directory is
        written relative to it, so the line runs from a copy of root elsewhere."""
        under = root is not None and (str(self.cwd) == str(root)
                                      or str(self.cwd).startswith(str(root) + os.sep))
        cwd = os.path.relpath(self.cwd, root) if under else str(self.cwd)
        env = ' '.join(f'{k}={shlex.quote(str(v))}' for k, v in sorted(self.env.items()))
        cmd = (env + ' ' if env else '') + shlex.join(self.args())
        if self.stdout_null:
            cmd += ' > /dev/null'
        if self.interrupt_after is None:
            return f'(cd {shlex.quote(cwd)} && {cmd})'
        return (f'(cd {shlex.quote(cwd)} || exit; {cmd} & pid=$!; sleep {self.interrupt_after:.3f}; '
                f'kill -INT $pid 2>/dev/null; wait $pid)')


@dataclass
class Outcome:
    stdout: bytes
    stderr: bytes
    exit_code: int | None           # None: timed out (killed)
    seconds: float
    interrupted: bool = False       # SIGINT was sent while it ran

    @property
    def timed_out(self):
        return self.exit_code is None


def execute(step: Step) -> Outcome:
    """Run a step, capturing everything; a step past its timeout is killed."""
    env = dict(os.environ)
    env.update(step.env)
    started = time.monotonic()
    proc = subprocess.Popen(step.args(), cwd=step.cwd, env=env,
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL if step.stdout_null else subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    interrupted = False
    try:
        if step.interrupt_after is not None:
            try:
                out, err = proc.communicate(timeout=step.interrupt_after)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGINT)
                interrupted = True
                out, err = proc.communicate(timeout=step.timeout)
        else:
            out, err = proc.communicate(timeout=step.timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        code = None
    return Outcome(out or b'', err, code, time.monotonic() - started, interrupted)


# ------------------------------------------------------------ runtimes

def engine_command() -> list:
    """How to call the project's engine (see `engine_env`)."""
    return [sys.executable, '-m', 'engine']


def engine_env() -> dict:
    """Environment of engine steps: `$WASM_MIGRATE_ENGINE` (a checkout of
    the project, e.g. another branch) when set, else the PYTHONPATH the
    harness runs with."""
    path = os.environ.get('WASM_MIGRATE_ENGINE')
    return {'PYTHONPATH': path} if path else {}


_caps = {}


def engine_caps() -> dict:
    """What the engine's CLI offers: fork-format images, type tables, WASI."""
    key = os.environ.get('WASM_MIGRATE_ENGINE')
    if key not in _caps:
        def helptext(*sub):
            # (not run from the harness's folder: `python -m` puts the cwd first on sys.path)
            r = subprocess.run(engine_command() + [*sub, '--help'], capture_output=True, text=True,
                               env=dict(os.environ, **engine_env()), cwd=key or None)
            return r.stdout if r.returncode == 0 else ''
        top, run, restore = helptext(), helptext('run'), helptext('restore')
        _caps[key] = {'fork_format': '--format' in run, 'typetables': 'typetables' in top,
                      'wasi': '--dir' in run, 'wasi_restore': '--dir' in restore,
                      'dispatch_limit': '--dispatch-limit' in run}
    return _caps[key]


class Runtime:
    """Builds the command lines of one runtime."""
    name: str
    model: str
    real: bool

    def run(self, prog: Program, work: Path) -> Step:
        raise NotImplementedError

    def restore(self, prog: Program, work: Path) -> Step:
        raise NotImplementedError

    def images_of(self, work: Path) -> Path:
        """Where this runtime's image files are, for a checkpoint taken in `work`."""
        return work / IMAGES

    def available(self, prog: Program, restoring: bool = False) -> str | None:
        """None when `prog` can run (and be restored, if `restoring`) here, else why not."""
        return None


class Iwasm(Runtime):
    model, real, name = 'wamr', True, 'iwasm'

    def __init__(self, built: fork_build.Built):
        self.built = built

    def _base(self, prog):
        argv = [self.built.binary]
        if prog.stack_size:
            argv.append(f'--stack-size={prog.stack_size}')
        if prog.preopen:
            argv.append('--dir=.')
        argv += [f'--env={k}={v}' for k, v in prog.env]
        if prog.invoke:
            argv += ['-f', prog.invoke]
        return argv

    def run(self, prog, work):
        return Step(self._base(prog) + [prog.wasm, *map(str, prog.argv)], work,
                    timeout=prog.timeout, what='iwasm run')

    def checkpoint(self, prog, work, delay: float) -> Step:
        s = self.run(prog, work)
        s.interrupt_after, s.what = delay, f'iwasm checkpoint (SIGINT after {delay:.3f} s)'
        return s

    def restore(self, prog, work):
        argv = self._base(prog)
        argv.insert(1, '--restore')
        return Step(argv + [prog.wasm, *map(str, prog.argv)], work, timeout=prog.timeout,
                    what='iwasm restore')

    def images_of(self, work):
        return work


class WasmEdge(Runtime):
    model, real, name = 'wasmedge', True, 'wasmedge'

    def __init__(self, built: fork_build.Built):
        self.built = built

    def _env(self):
        return {'LD_LIBRARY_PATH': str(self.built.libdir)} if self.built.libdir else {}

    def _base(self, prog, *opts):
        argv = [self.built.binary, *opts]
        if prog.preopen:
            argv += ['--dir', '.:.']
        for k, v in prog.env:
            argv += ['--env', f'{k}={v}']
        if prog.invoke:
            argv += ['--reactor', prog.wasm, prog.invoke]
        else:
            argv += [prog.wasm]
        return argv + [str(a) for a in prog.argv]

    def run(self, prog, work, count=False):
        opts = ('--enable-instruction-count',) if count else ()
        return Step(self._base(prog, *opts), work, self._env(), timeout=prog.timeout,
                    what='wasmedge run')

    def checkpoint(self, prog, work, n: int) -> Step:
        return Step(self._base(prog, '--image-dir', IMAGES, '--dispatch-limit', str(n)), work,
                    self._env(), timeout=prog.timeout, what=f'wasmedge checkpoint (--dispatch-limit {n})')

    def restore(self, prog, work):
        return Step(self._base(prog, '--restore', '--image-dir', IMAGES), work, self._env(),
                    timeout=prog.timeout, what='wasmedge restore')


class Ours(Runtime):
    """The project's engine in one of its two models."""
    real = False

    def __init__(self, model: str):
        self.model = model
        self.name = f'ours-{model}'

    def available(self, prog, restoring=False):
        if prog.wasi and not engine_caps()['wasi']:
            return 'the engine has no WASI yet (python -m engine run has no --dir)'
        if restoring and prog.wasi and not engine_caps()['wasi_restore']:
            return 'the engine cannot restore WASI programs yet (python -m engine restore has no --dir)'
        return None

    def _program(self, prog):
        if prog.invoke:
            return ['--invoke', prog.invoke, '--args', *map(str, prog.argv)]
        argv = ['--dir', '.'] if prog.preopen else []
        for k, v in prog.env:
            argv += ['--env', f'{k}={v}']
        return argv + ['--', *map(str, prog.argv)]

    def run(self, prog, work):
        return Step(engine_command() + ['run', prog.wasm, '--runtime', self.model,
                                        *self._program(prog)], work, engine_env(),
                    timeout=prog.timeout * 20, what=f'{self.name} run')

    def checkpoint(self, prog, work, n: int, like_wasmedge=False) -> Step:
        """Stop after n instructions; `like_wasmedge`: where the WasmEdge
        fork's `--dispatch-limit n` stops (the engine's own option)."""
        fmt = ['--format', 'fork'] if engine_caps()['fork_format'] else []
        stop = '--dispatch-limit' if like_wasmedge else '--checkpoint-at'
        # the program part stays last ("-- args" of WASI programs)
        return Step(engine_command() + ['run', prog.wasm, '--runtime', self.model, stop, str(n),
                                        '--images', IMAGES, *fmt, *self._program(prog)],
                    work, engine_env(), timeout=prog.timeout * 20,
                    what=f'{self.name} checkpoint ({stop} {n})')

    def restore(self, prog, work):
        # the harness hands it images of its own model (translated if need be)
        argv = engine_command() + ['restore', IMAGES, '--runtime', self.model]
        if engine_caps()['fork_format']:
            argv += ['--format', 'fork', '--from', self.model, '--module', prog.wasm]
        if not prog.invoke:
            argv += self._program(prog)
        elif engine_caps()['fork_format']:      # fork images do not name the entry
            argv += ['--invoke', prog.invoke, '--args', *map(str, prog.argv)]
        return Step(argv, work, engine_env(), timeout=prog.timeout * 20, what=f'{self.name} restore')


def runtimes(names=RUNTIMES, forks: str | None = None) -> dict:
    """The runtimes among `names` that exist here: name -> Runtime, or the
    reason it is missing (str)."""
    out = {}
    for name in names:
        if name in FORK_OF:
            built = fork_build.locate(FORK_OF[name], forks)
            if built is None:
                out[name] = f'{FORK_OF[name]} fork not built (run: python -m forks build {FORK_OF[name]})'
            else:
                out[name] = (Iwasm if name == 'iwasm' else WasmEdge)(built)
        elif name in MODELS:
            out[name] = Ours(MODELS[name])
        else:
            raise ValueError(f'unknown runtime {name!r}; choose from {", ".join(RUNTIMES)}')
    return out


# ------------------------------------------------------------ work directories

def prepare(prog: Program, work: Path, tables: Path | None = None):
    """A fresh work directory holding the program's input files and the type tables."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for name, data in prog.files:
        (work / name).write_bytes(data)
    if tables is not None:
        for t in TYPE_TABLES:
            shutil.copyfile(tables / t, work / t)


def output_files(work: Path) -> dict:
    """The program's files in a work directory (not images, tables, logs, the
    module itself): name -> sha256."""
    out = {}
    for p in sorted(work.rglob('*')):
        rel = p.relative_to(work)
        if rel.parts[0] in NOT_OUTPUT or p.suffix in ('.img', '.wasm') or not p.is_file():
            continue
        out[str(rel)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def image_files(directory: Path) -> dict:
    """The fork-layout image files in a directory: name -> bytes."""
    return {p.name: p.read_bytes() for p in sorted(directory.glob('*.img'))}


# ------------------------------------------------------------ results

_INT = re.compile(r'^-?(0x[0-9a-fA-F]+|\d+)$')


TYPES = ('i32', 'i64', 'f32', 'f64', 'v128', 'funcref', 'externref')
_IWASM = re.compile(r'^(\S+?):(%s)$' % '|'.join(TYPES))                     # "0x1a6d:i32"
_ENGINE = re.compile(r'^(%s):(\S+)(?: \(bits (0x[0-9a-f]+)\))?' % '|'.join(TYPES))  # "f32:1.5 (bits 0x..)"


def parse_results(text: str, types) -> list | None:
    """The result values a runtime printed for an invoked export, normalised:
    integers as unsigned bit patterns, floats as Python floats (the forks
    print floats in decimal, not as bits).  iwasm prints `value:type,...` on
    one line, wasmedge one bare value a line, the engine `type:value` a
    line.  None if the text is not a result list of these types."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if len(lines) == 1 and all(_IWASM.match(it) for it in lines[0].split(',')):
        fields = [_IWASM.match(it).group(1) for it in lines[0].split(',')]
    else:
        fields = []
        for line in lines:
            m = _ENGINE.match(line)
            fields.append(line if not m else ('bits', m.group(3)) if m.group(3) else m.group(2))
    if len(fields) != len(types):
        return None
    try:
        return [_value(t, f) for t, f in zip(types, fields)]
    except ValueError:
        return None


def _value(t, f):
    import struct
    if t in ('i32', 'i64'):
        bits = int(t[1:])
        if not _INT.match(f):
            raise ValueError(f)
        return int(f, 0) % (1 << bits)
    if t in ('f32', 'f64'):
        if isinstance(f, tuple):
            raw = int(f[1], 16)
            return struct.unpack('<f' if t == 'f32' else '<d',
                                 raw.to_bytes(4 if t == 'f32' else 8, 'little'))[0]
        return float(f)
    return f


def same_results(a, b) -> bool:
    """Result lists equal, floats compared to the 6 significant digits the forks print."""
    import math
    if a is None or b is None or len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, float) or isinstance(y, float):
            x, y = float(x), float(y)
            if math.isnan(x) and math.isnan(y):
                continue
            if not math.isclose(x, y, rel_tol=5e-6, abs_tol=1e-30):
                return False
        elif x != y:
            return False
    return True
