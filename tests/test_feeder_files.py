"""Feeders users bring (core.feeders, network: file): pandapower JSON and MATPOWER .m files, bad files refused
naming the file and the problem; fixed branch taps in the DistFlow model and the AC check."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
import yaml

from core.case import CASES_DIR, CaseError, load_case
from dso.acpf import ac_check
from dso.inputs import feeder_data
from dso.network import FeederData, FeederDataError, feeder_from_file, feeder_from_tables, ieee33bw
from dso.problem import DsoProblem
from dso.validation import base_inputs

FIELDS = ("from_idx", "to_idx", "r_ohm", "x_ohm", "p_load_mw", "q_load_mvar", "taps")


def _same_network(a: FeederData, b: FeederData, rtol: float = 0.0) -> None:
    assert (a.n_nodes, a.base_kv) == (b.n_nodes, b.base_kv)
    for name in FIELDS:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=0.0, err_msg=name)


@pytest.fixture(scope="module")
def net33() -> Any:
    return pn.case33bw()


@pytest.fixture(scope="module")
def mpc33(net33: Any) -> str:
    return _matpower_33bw(net33)


def _matpower_33bw(net: Any, base_mva: float = 10.0) -> str:
    """pandapower's case33bw written out as a MATPOWER case (r, x in p.u. on base_mva and 12.66 kV)."""
    z_base = 12.66**2 / base_mva
    bus = "\n".join(
        f"{k + 1} {3 if k == 0 else 1} {ld_p!r} {ld_q!r} 0 0 1 1 0 12.66 1 1.1 0.9;"
        for k, (ld_p, ld_q) in enumerate(
            (float(net.load.p_mw[net.load.bus == b].sum()), float(net.load.q_mvar[net.load.bus == b].sum()))
            for b in net.bus.index))
    branch = "\n".join(
        f"{int(ln.from_bus) + 1} {int(ln.to_bus) + 1} {ln.r_ohm_per_km * ln.length_km / z_base!r} "
        f"{ln.x_ohm_per_km * ln.length_km / z_base!r} 0 0 0 0 0 0 {int(ln.in_service)} -360 360;"
        for ln in net.line.itertuples())
    return (f"function mpc = case33\n% written by the test\nmpc.version = '2';\nmpc.baseMVA = {base_mva};\n"
            f"mpc.bus = [\n{bus}\n];\nmpc.gen = [\n1 0 0 10 -10 1 100 1 10 0;\n];\nmpc.branch = [\n{branch}\n];\n")


def test_pandapower_json_reproduces_ieee33(tmp_path: Path, net33: Any) -> None:
    path = tmp_path / "case33bw.json"
    pp.to_json(net33, str(path))
    data = feeder_from_file(str(path), "ieee33")
    _same_network(data, ieee33bw())
    assert np.all(data.i_max_ka == 99999.0)  # the file's limits are kept (case33bw carries 99999 kA)


def test_matpower_reproduces_ieee33(tmp_path: Path, mpc33: str) -> None:
    path = tmp_path / "case33.m"
    path.write_text(mpc33)
    data = feeder_from_file(str(path), "ieee33")
    _same_network(data, ieee33bw(), rtol=1e-12)  # p.u. -> ohm round trip
    assert np.all(np.isinf(data.i_max_ka))  # rateA = 0: no limit


def _bad_json(tmp_path: Path, net33: Any, edit: str) -> Path:
    net = copy.deepcopy(net33)
    if edit == "loop":
        net.line["in_service"] = True  # close the five tie lines
    elif edit == "nan":
        net.load.loc[3, "p_mw"] = float("nan")
    elif edit == "sgen":
        pp.create_sgen(net, bus=5, p_mw=0.5)
    elif edit == "missing":
        del net.line["r_ohm_per_km"]
    elif edit == "const_z":
        net.load.loc[2, "const_z_p_percent"] = 50.0
    path = tmp_path / f"{edit}.json"
    pp.to_json(net, str(path))
    return path


@pytest.mark.parametrize(("edit", "message"), [
    ("loop", "not radial: branch .* closes a loop"),
    ("nan", "load 3: p_mw=nan is not finite"),
    ("sgen", "table 'sgen' has 1 in-service row"),
    ("const_z", "load 2: const_z_p_percent=50.0 — voltage-dependent loads are not modelled"),
    ("missing", r"table 'line' misses column\(s\) \['r_ohm_per_km'\]"),
])
def test_bad_pandapower_files_are_refused(tmp_path: Path, net33: Any, edit: str, message: str) -> None:
    path = _bad_json(tmp_path, net33, edit)
    with pytest.raises(FeederDataError, match=message) as err:
        feeder_from_file(str(path))
    assert str(path) in str(err.value)


@pytest.mark.parametrize(("old", "new", "message"), [
    ("\n2 3 ", "\n2 99 ", "mpc.branch row 2: tbus=99 is an unknown bus"),
    ("\n2 1 0.1 0.06 ", "\n2 1 NaN 0.06 ", "mpc.bus row 2: Pd=nan is not finite"),
    ("\n3 1 0.09 0.04 0 0 1 1 0 12.66 1 1.1 0.9;", "\n3 1 0.09 0.04 0 0 1 1;",
     r"mpc.bus row 3 has 8 columns, needs 10 \(missing column\(s\) \['Va', 'baseKV'\]\)"),
    (" 0 0 0 0 0 0 0 -360 360;", " 0 0 0 0 0 0 1 -360 360;", "not radial"),
    ("mpc.baseMVA", "mpc.baseMVAx", "no 'mpc.baseMVA"),
])
def test_bad_matpower_files_are_refused(tmp_path: Path, mpc33: str, old: str, new: str, message: str) -> None:
    text = mpc33
    assert old in text
    path = tmp_path / "bad.m"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(FeederDataError, match=message) as err:
        feeder_from_file(str(path))
    assert str(path) in str(err.value)


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FeederDataError, match=r"does not exist"):
        feeder_from_file(str(tmp_path / "none.json"))
    (tmp_path / "f.xlsx").write_text("")
    with pytest.raises(FeederDataError, match=r"unknown format '.xlsx'"):
        feeder_from_file(str(tmp_path / "f.xlsx"))


