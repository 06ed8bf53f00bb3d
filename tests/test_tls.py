"""mTLS and certificate-bound authorization on real gRPC servers (in-process, real TLS, real servicers).

The aggregator of dso2 is started exactly as ``gridcoord serve aggregator --tls-dir`` starts it
(``start_operator``); the TSO service is the real ``TsoServicer`` behind the same credentials and
interceptor, without its model (so it builds instantly), counting the calls that reach it.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import stat
import threading
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core import tls as gtls
from core.case import load_case, operators
from core.rpc import RemoteError, Served, start_server
from core.tls import POLICY, AuthorizationInterceptor, SecurityLog, TlsIdentity
from dso.service import AggregatorLink
from gridcoord.v1 import aggregator_pb2, aggregator_pb2_grpc, common_pb2, dso_pb2, tno_pb2, tso_pb2, tso_pb2_grpc
from gridcoord.v1 import aggregator_pb2 as _agg
from orchestrator.cli import certs
from orchestrator.cli.main import main
from orchestrator.cli.serve import ServeOptions, start_operator
from orchestrator.system.services import ServicesSystem
from tso.service import SERVICE_NAME as TSO_SERVICE
from tso.service import TsoServicer

CASE = "ieee30-3x33"


# --------------------------------------------------------------------------------------------------
# fixtures: one trial directory, extra certificates, two servers


class Pki:
    def __init__(self, root: Path) -> None:
        self.dir = root / "tls"
        certs.create_trial(CASE, self.dir, clients=1)
        self.ca = certs.load_ca(self.dir)
        self.other_ca = certs.make_ca("another trial's CA")

    def pair(self, identity: str) -> tuple[bytes, bytes]:
        """(key, cert) PEM of a participant of the trial directory."""
        return (self.dir / f"{identity}.key").read_bytes(), (self.dir / f"{identity}.pem").read_bytes()

    @property
    def ca_pem(self) -> bytes:
        return (self.dir / "ca.pem").read_bytes()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


class CountingTso(TsoServicer):
    """The real TSO servicer; counts the calls that get past the interceptor."""

    calls: list[str]

    def Describe(self, request, context):
        self.calls.append("Describe")
        return super().Describe(request, context)

    def Evaluate(self, request, context):
        self.calls.append("Evaluate")
        return super().Evaluate(request, context)


@pytest.fixture(scope="module")
def tso(pki: Pki, tmp_path_factory: pytest.TempPathFactory):
    spec = load_case(CASE)
    servicer = CountingTso("tso", tuple(f.feeder_id for f in spec.feeders), spec.periods, spec.dt_h)
    servicer.calls = []
    log_path = tmp_path_factory.mktemp("tso") / "security-tso.jsonl"
    interceptor = AuthorizationInterceptor("tso", gtls.participants(operators(spec)), SecurityLog(log_path))
    served = start_server([servicer.register], [TSO_SERVICE], "127.0.0.1:0",
                          credentials=gtls.server_credentials(TlsIdentity(str(pki.dir), "tso")),
                          interceptors=[interceptor])
    served.set_serving(True)
    yield served, servicer, log_path
    served.stop(0)


@pytest.fixture(scope="module")
def agg(pki: Pki, tmp_path_factory: pytest.TempPathFactory):
    """agg-dso2 as `gridcoord serve aggregator --id agg-dso2 --tls-dir DIR --security-log FILE` runs it."""
    log_path = tmp_path_factory.mktemp("agg") / "security-agg-dso2.jsonl"
    served = start_operator(ServeOptions(case=CASE, role="aggregator", operator_id="agg-dso2", port=0,
                                         tls_dir=str(pki.dir), security_log=str(log_path)))
    yield served, log_path
    served.stop(0)


def _channel(port: int, target: str, ca: bytes, pair: tuple[bytes, bytes] | None) -> grpc.Channel:
    key, cert = pair if pair is not None else (None, None)
    creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    return grpc.secure_channel(f"127.0.0.1:{port}", creds, options=gtls.target_options(target))


def _code(fn, request) -> grpc.StatusCode:
    try:
        fn(request, timeout=10)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _key(run: str = "t", n: int = 1) -> common_pb2.RunKey:
    return common_pb2.RunKey(run_id=run, round=n)


# --------------------------------------------------------------------------------------------------
# certificates


def test_certs_identity_role_san_eku_and_key_modes(pki: Pki) -> None:
    ca = x509.load_pem_x509_certificate(pki.ca_pem)
    for role, oid in operators(load_case(CASE)) + [("orchestrator", "orchestrator"), ("client", "client-1")]:
        cert = x509.load_pem_x509_certificate(pki.pair(oid)[1])
        cert.verify_directly_issued_by(ca)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == oid
        assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == role
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == [oid, "localhost"]
        assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        assert stat.S_IMODE((pki.dir / f"{oid}.key").stat().st_mode) == 0o600, oid
    assert stat.S_IMODE((pki.dir / "ca.key").stat().st_mode) == 0o600


def test_certs_cli_refuses_a_non_empty_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "certs"
    assert main(["certs", "--out", str(out), "--days", "2"]) == 0
    capsys.readouterr()
    assert main(["certs", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert main(["certs", "--out", str(out), "--force"]) == 0
    assert main(["certs", "--out", str(tmp_path / "x"), "--days", "0"]) == 2
    assert "days = 0" in capsys.readouterr().err


def test_tls_identity_names_the_missing_or_wrong_file(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(gtls.TlsConfigError, match="dso9.pem"):
        TlsIdentity(str(pki.dir), "dso9").check()
    d = tmp_path / "swapped"
    d.mkdir()
    for name in ("ca.pem",):
        (d / name).write_bytes((pki.dir / name).read_bytes())
    (d / "dso1.pem").write_bytes(pki.pair("dso2")[1])
    (d / "dso1.key").write_bytes(pki.pair("dso2")[0])
    with pytest.raises(gtls.TlsConfigError, match="certificate is for 'dso2', not 'dso1'"):
        TlsIdentity(str(d), "dso1").check()
    old = certs.issue(pki.ca, "dso1", "dso", days=1, not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    certs.write_identity(d, old)
    with pytest.raises(gtls.TlsConfigError, match="not now"):
        TlsIdentity(str(d), "dso1").check()


# --------------------------------------------------------------------------------------------------
# policy


def test_every_rpc_of_every_service_has_exactly_one_policy_row() -> None:
    methods = {f"/{svc.full_name}/{m.name}"
               for mod in (tso_pb2, dso_pb2, aggregator_pb2, tno_pb2)
               for svc in mod.DESCRIPTOR.services_by_name.values()
               for m in svc.methods}
    assert set(POLICY) == methods, f"policy rows missing or stale: {sorted(methods ^ set(POLICY))}"
    rounds = {"Evaluate", "Optimize", "Respond", "Prox", "Report", "Forecast"}
    for method, rules in POLICY.items():
        if method.rsplit("/", 1)[1] in rounds:
            assert rules == (gtls.THE_ORCHESTRATOR,), method  # only the orchestrator can start rounds


# --------------------------------------------------------------------------------------------------
# handshake


@pytest.mark.parametrize("client", ["no certificate", "other CA", "expired", "trusts another CA"])
def test_handshake_refusals_never_reach_the_servicer(pki: Pki, tso: tuple[Served, CountingTso, Path],
                                                     client: str) -> None:
    served, servicer, log_path = tso
    before, logged = len(servicer.calls), _events(log_path)
    ca = pki.ca_pem
    if client == "no certificate":
        pair = None
    elif client == "other CA":  # a well-formed certificate for the orchestrator, from another CA
        other = certs.issue(pki.other_ca, "orchestrator", "orchestrator")
        pair = (other.key_pem(), other.cert_pem())
    elif client == "expired":
        old = certs.issue(pki.ca, "orchestrator", "orchestrator", days=1,
                          not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
        pair = (old.key_pem(), old.cert_pem())
    else:  # a real participant that does not trust the trial CA: refuses the server
        pair, ca = pki.pair("orchestrator"), pki.other_ca.cert_pem()
    with _channel(served.port, "tso", ca, pair) as ch:
        code = _code(tso_pb2_grpc.TsoServiceStub(ch).Describe, common_pb2.DescribeRequest(key=_key()))
    assert code == grpc.StatusCode.UNAVAILABLE
    assert len(servicer.calls) == before, "the servicer ran for a refused handshake"
    assert _events(log_path) == logged  # handshake refusals happen in gRPC core, below the interceptor


def test_client_checks_the_server_is_the_operator_it_meant(pki: Pki, agg: tuple[Served, Path]) -> None:
    """A services file pointing dso1's aggregator link at agg-dso2's port: refused, agg-dso2 is not agg-dso1."""
    served, _ = agg
    with _channel(served.port, "agg-dso1", pki.ca_pem, pki.pair("dso1")) as ch:
        code = _code(aggregator_pb2_grpc.AggregatorServiceStub(ch).GetEnvelope, _agg.EnvelopeRequest(key=_key()))
    assert code == grpc.StatusCode.UNAVAILABLE
    assert gtls.probe(f"127.0.0.1:{served.port}", TlsIdentity(str(pki.dir), "dso2"), "agg-dso2")
    assert not gtls.probe(f"127.0.0.1:{served.port}", TlsIdentity(str(pki.dir), "dso2"), "agg-dso1")


def _permissive_tls11_server() -> ssl.SSLContext:
    """A Python ``ssl`` server context that accepts TLS 1.1 (the control of the TLS-version test)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def _handshake(port: int, version: ssl.TLSVersion, pair_files: tuple[Path, Path]) -> str:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ctx.maximum_version = version
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    ctx.load_cert_chain(str(pair_files[0]), str(pair_files[1]))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock, ctx.wrap_socket(sock) as tls_sock:
        return str(tls_sock.version())


