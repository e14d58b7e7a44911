"""The fork matrix: every route between the real forks and the project's models.

    python -m forks matrix [--quick] [--points K] [--programs NAME...] [--routes SRC:TGT...]
                           [--sqlite] [--generated N] [--seed S] [--out DIR] [--forks DIR]

For each program and each route SRC -> TGT over {iwasm, wasmedge,
ours-wamr, ours-wasmedge}: run the program uninterrupted on SRC, checkpoint
it on SRC at K points (iwasm: SIGINT at a random moment, the point reached
read back from its program_counter.img; wasmedge: `--dispatch-limit N`;
ours: `--checkpoint-at N`), translate the images through `python -m engine
translate --format fork` when the two state models differ, restore on TGT
in the same directory (its files as the checkpoint left them) and compare
stdout (the checkpointed part followed by the restored part), exit status,
result values (invoked exports) and the files the program wrote with the
uninterrupted run.  Memory at the end is not compared: the forks cannot
dump it after a run; memory at a checkpoint is compared by the image-set
check (`images`), which also runs the real wasmedge and the WasmEdge model
at equal instruction counts and compares their image files byte for byte,
and both against the authors' `expect-images`.

Every mismatch becomes a reproducer directory (`repro/<id>/`) holding the
program, its inputs and type tables, `commands.sh` with the exact commands,
`expected.json` (the uninterrupted run) and `mismatch.txt`; `python -m
forks replay DIR` runs the commands again and says whether the mismatch
reproduces.  The matrix (routes x programs, pass/fail/unreached counts or
why a cell cannot run) is printed and written as `matrix.json` and
`matrix.md`.  Exit status: 0 no mismatch, 1 mismatches, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import shutil
import struct
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from forks import programs as progs
from forks.build import cache_root
from forks.runtimes import (IMAGES, MODELS, RUNTIMES, TYPE_TABLES, Outcome, Program, Step,
                            engine_caps, engine_command, engine_env, execute, image_files, output_files,
                            parse_results, runtimes, same_results)

# Lines the forks print on the program's stdout that the program did not
# write (docs/fork-findings.md).  They are removed before comparing and the
# case is counted as "noise", not as a pass, so the defect stays visible.
FORK_NOISE = {
    'iwasm page_count': re.compile(r'^page_count: \d+\n', re.M),
    'wasmedge statistics log': re.compile(
        r'^\[\d{4}-\d\d-\d\d [\d:.]+\] \[info\] [^\n]*\n', re.M),
    'engine checkpoint line': re.compile(
        r'^checkpoint after \d+ instructions: [^\n]*images in [^\n]*\n', re.M),
}
RECORDED_ENV = ('WASM_MIGRATE_FAULT', 'WASM_MIGRATE_ENGINE')
QUICK_PROGRAMS = ('n-body', 'c-loops', 'wat-sieve', 'gen')   # --quick; 'gen' = generated
OUTPUTS = {'checkpoint': 'ck', 'move': 'mv', 'restore': 'rs'}   # step -> captured output files      # environment a reproducer must carry
IWASM_TRIES = 6                             # SIGINT attempts per iwasm checkpoint


VERDICTS = ('pass', 'noise', 'fail', 'known', 'refused', 'unreached')
KNOWN_DEFECTS = Path(__file__).resolve().parent / 'known_defects.json'
# the engine declining to put a state into the forks' layout, or to read what a
# fork wrote in its place, because the layout cannot hold it (its reasons, as it
# words them; anything else from the engine is a failure)
REFUSAL = re.compile(r'\.img: .*(cannot be (written|held|represented)|hold no |'
                     r'the (WasmEdge|WAMR) fork (writes|holds|does not))')


class UsageError(Exception):
    pass


# ------------------------------------------------------------ observations

@dataclass
class Observation:
    """What a run shows from outside."""
    stdout: str
    status: str                 # "exit N", "trap" (invoked export failed), "timeout"
    results: list | None        # invoked exports: the values printed
    files: dict                 # files the program left in its directory: name -> sha256
    noise: list = field(default_factory=list)   # FORK_NOISE kinds removed from stdout

    def differences(self, ref: 'Observation', invoked: bool) -> list:
        out = []
        if invoked:
            if self.status != ref.status:
                out.append(f'status {self.status!r}, expected {ref.status!r}')
            elif self.status == 'ok' and not same_results(self.results, ref.results):
                out.append(f'results {self.results}, expected {ref.results}')
            return out
        if self.status != ref.status:
            out.append(f'{self.status}, expected {ref.status}')
        if self.stdout != ref.stdout:
            a, b = self.stdout.splitlines(), ref.stdout.splitlines()
            i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
            out.append(f'stdout differs at line {i + 1}: {a[i] if i < len(a) else "<end>"!r}, '
                       f'expected {b[i] if i < len(b) else "<end>"!r} ({len(a)} vs {len(b)} lines)')
        if self.files != ref.files:
            names = sorted(set(self.files) | set(ref.files))
            bad = [n for n in names if self.files.get(n) != ref.files.get(n)]
            out.append('files differ: ' + ', '.join(
                f'{n} ({"missing" if n not in self.files else "extra" if n not in ref.files else "content"})'
                for n in bad))
        return out


def _denoise(text: str, noise: list) -> str:
    for kind, pattern in FORK_NOISE.items():
        text, n = pattern.subn('', text)
        if n and kind not in noise:
            noise.append(kind)
    return text


def observe(prog: Program, before: bytes, outcome: Outcome, work: Path) -> Observation:
    """The run whose last part is `outcome` (`before`: stdout of the part
    up to the checkpoint), seen from outside."""
    noise = []
    head = _denoise(before.decode('utf-8', 'replace'), noise)
    tail = _denoise(outcome.stdout.decode('utf-8', 'replace'), noise)
    if outcome.timed_out:
        status = 'timeout'
    elif prog.invoke:
        status = 'ok' if outcome.exit_code == 0 else 'trap'
    else:
        status = f'exit {outcome.exit_code}'
    if prog.invoke:
        # stdout holds the runtime's result lines, printed by the run that finishes
        results = parse_results(tail, prog.results) if status == 'ok' else None
        if status == 'ok' and results is None:
            status = 'unparsable results'
        # the runtimes' log lines do not matter here; values printed by the
        # interrupted run do (a fork reporting results of a call that never returned)
        return Observation('', status, results, {},
                           ['results printed at the checkpoint'] if head.strip() else [])
    return Observation(head + tail, status, None, output_files(work) if prog.preopen else {}, noise)


def instructions(rt_name: str, outcome: Outcome) -> int | None:
    """Instructions a run executed, from wasmedge's statistics or the engine's
    summary line (or its trap message: a trapping run prints no summary)."""
    err = (outcome.stderr + outcome.stdout).decode('utf-8', 'replace')
    m = re.search(r'Executed wasm instructions count: (\d+)', err) if rt_name == 'wasmedge' \
        else re.search(r'^# (\d+) instructions|^trap: .*instruction count (\d+)\)$', err, re.M)
    return int(next(g for g in m.groups() if g)) if m else None


def read_point(directory: Path) -> str | None:
    """The checkpoint's position from program_counter.img/frame.img ('f<fidx>@<offset>, n frames')."""
    try:
        pc = (directory / 'program_counter.img').read_bytes()
        fidx, off = struct.unpack('<II', pc[:8])
        frames = struct.unpack('<I', (directory / 'frame.img').read_bytes()[:4])[0]
    except (OSError, struct.error):
        return None
    return f'f{fidx}@{off}, {frames} frames'


