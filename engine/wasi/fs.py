"""The WASI file descriptor table and its sandbox (WASI preview 1,
``wasi_snapshot_preview1``).

A guest names files by a directory descriptor plus a relative path.  The
only directories it can reach are the *preopens* the host grants
(``--dir HOST[::GUEST]``).  Paths are resolved here component by component
against the preopen's host directory, symbolic links included, so ``..``,
absolute paths and links pointing outside the preopen can never leave it:
such a lookup fails with ``EPERM`` (63, what wasmtime returns for an escape
attempt) before the host file system is touched at the escaping name.

Every descriptor remembers how it was opened (preopen, path relative to the
preopen, open flags, rights, fd flags) so the table can be written into a
checkpoint and reopened by a restored run (``engine/wasi/state.py``).
"""

import os
import stat

# ------------------------------------------------------------ errno (spec order)

ERRNO_NAMES = (
    'SUCCESS', '2BIG', 'ACCES', 'ADDRINUSE', 'ADDRNOTAVAIL', 'AFNOSUPPORT', 'AGAIN',
    'ALREADY', 'BADF', 'BADMSG', 'BUSY', 'CANCELED', 'CHILD', 'CONNABORTED',
    'CONNREFUSED', 'CONNRESET', 'DEADLK', 'DESTADDRREQ', 'DOM', 'DQUOT', 'EXIST',
    'FAULT', 'FBIG', 'HOSTUNREACH', 'IDRM', 'ILSEQ', 'INPROGRESS', 'INTR', 'INVAL',
    'IO', 'ISCONN', 'ISDIR', 'LOOP', 'MFILE', 'MLINK', 'MSGSIZE', 'MULTIHOP',
    'NAMETOOLONG', 'NETDOWN', 'NETRESET', 'NETUNREACH', 'NFILE', 'NOBUFS', 'NODEV',
    'NOENT', 'NOEXEC', 'NOLCK', 'NOLINK', 'NOMEM', 'NOMSG', 'NOPROTOOPT', 'NOSPC',
    'NOSYS', 'NOTCONN', 'NOTDIR', 'NOTEMPTY', 'NOTRECOVERABLE', 'NOTSOCK', 'NOTSUP',
    'NOTTY', 'NXIO', 'OVERFLOW', 'OWNERDEAD', 'PERM', 'PIPE', 'PROTO',
    'PROTONOSUPPORT', 'PROTOTYPE', 'RANGE', 'ROFS', 'SPIPE', 'SRCH', 'STALE',
    'TIMEDOUT', 'TXTBSY', 'XDEV', 'NOTCAPABLE')
ERRNO = {name: i for i, name in enumerate(ERRNO_NAMES)}
SUCCESS, EBADF, EEXIST, EFAULT, EINVAL, EIO = (ERRNO[n] for n in
                                               ('SUCCESS', 'BADF', 'EXIST', 'FAULT', 'INVAL', 'IO'))
EISDIR, ELOOP, ENOENT, ENOTDIR, ENOTSUP = (ERRNO[n] for n in
                                           ('ISDIR', 'LOOP', 'NOENT', 'NOTDIR', 'NOTSUP'))
ENOTCAPABLE, ESPIPE, ENOTSOCK, ENAMETOOLONG, EOVERFLOW, EPERM = (
    ERRNO[n] for n in ('NOTCAPABLE', 'SPIPE', 'NOTSOCK', 'NAMETOOLONG', 'OVERFLOW', 'PERM'))
ENOTEMPTY, EMFILE = ERRNO['NOTEMPTY'], ERRNO['MFILE']


def _host_errno_table():
    import errno as host
    table = {}
    for i, name in enumerate(ERRNO_NAMES[1:], 1):
        code = getattr(host, 'E' + name, None)
        if code is not None:
            table.setdefault(code, i)
    if hasattr(host, 'EOPNOTSUPP'):
        table.setdefault(host.EOPNOTSUPP, ENOTSUP)
    return table


