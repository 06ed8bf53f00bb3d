"""Validation of a feeder's DistFlow model: against a pandapower AC power flow at the same injections, and for
the IEEE 123-node feeder against the OpenDSS solution its data came from (``core/data/ieee123_opendss.csv``).

The DSO's own model (``dso.model`` via ``dso.problem.DsoProblem``) is solved for one period at the feeder's
base loads with nothing dispatchable, so the dispatch is the power flow the model predicts.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace

import numpy as np

from core.feeders import IEEE123_OPENDSS
from dso.acpf import ac_check
from dso.model import EvFlexibility, FeederDispatch, FeederInputs
from dso.network import FeederData, ieee123
from dso.problem import DsoProblem

__all__ = ["OpenDssComparison", "PowerFlowCheck", "base_inputs", "distflow_vs_ac", "ieee123_vs_opendss",
           "opendss_reference"]


def base_inputs(data: FeederData, n_periods: int = 1, dt_h: float = 1.0, load_profile: np.ndarray | None = None,
                loss_cost_usd_per_mwh: float = 0.0, v_min_pu: float = 0.95, v_max_pu: float = 1.05,
                v_sub_pu: float = 1.0) -> FeederInputs:
    """Inputs with the base loads scaled by ``load_profile`` (T,) and no PV, microturbine or EV."""
    prof = np.ones(n_periods) if load_profile is None else np.asarray(load_profile, dtype=float)
    z_i, z_f = np.zeros(0, dtype=np.int64), np.zeros(0)
    return FeederInputs(
        dt_h=dt_h, p_load_mw=np.outer(data.p_load_mw, prof), q_load_mvar=np.outer(data.q_load_mvar, prof),
        pv_node_idx=z_i, pv_avail_mw=np.zeros((0, prof.size)), pv_s_mva=z_f, pv_curtail_usd_per_mwh=0.0,
        mt_node_idx=z_i, mt_p_min_mw=z_f, mt_p_max_mw=z_f, mt_q_max_mvar=z_f, mt_ramp_mw_per_h=z_f,
        mt_c1_usd_per_mwh=z_f, mt_c2_usd_per_mw2h=z_f, ev=EvFlexibility.empty(),
        ev_fixed_mw=np.zeros((data.n_nodes, prof.size)), loss_cost_usd_per_mwh=loss_cost_usd_per_mwh,
        v_min_pu=v_min_pu, v_max_pu=v_max_pu, v_sub_pu=v_sub_pu,
    )


def _power_flow(data: FeederData, v_sub_pu: float) -> tuple[FeederDispatch, FeederInputs]:
    """The model's power flow at the base loads (wide voltage limits: the flow, not the limits, is checked)."""
    inp = base_inputs(data, 1, v_min_pu=0.8, v_max_pu=1.2, v_sub_pu=v_sub_pu, loss_cost_usd_per_mwh=10.0)
    return DsoProblem(data, inp).solve(price_usd_per_mwh=np.array([50.0])).dispatch, inp


@dataclass(frozen=True)
class PowerFlowCheck:
    feeder: str
    loss_model_kw: float
    loss_ac_kw: float
    loss_error_rel: float  # |loss_ac - loss_model| / loss_ac
    max_voltage_error_pu: float  # max over nodes of |V_ac - V_model|
    v_min_pu: float  # the model's lowest node voltage
    v_min_node: int  # its 1-based node label
    soc_gap_mva2: float  # the relaxation's largest gap (0 = exact)
    converged: bool


def distflow_vs_ac(data: FeederData, v_sub_pu: float = 1.0) -> PowerFlowCheck:
    """DistFlow vs Newton-Raphson AC (``dso.acpf``) at the feeder's base loads."""
    d, inp = _power_flow(data, v_sub_pu)
    ac = ac_check(data, inp, d)
    v = d.v_pu[:, 0]
    return PowerFlowCheck(
        feeder=data.name, loss_model_kw=float(d.loss_mw[0]) * 1e3, loss_ac_kw=float(ac.loss_ac_mw[0]) * 1e3,
        loss_error_rel=ac.loss_error_rel, max_voltage_error_pu=ac.max_voltage_error_pu, v_min_pu=float(v.min()),
        v_min_node=int(np.argmin(v)) + 1, soc_gap_mva2=float(d.soc_gap_mva2), converged=ac.converged,
    )


def opendss_reference() -> tuple[list[dict[str, float | str]], dict[str, float]]:
    """Rows of ``ieee123_opendss.csv`` (numbers as float) and its closing totals (``total_losses_kw``, ...)."""
    text = IEEE123_OPENDSS.read_text().splitlines()
    rows: list[dict[str, float | str]] = [
        {k: (v if k == "dss_bus" else float(v)) for k, v in r.items()}
        for r in csv.DictReader(line for line in text if not line.startswith("#"))]
    totals = {k: float(v) for k, v in (kv.split("=") for line in text if line.startswith("#")
                                       for kv in line[1:].split())}
    return rows, totals


@dataclass(frozen=True)
class OpenDssComparison:
    loss_model_kw: float
    loss_opendss_kw: float
    loss_error_rel: float  # (loss_model - loss_opendss) / loss_opendss (signed)
    max_voltage_error_pu: float  # max over nodes of |V_model - mean of the node's OpenDSS phase voltages|
    max_voltage_error_node: int
    mean_voltage_error_pu: float
    max_phase_voltage_error_pu: float  # max over nodes and phases of |V_model - V_phase|
    v_min_model_pu: float
    v_min_opendss_pu: float  # lowest phase voltage of the OpenDSS solution


def ieee123_vs_opendss(solved_loads: bool = True) -> OpenDssComparison:
    """The balanced IEEE 123 feeder's DistFlow power flow vs the OpenDSS solution, substation at the head
    regulator's solved tap. ``solved_loads``: at the loads OpenDSS solved (its constant-Z and constant-I loads
    and its capacitors at the solved voltages: the same injections); False: at the feeder's nominal loads."""
    rows, totals = opendss_reference()
    col = {k: np.array([float(r[k]) for r in rows]) for k in rows[0] if k != "dss_bus"}
    data = ieee123()
    if solved_loads:
        data = replace(data, p_load_mw=col["p_load_solved_mw"],
                       q_load_mvar=col["q_load_solved_mvar"] - col["q_capacitor_solved_mvar"])
    d, _ = _power_flow(data, totals["v_sub_pu"])
    v = d.v_pu[:, 0]
    err = np.abs(v - col["v_mean_pu"])
    loss_kw = float(d.loss_mw[0]) * 1e3
    return OpenDssComparison(
        loss_model_kw=loss_kw, loss_opendss_kw=totals["total_losses_kw"],
        loss_error_rel=(loss_kw - totals["total_losses_kw"]) / totals["total_losses_kw"],
        max_voltage_error_pu=float(err.max()), max_voltage_error_node=int(np.argmax(err)) + 1,
        mean_voltage_error_pu=float(err.mean()),
        max_phase_voltage_error_pu=float(np.maximum(np.abs(v - col["v_min_pu"]), np.abs(v - col["v_max_pu"])).max()),
        v_min_model_pu=float(v.min()), v_min_opendss_pu=float(col["v_min_pu"].min()),
    )
