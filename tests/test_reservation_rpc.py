"""Amend and Cancel over real gRPC: an owner changes or withdraws a booking before the book closes, refused
after it closes (reason_code "closed"), retries answered as replays (also after a restart from the journal),
and the dispatched schedules meet the amended reservations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from aggregator.fleet import EV, Station
from aggregator.service import AggregatorServicer
from core import convert
from core.rpc import start_server
from gridcoord.v1 import aggregator_pb2, aggregator_pb2_grpc, common_pb2
from orchestrator.bench.reservations import envelope_dispatch

STATIONS = [Station("s1", 2, 10.0), Station("s2", 5, 12.0)]
#: s1 (10 kW) over 08:00-12:00 gives 40 kWh in all (efficiency 1)
BASE: dict[str, Any] = dict(arrival_h=8.0, departure_h=12.0, capacity_kwh=80.0, soc_arrival_kwh=10.0,
                            p_charge_kw=10.0, p_discharge_kw=0.0, efficiency=1.0, station="s1")
#: a case EV preloaded at s2 (not a reservation), which its owner may change too
CASE_EV = EV(ev_id="case-1", arrival_h=18.0, departure_h=7.0, energy_need_kwh=20.0, capacity_kwh=60.0,
             soc_arrival_kwh=10.0, p_charge_kw=7.0, p_discharge_kw=0.0, efficiency=0.9, station="s2")


def _serve(journal: Path) -> tuple[Any, grpc.Channel, aggregator_pb2_grpc.AggregatorServiceStub]:
    servicer = AggregatorServicer("agg-x", [CASE_EV], STATIONS, 1.0, 24, journal_path=journal)
    served = start_server([servicer.register], ["gridcoord.v1.AggregatorService"], "127.0.0.1:0")
    served.set_serving(True)
    channel = grpc.insecure_channel(f"127.0.0.1:{served.port}")
    return served, channel, aggregator_pb2_grpc.AggregatorServiceStub(channel)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[aggregator_pb2_grpc.AggregatorServiceStub, Path]]:
    served, channel, stub = _serve(tmp_path / "journal.sqlite")
    yield stub, tmp_path / "journal.sqlite"
    channel.close()
    served.stop(0)


def _req(ev_id: str, need_kwh: float, **change: Any) -> aggregator_pb2.ReservationRequest:
    return aggregator_pb2.ReservationRequest(ev_id=ev_id, energy_need_kwh=need_kwh, **(BASE | change))


def _book(stub: aggregator_pb2_grpc.AggregatorServiceStub) -> dict[str, float]:
    listed = stub.ListReservations(aggregator_pb2.ListReservationsRequest(key=common_pb2.RunKey(run_id="audit",
                                                                                                round=1)), timeout=10)
    return {e.ev_id: e.energy_need_kwh for e in listed.evs}


def test_amend_and_cancel_over_grpc_before_the_book_closes(service) -> None:
    stub, _ = service
    assert stub.Reserve(_req("a", 30.0), timeout=10).accepted and stub.Reserve(_req("b", 10.0), timeout=10).accepted
    r = stub.Amend(_req("b", 15.0), timeout=10)  # 45 kWh > 40 kWh: the old booking stands
    assert not r.accepted and r.reason_code == "station_power" and "old one stays booked" in r.reason
    assert _book(stub) == {"case-1": 20.0, "a": 30.0, "b": 10.0}
    assert stub.Amend(_req("a", 20.0), timeout=10).accepted
    again = stub.Amend(_req("a", 20.0), timeout=10)  # a retry whose first answer was lost: booked once
    assert again.accepted and again.replay
    assert stub.Amend(_req("b", 15.0), timeout=10).accepted  # the 10 kWh freed by a's amendment
    bad = stub.Amend(_req("b", 5.0, departure_h=float("nan")), timeout=10)
    assert not bad.accepted and bad.reason_code == "invalid" and "departure_h=nan" in bad.reason
    assert not stub.Amend(_req("zz", 5.0), timeout=10).accepted
    assert stub.Amend(_req("zz", 5.0), timeout=10).reason_code == "unknown_id"
    c = stub.Cancel(aggregator_pb2.CancelRequest(ev_id="b"), timeout=10)
    assert c.cancelled and not c.replay
    c = stub.Cancel(aggregator_pb2.CancelRequest(ev_id="b"), timeout=10)
    assert c.cancelled and c.replay  # a retry: nothing changed
    unknown = stub.Cancel(aggregator_pb2.CancelRequest(ev_id="nobody"), timeout=10)
    assert not unknown.cancelled and unknown.reason_code == "unknown_id" and "'nobody'" in unknown.reason
    assert stub.Cancel(aggregator_pb2.CancelRequest(ev_id="case-1"), timeout=10).cancelled
    assert _book(stub) == {"a": 20.0}
    assert stub.Reserve(_req("b", 20.0), timeout=10).accepted  # b books again after its cancellation
    assert _book(stub) == {"a": 20.0, "b": 20.0}
    with pytest.raises(grpc.RpcError) as err:
        stub.Cancel(aggregator_pb2.CancelRequest(ev_id=""), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "ev_id: required" in str(err.value.details())
    with pytest.raises(grpc.RpcError) as err:
        stub.Amend(_req("a", 20.0, station=""), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "station: required" in str(err.value.details())


def test_after_the_book_closes_changes_are_refused_and_retries_are_replays(service) -> None:
    stub, journal = service
    assert stub.Reserve(_req("a", 30.0), timeout=10).accepted and stub.Reserve(_req("b", 10.0), timeout=10).accepted
    assert stub.Amend(_req("a", 25.0, arrival_h=7.0), timeout=10).accepted
    assert stub.Cancel(aggregator_pb2.CancelRequest(ev_id="b"), timeout=10).cancelled
    assert stub.Amend(_req("case-1", 25.0, **{k: getattr(CASE_EV, k) for k in BASE}), timeout=10).accepted
    envelope = stub.GetEnvelope(aggregator_pb2.EnvelopeRequest(key=common_pb2.RunKey(run_id="day", round=1)),
                                timeout=30)  # the book closes here
    for late in (stub.Amend(_req("a", 5.0), timeout=10), stub.Reserve(_req("c", 5.0), timeout=10)):
        assert not late.accepted and late.reason_code == "closed" and "envelopes were already sent" in late.reason
    late_cancel = stub.Cancel(aggregator_pb2.CancelRequest(ev_id="a"), timeout=10)
    assert not late_cancel.cancelled and late_cancel.reason_code == "closed"
    # retries of changes applied before the close are replays, not refusals
    assert stub.Amend(_req("a", 25.0, arrival_h=7.0), timeout=10).replay
    assert stub.Cancel(aggregator_pb2.CancelRequest(ev_id="b"), timeout=10).replay
    retry = stub.Reserve(_req("a", 25.0, arrival_h=7.0), timeout=10)  # "closed" would say a is not booked
    assert retry.accepted and retry.replay
    assert _book(stub) == {"a": 25.0, "case-1": 25.0}
    # the dispatch of the closed book meets each amended reservation inside its window
    env = convert.envelope_from_proto(envelope)
    p_ch, p_dis, share = envelope_dispatch(env, 1.0, 24)
    out = stub.Dispatch(aggregator_pb2.DispatchRequest(key=common_pb2.RunKey(run_id="day", round=1),
                                                       p_ch_mw=p_ch.tolist(), p_dis_mw=p_dis.tolist(),
                                                       alloc_share=share.tolist()), timeout=60)
    delivered = {o.ev_id: (o.delivered_kwh, o.need_kwh) for o in out.evs}
    assert set(delivered) == {"a", "case-1"}
    assert all(d >= n - 1e-3 for d, n in delivered.values()) and delivered["a"][1] == 25.0
    assert out.outside_window_kwh <= 1e-3


def test_a_restarted_service_keeps_amendments_cancellations_and_replays(tmp_path: Path) -> None:
    served, channel, stub = _serve(tmp_path / "journal.sqlite")
    try:
        assert stub.Reserve(_req("a", 30.0), timeout=10).accepted
        assert stub.Amend(_req("a", 12.0), timeout=10).accepted
        assert stub.Cancel(aggregator_pb2.CancelRequest(ev_id="case-1"), timeout=10).cancelled
        assert stub.Reserve(_req("b", 5.0), timeout=10).accepted
        assert stub.Cancel(aggregator_pb2.CancelRequest(ev_id="b"), timeout=10).cancelled
    finally:
        channel.close()
        served.stop(0)
    served, channel, stub = _serve(tmp_path / "journal.sqlite")  # same journal, the case fleet preloaded again
    try:
        assert _book(stub) == {"a": 12.0}  # the cancelled case EV stays cancelled
        for ev_id in ("case-1", "b"):
            c = stub.Cancel(aggregator_pb2.CancelRequest(ev_id=ev_id), timeout=10)
            assert c.cancelled and c.replay, ev_id
        assert stub.Amend(_req("a", 12.0), timeout=10).replay
        assert stub.Reserve(_req("b", 7.0), timeout=10).accepted
        c = stub.Cancel(aggregator_pb2.CancelRequest(ev_id="b"), timeout=10)
        assert c.cancelled and not c.replay  # booked again since: a new cancellation
    finally:
        channel.close()
        served.stop(0)


def _key(run_id: str) -> common_pb2.RunKey:
    return common_pb2.RunKey(run_id=run_id, round=1)


def test_a_restarted_service_keeps_the_tariff_and_the_last_rebooking(tmp_path: Path) -> None:
    """The published tariff and the last re-booking (no-shows, late arrivals) are journaled before they are
    answered: after a restart, confirmations still show the tariff, and the re-dispatch settles against the
    same re-booked fleet (before, the restarted service refused it: no Redispatch yet)."""
    level = ["valley"] * 7 + ["flat"] * 10 + ["peak"] * 4 + ["flat"] * 3
    tariff = aggregator_pb2.TouTariff(key=_key("tariff"), level=level, peak_usd_per_mwh=90.0,
                                      flat_usd_per_mwh=60.0, valley_usd_per_mwh=30.0)
    served, channel, stub = _serve(tmp_path / "journal.sqlite")
    try:
        assert stub.PublishTariff(tariff, timeout=10).n_periods == 24
        first = stub.Reserve(_req("a", 30.0), timeout=10)
        assert first.accepted and list(first.tou_level) == level
        assert stub.Reserve(_req("b", 10.0, arrival_h=13.0, departure_h=17.0), timeout=10).accepted
        env = convert.envelope_from_proto(stub.GetEnvelope(aggregator_pb2.EnvelopeRequest(key=_key("day")),
                                                           timeout=30))
        p_ch, p_dis, _ = envelope_dispatch(env, 1.0, 24)
        rebooked = stub.Redispatch(aggregator_pb2.RebookRequest(
            key=_key("re"), t_from=6, no_show=["b"], late_arrival_h={"a": 9.0}, p_ch_mw=p_ch.tolist(),
            p_dis_mw=p_dis.tolist()), timeout=30)
        assert rebooked.n_evs == 2  # case-1 and a (late); b did not come
        re_env = convert.envelope_from_proto(rebooked.envelope)
        re_ch, re_dis, _ = envelope_dispatch(re_env, 1.0, 24)
        settle = aggregator_pb2.DispatchRequest(key=_key("settle"), p_ch_mw=re_ch.tolist(), p_dis_mw=re_dis.tolist(),
                                                redispatched=True)
        before = stub.Dispatch(settle, timeout=60)
    finally:
        channel.close()
        served.stop(0)
    served, channel, stub = _serve(tmp_path / "journal.sqlite")
    try:
        replay = stub.Reserve(_req("a", 30.0), timeout=10)  # a retry of a confirmed booking: the same answer
        assert replay.accepted and replay.replay and list(replay.tou_level) == level
        assert list(replay.tou_price_usd_per_mwh) == list(first.tou_price_usd_per_mwh)
        settle.key.CopyFrom(_key("settle-after-restart"))
        after = stub.Dispatch(settle, timeout=60)
        assert [(e.ev_id, e.need_kwh, e.delivered_kwh, e.unmet_kwh) for e in after.evs] == [
            (e.ev_id, e.need_kwh, e.delivered_kwh, e.unmet_kwh) for e in before.evs]
        assert {e.ev_id for e in after.evs} == {"case-1", "a"} and after.n_evs == before.n_evs == 2
        assert list(after.station_p_mw) == list(before.station_p_mw)
    finally:
        channel.close()
        served.stop(0)
