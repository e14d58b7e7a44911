"""WASI preview 1 (wasi_snapshot_preview1): the host functions, the sandboxed file system, and the
migratable state of a WASI command."""
