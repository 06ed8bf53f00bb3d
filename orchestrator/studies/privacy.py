"""Privacy: what each party infers from the coordination messages, and what differential privacy costs.

For every strategy the study records the transcript of a run (``orchestrator.runtime.transcript``), cuts it
into each party's view (the threat model, ``privacy_threat``) and mounts the attacks of ``privacy_attacks``
on each DSO's net load, boundary import, PV availability, EV energy and marginal cost curve. Then it runs
the iterative strategies with every DSO's replies through the Gaussian mechanism (``--privacy dp``) for
each epsilon, and reports the gap to the centralized optimum, the feasibility of the final dispatch and
the leakage left.

Scenarios: ``STRATEGY`` (no noise; also ``isolated``, today's practice) and ``STRATEGY-eps-E`` (E as written
in ``--epsilons``). Metrics: ``gap_to_optimum``, ``attack_r2_net_load``, ``attack_r2_import``,
``attack_r2_pv``, ``attack_r2_ev_energy`` (the best attack of the strongest party on the worst-protected
DSO: the largest R^2 over parties and DSOs), ``attack_rel_error_cost_curve`` (the smallest relative error),
the public-data baseline of each (``baseline_*``), the best attack that uses the messages
alone (``messages_r2_*``: the direct estimators and the regression without the public shapes),
``epsilon_total`` (the accountant's, 0 without noise), ``rounds``, ``max_boundary_mismatch_mw`` and
``feasible`` (every operator dispatches the reported boundary within 1e-3 MW), ``attack_r2_{net_load,pv}_across_runs``
and ``messages_r2_net_load_across_runs`` (the regression across ``--price-runs`` more runs of the day under other
prices, ``privacy_attacks.attack_across_runs``), and over ``--draws`` noise draws of a DP scenario the mean of each
metric with ``METRIC_std`` for ``SPREAD``. ``leakage.md`` holds the per-party table. Study-level
``default_epsilon``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.studies.contract import StudyResult

#: the epsilon the README documents for a trial (the issue's target: net-load R^2 <= 0.5, gap <= 1 %)
DEFAULT_EPSILON = 1.0
FEASIBLE_MW = 1e-3
METRICS = ("gap_to_optimum", "attack_r2_net_load", "messages_r2_net_load", "baseline_r2_net_load", "attack_r2_import",
           "attack_r2_pv", "messages_r2_pv", "baseline_r2_pv", "attack_r2_ev_energy", "messages_r2_ev_energy",
           "baseline_r2_ev_energy", "attack_rel_error_cost_curve",
           "attack_r2_net_load_across_runs", "messages_r2_net_load_across_runs", "attack_r2_pv_across_runs",
           "gap_to_optimum_std", "messages_r2_net_load_std", "draws",
           "epsilon_total", "rounds", "max_boundary_mismatch_mw", "feasible", "cost_usd_per_day")
#: the metrics whose spread over noise draws is reported (``METRIC_std``)
SPREAD = ("gap_to_optimum", "attack_r2_net_load", "messages_r2_net_load", "attack_r2_pv", "attack_r2_ev_energy")
#: the TSO's transmission load in the extra runs of the regression across runs, relative to the case's
PRICE_RUN_SPAN = 0.1


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--case", default="ieee30-3x33", help="bundled case name or case file")
    p.add_argument("--strategies", default="csso,admm,gradient", help="iterative strategies to attack and noise")
    p.add_argument("--epsilons", default="0.1,1,10", help="comma-separated total epsilons of a DP run")
    p.add_argument("--delta", type=float, default=1e-5)
    p.add_argument("--rounds", type=int, default=12, help="rounds of every run (the DP budget is planned for them)")
    p.add_argument("--periods", type=int, default=None,
                   help="coarser resolution for a shorter study (e.g. 8 = 3 h periods); default: the case's")
    p.add_argument("--executor", default="serial", choices=("ray", "serial"))
    p.add_argument("--dp-seed", type=int, default=0)
    p.add_argument("--draws", type=int, default=1,
                   help="noise draws per DP scenario (seeds dp-seed, dp-seed+1, ...): mean and spread reported")
    p.add_argument("--price-runs", type=int, default=2,
                   help="extra runs per scenario under other prices (TSO load scaled) for the regression across runs")


def _spec(case: str, periods: int | None) -> Any:
    from core.case import load_case

    spec = load_case(case)
    if periods is not None and periods != spec.periods:
        spec = dataclasses.replace(spec, periods=periods, dt_h=24.0 / periods)
    return spec


def truths(system: Any, result: Any, exact: list[Any]) -> list[Any]:
    """Each DSO's own values at its final dispatch and its exact marginal cost around its final import."""
    from orchestrator.studies.privacy_attacks import CURVE_SHIFT_MW, Truth

    dt = system.spec.dt_h
    out = []
    for fid, sub in zip(system.feeder_ids, exact, strict=True):
        rep = result.feeders[fid]
        wind = np.asarray(rep.wind_avail_mw, float)
        net = np.asarray(rep.p_load_mw, float).sum(axis=0) - np.asarray(rep.pv_avail_mw, float)
        if wind.size:
            net = net - wind
        x = np.asarray(rep.p_import_mw, float)
        pts = np.vstack([x - CURVE_SHIFT_MW, x, x + CURVE_SHIFT_MW])
        mc = np.vstack([_marginal_cost(sub, p) for p in pts])
        out.append(Truth(hourly={"net_load": net, "import": x, "pv": np.asarray(rep.pv_avail_mw, float),
                                 "ev_energy": np.asarray(rep.p_ev_mw, float).sum(axis=0) * dt},
                         curve_points=pts, curve_mc=mc))
    return out


