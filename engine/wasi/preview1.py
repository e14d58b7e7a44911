"""The ``wasi_snapshot_preview1`` host module (WASI preview 1).

``WasiConfig`` says what the guest gets (arguments, environment, granted
directories, standard streams, deterministic clock and random);
``Wasi(config)`` is one running instance of the host module: ``imports(store)``
allocates its functions in a store, ``bind(store, inst)`` attaches the
guest's exported memory after instantiation.

Every function follows the host-function convention of ``runtime.FuncInst``
(a list of argument values in, a list of results out) and is one call
instruction for the executors, so a checkpoint never lands inside it.  A
failing call returns the spec's errno (``wasi_fs.ERRNO``); a pointer or
length outside the guest's memory gives ``EFAULT``; nothing the guest passes
raises a Python exception past the call.  ``proc_exit`` raises ``WasiExit``,
a ``Trap`` subclass, so both executors stop the run cleanly (step count and
PC recorded) and the embedder reads the exit code from it.
"""

import hashlib
import os
import stat
import struct
import sys
import time

from .. import syntax as S
from ..errors import Trap
from .fs import (
    EBADF,
    EFAULT,
    EINVAL,
    EISDIR,
    ENOTCAPABLE,
    ENOTDIR,
    ENOTSOCK,
    ENOTSUP,
    ESPIPE,
    ENAMETOOLONG,
    ERRNO,
    FDFLAG_APPEND,
    FDFLAG_DSYNC,
    FDFLAG_NONBLOCK,
    FDFLAG_RSYNC,
    FDFLAG_SYNC,
    FDFLAGS_ALL,
    FILETYPE_DIR,
    Fd,
    FdTable,
    LOOKUP_SYMLINK_FOLLOW,
    OFLAG_CREAT,
    OFLAG_DIRECTORY,
    OFLAG_EXCL,
    OFLAG_TRUNC,
    OFLAGS_ALL,
    R,
    SUCCESS,
    WasiError,
    errno_of,
    filetype_of_mode)

MODULE = 'wasi_snapshot_preview1'
DETERMINISTIC_EPOCH_NS = 1_577_836_800 * 10**9    # 2020-01-01T00:00:00Z
DETERMINISTIC_TICK_NS = 1_000_000                 # every clock read advances 1 ms
U64 = (1 << 64) - 1


class WasiExit(Trap):
    """``proc_exit(code)``: the guest ended the run with exit ``code``."""

    def __init__(self, code):
        super().__init__(f'exit with code {code}')
        self.code = code


class Fault(Exception):
    """A guest pointer or length outside its memory (-> EFAULT)."""


class WasiConfig:
    """What the guest sees.  ``args`` includes argv[0]; ``env`` is a dict
    or a list of ``(key, value)``; ``dirs`` a list of ``(host, guest)``
    directories granted; ``stdin`` a binary stream, ``stdout``/``stderr``
    binary streams (default: the process's); ``deterministic`` fixes the
    clocks (start at 2020-01-01, +1 ms per read) and makes ``random_get`` a
    stream seeded by ``seed``, so two runs produce identical bytes."""

    def __init__(self, args=(), env=(), dirs=(), stdin=None, stdout=None, stderr=None,
                 deterministic=False, seed=0):
        self.args = [str(a) for a in args]
        self.env = list(env.items()) if isinstance(env, dict) else [tuple(kv) for kv in env]
        self.dirs = [(str(h), str(g)) for h, g in dirs]
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.deterministic = bool(deterministic)
        self.seed = int(seed)


def parse_dir(spec):
    """``HOST[::GUEST]`` -> (host, guest); GUEST defaults to HOST."""
    host, sep, guest = spec.partition('::')
    return host, (guest if sep else host)


# ------------------------------------------------------------ signatures

