"""Parser of .wast scripts (the spec testsuite's script format).

Lark does the S-expression and token level (grammar in ``wast.lark``); this
module turns the tree into plain command records and converts literals to
the engine's bit-pattern value representation (engine/syntax.py) itself, so
that no host float arithmetic can lose a NaN payload or misround an f32.

A text module is kept as its exact source slice (for ``wasmtime.wat2wasm``);
binary and quoted modules keep their concatenated strings.
"""

import os
import re

from lark import Lark, Transformer, v_args
from lark.exceptions import LarkError, UnexpectedEOF, UnexpectedInput, VisitError

from engine.literals import LiteralError, parse_float, parse_int  # noqa: F401 (re-exported)
from engine.syntax import ExternRef, HostRef

__all__ = ['parse_wast', 'parse_file', 'WastSyntaxError', 'ModuleSrc', 'Action',
           'Command', 'parse_int', 'parse_float', 'parse_v128', 'COMMAND_KINDS']

COMMAND_KINDS = ('module', 'register', 'action', 'assert_return', 'assert_trap',
                 'assert_exhaustion', 'assert_invalid', 'assert_malformed',
                 'assert_unlinkable', 'assert_uninstantiable',
                 # Wasm 3.0 scripts
                 'module_definition', 'module_instance', 'assert_exception',
                 'assert_malformed_custom', 'assert_invalid_custom')


class WastSyntaxError(Exception):
    """A script that is not valid .wast; the message carries file:line:col."""


class ModuleSrc:
    """A module as written in the script: kind 'text' | 'binary' | 'quote'.

    ``source`` is the text (text: the whole ``(module ...)`` slice, with the
    ``definition`` keyword of a 3.0 module definition blanked out; quote: the
    concatenated strings) or the bytes of a binary module.
    """
    __slots__ = ('kind', 'name', 'source', 'line')

    def __init__(self, kind, name, source, line):
        self.kind, self.name, self.source, self.line = kind, name, source, line

    def __repr__(self):
        return f'ModuleSrc({self.kind}, {self.name}, line {self.line})'


class Action:
    """``invoke`` (with argument values) or ``get`` of a named export."""
    __slots__ = ('kind', 'module', 'field', 'args', 'line')

    def __init__(self, kind, module, field, args, line):
        self.kind, self.module, self.field, self.args, self.line = kind, module, field, args, line

    def __repr__(self):
        return f'Action({self.kind} {self.module or ""} {self.field!r} {self.args})'


class Command:
    """One script command.

    kind: one of COMMAND_KINDS (as written: ``assert_trap`` of a module stays
    ``assert_trap``, ``target`` then being a ModuleSrc).  ``target`` is the
    ModuleSrc / Action the command is about (for register: the registered
    module's $name or None; for module_instance: the definition's $name or
    None for the last one); ``expected`` is the results list of
    assert_return, the message text of other assertions, the 'as' name of
    register, the instance's $name (or None) of module_instance, None for
    assert_exception.
    """
    __slots__ = ('kind', 'target', 'expected', 'line')

    def __init__(self, kind, target, expected, line):
        self.kind, self.target, self.expected, self.line = kind, target, expected, line

    def __repr__(self):
        return f'Command({self.kind}@{self.line} {self.target!r} {self.expected!r})'


# Expected results of assert_return (values of invoke arguments are plain
# engine values):
#   ('num', type, bits)          exact bit pattern of i32/i64/f32/f64
#   ('nan', type, 'canonical'|'arithmetic')
#   ('v128', shape, lanes)       lanes: list of int bit patterns or
#                                ('nan', 'canonical'|'arithmetic')
#   ('ref.null', heaptype)       heaptype as written ('func', 'any', 'none', '1', ...)
#                                or None: a null reference of any type
#   ('ref.extern', n)            n None: any non-null externref
#   ('ref.func', n)              n None: any non-null funcref
#   ('ref.host', n)              the host reference n (as an anyref)
#   ('ref', kind)                any non-null reference of that kind:
#                                'struct' 'array' 'i31' 'eq' 'any' 'exn', or
#                                None for any at all (``(ref)``)
#   ('either', [result, ...])    any one of the alternatives (relaxed SIMD)


# --------------------------------------------------------------- literals

_LANES = {'i8x16': (16, 8), 'i16x8': (8, 16), 'i32x4': (4, 32), 'i64x2': (2, 64),
          'f32x4': (4, 32), 'f64x2': (2, 64)}
def parse_v128(shape, lanes):
    """``v128.const shape lane*`` -> 128-bit int, lane 0 in the low bits."""
    count, width = _LANES[shape]
    if len(lanes) != count:
        raise LiteralError(f'wrong number of lane literals: {shape} needs {count}, got {len(lanes)}')
    conv = parse_float if shape[0] == 'f' else parse_int
    value = 0
    for i, lane in enumerate(lanes):
        value |= conv(lane, width) << (i * width)
    return value