# ------------------------------------------------------------ routes

@dataclass
class Case:
    """One checkpoint -> (translate) -> restore run, and how it went."""
    program: str
    src: str
    tgt: str
    k: int
    point: str = ''             # requested point (N or SIGINT delay)
    reached: str | None = None  # what the images say
    verdict: str = ''           # pass | noise (pass once FORK_NOISE is removed) | fail | unreached
    detail: list = field(default_factory=list)
    steps: list = field(default_factory=list)   # shell lines
    seconds: float = 0.0
    repro: str | None = None


def move_images(src_rt, tgt_rt, prog: Program, work: Path) -> Step | None:
    """The step that puts the checkpoint's images where the target reads
    them, translated when the state models differ (None: already there)."""
    src_dir = src_rt.images_of(work)
    tgt_dir = tgt_rt.images_of(work)
    src_rel = '.' if src_dir == work else IMAGES
    tgt_rel = '.' if tgt_dir == work else IMAGES
    wasm = os.path.relpath(prog.wasm, work)
    if src_rt.model == tgt_rt.model or not (src_rt.real or tgt_rt.real or engine_caps()['fork_format']):
        # (the engine's own image sets carry their model: its restore translates them)
        if src_rel == tgt_rel:
            return None
        if tgt_rel == '.':
            return Step(['sh', '-c', f'cp {IMAGES}/*.img .'], work, what='move images')
        return Step(['sh', '-c', f'mkdir -p {IMAGES} && cp *.img {IMAGES}/'], work, what='move images')
    out = 'translated'
    xl = engine_command() + ['translate', src_rel, '--format', 'fork', '--from', src_rt.model,
                             '--module', wasm, '--to', tgt_rt.model, '--out', out]
    if prog.invoke:
        xl += ['--invoke', prog.invoke]
    place = (f'cp {out}/*.img .' if tgt_rel == '.' else f'rm -rf {IMAGES} && mv {out} {IMAGES}')
    return Step(['sh', '-c', shlex.join(xl) + ' && ' + place], work, engine_env(),
                what=f'translate {src_rt.model} -> {tgt_rt.model}')


def route_unavailable(prog: Program, rts: dict, src: str, tgt: str) -> str | None:
    caps = engine_caps()
    for name, restoring in ((src, False), (tgt, True)):
        rt = rts[name]
        if isinstance(rt, str):
            return rt
        why = rt.available(prog, restoring)
        if why:
            return why
    if rts[src].real and prog.tables is None and not caps['typetables']:
        return 'no type tables (the engine has no `typetables` command yet)'
    real_end = rts[src].real or rts[tgt].real
    if real_end and not (rts[src].real and rts[tgt].real and MODELS[src] == MODELS[tgt]) \
            and not caps['fork_format']:
        return 'the engine cannot read or write the forks\' image layout yet (no --format fork)'
    return None


