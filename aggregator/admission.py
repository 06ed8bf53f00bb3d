"""Exact, cheap admission tests for one station's reservations (used by ``aggregator.reservations``).

A station can serve a set of EVs when a per-EV schedule exists with every EV's power inside its box while
plugged in, every EV's stored-energy gain reaching its need by departure, and the station's net power within
``p_max_kw`` in every period (the LP of ``ReservationBook._station_feasible``).

Charging only, this is a transportation problem: EV e must draw need_e / eta_e grid-side kWh, at most
p_charge_e dt in each period of its window, and the station at most p_max dt per period. It has a schedule
iff the maximum flow source -> EV -> period -> sink saturates every EV (Ford-Fulkerson; integral capacities
in Wh, the needs rounded up and the capacities down, so a saturating flow is a schedule of the real EVs).
When no EV of the station can discharge, charging only IS the model, and the flow decides exactly; when some
can, a saturating flow still proves feasibility (discharging is never required), and only a flow that does
not saturate is inconclusive (discharging EVs can act as the station's storage), so the LP decides then.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import maximum_flow

#: flows are integral in this unit of energy [kWh]
UNIT_KWH = 1e-3


def charging_schedule_kw(mask: np.ndarray, need_grid_kwh: np.ndarray, p_charge_kw: np.ndarray, p_max_kw: float,
                         dt_h: float) -> np.ndarray | None:
    """A charging-only schedule (n, T) [kW] of EVs with plug-in ``mask`` (n, T), grid-side energy needs
    ``need_grid_kwh`` (n,) and charger powers ``p_charge_kw`` (n,) under a station limit ``p_max_kw``; None
    when none exists (up to 1 Wh of rounding, always on the safe side)."""
    n, t = mask.shape
    if n == 0:
        return np.zeros((0, t))
    need = np.ceil(np.asarray(need_grid_kwh, dtype=float) / UNIT_KWH - 1e-9).astype(np.int64)
    cap = np.floor(np.asarray(p_charge_kw, dtype=float) * dt_h / UNIT_KWH + 1e-9).astype(np.int64)
    station = int(np.floor(p_max_kw * dt_h / UNIT_KWH + 1e-9))
    if np.any(need > np.iinfo(np.int32).max) or station > np.iinfo(np.int32).max:
        return None  # beyond int32 Wh: let the LP decide
    ev_i, per_t = np.nonzero(mask)
    src, ev0, per0, sink = 0, 1, 1 + n, 1 + n + t
    rows = np.concatenate([np.full(n, src), ev0 + ev_i, per0 + np.arange(t)])
    cols = np.concatenate([ev0 + np.arange(n), per0 + per_t, np.full(t, sink)])
    data = np.concatenate([need, np.minimum(cap[ev_i], station), np.full(t, station)]).astype(np.int32)
    graph = sp.csr_matrix((data, (rows, cols)), shape=(sink + 1, sink + 1))
    result = maximum_flow(graph, src, sink, method="dinic")
    if result.flow_value < int(need.sum()):
        return None
    flow = result.flow.tocsr()[ev0:ev0 + n, per0:per0 + t].toarray()
    return np.maximum(flow, 0) * UNIT_KWH / dt_h
