"""Second stage of storage planning: one scenario day's dispatch (SOCP DistFlow) with storage, PV and EV stations.

Per scenario day (24 hourly periods), with the first-stage ratings ``E_c`` [MWh] and ``P_c`` [MW] of the
candidate sites fixed, the DSO dispatches:

* DistFlow on the radial feeder (SOC relaxation, as ``dso.model``): P, Q sending-end flows, l = |I|^2,
  w = |V|^2; voltage, thermal (``l <= I_max^2``) and substation limits; import = buy - sell at node 1.
* Storage at candidate c: terminal withdrawal s_ct (charging > 0). Its conversion losses are a *virtual
  resistance branch* in series with an ideal store: loss_ct = R_c |s_ct|^2 with R_c = loss_at_rated / P_c
  (so the loss is ``loss_at_rated`` of the throughput at rated power), relaxed to the cone
  ``s_ct^2 <= ls_ct * (P_c + eps)`` (ls = loss / loss_at_rated, a rotated cone with P_c a variable fixed by the copy
  constraint), so no charge/discharge binaries. Stored energy e_{c,t+1} = e_ct + (s_ct - loss_ct) dt,
  soc_min E_c <= e <= E_c, cyclic over the day, |s_ct| <= P_c.
* PV (curtailable, penalised), loads (with an elastic unserved-load term so that every first stage has a
  recourse: no feasibility cuts are needed), EV stations: uncontrolled EVs as fixed load, controllable EVs as
  the aggregator's envelopes (its inner proportional-sharing set of the Minkowski sum, see
  ``aggregator.flex.inner_flexibility``), read through ``dso.model.EvFlexibility``.
* Daily cost [$]: energy purchase (TOU price x buy - feed-in x sell) + carbon (factor x buy x carbon price)
  + PV curtailment penalty + a loss cost on line and storage losses (above the curtailment penalty, so that
  burning surplus PV in fictitious losses, which the SOC relaxation would allow, never beats curtailing it)
  + unserved load + ``balance_usd_per_day`` x BI, with the
  branch-current temporal-spatial balance index
      BI = (1 / (B T)) sum_{b,t} u_bt^2,   u_bt = l_bt / l_max,b = (I_bt / I_max,b)^2,
  the mean square of the branch loadings over branches and hours: for a given total it is smallest when the
  current is spread evenly over branches (space) and hours (time), and it punishes hot spots quadratically.

The first stage enters through copy constraints ``E == e_param``, ``P == p_param`` (cvxpy Parameters, DPP:
built once, re-solved per Benders iteration); their duals are the subgradient of the day's cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from core import windows
from core.solver import solve_or_raise, value
from dso.model import EvFlexibility
from dso.planning.case import StoragePlanCase

T = 24
DT_H = 1.0
#: added to a unit's power rating in its loss cone (see DaySubproblem) [MW]
P_EPS_MW = 0.01
#: price of exceeding a storage rating in the elastic second stage [$ per MWh or MW and day]
CAPACITY_SLACK_USD = 2000.0


@dataclass(frozen=True)
class ScenarioDay:
    """One representative day: load factor and PV capacity factor per hour, its weight (share of the year)."""

    day: int
    load_factor: np.ndarray  # (24,) 1.0 = the case's base load
    pv_factor: np.ndarray  # (24,) capacity factor
    weight: float


@dataclass(frozen=True)
class EvStations:
    """EV stations as the DSO sees them: ``flex`` envelopes of the controllable EVs (0-based nodes) and the
    uncontrolled EVs' charging as fixed load ``fixed_mw`` (N, T)."""

    flex: EvFlexibility
    fixed_mw: np.ndarray


@dataclass(frozen=True)
class DayResult:
    """What one day's dispatch gives back (MW, MWh, $ per day)."""

    cost_usd: float
    grad_e_usd_per_mwh: np.ndarray  # (C,) d cost / d E_c
    grad_p_usd_per_mw: np.ndarray  # (C,) d cost / d P_c
    purchase_usd: float
    carbon_usd: float
    carbon_t: float
    pv_used_mwh: float
    pv_avail_mwh: float
    balance_index: float
    import_peak_mw: float
    shed_mwh: float
    soc_gap: float  # largest relative slack of the storage-loss and branch cones
    capacity_slack: float  # largest rating excess [MWh or MW] (0: the elastic ratings were not used)
    soc_mwh: np.ndarray  # (C, T + 1) stored energy
    pv_used_mw: np.ndarray  # (T,) PV used (all nodes)
    pv_avail_mw: np.ndarray  # (T,)
    ev_mw: np.ndarray  # (T,) all EV charging


