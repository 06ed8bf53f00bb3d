"""A DSO's own inputs from a case: its feeder, loads, PV and microturbines, and how it reads the EV
envelopes its aggregator sends (what its process holds; the EVs themselves stay with the aggregator)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import cache
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path

from core import windows
from core.case import CaseError, CaseSpec, FeederSpec
from core.profiles import profile, year_profile
from dso.chance import ChanceError, ChanceInputs
from dso.model import EvFlexibility, FeederInputs
from dso.network import FeederData, FeederDataError, feeder_from_file, feeder_from_tables, ieee33bw, ieee123
from dso.uncertainty import UncertaintyModel, fit_uncertainty


def feeder_data(spec: CaseSpec, feeder_id: str) -> FeederData:
    """The feeder's network (impedances, loads, thermal limits); data errors become ``CaseError``."""
    f = spec.feeder(feeder_id)
    try:
        return _feeder_data(f)
    except FeederDataError as exc:
        raise CaseError(f"case '{spec.name}': {exc}") from exc


def _feeder_data(f: FeederSpec) -> FeederData:
    if f.network == "inline":
        data = feeder_from_tables(f.feeder_id, f.base_kv, [dict(b) for b in f.branches], [dict(x) for x in f.loads])
    elif f.network == "file":
        data = feeder_from_file(f.file, f.feeder_id)
    elif f.network == "ieee123":
        data = ieee123(f.feeder_id)
    else:
        data = ieee33bw(f.feeder_id)
    if f.load_scale != 1.0:
        data = replace(data, p_load_mw=data.p_load_mw * f.load_scale, q_load_mvar=data.q_load_mvar * f.load_scale)
    if f.i_max_ka:
        labels = [data.branch_label(b) for b in range(data.n_branches)]
        unknown = sorted(set(f.i_max_ka) - set(labels) - {"default"})
        if unknown:
            raise CaseError(f"feeder '{f.feeder_id}': i_max_ka names branch(es) {unknown} that the feeder "
                            "does not have (branches are 'PARENT-CHILD')")
        default = f.i_max_ka.get("default", np.inf)
        data = replace(data, i_max_ka=np.array([f.i_max_ka.get(lab, default) for lab in labels]))
    return data


def feeder_inputs(spec: CaseSpec, feeder_id: str, data: FeederData, ev: EvFlexibility,
                  ev_fixed_mw: np.ndarray | None = None) -> FeederInputs:
    """The day's inputs of the feeder with EV envelopes ``ev`` (flexible) and ``ev_fixed_mw`` (N, T)
    (uncontrolled charging, a fixed withdrawal; none by default)."""
    f = spec.feeder(feeder_id)
    T, dt = spec.periods, spec.dt_h
    load_shape = profile(f.load_profile, dt)
    pv_shape = profile(f.pv_profile, dt)
    pv_cap = np.array([p.capacity_mw for p in f.pv])
    wind_cap = np.array([w.capacity_mw for w in f.wind])
    wind_shape = profile(f.wind_profile, dt) if f.wind else np.zeros(T)
    common: dict[str, Any] = dict(
        dt_h=dt,
        p_load_mw=data.p_load_mw[:, None] * load_shape[None, :],
        q_load_mvar=data.q_load_mvar[:, None] * load_shape[None, :],
        pv_node_idx=np.array([p.node - 1 for p in f.pv], dtype=int),
        pv_avail_mw=pv_cap[:, None] * pv_shape[None, :] if f.pv else np.zeros((0, T)),
        pv_s_mva=np.array([p.s_mva for p in f.pv]),
        pv_curtail_usd_per_mwh=spec.pv_curtail_usd_per_mwh,
        mt_node_idx=np.array([m.node - 1 for m in f.microturbines], dtype=int),
        mt_p_min_mw=np.array([m.p_min_mw for m in f.microturbines]),
        mt_p_max_mw=np.array([m.p_max_mw for m in f.microturbines]),
        mt_q_max_mvar=np.array([m.q_max_mvar for m in f.microturbines]),
        mt_ramp_mw_per_h=np.array([m.ramp_mw_per_h for m in f.microturbines]),
        mt_c1_usd_per_mwh=np.array([m.c1_usd_per_mwh for m in f.microturbines]),
        mt_c2_usd_per_mw2h=np.array([m.c2_usd_per_mw2h for m in f.microturbines]),
        loss_cost_usd_per_mwh=spec.loss_cost_usd_per_mwh,
        v_sub_pu=f.v_sub_pu,
        wind_node_idx=np.array([w.node - 1 for w in f.wind], dtype=int),
        wind_avail_mw=wind_cap[:, None] * wind_shape[None, :] if f.wind else np.zeros((0, T)),
        wind_s_mva=np.array([w.s_mva for w in f.wind]),
        wind_curtail_usd_per_mwh=spec.wind_curtail_usd_per_mwh,
    )
    fixed = np.zeros((data.n_nodes, T)) if ev_fixed_mw is None else ev_fixed_mw
    # EV chargers' reactive power: station k of the envelopes is the case's k-th station (the aggregator lists
    # its stations in case order); the converter ratings are the DSO's own connection data
    ev_q = f.ev_q if ev.station_p_max_mw is not None and ev.n_window else "none"
    if ev_q != "none" and len(f.stations) != int(np.asarray(ev.station_p_max_mw).shape[0]):
        raise CaseError(f"feeder '{feeder_id}': the envelopes list {np.asarray(ev.station_p_max_mw).shape[0]} "
                        f"stations, the case {len(f.stations)}")
    q_common: dict[str, Any] = dict(
        ev_q_mode=ev_q, objective=f.objective, curtailable=f.curtailable,
        station_node_idx=np.array([s.node - 1 for s in f.stations], dtype=int) if ev_q != "none" else np.zeros(0, int),
        station_s_mva=np.array([(s.s_kva if s.s_kva is not None else s.p_max_kw) / 1e3 for s in f.stations])
        if ev_q != "none" else np.zeros(0),
    )
    inputs = FeederInputs(**common, **q_common, ev=ev, ev_fixed_mw=fixed)
    if f.chance is not None:
        inputs = replace(inputs, chance=chance_inputs(spec, feeder_id, data, inputs))
    return inputs


