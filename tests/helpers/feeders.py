"""Feeder inputs for unit tests of the DSO model (no PV, microturbines or EVs unless a test adds them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dso.model import EvFlexibility, FeederInputs
from dso.network import FeederData
from dso.validation import base_inputs as base_inputs  # inputs without DER, shared with the product's checks

PROFILES = Path(__file__).resolve().parents[2] / "core" / "data" / "profiles_simbench.csv"


def hourly_profile(column: str) -> np.ndarray:
    """(24,) hourly mean of a 15-min SimBench profile, normalised to a peak of 1."""
    arr = np.genfromtxt(PROFILES, delimiter=",", names=True)
    v = arr[column][:96].reshape(24, 4).mean(axis=1)
    return v / v.max()


def day_scenario(data: FeederData, loss_cost_usd_per_mwh: float = 10.0) -> FeederInputs:
    """24 h on the 33-bus feeder: SimBench load/PV shapes, 4 PV, 2 MT, 4 EV envelopes (2 with V2G)."""
    t = 24
    load, pv = hourly_profile("load_mv_urban"), hourly_profile("pv_pv3")

    def env(node: int, start: int, dwell: int, p_ch: float, p_dis: float, need: float, cap: float) -> tuple:
        e_min = np.r_[np.zeros(dwell - 1), need]
        return node, start, dwell, np.full(dwell, p_ch), np.full(dwell, p_dis), e_min, np.full(dwell, cap)

    envs = [env(5, 18, 13, 0.15, 0.0, 0.8, 1.2), env(14, 8, 9, 0.10, 0.10, 0.4, 0.6),
            env(29, 17, 10, 0.2, 0.2, 0.5, 1.5), env(20, 0, 24, 0.1, 0.0, 1.0, 1.5)]
    ev = EvFlexibility(
        node_idx=np.array([e[0] for e in envs]), start=np.array([e[1] for e in envs]),
        dwell=np.array([e[2] for e in envs]),
        p_ch_max_mw=np.concatenate([e[3] for e in envs]), p_dis_max_mw=np.concatenate([e[4] for e in envs]),
        e_min_mwh=np.concatenate([e[5] for e in envs]), e_max_mwh=np.concatenate([e[6] for e in envs]),
        eta_ch=np.full(len(envs), 0.95), eta_dis=np.full(len(envs), 0.95))
    ev_fixed = np.zeros((data.n_nodes, t))
    ev_fixed[[8, 23], 17:22] = 0.05
    return FeederInputs(
        dt_h=1.0, p_load_mw=np.outer(data.p_load_mw, load), q_load_mvar=np.outer(data.q_load_mvar, load),
        pv_node_idx=np.array([10, 18, 25, 33]) - 1, pv_avail_mw=np.outer(np.full(4, 0.6), pv),
        pv_s_mva=np.full(4, 0.7), pv_curtail_usd_per_mwh=30.0,
        mt_node_idx=np.array([6, 29]), mt_p_min_mw=np.array([0.0, 0.0]), mt_p_max_mw=np.array([0.5, 0.4]),
        mt_q_max_mvar=np.array([0.3, 0.3]), mt_ramp_mw_per_h=np.array([0.2, 0.2]),
        mt_c1_usd_per_mwh=np.array([40.0, 45.0]), mt_c2_usd_per_mw2h=np.array([20.0, 30.0]),
        ev=ev, ev_fixed_mw=ev_fixed, loss_cost_usd_per_mwh=loss_cost_usd_per_mwh)


def day_price_usd_per_mwh() -> np.ndarray:
    return 30.0 + 50.0 * hourly_profile("load_mv_urban")
