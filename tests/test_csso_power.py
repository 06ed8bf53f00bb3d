"""CSSO, ADMM and the price iterations on the reference case in one harness; what crosses the interface."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from core.icnn import SurrogateWeights
from core.solver import scalar, value
from core.subspace import ELASTIC_PENALTY_USD_PER_MWH, Columns
from dso.subspace import DsoSubspace
from orchestrator.results.run import summarize
from orchestrator.strategies import RunOptions, get_strategy
from orchestrator.strategies.csso.surrogate import HourlyIcnn
from orchestrator.strategies.iterative import start_point
from orchestrator.system import CoordinatedSystem
from orchestrator.system.embedded import EmbeddedSystem, build_system
from tests.helpers.cases import TINY_CASE
from tso.subspace import TsoSubspace


@pytest.fixture(scope="module")
def system(reference_system: EmbeddedSystem) -> EmbeddedSystem:
    return reference_system


@pytest.fixture(scope="module")
def j_star(system: EmbeddedSystem, reference_centralized: Any) -> float:
    return float(summarize(system.spec, reference_centralized)["objective_usd"])


@pytest.fixture(scope="module")
def tiny() -> EmbeddedSystem:
    """A small case (2 feeders, 40 EVs each, 8 periods) for the properties that do not depend on the reference
    case's size: the merge's bound and the harness's accounting (a reference-case solve is about 1 s)."""
    return build_system(TINY_CASE)


@pytest.fixture(scope="module")
def tiny_j_star(tiny: EmbeddedSystem) -> float:
    return float(summarize(tiny.spec, get_strategy("centralized").run(
        tiny, RunOptions(progress=False, ac_check=False)))["objective_usd"])


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
    # the penalty prices the mismatch the dispatch has, |import - boundary|, not the solver's two slacks
    # (an interior point leaves both slightly positive): the cost is the DSO's own cost plus that penalty
    beyond_mwh = np.abs(value(dso.boundary) - (x0[:24] + 50.0)).sum() * dso.dt_h
    assert far.penalty_usd == pytest.approx(ELASTIC_PENALTY_USD_PER_MWH * beyond_mwh, rel=1e-12)
    assert far.cost_usd == pytest.approx(scalar(dso.own_cost) + far.penalty_usd, rel=1e-12)
    assert np.all(np.isfinite(far.gradient))
    # the TSO's cost per period adds up to its cost (one evaluation = 24 samples of its response surface)
    ev = tso.evaluate(x0)
    assert ev.hourly_cost_usd is not None and ev.hourly_cost_usd.shape == (24,)
    assert float(ev.hourly_cost_usd.sum()) == pytest.approx(ev.cost_usd, rel=1e-9)


def test_merge_is_an_upper_bound_at_a_point_everyone_can_dispatch(tiny: EmbeddedSystem) -> None:
    """The TSO's merge over DSO points: J at the merged boundary (DSOs evaluated there) <= the bound, and the
    merged imports are convex combinations of each DSO's points (both sides dispatch them: no mismatch)."""
    system = tiny
    t = system.n_periods
    x0 = start_point(system)
    tso = TsoSubspace(system.tso_data, system.tso_inputs)
    dsos = [DsoSubspace(f.data, f.inputs, np.arange(k * t, (k + 1) * t)) for k, f in enumerate(system.feeders)]
    price = tso.evaluate(x0).sensitivity_usd_per_mwh
    points, costs = [], []
    for k, d in enumerate(dsos):
        step = d.respond(price[k])[0]  # a price response and the forecast: two points each DSO can dispatch
        own = [x0[k * t:(k + 1) * t], step]
        points.append(np.vstack(own))
        costs.append(np.array([d.evaluate(p).cost_usd for p in own]))
    merge = tso.merge(Columns(points=tuple(points), costs=tuple(costs)))
    j = tso.evaluate(merge.x).cost_usd + sum(d.evaluate(merge.x[k * t:(k + 1) * t]).cost_usd
                                             for k, d in enumerate(dsos))
    assert j <= merge.bound_usd + 1e-6 * abs(j)
    assert merge.bound_usd <= tso.evaluate(x0).cost_usd + sum(c[0] for c in costs) + 1e-6  # x0 was feasible
    for k, th in enumerate(merge.theta):
        assert th.min() >= -1e-9 and th.sum() == pytest.approx(1.0, abs=1e-7)
        np.testing.assert_allclose(merge.x[k * t:(k + 1) * t], th @ points[k], atol=1e-6)
    assert merge.evaluation.mismatch_mw < 1e-6


