"""Runs a parsed .wast script against the engine's embedding API.

Follows the reference interpreter's script runner (interpreter/script/run.ml):
modules are decoded, validated and instantiated with imports looked up by
name in a registry ("spectest" plus every ``register``ed instance); results
are compared bit-exactly, NaN results by class; errors by kind and by message
prefix (the engine's message must start with the assertion's text).

Text modules are converted to binary by ``wasmtime.wat2wasm``, or by
``wasm-tools parse`` where wat2wasm refuses the text (``conformance.wat``):
the engine itself only reads the binary format.
"""

import signal

from engine import errors
from engine.syntax import ExternRef

from .wat import TextError, wat_to_binary
from .wast import ModuleSrc

__all__ = ['run_script', 'Outcome', 'CommandTimeout', 'TEXT_ONLY', 'wat_to_binary', 'TextError']

TEXT_ONLY = ('text-format-only malformed case: wat2wasm emits a binary for it, which the engine '
             'must refuse as malformed')


class Outcome:
    """Result of one command: status 'passed' | 'failed' | 'skipped'."""
    __slots__ = ('kind', 'line', 'status', 'reason')

    def __init__(self, kind, line, status, reason=''):
        self.kind, self.line, self.status, self.reason = kind, line, status, reason

    def to_json(self):
        return {'kind': self.kind, 'line': self.line, 'status': self.status, 'reason': self.reason}

    def __repr__(self):
        return f'Outcome({self.kind}@{self.line} {self.status} {self.reason})'


class CommandTimeout(BaseException):
    """Raised by the alarm when one command runs too long (BaseException so
    that no ``except Exception`` inside the engine can swallow it)."""


class _Fail(Exception):
    """The command did not do what the script says; message = reason."""


# --------------------------------------------------------------- text -> binary

def module_bytes(src):
    if src.kind == 'binary':
        return src.source
    return wat_to_binary(src.source)


# --------------------------------------------------------------- comparing results

_QUIET = {32: 1 << 22, 64: 1 << 51}
_EXP = {32: 0xff << 23, 64: 0x7ff << 52}
_WIDTH = {'i32': 32, 'i64': 64, 'f32': 32, 'f64': 64}
_LANES = {'i8x16': (16, 8), 'i16x8': (8, 16), 'i32x4': (4, 32), 'i64x2': (2, 64),
          'f32x4': (4, 32), 'f64x2': (2, 64)}


def _is_num(v):
    return type(v) is int


def nan_matches(bits, width, cls):
    """canonical: exponent all ones, only the quiet bit in the payload (any sign);
    arithmetic: exponent all ones and the quiet bit set."""
    if not _is_num(bits):
        return False
    mag = bits & ((1 << (width - 1)) - 1)
    if cls == 'canonical':
        return mag == _EXP[width] | _QUIET[width]
    return mag & _EXP[width] == _EXP[width] and bool(mag & _QUIET[width])


def result_matches(expected, got):
    kind = expected[0]
    if kind == 'num':
        return _is_num(got) and got == expected[2]
    if kind == 'nan':
        return nan_matches(got, _WIDTH[expected[1]], expected[2])
    if kind == 'v128':
        if not _is_num(got):
            return False
        count, width = _LANES[expected[1]]
        mask = (1 << width) - 1
        for i, lane in enumerate(expected[2]):
            bits = (got >> (i * width)) & mask
            if isinstance(lane, tuple):
                if not nan_matches(bits, width, lane[1]):
                    return False
            elif bits != lane:
                return False
        return True
    if kind == 'ref.null':
        return got is None
    if kind == 'ref.extern':
        return isinstance(got, ExternRef) and (expected[1] is None or got.value == expected[1])
    if kind == 'ref.func':
        return _is_num(got) and (expected[1] is None or got == expected[1])
    if kind == 'ref.host':
        return ref_kind(got) == 'host' and got.value == expected[1]
    if kind == 'ref':
        return ref_kind(got) in _REF_PATTERN[expected[1]]
    if kind == 'either':
        return any(result_matches(alt, got) for alt in expected[1])
    raise ValueError(f'unknown result pattern {expected!r}')