# ------------------------------------------------------------ the harness

class Matrix:
    def __init__(self, out: Path, rts: dict, points: int, seed: int, keep: bool = False,
                 progress=print, known: list | None = None):
        self.out, self.rts, self.points, self.seed = out, rts, points, seed
        self.keep, self.say = keep, progress
        self.cases: list[Case] = []
        self.refs: dict = {}          # (program, runtime) -> (Observation, instructions, seconds) | str
        self.na: dict = {}            # (program, src, tgt) -> reason
        self.images: list = []        # image-set checks
        self.programs: list = []
        self.ready: set = set()       # program folders made by this run
        self.known = known or []      # entries of known_defects.json

    # -- program folder: the wasm, its inputs and type tables, shared by every case
    def program_dir(self, prog: Program) -> Path:
        d = self.out / 'programs' / prog.name
        if prog.name in self.ready:
            return d
        shutil.rmtree(d, ignore_errors=True)
        (d / 'inputs').mkdir(parents=True)
        # the module runs from the work directory under its own name, so every
        # runtime gets the same short argv[0] and commands.sh stays relocatable
        shutil.copyfile(prog.wasm, d / 'inputs' / prog.wasm.name)
        for name, data in prog.files:
            (d / 'inputs' / name).write_bytes(data)
        if prog.tables is not None:
            (d / 'tables').mkdir()
            for t in TYPE_TABLES:
                shutil.copyfile(prog.tables / t, d / 'tables' / t)
        elif engine_caps()['typetables']:
            r = execute(Step(engine_command() + ['typetables', f'inputs/{prog.wasm.name}', '--out',
                                                 'tables'], d,
                             engine_env(), timeout=600))
            if r.exit_code != 0:
                self.say(f'{prog.name}: typetables failed: {r.stderr.decode()[-300:]}')
        self.ready.add(prog.name)
        return d

    def local(self, prog: Program, case_dir: Path) -> Program:
        """The program as seen from a case directory (its own copy of the module)."""
        return replace(prog, wasm=case_dir / 'ck' / prog.wasm.name)

    def setup(self, case_dir: Path, tables: bool) -> Step:
        script = 'rm -rf ck && mkdir ck && cp -R program/inputs/. ck/'
        if tables:
            script += ' && cp program/tables/* ck/'
        return Step(['sh', '-c', script], case_dir, what='fresh work directory')

    def new_case_dir(self, prog, name) -> Path:
        d = self.out / 'work' / prog.name / name
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        pd = self.program_dir(prog)
        shutil.copytree(pd, d / 'program', copy_function=os.link)
        return d

    # -- uninterrupted runs
    def reference(self, prog: Program):
        """The uninterrupted run on every runtime, into self.refs[(program, runtime)]:
        (Observation, instructions counted or None, seconds), or why it cannot run."""
        for name, rt in self.rts.items():
            if isinstance(rt, str):
                self.refs[(prog.name, name)] = rt
                continue
            why = rt.available(prog)
            if why:
                self.refs[(prog.name, name)] = why
                continue
            d = self.new_case_dir(prog, f'run-{name}')
            lp = self.local(prog, d)
            execute(self.setup(d, False))
            step = rt.run(lp, d / 'ck', count=True) if name == 'wasmedge' else rt.run(lp, d / 'ck')
            o = execute(step)
            obs = observe(prog, b'', o, d / 'ck')
            if o.exit_code not in (0, None) and _load_error(o) and (prog.invoke or not o.stdout):
                self.refs[(prog.name, name)] = 'cannot load the module: ' + _last_line(o.stderr + o.stdout)
            else:
                self.refs[(prog.name, name)] = (obs, instructions(name, o), o.seconds)
            shutil.rmtree(d, ignore_errors=True)
        ok = [(n, r) for n, r in self.refs.items() if n[0] == prog.name and not isinstance(r, str)]
        return ok

    # -- one route at one point
    def run_case(self, prog: Program, src: str, tgt: str, k: int, rng: random.Random,
                 total: int | None, iwasm_seconds: float | None) -> Case:
        case = Case(prog.name, src, tgt, k)
        started = time.monotonic()
        name = f'{src}--{tgt}-{k}'
        d = self.new_case_dir(prog, name)
        lp = self.local(prog, d)
        work = d / 'ck'
        srt, trt = self.rts[src], self.rts[tgt]
        has_tables = (d / 'program' / 'tables').is_dir()
        setup = self.setup(d, has_tables and srt.real)
        steps = [('setup', setup)]
        if src == 'iwasm':
            ck, ck_out = None, None
            lo, hi = 0.25 * iwasm_seconds, 0.9 * iwasm_seconds
            for attempt in range(IWASM_TRIES):
                execute(setup)
                delay = rng.uniform(lo, hi)
                ck = srt.checkpoint(lp, work, delay)
                ck_out = execute(ck)
                if read_point(work):
                    break
                if ck_out.exit_code is not None and ck_out.exit_code < 0:
                    lo, hi = hi, hi + 0.5 * iwasm_seconds     # signal came before the handler
                else:
                    lo, hi = lo * 0.5, lo                     # the run finished first
            case.point = f'SIGINT after {delay * 1000:.1f} ms'
        else:
            n = rng.randint(1, max(1, total - 1))
            case.point = f'N={n}'
            execute(setup)
            ck = srt.checkpoint(lp, work, n)
            ck_out = execute(ck)
        steps.append(('checkpoint', ck))
        outputs = {'ck': ck_out}
        images_dir = srt.images_of(work)
        case.reached = read_point(images_dir) or (
            f'{(images_dir / "manifest.json").is_file() and "engine images" or "no images"}')
        # the whole route goes into the reproducer, also the steps a failure cut short
        mv, rs = move_images(srt, trt, lp, work), trt.restore(lp, work)
        steps += ([('move', mv)] if mv else []) + [('restore', rs)]
        written = image_files(images_dir)
        complete = (images_dir / 'manifest.json').is_file() or (
            written.get('program_counter.img') and written.get('frame.img'))
        if _crashed(ck_out) or (written and not complete):
            case.verdict = 'fail'
            case.detail = [f'checkpoint failed: {ck.what} ended with {_status(ck_out)}, '
                           f'image files {sorted(written) or "none"}; {_last_line(ck_out.stderr)}']
        elif not complete and not srt.real and ck_out.exit_code == 2 and \
                REFUSAL.search(_last_line(ck_out.stderr)):
            case.verdict = 'refused'        # the engine cannot express this state in the forks' layout
            case.detail = [f'{ck.what} refused: {_last_line(ck_out.stderr)}']
        elif not complete and src != 'iwasm':
            case.verdict = 'fail'           # N lies inside the run: the images must be there
            case.detail = [f'no checkpoint at {case.point} although the run executes {total} '
                           f'instructions: {ck.what} ended with {_status(ck_out)} and wrote no images']
        elif not complete:
            case.verdict = 'unreached'
            case.detail = [f'no checkpoint: {ck.what} ended with {_status(ck_out)} '
                           f'before writing images; {_last_line(ck_out.stderr)}']
        elif mv is not None and (r := outputs.setdefault('mv', execute(mv))).exit_code != 0:
            why = _last_line(r.stderr)
            case.verdict = 'refused' if r.exit_code == 2 and REFUSAL.search(why) else 'fail'
            case.detail = [f'{mv.what} {case.verdict} ({_status(r)}): {why}']
        else:
            rs_out = outputs['rs'] = execute(rs)
            obs = observe(prog, ck_out.stdout, rs_out, work)
            diff = obs.differences(self.refs[(prog.name, src)][0], bool(prog.invoke))
            case.verdict = 'fail' if diff else 'noise' if obs.noise else 'pass'
            why = _last_line(rs_out.stderr)
            if diff and not trt.real and rs_out.exit_code == 2 and REFUSAL.search(why):
                case.verdict = 'refused'    # the engine declines images a fork wrote
                case.detail = [f'{rs.what} refused: {why}']
            elif diff:
                crash = [f'restore crashed ({_status(rs_out)})'] if _crashed(rs_out) else []
                case.detail = crash + diff + [f'restore stderr: {why}']
            elif obs.noise:
                case.detail = ['stdout held output the program did not write: ' + ', '.join(obs.noise)]
        if case.verdict == 'fail':
            finding = self.known_defect(case)
            if finding:
                case.verdict = 'known'
                case.detail = [f'known fork defect {finding} (docs/fork-findings.md)'] + case.detail
        case.steps = [s.shell(d) for _, s in steps]
        case.seconds = round(time.monotonic() - started, 2)
        if case.verdict in ('fail', 'known'):
            case.repro = str(self.save_repro(prog, case, d, steps, outputs))
        elif not self.keep:
            shutil.rmtree(d, ignore_errors=True)
        return case

    def save_repro(self, prog: Program, case: Case, d: Path, steps: list, outputs: dict) -> Path:
        rid = f'{prog.name}-{case.src}--{case.tgt}-{case.k}'
        dest = self.out / 'repro' / rid
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(d, dest)
        (dest / 'ck').rename(dest / 'observed')     # as the failing run left it; commands.sh remakes ck/
        for part, o in outputs.items():             # and what each step printed then
            (dest / 'observed' / f'{part}.out').write_bytes(o.stdout)
            (dest / 'observed' / f'{part}.err').write_bytes(o.stderr)
            (dest / 'observed' / f'{part}.rc').write_text(f'{_status(o)}\n')
        shutil.rmtree(d, ignore_errors=True)
        write_commands(dest, d, steps, case, prog)
        ref = self.refs[(prog.name, case.src)][0]
        (dest / 'expected.json').write_text(json.dumps(
            {'program': asdict(ref), 'module': prog.wasm.name, 'invoke': prog.invoke,
             'results': list(prog.results),
             'mask': prog.mask, 'preopen': prog.preopen}, indent=1) + '\n')
        (dest / 'mismatch.txt').write_text(
            f'{prog.name}: {case.src} -> {case.tgt}, checkpoint {case.point} (reached {case.reached})\n'
            + '\n'.join(case.detail) + '\n\nReplay: python -m forks replay ' + str(dest) + '\n'
            + ('The SIGINT timing of iwasm is not repeatable: a replay may stop elsewhere.\n'
               if case.src == 'iwasm' else ''))
        return dest

    def known_defect(self, case: Case) -> str | None:
        """The finding a failing case is explained by, from the known-defects list."""
        for k in self.known:
            if all(re.match(k[f], v) for f, v in (('program', case.program), ('src', case.src),
                                                   ('tgt', case.tgt))) \
                    and any(re.match(k['detail'], line) for line in case.detail):
                return k['finding']
        return None

    # -- the image-set check at equal instruction counts
    def image_check(self, prog: Program, n: int, expect: Path | None = None, label='',
                    pipe=False):
        """wasmedge --dispatch-limit n and ours-wasmedge --checkpoint-at n give
        the same image files (and the authors' expected ones); stdout is
        /dev/null unless `pipe`."""
        sets = {}
        row = {'program': label or prog.name, 'n': n, 'sets': {}, 'verdict': '', 'detail': []}
        if prog.preopen:
            row['verdict'] = 'n/a'
            row['detail'] = ['opens files: WasmEdge numbers descriptors at random, so its own '
                             'image sets differ run to run (docs/fork-findings.md, H13)']
            self.images.append(row)
            return
        tables = (self.program_dir(prog) / 'tables').is_dir()
        for name in ('wasmedge', 'ours-wasmedge'):
            rt = self.rts.get(name)
            if name == 'wasmedge' and not tables and not isinstance(rt, str):
                row['sets'][name] = 'no type tables to dump with'
                continue
            if rt is None or isinstance(rt, str):
                row['sets'][name] = rt or 'not selected'
                continue
            why = rt.available(prog) or (None if rt.real or engine_caps()['fork_format'] else
                                         'the engine cannot write the forks\' image layout yet')
            if why:
                row['sets'][name] = why
                continue
            d = self.new_case_dir(prog, f'images-{name}-{n}')
            lp = self.local(prog, d)
            execute(self.setup(d, (d / 'program' / 'tables').is_dir() and rt.real))
            like = not rt.real and engine_caps()['dispatch_limit']
            step = rt.checkpoint(lp, d / 'ck', n, like_wasmedge=True) if like \
                else rt.checkpoint(lp, d / 'ck', n)
            # stdout a character device by default, as in the authors' runs that
            # made expect-images (wasi-libc line-buffers it; through a pipe it
            # buffers fully, and the counts at n differ from theirs)
            step.stdout_null = not pipe
            o = execute(step)
            files = image_files(rt.images_of(d / 'ck'))
            if _crashed(o):
                row['sets'][name] = f'crashed ({_status(o)})'
                row['crashed'] = True
            else:
                row['sets'][name] = f'{len(files)} files' if files else f'no images ({_status(o)})'
                if files:
                    sets[name] = files
            shutil.rmtree(d, ignore_errors=True)
        if expect is not None:
            sets['expect-images'] = image_files(expect)
            row['sets']['expect-images'] = f'{len(sets["expect-images"])} files'
        names = list(sets)
        for a, b in zip(names, names[1:]):
            fa, fb = sets[a], sets[b]
            bad = sorted(f for f in set(fa) | set(fb) if fa.get(f) != fb.get(f))
            if 'memory.img' in bad:
                same, note = _same_memory(fa.get('memory.img'), fb.get('memory.img'))
                if same:
                    bad.remove('memory.img')
                    row.setdefault('notes', []).append(f'{a} vs {b}: {note}')
            if bad:
                row['detail'].append(f'{a} vs {b}: ' + ', '.join(bad) + ' differ')
        row['verdict'] = ('fail' if row['detail'] else 'fork crashed' if row.get('crashed')
                          else 'n/a' if len(sets) < 2 else 'same')
        self.images.append(row)
        self.say(f'  images {row["program"]} at {n}: {row["verdict"]} '
                 + '; '.join(row['detail'] + row.get('notes', [])))

    # -- everything
    def run(self, programs: list, routes: list, image_points=(1000, 'random'), expect=None):
        """Every route for every program, then the image-set checks at the
        `image_points` ('random': one seeded point inside the run) and
        against the authors' expected images."""
        self.programs = [p.name for p in programs]
        self.invoked = {p.name: bool(p.invoke) for p in programs}
        for prog in programs:
            self.say(f'{prog.name}: uninterrupted runs')
            ok = self.reference(prog)
            if not ok:
                for src, tgt in routes:
                    self.na[(prog.name, src, tgt)] = 'no runtime could run it'
                continue
            counts = {n[1]: r[1] for n, r in ok if r[1]}     # instructions counted per runtime
            iw = self.refs.get((prog.name, 'iwasm'))
            iw_seconds = iw[2] if isinstance(iw, tuple) else None
            for src, tgt in routes:
                why = None
                for name in (src, tgt):
                    r = self.refs.get((prog.name, name))
                    if why is None and isinstance(r, str):
                        why = f'{name}: {r}'
                why = why or route_unavailable(prog, self.rts, src, tgt)
                total = counts.get(src) or min(counts.values(), default=None)
                if why is None and src != 'iwasm' and total is None:
                    why = 'no instruction count known for the run'
                if why:
                    self.na[(prog.name, src, tgt)] = why
                    continue
                rng = random.Random(f'{self.seed}:{prog.name}:{src}:{tgt}')
                for k in range(self.points):
                    case = self.run_case(prog, src, tgt, k, rng, total, iw_seconds)
                    self.cases.append(case)
                    self.say(f'  {src} -> {tgt} #{k} [{case.point}; {case.reached}]: {case.verdict}'
                             + (f' ({case.detail[0]})' if case.detail else ''))
            if 'wasmedge' in counts:
                rng = random.Random(f'{self.seed}:{prog.name}:images')
                for n in image_points:
                    n = rng.randint(1, counts['wasmedge'] - 1) if n == 'random' else n
                    if n < counts['wasmedge']:
                        self.image_check(prog, n)
        for name, (prog, limit, d) in (expect or {}).items():
            self.image_check(prog, limit, d, label=f'{name} (authors\' test)')

    # -- reports
    def uninterrupted_row(self):
        row = {}
        for p in self.programs:
            ok = [(n, r) for (pn, n), r in self.refs.items() if pn == p and isinstance(r, tuple)]
            if not ok:
                row[p] = 'n/a'
                continue
            base = ok[0][1][0]
            bad = [n for n, r in ok[1:] if r[0].differences(base, self.invoked[p])]
            row[p] = f'{len(ok) - len(bad)}/{len(ok)} agree' + (f' ({", ".join(bad)} differ)' if bad else '')
        return row

    def table(self, routes) -> dict:
        cells = {}
        for src, tgt in routes:
            key = f'{src} -> {tgt}'
            cells[key] = {}
            for p in self.programs:
                if (p, src, tgt) in self.na:
                    cells[key][p] = {'na': self.na[(p, src, tgt)]}
                    continue
                cs = [c for c in self.cases if (c.program, c.src, c.tgt) == (p, src, tgt)]
                cells[key][p] = {v: sum(c.verdict == v for c in cs) for v in VERDICTS}
        return cells

    def report(self, routes) -> dict:
        cells = self.table(routes)
        notes = sorted(set(self.na.values()))
        doc = {'programs': self.programs, 'routes': [f'{s} -> {t}' for s, t in routes],
               'uninterrupted': self.uninterrupted_row(), 'cells': cells,
               'cases': [asdict(c) for c in self.cases], 'images': self.images,
               'notes': notes,
               'totals': {v: sum(c.verdict == v for c in self.cases) for v in VERDICTS}}
        (self.out / 'matrix.json').write_text(json.dumps(doc, indent=1) + '\n')
        md = markdown(doc)
        (self.out / 'matrix.md').write_text(md)
        return doc


