"""Multi-period DistFlow (branch flow model) SOC relaxation of a radial feeder.

Branch flow model (Baran & Wu 1989; Farivar & Low 2013, DOI 10.1109/TPWRS.2013.2255317), per branch
b = (i -> j) and period t, with P, Q the sending-end flows, l = |I|^2 and w = |V|^2:

    w_j = a^2 w_i - 2 (r P + x Q) + (r^2 + x^2) l                 "voltage.drop"
    sum_{b into j} (P_b - r l_b) - sum_{b out of j} P_b = d_j      "balance.p"  (d = net withdrawal)
    P^2 + Q^2 <= a^2 w_i l   (relaxation of "=")                   "soc.branch"

with a the branch's fixed tap ratio (an ideal transformer at the sending end, a = 1 on plain lines).

Per-unit base used internally: S_base = 1 MVA, V_base = the feeder's line-to-line base_kv,
Z_base = V_base^2 / S_base [ohm], I_base = S_base / (sqrt(3) V_base) [kA]. With S_base = 1 MVA a
33-bus feeder carries flows of O(0.1..5) p.u., l of O(0..25) and w of O(1), which keeps the
cone well conditioned. Everything that leaves this module is in MW / MVAr / kA / p.u. voltage.

Sign convention: loads and EV charging are positive withdrawals; generation is positive
injection; p_import_mw > 0 flows from the TSO into the feeder at node 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from core import windows
from core.errors import SolveError
from core.solver import scalar, value
from dso.network import FeederData

__all__ = [
    "S_BASE_MVA",
    "EvFlexibility",
    "FeederDispatch",
    "FeederInputError",
    "FeederInputs",
    "FeederModel",
    "ZonotopeClusters",
    "EV_Q_MODES",
    "OBJECTIVE_TERMS",
    "build_feeder_model",
]

S_BASE_MVA = 1.0
EV_Q_MODES = ("none", "plugged", "always")
OBJECTIVE_TERMS = ("cost", "loss", "voltage_deviation")


class FeederInputError(ValueError):
    """Bad dispatch inputs; the message names the feeder, the element and the bad value."""


def _i64(a: np.ndarray | list[int]) -> np.ndarray:
    return np.asarray(a, dtype=np.int64).reshape(-1)


def _f64(a: np.ndarray | list[float]) -> np.ndarray:
    return np.asarray(a, dtype=float)


@dataclass(frozen=True)
class EvFlexibility:
    """EV aggregator envelopes, flat window-local form; window k of envelope e is period (start+k) % T."""

    node_idx: np.ndarray  # (E,) int, 0-based node of each envelope
    start: np.ndarray  # (E,) int, first plugged-in period 0..T-1
    dwell: np.ndarray  # (E,) int, periods plugged in, 1..T
    p_ch_max_mw: np.ndarray  # (W,) W = sum(dwell); max charging power per window period [MW]
    p_dis_max_mw: np.ndarray  # (W,) max discharging power [MW] (0 = no V2G)
    e_min_mwh: np.ndarray  # (W,) min stored energy gained since plug-in, end of each period [MWh]
    e_max_mwh: np.ndarray  # (W,) max of the same [MWh]
    eta_ch: np.ndarray  # (E,) stored += eta_ch * p_ch * dt_h
    eta_dis: np.ndarray  # (E,) stored -= p_dis / eta_dis * dt_h
    #: (E,) int spatial allocation group (default: every envelope its own). Envelopes of one group are the
    #: same EVs at different nodes/stations: each carries the bounds of the whole group, the model picks
    #: fractions a_e >= 0 with sum_group a_e = 1 and scales envelope e's bounds by a_e (an LP, since every
    #: bound of a proportional-sharing group is linear in its energy need).
    alloc_group: np.ndarray | None = None
    #: (E,) int station of each envelope, index into station_p_max_mw (None: no station limits)
    station_idx: np.ndarray | None = None
    station_p_max_mw: np.ndarray | None = None  # (S,) connection limit |net EV power| per station [MW]

    def __post_init__(self) -> None:
        for name in ("node_idx", "start", "dwell"):
            object.__setattr__(self, name, _i64(getattr(self, name)))
        n_env0 = self.node_idx.shape[0]
        grp = np.arange(n_env0, dtype=np.int64) if self.alloc_group is None else _i64(self.alloc_group)
        object.__setattr__(self, "alloc_group", grp)
        if grp.shape[0] != n_env0:
            raise FeederInputError(f"EV envelopes: alloc_group has {grp.shape[0]} entries, node_idx has {n_env0}")
        if (self.station_idx is None) != (self.station_p_max_mw is None):
            raise FeederInputError("EV envelopes: station_idx and station_p_max_mw go together")
        if self.station_idx is not None and self.station_p_max_mw is not None:
            st, lim = _i64(self.station_idx), _f64(self.station_p_max_mw).reshape(-1)
            object.__setattr__(self, "station_idx", st)
            object.__setattr__(self, "station_p_max_mw", lim)
            if st.shape[0] != n_env0:
                raise FeederInputError(f"EV envelopes: station_idx has {st.shape[0]} entries, node_idx has {n_env0}")
            bad = np.flatnonzero((st < 0) | (st >= lim.shape[0]))
            if bad.size:
                raise FeederInputError(f"EV envelope {int(bad[0])}: station_idx={int(st[bad[0]])} is not a "
                                       f"station index 0..{lim.shape[0] - 1}")
            bad = np.flatnonzero(~(lim > 0) | ~np.isfinite(lim))
            if bad.size:
                raise FeederInputError(f"EV station {int(bad[0])}: station_p_max_mw={float(lim[bad[0]])!r} "
                                       "must be finite and > 0")
        for name in ("p_ch_max_mw", "p_dis_max_mw", "e_min_mwh", "e_max_mwh", "eta_ch", "eta_dis"):
            object.__setattr__(self, name, _f64(getattr(self, name)).reshape(-1))
        n_env = self.node_idx.shape[0]
        for name in ("start", "dwell", "eta_ch", "eta_dis"):
            if getattr(self, name).shape[0] != n_env:
                raise FeederInputError(f"EV envelopes: {name} has {getattr(self, name).shape[0]} entries, "
                                       f"node_idx has {n_env}")
        if np.any(self.dwell < 1):
            e = int(np.argmin(self.dwell))
            raise FeederInputError(f"EV envelope {e}: dwell={int(self.dwell[e])} must be >= 1")
        n_win = int(self.dwell.sum())
        for name in ("p_ch_max_mw", "p_dis_max_mw", "e_min_mwh", "e_max_mwh"):
            arr = getattr(self, name)
            if arr.shape[0] != n_win:
                raise FeederInputError(f"EV envelopes: {name} has {arr.shape[0]} entries, sum(dwell)={n_win}")
            if not np.all(np.isfinite(arr)):
                raise FeederInputError(f"EV envelopes: {name} has non-finite entries")
        for name in ("p_ch_max_mw", "p_dis_max_mw"):
            arr = getattr(self, name)
            if np.any(arr < 0):
                k = int(np.argmin(arr))
                raise FeederInputError(f"EV envelope {int(self.envelope_of_window[k])}: "
                                       f"{name}={float(arr[k])!r} must be >= 0")
        bad = np.flatnonzero(self.e_min_mwh > self.e_max_mwh + 1e-12)
        if bad.size:
            k = int(bad[0])
            raise FeederInputError(f"EV envelope {int(self.envelope_of_window[k])}: "
                                   f"e_min_mwh={float(self.e_min_mwh[k])!r} "
                                   f"> e_max_mwh={float(self.e_max_mwh[k])!r}")
        for name in ("eta_ch", "eta_dis"):
            arr = getattr(self, name)
            bad = np.flatnonzero(~((arr > 0) & (arr <= 1)))
            if bad.size:
                e = int(bad[0])
                raise FeederInputError(f"EV envelope {e}: {name}={float(arr[e])!r} must be in (0, 1]")

    @staticmethod
    def empty() -> EvFlexibility:
        z_i, z_f = np.zeros(0, dtype=np.int64), np.zeros(0)
        return EvFlexibility(z_i, z_i, z_i, z_f, z_f, z_f, z_f, z_f, z_f)

    @property
    def n_envelopes(self) -> int:
        return int(self.node_idx.shape[0])

    @property
    def n_window(self) -> int:
        return int(self.dwell.sum())

    @property
    def envelope_of_window(self) -> np.ndarray:
        """(W,) envelope index of each window entry."""
        return windows.owner(self.dwell)

    @property
    def offset_in_window(self) -> np.ndarray:
        """(W,) k = 0..dwell-1 of each window entry."""
        return windows.local_index(self.dwell)

    def period_of_window(self, n_periods: int) -> np.ndarray:
        """(W,) period index (start + k) % T of each window entry."""
        return windows.periods(self.start, self.dwell, n_periods)

    def cumsum_matrix(self) -> sp.csr_matrix:
        """(W, W) block lower-triangular ones: (C x)[k] = sum of x over the same envelope up to k."""
        return windows.cumsum_matrix(self.dwell)

    @property
    def shared_envelopes(self) -> np.ndarray:
        """Envelopes whose allocation group has more than one member (their fraction is a variable)."""
        g = self.alloc_group
        assert g is not None
        if g.size == 0:
            return np.zeros(0, dtype=np.int64)
        _, inv, counts = np.unique(g, return_inverse=True, return_counts=True)
        return np.flatnonzero(counts[inv.reshape(-1)] > 1)

    @property
    def v2g_entries(self) -> np.ndarray:
        """Window entries where discharging is allowed (p_dis_max_mw > 0)."""
        return np.flatnonzero(self.p_dis_max_mw > 0)

    def shift_matrix(self) -> sp.csr_matrix:
        """(W, W) (S x)[k] = x[k-1] within the same envelope, 0 at each envelope's first entry (the sparse
        recursion form of ``e = C x``, see ``core.windows.shift_matrix``)."""
        return windows.shift_matrix(self.dwell)

    def node_period_map(self, n_nodes: int, n_periods: int) -> sp.csr_matrix:
        """(N*T, W) 0/1 map, row n*T + t: window entries at node n in period t (C-order flatten)."""
        return windows.period_map(self.start, self.dwell, n_periods, self.node_idx, n_nodes)


@dataclass(frozen=True)
class ZonotopeClusters:
    """EV clusters as zonotopes sharing one generator matrix G (aggregator.zonotope): station s draws
    p_s = c_s + G diag(beta_s) xi_s [MW] (charging positive) for any |xi_s| <= 1, and every such profile
    disaggregates in closed form into feasible per-EV schedules."""

    node_idx: np.ndarray  # (S,) int, 0-based feeder node of each station
    generators: np.ndarray  # (T, m)
    c_mw: np.ndarray  # (S, T) centre
    beta_mw: np.ndarray  # (S, m) generator scales, >= 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "node_idx", _i64(self.node_idx))
        for name in ("generators", "c_mw", "beta_mw"):
            object.__setattr__(self, name, _f64(getattr(self, name)))
        n_s = self.node_idx.shape[0]
        if self.generators.ndim != 2:
            raise FeederInputError(f"EV zonotopes: generators must be (T, m), got shape {self.generators.shape}")
        t, m = self.generators.shape
        for name, shape in (("c_mw", (n_s, t)), ("beta_mw", (n_s, m))):
            arr = getattr(self, name)
            if arr.shape != shape:
                raise FeederInputError(f"EV zonotopes: {name} has shape {arr.shape}, expected {shape}")
            if not np.all(np.isfinite(arr)):
                raise FeederInputError(f"EV zonotopes: {name} has non-finite entries")
        if np.any(self.beta_mw < 0):
            s, j = np.unravel_index(int(np.argmin(self.beta_mw)), self.beta_mw.shape)
            raise FeederInputError(f"EV zonotope of station {int(s)}: beta_mw[{int(j)}]="
                                   f"{float(self.beta_mw[s, j])!r} must be >= 0")


@dataclass(frozen=True)
class FeederInputs:
    """Dispatch-day inputs of one feeder; arrays are (..., T), nodes 0-based."""

    dt_h: float
    p_load_mw: np.ndarray  # (N,T)
    q_load_mvar: np.ndarray  # (N,T)
    pv_node_idx: np.ndarray  # (G,)
    pv_avail_mw: np.ndarray  # (G,T) available PV power
    pv_s_mva: np.ndarray  # (G,) inverter rating: P^2 + Q^2 <= S^2
    pv_curtail_usd_per_mwh: float
    mt_node_idx: np.ndarray  # (M,) microturbines
    mt_p_min_mw: np.ndarray  # (M,)
    mt_p_max_mw: np.ndarray  # (M,)
    mt_q_max_mvar: np.ndarray  # (M,) |q| <= q_max
    mt_ramp_mw_per_h: np.ndarray  # (M,) |p_t - p_{t-1}| <= ramp * dt_h (t >= 1, not cyclic)
    mt_c1_usd_per_mwh: np.ndarray  # (M,) fuel cost = (c1 p + c2 p^2) dt_h
    mt_c2_usd_per_mw2h: np.ndarray  # (M,)
    ev: EvFlexibility
    ev_fixed_mw: np.ndarray  # (N,T) uncontrolled EV charging (fixed withdrawal)
    loss_cost_usd_per_mwh: float  # explicit cost on feeder losses
    v_min_pu: float = 0.95
    v_max_pu: float = 1.05
    v_sub_pu: float = 1.0
    #: wind turbines behind inverters, like PV: (U,) nodes, (U,T) available power, (U,) rating S
    wind_node_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    wind_avail_mw: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    wind_s_mva: np.ndarray = field(default_factory=lambda: np.zeros(0))
    wind_curtail_usd_per_mwh: float = 0.0
    #: EV chargers as four-quadrant converters, one per station (index = ``ev.station_idx``):
    #: "none" (P only, the default), "plugged" (Q only in station-periods where an EV envelope is plugged in:
    #: the chargers are on-board/AC converters that exist for the grid only while a car is connected) or
    #: "always" (off-board converters with their own DC link, STATCOM mode without a car); |S| <= station_s_mva
    ev_q_mode: str = "none"
    station_node_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # (S,)
    station_s_mva: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (S,) converter rating [MVA]
    #: False: every DER (PV, wind, microturbines, EV chargers) at unity power factor, Q = 0
    der_q: bool = True
    #: False: PV and wind inject all their available power (their P is a forecast, not a decision)
    curtailable: bool = True
    #: objective weights of the DSO's own dispatch (DsoProblem): "cost" [-] x (local cost + purchase) [$],
    #: "loss" x daily active loss [MWh], "voltage_deviation" x mean |V - 1| [p.u.] (linearised: |w - 1| / 2)
    objective: tuple[tuple[str, float], ...] = (("cost", 1.0),)
    #: EV clusters as zonotopes (aggregator.zonotope), beside or instead of ``ev`` envelopes
    ev_zonotope: ZonotopeClusters | None = None
    #: penalty on load not served [$/MWh]; None: every load is served (no shedding variable)
    load_shed_usd_per_mwh: float | None = None
    #: substation import limits [MW] (min < 0 allows export; None = unlimited)
    p_import_max_mw: float | None = None
    p_import_min_mw: float | None = None
    #: chance-constrained dispatch (``dso.chance.ChanceInputs``): reserves with recourse and joint chance
    #: constraints under forecast errors; None: the point-forecast dispatch
    chance: Any = None

    def __post_init__(self) -> None:
        for name in ("pv_node_idx", "mt_node_idx", "wind_node_idx", "station_node_idx"):
            object.__setattr__(self, name, _i64(getattr(self, name)))
        for name in ("p_load_mw", "q_load_mvar", "pv_avail_mw", "pv_s_mva", "mt_p_min_mw", "mt_p_max_mw",
                     "mt_q_max_mvar", "mt_ramp_mw_per_h", "mt_c1_usd_per_mwh", "mt_c2_usd_per_mw2h",
                     "ev_fixed_mw", "wind_avail_mw", "wind_s_mva", "station_s_mva"):
            object.__setattr__(self, name, _f64(getattr(self, name)))
        if self.ev_q_mode not in EV_Q_MODES:
            raise FeederInputError(f"ev_q_mode={self.ev_q_mode!r} is unknown (known: {', '.join(EV_Q_MODES)})")
        weights = dict(self.objective)
        unknown = sorted(set(weights) - set(OBJECTIVE_TERMS))
        if unknown:
            raise FeederInputError(f"objective: unknown term(s) {unknown} (known: {', '.join(OBJECTIVE_TERMS)})")
        bad_terms = [k for k, w in weights.items() if not (np.isfinite(w) and w >= 0)]
        if bad_terms or not any(w > 0 for w in weights.values()):
            raise FeederInputError(f"objective weights {weights} must be finite, >= 0 and not all 0")
        if not self.dt_h > 0:
            raise FeederInputError(f"dt_h={self.dt_h!r} must be > 0")
        if self.p_load_mw.ndim != 2:
            raise FeederInputError(f"p_load_mw must be (N,T), got shape {self.p_load_mw.shape}")
        n, t = self.p_load_mw.shape
        g, m, u = self.pv_node_idx.shape[0], self.mt_node_idx.shape[0], self.wind_node_idx.shape[0]
        if self.pv_avail_mw.size == 0:
            object.__setattr__(self, "pv_avail_mw", np.zeros((g, t)))
        if self.wind_avail_mw.size == 0:
            object.__setattr__(self, "wind_avail_mw", np.zeros((u, t)))
        shapes = {"q_load_mvar": (n, t), "ev_fixed_mw": (n, t), "pv_avail_mw": (g, t), "pv_s_mva": (g,),
                  "wind_avail_mw": (u, t), "wind_s_mva": (u,),
                  "mt_p_min_mw": (m,), "mt_p_max_mw": (m,), "mt_q_max_mvar": (m,), "mt_ramp_mw_per_h": (m,),
                  "mt_c1_usd_per_mwh": (m,), "mt_c2_usd_per_mw2h": (m,)}
        for name, shape in shapes.items():
            arr = getattr(self, name)
            if arr.shape != shape:
                raise FeederInputError(f"{name} has shape {arr.shape}, expected {shape}")
            if not np.all(np.isfinite(arr)):
                raise FeederInputError(f"{name} has non-finite entries")
        if self.ev_q_mode != "none":
            n_st = 0 if self.ev.station_p_max_mw is None else int(self.ev.station_p_max_mw.shape[0])
            for name in ("station_node_idx", "station_s_mva"):
                if getattr(self, name).shape != (n_st,):
                    raise FeederInputError(f"ev_q_mode={self.ev_q_mode!r}: {name} has shape "
                                           f"{getattr(self, name).shape}, the envelopes have {n_st} stations")
            bad = np.flatnonzero(~(self.station_s_mva > 0) | ~np.isfinite(self.station_s_mva))
            if bad.size:
                raise FeederInputError(f"station {int(bad[0])}: station_s_mva={float(self.station_s_mva[bad[0]])!r} "
                                       "must be finite and > 0")
        for name in ("pv_node_idx", "mt_node_idx", "wind_node_idx", "station_node_idx"):
            idx = getattr(self, name)
            bad = np.flatnonzero((idx < 0) | (idx >= n))
            if bad.size:
                raise FeederInputError(f"{name}[{int(bad[0])}]={int(idx[bad[0]])} "
                                       f"is not a node index 0..{n - 1}")
        ev = self.ev
        bad = np.flatnonzero((ev.node_idx < 0) | (ev.node_idx >= n))
        if bad.size:
            raise FeederInputError(f"EV envelope {int(bad[0])}: node_idx={int(ev.node_idx[bad[0]])} "
                                   f"is not a node index 0..{n - 1}")
        bad = np.flatnonzero((ev.start < 0) | (ev.start >= t) | (ev.dwell > t))
        if bad.size:
            e = int(bad[0])
            raise FeederInputError(f"EV envelope {e}: start={int(ev.start[e])}, dwell={int(ev.dwell[e])} "
                                   f"outside a horizon of T={t}")
        for what, avail in (("PV", self.pv_avail_mw), ("wind", self.wind_avail_mw)):
            if np.any(avail < 0):
                g0 = int(np.argwhere(avail < 0)[0, 0])
                raise FeederInputError(f"{what} {g0}: available power has negative entries")
        bad = np.flatnonzero(self.mt_p_min_mw > self.mt_p_max_mw)
        if bad.size:
            k = int(bad[0])
            raise FeederInputError(f"MT {k}: mt_p_min_mw={float(self.mt_p_min_mw[k])!r} "
                                   f"> mt_p_max_mw={float(self.mt_p_max_mw[k])!r}")
        if np.any(self.mt_c2_usd_per_mw2h < 0):
            k = int(np.argmin(self.mt_c2_usd_per_mw2h))
            raise FeederInputError(f"MT {k}: mt_c2_usd_per_mw2h={float(self.mt_c2_usd_per_mw2h[k])!r} "
                                   "must be >= 0 (convex)")
        if self.load_shed_usd_per_mwh is not None and not (np.isfinite(self.load_shed_usd_per_mwh)
                                                          and self.load_shed_usd_per_mwh >= 0):
            raise FeederInputError(f"load_shed_usd_per_mwh={self.load_shed_usd_per_mwh!r} must be finite and >= 0")
        lo_imp = -np.inf if self.p_import_min_mw is None else self.p_import_min_mw
        hi_imp = np.inf if self.p_import_max_mw is None else self.p_import_max_mw
        if not lo_imp <= hi_imp:
            raise FeederInputError(f"p_import_min_mw={self.p_import_min_mw!r} > "
                                   f"p_import_max_mw={self.p_import_max_mw!r}")
        z = self.ev_zonotope
        if z is not None:
            if z.generators.shape[0] != t:
                raise FeederInputError(f"EV zonotopes: generators have {z.generators.shape[0]} periods, T={t}")
            bad = np.flatnonzero((z.node_idx < 0) | (z.node_idx >= n))
            if bad.size:
                raise FeederInputError(f"EV zonotope station {int(bad[0])}: node_idx={int(z.node_idx[bad[0]])} "
                                       f"is not a node index 0..{n - 1}")
        if not 0 < self.v_min_pu <= self.v_sub_pu <= self.v_max_pu:
            raise FeederInputError(f"voltage limits must satisfy 0 < v_min_pu <= v_sub_pu <= v_max_pu, got "
                                   f"{self.v_min_pu}, {self.v_sub_pu}, {self.v_max_pu}")

    @property
    def n_periods(self) -> int:
        return int(self.p_load_mw.shape[1])


@dataclass(frozen=True)
class FeederDispatch:
    """Numerical result of a solved feeder model (MW, MVAr, kA, p.u. voltage, $)."""

    p_import_mw: np.ndarray  # (T,)
    q_import_mvar: np.ndarray  # (T,)
    v_pu: np.ndarray  # (N,T) voltage magnitude
    p_branch_mw: np.ndarray  # (B,T) sending-end active flow
    q_branch_mvar: np.ndarray  # (B,T)
    i_branch_ka: np.ndarray  # (B,T)
    loss_mw: np.ndarray  # (T,) sum_b r_b l_b
    pv_p_mw: np.ndarray  # (G,T)
    pv_q_mvar: np.ndarray  # (G,T)
    mt_p_mw: np.ndarray  # (M,T)
    mt_q_mvar: np.ndarray  # (M,T)
    ev_p_mw: np.ndarray  # (N,T) net EV withdrawal incl. the fixed part
    ev_p_ch_mw: np.ndarray  # (W,) flat window arrays
    ev_p_dis_mw: np.ndarray  # (W,)
    dlmp_usd_per_mwh: np.ndarray  # (N,T) marginal cost of 1 MWh more withdrawal at node n in period t
    cost_usd: dict[str, float]  # per cost term, $ over the horizon
    # max over branch-hours of |P^2 + Q^2 - w l| [MVA^2]: ~0 when the relaxation is exact. Signed,
    # P^2 + Q^2 - w l is <= 0 up to solver tolerance, so its max alone would hide an inexact relaxation
    # (fictitious losses, w l > P^2 + Q^2, e.g. when price + loss cost <= 0).
    soc_gap_mva2: float
    p_gen_mw: np.ndarray  # (N,T) PV + MT per node
    q_gen_mvar: np.ndarray  # (N,T)
    #: (E,) fraction of its allocation group's energy need served by each EV envelope (1 when alone)
    ev_alloc_share: np.ndarray = field(default_factory=lambda: np.zeros(0))
    wind_p_mw: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (U,T)
    wind_q_mvar: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (U,T)
    #: (N,T) reactive power of the EV chargers, a withdrawal (sign as loads: > 0 absorbs) [MVAr]
    ev_q_mvar: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    #: (S,T) the same per station (index = ev.station_idx; empty without EV reactive power)
    ev_station_q_mvar: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    #: (S,T) net active power per station (charging positive) [MW] (empty without station limits)
    ev_station_p_mw: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    #: (N,T) load not served [MW] (zeros without ``load_shed_usd_per_mwh``)
    load_shed_mw: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    #: (S,m) zonotope coordinates and (S,T) station power of ``ev_zonotope`` (empty without one)
    ev_zono_xi: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    ev_zono_p_mw: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    #: (T,) up / down reserve of the chance layer (``dso.chance``) [MW] (empty without one)
    reserve_up_mw: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reserve_down_mw: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _incidence(node_idx: np.ndarray, n_nodes: int) -> sp.csr_matrix:
    """(N, K) 0/1 matrix, column k has a 1 in row node_idx[k]."""
    k = node_idx.shape[0]
    return sp.csr_matrix((np.ones(k), (node_idx, np.arange(k))), shape=(n_nodes, k))


@dataclass
class FeederModel:
    """cvxpy variables, named constraints and cost terms of one feeder (no Problem)."""

    name: str
    data: FeederData
    inputs: FeederInputs
    variables: dict[str, cp.Variable]
    constraints: dict[str, cp.Constraint]
    cost_terms: dict[str, cp.Expression]  # $ over the horizon; energy purchase NOT included
    p_import_mw: cp.Expression  # (T,)
    q_import_mvar: cp.Expression  # (T,)
    _ev_net_mw: cp.Expression | None = field(default=None, repr=False)
    #: the non-cost objective terms: "loss" daily active loss [MWh], "voltage_deviation" mean |w - 1| / 2 [p.u.]
    objective_terms: dict[str, cp.Expression] = field(default_factory=dict)
    _ev_q_mvar: cp.Expression | None = field(default=None, repr=False)  # (N,T)
    _station_q_mvar: cp.Expression | None = field(default=None, repr=False)  # (S,T)
    _station_p_mw: cp.Expression | None = field(default=None, repr=False)  # (S,T)
    #: Parameters a caller may update between solves (DPP): "ev_zono.c_mw" (S,T), "ev_zono.beta_mw" (S,m)
    parameters: dict[str, cp.Parameter] = field(default_factory=dict)
    _zono_p_mw: cp.Expression | None = field(default=None, repr=False)  # (S,T)
    #: the chance layer (``dso.chance.ChanceLayer``) when the inputs carry chance constraints
    chance: Any = field(default=None, repr=False)

    def objective(self, purchase_usd: cp.Expression | None = None) -> cp.Expression:
        """The case's weighted objective: w_cost (local cost + ``purchase_usd``) + w_loss loss + w_vdev deviation."""
        weights = dict(self.inputs.objective)
        if weights == {"cost": 1.0}:  # the default: exactly the cost problem (numbers of cost cases unchanged)
            return self.local_cost_usd() if purchase_usd is None else self.local_cost_usd() + purchase_usd
        total: cp.Expression = cp.Constant(0.0)
        if weights.get("cost", 0.0) > 0:
            cost = self.local_cost_usd() if purchase_usd is None else self.local_cost_usd() + purchase_usd
            total = total + weights["cost"] * cost
        for key in ("loss", "voltage_deviation"):
            if weights.get(key, 0.0) > 0:
                total = total + weights[key] * self.objective_terms[key]
        return total

    def local_cost_usd(self) -> cp.Expression:
        """Sum of the feeder's own cost terms [$] (fuel + curtailment + losses)."""
        total: cp.Expression = cp.Constant(0.0)
        for term in self.cost_terms.values():
            total = total + term
        return total

    def extract(self) -> FeederDispatch:
        """Numpy results; call after the problem containing this model was solved."""
        variables = self.variables
        if any(var.value is None for var in variables.values()):
            raise SolveError(f"feeder '{self.name}': model has no solution values", None)
        v = {name: value(var) for name, var in variables.items()}
        data, inp = self.data, self.inputs
        z_base = data.base_kv**2 / S_BASE_MVA
        i_base_ka = S_BASE_MVA / (np.sqrt(3.0) * data.base_kv)
        r_pu = data.r_ohm / z_base
        p_pu, q_pu = v["p_branch"], v["q_branch"]
        l_pu, w_pu = v["l_branch"], v["w_node"]
        l_pos = np.maximum(l_pu, 0.0)
        w_from = w_pu[data.from_idx, :] * data.taps[:, None] ** 2
        gap = (p_pu**2 + q_pu**2 - w_from * l_pu) * S_BASE_MVA**2
        n, t = inp.p_load_mw.shape
        g_pv, g_mt = _incidence(inp.pv_node_idx, n), _incidence(inp.mt_node_idx, n)
        g_wind = _incidence(inp.wind_node_idx, n)
        pv_p = v.get("pv_p_mw", np.zeros((0, t)))
        pv_q = v.get("pv_q_mvar", np.zeros((0, t)))
        wind_p = v.get("wind_p_mw", np.zeros((0, t)))
        wind_q = v.get("wind_q_mvar", np.zeros((0, t)))
        mt_p = v.get("mt_p_mw", np.zeros((0, t)))
        mt_q = v.get("mt_q_mvar", np.zeros((0, t)))
        ev_ch = v.get("ev_p_ch_mw", np.zeros(0))
        ev_dis = np.zeros(inp.ev.n_window)
        if "ev_p_dis_mw" in v:
            ev_dis[inp.ev.v2g_entries] = v["ev_p_dis_mw"]
        ev_net = inp.ev_fixed_mw.copy()
        if self._ev_net_mw is not None:
            ev_net = ev_net + value(self._ev_net_mw)
        dual = self.constraints["balance.p"].dual_value
        if dual is None:
            raise SolveError(f"feeder '{self.name}': balance.p has no dual value", None)
        dlmp = np.asarray(dual) / (S_BASE_MVA * inp.dt_h)
        return FeederDispatch(
            p_import_mw=value(self.p_import_mw),
            q_import_mvar=value(self.q_import_mvar),
            v_pu=np.sqrt(np.maximum(w_pu, 0.0)),
            p_branch_mw=p_pu * S_BASE_MVA,
            q_branch_mvar=q_pu * S_BASE_MVA,
            i_branch_ka=np.sqrt(l_pos) * i_base_ka,
            loss_mw=(r_pu @ l_pu) * S_BASE_MVA,
            pv_p_mw=np.asarray(pv_p), pv_q_mvar=np.asarray(pv_q),
            mt_p_mw=np.asarray(mt_p), mt_q_mvar=np.asarray(mt_q),
            ev_p_mw=ev_net,
            ev_p_ch_mw=np.asarray(ev_ch), ev_p_dis_mw=np.asarray(ev_dis),
            dlmp_usd_per_mwh=dlmp,
            cost_usd={k: scalar(e) for k, e in self.cost_terms.items()},
            soc_gap_mva2=float(np.abs(gap).max()) if gap.size else 0.0,
            p_gen_mw=g_pv @ pv_p + g_mt @ mt_p + g_wind @ wind_p,
            q_gen_mvar=g_pv @ pv_q + g_mt @ mt_q + g_wind @ wind_q,
            ev_alloc_share=self._alloc_share(),
            wind_p_mw=wind_p, wind_q_mvar=wind_q,
            ev_q_mvar=np.zeros((n, t)) if self._ev_q_mvar is None else value(self._ev_q_mvar),
            ev_station_q_mvar=np.zeros((0, t)) if self._station_q_mvar is None else value(self._station_q_mvar),
            ev_station_p_mw=np.zeros((0, t)) if self._station_p_mw is None else value(self._station_p_mw),
            load_shed_mw=v.get("load_shed_mw", np.zeros((n, t))),
            ev_zono_xi=v.get("ev_zono_xi", np.zeros((0, 0))),
            ev_zono_p_mw=np.zeros((0, t)) if self._zono_p_mw is None else value(self._zono_p_mw),
            reserve_up_mw=v.get("reserve_up_mw", np.zeros(0)), reserve_down_mw=v.get("reserve_down_mw", np.zeros(0)),
        )

    def _alloc_share(self) -> np.ndarray:
        ev = self.inputs.ev
        share = np.ones(ev.n_envelopes)
        if "ev_alloc" in self.variables:
            share[ev.shared_envelopes] = value(self.variables["ev_alloc"])
        return share


