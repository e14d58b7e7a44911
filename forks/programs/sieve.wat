;; Sieve of Eratosthenes in linear memory, repeated $rounds times: memory
;; writes all through the run, nested loops with br_if/br, i64 checksum.
(module
  (memory (export "memory") 2)
  (func $clear (param $n i32)
    (local $i i32)
    (loop $l
      (i32.store8 (local.get $i) (i32.const 1))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n)))))
  (func $sieve (param $n i32) (result i32 i64)
    (local $i i32) (local $j i32) (local $count i32) (local $sum i64)
    (call $clear (local.get $n))
    (local.set $i (i32.const 2))
    (block $done
      (loop $outer
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.load8_u (local.get $i))
          (then
            (local.set $count (i32.add (local.get $count) (i32.const 1)))
            (local.set $sum (i64.add (local.get $sum)
                                     (i64.mul (i64.extend_i32_u (local.get $i))
                                              (i64.extend_i32_u (local.get $count)))))
            (local.set $j (i32.mul (local.get $i) (local.get $i)))
            (block $inner_done
              (loop $inner
                (br_if $inner_done (i32.ge_u (local.get $j) (local.get $n)))
                (i32.store8 (local.get $j) (i32.const 0))
                (local.set $j (i32.add (local.get $j) (local.get $i)))
                (br $inner)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $outer)))
    (local.get $count) (local.get $sum))
  (func (export "run") (param $rounds i32) (param $n i32) (result i32 i64)
    (local $c i32) (local $s i64) (local $total i64)
    (loop $again
      (call $sieve (local.get $n))
      (local.set $s) (local.set $c)
      (local.set $total (i64.add (i64.rotl (local.get $total) (i64.const 7)) (local.get $s)))
      (local.set $rounds (i32.sub (local.get $rounds) (i32.const 1)))
      (br_if $again (i32.gt_s (local.get $rounds) (i32.const 0))))
    (local.get $c) (local.get $total)))
