"""No-show and late-arrival re-dispatch: the paper's named limitation (reservations that are not honoured).

After the day-ahead dispatch of the booked fleet (scenario ``ev_pq`` of ``gridcoord study scheduled-charging``)
some EVs do not come (no-shows) or come late. At period ``t_from`` the DSO re-dispatches with its feeder model:
periods ``[0, t_from)`` are fixed at the executed day-ahead schedule (every EV envelope entry, PV and wind P
and Q, micro-turbines, the stations' EV Q), the no-shows are gone, a late EV's window starts at its real
arrival, and from ``t_from`` on everything is optimised again inside the remaining fleet's envelopes, every
remaining reservation met. A late EV's need is capped at what its shortened window can deliver (charger x
efficiency x plugged hours): the shortfall is the owner's lateness, reported as ``late_shortfall_kwh``.

Only EVs whose planned window lies inside ``[t_from, T)`` without wrapping past midnight can be no-shows or
late here: a window that wraps into the executed periods was already partly charged, so its owner did come.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aggregator.fleet import EV, FleetError, window_of
from aggregator.flex import disaggregate_spatial
from aggregator.redispatch import affected_fleet

__all__ = ["Redispatch", "affected_fleet", "pick_events", "redispatch"]


@dataclass(frozen=True)
class Redispatch:
    run: Any  # orchestrator.studies.feeder_run.ScenarioRun of the re-dispatched day
    t_from: int  # first re-dispatched period
    no_show: tuple[str, ...]  # ev ids that did not come
    late: dict[str, float]  # ev id -> real arrival [h]
    late_shortfall_kwh: float  # needs of late EVs cut to what their shortened windows can deliver [kWh]
    objective: float  # the case objective of the re-dispatched day (its units: the case's objective terms)
    day_ahead_objective: float  # the same objective of the day-ahead dispatch
    fleet: tuple[EV, ...]  # the EVs that came (late ones with their real arrival and capped need)
    schedules: Any  # aggregator.flex.Disaggregation: per-EV schedules of ``fleet`` over the whole day


def pick_events(fleet: Sequence[Any], t_from: int, no_show_share: float, late_share: float, late_h: float,
                dt_h: float, n_periods: int, seed: int = 0) -> tuple[list[str], dict[str, float]]:
    """Draw no-shows and late arrivals (shares of the EVs whose window lies in ``[t_from, T)``, seeded; ``fleet``:
    the EVs or the bookings, anything with ``ev_id``, ``arrival_h``, ``departure_h``, in the book's order); a late
    EV comes ``late_h`` hours after its booking, but no later than the start of its last full period."""
    for name, share in (("no_show_share", no_show_share), ("late_share", late_share)):
        if not 0.0 <= share <= 1.0:
            raise FleetError(f"{name}={share!r} must be in [0, 1]")
    if no_show_share + late_share > 1.0:
        raise FleetError(f"no_show_share + late_share = {no_show_share + late_share:g} must be <= 1")
    if not late_h > 0:
        raise FleetError(f"late_h={late_h!r} must be > 0")
    arr = np.array([ev.arrival_h for ev in fleet])
    dep = np.array([ev.departure_h for ev in fleet])
    eligible = []
    for i, (a, d) in enumerate(zip(arr, dep, strict=True)):
        start, dwell = window_of(float(a), float(d), dt_h, n_periods)
        if start >= t_from and start + dwell <= n_periods:
            eligible.append(i)
    rng = np.random.default_rng(seed)
    order = rng.permutation(eligible).astype(int)
    n_ns = int(round(no_show_share * len(order)))
    no_show = [fleet[i].ev_id for i in order[:n_ns]]
    late: dict[str, float] = {}
    for i in order[n_ns:n_ns + int(round(late_share * len(order)))]:
        ev = fleet[i]
        last_full = (np.floor(ev.departure_h / dt_h + 1e-9) - 1.0) * dt_h  # the last full period must remain
        arrival = min(ev.arrival_h + late_h, float(last_full))
        if arrival > ev.arrival_h:
            late[ev.ev_id] = float(arrival)
    return no_show, late


def redispatch(feeder: Any, day: Any, t_from: int, no_show: Sequence[str], late: Mapping[str, float], *,
               ac: bool = True, solver: str = "CLARABEL") -> Redispatch:
    """Re-dispatch ``feeder`` (an embedded ``FeederSystem``) from period ``t_from`` after the day-ahead run
    ``day`` (a ``ScenarioRun`` of that feeder's full fleet), given the no-shows and late arrivals: the aggregator's
    part (``aggregator.redispatch.rebook``) and the DSO's (``dso.redispatch.redispatch_feeder``) in this process,
    as a DSO service does them with its aggregator service (``DsoService.Redispatch``)."""
    from aggregator.redispatch import rebook
    from dso.inputs import flexibility_from_envelope
    from dso.redispatch import redispatch_feeder
    from dso.report import publish
    from orchestrator.studies.feeder_run import ScenarioRun
    from orchestrator.system.embedded import LocalAggregator

    inp0, d0 = day.inputs, day.dispatch
    dt, t_n = inp0.dt_h, inp0.n_periods
    stations = list(feeder.stations)
    rb = rebook(feeder.fleet, feeder.flex, d0.ev_p_ch_mw, d0.ev_p_dis_mw, stations, t_from, no_show, late, dt, t_n)
    limits = {s.station_id: s.p_max_kw / 1e3 for s in stations}
    out = redispatch_feeder(feeder.data, inp0, d0, flexibility_from_envelope(rb.flex, limits), t_from,
                            rb.past_entry, rb.past_p_ch_mw, rb.past_p_dis_mw, solver=solver)
    d = out.dispatch
    settlement = LocalAggregator(rb.fleet, feeder.stations, rb.flex, dt, t_n, True)(d)
    _, dis = disaggregate_spatial(list(rb.fleet), rb.flex, d.ev_p_ch_mw, d.ev_p_dis_mw, None, stations, dt, t_n)
    report = publish(feeder.data, out.inputs, d, settlement, ac=ac)
    run = ScenarioRun("redispatch", out.inputs, d, report, np.asarray(dis.unmet_kwh, dtype=float), out.solve_s)
    return Redispatch(run=run, t_from=t_from, no_show=tuple(no_show), late=dict(late),
                      late_shortfall_kwh=rb.late_shortfall_kwh, objective=out.objective,
                      day_ahead_objective=out.day_ahead_objective, fleet=rb.fleet, schedules=dis)