def test_hourly_surface_restricted_to_a_dso_is_first_order_exact() -> None:
    """The period-by-period ICNNs as one DSO sees them: exact value and gradient at the centre, convex."""
    rng = np.random.default_rng(0)
    k_n, t_n = 3, 4
    centre = rng.uniform(1, 3, (k_n, t_n))

    def cost(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # per period 0.5 (sum_k x)^2 + 2 sum_k x
        s = x.sum(axis=0)
        return 0.5 * s**2 + 2 * s, np.broadcast_to(s + 2.0, x.shape).copy()

    xs = np.array([centre + rng.normal(0, 0.5, (k_n, t_n)) for _ in range(6)])
    fs, gs = zip(*(cost(x) for x in xs), strict=True)
    net = HourlyIcnn(k_n, t_n, hidden=4, epochs=200)
    net.fit(xs, np.array(fs), np.array(gs), shift=centre, scale=np.ones((k_n, t_n)))
    f_c, g_c = cost(centre)
    w = net.restricted(1, centre, f_c, g_c)
    assert float(w.value(centre[1])) == pytest.approx(float(f_c.sum()), rel=1e-9)
    np.testing.assert_allclose(w.gradient(centre[1]), g_c[1], rtol=1e-6, atol=1e-9)
    assert np.all(w.v >= 0)
    lin = HourlyIcnn(k_n, t_n, hidden=0).restricted(1, centre, f_c, g_c)  # "linear": the prices only
    np.testing.assert_allclose(lin.gradient(centre[1] + 5.0), g_c[1])


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
    if isinstance(obj, SurrogateWeights):  # weights, checked as a whole below
        return [obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [obj] + [x for f in dataclasses.fields(obj) for x in _leaves(getattr(obj, f.name))]
    return [obj]


@pytest.fixture(scope="module")
def csso_run(system: EmbeddedSystem, j_star: float) -> tuple[Any, dict[str, Any], Recorder]:
    """ONE reference-case CSSO run to its own stopping rule (serial executor), recorded."""
    import orchestrator.strategies.csso.strategy as csso_module

    recorders: list[Recorder] = []
    original = csso_module.executor_for

    def recording(system: CoordinatedSystem, options: RunOptions) -> Any:
        ex, layout = original(system, options)
        recorders.append(Recorder(ex))
        return recorders[-1], layout

    csso_module.executor_for = recording
    try:
        opts = RunOptions(progress=False, extra={"executor": "serial", "best_known_usd": j_star})
        result = get_strategy("csso").run(system, opts)
    finally:
        csso_module.executor_for = original
    return result, summarize(system.spec, result), recorders[0]


def test_csso_converges_by_its_own_rule_within_0_1_percent(csso_run: Any, j_star: float) -> None:
    result, summary, _ = csso_run
    gap = (summary["objective_usd"] - j_star) / abs(j_star)
    assert -1e-4 < gap < 1e-3, gap  # J* is solved to the solver's tolerance: a hair below is possible
    assert result.converged and any("stopped: stationary" in n for n in result.notes), result.notes
    assert summary["max_boundary_mismatch_mw"] <= 0.1 and summary["boundary_penalty_usd"] < 1.0
    assert summary["ev_unmet_mwh"] < 1e-3
    assert summary["ac_check"]["converged"] and summary["ac_check"]["max_voltage_error_pu"] < 1e-3
    rows = result.convergence
    assert [r["round"] for r in rows] == list(range(1, len(rows) + 1))
    assert all(r["known_round"] == r["round"] for r in rows)  # each merge returns its bound in its own round
    # the TSO alone evaluates the start, so J is unknown until the first merge; from there on each merge descends
    first = next(i for i, r in enumerate(rows) if r["accepted"] == "merge")
    assert all(np.isnan(r["objective_usd"]) for r in rows[:first]), rows[:first]
    objectives = [r["objective_usd"] for r in rows[first:]]
    assert all(np.isfinite(objectives))
    assert all(b <= a + 1e-9 * abs(a) for a, b in zip(objectives, objectives[1:], strict=False))  # descent
    assert rows[-1]["objective_usd"] >= summary["objective_usd"] - 1e-6 * abs(j_star)  # the bound is >= J
    c = result.traffic
    # the report rode on the last merge round: no round of its own
    assert c.rounds == len(rows) and c.messages == 2 * 4 * c.rounds and c.bytes > 0
    # at most one solve per subspace per round: the start asks the TSO; a probe round the TSO (its probe) and
    # every DSO (a proposal); a merge round the TSO only, when the DSOs' points around that very centre are what
    # it merges (they would only propose them again), and the last one also everybody's report
    solves = [r["solves"] for r in rows]
    steps = [r["accepted"] for r in rows[1:]]
    assert solves[0] == 1 and "probe" in steps and "merge" in steps and steps[-1] == "merge (reported)", steps
    cost = {"probe": 4, "merge": 1, "merge (no gain)": 1, "merge (reported)": 1 + 4}
    assert all(d == cost[a] for a, d in zip(steps, np.diff(solves), strict=True)), (steps, solves)
    assert c.subspace_solves == solves[-1]
    for key in ("round", "objective_usd", "gap_to_best_known", "primal_residual_mw", "wall_s", "solves", "bytes",
                "accepted"):
        assert key in rows[0]
    assert rows[-1]["gap_to_best_known"] < 1e-3
    # the clock starts once every subspace is built: the start-up is its own figure, not in any round's wall_s
    assert summary["startup_s"] == result.startup_s > 0.0
    assert 0.0 < rows[0]["wall_s"] <= rows[-1]["wall_s"] <= result.wall_s


def test_only_boundary_values_costs_sensitivities_and_surrogates_cross(csso_run: Any,
                                                                        system: EmbeddedSystem) -> None:
    rec = csso_run[2]
    n = 3 * system.n_periods
    assert len(rec.sent) >= 3  # the start, coordination rounds, the final report round
    coordination = slice(0, len(rec.sent) - 1)  # the last round returns the operators' reports
    allowed = (str, float, int, np.floating, np.integer, bool, np.ndarray, SurrogateWeights, type(None))
    kinds = {"SurrogateWeights", "Evaluation", "Proposal", "Evaluate", "Optimize", "MergeColumns", "Columns", "Merge"}
    for leaf in _leaves(rec.sent[coordination] + rec.received[coordination]):
        if isinstance(leaf, SurrogateWeights):
            assert leaf.w.shape[1] == system.n_periods  # a DSO gets the TSO's surface over its own imports only
            continue
        if dataclasses.is_dataclass(leaf):
            assert type(leaf).__name__ in kinds, type(leaf)
            continue
        assert isinstance(leaf, allowed), type(leaf)
        if isinstance(leaf, np.ndarray) and leaf.ndim < 2:
            assert leaf.size <= n, leaf.shape  # boundary-sized vectors only
        elif isinstance(leaf, np.ndarray):
            assert leaf.shape[1] <= n  # surrogate weights over boundary inputs, DSO points (points x periods)
    assert any(isinstance(x, SurrogateWeights) for x in _leaves(rec.sent))


def test_admm_and_gradient_run_in_the_same_harness(tiny: EmbeddedSystem, tiny_j_star: float) -> None:
    system, j_star = tiny, tiny_j_star
    admm = get_strategy("admm").run(system, RunOptions(progress=False, ac_check=False, extra={
        "executor": "serial", "best_known_usd": j_star, "admm_stop_gap": 1e-3, "admm_max_rounds": 8}))
    rows = admm.convergence
    # the common start: the TSO alone evaluates x0 (ADMM's first DSO solves need only its prices), J(x0) unknown
    assert rows[0]["round"] == 1 and np.isnan(rows[0]["objective_usd"]) and rows[0]["solves"] == 1
    assert all(np.isfinite(r["primal_residual_mw"]) for r in rows)
    assert admm.traffic.rounds == len(rows) + 2  # the round that evaluates J, and the final report
    # J at the DSOs' iterate of round r is known after the TSO's evaluation in round r + 1, and counted there
    assert rows[0]["known_round"] == 1 and all(r["known_round"] == r["round"] + 1 for r in rows[1:])
    assert rows[-1]["known_round"] == admm.traffic.rounds - 1
    grad = get_strategy("gradient").run(system, RunOptions(progress=False, ac_check=False, extra={
        "executor": "serial", "best_known_usd": j_star, "gradient_max_rounds": 3}))
    assert grad.traffic.rounds == 3 + 1  # start, 2 price rounds, final report
    assert np.isfinite(grad.convergence[-1]["objective_usd"]) and np.isfinite(grad.convergence[-1]["dual_bound_usd"])
    assert grad.convergence[-1]["dual_bound_usd"] <= j_star * (1 + 1e-6)  # weak duality: a lower bound


def test_merge_rounds_do_not_ask_the_dsos_again(tiny: EmbeddedSystem, tiny_j_star: float) -> None:
    """The loop against the earlier one that asked the DSOs in every round (``csso_repropose``): both reach
    J* by their own rule, but a merge round now costs the TSO's solve only, so the run needs fewer solves."""
    runs = {}
    for again in (False, True):
        res = get_strategy("csso").run(tiny, RunOptions(progress=False, ac_check=False, extra={
            "executor": "serial", "best_known_usd": tiny_j_star, "csso_repropose": again}))
        assert res.converged, res.notes
        runs[again] = res
    for res in runs.values():
        gap = (summarize(tiny.spec, res)["objective_usd"] - tiny_j_star) / abs(tiny_j_star)
        assert -1e-4 < gap < 1e-3, gap
    n_sub = 1 + len(tiny.spec.feeders)
    for again, res in runs.items():
        rows = res.convergence
        steps, solves = [str(r["accepted"]) for r in rows[1:]], np.diff([r["solves"] for r in rows])
        merge_cost = {int(d) for a, d in zip(steps, solves, strict=True) if a in ("merge", "merge (no gain)")}
        assert merge_cost == ({n_sub} if again else {1}), (again, steps, solves)
        # without the DSOs' proposals in it, the last merge round carries everybody's report
        assert (steps[-1] == "merge (reported)" and solves[-1] == 1 + n_sub) != again, (again, steps, solves)
    assert runs[False].traffic.subspace_solves < runs[True].traffic.subspace_solves
