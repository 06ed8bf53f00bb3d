"""RPC discipline shared by every operator service and the orchestrator's client.

Servers: validate, call a pure handler, map domain errors to status codes (never UNKNOWN); idempotent
calls keyed by (run id, round) answer a retry from a cache instead of solving twice; a round from the
past is FAILED_PRECONDITION; a call that arrives before the model is built is UNAVAILABLE (``NotReady``),
and grpc.health.v1 reports SERVING only once it is built; SIGTERM drains in-flight calls. Clients: every
call carries a deadline; idempotent calls retry UNAVAILABLE with exponential backoff; a dead operator
becomes ``OperatorUnavailable`` naming it.
"""

from __future__ import annotations

import logging
import math
import re
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from core.errors import SolveError
from core.privacy import PrivacyBudgetError
from core.traffic import Traffic

log = logging.getLogger("core.rpc")

#: Largest message a server accepts or sends (a 24 h boundary is ~2 kB; a surrogate a few 10 kB).
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
RUN_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

Ctx = grpc.ServicerContext
Resp = TypeVar("Resp", bound=Message)


class InvalidArgument(ValueError):
    """A request field is missing, malformed or out of range; the message names the field."""


class FailedPrecondition(RuntimeError):
    """The request is well-formed but can never be served as sent (a round from the past, a solve not optimal)."""


class PermissionDenied(RuntimeError):
    """The caller is authenticated but may not act on what it names (another identity's booking); the message
    names both identities."""


class NotReady(RuntimeError):
    """The operator is up but cannot serve yet (its model is still being built): UNAVAILABLE, which is what
    gRPC means by "transient, try again with backoff", so every client's retry and recovery path covers a
    restarted operator that is listening before it is ready."""


class ResourceExhausted(RuntimeError):
    """A request would make the operator hold more than it is sized for (the message says which limit)."""


class OperatorUnavailable(RuntimeError):
    """An operator did not answer within its deadline (after retries)."""

    def __init__(self, operator_id: str, method: str, detail: str) -> None:
        super().__init__(f"operator '{operator_id}' unavailable on {method}: {detail}")
        self.operator_id = operator_id
        self.method = method


class RemoteError(RuntimeError):
    """An operator answered with an error status (other than UNAVAILABLE/DEADLINE_EXCEEDED)."""

    def __init__(self, operator_id: str, method: str, code: grpc.StatusCode, detail: str) -> None:
        super().__init__(f"operator '{operator_id}' {method}: {code.name}: {detail}")
        self.operator_id = operator_id
        self.code = code


# --------------------------------------------------------------------------------------------------
# request validation


def vector(name: str, values: Sequence[float], length: int | None = None, *, nonneg: bool = False,
           limit: float | None = None) -> list[float]:
    """A repeated double field as a list, refused (naming the field) if its length or values are wrong;
    ``limit`` bounds |value| (a physical range, so that no solver sees numbers it cannot represent)."""
    vals = list(values)
    if length is not None and len(vals) != length:
        raise InvalidArgument(f"{name}: expected {length} values, got {len(vals)}")
    for i, v in enumerate(vals):
        if not math.isfinite(v):
            raise InvalidArgument(f"{name}[{i}] = {v} is not finite")
        if nonneg and v < 0:
            raise InvalidArgument(f"{name}[{i}] = {v} must be >= 0")
        if limit is not None and abs(v) > limit:
            raise InvalidArgument(f"{name}[{i}] = {v} is outside [-{limit:g}, {limit:g}]")
    return vals


def scalar(name: str, value: float, *, positive: bool = False, lower: float | None = None,
           upper: float | None = None) -> float:
    if not math.isfinite(value):
        raise InvalidArgument(f"{name} = {value} is not finite")
    if positive and value <= 0:
        raise InvalidArgument(f"{name} = {value} must be > 0")
    if (lower is not None and value < lower) or (upper is not None and value > upper):
        raise InvalidArgument(f"{name} = {value} is outside [{lower:g}, {upper:g}]")
    return float(value)


# --------------------------------------------------------------------------------------------------
# idempotency


@dataclass
class RoundLedger:
    """Per run: the latest round seen, and cached answers of idempotent calls keyed by (method, run, round)."""

    capacity: int = 4096
    latest: dict[str, int] = field(default_factory=dict)
    answers: OrderedDict[tuple[str, str, int], bytes] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, method: str, key: Any) -> tuple[str, int]:
        """Validate a RunKey; refuse a round older than the latest seen for that run."""
        if key is None or not key.run_id:
            raise InvalidArgument("key.run_id: required (1..128 characters [A-Za-z0-9._-])")
        if not RUN_ID.match(key.run_id):
            raise InvalidArgument(f"key.run_id = {key.run_id!r}: use 1..128 characters [A-Za-z0-9._-]")
        if key.round < 1:
            raise InvalidArgument("key.round: required, >= 1")
        with self.lock:
            latest = self.latest.get(key.run_id, 0)
            if key.round < latest:
                raise FailedPrecondition(f"key.round = {key.round} is from the past (run {key.run_id!r} is at "
                                         f"round {latest})")
            self.latest[key.run_id] = max(latest, int(key.round))
        return key.run_id, int(key.round)

    def get(self, method: str, run_id: str, round_: int) -> bytes | None:
        with self.lock:
            return self.answers.get((method, run_id, round_))

    def put(self, method: str, run_id: str, round_: int, answer: bytes) -> None:
        with self.lock:
            self.answers[(method, run_id, round_)] = answer
            while len(self.answers) > self.capacity:
                self.answers.popitem(last=False)


