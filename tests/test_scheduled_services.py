"""The scheduled-charging study through services: ``DsoService.Dispatch`` on a ``gridcoord serve dso`` process
(mTLS, its aggregator another process) gives the embedded dispatch of the same reduced case, and so does
``DsoService.Redispatch`` (no-shows and late arrivals, the aggregator re-books the fleet that came; a DSO holding
no day-ahead dispatch, as after a restart, dispatches it again first); only the orchestrator may call them; the DSO
published its time-of-use tariff when it started."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

import core.case as case_mod
from core.case import load_case
from core.rpc import RemoteError, call
from core.tls import TlsIdentity
from core.tls import channel as tls_channel
from gridcoord.v1 import common_pb2, dso_pb2, dso_pb2_grpc
from orchestrator.cli.launch import LocalDeployment
from orchestrator.studies.feeder_run import ScenarioRun
from orchestrator.studies.redispatch import pick_events, redispatch
from orchestrator.studies.scheduled_charging import _Services, run_scenario, scenario_metrics
from orchestrator.system.dso_alone import DsoAloneClient, list_reservations
from orchestrator.system.embedded import build_system

#: the reduced case of tests/test_scheduled_charging.py: 40 EVs, base load x 0.8
N_EVS, LOAD_SCALE = 40, 0.8
#: no-shows and late arrivals known at this period (tests/test_redispatch.py's)
T_FROM = 8


def _reduced_case(tmp_path: Path) -> Path:
    src = (Path(case_mod.__file__).parent / "cases" / "ieee33-sched.yaml").read_text()
    text = src.replace("evs: {count: 500,", f"evs: {{count: {N_EVS},").replace(
        "    network: case33bw\n", f"    network: case33bw\n    load_scale: {LOAD_SCALE}\n")
    assert text.count(f"count: {N_EVS},") == 1 and text.count("load_scale") == 1
    path = tmp_path / "ieee33-sched-small.yaml"
    path.write_text(text)
    return path


def _close(a: Any, b: Any, what: str) -> None:
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-6, atol=1e-9,
                               err_msg=what)


def test_dso_service_dispatch_gives_the_embedded_numbers(tmp_path: Path) -> None:
    case = _reduced_case(tmp_path)
    spec = load_case(str(case))
    assert spec.feeders[0].ev_count == N_EVS
    feeder = build_system(replace(spec, feeders=spec.feeders[:1])).feeders[0]
    embedded = run_scenario(feeder, "ev_pq", ac=False)
    dep = LocalDeployment(str(case), tmp_path / "operators", ac_check=False)
    dep.start(only=("agg-dso1", "dso1"))  # the study needs no TSO
    try:
        assert dep.client_tls is not None
        client = DsoAloneClient("dso1", dep.services["dso1"], dep.client_tls)
        booked = lambda: list_reservations("agg-dso1", dep.services["agg-dso1"], dep.client_tls)  # noqa: E731
        services = _Services(client, spec.dt_h, booked)
        try:
            # no day-ahead held yet (as after a DSO restart): the DSO dispatches the day ahead again first
            early = client.redispatch(T_FROM, [], {})
            remote: ScenarioRun = services.scenario("ev_pq")
            re_remote = services.redispatch(argparse.Namespace(redispatch_hour=T_FROM, no_show_share=0.25,
                                                               late_share=0.25, late_h=3.0, seed=3), remote)
            again = client.redispatch(T_FROM, [], {})  # the same events after the Dispatch: the same answer
            for key in ("objective", "day_ahead_objective"):
                _close(getattr(early, key), getattr(again, key), f"redispatch without a held day-ahead: {key}")
            _close(early.ev_unmet_kwh, again.ev_unmet_kwh, "redispatch without a held day-ahead: per-EV unmet")
            _close(early.day_ahead_objective, re_remote.day_ahead_objective, "the day ahead dispatched again")
            with pytest.raises(RemoteError) as bad:
                call("dso1", "Dispatch", client.stub.Dispatch,
                     dso_pb2.DsoDispatchRequest(key=common_pb2.RunKey(run_id="bad", round=1), scenario="ev_q"),
                     deadline_s=30.0, idempotent_call=False)
            assert bad.value.code == grpc.StatusCode.INVALID_ARGUMENT and "scenario: 'ev_q' is unknown" in str(
                bad.value)
        finally:
            client.close()
        # its own aggregator may not ask the DSO to dispatch: only the orchestrator may
        agg = TlsIdentity(str(dep.tls_dir), "agg-dso1")
        with tls_channel(dep.services["dso1"], agg, "dso1") as ch:
            with pytest.raises(grpc.RpcError) as denied:
                dso_pb2_grpc.DsoServiceStub(ch).Dispatch(
                    dso_pb2.DsoDispatchRequest(key=common_pb2.RunKey(run_id="x", round=1)), timeout=30)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "only the orchestrator" in str(denied.value.details())
        dso_log = (tmp_path / "operators" / "dso1.log").read_text()
    finally:
        dep.stop()
    assert "time-of-use tariff published to aggregator agg-dso1 (24 periods" in dso_log
    assert dso_log.count("Redispatch with no day-ahead dispatch held") == 1
    m_emb, m_svc = scenario_metrics(embedded), scenario_metrics(remote)
    for key, value in m_emb.items():
        if key != "solve_s":
            _close(m_svc[key], value, key)
    assert m_emb["n_evs"] == N_EVS and m_emb["ev_unmet_max_kwh"] <= 1e-6 and m_emb["q_ev_max_mvar"] > 0.05
    _close(remote.ev_unmet_kwh, embedded.ev_unmet_kwh, "per-EV unmet")
    for name in ("v_pu", "p_ev_mw", "q_ev_mvar", "p_gen_mw", "q_gen_mvar", "p_import_mw"):
        _close(getattr(remote.report, name), getattr(embedded.report, name), name)
    _close(remote.dispatch.ev_station_q_mvar, embedded.dispatch.ev_station_q_mvar, "station Q")
    # the re-dispatch: the same events drawn from the aggregator's book, the same day as embedded
    no_show, late = pick_events(feeder.fleet, T_FROM, 0.25, 0.25, 3.0, spec.dt_h, spec.periods, seed=3)
    assert no_show and late and re_remote.no_show == tuple(no_show) and re_remote.late == late
    re_emb = redispatch(feeder, embedded, T_FROM, no_show, late, ac=False)
    r_emb, r_svc = scenario_metrics(re_emb.run), scenario_metrics(re_remote.run)
    for key, value in r_emb.items():
        if key != "solve_s":
            _close(r_svc[key], value, f"redispatch {key}")
    assert r_svc["n_evs"] == N_EVS - len(no_show) and r_svc["ev_unmet_max_kwh"] <= 1e-3
    for key in ("objective", "day_ahead_objective", "late_shortfall_kwh"):
        _close(getattr(re_remote, key), getattr(re_emb, key), key)
    _close(re_remote.run.ev_unmet_kwh, re_emb.run.ev_unmet_kwh, "redispatch per-EV unmet")
    _close(re_remote.run.report.p_import_mw[:T_FROM], embedded.report.p_import_mw[:T_FROM], "executed past")


def test_the_book_stays_open_until_the_dso_gate_closes(tmp_path: Path) -> None:
    """``serve dso --book-open-minutes M`` or ``--book-closes-at T``: the DSO publishes its tariff, owners reserve
    until the gate (the DSO answers UNAVAILABLE naming the closing time meanwhile), then it takes the envelopes
    (closing the book) and builds: the reservation made in the window is in its dispatch, one made after is
    refused "closed"; a DSO stopped in its window leaves the book open, one restarted after its gate does not
    wait."""
    import time

    from core.rpc import wait_serving
    from gridcoord.v1 import aggregator_pb2, aggregator_pb2_grpc
    from orchestrator.cli.serve import ServeOptions, start_operator

    case = str(_reduced_case(tmp_path))
    agg = start_operator(ServeOptions(case=case, role="aggregator", operator_id="agg-dso1", port=0, insecure=True))
    services = tmp_path / "services.yaml"
    services.write_text(f"agg-dso1: 127.0.0.1:{agg.port}\n")
    with pytest.raises(ValueError, match="--book-open-minutes / --book-closes-at are a DSO's"):
        start_operator(ServeOptions(case=case, role="aggregator", operator_id="agg-dso1", port=0, insecure=True,
                                    book_open_minutes=1.0))
    with pytest.raises(ValueError, match="give one of them, not both"):
        start_operator(ServeOptions(case=case, role="dso", operator_id="dso1", port=0, insecure=True,
                                    book_open_minutes=1.0, book_closes_at=time.time() + 60))
    with pytest.raises(ValueError, match="--book-open-minutes nan: must be a finite number >= 0"):
        start_operator(ServeOptions(case=case, role="dso", operator_id="dso1", port=0, insecure=True,
                                    book_open_minutes=float("nan")))
    request: dict[str, Any] = dict(arrival_h=10.0, departure_h=14.0, energy_need_kwh=5.0, capacity_kwh=60.0,
                                   soc_arrival_kwh=20.0, p_charge_kw=7.0, p_discharge_kw=0.0, efficiency=0.9,
                                   station="sched-s2")
    # a DSO stopped while the book is open never takes the envelopes: the book stays open
    early = start_operator(ServeOptions(case=case, role="dso", operator_id="dso1", port=0, insecure=True,
                                        services_file=str(services), ac_check=False, book_open_minutes=10.0))
    with grpc.insecure_channel(f"127.0.0.1:{agg.port}") as ach:
        listing = aggregator_pb2.ListReservationsRequest(key=common_pb2.RunKey(run_id="audit", round=1))
        end = time.monotonic() + 60.0
        while not aggregator_pb2_grpc.AggregatorServiceStub(ach).Reserve(
                aggregator_pb2.ReservationRequest(ev_id="probe", **request), timeout=10).tou_level:
            assert time.monotonic() < end, "no tariff published within 60 s"
            time.sleep(0.2)
        early.stop(0)
        time.sleep(0.5)
        assert not aggregator_pb2_grpc.AggregatorServiceStub(ach).ListReservations(listing, timeout=10).closed
    dso = start_operator(ServeOptions(case=case, role="dso", operator_id="dso1", port=0, insecure=True,
                                      services_file=str(services), ac_check=False, book_open_minutes=0.1))
    try:
        with (grpc.insecure_channel(f"127.0.0.1:{agg.port}") as ach,
              grpc.insecure_channel(f"127.0.0.1:{dso.port}") as dch):
            stub = aggregator_pb2_grpc.AggregatorServiceStub(ach)
            end = time.monotonic() + 60.0
            while True:  # the DSO names the gate once its window opens (after it published the tariff)
                with pytest.raises(grpc.RpcError) as waiting:
                    dso_pb2_grpc.DsoServiceStub(dch).Forecast(
                        dso_pb2.ForecastRequest(key=common_pb2.RunKey(run_id="early", round=1)), timeout=10)
                assert waiting.value.code() == grpc.StatusCode.UNAVAILABLE
                if "reservations are open until" in str(waiting.value.details()):
                    break
                assert time.monotonic() < end, waiting.value.details()
                time.sleep(0.1)
            first = stub.Reserve(aggregator_pb2.ReservationRequest(ev_id="in-window", **request), timeout=10)
            assert first.accepted and len(first.tou_level) == 24, first
            wait_serving(f"127.0.0.1:{dso.port}", deadline_s=120.0)
            late = stub.Reserve(aggregator_pb2.ReservationRequest(ev_id="after-gate", **request), timeout=10)
            assert not late.accepted and late.reason_code == "closed"
            out = dso_pb2_grpc.DsoServiceStub(dch).Dispatch(
                dso_pb2.DsoDispatchRequest(key=common_pb2.RunKey(run_id="day", round=1), scenario="ev_p"), timeout=120)
        unmet = dict(zip(out.ev_ids, out.ev_unmet_kwh, strict=True))
        assert len(unmet) == N_EVS + 2 and unmet["in-window"] <= 1e-6 and "after-gate" not in unmet
        # a DSO restarted after its gate takes the (closed) book's envelopes at once
        dso.stop(0)
        dso = start_operator(ServeOptions(case=case, role="dso", operator_id="dso1", port=0, insecure=True,
                                          services_file=str(services), ac_check=False,
                                          book_closes_at=time.time() - 60.0))
        wait_serving(f"127.0.0.1:{dso.port}", deadline_s=60.0)
    finally:
        dso.stop(0)
        agg.stop(0)