_I, _L = S.I32, S.I64
SIGNATURES = {
    'args_get': (_I, _I), 'args_sizes_get': (_I, _I),
    'environ_get': (_I, _I), 'environ_sizes_get': (_I, _I),
    'clock_res_get': (_I, _I), 'clock_time_get': (_I, _L, _I),
    'fd_advise': (_I, _L, _L, _I), 'fd_allocate': (_I, _L, _L), 'fd_close': (_I,),
    'fd_datasync': (_I,), 'fd_fdstat_get': (_I, _I), 'fd_fdstat_set_flags': (_I, _I),
    'fd_fdstat_set_rights': (_I, _L, _L), 'fd_filestat_get': (_I, _I),
    'fd_filestat_set_size': (_I, _L), 'fd_filestat_set_times': (_I, _L, _L, _I),
    'fd_pread': (_I, _I, _I, _L, _I), 'fd_prestat_get': (_I, _I),
    'fd_prestat_dir_name': (_I, _I, _I), 'fd_pwrite': (_I, _I, _I, _L, _I),
    'fd_read': (_I, _I, _I, _I), 'fd_readdir': (_I, _I, _I, _L, _I),
    'fd_renumber': (_I, _I), 'fd_seek': (_I, _L, _I, _I), 'fd_sync': (_I,),
    'fd_tell': (_I, _I), 'fd_write': (_I, _I, _I, _I),
    'path_create_directory': (_I, _I, _I), 'path_filestat_get': (_I, _I, _I, _I, _I),
    'path_filestat_set_times': (_I, _I, _I, _I, _L, _L, _I),
    'path_link': (_I, _I, _I, _I, _I, _I, _I),
    'path_open': (_I, _I, _I, _I, _I, _L, _L, _I, _I),
    'path_readlink': (_I, _I, _I, _I, _I, _I), 'path_remove_directory': (_I, _I, _I),
    'path_rename': (_I, _I, _I, _I, _I, _I), 'path_symlink': (_I, _I, _I, _I, _I),
    'path_unlink_file': (_I, _I, _I), 'poll_oneoff': (_I, _I, _I, _I),
    'proc_exit': (_I,), 'proc_raise': (_I,), 'random_get': (_I, _I), 'sched_yield': (),
    'sock_accept': (_I, _I, _I), 'sock_recv': (_I, _I, _I, _I, _I, _I),
    'sock_send': (_I, _I, _I, _I, _I), 'sock_shutdown': (_I, _I),
}
FUNC_TYPES = {name: S.FuncType(params, () if name == 'proc_exit' else (_I,))
              for name, params in SIGNATURES.items()}


def _signed64(x):
    return x - (1 << 64) if x >> 63 else x


# ------------------------------------------------------------ the host module

