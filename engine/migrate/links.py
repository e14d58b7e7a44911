"""Links: function references to *other* module instances in a checkpoint.

An image set describes one instance, but its tables, globals, slots,
exception fields and GC fields may hold a function that another instance
provides and the module does not import (a table shared across modules, a
funcref handed over by a call).  Such a function is saved as a *link*:
``(instance name, function index in that instance)``, the instance being
one of the ``peers`` the caller names at save time, and resolved against
the peers named at restore time.  docs/images.md "Links" documents the
format.

Links extend the module's function index space, as imports extend it at
the front: with ``n`` functions (imports counted), function index
``n + i`` means ``links[i]``.  So a funcref stays one u32 cell (or one
JSON integer) everywhere a module function index may stand, and the
translator and the neutral form carry links without looking at them;
only the range checks grow by the link count.

This module is the one place that writes or reads ``link.img`` and that
maps links to store addresses and back.
"""

import struct
from dataclasses import dataclass

from .. import deftypes, faults
from .. import syntax as S
from ..errors import WasmError

FILE = 'link.img'
MAGIC = b'LNK1'
MAX_NAME = 1 << 16              # bytes of an instance name (wast names are short)


@dataclass(frozen=True)
class Link:
    """A function of another instance: its name among the peers and the
    function's index in that instance (imports counted)."""
    instance: str
    fidx: int

    def __str__(self):
        return f'function {self.fidx} of instance {self.instance!r}'


class LinkError(WasmError):
    """A link that cannot be used at restore."""


class UnresolvedLink(LinkError):
    """A link naming an instance that is not among the peers, or a
    function index that instance does not have."""

    def __init__(self, link, why):
        super().__init__(f'{FILE}: link to {link}: {why}')
        self.link = link


class LinkTypeMismatch(LinkError):
    """A link in a slot of a typed function reference type whose resolved
    function does not have that type (a set tampered with, or peers that
    are not the instances the set was saved with)."""


def check_peers(peers):
    """``peers`` as a dict name -> instance (None: no peers); a name must be
    a non-empty string link.img can store (UTF-8, at most MAX_NAME bytes).
    A programming error, not a broken file: TypeError."""
    if not peers:
        return {}
    out = dict(peers)
    for name in out:
        if not isinstance(name, str) or not name:
            raise TypeError(f'peer name {name!r}: expected a non-empty string')
        try:
            size = len(name.encode('utf-8'))
        except UnicodeEncodeError:
            raise TypeError(f'peer name {name!r}: not encodable as UTF-8 (link.img stores it '
                            f'so)') from None
        if size > MAX_NAME:
            raise TypeError(f'peer name {name[:40]!r}...: {size} bytes, link.img holds names '
                            f'of at most {MAX_NAME}')
    return out


# ------------------------------------------------------------ saving

class LinkTable:
    """Function addresses of other instances -> extended function indices
    (``nfuncs + i``), for one checkpoint; ``entries`` the links in the
    order first met.  ``foreign(addr)`` raises when no peer holds the
    address (the caller's own error type)."""

    def __init__(self, store, nfuncs, peers, foreign):
        self.store, self.nfuncs, self.peers, self.foreign = store, nfuncs, check_peers(peers), foreign
        self.entries = []
        self._ids = {}
        self._where = None

    def index(self, addr):
        k = self._ids.get(addr)
        if k is None:
            link = self._where_of().get(addr)
            if link is None:
                self.foreign(addr)
            k = self._ids[addr] = self.nfuncs + len(self.entries)
            self.entries.append(link)
        return k

    def _where_of(self):
        """addr -> Link over every peer, built on the first foreign address:
        the instance that defines the function when it is a peer (its own
        index), else the first peer, in the order given, holding it."""
        if self._where is None:
            self._where = {}
            home = {}
            for name, inst in self.peers.items():
                for i, a in enumerate(inst.funcaddrs):
                    own = getattr(self.store.funcs[a], 'module', None) is inst
                    if a not in self._where or (own and not home[a]):
                        self._where[a], home[a] = Link(name, i), own
        return self._where


