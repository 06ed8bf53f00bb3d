"""Solving a cvxpy problem and refusing anything but an optimal status."""

from __future__ import annotations

import cvxpy as cp

from gridcoord.solver import solve_problem  # the same solver policy as the operators


class StrategySolveError(RuntimeError):
    """A strategy's optimisation did not reach an optimal solution; nothing is written as a result."""

    def __init__(self, what: str, status: str) -> None:
        super().__init__(f"{what}: solver status '{status}' — no result written")
        self.status = status


def solve_or_raise(problem: cp.Problem, solver: str, what: str) -> float:
    """Solve ``problem``; raise ``StrategySolveError`` unless the status is optimal."""
    try:
        status = solve_problem(problem, solver)
    except cp.error.SolverError as exc:
        raise StrategySolveError(what, f"solver error: {exc}") from exc
    if status != cp.OPTIMAL:
        raise StrategySolveError(what, status)
    return float(problem.value)
