"""One DSO (feeder + its EV envelopes) as a coordination subspace over its import P_k (T,) [MW].

Every mode (elastic evaluation, optimisation against the neighbours' surrogates, price response, ADMM
step) is the shared ``core.subspace.BoundarySubspace`` over the feeder's DistFlow model; a DSO buys its
import (``price_sign = +1``). Its report needs the EV outcome from its aggregator: ``settle`` is that
aggregator (a gRPC link in services mode, the fleet in this process in the embedded default).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from core.errors import SolveError
from core.icnn import SurrogateTerm
from core.privacy import GaussianMechanism, PrivacyConfig
from core.subspace import ELASTIC_PENALTY_USD_PER_MWH, BoundaryStep, BoundarySubspace, Evaluation, Proposal
from dso.inputs import import_forecast_mw
from dso.model import FeederDispatch, FeederInputs, build_feeder_model
from dso.network import FeederData
from dso.privacy import sensitivity
from dso.report import EvSettlement, FeederReport, publish

__all__ = ["DsoSubspace", "EvSettle"]

#: rho of the projection that stands in for a stalled elastic evaluation in DP mode [$/MW^2]: the import moves
#: by (marginal cost x dt) / rho, < 0.01 MW at marginal costs below 100 $/MWh
PROJECTION_RHO = 1e4

#: the DSO's EV aggregator as the report sees it: the dispatched envelopes in, the EV outcome out
EvSettle = Callable[[FeederDispatch], EvSettlement]


def _no_evs(dispatch: FeederDispatch) -> EvSettlement:
    return EvSettlement(unmet_mwh=0.0)


class DsoSubspace(BoundarySubspace):
    """A DSO's side of the coordination; ``index`` = its entries in the global boundary vector.

    ``privacy``: the Gaussian mechanism on everything the DSO sends during coordination (``dso.privacy``:
    which fields, their sensitivities); its own dispatch and report stay exact, so its constraints always
    hold. The forecast is released once, when the subspace is built (``forecast_mw``)."""

    def __init__(self, data: FeederData, inputs: FeederInputs, index: np.ndarray, solver: str = "CLARABEL",
                 settle: EvSettle | None = None, ac_check: bool = True,
                 privacy: PrivacyConfig | None = None) -> None:
        self.model = build_feeder_model(data, inputs)
        self.data, self.inputs = data, inputs
        self.settle: EvSettle = settle or _no_evs
        self.ac_check = ac_check
        super().__init__(data.name, f"DSO '{data.name}'", self.model.p_import_mw, self.model.local_cost_usd(),
                         list(self.model.constraints.values()), inputs.dt_h, index, solver, price_sign=1.0,
                         prefix=f"{data.name}.")
        self.privacy = privacy
        self.mechanism = GaussianMechanism(privacy, data.name) if privacy is not None else None
        self._forecast = import_forecast_mw(inputs)
        if self.mechanism is not None:
            self._sens = sensitivity(inputs, self.mechanism.config)
            self._forecast = self.mechanism.release("forecast", {"p_import_mw": (self._forecast,
                                                                                  self._sens.alpha_mw)})["p_import_mw"]

    def forecast_mw(self) -> np.ndarray:
        """The day-ahead import forecast it sends (T,) [MW]: loads + uncontrolled EVs - PV - wind (noisy in DP
        mode: released once, here)."""
        return self._forecast.copy()

    # -- what leaves the DSO during coordination (noisy in DP mode) ------------------------------------
    def _exact_evaluate(self, boundary: np.ndarray) -> Evaluation:
        """The elastic evaluation; in DP mode a noisy boundary far outside the feeder's range can stall the
        solver (optimal_inaccurate), and then the import it can take nearest the boundary (an ADMM step with
        a stiff rho, ``PROJECTION_RHO``) stands in, its distance priced at the elastic penalty."""
        try:
            return BoundarySubspace.evaluate(self, boundary)
        except SolveError:
            if self.mechanism is None:
                raise
        target = self._vector("boundary", boundary)
        x, own = BoundarySubspace.prox(self, target, PROJECTION_RHO)
        gap = np.abs(np.asarray(x, float) - target)
        penalty = ELASTIC_PENALTY_USD_PER_MWH * self.dt_h * float(gap.sum())
        return Evaluation(cost_usd=own + penalty, sensitivity_usd_per_mwh=np.full(self.shape, np.nan),
                          penalty_usd=penalty, mismatch_mw=float(gap.max()), dt_h=self.dt_h)

    def evaluate(self, boundary: np.ndarray) -> Evaluation:
        ev = self._exact_evaluate(boundary)
        if self.mechanism is None:
            return ev
        out = self.mechanism.release("evaluate", {"cost_usd": (ev.cost_usd, self._sens.cost_usd),
                                                  "mismatch_mw": (ev.mismatch_mw, self._sens.alpha_mw)})
        nan = np.full_like(np.asarray(ev.sensitivity_usd_per_mwh, dtype=float), np.nan)
        return Evaluation(cost_usd=float(out["cost_usd"]), sensitivity_usd_per_mwh=nan, penalty_usd=float("nan"),
                          mismatch_mw=max(0.0, float(out["mismatch_mw"])), dt_h=ev.dt_h)

    def optimize(self, others: Sequence[SurrogateTerm], center: np.ndarray, move: np.ndarray) -> Proposal:
        prop = super().optimize(others, center, move)
        if self.mechanism is None or not prop.ok:
            return prop
        out = self.mechanism.release("optimize", {"x_mw": (prop.x, self._sens.alpha_mw),
                                                  "cost_usd": (prop.cost_usd, self._sens.cost_usd)})
        return Proposal(x=out["x_mw"], predicted_usd=float(out["cost_usd"]), cost_usd=float(out["cost_usd"]),
                        sensitivity_usd_per_mwh=None)

    def _noisy_step(self, what: str, step: BoundaryStep) -> BoundaryStep:
        if self.mechanism is None:
            return step
        out = self.mechanism.release(what, {"x_mw": (step[0], self._sens.alpha_mw),
                                            "cost_usd": (step[1], self._sens.cost_usd)})
        return out["x_mw"], float(out["cost_usd"])

    def respond(self, price_usd_per_mwh: np.ndarray) -> BoundaryStep:
        return self._noisy_step("respond", super().respond(price_usd_per_mwh))

    def prox(self, target_mw: np.ndarray, rho: float) -> BoundaryStep:
        """ADMM needs only the step itself: in DP mode the cost is withheld (NaN), so the whole release
        protects the import."""
        step = super().prox(target_mw, rho)
        if self.mechanism is None:
            return step
        out = self.mechanism.release("prox", {"x_mw": (step[0], self._sens.alpha_mw)})
        return out["x_mw"], float("nan")

    # -- the DSO's own side (exact) ----------------------------------------------------------------------
    def dispatch(self, boundary: np.ndarray) -> FeederDispatch:
        """The feeder dispatch at p_import = boundary (private: for the DSO's own report)."""
        self._exact_evaluate(boundary)
        return self.model.extract()

    def report(self, boundary: np.ndarray) -> FeederReport:
        """What the DSO publishes at its import ``boundary``: node injections and voltages, losses, cost
        terms, the EV outcome its aggregator reports, and its own AC power-flow check."""
        ev = self._exact_evaluate(boundary)  # exact: the report is its own dispatch
        dispatch = self.model.extract()
        return publish(self.data, self.inputs, dispatch, self.settle(dispatch), ac=self.ac_check,
                       penalty_usd=ev.penalty_usd, mismatch_mw=ev.mismatch_mw)
