"""Case files are validated on load; errors name the element and the value."""

from __future__ import annotations

import copy

import pytest
import yaml

from core.case import CASES_DIR, CaseError, list_cases, load_case, parse_case


@pytest.fixture()
def ref() -> dict:
    return yaml.safe_load((CASES_DIR / "ieee30-3x33.yaml").read_text())


def test_reference_case_loads() -> None:
    spec = load_case("ieee30-3x33")
    assert spec.periods == 24 and spec.dt_h == 1.0
    assert [f.feeder_id for f in spec.feeders] == ["dso1", "dso2", "dso3"]
    assert all(len(f.stations) == 3 for f in spec.feeders)
    assert "ieee30-3x33" in list_cases()


def test_unknown_tso_bus_named(ref: dict) -> None:
    ref["feeders"][1]["bus"] = 99
    with pytest.raises(CaseError, match=r"feeders\[1\] 'dso2'\.bus=99 is an unknown bus"):
        parse_case(ref)


def test_unknown_feeder_node_named(ref: dict) -> None:
    ref["feeders"][0]["pv"][2]["node"] = 40
    with pytest.raises(CaseError, match=r"'dso1'\.pv\[2\]\.node=40 is an unknown node"):
        parse_case(ref)


def test_unknown_field_refused(ref: dict) -> None:
    ref["feeders"][0]["microturbines"][0]["c3"] = 1.0
    with pytest.raises(CaseError, match=r"microturbines\[0\]: unknown field\(s\) 'c3'"):
        parse_case(ref)


def test_nan_refused(ref: dict) -> None:
    ref["transmission"]["wind"][0]["capacity_mw"] = float("nan")
    with pytest.raises(CaseError, match=r"wind\[0\]\.capacity_mw=nan is not finite"):
        parse_case(ref)


def test_unknown_case_name() -> None:
    with pytest.raises(CaseError, match="unknown case 'nope'"):
        load_case("nope")


def test_inline_ev_unknown_station(ref: dict) -> None:
    ref["feeders"][0]["evs"]["list"] = [{"id": "ev-x", "arrival_h": 18.0, "departure_h": 7.0,
                                         "energy_need_kwh": 10.0, "station": "nowhere"}]
    with pytest.raises(CaseError, match="EV 'ev-x': station='nowhere'"):
        parse_case(ref)


def test_copy_is_independent(ref: dict) -> None:
    a = parse_case(copy.deepcopy(ref))
    b = parse_case(ref)
    assert a == b


def test_scale_case_generated() -> None:
    spec = load_case("ieee118-16x33")
    assert spec.transmission.network == "case118"
    assert len(spec.feeders) == 16
    assert len({f.bus for f in spec.feeders}) == 16
    assert len({s.station_id for f in spec.feeders for s in f.stations}) == 48
    with pytest.raises(CaseError, match="1..64"):
        load_case("ieee118-65x33")


def test_case118_load_bus_order() -> None:
    import pandapower.networks as pn

    from core.case import CASE118_LOAD_BUSES_BY_SIZE

    net = pn.case118()
    load = net.load.groupby("bus").p_mw.sum()
    order = sorted((-float(p), int(net.bus.index.get_loc(b)) + 1) for b, p in load.items())
    labels = [label for _, label in order[: len(CASE118_LOAD_BUSES_BY_SIZE)]]
    assert tuple(labels) == CASE118_LOAD_BUSES_BY_SIZE


def test_feeder_wind_from_the_case() -> None:
    """``wind:`` on a feeder (like ``pv:``) with its ``wind_profile``: the DSO's inputs carry the turbines."""
    import copy

    import yaml

    from core.case import CASES_DIR, CaseError, parse_case
    from dso.inputs import feeder_data, feeder_inputs
    from dso.model import EvFlexibility

    data = yaml.safe_load((CASES_DIR / "ieee30-3x33.yaml").read_text())
    case = copy.deepcopy(data)
    case["feeders"][0]["wind"] = [{"node": 18, "capacity_mw": 1.0}]
    case["feeders"][0]["wind_profile"] = "wind_wp4"
    spec = parse_case(case)
    f = spec.feeder("dso1")
    assert f.wind[0].node == 18 and f.wind[0].s_mva == 1.1 and spec.wind_curtail_usd_per_mwh == 30.0
    fd = feeder_data(spec, "dso1")
    inp = feeder_inputs(spec, "dso1", fd, EvFlexibility.empty())
    assert inp.wind_node_idx.tolist() == [17] and inp.wind_avail_mw.shape == (1, 24)
    assert 0 < inp.wind_avail_mw.max() <= 1.0
    del case["feeders"][0]["wind_profile"]
    with pytest.raises(CaseError, match="wind_profile"):
        parse_case(case)
    case["feeders"][0]["wind_profile"] = "wind_wp4"
    case["feeders"][0]["wind"][0]["node"] = 40
    with pytest.raises(CaseError, match=r"wind\[0\]\.node=40 is an unknown node"):
        parse_case(case)


@pytest.mark.parametrize("name", [n for n in list_cases() if "NN" not in n])
def test_every_bundled_case_loads(name: str) -> None:
    """Every bundled dispatch case parses (the storage-plan case is read by dso.planning, which its tests cover)."""
    if yaml.safe_load((CASES_DIR / f"{name}.yaml").read_text()).get("kind") == "storage-plan":
        with pytest.raises(CaseError, match="not a dispatch case"):
            load_case(name)
        return
    spec = load_case(name)
    assert spec.name == name and spec.feeders, name
