"""Price-responsive scheduling of fleet envelopes (LP, cvxpy, built once with a price Parameter)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from aggregator.flex import (
    FleetFlexibility,
    envelope_of_entry,
    period_map_matrix,
    window_cumsum_matrix,
    window_periods,
)
from core.errors import SolveError
from core.solver import value


@dataclass(frozen=True)
class PriceResponseModel:
    """min sum_t price_t * P_t * dt_h over the envelopes, P = net fleet power (MW) per period."""

    problem: cp.Problem
    price_usd_per_mwh: cp.Parameter  # (T,)
    p_ch_mw: cp.Variable  # (sum dwell,)
    p_dis_mw: cp.Variable  # (sum dwell,)
    constraints: dict[str, cp.Constraint]


def build_price_response(
    flex: FleetFlexibility,
    dt_h: float,
    n_periods: int,
    station_limit_mw: Mapping[str, float] | None = None,
) -> PriceResponseModel:
    """Build the LP once; set ``price_usd_per_mwh.value`` and re-solve (DPP).

    Constraints: "power.ch" 0 <= p_ch <= p_ch_max, "power.dis" 0 <= p_dis <= p_dis_max,
    "energy.min"/"energy.max" e_min <= L (eta_ch p_ch - p_dis/eta_dis) dt <= e_max,
    and "station.limit" |net station power| <= limit when ``station_limit_mw`` is given.
    """
    n = flex.p_ch_max_mw.size
    owner = envelope_of_entry(flex)
    p_ch = cp.Variable(n, nonneg=True, name="p_ch_mw")
    p_dis = cp.Variable(n, nonneg=True, name="p_dis_mw")
    price = cp.Parameter(n_periods, name="price_usd_per_mwh")
    lmat = window_cumsum_matrix(flex)
    stored = lmat @ (
        cp.multiply(flex.eta_ch[owner] * dt_h, p_ch) - cp.multiply(dt_h / flex.eta_dis[owner], p_dis)
    )
    mmat = period_map_matrix(flex, n_periods)
    cons: dict[str, cp.Constraint] = {
        "power.ch": p_ch <= flex.p_ch_max_mw,
        "power.dis": p_dis <= flex.p_dis_max_mw,
        "energy.min": stored >= flex.e_min_mwh,
        "energy.max": stored <= flex.e_max_mwh,
    }
    if station_limit_mw is not None:
        ids = sorted(set(flex.station_id))
        row = {s: i for i, s in enumerate(ids)}
        env_row = np.array([row[s] for s in flex.station_id], dtype=np.int64)
        t = window_periods(flex, n_periods)
        amat = sp.csr_matrix(
            (np.ones(n), (env_row[owner] * n_periods + t, np.arange(n))), shape=(len(ids) * n_periods, n)
        )
        lim = np.repeat([float(station_limit_mw[s]) for s in ids], n_periods)
        net = amat @ (p_ch - p_dis)
        cons["station.limit"] = cp.abs(net) <= lim
    cost = price @ (mmat @ (p_ch - p_dis)) * dt_h
    problem = cp.Problem(cp.Minimize(cost), list(cons.values()))
    return PriceResponseModel(problem, price, p_ch, p_dis, cons)


def solve_price_response(
    model: PriceResponseModel, price_usd_per_mwh: np.ndarray, solver: str = "HIGHS"
) -> tuple[np.ndarray, np.ndarray, float]:
    """(p_ch_mw, p_dis_mw, cost_usd) of the cheapest envelope schedule at these prices."""
    model.price_usd_per_mwh.value = np.asarray(price_usd_per_mwh, dtype=float)
    model.problem.solve(solver=solver)
    if model.problem.status != cp.OPTIMAL:
        raise SolveError("fleet price response", str(model.problem.status))
    return np.maximum(value(model.p_ch_mw), 0.0), np.maximum(value(model.p_dis_mw), 0.0), float(model.problem.value)
