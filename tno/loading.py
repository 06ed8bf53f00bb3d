"""Dynamic network loading: vehicles move along their routes over the arc table (tno.paths), event by event.

Arc models (times in minutes):
- road link a: a vehicle entering at t leaves at t + tau_a with the BPR-type impedance
  tau_a = t0_a (1 + alpha (x_a / C_a)^beta), x_a [veh/h] the inflow rate of the link over the last
  ``INFLOW_WINDOW_MIN`` minutes (a link-delay model with BPR impedance on the entry flow; an occupancy-based
  x = 60 n / t0 runs away once delayed vehicles raise the occupancy, which raises the delay ...).
  Chosen over the cell transmission model (Daganzo 1994) because the paper's arc impedance is BPR-type, the
  5-minute coupling needs arc times, not densities, and a link delay model keeps vehicles discrete (every EV
  is tracked to a station and a plug) at a fraction of CTM's cost. It has neither spill-back nor a hard
  capacity (v/c > 1 gives a large but finite delay), which CTM and UXsim's kinematic-wave model have: see
  the UXsim comparison in tests/test_tno_uxsim.py.
- origin arc (virtual): a FIFO entry queue served at the total capacity of the links leaving the origin.
- station arc (virtual): a FIFO queue for ``plugs`` plugs; a vehicle waits until a plug frees, then stays
  plugged for its type's plug-in time. Its delay grows with occupancy and falls with the plug count.

Every vehicle is conserved: it departs, traverses each arc of its route and arrives; the loading runs past
the horizon until the last vehicle arrives (at most ``max_horizon_factor`` x the horizon, else an error).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from core.errors import SolveError
from tno.network import TransportCase
from tno.paths import ChoiceSets, Route

INFLOW_WINDOW_MIN = 10  # minutes over which a link's inflow rate is measured for its BPR delay


@dataclass(frozen=True)
class Vehicles:
    """The travel demand as vehicles: OD index, kind (-1 non-charging, else EV type index), departure [min]."""

    od: np.ndarray  # (V,) int
    kind: np.ndarray  # (V,) int
    departure_min: np.ndarray  # (V,) float
    v2g: np.ndarray  # (V,) bool (EVs able to discharge)

    @property
    def n(self) -> int:
        return int(self.od.size)

    def routes_of(self, sets: ChoiceSets, v: int) -> tuple[Route, ...]:
        return sets.charging[int(self.od[v])] if self.kind[v] >= 0 else sets.plain[int(self.od[v])]


def make_vehicles(case: TransportCase) -> Vehicles:
    """Deterministic departures: OD k sends demand_k x departure_end / 60 vehicles evenly over
    [0, departure_end); every vehicle is charging with probability ``charging_share`` (seeded) and then of an
    EV type drawn by the types' shares, and V2G-capable by its type's ``v2g_share``."""
    rng = np.random.default_rng(case.seed)
    od, dep = [], []
    for k, d in enumerate(case.od):
        count = int(round(d.demand_veh_per_h * case.departure_end_min / 60.0))
        od.append(np.full(count, k, dtype=np.int64))
        dep.append((np.arange(count) + 0.5) * case.departure_end_min / max(count, 1))
    od_a = np.concatenate(od) if od else np.zeros(0, dtype=np.int64)
    dep_a = np.concatenate(dep) if dep else np.zeros(0)
    charging = rng.random(od_a.size) < case.charging_share
    kind = np.full(od_a.size, -1, dtype=np.int64)
    if case.ev_types:
        shares = np.array([t.share for t in case.ev_types])
        kind[charging] = rng.choice(len(shares), size=int(charging.sum()), p=shares / shares.sum())
    v2g_share = np.array([t.v2g_share for t in case.ev_types] + [0.0])
    v2g = rng.random(od_a.size) < v2g_share[kind]
    order = np.argsort(dep_a, kind="stable")
    return Vehicles(od_a[order], kind[order], dep_a[order], v2g[order])


@dataclass(frozen=True)
class Loading:
    """Result of one loading. Minutes grid m = 0..M-1 (M >= horizon); steps of ``step_min``."""

    arc_time_min: np.ndarray  # (A, M) instantaneous traversal/wait time of each arc at minute m (station: wait)
    link_inflow_veh: np.ndarray  # (L, P) vehicles entering each road link per step
    link_occupancy_veh: np.ndarray  # (L, M) vehicles on each link at minute m
    link_entry: tuple[np.ndarray, ...]  # per link (k, 2): entry and exit minute of every traversal
    station_arrival_min: np.ndarray  # (V,) NaN for non-charging vehicles
    plug_start_min: np.ndarray  # (V,)
    plug_end_min: np.ndarray  # (V,)
    arrival_min: np.ndarray  # (V,) at the destination
    origin_wait_min: np.ndarray  # (V,)
    route_index: np.ndarray  # (V,) index into the vehicle's choice set
    departure_min: np.ndarray  # (V,)
    departed: int
    arrived: int

    @property
    def travel_min(self) -> np.ndarray:
        """(V,) door-to-door minutes incl. origin queue, station queue and plug-in time."""
        return self.arrival_min - self.departure_min


def load_network(case: TransportCase, sets: ChoiceSets, veh: Vehicles, route_index: np.ndarray,
                 max_horizon_factor: float = 3.0) -> Loading:
    """Load vehicles on their chosen routes (``route_index[v]`` into the vehicle's choice set)."""
    net = case.network
    n_l, n_s, n_a = sets.n_links, sets.n_stations, sets.n_arcs
    t0 = net.free_flow_min
    cap = net.capacity_veh_per_h
    alpha, beta = net.bpr_alpha, net.bpr_beta
    win = INFLOW_WINDOW_MIN
    origin_rate = np.zeros(len(sets.origins))  # veh/min
    for i, o in enumerate(sets.origins):
        origin_rate[i] = net.capacity_veh_per_h[net.from_node == o].sum() / 60.0
    charge_min = np.array([[t.charge_min(s.p_plug_kw) for s in case.stations] for t in case.ev_types]).reshape(
        len(case.ev_types), n_s)
    plug_free = [[0.0] * s.plugs for s in case.stations]
    origin_free = np.zeros(len(sets.origins))
    occ = np.zeros(n_a)
    routes = [veh.routes_of(sets, v)[int(route_index[v])] for v in range(veh.n)]
    pos = np.zeros(veh.n, dtype=np.int64)
    n_v = veh.n
    st_arr, pl_start, pl_end = np.full(n_v, np.nan), np.full(n_v, np.nan), np.full(n_v, np.nan)
    arrival, o_wait = np.full(n_v, np.nan), np.zeros(n_v)
    entries: list[list[tuple[float, float]]] = [[] for _ in range(n_l)]
    heap: list[tuple[float, int, int]] = [(float(veh.departure_min[v]), v, v) for v in range(n_v)]
    heapq.heapify(heap)
    seq = n_v
    m_max = int(np.ceil(case.horizon_min * max_horizon_factor))
    p_steps = case.n_periods
    arc_time = np.zeros((n_a, m_max))
    occ_hist = np.zeros((n_l, m_max))
    inflow = np.zeros((n_l, int(np.ceil(m_max / case.step_min))))
    entered = np.zeros((n_l, m_max + 1))  # entries per link and minute
    rate = 60.0 / win  # veh per window -> veh/h
    arrived = 0
    m = 0
    while m < m_max:
        while heap and heap[0][0] <= m:
            t, _, v = heapq.heappop(heap)
            route = routes[v]
            k = int(pos[v])
            if k > 0:
                prev = route.arcs[k - 1]
                occ[prev] -= 1
            if k == len(route.arcs):
                arrival[v] = t
                arrived += 1
                continue
            a = route.arcs[k]
            pos[v] = k + 1
            if a < n_l:
                mi = int(t)
                entered[a, mi] += 1
                x = entered[a, max(0, mi - win + 1):mi + 1].sum() * rate
                tau = t0[a] * (1.0 + alpha * (x / cap[a]) ** beta)
                entries[a].append((t, t + tau))
                inflow[a, int(t // case.step_min)] += 1
                t_out = t + tau
            elif a < n_l + n_s:
                s = a - n_l
                free = heapq.heappop(plug_free[s])
                start = max(t, free)
                end = start + charge_min[int(veh.kind[v]), s]
                heapq.heappush(plug_free[s], end)
                st_arr[v], pl_start[v], pl_end[v] = t, start, end
                t_out = end
            else:
                i = a - n_l - n_s
                start = max(t, origin_free[i])
                origin_free[i] = start + 1.0 / origin_rate[i]
                o_wait[v] = start - t
                t_out = start
            occ[a] += 1
            heapq.heappush(heap, (t_out, seq, v))
            seq += 1
        x_now = entered[:, max(0, m - win + 1):m + 1].sum(axis=1) * rate
        arc_time[:n_l, m] = t0 * (1.0 + alpha * (x_now / cap) ** beta)
        for s in range(n_s):
            arc_time[n_l + s, m] = max(0.0, min(plug_free[s]) - m)
        arc_time[n_l + n_s:, m] = np.maximum(0.0, origin_free - m)
        occ_hist[:, m] = occ[:n_l]
        m += 1
        if not heap and m >= case.horizon_min:
            break
    if heap:
        raise SolveError(f"network loading: {len(heap)} vehicles still travelling after {m_max} min "
                         f"({max_horizon_factor} x the horizon); the demand exceeds what the network carries", None)
    m_end = max(m, int(np.ceil(case.horizon_min)))
    return Loading(
        arc_time_min=arc_time[:, :m_end], link_inflow_veh=inflow[:, :max(p_steps, int(np.ceil(m_end / case.step_min)))],
        link_occupancy_veh=occ_hist[:, :m_end],
        link_entry=tuple(np.array(e, dtype=float).reshape(-1, 2) for e in entries),
        station_arrival_min=st_arr, plug_start_min=pl_start, plug_end_min=pl_end, arrival_min=arrival,
        origin_wait_min=o_wait, route_index=np.asarray(route_index, dtype=np.int64).copy(),
        departure_min=veh.departure_min, departed=n_v, arrived=arrived,
    )
