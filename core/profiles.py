"""Bundled 24-hour shapes (load, PV, wind) extracted from SimBench; see data/PROVENANCE.md."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

PROFILE_FILE = Path(__file__).resolve().parent / "data" / "profiles_simbench.csv"
YEAR_FILE = Path(__file__).resolve().parent / "data" / "profiles_simbench_year.csv"
#: EV charging-point profiles of the same year (``ev_home``, ``ev_work``), same layout as YEAR_FILE
EV_YEAR_FILE = Path(__file__).resolve().parent / "data" / "profiles_simbench_ev_year.csv"
STEP_H = 0.25  # the bundled profiles are quarter-hour values


@cache
def _table() -> dict[str, np.ndarray]:
    header, *rows = PROFILE_FILE.read_text().strip().splitlines()
    names = header.split(",")
    values = np.array([[float(x) for x in row.split(",")] for row in rows])
    return {name: values[:, j] for j, name in enumerate(names) if name not in ("step", "hour")}


def profile_names() -> list[str]:
    return sorted(_table())


def profile(name: str, dt_h: float) -> np.ndarray:
    """Mean of the quarter-hour values over each period of ``dt_h`` hours (dimensionless, (T,)); a period
    shorter than a quarter hour that divides it (e.g. 5 minutes) holds its quarter hour's value."""
    table = _table()
    if name not in table:
        raise KeyError(f"unknown profile {name!r} (known: {', '.join(sorted(table))})")
    series = table[name]
    sub = round(STEP_H / dt_h) if dt_h > 0 else 0
    if dt_h < STEP_H and sub >= 2 and abs(sub * dt_h - STEP_H) < 1e-9:
        return np.repeat(series, sub)
    per = round(dt_h / STEP_H)
    if per < 1 or abs(per * STEP_H - dt_h) > 1e-9:
        raise ValueError(f"dt_h={dt_h} is neither a multiple nor a divisor of the profiles' {STEP_H} h step")
    return series.reshape(-1, per).mean(axis=1)


@cache
def _year_table() -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for path in (YEAR_FILE, EV_YEAR_FILE):
        header, *rows = path.read_text().strip().splitlines()
        names = header.split(",")
        values = np.array([[float(x) for x in row.split(",")] for row in rows])
        days = int(values[:, 0].max()) + 1
        out |= {name: values[:, j].reshape(days, 24) for j, name in enumerate(names) if name not in ("day", "hour")}
    return out


def year_profile_names() -> list[str]:
    """Names of the bundled year profiles (load, PV, wind and EV charging points)."""
    return sorted(_year_table())


def year_profile(name: str) -> np.ndarray:
    """A whole SimBench profile year (2016, 366 days) as (days, 24) hourly means, each column divided by its
    annual maximum (loads and EV charging points: 1.0 = the year's peak; PV and wind: capacity factors). For
    uncertainty and
    scenario studies (forecast errors, representative days); see ``data/PROVENANCE.md``."""
    table = _year_table()
    if name not in table:
        raise KeyError(f"unknown year profile {name!r} (known: {', '.join(sorted(table))})")
    return table[name].copy()
