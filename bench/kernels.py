"""The fixed compute workloads of issue 9, written as WAT here, each with
its expected result computed independently in Python (the same operations
in the same order, so even the floating-point kernels are bit-exact).

Every kernel exports ``run`` taking one i32 size and returning an i32 or an
i64 (the f64 kernels return the bits of their result), so every engine's
answer compares as an unsigned integer.  ``SIZES`` gives (default, quick).
"""

import math
import struct

M32, M64 = (1 << 32) - 1, (1 << 64) - 1


def _bits(x):
    return struct.unpack('<Q', struct.pack('<d', x))[0]


def _data_string(blob):
    return ''.join(f'\\{b:02x}' for b in blob)


def counted_loop(i, n, body, t='i32'):
    """WAT running ``body`` while local ``$i`` < local ``$n`` (unsigned),
    incrementing ``$i`` after each pass; locals of type ``t``."""
    return (f'(block ${i}_done (loop ${i}_next '
            f'(br_if ${i}_done ({t}.ge_u (local.get ${i}) (local.get ${n}))) {body} '
            f'(local.set ${i} ({t}.add (local.get ${i}) ({t}.const 1))) (br ${i}_next)))')


# ------------------------------------------------------------ recursive fib

FIB = '''(module
  (func $fib (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func (export "run") (param i32) (result i32) (call $fib (local.get 0))))'''


