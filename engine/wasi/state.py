"""The WASI state of a stopped run: ``wasi.json`` next to the image files
(or ``neutral.json``), so a migrated WASI command continues with its files
open at the same offsets and without repeating output.

``capture(wasi)`` -> document, ``encode(doc)`` -> bytes, ``read(dir)`` /
``decode(raw)`` check every field (errors name the file and the field) and
``restore(doc, dirs, streams)`` builds a ``wasi.Wasi`` whose descriptor
table is reopened under the preopens (remapped by guest name with
``--dir``), after checking that every open file is the one the checkpoint
saw: same size and same sha256 of its content.  A hash rather than mtime,
because a migration copies the files to another machine where mtimes are
not kept, and size alone misses rewrites in place.
docs/images.md documents the fields.
"""

import hashlib
import json
import os
import stat

from ..errors import WasmError
from .preview1 import Wasi, WasiConfig
from .fs import FDFLAG_APPEND, FDFLAGS_ALL, OFLAGS_ALL, RIGHTS_ALL, STREAMS, Fd, WasiError

FILE = 'wasi.json'
FORMAT = 'wasm-migrate-wasi'
VERSION = 1
KINDS = STREAMS + ('dir', 'file')


class WasiStateError(WasmError):
    """A broken ``wasi.json``, or a restore whose files are missing or
    changed."""


# ------------------------------------------------------------ capture

def _file_digest(path):
    """(size, sha256 hex) of a file's content."""
    h, size = hashlib.sha256(), 0
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def _open_file_path(table, entry):
    """Where an open file's bytes can be read (it may be write-only): the
    descriptor itself on Linux, else its path."""
    proc = f'/proc/self/fd/{entry.host_fd}'
    return proc if os.path.exists(proc) else table.host_path(entry)


def capture(wasi: Wasi) -> dict:
    """The WASI state of a stopped run as a JSON-ready document."""
    fds = []
    for fd in sorted(wasi.table.fds):
        e = wasi.table.fds[fd]
        item = {'fd': fd, 'kind': e.kind, 'preopen': e.preopen, 'path': e.path,
                'is_preopen': e.is_preopen, 'oflags': e.oflags, 'fdflags': e.fdflags,
                'append': bool(e.fdflags & FDFLAG_APPEND), 'rights_base': e.rights_base,
                'rights_inheriting': e.rights_inheriting, 'offset': None, 'size': None,
                'sha256': None}
        if e.kind == 'file':
            item['offset'] = os.lseek(e.host_fd, 0, os.SEEK_CUR)
            item['size'], item['sha256'] = _file_digest(_open_file_path(wasi.table, e))
        fds.append(item)
    return {
        'format': FORMAT, 'version': VERSION,
        'args': list(wasi.args), 'env': list(wasi.env),
        'preopens': [{'guest': p.guest, 'host': p.host} for p in wasi.table.preopens],
        'fds': fds,
        'stdout_written': wasi.written[1], 'stderr_written': wasi.written[2],
        'deterministic': wasi.deterministic, 'seed': wasi.seed,
        'clock_ns': wasi.clock_ns, 'random_pos': wasi.random_pos,
    }


def encode(doc: dict) -> bytes:
    return json.dumps(doc, indent=2).encode() + b'\n'


# ------------------------------------------------------------ reading, checked

def _fail(where, message):
    raise WasiStateError(f'{FILE}: {where}: {message}')


def _get(obj, key, where, types, check=None, what=None):
    if key not in obj:
        _fail(where + key, 'missing')
    v = obj[key]
    types = types if isinstance(types, tuple) else (types,)
    if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
        _fail(where + key, f'expected {what or types}, got {json.dumps(v)[:40]}')
    if check is not None and v is not None and not check(v):
        _fail(where + key, f'{json.dumps(v)[:60]} is not {what}')
    return v


def _keys(obj, allowed, where):
    if not isinstance(obj, dict):
        _fail(where or 'top level', 'expected an object')
    extra = sorted(set(obj) - set(allowed))
    if extra:
        _fail(where + extra[0], 'unknown key')


TOP = ('format', 'version', 'args', 'env', 'preopens', 'fds', 'stdout_written',
       'stderr_written', 'deterministic', 'seed', 'clock_ns', 'random_pos')
FD_KEYS = ('fd', 'kind', 'preopen', 'path', 'is_preopen', 'oflags', 'fdflags', 'append',
           'rights_base', 'rights_inheriting', 'offset', 'size', 'sha256')


def _u(bits):
    return lambda v: 0 <= v < (1 << bits)


