"""GC programs for the image robustness campaign (fuzz/robust.py).

About half the generated modules the ``images`` target starts from use
GC (``fuzz.gen``'s defaults), with the generator's fixed type shapes.
These hand-written programs add heaps of other shapes to corrupt in
``gc.img`` and in the ``heap`` / ``gc_elems`` of neutral.json, stopped
half-way, and they are the GC part of the mutation killing test:
a cycle, objects shared between a local, a global, a table and another
object, arrays with packed i8/i16 elements, i31 values, an object
externalized into an externref global, a host reference seen as anyref,
GC references on the operand stack, a passive GC element segment shared
with an array made by ``array.new_elem``, a loop that grows a list (so
later stop points hold more objects), and a struct holding a caught
exception that carries the struct (a cycle through exception.img).
"""

from engine.errors import WasmError

# "run" builds the heap in a loop of $n rounds; each round links a new
# node in front of the list held by $head (shared with global $g), points
# table slot 0 at it, puts a packed array and an i31 in the node's
# anyref field alternately, and externalizes the list head into $ext.
# The result folds what it reads back so a wrong restore shows.
LIST = r'''(module
  (type $node (sub (struct (field (mut i32)) (field (mut (ref null $node))) (field (mut anyref)))))
  (type $leaf (sub final $node (struct (field (mut i32)) (field (mut (ref null $node))) (field (mut anyref)) (field i8) (field i64) (field f64))))
  (type $bytes (array (mut i8)))
  (type $shorts (array (mut i16)))
  (type $refs (array (mut anyref)))
  (global $g (mut (ref null $node)) (ref.null $node))
  (global $ext (mut externref) (ref.null extern))
  (global $host (mut anyref) (ref.null any))
  (table $t 3 anyref)
  (elem $seg anyref (item (ref.i31 (i32.const 7)))
                    (item (struct.new $node (i32.const 9) (ref.null $node) (ref.null any)))
                    (item (array.new_fixed $bytes 3 (i32.const 1) (i32.const 255) (i32.const 300))))
  (func (export "run") (param $n i32) (param $h externref) (result i32)
    (local $head (ref null $node)) (local $i i32) (local $acc i32)
    (local $r (ref null $refs)) (local $s (ref null $shorts))
    (global.set $host (any.convert_extern (local.get $h)))
    (local.set $head (struct.new $leaf (i32.const 1) (ref.null $node) (ref.i31 (i32.const -1))
                                       (i32.const 0x1FF) (i64.const -2) (f64.const 1.5)))
    (struct.set $node 1 (local.get $head) (local.get $head))
    (local.set $r (array.new_elem $refs $seg (i32.const 0) (i32.const 3)))
    (local.set $s (array.new $shorts (i32.const 0x12345) (i32.const 4)))
    (table.set $t (i32.const 1) (local.get $r))
    (table.set $t (i32.const 2) (ref.i31 (i32.const 0x2AAAAAAA)))
    (loop $l
      (local.set $head
        (struct.new $node (local.get $i) (local.get $head)
          (if (result anyref) (i32.and (local.get $i) (i32.const 1))
            (then (local.get $s))
            (else (ref.i31 (local.get $i))))))
      (array.set $shorts (local.get $s) (i32.and (local.get $i) (i32.const 3)) (i32.sub (i32.const 0) (local.get $i)))
      (global.set $g (local.get $head))
      (table.set $t (i32.const 0) (local.get $head))
      (global.set $ext (extern.convert_any (local.get $head)))
      (local.set $acc (i32.add (local.get $acc)
        (struct.get $node 0 (ref.cast (ref $node) (any.convert_extern (global.get $ext))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (i32.add (local.get $acc)
      (i32.add
        (i32.add (ref.eq (global.get $g) (ref.cast (ref null eq) (table.get $t (i32.const 0))))
                 (array.get_u $shorts (local.get $s) (i32.const 1)))
        (i32.add (i31.get_u (ref.cast (ref i31) (array.get $refs (local.get $r) (i32.const 0))))
                 (array.get_u $bytes (ref.cast (ref $bytes) (array.get $refs (local.get $r) (i32.const 2))) (i32.const 2))))))
  )'''

