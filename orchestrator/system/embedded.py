"""The embedded default: every operator's numeric inputs built in this process from a validated case.

Each operator's inputs come from its own package (``tso.inputs``, ``dso.inputs``, ``aggregator.inputs``),
the same functions its service process calls; this module only puts them side by side. The subspaces
still run each on its own actor and hand over only boundary quantities; the whole ``EmbeddedSystem`` is
needed by the baselines that assume one all-knowing planner (``isolated``, ``centralized``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aggregator.fleet import EV, Station, fleet_arrays
from aggregator.flex import (
    FleetFlexibility,
    disaggregate_spatial,
    inner_flexibility,
    uncontrolled_profile,
    uncontrolled_schedule_kw,
)
from aggregator.inputs import fleet_from_case, stations_from_case
from core import windows
from core.case import CaseSpec, load_case
from core.privacy import GaussianMechanism, PrivacyConfig
from dso.inputs import (
    feeder_data,
    feeder_inputs,
    flexibility_from_envelope,
    import_forecast_mw,
    station_distance_ohm,
    station_to_nodes,
)
from dso.model import EvFlexibility, FeederDispatch, FeederInputs
from dso.network import FeederData
from dso.privacy import forecast_sensitivity
from dso.report import EvSettlement, EvStations, FeederReport
from dso.report import publish as publish_feeder
from dso.subspace import DsoSubspace
from orchestrator.runtime.executors import Factory, Shared
from orchestrator.system import SubspaceSet
from tso.model import TsoDispatch, TsoInputs
from tso.network import TransmissionData
from tso.report import TsoReport
from tso.report import publish as publish_tso
from tso.subspace import TsoSubspace


@dataclass(frozen=True)
class LocalAggregator:
    """A DSO's EV aggregator in the same process: settles the dispatched envelopes into per-EV schedules.

    Controlled EVs: whole EVs are allocated to stations (spatial envelopes) and the envelope dispatch is
    disaggregated; uncontrolled: the charge-on-arrival schedule at each EV's own station. The unmet energy
    is computed from the schedules, and the per-station power and EV count is reported with it."""

    fleet: tuple[EV, ...]
    stations: tuple[Station, ...]
    flex: FleetFlexibility
    dt_h: float
    n_periods: int
    controlled: bool = True

    def __call__(self, dispatch: FeederDispatch) -> EvSettlement:
        T, dt, fleet = self.n_periods, self.dt_h, list(self.fleet)
        if not fleet:
            return EvSettlement(unmet_mwh=0.0)
        rounding = 0.0
        if self.controlled:
            share = dispatch.ev_alloc_share if dispatch.ev_alloc_share.size else None
            alloc, dis = disaggregate_spatial(fleet, self.flex, dispatch.ev_p_ch_mw, dispatch.ev_p_dis_mw, share,
                                              list(self.stations), dt, T)
            p_kw, unmet_kwh, used = np.asarray(dis.p_kw), np.asarray(dis.unmet_kwh), alloc.station
            rounding = alloc.rounding_mw
            ids = tuple(ev.ev_id for ev in alloc.fleet)
        else:
            p_kw = uncontrolled_schedule_kw(fleet, list(self.stations), dt, T)
            need = np.array([ev.energy_need_kwh for ev in fleet])
            stored = np.array([ev.efficiency for ev in fleet]) * p_kw.sum(axis=1) * dt
            unmet_kwh, used = np.maximum(need - stored, 0.0), tuple(ev.station for ev in fleet)
            ids = tuple(ev.ev_id for ev in fleet)
        return EvSettlement(unmet_mwh=float(np.sum(unmet_kwh)) / 1e3,
                            stations=self._stations(p_kw, used, rounding), ev_ids=ids,
                            ev_unmet_kwh=np.asarray(unmet_kwh, dtype=float))

    def _stations(self, p_kw: np.ndarray, used: tuple[str, ...], rounding_mw: float) -> EvStations:
        """Net EV power per station and period (charging positive) and the EVs plugged in there, each EV at
        the station the allocation gave it."""
        T, stations = self.n_periods, self.stations
        fa = fleet_arrays(list(self.fleet), list(stations), self.dt_h, T)
        index = {st.station_id: k for k, st in enumerate(stations)}
        station_of_ev = np.array([index[s] for s in used], dtype=np.int64)
        plugged = np.zeros((len(stations), T), dtype=np.int64)
        np.add.at(plugged, (station_of_ev[windows.owner(fa.dwell)], windows.periods(fa.start, fa.dwell, T)), 1)
        p_mw = np.zeros((len(stations), T))
        np.add.at(p_mw, station_of_ev, p_kw / 1e3)
        return EvStations(station_id=tuple(st.station_id for st in stations), node=tuple(st.node for st in stations),
                          p_mw=p_mw, n_evs=plugged, rounding_mw=float(rounding_mw))


@dataclass(frozen=True)
class FeederSystem:
    """One DSO's private data and the EV fleets of the aggregator on its feeder."""

    feeder_id: str
    data: FeederData
    inputs: FeederInputs  # EVs flexible (aggregator envelopes)
    inputs_uncontrolled: FeederInputs  # EVs charge on arrival at full power (fixed withdrawal)
    fleet: tuple[EV, ...]
    stations: tuple[Station, ...]
    flex: FleetFlexibility

    def aggregator(self, controlled: bool = True) -> LocalAggregator:
        """Its EV aggregator, settling dispatches of flexible (``controlled``) or charge-on-arrival EVs."""
        return LocalAggregator(self.fleet, self.stations, self.flex, self.inputs.dt_h, self.inputs.n_periods,
                               controlled)


