"""Time-of-use price publication: the DSO ranks the periods of its next-day forecast net load into thirds
(peak / flat / valley), publishes the tariff to its aggregator over gRPC (AggregatorLink.publish_tariff), and
every reservation confirmation shows it to the owner."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import grpc
import numpy as np
import pytest

from aggregator.fleet import Station
from aggregator.service import AggregatorServicer
from core.case import load_case
from core.rpc import start_server
from core.tariff import TariffError, TouTariff, tou_tariff
from dso.inputs import import_forecast_mw
from dso.service import AggregatorLink
from gridcoord.v1 import aggregator_pb2, aggregator_pb2_grpc, common_pb2
from orchestrator.system.embedded import build_system

STATIONS = [Station("s1", 2, 10.0)]
REQ: dict[str, Any] = dict(arrival_h=8.0, departure_h=12.0, capacity_kwh=80.0, soc_arrival_kwh=10.0,
                           p_charge_kw=10.0, p_discharge_kw=0.0, efficiency=1.0, station="s1")


def test_periods_ranked_by_forecast_into_thirds() -> None:
    forecast = np.array([3.0, 1.0, 2.0, 2.0, 5.0, 0.5])
    t = tou_tariff(forecast, 120.0, 80.0, 40.0)
    assert t.level == ("peak", "valley", "flat", "flat", "peak", "valley")
    np.testing.assert_array_equal(t.price_usd_per_mwh, [120.0, 40.0, 80.0, 80.0, 120.0, 40.0])
    flat_day = tou_tariff(np.ones(24), 1.0, 1.0, 1.0)  # ties: the earlier period counts as higher
    assert flat_day.level[:8] == ("peak",) * 8 and flat_day.level[16:] == ("valley",) * 8
    with pytest.raises(TariffError, match=r"forecast_mw\[2\] = nan"):
        tou_tariff(np.array([1.0, 2.0, np.nan, 1.0]), 3.0, 2.0, 1.0)
    with pytest.raises(TariffError, match="must be ordered peak >= flat >= valley"):
        tou_tariff(forecast, 50.0, 80.0, 40.0)
    with pytest.raises(TariffError, match=r"level\[1\] = 'shoulder'"):
        TouTariff(("peak", "shoulder", "valley"), 3.0, 2.0, 1.0)


@pytest.fixture
def aggregator() -> Iterator[tuple[str, aggregator_pb2_grpc.AggregatorServiceStub]]:
    servicer = AggregatorServicer("agg-x", [], STATIONS, 1.0, 24)
    served = start_server([servicer.register], ["gridcoord.v1.AggregatorService"], "127.0.0.1:0")
    served.set_serving(True)
    address = f"127.0.0.1:{served.port}"
    channel = grpc.insecure_channel(address)
    yield address, aggregator_pb2_grpc.AggregatorServiceStub(channel)
    channel.close()
    served.stop(0)


def test_dso_publishes_its_tariff_and_confirmations_show_it(aggregator) -> None:
    address, stub = aggregator
    before = stub.Reserve(aggregator_pb2.ReservationRequest(ev_id="early", energy_need_kwh=5.0, **REQ), timeout=10)
    assert before.accepted and not before.tou_level  # nothing published yet: nothing shown
    spec = load_case("ieee33-sched")
    spec = replace(spec, feeders=(replace(spec.feeders[0], ev_count=40),))
    feeder = build_system(spec).feeders[0]
    forecast = import_forecast_mw(feeder.inputs)  # the DSO's next-day net load: loads - PV - wind
    tariff = tou_tariff(forecast, 150.0, 90.0, 45.0)
    lv = np.array(tariff.level)
    assert forecast[lv == "peak"].min() >= forecast[lv == "flat"].max() >= forecast[lv == "flat"].min() >= \
        forecast[lv == "valley"].max()
    assert (lv == "peak").sum() == (lv == "valley").sum() == 8
    link = AggregatorLink("agg-x", address, "day-1", recovery_s=None)
    try:
        assert link.publish_tariff(tariff) == 24
    finally:
        link.channel.close()
    r = stub.Reserve(aggregator_pb2.ReservationRequest(ev_id="a", energy_need_kwh=10.0, **REQ), timeout=10)
    assert r.accepted and tuple(r.tou_level) == tariff.level
    np.testing.assert_array_equal(r.tou_price_usd_per_mwh, tariff.price_usd_per_mwh)
    amended = stub.Amend(aggregator_pb2.ReservationRequest(ev_id="a", energy_need_kwh=12.0, **REQ), timeout=10)
    assert amended.accepted and tuple(amended.tou_level) == tariff.level
    refused = stub.Reserve(aggregator_pb2.ReservationRequest(ev_id="b", energy_need_kwh=39.0, **REQ), timeout=10)
    assert not refused.accepted and not refused.tou_level  # only confirmations carry the tariff


def test_bad_tariffs_are_refused_naming_the_field(aggregator) -> None:
    _, stub = aggregator
    good: dict[str, Any] = dict(level=["flat"] * 24, peak_usd_per_mwh=3.0, flat_usd_per_mwh=2.0, valley_usd_per_mwh=1.0)
    bad: dict[str, tuple[dict[str, Any], str]] = {
        "level": ({"level": ["flat"] * 23}, "level: expected 24 values, got 23"),
        "level value": ({"level": ["flat"] * 23 + ["noon"]}, "level[23] = 'noon'"),
        "order": ({"valley_usd_per_mwh": 5.0}, "must be ordered peak >= flat >= valley"),
        "nan": ({"peak_usd_per_mwh": float("nan")}, "peak_usd_per_mwh = nan is not finite")}
    for n, (name, (change, text)) in enumerate(bad.items(), start=1):
        req = aggregator_pb2.TouTariff(key=common_pb2.RunKey(run_id="bad", round=n), **(good | change))
        with pytest.raises(grpc.RpcError) as err:
            stub.PublishTariff(req, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and text in str(err.value.details()), name
    ok = stub.Reserve(aggregator_pb2.ReservationRequest(ev_id="a", energy_need_kwh=1.0, **REQ), timeout=10)
    assert ok.accepted and not ok.tou_level  # no bad tariff was taken
