"""The orchestrator's client of ``DsoService.Dispatch``: one DSO service dispatches its feeder alone in a
scheduled-charging scenario (``dso.scenarios``), over mTLS as the orchestrator (the only identity allowed)."""

from __future__ import annotations

import uuid

from core import convert
from core.convert import ScenarioDispatchData
from core.rpc import call, wait_serving
from core.tls import TlsIdentity, channel_credentials
from core.tls import channel as tls_channel
from dso.report import FeederReport
from gridcoord.v1 import dso_pb2, dso_pb2_grpc

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

    def dispatch(self, scenario: str) -> ScenarioDispatchData:
        self.round += 1
        req = dso_pb2.DsoDispatchRequest(key=convert.run_key(self.run_id, self.round), scenario=scenario)
        msg = call(self.dso_id, "Dispatch", self.stub.Dispatch, req, deadline_s=DISPATCH_DEADLINE_S,
                   idempotent_call=True, channel=self.channel)
        return convert.scenario_dispatch_from_proto(msg, FeederReport, self.dso_id)

    def close(self) -> None:
        self.channel.close()
