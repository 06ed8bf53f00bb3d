"""``gridcoord bench``: comparable figures measured in one process (medians of repeats).

Timings are taken after all imports, with ``time.perf_counter``; a re-solve changes only the
values of the cvxpy Parameters, so cvxpy reuses its compiled problem (DPP).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _median_s(fn: Callable[[], object], repeat: int) -> tuple[float, float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times)


def bench_foundation(case: str, repeat: int = 5, solver: str = "CLARABEL") -> str:
    """Centralized wall time, isolated wall time, and DSO re-solve time with a new price vector."""
    from core.case import with_ev_reach
    from dso.problem import DsoProblem
    from orchestrator.strategies import RunOptions, Strategy, get_strategy
    from orchestrator.system.embedded import build_system

    t0 = time.perf_counter()
    system = build_system(case)
    build_s = time.perf_counter() - t0
    options = RunOptions(solver=solver, progress=False)
    rows: list[tuple[str, tuple[float, float, float], str]] = []
    for name in ("centralized", "isolated"):
        strategy = get_strategy(name)

        def run_once(s: Strategy = strategy) -> object:
            return s.run(system, options)

        rows.append((f"{name} run (build + solve)", _median_s(run_once, repeat),
                     "target <= 3 s" if name == "centralized" else ""))
    temporal = build_system(with_ev_reach(system.spec, 1))
    rng = np.random.default_rng(0)
    base = np.full(system.n_periods, 40.0)
    for label, sys_ in (("spatial EVs", system), ("temporal-only EVs", temporal)):
        feeder = sys_.feeders[0]
        problem = DsoProblem(feeder.data, feeder.inputs, mode="price", solver=solver)
        t0 = time.perf_counter()
        problem.solve(price_usd_per_mwh=base)
        first_s = time.perf_counter() - t0
        rows.append((f"DSO {feeder.feeder_id} first solve, {label}", (first_s, first_s, first_s), "compiles"))

        def resolve(p: DsoProblem = problem) -> object:
            return p.solve(price_usd_per_mwh=base + rng.uniform(-15, 15, system.n_periods))

        rows.append((f"DSO {feeder.feeder_id} re-solve, new prices, {label}", _median_s(resolve, repeat),
                     f"target <= 0.15 s; {feeder.flex.n_envelopes} EV envelopes"))
    lines = [
        f"gridcoord bench — case {system.spec.name}, {repeat} repeats, solver {solver}, "
        f"case build {build_s:.2f} s (not counted below)",
        f"{'figure':<52} {'median s':>9} {'min s':>8} {'max s':>8}  note",
    ]
    for label, (med, lo, hi), note in rows:
        lines.append(f"{label:<52} {med:>9.3f} {lo:>8.3f} {hi:>8.3f}  {note}")
    return "\n".join(lines)


def bench_services(case: str, strategy: str = "csso", repeat: int = 2, executor: str = "ray",
                   solver: str = "CLARABEL") -> str:
    """The same strategy embedded and against operator services (one process each on loopback), in
    turns (embedded, services, embedded, ...), wall time of ``Strategy.run`` only (operators already
    SERVING, Ray started once). Prints both and the ratio of medians."""
    import tempfile
    from pathlib import Path

    from core.case import load_case
    from core.peers import load_services
    from orchestrator.cli.launch import LocalDeployment
    from orchestrator.results.run import summarize
    from orchestrator.runtime.executors import ensure_ray
    from orchestrator.strategies import RunOptions, get_strategy
    from orchestrator.system import CoordinatedSystem
    from orchestrator.system.embedded import build_system
    from orchestrator.system.services import ServicesSystem

    spec = load_case(case)
    system = build_system(spec)
    options = RunOptions(solver=solver, progress=False, ac_check=False, extra={"executor": executor})
    if executor == "ray":
        ensure_ray()
    times: dict[str, list[float]] = {"embedded": [], "services": []}
    objective: dict[str, float] = {}
    rounds: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp, LocalDeployment(case, Path(tmp), ac_check=False) as dep:
        remote = ServicesSystem(spec, load_services(dep.services_file), "bench", tls=dep.client_tls)
        for _ in range(repeat):
            targets: tuple[tuple[str, CoordinatedSystem], ...] = (("embedded", system), ("services", remote))
            for mode, target in targets:
                t0 = time.perf_counter()
                result = get_strategy(strategy).run(target, options)
                times[mode].append(time.perf_counter() - t0)
                objective[mode] = summarize(spec, result)["objective_usd"]
                rounds[mode] = result.traffic.rounds
    med = {m: statistics.median(v) for m, v in times.items()}
    lines = [f"gridcoord bench --services — case {spec.name}, strategy {strategy}, executor {executor}, "
             f"{repeat} runs each, alternating",
             f"{'mode':<10} {'median s':>9} {'min s':>8} {'max s':>8} {'rounds':>7} {'objective $':>14}"]
    for m in ("embedded", "services"):
        lines.append(f"{m:<10} {med[m]:>9.2f} {min(times[m]):>8.2f} {max(times[m]):>8.2f} {rounds[m]:>7} "
                     f"{objective[m]:>14,.2f}")
    rel = abs(objective["services"] - objective["embedded"]) / abs(objective["embedded"])
    lines.append(f"services / embedded wall time: {med['services'] / med['embedded']:.3f} (target <= 1.10); "
                 f"objective relative difference {rel:.1e} (target <= 1e-6)")
    return "\n".join(lines)


def bench_scale(feeders: tuple[int, ...] = (4, 16, 32), strategies: tuple[str, ...] = ("centralized", "csso"),
                executor: str = "serial", out: str = "runs/scale") -> str:
    """``ieee118-NNx33`` for each NN: every strategy as its own process (``gridcoord run``), its peak
    memory from the OS (``wait4``'s max RSS; with the serial executor every subspace lives in that
    process, so the figure covers the whole computation), rounds, subspace solves, wall time and gap to
    centralized; a table and ``scale.png``."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(out)
    rows: list[dict[str, float | str]] = []
    for nn in feeders:
        ref = None
        for strategy in strategies:
            run_dir = root / f"ieee118-{nn}x33-{strategy}"
            cmd = [sys.executable, "-m", "orchestrator.cli", "run", "--case", f"ieee118-{nn}x33", "--strategy",
                   strategy, "--out", str(run_dir), "--no-ac-check", "--executor", executor]
            env = dict(os.environ)
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            if status != 0:
                err = proc.stderr.read().decode()[-300:] if proc.stderr else ""
                rows.append({"nn": nn, "strategy": strategy, "error": err.strip().splitlines()[-1] if err else "?"})
                continue
            s = json.loads((run_dir / "summary.json").read_text())
            if strategy == "centralized":
                ref = s["objective_usd"]
            rows.append({"nn": nn, "strategy": strategy, "objective_usd": s["objective_usd"], "rounds": s["rounds"],
                         "rounds_to_0_1pct": _rounds_to_gap(run_dir / "convergence.csv", ref, 1e-3),
                         "subspace_solves": s["subspace_solves"], "wall_s": s["wall_s"], "process_s": wall,
                         "peak_mb": usage.ru_maxrss / 1024.0,
                         "gap": (s["objective_usd"] - ref) / abs(ref) if ref else float("nan")})
            print(f"  NN={nn} {strategy}: done in {wall:.0f} s", file=sys.stderr, flush=True)
    from orchestrator.strategies.iterative import CONSISTENT_MW

    lines = [f"gridcoord bench --scale — ieee118-NNx33, executor {executor} (one process per run), AC check off",
             "rounds: coordination rounds to the strategy's own stop + 1 reporting round; r@0.1%: the exchange that "
             "first showed an objective within 0.1 % of centralized at a boundary every operator dispatches "
             f"(mismatch <= {CONSISTENT_MW} MW)",
             f"{'NN':>3} {'strategy':<12} {'objective $':>14} {'gap':>9} {'rounds':>6} {'r@0.1%':>6} {'solves':>7} "
             f"{'wall s':>8} {'peak MB':>8}"]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['nn']:>3} {r['strategy']:<12} failed: {r['error']}")
            continue
        lines.append(f"{r['nn']:>3} {r['strategy']:<12} {r['objective_usd']:>14,.2f} {r['gap']:>9.1e} "
                     f"{r['rounds']:>6} {r['rounds_to_0_1pct']:>6} {r['subspace_solves']:>7} {r['wall_s']:>8.1f} "
                     f"{r['peak_mb']:>8.0f}")
    root.mkdir(parents=True, exist_ok=True)
    (root / "scale.json").write_text(json.dumps(rows, indent=2) + "\n")
    _plot_scale(root / "scale.png", rows)
    lines.append(f"wrote {root / 'scale.json'} and {root / 'scale.png'}")
    return "\n".join(lines)


