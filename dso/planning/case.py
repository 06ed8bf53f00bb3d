"""The storage-planning case (YAML ``kind: storage-plan``, bundled ``core/cases/ieee33-storage.yaml``).

Parsed and validated before any model is built: an unknown candidate or PV node, a negative cost, a duration
range that is empty, ... raise ``core.case.CaseError`` naming the key and the value.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from core.case import CASES_DIR, CaseError, read_case_file
from dso.network import FeederData, FeederDataError, ieee33bw

KIND = "storage-plan"


def _plan_case_names() -> tuple[str, ...]:
    names = []
    for p in sorted(CASES_DIR.glob("*.yaml")):
        head = yaml.safe_load(p.read_text())
        if isinstance(head, dict) and head.get("kind") == KIND:
            names.append(p.stem)
    return tuple(names)


#: bundled storage-plan cases (listed by ``gridcoord cases``)
PLAN_CASES: tuple[str, ...] = _plan_case_names()


@dataclass(frozen=True)
class StationPlanSpec:
    station_id: str
    node: int  # 1-based
    n_evs: int
    p_max_kw: float


@dataclass(frozen=True)
class StorageCosts:
    """Annualised investment [$/MWh/yr, $/MW/yr, $/site/yr] and the unit limits."""

    energy_usd_per_mwh_year: float
    power_usd_per_mw_year: float
    site_usd_per_year: float
    e_max_mwh: float
    p_max_mw: float
    duration_min_h: float
    duration_max_h: float
    loss_at_rated: float  # virtual resistance: loss = loss_at_rated * p^2 / p_rated [MW]
    soc_min: float  # share of the energy rating that stays stored


@dataclass(frozen=True)
class Tariff:
    price_usd_per_mwh: np.ndarray  # (24,)
    feed_in_usd_per_mwh: float
    carbon_t_per_mwh: float
    carbon_usd_per_t: float
    pv_curtail_usd_per_mwh: float
    loss_usd_per_mwh: float
    shed_usd_per_mwh: float
    balance_usd_per_day: float
    deferral_usd_per_mw_year: float


@dataclass(frozen=True)
class StoragePlanCase:
    name: str
    description: str
    feeder: FeederData
    v_sub_pu: float
    v_min_pu: float
    v_max_pu: float
    load_profile: str
    pv_profile: str
    load_scale: float
    days_per_year: float
    pv_node: np.ndarray  # (G,) 1-based
    pv_capacity_mw: np.ndarray  # (G,)
    stations: tuple[StationPlanSpec, ...]
    ev_seed: int
    controllable_share: float
    candidates: np.ndarray  # (C,) 1-based candidate nodes
    max_sites: int
    costs: StorageCosts
    tariff: Tariff

    def with_candidates(self, nodes: list[int]) -> StoragePlanCase:
        """The same case with other candidate nodes (validated)."""
        return replace(self, candidates=_nodes(nodes, self.feeder.n_nodes, f"case '{self.name}' storage.candidates"))

    def with_controllable_share(self, share: float) -> StoragePlanCase:
        if not 0.0 <= share <= 1.0:
            raise CaseError(f"case '{self.name}': controllable_share={share!r} must be in [0, 1]")
        return replace(self, controllable_share=float(share))


def _nodes(values: list[Any], n_nodes: int, where: str) -> np.ndarray:
    out = []
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= n_nodes:
            raise CaseError(f"{where}: node {v!r} does not exist (feeder nodes are 1..{n_nodes})")
        if v in out:
            raise CaseError(f"{where}: node {v} is listed twice")
        out.append(v)
    if not out:
        raise CaseError(f"{where}: at least one node is required")
    return np.array(out, dtype=np.int64)


class _R:
    """A dict reader that names the key path in every error."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise CaseError(f"{path}: expected a mapping, got {type(data).__name__}")
        self.d, self.path = data, path
        self.used: set[str] = set()

    def get(self, key: str, default: Any = ...) -> Any:
        self.used.add(key)
        if key not in self.d:
            if default is ...:
                raise CaseError(f"{self.path}.{key} is missing")
            return default
        return self.d[key]

    def num(self, key: str, default: Any = ..., *, min_: float | None = 0.0, max_: float | None = None) -> float:
        v = self.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
            raise CaseError(f"{self.path}.{key}={v!r} must be a finite number")
        if min_ is not None and v < min_:
            raise CaseError(f"{self.path}.{key}={v!r} must be >= {min_:g} (a cost or size cannot be negative)")
        if max_ is not None and v > max_:
            raise CaseError(f"{self.path}.{key}={v!r} must be <= {max_:g}")
        return float(v)

    def sub(self, key: str) -> _R:
        return _R(self.get(key), f"{self.path}.{key}")

    def done(self) -> None:
        extra = sorted(set(self.d) - self.used)
        if extra:
            raise CaseError(f"{self.path}: unknown key {extra[0]!r}")


