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


def test_journal_keeps_confirmed_reservations_across_a_restart(tmp_path) -> None:
    """What a book confirmed is on disk: a new book (a restarted service) holds it, replays retries of it,
    and a closed book stays closed with the same fleet; a journal of another aggregator is refused."""
    import pytest

    from aggregator.fleet import FleetError
    from aggregator.journal import ReservationJournal

    fleet = [_ev(100, arr=8, dep=17, e=4.0)]  # the case's own EVs (preloaded)
    path = tmp_path / "agg.reservations.sqlite"

    def book() -> ReservationBook:
        b = ReservationBook(STATIONS, plugs={"cs-a": 2})
        b.preload(fleet)
        b.restore(ReservationJournal(path, "agg-x", fleet))
        return b

    first = book()
    accepted = first.submit(_ev(1))
    assert accepted == Accepted("r-1") and accepted.booking
    assert first.submit(_ev(2, st="cs-a", e=5.0)) == Accepted("r-2")
    assert first.submit(_ev(3, st="cs-a", e=5.0, arr=20.0, dep=6.0)) == Accepted("r-3")
    full = first.submit(_ev(4, st="cs-a", e=5.0, arr=19.0, dep=6.0))  # a third plug at cs-a: refused, not journaled
    assert isinstance(full, Refused) and full.code == "station_plugs"
    booked = [e.ev_id for e in first.fleet()]
    assert first.journal is not None
    first.journal.shutdown()  # the process dies (nothing else is flushed)

    second = book()  # restarted, book still open
    assert [e.ev_id for e in second.fleet()] == booked == ["r-100", "r-1", "r-2", "r-3"]
    assert second.n_restored == 3 and second.n_preloaded == 1
    retry = second.submit(_ev(1))  # a client retry after the crash: booked once, under the same token
    assert retry == Replayed("r-1") and retry.booking == accepted.booking
    assert second.submit(_ev(5, arr=9, dep=16, e=3.0)) == Accepted("r-5")
    closed_fleet = second.close()
    assert second.journal is not None
    second.journal.shutdown()

    third = book()  # restarted after the envelopes were sent: closed, same fleet, same envelopes
    assert third.closed and third.fleet() == closed_fleet
    assert isinstance(third.submit(_ev(6)), Refused)
    for name in ("e_min_mwh", "e_max_mwh", "p_ch_max_mw", "start", "dwell"):
        np.testing.assert_array_equal(getattr(third.flexibility(), name), getattr(second.flexibility(), name))
    assert third.journal is not None
    third.journal.shutdown()

    with pytest.raises(FleetError, match="agg.reservations.sqlite: written for operator_id 'agg-x'"):
        ReservationJournal(path, "agg-y", fleet)
    with pytest.raises(FleetError, match="written for fleet"):
        ReservationJournal(path, "agg-x", [_ev(101)])
