"""``gradient``: the price (dual) gradient method with Polyak steps — the gradient-descent baseline.

The boundary price lambda (K, T) [$/MWh] is the multiplier of "the TSO serves what the DSOs import".
Every round the TSO answers the withdrawal it would serve, P_t = argmin TSO(P) - dt lambda . P, and each
DSO the import it would take, p_k = argmin D_k(p) + dt lambda_k . p; together they give the dual value

    q(lambda) = [TSO(P_t) - dt lambda . P_t] + sum_k [D_k(p_k) + dt lambda_k . p_k]   <= J*   (weak duality)

and its (super)gradient g = dt (p - P_t). The price moves by a Polyak step towards the best primal
value found so far (Polyak 1969; the "target level" variant of Goffin & Kiwiel 1999):

    lambda <- lambda + gamma (J_best - q(lambda)) / |g|^2  g,     gamma in (0, 2)

where J_best is the lowest J(p) = TSO(p) + sum_k D_k(p_k) seen at a DSO iterate (the TSO evaluates p in
the next round, as in ``admm``). gamma starts at 1 and halves when q has not improved for 3 rounds.
Starts from the common start (``iterative.start_round``): lambda0 = the TSO's marginal cost at the DSOs'
forecast. Stops when the duality gap (J_best - q) / |J_best| is below ``gradient_tol`` (1e-5: a certified
bound on the distance to the optimum) or |p - P_t| < ``gradient_tol_mw`` (1e-3 MW). Reports the best
primal iterate. A price at which a subspace's solve fails is not used: the step is halved and the round
repeated (counted: it is an exchange like any other).
"""

from __future__ import annotations

import time

import numpy as np

from core.subspace import Evaluate, Respond, SubspaceCall
from orchestrator.strategies.base import RunOptions, RunResult, Strategy
from orchestrator.strategies.iterative import Trace, dp_average, executor_for, finish, start_point, start_round
from orchestrator.system import CoordinatedSystem

STALL_ROUNDS = 3


class Gradient(Strategy[CoordinatedSystem]):
    name = "gradient"
    rpcs = {"tso": ("Evaluate", "Respond", "Report"), "dso": ("Forecast", "Evaluate", "Respond", "Report")}
    #: "polyak" (this strategy) or "diminishing" (``dual``: alpha0 / sqrt(r) on the mismatch)
    step_rule = "polyak"

    def run(self, system: CoordinatedSystem, options: RunOptions) -> RunResult:
        t_launch = time.perf_counter()
        ex = options.extra
        executor, layout = executor_for(system, options)
        t0 = time.perf_counter()  # coordination starts: every subspace is up and has built its model
        name = self.name
        try:
            k_n = layout.n_dso
            tol_gap = float(ex.get(f"{name}_tol", 1e-5))
            tol_mw = float(ex.get(f"{name}_tol_mw", 1e-3 if self.step_rule == "polyak" else 1e-2))
            max_rounds = int(ex.get(f"{name}_max_rounds", 100))
            stop_gap = ex.get(f"{name}_stop_gap")
            alpha0 = float(ex.get("dual_step", 2.0))
            start = start_round(executor, layout, start_point(system))
            trace = Trace(self.name, executor, t0, options)
            trace.add(1, start.objective_usd, start.mismatch_mw, start.mismatch_mw, dual_bound_usd=np.nan, step=np.nan)
            dt = float(start.tso.dt_h)
            price = start.price_usd_per_mwh.copy()
            best_x, best_j = start.x0.copy(), start.objective_usd
            iterates: list[np.ndarray] = []
            best_q, stall, gamma = -np.inf, 0, 1.0
            p_prev: np.ndarray | None = None
            d_prev, q_prev, step_prev, residual_prev = 0.0, np.nan, np.nan, np.nan
            good_price, last_step = price.copy(), np.zeros_like(price)
            converged, retries, rnd, notes_fail = False, 0, 1, []
            while rnd < max_rounds:
                rnd += 1
                calls: list[list[SubspaceCall]] = [[Respond(price),
                                                     *([Evaluate(p_prev)] if p_prev is not None else [])]]
                calls += [[Respond(price[k])] for k in range(k_n)]
                try:
                    replies = executor.round(calls)
                except RuntimeError as exc:  # SolveError in-process, SubspaceCallError from an actor
                    retries += 1
                    if retries > 6 or not np.any(last_step):
                        raise
                    last_step = last_step / 2.0
                    price = good_price + last_step
                    rnd -= 1
                    notes_fail.append(f"round {rnd + 1}: {exc}; step halved")
                    continue
                if p_prev is not None:
                    ev = replies[0][1][0]
                    j = ev.cost_usd + d_prev
                    if j < best_j:
                        best_x, best_j = p_prev.copy(), j
                    row = trace.add(rnd - 1, j, residual_prev, ev.mismatch_mw, known_round=rnd, dual_bound_usd=q_prev,
                                    step=step_prev)
                    if converged or (stop_gap is not None and row["gap_to_best_known"] <= float(stop_gap)):
                        converged = True
                        break
                p_t, tso_cost = replies[0][0]
                p = np.vstack([replies[1 + k][0][0] for k in range(k_n)])
                d_cost = float(sum(replies[1 + k][0][1] for k in range(k_n)))
                q = (tso_cost - dt * float(np.sum(price * p_t))) + d_cost + dt * float(np.sum(price * p))
                g = dt * (p - p_t)
                residual_prev, q_prev, d_prev = float(np.abs(p - p_t).max()), q, d_cost
                p_prev = p.reshape(-1)
                iterates.append(p_prev.copy())
                if q > best_q + 1e-9 * max(1.0, abs(best_q)):
                    best_q, stall = q, 0
                else:
                    stall += 1
                    if stall >= STALL_ROUNDS:
                        gamma, stall = 0.5 * gamma, 0
                # the primal value J(p) of this iterate is known next round: target the best so far
                target = best_j
                gap = (target - q) / max(1.0, abs(target))
                norm2 = float(np.sum(g * g))
                converged = gap <= tol_gap or residual_prev < tol_mw
                if self.step_rule == "polyak":
                    step_prev = gamma * max(target - q, 0.0) / norm2 if norm2 > 0 else 0.0
                else:  # alpha0 / sqrt(r) [$/MWh per MW of mismatch]
                    step_prev = alpha0 / np.sqrt(rnd - 1) / dt
                    converged = residual_prev < tol_mw
                good_price, last_step = price, step_prev * g
                price = good_price + last_step
            duality_gap = (best_j - best_q) / abs(best_j)
            notes = [f"{name} ({self.step_rule} steps): final duality gap {duality_gap:.2e}, mismatch "
                     f"{residual_prev:.3g} MW; reported dispatch at the best DSO iterate (J = {best_j:.2f} $)",
                     *notes_fail]
            if ex.get("privacy") is not None and iterates:  # noisy costs make "best" meaningless: average
                best_x = dp_average(iterates)
            result = finish(self.name, system, executor, layout, best_x, converged, t0, trace.rows, notes, options,
                          startup_s=t0 - t_launch)
            result.traffic.rounds += retries  # failed exchanges cost a round too
            return result
        finally:
            executor.close()


class Dual(Gradient):
    """``dual``: the same price iteration with the textbook diminishing step alpha0 / sqrt(r) on the mismatch
    (``dual_step`` = alpha0, 2 $/MWh per MW): kept as the untuned baseline ``gradient`` improves on."""

    name = "dual"
    step_rule = "diminishing"