# (ref.K) result patterns -> the kinds of non-null reference they accept
# (the 3.0 heap type hierarchy: eq covers i31, struct and array; any covers
# eq and host references; (ref) any non-null reference).
_REF_PATTERN = {
    'struct': {'struct'}, 'array': {'array'}, 'i31': {'i31'}, 'exn': {'exn'},
    'eq': {'struct', 'array', 'i31'},
    'any': {'struct', 'array', 'i31', 'host'},
    None: {'struct', 'array', 'i31', 'host', 'func', 'extern', 'exn'},
}


def ref_kind(v):
    """The kind of a non-null reference value: 'func' (a function address),
    'extern', or the ``ref_kind`` a heap value declares ('host', 'struct',
    'array', 'i31', 'exn'); None for null and for numbers that are not refs."""
    if v is None or type(v) is int:
        return 'func' if type(v) is int else None
    if isinstance(v, ExternRef):
        return 'extern'
    return getattr(v, 'ref_kind', None)


def show_value(v):
    if v is None:
        return 'ref.null'
    if isinstance(v, ExternRef):
        return f'ref.extern {v.value}'
    if ref_kind(v) == 'host':
        return f'ref.host {v.value}'
    if _is_num(v):
        return hex(v)
    return repr(v)


def show_expected(e):
    kind = e[0]
    if kind == 'num':
        return f'{e[1]}:{e[2]:#x}'
    if kind == 'nan':
        return f'{e[1]}:nan:{e[2]}'
    if kind == 'v128':
        lanes = ' '.join(f'nan:{x[1]}' if isinstance(x, tuple) else hex(x) for x in e[2])
        return f'v128 {e[1]} {lanes}'
    if kind == 'either':
        return '(either ' + ' | '.join(show_expected(x) for x in e[1]) + ')'
    if kind == 'ref':
        return f'ref.{e[1]}' if e[1] else 'ref'
    return ' '.join(str(x) for x in e if x is not None)


def _message(exc):
    return getattr(exc, 'message', None) or str(exc)


# --------------------------------------------------------------- the script state

