"""Golden objectives and prices on 2- and 3-bus systems computed by hand."""

import math

import numpy as np
import pytest

from tso.model import TsoInputs
from tso.network import TransmissionData
from tso.problem import TsoProblem

TOL_USD = 1e-4  # relative, on objectives
TOL_PRICE = 1e-4  # $/MWh


def triangle(f13_mw: float = np.inf, c1=(10.0, 20.0), c2=(0.0, 0.0), ramp_mw_per_h=(100.0, 100.0)):
    """Buses 1-2-3, lines 1-2, 2-3, 1-3 with x = 0.1 p.u., lossless; gens at buses 1 and 2."""
    return TransmissionData(
        name="tri", base_mva=100.0, bus_labels=np.array([1, 2, 3]),
        from_idx=np.array([0, 1, 0]), to_idx=np.array([1, 2, 2]),
        x_pu=np.full(3, 0.1), r_pu=np.zeros(3), f_max_mw=np.array([np.inf, np.inf, f13_mw]),
        gen_idx=np.array([0, 1]), gen_p_min_mw=np.zeros(2), gen_p_max_mw=np.full(2, 100.0),
        gen_ramp_mw_per_h=np.array(ramp_mw_per_h), gen_c1_usd_per_mwh=np.array(c1),
        gen_c2_usd_per_mw2h=np.array(c2), load_p_mw=np.zeros(3),
    )


def inputs(n_bus: int, n_t: int, dso_bus: int, load_p_mw: np.ndarray | None = None) -> TsoInputs:
    return TsoInputs(
        dt_h=1.0,
        load_p_mw=np.zeros((n_bus, n_t)) if load_p_mw is None else load_p_mw,
        wind_bus_idx=np.zeros(0, dtype=int), wind_avail_mw=np.zeros((0, n_t)), wind_curtail_usd_per_mwh=0.0,
        dr_max_mw=np.zeros((n_bus, n_t)), dr_cost_usd_per_mwh=1000.0, dso_bus_idx=np.array([dso_bus]),
    )


def test_merit_order_one_period():
    sol = TsoProblem(triangle(), inputs(3, 1, 2)).solve(np.array([[60.0]]))
    assert sol.objective_usd == pytest.approx(600.0, rel=TOL_USD)  # 60 MW from the 10 $/MWh unit
    np.testing.assert_allclose(sol.dispatch.gen_p_mw[:, 0], [60.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(sol.dispatch.lmp_usd_per_mwh[:, 0], 10.0, atol=TOL_PRICE)


def test_equal_marginal_cost_quadratic():
    # 10 + 0.2 a = 14 + 0.2 b, a + b = 100  ->  a = 60, b = 40, lambda = 22 $/MWh
    data = triangle(c1=(10.0, 14.0), c2=(0.1, 0.1))
    sol = TsoProblem(data, inputs(3, 1, 2)).solve(np.array([[100.0]]))
    assert sol.objective_usd == pytest.approx(10 * 60 + 0.1 * 60**2 + 14 * 40 + 0.1 * 40**2, rel=TOL_USD)
    np.testing.assert_allclose(sol.dispatch.gen_p_mw[:, 0], [60.0, 40.0], atol=1e-4)
    np.testing.assert_allclose(sol.dispatch.lmp_usd_per_mwh[:, 0], 22.0, atol=TOL_PRICE)


def test_binding_line_splits_prices():
    # line 1-3 carries 2/3 a + 1/3 b <= 30 with a + b = 60 -> a = b = 30; cost 900 $.
    # one more MW at bus 3 needs da = -1, db = +2 -> lambda_3 = 30; lambda_1 = 10, lambda_2 = 20.
    sol = TsoProblem(triangle(f13_mw=30.0), inputs(3, 1, 2)).solve(np.array([[60.0]]))
    d = sol.dispatch
    assert sol.objective_usd == pytest.approx(900.0, rel=TOL_USD)
    np.testing.assert_allclose(d.flow_mw[2, 0], 30.0, atol=1e-4)
    np.testing.assert_allclose(d.lmp_usd_per_mwh[:, 0], [10.0, 20.0, 30.0], atol=TOL_PRICE)
    np.testing.assert_allclose(d.lmp_congestion_usd_per_mwh[:, 0], [0.0, 10.0, 20.0], atol=TOL_PRICE)
    np.testing.assert_allclose(d.lmp_loss_usd_per_mwh, 0.0, atol=1e-12)
    np.testing.assert_allclose(sol.boundary_sensitivity_usd_per_mwh, [[30.0]], atol=TOL_PRICE)


def test_ramp_limit_two_periods():
    # load 20 then 60 MW at bus 3; the cheap unit ramps at most 20 MW/h: a = (20, 40), b = (0, 20).
    load = np.zeros((3, 2))
    load[2] = [20.0, 60.0]
    prob = TsoProblem(triangle(ramp_mw_per_h=(20.0, 100.0)), inputs(3, 2, 2, load))
    sol = prob.solve(np.zeros((1, 2)))
    assert sol.objective_usd == pytest.approx(10 * 20 + 10 * 40 + 20 * 20, rel=TOL_USD)
    np.testing.assert_allclose(sol.dispatch.gen_p_mw, [[20.0, 40.0], [0.0, 20.0]], atol=1e-4)
    # a MW more in hour 1 lets the cheap unit reach 41 MW in hour 2: +10 - 20 + 10 = 0 $
    np.testing.assert_allclose(sol.dispatch.lmp_usd_per_mwh[2], [0.0, 20.0], atol=TOL_PRICE)


def test_two_bus_losses_closed_form():
    # generator at bus 1 (10 $/MWh) serves P at bus 2 over r = 0.05 p.u.; half the loss is drawn at bus 2:
    # f = P + k f^2 / 2 with k = r / S  ->  f = (1 - sqrt(1 - 2 k P)) / k, gen = P + k f^2
    r, s, p = 0.05, 100.0, 80.0
    data = TransmissionData(
        name="two", base_mva=s, bus_labels=np.array([1, 2]), from_idx=np.array([0]), to_idx=np.array([1]),
        x_pu=np.array([0.1]), r_pu=np.array([r]), f_max_mw=np.array([np.inf]), gen_idx=np.array([0]),
        gen_p_min_mw=np.zeros(1), gen_p_max_mw=np.array([200.0]), gen_ramp_mw_per_h=np.array([200.0]),
        gen_c1_usd_per_mwh=np.array([10.0]), gen_c2_usd_per_mw2h=np.zeros(1), load_p_mw=np.zeros(2),
    )
    k = r / s
    f = (1 - math.sqrt(1 - 2 * k * p)) / k
    loss = k * f**2
    lmp2 = 10.0 * (1 + 2 * k * f / (1 - k * f))  # d gen / d P = 1 + 2 k f df/dP, df/dP = 1 / (1 - k f)
    sol = TsoProblem(data, inputs(2, 1, 1)).solve(np.array([[p]]))
    d = sol.dispatch
    assert sol.objective_usd == pytest.approx(10.0 * (p + loss), rel=1e-6)
    assert d.loss_mw[0, 0] == pytest.approx(loss, rel=1e-5)
    assert d.flow_mw[0, 0] == pytest.approx(f, rel=1e-6)
    np.testing.assert_allclose(d.lmp_usd_per_mwh[:, 0], [10.0, lmp2], atol=TOL_PRICE)
    np.testing.assert_allclose(d.lmp_loss_usd_per_mwh[:, 0], [0.0, lmp2 - 10.0], atol=TOL_PRICE)
    np.testing.assert_allclose(d.lmp_congestion_usd_per_mwh, 0.0, atol=TOL_PRICE)