def test_tls_versions_below_1_2_are_refused(pki: Pki, tso: tuple[Served, CountingTso, Path], tmp_path: Path) -> None:
    """A Python ``ssl`` client pinned to one TLS version against the gRPC port: 1.2 and 1.3 negotiate, 1.1 is
    refused by the server. Control: the same client does negotiate 1.1 with a permissive local server (so the
    refusal is gRPC's, not this machine's OpenSSL policy)."""
    served, _, _ = tso
    pair = (pki.dir / "orchestrator.pem", pki.dir / "orchestrator.key")
    assert _handshake(served.port, ssl.TLSVersion.TLSv1_2, pair) == "TLSv1.2"
    assert _handshake(served.port, ssl.TLSVersion.TLSv1_3, pair) == "TLSv1.3"

    # control: can this OpenSSL speak TLS 1.1 at all?
    server_ctx = _permissive_tls11_server()
    server_ctx.load_cert_chain(str(pki.dir / "tso.pem"), str(pki.dir / "tso.key"))
    listener = socket.create_server(("127.0.0.1", 0))
    result: dict[str, str] = {}

    def accept() -> None:
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as s:
                result["server"] = str(s.version())
        except ssl.SSLError as exc:
            result["server"] = f"refused: {exc}"

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        control = _handshake(listener.getsockname()[1], ssl.TLSVersion.TLSv1_1, pair)
    except ssl.SSLError as exc:
        pytest.skip(f"this machine's OpenSSL cannot negotiate TLS 1.1 even with a permissive server ({exc})")
    finally:
        t.join(5)
        listener.close()
    assert control == "TLSv1.1"
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _handshake(served.port, ssl.TLSVersion.TLSv1_1, pair)


