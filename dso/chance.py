"""Distributionally robust joint chance constraints on a feeder's dispatch, with reserves and affine recourse.

Uncertainty: per hour t the forecast errors xi_t (d,) of the feeder's load, PV, wind and EV-charging profiles
(``dso.uncertainty``: GMMs per hour; here only their moments mu_t, Sigma_t, a support box and samples enter).
The nodal net withdrawal deviates by ``a_p @ xi_t`` [MW] (``a_q @ xi_t`` [MVAr]); the total deviation
Delta_t = s^T xi_t (s = column sums of a_p) is balanced by the reserve providers — the microturbines and
the EV stations — each taking the share alpha_j of Delta_t (affine recourse), so that the import from the
TSO stays at its schedule. The participation factors alpha_j are FIXED (each provider's share of the
reserve capacity in each hour: microturbine p_max - p_min, a station's plugged-in charge + discharge power
capped by its connection limit), not decisions: with alpha fixed
every deviation below is a constant linear map of xi, each individual chance constraint is linear in the
dispatch, and the risk allocation stays convex (with alpha as decisions the standard deviation is a norm
of a decision-dependent vector and the risk split becomes bilinear — the paper's MIQP).

Constraints of hour t (the joint set J_t), each ``g_i(x) + c_i^T xi_t <= b_i`` with c_i (d,) constant:
voltage max and min at every node but the substation (LinDistFlow sensitivities of w = |V|^2 around the
DistFlow nominal: dw = -2 (R dP + X dQ), R, X the shared-path resistance / reactance matrices), active
branch flow |P_b| <= S_b = sqrt(3) V_base I_max,b on the branches with a thermal limit (the reactive flow
stays inside the deterministic current limit at the nominal point), and reserve sufficiency
Delta_t <= R_up,t, -Delta_t <= R_down,t. Each provider's reserve alpha_j R is deliverable (hard headroom:
p + alpha_j R_up <= p_max, p - alpha_j R_down >= p_min; a station's up-reserve <= its charging + discharge
headroom, down-reserve <= its charging headroom). Loss changes and the energy of deployed EV reserve are not
modelled (the substation absorbs the former; the latter is small against the day's charging).

Individual DR chance constraints on the moment ambiguity set (all distributions with mean mu, covariance
Sigma): inf_P P(g + c^T xi <= b) >= 1 - eps_i  <=>  g + c^T mu + kappa(eps_i) ||Sigma^1/2 c|| <= b with
kappa(e) = sqrt((1 - e) / e) (Calafiore & El Ghaoui, "On distributionally robust chance-constrained linear
programs", JOTA 130(1), 2006, DOI 10.1007/s10957-006-9084-x). Joint over J_t by Bonferroni: sum_i eps_i <= eps
(P(any violated) <= sum P(i violated)).

Methods (``CHANCE_METHODS``):
- ``bonferroni``: eps_i = eps / |J_t| fixed (equal split over the constraints with uncertainty);
- ``oba`` (optimised Bonferroni approximation; Xie, Ahmed, Jiang, "Optimized Bonferroni approximations of
  distributionally robust joint chance constraints", Math. Programming 191, 2022, DOI
  10.1007/s10107-019-01442-8): the eps_i are decisions. A convex reformulation instead of the paper's MIQP:
  with sigma_i = ||Sigma^1/2 c_i|| a constant (fixed alpha) the constraint is g + c^T mu + sigma_i u_i <= b,
  and the margin factor u_i is the decision: risk eps_i = u_i^-2, budget sum_i u_i^-2 <= eps per hour
  (u^-2 is convex for u > 0, so the set is convex; DCP in cvxpy, one power cone per uncertain row).
  Safety: kappa(e) = sqrt((1 - e) / e) <= e^-1/2 for every e in (0, 1), so u_i = eps_i^-1/2 >= kappa(eps_i)
  and every feasible point meets the exact DR constraint at risk eps_i (``ChanceResult.kappa_exact_ok``
  re-checks it at the solution). The price of the bound: the margin is 1/sqrt(1 - eps_i) times the exact
  one, <= 2.6 % at eps_i <= 0.05 (``ChanceLayer.kappa_gap``). (kappa itself is convex only for e < 0.75;
  the bound e^-1/2 is convex everywhere, so this form needs no restriction on eps.)
- ``ro``: the constraint for every xi in a box over the fitted support (mixture-component means -/+ n std):
  g + c^T m + |c|^T h <= b (m, h the box centre and half-width);
- ``so``: sample average over scenarios drawn from the GMMs: constraints in expectation (g + mean_s c^T xi_s
  <= b for voltages and flows) and reserves equal to the sample mean of the positive / negative part of the
  deviation. Cheapest, no reliability guarantee.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from core import windows
from core.case import CHANCE_METHODS
from core.solver import solve_problem, value
from dso.model import S_BASE_MVA, FeederModel
from dso.network import FeederData

__all__ = ["CHANCE_METHODS", "ChanceError", "ChanceInputs", "ChanceLayer", "ChanceResult",
           "add_chance_constraints", "check_dispatch", "deviation_maps", "kappa", "smallest_budget"]

#: smallest individual risk of the fixed splits (kappa is evaluated at max(eps_i, EPS_MIN))
EPS_MIN = 1e-12
#: a constraint whose standard deviation is below this (in its own unit) is deterministic
SIGMA_TOL = 1e-9
GROUPS = ("voltage", "flow", "reserve")


class ChanceError(ValueError):
    """Bad chance-constraint inputs; the message names the field and the value."""


def check_eps(eps: float, where: str = "eps") -> float:
    """eps as a float in (0, 1); ``ChanceError`` naming it otherwise."""
    if isinstance(eps, bool) or not isinstance(eps, int | float | np.floating) or not 0.0 < float(eps) < 1.0:
        raise ChanceError(f"{where}={eps!r} must be a number in (0, 1)")
    return float(eps)


def kappa(eps: np.ndarray | float) -> np.ndarray:
    """sqrt((1 - eps) / eps), the DR moment-set safety factor; eps in (0, 1)."""
    e = np.asarray(eps, dtype=float)
    if np.any(~(e > 0) | ~(e < 1)):
        bad = e[~(e > 0) | ~(e < 1)].reshape(-1)[0]
        raise ChanceError(f"eps={float(bad)!r} must be in (0, 1)")
    return np.sqrt((1.0 - e) / e)


@dataclass(frozen=True)
class ChanceInputs:
    """Everything the chance layer needs beyond the deterministic feeder inputs (arrays per hour t)."""

    method: str
    eps: float
    names: tuple[str, ...]  # (d,) components of xi
    xi_mean: np.ndarray  # (T, d)
    xi_cov: np.ndarray  # (T, d, d)
    box_lo: np.ndarray  # (T, d) "ro" box
    box_hi: np.ndarray  # (T, d)
    so_xi: np.ndarray  # (S, T, d) "so" scenarios
    a_p_mw: np.ndarray  # (N, d) nodal withdrawal deviation per unit of xi [MW]
    a_q_mvar: np.ndarray  # (N, d)
    reserve_up_usd_per_mw_h: float
    reserve_down_usd_per_mw_h: float
    #: (U,) node index of each reserve provider: microturbines first (model order), then EV stations
    provider_node_idx: np.ndarray
    provider_alpha: np.ndarray  # (U, T) fixed participation factors, sum 1 in every hour
    provider_kind: tuple[str, ...]  # (U,) "mt" or "ev"
    flow_limit_mw: np.ndarray  # (B,) |P_b| limit [MW], inf = none
    #: the fitted error model (``dso.uncertainty.UncertaintyModel``) the DSO checks its dispatch against out of
    #: sample (``check_dispatch``: Monte Carlo days and the held-out days); None: no check
    uncertainty: Any = field(default=None, repr=False, compare=False)
    mc_samples: int = 10000  # Monte Carlo days of that check
    mc_seed: int = 2

    def __post_init__(self) -> None:
        if self.method not in CHANCE_METHODS:
            raise ChanceError(f"method={self.method!r} is unknown (known: {', '.join(CHANCE_METHODS)})")
        check_eps(self.eps)
        t, d = np.shape(self.xi_mean)
        n = np.shape(self.a_p_mw)[0]
        shapes = {"xi_cov": (t, d, d), "box_lo": (t, d), "box_hi": (t, d), "a_p_mw": (n, d), "a_q_mvar": (n, d)}
        for name, shape in shapes.items():
            if np.shape(getattr(self, name)) != shape:
                raise ChanceError(f"{name} has shape {np.shape(getattr(self, name))}, expected {shape}")
        for name in ("xi_mean", "xi_cov", "box_lo", "box_hi", "so_xi", "a_p_mw", "a_q_mvar"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise ChanceError(f"{name} has non-finite entries")
        for h in range(t):
            c = self.xi_cov[h]
            if np.linalg.eigvalsh(0.5 * (c + c.T)).min() < -1e-9 * max(1.0, float(np.abs(c).max())):
                raise ChanceError(f"xi_cov of hour {h} is not positive semidefinite")
        alpha = np.asarray(self.provider_alpha, dtype=float)
        if not alpha.size:
            raise ChanceError("no reserve provider (microturbine or EV station): the deviations cannot be balanced")
        if alpha.shape != (len(self.provider_kind), t) or np.any(alpha < 0) or np.any(
                np.abs(alpha.sum(axis=0) - 1.0) > 1e-9):
            raise ChanceError(f"provider_alpha (shape {alpha.shape}) must be (U, T), >= 0, each hour summing to 1")

    @property
    def n_periods(self) -> int:
        return int(self.xi_mean.shape[0])

    def attach(self, model: FeederModel) -> ChanceLayer:
        """Add this chance layer to ``model`` (``build_feeder_model`` calls it when the inputs carry one)."""
        return add_chance_constraints(model)


@dataclass(frozen=True)
class DeviationMaps:
    """Constant maps xi -> deviations after recourse (LinDistFlow sensitivities)."""

    total: np.ndarray  # (d,) Delta = total @ xi [MW]
    node_p: np.ndarray  # (T, N, d) nodal net withdrawal deviation after recourse [MW]
    node_q: np.ndarray  # (N, d) [MVAr]
    flow_p: np.ndarray  # (T, B, d) branch active flow deviation [MW]
    w: np.ndarray  # (T, N, d) deviation of w = |V|^2 [p.u.^2]


def path_matrix(data: FeederData, taps: bool = False) -> np.ndarray:
    """(N, B): branch b lies on the path from the substation to node n (branches are in BFS order); 0/1, or with
    ``taps`` the factor by which b's drop of w = |V|^2 reaches n: the product of a^2 over the fixed taps on the
    path below b (an ideal transformer at a branch's sending end scales w_parent by a^2, ``dso.model``)."""
    pm = np.zeros((data.n_nodes, data.n_branches))
    a2 = data.taps**2 if taps else np.ones(data.n_branches)
    for b in range(data.n_branches):
        f, t = int(data.from_idx[b]), int(data.to_idx[b])
        pm[t] = a2[b] * pm[f]
        pm[t, b] = 1.0
    return pm


def deviation_maps(data: FeederData, ch: ChanceInputs) -> DeviationMaps:
    z_base = data.base_kv**2 / S_BASE_MVA
    total = ch.a_p_mw.sum(axis=0)
    t = ch.n_periods
    node_p = np.repeat(ch.a_p_mw[None], t, axis=0)
    g = np.zeros((ch.provider_node_idx.size, data.n_nodes))
    g[np.arange(ch.provider_node_idx.size), ch.provider_node_idx] = 1.0
    node_p -= np.einsum("un,ut,d->tnd", g, ch.provider_alpha, total)
    pm = path_matrix(data)
    flow_p = np.einsum("nb,tnd->tbd", pm, node_p)
    flow_q = pm.T @ ch.a_q_mvar
    r, x = data.r_ohm / z_base, data.x_ohm / z_base
    drop = r[None, :, None] * flow_p + (x[:, None] * flow_q)[None]  # (T, B, d)
    w = -2.0 * np.einsum("nb,tbd->tnd", path_matrix(data, taps=True), drop) / S_BASE_MVA
    return DeviationMaps(total, node_p, ch.a_q_mvar, flow_p, w)


@dataclass(frozen=True)
class ConstraintRows:
    """The joint set J_t: row i is g_i(x)[t] + coef[i] @ xi_t <= limit[i]."""

    coef: np.ndarray  # (I, T, d)
    limit: np.ndarray  # (I,)
    group: np.ndarray  # (I,) index into GROUPS
    label: tuple[str, ...]  # (I,) e.g. "v_max@18", "flow+@1-2", "reserve_up"


def constraint_rows(data: FeederData, ch: ChanceInputs, maps: DeviationMaps, v_min_pu: float,
                    v_max_pu: float) -> ConstraintRows:
    nodes = np.arange(1, data.n_nodes)
    limited = np.flatnonzero(np.isfinite(ch.flow_limit_mw))
    t = ch.n_periods
    tot = np.broadcast_to(maps.total, (1, t, maps.total.size))
    w, fl = maps.w.transpose(1, 0, 2), maps.flow_p.transpose(1, 0, 2)
    coef = [w[nodes], -w[nodes], fl[limited], -fl[limited], tot, -tot]
    limit = [np.full(nodes.size, v_max_pu**2), np.full(nodes.size, -(v_min_pu**2)), ch.flow_limit_mw[limited],
             ch.flow_limit_mw[limited], np.zeros(1), np.zeros(1)]
    group = [np.zeros(2 * nodes.size, dtype=np.int64), np.ones(2 * limited.size, dtype=np.int64),
             np.full(2, 2, dtype=np.int64)]
    label = ([f"v_max@{k + 1}" for k in nodes] + [f"v_min@{k + 1}" for k in nodes]
             + [f"flow+@{data.branch_label(int(b))}" for b in limited]
             + [f"flow-@{data.branch_label(int(b))}" for b in limited] + ["reserve_up", "reserve_down"])
    return ConstraintRows(np.concatenate(coef, axis=0), np.concatenate(limit), np.concatenate(group), tuple(label))


def row_moments(rows: ConstraintRows, ch: ChanceInputs) -> tuple[np.ndarray, np.ndarray]:
    """(I, T) mean and standard deviation of coef_i @ xi_t."""
    mu = np.einsum("itd,td->it", rows.coef, ch.xi_mean)
    var = np.einsum("itd,tde,ite->it", rows.coef, ch.xi_cov, rows.coef)
    return mu, np.sqrt(np.maximum(var, 0.0))


@dataclass
class ChanceLayer:
    """What the chance constraints added to a feeder model (kept for extraction and evaluation)."""

    inputs: ChanceInputs
    maps: DeviationMaps
    rows: ConstraintRows
    reserve_up_mw: cp.Variable  # (T,)
    reserve_down_mw: cp.Variable  # (T,)
    #: (I, T) nominal g_i(x)[t] (an expression of the model's variables)
    nominal: cp.Expression
    #: (I, T) the tightening used (constant, or an expression for oba)
    shift: cp.Expression | np.ndarray
    eps_alloc: np.ndarray | None  # bonferroni: (I, T) the fixed split (oba: u^-2, see ``extract``)
    uncertain: np.ndarray  # (K, 2) (row, hour) pairs with sigma > 0
    sigma: np.ndarray  # (I, T)
    mean: np.ndarray  # (I, T)
    kappa_gap: float = 0.0  # oba: max relative excess of the margin e^-1/2 over kappa(e), 1/sqrt(1 - eps) - 1
    u: cp.Variable | None = field(default=None, repr=False)


def _uncertain_pairs(sigma: np.ndarray) -> np.ndarray:
    return np.argwhere(sigma > SIGMA_TOL)


def add_chance_constraints(model: FeederModel) -> ChanceLayer:
    """Add reserves, recourse headroom and the joint chance constraints of ``model.inputs.chance`` to ``model``
    (constraints ``chance.*``, cost term ``reserve``); returns the layer, also stored as ``model.chance``."""
    inp = model.inputs
    ch: ChanceInputs = inp.chance
    data = model.data
    t = inp.n_periods
    if ch.n_periods != t:
        raise ChanceError(f"feeder '{data.name}': chance inputs have {ch.n_periods} hours, the dispatch {t} periods")
    if ch.a_p_mw.shape[0] != data.n_nodes:
        raise ChanceError(f"feeder '{data.name}': a_p_mw has {ch.a_p_mw.shape[0]} nodes, the feeder {data.n_nodes}")
    name = data.name
    maps = deviation_maps(data, ch)
    rows = constraint_rows(data, ch, maps, inp.v_min_pu, inp.v_max_pu)
    r_up = cp.Variable(t, nonneg=True, name=f"{name}.reserve_up_mw")
    r_dn = cp.Variable(t, nonneg=True, name=f"{name}.reserve_down_mw")
    model.variables |= {"reserve_up_mw": r_up, "reserve_down_mw": r_dn}
    cons = model.constraints
    # nominal g_i(x): w at nodes 1.., P at limited branches, -R
    w, p_br = model.variables["w_node"], model.variables["p_branch"]
    limited = np.flatnonzero(np.isfinite(ch.flow_limit_mw))
    parts: list[cp.Expression] = [w[1:, :], -w[1:, :]]
    if limited.size:
        parts += [p_br[limited, :], -p_br[limited, :]]
    parts += [cp.reshape(-r_up, (1, t), order="C"), cp.reshape(-r_dn, (1, t), order="C")]
    nominal = cp.vstack(parts)
    mean, sigma = row_moments(rows, ch)
    limit = rows.limit[:, None] * np.ones((1, t))
    pairs = _uncertain_pairs(sigma)
    layer = ChanceLayer(ch, maps, rows, r_up, r_dn, nominal, np.zeros_like(mean), None, pairs, sigma, mean)
    if ch.method == "bonferroni":
        n_t = np.maximum((sigma > SIGMA_TOL).sum(axis=0), 1)
        e = np.broadcast_to(ch.eps / n_t, sigma.shape).copy()
        layer.eps_alloc = np.where(sigma > SIGMA_TOL, e, 0.0)
        layer.shift = mean + sigma * np.where(sigma > SIGMA_TOL, kappa(np.clip(e, EPS_MIN, 0.999999)), 0.0)
        cons["chance.joint"] = nominal + layer.shift <= limit
    elif ch.method == "oba":
        # u_i = eps_i^(-1/2) >= kappa(eps_i): margin sigma_i u_i, risk eps_i = u_i^-2 (convex), budget per hour
        k = pairs.shape[0]
        u = cp.Variable(k, name=f"{name}.risk_margin")
        layer.u = u
        e_expr = cp.power(u, -2)
        layer.eps_alloc = None
        cons["chance.margin_min"] = u >= 1.0 / np.sqrt(ch.eps)
        flat = pairs[:, 0] * t + pairs[:, 1]
        n_flat = rows.coef.shape[0] * t
        scatter = sp.csr_matrix((sigma[pairs[:, 0], pairs[:, 1]], (flat, np.arange(k))), shape=(n_flat, k))
        shift = cp.reshape(scatter @ u, (rows.coef.shape[0], t), order="C") + mean
        layer.shift = shift
        hour_sum = sp.csr_matrix((np.ones(k), (pairs[:, 1], np.arange(k))), shape=(t, k))
        cons["chance.budget"] = hour_sum @ e_expr <= ch.eps
        cons["chance.joint"] = nominal + shift <= limit
        layer.kappa_gap = float(1.0 / np.sqrt(1.0 - ch.eps) - 1.0)
    elif ch.method == "ro":
        mid, half = 0.5 * (ch.box_hi + ch.box_lo), 0.5 * (ch.box_hi - ch.box_lo)
        layer.shift = np.einsum("itd,td->it", rows.coef, mid) + np.einsum("itd,td->it", np.abs(rows.coef), half)
        cons["chance.joint"] = nominal + layer.shift <= limit
    else:  # so
        dev = np.einsum("itd,std->sit", rows.coef, ch.so_xi)  # (S, I, T)
        shift = dev.mean(axis=0)
        res = rows.group == GROUPS.index("reserve")
        shift[res] = np.maximum(dev[:, res], 0.0).mean(axis=0)
        layer.shift = shift
        cons["chance.joint"] = nominal + shift <= limit
    _headroom(model, layer)
    dt = inp.dt_h
    model.cost_terms["reserve"] = dt * (ch.reserve_up_usd_per_mw_h * cp.sum(r_up)
                                        + ch.reserve_down_usd_per_mw_h * cp.sum(r_dn))
    model.chance = layer
    return layer


def smallest_budget(model: FeederModel, solver: str = "CLARABEL") -> dict[str, Any]:
    """Why an ``oba`` dispatch is infeasible: the smallest per-hour risk budget z at which it is feasible.

    Solves min max_t z_t over the model's constraints with ``chance.budget`` replaced by sum_i u_i^-2 <= z_t
    (and u_i >= 1 instead of u_i >= eps^-1/2; cost ignored). Returns z (max over hours), and for the hour that
    needs it most the risk each group uses, its rows, how many of them need a share above 1e-4, the median
    margin u [std] of its rows and the largest shares (row label, eps_i, u_i). When it cannot be solved, only
    ``status`` (cvxpy's, or "solver_error" with the solver's ``message``)."""
    layer = model.chance
    if layer is None or layer.u is None:
        raise ChanceError(f"feeder '{model.data.name}': smallest_budget needs an oba chance layer")
    t = layer.inputs.n_periods
    k = layer.uncertain.shape[0]
    hours = layer.uncertain[:, 1]
    z = cp.Variable(t, name="risk_budget")
    hour_sum = sp.csr_matrix((np.ones(k), (hours, np.arange(k))), shape=(t, k))
    cons = [c for name, c in model.constraints.items() if name not in ("chance.budget", "chance.margin_min")]
    cons += [hour_sum @ cp.power(layer.u, -2) <= z, layer.u >= 1.0]
    prob = cp.Problem(cp.Minimize(cp.max(z)), cons)
    try:  # the operators' solve (core.solver): a stalled solve is retried, optimal_inaccurate is not accepted
        status = solve_problem(prob, solver)
    except cp.error.SolverError as exc:  # a numerical failure is a result to report, not a crash
        return {"status": "solver_error", "message": str(exc)}
    if status != cp.OPTIMAL:
        return {"status": status}
    u = value(layer.u)
    e = u**-2.0
    zt = value(z)
    worst = int(np.argmax(zt))
    grp = layer.rows.group[layer.uncertain[:, 0]]
    groups = {}
    for g, name in enumerate(GROUPS):
        sel = (grp == g) & (hours == worst)
        groups[name] = {"rows": int(sel.sum()), "risk": float(e[sel].sum()),
                        "rows_above_1e-4": int((e[sel] > 1e-4).sum()),
                        "median_margin_std": float(np.median(u[sel])) if sel.any() else None}
    at = np.flatnonzero(hours == worst)
    top = at[np.argsort(-e[at])[:5]]
    return {"status": str(prob.status), "eps_needed": float(zt.max()), "hour": worst, "groups": groups,
            "largest": [(layer.rows.label[int(layer.uncertain[i, 0])], float(e[i]), float(u[i])) for i in top]}


def _headroom(model: FeederModel, layer: ChanceLayer) -> None:
    """Each provider can deliver its share alpha_j of the reserves (hard constraints)."""
    ch, inp, cons = layer.inputs, model.inputs, model.constraints
    t = inp.n_periods
    ones = np.ones((1, t))
    r_up = cp.reshape(layer.reserve_up_mw, (1, t), order="C")
    r_dn = cp.reshape(layer.reserve_down_mw, (1, t), order="C")
    kinds = np.array(ch.provider_kind)
    mt = np.flatnonzero(kinds == "mt")
    if mt.size:
        p = model.variables["mt_p_mw"]
        a = ch.provider_alpha[mt]
        one = np.ones((mt.size, 1))
        cons["chance.mt_up"] = p + cp.multiply(a, one @ r_up) <= inp.mt_p_max_mw[:, None] * ones
        cons["chance.mt_down"] = p - cp.multiply(a, one @ r_dn) >= inp.mt_p_min_mw[:, None] * ones
    evs = np.flatnonzero(kinds == "ev")
    if evs.size:
        ev = inp.ev
        if ev.station_idx is None or ev.station_p_max_mw is None or not ev.n_window:
            raise ChanceError(f"feeder '{model.data.name}': EV reserve providers need EV envelopes with stations")
        if ev.shared_envelopes.size:
            raise ChanceError(f"feeder '{model.data.name}': the chance model needs temporal-only EV envelopes "
                              "(evs.reach: 1): shared (spatial) envelopes scale their headroom by a decision")
        n_st = ev.station_p_max_mw.shape[0]
        st_map = windows.period_map(ev.start, ev.dwell, t, ev.station_idx, n_st)  # (S*T, W)
        p_ch = model.variables["ev_p_ch_mw"]
        v2g = ev.v2g_entries
        w_len = ev.n_window
        to_full = sp.csr_matrix((np.ones(v2g.size), (v2g, np.arange(v2g.size))), shape=(w_len, v2g.size))
        p_dis = to_full @ model.variables["ev_p_dis_mw"]
        up = cp.reshape(st_map @ (p_ch + ev.p_dis_max_mw - p_dis), (n_st, t), order="C")
        dn = cp.reshape(st_map @ (ev.p_ch_max_mw - p_ch), (n_st, t), order="C")
        a = np.zeros((n_st, t))
        a[np.arange(evs.size)] = ch.provider_alpha[evs]
        one = np.ones((n_st, 1))
        cons["chance.ev_up"] = cp.multiply(a, one @ r_up) <= up
        cons["chance.ev_down"] = cp.multiply(a, one @ r_dn) <= dn


# -------------------------------------------------------------------------------------------------------------
# results and out-of-sample evaluation


@dataclass(frozen=True)
class ChanceResult:
    reserve_up_mw: np.ndarray  # (T,)
    reserve_down_mw: np.ndarray  # (T,)
    eps_by_group: dict[str, np.ndarray]  # group -> (T,) risk given to the group's constraints
    nominal: np.ndarray  # (I, T) g_i(x)
    limit: np.ndarray  # (I,)
    kappa_exact_ok: bool  # oba: the exact kappa(eps_i) <= u_i holds at the solution


def extract(layer: ChanceLayer) -> ChanceResult:
    ch = layer.inputs
    t = ch.n_periods
    nominal = value(layer.nominal)
    eps_by_group = {g: np.zeros(t) for g in GROUPS}
    exact_ok = True
    if ch.method == "oba":
        assert layer.u is not None
        u = value(layer.u)
        e = u**-2.0
        # the exact DR constraint at the allocated risk: kappa(eps_i) <= u_i
        exact_ok = bool(np.all(kappa(np.clip(e, 1e-300, 0.999999)) <= u * (1 + 1e-9)))
        for k, (i, h) in enumerate(layer.uncertain):
            eps_by_group[GROUPS[int(layer.rows.group[i])]][h] += e[k]
    elif ch.method == "bonferroni":
        alloc = np.asarray(layer.eps_alloc)
        for g, name in enumerate(GROUPS):
            eps_by_group[name] = alloc[layer.rows.group == g].sum(axis=0)
    return ChanceResult(value(layer.reserve_up_mw), value(layer.reserve_down_mw), eps_by_group, nominal,
                        layer.rows.limit, exact_ok)


@dataclass(frozen=True)
class Reliability:
    """Out-of-sample satisfaction of the joint set under error days xi (n, T, d)."""

    joint: float  # min over hours of the share of days in which every constraint of the hour holds
    joint_day: float  # share of days in which every constraint of every hour holds
    violation_rate: dict[str, float]  # group -> max over hours of the share of days with a violation
    joint_by_hour: np.ndarray  # (T,)


def reliability(layer: ChanceLayer, result: ChanceResult, xi: np.ndarray, tol: float = 1e-7) -> Reliability:
    """Evaluate g_i(x) + c_i @ xi_t <= b_i on each day of ``xi`` (linear deviation model)."""
    return row_reliability(layer.rows, result.nominal, xi, tol)


#: days evaluated at once (bounds the (days, I, T) deviation array)
_CHUNK_DAYS = 1000


def row_reliability(rows: ConstraintRows, nominal: np.ndarray, xi: np.ndarray, tol: float = 1e-7) -> Reliability:
    """``reliability`` on the joint set ``rows`` at the nominal values ``nominal`` (I, T), days xi (n, T, d)."""
    scale = np.maximum(np.abs(rows.limit), 1.0)[None, :, None]
    groups = [rows.group == g for g in range(len(GROUPS))]
    ok_parts, group_parts = [], []
    for k in range(0, max(xi.shape[0], 1), _CHUNK_DAYS):
        dev = np.einsum("itd,ntd->nit", rows.coef, xi[k:k + _CHUNK_DAYS])  # (n, I, T)
        viol = rows.limit[None, :, None] - nominal[None] - dev < -tol * scale
        ok_parts.append(~viol.any(axis=1))  # (n, T)
        group_parts.append(np.stack([viol[:, sel].any(axis=1) for sel in groups], axis=0))  # (G, n, T)
    ok_hour = np.concatenate(ok_parts, axis=0)
    by_group = np.concatenate(group_parts, axis=1)
    rates = {name: float(by_group[g].mean(axis=0).max()) if groups[g].any() else 0.0
             for g, name in enumerate(GROUPS)}
    by_hour = ok_hour.mean(axis=0)
    return Reliability(float(by_hour.min()), float(ok_hour.all(axis=1).mean()), rates, by_hour)


def dispatch_rows(data: FeederData, ch: ChanceInputs, v_min_pu: float, v_max_pu: float) -> ConstraintRows:
    """The joint set of a feeder without its model (the same rows ``add_chance_constraints`` builds)."""
    return constraint_rows(data, ch, deviation_maps(data, ch), v_min_pu, v_max_pu)


def dispatch_nominal(ch: ChanceInputs, v_pu: np.ndarray, p_branch_mw: np.ndarray, reserve_up_mw: np.ndarray,
                     reserve_down_mw: np.ndarray) -> np.ndarray:
    """(I, T) g_i(x) of a dispatch, in the row order of ``constraint_rows``."""
    w = v_pu**2
    limited = np.flatnonzero(np.isfinite(ch.flow_limit_mw))
    p = p_branch_mw / S_BASE_MVA
    return np.vstack([w[1:], -w[1:], p[limited], -p[limited], -np.reshape(reserve_up_mw, (1, -1)),
                      -np.reshape(reserve_down_mw, (1, -1))])


def check_dispatch(data: FeederData, inputs: Any, dispatch: Any) -> dict[str, float]:
    """The DSO's out-of-sample check of a dispatch (``dso.model.FeederDispatch``) under its chance layer: joint
    and per-group reliability on ``mc_samples`` Monte Carlo days of the fitted GMMs and on the held-out real days
    (as the chance-constrained study computes them), and the mean reserves [MW]. Empty without a chance layer,
    an error model or reserves in the dispatch."""
    ch = getattr(inputs, "chance", None)
    if ch is None or ch.uncertainty is None or not np.size(dispatch.reserve_up_mw):
        return {}
    rows = dispatch_rows(data, ch, inputs.v_min_pu, inputs.v_max_pu)
    nominal = dispatch_nominal(ch, dispatch.v_pu, dispatch.p_branch_mw, dispatch.reserve_up_mw,
                               dispatch.reserve_down_mw)
    mc = row_reliability(rows, nominal, ch.uncertainty.sample(ch.mc_samples, ch.mc_seed))
    held = row_reliability(rows, nominal, ch.uncertainty.heldout())
    out = {"eps": ch.eps, "mc_samples": float(ch.mc_samples), "joint_reliability_mc": mc.joint,
           "joint_reliability_heldout": held.joint, "day_joint_reliability_mc": mc.joint_day,
           "reserve_up_mw": float(np.mean(dispatch.reserve_up_mw)),
           "reserve_down_mw": float(np.mean(dispatch.reserve_down_mw))}
    out |= {f"{g}_violation_rate": v for g, v in mc.violation_rate.items()}
    return out


def realised_withdrawal(layer: ChanceLayer, p_wd_mw: np.ndarray, q_wd_mvar: np.ndarray,
                        xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, T) net withdrawals of one error day xi (T, d) after the recourse, from the nominal ones."""
    return (p_wd_mw + np.einsum("tnd,td->nt", layer.maps.node_p, xi), q_wd_mvar + layer.maps.node_q @ xi.T)


def describe_allocation(result: ChanceResult) -> dict[str, Any]:
    """The risk split as plain numbers: per group the mean over hours of its eps share and the per-hour values."""
    return {g: {"mean": float(np.mean(v)), "by_hour": np.asarray(v).tolist()} for g, v in result.eps_by_group.items()}
