"""Distributionally robust joint chance-constrained DSO dispatch with optimised Bonferroni risk allocation.

Jinpeng Li et al., Automation of Electric Power Systems, DOI 10.7500/AEPS20230830009 (press summary in
shared/papers/002_*.txt). One feeder (default case ``ieee33-drjcc``) is dispatched by its DSO alone against the
case's boundary price, with up/down reserves from microturbines and EV stations and joint chance constraints
(voltage, branch flow, reserve) at risk eps per hour (``dso.chance``; uncertainty ``dso.uncertainty``).

Scenarios (the four methods on the same case): ``so`` (sample average, constraints in expectation), ``ro``
(box over the fitted support), ``bonferroni`` (DR constraints, eps split equally), ``oba`` (DR constraints, the
split optimised). Each: ``cost_usd`` (the day's purchase + fuel + curtailment + loss + reserve cost),
reliabilities from ``--mc-samples`` Monte Carlo days drawn from the GMMs and from the held-out real days
(``joint_reliability_*``: min over hours of the share of days in which every constraint of the hour holds,
what the joint chance constraint promises; ``day_joint_reliability_*``: every hour of the day;
``*_violation_rate``: max over hours of the share of days with a violation in the group), the reserves
(``reserve_up_mw``: mean over hours [MW]), ``solve_s``, the risk split (``eps_voltage`` ... : mean over hours
of the group's share), and an AC check: pandapower power flows at the realised injections of ``--ac-samples``
random Monte Carlo days (``ac_violation_rate``: share of those day-hours with a voltage or current outside its
limit; ``ac_linear_voltage_error_pu``: max |V_ac - V_linear|). ``--scale`` re-solves ``oba`` with other fleet
sizes and prints the solve time.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.studies.contract import PaperFigure, StudyResult, feeder_run_result, save_figure
from orchestrator.studies.contract import pyplot as _plt

SCENARIOS = ("so", "ro", "bonferroni", "oba")
METRICS = ("cost_usd", "joint_reliability_mc", "joint_reliability_heldout", "day_joint_reliability_mc",
           "day_joint_reliability_heldout", "voltage_violation_rate", "flow_violation_rate",
           "reserve_violation_rate", "reserve_up_mw", "reserve_down_mw", "eps_voltage", "eps_flow", "eps_reserve",
           "ac_violation_rate", "ac_linear_voltage_error_pu", "cost_vs_oba", "solve_s")
PAPER = (
    PaperFigure("oba", "cost_vs_oba", 0.0, "press summary (Li et al., AEPS): OBA 6.5 % cheaper than fixed Bonferroni "
                "at >= 95 % reliability; stochastic optimisation cheaper but violating in > 85 % of scenarios; robust "
                "optimisation up to 15 % dearer than OBA; IEEE 123 with 4,400 EVs in < 21 s"),
    PaperFigure("bonferroni", "cost_vs_oba", 1 / (1 - 0.065) - 1),
    PaperFigure("ro", "cost_vs_oba", "<= 0.15"),
    PaperFigure("so", "joint_reliability_mc", "< 0.15"),
    PaperFigure("oba", "joint_reliability_mc", ">= 0.95"),
)
DEFAULT_SCALE = "1000,4400,10000"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--case", default="ieee33-drjcc", help="bundled case name or case file (one feeder is studied; "
                                                           "it needs a 'chance' section)")
    p.add_argument("--feeder", default=None, help="the feeder to study (default: the case's first)")
    p.add_argument("--evs", type=int, default=None, help="override the feeder's EV count")
    p.add_argument("--eps", type=float, default=0.05, help="joint violation probability per hour, in (0, 1)")
    p.add_argument("--mc-samples", type=int, default=10000, help="Monte Carlo days drawn from the fitted GMMs")
    p.add_argument("--ac-samples", type=int, default=20, help="Monte Carlo days checked by AC power flow (0: none)")
    p.add_argument("--scale", default=DEFAULT_SCALE,
                   help="comma-separated EV counts at which oba is re-solved for its solve time ('' = none)")
    p.add_argument("--seed", type=int, default=2, help="seed of the Monte Carlo and AC samples")
    p.add_argument("--error-scales", default="",
                   help="comma-separated chance.error_scale values at which the four methods are re-solved "
                        "(cost and reliability of each; e.g. 0.05,0.1,0.2,0.3; '' = none); the case's own scale "
                        "stays the study's")
    p.add_argument("--no-run-ac-check", action="store_true",
                   help="skip the run directories' AC check of the nominal dispatch (the sample AC check stays)")


def _case(args: argparse.Namespace, evs: int | None) -> tuple[Any, str]:
    from core.case import CaseError, load_case
    from dso.chance import ChanceError, check_eps

    spec = load_case(args.case)
    fid = args.feeder or spec.feeder_ids[0]
    f = spec.feeder(fid)
    if f.chance is None:
        raise CaseError(f"case '{spec.name}', feeder '{fid}': no 'chance' section (the study needs one)")
    try:
        eps = check_eps(args.eps, "--eps")
    except ChanceError as exc:
        raise CaseError(str(exc)) from exc
    f = replace(f, chance=replace(f.chance, eps=eps), ev_count=f.ev_count if evs is None else evs)
    return replace(spec, feeders=(f,)), fid


def _solve(feeder: Any, method: str, price: np.ndarray) -> tuple[Any, Any, float, str]:
    """(problem or None, solution or None, solve_s, status) of the feeder dispatched with ``method``."""
    from core.errors import SolveError
    from dso.problem import DsoProblem

    inputs = replace(feeder.inputs, chance=replace(feeder.inputs.chance, method=method))
    prob = DsoProblem(feeder.data, inputs, mode="price")
    t0 = time.perf_counter()
    try:
        sol = prob.solve(price_usd_per_mwh=price)
    except SolveError as exc:
        return prob, None, time.perf_counter() - t0, str(exc.status)
    return prob, sol, sol.solve_s, "optimal"


def _ac(feeder: Any, prob: Any, sol: Any, xi: np.ndarray) -> dict[str, float]:
    """AC power flows at the realised injections of the error days ``xi`` (n, T, d)."""
    from dso.acpf import node_net_withdrawal, power_flow
    from dso.chance import realised_withdrawal

    layer, inp, data = prob.model.chance, prob.inputs, feeder.data
    p0, q0 = node_net_withdrawal(inp, sol.dispatch)
    w_lin0 = sol.dispatch.v_pu**2
    bad = total = 0
    v_err = 0.0
    i_max = np.where(np.isfinite(data.i_max_ka), data.i_max_ka, np.inf)[:, None]
    for day in xi:
        p, q = realised_withdrawal(layer, p0, q0, day)
        pf = power_flow(data, inp.v_sub_pu, p, q)
        ok = pf.converged
        v = pf.v_pu
        viol = ~ok | np.any((v[1:] < inp.v_min_pu - 1e-6) | (v[1:] > inp.v_max_pu + 1e-6), axis=0) | np.any(
            pf.i_ka > i_max * (1 + 1e-6), axis=0)
        bad += int(viol.sum())
        total += viol.size
        w_lin = w_lin0 + np.einsum("tnd,td->nt", layer.maps.w, day)
        v_err = max(v_err, float(np.nanmax(np.abs(v - np.sqrt(np.maximum(w_lin, 0.0))))))
    return {"ac_violation_rate": bad / total if total else float("nan"), "ac_linear_voltage_error_pu": v_err}


def run_method(feeder: Any, method: str, price: np.ndarray, xi_mc: np.ndarray, xi_held: np.ndarray,
               xi_ac: np.ndarray, diagnose: bool = False) -> tuple[dict[str, Any], Any, Any]:
    """Metrics of one method (None values where it is infeasible), its problem and solution; with ``diagnose``
    an infeasible oba also reports ``infeasible_why`` (``dso.chance.smallest_budget``)."""
    from dso.chance import describe_allocation, extract, reliability

    prob, sol, solve_s, status = _solve(feeder, method, price)
    out: dict[str, Any] = {"status": status, "solve_s": solve_s}
    if sol is None:
        out.update({m: None for m in METRICS if m not in out})
        if method == "oba" and diagnose:
            from dso.chance import smallest_budget

            out["infeasible_why"] = smallest_budget(prob.model)
        return out, prob, None
    layer = prob.model.chance
    res = extract(layer)
    mc, held = reliability(layer, res, xi_mc), reliability(layer, res, xi_held)
    out.update({
        "cost_usd": float(sol.objective_usd),
        "joint_reliability_mc": mc.joint, "joint_reliability_heldout": held.joint,
        "day_joint_reliability_mc": mc.joint_day, "day_joint_reliability_heldout": held.joint_day,
        **{f"{g}_violation_rate": v for g, v in mc.violation_rate.items()},
        **{f"{g}_violation_rate_heldout": v for g, v in held.violation_rate.items()},
        "reserve_up_mw": float(np.mean(res.reserve_up_mw)), "reserve_down_mw": float(np.mean(res.reserve_down_mw)),
        **{f"eps_{g}": float(np.mean(v)) for g, v in res.eps_by_group.items()},
        "eps_split": describe_allocation(res), "kappa_exact_ok": res.kappa_exact_ok,
        "kappa_bound_gap": layer.kappa_gap, "joint_reliability_mc_by_hour": mc.joint_by_hour.tolist(),
        "cost_terms_usd": {k: float(v) for k, v in sol.dispatch.cost_usd.items()},
    })
    if xi_ac.shape[0]:
        out.update(_ac(feeder, prob, sol, xi_ac))
    else:
        out.update({"ac_violation_rate": None, "ac_linear_voltage_error_pu": None})
    return out, prob, sol


def scale_timing(args: argparse.Namespace, counts: list[int]) -> list[dict[str, Any]]:
    """oba re-solved at each EV count (station connection limits scaled with the fleet)."""
    from orchestrator.system.embedded import build_system

    rows = []
    for n in counts:
        spec, fid = _case(args, n)
        f = spec.feeders[0]
        base = max(f.ev_count, 1)
        grow = max(1.0, n / base)
        f = replace(f, stations=tuple(replace(s, p_max_kw=s.p_max_kw * grow) for s in f.stations))
        spec = replace(spec, feeders=(f,))
        t0 = time.perf_counter()
        feeder = build_system(spec).feeders[0]
        build_s = time.perf_counter() - t0
        price = _price(spec)
        _, sol, solve_s, status = _solve(feeder, "oba", price)
        rows.append({"evs": n, "solve_s": solve_s, "status": status, "build_s": build_s,
                     "envelopes": int(feeder.inputs.ev.n_envelopes),
                     "cost_usd": float(sol.objective_usd) if sol is not None else None})
        print(f"oba with {n:,} EVs: solve {solve_s:.2f} s ({status}), case build {build_s:.1f} s, "
              f"{feeder.inputs.ev.n_envelopes} EV envelopes")
    return rows


def parse_scales(text: str) -> list[float]:
    """``--error-scales`` as positive floats; ``CaseError`` naming the bad entry."""
    from core.case import CaseError

    out = []
    for item in (x.strip() for x in str(text).split(",")):
        if not item:
            continue
        try:
            v = float(item)
        except ValueError:
            v = float("nan")
        if not np.isfinite(v) or v <= 0:
            raise CaseError(f"--error-scales: {item!r} is not a positive number")
        out.append(v)
    return out


SWEEP_METRICS = ("cost_usd", "joint_reliability_mc", "joint_reliability_heldout", "reserve_up_mw",
                 "reserve_down_mw", "eps_voltage", "eps_flow", "eps_reserve", "solve_s", "status")


def error_scale_sweep(args: argparse.Namespace, scales: list[float], xi_seed: int) -> list[dict[str, Any]]:
    """The four methods re-solved with the case's forecast errors scaled by each of ``scales`` (GMMs refitted on
    the scaled errors, held-out days scaled the same way); one row per (scale, method), plus ``oba_vs``: the
    cost of each method relative to oba's."""
    from dso.inputs import chance_inputs, feeder_uncertainty
    from orchestrator.system.embedded import build_system

    spec0, fid = _case(args, args.evs)
    base = build_system(spec0).feeders[0]
    price = _price(spec0)
    rows: list[dict[str, Any]] = []
    for scale in scales:
        f = spec0.feeders[0]
        assert f.chance is not None
        spec = replace(spec0, feeders=(replace(f, chance=replace(f.chance, error_scale=scale)),))
        feeder = replace(base, inputs=replace(base.inputs, chance=chance_inputs(spec, fid, base.data, base.inputs)))
        unc = feeder_uncertainty(spec, fid)
        xi_mc, xi_held = unc.sample(args.mc_samples, xi_seed), unc.heldout()
        by_method = {}
        for method in SCENARIOS:
            m, _, _ = run_method(feeder, method, price, xi_mc, xi_held, xi_mc[:0])
            by_method[method] = {k: m.get(k) for k in SWEEP_METRICS}
        ref = by_method["oba"]["cost_usd"]
        for method, m in by_method.items():
            m["cost_vs_oba"] = (m["cost_usd"] - ref) / ref if ref and m["cost_usd"] is not None else None
            rows.append({"error_scale": scale, "method": method, **m})
        line = "; ".join(f"{k} " + (f"{v['cost_usd']:,.1f} $ / {v['joint_reliability_mc']:.3f}"
                                    if v["cost_usd"] is not None else "infeasible") for k, v in by_method.items())
        print(f"error_scale {scale:g}: cost / MC joint reliability: {line}")
    return rows