def uncertainty_groups(spec: CaseSpec, feeder_id: str) -> dict[str, tuple[str, ...]]:
    """The feeder's uncertainty components: ``net_load`` (its load, PV and wind profiles) and ``ev`` (the
    charging-point profiles of its stations' kinds)."""
    f = spec.feeder(feeder_id)
    ch = f.chance
    if ch is None:
        raise CaseError(f"feeder '{feeder_id}': no 'chance' section")
    net = [f.load_profile] + ([f.pv_profile] if f.pv else []) + ([f.wind_profile] if f.wind else [])
    kinds = {s.kind for s in f.stations}
    ev = [p for k, p in (("home", ch.ev_profile_home), ("work", ch.ev_profile_work)) if k in kinds]
    if len(set(net + ev)) != len(net + ev):
        raise CaseError(f"feeder '{feeder_id}': one profile serves two uncertainty components ({net + ev})")
    return {"net_load": tuple(net), "ev": tuple(ev)}


@cache
def _fitted(groups: tuple[tuple[str, tuple[str, ...]], ...], holdout_every: int, max_components: int,
            seed: int, error_scale: float) -> UncertaintyModel:
    names = [n for _, members in groups for n in members]
    return fit_uncertainty({n: year_profile(n) for n in names}, dict(groups), holdout_every=holdout_every,
                           max_components=max_components, seed=seed, error_scale=error_scale)


def feeder_uncertainty(spec: CaseSpec, feeder_id: str) -> UncertaintyModel:
    """The fitted forecast-error model of the feeder (``dso.uncertainty``; fitted once per process)."""
    ch = spec.feeder(feeder_id).chance
    assert ch is not None
    groups = tuple((g, m) for g, m in uncertainty_groups(spec, feeder_id).items() if m)
    return _fitted(groups, ch.holdout_every, ch.gmm_max_components, ch.seed, ch.error_scale)


def ev_station_energy_mwh(ev: EvFlexibility, n_stations: int) -> np.ndarray:
    """(S,) the day's EV energy need per station: each envelope's cumulative bound at its last period."""
    last = np.cumsum(ev.dwell) - 1
    out = np.zeros(n_stations)
    if ev.n_envelopes and ev.station_idx is not None:
        np.add.at(out, ev.station_idx, ev.e_max_mwh[last])
    return out


