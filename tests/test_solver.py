"""core.solver: the attempts Clarabel is given, and when a stalled first attempt is accepted."""

from __future__ import annotations

from typing import Any

import cvxpy as cp
import numpy as np
import pytest

from core import solver
from core.solver import ATTEMPTS, RETRY_CLARABEL, accepts_almost_solved, solve_problem, value


class ScriptedProblem:
    """Stands in for a cp.Problem whose solves end as scripted (a status, or a SolverError)."""

    def __init__(self, outcomes: list[str | Exception]) -> None:
        self.outcomes: list[str | Exception] = list(outcomes)
        self.calls: list[dict[str, Any]] = []
        self.status: str | None = None

    def solve(self, **options: Any) -> None:
        self.calls.append(options)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        self.status = outcome


def test_every_attempt_is_a_setting_clarabel_takes_and_solves_with() -> None:
    x = cp.Variable(3)
    problem = cp.Problem(cp.Minimize(cp.sum(x) + cp.sum_squares(x - 2.0)), [x >= 0, cp.sum(x) <= 4.0])
    for options in ATTEMPTS["CLARABEL"]:
        problem.solve(solver="CLARABEL", warm_start=False, **options)
        assert problem.status == cp.OPTIMAL, options
        assert np.allclose(value(x), 4.0 / 3.0, atol=1e-6)


def test_a_stall_is_accepted_only_within_the_second_attempts_tolerances() -> None:
    first, second = ATTEMPTS["CLARABEL"]
    assert second is RETRY_CLARABEL
    assert accepts_almost_solved(first)
    assert not accepts_almost_solved(second)  # Clarabel's default reduced tolerances: 5e-5 gap, 1e-4 feasibility
    for key in ("reduced_tol_gap_abs", "reduced_tol_gap_rel", "reduced_tol_feas", "reduced_tol_ktratio"):
        looser = {**first, key: float(first[key]) * 10}  # type: ignore[arg-type]
        assert not accepts_almost_solved(looser), key


def test_a_first_attempt_that_stalls_within_them_is_not_solved_again() -> None:
    p = ScriptedProblem([cp.OPTIMAL_INACCURATE])
    assert solve_problem(p, "CLARABEL") == cp.OPTIMAL  # type: ignore[arg-type]
    assert len(p.calls) == 1


def test_a_first_attempt_that_stalls_short_of_them_is_solved_again(monkeypatch: pytest.MonkeyPatch) -> None:
    p = ScriptedProblem([cp.error.SolverError("insufficient progress"), cp.OPTIMAL])
    assert solve_problem(p, "CLARABEL") == cp.OPTIMAL  # type: ignore[arg-type]
    assert [c.get("tol_gap_rel") for c in p.calls] == [1e-7, 1e-6]
    # a stall in the last attempt is reported as such, never as optimal
    p = ScriptedProblem([cp.error.SolverError("insufficient progress"), cp.OPTIMAL_INACCURATE])
    assert solve_problem(p, "CLARABEL") == cp.OPTIMAL_INACCURATE  # type: ignore[arg-type]
    p = ScriptedProblem([cp.error.SolverError("a"), cp.error.SolverError("b")])
    with pytest.raises(cp.error.SolverError, match="b"):
        solve_problem(p, "CLARABEL")  # type: ignore[arg-type]
    # with default reduced tolerances a first attempt's AlmostSolved is not enough: the second attempt runs
    monkeypatch.setitem(solver.ATTEMPTS, "CLARABEL", ({"tol_gap_rel": 1e-7}, RETRY_CLARABEL))
    p = ScriptedProblem([cp.OPTIMAL_INACCURATE, cp.OPTIMAL])
    assert solve_problem(p, "CLARABEL") == cp.OPTIMAL  # type: ignore[arg-type]
    assert len(p.calls) == 2


def test_an_infeasible_problem_is_reported_not_retried() -> None:
    p = ScriptedProblem([cp.INFEASIBLE])
    assert solve_problem(p, "CLARABEL") == cp.INFEASIBLE  # type: ignore[arg-type]
    assert len(p.calls) == 1