# --------------------------------------------------------------------------------------------------
# servicer plumbing


def handle(context: grpc.ServicerContext, method: str, fn: Callable[[], Resp]) -> Resp:
    """Run a handler and map domain errors to status codes; an unexpected error is INTERNAL, never UNKNOWN."""
    try:
        return fn()
    except NotReady as exc:
        context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
    except InvalidArgument as exc:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    except FailedPrecondition as exc:
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
    except PermissionDenied as exc:
        context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
    except (ResourceExhausted, PrivacyBudgetError) as exc:  # a DP operator's budget is spent: no more answers
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
    except ValueError as exc:  # domain data errors (FeederInputError, TransmissionDataError, FleetError ...)
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    except OperatorUnavailable as exc:  # a peer this operator depends on (a DSO's aggregator) is down
        context.abort(grpc.StatusCode.UNAVAILABLE, f"{method}: {exc}")
    except RemoteError as exc:  # a peer refused what this operator sent it: not the caller's fault, not a crash
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"{method}: {exc}")
    except SolveError as exc:  # a solve that ends without an optimum: the request is well-formed, not servable
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"{method}: {exc}")
    except Exception as exc:  # noqa: BLE001 - a bug: say so, keep serving
        log.exception("%s failed", method)
        context.abort(grpc.StatusCode.INTERNAL, f"{method}: {type(exc).__name__}: {exc}")
    raise AssertionError("unreachable")  # context.abort raises


def idempotent(ledger: RoundLedger, context: grpc.ServicerContext, method: str, request: Any,
               response_type: type[Resp], fn: Callable[[], Resp]) -> Resp:
    """``handle`` for a call keyed by ``request.key``: a repeat of (method, run, round) returns the stored answer."""

    def run() -> Resp:
        run_id, round_ = ledger.check(method, request.key if request.HasField("key") else None)
        cached = ledger.get(method, run_id, round_)
        if cached is not None:
            return response_type.FromString(cached)
        answer = fn()
        ledger.put(method, run_id, round_, answer.SerializeToString())
        return answer

    return handle(context, method, run)


@dataclass
class Served:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    stopped: threading.Event

    def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        self.health.set("", status)

    def stop(self, grace_s: float = 5.0) -> None:
        """Refuse new calls, let in-flight calls finish (up to ``grace_s``), then stop."""
        self.set_serving(False)
        self.server.stop(grace_s).wait()
        self.stopped.set()


