"""Wasm 3.0 parts of the fuzz generator (``fuzz.gen``): exception handling,
typed function references and GC, as mixins of ``gen.ModuleGen`` and
``gen.FuncGen`` (feature names as in wasm-tools: ``'exceptions'``,
``'function-references'``, ``'gc'``, all among ``gen.FEATURES``' defaults).

Two thirds of the modules use the features (the compiled tier interprets
a function using them, ``engine/exec/compile.py``: the other third stays
compiled, loops included).

Exceptions: a module has 1-3 tags whose parameters are of any value type,
and a mutable ``exnref`` global; each function using the features has an
``exnref`` local.
``throw`` may stand anywhere (nested blocks, callees: frames unwound across
calls; an exception nobody catches ends the entry, which wasmtime and both
models must agree on).  A ``try_table`` is emitted in the shape compilers
give a try/catch: an outer block for its results, one handler block per
clause (``catch``, ``catch_ref``, ``catch_all``, ``catch_all_ref``) nested
inside it, so the clauses' labels lie at several depths, and sometimes one
more ``catch_all`` to an enclosing label of no result.  A handler stores
what it caught (``exnref`` values into the local or global, so a caught
exception is live at later checkpoints) and ``throw_ref`` throws a stored
one again later (behind a null test, except now and then in risky
modules).  Checkpoints inside a ``try_table`` body, or in a callee called
from one, hold active handlers.  A tag's parameter is sometimes ``exnref``
(or ``funcref``), and an entry's prologue then throws one carrying the
exception caught before, so exceptions nest (exception.img).  In a GC
module a tag's parameter is also often a GC reference (a NODE, an A, an
ARR, an i31 or an anyref: ``ModuleGC.gc_tag_type``): throws carry
objects (``FuncGC.gc_value``), the entry's first caught exception is
mostly of such a tag (kept in the exnref global: exception.img's GC
fields at most checkpoints), and a handler keeps a caught GC field in
the digest, a GC global or a GC table (``FuncGC.keep_gc``).
One in eight of the modules using exceptions first throw, inside 257-264
nested blocks, one of a tag of 257-264 i32 fields, and keep it in a
global of its own (``ModuleFeatures3.deep_catch``): counts past CPython's
shared small ints in exception.img and in a frame's labels.

Legacy exception handling (``'legacy-exceptions'``, with ``'exceptions'``):
half the exception-using modules also emit ``try bt ... catch $t ...
catch_all ... end`` (arms holding the caught exception: ``caught`` at
their checkpoints, also in callees called from an arm), ``rethrow`` to an
enclosing arm behind a condition, and ``try bt ... delegate l`` to an
enclosing label.  wasmtime cannot run these modules: ``fuzz.oracle`` skips
its comparison for exactly them (``wasmtime_runs``).

Typed function references: functions after the entry may take or return
``(ref $t)``/``(ref null $t)`` of a later function's type, functions have
such locals (the non-nullable ones set first thing), and ``call_ref``,
``return_call_ref`` (with tail calls on: through a local or parameter of
a later function's type with this function's results, to which such
locals and parameters lean), ``ref.as_non_null``, ``br_on_null`` and
``br_on_non_null`` use them.
Termination: a value of type ``(ref null? $t)`` only ever holds a defined
function whose type is ``$t`` (``ref.func`` is the only source), and
``call_ref`` on ``$t`` is emitted in function i only when every function
of type ``$t`` is after i, so the call graph stays a DAG.  Types refer only
to earlier types (no recursion groups needed): signatures are given their
references from the last function down, each naming an already interned
type.

GC (``ModuleGC``, ``FuncGC``): half the modules, three in four of the
two thirds that use the 3.0 features (the minimal draw included:
hypothesis's simplest modules use it; the third left plain stays compiled
whole in the compiled tier, which interprets every function of a GC
module), declare types 0-4 first:
A (open: a mutable i32, a mutable i8/i16, an immutable i8/i16/i64), B
(``sub`` A, final or not, one more mutable i64), the rec group {NODE,
NODES} (NODE: a mutable i32, a mutable ``(ref null NODE)``, a mutable
``(ref null A)``; NODES an array of NODE references) and ARR (an array of
a mutable i8/i16/i32/i64); mutable globals of a NODE, an A and an anyref,
an exported i32 heap digest, and an anyref table and a ``(ref null NODE)``
table after every other table.
Every function starts (straight-line, in the entry before the dive's and
the tail chain's calls) by making an A or B, a NODE pointing at it and at
the caller's NODE from the global, a cycle (the NODE to itself or two
NODEs to each other), an array (``array.new``/``new_default``/
``new_fixed``), and shares them through the globals and the tables (with
i31s, NODES arrays, NODEs gone through ``extern.convert_any`` and back),
from numbers that cannot trap (constants, locals, globals: the heap is made
before anything may end the entry, risky modules included);
its body then reads fields (``struct.get``/``_s``/``_u``, ``array.get``,
``array.len``), writes them (``struct.set``, ``array.set``/``fill``/
``copy``), relinks NODEs, compares (``ref.eq``), tests and casts
(``ref.test``, ``ref.cast`` guarded by ``ref.test`` or bare in risky
modules, ``br_on_cast`` to B's own field, ``br_on_cast_fail``) and makes
new objects; the numbers read go on the operand stack (results, globals,
memory), and the function ends by adding a digest of what it reaches to
the digest global.  So objects made early are live at every later
checkpoint, shared between frames, globals and tables.  Three in four
GC modules also have a passive GC element segment (``ModuleGC.plan_gc_elem``:
anyref, or ``(ref null NODE)``, items made by constant expressions),
copied into the tables by ``table.init`` (by the entry's prologue, and in
bodies) and read by ``array.new_elem`` (an anyref segment's arrays of the
type ANYS, type 5), and in a third of them dropped by the entry: a
checkpoint's ``gc_elems`` share objects with the tables, before and after
the drop.  Drawn after every other choice of the module
(``ModuleGC.gc_floats``), the storage types the rest never declares:
FA, an array of f32, f64 or (with SIMD) v128, and FS, a struct of
mutable and immutable f32 and f64 fields, a v128, a non-null reference to
FA, a funcref, an externref (in two thirds of the modules FA or an i31
made external, ``extern.convert_any``) and an anyref (the host's
reference when the entry takes one, as the other externrefs), appended after every other type, one object of each
made by the entry's prologue from NaNs with payloads, -0, infinities and
subnormals (``SPECIAL``) and kept in two globals of their own, read into
the digest and written by every callee.  Newer still (``ModuleGC.gc_reach``):
every function reads GC table slots and tests them for null (the entry
first thing, while all are null), and appends to a *growing array* kept
in a global of its own (a longer array with the old one copied in, so
the global holds arrays of one type and many lengths); a module with a
drawn legacy ``try`` gets *quiet tries* whose bodies complete normally.  Null
references are read only behind ``br_on_non_null`` (bare now and then in
risky modules, which then trap, as wasmtime does); array indices are in
bounds except now and then in risky modules.  No signature, exported
global or exported table has a GC type: wasmtime compares numbers, the
oracle compares the GC state as structure (``fuzz.oracle.GCRef``).
"""

from types import SimpleNamespace

from engine import syntax
from engine.migrate.gcheap import _uses_gc     # uncached: the features change the module after
from engine.syntax import (ANYREF, EXNREF, EXTERNREF, F32, F64, FUNCREF, I32, I64, V128, ArrayType, FieldType,
                           FuncType, Instr, RefType, StructType, value_class)
from fuzz import linked

LEGACY = 'legacy-exceptions'
EXN_FEATURES = frozenset({'exceptions', 'function-references', LEGACY})
GC = 'gc'
GC_FEATURES = frozenset({GC})
MAX_TAG_PARAMS = 3
LONG_ARRAY = 260        # fields of the GC segment's long arrays (past CPython's small ints, 256)
TAG_PAD = 258           # unused tags before the host tag in some modules (its index past 256)
WIDE_PAD = 257          # function types before the wide struct (its index past 256)
WIDE_FIELDS = (257, 264)   # the wide struct's i32 fields
DEEP_LABELS = (257, 264)   # the blocks around the wide exception's catch (ModuleFeatures3.deep_catch)
FAR_IMPORTS = (257, 260)   # more imports of a host function (ModuleFeatures3.far_entry)
ANY_GLOBAL = 'pany'     # the provider's anyref global (ModuleFeatures3.imported_any)
CATCH, CATCH_REF, CATCH_ALL, CATCH_ALL_REF = range(4)
HOST_TAG = (EXTERNREF, EXNREF)      # the entry's host exception (FuncFeatures3.host_exception)
I31REF = RefType(True, 'i31')


def is_typed(t):
    """A concrete typed function reference type (not a GC struct/array one)."""
    return isinstance(t, RefType) and isinstance(t.heap, int) and getattr(t, 'top', 'func') == 'func'


def is_gc(t):
    """A reference of GC's any hierarchy (anyref, a struct or array type)."""
    return isinstance(t, RefType) and value_class(t) == ANYREF


# ---------------------------------------------------------------- GC


# bit patterns of the GC float fields (ModuleGC.gc_floats), in fours: a NaN
# with a payload (quiet or signalling, either sign), -0, an infinity, a
# subnormal, so any four in a row hold one of each
SPECIAL = {
    F32: (0x7FC00001, 0x80000000, 0x7F800000, 0x00000001, 0xFFC00123, 0x80000000, 0xFF800000,
          0x807FFFFF, 0x7FA00001, 0x80000000, 0x7F800000, 0x00400000),
    F64: (0x7FF8000000000001, 0x8000000000000000, 0x7FF0000000000000, 0x0000000000000001,
          0xFFF8000000000123, 0x8000000000000000, 0xFFF0000000000000, 0x800FFFFFFFFFFFFF,
          0x7FF4000000000001, 0x8000000000000000, 0x7FF0000000000000, 0x0008000000000000),
}


