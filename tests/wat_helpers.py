"""Helpers shared by the tests that write their modules as text."""

import pytest
import wasmtime

from engine import embedding as E
from engine.errors import ValidationError

# br_table over three nested blocks, default $b: 10 + 2 by $b, 10 + 1 + 2 by
# $c, 10 by $a (the count test_exec_wamr makes by hand; a default counted
# from the outermost label, fault br_table_default, lands on $a)
BRT_FUNC = r'''
  (func (export "brt") (param i32) (result i32)
    (block $a (result i32)
      (block $b (result i32)
        (block $c (result i32)
          (i32.const 10) (local.get 0)
          (br_table $a $b $c $b))
        (i32.const 1) (i32.add))
      (i32.const 2) (i32.add)))
'''


def invalid_wat(wat, msg='type mismatch'):
    """The module ``wat`` decodes but fails validation with ``msg``."""
    with pytest.raises(ValidationError, match=msg):
        E.module_validate(E.module_decode(wasmtime.wat2wasm(wat)))
