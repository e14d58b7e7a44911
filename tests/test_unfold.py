"""conformance.unfold: folded instructions written flat (the third text route).

Truth: hand-written flat forms of folded snippets (spec 2.0 text format
"Folded Instructions", the exception-handling proposal's legacy try), and
the converters themselves: a spec module they read gives the same bytes
folded and unfolded.
"""

import glob
import json
import os
import subprocess
import sys

import pytest
import wasmtime

from conformance import wat
from conformance.unfold import UnfoldError, unfold
from conformance.wast import ModuleSrc, parse_file
from spectests import manifest as mf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUITE2 = os.path.join(mf.testsuite_root(), 'wasm-2.0')
SUITE3 = os.path.join(mf.testsuite_root(), 'wasm-3.0')
needs_suite = pytest.mark.skipif(not os.path.isdir(SUITE3), reason='testsuite not available')


@pytest.mark.parametrize('folded, flat', [
    # plain instructions: operands first, immediates (atoms and lists) kept
    ('(func (result i32) (i32.add (local.get 0) (i32.const 1)))',
     '(func (result i32) local.get 0 i32.const 1 i32.add)'),
    ('(func (call_indirect $t (type 0) (param i32) (i32.const 5) (local.get 1)))',
     '(func i32.const 5 local.get 1 call_indirect $t (type 0) (param i32))'),
    ('(func (select (result i32) (i32.const 1) (i32.const 2) (local.get 0)))',
     '(func i32.const 1 i32.const 2 local.get 0 select (result i32))'),
    ('(func (i32.store offset=4 align=2 (i32.const 0) (i32.load8_u (i32.const 1))))',
     '(func i32.const 0 i32.const 1 i32.load8_u i32.store offset=4 align=2)'),
    ('(func (br_on_cast 0 anyref (ref $t) (local.get 0)))',
     '(func local.get 0 br_on_cast 0 anyref (ref $t))'),
    # flat and folded mixed; fields before the body untouched
    ('(func $f (export "f") (param $x i32) (local i64) (local.get $x) drop (nop))',
     '(func $f (export "f") (param $x i32) (local i64) local.get $x drop nop)'),
    # structured instructions
    ('(func (block $b (result i32) (loop (br 1 (i32.const 0)))))',
     '(func block $b (result i32) loop i32.const 0 br 1 end end)'),
    ('(func (if $l (result i32) (local.get 0) (i32.eqz) (then (i32.const 1)) (else (i32.const 2))))',
     '(func local.get 0 i32.eqz if $l (result i32) i32.const 1 else i32.const 2 end)'),
    ('(func (if (local.get 0) (then (nop))))',
     '(func local.get 0 if nop end)'),
    ('(func (if (local.get 0) (then) (else)))',
     '(func local.get 0 if else end)'),
    ('(func (try_table (result i32) (catch $e 0) (catch_all_ref 1) (i32.const 1)))',
     '(func try_table (result i32) (catch $e 0) (catch_all_ref 1) i32.const 1 end)'),
    # the legacy try, folded (the reason for this module)
    ('(func (try (do)))', '(func try end)'),
    ('(func (try $l (result i32) (do (throw $e)) (catch $e (i32.const 1)) (catch $f)'
     ' (catch_all (rethrow $l))))',
     '(func try $l (result i32) throw $e catch $e i32.const 1 catch $f catch_all rethrow $l end)'),
    ('(func (try (do (try (do (nop)) (delegate 1))) (catch_all)))',
     '(func try try nop delegate 1 catch_all end)'),
    # constant expressions: the abbreviations get their keyword spelled out
    ('(global $g (mut i32) (i32.add (i32.const 1) (i32.const 2)))',
     '(global $g (mut i32) i32.const 1 i32.const 2 i32.add)'),
    ('(elem (i32.const 0) func $f)', '(elem (offset i32.const 0) func $f)'),
    ('(elem 0 (offset (i32.const 1)) $f)', '(elem 0 (offset i32.const 1) $f)'),
    ('(elem $e (table $t) (i32.const 0) funcref (ref.func $f) (item (ref.null func)))',
     '(elem $e (table $t) (offset i32.const 0) funcref (item ref.func $f) (item ref.null func))'),
    ('(elem declare funcref (ref.func $f))', '(elem declare funcref (item ref.func $f))'),
    ('(data (memory 1) (i32.const 8) "a;;b" "c")', '(data (memory 1) (offset i32.const 8) "a;;b" "c")'),
    ('(table 3 (ref null func) (ref.null func))', '(table 3 (ref null func) ref.null func)'),
    ('(table funcref (elem (ref.func $f) (ref.null func)))',
     '(table funcref (elem (item ref.func $f) (item ref.null func)))'),
    # a branch hint stays on the instruction it names
    ('(func (@metadata.code.branch_hint "\\00") (if (i32.const 1) (then)))',
     '(func i32.const 1 (@metadata.code.branch_hint "\\00") if end)'),
    # other fields, comments, strings and annotations as they are
    ('(type $t (func (param i32))) (import "m" "f" (func (param i32))) (@custom "x" "(i32.add)")',
     '(type $t (func (param i32))) (import "m" "f" (func (param i32))) (@custom "x" "(i32.add)")'),
    ('(func ;; (a comment\r (; (nested (; ;) ;) (nop (; c ;)))',
     '(func nop)'),
], ids=lambda x: x[:40])
def test_folded_snippets_unfold_to_their_flat_form(folded, flat):
    assert unfold(folded) == flat
    assert unfold(f'(module $m {folded})') == f'(module $m {flat})'


