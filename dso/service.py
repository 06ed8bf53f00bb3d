"""A DSO as a gRPC service (``gridcoord serve dso``): the coordination calls plus its end-of-run report.

The report needs the EV outcome from the DSO's aggregator; the process that starts the service passes
``ev_unmet_mwh(dispatch, price)`` (a call to the aggregator service, or an in-process disaggregation).
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
import numpy as np

from dso.model import FeederDispatch, FeederInputs
from dso.network import FeederData
from dso.report import publish
from gridcoord import convert
from gridcoord.rpc import Ctx, idempotent, vector
from gridcoord.service import MAX_BOUNDARY_MW, MAX_PRICE_USD_PER_MWH, SubspaceService
from gridcoord.v1 import dso_pb2, dso_pb2_grpc

SERVICE_NAME = dso_pb2.DESCRIPTOR.services_by_name["DsoService"].full_name


class DsoServicer(SubspaceService, dso_pb2_grpc.DsoServiceServicer):
    """Serves a ``DsoSubspace`` attached once built (health goes SERVING then)."""

    def __init__(self, operator_id: str, n_periods: int, dt_h: float, n_global: int) -> None:
        super().__init__(operator_id, "dso", n_periods, dt_h, n_boundary=n_periods, n_global=n_global)
        self.data: FeederData | None = None
        self.inputs: FeederInputs | None = None
        self.ev_unmet_mwh: Callable[[FeederDispatch, np.ndarray], float] = lambda d, p: 0.0
        self.ac_check = True
        self.forecast_mw: np.ndarray | None = None

    def attach_feeder(self, subspace: object, data: FeederData, inputs: FeederInputs,
                      ev_unmet_mwh: Callable[[FeederDispatch, np.ndarray], float]) -> None:
        self.data, self.inputs, self.ev_unmet_mwh = data, inputs, ev_unmet_mwh
        # today's practice: loads + uncontrolled EV charging - available PV
        self.forecast_mw = (inputs.p_load_mw.sum(axis=0) + inputs.ev_fixed_mw.sum(axis=0)
                            - inputs.pv_avail_mw.sum(axis=0))
        self.attach(subspace)

    def Forecast(self, request: dso_pb2.ForecastRequest, context: Ctx) -> dso_pb2.ForecastResponse:
        def run() -> dso_pb2.ForecastResponse:
            self._model()
            return dso_pb2.ForecastResponse(p_import_mw=np.asarray(self.forecast_mw, dtype=float).tolist())

        return idempotent(self.ledger, context, "Forecast", request, dso_pb2.ForecastResponse, run)

    def Report(self, request: dso_pb2.DsoReportRequest, context: Ctx) -> dso_pb2.DsoReport:
        def run() -> dso_pb2.DsoReport:
            x = np.asarray(vector("boundary_mw", request.boundary_mw, self.n_periods, limit=MAX_BOUNDARY_MW))
            price = (np.asarray(vector("price_usd_per_mwh", request.price_usd_per_mwh, self.n_periods,
                                            limit=MAX_PRICE_USD_PER_MWH))
                     if len(request.price_usd_per_mwh) else np.zeros(self.n_periods))
            with self.lock:
                dispatch = self._model().dispatch(x)
                assert self.data is not None and self.inputs is not None
                unmet = self.ev_unmet_mwh(dispatch, price)
                return convert.dso_report_to_proto(publish(self.data, self.inputs, dispatch, unmet, ac=self.ac_check))

        return idempotent(self.ledger, context, "Report", request, dso_pb2.DsoReport, run)

    def register(self, server: grpc.Server) -> None:
        dso_pb2_grpc.add_DsoServiceServicer_to_server(self, server)
