"""``gridcoord`` command line: run, serve, operators, cases, compare, bench, study, plan, aggregate."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the commands import what they need when they run (a fast ``--help``)
    from orchestrator.runtime.checkpoint import Checkpoint
    from orchestrator.system import CoordinatedSystem

DEFAULT_CASE = "ieee30-3x33"
DEFAULT_STRATEGY = "centralized"
DISTRIBUTED = ("csso", "admm", "gradient", "dual")


class UsageError(ValueError):
    """Bad command-line input (a missing directory, an unreadable summary)."""


#: what ``run --resume DIR`` takes from the checkpoint: flag -> argparse dest (giving one that disagrees is refused)
RESUME_FROM_CHECKPOINT = {"--case": "case", "--strategy": "strategy", "--out": "out", "--services": "services",
                          "--executor": "executor", "--solver": "solver", "--no-ac-check": "no_ac_check",
                          "--tls-dir": "tls_dir", "--insecure": "insecure", "--max-rounds": "max_rounds"}


def _given(argv: Sequence[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in argv)


def _same(dest: str, a: object, b: object) -> bool:
    if dest == "case" and a is not None and Path(str(a)).is_file():  # a case file: compare the files
        return b is not None and Path(str(a)).resolve() == Path(str(b)).resolve()
    if dest in ("out", "services", "tls_dir") and a is not None and b is not None:
        return Path(str(a)).resolve() == Path(str(b)).resolve()
    return a == b


def _apply_resume(args: argparse.Namespace) -> Checkpoint:
    """``--resume DIR``: the run's setup from ``DIR/checkpoint.sqlite`` into ``args``; returns the checkpoint."""
    from orchestrator.runtime.checkpoint import Checkpoint

    ck = Checkpoint.open(args.resume)
    meta = ck.meta
    if meta.get("privacy"):
        raise UsageError(f"--resume {args.resume}: a --privacy dp run cannot be resumed (the DSOs would draw their "
                         "noise and spend their budget again); start a new run")
    saved = {"case": meta["case"], "strategy": meta["strategy"], "out": str(args.resume),
             "services": meta.get("services_file"), "executor": meta["executor"],
             "solver": meta.get("solver", "CLARABEL"), "no_ac_check": bool(meta.get("no_ac_check", False)),
             "tls_dir": meta.get("tls_dir"), "insecure": bool(meta.get("insecure", False)),
             "max_rounds": meta.get("max_rounds")}
    for flag, dest in RESUME_FROM_CHECKPOINT.items():
        if _given(args.argv, flag) and not _same(dest, getattr(args, dest, None), saved[dest]):
            raise UsageError(f"--resume {args.resume}: {flag} {getattr(args, dest, None)!r} conflicts with the run's "
                             f"checkpoint ({saved[dest]!r} in {ck.path}); leave {flag} out")
        setattr(args, dest, saved[dest])
    if not _given(args.argv, "--operator-timeout"):
        args.operator_timeout = float(meta.get("operator_timeout_s", args.operator_timeout))
    if not _given(args.argv, "--ray-address"):
        args.ray_address = meta.get("ray_address")
    return ck


