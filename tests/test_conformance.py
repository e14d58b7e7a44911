"""The script runner, checked against an independent engine (wasmtime behind
the embedding API) on hand-written scripts, including ones that must fail,
and on whole integer suite files; plus the CLI's user-facing behaviour and
(when engine/embedding.py exists) a sample of suite files on our engine."""

import json
import os
import struct
import subprocess
import sys

import pytest
import wasmtime

from conformance.runner import TEXT_ONLY, nan_matches, result_matches, run_script
from conformance.wast import parse_file, parse_wast
from engine import errors
from engine.syntax import ExternRef
from spectests import manifest as mf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------ wasmtime as a stand-in engine

_TRAPS = ['integer divide by zero', 'integer overflow', 'out of bounds memory access',
          'indirect call type mismatch', 'undefined element', 'uninitialized element',
          'invalid conversion to integer', 'unreachable']

_SPECTEST = '''(module
  (func (export "print"))
  (func (export "print_i32") (param i32))
  (func (export "print_i64") (param i64))
  (func (export "print_f32") (param f32))
  (func (export "print_f64") (param f64))
  (func (export "print_i32_f32") (param i32 f32))
  (func (export "print_f64_f64") (param f64 f64))
  (global (export "global_i32") i32 (i32.const 666))
  (global (export "global_i64") i64 (i64.const 666))
  (global (export "global_f32") f32 (f32.const 666.6))
  (global (export "global_f64") f64 (f64.const 666.6))
  (table (export "table") 10 20 funcref)
  (memory (export "memory") 1 2))'''


class _Import:
    def __init__(self, module, name, kind):
        self.module, self.name, self.kind = module, name, kind


class _Module:
    def __init__(self, wmod):
        self.wmod = wmod
        kinds = {'FuncType': 'func', 'TableType': 'table', 'MemoryType': 'memory',
                 'GlobalType': 'global'}
        self.imports = [_Import(i.module, i.name, kinds[type(i.type).__name__]) for i in wmod.imports]


_ENGINE = wasmtime.Engine()


class _Store:
    def __init__(self):
        self.engine = _ENGINE
        self.wstore = wasmtime.Store(self.engine)
        self.objs = []          # address -> wasmtime extern


def _trap(exc):
    text = str(exc)
    if 'call stack exhausted' in text:
        return errors.Exhaustion('call stack exhausted')
    for msg in _TRAPS:
        if msg in text:
            return errors.Trap(msg)
    return errors.Trap(text.strip().splitlines()[-1])


class WasmtimeEmbedding:
    """The embedding API of docs/architecture.md on top of wasmtime.

    Decoding and validation are one step in wasmtime, so module_decode does
    both (its errors are DecodeErrors here); floats travel as host floats.
    """

    def store_init(self, executor='wasmedge'):
        return _Store()

    def module_decode(self, data):
        try:
            return _Module(wasmtime.Module(_ENGINE, data))
        except wasmtime.WasmtimeError as e:
            raise errors.DecodeError(str(e).strip().splitlines()[-1].strip()) from None

    def module_validate(self, module):
        return None

    def module_instantiate(self, store, module, externvals):
        try:
            inst = wasmtime.Instance(store.wstore, module.wmod, [store.objs[a] for _, a in externvals])
        except wasmtime.Trap as e:
            raise _trap(e) from None
        except wasmtime.WasmtimeError as e:
            raise errors.LinkError('incompatible import type', str(e)) from None
        return (store, inst)

    def instance_export(self, inst, name):
        store, winst = inst
        ext = winst.exports(store.wstore).get(name)
        if ext is None:
            raise errors.LinkError('unknown export')
        kind = {'Func': 'func', 'Table': 'table', 'Memory': 'memory', 'Global': 'global'}[type(ext).__name__]
        store.objs.append(ext)
        return kind, len(store.objs) - 1

    def func_invoke(self, store, addr, args):
        func = store.objs[addr]
        ftype = func.type(store.wstore)
        conv = [_to_host(str(t), a) for t, a in zip(ftype.params, args)]
        try:
            res = func(store.wstore, *conv)
        except wasmtime.Trap as e:
            raise _trap(e) from None
        results = [] if res is None else list(res) if isinstance(res, (list, tuple)) else [res]
        return [_from_host(str(t), r) for t, r in zip(ftype.results, results)]

    def global_read(self, store, addr):
        g = store.objs[addr]
        return _from_host(str(g.type(store.wstore).content), g.value(store.wstore))

    def spectest_instance(self, store):
        wmod = _Module(wasmtime.Module(store.engine, wasmtime.wat2wasm(_SPECTEST)))
        return (store, wasmtime.Instance(store.wstore, wmod.wmod, []))


