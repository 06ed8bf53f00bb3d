"""The TNO as a gRPC service (``gridcoord serve tno``): it keeps the road network and the travel demand in its
own process and answers station prices with station arrival envelopes (``Respond``, idempotent per RunKey).
"""

from __future__ import annotations

import threading

import grpc

from core import convert
from core.rpc import Ctx, RoundLedger, idempotent
from core.service import MAX_PRICE_USD_PER_MWH
from gridcoord.v1 import common_pb2, tno_pb2, tno_pb2_grpc
from tno.operator import TransportOperator

SERVICE_NAME = tno_pb2.DESCRIPTOR.services_by_name["TransportService"].full_name


class TnoServicer(tno_pb2_grpc.TransportServiceServicer):
    def __init__(self, operator_id: str, operator: TransportOperator) -> None:
        self.operator_id, self.operator = operator_id, operator
        self.ledger = RoundLedger()
        self.lock = threading.Lock()  # one equilibrium at a time: the operator keeps its warm start

    def register(self, server: grpc.Server) -> None:
        tno_pb2_grpc.add_TransportServiceServicer_to_server(self, server)

    def Describe(self, request: common_pb2.DescribeRequest, context: Ctx) -> common_pb2.DescribeResponse:
        case = self.operator.case

        def run() -> common_pb2.DescribeResponse:
            return common_pb2.DescribeResponse(operator_id=self.operator_id, role="tno", n_periods=case.n_periods,
                                               dt_h=case.step_min / 60.0, n_boundary=0)

        return idempotent(self.ledger, context, "Describe", request, common_pb2.DescribeResponse, run)

    def Respond(self, request: tno_pb2.StationPricesRequest, context: Ctx) -> tno_pb2.StationArrivals:
        case = self.operator.case

        def run() -> tno_pb2.StationArrivals:
            price, mode, max_iter, gap_tol = convert.station_prices_from_proto(
                request, len(case.stations), case.n_periods, MAX_PRICE_USD_PER_MWH)
            with self.lock:
                r = self.operator.respond(price, mode=mode, max_iter=max_iter, gap_tol=gap_tol)  # type: ignore[arg-type]
            return convert.arrivals_to_proto(r.arrivals, r.gap, r.gap_charging, r.iterations)

        return idempotent(self.ledger, context, "Respond", request, tno_pb2.StationArrivals, run)