def _price(spec: Any) -> np.ndarray:
    ch = spec.feeders[0].chance
    return np.broadcast_to(np.asarray(ch.price_usd_per_mwh, dtype=float), (spec.periods,)).copy()


def run(args: argparse.Namespace) -> StudyResult:
    from dso.inputs import feeder_uncertainty
    from dso.report import EvSettlement, publish
    from orchestrator.results.run import summarize, write_run
    from orchestrator.system.embedded import build_system

    out = Path(args.out)
    spec, fid = _case(args, args.evs)
    if args.mc_samples < 1 or args.ac_samples < 0:
        from core.case import CaseError

        raise CaseError(f"--mc-samples={args.mc_samples} must be >= 1 and --ac-samples={args.ac_samples} >= 0")
    feeder = build_system(spec).feeders[0]
    unc = feeder_uncertainty(spec, fid)
    ch = spec.feeders[0].chance
    xi_mc = unc.sample(args.mc_samples, args.seed)
    xi_held = unc.heldout()
    rng = np.random.default_rng(args.seed + 1)
    xi_ac = xi_mc[rng.choice(xi_mc.shape[0], size=min(args.ac_samples, xi_mc.shape[0]), replace=False)]
    price = _price(spec)
    scenarios: dict[str, dict[str, Any]] = {}
    for method in SCENARIOS:
        metrics, prob, sol = run_method(feeder, method, price, xi_mc, xi_held, xi_ac, diagnose=True)
        scenarios[method] = metrics
        if sol is not None:
            settle = feeder.aggregator(controlled=True)(sol.dispatch) if prob.inputs.ev.n_window else EvSettlement(0.0)
            report = publish(feeder.data, prob.inputs, sol.dispatch, settle, ac=not args.no_run_ac_check)
            result = feeder_run_result(f"dso-chance-{method}", fid, report, price, sol.solve_s,
                                       f"chance-constrained scenario {method}: the DSO dispatches its feeder alone "
                                       "against the case's boundary price (no TSO)")
            summary = summarize(spec, result)
            summary.update(scenario=method, chance={k: v for k, v in metrics.items() if k != "eps_split"})
            write_run(out / method, spec, result, summary)
    ref = scenarios["oba"].get("cost_usd")
    for s in scenarios.values():
        s["cost_vs_oba"] = (s["cost_usd"] - ref) / ref if ref and s.get("cost_usd") is not None else None
    counts = [int(x) for x in str(args.scale).split(",") if x.strip()]
    scale_rows = scale_timing(args, counts) if counts else []
    sweep = error_scale_sweep(args, parse_scales(args.error_scales), args.seed) if args.error_scales else []
    o, b, so, ro = (scenarios[k] for k in ("oba", "bonferroni", "so", "ro"))
    eps = ch.eps

    def _num(v: Any) -> float:
        return float(v) if v is not None else float("nan")

    costs = {k: _num(v.get("cost_usd")) for k, v in scenarios.items()}
    checks = {
        "oba_reliability_mc_ge_1_minus_eps": bool(_num(o["joint_reliability_mc"]) >= 1 - eps),
        "oba_reliability_heldout_ge_1_minus_eps": bool(_num(o["joint_reliability_heldout"]) >= 1 - eps),
        "oba_cheaper_than_bonferroni": (bool(costs["oba"] < costs["bonferroni"]) if b["cost_usd"] is not None
                                        else "n/a: bonferroni infeasible"),
        "so_reliability_below_1_minus_eps": bool(_num(so["joint_reliability_mc"]) < 1 - eps),
        "ro_dearest": bool(np.isfinite(costs["ro"]) and costs["ro"] >= np.nanmax(list(costs.values()))),
        "bonferroni_feasible": b["cost_usd"] is not None,
    }
    names = ", ".join(f"{n} ({g})" for n, g in zip(unc.names, unc.group_of, strict=True))
    notes = [
        f"case {spec.name}, feeder {fid}: {spec.feeders[0].ev_count} EVs, eps = {eps} per hour (joint over every "
        f"voltage, flow and reserve constraint of the hour); methods: {', '.join(SCENARIOS)}",
        f"uncertainty: forecast errors of {names} (dso.uncertainty: {_forecast_note()}), errors x "
        f"{ch.error_scale} (case chance.error_scale); per hour and group a GMM, components by BIC; "
        f"{unc.train_days.size} training days, {unc.heldout_days.size} held-out days (every {ch.holdout_every}th)",
        f"Monte Carlo: {xi_mc.shape[0]} GMM days (hours drawn independently); AC check: {xi_ac.shape[0]} of them, "
        "pandapower Newton-Raphson at the realised injections after recourse",
        "participation factors fixed (each provider's share of the hour's reserve capacity); the import from the "
        "TSO stays at its schedule, the reserves balance every deviation",
        "oba margin u_i = eps_i^-1/2 >= kappa(eps_i) (safe convex bound, <= "
        f"{100 * (1 / np.sqrt(1 - eps) - 1):.1f} % on the margin); bonferroni: eps / (number of uncertain "
        "constraints of the hour)",
        "bonferroni: infeasible at this eps (status " + str(b["status"]) + ")" if b["cost_usd"] is None else
        f"bonferroni cost {costs['bonferroni']:,.1f} $",
        "checks: " + ", ".join(f"{k}={v}" for k, v in checks.items()),
    ]
    why = o.get("infeasible_why")
    if why and "eps_needed" in why:
        notes.append(f"oba infeasible at eps {eps}: feasible from eps = {why['eps_needed']:.4f} per hour "
                     f"(dso.chance.smallest_budget); in hour {why['hour']}, which needs it most: " + "; ".join(
                         f"{g} {v['risk']:.4f} over {v['rows']} rows ({v['rows_above_1e-4']} above 1e-4, median "
                         f"margin {v['median_margin_std'] or 0:.1f} std)" for g, v in why["groups"].items()
                         if v["rows"])
                     + f"; ro's box is +-{ch.ro_n_std:g} std of each component")
    elif why:
        notes.append(f"oba infeasible at eps {eps}; the smallest risk budget (dso.chance.smallest_budget) could not "
                     f"be computed: status {why['status']}" + (f" ({why['message']})" if why.get("message") else ""))
    if sweep:
        notes.append("error-scale sweep (--error-scales; the four methods re-solved with the errors scaled, "
                     "cost $ / MC joint reliability): " + " | ".join(
                         f"x{r['error_scale']:g} {r['method']} " + (
                             f"{r['cost_usd']:,.1f} / {r['joint_reliability_mc']:.3f}" if r["cost_usd"] is not None
                             else "infeasible") for r in sweep))
    if scale_rows:
        notes.append("oba solve time by fleet size (station limits scaled with the fleet): " + "; ".join(
            f"{r['evs']:,} EVs {r['solve_s']:.2f} s ({r['status']})" for r in scale_rows))
    study = StudyResult(study="chance-constrained", case=spec.name, scenarios=scenarios, notes=notes,
                        paper=list(PAPER), table_metrics=list(METRICS),
                        extra={"checks": checks, "scale": scale_rows, "eps": eps, "error_scale_sweep": sweep,
                               "uncertainty": {"names": list(unc.names), "groups": list(unc.group_of),
                                               "heldout_days": unc.heldout_days.tolist(),
                                               "gmm_components": {g: [int(x.weights.size) for x in gm]
                                                                  for g, gm in unc.gmms.items()}}},
                        title="DR joint chance-constrained dispatch with optimised Bonferroni (Li et al.)")
    out.mkdir(parents=True, exist_ok=True)
    study.plots += [_plot_cost_reliability(out / "cost_vs_reliability.png", scenarios, eps),
                    _plot_eps(out / "eps_allocation.png", scenarios),
                    _plot_gmms(out / "gmm_fits.png", unc)]
    if sweep:
        study.plots.append(_plot_sweep(out / "cost_vs_error_scale.png", sweep, eps))
    return study