def fib_expected(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a & M32


# ------------------------------------------------------------ i64 loop

I64_LOOP = '''(module
  (func (export "run") (param $n i32) (result i64)
    (local $i i64) (local $acc i64) (local $end i64)
    (local.set $end (i64.extend_i32_u (local.get $n)))
    ''' + counted_loop('i', 'end', '''
        (local.set $acc (i64.xor (i64.add (local.get $acc)
                                          (i64.mul (local.get $i) (i64.const 0x9E3779B97F4A7C15)))
                                 (i64.shr_u (local.get $acc) (i64.const 7))))''', 'i64') + '''
    (local.get $acc)))'''


def i64_loop_expected(n):
    acc = 0
    for i in range(n):
        acc = ((acc + i * 0x9E3779B97F4A7C15) & M64) ^ (acc >> 7)
    return acc


# ------------------------------------------------------------ memory fill + checksum

MEMORY = '''(module
  (memory 4)
  (func (export "run") (param $n i32) (result i32)
    (local $i i32) (local $j i32) (local $sum i32)
    ''' + counted_loop('i', 'n', '''
        (i32.store8 (local.get $i) (i32.add (i32.mul (local.get $i) (i32.const 7)) (i32.const 1)))''') + counted_loop('j', 'n', '''
        (local.set $sum (i32.add (i32.mul (local.get $sum) (i32.const 31))
                                 (i32.load8_u (local.get $j))))''') + '''
    (local.get $sum)))'''


def memory_expected(n):
    s = 0
    for i in range(n):
        s = (s * 31 + ((i * 7 + 1) & 0xFF)) & M32
    return s


# ------------------------------------------------------------ f64 mandelbrot

MANDELBROT = '''(module
  (func (export "run") (param $s i32) (result i32)
    (local $x i32) (local $y i32) (local $k i32) (local $total i32)
    (local $cr f64) (local $ci f64) (local $zr f64) (local $zi f64) (local $t f64) (local $sf f64)
    (local.set $sf (f64.convert_i32_u (local.get $s)))
    (block $rows_done
      (loop $rows
        (br_if $rows_done (i32.ge_u (local.get $y) (local.get $s)))
        (local.set $ci (f64.add (f64.const -1.5)
                                (f64.div (f64.mul (f64.const 3) (f64.convert_i32_u (local.get $y)))
                                         (local.get $sf))))
        (local.set $x (i32.const 0))
        (block $cols_done
          (loop $cols
            (br_if $cols_done (i32.ge_u (local.get $x) (local.get $s)))
            (local.set $cr (f64.add (f64.const -2)
                                    (f64.div (f64.mul (f64.const 3) (f64.convert_i32_u (local.get $x)))
                                             (local.get $sf))))
            (local.set $zr (f64.const 0))
            (local.set $zi (f64.const 0))
            (local.set $k (i32.const 0))
            (block $escaped
              (loop $iter
                (br_if $escaped (i32.ge_u (local.get $k) (i32.const 50)))
                (br_if $escaped (f64.gt (f64.add (f64.mul (local.get $zr) (local.get $zr))
                                                 (f64.mul (local.get $zi) (local.get $zi)))
                                        (f64.const 4)))
                (local.set $t (f64.add (f64.sub (f64.mul (local.get $zr) (local.get $zr))
                                                (f64.mul (local.get $zi) (local.get $zi)))
                                       (local.get $cr)))
                (local.set $zi (f64.add (f64.mul (f64.mul (f64.const 2) (local.get $zr)) (local.get $zi))
                                        (local.get $ci)))
                (local.set $zr (local.get $t))
                (local.set $k (i32.add (local.get $k) (i32.const 1)))
                (br $iter)))
            (local.set $total (i32.add (local.get $total) (local.get $k)))
            (local.set $x (i32.add (local.get $x) (i32.const 1)))
            (br $cols)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $rows)))
    (local.get $total)))'''


def mandelbrot_expected(s):
    total = 0
    for y in range(s):
        ci = -1.5 + (3.0 * y) / s
        for x in range(s):
            cr = -2.0 + (3.0 * x) / s
            zr = zi = 0.0
            k = 0
            while k < 50 and not (zr * zr + zi * zi > 4.0):
                t = (zr * zr - zi * zi) + cr
                zi = (2.0 * zr) * zi + ci
                zr = t
                k += 1
            total += k
    return total & M32


# ------------------------------------------------------------ f64 n-body

PI = 3.141592653589793
SOLAR_MASS = 4 * PI * PI
DAYS = 365.24
BODIES = [  # x, y, z, vx, vy, vz, mass (the Benchmarks Game's sun and four planets)
    (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, SOLAR_MASS),
    (4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
     1.66007664274403694e-03 * DAYS, 7.69901118419740425e-03 * DAYS,
     -6.90460016972063023e-05 * DAYS, 9.54791938424326609e-04 * SOLAR_MASS),
    (8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
     -2.76742510726862411e-03 * DAYS, 4.99852801234917238e-03 * DAYS,
     2.30417297573763929e-05 * DAYS, 2.85885980666130812e-04 * SOLAR_MASS),
    (1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
     2.96460137564761618e-03 * DAYS, 2.37847173959480950e-03 * DAYS,
     -2.96589568540237556e-05 * DAYS, 4.36624404335156298e-05 * SOLAR_MASS),
    (1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
     2.68067772490389322e-03 * DAYS, 1.62824170038242295e-03 * DAYS,
     -9.51592254519715870e-05 * DAYS, 5.15138902046611451e-05 * SOLAR_MASS),
]
DT = 0.01


def _nbody_wat():
    n = len(BODIES)
    blob = b''.join(struct.pack('<7d', *b) for b in BODIES)

    def f(field, p):                    # a body's field: x y z vx vy vz m at 8-byte steps
        return f'(f64.load offset={8 * field} (local.get ${p}))'

    def store(field, p, value):
        return f'(f64.store offset={8 * field} (local.get ${p}) {value})'
    pair = ''.join(
        f'(local.set $d{a} (f64.sub {f(k, "pi")} {f(k, "pj")}))' for k, a in enumerate('xyz'))
    kick = ''.join(
        store(3 + k, 'pi', f'(f64.sub {f(3 + k, "pi")} (f64.mul (local.get $d{a}) (local.get $mj)))')
        + store(3 + k, 'pj', f'(f64.add {f(3 + k, "pj")} (f64.mul (local.get $d{a}) (local.get $mi)))')
        for k, a in enumerate('xyz'))
    drift = ''.join(store(k, 'pi', f'(f64.add {f(k, "pi")} (f64.mul (f64.const {DT!r}) {f(3 + k, "pi")}))')
                    for k in range(3))
    d2 = ('(f64.add (f64.add (f64.mul (local.get $dx) (local.get $dx)) '
          '(f64.mul (local.get $dy) (local.get $dy))) (f64.mul (local.get $dz) (local.get $dz)))')
    v2 = (f'(f64.add (f64.add (f64.mul {f(3, "pi")} {f(3, "pi")}) (f64.mul {f(4, "pi")} {f(4, "pi")})) '
          f'(f64.mul {f(5, "pi")} {f(5, "pi")}))')
    locals_ = ('(local $i i32) (local $j i32) (local $pi i32) (local $pj i32) (local $dx f64) '
               '(local $dy f64) (local $dz f64) (local $d2 f64) (local $mag f64) (local $mi f64) '
               '(local $mj f64) (local $e f64)')

    def pairs(body):                    # for i < N: for j in i+1 .. N-1: body
        return f'''(local.set $i (i32.const 0))
    (loop $li
      (local.set $pi (i32.mul (local.get $i) (i32.const 56)))
      {{pre}}
      (local.set $j (i32.add (local.get $i) (i32.const 1)))
      (block $bj (loop $lj
        (br_if $bj (i32.ge_u (local.get $j) (i32.const {n})))
        (local.set $pj (i32.mul (local.get $j) (i32.const 56)))
        {pair}
        {body}
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $lj)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $li (i32.lt_u (local.get $i) (i32.const {n}))))'''
    advance = pairs(f'''(local.set $d2 {d2})
        (local.set $mag (f64.div (f64.const {DT!r}) (f64.mul (local.get $d2) (f64.sqrt (local.get $d2)))))
        (local.set $mi (f64.mul {f(6, "pi")} (local.get $mag)))
        (local.set $mj (f64.mul {f(6, "pj")} (local.get $mag)))
        {kick}''').replace('{pre}', '')
    energy = pairs(f'''(local.set $e (f64.sub (local.get $e)
          (f64.div (f64.mul {f(6, "pi")} {f(6, "pj")}) (f64.sqrt {d2}))))''').replace(
        '{pre}', f'(local.set $e (f64.add (local.get $e) (f64.mul (f64.mul (f64.const 0.5) {f(6, "pi")}) {v2})))')
    return f'''(module
  (memory 1)
  (data (i32.const 0) "{_data_string(blob)}")
  (func $advance {locals_}
    {advance}
    (local.set $i (i32.const 0))
    (loop $drift
      (local.set $pi (i32.mul (local.get $i) (i32.const 56)))
      {drift}
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $drift (i32.lt_u (local.get $i) (i32.const {n})))))
  (func $energy (result f64) {locals_}
    {energy}
    (local.get $e))
  (func (export "run") (param $steps i32) (result i64)
    (block $done (loop $step
      (br_if $done (i32.eqz (local.get $steps)))
      (call $advance)
      (local.set $steps (i32.sub (local.get $steps) (i32.const 1)))
      (br $step)))
    (i64.reinterpret_f64 (call $energy))))'''


NBODY = _nbody_wat()


def nbody_expected(steps):
    bodies = [list(b) for b in BODIES]
    n = len(bodies)

    def d(bi, bj):
        dx, dy, dz = bi[0] - bj[0], bi[1] - bj[1], bi[2] - bj[2]
        return dx, dy, dz, (dx * dx + dy * dy) + dz * dz
    for _ in range(steps):
        for i in range(n):
            for j in range(i + 1, n):
                bi, bj = bodies[i], bodies[j]
                dx, dy, dz, d2 = d(bi, bj)
                mag = DT / (d2 * math.sqrt(d2))
                mi, mj = bi[6] * mag, bj[6] * mag
                for k, dk in enumerate((dx, dy, dz)):
                    bi[3 + k] = bi[3 + k] - dk * mj
                    bj[3 + k] = bj[3 + k] + dk * mi
        for b in bodies:
            for k in range(3):
                b[k] = b[k] + DT * b[3 + k]
    e = 0.0
    for i in range(n):
        bi = bodies[i]
        e = e + (0.5 * bi[6]) * ((bi[3] * bi[3] + bi[4] * bi[4]) + bi[5] * bi[5])
        for j in range(i + 1, n):
            e = e - (bi[6] * bodies[j][6]) / math.sqrt(d(bi, bodies[j])[3])
    return _bits(e)


# ------------------------------------------------------------ call_indirect loop

CALL_INDIRECT = '''(module
  (type $op (func (param i32 i32) (result i32)))
  (table 4 funcref)
  (elem (i32.const 0) $add $xor $mul3 $rot)
  (func $add (type $op) (i32.add (local.get 0) (local.get 1)))
  (func $xor (type $op) (i32.xor (local.get 0) (local.get 1)))
  (func $mul3 (type $op) (i32.add (i32.mul (local.get 0) (i32.const 3)) (local.get 1)))
  (func $rot (type $op) (i32.add (i32.rotl (local.get 0) (i32.const 5)) (local.get 1)))
  (func (export "run") (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    ''' + counted_loop('i', 'n', '''
        (local.set $acc (call_indirect (type $op) (local.get $acc) (local.get $i)
                                       (i32.and (local.get $i) (i32.const 3))))''') + '''
    (local.get $acc)))'''


def call_indirect_expected(n):
    acc = 0
    for i in range(n):
        k = i & 3
        if k == 0:
            acc = acc + i
        elif k == 1:
            acc = acc ^ i
        elif k == 2:
            acc = acc * 3 + i
        else:
            acc = ((acc << 5) | (acc >> 27)) + i
        acc &= M32
    return acc


# name -> (description, WAT, expected(size), result type, (default size, quick size))
KERNELS = {
    'fib': ('recursive fib(n), i32', FIB, fib_expected, 'i32', (25, 12)),
    'i64-loop': ('n iterations of an i64 add/mul/xor/shift loop', I64_LOOP, i64_loop_expected,
                 'i64', (500_000, 3000)),
    'memory': ('fill n bytes of memory, then checksum them', MEMORY, memory_expected, 'i32',
               (262_144, 2048)),
    'mandelbrot': ('f64 mandelbrot on an n x n grid, 50 iterations', MANDELBROT,
                   mandelbrot_expected, 'i32', (64, 6)),
    'nbody': ('f64 n-body, 5 bodies, n steps, energy bits', NBODY, nbody_expected, 'i64',
              (1500, 5)),
    'call-indirect': ('n call_indirect calls through a 4-entry table', CALL_INDIRECT,
                      call_indirect_expected, 'i32', (200_000, 2000)),
}


def wasm_of(wat):
    """The binary of a WAT text (wasmtime's assembler, a core dependency)."""
    import wasmtime
    return bytes(wasmtime.wat2wasm(wat))
