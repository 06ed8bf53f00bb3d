"""EV fleet data: validation messages, window discretisation, synthetic fleet."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

from aggregator.fleet import EV, FleetError, Station, plug_in_window, synthetic_fleet, validate_fleet

STATIONS = [Station("cs-a", 5, 800.0), Station("cs-b", 18, 800.0), Station("cs-c", 30, 400.0)]


def _ev(**kw: object) -> EV:
    base: dict[str, Any] = dict(
        ev_id="ev-0412",
        arrival_h=18.0,
        departure_h=7.0,
        energy_need_kwh=20.0,
        capacity_kwh=50.0,
        soc_arrival_kwh=10.0,
        p_charge_kw=7.0,
        p_discharge_kw=0.0,
        efficiency=0.95,
        station="cs-a",
    )
    base.update(kw)
    return EV(**base)


def test_valid_ev_passes() -> None:
    validate_fleet([_ev(), _ev(ev_id="ev-2", arrival_h=8.5, departure_h=17.0)], STATIONS, 1.0, 24)


@pytest.mark.parametrize(
    ("arrival", "departure", "start", "dwell"),
    [
        (18.0, 7.0, 18, 13),  # wraps midnight, on period edges
        (22.5, 6.0, 23, 7),  # 23, 0..5
        (8.2, 17.9, 9, 8),  # 9..16
        (0.0, 24.0, 0, 24),  # whole day
        (10.2, 10.9, 11, 0),  # inside one period: nothing fully covered
    ],
)
def test_plug_in_window(arrival: float, departure: float, start: int, dwell: int) -> None:
    s, d = plug_in_window(np.array([arrival]), np.array([departure]), 1.0, 24)
    assert (int(s[0]), int(d[0])) == (start, dwell)


def test_plug_in_window_quarter_hours() -> None:
    s, d = plug_in_window(np.array([17.6]), np.array([8.9]), 0.25, 96)
    assert int(s[0]) == 71 and int(d[0]) == (35 - 71) % 96  # [17.75, 8.75) -> periods 71..95, 0..34


def _msg(ev: EV, stations: list[Station] = STATIONS) -> str:
    with pytest.raises(FleetError) as info:
        validate_fleet([_ev(ev_id="ok-1"), ev], stations, 1.0, 24)
    return str(info.value)


def test_dwell_below_one_period_names_ev_and_field() -> None:
    msg = _msg(_ev(arrival_h=10.2, departure_h=10.9))
    assert "EV 'ev-0412'" in msg and "departure_h=10.9" in msg and "dwell < 1 period" in msg


def test_negative_energy_named() -> None:
    msg = _msg(_ev(energy_need_kwh=-3.0))
    assert "EV 'ev-0412'" in msg and "energy_need_kwh=-3.0" in msg


def test_unknown_station_named() -> None:
    msg = _msg(_ev(station="cs-zz"))
    assert "EV 'ev-0412'" in msg and "'cs-zz'" in msg and "station" in msg


@pytest.mark.parametrize("field", ["arrival_h", "energy_need_kwh", "p_charge_kw", "efficiency"])
def test_nan_and_inf_named(field: str) -> None:
    for bad in (math.nan, math.inf):
        msg = _msg(_ev(**{field: bad}))
        assert "EV 'ev-0412'" in msg and field in msg and "not finite" in msg


def test_need_above_charger_times_dwell() -> None:
    # 18:00 -> 21:00 is 3 periods: 0.95 * 7 kW * 3 h = 19.95 kWh < 20 kWh
    msg = _msg(_ev(departure_h=21.0))
    assert "EV 'ev-0412'" in msg and "energy need cannot be met in its plug-in window" in msg
    validate_fleet([_ev(departure_h=21.0, energy_need_kwh=19.9)], STATIONS, 1.0, 24)


def test_capacity_and_other_fields() -> None:
    assert "exceeds capacity_kwh" in _msg(_ev(soc_arrival_kwh=35.0))
    assert "efficiency=1.2" in _msg(_ev(efficiency=1.2))
    assert "p_discharge_kw=-1.0" in _msg(_ev(p_discharge_kw=-1.0))
    assert "arrival_h=24.0" in _msg(_ev(arrival_h=24.0))
    assert "soc_min_kwh=12.0" in _msg(_ev(soc_min_kwh=12.0))
    assert "duplicate ev_id" in _msg(_ev(ev_id="ok-1"))
    with pytest.raises(FleetError, match="station 'cs-x': node=0"):
        validate_fleet([], [Station("cs-x", 0, 10.0)], 1.0, 24)


def test_synthetic_fleet_reproducible_and_valid() -> None:
    a = synthetic_fleet(500, STATIONS, seed=1)
    b = synthetic_fleet(500, STATIONS, seed=1)
    c = synthetic_fleet(500, STATIONS, seed=2)
    assert a == b
    assert a != c
    validate_fleet(a, STATIONS, 1.0, 24)
    validate_fleet(synthetic_fleet(300, STATIONS, seed=3, dt_h=0.25, n_periods=96), STATIONS, 0.25, 96)
    need = np.array([ev.energy_need_kwh for ev in a])
    arrival = np.array([ev.arrival_h for ev in a])
    v2g = np.array([ev.p_discharge_kw > 0 for ev in a])
    assert len({ev.ev_id for ev in a}) == 500
    assert 0.2 < v2g.mean() < 0.4  # v2g_share = 0.3
    assert 5.0 < need.mean() < 15.0  # lognormal(3.2, 0.88) miles * 0.32 kWh/mile ~ 11.7 kWh, clipped
    evening = (arrival >= 14.0) & (arrival < 21.0)
    assert evening.mean() > 0.6  # N(17.6, 3.4): P(14 <= a < 21) ~ 0.69
    counts = np.array([sum(ev.station == s.station_id for ev in a) for s in STATIONS])
    assert counts[2] < counts[0] and counts[2] < counts[1]  # weighted by p_max_kw (2:2:1)


def test_synthetic_no_v2g() -> None:
    evs = synthetic_fleet(50, STATIONS, seed=5, v2g_share=0.0)
    assert all(ev.p_discharge_kw == 0.0 for ev in evs)
    with pytest.raises(FleetError, match="v2g_share"):
        synthetic_fleet(5, STATIONS, seed=5, v2g_share=1.5)


def test_ev_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        _ev().arrival_h = 3.0  # type: ignore[misc]  # assigning to a frozen field is the point of the test
