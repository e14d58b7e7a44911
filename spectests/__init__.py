"""Pins the official spec testsuite (manifest.json); the files live outside the repo."""
