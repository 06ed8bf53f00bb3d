"""What the iterative strategies (csso, admm, dual) share: the boundary layout, the executor of a system's
subspaces, the start point, the final reporting round and the progress line."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.subspace import Evaluate, Evaluation, Report, SubspaceCall
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
    """The system's subspaces on ``options.extra['executor']`` = "ray" (default) or "serial"; with Ray,
    ``options.extra['ray_actors']`` actors host the subspaces (default: two per CPU of the cluster; one per
    subspace for operators that run as services).

    ``options.extra['checkpoint']`` (an ``orchestrator.runtime.checkpoint.Checkpoint``) records every round
    and replays the rounds it already holds (``gridcoord run --resume``); ``options.extra['on_round']`` is
    called as ``on_round(n, executor)`` after each round. Either wraps the executor in a ``CheckpointedExecutor``.
    """
    subspaces = system.subspaces(options.solver, options.ac_check)
    layout = Layout(len(system.spec.feeders), system.spec.periods)
    kind = str(options.extra.get("executor", "ray"))
    actors = options.extra.get("ray_actors")
    executor = make_executor(kind, subspaces.factories, subspaces.shared, options.ray_address, names=subspaces.names,
                             actors=None if actors is None else int(actors), remote=subspaces.remote)
    checkpoint, on_round = options.extra.get("checkpoint"), options.extra.get("on_round")
    if checkpoint is not None or on_round is not None:
        from orchestrator.runtime.checkpoint import CheckpointedExecutor

        executor = CheckpointedExecutor(executor, checkpoint, on_round)
    transcript = options.extra.get("transcript")
    if transcript is None and options.extra.get("privacy") is not None:
        from orchestrator.runtime.transcript import Transcript

        transcript = options.extra["transcript"] = Transcript()  # the accountant counts the releases from it
    if transcript is not None:
        from orchestrator.runtime.transcript import RecordingExecutor

        executor = RecordingExecutor(executor, transcript)
    return executor, layout


@dataclass(frozen=True)
class Start:
    """The common start of every iterative strategy (round 1): the DSOs' naive import forecast x0 and the
    TSO's evaluation there, so all of them start from the same point with the same prices (the TSO's marginal
    cost of serving x0: the day-ahead clearing price against the forecasts). ``dsos``: the DSOs' evaluations
    at x0, for a strategy that uses their value there (``start_round(..., dsos=True)``); without them the
    start's objective is unknown (NaN)."""

    x0: np.ndarray  # (K*T,) [MW]
    n_dso: int
    tso: Evaluation
    dsos: list[Evaluation] | None

    @property
    def price_usd_per_mwh(self) -> np.ndarray:
        """(K, T) the TSO's clearing price at x0 [$/MWh]."""
        return np.asarray(self.tso.sensitivity_usd_per_mwh, float).reshape(self.n_dso, -1)

    @property
    def objective_usd(self) -> float:
        """J(x0) [$/day]; NaN when the DSOs did not evaluate x0."""
        if self.dsos is None:
            return float("nan")
        return float(self.tso.cost_usd + sum(d.cost_usd for d in self.dsos))

    @property
    def mismatch_mw(self) -> float:
        """Largest elastic mismatch at x0 of the evaluations made (the forecast is rarely a point every
        operator can dispatch)."""
        return float(max([self.tso.mismatch_mw, *[d.mismatch_mw for d in self.dsos or []]]))


def start_round(executor: Executor, layout: Layout, x0: np.ndarray, dsos: bool = True) -> Start:
    """Round 1 of every iterative strategy: the TSO evaluates the start point, and with ``dsos`` every DSO
    too. CSSO and ADMM need only the TSO's prices there (their first DSO solves respond to them), so they
    leave the DSOs out: on ieee118-32x33 that round is one TSO evaluation instead of 33 solves (about 8 s
    on 2 cores); the price method's Polyak step needs J(x0) as its first target level."""
    transcript = getattr(executor, "transcript", None)
    if transcript is not None:
        transcript.forecast = np.asarray(x0, float).copy()
    calls: list[list[SubspaceCall]] = [[Evaluate(x0)]]
    calls += [[Evaluate(x0[layout.dso_index(k)])] if dsos else [] for k in range(layout.n_dso)]
    replies = executor.round(calls)
    return Start(x0=np.asarray(x0, float).copy(), n_dso=layout.n_dso, tso=replies[0][0][0],
                 dsos=[r[0][0] for r in replies[1:]] if dsos else None)


def start_point(system: CoordinatedSystem) -> np.ndarray:
    """Every iterative strategy starts from the DSOs' naive import forecast (loads + fixed EVs - PV)."""
    return system.forecast_mw()


def best_known(options: RunOptions) -> float | None:
    """The centralized optimum J* if the caller supplied it (``options.extra['best_known_usd']``)."""
    v = options.extra.get("best_known_usd")
    return None if v is None else float(v)


