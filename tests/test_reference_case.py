"""The reference case end to end: both strategies, the run contract, and the issue's claims.

One run of each strategy per test session (module fixture); each takes a few seconds.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from core.solver import solve_or_raise
from dso.inputs import flexibility_from_envelope
from dso.problem import DsoProblem
from orchestrator.results.run import SUMMARY_FIELDS, summarize, write_run
from orchestrator.strategies import RunOptions, RunResult, get_strategy
from orchestrator.strategies.centralized import Centralized
from orchestrator.system.embedded import EmbeddedSystem


@pytest.fixture(scope="module")
def system(reference_system: EmbeddedSystem) -> EmbeddedSystem:
    return reference_system


@pytest.fixture(scope="module")
def results(system: EmbeddedSystem, reference_centralized: RunResult) -> dict[str, RunResult]:
    return {"isolated": get_strategy("isolated").run(system, RunOptions()), "centralized": reference_centralized}


@pytest.fixture(scope="module")
def runs(system: EmbeddedSystem, results: dict[str, RunResult],
         tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict, Path]]:
    out = {}
    for name, result in results.items():
        summary = summarize(system.spec, result)
        d = tmp_path_factory.mktemp(name)
        write_run(d, system.spec, result, summary)
        out[name] = (summary, d)
    return out


def test_system_holds_three_feeders_with_evs(system: EmbeddedSystem) -> None:
    assert system.feeder_ids == ["dso1", "dso2", "dso3"]
    for f in system.feeders:
        assert f.data.n_nodes == 33 and len(f.fleet) == 300
        assert {s.node for s in f.stations} <= set(range(1, 34))
        kinds = {ev.ev_id.split("-")[1] for ev in f.fleet}
        assert kinds == {"home", "work"}
    # the DSO sees the aggregator's envelopes node-for-node (labels 1..33 -> indices 0..32)
    flex = system.feeders[0].flex
    dso = flexibility_from_envelope(flex)
    np.testing.assert_array_equal(dso.node_idx + 1, flex.node)
    np.testing.assert_array_equal(dso.dwell, flex.dwell)


def test_summary_has_every_contract_field(runs: dict[str, tuple[dict, Path]]) -> None:
    for name, (_, d) in runs.items():
        summary = json.loads((d / "summary.json").read_text())
        missing = [k for k in SUMMARY_FIELDS if k not in summary]
        assert not missing, f"{name}: missing {missing}"
        assert set(summary["dso_cost_usd"]) == {"dso1", "dso2", "dso3"}
        assert set(summary["ac_check"]) >= {"max_voltage_error_pu", "loss_error_rel"}
        for png in ("prices.png", "feeder_loads.png", "voltages.png", "pv.png"):
            assert (d / png).stat().st_size > 10_000


def test_timeseries_files(runs: dict[str, tuple[dict, Path]], system: EmbeddedSystem) -> None:
    _, d = runs["centralized"]
    with open(d / "timeseries" / "boundary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["hour", "dso", "p_mw", "q_mvar", "price_usd_per_mwh"]
    assert len(rows) == 24 * 3
    with open(d / "timeseries" / "dso_nodes.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["dso", "hour", "node", "p_load_mw", "q_load_mvar", "p_gen_mw", "q_gen_mvar",
                             "p_ev_mw", "v_pu", "q_ev_mvar"]
    assert len(rows) == 3 * 24 * 33
    v = np.array([float(r["v_pu"]) for r in rows])
    assert v.min() >= 0.95 - 1e-6 and v.max() <= 1.05 + 1e-6


def test_centralized_beats_isolated(runs: dict[str, tuple[dict, Path]]) -> None:
    iso, _ = runs["isolated"]
    cen, _ = runs["centralized"]
    assert cen["objective_usd"] <= iso["objective_usd"]
    assert cen["distribution_loss_rate"] < iso["distribution_loss_rate"]
    assert cen["pv_utilization"] > iso["pv_utilization"]
    for s in (iso, cen):
        assert s["ev_unmet_mwh"] <= 1e-9
        assert s["converged"] is True


def test_ac_check_on_centralized(runs: dict[str, tuple[dict, Path]]) -> None:
    cen, _ = runs["centralized"]
    assert cen["ac_check"]["converged"]
    assert cen["ac_check"]["loss_error_rel"] <= 0.01
    assert cen["ac_check"]["max_voltage_error_pu"] <= 0.002
    assert cen["max_soc_gap_mva2"] <= 1e-4


def test_cost_accounting_is_consistent(runs: dict[str, tuple[dict, Path]]) -> None:
    """Purchases cancel: objective = TSO cost + sum of DSO costs = sum of physical cost terms."""
    for s, _ in runs.values():
        assert s["objective_usd"] == pytest.approx(s["tso_cost_usd"] + sum(s["dso_cost_usd"].values()), rel=1e-9)
        terms = s["cost_terms_usd"]
        physical = sum(terms["tso"].values()) + sum(sum(v.values()) for v in terms["dso"].values())
        assert s["objective_usd"] == pytest.approx(physical, rel=1e-9)


def test_boundary_prices_are_consistent(results: dict[str, RunResult], system: EmbeddedSystem) -> None:
    """Centralized: the TSO's LMP at a DSO's bus equals that feeder's substation DLMP (one joint
    optimum prices the boundary alike on both sides). Isolated: DSOs pay the day-ahead clearing price and
    dispatch against it (a DSO solve at that price gives the reported import)."""
    problem, tso, feeders = Centralized().build(system)
    solve_or_raise(problem, "CLARABEL", "centralized joint problem")
    lmp = tso.extract().price_dso_usd_per_mwh
    for k, model in enumerate(feeders.values()):
        np.testing.assert_allclose(model.extract().dlmp_usd_per_mwh[0], lmp[k], rtol=1e-3, atol=1e-2)
        assert np.all(lmp[k] > 0)
    np.testing.assert_allclose(np.vstack(list(results["centralized"].boundary_price_usd_per_mwh.values())), lmp,
                               rtol=1e-6, atol=1e-6)
    iso = results["isolated"]
    for f in system.feeders:
        price = iso.boundary_price_usd_per_mwh[f.feeder_id]
        at_price = DsoProblem(f.data, f.inputs_uncontrolled).solve(price_usd_per_mwh=price).dispatch
        np.testing.assert_allclose(at_price.dlmp_usd_per_mwh[0], price, rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(iso.feeders[f.feeder_id].p_import_mw, at_price.p_import_mw, atol=1e-6)
