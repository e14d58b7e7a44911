"""Defined types (Wasm 3.0 GC): rec groups, subtype declarations,
iso-recursive type equivalence and subtyping (spec valid/conventions.rst
"Rolling and Unrolling", valid/matching.rst).

A module's types stay a flat list of composite types (``FuncType``,
``StructType``, ``ArrayType``); its rec groups and ``sub`` declarations are
``Module.recs`` and ``Module.subs``.  ``canonicalize`` gives every type a
*key*, module-independent, such that two types are equivalent exactly when
their keys are equal:

* a type alone in its rec group, final, without supertypes and naming no
  type index (every Wasm 2.0 function type) is its own key, so such types
  compare by structure as they always did;
* any other type's key is a ``DefType``: its whole rec group, closed (a
  reference to a type of the same group written ``('rec', j)``, relative to
  the group, one to an earlier type replaced by that type's key), and its
  position in the group.  Keys are interned, so equal keys are usually the
  same object and comparing them is cheap.

Subtyping walks the declared supertypes of keys (``deftype_matches``) and
the abstract heap type lattice (any > eq > i31/struct/array > none,
func > nofunc, extern > noextern, exn > noexn); it is the one relation the
validator (by type index, through the module's keys) and the runtime
(call_indirect, casts, import matching: by key) both use.
"""

from . import syntax as S


class DefType(tuple):
    """A canonical defined type: (closed rec group, index in the group).
    A group entry is (final, closed supertypes, closed composite type)."""
    __slots__ = ()

    def __new__(cls, group, index):
        return tuple.__new__(cls, (group, index))

    def __repr__(self):
        return f'DefType({self[1]} of {self[0]!r})'


_INTERN = {}


def _intern(key):
    return _INTERN.setdefault(key, key)


def sub_of(module, i):
    """(final, supertype indices) of type ``i`` of ``module``."""
    return getattr(module, 'subs', None) and module.subs.get(i) or (True, ())


def rec_groups(module):
    """The rec groups of ``module`` as (first type index, size) pairs."""
    return _groups(len(module.types), getattr(module, 'recs', None) or ())


def _groups(ntypes, recs):
    out, start = [], 0
    for n in recs:
        out.append((start, n))
        start += n
    out.extend((i, 1) for i in range(start, ntypes))
    return out


def storage_types(ct):
    """The value and storage types a composite type mentions."""
    if isinstance(ct, S.FuncType):
        return tuple(ct.params) + tuple(ct.results)
    if isinstance(ct, S.StructType):
        return tuple(f.storage for f in ct.fields)
    return (ct.field.storage,)


def _mentions_index(ct):
    return any(isinstance(getattr(t, 'heap', None), int) for t in storage_types(ct))


def canonicalize(types, recs=(), subs=None):
    """The canonical key of every type of a module (see the module
    docstring); also stored on each type object (``type_key``).  ``types``
    may be a ``Module`` (its rec groups and sub declarations are used)."""
    if isinstance(types, S.Module):
        recs, subs, types = types.recs, types.subs, types.types
    subs = subs or {}
    keys = []
    for start, n in _groups(len(types), recs):
        end = start + n

        def close(t):
            r = S.reftype(t)
            if r is None or not isinstance(r.heap, int):
                return t
            return ('ref', r.nullable, _target(r.heap))

        def _target(j):
            if start <= j < end:
                return ('rec', j - start)
            return keys[j] if j < start else ('unknown', j)   # invalid: validation says so

        group = []
        for i in range(start, end):
            ct = types[i]
            final, sups = subs.get(i, (True, ()))
            if isinstance(ct, S.FuncType):
                cc = ('func', tuple(map(close, ct.params)), tuple(map(close, ct.results)))
            elif isinstance(ct, S.StructType):
                cc = ('struct', tuple((close(f.storage), f.mut) for f in ct.fields))
            else:
                cc = ('array', (close(ct.field.storage), ct.field.mut))
            group.append((final, tuple(_target(x) for x in sups), cc))
        if n == 1 and group[0][:2] == (True, ()) and not _mentions_index(types[start]):
            keys.append(types[start])
            object.__setattr__(types[start], '_key', types[start])
            continue
        group = tuple(group)
        for i in range(start, end):
            k = _intern(DefType(group, i - start))
            object.__setattr__(types[i], '_key', k)
            keys.append(k)
    return keys


def module_keys(module):
    """``canonicalize(module)``, cached on the module."""
    keys = module.__dict__.get('_type_keys')
    if keys is None or len(keys) != len(module.types):
        keys = module.__dict__['_type_keys'] = canonicalize(module)
    return keys


type_key = S.type_key


# ----------------------------------------------------------- reading keys

def _entry(key):
    return key[0][key[1]]


def kind(key):
    """'func', 'struct' or 'array': the composite type a key defines."""
    if isinstance(key, DefType):
        return _entry(key)[2][0]
    if isinstance(key, S.FuncType):
        return 'func'
    return 'struct' if isinstance(key, S.StructType) else 'array'