def _i_max(feeder: FeederData, spec: Any, where: str) -> FeederData:
    if spec is None:
        return feeder
    if not isinstance(spec, dict) or "default" not in spec:
        raise CaseError(f"{where}: expected a mapping with a 'default' entry")
    labels = {feeder.branch_label(b): b for b in range(feeder.n_branches)}
    labels |= {f"{t}-{f}": b for f_t, b in list(labels.items()) for f, t in [f_t.split("-")]}
    i_max = np.full(feeder.n_branches, float(spec["default"]))
    for k, v in spec.items():
        if k == "default":
            continue
        if k not in labels:
            raise CaseError(f"{where}: branch {k!r} does not exist")
        i_max[labels[k]] = float(v)
    if np.any(~(i_max > 0)):
        raise CaseError(f"{where}: every limit must be > 0 kA")
    return replace(feeder, i_max_ka=i_max)


def parse_plan_case(data: Any, source: str = "<memory>") -> StoragePlanCase:
    """Validate a storage-plan case given as plain data (the parsed YAML)."""
    from core.profiles import year_profile

    r = _R(data, "case")
    if r.get("kind") != KIND:
        raise CaseError(f"{source}: kind={r.get('kind')!r} must be {KIND!r}")
    name = str(r.get("name"))
    r.path = f"case '{name}'"
    network = r.get("network")
    if network != "case33bw":
        raise CaseError(f"{r.path}.network={network!r} is unknown (known: case33bw)")
    try:
        feeder = ieee33bw(name)
    except FeederDataError as exc:
        raise CaseError(str(exc)) from exc
    feeder = _i_max(feeder, r.get("i_max_ka", None), f"{r.path}.i_max_ka")
    n = feeder.n_nodes
    v_min, v_max = r.num("v_min_pu", 0.95), r.num("v_max_pu", 1.05)
    v_sub = r.num("v_sub_pu", 1.0)
    if not 0 < v_min < v_max or not v_min <= v_sub <= v_max:
        raise CaseError(f"{r.path}: need 0 < v_min_pu <= v_sub_pu <= v_max_pu, got {v_min}, {v_sub}, {v_max}")
    profiles = {}
    for key in ("load_profile", "pv_profile"):
        profiles[key] = str(r.get(key))
        try:
            year_profile(profiles[key])
        except KeyError as exc:
            raise CaseError(f"{r.path}.{key}: {exc.args[0]}") from exc
    pv_node, pv_cap = [], []
    for k, item in enumerate(r.get("pv", [])):
        pr = _R(item, f"{r.path}.pv[{k}]")
        pv_node.append(pr.get("node"))
        pv_cap.append(pr.num("capacity_mw"))
        pr.done()
    pv_nodes = _nodes(pv_node, n, f"{r.path}.pv") if pv_node else np.zeros(0, dtype=np.int64)
    stations = []
    for k, item in enumerate(r.get("stations", [])):
        sr = _R(item, f"{r.path}.stations[{k}]")
        node = _nodes([sr.get("node")], n, f"{sr.path}.node")[0]
        evs = sr.get("evs")
        if isinstance(evs, bool) or not isinstance(evs, int) or evs < 0:
            raise CaseError(f"{sr.path}.evs={evs!r} must be an integer >= 0")
        stations.append(StationPlanSpec(str(sr.get("id")), int(node), evs, sr.num("p_max_kw", min_=1e-9)))
        sr.done()
    s = r.sub("storage")
    candidates = _nodes(s.get("candidates"), n, f"{s.path}.candidates")
    if 1 in candidates.tolist():
        raise CaseError(f"{s.path}.candidates: node 1 is the substation, not a storage site")
    max_sites = s.get("max_sites", len(candidates))
    if isinstance(max_sites, bool) or not isinstance(max_sites, int) or not 0 <= max_sites <= len(candidates):
        raise CaseError(f"{s.path}.max_sites={max_sites!r} must be an integer in 0..{len(candidates)}")
    dur = s.get("duration_h")
    if not isinstance(dur, list) or len(dur) != 2 or not 0 < float(dur[0]) <= float(dur[1]):
        raise CaseError(f"{s.path}.duration_h={dur!r} must be [min, max] with 0 < min <= max")
    costs = StorageCosts(
        energy_usd_per_mwh_year=s.num("energy_usd_per_mwh_year"), power_usd_per_mw_year=s.num("power_usd_per_mw_year"),
        site_usd_per_year=s.num("site_usd_per_year"), e_max_mwh=s.num("e_max_mwh", min_=1e-9),
        p_max_mw=s.num("p_max_mw", min_=1e-9), duration_min_h=float(dur[0]), duration_max_h=float(dur[1]),
        loss_at_rated=s.num("loss_at_rated", max_=0.5), soc_min=s.num("soc_min", max_=0.9))
    s.done()
    t = r.sub("tariff")
    price = np.asarray(t.get("price_usd_per_mwh"), dtype=float)
    if price.shape != (24,) or np.any(~np.isfinite(price)) or np.any(price < 0):
        raise CaseError(f"{t.path}.price_usd_per_mwh must be 24 finite numbers >= 0 (hours 0..23)")
    feed_in = t.num("feed_in_usd_per_mwh")
    if feed_in > price.min():
        raise CaseError(f"{t.path}.feed_in_usd_per_mwh={feed_in} must not exceed the lowest purchase price "
                        f"{price.min()} (buying to sell back would be unbounded)")
    tariff = Tariff(
        price_usd_per_mwh=price, feed_in_usd_per_mwh=feed_in, carbon_t_per_mwh=t.num("carbon_t_per_mwh"),
        carbon_usd_per_t=t.num("carbon_usd_per_t"), pv_curtail_usd_per_mwh=t.num("pv_curtail_usd_per_mwh"),
        loss_usd_per_mwh=t.num("loss_usd_per_mwh"), shed_usd_per_mwh=t.num("shed_usd_per_mwh", min_=1e-9),
        balance_usd_per_day=t.num("balance_usd_per_day"), deferral_usd_per_mw_year=t.num("deferral_usd_per_mw_year"))
    t.done()
    spec = StoragePlanCase(
        name=name, description=str(r.get("description", "")), feeder=feeder, v_sub_pu=v_sub, v_min_pu=v_min,
        v_max_pu=v_max, load_profile=profiles["load_profile"], pv_profile=profiles["pv_profile"],
        load_scale=r.num("load_scale", 1.0, min_=1e-9), days_per_year=r.num("days_per_year", 365.0, min_=1.0),
        pv_node=pv_nodes, pv_capacity_mw=np.asarray(pv_cap, dtype=float), stations=tuple(stations),
        ev_seed=int(r.get("ev_seed", 1)), controllable_share=r.num("controllable_share", 0.5, max_=1.0),
        candidates=candidates, max_sites=int(max_sites), costs=costs, tariff=tariff)
    r.done()
    return spec


def load_plan_case(name_or_path: str | Path) -> StoragePlanCase:
    """A bundled storage-plan case by name, or a YAML file by path."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = CASES_DIR / f"{name_or_path}.yaml"
        if not path.exists() or path.stem not in PLAN_CASES:
            raise CaseError(f"unknown storage-plan case {str(name_or_path)!r} (bundled: {', '.join(PLAN_CASES)}; "
                            "or give a path to a .yaml case file)")
    return parse_plan_case(read_case_file(path), source=str(path))


def describe_plan_case(name: str) -> str:
    """One line for ``gridcoord cases``."""
    c = load_plan_case(name)
    return (f"{c.name}: storage planning on {c.feeder.n_nodes}-node feeder, {len(c.candidates)} candidates, "
            f"{sum(s.n_evs for s in c.stations)} EVs at {len(c.stations)} stations — {c.description}")