def build_feeder_model(data: FeederData, inputs: FeederInputs) -> FeederModel:
    """Create the DistFlow SOC variables, named constraints and cost terms (no Problem).

    Works alone or inside a larger joint problem: link `p_import_mw` to the TSO there.
    """
    inp = inputs
    n, t = inp.p_load_mw.shape
    if n != data.n_nodes:
        raise FeederInputError(f"feeder '{data.name}': p_load_mw has {n} nodes, "
                               f"the feeder has {data.n_nodes}")
    b = data.n_branches
    dt = inp.dt_h
    s = S_BASE_MVA
    z_base = data.base_kv**2 / s
    i_base_ka = s / (np.sqrt(3.0) * data.base_kv)
    r = (data.r_ohm / z_base)[:, None]  # (B,1) p.u.
    x = (data.x_ohm / z_base)[:, None]
    a_from = _incidence(data.from_idx, n)  # (N,B)
    a_to = _incidence(data.to_idx, n)
    e_sub = np.zeros((n, 1))
    e_sub[0, 0] = 1.0

    p_br = cp.Variable((b, t), name=f"{data.name}.p_branch_pu")
    q_br = cp.Variable((b, t), name=f"{data.name}.q_branch_pu")
    l_br = cp.Variable((b, t), nonneg=True, name=f"{data.name}.l_branch_pu")
    w_nd = cp.Variable((n, t), nonneg=True, name=f"{data.name}.w_node_pu")
    p_imp = cp.Variable(t, name=f"{data.name}.p_import_mw")
    q_imp = cp.Variable(t, name=f"{data.name}.q_import_mvar")
    variables: dict[str, cp.Variable] = {
        "p_branch": p_br, "q_branch": q_br, "l_branch": l_br, "w_node": w_nd,
        "p_import_mw": p_imp, "q_import_mvar": q_imp,
    }
    cons: dict[str, cp.Constraint] = {}
    costs: dict[str, cp.Expression] = {
        "mt_fuel": cp.Constant(0.0), "pv_curtailment": cp.Constant(0.0), "loss": cp.Constant(0.0)}

    # Net nodal injection [MW] from local resources (constants plus variables).
    p_inj: cp.Expression = cp.Constant(-(inp.p_load_mw + inp.ev_fixed_mw))
    q_inj: cp.Expression = cp.Constant(-inp.q_load_mvar)

    def inverter_der(key: str, node_idx: np.ndarray, avail_mw: np.ndarray, s_mva: np.ndarray,
                     curtail_usd_per_mwh: float) -> tuple[cp.Expression, cp.Expression]:
        """Renewable units behind inverters (PV, wind): 0 <= p <= available, ||(p, q)|| <= S as one cone over
        all unit-hours, curtailment priced; returns their (N,T) nodal P and Q injections."""
        g = node_idx.shape[0]
        p_der = cp.Variable((g, t), nonneg=True, name=f"{data.name}.{key}_p_mw")
        q_der = cp.Variable((g, t), name=f"{data.name}.{key}_q_mvar")
        variables[f"{key}_p_mw"], variables[f"{key}_q_mvar"] = p_der, q_der
        cons[f"{key}.avail"] = p_der <= avail_mw if inp.curtailable else p_der == avail_mw
        if not inp.der_q:
            cons[f"{key}.unity_pf"] = q_der == 0
        cons[f"{key}.capability"] = cp.SOC(np.repeat(s_mva, t), cp.vstack([cp.vec(p_der, order="C"),
                                                                            cp.vec(q_der, order="C")]), axis=0)
        costs[f"{key}_curtailment"] = curtail_usd_per_mwh * dt * cp.sum(avail_mw - p_der)
        inc = _incidence(node_idx, n)
        return inc @ p_der, inc @ q_der

    if inp.pv_node_idx.shape[0]:
        p_der, q_der = inverter_der("pv", inp.pv_node_idx, inp.pv_avail_mw, inp.pv_s_mva, inp.pv_curtail_usd_per_mwh)
        p_inj, q_inj = p_inj + p_der, q_inj + q_der
    if inp.wind_node_idx.shape[0]:
        p_der, q_der = inverter_der("wind", inp.wind_node_idx, inp.wind_avail_mw, inp.wind_s_mva,
                                    inp.wind_curtail_usd_per_mwh)
        p_inj, q_inj = p_inj + p_der, q_inj + q_der

    m = inp.mt_node_idx.shape[0]
    if m:
        mt_p = cp.Variable((m, t), name=f"{data.name}.mt_p_mw")
        mt_q = cp.Variable((m, t), name=f"{data.name}.mt_q_mvar")
        variables |= {"mt_p_mw": mt_p, "mt_q_mvar": mt_q}
        cons["mt.p_min"] = mt_p >= inp.mt_p_min_mw[:, None] * np.ones((1, t))
        cons["mt.p_max"] = mt_p <= inp.mt_p_max_mw[:, None] * np.ones((1, t))
        cons["mt.q_abs"] = cp.abs(mt_q) <= inp.mt_q_max_mvar[:, None] * np.ones((1, t))
        if not inp.der_q:
            cons["mt.unity_pf"] = mt_q == 0
        if t > 1:
            cons["mt.ramp"] = cp.abs(cp.diff(mt_p, axis=1)) <= (inp.mt_ramp_mw_per_h * dt)[:, None] * np.ones(
                (1, t - 1))
        c1 = inp.mt_c1_usd_per_mwh[:, None] * np.ones((1, t))
        c2 = inp.mt_c2_usd_per_mw2h[:, None] * np.ones((1, t))
        costs["mt_fuel"] = dt * (cp.sum(cp.multiply(c1, mt_p)) + cp.sum(cp.multiply(c2, cp.square(mt_p))))
        g_mt = _incidence(inp.mt_node_idx, n)
        p_inj = p_inj + g_mt @ mt_p
        q_inj = q_inj + g_mt @ mt_q

    ev = inp.ev
    ev_net: cp.Expression | None = None
    ev_q_nodes: cp.Expression | None = None
    station_q: cp.Expression | None = None
    station_p: cp.Expression | None = None
    if ev.n_window:
        w_len = ev.n_window
        p_ch = cp.Variable(w_len, nonneg=True, name=f"{data.name}.ev_p_ch_mw")
        # discharge variables only where discharging is possible (V2G entries): most EVs cannot
        v2g = ev.v2g_entries
        p_dis_v2g = cp.Variable(v2g.size, nonneg=True, name=f"{data.name}.ev_p_dis_mw")
        p_dis = sp.csr_matrix((np.ones(v2g.size), (v2g, np.arange(v2g.size))), shape=(w_len, v2g.size)) @ p_dis_v2g
        variables |= {"ev_p_ch_mw": p_ch, "ev_p_dis_mw": p_dis_v2g}
        env = ev.envelope_of_window
        # stored energy gained since plug-in, by recursion e[k] = e[k-1] + eta_ch p_ch dt - p_dis dt / eta_dis
        stored = cp.Variable(w_len, name=f"{data.name}.ev_stored_mwh")
        variables["ev_stored_mwh"] = stored
        cons["ev.energy"] = stored - ev.shift_matrix() @ stored == (
            cp.multiply(ev.eta_ch[env] * dt, p_ch) - cp.multiply(dt / ev.eta_dis[env], p_dis))
        shared = ev.shared_envelopes
        if shared.size:
            # spatial allocation: envelope e serves a fraction a_e of its group's need, bounds x a_e
            alloc = cp.Variable(shared.size, nonneg=True, name=f"{data.name}.ev_alloc")
            variables["ev_alloc"] = alloc
            pos = np.full(ev.n_envelopes, -1)
            pos[shared] = np.arange(shared.size)
            rows = np.flatnonzero(pos[env] >= 0)
            to_win = sp.csr_matrix((np.ones(rows.size), (rows, pos[env][rows])), shape=(w_len, shared.size))
            fixed = (pos[env] < 0).astype(float)
            scale = fixed + to_win @ alloc  # (W,) 1 for lone envelopes, a_e for shared ones
            assert ev.alloc_group is not None
            _, grp = np.unique(ev.alloc_group[shared], return_inverse=True)
            grp = grp.reshape(-1)
            sum_rows = sp.csr_matrix((np.ones(shared.size), (grp, np.arange(shared.size))),
                                     shape=(int(grp.max()) + 1, shared.size))
            cons["ev.alloc"] = sum_rows @ alloc == 1.0
            cons["ev.p_ch_max"] = p_ch <= cp.multiply(ev.p_ch_max_mw, scale)
            cons["ev.p_dis_max"] = p_dis_v2g <= cp.multiply(ev.p_dis_max_mw[v2g], to_win[v2g] @ alloc
                                                            + fixed[v2g])
            cons["ev.e_min"] = stored >= cp.multiply(ev.e_min_mwh, scale)
            cons["ev.e_max"] = stored <= cp.multiply(ev.e_max_mwh, scale)
        else:
            cons["ev.p_ch_max"] = p_ch <= ev.p_ch_max_mw
            cons["ev.p_dis_max"] = p_dis_v2g <= ev.p_dis_max_mw[v2g]
            cons["ev.e_min"] = stored >= ev.e_min_mwh
            cons["ev.e_max"] = stored <= ev.e_max_mwh
        if ev.station_idx is not None and ev.station_p_max_mw is not None:
            # connection limit per station-period on the net EV power: |sum of its envelopes| <= p_max
            n_st = ev.station_p_max_mw.shape[0]
            st_map = windows.period_map(ev.start, ev.dwell, t, ev.station_idx, n_st)
            used = np.flatnonzero(np.asarray(st_map.sum(axis=1)).reshape(-1) > 0)
            cons["ev.station_limit"] = cp.abs(st_map[used] @ (p_ch - p_dis)) <= np.repeat(
                ev.station_p_max_mw, t)[used]
            station_p = cp.reshape(st_map @ (p_ch - p_dis), (n_st, t), order="C")
            if inp.ev_q_mode != "none" and inp.der_q:
                # four-quadrant chargers: one cone over the station-periods where Q is available,
                # ||(P_st, Q_st)|| <= S_st; Q_st is a withdrawal (sign as loads)
                avail = (np.asarray(st_map.sum(axis=1)).reshape(-1) > 0) if inp.ev_q_mode == "plugged" else (
                    np.ones(n_st * t, dtype=bool))
                q_rows = np.flatnonzero(avail)
                q_st = cp.Variable(q_rows.size, name=f"{data.name}.ev_q_mvar")
                variables["ev_q_mvar"] = q_st
                p_rows = sp.csr_matrix((np.ones(q_rows.size), (np.arange(q_rows.size), q_rows)),
                                       shape=(q_rows.size, n_st * t))
                cons["ev.converter"] = cp.SOC(np.repeat(inp.station_s_mva, t)[q_rows],
                                              cp.vstack([p_rows @ cp.vec(station_p, order="C"), q_st]), axis=0)
                station_q = cp.reshape(p_rows.T @ q_st, (n_st, t), order="C")
                st_nodes = _incidence(inp.station_node_idx, n)
                ev_q_nodes = st_nodes @ station_q
        ev_net = cp.reshape(ev.node_period_map(n, t) @ (p_ch - p_dis), (n, t), order="C")
        p_inj = p_inj - ev_net
        if ev_q_nodes is not None:
            q_inj = q_inj - ev_q_nodes

    parameters: dict[str, cp.Parameter] = {}
    zono_p: cp.Expression | None = None
    z = inp.ev_zonotope
    if z is not None:
        n_s, m_g = z.beta_mw.shape
        xi = cp.Variable((n_s, m_g), name=f"{data.name}.ev_zono_xi")
        c_par = cp.Parameter((n_s, t), name=f"{data.name}.ev_zono_c_mw", value=z.c_mw)
        b_par = cp.Parameter((n_s, m_g), nonneg=True, name=f"{data.name}.ev_zono_beta_mw", value=z.beta_mw)
        parameters |= {"ev_zono.c_mw": c_par, "ev_zono.beta_mw": b_par}
        variables["ev_zono_xi"] = xi
        cons["ev_zono.box"] = cp.abs(xi) <= 1.0
        zono_p = c_par + cp.multiply(b_par, xi) @ z.generators.T  # (S,T) MW, charging positive
        zono_nodes = _incidence(z.node_idx, n) @ zono_p
        p_inj = p_inj - zono_nodes
        ev_net = zono_nodes if ev_net is None else ev_net + zono_nodes
    if inp.load_shed_usd_per_mwh is not None:
        # shed load keeps its power factor: q_shed = (q / p) p_shed
        p_load = np.maximum(inp.p_load_mw, 0.0)
        ratio = np.divide(inp.q_load_mvar, inp.p_load_mw, out=np.zeros_like(p_load), where=inp.p_load_mw > 0)
        shed = cp.Variable((n, t), nonneg=True, name=f"{data.name}.load_shed_mw")
        variables["load_shed_mw"] = shed
        cons["load_shed.max"] = shed <= p_load
        costs["load_shed"] = inp.load_shed_usd_per_mwh * dt * cp.sum(shed)
        p_inj = p_inj + shed
        q_inj = q_inj + cp.multiply(ratio, shed)
    if inp.p_import_max_mw is not None:
        cons["import.max"] = p_imp <= inp.p_import_max_mw
    if inp.p_import_min_mw is not None:
        cons["import.min"] = p_imp >= inp.p_import_min_mw

    # Branch flow model in p.u.
    w_from = a_from.T @ w_nd  # (B,T)
    if np.any(data.taps != 1.0):  # |V|^2 after the sending end's ideal transformer
        w_from = cp.multiply((data.taps**2)[:, None], w_from)
    w_to = a_to.T @ w_nd
    cons["voltage.drop"] = w_to == w_from - 2 * (cp.multiply(r, p_br) + cp.multiply(x, q_br)) + cp.multiply(
        r**2 + x**2, l_br)
    # Withdrawal minus injection == 0; the dual is the marginal cost of withdrawal (see extract).
    cons["balance.p"] = (a_from @ p_br - a_to @ (p_br - cp.multiply(r, l_br))
                         - (p_inj + e_sub @ cp.reshape(p_imp, (1, t), order="C")) / s) == 0
    cons["balance.q"] = (a_from @ q_br - a_to @ (q_br - cp.multiply(x, l_br))
                         - (q_inj + e_sub @ cp.reshape(q_imp, (1, t), order="C")) / s) == 0
    # One cone over all branch-hours: ||(2P, 2Q, w_i - l)|| <= w_i + l  <=>  P^2 + Q^2 <= w_i l.
    pf, qf, lf, wf = (cp.vec(e, order="C") for e in (p_br, q_br, l_br, w_from))
    cons["soc.branch"] = cp.SOC(wf + lf, cp.vstack([2 * pf, 2 * qf, wf - lf]), axis=0)
    cons["voltage.sub"] = w_nd[0, :] == inp.v_sub_pu**2
    cons["voltage.min"] = w_nd[1:, :] >= inp.v_min_pu**2
    cons["voltage.max"] = w_nd[1:, :] <= inp.v_max_pu**2
    limited = np.flatnonzero(np.isfinite(data.i_max_ka))
    if limited.size:
        l_max = ((data.i_max_ka[limited] / i_base_ka) ** 2)[:, None] * np.ones((1, t))
        cons["branch.i_max"] = l_br[limited, :] <= l_max

    loss_mwh = dt * s * cp.sum(r.ravel() @ l_br)
    costs["loss"] = inp.loss_cost_usd_per_mwh * loss_mwh
    # mean over non-substation nodes and periods of |V - 1| ~ |w - 1| / 2 (first order in V - 1)
    vdev = cp.sum(cp.abs(w_nd[1:, :] - 1.0)) / (2.0 * (n - 1) * t) if n > 1 else cp.Constant(0.0)
    model = FeederModel(
        name=data.name, data=data, inputs=inp, variables=variables, constraints=cons, cost_terms=costs,
        p_import_mw=p_imp, q_import_mvar=q_imp, _ev_net_mw=ev_net,
        objective_terms={"loss": loss_mwh, "voltage_deviation": vdev},
        _ev_q_mvar=ev_q_nodes, _station_q_mvar=station_q, _station_p_mw=station_p,
        parameters=parameters, _zono_p_mw=zono_p,
    )
    if inp.chance is not None:
        inp.chance.attach(model)  # dso.chance.ChanceInputs: reserves, recourse and the joint chance constraints
    return model