def _cmd_run(args: argparse.Namespace) -> int:
    import uuid

    from core.case import load_case
    from orchestrator.cli.errors import EXIT_OPERATOR_FAILED, exit_code_for
    from orchestrator.results.run import format_summary, summarize, write_run
    from orchestrator.runtime.checkpoint import Checkpoint
    from orchestrator.strategies import RunOptions, get_strategy

    checkpoint: Checkpoint | None = None
    run_id = f"run-{uuid.uuid4().hex[:12]}"
    if args.resume:
        checkpoint = _apply_resume(args)
        if checkpoint.finished:
            print(f"run in {args.resume}/ is already complete ({checkpoint.n_rounds()} rounds in {checkpoint.path}); "
                  f"nothing to resume")
            return 0
        resumes = int(checkpoint.meta.get("resumes", 0)) + 1
        checkpoint.set_meta(resumes=resumes)
        # a new run id for the live part: the services' ledgers hold the old id's exchange numbers
        run_id = f"{checkpoint.meta['run_id']}-r{resumes}"
    if not args.operator_timeout > 0:  # also refuses NaN
        raise UsageError(f"--operator-timeout {args.operator_timeout}: must be > 0 seconds")
    strategy = get_strategy(args.strategy)
    options = RunOptions(solver=args.solver, ray_address=args.ray_address, services_file=args.services,
                         ac_check=not args.no_ac_check,
                         extra={"executor": args.executor, "csso_surrogate": args.surrogate})
    if args.repropose:
        if strategy.name != "csso":
            raise UsageError(f"--repropose: a csso option, not for --strategy {strategy.name}")
        options.extra["csso_repropose"] = True
    if args.ray_actors is not None:
        if args.ray_actors < 1 or args.executor != "ray":
            raise UsageError(f"--ray-actors {args.ray_actors}: a number >= 1, with --executor ray only")
        options.extra["ray_actors"] = args.ray_actors
    if args.max_rounds is not None:
        if strategy.private_data or args.max_rounds < 1:
            raise UsageError(f"--max-rounds {args.max_rounds}: a number >= 1, for {', '.join(DISTRIBUTED)} only")
        options.extra[f"{strategy.name}_max_rounds"] = args.max_rounds
    privacy = _privacy(args, args.max_rounds or args.dp_rounds or DP_DEFAULT_ROUNDS)
    if privacy is not None:
        if strategy.private_data:
            raise UsageError(f"--privacy dp: for {', '.join(DISTRIBUTED)} (strategy {strategy.name!r} shares the "
                             "DSOs' private data in one process)")
        # the budget is split over a fixed number of rounds: the strategy stops there
        options.extra[f"{strategy.name}_max_rounds"] = privacy.releases - 1
        options.extra["privacy"] = privacy
    t0 = time.perf_counter()
    if not args.services and (args.tls_dir or args.insecure):
        raise UsageError("--tls-dir/--insecure apply to client mode only (with --services FILE)")
    system: CoordinatedSystem
    if args.services:  # client mode: operators run as services; this process holds no private data
        from core.peers import load_services
        from core.tls import TlsIdentity
        from orchestrator.system.services import ServicesSystem

        if strategy.private_data:
            raise UsageError(f"--services: strategy {strategy.name!r} needs every operator's private data in one "
                             f"process; with services use one of {', '.join(DISTRIBUTED)}")
        if bool(args.tls_dir) == bool(args.insecure):
            raise UsageError("--services: give --tls-dir DIR (mTLS as 'orchestrator', certificates from `gridcoord "
                             "certs`) or --insecure (plaintext, local development only), not both or neither")
        tls = TlsIdentity(args.tls_dir, "orchestrator") if args.tls_dir else None
        system = ServicesSystem(load_case(args.case), load_services(args.services), run_id, tls=tls,
                                insecure=args.insecure, operator_timeout_s=args.operator_timeout,
                                resumed=checkpoint is not None, privacy=privacy)
        system.check_reachable()  # before Ray starts or OUT is written: a dead address is one error in seconds
    else:
        from orchestrator.system.embedded import build_system

        system = build_system(args.case)
        if privacy is not None:
            import dataclasses

            system = dataclasses.replace(system, privacy=privacy)
    spec = system.spec
    build_s = time.perf_counter() - t0
    out = Path(args.out or f"runs/{spec.name}-{strategy.name}")
    if not strategy.private_data:  # every round is committed to OUT/checkpoint.sqlite (--resume OUT)
        if checkpoint is None:
            checkpoint = Checkpoint.create(out, {
                # a case file by its absolute path, so that --resume works from any directory
                "case": str(Path(args.case).resolve()) if Path(args.case).is_file() else args.case,
                "strategy": strategy.name, "executor": args.executor, "solver": args.solver,
                "services_file": str(Path(args.services).resolve()) if args.services else None,
                "tls_dir": str(Path(args.tls_dir).resolve()) if getattr(args, "tls_dir", None) else None,
                "insecure": bool(getattr(args, "insecure", False)), "no_ac_check": bool(args.no_ac_check),
                "operator_timeout_s": args.operator_timeout, "ray_address": args.ray_address, "run_id": run_id,
                "max_rounds": args.max_rounds,
                "privacy": None if privacy is None else {"epsilon": privacy.epsilon, "delta": privacy.delta}})
        options.extra["checkpoint"] = checkpoint
    try:
        result = strategy.run(system, options)
    except Exception as exc:
        if checkpoint is not None and checkpoint.written and exit_code_for(exc) == EXIT_OPERATOR_FAILED:
            exc.args = (f"{exc}; checkpoint kept ({checkpoint.n_rounds()} rounds in {checkpoint.path}), "
                        f"resume with: gridcoord run --resume {out}",)
        raise
    summary = summarize(spec, result)
    summary["build_s"] = build_s
    summary["mode"] = system.mode
    written = write_run(out, spec, result, summary)
    if checkpoint is not None:
        checkpoint.set_meta(finished=True, finished_unix=time.time())
        checkpoint.close()
    print(format_summary(summary))
    print(f"wrote {len(written)} files under {out}/ (summary.json, timeseries/, plots)")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from orchestrator.cli.serve import TRANSPORT_CASE, ServeOptions, serve_forever

    case = args.case or (TRANSPORT_CASE if args.role == "tno" else DEFAULT_CASE)
    return serve_forever(ServeOptions(case=case, role=args.role, operator_id=args.id, port=args.port,
                                      host=args.host, services_file=args.services, reflection=args.reflection,
                                      ac_check=not args.no_ac_check, solver=args.solver, tls_dir=args.tls_dir,
                                      insecure=args.insecure, security_log=args.security_log,
                                      state_dir=args.state_dir, workers=args.workers,
                                      privacy=_privacy(args), book_open_minutes=args.book_open_minutes,
                                      book_closes_at=_instant("--book-closes-at", args.book_closes_at)))