HOST_ERRNO = _host_errno_table()


class WasiError(Exception):
    """A WASI call fails with ``errno`` (returned to the guest, not raised
    past the host function)."""

    def __init__(self, errno, what=''):
        super().__init__(f'{ERRNO_NAMES[errno]}: {what}')
        self.errno = errno


def errno_of(exc: OSError) -> int:
    return HOST_ERRNO.get(exc.errno, EIO)


# ------------------------------------------------------------ flags and rights

FILETYPE_UNKNOWN, FILETYPE_BLOCK, FILETYPE_CHAR, FILETYPE_DIR, FILETYPE_FILE = 0, 1, 2, 3, 4
FILETYPE_SOCK_DGRAM, FILETYPE_SOCK_STREAM, FILETYPE_SYMLINK = 5, 6, 7

FDFLAG_APPEND, FDFLAG_DSYNC, FDFLAG_NONBLOCK, FDFLAG_RSYNC, FDFLAG_SYNC = 1, 2, 4, 8, 16
FDFLAGS_ALL = 31
OFLAG_CREAT, OFLAG_DIRECTORY, OFLAG_EXCL, OFLAG_TRUNC = 1, 2, 4, 8
OFLAGS_ALL = 15
LOOKUP_SYMLINK_FOLLOW = 1

RIGHT_NAMES = (
    'fd_datasync', 'fd_read', 'fd_seek', 'fd_fdstat_set_flags', 'fd_sync', 'fd_tell',
    'fd_write', 'fd_advise', 'fd_allocate', 'path_create_directory', 'path_create_file',
    'path_link_source', 'path_link_target', 'path_open', 'fd_readdir', 'path_readlink',
    'path_rename_source', 'path_rename_target', 'path_filestat_get',
    'path_filestat_set_size', 'path_filestat_set_times', 'fd_filestat_get',
    'fd_filestat_set_size', 'fd_filestat_set_times', 'path_symlink',
    'path_remove_directory', 'path_unlink_file', 'poll_fd_readwrite', 'sock_shutdown',
    'sock_accept')
R = {name: 1 << i for i, name in enumerate(RIGHT_NAMES)}
RIGHTS_ALL = (1 << len(RIGHT_NAMES)) - 1
# What a regular file / a directory can do at most (a directory's
# inheriting rights are everything, so files opened under it get theirs).
RIGHTS_FILE = sum(R[n] for n in (
    'fd_datasync', 'fd_read', 'fd_seek', 'fd_fdstat_set_flags', 'fd_sync', 'fd_tell',
    'fd_write', 'fd_advise', 'fd_allocate', 'fd_filestat_get', 'fd_filestat_set_size',
    'fd_filestat_set_times', 'poll_fd_readwrite'))
RIGHTS_DIR = RIGHTS_ALL & ~RIGHTS_FILE | R['fd_fdstat_set_flags'] | R['fd_sync'] \
    | R['fd_datasync'] | R['fd_filestat_get'] | R['fd_filestat_set_times']
RIGHTS_DIR &= ~(R['sock_shutdown'] | R['sock_accept'])
RIGHTS_STDIO = R['fd_read'] | R['fd_write'] | R['fd_fdstat_set_flags'] \
    | R['fd_filestat_get'] | R['poll_fd_readwrite']

MAX_SYMLINKS = 40
MAX_FDS = 1024
STREAMS = ('stdin', 'stdout', 'stderr')


_MODE_TESTS = ((stat.S_ISREG, FILETYPE_FILE), (stat.S_ISDIR, FILETYPE_DIR),
               (stat.S_ISLNK, FILETYPE_SYMLINK), (stat.S_ISCHR, FILETYPE_CHAR),
               (stat.S_ISBLK, FILETYPE_BLOCK), (stat.S_ISSOCK, FILETYPE_SOCK_STREAM))


