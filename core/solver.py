"""How every operator (and the orchestrator's joint problem) calls the conic solver.

Clarabel's default gap tolerance (1e-8) sometimes stalls one interior-point step short on these
problems and ends AlmostSolved (cvxpy: optimal_inaccurate), with feasibility residuals ~1e-12. The first
attempt asks for a 1e-7 gap (1e-7 of a ~1e3 $ objective is < 0.001 $) with the equilibration's scaling
factors bounded to [1e-2, 1e2] (Clarabel's default [1e-4, 1e4]); if it still stalls, one more attempt with
a 1e-6 gap and equilibration off. A stalled first attempt is accepted without that second solve when it
already meets the second attempt's tolerances: its "reduced" tolerances (the ones Clarabel tests a stalled
iterate against to call it AlmostSolved; defaults 5e-5 gap, 1e-4 feasibility, 1e-4 KKT ratio) are set to the
second attempt's full ones (1e-6 gap, 1e-8 feasibility, 1e-6 KKT ratio), so AlmostSolved there means
exactly what Solved means in the second attempt, one solve earlier. A stalled iterate short of them ends
InsufficientProgress (cvxpy raises SolverError) and goes on to the second attempt; any other status is
never accepted.

Measured on the 15 first-attempt DSO solves (~14,000 variables each) of the reference case's serial CSSO
run, replayed offline: a 1e-7 gap alone stalled on 6 (each stall cost a second solve, 1-1.8 s; 23.6 s of
solver time), with the bounded scaling on 2; those 2 met the second attempt's tolerances, so no DSO solve of
that run is solved twice. A 1e-6 gap on every first attempt stalled on none, but its prices are off by
~4e-4 $/MWh (tests/test_tso_small.py allows 1e-4), so the gap stays at 1e-7 wherever the solver gets there.

Every solve starts cold (``warm_start=False``): with warm starts cvxpy reuses the solver's state, and
the answer at a point then depends (at ~1e-6 $) on which points were solved before. Cold solves make an
operator a pure function of its inputs, so a restarted service or Ray actor and a resumed orchestrator
reproduce an undisturbed run exactly (tests/test_fault_tolerance.py).
"""

from __future__ import annotations

import warnings

import cvxpy as cp
import numpy as np

from core.errors import SolveError

RETRY_TOLERANCES: dict[str, float] = {"gap_abs": 1e-6, "gap_rel": 1e-6, "feas": 1e-8, "ktratio": 1e-6}
"""The second Clarabel attempt's full tolerances (feasibility and KKT ratio at Clarabel's defaults), and the
first attempt's reduced ones."""

RETRY_CLARABEL: dict[str, object] = {**{f"tol_{k}": v for k, v in RETRY_TOLERANCES.items()},
                                     "equilibrate_enable": False}

ATTEMPTS: dict[str, tuple[dict[str, object], ...]] = {
    "CLARABEL": (
        {"tol_gap_abs": 1e-7, "tol_gap_rel": 1e-7, "equilibrate_min_scaling": 1e-2, "equilibrate_max_scaling": 1e2,
         **{f"reduced_tol_{k}": v for k, v in RETRY_TOLERANCES.items()}},
        RETRY_CLARABEL,
    ),
}


def accepts_almost_solved(options: dict[str, object]) -> bool:
    """Whether an AlmostSolved end of an attempt with ``options`` meets the second Clarabel attempt's full
    tolerances (its reduced tolerances are at most those)."""
    for k, bound in RETRY_TOLERANCES.items():
        got = options.get(f"reduced_tol_{k}")
        if not isinstance(got, float) or got > bound:
            return False
    return True


def solve_problem(problem: cp.Problem, solver: str) -> str:
    """Solve ``problem`` with ``solver`` and return the status to act on: cvxpy's, except that a first
    attempt that stalled within the second attempt's tolerances counts as optimal (module docstring).
    A stalled solve is retried once; ``cp.error.SolverError`` if the last attempt raises it."""
    attempts = ATTEMPTS.get(solver, ({},))
    for i, options in enumerate(attempts):
        last = i == len(attempts) - 1
        with warnings.catch_warnings():  # the status is checked here; cvxpy's "may be inaccurate" is noise
            warnings.filterwarnings("ignore", message="Solution may be inaccurate", category=UserWarning)
            try:
                problem.solve(solver=solver, warm_start=False, **options)
            except cp.error.SolverError:  # InsufficientProgress short of the reduced tolerances
                if last:
                    raise
                continue
        if problem.status == cp.OPTIMAL_INACCURATE and accepts_almost_solved(options):
            return str(cp.OPTIMAL)
        if problem.status != cp.OPTIMAL_INACCURATE:
            break
    return str(problem.status)


def solve_or_raise(problem: cp.Problem, solver: str, what: str) -> float:
    """Solve ``problem`` and return its value; ``SolveError`` naming ``what`` unless the status is optimal."""
    try:
        status = solve_problem(problem, solver)
    except cp.error.SolverError as exc:
        raise SolveError(f"{what}: solver failed: {exc}", "solver_error") from exc
    if status != cp.OPTIMAL:
        raise SolveError(f"{what} did not reach optimality", status)
    return float(problem.value)


def value(expr: cp.Expression | cp.Variable | cp.Parameter) -> np.ndarray:
    """The numeric value of a cvxpy expression after a solve (float array); ``SolveError`` if it has none."""
    v = expr.value
    if v is None:
        raise SolveError(f"{type(expr).__name__} has no value: solve the problem that holds it first", None)
    return np.asarray(v, dtype=float)


def scalar(expr: cp.Expression | cp.Variable | cp.Parameter) -> float:
    """``value(expr)`` of a scalar expression as a float."""
    return float(value(expr))