def _instant(flag: str, text: str | None) -> float | None:
    """An ISO 8601 date and time with its UTC offset (``2026-12-05T14:00:00Z``) as Unix seconds."""
    if text is None:
        return None
    import datetime as _dt

    try:
        when = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag} {text!r}: not an ISO 8601 date and time (e.g. 2026-12-05T14:00:00Z)") from None
    if when.tzinfo is None:
        raise UsageError(f"{flag} {text!r}: give the UTC offset (e.g. 2026-12-05T14:00:00Z or +01:00)")
    return when.timestamp()


#: rounds of a DP run when --max-rounds is not given (the budget is split over them)
DP_DEFAULT_ROUNDS = 20


def _privacy(args: argparse.Namespace, rounds: int | None = None) -> Any:
    """``--privacy dp --epsilon E --delta D``: the DSOs' Gaussian mechanism, planned for ``rounds`` rounds
    (forecast + start evaluation + one reply per later round = rounds + 1 releases); None for ``--privacy none``."""
    if getattr(args, "privacy", "none") == "none":
        for flag in ("epsilon", "dp_alpha_mw"):
            if getattr(args, flag, None) is not None:
                raise UsageError(f"--{flag.replace('_', '-')} needs --privacy dp")
        return None
    from core.privacy import PrivacyConfig

    if args.epsilon is None:
        raise UsageError("--privacy dp: give --epsilon E (the run's total, > 0)")
    rounds = rounds if rounds is not None else (args.dp_rounds or DP_DEFAULT_ROUNDS)
    try:
        return PrivacyConfig(epsilon=args.epsilon, delta=args.delta, releases=rounds + 1, alpha_mw=args.dp_alpha_mw,
                             seed=args.dp_seed)
    except ValueError as exc:
        raise UsageError(f"--privacy dp: {exc}") from None


