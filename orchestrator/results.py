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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aggregator.fleet import fleet_arrays
from aggregator.flex import disaggregate_spatial, uncontrolled_schedule_kw
from dso.report import FeederReport
from dso.report import publish as publish_feeder
from orchestrator.case import CaseSpec
from orchestrator.strategies.base import RunResult
from orchestrator.system import FeederSystem, System
from tso.report import TsoReport
from tso.report import publish as publish_tso

SUMMARY_FIELDS = (
    "case", "strategy", "objective_usd", "tso_cost_usd", "dso_cost_usd", "transmission_loss_mwh",
    "distribution_loss_mwh", "distribution_loss_rate", "pv_utilization", "wind_utilization",
    "ev_energy_mwh", "ev_unmet_mwh", "peak_valley_mw", "voltage_deviation_pu", "rounds",
    "subspace_solves", "messages", "bytes", "wall_s", "converged", "ac_check", "nodes",
)


@dataclass(frozen=True)
class EvOutcome:
    """Per-EV result of a run for one feeder: schedules (n_ev, T) in kW, unmet energy (kWh), the station
    each EV used and the station-power deviation [MW] caused by rounding the spatial allocation to whole EVs."""

    p_kw: np.ndarray
    unmet_kwh: np.ndarray
    station: tuple[str, ...] = ()
    rounding_mw: float = 0.0


def ev_outcome(feeder: FeederSystem, result: RunResult) -> EvOutcome:
    """Per-EV schedules behind a feeder's dispatch: when EVs were controlled, whole EVs are allocated to
    stations (spatial envelopes) and the envelope dispatch disaggregated; otherwise the charge-on-arrival
    schedule at each EV's own station. Unmet energy is computed from the schedules."""
    T, dt = feeder.inputs.p_load_mw.shape[1], feeder.inputs.dt_h
    fleet = list(feeder.fleet)
    if not fleet:
        return EvOutcome(np.zeros((0, T)), np.zeros(0))
    if result.ev_controlled:
        d = result.feeders[feeder.feeder_id]
        share = d.ev_alloc_share if d.ev_alloc_share.size else None
        alloc, dis = disaggregate_spatial(fleet, feeder.flex, d.ev_p_ch_mw, d.ev_p_dis_mw, share,
                                          list(feeder.stations), dt, T)
        return EvOutcome(np.asarray(dis.p_kw), np.asarray(dis.unmet_kwh), alloc.station, alloc.rounding_mw)
    p_kw = uncontrolled_schedule_kw(fleet, list(feeder.stations), dt, T)
    need = np.array([ev.energy_need_kwh for ev in fleet])
    stored = np.array([ev.efficiency for ev in fleet]) * p_kw.sum(axis=1) * dt
    return EvOutcome(p_kw, np.maximum(need - stored, 0.0), tuple(ev.station for ev in fleet))


def ev_allocation_rows(system: System, result: RunResult) -> list[dict[str, Any]]:
    """One row per (dso, hour, station): node, net EV power p_mw (charging positive, from the per-EV
    schedules behind the dispatch) and n_evs plugged in at that station in that hour (each EV at the
    station the spatial allocation gave it)."""
    rows: list[dict[str, Any]] = []
    T, dt = system.n_periods, system.dt_h
    for f in system.feeders:
        fleet = list(f.fleet)
        if not fleet:
            continue
        outcome = ev_outcome(f, result)
        p_kw = outcome.p_kw
        fa = fleet_arrays(fleet, list(f.stations), dt, T)
        index = {st.station_id: k for k, st in enumerate(f.stations)}
        station_index = np.array([index[s] for s in outcome.station], dtype=np.int64)
        owner = np.repeat(np.arange(len(fleet)), fa.dwell)
        k = np.arange(int(fa.dwell.sum())) - np.repeat(np.cumsum(fa.dwell) - fa.dwell, fa.dwell)
        plugged = np.zeros((len(f.stations), T), dtype=np.int64)
        np.add.at(plugged, (station_index[owner], (fa.start[owner] + k) % T), 1)
        p_st = np.zeros((len(f.stations), T))
        np.add.at(p_st, station_index, p_kw / 1e3)
        for t in range(T):
            for s, st in enumerate(f.stations):
                rows.append({"dso": f.feeder_id, "hour": t * dt, "node": st.node, "station": st.station_id,
                             "p_mw": float(p_st[s, t]), "n_evs": int(plugged[s, t])})
    return rows


