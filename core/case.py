"""Case files: YAML data describing a transmission system, its feeders, DER and EV fleets.

A case is data, validated on load: every error names the element and the bad value, and is raised
before any model is built (``CaseError``). ``load_case`` returns a frozen ``CaseSpec`` tree; building
the numeric model from it is ``orchestrator.system.embedded.embedded.build_system``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CASES_DIR = Path(__file__).resolve().parent / "cases"


class CaseError(ValueError):
    """A case file is malformed; the message names the element and the value."""


@dataclass(frozen=True)
class WindSpec:
    bus: int
    capacity_mw: float
    profile: str


@dataclass(frozen=True)
class TransmissionSpec:
    network: str
    cost_scale: float
    ramp_frac_per_h: float
    losses: bool
    load_profile: str
    wind: tuple[WindSpec, ...]
    wind_curtail_usd_per_mwh: float
    dr_max_share: float
    dr_cost_usd_per_mwh: float
    #: the transmission-level demand (excluding the feeders) as a share of the network file's loads
    load_scale: float = 1.0


@dataclass(frozen=True)
class PvSpec:
    """A renewable unit behind an inverter (PV or wind): capacity [MW] and inverter rating [MVA]."""

    node: int
    capacity_mw: float
    s_mva: float


@dataclass(frozen=True)
class MicroturbineSpec:
    node: int
    p_max_mw: float
    p_min_mw: float
    q_max_mvar: float
    ramp_mw_per_h: float
    c1_usd_per_mwh: float
    c2_usd_per_mw2h: float


@dataclass(frozen=True)
class StationSpec:
    station_id: str
    node: int
    p_max_kw: float
    kind: str  # "home" (residential sessions) or "work" (workplace sessions)
    #: rating of the station's four-quadrant converter [kVA] (|S| <= s_kva when its chargers give Q); None = p_max_kw
    s_kva: float | None = None


@dataclass(frozen=True)
class EvInlineSpec:
    """One EV written out in the case file (for small studies and for tests)."""

    ev_id: str
    arrival_h: float
    departure_h: float
    energy_need_kwh: float
    capacity_kwh: float
    soc_arrival_kwh: float
    p_charge_kw: float
    p_discharge_kw: float
    efficiency: float
    station: str


CHANCE_METHODS = ("oba", "bonferroni", "so", "ro")


@dataclass(frozen=True)
class ChanceSpec:
    """A feeder's chance-constrained dispatch (``chance:`` in the case; ``dso.chance`` for the model).

    Voltage, branch-flow and reserve constraints of every hour hold jointly with probability >= 1 - eps under
    the forecast errors of the feeder's load, PV, wind and EV-charging profiles (``dso.uncertainty``), with up
    and down reserves from the microturbines and the EV stations."""

    method: str = "oba"  # one of CHANCE_METHODS
    eps: float = 0.05  # joint violation probability per hour, in (0, 1)
    reserve_up_usd_per_mw_h: float = 8.0  # capacity price of upward reserve [$/MW per hour]
    reserve_down_usd_per_mw_h: float = 5.0
    #: EV profiles of the stations' kinds (the "ev" uncertainty group)
    ev_profile_home: str = "ev_home"
    ev_profile_work: str = "ev_work"
    #: energy of one charging session [kWh]: a station's fleet counts as E_station / ev_session_kwh
    #: independent charging points when its EV-demand error is scaled (``dso.chance``)
    ev_session_kwh: float = 12.0
    #: the similar-day forecast errors times this factor (a better forecaster's errors, same shape; 1 = raw)
    error_scale: float = 1.0
    holdout_every: int = 5  # every n-th day of the profile year is held out for out-of-sample tests
    gmm_max_components: int = 4
    seed: int = 0
    so_samples: int = 1000  # scenarios of the sample-average ("so") method
    ro_n_std: float = 3.0  # the "ro" box: mixture-component means -/+ this many standard deviations
    #: Monte Carlo days (and their seed) of the DSO's out-of-sample check of every dispatch it reports
    mc_samples: int = 10000
    mc_seed: int = 2
    #: boundary price of the standalone dispatch (study) [$/MWh], 24 hourly values or one; coordination
    #: replaces it by the TSO's price
    price_usd_per_mwh: tuple[float, ...] = (50.0,)


@dataclass(frozen=True)
class FeederSpec:
    feeder_id: str
    bus: int
    network: str  # "case33bw", "ieee123", "inline" or "file"
    branches: tuple[Mapping[str, float], ...]
    loads: tuple[Mapping[str, float], ...]
    base_kv: float
    v_sub_pu: float
    #: branch thermal limits [kA]: "default" applies to every branch, "FROM-TO" keys override it
    i_max_ka: Mapping[str, float]
    load_scale: float
    load_profile: str
    pv_profile: str
    pv: tuple[PvSpec, ...]
    microturbines: tuple[MicroturbineSpec, ...]
    stations: tuple[StationSpec, ...]
    ev_count: int
    ev_seed: int
    v2g_share: float
    ev_list: tuple[EvInlineSpec, ...]
    #: stations each EV can use: its own plus the reach - 1 nearest others of the same kind (1 = temporal only)
    ev_reach: int = 1
    #: wind turbines on the feeder (inverter-connected, like PV) and their capacity-factor profile
    wind: tuple[PvSpec, ...] = ()
    wind_profile: str = ""
    #: EV chargers' reactive power: "none" (P only), "plugged" (while an EV is plugged in), "always"
    ev_q: str = "none"
    #: the DSO's dispatch objective weights: cost [-], loss [per MWh], voltage_deviation [per p.u.]
    objective: tuple[tuple[str, float], ...] = (("cost", 1.0),)
    #: PV and wind may be curtailed (False: they inject their forecast, only their Q is dispatched)
    curtailable: bool = True
    #: network "file": the feeder file (pandapower .json or MATPOWER .m), absolute or relative to the case file
    file: str = ""
    #: chance-constrained dispatch under forecast errors (None: point forecasts)
    chance: ChanceSpec | None = None
    #: the DSO's time-of-use price levels (peak, flat, valley) [$/MWh] it publishes to its aggregator when its
    #: service starts (``core.tariff``); None: it publishes no tariff
    tou_usd_per_mwh: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class CaseSpec:
    name: str
    description: str
    periods: int
    dt_h: float
    pv_curtail_usd_per_mwh: float
    loss_cost_usd_per_mwh: float
    transmission: TransmissionSpec
    feeders: tuple[FeederSpec, ...]
    source: str = field(default="", compare=False)
    #: penalty on feeder wind energy not used [$/MWh] (default: the PV curtailment penalty)
    wind_curtail_usd_per_mwh: float = 0.0

    def feeder(self, feeder_id: str) -> FeederSpec:
        """The feeder called ``feeder_id``; ``CaseError`` naming the known ones otherwise."""
        for f in self.feeders:
            if f.feeder_id == feeder_id:
                return f
        known = ", ".join(x.feeder_id for x in self.feeders)
        raise CaseError(f"case '{self.name}': no feeder {feeder_id!r} (feeders: {known})")

    @property
    def feeder_ids(self) -> list[str]:
        return [f.feeder_id for f in self.feeders]


def aggregator_id(feeder_id: str) -> str:
    """The operator id of the EV aggregator of ``feeder_id``'s stations."""
    return f"agg-{feeder_id}"


