"""``admm``: consensus ADMM on the boundary imports, warm-started, over-relaxed, residual-balanced.

Two copies of every boundary entry, the TSO's P_t (K, T) and the DSOs' p (K, T), agree on z
(Boyd et al. 2011, "Distributed optimization and statistical learning via ADMM", sec. 3.4 and 7.1):

    P_t = argmin TSO(P) + rho/2 |P - z + u_t|^2        (TSO actor)
    p_k = argmin D_k(p) + rho/2 |p - z_k + u_k|^2      (DSO actors, same round)
    over-relaxation (sec. 3.4.3): P^ = a P_t + (1 - a) z_old, p^ = a p + (1 - a) z_old, a = 1.6
    z = (P^ + u_t + p^ + u_d) / 2;  u_t += P^ - z;  u_d += p^ - z
    r = max(|P_t - z|, |p - z|) [MW],  s = rho |z - z_old| [$/MW]
    residual balancing (sec. 3.4.1): rho *= 2 if r > 10 s / s_ref, rho /= 2 if s / s_ref > 10 r  (u rescaled)

Settings and why: a = 1.6 is the value Boyd et al. report as usually faster (Eckstein & Bertsekas' range
1.5-1.8); the balancing factors 10 and 2 are theirs. The start is the common start of every iterative
strategy (``iterative.start_round``, the TSO alone: the first DSO solves need only the duals): z = x0 and
the duals at the TSO's clearing prices there
(u_t = -lambda0 dt / rho, u_d = +lambda0 dt / rho: the multipliers of P_t = z and p = z at a consensus
priced at lambda0), so ADMM starts with the same price information as CSSO and the price iteration.
rho0 = ``admm_rho`` ($/MW^2): 2 by default; rho is comparing a price ($/MW) with a boundary move (MW), so
rho0 ~ (price spread over the day) / (a feeder's import swing) ~ 2 on these cases (measured: 0.5 and 8
were slower on ieee30-3x33); the balancing adapts it from there. ``s_ref`` = the start prices' median
|lambda0| dt / 1 MW puts s ($/MW) on the scale of r (MW).

Stops when r and |z - z_old| are below ``admm_tol_mw`` (1e-3 MW). The objective per round is
J(p) = TSO(p) + sum_k D_k(p_k) at the DSOs' iterate (the TSO evaluates p in the next round's message).
"""

from __future__ import annotations

import time

import numpy as np

from core.subspace import Evaluate, Prox, SubspaceCall
from orchestrator.strategies.base import RunOptions, RunResult, Strategy
from orchestrator.strategies.iterative import Trace, dp_average, executor_for, finish, start_point, start_round
from orchestrator.system import CoordinatedSystem

OVER_RELAXATION = 1.6
BALANCE_FACTOR, BALANCE_STEP = 10.0, 2.0


class Admm(Strategy[CoordinatedSystem]):
    name = "admm"
    rpcs = {"tso": ("Evaluate", "Prox", "Report"), "dso": ("Forecast", "Evaluate", "Prox", "Report")}

    def run(self, system: CoordinatedSystem, options: RunOptions) -> RunResult:
        t_launch = time.perf_counter()
        ex = options.extra
        executor, layout = executor_for(system, options)
        t0 = time.perf_counter()  # coordination starts: every subspace is up and has built its model
        try:
            k_n, t_n = layout.n_dso, layout.n_periods
            rho = float(ex.get("admm_rho", 2.0))
            tol = float(ex.get("admm_tol_mw", 1e-3))
            max_rounds = int(ex.get("admm_max_rounds", 150))
            alpha = float(ex.get("admm_alpha", OVER_RELAXATION))
            stop_gap = ex.get("admm_stop_gap")
            start = start_round(executor, layout, start_point(system), dsos=False)  # the TSO alone
            trace = Trace(self.name, executor, t0, options)
            trace.add(1, start.objective_usd, start.mismatch_mw, start.mismatch_mw, rho=rho)
            dt = float(start.tso.dt_h)
            lam = start.price_usd_per_mwh
            s_ref = max(float(np.median(np.abs(lam))) * dt, 1e-6)  # $/MW per MW of boundary move
            z = start.x0.reshape(k_n, t_n).copy()
            u_t, u_d = -lam * dt / rho, lam * dt / rho
            p_prev: np.ndarray | None = None
            d_prev = 0.0
            converged = False
            pending: dict[str, float] = {}
            best_x, best_j = start.x0.copy(), np.inf  # J(x0) is not known (the DSOs did not evaluate x0)
            iterates: list[np.ndarray] = []
            for rnd in range(2, max_rounds + 1):
                calls: list[list[SubspaceCall]] = [[Prox(z - u_t, rho),
                                                     *([Evaluate(p_prev)] if p_prev is not None else [])]]
                calls += [[Prox(z[k] - u_d[k], rho)] for k in range(k_n)]
                replies = executor.round(calls)
                if p_prev is not None:  # J at the previous DSO iterate, now that the TSO evaluated it
                    ev = replies[0][1][0]
                    j = ev.cost_usd + d_prev
                    if j < best_j:
                        best_x, best_j = p_prev.copy(), j
                    row = trace.add(rnd - 1, j, pending["r"], ev.mismatch_mw, known_round=rnd, rho=pending["rho"],
                                    dual_change_mw=pending["dz"])
                    if converged or (stop_gap is not None and row["gap_to_best_known"] <= float(stop_gap)):
                        converged = True
                        break
                p_t = replies[0][0][0]
                p = np.vstack([replies[1 + k][0][0] for k in range(k_n)])
                d_prev = float(sum(replies[1 + k][0][1] for k in range(k_n)))
                z_old = z
                p_t_hat = alpha * p_t + (1.0 - alpha) * z_old
                p_hat = alpha * p + (1.0 - alpha) * z_old
                z = 0.5 * (p_t_hat + u_t + p_hat + u_d)
                u_t += p_t_hat - z
                u_d += p_hat - z
                r = float(max(np.abs(p_t - z).max(), np.abs(p - z).max()))
                dz = float(np.abs(z - z_old).max())
                pending = {"r": r, "dz": dz, "rho": rho}
                p_prev = p.reshape(-1)
                iterates.append(p_prev.copy())
                if r < tol and dz < tol:
                    converged = True  # one more round evaluates J at this iterate, then stops
                s = rho * dz / s_ref
                if r > BALANCE_FACTOR * s:
                    rho, u_t, u_d = BALANCE_STEP * rho, u_t / BALANCE_STEP, u_d / BALANCE_STEP
                elif s > BALANCE_FACTOR * r:
                    rho, u_t, u_d = rho / BALANCE_STEP, u_t * BALANCE_STEP, u_d * BALANCE_STEP
            x = p_prev if p_prev is not None else best_x
            if ex.get("privacy") is not None and iterates:
                x = dp_average(iterates)
            notes = [f"ADMM: final rho {rho:.3g} $/MW^2, primal residual {pending.get('r', np.nan):.2e} MW"]
            return finish(self.name, system, executor, layout, x, converged, t0, trace.rows, notes, options,
                          startup_s=t0 - t_launch)
        finally:
            executor.close()
