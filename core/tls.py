"""Mutual TLS and identity-bound authorization for every gridcoord service.

Transport: every server requires a client certificate from the trial CA
(``grpc.ssl_server_credentials(..., require_client_auth=True)``); gRPC core negotiates TLS 1.2 or 1.3
only. A client names the operator it means to reach (``grpc.ssl_target_name_override`` = operator id),
so a server whose certificate does not carry that id in its SAN is refused at the handshake, whatever
address the services file gave.

Authorization: :class:`AuthorizationInterceptor` reads the caller's certificate from
``context.auth_context()`` (never a request field or metadata) and applies :data:`POLICY`, one row per
RPC of every service. A certificate whose identity (CN) and role (OU) are not a participant of the case
is UNAUTHENTICATED; a participant calling a method it may not call is PERMISSION_DENIED. Every refusal
is one JSON line in the security-event log and a WARNING on the ``gridcoord.security`` logger.

Directory layout (``gridcoord certs --out DIR``): ``DIR/ca.pem`` and, per participant, ``DIR/ID.pem`` +
``DIR/ID.key``. A process needs only ``ca.pem`` and its own pair.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.x509.oid import NameOID

from core.rpc import is_serving

log = logging.getLogger("gridcoord.security")

ORCHESTRATOR = "orchestrator"  # the orchestrator's identity and role
CLIENT = "client"  # role of EV-booking clients (``gridcoord certs --clients N``)

# Who may call a method. A rule is matched against the caller's (identity, role) and the server's id.
ANY = "any-participant"  # every identity of the case, the orchestrator, clients
THE_ORCHESTRATOR = "orchestrator"  # the orchestrator role: it alone starts rounds
OWN_DSO = "own-dso"  # on agg-<dso>: the DSO <dso> itself, no other
CLIENTS = "clients"  # role client

_TSO, _DSO, _AGG = "/gridcoord.v1.TsoService/", "/gridcoord.v1.DsoService/", "/gridcoord.v1.AggregatorService/"
_TNO = "/gridcoord.v1.TransportService/"

#: The authorization table: full method name -> rules, any of which admits the caller. Deny by default:
#: a method of a gridcoord service missing here is PERMISSION_DENIED (tests/test_tls.py checks that every
#: RPC in the proto descriptors has a row). Reserve, Amend, Cancel: the orchestrator (it runs the trial) and
#: EV-booking clients; DSOs never book reservations on an aggregator. ListReservations (every booked EV: private
#: fleet data) only the orchestrator, as the trial's auditor. The orchestrator never reads or writes an
#: aggregator's envelopes: only the aggregator's own DSO does (DSO-A cannot act on DSO-B's EV data). The TNO's
#: Respond (station prices in, station arrival envelopes out: one round of the TNO-DNO loop) only the orchestrator.
POLICY: dict[str, tuple[str, ...]] = {
    _TSO + "Describe": (ANY,),
    _TSO + "Evaluate": (THE_ORCHESTRATOR,),
    _TSO + "Optimize": (THE_ORCHESTRATOR,),
    _TSO + "Respond": (THE_ORCHESTRATOR,),
    _TSO + "Prox": (THE_ORCHESTRATOR,),
    _TSO + "Report": (THE_ORCHESTRATOR,),
    _TSO + "Merge": (THE_ORCHESTRATOR,),
    _DSO + "Describe": (ANY,),
    _DSO + "Evaluate": (THE_ORCHESTRATOR,),
    _DSO + "Optimize": (THE_ORCHESTRATOR,),
    _DSO + "Respond": (THE_ORCHESTRATOR,),
    _DSO + "Prox": (THE_ORCHESTRATOR,),
    _DSO + "Report": (THE_ORCHESTRATOR,),
    _DSO + "Forecast": (THE_ORCHESTRATOR,),
    _DSO + "Dispatch": (THE_ORCHESTRATOR,),
    _DSO + "Redispatch": (THE_ORCHESTRATOR,),
    _AGG + "Describe": (ANY,),
    _AGG + "GetEnvelope": (OWN_DSO,),
    _AGG + "Dispatch": (OWN_DSO,),
    _AGG + "PublishTariff": (OWN_DSO,),
    _AGG + "Redispatch": (OWN_DSO,),
    _AGG + "Reserve": (THE_ORCHESTRATOR, CLIENTS),
    _AGG + "ListReservations": (THE_ORCHESTRATOR,),
    _AGG + "Amend": (THE_ORCHESTRATOR, CLIENTS),
    _AGG + "Cancel": (THE_ORCHESTRATOR, CLIENTS),
    _TNO + "Describe": (ANY,),
    _TNO + "Respond": (THE_ORCHESTRATOR,),
}
#: Services open to any peer that passed the mTLS handshake (a certificate of the trial CA).
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/",
                 "/grpc.reflection.v1.ServerReflection/")


class TlsConfigError(ValueError):
    """A TLS directory, key or certificate is missing or unusable; the message names the path."""


# --------------------------------------------------------------------------------------------------
# credentials


@dataclass(frozen=True)
class TlsIdentity:
    """Where a process finds the trial CA and its own key pair: ``tls_dir/ca.pem``, ``tls_dir/ID.pem|.key``.

    Picklable (paths only, never key bytes), so a Ray worker re-reads the files on its own node."""

    tls_dir: str
    identity: str

    @property
    def ca_path(self) -> Path:
        return Path(self.tls_dir) / "ca.pem"

    @property
    def cert_path(self) -> Path:
        return Path(self.tls_dir) / f"{self.identity}.pem"

    @property
    def key_path(self) -> Path:
        return Path(self.tls_dir) / f"{self.identity}.key"

    def read(self) -> tuple[bytes, bytes, bytes]:
        """(ca.pem, ID.pem, ID.key) as bytes; refuses missing files, a certificate of another identity, or
        one outside its validity period (the peers would refuse it at the handshake with a vaguer error)."""
        return _read_identity(self.tls_dir, self.identity)

    def check(self) -> TlsIdentity:
        self.read()
        return self


def _read_identity(tls_dir: str, identity: str) -> tuple[bytes, bytes, bytes]:
    d = Path(tls_dir)
    if not d.is_dir():
        raise TlsConfigError(f"--tls-dir {tls_dir!r} is not a directory (create one with `gridcoord certs`)")
    out = []
    for p in (d / "ca.pem", d / f"{identity}.pem", d / f"{identity}.key"):
        try:
            out.append(p.read_bytes())
        except OSError as exc:
            raise TlsConfigError(f"{p}: cannot read ({exc.strerror or exc}); identity {identity!r} needs ca.pem, "
                                 f"{identity}.pem and {identity}.key in {tls_dir}") from None
    try:
        cert = x509.load_pem_x509_certificate(out[1])
        x509.load_pem_x509_certificate(out[0])
    except ValueError as exc:
        raise TlsConfigError(f"{d / (identity + '.pem')} or {d / 'ca.pem'}: not a PEM certificate ({exc})") from None
    cn = _attr(cert.subject, NameOID.COMMON_NAME)
    if cn != identity:
        raise TlsConfigError(f"{d / (identity + '.pem')}: certificate is for {cn!r}, not {identity!r}")
    now = dt.datetime.now(dt.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise TlsConfigError(f"{d / (identity + '.pem')}: valid {cert.not_valid_before_utc:%Y-%m-%d %H:%M} to "
                             f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, not now (issue new certificates)")
    return out[0], out[1], out[2]


def server_credentials(tls: TlsIdentity) -> grpc.ServerCredentials:
    """Server side of mTLS: present ``tls.identity``'s certificate, require a client certificate of the CA."""
    ca, cert, key = tls.read()
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)


