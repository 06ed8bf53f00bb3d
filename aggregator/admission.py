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
from scipy.sparse.csgraph import breadth_first_order, maximum_flow

#: flows are integral in this unit of energy [kWh]
UNIT_KWH = 1e-3
#: violated cuts a station remembers (the most recent distinct ones)
CUTS_KEPT = 16


def _inside_need_kwh(mask: np.ndarray, need_grid_kwh: np.ndarray, p_charge_kw: np.ndarray,
                     p_discharge_kw: np.ndarray, windows: np.ndarray, dt_h: float) -> np.ndarray:
    """(n, k): the least net grid energy EV e (a row of ``mask``) draws inside period set k (a row of
    ``windows``): max(need_e - p_charge_e dt |W_e outside|, -p_discharge_e dt |W_e inside|) (see
    :func:`window_cut_violated`)."""
    m = mask.astype(np.int64)
    inside = m @ windows.T.astype(np.int64)
    outside = m.sum(axis=1)[:, None] - inside
    low = need_grid_kwh[:, None] - p_charge_kw[:, None] * dt_h * outside
    return np.maximum(low, -p_discharge_kw[:, None] * dt_h * inside)


class StationRows:
    """What the admission tests need of a station's booked EVs, as growing arrays (amortised O(1) append)."""

    def __init__(self, n_periods: int, dt_h: float) -> None:
        self.n = 0
        self.dt_h = dt_h
        self.mask = np.zeros((64, n_periods), dtype=bool)  # (n, T) plugged-in periods
        self.need_grid_kwh = np.zeros(64)  # (n,) need / efficiency
        self.p_charge_kw = np.zeros(64)  # (n,)
        self.p_discharge_kw = np.zeros(64)  # (n,) 0 = no V2G
        self.any_discharge = False  # some booked EV can discharge (then the flow alone is not exact)
        #: remembered violated cuts (k, T), most recent first, and the booked EVs' least draw inside each (k,)
        #: [kWh], kept up to date on every append: testing one against a new EV costs O(T), not O(n T)
        self.cuts = np.zeros((0, n_periods), dtype=bool)
        self.cut_draw_kwh = np.zeros(0)

    def append(self, mask: np.ndarray, need_grid_kwh: float, p_charge_kw: float, p_discharge_kw: float) -> None:
        if self.n == self.mask.shape[0]:
            grow = self.mask.shape[0]
            self.mask = np.vstack([self.mask, np.zeros_like(self.mask)])
            self.need_grid_kwh = np.concatenate([self.need_grid_kwh, np.zeros(grow)])
            self.p_charge_kw = np.concatenate([self.p_charge_kw, np.zeros(grow)])
            self.p_discharge_kw = np.concatenate([self.p_discharge_kw, np.zeros(grow)])
        k = self.n
        self.mask[k], self.need_grid_kwh[k], self.p_charge_kw[k] = mask, need_grid_kwh, p_charge_kw
        self.p_discharge_kw[k] = p_discharge_kw
        self.any_discharge = self.any_discharge or p_discharge_kw > 0
        self.n += 1
        if self.cuts.shape[0]:
            self.cut_draw_kwh = self.cut_draw_kwh + self._draw_of(mask, need_grid_kwh, p_charge_kw, p_discharge_kw)

    def _draw_of(self, mask: np.ndarray, need_grid_kwh: float, p_charge_kw: float,
                 p_discharge_kw: float) -> np.ndarray:
        """One EV's least draw inside each remembered cut (k,) [kWh]."""
        return _inside_need_kwh(mask[None, :], np.array([need_grid_kwh]), np.array([p_charge_kw]),
                                np.array([p_discharge_kw]), self.cuts, self.dt_h)[0]

    def remember_cut(self, window: np.ndarray) -> None:
        """Keep ``window`` (T,), a period set whose cut was violated, unless empty or already kept."""
        if not window.any() or any(np.array_equal(window, c) for c in self.cuts):
            return
        n = self.n
        draw = _inside_need_kwh(self.mask[:n], self.need_grid_kwh[:n], self.p_charge_kw[:n], self.p_discharge_kw[:n],
                                window[None, :], self.dt_h).sum()
        self.cuts = np.vstack([window[None, :], self.cuts])[:CUTS_KEPT]
        self.cut_draw_kwh = np.concatenate([[draw], self.cut_draw_kwh])[:CUTS_KEPT]

    def remembered_cut_violated(self, mask: np.ndarray, need_grid_kwh: float, p_charge_kw: float,
                                p_discharge_kw: float, p_max_kw: float) -> bool:
        """:func:`window_cut_violated` over the booked EVs plus one more, for every remembered cut at once."""
        if not self.cuts.shape[0]:
            return False
        draw = self.cut_draw_kwh + self._draw_of(mask, need_grid_kwh, p_charge_kw, p_discharge_kw)
        return bool(np.any(draw > p_max_kw * self.dt_h * self.cuts.sum(axis=1) * (1 + 1e-9) + 1e-6))

    def with_one(self, mask: np.ndarray, need_grid_kwh: float, p_charge_kw: float,
                 p_discharge_kw: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(mask, need, p_charge, p_discharge) of the booked EVs plus one more (copies; the rows are unchanged)."""
        n = self.n
        return (np.vstack([self.mask[:n], mask[None, :]]), np.append(self.need_grid_kwh[:n], need_grid_kwh),
                np.append(self.p_charge_kw[:n], p_charge_kw), np.append(self.p_discharge_kw[:n], p_discharge_kw))


def window_cut_violated(mask: np.ndarray, need_grid_kwh: np.ndarray, p_charge_kw: np.ndarray, window: np.ndarray,
                        p_max_kw: float, dt_h: float, p_discharge_kw: np.ndarray | None = None) -> bool:
    """A proof that no schedule exists: inside the periods ``window`` (T,) EV e (a row of ``mask``) draws a net
    grid energy of at least max(need_e - p_charge_e dt |W_e outside window|, -p_discharge_e dt |W_e inside|)
    (its whole net draw is >= need_e = stored need / efficiency, at most p_charge dt per period outside; a
    discharging EV lends at most p_discharge dt per period inside), and together more than the station's
    p_max dt |window|. With no discharging EV this is a cut of the charging-only flow network. Necessary for
    feasibility, not sufficient: False proves nothing."""
    dis = np.zeros(mask.shape[0]) if p_discharge_kw is None else np.asarray(p_discharge_kw, dtype=float)
    inside_need = _inside_need_kwh(mask, np.asarray(need_grid_kwh, dtype=float), np.asarray(p_charge_kw, dtype=float),
                                   dis, window[None, :], dt_h)
    return bool(inside_need.sum() > p_max_kw * dt_h * int(window.sum()) * (1 + 1e-9) + 1e-6)


def cut_candidates(window: np.ndarray, profile_kw: np.ndarray | None, p_max_kw: float) -> list[np.ndarray]:
    """Period sets worth testing with :func:`window_cut_violated` when ``window`` (T,) joins a station whose
    current profile is ``profile_kw``: the window itself, the window with every saturated period, and the
    circular run of saturated-or-window periods around the window (where a min cut usually lies)."""
    out = [window]
    if profile_kw is None:
        return out
    full = profile_kw >= p_max_kw * (1 - 1e-6)
    union = window | full
    out.append(union)
    if union.all():
        return out
    t = window.size
    run = window.copy()
    idx = np.flatnonzero(window)
    for step in (1, -1):  # grow the run from the window's ends through saturated periods
        k = (idx[-1] if step == 1 else idx[0]) if idx.size else 0
        for _ in range(t):
            k = (k + step) % t
            if not full[k] or run[k]:
                break
            run[k] = True
    out.append(run)
    return out


def charging_schedule_kw(mask: np.ndarray, need_grid_kwh: np.ndarray, p_charge_kw: np.ndarray, p_max_kw: float,
                         dt_h: float, cut_out: list[np.ndarray] | None = None) -> np.ndarray | None:
    """The station profile (T,) [kW] of a charging-only schedule of EVs with plug-in ``mask`` (n, T),
    grid-side energy needs ``need_grid_kwh`` (n,) and charger powers ``p_charge_kw`` (n,) under a station limit
    ``p_max_kw``; None when none exists (up to 1 Wh of rounding, always on the safe side). When none exists and
    ``cut_out`` is given, the violated cut's period set (the periods the source still reaches in the residual
    network) is appended to it: a candidate for :func:`window_cut_violated` on later requests."""
    n, t = mask.shape
    if n == 0:
        return np.zeros(t)
    need = np.ceil(np.asarray(need_grid_kwh, dtype=float) / UNIT_KWH - 1e-9).astype(np.int64)
    cap = np.floor(np.asarray(p_charge_kw, dtype=float) * dt_h / UNIT_KWH + 1e-9).astype(np.int64)
    station = int(np.floor(p_max_kw * dt_h / UNIT_KWH + 1e-9))
    if np.any(need > np.iinfo(np.int32).max) or station > np.iinfo(np.int32).max:
        return None  # beyond int32 Wh: let the LP decide
    ev_i, per_t = np.nonzero(mask)  # row-major: EV by EV, periods ascending (CSR order)
    src, ev0, per0, sink = 0, 1, 1 + n, 1 + n + t
    per_ev = mask.sum(axis=1)
    # rows: source (n edges), EVs (their periods), periods (1 edge to the sink), sink (none)
    indptr = np.concatenate([[0, n], n + np.cumsum(per_ev), n + ev_i.size + 1 + np.arange(t), [n + ev_i.size + t]])
    indices = np.concatenate([ev0 + np.arange(n), per0 + per_t, np.full(t, sink)]).astype(np.int32)
    data = np.concatenate([need, np.minimum(cap[ev_i], station), np.full(t, station)]).astype(np.int32)
    graph = sp.csr_matrix((data, indices, indptr.astype(np.int32)), shape=(sink + 1, sink + 1))
    result = maximum_flow(graph, src, sink, method="dinic")
    if result.flow_value < int(need.sum()):
        if cut_out is not None:
            residual = (graph - result.flow).tocsr()  # reverse edges of the flow carry negative flow: + capacity
            residual.data = (residual.data > 0).astype(np.int8)
            residual.eliminate_zeros()
            reached = breadth_first_order(residual, src, directed=True, return_predecessors=False)
            periods = np.zeros(t, dtype=bool)
            hit = reached[(reached >= per0) & (reached < per0 + t)] - per0
            periods[hit] = True
            cut_out.append(periods)
        return None
    flow = result.flow.tocsr()[per0:per0 + t, sink].toarray().reshape(-1)
    return np.maximum(flow, 0) * UNIT_KWH / dt_h
