"""The orchestrator's client of ``DsoService.Dispatch``: one DSO service dispatches its feeder alone in a
scheduled-charging scenario (``dso.scenarios``), over mTLS as the orchestrator (the only identity allowed)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from core import convert
from core.convert import ScenarioDispatchData
from core.rpc import call, wait_serving
from core.tls import TlsIdentity, channel_credentials
from core.tls import channel as tls_channel
from dso.report import FeederReport
from gridcoord.v1 import aggregator_pb2, aggregator_pb2_grpc, dso_pb2, dso_pb2_grpc

#: a full-size day (500 EVs, the AC check of 24 hours) takes tens of seconds on a loaded machine [s]
DISPATCH_DEADLINE_S = 600.0


class DsoAloneClient:
    """Calls one DSO service's ``Dispatch``; every call has its own RunKey (run id + round), so a retry after
    UNAVAILABLE is answered from the DSO's ledger instead of dispatching again."""

    def __init__(self, dso_id: str, address: str, tls: TlsIdentity | None, run_id: str | None = None,
                 ready_s: float = 300.0) -> None:
        self.dso_id, self.address, self.tls = dso_id, address, tls
        self.run_id = run_id or f"sched-{uuid.uuid4().hex[:12]}"
        self.round = 0
        self.channel = tls_channel(address, tls, dso_id)
        self.stub = dso_pb2_grpc.DsoServiceStub(self.channel)
        wait_serving(address, deadline_s=ready_s, credentials=channel_credentials(tls) if tls else None,
                     target_name=dso_id)

    def _next_key(self) -> Any:
        """The RunKey of the next exchange (its own round, so a retry is answered from the DSO's ledger)."""
        self.round += 1
        return convert.run_key(self.run_id, self.round)

    def _call(self, method: str, request: Any) -> ScenarioDispatchData:
        msg = call(self.dso_id, method, getattr(self.stub, method), request, deadline_s=DISPATCH_DEADLINE_S,
                   idempotent_call=True, channel=self.channel)
        return convert.scenario_dispatch_from_proto(msg, FeederReport, self.dso_id)

    def dispatch(self, scenario: str) -> ScenarioDispatchData:
        return self._call("Dispatch", dso_pb2.DsoDispatchRequest(key=self._next_key(), scenario=scenario))

    def redispatch(self, t_from: int, no_show: list[str], late_arrival_h: dict[str, float]) -> ScenarioDispatchData:
        """No-shows and late arrivals known at period ``t_from``: the DSO re-dispatches the rest of its last
        ``ev_pq`` day with its aggregator (``DsoService.Redispatch``)."""
        return self._call("Redispatch", dso_pb2.DsoRedispatchRequest(
            key=self._next_key(), t_from=t_from, no_show=no_show, late_arrival_h=late_arrival_h))

    def close(self) -> None:
        self.channel.close()


@dataclass(frozen=True)
class BookedEv:
    """One booking as the aggregator lists it (its audit view)."""

    ev_id: str
    station: str
    arrival_h: float
    departure_h: float
    energy_need_kwh: float


def list_reservations(aggregator_id: str, address: str, tls: TlsIdentity | None) -> list[BookedEv]:
    """Every EV the aggregator holds, in its book's order (``AggregatorService.ListReservations``)."""
    with tls_channel(address, tls, aggregator_id) as ch:
        stub = aggregator_pb2_grpc.AggregatorServiceStub(ch)
        msg = call(aggregator_id, "ListReservations", stub.ListReservations,
                   aggregator_pb2.ListReservationsRequest(key=convert.run_key(f"list-{uuid.uuid4().hex[:12]}", 1)),
                   deadline_s=60.0, idempotent_call=True)
    return [BookedEv(e.ev_id, e.station, e.arrival_h, e.departure_h, e.energy_need_kwh) for e in msg.evs]