def add_privacy_flags(p: argparse.ArgumentParser, dp_rounds: bool = True) -> None:
    """The DP flags of ``run`` and ``serve`` (and ``deploy/local.py``, which passes them to both; there the
    budget's rounds come from ``--max-rounds``, so without ``dp_rounds``)."""
    p.add_argument("--privacy", default="none", choices=("none", "dp"),
                   help="dp: every DSO sends its coordination replies through the Gaussian mechanism")
    p.add_argument("--epsilon", type=float, default=None, help="with --privacy dp: total epsilon of the run")
    p.add_argument("--delta", type=float, default=1e-5, help="with --privacy dp: delta (default 1e-5)")
    p.add_argument("--dp-alpha-mw", type=float, default=None,
                   help="with --privacy dp: adjacency, MW of one period's net load (default: the peak of the "
                        "feeder's smallest loaded node)")
    p.add_argument("--dp-seed", type=int, default=0, help="with --privacy dp: seed of the DSOs' noise")
    if dp_rounds:
        p.add_argument("--dp-rounds", type=int, default=None,
                       help=f"serve dso: rounds the budget is planned for (run: --max-rounds; default "
                            f"{DP_DEFAULT_ROUNDS})")


def _cmd_certs(args: argparse.Namespace) -> int:
    from orchestrator.cli.certs import create_trial

    written = create_trial(args.case, args.out, days=args.days, clients=args.clients, force=args.force)
    keys = sum(1 for p in written if p.suffix == ".key")
    print(f"wrote a trial CA and {keys - 1} key pairs ({len(written)} files) under {args.out}/; keys are 0600 — "
          f"give each operator only ca.pem and its own ID.pem/ID.key, keep ca.key offline")
    return 0


def _cmd_operators(args: argparse.Namespace) -> int:
    from orchestrator.cli.serve import case_operators

    for role, oid in case_operators(args.case):
        print(role, oid)
    return 0