def _to_host(t, v):
    if t == 'i32':
        return v - (1 << 32) if v >> 31 else v
    if t == 'i64':
        return v - (1 << 64) if v >> 63 else v
    if t == 'f32':
        return struct.unpack('<f', struct.pack('<I', v))[0]
    if t == 'f64':
        return struct.unpack('<d', struct.pack('<Q', v))[0]
    return v


def _from_host(t, v):
    if t == 'i32':
        return v & 0xffffffff
    if t == 'i64':
        return v & 0xffffffffffffffff
    if t == 'f32':
        return struct.unpack('<I', struct.pack('<f', v))[0]
    if t == 'f64':
        return struct.unpack('<Q', struct.pack('<d', v))[0]
    return v


def run(text, **kw):
    return run_script(parse_wast(text), embedding=WasmtimeEmbedding(), **kw)


def statuses(outcomes):
    return [o.status for o in outcomes]


# ------------------------------------------------ hand-written scripts

GOOD = r'''
(module $M
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func (export "nan") (result f64) (f64.div (f64.const 0) (f64.const 0)))
  (func (export "neg0") (result f32) (f32.const -0))
  (func (export "loop") (loop (br 0)))
  (func $r (export "rec") (call $r))
  (global (export "g") i64 (i64.const -2))
)
(assert_return (invoke "add" (i32.const 1) (i32.const -2)) (i32.const -1))
(assert_return (invoke $M "add" (i32.const 0x7fffffff) (i32.const 1)) (i32.const 0x80000000))
(assert_trap (invoke "div" (i32.const 1) (i32.const 0)) "integer divide by zero")
(assert_return (invoke "nan") (f64.const nan:arithmetic))
(assert_return (invoke "neg0") (f32.const -0x0p+0))
(assert_return (get "g") (i64.const 0xffff_ffff_ffff_fffe))
(assert_exhaustion (invoke "rec") "call stack exhausted")
(register "m" $M)
(module (import "m" "add" (func $add (param i32 i32) (result i32)))
  (import "spectest" "global_i32" (global i32))
  (func (export "twice") (param i32) (result i32) (call $add (local.get 0) (local.get 0)))
  (func (export "g") (result i32) (global.get 0)))
(assert_return (invoke "twice" (i32.const 21)) (i32.const 42))
(assert_return (invoke "g") (i32.const 666))
(assert_unlinkable (module (import "m" "nope" (func))) "unknown import")
(assert_unlinkable (module (import "nowhere" "add" (func))) "unknown import")
(assert_unlinkable (module (import "m" "g" (func))) "incompatible import type")
(assert_trap (module (func $s unreachable) (start $s)) "unreachable")
(assert_malformed (module quote "(func (i32.const nan:1))") "unknown operator")
(assert_malformed (module binary "\00asm\02\00\00\00") "unknown binary version")
'''


def test_good_script_passes():
    outs = run(GOOD)
    assert [o for o in outs if o.status != 'passed'] == []
    assert len(outs) == 18