def report_calls(layout: Layout, x: np.ndarray) -> list[list[SubspaceCall]]:
    """The calls of a report round at the boundary x: the TSO reports at P, each DSO at P_k."""
    calls: list[list[SubspaceCall]] = [[Report(x)]]
    return calls + [[Report(x[layout.dso_index(k)])] for k in range(layout.n_dso)]


def finish(strategy: str, system: CoordinatedSystem, executor: Executor, layout: Layout, x: np.ndarray,
           converged: bool, t0: float, rows: list[dict[str, Any]], notes: list[str],
           options: RunOptions | None = None, startup_s: float = 0.0,
           reports: list[list[Any]] | None = None) -> RunResult:
    """The reporting round at the final boundary x: the TSO reports at P, each DSO at P_k.

    Counted as a round like any other but not part of the coordination: ``wall_s`` stops before it, its
    time (exact solves and each DSO's AC check) is ``report_s``. ``reports``: the replies of
    ``report_calls(layout, x)`` when the coordination's last round already asked for them (CSSO's last merge
    round, ``orchestrator.strategies.csso.hub``): no report round then, and its work is in ``wall_s``.

    In DP mode (``options.extra['privacy']``) x is built from noisy messages and need not be a point every
    DSO can take: the DSOs report first, each dispatching the import nearest x that its own constraints
    allow (its elastic evaluation), and everybody then reports at those imports (one more round), so every
    operator's dispatch is feasible and they agree on the boundary.
    """
    wall_s = time.perf_counter() - t0
    privacy = None if options is None else options.extra.get("privacy")
    feeders: dict[str, FeederReport] = {}
    if privacy is None:
        replies = executor.round(report_calls(layout, x)) if reports is None else reports
        dso_replies = replies[1:]
    else:
        first = executor.round([[]] + [[Report(x[layout.dso_index(k)])] for k in range(layout.n_dso)])[1:]
        x = np.concatenate([np.asarray(r[0].p_import_mw, float) for r in first])
        # everybody reports at the imports the DSOs can take (for a DSO: its own dispatch again, exactly)
        replies = executor.round(report_calls(layout, x))
        dso_replies = replies[1:]
    tso = replies[0][0]
    assert isinstance(tso, TsoReport), type(tso)
    for fid, reply in zip(system.spec.feeder_ids, dso_replies, strict=True):
        assert isinstance(reply[0], FeederReport), type(reply[0])
        feeders[fid] = reply[0]
    if rows and not any(np.isfinite(r.get("gap_to_best_known", np.nan)) for r in rows):
        notes = [*notes, "gap_to_best_known: unknown (no best-known objective was given: "
                         "best_known_usd, e.g. from a centralized run of the same case)"]
    notes = [*notes, *getattr(executor, "notes", [])]  # a resumed run says what was replayed
    placement = executor.current_placement()  # where the actors are now (a restart may have moved one)
    prices = {k: tso.price_dso_usd_per_mwh[i] for i, k in enumerate(system.spec.feeder_ids)}
    transcript = None if options is None else options.extra.get("transcript")
    accounting = {} if privacy is None or transcript is None else privacy_accounting(privacy, transcript, system)
    if accounting and privacy is not None:
        notes = [*notes, f"DP: Gaussian mechanism, zCDP composition over {accounting['releases_max']} releases per "
                         f"DSO: epsilon_total {accounting['epsilon_total']:.4g} at delta {privacy.delta:g}"]
    return RunResult(strategy=strategy, tso=tso, feeders=feeders, boundary_price_usd_per_mwh=prices,
                     traffic=executor.traffic, converged=converged, wall_s=wall_s,
                     report_s=time.perf_counter() - t0 - wall_s, startup_s=startup_s, nodes=list(executor.nodes),
                     convergence=rows,
                     notes=notes, placement=dict(zip(["tso", *system.spec.feeder_ids], placement, strict=True)),
                     privacy=accounting)


def privacy_accounting(privacy: Any, transcript: Any, system: CoordinatedSystem) -> dict[str, Any]:
    """The run's privacy cost as the orchestrator counts it: each DSO's releases (``Transcript.releases``) at
    the calibrated rho per release, composed by zCDP (``core.privacy.accountant``); epsilon_total is the
    largest DSO's (each DSO's own mechanism enforces its plan and refuses a reply beyond it)."""
    from core.privacy import Accountant

    per_dso: dict[str, float] = {}
    releases: dict[str, int] = {}
    for k, fid in enumerate(system.spec.feeder_ids):
        acc = Accountant()
        n = transcript.releases(1 + k)
        for _ in range(n):
            acc.spend(privacy.rho_per_release)
        per_dso[fid], releases[fid] = acc.epsilon(privacy.delta), n
    return {"mechanism": "gaussian", "composition": "zCDP (Bun & Steinke 2016)", "epsilon": privacy.epsilon,
            "delta": privacy.delta, "releases_planned": privacy.releases, "releases": releases,
            "releases_max": max(releases.values(), default=0), "rho_per_release": privacy.rho_per_release,
            "epsilon_per_dso": per_dso, "epsilon_total": max(per_dso.values(), default=0.0)}


