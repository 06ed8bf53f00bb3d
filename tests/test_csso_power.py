"""CSSO, ADMM and the price iteration on the reference case; what crosses the subspace interface."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from dso.subspace import DsoSubspace
from orchestrator.csso.loop import CssoOptions, run_csso
from orchestrator.csso.power import factories, start_point
from orchestrator.csso.surrogate import SurrogateWeights
from orchestrator.results import summarize
from orchestrator.runtime import SerialExecutor, make_executor
from orchestrator.strategies import RunOptions, get_strategy
from orchestrator.system import System, build_system
from tso.subspace import TsoSubspace


@pytest.fixture(scope="module")
def system() -> System:
    return build_system("ieee30-3x33")


@pytest.fixture(scope="module")
def j_star(system: System) -> float:
    return float(summarize(system, get_strategy("centralized").run(system, RunOptions(progress=False)),
                           ac=False)["objective_usd"])


def test_subspace_sensitivities_match_finite_differences(system: System) -> None:
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
    assert all(p.is_dpp() for p, _ in dso._problems.values())
    # far outside the feeder's import range: finite cost, the elastic penalty reports the mismatch
    far = dso.evaluate(x0[:24] + 50.0)
    assert np.isfinite(far.cost_usd) and far.penalty_usd > 0 and far.mismatch_mw > 1.0
    assert np.all(np.isfinite(far.gradient))


class Recorder:
    """Wraps an executor and keeps every message of every round."""

    def __init__(self, inner: SerialExecutor) -> None:
        self.inner, self.sent, self.received = inner, [], []

    def round(self, calls: Any) -> Any:
        replies = self.inner.round(calls)
        self.sent.append(calls)
        self.received.append(replies)
        return replies


def _leaves(obj: Any) -> list[Any]:
    if isinstance(obj, (list, tuple)):
        return [x for o in obj for x in _leaves(o)]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [obj] + [x for f in dataclasses.fields(obj) for x in _leaves(getattr(obj, f.name))]
    return [obj]


def test_only_boundary_values_sensitivities_and_surrogates_cross(system: System) -> None:
    facs, shared, layout = factories(system, "CLARABEL")
    ex = make_executor("serial", facs, shared)
    rec = Recorder(ex)
    x0 = start_point(system)
    run_csso(rec, layout.indices(), x0, x0 - 10, x0 + 10, np.ones(layout.n), CssoOptions(max_rounds=2, epochs=50))
    allowed = (str, float, int, np.floating, np.integer, bool, np.ndarray, SurrogateWeights)
    for leaf in _leaves(rec.sent + rec.received):
        if dataclasses.is_dataclass(leaf):
            assert type(leaf).__name__ in {"SurrogateWeights", "TsoResponse", "DsoResponse", "TsoProposal",
                                           "DsoProposal"}, type(leaf)
            continue
        assert isinstance(leaf, allowed), type(leaf)
        if isinstance(leaf, np.ndarray) and not leaf.ndim == 2:
            assert leaf.size <= layout.n, leaf.shape  # boundary-sized vectors only
        elif isinstance(leaf, np.ndarray):
            assert leaf.shape[1] <= layout.n  # surrogate weight matrices over boundary inputs


@pytest.fixture(scope="module")
def csso_ray_run(system: System, j_star: float, ray_session: None) -> tuple[Any, dict[str, Any]]:
    opts = RunOptions(progress=False, extra={"executor": "ray", "best_known_usd": j_star, "csso_max_rounds": 10})
    result = get_strategy("csso").run(system, opts)
    return result, summarize(system, result)


def test_csso_on_ray_reaches_centralized_within_0_1_percent(csso_ray_run: Any, j_star: float) -> None:
    result, summary = csso_ray_run
    gap = (summary["objective_usd"] - j_star) / abs(j_star)
    assert 0 <= gap + 1e-7 and gap < 1e-3, gap
    assert summary["ev_unmet_mwh"] < 1e-3
    assert summary["ac_check"]["converged"] and summary["ac_check"]["max_voltage_error_pu"] < 1e-3
    assert result.nodes and result.nodes != ["local"]
    c = result.counters
    assert c.rounds == len(result.convergence) + 1 and c.subspace_solves > 4 * c.rounds and c.bytes > 0
    assert c.messages == 2 * 4 * c.rounds
    for key in ("round", "objective_usd", "gap_to_best_known", "primal_residual_mw", "trust_radius"):
        assert key in result.convergence[0]


def test_admm_and_dual_run_in_the_same_harness(system: System, j_star: float) -> None:
    admm = get_strategy("admm").run(system, RunOptions(progress=False, extra={
        "executor": "serial", "best_known_usd": j_star}))
    assert admm.converged and admm.convergence[-1]["primal_residual_mw"] < 1e-3
    gap = (summarize(system, admm, ac=False)["objective_usd"] - j_star) / j_star
    assert abs(gap) < 1e-4
    dual = get_strategy("dual").run(system, RunOptions(progress=False, extra={
        "executor": "serial", "best_known_usd": j_star, "dual_max_rounds": 3}))
    assert dual.counters.rounds == 1 + 3 + 1  # start price, 3 price rounds, final dispatch
    assert np.isfinite(dual.convergence[0]["objective_usd"])
