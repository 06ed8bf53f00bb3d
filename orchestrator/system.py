"""Turn a validated ``CaseSpec`` into the operators' numeric inputs (frozen dataclasses of arrays).

Each operator gets only its own data: the TSO its network and costs, each DSO its feeder, DER and
the envelopes its aggregator hands over. The orchestrator holds the whole ``System`` only because
the embedded default and the ``centralized`` reference strategy need it; the distributed strategies
hand each subspace its own part.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path

from aggregator.fleet import EV, FleetError, Station, synthetic_fleet, validate_fleet, with_reach
from aggregator.flex import FleetFlexibility, inner_flexibility, uncontrolled_profile
from dso.model import EvFlexibility, FeederInputs
from dso.network import FeederData, FeederDataError, feeder_from_tables, ieee33bw
from orchestrator.case import CaseError, CaseSpec, FeederSpec, load_case
from orchestrator.profiles import profile
from tso.model import TsoInputs
from tso.network import TransmissionData, TransmissionDataError, ieee30, ieee118


@dataclass(frozen=True)
class FeederSystem:
    """One DSO's private data and the EV fleets of the aggregators on its feeder."""

    spec: FeederSpec
    data: FeederData
    inputs: FeederInputs  # EVs flexible (aggregator envelopes)
    inputs_uncontrolled: FeederInputs  # EVs charge on arrival at full power (fixed withdrawal)
    fleet: tuple[EV, ...]
    stations: tuple[Station, ...]
    flex: FleetFlexibility

    @property
    def feeder_id(self) -> str:
        return self.spec.feeder_id


@dataclass(frozen=True)
class System:
    spec: CaseSpec
    tso_data: TransmissionData
    tso_inputs: TsoInputs
    feeders: tuple[FeederSystem, ...]

    @property
    def n_periods(self) -> int:
        return self.spec.periods

    @property
    def dt_h(self) -> float:
        return self.spec.dt_h

    @property
    def feeder_ids(self) -> list[str]:
        return [f.feeder_id for f in self.feeders]


def _transmission(spec: CaseSpec) -> tuple[TransmissionData, TsoInputs]:
    t = spec.transmission
    build = {"case30": ieee30, "case118": ieee118}[t.network]
    data = build(name=t.network, cost_scale=t.cost_scale)
    if t.ramp_frac_per_h != 1.0:
        data = _with_ramp(data, t.ramp_frac_per_h)
    labels = [int(b) for b in data.bus_labels]
    shape = profile(t.load_profile, spec.dt_h)
    load = data.load_p_mw[:, None] * shape[None, :]
    wind_idx = np.array([labels.index(w.bus) for w in t.wind], dtype=int)
    wind_avail = np.array([w.capacity_mw * profile(w.profile, spec.dt_h) for w in t.wind]).reshape(
        len(t.wind), spec.periods)
    inputs = TsoInputs(
        dt_h=spec.dt_h,
        load_p_mw=load,
        wind_bus_idx=wind_idx,
        wind_avail_mw=wind_avail,
        wind_curtail_usd_per_mwh=t.wind_curtail_usd_per_mwh,
        dr_max_mw=t.dr_max_share * load,
        dr_cost_usd_per_mwh=t.dr_cost_usd_per_mwh,
        dso_bus_idx=np.array([labels.index(f.bus) for f in spec.feeders], dtype=int),
    )
    return data, inputs


def _with_ramp(data: TransmissionData, frac: float) -> TransmissionData:
    return replace(data, gen_ramp_mw_per_h=frac * data.gen_p_max_mw)


def _feeder_data(f: FeederSpec) -> FeederData:
    if f.network == "inline":
        data = feeder_from_tables(f.feeder_id, f.base_kv, [dict(b) for b in f.branches], [dict(x) for x in f.loads])
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