BAD = r'''
(module
  (func (export "one") (result i32) (i32.const 1))
  (func (export "f") (result f32) (f32.const 1))
  (func (export "snan") (result f32) (f32.const nan:0x200000))
  (func (export "div") (param i32) (result i32) (i32.div_u (i32.const 1) (local.get 0)))
  (func (export "loop") (loop (br 0))))
(assert_return (invoke "one") (i32.const 2))
(assert_return (invoke "one"))
(assert_return (invoke "f") (f32.const -1))
(assert_return (invoke "f") (f32.const nan:canonical))
(assert_return (invoke "snan") (f32.const nan:canonical))
(assert_trap (invoke "div" (i32.const 1)) "integer divide by zero")
(assert_trap (invoke "div" (i32.const 0)) "integer overflow")
(assert_return (invoke "missing"))
(assert_return (invoke $Nope "one") (i32.const 1))
(assert_malformed (module quote "(func)") "something")
(assert_unlinkable (module (func)) "unknown import")
'''


def test_bad_script_failures_are_detected():
    outs = run(BAD)
    assert statuses(outs) == ['passed'] + ['failed'] * 7 + ['failed', 'failed', 'failed',
                                                           'failed']
    reasons = [o.reason for o in outs]
    assert 'result [0x1], expected [i32:0x2]' in reasons[1]
    assert 'wrong trap message' in reasons[7]
    assert "expected trap 'integer divide by zero', but it succeeded" in reasons[6]
    assert 'no export' in reasons[8]
    assert 'unknown module $Nope' in reasons[9]
    assert reasons[10].startswith(TEXT_ONLY) and 'engine decoded it' in reasons[10]
    assert 'but it succeeded' in reasons[11]


def test_text_only_malformed_is_checked_through_its_binary():
    """wat2wasm accepts these malformed texts; the binaries it emits carry
    the fault, and the engine must refuse them (never a skip)."""
    outs = run('''
(assert_malformed (module quote "(memory 0x1_0000_0000)") "i32 constant out of range")
(assert_malformed (module quote "(func)" "(start 0)" "(start 0)") "multiple start sections")
(assert_malformed (module quote "(func (export \\"f\\"))") "whatever")
''')
    assert statuses(outs) == ['passed', 'passed', 'failed']
    assert outs[2].reason.startswith(TEXT_ONLY)


class _Hanging(WasmtimeEmbedding):
    """An engine whose calls never return (in Python code, as ours)."""

    def func_invoke(self, store, addr, args):
        while True:
            pass


def test_hanging_command_times_out_and_the_run_goes_on():
    script = parse_wast('(module (func (export "f"))) (invoke "f") (assert_return (invoke "f"))')
    outs = run_script(script, embedding=_Hanging(), timeout=0.3)
    assert statuses(outs) == ['passed', 'failed', 'failed']
    assert outs[1].reason == 'timeout after 0.3s'


def test_v128_and_ref_patterns():
    w = 0x7fc00000
    exp = parse_wast('(assert_return (invoke "x") (v128.const f32x4 nan:canonical 1 -0 nan:arithmetic)'
                     ' (ref.null extern) (ref.extern 3) (ref.func))')[0].expected
    v = w | (0x3f800000 << 32) | (0x80000000 << 64) | (0xffe00001 << 96)
    assert result_matches(exp[0], v)
    assert not result_matches(exp[0], v | (1 << 32))
    assert not result_matches(exp[0], v & ~(0x400000 << 96))   # lane 3 not quiet
    assert result_matches(exp[1], None) and not result_matches(exp[1], ExternRef(0))
    assert result_matches(exp[2], ExternRef(3)) and not result_matches(exp[2], ExternRef(4))
    assert not result_matches(exp[2], None)
    assert result_matches(exp[3], 0) and not result_matches(exp[3], None)


def test_nan_classes():
    assert nan_matches(0x7fc00000, 32, 'canonical') and nan_matches(0xffc00000, 32, 'canonical')
    assert not nan_matches(0x7fc00001, 32, 'canonical')
    assert nan_matches(0x7fc00001, 32, 'arithmetic')
    assert not nan_matches(0x7f800001, 32, 'arithmetic')       # signalling
    assert not nan_matches(0x7f800000, 32, 'arithmetic')       # infinity
    assert nan_matches(0xfff8000000000000, 64, 'canonical')
    assert not nan_matches(0x7ff8000000000001, 64, 'canonical')