@dataclass(frozen=True)
class Published:
    """What the operators publish at the end of a run; every metric of the run contract comes from it."""

    tso: TsoReport
    feeders: dict[str, FeederReport]
    rounding_mw: float = 0.0  # max |station EV power after rounding to whole EVs - dispatched| [MW]


def publish_run(system: System | CaseSpec, result: RunResult, *, ac: bool = True) -> Published:
    """The operators' reports: as received from services, or computed in-process from the dispatches
    (embedded default: the same ``publish`` functions a service runs, with the EVs disaggregated here)."""
    if isinstance(result.tso, TsoReport):  # service mode: the reports crossed the wire
        return Published(result.tso, {k: v for k, v in result.feeders.items()})  # type: ignore[misc]
    assert isinstance(system, System), "dispatches need the System that produced them"
    feeders: dict[str, FeederReport] = {}
    rounding = 0.0
    for f in system.feeders:
        d = result.feeders[f.feeder_id]
        outcome = ev_outcome(f, result)
        rounding = max(rounding, outcome.rounding_mw)
        inputs = f.inputs if result.ev_controlled else f.inputs_uncontrolled
        feeders[f.feeder_id] = publish_feeder(f.data, inputs, d, float(np.sum(outcome.unmet_kwh)) / 1e3, ac=ac)
    return Published(publish_tso(result.tso), feeders, rounding)


def _spec(system: System | CaseSpec) -> CaseSpec:
    return system.spec if isinstance(system, System) else system


def summarize(system: System | CaseSpec, result: RunResult, *, ac: bool = True,
              published: Published | None = None) -> dict[str, Any]:
    """The run contract's summary (every field present; unused ones are 0 or empty)."""
    spec = _spec(system)
    pub = published or publish_run(system, result, ac=ac)
    dt = spec.dt_h
    tso = pub.tso
    tso_terms = sum(float(v) for v in tso.cost_usd.values())
    revenue = 0.0
    dso_cost: dict[str, float] = {}
    loss_mwh = energy_in_mwh = pv_used = pv_avail = ev_mwh = unmet_mwh = local_terms = 0.0
    v_err = loss_err = 0.0
    ac_ok = True
    ac_checked = bool(pub.feeders) and all(r.ac_checked for r in pub.feeders.values())
    peak_valley: dict[str, float] = {}
    vdev: list[np.ndarray] = []
    for fid, r in pub.feeders.items():
        price = result.boundary_price_usd_per_mwh[fid]
        purchase = float(np.sum(price * r.p_import_mw) * dt)
        local = sum(float(v) for v in r.cost_usd.values())
        local_terms += local
        revenue += purchase
        dso_cost[fid] = local + purchase
        loss_mwh += float(np.sum(r.loss_mw) * dt)
        energy_in_mwh += float((np.sum(r.p_import_mw) + np.sum(r.pv_p_mw) + np.sum(r.mt_p_mw)) * dt)
        pv_used += float(np.sum(r.pv_p_mw) * dt)
        pv_avail += float(np.sum(r.pv_avail_mw) * dt)
        ev_mwh += float(np.sum(r.p_ev_mw) * dt)
        unmet_mwh += r.ev_unmet_mwh
        peak_valley[fid] = float(np.max(r.p_import_mw) - np.min(r.p_import_mw))
        vdev.append(np.abs(r.v_pu - 1.0).ravel())
        v_err = max(v_err, r.ac_max_voltage_error_pu)
        loss_err = max(loss_err, r.ac_loss_error_rel)
        ac_ok = ac_ok and r.ac_converged
    wind_avail = float(np.sum(tso.wind_avail_mw) * dt)
    summary: dict[str, Any] = {
        "case": spec.name,
        "strategy": result.strategy,
        "objective_usd": tso_terms + local_terms,
        "tso_cost_usd": tso_terms - revenue,
        "dso_cost_usd": dso_cost,
        "transmission_loss_mwh": float(tso.transmission_loss_mwh),
        "distribution_loss_mwh": loss_mwh,
        "distribution_loss_rate": loss_mwh / energy_in_mwh if energy_in_mwh > 0 else 0.0,
        "pv_utilization": pv_used / pv_avail if pv_avail > 0 else 1.0,
        "wind_utilization": float(np.sum(tso.wind_p_mw) * dt) / wind_avail if wind_avail > 0 else 1.0,
        "ev_energy_mwh": ev_mwh,
        "ev_unmet_mwh": unmet_mwh,
        "peak_valley_mw": peak_valley,
        "voltage_deviation_pu": float(np.mean(np.concatenate(vdev))) if vdev else 0.0,
        "rounds": result.counters.rounds,
        "subspace_solves": result.counters.subspace_solves,
        "messages": result.counters.messages,
        "bytes": result.counters.bytes,
        "wall_s": result.wall_s,
        "converged": result.converged,
        "ac_check": {"max_voltage_error_pu": v_err, "loss_error_rel": loss_err, "converged": ac_ok,
                     "checked": ac_checked},
        "nodes": list(result.nodes),
        "placement": dict(result.placement),
        # beyond the contract: cost terms, so a reader can see where the money goes
        "cost_terms_usd": {
            "tso": {k: float(v) for k, v in tso.cost_usd.items()},
            "dso": {fid: {k: float(v) for k, v in r.cost_usd.items()} for fid, r in pub.feeders.items()},
            "energy_sold_to_dsos": revenue,
        },
        # max |station EV power after rounding the spatial allocation to whole EVs - dispatched| [MW]
        "ev_allocation_rounding_mw": pub.rounding_mw,
        "max_soc_gap_mva2": max((float(r.soc_gap_mva2) for r in pub.feeders.values()), default=0.0),
        "notes": list(result.notes),
    }
    return summary


