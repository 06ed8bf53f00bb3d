"""EV fleet data: EVs, stations, validation, window discretisation and a synthetic fleet.

Sign convention (shared by all packages): charging is a positive withdrawal (grid side, kW/MW);
stored energy grows by ``efficiency * p_charge * dt`` and shrinks by ``p_discharge / efficiency * dt``.

Time: a cyclic day of ``n_periods`` periods of ``dt_h`` hours; period k covers [k*dt_h, (k+1)*dt_h).
An EV is plugged in during the periods lying fully inside [arrival_h, departure_h), the window
wrapping over midnight when ``departure_h <= arrival_h``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

import numpy as np

_TIME_TOL_H = 1e-9  # arrival/departure within this of a period edge count as on the edge


class FleetError(ValueError):
    """Bad EV fleet data or a schedule the fleet cannot follow (the message names the element)."""


@dataclass(frozen=True)
class EV:
    """One EV's plug-in session (energies in kWh, powers in kW, times in hours after midnight)."""

    ev_id: str
    arrival_h: float  # 0 <= arrival_h < 24
    departure_h: float  # departure_h <= arrival_h means the next day (dwell < 24 h)
    energy_need_kwh: float  # stored-energy gain required by departure (> 0)
    capacity_kwh: float  # battery capacity
    soc_arrival_kwh: float  # stored energy on arrival (soc_arrival + need <= capacity)
    p_charge_kw: float  # max charging power, grid side (> 0)
    p_discharge_kw: float  # max discharging power, grid side (0 = no V2G)
    efficiency: float  # one-way efficiency in (0, 1]
    station: str  # station id it plugs into
    soc_min_kwh: float = 0.0  # reserve: stored energy never below this (<= soc_arrival_kwh)
    #: other stations the EV can plug into instead of ``station`` (spatial scheduling); () = only its own
    alt_stations: tuple[str, ...] = ()

    @property
    def reachable(self) -> tuple[str, ...]:
        """Every station the EV can use: its own first, then the alternatives."""
        return (self.station, *self.alt_stations)


@dataclass(frozen=True)
class Station:
    """A charging station: ``node`` is the 1-based feeder node label, ``p_max_kw`` its connection limit."""

    station_id: str
    node: int
    p_max_kw: float


@dataclass(frozen=True)
class FleetArrays:
    """The fleet as arrays (one entry per EV), extracted by :func:`fleet_arrays`."""

    ev_id: tuple[str, ...]
    arrival_h: np.ndarray
    departure_h: np.ndarray
    need_kwh: np.ndarray
    capacity_kwh: np.ndarray
    soc_arrival_kwh: np.ndarray
    soc_min_kwh: np.ndarray
    p_ch_kw: np.ndarray
    p_dis_kw: np.ndarray
    efficiency: np.ndarray
    station_index: np.ndarray  # (n_evs,) int index into the stations sequence
    #: (n_evs,) int code of the EV's set of reachable stations (equal codes = equal sets)
    reach_code: np.ndarray
    reach_sets: tuple[tuple[int, ...], ...]  # station indices (sorted) of each reach_code
    node: np.ndarray  # (n_evs,) int 1-based feeder node label
    start: np.ndarray  # (n_evs,) int first plugged-in period index
    dwell: np.ndarray  # (n_evs,) int number of fully covered periods


_FLOAT_FIELDS = (
    "arrival_h",
    "departure_h",
    "energy_need_kwh",
    "capacity_kwh",
    "soc_arrival_kwh",
    "p_charge_kw",
    "p_discharge_kw",
    "efficiency",
    "soc_min_kwh",
)


def plug_in_window(
    arrival_h: np.ndarray, departure_h: np.ndarray, dt_h: float, n_periods: int
) -> tuple[np.ndarray, np.ndarray]:
    """(start, dwell) of the periods fully inside [arrival, departure) on a cyclic day of n_periods*dt_h.

    start = ceil(arrival/dt) mod T, dwell = floor(departure'/dt) - ceil(arrival/dt) with
    departure' = departure (+ T*dt if departure <= arrival); dwell is clipped at 0.
    """
    horizon_h = n_periods * dt_h
    arr = np.asarray(arrival_h, dtype=float)
    dep = np.asarray(departure_h, dtype=float)
    dep = np.where(dep <= arr, dep + horizon_h, dep)
    first = np.ceil(arr / dt_h - _TIME_TOL_H).astype(np.int64)
    last = np.floor(dep / dt_h + _TIME_TOL_H).astype(np.int64)
    dwell = np.clip(last - first, 0, n_periods)
    return first % n_periods, dwell