def start_server(add_servicers: Iterable[Callable[[grpc.Server], None]], service_names: Sequence[str],
                 address: str, *, workers: int = 8, reflection: bool = False,
                 credentials: grpc.ServerCredentials | None = None,
                 interceptors: Sequence[grpc.ServerInterceptor] = ()) -> Served:
    """Start a gRPC server with health (NOT_SERVING until ``set_serving(True)``) and optional reflection."""
    options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
               ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=options,
                         interceptors=list(interceptors))
    for add in add_servicers:
        add(server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if reflection:
        from grpc_reflection.v1alpha import reflection as refl

        refl.enable_server_reflection([*service_names, health.SERVICE_NAME, refl.SERVICE_NAME], server)
    port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind {address}")
    server.start()
    served = Served(server, port, health_servicer, threading.Event())
    served.set_serving(False)
    return served


def stop_on_sigterm(served: Served, grace_s: float = 5.0) -> None:
    """SIGTERM/SIGINT: drain in-flight calls and stop (main thread only)."""

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %s: draining and stopping", signum)
        threading.Thread(target=served.stop, args=(grace_s,), daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)


# --------------------------------------------------------------------------------------------------
# client side


RETRYABLE = (grpc.StatusCode.UNAVAILABLE,)


def call(operator_id: str, method: str, fn: Callable[..., Resp], request: Message, *, deadline_s: float,
         idempotent_call: bool, stats: Traffic | None = None, retries: int = 4, backoff_s: float = 0.2,
         metadata: Sequence[tuple[str, str]] = (), recovery_s: float | None = None,
         channel: grpc.Channel | None = None, max_backoff_s: float = 2.0) -> Resp:
    """One RPC with a deadline; an idempotent call retries UNAVAILABLE with exponential backoff.

    With ``recovery_s`` an idempotent call instead rides out an operator that dies and comes back: on
    UNAVAILABLE or DEADLINE_EXCEEDED it waits (backoff capped at ``max_backoff_s``) until the operator
    reports SERVING on grpc.health.v1 over ``channel`` (a restarted one rebuilds its model first) and
    sends the same request again, for up to ``recovery_s`` seconds from the first failure. The request,
    and so its RunKey, is unchanged: a server that did answer before serves the retry from its ledger.
    """
    if recovery_s is not None and idempotent_call:
        return _call_recovering(operator_id, method, fn, request, deadline_s=deadline_s, stats=stats,
                                backoff_s=backoff_s, metadata=metadata, recovery_s=recovery_s, channel=channel,
                                max_backoff_s=max_backoff_s)
    attempts = retries + 1 if idempotent_call else 1
    delay = backoff_s
    for attempt in range(attempts):
        try:
            response = fn(request, timeout=deadline_s, metadata=list(metadata))
        except grpc.RpcError as exc:
            code = exc.code()
            detail = exc.details()
            if code in RETRYABLE and attempt + 1 < attempts:
                if stats is not None:
                    stats.retries += 1
                time.sleep(delay)
                delay *= 2
                continue
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise OperatorUnavailable(operator_id, method, f"{code.name}: {detail}") from exc
            raise RemoteError(operator_id, method, code, detail) from exc
        _count(stats, request, response)
        return response
    raise AssertionError("unreachable")


def _count(stats: Traffic | None, request: Message, response: Message) -> None:
    if stats is not None:
        stats.add_call(request.ByteSize(), response.ByteSize(),
                       (f"{response.DESCRIPTOR.name}.{fd.name}" for fd, _ in response.ListFields()))


def _exchange(request: Message) -> str:
    """'exchange N of run R' from a request's RunKey (what an operator-unavailable message names)."""
    key = getattr(request, "key", None)
    if key is None or not getattr(key, "run_id", ""):
        return "no run key"
    return f"exchange {key.round} of run {key.run_id!r}"


def health_status(channel: grpc.Channel, timeout_s: float) -> int | None:
    """One grpc.health.v1 Check over ``channel``: the server's status (SERVING, NOT_SERVING, ...), or None
    when nothing answered within ``timeout_s`` (no server listening, unreachable, handshake refused)."""
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""),
                                                         timeout=max(0.05, timeout_s))
    except grpc.RpcError:
        return None
    return int(reply.status)


def is_serving(channel: grpc.Channel, timeout_s: float) -> bool:
    """True when the server answers SERVING on grpc.health.v1 within ``timeout_s``."""
    return health_status(channel, timeout_s) == health_pb2.HealthCheckResponse.SERVING


def _call_recovering(operator_id: str, method: str, fn: Callable[..., Resp], request: Message, *, deadline_s: float,
                     stats: Traffic | None, backoff_s: float, metadata: Sequence[tuple[str, str]],
                     recovery_s: float, channel: grpc.Channel | None, max_backoff_s: float) -> Resp:
    """``call`` with a recovery window (see there)."""
    end: float | None = None  # the window starts at the first failure
    delay = backoff_s
    while True:
        timeout = deadline_s if end is None else max(0.05, min(deadline_s, end - time.monotonic()))
        try:
            response = fn(request, timeout=timeout, metadata=list(metadata))
        except grpc.RpcError as exc:
            code = exc.code()
            detail = exc.details()
            if code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise RemoteError(operator_id, method, code, detail) from exc
            now = time.monotonic()
            if end is None:
                end = now + recovery_s
                log.warning("operator %r %s: %s; waiting up to %.0f s for it to come back", operator_id, method,
                            code.name, recovery_s)
            if now >= end:
                raise OperatorUnavailable(operator_id, method, f"not back within the {recovery_s:g} s recovery "
                                          f"window ({_exchange(request)}); last {code.name}: {detail}") from exc
            if stats is not None:
                stats.retries += 1
            # wait until the operator reports SERVING again (a restarted one first rebuilds its model)
            while time.monotonic() < end:
                time.sleep(min(delay, max(0.0, end - time.monotonic())))
                delay = min(2.0 * delay, max_backoff_s)
                if channel is None or is_serving(channel, min(2.0, end - time.monotonic())):
                    break
            continue
        _count(stats, request, response)
        return response


def wait_serving(address: str, deadline_s: float = 60.0,
                 credentials: grpc.ChannelCredentials | None = None, target_name: str | None = None) -> None:
    """Block until the server at ``address`` reports SERVING, or raise TimeoutError.

    With ``credentials`` (TLS), ``target_name`` is the name the server certificate must carry (its operator id)."""
    end = time.monotonic() + deadline_s
    options = [("grpc.ssl_target_name_override", target_name)] if credentials and target_name else []
    channel = (grpc.secure_channel(address, credentials, options=options) if credentials
               else grpc.insecure_channel(address))
    try:
        while time.monotonic() < end:
            if is_serving(channel, 2.0):
                return
            time.sleep(0.2)
    finally:
        channel.close()
    raise TimeoutError(f"{address} not SERVING within {deadline_s} s")
