"""Metrics of a run and the run contract's files (``summary.json``, ``timeseries/*.csv``).

Cost accounting (all strategies alike, so ``objective_usd`` compares directly):
- TSO cost = generation + wind curtailment + demand response - revenue from energy sold to DSOs.
- DSO cost = microturbine fuel + PV curtailment + loss cost + purchase (price x import).
- objective_usd = TSO cost + sum of DSO costs: purchases cancel against revenue, so it is the total
  system cost of the day.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from core.case import CaseSpec
from orchestrator.strategies.base import RunResult

SUMMARY_FIELDS = (
    "case", "strategy", "objective_usd", "tso_cost_usd", "dso_cost_usd", "transmission_loss_mwh",
    "distribution_loss_mwh", "distribution_loss_rate", "pv_utilization", "wind_utilization",
    "ev_energy_mwh", "ev_unmet_mwh", "peak_valley_mw", "voltage_deviation_pu", "rounds",
    "subspace_solves", "messages", "bytes", "wall_s", "converged", "ac_check", "nodes",
)


def ev_allocation_rows(result: RunResult, dt_h: float) -> list[dict[str, Any]]:
    """One row per (dso, hour, station): node, net EV power p_mw (charging positive, from the per-EV
    schedules behind the dispatch) and n_evs plugged in at that station in that hour. Only DSOs whose
    aggregator reported per-station detail (an aggregator in this process) have rows."""
    rows: list[dict[str, Any]] = []
    for fid, r in result.feeders.items():
        st = r.ev_stations
        if st is None:
            continue
        for t in range(st.p_mw.shape[1]):
            for s, sid in enumerate(st.station_id):
                rows.append({"dso": fid, "hour": t * dt_h, "node": st.node[s], "station": sid,
                             "p_mw": float(st.p_mw[s, t]), "n_evs": int(st.n_evs[s, t])})
    return rows


def summarize(spec: CaseSpec, result: RunResult) -> dict[str, Any]:
    """The run contract's summary (every field present; unused ones are 0 or empty)."""
    dt = spec.dt_h
    tso = result.tso
    tso_terms = sum(float(v) for v in tso.cost_usd.values())
    revenue = 0.0
    dso_cost: dict[str, float] = {}
    loss_mwh = energy_in_mwh = pv_used = pv_avail = ev_mwh = unmet_mwh = local_terms = 0.0
    v_err = loss_err = 0.0
    ac_ok = True
    ac_checked = bool(result.feeders) and all(r.ac_checked for r in result.feeders.values())
    peak_valley: dict[str, float] = {}
    vdev: list[np.ndarray] = []
    for fid, r in result.feeders.items():
        price = result.boundary_price_usd_per_mwh[fid]
        purchase = float(np.sum(price * r.p_import_mw) * dt)
        local = sum(float(v) for v in r.cost_usd.values())
        local_terms += local
        revenue += purchase
        dso_cost[fid] = local + purchase
        loss_mwh += float(np.sum(r.loss_mw) * dt)
        energy_in_mwh += float((np.sum(r.p_import_mw) + np.sum(r.pv_p_mw) + np.sum(r.wind_p_mw) + np.sum(r.mt_p_mw))
                               * dt)
        pv_used += float(np.sum(r.pv_p_mw) * dt)
        pv_avail += float(np.sum(r.pv_avail_mw) * dt)
        ev_mwh += float(np.sum(r.p_ev_mw) * dt)
        unmet_mwh += r.ev_unmet_mwh
        peak_valley[fid] = float(np.max(r.p_import_mw) - np.min(r.p_import_mw))
        vdev.append(np.abs(r.v_pu - 1.0).ravel())
        v_err = max(v_err, r.ac_max_voltage_error_pu)
        loss_err = max(loss_err, r.ac_loss_error_rel)
        ac_ok = ac_ok and r.ac_converged
    feeder_wind_used = sum(float(np.sum(r.wind_p_mw) * dt) for r in result.feeders.values())
    feeder_wind_avail = sum(float(np.sum(r.wind_avail_mw) * dt) for r in result.feeders.values())
    wind_used = float(np.sum(tso.wind_p_mw) * dt) + feeder_wind_used
    wind_avail = float(np.sum(tso.wind_avail_mw) * dt) + feeder_wind_avail
    penalty = float(tso.penalty_usd) + sum(float(r.penalty_usd) for r in result.feeders.values())
    mismatch = max([float(tso.mismatch_mw), *[float(r.mismatch_mw) for r in result.feeders.values()]])
    summary: dict[str, Any] = {
        "case": spec.name,
        "strategy": result.strategy,
        # the elastic penalties are part of the total: a boundary an operator could not serve costs what it says
        "objective_usd": tso_terms + local_terms + penalty,
        "tso_cost_usd": tso_terms - revenue,
        "dso_cost_usd": dso_cost,
        "transmission_loss_mwh": float(tso.transmission_loss_mwh),
        "distribution_loss_mwh": loss_mwh,
        "distribution_loss_rate": loss_mwh / energy_in_mwh if energy_in_mwh > 0 else 0.0,
        "pv_utilization": pv_used / pv_avail if pv_avail > 0 else 1.0,
        # transmission and feeder wind together (feeder_wind_utilization: the feeders' own)
        "wind_utilization": wind_used / wind_avail if wind_avail > 0 else 1.0,
        "feeder_wind_utilization": feeder_wind_used / feeder_wind_avail if feeder_wind_avail > 0 else 1.0,
        "ev_energy_mwh": ev_mwh,
        "ev_unmet_mwh": unmet_mwh,
        "peak_valley_mw": peak_valley,
        "voltage_deviation_pu": float(np.mean(np.concatenate(vdev))) if vdev else 0.0,
        "rounds": result.traffic.rounds,
        "subspace_solves": result.traffic.subspace_solves,
        "messages": result.traffic.messages,
        "bytes": result.traffic.bytes,
        "wall_s": result.wall_s,
        "report_s": result.report_s,
        "startup_s": result.startup_s,
        "converged": result.converged,
        "ac_check": {"max_voltage_error_pu": v_err, "loss_error_rel": loss_err, "converged": ac_ok,
                     "checked": ac_checked},
        "nodes": list(result.nodes),
        "placement": dict(result.placement),
        # beyond the contract: cost terms, so a reader can see where the money goes
        "cost_terms_usd": {
            "tso": {k: float(v) for k, v in tso.cost_usd.items()},
            "dso": {fid: {k: float(v) for k, v in r.cost_usd.items()} for fid, r in result.feeders.items()},
            "energy_sold_to_dsos": revenue,
        },
        # max |station EV power after rounding the spatial allocation to whole EVs - dispatched| [MW]
        # the largest boundary value an operator could not dispatch at the reported boundary [MW] (0: consistent)
        "max_boundary_mismatch_mw": mismatch,
        "boundary_penalty_usd": penalty,
        "ev_allocation_rounding_mw": max((r.ev_stations.rounding_mw for r in result.feeders.values()
                                          if r.ev_stations is not None), default=0.0),
        "max_soc_gap_mva2": max((float(r.soc_gap_mva2) for r in result.feeders.values()), default=0.0),
        "notes": list(result.notes),
        # the DSOs' out-of-sample checks of chance-constrained dispatches (dso.chance.check_dispatch), per feeder
        "chance": {fid: dict(r.chance) for fid, r in result.feeders.items() if r.chance},
    }
    if result.privacy:  # DP mode: the accountant's total over the run (zCDP composition of every release)
        summary["privacy"] = dict(result.privacy)
        summary["epsilon_total"] = float(result.privacy["epsilon_total"])
    return summary