def markdown(doc) -> str:
    notes = doc['notes']

    def cell(c):
        if 'na' in c:
            return f'n/a[{notes.index(c["na"]) + 1}]'
        s = f'{c["pass"] + c["noise"]}/{c["pass"] + c["noise"] + c["fail"]}'
        if c['noise']:
            s += '*'
        if c['fail']:
            s += ' **FAIL**'
        if c['known']:
            s += f' ({c["known"]} known defect)'
        if c['refused']:
            s += f' ({c["refused"]} refused)'
        if c['unreached']:
            s += f' ({c["unreached"]} unreached)'
        return s
    lines = ['| route | ' + ' | '.join(doc['programs']) + ' |',
             '|---|' + '---|' * len(doc['programs']),
             '| uninterrupted | ' + ' | '.join(doc['uninterrupted'][p] for p in doc['programs']) + ' |']
    for route in doc['routes']:
        lines.append(f'| {route} | ' + ' | '.join(cell(doc['cells'][route][p]) for p in doc['programs'])
                     + ' |')
    t = doc['totals']
    lines += ['', f'Cells: passed/checked checkpoints; * = passed only once the fork\'s own lines '
              f'were removed from stdout (see docs/fork-findings.md). Totals: {t["pass"]} pass, '
              f'{t["noise"]} pass*, {t["fail"]} fail, {t["known"]} known fork defect '
              f'(forks/known_defects.json), {t["refused"]} refused (the translator '
              f'declined: the target fork cannot hold that state), {t["unreached"]} unreached '
              f'(iwasm finished before its SIGINT).', '']
    lines += [f'[{i + 1}] {n}' for i, n in enumerate(notes)]
    if doc['images']:
        lines += ['', '| image set at N | sets | verdict |', '|---|---|---|']
        for r in doc['images']:
            sets = '; '.join(f'{k}: {v}' for k, v in r['sets'].items())
            lines.append(f'| {r["program"]} @ {r["n"]} | {sets or "-"} | {r["verdict"]}'
                         + (' — ' + '; '.join(r['detail']) if r['detail'] else '') + ' |')
    fails = [c for c in doc['cases'] if c['verdict'] in ('fail', 'known')]
    if fails:
        lines += ['', 'Mismatches (known fork defects first say so):', '']
        lines += [f'- {c["program"]} {c["src"]} -> {c["tgt"]} [{c["point"]}]: '
                  f'{"; ".join(c["detail"][:2])} — `{c["repro"]}`' for c in fails]
    return '\n'.join(lines) + '\n'


