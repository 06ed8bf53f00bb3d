"""The study contract's files, shared by every study: ``study.json`` and ``table.md``."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PaperFigure:
    """One figure a paper reports, for the column beside ours in ``table.md``."""

    scenario: str
    metric: str
    value: float | str
    #: where it comes from (table/figure of the paper, or a note on how it was read)
    source: str = ""


@dataclass
class StudyResult:
    """What a study measured. ``scenarios[SCENARIO][METRIC]``: numbers (units in the metric name), lists or
    small dicts (per station, per feeder ...); ``extra`` goes to ``study.json`` beside the contract's keys."""

    study: str
    case: str
    scenarios: dict[str, dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    paper: list[PaperFigure] = field(default_factory=list)
    #: metrics for table.md in this order (default: every metric of the first scenario that is a number)
    table_metrics: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    #: PNG files the study wrote (listed with the study's files)
    plots: list[Path] = field(default_factory=list)


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if hasattr(v, "tolist"):  # numpy arrays and scalars
        return _jsonable(v.tolist())
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "—"
        a = abs(v)
        if a == 0:
            return "0"
        if a >= 1e4:
            return f"{v:,.0f}"
        if a >= 100:
            return f"{v:,.1f}"
        if a >= 0.01:
            return f"{v:.4g}"
        return f"{v:.3e}"
    if isinstance(v, dict):
        return "; ".join(f"{k} {_fmt(x)}" for k, x in v.items())
    if isinstance(v, list | tuple):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def table_markdown(result: StudyResult) -> str:
    """The paper-style table: one row per metric, per scenario our value and the paper's (where it reports one)."""
    scenarios = list(result.scenarios)
    metrics = result.table_metrics or [m for m, v in next(iter(result.scenarios.values()), {}).items()
                                       if isinstance(v, int | float) and not isinstance(v, bool)]
    paper = {(f.scenario, f.metric): f for f in result.paper}
    header = ["metric"]
    for s in scenarios:
        header.append(f"{s} (ours)")
        if any(k[0] == s for k in paper):
            header.append(f"{s} (paper)")
    lines = [f"# {result.title or result.study} — case {result.case}", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for m in metrics:
        row = [m]
        for s in scenarios:
            row.append(_fmt(result.scenarios[s].get(m)))
            if any(k[0] == s for k in paper):
                f = paper.get((s, m))
                row.append(_fmt(f.value) if f is not None else "")
        lines.append("| " + " | ".join(row) + " |")
    sources = sorted({f.source for f in result.paper if f.source})
    if sources:
        lines += ["", "Paper figures: " + "; ".join(sources) + "."]
    if result.notes:
        lines += ["", "Notes:", *[f"- {n}" for n in result.notes]]
    return "\n".join(lines) + "\n"


def write_study(out: str | Path, result: StudyResult, plots: Sequence[Path] = ()) -> list[Path]:
    """Write ``study.json`` and ``table.md`` under ``out``; return every file of the study (plots included)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"study": result.study, "case": result.case, "scenarios": _jsonable(result.scenarios),
           "notes": list(result.notes), **_jsonable(result.extra),
           "paper": [{"scenario": f.scenario, "metric": f.metric, "value": f.value, "source": f.source}
                     for f in result.paper]}
    (out / "study.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out / "table.md").write_text(table_markdown(result))
    return [out / "study.json", out / "table.md", *plots]


def feeder_run_result(strategy: str, feeder_id: str, report: Any, price_usd_per_mwh: Any, solve_s: float,
                      note: str) -> Any:
    """A run of one DSO dispatching its feeder alone (no TSO; ``price_usd_per_mwh`` (T,) its boundary price) as
    the run contract's ``RunResult``, for the studies that dispatch a single feeder."""
    import numpy as np

    from core.traffic import Traffic
    from orchestrator.strategies.base import RunResult
    from tso.report import TsoReport

    price = np.asarray(price_usd_per_mwh, dtype=float)
    t = price.shape[0]
    tso = TsoReport(price_dso_usd_per_mwh=price.reshape(1, t), cost_usd={}, transmission_loss_mwh=0.0,
                    wind_p_mw=np.zeros(t), wind_avail_mw=np.zeros(t))
    return RunResult(strategy=strategy, tso=tso, feeders={feeder_id: report},
                     boundary_price_usd_per_mwh={feeder_id: price}, traffic=Traffic(rounds=1, subspace_solves=1),
                     converged=True, wall_s=solve_s, notes=[note])


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (studies write PNG files only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> Path:
    """Lay out, write (110 dpi PNG) and close a study figure; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path