def chance_inputs(spec: CaseSpec, feeder_id: str, data: FeederData, inputs: FeederInputs) -> ChanceInputs:
    """The chance layer's data: error moments, nodal deviation maps, reserve providers and flow limits.

    Nodal deviations per unit of each error component: loads move with the base load (the IEEE base load is
    the year's peak, the unit of the load profile's error), PV and wind with their capacity. EV stations: the
    SimBench profile is the mean of n_p charging points (``core.data.extract_ev_profiles``), normalised to its
    annual peak; a station serving E_s [MWh/day] counts as n_s = E_s / ev_session_kwh points whose errors are
    independent in groups of n_p, so its deviation is sqrt(n_p n_s) P_pt xi with P_pt = ev_session_kwh / H the
    peak of one point (H [h]: the profile's mean daily sum over the training days).
    """
    from core.data.extract_ev_profiles import SOURCES as EV_SOURCES

    f = spec.feeder(feeder_id)
    ch = f.chance
    assert ch is not None
    if spec.periods != 24:
        raise CaseError(f"feeder '{feeder_id}': the chance model is hourly (the profiles' errors), the case has "
                        f"{spec.periods} periods")
    unc = feeder_uncertainty(spec, feeder_id)
    n, d = data.n_nodes, unc.dim
    a_p, a_q = np.zeros((n, d)), np.zeros((n, d))
    col = {name: k for k, name in enumerate(unc.names)}
    a_p[:, col[f.load_profile]] = data.p_load_mw
    a_q[:, col[f.load_profile]] = data.q_load_mvar
    if f.pv:
        np.add.at(a_p[:, col[f.pv_profile]], inputs.pv_node_idx, -np.array([u.capacity_mw for u in f.pv]))
    if f.wind:
        np.add.at(a_p[:, col[f.wind_profile]], inputs.wind_node_idx, -np.array([u.capacity_mw for u in f.wind]))
    n_st = len(f.stations)
    energy = ev_station_energy_mwh(inputs.ev, n_st)
    for s, st in enumerate(f.stations):
        prof = ch.ev_profile_home if st.kind == "home" else ch.ev_profile_work
        if energy[s] <= 0 or prof not in col:
            continue
        n_points = len(EV_SOURCES.get(prof, ("one",)))
        hours = float(np.mean(year_profile(prof)[unc.train_days].sum(axis=1)))
        p_point_mw = ch.ev_session_kwh / 1e3 / hours
        a_p[st.node - 1, col[prof]] += np.sqrt(n_points * energy[s] * 1e3 / ch.ev_session_kwh) * p_point_mw
    mu, cov = unc.moments()
    lo, hi = unc.support_box(ch.ro_n_std)
    t = spec.periods
    kinds = ["mt"] * len(f.microturbines)
    cap = [np.full(t, m.p_max_mw - m.p_min_mw) for m in f.microturbines]
    nodes = [m.node - 1 for m in f.microturbines]
    ev = inputs.ev
    if ev.station_p_max_mw is not None and ev.station_idx is not None and ev.n_window:
        # a station's reserve capacity in hour t: the charge + discharge power of its plugged-in envelopes,
        # capped by its connection limit
        st_map = windows.period_map(ev.start, ev.dwell, t, ev.station_idx, n_st)
        swing = np.asarray(st_map @ (ev.p_ch_max_mw + ev.p_dis_max_mw)).reshape(n_st, t)
        for s, st in enumerate(f.stations):
            kinds.append("ev")
            cap.append(np.minimum(swing[s], float(ev.station_p_max_mw[s])))
            nodes.append(st.node - 1)
    cap_arr = np.array(cap, dtype=float).reshape(len(kinds), t)
    if not cap_arr.size or np.any(cap_arr.sum(axis=0) <= 0):
        raise CaseError(f"feeder '{feeder_id}': the chance model needs reserve providers (microturbines or EV "
                        "stations with EVs) in every hour")
    flow = np.where(np.isfinite(data.i_max_ka), np.sqrt(3.0) * data.base_kv * data.i_max_ka, np.inf)
    try:
        return ChanceInputs(
            method=ch.method, eps=ch.eps, names=unc.names, xi_mean=mu, xi_cov=cov, box_lo=lo, box_hi=hi,
            so_xi=unc.sample(ch.so_samples, ch.seed + 1), a_p_mw=a_p, a_q_mvar=a_q,
            reserve_up_usd_per_mw_h=ch.reserve_up_usd_per_mw_h, reserve_down_usd_per_mw_h=ch.reserve_down_usd_per_mw_h,
            provider_node_idx=np.array(nodes, dtype=int), provider_alpha=cap_arr / cap_arr.sum(axis=0),
            provider_kind=tuple(kinds), flow_limit_mw=flow, uncertainty=unc, mc_samples=ch.mc_samples,
            mc_seed=ch.mc_seed)
    except ChanceError as exc:
        raise CaseError(f"feeder '{feeder_id}' chance: {exc}") from exc