def _fleet(f: FeederSpec, data: FeederData, stations: tuple[Station, ...], dt_h: float,
           n_periods: int) -> tuple[EV, ...]:
    """Synthetic EVs split over home and work stations by connection capacity, plus inline EVs."""
    fleet: list[EV] = []
    kinds = {s.station_id: s.kind for s in f.stations}
    groups = {k: [s for s in stations if kinds[s.station_id] == k] for k in ("home", "work")}
    total_kw = sum(s.p_max_kw for s in stations)
    remaining = f.ev_count
    for i, (kind, group) in enumerate((k, g) for k, g in groups.items() if g):
        share = sum(s.p_max_kw for s in group) / total_kw
        last = i == sum(1 for g in groups.values() if g) - 1
        n = remaining if last else round(f.ev_count * share)
        remaining -= n
        drawn = synthetic_fleet(n, group, seed=f.ev_seed + i, v2g_share=f.v2g_share, dt_h=dt_h,
                                n_periods=n_periods, kind=kind)
        fleet.extend(_renamed(ev, f"{f.feeder_id}-{kind}-{ev.ev_id}") for ev in drawn)
    for e in f.ev_list:
        fleet.append(EV(ev_id=e.ev_id, arrival_h=e.arrival_h, departure_h=e.departure_h,
                        energy_need_kwh=e.energy_need_kwh, capacity_kwh=e.capacity_kwh,
                        soc_arrival_kwh=e.soc_arrival_kwh, p_charge_kw=e.p_charge_kw,
                        p_discharge_kw=e.p_discharge_kw, efficiency=e.efficiency, station=e.station))
    if f.ev_reach > 1:
        fleet = with_reach(fleet, stations, f.ev_reach, distance=station_distance_ohm(data, stations),
                           kinds=[kinds[s.station_id] for s in stations])
    validate_fleet(fleet, stations, dt_h, n_periods)
    return tuple(fleet)


def station_distance_ohm(data: FeederData, stations: tuple[Station, ...]) -> np.ndarray:
    """(S,S) series resistance [ohm] of the feeder path between station nodes (how "near" two stations are)."""
    n = data.n_nodes
    adj = sp.csr_matrix((data.r_ohm + 1e-9, (data.from_idx, data.to_idx)), shape=(n, n))
    nodes = np.array([s.node - 1 for s in stations], dtype=int)
    dist = shortest_path(adj, directed=False, indices=nodes)
    return dist[:, nodes]


def _renamed(ev: EV, ev_id: str) -> EV:
    return replace(ev, ev_id=ev_id)


def to_dso_flexibility(flex: Any, stations: tuple[Station, ...] | None = None,
                       station_limits_mw: dict[str, float] | None = None) -> EvFlexibility:
    """Envelopes as the DSO model reads them (node labels -> 0-based indices). ``flex`` is the
    aggregator's ``FleetFlexibility`` or the envelope a DSO received over the wire (same field names).
    Station connection limits (from ``stations``' p_max_kw, or ``station_limits_mw`` by station id)
    become per station-period limits on the net EV power."""
    if stations is not None:
        station_limits_mw = {s.station_id: s.p_max_kw / 1e3 for s in stations}
    station_idx = station_p_max_mw = None
    if station_limits_mw is not None:
        index = {sid: k for k, sid in enumerate(station_limits_mw)}
        station_idx = np.array([index[s] for s in flex.station_id], dtype=int)
        station_p_max_mw = np.array(list(station_limits_mw.values()), dtype=float)
    return EvFlexibility(
        alloc_group=flex.alloc_group,
        station_idx=station_idx,
        station_p_max_mw=station_p_max_mw,
        node_idx=np.asarray(flex.node, dtype=int) - 1,
        start=np.asarray(flex.start, dtype=int),
        dwell=np.asarray(flex.dwell, dtype=int),
        p_ch_max_mw=flex.p_ch_max_mw,
        p_dis_max_mw=flex.p_dis_max_mw,
        e_min_mwh=flex.e_min_mwh,
        e_max_mwh=flex.e_max_mwh,
        eta_ch=flex.eta_ch,
        eta_dis=flex.eta_dis,
    )


def station_to_nodes(station_mw: np.ndarray, stations: tuple[Station, ...], n_nodes: int) -> np.ndarray:
    """(S,T) station withdrawals -> (N,T) node withdrawals."""
    out = np.zeros((n_nodes, station_mw.shape[1]))
    for s, st in enumerate(stations):
        out[st.node - 1] += station_mw[s]
    return out