DEEP = '(module (func ' + '(try (do ' * 5000 + ')' * 10002     # beyond Python's recursion


@pytest.mark.parametrize('text, why', [
    ('(module (func (try (do) (catch_all) (catch_all))))', 'unexpected'),
    ('(module (tag $e) (func (try (do) (catch $e) (delegate 0))))', 'unexpected'),
    ('(module (func (try (do) (catch_all) (delegate 0))))', 'unexpected'),
    ('(module (func (try (do) (delegate) (delegate 0))))', 'delegate takes one label'),
    ('(module (func (try (catch_all))))', 'without (do'),
    ('(module (func (try (do) (catch))))', 'catch takes a tag'),
    ('(module (func (if (i32.const 0) (else))))', 'without (then'),
    ('(module (func (if (i32.const 0) (then) (else) (else))))', 'unexpected'),
    ('(module (func (i32.add (i32.const 0) 5)))', 'after the operands'),
    ('(module (func (nop))', 'unclosed'),
    ('(module (func)))', 'unbalanced'),
    ('(module (func (; x))', 'unterminated block comment'),
    ('(module (func "abc))', 'unexpected character'),
    (DEEP, 'nested too deeply'),
], ids=lambda x: x[:40])
def test_malformed_folded_text_is_refused(text, why):
    with pytest.raises(UnfoldError) as info:
        unfold(text)
    assert why in str(info.value)


def _wasm_tools(text):
    out, err = wat._wasm_tools(text)
    assert out is not None, err
    return out


def test_third_route_reads_the_folded_legacy_try_as_its_flat_form(monkeypatch):
    """wat_to_binary: the folded legacy try converts, to the bytes wasm-tools
    makes of its hand-written flat form; malformed text keeps both
    converters' messages and never becomes a traceback."""
    monkeypatch.setattr(wat, '_CACHE', {})
    folded = ('(module (tag $e (param i32)) (func (export "f") (param i32) (result i32)'
              ' (try $l (result i32) (do (throw $e (local.get 0)))'
              ' (catch $e (i32.add (i32.const 1))) (catch_all (rethrow $l)))))')
    flat = ('(module (tag $e (param i32)) (func (export "f") (param i32) (result i32)'
            ' try $l (result i32) local.get 0 throw $e catch $e i32.const 1 i32.add'
            ' catch_all rethrow $l end))')
    before = wat.converter_stats['unfolded']
    assert wat.wat_to_binary(folded) == _wasm_tools(flat)
    assert wat.converter_stats['unfolded'] == before + 1
    for bad in ('(module (func (try (do) (catch_all) (catch_all))))',
                '(module (func (try (do (i32.frobnicate)) (delegate 0))))',
                DEEP):
        with pytest.raises(wat.TextError) as info:
            wat.wat_to_binary(bad)
        assert 'wat2wasm:' in str(info.value) and 'wasm-tools:' in str(info.value)


# every 2.0 file, and 3.0 files whose modules use the 3.0 forms and fields
IDENTITY_FILES = sorted(glob.glob(os.path.join(SUITE2, '*.wast'))) + \
    [os.path.join(SUITE3, f'{n}.wast') for n in '''
    try_table throw throw_ref tag instance call_ref br_on_null local_init
    return_call_indirect table-sub memory64 table_init64 array struct br_on_cast
    annotations id custom/branch_hint custom/name_annot legacy/try_delegate'''.split()]


@needs_suite
def test_modules_the_converters_read_give_identical_bytes_unfolded():
    """The independent check: every text module of these files that a
    converter reads as written gives byte-identical output unfolded."""
    checked = rewritten = 0
    for path in IDENTITY_FILES:
        for cmd in parse_file(path):
            src = cmd.target
            if (not isinstance(src, ModuleSrc) or src.kind == 'binary'
                    or cmd.kind == 'assert_malformed'):
                continue
            try:
                convert = wasmtime.wat2wasm
                direct = convert(src.source)
            except wasmtime.WasmtimeError:
                direct, _ = wat._wasm_tools(src.source)
                if direct is None:
                    continue                # legacy try, GC the converters refuse
                convert = _wasm_tools
            flat = unfold(src.source)
            assert convert(flat) == direct, f'{path}:{cmd.line}'
            checked += 1
            rewritten += ' end' in flat and '(block' in src.source
    assert checked >= 4000 and rewritten > 300, (checked, rewritten)


@needs_suite
def test_legacy_files_pass_in_both_models_and_migrated(tmp_path):
    """All 96 commands of legacy/*.wast in each model, none expected to fail;
    every call migrated to the other model and back with no mismatch."""
    out = tmp_path / 'r.json'
    env = dict(os.environ, PYTHONPATH=ROOT)
    for runtime in ('wasmedge', 'wamr'):
        p = subprocess.run([sys.executable, '-m', 'conformance', '--suite', 'wasm-3.0', 'legacy/*',
                            '--runtime', runtime, '--jobs', '1', '--migrate', '--json', str(out)],
                           capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        report = json.loads(out.read_text())
        assert report['totals'] == {'passed': 96, 'failed': 0, 'xfail': 0, 'skipped': 0}
        assert f'({runtime}->' in p.stdout and ' 0 mismatches, 0 skipped' in p.stdout
    for name in ('try_catch', 'try_delegate', 'rethrow', 'throw'):
        entry = mf.suite_entry('wasm-3.0')['files'][f'legacy/{name}.wast']
        assert entry['expected'] == 'pass' and not entry['unconvertible']