@dataclass(frozen=True)
class EmbeddedSystem:
    """Every operator's data in this process (see the module docstring)."""

    spec: CaseSpec
    tso_data: TransmissionData
    tso_inputs: TsoInputs
    feeders: tuple[FeederSystem, ...]
    #: every DSO sends through the Gaussian mechanism (``--privacy dp``); None: exact messages
    privacy: PrivacyConfig | None = None

    mode = "embedded"

    @property
    def n_periods(self) -> int:
        return self.spec.periods

    @property
    def dt_h(self) -> float:
        return self.spec.dt_h

    @property
    def feeder_ids(self) -> list[str]:
        return [f.feeder_id for f in self.feeders]

    def subspaces(self, solver: str, ac_check: bool) -> SubspaceSet:
        """Subspace factories with each operator's private data as a shared (``ray.put``) object."""
        t = self.n_periods
        shared: list[object] = [self.tso_data, self.tso_inputs]
        facs: list[Factory] = [
            (TsoSubspace, (Shared(0), Shared(1), self.spec.transmission.losses, solver))]
        for k, f in enumerate(self.feeders):
            j = len(shared)
            shared += [f.data, f.inputs, f.aggregator()]
            facs.append((DsoSubspace, (Shared(j), Shared(j + 1), np.arange(k * t, (k + 1) * t), solver,
                                       Shared(j + 2), ac_check, self.privacy)))
        return SubspaceSet(factories=facs, names=["tso", *self.feeder_ids], shared=shared)

    def forecast_mw(self) -> np.ndarray:
        """What each DSO sends as its forecast (in DP mode the first release of its mechanism, the same draw
        its subspace makes when built)."""
        if self.privacy is None:
            return np.concatenate([import_forecast_mw(f.inputs) for f in self.feeders])
        out = []
        for f in self.feeders:
            mech = GaussianMechanism(self.privacy, f.data.name)
            sens = forecast_sensitivity(f.inputs, self.privacy)
            out.append(mech.release("forecast", {"p": (import_forecast_mw(f.inputs), sens)})["p"])
        return np.concatenate(out)

    # -- the private side: reports of dispatches computed here (isolated, centralized) -------------------
    def tso_report(self, dispatch: TsoDispatch) -> TsoReport:
        return publish_tso(dispatch)

    def feeder_report(self, feeder_id: str, dispatch: FeederDispatch, *, controlled: bool,
                      ac: bool = True) -> FeederReport:
        """The DSO's report of ``dispatch`` (EVs flexible or charging on arrival), as its service would publish it."""
        f = self.feeders[self.feeder_ids.index(feeder_id)]
        inputs = f.inputs if controlled else f.inputs_uncontrolled
        return publish_feeder(f.data, inputs, dispatch, f.aggregator(controlled)(dispatch), ac=ac)


def _feeder(spec: CaseSpec, feeder_id: str) -> FeederSystem:
    T, dt = spec.periods, spec.dt_h
    data = feeder_data(spec, feeder_id)
    stations = stations_from_case(spec, feeder_id)
    nodes = np.array([s.node for s in stations], dtype=int)
    fleet = fleet_from_case(spec, feeder_id, station_distance_ohm(data, nodes) if stations else None)
    flex = inner_flexibility(list(fleet), list(stations), dt, T)
    limits = {s.station_id: s.p_max_kw / 1e3 for s in stations}
    ev_fixed = station_to_nodes(uncontrolled_profile(list(fleet), list(stations), dt, T), nodes, data.n_nodes)
    flexible = feeder_inputs(spec, feeder_id, data, flexibility_from_envelope(flex, limits))
    fixed = feeder_inputs(spec, feeder_id, data, EvFlexibility.empty(), ev_fixed)
    return FeederSystem(feeder_id=feeder_id, data=data, inputs=flexible, inputs_uncontrolled=fixed, fleet=fleet,
                        stations=stations, flex=flex)


def build_system(spec: CaseSpec | str) -> EmbeddedSystem:
    """Build every operator's numeric data; data errors are ``CaseError`` naming the culprit."""
    from tso.inputs import from_case

    if isinstance(spec, str):
        spec = load_case(spec)
    tso_data, tso_inputs = from_case(spec)
    return EmbeddedSystem(spec=spec, tso_data=tso_data, tso_inputs=tso_inputs,
                          feeders=tuple(_feeder(spec, f.feeder_id) for f in spec.feeders))
