"""The coordination calls every subspace operator (TSO, DSO) serves, over its ``BoundarySubspace``
(``evaluate``, ``optimize``, ``respond``, ``prox``). A servicer validates, calls the plain method under a
lock (a cvxpy problem is not re-entrant), and maps errors to status codes. Until the model is attached a
call is UNAVAILABLE (``NotReady``): up but not ready is a transient condition, so every client's retry and
recovery path waits for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import numpy as np

from core import convert
from core.icnn import SurrogateTerm, is_block
from core.rpc import Ctx, NotReady, ResourceExhausted, RoundLedger, idempotent, scalar, vector
from core.subspace import BoundarySubspace
from gridcoord.v1 import common_pb2

Sub = TypeVar("Sub", bound=BoundarySubspace)

#: |boundary power| accepted [MW]: far above any feeder or tie line, low enough for the solvers' arithmetic
MAX_BOUNDARY_MW = 1e5
#: |price| accepted [$/MWh]
MAX_PRICE_USD_PER_MWH = 1e6
#: ADMM penalty weight range [$/MW^2]: rho * target must stay representable, rho ~ 0 is no penalty at all
RHO_RANGE_USD_PER_MW2 = (1e-9, 1e9)
#: distinct surrogate layouts (count and sizes of the others' terms) one operator compiles a problem for;
#: each is a new cvxpy problem kept for the operator's lifetime, so a client may not create them without end
MAX_SURROGATE_LAYOUTS = 16


class SubspaceService(Generic[Sub]):
    """Describe / Evaluate / Optimize / Respond / Prox for one operator; the model attaches later."""

    def __init__(self, operator_id: str, role: str, n_periods: int, dt_h: float, n_boundary: int,
                 n_global: int, dso_ids: tuple[str, ...] = ()) -> None:
        self.operator_id, self.role = operator_id, role
        self.n_periods, self.dt_h = n_periods, dt_h
        self.n_boundary, self.n_global = n_boundary, n_global
        self.dso_ids = dso_ids
        self.ledger = RoundLedger()
        self.lock = threading.Lock()
        self.subspace: Sub | None = None
        self.ready = threading.Event()
        self.on_ready: list[Callable[[], None]] = []
        self.layouts: set[tuple[tuple[int, int, bool], ...]] = set()
        #: why the model is not built yet, when it waits for something other than its build (shown to callers)
        self.waiting_for: str | None = None

    def attach(self, subspace: Sub) -> None:
        """The model is built: calls are served from now on."""
        self.subspace = subspace
        self.ready.set()
        for callback in self.on_ready:
            callback()

    def _model(self) -> Sub:
        if not self.ready.is_set() or self.subspace is None:
            why = f" ({self.waiting_for})" if self.waiting_for else ""
            raise NotReady(f"operator '{self.operator_id}': model is still being built{why}")
        return self.subspace

    def _boundary(self, name: str, values: Any, limit: float = MAX_BOUNDARY_MW) -> np.ndarray:
        return np.asarray(vector(name, values, self.n_boundary, limit=limit), dtype=float)

    def _layout(self, others: list[SurrogateTerm]) -> None:
        """Refuse a surrogate layout beyond the first ``MAX_SURROGATE_LAYOUTS`` (call under ``self.lock``)."""
        layout = tuple((int(idx.size), int(w.w.shape[0]), is_block(w.w)) for idx, w in others)
        if layout not in self.layouts:
            if len(self.layouts) >= MAX_SURROGATE_LAYOUTS:
                raise ResourceExhausted(f"others: operator '{self.operator_id}' already holds {MAX_SURROGATE_LAYOUTS} "
                                        "surrogate layouts (number of terms x inputs x hidden units); use one of them")
            self.layouts.add(layout)

    # ---- RPCs -------------------------------------------------------------------------------------

    def Describe(self, request: common_pb2.DescribeRequest, context: Ctx) -> common_pb2.DescribeResponse:
        def run() -> common_pb2.DescribeResponse:
            return common_pb2.DescribeResponse(operator_id=self.operator_id, role=self.role, n_periods=self.n_periods,
                                               dt_h=self.dt_h, n_boundary=self.n_boundary, dso_ids=list(self.dso_ids))

        return idempotent(self.ledger, context, "Describe", request, common_pb2.DescribeResponse, run)

    def Evaluate(self, request: common_pb2.EvaluateRequest, context: Ctx) -> common_pb2.EvaluateResponse:
        def run() -> common_pb2.EvaluateResponse:
            x = self._boundary("boundary_mw", request.boundary_mw)
            with self.lock:
                return convert.evaluation_to_proto(self._model().evaluate(x))

        return idempotent(self.ledger, context, "Evaluate", request, common_pb2.EvaluateResponse, run)

    def Optimize(self, request: common_pb2.OptimizeRequest, context: Ctx) -> common_pb2.OptimizeResponse:
        def run() -> common_pb2.OptimizeResponse:
            center = np.asarray(vector("center_mw", request.center_mw, self.n_global, limit=MAX_BOUNDARY_MW),
                                dtype=float)
            move = np.asarray(vector("move_mw", request.move_mw, self.n_global, nonneg=True, limit=MAX_BOUNDARY_MW),
                              dtype=float)
            others = convert.others_from_proto(request.others, self.n_global)
            with self.lock:
                self._model()
                self._layout(others)
                return convert.proposal_to_proto(self._model().optimize(others, center, move))

        return idempotent(self.ledger, context, "Optimize", request, common_pb2.OptimizeResponse, run)

    def Respond(self, request: common_pb2.RespondRequest, context: Ctx) -> common_pb2.BoundaryResponse:
        def run() -> common_pb2.BoundaryResponse:
            price = self._boundary("price_usd_per_mwh", request.price_usd_per_mwh, MAX_PRICE_USD_PER_MWH)
            with self.lock:
                return convert.boundary_step_to_proto(self._model().respond(self._shaped(price)))

        return idempotent(self.ledger, context, "Respond", request, common_pb2.BoundaryResponse, run)

    def Prox(self, request: common_pb2.ProxRequest, context: Ctx) -> common_pb2.BoundaryResponse:
        def run() -> common_pb2.BoundaryResponse:
            target = self._boundary("target_mw", request.target_mw)
            rho = scalar("rho_usd_per_mw2", request.rho_usd_per_mw2, positive=True, lower=RHO_RANGE_USD_PER_MW2[0],
                         upper=RHO_RANGE_USD_PER_MW2[1])
            with self.lock:
                return convert.boundary_step_to_proto(self._model().prox(self._shaped(target), rho))

        return idempotent(self.ledger, context, "Prox", request, common_pb2.BoundaryResponse, run)

    def _shaped(self, x: np.ndarray) -> np.ndarray:
        """The TSO's own methods take (K, T); a DSO's take (T,)."""
        return x.reshape(-1, self.n_periods) if self.role == "tso" else x
