"""``isolated``: the usual-practice baseline, no iteration.

1. Each DSO sends a day-ahead forecast of its import: its loads plus uncontrolled EV charging
   ("charge on arrival at full power") minus all available PV (no losses, microturbines off).
2. The TSO clears against those forecasts; the clearing price at each boundary bus is sent back.
3. Each DSO dispatches its feeder at that price with the EVs uncontrolled.
4. The TSO balances the difference between forecast and actual imports (re-dispatch with the
   actual imports): the realised system cost is what ``objective_usd`` reports.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from core.traffic import Traffic
from dso.inputs import import_forecast_mw
from dso.problem import DsoProblem
from orchestrator.strategies.base import RunOptions, RunResult, Strategy, array_bytes
from orchestrator.system.embedded import EmbeddedSystem
from tso.problem import TsoProblem


class Isolated(Strategy[EmbeddedSystem]):
    name = "isolated"
    private_data = True
    #: the exchanges of today's practice as the services' messages: forecasts up (Forecast), the TSO clears
    #: (Evaluate), prices down (Respond), actual imports up for settlement (Evaluate), reports
    rpcs = {"tso": ("Evaluate", "Report"), "dso": ("Forecast", "Respond", "Report")}

    def run(self, system: EmbeddedSystem, options: RunOptions) -> RunResult:
        t0 = time.perf_counter()
        traffic = Traffic()
        forecast = np.vstack([import_forecast_mw(f.inputs_uncontrolled) for f in system.feeders])
        tso = TsoProblem(system.tso_data, system.tso_inputs, losses=system.spec.transmission.losses,
                         solver=options.solver)
        # round 1: forecasts up, clearing prices down
        traffic.rounds += 1
        traffic.add_exchange(len(system.feeders), array_bytes(forecast))
        cleared = tso.solve(forecast)
        traffic.subspace_solves += 1
        prices = cleared.dispatch.price_dso_usd_per_mwh
        traffic.add_exchange(len(system.feeders), array_bytes(prices))
        # DSOs dispatch at the price (EVs uncontrolled)
        dispatches = {}
        for k, f in enumerate(system.feeders):
            sol = DsoProblem(f.data, f.inputs_uncontrolled, mode="price", solver=options.solver).solve(
                price_usd_per_mwh=prices[k])
            traffic.subspace_solves += 1
            dispatches[f.feeder_id] = sol.dispatch
        # round 2: actual imports up for settlement; the TSO re-dispatches to balance them
        actual = np.vstack([dispatches[k].p_import_mw for k in system.feeder_ids])
        traffic.rounds += 1
        traffic.add_exchange(len(system.feeders), array_bytes(actual))
        settled = tso.solve(actual)
        traffic.subspace_solves += 1
        wall_s = time.perf_counter() - t0
        if options.extra.get("transcript") is not None:  # the privacy study's record of the exchanges
            _record(options.extra["transcript"], forecast, cleared, prices, actual, settled, dispatches,
                    system.feeder_ids)
        feeders = {k: system.feeder_report(k, d, controlled=False, ac=options.ac_check) for k, d in dispatches.items()}
        return RunResult(
            strategy=self.name, tso=system.tso_report(settled.dispatch), feeders=feeders,
            boundary_price_usd_per_mwh={k: prices[i] for i, k in enumerate(system.feeder_ids)},
            traffic=traffic, converged=True, wall_s=wall_s, report_s=time.perf_counter() - t0 - wall_s,
            ev_controlled=False,
            notes=[f"forecast error (max |actual - forecast| import): "
                   f"{float(np.max(np.abs(actual - forecast))):.3f} MW"],
        )


def _record(transcript: Any, forecast: np.ndarray, cleared: Any, prices: np.ndarray, actual: np.ndarray,
            settled: Any, dispatches: dict[str, Any], ids: list[str]) -> None:
    """The exchanges of today's practice as the iterative strategies' calls (``orchestrator.runtime.transcript``):
    forecasts up, the TSO clears (Evaluate), prices down (Respond), actual imports up (Evaluate), reports."""
    from core.subspace import Evaluate, Evaluation, Report, Respond
    from orchestrator.runtime.transcript import Entry

    def cleared_at(sol: Any) -> Evaluation:
        p = np.asarray(sol.dispatch.price_dso_usd_per_mwh, float)
        return Evaluation(cost_usd=float("nan"), sensitivity_usd_per_mwh=p, penalty_usd=0.0, mismatch_mw=0.0,
                          dt_h=float("nan"))

    transcript.forecast = forecast.reshape(-1).copy()
    transcript.entries.append(Entry(1, 0, Evaluate(forecast.reshape(-1)), [cleared_at(cleared)]))
    for k in range(len(ids)):
        transcript.entries.append(Entry(1, 1 + k, Respond(prices[k]), (actual[k], float("nan"))))
    transcript.entries.append(Entry(2, 0, Evaluate(actual.reshape(-1)), [cleared_at(settled)]))
    transcript.entries.append(Entry(3, 0, Report(actual.reshape(-1)), None))
    for k, fid in enumerate(ids):
        transcript.entries.append(Entry(3, 1 + k, Report(actual[k]), dispatches[fid]))
