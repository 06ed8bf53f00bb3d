"""One DSO (feeder + its EV envelopes) as a coordination subspace over its import P_k (T,) [MW].

Built once; each mode is a cvxpy Problem over the same feeder model, compiled on its first solve
and re-solved through Parameters (DPP):

- ``evaluate(P_k)``: elastic fixed import, ``p_import = P_k + s_up - s_down``, ``s >= 0`` priced at
  ``ELASTIC_PENALTY_USD_PER_MWH``: a point outside the feeder's feasible import range still returns
  a finite cost and gradient (cost = local cost + penalty; d cost / d P_k from the dual).
- ``optimize(others, center, move)``: exact feeder model + the others' ICNN surrogates over the
  global boundary vector with only this DSO's entries free, |P_k - center_k| <= move_k.
- ``respond(price)``: price mode (local cost + dt price . p_import).
- ``prox(target, rho)``: local cost + rho/2 |p_import - target|^2 (ADMM).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from dso.model import FeederDispatch, FeederInputError, FeederInputs, SolveError, build_feeder_model
from dso.network import FeederData
from gridcoord.icnn import icnn_cost, set_icnn
from gridcoord.solver import solve_problem

__all__ = ["ELASTIC_PENALTY_USD_PER_MWH", "DsoProposal", "DsoResponse", "DsoSubspace"]

#: price of an import mismatch in the elastic evaluation [$/MWh]; far above any marginal cost
ELASTIC_PENALTY_USD_PER_MWH = 1000.0


@dataclass(frozen=True)
class DsoResponse:
    cost_usd: float  # local cost + elastic penalty, $ over the horizon
    sensitivity_usd_per_mwh: np.ndarray  # (T,) d cost / d P_k / dt_h
    penalty_usd: float  # elastic mismatch cost included in cost_usd
    mismatch_mw: float  # max |p_import - P_k|
    dt_h: float

    @property
    def gradient(self) -> np.ndarray:
        """d cost_usd / d P_k (T,) [$/MW]."""
        return self.sensitivity_usd_per_mwh * self.dt_h


@dataclass(frozen=True)
class DsoProposal:
    x: np.ndarray  # (T,) proposed import [MW]
    predicted_usd: float  # own exact cost + the others' surrogates
    ok: bool = True


class DsoSubspace:
    """A DSO's side of the coordination; ``index`` = its entries in the global boundary vector."""

    def __init__(self, data: FeederData, inputs: FeederInputs, index: np.ndarray,
                 solver: str = "CLARABEL") -> None:
        self.model = build_feeder_model(data, inputs)
        self.name, self.solver, self.dt_h = data.name, solver, float(inputs.dt_h)
        self.t = inputs.n_periods
        self.index = np.asarray(index, dtype=int)
        if self.index.shape != (self.t,):
            raise FeederInputError(f"DSO '{self.name}': index has shape {self.index.shape}, expected ({self.t},)")
        self.n_solves = 0
        self._problems: dict[str, tuple[cp.Problem, dict[str, Any]]] = {}

    def _elastic(self) -> tuple[cp.Problem, dict[str, Any]]:
        if "elastic" not in self._problems:
            m = self.model
            target = cp.Parameter(self.t, name=f"{self.name}.p_import_target_mw")
            up = cp.Variable(self.t, nonneg=True, name=f"{self.name}.mismatch_up_mw")
            down = cp.Variable(self.t, nonneg=True, name=f"{self.name}.mismatch_down_mw")
            boundary = m.p_import_mw - up + down == target
            penalty = ELASTIC_PENALTY_USD_PER_MWH * self.dt_h * cp.sum(up + down)
            prob = cp.Problem(cp.Minimize(m.local_cost_usd() + penalty), [*m.constraints.values(), boundary])
            self._problems["elastic"] = (prob, {"target": target, "boundary": boundary, "penalty": penalty})
        return self._problems["elastic"]

    def _solve(self, prob: cp.Problem, what: str) -> None:
        try:
            status = solve_problem(prob, self.solver)
        except cp.error.SolverError as exc:
            raise SolveError(f"DSO '{self.name}' {what}: solver failed: {exc}", "solver_error") from exc
        if status != cp.OPTIMAL:
            raise SolveError(f"DSO '{self.name}' {what} did not reach optimality", status)
        self.n_solves += 1

    def _vector(self, what: str, value: np.ndarray) -> np.ndarray:
        arr = np.asarray(value, dtype=float).reshape(-1)
        if arr.shape != (self.t,) or not np.all(np.isfinite(arr)):
            raise FeederInputError(f"DSO '{self.name}': {what} must be {self.t} finite values, got {value!r}")
        return arr

    def evaluate(self, boundary: np.ndarray) -> DsoResponse:
        """Elastic solve at p_import = boundary (T,) [MW]."""
        prob, p = self._elastic()
        p["target"].value = self._vector("boundary import", boundary)
        self._solve(prob, "elastic evaluation")
        dual = np.asarray(p["boundary"].dual_value, dtype=float)
        mismatch = np.abs(np.asarray(self.model.p_import_mw.value) - p["target"].value)
        return DsoResponse(cost_usd=float(prob.value), sensitivity_usd_per_mwh=-dual / self.dt_h,
                           penalty_usd=float(p["penalty"].value), mismatch_mw=float(mismatch.max()),
                           dt_h=self.dt_h)

    def evaluate_many(self, points: np.ndarray) -> list[DsoResponse]:
        return [self.evaluate(p) for p in np.atleast_2d(points)]

    def dispatch(self, boundary: np.ndarray) -> FeederDispatch:
        """The feeder dispatch at p_import = boundary (for the final report; not part of the iteration)."""
        self.evaluate(boundary)
        return self.model.extract()

    def optimize(self, others: list[tuple[np.ndarray, Any]], center: np.ndarray, move: np.ndarray) -> DsoProposal:
        """min local cost(P_k) + sum_j s_j(x[idx_j]), x = center with P_k free, |P_k - center_k| <= move_k."""
        n = np.asarray(center).size
        key = f"optimize:{n}:" + ",".join(f"{i.size}x{w.w.shape[0]}" for i, w in others)
        if key not in self._problems:
            fixed = cp.Parameter(n, name=f"{self.name}.fixed_boundary")
            c = cp.Parameter(self.t, name=f"{self.name}.center")
            mv = cp.Parameter(self.t, nonneg=True, name=f"{self.name}.move")
            place = sp.csr_matrix((np.ones(self.t), (self.index, np.arange(self.t))), shape=(n, self.t))
            p_imp = self.model.p_import_mw
            # the others' entries as a Variable pinned to a Parameter: W @ x stays DPP (W and fixed are
            # both Parameters, so W @ (fixed + ...) would not be)
            others_mw = cp.Variable(n, name=f"{self.name}.others_boundary_mw")
            x = others_mw + place @ p_imp
            cost = self.model.local_cost_usd()
            cons = [*self.model.constraints.values(), cp.abs(p_imp - c) <= mv, others_mw == fixed]
            params = []
            for j, (idx, w) in enumerate(others):
                s, extra, prm = icnn_cost(x[np.asarray(idx)], w.w.shape[0], f"{self.name}.surrogate{j}")
                cost, cons = cost + s, cons + extra
                params.append(prm)
            self._problems[key] = (cp.Problem(cp.Minimize(cost), cons),
                                   {"fixed": fixed, "center": c, "move": mv, "icnn": params})
        prob, p = self._problems[key]
        for prm, (_, w) in zip(p["icnn"], others, strict=True):
            set_icnn(prm, w)
        center = np.asarray(center, dtype=float)
        fixed = center.copy()
        fixed[self.index] = 0.0
        p["fixed"].value, p["center"].value = fixed, center[self.index]
        p["move"].value = np.asarray(move, dtype=float)[self.index]
        try:
            self._solve(prob, "subspace optimisation")
        except SolveError:  # the move box misses the feeder's feasible imports: no proposal
            return DsoProposal(x=center[self.index], predicted_usd=float("nan"), ok=False)
        return DsoProposal(x=np.asarray(self.model.p_import_mw.value, dtype=float), predicted_usd=float(prob.value))

    def respond(self, price_usd_per_mwh: np.ndarray) -> tuple[np.ndarray, float]:
        """Price mode: argmin local cost + dt price . p_import; returns (p_import (T,) [MW], local cost $)."""
        if "price" not in self._problems:
            price = cp.Parameter(self.t, name=f"{self.name}.price_usd_per_mwh")
            obj = self.model.local_cost_usd() + self.dt_h * (price @ self.model.p_import_mw)
            self._problems["price"] = (cp.Problem(cp.Minimize(obj), list(self.model.constraints.values())),
                                       {"price": price})
        prob, p = self._problems["price"]
        p["price"].value = self._vector("price", price_usd_per_mwh)
        self._solve(prob, "price response")
        return np.asarray(self.model.p_import_mw.value, dtype=float), float(self.model.local_cost_usd().value)

    def prox(self, target_mw: np.ndarray, rho: float) -> tuple[np.ndarray, float]:
        """ADMM: argmin local cost + rho/2 |p_import - target|^2 [rho $/MW^2]; returns (p_import (T,), cost $)."""
        if "prox" not in self._problems:
            target = cp.Parameter(self.t, name=f"{self.name}.rho_times_target_usd_per_mw")
            r = cp.Parameter(nonneg=True, name=f"{self.name}.rho")
            # rho/2 |p - t|^2 = rho/2 |p|^2 - (rho t) . p + const; rho * t as its own Parameter keeps DPP
            obj = self.model.local_cost_usd() + (0.5 * r * cp.sum_squares(self.model.p_import_mw)
                                           - cp.sum(cp.multiply(target, self.model.p_import_mw)))
            self._problems["prox"] = (cp.Problem(cp.Minimize(obj), list(self.model.constraints.values())),
                                      {"target": target, "rho": r})
        prob, p = self._problems["prox"]
        p["target"].value, p["rho"].value = float(rho) * self._vector("prox target", target_mw), float(rho)
        self._solve(prob, "ADMM proximal step")
        return np.asarray(self.model.p_import_mw.value, dtype=float), float(self.model.local_cost_usd().value)
