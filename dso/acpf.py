"""AC power-flow check of a DistFlow dispatch with pandapower (Newton-Raphson, one run per period)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dso.model import S_BASE_MVA, FeederDispatch, FeederInputs
from dso.network import FeederData

__all__ = ["AcCheck", "PowerFlow", "ac_check", "node_net_withdrawal", "power_flow"]


@dataclass(frozen=True)
class AcCheck:
    max_voltage_error_pu: float  # max over nodes and periods of |V_ac - V_model|
    loss_error_rel: float  # |loss_ac - loss_model| / loss_ac, energy over the day
    voltage_error_pu: np.ndarray  # (T,) max over nodes per period
    loss_ac_mw: np.ndarray  # (T,)
    loss_model_mw: np.ndarray  # (T,)
    p_import_ac_mw: np.ndarray  # (T,) slack injection in the AC solution
    v_ac_pu: np.ndarray  # (N,T)
    converged: bool  # every period's power flow converged


def node_net_withdrawal(inputs: FeederInputs, dispatch: FeederDispatch) -> tuple[np.ndarray, np.ndarray]:
    """(N,T) net withdrawal: P = load + EV - PV - wind - MT [MW], Q = load + EV q - PV q - wind q - MT q [MVAr]."""
    p = inputs.p_load_mw + dispatch.ev_p_mw - dispatch.p_gen_mw
    q = inputs.q_load_mvar - dispatch.q_gen_mvar
    if dispatch.ev_q_mvar.size:
        q = q + dispatch.ev_q_mvar
    return p, q


@dataclass(frozen=True)
class PowerFlow:
    """pandapower Newton-Raphson results per period (NaN columns where a period did not converge)."""

    v_pu: np.ndarray  # (N,T)
    i_ka: np.ndarray  # (B,T) branch current magnitude (from end)
    loss_mw: np.ndarray  # (T,)
    p_import_mw: np.ndarray  # (T,) slack injection
    converged: np.ndarray  # (T,) bool


def power_flow(data: FeederData, v_sub_pu: float, p_wd_mw: np.ndarray, q_wd_mvar: np.ndarray) -> PowerFlow:
    """AC power flow of the feeder at (N,T) net withdrawals, one pandapower.runpp per column."""
    import pandapower as pp

    n, t = p_wd_mw.shape
    net = pp.create_empty_network(name=data.name, sn_mva=1.0)
    buses = [pp.create_bus(net, vn_kv=data.base_kv, name=str(k + 1)) for k in range(n)]
    pp.create_ext_grid(net, bus=buses[0], vm_pu=v_sub_pu, va_degree=0.0)
    # each branch's pandapower element: ("line", index) or ("trafo", index) for a fixed tap
    elements: list[tuple[str, int]] = []
    for b in range(data.n_branches):
        fb, tb = buses[int(data.from_idx[b])], buses[int(data.to_idx[b])]
        tap = float(data.taps[b])
        if tap == 1.0:
            elements.append(("line", pp.create_line_from_parameters(
                net, from_bus=fb, to_bus=tb, length_km=1.0, r_ohm_per_km=float(data.r_ohm[b]),
                x_ohm_per_km=float(data.x_ohm[b]), c_nf_per_km=0.0, max_i_ka=1e5, name=data.branch_label(b),
            )))
        else:
            # a fixed tap: pandapower's transformer, ratio vn_lv/vn_hv = tap, series impedance on the LV
            # (receiving) side in ohm = vk_percent/100 * vn_lv_kv^2 / sn_mva, no magnetising branch
            vn_lv = data.base_kv * tap
            z_pct = 100.0 * S_BASE_MVA / vn_lv**2
            elements.append(("trafo", pp.create_transformer_from_parameters(
                net, hv_bus=fb, lv_bus=tb, sn_mva=S_BASE_MVA, vn_hv_kv=data.base_kv, vn_lv_kv=vn_lv,
                vkr_percent=float(data.r_ohm[b]) * z_pct,
                vk_percent=float(np.hypot(data.r_ohm[b], data.x_ohm[b])) * z_pct,
                pfe_kw=0.0, i0_percent=0.0, shift_degree=0.0, name=data.branch_label(b),
            )))
    load_idx = [pp.create_load(net, bus=buses[k], p_mw=0.0, q_mvar=0.0) for k in range(n)]
    v_ac = np.full((n, t), np.nan)
    i_ka = np.full((data.n_branches, t), np.nan)
    loss_ac = np.full(t, np.nan)
    p_imp = np.full(t, np.nan)
    converged = np.zeros(t, dtype=bool)
    for h in range(t):
        net.load.loc[load_idx, "p_mw"] = p_wd_mw[:, h]
        net.load.loc[load_idx, "q_mvar"] = q_wd_mvar[:, h]
        try:
            pp.runpp(net, algorithm="nr", calculate_voltage_angles=True, init="flat", tolerance_mva=1e-10,
                     numba=False)
        except pp.LoadflowNotConverged:
            continue
        converged[h] = True
        v_ac[:, h] = net.res_bus.vm_pu.loc[buses].to_numpy()
        i_ka[:, h] = [float(net.res_line.i_from_ka.at[i]) if kind == "line" else float(net.res_trafo.i_hv_ka.at[i])
                      for kind, i in elements]
        loss_ac[h] = float(net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum())
        p_imp[h] = float(net.res_ext_grid.p_mw.iloc[0])
    return PowerFlow(v_pu=v_ac, i_ka=i_ka, loss_mw=loss_ac, p_import_mw=p_imp, converged=converged)


def ac_check(data: FeederData, inputs: FeederInputs, dispatch: FeederDispatch) -> AcCheck:
    """Run pandapower.runpp per period at the dispatched injections and compare with the model."""
    p_wd, q_wd = node_net_withdrawal(inputs, dispatch)
    pf = power_flow(data, inputs.v_sub_pu, p_wd, q_wd)
    v_ac, loss_ac, p_imp = pf.v_pu, pf.loss_mw, pf.p_import_mw
    v_err = np.abs(v_ac - dispatch.v_pu).max(axis=0)
    loss_model = dispatch.loss_mw
    e_ac = float(np.sum(loss_ac))
    rel = abs(e_ac - float(np.sum(loss_model))) / e_ac if e_ac > 0 else float("nan")
    return AcCheck(
        max_voltage_error_pu=float(np.max(v_err)),
        loss_error_rel=rel,
        voltage_error_pu=v_err,
        loss_ac_mw=loss_ac,
        loss_model_mw=loss_model,
        p_import_ac_mw=p_imp,
        v_ac_pu=v_ac,
        converged=bool(pf.converged.all()),
    )