# "walk" keeps GC references on the operand stack across a
# call: the callee is stopped with the caller's operands (an array and an
# i31) below it, and builds a self-referencing pair.
STACK = r'''(module
  (type $pair (struct (field (mut anyref)) (field (mut anyref))))
  (type $vec (array (mut i32)))
  (func $mk (param $k i32) (result (ref $pair))
    (local $p (ref null $pair))
    (local.set $p (struct.new $pair (ref.i31 (local.get $k)) (ref.null any)))
    (struct.set $pair 1 (local.get $p) (local.get $p))
    (ref.as_non_null (local.get $p)))
  (func (export "walk") (param $n i32) (result i32)
    (local $v (ref null $vec)) (local $p (ref null $pair)) (local $x i32)
    (local.set $v (array.new_default $vec (local.get $n)))
    (array.new $vec (i32.const 5) (i32.const 2))
    (ref.i31 (i32.const 11))
    (call $mk (local.get $n))
    (local.set $p)
    (i31.get_u)
    (local.set $x)
    (array.len)
    (i32.add (local.get $x))
    (i32.add (ref.eq (ref.cast (ref null eq) (struct.get $pair 1 (local.get $p))) (local.get $p)))
    (i32.add (array.len (local.get $v)))))'''


# "exn" puts a caught exception (exnref) into a struct field whose
# exception carries that struct: a cycle through exception.img.  The tag
# also carries the round's number (an i32 beside the GC field, so
# exception.img holds both kinds of field), which the result adds.
EXN = r'''(module
  (type $box (struct (field (mut exnref)) (field (mut anyref))))
  (tag $e (param (ref null $box) i32))
  (func (export "exn") (param $n i32) (result i32)
    (local $b (ref null $box)) (local $x exnref) (local $i i32) (local $k i32)
    (local.set $b (struct.new $box (ref.null exn) (ref.null any)))
    (loop $l
      (block $h (result (ref null $box) i32 exnref)
        (try_table (catch_ref $e $h) (throw $e (local.get $b) (local.get $i)))
        unreachable)
      (local.set $x)
      (drop)
      (drop)
      (struct.set $box 0 (local.get $b) (local.get $x))
      (struct.set $box 1 (local.get $b) (ref.i31 (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (block $h2 (result (ref null $box) i32)
      (try_table (catch $e $h2) (throw_ref (struct.get $box 0 (local.get $b))))
      unreachable)
    (local.set $k)
    (local.get $b)
    (ref.eq)
    (i32.add (i31.get_u (ref.cast (ref i31) (struct.get $box 1 (local.get $b)))))
    (i32.add (local.get $k))))'''


PROGRAMS = ((LIST, 'run', 'list'), (STACK, 'walk', 'stack'), (EXN, 'exn', 'exn'))


def gc_modules():
    """(wasm bytes, entry, name) of each GC program."""
    from conformance.wat import wat_to_binary
    return [(wat_to_binary(text), entry, name) for text, entry, name in PROGRAMS]


def host_args(entry, rounds):
    """Arguments of the program's entry: the loop count and, for the list
    program, a host reference (seen as anyref in a global)."""
    from engine import syntax as S
    return [rounds, S.ExternRef(5)] if entry == 'run' else [rounds]


def stopped_runs(runtime, wasm, entry, rounds, stops):
    """Yield (executor, instance) of ``entry`` run ``rounds`` times and
    stopped after each of ``stops`` instructions (skipping ones past the end)."""
    from engine import embedding
    for k in stops:
        store = embedding.store_init(runtime)
        module = embedding.module_decode(wasm)
        inst = embedding.module_instantiate(store, module, [])
        ex = store.new_executor()
        ex.start(inst.exports[entry][1], host_args(entry, rounds))
        try:
            if ex.run(k):
                continue
        except WasmError:
            continue
        yield ex, inst
