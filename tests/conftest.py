"""Shared pytest set-up: make the project importable when pytest runs from a
checkout without ``pip install -e`` (the packages live at the repo root)."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