def special(t, k):
    """``t.const`` of special bit pattern ``k`` (modulo the list): a v128
    is four f32 or two f64 ones (k even / odd), every lane another."""
    if t != V128:
        vals = SPECIAL[t]
        return (t + '.const', vals[k % len(vals)])
    bits = 32 if k % 2 == 0 else 64
    vals = SPECIAL[F32 if bits == 32 else F64]
    return ('v128.const', sum(vals[(k + j) % len(vals)] << (bits * j) for j in range(128 // bits)))


def _unpacked(storage):
    """The value type a field of ``storage`` reads and writes."""
    return I32 if storage in ('i8', 'i16') else storage


class ModuleGC:
    """``ModuleGen`` side of 'gc': the struct and array types, the GC
    globals and the anyref table (see the module docstring)."""

    def init_gc(self, features):
        # GC's types are typed references: without function references
        # (wasm-tools' 'gc' needs them too) no module uses GC
        self.gc = GC in features and 'function-references' in features
        self.use_gc = False
        self.gct = None
        self.any_turn = False       # which empty array ``vector`` stores next

    def plan_gc(self, plain):
        """Whether the module uses GC (three in four of the modules not
        ``plain``: ``choices3``; the minimal draw says yes, so hypothesis's
        simplest modules use it too), and its types,
        interned first (types 0-4, before any function type): A (open, a
        mutable i32, a mutable packed field, an immutable packed or i64
        one), B (a subtype of A with one more mutable i64), the rec group
        {NODE, NODES} (NODE: a mutable i32, a mutable reference to a NODE,
        so cycles, and one to an A; NODES: an array of NODE references) and
        ARR (an array of a mutable number, maybe packed)."""
        if not self.gc:
            return
        c = self.c
        self.use_gc = not plain and c.integers(0, 3) < 3
        if not self.use_gc:
            return
        assert not self.types, 'the GC types come first'
        a, b, node, nodes, arr = range(5)
        p1, p2 = c.choice(('i8', 'i16')), c.choice(('i8', 'i16', I64))
        elem = c.choice(('i8', 'i16', I32, I64))
        ra, rnode = RefType(True, a, 'any'), RefType(True, node, 'any')
        fa = (FieldType(I32, True), FieldType(p1, True), FieldType(p2, False))
        self.types += [StructType(fa), StructType(fa + (FieldType(I64, True),)),
                       StructType((FieldType(I32, True), FieldType(rnode, True), FieldType(ra, True))),
                       ArrayType(FieldType(rnode, True)), ArrayType(FieldType(elem, True))]
        self.gct = SimpleNamespace(
            a=a, b=b, node=node, nodes=nodes, arr=arr, p1=p1, p2=p2, elem=elem,
            ra=ra, rnode=rnode, rarr=RefType(True, arr, 'any'),
            recs=[1, 1, 2, 1], subs={a: (False, ()), b: (c.boolean(), (a,))},
            table_size=c.integers(2, 4))
        self.plan_gc_elem()

    def plan_gc_elem(self):
        """The GC element segment (three in four GC modules, the minimal
        draw included): passive, mostly of type anyref (else ``(ref null
        NODE)``), 1-4 items that are constant expressions making objects
        (``gc_elem_item``).  Code copies it into the anyref (or NODE)
        table with ``table.init`` and makes arrays of it with
        ``array.new_elem`` (an anyref segment gets an array type of its
        own, ANYS, type 5, for that), so a checkpoint holds it live
        (``gc_elems``) with its objects shared with tables, globals and
        arrays.  In one in three of these modules the entry drops it
        (``elem.drop`` at its top level, ``FuncGC.body_seq``), and then
        only the entry uses it, with empty ranges after its drop:
        checkpoints fall before and after the drop.  Drawn after every
        other choice of ``plan_gc``."""
        c, t = self.c, self.gct
        t.seg = None
        if c.integers(0, 3) == 3:
            return
        typ = t.rnode if c.integers(0, 3) == 3 else ANYREF
        n = c.integers(1, 4)
        drop = c.integers(0, 2) == 2
        items = [self.gc_elem_item(typ) for _ in range(n)]
        array = t.nodes
        if typ == ANYREF:
            array = len(self.types)
            self.types.append(ArrayType(FieldType(ANYREF, True)))
        t.seg = SimpleNamespace(type=typ, items=items, n=n, drop=drop, array=array,
                                rarray=RefType(True, array, 'any'))

    def gc_elem_index(self):
        """The GC segment's index: after table 0's active segment, the
        scratch table's passive one and the declarative one of a module
        using typed references (``assemble3`` appends it next)."""
        return 1 + bool(self.refs) + bool(self.typed and self.use3)

    def gc_elem_item(self, typ):
        """One item of the GC segment: a constant expression (Wasm 3.0
        allows struct.new, array.new*, ref.i31, extern conversions and i32
        add/sub/mul in them) of a NODE (its next a nested NODE or null, its
        A field an A or B or null), an A or B, an i31 (sometimes of an
        extended constant, or gone through externref and back), an ARR of
        1-4 elements (a default one of 4: LONG_ARRAY), or null.  Instructions as (op, imm) pairs."""
        c, t = self.c, self.gct
        if typ == t.rnode:
            how = c.weighted([(4, 'node'), (1, 'null')])
        else:
            how = c.weighted([(3, 'node'), (2, 'a'), (2, 'i31'), (2, 'arr'), (1, 'null')])
        if how == 'null':
            return [('ref.null', typ)]
        if how == 'node':
            nxt = [('ref.null', t.rnode)]
            if c.integers(0, 2) == 0:
                nxt = [('i32.const', self.const_value(I32)), ('ref.null', t.rnode), ('ref.null', t.ra),
                       ('struct.new', t.node)]
            fa = self.gc_elem_a() if c.boolean() else [('ref.null', t.ra)]
            return [('i32.const', self.const_value(I32))] + nxt + fa + [('struct.new', t.node)]
        if how == 'a':
            return self.gc_elem_a()
        if how == 'i31':
            k = c.integers(0, 3)
            if k == 0:      # an extended constant expression
                code = [('i32.const', self.const_value(I32)), ('i32.const', self.const_value(I32)),
                        (c.choice(('i32.add', 'i32.sub', 'i32.mul')), None), ('ref.i31', None)]
            else:
                code = [('i32.const', self.const_value(I32)), ('ref.i31', None)]
            if k == 1:
                code += [('extern.convert_any', None), ('any.convert_extern', None)]
            return code
        n = c.integers(1, 4)
        e = _unpacked(t.elem)
        how = c.weighted([(2, 'fixed'), (1, 'new'), (1, 'default')])
        if how == 'fixed':
            return [(e + '.const', self.const_value(e)) for _ in range(n)] + [('array.new_fixed', (t.arr, n))]
        if how == 'new':
            return [(e + '.const', self.const_value(e)), ('i32.const', n), ('array.new', t.arr)]
        if n == 4:
            # a long array, from the draws made (no new one): objects past
            # 256 fields, where lengths are no longer CPython's shared small
            # ints and a length compared by identity tells equal heaps apart
            n = LONG_ARRAY
        return [('i32.const', n), ('array.new_default', t.arr)]

    def gc_elem_a(self):
        """A constant A or B: struct.new with constants, or struct.new_default."""
        c, t = self.c, self.gct
        how = c.weighted([(3, 'a'), (2, 'b'), (1, 'default')])
        if how == 'default':
            return [('struct.new_default', c.choice((t.a, t.b)))]
        p2 = _unpacked(t.p2)
        code = [('i32.const', self.const_value(I32)), ('i32.const', self.const_value(I32)),
                (p2 + '.const', self.const_value(p2))]
        if how == 'b':
            code.append(('i64.const', self.const_value(I64)))
        return code + [('struct.new', t.a if how == 'a' else t.b)]

    def gc_tag_type(self):
        """A tag parameter of a GC type: a NODE, an A, an anyref, an ARR or
        an i31 reference, all nullable (``FuncGC.gc_value`` makes their
        values, ``FuncGC.keep_gc`` keeps what a handler catches)."""
        t = self.gct
        return self.c.weighted([(3, t.rnode), (2, t.ra), (3, ANYREF), (1, t.rarr), (1, I31REF)])

    def gc_globals(self):
        """Mutable globals of a NODE, an A, an anyref, and the heap digest
        (an exported i32 every function adds what it reads of the heap to
        at its end: ``FuncGC.epilogue3``)."""
        if not self.use_gc:
            return
        t = self.gct
        for name, vt in (('g_node', t.rnode), ('g_a', t.ra), ('g_any', ANYREF)):
            setattr(t, name, len(self.globals))
            self.globals.append((vt, True, ('ref.null', vt)))
        t.g_digest = len(self.globals)
        self.globals.append((I32, True, ('i32.const', 0)))

    def gc_table(self):
        """Index of the anyref table: after every other table (the NODE
        table, of type ``(ref null NODE)`` and the same size, follows it)."""
        return self.exn_table() + (self.exn_global is not None)

    def assemble_gc(self, m):
        if self.use_gc:
            m.recs = list(self.gct.recs)
            m.subs = dict(self.gct.subs)

    def assemble_gc_table(self, m):
        if self.use_gc:
            assert len(m.imported('table')) + len(m.tables) == self.gc_table()
            n = self.gct.table_size
            m.tables.append(syntax.Table(syntax.TableType(syntax.Limits(n, n), ANYREF)))
            m.tables.append(syntax.Table(syntax.TableType(syntax.Limits(n, n), self.gct.rnode)))

    # ---- late: a GC type with no GC in it (drawn after every other choice)

    def null_gc(self, m):
        """Half the modules that may use GC but do not (``plan_gc``) get
        GC that no code touches: one mutable global of a type of the any
        hierarchy, null, or (three in four of those whose code uses no 3.0
        feature) a struct type appended after every other type.  Such a
        module still *uses GC* (docs/images.md "GC heap"), so its image sets carry an (empty) heap and its neutral
        documents the GC version, with "memories": only the types say so,
        not the code, and with the struct type alone no value is of a 3.0
        type.  Drawn after every other choice, so a seed keeps the rest of
        its module."""
        c = self.c
        if not self.gc or self.use_gc or c.integers(0, 1):
            return
        if not self.use3 and c.integers(0, 3) < 3:
            m.types.append(StructType((FieldType(c.choice((I32, I64, F64, 'i8')), c.boolean()),)))
            return
        heap = c.choice(('any', 'eq', 'i31', 'struct', 'array', 'none'))
        t = RefType(True, heap)
        m.globals.append(syntax.Global(syntax.GlobalType(True, t), [Instr('ref.null', t), Instr('end')]))

    def gc_wide(self, m, stops):
        """One in eight GC modules gets a *wide* struct W: 257-264 mutable
        i32 fields, its type index past 256 (WIDE_PAD function types
        before it), an object of it made by the entry's prologue (one
        field set) and kept in a mutable global after every other global,
        so every later checkpoint's heap holds it: a field count and a type
        index past CPython's shared small ints, which an ``is`` taken for
        ``==`` gets wrong (gc.img's and neutral.json's struct field
        counts, the oracle's heap comparison).  The object passes through
        a non-nullable ``(ref W)`` local of the entry, and the stops gain
        the instruction count right after ``struct.new_default``: there
        that local is not set yet (3.0 local_init: it holds null), an
        anyref-class slot every route (neutral.json's too) must carry as
        null although its type forbids it.  Drawn after every other
        choice (``ModuleGen.assemble`` calls it last), so a seed keeps the
        rest of its module.  Returns the stops, moved by the instructions
        added before them, and that one."""
        if not self.use_gc or self.c.integers(0, 7):
            return stops
        c = self.c
        n = c.integers(*WIDE_FIELDS)
        self.types += [FuncType((), ()) for _ in range(WIDE_PAD)]
        w = len(self.types)
        self.types.append(StructType(tuple(FieldType(I32, True) for _ in range(n))))
        rw = RefType(True, w, 'any')
        g = len(m.imported('global')) + len(m.globals)
        m.globals.append(syntax.Global(syntax.GlobalType(True, rw), [Instr('ref.null', rw), Instr('end')]))
        nn = len(self.sigs[0].params) + len(m.funcs[0].locals)
        m.funcs[0].locals.append(RefType(False, w, 'any'))
        code = [Instr('struct.new_default', w), Instr('local.tee', nn), Instr('global.set', g),
                Instr('global.get', g), Instr('i32.const', c.integers(1, 0x7fffffff)),
                Instr('struct.set', (w, c.integers(0, n - 1)))]
        entry = m.funcs[0].body
        entry[self.prologue:self.prologue] = code
        # the entry's straight-line prologue runs once, less the
        # instructions its early exit (always taken there) skips
        from fuzz.gen import EARLY_EXIT_TAIL    # gen imports this module
        unset = self.prologue - len(EARLY_EXIT_TAIL) + 1
        return tuple(s + len(code) for s in stops) + (unset,)

    # ---- late: float, v128 and reference fields (drawn after every other choice)

    def gc_floats(self, m, stops):
        """Types with the storage types the rest of the GC code never
        declares, an object of each kept live from the entry's prologue
        on, and reads and writes of them in every other function: drawn
        after every other choice (``ModuleGen.assemble`` calls it last),
        so a seed keeps the rest of its module.  Returns the stops,
        moved by the instructions added before them.

        FA (an array of f32, f64 or, with SIMD, v128, mutable) and FS (a
        struct of a mutable f32 and f64, a v128 with SIMD, an immutable
        f32 or f64, a non-null immutable reference to FA, a funcref, an
        externref and an anyref, the last two the host's reference when
        the entry takes one, so anyref fields hold host references; in two
        thirds of the modules the externref holds FA or an i31 made
        external instead, an internal value in an external field),
        appended after every other type; two mutable globals of them after
        every other global.  Numbers are NaNs with payloads, -0,
        infinities and subnormals (``SPECIAL``; a drawn index into the
        list for each object, its fields or elements the patterns after it,
        so a fuzzer whose bytes ran out still gets them), and v128 lanes
        all differ.  The heap the oracle compares at the end is
        reached from the globals, field by field, bit-exact; the
        callees also fold a float field into the exported digest and
        write an element of FA, after the checkpoints that fall before
        their calls."""
        if not self.use_gc:
            return stops
        c, t = self.c, self.gct
        kinds = [F32, F64] + ([V128] if self.simd else [])
        elem = c.choice(kinds)
        fa = len(self.types)
        self.types.append(ArrayType(FieldType(elem, True)))
        rfa = RefType(False, fa, 'any')
        fields = [FieldType(F32, c.integers(0, 3) > 0), FieldType(F64, c.integers(0, 3) > 0)]
        if self.simd:
            fields.append(FieldType(V128, True))
        fields += [FieldType(c.choice((F32, F64)), False), FieldType(rfa, False),
                   FieldType(FUNCREF, True), FieldType(EXTERNREF, True), FieldType(ANYREF, True)]
        fs = len(self.types)
        self.types.append(StructType(tuple(fields)))
        nglobals = len(m.imported('global')) + len(m.globals)
        g_fa, g_fs = nglobals, nglobals + 1
        for k in (fa, fs):
            m.globals.append(syntax.Global(syntax.GlobalType(True, RefType(True, k, 'any')),
                                           [Instr('ref.null', RefType(True, k, 'any')), Instr('end')]))
        t.floats = SimpleNamespace(fa=fa, fs=fs, elem=elem, fields=fields, g_fa=g_fa, g_fs=g_fs)
        host = self.sigs[0].params.index(EXTERNREF) if EXTERNREF in self.sigs[0].params else None
        n = c.integers(2, 6)
        base = c.integers(0, 63)
        code = [special(elem, base + k) for k in range(n)]
        code += [('array.new_fixed', (fa, n)), ('global.set', g_fa)]
        base = c.integers(0, 63)
        for k, f in enumerate(fields):
            if f.storage in kinds:
                code.append(special(f.storage, base + k))
            elif f.storage == rfa:
                code += [('global.get', g_fa), ('ref.as_non_null', None)]
            elif f.storage == FUNCREF:
                code.append(('ref.func', self.fbase + c.integers(0, self.nfuncs - 1)))
            elif f.storage == EXTERNREF and base % 3:
                # an internal value made external and stored so (no draw: by
                # the drawn base): FA or an i31, an externref field holding
                # a GC object or an i31 across the checkpoints
                code += ([('global.get', g_fa)] if base % 3 == 1 else
                         [('i32.const', base), ('ref.i31', None)]) + [('extern.convert_any', None)]
            elif host is None:
                code.append(('ref.null', f.storage))
            else:
                code.append(('local.get', host))
                if f.storage == ANYREF:
                    code.append(('any.convert_extern', None))
        code += [('struct.new', fs), ('global.set', g_fs)]
        entry = m.funcs[0].body
        entry[self.prologue:self.prologue] = [Instr(op, imm) for op, imm in code]
        for f in m.funcs[1:self.nfuncs]:
            f.body[0:0] = [Instr(op, imm) for op, imm in self.gc_floats_use()]
        return tuple(s + len(code) for s in stops)

    def gc_floats_use(self):
        """A callee's first code: a number field of FS (or an element of
        FA) folded into the digest (``block``, ``br_on_null``: the globals
        are null until the entry's prologue has run), and an element of FA
        set to another special number."""
        c, g, f = self.c, self.gct, self.gct.floats
        nums = [k for k, ft in enumerate(f.fields) if ft.storage in (F32, F64, V128)]
        if c.boolean():
            k = c.choice(nums)
            read, st = [('global.get', f.g_fs), ('br_on_null', 0), ('struct.get', (f.fs, k))], \
                f.fields[k].storage
        else:
            read, st = [('global.get', f.g_fa), ('br_on_null', 0), ('i32.const', c.integers(0, 1)),
                        ('array.get', f.fa)], f.elem
        if st == F32:
            fold = [('i32.reinterpret_f32', None)]
        elif st == F64:
            fold = [('i64.reinterpret_f64', None), ('i64.const', c.choice((0, 32))), ('i64.rotl', None),
                    ('i32.wrap_i64', None)]
        else:
            fold = [('i32x4.extract_lane', c.integers(0, 3))]
        digest = [('global.get', g.g_digest), ('i32.add', None), ('global.set', g.g_digest)]
        write = [('global.get', f.g_fa), ('br_on_null', 0), ('i32.const', c.integers(0, 1)),
                 special(f.elem, c.integers(0, 63)), ('array.set', f.fa)]
        return [('block', None)] + read + fold + digest + [('end', None), ('block', None)] + write + \
            [('end', None)]

    # ---- newest: null slots, a growing array, quiet tries (ModuleGen.reach)

    def gc_reach(self, m, g, code):
        """The GC and legacy-exception part of ``ModuleGen.reach``: appends
        to each function's first ``code`` (the entry's first) and returns
        the instruction count of what it adds to the entry (straight-line).

        A GC module's functions probe slots of the anyref and NODE tables
        (``table.get``, then ``ref.is_null`` into the digest, or
        ``br_on_null`` around a field read): the entry first thing, while
        every slot is still null, the others after the prologues filled
        some, callees also clear one now and then (``table.set`` of null),
        so null GC references are read, tested and held in both models'
        cells.  The module also keeps a *growing array* (a vector: an ARR
        in a global of its own, from an empty one): every function, first
        thing and again at its end (the entry in a loop of 2-6 rounds),
        appends to it by making a longer array, copying the old one in and
        setting the new last elements (the old array's elements are the
        new one's prefix), now and then truncates it by one the same way,
        and starts again from a short array of defaults when it has grown
        long, so the global holds arrays of one type and many lengths
        through the run.  A module with the legacy forms wraps an update
        of ``g`` in a ``try`` whose body completes normally (its ``catch``
        arms jumped over), as most try bodies of real programs do: first
        thing in each function after the entry, last thing in the entry
        (when the drawn code has a ``try`` already: wasmtime, which cannot
        run the legacy forms, still runs the others)."""
        steps = 0
        if self.use_gc:
            c, t = self.c, self.gct
            gv = len(m.imported('global')) + len(m.globals)
            m.globals.append(syntax.Global(syntax.GlobalType(True, t.rarr), [
                Instr('i32.const', 0), Instr('array.new_default', t.arr), Instr('end')]))
            for k, f in enumerate(m.funcs[:self.nfuncs]):
                old = len(self.types[f.typeidx].params) + len(f.locals)
                f.locals.append(t.rarr)
                add = self.null_probes(k == 0) + self.vector(gv, old, k == 0)
                code[k] += add
                if k == 0:
                    steps += len(add)
        # (only where the drawn code has a legacy form already: wasmtime
        # cannot run these modules, and the others stay compared with it)
        if self.legacy and any(ins.op == 'try' for f in m.funcs for ins in f.body):
            for k in range(1, self.nfuncs):
                code[k] += self.quiet_try(g)
            # and the entry's last thing (WAMR counts a body run into its
            # catch one more: none may come before a stop)
            m.funcs[0].body[-1:-1] = [Instr(op, imm) for op, imm in self.quiet_try(g)]
        if self.use_gc:
            # and again at each function's end (before its last instruction)
            # (the entry's in a loop of 2-6 rounds: after its stops, whose
            # counts a loop's taken branches would make the models' differ)
            for k, f in enumerate(m.funcs[:self.nfuncs]):
                old = len(self.types[f.typeidx].params) + len(f.locals) - 1
                end = self.vector(gv, old, False)
                if k == 0:
                    f.locals.append(I32)
                    n = old + 1
                    end = [('i32.const', c.integers(2, 6)), ('local.set', n), ('loop', None)] + end + [
                        ('local.get', n), ('i32.const', 1), ('i32.sub', None), ('local.tee', n),
                        ('br_if', 0), ('end', None)]
                f.body[-1:-1] = [Instr(op, imm) for op, imm in end]
        return steps

    def null_probes(self, entry):
        """Reads of GC table slots tested for null (``gc_reach``); the
        entry's straight-line (``ref.is_null`` folded into the digest)."""
        c, t = self.c, self.gct
        any_t, node_t = self.gc_table(), self.gc_table() + 1
        code = []

        def slot():
            return ('i32.const', c.integers(0, t.table_size - 1))
        fold = [('global.get', t.g_digest), ('i32.add', None), ('global.set', t.g_digest)]
        if not entry and c.integers(0, 2) == 0:
            tab = c.choice((any_t, node_t))
            code += [slot(), ('ref.null', ANYREF if tab == any_t else t.rnode), ('table.set', tab)]
        for tab in (any_t, node_t):
            if entry or c.boolean():
                code += [slot(), ('table.get', tab), ('ref.is_null', None)] + fold
            else:
                read = [('struct.get', (t.node, 0))] if tab == node_t else [('ref.test', I31REF), ]
                code += [('block', None), slot(), ('table.get', tab), ('br_on_null', 0)] + read + fold + \
                    [('end', None)]
        return code

    def vector(self, gv, old, entry):
        """Append 1-2 elements to the growing array in global ``gv``
        (``old``: a local of its type), or (not in the entry) truncate it
        by one, or start it again when longer than 6 (``gc_reach``); not
        in the entry, first put an empty ARR or NODES (by turns) into the
        anyref global."""
        c, t = self.c, self.gct
        e = _unpacked(t.elem)
        code = []
        if not entry:
            # the anyref global gets an empty array, of ARR and of NODES by
            # turns: objects of one kind and length that only their types
            # tell apart, one replacing the other within a few steps
            self.any_turn = not self.any_turn
            code += [('i32.const', 0), ('array.new_default', t.arr if self.any_turn else t.nodes),
                     ('global.set', t.g_any),
                     ('global.get', gv), ('array.len', None), ('i32.const', 6), ('i32.gt_u', None),
                     ('if', None), ('i32.const', c.integers(0, 2)), ('array.new_default', t.arr),
                     ('global.set', gv), ('end', None)]
        code += [('global.get', gv), ('local.set', old)]
        if not entry and c.integers(0, 3) == 0:
            # truncate: the first len - 1 elements (an empty array stays empty)
            length = [('local.get', old), ('array.len', None), ('i32.const', 1), ('i32.sub', None),
                      ('i32.const', 0), ('local.get', old), ('array.len', None), ('select', None)]
            return code + length + [('array.new_default', t.arr), ('global.set', gv),
                                    ('global.get', gv), ('i32.const', 0), ('local.get', old),
                                    ('i32.const', 0)] + length + [('array.copy', (t.arr, t.arr))]
        d = c.integers(1, 2)
        code += [('local.get', old), ('array.len', None), ('i32.const', d), ('i32.add', None),
                 ('array.new_default', t.arr), ('global.set', gv),
                 ('global.get', gv), ('i32.const', 0), ('local.get', old), ('i32.const', 0),
                 ('local.get', old), ('array.len', None), ('array.copy', (t.arr, t.arr))]
        for j in range(d):
            code += [('global.get', gv), ('local.get', old), ('array.len', None)]
            if j:
                code += [('i32.const', j), ('i32.add', None)]
            code += [(e + '.const', self.const_value(e)), ('array.set', t.arr)]
        return code

    def quiet_try(self, g):
        """``try { g += 1 } catch $t { drop the fields; g ^= 256 } catch_all
        { g ^= 512 } end``: a legacy try whose body completes normally
        (``gc_reach``)."""
        c = self.c
        code = [('try', None), ('global.get', g), ('i32.const', 1), ('i32.add', None), ('global.set', g)]
        if self.tags and c.boolean():
            tag = c.integers(0, len(self.tags) - 1)
            code += [('catch', tag)] + [('drop', None)] * len(self.tags[tag]) + \
                [('global.get', g), ('i32.const', 256), ('i32.xor', None), ('global.set', g)]
        code += [('catch_all', None), ('global.get', g), ('i32.const', 512), ('i32.xor', None),
                 ('global.set', g), ('end', None)]
        return code


class FuncGC:
    """``FuncGen`` side of 'gc': every function of a GC module starts by
    building objects into its GC locals and globals (``prologue_gc``), its
    body reads, writes, relinks, compares and casts them (``do_gc``: the
    numbers read go on the operand stack, so into results, globals and
    memory), and it ends by adding a digest of the heap to the exported
    digest global (``epilogue3``).  Local ``n1`` holds a NODE from the
    prologue on and is never written again, so it is the non-null fallback
    of every guard; ``a`` and ``arr`` are only ever set to new objects."""

    def locals_gc(self):
        self.gcl = None
        mg = self.mg
        if not mg.use_gc:
            return
        t = mg.gct
        self.gcl = SimpleNamespace(n1=self.new_local(t.rnode), n2=self.new_local(t.rnode),
                                   a=self.new_local(t.ra), arr=self.new_local(t.rarr),
                                   any=self.new_local(ANYREF))
        self.arr_len = None
        self.gc_plain = False
        self.seg_dropped = False        # the entry's elem.drop of the GC segment is behind

    # ---- building

    def field_value(self, t):
        """Push a number for a new object: any value in the body, but in the
        prologue (``gc_plain``) one that cannot trap (a constant, a local, a
        global): a trap there would end the entry before any object is
        made, so no checkpoint would see a heap."""
        if not self.gc_plain:
            self.value(t)
            return
        c, ls, gs = self.c, self.locals_of(t), self.globals_of(t)
        how = c.weighted([(4, 'const'), (3 if ls else 0, 'local'), (2 if gs else 0, 'global')])
        if how == 'const':
            self.emit(t + '.const', self.mg.const_value(t))
        else:
            self.emit(f'{how}.get', c.choice(ls if how == 'local' else gs))

    def prologue_gc(self):
        """Objects made at the function's start (straight-line code, in the
        entry before the prologue mark ``ModuleGen.dive`` calls its chain
        at, and before a tail chain is entered), live through its body:
        an A or B, a NODE pointing at it (and at the caller's NODE from
        the global), a cycle (the NODE to itself, or two NODEs to each
        other), an array, the anyref table and globals sharing them; the
        entry of a module whose GC segment is never dropped then copies
        part of the segment into the anyref table."""
        if not self.gcl:
            return
        c, t, L = self.c, self.mg.gct, self.gcl
        self.gc_plain = True
        self.new_a()
        self.emit('local.set', L.a)
        self.emit('i32.const', c.integers(0, 0xFFFFFFFF))
        if c.boolean():
            self.emit('global.get', t.g_node)
        else:
            self.emit('ref.null', t.rnode)
        self.emit('local.get', L.a)
        self.emit('struct.new', t.node)
        self.emit('local.set', L.n1)
        pair = c.boolean()
        if not pair:                    # n1 -> n1
            self.emit('local.get', L.n1)
            self.emit('local.get', L.n1)
        else:                           # n1 -> n2 -> n1
            self.emit('i32.const', c.integers(0, 0xFFFFFFFF))
            self.emit('local.get', L.n1)
            if c.boolean():
                self.emit('local.get', L.a)
            else:
                self.emit('ref.null', t.ra)
            self.emit('struct.new', t.node)
            self.emit('local.set', L.n2)
            self.emit('local.get', L.n1)
            self.emit('local.get', L.n2)
        self.emit('struct.set', (t.node, 1))
        self.emit('local.get', L.n2 if pair and c.boolean() else L.n1)
        self.emit('global.set', t.g_node)
        self.arr_len = c.integers(1, 5)
        self.new_arr()
        self.emit('local.set', L.arr)
        self.emit('local.get', L.a)
        self.emit('global.set', t.g_a)
        for _ in range(c.integers(1, 2)):
            self.emit('i32.const', c.integers(0, t.table_size - 1))
            self.any_value()
            self.emit('table.set', self.mg.gc_table())
        self.emit('i32.const', c.integers(0, t.table_size - 1))
        self.emit('local.get', L.n2 if pair and c.boolean() else L.n1)
        self.emit('table.set', self.mg.gc_table() + 1)
        self.any_value()
        self.emit('global.set', t.g_any)
        seg = t.seg
        if self.idx == 0 and seg is not None and not seg.drop:
            # the segment's objects into the anyref table: shared between
            # the segment (live: gc_elems) and the table from the start
            n = c.integers(1, min(seg.n, t.table_size))
            self.emit('i32.const', c.integers(0, t.table_size - n))
            self.emit('i32.const', c.integers(0, seg.n - n))
            self.emit('i32.const', n)
            self.emit('table.init', (self.mg.gc_elem_index(), self.mg.gc_table()))
        self.gc_plain = False

    def new_a(self):
        """Push a new A or B (as an A): struct.new or struct.new_default."""
        c, t = self.c, self.mg.gct
        how = c.weighted([(3, 'a'), (2, 'b'), (2, 'default')])
        if how == 'default':
            self.emit('struct.new_default', c.choice((t.a, t.b)))
            return
        self.field_value(I32)
        self.field_value(I32)
        self.field_value(_unpacked(t.p2))
        if how == 'b':
            self.field_value(I64)
        self.emit('struct.new', t.a if how == 'a' else t.b)

    def new_arr(self):
        """Push a new ARR of the function's length: array.new, new_default
        or new_fixed."""
        c, t, n = self.c, self.mg.gct, self.arr_len
        how = c.weighted([(2, 'new'), (1, 'default'), (2, 'fixed')])
        if how == 'fixed':
            for _ in range(n):
                self.field_value(_unpacked(t.elem))
            self.emit('array.new_fixed', (t.arr, n))
            return
        if how == 'new':
            self.field_value(_unpacked(t.elem))
        self.emit('i32.const', n)
        self.emit('array.new' if how == 'new' else 'array.new_default', t.arr)

    def any_value(self):
        """Push an anyref: a NODE, the A, the array, an i31, a NODES array,
        a NODE gone through externref and back, or null."""
        c, t, L = self.c, self.mg.gct, self.gcl
        how = c.weighted([(3, 'node'), (2, 'a'), (2, 'arr'), (2, 'i31'), (1, 'nodes'),
                          (1, 'extern'), (1, 'null')])
        if how == 'node':
            self.node_ref()
        elif how == 'a':
            self.emit('local.get', L.a)
        elif how == 'arr':
            self.emit('local.get', L.arr)
        elif how == 'i31':
            self.field_value(I32)
            self.emit('ref.i31')
        elif how == 'nodes':
            if c.boolean():
                self.emit('local.get', L.n1)
                self.emit('local.get', L.n2)
                self.emit('array.new_fixed', (t.nodes, 2))
            else:
                self.emit('local.get', L.n1)
                self.emit('i32.const', c.integers(1, 3))
                self.emit('array.new', t.nodes)
        elif how == 'extern':
            self.emit('local.get', L.n1)
            self.emit('extern.convert_any')
            self.emit('any.convert_extern')
        else:
            self.emit('ref.null', ANYREF)

    # ---- references

    def node_ref(self, nonnull=False):
        """Push a NODE reference: n1, n2, the global's, a NODE table slot,
        n1's next or next's next; the maybe-null ones behind ``br_on_non_null`` with n1 as the
        fallback when ``nonnull`` (bare, so maybe trapping, now and then in
        risky modules)."""
        c, t, L = self.c, self.mg.gct, self.gcl
        how = c.weighted([(3, 'n1'), (2, 'n2'), (2, 'global'), (2, 'next'), (1, 'next2'),
                          (1, 'table')])
        if how == 'n1':
            self.emit('local.get', L.n1)
            return
        guard = nonnull and not (self.mg.risky and c.integers(0, 3) == 0)
        if guard:
            self.emit('block', RefType(False, t.node, 'any'))
        if how == 'n2':
            self.emit('local.get', L.n2)
        elif how == 'global':
            self.emit('global.get', t.g_node)
        elif how == 'table':
            self.emit('i32.const', c.integers(0, t.table_size - 1))
            self.emit('table.get', self.mg.gc_table() + 1)
        else:
            self.emit('local.get', L.n1)
            self.emit('struct.get', (t.node, 1))
            if how == 'next2':
                self.emit('struct.get', (t.node, 1))    # n1's next is never null
        if guard:
            self.emit('br_on_non_null', 0)
            self.emit('local.get', L.n1)
            self.emit('ref.as_non_null')
            self.emit('end')

    def a_ref(self):
        """Push a non-null A (unless a risky module's bare NODE field):
        the local, the global, or a NODE's A field behind a guard."""
        c, t, L = self.c, self.mg.gct, self.gcl
        how = c.weighted([(3, 'local'), (2, 'global'), (2, 'field')])
        if how == 'local':
            self.emit('local.get', L.a)
            return
        guard = not (self.mg.risky and c.integers(0, 3) == 0)
        if guard:
            self.emit('block', RefType(False, t.a, 'any'))
        if how == 'global':
            self.emit('global.get', t.g_a)
        else:
            self.node_ref(nonnull=True)
            self.emit('struct.get', (t.node, 2))
        if guard:
            self.emit('br_on_non_null', 0)
            self.emit('local.get', L.a)
            self.emit('ref.as_non_null')
            self.emit('end')

    def any_source(self):
        """Push an anyref read back: the local, the global, a slot of the
        anyref table or of the NODE table."""
        c, t = self.c, self.mg.gct
        how = c.weighted([(2, 'local'), (2, 'global'), (3, 'table'), (1, 'ntable')])
        if how == 'local':
            self.emit('local.get', self.gcl.any)
        elif how == 'global':
            self.emit('global.get', t.g_any)
        else:
            self.emit('i32.const', c.integers(0, t.table_size - 1))
            self.emit('table.get', self.mg.gc_table() + (how == 'ntable'))

    def arr_index(self, room=1):
        """An i32 index into the array leaving ``room`` elements from it
        (out of bounds now and then in risky modules)."""
        c = self.c
        if self.mg.risky and c.integers(0, 7) == 0:
            self.emit('i32.const', self.arr_len + c.integers(0, 2))
        else:
            self.emit('i32.const', c.integers(0, self.arr_len - room))

    # ---- the body's actions

    def do_gc(self, st, _):
        c = self.c
        what = c.weighted([(6, 'number'), (3, 'write'), (2, 'relink'), (2, 'new'), (2, 'store'),
                           (3 if self.seg_usable() else 0, 'segment')])
        if what == 'segment':
            self.gc_segment()
        elif what == 'number':
            st.append(self.gc_number())
        elif what == 'write':
            self.gc_write()
        elif what == 'relink':
            self.gc_relink()
        elif what == 'new':
            self.gc_new()
        else:
            self.gc_store()

    def gc_number(self):
        """Push a number read from the heap; returns its type."""
        c, t, L = self.c, self.mg.gct, self.gcl
        how = c.weighted([(3, 'node'), (3, 'a'), (2, 'b'), (3, 'eq'), (3, 'array'), (2, 'len'),
                          (2, 'test'), (2, 'i31'), (2, 'cast'), (1, 'extern')])
        if how == 'node':
            self.node_ref(nonnull=True)
            self.emit('struct.get', (t.node, 0))
            return I32
        if how == 'a':
            self.a_ref()
            k = c.integers(0, 2)
            storage = (I32, t.p1, t.p2)[k]
            if storage in ('i8', 'i16'):
                self.emit(c.choice(('struct.get_s', 'struct.get_u')), (t.a, k))
            else:
                self.emit('struct.get', (t.a, k))
            return _unpacked(storage)
        if how == 'b':
            # block $b (result i64) { block $c (result (ref B)) { A ; br_on_cast $c ;
            # drop ; i64.const ; br $b } struct.get B 3 }: B's own field when the A is a B
            self.emit('block', I64)
            self.emit('block', RefType(False, t.b, 'any'))
            self.a_ref()
            self.emit('br_on_cast', (0, t.ra, RefType(False, t.b, 'any')))
            self.emit('drop')
            self.value(I64)
            self.emit('br', 1)
            self.emit('end')
            self.emit('struct.get', (t.b, 3))
            self.emit('end')
            return I64
        if how == 'eq':
            for _ in range(2):
                w = c.weighted([(3, 'node'), (1, 'a'), (1, 'any')])
                if w == 'node':
                    self.node_ref()
                elif w == 'a':
                    self.emit('local.get', L.a)
                else:       # an anyref as an eqref: a guarded cast (null when not one)
                    self.any_source()
                    self.emit('local.tee', L.any)
                    self.emit('ref.test', RefType(True, 'eq'))
                    self.emit('if', RefType(True, 'eq'))
                    self.emit('local.get', L.any)
                    self.emit('ref.cast', RefType(True, 'eq'))
                    self.emit('else')
                    self.emit('ref.null', RefType(True, 'eq'))
                    self.emit('end')
            self.emit('ref.eq')
            return I32
        if how == 'array':
            self.emit('local.get', L.arr)
            self.arr_index()
            if t.elem in ('i8', 'i16'):
                self.emit(c.choice(('array.get_s', 'array.get_u')), t.arr)
            else:
                self.emit('array.get', t.arr)
            return _unpacked(t.elem)
        if how == 'len':
            self.emit('local.get', L.arr)
            self.emit('array.len')
            return I32
        if how == 'test':
            self.any_source()
            target = c.choice((RefType(False, t.node, 'any'), RefType(True, t.a, 'any'),
                               RefType(False, t.b, 'any'), RefType(False, 'i31'),
                               RefType(False, 'struct'), RefType(False, 'array'),
                               RefType(True, 'eq'), RefType(False, t.nodes, 'any')))
            self.emit('ref.test', target)
            return I32
        if how == 'i31':
            # any ; tee ; ref.test (ref i31) ; if (result i32) { get ; ref.cast ; i31.get } else { const }
            self.any_source()
            self.emit('local.tee', L.any)
            self.emit('ref.test', RefType(False, 'i31'))
            self.emit('if', I32)
            self.emit('local.get', L.any)
            self.emit('ref.cast', RefType(False, 'i31'))
            self.emit(c.choice(('i31.get_s', 'i31.get_u')))
            self.emit('else')
            self.value(I32)
            self.emit('end')
            return I32
        if how == 'cast':
            # a NODE's value through an anyref: a risky module's bare cast may
            # fail (a trap), the others' is guarded by br_on_cast_fail
            if self.mg.risky and c.integers(0, 3) == 0:
                self.any_source()
                self.emit('ref.cast', RefType(True, t.node, 'any'))
                self.emit('struct.get', (t.node, 0))
                return I32
            # block $b (result i32) { block $f (result anyref) { any ; br_on_cast_fail $f ;
            # struct.get NODE 0 ; br $b } drop ; const }
            self.emit('block', I32)
            self.emit('block', ANYREF)
            self.any_source()
            self.emit('br_on_cast_fail', (0, ANYREF, RefType(False, t.node, 'any')))
            self.emit('struct.get', (t.node, 0))
            self.emit('br', 1)
            self.emit('end')
            self.emit('drop')
            self.value(I32)
            self.emit('end')
            return I32
        # extern: a NODE through externref and back is the same object
        self.node_ref()
        self.emit('extern.convert_any')
        self.emit('any.convert_extern')
        if c.boolean():
            self.emit('ref.test', RefType(False, t.node, 'any'))
        else:
            self.emit('ref.cast', RefType(True, 'eq'))
            self.node_ref()
            self.emit('ref.eq')
        return I32

    def gc_write(self):
        """struct.set of a NODE's or an A's field, array.set / fill / copy."""
        c, t, L = self.c, self.mg.gct, self.gcl
        how = c.weighted([(3, 'node'), (2, 'a'), (3, 'set'), (1, 'fill'), (1, 'copy')])
        if how == 'node':
            self.node_ref(nonnull=True)
            self.value(I32)
            self.emit('struct.set', (t.node, 0))
        elif how == 'a':
            self.a_ref()
            k = c.integers(0, 1)
            self.value(I32)
            self.emit('struct.set', (t.a, k))
        elif how == 'set':
            self.emit('local.get', L.arr)
            self.arr_index()
            self.value(_unpacked(t.elem))
            self.emit('array.set', t.arr)
        elif how == 'fill':
            n = c.integers(0, self.arr_len)
            self.emit('local.get', L.arr)
            self.emit('i32.const', c.integers(0, self.arr_len - n))
            self.value(_unpacked(t.elem))
            self.emit('i32.const', n)
            self.emit('array.fill', t.arr)
        else:
            n = c.integers(0, self.arr_len)
            self.emit('local.get', L.arr)
            self.emit('i32.const', c.integers(0, self.arr_len - n))
            if c.boolean():
                self.emit('local.get', L.arr)       # overlapping: memmove semantics
            else:
                self.new_arr()
            self.emit('i32.const', c.integers(0, self.arr_len - n))
            self.emit('i32.const', n)
            self.emit('array.copy', (t.arr, t.arr))

    def gc_relink(self):
        """Change the graph: n2 from somewhere, a NODE's next (cycles), a
        NODE's A, the NODE global."""
        c, t, L = self.c, self.mg.gct, self.gcl
        how = c.weighted([(2, 'n2'), (3, 'next'), (1, 'field_a'), (2, 'global')])
        if how == 'n2':
            self.node_ref()
            self.emit('local.set', L.n2)
        elif how == 'next':
            # the target is non-null, so n1's next stays non-null
            self.node_ref(nonnull=True)
            self.node_ref(nonnull=True)
            self.emit('struct.set', (t.node, 1))
        elif how == 'field_a':
            self.node_ref(nonnull=True)
            self.emit('local.get', L.a)
            self.emit('struct.set', (t.node, 2))
        else:
            self.node_ref()
            self.emit('global.set', t.g_node)

    def gc_new(self):
        """New objects: an A (local, maybe the global), a NODE (n2), an array."""
        c, t, L = self.c, self.mg.gct, self.gcl
        how = c.weighted([(2, 'a'), (2, 'node'), (1, 'arr')])
        if how == 'a':
            self.new_a()
            if c.boolean():
                self.emit('local.tee', L.a)
                self.emit('global.set', t.g_a)
            else:
                self.emit('local.set', L.a)
        elif how == 'node':
            self.value(I32)
            self.node_ref()
            self.emit('local.get', L.a)
            self.emit('struct.new', t.node)
            self.emit('local.set', L.n2)
        else:
            self.new_arr()
            self.emit('local.set', L.arr)

    def gc_store(self):
        """An anyref into the anyref table, the global or the local; a NODE
        into the NODE table."""
        c, t, L = self.c, self.mg.gct, self.gcl
        how = c.weighted([(3, 'table'), (2, 'global'), (1, 'local'), (2, 'ntable')])
        if how == 'table':
            self.emit('i32.const', c.integers(0, t.table_size - 1))
            self.any_value()
            self.emit('table.set', self.mg.gc_table())
        elif how == 'ntable':
            self.emit('i32.const', c.integers(0, t.table_size - 1))
            self.node_ref()
            self.emit('table.set', self.mg.gc_table() + 1)
        else:
            self.any_value()
            self.emit('global.set' if how == 'global' else 'local.set',
                      t.g_any if how == 'global' else L.any)

    # ---- the GC element segment

    def seg_usable(self):
        """Whether this function uses the GC segment: every function when
        it is never dropped, else the entry only (which drops it)."""
        seg = self.mg.gct.seg
        return seg is not None and (not seg.drop or self.idx == 0)

    def seg_range(self, room):
        """(source offset, count) of a range of the segment of at most
        ``room`` items; after the entry's drop (the segment is empty then)
        an empty range at 0, and now and then in risky modules a range
        past the end (a trap, as a dropped segment's too)."""
        c, seg = self.c, self.mg.gct.seg
        if self.mg.risky and c.integers(0, 7) == 0:
            n = c.integers(1, min(room, seg.n))
            return c.integers(seg.n - n + 1, seg.n), n
        if self.seg_dropped:
            return 0, 0
        n = c.integers(0, min(room, seg.n))
        return c.integers(0, seg.n - n), n

    def body_seq(self, results):
        """The function's body after its prologues: ``seq([], results,
        16)``, except in the entry of a module whose GC segment is dropped:
        there up to 8 steps, the ``elem.drop`` (at the top level, so code
        emitted after it runs after it, and reads empty ranges of the
        segment: ``seg_range``), then up to 12 more.  Draws as before in
        every other function."""
        from fuzz.gen import STOP
        seg = self.mg.gct.seg if self.gcl else None
        if self.idx or seg is None or not seg.drop:
            self.seq([], results, 16)
            return
        if self.seq([], (), 8) is STOP:
            return
        self.emit('elem.drop', self.mg.gc_elem_index())
        self.seg_dropped = True
        self.seq([], results, 12)

    def gc_segment(self):
        """``table.init`` of the anyref table (or the NODE table, from a
        NODE segment), or ``array.new_elem`` (the array kept in the table,
        a global, the anyref local, or one of its elements folded into the
        digest)."""
        c, t, L = self.c, self.mg.gct, self.gcl
        seg = t.seg
        index = self.mg.gc_elem_index()
        how = c.weighted([(3, 'init'), (2, 'new')])
        if how == 'init':
            table = self.mg.gc_table() + (seg.type == t.rnode and c.boolean())
            src, n = self.seg_range(t.table_size)
            self.emit('i32.const', c.integers(0, t.table_size - n))
            self.emit('i32.const', src)
            self.emit('i32.const', n)
            self.emit('table.init', (index, table))
        else:
            src, n = self.seg_range(4)
            self.emit('i32.const', src)
            self.emit('i32.const', n)
            self.emit('array.new_elem', (seg.array, index))
            where = c.weighted([(2, 'table'), (2, 'global'), (1, 'local'), (3 if n else 0, 'digest')])
            if where == 'table':
                self.stack_into_table(seg.rarray)
            elif where == 'global':
                self.emit('global.set', t.g_any)
            elif where == 'local':
                self.emit('local.set', L.any)
            else:
                self.emit('i32.const', c.integers(0, n - 1))
                self.emit('array.get', seg.array)
                self.fold_gc(seg.type)
                self.add_to_digest()

    # ---- GC values of tags: thrown and caught

    def gc_value(self, t):
        """Push a value of a GC tag parameter's type (``gc_tag_type``): a
        NODE, the A (or a new one), the array (or a new one), an i31, any
        anyref (``any_value``), now and then null."""
        c, g, L = self.c, self.mg.gct, self.gcl
        heap = t.heap
        if c.integers(0, 7) == 0:
            self.emit('ref.null', t)
        elif heap == g.node:
            self.node_ref()
        elif heap == g.a:
            how = c.weighted([(2, 'local'), (1, 'global'), (1, 'new')])
            if how == 'new':
                self.new_a()
            else:
                self.emit(f'{how}.get', L.a if how == 'local' else g.g_a)
        elif heap == g.arr:
            if c.boolean():
                self.new_arr()
            else:
                self.emit('local.get', L.arr)
        elif heap == 'i31':
            self.field_value(I32)
            self.emit('ref.i31')
        else:
            self.any_value()

    def keep_gc(self, t):
        """Consume a GC value (a caught exception's field), keeping it
        observable: folded into the digest (``fold_gc``), into a GC global
        or the anyref (a NODE also the NODE) table, or dropped now and
        then; so a field that migrated wrong changes the final state."""
        c, g = self.c, self.mg.gct
        how = c.weighted([(3, 'digest'), (2, 'global'), (2, 'table'), (1, 'drop')])
        if how == 'digest':
            self.fold_gc(t)
            self.add_to_digest()
        elif how == 'global':
            own = {g.node: g.g_node, g.a: g.g_a}.get(t.heap)
            self.emit('global.set', own if own is not None and c.integers(0, 2) else g.g_any)
        elif how == 'table':
            self.stack_into_table(RefType(True, t.heap, getattr(t, 'top', None)), t.heap == g.node)
        else:
            self.emit('drop')

    def stack_into_table(self, t, node_too=False):
        """The reference of type ``t`` on the stack into a drawn slot of the
        anyref table (or, ``node_too``, now and then the NODE table),
        through a scratch local (table.set takes the index first)."""
        c = self.c
        s = self.scratch_local('gc', t)
        self.emit('local.set', s)
        self.emit('i32.const', c.integers(0, self.mg.gct.table_size - 1))
        self.emit('local.get', s)
        self.emit('table.set', self.mg.gc_table() + (node_too and c.boolean()))

    def add_to_digest(self):
        """The i32 on the stack added to the digest global."""
        g = self.mg.gct
        self.emit('global.get', g.g_digest)
        self.emit('i32.add')
        self.emit('global.set', g.g_digest)

    def fold_gc(self, t):
        """Turn the GC value of type ``t`` on the stack into an i32 telling
        what it is: a chain of ``br_on_cast_fail`` over the types it may
        be (NODE: its number; B: its own i64, wrapped; A: a packed field;
        i31: its value; ARR: element 0, every ARR has one; NODES, ANYS:
        the length), ending in ``ref.is_null`` for the rest."""
        c, g = self.c, self.mg.gct

        def packed(op, storage):
            return op + c.choice(('_s', '_u')) if storage in ('i8', 'i16') else op
        wrap = [('i32.wrap_i64', None)]
        node = (g.node, [('struct.get', (g.node, 0))])
        b = (g.b, [('struct.get', (g.b, 3))] + wrap)
        a = (g.a, [(packed('struct.get', g.p1), (g.a, 1))])
        i31 = ('i31', [(c.choice(('i31.get_s', 'i31.get_u')), None)])
        arr = (g.arr, [('i32.const', 0), (packed('array.get', g.elem), g.arr)] + (wrap if g.elem == I64 else []))
        nodes = (g.nodes, [('array.len', None)])
        cases = {g.node: [node], g.a: [b, a], g.arr: [arr], 'i31': [i31], g.nodes: [nodes]}.get(t.heap)
        if cases is None:
            cases = [node, b, a, i31, arr, nodes]
            seg = g.seg
            if seg is not None and seg.array != g.nodes:
                cases.append((seg.array, [('array.len', None)]))
            if t.heap != 'any':
                cases = []
        src = RefType(True, t.heap, getattr(t, 'top', None))
        s = self.scratch_local('gc', src)
        self.emit('local.set', s)
        self.emit('block', I32)
        for _ in cases:
            self.emit('block', src)
        self.emit('local.get', s)
        for j, (heap, read) in enumerate(cases):
            if j:
                self.emit('end')
            target = RefType(False, heap, 'any' if isinstance(heap, int) else None)
            self.emit('br_on_cast_fail', (0, src, target))
            for op, imm in read:
                self.emit(op, imm)
            self.emit('br', len(cases) - j)
        if cases:
            self.emit('end')
        self.emit('ref.is_null')
        self.emit('end')

    def epilogue3(self):
        """The function's last act (unreachable after a return: valid all
        the same): add what it reads of the heap to the digest global, so a
        lost or split object shows in an exported number."""
        if not self.gcl:
            return
        t, L = self.mg.gct, self.gcl
        self.emit('global.get', t.g_digest)
        self.node_ref(nonnull=True)
        self.emit('struct.get', (t.node, 0))
        self.emit('i32.add')
        self.emit('local.get', L.n1)
        self.emit('global.get', t.g_node)
        self.emit('ref.eq')
        self.emit('i32.add')
        self.emit('local.get', L.arr)
        self.emit('array.len')
        self.emit('i32.add')
        self.emit('local.get', L.n1)
        self.emit('struct.get', (t.node, 1))
        self.emit('struct.get', (t.node, 0))
        self.emit('i32.add')
        self.emit('global.set', t.g_digest)


class ModuleFeatures3(ModuleGC):
    """``ModuleGen`` side: tags, the exnref global, typed signatures."""

    def init3(self, features):
        self.init_gc(features)
        self.exn = 'exceptions' in features
        self.legacy_feature = self.exn and LEGACY in features
        self.legacy = False         # this module emits legacy try/catch (choices3)
        self.typed = 'function-references' in features
        self.tags = []              # FuncType (params only) per tag
        self.exn_global = None
        self.host_tag = None        # the entry's host exception's tag (FuncFeatures3.host_exception)

    def choices3(self):
        """Whether the module's code uses the features at all: a third of
        the modules do not, so the compiled tier (which interprets every
        function using them, and every function of a GC module: each starts
        with its GC prologue) keeps whole modules compiled; then the typed
        signatures.  With 'gc' the third is drawn first (the minimal draw:
        not plain), and the rest all use the other features, as two thirds
        of the modules did before GC, and three in four of them GC too
        (``plan_gc``).  Without 'gc' the draw is the one of before GC
        existed, so those modules stay as they were."""
        if self.gc:
            plain = self.c.integers(0, 2) == 2
            self.plan_gc(plain)
            self.use3 = (self.exn or self.typed) and not plain
        else:
            self.use3 = (self.exn or self.typed) and self.c.integers(0, 2) > 0
        # half the exception-using modules also use the legacy forms (which
        # wasmtime cannot run: fuzz.oracle skips its comparison for them)
        self.legacy = self.legacy_feature and self.use3 and self.c.boolean()
        self.typed_signatures()

    def typed_signatures(self):
        """Give some signatures after the entry a typed reference parameter
        or result (of a later function's type: interned first)."""
        if not self.typed or not self.use3:
            return
        c = self.c
        n = self.nfuncs
        for i in reversed(range(1, n)):
            if i + 1 >= n or c.integers(0, 2):
                continue
            ft = self.sigs[i]
            # half the time a function with this one's results, which it can
            # tail-call through the reference (return_call_ref)
            same = [j for j in range(i + 1, n) if self.sigs[j].results == ft.results]
            j = c.choice(same) if same and c.boolean() else c.integers(i + 1, n - 1)
            t = self.typed_ref(j, c.boolean())
            if c.boolean() and len(ft.params) < 4:
                self.sigs[i] = FuncType(ft.params + (t,), ft.results)
            elif len(ft.results) < 4:
                self.sigs[i] = FuncType(ft.params, ft.results + (t,))

    def typed_ref(self, j, nullable):
        return RefType(nullable, self.type_index(self.sigs[j]))

    def funcs_of_type(self, heap):
        ft = self.types[heap]
        return [f for f in range(self.nfuncs) if self.sigs[f] == ft]

    def exception_globals(self):
        """The tags, and the mutable exnref global (appended to the
        globals, before the recursion depth counter); none in a module
        not using the features, which stays Wasm 2.0 throughout (image
        sets of version 1, the forks' own layout)."""
        self.gc_globals()
        if not self.exn or not self.use3:
            return
        c = self.c
        for _ in range(c.integers(1, 3)):
            self.tags.append(tuple(self.tag_param() for _ in range(c.integers(0, MAX_TAG_PARAMS))))
        self.exn_global = len(self.globals)
        self.globals.append((EXNREF, True, ('ref.null', EXNREF)))

    def exn_table(self):
        """Index of the one-slot exnref table that keeps the entry's first
        caught exception beside the exnref global (so table.img and the
        neutral tables hold exnref entries naming exception.img): after
        the 2.0 tables and the 64-bit one (``ModuleGen.plan_wasm3``)."""
        return (2 if self.refs else 1) + (self.t64 is not None)

    def assemble3_tables(self, m):
        """The exnref table, after every table ``assemble_wasm3`` adds."""
        from engine import syntax
        if self.exn_global is not None:
            assert len(m.imported('table')) + len(m.tables) == self.exn_table()
            m.tables.append(syntax.Table(syntax.TableType(syntax.Limits(1, 1), EXNREF)))
        self.assemble_gc_table(m)

    def deep_catch(self, m, stops):
        """One in eight modules using exceptions get a *wide* exception:
        a tag of 257-264 i32 parameters (after every other tag), thrown
        and caught by ``try_table (catch_all_ref)`` inside 257-264 nested
        blocks first thing in the entry, and kept in an exnref global after
        every other global.  So every later checkpoint's exception.img and
        neutral.json hold an exception of 257 or more cells, and the
        module's last stop, right before the caught exception is set into
        the global, has 257 or more labels open in the entry's frame: past
        CPython's shared small ints, where an ``is`` taken for ``==``
        refuses a true count.  Drawn after every other choice
        (``ModuleGen.assemble`` calls it last), so a seed keeps the rest of
        its module.  Returns the stops, moved by the instructions added
        before them, and that one."""
        if self.exn_global is None or self.c.integers(0, 7):
            return stops
        c = self.c
        depth, width = c.integers(*DEEP_LABELS), c.integers(*DEEP_LABELS)
        tag = len(m.tags)
        m.tags.append(syntax.Tag(self.type_index(FuncType((I32,) * width, ()))))
        g = len(m.imported('global')) + len(m.globals)
        m.globals.append(syntax.Global(syntax.GlobalType(True, EXNREF), [Instr('ref.null', EXNREF), Instr('end')]))
        values = [Instr('i32.const', c.integers(0, 0xffffffff)) for _ in range(width)]
        caught = ([Instr('block', EXNREF), Instr('try_table', (None, ((CATCH_ALL_REF, None, 0),)))]
                  + values + [Instr('throw', tag), Instr('end'), Instr('unreachable'), Instr('end')])
        code = ([Instr('block', None) for _ in range(depth)] + caught + [Instr('global.set', g)]
                + [Instr('end') for _ in range(depth)])
        m.funcs[0].body[0:0] = code
        # run first: the blocks, the catch's block and try_table, the
        # values, the throw, the catch's branch to its block's end (which
        # both models execute), then the global.set and the blocks' ends
        before_set = depth + 2 + width + 2
        ran = before_set + 1 + depth
        return tuple(s + ran for s in stops) + (before_set,)

    def imported_any(self, m, provider):
        """The linked modules with no GC trace of their own (GC allowed)
        import one more global from the provider, an ``anyref`` holding an
        i31: the module's only GC trace is then an import's type, and its
        image sets must still carry the heap that value lives in
        (docs/images.md "GC heap": a type the module mentions, imports
        included).  The import goes after the other imported globals, so
        every global index of the module's own is moved up by one.  Drawn
        after every other choice (``ModuleGen.assemble`` calls it last), so
        a seed keeps the rest of its module."""
        if provider is None or not self.gc or _uses_gc(m):
            return
        k = self.c.integers(0, 2 ** 31 - 1)
        g = len(provider.globals)
        provider.globals.append(syntax.Global(syntax.GlobalType(True, ANYREF),
                                              [Instr('i32.const', k), Instr('ref.i31'), Instr('end')]))
        provider.exports.append(syntax.Export(ANY_GLOBAL, 'global', g))
        at = len(m.imported('global'))
        last = max(i for i, imp in enumerate(m.imports) if imp.kind == 'global')
        m.imports.insert(last + 1, syntax.Import(linked.PROVIDER, ANY_GLOBAL, 'global',
                                                 syntax.GlobalType(True, ANYREF)))
        shift_indices(m, 'global', at)

    def bare_i31(self, m, stops):
        """One in four modules with no GC trace left (GC allowed) start the
        entry with ``i32.const k  ref.i31  i31.get_u  drop``, with a stop
        right before ``i31.get_u``: the module's only GC trace is then two
        instructions, and the checkpoint there holds an i31 on the operand
        stack, which its set must carry in a heap (docs/images.md "GC
        heap": a GC instruction).  Drawn after every other choice
        (``ModuleGen.assemble`` calls it last); returns the stops, moved by
        the four instructions run before them, and that one."""
        if not self.gc or _uses_gc(m) or self.c.integers(0, 3):
            return stops
        k = self.c.integers(0, 2 ** 31 - 1)
        m.funcs[0].body[0:0] = [Instr('i32.const', k), Instr('ref.i31'), Instr('i31.get_u'), Instr('drop')]
        return tuple(s + 4 for s in stops) + (2,)

    def far_entry(self, m, provider):
        """One in four linked modules import the host's first function
        257-260 more times, after the other imported functions: every
        function the module defines, the entry among them, gets an index
        past 256, so the frames of every checkpoint name functions past
        CPython's shared small ints, where an ``is`` taken for ``==``
        (the entry's index against the outermost frame's) refuses a true
        state.  Drawn after every other choice (``ModuleGen.assemble``
        calls it last)."""
        if provider is None or self.c.integers(0, 3):
            return
        name, params, results, _ = linked.HOST_FUNCS[0]
        ti = self.type_index(FuncType(params, results))
        at = len(m.imported('func'))
        last = max(i for i, imp in enumerate(m.imports) if imp.kind == 'func')
        n = self.c.integers(*FAR_IMPORTS)
        m.imports[last + 1:last + 1] = [syntax.Import(linked.HOST, name, 'func', ti) for _ in range(n)]
        shift_indices(m, 'func', at, n)

    def tag_param(self):
        """A tag parameter: mostly any value type, sometimes ``exnref`` (an
        exception carrying another one: nested fields in exception.img) or
        ``funcref``, and in a GC module a GC reference (``gc_tag_type``:
        thrown exceptions carry objects, exception.img's GC fields).  The
        GC weight comes last and is 0 elsewhere, so a module without GC
        draws its tags as before."""
        how = self.c.weighted([(6, 'any'), (2, 'exnref'), (1 if self.refs else 0, 'funcref'),
                               (4 if self.use_gc else 0, 'gc')])
        if how == 'gc':
            return self.gc_tag_type()
        return self.valtype() if how == 'any' else EXNREF if how == 'exnref' else FUNCREF

    def assemble3(self, m):
        """Tags, a declarative element segment of the functions code
        takes references of (table 0's active segment declares them too),
        and the GC segment (``plan_gc_elem``)."""
        from engine import syntax
        from engine.syntax import Instr
        self.assemble_gc(m)
        if self.tags:
            m.tags = [syntax.Tag(self.type_index(FuncType(p, ()))) for p in self.tags]
        if self.typed and self.use3:
            m.elems.append(syntax.Elem(FUNCREF, [[Instr('ref.func', self.fbase + k), Instr('end')]
                                                 for k in range(self.nfuncs)], 'declarative'))
        if self.use_gc and self.gct.seg is not None:
            seg = self.gct.seg
            assert len(m.elems) == self.gc_elem_index()
            m.elems.append(syntax.Elem(seg.type, [[Instr(op, imm) for op, imm in item] + [Instr('end')]
                                                  for item in seg.items], 'passive'))

    def assemble_host_tag(self, m):
        """The host exception's tag (``host_exception``), after the drawn
        tags and its type after every other type (the dive's signatures are
        drawn after ``assemble3``): without it a seed's module is the same
        but for the throw."""
        from engine import syntax
        if self.host_tag is not None:
            pad = self.host_tag - len(m.tags)
            assert pad in (0, TAG_PAD)
            m.tags += [syntax.Tag(self.type_index(FuncType((), ())))] * pad
            m.tags.append(syntax.Tag(self.type_index(FuncType(HOST_TAG, ()))))

    def exported_global(self, t):
        """Whether a global of type t is exported: not exnref ones (the
        host cannot hold an exception: the shims of fuzz.wasmtime_oracle
        pass numbers and references of the 2.0 types only), nor GC ones
        (wasmtime cannot hand its GC objects to the host's comparison)."""
        return t != EXNREF and not is_gc(t)


class FuncFeatures3(FuncGC):
    """``FuncGen`` side: the actions and values of the 3.0 features."""

    def locals3(self):
        """An exnref local; typed reference locals, non-nullable ones set
        first thing (straight-line, before the entry's prologue mark)."""
        self.locals_gc()
        c = self.c
        mg = self.mg
        # every function of a module using the 3.0 features (the compiled
        # tier runs a function with any of their instructions in the
        # interpreter: the other modules stay compiled)
        self.wasm3 = mg.use3
        if not self.wasm3:
            return
        if mg.exn:
            self.user_locals.append(self.new_local(EXNREF))
        if not mg.typed or self.idx + 1 >= mg.nfuncs:
            return
        # later functions with this one's results: a typed local of their
        # type allows a tail call through it (return_call_ref)
        same = [j for j in range(self.idx + 1, mg.nfuncs) if mg.sigs[j].results == self.ft.results]
        for _ in range(c.integers(0, 2)):
            j = c.choice(same) if same and mg.tail and c.boolean() else \
                c.integers(self.idx + 1, mg.nfuncs - 1)
            t = mg.typed_ref(j, c.boolean())
            x = self.new_local(t)
            self.user_locals.append(x)
            if not t.nullable:
                self.ref_func(t.heap)
                self.emit('local.set', x)

    def prologue3(self):
        """Three in four entries using exceptions start (after the prologue
        a dive counts) by throwing one and keeping it in the exnref global
        (``caught_into_global``), so most checkpoints of the run hold a
        caught exception (exception.img) whose fields are of the tag's
        types; with a tag of an exnref parameter, then one carrying it."""
        mg = self.mg
        if self.idx or not self.wasm3 or not mg.exn:
            return
        if self.c.integers(0, 3):
            self.gc_plain = True        # the fields' numbers cannot trap
            self.caught_into_global(self.gc_tag(), first=True)
            nesting = [k for k, params in enumerate(mg.tags) if EXNREF in params]
            if nesting:
                self.caught_into_global(self.c.choice(nesting))
            self.gc_plain = False
        self.host_exception()

    def gc_tag(self):
        """The tag of the entry's first caught exception: three times in
        four one with a GC parameter when the module has such tags (so
        exception.img holds objects at most checkpoints), else None
        (``do_throw`` draws).  Draws nothing in other modules."""
        gc = [k for k, params in enumerate(self.mg.tags) if any(map(is_gc, params))]
        return self.c.choice(gc) if gc and self.c.integers(0, 3) else None

    def host_exception(self):
        """An entry that takes an externref (the host's reference, mostly
        not null: ``ModuleGen.arg_value``) in a module using exceptions
        then throws it in an exception of a tag of its own, ``HOST_TAG``
        (the host's reference and the exception caught before it), and
        keeps that in the exnref global and table: exception.img holds a
        non-null host reference (and a nested exception) at the
        checkpoints that follow.  A drawn tag parameter is seldom
        externref and its value seldom the host's, so exception fields
        were null host references nearly always.  Draws nothing, costs
        nothing of the body's budget (``FuncGen.exhausted``), and the
        tag comes after the drawn ones (``assemble_host_tag``): a seed keeps every
        choice of its module."""
        mg = self.mg
        if EXTERNREF not in self.ft.params:
            return
        # with two drawn tags, the host tag comes after TAG_PAD unused ones
        # (from the draws made): a tag index past 256, where indices are no
        # longer CPython's shared small ints and a tag compared by identity
        # tells equal exceptions apart
        mg.host_tag = len(mg.tags) + (TAG_PAD if len(mg.tags) == 2 else 0)

        def throw():
            self.emit('local.get', self.ft.params.index(EXTERNREF))
            self.emit('global.get', mg.exn_global)
            self.emit('throw', mg.host_tag)
        cost, length = self.cost, len(self.code)     # outside the budget: the
        self.catch_into_global(throw)               # rest of the body is drawn as before
        self.cost, self.uncounted = cost, self.uncounted + len(self.code) - length

    def caught_into_global(self, nesting, first=False):
        """An exception thrown and caught into the global (``catch_into_global``);
        a ``nesting`` tag's exnref fields get the global's exception (caught
        before): an exception in an exception.  ``first``: ``nesting`` is
        the first exception's tag (None: drawn), with no exnref field."""
        mg = self.mg
        def throw():
            if nesting is None or first:
                self.do_throw([], None, nesting)
                return
            for t in mg.tags[nesting]:
                if t == EXNREF:
                    self.emit('global.get', mg.exn_global)
                else:
                    self.value(t)
            self.emit('throw', nesting)
        self.catch_into_global(throw)

    def catch_into_global(self, throw):
        """``block (result exnref) try_table (catch_all_ref 0)`` ``throw()``
        ``end unreachable end global.set``, and the exception also into
        element 0 of the exnref table."""
        mg = self.mg
        self.emit('block', EXNREF)
        self.labels.append(('block', (EXNREF,), None))
        self.emit('try_table', (None, ((CATCH_ALL_REF, None, 0),)))
        self.labels.append(('try_table', (), None))
        throw()
        self.labels.pop()
        self.emit('end')
        self.emit('unreachable')
        self.labels.pop()
        self.emit('end')
        self.emit('global.set', mg.exn_global)
        self.emit('i32.const', 0)
        self.emit('global.get', mg.exn_global)
        self.emit('table.set', mg.exn_table())

    def weights3(self, deeper):
        gc = [(14, 'gc')] if self.gcl else []
        if not self.wasm3:
            return gc
        mg = self.mg
        exn, typed = mg.exn, mg.typed
        stored = exn and (self.locals_of(EXNREF) or self.globals_of(EXNREF))
        return [((8 if self.idx == 0 else 4) if exn and deeper else 0, 'try_table'),
                ((10 if self.in_try else 1) if exn else 0, 'throw'),
                (2 if stored else 0, 'throw_ref'),
                ((8 if self.idx == 0 else 4) if mg.legacy and deeper else 0, 'try_legacy'),
                (3 if mg.legacy and self.catch_labels() else 0, 'rethrow'),
                (6 if typed and self.typed_types() else 0, 'typed')] + gc

    # ---- values

    def ref_func(self, heap):
        f = self.c.choice(self.mg.funcs_of_type(heap))
        self.emit('ref.func', self.mg.fbase + f)

    def typed_types(self):
        """Concrete types of the function's typed locals and parameters."""
        return sorted({t.heap for t in self.local_types if is_typed(t)})

    def value3(self, t):
        """Push one value of a 3.0 reference type (exnref, typed, or a GC
        tag parameter's: ``gc_value``)."""
        c = self.c
        if self.gcl and is_gc(t):
            return self.gc_value(t)
        ls = [x for x in self.user_locals if self.local_types[x] == t
              or (t.nullable and is_typed(t) and self.local_types[x] == RefType(False, t.heap))]
        gs = self.globals_of(t)
        if t == EXNREF or not is_typed(t):
            how = c.weighted([(1, 'null'), (3 if ls else 0, 'local'), (3 if gs else 0, 'global')])
        else:
            how = c.weighted([(1 if t.nullable else 0, 'null'), (3, 'func'), (3 if ls else 0, 'local')])
        if how == 'null':
            self.emit('ref.null', RefType(True, t.heap))
        elif how == 'func':
            self.ref_func(t.heap)
        elif how == 'local':
            self.emit('local.get', c.choice(ls))
        else:
            self.emit('global.get', c.choice(gs))

    # ---- exceptions

    def do_throw(self, st, _, tag=None):
        from fuzz.gen import STOP
        if tag is None:
            tag = self.c.integers(0, len(self.mg.tags) - 1)
        self.operands(st, self.mg.tags[tag])
        self.emit('throw', tag)
        return STOP

    def do_throw_ref(self, st, _):
        """Throw a stored exnref again (a null one is skipped, except now
        and then in risky modules, where it traps)."""
        c = self.c
        ls, gs = self.locals_of(EXNREF), self.globals_of(EXNREF)
        get = ('local.get', c.choice(ls)) if ls and (not gs or c.boolean()) else ('global.get', c.choice(gs))
        how = c.weighted([(4 if self.mg.typed else 0, 'br_on_null'), (3, 'if'),
                          (1 if self.mg.risky else 0, 'bare')])
        if how == 'bare':
            self.emit(*get)
            self.emit('throw_ref')
            from fuzz.gen import STOP
            return STOP
        if how == 'br_on_null':
            self.emit('block', None)
            self.emit(*get)
            self.emit('br_on_null', 0)
            self.emit('throw_ref')
            self.emit('end')
        else:
            self.emit(*get)
            self.emit('ref.is_null')
            self.emit('if', None)
            self.emit('else')
            self.emit(*get)
            self.emit('throw_ref')
            self.emit('end')

    def do_try_table(self, st, _):
        """block $o (R) { block $h1 (P1) { ... try_table (R) clauses { body }
        br $o } handler ... } : the clauses of the handler blocks, innermost
        handler label 0, and maybe a catch_all to an enclosing label of no
        result."""
        c = self.c
        mg = self.mg
        results = tuple(mg.valtype() for _ in range(c.weighted([(3, 0), (3, 1), (1, 2)])))
        handlers = []
        for _ in range(c.integers(1, 3)):
            kind = c.weighted([(2, CATCH), (3, CATCH_REF), (1, CATCH_ALL), (3, CATCH_ALL_REF)])
            tag = c.integers(0, len(mg.tags) - 1) if kind <= CATCH_REF else None
            types = (mg.tags[tag] if tag is not None else ()) + ((EXNREF,) if kind in (CATCH_REF, CATCH_ALL_REF) else ())
            handlers.append((kind, tag, types))
        self.emit('block', self.block_type((), results))
        self.labels.append(('block', results, None))
        for _, _, types in handlers:
            self.emit('block', self.block_type((), types))
            self.labels.append(('block', types, None))
        nh = len(handlers)
        clauses = [(kind, tag, nh - 1 - h) for h, (kind, tag, _) in enumerate(handlers)]
        empty = [l for l, (kind, types, _) in enumerate(reversed(self.labels))
                 if kind != 'loop' and not types and l >= nh]
        if empty and c.integers(0, 2) == 0:
            clauses.append((CATCH_ALL, None, c.choice(empty)))
        order = []
        while clauses:                  # the first matching clause wins: any order
            order.append(clauses.pop(c.integers(0, len(clauses) - 1)))
        self.emit('try_table', (self.block_type((), results), tuple(order)))
        self.labels.append(('try_table', results, None))
        self.depth += 1
        self.in_try += 1
        self.seq([], results, max(3, 11 - 2 * self.depth))
        if c.integers(0, 3):
            self.guarded_throw()
        self.in_try -= 1
        self.labels.pop()
        self.emit('end')
        self.emit('br', nh)
        for h in reversed(range(nh)):
            self.labels.pop()
            self.emit('end')
            for t in reversed(handlers[h][2]):
                self.keep(t)
            for t in results:
                self.value(t)
            if h:
                self.emit('br', h)
        self.depth -= 1
        self.labels.pop()
        self.emit('end')
        st.extend(results)

    def do_try_legacy(self, st, _):
        """The legacy form: ``try bt { body } catch $t { arm } ... catch_all
        { arm } end``, or ``try bt { body } delegate l`` (to an enclosing
        label: that try's handlers, or further out, or the caller).  An arm
        starts with the tag's fields (used or sunk), may ``rethrow`` and
        call; a checkpoint in one holds the frame's ``caught`` entry."""
        c = self.c
        mg = self.mg
        results = tuple(mg.valtype() for _ in range(c.weighted([(3, 0), (3, 1), (1, 2)])))
        delegate = c.integers(0, 4) == 0
        arms = []
        if not delegate:
            arms = [('catch', c.integers(0, len(mg.tags) - 1)) for _ in range(c.weighted([(2, 0), (3, 1), (1, 2)]))]
            if not arms or c.integers(0, 2):
                arms.append(('catch_all', None))
        # parameters from the stack now and then: the arms start without
        # them (only the tag's fields), the try's label sits below them
        np = c.integers(0, min(2, len(st))) if c.integers(0, 2) == 0 else 0
        params = tuple(st[len(st) - np:])
        del st[len(st) - np:]
        self.emit('try', self.block_type(params, results))
        self.labels.append(('try', results, None))
        self.depth += 1
        steps = max(3, 11 - 2 * self.depth)
        self.in_try += 1
        self.seq(list(params), results, steps)
        if c.integers(0, 5):
            # mostly a tag an arm catches, so the arms run
            # a body that ends without throwing runs into the first catch
            # (one instruction more in WAMR: docs/images.md), so less often
            # than a try_table's body throws
            self.guarded_throw(c.choice(arms)[1] if arms else None, ((2, 1), (2, 0), (1, None)))
        self.in_try -= 1
        if delegate:
            self.labels.pop()
            self.emit('delegate', c.integers(0, len(self.labels) - 1))   # the last: the function's
        else:
            self.labels[-1] = ('catch', results, None)
            for op, tag in arms:
                self.emit(op, tag)
                self.seq(list(mg.tags[tag]) if op == 'catch' else [], results, steps)
            self.labels.pop()
            self.emit('end')
        self.depth -= 1
        st.extend(results)

    def catch_labels(self):
        """Label indices of the enclosing catch arms (``rethrow`` targets)."""
        return [l for l, (kind, _, _) in enumerate(reversed(self.labels)) if kind == 'catch']

    def do_rethrow(self, st, _):
        """``if (cond) { rethrow l }``: the exception an enclosing arm
        caught, thrown again (caught by an inner try, or further out)."""
        c = self.c
        l = c.choice(self.catch_labels())
        self.condition(((2, None), (1, 1), (2, 0)))
        self.emit('if', None)
        self.emit('rethrow', l + 1)
        self.emit('end')

    def guarded_throw(self, tag=None, weights=((3, 1), (1, 0), (1, None))):
        """``if (cond) { throw }``: the end of three in four try_table
        bodies may throw, so handlers run and exnrefs get stored
        (``weights``: of a constant true, false or a drawn condition)."""
        self.condition(weights)
        self.emit('if', None)
        self.labels.append(('if', (), None))
        self.do_throw([], None, tag)
        self.labels.pop()
        self.emit('end')

    def keep(self, t):
        """A handler's value: a caught exnref mostly stored (the global
        outlives the frame, the local is live at the frame's later
        checkpoints), the tag's fields as ``sink`` does."""
        if t != EXNREF:
            return self.sink(t)
        c = self.c
        ls, gs = self.locals_of(EXNREF), self.globals_of(EXNREF, mutable=True)
        how = c.weighted([(3 if gs else 0, 'global'), (2 if ls else 0, 'local'), (1, 'drop')])
        if how == 'drop':
            self.emit('drop')
        else:
            self.emit(how + '.set', c.choice(gs if how == 'global' else ls))

    # ---- typed function references

    def do_typed(self, st, _):
        c = self.c
        mg = self.mg
        # a tail call through a reference (return_call_ref) needs a type
        # with this function's results
        tails = [h for h in self.typed_types() if mg.types[h].results == self.ft.results] \
            if mg.tail else []
        tail = bool(tails) and c.integers(0, 2) == 0
        heap = c.choice(tails if tail else self.typed_types())
        callee_cost = max(mg.costs[f] for f in mg.funcs_of_type(heap))
        callable_ = (min(mg.funcs_of_type(heap)) > self.idx
                     and self.mult * callee_cost <= _room(self))
        what = 'call_ref' if tail and callable_ else \
            c.weighted([(5 if callable_ else 0, 'call_ref'), (3, 'as_non_null'),
                        (2, 'br_on_null'), (2, 'br_on_non_null')])
        nullable, nonnull = RefType(True, heap), RefType(False, heap)
        if what == 'call_ref':
            ft = mg.types[heap]
            self.operands(st, ft.params)
            if mg.risky and c.integers(0, 3) == 0:
                self.value(nullable)            # may be null: traps
            elif c.boolean():
                self.value(nullable)
                self.emit_nonnull_guard(nullable)
            else:
                self.value(nonnull)
            self.cost += self.mult * callee_cost
            if tail:
                self.emit('return_call_ref', heap)      # the callee replaces this frame
                from fuzz.gen import STOP
                return STOP
            self.emit('call_ref', heap)
            st.extend(ft.results)
        elif what == 'as_non_null':
            self.value(nullable if mg.risky else nonnull)
            self.emit('ref.as_non_null')
            st.append(nonnull)
        elif what == 'br_on_null':
            # block { ref ; br_on_null 0 ; keep the non-null one }
            self.emit('block', None)
            self.labels.append(('block', (), None))
            self.value(nullable)
            self.emit('br_on_null', 0)
            self.sink(nonnull)
            self.labels.pop()
            self.emit('end')
        else:
            # block (result (ref $t)) { ref ; br_on_non_null 0 ; a fallback }
            self.emit('block', nonnull)
            self.labels.append(('block', (nonnull,), None))
            self.value(nullable)
            self.emit('br_on_non_null', 0)
            self.ref_func(heap)
            self.labels.pop()
            self.emit('end')
            st.append(nonnull)

    def emit_nonnull_guard(self, nullable):
        """Turn the nullable reference on the stack into a non-null one:
        ``br_on_non_null`` past a fallback ``ref.func``."""
        heap = nullable.heap
        s = self.scratch_local('typed', nullable)
        self.emit('local.set', s)
        self.emit('block', RefType(False, heap))
        self.emit('local.get', s)
        self.emit('br_on_non_null', 0)
        self.ref_func(heap)
        self.emit('end')


def _room(fg):
    from fuzz.gen import BUDGET
    return BUDGET - fg.cost


# the instructions naming an index of each kind (shift_indices)
INDEX_OPS = {'global': ('global.get', 'global.set'), 'func': ('call', 'return_call', 'ref.func')}


def shift_indices(m, kind, at, by=1):
    """Move every reference to a ``kind`` index ``at`` or above up by
    ``by``: in code, constant expressions, exports and the start function
    (``by`` imports of that kind inserted at ``at``)."""
    ops = INDEX_OPS[kind]

    def code(body):
        for ins in body:
            if ins.op in ops and ins.imm >= at:
                ins.imm += by
    for f in m.funcs:
        code(f.body)
    for x in m.globals:
        code(x.init)
    for e in m.elems:
        for item in e.init:
            code(item)
        code(e.offset or ())
    for d in m.datas:
        code(d.offset or ())
    for x in m.exports:
        if x.kind == kind and x.index >= at:
            x.index += by
    if kind == 'func' and m.start is not None and m.start >= at:
        m.start += by
