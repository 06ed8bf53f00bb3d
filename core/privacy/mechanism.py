"""The Gaussian mechanism on the fields of one reply, calibrated so that a planned number of releases
composes to a target (epsilon, delta) (``core.privacy.accountant``: zCDP).

One release is one reply of an operator: several fields f (a boundary vector [MW], a cost [$], ...), each
with its own L2 sensitivity Delta_f. Scaled by 1/Delta_f they form one vector of L2 sensitivity sqrt(m)
(m fields, each part moving by at most 1), so the release gets noise N(0, (sigma Delta_f)^2) per entry of
field f with one sigma for all: it is rho_r-zCDP with rho_r = m / (2 sigma^2). A run plans ``releases``
replies and spends rho_total / releases on each, rho_total = ``rho_from_epsilon(epsilon, delta)``: the
(epsilon, delta) of the run is then met exactly when every planned release was used, and a reply beyond
the plan is refused (``PrivacyBudgetError``), never sent with less noise.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from core.privacy.accountant import Accountant, rho_from_epsilon


class PrivacyBudgetError(RuntimeError):
    """An operator was asked for more replies than its privacy budget plans for."""


@dataclass(frozen=True)
class PrivacyConfig:
    """``--privacy dp --epsilon E --delta D``: the run's total budget and how many replies it covers."""

    epsilon: float
    delta: float = 1e-5
    #: replies a DSO sends during one run (forecast + start evaluation + one per round): the budget's split
    releases: int = 21
    #: adjacency: two data sets of a DSO are neighbours if one period's net load differs by <= alpha_mw
    #: (None: the operator derives it from its physical limits, see ``dso.privacy``)
    alpha_mw: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        rho_from_epsilon(self.epsilon, self.delta)  # validates epsilon and delta
        if self.releases < 1:
            raise ValueError(f"privacy: releases={self.releases!r} must be >= 1")
        if self.alpha_mw is not None and not (self.alpha_mw > 0 and math.isfinite(self.alpha_mw)):
            raise ValueError(f"privacy: alpha_mw={self.alpha_mw!r} must be > 0 and finite")

    @property
    def rho_total(self) -> float:
        return rho_from_epsilon(self.epsilon, self.delta)

    @property
    def rho_per_release(self) -> float:
        return self.rho_total / self.releases

    def sigma(self, n_fields: int) -> float:
        """Noise scale (in units of each field's sensitivity) of a release of ``n_fields`` fields."""
        return math.sqrt(n_fields / (2.0 * self.rho_per_release))


@dataclass(frozen=True)
class Release:
    """What one release added: the noise scale used per field (value units) and its zCDP cost."""

    sigma: dict[str, float]
    rho: float


class GaussianMechanism:
    """One operator's mechanism: its own noise stream (seeded by the config's seed and its name) and accountant."""

    def __init__(self, config: PrivacyConfig, name: str) -> None:
        self.config, self.name = config, name
        self.rng = np.random.default_rng([config.seed, zlib.crc32(name.encode())])
        self.accountant = Accountant()
        self.last: Release | None = None

    def release(self, what: str, fields: dict[str, tuple[np.ndarray | float, float]]) -> dict[str, np.ndarray]:
        """Noisy copies of ``fields`` (name -> (value, L2 sensitivity)); charges one release."""
        if self.accountant.releases >= self.config.releases:
            raise PrivacyBudgetError(
                f"{self.name}: privacy budget spent ({self.config.releases} releases at epsilon "
                f"{self.config.epsilon:g}, delta {self.config.delta:g}); refusing {what}")
        for f, (_, sens) in fields.items():
            if not (sens > 0 and math.isfinite(sens)):
                raise ValueError(f"{self.name}: sensitivity of {f!r} must be > 0 and finite, got {sens!r}")
        sigma = self.config.sigma(len(fields))
        out = {f: np.asarray(v, dtype=float) + self.rng.normal(0.0, sigma * sens, size=np.shape(v))
               for f, (v, sens) in fields.items()}
        rho = len(fields) / (2.0 * sigma ** 2)
        self.accountant.spend(rho, what)
        self.last = Release(sigma={f: sigma * s for f, (_, s) in fields.items()}, rho=rho)
        return out
