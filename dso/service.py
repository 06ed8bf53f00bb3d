"""A DSO as a gRPC service (``gridcoord serve dso``): the coordination calls plus its end-of-run report,
and the DSO's own link to its EV aggregator service (envelopes in, dispatch out)."""

from __future__ import annotations

import logging
import threading

import grpc
import numpy as np

from core import convert
from core.rpc import (
    Ctx,
    FailedPrecondition,
    InvalidArgument,
    OperatorUnavailable,
    RemoteError,
    call,
    idempotent,
    vector,
    wait_serving,
)
from core.service import MAX_BOUNDARY_MW, MAX_PRICE_USD_PER_MWH, SubspaceService
from core.tariff import TouTariff
from core.tls import TlsIdentity, channel_credentials
from core.tls import channel as tls_channel
from dso.inputs import flexibility_from_envelope
from dso.model import EvFlexibility, FeederDispatch
from dso.redispatch import redispatch_feeder
from dso.report import EvSettlement, publish
from dso.scenarios import SCENARIOS, ScenarioDispatch, dispatch_alone
from dso.subspace import DsoSubspace
from gridcoord.v1 import aggregator_pb2, aggregator_pb2_grpc, common_pb2, dso_pb2, dso_pb2_grpc

log = logging.getLogger("gridcoord.dso")

SERVICE_NAME = dso_pb2.DESCRIPTOR.services_by_name["DsoService"].full_name
#: how long a DSO waits for its aggregator service to come back after it died [s] (below the orchestrator's
#: 120 s Report deadline, so a DSO answers with a clear error before the orchestrator gives up on it)
AGGREGATOR_RECOVERY_S = 60.0
#: first wait before a DSO publishes its tariff again after a failed attempt [s] (doubles up to the cap)
TARIFF_RETRY_S = (5.0, 60.0)


class DsoServicer(SubspaceService[DsoSubspace], dso_pb2_grpc.DsoServiceServicer):
    """Serves a ``DsoSubspace`` attached once built (health goes SERVING then)."""

    def __init__(self, operator_id: str, n_periods: int, dt_h: float, n_global: int,
                 station_ids: tuple[str, ...] = ()) -> None:
        super().__init__(operator_id, "dso", n_periods, dt_h, n_boundary=n_periods, n_global=n_global)
        #: the feeder's stations in case order (the envelopes' station index)
        self.station_ids = station_ids
        #: the DSO's link to its aggregator service (set by ``gridcoord serve dso``; Redispatch needs it)
        self.aggregator: AggregatorLink | None = None
        #: the last day-ahead ``ev_pq`` Dispatch, what a Redispatch starts from
        self._day_ahead: ScenarioDispatch | None = None

    def Forecast(self, request: dso_pb2.ForecastRequest, context: Ctx) -> dso_pb2.ForecastResponse:
        def run() -> dso_pb2.ForecastResponse:
            sub = self._model()
            # today's practice: loads + uncontrolled EV charging - available PV
            pc = sub.privacy
            return dso_pb2.ForecastResponse(p_import_mw=sub.forecast_mw().tolist(),
                                            dp_epsilon=0.0 if pc is None else pc.epsilon,
                                            dp_delta=0.0 if pc is None else pc.delta,
                                            dp_releases=0 if pc is None else pc.releases)

        return idempotent(self.ledger, context, "Forecast", request, dso_pb2.ForecastResponse, run)

    def Report(self, request: dso_pb2.DsoReportRequest, context: Ctx) -> dso_pb2.DsoReport:
        def run() -> dso_pb2.DsoReport:
            x = np.asarray(vector("boundary_mw", request.boundary_mw, self.n_periods, limit=MAX_BOUNDARY_MW))
            if len(request.price_usd_per_mwh):  # accepted for compatibility; the report does not depend on it
                vector("price_usd_per_mwh", request.price_usd_per_mwh, self.n_periods, limit=MAX_PRICE_USD_PER_MWH)
            with self.lock:
                return convert.dso_report_to_proto(self._model().report(x))

        return idempotent(self.ledger, context, "Report", request, dso_pb2.DsoReport, run)

    def Dispatch(self, request: dso_pb2.DsoDispatchRequest, context: Ctx) -> dso_pb2.DsoDispatchResponse:
        """The feeder dispatched by the DSO alone in one scheduled-charging scenario (``dso.scenarios``)."""
        def run() -> dso_pb2.DsoDispatchResponse:
            name = request.scenario or "ev_pq"
            if name not in SCENARIOS:
                raise InvalidArgument(f"scenario: {name!r} is unknown (known: {', '.join(SCENARIOS)})")
            with self.lock:
                sub = self._model()
                out = dispatch_alone(sub.data, sub.inputs, name, sub.settle, ac=sub.ac_check, solver=sub.solver)
                if name == "ev_pq":
                    self._day_ahead = out
            return convert.scenario_dispatch_to_proto(out, self.station_ids)

        return idempotent(self.ledger, context, "Dispatch", request, dso_pb2.DsoDispatchResponse, run)

    def Redispatch(self, request: dso_pb2.DsoRedispatchRequest, context: Ctx) -> dso_pb2.DsoDispatchResponse:
        """No-shows and late arrivals at ``t_from``: the aggregator re-books the fleet that came, the DSO
        re-dispatches the rest of its last day-ahead ``ev_pq`` dispatch (``dso.redispatch``) and settles it.
        Holding none (no Dispatch yet, or the DSO restarted since), it dispatches the day ahead again first: its
        inputs are the aggregator's closed book (journaled) and the case, so that day is the one dispatched
        before."""
        def run() -> dso_pb2.DsoDispatchResponse:
            t_from = int(request.t_from)
            if not 1 <= t_from < self.n_periods:
                raise InvalidArgument(f"t_from: {t_from} must be in [1, {self.n_periods - 1}]")
            for ev_id, arrival in request.late_arrival_h.items():
                if not np.isfinite(arrival):
                    raise InvalidArgument(f"late_arrival_h[{ev_id!r}]: {arrival} is not finite")
            with self.lock:
                sub = self._model()
                link, day = self.aggregator, self._day_ahead
                if link is None:
                    raise FailedPrecondition(f"DSO '{self.operator_id}' has no aggregator service to re-book with")
                if day is None:  # none yet, or this DSO restarted since: the closed book gives the same day
                    log.info("%s: Redispatch with no day-ahead dispatch held (none yet, or restarted since): "
                             "dispatching the day ahead ('ev_pq') again from the aggregator's closed book",
                             self.operator_id)
                    day = self._day_ahead = dispatch_alone(sub.data, sub.inputs, "ev_pq", sub.settle,
                                                           ac=sub.ac_check, solver=sub.solver)
                ev, past, ch, dis, shortfall = link.rebook(t_from, list(request.no_show),
                                                           dict(request.late_arrival_h), day.dispatch)
                out = redispatch_feeder(sub.data, day.inputs, day.dispatch, ev, t_from, past, ch, dis,
                                        solver=sub.solver)
                settlement = link.settle_redispatched(out.dispatch)
                report = publish(sub.data, out.inputs, out.dispatch, settlement, ac=sub.ac_check)
            msg = convert.scenario_dispatch_to_proto(
                ScenarioDispatch("redispatch", out.inputs, out.dispatch, report, settlement, out.objective,
                                 out.solve_s), self.station_ids)
            msg.day_ahead_objective, msg.late_shortfall_kwh, msg.t_from = out.day_ahead_objective, shortfall, t_from
            return msg

        return idempotent(self.ledger, context, "Redispatch", request, dso_pb2.DsoDispatchResponse, run)

    def register(self, server: grpc.Server) -> None:
        dso_pb2_grpc.add_DsoServiceServicer_to_server(self, server)


