"""The TNO behind gRPC, served as ``gridcoord serve tno --tls-dir`` serves it (mTLS, certificate-bound
authorization): the same answers as in-process, bad requests refused naming the field, callers other than the
orchestrator refused naming them, the loop over it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from core.rpc import RemoteError
from core.tls import TlsIdentity
from core.traffic import Traffic
from gridcoord.v1 import tno_pb2
from orchestrator.cli import certs
from orchestrator.cli.serve import TRANSPORT_CASE, ServeOptions, start_tno
from orchestrator.system.tno_client import RemoteTransportOperator
from tno.cases import TNO_ID, coupling_case
from tno.network import TransportCase
from tno.operator import StationArrivals, TransportOperator


def _case() -> TransportCase:
    return coupling_case(demand_scale=0.3, charging_share=0.2, horizon_min=120.0, departure_end_min=40.0)


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The transport case's trial (``gridcoord certs --case nguyen-dupuis-ieee33``: tno + orchestrator) plus a
    client and a grid operator's certificate of the same CA: callers that pass the handshake but are not the
    orchestrator."""
    d = tmp_path_factory.mktemp("tno") / "tls"
    certs.create_trial(TRANSPORT_CASE, d, clients=1)
    certs.write_identity(d, certs.issue(certs.load_ca(d), "dso1", "dso"))
    return d


class Tno:
    """``gridcoord serve tno --id tno --tls-dir DIR`` on the reduced case (a fresh process state per test: the
    operator keeps its equilibrium's warm start between calls)."""

    def __init__(self, tls_dir: Path, log: Path) -> None:
        self.tls_dir, self.log = tls_dir, log
        self.served = start_tno(ServeOptions(case=TRANSPORT_CASE, role="tno", operator_id=TNO_ID, port=0,
                                             tls_dir=str(tls_dir), security_log=str(log)), _case())
        self.address = f"127.0.0.1:{self.served.port}"

    def client(self, identity: str = "orchestrator", run_id: str = "t1") -> RemoteTransportOperator:
        return RemoteTransportOperator(TNO_ID, self.address, run_id=run_id,
                                       tls=TlsIdentity(str(self.tls_dir), identity), stats=Traffic())


@pytest.fixture()
def tno_server(tls_dir: Path, tmp_path: Path) -> Iterator[Tno]:
    t = Tno(tls_dir, tmp_path / "security-tno.jsonl")
    yield t
    t.served.server.stop(0)


@pytest.fixture()
def remote(tno_server: Tno) -> Iterator[RemoteTransportOperator]:
    client = tno_server.client()
    client.wait(10.0)
    try:
        yield client
    finally:
        client.close()