def test_missing_embedding_is_a_failure_not_a_crash():
    class Broken:
        def store_init(self, executor):
            raise RuntimeError('no store')
    outs = run_script(parse_wast('(module) (assert_return (invoke "f"))'), embedding=Broken())
    assert statuses(outs) == ['failed', 'failed']
    assert 'no store' in outs[0].reason


# ------------------------------------------------ whole suite files on wasmtime

SUITE = os.path.join(mf.testsuite_root(), 'wasm-2.0')
needs_suite = pytest.mark.skipif(not os.path.isdir(SUITE), reason='spec testsuite not available')


@needs_suite
@pytest.mark.parametrize('name', ['i32.wast', 'i64.wast', 'int_exprs.wast', 'br_table.wast', 'f64.wast'])
def test_suite_file_on_wasmtime(name):
    """Runner + parser against an independent engine: every execution
    assertion of an integer or f64 file passes (validation/decoding assertions are
    not meaningful for the stand-in, whose messages differ)."""
    outs = run_script(parse_file(os.path.join(SUITE, name)), embedding=WasmtimeEmbedding(), timeout=60)
    relevant = [o for o in outs if o.kind in ('module', 'assert_return', 'assert_trap', 'action')]
    assert len(relevant) > 10
    assert [o for o in relevant if o.status != 'passed'] == []


# ------------------------------------------------ the command line

def _cli(*args, env=None):
    return subprocess.run([sys.executable, '-m', 'conformance', *args], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=300)


def test_cli_user_errors_exit_2_without_traceback(tmp_path):
    for args in (['--testsuite', str(tmp_path), 'i32'], ['no_such_file'], ['--runtime', 'x'],
                 ['--jobs', '0']):
        p = _cli(*args)
        assert p.returncode == 2, (args, p.stderr)
        assert 'Traceback' not in p.stderr


@needs_suite
def test_cli_refuses_changed_suite(tmp_path):
    d = tmp_path / 'wasm-2.0'
    d.mkdir()
    (d / 'nop.wast').write_text('(module)\n')
    p = _cli('--testsuite', str(tmp_path), 'nop')
    assert p.returncode == 2 and 'sha256 differs' in p.stderr and 'Traceback' not in p.stderr
    p = _cli('--testsuite', str(tmp_path), 'i32')
    assert p.returncode == 2 and 'missing' in p.stderr


def test_cli_bad_wast_reports_location(tmp_path):
    bad = tmp_path / 'bad.wast'
    bad.write_text('(module)\n(assert_return (invoke "f") (i32.const 1 2))\n')
    p = _cli('--json', str(tmp_path / 'r.json'), '--junit', str(tmp_path / 'r.xml'), str(bad))
    assert p.returncode == 2 and 'Traceback' not in p.stderr
    assert 'bad.wast:2:42' in p.stdout
    report = json.loads((tmp_path / 'r.json').read_text())
    assert 'bad.wast:2:42' in report['results'][0]['error']
    assert (tmp_path / 'r.xml').read_text().count('<testcase') == 1


# ------------------------------------------------ our engine on a sample

SAMPLE = ['nop.wast', 'fac.wast', 'forward.wast', 'comments.wast', 'int_literals.wast',
          'local_tee.wast', 'store.wast', 'switch.wast', 'stack.wast', 'start.wast']


@needs_suite
@pytest.mark.parametrize('runtime', ['wasmedge', 'wamr'])
@pytest.mark.parametrize('name', SAMPLE)
def test_engine_on_sample(name, runtime):
    """Ten small suite files, all commands, on our engine under each executor
    (the whole suite is ``tox -e spec``)."""
    mf.verify('wasm-2.0', SUITE, [name])
    allowed = mf.allowed_skips('wasm-2.0', name)
    outs = run_script(parse_file(os.path.join(SUITE, name)), executor=runtime, timeout=60, standard=2)
    bad = [o for o in outs if o.status == 'failed' or
           (o.status == 'skipped' and (o.kind, o.line) not in allowed)]
    assert bad == []


# ------------------------------------------------ manifest and expected outcomes