def _case_with_file(tmp_path: Path, file: str, pv_node: int = 18) -> Path:
    case = yaml.safe_load((CASES_DIR / "ieee33-sched.yaml").read_text())
    f = case["feeders"][0]
    f.update(network="file", file=file)
    f["pv"][0]["node"] = pv_node
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(case))
    return path


def test_case_feeder_from_a_file(tmp_path: Path, mpc33: str) -> None:
    (tmp_path / "feeders").mkdir()
    (tmp_path / "feeders" / "case33.m").write_text(mpc33)
    spec = load_case(_case_with_file(tmp_path, "feeders/case33.m"))  # relative to the case file
    assert spec.feeders[0].file == str(tmp_path / "feeders" / "case33.m")
    _same_network(feeder_data(spec, "dso1"), ieee33bw(), rtol=1e-12)
    with pytest.raises(CaseError, match=r"pv\[0\].node=40 is an unknown node \(feeder has nodes 1..33\)"):
        load_case(_case_with_file(tmp_path, "feeders/case33.m", pv_node=40))
    with pytest.raises(CaseError, match=r"feeders\[0\] 'dso1'.file: feeder file '.*nowhere.m' does not exist"):
        load_case(_case_with_file(tmp_path, "nowhere.m"))


def test_tap_branch_distflow_and_ac_agree() -> None:
    """A fixed tap at a branch's sending end: |V| after it = tap |V_from|; DistFlow and AC agree."""
    branches = [{"from_node": 1, "to_node": 2, "r_ohm": 0.2, "x_ohm": 0.4},
                {"from_node": 2, "to_node": 3, "r_ohm": 0.5, "x_ohm": 0.3, "tap_ratio": 1.05}]
    loads = [{"node": 3, "p_mw": 0.0, "q_mvar": 0.0}]
    noload = feeder_from_tables("tap", 4.16, branches, loads)
    inp = base_inputs(noload, 1, v_max_pu=1.1)
    d = DsoProblem(noload, inp).solve(price_usd_per_mwh=np.array([50.0])).dispatch
    assert d.v_pu[2, 0] == pytest.approx(1.05, abs=1e-6)
    loaded = feeder_from_tables("tap", 4.16, branches, [{"node": 3, "p_mw": 0.8, "q_mvar": 0.3},
                                                       {"node": 2, "p_mw": 0.5, "q_mvar": 0.2}])
    inp = base_inputs(loaded, 1, v_min_pu=0.8, v_max_pu=1.1)
    d = DsoProblem(loaded, inp).solve(price_usd_per_mwh=np.array([50.0])).dispatch
    ac = ac_check(loaded, inp, d)
    assert ac.converged and ac.max_voltage_error_pu < 1e-6 and ac.loss_error_rel < 1e-5
    assert d.v_pu[2, 0] > d.v_pu[1, 0]  # the 5 % boost beats this branch's ~2.8 % drop


def test_bad_taps_are_refused() -> None:
    good = {"from_node": 1, "to_node": 2, "r_ohm": 0.2, "x_ohm": 0.4}
    with pytest.raises(FeederDataError, match=r"branch 2-3: tap_ratio=2.0 must be in \[0.5, 1.5\]"):
        feeder_from_tables("t", 4.16, [good, {"from_node": 2, "to_node": 3, "r_ohm": 1, "x_ohm": 1,
                                              "tap_ratio": 2.0}], [])
    with pytest.raises(FeederDataError, match=r"branch 3-2: its tap .* must be at the end nearer node 1, node 2"):
        feeder_from_tables("t", 4.16, [good, {"from_node": 3, "to_node": 2, "r_ohm": 1, "x_ohm": 1,
                                              "tap_ratio": 1.02}], [])


def test_bench_validates_a_feeder_file(tmp_path: Path, mpc33: str, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from orchestrator.cli.main import main

    path = tmp_path / "case33.m"
    path.write_text(mpc33)
    assert main(["bench", "--feeder", str(path), "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "feeder_validation.json").read_text())
    chk = result["distflow_vs_ac"]
    assert result["n_nodes"] == 33 and chk["converged"]
    assert chk["max_voltage_error_pu"] <= 0.002 and chk["loss_error_rel"] <= 0.01
    assert chk["loss_model_kw"] == pytest.approx(202.7, abs=0.5)  # Baran & Wu's base-case losses
    assert "DistFlow vs pandapower AC" in capsys.readouterr().out


def test_case_network_names_are_checked(tmp_path: Path) -> None:
    case = yaml.safe_load((CASES_DIR / "ieee123.yaml").read_text())
    case["feeders"][0]["pv"][0]["node"] = 121
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(case))
    with pytest.raises(CaseError, match=r"pv\[0\].node=121 is an unknown node \(feeder has nodes 1..120\)"):
        load_case(path)
    case["feeders"][0]["pv"][0]["node"] = 86
    case["feeders"][0]["file"] = "x.m"
    path.write_text(yaml.safe_dump(case))
    with pytest.raises(CaseError, match=r"\.file is only for network 'file' \(network is 'ieee123'\)"):
        load_case(path)
