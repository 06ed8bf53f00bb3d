"""An EV aggregator's own inputs from a case: its stations and its fleet (what its process holds)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from aggregator.fleet import EV, FleetError, Station, synthetic_fleet, validate_fleet, with_reach
from core.case import CaseError, CaseSpec, FeederSpec


def stations_from_case(spec: CaseSpec, feeder_id: str) -> tuple[Station, ...]:
    """The charging stations on ``feeder_id``'s feeder."""
    return _stations(spec.feeder(feeder_id))


def _stations(f: FeederSpec) -> tuple[Station, ...]:
    return tuple(Station(station_id=s.station_id, node=s.node, p_max_kw=s.p_max_kw) for s in f.stations)


def fleet_from_case(spec: CaseSpec, feeder_id: str, distance_ohm: np.ndarray | None = None) -> tuple[EV, ...]:
    """Synthetic EVs split over home and work stations by connection capacity, plus the case's inline EVs.

    With ``evs.reach`` > 1 an EV may also use the nearest other stations of its kind; "near" is the feeder
    path resistance between station nodes, ``distance_ohm`` (S, S), which the DSO computes from its feeder
    (``dso.inputs.station_distance_ohm``). Fleet errors become ``CaseError`` naming the case."""
    f = spec.feeder(feeder_id)
    if f.ev_reach > 1 and distance_ohm is None:
        raise CaseError(f"case '{spec.name}': feeder '{feeder_id}' has evs.reach {f.ev_reach} > 1; the stations' "
                        "distances are needed to build its fleet")
    try:
        return _fleet(f, _stations(f), spec.dt_h, spec.periods, distance_ohm)
    except FleetError as exc:
        raise CaseError(f"case '{spec.name}': {exc}") from exc


def _fleet(f: FeederSpec, stations: tuple[Station, ...], dt_h: float, n_periods: int,
           distance_ohm: np.ndarray | None) -> tuple[EV, ...]:
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
        fleet.extend(replace(ev, ev_id=f"{f.feeder_id}-{kind}-{ev.ev_id}") for ev in drawn)
    for e in f.ev_list:
        fleet.append(EV(ev_id=e.ev_id, arrival_h=e.arrival_h, departure_h=e.departure_h,
                        energy_need_kwh=e.energy_need_kwh, capacity_kwh=e.capacity_kwh,
                        soc_arrival_kwh=e.soc_arrival_kwh, p_charge_kw=e.p_charge_kw,
                        p_discharge_kw=e.p_discharge_kw, efficiency=e.efficiency, station=e.station))
    if f.ev_reach > 1 and distance_ohm is not None:
        fleet = with_reach(fleet, stations, f.ev_reach, distance=distance_ohm,
                           kinds=[kinds[s.station_id] for s in stations])
    validate_fleet(fleet, stations, dt_h, n_periods)
    return tuple(fleet)