@needs_suite
def test_manifest_pins_every_file_and_allows_no_skips():
    m = mf.load()
    entry = mf.suite_entry('wasm-2.0', m)
    assert entry['commit'] == 'a8101597d3c3c660086c3cd1eedee608ff18d3c3'
    assert mf.suite_entry('wasm-3.0', m)['commit'] == '193e551ff22663995b1ac95dc62344133669e14b'
    names = sorted(n for n in os.listdir(SUITE) if n.endswith('.wast'))
    assert sorted(entry['files']) == names
    mf.verify('wasm-2.0', SUITE, names, m)
    assert [s for f in entry['files'].values() for s in f['skips']] == []
    cases = [(n, s) for n, f in entry['files'].items() for s in f.get('text_only', [])]
    assert len(cases) == 10
    from engine import embedding
    from engine.errors import DecodeError
    for name, s in cases:
        assert s['kind'] == 'assert_malformed' and s['check'] == TEXT_ONLY
        cmd = [c for c in parse_file(os.path.join(SUITE, name)) if c.line == s['line']][0]
        assert cmd.target.kind == 'quote'
        data = wasmtime.wat2wasm(cmd.target.source)     # accepted by wat2wasm ...
        with pytest.raises(DecodeError):                # ... and refused by the engine
            embedding.module_decode(data, standard=2)   # the 2.0 encodings


def test_unlisted_skip_counts_as_failure():
    from conformance.cli import _tally
    from conformance.runner import Outcome
    result = {'counts': {}, 'failures': [], 'skips': []}
    outs = [Outcome('assert_malformed', 3, 'skipped', 'a reason'),
            Outcome('assert_malformed', 5, 'skipped', 'a reason'),
            Outcome('register', 7, 'passed')]
    _tally(result, outs, {('assert_malformed', 3): 'a reason'})
    assert result['counts'] == {'assert_malformed': {'passed': 0, 'failed': 1, 'skipped': 1},
                                'register+action': {'passed': 1, 'failed': 0, 'skipped': 0}}
    assert result['failures'][0]['line'] == 5
    assert result['failures'][0]['reason'].startswith('unexpected skip')


@needs_suite
def test_cli_passing_file_exits_0(tmp_path):
    p = _cli('nop', 'fac', '--runtime', 'both', '--jobs', '2', '--json', str(tmp_path / 'r.json'))
    assert p.returncode == 0, p.stdout[-2000:]
    report = json.loads((tmp_path / 'r.json').read_text())
    assert report['totals']['failed'] == 0 and report['totals']['passed'] > 90
    assert 'nop.wast' in p.stdout and 'ok' in p.stdout


def test_failed_module_is_not_silently_replaced_by_its_predecessor():
    outs = run('''(module (func (export "f") (result i32) (i32.const 1)))
(module (import "nowhere" "x" (func)) (func (export "f") (result i32) (i32.const 2)))
(assert_return (invoke "f") (i32.const 1))''')
    assert statuses(outs) == ['passed', 'failed', 'failed']
    assert 'unknown import' in outs[1].reason and outs[2].reason == 'no current module'


@needs_suite
def test_quiet_mode_prints_periodic_progress():
    """--quiet is silent per file but not for minutes: a heartbeat line on
    stderr every --progress-every seconds, also while no file finishes."""
    import subprocess
    import sys
    p = subprocess.run([sys.executable, '-m', 'conformance', 'i32', 'nop', '--runtime', 'both',
                        '--quiet', '--jobs', '2', '--progress-every', '0.2'],
                       capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, WASM_TESTSUITE=mf.testsuite_root()))
    assert p.returncode == 0, p.stdout + p.stderr
    beats = [l for l in p.stderr.splitlines() if 'file runs done' in l]
    assert beats and beats[0].startswith('... ') and '/4 file runs done' in beats[0]
    assert '4/4 file runs ok' in p.stdout and ' 0 skipped' in p.stdout


# ------------------------------------------------ Wasm 3.0 script commands (our engine)