# ------------------------------------------------------------ strings

_ESCAPE = re.compile(r'\\(?:([0-9a-fA-F]{2})|u\{([0-9a-fA-F_]+)\}|(.))', re.S)
_SIMPLE = {'t': b'\t', 'n': b'\n', 'r': b'\r', '"': b'"', "'": b"'", '\\': b'\\'}


def decode_string(token):
    """A quoted string token (with quotes) -> the bytes it denotes."""
    body = token[1:-1]
    if '\\' not in body:
        return body.encode('utf-8')
    out = bytearray()
    pos = 0
    for mt in _ESCAPE.finditer(body):
        out += body[pos:mt.start()].encode('utf-8')
        hexbyte, uni, simple = mt.groups()
        if hexbyte is not None:
            out.append(int(hexbyte, 16))
        elif uni is not None:
            out += chr(int(uni.replace('_', ''), 16)).encode('utf-8', 'surrogatepass')
        elif simple in _SIMPLE:
            out += _SIMPLE[simple]
        else:
            raise LiteralError(f'bad escape \\{simple}')
        pos = mt.end()
    out += body[pos:].encode('utf-8')
    return bytes(out)


def decode_name(token):
    """A string token used as a name: text (lone bad bytes kept via surrogateescape)."""
    return decode_string(token).decode('utf-8', 'surrogateescape')


# ------------------------------------------------------------ comments

_OUTSIDE = re.compile(r'"(?:[^"\\\n]|\\.)*"|;;[^\n]*|\(;')
_INSIDE = re.compile(r'\(;|;\)')


def blank_comments(text):
    """Replace comments by spaces (newlines kept) so positions stay valid.

    Outside comments, strings are skipped whole; inside a block comment only
    the nesting delimiters count (quotes and ';;' are plain text there).
    """
    if ';' not in text:
        return text
    out = []
    pos = 0
    while True:
        mt = _OUTSIDE.search(text, pos)
        if mt is None:
            out.append(text[pos:])
            return ''.join(out)
        tok = mt.group()
        if tok[0] == '"':
            out.append(text[pos:mt.end()])
            pos = mt.end()
            continue
        out.append(text[pos:mt.start()])
        if tok[0] == ';':
            out.append(' ' * len(tok))
            pos = mt.end()
            continue
        depth, scan = 1, mt.end()
        while depth:
            inner = _INSIDE.search(text, scan)
            if inner is None:
                line = text.count('\n', 0, mt.start()) + 1
                raise WastSyntaxError(f'line {line}: unterminated block comment')
            depth += 1 if inner.group() == '(;' else -1
            scan = inner.end()
        out.append(re.sub(r'[^\n]', ' ', text[mt.start():scan]))
        pos = scan


_ANNOT_OUTSIDE = re.compile(r'"(?:[^"\\\n]|\\.)*"|\(@')
_ANNOT_INSIDE = re.compile(r'"(?:[^"\\\n]|\\.)*"|[()]')


def blank_annotations(text):
    """Replace annotations ``(@id ...)`` by spaces (newlines kept), for the
    script grammar only: they may stand anywhere, even between a command's
    parenthesis and keyword (``((@a) module ...)``).  Module sources are cut
    from the original text, so a converter still sees (and checks) them.
    Expects comments already blanked."""
    if '(@' not in text:
        return text
    out = []
    pos = 0
    while True:
        mt = _ANNOT_OUTSIDE.search(text, pos)
        if mt is None:
            out.append(text[pos:])
            return ''.join(out)
        if mt.group()[0] == '"':
            out.append(text[pos:mt.end()])
            pos = mt.end()
            continue
        out.append(text[pos:mt.start()])
        depth, scan = 1, mt.end()
        while depth:
            inner = _ANNOT_INSIDE.search(text, scan)
            if inner is None:
                line = text.count('\n', 0, mt.start()) + 1
                raise WastSyntaxError(f'line {line}: unclosed annotation')
            tok = inner.group()
            if tok == '(':
                depth += 1
            elif tok == ')':
                depth -= 1
            scan = inner.end()
        out.append(re.sub(r'[^\n]', ' ', text[mt.start():scan]))
        pos = scan


# ------------------------------------------------------------ tree -> commands

_GRAMMAR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'wast.lark')
_parser = None


def _get_parser():
    global _parser
    if _parser is None:
        with open(_GRAMMAR, encoding='utf-8') as f:
            _parser = Lark(f.read(), parser='lalr', propagate_positions=True,
                           maybe_placeholders=False)
    return _parser


_MODULE_FIELDS = {'type', 'import', 'func', 'table', 'memory', 'global', 'export', 'start',
                  'elem', 'data', 'tag', 'rec'}


