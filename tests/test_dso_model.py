"""DistFlow SOC model (dso.model, dso.acpf): published case, golden objective, physics invariants."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from dso.acpf import ac_check
from dso.model import EvFlexibility, FeederInputError, FeederInputs, build_feeder_model
from dso.network import feeder_from_tables, ieee33bw
from dso.problem import DsoProblem
from tests.helpers.feeders import base_inputs, day_price_usd_per_mwh, day_scenario, hourly_profile


def test_baran_wu_base_case_losses_and_voltage() -> None:
    """Baran & Wu 1989 (DOI 10.1109/61.25627): 202.7 kW losses, V_min 0.9131 p.u. at node 18."""
    data = ieee33bw()
    problem = DsoProblem(data, base_inputs(data, 1, v_min_pu=0.9))
    sol = problem.solve(price_usd_per_mwh=np.array([50.0]))
    d = sol.dispatch
    assert d.loss_mw[0] * 1e3 == pytest.approx(202.7, abs=0.5)
    assert int(np.argmin(d.v_pu[:, 0])) + 1 == 18
    assert d.v_pu.min() == pytest.approx(0.9131, abs=1e-3)
    assert d.p_import_mw[0] == pytest.approx(3.715 + d.loss_mw[0], abs=1e-6)
    assert abs(d.soc_gap_mva2) < 1e-5
    # DLMP: the price at the substation, rising downstream because of losses.
    assert d.dlmp_usd_per_mwh[0, 0] == pytest.approx(50.0, abs=1e-6)
    assert d.dlmp_usd_per_mwh[17, 0] > d.dlmp_usd_per_mwh[1, 0] > 50.0
    # Marginal loss check by finite difference: 10 kW more load at node 18.
    inp2 = base_inputs(data, 1, v_min_pu=0.9)
    inp2.p_load_mw[17, 0] += 0.01
    sol2 = DsoProblem(data, inp2).solve(price_usd_per_mwh=np.array([50.0]))
    fd = (sol2.objective_usd - sol.objective_usd) / 0.01
    assert d.dlmp_usd_per_mwh[17, 0] == pytest.approx(fd, rel=5e-3)


def _sweep(z_pu: np.ndarray, s_load_pu: np.ndarray) -> tuple[complex, float]:
    """Backward/forward sweep on a path feeder 1-2-...; returns (S_import p.u., losses p.u.)."""
    n = s_load_pu.size
    v = np.ones(n, dtype=complex)
    for _ in range(200):
        i_node = np.conj(s_load_pu / v)
        i_branch = np.cumsum(i_node[::-1])[::-1][1:]  # branch k feeds nodes k+1..n-1
        v_new = np.concatenate([[1.0], 1.0 - np.cumsum(z_pu * i_branch)])
        if np.max(np.abs(v_new - v)) < 1e-14:
            v = v_new
            break
        v = v_new
    return v[0] * np.conj(i_branch[0]), float(np.sum(z_pu.real * np.abs(i_branch) ** 2))


def test_golden_objective_three_node_feeder() -> None:
    """3 nodes, 2 branches, T=2, one MT at node 3: optimum vs. an AC sweep + scalar minimisation."""
    base_kv = 12.66
    branches = [{"from_node": 1, "to_node": 2, "r_ohm": 3.0, "x_ohm": 2.0},
                {"from_node": 2, "to_node": 3, "r_ohm": 4.0, "x_ohm": 3.0}]
    data = feeder_from_tables("tiny", base_kv, branches, [{"node": 2, "p_mw": 0.8, "q_mvar": 0.3},
                                                          {"node": 3, "p_mw": 1.2, "q_mvar": 0.5}])
    prof = np.array([1.0, 0.6])
    price, c1, c2, loss_cost = np.array([40.0, 70.0]), 45.0, 15.0, 5.0
    inp = base_inputs(data, 2, dt_h=1.0, load_profile=prof, loss_cost_usd_per_mwh=loss_cost, v_min_pu=0.8)
    inp = FeederInputs(**{**inp.__dict__, "mt_node_idx": np.array([2]), "mt_p_min_mw": np.array([0.0]),
                          "mt_p_max_mw": np.array([2.0]), "mt_q_max_mvar": np.array([0.0]),
                          "mt_ramp_mw_per_h": np.array([10.0]), "mt_c1_usd_per_mwh": np.array([c1]),
                          "mt_c2_usd_per_mw2h": np.array([c2])})
    sol = DsoProblem(data, inp).solve(price_usd_per_mwh=price)

    z_pu = (data.r_ohm + 1j * data.x_ohm) / base_kv**2
    expected, mt_opt = 0.0, []
    for t in range(2):
        def cost(p_mt: float, t: int = t) -> float:
            s_load = np.array([0.0, 0.8 + 0.3j, 1.2 + 0.5j]) * prof[t] - np.array([0, 0, p_mt])
            s_imp, loss = _sweep(z_pu, s_load)
            return price[t] * s_imp.real + loss_cost * loss + c1 * p_mt + c2 * p_mt**2

        res = minimize_scalar(cost, bounds=(0.0, 2.0), method="bounded", options={"xatol": 1e-9})
        expected += res.fun
        mt_opt.append(res.x)
    assert sol.objective_usd == pytest.approx(expected, rel=1e-6)
    assert sol.dispatch.mt_p_mw[0] == pytest.approx(mt_opt, abs=1e-4)
    assert 0.0 < mt_opt[0] < mt_opt[1] < 2.0  # interior optima: the test exercises the trade-off


def test_day_invariants_and_ac_check() -> None:
    data = ieee33bw()
    inp = day_scenario(data)
    price = day_price_usd_per_mwh()
    sol = DsoProblem(data, inp).solve(price_usd_per_mwh=price)
    d = sol.dispatch
    # Power balance per hour [MW]: import + generation = load + EV + losses.
    gap_mw = (d.p_import_mw + d.p_gen_mw.sum(axis=0)
              - inp.p_load_mw.sum(axis=0) - d.ev_p_mw.sum(axis=0) - d.loss_mw)
    assert np.max(np.abs(gap_mw)) < 1e-5, f"balance error {np.max(np.abs(gap_mw))} MW"
    q_gap = d.q_import_mvar + d.q_gen_mvar.sum(axis=0) - inp.q_load_mvar.sum(axis=0) - (
        (data.x_ohm / data.base_kv**2) @ (d.i_branch_ka * np.sqrt(3) * data.base_kv) ** 2)
    assert np.max(np.abs(q_gap)) < 1e-5
    assert d.soc_gap_mva2 < 1e-5
    assert np.all(d.v_pu[1:] >= 0.95 - 1e-6) and np.all(d.v_pu <= 1.05 + 1e-6)
    # EV envelopes respected and energy need met.
    ev = inp.ev
    stored = ev.cumsum_matrix() @ (ev.eta_ch[ev.envelope_of_window] * d.ev_p_ch_mw
                                   - d.ev_p_dis_mw / ev.eta_dis[ev.envelope_of_window])
    assert np.all(stored >= ev.e_min_mwh - 1e-6) and np.all(stored <= ev.e_max_mwh + 1e-6)
    assert d.ev_p_mw.sum() - inp.ev_fixed_mw.sum() == pytest.approx(
        (d.ev_p_ch_mw - d.ev_p_dis_mw).sum(), abs=1e-9)
    assert np.all(d.mt_p_mw <= inp.mt_p_max_mw[:, None] + 1e-6)
    assert np.all(np.abs(np.diff(d.mt_p_mw, axis=1)) <= inp.mt_ramp_mw_per_h[:, None] + 1e-6)
    assert np.all(d.pv_p_mw**2 + d.pv_q_mvar**2 <= inp.pv_s_mva[:, None] ** 2 + 1e-6)
    # Costs are consistent with the dispatch.
    assert d.cost_usd["loss"] == pytest.approx(10.0 * d.loss_mw.sum(), rel=1e-6)
    assert sol.objective_usd == pytest.approx(sol.local_cost_usd + price @ d.p_import_mw, rel=1e-6)
    np.testing.assert_allclose(d.dlmp_usd_per_mwh[0], price, atol=1e-5)
    # AC power flow at the dispatched injections.
    ac = ac_check(data, inp, d)
    assert ac.converged
    assert ac.loss_error_rel <= 0.01
    assert ac.max_voltage_error_pu <= 0.002
    np.testing.assert_allclose(ac.p_import_ac_mw, d.p_import_mw, atol=1e-3)


def test_model_builds_without_problem_and_names_constraints() -> None:
    data = ieee33bw()
    model = build_feeder_model(data, day_scenario(data))
    names = ("balance.p", "balance.q", "soc.branch", "voltage.drop", "pv.capability", "ev.e_min", "mt.ramp")
    for name in names:
        assert name in model.constraints
    assert model.constraints["balance.p"].shape == (33, 24)
    assert set(model.cost_terms) == {"mt_fuel", "pv_curtailment", "loss"}
    assert model.p_import_mw.shape == (24,)


def test_bad_inputs_name_the_element() -> None:
    data = ieee33bw()
    inp = base_inputs(data, 2)
    with pytest.raises(FeederInputError, match=r"q_load_mvar has shape \(33, 3\)"):
        FeederInputs(**{**inp.__dict__, "q_load_mvar": np.zeros((33, 3))})
    with pytest.raises(FeederInputError, match=r"mt_node_idx\[0\]=40"):
        FeederInputs(**{**inp.__dict__, "mt_node_idx": np.array([40]), "mt_p_min_mw": np.zeros(1),
                        "mt_p_max_mw": np.ones(1), "mt_q_max_mvar": np.ones(1),
                        "mt_ramp_mw_per_h": np.ones(1), "mt_c1_usd_per_mwh": np.ones(1),
                        "mt_c2_usd_per_mw2h": np.ones(1)})
    with pytest.raises(FeederInputError, match=r"EV envelope 0: e_min_mwh=2.0 > e_max_mwh=1.0"):
        EvFlexibility(np.array([3]), np.array([0]), np.array([1]), np.ones(1), np.zeros(1), np.array([2.0]),
                      np.array([1.0]), np.ones(1), np.ones(1))


def test_gap_and_ac_check_flag_an_inexact_relaxation() -> None:
    """Price + loss cost < 0 makes fictitious losses (w l > P^2 + Q^2) profitable up to the current limit."""
    data = ieee33bw(i_max_ka=0.4)
    inp = day_scenario(data, loss_cost_usd_per_mwh=10.0)
    d = DsoProblem(data, inp).solve(price_usd_per_mwh=np.full(24, -20.0)).dispatch
    assert d.soc_gap_mva2 > 1e-2
    ac = ac_check(data, inp, d)
    assert ac.loss_error_rel > 0.5


def test_two_feeders_in_one_joint_problem_match_standalone() -> None:
    import cvxpy as cp

    price = day_price_usd_per_mwh()
    models, alone = [], []
    for name in ("dso1", "dso2"):
        data = ieee33bw(name)
        inp = day_scenario(data)
        models.append(build_feeder_model(data, inp))
        alone.append(DsoProblem(data, inp).solve(price_usd_per_mwh=price))
    objective = sum(m.local_cost_usd() + price @ m.p_import_mw for m in models)
    constraints = [c for m in models for c in m.constraints.values()]
    cp.Problem(cp.Minimize(objective), constraints).solve(solver="CLARABEL")
    for m, ref in zip(models, alone, strict=True):
        d = m.extract()
        np.testing.assert_allclose(d.p_import_mw, ref.dispatch.p_import_mw, atol=1e-4)
        np.testing.assert_allclose(d.dlmp_usd_per_mwh, ref.dispatch.dlmp_usd_per_mwh, atol=1e-3)


def test_ev_windows_wrap_around_midnight() -> None:
    data = ieee33bw()
    inp = day_scenario(data)
    d = DsoProblem(data, inp).solve(price_usd_per_mwh=day_price_usd_per_mwh()).dispatch
    ev = inp.ev
    periods = ev.period_of_window(24)
    first = ev.envelope_of_window == 0  # node index 5, plugged in 18:00..06:59 (dwell 13)
    assert sorted(periods[first].tolist()) == list(range(0, 7)) + list(range(18, 24))
    outside = np.setdiff1d(np.arange(24), periods[first])
    np.testing.assert_allclose(d.ev_p_mw[5, outside], 0.0, atol=1e-9)
    assert d.ev_p_mw[5].sum() * inp.dt_h * 0.95 >= 0.8 - 1e-6  # energy need met inside the window


def test_wind_behind_an_inverter_is_dispatched_and_ac_checked() -> None:
    """Feeder wind as inverter DER like PV: used up to its availability, reactive power within its rating,
    curtailment priced, counted in p_gen_mw (so the AC check sees it), and the relaxation stays exact."""
    from dataclasses import replace

    data = ieee33bw()
    base = day_scenario(data)
    wind = np.outer([1.0, 0.8], 0.2 + 0.6 * hourly_profile("load_mv_urban")[::-1])
    inputs = replace(base, wind_node_idx=np.array([17, 32]), wind_avail_mw=wind, wind_s_mva=np.array([1.1, 0.9]),
                     wind_curtail_usd_per_mwh=35.0)
    problem = DsoProblem(data, inputs)
    d = problem.solve(price_usd_per_mwh=day_price_usd_per_mwh()).dispatch
    assert d.wind_p_mw.shape == wind.shape and np.all(d.wind_p_mw <= wind + 1e-6)
    assert np.all(np.hypot(d.wind_p_mw, d.wind_q_mvar) <= np.array([[1.1], [0.9]]) + 1e-6)
    assert d.wind_p_mw.sum() > 0.9 * wind.sum()  # priced above the import, wind is used
    curtailed = float(np.sum(wind - d.wind_p_mw))
    assert d.cost_usd["wind_curtailment"] == pytest.approx(35.0 * curtailed, abs=1e-6)
    assert d.p_gen_mw[17].sum() >= d.wind_p_mw[0].sum() - 1e-9  # node 18 carries its turbine's output
    assert d.soc_gap_mva2 < 1e-4
    chk = ac_check(data, inputs, d)
    assert chk.converged and chk.max_voltage_error_pu <= 0.002 and chk.loss_error_rel <= 0.01
