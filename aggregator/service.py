"""An EV aggregator as a gRPC service (``gridcoord serve aggregator``): envelopes for its DSO,
disaggregation of the DSO's dispatch into per-EV schedules, reservations."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from aggregator.fleet import EV, Station, plug_in_window
from aggregator.flex import FleetFlexibility, disaggregate_spatial, inner_flexibility
from aggregator.journal import ReservationJournal
from aggregator.redispatch import Rebooking, rebook
from aggregator.reservations import Accepted, Refused, Replayed, ReservationBook
from core import convert
from core.rpc import (
    Ctx,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    RoundLedger,
    handle,
    idempotent,
    vector,
)
from core.tariff import TariffError, TouTariff
from core.tls import peer_of
from gridcoord.v1 import aggregator_pb2, aggregator_pb2_grpc, common_pb2

SERVICE_NAME = aggregator_pb2.DESCRIPTOR.services_by_name["AggregatorService"].full_name

#: longest ev_id / station id a reservation may carry (characters); ids are kept for the whole day
MAX_ID_CHARS = 128
#: largest dispatch entry accepted [MW] (a station is a few MW; this only keeps the arithmetic finite)
MAX_DISPATCH_MW = 1e4


@dataclass(frozen=True)
class RebookArgs:
    """A ``Redispatch`` request as the aggregator re-books it, and as its journal keeps it (``asdict``)."""

    t_from: int
    no_show: list[str]
    late_arrival_h: dict[str, float]
    p_ch_mw: list[float]
    p_dis_mw: list[float]

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RebookArgs:
        """The request a previous process journaled (the profiles are checked by ``_rebook``, as a request's)."""
        return cls(t_from=int(state["t_from"]), no_show=list(state["no_show"]),
                   late_arrival_h=dict(state["late_arrival_h"]), p_ch_mw=list(state["p_ch_mw"]),
                   p_dis_mw=list(state["p_dis_mw"]))


class AggregatorServicer(aggregator_pb2_grpc.AggregatorServiceServicer):
    """Holds the fleet of one feeder's stations. Reservations add EVs until the envelopes are first sent."""

    def __init__(self, operator_id: str, fleet: Sequence[EV], stations: Sequence[Station], dt_h: float,
                 n_periods: int, journal_path: str | Path | None = None) -> None:
        self.operator_id = operator_id
        self.stations = tuple(stations)
        self.dt_h, self.n_periods = dt_h, n_periods
        self.book = ReservationBook(self.stations, dt_h, n_periods)
        self.book.preload(fleet)
        #: durable: a restarted service holds what it confirmed, the tariff and the last re-booking
        self.journal = None if journal_path is None else ReservationJournal(journal_path, operator_id, fleet)
        if self.journal is not None:
            self.book.restore(self.journal)
        self.ledger = RoundLedger()
        self.lock = threading.Lock()
        self._fleet: tuple[EV, ...] | None = None
        #: the DSO's published time-of-use tariff (levels, prices per period), shown on confirmations
        self._tariff: tuple[list[str], list[float]] | None = None
        self._flex: FleetFlexibility | None = None
        #: the fleet that came after the last Redispatch (no-shows gone, late EVs moved)
        self._rebooked: Rebooking | None = None
        if self.journal is not None:
            self._restore_state(self.journal)

    def _restore_state(self, journal: ReservationJournal) -> None:
        """The tariff and the last re-booking a previous process journaled (the re-booking is computed again
        from the closed book and the journaled request: the same fleet, envelopes and past)."""
        tariff = journal.load_state("tariff")
        if tariff is not None:
            self._tariff = (list(tariff["level"]), [float(p) for p in tariff["price_usd_per_mwh"]])
        req = journal.load_state("rebook")
        if req is not None:
            with self.lock:
                self._rebooked = self._rebook(RebookArgs.from_state(req))

    def _envelopes(self) -> tuple[tuple[EV, ...], FleetFlexibility]:
        """Freeze the fleet on first use: the envelopes a DSO dispatches must be those it disaggregates
        (the book closes atomically, so no reservation is accepted after the fleet was taken)."""
        if self._fleet is None:
            self._fleet = self.book.close()
            self._flex = inner_flexibility(list(self._fleet), list(self.stations), self.dt_h, self.n_periods)
        assert self._flex is not None
        return self._fleet, self._flex

    def Describe(self, request: common_pb2.DescribeRequest, context: Ctx) -> common_pb2.DescribeResponse:
        def run() -> common_pb2.DescribeResponse:
            return common_pb2.DescribeResponse(operator_id=self.operator_id, role="aggregator",
                                               n_periods=self.n_periods, dt_h=self.dt_h, n_boundary=0)

        return idempotent(self.ledger, context, "Describe", request, common_pb2.DescribeResponse, run)

    def GetEnvelope(self, request: aggregator_pb2.EnvelopeRequest, context: Ctx) -> aggregator_pb2.Envelope:
        def run() -> aggregator_pb2.Envelope:
            with self.lock:
                _, flex = self._envelopes()
                return convert.envelope_to_proto(flex, self.n_periods, self.dt_h, self.stations)

        return idempotent(self.ledger, context, "GetEnvelope", request, aggregator_pb2.Envelope, run)

    def Dispatch(self, request: aggregator_pb2.DispatchRequest, context: Ctx) -> aggregator_pb2.DispatchResponse:
        def run() -> aggregator_pb2.DispatchResponse:
            with self.lock:
                fleet, flex = self._envelopes()
                if request.redispatched:
                    if self._rebooked is None:
                        raise FailedPrecondition("redispatched: no Redispatch yet (nothing re-booked)")
                    fleet, flex = self._rebooked.fleet, self._rebooked.flex
                w = int(np.sum(flex.dwell))
                p_ch = np.asarray(vector("p_ch_mw", request.p_ch_mw, w, nonneg=True, limit=MAX_DISPATCH_MW))
                p_dis = np.asarray(vector("p_dis_mw", request.p_dis_mw, w, nonneg=True, limit=MAX_DISPATCH_MW))
                n_env = flex.n_envelopes
                share = (np.asarray(vector("alloc_share", request.alloc_share, n_env, nonneg=True, limit=1.0 + 1e-6))
                         if len(request.alloc_share) else None)
                if share is None and flex.is_spatial:
                    raise InvalidArgument(f"alloc_share: required, {n_env} values (envelopes of one allocation group "
                                          "share its EVs' energy)")
                if len(request.dlmp_usd_per_mwh):
                    vector("dlmp_usd_per_mwh", request.dlmp_usd_per_mwh)
                if not fleet:
                    return aggregator_pb2.DispatchResponse(n_evs=0)
                self._check_group_energy(flex, p_ch, p_dis)
                alloc, dis = disaggregate_spatial(list(fleet), flex, p_ch, p_dis, share,
                                                  list(self.stations), self.dt_h, self.n_periods)
                station_mw = np.asarray(alloc.station_mw)
                unmet = np.asarray(dis.unmet_kwh)
                if not (np.all(np.isfinite(unmet)) and np.all(np.isfinite(station_mw))):
                    raise InvalidArgument("p_ch_mw/p_dis_mw: the dispatch gives no finite per-EV schedule (an "
                                          "allocation group with zero stored energy?)")
                delivered, outside = self._in_window(alloc.fleet, dis.p_ch_kw, dis.p_dis_kw)
                evs = [aggregator_pb2.EvOutcome(ev_id=ev.ev_id, station=ev.station, need_kwh=ev.energy_need_kwh,
                                                delivered_kwh=float(d), unmet_kwh=float(u))
                       for ev, d, u in zip(alloc.fleet, delivered, unmet, strict=True)]
                return aggregator_pb2.DispatchResponse(n_evs=len(fleet), unmet_mwh=float(unmet.sum()) / 1e3,
                                                       max_unmet_kwh=float(unmet.max(initial=0.0)),
                                                       station_p_mw=station_mw.ravel().tolist(), evs=evs,
                                                       outside_window_kwh=outside)

        return idempotent(self.ledger, context, "Dispatch", request, aggregator_pb2.DispatchResponse, run)

    def Redispatch(self, request: aggregator_pb2.RebookRequest, context: Ctx) -> aggregator_pb2.Rebooking:
        """No-shows and late arrivals: the envelopes of the EVs that came and their executed past
        (``aggregator.redispatch.rebook``); the next ``Dispatch`` with ``redispatched`` settles against them."""
        def run() -> aggregator_pb2.Rebooking:
            for i, ev_id in enumerate(request.no_show):
                _check_id(f"no_show[{i}]", ev_id)
            for ev_id in request.late_arrival_h:
                _check_id("late_arrival_h", ev_id)
            args = RebookArgs(t_from=int(request.t_from), no_show=list(request.no_show),
                              late_arrival_h=dict(request.late_arrival_h), p_ch_mw=list(request.p_ch_mw),
                              p_dis_mw=list(request.p_dis_mw))
            with self.lock:
                rb = self._rebook(args)
                if self.journal is not None:  # before the answer: a restart settles against this re-booking
                    self.journal.save_state("rebook", asdict(args))
                self._rebooked = rb
            return aggregator_pb2.Rebooking(
                envelope=convert.envelope_to_proto(rb.flex, self.n_periods, self.dt_h, self.stations),
                past_entry=rb.past_entry.tolist(), past_p_ch_mw=rb.past_p_ch_mw.tolist(),
                past_p_dis_mw=rb.past_p_dis_mw.tolist(), late_shortfall_kwh=rb.late_shortfall_kwh,
                n_evs=len(rb.fleet))

        return idempotent(self.ledger, context, "Redispatch", request, aggregator_pb2.Rebooking, run)

    def _rebook(self, a: RebookArgs) -> Rebooking:
        """The fleet that came, re-booked against the day-ahead dispatch (call with ``self.lock`` held)."""
        fleet, flex = self._envelopes()
        w = int(np.sum(flex.dwell))
        p_ch = np.asarray(vector("p_ch_mw", a.p_ch_mw, w, nonneg=True, limit=MAX_DISPATCH_MW))
        p_dis = np.asarray(vector("p_dis_mw", a.p_dis_mw, w, nonneg=True, limit=MAX_DISPATCH_MW))
        if not fleet:
            raise FailedPrecondition("no EVs booked: nothing to re-dispatch")
        self._check_group_energy(flex, p_ch, p_dis)
        return rebook(fleet, flex, p_ch, p_dis, self.stations, a.t_from, a.no_show, a.late_arrival_h, self.dt_h,
                      self.n_periods)

    def _check_group_energy(self, flex: FleetFlexibility, p_ch: np.ndarray, p_dis: np.ndarray) -> None:
        """Every allocation group must gain stored energy: its EVs' schedules are its profile divided by that
        gain (a group dispatched to zero would give NaN schedules, not an error naming the request)."""
        owner = np.repeat(np.arange(flex.n_envelopes), flex.dwell)
        gain = np.bincount(owner, weights=(flex.eta_ch[owner] * p_ch - p_dis / flex.eta_dis[owner]) * self.dt_h,
                           minlength=flex.n_envelopes)
        group_gain = np.bincount(flex.alloc_group, weights=gain)
        if np.any(group_gain <= 0):
            g = int(np.flatnonzero(group_gain <= 0)[0])
            j = int(np.flatnonzero(flex.alloc_group == g)[0])
            raise InvalidArgument(f"p_ch_mw/p_dis_mw: allocation group {g} (envelope {j}, station "
                                  f"'{flex.station_id[j]}') gains {group_gain[g]:.6g} MWh of stored energy; its EVs "
                                  "need more than 0")

    def _in_window(self, fleet: Sequence[EV], p_ch_kw: np.ndarray, p_dis_kw: np.ndarray) -> tuple[np.ndarray, float]:
        """Per EV, stored-energy gain [kWh] counted only inside its own plug-in window (recomputed from its
        arrival and departure, not from the envelopes), and the energy scheduled outside any window [kWh]."""
        arr = np.array([ev.arrival_h for ev in fleet])
        dep = np.array([ev.departure_h for ev in fleet])
        start, dwell = plug_in_window(arr, dep, self.dt_h, self.n_periods)
        k = np.arange(self.n_periods)
        inside = ((k[None, :] - start[:, None]) % self.n_periods) < dwell[:, None]
        eta = np.array([ev.efficiency for ev in fleet])[:, None]
        gain = (eta * p_ch_kw - p_dis_kw / eta) * self.dt_h
        outside = float(np.sum(np.abs(p_ch_kw[~inside])) + np.sum(np.abs(p_dis_kw[~inside]))) * self.dt_h
        return np.where(inside, gain, 0.0).sum(axis=1), outside

    def Reserve(self, request: aggregator_pb2.ReservationRequest, context: Ctx) -> aggregator_pb2.ReservationResponse:
        def run() -> aggregator_pb2.ReservationResponse:
            ev = _ev_of(request)
            remaining = context.time_remaining()
            deadline = None if remaining is None else time.monotonic() + float(remaining)
            return self._answer(self.book.submit(ev, deadline=deadline, owner=peer_of(context).identity))

        return handle(context, "Reserve", run)

    def Amend(self, request: aggregator_pb2.ReservationRequest, context: Ctx) -> aggregator_pb2.ReservationResponse:
        """Replace the booking ``request.ev_id`` by the request's data (refused: the old booking stands)."""
        return handle(context, "Amend", lambda: self._answer(_owned(self.book.amend(_ev_of(request),
                                                                                    peer_of(context).identity))))

    def PublishTariff(self, request: aggregator_pb2.TouTariff, context: Ctx) -> aggregator_pb2.TariffAck:
        def run() -> aggregator_pb2.TariffAck:
            if len(request.level) != self.n_periods:
                raise InvalidArgument(f"level: expected {self.n_periods} values, got {len(request.level)}")
            try:
                tariff = TouTariff(tuple(request.level), request.peak_usd_per_mwh, request.flat_usd_per_mwh,
                                   request.valley_usd_per_mwh)
            except TariffError as exc:
                raise InvalidArgument(str(exc)) from None
            with self.lock:
                self._tariff = (list(tariff.level), tariff.price_usd_per_mwh.tolist())
                if self.journal is not None:  # confirmations after a restart show it too
                    self.journal.save_state("tariff", {"level": self._tariff[0],
                                                       "price_usd_per_mwh": self._tariff[1]})
            return aggregator_pb2.TariffAck(n_periods=self.n_periods)

        return idempotent(self.ledger, context, "PublishTariff", request, aggregator_pb2.TariffAck, run)

    def _answer(self, outcome: Accepted | Refused | Replayed) -> aggregator_pb2.ReservationResponse:
        """The reply to a reservation or amendment; a confirmation shows the published tariff."""
        answer = _reservation_answer(outcome)
        tariff = self._tariff
        if answer.accepted and tariff is not None:
            answer.tou_level.extend(tariff[0])
            answer.tou_price_usd_per_mwh.extend(tariff[1])
        return answer

    def Cancel(self, request: aggregator_pb2.CancelRequest, context: Ctx) -> aggregator_pb2.CancelResponse:
        def run() -> aggregator_pb2.CancelResponse:
            _check_id("ev_id", request.ev_id)
            if request.booking:
                _check_id("booking", request.booking)
            outcome = _owned(self.book.cancel(request.ev_id, peer_of(context).identity, request.booking or None))
            if isinstance(outcome, Accepted):
                return aggregator_pb2.CancelResponse(cancelled=True)
            if isinstance(outcome, Replayed):
                return aggregator_pb2.CancelResponse(cancelled=True, replay=True)
            return aggregator_pb2.CancelResponse(cancelled=False, reason=outcome.reason, reason_code=outcome.code)

        return handle(context, "Cancel", run)

    def ListReservations(self, request: aggregator_pb2.ListReservationsRequest,
                         context: Ctx) -> aggregator_pb2.ReservationList:
        def run() -> aggregator_pb2.ReservationList:
            self.ledger.check("ListReservations", request.key if request.HasField("key") else None)
            closed = self.book.closed
            evs = [aggregator_pb2.BookedEv(ev_id=ev.ev_id, station=ev.station, arrival_h=ev.arrival_h,
                                           departure_h=ev.departure_h, energy_need_kwh=ev.energy_need_kwh)
                   for ev in self.book.fleet()]
            return aggregator_pb2.ReservationList(evs=evs, closed=closed, preloaded=self.book.n_preloaded)

        return handle(context, "ListReservations", run)

    def register(self, server: grpc.Server) -> None:
        aggregator_pb2_grpc.add_AggregatorServiceServicer_to_server(self, server)


def _owned(outcome: Accepted | Refused | Replayed) -> Accepted | Refused | Replayed:
    """Another identity's booking: PERMISSION_DENIED naming both identities (not a reservation answer)."""
    if isinstance(outcome, Refused) and outcome.code == "not_owner":
        raise PermissionDenied(outcome.reason)
    return outcome


def _check_id(name: str, value: str) -> None:
    if not value:
        raise InvalidArgument(f"{name}: required")
    if len(value) > MAX_ID_CHARS:
        raise InvalidArgument(f"{name}: {len(value)} characters, at most {MAX_ID_CHARS}")


def _ev_of(request: aggregator_pb2.ReservationRequest) -> EV:
    """The EV a Reserve or Amend request describes (its data is checked by the book, naming the field)."""
    _check_id("ev_id", request.ev_id)
    _check_id("station", request.station)
    return EV(ev_id=request.ev_id, arrival_h=request.arrival_h, departure_h=request.departure_h,
              energy_need_kwh=request.energy_need_kwh, capacity_kwh=request.capacity_kwh,
              soc_arrival_kwh=request.soc_arrival_kwh, p_charge_kw=request.p_charge_kw,
              p_discharge_kw=request.p_discharge_kw, efficiency=request.efficiency, station=request.station,
              soc_min_kwh=request.soc_min_kwh)


def _reservation_answer(outcome: Accepted | Refused | Replayed) -> aggregator_pb2.ReservationResponse:
    if isinstance(outcome, Accepted):
        return aggregator_pb2.ReservationResponse(accepted=True, booking=outcome.booking)
    if isinstance(outcome, Replayed):
        return aggregator_pb2.ReservationResponse(accepted=True, replay=True, booking=outcome.booking)
    return aggregator_pb2.ReservationResponse(accepted=False, reason=outcome.reason, reason_code=outcome.code)
