"""Chance-constrained DSO dispatch (dso.uncertainty, dso.chance, study chance-constrained) at reduced size."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from core.case import CASES_DIR, CaseError, parse_case
from dso.chance import ChanceError, check_eps, kappa
from dso.uncertainty import Gmm, UncertaintyError, check_series, fit_uncertainty, forecast_errors

EPS = 0.05


def _small_case(tmp: Path, error_scale: float = 0.1, evs: int = 150) -> Path:
    """ieee33-drjcc with fewer EVs, smaller errors (so that bonferroni is feasible too) and 2-component GMMs."""
    data = yaml.safe_load((CASES_DIR / "ieee33-drjcc.yaml").read_text())
    f = data["feeders"][0]
    f["evs"]["count"] = evs
    f["chance"].update(error_scale=error_scale, gmm_max_components=2, so_samples=200, mc_samples=1000)
    path = tmp / "small-drjcc.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    from orchestrator.studies import chance_constrained
    from orchestrator.studies.contract import write_study

    tmp = tmp_path_factory.mktemp("chance")
    out = tmp / "out"
    args = argparse.Namespace(case=str(_small_case(tmp)), feeder=None, evs=None, eps=EPS, mc_samples=1000,
                              ac_samples=1, scale="", seed=2, out=str(out), no_run_ac_check=True,
                              error_scales="")
    result = chance_constrained.run(args)
    write_study(out, result, result.plots)
    return json.loads((out / "study.json").read_text()), out


def test_study_writes_the_contract(study: tuple[dict, Path]) -> None:
    doc, out = study
    assert doc["study"] == "chance-constrained" and set(doc["scenarios"]) == {"so", "ro", "bonferroni", "oba"}
    for name in ("table.md", "cost_vs_reliability.png", "eps_allocation.png", "gmm_fits.png"):
        assert (out / name).stat().st_size > 0
    for method in doc["scenarios"]:
        summary = json.loads((out / method / "summary.json").read_text())
        assert summary["scenario"] == method and summary["chance"]["cost_usd"] > 0
    oba = doc["scenarios"]["oba"]
    for metric in ("cost_usd", "joint_reliability_mc", "joint_reliability_heldout", "voltage_violation_rate",
                   "flow_violation_rate", "reserve_violation_rate", "reserve_up_mw", "reserve_down_mw", "solve_s",
                   "eps_voltage", "eps_flow", "eps_reserve", "ac_violation_rate"):
        assert oba[metric] is not None, metric
    assert "oba (paper)" in (out / "table.md").read_text()


def test_oba_reliable_and_cheaper_than_bonferroni(study: tuple[dict, Path]) -> None:
    s = study[0]["scenarios"]
    oba, bon, so = s["oba"], s["bonferroni"], s["so"]
    assert oba["joint_reliability_mc"] >= 1 - EPS and oba["joint_reliability_heldout"] >= 1 - EPS
    assert bon["cost_usd"] is not None and oba["cost_usd"] <= bon["cost_usd"]
    assert so["joint_reliability_mc"] < 1 - EPS  # the expected-value constraints hold about half the time
    # the risk budget is used: per hour sum of the groups' shares <= eps, and the split is not the equal one
    split = oba["eps_split"]
    total = np.sum([split[g]["by_hour"] for g in ("voltage", "flow", "reserve")], axis=0)
    assert np.all(total <= EPS * (1 + 1e-6)) and total.max() > 0.9 * EPS
    assert oba["kappa_exact_ok"] is True
    assert oba["ac_linear_voltage_error_pu"] < 0.005


def test_margin_bound_against_exact_allocation() -> None:
    """The oba form (margin u = e^-1/2, budget sum u^-2 <= eps) against the exact optimum of
    min sum sigma_i kappa(e_i) s.t. sum e_i <= eps (scipy on the exact kappa): within the bound's gap, never below."""
    import cvxpy as cp
    from scipy.optimize import brentq

    sigma = np.array([1.0, 0.5, 0.2, 0.05])
    u = cp.Variable(sigma.size)
    prob = cp.Problem(cp.Minimize(sigma @ u), [cp.sum(cp.power(u, -2)) <= EPS])
    prob.solve(solver="CLARABEL")
    ours = float(prob.value)

    # exact optimum by its KKT conditions: sigma_i |kappa'(e_i)| = lam for all i, sum e_i = eps, where
    # |kappa'(e)| = 1 / (2 e^1.5 sqrt(1 - e)) is decreasing on (0, 0.75)
    def alloc(lam: float) -> np.ndarray:
        return np.array([brentq(lambda e, s=s: s / (2 * e**1.5 * np.sqrt(1 - e)) - lam, 1e-15, 0.7) for s in sigma])

    lam_min = float(np.max(sigma / (2 * 0.7**1.5 * np.sqrt(0.3)))) * (1 + 1e-9)
    lam = brentq(lambda lam: alloc(lam).sum() - EPS, lam_min, 1e12)
    exact = float(sigma @ kappa(alloc(lam)))
    gap = 1 / np.sqrt(1 - EPS) - 1
    assert exact <= ours <= exact * (1 + gap) + 1e-6
    e = np.asarray(u.value) ** -2.0
    assert np.all(kappa(e) <= u.value)  # the exact DR constraint holds at the allocated risks
    grid = np.geomspace(1e-8, 0.999, 2000)
    assert np.all(kappa(grid) <= grid**-0.5)