class _Located(Exception):
    def __init__(self, line, col, message):
        super().__init__(message)
        self.line, self.col, self.message = line, col, message


def _identifier(tok):
    """$name or $"text" -> one spelling ($ + the text), so both forms meet."""
    text = str(tok)
    if text.startswith('$"'):
        try:
            return '$' + decode_name(text[1:])
        except LiteralError as e:
            raise _Located(tok.line, tok.column, str(e))
    return text


def _name(children):
    if children and getattr(children[0], 'type', None) == 'NAME':
        return _identifier(children[0]), children[1:]
    return None, children


_DEFINITION = re.compile(r'\(\s*module\s+definition(?=[\s()])')


def _drop_definition(text):
    """``(module definition ...)`` -> ``(module            ...)`` (columns kept),
    the text module a converter understands."""
    mt = _DEFINITION.match(text)
    return '(module' + ' ' * (mt.end() - 7) + text[mt.end():]


@v_args(meta=True)
class _ToCommands(Transformer):
    """Builds Command records; literal errors are reported at their token."""

    def __init__(self, text):
        super().__init__()
        self.text = text

    # modules
    def text_module(self, meta, children):
        name, _ = _name(children)
        return ModuleSrc('text', name, self.text[meta.start_pos:meta.end_pos], meta.line)

    def binary_module(self, meta, children):
        name, strings = _name(children)
        return ModuleSrc('binary', name, b''.join(self._string(s) for s in strings), meta.line)

    def quote_module(self, meta, children):
        name, strings = _name(children)
        data = b''.join(self._string(s) for s in strings)
        return ModuleSrc('quote', name, data.decode('utf-8', 'replace'), meta.line)

    def text_definition(self, meta, children):
        return ('definition', self._retext(self.text_module(meta, children)))

    def binary_definition(self, meta, children):
        return ('definition', self.binary_module(meta, children))

    def quote_definition(self, meta, children):
        return ('definition', self.quote_module(meta, children))

    @staticmethod
    def _retext(src):
        src.source = _drop_definition(src.source)
        return src

    def module_instance(self, meta, children):
        names = [_identifier(t) for t in children]
        # (module instance $I $M); one name is the definition's, as in the
        # reference interpreter's parser
        inst, mod = (names + [None, None])[:2] if len(names) == 2 else (None, names[0] if names else None)
        return Command('module_instance', mod, inst, meta.line)

    def inline_module(self, meta, children):
        for head, line, col in children:
            if head not in _MODULE_FIELDS and not (head or '').startswith('@'):
                raise _Located(line, col, f'unknown command or module field {head or "()"!r}')
        return ModuleSrc('text', None, self.text[meta.start_pos:meta.end_pos], meta.line)

    def sx(self, meta, children):
        # Only an inline module looks at this: its fields' keywords.
        head = children[0] if children and isinstance(children[0], str) else None
        return head, meta.line, meta.column

    # actions and values
    def invoke(self, meta, children):
        name, rest = _name(children)
        return Action('invoke', name, self._field(rest[0]), rest[1:], meta.line)

    def get(self, meta, children):
        name, rest = _name(children)
        return Action('get', name, self._field(rest[0]), [], meta.line)

    def _literal(self, tok, fn, *args):
        try:
            return fn(str(tok), *args)
        except LiteralError as e:
            raise _Located(tok.line, tok.column, str(e))

    def _field(self, tok):
        try:
            return decode_name(str(tok))
        except LiteralError as e:
            raise _Located(tok.line, tok.column, str(e))

    def _string(self, tok):
        try:
            return decode_string(str(tok))
        except LiteralError as e:
            raise _Located(tok.line, tok.column, str(e))

    def i32_const(self, meta, c):
        return ('num', 'i32', self._literal(c[0], parse_int, 32))

    def i64_const(self, meta, c):
        return ('num', 'i64', self._literal(c[0], parse_int, 64))

    def _float(self, typ, tok, bits):
        if tok.type in ('NAN_CANONICAL', 'NAN_ARITHMETIC'):
            return ('nan', typ, str(tok)[4:])
        return ('num', typ, self._literal(tok, parse_float, bits))

    def f32_const(self, meta, c):
        return self._float('f32', c[0], 32)

    def f64_const(self, meta, c):
        return self._float('f64', c[0], 64)

    def v128_const(self, meta, c):
        shape, lanes = str(c[0]), c[1:]
        count, width = _LANES[shape]
        if len(lanes) != count:
            raise _Located(meta.line, meta.column,
                           f'wrong number of lane literals: {shape} needs {count}, got {len(lanes)}')
        conv = parse_float if shape[0] == 'f' else parse_int
        out = []
        for t in lanes:
            if t.type == 'ATOM':
                out.append(self._literal(t, conv, width))
            elif conv is parse_int:
                raise _Located(t.line, t.column, f'NaN pattern in integer lane of {shape}')
            else:
                out.append(('nan', str(t)[4:]))
        if all(type(x) is int for x in out):
            return ('num', 'v128', sum(x << (i * width) for i, x in enumerate(out)))
        return ('v128', shape, out)

    def ref_null(self, meta, c):
        return ('ref.null', str(c[0]) if c else None)

    def ref_host(self, meta, c):
        return ('ref.host', self._literal(c[0], parse_int, 32))

    def ref_pattern(self, meta, c):
        text = str(c[0])
        return ('ref', text[4:] if text != 'ref' else None)

    def either(self, meta, c):
        return ('either', list(c))

    def result(self, meta, c):
        return c[0]

    def ref_extern(self, meta, c):
        return ('ref.extern', self._literal(c[0], parse_int, 32) if c else None)

    def ref_func(self, meta, c):
        return ('ref.func', self._literal(c[0], parse_int, 32) if c else None)

    # commands
    def register(self, meta, c):
        name = c[1] if len(c) > 1 else None
        return Command('register', _identifier(name) if name else None, self._field(c[0]), meta.line)

    def action(self, meta, c):  # pragma: no cover - 'action' is aliased away
        return c[0]

    def assert_return(self, meta, c):
        action, results = c[0], c[1:]
        return Command('assert_return', action, list(results), meta.line)

    def _assertion(kind):
        def build(self, meta, c):
            return Command(kind, c[0], self._field(c[1]), meta.line)
        return build

    assert_trap = _assertion('assert_trap')
    assert_exhaustion = _assertion('assert_exhaustion')
    assert_invalid = _assertion('assert_invalid')
    assert_malformed = _assertion('assert_malformed')
    assert_unlinkable = _assertion('assert_unlinkable')
    assert_uninstantiable = _assertion('assert_uninstantiable')
    assert_malformed_custom = _assertion('assert_malformed_custom')
    assert_invalid_custom = _assertion('assert_invalid_custom')
    del _assertion

    def assert_exception(self, meta, c):
        return Command('assert_exception', c[0], None, meta.line)

    def start(self, meta, children):
        out = []
        for child in children:
            if isinstance(child, ModuleSrc):
                out.append(Command('module', child, None, child.line))
            elif isinstance(child, Action):
                out.append(Command('action', child, None, child.line))
            elif isinstance(child, tuple) and child[0] == 'definition':
                out.append(Command('module_definition', child[1], None, child[1].line))
            else:
                out.append(child)
        return out


