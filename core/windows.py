"""Plug-in window bookkeeping, shared by the aggregator (envelopes it builds) and the DSO (envelopes it
dispatches): one place for the flat, window-local layout.

A set of windows is given by ``start`` (E,) (first plugged-in period, 0..T-1) and ``dwell`` (E,)
(periods plugged in, 1..T). Every per-period quantity of a window is stored flat: entry ``offsets[e] + k``
is period ``(start[e] + k) % T`` of window ``e``, k = 0..dwell[e]-1 (a window may wrap past midnight).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def offsets(dwell: np.ndarray) -> np.ndarray:
    """(E + 1,) first flat entry of each window, and the total at the end."""
    return np.concatenate(([0], np.cumsum(np.asarray(dwell, dtype=np.int64)))).astype(np.int64)


def owner(dwell: np.ndarray) -> np.ndarray:
    """(W,) window index of every flat entry (W = sum dwell)."""
    d = np.asarray(dwell, dtype=np.int64)
    return np.repeat(np.arange(d.size, dtype=np.int64), d)


def local_index(dwell: np.ndarray) -> np.ndarray:
    """(W,) k = 0..dwell-1 of every flat entry within its window."""
    off = offsets(dwell)
    return np.arange(off[-1], dtype=np.int64) - off[owner(dwell)]


def periods(start: np.ndarray, dwell: np.ndarray, n_periods: int) -> np.ndarray:
    """(W,) calendar period (start + k) % T of every flat entry."""
    return (np.asarray(start, dtype=np.int64)[owner(dwell)] + local_index(dwell)) % n_periods


def cumsum_matrix(dwell: np.ndarray) -> sp.csr_matrix:
    """(W, W) sparse L: (L x)[k] = sum of x over the same window up to entry k."""
    k, off, own = local_index(dwell), offsets(dwell), owner(dwell)
    counts = k + 1  # row of entry (owner, k) has k + 1 ones
    rows = np.repeat(np.arange(k.size), counts)
    cols = np.repeat(off[own], counts) + (np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts))
    n = int(k.size)
    return sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))


def shift_matrix(dwell: np.ndarray) -> sp.csr_matrix:
    """(W, W) sparse S: (S x)[k] = x[k-1] within the same window, 0 at each window's first entry.

    ``e - S e = x`` is the recursion form of ``e = L x`` (two non-zeros a row instead of a dense triangle
    per window, which keeps the KKT system of an interior-point solver sparse)."""
    k = local_index(dwell)
    w = int(k.size)
    rows = np.flatnonzero(k > 0)
    return sp.csr_matrix((np.ones(rows.size), (rows, rows - 1)), shape=(w, w))


def period_map(start: np.ndarray, dwell: np.ndarray, n_periods: int, row_of_window: np.ndarray | None = None,
               n_rows: int = 1) -> sp.csr_matrix:
    """(n_rows * T, W) 0/1 map: row r * T + t sums the flat entries of windows in row r (``row_of_window``,
    e.g. their node or station; all in row 0 by default) that fall in period t."""
    t = periods(start, dwell, n_periods)
    row = np.zeros(t.size, dtype=np.int64) if row_of_window is None else np.asarray(row_of_window)[owner(dwell)]
    return sp.csr_matrix((np.ones(t.size), (row * n_periods + t, np.arange(t.size))),
                         shape=(n_rows * n_periods, t.size))


def layout(dwell: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(owner, local index, offsets) of the flat entries (``owner``, ``local_index``, ``offsets`` in one call)."""
    return owner(dwell), local_index(dwell), offsets(dwell)


def segment_cumsum(x: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Cumulative sum of flat ``x`` restarting at each window's first entry (``offsets`` from ``offsets()``)."""
    c = np.cumsum(x)
    base = np.concatenate(([0.0], c))[offsets[:-1]]
    return c - np.repeat(base, np.diff(offsets))
