"""``admm``: consensus ADMM on the boundary imports, adaptive penalty (Boyd et al. 2011, sec. 3.4.1).

Two copies of every boundary entry, the TSO's P_t (K, T) and the DSOs' p (K, T), agree on z:

    P_t = argmin TSO(P) + rho/2 |P - z + u_t|^2        (TSO actor)
    p_k = argmin D_k(p) + rho/2 |p - z_k + u_k|^2      (DSO actors, same round)
    z = (P_t + u_t + p + u_d) / 2;  u_t += P_t - z;  u_d += p - z
    r = max(|P_t - z|, |p - z|) [MW],  s = rho |z - z_old| (scaled to MW)
    rho *= 2 if r > 10 s;  rho /= 2 if s > 10 r  (u rescaled)

Stops when r and |z - z_old| are below ``admm_tol_mw`` (1e-3 MW). The objective tracked per round is
J(p) = TSO(p) + sum_k D_k(p_k) at the DSOs' iterate: the DSOs report D_k(p_k) with their step, the
TSO evaluates p in the next round's message (one extra 0.03 s solve on the lightest actor).
"""

from __future__ import annotations

import time

import numpy as np

from core.subspace import Evaluate, Prox, SubspaceCall
from orchestrator.strategies.base import RunOptions, RunResult, Strategy
from orchestrator.strategies.iterative import best_known, executor_for, finish, progress_line, start_point
from orchestrator.system import CoordinatedSystem


class Admm(Strategy[CoordinatedSystem]):
    name = "admm"

    def run(self, system: CoordinatedSystem, options: RunOptions) -> RunResult:
        t0 = time.perf_counter()
        ex = options.extra
        executor, layout = executor_for(system, options)
        try:
            k_n, t_n = layout.n_dso, layout.n_periods
            z = start_point(system).reshape(k_n, t_n)
            u_t, u_d = np.zeros_like(z), np.zeros_like(z)
            rho = float(ex.get("admm_rho", 1.0))
            tol = float(ex.get("admm_tol_mw", 1e-3))
            max_rounds = int(ex.get("admm_max_rounds", 150))
            j_star = best_known(options)
            stop_gap = ex.get("admm_stop_gap")
            rows: list[dict[str, float]] = []
            solves = 0
            p_prev: np.ndarray | None = None
            d_prev = 0.0
            converged = False
            for rnd in range(1, max_rounds + 1):
                calls: list[list[SubspaceCall]] = [[Prox(z - u_t, rho),
                                                     *([Evaluate(p_prev)] if p_prev is not None else [])]]
                calls += [[Prox(z[k] - u_d[k], rho)] for k in range(k_n)]
                replies = executor.round(calls)
                solves += len(calls) + (1 if p_prev is not None else 0)
                if p_prev is not None:  # J at the previous DSO iterate, now that the TSO evaluated it
                    j = replies[0][1][0].cost_usd + d_prev
                    gap = np.nan if j_star is None else (j - j_star) / abs(j_star)
                    rows[-1].update(objective_usd=j, gap_to_best_known=gap)
                    if options.progress:
                        progress_line(self.name, rows[-1])
                    if stop_gap is not None and gap <= float(stop_gap):
                        converged = True
                        break
                    if converged:
                        break
                p_t = replies[0][0][0]
                p = np.vstack([replies[1 + k][0][0] for k in range(k_n)])
                d_prev = float(sum(replies[1 + k][0][1] for k in range(k_n)))
                z_old = z
                z = 0.5 * (p_t + u_t + p + u_d)
                u_t += p_t - z
                u_d += p - z
                r = float(max(np.abs(p_t - z).max(), np.abs(p - z).max()))
                dz = float(np.abs(z - z_old).max())
                rows.append({"round": float(rnd), "objective_usd": np.nan, "gap_to_best_known": np.nan,
                             "primal_residual_mw": r, "trust_radius": np.nan, "rho": rho, "dual_change_mw": dz,
                             "wall_s": time.perf_counter() - t0})
                p_prev = p.reshape(-1)
                if r < tol and dz < tol:
                    converged = True  # one more round evaluates J at this iterate, then stops
                    if stop_gap is None:
                        pass
                # adaptive penalty (Boyd et al. 2011, eq. 3.13): keep r and s within a factor 10
                s = rho * dz
                if r > 10.0 * s:
                    rho, u_t, u_d = 2.0 * rho, u_t / 2.0, u_d / 2.0
                elif s > 10.0 * r:
                    rho, u_t, u_d = rho / 2.0, u_t * 2.0, u_d * 2.0
            x = p_prev if p_prev is not None else z.reshape(-1)
            notes = [f"ADMM: final rho {rho:.3g} $/MW^2, primal residual {rows[-1]['primal_residual_mw']:.2e} MW"]
            return finish(self.name, system, executor, layout, x, solves, converged, t0, rows, notes)
        finally:
            executor.close()
