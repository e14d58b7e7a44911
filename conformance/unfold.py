"""Folded instructions -> plain instructions, in a module's text.

The text format lets an instruction be written folded, as an S-expression
holding its operands (spec 2.0, text/instructions.rst "Folded
Instructions"); the exception-handling proposal adds the legacy ``try``'s
folded form ``(try bt (do instr*) (catch x instr*)* (catch_all instr*)?)``
and ``(try bt (do instr*) (delegate l))``.  Neither converter of
``conformance.wat`` reads folded legacy ``try`` (wasm-tools reads its flat
form), so ``unfold`` rewrites every folded instruction of a module into the
flat sequence it abbreviates:

    (plaininstr imm* folded*)            folded* plaininstr imm*
    (block label? bt instr*)             block label? bt instr* end   (loop, try_table alike)
    (if label? bt folded* (then in*) (else in*)?)
                                         folded* if label? bt in* else in* end
    (try label? bt (do in*) (catch x in*)* (catch_all in*)?)
                                         try label? bt in* catch x in* catch_all in* end
    (try label? bt (do in*) (delegate l))
                                         try label? bt in* delegate l

It works on the S-expression tokens: only instruction sequences are
rewritten (function bodies, global initializers, element offsets and items,
data offsets, table initializers); every other list (types, imports,
``(param ...)``, ``(result ...)``, ``(local ...)``, ``(type ...)`` uses,
immediates such as ``(ref null $t)``, annotations) is copied verbatim, as
are atoms and strings.  Comments between rewritten elements are dropped.
An annotation written right before a folded instruction stays right before
that instruction's keyword (a branch hint names the instruction after it).
A text that is not well-formed folded syntax raises ``UnfoldError``; the
grammar is applied strictly so that no malformed text becomes readable.
"""

import re

__all__ = ['unfold', 'UnfoldError']


class UnfoldError(Exception):
    """The text is not a module whose folded instructions can be unfolded."""


# instruction names without a '.' (every other instruction name has one)
_DOTLESS = frozenset('''unreachable nop block loop if br br_if br_table return call call_indirect
return_call return_call_indirect call_ref return_call_ref drop select try try_table throw
throw_ref rethrow br_on_null br_on_non_null br_on_cast br_on_cast_fail'''.split())
_BLOCKTYPE = frozenset(('type', 'param', 'result'))

_TOKEN = re.compile(r'''
    (?P<space>\s+)
  | (?P<line>;;[^\n\r]*)
  | (?P<open_comment>\(;)
  | (?P<open>\()
  | (?P<close>\))
  | (?P<atom>(?:[^\s()";]+|"(?:[^"\\]|\\.)*"|;(?!;))+)
''', re.VERBOSE | re.DOTALL)
_COMMENT_DELIM = re.compile(r'\(;|;\)')


class _Atom:
    __slots__ = ('text',)

    def __init__(self, text):
        self.text = text


class _List:
    """A parenthesized form: its children and its verbatim source slice."""
    __slots__ = ('items', 'text')

    def __init__(self, items, text):
        self.items, self.text = items, text

    @property
    def head(self):
        first = self.items[0] if self.items else None
        return first.text if isinstance(first, _Atom) else None


def _parse(text):
    """Text -> top-level forms (comments skipped; no recursion, any depth)."""
    stack, starts, top = [], [], []
    pos, n = 0, len(text)
    while pos < n:
        mt = _TOKEN.match(text, pos)
        if mt is None:
            raise UnfoldError(f'unexpected character {text[pos]!r} at offset {pos}')
        kind = mt.lastgroup
        if kind == 'open_comment':
            depth, scan = 1, mt.end()
            while depth:
                inner = _COMMENT_DELIM.search(text, scan)
                if inner is None:
                    raise UnfoldError(f'unterminated block comment at offset {pos}')
                depth += 1 if inner.group() == '(;' else -1
                scan = inner.end()
            pos = scan
            continue
        pos = mt.end()
        if kind == 'open':
            stack.append([])
            starts.append(mt.start())
        elif kind == 'close':
            if not stack:
                raise UnfoldError(f'unbalanced ")" at offset {mt.start()}')
            node = _List(stack.pop(), text[starts.pop():pos])
            (stack[-1] if stack else top).append(node)
        elif kind == 'atom':
            (stack[-1] if stack else top).append(_Atom(mt.group()))
    if stack:
        raise UnfoldError(f'unclosed "(" at offset {starts[-1]}')
    return top


def _is_instr(node):
    """A list that is a folded instruction (not an immediate, field or annotation)."""
    head = node.head if isinstance(node, _List) else None
    return head is not None and (head in _DOTLESS or ('.' in head and head[0] not in '@$"'))


def _is_annotation(node):
    head = node.head if isinstance(node, _List) else None
    return head is not None and head.startswith('@')


def _sequence(items, out):
    """An instruction sequence (flat and folded mixed): unfold its folded ones."""
    pending = []
    for item in items:
        if _is_annotation(item):
            pending.append(item.text)
        elif _is_instr(item):
            _instr(item, out, pending)
            pending = []
        else:
            out.extend(pending)
            pending = []
            out.append(item.text)
    out.extend(pending)


def _label_and_blocktype(items, i, out, clauses=()):
    """Copy ``label? (type ..)? (param ..)* (result ..)*`` (and, for
    try_table, its catch clauses) from items[i:]; return the next index."""
    if i < len(items) and isinstance(items[i], _Atom) and items[i].text.startswith('$'):
        out.append(items[i].text)
        i += 1
    while i < len(items) and isinstance(items[i], _List) and (
            items[i].head in _BLOCKTYPE or items[i].head in clauses or _is_annotation(items[i])):
        out.append(items[i].text)
        i += 1
    return i


