"""Side-by-side table of run summaries, like a paper's results table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROWS: tuple[tuple[str, str, str], ...] = (
    # (label, key, format)
    ("total system cost [$/day]", "objective_usd", "{:,.2f}"),
    ("gap to first run [%]", "_gap", "{:+.4f}"),
    ("TSO cost [$]", "tso_cost_usd", "{:,.2f}"),
    ("DSO cost, sum [$]", "_dso_sum", "{:,.2f}"),
    ("transmission losses [MWh]", "transmission_loss_mwh", "{:.3f}"),
    ("distribution losses [MWh]", "distribution_loss_mwh", "{:.4f}"),
    ("distribution loss rate [%]", "_loss_rate_pct", "{:.3f}"),
    ("PV utilisation [%]", "_pv_pct", "{:.2f}"),
    ("wind utilisation [%]", "_wind_pct", "{:.2f}"),
    ("EV energy [MWh]", "ev_energy_mwh", "{:.3f}"),
    ("EV unmet [MWh]", "ev_unmet_mwh", "{:.6f}"),
    ("peak-valley, max over DSOs [MW]", "_pv_max", "{:.3f}"),
    ("mean |V - 1| [p.u.]", "voltage_deviation_pu", "{:.4f}"),
    ("AC check max |dV| [p.u.]", "_ac_v", "{:.2e}"),
    ("AC check loss error [%]", "_ac_loss_pct", "{:.3f}"),
    ("rounds", "rounds", "{}"),
    ("subspace solves", "subspace_solves", "{}"),
    ("messages", "messages", "{}"),
    ("bytes", "bytes", "{:,}"),
    ("wall time [s]", "wall_s", "{:.2f}"),
    ("converged", "converged", "{}"),
)


def _read(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "summary.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no summary.json (is it a `gridcoord run --out` directory?)")
    try:
        return dict(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


def _derived(s: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    d = dict(s)
    d["_gap"] = 100.0 * (s["objective_usd"] - ref["objective_usd"]) / abs(ref["objective_usd"])
    d["_dso_sum"] = sum(s["dso_cost_usd"].values())
    d["_loss_rate_pct"] = 100.0 * s["distribution_loss_rate"]
    d["_pv_pct"] = 100.0 * s["pv_utilization"]
    d["_wind_pct"] = 100.0 * s["wind_utilization"]
    d["_pv_max"] = max(s["peak_valley_mw"].values(), default=0.0)
    d["_ac_v"] = s["ac_check"]["max_voltage_error_pu"]
    d["_ac_loss_pct"] = 100.0 * s["ac_check"]["loss_error_rel"]
    return d


def compare_runs(dirs: list[Path]) -> str:
    """A Markdown table: one column per run directory, one row per metric."""
    summaries = [_read(d) for d in dirs]
    derived = [_derived(s, summaries[0]) for s in summaries]
    header = ["metric"] + [f"{s['strategy']} ({d.name})" for s, d in zip(summaries, dirs, strict=True)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, key, fmt in ROWS:
        lines.append("| " + " | ".join([label] + [fmt.format(d[key]) for d in derived]) + " |")
    cases = {s["case"] for s in summaries}
    if len(cases) > 1:
        lines.append(f"\nnote: runs are of different cases: {', '.join(sorted(cases))}")
    return "\n".join(lines)
