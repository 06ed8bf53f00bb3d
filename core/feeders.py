"""Feeder networks as plain tables: the shipped IEEE 123-node feeder and feeders users bring as a pandapower
JSON file or a MATPOWER ``.m`` case file.

A ``FeederTables`` holds 1-based node labels (node 1 = the substation / slack), branch rows
``{from_node, to_node, r_ohm, x_ohm, i_max_ka, tap_ratio}`` with every impedance in ohm referred to ``base_kv``,
and load rows ``{node, p_mw, q_mvar}``. Topology (radial, connected) is checked where the tables become a
feeder (``dso.network.feeder_from_tables``). Every error here is a ``FeederFileError`` naming the file, the table,
the row and the bad value; nothing in a file is silently dropped: elements the feeder model does not have
(generators, shunts, transformers in a pandapower file, line charging) are refused with the reason.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"
IEEE123_BRANCHES = DATA_DIR / "ieee123_branches.csv"
IEEE123_NODES = DATA_DIR / "ieee123_nodes.csv"
IEEE123_OPENDSS = DATA_DIR / "ieee123_opendss.csv"
#: the head regulator's solved tap in the OpenDSS reference solution: the substation voltage [p.u.]
IEEE123_V_SUB_PU = 1.0375

__all__ = ["FeederFileError", "FeederTables", "IEEE123_V_SUB_PU", "ieee123_tables", "matpower_tables",
           "pandapower_tables", "read_feeder_file"]


class FeederFileError(ValueError):
    """A feeder file is unreadable or holds what the feeder model cannot take; the message names the file,
    the table or row and the bad value."""


@dataclass(frozen=True)
class FeederTables:
    """A feeder as tables; see the module docstring for the row fields."""

    base_kv: float  # line-to-line voltage every impedance is referred to [kV]
    n_nodes: int
    branches: tuple[dict[str, Any], ...]
    loads: tuple[dict[str, Any], ...]
    #: name of each node 1..N in the source (OpenDSS bus names, pandapower bus index, MATPOWER bus number)
    node_names: tuple[str, ...]
    source: str


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return [r for r in csv.DictReader(line for line in fh if not line.startswith("#"))]


@cache
def ieee123_tables() -> FeederTables:
    """The balanced IEEE 123-node feeder shipped in ``core/data`` (``convert_ieee123.py``, PROVENANCE.md):
    120 nodes, 119 branches at 4.16 kV, loads summed over phases, capacitors as fixed injections."""
    branches = tuple(
        {"from_node": int(r["from_node"]), "to_node": int(r["to_node"]), "r_ohm": float(r["r_ohm"]),
         "x_ohm": float(r["x_ohm"]), "tap_ratio": float(r["tap_ratio"]), "i_max_ka": None}
        for r in _csv_rows(IEEE123_BRANCHES))
    nodes = _csv_rows(IEEE123_NODES)
    loads = tuple({"node": int(r["node"]), "p_mw": float(r["p_mw"]),
                   "q_mvar": float(r["q_mvar"]) - float(r["q_capacitor_mvar"])} for r in nodes)
    return FeederTables(4.16, len(nodes), branches, loads, tuple(r["dss_buses"] for r in nodes), str(IEEE123_BRANCHES))


def read_feeder_file(path: str | Path) -> FeederTables:
    """A feeder from a pandapower JSON file (``.json``) or a MATPOWER case file (``.m``)."""
    p = Path(path)
    if not p.exists():
        raise FeederFileError(f"feeder file '{p}' does not exist")
    if p.suffix.lower() == ".json":
        import pandapower as pp

        try:
            net = pp.from_json(str(p))
        except Exception as exc:  # pandapower raises bare Exceptions / json errors for unreadable files
            raise FeederFileError(f"feeder file '{p}' is not a readable pandapower JSON network: {exc}") from exc
        return pandapower_tables(net, str(p))
    if p.suffix.lower() == ".m":
        return matpower_tables(p.read_text(), str(p))
    raise FeederFileError(f"feeder file '{p}': unknown format '{p.suffix}' (known: .json pandapower, .m MATPOWER)")


def _finite(where: str, name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise FeederFileError(f"{where}: {name}={value!r} is not a number") from None
    if not math.isfinite(v):
        raise FeederFileError(f"{where}: {name}={v} is not finite")
    return v


#: pandapower tables the feeder model has no counterpart for (DER come from the case file)
_PP_REFUSED = ("gen", "sgen", "storage", "shunt", "trafo", "trafo3w", "impedance", "ward", "xward", "dcline",
               "motor", "asymmetric_load", "asymmetric_sgen", "svc", "tcsc", "ssc", "vsc")


def pandapower_tables(net: Any, source: str = "<pandapower net>") -> FeederTables:
    """In-service lines and loads of a pandapower network; the ext_grid bus is node 1, the other buses follow
    in the order of ``net.bus``. Every bus must have the ext_grid's ``vn_kv``. A line's limit is
    ``max_i_ka * df * parallel``; the substation voltage is the case's ``v_sub_pu`` (the ext_grid's ``vm_pu`` is
    not read), voltage limits are the DSO model's."""
    where = f"feeder file '{source}'"
    for table in _PP_REFUSED:
        if table not in net or not len(net[table]):
            continue
        n_in = int(net[table]["in_service"].astype(bool).sum()) if "in_service" in net[table] else len(net[table])
        if n_in:
            raise FeederFileError(f"{where}: table '{table}' has {n_in} in-service row(s); a feeder file holds "
                                  "lines and loads only (DER, storage and EVs are given in the case file; "
                                  "transformers, shunts and other elements are not modelled)")
    for table, cols in (("bus", ("vn_kv", "in_service")), ("ext_grid", ("bus", "in_service")),
                        ("line", ("from_bus", "to_bus", "length_km", "r_ohm_per_km", "x_ohm_per_km", "c_nf_per_km",
                                  "max_i_ka", "parallel", "in_service")),
                        ("load", ("bus", "p_mw", "q_mvar", "scaling", "in_service"))):
        if table not in net:
            raise FeederFileError(f"{where}: no table '{table}'")
        missing = [c for c in cols if c not in net[table].columns]
        if missing:
            raise FeederFileError(f"{where}: table '{table}' misses column(s) {missing}")
    ext = net.ext_grid[net.ext_grid.in_service.astype(bool)]
    if len(ext) != 1:
        raise FeederFileError(f"{where}: needs exactly one in-service ext_grid (the substation), found {len(ext)}")
    slack = int(ext.bus.iloc[0])
    bus_ids = [int(b) for b in net.bus.index[net.bus.in_service.astype(bool)]]  # out-of-service buses: no nodes
    if slack not in bus_ids:
        raise FeederFileError(f"{where}: ext_grid bus {slack} is an unknown or out-of-service bus")
    order = [slack] + [b for b in bus_ids if b != slack]
    label = {b: k + 1 for k, b in enumerate(order)}
    base_kv = _finite(f"{where} bus {slack}", "vn_kv", net.bus.vn_kv.loc[slack])

    def node(table: str, row: Any, col: str) -> int:
        b = int(getattr(row, col))
        if b not in label:
            what = "an out-of-service" if b in net.bus.index else "an unknown"
            raise FeederFileError(f"{where}: {table} {row.Index} {col}={b} is {what} bus")
        return label[b]

    switch = net.switch if "switch" in net else None
    open_lines: set[int] = set()
    if switch is not None and len(switch):
        for sw in switch.itertuples():
            if sw.et != "l":
                raise FeederFileError(f"{where}: switch {sw.Index} is a '{sw.et}' switch; only line switches are "
                                "imported (merge bus-bus switches into one bus)")
            if not bool(sw.closed):
                open_lines.add(int(sw.element))
    branches = []
    for ln in net.line.itertuples():
        if not bool(ln.in_service) or int(ln.Index) in open_lines:
            continue
        w = f"{where} line {ln.Index}"
        f, t = node("line", ln, "from_bus"), node("line", ln, "to_bus")
        vn = _finite(f"{where} bus {ln.from_bus}", "vn_kv", net.bus.vn_kv.loc[int(ln.from_bus)])
        if vn != base_kv or net.bus.vn_kv.loc[int(ln.to_bus)] != base_kv:
            raise FeederFileError(f"{w}: its buses are not at the ext_grid's {base_kv} kV (one voltage level only)")
        if _finite(w, "c_nf_per_km", ln.c_nf_per_km) != 0.0:
            raise FeederFileError(f"{w}: c_nf_per_km={ln.c_nf_per_km} — line charging is not modelled by the "
                            "feeder model; set it to 0 to import the line without it")
        par = _finite(w, "parallel", ln.parallel)
        length = _finite(w, "length_km", ln.length_km)
        derating = _finite(w, "df", ln.df) if "df" in net.line.columns else 1.0
        i_max = _finite(w, "max_i_ka", ln.max_i_ka) * derating * par
        branches.append({"from_node": f, "to_node": t,
                         "r_ohm": _finite(w, "r_ohm_per_km", ln.r_ohm_per_km) * length / par,
                         "x_ohm": _finite(w, "x_ohm_per_km", ln.x_ohm_per_km) * length / par,
                         "i_max_ka": i_max, "tap_ratio": 1.0})
    loads = []
    for ld in net.load.itertuples():
        if not bool(ld.in_service):
            continue
        w = f"{where} load {ld.Index}"
        scale = _finite(w, "scaling", ld.scaling)
        for col in (c for c in net.load.columns if c.startswith("const_")):
            if _finite(w, col, getattr(ld, col)) != 0.0:
                raise FeederFileError(f"{w}: {col}={getattr(ld, col)} — voltage-dependent loads are not modelled "
                                      "(the feeder model's loads are constant power); set it to 0 to import the "
                                      "load as constant power")
        loads.append({"node": node("load", ld, "bus"), "p_mw": _finite(w, "p_mw", ld.p_mw) * scale,
                      "q_mvar": _finite(w, "q_mvar", ld.q_mvar) * scale})
    return FeederTables(base_kv, len(order), tuple(branches), tuple(loads), tuple(str(b) for b in order), source)


