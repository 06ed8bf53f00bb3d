"""Case files the tests use besides the bundled ones."""

from __future__ import annotations

from pathlib import Path

#: a small case (the reference case's first two feeders, 40 EVs each, 8 periods of 3 h) for the tests of
#: recovery, placement and service plumbing, which need real operators but not the reference case's size
TINY_CASE = str(Path(__file__).resolve().parents[1] / "data" / "tiny-2x33.yaml")
