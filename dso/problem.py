"""Standalone DSO problem, built once with cvxpy Parameters (DPP) and re-solved by changing values.

price mode:        min local_cost + sum_t price[t] * p_import[t] * dt_h      (Parameter price_usd_per_mwh)
fixed_import mode: min local_cost  s.t. "boundary.p": p_import == p_import_target_mw (Parameter)

With a case objective other than cost (``FeederInputs.objective``), the cost above is weighted and the loss
[MWh] and voltage-deviation [p.u.] terms are added with their weights (``FeederModel.objective``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import cvxpy as cp
import numpy as np

from core.solver import scalar, solve_problem
from dso.model import FeederDispatch, FeederInputs, FeederModel, SolveError, build_feeder_model
from dso.network import FeederData

__all__ = ["DsoProblem", "DsoSolution", "SolveError"]

Mode = Literal["price", "fixed_import"]



@dataclass(frozen=True)
class DsoSolution:
    objective_usd: float  # optimal objective [$ over the horizon]
    local_cost_usd: float  # fuel + curtailment + loss cost [$], no energy purchase
    dispatch: FeederDispatch
    import_sensitivity_usd_per_mwh: np.ndarray | None  # (T,) d local_cost / d p_import_target[t] / dt_h
    solve_s: float  # wall time of problem.solve [s]
    status: str


class DsoProblem:
    """One feeder's dispatch problem, compiled on the first solve and re-solved via Parameters."""

    def __init__(
        self, data: FeederData, inputs: FeederInputs, mode: Mode = "price", solver: str = "CLARABEL"
    ) -> None:
        if mode not in ("price", "fixed_import"):
            raise ValueError(f"DsoProblem '{data.name}': mode={mode!r} must be 'price' or 'fixed_import'")
        self.data, self.inputs, self.mode, self.solver = data, inputs, mode, solver
        t = inputs.n_periods
        self.model: FeederModel = build_feeder_model(data, inputs)
        self.price_usd_per_mwh = cp.Parameter(t, name=f"{data.name}.price_usd_per_mwh", value=np.zeros(t))
        self.p_import_target_mw = cp.Parameter(t, name=f"{data.name}.p_import_target_mw", value=np.zeros(t))
        constraints = list(self.model.constraints.values())
        if mode == "price":
            objective = self.model.objective(inputs.dt_h * (self.price_usd_per_mwh @ self.model.p_import_mw))
            self.boundary: cp.Constraint | None = None
        else:
            objective = self.model.objective()
            self.boundary = self.model.p_import_mw == self.p_import_target_mw
            self.model.constraints["boundary.p"] = self.boundary
            constraints.append(self.boundary)
        self.problem = cp.Problem(cp.Minimize(objective), constraints)

    def solve(
        self, price_usd_per_mwh: np.ndarray | None = None, p_import_target_mw: np.ndarray | None = None
    ) -> DsoSolution:
        """Set the Parameter(s) given, solve, and return the solution; SolveError unless optimal."""
        t = self.inputs.n_periods
        if price_usd_per_mwh is not None:
            self.price_usd_per_mwh.value = self._vector("price_usd_per_mwh", price_usd_per_mwh, t)
        if p_import_target_mw is not None:
            self.p_import_target_mw.value = self._vector("p_import_target_mw", p_import_target_mw, t)
        t0 = time.perf_counter()
        try:
            status = solve_problem(self.problem, self.solver)
        except cp.error.SolverError as exc:
            msg = f"DSO '{self.data.name}': solver {self.solver} failed: {exc}"
            raise SolveError(msg, "solver_error") from exc
        solve_s = time.perf_counter() - t0
        if status != cp.OPTIMAL:
            raise SolveError(f"DSO '{self.data.name}' ({self.mode} mode) not solved to optimality", status)
        sens = None
        if self.boundary is not None:
            # d cost / d target: the dual of "p_import - target == 0" per MW, divided by dt_h.
            sens = -np.asarray(self.boundary.dual_value, dtype=float) / self.inputs.dt_h
        return DsoSolution(
            objective_usd=float(self.problem.value),
            local_cost_usd=scalar(self.model.local_cost_usd()),
            dispatch=self.model.extract(),
            import_sensitivity_usd_per_mwh=sens,
            solve_s=solve_s,
            status=status,
        )

    def _vector(self, name: str, value: np.ndarray, t: int) -> np.ndarray:
        arr = np.asarray(value, dtype=float).reshape(-1)
        if arr.shape != (t,) or not np.all(np.isfinite(arr)):
            raise ValueError(f"DSO '{self.data.name}': {name} must be {t} finite values, got {value!r}")
        return arr