def _memory_pages(raw: bytes) -> dict:
    """memory.img as {offset: 4 KiB page}: u32 offset + page, repeated."""
    step = 4 + 4096
    return {int.from_bytes(raw[i:i + 4], 'little'): raw[i + 4:i + step]
            for i in range(0, len(raw) - step + 1, step)}


def _same_memory(a: bytes | None, b: bytes | None) -> tuple:
    """Whether two memory.img files give the same memory although their
    page lists differ.  A fork lists the pages its process has *present*
    (touched), the engine those whose content is not zero-as-instantiated;
    so a page of zeros listed by one and absent from the other is the same
    memory (docs/images.md, "The forks' own layout").  (same, note)"""
    if a is None or b is None:
        return False, ''
    pa, pb = _memory_pages(a), _memory_pages(b)
    zero = bytes(4096)
    if any(pa.get(o, zero) != pb.get(o, zero) for o in set(pa) | set(pb)):
        return False, ''
    extra = len(set(pa) ^ set(pb))
    return True, f'memory.img same content; {extra} zero page(s) listed by one side only'


def _status(o: Outcome) -> str:
    return 'timeout' if o.timed_out else f'exit {o.exit_code}'


def _last_line(b: bytes) -> str:
    lines = [ln for ln in b.decode('utf-8', 'replace').splitlines()
             if ln.strip() and not re.match(r'^(boot_|memory, |global, |program counter, |stack, |'
                                           r'page_count|imageDir|Opt\.)', ln)]
    return lines[-1].strip()[:300] if lines else '(no stderr)'


