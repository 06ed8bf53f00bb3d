"""The subspace contract: what a coordination strategy may ask of an operator, whether the operator runs
in this process, on a Ray actor or behind gRPC, and the base the boundary operators (TSO, DSO) build on.

A subspace owns a slice of the global boundary vector x (the DSOs' imports P (K, T) flattened row-major,
entry k * T + t): the TSO all of it, DSO k the entries ``k * T .. k * T + T - 1``. Strategies talk to a
subspace only through the calls below (``Evaluate``, ``Optimize``, ``Respond``, ``Prox``, ``Report``),
typed objects that an executor sends and the subspace's host applies; a strategy never asks which kind
of subspace (in-process, actor, remote stub, test problem) it holds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from core.errors import SolveError
from core.icnn import SurrogateTerm, icnn_cost, is_block, set_icnn
from core.solver import scalar, solve_or_raise, value

#: price of a boundary mismatch in an elastic evaluation [$/MWh]: far above any marginal cost, so that an
#: optimum never uses it while an infeasible trial point still returns a finite cost and gradient
ELASTIC_PENALTY_USD_PER_MWH = 1000.0

#: (boundary [MW] in the subspace's shape, the subspace's own cost [$]) — a price response or prox step
BoundaryStep = tuple[np.ndarray, float]


class BoundaryInputError(ValueError):
    """A boundary vector (import, price, target) of the wrong size or with non-finite entries."""


@dataclass(frozen=True)
class Evaluation:
    """An exact elastic evaluation at a boundary point."""

    cost_usd: float  # own cost + elastic penalty over the horizon [$]
    sensitivity_usd_per_mwh: np.ndarray  # d cost / d boundary / dt_h, in the subspace's boundary shape
    penalty_usd: float  # elastic mismatch cost included in cost_usd [$]
    mismatch_mw: float  # max |own boundary value - the point| [MW]
    dt_h: float
    #: (T,) the cost per period [$] (incl. its share of the penalty), for operators whose cost is a sum over
    #: periods (the TSO): one evaluation is then T samples of an hour-by-hour response surface
    hourly_cost_usd: np.ndarray | None = None

    @property
    def gradient(self) -> np.ndarray:
        """d cost_usd / d boundary, flattened [$/MW]."""
        return np.asarray(self.sensitivity_usd_per_mwh).reshape(-1) * self.dt_h


@dataclass(frozen=True)
class Proposal:
    """A subspace's optimum of its exact cost plus its neighbours' surrogates inside the move limits."""

    x: np.ndarray  # its own boundary slice [MW]
    predicted_usd: float  # own exact cost + the neighbours' surrogates at x [$]
    ok: bool = True  # False: no solution (x is then the centre's slice)
    #: its own exact cost at x [$] (no surrogate, no move-limit penalty): x is a point it can dispatch
    cost_usd: float = float("nan")
    #: d own cost / d x / dt_h at x [$/MWh] (its own slice, flattened)
    sensitivity_usd_per_mwh: np.ndarray | None = None


@dataclass(frozen=True)
class Columns:
    """For each slice subspace k: points it can dispatch (``points[k]`` (M, n_k), its own exact boundary
    values) and its exact cost at each (``costs[k]`` (M,) [$])."""

    points: tuple[np.ndarray, ...]
    costs: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class Merge:
    """The whole-boundary subspace's optimum over convex combinations of the others' points (see ``merge``)."""

    x: np.ndarray  # the merged boundary (n,) [MW]: slice k = sum_j theta[k][j] points[k][j]
    theta: tuple[np.ndarray, ...]  # (M,) weights per slice subspace
    bound_usd: float  # own exact cost at x + sum_k theta_k . costs_k: an upper bound on J(x) (convexity)
    evaluation: Evaluation  # its own cost, sensitivity and hourly costs at x (exact)


class Response(Protocol):
    """What the CSSO loop reads of an evaluation (``Evaluation``, or a test problem's response, which may also
    carry ``eq``/``ineq`` constraints on its slice with their Jacobians)."""

    @property
    def cost_usd(self) -> float: ...

    @property
    def gradient(self) -> np.ndarray: ...


class Subspace(Protocol):
    """The coordination interface of one operator (or of a test problem)."""

    name: str

    def evaluate_many(self, points: np.ndarray) -> Sequence[Response]:
        """An exact evaluation at each point (m, n_i) of its own boundary slice."""
        ...

    def optimize(self, others: Sequence[SurrogateTerm], center: np.ndarray, move: np.ndarray) -> Proposal:
        """min own cost + the others' surrogates over its own slice, |x_i - center_i| <= move_i."""
        ...

    def respond(self, price_usd_per_mwh: np.ndarray) -> BoundaryStep:
        """The boundary it would choose at a price (a buyer pays it, a seller earns it)."""
        ...

    def prox(self, target_mw: np.ndarray, rho: float) -> BoundaryStep:
        """argmin own cost + rho/2 |boundary - target|^2 [rho in $/MW^2]."""
        ...

    def report(self, boundary: np.ndarray) -> Any:
        """What the operator publishes about its dispatch at ``boundary`` at the end of a run."""
        ...

    def merge(self, columns: Columns) -> Merge:
        """(A subspace that sees the whole boundary) min own exact cost(x) + sum_k theta_k . costs_k over
        x_k = sum_j theta_kj points_kj, theta_k in the simplex: the others enter only through points they
        can dispatch and their exact costs there, so by convexity the optimum bounds J(x) from above."""
        ...