def test_dso_subspace_builds_with_the_chance_option(tmp_path: Path) -> None:
    """The case option turns the chance layer on inside the DSO model every strategy uses (coordination)."""
    from core.case import load_case
    from dso.subspace import DsoSubspace
    from orchestrator.system.embedded import build_system

    feeder = build_system(load_case(_small_case(tmp_path, evs=60))).feeders[0]
    sub = DsoSubspace(feeder.data, feeder.inputs, np.arange(24), ac_check=False)
    assert sub.model.chance is not None and "chance.joint" in sub.model.constraints
    assert "reserve" in sub.model.cost_terms


# -- bad input ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("eps", [0.0, 1.0, -0.1, 1.5])
def test_eps_outside_0_1_refused(eps: float) -> None:
    with pytest.raises(ChanceError, match=r"--eps=.* must be a number in \(0, 1\)"):
        check_eps(eps, "--eps")
    data = yaml.safe_load((CASES_DIR / "ieee33-drjcc.yaml").read_text())
    data["feeders"][0]["chance"]["eps"] = eps
    with pytest.raises(CaseError, match=r"feeders\[0\] 'dso1'.chance.eps=.* must be in \(0, 1\)"):
        parse_case(data)


@pytest.mark.parametrize("text", ["0.1,abc", "0.1,-0.2", "0,0.3", "nan"])
def test_bad_error_scales_refused(text: str) -> None:
    from orchestrator.studies.chance_constrained import parse_scales

    with pytest.raises(CaseError, match="--error-scales: .* is not a positive number"):
        parse_scales(text)
    assert parse_scales("0.05, 0.1,") == [0.05, 0.1]


def test_unknown_chance_field_and_method_refused() -> None:
    data = yaml.safe_load((CASES_DIR / "ieee33-drjcc.yaml").read_text())
    data["feeders"][0]["chance"]["method"] = "magic"
    with pytest.raises(CaseError, match="chance.method='magic' is unknown"):
        parse_case(data)
    data["feeders"][0]["chance"] = {"epsilon": 0.1}
    with pytest.raises(CaseError, match="unknown field.*'epsilon'"):
        parse_case(data)


def test_singular_gmm_covariance_refused() -> None:
    cov = np.array([[[1.0, 1.0], [1.0, 1.0]]])  # rank 1
    with pytest.raises(UncertaintyError, match=r"GMM group 'ev', hour 7, mixture component 0: covariance is singular"):
        Gmm("group 'ev', hour 7", np.array([0, 1]), np.ones(1), np.zeros((1, 2)), cov)
    with pytest.raises(UncertaintyError, match="weights"):
        Gmm("group 'ev', hour 7", np.array([0]), np.array([0.5]), np.zeros((1, 1)), np.ones((1, 1, 1)))


def test_series_with_nan_or_wrong_length_refused() -> None:
    year = np.random.default_rng(0).uniform(size=(60, 24))
    bad = year.copy()
    bad[40, 13] = np.nan
    with pytest.raises(UncertaintyError, match=r"series 'load_x': value nan at day 40, hour 13"):
        forecast_errors("load_x", bad)
    with pytest.raises(UncertaintyError, match=r"series 'pv_x': shape \(1439,\) \(1439 values\) is not whole days"):
        check_series("pv_x", year.reshape(-1)[:-1])
    with pytest.raises(UncertaintyError, match="different lengths"):
        fit_uncertainty({"load_x": year, "pv_x": year[:50]}, {"net_load": ["load_x", "pv_x"]})