def _crashed(o: Outcome) -> bool:
    """Killed by a signal other than the SIGINT it was sent, or aborted."""
    return o.exit_code is not None and o.exit_code < 0 and o.exit_code != -2


def _load_error(o: Outcome) -> bool:
    err = (o.stderr + o.stdout).decode('utf-8', 'replace').lower()
    return any(s in err for s in ('load', 'unsupported', 'invalid opcode', 'validation'))


# ------------------------------------------------------------ reproducers

def write_commands(dest: Path, root: Path, steps: list, case: Case, prog: Program):
    """commands.sh: the case's exact commands ((role, Step) pairs, run from
    `root`), written to run from the reproducer folder `dest`."""
    env = ''.join(f'export {k}={shlex.quote(os.environ[k])}\n' for k in RECORDED_ENV if k in os.environ)
    lines = ['#!/bin/sh',
             f'# {prog.name}: checkpoint on {case.src} ({case.point}), restore on {case.tgt}',
             '# ck/mv/rs.{out,err,rc}: stdout, stderr and exit status of the checkpointed run, '
             'the image move/translation and the restored run',
             'cd "$(dirname "$0")"',
             f'export PYTHONPATH={shlex.quote(os.environ.get("PYTHONPATH", str(Path(__file__).resolve().parent.parent)))}',
             env.rstrip('\n')]
    for role, step in steps:
        line = step.shell(root)
        if role in OUTPUTS:
            line += ' > {0}.out 2> {0}.err; echo $? > {0}.rc'.format(OUTPUTS[role])
        lines.append(line)
    text = '\n'.join(ln for ln in lines if ln) + '\n'
    (dest / 'commands.sh').write_text(text)
    (dest / 'commands.sh').chmod(0o755)
    (dest / 'case.json').write_text(json.dumps(asdict(case), indent=1) + '\n')


