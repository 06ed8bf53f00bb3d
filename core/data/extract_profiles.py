"""Regenerate ``profiles_simbench.csv`` from the SimBench profiles that the simbench package ships.

Run ``python -m core.data.extract_profiles`` with ``pip install simbench`` (optional extra
``gridcoord[data]``). The output is checked into the repository so that a normal install does not
need the 380 MB simbench package; ``PROVENANCE.md`` beside it records what was taken and how.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "profiles_simbench.csv"
YEAR_OUT = HERE / "profiles_simbench_year.csv"

#: (column written, simbench grid code, profile table, profile column)
SOURCES: tuple[tuple[str, str, str, str], ...] = (
    ("load_mv_urban", "1-HV-mixed--0-sw", "load", "mv_urban_pload"),
    ("load_mv_comm", "1-HV-mixed--0-sw", "load", "mv_comm_pload"),
    ("load_lv_semiurb4", "1-MV-rural--0-sw", "load", "lv_semiurb4_pload"),
    ("load_lv_rural1", "1-MV-rural--0-sw", "load", "lv_rural1_pload"),
    ("load_g0_a", "1-MV-rural--0-sw", "load", "G0-A_pload"),
    ("pv_pv3", "1-MV-rural--0-sw", "renewables", "PV3"),
    ("pv_pv7", "1-MV-rural--0-sw", "renewables", "PV7"),
    ("wind_wp4", "1-HV-mixed--0-sw", "renewables", "WP4"),
)

#: The day taken from SimBench's 2016 profile year (0-based day of year): Thursday 2016-06-09,
#: a sunny working day with no public holiday in Germany.
DAY_OF_YEAR = 160
STEPS_PER_DAY = 96  # SimBench profiles are 15-minute values


def extract(day: int = DAY_OF_YEAR) -> str:
    """Return CSV text: one row per 15-minute step of ``day``.

    Load columns are divided by that day's maximum (so 1.0 is the day's peak, which the IEEE base
    loads stand for); PV and wind columns by the annual maximum (so they are capacity factors).
    """
    import simbench as sb  # optional dependency, only needed to regenerate the file

    nets: dict[str, Any] = {}
    cols: dict[str, np.ndarray] = {}
    for name, code, table, column in SOURCES:
        if code not in nets:
            nets[code] = sb.get_simbench_net(code)
        series = np.asarray(nets[code].profiles[table][column], dtype=np.float64)
        year = series[: (series.size // STEPS_PER_DAY) * STEPS_PER_DAY].reshape(-1, STEPS_PER_DAY)
        peak = float(np.max(year[day]) if name.startswith("load_") else np.max(year))
        # SimBench's wind series holds tiny negative values (~ -1e-6, standstill consumption): an
        # availability is never negative, so clip at 0
        cols[name] = np.clip(year[day] / peak, 0.0, None)
    lines = ["step,hour," + ",".join(cols)]
    for k in range(STEPS_PER_DAY):
        vals = ",".join(f"{cols[c][k]:.6f}" for c in cols)
        lines.append(f"{k},{k / 4:.2f},{vals}")
    return "\n".join(lines) + "\n"


def _series() -> dict[str, np.ndarray]:
    import simbench as sb  # optional dependency, only needed to regenerate the files

    nets: dict[str, Any] = {}
    out: dict[str, np.ndarray] = {}
    for name, code, table, column in SOURCES:
        if code not in nets:
            nets[code] = sb.get_simbench_net(code)
        series = np.asarray(nets[code].profiles[table][column], dtype=np.float64)
        out[name] = series[: (series.size // STEPS_PER_DAY) * STEPS_PER_DAY].reshape(-1, STEPS_PER_DAY)
    return out


def extract_year() -> str:
    """CSV text of the whole profile year at hourly resolution: one row per (day, hour), the mean of the
    four quarter-hour values. Every column is divided by its annual maximum (loads: 1.0 = the year's peak;
    PV and wind: capacity factors), wind clipped at 0 like the day file."""
    return year_csv(_series())


def year_csv(series: dict[str, np.ndarray]) -> str:
    """CSV rows (day, hour, columns) of quarter-hour year series (days, 96): hourly means, each column divided by
    its annual maximum and clipped at 0."""
    cols = {}
    for name, year in series.items():
        hourly = year.reshape(year.shape[0], 24, 4).mean(axis=2)
        cols[name] = np.clip(hourly / float(np.max(hourly)), 0.0, None)
    days = next(iter(cols.values())).shape[0]
    lines = ["day,hour," + ",".join(cols)]
    for d in range(days):
        for h in range(24):
            lines.append(f"{d},{h}," + ",".join(f"{cols[c][d, h]:.6f}" for c in cols))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--day", type=int, default=DAY_OF_YEAR)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--year-out", type=Path, default=YEAR_OUT)
    args = parser.parse_args()
    args.out.write_text(extract(args.day))
    args.year_out.write_text(extract_year())
    print(f"wrote {args.out} and {args.year_out}")


if __name__ == "__main__":
    main()
