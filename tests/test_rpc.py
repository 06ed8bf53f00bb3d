"""RPC discipline on an in-process server: idempotent retries, rounds from the past, bad input,
oversize messages, health, and what leaves a DSO during coordination (the privacy audit)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import cast

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from core import convert
from core.icnn import SurrogateWeights
from core.rpc import MAX_MESSAGE_BYTES, call, start_server
from core.subspace import Proposal
from core.traffic import Traffic
from dso.service import DsoServicer
from dso.subspace import DsoSubspace
from gridcoord.v1 import common_pb2, dso_pb2_grpc
from orchestrator.system.services import RemoteDso

T = 4


@dataclass
class Resp:
    cost_usd: float
    sensitivity_usd_per_mwh: np.ndarray
    penalty_usd: float = 0.0
    mismatch_mw: float = 0.0
    dt_h: float = 1.0
    hourly_cost_usd: np.ndarray | None = None


class CountingSubspace:
    """A stand-in DSO subspace with a known cost 0.5 |x|^2: counts every solve."""

    def __init__(self) -> None:
        self.solves = 0

    def evaluate(self, x: np.ndarray) -> Resp:
        self.solves += 1
        return Resp(float(0.5 * x @ x), x.copy())

    def respond(self, price: np.ndarray) -> tuple[np.ndarray, float]:
        self.solves += 1
        return -price, float(0.5 * price @ price)

    def prox(self, target: np.ndarray, rho: float) -> tuple[np.ndarray, float]:
        self.solves += 1
        x = rho * target / (1 + rho)
        return x, float(0.5 * x @ x)

    def optimize(self, others: list, center: np.ndarray, move: np.ndarray) -> Proposal:
        self.solves += 1
        return Proposal(x=center[:T], predicted_usd=0.0)


@pytest.fixture()
def server():
    servicer = DsoServicer("dso1", n_periods=T, dt_h=1.0, n_global=2 * T)
    sub = CountingSubspace()
    served = start_server([servicer.register], ["gridcoord.v1.DsoService"], "127.0.0.1:0")
    servicer.attach(cast(DsoSubspace, sub))  # a test double of the DSO subspace
    served.set_serving(True)
    channel = grpc.insecure_channel(f"127.0.0.1:{served.port}")
    yield served, sub, dso_pb2_grpc.DsoServiceStub(channel), channel
    channel.close()
    served.stop(1.0)


def _status(channel: grpc.Channel) -> int:
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status


def test_retry_with_same_key_is_not_counted_twice(server) -> None:
    _, sub, stub, _ = server
    req = common_pb2.EvaluateRequest(key=convert.run_key("r1", 1), boundary_mw=[1.0, 2.0, 3.0, 4.0])
    a = stub.Evaluate(req, timeout=5)
    b = stub.Evaluate(req, timeout=5)
    assert sub.solves == 1
    assert a == b and a.cost_usd == pytest.approx(15.0)
    stub.Evaluate(common_pb2.EvaluateRequest(key=convert.run_key("r1", 2), boundary_mw=[0.0] * T), timeout=5)
    assert sub.solves == 2


def test_round_from_the_past_refused(server) -> None:
    _, _, stub, _ = server
    stub.Evaluate(common_pb2.EvaluateRequest(key=convert.run_key("r2", 5), boundary_mw=[0.0] * T), timeout=5)
    with pytest.raises(grpc.RpcError) as err:
        stub.Evaluate(common_pb2.EvaluateRequest(key=convert.run_key("r2", 4), boundary_mw=[0.0] * T), timeout=5)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "key.round = 4 is from the past" in err.value.details()


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda r: r.ClearField("key"), "key.run_id"),
    (lambda r: r.boundary_mw.append(1.0), "boundary_mw: expected 4 values, got 5"),
    (lambda r: r.boundary_mw.__setitem__(2, float("nan")), "boundary_mw[2] = nan"),
    (lambda r: r.boundary_mw.__setitem__(0, float("inf")), "boundary_mw[0] = inf"),
    (lambda r: setattr(r.key, "run_id", "bad id!"), "key.run_id"),
])
def test_invalid_argument_names_the_field(server, mutate, field) -> None:
    _, sub, stub, channel = server
    req = common_pb2.EvaluateRequest(key=convert.run_key("r3", 1), boundary_mw=[0.0] * T)
    mutate(req)
    with pytest.raises(grpc.RpcError) as err:
        stub.Evaluate(req, timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in err.value.details()
    assert sub.solves == 0
    assert _status(channel) == health_pb2.HealthCheckResponse.SERVING


def test_oversize_message_resource_exhausted(server) -> None:
    _, _, stub, channel = server
    req = common_pb2.EvaluateRequest(key=convert.run_key("r4", 1), boundary_mw=[0.0] * (MAX_MESSAGE_BYTES // 8 + 10))
    with pytest.raises(grpc.RpcError) as err:
        stub.Evaluate(req, timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _status(channel) == health_pb2.HealthCheckResponse.SERVING


def test_prox_rho_must_be_positive(server) -> None:
    _, _, stub, _ = server
    with pytest.raises(grpc.RpcError) as err:
        stub.Prox(common_pb2.ProxRequest(key=convert.run_key("r5", 1), target_mw=[0.0] * T, rho_usd_per_mw2=0.0),
                  timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "rho_usd_per_mw2" in err.value.details()


def test_not_serving_until_model_attached() -> None:
    servicer = DsoServicer("dso9", n_periods=T, dt_h=1.0, n_global=T)
    served = start_server([servicer.register], ["gridcoord.v1.DsoService"], "127.0.0.1:0")
    channel = grpc.insecure_channel(f"127.0.0.1:{served.port}")
    try:
        assert _status(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.RpcError) as err:
            dso_pb2_grpc.DsoServiceStub(channel).Evaluate(
                common_pb2.EvaluateRequest(key=convert.run_key("r6", 1), boundary_mw=[0.0] * T), timeout=5)
        # up but not ready is what gRPC means by "transient, try again": UNAVAILABLE, naming the operator
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "operator 'dso9': model is still being built" in err.value.details()
    finally:
        channel.close()
        served.stop(1.0)


class _HeldBuild:
    """A DSO service whose model is attached only once a call has been refused as not ready (the race of a
    restarted operator that listens before its model is built, made deterministic)."""

    def __init__(self) -> None:
        self.servicer = DsoServicer("dso7", n_periods=T, dt_h=1.0, n_global=T)
        self.served = start_server([self.servicer.register], ["gridcoord.v1.DsoService"], "127.0.0.1:0")
        self.sub = CountingSubspace()
        self.refused = 0
        model = self.servicer._model

        def held() -> DsoSubspace:
            if not self.servicer.ready.is_set():
                self.refused += 1
                threading.Thread(target=self.build, daemon=True).start()
            return model()

        self.servicer._model = held  # type: ignore[method-assign]  # holds the build open (the race under test)

    def build(self) -> None:
        time.sleep(0.3)  # the refusal is on its way back before the model is there
        self.servicer.attach(cast(DsoSubspace, self.sub))  # a test double of the DSO subspace
        self.served.set_serving(True)


@pytest.mark.parametrize("known", [False, True], ids=["fresh-run", "resumed-run"])
def test_call_during_model_build_waits_for_it(known: bool) -> None:
    """A call that reaches an operator still building its model is answered once it is built, inside the
    recovery window, for a fresh run (the operator answers health NOT_SERVING: it is there) and a resumed one."""
    held = _HeldBuild()
    try:
        dso = RemoteDso("dso7", f"127.0.0.1:{held.served.port}", "race", T, recovery_s=30.0, known=known)
        ev = dso.evaluate(np.arange(T, dtype=float))
        assert held.refused >= 1 and held.sub.solves == 1  # refused while building, then solved once
        assert ev.cost_usd == pytest.approx(0.5 * float(np.arange(T) @ np.arange(T)))
        assert dso.link.stats.retries >= 1
    finally:
        held.served.stop(1.0)


def test_nothing_listening_is_reported_at_once() -> None:
    """The recovery window is for operators that exist: a fresh run against an address where nothing listens
    fails after the quick retries, not after the window."""
    from core.rpc import OperatorUnavailable
    from orchestrator.cli.launch import free_ports

    (port,) = free_ports(1)
    dso = RemoteDso("dso8", f"127.0.0.1:{port}", "nobody", T, recovery_s=120.0)
    t0 = time.monotonic()
    with pytest.raises(OperatorUnavailable, match="operator 'dso8' unavailable on Evaluate"):
        dso.evaluate(np.zeros(T))
    assert time.monotonic() - t0 < 30.0


def test_client_retries_unavailable_then_names_the_operator() -> None:
    stats = Traffic()
    channel = grpc.insecure_channel("127.0.0.1:1")  # nothing listens there
    stub = dso_pb2_grpc.DsoServiceStub(channel)
    from core.rpc import OperatorUnavailable

    with pytest.raises(OperatorUnavailable, match="operator 'dso7' unavailable on Evaluate"):
        call("dso7", "Evaluate", stub.Evaluate, common_pb2.EvaluateRequest(), deadline_s=1.0,
             idempotent_call=True, stats=stats, retries=2, backoff_s=0.01)
    assert stats.retries == 2
    channel.close()


#: what a DSO may send during coordination: costs, boundary values and sensitivities (and the
#: describe metadata); the Report call is the separate, explicit end-of-run publication
ALLOWED_FROM_DSO = {
    "EvaluateResponse.cost_usd", "EvaluateResponse.sensitivity_usd_per_mwh", "EvaluateResponse.penalty_usd",
    "EvaluateResponse.mismatch_mw", "EvaluateResponse.dt_h", "OptimizeResponse.x_mw",
    "OptimizeResponse.predicted_usd", "OptimizeResponse.ok", "BoundaryResponse.x_mw", "BoundaryResponse.cost_usd",
    # the DSO's own cost and slope at the point it proposes, and its cost per period at an evaluated point:
    # what the TSO's merge and the per-period surrogates are built from (still boundary quantities only)
    "OptimizeResponse.cost_usd", "OptimizeResponse.sensitivity_usd_per_mwh", "EvaluateResponse.hourly_cost_usd",
}


def test_privacy_audit_only_boundary_quantities_leave_a_dso(server) -> None:
    served, _, _, _ = server
    dso = RemoteDso("dso1", f"127.0.0.1:{served.port}", "audit", T)
    x = np.arange(T, dtype=float)
    dso.evaluate(x)
    dso.respond(x)
    dso.prox(x, 2.0)
    w = SurrogateWeights(w=np.ones((2, T)), b=np.zeros(2), v=np.ones(2), a=np.zeros(T), c=0.0)
    dso.optimize([(np.arange(T, 2 * T), w)], np.zeros(2 * T), np.ones(2 * T))
    crossed = dso.wire_stats().fields_received
    assert crossed, "nothing was recorded"
    assert crossed <= ALLOWED_FROM_DSO, f"unexpected fields left the DSO: {sorted(crossed - ALLOWED_FROM_DSO)}"
    assert dso.wire_stats().messages == 8
