"""Route and station choice by the instantaneous unit flow travel cost, to a dynamic user equilibrium.

Instantaneous cost of route r for a vehicle departing at minute m (arc times frozen at minute m, the
"instantaneous" travel time of the dynamic traffic assignment literature):
    c_r(m) = VOT/60 x sum_{a in r} tau_a(m)                                      time cost [$]
           + (VOT + queue_penalty)/60 x w_s(m)                                 queue at station s of r
           + e_grid / 1000 x mean price_s over the estimated plug window        charging cost [$]
with tau the loading's arc times, w_s the wait for a plug, e_grid = need / eta [kWh], the price in $/MWh
(the station's DLMP from the DSO, 5-minute periods) and the plug window starting at m + the time to reach s.

Equilibrium by the method of successive averages on the discrete route choices: at iteration k each vehicle
not on its cheapest route switches to it with probability 1/(k+1) (seeded). Gap of a group of vehicles =
sum_v (c_v - c*_v) / sum_v c*_v, c_v the cost of its route and c*_v its cheapest, at the last loading; the
iteration stops when the gap of the charging EVs AND that of the other vehicles are <= the tolerance (the
charging EVs are a tenth of the traffic: one gap over all would hide theirs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tno.loading import Loading, Vehicles, load_network
from tno.network import TransportCase
from tno.paths import ChoiceSets, Route, incidence


@dataclass(frozen=True)
class Assignment:
    loading: Loading
    route_index: np.ndarray  # (V,)
    cost_usd: np.ndarray  # (V,) instantaneous cost of each vehicle's route at its departure
    best_cost_usd: np.ndarray  # (V,)
    gap: float  # relative equilibrium gap at the returned loading, all vehicles
    gap_charging: float  # the same over the charging EVs only
    gap_history: tuple[float, ...]
    iterations: int


def _price_per_min(case: TransportCase, price_usd_per_mwh: np.ndarray, n_min: int) -> np.ndarray:
    """(S, n_min + 1) cumulative sums of the per-minute station price (held past the horizon)."""
    step = int(round(case.step_min))
    p = np.repeat(np.asarray(price_usd_per_mwh, dtype=float), step, axis=1)
    if p.shape[1] < n_min:
        p = np.concatenate([p, np.repeat(p[:, -1:], n_min - p.shape[1], axis=1)], axis=1)
    return np.concatenate([np.zeros((p.shape[0], 1)), np.cumsum(p[:, :n_min], axis=1)], axis=1)


def route_costs(case: TransportCase, sets: ChoiceSets, veh: Vehicles, loading: Loading,
                price_usd_per_mwh: np.ndarray) -> list[np.ndarray]:
    """Per vehicle, the instantaneous cost [$] of every route of its choice set at its departure minute."""
    arc_t = loading.arc_time_min
    n_min = arc_t.shape[1]
    n_l = sets.n_links
    cum_price = _price_per_min(case, price_usd_per_mwh, n_min + 1000)
    out: list[np.ndarray] = [np.zeros(0)] * veh.n
    m_of = np.minimum(np.floor(veh.departure_min).astype(np.int64), n_min - 1)
    for k in range(len(case.od)):
        for kind in [-1, *range(len(case.ev_types))]:
            members = np.flatnonzero((veh.od == k) & (veh.kind == kind))
            if not members.size:
                continue
            routes: tuple[Route, ...] = sets.charging[k] if kind >= 0 else sets.plain[k]
            inc = incidence(routes, sets.n_arcs)
            st_cols = np.arange(n_l, n_l + sets.n_stations)
            road = inc.copy()
            road[:, st_cols] = 0.0
            m = m_of[members]
            t_road = road @ arc_t[:, m]  # (R, n) minutes on roads and origin queues
            if kind < 0:
                cost = case.value_of_time_usd_per_h / 60.0 * t_road
            else:
                et = case.ev_types[kind]
                vot = et.value_of_time_usd_per_h
                st = np.array([r.station for r in routes])
                wait = arc_t[n_l + st][:, m]  # (R, n)
                prefix = np.zeros_like(inc)
                for r, route in enumerate(routes):
                    prefix[r, list(route.arcs[:route.n_before_station])] = 1.0
                reach = prefix @ arc_t[:, m] + wait
                plug = np.array([et.charge_min(case.stations[s].p_plug_kw) for s in st])[:, None]
                a0 = np.clip(np.floor(m[None, :] + reach).astype(np.int64), 0, cum_price.shape[1] - 2)
                a1 = np.clip(np.floor(m[None, :] + reach + plug).astype(np.int64), a0 + 1, cum_price.shape[1] - 1)
                mean_price = (cum_price[st[:, None], a1] - cum_price[st[:, None], a0]) / (a1 - a0)
                e_grid_mwh = et.need_kwh / et.efficiency / 1000.0
                cost = (vot / 60.0 * (t_road + wait + plug) + case.queue_penalty_usd_per_h / 60.0 * wait
                        + e_grid_mwh * mean_price)
            for j, v in enumerate(members.tolist()):
                out[v] = cost[:, j]
    return out


def shortest_path_choice(sets: ChoiceSets, veh: Vehicles) -> np.ndarray:
    """Route index of the least free-flow road time (the choice sets are sorted by it): the nearest station."""
    return np.zeros(veh.n, dtype=np.int64)


def relative_gap(cur: np.ndarray, best: np.ndarray) -> float:
    total = float(best.sum())
    return float((cur - best).sum() / total) if total > 0 else 0.0


def _gap(costs: list[np.ndarray], route_index: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    cur = np.array([c[int(r)] for c, r in zip(costs, route_index, strict=True)])
    best = np.array([c.min() for c in costs])
    return cur, best, relative_gap(cur, best)


def equilibrate(case: TransportCase, sets: ChoiceSets, veh: Vehicles, price_usd_per_mwh: np.ndarray,
                start: np.ndarray | None = None, max_iter: int = 30, gap_tol: float = 0.01,
                step_offset: int = 0) -> Assignment:
    """MSA to the instantaneous dynamic user equilibrium under the station prices (S, P) [$/MWh].

    ``step_offset``: MSA iterations already made before (warm start in an outer loop): the switching
    probability continues at 1/(step_offset + k + 1) instead of restarting at 1/2, so that an outer
    price loop settles instead of reshuffling the vehicles every round."""
    rng = np.random.default_rng(case.seed + step_offset)
    route = shortest_path_choice(sets, veh) if start is None else np.asarray(start, dtype=np.int64).copy()
    history: list[float] = []
    k = 0
    while True:
        k += 1
        loading = load_network(case, sets, veh, route)
        costs = route_costs(case, sets, veh, loading, price_usd_per_mwh)
        cur, best, gap = _gap(costs, route)
        ev = veh.kind >= 0
        gap_ev, gap_other = relative_gap(cur[ev], best[ev]), relative_gap(cur[~ev], best[~ev])
        history.append(gap)
        if max(gap_ev, gap_other) <= gap_tol or k >= max_iter:
            return Assignment(loading, route, cur, best, gap, gap_ev, tuple(history), k)
        arg = np.array([int(np.argmin(c)) for c in costs])
        switch = (cur > best + 1e-9) & (rng.random(veh.n) < 1.0 / (step_offset + k + 1))
        route = np.where(switch, arg, route)


def shortest_path_assignment(case: TransportCase, sets: ChoiceSets, veh: Vehicles,
                             price_usd_per_mwh: np.ndarray) -> Assignment:
    """Everyone on the free-flow shortest route (nearest station), loaded once; gap measured there."""
    route = shortest_path_choice(sets, veh)
    loading = load_network(case, sets, veh, route)
    cur, best, gap = _gap(route_costs(case, sets, veh, loading, price_usd_per_mwh), route)
    ev = veh.kind >= 0
    return Assignment(loading, route, cur, best, gap, relative_gap(cur[ev], best[ev]), (gap,), 1)
