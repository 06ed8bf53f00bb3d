"""Operator processes: ``gridcoord serve tso|dso|aggregator`` and ``gridcoord operators``.

This is the composition root of an operator process: it reads the operator's own part of the case,
starts its gRPC server (health NOT_SERVING), builds the model (a DSO first asks its aggregator service
for the EV envelopes), then reports SERVING. The operator packages themselves never import the
orchestrator; only this entry point wires them to the case file and to their peers.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dso.model import EvFlexibility, FeederDispatch, FeederInputs
from gridcoord import convert
from gridcoord.rpc import Served, call, start_server, stop_on_sigterm, wait_serving
from gridcoord.tls import (
    AuthorizationInterceptor,
    SecurityLog,
    TlsIdentity,
    channel_credentials,
    participants,
    server_credentials,
)
from gridcoord.tls import channel as tls_channel
from gridcoord.v1 import aggregator_pb2, aggregator_pb2_grpc, common_pb2
from orchestrator.case import CaseSpec, load_case
from orchestrator.remote import load_services, require
from orchestrator.system import operator_aggregator, operator_dso, operator_tso, to_dso_flexibility

log = logging.getLogger("gridcoord.serve")
ROLES = ("tso", "dso", "aggregator")
#: how long a DSO waits for its aggregator service to come back after it died [s] (below the orchestrator's
#: 120 s Report deadline, so a DSO answers with a clear error before the orchestrator gives up on it)
AGGREGATOR_RECOVERY_S = 60.0


def operators(spec: CaseSpec) -> list[tuple[str, str]]:
    """(role, operator id) of every operator of a case: the TSO, each DSO, each DSO's EV aggregator."""
    out = [("tso", "tso")]
    for f in spec.feeders:
        out.append(("dso", f.feeder_id))
    for f in spec.feeders:
        out.append(("aggregator", aggregator_id(f.feeder_id)))
    return out


def aggregator_id(feeder_id: str) -> str:
    return f"agg-{feeder_id}"


@dataclass(frozen=True)
class ServeOptions:
    case: str
    role: str
    operator_id: str
    port: int
    host: str = "127.0.0.1"
    services_file: str | None = None
    reflection: bool = False
    ac_check: bool = True
    solver: str = "CLARABEL"
    #: mTLS: ``tls_dir`` holds ca.pem and this operator's ID.pem/ID.key; plaintext only with ``insecure``
    tls_dir: str | None = None
    insecure: bool = False
    #: security-event log (JSON lines, one per refused call); default ``security-ID.jsonl`` in the working dir
    security_log: str | None = None
    #: aggregator: keep the reservation book in ``state_dir/ID.reservations.sqlite`` (survives a restart)
    state_dir: str | None = None

    def transport(self) -> TlsIdentity | None:
        """This operator's TLS identity, or None for an explicit plaintext server; refuses neither/both."""
        if (self.tls_dir is None) == (not self.insecure):
            raise ValueError("serve: give --tls-dir DIR (mTLS, certificates from `gridcoord certs`) or --insecure "
                             "(plaintext, local development only), not both or neither")
        return TlsIdentity(self.tls_dir, self.operator_id).check() if self.tls_dir is not None else None


class AggregatorLink:
    """A DSO's channel to its own aggregator service (envelopes in, dispatch out)."""

    def __init__(self, operator_id: str, address: str, run_id: str,
                 recovery_s: float | None = AGGREGATOR_RECOVERY_S, tls: TlsIdentity | None = None) -> None:
        self.operator_id, self.address, self.run_id = operator_id, address, run_id
        #: how long a call waits for a restarted aggregator to come back [s] (None: 4 quick retries)
        self.recovery_s = recovery_s
        #: the DSO's own certificate; the aggregator must prove it is ``operator_id`` (its SAN)
        self.tls = tls
        self.channel = tls_channel(address, tls, operator_id)
        self.stub = aggregator_pb2_grpc.AggregatorServiceStub(self.channel)
        self.round = 0

    def _key(self) -> common_pb2.RunKey:
        self.round += 1
        return convert.run_key(self.run_id, self.round)

    def envelope(self) -> EvFlexibility:
        wait_serving(self.address, deadline_s=120.0,
                     credentials=channel_credentials(self.tls) if self.tls else None, target_name=self.operator_id)
        msg = call(self.operator_id, "GetEnvelope", self.stub.GetEnvelope,
                   aggregator_pb2.EnvelopeRequest(key=self._key()), deadline_s=30.0, idempotent_call=True,
                   recovery_s=self.recovery_s, channel=self.channel)
        env = convert.envelope_from_proto(msg)
        return to_dso_flexibility(env, station_limits_mw=dict(zip(env.stations, env.station_p_max_mw.tolist(),
                                                                      strict=True)))

    def unmet_mwh(self, dispatch: FeederDispatch, price: np.ndarray) -> float:
        req = aggregator_pb2.DispatchRequest(key=self._key(), p_ch_mw=np.asarray(dispatch.ev_p_ch_mw).tolist(),
                                             p_dis_mw=np.asarray(dispatch.ev_p_dis_mw).tolist(),
                                             alloc_share=np.asarray(dispatch.ev_alloc_share).tolist(),
                                             dlmp_usd_per_mwh=np.asarray(dispatch.dlmp_usd_per_mwh).ravel().tolist())
        msg = call(self.operator_id, "Dispatch", self.stub.Dispatch, req, deadline_s=60.0, idempotent_call=True,
                   recovery_s=self.recovery_s, channel=self.channel)
        return float(msg.unmet_mwh)


