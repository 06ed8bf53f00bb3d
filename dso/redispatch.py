"""The DSO's side of a no-show / late-arrival re-dispatch (the second paper's named limitation: reservations
that are not honoured; Cao Hangtao et al., Zhejiang Electric Power 2024, DOI 10.19585/j.zjdl.202405005).

At period ``t_from`` the DSO re-dispatches with its feeder model: periods ``[0, t_from)`` are fixed at the
executed day-ahead dispatch (every EV envelope entry as its aggregator reports it, PV and wind P and Q,
micro-turbines, the stations' EV Q), the EV envelopes are those of the fleet that came (from its aggregator,
``aggregator.redispatch.rebook``), and from ``t_from`` on everything is optimised again under the case
objective, every remaining reservation met.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import cvxpy as cp
import numpy as np

from core.errors import SolveError
from core.solver import solve_problem
from dso.model import EvFlexibility, FeederDispatch, FeederInputs, build_feeder_model
from dso.network import FeederData


@dataclass(frozen=True)
class FeederRedispatch:
    inputs: FeederInputs  # the day-ahead inputs with the envelopes of the fleet that came
    dispatch: FeederDispatch  # the whole day: executed past + re-dispatched rest
    objective: float  # the case objective of the re-dispatched day
    day_ahead_objective: float  # the same objective of the day-ahead dispatch
    solve_s: float


def redispatch_feeder(data: FeederData, day_inputs: FeederInputs, day: FeederDispatch, ev: EvFlexibility,
                      t_from: int, past_entry: np.ndarray, past_p_ch_mw: np.ndarray, past_p_dis_mw: np.ndarray,
                      solver: str = "CLARABEL") -> FeederRedispatch:
    """Re-dispatch from ``t_from`` after the day-ahead dispatch ``day`` (of ``day_inputs``), with the envelopes
    ``ev`` of the fleet that came; ``past_*``: its window entries in the executed periods and what they drew."""
    t_n = day_inputs.n_periods
    if not 1 <= t_from < t_n:
        raise ValueError(f"t_from={t_from!r}: re-dispatch period must be in [1, {t_n - 1}]")
    inputs = replace(day_inputs, ev=ev)
    period = ev.period_of_window(t_n)
    past = np.asarray(past_entry, dtype=np.int64)
    expected = np.flatnonzero(period < t_from)
    if not np.array_equal(np.sort(past), expected):
        raise ValueError(f"past_entry: {past.size} entries given, the envelopes have {expected.size} window entries "
                         f"before period {t_from}")
    model = build_feeder_model(data, inputs)
    fixes: list[cp.Constraint] = []
    if past.size:
        fixes.append(model.variables["ev_p_ch_mw"][past] == np.asarray(past_p_ch_mw, dtype=float))
        v2g = ev.v2g_entries
        pos = np.full(ev.n_window, -1)
        pos[v2g] = np.arange(v2g.size)
        in_v2g = pos[past] >= 0
        if in_v2g.any():
            fixes.append(model.variables["ev_p_dis_mw"][pos[past][in_v2g]] ==
                         np.asarray(past_p_dis_mw, dtype=float)[in_v2g])
    executed = {"pv_p_mw": day.pv_p_mw, "pv_q_mvar": day.pv_q_mvar, "wind_p_mw": day.wind_p_mw,
                "wind_q_mvar": day.wind_q_mvar, "mt_p_mw": day.mt_p_mw, "mt_q_mvar": day.mt_q_mvar}
    for key, val in executed.items():
        if key in model.variables and np.asarray(val).size:
            fixes.append(model.variables[key][:, :t_from] == np.asarray(val)[:, :t_from])
    if model._station_q_mvar is not None and day.ev_station_q_mvar.size:
        fixes.append(model._station_q_mvar[:, :t_from] == day.ev_station_q_mvar[:, :t_from])
    problem = cp.Problem(cp.Minimize(model.objective()), [*model.constraints.values(), *fixes])
    t0 = time.perf_counter()
    status = solve_problem(problem, solver)
    solve_s = time.perf_counter() - t0
    if status != cp.OPTIMAL:
        raise SolveError(f"feeder '{data.name}': re-dispatch from period {t_from} not solved to optimality (the "
                         "remaining fleet cannot be served with the executed past fixed)", status)
    d = model.extract()
    return FeederRedispatch(inputs, d, objective_of(inputs, d), objective_of(day_inputs, day), solve_s)


def objective_of(inputs: FeederInputs, d: FeederDispatch) -> float:
    """The case objective of dispatch ``d`` (loss [MWh], voltage deviation [p.u.], cost [$] as weighted)."""
    w = dict(inputs.objective)
    dt = inputs.dt_h
    v = np.asarray(d.v_pu)
    terms = {"cost": float(sum(d.cost_usd.values())), "loss": float(np.sum(d.loss_mw) * dt),
             "voltage_deviation": float(np.mean(np.abs(v[1:] ** 2 - 1.0)) / 2.0)}
    return float(sum(weight * terms[k] for k, weight in w.items()))