def _check_grid(dt_h: float, n_periods: int) -> None:
    if not (isinstance(n_periods, int | np.integer) and n_periods >= 1):
        raise FleetError(f"n_periods={n_periods!r} must be a positive integer")
    if not (math.isfinite(dt_h) and dt_h > 0):
        raise FleetError(f"dt_h={dt_h!r} must be finite and > 0")


def _first_bad(mask: np.ndarray) -> int | None:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if idx.size else None


def ev_is_valid(ev: EV, station_ids: Collection[str], dt_h: float, n_periods: int) -> bool:
    """A scalar fast path of :func:`validate_fleet` for one EV (stations and grid already validated): True
    only when ``validate_fleet([ev], ...)`` would pass; False means "call it for the error message"."""
    fields = [getattr(ev, f) for f in _FLOAT_FIELDS]
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in fields):
        return False
    horizon_h = n_periods * dt_h
    if ev.station not in station_ids or ev.alt_stations and (
            any(a not in station_ids for a in ev.alt_stations) or len(set(ev.reachable)) != len(ev.reachable)):
        return False
    if not (0 <= ev.arrival_h < horizon_h and 0 <= ev.departure_h <= horizon_h and ev.energy_need_kwh > 0
            and ev.capacity_kwh > 0 and ev.soc_arrival_kwh >= 0 and 0 <= ev.soc_min_kwh <= ev.soc_arrival_kwh
            and ev.p_charge_kw > 0 and ev.p_discharge_kw >= 0 and 0 < ev.efficiency <= 1
            and ev.soc_arrival_kwh + ev.energy_need_kwh - ev.capacity_kwh <= 1e-9):
        return False
    _, dwell = window_of(ev.arrival_h, ev.departure_h, dt_h, n_periods)
    return dwell >= 1 and ev.energy_need_kwh <= ev.efficiency * ev.p_charge_kw * dwell * dt_h * (1 + 1e-9)


def window_of(arrival_h: float, departure_h: float, dt_h: float, n_periods: int) -> tuple[int, int]:
    """:func:`plug_in_window` of one EV, in scalars (start, dwell)."""
    dep = departure_h + n_periods * dt_h if departure_h <= arrival_h else departure_h
    first = math.ceil(arrival_h / dt_h - _TIME_TOL_H)
    last = math.floor(dep / dt_h + _TIME_TOL_H)
    return first % n_periods, min(max(last - first, 0), n_periods)


