"""``centralized``: one joint problem with everyone's private data — the optimum J* that every
distributed strategy is measured against (gap = (J - J*) / |J*|)."""

from __future__ import annotations

import dataclasses
import time

import cvxpy as cp
import numpy as np

from core.solver import solve_or_raise
from core.traffic import Traffic
from dso.model import FeederModel, build_feeder_model
from orchestrator.strategies.base import RunOptions, RunResult, Strategy, array_bytes
from orchestrator.system.embedded import EmbeddedSystem
from tso.model import TsoModel, build_tso_model


class Centralized(Strategy[EmbeddedSystem]):
    name = "centralized"
    private_data = True

    def build(self, system: EmbeddedSystem) -> tuple[cp.Problem, TsoModel, dict[str, FeederModel]]:
        """The joint TSO + DSOs + EV problem; returns (problem, tso_model, feeder_models)."""
        tso = build_tso_model(system.tso_data, system.tso_inputs, losses=system.spec.transmission.losses)
        feeders = {f.feeder_id: build_feeder_model(f.data, f.inputs) for f in system.feeders}
        imports = cp.vstack([m.p_import_mw for m in feeders.values()])
        constraints = list(tso.constraints.values())
        for m in feeders.values():
            constraints.extend(m.constraints.values())
        constraints.append(tso.p_dso_mw == imports)
        cost = tso.cost_usd() + cp.sum(cp.hstack([m.local_cost_usd() for m in feeders.values()]))
        return cp.Problem(cp.Minimize(cost), constraints), tso, feeders

    def run(self, system: EmbeddedSystem, options: RunOptions) -> RunResult:
        t0 = time.perf_counter()
        problem, tso, feeders = self.build(system)
        solve_or_raise(problem, options.solver, "centralized joint problem")
        tso_dispatch = tso.extract()
        dispatches = {k: m.extract() for k, m in feeders.items()}
        prices = {k: tso_dispatch.price_dso_usd_per_mwh[i] for i, k in enumerate(system.feeder_ids)}
        traffic = Traffic(rounds=1, subspace_solves=1)
        # every operator uploads its private model once: count the arrays it has to send
        traffic.add_exchange(1 + len(system.feeders), _private_bytes(system))
        wall_s = time.perf_counter() - t0
        reports = {k: system.feeder_report(k, d, controlled=True, ac=options.ac_check) for k, d in dispatches.items()}
        return RunResult(strategy=self.name, tso=system.tso_report(tso_dispatch), feeders=reports,
                         boundary_price_usd_per_mwh=prices, traffic=traffic, converged=True, wall_s=wall_s,
                         report_s=time.perf_counter() - t0 - wall_s)


def _private_bytes(system: EmbeddedSystem) -> int:
    """Bytes of every operator's private arrays (what a central planner must be sent)."""

    def size(obj: object) -> int:
        total = 0
        assert dataclasses.is_dataclass(obj)
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            if isinstance(v, np.ndarray):
                total += array_bytes(v)
            elif dataclasses.is_dataclass(v):
                total += size(v)
        return total

    return size(system.tso_data) + size(system.tso_inputs) + sum(
        size(f.data) + size(f.inputs) for f in system.feeders)
