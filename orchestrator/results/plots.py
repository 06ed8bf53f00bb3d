"""PNG plots of a run: prices, feeder load curves with EV charging, voltages, PV use, convergence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from core.case import CaseSpec  # noqa: E402
from orchestrator.strategies.base import RunResult  # noqa: E402


def _hours(spec: CaseSpec) -> np.ndarray:
    return np.arange(spec.periods) * spec.dt_h


def plot_run(out: Path, spec: CaseSpec, result: RunResult) -> list[Path]:
    """Write the run's plots into ``out``; return their paths."""
    paths = [_prices(out, spec, result), _feeder_loads(out, spec, result), _voltages(out, spec, result),
             _pv(out, spec, result)]
    if result.convergence:
        paths.append(_convergence(out, result))
    return paths


def plot_ev_allocation(out: Path, spec: CaseSpec, result: RunResult, rows: list[dict[str, Any]]) -> Path:
    """Heat map per DSO of net EV power [MW] by feeder node (rows) and hour (columns): ``ev_allocation.png``."""
    feeders = [(fid, r) for fid, r in result.feeders.items() if r.ev_stations is not None]
    n_t = spec.periods
    fig, axes = plt.subplots(len(feeders), 1, figsize=(8, 2.6 * len(feeders)), squeeze=False)
    vmax = max((abs(r["p_mw"]) for r in rows), default=1.0) or 1.0
    im = None
    for ax, (fid, report) in zip(axes[:, 0], feeders, strict=True):
        assert report.ev_stations is not None
        grid = np.zeros((report.n_nodes, n_t))
        for r in rows:
            if r["dso"] == fid:
                grid[r["node"] - 1, int(round(r["hour"] / spec.dt_h))] += r["p_mw"]
        used = np.flatnonzero(np.any(grid != 0, axis=1) | np.isin(np.arange(report.n_nodes),
                                                                   [n - 1 for n in report.ev_stations.node]))
        im = ax.imshow(grid[used], aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set_yticks(range(used.size), [str(n + 1) for n in used])
        ax.set_ylabel(f"{fid} node")
    axes[-1, 0].set_xlabel("hour")
    axes[0, 0].set_title(f"{spec.name}: EV net power by node [MW] (charging > 0)")
    if im is not None:
        fig.colorbar(im, ax=axes[:, 0].tolist(), shrink=0.8, label="MW")
    path = out / "ev_allocation.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _prices(out: Path, spec: CaseSpec, result: RunResult) -> Path:
    h = _hours(spec)
    fig, ax = plt.subplots(figsize=(8, 4))
    for k, price in result.boundary_price_usd_per_mwh.items():
        ax.step(h, price, where="post", label=f"{k} boundary")
    ax.set_xlabel("hour")
    ax.set_ylabel("clearing price [$/MWh]")
    ax.set_title(f"{spec.name} — {result.strategy}: boundary clearing prices")
    ax.grid(alpha=0.3)
    ax.legend()
    path = out / "prices.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _feeder_loads(out: Path, spec: CaseSpec, result: RunResult) -> Path:
    h = _hours(spec)
    n = len(result.feeders)
    fig, axes = plt.subplots(n, 1, figsize=(8, 2.8 * n), sharex=True, squeeze=False)
    for ax, (fid, d) in zip(axes[:, 0], result.feeders.items(), strict=True):
        ev = d.p_ev_mw.sum(axis=0)
        ax.step(h, d.p_load_mw.sum(axis=0), where="post", label="base load", color="0.4")
        ax.step(h, d.p_import_mw, where="post", label="import from TSO", color="C0", lw=2)
        ax.bar(h, np.clip(ev, 0, None), width=0.8 * spec.dt_h, align="edge", color="C2", alpha=0.6,
               label="EV charging")
        ax.bar(h, np.clip(ev, None, 0), width=0.8 * spec.dt_h, align="edge", color="C3", alpha=0.6,
               label="EV discharging")
        ax.step(h, d.pv_p_mw, where="post", label="PV used", color="C1")
        ax.set_ylabel(f"{fid} [MW]")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(ncol=3, fontsize=8)
    axes[0, 0].set_title(f"{spec.name} — {result.strategy}: feeder load curves")
    axes[-1, 0].set_xlabel("hour")
    path = out / "feeder_loads.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _voltages(out: Path, spec: CaseSpec, result: RunResult) -> Path:
    n = len(result.feeders)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4), squeeze=False, constrained_layout=True)
    vmin = min(float(d.v_pu.min()) for d in result.feeders.values())
    im = None
    for ax, (fid, d) in zip(axes[0], result.feeders.items(), strict=True):
        im = ax.imshow(d.v_pu, aspect="auto", origin="lower", cmap="viridis", vmin=min(vmin, 0.95), vmax=1.05,
                       extent=(0, spec.periods * spec.dt_h, 0.5, d.n_nodes + 0.5))
        ax.set_title(f"{fid}: |V| [p.u.]")
        ax.set_xlabel("hour")
        ax.set_ylabel("node")
    assert im is not None
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.85)
    path = out / "voltages.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _pv(out: Path, spec: CaseSpec, result: RunResult) -> Path:
    h = _hours(spec)
    fig, ax = plt.subplots(figsize=(8, 4))
    for i, (fid, d) in enumerate(result.feeders.items()):
        ax.plot(h, d.pv_avail_mw, ls="--", color=f"C{i}", label=f"{fid} available")
        ax.plot(h, d.pv_p_mw, color=f"C{i}", label=f"{fid} used")
    ax.set_xlabel("hour")
    ax.set_ylabel("PV [MW]")
    ax.set_title(f"{spec.name} — {result.strategy}: PV used vs available")
    ax.grid(alpha=0.3)
    ax.legend(ncol=2, fontsize=8)
    path = out / "pv.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _convergence(out: Path, result: RunResult) -> Path:
    rows = result.convergence
    fig, ax = plt.subplots(figsize=(7, 4))
    r = [row["round"] for row in rows]
    gap = np.array([abs(row.get("gap_to_best_known", np.nan)) for row in rows], dtype=float)
    if np.isfinite(gap).any():  # only when the run was given the best known objective
        ax.semilogy(r, np.maximum(gap, 1e-12), marker="o", label="|gap to best known|")
    if "primal_residual_mw" in rows[0]:
        ax.semilogy(r, [max(row["primal_residual_mw"], 1e-12) for row in rows], marker="s",
                    label="primal residual [MW]")
    ax.set_xlabel("round")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title(f"{result.strategy}: convergence")
    path = out / "convergence.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
