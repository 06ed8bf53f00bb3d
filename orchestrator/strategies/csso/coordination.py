"""The system coordination problem: min sum_i s_i(x[idx_i]) over a box, ICNN surrogates as an LP.

Every surrogate enters as  h_i >= W_i x_i + b_i,  h_i >= 0,  s_i = c_i + a_i . x_i + v_i . h_i,
exact at the optimum because v_i >= 0. Subspaces that report constraints on their boundary slice
(equalities e_i(x_i) = 0, e.g. coupling consistency, and inequalities g_i(x_i) <= 0) enter linearised
at the centre, with an exact L1 penalty so that the LP is always feasible:

    min sum_i s_i + mu (sum |E_i x_i + e_i| + sum max(0, G_i x_i + g_i))

Weights, linearisations, penalty, centre and move limits are cvxpy Parameters, so a new round only
changes values (DPP; compiled once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from core.icnn import SurrogateWeights
from core.solver import solve_or_raise


class SystemCoordination:
    """min_x sum_i s_i(x[idx_i])  s.t.  |x - center| <= move,  lower <= x <= upper."""

    def __init__(self, n: int, indices: Sequence[np.ndarray], hidden: int, lower: np.ndarray,
                 upper: np.ndarray, solver: str = "CLARABEL", n_eq: Sequence[int] | None = None,
                 n_ineq: Sequence[int] | None = None) -> None:
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
        # linearised subspace constraints: rows (E, e) with |E x + e| <= s_eq, (G, g) with G x + g <= s_in
        self.mu = cp.Parameter(nonneg=True, name="constraint_penalty")
        self.lin: list[dict[str, cp.Parameter]] = []
        for k, idx in enumerate(self.indices):
            m_eq = 0 if n_eq is None else int(n_eq[k])
            m_in = 0 if n_ineq is None else int(n_ineq[k])
            p = {}
            xi = self.x[idx]
            if m_eq:
                p["E"], p["e"] = cp.Parameter((m_eq, idx.size), name=f"E{k}"), cp.Parameter(m_eq, name=f"e{k}")
                s_eq = cp.Variable(m_eq, nonneg=True, name=f"slack_eq{k}")
                cons.append(cp.abs(p["E"] @ xi + p["e"]) <= s_eq)
                cost = cost + self.mu * cp.sum(s_eq)
            if m_in:
                p["G"], p["g"] = cp.Parameter((m_in, idx.size), name=f"G{k}"), cp.Parameter(m_in, name=f"g{k}")
                s_in = cp.Variable(m_in, nonneg=True, name=f"slack_ineq{k}")
                cons.append(p["G"] @ xi + p["g"] <= s_in)
                cost = cost + self.mu * cp.sum(s_in)
            self.lin.append(p)
        self.problem = cp.Problem(cp.Minimize(cost), cons)

    def solve(self, weights: Sequence[SurrogateWeights], center: np.ndarray, move: np.ndarray,
              linear: Sequence[Linearization] | None = None, penalty: float = 0.0) -> np.ndarray:
        """The minimiser x (n,) of the surrogate sum (+ penalised linearised constraints) in the trust region."""
        for p, w in zip(self.params, weights, strict=True):
            p["w"].value, p["b"].value, p["v"].value, p["a"].value = w.w, w.b, np.maximum(w.v, 0.0), w.a
        self.mu.value = float(penalty)
        for k, p in enumerate(self.lin):
            if not p:
                continue
            if linear is None:
                raise ValueError(f"system coordination: subspace {k} has constraints but no linearisation was given")
            lin = linear[k]
            if "E" in p:
                p["E"].value, p["e"].value = lin.eq_jacobian, lin.eq - lin.eq_jacobian @ lin.x
            if "G" in p:
                p["G"].value, p["g"].value = lin.ineq_jacobian, lin.ineq - lin.ineq_jacobian @ lin.x
        self.center.value, self.move.value = np.asarray(center, float), np.asarray(move, float)
        solve_or_raise(self.problem, self.solver, "CSSO system coordination")
        return np.asarray(self.x.value, dtype=float)


def surrogate_sum(weights: Sequence[SurrogateWeights], indices: Sequence[np.ndarray], x: np.ndarray) -> float:
    """sum_i s_i(x[idx_i]) at one point x (n,)."""
    return float(sum(float(w.value(x[idx])) for w, idx in zip(weights, indices, strict=True)))


@dataclass(frozen=True)
class Linearization:
    """A subspace's constraints at x (n_i,): eq (m,) = 0 and ineq (p,) <= 0 with their Jacobians (., n_i)."""

    x: np.ndarray
    eq: np.ndarray
    eq_jacobian: np.ndarray
    ineq: np.ndarray
    ineq_jacobian: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray, response: object) -> Linearization:
        """From a response with optional ``eq``, ``eq_jacobian``, ``ineq``, ``ineq_jacobian`` (none: no rows)."""
        n = np.asarray(x).size

        def rows(name: str) -> tuple[np.ndarray, np.ndarray]:
            v = getattr(response, name, None)
            if v is None:
                return np.zeros(0), np.zeros((0, n))
            return np.atleast_1d(np.asarray(v, float)), np.atleast_2d(np.asarray(getattr(response, name + "_jacobian"),
                                                                                float)).reshape(-1, n)

        eq, e_j = rows("eq")
        ineq, i_j = rows("ineq")
        return cls(np.asarray(x, float).copy(), eq, e_j, ineq, i_j)

    def violation(self, x: np.ndarray | None = None) -> float:
        """sum |eq| + sum max(0, ineq), exact at self.x or linearised at another x."""
        eq, ineq = self.eq, self.ineq
        if x is not None:
            d = np.asarray(x, float) - self.x
            eq, ineq = eq + self.eq_jacobian @ d, ineq + self.ineq_jacobian @ d
        return float(np.abs(eq).sum() + np.maximum(ineq, 0.0).sum())