def channel_credentials(tls: TlsIdentity) -> grpc.ChannelCredentials:
    ca, cert, key = tls.read()
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


def target_options(target_id: str) -> list[tuple[str, str]]:
    """Check the server's certificate against the operator id (its SAN), not against the host in the address."""
    return [("grpc.ssl_target_name_override", target_id)]


def channel(address: str, tls: TlsIdentity | None, target_id: str) -> grpc.Channel:
    """A channel to operator ``target_id`` at ``address``: mTLS when ``tls`` is given, else plaintext."""
    if tls is None:
        return grpc.insecure_channel(address)
    return grpc.secure_channel(address, channel_credentials(tls), options=target_options(target_id))


# --------------------------------------------------------------------------------------------------
# identity of the peer


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    vals = name.get_attributes_for_oid(oid)
    return str(vals[0].value) if vals else None


@dataclass(frozen=True)
class Peer:
    """What the peer's certificate says (CN, OU, SAN DNS names) and how it connected."""

    identity: str | None
    role: str | None
    dns_names: tuple[str, ...]
    address: str
    tls_version: str | None


@lru_cache(maxsize=256)
def _parse_cert(pem: bytes) -> tuple[str | None, str | None, tuple[str, ...]]:
    cert = x509.load_pem_x509_certificate(pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns = ()
    return _attr(cert.subject, NameOID.COMMON_NAME), _attr(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME), dns


def peer_of(context: grpc.ServicerContext) -> Peer:
    """The caller as its certificate (verified by gRPC core against the trial CA) describes it."""
    auth = context.auth_context() or {}
    version = (auth.get("ssl_tls_version") or [b""])[0].decode() or None
    pem = (auth.get("x509_pem_cert") or [None])[0]
    if pem is None:
        return Peer(None, None, (), context.peer(), version)
    cn, ou, dns = _parse_cert(pem)
    return Peer(cn, ou, dns, context.peer(), version)


def participants(operators: Sequence[tuple[str, str]]) -> dict[str, str]:
    """identity -> role of everyone in a trial: the case's operators ((role, id) pairs) and the orchestrator."""
    out = {oid: role for role, oid in operators}
    out[ORCHESTRATOR] = ORCHESTRATOR
    return out


def authorize(method: str, peer: Peer, server_id: str, known: Mapping[str, str]) -> tuple[grpc.StatusCode, str] | None:
    """None if ``peer`` may call ``method`` on ``server_id``, else (status, reason). Pure: the policy in one place."""
    if method.startswith(OPEN_PREFIXES):
        return None
    if peer.identity is None:
        return grpc.StatusCode.UNAUTHENTICATED, "no client certificate"
    if peer.identity not in peer.dns_names:
        return grpc.StatusCode.UNAUTHENTICATED, f"certificate CN {peer.identity!r} is not among its SAN DNS names"
    if peer.role == CLIENT:
        pass  # EV-booking clients are not operators of the case; any the trial CA issued is a participant
    elif peer.identity not in known:
        return grpc.StatusCode.UNAUTHENTICATED, f"identity {peer.identity!r} is not a participant of this trial"
    elif known[peer.identity] != peer.role:
        return (grpc.StatusCode.UNAUTHENTICATED,
                f"identity {peer.identity!r} has role {known[peer.identity]!r} in the case, certificate says "
                f"{peer.role!r}")
    rules = POLICY.get(method)
    if rules is None:
        return grpc.StatusCode.PERMISSION_DENIED, f"{method} has no authorization rule (deny by default)"
    for rule in rules:
        if rule == ANY:
            return None
        if rule == THE_ORCHESTRATOR and peer.role == ORCHESTRATOR:
            return None
        if rule == CLIENTS and peer.role == CLIENT:
            return None
        if rule == OWN_DSO and peer.role == "dso" and server_id == f"agg-{peer.identity}":
            return None
    who = {ANY: "any participant", THE_ORCHESTRATOR: "the orchestrator", CLIENTS: "EV-booking clients",
           OWN_DSO: f"DSO {server_id.removeprefix('agg-')!r} (its own DSO)"}
    allowed = " or ".join(who[r] for r in rules)
    return (grpc.StatusCode.PERMISSION_DENIED,
            f"{peer.role} {peer.identity!r} may not call {method.rsplit('/', 1)[-1]} on {server_id!r}: only {allowed}")


# --------------------------------------------------------------------------------------------------
# security-event log


class SecurityLog:
    """Append-only JSON lines, one per refused call; also a WARNING on the ``gridcoord.security`` logger."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch(exist_ok=True)

    def event(self, *, server: str, peer: Peer, method: str, status: grpc.StatusCode, reason: str) -> dict[str, Any]:
        record = {"time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                  "server": server, "peer": peer.address, "identity": peer.identity, "role": peer.role,
                  "tls": peer.tls_version, "method": method, "status": status.name, "reason": reason}
        line = json.dumps(record, sort_keys=False)
        log.warning("refused: %s", line)
        if self.path is not None:
            with self._lock, open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        return record


# --------------------------------------------------------------------------------------------------
# interceptor


def _wrap(handler: grpc.RpcMethodHandler, check: Callable[[grpc.ServicerContext], None]) -> grpc.RpcMethodHandler:
    """The same handler with ``check(context)`` run first (it aborts the call when the caller is refused)."""

    def guard(fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(request: Any, context: grpc.ServicerContext) -> Any:
            check(context)
            return fn(request, context)

        return run

    kw = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(guard(handler.unary_unary), **kw)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(guard(handler.unary_stream), **kw)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(guard(handler.stream_unary), **kw)
    return grpc.stream_stream_rpc_method_handler(guard(handler.stream_stream), **kw)


class AuthorizationInterceptor(grpc.ServerInterceptor):
    """Applies :data:`POLICY` to every call before the servicer runs; refusals go to ``security_log``."""

    def __init__(self, server_id: str, known: Mapping[str, str], security_log: SecurityLog) -> None:
        self.server_id = server_id
        self.known = dict(known)
        self.security_log = security_log

    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
                          handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler

        def check(context: grpc.ServicerContext) -> None:
            peer = peer_of(context)
            refusal = authorize(method, peer, self.server_id, self.known)
            if refusal is not None:
                code, reason = refusal
                self.security_log.event(server=self.server_id, peer=peer, method=method, status=code, reason=reason)
                context.abort(code, reason)

        return _wrap(handler, check)


# --------------------------------------------------------------------------------------------------
# health probe with a certificate (Kubernetes grpc probes and plain health checkers cannot present one)


def probe(address: str, tls: TlsIdentity | None, target_id: str, deadline_s: float = 4.0) -> bool:
    """True when the server at ``address`` answers SERVING on grpc.health.v1 over mTLS as ``tls.identity``."""
    with channel(address, tls, target_id) as ch:
        return is_serving(ch, deadline_s)


def sole_identity(tls_dir: str) -> str:
    """The one identity whose ``ID.pem`` lies in ``tls_dir`` besides ``ca.pem`` (an operator's mounted secret)."""
    ids = sorted(p.stem for p in Path(tls_dir).glob("*.pem") if p.name != "ca.pem")
    if len(ids) != 1:
        raise TlsConfigError(f"{tls_dir}: expected exactly one ID.pem besides ca.pem, found {ids or 'none'}; "
                             f"give --id")
    return ids[0]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m core.tls health ADDRESS --tls-dir DIR [--id ID]``: exit 0 when SERVING, else 1."""
    p = argparse.ArgumentParser(prog="python -m core.tls", description=main.__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    h = sub.add_parser("health", help="grpc.health.v1 check over mTLS (container and pod probes)")
    h.add_argument("address", help="host:port")
    h.add_argument("--tls-dir", required=True)
    h.add_argument("--id", default=None, help="identity whose certificate is presented (and expected on the server); "
                   "default: the only ID.pem in --tls-dir")
    h.add_argument("--target", default=None, help="operator id the server must prove (default: --id)")
    h.add_argument("--deadline-s", type=float, default=4.0)
    args = p.parse_args(argv)
    try:
        tls = TlsIdentity(args.tls_dir, args.id or sole_identity(args.tls_dir)).check()
    except TlsConfigError as exc:
        print(f"core.tls: error: {exc}", file=sys.stderr)
        return 2
    ok = probe(args.address, tls, args.target or tls.identity, args.deadline_s)
    print("SERVING" if ok else "NOT SERVING")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
