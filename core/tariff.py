"""The DSO's next-day time-of-use tariff (peak / flat / valley), derived from its own forecast (shared by the
DSO, which derives and publishes it, and the aggregator, which checks and shows it: hence in ``core``).

Rule: the periods of the day are ranked by the DSO's forecast net load (``dso.inputs.import_forecast_mw``:
loads + uncontrolled EV charging - available PV and wind) and split into thirds: the round(T/3) highest are
``peak``, the round(T/3) lowest ``valley``, the rest ``flat`` (ties broken by the earlier period counting as
higher, so the split is deterministic). The three price levels are the DSO's input (no tariff data is
bundled); they must be finite and ordered peak >= flat >= valley. The DSO publishes the tariff to its
aggregator (RPC ``PublishTariff``, :meth:`dso.service.AggregatorLink.publish_tariff`), whose stations show it
on every reservation confirmation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LEVELS = ("peak", "flat", "valley")


class TariffError(ValueError):
    """A tariff input is unusable; the message names it."""


@dataclass(frozen=True)
class TouTariff:
    level: tuple[str, ...]  # per period: "peak" | "flat" | "valley"
    peak_usd_per_mwh: float
    flat_usd_per_mwh: float
    valley_usd_per_mwh: float

    def __post_init__(self) -> None:
        for i, lv in enumerate(self.level):
            if lv not in LEVELS:
                raise TariffError(f"level[{i}] = {lv!r}: must be one of {', '.join(LEVELS)}")
        for name in ("peak_usd_per_mwh", "flat_usd_per_mwh", "valley_usd_per_mwh"):
            v = getattr(self, name)
            if not math.isfinite(v):
                raise TariffError(f"{name} = {v} is not finite")
        if not self.peak_usd_per_mwh >= self.flat_usd_per_mwh >= self.valley_usd_per_mwh:
            raise TariffError(f"peak_usd_per_mwh = {self.peak_usd_per_mwh:g}, flat_usd_per_mwh = "
                              f"{self.flat_usd_per_mwh:g}, valley_usd_per_mwh = {self.valley_usd_per_mwh:g}: "
                              "must be ordered peak >= flat >= valley")

    @property
    def price_usd_per_mwh(self) -> np.ndarray:
        """(T,) the price of each period [$/MWh]."""
        by_level = {"peak": self.peak_usd_per_mwh, "flat": self.flat_usd_per_mwh,
                    "valley": self.valley_usd_per_mwh}
        return np.array([by_level[lv] for lv in self.level])


def tou_tariff(forecast_mw: np.ndarray, peak_usd_per_mwh: float, flat_usd_per_mwh: float,
               valley_usd_per_mwh: float) -> TouTariff:
    """The three-level tariff of the day from the forecast net load ``forecast_mw`` (T,) [MW] (rule above)."""
    f = np.asarray(forecast_mw, dtype=float).reshape(-1)
    if f.size < 3:
        raise TariffError(f"forecast_mw: {f.size} periods, at least 3 needed for three levels")
    bad = np.flatnonzero(~np.isfinite(f))
    if bad.size:
        raise TariffError(f"forecast_mw[{int(bad[0])}] = {f[bad[0]]} is not finite")
    third = int(round(f.size / 3))
    order = np.lexsort((np.arange(f.size), -f))  # highest first; equal loads: earlier period first
    level = np.full(f.size, "flat", dtype=object)
    level[order[:third]] = "peak"
    level[order[f.size - third:]] = "valley"
    return TouTariff(tuple(str(x) for x in level), float(peak_usd_per_mwh), float(flat_usd_per_mwh),
                     float(valley_usd_per_mwh))
