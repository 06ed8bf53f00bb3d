"""``gridcoord aggregate``: files, per-EV checks on the written schedules for 500 EVs, summary fields."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from orchestrator.cli.main import main


def test_aggregate_500(tmp_path: Path) -> None:
    out = tmp_path / "agg"
    assert main(["aggregate", "--evs", "500", "--seed", "3", "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    for key in ("n_evs", "aggregate_s", "disaggregate_s", "ev_unmet_kwh", "flexibility_captured_inner",
                "flexibility_captured_outer"):
        assert key in s
    assert s["n_evs"] == 500 and s["ev_unmet_kwh"] <= 1e-6
    assert 0.5 < s["flexibility_captured_inner"] <= 1.0 + 1e-9 <= s["flexibility_captured_outer"] + 1e-9
    with (out / "fleet.csv").open() as fh:
        fleet = list(csv.DictReader(fh))
    with (out / "schedules.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(fleet) == 500 and len(rows) == 500 * 24
    p = np.array([float(r["p_kw"]) for r in rows]).reshape(500, 24)
    for i, ev in enumerate(fleet):  # independent check from the CSV files alone
        arr, dep = float(ev["arrival_h"]), float(ev["departure_h"])
        dep = dep if dep > arr else dep + 24
        plugged = np.zeros(24, dtype=bool)
        for t in range(48):
            if t >= arr - 1e-9 and t + 1 <= dep + 1e-9:
                plugged[t % 24] = True
        assert np.all(p[i, ~plugged] == 0.0)
        assert np.all(p[i] <= float(ev["p_charge_kw"]) + 1e-6)
        assert np.all(p[i] >= -float(ev["p_discharge_kw"]) - 1e-6)
        eta = float(ev["efficiency"])
        stored = np.sum(np.where(p[i] > 0, eta * p[i], p[i] / eta))
        assert abs(stored - float(ev["energy_kwh"])) <= 1e-5, ev["id"]  # CSV rounding at 1e-6 kWh
