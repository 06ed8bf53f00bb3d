"""The TSO as a coordination subspace over the boundary imports P (K, T) [MW].

Every mode (elastic evaluation, optimisation against the DSOs' surrogates, price response, ADMM step)
is the shared ``core.subspace.BoundarySubspace`` over the TSO's DC OPF model; the TSO sells the boundary
energy (``price_sign = -1``). Only boundary values, sensitivities and surrogate weights go in or out; the
boundary vector is P flattened row-major (DSO k, period t) -> k * T + t.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np

from core.solver import value
from core.subspace import ELASTIC_PENALTY_USD_PER_MWH, BoundarySubspace, Columns, CompiledProblem, Merge
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

    def _hourly_cost(self, mismatch_mwh: np.ndarray) -> np.ndarray:
        return self.model.hourly_cost_usd() + ELASTIC_PENALTY_USD_PER_MWH * np.asarray(mismatch_mwh).sum(axis=0)

    def merge(self, columns: Columns) -> Merge:
        """min TSO cost(P) + sum_k theta_k . costs_k  s.t.  P_k = points_k' theta_k, theta_k >= 0, sum theta_k = 1.

        Every DSO enters only through import profiles it can dispatch (its proposals) and its exact cost at
        each: a DSO's cost is convex in its import, so D_k(sum theta_j y_j) <= sum theta_j D_k(y_j) and the
        optimum is an upper bound on the system cost at the merged boundary. The boundary is elastic (a point
        the TSO cannot serve is priced, as in ``evaluate``).

        Built anew at every call with the points and costs as constants, unlike the other modes: as Parameters
        (points @ theta, compiled once) the first solve took 15.6 s and each re-solve about 2.9 s at 32 DSOs x
        10 points, against 2.7-2.8 s for every call built here; at 16 DSOs 8.1 s then 0.6 s against 0.65-0.7 s
        (a first trial of this form), so the compiled form would pay only after some 20 merges, and a CSSO run
        makes a handful (one-off timing of ``TsoSubspace.merge`` on ieee118-32x33 and -16x33)."""
        k_n, t_n = self.shape
        if len(columns.points) != k_n or len(columns.costs) != k_n:
            raise ValueError(f"TSO merge: columns for {len(columns.points)} DSOs, the boundary has {k_n}")
        m = int(np.asarray(columns.points[0]).shape[0])
        pts, costs = [], []
        for k in range(k_n):
            y = np.asarray(columns.points[k], dtype=float)
            d = np.asarray(columns.costs[k], dtype=float)
            if y.shape != (m, t_n) or d.shape != (m,) or not (np.all(np.isfinite(y)) and np.all(np.isfinite(d))):
                raise ValueError(f"TSO merge: DSO {k}: points must be ({m}, {t_n}) and costs ({m},) finite values")
            pts.append(y)
            costs.append(d)
        thetas = [cp.Variable(m, nonneg=True, name=f"theta{k}") for k in range(k_n)]
        up = cp.Variable(self.shape, nonneg=True, name="merge_mismatch_up_mw")
        down = cp.Variable(self.shape, nonneg=True, name="merge_mismatch_down_mw")
        merged = cp.vstack([pts[k].T @ thetas[k] for k in range(k_n)])
        balance = self.boundary - up + down == merged
        penalty = ELASTIC_PENALTY_USD_PER_MWH * self.dt_h * cp.sum(up + down)
        others = cp.sum(cp.hstack([costs[k] @ thetas[k] for k in range(k_n)]))
        cons = [*self.constraints, balance, *[cp.sum(th) == 1 for th in thetas]]
        built = CompiledProblem(cp.Problem(cp.Minimize(self.own_cost + penalty + others), cons),
                                {"theta": thetas, "balance": balance, "merged": merged})
        self._solve(built, "merge")
        merged_mw = value(built.params["merged"])
        return Merge(x=merged_mw.reshape(-1),
                     theta=tuple(np.maximum(value(th), 0.0) for th in built.params["theta"]),
                     bound_usd=float(built.problem.value),
                     evaluation=self._elastic_evaluation(merged_mw, built.params["balance"]))

    def dispatch(self, boundary: np.ndarray) -> TsoDispatch:
        """The full TSO dispatch at P (private: for the TSO's own report and in-process checks)."""
        self.evaluate(boundary)
        return self.model.extract()

    def report(self, boundary: np.ndarray) -> TsoReport:
        """What the TSO publishes at P: clearing prices at the DSO buses, cost terms, losses, wind, and the
        elastic mismatch (and its penalty) if it could not serve P exactly."""
        ev = self.evaluate(boundary)
        return publish(self.model.extract(), penalty_usd=ev.penalty_usd, mismatch_mw=ev.mismatch_mw)
