"""Run output: ev_allocation.csv adds up to the dispatched EV power per node and hour (up to the reported
rounding of the spatial allocation to whole EVs); heat map written."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from orchestrator.results.run import summarize, write_run
from orchestrator.strategies import RunResult
from orchestrator.system.embedded import EmbeddedSystem


def test_ev_allocation_matches_dispatch(tmp_path: Path, reference_system: EmbeddedSystem,
                                       reference_centralized: RunResult) -> None:
    system, result = reference_system, reference_centralized
    summary = summarize(system.spec, result)
    written = write_run(tmp_path, system.spec, result, summary)
    # spatial allocation rounds group shares to whole EVs: station power moves by at most this much
    rounding_mw = summary["ev_allocation_rounding_mw"]
    assert 0.0 <= rounding_mw < 0.05
    assert tmp_path / "timeseries" / "ev_allocation.csv" in written
    assert (tmp_path / "ev_allocation.png").stat().st_size > 1000
    with (tmp_path / "timeseries" / "ev_allocation.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert set(rows[0]) == {"dso", "hour", "node", "station", "p_mw", "n_evs"}
    for f in system.feeders:
        grid = np.zeros((f.data.n_nodes, system.n_periods))
        n_evs = 0
        for r in rows:
            if r["dso"] == f.feeder_id:
                grid[int(r["node"]) - 1, int(float(r["hour"]))] += float(r["p_mw"])
                n_evs += int(r["n_evs"])
        np.testing.assert_allclose(grid, result.feeders[f.feeder_id].p_ev_mw, atol=rounding_mw + 1e-5)
        # every EV is counted once per plugged-in hour
        assert n_evs == int(f.flex.dwell @ np.array([m.size for m in f.flex.members]))
