"""An optimality checker for the conic problems the operators solve (tests only).

cvxpy compiles a problem to the standard conic form (the data it hands Clarabel)

    min 1/2 x'P x + c'x   s.t.  A x + s = b,  s in K = {0}^z x R+^l x SOC(q_1) x ... x SOC(q_m)

(``problem.get_problem_data``). The checker solves that form with Clarabel directly and verifies the three
KKT conditions on the returned (x, s, z):

- primal feasibility: |A x + s - b| and the distance of s from K;
- dual feasibility and complementarity: z in K* (= K for these cones) and s'z = 0;
- stationarity: P x + c + A'z = 0;

and that the certified optimum equals the value the problem reported when the operator solved it (so the
operator's own solve, whatever its settings and retries, reached the optimum). Residuals are relative to
the size of the data they balance.
"""

from __future__ import annotations

from dataclasses import dataclass

import clarabel
import cvxpy as cp
import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class KktReport:
    primal_residual: float  # max |A x + s - b| / (1 + max |b|)
    cone_violation: float  # how far s and z are outside their cones
    complementarity: float  # |s'z| / (1 + |objective|)
    stationarity: float  # max |P x + c + A'z| / (1 + max |c|)
    objective: float  # the certified optimum (without cvxpy's constant offset)
    objective_gap_rel: float  # |reported - certified| / (1 + |certified|)

    def worst(self) -> float:
        return max(self.primal_residual, self.cone_violation, self.complementarity, self.stationarity,
                   self.objective_gap_rel)


def _cone_distance(v: np.ndarray, zero: int, nonneg: int, soc: list[int], dual: bool) -> float:
    worst = 0.0
    if not dual and zero:
        worst = max(worst, float(np.max(np.abs(v[:zero]))))
    off = zero
    if nonneg:
        worst = max(worst, float(np.max(np.maximum(-v[off:off + nonneg], 0.0))))
    off += nonneg
    for q in soc:
        t, u = v[off], v[off + 1:off + q]
        worst = max(worst, float(max(np.linalg.norm(u) - t, 0.0)))
        off += q
    return worst


def check_optimality(problem: cp.Problem) -> KktReport:
    """KKT residuals of ``problem`` (solved before, so that ``problem.value`` is its reported optimum)."""
    reported = problem.value
    if reported is None:
        raise ValueError("check_optimality: solve the problem first")
    data, _, _ = problem.get_problem_data(cp.CLARABEL)
    dims = data["dims"]
    if dims.exp or dims.psd or dims.p3d:
        raise ValueError("check_optimality: only zero, nonnegative and second-order cones are supported")
    d = data["param_prob"].apply_parameters(quad_obj=True)[2]  # the objective's constant term
    n = np.asarray(data["c"]).size
    p_mat = sp.csc_matrix(data["P"]) if data.get("P") is not None else sp.csc_matrix((n, n))
    a_mat, c, b = sp.csc_matrix(data["A"]), np.asarray(data["c"], dtype=float), np.asarray(data["b"], dtype=float)
    cones = []
    if dims.zero:
        cones.append(clarabel.ZeroConeT(dims.zero))
    if dims.nonneg:
        cones.append(clarabel.NonnegativeConeT(dims.nonneg))
    cones += [clarabel.SecondOrderConeT(q) for q in dims.soc]
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    settings.tol_gap_abs = settings.tol_gap_rel = 1e-9
    sol = clarabel.DefaultSolver(sp.triu(p_mat).tocsc(), c, a_mat, b, cones, settings).solve()
    x, s, z = np.asarray(sol.x), np.asarray(sol.s), np.asarray(sol.z)
    objective = float(0.5 * x @ (p_mat @ x) + c @ x + float(d))
    soc = [int(q) for q in dims.soc]
    return KktReport(
        primal_residual=float(np.max(np.abs(a_mat @ x + s - b), initial=0.0)) / (1.0 + float(np.max(np.abs(b)))),
        cone_violation=max(_cone_distance(s, dims.zero, dims.nonneg, soc, dual=False),
                           _cone_distance(z, dims.zero, dims.nonneg, soc, dual=True)),
        complementarity=abs(float(s @ z)) / (1.0 + abs(objective)),
        stationarity=float(np.max(np.abs(p_mat @ x + c + a_mat.T @ z), initial=0.0)) / (1.0 + float(np.max(np.abs(c)))),
        objective=objective,
        objective_gap_rel=abs(float(reported) - objective) / (1.0 + abs(objective)),
    )