def _stations(f: FeederSpec) -> tuple[Station, ...]:
    return tuple(Station(station_id=s.station_id, node=s.node, p_max_kw=s.p_max_kw) for s in f.stations)


def _feeder_common(spec: CaseSpec, f: FeederSpec, data: FeederData) -> dict[str, Any]:
    """The DSO's own inputs (loads, PV, microturbines, prices of losses) — everything but the EVs."""
    T, dt = spec.periods, spec.dt_h
    load_shape = profile(f.load_profile, dt)
    pv_shape = profile(f.pv_profile, dt)
    pv_cap = np.array([p.capacity_mw for p in f.pv])
    return dict(
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
    )


def _feeder(spec: CaseSpec, f: FeederSpec) -> FeederSystem:
    T, dt = spec.periods, spec.dt_h
    data = _feeder_data(f)
    stations = _stations(f)
    fleet = _fleet(f, data, stations, dt, T)
    flex = inner_flexibility(list(fleet), list(stations), dt, T)
    ev_fixed = station_to_nodes(uncontrolled_profile(list(fleet), list(stations), dt, T), stations, data.n_nodes)
    common = _feeder_common(spec, f, data)
    flexible = FeederInputs(**common, ev=to_dso_flexibility(flex, stations), ev_fixed_mw=np.zeros((data.n_nodes, T)))
    fixed = FeederInputs(**common, ev=empty_flexibility(), ev_fixed_mw=ev_fixed)
    return FeederSystem(spec=f, data=data, inputs=flexible, inputs_uncontrolled=fixed, fleet=fleet,
                        stations=stations, flex=flex)


def empty_flexibility() -> EvFlexibility:
    z = np.zeros(0)
    zi = np.zeros(0, dtype=int)
    return EvFlexibility(node_idx=zi, start=zi, dwell=zi, p_ch_max_mw=z, p_dis_max_mw=z, e_min_mwh=z,
                         e_max_mwh=z, eta_ch=z, eta_dis=z)


def _feeder_spec(spec: CaseSpec, feeder_id: str) -> FeederSpec:
    for f in spec.feeders:
        if f.feeder_id == feeder_id:
            return f
    known = ", ".join(x.feeder_id for x in spec.feeders)
    raise CaseError(f"case '{spec.name}': no feeder {feeder_id!r} (feeders: {known})")


def operator_tso(spec: CaseSpec) -> tuple[TransmissionData, TsoInputs]:
    """What the TSO's own process holds."""
    try:
        return _transmission(spec)
    except TransmissionDataError as exc:
        raise CaseError(f"case '{spec.name}': {exc}") from exc


def operator_dso(spec: CaseSpec, feeder_id: str) -> tuple[FeederData, dict[str, Any]]:
    """What a DSO's own process holds: its feeder and its inputs except the EV envelopes (which its
    aggregator sends): ``FeederInputs(**common, ev=..., ev_fixed_mw=...)``."""
    f = _feeder_spec(spec, feeder_id)
    try:
        data = _feeder_data(f)
    except FeederDataError as exc:
        raise CaseError(f"case '{spec.name}': {exc}") from exc
    return data, _feeder_common(spec, f, data)


def operator_aggregator(spec: CaseSpec, feeder_id: str) -> tuple[tuple[EV, ...], tuple[Station, ...]]:
    """What the aggregator of ``feeder_id``'s stations holds: its EVs and stations."""
    f = _feeder_spec(spec, feeder_id)
    try:
        stations = _stations(f)
        return _fleet(f, _feeder_data(f), stations, spec.dt_h, spec.periods), stations
    except (FeederDataError, FleetError) as exc:
        raise CaseError(f"case '{spec.name}': {exc}") from exc


def build_system(spec: CaseSpec | str) -> System:
    """Build every operator's numeric data; data errors become ``CaseError`` naming the culprit."""
    if isinstance(spec, str):
        spec = load_case(spec)
    try:
        tso_data, tso_inputs = _transmission(spec)
        feeders = tuple(_feeder(spec, f) for f in spec.feeders)
    except (FeederDataError, TransmissionDataError, FleetError) as exc:
        raise CaseError(f"case '{spec.name}': {exc}") from exc
    return System(spec=spec, tso_data=tso_data, tso_inputs=tso_inputs, feeders=feeders)