def ev_block(flex: EvFlexibility, n_rows: int, row_of_envelope: np.ndarray) -> tuple[cp.Expression, list[cp.Constraint],
                                                                                  cp.Variable]:
    """Envelope constraints of ``flex`` (charging only, V2G entries included) and the (n_rows, T) net power
    per row (node or station) of the envelopes; returns (power, constraints, p_ch)."""
    w_len = flex.n_window
    if w_len == 0:
        return cp.Constant(np.zeros((n_rows, T))), [], cp.Variable(0)
    p_ch = cp.Variable(w_len, nonneg=True)
    v2g = flex.v2g_entries
    p_dis_v = cp.Variable(v2g.size, nonneg=True)
    p_dis = sp.csr_matrix((np.ones(v2g.size), (v2g, np.arange(v2g.size))), shape=(w_len, v2g.size)) @ p_dis_v
    env = flex.envelope_of_window
    stored = cp.Variable(w_len)
    cons = [stored - flex.shift_matrix() @ stored == cp.multiply(flex.eta_ch[env] * DT_H, p_ch)
            - cp.multiply(DT_H / flex.eta_dis[env], p_dis),
            p_ch <= flex.p_ch_max_mw, p_dis_v <= flex.p_dis_max_mw[v2g],
            stored >= flex.e_min_mwh, stored <= flex.e_max_mwh]
    pmap = windows.period_map(flex.start, flex.dwell, T, row_of_envelope, n_rows)
    power = cp.reshape(pmap @ (p_ch - p_dis), (n_rows, T), order="C")
    return power, cons, p_ch


