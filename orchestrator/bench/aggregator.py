"""Measurements (not tests): envelope timing at 10,000 EVs and flexibility captured by each envelope.

Run: ``python -m orchestrator.bench.aggregator [--n-timing 10000] [--n-compare 200] [--n-capture 500]``
(``--n-capture 10000``: the flexibility captured at 10,000 EVs; about 2 minutes per fleet on an idle 2-core
machine, the exact fleet's LP most of it).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import cvxpy as cp
import numpy as np

from aggregator.demo import STATIONS, TOU_USD_PER_MWH
from aggregator.fleet import EV, FleetError, synthetic_fleet
from aggregator.flex import (
    FleetFlexibility,
    disaggregate,
    exact_flexibility,
    inner_flexibility,
    outer_flexibility,
    period_map_matrix,
    uncontrolled_profile,
)
from aggregator.schedule import build_price_response, solve_price_response
from aggregator.zonotope import ZonotopeFlexibility, disaggregate_zonotope_split, fit_zonotopes
from core.errors import SolveError


def _best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return float(best)


def timing(n_evs: int, seed: int = 1) -> dict[str, float]:
    """Best-of-5 wall seconds of inner_flexibility and disaggregate for n_evs EVs (24 x 1 h)."""
    evs = synthetic_fleet(n_evs, STATIONS, seed)
    flex = inner_flexibility(evs, STATIONS)
    p_ch, p_dis, _ = solve_price_response(build_price_response(flex, 1.0, 24), TOU_USD_PER_MWH)
    return {
        "n_evs": n_evs,
        "n_envelopes": flex.n_envelopes,
        "inner_flexibility_s": _best_of(lambda: inner_flexibility(evs, STATIONS)),
        "outer_flexibility_s": _best_of(lambda: outer_flexibility(evs, STATIONS)),
        "disaggregate_s": _best_of(lambda: disaggregate(evs, flex, p_ch, p_dis)),
    }


def compare(evs: Sequence[EV], price_usd_per_mwh: np.ndarray) -> dict[str, float]:
    """Min cost ($/day) under a price for exact / inner / outer envelopes and the uncontrolled baseline."""
    out: dict[str, float] = {
        "uncontrolled_usd": float(price_usd_per_mwh @ uncontrolled_profile(evs, STATIONS).sum(axis=0))
    }
    flexes: dict[str, FleetFlexibility] = {
        "exact": exact_flexibility(evs, STATIONS),
        "inner": inner_flexibility(evs, STATIONS),
        "inner8": inner_flexibility(evs, STATIONS, laxity_bins=8),
        "outer": outer_flexibility(evs, STATIONS),
    }
    for name, flex in flexes.items():
        p_ch, p_dis, cost = solve_price_response(build_price_response(flex, 1.0, 24), price_usd_per_mwh)
        out[f"{name}_usd"] = cost
        out[f"{name}_envelopes"] = flex.n_envelopes
        try:
            disaggregate(evs, flex, p_ch, p_dis)
            out[f"{name}_disaggregates"] = 1.0
        except FleetError:
            out[f"{name}_disaggregates"] = 0.0
    saving = out["uncontrolled_usd"] - out["exact_usd"]
    out["inner_over_exact_saving"] = (out["uncontrolled_usd"] - out["inner_usd"]) / saving
    out["inner8_over_exact_saving"] = (out["uncontrolled_usd"] - out["inner8_usd"]) / saving
    out["outer_over_exact_saving"] = (out["uncontrolled_usd"] - out["outer_usd"]) / saving
    return out


def envelope_min_peak_mw(flex: FleetFlexibility, n_periods: int = 24, dt_h: float = 1.0) -> float:
    """min_P max_t P_t (MW) over the envelopes: the lowest fleet peak they allow."""
    model = build_price_response(flex, dt_h, n_periods)
    z = cp.Variable()
    net = period_map_matrix(flex, n_periods) @ (model.p_ch_mw - model.p_dis_mw)
    prob = cp.Problem(cp.Minimize(z), [*model.constraints.values(), net <= z])
    prob.solve(solver="HIGHS")
    if prob.status != cp.OPTIMAL:
        raise SolveError("min peak", str(prob.status))
    return float(prob.value)


def zonotope_min_cost_usd(z: ZonotopeFlexibility, price_usd_per_mwh: np.ndarray, dt_h: float = 1.0) -> float:
    """min over xi of price . sum_s (c_s + G diag(beta_s) xi_s) dt: closed form xi_j = -sign(price . g_j)."""
    pg = price_usd_per_mwh @ z.generators  # (m,)
    return float(dt_h * (price_usd_per_mwh @ z.c_mw.sum(axis=0) - np.abs(pg) @ z.beta_mw.sum(axis=0)))


def zonotope_min_peak_mw(z: ZonotopeFlexibility) -> float:
    """min over |xi| <= 1 of max_t (c + G diag(beta) xi)_t for the fleet zonotope (LP)."""
    beta = z.beta_mw.sum(axis=0)
    used = np.flatnonzero(beta > 1e-12)
    xi = cp.Variable(used.size)
    peak = cp.Variable()
    prof = z.c_mw.sum(axis=0) + (z.generators[:, used] * beta[used]) @ xi
    prob = cp.Problem(cp.Minimize(peak), [prof <= peak, cp.abs(xi) <= 1])
    prob.solve(solver="HIGHS")
    if prob.status != cp.OPTIMAL:
        raise SolveError("zonotope min peak", str(prob.status))
    return float(prob.value)


def flexibility_captured(evs: Sequence[EV], price_usd_per_mwh: np.ndarray) -> dict[str, float]:
    """Share of the exact fleet's flexibility captured by each set, on two measures.

    cost: (uncontrolled cost - set's min cost) / (uncontrolled cost - exact min cost) under the price;
    peak: (uncontrolled peak - set's min peak) / (uncontrolled peak - exact min peak). > 1 for the outer set
    is its over-statement. The zonotope has V2G (``fit_zonotopes(..., v2g_efficiency=V2G_EFFICIENCY)``, template
    method) when the fleet has V2G EVs.
    """
    unc = uncontrolled_profile(evs, STATIONS).sum(axis=0)
    unc_cost, unc_peak = float(price_usd_per_mwh @ unc), float(unc.max())
    cost: dict[str, float] = {}
    peak: dict[str, float] = {}
    for name, flex in {
        "exact": exact_flexibility(evs, STATIONS),
        "proportional": inner_flexibility(evs, STATIONS),
        "outer": outer_flexibility(evs, STATIONS),
    }.items():
        cost[name] = solve_price_response(build_price_response(flex, 1.0, 24), price_usd_per_mwh)[2]
        peak[name] = envelope_min_peak_mw(flex)
    z = _fleet_zonotope(evs)
    cost["zonotope"] = zonotope_min_cost_usd(z, price_usd_per_mwh)
    peak["zonotope"] = zonotope_min_peak_mw(z)
    out: dict[str, float] = {"uncontrolled_usd": unc_cost, "uncontrolled_peak_mw": unc_peak}
    for name in cost:
        out[f"{name}_usd"] = cost[name]
        out[f"{name}_peak_mw"] = peak[name]
        out[f"{name}_cost_captured"] = (unc_cost - cost[name]) / (unc_cost - cost["exact"])
        out[f"{name}_peak_captured"] = (unc_peak - peak[name]) / (unc_peak - peak["exact"])
    return out


V2G_EFFICIENCY = 0.95  # synthetic_fleet's one-way efficiency


def _fleet_zonotope(evs: Sequence[EV]) -> ZonotopeFlexibility:
    """The fleet's zonotope (template method), with V2G when any EV can discharge."""
    v2g = any(ev.p_discharge_kw > 0 for ev in evs)
    return fit_zonotopes(evs, STATIONS, v2g_efficiency=V2G_EFFICIENCY if v2g else None)


def zonotope_timing(n_evs: int, seed: int = 1, v2g_share: float = 0.3) -> dict[str, float]:
    """Best-of-5 wall seconds of fit_zonotopes (template method, templates cached; with V2G for the fleet's V2G
    EVs) and of its closed-form disaggregation into every EV's (p+, p-) for n_evs EVs; the first call, which
    also solves the one-off fleet-independent templates, is reported separately."""
    evs = synthetic_fleet(n_evs, STATIONS, seed, v2g_share=v2g_share)
    t0 = time.perf_counter()
    z = _fleet_zonotope(evs)
    first = time.perf_counter() - t0
    xi = np.random.default_rng(seed).uniform(-1.0, 1.0, z.beta_mw.shape)
    return {
        "n_evs": n_evs,
        "v2g_evs": sum(ev.p_discharge_kw > 0 for ev in evs),
        "zonotope_first_call_s": first,
        "zonotope_fit_s": _best_of(lambda: _fleet_zonotope(evs)),
        "zonotope_disaggregate_s": _best_of(lambda: disaggregate_zonotope_split(z, xi)),
    }


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-timing", type=int, default=10_000)
    ap.add_argument("--n-compare", type=int, default=200)
    ap.add_argument("--n-capture", type=int, default=500, help="fleet size of the flexibility-captured measurement")
    args = ap.parse_args(argv)
    print("timing:", timing(args.n_timing))
    print("zonotope timing:", zonotope_timing(args.n_timing))
    for v2g in (0.0, 0.3):
        evs = synthetic_fleet(args.n_capture, STATIONS, seed=1, v2g_share=v2g)
        r = flexibility_captured(evs, TOU_USD_PER_MWH)
        print(f"{args.n_capture} EVs v2g_share={v2g} TOU: " + " ".join(
            f"{k}={r[f'{k}_cost_captured']:.3f}/{r[f'{k}_peak_captured']:.3f}"
            for k in ("proportional", "zonotope", "outer")) + " (cost/peak captured vs exact)")
    rng = np.random.default_rng(0)
    prices = {"tou": TOU_USD_PER_MWH}
    for k in range(3):
        shape = 60.0 + 40.0 * np.sin(2 * np.pi * (np.arange(24) - 14) / 24)
        prices[f"sine+noise{k}"] = shape + rng.normal(0.0, 15.0, 24)
    for v2g in (0.3, 0.0):
        evs = synthetic_fleet(args.n_compare, STATIONS, seed=1, v2g_share=v2g)
        for name, price in prices.items():
            r = compare(evs, price)
            print(
                f"v2g_share={v2g} price={name}: uncontrolled {r['uncontrolled_usd']:.2f}"
                f" exact {r['exact_usd']:.2f} inner {r['inner_usd']:.2f} outer {r['outer_usd']:.2f} $"
                " | saving captured inner/exact"
                f" {r['inner_over_exact_saving']:.3f} inner(laxity_bins=8)/exact"
                f" {r['inner8_over_exact_saving']:.3f} outer/exact {r['outer_over_exact_saving']:.3f}"
                f" | envelopes exact/inner/inner8/outer {r['exact_envelopes']:.0f}/{r['inner_envelopes']:.0f}"
                f"/{r['inner8_envelopes']:.0f}"
                f"/{r['outer_envelopes']:.0f} | outer optimum disaggregates: {bool(r['outer_disaggregates'])}"
            )


if __name__ == "__main__":
    main()