def operators(spec: CaseSpec) -> list[tuple[str, str]]:
    """(role, operator id) of every operator of a case: the TSO, each DSO, each DSO's EV aggregator."""
    out = [("tso", "tso")]
    out += [("dso", f.feeder_id) for f in spec.feeders]
    out += [("aggregator", aggregator_id(f.feeder_id)) for f in spec.feeders]
    return out


# --------------------------------------------------------------------------------------------------
# small typed readers: each names the path of the value it reads


class _Reader:
    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise CaseError(f"{path}: expected a mapping, got {type(data).__name__}")
        self.data = data
        self.path = path
        self.used: set[str] = set()

    def _get(self, key: str, default: Any) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is _REQUIRED:
                raise CaseError(f"{self.path}: missing required field '{key}'")
            return default
        return self.data[key]

    def num(self, key: str, default: Any = None, *, min_: float | None = None, positive: bool = False,
            max_: float | None = None) -> float:
        value = self._get(key, _REQUIRED if default is None else default)
        where = f"{self.path}.{key}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CaseError(f"{where}={value!r} is not a number")
        value = float(value)
        if not math.isfinite(value):
            raise CaseError(f"{where}={value} is not finite")
        if positive and value <= 0:
            raise CaseError(f"{where}={value} must be > 0")
        if min_ is not None and value < min_:
            raise CaseError(f"{where}={value} must be >= {min_}")
        if max_ is not None and value > max_:
            raise CaseError(f"{where}={value} must be <= {max_}")
        return value

    def int_(self, key: str, default: Any = None, *, min_: int | None = None) -> int:
        value = self._get(key, _REQUIRED if default is None else default)
        where = f"{self.path}.{key}"
        if isinstance(value, bool) or not isinstance(value, int):
            raise CaseError(f"{where}={value!r} is not an integer")
        if min_ is not None and value < min_:
            raise CaseError(f"{where}={value} must be >= {min_}")
        return value

    def str_(self, key: str, default: Any = None) -> str:
        value = self._get(key, _REQUIRED if default is None else default)
        if not isinstance(value, str) or not value:
            raise CaseError(f"{self.path}.{key}={value!r} is not a non-empty string")
        return value

    def bool_(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise CaseError(f"{self.path}.{key}={value!r} is not true/false")
        return value

    def list_(self, key: str) -> list[Any]:
        value = self._get(key, [])
        if not isinstance(value, list):
            raise CaseError(f"{self.path}.{key} must be a list, got {type(value).__name__}")
        return value

    def sub(self, key: str, default: Any = None) -> _Reader:
        return _Reader(self._get(key, _REQUIRED if default is None else default), f"{self.path}.{key}")

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise CaseError(f"{self.path}: unknown field(s) {', '.join(map(repr, unknown))}")


_REQUIRED = object()

KNOWN_TRANSMISSION = {"case30": 30, "case118": 118}
#: bundled feeder networks and their node counts (ieee123: core/data/ieee123_*.csv, core.feeders)
KNOWN_FEEDERS = {"case33bw": 33, "ieee123": 120}


def _parse_transmission(r: _Reader, profiles: set[str]) -> TransmissionSpec:
    network = r.str_("network")
    if network not in KNOWN_TRANSMISSION:
        raise CaseError(f"{r.path}.network={network!r} is unknown (known: {', '.join(KNOWN_TRANSMISSION)})")
    n_bus = KNOWN_TRANSMISSION[network]
    load_profile = _profile(r, "load_profile", profiles)
    wind = []
    for i, w in enumerate(r.list_("wind")):
        wr = _Reader(w, f"{r.path}.wind[{i}]")
        bus = wr.int_("bus", min_=1)
        if bus > n_bus:
            raise CaseError(f"{wr.path}.bus={bus} is an unknown bus ({network} has buses 1..{n_bus})")
        wind.append(WindSpec(bus, wr.num("capacity_mw", min_=0.0), _profile(wr, "profile", profiles)))
        wr.done()
    dr = r.sub("demand_response", {"max_share": 0.0, "cost_usd_per_mwh": 0.0})
    spec = TransmissionSpec(
        network=network,
        cost_scale=r.num("cost_scale", 1.0, positive=True),
        ramp_frac_per_h=r.num("ramp_frac_per_h", 1.0, positive=True),
        losses=r.bool_("losses", True),
        load_profile=load_profile,
        wind=tuple(wind),
        wind_curtail_usd_per_mwh=r.num("wind_curtail_usd_per_mwh", 0.0, min_=0.0),
        dr_max_share=dr.num("max_share", min_=0.0, max_=1.0),
        dr_cost_usd_per_mwh=dr.num("cost_usd_per_mwh", min_=0.0),
        load_scale=r.num("load_scale", 1.0, positive=True),
    )
    dr.done()
    r.done()
    return spec


def _profile(r: _Reader, key: str, profiles: set[str]) -> str:
    name = r.str_(key)
    if name not in profiles:
        raise CaseError(f"{r.path}.{key}={name!r} is not a bundled profile (known: {', '.join(sorted(profiles))})")
    return name


def _parse_feeder(r: _Reader, profiles: set[str], n_tso_bus: int, tso_network: str, case_dir: Path) -> FeederSpec:
    fid = r.str_("id")
    r.path = f"{r.path} '{fid}'"
    bus = r.int_("bus", min_=1)
    if bus > n_tso_bus:
        raise CaseError(f"{r.path}.bus={bus} is an unknown bus ({tso_network} has buses 1..{n_tso_bus})")
    network = r.str_("network", "case33bw")
    branches: list[Mapping[str, float]] = []
    loads: list[Mapping[str, float]] = []
    if network == "inline":
        branches = [dict(b) for b in r.list_("branches")]
        loads = [dict(x) for x in r.list_("loads")]
        if not branches:
            raise CaseError(f"{r.path}: network 'inline' needs a non-empty 'branches' list")
        n_nodes = 1 + len(branches)
    elif network in KNOWN_FEEDERS:
        n_nodes = KNOWN_FEEDERS[network]
    elif network == "file":
        from core.feeders import FeederFileError, read_feeder_file

        file_path = Path(r.str_("file"))
        if not file_path.is_absolute():
            file_path = case_dir / file_path
        try:
            n_nodes = read_feeder_file(file_path).n_nodes
        except FeederFileError as exc:
            raise CaseError(f"{r.path}.file: {exc}") from exc
    else:
        raise CaseError(f"{r.path}.network={network!r} is unknown (known: inline, file, {', '.join(KNOWN_FEEDERS)})")
    if network != "file" and "file" in r.data:
        raise CaseError(f"{r.path}.file is only for network 'file' (network is {network!r})")

    i_max = r._get("i_max_ka", {})
    if isinstance(i_max, int | float) and not isinstance(i_max, bool):
        i_max = {"default": i_max}
    if not isinstance(i_max, Mapping):
        raise CaseError(f"{r.path}.i_max_ka must be a number or a mapping of 'FROM-TO' (or 'default') to kA")
    ir = _Reader(i_max, f"{r.path}.i_max_ka")
    limits = {str(k): ir.num(str(k), positive=True) for k in i_max}
    for key in limits:
        if key != "default":
            parts = key.split("-")
            if len(parts) != 2 or not all(p.isdigit() and 1 <= int(p) <= n_nodes for p in parts):
                raise CaseError(f"{r.path}.i_max_ka: {key!r} is not a branch 'FROM-TO' of nodes 1..{n_nodes}")

    def node_of(rr: _Reader, key: str = "node") -> int:
        node = rr.int_(key, min_=1)
        if node > n_nodes:
            raise CaseError(f"{rr.path}.{key}={node} is an unknown node (feeder has nodes 1..{n_nodes})")
        return node

    def inverters(key: str) -> list[PvSpec]:
        units = []
        for i, p in enumerate(r.list_(key)):
            pr = _Reader(p, f"{r.path}.{key}[{i}]")
            cap = pr.num("capacity_mw", min_=0.0)
            units.append(PvSpec(node_of(pr), cap, pr.num("s_mva", round(1.1 * cap, 6), min_=cap)))
            pr.done()
        return units

    pv = inverters("pv")
    wind = inverters("wind")
    mts = []
    for i, m in enumerate(r.list_("microturbines")):
        mr = _Reader(m, f"{r.path}.microturbines[{i}]")
        p_max = mr.num("p_max_mw", min_=0.0)
        mts.append(MicroturbineSpec(
            node=node_of(mr), p_max_mw=p_max, p_min_mw=mr.num("p_min_mw", 0.0, min_=0.0, max_=p_max),
            q_max_mvar=mr.num("q_max_mvar", 0.0, min_=0.0), ramp_mw_per_h=mr.num("ramp_mw_per_h", p_max, min_=0.0),
            c1_usd_per_mwh=mr.num("c1_usd_per_mwh", min_=0.0), c2_usd_per_mw2h=mr.num("c2_usd_per_mw2h", 0.0, min_=0.0),
        ))
        mr.done()
    stations = []
    for i, s in enumerate(r.list_("stations")):
        sr = _Reader(s, f"{r.path}.stations[{i}]")
        kind = sr.str_("kind", "home")
        if kind not in ("home", "work"):
            raise CaseError(f"{sr.path}.kind={kind!r} is unknown (known: home, work)")
        p_max = sr.num("p_max_kw", 1e9, positive=True)
        s_kva = sr.num("s_kva", p_max, min_=p_max) if "s_kva" in s else None
        stations.append(StationSpec(sr.str_("id"), node_of(sr), p_max, kind, s_kva))
        sr.done()
    ids = [s.station_id for s in stations]
    dup = {x for x in ids if ids.count(x) > 1}
    if dup:
        raise CaseError(f"{r.path}.stations: duplicate station id(s) {sorted(dup)}")
    evs = r.sub("evs", {"count": 0, "seed": 0})
    ev_count = evs.int_("count", 0, min_=0)
    ev_seed = evs.int_("seed", 0, min_=0)
    v2g = evs.num("v2g_share", 0.0, min_=0.0, max_=1.0)
    reach = evs.int_("reach", 1, min_=1)
    ev_list = []
    for i, e in enumerate(evs.list_("list")):
        er = _Reader(e, f"{evs.path}.list[{i}]")
        ev_list.append(EvInlineSpec(
            ev_id=er.str_("id"), arrival_h=er.num("arrival_h"), departure_h=er.num("departure_h"),
            energy_need_kwh=er.num("energy_need_kwh"), capacity_kwh=er.num("capacity_kwh", 50.0),
            soc_arrival_kwh=er.num("soc_arrival_kwh", 0.0), p_charge_kw=er.num("p_charge_kw", 7.0),
            p_discharge_kw=er.num("p_discharge_kw", 0.0), efficiency=er.num("efficiency", 0.95),
            station=er.str_("station"),
        ))
        er.done()
    evs.done()
    if (ev_count or ev_list) and not stations:
        raise CaseError(f"{r.path}: EVs are given but the feeder has no charging stations")
    for ev in ev_list:
        if ev.station not in ids:
            raise CaseError(f"{r.path}: EV '{ev.ev_id}': station={ev.station!r} is not a station of this feeder "
                            f"(known: {', '.join(ids)})")
    ev_q = r.str_("ev_q", "none")
    if ev_q not in ("none", "plugged", "always"):
        raise CaseError(f"{r.path}.ev_q={ev_q!r} is unknown (known: none, plugged, always)")
    objective = _objective(r)
    chance = _chance(r.sub("chance")) if "chance" in r.data else None
    tou = _tou(r.sub("tou_usd_per_mwh")) if "tou_usd_per_mwh" in r.data else None
    spec = FeederSpec(
        chance=chance, tou_usd_per_mwh=tou,
        ev_q=ev_q, objective=objective, curtailable=r.bool_("curtailable", True),
        feeder_id=fid, bus=bus, network=network, branches=tuple(branches), loads=tuple(loads),
        base_kv=r.num("base_kv", 12.66, positive=True), v_sub_pu=r.num("v_sub_pu", 1.0, min_=0.9, max_=1.1),
        i_max_ka=limits,
        load_scale=r.num("load_scale", 1.0, min_=0.0),
        load_profile=_profile(r, "load_profile", profiles), pv_profile=_profile(r, "pv_profile", profiles),
        pv=tuple(pv), microturbines=tuple(mts), stations=tuple(stations), ev_count=ev_count, ev_seed=ev_seed,
        v2g_share=v2g, ev_list=tuple(ev_list), ev_reach=reach, wind=tuple(wind),
        file=str(file_path) if network == "file" else "",
        wind_profile=_profile(r, "wind_profile", profiles) if wind else str(r._get("wind_profile", "")),
    )
    r.done()
    return spec


OBJECTIVES = ("cost", "loss", "voltage_deviation")


def _tou(r: _Reader) -> tuple[float, float, float]:
    """``tou_usd_per_mwh: {peak, flat, valley}`` [$/MWh], ordered peak >= flat >= valley."""
    peak, flat, valley = (r.num(k, min_=0.0) for k in ("peak", "flat", "valley"))
    r.done()
    if not peak >= flat >= valley:
        raise CaseError(f"{r.path}: peak={peak:g}, flat={flat:g}, valley={valley:g} must be ordered "
                        "peak >= flat >= valley")
    return peak, flat, valley


def _chance(r: _Reader) -> ChanceSpec:
    """``chance: {method, eps, reserve_up_usd_per_mw_h, ...}`` (every field optional, see ``ChanceSpec``)."""
    from core.profiles import year_profile_names

    d = ChanceSpec()
    method = r.str_("method", d.method)
    if method not in CHANCE_METHODS:
        raise CaseError(f"{r.path}.method={method!r} is unknown (known: {', '.join(CHANCE_METHODS)})")
    eps = r.num("eps", d.eps)
    if not 0.0 < eps < 1.0:
        raise CaseError(f"{r.path}.eps={eps} must be in (0, 1)")
    year = set(year_profile_names())
    ev_prof = {}
    for key in ("ev_profile_home", "ev_profile_work"):
        name = r.str_(key, getattr(d, key))
        if name not in year:
            raise CaseError(f"{r.path}.{key}={name!r} is not a bundled year profile (known: {', '.join(sorted(year))})")
        ev_prof[key] = name
    raw_price = r._get("price_usd_per_mwh", list(d.price_usd_per_mwh))
    prices = raw_price if isinstance(raw_price, list) else [raw_price]
    pr = _Reader({str(i): v for i, v in enumerate(prices)}, f"{r.path}.price_usd_per_mwh")
    price = tuple(pr.num(str(i)) for i in range(len(prices)))
    if len(price) not in (1, 24):
        raise CaseError(f"{r.path}.price_usd_per_mwh has {len(price)} values (1 or 24 hourly values)")
    spec = ChanceSpec(
        method=method, eps=eps, **ev_prof,
        reserve_up_usd_per_mw_h=r.num("reserve_up_usd_per_mw_h", d.reserve_up_usd_per_mw_h, min_=0.0),
        reserve_down_usd_per_mw_h=r.num("reserve_down_usd_per_mw_h", d.reserve_down_usd_per_mw_h, min_=0.0),
        ev_session_kwh=r.num("ev_session_kwh", d.ev_session_kwh, positive=True),
        holdout_every=r.int_("holdout_every", d.holdout_every, min_=2),
        error_scale=r.num("error_scale", d.error_scale, positive=True),
        gmm_max_components=r.int_("gmm_max_components", d.gmm_max_components, min_=1),
        seed=r.int_("seed", d.seed, min_=0), so_samples=r.int_("so_samples", d.so_samples, min_=10),
        ro_n_std=r.num("ro_n_std", d.ro_n_std, positive=True), price_usd_per_mwh=price,
        mc_samples=r.int_("mc_samples", d.mc_samples, min_=1), mc_seed=r.int_("mc_seed", d.mc_seed, min_=0),
    )
    r.done()
    return spec


def _objective(r: _Reader) -> tuple[tuple[str, float], ...]:
    """``objective: cost | loss | voltage_deviation`` or a weighted sum ``{cost: w, loss: w, voltage_deviation: w}``."""
    raw = r._get("objective", "cost")
    where = f"{r.path}.objective"
    if isinstance(raw, str):
        if raw not in OBJECTIVES:
            raise CaseError(f"{where}={raw!r} is unknown (known: {', '.join(OBJECTIVES)}, or a mapping of weights)")
        return ((raw, 1.0),)
    if not isinstance(raw, Mapping) or not raw:
        raise CaseError(f"{where} must be one of {', '.join(OBJECTIVES)} or a non-empty mapping of weights")
    wr = _Reader(raw, where)
    weights = tuple((str(k), wr.num(str(k), min_=0.0)) for k in raw)
    unknown = sorted(k for k, _ in weights if k not in OBJECTIVES)
    if unknown:
        raise CaseError(f"{where}: unknown term(s) {unknown} (known: {', '.join(OBJECTIVES)})")
    if not any(w > 0 for _, w in weights):
        raise CaseError(f"{where}: every weight is 0")
    return weights


def parse_case(data: Any, source: str = "<memory>") -> CaseSpec:
    """Validate a case given as plain data (the parsed YAML) and return its spec."""
    from core.profiles import profile_names

    if isinstance(data, dict) and data.get("kind", "dispatch") != "dispatch":
        raise CaseError(f"case {data.get('name')!r} is a {data.get('kind')!r} case, not a dispatch case "
                        "(storage-plan cases are for `gridcoord plan storage --case ...`)")
    profiles = set(profile_names())
    r = _Reader(data, "case")
    name = r.str_("name")
    r.path = f"case '{name}'"
    periods = r.int_("periods", 24, min_=1)
    dt_h = r.num("dt_h", 24.0 / periods, positive=True)
    if abs(periods * dt_h - 24.0) > 1e-9:
        raise CaseError(f"{r.path}: periods * dt_h = {periods * dt_h} h, a day-ahead case covers 24 h")
    if (dt_h * 4) != int(dt_h * 4):
        raise CaseError(f"{r.path}.dt_h={dt_h} must be a multiple of 0.25 h (the profiles' resolution)")
    tr = r.sub("transmission")
    tspec = _parse_transmission(tr, profiles)
    feeders = []
    case_dir = Path(source).parent if source not in ("<memory>", "generated") else Path.cwd()
    for i, f in enumerate(r.list_("feeders")):
        feeders.append(_parse_feeder(_Reader(f, f"{r.path}.feeders[{i}]"), profiles,
                                     KNOWN_TRANSMISSION[tspec.network], tspec.network, case_dir))
    ids = [f.feeder_id for f in feeders]
    for fid in ids:
        if ids.count(fid) > 1:
            raise CaseError(f"{r.path}.feeders: duplicate feeder id {fid!r}")
    all_stations = [s.station_id for f in feeders for s in f.stations]
    for sid in all_stations:
        if all_stations.count(sid) > 1:
            raise CaseError(f"{r.path}: station id {sid!r} is used by more than one feeder")
    spec = CaseSpec(
        name=name, description=str(r._get("description", "")), periods=periods, dt_h=dt_h,
        pv_curtail_usd_per_mwh=r.num("pv_curtail_usd_per_mwh", 0.0, min_=0.0),
        wind_curtail_usd_per_mwh=r.num("wind_curtail_usd_per_mwh", r.data.get("pv_curtail_usd_per_mwh", 0.0),
                                       min_=0.0),
        loss_cost_usd_per_mwh=r.num("loss_cost_usd_per_mwh", 0.0, min_=0.0),
        transmission=tspec, feeders=tuple(feeders), source=source,
    )
    r.done()
    return spec


#: IEEE 118-bus load buses (1-based labels) by decreasing active load (ties: lower label first) in
#: pandapower's case118; the
#: scale case attaches its NN feeders at the first NN (tests/test_case.py re-derives the list).
CASE118_LOAD_BUSES_BY_SIZE: tuple[int, ...] = (
    59, 116, 90, 80, 54, 42, 15, 49, 56, 60, 62, 27, 78, 11, 74, 76, 112, 40, 70, 92, 55, 77, 18, 32, 34, 82, 45, 6,
    1, 107, 88, 12, 75, 19, 31, 106, 95, 99, 3, 4, 66, 79, 110, 96, 104, 41, 100, 13, 47, 98, 35, 118, 36, 105, 94,
    8, 46, 67, 39, 16, 29, 85, 33, 53,
)
SCALE_CASE = re.compile(r"^ieee118-(\d+)x33$")
SCALE_MAX_FEEDERS = len(CASE118_LOAD_BUSES_BY_SIZE)


def scale_case_data(n_feeders: int) -> dict[str, Any]:
    """The ``ieee118-NNx33`` case as plain data: IEEE 118-bus transmission with NN IEEE 33-bus feeders.

    Feeders reuse the reference case's three feeder designs in turn (PV, microturbines, stations, load and
    PV profiles) with their own EV seeds, attached at the NN largest load buses; three 100 MW wind farms.
    """
    if not 1 <= n_feeders <= SCALE_MAX_FEEDERS:
        raise CaseError(f"ieee118-{n_feeders}x33: the number of feeders must be 1..{SCALE_MAX_FEEDERS}")
    ref = yaml.safe_load((CASES_DIR / "ieee30-3x33.yaml").read_text())
    feeders = []
    for k in range(n_feeders):
        f = copy.deepcopy(ref["feeders"][k % len(ref["feeders"])])
        fid = f"dso{k + 1}"
        for st in f["stations"]:
            st["id"] = f"{fid}-{st['id'].split('-', 1)[1]}"
        f.update(id=fid, bus=CASE118_LOAD_BUSES_BY_SIZE[k])
        f["evs"]["seed"] = 100 + k
        feeders.append(f)
    return {
        "name": f"ieee118-{n_feeders}x33",
        "description": f"IEEE 118-bus TSO with {n_feeders} IEEE 33-bus DSO feeders (scale study)",
        "periods": ref["periods"], "dt_h": ref["dt_h"],
        "pv_curtail_usd_per_mwh": ref["pv_curtail_usd_per_mwh"],
        "loss_cost_usd_per_mwh": ref["loss_cost_usd_per_mwh"],
        "transmission": {
            "network": "case118", "cost_scale": 1.0, "ramp_frac_per_h": 0.3, "losses": True,
            "load_profile": "load_mv_urban",
            "wind": [{"bus": b, "capacity_mw": 100.0, "profile": "wind_wp4"} for b in (26, 61, 92)],
            "wind_curtail_usd_per_mwh": 40.0,
            "demand_response": {"max_share": 0.05, "cost_usd_per_mwh": 150.0},
        },
        "feeders": feeders,
    }


def list_cases() -> list[str]:
    """Names of the bundled cases (the generated scale case is listed with its pattern)."""
    return sorted(p.stem for p in CASES_DIR.glob("*.yaml")) + ["ieee118-NNx33"]


def with_ev_reach(spec: CaseSpec, reach: int) -> CaseSpec:
    """The same case with every feeder's ``evs.reach`` set to ``reach`` (1 = temporal-only EV scheduling)."""
    if reach < 1:
        raise CaseError(f"reach={reach!r} must be >= 1")
    return dataclasses.replace(spec, feeders=tuple(dataclasses.replace(f, ev_reach=reach) for f in spec.feeders))


def load_case(name_or_path: str | Path) -> CaseSpec:
    """Load a bundled case by name, or a YAML case file by path."""
    scale = SCALE_CASE.match(str(name_or_path))
    if scale:
        return parse_case(scale_case_data(int(scale.group(1))), source="generated")
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = CASES_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise CaseError(f"unknown case {str(name_or_path)!r} (bundled: {', '.join(list_cases())}; "
                            "or give a path to a .yaml case file)")
    return parse_case(read_case_file(path), source=str(path))


def read_case_file(path: Path) -> Any:
    """The YAML content of a case file; a missing or malformed file is a ``CaseError`` naming it."""
    if not path.exists():
        raise CaseError(f"case file {str(path)!r} does not exist")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CaseError(f"case file {str(path)!r} is not valid YAML: {exc}") from exc


def describe(spec: CaseSpec) -> str:
    """One line summarising a case (for `gridcoord cases`)."""
    n_ev = sum(f.ev_count + len(f.ev_list) for f in spec.feeders)
    return (f"{spec.name}: {spec.transmission.network} + {len(spec.feeders)} feeders, {n_ev} EVs, "
            f"{spec.periods} x {spec.dt_h:g} h — {spec.description}")

