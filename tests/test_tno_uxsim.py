"""Independent check of the TNO's dynamic network loading against UXsim (MIT; Seo, "UXsim: an open source
macroscopic and mesoscopic traffic simulator in Python", arXiv:2309.17114), a kinematic-wave (Newell)
simulator, on the same Nguyen-Dupuis network, the same departures and the same fixed routes.

What is compared: per link the number of vehicles that traverse it (flows) and their mean travel time, and per
vehicle the door-to-door time. The two models agree where they should: below capacity both keep vehicles
near free-flow speed (BPR adds t0 0.15 (v/c)^4, UXsim nothing until capacity), so at v/c <= ~0.7 the link
times must agree within 5 % (BPR's own excess at v/c 0.7 is 3.6 %) and the flows exactly (platoons of one
vehicle). Above capacity they differ by design (BPR: finite delay, no queue; UXsim: a queue and spill-back),
so the congested case is measured and printed, not asserted.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tno.cases import coupling_case
from tno.loading import Vehicles, load_network
from tno.network import TransportCase
from tno.paths import choice_sets

uxsim = pytest.importorskip("uxsim")


def _case(demand_scale: float) -> TransportCase:
    c = coupling_case(demand_scale=demand_scale, charging_share=0.0, horizon_min=80.0, departure_end_min=20.0)
    return replace(c, stations=())


def _vehicles(case: TransportCase) -> Vehicles:
    od, dep = [], []
    for k, d in enumerate(case.od):
        n = int(round(d.demand_veh_per_h * case.departure_end_min / 60.0))
        od.append(np.full(n, k))
        dep.append((np.arange(n) + 0.5) * case.departure_end_min / n)
    o, t = np.concatenate(od), np.concatenate(dep)
    order = np.argsort(t, kind="stable")
    return Vehicles(o[order], np.full(o.size, -1), t[order], np.zeros(o.size, dtype=bool))


def _uxsim(case: TransportCase, veh: Vehicles, routes: list[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray,
                                                                                      np.ndarray]:
    """(link vehicle counts, link mean travel time [min], per-vehicle door-to-door [min]) from UXsim."""
    net = case.network
    speed = 10.0  # m/s; length = speed x t0 so that the free-flow time is t0
    w = uxsim.World(name="nd", deltan=1, tmax=case.horizon_min * 60.0, print_mode=0, save_mode=0, show_mode=0,
                    random_seed=0, vehicle_logging_timestep_interval=1)
    for n in net.nodes.tolist():
        w.addNode(f"n{n}", 0, 0)
    for k in range(net.n_links):
        w.addLink(f"l{k}", f"n{net.from_node[k]}", f"n{net.to_node[k]}", length=speed * 60.0 * net.free_flow_min[k],
                  free_flow_speed=speed, number_of_lanes=6, capacity_out=net.capacity_veh_per_h[k] / 3600.0)
    vehicles = []
    for v in range(veh.n):
        d = case.od[int(veh.od[v])]
        x = w.addVehicle(f"n{d.origin}", f"n{d.destination}", float(veh.departure_min[v] * 60.0), name=f"v{v}")
        x.enforce_route([f"l{k}" for k in routes[v]])
        vehicles.append(x)
    w.exec_simulation()
    counts = np.zeros(net.n_links)
    sums = np.zeros(net.n_links)
    door = np.full(veh.n, np.nan)
    for v, x in enumerate(vehicles):
        links, times = x.traveled_route()
        times = list(times)
        for i, link in enumerate(links.links):
            k = int(link.name[1:])
            counts[k] += 1
            sums[k] += times[i + 1] - times[i]
        if x.state == "end":
            door[v] = (x.arrival_time - x.departure_time) / 60.0
    with np.errstate(invalid="ignore"):
        return counts, sums / counts / 60.0, door


def _compare(demand_scale: float) -> dict[str, float]:
    case = _case(demand_scale)
    sets = choice_sets(case)
    veh = _vehicles(case)
    route = np.zeros(veh.n, dtype=np.int64)  # every OD on its free-flow shortest route
    ld = load_network(case, sets, veh, route)
    ours_counts = np.array([e.shape[0] for e in ld.link_entry], dtype=float)
    ours_tt = np.array([np.mean(e[:, 1] - e[:, 0]) if e.size else np.nan for e in ld.link_entry])
    roads = [sets.plain[int(veh.od[v])][0].arcs[1:] for v in range(veh.n)]
    ux_counts, ux_tt, ux_door = _uxsim(case, veh, roads)
    used = ours_counts > 0
    rel_tt = np.abs(ours_tt[used] - ux_tt[used]) / ux_tt[used]
    door = ld.arrival_min - ld.departure_min
    rel_door = np.abs(door - ux_door) / ux_door
    vc = ld.link_inflow_veh * (60.0 / case.step_min) / case.network.capacity_veh_per_h[:, None]
    return {"max_vc": float(vc.max()), "flow_diff_veh": float(np.abs(ours_counts - ux_counts).max()),
            "max_link_time_rel": float(rel_tt.max()), "mean_link_time_rel": float(rel_tt.mean()),
            "mean_door_rel": float(np.nanmean(rel_door)), "ux_arrived": float(np.isfinite(ux_door).sum()),
            "n": float(veh.n)}


def test_loading_matches_uxsim_below_capacity() -> None:
    r = _compare(0.4)  # 72 veh/h per OD pair, every OD on its shortest route: v/c <= ~0.5
    print("below capacity:", r)
    assert r["max_vc"] <= 0.75
    assert r["ux_arrived"] == r["n"]
    assert r["flow_diff_veh"] == 0.0
    assert r["max_link_time_rel"] <= 0.05
    assert r["mean_door_rel"] <= 0.05


def test_loading_vs_uxsim_above_capacity_is_measured() -> None:
    r = _compare(0.9)  # 162 veh/h per OD pair on the shortest routes: 4->9 at v/c 1.08
    print("above capacity (differences by design, reported not asserted):", r)
    assert r["max_vc"] > 1.0
    assert r["flow_diff_veh"] == 0.0  # the same vehicles traverse the same links in both