# --------------------------------------------------------------------------------------------------
# the calls a strategy sends (one round carries a list of them per subspace)


@dataclass(frozen=True)
class Evaluate:
    points: np.ndarray  # (m, n_i) or (n_i,)

    @property
    def solves(self) -> int:
        return int(np.atleast_2d(self.points).shape[0])

    def __call__(self, subspace: Subspace) -> list[Any]:
        return list(subspace.evaluate_many(np.atleast_2d(self.points)))


@dataclass(frozen=True)
class Optimize:
    others: tuple[SurrogateTerm, ...]
    center: np.ndarray
    move: np.ndarray

    def __call__(self, subspace: Subspace) -> Proposal:
        return subspace.optimize(list(self.others), self.center, self.move)


@dataclass(frozen=True)
class Respond:
    price_usd_per_mwh: np.ndarray

    def __call__(self, subspace: Subspace) -> BoundaryStep:
        return subspace.respond(self.price_usd_per_mwh)


@dataclass(frozen=True)
class Prox:
    target_mw: np.ndarray
    rho_usd_per_mw2: float

    def __call__(self, subspace: Subspace) -> BoundaryStep:
        return subspace.prox(self.target_mw, self.rho_usd_per_mw2)


@dataclass(frozen=True)
class Report:
    boundary_mw: np.ndarray

    def __call__(self, subspace: Subspace) -> Any:
        return subspace.report(self.boundary_mw)


@dataclass(frozen=True)
class MergeColumns:
    columns: Columns

    def __call__(self, subspace: Subspace) -> Merge:
        return subspace.merge(self.columns)


SubspaceCall = Evaluate | Optimize | Respond | Prox | Report | MergeColumns


def solves_of(call: object) -> int:
    """Subspace solves a call costs (an evaluation of m points is m solves; every other call one)."""
    return int(getattr(call, "solves", 1))


# --------------------------------------------------------------------------------------------------
# the base of the TSO and DSO subspaces


@dataclass
class CompiledProblem:
    """A subspace's cvxpy problem for one mode, compiled on its first solve, and its Parameters by name."""

    problem: cp.Problem
    params: dict[str, Any] = field(default_factory=dict)


