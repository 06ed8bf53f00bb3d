"""Wiring the TSO and DSO subspaces of a ``System`` to an executor (shared by csso, admm, dual)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dso.subspace import DsoSubspace
from orchestrator.runtime import Factory, RayExecutor, SerialExecutor, Shared, make_executor
from tso.subspace import TsoSubspace

if TYPE_CHECKING:  # the strategies import this module: their types only for annotations here
    from orchestrator.strategies.base import Counters, RunOptions, RunResult
    from orchestrator.system import System


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


def factories(system: System, solver: str) -> tuple[list[Factory], list[object], Layout]:
    """Subspace factories with each operator's private data as a shared (``ray.put``) object."""
    layout = Layout(len(system.feeders), system.n_periods)
    shared: list[object] = [system.tso_data, system.tso_inputs]
    facs: list[Factory] = [(TsoSubspace, (Shared(0), Shared(1), system.spec.transmission.losses, solver))]
    for k, f in enumerate(system.feeders):
        shared += [f.data, f.inputs]
        facs.append((DsoSubspace, (Shared(2 + 2 * k), Shared(3 + 2 * k), layout.dso_index(k), solver)))
    return facs, shared, layout


def executor_for(system: System, options: RunOptions) -> tuple[SerialExecutor | RayExecutor, Layout]:
    """``options.extra['executor']`` = "ray" (default) or "serial".

    ``options.extra['checkpoint']`` (an ``orchestrator.checkpoint.Checkpoint``) records every round and
    replays the rounds it already holds (``gridcoord run --resume``); ``options.extra['on_round']`` is
    called as ``on_round(n, executor)`` after each round. Either wraps the executor in a ``CheckpointedExecutor``.
    """
    from orchestrator.remote import RemoteSystem

    if isinstance(system, RemoteSystem):  # client mode: the subspaces are operator services
        facs, shared, layout = system.factories(), [], Layout(len(system.feeders), system.n_periods)
    else:
        facs, shared, layout = factories(system, options.solver)
    kind = str(options.extra.get("executor", "ray"))
    executor = make_executor(kind, facs, shared, options.ray_address, names=["tso", *system.feeder_ids])
    checkpoint, on_round = options.extra.get("checkpoint"), options.extra.get("on_round")
    if checkpoint is not None or on_round is not None:
        from orchestrator.checkpoint import CheckpointedExecutor

        return CheckpointedExecutor(executor, checkpoint, on_round), layout  # type: ignore[return-value]
    return executor, layout


def start_point(system: System) -> np.ndarray:
    """Every iterative strategy starts from the DSOs' naive import forecast (loads + fixed EVs - PV)."""
    from orchestrator.remote import RemoteSystem
    from orchestrator.strategies.isolated import import_forecast_mw

    if isinstance(system, RemoteSystem):
        return system.forecast()
    return np.vstack([import_forecast_mw(f.inputs) for f in system.feeders]).reshape(-1)


def best_known(system: System, options: RunOptions) -> float | None:
    """The centralized optimum J* if the caller supplied it (``options.extra['best_known_usd']``)."""
    v = options.extra.get("best_known_usd")
    return None if v is None else float(v)


def finish(strategy: str, system: System, executor: SerialExecutor | RayExecutor, layout: Layout,
           x: np.ndarray, counters: Counters, converged: bool, t0: float, rows: list[dict[str, float]],
           notes: list[str]) -> RunResult:
    """Exact solves at the final boundary (TSO at P, each DSO at P_k) give the reported dispatch.

    This reporting round returns full dispatches (what ``results.summarize`` needs for the run
    contract); it is counted as a round like any other but is not part of the coordination.
    """
    from orchestrator.strategies.base import RunResult

    before = executor.traffic.rounds
    replies = executor.round([[("dispatch", (x,))]] + [[("dispatch", (x[layout.dso_index(k)],))]
                                                        for k in range(layout.n_dso)])
    add_traffic(counters, executor, before, solves=1 + layout.n_dso)
    tso = replies[0][0]
    objectives = [r["objective_usd"] for r in rows if np.isfinite(r.get("objective_usd", np.nan))]
    if objectives and not any(np.isfinite(r.get("gap_to_best_known", np.nan)) for r in rows):
        # no J* supplied: the gap column is to the best objective this run reached
        best = min(objectives)
        for r in rows:
            r["gap_to_best_known"] = (r["objective_usd"] - best) / abs(best)
        notes = [*notes, f"gap_to_best_known: to this run's best objective {best:.2f} $ (no J* given)"]
    notes = [*notes, *getattr(executor, "notes", [])]  # a resumed run says what was replayed
    if hasattr(executor, "current_placement"):  # Ray: where the actors are now (a restart may have moved one)
        executor.current_placement()
    feeders = {f.feeder_id: replies[1 + k][0] for k, f in enumerate(system.feeders)}
    prices = {k: tso.price_dso_usd_per_mwh[i] for i, k in enumerate(system.feeder_ids)}
    return RunResult(strategy=strategy, tso=tso, feeders=feeders, boundary_price_usd_per_mwh=prices,
                     counters=counters, converged=converged, wall_s=time.perf_counter() - t0,
                     nodes=list(executor.nodes), convergence=rows, notes=notes,
                     placement=dict(zip(["tso", *system.feeder_ids], executor.placement, strict=True)))


def add_traffic(counters: Counters, executor: SerialExecutor | RayExecutor, before_rounds: int,
                solves: int) -> None:
    """Copy the executor's traffic since ``before_rounds`` rounds into ``counters``."""
    tr = executor.traffic
    counters.rounds = tr.rounds
    counters.messages = tr.messages
    counters.bytes = tr.bytes
    counters.subspace_solves += solves
    del before_rounds


def progress_line(strategy: str, row: dict[str, float]) -> None:
    print(f"{strategy} round {int(row['round']):3d}  J={row['objective_usd']:.2f} $  "
          f"gap={row['gap_to_best_known']:.2e}  r={row['primal_residual_mw']:.2e} MW  "
          f"radius={row['trust_radius']:.3g}", file=sys.stderr, flush=True)