def filetype_of_mode(mode):
    """The WASI filetype of a host ``st_mode``."""
    return next((ft for test, ft in _MODE_TESTS if test(mode)), FILETYPE_UNKNOWN)


def stream_filetype(stream):
    """The WASI filetype of a host stream (stdin, stdout, stderr), as the real
    WasmEdge reports it: a regular file, a character device (a terminal,
    /dev/null) or a block device as such, anything else (a pipe, a socket, a
    stream in memory) as unknown.  wasi-libc line-buffers stdout only on a
    character device, so this decides how a guest's output is chunked, and
    with it the instruction count."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (AttributeError, OSError, ValueError):    # no host descriptor
        return FILETYPE_UNKNOWN
    ft = filetype_of_mode(mode)
    return ft if ft in (FILETYPE_FILE, FILETYPE_CHAR, FILETYPE_BLOCK) else FILETYPE_UNKNOWN


# ------------------------------------------------------------ descriptors

class Preopen:
    """A directory granted to the guest: host path and the name the guest
    sees (what ``fd_prestat_dir_name`` returns)."""
    __slots__ = ('host', 'guest')

    def __init__(self, host, guest):
        self.host, self.guest = host, guest


class Fd:
    """One open descriptor.

    ``kind``: 'stdin' / 'stdout' / 'stderr' (the host's streams), 'dir' or
    'file'.  ``preopen`` is the index of the preopen the descriptor lives
    under and ``path`` its resolved path relative to that preopen ('' for
    the preopen itself); ``is_preopen`` marks the descriptors the host
    granted (the ones ``fd_prestat_get`` describes).  ``host_fd`` is the OS
    descriptor of an open file (its OS offset is the WASI offset)."""
    __slots__ = ('kind', 'preopen', 'path', 'is_preopen', 'oflags', 'fdflags',
                 'rights_base', 'rights_inheriting', 'host_fd')

    def __init__(self, kind, preopen=None, path='', is_preopen=False, oflags=0,
                 fdflags=0, rights_base=0, rights_inheriting=0, host_fd=None):
        self.kind, self.preopen, self.path, self.is_preopen = kind, preopen, path, is_preopen
        self.oflags, self.fdflags = oflags, fdflags
        self.rights_base, self.rights_inheriting = rights_base, rights_inheriting
        self.host_fd = host_fd

    def filetype(self, streams):
        """``streams``: the host's stdin, stdout and stderr."""
        if self.kind == 'dir':
            return FILETYPE_DIR
        if self.kind == 'file':
            return FILETYPE_FILE
        return stream_filetype(streams[STREAMS.index(self.kind)])


class FdTable:
    """Descriptors by number; 0-2 are the host's streams, then one per
    preopen (3, 4, ...), as wasi-libc expects."""

    def __init__(self, preopens):
        self.preopens = [Preopen(os.path.abspath(h), g) for h, g in preopens]
        self.fds = {}
        for i, name in enumerate(STREAMS):
            self.fds[i] = Fd(name, rights_base=RIGHTS_STDIO)
        for i in range(len(self.preopens)):
            self.fds[3 + i] = Fd('dir', i, '', True, OFLAG_DIRECTORY, 0, RIGHTS_DIR, RIGHTS_ALL)

    def get(self, fd, right=0):
        """The descriptor ``fd`` holding ``right`` (EBADF, ENOTCAPABLE)."""
        entry = self.fds.get(fd)
        if entry is None:
            raise WasiError(EBADF, f'fd {fd}')
        if right and not entry.rights_base & right:
            # not open for reading / writing is EBADF, as in POSIX and wasmtime
            errno = EBADF if right in (R['fd_read'], R['fd_write']) else ENOTCAPABLE
            raise WasiError(errno, f'fd {fd} lacks a right')
        return entry

    def add(self, entry):
        fd = 0
        while fd in self.fds:
            fd += 1
        if fd >= MAX_FDS:
            raise WasiError(EMFILE, 'too many open descriptors')
        self.fds[fd] = entry
        return fd

    def close(self, fd):
        entry = self.get(fd)
        del self.fds[fd]
        if entry.host_fd is not None and entry.host_fd not in self._host_fds_in_use():
            os.close(entry.host_fd)

    def _host_fds_in_use(self):
        return {e.host_fd for e in self.fds.values() if e.host_fd is not None}

    def close_all(self):
        for entry in self.fds.values():
            if entry.host_fd is not None:
                try:
                    os.close(entry.host_fd)
                except OSError:
                    pass
                entry.host_fd = None
        self.fds = {}

    # -------------------------------------------------------- paths

    def host_path(self, entry, rel=None):
        """Host path of a descriptor (or of ``rel``, a resolved path
        relative to its preopen)."""
        root = self.preopens[entry.preopen].host
        rel = entry.path if rel is None else rel
        return os.path.join(root, rel) if rel else root

    def resolve(self, fd, path, follow_last, right=0):
        """Resolve guest ``path`` relative to directory ``fd`` inside its
        preopen.  Returns ``(dir entry, resolved path relative to the
        preopen, whether the path ended in '/')``; the last component is a
        symlink itself unless ``follow_last``.  Escapes fail with EPERM,
        loops with ELOOP."""
        entry = self.get(fd, right)
        if entry.kind != 'dir':
            raise WasiError(ENOTDIR, f'fd {fd} is not a directory')
        rel, trailing_slash = self.resolve_in(entry.preopen, entry.path, path, follow_last)
        return entry, rel, trailing_slash

    def resolve_in(self, preopen, base, path, follow_last):
        """Resolve ``path`` relative to ``base`` (a resolved path inside
        preopen number ``preopen``) without leaving ``base``: the resolved
        path relative to the preopen, and whether ``path`` ended in '/'."""
        if '\0' in path:
            raise WasiError(EINVAL, 'path holds a NUL byte')
        if path.startswith('/'):
            raise WasiError(EPERM, f'absolute path {path!r}')
        if path == '':
            raise WasiError(ENOENT, 'empty path')
        root = self.preopens[preopen].host
        done = [c for c in base.split('/') if c]
        base_depth = len(done)  # each directory descriptor is a sandbox root of its own
        todo = path.split('/')
        trailing_slash = path.endswith('/')
        links = 0
        while todo:
            comp = todo.pop(0)
            if comp in ('', '.'):
                continue
            if comp == '..':
                if len(done) <= base_depth:
                    raise WasiError(EPERM, f'path {path!r} leaves its directory')
                done.pop()
                continue
            if len(comp.encode()) > 255:
                raise WasiError(ENAMETOOLONG, comp[:32])
            here = os.path.join(root, *done, comp)
            last = not any(c not in ('', '.') for c in todo)
            try:
                st = os.lstat(here)
            except FileNotFoundError:
                if not last:
                    raise WasiError(ENOENT, f'{comp!r} of {path!r}')
                done.append(comp)
                break
            except NotADirectoryError:
                raise WasiError(ENOTDIR, f'{comp!r} of {path!r}')
            except OSError as e:
                raise WasiError(errno_of(e), f'{comp!r} of {path!r}')
            if stat.S_ISLNK(st.st_mode) and (not last or follow_last or trailing_slash):
                links += 1
                if links > MAX_SYMLINKS:
                    raise WasiError(ELOOP, f'too many symbolic links in {path!r}')
                target = os.readlink(here)
                if target.startswith('/'):
                    raise WasiError(EPERM, f'symbolic link {comp!r} points to an '
                                           f'absolute path')
                todo[:0] = target.split('/') + (['.'] if trailing_slash and last else [])
                continue
            if not last and not stat.S_ISDIR(st.st_mode):
                raise WasiError(ENOTDIR, f'{comp!r} of {path!r}')
            done.append(comp)
        return '/'.join(done), trailing_slash