def validate_fleet(evs: Sequence[EV], stations: Sequence[Station], dt_h: float, n_periods: int) -> None:
    """Raise :class:`FleetError` naming the first bad EV/station and field; return None if all is well."""
    _check_grid(dt_h, n_periods)
    horizon_h = n_periods * dt_h
    station_ids: dict[str, int] = {}
    for s in stations:
        if s.station_id in station_ids:
            raise FleetError(f"station '{s.station_id}': duplicate station_id")
        station_ids[s.station_id] = len(station_ids)
        if not (isinstance(s.node, int | np.integer) and s.node >= 1):
            raise FleetError(
                f"station '{s.station_id}': node={s.node!r} must be a 1-based integer label"
            )
        if not (math.isfinite(s.p_max_kw) and s.p_max_kw > 0):
            raise FleetError(f"station '{s.station_id}': p_max_kw={s.p_max_kw!r} must be finite and > 0")
    if not evs:
        return
    seen: set[str] = set()
    for ev in evs:
        if ev.ev_id in seen:
            raise FleetError(f"EV '{ev.ev_id}': duplicate ev_id")
        seen.add(ev.ev_id)
        if ev.station not in station_ids:
            raise FleetError(f"EV '{ev.ev_id}': station={ev.station!r} is not a known station")
        for alt in ev.alt_stations:
            if alt not in station_ids:
                raise FleetError(f"EV '{ev.ev_id}': alt_stations entry {alt!r} is not a known station")
        if len(set(ev.reachable)) != len(ev.reachable):
            raise FleetError(f"EV '{ev.ev_id}': alt_stations={ev.alt_stations!r} repeats a station"
                             f" (own station {ev.station!r} included)")
    vals = {f: np.array([getattr(ev, f) for ev in evs], dtype=float) for f in _FLOAT_FIELDS}

    def fail(i: int, field: str, why: str) -> None:
        raise FleetError(f"EV '{evs[i].ev_id}': {field}={getattr(evs[i], field)!r} {why}")

    for f in _FLOAT_FIELDS:
        if (i := _first_bad(~np.isfinite(vals[f]))) is not None:
            fail(i, f, "is not finite")
    checks = [
        (
            "arrival_h",
            (vals["arrival_h"] < 0) | (vals["arrival_h"] >= horizon_h),
            f"must be in [0, {horizon_h})",
        ),
        (
            "departure_h",
            (vals["departure_h"] < 0) | (vals["departure_h"] > horizon_h),
            f"must be in [0, {horizon_h}]",
        ),
        ("energy_need_kwh", vals["energy_need_kwh"] <= 0, "must be > 0"),
        ("capacity_kwh", vals["capacity_kwh"] <= 0, "must be > 0"),
        ("soc_arrival_kwh", vals["soc_arrival_kwh"] < 0, "must be >= 0"),
        ("soc_min_kwh", vals["soc_min_kwh"] < 0, "must be >= 0"),
        ("soc_min_kwh", vals["soc_min_kwh"] > vals["soc_arrival_kwh"], "must be <= soc_arrival_kwh"),
        ("p_charge_kw", vals["p_charge_kw"] <= 0, "must be > 0"),
        ("p_discharge_kw", vals["p_discharge_kw"] < 0, "must be >= 0"),
        ("efficiency", (vals["efficiency"] <= 0) | (vals["efficiency"] > 1), "must be in (0, 1]"),
    ]
    for field, bad, why in checks:
        if (i := _first_bad(bad)) is not None:
            fail(i, field, why)
    over = vals["soc_arrival_kwh"] + vals["energy_need_kwh"] - vals["capacity_kwh"]
    if (i := _first_bad(over > 1e-9)) is not None:
        ev = evs[i]
        raise FleetError(
            f"EV '{ev.ev_id}': soc_arrival_kwh={ev.soc_arrival_kwh!r}"
            f" + energy_need_kwh={ev.energy_need_kwh!r} exceeds capacity_kwh={ev.capacity_kwh!r}"
        )
    _, dwell = plug_in_window(vals["arrival_h"], vals["departure_h"], dt_h, n_periods)
    if (i := _first_bad(dwell < 1)) is not None:
        ev = evs[i]
        raise FleetError(
            f"EV '{ev.ev_id}': departure_h={ev.departure_h!r} after arrival_h={ev.arrival_h!r}"
            f" covers no full {dt_h} h period (dwell < 1 period)"
        )
    reach_kwh = vals["efficiency"] * vals["p_charge_kw"] * dwell * dt_h
    if (i := _first_bad(vals["energy_need_kwh"] > reach_kwh * (1 + 1e-9))) is not None:
        ev = evs[i]
        raise FleetError(
            f"EV '{ev.ev_id}': energy_need_kwh={ev.energy_need_kwh!r} energy need cannot be met in its"
            f" plug-in window (efficiency*p_charge_kw*dwell = {reach_kwh[i]:.4g} kWh"
            f" over {int(dwell[i])} periods)"
        )


def fleet_arrays(
    evs: Sequence[EV], stations: Sequence[Station], dt_h: float, n_periods: int
) -> FleetArrays:
    """Validate the fleet and extract it as arrays (pure function)."""
    validate_fleet(evs, stations, dt_h, n_periods)
    index = {s.station_id: k for k, s in enumerate(stations)}
    nodes = np.array([s.node for s in stations], dtype=np.int64)

    def col(field: str) -> np.ndarray:
        return np.array([getattr(ev, field) for ev in evs], dtype=float)

    arrival, departure = col("arrival_h"), col("departure_h")
    start, dwell = plug_in_window(arrival, departure, dt_h, n_periods)
    st = np.array([index[ev.station] for ev in evs], dtype=np.int64)
    codes: dict[tuple[int, ...], int] = {}
    reach_code = np.array(
        [codes.setdefault(tuple(sorted(index[s] for s in ev.reachable)), len(codes)) for ev in evs], dtype=np.int64
    )
    return FleetArrays(
        ev_id=tuple(ev.ev_id for ev in evs),
        arrival_h=arrival,
        departure_h=departure,
        need_kwh=col("energy_need_kwh"),
        capacity_kwh=col("capacity_kwh"),
        soc_arrival_kwh=col("soc_arrival_kwh"),
        soc_min_kwh=col("soc_min_kwh"),
        p_ch_kw=col("p_charge_kw"),
        p_dis_kw=col("p_discharge_kw"),
        efficiency=col("efficiency"),
        station_index=st,
        reach_code=reach_code,
        reach_sets=tuple(codes),
        node=nodes[st] if st.size else np.zeros(0, dtype=np.int64),
        start=start.astype(np.int64),
        dwell=dwell.astype(np.int64),
    )