@pytest.mark.parametrize('runtime', ['wasmedge', 'wamr'])
def test_module_definitions_instantiate_generatively(runtime):
    """Each ``module instance`` of one definition has its own state; a
    definition alone runs nothing (its start function would trap)."""
    outs = run_script(parse_wast(r'''
(module definition $M
  (global $g (mut i32) (i32.const 0))
  (func (export "bump") (result i32) (global.set $g (i32.add (global.get $g) (i32.const 1))) (global.get $g)))
(module definition $T (func $s unreachable) (start $s))
(module instance $I1 $M)
(module instance $I2 $M)
(assert_return (invoke $I1 "bump") (i32.const 1))
(assert_return (invoke $I1 "bump") (i32.const 2))
(assert_return (invoke $I2 "bump") (i32.const 1))
(assert_return (invoke "bump") (i32.const 2))
(module instance $X $Nope)
(module instance $T)
'''), executor=runtime)
    assert statuses(outs) == ['passed'] * 8 + ['failed', 'failed']
    assert 'unknown module definition $Nope' in outs[8].reason
    assert 'unreachable' in outs[9].reason


def test_either_and_3_0_reference_patterns():
    from engine.syntax import HostRef
    exp = parse_wast('(assert_return (invoke "x") (either (i32.const 1) (f32.const nan:canonical))'
                     ' (ref.host 2) (ref.any) (ref.eq) (ref) (ref.null none))')[0].expected
    assert result_matches(exp[0], 1) and result_matches(exp[0], 0x7fc00000)
    assert not result_matches(exp[0], 2)
    assert result_matches(exp[1], HostRef(2)) and not result_matches(exp[1], HostRef(3))
    assert not result_matches(exp[1], ExternRef(2))
    assert result_matches(exp[2], HostRef(7)) and not result_matches(exp[2], ExternRef(7))
    assert not result_matches(exp[2], None) and not result_matches(exp[2], 3)   # a funcref is no anyref
    assert not result_matches(exp[3], HostRef(1))
    assert result_matches(exp[4], 3) and result_matches(exp[4], ExternRef(0))
    assert not result_matches(exp[4], None)
    assert result_matches(exp[5], None) and not result_matches(exp[5], HostRef(0))


def test_assert_exception_needs_an_uncaught_exception():
    outs = run_script(parse_wast('(module (func (export "t") unreachable) (func (export "ok")))'
                                 '(assert_exception (invoke "t")) (assert_exception (invoke "ok"))'))
    assert statuses(outs) == ['passed', 'failed', 'failed']
    assert 'got Trap' in outs[1].reason and 'but it returned' in outs[2].reason


def test_custom_section_assertions():
    """Refused by the converter: the asserted outcome.  Accepted: the engine
    must read the binary, custom sections having no meaning in the core."""
    outs = run_script(parse_wast(r'''
(assert_malformed_custom (module quote "(@custom)") "@custom annotation: missing section name")
(assert_invalid_custom (module quote "(@custom \"x\" \"y\") (func)") "whatever")
(module (@custom "my" "bytes") (func (export "f") (result i32) (i32.const 3)))
(assert_return (invoke "f") (i32.const 3))
'''))
    assert statuses(outs) == ['passed'] * 4


def test_wasm_tools_converts_what_wat2wasm_refuses(monkeypatch):
    """The second converter is used, and a text neither reads names both."""
    from conformance import wat
    monkeypatch.setattr(wat, '_CACHE', {})

    def refuse(text):
        raise _werror()
    monkeypatch.setattr(wat, '_wasmtime', refuse)
    data = wat.wat_to_binary('(module (func (export "f") (result i32) (i32.const 9)))')
    assert data[:4] == b'\0asm'
    with pytest.raises(wat.TextError) as info:
        wat.wat_to_binary('(module (func (i32.frobnicate)))')
    assert 'wat2wasm:' in str(info.value) and 'wasm-tools:' in str(info.value)


def _werror():
    try:
        wasmtime.wat2wasm('(module (func (i32.frobnicate)))')
    except wasmtime.WasmtimeError as e:
        return e


SUITE3 = os.path.join(mf.testsuite_root(), 'wasm-3.0')


