;; Floating point in every width: a Leibniz series in f64, a logistic map in
;; f32, both returned; a global carries state between iterations.
(module
  (global $steps (mut i64) (i64.const 0))
  (func (export "run") (param $n i32) (result f64 f32 i64)
    (local $i i32) (local $pi f64) (local $sign f64) (local $x f32)
    (local.set $sign (f64.const 1))
    (local.set $x (f32.const 0.25))
    (block $done
      (loop $l
        (br_if $done (i32.ge_s (local.get $i) (local.get $n)))
        (local.set $pi (f64.add (local.get $pi)
          (f64.div (local.get $sign)
                   (f64.convert_i32_s (i32.add (i32.mul (local.get $i) (i32.const 2)) (i32.const 1))))))
        (local.set $sign (f64.neg (local.get $sign)))
        (local.set $x (f32.mul (f32.mul (f32.const 3.7) (local.get $x))
                               (f32.sub (f32.const 1) (local.get $x))))
        (global.set $steps (i64.add (global.get $steps) (i64.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (f64.mul (local.get $pi) (f64.const 4)) (local.get $x) (global.get $steps)))
