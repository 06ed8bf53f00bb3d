"""Inner zonotope with a shared generator matrix: per-EV containment, exact sum, closed-form disaggregation."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.fleet import EV, FleetError, Station, fleet_arrays, synthetic_fleet
from aggregator.flex import exact_flexibility
from aggregator.schedule import build_price_response, solve_price_response
from aggregator.zonotope import (
    ZonotopeFlexibility,
    disaggregate_zonotope,
    disaggregate_zonotope_split,
    fit_zonotopes,
    zonotope_coordinates,
)
from orchestrator.bench.aggregator import zonotope_min_cost_usd
from tests.helpers.fleets import check_per_ev

T = 24
STATIONS = [Station("cs-a", 5, 800.0), Station("cs-b", 18, 800.0), Station("cs-c", 30, 800.0)]


@pytest.fixture(scope="module")
def fleet() -> list[EV]:
    return synthetic_fleet(500, STATIONS, seed=1)


@pytest.fixture(scope="module")
def zono(fleet: list[EV]) -> ZonotopeFlexibility:
    return fit_zonotopes(fleet, STATIONS)


@pytest.mark.parametrize("kind", ["vertices", "random"])
def test_every_point_disaggregates_per_ev(fleet: list[EV], zono: ZonotopeFlexibility, kind: str) -> None:
    rng = np.random.default_rng(3)
    shape = zono.beta_mw.shape
    xi = rng.choice([-1.0, 1.0], shape) if kind == "vertices" else rng.uniform(-1, 1, shape)
    p_kw = disaggregate_zonotope(zono, xi)
    check_per_ev(fleet, p_kw, np.zeros_like(p_kw))
    # the per-EV schedules add up exactly to the aggregate point, per station
    station = np.array([[s.station_id for s in STATIONS].index(ev.station) for ev in fleet])
    by_station = np.zeros((3, T))
    np.add.at(by_station, station, p_kw / 1e3)
    np.testing.assert_allclose(by_station, zono.profile_mw(xi), atol=1e-9)


def test_template_fit_close_to_per_ev_lp(fleet: list[EV], zono: ZonotopeFlexibility) -> None:
    small = fleet[:120]
    per_ev = fit_zonotopes(small, STATIONS, method="per_ev")
    tmpl = fit_zonotopes(small, STATIONS)
    check_per_ev(small, disaggregate_zonotope(per_ev, np.ones(per_ev.n_generators)), np.zeros((120, T)))
    # the per-EV LP is optimal for sum(beta); the interpolated templates lose little of it
    assert tmpl.ev_beta_kw.sum() <= per_ev.ev_beta_kw.sum() * (1 + 1e-6)
    assert tmpl.ev_beta_kw.sum() >= 0.95 * per_ev.ev_beta_kw.sum()


def test_zonotope_inside_exact_and_nontrivial(fleet: list[EV], zono: ZonotopeFlexibility) -> None:
    rng = np.random.default_rng(5)
    price = 60 + 30 * np.sin(np.arange(T) / 3) + rng.normal(0, 10, T)
    v1g = [ev for ev in fleet if ev.p_discharge_kw == 0.0]
    z = fit_zonotopes(v1g, STATIONS)
    exact = solve_price_response(build_price_response(exact_flexibility(v1g, STATIONS), 1.0, T), price)[2]
    zcost = zonotope_min_cost_usd(z, price)
    centre = float(price @ z.c_mw.sum(axis=0))
    assert exact <= zcost + 1e-6  # inner: never cheaper than the exact fleet
    assert zcost < centre - 1.0  # and it has real flexibility


def test_outside_point_refused(zono: ZonotopeFlexibility) -> None:
    with pytest.raises(FleetError, match="outside the zonotope"):
        disaggregate_zonotope(zono, np.full(zono.beta_mw.shape, 1.5))
    xi = np.random.default_rng(1).uniform(-1, 1, zono.beta_mw.shape)
    back = zonotope_coordinates(zono, zono.profile_mw(xi))
    np.testing.assert_allclose(zono.profile_mw(back), zono.profile_mw(xi), atol=1e-6)
    bad = zono.profile_mw(xi)
    bad[0, 3] += 5.0  # 5 MW more at one station-hour breaks the energy total
    with pytest.raises(FleetError, match="cs-a.*outside its zonotope"):
        zonotope_coordinates(zono, bad)


def _lowest_mw(z: ZonotopeFlexibility) -> np.ndarray:
    """(S, T) the least station power each period can reach inside the zonotope (xi signs chosen per period)."""
    return z.c_mw - z.beta_mw @ np.abs(z.generators.T)


def test_v2g_zonotope_discharges_and_every_point_disaggregates(fleet: list[EV]) -> None:
    small = fleet[:60]
    z = fit_zonotopes(small, STATIONS, method="per_ev", v2g_efficiency=0.95)
    v2g = np.array([ev.p_discharge_kw > 0 for ev in small])
    p_max = np.array([[ev.p_charge_kw, max(ev.p_discharge_kw, 1e-12)] for ev in small])
    rng = np.random.default_rng(7)
    for xi in (rng.choice([-1.0, 1.0], z.beta_mw.shape), rng.uniform(-1, 1, z.beta_mw.shape)):
        p_ch, p_dis = disaggregate_zonotope_split(z, xi)
        check_per_ev(small, p_ch, p_dis)  # limits, window, SOC, need met exactly
        assert np.all(p_ch / p_max[:, :1] + p_dis / p_max[:, 1:] <= 1 + 1e-9)  # charge and discharge share a period
        assert np.all(p_dis[~v2g] == 0.0)
        station = np.array([[s.station_id for s in STATIONS].index(ev.station) for ev in small])
        by_station = np.zeros((3, T))
        np.add.at(by_station, station, (p_ch - p_dis) / 1e3)
        np.testing.assert_allclose(by_station, z.profile_mw(xi), atol=1e-9)
    # the clusters can now feed the grid, which the charging-only zonotope of the same EVs cannot
    assert _lowest_mw(fit_zonotopes(small, STATIONS, method="per_ev")).min() >= -1e-9
    assert _lowest_mw(z).min() < -0.01
    with pytest.raises(FleetError, match=r"EV '.*': efficiency 0.95 differs from the clusters' V2G efficiency 0.9"):
        fit_zonotopes(small, STATIONS, v2g_efficiency=0.9)
    # a short stay (7 five-minute periods for 20 kWh at 50 kW): the discharge scales come first, so it can still
    # feed the grid (-31.7 kW at best: the lexicographic fit's value)
    short = EV("short", arrival_h=1.0, departure_h=1.65, energy_need_kwh=20.0, capacity_kwh=60.0,
               soc_arrival_kwh=15.0, p_charge_kw=50.0, p_discharge_kw=50.0, efficiency=0.92, station="cs-a")
    zs = fit_zonotopes([short], STATIONS, dt_h=1 / 12, n_periods=96, shifts=(1, 2, 4, 8), method="per_ev",
                       v2g_efficiency=0.92)
    assert _lowest_mw(zs).min() * 1e3 == pytest.approx(-31.72, abs=0.01)


def test_v2g_template_fit_disaggregates_and_keeps_the_per_ev_discharge(fleet: list[EV]) -> None:
    """The V2G templates (interpolated unit fits) give every EV a zonotope inside its own lifted polytope, also at
    the grid's edges (no room above the departure energy, no depth below arrival, a floor deeper than any
    discharge) and between its points (a floor 1 kWh below arrival), and keep most of the per-EV LPs' discharge
    scales."""
    v2g = [ev for ev in fleet if ev.p_discharge_kw > 0]
    dwell = fleet_arrays(v2g, STATIONS, 1.0, T).dwell
    short = np.flatnonzero(np.isin(dwell, (9, 10)))[:24]  # two dwells: the unit fits take ~1 s per dwell
    small = [v2g[i] for i in short]
    base = small[0]
    full = EV("full", arrival_h=base.arrival_h, departure_h=base.departure_h, energy_need_kwh=base.energy_need_kwh,
              capacity_kwh=base.soc_arrival_kwh + base.energy_need_kwh, soc_arrival_kwh=base.soc_arrival_kwh,
              soc_min_kwh=base.soc_arrival_kwh, p_charge_kw=11.0, p_discharge_kw=11.0, efficiency=0.95,
              station="cs-b")
    deep = EV("deep", arrival_h=base.arrival_h, departure_h=base.departure_h, energy_need_kwh=1.0,
              capacity_kwh=200.0, soc_arrival_kwh=150.0, p_charge_kw=7.0, p_discharge_kw=7.0, efficiency=0.95,
              station="cs-c")
    shallow = EV("shallow", arrival_h=base.arrival_h, departure_h=base.departure_h, energy_need_kwh=10.0,
                 capacity_kwh=60.0, soc_arrival_kwh=20.0, soc_min_kwh=19.0, p_charge_kw=7.0, p_discharge_kw=7.0,
                 efficiency=0.95, station="cs-a")
    small += [full, deep, shallow]
    z = fit_zonotopes(small, STATIONS, v2g_efficiency=0.95)
    per_ev = fit_zonotopes(small, STATIONS, method="per_ev", v2g_efficiency=0.95)
    p_max = np.array([[ev.p_charge_kw, ev.p_discharge_kw] for ev in small])
    rng = np.random.default_rng(11)
    for xi in (rng.choice([-1.0, 1.0], z.beta_mw.shape), rng.uniform(-1, 1, z.beta_mw.shape), np.ones(z.beta_mw.shape)):
        p_ch, p_dis = disaggregate_zonotope_split(z, xi)
        check_per_ev(small, p_ch, p_dis)
        assert np.all(p_ch / p_max[:, :1] + p_dis / p_max[:, 1:] <= 1 + 1e-9)
    m = z.ev_beta_kw.shape[1] // 3  # the V2G pairs are the last 2m columns
    kept, best = z.ev_beta_kw[:, m:].sum(), per_ev.ev_beta_kw[:, m:].sum()
    assert kept <= best * (1 + 1e-6)  # the per-EV LP maximises the discharge scales first
    assert kept >= 0.9 * best
    assert _lowest_mw(z).min() < -0.01


def test_10k_evs_fit_and_their_sum_is_the_fleets() -> None:
    """At 10,000 EVs the fit is the fleet's (its time is a benchmark figure: python -m orchestrator.bench.aggregator
    --n-timing 10000, not a test)."""
    evs = synthetic_fleet(10_000, STATIONS, seed=2)
    z = fit_zonotopes(evs, STATIONS)
    assert z.ev_c_kw.shape[0] == z.ev_beta_kw.shape[0] == len(evs)
    for k in range(len(z.station_id)):  # each station's zonotope is the exact sum of its EVs'
        at = z.ev_station == k
        np.testing.assert_allclose(z.c_mw[k], z.ev_c_kw[at].sum(axis=0) / 1e3, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(z.beta_mw[k], z.ev_beta_kw[at].sum(axis=0) / 1e3, rtol=1e-9, atol=1e-9)
