"""Reservation-based scheduled charging with joint active and reactive power (the second paper).

Cao Hangtao, Zhang Yong, Jiang Ning, Lü Bin, Zhejiang Electric Power 2024, DOI 10.19585/j.zjdl.202405005
(press summary in shared/papers/001_*.txt). EV owners book their charging (and, if they accept, discharging)
with a station; the DSO dispatches the booked EVs, the EV chargers and the PV and wind inverters, active and
reactive power together, minimising the day's active losses under voltage limits (DistFlow SOC relaxation).

Scenarios on one feeder (default case ``ieee33-sched``), each dispatched by the DSO alone (no TSO: the
substation voltage is fixed at the case's ``v_sub_pu``), each a run directory with the run contract:

- ``base``: base load only (no EV, no wind, no PV). Nothing is controllable: the dispatch is the AC power
  flow of the base load (voltage limits cannot be enforced, so they are lifted and ``v_min_pu`` says how far
  the base load takes the feeder);
- ``ev_p``: EVs, wind and PV; only the EVs' active power is scheduled, every DER at unity power factor;
- ``ev_pq``: the full model, EV chargers as four-quadrant converters, PV and wind inverters with Q inside S;
- ``redispatch`` (only with ``--redispatch-hour H``): some EVs booked after H do not come or come late; the
  ``ev_pq`` day is re-dispatched from H with the periods before fixed (``orchestrator.studies.redispatch``).

Embedded by default; with ``--services FILE`` (or ``--local-services``, which starts the operators here) each
scenario is dispatched by the feeder's DSO service (``DsoService.Dispatch``, the same ``dso.scenarios`` code)
and the re-dispatch by ``DsoService.Redispatch`` with its aggregator service.

Metrics: ``peak_valley_mw`` (max - min of the substation import over the day, the "equivalent load"),
``loss_mwh`` (the day's active loss of the model), ``voltage_deviation_pu`` (Γ:
the mean over all nodes and hours of |V - 1|; the paper's Γ up to a constant factor, so its relative
changes compare directly), ``v_min_pu``, ``v_max_pu``, ``ev_unmet_kwh`` (the sum over EVs of the need not
delivered by the per-EV schedules), ``ev_unmet_max_kwh`` (the worst EV), ``ac_loss_error_rel``,
``ac_max_voltage_error_pu`` (DistFlow vs a pandapower Newton-Raphson power flow at the dispatched injections),
``soc_gap_mva2`` (the relaxation gap max |P^2 + Q^2 - w l|).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from dso.scenarios import BASE_V_LIMITS_PU, SCENARIOS, dispatch_alone
from orchestrator.studies.contract import PaperFigure, StudyResult, feeder_run_result
from orchestrator.studies.contract import pyplot as _plt
from orchestrator.studies.feeder_run import ScenarioRun

METRICS = ("peak_valley_mw", "loss_mwh", "voltage_deviation_pu", "v_min_pu", "v_max_pu",
           "ev_energy_mwh", "ev_unmet_kwh", "ev_unmet_max_kwh", "q_ev_max_mvar", "q_der_max_mvar",
           "peak_valley_change_vs_base", "loss_change_vs_base", "voltage_deviation_change_vs_base",
           "loss_change_vs_ev_p", "voltage_deviation_change_vs_ev_p",
           "ac_loss_error_rel", "ac_max_voltage_error_pu", "soc_gap_mva2", "solve_s")
#: rows added to the table when the re-dispatch scenario runs (``--redispatch-hour``)
REDISPATCH_METRICS = ("n_no_show", "n_late", "late_shortfall_kwh", "loss_change_vs_ev_pq", "loss_delta_mwh",
                      "objective_change_vs_ev_pq", "ev_energy_delta_mwh", "local_cost_delta_usd")
#: the paper's relative changes (press summary)
PAPER = (
    PaperFigure("ev_p", "peak_valley_change_vs_base", -0.4060, "press summary: ev_p vs base peak-valley -40.60 %, "
                "loss -85.19 %, voltage deviation -70.74 %; ev_pq vs ev_p loss -57.00 %, voltage deviation -6.86 %"),
    PaperFigure("ev_p", "loss_change_vs_base", -0.8519),
    PaperFigure("ev_p", "voltage_deviation_change_vs_base", -0.7074),
    PaperFigure("ev_pq", "loss_change_vs_ev_p", -0.5700),
    PaperFigure("ev_pq", "voltage_deviation_change_vs_ev_p", -0.0686),
)
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--case", default="ieee33-sched", help="bundled case name or case file (one feeder is studied)")
    p.add_argument("--feeder", default=None, help="the feeder to study (default: the case's first)")
    p.add_argument("--evs", type=int, default=None, help="override the feeder's EV count (reduced sizes for tests)")
    p.add_argument("--load-scale", type=float, default=None,
                   help="multiply the feeder's base load (reduced fleets for tests: fewer EVs hold less voltage)")
    p.add_argument("--no-ac-check", action="store_true", help="skip the pandapower AC check")
    p.add_argument("--redispatch-hour", type=int, default=None,
                   help="also run scenario 'redispatch': no-shows and late arrivals known at this period, the "
                        "ev_pq day re-dispatched from it with the periods before fixed (default: not run)")
    p.add_argument("--no-show-share", type=float, default=0.1,
                   help="share of the EVs whose window lies after --redispatch-hour that do not come")
    p.add_argument("--late-share", type=float, default=0.1, help="share of those EVs that come late")
    p.add_argument("--late-h", type=float, default=2.0, help="how late a late EV comes [h]")
    p.add_argument("--seed", type=int, default=0, help="seed of the no-show / late draw")
    p.add_argument("--services", default=None,
                   help="YAML mapping operator id -> host:port: each scenario is dispatched by the feeder's DSO "
                        "service (DsoService.Dispatch) instead of in this process")
    p.add_argument("--local-services", action="store_true",
                   help="start the feeder's DSO and its aggregator as `gridcoord serve` processes (mTLS, "
                        "OUT/operators), dispatch every scenario through them, stop them")
    p.add_argument("--tls-dir", default=None,
                   help="with --services: mTLS as 'orchestrator' (DIR/ca.pem, DIR/orchestrator.pem|.key)")
    p.add_argument("--insecure", action="store_true",
                   help="with --services / --local-services: plaintext gRPC (local development)")


def _run_result(run: ScenarioRun, feeder_id: str) -> Any:
    return feeder_run_result(
        f"dso-{run.name}", feeder_id, run.report, np.zeros(run.inputs.n_periods), run.solve_s,
        f"scheduled-charging scenario {run.name}: the DSO dispatches its feeder alone (objective from the case; "
        "no TSO, the substation voltage is fixed)")


def run_scenario(feeder: Any, name: str, ac: bool = True, solver: str = "CLARABEL") -> ScenarioRun:
    """Dispatch ``feeder`` (an embedded ``FeederSystem``) in scenario ``name`` and settle its EVs per EV."""
    out = dispatch_alone(feeder.data, feeder.inputs, name, feeder.aggregator(controlled=True), ac=ac, solver=solver)
    unmet = out.settlement.ev_unmet_kwh
    return ScenarioRun(name, out.inputs, out.dispatch, out.report,
                       np.zeros(0) if unmet is None else np.asarray(unmet, dtype=float), out.solve_s)


def scenario_metrics(run: ScenarioRun) -> dict[str, Any]:
    r, d, dt = run.report, run.dispatch, run.inputs.dt_h
    q_der = np.concatenate([np.abs(d.pv_q_mvar).ravel(), np.abs(d.wind_q_mvar).ravel(), [0.0]])
    return {
        "peak_valley_mw": float(np.max(r.p_import_mw) - np.min(r.p_import_mw)),
        "loss_mwh": float(np.sum(d.loss_mw) * dt),
        "voltage_deviation_pu": float(np.mean(np.abs(r.v_pu - 1.0))),
        "v_min_pu": float(np.min(r.v_pu)),
        "v_max_pu": float(np.max(r.v_pu)),
        "ev_energy_mwh": float(np.sum(r.p_ev_mw) * dt),
        "local_cost_usd": float(sum(d.cost_usd.values())),
        "ev_unmet_kwh": float(np.sum(run.ev_unmet_kwh)),
        "ev_unmet_max_kwh": float(np.max(run.ev_unmet_kwh)) if run.ev_unmet_kwh.size else 0.0,
        "n_evs": int(run.ev_unmet_kwh.size),
        "q_ev_max_mvar": float(np.max(np.abs(d.ev_station_q_mvar))) if d.ev_station_q_mvar.size else 0.0,
        "q_der_max_mvar": float(np.max(q_der)),
        "ac_loss_error_rel": float(r.ac_loss_error_rel),
        "ac_max_voltage_error_pu": float(r.ac_max_voltage_error_pu),
        "ac_converged": bool(r.ac_converged),
        "soc_gap_mva2": float(r.soc_gap_mva2),
        "solve_s": float(run.solve_s),
        "import_mw": np.asarray(r.p_import_mw).tolist(),
    }


def _rel(new: float, old: float) -> float:
    return (new - old) / old if old else float("nan")


def run(args: argparse.Namespace) -> StudyResult:
    from core.case import load_case
    from orchestrator.results.run import summarize, write_run

    out = Path(args.out)
    spec = load_case(args.case)
    fid = args.feeder or spec.feeder_ids[0]
    _check_mode_flags(args)
    for key, value in (("ev_count", args.evs), ("load_scale", args.load_scale)):
        if value is not None:
            spec = replace(spec, feeders=tuple(replace(f, **{key: value}) if f.feeder_id == fid else f
                                               for f in spec.feeders))
    spec = replace(spec, feeders=tuple(f for f in spec.feeders if f.feeder_id == fid))
    runs: dict[str, ScenarioRun] = {}
    scenarios: dict[str, dict[str, Any]] = {}
    redispatched = None
    with _dispatcher(args, spec, fid) as dispatcher:
        for name in SCENARIOS:
            sr = dispatcher.scenario(name)
            runs[name] = sr
            result = _run_result(sr, fid)
            summary = summarize(spec, result)
            summary["scenario"] = name
            summary["mode"] = dispatcher.mode
            summary["ev_unmet_kwh_per_ev"] = sr.ev_unmet_kwh.tolist()
            write_run(out / name, spec, result, summary)
            scenarios[name] = scenario_metrics(sr)
        if args.redispatch_hour is not None:
            redispatched = dispatcher.redispatch(args, runs["ev_pq"])
            sr = redispatched.run
            runs["redispatch"] = sr
            result = _run_result(sr, fid)
            summary = summarize(spec, result)
            summary |= {"scenario": "redispatch", "mode": dispatcher.mode,
                        "ev_unmet_kwh_per_ev": sr.ev_unmet_kwh.tolist(),
                        "no_show": list(redispatched.no_show), "late_arrival_h": redispatched.late}
            write_run(out / "redispatch", spec, result, summary)
            scenarios["redispatch"] = scenario_metrics(sr) | _redispatch_metrics(redispatched,
                                                                                 scenarios["ev_pq"])
        station_ids = dispatcher.station_ids
    b, p, pq = scenarios["base"], scenarios["ev_p"], scenarios["ev_pq"]
    for s in scenarios.values():
        s["peak_valley_change_vs_base"] = _rel(s["peak_valley_mw"], b["peak_valley_mw"])
        s["loss_change_vs_base"] = _rel(s["loss_mwh"], b["loss_mwh"])
        s["voltage_deviation_change_vs_base"] = _rel(s["voltage_deviation_pu"], b["voltage_deviation_pu"])
        s["loss_change_vs_ev_p"] = _rel(s["loss_mwh"], p["loss_mwh"])
        s["voltage_deviation_change_vs_ev_p"] = _rel(s["voltage_deviation_pu"], p["voltage_deviation_pu"])
    f = spec.feeder(fid)
    checks = {
        "ev_p_lowers_peak_valley_loss_and_deviation_vs_base": bool(
            p["peak_valley_mw"] < b["peak_valley_mw"] and p["loss_mwh"] < b["loss_mwh"]
            and p["voltage_deviation_pu"] < b["voltage_deviation_pu"]),
        "ev_pq_cuts_loss_30pct_vs_ev_p": bool(pq["loss_change_vs_ev_p"] <= -0.30),
        "ev_pq_lowers_voltage_deviation_vs_ev_p": bool(pq["voltage_deviation_pu"] < p["voltage_deviation_pu"]),
        "ev_pq_within_0_97_1_03_pu": bool(pq["v_min_pu"] >= 0.97 and pq["v_max_pu"] <= 1.03),
        "every_reservation_met": bool(p["ev_unmet_max_kwh"] <= 1e-3 and pq["ev_unmet_max_kwh"] <= 1e-3),
        "ac_loss_error_le_1pct": bool(all(s["ac_loss_error_rel"] <= 0.01 for s in scenarios.values())),
        "ac_voltage_error_le_0_002_pu": bool(all(s["ac_max_voltage_error_pu"] <= 0.002 for s in scenarios.values())),
    }
    if redispatched is not None:
        checks["redispatch_every_remaining_reservation_met"] = bool(
            scenarios["redispatch"]["ev_unmet_max_kwh"] <= 1e-3)
    notes = [
        f"case {spec.name}, feeder {fid}: {scenarios['ev_pq']['n_evs']} EVs, objective {dict(f.objective)}, "
        f"EV chargers' Q: {f.ev_q}, PV/wind curtailable: {f.curtailable}",
        "each scenario is the DSO's own dispatch (no TSO; substation voltage fixed at "
        f"{f.v_sub_pu} p.u.); base is a power flow (nothing controllable), its voltage limits lifted to "
        f"{BASE_V_LIMITS_PU} p.u. so that v_min_pu shows where the base load takes the feeder",
        "voltage_deviation_pu = mean over all nodes and hours of |V - 1| (Γ up to a constant factor); "
        "peak_valley_mw = max - min of the substation import (the equivalent load)",
        "the paper's case (Hangzhou profiles, node placement, DER sizes) is not published in the summary we "
        "have; its relative changes are listed beside ours for direction, not as the same numbers",
        "checks: " + ", ".join(f"{k}={v}" for k, v in checks.items()),
    ]
    study = StudyResult(study="scheduled-charging", case=spec.name, scenarios=scenarios, notes=notes,
                        paper=list(PAPER), extra={"checks": checks},
                        table_metrics=[*METRICS, *(REDISPATCH_METRICS if redispatched is not None else ())],
                        title="Scheduled charging with joint P + Q (Cao Hangtao et al. 2024)")
    study.plots += [_plot_equivalent_load(out / "equivalent_load.png", runs),
                    _plot_voltages(out / "node_voltages.png", runs),
                    _plot_station_pq(out / "ev_station_pq.png", runs, list(station_ids))]
    return study


def _check_mode_flags(args: argparse.Namespace) -> None:
    from orchestrator.cli.main import UsageError

    remote = bool(args.services) or args.local_services
    if args.services and args.local_services:
        raise UsageError("--services FILE and --local-services: give one (operators already running, or started "
                         "here)")
    if not remote and (args.tls_dir or args.insecure):
        raise UsageError("--tls-dir/--insecure apply only with --services FILE or --local-services")
    if args.services and bool(args.tls_dir) == bool(args.insecure):
        raise UsageError("--services: give --tls-dir DIR (mTLS as 'orchestrator', certificates from `gridcoord "
                         "certs`) or --insecure (plaintext, local development only), not both or neither")
    if args.local_services and args.tls_dir:
        raise UsageError("--local-services creates its own trial certificates (OUT/operators/tls); no --tls-dir")
    if remote and (args.evs is not None or args.load_scale is not None):
        raise UsageError("--evs/--load-scale change the case in this process only; the services read their own "
                         "case: write the reduced case to a case file and pass it as --case")


class _Embedded:
    """Every scenario dispatched in this process (the DSO's model and its aggregator's fleet here)."""

    mode = "embedded"

    def __init__(self, spec: Any, ac: bool) -> None:
        from orchestrator.system.embedded import build_system

        self.feeder = build_system(spec).feeders[0]
        self.ac = ac
        self.station_ids = tuple(s.station_id for s in self.feeder.stations)

    def scenario(self, name: str) -> ScenarioRun:
        return run_scenario(self.feeder, name, ac=self.ac)

    def redispatch(self, args: argparse.Namespace, day: ScenarioRun) -> Any:
        return _redispatch_scenario(args, self.feeder, day)


@dataclass(frozen=True)
class _Periods:
    n_periods: int
    dt_h: float


@dataclass(frozen=True)
class _RemoteDispatch:
    """The parts of a DSO service's dispatch the study's metrics and plots read (``FeederDispatch`` names)."""

    loss_mw: np.ndarray
    cost_usd: dict[str, float]
    pv_q_mvar: np.ndarray
    wind_q_mvar: np.ndarray
    ev_station_p_mw: np.ndarray
    ev_station_q_mvar: np.ndarray


class _Services:
    """Every scenario dispatched by the feeder's DSO service (``DsoService.Dispatch``, over mTLS as the
    orchestrator unless ``--insecure``)."""

    mode = "services"

    def __init__(self, client: Any, dt_h: float, booked: Callable[[], list[Any]] | None = None) -> None:
        self.client, self.dt_h = client, dt_h
        #: the aggregator's booked EVs (ListReservations), from which the no-shows and late EVs are drawn
        self.booked = booked
        self.station_ids: tuple[str, ...] = ()

    def scenario(self, name: str) -> ScenarioRun:
        return self._run(name, self.client.dispatch(name))

    def _run(self, name: str, out: Any) -> ScenarioRun:
        r = out.report
        self.station_ids = out.station_ids
        d = _RemoteDispatch(loss_mw=np.asarray(r.loss_mw), cost_usd=dict(r.cost_usd), pv_q_mvar=out.pv_q_mvar,
                            wind_q_mvar=out.wind_q_mvar, ev_station_p_mw=out.station_p_mw,
                            ev_station_q_mvar=out.station_q_mvar)
        return ScenarioRun(name, _Periods(int(np.asarray(r.p_import_mw).size), self.dt_h), d, r,
                           np.asarray(out.ev_unmet_kwh, dtype=float), out.solve_s)

    def redispatch(self, args: argparse.Namespace, day: ScenarioRun) -> Any:
        """The same draw of events as embedded (from the aggregator's book, in its order), re-dispatched by the
        DSO service with its aggregator (``DsoService.Redispatch``)."""
        from orchestrator.studies.redispatch import Redispatch, pick_events

        assert self.booked is not None
        t = int(args.redispatch_hour / day.inputs.dt_h)
        no_show, late = pick_events(self.booked(), t, args.no_show_share, args.late_share, args.late_h,
                                    day.inputs.dt_h, day.inputs.n_periods, seed=args.seed)
        out = self.client.redispatch(t, no_show, late)
        return Redispatch(run=self._run("redispatch", out), t_from=t, no_show=tuple(no_show), late=dict(late),
                          late_shortfall_kwh=out.late_shortfall_kwh, objective=out.objective,
                          day_ahead_objective=out.day_ahead_objective, fleet=(), schedules=None)


@contextmanager
def _dispatcher(args: argparse.Namespace, spec: Any, fid: str) -> Iterator[Any]:
    """Embedded by default; with ``--services FILE`` the running operators, with ``--local-services`` operators
    started here as processes (``LocalDeployment``, mTLS unless ``--insecure``) and stopped at the end."""
    if not (args.services or args.local_services):
        yield _Embedded(spec, ac=not args.no_ac_check)
        return
    from core.case import aggregator_id
    from core.peers import load_services, require
    from core.tls import TlsIdentity
    from orchestrator.system.dso_alone import DsoAloneClient, list_reservations

    with ExitStack() as stack:
        if args.local_services:
            from orchestrator.cli.launch import LocalDeployment

            dep = LocalDeployment(args.case, Path(args.out) / "operators", ac_check=not args.no_ac_check,
                                  insecure=args.insecure)
            stack.callback(dep.stop)
            dep.start(only=(aggregator_id(fid), fid))  # the feeder's DSO and its aggregator: no TSO here
            services, tls = dep.services, dep.client_tls
        else:
            services = load_services(args.services)
            tls = TlsIdentity(args.tls_dir, "orchestrator") if args.tls_dir else None
        client = DsoAloneClient(fid, require(services, fid), tls)
        stack.callback(client.close)
        agg = aggregator_id(fid)
        yield _Services(client, spec.dt_h, lambda: list_reservations(agg, require(services, agg), tls))


def _redispatch_scenario(args: argparse.Namespace, feeder: Any, day: ScenarioRun) -> Any:
    from orchestrator.studies.redispatch import pick_events, redispatch

    t = int(args.redispatch_hour / day.inputs.dt_h)
    no_show, late = pick_events(feeder.fleet, t, args.no_show_share, args.late_share, args.late_h,
                                day.inputs.dt_h, day.inputs.n_periods, seed=args.seed)
    return redispatch(feeder, day, t, no_show, late, ac=not args.no_ac_check)


def _redispatch_metrics(r: Any, day: dict[str, Any]) -> dict[str, Any]:
    """What the re-dispatch changed against the day-ahead ``ev_pq`` dispatch (``day``: its metrics)."""
    m = scenario_metrics(r.run)
    return {"redispatch_period": r.t_from, "n_no_show": len(r.no_show), "n_late": len(r.late),
            "late_shortfall_kwh": r.late_shortfall_kwh,
            "loss_change_vs_ev_pq": _rel(m["loss_mwh"], day["loss_mwh"]),
            "loss_delta_mwh": m["loss_mwh"] - day["loss_mwh"],
            "objective_day_ahead": r.day_ahead_objective, "objective_redispatch": r.objective,
            "objective_change_vs_ev_pq": _rel(r.objective, r.day_ahead_objective),
            "ev_energy_delta_mwh": m["ev_energy_mwh"] - day["ev_energy_mwh"],
            "local_cost_delta_usd": float(sum(r.run.dispatch.cost_usd.values()) - day["local_cost_usd"])}


def _plot_equivalent_load(path: Path, runs: dict[str, ScenarioRun]) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    for name, sr in runs.items():
        p = np.asarray(sr.report.p_import_mw)
        ax.step(np.arange(p.size) * sr.inputs.dt_h, p, where="post", label=name)
    ax.set_xlabel("hour")
    ax.set_ylabel("substation import (equivalent load) [MW]")
    ax.set_title("equivalent load curve per scenario")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_voltages(path: Path, runs: dict[str, ScenarioRun]) -> Path:
    plt = _plt()
    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 4), sharey=True)
    for ax, (name, sr) in zip(np.atleast_1d(axes), runs.items(), strict=True):
        v = np.asarray(sr.report.v_pu)
        nodes = np.arange(1, v.shape[0] + 1)
        for t in range(v.shape[1]):
            ax.plot(nodes, v[:, t], color=plt.cm.viridis(t / max(v.shape[1] - 1, 1)), lw=0.8)
        for lim in (0.95, 0.97, 1.03, 1.05):
            ax.axhline(lim, color="0.6", lw=0.6, ls="--" if lim in (0.97, 1.03) else ":")
        ax.set_title(f"{name}: V at all nodes, every hour")
        ax.set_xlabel("node")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("voltage [p.u.] (colour: hour 0 -> 23)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_station_pq(path: Path, runs: dict[str, ScenarioRun], station_ids: list[str]) -> Path:
    plt = _plt()
    shown = [n for n in ("ev_p", "ev_pq", "redispatch") if n in runs]
    fig, axes = plt.subplots(1, len(shown), figsize=(6 * len(shown), 4), sharey=True)
    for ax, name in zip(np.atleast_1d(axes), shown, strict=True):
        d = runs[name].dispatch
        hours = np.arange(d.ev_station_p_mw.shape[1]) * runs[name].inputs.dt_h
        for s, sid in enumerate(station_ids):
            if s < d.ev_station_p_mw.shape[0]:
                line = ax.step(hours, d.ev_station_p_mw[s], where="post", label=f"{sid} P [MW]")
                if d.ev_station_q_mvar.size:
                    ax.step(hours, d.ev_station_q_mvar[s], where="post", ls="--", color=line[0].get_color(),
                            label=f"{sid} Q [MVAr]")
        ax.axhline(0.0, color="0.5", lw=0.6)
        ax.set_title(f"{name}: EV P (charging > 0) and Q (absorbing > 0) per station")
        ax.set_xlabel("hour")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    np.atleast_1d(axes)[0].set_ylabel("MW / MVAr")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
