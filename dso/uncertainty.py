"""Forecast-error uncertainty of a feeder from a year of SimBench profiles, fitted by Gaussian mixtures.

Forecast ("similar-day", named ``FORECAST_METHOD``): the day-ahead forecast of hour h of day d is the mean of
hour h over similar earlier days — the same weekday of the previous 4 weeks for loads and EV charging, whose
shape follows the week, and the previous 7 days for PV and wind (weather: a recent-climate mean). The forecast
error is actual - forecast in the profile's own unit (loads and EV charging relative to the year's peak, PV
and wind capacity factors; ``core.profiles.year_profile``). (Measured on the bundled year, max over hours of
the error std: weekday mean 0.085 vs 0.16 for previous-day persistence on load_lv_semiurb4; 7-day mean 0.25 vs
0.30 on pv_pv3.)

Two groups, kept apart as the paper keeps them (Li et al., AEPS, DOI 10.7500/AEPS20230830009): ``net_load``
(the feeder's non-EV load, PV and wind profiles) and ``ev`` (EV charging demand: the home and/or workplace
charging-point profiles). Per group and hour a Gaussian mixture (scikit-learn ``GaussianMixture``, full
covariances, 1..``max_components`` components chosen by BIC) is fitted on the training days; the groups are
independent and so are the hours (a mixture per hour: the chance constraints are per hour). A component whose
error is exactly 0 on every training day at that hour (PV at night) is deterministic there and left out of
that hour's mixture; every other fitted or given covariance must be positive definite (``UncertaintyError``).

Held-out days (out-of-sample tests): the days d with (d + 1) % n == 0, n = ``holdout_every`` (5 by default:
days 29, 34, ..., 364 of 2016, 68 days spread over the seasons); the first 28 days have no forecast and are
dropped; the rest is training data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["FORECAST_METHOD", "Gmm", "UncertaintyError", "UncertaintyModel", "fit_gmm", "fit_uncertainty",
           "forecast_errors", "gmm_moments"]

FORECAST_METHOD = ("similar-day mean (loads, EV charging: the same weekday of the previous 4 weeks; PV, wind: the "
                   "previous 7 days), hour by hour")
#: days of forecast history the method needs (4 weeks)
LAG_DAYS = 28
HOURS = 24
#: a covariance whose smallest eigenvalue is below this share of its largest is singular
SINGULAR_RTOL = 1e-10


class UncertaintyError(ValueError):
    """Bad uncertainty data or model; the message names the series / group, hour and component and the value."""


def _lags(name: str) -> tuple[int, ...]:
    """The earlier days (lags in days) whose mean is the forecast of series ``name``."""
    return tuple(range(1, 8)) if name.startswith(("pv_", "wind_")) else (7, 14, 21, 28)


def check_series(name: str, series: np.ndarray) -> np.ndarray:
    """A year series as (days, 24); refuses NaN / infinite values and a length that is not whole days."""
    arr = np.asarray(series, dtype=float)
    flat = arr.reshape(-1)
    if arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.shape[1] != HOURS) or flat.size % HOURS:
        raise UncertaintyError(f"uncertainty series {name!r}: shape {arr.shape} ({flat.size} values) is not whole "
                               f"days of {HOURS} hourly values")
    bad = np.flatnonzero(~np.isfinite(flat))
    if bad.size:
        k = int(bad[0])
        raise UncertaintyError(f"uncertainty series {name!r}: value {float(flat[k])!r} at day {k // HOURS}, hour "
                               f"{k % HOURS} ({bad.size} non-finite values)")
    days = flat.size // HOURS
    if days <= LAG_DAYS + 1:
        raise UncertaintyError(f"uncertainty series {name!r}: {days} days, the forecast needs more than "
                               f"{LAG_DAYS + 1}")
    return flat.reshape(days, HOURS)


def forecast_errors(name: str, series: np.ndarray) -> np.ndarray:
    """(days, 24) actual - similar-day forecast; the first ``LAG_DAYS`` rows (no forecast) are NaN."""
    x = check_series(name, series)
    err = np.full_like(x, np.nan)
    n = x.shape[0]
    forecast = np.mean([x[LAG_DAYS - lag: n - lag] for lag in _lags(name)], axis=0)
    err[LAG_DAYS:] = x[LAG_DAYS:] - forecast
    return err


@dataclass(frozen=True)
class Gmm:
    """A Gaussian mixture over the active components ``dims`` (indices into the group's components)."""

    where: str  # "group 'net_load', hour 13": named in every error
    dims: np.ndarray  # (d,) int
    weights: np.ndarray  # (K,)
    means: np.ndarray  # (K, d)
    covariances: np.ndarray  # (K, d, d)

    def __post_init__(self) -> None:
        w, mu, cov = (np.asarray(a, dtype=float) for a in (self.weights, self.means, self.covariances))
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "means", mu)
        object.__setattr__(self, "covariances", cov)
        object.__setattr__(self, "dims", np.asarray(self.dims, dtype=np.int64).reshape(-1))
        k, d = w.shape[0], self.dims.shape[0]
        if mu.shape != (k, d) or cov.shape != (k, d, d):
            raise UncertaintyError(f"GMM {self.where}: means {mu.shape} / covariances {cov.shape} do not match "
                                   f"{k} weights and {d} components")
        if not (np.all(np.isfinite(w)) and np.all(w >= 0) and abs(w.sum() - 1.0) < 1e-6):
            raise UncertaintyError(f"GMM {self.where}: weights {w.tolist()} must be >= 0 and sum to 1")
        for name, arr in (("means", mu), ("covariances", cov)):
            if not np.all(np.isfinite(arr)):
                raise UncertaintyError(f"GMM {self.where}: {name} have non-finite entries")
        for j in range(k):
            c = cov[j]
            if not np.allclose(c, c.T, atol=1e-12 * max(1.0, float(np.abs(c).max()))):
                raise UncertaintyError(f"GMM {self.where}, mixture component {j}: covariance is not symmetric")
            eig = np.linalg.eigvalsh(c) if d else np.zeros(0)
            if d and (eig[0] <= SINGULAR_RTOL * max(eig[-1], 0.0) or eig[-1] <= 0):
                raise UncertaintyError(f"GMM {self.where}, mixture component {j}: covariance is singular "
                                       f"(eigenvalues {eig.min():.3e} .. {eig.max():.3e})")

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mixture mean (d,) and covariance (d, d)."""
        return gmm_moments(self.weights, self.means, self.covariances)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, d) draws."""
        d = self.dims.shape[0]
        out = np.zeros((n, d))
        if d == 0 or n == 0:
            return out
        comp = rng.choice(self.weights.shape[0], size=n, p=self.weights / self.weights.sum())
        for j in range(self.weights.shape[0]):
            rows = np.flatnonzero(comp == j)
            if rows.size:
                out[rows] = rng.multivariate_normal(self.means[j], self.covariances[j], size=rows.size,
                                                    method="cholesky")
        return out

    def support_box(self, n_std: float) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) per component: the envelope over mixture components of mean -/+ n_std standard deviations."""
        std = np.sqrt(np.einsum("kii->ki", self.covariances))
        return (self.means - n_std * std).min(axis=0), (self.means + n_std * std).max(axis=0)


def gmm_moments(weights: np.ndarray, means: np.ndarray, covs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a mixture: mu = sum_k w_k mu_k, Sigma = sum_k w_k (Sigma_k + mu_k mu_k^T) - mu mu^T."""
    mu = weights @ means
    second = np.einsum("k,kij->ij", weights, covs + np.einsum("ki,kj->kij", means, means))
    return mu, second - np.outer(mu, mu)


