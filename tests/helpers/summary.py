"""Lines a test module wants in pytest's terminal summary (e.g. the fuzz test's case counts)."""

from __future__ import annotations

SUMMARY_LINES: list[str] = []
