"""``python -m engine``: run a module, stop it at an instruction, save the
state as image files, translate images between the runtime models and the
runtime-neutral form (``neutral.json``), restore either in any model and
inspect them.

Every user error (missing file, malformed module, bad argument, broken or
mismatched images) ends with one line on stderr and exit status 2; a Wasm
trap ends with status 1 and the trap message.
"""

import argparse
import importlib
import os
import sys
import time

from . import embedding
from .migrate import images as im
from . import limits as L
from .errors import Trap, WasmError


class _Later:
    """A module imported at its first use, so that a command loads only what
    it needs: ``run`` no WASI for a module without WASI imports, no
    checkpoint code for a run that saves nothing, never the .wast grammar."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        return getattr(importlib.import_module(f'{__package__}.{self._name}'), attr)


checkpoint, fork_images, neutral, wasi_mod, wasi_state, tr = (
    _Later(m) for m in ('migrate.checkpoint', 'migrate.fork_images', 'migrate.neutral',
                        'wasi.preview1', 'wasi.state', 'migrate.translate'))
WASI_MODULE = 'wasi_snapshot_preview1'      # engine.wasi.preview1.MODULE, known without importing WASI


def imports_wasi(module):
    return any(imp.module == WASI_MODULE for imp in module.imports)

MODULE_FILE = 'module.wasm'     # the image directory carries its module
NONE = im.NONE


class UsageError(Exception):
    pass


# ------------------------------------------------------------ values

def parse_arg(t, text):
    """A command-line argument as a value of type ``t``: integers in
    decimal or 0x hex (signed or unsigned), floats as decimal/hex/inf/nan
    literals or raw bits ``bits:0x…``, v128 as 0x + 32 hex digits, refs as
    ``null`` or a number (function index / extern handle)."""
    from .literals import LiteralError, parse_float, parse_int
    try:
        if t in ('i32', 'i64'):
            return parse_int(text, int(t[1:]))
        if t in ('f32', 'f64'):
            if text.startswith('bits:'):
                return parse_int(text[5:], int(t[1:]))
            return parse_float(text, int(t[1:]))
        if t == 'v128':
            return parse_int(text, 128)
        if text == 'null':
            return None
        n = parse_int(text, 32)
        from .syntax import ExternRef, value_class
        return n if value_class(t) == 'funcref' else ExternRef(n)
    except LiteralError as e:
        raise UsageError(f'argument {text!r} is not a valid {t}: {e}')


def show_value(t, v):
    if v is None:
        return f'{t}:null'
    from .syntax import value_class
    if value_class(t) != t:             # a 3.0 typed reference: shown as its 2.0 class
        t = value_class(t)
    if t == 'externref':
        if isinstance(v.value, int):
            return f'externref:{v.value}'
        return f'externref:extern of {show_value("anyref", v.value)[7:]}'
    if t == 'anyref':               # module level: a heap object, an i31 or a host reference
        kind = getattr(v, 'kind', None) or getattr(v, 'ref_kind', '?')
        if kind in ('struct', 'array'):
            return f'anyref:{kind} of type {v.typeidx} ({len(v.fields)} fields)'
        return f'anyref:{kind} {v.value}'
    if t in ('f32', 'f64'):
        import struct
        f = struct.unpack('<f' if t == 'f32' else '<d',
                          v.to_bytes(4 if t == 'f32' else 8, 'little'))[0]
        return f'{t}:{f!r} (bits 0x{v:0{8 if t == "f32" else 16}x})'
    if t == 'v128':
        return f'v128:0x{v:032x}'
    if t == 'funcref':
        return f'funcref:{v}'
    if t == 'exnref':               # a caught exception: its tag (store address) and fields
        return f'exnref:tag {v.tag} ({" ".join(map(str, v.fields))})'
    signed = v - (1 << int(t[1:])) if v >> (int(t[1:]) - 1) else v
    return f'{t}:{signed}' if signed == v else f'{t}:{v} ({signed})'


# ------------------------------------------------------------ module loading

def read_module(path, limits=None):
    try:
        (limits or L.DEFAULT).check('max_module_bytes', os.path.getsize(path),
                                    f'{path}: module size in bytes')
        with open(path, 'rb') as f:
            return f.read()
    except OSError as e:
        raise UsageError(f'{path}: cannot read module: {e.strerror}')


def decode(data, path, limits=None):
    """Decode and validate, naming the file in the error."""
    try:
        module = embedding.module_decode(data, limits)
        embedding.module_validate(module)
        return module
    except WasmError as e:          # name the file: the message only gives the byte
        raise UsageError(f'{path}: {e}') from None


def instantiate(store, data, path, run_start=True, wasi=None, module=None):
    """Decode (unless ``module`` is the decoded ``data``), validate and
    instantiate with the spectest host module and WASI preview 1 (``wasi``,
    a ``wasi.Wasi``; a default one when the module imports WASI and none is
    given) as the import sources.  Every import that cannot be provided is
    listed in one error."""
    module = module or decode(data, path, store.limits)
    spectest, wasi_funcs = None, None
    problems = [f'{imp.module}.{imp.name}: {why}' for imp, why in
                (wasi_mod.missing_imports(module) if imports_wasi(module) else ())]
    externvals = []
    for imp in module.imports:
        if imp.module == 'spectest':
            if spectest is None:
                spectest = embedding.spectest_instance(store)
            if imp.name not in spectest.exports:
                problems.append(f'spectest.{imp.name}: unknown import')
            else:
                externvals.append(spectest.exports[imp.name])
        elif imp.module == WASI_MODULE:
            if wasi is None:
                wasi = wasi_mod.Wasi(wasi_mod.WasiConfig(args=[str(path)]))
            if wasi_funcs is None:
                wasi_funcs = wasi.imports(store)
            externvals.append(wasi_funcs.get(imp.name))
        else:
            problems.append(f'{imp.module}.{imp.name}: unknown import (only "spectest" and '
                            f'"{WASI_MODULE}" imports can be provided)')
    if problems:
        raise UsageError(f'{path}: {len(problems)} import{"s" if len(problems) > 1 else ""} '
                         f'cannot be provided: ' + '; '.join(problems))
    try:
        inst = embedding.module_instantiate(store, module, externvals,
                                            run_start=run_start and wasi_funcs is None)
    except L.LimitError as e:       # sizes the module declares: name the file
        raise UsageError(f'{path}: {e}') from None
    if wasi_funcs is not None:
        wasi.bind(store, inst)
        if run_start and module.start is not None:
            store.invoke(inst.funcaddrs[module.start], [])
    return inst


def entry_of(inst, name, path):
    kind, addr = inst.exports.get(name, (None, None))
    if kind != 'func':
        funcs = sorted(n for n, (k, _) in inst.exports.items() if k == 'func')
        raise UsageError(f'{path}: no exported function {name!r} (exported: {", ".join(funcs) or "none"})')
    return addr


# ------------------------------------------------------------ running

def drive(ex, checkpoint_at=None, trigger=None, chunk=10000, limits=None, progress=False,
          inst=None):
    """Run until finished, or until ``checkpoint_at`` instructions have
    executed, or until the trigger file appears (checked every ``chunk``
    instructions), within ``limits`` (step budget, timeout); ``progress``
    prints the instruction count to stderr about once a second.  Returns
    True when the run finished; a trap is re-raised with its location."""
    started = last = time.monotonic()
    first = ex.steps

    def poll():
        nonlocal last
        if progress and time.monotonic() - last >= 1:
            last = time.monotonic()
            done = ex.steps - first
            print(f'# {ex.steps} instructions, {last - started:.0f}s, '
                  f'{done / max(last - started, 1e-9) / 1e6:.2f}M/s', file=sys.stderr, flush=True)
        return trigger is not None and os.path.exists(trigger)
    polled = trigger is not None or progress
    try:
        return L.run_bounded(ex, limits, checkpoint_at, poll if polled else None,
                             chunk if polled else L.CHUNK)
    except wasi_mod.WasiExit:
        raise
    except Trap as e:
        if inst is not None:
            e.where = ', '.join(x for x in (e.where, trap_location(ex, inst)) if x)
        raise


def trap_location(ex, inst):
    """Where a run trapped: function index, the trapping instruction in both
    PC units (instruction index and byte offset), and the instruction count
    (the trapping instruction included)."""
    addr = ex.func
    if addr is None or addr not in inst.funcaddrs:
        return f'after {ex.steps} instructions'
    fidx = inst.funcaddrs.index(addr)
    nimp = len(inst.module.imported('func'))
    if fidx < nimp:
        return f'in imported function {fidx}, after {ex.steps} instructions'
    body = inst.module.funcs[fidx - nimp].body
    if ex.model == 'wamr':     # PC: the byte after the instruction
        index = next((i for i, ins in enumerate(body) if ins.end == ex.pc), None)
    else:                                               # PC: the index after the instruction
        index = ex.pc - 1 if 0 < ex.pc <= len(body) else None
    if index is None:
        return f'in function {fidx}, after {ex.steps} instructions'
    return (f'in function {fidx} at instruction {index} ({body[index].op}), byte offset '
            f'{body[index].offset}, instruction count {ex.steps}')


def finish(ex, results_types, started, quiet=False):
    """Print the results (and, unless ``quiet`` as for a WASI command whose
    stderr is the guest's, the step count)."""
    results = ex.results or []
    for t, v in zip(results_types, results):
        print(show_value(t, v))
    if not quiet:
        print(f'# {ex.steps} instructions, {time.time() - started:.3f}s', file=sys.stderr)
    return 0


def stop_and_save(ex, inst, data, entry, result_types, out, wasi=None, fork_base=None,
                  frames='per-file'):
    """Save the stopped run: the project's layout (``frames``: its frames
    one file each or all in one), or with ``fork_base`` (called only now,
    for a fresh (store, instance) of the module: the "as instantiated"
    baseline) the fork's own layout, which holds no WASI state, no module
    and no entry (docs/images.md)."""
    images = checkpoint.save(ex, inst, im.module_sha256(data), entry, result_types)
    if fork_base is None:
        im.write_images(images, out, extra=dict({MODULE_FILE: data}, **wasi_files(wasi)),
                        frames=frames)
        what = f'{images.runtime} images'
    else:
        fork_images.write_fork_images(images, out, *fork_base())
        what = f'{images.runtime} fork images'
    print(f'checkpoint after {ex.steps} instructions: {what} in {out} '
          f'(function {images.pc[0]}, offset {images.pc[1]}, {len(images.frames)} frames)',
          file=sys.stderr if wasi is not None and wasi.bound else sys.stdout)  # stdout: the guest's
    return 0


def fresh_instance(runtime, data, path, stubs=False, wasi=None, limits=None, module=None,
                   tier='interp'):
    """A new instance of the module, start function not run: the "as
    instantiated" state the forks' image sets leave implicit.  ``stubs``
    (for reading and translating, which run nothing): imported functions
    the host cannot provide become functions that trap when called."""
    store = embedding.store_init(runtime, limits, tier)
    try:
        return store, instantiate(store, data, path, run_start=False, wasi=wasi, module=module)
    except UsageError:
        if not stubs:
            raise
    module = embedding.module_decode(data)
    externvals = []
    for imp in module.imports:
        if imp.kind != 'func':
            raise UsageError(f'{path}: import {imp.module}.{imp.name}: unknown import')
        externvals.append(('func', stub_function(store, module, imp)))
    return store, embedding.module_instantiate(store, module, externvals, run_start=False)


def stub_function(store, module, imp):
    from .runtime import alloc_hostfunc

    def missing(args):
        raise Trap(f'host function {imp.module}.{imp.name} is not available here')
    return alloc_hostfunc(store, module.types[imp.desc], missing)


def load_fork(a, runtime, stubs=False, wasi=None, data=None, module=None):
    """A fork's image directory (``--format fork --from R --module M``) as
    (ImageSet of model R, module bytes, store, fresh instance); ``data`` and
    ``module``: the module already read and decoded."""
    if not a.source:
        raise UsageError('--format fork needs --from wasmedge|wamr: the files do not say which '
                         'fork wrote them')
    if not a.module:
        raise UsageError('--format fork needs --module app.wasm: the forks do not store the module')
    limits = L.from_arguments(a)
    data = data if data is not None else read_module(a.module, limits)
    store, inst = fresh_instance(runtime, data, a.module, stubs, wasi, limits, module,
                                 getattr(a, 'tier', 'interp'))
    images = fork_images.read_fork_images(a.images, a.source, data, store, inst,
                                          entry=getattr(a, 'invoke', None) or '_start')
    return images, data, store, inst


def add_tier(parser):
    from .runtime import TIERS
    parser.add_argument('--tier', choices=TIERS, default='fast',
                        help='execution tier of either model: the interpreter or the compiled '
                        'tier (same stops, counts and traps) (default: fast)')


def cmd_run(a):
    limits = L.from_arguments(a)
    data = read_module(a.module, limits)
    store = embedding.store_init(a.runtime, limits, a.tier)
    module = decode(data, a.module, limits)
    wasi = (wasi_of_options(a, [a.module] + a.guest_args)
            if imports_wasi(module) or a.dir or a.env or a.deterministic else None)
    inst = instantiate(store, data, a.module, wasi=wasi, module=module)
    entry = a.invoke or '_start'
    if a.invoke is None and inst.exports.get('_start', (None,))[0] != 'func':
        raise UsageError(f'{a.module}: no --invoke EXPORT given and the module exports no '
                         f'"_start" function to run as a WASI command')
    if a.invoke is not None and a.guest_args:
        raise UsageError('arguments after "--" are for a WASI command\'s _start; '
                         'give --invoke\'s arguments with --args')
    addr = entry_of(inst, entry, a.module)
    ftype = store.funcs[addr].type
    if len(a.args) != len(ftype.params):
        raise UsageError(f'{entry} takes {len(ftype.params)} arguments '
                         f'({" ".join(ftype.params) or "none"}), got {len(a.args)}')
    args = [parse_arg(t, s) for t, s in zip(ftype.params, a.args)]
    if a.dispatch_limit is not None:
        a.checkpoint_at = dispatch_limit_steps(a, inst)
    wants_images = a.checkpoint_at is not None or a.trigger is not None
    if wants_images and not a.images:
        raise UsageError('--checkpoint-at/--trigger need --images DIR to write to')
    if wants_images:
        check_out(a.images)
    fork_base = (lambda: fresh_instance(a.runtime, data, a.module)) if a.format == 'fork' else None
    ex = store.new_executor()
    started = time.time()
    ex.start(addr, args)
    try:
        finished = drive(ex, a.checkpoint_at, a.trigger, limits=limits, progress=a.progress,
                         inst=inst)
        if not finished and a.dispatch_limit is not None and ex.steps != a.checkpoint_at:
            print(f'--dispatch-limit {a.dispatch_limit} falls on the else a false if skips: '
                  f'the WasmEdge fork never dumps there and runs on (docs/fork-findings.md, F6); '
                  f'no images written', file=sys.stderr)
            wants_images = False
            finished = drive(ex, limits=limits, progress=a.progress, inst=inst)
    except wasi_mod.WasiExit as e:
        return e.code
    if finished:
        if wants_images:
            print(f'run finished after {ex.steps} instructions, before any checkpoint; '
                  f'no images written', file=sys.stderr)
        return finish(ex, ftype.results, started, quiet=a.invoke is None)
    return stop_and_save(ex, inst, data, entry, list(ftype.results), a.images, wasi, fork_base,
                         frames_layout(a))


def dispatch_limit_steps(a, inst):
    """Our step count at which the WasmEdge fork's ``--dispatch-limit N``
    dumps: its counter also counts the instantiation's constant
    expressions."""
    if a.runtime != 'wasmedge':
        raise UsageError('--dispatch-limit counts like the WasmEdge fork; use it with --runtime wasmedge')
    before = fork_images.wasmedge_instantiation_count(inst.module)
    if a.dispatch_limit <= before:
        raise UsageError(f'--dispatch-limit {a.dispatch_limit}: WasmEdge counts {before} instructions '
                         f'while instantiating this module, and its dump there crashes '
                         f'(docs/fork-findings.md, F5); choose a limit above {before}')
    return a.dispatch_limit - before


# ------------------------------------------------------------ WASI options

def add_wasi_options(p, restoring=False):
    """The WASI command options shared by ``run`` and ``restore``."""
    g = p.add_argument_group('WASI' + (' (must match the saved state, except --dir)'
                                       if restoring else ''))
    g.add_argument('--dir', action='append', default=[], metavar='HOST[::GUEST]',
                   help='grant a host directory to the guest (under the name GUEST)'
                   + ('; remaps a saved preopen with the same GUEST name' if restoring else ''))
    g.add_argument('--env', action='append', default=[], metavar='K=V',
                   help='environment variable for the guest')
    g.add_argument('--deterministic', action='store_true',
                   help='fixed clock start (+1 ms per read) and seeded random_get')
    g.add_argument('--seed', type=int, default=0, help='random_get seed in --deterministic mode')
    g.add_argument('--', dest='guest_args', metavar='ARG', nargs='*', default=[],
                   help='everything after "--" is the WASI command\'s arguments '
                   '(argv[0] is the module path as given, as in wasmtime and the forks)')


def wasi_options(a):
    """(dirs, env) from the command line, checked."""
    dirs = []
    for spec in a.dir:
        host, guest = wasi_mod.parse_dir(spec)
        if not os.path.isdir(host):
            raise UsageError(f'--dir {spec}: {host} is not a directory')
        if not guest:
            raise UsageError(f'--dir {spec}: empty guest name')
        dirs.append((host, guest))
    env = []
    for kv in a.env:
        k, sep, v = kv.partition('=')
        if not sep or not k:
            raise UsageError(f'--env {kv}: expected KEY=VALUE')
        env.append((k, v))
    return dirs, env


def wasi_files(wasi):
    """The WASI state file for an image directory (none without WASI)."""
    if wasi is None or not wasi.bound:
        return {}
    return {wasi_state.FILE: wasi_state.encode(wasi_state.capture(wasi))}


def wasi_of_saved(a, directory):
    """The WASI host module continuing the state saved in ``directory``
    (None when it holds none).  --dir remaps saved preopens by guest name;
    the other WASI options must agree with the saved state."""
    doc = wasi_state.read(directory)
    if doc is None:
        if a.dir or a.env or a.deterministic or a.guest_args:
            raise UsageError(f'{directory}: WASI options given but the directory holds no '
                             f'{wasi_state.FILE} (a run without WASI state)')
        return None
    dirs, env = wasi_options(a)
    for what, given, saved in (('--env', [f'{k}={v}' for k, v in env], doc['env']),
                               ('arguments after --', a.guest_args, doc['args'][1:]),
                               ('--deterministic', a.deterministic, doc['deterministic']),
                               ('--seed', a.seed, doc['seed'])):
        if given and given != saved:
            raise UsageError(f'{what}: differs from the saved WASI state in '
                             f'{wasi_state.FILE} ({saved!r}); a restored run keeps it')
    return wasi_state.restore(doc, dirs)


def wasi_of_options(a, argv):
    dirs, env = wasi_options(a)
    return wasi_mod.Wasi(wasi_mod.WasiConfig(argv, env, dirs, deterministic=a.deterministic,
                                             seed=a.seed))


def check_out(directory):
    """Refuse an output path that is not an image directory: writing the set
    replaces it whole, so a file or another folder there would be lost."""
    if not os.path.lexists(directory):
        return
    if not os.path.isdir(directory):
        raise UsageError(f'{directory}: exists and is not a directory; not overwriting it')
    if os.listdir(directory) and not any(os.path.exists(os.path.join(directory, name))
                                         for name in ('manifest.json', neutral.FILE,
                                                      'program_counter.img')):
        raise UsageError(f'{directory}: not empty and not an image directory (no manifest.json '
                         f'or {neutral.FILE}); not overwriting it')


def load_dir(directory, module_path=None, limits=None):
    images = im.read_images(directory, limits)
    path = module_path or os.path.join(directory, MODULE_FILE)
    data = read_module(path, limits)
    im.check_module(images, data)
    return images, data, path


def load_any(directory, module_path=None, limits=None):
    """An image directory (-> ImageSet) or a neutral one (-> its checked
    header; the rest is checked once the module is instantiated)."""
    if not neutral.is_neutral_dir(directory):
        return load_dir(directory, module_path, limits)
    doc = neutral.read_document(directory)
    path = module_path or os.path.join(directory, MODULE_FILE)
    data = read_module(path, limits)
    neutral.check_module(doc, im.module_sha256(data))
    return doc, data, path


def snapshot_of(src, inst, limits=None):
    """The neutral snapshot of an image set or a neutral document, sizes
    checked against ``limits`` before anything is built."""
    if isinstance(src, im.ImageSet):
        return tr.snapshot_from_images(src, inst.module, inst.info, limits)
    return neutral.snapshot_from_document(src, inst.module, inst.info, limits)


def describe(src):
    return f'{src.runtime} images' if isinstance(src, im.ImageSet) else 'neutral snapshot'


def resume(directory, runtime=None, module_path=None, wasi=None, limits=None, tier='interp'):
    """A stopped run (image or neutral directory) loaded into a fresh
    instance of ``runtime`` (default: the images'), with ``wasi`` as its
    WASI host module: (executor, instance, module bytes, image set or
    neutral snapshot: its ``entry`` and ``results``)."""
    images, data, path = load_any(directory, module_path, limits)
    if not isinstance(images, im.ImageSet) and not runtime:
        raise UsageError(f'{directory}: a neutral snapshot follows no runtime model; '
                         f'choose one with --runtime {"|".join(im.RUNTIMES)}')
    runtime = runtime or images.runtime
    store = embedding.store_init(runtime, limits, tier)
    inst = instantiate(store, data, path, run_start=False, wasi=wasi)
    if not isinstance(images, im.ImageSet):     # neutral: its snapshot, read once
        snap = snapshot_of(images, inst, limits)
        return (checkpoint.restore_snapshot(store, inst, snap, runtime, im.module_sha256(data)),
                inst, data, snap)
    return checkpoint.restore(store, inst, images, runtime), inst, data, images


def cmd_restore(a):
    if (a.checkpoint_at is not None or a.trigger is not None) and not a.out:
        raise UsageError('--checkpoint-at/--trigger need --out DIR to write to')
    if a.out:
        check_out(a.out)
    if a.format == 'fork':
        return restore_fork(a)
    wasi = wasi_of_saved(a, a.images)
    ex, inst, data, images = resume(a.images, a.runtime, a.module, wasi, L.from_arguments(a),
                                    a.tier)
    return continue_run(a, ex, inst, data, images, wasi)


def continue_run(a, ex, inst, data, images, wasi, fork_base=None):
    """Run a restored executor to the end or to the next checkpoint
    (written in the fork's layout when ``fork_base``, see stop_and_save,
    is given)."""
    if a.checkpoint_at is not None and a.checkpoint_at <= ex.steps:
        raise UsageError(f'--checkpoint-at {a.checkpoint_at}: the images already stand after '
                         f'{ex.steps} instructions; N counts from the start of the run, so '
                         f'choose N > {ex.steps}')
    started = time.time()
    try:
        finished = drive(ex, a.checkpoint_at, a.trigger, limits=L.from_arguments(a),
                         progress=a.progress, inst=inst)
    except wasi_mod.WasiExit as e:
        return e.code
    if finished:
        return finish(ex, images.results, started, quiet=wasi is not None)
    return stop_and_save(ex, inst, data, images.entry, images.results, a.out, wasi, fork_base,
                         frames_layout(a))


def restore_fork(a):
    """Resume a fork's image set.  The forks save no tables, dropped
    segments or WASI state: tables and segments start as instantiated, and
    WASI starts afresh from the command line (--dir, --env, arguments after
    --), as in the fork's own restore."""
    runtime = a.runtime or a.source
    wasi = data = module = None
    if a.module and a.source:               # read and decoded once, here
        data = read_module(a.module, L.from_arguments(a))
        module = decode(data, a.module, L.from_arguments(a))
        if imports_wasi(module):
            wasi = wasi_of_options(a, [a.module] + a.guest_args)
    images, data, store, inst = load_fork(a, runtime, wasi=wasi, data=data, module=module)
    ex = checkpoint.restore(store, inst, images, runtime)
    return continue_run(a, ex, inst, data, images, wasi,
                        lambda: fresh_instance(runtime, data, a.module, stubs=True,
                                               limits=L.from_arguments(a), module=module))


def cmd_translate(a):
    check_out(a.out)
    out_format = a.out_format or a.format
    if a.format == 'fork' or out_format == 'fork':
        return translate_fork(a, out_format)
    limits = L.from_arguments(a)
    src, data, path = load_any(a.images, a.module, limits)
    store = embedding.store_init(a.to if a.to in im.RUNTIMES else im.RUNTIMES[0], limits)
    inst = instantiate(store, data, path, run_start=False)
    snap = snapshot_of(src, inst, limits)
    sha = im.module_sha256(data)
    saved = wasi_state.read(a.images)          # checked, then carried along unchanged
    carried = {MODULE_FILE: data}
    if saved is not None:
        carried[wasi_state.FILE] = wasi_state.encode(saved)
    if a.to == 'neutral':
        doc = neutral.document_from_snapshot(snap, inst.module, inst.info, sha)
        neutral.write_neutral(doc, a.out, extra=carried)
        print(f'{describe(src)} in {a.images} -> neutral snapshot in {a.out}')
    else:
        out = tr.images_from_snapshot(snap, inst.module, inst.info, a.to, sha)
        im.write_images(out, a.out, extra=carried, frames=frames_layout(a))
        print(f'{describe(src)} in {a.images} -> {a.to} images in {a.out}')
    return 0


def translate_fork(a, out_format):
    """Translations with the forks' layout on either side (no WASI state
    is carried: the forks' layout has none)."""
    to = a.to
    if out_format == 'fork' and to not in im.RUNTIMES:
        raise UsageError(f'--to {to}: the forks\' layout exists for wasmedge and wamr only '
                         f'(use --out-format project for {to})')
    work = to if to in im.RUNTIMES else (a.source or im.RUNTIMES[0])
    if a.format == 'fork':
        src, data, store, inst = load_fork(a, work, stubs=True)
        snap = tr.snapshot_from_images(src, inst.module, inst.info, L.from_arguments(a))
        what = f'{a.source} fork images'
    else:
        limits = L.from_arguments(a)
        src, data, path = load_any(a.images, a.module, limits)
        store, inst = fresh_instance(work, data, path, stubs=True, limits=limits)
        snap = snapshot_of(src, inst, limits)
        what = describe(src)
    sha = im.module_sha256(data)
    if out_format == 'fork':
        fork_images.write_fork_snapshot(snap, a.out, store, inst, to)
        print(f'{what} in {a.images} -> {to} fork images in {a.out}')
    elif to == 'neutral':
        doc = neutral.document_from_snapshot(snap, inst.module, inst.info, sha)
        neutral.write_neutral(doc, a.out, extra={MODULE_FILE: data})
        print(f'{what} in {a.images} -> neutral snapshot in {a.out}')
    else:
        out = tr.images_from_snapshot(snap, inst.module, inst.info, to, sha)
        im.write_images(out, a.out, extra={MODULE_FILE: data}, frames=frames_layout(a))
        print(f'{what} in {a.images} -> {to} images in {a.out}')
    return 0


def inspect_neutral(a):
    """Print a neutral snapshot after checking it against its module."""
    limits = L.from_arguments(a)
    doc, data, path = load_any(a.images, a.module, limits)
    store = embedding.store_init('wasmedge', limits)
    inst = instantiate(store, data, path, run_start=False)
    snap = snapshot_of(doc, inst, limits)
    print(f'format       {neutral.FORMAT} version {doc["version"]}')
    print(f'module       sha256 {doc["module_sha256"]}')
    print(f'entry        {snap.entry} -> [{" ".join(snap.results)}]')
    print_steps(snap.steps)
    body_of = lambda fidx: inst.module.funcs[fidx - len(inst.module.imported('func'))].body
    for k, (fr, raw) in enumerate(zip(snap.frames, doc['frames'])):
        op = body_of(fr.fidx)[fr.pc].op
        print(f'frames[{k}]{"":<3} function {fr.fidx}, instruction {fr.pc} ({op})')
        nloc = len(fr.locals)
        for part, ts, vs in (('locals', fr.types[:nloc], fr.locals),
                             ('operands', fr.types[nloc:], fr.stack)):
            if vs:
                print(f'             {part}: ' + ', '.join(show_value(t, v) for t, v in zip(ts, vs)))
        for lab in raw['labels']:
            at = '' if lab['instr'] is None else f' @{lab["instr"]}'
            print(f'             label {lab["kind"]}{at} arity={lab["arity"]} '
                  f'height={lab["height"]} continuation={lab["continuation"]}')
    if snap.page_count is not None:
        print(f'memory       {snap.page_count} pages, {len(doc["memory"]["chunks"])} non-zero '
              f'4 KiB chunks')
    for k, part in enumerate(snap.memories, 1):
        print(f'memory {k:<5} {part.page_count} pages, {len(part.chunks)} non-zero 4 KiB chunks')
    for k, (t, v) in enumerate(zip(snap.global_types, snap.globals)):
        print(f'global {k:<5} {show_value(t, v)}')
    for k, entries in enumerate(snap.tables):
        print(f'table {k:<6} {len(entries)} entries')
    if 'heap' in doc:
        print(f'gc heap      {len(doc["heap"])} objects, {len(doc["gc_elems"])} GC element segments')
    print_links(snap.links)
    inspect_wasi(a.images)
    return 0


def cmd_inspect(a):
    if a.format == 'fork':
        images = load_fork(a, a.source, stubs=True)[0]
        print(f'format       {a.source} fork layout (module {a.module}, entry {images.entry})')
        return print_images(images)
    if neutral.is_neutral_dir(a.images):
        return inspect_neutral(a)
    print_images(im.read_images(a.images))
    inspect_wasi(a.images)
    return 0


def print_images(images):
    print(f'runtime      {images.runtime}')
    print(f'module       sha256 {images.module_sha256}')
    print(f'entry        {images.entry} -> [{" ".join(images.results)}]')
    print_steps(images.steps)
    unit = 'instruction' if images.runtime == 'wasmedge' else 'byte offset'
    print(f'frames       {len(images.frames)}, ' + ('all in stacks.img' if images.frames_layout == 'one-file'
                                                   else 'one stack{i}.img each'))
    print(f'pc           function {images.pc[0]}, {unit} {images.pc[1]}')
    for i, fr in enumerate(images.frames, 1):
        ret = 'host' if fr.return_fidx == NONE else f'function {fr.return_fidx} @ {fr.return_offset}'
        print(f'frame {i:<6} function {fr.entry_fidx}, returns to {ret}, '
              f'{len(fr.slot_cells)} slots / {len(fr.cells)} cells')
        pos = 0
        slots = []
        for n in fr.slot_cells:
            slots.append('0x' + ''.join(f'{c:08x}' for c in reversed(fr.cells[pos:pos + n])))
            pos += n
        if slots:
            print(f'             slots: {" ".join(slots)}')
        for lab in fr.labels:
            print('             label begin={} target={} frame_sp={} cell_num={}'.format(
                *['-1' if x == NONE else x for x in lab]))
    if images.page_count is not None:
        print(f'memory       {images.page_count} pages, {len(images.memory)} non-zero 4 KiB chunks')
    for k, part in enumerate(images.memories, 1):
        print(f'memory {k:<5} {part.page_count} pages, {len(part.chunks)} non-zero 4 KiB chunks '
              f'(memory{k}.img)')
    for k, (t, cells) in enumerate(images.globals):
        print(f'global {k:<5} {t} ' + ' '.join(f'{c:08x}' for c in cells))
    for k, entries in enumerate(images.tables):
        print(f'table {k:<6} {len(entries)} entries')
    for k, (tag, cells) in enumerate(images.exceptions):     # exception.img (version 3)
        print(f'exception {k:<2} tag {tag}, fields ' + (' '.join(f'{c:08x}' for c in cells) or '-'))
    if images.heap is not None:                               # gc.img (version 4)
        objs = sum(1 for e in images.heap if len(e) == 3)
        print(f'gc heap      {len(images.heap)} entries ({objs} structs/arrays), '
              f'{len(images.gc_elems)} GC element segments (gc.img)')
        for k, e in enumerate(images.heap):
            what = f'{e[0]} of type {e[1]}, {len(e[2])} fields' if len(e) == 3 else f'{e[0]} {e[1]}'
            print(f'gc entry {k:<3} {what}')
    for frame, depth, k in images.caught:
        print(f'caught       frame {frame}, catch arm {depth}: exception {k}')
    print_links(images.links)
    return 0


def print_links(links):
    """link.img / neutral.json "links" (docs/images.md "Links"): what each
    function index past the module's names; restoring needs these peers."""
    for k, link in enumerate(links):
        print(f'link {k:<7} function {link.fidx} of instance {link.instance!r} '
              f'(function index = module functions + {k})')


def print_steps(steps):
    """The step count and why the other model's count is not shown
    (docs/images.md, "Instruction counts")."""
    print(f'steps        {steps}')
    print('counted as   instructions executed so far, each counted by the model that ran it '
          '(translation keeps the count)')
    print('other count  not derivable from a stopped state: the models count jumps of '
          'loops and if/else differently (docs/images.md, "Instruction counts"), and how many '
          'the run took is history, not state')


def inspect_wasi(directory):
    doc = wasi_state.read(directory)
    for line in wasi_state.describe(doc) if doc is not None else ():
        print(line)


def parser():
    p = argparse.ArgumentParser(prog='python -m engine', description=__doc__.split('\n\n')[0])
    sub = p.add_subparsers(dest='command', required=True)
    r = sub.add_parser('run', help='run an exported function, optionally stopping to save images')
    r.add_argument('module')
    r.add_argument('--invoke', metavar='EXPORT',
                   help='export to call (default: a WASI command\'s _start)')
    r.add_argument('--args', nargs='*', default=[], metavar='VALUE')
    r.add_argument('--runtime', choices=im.RUNTIMES, default='wasmedge')
    r.add_argument('--checkpoint-at', type=L.count, metavar='N',
                   help='stop before the (N+1)-th instruction and save images')
    r.add_argument('--trigger', metavar='FILE', help='stop and save once FILE exists')
    r.add_argument('--images', metavar='DIR', help='where to write the images')
    r.add_argument('--format', choices=FORMATS, default='project',
                   help="image layout: the project's (default) or the forks' own (docs/images.md)")
    r.add_argument('--dispatch-limit', type=L.count, metavar='N', help='stop where the WasmEdge fork\'s '
                   '--dispatch-limit N dumps (its count includes the instantiation\'s constant '
                   'expressions); --runtime wasmedge')
    add_wasi_options(r)
    add_frames_option(r)
    r.add_argument('--progress', action='store_true', help='print the instruction count every second')
    add_tier(r)
    L.add_arguments(r)
    r.set_defaults(fn=cmd_run)
    s = sub.add_parser('restore', help='resume a run from images (translating if needed)')
    s.add_argument('images', metavar='DIR')
    s.add_argument('--runtime', choices=im.RUNTIMES, help='model to resume in (default: the images\')')
    s.add_argument('--module', help=f'module file (default: DIR/{MODULE_FILE})')
    s.add_argument('--checkpoint-at', type=L.count, metavar='N',
                   help='stop again after N instructions in total (more than the images hold)')
    s.add_argument('--trigger', metavar='FILE')
    s.add_argument('--out', metavar='DIR', help='where to write the next images')
    add_wasi_options(s, restoring=True)
    fork_args(s)
    add_frames_option(s)
    s.add_argument('--invoke', metavar='EXPORT', help='with --format fork: the export the fork ran '
                   '(default _start; its function must be the bottom frame\'s)')
    s.add_argument('--args', nargs='*', default=[], metavar='VALUE',
                   help='with --format fork: accepted like run\'s; a non-WASI export\'s '
                   'arguments live in the saved frames, so they are not used')
    s.add_argument('--progress', action='store_true', help='print the instruction count every second')
    add_tier(s)
    L.add_arguments(s)
    s.set_defaults(fn=cmd_restore)
    t = sub.add_parser('translate', help='convert images (or a neutral snapshot) to a runtime '
                       'model or to the runtime-neutral form')
    t.add_argument('images', metavar='DIR')
    t.add_argument('--to', choices=im.RUNTIMES + ('neutral',), required=True)
    t.add_argument('--out', required=True, metavar='DIR')
    t.add_argument('--module', help=f'module file (default: DIR/{MODULE_FILE})')
    fork_args(t)
    t.add_argument('--out-format', choices=FORMATS, help='layout of the output (default: --format)')
    add_frames_option(t)
    t.add_argument('--invoke', metavar='EXPORT', help='with --format fork: the export the fork ran '
                   '(default _start)')
    L.add_arguments(t, L.SIZES)
    t.set_defaults(fn=cmd_translate)
    i = sub.add_parser('inspect', help='print an image directory or a neutral snapshot')
    i.add_argument('images', metavar='DIR')
    i.add_argument('--module', help=f'module file of a neutral snapshot (default: DIR/{MODULE_FILE})')
    fork_args(i)
    i.add_argument('--invoke', metavar='EXPORT', help='with --format fork: the export the fork ran '
                   '(default _start)')
    L.add_arguments(i, L.SIZES)
    i.set_defaults(fn=cmd_inspect)
    y = sub.add_parser('typetables', help="write the forks' type-table files (tablemap_func, "
                       'tablemap_offset, type_table) for a module')
    y.add_argument('module')
    y.add_argument('--out', required=True, metavar='DIR')
    y.set_defaults(fn=cmd_typetables)
    return p


FORMATS = ('project', 'fork')


def add_frames_option(p):
    p.add_argument('--frames', choices=im.FRAME_LAYOUTS, default='per-file',
                   help="how the images written hold the frames: one stack{i}.img each (default, "
                   "the forks' layout) or all in one stacks.img (a deep stack; version 2, "
                   'docs/images.md)')


def frames_layout(a):
    """The --frames layout asked for; the forks' own layout has only one."""
    frames = getattr(a, 'frames', 'per-file')
    if frames != 'per-file' and (getattr(a, 'out_format', None) or a.format) == 'fork':
        raise UsageError("--frames one-file is a layout of the project's images; the forks' "
                         'own layout has one file per frame')
    return frames


def fork_args(p):
    p.add_argument('--format', choices=FORMATS, default='project',
                   help="layout of DIR: the project's (default) or a fork's own")
    p.add_argument('--from', dest='source', choices=im.RUNTIMES,
                   help='with --format fork: which fork wrote DIR')


def cmd_typetables(a):
    from .migrate import typetables
    data = read_module(a.module)
    try:
        module = embedding.module_decode(data)
        info = embedding.module_validate(module)
    except WasmError as e:
        raise UsageError(f'{a.module}: {e}') from None
    typetables.write(module, info, a.out)
    print(f'type tables of {a.module} in {a.out}: {", ".join(typetables.FILES)}')
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    guest_args = []
    if '--' in argv:                # a WASI command's own arguments, passed untouched
        k = argv.index('--')
        argv, guest_args = argv[:k], argv[k + 1:]
    a = parser().parse_args(argv)
    if guest_args and not hasattr(a, 'guest_args'):
        parser().error(f'{a.command} takes no arguments after "--"')
    if hasattr(a, 'guest_args'):
        a.guest_args = guest_args
    try:
        frames_layout(a)                    # refuse a bad combination before running
        return a.fn(a)
    except wasi_mod.WasiExit as e:          # proc_exit, e.g. from a start function
        return e.code
    except Trap as e:
        print(f'trap: {e}', file=sys.stderr)
        return 1
    except (UsageError, WasmError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    except OSError as e:            # e.g. the output folder cannot be written
        print(f'error: {e.filename or ""}: {e.strerror or e}', file=sys.stderr)
        return 2
