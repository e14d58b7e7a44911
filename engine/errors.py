"""The error kinds a user of the engine can meet, each with the spec
testsuite's message text so that assertions compare like for like."""


class WasmError(Exception):
    """Base of every error the engine raises on purpose."""

    def __init__(self, message, where=None):
        super().__init__(message)
        self.message = message
        self.where = where          # e.g. "byte 0x1f", "func 3 instr 12"

    def __str__(self):
        return f'{self.message} ({self.where})' if self.where else self.message


class DecodeError(WasmError):
    """Malformed binary (assert_malformed)."""


class ValidationError(WasmError):
    """Invalid module (assert_invalid)."""


class LinkError(WasmError):
    """Imports do not match (assert_unlinkable)."""


class Trap(WasmError):
    """Execution trapped (assert_trap / assert_uninstantiable)."""


class Exhaustion(Trap):
    """Call stack or value stack exhausted (assert_exhaustion)."""


class UncaughtException(WasmError):
    """A Wasm exception (``throw``) that no handler caught before it left the
    invoked function (assert_exception)."""