def decode(raw: bytes) -> dict:
    """Parse and check every field of a ``wasi.json``."""
    try:
        doc = json.loads(raw)
    except ValueError as e:
        _fail('top level', f'not valid JSON: {e}')
    _keys(doc, TOP, '')
    if doc.get('format') != FORMAT:
        _fail('format', f'expected {FORMAT!r}')
    if doc.get('version') != VERSION or isinstance(doc.get('version'), bool):
        _fail('version', f'{doc.get("version")!r} is not supported (this tool reads '
                         f'version {VERSION})')
    for key in ('args', 'env'):
        for k, s in enumerate(_get(doc, key, '', list, what='a list of strings')):
            if not isinstance(s, str):
                _fail(f'{key}[{k}]', 'expected a string')
    for k, s in enumerate(doc['env']):
        if '=' not in s:
            _fail(f'env[{k}]', f'{s!r} is not KEY=VALUE')
    for key in ('stdout_written', 'stderr_written', 'clock_ns', 'random_pos'):
        _get(doc, key, '', int, _u(64), 'an unsigned 64-bit integer')
    _get(doc, 'seed', '', int, lambda v: -(1 << 63) <= v < (1 << 63), 'a signed 64-bit integer')
    _get(doc, 'deterministic', '', bool, what='true or false')
    preopens = _get(doc, 'preopens', '', list, what='a list')
    guests = set()
    for k, p in enumerate(preopens):
        where = f'preopens[{k}].'
        _keys(p, ('guest', 'host'), where)
        g = _get(p, 'guest', where, str, lambda v: v != '', 'a non-empty name')
        _get(p, 'host', where, str, lambda v: v != '', 'a non-empty path')
        if g in guests:
            _fail(where + 'guest', f'{g!r} appears twice')
        guests.add(g)
    seen = set()
    for k, e in enumerate(_get(doc, 'fds', '', list, what='a list')):
        where = f'fds[{k}].'
        _keys(e, FD_KEYS, where)
        fd = _get(e, 'fd', where, int, _u(31), 'a descriptor number')
        if fd in seen:
            _fail(where + 'fd', f'{fd} appears twice')
        seen.add(fd)
        kind = _get(e, 'kind', where, str, lambda v: v in KINDS, f'one of {", ".join(KINDS)}')
        stream = kind in STREAMS
        _get(e, 'preopen', where, (int, type(None)),
             lambda v: 0 <= v < len(preopens), f'a preopen index (< {len(preopens)})')
        if (e['preopen'] is None) != stream:
            _fail(where + 'preopen', 'a stream has none, a file or directory needs one')
        path = _get(e, 'path', where, str)
        if stream and path:
            _fail(where + 'path', 'a stream has no path')
        if path and (path.startswith('/') or any(c in ('', '.', '..') for c in path.split('/'))):
            _fail(where + 'path', f'{path!r} is not a resolved relative path')
        if _get(e, 'is_preopen', where, bool) and (kind != 'dir' or path):
            _fail(where + 'is_preopen', 'only a preopened directory itself is a preopen')
        _get(e, 'oflags', where, int, lambda v: 0 <= v <= OFLAGS_ALL, 'valid open flags')
        fdflags = _get(e, 'fdflags', where, int, lambda v: 0 <= v <= FDFLAGS_ALL,
                       'valid fd flags')
        if _get(e, 'append', where, bool) != bool(fdflags & FDFLAG_APPEND):
            _fail(where + 'append', 'disagrees with fdflags')
        for key in ('rights_base', 'rights_inheriting'):
            _get(e, key, where, int, lambda v: 0 <= v <= RIGHTS_ALL, 'a set of WASI rights')
        for key in ('offset', 'size'):
            _get(e, key, where, (int, type(None)), _u(63), 'a file offset')
        _get(e, 'sha256', where, (str, type(None)),
             lambda v: len(v) == 64 and all(c in '0123456789abcdef' for c in v), 'a sha256')
        is_file = kind == 'file'
        for key in ('offset', 'size', 'sha256'):
            if (e[key] is None) == is_file:
                _fail(where + key, 'required for a file, null otherwise')
    return doc


def read(directory):
    """The checked ``wasi.json`` of an image or neutral directory, or None
    when it has none (a run without WASI)."""
    path = os.path.join(directory, FILE)
    try:
        with open(path, 'rb') as f:
            raw = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise WasiStateError(f'{FILE}: cannot read: {e.strerror}')
    return decode(raw)


# ------------------------------------------------------------ restore

