"""The real WAMR and WasmEdge migration forks as systems under test.

`forks.build` builds the pinned sources into a cache outside the checkout;
`forks.harness` runs every route between the real runtimes and the
project's two models and compares them with the uninterrupted run.
"""
