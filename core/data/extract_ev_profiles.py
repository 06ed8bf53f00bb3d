"""Regenerate ``profiles_simbench_ev_year.csv``: a year of EV charging-point profiles from SimBench.

Run ``python -m core.data.extract_ev_profiles`` with ``pip install simbench`` (optional extra ``gridcoord[data]``).
Source and treatment are recorded in ``PROVENANCE.md`` beside the output: grid ``1-LV-urban6--2-sw`` (a SimBench
future scenario with charging points), home points ``HLS_*`` -> ``ev_home``, workplace / public points ``APLS_*`` ->
``ev_work``; hourly means of the quarter-hour values, each column divided by its annual maximum.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from core.data.extract_profiles import STEPS_PER_DAY, year_csv

HERE = Path(__file__).resolve().parent
OUT = HERE / "profiles_simbench_ev_year.csv"
GRID = "1-LV-urban6--2-sw"
#: column written -> SimBench load-profile columns averaged into it
SOURCES: dict[str, tuple[str, ...]] = {
    "ev_home": ("HLS_A_3.7_pload", "HLS_B_3.7_pload", "HLS_C_3.7_pload", "HLS_A_11.0_pload", "HLS_B_11.0_pload"),
    "ev_work": ("APLS_B_11.0_pload", "APLS_A_50.0_pload"),
}


def extract() -> str:
    """CSV text, one row per (day, hour) of the 2016 profile year."""
    import simbench as sb  # optional dependency, only needed to regenerate the file

    table = sb.get_simbench_net(GRID).profiles["load"]
    series = {}
    for name, sources in SOURCES.items():
        mean = np.mean([np.asarray(table[c], dtype=np.float64) for c in sources], axis=0)
        series[name] = mean[: (mean.size // STEPS_PER_DAY) * STEPS_PER_DAY].reshape(-1, STEPS_PER_DAY)
    return year_csv(series)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    args.out.write_text(extract())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