def restore(doc: dict, dirs=(), stdin=None, stdout=None, stderr=None) -> Wasi:
    """A ``Wasi`` continuing the saved state.  ``dirs`` ((host, guest)
    pairs, as given with ``--dir``) remap saved preopens by guest name; the
    others keep their saved host path.  Every open file must exist with the
    saved size and hash; it is reopened (never created or truncated) at its
    saved offset."""
    remap = {}
    for host, guest in dirs:
        remap[guest] = host
    saved = {p['guest'] for p in doc['preopens']}
    unknown = sorted(set(remap) - saved)
    if unknown:
        raise WasiStateError(f'--dir {unknown[0]}: the saved run has no preopen named '
                             f'{unknown[0]!r} (it has: {", ".join(sorted(saved)) or "none"})')
    env = [tuple(s.split('=', 1)) for s in doc['env']]
    preopens = [(remap.get(p['guest'], p['host']), p['guest']) for p in doc['preopens']]
    for k, (host, guest) in enumerate(preopens):
        if not os.path.isdir(host):
            raise WasiStateError(f'{FILE}: preopens[{k}]: directory {host} (guest {guest}) '
                                 f'is missing; grant it with --dir HOST::{guest}')
    wasi = Wasi(WasiConfig(doc['args'], env, preopens, stdin, stdout, stderr,
                           deterministic=doc['deterministic'], seed=doc['seed']))
    wasi.written = [0, doc['stdout_written'], doc['stderr_written']]
    wasi.clock_ns, wasi.random_pos = doc['clock_ns'], doc['random_pos']
    table = wasi.table
    table.close_all()
    try:
        for k, e in enumerate(doc['fds']):
            table.fds[e['fd']] = _reopen(table, k, e)
    except BaseException:
        table.close_all()
        raise
    return wasi


def _reopen(table, k, e):
    from .preview1 import open_host
    where = f'{FILE}: fds[{k}] (fd {e["fd"]}'
    entry = Fd(e['kind'], e['preopen'], e['path'], e['is_preopen'], e['oflags'], e['fdflags'],
               e['rights_base'], e['rights_inheriting'])
    if e['kind'] in STREAMS:
        return entry
    pre = table.preopens[e['preopen']]
    shown = f'{pre.guest.rstrip("/")}/{e["path"]}' if e['path'] else pre.guest
    where += f', {shown})'
    try:
        rel, _ = table.resolve_in(e['preopen'], '', e['path'] or '.', False)
    except WasiError as err:
        raise WasiStateError(f'{where}: cannot be reached in {pre.host}: {err}')
    if rel != e['path']:
        raise WasiStateError(f'{where}: path now leads elsewhere ({rel!r}) in {pre.host}')
    host = table.host_path(entry)
    try:
        st = os.stat(host, follow_symlinks=False)
    except FileNotFoundError:
        raise WasiStateError(f'{where}: {host} is missing; the checkpoint had it open')
    if e['kind'] == 'dir':
        if not stat.S_ISDIR(st.st_mode):
            raise WasiStateError(f'{where}: {host} is no longer a directory')
        return entry
    if not stat.S_ISREG(st.st_mode):
        raise WasiStateError(f'{where}: {host} is no longer a regular file')
    try:
        size, digest = _file_digest(host)
        host_fd = open_host(host, e['rights_base'], e['oflags'], e['fdflags'], creating=False)
    except OSError as err:
        raise WasiStateError(f'{where}: cannot reopen {host}: {err.strerror}')
    if (size, digest) != (e['size'], e['sha256']):
        os.close(host_fd)
        what = f'size {size}, expected {e["size"]}' if size != e['size'] else 'content differs'
        raise WasiStateError(f'{where}: {host} changed since the checkpoint ({what}; '
                             f'sha256 {digest[:16]}…, expected {e["sha256"][:16]}…)')
    os.lseek(host_fd, e['offset'], os.SEEK_SET)
    entry.host_fd = host_fd
    return entry


def describe(doc):
    """Lines for ``inspect``."""
    lines = [f'wasi         args {json.dumps(doc["args"])}, {len(doc["env"])} environment '
             f'variables, stdout {doc["stdout_written"]} bytes, stderr '
             f'{doc["stderr_written"]} bytes written'
             + (f', deterministic (seed {doc["seed"]})' if doc['deterministic'] else '')]
    for k, p in enumerate(doc['preopens']):
        lines.append(f'preopen {k:<4} {p["guest"]} <- {p["host"]}')
    for e in doc['fds']:
        extra = ''
        if e['kind'] == 'file':
            extra = f' offset {e["offset"]} of {e["size"]} bytes' + (' append' if e['append'] else '')
        where = '' if e['preopen'] is None else f' preopen {e["preopen"]} path {e["path"] or "."}'
        lines.append(f'fd {e["fd"]:<8} {e["kind"]}{where}{extra}')
    return lines

