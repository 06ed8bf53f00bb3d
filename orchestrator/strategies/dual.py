"""``dual``: price (sub)gradient iteration — the gradient-descent baseline.

Every round the orchestrator sends the boundary price lambda (K, T) [$/MWh]; the TSO answers the
withdrawal it would serve, argmin TSO(P) - dt lambda . P, and each DSO the import it would take,
argmin D_k(p) + dt lambda_k . p. The price moves along the dual (sub)gradient, the mismatch:

    lambda <- lambda + alpha_r (p - P_t),   alpha_r = alpha0 / sqrt(r)   [$/MWh per MW]

Starts from the TSO's marginal cost at the common start point. J is tracked at the DSOs' p (the TSO
evaluates it in the next round, as in ``admm``). Stops when |p - P_t| < ``dual_tol_mw``.
A price at which a subspace's solve fails (the solver ends inaccurate) is not used: the step from the
last good price is halved and the round repeated (counted: it is an exchange like any other).
"""

from __future__ import annotations

import time

import numpy as np

from core.subspace import Evaluate, Respond, SubspaceCall
from orchestrator.strategies.base import RunOptions, RunResult, Strategy
from orchestrator.strategies.iterative import best_known, executor_for, finish, progress_line, start_point
from orchestrator.system import CoordinatedSystem


class Dual(Strategy[CoordinatedSystem]):
    name = "dual"

    def run(self, system: CoordinatedSystem, options: RunOptions) -> RunResult:
        t0 = time.perf_counter()
        ex = options.extra
        executor, layout = executor_for(system, options)
        try:
            k_n = layout.n_dso
            x0 = start_point(system)
            alpha0 = float(ex.get("dual_step", 2.0))
            tol = float(ex.get("dual_tol_mw", 1e-2))
            max_rounds = int(ex.get("dual_max_rounds", 100))
            j_star = best_known(options)
            stop_gap = ex.get("dual_stop_gap")
            solves = 0
            notes_fail: list[str] = []
            first = executor.round([[Evaluate(x0)]] + [[] for _ in range(k_n)])
            solves += 1
            price = first[0][0][0].sensitivity_usd_per_mwh.copy()
            rows: list[dict[str, float]] = []
            p_prev: np.ndarray | None = None
            best_x, best_j = x0, float("inf")
            d_prev = 0.0
            converged = False
            good_price, step = price.copy(), np.zeros_like(price)
            retries = 0
            rnd = 0
            while rnd < max_rounds:
                rnd += 1
                calls: list[list[SubspaceCall]] = [[Respond(price),
                                                     *([Evaluate(p_prev)] if p_prev is not None else [])]]
                calls += [[Respond(price[k])] for k in range(k_n)]
                try:
                    replies = executor.round(calls)
                except RuntimeError as exc:  # SolveError in-process, SubspaceCallError from an actor
                    retries += 1
                    if retries > 6 or not np.any(step):
                        raise
                    step = step / 2.0
                    price = good_price + step
                    rnd -= 1
                    notes_fail.append(f"round {rnd + 1}: {exc}; step halved")
                    continue
                solves += 1 + k_n + (1 if p_prev is not None else 0)
                if p_prev is not None:
                    j = replies[0][1][0].cost_usd + d_prev
                    if j < best_j:
                        best_x, best_j = p_prev, j
                    gap = np.nan if j_star is None else (j - j_star) / abs(j_star)
                    rows[-1].update(objective_usd=j, gap_to_best_known=gap)
                    if options.progress:
                        progress_line(self.name, rows[-1])
                    if converged or (stop_gap is not None and gap <= float(stop_gap)):
                        converged = True
                        break
                p_t = replies[0][0][0]
                p = np.vstack([replies[1 + k][0][0] for k in range(k_n)])
                d_prev = float(sum(replies[1 + k][0][1] for k in range(k_n)))
                r = float(np.abs(p - p_t).max())
                rows.append({"round": float(rnd), "objective_usd": np.nan, "gap_to_best_known": np.nan,
                             "primal_residual_mw": r, "trust_radius": np.nan, "wall_s": time.perf_counter() - t0})
                p_prev = p.reshape(-1)
                converged = r < tol
                good_price, step = price, alpha0 / np.sqrt(rnd) * (p - p_t)
                price = good_price + step
            notes = [f"dual: final mismatch {rows[-1]['primal_residual_mw']:.3g} MW; reported dispatch at the "
                     f"best DSO iterate (J = {best_j:.2f} $)", *notes_fail]
            result = finish(self.name, system, executor, layout, best_x, solves, converged, t0, rows, notes)
            result.traffic.rounds += retries  # failed exchanges cost a round too
            return result
        finally:
            executor.close()
