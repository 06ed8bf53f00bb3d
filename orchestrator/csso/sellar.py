"""The Sellar MDO problem written as two CSSO subspaces (a unit test of the loop).

    min  x^2 + z2 + y1 + exp(-y2)
    s.t. y1 = z1^2 + z2 + x - 0.2 y2,   y2 = sqrt(y1) + z1 + z2,   y1 >= 3.16,  y2 <= 24
         -10 <= z1 <= 10,  0 <= z2 <= 10,  0 <= x <= 10
    optimum f* = 3.18339 at z = (1.9776, 0), x = 0, y1 = 3.16, y2 = 3.7553.

Boundary vector b = (z1, z2, x, y1, y2): the coupling variables are boundary variables and each
discipline carries its consistency (and its constraint) as a smooth quadratic penalty of weight
``PENALTY``; the penalised optimum is within ~1e-3 of f* (bias ~ lambda^2 / (4 PENALTY)). An exact
L1 penalty has Sellar's optimum exactly but puts a kink there, where a first-order-corrected
surrogate's ratio test stalls. Discipline 1 owns the objective and y1; discipline 2 owns y2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from orchestrator.csso.surrogate import SurrogateWeights

PENALTY = 100.0
LOWER = np.array([-10.0, 0.0, 0.0, 1.0, -10.0])
UPPER = np.array([10.0, 10.0, 10.0, 30.0, 24.0])
INDEX_1 = np.array([0, 1, 2, 3, 4])
INDEX_2 = np.array([0, 1, 3, 4])
F_STAR = 3.18339


@dataclass(frozen=True)
class SellarResponse:
    cost_usd: float  # nominal units
    gradient: np.ndarray


@dataclass(frozen=True)
class SellarProposal:
    x: np.ndarray
    predicted_usd: float
    ok: bool = True


def _f1(b: np.ndarray) -> tuple[float, np.ndarray]:
    z1, z2, x, y1, y2 = b
    r = y1 - (z1**2 + z2 + x - 0.2 * y2)
    viol = 3.16 - y1
    f = x**2 + z2 + y1 + np.exp(-y2) + PENALTY * r**2 + PENALTY * max(0.0, viol) ** 2
    g = np.array([-2 * z1, -1.0, -1.0, 1.0, 0.2]) * 2 * PENALTY * r
    g += np.array([0.0, 1.0, 2 * x, 1.0, -np.exp(-y2)])
    g[3] -= 2 * PENALTY * max(0.0, viol)
    return float(f), g


def _f2(b: np.ndarray) -> tuple[float, np.ndarray]:
    z1, z2, y1, y2 = b
    r = y2 - (np.sqrt(y1) + z1 + z2)
    f = PENALTY * r**2 + PENALTY * max(0.0, y2 - 24.0) ** 2
    g = 2 * PENALTY * r * np.array([-1.0, -1.0, -0.5 / np.sqrt(y1), 1.0])
    g[3] += 2 * PENALTY * max(0.0, y2 - 24.0)
    return float(f), g


class SellarDiscipline:
    """Discipline 1 or 2 of Sellar as a CSSO subspace."""

    def __init__(self, which: int) -> None:
        if which not in (1, 2):
            raise ValueError(f"Sellar discipline must be 1 or 2, got {which}")
        self.which = which
        self.index = INDEX_1 if which == 1 else INDEX_2
        self.fn = _f1 if which == 1 else _f2

    def evaluate(self, b: np.ndarray) -> SellarResponse:
        f, g = self.fn(np.asarray(b, dtype=float))
        return SellarResponse(f, g)

    def evaluate_many(self, points: np.ndarray) -> list[SellarResponse]:
        return [self.evaluate(p) for p in np.atleast_2d(points)]

    def optimize(self, others: list[tuple[np.ndarray, SurrogateWeights]], center: np.ndarray,
                 move: np.ndarray) -> SellarProposal:
        """Own exact response plus the others' surrogates over own entries, others' fixed at center."""
        idx = self.index
        lo = np.maximum(center - move, LOWER)[idx]
        hi = np.minimum(center + move, UPPER)[idx]

        def total(xi: np.ndarray) -> float:
            full = center.copy()
            full[idx] = xi
            return self.fn(xi)[0] + sum(float(w.value(full[j])) for j, w in others)

        res = minimize(total, np.clip(center[idx], lo, hi), method="Powell", bounds=list(zip(lo, hi, strict=True)))
        return SellarProposal(x=np.asarray(res.x, dtype=float), predicted_usd=float(res.fun))


def sellar_objective(b: np.ndarray) -> float:
    """Sellar's objective at a consistent point (for checking): x^2 + z2 + y1 + exp(-y2)."""
    return float(b[2] ** 2 + b[1] + b[3] + np.exp(-b[4]))
