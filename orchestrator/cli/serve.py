"""Operator processes: ``gridcoord serve tso|dso|aggregator|tno``.

This is the composition root of an operator process: it reads the operator's own part of the case,
starts its gRPC server (health NOT_SERVING), builds the model (a DSO first asks its aggregator service
for the EV envelopes), then reports SERVING. The operator packages themselves never import the
orchestrator; only this entry point wires them to the case file and to their peers.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.case import aggregator_id, load_case, operators
from core.peers import load_services, require
from core.privacy import PrivacyConfig
from core.rpc import Served, start_server, stop_on_sigterm
from core.tls import (
    AuthorizationInterceptor,
    SecurityLog,
    TlsIdentity,
    participants,
    server_credentials,
)
from tno.cases import CASE_NAME as TRANSPORT_CASE

if TYPE_CHECKING:
    from tno.network import TransportCase

log = logging.getLogger("gridcoord.serve")
ROLES = ("tso", "dso", "aggregator", "tno")


def case_operators(case: str) -> list[tuple[str, str]]:
    """(role, operator id) of every operator of a case: a grid case's TSO, DSOs and aggregators
    (core.case.operators), or the transport case's TNO (tno.cases.operators; a TNO is not part of the grid cases)."""
    if case == TRANSPORT_CASE:
        from tno.cases import operators as transport_operators

        return transport_operators()
    return operators(load_case(case))


@dataclass(frozen=True)
class ServeOptions:
    case: str
    role: str
    operator_id: str
    port: int
    host: str = "127.0.0.1"
    services_file: str | None = None
    reflection: bool = False
    #: aggregator: gRPC worker threads (reservations are GIL-bound: fewer threads contend less)
    workers: int = 8
    ac_check: bool = True
    solver: str = "CLARABEL"
    #: mTLS: ``tls_dir`` holds ca.pem and this operator's ID.pem/ID.key; plaintext only with ``insecure``
    tls_dir: str | None = None
    insecure: bool = False
    #: security-event log (JSON lines, one per refused call); default ``security-ID.jsonl`` in the working dir
    security_log: str | None = None
    #: aggregator: keep the reservation book in ``state_dir/ID.reservations.sqlite`` (survives a restart)
    state_dir: str | None = None
    #: DSO: send every coordination reply through the Gaussian mechanism (``--privacy dp``)
    privacy: PrivacyConfig | None = None
    #: DSO: its aggregator's reservations stay open this long after the tariff is published; then the DSO
    #: takes the envelopes (which closes the book) and builds its model (``--book-open-minutes``)
    book_open_minutes: float = 0.0
    #: DSO: or until this instant (``--book-closes-at``, Unix seconds): a DSO restarted after it does not wait
    book_closes_at: float | None = None
    #: once the model is built, move every object alive then out of the garbage collector's reach
    #: (``gc.freeze``; ``serve_forever`` sets it: a process of its own, not a test's)
    freeze_heap: bool = False

    def transport(self) -> TlsIdentity | None:
        """This operator's TLS identity, or None for an explicit plaintext server; refuses neither/both."""
        if (self.tls_dir is None) == (not self.insecure):
            raise ValueError("serve: give --tls-dir DIR (mTLS, certificates from `gridcoord certs`) or --insecure "
                             "(plaintext, local development only), not both or neither")
        return TlsIdentity(self.tls_dir, self.operator_id).check() if self.tls_dir is not None else None


def _secure(opts: ServeOptions, ops: list[tuple[str, str]]) -> dict[str, Any]:
    """``start_server`` keywords: mTLS credentials and the authorization interceptor over the case's participants
    (``ops`` and the orchestrator), or nothing for an explicit ``--insecure`` server (logged as a warning)."""
    tls = opts.transport()
    if tls is None:
        log.warning("%s: PLAINTEXT (--insecure): no authentication, no authorization; local development only",
                    opts.operator_id)
        return {}
    # every call is authorized from the caller's certificate before a servicer sees it
    events = SecurityLog(opts.security_log or f"security-{opts.operator_id}.jsonl")
    log.info("%s: mTLS with %s; security events to %s", opts.operator_id, tls.cert_path, events.path)
    return {"credentials": server_credentials(tls),
            "interceptors": [AuthorizationInterceptor(opts.operator_id, participants(ops), events)]}


def freeze_heap(what: str) -> None:
    """Collect once, then exempt every object alive now (modules, the case, the model, the booked fleet)
    from later collections (``gc.freeze``). A full collection scans every tracked object while holding the
    GIL: in the reservation benchmark's server one took 143 ms under load, stalling every call in flight;
    frozen, none ran during the load and the p99 latency fell from 247 to 128 ms (README, "Reservations
    at scale"). Objects created later are collected as before."""
    t0 = time.perf_counter()
    gc.collect()
    gc.freeze()
    log.info("%s: %d objects built at start-up exempted from garbage collection (%.0f ms)", what,
             gc.get_freeze_count(), 1e3 * (time.perf_counter() - t0))


class _Stopped(Exception):
    """The server stopped while the build waited (the book is left open: the envelopes were not taken)."""