def _to_value(result, line, where):
    """An invoke argument: a result shape that denotes exactly one value."""
    kind = result[0]
    if kind == 'num':
        return result[2]
    if kind == 'ref.null':
        return None
    if kind == 'ref.extern' and result[1] is not None:
        return ExternRef(result[1])
    if kind == 'ref.host':
        return HostRef(result[1])
    raise WastSyntaxError(f'{where}:{line}: {kind} pattern is not a value')


def parse_wast(text, filename='<string>'):
    """Parse a whole script -> list of Command; WastSyntaxError on bad input."""
    try:
        clean = blank_annotations(blank_comments(text))
    except WastSyntaxError as e:
        raise WastSyntaxError(f'{filename}: {e}') from None
    try:
        tree = _get_parser().parse(clean)
        commands = _ToCommands(text).transform(tree)
    except UnexpectedInput as e:
        line, col = e.line, e.column
        if isinstance(e, UnexpectedEOF) or getattr(getattr(e, 'token', None), 'type', '') == '$END':
            line = text.count('\n') + 1
            col = len(text) - (text.rfind('\n') + 1) + 1
            raise WastSyntaxError(f'{filename}:{line}:{col}: unexpected end of script') from None
        context = e.get_context(clean, 40).rstrip()
        raise WastSyntaxError(f'{filename}:{line}:{col}: syntax error\n{context}') from None
    except VisitError as e:
        orig = e.orig_exc
        if isinstance(orig, _Located):
            raise WastSyntaxError(f'{filename}:{orig.line}:{orig.col}: {orig.message}') from None
        if isinstance(orig, WastSyntaxError):
            raise WastSyntaxError(f'{filename}: {orig}') from None
        raise
    except LarkError as e:
        raise WastSyntaxError(f'{filename}: {e}') from None
    for cmd in commands:
        action = cmd.target if isinstance(cmd.target, Action) else None
        if action is not None:
            action.args = [_to_value(a, action.line, filename) for a in action.args]
    return commands


def parse_file(path):
    """Parse a .wast file (UTF-8)."""
    with open(path, 'rb') as f:
        data = f.read()
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as e:
        raise WastSyntaxError(f'{path}: not UTF-8 ({e})') from None
    return parse_wast(text, path)