# ------------------------------------------------------------ restoring

def resolve(links, peers):
    """The store address of each link, all checked before the caller
    changes anything (a restore never stops half done)."""
    peers = check_peers(peers)
    out = []
    for link in links:
        inst = peers.get(link.instance)
        if inst is None:
            names = ', '.join(map(repr, list(peers)[:8])) or 'none'
            if len(peers) > 8:
                names += f', ... ({len(peers)} in all)'
            raise UnresolvedLink(link, f'no peer instance of that name (peers given: {names})')
        if link.fidx >= len(inst.funcaddrs):
            raise UnresolvedLink(link, f'instance {link.instance!r} has '
                                       f'{len(inst.funcaddrs)} functions')
        if faults.LINK_TARGET:
            out.append(inst.funcaddrs[(link.fidx + 1) % len(inst.funcaddrs)])
            continue
        out.append(inst.funcaddrs[link.fidx])
    return out


def check_types(store, module, funcaddrs, nfuncs, links, places):
    """Every link held where a typed function reference ``(ref $t)`` is
    expected must resolve to a function of type ``$t`` (reading could
    not check it: the type is the peer's).  ``places``: (type, value,
    where) of the state's funcref-class values; raises before any change."""
    for t, v, where in places:
        if v is None or S.value_class(t) != 'funcref' or v < nfuncs:
            continue
        heap = getattr(S.reftype(t), 'heap', None)
        if not isinstance(heap, int):
            continue                        # funcref, (ref func): any function fits
        got, want = store.funcs[funcaddrs[v]].type, module.types[heap]
        if got is not want and not deftypes.deftype_matches(S.type_key(got), S.type_key(want)):
            raise LinkTypeMismatch(f'{FILE}: link to {links[v - nfuncs]}: it has type {got}, but '
                                   f'{where} is of type {t} (type {heap}: {want})')


def func_addrs(inst, links, peers):
    """``inst.funcaddrs`` extended by the links' resolved addresses: the
    store address of every index of the extended function index space."""
    if not links:
        return inst.funcaddrs
    return list(inst.funcaddrs) + resolve(links, peers)


# ------------------------------------------------------------ link.img

def encode(links):
    """``link.img``: magic, u32 count, per link u32 function index, u32
    name length, the name's UTF-8 bytes."""
    out = [MAGIC, struct.pack('<I', len(links))]
    for link in links:
        name = link.instance.encode()
        out.append(struct.pack('<II', link.fidx, len(name)) + name)
    return b''.join(out)


def decode(data):
    """The links of ``link.img``, read with the image reader (errors are
    ``images.ImageError`` naming the field and byte)."""
    from .images import _Reader
    r = _Reader(FILE, data)
    if bytes(data[:4]) != MAGIC:
        r.fail('magic', f'{bytes(data[:4])!r}, expected {MAGIC!r}')
    r.pos = 4
    count = r.u32('link count')
    if count == 0:
        r.fail('link count', '0 (a set with no links has no link.img)')
    if count * 8 > len(data) - r.pos:
        r.fail('link count', f'{count} links cannot fit in {len(data)} bytes')
    links, seen = [], set()
    for k in range(count):
        fidx = r.u32(f'link {k} function index')
        n = r.u32(f'link {k} name length')
        if n == 0:
            r.fail(f'link {k} name length', '0 (an instance name is not empty)')
        if n > MAX_NAME:
            r.fail(f'link {k} name length', f'{n} bytes, more than an instance name may have '
                                            f'({MAX_NAME})')
        if r.pos + n > len(data):
            r.fail(f'link {k} name length', f'{n} bytes, but only {len(data) - r.pos} remain')
        try:
            name = bytes(data[r.pos:r.pos + n]).decode('utf-8')
        except UnicodeDecodeError:
            r.fail(f'link {k} name', 'not valid UTF-8')
        r.pos += n
        link = Link(name, fidx)
        if link in seen:
            r.fail(f'link {k}', f'{link} is listed twice')
        seen.add(link)
        links.append(link)
    r.end()
    return links
