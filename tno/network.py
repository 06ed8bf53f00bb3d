"""The transport network operator's private data: road network, travel demand, charging stations, EV types.

Everything here is validated on construction; a bad element is refused with an error naming it (link id,
OD pair, station id, EV type) and the bad value. Times are minutes, flows vehicles per hour, energies kWh,
powers kW, money $.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"
RENEWABLE_KINDS = ("wind", "pv", "none")


class TransportInputError(ValueError):
    """Bad transport input; the message names the element (link, OD pair, station, EV type) and the value."""


@dataclass(frozen=True)
class RoadNetwork:
    """Directed road links with a BPR-type impedance t = t0 (1 + alpha (x / C)^beta) (Bureau of Public Roads,
    Traffic Assignment Manual, 1964)."""

    name: str
    link_id: tuple[str, ...]  # (L,)
    from_node: np.ndarray  # (L,) int node label
    to_node: np.ndarray  # (L,) int node label
    free_flow_min: np.ndarray  # (L,) t0 [min]
    capacity_veh_per_h: np.ndarray  # (L,) C [veh/h]
    bpr_alpha: float = 0.15
    bpr_beta: float = 4.0

    def __post_init__(self) -> None:
        for name in ("from_node", "to_node"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.int64).reshape(-1))
        for name in ("free_flow_min", "capacity_veh_per_h"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=float).reshape(-1))
        n = len(self.link_id)
        for name in ("from_node", "to_node", "free_flow_min", "capacity_veh_per_h"):
            if getattr(self, name).shape != (n,):
                raise TransportInputError(f"network '{self.name}': {name} has {getattr(self, name).size} entries, "
                                          f"{n} links")
        if len(set(self.link_id)) != n:
            raise TransportInputError(f"network '{self.name}': duplicate link ids")
        for name, unit in (("free_flow_min", "min"), ("capacity_veh_per_h", "veh/h")):
            arr = getattr(self, name)
            bad = np.flatnonzero(~(arr > 0) | ~np.isfinite(arr))
            if bad.size:
                k = int(bad[0])
                raise TransportInputError(f"link '{self.link_id[k]}' ({self.from_node[k]}->{self.to_node[k]}): "
                                          f"{name}={float(arr[k])!r} {unit} must be finite and > 0")
        loops = np.flatnonzero(self.from_node == self.to_node)
        if loops.size:
            raise TransportInputError(f"link '{self.link_id[int(loops[0])]}': from_node == to_node")
        if not (self.bpr_alpha >= 0 and self.bpr_beta >= 1):
            raise TransportInputError(f"network '{self.name}': bpr_alpha={self.bpr_alpha!r} must be >= 0 and "
                                      f"bpr_beta={self.bpr_beta!r} >= 1")

    @property
    def n_links(self) -> int:
        return len(self.link_id)

    @property
    def nodes(self) -> np.ndarray:
        return np.unique(np.concatenate([self.from_node, self.to_node]))


@dataclass(frozen=True)
class OdDemand:
    """Vehicles per hour departing from ``origin`` to ``destination`` (constant over the departure window)."""

    origin: int
    destination: int
    demand_veh_per_h: float


@dataclass(frozen=True)
class ChargingStation:
    """A charging station on road node ``road_node``, attached to feeder node ``feeder_node`` (1-based)."""

    station_id: str
    road_node: int
    feeder_node: int
    plugs: int
    p_plug_kw: float  # charging power of one plug [kW]
    renewable: str  # "wind", "pv" or "none": the renewable plant at its feeder node


@dataclass(frozen=True)
class EvType:
    """An EV class: share of the charging vehicles, battery, energy need at the station, charging power."""

    name: str
    share: float  # of the charging vehicles, shares sum to 1
    capacity_kwh: float
    soc_arrival_kwh: float
    need_kwh: float  # stored-energy gain required before leaving the station
    p_charge_kw: float  # grid side
    efficiency: float
    #: plug-in time at the station = dwell_factor x the shortest charging time (>= 1: the slack is the flexibility)
    dwell_factor: float
    value_of_time_usd_per_h: float
    v2g_share: float = 0.0  # share of this type able to discharge (V2G)

    def charge_min(self, p_plug_kw: float) -> float:
        """Plug-in time [min] at a plug of ``p_plug_kw``: dwell_factor x need / (eta min(p_ev, p_plug))."""
        return 60.0 * self.dwell_factor * self.need_kwh / (self.efficiency * min(self.p_charge_kw, p_plug_kw))


@dataclass(frozen=True)
class TransportCase:
    """The TNO's whole private data: network, demand, stations, EV types and the study clock."""

    network: RoadNetwork
    od: tuple[OdDemand, ...]
    stations: tuple[ChargingStation, ...]
    ev_types: tuple[EvType, ...]
    horizon_min: float = 480.0  # the study clock (8 h)
    step_min: float = 5.0  # reporting and dispatch resolution
    departure_end_min: float = 330.0  # vehicles depart in [0, departure_end_min)
    charging_share: float = 0.2  # share of the vehicles that are EVs going to charge
    value_of_time_usd_per_h: float = 15.0  # of the non-charging vehicles
    queue_penalty_usd_per_h: float = 10.0  # extra cost of an hour queueing for a plug (beyond the time cost)
    #: paths whose free-flow time exceeds this multiple of the OD's shortest are not choice candidates
    detour_factor: float = 2.0
    seed: int = 1
    feeder_nodes: frozenset[int] = field(default_factory=lambda: frozenset(range(1, 34)))

    def __post_init__(self) -> None:
        nodes = set(self.network.nodes.tolist())
        for d in self.od:
            for what, node in (("origin", d.origin), ("destination", d.destination)):
                if node not in nodes:
                    raise TransportInputError(f"OD pair ({d.origin},{d.destination}): {what} node {node} is not a "
                                              f"node of network '{self.network.name}'")
            if not (np.isfinite(d.demand_veh_per_h) and d.demand_veh_per_h >= 0):
                raise TransportInputError(f"OD pair ({d.origin},{d.destination}): demand_veh_per_h="
                                          f"{d.demand_veh_per_h!r} must be finite and >= 0")
        if len({s.station_id for s in self.stations}) != len(self.stations):
            raise TransportInputError("stations: duplicate station ids")
        for s in self.stations:
            if s.road_node not in nodes:
                raise TransportInputError(f"station '{s.station_id}': road_node={s.road_node} is not a node of "
                                          f"network '{self.network.name}' (nodes {min(nodes)}..{max(nodes)})")
            if s.feeder_node not in self.feeder_nodes:
                raise TransportInputError(f"station '{s.station_id}': feeder_node={s.feeder_node} is not a feeder "
                                          "node")
            if s.plugs < 1 or not s.p_plug_kw > 0:
                raise TransportInputError(f"station '{s.station_id}': plugs={s.plugs!r} must be >= 1 and "
                                          f"p_plug_kw={s.p_plug_kw!r} > 0")
            if s.renewable not in RENEWABLE_KINDS:
                raise TransportInputError(f"station '{s.station_id}': renewable={s.renewable!r} is unknown "
                                          f"(known: {', '.join(RENEWABLE_KINDS)})")
        if self.ev_types and abs(sum(t.share for t in self.ev_types) - 1.0) > 1e-9:
            raise TransportInputError(f"EV types: shares sum to {sum(t.share for t in self.ev_types)!r}, not 1")
        for t in self.ev_types:
            checks = {"share": 0 <= t.share <= 1, "capacity_kwh": t.capacity_kwh > 0,
                      "need_kwh": 0 < t.need_kwh <= t.capacity_kwh - t.soc_arrival_kwh,
                      "p_charge_kw": t.p_charge_kw > 0, "efficiency": 0 < t.efficiency <= 1,
                      "dwell_factor": t.dwell_factor >= 1, "value_of_time_usd_per_h": t.value_of_time_usd_per_h >= 0,
                      "v2g_share": 0 <= t.v2g_share <= 1}
            for key, ok in checks.items():
                if not ok:
                    raise TransportInputError(f"EV type '{t.name}': {key}={getattr(t, key)!r} is out of range")
        if not (0 < self.step_min and 0 < self.departure_end_min <= self.horizon_min):
            raise TransportInputError(f"clock: step_min={self.step_min!r}, departure_end_min="
                                      f"{self.departure_end_min!r}, horizon_min={self.horizon_min!r} must satisfy "
                                      "0 < step, 0 < departure_end <= horizon")
        if abs(self.horizon_min / self.step_min - round(self.horizon_min / self.step_min)) > 1e-9:
            raise TransportInputError(f"clock: horizon_min={self.horizon_min!r} is not a multiple of step_min")
        if not 0 <= self.charging_share <= 1:
            raise TransportInputError(f"charging_share={self.charging_share!r} must be in [0, 1]")

    @property
    def n_periods(self) -> int:
        return round(self.horizon_min / self.step_min)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def nguyen_dupuis(demand_scale: float = 1.0) -> tuple[RoadNetwork, tuple[OdDemand, ...]]:
    """The bundled Nguyen-Dupuis network and its four OD pairs (data/PROVENANCE.md); demand x ``demand_scale``."""
    links = _read_csv(DATA_DIR / "nguyen_dupuis_links.csv")
    net = RoadNetwork(
        name="nguyen-dupuis",
        link_id=tuple(r["link"] for r in links),
        from_node=np.array([int(r["from_node"]) for r in links]),
        to_node=np.array([int(r["to_node"]) for r in links]),
        free_flow_min=np.array([float(r["free_flow_min"]) for r in links]),
        capacity_veh_per_h=np.array([float(r["capacity_veh_per_h"]) for r in links]),
    )
    od = tuple(OdDemand(int(r["origin"]), int(r["destination"]), float(r["demand_veh_per_h"]) * demand_scale)
               for r in _read_csv(DATA_DIR / "nguyen_dupuis_od.csv"))
    return net, od
