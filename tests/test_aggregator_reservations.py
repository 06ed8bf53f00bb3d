"""Reservations: accepted and scheduled, or refused with the reason; concurrent submits never over-book."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from aggregator.fleet import EV, Station
from aggregator.flex import disaggregate
from aggregator.reservations import Accepted, Refused, Replayed, ReservationBook
from aggregator.schedule import build_price_response, solve_price_response

STATIONS = [Station("cs-a", 5, 22.0), Station("cs-b", 18, 800.0)]


def _ev(i: int, arr: float = 18.0, dep: float = 7.0, e: float = 10.0, st: str = "cs-b", p: float = 7.0) -> EV:
    return EV(f"r-{i}", arr, dep, e, 60.0, 10.0, p, 0.0, 0.95, st)


def test_accept_and_schedule() -> None:
    book = ReservationBook(STATIONS)
    assert book.submit(_ev(1)) == Accepted("r-1")
    assert book.submit(_ev(2, arr=8, dep=17)) == Accepted("r-2")
    flex = book.flexibility()
    p_ch, p_dis, _ = solve_price_response(build_price_response(flex, 1.0, 24), np.linspace(80, 20, 24))
    d = disaggregate(list(book.fleet()), flex, p_ch, p_dis, stations=STATIONS)
    np.testing.assert_allclose(d.delivered_kwh, [10.0, 10.0], atol=1e-6)


def test_refusals_name_the_reason() -> None:
    book = ReservationBook(STATIONS, plugs={"cs-b": 1})
    cases = {
        "energy need cannot be met": _ev(1, arr=8, dep=10, e=30.0),
        "is not a known station": _ev(2, st="cs-z"),
        "not finite": _ev(3, arr=float("nan")),
        "covers no full": _ev(4, arr=8.2, dep=8.9),
    }
    for why, ev in cases.items():
        r = book.submit(ev)
        assert isinstance(r, Refused) and why in r.reason, (why, r)
    assert book.submit(_ev(5)) == Accepted("r-5")
    r = book.submit(_ev(6, arr=6.0, dep=9.0, e=5.0))  # overlaps r-5 in period 6, one plug
    assert isinstance(r, Refused) and "all 1 plugs taken in period 6" in r.reason
    assert book.submit(_ev(7, arr=9.0, dep=12.0, e=5.0)) == Accepted("r-7")  # no overlap
    assert book.submit(_ev(5)) == Replayed("r-5")  # a retry of the same reservation: booked once
    r = book.submit(_ev(5, e=11.0))  # same id, other data
    assert isinstance(r, Refused) and "already accepted" in r.reason and r.code == "duplicate_id"
    assert [e.ev_id for e in book.fleet()] == ["r-5", "r-7"]
    book.close()
    r = book.submit(_ev(8, arr=13.0, dep=15.0, e=5.0))
    assert isinstance(r, Refused) and r.code == "closed"


def test_station_power_limit_and_concurrency() -> None:
    # cs-a: 22 kW; each EV needs 6.65 kWh stored in 1 h windows -> 7 kW: three fit, a fourth does not
    book = ReservationBook(STATIONS)
    evs = [_ev(i, arr=10.0, dep=11.0, e=6.65, st="cs-a") for i in range(12)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(book.submit, evs))
    accepted = [r for r in results if isinstance(r, Accepted)]
    refused = [r for r in results if isinstance(r, Refused)]
    assert len(accepted) == 3 and len(book.fleet()) == 3
    assert all("p_max_kw=22 cannot serve" in r.reason for r in refused)
