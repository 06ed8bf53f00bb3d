"""Representative days for the planning problem: K-medoids (PAM) over a year of SimBench profiles.

Each day of the profile year is the vector (load factor, PV capacity factor) over its 24 hours (48 numbers,
both dimensionless in [0, 1]); PAM picks K medoid days under Euclidean distance, and each scenario's weight is
its cluster's share of the days (``core.profiles.year_profile``; the bundled year is 2016, 366 days).
"""

from __future__ import annotations

import numpy as np

from core.case import CaseError
from core.profiles import year_profile
from dso.planning.kmedoids import Clustering, distance_matrix, pam
from dso.planning.storage import ScenarioDay


def day_features(load_profile: str, pv_profile: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features (D, 48), load (D, 24), pv (D, 24)) for every day of the profile year."""
    load, pv = year_profile(load_profile), year_profile(pv_profile)
    return np.hstack([load, pv]), load, pv


def representative_days(load_profile: str, pv_profile: str, k: int) -> tuple[list[ScenarioDay], Clustering]:
    """K medoid days with weights = cluster size / number of days; refuses K above the number of days."""
    x, load, pv = day_features(load_profile, pv_profile)
    n_days = x.shape[0]
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= n_days:
        raise CaseError(f"scenarios={k!r} must be an integer in 1..{n_days} (the days of the profile year)")
    cl = pam(distance_matrix(x), int(k))
    sizes = cl.sizes
    days = [ScenarioDay(day=int(m), load_factor=load[m].copy(), pv_factor=pv[m].copy(),
                        weight=float(sizes[j]) / n_days) for j, m in enumerate(cl.medoids)]
    return days, cl