@pytest.mark.skipif(not os.path.isdir(SUITE3), reason='3.0 testsuite not available')
def test_manifest_pins_all_of_3_0_with_reasoned_expected_failures():
    """Every 3.0 file pinned (legacy/, custom/, proposals/ included); every
    expected failure belongs to a feature group that gives a reason; the
    text modules no converter reads are listed with both messages."""
    from spectests import features
    m = mf.load()
    entry = mf.suite_entry('wasm-3.0', m)
    names = mf.suite_files('wasm-3.0', SUITE3)
    assert sorted(entry['files']) == names and len(names) == 288
    mf.verify('wasm-3.0', SUITE3, names, m)
    total = 0
    for name, f in entry['files'].items():
        assert f['feature'] == features.group_of(name)
        for runtime in ('wasmedge', 'wamr'):
            for line, reason in mf.expected_failures('wasm-3.0', name, runtime, m).items():
                group = features.group_of(name, line)
                assert features.reason_of(group) and reason.startswith(group + ': ')
                total += 1
        for u in f['unconvertible']:
            assert 'wat2wasm:' in u['reason'] and 'wasm-tools:' in u['reason']
    assert total > 0
    assert {f['feature'] for f in entry['files'].values()} >= {'core', 'memory64', 'gc', 'tail-call'}
    assert mf.unpack_lines(mf.pack_lines([9, 3, 5, 6, 7, 12])) == [3, 5, 6, 7, 9, 12]
    assert mf.pack_lines([3, 5, 6, 7, 12]) == '3,5-7,12'


def test_expected_failures_count_apart_and_unexpected_passes_fail():
    from conformance.cli import _tally
    from conformance.runner import Outcome
    result = {'counts': {}, 'failures': [], 'skips': []}
    outs = [Outcome('assert_return', 3, 'failed', 'x'), Outcome('assert_return', 4, 'passed'),
            Outcome('assert_return', 5, 'failed', 'y'), Outcome('module_definition', 6, 'passed')]
    _tally(result, outs, {}, {3: 'gc: GC not implemented yet', 4: 'gc: GC not implemented yet'})
    assert result['counts'] == {'assert_return': {'passed': 0, 'failed': 2, 'skipped': 0, 'xfail': 1},
                                'module': {'passed': 1, 'failed': 0, 'skipped': 0}}
    assert [f['line'] for f in result['failures']] == [4, 5]
    assert result['failures'][0]['xpass'] and 'GC not implemented yet' in result['failures'][0]['reason']
    assert [x['line'] for x in result['xfails']] == [3]


@pytest.mark.skipif(not os.path.isdir(SUITE3), reason='3.0 testsuite not available')
def test_cli_runs_both_suites_with_per_suite_and_feature_tables(tmp_path):
    """--suite all: a pattern needs to match in one suite only (i31 and
    wide-arithmetic are 3.0 only, and wide-arithmetic's failures are the
    manifest's expected ones: a post-3.0 proposal)."""
    p = _cli('--suite', 'all', 'nop', 'i31', 'wide-arithmetic', '--runtime', 'both', '--jobs', '2',
             '--json', str(tmp_path / 'r.json'))
    assert p.returncode == 0, p.stdout + p.stderr
    assert 'wasm-2.0: 2/2 file runs ok' in p.stdout
    assert 'wasm-3.0: 6/6 file runs ok' in p.stdout and 'expected failures' in p.stdout
    assert 'per feature group (wasm-3.0)' in p.stdout and 'not part of Wasm 3.0' in p.stdout
    report = json.loads((tmp_path / 'r.json').read_text())
    wide = 'proposals/wide-arithmetic/wide-arithmetic.wast'
    assert {(r['suite'], r['file']) for r in report['results']} == {
        ('wasm-2.0', 'nop.wast'), ('wasm-3.0', 'nop.wast'), ('wasm-3.0', 'i31.wast'),
        ('wasm-3.0', wide)}
    assert any(r['xfails'] for r in report['results'] if r['file'] == wide)
    assert not any(r['xfails'] for r in report['results'] if r['file'] == 'i31.wast')
    assert _cli('--suite', 'all', 'no_such_file').returncode == 2