def _marginal_cost(sub: Any, x: np.ndarray) -> np.ndarray:
    """The DSO's exact marginal cost at import x [$/MWh] (NaN where its solver stalls: left out of the error)."""
    from core.errors import SolveError

    try:
        return np.asarray(sub.evaluate(x).sensitivity_usd_per_mwh, float)
    except SolveError:
        return np.full(x.shape, np.nan)


def public_shapes(spec: Any) -> list[np.ndarray]:
    """Per DSO the public profile shapes its case names (load, PV), (2*T,)."""
    from core.profiles import profile

    return [np.concatenate([profile(f.load_profile, spec.dt_h), profile(f.pv_profile, spec.dt_h)])
            for f in spec.feeders]


def leakage(system: Any, result: Any, transcript: Any, exact: list[Any]) -> dict[str, Any]:
    """Per party: the attacks' results per quantity and DSO; plus the strongest party's figures."""
    from orchestrator.studies.privacy_attacks import ATTACK_PARTIES, attack, party_view

    spec = system.spec
    k_n, t_n = len(spec.feeders), spec.periods
    tr = truths(system, result, exact)
    pub = public_shapes(spec)
    parties = {}
    for party in ATTACK_PARTIES:
        views = [party_view(transcript, party, k, k_n, t_n, spec.dt_h) for k in range(k_n)]
        parties[party] = attack(views, tr, pub, t_n)
    summary: dict[str, Any] = {}
    for q in ("net_load", "import", "pv", "ev_energy"):
        vals = [d["r2"] for p in parties.values() for d in p[q] if np.isfinite(d["r2"])]
        summary[f"attack_r2_{q}"] = max(vals) if vals else float("nan")
        own = [d["r2_messages_only"] for p in parties.values() for d in p[q] if np.isfinite(d["r2_messages_only"])]
        summary[f"messages_r2_{q}"] = max(own) if own else float("nan")
        base = [d["baseline_r2"] for d in parties["orchestrator"][q] if np.isfinite(d["baseline_r2"])]
        summary[f"baseline_r2_{q}"] = max(base) if base else float("nan")
        summary[f"attack_r2_{q}_per_dso"] = [max([p[q][k]["r2"] for p in parties.values()
                                                  if np.isfinite(p[q][k]["r2"])], default=float("nan"))
                                             for k in range(k_n)]
    summary["attack_rel_error_cost_curve"] = min(d["rel_error"] for p in parties.values() for d in p["cost_curve"])
    summary["parties"] = parties
    return summary


def views(system: Any, transcript: Any) -> dict[str, list[Any]]:
    """Every party's view of every DSO in one run."""
    from orchestrator.studies.privacy_attacks import ATTACK_PARTIES, party_view

    spec = system.spec
    k_n = len(spec.feeders)
    return {party: [party_view(transcript, party, k, k_n, spec.periods, spec.dt_h) for k in range(k_n)]
            for party in ATTACK_PARTIES}


def leakage_across_runs(system: Any, result: Any, transcripts: list[Any], exact: list[Any]) -> dict[str, float]:
    """The regression across runs (``privacy_attacks.attack_across_runs``) of the strongest party against the
    worst-protected DSO: ``attack_r2_{q}_across_runs`` and ``messages_r2_{q}_across_runs`` (q: net_load, pv)."""
    from orchestrator.studies.privacy_attacks import RUN_INVARIANT, attack_across_runs

    tr = truths(system, result, exact)
    pub = public_shapes(system.spec)
    per_run = [views(system, t) for t in transcripts]
    res = {party: attack_across_runs([v[party] for v in per_run], tr, pub, system.spec.periods)
           for party in per_run[0]}
    out: dict[str, float] = {}
    for q in RUN_INVARIANT:
        for key, field in ((f"attack_r2_{q}_across_runs", "r2"), (f"messages_r2_{q}_across_runs", "r2_messages_only")):
            vals = [d[field] for r in res.values() for d in r[q] if np.isfinite(d[field])]
            out[key] = max(vals) if vals else float("nan")
    return out


