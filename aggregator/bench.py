"""Measurements (not tests): envelope timing at 10,000 EVs and flexibility captured by each envelope.

Run: ``python -m aggregator.bench [--n-timing 10000] [--n-compare 200]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import numpy as np

from aggregator.fleet import EV, FleetError, Station, synthetic_fleet
from aggregator.flex import (
    FleetFlexibility,
    disaggregate,
    exact_flexibility,
    inner_flexibility,
    outer_flexibility,
    uncontrolled_profile,
)
from aggregator.schedule import build_price_response, solve_price_response

STATIONS = (Station("cs-a", 5, 800.0), Station("cs-b", 18, 800.0), Station("cs-c", 30, 800.0))
# Illustrative time-of-use tariff ($/MWh): night valley, day shoulder, 17-21 h peak.
TOU_USD_PER_MWH = np.array([40.0] * 7 + [60.0] * 10 + [110.0] * 4 + [60.0] * 3)


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


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-timing", type=int, default=10_000)
    ap.add_argument("--n-compare", type=int, default=200)
    args = ap.parse_args(argv)
    print("timing:", timing(args.n_timing))
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
