"""Spec testsuite conformance: .wast parser (wast.py), script runner
(runner.py) and the ``python -m conformance`` command (cli.py)."""
