"""T-D coordination with EV scheduling (the first paper): isolated vs coordinated dispatch, CSSO vs gradient.

Cheng Hulin et al., "Research on the low-carbon strategy of coordinated loss reduction of transmission and
distribution network considering the temporal-spatial distribution of EV charging and discharging",
Electrical Measurement & Instrumentation 61(11), 2024, DOI 10.19753/j.issn1001-1390.2024.11.016.

Scenarios on one case (default ``ieee30-6x33-der``, where the feeders carry a quarter of the energy):
``isolated`` (the TSO clears against the DSOs' forecasts, EVs charge on arrival), ``centralized`` (the joint
optimum J*), ``csso`` and ``gradient`` (the price method with Polyak steps: the "hybrid gradient descent"
baseline), each a run directory with the run contract. Metrics per scenario: ``cost_usd_per_day``,
``distribution_loss_rate``, ``pv_consumption``, ``transmission_loss_mwh``, ``ev_revenue_usd_per_day`` (EV
arbitrage: sum over feeders and periods of (the feeder's mean boundary price - the period's price) x net EV
energy, i.e. what the schedule earns against buying the same energy at the day's mean price),
``peak_valley_mw`` (per feeder), ``rounds``, ``wall_s``, and for the iterative ones the rounds and seconds
until the objective is within 0.1 % of J* at a consistent boundary.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.studies.contract import PaperFigure, StudyResult

SCENARIOS = ("isolated", "centralized", "csso", "gradient")
#: the paper's figures (press summary in shared/papers/000_*.txt)
PAPER = (
    PaperFigure("csso", "cost_saving_vs_isolated_usd_per_day", 7000.0, "about 7,000 $/day saved vs isolated"),
    PaperFigure("isolated", "distribution_loss_rate", 0.0024, "loss rate 0.24 % -> 0.21 %"),
    PaperFigure("csso", "distribution_loss_rate", 0.0021, ""),
    PaperFigure("isolated", "pv_consumption", 0.954, "PV consumption 95.4 % -> 98.1 %"),
    PaperFigure("csso", "pv_consumption", 0.981, ""),
    PaperFigure("csso", "ev_revenue_usd_per_day", 412.0 * 24, "EV fleet ~412 $/h arbitrage"),
    PaperFigure("csso", "wall_s", 112.0, "CSSO 112 s vs hybrid gradient descent 1,100 s"),
    PaperFigure("gradient", "wall_s", 1100.0, ""),
)
METRICS = ("cost_usd_per_day", "cost_saving_vs_isolated_usd_per_day", "gap_to_centralized", "distribution_loss_rate",
           "pv_consumption", "transmission_loss_mwh", "ev_revenue_usd_per_day", "mean_clearing_price_usd_per_mwh",
           "rounds", "rounds_to_0_1pct", "wall_to_0_1pct_s", "wall_s", "subspace_solves", "bytes")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--case", default="ieee30-6x33-der", help="bundled case name or case file")
    p.add_argument("--executor", default="ray", choices=("ray", "serial"), help="where csso/gradient subspaces run")
    p.add_argument("--surrogate", default="relu", choices=("relu", "linear"), help="csso response surfaces")
    p.add_argument("--max-rounds", type=int, default=None, help="cap on csso/gradient rounds (tests)")
    p.add_argument("--no-ac-check", action="store_true", help="skip the pandapower AC check of every feeder")


def ev_revenue_usd_per_day(result: Any, dt_h: float) -> float:
    """sum_k sum_t (mean_t price_k - price_kt) * net EV power_kt * dt [$/day] (see the module docstring)."""
    total = 0.0
    for fid, rep in result.feeders.items():
        price = np.asarray(result.boundary_price_usd_per_mwh[fid], dtype=float)
        ev = np.asarray(rep.p_ev_mw, dtype=float).sum(axis=0)
        total += float(np.sum((price.mean() - price) * ev) * dt_h)
    return total


def run(args: argparse.Namespace) -> StudyResult:
    from core.case import load_case
    from orchestrator.results.run import summarize, write_run
    from orchestrator.runtime.executors import ensure_ray
    from orchestrator.strategies import RunOptions, get_strategy
    from orchestrator.strategies.iterative import CONSISTENT_MW, first_within
    from orchestrator.system.embedded import build_system

    out = Path(args.out)
    spec = load_case(args.case)
    system = build_system(spec)
    started = ensure_ray() if args.executor == "ray" else False
    results: dict[str, Any] = {}
    scenarios: dict[str, dict[str, Any]] = {}
    j_star: float | None = None
    try:
        for name in SCENARIOS:
            extra: dict[str, Any] = {"executor": args.executor, "csso_surrogate": args.surrogate}
            if j_star is not None:
                extra["best_known_usd"] = j_star
            if args.max_rounds is not None:
                extra[f"{name}_max_rounds"] = args.max_rounds
            result = get_strategy(name).run(system, RunOptions(progress=False, ac_check=not args.no_ac_check,
                                                               extra=extra))
            summary = summarize(spec, result)
            write_run(out / name, spec, result, summary)
            if name == "centralized":
                j_star = float(summary["objective_usd"])
            results[name] = result
            r01, w01 = first_within(result.convergence, 1e-3) if result.convergence else (np.nan, np.nan)
            prices = np.vstack(list(result.boundary_price_usd_per_mwh.values()))
            scenarios[name] = {
                "cost_usd_per_day": summary["objective_usd"],
                "distribution_loss_rate": summary["distribution_loss_rate"],
                "pv_consumption": summary["pv_utilization"],
                "transmission_loss_mwh": summary["transmission_loss_mwh"],
                "ev_revenue_usd_per_day": ev_revenue_usd_per_day(result, spec.dt_h),
                "mean_clearing_price_usd_per_mwh": float(prices.mean()),
                "clearing_price_usd_per_mwh": prices.mean(axis=0).tolist(),
                "peak_valley_mw": summary["peak_valley_mw"],
                "rounds": summary["rounds"], "rounds_to_0_1pct": r01, "wall_to_0_1pct_s": w01,
                "wall_s": summary["wall_s"], "subspace_solves": summary["subspace_solves"], "bytes": summary["bytes"],
                "converged": summary["converged"], "max_boundary_mismatch_mw": summary["max_boundary_mismatch_mw"],
                "ac_max_voltage_error_pu": summary["ac_check"]["max_voltage_error_pu"],
                "ac_loss_error_rel": summary["ac_check"]["loss_error_rel"],
            }
    finally:
        if started:
            import ray

            ray.shutdown()
    assert j_star is not None
    iso = scenarios["isolated"]["cost_usd_per_day"]
    for s in scenarios.values():
        s["cost_saving_vs_isolated_usd_per_day"] = iso - s["cost_usd_per_day"]
        s["gap_to_centralized"] = (s["cost_usd_per_day"] - j_star) / abs(j_star)
    cs, gr = scenarios["csso"], scenarios["gradient"]
    saving = scenarios["centralized"]["cost_saving_vs_isolated_usd_per_day"]
    notes = [
        f"case {spec.name}: coordinated (centralized) saves {saving:,.0f} $/day = {100 * saving / iso:.2f} % "
        "of isolated",
        f"csso vs gradient: rounds {cs['rounds']} vs {gr['rounds']}, to 0.1 %: {cs['rounds_to_0_1pct']} vs "
        f"{gr['rounds_to_0_1pct']} rounds, {cs['wall_to_0_1pct_s']:.1f} vs {gr['wall_to_0_1pct_s']:.1f} s; wall "
        f"{cs['wall_s']:.1f} vs {gr['wall_s']:.1f} s (executor {args.executor}, this machine)",
        "rounds count every exchange incl. the common start (everyone evaluated at the DSOs' forecast) and the final "
        "reporting round; 'to 0.1 %' is within 0.1 % of the centralized optimum at a boundary whose TSO and DSO views "
        f"agree within {CONSISTENT_MW} MW",
        "the paper's case is its own IEEE test system (not published in full); its figures are listed for direction, "
        "not as a reproduction of the same numbers",
    ]
    study = StudyResult(study="t-d-coordination", case=spec.name, scenarios=scenarios, notes=notes,
                        paper=list(PAPER), table_metrics=list(METRICS),
                        title="T-D coordination with EV scheduling (Cheng Hulin et al. 2024)")
    study.plots.append(_plot_prices(out / "clearing_prices.png", spec.dt_h, scenarios))
    study.plots.append(_plot_convergence(out / "csso_vs_gradient.png", results, j_star))
    return study


def _plot_prices(path: Path, dt_h: float, scenarios: dict[str, dict[str, Any]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for name, style in (("isolated", "--"), ("csso", "-"), ("centralized", ":")):
        price = np.asarray(scenarios[name]["clearing_price_usd_per_mwh"])
        ax.step(np.arange(price.size) * dt_h, price, where="post", ls=style, label=name)
    ax.set_xlabel("hour")
    ax.set_ylabel("mean clearing price at the DSO buses [$/MWh]")
    ax.set_title("clearing price per hour: isolated vs coordinated")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_convergence(path: Path, results: dict[str, Any], j_star: float) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name in ("csso", "gradient"):
        rows = results[name].convergence
        gap = np.maximum(np.abs([(r["objective_usd"] - j_star) / abs(j_star) for r in rows]), 1e-9)
        axes[0].semilogy([r["round"] for r in rows], gap, marker="o", label=name)
        axes[1].semilogy([r["wall_s"] for r in rows], gap, marker="o", label=name)
    for ax, label in zip(axes, ("round", "wall time since start [s]"), strict=True):
        ax.axhline(1e-3, color="0.5", lw=0.8, ls="--")
        ax.set_xlabel(label)
        ax.set_ylabel("|J - J*| / |J*|")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    fig.suptitle("CSSO vs the gradient (price) method")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