def _plot_sweep(path: Path, sweep: list[dict[str, Any]], eps: float) -> Path:
    """Cost and MC joint reliability of each method against the error scale (infeasible points left out)."""
    plt = _plt()
    fig, (ax_c, ax_r) = plt.subplots(1, 2, figsize=(10, 4))
    for method in SCENARIOS:
        pts = [(r["error_scale"], r["cost_usd"], r["joint_reliability_mc"]) for r in sweep
               if r["method"] == method and r["cost_usd"] is not None]
        if not pts:
            continue
        x, c, rel = (np.array(v) for v in zip(*pts, strict=True))
        ax_c.plot(x, c, marker="o", label=method)
        ax_r.plot(x, rel, marker="o", label=method)
    ax_r.axhline(1 - eps, color="0.5", ls="--", lw=0.8)
    ax_c.set_xlabel("error scale [-]")
    ax_r.set_xlabel("error scale [-]")
    ax_c.set_ylabel("cost [$ / day]")
    ax_r.set_ylabel("joint reliability, Monte Carlo (min over hours)")
    for ax in (ax_c, ax_r):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax_c.set_title("cost by forecast-error scale (infeasible: not drawn)")
    return save_figure(fig, path)


def _forecast_note() -> str:
    from dso.uncertainty import FORECAST_METHOD

    return FORECAST_METHOD