def with_tso_load(system: Any, factor: float) -> Any:
    """The same day with the TSO's own transmission load scaled by ``factor`` (other prices at the boundary)."""
    tso = dataclasses.replace(system.tso_inputs, load_p_mw=np.asarray(system.tso_inputs.load_p_mw) * factor)
    return dataclasses.replace(system, tso_inputs=tso)


def pooled(draws: list[dict[str, Any]]) -> dict[str, Any]:
    """One scenario's figures over its noise draws: the mean of every number, ``METRIC_std`` (sample spread) of
    the ``SPREAD`` metrics, ``feasible`` only if every draw was, the first draw's other fields."""
    out = dict(draws[0])
    for m, v in draws[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[m] = float(np.mean([d[m] for d in draws]))
    for m in SPREAD:
        vals = [d[m] for d in draws]
        out[f"{m}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan")
    out["feasible"] = all(bool(d["feasible"]) for d in draws)
    out["draws"] = len(draws)
    return out


def run(args: argparse.Namespace) -> StudyResult:
    from core.privacy import PrivacyConfig
    from core.subspace import Report
    from dso.subspace import DsoSubspace
    from orchestrator.results.run import summarize, write_run
    from orchestrator.runtime.executors import ensure_ray
    from orchestrator.runtime.transcript import Entry, Transcript
    from orchestrator.strategies import RunOptions, get_strategy
    from orchestrator.studies.privacy_threat import threat_markdown
    from orchestrator.system.embedded import build_system

    out = Path(args.out)
    spec = _spec(args.case, args.periods)
    system = build_system(spec)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    eps_text = [e.strip() for e in args.epsilons.split(",") if e.strip()]
    exact = [DsoSubspace(f.data, f.inputs, np.arange(k * spec.periods, (k + 1) * spec.periods))
             for k, f in enumerate(system.feeders)]
    started = ensure_ray() if args.executor == "ray" else False
    scenarios: dict[str, dict[str, Any]] = {}
    per_party: dict[str, dict[str, Any]] = {}
    try:
        base = RunOptions(progress=False, ac_check=False, extra={"executor": args.executor})
        central = get_strategy("centralized").run(system, base)
        j_star = float(summarize(spec, central)["objective_usd"])
        write_run(out / "centralized", spec, central, summarize(spec, central))
        # the floor: the delivered schedule alone (the TSO must know every DSO's import at the optimum)
        schedule = Transcript()
        x_star = np.concatenate([np.asarray(central.feeders[f].p_import_mw, float) for f in system.feeder_ids])
        schedule.entries.append(Entry(1, 0, Report(x_star), central.tso))
        for k, fid in enumerate(system.feeder_ids):
            schedule.entries.append(Entry(1, 1 + k, Report(x_star[k * spec.periods:(k + 1) * spec.periods]),
                                          central.feeders[fid]))
        leak = leakage(system, central, schedule, exact)
        per_party["centralized (schedule only)"] = leak.pop("parties")
        scenarios["centralized"] = {"gap_to_optimum": 0.0, **leak, "epsilon_total": 0.0, "rounds": 1,
                                    "max_boundary_mismatch_mw": float(summarize(spec, central)
                                                                      ["max_boundary_mismatch_mw"]),
                                    "feasible": True, "cost_usd_per_day": j_star, "epsilon": None}

        def execute(name: str, privacy: PrivacyConfig | None, sys_: Any) -> tuple[Any, dict[str, Any], Any]:
            transcript = Transcript()
            sys_ = dataclasses.replace(sys_, privacy=privacy)
            extra: dict[str, Any] = {"executor": args.executor, "transcript": transcript, "best_known_usd": j_star,
                                     f"{name}_max_rounds": args.rounds}
            if privacy is not None:
                extra["privacy"] = privacy
            result = get_strategy(name).run(sys_, dataclasses.replace(base, extra=extra))
            return result, summarize(spec, result), transcript

        def one(name: str, scenario: str, privacy: PrivacyConfig | None) -> None:
            draws = []
            for d in range(args.draws if privacy is not None else 1):
                cfg = None if privacy is None else dataclasses.replace(privacy, seed=privacy.seed + d)
                result, summary, transcript = execute(name, cfg, system)
                if d == 0:
                    write_run(out / scenario, spec, result, summary)
                leak = leakage(system, result, transcript, exact)
                if d == 0:
                    per_party[scenario] = leak.pop("parties")
                    # the same day under other prices, fresh noise each run: the regression across runs
                    extra_runs = [execute(name, None if cfg is None else dataclasses.replace(
                        cfg, seed=cfg.seed + 7919 * (r + 1)), with_tso_load(system, f))[2]
                                  for r, f in enumerate(price_factors(args.price_runs))]
                    across = leakage_across_runs(system, result, [transcript, *extra_runs], exact) if extra_runs else {}
                leak.pop("parties", None)
                mismatch = float(summary["max_boundary_mismatch_mw"])
                draws.append({
                    "gap_to_optimum": (float(summary["objective_usd"]) - j_star) / abs(j_star),
                    **leak, "epsilon_total": float(summary.get("epsilon_total", 0.0)), "rounds": summary["rounds"],
                    "max_boundary_mismatch_mw": mismatch, "feasible": mismatch <= FEASIBLE_MW,
                    "cost_usd_per_day": summary["objective_usd"],
                    "epsilon": None if privacy is None else privacy.epsilon})
            scenarios[scenario] = pooled(draws) | across | {"price_runs": 1 + args.price_runs}

        def guarded(name: str, scenario: str, privacy: PrivacyConfig | None) -> None:
            try:
                one(name, scenario, privacy)
            except (RuntimeError, ValueError) as exc:  # a run that fails is a result too: say so, go on
                failed.append(f"{scenario}: failed: {exc}")
                scenarios[scenario] = {m: float("nan") for m in METRICS} | {"feasible": False, "failed": str(exc)}

        failed: list[str] = []
        guarded("isolated", "isolated", None)
        for name in strategies:
            guarded(name, name, None)
            for e in eps_text:
                cfg = PrivacyConfig(epsilon=float(e), delta=args.delta, releases=args.rounds + 1, seed=args.dp_seed)
                guarded(name, f"{name}-eps-{e}", cfg)
    finally:
        if started:
            import ray

            ray.shutdown()
    (out / "leakage.md").parent.mkdir(parents=True, exist_ok=True)
    (out / "leakage.md").write_text(_leakage_md(per_party, spec.feeder_ids) + "\n## Threat model\n\n"
                                    + threat_markdown(_strategy_classes(["isolated", *strategies])))
    revealed = sorted({f"{q} ({s})" for s, m in scenarios.items() if m.get("epsilon") is None and s != "centralized"
                       for q in ("net_load", "import", "pv", "ev_energy")
                       if np.isfinite(m[f"attack_r2_{q}"]) and m[f"attack_r2_{q}"] >= 0.99})
    notes = [
        f"case {spec.name} at {spec.periods} periods of {spec.dt_h:g} h; every run capped at {args.rounds} rounds "
        f"(the DP budget is planned for them: {args.rounds + 1} releases per DSO); centralized optimum "
        f"{j_star:,.2f} $/day",
        "fully revealed without noise (best attack R^2 >= 0.99): " + (", ".join(revealed) or "none"),
        "scenario centralized: the attacks on the delivered schedule alone (every DSO's import at the optimum, which "
        f"the TSO must know): messages_r2_net_load {scenarios['centralized']['messages_r2_net_load']:.3f} — no "
        "noise on the coordination messages hides what a near-optimal schedule shows",
        "attack_r2_*: the largest R^2 over parties (orchestrator, link observer, TSO, another DSO) and DSOs; "
        "regression attacks train on the other DSOs' truths (a coalition with them); baseline_*: the same "
        "regression on the public profile shapes only",
        "DP: Gaussian mechanism on every DSO reply during coordination (forecast, evaluations, proposals, price "
        "responses, ADMM steps; marginal costs withheld), zCDP composition; the final reports and the "
        "delivered import schedule are not covered (the dispatch itself is what is delivered)",
        f"default epsilon {DEFAULT_EPSILON:g} (README); delta {args.delta:g}",
        f"*_across_runs: the regression across {1 + args.price_runs} runs of the same day (the TSO's load x "
        f"{', '.join(f'{f:g}' for f in [1.0, *price_factors(args.price_runs)])}: other prices at the boundary; fresh "
        "noise each run, so a DSO taking part in all of them spends their epsilon_total each: "
        f"{1 + args.price_runs} x epsilon_total over the days the attacker pools)",
        f"DP scenarios: the mean over {args.draws} noise draw(s) (dp seeds {args.dp_seed}.."
        f"{args.dp_seed + args.draws - 1}); "
        "*_std: their sample spread (— for one draw); the run directory and leakage.md hold the first draw",
        *failed,
    ]
    study = StudyResult(study="privacy", case=spec.name, scenarios=scenarios, notes=notes,
                        table_metrics=list(METRICS), title="Privacy: leakage of the coordination messages and the "
                                                           "cost of differential privacy",
                        extra={"default_epsilon": DEFAULT_EPSILON, "delta": args.delta, "rounds": args.rounds,
                               "epsilons": [float(e) for e in eps_text], "strategies": strategies,
                               "centralized_usd": j_star})
    study.plots.append(_plot(out / "privacy_cost.png", scenarios, strategies, eps_text))
    return study


def price_factors(n: int) -> list[float]:
    """The TSO load factors of ``n`` extra runs: 1 + PRICE_RUN_SPAN, 1 - PRICE_RUN_SPAN, then halfway ones."""
    if n < 0:
        raise ValueError(f"--price-runs {n}: must be >= 0")
    half = -(-n // 2)
    return [1.0 + PRICE_RUN_SPAN * (half - r // 2) / half * (-1.0 if r % 2 else 1.0) for r in range(n)]


def _strategy_classes(names: list[str]) -> dict[str, Any]:
    from orchestrator.strategies import STRATEGIES

    return {n: STRATEGIES[n] for n in names}


def _leakage_md(per_party: dict[str, dict[str, Any]], ids: list[str]) -> str:
    lines = ["# Leakage per party (best attack; R^2 per DSO, cost curve: relative error)", "",
             "| scenario | party | net load R^2 | import R^2 | PV R^2 | EV energy R^2 | cost curve rel. error | "
             "baseline net load R^2 |", "|---|---|---|---|---|---|---|---|"]

    def fmt(v: float) -> str:
        return "—" if not np.isfinite(v) else f"{v:.3f}"

    for scenario, parties in per_party.items():
        for party, res in parties.items():
            cells = [", ".join(fmt(d["r2"]) for d in res[q]) for q in ("net_load", "import", "pv", "ev_energy")]
            cells.append(", ".join(fmt(d["rel_error"]) for d in res["cost_curve"]))
            cells.append(", ".join(fmt(d["baseline_r2"]) for d in res["net_load"]))
            lines.append(f"| {scenario} | {party} | " + " | ".join(cells) + " |")
    lines += ["", f"DSOs in each cell: {', '.join(ids)}."]
    return "\n".join(lines) + "\n"


def _plot(path: Path, scenarios: dict[str, dict[str, Any]], strategies: list[str], eps: list[str]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    xs = [float(e) for e in eps]
    for i, name in enumerate(strategies):
        color = f"C{i}"
        gap = [abs(scenarios[f"{name}-eps-{e}"]["gap_to_optimum"]) for e in eps]
        leak = [scenarios[f"{name}-eps-{e}"]["attack_r2_net_load"] for e in eps]
        own = [scenarios[f"{name}-eps-{e}"]["messages_r2_net_load"] for e in eps]
        axes[0].loglog(xs, np.maximum(gap, 1e-7), marker="o", color=color, label=name)
        axes[1].semilogx(xs, leak, marker="o", color=color, label=f"{name}: best attack")
        spread = [scenarios[f"{name}-eps-{e}"].get("messages_r2_net_load_std", float("nan")) for e in eps]
        axes[1].errorbar(xs, own, yerr=np.nan_to_num(spread), marker="s", ls="--", color=color, capsize=2,
                         label=f"{name}: messages only (+- spread over draws)")
        axes[1].set_xscale("log")
    first = next(iter(scenarios.values()))
    axes[1].axhline(first["baseline_r2_net_load"], color="0.3", ls=":", lw=1.0, label="public data only")
    if "centralized" in scenarios:
        axes[1].axhline(scenarios["centralized"]["messages_r2_net_load"], color="0.6", ls="-.", lw=1.0,
                        label="delivered schedule only")
    axes[0].axhline(0.01, color="0.5", ls="--", lw=0.8)
    axes[0].set_ylabel("|gap to the centralized optimum| [-]")
    axes[1].axhline(0.5, color="0.5", ls="--", lw=0.8)
    axes[1].set_ylabel("R^2 of the attack on a DSO's net load [-]")
    low = np.nanmin([-0.2, *[scenarios[f"{n}-eps-{e}"]["messages_r2_net_load"] for n in strategies for e in eps]])
    axes[1].set_ylim(float(low), 1.05)
    for ax in axes:
        ax.set_xlabel("epsilon (total over the run)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle("cost of privacy: optimality gap and leakage vs epsilon")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
