"""24-h IEEE 30 dispatch: physics invariants, prices and their decomposition, DPP re-solve."""

import dataclasses

import numpy as np
import pytest

from core.errors import SolveError
from tso.model import TsoInputs
from tso.network import ieee30
from tso.problem import TsoProblem

# typical weekday load shape (per unit of peak), hours 0..23
LOAD_SHAPE = np.array([0.62, 0.58, 0.56, 0.55, 0.56, 0.61, 0.70, 0.80, 0.87, 0.90, 0.92, 0.93,
                       0.92, 0.91, 0.90, 0.90, 0.92, 0.96, 1.00, 0.98, 0.93, 0.85, 0.76, 0.68])
WIND_SHAPE = np.array([0.80, 0.82, 0.85, 0.83, 0.78, 0.70, 0.60, 0.50, 0.42, 0.35, 0.30, 0.28,
                       0.27, 0.28, 0.30, 0.34, 0.40, 0.48, 0.55, 0.62, 0.68, 0.72, 0.76, 0.78])
DSO_BUS_IDX = np.array([6, 20, 29])  # buses 7, 21, 30
DSO_PEAK_MW = 3.715  # IEEE 33-bus feeder peak


def make_inputs(data) -> TsoInputs:
    load = data.load_p_mw[:, None] * LOAD_SHAPE[None, :]
    return TsoInputs(
        dt_h=1.0, load_p_mw=load, wind_bus_idx=np.array([4]), wind_avail_mw=50.0 * WIND_SHAPE[None, :],
        wind_curtail_usd_per_mwh=20.0, dr_max_mw=0.1 * load, dr_cost_usd_per_mwh=200.0,
        dso_bus_idx=DSO_BUS_IDX,
    )


def dso_target(scale: float = 1.0) -> np.ndarray:
    return scale * DSO_PEAK_MW * np.repeat(LOAD_SHAPE[None, :], len(DSO_BUS_IDX), axis=0)


@pytest.fixture(scope="module")
def lossy():
    data = ieee30(cost_scale=10.0)
    prob = TsoProblem(data, make_inputs(data), losses=True)
    return data, prob, prob.solve(dso_target())


@pytest.fixture(scope="module")
def lossless():
    data = ieee30(cost_scale=10.0)
    prob = TsoProblem(data, make_inputs(data), losses=False)
    return data, prob, prob.solve(dso_target())


def test_power_balance_every_hour(lossy):
    data, prob, sol = lossy
    d = sol.dispatch
    supply = d.gen_p_mw.sum(0) + d.wind_p_mw.sum(0) + d.dr_p_mw.sum(0)
    demand = prob.model.inputs.load_p_mw.sum(0) + d.p_dso_mw.sum(0) + d.loss_mw.sum(0)
    np.testing.assert_allclose(supply, demand, atol=1e-5, err_msg="system balance mismatch in MW")
    assert d.transmission_loss_mwh == pytest.approx(d.loss_mw.sum() * 1.0)
    assert 0.1 < d.transmission_loss_mwh / demand.sum() * 100 < 5.0  # loss rate in %


def test_loss_relaxation_tight_and_flows_within_limits(lossy):
    data, _, sol = lossy
    d = sol.dispatch
    ends_price = 0.5 * (d.lmp_usd_per_mwh[data.from_idx] + d.lmp_usd_per_mwh[data.to_idx])
    assert (ends_price > 0).all()
    gap_pu = (d.loss_mw - data.r_pu[:, None] * d.flow_mw**2 / data.base_mva) / data.base_mva
    assert np.abs(gap_pu).max() < 1e-6
    assert (np.abs(d.flow_mw) <= data.f_max_mw[:, None] + 1e-6).all()
    assert (d.gen_p_mw <= data.gen_p_max_mw[:, None] + 1e-6).all()
    assert (np.abs(np.diff(d.gen_p_mw, axis=1)) <= data.gen_ramp_mw_per_h[:, None] + 1e-6).all()
    assert (d.wind_p_mw <= d.wind_avail_mw + 1e-6).all()


def test_objective_is_sum_of_cost_terms(lossy):
    _, _, sol = lossy
    assert sol.objective_usd == pytest.approx(sum(sol.dispatch.cost_usd.values()), rel=1e-9)
    assert set(sol.dispatch.cost_usd) == {"generation", "wind_curtailment", "demand_response"}


