"""The system coordination problem: min sum_i s_i(x[idx_i]) over a box, ICNN surrogates as an LP.

Every surrogate enters as  h_i >= W_i x_i + b_i,  h_i >= 0,  s_i = c_i + a_i . x_i + v_i . h_i,
exact at the optimum because v_i >= 0. Weights, centre and move limits are cvxpy Parameters, so a
new round only changes values (DPP; compiled once).
"""

from __future__ import annotations

from collections.abc import Sequence

import cvxpy as cp
import numpy as np

from orchestrator.csso.surrogate import SurrogateWeights


class SystemCoordination:
    """min_x sum_i s_i(x[idx_i])  s.t.  |x - center| <= move,  lower <= x <= upper."""

    def __init__(self, n: int, indices: Sequence[np.ndarray], hidden: int, lower: np.ndarray,
                 upper: np.ndarray, solver: str = "CLARABEL") -> None:
        self.n, self.indices, self.solver = n, [np.asarray(i) for i in indices], solver
        self.x = cp.Variable(n, name="boundary")
        self.center = cp.Parameter(n, name="center")
        self.move = cp.Parameter(n, nonneg=True, name="move")
        self.params: list[dict[str, cp.Parameter]] = []
        cost: cp.Expression = cp.Constant(0.0)
        cons: list[cp.Constraint] = [cp.abs(self.x - self.center) <= self.move, self.x >= lower, self.x <= upper]
        for k, idx in enumerate(self.indices):
            p = {"w": cp.Parameter((hidden, idx.size), name=f"w{k}"), "b": cp.Parameter(hidden, name=f"b{k}"),
                 "v": cp.Parameter(hidden, nonneg=True, name=f"v{k}"), "a": cp.Parameter(idx.size, name=f"a{k}")}
            h = cp.Variable(hidden, nonneg=True, name=f"h{k}")
            xi = self.x[idx]
            cons.append(h >= p["w"] @ xi + p["b"])
            cost = cost + p["a"] @ xi + p["v"] @ h
            self.params.append(p)
        self.problem = cp.Problem(cp.Minimize(cost), cons)

    def solve(self, weights: Sequence[SurrogateWeights], center: np.ndarray, move: np.ndarray) -> np.ndarray:
        """The minimiser x (n,) of the surrogate sum inside the trust region."""
        from orchestrator.strategies.solve import solve_or_raise

        for p, w in zip(self.params, weights, strict=True):
            p["w"].value, p["b"].value, p["v"].value, p["a"].value = w.w, w.b, np.maximum(w.v, 0.0), w.a
        self.center.value, self.move.value = np.asarray(center, float), np.asarray(move, float)
        solve_or_raise(self.problem, self.solver, "CSSO system coordination")
        return np.asarray(self.x.value, dtype=float)


def surrogate_sum(weights: Sequence[SurrogateWeights], indices: Sequence[np.ndarray], x: np.ndarray) -> float:
    """sum_i s_i(x[idx_i]) at one point x (n,)."""
    return float(sum(float(w.value(x[idx])) for w, idx in zip(weights, indices, strict=True)))
