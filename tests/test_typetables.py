"""The forks' type-table files: hand-computed bytes for a small module, and
the authors' tables of n-body and binary-trees compared byte for byte."""

import struct

import pytest
import wasmtime

from engine import cli, embedding
from engine.migrate import typetables
from forks import apps

HAND = '''
(module
  (type $v (func (param i64) (result i32)))
  (import "spectest" "print_i32" (func $p (param i32)))
  (table 1 funcref)
  (func $g (param i64) (result i32) (i32.wrap_i64 (local.get 0)))
  (func $f (param i32 i64) (local f64 externref)
    local.get 1
    call $g
    local.get 1
    i32.const 0
    call_indirect (type $v)
    i32.add
    call $p))
'''


def _module(wat):
    m = embedding.module_decode(wasmtime.wat2wasm(wat))
    return m, embedding.module_validate(m)


def _encode(funcs, nimports):
    """The three files from hand-written (locals, [(offset, [records])])."""
    tf, to, tt = b'', b'', b''
    for i in range(nimports):
        tf += struct.pack('<IQ', i, 0)
    for k, (local_bytes, positions) in enumerate(funcs):
        tf += struct.pack('<IQ', nimports + k, len(to))
        to += struct.pack('<I', len(local_bytes)) + bytes(local_bytes)
        for off, records in positions:
            to += struct.pack('<IQ', off, len(tt))
            for r in records:
                tt += struct.pack('<I', len(r)) + bytes(r)
    return {'tablemap_func': tf, 'tablemap_offset': to, 'type_table': tt}


def test_hand_computed_tables():
    # byte offsets: local.get 2 bytes, call 2, i32.const 2, call_indirect 3,
    # i32.add / i32.wrap_i64 / end 1; after a call a second record: the
    # caller's stack while the callee runs; after the final end: as before it
    g = ([2], [(0, [[]]), (2, [[2]]), (3, [[1]]), (4, [[1]])])
    f = ([1, 2, 2, 255], [
        (0, [[]]), (2, [[2]]), (4, [[1], []]), (6, [[1, 2]]), (8, [[1, 2, 1]]),
        (11, [[1, 1], [1]]), (12, [[1]]), (14, [[], []]), (15, [[]])])
    assert typetables.build(*_module(HAND)) == _encode([g, f], 1)


def test_authors_variant_drops_only_the_call_indirect_record():
    m, info = _module(HAND)
    f = ([1, 2, 2, 255], [
        (0, [[]]), (2, [[2]]), (4, [[1], []]), (6, [[1, 2]]), (8, [[1, 2, 1]]),
        (11, [[1, 1]]), (12, [[1]]), (14, [[], []]), (15, [[]])])
    g = ([2], [(0, [[]]), (2, [[2]]), (3, [[1]]), (4, [[1]])])
    assert typetables.build(m, info, calls=('call',)) == _encode([g, f], 1)


def _authors(name):
    d = apps.app_dir(name)
    if d is None:
        pytest.skip(apps.missing_reason())
    m = embedding.module_decode((d / f'{name}.wasm').read_bytes())
    return d, m, embedding.module_validate(m)


@pytest.mark.parametrize('name', ['n-body', 'binary-trees'])
def test_authors_tables_byte_for_byte(name):
    """The authors' tables equal ours except for one thing: they have no
    caller record after call_indirect (docs/images.md: theirs is the defect,
    the forks read a second record after every call)."""
    d, m, info = _authors(name)
    theirs = {f: (d / f).read_bytes() for f in typetables.FILES}
    assert typetables.build(m, info, calls=('call',), ends=False) == theirs
    ours = typetables.build(m, info, ends=False)
    assert ours['tablemap_func'] != theirs['tablemap_func'] or \
        ours['type_table'] != theirs['type_table']
    # the difference is exactly one record per call_indirect
    extra = 0
    for d_idx, fn in enumerate(m.funcs):
        for off, records in typetables.function_positions(m, info, d_idx, ends=False):
            fn_ins = [i for i in fn.body if i.end == off and i.op == 'call_indirect']
            if fn_ins:
                extra += 4 + len(records[1])
    assert extra > 0
    assert len(ours['type_table']) - len(theirs['type_table']) == extra


def test_sqlite_bench_function_map_matches():
    """Only tablemap_func of sqlite-bench survives in the archive: its
    addresses fix the size of every function's tablemap_offset entry."""
    d, m, info = _authors('sqlite-bench')
    assert typetables.build(m, info)['tablemap_func'] == (d / 'tablemap_func').read_bytes()


def test_cli_typetables(tmp_path, capsys):
    wasm = tmp_path / 'hand.wasm'
    wasm.write_bytes(wasmtime.wat2wasm(HAND))
    assert cli.main(['typetables', str(wasm), '--out', str(tmp_path / 'tt')]) == 0
    want = typetables.build(*_module(HAND))
    for name, data in want.items():
        assert (tmp_path / 'tt' / name).read_bytes() == data
    bad = tmp_path / 'bad.wasm'
    bad.write_bytes(b'\0asm\1\0\0\0\x01')
    assert cli.main(['typetables', str(bad), '--out', str(tmp_path / 'tt2')]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'bad.wasm' in err and len(err.splitlines()) == 1
    assert not (tmp_path / 'tt2').exists()


def test_end_reached_by_a_branch_lists_the_carried_values():
    """Before an `end` whose code is unreachable (after `br`/`br_table`),
    a branch lands with the label's values: the record lists them (the forks
    dump exactly what the record says; an empty one lost the values, and
    wasmedge's own restore then returned 0 instead of 42)."""
    m, info = _module('''(module
      (func (param i32) (result i32) (local i64)
        (block (result f64) (f64.const 1) (br 0)) (drop)
        (local.get 0) (i32.const 1) (i32.add) (br 0)))''')
    # offsets: block 2, f64.const 9, br 2, end 1, drop 1, local.get 2, i32.const 2,
    # i32.add 1, br 2, end 1
    f = ([1, 2], [(0, [[]]), (2, [[]]), (11, [[2]]), (13, [[2]]), (14, [[2]]), (15, [[]]),
                  (17, [[1]]), (19, [[1, 1]]), (20, [[1]]), (22, [[1]]), (23, [[1]])])
    assert typetables.build(m, info) == _encode([f], 0)


def test_a_try_table_and_a_legacy_try_close_with_their_own_end():
    """A ``try_table``'s ``end`` (and a legacy ``try``'s ``end`` or
    ``delegate``) closes the try itself: the record before a later block's
    ``end`` reached only by a branch is that block's entry stack plus its
    results (it once paired the try's ``end`` with the enclosing block,
    and every later record before an ``end`` of the function was another
    block's)."""
    from conformance.wat import wat_to_binary      # wasm-tools: the legacy try's text
    m = embedding.module_decode(wat_to_binary('''(module (tag $e)
      (func (result i64)
        i64.const 5
        block $out (result f64)
          block $done
            try_table (catch_all $done)
              throw $e
            end
            try
              throw $e
            delegate $done
          end
          f64.const 2
        end
        drop))'''))
    info = embedding.module_validate(m)
    body = m.funcs[0].body
    ends = [k for k, ins in enumerate(body) if ins.op == 'end']
    done_end, out_end = ends[1], ends[2]            # the try_table's own end is ends[0]
    records = dict(typetables.function_positions(m, info, 0))
    assert records[body[done_end].offset] == [['i64']]
    assert records[body[out_end].offset] == [['i64', 'f64']]
