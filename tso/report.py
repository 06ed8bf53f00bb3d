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
    #: the elastic mismatch at the reported boundary: what it could not serve (0 at a consistent boundary)
    penalty_usd: float = 0.0
    mismatch_mw: float = 0.0


def publish(dispatch: TsoDispatch, penalty_usd: float = 0.0, mismatch_mw: float = 0.0) -> TsoReport:
    return TsoReport(penalty_usd=float(penalty_usd), mismatch_mw=float(mismatch_mw),
        price_dso_usd_per_mwh=dispatch.price_dso_usd_per_mwh, cost_usd=dict(dispatch.cost_usd),
        transmission_loss_mwh=float(dispatch.transmission_loss_mwh),
        wind_p_mw=np.asarray(dispatch.wind_p_mw).sum(axis=0),
        wind_avail_mw=np.asarray(dispatch.wind_avail_mw).sum(axis=0),
    )
