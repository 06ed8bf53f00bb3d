"""The TSO's own problem with the DSO boundary withdrawals fixed by a Parameter (built once, DPP)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from core.errors import SolveError
from core.solver import solve_problem
from tso.model import TsoDispatch, TsoInputs, build_tso_model
from tso.network import TransmissionData, TransmissionDataError

__all__ = ["SolveError", "TsoProblem", "TsoSolution"]



@dataclass(frozen=True)
class TsoSolution:
    """Result of one TSO solve at a fixed boundary."""

    objective_usd: float
    dispatch: TsoDispatch
    boundary_sensitivity_usd_per_mwh: np.ndarray  # (K, T) d cost / d p_dso_target / dt_h
    solve_s: float
    status: str


class TsoProblem:
    """min cost_usd  s.t. TSO model, p_dso_mw == p_dso_target_mw ("boundary.p").

    Compiled on the first solve; later solves only change ``p_dso_target_mw.value``.
    """

    def __init__(
        self, data: TransmissionData, inputs: TsoInputs, losses: bool = True, solver: str = "CLARABEL"
    ) -> None:
        self.model = build_tso_model(data, inputs, losses=losses)
        self.solver = solver
        k, t = self.model.p_dso_mw.shape
        self.p_dso_target_mw = cp.Parameter((k, t), name="p_dso_target_mw")
        self.constraints = dict(self.model.constraints)
        self.constraints["boundary.p"] = self.model.p_dso_mw == self.p_dso_target_mw
        self.problem = cp.Problem(cp.Minimize(self.model.cost_usd()), list(self.constraints.values()))
        self.n_solves = 0

    def solve(self, p_dso_target_mw: np.ndarray) -> TsoSolution:
        """Solve with the DSO withdrawals fixed to ``p_dso_target_mw`` (K, T) MW; SolveError on failure."""
        target = np.asarray(p_dso_target_mw, dtype=float)
        if target.shape != self.p_dso_target_mw.shape:
            raise TransmissionDataError(
                f"p_dso_target_mw has shape {target.shape}, expected {self.p_dso_target_mw.shape}"
            )
        bad = np.argwhere(~np.isfinite(target))
        if bad.size:
            at = tuple(int(i) for i in bad[0])
            raise TransmissionDataError(f"p_dso_target_mw[{at}] = {target[at]}")
        self.p_dso_target_mw.value = target
        start = time.perf_counter()
        try:
            status = solve_problem(self.problem, self.solver)
        except cp.error.SolverError as exc:
            raise SolveError(f"TSO solve failed: {exc}", "solver_error") from exc
        solve_s = time.perf_counter() - start
        if status != cp.OPTIMAL:
            raise SolveError("TSO solve did not reach optimality", status)
        self.n_solves += 1
        dual = np.asarray(self.constraints["boundary.p"].dual_value)
        # "boundary.p" reads p_dso - target == 0; raising the target by 1 MW changes cost by -dual
        return TsoSolution(
            objective_usd=float(self.problem.value),
            dispatch=self.model.extract(),
            boundary_sensitivity_usd_per_mwh=-dual / self.model.inputs.dt_h,
            solve_s=solve_s,
            status=status,
        )
