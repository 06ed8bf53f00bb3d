"""A neighbour's input-convex ReLU surrogate: its weights (what crosses between operators) and its LP
embedding inside an operator's own cvxpy problem.

s(x) = c + a.x + v.h with h >= W x + b, h >= 0 and v >= 0: minimising s over (x, h) gives the ReLU
network's value exactly (h = relu(W x + b) at the optimum, since v >= 0), so the embedding is an LP.
The weights are cvxpy Parameters, so a new surrogate is a new Parameter value, not a new problem (DPP).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cvxpy as cp
import numpy as np


@dataclass(frozen=True)
class SurrogateWeights:
    """s(x) = c + a.x + v.relu(W x + b), v >= 0, x in raw boundary units [MW], s in $."""

    w: np.ndarray  # (H, n)
    b: np.ndarray  # (H,)
    v: np.ndarray  # (H,) >= 0
    a: np.ndarray  # (n,)
    c: float

    def value(self, x: np.ndarray) -> np.ndarray:
        """s(x) for points x (m, n) or (n,)."""
        x = np.asarray(x, dtype=float)
        h = np.maximum(x @ self.w.T + self.b, 0.0)
        return self.c + x @ self.a + h @ self.v

    def gradient(self, x: np.ndarray) -> np.ndarray:
        """ds/dx for points x (m, n) or (n,) (a sub-gradient at kinks)."""
        x = np.asarray(x, dtype=float)
        active = (x @ self.w.T + self.b) > 0.0
        return self.a + (active * self.v) @ self.w

    def restrict(self, keep: np.ndarray, x_fixed: np.ndarray) -> SurrogateWeights:
        """The same function of the inputs ``keep`` (bool mask (n,)) with the others fixed at ``x_fixed`` (n,).

        Exact: W x = W_k x_k + W_o x_o folds W_o x_o into b, a_o . x_o into c. A subspace that may only
        move its own boundary entries needs no more than this; it is also all it learns of its neighbour.
        """
        keep = np.asarray(keep, dtype=bool)
        xo = np.asarray(x_fixed, dtype=float)[~keep]
        return SurrogateWeights(w=self.w[:, keep].copy(), b=self.b + self.w[:, ~keep] @ xo, v=self.v,
                                a=self.a[keep].copy(), c=self.c + float(self.a[~keep] @ xo))

    def nbytes(self) -> int:
        """Wire size of the float64 arrays."""
        return 8 * (self.w.size + self.b.size + self.v.size + self.a.size + 1)


#: a neighbour's surrogate as a subspace receives it: (its entries in the global boundary vector, weights)
SurrogateTerm = tuple[np.ndarray, SurrogateWeights]


def block_columns(hidden: int, n: int) -> np.ndarray | None:
    """The input each hidden unit reads in a per-input net of ``hidden`` units over ``n`` inputs (unit r reads
    input r // (hidden / n)), or None when ``hidden`` is not a multiple of ``n``."""
    if n == 0 or hidden % n:
        return None
    return np.repeat(np.arange(n), hidden // n)


def is_block(w: np.ndarray) -> bool:
    """Whether W (H, n) is a per-input net's (:func:`block_columns`; zero rows fit): the restriction of the
    period-by-period hub surrogates (``HourlyIcnn.restricted``) to one DSO's imports is one."""
    col = block_columns(*w.shape)
    if col is None:
        return False
    off = np.ones(w.shape, dtype=bool)
    off[np.arange(w.shape[0]), col] = False
    return not np.any(w[off])


def icnn_cost(x: cp.Expression, hidden: int, name: str, block: bool = False) -> tuple[
        cp.Expression, list[cp.Constraint], dict[str, Any]]:
    """c + a.x + v.h, h >= W x + b, h >= 0 (v >= 0): an input-convex ReLU net as LP constraints.

    ``block`` (W of :func:`is_block` shape): W is held as its (H,) entries, ``h >= w * x[col] + b``, instead of an
    (H, n) Parameter: the same LP, but cvxpy compiles an (H, n) Parameter times a Variable into an H n^2 tensor
    (at the hub's 96 x 24 per DSO, 2-3 s of the first round's Optimize), a vector one into H entries."""
    n = x.shape[0]
    col = block_columns(hidden, n) if block else None
    if block and col is None:
        raise ValueError(f"{name}: a per-input net needs hidden ({hidden}) a multiple of the inputs ({n})")
    p: dict[str, Any] = {"w": cp.Parameter(hidden if col is not None else (hidden, n), name=f"{name}.w"),
                         "b": cp.Parameter(hidden, name=f"{name}.b"),
                         "v": cp.Parameter(hidden, nonneg=True, name=f"{name}.v"),
                         "a": cp.Parameter(n, name=f"{name}.a"), "c": cp.Parameter(name=f"{name}.c")}
    h = cp.Variable(hidden, nonneg=True, name=f"{name}.h")
    if col is not None:
        p["columns"] = col
        pre = cp.multiply(p["w"], x[col]) + p["b"]
    else:
        pre = p["w"] @ x + p["b"]
    return p["c"] + p["a"] @ x + p["v"] @ h, [h >= pre], p


def set_icnn(params: dict[str, Any], weights: SurrogateWeights) -> None:
    """Copy surrogate weights (attributes w, b, v, a, c) into the Parameters (of a per-input embedding only
    weights of that shape: any other W is refused, never cut to it)."""
    w = np.asarray(weights.w)
    if "columns" in params:
        if not is_block(w):
            raise ValueError(f"{params['w'].name()}: W {w.shape} is not a per-input net's; it needs the dense "
                             "embedding")
        w = w[np.arange(w.shape[0]), params["columns"]]
    params["w"].value, params["b"].value = w, np.asarray(weights.b)
    params["v"].value = np.maximum(np.asarray(weights.v), 0.0)
    params["a"].value, params["c"].value = np.asarray(weights.a), float(weights.c)