# Literature values (see synthetic_fleet docstring); hours after midnight, miles.
ARRIVAL_MEAN_H, ARRIVAL_SD_H = 17.6, 3.4
DEPARTURE_MEAN_H, DEPARTURE_SD_H = 8.92, 3.24
#: Workplace sessions (kind="work"): arrivals cluster in the morning and departures in the late
#: afternoon, the shape reported for the Caltech/JPL workplace sessions of ACN-Data (Lee, Li, Low,
#: "ACN-Data: Analysis and Applications of an Open EV Charging Dataset", ACM e-Energy 2019,
#: DOI 10.1145/3307772.3328313). The normal parameters are our rounded reading of that shape, not a fit.
WORK_ARRIVAL_MEAN_H, WORK_ARRIVAL_SD_H = 8.5, 1.2
WORK_DEPARTURE_MEAN_H, WORK_DEPARTURE_SD_H = 17.5, 1.3
SESSION_SHAPES = {
    "home": (ARRIVAL_MEAN_H, ARRIVAL_SD_H, DEPARTURE_MEAN_H, DEPARTURE_SD_H),
    "work": (WORK_ARRIVAL_MEAN_H, WORK_ARRIVAL_SD_H, WORK_DEPARTURE_MEAN_H, WORK_DEPARTURE_SD_H),
}
MILES_LOG_MU, MILES_LOG_SIGMA = 3.2, 0.88
KM_PER_MILE = 1.609344
KWH_PER_KM = 0.2


def with_reach(
    evs: Sequence[EV], stations: Sequence[Station], reach: int, distance: np.ndarray | None = None,
    kinds: Sequence[str] | None = None,
) -> list[EV]:
    """EVs given up to ``reach`` stations each: their own plus the ``reach - 1`` nearest others.

    ``distance`` (S, S) ranks stations (e.g. feeder path length between station nodes; default
    |node label difference|); with ``kinds`` (S,) only stations of the same kind as the EV's own count.
    ``reach = 1`` clears every EV's alternatives (temporal-only scheduling).
    """
    if reach < 1:
        raise FleetError(f"reach={reach!r} must be >= 1")
    ids = [s.station_id for s in stations]
    index = {s: k for k, s in enumerate(ids)}
    n_st = len(ids)
    if distance is None:
        nodes = np.array([s.node for s in stations], dtype=float)
        distance = np.abs(nodes[:, None] - nodes[None, :])
    distance = np.asarray(distance, dtype=float)
    if distance.shape != (n_st, n_st):
        raise FleetError(f"distance: shape {distance.shape}, expected ({n_st}, {n_st})")
    kind = list(kinds) if kinds is not None else ["any"] * n_st
    if len(kind) != n_st:
        raise FleetError(f"kinds: {len(kind)} entries, expected {n_st}")
    alts: dict[str, tuple[str, ...]] = {}
    for k, sid in enumerate(ids):
        others = [j for j in np.argsort(distance[k], kind="stable") if j != k and kind[j] == kind[k]]
        alts[sid] = tuple(ids[j] for j in others[: reach - 1])
    out = []
    for ev in evs:
        if ev.station not in index:
            raise FleetError(f"EV '{ev.ev_id}': station={ev.station!r} is not a known station")
        out.append(replace(ev, alt_stations=alts[ev.station]))
    return out


