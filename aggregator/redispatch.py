"""The aggregator's side of a no-show / late-arrival re-dispatch: after the day-ahead dispatch some booked EVs
do not come, some come late. The aggregator (which alone holds the EVs) drops the no-shows, moves a late EV's
arrival to its real one (its need capped at what the shortened window can deliver), builds the envelopes of the
fleet that came, and tells its DSO what each envelope entry of the executed periods already drew (the sum of its
members' day-ahead per-EV schedules), so that the DSO can keep the past fixed and re-dispatch the rest.

Only EVs whose planned window lies inside ``[t_from, T)`` without wrapping past midnight can be no-shows or
late: a window that wraps into the executed periods was already partly charged, so its owner did come.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from aggregator.fleet import EV, FleetError, Station, window_of
from aggregator.flex import FleetFlexibility, disaggregate_spatial, inner_flexibility
from core import windows


@dataclass(frozen=True)
class Rebooking:
    fleet: tuple[EV, ...]  # the EVs that came (late ones with their real arrival and capped need)
    flex: FleetFlexibility  # their envelopes
    past_entry: np.ndarray  # (P,) window entries of ``flex`` in the executed periods [0, t_from)
    past_p_ch_mw: np.ndarray  # (P,) what each drew there, charging [MW]
    past_p_dis_mw: np.ndarray  # (P,) discharging [MW]
    late_shortfall_kwh: float  # needs of late EVs cut to what their shortened windows can deliver [kWh]


def affected_fleet(fleet: Sequence[EV], t_from: int, no_show: Sequence[str], late: Mapping[str, float],
                   dt_h: float, n_periods: int) -> tuple[list[EV], float]:
    """The fleet that actually comes (late EVs with their real arrival and capped need) and the needs cut
    from late EVs [kWh]; bad events raise ``FleetError`` naming the EV and the value."""
    if not 1 <= t_from < n_periods:
        raise FleetError(f"t_from={t_from!r}: re-dispatch period must be in [1, {n_periods - 1}]")
    by_id = {ev.ev_id: ev for ev in fleet}
    both = sorted(set(no_show) & set(late))
    if both:
        raise FleetError(f"EV '{both[0]}': listed both as a no-show and as late")
    for ev_id in [*no_show, *late]:
        ev = by_id.get(ev_id)
        if ev is None:
            raise FleetError(f"EV '{ev_id}': not in the dispatched fleet")
        start, dwell = window_of(ev.arrival_h, ev.departure_h, dt_h, n_periods)
        if start < t_from or start + dwell > n_periods:
            raise FleetError(f"EV '{ev_id}': its window (periods {start}..{start + dwell - 1} mod {n_periods}) is "
                             f"not inside the re-dispatched periods {t_from}..{n_periods - 1}: it was charged "
                             "before the re-dispatch, so it did come")
    shortfall = 0.0
    out: list[EV] = []
    gone = set(no_show)
    for ev in fleet:
        if ev.ev_id in gone:
            continue
        if ev.ev_id in late:
            arr = late[ev.ev_id]
            if not (np.isfinite(arr) and ev.arrival_h < arr < ev.departure_h):
                raise FleetError(f"EV '{ev.ev_id}': late arrival_h={arr!r} must be after its booked arrival "
                                 f"{ev.arrival_h:g} h and before its departure {ev.departure_h:g} h")
            _, dwell = window_of(arr, ev.departure_h, dt_h, n_periods)
            if dwell < 1:
                raise FleetError(f"EV '{ev.ev_id}': late arrival_h={arr:g} leaves no full period before its "
                                 f"departure {ev.departure_h:g} h")
            most = ev.efficiency * ev.p_charge_kw * dwell * dt_h
            need = min(ev.energy_need_kwh, most)
            shortfall += ev.energy_need_kwh - need
            ev = replace(ev, arrival_h=float(arr), energy_need_kwh=float(need))
        out.append(ev)
    return out, shortfall


def rebook(fleet: Sequence[EV], flex: FleetFlexibility, p_ch_mw: np.ndarray, p_dis_mw: np.ndarray,
           stations: Sequence[Station], t_from: int, no_show: Sequence[str], late: Mapping[str, float],
           dt_h: float, n_periods: int) -> Rebooking:
    """The fleet that came and its envelopes, with the executed past of the day-ahead envelope dispatch
    (``p_ch_mw``/``p_dis_mw``: per window entry of ``flex``, as the DSO dispatched it)."""
    if flex.is_spatial:
        raise FleetError("re-dispatch with spatial station allocation (evs.reach > 1) is not built")
    came, shortfall = affected_fleet(fleet, t_from, no_show, late, dt_h, n_periods)
    # the executed past per EV: the day-ahead schedules, disaggregated as the aggregator did
    _, dis0 = disaggregate_spatial(list(fleet), flex, p_ch_mw, p_dis_mw, None, list(stations), dt_h, n_periods)
    row = {ev.ev_id: i for i, ev in enumerate(fleet)}
    new = inner_flexibility(came, list(stations), dt_h, n_periods)
    period = windows.periods(new.start, new.dwell, n_periods)
    env = windows.owner(new.dwell)
    past = np.flatnonzero(period < t_from)
    rows = [np.array([row[came[m].ev_id] for m in new.members[e]], dtype=np.int64) for e in env[past]]
    ch = np.array([dis0.p_ch_kw[r, period[w]].sum() for r, w in zip(rows, past, strict=True)]) / 1e3
    dis = np.array([dis0.p_dis_kw[r, period[w]].sum() for r, w in zip(rows, past, strict=True)]) / 1e3
    return Rebooking(tuple(came), new, past, ch.reshape(-1), dis.reshape(-1), float(shortfall))
