"""The orchestrator's client of a TNO service (``gridcoord serve tno``): the loop's ``TransportSide`` over gRPC.

What comes back is only the station arrival envelopes and the equilibrium's gap and iteration count; routes,
origins and the loading stay in the TNO's process.
"""

from __future__ import annotations

import uuid

import numpy as np

from core import convert
from core.rpc import call, wait_serving
from core.tls import TlsIdentity, channel_credentials
from core.tls import channel as tls_channel
from core.traffic import Traffic
from gridcoord.v1 import tno_pb2_grpc
from tno.operator import Mode, StationArrivals, TnoResponse

#: an equilibrium of a few thousand vehicles takes seconds; 30 MSA iterations at the full case about a minute
RESPOND_DEADLINE_S = 300.0


class RemoteTransportOperator:
    def __init__(self, operator_id: str, address: str, run_id: str | None = None,
                 tls: TlsIdentity | None = None, stats: Traffic | None = None) -> None:
        self.operator_id, self.address, self.tls = operator_id, address, tls
        self.run_id = run_id or f"tno-{uuid.uuid4().hex[:8]}"
        self.channel = tls_channel(address, tls, operator_id)
        self.stub = tno_pb2_grpc.TransportServiceStub(self.channel)
        self.stats = stats
        self.round = 0

    def wait(self, deadline_s: float = 60.0) -> None:
        wait_serving(self.address, deadline_s=deadline_s,
                     credentials=channel_credentials(self.tls) if self.tls else None, target_name=self.operator_id)

    def respond(self, price_usd_per_mwh: np.ndarray, mode: Mode = "equilibrium", max_iter: int = 30,
                gap_tol: float = 0.01) -> TnoResponse:
        self.round += 1
        req = convert.station_prices_to_proto(convert.run_key(self.run_id, self.round), price_usd_per_mwh, mode,
                                              max_iter, gap_tol)
        msg = call(self.operator_id, "Respond", self.stub.Respond, req, deadline_s=RESPOND_DEADLINE_S,
                   idempotent_call=True, stats=self.stats, channel=self.channel)
        arrivals, gap, gap_ev, iterations = convert.arrivals_from_proto(msg, StationArrivals)
        return TnoResponse(arrivals, gap, gap_ev, iterations)

    def close(self) -> None:
        self.channel.close()