# --------------------------------------------------------------------------------------------------
# authorization


def test_orchestrator_runs_rounds_and_any_participant_may_describe(pki: Pki,
                                                                    tso: tuple[Served, CountingTso, Path]) -> None:
    served, servicer, _ = tso
    with _channel(served.port, "tso", pki.ca_pem, pki.pair("orchestrator")) as ch:
        stub = tso_pb2_grpc.TsoServiceStub(ch)
        reply = stub.Describe(common_pb2.DescribeRequest(key=_key("orch")), timeout=10)
        assert reply.operator_id == "tso"
        n = len(servicer.calls)
        # the model is not attached in this test server: the servicer answers, and it is not a refusal
        code = _code(stub.Evaluate, common_pb2.EvaluateRequest(key=_key("orch", 2), boundary_mw=[0.0] * 72))
        assert code not in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
        assert servicer.calls[n:] == ["Evaluate"]
    for who in ("dso1", "agg-dso3", "client-1"):
        with _channel(served.port, "tso", pki.ca_pem, pki.pair(who)) as ch:
            assert tso_pb2_grpc.TsoServiceStub(ch).Describe(common_pb2.DescribeRequest(key=_key(who)),
                                                            timeout=10).operator_id == "tso"


def test_a_dso_cannot_start_a_round_on_the_tso(pki: Pki, tso: tuple[Served, CountingTso, Path]) -> None:
    served, servicer, log_path = tso
    n = len(servicer.calls)
    with _channel(served.port, "tso", pki.ca_pem, pki.pair("dso1")) as ch:
        code = _code(tso_pb2_grpc.TsoServiceStub(ch).Evaluate,
                     common_pb2.EvaluateRequest(key=_key("dso1-round"), boundary_mw=[0.0] * 72))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert len(servicer.calls) == n
    last = _events(log_path)[-1]
    assert (last["server"], last["identity"], last["role"], last["method"], last["status"]) == (
        "tso", "dso1", "dso", "/gridcoord.v1.TsoService/Evaluate", "PERMISSION_DENIED")
    assert "only the orchestrator" in last["reason"]