class Trace:
    """The convergence rows of an iterative strategy, the same columns for all (``convergence.csv``):
    round, known_round (the exchange after which the row's objective was known: ADMM and the price methods
    learn J at their DSOs' iterate of round r from the TSO's evaluation in round r + 1; CSSO's merge returns
    its bound in the round that computes it), objective_usd (J at the round's boundary; CSSO: the merge's
    bound, >= J), gap_to_best_known
    (NaN without a known optimum), primal_residual_mw (the strategy's own disagreement: ADMM's consensus
    residual, the price method's market mismatch |p - P_t|, CSSO's merge mismatch), boundary_mismatch_mw (the
    largest elastic mismatch of the evaluations behind objective_usd: <= 0.1 MW means every operator dispatches
    that boundary, a consistent point), wall_s
    (seconds since coordination started: the same origin for every strategy, once every subspace is up and
    has built its model; that start-up is the run's ``startup_s``),
    solves and bytes (cumulative), then strategy-specific columns. Prints the progress line."""

    def __init__(self, strategy: str, executor: Executor, t0: float, options: RunOptions) -> None:
        self.strategy, self.executor, self.t0 = strategy, executor, t0
        self.j_star = best_known(options)
        self.progress = options.progress
        self.rows: list[dict[str, Any]] = []

    def add(self, rnd: int, objective_usd: float, residual_mw: float, mismatch_mw: float,
            known_round: int | None = None, **extra: Any) -> dict[str, Any]:
        """One row for round ``rnd``'s boundary, whose objective became known in round ``known_round``
        (default ``rnd``)."""
        gap = np.nan if self.j_star is None else (objective_usd - self.j_star) / abs(self.j_star)
        tr = self.executor.traffic
        known = rnd if known_round is None else int(known_round)
        if known < rnd:
            raise ValueError(f"{self.strategy}: round {rnd}'s objective cannot be known before round {rnd} "
                             f"(known_round {known})")
        row: dict[str, Any] = {"round": rnd, "known_round": known, "objective_usd": float(objective_usd),
                               "gap_to_best_known": gap,
                               "primal_residual_mw": float(residual_mw), "boundary_mismatch_mw": float(mismatch_mw),
                               "wall_s": time.perf_counter() - self.t0, "solves": tr.subspace_solves,
                               "bytes": tr.bytes, **extra}
        previous = self.rows[-1]["objective_usd"] if self.rows else np.nan
        self.rows.append(row)
        if self.progress:
            change = objective_usd - previous
            gap_txt = f"  gap {gap:.2e}" if np.isfinite(gap) else ""
            more = "  ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in extra.items())
            j_txt = f"{objective_usd:,.2f} $/day" if np.isfinite(objective_usd) else "unknown yet"
            print(f"{self.strategy} round {rnd:3d}  J {j_txt}"
                  + (f" ({change:+,.2f})" if np.isfinite(change) else "")
                  + f"  residual {residual_mw:.2g} MW  mismatch {mismatch_mw:.2g} MW{gap_txt}  {row['wall_s']:.1f} s"
                  + (f"  {more}" if more else ""),
                  file=sys.stderr, flush=True)
        return row


#: a round counts as within a gap only at a boundary every operator dispatches (views within 0.1 MW): ADMM's
#: early iterates have a good objective at a boundary the operators disagree on, which no one could dispatch
CONSISTENT_MW = 0.1


def first_within(rows: list[dict[str, Any]], gap: float) -> tuple[float, float]:
    """(known_round, wall_s) of the first convergence row within ``gap`` of the best known optimum at a
    consistent boundary (elastic mismatch <= CONSISTENT_MW); (nan, nan) if none.

    Counted in the exchange that made the row's objective known (``known_round``), so every strategy pays
    for the round in which its point is verified; ``wall_s`` is taken at the same moment."""
    for r in rows:
        g = float(r.get("gap_to_best_known", np.nan))
        if np.isfinite(g) and g <= gap and float(r.get("boundary_mismatch_mw", np.inf)) <= CONSISTENT_MW:
            return float(r.get("known_round", r["round"])), float(r.get("wall_s", np.nan))
    return np.nan, np.nan


def dp_average(iterates: list[np.ndarray]) -> np.ndarray:
    """DP mode: the mean of the last half of the DSOs' (noisy) iterates, the boundary a run reports.

    Averaging is post-processing of what was already released (no privacy cost) and divides the noise
    variance of the reported boundary by the number of iterates averaged (Polyak-Ruppert averaging)."""
    tail = iterates[len(iterates) // 2:]
    return np.mean(np.vstack(tail), axis=0)
