"""``csso``: Concurrent Subspace Optimization of the TSO and the DSOs (``orchestrator.strategies.csso.hub``).

The TSO and every DSO run as subspaces (Ray actors by default); the orchestrator sees only boundary
imports, costs, sensitivities and the response-surface weights. Options (``RunOptions.extra``):
``executor`` ("ray" | "serial"), ``best_known_usd`` (J* for the gap column), ``csso_max_rounds`` (30),
``csso_surrogate`` ("relu": the TSO's period-by-period ICNN response surfaces; "linear": first-order
only), ``csso_hidden`` (hidden units per period, 4), ``csso_radius_mw`` (initial trust radius per DSO
import, 4 MW), ``csso_points`` (points kept per DSO for the merge, 10), ``csso_tol`` (relative stopping
tolerance, 1e-5), ``csso_stop_gap`` (also stop once the bound is within this gap of ``best_known_usd``).
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from orchestrator.strategies.base import RunOptions, RunResult, Strategy
from orchestrator.strategies.csso.hub import HubOptions, run_hub_csso
from orchestrator.strategies.iterative import (
    Trace,
    best_known,
    executor_for,
    finish,
    report_calls,
    start_point,
    start_round,
)
from orchestrator.system import CoordinatedSystem

SURROGATES = ("relu", "linear")


class Csso(Strategy[CoordinatedSystem]):
    name = "csso"
    rpcs = {"tso": ("Evaluate", "Merge", "Report"), "dso": ("Forecast", "Evaluate", "Optimize", "Report")}

    def run(self, system: CoordinatedSystem, options: RunOptions) -> RunResult:
        t_launch = time.perf_counter()
        ex = options.extra
        surrogate = str(ex.get("csso_surrogate", "relu"))
        if surrogate not in SURROGATES:
            raise ValueError(f"csso_surrogate={surrogate!r}: use one of {', '.join(SURROGATES)}")
        j_star = best_known(options)
        stop_gap = ex.get("csso_stop_gap")
        opts = HubOptions(
            max_rounds=int(ex.get("csso_max_rounds", 30)), surrogate=surrogate, hidden=int(ex.get("csso_hidden", 4)),
            radius0_mw=float(ex.get("csso_radius_mw", HubOptions.radius0_mw)), points=int(ex.get("csso_points", 10)),
            tol_f=float(ex.get("csso_tol", 1e-5)), seed=int(ex.get("seed", 0)),
            repropose=bool(ex.get("csso_repropose", False)),
            target=None if (stop_gap is None or j_star is None) else j_star + float(stop_gap) * abs(j_star))
        executor, layout = executor_for(system, options)
        t0 = time.perf_counter()  # coordination starts: every subspace is up and has built its model
        try:
            start = start_round(executor, layout, start_point(system), dsos=False)  # the TSO alone
            trace = Trace(self.name, executor, t0, options)
            trace.add(1, start.objective_usd, start.mismatch_mw, start.mismatch_mw, accepted="start")

            def on_round(row: dict[str, Any]) -> None:
                trace.add(int(row["round"]), float(row["objective"]), float(row["mismatch"]), float(row["mismatch"]),
                          accepted=row["accepted"], predicted_usd=row["predicted"], radius_mw=row["radius"])

            # in DP mode the report is two rounds of its own (``finish``): it cannot ride on the last merge round
            fold = None if ex.get("privacy") is not None else partial(report_calls, layout)
            res = run_hub_csso(executor, layout.n_dso, layout.n_periods, start.x0, start.tso, start.dsos, opts,
                               on_round=on_round, t0=t0, report=fold)
            kind = type(getattr(executor, "inner", executor)).__name__  # under the checkpoint wrapper
            notes = [f"CSSO ({surrogate} surfaces): {res.rounds} rounds, stopped: {res.stop}; surface fits "
                     f"{res.fit_s:.2f} s; executor {kind}"]
            return finish(self.name, system, executor, layout, res.x, res.converged, t0, trace.rows, notes, options,
                          startup_s=t0 - t_launch, reports=res.reports)
        finally:
            executor.close()
