"""The scale network: a 24-h IEEE 118 dispatch with losses solves to 'optimal' (conditioning check)."""

import numpy as np

from tso.model import TsoInputs
from tso.network import ieee118
from tso.problem import TsoProblem


def test_ieee118_day_with_losses_solves_optimal():
    data = ieee118()
    n_t = 24
    shape = 0.6 + 0.4 * np.sin(np.linspace(0.0, np.pi, n_t))
    dso_idx = np.arange(0, data.n_bus, 4)  # 30 feeders
    inputs = TsoInputs(
        dt_h=1.0, load_p_mw=data.load_p_mw[:, None] * shape, wind_bus_idx=np.zeros(0, dtype=int),
        wind_avail_mw=np.zeros((0, n_t)), wind_curtail_usd_per_mwh=0.0, dr_max_mw=np.zeros((data.n_bus, n_t)),
        dr_cost_usd_per_mwh=500.0, dso_bus_idx=dso_idx,
    )
    target = 3.715 * np.repeat(shape[None, :], len(dso_idx), axis=0)
    sol = TsoProblem(data, inputs).solve(target)
    d = sol.dispatch
    assert sol.status == "optimal"
    supply = d.gen_p_mw.sum(0) + d.dr_p_mw.sum(0)
    demand = inputs.load_p_mw.sum(0) + target.sum(0) + d.loss_mw.sum(0)
    np.testing.assert_allclose(supply, demand, atol=1e-4)
    np.testing.assert_allclose(sol.boundary_sensitivity_usd_per_mwh, d.price_dso_usd_per_mwh, atol=1e-5)
    gap_pu = (d.loss_mw - data.r_pu[:, None] * d.flow_mw**2 / data.base_mva) / data.base_mva
    assert np.abs(gap_pu).max() < 1e-6
    assert np.abs(d.lmp_congestion_usd_per_mwh).max() < 1e-2  # limits are 9900 MVA: nothing binds
