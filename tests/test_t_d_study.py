"""``gridcoord study t-d-coordination`` on a reduced case: the study contract, and the rounds to 0.1 % counted in
the exchange that made each objective known (the default case's figures are in the README)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from orchestrator.cli.main import main
from orchestrator.studies.t_d_coordination import METRICS
from tests.helpers.cases import TINY_CASE


def test_t_d_study_writes_the_contract_on_a_reduced_case(tmp_path: Path) -> None:
    out = tmp_path / "td"
    assert main(["study", "t-d-coordination", "--case", TINY_CASE, "--out", str(out), "--executor", "serial",
                 "--max-rounds", "3", "--no-ac-check"]) == 0
    doc = json.loads((out / "study.json").read_text())
    assert doc["study"] == "t-d-coordination" and set(doc["scenarios"]) == {"isolated", "centralized", "csso",
                                                                              "gradient"}
    for name, s in doc["scenarios"].items():
        missing = [m for m in METRICS if m not in s]
        assert not missing, (name, missing)
        assert (out / name / "summary.json").is_file()
    cost = {k: s["cost_usd_per_day"] for k, s in doc["scenarios"].items()}
    j_star = cost["centralized"]
    assert all(c >= j_star * (1 - 1e-6) for c in cost.values()), cost  # the joint optimum is a lower bound
    assert doc["scenarios"]["centralized"]["cost_saving_vs_isolated_usd_per_day"] >= 0.0
    for name in ("csso", "gradient"):
        r01 = doc["scenarios"][name]["rounds_to_0_1pct"]
        # nobody knows a coordinated objective before round 3: start, first responses, their evaluation (CSSO's
        # merge; the TSO's evaluation of the DSOs' iterate for the price method)
        assert r01 is None or (math.isfinite(r01) and r01 >= 3), (name, r01)
    assert doc["scenarios"]["gradient"]["rounds_to_0_1pct"] is not None  # the tiny case gets there in 3 rounds
    table = (out / "table.md").read_text()
    assert "| metric |" in table and "csso (paper)" in table and "| rounds_to_0_1pct |" in table
    assert (out / "clearing_prices.png").is_file() and (out / "csso_vs_gradient.png").is_file()
