"""Privacy accounting by zero-concentrated differential privacy (zCDP; Bun & Steinke, "Concentrated
Differential Privacy: Simplifications, Extensions, and Lower Bounds", TCC 2016, arXiv:1605.02065).

- The Gaussian mechanism with L2 sensitivity Delta and noise N(0, sigma^2 I) is rho-zCDP with
  rho = Delta^2 / (2 sigma^2) (their Prop. 1.6).
- zCDP composes additively: releases of rho_1, ..., rho_n are (sum rho_i)-zCDP (Lemma 1.7).
- rho-zCDP implies (epsilon, delta)-DP for every delta > 0 with epsilon = rho + 2 sqrt(rho ln(1/delta))
  (Prop. 1.3); ``rho_from_epsilon`` inverts it: sqrt(rho) = sqrt(ln(1/delta) + epsilon) - sqrt(ln(1/delta)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def _check(epsilon: float | None, delta: float) -> None:
    if not (0.0 < delta < 1.0):
        raise ValueError(f"privacy: delta={delta!r} must be in (0, 1)")
    if epsilon is not None and not (epsilon > 0.0 and math.isfinite(epsilon)):
        raise ValueError(f"privacy: epsilon={epsilon!r} must be > 0 and finite")


def epsilon_from_rho(rho: float, delta: float) -> float:
    """(epsilon, delta)-DP implied by rho-zCDP: epsilon = rho + 2 sqrt(rho ln(1/delta))."""
    _check(None, delta)
    if rho < 0:
        raise ValueError(f"privacy: rho={rho!r} must be >= 0")
    return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


def rho_from_epsilon(epsilon: float, delta: float) -> float:
    """The largest rho whose rho-zCDP implies (epsilon, delta)-DP (the inverse of ``epsilon_from_rho``)."""
    _check(epsilon, delta)
    lg = math.log(1.0 / delta)
    return (math.sqrt(lg + epsilon) - math.sqrt(lg)) ** 2


@dataclass
class Accountant:
    """Adds up the zCDP cost of every release; ``epsilon(delta)`` is the run's total (epsilon, delta)-DP."""

    rho: float = 0.0
    releases: int = 0
    log: list[tuple[str, float]] = field(default_factory=list)

    def spend(self, rho: float, what: str = "") -> None:
        if not (rho >= 0 and math.isfinite(rho)):
            raise ValueError(f"privacy accountant: rho={rho!r} for {what!r} must be >= 0 and finite")
        self.rho += rho
        self.releases += 1
        self.log.append((what, rho))

    def epsilon(self, delta: float) -> float:
        return epsilon_from_rho(self.rho, delta)