def is_final(key):
    return _entry(key)[0] if isinstance(key, DefType) else True


def supers(key):
    """The declared supertypes of a key (at most one in a valid module)."""
    if not isinstance(key, DefType):
        return ()
    group = key[0]
    return tuple(_intern(DefType(group, s[1])) if isinstance(s, tuple) and s[:1] == ('rec',)
                 and not isinstance(s, DefType) else s
                 for s in _entry(key)[1])


def deftype_matches(k1, k2):
    """k1 <= k2 for defined types: equal, or k2 among k1's declared
    supertypes, transitively (valid/matching.rst, S-def)."""
    while True:
        if k1 is k2 or k1 == k2:
            return True
        sup = supers(k1)
        if not sup:
            return False
        if len(sup) > 1:
            return any(deftype_matches(s, k2) for s in sup)
        k1 = sup[0]


# ------------------------------------------------------------ matching

_UP = {'eq': 'any', 'i31': 'eq', 'struct': 'eq', 'array': 'eq'}
_BOTTOM = {'func': 'nofunc', 'struct': 'none', 'array': 'none'}


def abstract_matches(a, b):
    """a <= b for abstract heap types."""
    if a == b:
        return True
    if a in S.HEAP_BOTTOMS:
        return S.HEAP_TOPS.get(b) == S.HEAP_TOPS[a]
    while a in _UP:
        a = _UP[a]
        if a == b:
            return True
    return False


def heap_sub(h1, h2):
    """h1 <= h2 for heap types that are abstract names or keys."""
    if h1 is h2:
        return True
    a1, a2 = isinstance(h1, str), isinstance(h2, str)
    if a1 and a2:
        return abstract_matches(h1, h2)
    if a2:
        k = kind(h1)
        return h2 == k or (k != 'func' and h2 in ('eq', 'any'))
    if a1:
        return h1 == _BOTTOM[kind(h2)]
    return deftype_matches(h1, h2)


def resolve(h, keys):
    """A heap type with a module's type index replaced by its key (None
    when the index is out of range)."""
    if isinstance(h, int):
        return keys[h] if 0 <= h < len(keys) else None
    return h


def heap_matches(h1, h2, keys):
    """h1 <= h2 for heap types of one module (``keys`` its canonical keys)."""
    if h1 == h2 and type(h1) is type(h2):
        return True
    h1, h2 = resolve(h1, keys), resolve(h2, keys)
    return h1 is not None and h2 is not None and heap_sub(h1, h2)


def matches(t1, t2, keys=()):
    """Value type t1 <= t2 (valid/matching.rst); None (the validation
    algorithm's Unknown / bottom) matches anything."""
    if t1 == t2 or t1 is None or t2 is None:
        return True
    r1, r2 = S.reftype(t1), S.reftype(t2)
    if r1 is None or r2 is None:
        return False
    return (r2.nullable or not r1.nullable) and heap_matches(r1.heap, r2.heap, keys)


def matches_across(t1, keys1, t2, keys2):
    """t1 (of a module with keys ``keys1``) <= t2 (of one with ``keys2``):
    import matching, where exporter and importer index types differently."""
    r1, r2 = S.reftype(t1), S.reftype(t2)
    if r1 is None or r2 is None:
        return t1 == t2
    if r1.nullable and not r2.nullable:
        return False
    h1, h2 = resolve(r1.heap, keys1), resolve(r2.heap, keys2)
    return h1 is not None and h2 is not None and heap_sub(h1, h2)


def storage_matches(s1, s2, keys):
    return s1 == s2 if s1 in S.PACKED_TYPES or s2 in S.PACKED_TYPES else matches(s1, s2, keys)


def field_matches(f1, f2, keys):
    """Field subtyping: immutable fields are covariant, mutable ones invariant."""
    if f1.mut != f2.mut:
        return False
    if f1.mut:
        return storage_matches(f1.storage, f2.storage, keys) and \
            storage_matches(f2.storage, f1.storage, keys)
    return storage_matches(f1.storage, f2.storage, keys)


def comptype_matches(c1, c2, keys):
    """Composite type c1 <= c2 (S-comp): functions contravariant in their
    parameters and covariant in their results, structs by width and depth,
    arrays by their element."""
    if isinstance(c1, S.FuncType):
        return isinstance(c2, S.FuncType) and len(c1.params) == len(c2.params) \
            and len(c1.results) == len(c2.results) \
            and all(matches(b, a, keys) for a, b in zip(c1.params, c2.params)) \
            and all(matches(a, b, keys) for a, b in zip(c1.results, c2.results))
    if isinstance(c1, S.StructType):
        return isinstance(c2, S.StructType) and len(c1.fields) >= len(c2.fields) \
            and all(field_matches(a, b, keys) for a, b in zip(c1.fields, c2.fields))
    return isinstance(c2, S.ArrayType) and field_matches(c1.field, c2.field, keys)
