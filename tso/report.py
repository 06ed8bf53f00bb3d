"""What the TSO publishes about its own dispatch at the end of a run (aggregates, no network data)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tso.model import TsoDispatch


@dataclass(frozen=True)
class TsoReport:
    price_dso_usd_per_mwh: np.ndarray  # (K,T) LMP at the DSO buses
    cost_usd: dict[str, float]  # generation, wind_curtailment, demand_response
    transmission_loss_mwh: float
    wind_p_mw: np.ndarray  # (T,) total wind used
    wind_avail_mw: np.ndarray  # (T,) total wind available


def publish(dispatch: TsoDispatch) -> TsoReport:
    return TsoReport(
        price_dso_usd_per_mwh=dispatch.price_dso_usd_per_mwh, cost_usd=dict(dispatch.cost_usd),
        transmission_loss_mwh=float(dispatch.transmission_loss_mwh),
        wind_p_mw=np.asarray(dispatch.wind_p_mw).sum(axis=0),
        wind_avail_mw=np.asarray(dispatch.wind_avail_mw).sum(axis=0),
    )
