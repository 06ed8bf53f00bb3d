"""The Sellar MDO problem written as two CSSO subspaces (a unit test of the loop).

    min  x^2 + z2 + y1 + exp(-y2)
    s.t. y1 = z1^2 + z2 + x - 0.2 y2,   y2 = sqrt(y1) + z1 + z2,   g1 = 1 - y1/3.16 <= 0,  g2 = y2/24 - 1 <= 0
         -10 <= z1 <= 10,  0 <= z2 <= 10,  0 <= x <= 10
    optimum f* = 3.18339 at z = (1.9776, 0), x = 0, y1 = 3.16, y2 = 3.7553 (Sellar, Batill, Renaud 1996).

Decomposition (individual-discipline-feasible is NOT assumed): the boundary vector is
b = (z1, z2, x, y1, y2), shared design variables plus the coupling variables. Each discipline only
knows its own analysis and reports, at any b, its cost, the gradient, and its own constraints with
their Jacobians (``eq``: the consistency of the coupling variable it computes; ``ineq``: its design
constraint). The orchestrator never sees the analyses: it fits the costs with ICNN surrogates and
enforces consistency in the system coordination by linearising the reported constraints (exact L1
merit, ``CssoOptions.constraint_penalty``).

- discipline 1: cost x^2 + z2 + y1 + exp(-y2) (it owns the objective);
  eq1 = y1 - (z1^2 + z2 + x - 0.2 y2) = 0;  g1 = 1 - y1/3.16 <= 0.
- discipline 2: cost 0;  eq2 = y2 - (sqrt(y1) + z1 + z2) = 0;  g2 = y2/24 - 1 <= 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from core.icnn import SurrogateTerm
from core.subspace import BoundaryStep, Columns, Merge, Proposal

LOWER = np.array([-10.0, 0.0, 0.0, 1.0, -10.0])
UPPER = np.array([10.0, 10.0, 10.0, 30.0, 24.0])
INDEX_1 = np.array([0, 1, 2, 3, 4])
INDEX_2 = np.array([0, 1, 3, 4])
F_STAR = 3.18339
Z_STAR = np.array([1.9776, 0.0])


@dataclass(frozen=True)
class SellarResponse:
    cost_usd: float  # the discipline's share of the objective (nominal units)
    gradient: np.ndarray  # d cost / d b_i
    eq: np.ndarray  # (1,) consistency residual of the coupling variable this discipline computes
    eq_jacobian: np.ndarray  # (1, n_i)
    ineq: np.ndarray  # (1,) design constraint, <= 0 when satisfied
    ineq_jacobian: np.ndarray  # (1, n_i)

    def violation(self) -> float:
        return float(np.abs(self.eq).sum() + np.maximum(self.ineq, 0.0).sum())


def _discipline_1(b: np.ndarray) -> SellarResponse:
    z1, z2, x, y1, y2 = b
    f = x**2 + z2 + y1 + np.exp(-y2)
    g = np.array([0.0, 1.0, 2 * x, 1.0, -np.exp(-y2)])
    eq = y1 - (z1**2 + z2 + x - 0.2 * y2)
    return SellarResponse(float(f), g, np.array([eq]), np.array([[-2 * z1, -1.0, -1.0, 1.0, 0.2]]),
                          np.array([1.0 - y1 / 3.16]), np.array([[0.0, 0.0, 0.0, -1.0 / 3.16, 0.0]]))


def _discipline_2(b: np.ndarray) -> SellarResponse:
    z1, z2, y1, y2 = b
    if y1 <= 0:
        raise ValueError(f"Sellar discipline 2: y1 = {y1} must be > 0 (sqrt)")
    eq = y2 - (np.sqrt(y1) + z1 + z2)
    return SellarResponse(0.0, np.zeros(4), np.array([eq]), np.array([[-1.0, -1.0, -0.5 / np.sqrt(y1), 1.0]]),
                          np.array([y2 / 24.0 - 1.0]), np.array([[0.0, 0.0, 0.0, 1.0 / 24.0]]))


class SellarDiscipline:
    """Discipline 1 or 2 of Sellar as a CSSO subspace over its slice of b = (z1, z2, x, y1, y2)."""

    def __init__(self, which: int, penalty: float = 100.0) -> None:
        if which not in (1, 2):
            raise ValueError(f"Sellar discipline must be 1 or 2, got {which}")
        self.which, self.penalty = which, penalty
        self.name = f"sellar{which}"
        self.index = INDEX_1 if which == 1 else INDEX_2
        self.fn = _discipline_1 if which == 1 else _discipline_2

    def evaluate(self, b: np.ndarray) -> SellarResponse:
        return self.fn(np.asarray(b, dtype=float))

    def evaluate_many(self, points: np.ndarray) -> list[SellarResponse]:
        return [self.evaluate(p) for p in np.atleast_2d(points)]

    def optimize(self, others: list[SurrogateTerm], center: np.ndarray, move: np.ndarray) -> Proposal:
        """Own exact merit (cost + penalty * own violation) plus the others' surrogates, in the move box."""
        idx = self.index
        lo = np.maximum(center - move, LOWER)[idx]
        hi = np.minimum(center + move, UPPER)[idx]

        def total(xi: np.ndarray) -> float:
            full = center.copy()
            full[idx] = xi
            r = self.fn(xi)
            return r.cost_usd + self.penalty * r.violation() + sum(float(w.value(full[j])) for j, w in others)

        res = minimize(total, np.clip(center[idx], lo, hi), method="Powell", bounds=list(zip(lo, hi, strict=True)))
        return Proposal(x=np.asarray(res.x, dtype=float), predicted_usd=float(res.fun))

    def _own_min(self, extra: Callable[[np.ndarray], float], start: np.ndarray) -> BoundaryStep:
        """min own merit (cost + penalty * own violation) + extra(b_i) over the bounds of its slice."""
        lo, hi = LOWER[self.index], UPPER[self.index]

        def total(xi: np.ndarray) -> float:
            r = self.fn(xi)
            return r.cost_usd + self.penalty * r.violation() + extra(xi)

        res = minimize(total, np.clip(start, lo, hi), method="Powell", bounds=list(zip(lo, hi, strict=True)))
        x = np.asarray(res.x, dtype=float)
        return x, self.fn(x).cost_usd

    def respond(self, price_usd_per_mwh: np.ndarray) -> BoundaryStep:
        """The slice it would choose at a price on each of its entries (price . b_i added to its merit)."""
        price = np.asarray(price_usd_per_mwh, dtype=float)
        return self._own_min(lambda xi: float(price @ xi), 0.5 * (LOWER + UPPER)[self.index])

    def prox(self, target_mw: np.ndarray, rho: float) -> BoundaryStep:
        target = np.asarray(target_mw, dtype=float)
        return self._own_min(lambda xi: 0.5 * rho * float((xi - target) @ (xi - target)), target)

    def report(self, boundary: np.ndarray) -> SellarResponse:
        return self.evaluate(boundary)

    def merge(self, columns: Columns) -> Merge:
        raise NotImplementedError("Sellar's disciplines overlap: there is no hub to merge their points")


def sellar_objective(b: np.ndarray) -> float:
    """Sellar's objective at a consistent point (for checking): x^2 + z2 + y1 + exp(-y2)."""
    return float(b[2] ** 2 + b[1] + b[3] + np.exp(-b[4]))


def sellar_mda(z1: float, z2: float, x: float, iters: int = 200) -> tuple[float, float]:
    """(y1, y2) by fixed-point iteration of the two analyses (for checking a result's consistency)."""
    y2 = 1.0
    for _ in range(iters):
        y1 = max(z1**2 + z2 + x - 0.2 * y2, 1e-12)
        y2 = np.sqrt(y1) + z1 + z2
    return float(y1), float(y2)
