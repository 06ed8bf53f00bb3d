"""Inner zonotope with a shared generator matrix: per-EV containment, exact sum, closed-form disaggregation."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.fleet import EV, FleetError, Station, synthetic_fleet
from aggregator.flex import exact_flexibility
from aggregator.schedule import build_price_response, solve_price_response
from aggregator.zonotope import (
    ZonotopeFlexibility,
    disaggregate_zonotope,
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
