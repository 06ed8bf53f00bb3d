"""Choice sets: the routes a vehicle may take, over an arc table of road links and virtual arcs.

Arc table: arcs 0..L-1 are the road links, L..L+S-1 the station arcs (plug-in: queue + charge), then one
virtual origin arc per origin (the entry queue whose service rate is the total capacity of the links leaving
the origin). A non-charging route is origin arc + a simple road path o -> d; a charging route via station s
is origin arc + a simple path o -> node(s) + station arc s + a simple path node(s) -> d.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tno.network import TransportCase, TransportInputError


@dataclass(frozen=True)
class Route:
    arcs: tuple[int, ...]  # arc indices in travel order (origin arc first)
    station: int  # station index, -1 for a non-charging route
    n_before_station: int  # number of arcs before the station arc (all arcs when station == -1)
    free_flow_min: float  # road free-flow time (station and origin arcs excluded)
    to_station_min: float = 0.0  # free-flow road time from the origin to the station (0 without one)


@dataclass(frozen=True)
class ChoiceSets:
    """Routes per OD pair: ``plain[k]`` non-charging, ``charging[k]`` via a station (k = OD index)."""

    n_links: int
    n_stations: int
    origins: tuple[int, ...]  # origin node of each origin arc
    plain: tuple[tuple[Route, ...], ...]
    charging: tuple[tuple[Route, ...], ...]

    @property
    def n_arcs(self) -> int:
        return self.n_links + self.n_stations + len(self.origins)

    def origin_arc(self, origin: int) -> int:
        return self.n_links + self.n_stations + self.origins.index(origin)


def simple_paths(case: TransportCase, source: int, target: int) -> list[tuple[int, ...]]:
    """Every simple road path (link indices) from ``source`` to ``target``, by depth-first search."""
    net = case.network
    out: dict[int, list[int]] = {}
    for k in range(net.n_links):
        out.setdefault(int(net.from_node[k]), []).append(k)
    found: list[tuple[int, ...]] = []
    if source == target:
        return [()]

    def walk(node: int, seen: set[int], path: list[int]) -> None:
        for k in out.get(node, []):
            nxt = int(net.to_node[k])
            if nxt in seen:
                continue
            path.append(k)
            if nxt == target:
                found.append(tuple(path))
            else:
                seen.add(nxt)
                walk(nxt, seen, path)
                seen.discard(nxt)
            path.pop()

    walk(source, {source}, [])
    return found


def choice_sets(case: TransportCase) -> ChoiceSets:
    """Routes of every OD pair; refuses an OD pair with no road path (or, with charging demand, no station
    it can reach and leave towards its destination). Routes are sorted by free-flow time (charging routes:
    ties by the nearer station, then the station order), so route 0 is the shortest-path choice. Routes
    longer than ``detour_factor`` x the shortest free-flow time of their kind are dropped from the choice
    set (stated in the case)."""
    net = case.network
    t0 = net.free_flow_min
    n_l, n_s = net.n_links, len(case.stations)
    origins = tuple(sorted({d.origin for d in case.od}))
    plain: list[tuple[Route, ...]] = []
    charging: list[tuple[Route, ...]] = []
    for d in case.od:
        o_arc = n_l + n_s + origins.index(d.origin)
        paths = simple_paths(case, d.origin, d.destination)
        if not paths:
            raise TransportInputError(f"OD pair ({d.origin},{d.destination}): no road path from {d.origin} to "
                                      f"{d.destination} in network '{net.name}'")
        routes = [Route((o_arc, *p), -1, 1 + len(p), float(t0[list(p)].sum())) for p in paths]
        best = min(r.free_flow_min for r in routes)
        plain.append(tuple(sorted((r for r in routes if r.free_flow_min <= case.detour_factor * best + 1e-9),
                                  key=lambda r: r.free_flow_min)))
        via: list[Route] = []
        for s, st in enumerate(case.stations):
            for p1 in simple_paths(case, d.origin, st.road_node):
                for p2 in simple_paths(case, st.road_node, d.destination):
                    via.append(Route((o_arc, *p1, n_l + s, *p2), s, 1 + len(p1),
                                     float(t0[list(p1)].sum() + t0[list(p2)].sum()), float(t0[list(p1)].sum())))
        if case.charging_share > 0 and d.demand_veh_per_h > 0 and not via:
            raise TransportInputError(f"OD pair ({d.origin},{d.destination}): no path through any charging station")
        if via:
            best = min(r.free_flow_min for r in via)
            via = sorted((r for r in via if r.free_flow_min <= case.detour_factor * best + 1e-9),
                         key=lambda r: (r.free_flow_min, r.to_station_min, r.station))
        charging.append(tuple(via))
    return ChoiceSets(n_l, n_s, origins, tuple(plain), tuple(charging))


def incidence(routes: tuple[Route, ...], n_arcs: int) -> np.ndarray:
    """(R, A) 0/1 matrix of the arcs each route uses."""
    m = np.zeros((len(routes), n_arcs))
    for r, route in enumerate(routes):
        m[r, list(route.arcs)] = 1.0
    return m
