"""CSSO for a hub and its slices: the TSO sees the whole boundary, each DSO its own imports.

System cost J(x) = T(x) + sum_k D_k(x_k) over the boundary imports x (K, T); T (the TSO) and every D_k
(a DSO) are convex. Each round is ONE exchange and at most one solve per subspace:

- every DSO k optimises its exact model plus the TSO's response surface restricted to its own imports
  (the period-by-period ICNNs of ``HourlyIcnn``, first-order exact at the centre) inside its own trust
  region, and returns the import profile it proposes, with its exact cost there: a *point it can dispatch*;
- the TSO merges (``TsoSubspace.merge``): min T(x) + sum_k theta_k . d_k over x_k = sum_j theta_kj y_kj,
  theta_k in the simplex, where y_kj are DSO k's points so far and d_kj its exact costs. By convexity of
  D_k the optimum is an upper bound on J at the merged boundary, and the current centre is feasible for it,
  so every merge is a descent step (never a rejected round); the merged boundary is a convex combination of
  points each DSO can dispatch, so TSO and DSOs agree on it. It also returns the TSO's exact cost per period
  and sensitivities there: T samples of the response surface per solve.

The first round (``iterative.start_round``) has the TSO alone evaluate the start point x0: its prices
there are what the DSOs first optimise against, and the DSOs' values at x0 would serve only as a first merge
column that the merge does not take (dropping it after round 2 left every round's objective the same to the
cent on ieee30-3x33 and ieee30-6x33-der, serial runs 2026-12-07), at 32 solves on ieee118-32x33. J is then
unknown until the first merge, which need not improve on J(x0); every later merge has the centre among its
feasible points and is a descent step. Given ``start_dsos`` (their evaluations at x0), x0 is every DSO's
first point and J(x0) the first bound. Then the rounds alternate:
in a *probe* round the DSOs propose around the centre while the TSO, with nothing new to merge, evaluates a
probe (the centre shifted from dear towards cheap periods, where the DSOs will move) for the surface's
curvature; in the next, *merge* round the TSO merges those points and the DSOs are not asked, since the
centre they would propose around is still the one their waiting points were made around. Asking them anyway
(``repropose``, the earlier loop, which overlapped a DSO round with every merge) gave the same gaps in the
same rounds on ieee30-6x33-der (1.6e-4 after round 3, 8.4e-5 after round 5, ...): every other merge then
merged near-copies of the points before (proposed around the same centre) and gained almost nothing, at a
full round of DSO solves each. A merge that gains nothing leaves the centre where it was, and the next
probe round asks the DSOs again (with the radii the merge just adjusted).

Trust radii are per DSO: a proposal that the merge uses (weight > 0.8) at the edge of its region doubles
it, one the merge ignores (weight < 0.2) halves it. It stops when the last merge gained less than
``tol_f`` (relative) and the DSOs' latest proposals predict less than ``tol_f`` together (each DSO's exact cost +
surface at its proposal against the merge's bound on its cost + surface at the centre): no subspace sees a
better point near the centre, which for convex subspaces is the optimum.

The report rides on the last merge round (``report``): once the DSOs' latest proposals predict less than
``tol_f``, the coming merge ends the run unless it gains ``tol_f`` or more, so that merge round, in which the
DSOs would otherwise sit idle, also asks everybody for their report at the centre. If the merge gains less,
the run stops at that centre (whose bound is within ``tol_f`` of the merge's) with the reports in hand and no
separate report round; if it gains more, the reports are dropped and the loop goes on.

``surrogate="linear"``: the same loop with first-order surfaces only (the TSO's prices at the centre):
the DSOs' proposals are then trust-region-limited price responses, and the ReLU curvature's value is
what the difference in rounds measures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.subspace import Columns, Evaluate, Evaluation, Merge, MergeColumns, Optimize, Proposal, SubspaceCall
from orchestrator.runtime.executors import Executor
from orchestrator.strategies.csso.surrogate import HourlyIcnn

#: the calls that make every subspace report at a boundary x (subspace order: the TSO, then the DSOs)
ReportCalls = Callable[[np.ndarray], list[list[SubspaceCall]]]


@dataclass(frozen=True)
class HubOptions:
    max_rounds: int = 30
    #: "relu": period-by-period ICNN response surfaces of the TSO; "linear": first-order (prices) only
    surrogate: str = "relu"
    hidden: int = 4  # hidden units per period net
    points: int = 10  # points kept per DSO for the merge (the merge is compiled once for this many)
    #: 4 MW: on ieee30-6x33-der the first proposals at 1 MW reach 0.1 % of J* in round 5, at 4 MW (and 8, 16)
    #: in round 3; ieee30-3x33 and ieee118-16x33 reach it in round 3 either way (serial runs, 2026-12-05)
    radius0_mw: float = 4.0
    radius_min_mw: float = 0.01
    radius_max_mw: float = 8.0
    #: relative bound decrease (and predicted decrease) below which the loop has converged
    tol_f: float = 1e-5
    probe_mw: float = 0.5  # largest shift of a probe round's probe [MW]
    #: the DSOs propose in every round, also around a centre whose points still wait for the merge (the
    #: earlier loop; ieee30-6x33-der serial: 77 instead of 54 solves, 58.3 instead of 35.4 s, the same rounds to
    #: 0.1 % and 0.01 %)
    repropose: bool = False
    epochs: int = 300
    refit_epochs: int = 100
    seed: int = 0
    #: stop once the bound is <= target (e.g. within a gap of a known optimum); None = own rule only
    target: float | None = None


@dataclass
class HubResult:
    x: np.ndarray
    objective: float  # the bound at x (>= J(x))
    converged: bool
    rounds: int
    stop: str
    history: list[dict[str, Any]] = field(default_factory=list)
    fit_s: float = 0.0
    #: every subspace's report reply at x (subspace order), when the last round asked for them (``report``)
    reports: list[list[Any]] | None = None


@dataclass
class _Points:
    """One DSO's points for the merge: profiles it can dispatch, its exact cost at each, last use."""

    x: list[np.ndarray]
    cost: list[float]
    used: list[int]  # last round the merge gave the point weight

    def add(self, x: np.ndarray, cost: float, rnd: int, limit: int) -> None:
        if len(self.x) >= limit:  # drop the point unused the longest
            j = int(np.argmin(self.used))
            del self.x[j], self.cost[j], self.used[j]
        self.x.append(np.asarray(x, float).copy())
        self.cost.append(float(cost))
        self.used.append(rnd)

    def weights(self, theta: np.ndarray) -> np.ndarray:
        """Each point's weight in a merge over ``padded`` slots (the unused slots repeat the first point)."""
        th = np.asarray(theta, float)
        w = th[: len(self.x)].copy()
        if self.x:
            w[0] += th[len(self.x):].sum()
        return w

    def padded(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        """(m, T) points and (m,) costs, repeating the first point in unused slots (a repeat changes nothing)."""
        pts = self.x + [self.x[0]] * (m - len(self.x))
        cost = self.cost + [self.cost[0]] * (m - len(self.cost))
        return np.vstack(pts), np.asarray(cost)


def run_hub_csso(executor: Executor, n_dso: int, n_periods: int, x0: np.ndarray, start_tso: Evaluation,
                 start_dsos: list[Evaluation] | None, options: HubOptions = HubOptions(),
                 on_round: Callable[[dict[str, Any]], None] | None = None, t0: float | None = None,
                 report: ReportCalls | None = None) -> HubResult:
    """Minimise J = T + sum_k D_k from the start point x0 (whose evaluations, round 1, are given; without
    ``start_dsos`` the DSOs' first proposals are their first points and J is unknown until the first merge).

    ``report``: the calls of a report round at a boundary; given, the merge round that can end the run also
    asks for them at its centre (module docstring) and a run that stops there returns them (``reports``)."""
    opt = options
    k_n, t_n = n_dso, n_periods
    t0 = time.perf_counter() if t0 is None else t0
    idx = [np.arange(k * t_n, (k + 1) * t_n) for k in range(k_n)]
    dt_h = float(start_tso.dt_h)
    points = ([_Points([x0[i].copy()], [float(d.cost_usd)], [1]) for i, d in zip(idx, start_dsos, strict=True)]
              if start_dsos is not None else [_Points([], [], []) for _ in idx])
    samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add_sample(x: np.ndarray, ev: Evaluation) -> None:
        if ev.hourly_cost_usd is None:
            raise ValueError("hub CSSO: the whole-boundary subspace must report its cost per period")
        samples.append((x.reshape(k_n, t_n).copy(), np.asarray(ev.hourly_cost_usd, float),
                        np.asarray(ev.sensitivity_usd_per_mwh, float).reshape(k_n, t_n) * dt_h))

    add_sample(x0, start_tso)
    center, center_tso = x0.copy(), start_tso
    # the bound on J at the centre and on each D_k there (unknown, inf / NaN, until the DSOs' first points)
    ub = float(start_tso.cost_usd + sum(d.cost_usd for d in start_dsos)) if start_dsos is not None else np.inf
    hull = np.array([d.cost_usd for d in start_dsos] if start_dsos is not None else [np.nan] * k_n, dtype=float)
    radius = np.full(k_n, opt.radius0_mw)
    net = HourlyIcnn(k_n, t_n, hidden=opt.hidden if opt.surrogate == "relu" else 0, seed=opt.seed,
                     epochs=opt.epochs, refit_epochs=opt.refit_epochs)
    result = HubResult(x=center, objective=ub, converged=False, rounds=1, stop="max_rounds")
    fresh = False  # points added since the last merge
    newest = [-1] * k_n  # index (in points[k]) of each DSO's newest point, for the radius rule
    calm = 0  # merges in a row that gained less than tol_f
    predicted = 0.0  # what the DSOs' latest proposals predicted together

    def predicts_little() -> bool:
        """The DSOs' latest proposals predict less than tol_f of the bound at the centre (never while it is
        unknown): the stopping test, and the sign that the coming merge can end the run."""
        return bool(np.isfinite(ub) and predicted <= opt.tol_f * max(1.0, abs(ub)))

    for rnd in range(2, opt.max_rounds + 1):
        # points waiting for the merge were proposed around this very centre (it moves only with a merge):
        # asked again, the DSOs would only propose them again
        ask = opt.repropose or not fresh
        # the TSO's surface at the centre, restricted to each DSO's imports
        f_c = np.asarray(center_tso.hourly_cost_usd, float)
        surf = [net.restricted(k, center.reshape(k_n, t_n), f_c, samples_grad(center_tso, k_n, t_n, dt_h))
                for k in range(k_n)] if ask else []
        sent_center, sent_hull = center.copy(), hull.copy()
        move = np.repeat(radius, t_n)
        probe = None if fresh else _probe(center, center_tso, k_n, t_n, opt.probe_mw)
        if probe is None:
            cols = [p.padded(opt.points) for p in points]
            tso_call: SubspaceCall = MergeColumns(Columns(points=tuple(c[0] for c in cols),
                                                          costs=tuple(c[1] for c in cols)))
        else:
            tso_call = Evaluate(probe)
        calls: list[list[SubspaceCall]] = [[tso_call]]
        calls += [[Optimize(((idx[k], surf[k]),), center, move)] if ask else [] for k in range(k_n)]
        # a merge after proposals that predict less than tol_f ends the run unless it gains tol_f: the DSOs,
        # idle in a merge round, report at the centre meanwhile
        folded = report is not None and probe is None and not ask and predicts_little()
        if folded:
            assert report is not None
            calls = [c + r for c, r in zip(calls, report(center), strict=True)]
        replies = executor.round(calls)
        result.rounds = rnd
        step = "probe"
        gained = 0.0
        if isinstance(tso_call, MergeColumns):
            merge = replies[0][0]
            assert isinstance(merge, Merge), type(merge)
            for k in range(k_n):
                th = np.asarray(merge.theta[k])
                for j in np.flatnonzero(points[k].weights(th) > 1e-6):
                    points[k].used[j] = rnd
                _update_radius(radius, k, th, newest[k], points[k], sent_center[idx[k]], opt)
            gained = (ub - merge.bound_usd) / max(1.0, abs(ub)) if np.isfinite(ub) else np.inf
            if folded and gained < opt.tol_f:  # the run ends at the centre everybody just reported at
                result.reports = [replies[0][1:], *replies[1:]]
                step = "merge (reported)"
            elif merge.bound_usd < ub:
                center, center_tso, ub = merge.x.copy(), merge.evaluation, float(merge.bound_usd)
                hull = np.array([float(np.asarray(merge.theta[k])[: opt.points] @ points[k].padded(opt.points)[1])
                                 for k in range(k_n)])
                step = "merge"
            else:
                step = "merge (no gain)"
            add_sample(merge.x, merge.evaluation)
            fresh = False
        else:
            assert probe is not None
            add_sample(probe, replies[0][0][0])
        if ask:
            predicted = 0.0
        for k in range(k_n if ask else 0):
            prop = replies[1 + k][0]
            assert isinstance(prop, Proposal), type(prop)
            if not prop.ok or not np.isfinite(prop.cost_usd):
                continue
            # what the proposal predicts against the centre (unknown while D_k there is)
            predicted += (max(0.0, sent_hull[k] + float(surf[k].value(sent_center[idx[k]]))
                              - prop.cost_usd - float(surf[k].value(prop.x)))
                          if np.isfinite(sent_hull[k]) else np.inf)
            points[k].add(prop.x, prop.cost_usd, rnd, opt.points)
            newest[k] = len(points[k].x) - 1
            fresh = True
        fresh = fresh and all(p.x for p in points)  # a merge needs a point of every DSO
        calm = calm + 1 if step.startswith("merge") and gained < opt.tol_f else (calm if step == "probe" else 0)
        # the round's row (and its wall clock) before the fit: the merged objective is known from the replies,
        # and the fit only prepares the next round's surfaces (a last round needs none)
        row = {"round": float(rnd), "objective": ub if np.isfinite(ub) else np.nan,
               "mismatch": float(center_tso.mismatch_mw), "accepted": step,
               "predicted": predicted if np.isfinite(predicted) else np.nan, "gain": gained,
               "radius": float(np.median(radius)), "wall_s": time.perf_counter() - t0}
        result.history.append(row)
        if on_round is not None:
            on_round(row)
        if opt.target is not None and ub <= opt.target:
            result.converged, result.stop = True, "target"
            break
        if calm >= 1 and predicts_little():
            result.converged, result.stop = True, "stationary"
            break
        t_fit = time.perf_counter()
        if opt.surrogate == "relu" and rnd < opt.max_rounds:
            xs, fs, gs = (np.array(a) for a in zip(*samples, strict=True))
            spread = np.maximum(np.abs(xs - center.reshape(k_n, t_n)).max(axis=0),
                                np.repeat(radius, t_n).reshape(k_n, t_n))
            net.fit(xs, fs, gs, shift=center.reshape(k_n, t_n), scale=spread)
        result.fit_s += time.perf_counter() - t_fit
    result.x, result.objective = center, ub
    return result


def samples_grad(ev: Evaluation, k_n: int, t_n: int, dt_h: float) -> np.ndarray:
    """d cost / d x (K, T) [$/MW] of an evaluation."""
    return np.asarray(ev.sensitivity_usd_per_mwh, float).reshape(k_n, t_n) * dt_h


def _probe(center: np.ndarray, ev: Evaluation, k_n: int, t_n: int, size_mw: float) -> np.ndarray:
    """A boundary point for the response surface's curvature: each DSO's imports shifted from its dearest
    towards its cheapest periods at the centre's prices (where the DSOs' first proposals will go)."""
    price = np.asarray(ev.sensitivity_usd_per_mwh, float).reshape(k_n, t_n)
    dev = price - price.mean(axis=1, keepdims=True)
    top = np.abs(dev).max(axis=1, keepdims=True)
    shift = -size_mw * np.divide(dev, top, out=np.zeros_like(dev), where=top > 0)
    return (center.reshape(k_n, t_n) + shift).reshape(-1)


def _update_radius(radius: np.ndarray, k: int, theta: np.ndarray, newest: int, pts: _Points, center_k: np.ndarray,
                   opt: HubOptions) -> None:
    """Grow DSO k's region when the merge took its newest point whole and the point was at the region's
    edge; shrink it when the merge did not want the point."""
    if newest < 0 or newest >= len(pts.x):
        return
    w = float(pts.weights(theta)[newest])
    at_edge = float(np.max(np.abs(pts.x[newest] - center_k))) >= 0.99 * radius[k]
    if w > 0.8 and at_edge:
        radius[k] = min(2.0 * radius[k], opt.radius_max_mw)
    elif w < 0.2:
        radius[k] = max(0.5 * radius[k], opt.radius_min_mw)

