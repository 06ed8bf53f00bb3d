"""``gridcoord`` command line: run, serve, operators, cases, compare, bench, aggregate."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

DEFAULT_CASE = "ieee30-3x33"
DEFAULT_STRATEGY = "centralized"
DISTRIBUTED = ("csso", "admm", "dual")


class UsageError(ValueError):
    """Bad command-line input (a missing directory, an unreadable summary)."""


def _cmd_run(args: argparse.Namespace) -> int:
    from orchestrator.results import format_summary, publish_run, summarize, write_run
    from orchestrator.strategies import RunOptions, get_strategy

    strategy = get_strategy(args.strategy)
    options = RunOptions(solver=args.solver, ray_address=args.ray_address, services_file=args.services,
                         extra={"executor": args.executor})
    t0 = time.perf_counter()
    if args.services:  # client mode: operators run as services; this process holds no private data
        import uuid

        from orchestrator.case import load_case
        from orchestrator.remote import RemoteSystem, load_services

        if strategy.name not in DISTRIBUTED:
            raise UsageError(f"--services: strategy {strategy.name!r} needs every operator's private data in one "
                             f"process; with services use one of {', '.join(DISTRIBUTED)}")
        spec = load_case(args.case)
        system: object = RemoteSystem(spec, load_services(args.services), f"run-{uuid.uuid4().hex[:12]}")
    else:
        from orchestrator.system import build_system

        system = build_system(args.case)
        spec = system.spec  # type: ignore[attr-defined]
    build_s = time.perf_counter() - t0
    result = strategy.run(system, options)  # type: ignore[arg-type]
    where = system if not args.services else spec
    published = publish_run(where, result, ac=not args.no_ac_check)  # type: ignore[arg-type]
    summary = summarize(where, result, published=published)  # type: ignore[arg-type]
    summary["build_s"] = build_s
    summary["mode"] = "services" if args.services else "embedded"
    out = Path(args.out or f"runs/{spec.name}-{strategy.name}")
    written = write_run(out, where, result, summary, published)  # type: ignore[arg-type]
    print(format_summary(summary))
    print(f"wrote {len(written)} files under {out}/ (summary.json, timeseries/, plots)")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from orchestrator.serve import ServeOptions, serve_forever

    return serve_forever(ServeOptions(case=args.case, role=args.role, operator_id=args.id, port=args.port,
                                      host=args.host, services_file=args.services, reflection=args.reflection,
                                      ac_check=not args.no_ac_check, solver=args.solver))


def _cmd_operators(args: argparse.Namespace) -> int:
    from orchestrator.case import load_case
    from orchestrator.serve import operators

    for role, oid in operators(load_case(args.case)):
        print(role, oid)
    return 0


def _cmd_cases(args: argparse.Namespace) -> int:
    from orchestrator.case import describe, list_cases, load_case

    for name in list_cases():
        if name == "ieee118-NNx33":
            print("ieee118-NNx33: case118 + NN feeders (NN = 1..64, generated: e.g. ieee118-16x33) — scale study")
        else:
            print(describe(load_case(name)))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from orchestrator.compare import compare_runs

    table = compare_runs([Path(d) for d in args.dirs])
    print(table)
    if args.md:
        Path(args.md).write_text(table + "\n")
        print(f"wrote {args.md}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.scale:
        from orchestrator.bench import bench_scale

        print(bench_scale(tuple(int(x) for x in args.feeders.split(",")), executor=args.executor, out=args.out))
        return 0
    if args.services:
        from orchestrator.bench import bench_services

        print(bench_services(args.case, strategy=args.strategy, repeat=args.repeat, executor=args.executor,
                             solver=args.solver))
        return 0
    if args.strategies:
        from orchestrator.csso.bench import bench_strategies

        print(bench_strategies(args.case, solver=args.solver))
        return 0
    from orchestrator.bench import bench_foundation

    print(bench_foundation(args.case, repeat=args.repeat, solver=args.solver))
    return 0


def _cmd_aggregate(args: argparse.Namespace) -> int:
    from orchestrator.aggregate_cmd import run_aggregate

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
    run.add_argument("--strategy", default=DEFAULT_STRATEGY, help="isolated | centralized | csso | admm | dual")
    run.add_argument("--out", default=None, help="output directory (default runs/CASE-STRATEGY)")
    run.add_argument("--services", default=None, help="YAML mapping operator id -> host:port")
    run.add_argument("--ray-address", default=None, help="existing Ray cluster address")
    run.add_argument("--solver", default="CLARABEL")
    run.add_argument("--executor", default="ray", choices=("ray", "serial"),
                     help="where the subspaces of csso/admm/dual run: Ray actors (default) or in this process")
    run.add_argument("--no-ac-check", action="store_true", help="skip the pandapower AC validation")
    run.set_defaults(func=_cmd_run)

    serve = sub.add_parser("serve", help="run one operator as its own gRPC service")
    serve.add_argument("role", choices=("tso", "dso", "aggregator"))
    serve.add_argument("--case", default=DEFAULT_CASE)
    serve.add_argument("--id", required=True, help="operator id (see `gridcoord operators`)")
    serve.add_argument("--port", type=int, required=True, help="TCP port (0 = any free port)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    serve.add_argument("--services", default=None, help="YAML mapping operator id -> host:port (peers)")
    serve.add_argument("--reflection", action="store_true", help="enable gRPC server reflection (off by default)")
    serve.add_argument("--no-ac-check", action="store_true", help="DSO: skip the AC check in its report")
    serve.add_argument("--solver", default="CLARABEL")
    serve.set_defaults(func=_cmd_serve)

    ops = sub.add_parser("operators", help="print `ROLE ID` for every operator of a case")
    ops.add_argument("--case", default=DEFAULT_CASE)
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
                       help="centralized, isolated, csso, admm, dual in one run: one comparison table")
    bench.add_argument("--services", action="store_true",
                       help="a strategy embedded vs against operator services on loopback (wall time, objective)")
    bench.add_argument("--strategy", default="csso", help="with --services: csso | admm | dual")
    bench.add_argument("--executor", default="ray", help="with --services: ray | serial")
    bench.add_argument("--scale", action="store_true",
                       help="ieee118-NNx33 for several NN: centralized and csso, rounds, wall, memory, gap")
    bench.add_argument("--feeders", default="4,16,32", help="with --scale: comma-separated NN values")
    bench.add_argument("--out", default="runs/scale", help="with --scale: where runs, scale.json and scale.png go")
    bench.set_defaults(func=_cmd_bench)

    agg = sub.add_parser("aggregate", help="aggregate a synthetic EV fleet, dispatch and disaggregate it")
    agg.add_argument("--evs", type=int, default=500, help="number of EVs")
    agg.add_argument("--seed", type=int, default=1)
    agg.add_argument("--out", default="runs/aggregate", help="output directory")
    agg.set_defaults(func=_cmd_aggregate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from orchestrator.errors import exit_code_for

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
