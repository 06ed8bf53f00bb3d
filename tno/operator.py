"""The TNO as an operator: it holds the road network and the travel demand privately and answers station
prices with station arrival envelopes (what crosses to the aggregator and the DSO: per charging EV its
station, plug-in window and battery data; no routes, no origins, no destinations).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from tno.equilibrium import Assignment, equilibrate, shortest_path_assignment
from tno.loading import make_vehicles
from tno.network import TransportCase, TransportInputError
from tno.paths import choice_sets

Mode = Literal["equilibrium", "shortest_path"]


@dataclass(frozen=True)
class StationArrivals:
    """Charging EVs as plug-in envelopes (hours since the start of the study clock, kWh, kW)."""

    ev_id: tuple[str, ...]  # (n,)
    ev_type: tuple[str, ...]  # (n,)
    station: np.ndarray  # (n,) int station index
    plug_start_h: np.ndarray  # (n,)
    plug_end_h: np.ndarray  # (n,) clipped at the horizon
    need_kwh: np.ndarray  # (n,) stored-energy gain before leaving (reduced where the horizon cut the window)
    capacity_kwh: np.ndarray
    soc_arrival_kwh: np.ndarray
    p_charge_kw: np.ndarray  # grid side, min(EV, plug)
    p_discharge_kw: np.ndarray  # 0 unless V2G
    efficiency: np.ndarray
    need_cut_kwh: float  # energy need removed because plug-in windows ran past the horizon

    def counts(self, n_stations: int) -> np.ndarray:
        return np.bincount(self.station, minlength=n_stations)


@dataclass(frozen=True)
class TnoResponse:
    """What the TNO answers: the arrivals and how close its route choice is to equilibrium. ``assignment``
    (routes, loading: the TNO's private state) is there only when the TNO runs in this process."""

    arrivals: StationArrivals
    gap: float
    gap_charging: float
    iterations: int
    assignment: Assignment | None = None


class TransportOperator:
    """Route and station choice of every vehicle for given station prices (S, P) [$/MWh]."""

    def __init__(self, case: TransportCase) -> None:
        self.case = case
        self.sets = choice_sets(case)
        self.vehicles = make_vehicles(case)
        self._routes: np.ndarray | None = None
        self._msa_steps = 0  # MSA iterations made so far (the step size continues across price rounds)

    def respond(self, price_usd_per_mwh: np.ndarray, mode: Mode = "equilibrium", max_iter: int = 30,
                gap_tol: float = 0.01) -> TnoResponse:
        case = self.case
        price = np.asarray(price_usd_per_mwh, dtype=float)
        if price.shape != (len(case.stations), case.n_periods):
            raise TransportInputError(f"station prices: shape {price.shape}, expected "
                                      f"({len(case.stations)}, {case.n_periods}) (stations x periods)")
        if not np.all(np.isfinite(price)):
            raise TransportInputError("station prices: non-finite entries")
        if mode == "shortest_path":
            a = shortest_path_assignment(case, self.sets, self.vehicles, price)
        elif mode == "equilibrium":
            a = equilibrate(case, self.sets, self.vehicles, price, start=self._routes, max_iter=max_iter,
                            gap_tol=gap_tol, step_offset=self._msa_steps)
            self._routes = a.route_index
            self._msa_steps += a.iterations
        else:
            raise TransportInputError(f"mode={mode!r} is unknown (known: equilibrium, shortest_path)")
        return TnoResponse(self.arrivals(a), a.gap, a.gap_charging, a.iterations, a)

    def station_of(self, a: Assignment) -> np.ndarray:
        """(V,) station index of each vehicle's route (-1: not charging)."""
        veh = self.vehicles
        return np.array([veh.routes_of(self.sets, v)[int(a.route_index[v])].station for v in range(veh.n)],
                        dtype=np.int64)

    def arrivals(self, a: Assignment) -> StationArrivals:
        case, veh, ld = self.case, self.vehicles, a.loading
        ev = np.flatnonzero(veh.kind >= 0)
        st = self.station_of(a)[ev]
        horizon_h = case.horizon_min / 60.0
        dt_h = case.step_min / 60.0
        types = [case.ev_types[int(k)] for k in veh.kind[ev]]
        p_ch = np.array([min(t.p_charge_kw, case.stations[int(s)].p_plug_kw) for t, s in zip(types, st, strict=True)])
        eta = np.array([t.efficiency for t in types])
        need = np.array([t.need_kwh for t in types])
        start = ld.plug_start_min[ev] / 60.0
        end = np.minimum(ld.plug_end_min[ev] / 60.0, horizon_h)
        # whole periods inside the window (as the aggregator counts them) bound what can be delivered
        covered = np.clip(np.floor(end / dt_h + 1e-9) - np.ceil(start / dt_h - 1e-9), 0, None)
        deliverable = eta * p_ch * covered * dt_h
        keep = (start < horizon_h) & (covered >= 1)
        cut = float(np.sum(need[~keep]) + np.sum(np.maximum(need - deliverable, 0.0)[keep]))
        need = np.minimum(need, deliverable)
        idx = np.flatnonzero(keep)
        v2g = veh.v2g[ev]
        return StationArrivals(
            ev_id=tuple(f"ev{int(ev[i])}" for i in idx),
            ev_type=tuple(types[i].name for i in idx),
            station=st[idx], plug_start_h=start[idx], plug_end_h=end[idx], need_kwh=need[idx],
            capacity_kwh=np.array([types[i].capacity_kwh for i in idx]),
            soc_arrival_kwh=np.array([types[i].soc_arrival_kwh for i in idx]),
            p_charge_kw=p_ch[idx], p_discharge_kw=np.where(v2g[idx], p_ch[idx], 0.0), efficiency=eta[idx],
            need_cut_kwh=cut,
        )