def test_gmm_fit_by_bic_and_moments() -> None:
    """A two-mode error sample is fitted with >= 2 components; the mixture moments match the sample's."""
    rng = np.random.default_rng(1)
    days = 400
    year = np.clip(0.5 + 0.01 * rng.standard_normal((days, 24)), 0, None)
    jump = rng.uniform(size=days) < 0.3
    year[jump] += 0.2
    unc = fit_uncertainty({"load_x": year}, {"net_load": ["load_x"]}, max_components=3)
    assert min(g.weights.size for g in unc.gmms["net_load"]) >= 2
    mu, cov = unc.moments()
    train = unc.training()
    assert np.allclose(mu[:, 0], train[:, :, 0].mean(axis=0), atol=0.01)
    assert np.allclose(cov[:, 0, 0], train[:, :, 0].var(axis=0), rtol=0.2)
    assert unc.heldout_days.size and not set(unc.heldout_days) & set(unc.train_days)


# -- the chance layer in the DSO subspace of a T-D coordination ------------------------------------------------


def test_csso_with_chance_constrained_dsos_reaches_centralized(tmp_path: Path) -> None:
    """ieee30-2x33-drjcc cut to one feeder with 20 EVs: centralized carries the same chance layer (reserve cost
    in the objective), csso reaches it within 0.1 %, and the DSO's out-of-sample check of the final dispatch
    meets 1 - eps (Monte Carlo on the GMMs and the held-out days)."""
    from core.case import load_case
    from orchestrator.results.run import summarize
    from orchestrator.strategies import get_strategy
    from orchestrator.strategies.base import RunOptions
    from orchestrator.system.embedded import build_system

    data = yaml.safe_load((CASES_DIR / "ieee30-2x33-drjcc.yaml").read_text())
    data["feeders"] = data["feeders"][:1]
    data["feeders"][0]["evs"]["count"] = 20
    data["feeders"][0]["chance"].update(gmm_max_components=2, mc_samples=1000)
    path = tmp_path / "one-drjcc.yaml"
    path.write_text(yaml.safe_dump(data))
    system = build_system(load_case(path))
    cen = get_strategy("centralized").run(system, RunOptions(progress=False, ac_check=False))
    s_cen = summarize(system.spec, cen)
    assert s_cen["cost_terms_usd"]["dso"]["dso1"]["reserve"] > 0  # the joint problem has the chance layer
    j_star = s_cen["objective_usd"]
    res = get_strategy("csso").run(system, RunOptions(progress=False, ac_check=False, extra={
        "executor": "serial", "best_known_usd": j_star, "csso_stop_gap": 1e-3, "csso_max_rounds": 8}))
    s = summarize(system.spec, res)
    gap = (s["objective_usd"] - j_star) / abs(j_star)
    assert -1e-4 < gap < 1e-3, gap
    assert s["max_boundary_mismatch_mw"] <= 0.1
    for summary in (s_cen, s):
        c = summary["chance"]["dso1"]
        assert c["mc_samples"] == 1000 and c["reserve_up_mw"] > 0
        assert c["joint_reliability_mc"] >= 1 - EPS and c["joint_reliability_heldout"] >= 1 - EPS


def test_smallest_budget_is_where_oba_turns_feasible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """dso.chance.smallest_budget (the study's diagnosis of an infeasible oba): oba is feasible a hair above the
    budget it reports and infeasible below it."""
    from dataclasses import replace

    from core.case import load_case
    from core.errors import SolveError
    from dso.chance import smallest_budget
    from dso.problem import DsoProblem
    from orchestrator.system.embedded import build_system

    feeder = build_system(load_case(_small_case(tmp_path, error_scale=0.3, evs=30))).feeders[0]
    prob = DsoProblem(feeder.data, feeder.inputs, mode="price")
    why = smallest_budget(prob.model)
    z = why["eps_needed"]
    assert 0 < z < 1 and sum(g["risk"] for g in why["groups"].values()) <= z * (1 + 1e-6)
    price = np.full(24, 60.0)
    for factor, feasible in ((1.02, True), (0.9, False)):
        inputs = replace(feeder.inputs, chance=replace(feeder.inputs.chance, eps=factor * z))
        p = DsoProblem(feeder.data, inputs, mode="price")
        if feasible:
            assert p.solve(price_usd_per_mwh=price).objective_usd > 0
        else:
            with pytest.raises(SolveError):
                p.solve(price_usd_per_mwh=price)
    # a numerical failure of that solve is reported as its status, with the solver's message, not raised
    import cvxpy as cp

    import dso.chance

    def failing(problem: object, solver: str) -> str:
        raise cp.error.SolverError("Solver 'CLARABEL' failed: NumericalError")

    monkeypatch.setattr(dso.chance, "solve_problem", failing)
    assert smallest_budget(prob.model) == {"status": "solver_error",
                                           "message": "Solver 'CLARABEL' failed: NumericalError"}
