"""A DSO's differential-privacy side: the sensitivity of each field it sends, from its own physical limits.

Adjacency (after Dvorkin et al., "Differentially private optimal power flow for distribution grids", IEEE
Trans. Power Systems 36(3), 2021, who protect one load by an alpha-bound on its change): two data sets of
a DSO are neighbours if the net load of one node in one period differs by at most ``alpha_mw``. By
default alpha is the peak load of the feeder's smallest loaded node (one customer connection point of
the feeder: every such connection is hidden; a larger one is protected as a group of alpha-sized changes).

L2 sensitivities of what the DSO sends (one period changes by alpha):
- an import profile (forecast, price response, ADMM step, CSSO proposal) [MW]: alpha — the change passes
  through the substation in that period (the bound assumes the feeder's flexibility does not carry it into
  other periods; losses make it larger by the loss factor, a few per cent, which the bound ignores);
- its cost [$]: alpha * dt * ELASTIC_PENALTY_USD_PER_MWH — no marginal value in the DSO's model exceeds
  the elastic penalty (fuel, curtailment and loss costs are below it; a fixed import it cannot follow is
  priced at it);
- a boundary mismatch [MW]: alpha.
Marginal costs (sensitivities) and the elastic penalty are not released in DP mode (NaN): a marginal cost
can jump across its whole range when one load changes, so no useful noise level protects it, and no
strategy needs the DSO's. An ADMM step releases its import only (the strategy does not need the cost).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.privacy import PrivacyConfig
from core.subspace import ELASTIC_PENALTY_USD_PER_MWH
from dso.model import FeederInputs


@dataclass(frozen=True)
class Sensitivity:
    alpha_mw: float  # L2 sensitivity of an import profile and of a mismatch [MW]
    cost_usd: float  # of a cost [$]


def default_alpha_mw(inputs: FeederInputs) -> float:
    """Peak load of the smallest loaded node [MW] (see the module docstring)."""
    peak = np.asarray(inputs.p_load_mw, dtype=float).max(axis=1)
    loaded = peak[peak > 1e-9]
    if loaded.size == 0:
        raise ValueError("DSO privacy: the feeder has no load; give alpha_mw explicitly")
    return float(loaded.min())


def sensitivity(inputs: FeederInputs, config: PrivacyConfig) -> Sensitivity:
    alpha = config.alpha_mw if config.alpha_mw is not None else default_alpha_mw(inputs)
    return Sensitivity(alpha_mw=alpha, cost_usd=alpha * inputs.dt_h * ELASTIC_PENALTY_USD_PER_MWH)


def forecast_sensitivity(inputs: FeederInputs, config: PrivacyConfig) -> float:
    return sensitivity(inputs, config).alpha_mw
