"""Flexibility envelopes: disaggregation guarantees, uncontrolled baseline, refusal, envelope ordering."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.fleet import EV, FleetError, Station, synthetic_fleet
from aggregator.flex import (
    FleetFlexibility,
    disaggregate,
    envelope_violation,
    exact_flexibility,
    inner_flexibility,
    outer_flexibility,
    station_power,
    uncontrolled_profile,
    uncontrolled_schedule_kw,
    window_periods,
)
from aggregator.schedule import build_price_response, solve_price_response
from tests.helpers.fleets import check_per_ev, plugged_mask

T = 24
DT_H = 1.0
STATIONS = [Station("cs-a", 5, 800.0), Station("cs-b", 18, 800.0), Station("cs-c", 30, 800.0)]


@pytest.fixture(scope="module")
def fleet() -> list[EV]:
    return synthetic_fleet(500, STATIONS, seed=1)


@pytest.fixture(scope="module")
def inner(fleet: list[EV]) -> FleetFlexibility:
    return inner_flexibility(fleet, STATIONS, DT_H, T)


def _random_price(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 60.0 + 40.0 * np.sin(2 * np.pi * (np.arange(T) - 14) / T) + rng.normal(0.0, 15.0, T)


def test_optimal_inner_profile_disaggregates(fleet: list[EV], inner: FleetFlexibility) -> None:
    model = build_price_response(inner, DT_H, T)
    assert model.problem.is_dpp()
    p_ch, p_dis, cost = solve_price_response(model, _random_price(11))
    d = disaggregate(fleet, inner, p_ch, p_dis, DT_H, T)
    check_per_ev(fleet, d.p_ch_kw, d.p_dis_kw)
    need = np.array([ev.energy_need_kwh for ev in fleet])
    assert np.max(np.abs(d.delivered_kwh - need)) <= 1e-6
    assert np.max(d.unmet_kwh) <= 1e-6
    # per-EV schedules add up to the group profile at each station
    by_station = np.zeros((3, T))
    for i, ev in enumerate(fleet):
        by_station[[s.station_id for s in STATIONS].index(ev.station)] += d.p_kw[i] / 1e3
    ids = [s.station_id for s in STATIONS]
    np.testing.assert_allclose(by_station, station_power(inner, p_ch, p_dis, T, ids), atol=1e-9)
    assert (d.p_dis_kw > 1e-3).any()  # the random price does make V2G EVs discharge


def test_interior_profile_disaggregates(fleet: list[EV], inner: FleetFlexibility) -> None:
    """A non-vertex point (convex combination of two optima) is inside the envelope and splits too."""
    model = build_price_response(inner, DT_H, T)
    a_ch, a_dis, _ = solve_price_response(model, _random_price(1))
    b_ch, b_dis, _ = solve_price_response(model, _random_price(2))
    p_ch, p_dis = 0.37 * a_ch + 0.63 * b_ch, 0.37 * a_dis + 0.63 * b_dis
    assert envelope_violation(inner, p_ch, p_dis, DT_H) <= 1e-9
    d = disaggregate(fleet, inner, p_ch, p_dis, DT_H, T)
    check_per_ev(fleet, d.p_ch_kw, d.p_dis_kw)
    # proportional sharing: inside an envelope each EV's power is share * group power
    j = int(np.argmax([m.size for m in inner.members]))
    members = inner.members[j]
    assert members.size >= 2
    ratio = d.p_ch_kw[members].sum(axis=1) / inner.share[members]
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-9)


def test_uncontrolled_meets_every_need(fleet: list[EV]) -> None:
    p_kw = uncontrolled_schedule_kw(fleet, STATIONS, DT_H, T)
    check_per_ev(fleet, p_kw, np.zeros_like(p_kw))
    for i, ev in enumerate(fleet):  # full power from the first plugged-in period, then one partial period
        first = int(np.ceil(ev.arrival_h - 1e-9)) % T
        window = p_kw[i, [(first + k) % T for k in range(int(plugged_mask(ev).sum()))]]
        assert np.all(np.diff(window) <= 1e-12), ev.ev_id
        assert np.sum((window > 1e-12) & (window < ev.p_charge_kw - 1e-9)) <= 1, ev.ev_id
    prof = uncontrolled_profile(fleet, STATIONS, DT_H, T)
    assert prof.shape == (3, T)
    need_grid_mwh = sum(ev.energy_need_kwh / ev.efficiency for ev in fleet) / 1e3
    assert abs(prof.sum() * DT_H - need_grid_mwh) <= 1e-9


def test_profile_outside_envelope_refused(fleet: list[EV], inner: FleetFlexibility) -> None:
    model = build_price_response(inner, DT_H, T)
    p_ch, p_dis, _ = solve_price_response(model, _random_price(3))
    over = p_ch.copy()
    k = int(np.argmax(inner.p_ch_max_mw))
    over[k] = inner.p_ch_max_mw[k] + 1e-4
    with pytest.raises(FleetError, match="p_ch_mw=.*outside bound.*refused"):
        disaggregate(fleet, inner, over, p_dis, DT_H, T)
    short = p_ch * 0.999  # every envelope ends short of its need
    with pytest.raises(FleetError, match="stored_gain_mwh.*refused"):
        disaggregate(fleet, inner, short, p_dis, DT_H, T)
    with pytest.raises(FleetError, match="p_dis_mw=-"):
        disaggregate(fleet, inner, p_ch, p_dis - 1e-3, DT_H, T)
    with pytest.raises(FleetError, match="entries"):
        disaggregate(fleet, inner, p_ch[:-1], p_dis[:-1], DT_H, T)
    # within the 1e-6 MW tolerance it is accepted
    ok = p_ch.copy()
    ok[k] = min(ok[k], inner.p_ch_max_mw[k]) + 5e-7
    disaggregate(fleet, inner, ok, p_dis, DT_H, T)


def test_envelope_ordering_exact_inner_outer(fleet: list[EV]) -> None:
    """inner subset of exact subset of outer => min cost: outer <= exact <= inner."""
    evs = fleet[:200]
    price = _random_price(7)
    costs = {}
    fns = (("exact", exact_flexibility), ("inner", inner_flexibility), ("outer", outer_flexibility))
    for name, fn in fns:
        flex = fn(evs, STATIONS, DT_H, T)
        costs[name] = solve_price_response(build_price_response(flex, DT_H, T), price)[2]
    assert costs["outer"] <= costs["exact"] + 1e-6 <= costs["inner"] + 2e-6


def test_exact_envelope_is_per_ev(fleet: list[EV]) -> None:
    evs = fleet[:40]
    flex = exact_flexibility(evs, STATIONS, DT_H, T)
    assert flex.n_envelopes == 40 and np.all(flex.share == 1.0)
    p_ch, p_dis, _ = solve_price_response(build_price_response(flex, DT_H, T), _random_price(5))
    d = disaggregate(evs, flex, p_ch, p_dis, DT_H, T)
    check_per_ev(evs, d.p_ch_kw, d.p_dis_kw)


def test_inner_envelope_hand_computed() -> None:
    """Two EVs in one group: bounds by hand. Window 20:00-24:00 (4 periods), eta = 1."""
    st = [Station("s", 7, 100.0)]
    a = EV("a", 20.0, 24.0, 8.0, 20.0, 10.0, 4.0, 2.0, 1.0, "s")  # need 8, upper gain 10, lower -10
    b = EV("b", 20.0, 24.0, 12.0, 40.0, 4.0, 6.0, 6.0, 1.0, "s")  # need 12, upper gain 36, lower -4
    flex = inner_flexibility([a, b], st, DT_H, T)
    assert flex.n_envelopes == 1 and int(flex.start[0]) == 20 and int(flex.dwell[0]) == 4
    assert flex.node.tolist() == [7] and flex.station_id == ("s",)
    np.testing.assert_allclose(flex.share, [0.4, 0.6])
    # E_g = 20 kWh; P_ch <= 20*min(4/8, 6/12) = 10 kW; P_dis <= 20*min(2/8, 6/12) = 5 kW
    np.testing.assert_allclose(flex.p_ch_max_mw * 1e3, [10.0] * 4)
    np.testing.assert_allclose(flex.p_dis_max_mw * 1e3, [5.0] * 4)
    # per-EV lo_k: a: max(-10, -2m, 8-4r); b: max(-4, -6m, 12-6r); r = 4-m
    lo_a = np.array([max(-10, -2 * m, 8 - 4 * (4 - m)) for m in range(1, 5)], float)
    lo_b = np.array([max(-4, -6 * m, 12 - 6 * (4 - m)) for m in range(1, 5)], float)
    hi_a = np.array([min(10, 4 * m, 8 + 2 * (4 - m)) for m in range(1, 5)], float)
    hi_b = np.array([min(36, 6 * m, 12 + 6 * (4 - m)) for m in range(1, 5)], float)
    np.testing.assert_allclose(flex.e_min_mwh * 1e3, 20 * np.maximum(lo_a / 8, lo_b / 12))
    np.testing.assert_allclose(flex.e_max_mwh * 1e3, 20 * np.minimum(hi_a / 8, hi_b / 12))
    assert flex.e_min_mwh[-1] == flex.e_max_mwh[-1] == pytest.approx(0.020)
    outer = outer_flexibility([a, b], st, DT_H, T)
    np.testing.assert_allclose(outer.p_ch_max_mw * 1e3, [10.0] * 4)
    np.testing.assert_allclose(outer.p_dis_max_mw * 1e3, [8.0] * 4)
    np.testing.assert_allclose(outer.e_min_mwh * 1e3, lo_a + lo_b)
    # in the outer (and in the exact Minkowski sum: a -2, b -4) but not the inner envelope
    p_dis = np.array([6.0, 0, 0, 0]) / 1e3
    p_ch = np.array([0.0, 10.0, 10.0, 6.0]) / 1e3
    assert envelope_violation(outer, p_ch, p_dis, DT_H) <= 1e-12
    with pytest.raises(FleetError):
        disaggregate([a, b], outer, p_ch, p_dis, DT_H, T)
    with pytest.raises(FleetError):
        disaggregate([a, b], flex, p_ch, p_dis, DT_H, T)


def test_window_periods_wrap(inner: FleetFlexibility) -> None:
    t = window_periods(inner, T)
    assert t.size == int(inner.dwell.sum()) and t.min() >= 0 and t.max() < T
    j = int(np.flatnonzero(inner.start + inner.dwell > T)[0])  # a window over midnight
    first = int(inner.dwell[:j].sum())
    last = first + int(inner.dwell[j]) - 1
    assert t[first] == inner.start[j] and t[last] == (inner.start[j] + inner.dwell[j] - 1) % T


def test_laxity_bins_split_groups_and_still_disaggregate(fleet: list[EV], inner: FleetFlexibility) -> None:
    fine = inner_flexibility(fleet, STATIONS, DT_H, T, laxity_bins=4)
    assert fine.n_envelopes > inner.n_envelopes
    p_ch, p_dis, cost_fine = solve_price_response(build_price_response(fine, DT_H, T), _random_price(9))
    cost = solve_price_response(build_price_response(inner, DT_H, T), _random_price(9))[2]
    assert cost_fine <= cost + 1e-6  # a finer partition keeps at least the coarse profiles
    d = disaggregate(fleet, fine, p_ch, p_dis, DT_H, T)
    check_per_ev(fleet, d.p_ch_kw, d.p_dis_kw)
    with pytest.raises(FleetError, match="laxity_bins=0"):
        inner_flexibility(fleet, STATIONS, DT_H, T, laxity_bins=0)


def test_station_limit_respected(fleet: list[EV], inner: FleetFlexibility) -> None:
    ids = [s.station_id for s in STATIONS]
    free = solve_price_response(build_price_response(inner, DT_H, T), _random_price(4))
    peak = np.abs(station_power(inner, free[0], free[1], T, ids)).max()
    limit = {s: 0.8 * peak for s in ids}
    model = build_price_response(inner, DT_H, T, station_limit_mw=limit)
    assert model.problem.is_dpp() and "station.limit" in model.constraints
    p_ch, p_dis, cost = solve_price_response(model, _random_price(4))
    assert np.abs(station_power(inner, p_ch, p_dis, T, ids)).max() <= 0.8 * peak + 1e-6
    assert cost >= free[2] - 1e-6
    d = disaggregate(fleet, inner, p_ch, p_dis, DT_H, T)
    check_per_ev(fleet, d.p_ch_kw, d.p_dis_kw)