def synthetic_fleet(
    n_evs: int,
    stations: Sequence[Station],
    seed: int,
    v2g_share: float = 0.3,
    dt_h: float = 1.0,
    n_periods: int = 24,
    kind: str = "home",
) -> list[EV]:
    """A residential (``kind="home"``) or workplace (``kind="work"``) EV fleet, deterministic per seed.

    Workplace sessions use ``WORK_*`` (ACN-Data shape, see above); distances and equipment as below.

    Distributions (literature values, not re-fitted here):
    - home arrival ~ N(17.6 h, 3.4 h) and daily distance ~ lognormal(mu=3.2, sigma=0.88) miles: the fits
      to the US NHTS 2001 given by Tian Liting, Shi Shuanglong, Jia Zhuo, "A statistical model for charging
      power demand of electric vehicles", Power System Technology 34(11), 2010 (in Chinese), and reused
      throughout the EV-scheduling literature; the NHTS-based modelling approach follows Qian K., Zhou C.,
      Allan M., Yuan Y., "Modeling of load demand due to EV battery charging in distribution systems",
      IEEE Trans. Power Syst. 26(2), 2011, DOI 10.1109/TPWRS.2010.2057456.
    - departure ~ N(8.92 h, 3.24 h): the morning first-trip fit commonly paired with the above in the same
      literature. Both times are wrapped to [0, 24). Not checked here against the original tables.
    - 0.2 kWh/km consumption, 50 kWh batteries, 7 kW chargers (20 % at 11 kW), efficiency 0.95;
      a ``v2g_share`` of EVs may discharge at their charger power (assumptions, not data).
    The need is the energy driven, clipped so that every EV fits its battery and can be charged in its
    window (<= 0.95 * efficiency * p_charge * dwell); sessions shorter than 2 periods are redrawn.
    Stations are drawn with probability proportional to their p_max_kw.
    """
    if n_evs < 0:
        raise FleetError(f"n_evs={n_evs!r} must be >= 0")
    if kind not in SESSION_SHAPES:
        raise FleetError(f"kind={kind!r} is unknown (known: {', '.join(SESSION_SHAPES)})")
    arr_mu, arr_sd, dep_mu, dep_sd = SESSION_SHAPES[kind]
    if not stations:
        raise FleetError("stations: at least one station is required")
    if not 0.0 <= v2g_share <= 1.0:
        raise FleetError(f"v2g_share={v2g_share!r} must be in [0, 1]")
    _check_grid(dt_h, n_periods)
    horizon_h = n_periods * dt_h
    rng = np.random.default_rng(seed)
    arrival = np.mod(rng.normal(arr_mu, arr_sd, n_evs), 24.0) * horizon_h / 24.0
    departure = np.mod(rng.normal(dep_mu, dep_sd, n_evs), 24.0) * horizon_h / 24.0
    _, dwell = plug_in_window(arrival, departure, dt_h, n_periods)
    for _ in range(100):  # redraw departures of too-short sessions (conditioning on dwell >= 2 periods)
        short = dwell < min(2, n_periods)
        if not short.any():
            break
        departure[short] = (
            np.mod(rng.normal(dep_mu, dep_sd, short.sum()), 24.0) * horizon_h / 24
        )
        _, dwell = plug_in_window(arrival, departure, dt_h, n_periods)
    else:
        raise FleetError("synthetic_fleet: could not draw sessions of >= 2 periods")
    miles = rng.lognormal(MILES_LOG_MU, MILES_LOG_SIGMA, n_evs)
    capacity = np.full(n_evs, 50.0)
    p_ch = np.where(rng.random(n_evs) < 0.2, 11.0, 7.0)
    v2g = rng.random(n_evs) < v2g_share
    p_dis = np.where(v2g, p_ch, 0.0)
    eta = np.full(n_evs, 0.95)
    target = capacity * rng.uniform(0.8, 0.95, n_evs)  # stored energy wanted at departure
    need = miles * KM_PER_MILE * KWH_PER_KM
    need = np.minimum(need, 0.95 * eta * p_ch * dwell * dt_h)
    need = np.clip(need, 0.5, target - 0.05 * capacity)
    soc_arrival = target - need
    weights = np.array([s.p_max_kw for s in stations], dtype=float)
    st = rng.choice(len(stations), size=n_evs, p=weights / weights.sum())
    width = max(4, len(str(max(n_evs - 1, 0))))
    return [
        EV(
            ev_id=f"ev-{i:0{width}d}",
            arrival_h=float(arrival[i]),
            departure_h=float(departure[i]),
            energy_need_kwh=float(need[i]),
            capacity_kwh=float(capacity[i]),
            soc_arrival_kwh=float(soc_arrival[i]),
            p_charge_kw=float(p_ch[i]),
            p_discharge_kw=float(p_dis[i]),
            efficiency=float(eta[i]),
            station=stations[int(st[i])].station_id,
        )
        for i in range(n_evs)
    ]