def _build_in_background(served: Served, build: Callable[[], None], what: str, freeze: bool = False) -> None:
    def run() -> None:
        try:
            build()
        except _Stopped:
            log.info("%s: stopped before its model was built", what)
            return
        except Exception:  # noqa: BLE001 - stays NOT_SERVING; the cause is logged for the operator
            log.exception("%s: building the model failed; staying NOT_SERVING", what)
            return
        if freeze:
            freeze_heap(what)
        served.set_serving(True)
        log.info("%s: SERVING on port %d", what, served.port)

    threading.Thread(target=run, name=f"build-{what}", daemon=True).start()


def start_operator(opts: ServeOptions) -> Served:
    """Start one operator's server and build its model in the background (SERVING when done)."""
    from dso.service import SERVICE_NAME as DSO_SERVICE
    from dso.service import DsoServicer
    from tso.service import SERVICE_NAME as TSO_SERVICE
    from tso.service import TsoServicer

    if opts.role == "tno":
        return start_tno(opts)
    spec = load_case(opts.case)
    _require_operator(opts, spec.name, operators(spec))
    tls = opts.transport()
    secure = _secure(opts, operators(spec))
    services = load_services(opts.services_file) if opts.services_file else {}
    address = f"{opts.host}:{opts.port}"
    T, dt = spec.periods, spec.dt_h
    ids = tuple(f.feeder_id for f in spec.feeders)

    if not (math.isfinite(opts.book_open_minutes) and opts.book_open_minutes >= 0):
        raise ValueError(f"--book-open-minutes {opts.book_open_minutes:g}: must be a finite number >= 0")
    if opts.book_closes_at is not None and not math.isfinite(opts.book_closes_at):
        raise ValueError(f"--book-closes-at {opts.book_closes_at}: not a time")
    gate = opts.book_open_minutes > 0 or opts.book_closes_at is not None
    if gate and opts.role != "dso":
        raise ValueError(f"serve {opts.role}: --book-open-minutes / --book-closes-at are a DSO's (it closes its "
                         "aggregator's book when it takes the envelopes); drop them")
    if opts.book_open_minutes > 0 and opts.book_closes_at is not None:
        raise ValueError("--book-open-minutes and --book-closes-at: give one of them, not both")

    if opts.role == "tso":
        servicer = TsoServicer(opts.operator_id, ids, T, dt)
        served = start_server([servicer.register], [TSO_SERVICE], address, reflection=opts.reflection, **secure)

        def build_tso() -> None:
            from tso.inputs import from_case
            from tso.subspace import TsoSubspace

            data, inputs = from_case(spec)
            servicer.attach(TsoSubspace(data, inputs, losses=spec.transmission.losses, solver=opts.solver))

        _build_in_background(served, build_tso, opts.operator_id, opts.freeze_heap)
        return served

    if opts.role == "dso":
        k = ids.index(opts.operator_id)
        dso = DsoServicer(opts.operator_id, T, dt, n_global=len(ids) * T,
                          station_ids=tuple(s.station_id for s in spec.feeder(opts.operator_id).stations))
        if opts.privacy is not None:  # say it where the operator looks: its own log
            pc = opts.privacy
            log.info("%s: differential privacy: Gaussian mechanism on every coordination reply, epsilon %g at "
                     "delta %g over %d releases", opts.operator_id, pc.epsilon, pc.delta, pc.releases)
        served = start_server([dso.register], [DSO_SERVICE], address, reflection=opts.reflection, **secure)

        def build_dso() -> None:
            from core.tariff import tou_tariff
            from dso.inputs import feeder_data, feeder_inputs, net_load_forecast_mw
            from dso.service import AggregatorLink, TariffPublisher
            from dso.subspace import DsoSubspace

            data = feeder_data(spec, opts.operator_id)
            # one run id per DSO process: a restarted DSO numbers its exchanges from 1 again, which the
            # aggregator's ledger would refuse (or answer from its cache) under the previous process's id
            agg = AggregatorLink(aggregator_id(opts.operator_id), require(services, aggregator_id(opts.operator_id)),
                                 f"{opts.operator_id}-agg-{uuid.uuid4().hex[:8]}", tls=tls)
            prices = spec.feeder(opts.operator_id).tou_usd_per_mwh
            if prices is not None:  # before the envelopes: fetching them closes the aggregator's book
                tariff = tou_tariff(net_load_forecast_mw(spec, opts.operator_id, data), *prices)
                TariffPublisher(opts.operator_id, agg, tariff).start()
            if gate:  # M minutes count from here, after the tariff went out
                closes_at = opts.book_closes_at
                _hold_book_open(dso, served, closes_at if closes_at is not None
                                else time.time() + 60.0 * opts.book_open_minutes)
            inputs = feeder_inputs(spec, opts.operator_id, data, agg.envelope())
            dso.waiting_for = None
            dso.aggregator = agg
            dso.attach(DsoSubspace(data, inputs, np.arange(k * T, (k + 1) * T), solver=opts.solver, settle=agg,
                                   ac_check=opts.ac_check, privacy=opts.privacy))

        _build_in_background(served, build_dso, opts.operator_id, opts.freeze_heap)
        return served

    from aggregator.inputs import fleet_from_case, stations_from_case
    from aggregator.service import SERVICE_NAME as AGG_SERVICE
    from aggregator.service import AggregatorServicer
    from dso.inputs import feeder_data, station_distance_ohm

    feeder_id = opts.operator_id.removeprefix("agg-")
    stations = stations_from_case(spec, feeder_id)
    # EVs may use nearby stations: "near" is the feeder path resistance, a public fact about the feeder the
    # aggregator's stations sit on (computed here by the composition root, not by the aggregator package)
    distance = station_distance_ohm(feeder_data(spec, feeder_id), np.array([st.node for st in stations]))
    fleet = fleet_from_case(spec, feeder_id, distance if stations else None)
    journal = None if opts.state_dir is None else Path(opts.state_dir) / f"{opts.operator_id}.reservations.sqlite"
    agg_servicer = AggregatorServicer(opts.operator_id, fleet, stations, dt, T, journal_path=journal)
    served = start_server([agg_servicer.register], [AGG_SERVICE], address, reflection=opts.reflection,
                          workers=opts.workers, **secure)
    if opts.freeze_heap:
        freeze_heap(opts.operator_id)
    served.set_serving(True)
    return served