def fit_gmm(x: np.ndarray, where: str, dims: np.ndarray, max_components: int, seed: int) -> Gmm:
    """The BIC-best full-covariance mixture with 1..max_components components over the rows of ``x`` (n, d)."""
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    best, best_bic = None, np.inf
    # one BLAS thread: these are tiny fits, and a thread pool per fit costs more than the fit on a busy machine
    with threadpool_limits(limits=1):
        for k in range(1, max(1, min(max_components, x.shape[0] // 10)) + 1):
            g = GaussianMixture(n_components=k, covariance_type="full", random_state=seed, n_init=1,
                                reg_covar=1e-6 * max(float(np.var(x, axis=0).max()), 1e-12)).fit(x)
            bic = float(g.bic(x))
            if bic < best_bic:
                best, best_bic = g, bic
    assert best is not None
    return Gmm(where, dims, best.weights_, best.means_, best.covariances_)


@dataclass(frozen=True)
class UncertaintyModel:
    """Per-hour mixtures of the forecast errors xi_t (d,) of the components ``names`` (group in ``group_of``)."""

    names: tuple[str, ...]  # (d,) profile names: the components of xi
    group_of: tuple[str, ...]  # (d,) "net_load" or "ev"
    gmms: dict[str, tuple[Gmm, ...]]  # group -> 24 mixtures (hour 0..23), dims index into that group's columns
    train_days: np.ndarray  # day-of-year indices
    heldout_days: np.ndarray
    errors: np.ndarray  # (days, 24, d) all days' errors (NaN where no forecast)

    @property
    def dim(self) -> int:
        return len(self.names)

    def _columns(self, group: str) -> np.ndarray:
        return np.array([i for i, g in enumerate(self.group_of) if g == group], dtype=np.int64)

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """(24, d) mean and (24, d, d) covariance of xi per hour (groups independent, block diagonal)."""
        mu, cov = np.zeros((HOURS, self.dim)), np.zeros((HOURS, self.dim, self.dim))
        for group, gmms in self.gmms.items():
            cols = self._columns(group)
            for t, g in enumerate(gmms):
                if g.dims.size:
                    m, c = g.moments()
                    idx = cols[g.dims]
                    mu[t, idx] = m
                    cov[t][np.ix_(idx, idx)] = c
        return mu, cov

    def sample(self, n: int, seed: int) -> np.ndarray:
        """(n, 24, d) Monte Carlo draws of a day's errors (hours and groups drawn independently)."""
        rng = np.random.default_rng(seed)
        out = np.zeros((n, HOURS, self.dim))
        for group, gmms in self.gmms.items():
            cols = self._columns(group)
            for t, g in enumerate(gmms):
                if g.dims.size:
                    out[:, t, cols[g.dims]] = g.sample(n, rng)
        return out

    def support_box(self, n_std: float) -> tuple[np.ndarray, np.ndarray]:
        """(24, d) lower and upper box corners of xi (deterministic components: 0)."""
        lo, hi = np.zeros((HOURS, self.dim)), np.zeros((HOURS, self.dim))
        for group, gmms in self.gmms.items():
            cols = self._columns(group)
            for t, g in enumerate(gmms):
                if g.dims.size:
                    lo[t, cols[g.dims]], hi[t, cols[g.dims]] = g.support_box(n_std)
        return lo, hi

    def heldout(self) -> np.ndarray:
        """(days, 24, d) the held-out real days' errors."""
        return self.errors[self.heldout_days]

    def training(self) -> np.ndarray:
        return self.errors[self.train_days]


def split_days(n_days: int, holdout_every: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) day indices: held out every ``holdout_every``-th day, the first LAG_DAYS dropped."""
    if holdout_every < 2:
        raise UncertaintyError(f"holdout_every={holdout_every!r} must be >= 2")
    days = np.arange(LAG_DAYS, n_days)
    held = days[(days + 1) % holdout_every == 0]
    return np.setdiff1d(days, held), held


def fit_uncertainty(series: dict[str, np.ndarray], groups: dict[str, Sequence[str]], *, holdout_every: int = 5,
                    max_components: int = 4, seed: int = 0, error_scale: float = 1.0) -> UncertaintyModel:
    """Forecast errors of each named year series, per-group per-hour GMMs on the training days.

    ``error_scale`` multiplies every error before the fit (and so the held-out days too): a forecaster better
    than the similar-day mean, whose errors have the same shape and ``error_scale`` times their size."""
    if not (np.isfinite(error_scale) and error_scale > 0):
        raise UncertaintyError(f"error_scale={error_scale!r} must be > 0")
    names: list[str] = []
    group_of: list[str] = []
    for g, members in groups.items():
        if g not in ("net_load", "ev"):
            raise UncertaintyError(f"uncertainty group {g!r} is unknown (known: net_load, ev)")
        for m in members:
            if m not in series:
                raise UncertaintyError(f"uncertainty group {g!r}: no series {m!r}")
            names.append(m)
            group_of.append(g)
    errs = [forecast_errors(n, series[n]) for n in names]
    n_days = {e.shape[0] for e in errs}
    if len(n_days) != 1:
        lengths = {n: e.shape[0] for n, e in zip(names, errs, strict=True)}
        raise UncertaintyError(f"uncertainty series have different lengths (days): {lengths}")
    errors = error_scale * np.stack(errs, axis=2)
    train, held = split_days(errors.shape[0], holdout_every)
    gmms: dict[str, tuple[Gmm, ...]] = {}
    for g in groups:
        cols = np.array([i for i, x in enumerate(group_of) if x == g], dtype=np.int64)
        per_hour = []
        for t in range(HOURS):
            x = errors[train][:, t][:, cols]
            active = np.flatnonzero(np.any(np.abs(x) > 0, axis=0))
            where = f"group {g!r}, hour {t}"
            if active.size:
                per_hour.append(fit_gmm(x[:, active], where, active, max_components, seed + t))
            else:
                per_hour.append(Gmm(where, active, np.ones(1), np.zeros((1, 0)), np.zeros((1, 0, 0))))
        gmms[g] = tuple(per_hour)
    return UncertaintyModel(tuple(names), tuple(group_of), gmms, train, held, errors)
