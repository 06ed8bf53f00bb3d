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

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import cvxpy as cp
import numpy as np

from aggregator.fleet import EV, FleetError, window_of


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


def pick_events(fleet: Sequence[EV], t_from: int, no_show_share: float, late_share: float, late_h: float,
                dt_h: float, n_periods: int, seed: int = 0) -> tuple[list[str], dict[str, float]]:
    """Draw no-shows and late arrivals (shares of the EVs whose window lies in ``[t_from, T)``, seeded); a late
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
    ``day`` (a ``ScenarioRun`` of that feeder's full fleet), given the no-shows and late arrivals."""
    from aggregator.flex import disaggregate_spatial, inner_flexibility
    from core.errors import SolveError
    from core.solver import solve_problem
    from dso.inputs import flexibility_from_envelope
    from dso.model import build_feeder_model
    from dso.report import publish
    from orchestrator.studies.feeder_run import ScenarioRun
    from orchestrator.system.embedded import LocalAggregator

    inp0, d0 = day.inputs, day.dispatch
    dt, t_n = inp0.dt_h, inp0.n_periods
    if feeder.flex.is_spatial:
        raise FleetError(f"feeder '{feeder.feeder_id}': re-dispatch with spatial station allocation is not built")
    stations = list(feeder.stations)
    fleet, shortfall = affected_fleet(feeder.fleet, t_from, no_show, late, dt, t_n)
    # the executed past per EV: the day-ahead schedules, disaggregated as the aggregator did
    _, dis0 = disaggregate_spatial(list(feeder.fleet), feeder.flex, d0.ev_p_ch_mw, d0.ev_p_dis_mw, None,
                                   stations, dt, t_n)
    row = {ev.ev_id: i for i, ev in enumerate(feeder.fleet)}
    flex = inner_flexibility(fleet, stations, dt, t_n)
    limits = {s.station_id: s.p_max_kw / 1e3 for s in stations}
    inputs = replace(inp0, ev=flexibility_from_envelope(flex, limits))
    model = build_feeder_model(feeder.data, inputs)
    fixes: list[cp.Constraint] = []
    # EV envelope entries in the executed periods: the sum of their members' executed schedules
    ev_in = inputs.ev
    period = ev_in.period_of_window(t_n)
    past = np.flatnonzero(period < t_from)
    if past.size:
        env = ev_in.envelope_of_window[past]
        ch = np.array([sum(dis0.p_ch_kw[row[fleet[m].ev_id], period[w]] for m in flex.members[e])
                       for w, e in zip(past, env, strict=True)]) / 1e3
        dis_mw = np.array([sum(dis0.p_dis_kw[row[fleet[m].ev_id], period[w]] for m in flex.members[e])
                           for w, e in zip(past, env, strict=True)]) / 1e3
        fixes.append(model.variables["ev_p_ch_mw"][past] == ch)
        v2g = ev_in.v2g_entries
        pos = np.full(ev_in.n_window, -1)
        pos[v2g] = np.arange(v2g.size)
        in_v2g = pos[past] >= 0
        if in_v2g.any():
            fixes.append(model.variables["ev_p_dis_mw"][pos[past][in_v2g]] == dis_mw[in_v2g])
    executed = {"pv_p_mw": d0.pv_p_mw, "pv_q_mvar": d0.pv_q_mvar, "wind_p_mw": d0.wind_p_mw,
                "wind_q_mvar": d0.wind_q_mvar, "mt_p_mw": d0.mt_p_mw, "mt_q_mvar": d0.mt_q_mvar}
    for key, val in executed.items():
        if key in model.variables and np.asarray(val).size:
            fixes.append(model.variables[key][:, :t_from] == np.asarray(val)[:, :t_from])
    if model._station_q_mvar is not None and d0.ev_station_q_mvar.size:
        fixes.append(model._station_q_mvar[:, :t_from] == d0.ev_station_q_mvar[:, :t_from])
    objective = model.objective()
    problem = cp.Problem(cp.Minimize(objective), [*model.constraints.values(), *fixes])
    t0 = time.perf_counter()
    status = solve_problem(problem, solver)
    solve_s = time.perf_counter() - t0
    if status != cp.OPTIMAL:
        raise SolveError(f"feeder '{feeder.feeder_id}': re-dispatch from period {t_from} not solved to optimality "
                         "(the remaining fleet cannot be served with the executed past fixed)", status)
    d = model.extract()
    settlement = LocalAggregator(tuple(fleet), feeder.stations, flex, dt, t_n, True)(d)
    _, dis = disaggregate_spatial(fleet, flex, d.ev_p_ch_mw, d.ev_p_dis_mw, None, stations, dt, t_n)
    report = publish(feeder.data, inputs, d, settlement, ac=ac)
    run = ScenarioRun("redispatch", inputs, d, report, np.asarray(dis.unmet_kwh, dtype=float), solve_s)
    return Redispatch(run=run, t_from=t_from, no_show=tuple(no_show), late=dict(late),
                      late_shortfall_kwh=float(shortfall), objective=_objective_of(inputs, d),
                      day_ahead_objective=_objective_of(inp0, d0), fleet=tuple(fleet), schedules=dis)


def _objective_of(inputs: Any, d: Any) -> float:
    """The case objective of dispatch ``d`` (loss [MWh], voltage deviation [p.u.], cost [$] as weighted)."""
    w = dict(inputs.objective)
    dt = inputs.dt_h
    v = np.asarray(d.v_pu)
    terms = {"cost": float(sum(d.cost_usd.values())), "loss": float(np.sum(d.loss_mw) * dt),
             "voltage_deviation": float(np.mean(np.abs(v[1:] ** 2 - 1.0)) / 2.0)}
    return float(sum(weight * terms[k] for k, weight in w.items()))
