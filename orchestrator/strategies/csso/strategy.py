"""``csso``: Concurrent Subspace Optimization over the boundary imports (``orchestrator.strategies.csso.loop``).

The TSO and every DSO run as subspaces (Ray actors by default); the orchestrator sees only boundary
imports, sensitivities and the ICNN surrogate weights. Options (``RunOptions.extra``): ``executor``
("ray" | "serial"), ``best_known_usd`` (J* for the gap column), ``csso_max_rounds``,
``csso_radius_mw`` (initial trust radius), ``csso_n_doe`` (random design points per round; 0 by
default: measured, they cost 2 of 5 evaluations per round and did not change a single accepted step),
``csso_speculate``, ``csso_tso_proposal`` (evaluate the TSO's whole-boundary proposal as a candidate;
off: never accepted in the reference case, and it costs every DSO one evaluation per round),
``csso_refit_epochs`` (Adam epochs of a warm-started refit, 100; the first fit uses 300),
``csso_stop_gap`` (stop once the gap to ``best_known_usd`` is below it; off by default).
"""

from __future__ import annotations

import time

import numpy as np

from orchestrator.strategies.base import RunOptions, RunResult, Strategy
from orchestrator.strategies.csso.loop import CssoOptions, run_csso
from orchestrator.strategies.iterative import best_known, executor_for, finish, progress_line, start_point
from orchestrator.system import CoordinatedSystem

#: boundary bounds around the start point [MW]: wide; the elastic evaluation prices infeasibility
BOUND_MW = 10.0


class Csso(Strategy[CoordinatedSystem]):
    name = "csso"

    def run(self, system: CoordinatedSystem, options: RunOptions) -> RunResult:
        t0 = time.perf_counter()
        ex = options.extra
        executor, layout = executor_for(system, options)
        try:
            x0 = start_point(system)
            j_star = best_known(options)
            stop_gap = ex.get("csso_stop_gap")
            opts = CssoOptions(
                max_rounds=int(ex.get("csso_max_rounds", 20)), n_doe=int(ex.get("csso_n_doe", 0)),
                speculate=bool(ex.get("csso_speculate", True)),
                whole_proposals=bool(ex.get("csso_tso_proposal", False)),
                refit_epochs=int(ex.get("csso_refit_epochs", 100)),
                radius0=float(ex.get("csso_radius_mw", 0.5)), tol_f=1e-5, tol_err=2e-3,
                seed=int(ex.get("seed", 0)),
                target=None if (stop_gap is None or j_star is None) else j_star + float(stop_gap) * abs(j_star))
            rows: list[dict[str, float]] = []

            def on_round(row: dict[str, float]) -> None:
                gap = np.nan if j_star is None else (row["objective"] - j_star) / abs(j_star)
                out = {"round": row["round"], "objective_usd": row["objective"], "gap_to_best_known": gap,
                       "primal_residual_mw": row["mismatch"], "trust_radius": row["trust_radius"],
                       "surrogate_error": row["surrogate_error"], "rho": row["rho"], "wall_s": row["wall_s"]}
                rows.append(out)
                if options.progress:
                    progress_line(self.name, out)

            res = run_csso(executor, layout.indices(), x0, x0 - BOUND_MW, x0 + BOUND_MW,
                           np.ones(layout.n), opts, on_round=on_round)
            kind = type(getattr(executor, "inner", executor)).__name__  # under the checkpoint wrapper
            notes = [f"CSSO: {res.rounds} rounds, surrogate fit {res.fit_s:.2f} s, "
                     f"system coordination {res.coord_s:.2f} s, executor {kind}"]
            return finish(self.name, system, executor, layout, res.x, res.solves, res.converged, t0, rows, notes)
        finally:
            executor.close()