def _plot_cost_reliability(path: Path, scenarios: dict[str, dict[str, Any]], eps: float) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, s in scenarios.items():
        if s.get("cost_usd") is None:
            ax.annotate(f"{name}: infeasible", xy=(0.02, 0.05 + 0.07 * SCENARIOS.index(name)),
                        xycoords="axes fraction")
            continue
        ax.scatter(s["joint_reliability_mc"], s["cost_usd"], label=f"{name} (MC)")
        ax.scatter(s["joint_reliability_heldout"], s["cost_usd"], marker="x", label=f"{name} (held-out)")
    ax.axvline(1 - eps, color="0.5", ls="--", lw=0.8)
    ax.set_xlabel("joint reliability (min over hours)")
    ax.set_ylabel("cost [$ / day]")
    ax.set_title("cost vs reliability of the four methods")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def _plot_eps(path: Path, scenarios: dict[str, dict[str, Any]]) -> Path:
    plt = _plt()
    shown = [n for n in ("bonferroni", "oba") if scenarios[n].get("cost_usd") is not None] or ["oba"]
    fig, axes = plt.subplots(1, len(shown), figsize=(6 * len(shown), 4), sharey=True)
    for ax, name in zip(np.atleast_1d(axes), shown, strict=True):
        split = scenarios[name].get("eps_split") or {}
        bottom = np.zeros(24)
        for g, v in split.items():
            vals = np.asarray(v["by_hour"])
            ax.bar(np.arange(vals.size), vals, bottom=bottom[: vals.size], label=g)
            bottom[: vals.size] += vals
        ax.set_title(f"{name}: risk eps per hour by constraint group")
        ax.set_xlabel("hour")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    np.atleast_1d(axes)[0].set_ylabel("eps share")
    return save_figure(fig, path)