class _Script:
    """Store, registry and named instances of one script run."""

    def __init__(self, embedding, executor, limits=None, standard=None, tier='interp'):
        self.emb = embedding
        self.standard = standard  # None: the embedding's default (Wasm 3.0)
        self.store = embedding.store_init(executor=executor, **({'limits': limits} if limits else {}),
                                          **({'tier': tier} if tier != 'interp' else {}))
        self.registry = {'spectest': embedding.spectest_instance(self.store)}
        self.named = {}
        self.current = None
        self.definitions = {}     # $name -> decoded, validated module (3.0 module definitions)
        self.last_definition = None
        self.migrator = None      # migration.Migrator in migrate mode
        # every instance made, even one whose instantiation trapped (its
        # functions live on in the tables it wrote), by the line of its
        # command: the name a migration links an otherwise anonymous one by
        self.by_line = {}
        self._peers = None        # peers(), until a name changes

    def bind(self, names, name, inst):
        """Set ``name`` in ``names`` (registry, named or by_line) to
        ``inst``, or drop it (None); every change of a name goes through
        here, so peers() is recomputed only after one."""
        if inst is None:
            names.pop(name, None)
        else:
            names[name] = inst
        self._peers = None

    def validate(self, module):
        if self.standard is None:
            return self.emb.module_validate(module)
        return self.emb.module_validate(module, standard=self.standard)

    def decode(self, src):
        """ModuleSrc -> (decoded module); text conversion errors propagate."""
        return self.decode_data(module_bytes(src))

    def decode_data(self, data):
        """Binary -> module by the encodings of the suite's standard (2.0:
        no exception opcodes, the 2.0 limits flags and memory immediates)."""
        if self.standard is None:
            return self.emb.module_decode(data)
        return self.emb.module_decode(data, standard=self.standard)

    def resolve(self, imp):
        inst = self.registry.get(imp.module)
        if inst is None:
            raise errors.LinkError('unknown import', f'{imp.module}.{imp.name}')
        try:
            ev = self.emb.instance_export(inst, imp.name)
        except errors.LinkError:
            raise errors.LinkError('unknown import', f'{imp.module}.{imp.name}') from None
        if ev[0] != imp.kind:
            raise errors.LinkError('incompatible import type', f'{imp.module}.{imp.name}')
        return ev

    def instantiate(self, module, line=None):
        """Instantiate with the registry's imports; ``line``: the command's,
        under which a migrating run remembers the instance (``by_line``),
        also the partly initialised one a trap in its segments or start
        leaves (found through the functions it allocated in the store)."""
        self.validate(module)
        externvals = [self.resolve(imp) for imp in module.imports]
        if self.migrator is None or line is None:   # only migrations link (another
            return self.emb.module_instantiate(self.store, module, externvals)  # embedding too)
        first = len(self.store.funcs)
        try:
            inst = self.emb.module_instantiate(self.store, module, externvals)
        except errors.WasmError:
            partial = next((f.module for f in self.store.funcs[first:] if f.module is not None),
                           None)
            if partial is not None:
                self.bind(self.by_line, f'line {line}', partial)
            raise
        self.bind(self.by_line, f'line {line}', inst)
        return inst

    def instance(self, name):
        if name is None:
            if self.current is None:
                raise _Fail('no current module')
            return self.current
        if name not in self.named:
            raise _Fail(f'unknown module {name}')
        return self.named[name]

    def perform(self, action, line=None):
        """Run an action; with a migrator and the command's ``line``, an
        invoke is also checked by migrating it (see conformance.migration)."""
        inst = self.instance(action.module)
        try:
            kind, addr = self.emb.instance_export(inst, action.field)
        except errors.LinkError:
            raise _Fail(f'no export {action.field!r}') from None
        if action.kind == 'invoke':
            if kind != 'func':
                raise _Fail(f'export {action.field!r} is a {kind}, not a func')
            if self.migrator is not None and line is not None:
                return self._migrated(addr, list(action.args), line)
            return list(self.emb.func_invoke(self.store, addr, list(action.args)))
        if kind != 'global':
            raise _Fail(f'export {action.field!r} is a {kind}, not a global')
        return [self.emb.global_read(self.store, addr)]

    def peers(self):
        """Every instance the script made, by a name: registered names
        first (what imports use), then ``$id``s, then ``line N`` for the
        module command at line N (an anonymous module, or one whose
        instantiation trapped after writing its functions into a shared
        table).  A migrated call links the functions of these instances it
        holds references to (engine/migrate/links.py)."""
        if self._peers is not None:
            return self._peers
        from engine.migrate import links
        out = {}
        for names in (self.registry, self.named, self.by_line):
            for name, inst in names.items():
                try:
                    links.check_peers({name: inst})     # a name link.img can hold
                except TypeError:
                    continue
                out.setdefault(name, inst)
        self._peers = out
        return out

    def _migrated(self, addr, args, line):
        from .migration import MigrationMismatch
        params = self.emb.func_type(self.store, addr).params
        if len(args) != len(params):
            raise errors.Trap('wrong number of arguments')
        try:
            return self.migrator.invoke(self.store, addr, args, line, peers=self.peers())
        except MigrationMismatch as e:
            raise _Fail(str(e)) from None


# --------------------------------------------------------------- commands

def _expect_error(exc_type, expected, fn, what):
    """Run fn; it must raise exc_type whose message starts with expected."""
    try:
        fn()
    except exc_type as e:
        msg = _message(e)
        if not msg.startswith(expected):
            raise _Fail(f'wrong {what} message: got {msg!r}, expected {expected!r}') from None
        return
    except errors.WasmError as e:
        raise _Fail(f'expected {what} {expected!r}, got {type(e).__name__}: {_message(e)!r}') from None
    raise _Fail(f'expected {what} {expected!r}, but it succeeded')


def _cmd_module(s, cmd):
    src = cmd.target
    s.current = None      # a module that fails must not leave its predecessor in charge
    if src.name:
        s.bind(s.named, src.name, None)
    module = _define(s, src)
    inst = s.instantiate(module, cmd.line)
    s.current = inst
    if src.name:
        s.bind(s.named, src.name, inst)


def _cmd_module_definition(s, cmd):
    _define(s, cmd.target)


def _define(s, src):
    """Decode and validate; remember the module for later ``module
    instance`` commands (a named ``module`` is also a definition, as in the
    reference interpreter)."""
    if src.name:
        s.definitions.pop(src.name, None)
    try:
        data = module_bytes(src)
    except TextError as e:
        raise _Fail(f'no converter reads the module text: {e}') from None
    module = s.decode_data(data)
    s.validate(module)
    s.last_definition = module
    if src.name:
        s.definitions[src.name] = module
    return module


