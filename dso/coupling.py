"""The feeder of the power-transport coupling study: an IEEE 33-bus feeder dispatched at 5-minute resolution
with wind and PV (curtailment penalised), a microturbine (fuel cost), load shedding (penalised), a limited
substation import without export, weak laterals towards the station areas (their current limit is what
makes local wind/PV surplus and local EV load matter), and the EV clusters of the stations as zonotopes.

Profiles: SimBench 2016 hourly year profiles (core/data/PROVENANCE.md), day ``PROFILE_DAY`` hours 8..15,
each hour's mean held over its twelve 5-minute periods. The day is the one of 2016 that maximises
min(mean wind capacity factor, mean PV capacity factor) over 08:00-16:00 (a windy, sunny day: the paper's
case has strong wind at c2 and PV at c3). Loads: Baran & Wu base loads x ``load_lv_semiurb4`` (relative to
its annual peak).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from core.profiles import year_profile
from dso.model import EvFlexibility, FeederInputs, ZonotopeClusters
from dso.network import FeederData, ieee33bw

PROFILE_DAY = 206  # 0-based day of 2016 (2016-07-25)
START_HOUR = 8


@dataclass(frozen=True)
class CouplingFeederSpec:
    """Resources of the study feeder (1-based nodes, MW, $/MWh)."""

    wind: tuple[tuple[int, float], ...] = ((18, 1.0), (33, 1.5))  # (node, capacity MW)
    pv: tuple[tuple[int, float], ...] = ((25, 2.0),)
    mt: tuple[tuple[int, float], ...] = ((7, 0.6),)  # (node, p_max MW)
    mt_usd_per_mwh: float = 90.0
    import_price_usd_per_mwh: float = 50.0
    p_import_max_mw: float = 0.6
    curtail_usd_per_mwh: float = 100.0
    load_shed_usd_per_mwh: float = 400.0
    #: losses priced above the curtailment penalty: otherwise the SOC relaxation "burns" surplus renewable
    #: energy in fictitious losses (w l > P^2 + Q^2) instead of curtailing it (dispatch.soc_gap_mva2 shows it)
    loss_usd_per_mwh: float = 120.0
    #: weak laterals (branch "PARENT-CHILD", current limit kA; 0.02 kA = 0.44 MVA at 12.66 kV): the lines from
    #: the main feeder towards each station's area
    weak_branches: tuple[tuple[str, float], ...] = (("12-13", 0.02), ("27-28", 0.02), ("23-24", 0.02),
                                                    ("2-19", 0.1))
    load_scale: float = 1.5  # x the Baran & Wu base loads (the summer profile day peaks at 0.66 of the year's)


def _hourly_to_steps(name: str, hours: int, steps_per_hour: int) -> np.ndarray:
    day = year_profile(name)[PROFILE_DAY, START_HOUR:START_HOUR + hours]
    return np.repeat(day, steps_per_hour)


def coupling_feeder(station_nodes: np.ndarray, generators: np.ndarray, dt_h: float = 1.0 / 12.0,
                    spec: CouplingFeederSpec | None = None) -> tuple[FeederData, FeederInputs]:
    """Feeder data and inputs for EV clusters at ``station_nodes`` (1-based) whose zonotopes share
    ``generators`` (T, m); the clusters start empty (c = beta = 0) and are set between solves through the
    model's Parameters "ev_zono.c_mw" and "ev_zono.beta_mw"."""
    generators = np.asarray(generators, dtype=float)
    n_periods, n_generators = generators.shape
    spec = spec or CouplingFeederSpec()
    steps = round(1.0 / dt_h)
    hours = int(np.ceil(n_periods / steps))
    if START_HOUR + hours > 24:
        raise ValueError(f"n_periods={n_periods} at dt_h={dt_h} runs past midnight from {START_HOUR}:00")
    data = ieee33bw("ieee33-transport")
    labels = [data.branch_label(b) for b in range(data.n_branches)]
    weak = dict(spec.weak_branches)
    unknown = sorted(set(weak) - set(labels))
    if unknown:
        raise ValueError(f"weak_branches {unknown} are not branches of the feeder (branches are 'PARENT-CHILD')")
    data = replace(data, i_max_ka=np.array([weak.get(lab, np.inf) for lab in labels]))
    load = spec.load_scale * _hourly_to_steps("load_lv_semiurb4", hours, steps)[:n_periods]
    wind = _hourly_to_steps("wind_wp4", hours, steps)[:n_periods]
    pv = _hourly_to_steps("pv_pv3", hours, steps)[:n_periods]
    station_nodes = np.asarray(station_nodes, dtype=np.int64)
    z = ZonotopeClusters(node_idx=station_nodes - 1, generators=generators,
                         c_mw=np.zeros((station_nodes.size, n_periods)),
                         beta_mw=np.zeros((station_nodes.size, n_generators)))
    inputs = FeederInputs(
        dt_h=dt_h,
        p_load_mw=data.p_load_mw[:, None] * load[None, :],
        q_load_mvar=data.q_load_mvar[:, None] * load[None, :],
        pv_node_idx=np.array([n - 1 for n, _ in spec.pv], dtype=np.int64),
        pv_avail_mw=np.array([[c] for _, c in spec.pv]) * pv[None, :],
        pv_s_mva=np.array([1.1 * c for _, c in spec.pv]),
        pv_curtail_usd_per_mwh=spec.curtail_usd_per_mwh,
        mt_node_idx=np.array([n - 1 for n, _ in spec.mt], dtype=np.int64),
        mt_p_min_mw=np.zeros(len(spec.mt)),
        mt_p_max_mw=np.array([p for _, p in spec.mt]),
        mt_q_max_mvar=np.array([0.5 * p for _, p in spec.mt]),
        mt_ramp_mw_per_h=np.array([2.0 * p for _, p in spec.mt]),
        mt_c1_usd_per_mwh=np.full(len(spec.mt), spec.mt_usd_per_mwh),
        mt_c2_usd_per_mw2h=np.zeros(len(spec.mt)),
        ev=EvFlexibility.empty(),
        ev_fixed_mw=np.zeros((data.n_nodes, n_periods)),
        loss_cost_usd_per_mwh=spec.loss_usd_per_mwh,
        wind_node_idx=np.array([n - 1 for n, _ in spec.wind], dtype=np.int64),
        wind_avail_mw=np.array([[c] for _, c in spec.wind]) * wind[None, :],
        wind_s_mva=np.array([1.1 * c for _, c in spec.wind]),
        wind_curtail_usd_per_mwh=spec.curtail_usd_per_mwh,
        ev_zonotope=z,
        load_shed_usd_per_mwh=spec.load_shed_usd_per_mwh,
        p_import_max_mw=spec.p_import_max_mw,
        p_import_min_mw=0.0,
    )
    return data, inputs