def replay(directory: Path) -> int:
    """Run a reproducer's commands.sh again; 1 when the mismatch reproduces."""
    directory = Path(directory)
    if not (directory / 'commands.sh').is_file():
        raise UsageError(f'{directory}: no commands.sh (not a reproducer of python -m forks matrix)')
    exp = json.loads((directory / 'expected.json').read_text())
    case = json.loads((directory / 'case.json').read_text())
    for part in OUTPUTS.values():
        for ext in ('out', 'err', 'rc'):
            (directory / f'{part}.{ext}').unlink(missing_ok=True)
    r = execute(Step(['sh', str(directory / 'commands.sh')], directory, timeout=3600))

    def outcome(part):
        if not (directory / f'{part}.rc').is_file():
            return None
        rc = int((directory / f'{part}.rc').read_text().strip() or 0)
        return Outcome((directory / f'{part}.out').read_bytes(), (directory / f'{part}.err').read_bytes(),
                       -(rc - 128) if rc > 128 else rc, 0.0)   # the shell's 128+N: signal N
    ck, mv, rs = outcome('ck'), outcome('mv'), outcome('rs')
    if ck is None:
        print(f'commands.sh failed before the checkpoint ({_status(r)}): {_last_line(r.stderr)}')
        return 1
    if _crashed(ck):
        print(f'mismatch reproduces: the checkpoint crashed again ({_status(ck)})')
        return 1
    if mv is not None and mv.exit_code != 0:
        print(f'mismatch reproduces: {case["steps"][2] if len(case["steps"]) > 2 else "the move"} '
              f'failed again: {_last_line(mv.stderr)}')
        return 1
    if rs is None:
        print('no restore ran (the checkpoint wrote no images this time?)')
        return 1
    prog = Program(case['program'], directory / 'ck' / exp['module'], invoke=exp['invoke'],
                   results=tuple(exp['results']), mask=exp['mask'], preopen=exp['preopen'])
    obs = observe(prog, ck.stdout, rs, directory / 'ck')
    diff = obs.differences(Observation(**exp['program']), bool(prog.invoke))
    if diff:
        crash = [f'the restore crashed ({_status(rs)})'] if _crashed(rs) else []
        print('mismatch reproduces:\n  ' + '\n  '.join(crash + diff))
        return 1
    print('no mismatch this time (the run matched the uninterrupted one'
          + (f'; stdout held {", ".join(obs.noise)})' if obs.noise else ')'))
    return 0


