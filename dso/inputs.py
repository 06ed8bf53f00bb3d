"""A DSO's own inputs from a case: its feeder, loads, PV and microturbines, and how it reads the EV
envelopes its aggregator sends (what its process holds; the EVs themselves stay with the aggregator)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path

from core.case import CaseError, CaseSpec, FeederSpec
from core.profiles import profile
from dso.model import EvFlexibility, FeederInputs
from dso.network import FeederData, FeederDataError, feeder_from_file, feeder_from_tables, ieee33bw, ieee123


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
    return FeederInputs(**common, **q_common, ev=ev, ev_fixed_mw=fixed)


def import_forecast_mw(inputs: FeederInputs) -> np.ndarray:
    """Today's practice of a DSO's day-ahead import forecast (T,): loads + uncontrolled EV charging - all
    available PV and wind (no losses, microturbines off)."""
    return (inputs.p_load_mw.sum(axis=0) + inputs.ev_fixed_mw.sum(axis=0) - inputs.pv_avail_mw.sum(axis=0)
            - inputs.wind_avail_mw.sum(axis=0))


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
