"""The TSO as a gRPC service (``gridcoord serve tso``): the coordination calls plus its end-of-run report."""

from __future__ import annotations

import grpc
import numpy as np

from core import convert
from core.rpc import Ctx, idempotent, vector
from core.service import MAX_BOUNDARY_MW, SubspaceService
from gridcoord.v1 import tso_pb2, tso_pb2_grpc
from tso.subspace import TsoSubspace

SERVICE_NAME = tso_pb2.DESCRIPTOR.services_by_name["TsoService"].full_name


class TsoServicer(SubspaceService[TsoSubspace], tso_pb2_grpc.TsoServiceServicer):
    """Serves a ``TsoSubspace`` attached once built (health goes SERVING then)."""

    def __init__(self, operator_id: str, dso_ids: tuple[str, ...], n_periods: int, dt_h: float) -> None:
        n = len(dso_ids) * n_periods
        super().__init__(operator_id, "tso", n_periods, dt_h, n_boundary=n, n_global=n, dso_ids=dso_ids)

    def Report(self, request: tso_pb2.TsoReportRequest, context: Ctx) -> tso_pb2.TsoReport:
        def run() -> tso_pb2.TsoReport:
            x = np.asarray(vector("boundary_mw", request.boundary_mw, self.n_boundary, limit=MAX_BOUNDARY_MW))
            with self.lock:
                return convert.tso_report_to_proto(self._model().report(x.reshape(-1, self.n_periods)))

        return idempotent(self.ledger, context, "Report", request, tso_pb2.TsoReport, run)

    def Merge(self, request: tso_pb2.MergeRequest, context: Ctx) -> tso_pb2.MergeResponse:
        def run() -> tso_pb2.MergeResponse:
            columns = convert.columns_from_proto(request, len(self.dso_ids), self.n_periods)
            with self.lock:
                return convert.merge_to_proto(self._model().merge(columns))

        return idempotent(self.ledger, context, "Merge", request, tso_pb2.MergeResponse, run)

    def register(self, server: grpc.Server) -> None:
        tso_pb2_grpc.add_TsoServiceServicer_to_server(self, server)
