"""The TSO as a coordination subspace over the boundary imports P (K, T) [MW].

Built once; every mode is a cvxpy Problem over the same model, compiled on its first solve and
re-solved by changing Parameter values (DPP):

- ``evaluate(P)``: elastic fixed boundary, ``p_dso = P + s_up - s_down`` with ``s >= 0`` priced at
  ``ELASTIC_PENALTY_USD_PER_MWH``; returns cost (TSO cost + penalty), d cost / d P from the dual.
- ``optimize(others, center, move)``: exact TSO model + the DSOs' ICNN surrogates (LP constraints
  ``h >= W x + b, h >= 0``; weights as Parameters) over P inside |P - center| <= move.
- ``respond(price)``: price mode, min cost - dt sum price * p_dso (for the price iteration).
- ``prox(target, rho)``: min cost + rho/2 |p_dso - target|^2 (for ADMM).

Only boundary values, sensitivities and surrogate weights go in or out; the boundary vector is P
flattened row-major (DSO k, period t) -> k * T + t.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cvxpy as cp
import numpy as np

from gridcoord.icnn import icnn_cost, set_icnn
from gridcoord.solver import solve_problem
from tso.errors import SolveError
from tso.model import TsoDispatch, TsoInputs, build_tso_model
from tso.network import TransmissionData, TransmissionDataError

__all__ = ["ELASTIC_PENALTY_USD_PER_MWH", "TsoProposal", "TsoResponse", "TsoSubspace"]

#: price of a boundary mismatch in the elastic evaluation; far above any marginal cost, so that an
#: optimum never uses it while infeasible design-of-experiments points still return finite values
ELASTIC_PENALTY_USD_PER_MWH = 1000.0


@dataclass(frozen=True)
class TsoResponse:
    cost_usd: float  # TSO cost + elastic penalty, $ over the horizon
    sensitivity_usd_per_mwh: np.ndarray  # (K, T) d cost / d P / dt_h
    penalty_usd: float  # elastic mismatch cost included in cost_usd
    mismatch_mw: float  # max |p_dso - P|
    dt_h: float

    @property
    def gradient(self) -> np.ndarray:
        """d cost_usd / d P, flattened (K*T,) [$/MW]."""
        return self.sensitivity_usd_per_mwh.reshape(-1) * self.dt_h


@dataclass(frozen=True)
class TsoProposal:
    x: np.ndarray  # (K*T,) proposed boundary imports [MW]
    predicted_usd: float  # own exact cost + the others' surrogates at x
    ok: bool = True


class TsoSubspace:
    """The TSO's side of the coordination (see the module docstring)."""

    def __init__(self, data: TransmissionData, inputs: TsoInputs, losses: bool = True,
                 solver: str = "CLARABEL") -> None:
        self.model = build_tso_model(data, inputs, losses=losses)
        self.solver, self.dt_h = solver, float(inputs.dt_h)
        self.shape = self.model.p_dso_mw.shape
        self.n_solves = 0
        self._problems: dict[str, tuple[cp.Problem, dict[str, Any]]] = {}

    # -- problems, built lazily (each compiled once) --------------------------------------------------
    def _elastic(self) -> tuple[cp.Problem, dict[str, Any]]:
        if "elastic" not in self._problems:
            m = self.model
            target = cp.Parameter(self.shape, name="p_dso_target_mw")
            up = cp.Variable(self.shape, nonneg=True, name="mismatch_up_mw")
            down = cp.Variable(self.shape, nonneg=True, name="mismatch_down_mw")
            boundary = m.p_dso_mw - up + down == target
            penalty = ELASTIC_PENALTY_USD_PER_MWH * self.dt_h * cp.sum(up + down)
            prob = cp.Problem(cp.Minimize(m.cost_usd() + penalty), [*m.constraints.values(), boundary])
            self._problems["elastic"] = (prob, {"target": target, "boundary": boundary, "penalty": penalty})
        return self._problems["elastic"]

    def _solve(self, prob: cp.Problem, what: str) -> None:
        try:
            status = solve_problem(prob, self.solver)
        except cp.error.SolverError as exc:
            raise SolveError(f"TSO {what}: solver failed: {exc}", "solver_error") from exc
        if status != cp.OPTIMAL:
            raise SolveError(f"TSO {what} did not reach optimality", status)
        self.n_solves += 1

    def _boundary(self, boundary: np.ndarray) -> np.ndarray:
        arr = np.asarray(boundary, dtype=float).reshape(self.shape)
        bad = np.argwhere(~np.isfinite(arr))
        if bad.size:
            at = tuple(int(i) for i in bad[0])
            raise TransmissionDataError(f"TSO boundary P{at} = {arr[at]}")
        return arr

    # -- the interface ------------------------------------------------------------------------------
    def evaluate(self, boundary: np.ndarray) -> TsoResponse:
        """Elastic solve at P = boundary ((K, T) or (K*T,)) [MW]."""
        prob, p = self._elastic()
        p["target"].value = self._boundary(boundary)
        self._solve(prob, "elastic evaluation")
        dual = np.asarray(p["boundary"].dual_value, dtype=float)
        mismatch = np.abs(self.model.p_dso_mw.value - p["target"].value)
        return TsoResponse(cost_usd=float(prob.value), sensitivity_usd_per_mwh=-dual / self.dt_h,
                           penalty_usd=float(p["penalty"].value), mismatch_mw=float(mismatch.max()),
                           dt_h=self.dt_h)

    def evaluate_many(self, points: np.ndarray) -> list[TsoResponse]:
        return [self.evaluate(p) for p in np.atleast_2d(points)]

    def dispatch(self, boundary: np.ndarray) -> TsoDispatch:
        """The full TSO dispatch at P (for the final report; not part of the iteration)."""
        self.evaluate(boundary)
        return self.model.extract()

    def optimize(self, others: list[tuple[np.ndarray, Any]], center: np.ndarray, move: np.ndarray) -> TsoProposal:
        """min TSO cost(P) + sum_j s_j(P[idx_j])  s.t. |P - center| <= move (flattened P)."""
        key = "optimize:" + ",".join(f"{i.size}x{w.w.shape[0]}" for i, w in others)
        if key not in self._problems:
            x = cp.reshape(self.model.p_dso_mw, (self.shape[0] * self.shape[1],), order="C")
            c = cp.Parameter(x.shape[0], name="center")
            mv = cp.Parameter(x.shape[0], nonneg=True, name="move")
            cost, cons, params = self.model.cost_usd(), [*self.model.constraints.values(), cp.abs(x - c) <= mv], []
            for j, (idx, w) in enumerate(others):
                s, extra, prm = icnn_cost(x[np.asarray(idx)], w.w.shape[0], f"surrogate{j}")
                cost, cons = cost + s, cons + extra
                params.append(prm)
            self._problems[key] = (cp.Problem(cp.Minimize(cost), cons), {"center": c, "move": mv, "icnn": params})
        prob, p = self._problems[key]
        for prm, (_, w) in zip(p["icnn"], others, strict=True):
            set_icnn(prm, w)
        p["center"].value, p["move"].value = np.asarray(center, float), np.asarray(move, float)
        try:
            self._solve(prob, "subspace optimisation")
        except SolveError:
            return TsoProposal(x=np.asarray(center, float), predicted_usd=float("nan"), ok=False)
        return TsoProposal(x=np.asarray(self.model.p_dso_mw.value).reshape(-1), predicted_usd=float(prob.value))

    def respond(self, price_usd_per_mwh: np.ndarray) -> tuple[np.ndarray, float]:
        """Price mode: argmin cost - dt sum price * p_dso; returns (p_dso (K, T) [MW], own cost $)."""
        if "price" not in self._problems:
            price = cp.Parameter(self.shape, name="price_usd_per_mwh")
            obj = self.model.cost_usd() - self.dt_h * cp.sum(cp.multiply(price, self.model.p_dso_mw))
            self._problems["price"] = (cp.Problem(cp.Minimize(obj), list(self.model.constraints.values())),
                                       {"price": price})
        prob, p = self._problems["price"]
        p["price"].value = self._boundary(price_usd_per_mwh)
        self._solve(prob, "price response")
        return np.asarray(self.model.p_dso_mw.value, dtype=float), float(self.model.cost_usd().value)

    def prox(self, target_mw: np.ndarray, rho: float) -> tuple[np.ndarray, float]:
        """ADMM step: argmin cost + rho/2 |p_dso - target|^2 [rho $/MW^2]; returns (p_dso (K, T), cost $)."""
        if "prox" not in self._problems:
            target = cp.Parameter(self.shape, name="rho_times_target_usd_per_mw")
            r = cp.Parameter(nonneg=True, name="rho")
            # rho/2 |p - t|^2 = rho/2 |p|^2 - (rho t) . p + const; rho * t as its own Parameter keeps DPP
            obj = self.model.cost_usd() + (0.5 * r * cp.sum_squares(self.model.p_dso_mw)
                                           - cp.sum(cp.multiply(target, self.model.p_dso_mw)))
            self._problems["prox"] = (cp.Problem(cp.Minimize(obj), list(self.model.constraints.values())),
                                      {"target": target, "rho": r})
        prob, p = self._problems["prox"]
        p["target"].value, p["rho"].value = float(rho) * self._boundary(target_mw), float(rho)
        self._solve(prob, "ADMM proximal step")
        return np.asarray(self.model.p_dso_mw.value, dtype=float), float(self.model.cost_usd().value)
