"""Flexibility envelopes of an EV fleet (inner by proportional sharing, outer virtual battery, exact) and
their disaggregation into per-EV schedules.

Window-local flat form: envelope j is plugged in during periods (start[j] + k) % T for k < dwell[j]; every
per-period array (p_ch_max_mw, ..., e_max_mwh) concatenates the envelopes' windows in envelope order
(offsets = cumsum of dwell). Stored-energy gain since plug-in at the end of window period k is
S_k = sum_{m<=k} (eta_ch * p_ch_m - p_dis_m / eta_dis) * dt_h.

Per EV i (need e_i, window length D_i, grid-side limits p_ch_i, p_dis_i, efficiency eta_i) the stored-gain
bounds after m = k+1 window periods (r = D_i - m remaining) are
    lo_ik = max(soc_min_i - soc_arr_i, -m p_dis_i dt / eta_i, e_i - r eta_i p_ch_i dt)
    hi_ik = min(cap_i - soc_arr_i,      m eta_i p_ch_i dt,    e_i + r p_dis_i dt / eta_i)
(the last two terms are implied by the power box and the final condition S_D = e_i; keeping them makes
the envelopes tighter without changing the feasible set), and lo = hi = e_i in the last period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from aggregator.fleet import EV, FleetArrays, FleetError, Station, fleet_arrays
from core import windows

POWER_TOL_MW = 1e-6  # tolerance for a group profile to count as inside its envelope
#: how far allocate_stations may scale a profile above its bound to meet the need exactly (half POWER_TOL_MW: the
#: other half is left to the dispatch's own solver residual)
SCALE_TOL_MW = 0.5 * POWER_TOL_MW


@dataclass(frozen=True)
class FleetFlexibility:
    """Envelopes of a fleet in flat window-local form (see module docstring); MW, MWh, 1-based nodes."""

    node: np.ndarray  # (E,) int 1-based feeder node label of the envelope's station
    station_id: tuple[str, ...]  # (E,)
    start: np.ndarray  # (E,) int first plugged-in period index
    dwell: np.ndarray  # (E,) int periods plugged in; window = (start + k) % T for k < dwell
    p_ch_max_mw: np.ndarray  # (sum dwell,) grid-side charging limit
    p_dis_max_mw: np.ndarray  # (sum dwell,) grid-side discharging limit
    e_min_mwh: (
        np.ndarray
    )  # (sum dwell,) min stored-energy gain since plug-in at end of each window period
    e_max_mwh: np.ndarray  # (sum dwell,)
    eta_ch: np.ndarray  # (E,) stored += eta_ch * p_ch * dt
    eta_dis: np.ndarray  # (E,) stored -= p_dis / eta_dis * dt
    members: tuple[np.ndarray, ...]  # (E,) indices into the fleet list of the EVs in each envelope
    share: np.ndarray  # (n_evs,) each EV's share e_i / E_g of its envelope (group)
    #: (E,) allocation group: envelopes with one group are the same EVs at different stations (spatial
    #: scheduling); each holds the bounds of the whole group, to be scaled by the fraction of the group's
    #: need served there (fractions sum to 1). None = every envelope its own group.
    group: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.group is None:
            object.__setattr__(self, "group", np.arange(self.start.size, dtype=np.int64))

    @property
    def n_envelopes(self) -> int:
        return int(self.start.size)

    @property
    def alloc_group(self) -> np.ndarray:
        """(E,) int allocation group of each envelope (see ``group``)."""
        assert self.group is not None
        return self.group

    @property
    def is_spatial(self) -> bool:
        """True if some group spans several stations."""
        g = self.alloc_group
        return bool(g.size and np.unique(g).size < g.size)


@dataclass(frozen=True)
class Disaggregation:
    """Per-EV schedules (kW, kWh) on the calendar grid (n_evs, T); charging positive, grid side."""

    p_ch_kw: np.ndarray  # (n_evs, T)
    p_dis_kw: np.ndarray  # (n_evs, T)
    p_kw: np.ndarray  # (n_evs, T) net = p_ch - p_dis
    soc_kwh: np.ndarray  # (n_evs, T) stored energy at the end of each period, NaN when unplugged
    delivered_kwh: np.ndarray  # (n_evs,) stored-energy gain at departure, from the schedule
    unmet_kwh: np.ndarray  # (n_evs,) max(need - delivered, 0)


# ----------------------------------------------------------------------------------------------
# window bookkeeping


def window_periods(flex: FleetFlexibility, n_periods: int) -> np.ndarray:
    """(sum dwell,) calendar period index of every flat window entry."""
    return windows.periods(flex.start, flex.dwell, n_periods)


def envelope_of_entry(flex: FleetFlexibility) -> np.ndarray:
    """(sum dwell,) envelope index of every flat window entry."""
    return windows.owner(flex.dwell)


def window_cumsum_matrix(flex: FleetFlexibility) -> sp.csr_matrix:
    """Sparse L (sum dwell x sum dwell) with (L x)_k = sum of x over the same window up to k."""
    return windows.cumsum_matrix(flex.dwell)


def period_map_matrix(flex: FleetFlexibility, n_periods: int) -> sp.csr_matrix:
    """Sparse M (T x sum dwell): (M x)_t = sum of the flat entries that fall in calendar period t."""
    return windows.period_map(flex.start, flex.dwell, n_periods)


# ----------------------------------------------------------------------------------------------
# per-EV bounds


@dataclass(frozen=True)
class _EVWindows:
    owner: np.ndarray  # (sum D_i,) EV index
    k: np.ndarray  # (sum D_i,) window-local period
    offsets: np.ndarray  # (n_evs + 1,)
    lo_kwh: np.ndarray  # (sum D_i,) stored-gain lower bound
    hi_kwh: np.ndarray  # (sum D_i,)


def _ev_windows(fa: FleetArrays, dt_h: float) -> _EVWindows:
    owner, k, offsets = windows.layout(fa.dwell)
    eta = fa.efficiency[owner]
    ch_kwh = eta * fa.p_ch_kw[owner] * dt_h
    dis_kwh = fa.p_dis_kw[owner] / eta * dt_h
    m = k + 1
    r = fa.dwell[owner] - m
    need = fa.need_kwh[owner]
    lower = (fa.soc_min_kwh - fa.soc_arrival_kwh)[owner]
    upper = (fa.capacity_kwh - fa.soc_arrival_kwh)[owner]
    lo = np.maximum.reduce([lower, -m * dis_kwh, need - r * ch_kwh])
    hi = np.minimum.reduce([upper, m * ch_kwh, need + r * dis_kwh])
    last = r == 0
    lo[last] = need[last]
    hi[last] = need[last]
    return _EVWindows(owner, k, offsets, lo, hi)


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(group of each EV, first EV of each group) for rows of an int key matrix."""
    if keys.shape[0] == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    return inverse.reshape(-1), first


