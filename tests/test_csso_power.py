"""CSSO, ADMM and the price iteration on the reference case; what crosses the subspace interface."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from core.icnn import SurrogateWeights
from dso.subspace import DsoSubspace
from orchestrator.results.run import summarize
from orchestrator.strategies import RunOptions, get_strategy
from orchestrator.strategies.iterative import start_point
from orchestrator.system import CoordinatedSystem
from orchestrator.system.embedded import EmbeddedSystem, build_system
from tso.subspace import TsoSubspace


@pytest.fixture(scope="module")
def system() -> EmbeddedSystem:
    return build_system("ieee30-3x33")


@pytest.fixture(scope="module")
def j_star(system: EmbeddedSystem) -> float:
    return float(summarize(system.spec, get_strategy("centralized").run(
        system, RunOptions(progress=False, ac_check=False)))["objective_usd"])


def test_subspace_sensitivities_match_finite_differences(system: EmbeddedSystem) -> None:
    x0 = start_point(system)
    f = system.feeders[0]
    dso = DsoSubspace(f.data, f.inputs, np.arange(24))
    tso = TsoSubspace(system.tso_data, system.tso_inputs)
    for sub, x, i in ((dso, x0[:24], 18), (tso, x0, 30)):
        g = sub.evaluate(x).gradient
        e = np.zeros(x.size)
        e[i] = 0.01
        fd = (sub.evaluate(x + e).cost_usd - sub.evaluate(x - e).cost_usd) / 0.02
        assert abs(fd - g[i]) < 1e-3 * max(1.0, abs(fd)), (type(sub).__name__, fd, g[i])
    assert all(b.problem.is_dpp() for b in dso._problems.values())
    # far outside the feeder's import range: finite cost, the elastic penalty reports the mismatch
    far = dso.evaluate(x0[:24] + 50.0)
    assert np.isfinite(far.cost_usd) and far.penalty_usd > 0 and far.mismatch_mw > 1.0
    assert np.all(np.isfinite(far.gradient))


class Recorder:
    """Wraps an executor and keeps every message of every round (everything else is delegated)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sent: list[Any] = []
        self.received: list[Any] = []

    def round(self, calls: Any) -> Any:
        replies = self.inner.round(calls)
        self.sent.append(calls)
        self.received.append(replies)
        return replies

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _leaves(obj: Any) -> list[Any]:
    if isinstance(obj, (list, tuple)):
        return [x for o in obj for x in _leaves(o)]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [obj] + [x for f in dataclasses.fields(obj) for x in _leaves(getattr(obj, f.name))]
    return [obj]


@pytest.fixture(scope="module")
def csso_run(system: EmbeddedSystem, j_star: float) -> tuple[Any, dict[str, Any], Recorder]:
    """ONE reference-case CSSO run (serial executor, stops at the 0.1 % gap, at most 5 rounds), recorded."""
    import orchestrator.strategies.csso.strategy as csso_module

    recorders: list[Recorder] = []
    original = csso_module.executor_for

    def recording(system: CoordinatedSystem, options: RunOptions) -> Any:
        ex, layout = original(system, options)
        recorders.append(Recorder(ex))
        return recorders[-1], layout

    csso_module.executor_for = recording
    try:
        opts = RunOptions(progress=False, extra={"executor": "serial", "best_known_usd": j_star,
                                                 "csso_max_rounds": 5, "csso_n_doe": 0, "csso_stop_gap": 1e-3})
        result = get_strategy("csso").run(system, opts)
    finally:
        csso_module.executor_for = original
    return result, summarize(system.spec, result), recorders[0]


def test_csso_reaches_centralized_within_0_1_percent(csso_run: Any, j_star: float) -> None:
    result, summary, _ = csso_run
    gap = (summary["objective_usd"] - j_star) / abs(j_star)
    assert -1e-4 < gap < 1e-3, gap  # J* is solved to the solver's tolerance: a hair below is possible
    assert result.converged
    assert summary["ev_unmet_mwh"] < 1e-3
    assert summary["ac_check"]["converged"] and summary["ac_check"]["max_voltage_error_pu"] < 1e-3
    c = result.traffic
    assert c.rounds == len(result.convergence) + 1 and c.subspace_solves >= 4 * c.rounds and c.bytes > 0
    assert c.messages == 2 * 4 * c.rounds
    assert result.convergence[-1]["gap_to_best_known"] < 1e-3
    assert max(r["primal_residual_mw"] for r in result.convergence) < 1e-6  # evaluated points agree
    for key in ("round", "objective_usd", "gap_to_best_known", "primal_residual_mw", "trust_radius"):
        assert key in result.convergence[0]


def test_only_boundary_values_sensitivities_and_surrogates_cross(csso_run: Any, system: EmbeddedSystem) -> None:
    rec = csso_run[2]
    n = 3 * system.n_periods
    assert len(rec.sent) >= 3  # evaluation rounds with optimisations, and the final dispatch round
    coordination = slice(0, len(rec.sent) - 1)  # the last round returns the operators' reports
    allowed = (str, float, int, np.floating, np.integer, bool, np.ndarray, SurrogateWeights)
    for leaf in _leaves(rec.sent[coordination] + rec.received[coordination]):
        if dataclasses.is_dataclass(leaf):
            assert type(leaf).__name__ in {"SurrogateWeights", "Evaluation", "Proposal", "Evaluate",
                                           "Optimize"}, type(leaf)
            continue
        assert isinstance(leaf, allowed), type(leaf)
        if isinstance(leaf, np.ndarray) and not leaf.ndim == 2:
            assert leaf.size <= n, leaf.shape  # boundary-sized vectors only
        elif isinstance(leaf, np.ndarray):
            assert leaf.shape[1] <= n  # surrogate weight matrices over boundary inputs
    assert any(isinstance(x, SurrogateWeights) for x in _leaves(rec.sent))


def test_admm_and_dual_run_in_the_same_harness(system: EmbeddedSystem, j_star: float) -> None:
    admm = get_strategy("admm").run(system, RunOptions(progress=False, extra={
        "executor": "serial", "best_known_usd": j_star, "admm_stop_gap": 1e-3, "admm_max_rounds": 6}))
    rows = admm.convergence
    assert admm.converged and rows[-1]["gap_to_best_known"] <= 1e-3 and len(rows) <= 6
    assert all(np.isfinite(r["primal_residual_mw"]) for r in rows)
    assert admm.traffic.rounds == len(rows) + 2  # the round that evaluates J, and the final report
    dual = get_strategy("dual").run(system, RunOptions(progress=False, extra={
        "executor": "serial", "best_known_usd": j_star, "dual_max_rounds": 2}))
    assert dual.traffic.rounds == 1 + 2 + 1  # start price, 2 price rounds, final report
    assert np.isfinite(dual.convergence[0]["objective_usd"])
