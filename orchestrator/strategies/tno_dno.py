"""The TNO-DNO fixed-point loop (power-transport coupling, the fourth paper: Liu Zhijian, Dai Jing, Yang
Lingrui, Automation of Electric Power Systems, DOI 10.7500/AEPS20230728004).

Round k: the TNO answers the station prices lambda^k (S, P) [$/MWh] with its route/station equilibrium and the
resulting station arrival envelopes; the aggregator turns each station's arrivals into an EV cluster zonotope
(aggregator.zonotope, one shared generator matrix); the DSO dispatches the feeder with those clusters and
returns its DLMPs at the station nodes, d^k. Prices are damped, lambda^{k+1} = lambda^k + ``damping`` (d^k -
lambda^k) (DLMPs jump between the curtailment and the load-shedding penalties when an EV more or less
plugs in, so the undamped map oscillates); the TNO's MSA step continues across rounds (1/(n+1), n its
iterations so far), so that route and station switching dies out over the loop. Stop when the applied price change
max |lambda^{k+1} - lambda^k| <= ``price_tol_usd_per_mwh`` AND the station arrivals changed by at most
``arrival_tol`` (sum_s |n_s^k - n_s^{k-1}| / number of charging EVs). Round 0 prices are the DLMPs of the
feeder without EVs. The undamped residual max |d^k - lambda^k| is reported too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from aggregator.fleet import EV, Station
from aggregator.zonotope import ZonotopeFlexibility, cluster_generators, disaggregate_zonotope_split, fit_zonotopes
from dso.model import FeederDispatch
from dso.problem import DsoProblem
from tno.network import ChargingStation, EvType
from tno.operator import Mode, StationArrivals, TnoResponse

ZONOTOPE_SHIFTS = (1, 2, 4, 8)  # 5, 10, 20, 40 minutes


def v2g_efficiency_of(ev_types: Sequence[EvType]) -> float | None:
    """The one-way efficiency of the V2G-capable EV types (the clusters' V2G generators need one; public per
    EV type like the charging powers), None when no type has V2G; refuses V2G types of different efficiencies."""
    effs = {t.efficiency for t in ev_types if t.v2g_share > 0}
    if len(effs) > 1:
        raise ValueError(f"V2G EV types have efficiencies {sorted(effs)}: the clusters' V2G generators need one")
    return effs.pop() if effs else None


@dataclass
class LoopRound:
    price_change_usd_per_mwh: float  # applied (after averaging)
    residual_usd_per_mwh: float  # max |DLMP - price the TNO saw|
    arrival_change: float  # share of the charging EVs that changed station (by station counts)
    station_arrivals: list[int]
    equilibrium_gap: float
    tno_iterations: int
    dso_solve_s: float


@dataclass
class LoopResult:
    mode: Mode
    tno: TnoResponse
    zonotope: ZonotopeFlexibility
    evs: list[EV]
    dispatch: FeederDispatch
    price_usd_per_mwh: np.ndarray  # (S, P) last prices the TNO answered
    dlmp_station_usd_per_mwh: np.ndarray  # (S, P) DSO prices of the last dispatch
    ev_kw: np.ndarray  # (n_evs, P) disaggregated per-EV schedules, net grid side (charging positive) [kW]
    ev_unmet_kwh: np.ndarray  # (n_evs,)
    rounds: list[LoopRound] = field(default_factory=list)
    converged: bool = False
    wall_s: float = 0.0
    ev_discharge_kw: np.ndarray | None = None  # (n_evs, P) grid-side discharging part of ``ev_kw`` [kW]


def arrivals_to_fleet(arr: StationArrivals, stations: list[Station]) -> list[EV]:
    """The aggregator's EVs of the arrival envelopes (each plugs in at its own station only)."""
    return [EV(ev_id=arr.ev_id[i], arrival_h=float(arr.plug_start_h[i]), departure_h=float(arr.plug_end_h[i]),
               energy_need_kwh=float(arr.need_kwh[i]), capacity_kwh=float(arr.capacity_kwh[i]),
               soc_arrival_kwh=float(arr.soc_arrival_kwh[i]), p_charge_kw=float(arr.p_charge_kw[i]),
               p_discharge_kw=float(arr.p_discharge_kw[i]), efficiency=float(arr.efficiency[i]),
               station=stations[int(arr.station[i])].station_id)
            for i in range(len(arr.ev_id)) if arr.need_kwh[i] > 0]


class TransportSide(Protocol):
    """The TNO as the loop sees it: in this process (tno.operator.TransportOperator) or behind gRPC
    (orchestrator.system.tno_client.RemoteTransportOperator)."""

    def respond(self, price_usd_per_mwh: np.ndarray, mode: Mode = "equilibrium", max_iter: int = 30,
                gap_tol: float = 0.01) -> TnoResponse: ...


