"""Concurrent Subspace Optimization (CSSO) with ICNN surrogates and a trust region, for subspaces whose
boundary slices overlap in any way (a general MDO problem such as Sellar's; ``tests/test_sellar_csso.py``).
The TSO-DSO coordination, where one subspace sees the whole boundary and the others disjoint slices of it,
uses the hub loop (``orchestrator.strategies.csso.hub``), which exploits that structure.

Generic over a list of subspaces, subspace i seeing the boundary entries ``x[indices[i]]`` of the
global boundary vector x; the system objective is J(x) = sum_i f_i(x[indices[i]]). A subspace object
(run in-process or on a Ray actor through an executor) answers the calls of ``core.subspace.Subspace``:
  Evaluate(points (m, n_i)) -> list of responses with ``cost_usd`` and ``gradient`` (d f_i / d x_i)
  Optimize(others [(index, SurrogateWeights)], center (n,), move (n,)) -> proposal with ``x`` (n_i,)
    (its exact model plus the others' surrogates, inside the move limits)

Every iteration is ONE round: each subspace evaluates a batch (the last candidates plus design-of-
experiments points in the trust region) and returns a proposal against the current surrogates.
Then the orchestrator (1) measures surrogate error on the new points, (2) refits the surrogates
on values and sensitivities (warm start), (3) picks the best evaluated candidate, the ratio test
rho = actual / predicted reduction of the system candidate drives the radius (reject rho <= 0,
shrink if rho < 0.25, grow if rho > 0.75 and the step hit the boundary), (4) solves the system
coordination over the surrogates inside the trust region for the next candidate. It stops when an
accepted step gained less than ``tol_f`` (relative) with the surrogate error below tolerance, when the
first-order-consistent model predicts less than ``tol_f`` anywhere in the trust region, or when the
radius reaches ``radius_min``. A round whose candidates were all rejected never counts as converged.

Each subspace optimises its own slice with the others fixed, so it receives its neighbours'
surrogates restricted to its slice (``_restricted_others``): a DSO sees the TSO's response to its own
import only, never another DSO's model, and its problem does not grow with the number of feeders.

Constraints: a response may also carry ``eq`` (m,) = 0 and ``ineq`` (p,) <= 0 on its own boundary
slice, with ``eq_jacobian`` / ``ineq_jacobian`` (., n_i) (e.g. the consistency of coupling variables in
an MDO problem, which only the discipline that computes them can check). The loop then works on the
exact L1 merit  phi(x) = J(x) + mu * (sum |eq| + sum max(0, ineq))  (``constraint_penalty`` = mu,
above the largest multiplier), and the system coordination linearises the constraints at the centre
(sequential linear programming inside the trust region). Without constraints phi = J.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.icnn import SurrogateWeights
from core.subspace import Evaluate, Optimize
from orchestrator.runtime.executors import Executor
from orchestrator.strategies.csso.coordination import Linearization, SystemCoordination, surrogate_sum
from orchestrator.strategies.csso.surrogate import IcnnSurrogate, first_order_corrected


@dataclass(frozen=True)
class CssoOptions:
    max_rounds: int = 30
    n_doe: int = 2  # design-of-experiments points per round
    radius0: float = 1.0  # initial trust radius, in units of ``scale``
    radius_min: float = 1e-3
    radius_max: float = 4.0
    tol_f: float = 1e-4  # relative objective change
    tol_err: float = 1e-3  # relative surrogate error on the newest points
    hidden: int = 24
    epochs: int = 300
    refit_epochs: int | None = None  # epochs of the warm-started refits (None: ``epochs``)
    window: int = 60  # most recent samples kept per subspace for fitting
    fit_radius: float = 2.0  # fit on samples within this many trust radii of the centre
    seed: int = 0
    progress: bool = False
    #: stop early once J <= target (e.g. within 0.1 % of a known optimum); None = never
    target: float | None = None
    #: mu of the exact L1 merit for subspace constraints (unused when no response reports any)
    constraint_penalty: float = 100.0
    tol_c: float = 1e-6  # constraint violation (sum |eq| + sum max(0, ineq)) required to stop
    #: subspaces optimise around the merged-proposal candidate being evaluated in the same round (the
    #: likely next centre) instead of the current centre, so that an accepted proposal is not followed
    #: by a round of stale proposals
    speculate: bool = True
    #: evaluate the proposal of a subspace that sees the whole boundary (e.g. the TSO) as a candidate
    whole_proposals: bool = True


@dataclass
class CssoResult:
    x: np.ndarray
    objective: float
    converged: bool
    rounds: int
    solves: int
    history: list[dict[str, float]] = field(default_factory=list)
    fit_s: float = 0.0
    coord_s: float = 0.0
    violation: float = 0.0  # constraint violation at x (0 without constraints)


def _doe(rng: np.random.Generator, center: np.ndarray, move: np.ndarray, lower: np.ndarray,
         upper: np.ndarray, m: int) -> np.ndarray:
    """m points uniform in the trust-region box (clipped to the bounds)."""
    pts = center + move * rng.uniform(-1.0, 1.0, size=(m, center.size))
    return np.clip(pts, lower, upper)


def _restricted_others(indices: Sequence[np.ndarray], weights: Sequence[SurrogateWeights], k: int,
                       center: np.ndarray) -> list[tuple[np.ndarray, SurrogateWeights]]:
    """The neighbours' surrogates as subspace k sees them when it moves only x[indices[k]].

    Entries outside k's slice are fixed at ``center``, so each surrogate is restricted (exactly) to its
    overlap with k's slice; a surrogate with no overlap is a constant and is left out. A DSO thus gets
    one T-input model (the TSO's response to its own import) whatever the number of feeders: its
    optimisation problem, its memory and its message stay the same size as the system grows.
    """
    own = indices[k]
    out = []
    for j, (idx, w) in enumerate(zip(indices, weights, strict=True)):
        keep = np.isin(idx, own)
        if j == k or not keep.any():
            continue
        out.append((idx[keep], w if keep.all() else w.restrict(keep, center[idx])))
    return out


def run_csso(executor: Executor, indices: Sequence[np.ndarray], x0: np.ndarray, lower: np.ndarray,
             upper: np.ndarray, scale: np.ndarray, options: CssoOptions = CssoOptions(),
             on_round: Callable[[dict[str, float]], None] | None = None) -> CssoResult:
    """Minimise J(x) = sum_i f_i(x[indices[i]]) with CSSO; see the module docstring."""
    opt = options
    rng = np.random.default_rng(opt.seed)
    indices = [np.asarray(i) for i in indices]
    n = x0.size
    lower, upper, scale = (np.broadcast_to(np.asarray(a, float), (n,)).copy() for a in (lower, upper, scale))
    center = np.clip(np.asarray(x0, dtype=float), lower, upper)
    radius = opt.radius0
    surrogates = [IcnnSurrogate(i.size, center[i], scale[i], hidden=opt.hidden, seed=opt.seed + k,
                                epochs=opt.epochs) for k, i in enumerate(indices)]
    data: list[tuple[list[np.ndarray], list[float], list[np.ndarray]]] = [([], [], []) for _ in indices]
    coord: SystemCoordination | None = None
    mu = opt.constraint_penalty
    lin_center: list[Linearization] = []
    viol_center = 0.0
    weights: list[SurrogateWeights] | None = None
    candidates: list[tuple[str, np.ndarray]] = [("start", center.copy())]
    j_center = np.inf
    center_resp: list[tuple[float, np.ndarray]] = []
    mismatch = np.nan  # max elastic boundary mismatch at the centre (0 for a consistent point)
    pred_sys = np.nan  # predicted reduction of the pending system candidate
    result = CssoResult(x=center, objective=np.inf, converged=False, rounds=0, solves=0)
    t_start = time.perf_counter()
    for rnd in range(1, opt.max_rounds + 1):
        move = radius * scale
        opt_center = center
        if opt.speculate:
            opt_center = next((x for name, x in candidates if name == "proposals"), center)
        doe = _doe(rng, center, move, lower, upper, opt.n_doe)
        points = np.vstack([c for _, c in candidates] + [doe])
        calls: list[list[Evaluate | Optimize]] = []
        for k, idx in enumerate(indices):
            c: list[Evaluate | Optimize] = [Evaluate(points[:, idx])]
            if weights is not None and (idx.size < n or opt.whole_proposals):
                c.append(Optimize(tuple(_restricted_others(indices, weights, k, opt_center)), opt_center, move))
            calls.append(c)
        replies = executor.round(calls)
        result.rounds = rnd
        result.solves += len(indices) * len(points) + sum(len(c) - 1 for c in calls)
        costs = np.array([[r.cost_usd for r in rep[0]] for rep in replies])  # (S, m)
        lins = [[Linearization.of(p[indices[k]], r) for p, r in zip(points, rep[0], strict=True)]
                for k, rep in enumerate(replies)]
        viol_points = np.array([sum(lins[k][i].violation() for k in range(len(indices))) for i in range(len(points))])
        j_points = costs.sum(axis=0) + mu * viol_points  # the merit phi (= J without constraints)
        if coord is None:
            coord = SystemCoordination(n, indices, opt.hidden, lower, upper,
                                       n_eq=[lins[k][0].eq.size for k in range(len(indices))],
                                       n_ineq=[lins[k][0].ineq.size for k in range(len(indices))])
        # surrogate error on points it has not seen (before the refit)
        err = np.nan
        if weights is not None:
            pred = np.array([surrogate_sum(weights, indices, p) for p in points])
            err = float(np.max(np.abs(pred - costs.sum(axis=0))) / max(1.0, abs(j_center)))
        for k, rep in enumerate(replies):
            xs, fs, gs = data[k]
            for p, r in zip(points, rep[0], strict=True):
                xs.append(p[indices[k]].copy())
                fs.append(float(r.cost_usd))
                gs.append(np.asarray(r.gradient, dtype=float))
            del xs[:-opt.window], fs[:-opt.window], gs[:-opt.window]
        # ratio test on the system candidate; accept the best evaluated candidate if it improves
        n_cand = len(candidates)
        best = int(np.argmin(j_points[:n_cand]))
        old_center, j_old = center.copy(), j_center
        rho = np.nan
        if np.isfinite(j_center):
            sys_pos = [i for i, (name, _) in enumerate(candidates) if name == "system"]
            if sys_pos and pred_sys > 0:
                rho = float((j_center - j_points[sys_pos[0]]) / pred_sys)
                step = np.max(np.abs(candidates[sys_pos[0]][1] - center) / scale)
                if rho < 0.25:
                    radius = max(0.5 * radius, opt.radius_min)
                elif rho > 0.75 and step >= 0.99 * radius:
                    radius = min(2.0 * radius, opt.radius_max)
            elif sys_pos:
                radius = max(0.5 * radius, opt.radius_min)
        if j_points[best] < j_center:
            center, j_center = candidates[best][1].copy(), float(j_points[best])
            center_resp = [(float(rep[0][best].cost_usd), np.asarray(rep[0][best].gradient, dtype=float))
                           for rep in replies]
            mismatch = max(float(getattr(rep[0][best], "mismatch_mw", 0.0)) for rep in replies)
            lin_center = [lins[k][best] for k in range(len(indices))]
            viol_center = float(viol_points[best])
        dx = float(np.max(np.abs(center - old_center) / scale))
        df = abs(j_old - j_center) / max(1.0, abs(j_center)) if np.isfinite(j_old) else np.inf
        # refit (warm start) on values and sensitivities
        t0 = time.perf_counter()
        weights = []
        for k, s in enumerate(surrogates):
            xa, fa, ga = (np.array(a) for a in data[k])
            idx = indices[k]
            near = np.max(np.abs(xa - center[idx]) / scale[idx], axis=1) <= opt.fit_radius * radius
            if near.sum() < 3:  # too few local samples: the closest few
                near = np.argsort(np.max(np.abs(xa - center[idx]) / scale[idx], axis=1))[:3]
            if s.fitted and opt.refit_epochs is not None:
                s.epochs = opt.refit_epochs
            s.fit(xa[near], fa[near], ga[near])
            weights.append(first_order_corrected(s.weights(), center[idx], *center_resp[k]))
        result.fit_s += time.perf_counter() - t0
        row = {"round": float(rnd), "objective": j_center - mu * viol_center, "merit": j_center,
               "trust_radius": radius, "rho": rho,
               "surrogate_error": err, "boundary_change": dx, "accepted": float(best), "mismatch": mismatch,
               "violation": viol_center,
               "wall_s": time.perf_counter() - t_start}
        result.history.append(row)
        if on_round is not None:
            on_round(row)
        if opt.progress:
            print(f"csso round {rnd:3d}  J={j_center:.6g}  radius={radius:.3g}  rho={rho:.3g}  "
                  f"err={err:.2e}  dx={dx:.2e}", file=sys.stderr)
        if opt.target is not None and j_center <= opt.target:
            result.converged = True
            break
        # an accepted step that gained less than tol_f, with an accurate model: converged. A round whose
        # candidates were all rejected says nothing about convergence (dx = df = 0 trivially): the
        # radius shrank, try again (the model-stationarity test below, or radius_min, ends that).
        accepted = j_center < j_old
        if (rnd > 1 and accepted and df < opt.tol_f and np.isfinite(err) and err < opt.tol_err
                and viol_center <= opt.tol_c) or radius <= opt.radius_min:
            result.converged = True
            break
        # next candidates: system coordination over the surrogates, and the subspaces' proposals
        t0 = time.perf_counter()
        x_sys = coord.solve(weights, center, radius * scale, lin_center, mu)
        result.coord_s += time.perf_counter() - t0
        viol_sys = sum(lin.violation(x_sys[idx]) for lin, idx in zip(lin_center, indices, strict=True))
        pred_sys = (surrogate_sum(weights, indices, center) + mu * viol_center
                    - surrogate_sum(weights, indices, x_sys) - mu * viol_sys)
        if rnd > 1 and pred_sys <= opt.tol_f * max(1.0, abs(j_center)) and viol_center <= opt.tol_c:
            # the first-order-consistent model predicts no improvement anywhere in the trust region:
            # the centre is (model-)stationary
            result.converged = True
            row["stop"] = 1.0
            break
        candidates = [("system", x_sys)]
        if any(len(rep) > 1 for rep in replies):
            merged, hits = np.zeros(n), np.zeros(n)
            for k, rep in enumerate(replies):
                prop = rep[1] if len(rep) > 1 else None
                if prop is None or not getattr(prop, "ok", True):
                    continue
                own = center.copy()
                own[indices[k]] = prop.x
                if indices[k].size == n:  # a subspace that sees everything proposes a whole point
                    if opt.whole_proposals:
                        candidates.append((f"proposal{k}", np.clip(own, lower, upper)))
                else:
                    merged[indices[k]] += prop.x
                    hits[indices[k]] += 1
            if hits.any():
                x_m = np.where(hits > 0, merged / np.maximum(hits, 1), center)
                candidates.append(("proposals", np.clip(x_m, lower, upper)))
    result.x, result.objective, result.violation = center, j_center - mu * viol_center, viol_center
    return result