class AggregatorLink:
    """A DSO's channel to its own aggregator service: the EV envelopes it dispatches, and the EV outcome of
    its dispatch (``AggregatorLink(...)`` is the DSO subspace's ``settle``)."""

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
        self._round_lock = threading.Lock()  # the tariff publisher may retry from its own thread
        #: quick retries of a call on UNAVAILABLE when ``recovery_s`` is None
        self.retries = 4

    def _key(self) -> common_pb2.RunKey:
        with self._round_lock:
            self.round += 1
            return convert.run_key(self.run_id, self.round)

    def envelope(self) -> EvFlexibility:
        wait_serving(self.address, deadline_s=120.0,
                     credentials=channel_credentials(self.tls) if self.tls else None, target_name=self.operator_id)
        msg = call(self.operator_id, "GetEnvelope", self.stub.GetEnvelope,
                   aggregator_pb2.EnvelopeRequest(key=self._key()), deadline_s=30.0, idempotent_call=True,
                   recovery_s=self.recovery_s, channel=self.channel)
        env = convert.envelope_from_proto(msg)
        return flexibility_from_envelope(env, dict(zip(env.stations, env.station_p_max_mw.tolist(), strict=True)))

    def publish_tariff(self, tariff: TouTariff) -> int:
        """Send the DSO's next-day time-of-use tariff to its aggregator; returns the periods it holds."""
        req = aggregator_pb2.TouTariff(key=self._key(), level=list(tariff.level),
                                       peak_usd_per_mwh=tariff.peak_usd_per_mwh,
                                       flat_usd_per_mwh=tariff.flat_usd_per_mwh,
                                       valley_usd_per_mwh=tariff.valley_usd_per_mwh)
        msg = call(self.operator_id, "PublishTariff", self.stub.PublishTariff, req, deadline_s=30.0,
                   idempotent_call=True, recovery_s=self.recovery_s, channel=self.channel, retries=self.retries)
        return int(msg.n_periods)

    def rebook(self, t_from: int, no_show: list[str], late_arrival_h: dict[str, float],
               day: FeederDispatch) -> tuple[EvFlexibility, np.ndarray, np.ndarray, np.ndarray, float]:
        """Forward no-shows and late arrivals with the day-ahead envelope dispatch ``day``; returns the envelopes
        of the fleet that came, their past window entries, what those drew (charge, discharge) [MW] and the late
        EVs' shortfall [kWh]."""
        req = aggregator_pb2.RebookRequest(key=self._key(), t_from=t_from, no_show=no_show,
                                           late_arrival_h=late_arrival_h,
                                           p_ch_mw=np.asarray(day.ev_p_ch_mw).tolist(),
                                           p_dis_mw=np.asarray(day.ev_p_dis_mw).tolist())
        msg = call(self.operator_id, "Redispatch", self.stub.Redispatch, req, deadline_s=60.0, idempotent_call=True,
                   recovery_s=self.recovery_s, channel=self.channel)
        env = convert.envelope_from_proto(msg.envelope)
        ev = flexibility_from_envelope(env, dict(zip(env.stations, env.station_p_max_mw.tolist(), strict=True)))
        return (ev, np.asarray(msg.past_entry, dtype=np.int64), np.asarray(msg.past_p_ch_mw, dtype=float),
                np.asarray(msg.past_p_dis_mw, dtype=float), float(msg.late_shortfall_kwh))

    def settle_redispatched(self, dispatch: FeederDispatch) -> EvSettlement:
        """Settle a re-dispatch against the envelopes of the last ``rebook``."""
        return self._settle(dispatch, redispatched=True)

    def __call__(self, dispatch: FeederDispatch) -> EvSettlement:
        return self._settle(dispatch, redispatched=False)

    def _settle(self, dispatch: FeederDispatch, redispatched: bool) -> EvSettlement:
        req = aggregator_pb2.DispatchRequest(key=self._key(), p_ch_mw=np.asarray(dispatch.ev_p_ch_mw).tolist(),
                                             p_dis_mw=np.asarray(dispatch.ev_p_dis_mw).tolist(),
                                             alloc_share=np.asarray(dispatch.ev_alloc_share).tolist(),
                                             dlmp_usd_per_mwh=np.asarray(dispatch.dlmp_usd_per_mwh).ravel().tolist(),
                                             redispatched=redispatched)
        msg = call(self.operator_id, "Dispatch", self.stub.Dispatch, req, deadline_s=60.0, idempotent_call=True,
                   recovery_s=self.recovery_s, channel=self.channel)
        return EvSettlement(unmet_mwh=float(msg.unmet_mwh), ev_ids=tuple(e.ev_id for e in msg.evs),
                            ev_unmet_kwh=np.array([e.unmet_kwh for e in msg.evs], dtype=float))