def _rounds_to_gap(convergence_csv: Path, ref: float | None, gap: float) -> int | str:
    """The exchange that first showed an objective within ``gap`` of ``ref`` at a consistent boundary
    (``iterative.first_within``; '-': one-shot, '>N': never)."""
    import csv

    from orchestrator.strategies.iterative import first_within

    if ref is None or not convergence_csv.is_file():
        return "-"
    with convergence_csv.open() as fh:
        rows: list[dict[str, Any]] = [dict(r) for r in csv.DictReader(fh)]
    for r in rows:
        r["gap_to_best_known"] = (float(r["objective_usd"]) - ref) / abs(ref)
    known, _ = first_within(rows, gap)
    return int(known) if np.isfinite(known) else f">{len(rows)}"


def _plot_scale(path: Path, rows: list[dict[str, float | str]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if "error" not in r]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), constrained_layout=True)
    for strategy in sorted({str(r["strategy"]) for r in ok}):
        rs = [r for r in ok if r["strategy"] == strategy]
        nn = [r["nn"] for r in rs]
        labels = ("rounds", "wall time [s]", "peak memory [MB]")
        for ax, key, label in zip(axes, ("rounds", "wall_s", "peak_mb"), labels, strict=True):
            ax.plot(nn, [r[key] for r in rs], marker="o", label=strategy)
            ax.set_xlabel("feeders NN")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle("ieee118-NNx33: how rounds, wall time and memory grow with the number of DSOs")
    fig.savefig(path, dpi=110)
    plt.close(fig)