class CouplingLoop:
    """One DSO problem built once (DPP: the clusters are Parameters) and the TNO, iterated by prices.
    ``stations`` and the clock (``step_min``, ``n_periods``) are public: where the stations plug into the
    feeder and the dispatch resolution. ``v2g_efficiency``: the clusters include V2G discharging (the DSO
    problem must be built with :func:`aggregator.zonotope.cluster_generators` of the same efficiency); None:
    charging only."""

    def __init__(self, tno: TransportSide, dso: DsoProblem, import_price_usd_per_mwh: float,
                 stations: Sequence[ChargingStation], step_min: float, n_periods: int,
                 v2g_efficiency: float | None = None) -> None:
        self.tno, self.dso = tno, dso
        self.stations = [Station(s.station_id, s.feeder_node, s.plugs * s.p_plug_kw) for s in stations]
        self.node_idx = np.array([s.feeder_node - 1 for s in stations])
        self.dt_h = step_min / 60.0
        self.n_periods = n_periods
        self.v2g_efficiency = v2g_efficiency
        self.generators = cluster_generators(self.n_periods, ZONOTOPE_SHIFTS, v2g_efficiency)
        built = dso.model.parameters["ev_zono.beta_mw"].shape[1]
        if built != self.generators.shape[1]:
            raise ValueError(f"the DSO's EV clusters have {built} generators, the loop's {self.generators.shape[1]} "
                             f"(v2g_efficiency={v2g_efficiency!r}): build the feeder with cluster_generators(...)")
        self.import_price = np.full(self.n_periods, float(import_price_usd_per_mwh))

    def _dispatch(self, z: ZonotopeFlexibility | None) -> tuple[FeederDispatch, float]:
        par = self.dso.model.parameters
        if z is None:
            par["ev_zono.c_mw"].value = np.zeros(par["ev_zono.c_mw"].shape)
            par["ev_zono.beta_mw"].value = np.zeros(par["ev_zono.beta_mw"].shape)
        else:
            par["ev_zono.c_mw"].value = z.c_mw
            par["ev_zono.beta_mw"].value = z.beta_mw
        sol = self.dso.solve(price_usd_per_mwh=self.import_price)
        return sol.dispatch, sol.solve_s

    def _cluster(self, arr: StationArrivals) -> tuple[list[EV], ZonotopeFlexibility]:
        evs = arrivals_to_fleet(arr, self.stations)
        z = fit_zonotopes(evs, self.stations, dt_h=self.dt_h, n_periods=self.n_periods, shifts=ZONOTOPE_SHIFTS,
                          method="per_ev", v2g_efficiency=self.v2g_efficiency)
        return evs, z

    def run(self, mode: Mode = "equilibrium", max_rounds: int = 20, price_tol_usd_per_mwh: float = 5.0,
            arrival_tol: float = 0.02, tno_max_iter: int = 30, tno_gap_tol: float = 0.01,
            damping: float = 0.5) -> LoopResult:
        t0 = time.perf_counter()
        d0, _ = self._dispatch(None)
        price = d0.dlmp_usd_per_mwh[self.node_idx]
        prev_counts: np.ndarray | None = None
        rounds: list[LoopRound] = []
        converged = False
        n_st = len(self.stations)
        k = 0
        while True:
            k += 1
            resp = self.tno.respond(price, mode=mode, max_iter=tno_max_iter, gap_tol=tno_gap_tol)
            evs, z = self._cluster(resp.arrivals)
            disp, solve_s = self._dispatch(z)
            dlmp = disp.dlmp_usd_per_mwh[self.node_idx]
            counts = resp.arrivals.counts(n_st)
            n_ev = max(int(counts.sum()), 1)
            change = 1.0 if prev_counts is None else float(np.abs(counts - prev_counts).sum() / n_ev)
            new_price = price + damping * (dlmp - price)
            step = float(np.max(np.abs(new_price - price)))
            rounds.append(LoopRound(step, float(np.max(np.abs(dlmp - price))), change, counts.tolist(),
                                    resp.gap, resp.iterations, solve_s))
            if mode == "shortest_path":
                converged = True  # no feedback: one round
                break
            if step <= price_tol_usd_per_mwh and change <= arrival_tol:
                converged = True
                break
            if k >= max_rounds:
                break
            price, prev_counts = new_price, counts
        if evs:
            p_ch, p_dis = disaggregate_zonotope_split(z, disp.ev_zono_xi)
        else:
            p_ch = p_dis = np.zeros((0, self.n_periods))
        eta = np.array([e.efficiency for e in evs])
        need = np.array([e.energy_need_kwh for e in evs])
        # stored gain of each EV's own schedule: eta p+ - p- / eta (one-way efficiency both ways)
        delivered = (eta * p_ch.sum(axis=1) - p_dis.sum(axis=1) / eta) * self.dt_h if evs else np.zeros(0)
        return LoopResult(mode, resp, z, evs, disp, price, dlmp, p_ch - p_dis, np.maximum(need - delivered, 0.0),
                          rounds, converged, time.perf_counter() - t0, p_dis)