def test_boundary_sensitivity_is_dso_bus_lmp(lossy):
    _, _, sol = lossy
    d = sol.dispatch
    np.testing.assert_allclose(sol.boundary_sensitivity_usd_per_mwh, d.price_dso_usd_per_mwh, atol=1e-6)
    np.testing.assert_allclose(d.price_dso_usd_per_mwh, d.lmp_usd_per_mwh[DSO_BUS_IDX])


def test_boundary_sensitivity_matches_finite_difference(lossy):
    _, prob, sol = lossy
    step_mw = 0.5
    target = dso_target()
    target[1, 18] += step_mw
    bumped = prob.solve(target)
    fd = (bumped.objective_usd - sol.objective_usd) / step_mw
    assert fd == pytest.approx(sol.boundary_sensitivity_usd_per_mwh[1, 18], rel=2e-2)
    prob.solve(dso_target())


def test_losses_raise_prices_and_decomposition(lossy, lossless):
    data, _, sol = lossy
    _, _, sol0 = lossless
    d, d0 = sol.dispatch, sol0.dispatch
    assert d.lmp_usd_per_mwh.mean() > d0.lmp_usd_per_mwh.mean() + 0.1
    assert sol.objective_usd > sol0.objective_usd
    assert np.abs(d.lmp_loss_usd_per_mwh).max() > 0.5
    np.testing.assert_array_equal(d0.lmp_loss_usd_per_mwh, 0.0)
    assert d0.transmission_loss_mwh == 0.0
    for x in (d, d0):
        total = x.lmp_energy_usd_per_mwh + x.lmp_loss_usd_per_mwh + x.lmp_congestion_usd_per_mwh
        np.testing.assert_allclose(total, x.lmp_usd_per_mwh, atol=1e-9)
        ref_price = x.lmp_usd_per_mwh[data.ref_idx][None, :].repeat(30, 0)
        np.testing.assert_allclose(x.lmp_energy_usd_per_mwh, ref_price)
    # no line is at its limit here, so the marginal loss factors must explain the whole price spread
    assert (np.abs(d.flow_mw) < data.f_max_mw[:, None] - 1e-3).all()
    assert np.abs(d.lmp_congestion_usd_per_mwh).max() < 1e-3


def test_congestion_component_appears_when_a_line_binds():
    data = ieee30(cost_scale=10.0)
    f_max = data.f_max_mw.copy()
    f_max[0] = 12.0  # bus 1-2 carries up to ~19 MW otherwise
    tight = dataclasses.replace(data, f_max_mw=f_max)
    sol = TsoProblem(tight, make_inputs(tight)).solve(dso_target())
    d = sol.dispatch
    assert np.isclose(np.abs(d.flow_mw[0]), 12.0, atol=1e-4).any()
    assert np.abs(d.lmp_congestion_usd_per_mwh).max() > 1.0


def test_dpp_and_resolve_without_rebuild(lossy):
    _, prob, _ = lossy
    assert prob.problem.is_dpp()
    problem, model = prob.problem, prob.model
    prob.solve(dso_target())
    compiled = prob.problem._cache.param_prog
    assert compiled is not None
    sol = prob.solve(dso_target(1.5))
    assert prob.problem is problem and prob.model is model
    assert prob.problem._cache.param_prog is compiled  # the cached compilation was reused
    np.testing.assert_allclose(sol.dispatch.p_dso_mw, dso_target(1.5), atol=1e-6)
    prob.solve(dso_target())


def test_infeasible_target_raises(lossy):
    data, prob, _ = lossy
    target = dso_target()
    target[0, 12] = data.gen_p_max_mw.sum() + 100.0  # above all capacity
    with pytest.raises(SolveError) as err:
        prob.solve(target)
    assert "infeasible" in str(err.value.status)
    prob.solve(dso_target())


def test_optimum_passes_the_kkt_check(lossy):
    """The TSO's DC OPF with the loss cone, at a fixed boundary: a KKT point of its compiled conic problem."""
    from tests.helpers.optimality import check_optimality

    _, prob, _ = lossy
    prob.solve(dso_target())
    report = check_optimality(prob.problem)
    assert report.worst() < 1e-6, report