_MPC_MATRIX = re.compile(r"mpc\.(\w+)\s*=\s*\[(.*?)\]\s*;", re.S)
_MPC_SCALAR = re.compile(r"mpc\.baseMVA\s*=\s*([^;\s]+)\s*;")
#: MATPOWER column names (MATPOWER manual, Tables B-1 to B-3) up to the ones read here
_BUS_COLS = ("bus_i", "type", "Pd", "Qd", "Gs", "Bs", "area", "Vm", "Va", "baseKV")
_BRANCH_COLS = ("fbus", "tbus", "r", "x", "b", "rateA", "rateB", "rateC", "ratio", "angle", "status")
_GEN_COLS = ("bus", "Pg", "Qg", "Qmax", "Qmin", "Vg", "mBase", "status")


def _mpc_matrix(text: str, name: str, cols: tuple[str, ...], where: str, required: bool = True) -> list[list[float]]:
    found = {m.group(1): m.group(2) for m in _MPC_MATRIX.finditer(text)}
    if name not in found:
        if required:
            raise FeederFileError(f"{where}: no 'mpc.{name} = [...];' matrix")
        return []
    rows = []
    body = "\n".join(line.split("%", 1)[0] for line in found[name].splitlines())
    for k, raw in enumerate(r for r in re.split(r"[;\n]", body) if r.strip()):
        vals = raw.replace(",", " ").split()
        if len(vals) < len(cols):
            raise FeederFileError(f"{where}: mpc.{name} row {k + 1} has {len(vals)} columns, needs {len(cols)} "
                            f"(missing column(s) {list(cols[len(vals):])})")
        rows.append([_finite(f"{where} mpc.{name} row {k + 1}", cols[j] if j < len(cols) else f"column {j + 1}", v)
                     for j, v in enumerate(vals)])
    return rows


