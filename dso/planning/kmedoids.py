"""K-medoids by PAM (Kaufman & Rousseeuw, "Partitioning Around Medoids", 1990), and an exact MILP for checks.

PAM minimises the total distance of points to their nearest medoid, ``sum_i min_{m in M} D[i, m]``, over
medoid sets ``M`` (|M| = k) drawn from the points themselves. BUILD picks medoids greedily; SWAP then makes
the best medoid/non-medoid exchange while one lowers the cost, so the result is swap-optimal (no single
exchange improves it). That is a local optimum; ``kmedoids_milp`` gives the global one on small sets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Clustering:
    """``medoids`` (k,) point indices, ``labels`` (n,) index into ``medoids``, ``cost`` = sum of distances."""

    medoids: np.ndarray
    labels: np.ndarray
    cost: float

    @property
    def sizes(self) -> np.ndarray:
        """(k,) number of points per cluster (the scenario weights once divided by n)."""
        return np.bincount(self.labels, minlength=self.medoids.size)


def distance_matrix(x: np.ndarray) -> np.ndarray:
    """(n, n) Euclidean distances between the rows of ``x``."""
    sq = np.sum(x * x, axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * x @ x.T
    return np.sqrt(np.maximum(d2, 0.0))


def _check(d: np.ndarray, k: int) -> None:
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"distance matrix must be square, got shape {d.shape}")
    if not 1 <= k <= d.shape[0]:
        raise ValueError(f"k={k!r} must be in 1..{d.shape[0]} (the number of points)")


def _assign(d: np.ndarray, medoids: np.ndarray) -> Clustering:
    sub = d[:, medoids]
    labels = np.argmin(sub, axis=1)
    labels[medoids] = np.arange(medoids.size)  # a medoid belongs to its own cluster (ties at distance 0)
    return Clustering(medoids=medoids.copy(), labels=labels, cost=float(sub[np.arange(d.shape[0]), labels].sum()))


def pam(d: np.ndarray, k: int, max_swaps: int = 1000) -> Clustering:
    """PAM on a distance matrix ``d`` (n, n): BUILD, then best-improvement SWAP until no exchange helps."""
    _check(d, k)
    n = d.shape[0]
    medoids = [int(np.argmin(d.sum(axis=1)))]
    near = d[:, medoids[0]].copy()
    while len(medoids) < k:  # BUILD: the point that lowers the cost most
        gain = np.maximum(near[:, None] - d, 0.0).sum(axis=0)
        gain[medoids] = -np.inf
        m = int(np.argmax(gain))
        medoids.append(m)
        near = np.minimum(near, d[:, m])
    med = np.array(medoids, dtype=np.int64)
    for _ in range(max_swaps):  # SWAP: evaluate every (medoid out, point in) exchange, vectorised per medoid
        sub = d[:, med]
        order = np.argsort(sub, axis=1)
        d1 = sub[np.arange(n), order[:, 0]]
        d2 = sub[np.arange(n), order[:, 1]] if k > 1 else np.full(n, np.inf)
        best, best_delta = None, -1e-12 * max(1.0, float(d1.sum()))
        for j in range(k):
            # without medoid j each point goes to its nearest remaining medoid, or to the candidate h
            rest = np.where(order[:, 0] == j, d2, d1)
            delta = (np.minimum(rest[:, None], d) - d1[:, None]).sum(axis=0)
            delta[med] = np.inf
            h = int(np.argmin(delta))
            if delta[h] < best_delta:
                best, best_delta = (j, h), float(delta[h])
        if best is None:
            break
        med[best[0]] = best[1]
    order_sorted = np.sort(med)
    return _assign(d, order_sorted)


def kmedoids_milp(d: np.ndarray, k: int) -> Clustering:
    """The exact k-medoids optimum as a MILP (HiGHS through cvxpy): y_j = 1 if point j is a medoid,
    z_ij = 1 if point i is assigned to j; min sum D z, sum_j z_ij = 1, z_ij <= y_j, sum_j y_j = k."""
    import cvxpy as cp

    from core.errors import SolveError

    _check(d, k)
    n = d.shape[0]
    y = cp.Variable(n, boolean=True)
    z = cp.Variable((n, n), nonneg=True)  # integral at the optimum once y is (assignment to nearest medoid)
    prob = cp.Problem(cp.Minimize(cp.sum(cp.multiply(d, z))),
                      [cp.sum(z, axis=1) == 1, z <= np.ones((n, 1)) @ cp.reshape(y, (1, n), order="C"),
                       cp.sum(y) == k])
    prob.solve(solver=cp.HIGHS)
    if prob.status != cp.OPTIMAL or y.value is None:
        raise SolveError("k-medoids MILP did not reach optimality", str(prob.status))
    med = np.sort(np.flatnonzero(y.value > 0.5)).astype(np.int64)
    return _assign(d, med)