def _clause(node, name):
    """True if ``node`` is the list ``(name ...)``."""
    return isinstance(node, _List) and node.head == name


def _instr(node, out, annotations=()):
    """One folded instruction -> its flat form appended to ``out``."""
    op, items = node.head, node.items
    if op in ('block', 'loop', 'try_table'):
        out.extend(annotations)
        out.append(op)
        clauses = ('catch', 'catch_ref', 'catch_all', 'catch_all_ref') if op == 'try_table' else ()
        i = _label_and_blocktype(items, 1, out, clauses)
        _sequence(items[i:], out)
        out.append('end')
    elif op == 'if':
        _if(node, out, annotations)
    elif op == 'try':
        _try(node, out, annotations)
    else:
        immediates, i = [], 1
        while i < len(items) and not _is_instr(items[i]):
            immediates.append(items[i].text)
            i += 1
        for operand in items[i:]:
            if not _is_instr(operand):
                raise UnfoldError(f'{operand.text!r} after the operands of folded {op}')
            _instr(operand, out)
        out.extend(annotations)
        out.append(op)
        out.extend(immediates)


def _if(node, out, annotations):
    items = node.items
    head = []
    i = _label_and_blocktype(items, 1, head)
    while i < len(items) and _is_instr(items[i]):
        _instr(items[i], out)
        i += 1
    if i == len(items) or not _clause(items[i], 'then'):
        raise UnfoldError(f'folded if without (then ...): {node.text[:60]!r}')
    out.extend(annotations)
    out.append('if')
    out.extend(head)
    _sequence(items[i].items[1:], out)
    i += 1
    if i < len(items) and _clause(items[i], 'else'):
        out.append('else')
        _sequence(items[i].items[1:], out)
        i += 1
    if i != len(items):
        raise UnfoldError(f'unexpected {items[i].text[:40]!r} in folded if')
    out.append('end')


def _try(node, out, annotations):
    items = node.items
    out.extend(annotations)
    out.append('try')
    i = _label_and_blocktype(items, 1, out)
    if i == len(items) or not _clause(items[i], 'do'):
        raise UnfoldError(f'folded try without (do ...): {node.text[:60]!r}')
    _sequence(items[i].items[1:], out)
    i += 1
    if i < len(items) and _clause(items[i], 'delegate'):
        label = items[i].items[1:]
        if len(label) != 1 or not isinstance(label[0], _Atom):
            raise UnfoldError(f'delegate takes one label: {items[i].text!r}')
        out.extend(('delegate', label[0].text))
        i += 1
    else:
        while i < len(items) and _clause(items[i], 'catch'):
            arm = items[i].items
            if len(arm) < 2 or not isinstance(arm[1], _Atom):
                raise UnfoldError(f'catch takes a tag: {items[i].text[:40]!r}')
            out.extend(('catch', arm[1].text))
            _sequence(arm[2:], out)
            i += 1
        if i < len(items) and _clause(items[i], 'catch_all'):
            out.append('catch_all')
            _sequence(items[i].items[1:], out)
            i += 1
        out.append('end')
    if i != len(items):
        raise UnfoldError(f'unexpected {items[i].text[:40]!r} in folded try')


def _wrapped(node, keyword):
    """``(offset e)``/``(item e)`` unfolded; a lone folded instruction
    standing for one (the abbreviation) gets the keyword spelled out."""
    out = ['(' + keyword]
    _sequence(node.items[1:] if node.head == keyword else [node], out)
    return ' '.join(out) + ')'


def _segment(node):
    """An elem or data field: the offset and the items are expressions."""
    out, offset_allowed = ['(' + node.head], True
    for item in node.items[1:]:
        if isinstance(item, _Atom):
            offset_allowed = offset_allowed and (item.text[0] == '$' or item.text[0].isdigit())
            out.append(item.text)
        elif offset_allowed and (item.head == 'offset' or _is_instr(item)):
            out.append(_wrapped(item, 'offset'))
            offset_allowed = False
        elif item.head == 'item' or _is_instr(item):
            out.append(_wrapped(item, 'item'))
        else:
            offset_allowed = offset_allowed and (item.head in ('table', 'memory') or _is_annotation(item))
            out.append(item.text)
    return ' '.join(out) + ')'


def _field(node):
    """A module field, its instruction sequences unfolded."""
    head = node.head
    if head in ('func', 'global'):
        out = ['(' + head]
        _sequence(node.items[1:], out)
        return ' '.join(out) + ')'
    if head in ('elem', 'data'):
        return _segment(node)
    if head == 'table':
        items = node.items[1:]
        inline = items.pop() if items and _clause(items[-1], 'elem') else None
        out = ['(table']
        _sequence(items, out)                      # a 3.0 table's initializer
        if inline is not None:                     # (elem expr*): each an item
            out.append(' '.join(['(elem'] + [x.text if isinstance(x, _Atom) else _wrapped(x, 'item')
                                             for x in inline.items[1:]]) + ')')
        return ' '.join(out) + ')'
    return node.text


def unfold(text):
    """A module's text (``(module ...)`` or its bare fields) with every folded
    instruction written flat; raises UnfoldError on text it cannot read."""
    try:
        forms = _parse(text)
        if len(forms) == 1 and isinstance(forms[0], _List) and forms[0].head == 'module':
            out = ['(module']
            out.extend(f.text if isinstance(f, _Atom) else _field(f) for f in forms[0].items[1:])
            return ' '.join(out) + ')'
        return ' '.join(f.text if isinstance(f, _Atom) else _field(f) for f in forms)
    except RecursionError:
        raise UnfoldError('folded instructions nested too deeply') from None