class Wasi:
    """One instance of the host module: its descriptor table, counters and
    the guest memory it reads and writes."""

    def __init__(self, config: WasiConfig):
        self.config = config
        self.args = list(config.args)
        self.env = [f'{k}={v}' for k, v in config.env]
        self.table = FdTable(config.dirs)
        self.streams = [config.stdin if config.stdin is not None else sys.stdin.buffer,
                        config.stdout if config.stdout is not None else sys.stdout.buffer,
                        config.stderr if config.stderr is not None else sys.stderr.buffer]
        self.written = [0, 0, 0]        # bytes written to stdin (always 0), stdout, stderr
        self.deterministic = config.deterministic
        self.seed = config.seed
        self.clock_ns = DETERMINISTIC_EPOCH_NS   # deterministic clock, advances per read
        self.random_pos = 0                      # bytes of the seeded stream handed out
        self.mem = None
        self.exit_code = None

    # -------------------------------------------------------- embedding

    def imports(self, store):
        """Allocate every function in ``store``: name -> ('func', addr)."""
        from ..runtime import alloc_hostfunc
        return {name: ('func', alloc_hostfunc(store, FUNC_TYPES[name], self._host(name)))
                for name in SIGNATURES}

    def bind(self, store, inst):
        """Attach the instance's exported ``memory`` (WASI reads arguments
        through it)."""
        kind, addr = inst.exports.get('memory', (None, None))
        if kind == 'memory':
            self.mem = store.mems[addr]

    @property
    def bound(self):
        """True once a module instance uses this host module."""
        return self.mem is not None

    def _host(self, name):
        method = getattr(self, name)

        if name == 'proc_exit':
            def host(args):
                method(*args)
                return []
            return host

        def host(args):
            try:
                return [method(*args) or SUCCESS]
            except WasiError as e:
                return [e.errno]
            except Fault:
                return [EFAULT]
            except OSError as e:
                return [errno_of(e)]
            except (UnicodeError, ValueError, OverflowError):
                return [EINVAL]
        return host

    # -------------------------------------------------------- guest memory

    def _data(self):
        if self.mem is None:
            raise Trap('WASI call needs the module to export its memory as "memory"')
        return self.mem.data

    def _check(self, ptr, n):
        data = self._data()
        if ptr + n > len(data):
            raise Fault(ptr)
        return data

    def read(self, ptr, n):
        return bytes(self._check(ptr, n)[ptr:ptr + n])

    def write(self, ptr, b):
        self._check(ptr, len(b))[ptr:ptr + len(b)] = b
        self.mem.mark(ptr, len(b))

    def u32(self, ptr):
        return struct.unpack_from('<I', self._check(ptr, 4), ptr)[0]

    def put(self, ptr, fmt, *values):
        n = struct.calcsize(fmt)
        struct.pack_into(fmt, self._check(ptr, n), ptr, *values)
        self.mem.mark(ptr, n)

    def string(self, ptr, n):
        try:
            return self.read(ptr, n).decode('utf-8')
        except UnicodeDecodeError:
            raise WasiError(ERRNO['ILSEQ'], 'path is not UTF-8')

    def iovecs(self, ptr, n):
        """(buf, len) pairs of an iovec array, every one inside memory."""
        data = self._check(ptr, 8 * n)
        vecs = []
        for k in range(n):
            buf, length = struct.unpack_from('<II', data, ptr + 8 * k)
            self._check(buf, length)
            vecs.append((buf, length))
        return vecs

    def gather(self, iovs, n):
        data = self._data()
        return b''.join(bytes(data[b:b + ln]) for b, ln in self.iovecs(iovs, n))

    def scatter(self, vecs, chunk):
        data, pos = self._data(), 0
        for buf, length in vecs:
            part = chunk[pos:pos + length]
            data[buf:buf + len(part)] = part
            self.mem.mark(buf, len(part))
            pos += len(part)
            if pos >= len(chunk):
                break

    # -------------------------------------------------------- args, environ

    def _strings_get(self, strings, ptrs, buf):
        encoded = [s.encode() + b'\0' for s in strings]
        self._check(ptrs, 4 * len(encoded))
        self._check(buf, sum(map(len, encoded)))
        for k, e in enumerate(encoded):
            self.put(ptrs + 4 * k, '<I', buf)
            self.write(buf, e)
            buf += len(e)

    def _sizes_get(self, strings, count_ptr, size_ptr):
        self._check(count_ptr, 4)
        self._check(size_ptr, 4)
        self.put(count_ptr, '<I', len(strings))
        self.put(size_ptr, '<I', sum(len(s.encode()) + 1 for s in strings))

    def args_get(self, argv, buf):
        self._strings_get(self.args, argv, buf)

    def args_sizes_get(self, count_ptr, size_ptr):
        self._sizes_get(self.args, count_ptr, size_ptr)

    def environ_get(self, environ, buf):
        self._strings_get(self.env, environ, buf)

    def environ_sizes_get(self, count_ptr, size_ptr):
        self._sizes_get(self.env, count_ptr, size_ptr)

    # -------------------------------------------------------- clocks, random

    def now(self, clock_id):
        if clock_id > 3:
            raise WasiError(EINVAL, f'clock {clock_id}')
        if self.deterministic:
            t = self.clock_ns
            self.clock_ns += DETERMINISTIC_TICK_NS
            return t if clock_id == 0 else t - DETERMINISTIC_EPOCH_NS
        return (time.time_ns, time.monotonic_ns, time.process_time_ns,
                time.thread_time_ns)[clock_id]()

    def clock_res_get(self, clock_id, ptr):
        if clock_id > 3:
            raise WasiError(EINVAL, f'clock {clock_id}')
        self.put(ptr, '<Q', DETERMINISTIC_TICK_NS if self.deterministic else 1)

    def clock_time_get(self, clock_id, _precision, ptr):
        self._check(ptr, 8)
        self.put(ptr, '<Q', self.now(clock_id) & U64)

    def random_bytes(self, n):
        if not self.deterministic:
            return os.urandom(n)
        start, end = self.random_pos, self.random_pos + n
        out = bytearray()
        for block in range(start // 32, (end + 31) // 32):
            out += hashlib.sha256(b'wasi-random' + self.seed.to_bytes(8, 'little', signed=True)
                                  + block.to_bytes(8, 'little')).digest()
        self.random_pos = end
        skip = start % 32
        return bytes(out[skip:skip + n])

    def random_get(self, buf, n):
        self._check(buf, n)
        self.write(buf, self.random_bytes(n))

    def sched_yield(self):
        return SUCCESS

    def proc_exit(self, code):
        self.exit_code = code
        raise WasiExit(code)

    def proc_raise(self, _sig):
        return ENOTSUP

    # -------------------------------------------------------- descriptors: data

    def fd_write(self, fd, iovs, n, nwritten_ptr):
        entry = self.table.get(fd)
        if entry.kind in ('dir', 'stdin'):
            raise WasiError(EBADF, f'fd {fd} is not open for writing')
        self.table.get(fd, R['fd_write'])
        self._check(nwritten_ptr, 4)
        chunk = self.gather(iovs, n)
        if entry.kind in ('stdout', 'stderr'):
            k = 1 if entry.kind == 'stdout' else 2
            stream = self.streams[k]
            stream.write(chunk)
            stream.flush()
            self.written[k] += len(chunk)
            count = len(chunk)
        else:
            count = _write_all(entry.host_fd, chunk)
        self.put(nwritten_ptr, '<I', count)

    def fd_read(self, fd, iovs, n, nread_ptr):
        entry = self.table.get(fd)
        if entry.kind in ('dir', 'stdout', 'stderr'):
            raise WasiError(EBADF, f'fd {fd} is not open for reading')
        self.table.get(fd, R['fd_read'])
        self._check(nread_ptr, 4)
        vecs = self.iovecs(iovs, n)
        total = sum(length for _, length in vecs)
        if entry.kind == 'stdin':
            stream = self.streams[0]
            chunk = stream.read1(total) if hasattr(stream, 'read1') else stream.read(total)
            chunk = chunk or b''
        else:
            chunk = os.read(entry.host_fd, total)
        self.scatter(vecs, chunk)
        self.put(nread_ptr, '<I', len(chunk))

    def _file(self, fd, right):
        """A regular file's descriptor: a stream is ESPIPE, a directory
        EBADF (what wasmtime answers), then the right is checked."""
        entry = self.table.get(fd)
        if entry.kind == 'dir':
            raise WasiError(EBADF, f'fd {fd} is a directory')
        if entry.kind != 'file':
            raise WasiError(ESPIPE, f'fd {fd} is a stream')
        return self.table.get(fd, right)

    def _positioned(self, fd, right, count_ptr):
        """The file of a pread/pwrite: it needs ``right`` and fd_seek."""
        entry = self._file(fd, right)
        self._check(count_ptr, 4)
        if not entry.rights_base & R['fd_seek']:
            raise WasiError(ENOTCAPABLE, f'fd {fd} lacks fd_seek')
        return entry

    def fd_pread(self, fd, iovs, n, offset, nread_ptr):
        entry = self._positioned(fd, R['fd_read'], nread_ptr)
        vecs = self.iovecs(iovs, n)
        chunk = os.pread(entry.host_fd, sum(ln for _, ln in vecs), offset)
        self.scatter(vecs, chunk)
        self.put(nread_ptr, '<I', len(chunk))

    def fd_pwrite(self, fd, iovs, n, offset, nwritten_ptr):
        entry = self._positioned(fd, R['fd_write'], nwritten_ptr)
        chunk = self.gather(iovs, n)
        count = 0
        while count < len(chunk):
            count += os.pwrite(entry.host_fd, chunk[count:], offset + count)
        self.put(nwritten_ptr, '<I', count)

    def fd_seek(self, fd, offset, whence, newoffset_ptr):
        entry = self._file(fd, R['fd_seek'] if whence != 1 or offset else R['fd_tell'])
        self._check(newoffset_ptr, 8)
        if whence > 2:
            raise WasiError(EINVAL, f'whence {whence}')
        pos = os.lseek(entry.host_fd, _signed64(offset), (os.SEEK_SET, os.SEEK_CUR, os.SEEK_END)[whence])
        self.put(newoffset_ptr, '<Q', pos)

    def fd_tell(self, fd, ptr):
        entry = self._file(fd, R['fd_tell'])
        self._check(ptr, 8)
        self.put(ptr, '<Q', os.lseek(entry.host_fd, 0, os.SEEK_CUR))

    def fd_close(self, fd):
        self.table.close(fd)

    def fd_sync(self, fd):
        entry = self.table.get(fd, R['fd_sync'])
        if entry.kind == 'file':
            os.fsync(entry.host_fd)

    def fd_datasync(self, fd):
        entry = self.table.get(fd, R['fd_datasync'])
        if entry.kind == 'file':
            os.fdatasync(entry.host_fd)

    def fd_advise(self, fd, offset, length, advice):
        self._file(fd, R['fd_advise'])
        if advice > 5:
            raise WasiError(EINVAL, f'advice {advice}')

    def fd_allocate(self, fd, offset, length):
        entry = self._file(fd, R['fd_allocate'])
        if offset + length > 1 << 63:
            raise WasiError(ERRNO['FBIG'], 'allocate beyond 2^63')
        if os.fstat(entry.host_fd).st_size < offset + length:
            os.ftruncate(entry.host_fd, offset + length)

    # -------------------------------------------------------- descriptors: status

    def fd_fdstat_get(self, fd, ptr):
        self._check(ptr, 24)
        entry = self.table.get(fd)
        self.put(ptr, '<BxHxxxxQQ', entry.filetype(self.streams), entry.fdflags,
                 entry.rights_base, entry.rights_inheriting)

    def fd_fdstat_set_flags(self, fd, flags):
        entry = self.table.get(fd, R['fd_fdstat_set_flags'])
        if flags & ~FDFLAGS_ALL:
            raise WasiError(EINVAL, f'fd flags {flags:#x}')
        if entry.kind == 'file':
            import fcntl
            cur = fcntl.fcntl(entry.host_fd, fcntl.F_GETFL)
            for bit, host in ((FDFLAG_APPEND, os.O_APPEND), (FDFLAG_NONBLOCK, os.O_NONBLOCK)):
                cur = cur | host if flags & bit else cur & ~host
            fcntl.fcntl(entry.host_fd, fcntl.F_SETFL, cur)
        entry.fdflags = flags

    def fd_fdstat_set_rights(self, fd, base, inheriting):
        entry = self.table.get(fd)
        if base & ~entry.rights_base or inheriting & ~entry.rights_inheriting:
            raise WasiError(ENOTCAPABLE, 'rights can only shrink')
        entry.rights_base, entry.rights_inheriting = base, inheriting

    def _put_filestat(self, ptr, st):
        self.put(ptr, '<QQBxxxxxxxQQQQQ', st.st_dev & U64, st.st_ino & U64,
                 filetype_of_mode(st.st_mode), st.st_nlink, st.st_size,
                 st.st_atime_ns & U64, st.st_mtime_ns & U64, st.st_ctime_ns & U64)

    def fd_filestat_get(self, fd, ptr):
        self._check(ptr, 64)
        entry = self.table.get(fd, R['fd_filestat_get'])
        if entry.kind == 'file':
            self._put_filestat(ptr, os.fstat(entry.host_fd))
        elif entry.kind == 'dir':
            self._put_filestat(ptr, os.stat(self.table.host_path(entry)))
        else:       # the stream's type; sizes and times 0, as the real WasmEdge
            self.put(ptr, '<QQBxxxxxxxQQQQQ', 0, 0, entry.filetype(self.streams), 1, 0, 0, 0, 0)

    def fd_filestat_set_size(self, fd, size):
        entry = self._file(fd, R['fd_filestat_set_size'])
        os.ftruncate(entry.host_fd, size)

    def _times(self, atim, mtim, fst):
        if fst & ~15 or (fst & 1 and fst & 2) or (fst & 4 and fst & 8):
            raise WasiError(EINVAL, f'fst flags {fst:#x}')
        return atim, mtim, fst

    def _utime(self, target, st_now, atim, mtim, fst, follow=True):
        atim, mtim, fst = self._times(atim, mtim, fst)
        st = st_now()
        now = time.time_ns()
        a = atim if fst & 1 else now if fst & 2 else st.st_atime_ns
        m = mtim if fst & 4 else now if fst & 8 else st.st_mtime_ns
        os.utime(target, ns=(a, m), follow_symlinks=follow)

    def fd_filestat_set_times(self, fd, atim, mtim, fst):
        entry = self.table.get(fd, R['fd_filestat_set_times'])
        if entry.kind == 'file':
            self._utime(entry.host_fd, lambda: os.fstat(entry.host_fd), atim, mtim, fst)
        elif entry.kind == 'dir':
            path = self.table.host_path(entry)
            self._utime(path, lambda: os.stat(path), atim, mtim, fst)
        else:
            self._times(atim, mtim, fst)

    def fd_prestat_get(self, fd, ptr):
        self._check(ptr, 8)
        entry = self.table.get(fd)
        if not entry.is_preopen:
            raise WasiError(EBADF, f'fd {fd} is not a preopen')
        self.put(ptr, '<BxxxI', 0, len(self.table.preopens[entry.preopen].guest.encode()))

    def fd_prestat_dir_name(self, fd, ptr, n):
        entry = self.table.get(fd)
        if not entry.is_preopen:
            raise WasiError(EBADF, f'fd {fd} is not a preopen')
        name = self.table.preopens[entry.preopen].guest.encode()
        if n < len(name):
            raise WasiError(ENAMETOOLONG, 'buffer too small')
        self.write(ptr, name)

    def fd_renumber(self, fd, to):
        entry = self.table.get(fd)
        self.table.get(to)
        if fd == to:
            return
        self.table.close(to)
        self.table.fds[to] = entry
        del self.table.fds[fd]

    def fd_readdir(self, fd, buf, buf_len, cookie, bufused_ptr):
        self._check(buf, buf_len)
        self._check(bufused_ptr, 4)
        entry = self.table.get(fd)
        if entry.kind != 'dir':
            raise WasiError(EBADF, f'fd {fd} is not a directory')     # as wasmtime
        self.table.get(fd, R['fd_readdir'])
        out = bytearray()
        for k, (name, ino, ftype) in enumerate(self._dir_entries(entry)):
            if k < cookie:
                continue
            raw = name.encode()
            out += struct.pack('<QQIBxxx', k + 1, ino, len(raw), ftype) + raw
            if len(out) >= buf_len:
                break
        out = out[:buf_len]
        self.write(buf, bytes(out))
        self.put(bufused_ptr, '<I', len(out))

    def _dir_entries(self, entry):
        """'.', '..', then the names sorted (a stable order, so a cookie
        means the same entry before and after a migration)."""
        path = self.table.host_path(entry)
        own = os.stat(path)
        parent = os.stat(os.path.dirname(path.rstrip('/')) or '/')
        entries = [('.', own.st_ino, FILETYPE_DIR), ('..', parent.st_ino, FILETYPE_DIR)]
        for name in sorted(os.listdir(path)):
            try:
                st = os.lstat(os.path.join(path, name))
                entries.append((name, st.st_ino, filetype_of_mode(st.st_mode)))
            except OSError:
                continue            # vanished while listing
        return entries

    # -------------------------------------------------------- paths

    def _path(self, fd, ptr, n, follow=False, right=0):
        entry, rel, slash = self.table.resolve(fd, self.string(ptr, n), follow, right)
        return entry, rel, self.table.host_path(entry, rel), slash

    def path_open(self, fd, dirflags, ptr, n, oflags, base, inheriting, fdflags, fd_ptr):
        self._check(fd_ptr, 4)
        if oflags & ~OFLAGS_ALL or fdflags & ~FDFLAGS_ALL:
            raise WasiError(EINVAL, 'unknown open flags')
        need = R['path_open'] | (R['path_create_file'] if oflags & OFLAG_CREAT else 0)
        if oflags & OFLAG_TRUNC:
            need |= R['path_filestat_set_size']
        dir_entry, rel, host, slash = self._path(fd, ptr, n, dirflags & LOOKUP_SYMLINK_FOLLOW,
                                                 need)
        base &= dir_entry.rights_inheriting
        inheriting &= dir_entry.rights_inheriting
        try:
            st = os.stat(host, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        is_dir = st is not None and stat.S_ISDIR(st.st_mode)
        writes = base & (R['fd_write'] | R['fd_allocate'] | R['fd_filestat_set_size'])
        if oflags & OFLAG_DIRECTORY or (is_dir and not writes and not oflags & OFLAG_CREAT):
            if oflags & (OFLAG_CREAT | OFLAG_TRUNC):
                raise WasiError(EINVAL if not is_dir else ERRNO['EXIST'] if oflags & OFLAG_EXCL
                                else EISDIR, 'directory with creat/trunc')
            if st is None:
                raise WasiError(ERRNO['NOENT'], rel)
            if not is_dir:
                raise WasiError(ENOTDIR if not stat.S_ISLNK(st.st_mode) else ERRNO['LOOP'], rel)
            entry = Fd('dir', dir_entry.preopen, rel, False, oflags, fdflags, base, inheriting)
        else:
            if slash:
                raise WasiError(ENOTDIR if st is None or not is_dir else EISDIR, rel)
            if is_dir:
                raise WasiError(EISDIR, rel)
            host_fd = open_host(host, base, oflags, fdflags)
            entry = Fd('file', dir_entry.preopen, rel, False, oflags, fdflags, base,
                       inheriting, host_fd)
        try:
            new = self.table.add(entry)
        except WasiError:
            if entry.host_fd is not None:
                os.close(entry.host_fd)
            raise
        self.put(fd_ptr, '<I', new)

    def path_create_directory(self, fd, ptr, n):
        _, rel, host, _ = self._path(fd, ptr, n, right=R['path_create_directory'])
        os.mkdir(host)

    def _not_the_dir_itself(self, fd, rel):
        if rel == self.table.get(fd).path:
            raise WasiError(ERRNO['BUSY'] if rel == '' else EINVAL,
                            'the directory descriptor itself')

    def path_remove_directory(self, fd, ptr, n):
        _, rel, host, _ = self._path(fd, ptr, n, right=R['path_remove_directory'])
        self._not_the_dir_itself(fd, rel)
        os.rmdir(host)

    def path_unlink_file(self, fd, ptr, n):
        _, rel, host, slash = self._path(fd, ptr, n, right=R['path_unlink_file'])
        self._not_the_dir_itself(fd, rel)
        st = os.lstat(host)
        if stat.S_ISDIR(st.st_mode):
            raise WasiError(EISDIR, rel)
        if slash:
            raise WasiError(ENOTDIR, rel)
        os.unlink(host)

    def path_rename(self, fd, old_ptr, old_n, new_fd, new_ptr, new_n):
        _, old_rel, old, _ = self._path(fd, old_ptr, old_n, right=R['path_rename_source'])
        _, new_rel, new, _ = self._path(new_fd, new_ptr, new_n, right=R['path_rename_target'])
        self._not_the_dir_itself(fd, old_rel)
        self._not_the_dir_itself(new_fd, new_rel)
        os.rename(old, new)

    def path_link(self, old_fd, old_flags, old_ptr, old_n, new_fd, new_ptr, new_n):
        _, _, old, _ = self._path(old_fd, old_ptr, old_n, old_flags & LOOKUP_SYMLINK_FOLLOW,
                                  R['path_link_source'])
        _, _, new, _ = self._path(new_fd, new_ptr, new_n, right=R['path_link_target'])
        os.link(old, new, follow_symlinks=False)

    def path_symlink(self, old_ptr, old_n, fd, new_ptr, new_n):
        target = self.string(old_ptr, old_n)
        if target.startswith('/'):
            raise WasiError(ERRNO['PERM'], 'symbolic link to an absolute path')
        _, _, new, _ = self._path(fd, new_ptr, new_n, right=R['path_symlink'])
        os.symlink(target, new)

    def path_readlink(self, fd, ptr, n, buf, buf_len, bufused_ptr):
        self._check(buf, buf_len)
        self._check(bufused_ptr, 4)
        _, _, host, _ = self._path(fd, ptr, n, right=R['path_readlink'])
        target = os.readlink(host).encode()[:buf_len]
        self.write(buf, target)
        self.put(bufused_ptr, '<I', len(target))

    def path_filestat_get(self, fd, flags, ptr, n, buf):
        self._check(buf, 64)
        _, _, host, _ = self._path(fd, ptr, n, flags & LOOKUP_SYMLINK_FOLLOW,
                                   R['path_filestat_get'])
        self._put_filestat(buf, os.stat(host, follow_symlinks=False))

    def path_filestat_set_times(self, fd, flags, ptr, n, atim, mtim, fst):
        follow = bool(flags & LOOKUP_SYMLINK_FOLLOW)
        _, _, host, _ = self._path(fd, ptr, n, follow, R['path_filestat_set_times'])
        self._utime(host, lambda: os.stat(host, follow_symlinks=False), atim, mtim, fst,
                    follow=False)

    # -------------------------------------------------------- poll, sockets

    def poll_oneoff(self, in_ptr, out_ptr, nsubs, nevents_ptr):
        self._check(nevents_ptr, 4)
        if nsubs == 0:
            raise WasiError(EINVAL, 'no subscriptions')
        raw = self.read(in_ptr, 48 * nsubs)
        self._check(out_ptr, 32 * nsubs)
        events, clocks = [], []
        for k in range(nsubs):
            userdata, tag = struct.unpack_from('<QB', raw, 48 * k)
            if tag == 0:
                clock_id, timeout, _prec, flags = struct.unpack_from('<IxxxxQQH', raw, 48 * k + 16)
                if clock_id > 3:
                    events.append((userdata, EINVAL, 0, 0))
                    continue
                clocks.append((userdata, clock_id, timeout, flags & 1))
            elif tag in (1, 2):
                (fd,) = struct.unpack_from('<I', raw, 48 * k + 16)
                events.append(self._fd_event(userdata, tag, fd))
            else:
                raise WasiError(EINVAL, f'subscription tag {tag}')
        if not events and clocks:
            # wait for the earliest clock; every clock due by then fires
            waits = []
            for userdata, clock_id, timeout, absolute in clocks:
                now = self._peek(clock_id)
                waits.append((max(0, timeout - now) if absolute else timeout, userdata))
            delay = min(w for w, _ in waits)
            if self.deterministic:
                self.clock_ns += delay
            elif delay:
                time.sleep(delay / 1e9)
            events = [(u, SUCCESS, 0, 0) for w, u in waits if w <= delay]
        out = b''.join(struct.pack('<QHBxxxxxQHxxxxxx', u, err, etype, nbytes, 0)
                       for u, err, etype, nbytes in events)
        self.write(out_ptr, out)
        self.put(nevents_ptr, '<I', len(events))

    def _peek(self, clock_id):
        if self.deterministic:
            return self.clock_ns if clock_id == 0 else self.clock_ns - DETERMINISTIC_EPOCH_NS
        return self.now(clock_id)

    def _fd_event(self, userdata, tag, fd):
        entry = self.table.fds.get(fd)
        if entry is None:
            return (userdata, EBADF, tag, 0)
        nbytes = 0
        if entry.kind == 'file' and tag == 1:
            pos = os.lseek(entry.host_fd, 0, os.SEEK_CUR)
            nbytes = max(0, os.fstat(entry.host_fd).st_size - pos)
        return (userdata, SUCCESS, tag, nbytes)

    def _sock(self, fd, *_):
        self.table.get(fd)
        return ENOTSOCK

    sock_accept = sock_recv = sock_send = sock_shutdown = _sock

    # -------------------------------------------------------- end of run

    def close(self):
        self.table.close_all()


def _write_all(host_fd, chunk):
    count = 0
    while count < len(chunk):
        count += os.write(host_fd, chunk[count:])
    return count


def open_host(host, rights, oflags, fdflags, creating=True):
    """The OS descriptor for a WASI file: access mode from the rights
    (fd_read; fd_write/fd_allocate/fd_filestat_set_size), never following
    a final symlink (the sandbox resolved links already)."""
    reads = rights & (R['fd_read'] | R['fd_readdir'])
    writes = rights & (R['fd_write'] | R['fd_allocate'] | R['fd_filestat_set_size'])
    flags = (os.O_RDWR if reads and writes else os.O_WRONLY if writes else os.O_RDONLY)
    flags |= os.O_NOFOLLOW | os.O_CLOEXEC
    if creating:
        flags |= (os.O_CREAT if oflags & OFLAG_CREAT else 0) \
            | (os.O_EXCL if oflags & OFLAG_EXCL else 0) \
            | (os.O_TRUNC if oflags & OFLAG_TRUNC else 0)
    if fdflags & FDFLAG_APPEND:
        flags |= os.O_APPEND
    if fdflags & FDFLAG_NONBLOCK:
        flags |= os.O_NONBLOCK
    if fdflags & FDFLAG_DSYNC:
        flags |= getattr(os, 'O_DSYNC', 0)
    if fdflags & (FDFLAG_SYNC | FDFLAG_RSYNC):
        flags |= getattr(os, 'O_SYNC', 0)
    return os.open(host, flags, 0o666)


def missing_imports(module):
    """(module, name, kind) of every WASI import this host cannot give,
    with the reason; used to list all unknown imports at once."""
    out = []
    for imp in module.imports:
        if imp.module != MODULE:
            continue
        if imp.kind != 'func' or imp.name not in FUNC_TYPES:
            out.append((imp, 'unknown import'))
        elif module.types[imp.desc] != FUNC_TYPES[imp.name]:
            out.append((imp, f'incompatible import type (WASI has {FUNC_TYPES[imp.name]})'))
    return out