def _build(
    fa: FleetArrays,
    stations: Sequence[Station],
    group: np.ndarray,
    first: np.ndarray,
    dt_h: float,
    outer: bool,
    spatial: bool = False,
) -> FleetFlexibility:
    flex = _build_groups(fa, stations, group, first, dt_h, outer)
    if not spatial:
        return flex
    return _expand_stations(fa, stations, flex, group, first)


def _expand_stations(
    fa: FleetArrays, stations: Sequence[Station], flex: FleetFlexibility, group: np.ndarray, first: np.ndarray
) -> FleetFlexibility:
    """One envelope per (group, reachable station), each with the whole group's bounds and the group index;
    members of envelope (g, s) = the EVs of g whose own station is s."""
    env_group: list[int] = []
    env_station: list[int] = []
    for g, i in enumerate(first.tolist()):
        for s in fa.reach_sets[int(fa.reach_code[i])]:
            env_group.append(g)
            env_station.append(s)
    eg = np.array(env_group, dtype=np.int64)
    es = np.array(env_station, dtype=np.int64)
    if eg.size == first.size:
        return flex  # no EV can reach another station
    _, _, off_g = windows.layout(flex.dwell)
    dwell = flex.dwell[eg]
    owner, k, _ = windows.layout(dwell)
    flat = off_g[eg[owner]] + k
    env_index = {(g, s): r for r, (g, s) in enumerate(zip(env_group, env_station, strict=True))}
    home_env = np.array([env_index[(int(group[i]), int(fa.station_index[i]))] for i in range(group.size)],
                        dtype=np.int64)
    order = np.argsort(home_env, kind="stable")
    members = tuple(np.split(order, np.cumsum(np.bincount(home_env, minlength=eg.size))[:-1]))
    nodes = np.array([st.node for st in stations], dtype=np.int64)
    return FleetFlexibility(
        node=nodes[es],
        station_id=tuple(stations[j].station_id for j in env_station),
        start=flex.start[eg],
        dwell=dwell,
        p_ch_max_mw=flex.p_ch_max_mw[flat],
        p_dis_max_mw=flex.p_dis_max_mw[flat],
        e_min_mwh=flex.e_min_mwh[flat],
        e_max_mwh=flex.e_max_mwh[flat],
        eta_ch=flex.eta_ch[eg],
        eta_dis=flex.eta_dis[eg],
        members=members,
        share=flex.share,
        group=eg,
    )


