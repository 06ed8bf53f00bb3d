"""DsoProblem (dso.problem): DPP re-solves, fixed-import sensitivities, failed solves."""

import numpy as np
import pytest

from dso.network import ieee33bw
from dso.problem import DsoProblem, SolveError
from tests.helpers.feeders import base_inputs, day_price_usd_per_mwh, day_scenario


@pytest.fixture(scope="module")
def day_problem() -> DsoProblem:
    data = ieee33bw()
    return DsoProblem(data, day_scenario(data))


def test_dpp_resolve_changes_dispatch_without_recompiling(day_problem: DsoProblem) -> None:
    assert day_problem.problem.is_dpp()
    price = day_price_usd_per_mwh()
    first = day_problem.solve(price_usd_per_mwh=price)
    compiled = day_problem.problem._cache.param_prog
    assert compiled is not None
    second = day_problem.solve(price_usd_per_mwh=price[::-1] * 1.5)
    assert day_problem.problem._cache.param_prog is compiled  # cached mapping reused, not rebuilt
    assert second.status == "optimal"
    assert np.max(np.abs(second.dispatch.p_import_mw - first.dispatch.p_import_mw)) > 0.05
    np.testing.assert_allclose(second.dispatch.dlmp_usd_per_mwh[0], price[::-1] * 1.5, atol=1e-5)


def test_fixed_import_sensitivity_matches_finite_difference() -> None:
    data = ieee33bw()
    inp = day_scenario(data)
    price = day_price_usd_per_mwh()
    target = DsoProblem(data, inp).solve(price_usd_per_mwh=price).dispatch.p_import_mw
    fixed = DsoProblem(data, inp, mode="fixed_import")
    base = fixed.solve(p_import_target_mw=target)
    sens = base.import_sensitivity_usd_per_mwh
    assert sens is not None and sens.shape == (24,)
    np.testing.assert_allclose(base.dispatch.p_import_mw, target, atol=1e-6)
    # Local cost is smooth in the import only where no generator limit binds (elsewhere the dual
    # is one subgradient of a kink); test there: both MTs strictly inside their box and ramp limits.
    mt = base.dispatch.mt_p_mw
    inner = np.all((mt > fixed.inputs.mt_p_min_mw[:, None] + 0.02)
                   & (mt < fixed.inputs.mt_p_max_mw[:, None] - 0.02), axis=0)
    ramp_slack = fixed.inputs.mt_ramp_mw_per_h[:, None] - np.abs(np.diff(mt, axis=1))  # (M, T-1)
    ramp_free = np.all(ramp_slack > 0.02, axis=0)
    inner &= np.r_[True, ramp_free] & np.r_[ramp_free, True]
    hours = np.flatnonzero(inner)
    assert hours.size >= 3
    # At the price-mode optimum, one more MWh imported saves exactly the price in local cost.
    np.testing.assert_allclose(sens[hours], -price[hours], rtol=1e-3)
    delta_mw = 0.01
    for hour in hours[:: max(1, hours.size // 3)]:
        step = np.zeros(24)
        step[hour] = delta_mw
        up = fixed.solve(p_import_target_mw=target + step).local_cost_usd
        down = fixed.solve(p_import_target_mw=target - step).local_cost_usd
        fd = (up - down) / (2 * delta_mw * inp.dt_h)
        assert sens[hour] == pytest.approx(fd, rel=0.01), f"hour {hour}: dual {sens[hour]} vs FD {fd}"


def test_infeasible_import_target_raises_solve_error() -> None:
    data = ieee33bw()
    problem = DsoProblem(data, base_inputs(data, 2), mode="fixed_import")
    with pytest.raises(SolveError) as err:
        problem.solve(p_import_target_mw=np.array([1.0, 1.0]))  # load is 3.7 MW, no local generation
    assert err.value.status in ("infeasible", "infeasible_inaccurate")


def test_bad_parameter_value_is_rejected() -> None:
    data = ieee33bw()
    problem = DsoProblem(data, base_inputs(data, 2))
    with pytest.raises(ValueError, match="price_usd_per_mwh must be 2 finite values"):
        problem.solve(price_usd_per_mwh=np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="mode='bogus'"):
        DsoProblem(data, base_inputs(data, 2), mode="bogus")  # type: ignore[arg-type]  # an invalid mode, refused at run time


def test_price_mode_optimum_passes_the_kkt_check(day_problem: DsoProblem) -> None:
    """The operator's own solve (solver policy, retries) reaches a KKT point of the compiled conic problem:
    primal feasible, complementary, stationary, at the objective it reports."""
    import warnings

    from tests.helpers.optimality import check_optimality

    day_problem.solve(price_usd_per_mwh=day_price_usd_per_mwh())
    report = check_optimality(day_problem.problem)
    assert report.worst() < 1e-6, report
    # not vacuous: a solve stopped after 4 interior-point iterations reports a value the checker refuses
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        day_problem.problem.solve(solver="CLARABEL", max_iter=4)
    assert check_optimality(day_problem.problem).objective_gap_rel > 1e-3
