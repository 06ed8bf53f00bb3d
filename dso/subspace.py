"""One DSO (feeder + its EV envelopes) as a coordination subspace over its import P_k (T,) [MW].

Every mode (elastic evaluation, optimisation against the neighbours' surrogates, price response, ADMM
step) is the shared ``core.subspace.BoundarySubspace`` over the feeder's DistFlow model; a DSO buys its
import (``price_sign = +1``). Its report needs the EV outcome from its aggregator: ``settle`` is that
aggregator (a gRPC link in services mode, the fleet in this process in the embedded default).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from core.subspace import BoundarySubspace
from dso.model import FeederDispatch, FeederInputs, build_feeder_model
from dso.network import FeederData
from dso.report import EvSettlement, FeederReport, publish

__all__ = ["DsoSubspace", "EvSettle"]

#: the DSO's EV aggregator as the report sees it: the dispatched envelopes in, the EV outcome out
EvSettle = Callable[[FeederDispatch], EvSettlement]


def _no_evs(dispatch: FeederDispatch) -> EvSettlement:
    return EvSettlement(unmet_mwh=0.0)


class DsoSubspace(BoundarySubspace):
    """A DSO's side of the coordination; ``index`` = its entries in the global boundary vector."""

    def __init__(self, data: FeederData, inputs: FeederInputs, index: np.ndarray, solver: str = "CLARABEL",
                 settle: EvSettle | None = None, ac_check: bool = True) -> None:
        self.model = build_feeder_model(data, inputs)
        self.data, self.inputs = data, inputs
        self.settle: EvSettle = settle or _no_evs
        self.ac_check = ac_check
        super().__init__(data.name, f"DSO '{data.name}'", self.model.p_import_mw, self.model.local_cost_usd(),
                         list(self.model.constraints.values()), inputs.dt_h, index, solver, price_sign=1.0,
                         prefix=f"{data.name}.")

    def dispatch(self, boundary: np.ndarray) -> FeederDispatch:
        """The feeder dispatch at p_import = boundary (private: for the DSO's own report)."""
        self.evaluate(boundary)
        return self.model.extract()

    def report(self, boundary: np.ndarray) -> FeederReport:
        """What the DSO publishes at its import ``boundary``: node injections and voltages, losses, cost
        terms, the EV outcome its aggregator reports, and its own AC power-flow check."""
        ev = self.evaluate(boundary)
        dispatch = self.model.extract()
        return publish(self.data, self.inputs, dispatch, self.settle(dispatch), ac=self.ac_check,
                       penalty_usd=ev.penalty_usd, mismatch_mw=ev.mismatch_mw)