def matpower_tables(text: str, source: str = "<matpower>") -> FeederTables:
    """A MATPOWER version-2 case (``mpc.baseMVA``, ``mpc.bus``, ``mpc.branch``, optionally ``mpc.gen``): the
    reference bus (type 3) is node 1, the other buses follow in file order; r, x [p.u. on baseMVA and the bus
    baseKV] become ohm, rateA [MVA] a current limit, ``ratio`` a fixed tap at the ``fbus`` end."""
    where = f"feeder file '{source}'"
    m = _MPC_SCALAR.search(text)
    if not m:
        raise FeederFileError(f"{where}: no 'mpc.baseMVA = ...;'")
    base_mva = _finite(where, "mpc.baseMVA", m.group(1))
    if base_mva <= 0:
        raise FeederFileError(f"{where}: mpc.baseMVA={base_mva} must be > 0")
    bus = _mpc_matrix(text, "bus", _BUS_COLS, where)
    branch = _mpc_matrix(text, "branch", _BRANCH_COLS, where)
    gen = _mpc_matrix(text, "gen", _GEN_COLS, where, required=False)
    ref = [r for r in bus if int(r[1]) == 3]
    if len(ref) != 1:
        raise FeederFileError(f"{where}: needs exactly one reference bus (type 3, the substation), found {len(ref)}")
    ids = [int(r[0]) for r in bus]
    dup = sorted({b for b in ids if ids.count(b) > 1})
    if dup:
        raise FeederFileError(f"{where}: mpc.bus lists bus {dup[0]} more than once")
    slack = int(ref[0][0])
    order = [slack] + [b for b in ids if b != slack]
    label = {b: k + 1 for k, b in enumerate(order)}
    base_kv = ref[0][9]
    if base_kv <= 0:
        raise FeederFileError(f"{where}: reference bus {slack} has baseKV={base_kv}; it must be > 0")
    for r in bus:
        w = f"{where} mpc.bus bus {int(r[0])}"
        if r[9] != base_kv:
            raise FeederFileError(f"{w}: baseKV={r[9]} differs from the reference bus's {base_kv} "
                                  "(one voltage level only)")
        if r[4] != 0 or r[5] != 0:
            raise FeederFileError(f"{w}: shunt Gs={r[4]}, Bs={r[5]} — shunts are not modelled by the feeder model")
        if int(r[1]) == 4:
            raise FeederFileError(f"{w}: isolated bus (type 4) — remove it from the feeder file")
    for k, g in enumerate(gen):
        if int(g[0]) != slack and g[7] > 0:
            raise FeederFileError(f"{where}: mpc.gen row {k + 1} is an in-service generator at bus {int(g[0])}; "
                                  "only the reference bus may have one (DER are given in the case file)")
    z_base = base_kv**2 / base_mva
    branches = []
    for k, r in enumerate(branch):
        w = f"{where} mpc.branch row {k + 1}"
        if r[10] <= 0:
            continue
        f, t = int(r[0]), int(r[1])
        for col, b in (("fbus", f), ("tbus", t)):
            if b not in label:
                raise FeederFileError(f"{w}: {col}={b} is an unknown bus")
        if r[4] != 0:
            raise FeederFileError(f"{w}: line charging b={r[4]} is not modelled by the feeder model; set it to 0")
        if r[9] != 0:
            raise FeederFileError(f"{w}: phase shift angle={r[9]} is not modelled by the feeder model")
        rate = r[5]
        branches.append({"from_node": label[f], "to_node": label[t], "r_ohm": r[2] * z_base, "x_ohm": r[3] * z_base,
                         "i_max_ka": rate / (math.sqrt(3.0) * base_kv) if rate > 0 else None,
                         "tap_ratio": r[8] if r[8] != 0 else 1.0})
    loads = [{"node": label[int(r[0])], "p_mw": r[2], "q_mvar": r[3]} for r in bus if r[2] != 0 or r[3] != 0]
    return FeederTables(base_kv, len(order), tuple(branches), tuple(loads), tuple(str(b) for b in order), source)
