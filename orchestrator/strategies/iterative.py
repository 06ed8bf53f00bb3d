"""What the iterative strategies (csso, admm, dual) share: the boundary layout, the executor of a system's
subspaces, the start point, the final reporting round and the progress line."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from core.subspace import Report
from dso.report import FeederReport
from orchestrator.runtime.executors import Executor, make_executor
from orchestrator.strategies.base import RunOptions, RunResult
from orchestrator.system import CoordinatedSystem
from tso.report import TsoReport


@dataclass(frozen=True)
class Layout:
    """Boundary vector x = P (K, T) flattened row-major; subspace 0 = TSO (all of x), 1 + k = DSO k."""

    n_dso: int
    n_periods: int

    @property
    def n(self) -> int:
        return self.n_dso * self.n_periods

    def dso_index(self, k: int) -> np.ndarray:
        return np.arange(k * self.n_periods, (k + 1) * self.n_periods)

    def indices(self) -> list[np.ndarray]:
        return [np.arange(self.n)] + [self.dso_index(k) for k in range(self.n_dso)]


def executor_for(system: CoordinatedSystem, options: RunOptions) -> tuple[Executor, Layout]:
    """The system's subspaces on ``options.extra['executor']`` = "ray" (default) or "serial".

    ``options.extra['checkpoint']`` (an ``orchestrator.runtime.checkpoint.Checkpoint``) records every round
    and replays the rounds it already holds (``gridcoord run --resume``); ``options.extra['on_round']`` is
    called as ``on_round(n, executor)`` after each round. Either wraps the executor in a ``CheckpointedExecutor``.
    """
    subspaces = system.subspaces(options.solver, options.ac_check)
    layout = Layout(len(system.spec.feeders), system.spec.periods)
    kind = str(options.extra.get("executor", "ray"))
    executor = make_executor(kind, subspaces.factories, subspaces.shared, options.ray_address, names=subspaces.names)
    checkpoint, on_round = options.extra.get("checkpoint"), options.extra.get("on_round")
    if checkpoint is not None or on_round is not None:
        from orchestrator.runtime.checkpoint import CheckpointedExecutor

        return CheckpointedExecutor(executor, checkpoint, on_round), layout
    return executor, layout


def start_point(system: CoordinatedSystem) -> np.ndarray:
    """Every iterative strategy starts from the DSOs' naive import forecast (loads + fixed EVs - PV)."""
    return system.forecast_mw()


def best_known(options: RunOptions) -> float | None:
    """The centralized optimum J* if the caller supplied it (``options.extra['best_known_usd']``)."""
    v = options.extra.get("best_known_usd")
    return None if v is None else float(v)


def finish(strategy: str, system: CoordinatedSystem, executor: Executor, layout: Layout, x: np.ndarray,
           solves: int, converged: bool, t0: float, rows: list[dict[str, float]], notes: list[str]) -> RunResult:
    """The reporting round at the final boundary x: the TSO reports at P, each DSO at P_k.

    Counted as a round like any other but not part of the coordination: ``wall_s`` stops before it, its
    time (exact solves and each DSO's AC check) is ``report_s``. ``solves``: the coordination's subspace solves.
    """
    wall_s = time.perf_counter() - t0
    replies = executor.round([[Report(x)]] + [[Report(x[layout.dso_index(k)])] for k in range(layout.n_dso)])
    executor.traffic.subspace_solves += solves + 1 + layout.n_dso
    tso = replies[0][0]
    assert isinstance(tso, TsoReport), type(tso)
    feeders: dict[str, FeederReport] = {}
    for fid, reply in zip(system.spec.feeder_ids, replies[1:], strict=True):
        assert isinstance(reply[0], FeederReport), type(reply[0])
        feeders[fid] = reply[0]
    objectives = [r["objective_usd"] for r in rows if np.isfinite(r.get("objective_usd", np.nan))]
    if objectives and not any(np.isfinite(r.get("gap_to_best_known", np.nan)) for r in rows):
        # no J* supplied: the gap column is to the best objective this run reached
        best = min(objectives)
        for r in rows:
            r["gap_to_best_known"] = (r["objective_usd"] - best) / abs(best)
        notes = [*notes, f"gap_to_best_known: to this run's best objective {best:.2f} $ (no J* given)"]
    notes = [*notes, *getattr(executor, "notes", [])]  # a resumed run says what was replayed
    placement = executor.current_placement()  # where the actors are now (a restart may have moved one)
    prices = {k: tso.price_dso_usd_per_mwh[i] for i, k in enumerate(system.spec.feeder_ids)}
    return RunResult(strategy=strategy, tso=tso, feeders=feeders, boundary_price_usd_per_mwh=prices,
                     traffic=executor.traffic, converged=converged, wall_s=wall_s,
                     report_s=time.perf_counter() - t0 - wall_s, nodes=list(executor.nodes), convergence=rows,
                     notes=notes, placement=dict(zip(["tso", *system.spec.feeder_ids], placement, strict=True)))


def progress_line(strategy: str, row: dict[str, float]) -> None:
    print(f"{strategy} round {int(row['round']):3d}  J={row['objective_usd']:.2f} $  "
          f"gap={row['gap_to_best_known']:.2e}  r={row['primal_residual_mw']:.2e} MW  "
          f"radius={row['trust_radius']:.3g}", file=sys.stderr, flush=True)