@pytest.mark.parametrize("method", ["GetEnvelope", "Dispatch"])
def test_dso_a_cannot_read_or_write_dso_b_ev_data(pki: Pki, agg: tuple[Served, Path], method: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    served, log_path = agg
    requests = {"GetEnvelope": _agg.EnvelopeRequest(key=_key("dso1-steal")),
                "Dispatch": _agg.DispatchRequest(key=_key("dso1-steal"))}
    with caplog.at_level("WARNING", logger="gridcoord.security"), \
            _channel(served.port, "agg-dso2", pki.ca_pem, pki.pair("dso1")) as ch:
        code = _code(getattr(aggregator_pb2_grpc.AggregatorServiceStub(ch), method), requests[method])
    assert code == grpc.StatusCode.PERMISSION_DENIED
    event = _events(log_path)[-1]
    assert event["identity"] == "dso1" and event["server"] == "agg-dso2"
    assert event["method"] == f"/gridcoord.v1.AggregatorService/{method}" and event["status"] == "PERMISSION_DENIED"
    assert event["peer"].startswith("ipv4:127.0.0.1:") and event["tls"] in ("TLSv1.2", "TLSv1.3")
    assert event["time"].endswith("Z") and dt.datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
    assert "'dso2'" in event["reason"]
    assert any("refused" in r.getMessage() and "dso1" in r.getMessage() for r in caplog.records)


def test_own_dso_gets_its_envelope_through_the_dso_link(pki: Pki, agg: tuple[Served, Path]) -> None:
    """The DSO's AggregatorLink (dso/service.py) over mTLS: dso2 reads agg-dso2; dso1 with the same code is refused."""
    served, log_path = agg
    address = f"127.0.0.1:{served.port}"
    env = AggregatorLink("agg-dso2", address, "dso2-link", tls=TlsIdentity(str(pki.dir), "dso2")).envelope()
    assert env is not None
    with pytest.raises(RemoteError, match="PERMISSION_DENIED"):
        AggregatorLink("agg-dso2", address, "dso1-link", tls=TlsIdentity(str(pki.dir), "dso1")).envelope()
    with _channel(served.port, "agg-dso2", pki.ca_pem, pki.pair("orchestrator")) as ch:
        code = _code(aggregator_pb2_grpc.AggregatorServiceStub(ch).GetEnvelope, _agg.EnvelopeRequest(key=_key("o")))
    assert code == grpc.StatusCode.PERMISSION_DENIED  # the orchestrator never needs a DSO's EV envelopes
    assert _events(log_path)[-1]["identity"] == "orchestrator"


def test_reservations_orchestrator_and_clients_only(pki: Pki, agg: tuple[Served, Path]) -> None:
    served, _ = agg
    for who, allowed in (("client-1", True), ("orchestrator", True), ("dso2", False), ("tso", False)):
        with _channel(served.port, "agg-dso2", pki.ca_pem, pki.pair(who)) as ch:
            code = _code(aggregator_pb2_grpc.AggregatorServiceStub(ch).Reserve, _agg.ReservationRequest())
        assert (code != grpc.StatusCode.PERMISSION_DENIED) == allowed, (who, code)
        assert code != grpc.StatusCode.UNAUTHENTICATED, who


def test_only_the_identity_that_booked_may_amend_or_cancel(pki: Pki, tmp_path: Path) -> None:
    """A booking's owner is the client certificate that made it (journaled); another identity's Amend or Cancel
    is PERMISSION_DENIED naming both, and the booking stands (also after a restart from the journal)."""
    from aggregator.fleet import Station
    from aggregator.service import AggregatorServicer

    journal = tmp_path / "agg-dso2.reservations.sqlite"
    intruder = certs.issue(pki.ca, "client-2", "client")
    ev: dict[str, Any] = dict(ev_id="own-1", arrival_h=8.0, departure_h=12.0, energy_need_kwh=10.0, capacity_kwh=60.0,
              soc_arrival_kwh=5.0, p_charge_kw=7.0, p_discharge_kw=0.0, efficiency=1.0, station="s1")

    def serve() -> Served:
        servicer = AggregatorServicer("agg-dso2", [], [Station("s1", 2, 50.0)], 1.0, 24, journal_path=journal)
        interceptor = AuthorizationInterceptor("agg-dso2", gtls.participants(operators(load_case(CASE))),
                                               SecurityLog(None))
        served = start_server([servicer.register], ["gridcoord.v1.AggregatorService"], "127.0.0.1:0",
                              credentials=gtls.server_credentials(TlsIdentity(str(pki.dir), "agg-dso2")),
                              interceptors=[interceptor])
        served.set_serving(True)
        return served

    def stub(port: int, pair: tuple[bytes, bytes]) -> tuple[grpc.Channel, aggregator_pb2_grpc.AggregatorServiceStub]:
        ch = _channel(port, "agg-dso2", pki.ca_pem, pair)
        return ch, aggregator_pb2_grpc.AggregatorServiceStub(ch)

    served = serve()
    owner_ch, owner = stub(served.port, pki.pair("client-1"))
    other_ch, other = stub(served.port, (intruder.key_pem(), intruder.cert_pem()))
    try:
        booked = owner.Reserve(_agg.ReservationRequest(**ev), timeout=10)
        assert booked.accepted and booked.booking
        for call, req in ((other.Amend, _agg.ReservationRequest(**(ev | {"energy_need_kwh": 20.0}))),
                          (other.Cancel, _agg.CancelRequest(ev_id="own-1"))):
            with pytest.raises(grpc.RpcError) as err:
                call(req, timeout=10)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "booked by identity 'client-1'; identity 'client-2' may not change it" in str(err.value.details())
    finally:
        owner_ch.close()
        other_ch.close()
        served.stop(0)
    served = serve()  # restarted from the journal: the owner is remembered
    owner_ch, owner = stub(served.port, pki.pair("client-1"))
    other_ch, other = stub(served.port, (intruder.key_pem(), intruder.cert_pem()))
    try:
        with pytest.raises(grpc.RpcError) as err:
            other.Cancel(_agg.CancelRequest(ev_id="own-1"), timeout=10)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        amended = owner.Amend(_agg.ReservationRequest(**(ev | {"energy_need_kwh": 12.0})), timeout=10)
        assert amended.accepted and amended.booking == booked.booking  # the restarted service kept the token
        assert owner.Cancel(_agg.CancelRequest(ev_id="own-1", booking=booked.booking), timeout=10).cancelled
    finally:
        owner_ch.close()
        other_ch.close()
        served.stop(0)


@pytest.mark.parametrize(("identity", "role", "why"), [
    ("dso9", "dso", "not a participant"),
    ("dso1", "orchestrator", "certificate says 'orchestrator'"),  # a DSO's id with the orchestrator's role
    ("tso", "dso", "certificate says 'dso'"),
])
def test_unknown_identity_from_the_trial_ca_is_unauthenticated(pki: Pki, tso: tuple[Served, CountingTso, Path],
                                                               identity: str, role: str, why: str) -> None:
    served, servicer, log_path = tso
    n = len(servicer.calls)
    rogue = certs.issue(pki.ca, identity, role)
    with _channel(served.port, "tso", pki.ca_pem, (rogue.key_pem(), rogue.cert_pem())) as ch:
        code = _code(tso_pb2_grpc.TsoServiceStub(ch).Describe, common_pb2.DescribeRequest(key=_key("rogue")))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert len(servicer.calls) == n
    event = _events(log_path)[-1]
    assert (event["identity"], event["status"]) == (identity, "UNAUTHENTICATED") and why in event["reason"]


def test_health_is_open_to_any_authenticated_peer(pki: Pki, tso: tuple[Served, CountingTso, Path]) -> None:
    served, _, _ = tso
    rogue = certs.issue(pki.ca, "dso9", "dso")
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with _channel(served.port, "tso", pki.ca_pem, (rogue.key_pem(), rogue.cert_pem())) as ch:
        reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert gtls.main(["health", f"127.0.0.1:{served.port}", "--tls-dir", str(pki.dir), "--id", "orchestrator",
                      "--target", "tso"]) == 0
    assert gtls.main(["health", f"127.0.0.1:{served.port}", "--tls-dir", str(pki.dir), "--id", "tso"]) == 0
    assert gtls.main(["health", f"127.0.0.1:{served.port}", "--tls-dir", str(pki.dir), "--id", "dso1"]) == 1


# --------------------------------------------------------------------------------------------------
# CLI and library defaults: plaintext only when asked for


def test_serve_and_run_need_tls_dir_or_insecure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "aggregator", "--id", "agg-dso1", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "--tls-dir" in err and "--insecure" in err and "Traceback" not in err
    assert main(["serve", "aggregator", "--id", "agg-dso1", "--port", "0", "--insecure", "--tls-dir", "x"]) == 2
    services = tmp_path / "services.yaml"
    services.write_text("tso: 127.0.0.1:1\ndso1: 127.0.0.1:1\ndso2: 127.0.0.1:1\ndso3: 127.0.0.1:1\n")
    capsys.readouterr()
    assert main(["run", "--strategy", "admm", "--services", str(services), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--tls-dir" in err and "--insecure" in err
    assert main(["run", "--strategy", "admm", "--services", str(services), "--tls-dir", str(tmp_path)]) == 2
    assert "orchestrator.pem" in capsys.readouterr().err  # the trial directory lacks the orchestrator's files
    assert main(["run", "--strategy", "centralized", "--insecure"]) == 2
    assert not (tmp_path / "o").exists()


def test_remote_system_needs_tls_or_insecure(pki: Pki) -> None:
    spec = load_case(CASE)
    services = {oid: "127.0.0.1:1" for _, oid in operators(spec)}
    with pytest.raises(ValueError, match="insecure=True"):
        ServicesSystem(spec, services, "r")
    with pytest.raises(ValueError, match="not both"):
        ServicesSystem(spec, services, "r", tls=TlsIdentity(str(pki.dir), "orchestrator"), insecure=True)
    remote = ServicesSystem(spec, services, "r", tls=TlsIdentity(str(pki.dir), "orchestrator"))
    assert all(args[-2] == remote.tls for _, args in remote.subspaces("CLARABEL", ac_check=True).factories)
    with pytest.raises(ValueError, match="--tls-dir"):
        start_operator(ServeOptions(case=CASE, role="aggregator", operator_id="agg-dso1", port=0))