# ------------------------------------------------------------ command line

def parse_routes(texts, names) -> list:
    if not texts:
        return [(s, t) for s in names for t in names]
    out = []
    for t in texts:
        s, _, g = t.partition(':')
        if s not in RUNTIMES or g not in RUNTIMES:
            raise UsageError(f'bad route {t!r}: write SRC:TGT with SRC, TGT in {", ".join(RUNTIMES)}')
        out.append((s, g))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog='python -m forks matrix', description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', default='forks-out', help='output folder (default forks-out)')
    ap.add_argument('--forks', metavar='DIR', help='folder of the fork archives (default ../shared/forks)')
    ap.add_argument('--points', type=int, default=3, help='checkpoints per route and program (default 3)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--programs', nargs='*', metavar='NAME',
                    help='only these programs ("gen": the generated modules)')
    ap.add_argument('--routes', nargs='*', metavar='SRC:TGT', help='only these routes (default all 16)')
    ap.add_argument('--runtimes', nargs='*', default=list(RUNTIMES), metavar='NAME')
    ap.add_argument('--generated', type=int, default=3, help='generated modules (default 3)')
    ap.add_argument('--sqlite', action='store_true', help='add sqlite-bench (long: hours on one core)')
    ap.add_argument('--quick', action='store_true', help='short matrix for CI: 1 point per route, '
                    'programs ' + ', '.join(QUICK_PROGRAMS) + ' (one generated module)')
    ap.add_argument('--keep', action='store_true', help='keep the work folders of passing cases')
    ap.add_argument('--known', default=str(KNOWN_DEFECTS), metavar='FILE',
                    help='documented fork defects whose failures do not fail the run '
                    '(default forks/known_defects.json; /dev/null-like empty list: {"defects": []})')
    ap.add_argument('--engine', metavar='DIR', help='checkout of the project whose engine to test '
                    '(default: the one on PYTHONPATH; also $WASM_MIGRATE_ENGINE)')
    a = ap.parse_args(argv)
    try:
        if a.quick:
            a.points, a.generated = 1, min(a.generated, 1)
            a.programs = a.programs or list(QUICK_PROGRAMS)
        if a.engine:
            if not (Path(a.engine) / 'engine' / '__main__.py').is_file():
                raise UsageError(f'--engine {a.engine}: not a checkout of the project (no engine/)')
            os.environ['WASM_MIGRATE_ENGINE'] = str(Path(a.engine).resolve())
        for n in a.runtimes:
            if n not in RUNTIMES:
                raise UsageError(f'unknown runtime {n!r}; choose from {", ".join(RUNTIMES)}')
        routes = parse_routes(a.routes, a.runtimes)
        rts = runtimes(sorted({n for r in routes for n in r} | set(a.runtimes),
                          key=RUNTIMES.index), a.forks)
        out = Path(a.out).resolve()
        out.mkdir(parents=True, exist_ok=True)
        cache = cache_root()
        programs = progs.authors_programs(a.forks, sqlite=a.sqlite)
        cprogs, why = progs.c_programs(cache / 'c-programs')
        if why:
            print(f'note: C programs skipped: {why}')
        programs += cprogs + progs.wat_programs(cache / 'wat-programs')
        programs += progs.generated_programs(out / 'generated', a.generated, a.seed)
        if a.programs:
            unknown = set(a.programs) - {p.name for p in programs} - {'gen'}
            if unknown:
                raise UsageError(f'unknown program {sorted(unknown)[0]!r}; have '
                                 + ', '.join(p.name for p in programs))
            programs = [p for p in programs if p.name in a.programs or
                        (p.name.startswith('gen-') and 'gen' in a.programs)]
        for n, r in rts.items():
            if isinstance(r, str):
                print(f'note: {n}: {r}')
        try:
            known = json.loads(Path(a.known).read_text())['defects']
        except (OSError, ValueError, KeyError) as e:
            raise UsageError(f'--known {a.known}: not a known-defects list ({e})')
        m = Matrix(out, rts, a.points, a.seed, known=known)
        expect = {k: v for k, v in progs.expect_images(a.forks).items()
                  if k != 'sqlite-bench' or a.sqlite}
        m.run(programs, routes, expect=expect)
        doc = m.report(routes)
    except (UsageError, progs.ProgramError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print()
    print(markdown(doc))
    print(f'written: {out / "matrix.md"}, {out / "matrix.json"}')
    bad = doc['totals']['fail'] + sum(r['verdict'] == 'fail' for r in doc['images']) + \
        sum('differ' in v for v in doc['uninterrupted'].values())
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