def import_forecast_mw(inputs: FeederInputs) -> np.ndarray:
    """Today's practice of a DSO's day-ahead import forecast (T,): loads + uncontrolled EV charging - all
    available PV and wind (no losses, microturbines off)."""
    return (inputs.p_load_mw.sum(axis=0) + inputs.ev_fixed_mw.sum(axis=0) - inputs.pv_avail_mw.sum(axis=0)
            - inputs.wind_avail_mw.sum(axis=0))


def net_load_forecast_mw(spec: CaseSpec, feeder_id: str, data: FeederData) -> np.ndarray:
    """(T,) the DSO's next-day net load [MW] before any EV is known: loads - available PV - available wind
    (``import_forecast_mw`` of the feeder's inputs with no uncontrolled EVs; the forecast its time-of-use
    tariff is ranked by, published before the aggregator's book closes)."""
    f = spec.feeder(feeder_id)
    dt = spec.dt_h
    out = float(np.sum(data.p_load_mw)) * profile(f.load_profile, dt)
    if f.pv:
        out = out - sum(p.capacity_mw for p in f.pv) * profile(f.pv_profile, dt)
    if f.wind:
        out = out - sum(w.capacity_mw for w in f.wind) * profile(f.wind_profile, dt)
    return np.asarray(out, dtype=float)


def station_distance_ohm(data: FeederData, nodes: np.ndarray) -> np.ndarray:
    """(S, S) series resistance [ohm] of the feeder path between station ``nodes`` (1-based): how "near" two
    stations are electrically (the aggregator offers an EV its nearest other stations)."""
    n = data.n_nodes
    adj = sp.csr_matrix((data.r_ohm + 1e-9, (data.from_idx, data.to_idx)), shape=(n, n))
    idx = np.asarray(nodes, dtype=int) - 1
    return shortest_path(adj, directed=False, indices=idx)[:, idx]


def flexibility_from_envelope(env: Any, station_limits_mw: Mapping[str, float] | None = None) -> EvFlexibility:
    """Envelopes as the DSO model reads them (node labels -> 0-based indices). ``env`` is an envelope from the
    aggregator (its ``FleetFlexibility`` in-process or the message a DSO received: the same field names).
    Station connection limits (station id -> MW) become per station-period limits on the net EV power."""
    station_idx = station_p_max_mw = None
    if station_limits_mw is not None:
        index = {sid: k for k, sid in enumerate(station_limits_mw)}
        station_idx = np.array([index[s] for s in env.station_id], dtype=int)
        station_p_max_mw = np.array(list(station_limits_mw.values()), dtype=float)
    return EvFlexibility(
        alloc_group=env.alloc_group,
        station_idx=station_idx,
        station_p_max_mw=station_p_max_mw,
        node_idx=np.asarray(env.node, dtype=int) - 1,
        start=np.asarray(env.start, dtype=int),
        dwell=np.asarray(env.dwell, dtype=int),
        p_ch_max_mw=env.p_ch_max_mw,
        p_dis_max_mw=env.p_dis_max_mw,
        e_min_mwh=env.e_min_mwh,
        e_max_mwh=env.e_max_mwh,
        eta_ch=env.eta_ch,
        eta_dis=env.eta_dis,
    )


def station_to_nodes(station_mw: np.ndarray, station_nodes: np.ndarray, n_nodes: int) -> np.ndarray:
    """(S, T) station withdrawals -> (N, T) node withdrawals (``station_nodes`` 1-based)."""
    out = np.zeros((n_nodes, station_mw.shape[1]))
    np.add.at(out, np.asarray(station_nodes, dtype=int) - 1, station_mw)
    return out