def _build_groups(
    fa: FleetArrays,
    stations: Sequence[Station],
    group: np.ndarray,
    first: np.ndarray,
    dt_h: float,
    outer: bool,
) -> FleetFlexibility:
    n_g = first.size
    need = fa.need_kwh
    e_g = np.bincount(group, weights=need, minlength=n_g)  # E_g, kWh
    start_g = fa.start[first]
    dwell_g = fa.dwell[first]
    owner_g, _, off_g = windows.layout(dwell_g)
    w = _ev_windows(fa, dt_h)
    gidx = off_g[group[w.owner]] + w.k  # flat envelope entry of each flat EV entry
    n_flat = int(off_g[-1])
    if outer:
        p_ch_g = np.bincount(group, weights=fa.p_ch_kw, minlength=n_g)
        p_dis_g = np.bincount(group, weights=fa.p_dis_kw, minlength=n_g)
        e_min = np.bincount(gidx, weights=w.lo_kwh, minlength=n_flat)
        e_max = np.bincount(gidx, weights=w.hi_kwh, minlength=n_flat)
    else:
        p_ch_g = np.full(n_g, np.inf)
        np.minimum.at(p_ch_g, group, fa.p_ch_kw / need)
        p_ch_g *= e_g
        p_dis_g = np.full(n_g, np.inf)
        np.minimum.at(p_dis_g, group, fa.p_dis_kw / need)
        p_dis_g *= e_g
        e_min = np.full(n_flat, -np.inf)
        np.maximum.at(e_min, gidx, w.lo_kwh / need[w.owner])
        e_max = np.full(n_flat, np.inf)
        np.minimum.at(e_max, gidx, w.hi_kwh / need[w.owner])
        e_min *= e_g[owner_g]
        e_max *= e_g[owner_g]
    order = np.argsort(group, kind="stable")
    members = tuple(np.split(order, np.cumsum(np.bincount(group, minlength=n_g))[:-1]))
    sid = [s.station_id for s in stations]
    return FleetFlexibility(
        node=fa.node[first].copy(),
        station_id=tuple(sid[i] for i in fa.station_index[first]),
        start=start_g.copy(),
        dwell=dwell_g.copy(),
        p_ch_max_mw=np.repeat(p_ch_g, dwell_g) / 1e3,
        p_dis_max_mw=np.repeat(p_dis_g, dwell_g) / 1e3,
        e_min_mwh=e_min / 1e3,
        e_max_mwh=e_max / 1e3,
        eta_ch=fa.efficiency[first].copy(),
        eta_dis=fa.efficiency[first].copy(),
        members=members,
        share=need / e_g[group] if need.size else np.zeros(0),
    )


def _eff_code(fa: FleetArrays) -> np.ndarray:
    return np.unique(fa.efficiency, return_inverse=True)[1].reshape(-1)


def inner_flexibility(
    evs: Sequence[EV],
    stations: Sequence[Station],
    dt_h: float = 1.0,
    n_periods: int = 24,
    laxity_bins: int = 1,
    spatial: bool = True,
) -> FleetFlexibility:
    """Guaranteed-disaggregable inner envelopes by proportional sharing.

    Spatial scheduling (``spatial`` and EVs with ``alt_stations``): the station part of the group key is the
    EV's set of reachable stations; such a group yields one envelope per station of the set, all with the
    group's bounds and ``group`` index. Every bound scales linearly with the need E_g, so serving a fraction
    a_s of E_g at station s (sum_s a_s = 1) is the same envelope with bounds x a_s: the DSO picks the a_s
    (an LP), and :func:`allocate_stations` turns them into whole EVs per station. ``spatial=False`` (or no
    alternatives) keys by the EV's own station: temporal-only scheduling.

    EVs are grouped by (station, start, dwell, efficiency, V2G yes/no); in group g with E_g = sum_i e_i
    every EV follows p_i = (e_i / E_g) P_g, so P_ch_g <= E_g min_i p_ch_i/e_i, P_dis_g <= E_g min_i
    p_dis_i/e_i and E_g max_i lo_ik/e_i <= S_g,k <= E_g min_i hi_ik/e_i (= E_g in the last period).
    Proof that any P_g inside disaggregates: (1) with s_i = e_i/E_g, p_i = s_i P_g gives
    p_ch_i = s_i P_ch_g <= s_i E_g p_ch_i/e_i = p_ch_i,max, likewise p_dis_i; (2) all members share
    eta and the window, so S_i,k = s_i S_g,k is linear in P_g; (3) E_g lo_ik/e_i <= S_g,k <= E_g hi_ik/e_i
    scales by s_i to lo_ik <= S_i,k <= hi_ik, the SOC limits; (4) S_g,D = E_g gives S_i,D = e_i, the need
    exactly; (5) outside the shared window P_g = 0, hence p_i = 0. The set is exactly the profiles that
    proportional sharing can follow, so it lies inside the Minkowski sum of the EVs' sets.

    ``laxity_bins > 1`` also splits groups by need / (eta p_ch D dt_h) in equal bins of [0, 1]: more
    envelopes, less flexibility lost to the min/max over dissimilar members.
    """
    if laxity_bins < 1:
        raise FleetError(f"laxity_bins={laxity_bins!r} must be >= 1")
    fa = fleet_arrays(evs, stations, dt_h, n_periods)
    fill = fa.need_kwh / (fa.efficiency * fa.p_ch_kw * fa.dwell * dt_h)
    lax_bin = np.minimum((fill * laxity_bins).astype(np.int64), laxity_bins - 1)
    # station key: own station, or (spatial) n_stations + code of the reachable set when it has > 1 station
    multi = np.array([len(fa.reach_sets[c]) > 1 for c in fa.reach_code.tolist()], dtype=bool)
    use_set = multi if spatial else np.zeros_like(multi)
    st_key = np.where(use_set, len(stations) + fa.reach_code, fa.station_index)
    keys = np.stack(
        [st_key, fa.start, fa.dwell, _eff_code(fa), (fa.p_dis_kw > 0).astype(np.int64), lax_bin],
        axis=1,
    )
    group, first = _groups(keys)
    return _build(fa, stations, group, first, dt_h, outer=False, spatial=bool(use_set.any()))