class TariffPublisher:
    """Publishes a DSO's time-of-use tariff to its aggregator until the aggregator acknowledges it.

    ``start`` makes one attempt (the link itself rides out an aggregator that is still starting, for its
    ``recovery_s``); every failed attempt is an ERROR in the DSO's log naming the aggregator and the cause, and
    a background thread tries again after ``retry_s`` (doubling up to the cap) until it succeeds or ``stop``:
    a tariff is never silently dropped. ``published`` is set once acknowledged."""

    def __init__(self, dso_id: str, link: AggregatorLink, tariff: TouTariff,
                 retry_s: tuple[float, float] = TARIFF_RETRY_S) -> None:
        self.dso_id, self.link, self.tariff = dso_id, link, tariff
        self.retry_s = retry_s
        self.published = threading.Event()
        self.stopped = threading.Event()
        self.attempts = 0
        self.last_error: str | None = None

    def start(self) -> bool:
        """One attempt now; True if acknowledged, else the retries continue in the background."""
        if self._attempt():
            return True
        threading.Thread(target=self._retry, name=f"tariff-{self.dso_id}", daemon=True).start()
        return False

    def stop(self) -> None:
        self.stopped.set()

    def _attempt(self) -> bool:
        self.attempts += 1
        try:
            n = self.link.publish_tariff(self.tariff)
        except (OperatorUnavailable, RemoteError, grpc.RpcError) as exc:
            self.last_error = str(exc)
            log.error("%s: time-of-use tariff NOT published to aggregator %s at %s (attempt %d): %s; retrying",
                      self.dso_id, self.link.operator_id, self.link.address, self.attempts, exc)
            return False
        self.published.set()
        levels = {lv: self.tariff.level.count(lv) for lv in ("peak", "flat", "valley")}
        log.info("%s: time-of-use tariff published to aggregator %s (%d periods: %s; %g/%g/%g $/MWh; attempt %d)",
                 self.dso_id, self.link.operator_id, n, levels, self.tariff.peak_usd_per_mwh,
                 self.tariff.flat_usd_per_mwh, self.tariff.valley_usd_per_mwh, self.attempts)
        return True

    def _retry(self) -> None:
        delay, cap = self.retry_s
        while not self.stopped.wait(delay):
            if self._attempt():
                return
            delay = min(2.0 * delay, cap)