class BoundarySubspace(ABC):
    """An operator coupled to the others through a boundary variable (TSO: P (K, T); DSO: its import (T,)).

    Built once around the operator's cvxpy model; every mode is a Problem compiled on its first solve and
    re-solved by changing Parameter values (DPP):

    - ``evaluate(P)``: elastic fixed boundary, ``boundary = P + s_up - s_down``, ``s >= 0`` priced at
      ``ELASTIC_PENALTY_USD_PER_MWH``: cost = own cost + penalty, d cost / d P from the dual.
    - ``optimize(others, center, move)``: exact model + the others' ICNN surrogates (LP constraints
      ``h >= W x + b, h >= 0``; weights as Parameters), own slice free within |x - center| <= move.
    - ``respond(price)``: min own cost + ``price_sign`` * dt * price . boundary (a DSO buys, the TSO sells).
    - ``prox(target, rho)``: min own cost + rho/2 |boundary - target|^2 (ADMM).
    """

    def __init__(self, name: str, label: str, boundary: cp.Expression, own_cost: cp.Expression,
                 constraints: Sequence[cp.Constraint], dt_h: float, index: np.ndarray, solver: str,
                 price_sign: float, prefix: str = "") -> None:
        self.name, self.label, self.solver, self.dt_h = name, label, solver, float(dt_h)
        self.boundary, self.own_cost, self.constraints = boundary, own_cost, list(constraints)
        self.shape: tuple[int, ...] = tuple(boundary.shape)
        self.size = int(np.prod(self.shape))
        self.index = np.asarray(index, dtype=int)
        if self.index.shape != (self.size,):
            raise BoundaryInputError(f"{label}: index has shape {self.index.shape}, expected ({self.size},)")
        self.price_sign, self.prefix = float(price_sign), prefix
        self.n_solves = 0
        self._problems: dict[str, CompiledProblem] = {}

    # -- helpers --------------------------------------------------------------------------------------
    def _solve(self, built: CompiledProblem, what: str) -> None:
        solve_or_raise(built.problem, self.solver, f"{self.label} {what}")
        self.n_solves += 1

    def _vector(self, what: str, value: np.ndarray) -> np.ndarray:
        arr = np.asarray(value, dtype=float)
        if arr.size != self.size or not np.all(np.isfinite(arr)):
            raise BoundaryInputError(f"{self.label}: {what} must be {self.size} finite values {self.shape}, "
                                     f"got {value!r}")
        return arr.reshape(self.shape)

    def _flat(self) -> cp.Expression:
        b = self.boundary
        return cp.reshape(b, (self.size,), order="C") if len(self.shape) > 1 else b

    def _elastic(self) -> CompiledProblem:
        if "elastic" not in self._problems:
            p = self.prefix
            target = cp.Parameter(self.shape, name=f"{p}boundary_target_mw")
            up = cp.Variable(self.shape, nonneg=True, name=f"{p}mismatch_up_mw")
            down = cp.Variable(self.shape, nonneg=True, name=f"{p}mismatch_down_mw")
            balance = self.boundary - up + down == target
            penalty = ELASTIC_PENALTY_USD_PER_MWH * self.dt_h * cp.sum(up + down)
            prob = cp.Problem(cp.Minimize(self.own_cost + penalty), [*self.constraints, balance])
            self._problems["elastic"] = CompiledProblem(prob, {"target": target, "balance": balance})
        return self._problems["elastic"]

    # -- the interface --------------------------------------------------------------------------------
    def evaluate(self, boundary: np.ndarray) -> Evaluation:
        """Elastic solve with the boundary fixed at ``boundary`` [MW] (own shape or flat)."""
        built = self._elastic()
        target = built.params["target"]
        target.value = self._vector("boundary", boundary)
        self._solve(built, "elastic evaluation")
        return self._elastic_evaluation(target.value, built.params["balance"])

    def _elastic_evaluation(self, target_mw: np.ndarray, balance: cp.Constraint) -> Evaluation:
        """The evaluation after an elastic solve whose ``balance`` reads boundary - up + down == target: own
        cost plus the penalty of the mismatch the dispatch has, |boundary - target| (an interior point leaves
        both slacks slightly positive, and the solver's objective prices their sum), d cost / d target from
        the dual."""
        dual = np.asarray(balance.dual_value, dtype=float)
        mismatch = np.abs(value(self.boundary) - target_mw)
        penalty = ELASTIC_PENALTY_USD_PER_MWH * self.dt_h * float(mismatch.sum())
        return Evaluation(cost_usd=scalar(self.own_cost) + penalty, sensitivity_usd_per_mwh=-dual / self.dt_h,
                          penalty_usd=penalty, mismatch_mw=float(mismatch.max()),
                          dt_h=self.dt_h, hourly_cost_usd=self._hourly_cost(mismatch_mwh=mismatch * self.dt_h))

    def _hourly_cost(self, mismatch_mwh: np.ndarray) -> np.ndarray | None:
        """(T,) own cost per period at the current solution incl. the elastic penalty on ``mismatch_mwh``
        (boundary shape), for operators whose cost is a sum over periods; None otherwise."""
        return None

    def evaluate_many(self, points: np.ndarray) -> list[Evaluation]:
        return [self.evaluate(p) for p in np.atleast_2d(points)]

    def optimize(self, others: Sequence[SurrogateTerm], center: np.ndarray, move: np.ndarray) -> Proposal:
        """min own cost + sum_j s_j(x[idx_j]) with x = ``center`` but this subspace's slice free, kept within
        |x_i - center_i| <= move_i (``center``, ``move``: the whole boundary vector (n,)).

        The move limit is soft (each MW beyond it is priced at ``ELASTIC_PENALTY_USD_PER_MWH``), so a centre
        this operator cannot dispatch near still gets a proposal: the nearest point it can dispatch. The
        proposal is always a point of its own feasible set (``cost_usd``: its exact cost there, with the
        sensitivity from the dual of ``own boundary == x``)."""
        n = np.asarray(center).size
        whole = self.size == n and bool(np.array_equal(self.index, np.arange(n)))
        # position of every surrogate input in this subspace's own slice (-1: another subspace's entry)
        slot = np.full(n, -1, dtype=np.int64)
        slot[self.index] = np.arange(self.size)
        local = not whole and all(bool(np.all(slot[np.asarray(i)] >= 0)) for i, _ in others)
        key = (f"optimize:{n}:{'local' if local else ''}:"
               + ",".join(f"{i.size}x{w.w.shape[0]}{'b' if is_block(w.w) else ''}" for i, w in others))
        if local:  # the layout is part of the compiled problem
            key += ":" + ";".join(",".join(map(str, slot[np.asarray(i)])) for i, _ in others)
        p = self.prefix
        if key not in self._problems:
            c = cp.Parameter(self.size, name=f"{p}center")
            mv = cp.Parameter(self.size, nonneg=True, name=f"{p}move")
            y = cp.Variable(self.size, name=f"{p}proposal_mw")  # the proposed slice, = own boundary
            beyond = cp.Variable(self.size, nonneg=True, name=f"{p}beyond_move_mw")
            link = self._flat() == y
            cons = [*self.constraints, link, cp.abs(y - c) <= mv + beyond]
            params: dict[str, Any] = {"center": c, "move": mv, "link": link}
            if whole or local:
                # every surrogate reads only this subspace's own entries (hub CSSO: the TSO's surface
                # restricted to them), so the rest of the boundary need not be in the problem at all
                x: cp.Expression = y
            else:
                # the others' entries as a Variable pinned to a Parameter: W @ x stays DPP (W and the pinned
                # values are both Parameters, so W @ (fixed + ...) would not be)
                fixed = cp.Parameter(n, name=f"{p}fixed_boundary")
                others_mw = cp.Variable(n, name=f"{p}others_boundary_mw")
                place = sp.csr_matrix((np.ones(self.size), (self.index, np.arange(self.size))), shape=(n, self.size))
                x = others_mw + place @ y
                cons.append(others_mw == fixed)
                params["fixed"] = fixed
            cost = self.own_cost + ELASTIC_PENALTY_USD_PER_MWH * self.dt_h * cp.sum(beyond)
            icnn = []
            for j, (idx, w) in enumerate(others):
                at = slot[np.asarray(idx)] if local else np.asarray(idx)
                s_j, extra, prm = icnn_cost(x[at], w.w.shape[0], f"{p}surrogate{j}", is_block(w.w))
                cost, cons = cost + s_j, cons + extra
                icnn.append(prm)
            params["icnn"] = icnn
            self._problems[key] = CompiledProblem(cp.Problem(cp.Minimize(cost), cons), params)
        built = self._problems[key]
        for prm, (_, w) in zip(built.params["icnn"], others, strict=True):
            set_icnn(prm, w)
        center = np.asarray(center, dtype=float)
        if not (whole or local):
            fixed_value = center.copy()
            fixed_value[self.index] = 0.0
            built.params["fixed"].value = fixed_value
        built.params["center"].value = center[self.index]
        built.params["move"].value = np.asarray(move, dtype=float)[self.index]
        try:
            self._solve(built, "subspace optimisation")
        except SolveError:  # no solution at all (a numerical failure): no proposal
            return Proposal(x=center[self.index], predicted_usd=float("nan"), ok=False)
        dual = np.asarray(built.params["link"].dual_value, dtype=float).reshape(-1)
        return Proposal(x=np.asarray(self.boundary.value, dtype=float).reshape(-1),
                        predicted_usd=float(built.problem.value), cost_usd=scalar(self.own_cost),
                        sensitivity_usd_per_mwh=-dual / self.dt_h)

    def respond(self, price_usd_per_mwh: np.ndarray) -> BoundaryStep:
        """Price mode: argmin own cost + price_sign * dt * price . boundary; returns (boundary, own cost $)."""
        if "price" not in self._problems:
            price = cp.Parameter(self.shape, name=f"{self.prefix}price_usd_per_mwh")
            obj = self.own_cost + self.price_sign * self.dt_h * cp.sum(cp.multiply(price, self.boundary))
            self._problems["price"] = CompiledProblem(cp.Problem(cp.Minimize(obj), self.constraints), {"price": price})
        built = self._problems["price"]
        built.params["price"].value = self._vector("price_usd_per_mwh", price_usd_per_mwh)
        self._solve(built, "price response")
        return np.asarray(self.boundary.value, dtype=float), scalar(self.own_cost)

    def prox(self, target_mw: np.ndarray, rho: float) -> BoundaryStep:
        """ADMM step: argmin own cost + rho/2 |boundary - target|^2; returns (boundary, own cost $)."""
        if "prox" not in self._problems:
            target = cp.Parameter(self.shape, name=f"{self.prefix}rho_times_target_usd_per_mw")
            r = cp.Parameter(nonneg=True, name=f"{self.prefix}rho")
            # rho/2 |p - t|^2 = rho/2 |p|^2 - (rho t) . p + const; rho * t as its own Parameter keeps DPP
            obj = self.own_cost + (0.5 * r * cp.sum_squares(self.boundary)
                                   - cp.sum(cp.multiply(target, self.boundary)))
            self._problems["prox"] = CompiledProblem(cp.Problem(cp.Minimize(obj), self.constraints),
                                            {"target": target, "rho": r})
        built = self._problems["prox"]
        built.params["target"].value = float(rho) * self._vector("prox target", target_mw)
        built.params["rho"].value = float(rho)
        self._solve(built, "ADMM proximal step")
        return np.asarray(self.boundary.value, dtype=float), scalar(self.own_cost)

    @abstractmethod
    def report(self, boundary: np.ndarray) -> Any:
        """What the operator publishes about its dispatch at ``boundary``."""

    def merge(self, columns: Columns) -> Merge:
        raise NotImplementedError(f"{self.label} sees only its own slice of the boundary: it does not merge")