def _hold_book_open(dso: Any, served: Served, closes_at: float) -> None:
    """Wait until ``closes_at`` (Unix seconds) before the DSO takes its aggregator's envelopes (owners reserve,
    amend and cancel meanwhile); callers of the DSO are told until when. A gate already past does not wait.
    ``_Stopped`` if the server stops first (the envelopes are then never taken, so the book stays open)."""
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(closes_at))
    if closes_at <= time.time():
        log.info("%s: the book's gate (%s) has passed; taking the envelopes", dso.operator_id, when)
        return
    dso.waiting_for = f"its aggregator's reservations are open until {when}; the book closes then"
    log.info("%s: reservations open until %s; the book closes then", dso.operator_id, when)
    if served.stopped.wait(max(closes_at - time.time(), 0.0)):
        raise _Stopped
    log.info("%s: reservations closed; taking the envelopes", dso.operator_id)


def _require_operator(opts: ServeOptions, case: str, ops: list[tuple[str, str]]) -> None:
    if dict((oid, role) for role, oid in ops).get(opts.operator_id) != opts.role:
        listed = ", ".join(f"{r} {o}" for r, o in ops)
        raise ValueError(f"case '{case}' has no {opts.role} {opts.operator_id!r} (operators: {listed})")


def start_tno(opts: ServeOptions, case: TransportCase | None = None) -> Served:
    """The TNO process: its road network and demand (the bundled transport case; ``case`` a reduced one for
    tests) stay here. mTLS as every operator (only the orchestrator may call Respond), plaintext only with
    ``--insecure``."""
    from tno.cases import coupling_case
    from tno.cases import operators as transport_operators
    from tno.operator import TransportOperator
    from tno.service import SERVICE_NAME as TNO_SERVICE
    from tno.service import TnoServicer

    if opts.case != TRANSPORT_CASE:
        raise ValueError(f"serve tno: --case {opts.case!r} is not a transport case (known: {TRANSPORT_CASE})")
    # flags of the grid operators that mean nothing to a TNO are refused, not ignored
    foreign = {"--services": opts.services_file is not None and "the TNO calls no peer: the orchestrator drives "
                                                                 "the TNO-DSO loop",
               "--state-dir": opts.state_dir is not None and "only an aggregator keeps a book",
               "--privacy dp": opts.privacy is not None and "only a DSO adds noise to its replies",
               "--no-ac-check": not opts.ac_check and "the TNO runs no power flow",
               "--solver": opts.solver != ServeOptions.solver and "the TNO's loading and choice need no LP solver",
               "--book-open-minutes": opts.book_open_minutes != 0 and "only a DSO closes its aggregator's book",
               "--book-closes-at": opts.book_closes_at is not None and "only a DSO closes its aggregator's book"}
    given = [f"{flag} ({why})" for flag, why in foreign.items() if why]
    if given:
        raise ValueError(f"serve tno: {'; '.join(given)}; drop {'it' if len(given) == 1 else 'them'}")
    _require_operator(opts, TRANSPORT_CASE, transport_operators())
    secure = _secure(opts, transport_operators())
    servicer = TnoServicer(opts.operator_id, TransportOperator(case if case is not None else coupling_case()))
    served = start_server([servicer.register], [TNO_SERVICE], f"{opts.host}:{opts.port}", reflection=opts.reflection,
                          **secure)
    if opts.freeze_heap:
        freeze_heap(opts.operator_id)
    served.set_serving(True)
    return served


def serve_forever(opts: ServeOptions) -> int:
    """``gridcoord serve``: run until SIGTERM/SIGINT, then drain in-flight calls and exit 0."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    served = start_operator(dataclasses.replace(opts, freeze_heap=True))
    stop_on_sigterm(served)
    log.info("%s %s listening on %s:%d", opts.role, opts.operator_id, opts.host, served.port)
    served.stopped.wait()
    return 0