def _cmd_cases(args: argparse.Namespace) -> int:
    from core.case import describe, list_cases, load_case
    from dso.planning.case import PLAN_CASES, describe_plan_case

    for name in list_cases():
        if name == "ieee118-NNx33":
            print("ieee118-NNx33: case118 + NN feeders (NN = 1..64, generated: e.g. ieee118-16x33) — scale study")
        elif name in PLAN_CASES:
            print(describe_plan_case(name))
        else:
            print(describe(load_case(name)))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from orchestrator.results.compare import compare_runs

    table = compare_runs([Path(d) for d in args.dirs])
    print(table)
    if args.md:
        Path(args.md).write_text(table + "\n")
        print(f"wrote {args.md}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.soak is not None:
        from orchestrator.bench.soak import soak

        text, ok = soak(args.soak, out=args.soak_out)
        print(text)
        return 0 if ok else 4
    if args.reservations:
        from orchestrator.bench.reservations import bench_reservations

        report = bench_reservations(args.case, clients=args.clients, count=args.count, seed=args.seed,
                                    stations=args.stations, deadline_s=args.deadline_s,
                                    workdir=Path(args.out) if args.out else None)
        print(report.format())
        if args.out:
            print(f"wrote {report.write_json(Path(args.out) / 'reservations.json')}")
        return 0 if report.ok() else 4
    if args.scale:
        from orchestrator.bench.runs import bench_scale

        strategies = tuple(s.strip() for s in args.scale_strategies.split(",") if s.strip())
        unknown = [s for s in strategies if s not in ("centralized", "csso", "admm", "dual", "isolated")]
        if unknown or "centralized" not in strategies:
            what = f"; unknown: {', '.join(unknown)}" if unknown else ""
            raise UsageError(f"--scale-strategies {args.scale_strategies!r}: give centralized (the reference for "
                             f"the gap) plus any of csso, admm, dual, isolated{what}")
        print(bench_scale(tuple(int(x) for x in args.feeders.split(",")), strategies=strategies,
                          executor=args.executor, out=args.out or "runs/scale"))
        return 0
    if args.services:
        from orchestrator.bench.runs import bench_services

        print(bench_services(args.case, strategy=args.strategy, repeat=args.repeat, executor=args.executor,
                             solver=args.solver))
        return 0
    if args.feeder:
        from orchestrator.bench.feeders import bench_feeder

        print(bench_feeder(args.feeder, out=args.out))
        return 0
    if args.strategies:
        from orchestrator.bench.strategies import bench_strategies

        print(bench_strategies(args.case, solver=args.solver, executor=args.executor))
        return 0
    from orchestrator.bench.runs import bench_foundation

    print(bench_foundation(args.case, repeat=args.repeat, solver=args.solver))
    return 0


def _study_module(registry: dict[str, str], name: str, what: str) -> Any:
    import importlib

    if name not in registry:
        raise UsageError(f"{what} {name!r} is unknown (known: {', '.join(sorted(registry)) or 'none'})")
    return importlib.import_module(registry[name])


def _cmd_study(args: argparse.Namespace) -> int:
    from orchestrator.studies.contract import write_study

    result = args.study_module.run(args)
    written = write_study(args.out, result, result.plots)
    print(Path(args.out, "table.md").read_text())
    print(f"wrote {len(written)} files under {args.out}/ (study.json, table.md, plots, one run directory per scenario)")
    return 0


def _cmd_aggregate(args: argparse.Namespace) -> int:
    from orchestrator.cli.aggregate import run_aggregate

    s = run_aggregate(args.evs, args.seed, args.out)
    print(f"{s['n_evs']} EVs: aggregate {s['aggregate_s']:.3f} s, disaggregate {s['disaggregate_s']:.3f} s, "
          f"unmet {s['ev_unmet_kwh']:.3g} kWh, flexibility captured inner {s['flexibility_captured_inner']:.3f} "
          f"outer {s['flexibility_captured_outer']:.3f}; wrote {args.out}/")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gridcoord", description="TSO-DSO-EV aggregator coordination")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="coordinate a case with a strategy and write the results")
    run.add_argument("--case", default=DEFAULT_CASE, help="bundled case name or path to a case YAML")
    run.add_argument("--strategy", default=DEFAULT_STRATEGY,
                     help="isolated | centralized | csso | admm | gradient | dual")
    run.add_argument("--surrogate", default="relu", choices=("relu", "linear"),
                     help="csso: the TSO's response surfaces as ReLU networks (default) or first-order only")
    run.add_argument("--repropose", action="store_true",
                     help="csso: ask the DSOs for proposals in every round, also in merge rounds (the earlier loop; "
                          "for comparison)")
    run.add_argument("--out", default=None, help="output directory (default runs/CASE-STRATEGY)")
    run.add_argument("--services", default=None, help="YAML mapping operator id -> host:port")
    run.add_argument("--ray-address", default=None, help="existing Ray cluster address")
    run.add_argument("--solver", default="CLARABEL")
    run.add_argument("--executor", default="ray", choices=("ray", "serial"),
                     help="where the subspaces of csso/admm/gradient/dual run: Ray actors (default) or in this process")
    run.add_argument("--ray-actors", type=int, default=None, metavar="N",
                     help="Ray actors hosting the subspaces that are not pinned to a node (default: two per CPU of "
                          "the cluster, at most one per subspace; with --services one per operator)")
    run.add_argument("--no-ac-check", action="store_true", help="skip the pandapower AC validation")
    run.add_argument("--tls-dir", default=None,
                     help="with --services: mTLS as 'orchestrator' (DIR/ca.pem, DIR/orchestrator.pem|.key)")
    run.add_argument("--insecure", action="store_true", help="with --services: plaintext gRPC (local development)")
    run.add_argument("--max-rounds", type=int, default=None, metavar="N",
                     help="csso/admm/gradient/dual: stop after N coordination rounds (default: the strategy's own "
                          "limit)")
    run.add_argument("--resume", default=None, metavar="DIR",
                     help="finish the run in DIR from its checkpoint.sqlite (csso/admm/gradient/dual write one every "
                          "round); "
                          "case, strategy, services and executor come from the checkpoint")
    run.add_argument("--operator-timeout", type=float, default=120.0, metavar="S",
                     help="with --services: how long [s] to wait for an operator that died to come back "
                          "before the run stops (exit 4, checkpoint kept); default 120")
    add_privacy_flags(run)
    run.set_defaults(func=_cmd_run)

    serve = sub.add_parser("serve", help="run one operator as its own gRPC service")
    serve.add_argument("role", choices=("tso", "dso", "aggregator", "tno"))
    serve.add_argument("--case", default=None, help=f"grid case (default {DEFAULT_CASE}); tno: nguyen-dupuis-ieee33")
    serve.add_argument("--id", required=True, help="operator id (see `gridcoord operators`)")
    serve.add_argument("--port", type=int, required=True, help="TCP port (0 = any free port)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    serve.add_argument("--services", default=None, help="YAML mapping operator id -> host:port (peers)")
    serve.add_argument("--reflection", action="store_true", help="enable gRPC server reflection (off by default)")
    serve.add_argument("--workers", type=int, default=8,
                       help="aggregator: gRPC worker threads (default 8; the reservations benchmark runs 2)")
    serve.add_argument("--no-ac-check", action="store_true", help="DSO: skip the AC check in its report")
    serve.add_argument("--solver", default="CLARABEL")
    serve.add_argument("--tls-dir", default=None,
                       help="mTLS: DIR/ca.pem and DIR/ID.pem|.key (from `gridcoord certs`); clients need certificates")
    serve.add_argument("--insecure", action="store_true",
                       help="plaintext gRPC, no authentication or authorization (local development only)")
    serve.add_argument("--security-log", default=None,
                       help="JSON-lines log of refused calls (default: security-ID.jsonl in the working directory)")
    serve.add_argument("--state-dir", default=None,
                       help="aggregator: keep the reservation book in DIR/ID.reservations.sqlite, so a restarted "
                            "service holds every reservation it confirmed")
    serve.add_argument("--book-open-minutes", type=float, default=0.0,
                       help="DSO: keep its aggregator's reservations open M minutes after the tariff is published, "
                            "then take the envelopes (closing the book) and build (NOT_SERVING until then; "
                            "default 0: at once)")
    serve.add_argument("--book-closes-at", default=None, metavar="ISO_TIME",
                       help="DSO: the same, until this date and time with its UTC offset (2026-12-05T14:00:00Z); "
                            "a DSO restarted after it takes the envelopes at once")
    add_privacy_flags(serve)
    serve.set_defaults(func=_cmd_serve)

    certs = sub.add_parser("certs", help="create a trial CA and a key + certificate per operator and orchestrator")
    certs.add_argument("--case", default=DEFAULT_CASE,
                       help="grid case, or nguyen-dupuis-ieee33 (the TNO's transport case: tno + orchestrator)")
    certs.add_argument("--out", required=True, help="directory for ca.pem, ca.key, ID.pem, ID.key (new or empty)")
    certs.add_argument("--days", type=int, default=365, help="validity of every certificate [days]")
    certs.add_argument("--clients", type=int, default=0,
                       help="also issue N EV-booking client certificates client-1..client-N (Reserve only)")
    certs.add_argument("--force", action="store_true", help="overwrite files in a non-empty --out")
    certs.set_defaults(func=_cmd_certs)

    ops = sub.add_parser("operators", help="print `ROLE ID` for every operator of a case")
    ops.add_argument("--case", default=DEFAULT_CASE, help="grid case, or nguyen-dupuis-ieee33 (prints `tno tno`)")
    ops.set_defaults(func=_cmd_operators)

    cases = sub.add_parser("cases", help="list the bundled cases")
    cases.set_defaults(func=_cmd_cases)

    cmp_ = sub.add_parser("compare", help="side-by-side table of run summaries")
    cmp_.add_argument("dirs", nargs="+", help="run directories (each with summary.json)")
    cmp_.add_argument("--md", default="comparison.md", help="also write the table as Markdown here ('' = no)")
    cmp_.set_defaults(func=_cmd_compare)

    bench = sub.add_parser("bench", help="benchmarks that print comparable figures")
    bench.add_argument("--case", default=DEFAULT_CASE)
    bench.add_argument("--repeat", type=int, default=5)
    bench.add_argument("--solver", default="CLARABEL")
    bench.add_argument("--strategies", action="store_true",
                       help="centralized, isolated, csso-relu, csso-linear, admm, gradient, dual from the same start "
                            "in one run: one comparison table")
    bench.add_argument("--services", action="store_true",
                       help="a strategy embedded vs against operator services on loopback (wall time, objective)")
    bench.add_argument("--strategy", default="csso", help="with --services: csso | admm | gradient | dual")
    bench.add_argument("--executor", default="ray", help="with --services, --strategies, --scale: ray | serial")
    bench.add_argument("--scale", action="store_true",
                       help="ieee118-NNx33 for several NN: centralized and csso, rounds, wall, memory, gap")
    bench.add_argument("--feeders", default="4,16,32", help="with --scale: comma-separated NN values")
    bench.add_argument("--scale-strategies", default="centralized,csso",
                       help="with --scale: comma-separated strategies (centralized first; e.g. centralized,csso,admm)")
    bench.add_argument("--out", default=None, help="with --scale: where runs, scale.json and scale.png go (default "
                       "runs/scale); with --reservations: DIR/reservations.json; with --feeder: "
                       "DIR/feeder_validation.json")
    bench.add_argument("--feeder", default=None, metavar="NAME|FILE",
                       help="validate a feeder's DistFlow model: ieee123 (also against OpenDSS), case33bw, or a "
                            "pandapower .json / MATPOWER .m file; DistFlow vs pandapower AC at the base loads")
    bench.add_argument("--reservations", action="store_true",
                       help="load a `gridcoord serve aggregator` process with concurrent reservations; verify none is "
                            "lost, duplicated or unscheduled; latency percentiles and throughput")
    bench.add_argument("--clients", type=int, default=200, help="with --reservations: concurrent clients")
    bench.add_argument("--count", type=int, default=2000, help="with --reservations: reservations sent")
    bench.add_argument("--seed", type=int, default=1, help="with --reservations: seed of the reservations")
    bench.add_argument("--stations", type=int, default=0,
                       help="with --reservations: serve a generated city aggregator with this many stations (0: the "
                            "case's aggregator agg-dso1)")
    bench.add_argument("--deadline-s", type=float, default=2.0,
                       help="with --reservations: each request's deadline [s] (the server sheds what it cannot "
                            "decide in time with reason 'busy'; the client retries with backoff)")
    bench.add_argument("--soak", type=int, default=None, metavar="N",
                       help="run tests/test_fault_tolerance.py N times in a row (from a source checkout); prints the "
                            "count of passing runs")
    bench.add_argument("--soak-out", default=None, metavar="DIR", help="with --soak: also write DIR/soak.json")
    bench.set_defaults(func=_cmd_bench)

    from orchestrator.studies import PLANS, STUDIES

    for command, registry, help_text in (("study", STUDIES, "reproduce a paper's experiment on a bundled case"),
                                         ("plan", PLANS, "planning studies (e.g. storage siting and sizing)")):
        group = sub.add_parser(command, help=f"{help_text}: " + ", ".join(sorted(registry)))
        names = group.add_subparsers(dest="name", required=True)
        for name in sorted(registry):
            module = _study_module(registry, name, command)
            sp = names.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
            sp.add_argument("--out", default=f"runs/{command}-{name}", help="output directory (study.json, table.md, "
                                                                           "plots, one run directory per scenario)")
            module.add_arguments(sp)
            sp.set_defaults(func=_cmd_study, study_module=module)

    agg = sub.add_parser("aggregate", help="aggregate a synthetic EV fleet, dispatch and disaggregate it")
    agg.add_argument("--evs", type=int, default=500, help="number of EVs")
    agg.add_argument("--seed", type=int, default=1)
    agg.add_argument("--out", default="runs/aggregate", help="output directory")
    agg.set_defaults(func=_cmd_aggregate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # which flags were given (run --resume checks)
    from orchestrator.cli.errors import exit_code_for

    try:
        return int(args.func(args))
    except Exception as exc:  # noqa: BLE001 - mapped to a one-line message; unknown errors re-raised
        code = exit_code_for(exc)
        if code is None:
            raise
        print(f"gridcoord: error: {exc}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
