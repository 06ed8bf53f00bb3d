"""An EV aggregator as a gRPC service (``gridcoord serve aggregator``): envelopes for its DSO,
disaggregation of the DSO's dispatch into per-EV schedules, reservations."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import grpc
import numpy as np

from aggregator.fleet import EV, Station
from aggregator.flex import FleetFlexibility, disaggregate_spatial, inner_flexibility
from aggregator.reservations import Accepted, ReservationBook
from gridcoord import convert
from gridcoord.rpc import Ctx, InvalidArgument, RoundLedger, handle, idempotent, vector
from gridcoord.v1 import aggregator_pb2, aggregator_pb2_grpc, common_pb2

SERVICE_NAME = aggregator_pb2.DESCRIPTOR.services_by_name["AggregatorService"].full_name


class AggregatorServicer(aggregator_pb2_grpc.AggregatorServiceServicer):
    """Holds the fleet of one feeder's stations. Reservations add EVs until the envelopes are first sent."""

    def __init__(self, operator_id: str, fleet: Sequence[EV], stations: Sequence[Station], dt_h: float,
                 n_periods: int) -> None:
        self.operator_id = operator_id
        self.stations = tuple(stations)
        self.dt_h, self.n_periods = dt_h, n_periods
        self.book = ReservationBook(self.stations, dt_h, n_periods)
        self.book.preload(fleet)
        self.ledger = RoundLedger()
        self.lock = threading.Lock()
        self._fleet: tuple[EV, ...] | None = None
        self._flex: FleetFlexibility | None = None

    def _envelopes(self) -> tuple[tuple[EV, ...], FleetFlexibility]:
        """Freeze the fleet on first use: the envelopes a DSO dispatches must be those it disaggregates."""
        if self._fleet is None:
            self._fleet = self.book.fleet()
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
                w = int(np.sum(flex.dwell))
                p_ch = np.asarray(vector("p_ch_mw", request.p_ch_mw, w, nonneg=True))
                p_dis = np.asarray(vector("p_dis_mw", request.p_dis_mw, w, nonneg=True))
                n_env = flex.n_envelopes
                share = (np.asarray(vector("alloc_share", request.alloc_share, n_env, nonneg=True))
                         if len(request.alloc_share) else None)
                if not fleet:
                    return aggregator_pb2.DispatchResponse(n_evs=0)
                alloc, dis = disaggregate_spatial(list(fleet), flex, p_ch, p_dis, share,
                                                  list(self.stations), self.dt_h, self.n_periods)
                station_mw = np.asarray(alloc.station_mw)
                unmet = np.asarray(dis.unmet_kwh)
                return aggregator_pb2.DispatchResponse(n_evs=len(fleet), unmet_mwh=float(unmet.sum()) / 1e3,
                                                       max_unmet_kwh=float(unmet.max(initial=0.0)),
                                                       station_p_mw=station_mw.ravel().tolist())

        return idempotent(self.ledger, context, "Dispatch", request, aggregator_pb2.DispatchResponse, run)

    def Reserve(self, request: aggregator_pb2.ReservationRequest, context: Ctx) -> aggregator_pb2.ReservationResponse:
        def run() -> aggregator_pb2.ReservationResponse:
            if not request.ev_id:
                raise InvalidArgument("ev_id: required")
            if not request.station:
                raise InvalidArgument("station: required")
            if self._fleet is not None:
                return aggregator_pb2.ReservationResponse(
                    accepted=False, reason="the day-ahead envelopes were already sent; reservations are closed")
            ev = EV(ev_id=request.ev_id, arrival_h=request.arrival_h, departure_h=request.departure_h,
                    energy_need_kwh=request.energy_need_kwh, capacity_kwh=request.capacity_kwh,
                    soc_arrival_kwh=request.soc_arrival_kwh, p_charge_kw=request.p_charge_kw,
                    p_discharge_kw=request.p_discharge_kw, efficiency=request.efficiency, station=request.station)
            outcome = self.book.submit(ev)
            if isinstance(outcome, Accepted):
                return aggregator_pb2.ReservationResponse(accepted=True)
            return aggregator_pb2.ReservationResponse(accepted=False, reason=outcome.reason)

        return handle(context, "Reserve", run)

    def register(self, server: grpc.Server) -> None:
        aggregator_pb2_grpc.add_AggregatorServiceServicer_to_server(self, server)
