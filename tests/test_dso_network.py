"""Feeder data extraction and validation (dso.network)."""

import numpy as np
import pytest

from dso.network import FeederDataError, feeder_from_tables, ieee33bw


def _path(n: int, r: float = 1.0) -> list[dict]:
    return [{"from_node": k, "to_node": k + 1, "r_ohm": r, "x_ohm": 0.5} for k in range(1, n)]


def test_ieee33bw_structure() -> None:
    d = ieee33bw()
    assert d.n_nodes == 33 and d.n_branches == 32
    assert d.base_kv == pytest.approx(12.66)
    assert d.p_load_mw.sum() == pytest.approx(3.715) and d.q_load_mvar.sum() == pytest.approx(2.3)
    assert np.all(np.isinf(d.i_max_ka))
    # BFS order: every parent is the substation or the child of an earlier branch.
    seen = {0}
    for f, t in zip(d.from_idx, d.to_idx, strict=True):
        assert f in seen
        seen.add(int(t))
    assert seen == set(range(33))
    # Branch 1-2 of Baran & Wu: 0.0922 + j0.0470 ohm.
    b = int(np.flatnonzero(d.to_idx == 1)[0])
    assert (d.r_ohm[b], d.x_ohm[b]) == pytest.approx((0.0922, 0.0470))
    assert np.all(ieee33bw(i_max_ka=0.4).i_max_ka == 0.4)


def test_branches_are_reoriented_from_the_substation() -> None:
    branches = [{"from_node": 3, "to_node": 2, "r_ohm": 2.0, "x_ohm": 1.0},
                {"from_node": 2, "to_node": 1, "r_ohm": 1.0, "x_ohm": 0.5}]
    d = feeder_from_tables("f", 12.66, branches, [{"node": 3, "p_mw": 0.1, "q_mvar": 0.05}])
    assert d.from_idx.tolist() == [0, 1] and d.to_idx.tolist() == [1, 2]
    assert d.r_ohm.tolist() == [1.0, 2.0]
    assert d.p_load_mw.tolist() == [0.0, 0.0, 0.1]


def test_negative_impedance_names_branch_and_value() -> None:
    branches = _path(9)
    branches[6]["r_ohm"] = -0.1
    with pytest.raises(FeederDataError, match=r"feeder 'dso2' branch 7-8: r_ohm=-0.1 must be > 0"):
        feeder_from_tables("dso2", 12.66, branches, [])
    branches = _path(4)
    branches[0]["x_ohm"] = float("nan")
    with pytest.raises(FeederDataError, match=r"branch 1-2: x_ohm=nan"):
        feeder_from_tables("f", 12.66, branches, [])


def test_unknown_node() -> None:
    with pytest.raises(FeederDataError, match=r"unknown node 40"):
        feeder_from_tables("f", 12.66, _path(5), [{"node": 40, "p_mw": 0.1, "q_mvar": 0.0}])
    branches = _path(5) + [{"from_node": 5, "to_node": 40, "r_ohm": 1.0, "x_ohm": 1.0}]
    with pytest.raises(FeederDataError, match=r"unknown node 40"):
        feeder_from_tables("f", 12.66, branches, [], n_nodes=6)


def test_loop_and_disconnected() -> None:
    branches = _path(22) + [{"from_node": 21, "to_node": 8, "r_ohm": 1.0, "x_ohm": 1.0}]
    with pytest.raises(FeederDataError, match=r"not radial: branch 21-8 closes a loop"):
        feeder_from_tables("f", 12.66, branches, [])
    branches = _path(4) + [{"from_node": 5, "to_node": 6, "r_ohm": 1.0, "x_ohm": 1.0}]
    with pytest.raises(FeederDataError, match=r"not radial: node 5 is not connected to node 1"):
        feeder_from_tables("f", 12.66, branches, [])


def test_non_finite_load() -> None:
    with pytest.raises(FeederDataError, match=r"load at node 3: p_mw=inf"):
        feeder_from_tables("f", 12.66, _path(4), [{"node": 3, "p_mw": float("inf"), "q_mvar": 0.0}])