def _same(a: StationArrivals, b: StationArrivals) -> None:
    assert a.ev_id == b.ev_id and a.ev_type == b.ev_type
    np.testing.assert_array_equal(a.station, b.station)
    for f in ("plug_start_h", "plug_end_h", "need_kwh", "p_charge_kw", "p_discharge_kw", "efficiency"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert a.need_cut_kwh == b.need_cut_kwh


def test_remote_answers_as_embedded(remote: RemoteTransportOperator) -> None:
    case = _case()
    local = TransportOperator(case)
    price = np.full((len(case.stations), case.n_periods), 40.0)
    price[1] = -100.0  # cheap energy at c2
    for mode in ("shortest_path", "equilibrium"):
        want = local.respond(price, mode=mode, max_iter=5)
        got = remote.respond(price, mode=mode, max_iter=5)
        _same(got.arrivals, want.arrivals)
        assert got.gap == want.gap and got.iterations == want.iterations and got.assignment is None
    assert remote.stats is not None and remote.stats.messages == 4
    # only arrival envelopes cross: no route, origin or destination field exists on the wire
    assert not {"route", "origin", "destination"} & set(tno_pb2.StationArrivals.DESCRIPTOR.fields_by_name)


def test_remote_refuses_bad_prices(remote: RemoteTransportOperator) -> None:
    case = _case()
    with pytest.raises(RemoteError, match=r"this operator has 4 stations x 24 periods"):
        remote.respond(np.zeros((3, case.n_periods)))
    bad = np.zeros((4, case.n_periods))
    bad[2, 5] = np.nan
    with pytest.raises(RemoteError, match=r"price_usd_per_mwh"):
        remote.respond(bad)


@pytest.mark.parametrize(("identity", "code", "reason"), [
    ("client-1", grpc.StatusCode.PERMISSION_DENIED,
     "client 'client-1' may not call Respond on 'tno': only the orchestrator"),
    ("dso1", grpc.StatusCode.UNAUTHENTICATED, "identity 'dso1' is not a participant of this trial"),
])
def test_only_the_orchestrator_may_ask_the_tno(tno_server: Tno, identity: str, code: grpc.StatusCode,
                                               reason: str) -> None:
    client = tno_server.client(identity, run_id=f"intruder-{identity}")
    try:
        with pytest.raises(RemoteError, match=reason) as exc:
            client.respond(np.zeros((4, _case().n_periods)), mode="shortest_path", max_iter=1)
        assert exc.value.code == code
    finally:
        client.close()
    events = [json.loads(line) for line in tno_server.log.read_text().splitlines()]
    assert [(e["identity"], e["method"], e["status"]) for e in events] == [
        (identity, "/gridcoord.v1.TransportService/Respond", code.name)]


def test_loop_over_the_service_matches_embedded(remote: RemoteTransportOperator) -> None:
    from aggregator.zonotope import cluster_generators
    from dso.coupling import CouplingFeederSpec, coupling_feeder
    from dso.problem import DsoProblem
    from orchestrator.strategies.tno_dno import ZONOTOPE_SHIFTS, CouplingLoop, v2g_efficiency_of

    case = _case()
    spec = CouplingFeederSpec()
    eta = v2g_efficiency_of(case.ev_types)  # V2G clusters
    g = cluster_generators(case.n_periods, ZONOTOPE_SHIFTS, eta)
    results = []
    data, inputs = coupling_feeder(np.array([s.feeder_node for s in case.stations]), g, spec=spec)
    dso = DsoProblem(data, inputs)  # built once (DPP): each loop sets its clusters before every solve
    for tno in (TransportOperator(case), remote):
        loop = CouplingLoop(tno, dso, spec.import_price_usd_per_mwh, case.stations, case.step_min, case.n_periods,
                            v2g_efficiency=eta)
        results.append(loop.run("equilibrium", max_rounds=2, tno_max_iter=3))
    emb, srv = results
    assert [r.station_arrivals for r in emb.rounds] == [r.station_arrivals for r in srv.rounds]
    np.testing.assert_allclose(srv.price_usd_per_mwh, emb.price_usd_per_mwh, atol=1e-6)
    np.testing.assert_allclose(srv.dispatch.ev_zono_p_mw, emb.dispatch.ev_zono_p_mw, atol=1e-6)
    assert float(srv.ev_unmet_kwh.max()) <= 1e-6


def test_serve_tno_refuses_the_grid_operators_flags(capsys: pytest.CaptureFixture[str]) -> None:
    """`--services`, `--state-dir`, `--no-ac-check`, `--solver` and `--privacy dp` mean nothing to a TNO: the
    command is refused naming each, before anything listens (it used to start and ignore them)."""
    from orchestrator.cli.main import main

    base = ["serve", "tno", "--id", TNO_ID, "--port", "0", "--insecure"]
    assert main([*base, "--services", "peers.yaml"]) == 2
    err = capsys.readouterr().err
    assert "--services (the TNO calls no peer" in err and "drop it" in err
    assert main([*base, "--state-dir", "x", "--no-ac-check", "--solver", "SCIP"]) == 2
    err = capsys.readouterr().err
    assert all(flag in err for flag in ("--state-dir", "--no-ac-check", "--solver")) and "drop them" in err
    assert main([*base, "--privacy", "dp", "--epsilon", "1"]) == 2
    assert "--privacy dp (only a DSO" in capsys.readouterr().err
    assert main([*base, "--book-open-minutes", "5"]) == 2
    assert "--book-open-minutes (only a DSO closes" in capsys.readouterr().err
    assert main([*base, "--book-closes-at", "2026-12-05T14:00:00Z"]) == 2
    assert "--book-closes-at (only a DSO closes" in capsys.readouterr().err
    assert main([*base, "--book-closes-at", "2026-12-05T14:00:00"]) == 2  # no UTC offset: refused, naming it
    assert "--book-closes-at '2026-12-05T14:00:00': give the UTC offset" in capsys.readouterr().err
