"""TNO: network data and validation, dynamic network loading, equilibrium; DSO coupling options; the loop."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from aggregator.zonotope import shift_generators
from dso.coupling import coupling_feeder
from dso.model import FeederInputError, ZonotopeClusters
from dso.problem import DsoProblem
from tno.cases import coupling_case
from tno.equilibrium import equilibrate, shortest_path_assignment
from tno.loading import make_vehicles
from tno.network import ChargingStation, OdDemand, RoadNetwork, TransportCase, TransportInputError, nguyen_dupuis
from tno.operator import TransportOperator
from tno.paths import choice_sets


def _small(demand_scale: float = 0.4) -> TransportCase:
    return coupling_case(demand_scale=demand_scale, charging_share=0.2, horizon_min=240.0, departure_end_min=120.0)


def test_nguyen_dupuis_data() -> None:
    net, od = nguyen_dupuis()
    assert net.n_links == 19 and net.nodes.size == 13
    assert [(d.origin, d.destination) for d in od] == [(1, 2), (1, 3), (4, 2), (4, 3)]
    assert np.all(net.free_flow_min > 0) and np.all(net.capacity_veh_per_h > 0)


@pytest.mark.parametrize("field, value, match", [
    ("capacity_veh_per_h", 0.0, r"link '7' \(6->7\): capacity_veh_per_h=0.0"),
    ("free_flow_min", -1.0, r"link '7' \(6->7\): free_flow_min=-1.0"),
])
def test_bad_link_refused(field: str, value: float, match: str) -> None:
    net, _ = nguyen_dupuis()
    arr = getattr(net, field).copy()
    arr[6] = value
    with pytest.raises(TransportInputError, match=match):
        RoadNetwork(net.name, net.link_id, net.from_node, net.to_node,
                    **{"free_flow_min": net.free_flow_min, "capacity_veh_per_h": net.capacity_veh_per_h,
                       field: arr})


def test_bad_demand_and_station_refused() -> None:
    case = coupling_case()
    with pytest.raises(TransportInputError, match=r"OD pair \(1,3\): demand_veh_per_h=-5.0"):
        replace(case, od=(OdDemand(1, 3, -5.0),))
    with pytest.raises(TransportInputError, match=r"station 'cx': road_node=99 is not a node"):
        replace(case, stations=(ChargingStation("cx", 99, 18, 4, 50.0, "none"),))
    with pytest.raises(TransportInputError, match=r"OD pair \(2,1\): no road path from 2 to 1"):
        choice_sets(replace(case, od=(OdDemand(2, 1, 10.0),)))
    with pytest.raises(TransportInputError, match=r"OD pair \(1,99\): destination node 99 is not a node"):
        replace(case, od=(OdDemand(1, 99, 10.0),))


def test_loading_conserves_vehicles_and_respects_plugs() -> None:
    case = _small(0.6)
    sets = choice_sets(case)
    veh = make_vehicles(case)
    a = shortest_path_assignment(case, sets, veh, np.zeros((4, case.n_periods)))
    ld = a.loading
    assert ld.departed == veh.n == ld.arrived
    assert np.all(np.isfinite(ld.arrival_min)) and np.all(ld.arrival_min >= ld.departure_min)
    ev = veh.kind >= 0
    assert np.all(np.isfinite(ld.station_arrival_min[ev])) and np.all(np.isnan(ld.station_arrival_min[~ev]))
    assert np.all(ld.station_arrival_min[ev] <= ld.plug_start_min[ev])
    assert np.all(ld.plug_start_min[ev] < ld.plug_end_min[ev])
    assert np.all(ld.plug_end_min[ev] <= ld.arrival_min[ev])
    # every traversal of a link lasts at least its free-flow time, and the link counts add up to the routes
    for k, e in enumerate(ld.link_entry):
        assert np.all(e[:, 1] - e[:, 0] >= case.network.free_flow_min[k] - 1e-9)
    n_links_routed = sum(len([x for x in veh.routes_of(sets, v)[0].arcs if x < sets.n_links]) for v in range(veh.n))
    assert sum(e.shape[0] for e in ld.link_entry) == n_links_routed
    # never more EVs plugged in at a station than it has plugs
    st = TransportOperator(case).station_of(a)
    for s, station in enumerate(case.stations):
        mine = np.flatnonzero(st == s)
        for t in ld.plug_start_min[mine]:
            plugged = np.sum((ld.plug_start_min[mine] <= t) & (ld.plug_end_min[mine] > t))
            assert plugged <= station.plugs


def test_equilibrium_gap_falls_and_spreads_stations() -> None:
    case = _small(1.0)
    sets = choice_sets(case)
    veh = make_vehicles(case)
    price = np.full((4, case.n_periods), 50.0)
    sp = shortest_path_assignment(case, sets, veh, price)
    eq = equilibrate(case, sets, veh, price, max_iter=15)
    assert eq.gap < 0.5 * sp.gap
    assert eq.cost_usd.sum() < sp.cost_usd.sum()
    tno = TransportOperator(case)
    used_sp = np.unique(tno.station_of(sp)[veh.kind >= 0])
    used_eq = np.unique(tno.station_of(eq)[veh.kind >= 0])
    assert used_eq.size > used_sp.size


def test_station_prices_shape_refused() -> None:
    tno = TransportOperator(_small(0.2))
    with pytest.raises(TransportInputError, match=r"station prices: shape \(3, 48\), expected \(4, 48\)"):
        tno.respond(np.zeros((3, 48)))


def test_zonotope_clusters_validate_and_are_dpp() -> None:
    g = shift_generators(24, (1, 2))
    with pytest.raises(FeederInputError, match=r"EV zonotope of station 1: beta_mw\[3\]=-1.0"):
        beta = np.zeros((2, g.shape[1]))
        beta[1, 3] = -1.0
        ZonotopeClusters(np.array([17, 32]), g, np.zeros((2, 24)), beta)
    data, inputs = coupling_feeder(np.array([18, 33, 25, 22]), g)
    assert inputs.n_periods == 24
    with pytest.raises(FeederInputError, match=r"p_import_min_mw=1.0 > p_import_max_mw=0.5"):
        replace(inputs, p_import_min_mw=1.0, p_import_max_mw=0.5)
    with pytest.raises(FeederInputError, match=r"load_shed_usd_per_mwh=-1.0"):
        replace(inputs, load_shed_usd_per_mwh=-1.0)
    # no wind: 0.6 MW import + 0.6 MW MT + the PV behind its weak lateral cannot carry the load, some is shed
    inputs = replace(inputs, wind_avail_mw=np.zeros_like(inputs.wind_avail_mw))
    prob = DsoProblem(data, inputs)
    assert prob.problem.is_dpp()
    sol = prob.solve(price_usd_per_mwh=np.full(24, 50.0))
    d = sol.dispatch
    dt = inputs.dt_h
    # the import limit holds; shed never exceeds the load
    assert inputs.p_import_max_mw is not None
    assert np.max(d.p_import_mw) <= inputs.p_import_max_mw + 1e-6
    assert np.all(d.load_shed_mw <= inputs.p_load_mw + 1e-6)
    # power balance over the feeder [MW]: import + generation = load - shed + losses (no EVs here)
    gen = d.wind_p_mw.sum(axis=0) + d.pv_p_mw.sum(axis=0) + d.mt_p_mw.sum(axis=0)
    np.testing.assert_allclose(d.p_import_mw + gen, (inputs.p_load_mw - d.load_shed_mw).sum(axis=0) + d.loss_mw,
                               atol=1e-4)
    assert d.soc_gap_mva2 < 1e-4
    assert float(d.load_shed_mw.sum() * dt) > 0.01
    assert d.cost_usd["load_shed"] > 0.0


def test_loop_converges_and_meets_every_ev_need() -> None:
    from orchestrator.studies.transport_coupling import run_scenario, scenario_metrics

    tno, inputs, r = run_scenario("coordinated", demand_scale=0.2, charging_share=0.2, max_rounds=12,
                                   tno_max_iter=8, horizon_min=120.0, departure_end_min=45.0)
    m = scenario_metrics(tno, inputs, r)
    assert r.converged and m["loop_iterations"] <= 12
    assert r.rounds[-1].price_change_usd_per_mwh <= 5.0 and r.rounds[-1].arrival_change <= 0.02
    assert m["vehicles_departed"] == m["vehicles_arrived"] > 0
    assert len(r.evs) == m["charging_evs"] > 0
    # each EV's disaggregated schedule (V2G clusters: charging p+ and discharging p-): within its limits (the
    # two share a period), nothing outside its plug-in window, stored energy inside [soc_min, capacity], need met
    p_dis = r.ev_discharge_kw
    assert p_dis is not None
    p_ch = r.ev_kw + p_dis
    lim = np.array([[e.p_charge_kw, max(e.p_discharge_kw, 1e-12)] for e in r.evs])
    assert np.all(p_ch >= -1e-6) and np.all(p_dis >= -1e-6)
    assert np.all(p_ch / lim[:, :1] + p_dis / lim[:, 1:] <= 1 + 1e-6)
    v2g = np.array([e.p_discharge_kw > 0 for e in r.evs])
    assert v2g.any() and np.all(p_dis[~v2g] == 0.0)
    dt = inputs.dt_h
    for i, e in enumerate(r.evs):
        window = np.zeros(r.ev_kw.shape[1], dtype=bool)
        window[int(np.ceil(e.arrival_h / dt - 1e-9)):int(np.floor(e.departure_h / dt + 1e-9))] = True
        assert np.all(p_ch[i, ~window] == 0.0) and np.all(p_dis[i, ~window] == 0.0), e.ev_id
        soc = e.soc_arrival_kwh + np.cumsum(e.efficiency * p_ch[i] - p_dis[i] / e.efficiency) * dt
        assert soc.min() >= e.soc_min_kwh - 1e-6 and soc.max() <= e.capacity_kwh + 1e-6, e.ev_id
        assert abs(soc[-1] - e.soc_arrival_kwh - e.energy_need_kwh) <= 1e-6, e.ev_id
    assert float(r.ev_unmet_kwh.max()) <= 1e-6
    np.testing.assert_allclose(r.ev_kw.sum(axis=0) / 1000.0, r.dispatch.ev_zono_p_mw.sum(axis=0), atol=1e-6)
    assert sum(m["station_arrivals"].values()) == m["charging_evs"]


def test_study_writes_the_contract(tmp_path: Path) -> None:
    from orchestrator.cli.main import main

    out = tmp_path / "tc"
    assert main(["study", "transport-coupling", "--out", str(out), "--demand-scale", "0.2", "--charging-share", "0.2",
                 "--horizon-min", "120", "--departure-end-min", "40", "--tno-max-iter", "3", "--max-rounds", "3",
                 "--no-plots"]) == 0
    doc = json.loads((out / "study.json").read_text())
    assert doc["study"] == "transport-coupling" and set(doc["scenarios"]) == {"shortest_path", "coordinated"}
    sp, co = doc["scenarios"]["shortest_path"], doc["scenarios"]["coordinated"]
    for m in ("renewable_consumption_mwh", "renewable_consumption_share", "load_shed_mwh", "load_supplied_mwh",
              "travel_cost_usd", "mean_travel_time_min", "max_link_vc", "station_arrivals", "wind_absorbed_share",
              "pv_absorbed_share", "vehicles_departed", "vehicles_arrived", "loop_iterations", "equilibrium_gap"):
        assert m in sp and m in co, m
    assert sp["loop_iterations"] == 1 and sp["equilibrium_gap"] > co["equilibrium_gap"]
    assert sp["vehicles_departed"] == sp["vehicles_arrived"] and co["vehicles_departed"] == co["vehicles_arrived"]
    assert "| renewable_consumption_change_vs_shortest_path |" in (out / "table.md").read_text()
    for name in ("shortest_path", "coordinated"):
        assert (out / name / "summary.json").is_file() and (out / name / "timeseries" / "links.csv").is_file()


def test_five_minute_profiles_hold_their_quarter_hour() -> None:
    from core.profiles import profile

    q = profile("wind_wp4", 0.25)
    np.testing.assert_array_equal(profile("wind_wp4", 1.0 / 12.0), np.repeat(q, 3))