def write_run(out: Path, spec: CaseSpec, result: RunResult, summary: dict[str, Any]) -> list[Path]:
    """Write summary.json, timeseries CSVs and plots under ``out``; return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    ts = out / "timeseries"
    ts.mkdir(exist_ok=True)
    written = [out / "summary.json", ts / "boundary.csv", ts / "dso_nodes.csv"]
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    dt = spec.dt_h
    with open(ts / "boundary.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["hour", "dso", "p_mw", "q_mvar", "price_usd_per_mwh"])
        for t in range(spec.periods):
            for k, d in result.feeders.items():
                w.writerow([f"{t * dt:g}", k, f"{d.p_import_mw[t]:.6f}", f"{d.q_import_mvar[t]:.6f}",
                            f"{result.boundary_price_usd_per_mwh[k][t]:.4f}"])
    with open(ts / "dso_nodes.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["dso", "hour", "node", "p_load_mw", "q_load_mvar", "p_gen_mw", "q_gen_mvar", "p_ev_mw", "v_pu",
                    "q_ev_mvar"])
        for fid, d in result.feeders.items():
            q_ev = d.q_ev_mvar if d.q_ev_mvar.size else np.zeros_like(d.v_pu)
            for t in range(spec.periods):
                for n in range(d.n_nodes):
                    w.writerow([fid, f"{t * dt:g}", n + 1, f"{d.p_load_mw[n, t]:.6f}",
                                f"{d.q_load_mvar[n, t]:.6f}", f"{d.p_gen_mw[n, t]:.6f}",
                                f"{d.q_gen_mvar[n, t]:.6f}", f"{d.p_ev_mw[n, t]:.6f}", f"{d.v_pu[n, t]:.6f}",
                                f"{q_ev[n, t]:.6f}"])
    # per-station EV detail comes from aggregators in this process (in service mode it stays with them)
    alloc = ev_allocation_rows(result, dt)
    if alloc:
        with open(ts / "ev_allocation.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["dso", "hour", "node", "station", "p_mw", "n_evs"])
            w.writerows([r["dso"], f"{r['hour']:g}", r["node"], r["station"], f"{r['p_mw']:.6f}", r["n_evs"]]
                        for r in alloc)
        written.append(ts / "ev_allocation.csv")
    if result.convergence:
        keys = list(dict.fromkeys(k for row in result.convergence for k in row))  # rows may add columns
        with open(out / "convergence.csv", "w", newline="") as fh:
            dw = csv.DictWriter(fh, fieldnames=keys, restval="")
            dw.writeheader()
            dw.writerows(result.convergence)
        written.append(out / "convergence.csv")
    from orchestrator.results.plots import plot_ev_allocation, plot_run

    written.extend(plot_run(out, spec, result))
    if alloc:
        written.append(plot_ev_allocation(out, spec, result, alloc))
    return written


def format_summary(summary: dict[str, Any]) -> str:
    """A short human-readable block for the terminal."""
    lines = [
        f"case {summary['case']}  strategy {summary['strategy']}  converged={summary['converged']}",
        f"  objective (total system cost)   {summary['objective_usd']:>14,.2f} $/day"
        + (f" (incl. {summary['boundary_penalty_usd']:,.2f} $ boundary penalty)" if summary["boundary_penalty_usd"]
           else ""),
        f"  boundary disagreement            {summary['max_boundary_mismatch_mw']:>14.3g} MW",
        f"  TSO cost / DSO costs             {summary['tso_cost_usd']:>14,.2f} $ / "
        + ", ".join(f"{k} {v:,.0f} $" for k, v in summary["dso_cost_usd"].items()),
        f"  transmission losses              {summary['transmission_loss_mwh']:>14.3f} MWh",
        f"  distribution losses              {summary['distribution_loss_mwh']:>14.3f} MWh "
        f"(loss rate {100 * summary['distribution_loss_rate']:.2f} %)",
        f"  PV / wind utilisation            {100 * summary['pv_utilization']:>13.2f} % / "
        f"{100 * summary['wind_utilization']:.2f} %",
        f"  EV energy / unmet                {summary['ev_energy_mwh']:>14.3f} MWh / {summary['ev_unmet_mwh']:.6f} MWh",
        f"  EV allocation rounding           {1e3 * summary.get('ev_allocation_rounding_mw', 0.0):>14.3f} kW",
        f"  mean |V - 1|                     {summary['voltage_deviation_pu']:>14.4f} p.u.",
        f"  AC check: max |dV| {summary['ac_check']['max_voltage_error_pu']:.2e} p.u., "
        f"loss error {100 * summary['ac_check']['loss_error_rel']:.3f} %",
        f"  rounds {summary['rounds']}, subspace solves {summary['subspace_solves']}, messages "
        f"{summary['messages']}, bytes {summary['bytes']:,}, wall {summary['wall_s']:.2f} s"
        + (f" (after {summary['startup_s']:.2f} s start-up)" if summary.get("startup_s") else ""),
    ]
    for fid, c in summary.get("chance", {}).items():
        lines.append(f"  chance constraints {fid}: joint reliability MC {c['joint_reliability_mc']:.4f} "
                     f"({int(c['mc_samples']):,} days) / held-out {c['joint_reliability_heldout']:.4f} "
                     f"(target >= {1 - c['eps']:.2f}); reserves up / down {c['reserve_up_mw']:.3f} / "
                     f"{c['reserve_down_mw']:.3f} MW")
    if "epsilon_total" in summary:
        p = summary["privacy"]
        lines.append(f"  privacy (DP, Gaussian, zCDP)     epsilon_total {summary['epsilon_total']:.4g} at delta "
                     f"{p['delta']:g} over {p['releases_max']} releases per DSO (planned {p['releases_planned']})")
    return "\n".join(lines)