def _cmd_module_instance(s, cmd):
    """(module instance $I $M): a new instance of the definition $M (or of
    the last one); instantiation is generative, each one has its own state."""
    s.current = None
    if cmd.expected:
        s.bind(s.named, cmd.expected, None)
    if cmd.target is None:
        module = s.last_definition
        if module is None:
            raise _Fail('no module definition to instantiate')
    elif cmd.target in s.definitions:
        module = s.definitions[cmd.target]
    else:
        raise _Fail(f'unknown module definition {cmd.target}')
    inst = s.instantiate(module, cmd.line)
    s.current = inst
    if cmd.expected:
        s.bind(s.named, cmd.expected, inst)


def _cmd_register(s, cmd):
    s.bind(s.registry, cmd.expected, s.instance(cmd.target))


def _cmd_action(s, cmd):
    s.perform(cmd.target, cmd.line)


def _cmd_assert_return(s, cmd):
    got = s.perform(cmd.target, cmd.line)
    want = cmd.expected
    if len(got) != len(want) or not all(result_matches(w, g) for w, g in zip(want, got)):
        raise _Fail(f'result [{" ".join(show_value(g) for g in got)}], '
                    f'expected [{" ".join(show_expected(w) for w in want)}]')


def _valid_module(s, src, what):
    """Decode and validate a module that an assertion says gets further."""
    try:
        data = module_bytes(src)
    except TextError as e:
        raise _Fail(f'no converter reads the module text: {e}') from None
    try:
        module = s.decode_data(data)
        s.validate(module)
    except (errors.DecodeError, errors.ValidationError) as e:
        raise _Fail(f'expected {what}, got {type(e).__name__}: {_message(e)!r}') from None
    return module


def _cmd_assert_trap(s, cmd):
    if isinstance(cmd.target, ModuleSrc):
        return _cmd_assert_uninstantiable(s, cmd)
    _expect_error(errors.Trap, cmd.expected, lambda: s.perform(cmd.target), 'trap')


def _cmd_assert_exception(s, cmd):
    """The invoked function must end by an exception no handler caught."""
    try:
        s.perform(cmd.target)
    except errors.UncaughtException:
        return
    except errors.WasmError as e:
        raise _Fail(f'expected an uncaught exception, got {type(e).__name__}: {_message(e)!r}') from None
    raise _Fail('expected an uncaught exception, but it returned')


def _cmd_assert_exhaustion(s, cmd):
    _expect_error(errors.Exhaustion, cmd.expected, lambda: s.perform(cmd.target), 'exhaustion')


def _cmd_assert_uninstantiable(s, cmd):
    module = _valid_module(s, cmd.target, 'trap at instantiation')

    def run():
        try:
            s.instantiate(module, cmd.line)
        except errors.LinkError as e:
            raise _Fail(f'expected trap at instantiation, got LinkError: {_message(e)!r}') from None
    _expect_error(errors.Trap, cmd.expected, run, 'trap')


def _cmd_assert_unlinkable(s, cmd):
    module = _valid_module(s, cmd.target, 'link error')
    _expect_error(errors.LinkError, cmd.expected, lambda: s.instantiate(module), 'link error')


def _cmd_assert_invalid(s, cmd):
    src = cmd.target
    try:
        data = module_bytes(src)
    except TextError as e:
        raise _Fail(f'no converter reads the module text: {e}') from None
    try:
        module = s.decode_data(data)
    except errors.DecodeError as e:
        raise _Fail(f'expected invalid, got DecodeError: {_message(e)!r}') from None
    _expect_error(errors.ValidationError, cmd.expected,
                  lambda: s.validate(module), 'validation error')


def _cmd_assert_malformed(s, cmd):
    src = cmd.target
    if src.kind != 'binary':
        try:
            data = wat_to_binary(src.source)
        except TextError:
            return None           # malformed text, as the assertion says
        # wat2wasm accepted the malformed text (e.g. "(memory 0x1_0000_0000)")
        # and emitted a binary that carries the same fault (a u32 that
        # overflows, a second start section): the engine must refuse it as
        # malformed; the message is the binary format's, not the text's.
        try:
            s.decode_data(data)
        except errors.DecodeError:
            return None
        raise _Fail(f'{TEXT_ONLY}: wat2wasm emitted a binary for this malformed text and the '
                    f'engine decoded it instead of refusing it as malformed')
    _expect_error(errors.DecodeError, cmd.expected,
                  lambda: s.decode_data(src.source), 'decode error')