def exact_flexibility(
    evs: Sequence[EV], stations: Sequence[Station], dt_h: float = 1.0, n_periods: int = 24
) -> FleetFlexibility:
    """One envelope per EV: the exact per-EV feasible sets (share 1), as large as the fleet."""
    fa = fleet_arrays(evs, stations, dt_h, n_periods)
    n = fa.need_kwh.size
    return _build(fa, stations, np.arange(n), np.arange(n), dt_h, outer=False)


def outer_flexibility(
    evs: Sequence[EV], stations: Sequence[Station], dt_h: float = 1.0, n_periods: int = 24
) -> FleetFlexibility:
    """Plain "virtual battery" per (station, window, efficiency): sums of the EVs' power and energy bounds.

    An outer approximation of the Minkowski sum: every feasible fleet schedule maps inside, but a profile
    inside need not be disaggregable (disaggregate() checks and refuses it). share = e_i / E_g.
    """
    fa = fleet_arrays(evs, stations, dt_h, n_periods)
    keys = np.stack([fa.station_index, fa.start, fa.dwell, _eff_code(fa)], axis=1)
    group, first = _groups(keys)
    return _build(fa, stations, group, first, dt_h, outer=True)


# ----------------------------------------------------------------------------------------------
# profiles


def _uncontrolled_flat_kw(fa: FleetArrays, dt_h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    owner, k, _ = windows.layout(fa.dwell)
    eta = fa.efficiency[owner]
    p_max = fa.p_ch_kw[owner]
    left_kwh = fa.need_kwh[owner] - eta * p_max * dt_h * k  # stored energy still missing at period start
    p_kw = np.clip(left_kwh / (eta * dt_h), 0.0, p_max)
    return owner, k, p_kw


def uncontrolled_schedule_kw(
    evs: Sequence[EV], stations: Sequence[Station], dt_h: float = 1.0, n_periods: int = 24
) -> np.ndarray:
    """(n_evs, T) grid-side kW: each EV charges at full power from its first plugged-in period until its
    need is met (stored = efficiency * grid power * dt_h), the usual-practice baseline."""
    fa = fleet_arrays(evs, stations, dt_h, n_periods)
    owner, k, p_kw = _uncontrolled_flat_kw(fa, dt_h)
    out = np.zeros((fa.need_kwh.size, n_periods))
    out[owner, (fa.start[owner] + k) % n_periods] = p_kw
    return out


def uncontrolled_profile(
    evs: Sequence[EV], stations: Sequence[Station], dt_h: float = 1.0, n_periods: int = 24
) -> np.ndarray:
    """(S, T) MW per station (order of ``stations``) of :func:`uncontrolled_schedule_kw`. Station limits
    are not applied (the usual-practice baseline ignores them)."""
    fa = fleet_arrays(evs, stations, dt_h, n_periods)
    owner, k, p_kw = _uncontrolled_flat_kw(fa, dt_h)
    out = np.zeros((len(stations), n_periods))
    np.add.at(out, (fa.station_index[owner], (fa.start[owner] + k) % n_periods), p_kw / 1e3)
    return out


def station_power(
    flex: FleetFlexibility,
    p_ch_mw: np.ndarray,
    p_dis_mw: np.ndarray,
    n_periods: int,
    station_ids: Sequence[str] | None = None,
) -> np.ndarray:
    """(S, T) net grid-side MW (charging positive) per station, rows in ``station_ids`` order
    (default: order of first appearance in flex.station_id)."""
    p_ch, p_dis = _check_profile_shape(flex, p_ch_mw, p_dis_mw)
    ids = list(dict.fromkeys(flex.station_id)) if station_ids is None else list(station_ids)
    row = {s: i for i, s in enumerate(ids)}
    unknown = [s for s in flex.station_id if s not in row]
    if unknown:
        raise FleetError(f"station_ids: envelope station {unknown[0]!r} is not listed")
    env_row = np.array([row[s] for s in flex.station_id], dtype=np.int64)
    out = np.zeros((len(ids), n_periods))
    np.add.at(out, (env_row[envelope_of_entry(flex)], window_periods(flex, n_periods)), p_ch - p_dis)
    return out


def _check_profile_shape(flex: FleetFlexibility, p_ch_mw: np.ndarray, p_dis_mw: np.ndarray):
    n = flex.p_ch_max_mw.size
    p_ch = np.asarray(p_ch_mw, dtype=float).reshape(-1)
    p_dis = np.asarray(p_dis_mw, dtype=float).reshape(-1)
    for name, v in (("p_ch_mw", p_ch), ("p_dis_mw", p_dis)):
        if v.size != n:
            raise FleetError(f"{name}: has {v.size} entries, the envelopes have sum(dwell) = {n}")
        if not np.all(np.isfinite(v)):
            raise FleetError(f"{name}: entry {int(np.flatnonzero(~np.isfinite(v))[0])} is not finite")
    return p_ch, p_dis


def _refuse(flex: FleetFlexibility, entry: int, what: str, value: float, bound: float) -> None:
    j = int(envelope_of_entry(flex)[entry])
    k = entry - int(np.sum(flex.dwell[:j]))
    raise FleetError(
        f"envelope {j} (station '{flex.station_id[j]}', window period {k}): {what}={value:.9g} outside"
        f" bound {bound:.9g}; profile refused"
    )


def envelope_violation(
    flex: FleetFlexibility, p_ch_mw: np.ndarray, p_dis_mw: np.ndarray, dt_h: float
) -> float:
    """Largest bound violation of a group profile, in MW (energy violations divided by dt_h)."""
    p_ch, p_dis = _check_profile_shape(flex, p_ch_mw, p_dis_mw)
    owner, _, off = windows.layout(flex.dwell)
    s = windows.segment_cumsum((flex.eta_ch[owner] * p_ch - p_dis / flex.eta_dis[owner]) * dt_h, off)
    v = [
        -p_ch,
        p_ch - flex.p_ch_max_mw,
        -p_dis,
        p_dis - flex.p_dis_max_mw,
        (flex.e_min_mwh - s) / dt_h,
        (s - flex.e_max_mwh) / dt_h,
    ]
    return float(max(np.max(x, initial=0.0) for x in v))


def disaggregate(
    evs: Sequence[EV],
    flex: FleetFlexibility,
    p_ch_mw: np.ndarray,
    p_dis_mw: np.ndarray,
    dt_h: float = 1.0,
    n_periods: int = 24,
    stations: Sequence[Station] | None = None,
) -> Disaggregation:
    """Split group profiles (flat window form, MW) into per-EV schedules p_i = share_i * P_g.

    Refuses (FleetError) a profile outside the envelope bounds by more than POWER_TOL_MW (energy bounds:
    POWER_TOL_MW * dt_h per elapsed period), and any resulting per-EV schedule that breaks its own power or
    SOC limits (possible only for outer envelopes). ``delivered_kwh``/``unmet_kwh`` come from the schedule.
    ``stations`` defaults to the stations named in ``flex`` (only ids matter here).
    """
    if flex.is_spatial:
        raise FleetError("flex: spatial envelopes (one group over several stations) need allocate_stations()"
                         " before disaggregation")
    if stations is None:
        seen = dict(zip(flex.station_id, flex.node, strict=True))
        stations = [Station(s, int(n), 1.0) for s, n in seen.items()]
    fa = fleet_arrays(evs, stations, dt_h, n_periods)
    n = fa.need_kwh.size
    if flex.share.size != n or sum(m.size for m in flex.members) != n:
        raise FleetError(f"flex: built for {flex.share.size} EVs, fleet has {n}")
    p_ch, p_dis = _check_profile_shape(flex, p_ch_mw, p_dis_mw)
    group = np.empty(n, dtype=np.int64)
    for j, m in enumerate(flex.members):
        group[m] = j
    if np.any(fa.start != flex.start[group]) or np.any(fa.dwell != flex.dwell[group]):
        first = int(np.flatnonzero((fa.start != flex.start[group]) | (fa.dwell != flex.dwell[group]))[0])
        raise FleetError(f"EV '{fa.ev_id[first]}': its plug-in window differs from its envelope's")

    # group-level check
    owner_g, k_g, off_g = windows.layout(flex.dwell)
    s_g = windows.segment_cumsum((flex.eta_ch[owner_g] * p_ch - p_dis / flex.eta_dis[owner_g]) * dt_h, off_g)
    e_tol = POWER_TOL_MW * dt_h * (k_g + 1)
    for what, val, bound, bad in (
        ("p_ch_mw", p_ch, np.zeros_like(p_ch), p_ch < -POWER_TOL_MW),
        ("p_ch_mw", p_ch, flex.p_ch_max_mw, p_ch > flex.p_ch_max_mw + POWER_TOL_MW),
        ("p_dis_mw", p_dis, np.zeros_like(p_dis), p_dis < -POWER_TOL_MW),
        ("p_dis_mw", p_dis, flex.p_dis_max_mw, p_dis > flex.p_dis_max_mw + POWER_TOL_MW),
        ("stored_gain_mwh", s_g, flex.e_min_mwh, s_g < flex.e_min_mwh - e_tol),
        ("stored_gain_mwh", s_g, flex.e_max_mwh, s_g > flex.e_max_mwh + e_tol),
    ):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            _refuse(flex, i, what, float(val[i]), float(bound[i]))

    # per-EV split
    w = _ev_windows(fa, dt_h)
    gidx = off_g[group[w.owner]] + w.k
    share = flex.share[w.owner]
    ch_kw = share * p_ch[gidx] * 1e3
    dis_kw = share * p_dis[gidx] * 1e3
    eta = fa.efficiency[w.owner]
    s_kwh = windows.segment_cumsum((eta * ch_kw - dis_kw / eta) * dt_h, w.offsets)
    tol_kw = POWER_TOL_MW * 1e3
    tol_kwh = tol_kw * dt_h * (w.k + 1)
    lower = (fa.soc_min_kwh - fa.soc_arrival_kwh)[w.owner]
    upper = (fa.capacity_kwh - fa.soc_arrival_kwh)[w.owner]
    for what, bad in (
        ("p_charge_kw", (ch_kw > fa.p_ch_kw[w.owner] + tol_kw) | (ch_kw < -tol_kw)),
        ("p_discharge_kw", (dis_kw > fa.p_dis_kw[w.owner] + tol_kw) | (dis_kw < -tol_kw)),
        ("stored energy", (s_kwh < lower - tol_kwh) | (s_kwh > upper + tol_kwh)),
    ):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            ev = int(w.owner[i])
            raise FleetError(
                f"EV '{fa.ev_id[ev]}': {what} limit broken in window period {int(w.k[i])} by proportional"
                f" sharing of envelope {int(group[ev])}; profile refused"
            )
    t = (fa.start[w.owner] + w.k) % n_periods
    dense_ch = np.zeros((n, n_periods))
    dense_dis = np.zeros((n, n_periods))
    soc = np.full((n, n_periods), np.nan)
    dense_ch[w.owner, t] = ch_kw
    dense_dis[w.owner, t] = dis_kw
    soc[w.owner, t] = fa.soc_arrival_kwh[w.owner] + s_kwh
    last = w.offsets[1:] - 1
    delivered = s_kwh[last] if n else np.zeros(0)
    return Disaggregation(
        p_ch_kw=dense_ch,
        p_dis_kw=dense_dis,
        p_kw=dense_ch - dense_dis,
        soc_kwh=soc,
        delivered_kwh=delivered,
        unmet_kwh=np.maximum(fa.need_kwh - delivered, 0.0),
    )


# ----------------------------------------------------------------------------------------------
# spatial allocation: group energy fractions per station -> whole EVs per station

#: below this energy [MWh] a station's share of a group counts as empty: EVs rounded onto it follow the
#: group's average unit profile instead of dividing a near-zero dispatch by a near-zero energy
MIN_ALLOC_MWH = 1e-4


@dataclass(frozen=True)
class StationAllocation:
    """Whole EVs per station behind a spatial dispatch, and the temporal-only problem they follow."""

    station: tuple[str, ...]  # (n_evs,) station each EV plugs into
    fleet: tuple[EV, ...]  # the EVs at those stations, no alternatives
    flex: FleetFlexibility  # proportional-sharing envelopes of ``fleet`` (one per original envelope used)
    p_ch_mw: np.ndarray  # flat profiles for ``flex``: the dispatched unit profile x the allocated need
    p_dis_mw: np.ndarray
    station_mw: np.ndarray  # (S, T) net station power after rounding (rows in ``stations`` order)
    dispatched_mw: np.ndarray  # (S, T) net station power of the dispatch
    rounding_mw: float  # max |station_mw - dispatched_mw|


def allocate_stations(
    evs: Sequence[EV],
    flex: FleetFlexibility,
    p_ch_mw: np.ndarray,
    p_dis_mw: np.ndarray,
    alloc_share: np.ndarray | None,
    stations: Sequence[Station],
    dt_h: float = 1.0,
    n_periods: int = 24,
) -> StationAllocation:
    """Assign whole EVs of each group to stations so that their needs match a_e E_g (greedy by need: each
    EV, largest first, goes to the station with the largest remaining deficit); each station sub-group
    then follows its envelope's unit profile u_e = P_e / (a_e E_g) scaled to its actual need E'_e. The
    bounds of a group are E_g x (unit bounds), so u_e E'_e stays inside the sub-group's proportional-
    sharing envelope and every EV's need is met exactly (up to a solve's shortfall, see below); station power
    moves by the rounding only.

    ``alloc_share`` (E,) = a_e (None: 1 for every envelope, only valid without spatial groups).
    """
    p_ch, p_dis = _check_profile_shape(flex, p_ch_mw, p_dis_mw)
    fa = fleet_arrays(evs, stations, dt_h, n_periods)
    n, n_env = fa.need_kwh.size, flex.n_envelopes
    if flex.share.size != n or sum(m.size for m in flex.members) != n:
        raise FleetError(f"flex: built for {flex.share.size} EVs, fleet has {n}")
    grp_env = flex.alloc_group
    a = np.ones(n_env) if alloc_share is None else np.asarray(alloc_share, dtype=float).reshape(-1)
    if a.size != n_env or not np.all(np.isfinite(a)):
        raise FleetError(f"alloc_share: needs {n_env} finite entries, got {a.size}")
    n_grp = int(grp_env.max()) + 1 if n_env else 0
    sums = np.bincount(grp_env, weights=a, minlength=n_grp)
    if np.any(np.abs(sums - 1.0) > 1e-5) or np.any(a < -1e-6):
        worst = int(np.argmax(np.abs(sums - 1.0)))
        raise FleetError(f"alloc_share: fractions of group {worst} sum to {sums[worst]:.9g}, must be >= 0 and"
                         " sum to 1")
    a = np.clip(a, 0.0, None) / sums[grp_env]
    env_of_ev = np.empty(n, dtype=np.int64)
    for j, m in enumerate(flex.members):
        env_of_ev[m] = j
    ev_group = grp_env[env_of_ev]
    e_g_mwh = np.bincount(ev_group, weights=fa.need_kwh, minlength=n_grp) / 1e3
    target = a * e_g_mwh[grp_env]  # (E,) MWh wanted at each envelope
    assigned = env_of_ev.copy()
    envs_of_group = [np.flatnonzero(grp_env == g) for g in range(n_grp)]
    for g in np.flatnonzero(np.bincount(grp_env, minlength=n_grp) > 1):
        cand = envs_of_group[g]
        deficit = target[cand].copy()
        evs_g = np.flatnonzero(ev_group == g)
        for i in evs_g[np.argsort(-fa.need_kwh[evs_g], kind="stable")]:
            j = int(np.argmax(deficit))
            assigned[i] = cand[j]
            deficit[j] -= fa.need_kwh[i] / 1e3
    # unit profiles per envelope (1/h): dispatched profile / its own stored-energy gain (so that u E' delivers
    # E' exactly, whatever the solver tolerance on the final gain = a_e E_g), or the group's average profile.
    # A gain short of a_e E_g (the solver's tolerance: 7e-7 MWh measured in a DSO's report after a DP run, where
    # noisy targets drive the feeder to the edge of its flexibility) scales a profile at its power or energy
    # bound above the bound, by the shortfall relative to a small a_e E_g (1e-4 of an 11 kW charger measured).
    # So each realized sub-group gets the profile / max(gain, a_e E_g) (inside its bounds) times the largest
    # factor lambda in [1, max(gain, a_e E_g) / gain] that keeps it within SCALE_TOL_MW of every power bound
    # (energy: SCALE_TOL_MW x dt per elapsed period). An ordinary solve stays ~1e-9 MW off (lambda is the full
    # factor: the need met exactly, as before); the energy a smaller lambda leaves out (at most the shortfall) is
    # reported as unmet energy.
    owner, _, off = windows.layout(flex.dwell)
    gain = windows.segment_cumsum((flex.eta_ch[owner] * p_ch - p_dis / flex.eta_dis[owner]) * dt_h, off)
    gain_end = gain[off[1:] - 1] if n_env else np.zeros(0)
    floor_ch, floor_dis = np.empty_like(p_ch), np.empty_like(p_dis)
    boost = np.ones(n_env)  # the full factor per envelope: max(gain, target) / gain
    for grp, cand in enumerate(envs_of_group):
        if cand.size == 0:
            continue
        total = float(gain_end[cand].sum())
        full = max(total, float(e_g_mwh[grp]))
        sum_ch = sum(p_ch[off[e]:off[e + 1]] for e in cand)
        sum_dis = sum(p_dis[off[e]:off[e + 1]] for e in cand)
        for e in cand:
            sl = slice(off[e], off[e + 1])
            if target[e] > MIN_ALLOC_MWH and gain_end[e] > 0.5 * target[e]:
                most = max(float(gain_end[e]), float(target[e]))
                floor_ch[sl], floor_dis[sl], boost[e] = p_ch[sl] / most, p_dis[sl] / most, most / gain_end[e]
            else:
                floor_ch[sl], floor_dis[sl] = sum_ch / full, sum_dis / full
                boost[e] = full / total if total > 0 else 1.0
    realized_fleet = [replace(ev, station=flex.station_id[int(assigned[i])], alt_stations=())
                      for i, ev in enumerate(evs)]
    rfa = fleet_arrays(realized_fleet, stations, dt_h, n_periods)
    used, first, rgroup = np.unique(assigned, return_index=True, return_inverse=True)
    rflex = _build_groups(rfa, stations, rgroup.reshape(-1), first, dt_h, outer=False)
    r_need_mwh = np.bincount(rgroup.reshape(-1), weights=rfa.need_kwh, minlength=used.size) / 1e3
    src = np.concatenate([np.arange(off[e], off[e + 1]) for e in used]) if used.size else np.zeros(0, np.int64)
    scale = np.repeat(r_need_mwh, rflex.dwell)
    r_ch, r_dis = floor_ch[src] * scale, floor_dis[src] * scale
    if used.size:
        r_owner, r_k, r_off = windows.layout(rflex.dwell)
        s_r = windows.segment_cumsum((rflex.eta_ch[r_owner] * r_ch - r_dis / rflex.eta_dis[r_owner]) * dt_h, r_off)
        e_tol = SCALE_TOL_MW * dt_h * (r_k + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            limits = [np.where(r_ch > 0, (rflex.p_ch_max_mw + SCALE_TOL_MW) / r_ch, np.inf),
                      np.where(r_dis > 0, (rflex.p_dis_max_mw + SCALE_TOL_MW) / r_dis, np.inf),
                      np.where(s_r > 0, (rflex.e_max_mwh + e_tol) / s_r, np.inf),
                      np.where(s_r < 0, (rflex.e_min_mwh - e_tol) / s_r, np.inf)]
        per_entry = np.minimum.reduce(limits)
        lam = np.minimum(boost[used], np.minimum.reduceat(per_entry, r_off[:-1]))
        lam = np.repeat(np.maximum(lam, 1.0), rflex.dwell)
        r_ch, r_dis = r_ch * lam, r_dis * lam
    ids = [st.station_id for st in stations]
    before = station_power(flex, p_ch, p_dis, n_periods, ids)
    after = station_power(rflex, r_ch, r_dis, n_periods, ids)
    return StationAllocation(
        station=tuple(ev.station for ev in realized_fleet),
        fleet=tuple(realized_fleet),
        flex=rflex,
        p_ch_mw=r_ch,
        p_dis_mw=r_dis,
        station_mw=after,
        dispatched_mw=before,
        rounding_mw=float(np.max(np.abs(after - before), initial=0.0)),
    )


def disaggregate_spatial(
    evs: Sequence[EV],
    flex: FleetFlexibility,
    p_ch_mw: np.ndarray,
    p_dis_mw: np.ndarray,
    alloc_share: np.ndarray | None,
    stations: Sequence[Station],
    dt_h: float = 1.0,
    n_periods: int = 24,
) -> tuple[StationAllocation, Disaggregation]:
    """:func:`allocate_stations`, then :func:`disaggregate` of the allocated fleet (same EV order)."""
    alloc = allocate_stations(evs, flex, p_ch_mw, p_dis_mw, alloc_share, stations, dt_h, n_periods)
    d = disaggregate(list(alloc.fleet), alloc.flex, alloc.p_ch_mw, alloc.p_dis_mw, dt_h, n_periods, stations)
    return alloc, d
