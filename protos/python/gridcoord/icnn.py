"""A neighbour's input-convex ReLU surrogate inside an operator's own cvxpy problem.

s(x) = c + a.x + v.h with h >= W x + b, h >= 0 and v >= 0: minimising s over (x, h) gives the ReLU
network's value exactly (h = relu(W x + b) at the optimum, since v >= 0), so the embedding is an LP.
The weights are cvxpy Parameters, so a new surrogate is a new Parameter value, not a new problem (DPP).
"""

from __future__ import annotations

from typing import Any

import cvxpy as cp
import numpy as np


def icnn_cost(x: cp.Expression, hidden: int, name: str) -> tuple[cp.Expression, list[cp.Constraint],
                                                                   dict[str, cp.Parameter]]:
    """c + a.x + v.h, h >= W x + b, h >= 0 (v >= 0): an input-convex ReLU net as LP constraints."""
    n = x.shape[0]
    p = {"w": cp.Parameter((hidden, n), name=f"{name}.w"), "b": cp.Parameter(hidden, name=f"{name}.b"),
         "v": cp.Parameter(hidden, nonneg=True, name=f"{name}.v"), "a": cp.Parameter(n, name=f"{name}.a"),
         "c": cp.Parameter(name=f"{name}.c")}
    h = cp.Variable(hidden, nonneg=True, name=f"{name}.h")
    return p["c"] + p["a"] @ x + p["v"] @ h, [h >= p["w"] @ x + p["b"]], p


def set_icnn(params: dict[str, cp.Parameter], weights: Any) -> None:
    """Copy surrogate weights (attributes w, b, v, a, c) into the Parameters."""
    params["w"].value, params["b"].value = np.asarray(weights.w), np.asarray(weights.b)
    params["v"].value = np.maximum(np.asarray(weights.v), 0.0)
    params["a"].value, params["c"].value = np.asarray(weights.a), float(weights.c)
