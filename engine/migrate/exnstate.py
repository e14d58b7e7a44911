"""Exception-handling state of a stopped run, module-level (spec: exception
instances and the handlers of each frame), for checkpoints, image sets,
the translator and the neutral form.

What a stopped run holds beyond 2.0 state:

- ``exnref`` values (caught with ``catch_ref``/``catch_all_ref``) on the
  stack, in locals, globals and tables.  Module-level (a ``Snapshot``, an
  image set) such a value is ``syntax.Exn(tag index of the module, fields)``,
  the fields module-level too (function indices, nested exnrefs), as a
  funcref is a function index there.  An exception of a tag the module
  neither defines nor imports cannot be named and is refused.
- the exception each open legacy ``catch`` arm caught (what ``rethrow``
  throws again): ``Frame.caught``, outermost arm first.
- the handlers active in each frame: the ``try_table`` (and legacy ``try``)
  blocks open at the frame's position.  They follow from the code and the
  position, as labels do, so neither executor state nor the files add
  anything for them: the WAMR model's label stack holds one entry per open
  ``try_table`` (checked against the code when read), the neutral form
  lists them per frame (derived, checked), the WasmEdge model derives them.

In an image set the exception instances are a table in ``exception.img``
(see docs/images.md "Exceptions"), an exnref cell is an index into it.
"""

from ..exec.exceptions import Handlers
from ..exec.cells import CELLS, NONE, from_cells, value_cells
from ..syntax import Exn, value_class

FILE = 'exception.img'
MAX_NESTING = 200      # exceptions inside exceptions' fields a set may hold (conversions recurse)


class _Same:
    """Tag index -> itself: static handler tables in module terms."""

    def __getitem__(self, k):
        return k


def tag_types(module):
    """The function type of every tag of ``module``, imports first."""
    cache = module.__dict__.get('_tag_types')
    if cache is None:
        idx = [imp.desc.typeidx for imp in module.imports if imp.kind == 'tag']
        idx += [t.typeidx for t in module.tags]
        cache = module.__dict__['_tag_types'] = [module.types[x] for x in idx]
    return cache


def uses_exceptions(module):
    """Whether runs of ``module`` can hold exception state: it has tags or
    try blocks (cached on the module: every checkpoint asks)."""
    hit = module.__dict__.get('_uses_exceptions')
    if hit is None:
        hit = module.__dict__['_uses_exceptions'] = bool(tag_types(module)) or any(
            ins.op in ('try', 'try_table') for f in module.funcs for ins in f.body)
    return hit


def handlers(module, nimported, fidx):
    """Static handler tables (``exec.exceptions.Handlers``, tags as module
    indices) of defined function ``fidx`` (imports counted)."""
    cache = module.__dict__.setdefault('_exn_handlers', {})
    h = cache.get(fidx)
    if h is None:
        h = cache[fidx] = Handlers(module.funcs[fidx - nimported].body, _Same())
    return h


def catch_depth(module, nimported, fidx, pc):
    """Open legacy catch arms before instruction ``pc``."""
    return handlers(module, nimported, fidx).catch_depth[pc]


def open_handlers(module, nimported, fidx, pc):
    """The try_table / legacy try blocks whose body holds ``pc`` (their
    handlers are active there), outermost first, as (instr index, kind)."""
    h = handlers(module, nimported, fidx)
    out = []
    b = h.innermost[pc]
    while b != -1:
        t = h.tries.get(b)
        if t is not None and b < pc < t.body_end:
            out.append(b)
        b = h.parent[b]
    out.reverse()
    return out


# ------------------------------------------------ store level <-> module level

def exn_in(v, inst, ref_in):
    """A module-level Exn as the store-level one of instance ``inst``."""
    params = tag_types(inst.module)[v.tag].params
    return Exn(inst.tagaddrs[v.tag], [ref_in(t, f) for t, f in zip(params, v.fields)])


# ------------------------------------------------ exception.img

class ExnTable:
    """Module-level exnref values -> indices of ``exception.img``'s table:
    (tag index, field cells), a nested exnref field as an earlier index."""

    def __init__(self, module, gc=None):
        self.types = tag_types(module)
        self.entries = []
        self.ids = {}
        self.gc = gc               # gcheap.HeapTable of a set with a heap

    def cell(self, v):
        if v is None:
            return NONE
        k = self.ids.get(v)
        if k is None:
            cells = []
            for t, f in zip(self.types[v.tag].params, v.fields):
                cells.extend([self.cell(f)] if value_class(t) == 'exnref' else
                             [self.gc.cell(t, f)] if self.gc is not None and _gc_class(t)
                             else value_cells(t, f))
            k = self.ids[v] = len(self.entries)
            self.entries.append((v.tag, cells))
        return k

    def cells(self, t, v, to_cells):
        if value_class(t) == 'exnref':
            return [self.cell(v)]
        if self.gc is not None and _gc_class(t):
            return [self.gc.cell(t, v)]
        return to_cells(t, v)


def _gc_class(t):
    """Whether a slot of type ``t`` is a heap entry id in a set with a heap."""
    return value_class(t) in ('anyref', 'externref')


def read_table(module, entries, nfuncs, fail, heap=None):
    """The Exn values of ``exception.img``'s table, checked against the
    module (``fail(field, message)`` raises); ``heap``: the values of a
    set's ``gc.img`` entries (its anyref/externref cells are entry ids)."""
    types = tag_types(module)
    out = []
    depth = []
    shapes = {}            # tag -> (cells, [(type, cells, class) per field]), once per tag
    for k, (tag, cells) in enumerate(entries):
        if tag >= len(types):
            fail(f'exception {k} tag', f'{tag} but the module has {len(types)} tags')
        params = types[tag].params
        shape = shapes.get(tag)
        if shape is None:
            shape = shapes[tag] = (sum(CELLS[t] for t in params),
                                   [(t, CELLS[t], 'exnref' if value_class(t) == 'exnref' else
                                     'heap' if heap is not None and _gc_class(t) else
                                     value_class(t)) for t in params])
        want, kinds = shape
        if len(cells) != want:
            fail(f'exception {k} fields', f'{len(cells)} cells, tag {tag} has {want} '
                                          f'({" ".join(params) or "no fields"})')
        fields, pos, d = [], 0, 1
        for t, n, cls in kinds:
            c = cells[pos:pos + n]
            if cls == 'exnref':
                fields.append(None if c[0] == NONE else _earlier(out, c[0], k, fail))
                if c[0] != NONE:
                    d = max(d, depth[c[0]] + 1)
            elif cls == 'heap':
                from . import gcheap
                v = gcheap.lookup(heap, t, c[0], fail, f'exception {k} fields')
                fields.append(gcheap.check_value(module, t, v, f'exception {k} fields', fail))
            else:
                f = from_cells(t, c)
                if cls == 'funcref' and f is not None and f >= nfuncs:
                    fail(f'exception {k} fields', f'function index {f} out of range')
                fields.append(f)
            pos += n
        if d > MAX_NESTING:
            fail(f'exception {k} fields', f'exceptions nested {d} deep (at most {MAX_NESTING})')
        depth.append(d)
        out.append(Exn(tag, fields))
    return out


def _earlier(out, i, k, fail):
    if i >= len(out):
        fail(f'exception {k} fields', f'exnref {i} does not name an earlier exception')
    return out[i]


def lookup(table, cell, fail, where):
    """The exnref an exnref cell of an image names."""
    if cell == NONE:
        return None
    if cell >= len(table):
        fail(where, f'exnref {cell} but {FILE} holds {len(table)} exceptions')
    return table[cell]