def _build_in_background(served: Served, build: Callable[[], None], what: str) -> None:
    def run() -> None:
        try:
            build()
        except Exception:  # noqa: BLE001 - stays NOT_SERVING; the cause is logged for the operator
            log.exception("%s: building the model failed; staying NOT_SERVING", what)
            return
        served.set_serving(True)
        log.info("%s: SERVING on port %d", what, served.port)

    threading.Thread(target=run, name=f"build-{what}", daemon=True).start()


def start_operator(opts: ServeOptions) -> Served:
    """Start one operator's server and build its model in the background (SERVING when done)."""
    from dso.service import SERVICE_NAME as DSO_SERVICE
    from dso.service import DsoServicer
    from tso.service import SERVICE_NAME as TSO_SERVICE
    from tso.service import TsoServicer

    spec = load_case(opts.case)
    known = dict((oid, role) for role, oid in operators(spec))
    if known.get(opts.operator_id) != opts.role:
        listed = ", ".join(f"{r} {o}" for r, o in operators(spec))
        raise ValueError(f"case '{spec.name}' has no {opts.role} {opts.operator_id!r} (operators: {listed})")
    tls = opts.transport()
    secure: dict[str, Any] = {}
    if tls is not None:  # every call is authorized from the caller's certificate before a servicer sees it
        events = SecurityLog(opts.security_log or f"security-{opts.operator_id}.jsonl")
        secure = {"credentials": server_credentials(tls),
                  "interceptors": [AuthorizationInterceptor(opts.operator_id, participants(operators(spec)), events)]}
        log.info("%s: mTLS with %s; security events to %s", opts.operator_id, tls.cert_path, events.path)
    else:
        log.warning("%s: PLAINTEXT (--insecure): no authentication, no authorization; local development only",
                    opts.operator_id)
    services = load_services(opts.services_file) if opts.services_file else {}
    address = f"{opts.host}:{opts.port}"
    T, dt = spec.periods, spec.dt_h
    ids = tuple(f.feeder_id for f in spec.feeders)

    if opts.role == "tso":
        servicer = TsoServicer(opts.operator_id, ids, T, dt)
        served = start_server([servicer.register], [TSO_SERVICE], address, reflection=opts.reflection, **secure)

        def build_tso() -> None:
            from tso.subspace import TsoSubspace

            data, inputs = operator_tso(spec)
            servicer.attach(TsoSubspace(data, inputs, losses=spec.transmission.losses, solver=opts.solver))

        _build_in_background(served, build_tso, opts.operator_id)
        return served

    if opts.role == "dso":
        k = ids.index(opts.operator_id)
        dso = DsoServicer(opts.operator_id, T, dt, n_global=len(ids) * T)
        dso.ac_check = opts.ac_check
        served = start_server([dso.register], [DSO_SERVICE], address, reflection=opts.reflection, **secure)

        def build_dso() -> None:
            from dso.subspace import DsoSubspace

            data, common = operator_dso(spec, opts.operator_id)
            # one run id per DSO process: a restarted DSO numbers its exchanges from 1 again, which the
            # aggregator's ledger would refuse (or answer from its cache) under the previous process's id
            agg = AggregatorLink(aggregator_id(opts.operator_id), require(services, aggregator_id(opts.operator_id)),
                                 f"{opts.operator_id}-agg-{uuid.uuid4().hex[:8]}", tls=tls)
            inputs = FeederInputs(**common, ev=agg.envelope(), ev_fixed_mw=np.zeros((data.n_nodes, T)))
            sub = DsoSubspace(data, inputs, np.arange(k * T, (k + 1) * T), solver=opts.solver)
            dso.attach_feeder(sub, data, inputs, agg.unmet_mwh)

        _build_in_background(served, build_dso, opts.operator_id)
        return served

    from aggregator.service import SERVICE_NAME as AGG_SERVICE
    from aggregator.service import AggregatorServicer

    feeder_id = opts.operator_id.removeprefix("agg-")
    fleet, stations = operator_aggregator(spec, feeder_id)
    journal = None if opts.state_dir is None else Path(opts.state_dir) / f"{opts.operator_id}.reservations.sqlite"
    agg_servicer = AggregatorServicer(opts.operator_id, fleet, stations, dt, T, journal_path=journal)
    served = start_server([agg_servicer.register], [AGG_SERVICE], address, reflection=opts.reflection, **secure)
    served.set_serving(True)
    return served


def serve_forever(opts: ServeOptions) -> int:
    """``gridcoord serve``: run until SIGTERM/SIGINT, then drain in-flight calls and exit 0."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    served = start_operator(opts)
    stop_on_sigterm(served)
    log.info("%s %s listening on %s:%d", opts.role, opts.operator_id, opts.host, served.port)
    served.stopped.wait()
    return 0
