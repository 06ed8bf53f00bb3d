"""Benchmark bookkeeping that the printed figures rely on (no timing here)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.bench.runs import _rounds_to_gap
from orchestrator.cli.main import main


def _csv(path: Path, rows: list[tuple[int, int, float, float]]) -> Path:
    path.write_text("round,known_round,objective_usd,boundary_mismatch_mw\n"
                    + "".join(f"{r},{k},{j},{mm}\n" for r, k, j, mm in rows))
    return path


def test_rounds_to_gap_needs_the_gap_at_a_consistent_boundary(tmp_path: Path) -> None:
    ref = 1000.0
    # round 1 is within 0.1 % but the operators disagree by 20 MW: it does not count
    rows = [(1, 1, 1000.5, 20.0), (2, 2, 1005.0, 0.05), (3, 3, 1000.9, 0.05), (4, 4, 1000.1, 0.0)]
    assert _rounds_to_gap(_csv(tmp_path / "a.csv", rows), ref, 1e-3) == 3
    assert _rounds_to_gap(_csv(tmp_path / "b.csv", rows[:2]), ref, 1e-3) == ">2"
    assert _rounds_to_gap(tmp_path / "missing.csv", ref, 1e-3) == "-"  # a one-shot strategy writes none
    assert _rounds_to_gap(_csv(tmp_path / "c.csv", rows), None, 1e-3) == "-"


def test_rounds_to_gap_counts_the_round_that_made_the_objective_known(tmp_path: Path) -> None:
    # an ADMM-like trace: round r's iterate is evaluated by the TSO in round r + 1
    rows = [(1, 1, 1005.0, 0.0), (2, 3, 1000.5, 0.0), (3, 4, 1000.1, 0.0)]
    assert _rounds_to_gap(_csv(tmp_path / "a.csv", rows), 1000.0, 1e-3) == 3
    rows = [(1, 1, 1005.0, 0.0), (2, 3, 1000.5, 0.0)]  # a file from before known_round: the round itself
    path = tmp_path / "old.csv"
    path.write_text("round,objective_usd,boundary_mismatch_mw\n" + "".join(f"{r},{j},{mm}\n" for r, _, j, mm in rows))
    assert _rounds_to_gap(path, 1000.0, 1e-3) == 2


def test_scale_strategies_are_checked_before_anything_runs(capsys) -> None:
    assert main(["bench", "--scale", "--scale-strategies", "csso,admm"]) == 2
    assert "give centralized" in capsys.readouterr().err
    assert main(["bench", "--scale", "--scale-strategies", "centralized,foo"]) == 2
    assert "unknown: foo" in capsys.readouterr().err