def _plot_gmms(path: Path, unc: Any) -> Path:
    """Training-error histograms and the fitted mixture's marginal density per component at one hour each."""
    plt = _plt()
    d = unc.dim
    fig, axes = plt.subplots(1, d, figsize=(3.6 * d, 3.4))
    train = unc.training()
    for j, ax in enumerate(np.atleast_1d(axes)):
        group = unc.group_of[j]
        cols = [i for i, g in enumerate(unc.group_of) if g == group]
        local = cols.index(j)
        hour = int(np.argmax(np.nanstd(train[:, :, j], axis=0)))
        gmm = unc.gmms[group][hour]
        x = train[:, hour, j]
        ax.hist(x, bins=30, density=True, alpha=0.5, color="0.5")
        pos = np.flatnonzero(gmm.dims == local)
        if pos.size:
            k = int(pos[0])
            grid = np.linspace(np.nanmin(x), np.nanmax(x), 300)
            dens = sum(w * np.exp(-0.5 * (grid - m[k]) ** 2 / c[k, k]) / np.sqrt(2 * np.pi * c[k, k])
                       for w, m, c in zip(gmm.weights, gmm.means, gmm.covariances, strict=True))
            ax.plot(grid, dens, color="C3", label=f"GMM, {gmm.weights.size} comp.")
        ax.set_title(f"{unc.names[j]} ({group}), hour {hour}", fontsize=8)
        ax.set_xlabel("forecast error [profile unit]")
        ax.legend(fontsize=7)
    return save_figure(fig, path)
