"""The study contract's files (study.json, table.md) written by the shared writer every study uses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from orchestrator.studies.contract import PaperFigure, StudyResult, table_markdown, write_study


def _result() -> StudyResult:
    return StudyResult(
        study="demo", case="ieee33-demo",
        scenarios={"base": {"loss_mwh": 2.5, "v_min_pu": 0.951, "per_station": {"c1": 1.0}},
                   "ev_pq": {"loss_mwh": np.float64(1.0), "v_min_pu": float("nan"), "per_station": {"c1": 2.0}}},
        notes=["a note"], paper=[PaperFigure("ev_pq", "loss_mwh", 1.1, "Table 3")],
        table_metrics=["loss_mwh", "v_min_pu"], extra={"default_epsilon": 1.0})


def test_study_json_has_the_contract_keys(tmp_path: Path) -> None:
    written = write_study(tmp_path, _result())
    assert written[:2] == [tmp_path / "study.json", tmp_path / "table.md"]
    doc = json.loads((tmp_path / "study.json").read_text())
    assert {"study", "case", "scenarios", "notes"} <= set(doc) and doc["default_epsilon"] == 1.0
    assert doc["scenarios"]["ev_pq"]["loss_mwh"] == 1.0 and doc["scenarios"]["ev_pq"]["v_min_pu"] is None
    assert doc["paper"] == [{"scenario": "ev_pq", "metric": "loss_mwh", "value": 1.1, "source": "Table 3"}]


def test_table_puts_the_papers_figures_beside_ours() -> None:
    table = table_markdown(_result())
    header = next(line for line in table.splitlines() if line.startswith("| metric"))
    assert header == "| metric | base (ours) | ev_pq (ours) | ev_pq (paper) |"
    assert "| loss_mwh | 2.5 | 1 | 1.1 |" in table
    assert "| v_min_pu | 0.951 | — |  |" in table  # a NaN is shown as missing, not as a number
    assert "Table 3" in table and "- a note" in table