def write_run(out: Path, system: System | CaseSpec, result: RunResult, summary: dict[str, Any],
              published: Published | None = None) -> list[Path]:
    """Write summary.json, timeseries CSVs and plots under ``out``; return the paths written."""
    spec = _spec(system)
    pub = published or publish_run(system, result, ac=False)
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
            for k, d in pub.feeders.items():
                w.writerow([f"{t * dt:g}", k, f"{d.p_import_mw[t]:.6f}", f"{d.q_import_mvar[t]:.6f}",
                            f"{result.boundary_price_usd_per_mwh[k][t]:.4f}"])
    with open(ts / "dso_nodes.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["dso", "hour", "node", "p_load_mw", "q_load_mvar", "p_gen_mw", "q_gen_mvar", "p_ev_mw", "v_pu"])
        for fid, d in pub.feeders.items():
            for t in range(spec.periods):
                for n in range(d.n_nodes):
                    w.writerow([fid, f"{t * dt:g}", n + 1, f"{d.p_load_mw[n, t]:.6f}",
                                f"{d.q_load_mvar[n, t]:.6f}", f"{d.p_gen_mw[n, t]:.6f}",
                                f"{d.q_gen_mvar[n, t]:.6f}", f"{d.p_ev_mw[n, t]:.6f}", f"{d.v_pu[n, t]:.6f}"])
    # per-EV allocation needs the fleets: embedded runs only (in service mode they stay with the aggregators)
    alloc = ev_allocation_rows(system, result) if isinstance(system, System) else []
    if alloc:
        with open(ts / "ev_allocation.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["dso", "hour", "node", "station", "p_mw", "n_evs"])
            w.writerows([r["dso"], f"{r['hour']:g}", r["node"], r["station"], f"{r['p_mw']:.6f}", r["n_evs"]]
                        for r in alloc)
        written.append(ts / "ev_allocation.csv")
    if result.convergence:
        keys = list(result.convergence[0])
        with open(out / "convergence.csv", "w", newline="") as fh:
            dw = csv.DictWriter(fh, fieldnames=keys)
            dw.writeheader()
            dw.writerows(result.convergence)
        written.append(out / "convergence.csv")
    from orchestrator.plots import plot_run

    written.extend(plot_run(out, spec, result, pub))
    if alloc and isinstance(system, System):
        from orchestrator.plots import plot_ev_allocation

        written.append(plot_ev_allocation(out, system, alloc))
    return written


def format_summary(summary: dict[str, Any]) -> str:
    """A short human-readable block for the terminal."""
    lines = [
        f"case {summary['case']}  strategy {summary['strategy']}  converged={summary['converged']}",
        f"  objective (total system cost)   {summary['objective_usd']:>14,.2f} $/day",
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
        f"{summary['messages']}, bytes {summary['bytes']:,}, wall {summary['wall_s']:.2f} s",
    ]
    return "\n".join(lines)
