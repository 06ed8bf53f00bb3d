"""The TSO as a coordination subspace over the boundary imports P (K, T) [MW].

Every mode (elastic evaluation, optimisation against the DSOs' surrogates, price response, ADMM step)
is the shared ``core.subspace.BoundarySubspace`` over the TSO's DC OPF model; the TSO sells the boundary
energy (``price_sign = -1``). Only boundary values, sensitivities and surrogate weights go in or out; the
boundary vector is P flattened row-major (DSO k, period t) -> k * T + t.
"""

from __future__ import annotations

import numpy as np

from core.subspace import BoundarySubspace
from tso.model import TsoDispatch, TsoInputs, build_tso_model
from tso.network import TransmissionData
from tso.report import TsoReport, publish

__all__ = ["TsoSubspace"]


class TsoSubspace(BoundarySubspace):
    """The TSO's side of the coordination."""

    def __init__(self, data: TransmissionData, inputs: TsoInputs, losses: bool = True,
                 solver: str = "CLARABEL") -> None:
        self.model = build_tso_model(data, inputs, losses=losses)
        k, t = self.model.p_dso_mw.shape
        super().__init__("tso", "TSO", self.model.p_dso_mw, self.model.cost_usd(),
                         list(self.model.constraints.values()), inputs.dt_h, np.arange(k * t), solver,
                         price_sign=-1.0)

    def dispatch(self, boundary: np.ndarray) -> TsoDispatch:
        """The full TSO dispatch at P (private: for the TSO's own report and in-process checks)."""
        self.evaluate(boundary)
        return self.model.extract()

    def report(self, boundary: np.ndarray) -> TsoReport:
        """What the TSO publishes at P: clearing prices at the DSO buses, cost terms, losses, wind."""
        return publish(self.dispatch(boundary))
