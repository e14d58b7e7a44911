"""Fuzzing support: generators of valid, terminating Wasm 2.0 modules
(``fuzz.gen``, ``fuzz.smith``), a binary encoder (``fuzz.encode``) and a
wasmtime-backed reference oracle (``fuzz.wasmtime_oracle``)."""