def _cmd_assert_custom(s, cmd):
    """assert_malformed_custom / assert_invalid_custom: the module is wrong
    only in what an annotation puts into a custom section (@custom, @name,
    @metadata.code.branch_hint).  A converter that checks the annotation
    refuses the text, which is the outcome asserted; one that accepts it
    must produce a binary the engine decodes and validates, since the core
    format gives custom sections no meaning a module could break."""
    src = cmd.target
    try:
        data = module_bytes(src)
    except TextError:
        return None
    try:
        module = s.decode_data(data)
        s.validate(module)
    except (errors.DecodeError, errors.ValidationError) as e:
        raise _Fail(f'the converter accepted a text whose fault is only in a custom section, and '
                    f'the engine refused the binary: {type(e).__name__}: {_message(e)!r}') from None


_HANDLERS = {
    'module': _cmd_module,
    'register': _cmd_register,
    'action': _cmd_action,
    'assert_return': _cmd_assert_return,
    'assert_trap': _cmd_assert_trap,
    'assert_exhaustion': _cmd_assert_exhaustion,
    'assert_invalid': _cmd_assert_invalid,
    'assert_malformed': _cmd_assert_malformed,
    'assert_unlinkable': _cmd_assert_unlinkable,
    'assert_uninstantiable': _cmd_assert_uninstantiable,
    'module_definition': _cmd_module_definition,
    'module_instance': _cmd_module_instance,
    'assert_exception': _cmd_assert_exception,
    'assert_malformed_custom': _cmd_assert_custom,
    'assert_invalid_custom': _cmd_assert_custom,
}


def _on_alarm(signum, frame):
    raise CommandTimeout()


def run_script(commands, executor='wasmedge', timeout=None, embedding=None, migrator=None,
               limits=None, standard=None, tier='interp'):
    """Run every command; returns one Outcome per command (never raises for
    engine misbehaviour: crashes and timeouts are failures of that command).

    ``timeout``: seconds per command (SIGALRM; main thread only).
    ``migrator``: a ``migration.Migrator``; every assert_return and invoke
    action is then also migrated between the models and checked.
    ``limits``: ``engine.limits.Limits`` of the script's store (step budget,
    timeout per call, sizes); the engine's defaults if None.
    ``standard``: validate by the rules of Wasm 2 or 3 (``valid.STANDARDS``);
    the embedding's default (3) if None.
    ``tier``: 'interp' or 'fast' (the compiled tier, of either model).
    """
    outcomes = []
    try:
        if embedding is None:
            from engine import embedding
        script = _Script(embedding, executor, limits, standard, tier)
        script.migrator = migrator
    except Exception as e:
        reason = f'cannot set up the store: {type(e).__name__}: {e}'
        return [Outcome(c.kind, c.line, 'failed', reason) for c in commands]
    use_alarm = bool(timeout) and hasattr(signal, 'setitimer')
    if use_alarm:
        try:
            old = signal.signal(signal.SIGALRM, _on_alarm)
        except ValueError:        # not the main thread
            use_alarm = False
    try:
        for cmd in commands:
            outcomes.append(_run_command(script, cmd, timeout if use_alarm else None))
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    return outcomes


def _run_command(script, cmd, timeout):
    handler = _HANDLERS[cmd.kind]
    try:
        if timeout:
            signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            skip = handler(script, cmd)
        finally:
            if timeout:
                signal.setitimer(signal.ITIMER_REAL, 0)
    except _Fail as e:
        return Outcome(cmd.kind, cmd.line, 'failed', str(e))
    except CommandTimeout:
        return Outcome(cmd.kind, cmd.line, 'failed', f'timeout after {timeout}s')
    except errors.WasmError as e:
        return Outcome(cmd.kind, cmd.line, 'failed', f'unexpected {type(e).__name__}: {e}')
    except RecursionError:
        return Outcome(cmd.kind, cmd.line, 'failed', 'internal error: Python recursion limit')
    except Exception as e:
        return Outcome(cmd.kind, cmd.line, 'failed', f'internal error: {type(e).__name__}: {e}')
    if skip:
        return Outcome(cmd.kind, cmd.line, 'skipped', skip)
    return Outcome(cmd.kind, cmd.line, 'passed')
