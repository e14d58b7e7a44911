"""Helpers shared by the tests that write their modules as text."""

import pytest
import wasmtime

from engine import embedding as E
from engine.errors import ValidationError


def invalid_wat(wat, msg='type mismatch'):
    """The module ``wat`` decodes but fails validation with ``msg``."""
    with pytest.raises(ValidationError, match=msg):
        E.module_validate(E.module_decode(wasmtime.wat2wasm(wat)))