class DaySubproblem:
    """One scenario day's second stage, built once; ``solve(e_mwh, p_mw)`` re-solves at a first stage."""

    def __init__(self, case: StoragePlanCase, day: ScenarioDay, ev: EvStations, solver: str = "CLARABEL") -> None:
        self.case, self.day, self.solver = case, day, solver
        f, tar, st = case.feeder, case.tariff, case.costs
        n, b = f.n_nodes, f.n_branches
        c = len(case.candidates)
        z_base = f.base_kv ** 2  # S_base = 1 MVA
        i_base_ka = 1.0 / (np.sqrt(3.0) * f.base_kv)
        r, x = f.r_ohm / z_base, f.x_ohm / z_base
        l_max = (f.i_max_ka / i_base_ka) ** 2
        self.l_max = l_max
        fr, to = f.from_idx, f.to_idx
        a_to = sp.csr_matrix((np.ones(b), (to, np.arange(b))), shape=(n, b))  # node <- branch into it
        a_fr = sp.csr_matrix((np.ones(b), (fr, np.arange(b))), shape=(n, b))  # node <- branch out of it
        load_p = np.outer(f.p_load_mw, day.load_factor) * case.load_scale + ev.fixed_mw
        load_q = np.outer(f.q_load_mvar, day.load_factor) * case.load_scale
        pv_avail = np.zeros((n, T))
        if case.pv_node.size:
            pv_avail[case.pv_node - 1] = np.outer(case.pv_capacity_mw, day.pv_factor)
        self.pv_avail = pv_avail
        cand = sp.csr_matrix((np.ones(c), (case.candidates - 1, np.arange(c))), shape=(n, c))

        p_fl, q_fl = cp.Variable((b, T)), cp.Variable((b, T))
        l_fl = cp.Variable((b, T), nonneg=True)
        w = cp.Variable((n, T))
        buy, sell = cp.Variable(T, nonneg=True), cp.Variable(T, nonneg=True)
        pv = cp.Variable((n, T), nonneg=True)
        shed = cp.Variable((n, T), nonneg=True)
        s = cp.Variable((c, T))  # storage terminal withdrawal [MW]
        ls = cp.Variable((c, T), nonneg=True)  # s^2 / P (loss / loss_at_rated) [MW]
        e = cp.Variable((c, T + 1), nonneg=True)
        # copies of the first stage: free variables (a sign bound here would share the copy dual at a 0 rating)
        e_cap, p_cap = cp.Variable(c), cp.Variable(c)
        # elastic ratings: a rating may be exceeded at CAPACITY_SLACK_USD per MWh (MW) and day, far above what a
        # MWh (MW) of storage earns in a day, so the slack is 0 at every solution (DayResult.capacity_slack
        # reports it); it keeps d cost / d rating bounded at a rating of 0 (an unbuilt site), where the plain
        # model's subdifferential is unbounded and the duals an interior-point solver returns give useless cuts
        slack_e, slack_p = cp.Variable(c, nonneg=True), cp.Variable(c, nonneg=True)
        self.e_param, self.p_param = cp.Parameter(c, nonneg=True), cp.Parameter(c, nonneg=True)
        ones_t = np.ones((1, T))
        p_cap_t = cp.reshape(p_cap, (c, 1), order="C") @ ones_t
        # the loss cone uses P + P_EPS_MW: the resistance of a unit of rating P is loss_at_rated / (P + eps), so
        # that an unbuilt site (P = 0) is not a degenerate cone whose duals (the Benders cut slopes) blow up
        p_cone_t = p_cap_t + P_EPS_MW
        e_cap_t = cp.reshape(e_cap, (c, 1), order="C") @ np.ones((1, T + 1))
        loss = st.loss_at_rated * ls
        ev_node, ev_cons, _ = ev_block(ev.flex, n, ev.flex.node_idx)
        net_p = load_p - shed - pv + cand @ s + ev_node  # (N, T) withdrawal
        net_q = load_q  # unserved load is active power only (the elastic recourse)
        root = np.zeros(n)
        root[0] = 1.0
        nonroot = np.flatnonzero(root == 0)
        flow_in_p = a_to @ (p_fl - cp.multiply(r[:, None] @ ones_t, l_fl)) - a_fr @ p_fl
        flow_in_q = a_to @ (q_fl - cp.multiply(x[:, None] @ ones_t, l_fl)) - a_fr @ q_fl
        cons: dict[str, cp.Constraint] = {
            "balance.p": flow_in_p[nonroot, :] == net_p[nonroot, :],
            "balance.q": flow_in_q[nonroot, :] == net_q[nonroot, :],
            "root.p": (buy - sell)[None, :] == cp.sum(p_fl[np.flatnonzero(fr == 0), :], axis=0, keepdims=True)
            + net_p[0:1, :],
            "voltage.drop": w[to, :] == w[fr, :] - 2 * (cp.multiply(r[:, None] @ ones_t, p_fl)
                                                       + cp.multiply(x[:, None] @ ones_t, q_fl))
            + cp.multiply(((r ** 2 + x ** 2)[:, None]) @ ones_t, l_fl),
            "voltage.sub": w[0, :] == case.v_sub_pu ** 2,
            "voltage.min": w >= case.v_min_pu ** 2,
            "voltage.max": w <= case.v_max_pu ** 2,
            "thermal": l_fl <= l_max[:, None] @ ones_t,
            "soc.branch": cp.SOC(cp.vec(w[fr, :] + l_fl, order="C"),
                                 cp.vstack([cp.vec(2 * p_fl, order="C"), cp.vec(2 * q_fl, order="C"),
                                            cp.vec(w[fr, :] - l_fl, order="C")]), axis=0),
            "pv.avail": pv <= pv_avail,
            "shed.max": shed <= np.maximum(load_p, 0.0),
            "storage.loss": cp.SOC(cp.vec(ls + p_cone_t, order="C"),
                                   cp.vstack([cp.vec(2 * s, order="C"), cp.vec(ls - p_cone_t, order="C")]), axis=0),
            "storage.p_max": cp.abs(s) <= p_cap_t + cp.reshape(slack_p, (c, 1), order="C") @ ones_t,
            "storage.energy": e[:, 1:] == e[:, :-1] + (s - loss) * DT_H,
            "storage.cyclic": e[:, 0] == e[:, T],
            "storage.e_max": e <= e_cap_t + cp.reshape(slack_e, (c, 1), order="C") @ np.ones((1, T + 1)),
            "storage.e_min": e >= st.soc_min * e_cap_t,
            "copy.e": e_cap == self.e_param,
            "copy.p": p_cap == self.p_param,
        }
        for k, con in enumerate(ev_cons):
            cons[f"ev.{k}"] = con
        price = tar.price_usd_per_mwh
        self.purchase = (price @ buy - tar.feed_in_usd_per_mwh * cp.sum(sell)) * DT_H
        self.carbon_t = tar.carbon_t_per_mwh * cp.sum(buy) * DT_H
        self.bi = cp.sum_squares(cp.multiply(1.0 / l_max[:, None] @ ones_t, l_fl)) / (b * T)
        cost = (self.purchase + tar.carbon_usd_per_t * self.carbon_t
                + tar.pv_curtail_usd_per_mwh * cp.sum(pv_avail - pv) * DT_H
                + tar.loss_usd_per_mwh * (cp.sum(loss) + cp.sum(r @ l_fl)) * DT_H
                + tar.shed_usd_per_mwh * cp.sum(shed) * DT_H
                + tar.balance_usd_per_day * self.bi + CAPACITY_SLACK_USD * cp.sum(slack_e + slack_p))
        self.cons = cons
        self.vars = {"p": p_fl, "q": q_fl, "l": l_fl, "w": w, "buy": buy, "sell": sell, "pv": pv, "shed": shed,
                     "s": s, "ls": ls, "e": e, "ev": ev_node, "slack_e": slack_e, "slack_p": slack_p}
        self.problem = cp.Problem(cp.Minimize(cost), list(cons.values()))

    def solve(self, e_mwh: np.ndarray, p_mw: np.ndarray) -> DayResult:
        """The day's cost at the first stage (E, P) and its subgradient (duals of the copy constraints)."""
        self.e_param.value = np.maximum(np.asarray(e_mwh, dtype=float), 0.0)
        self.p_param.value = np.maximum(np.asarray(p_mw, dtype=float), 0.0)
        cost = solve_or_raise(self.problem, self.solver, f"storage plan day {self.day.day}")
        v = self.vars
        # cvxpy's dual y of "x == param" enters the Lagrangian as y^T (x - param): d cost / d param = -y
        # (checked by finite differences in tests/test_storage_plan.py)
        grad_e = -np.asarray(self.cons["copy.e"].dual_value, dtype=float).reshape(-1)
        grad_p = -np.asarray(self.cons["copy.p"].dual_value, dtype=float).reshape(-1)
        pv, s, ls = value(v["pv"]), value(v["s"]), value(v["ls"])
        p_cone = self.p_param.value[:, None] + P_EPS_MW
        # relative slack of the loss cone: (ls (P + eps) - s^2) / (P + eps) against the rating [MW]
        gap_st = float(np.max(np.abs(ls * p_cone - s ** 2) / p_cone, initial=0.0)) if s.size else 0.0
        fr = self.case.feeder.from_idx
        pf, qf, lf, w = value(v["p"]), value(v["q"]), value(v["l"]), value(v["w"])
        gap_br = float(np.max(np.abs(w[fr] * lf - pf ** 2 - qf ** 2)))
        buy, sell = value(v["buy"]), value(v["sell"])
        return DayResult(
            cost_usd=cost, grad_e_usd_per_mwh=grad_e, grad_p_usd_per_mw=grad_p,
            purchase_usd=float(value(self.purchase)),
            carbon_usd=float(value(self.carbon_t)) * self.case.tariff.carbon_usd_per_t,
            carbon_t=float(value(self.carbon_t)), pv_used_mwh=float(pv.sum() * DT_H),
            pv_avail_mwh=float(self.pv_avail.sum() * DT_H), balance_index=float(value(self.bi)),
            import_peak_mw=float(np.max(buy - sell)), shed_mwh=float(value(v["shed"]).sum() * DT_H),
            soc_gap=max(gap_st, gap_br),
            capacity_slack=float(max(np.max(value(v["slack_e"]), initial=0.0),
                                     np.max(value(v["slack_p"]), initial=0.0))),
            soc_mwh=value(v["e"]), pv_used_mw=pv.sum(axis=0),
            pv_avail_mw=self.pv_avail.sum(axis=0), ev_mw=value(v["ev"]).sum(axis=0))


class ScenarioBatch:
    """Several scenario days' subproblems in one place (one Ray actor or the serial host), built once."""

    def __init__(self, case: StoragePlanCase, days: list[ScenarioDay], ev: EvStations,
                 solver: str = "CLARABEL") -> None:
        self.name = f"days {[d.day for d in days]}"
        self.subproblems = [DaySubproblem(case, d, ev, solver) for d in days]

    def solve_points(self, points: list[tuple[np.ndarray, np.ndarray]]) -> list[list[DayResult]]:
        """Per first stage (E, P) of ``points``: every day's result, in this batch's day order."""
        return [[sub.solve(e, p) for sub in self.subproblems] for e, p in points]


@dataclass(frozen=True)
class SolveAt:
    """A call on a ``ScenarioBatch``: solve its days at each first stage of ``points``."""

    points: list[tuple[np.ndarray, np.ndarray]]

    def __call__(self, batch: ScenarioBatch) -> list[list[DayResult]]:
        return batch.solve_points(self.points)
