"""A DSO service publishes its time-of-use tariff to its aggregator (``dso.service.TariffPublisher``, wired
into ``gridcoord serve dso``): a failed attempt is logged as an ERROR and retried until the aggregator
acknowledges; the confirmations then show it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

import core.case as case_mod
from aggregator.fleet import Station
from aggregator.service import AggregatorServicer
from core.case import CaseError, load_case
from core.rpc import start_server
from core.tariff import tou_tariff
from dso.inputs import feeder_data, import_forecast_mw, net_load_forecast_mw
from dso.model import EvFlexibility
from dso.service import AggregatorLink, TariffPublisher
from gridcoord.v1 import aggregator_pb2, aggregator_pb2_grpc
from orchestrator.cli.launch import free_ports

REQ: dict[str, Any] = dict(arrival_h=8.0, departure_h=12.0, capacity_kwh=80.0, soc_arrival_kwh=10.0, p_charge_kw=10.0,
           p_discharge_kw=0.0, efficiency=1.0, station="s1", energy_need_kwh=5.0)


def test_forecast_before_the_evs_is_the_dsos_import_forecast() -> None:
    from dso.inputs import feeder_inputs

    spec = load_case("ieee33-sched")
    assert spec.feeders[0].tou_usd_per_mwh == (150.0, 90.0, 45.0)
    data = feeder_data(spec, "dso1")
    no_evs = feeder_inputs(spec, "dso1", data, EvFlexibility.empty())
    np.testing.assert_allclose(net_load_forecast_mw(spec, "dso1", data), import_forecast_mw(no_evs), rtol=1e-12)


def test_unordered_case_prices_are_refused_naming_the_field(tmp_path) -> None:
    src = Path(case_mod.__file__).parent / "cases" / "ieee33-sched.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text(src.read_text().replace("{peak: 150.0, flat: 90.0, valley: 45.0}",
                                           "{peak: 50.0, flat: 90.0, valley: 45.0}"))
    with pytest.raises(CaseError, match=r"tou_usd_per_mwh: peak=50, flat=90, valley=45 must be ordered"):
        load_case(str(bad))


def test_a_failed_publication_is_logged_and_retried_until_acknowledged(caplog) -> None:
    port = free_ports(1)[0]
    address = f"127.0.0.1:{port}"
    tariff = tou_tariff(np.arange(24.0), 150.0, 90.0, 45.0)
    link = AggregatorLink("agg-x", address, "day-1", recovery_s=None)
    link.retries = 0
    publisher = TariffPublisher("dso-x", link, tariff, retry_s=(0.2, 0.4))
    servicer = AggregatorServicer("agg-x", [], [Station("s1", 2, 10.0)], 1.0, 24)
    served = None
    try:
        with caplog.at_level(logging.ERROR, logger="gridcoord.dso"):
            assert not publisher.start()  # nothing listens yet
        assert any("tariff NOT published to aggregator agg-x" in r.getMessage() and r.levelno == logging.ERROR
                   for r in caplog.records)
        served = start_server([servicer.register], ["gridcoord.v1.AggregatorService"], address)
        served.set_serving(True)
        assert publisher.published.wait(15.0), publisher.last_error
        assert publisher.attempts >= 2
        with grpc.insecure_channel(address) as ch:
            r = aggregator_pb2_grpc.AggregatorServiceStub(ch).Reserve(
                aggregator_pb2.ReservationRequest(ev_id="a", **REQ), timeout=10)
        assert r.accepted and tuple(r.tou_level) == tariff.level
        assert tariff.level[23] == "peak" and tariff.level[0] == "valley"
    finally:
        publisher.stop()
        link.channel.close()
        if served is not None:
            served.stop(0)
