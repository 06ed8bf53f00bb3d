"""Property-based fuzzing of every RPC of the TSO, DSO and aggregator services (issue 7, part 4).

Real servers in this process (plaintext on loopback, real models of the small case ``tests/data/tiny-2x33.yaml``
(the reference case's first two feeders, 40 EVs each, 8 periods): the TSO, DSO
``dso1`` fed by its aggregator service ``agg-dso1``, and a second aggregator whose reservation book stays
open). Every method of every service is taken from the service descriptors, and its requests are drawn
from the request message's descriptor: valid-shaped messages (the expected lengths per field), NaN,
+-inf, huge and denormal floats, empty, wrong-length and huge repeated fields (up to beyond the 4 MiB
limit), random strings, run ids and rounds, nested messages missing; plus raw random bytes sent to the
method's path with identity serializers.

Property: every answer is OK or one of ``DELIBERATE`` (never UNKNOWN, never INTERNAL from a handler), an
OK answer carries only finite numbers, no call hangs (60 s deadline), and afterwards every server is still
SERVING on grpc.health.v1 and answers a valid call exactly as it did before the fuzzing. INTERNAL is
accepted in one place only: raw bytes that the gRPC runtime itself cannot parse into the request type
(grpcio answers ``INTERNAL: Exception deserializing request!`` before any project code runs).

Seed: ``GRIDCOORD_FUZZ_SEED`` (default below); the counts of cases per RPC are printed in the summary.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf import descriptor as pbd
from google.protobuf import message_factory
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st

from core.case import load_case
from core.rpc import MAX_MESSAGE_BYTES, RUN_ID, Served, start_server
from gridcoord.v1 import aggregator_pb2, common_pb2, dso_pb2, tso_pb2
from tests.helpers.cases import TINY_CASE
from tests.helpers.summary import SUMMARY_LINES

#: the small case (2 feeders, 40 EVs each, 8 periods): the servicers and their checks are the reference case's;
#: a DSO solve is about a tenth of the reference case's, so the same number of cases costs seconds, not minutes
CASE = TINY_CASE
_SPEC = load_case(CASE)
T_N = int(_SPEC.periods)  # one DSO's boundary (periods)
N_GLOBAL = len(_SPEC.feeder_ids) * T_N  # the TSO's boundary (feeders x periods)
SEED = int(os.environ.get("GRIDCOORD_FUZZ_SEED", "20240607"))
DEADLINE_S = 60.0

#: the codes a server may answer on purpose (anything else, UNKNOWN first of all, fails the property)
DELIBERATE = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,  # malformed field: the message names it
    grpc.StatusCode.FAILED_PRECONDITION,  # well-formed but not now: a round from the past, a solve not optimal
    grpc.StatusCode.RESOURCE_EXHAUSTED,  # > 4 MiB, or more surrogate layouts than an operator holds
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.PERMISSION_DENIED,  # identity-bound authorization (TLS deployments)
    grpc.StatusCode.UNAUTHENTICATED,
}
RUNTIME_PARSE_FAILURE = "Exception deserializing request!"

SPECIAL = [math.nan, math.inf, -math.inf, 1.7976931348623157e308, -1.7976931348623157e308, 5e-324, -5e-324,
           2.2250738585072014e-308, 0.0, -0.0, 1e15, -1e15, 1e6]
SPECIAL_FLOATS = st.sampled_from(SPECIAL)
ANY_FLOAT = st.one_of(st.floats(-100.0, 100.0), SPECIAL_FLOATS, st.floats(allow_nan=True, allow_infinity=True))
RUN_IDS = st.from_regex(RUN_ID, fullmatch=True)
#: beyond the server's receive limit once encoded (8 bytes per packed double)
HUGE_LEN = MAX_MESSAGE_BYTES // 8 + 4096
#: a surrogate's hidden width in valid-shaped Optimize requests (each layout compiles one problem: keep few)
HIDDEN = (2, 3)


# --------------------------------------------------------------------------------------------------
# servers


@dataclass
class Target:
    """One running server: its stub-less channel, the services it serves and the field lengths it expects."""

    name: str
    served: Served
    services: tuple[pbd.ServiceDescriptor, ...]
    #: expected length of each repeated field, by field name (what a valid-shaped request uses)
    lengths: dict[str, int]
    strings: dict[str, list[str]] = field(default_factory=dict)
    #: aggregators: the allocation group of each envelope (a valid alloc_share sums to 1 per group)
    groups: np.ndarray | None = None
    channel: grpc.Channel | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.served.port}"


SERVICES = {
    "tso": (tso_pb2.DESCRIPTOR.services_by_name["TsoService"],),
    "dso1": (dso_pb2.DESCRIPTOR.services_by_name["DsoService"],),
    "agg-dso1": (aggregator_pb2.DESCRIPTOR.services_by_name["AggregatorService"],),
    "agg-open": (aggregator_pb2.DESCRIPTOR.services_by_name["AggregatorService"],),
}
#: methods of agg-open worth fuzzing there (its book must stay open: GetEnvelope/Dispatch would close it)
OPEN_BOOK_METHODS = {"Describe", "Reserve", "ListReservations", "Amend", "Cancel"}

#: max_examples per method: calls that solve an optimisation on the DSO (~0.6 s each, most of the file's time) get
#: fewer; the malformed shapes and the bounds are reached within these counts (the seed is fixed)
EXAMPLES = {"Evaluate": 15, "Optimize": 12, "Respond": 15, "Prox": 15, "Report": 10, "Merge": 12,
            # a whole feeder day per valid call (the scheduled-charging dispatch and re-dispatch)
            "DsoService.Dispatch": 8, "Redispatch": 10}
DEFAULT_EXAMPLES = 60
#: valid-shape hints per request field (a method whose request has none of these still gets fuzzed
#: generically; a new method must be listed in KNOWN_METHODS so that someone looked at its strategy)
KNOWN_METHODS = {
    "TsoService": {"Describe", "Evaluate", "Optimize", "Respond", "Prox", "Report", "Merge"},
    "DsoService": {"Describe", "Evaluate", "Optimize", "Respond", "Prox", "Report", "Forecast", "Dispatch",
                   "Redispatch"},
    "AggregatorService": {"Describe", "GetEnvelope", "Dispatch", "Reserve", "ListReservations", "Amend", "Cancel",
                          "PublishTariff", "Redispatch"},
}


@pytest.fixture(scope="module")
def fleet_servers() -> Iterator[dict[str, Target]]:
    """TSO, DSO dso1 (envelopes from its aggregator service), agg-dso1 and an open-book aggregator."""
    from aggregator.service import AggregatorServicer
    from dso.inputs import feeder_data, feeder_inputs
    from dso.service import AggregatorLink, DsoServicer
    from dso.subspace import DsoSubspace
    from orchestrator.system.embedded import build_system
    from tso.service import TsoServicer
    from tso.subspace import TsoSubspace

    system = build_system(CASE)
    spec, t_n, dt = system.spec, system.n_periods, system.dt_h
    ids = tuple(system.feeder_ids)
    n_global = len(ids) * t_n
    servers: dict[str, Target] = {}

    def serve(name: str, servicer: Any, lengths: dict[str, int], strings: dict[str, list[str]]) -> None:
        served = start_server([servicer.register], [s.full_name for s in SERVICES[name]], "127.0.0.1:0")
        served.set_serving(True)
        servers[name] = Target(name, served, SERVICES[name], lengths, strings)

    tso = TsoServicer("tso", ids, t_n, dt)
    tso.attach(TsoSubspace(system.tso_data, system.tso_inputs, losses=spec.transmission.losses))
    serve("tso", tso, dict.fromkeys(("boundary_mw", "center_mw", "move_mw", "price_usd_per_mwh", "target_mw"),
                                    n_global) | {"dsos": len(ids), "n_periods": t_n}, {})

    feeder = system.feeders[0]
    stations = [s.station_id for s in feeder.stations]
    agg = AggregatorServicer("agg-dso1", feeder.fleet, feeder.stations, dt, t_n)
    entries, envelopes = int(np.sum(feeder.flex.dwell)), int(feeder.flex.n_envelopes)
    agg_lengths = {"p_ch_mw": entries, "p_dis_mw": entries, "alloc_share": envelopes,
                   "dlmp_usd_per_mwh": feeder.data.n_nodes * t_n}
    ev_ids = [ev.ev_id for ev in feeder.fleet]
    serve("agg-dso1", agg, agg_lengths, {"station": stations, "ev_id": ev_ids})
    serve("agg-open", AggregatorServicer("agg-open", feeder.fleet, feeder.stations, dt, t_n), agg_lengths,
          {"station": stations})
    for name in ("agg-dso1", "agg-open"):
        servers[name].groups = np.asarray(feeder.flex.alloc_group)

    data = feeder_data(spec, "dso1")
    link = AggregatorLink("agg-dso1", servers["agg-dso1"].address, "fuzz-dso1-agg")
    inputs = feeder_inputs(spec, "dso1", data, link.envelope())
    dso = DsoServicer("dso1", t_n, dt, n_global=n_global, station_ids=tuple(stations))
    dso.aggregator = link
    dso.attach(DsoSubspace(data, inputs, np.arange(t_n), settle=link, ac_check=False))
    serve("dso1", dso, {"boundary_mw": t_n, "center_mw": n_global, "move_mw": n_global,
                        "price_usd_per_mwh": t_n, "target_mw": t_n}, {"ev_id": ev_ids})
    for target in servers.values():
        target.channel = grpc.insecure_channel(target.address)
    yield servers
    for target in servers.values():
        assert target.channel is not None
        target.channel.close()
        target.served.stop(1.0)
    link.channel.close()


# --------------------------------------------------------------------------------------------------
# strategies derived from the descriptors


def _message_class(desc: pbd.Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(desc)


def _build(desc: pbd.Descriptor, values: dict[str, Any]) -> Message:
    msg = _message_class(desc)()
    for name, value in values.items():
        fd = desc.fields_by_name[name]
        if _is_map(fd):
            getattr(msg, name).update(value)
        elif fd.is_repeated:
            if fd.type == pbd.FieldDescriptor.TYPE_MESSAGE:
                getattr(msg, name).extend(value)
            else:
                getattr(msg, name).extend(value)
        elif fd.type == pbd.FieldDescriptor.TYPE_MESSAGE:
            getattr(msg, name).CopyFrom(value)
        else:
            setattr(msg, name, value)
    return msg


def _is_map(fd: pbd.FieldDescriptor) -> bool:
    return fd.type == pbd.FieldDescriptor.TYPE_MESSAGE and fd.message_type.GetOptions().map_entry


def _vector(n: int, low: float, high: float) -> st.SearchStrategy[list[float]]:
    """n plausible values, sometimes with one special value (NaN, inf, huge, denormal) at a random place."""

    def make(base: list[float], special: tuple[int, float] | None) -> list[float]:
        out = list(base)
        if special is not None and out:
            out[special[0] % len(out)] = special[1]
        return out

    base = st.builds(lambda v, k: np.clip(np.full(n, v) + np.sin(np.arange(n) * k), low, high).tolist(),
                     st.floats(low, high), st.floats(0.0, 3.0))
    return st.builds(make, base, st.one_of(st.none(), st.none(), st.tuples(st.integers(0, 10**6), SPECIAL_FLOATS)))


def _huge(fd: pbd.FieldDescriptor) -> st.SearchStrategy[list[Any]]:
    """A repeated field of thousands to (beyond the 4 MiB limit) hundreds of thousands of entries."""
    sizes = st.sampled_from([10_000, HUGE_LEN])
    if fd.type in (pbd.FieldDescriptor.TYPE_DOUBLE, pbd.FieldDescriptor.TYPE_FLOAT):
        return st.builds(lambda n, v: [v] * n, sizes, ANY_FLOAT)
    if fd.type == pbd.FieldDescriptor.TYPE_STRING:
        return st.builds(lambda n: ["s"] * (n // 2), sizes)
    if fd.type == pbd.FieldDescriptor.TYPE_MESSAGE:
        return st.builds(lambda n: [_message_class(fd.message_type)()] * (n // 10), sizes)
    return st.builds(lambda n: [1] * n, sizes)


def _scalar(fd: pbd.FieldDescriptor, target: Target) -> st.SearchStrategy[Any]:
    t = fd.type
    if t in (pbd.FieldDescriptor.TYPE_DOUBLE, pbd.FieldDescriptor.TYPE_FLOAT):
        return ANY_FLOAT
    if t in (pbd.FieldDescriptor.TYPE_UINT32, pbd.FieldDescriptor.TYPE_FIXED32):
        return st.one_of(st.integers(0, 100), st.integers(0, 2**32 - 1))
    if t in (pbd.FieldDescriptor.TYPE_UINT64, pbd.FieldDescriptor.TYPE_FIXED64):
        return st.one_of(st.integers(0, 100), st.integers(0, 2**64 - 1))
    if t in (pbd.FieldDescriptor.TYPE_INT32, pbd.FieldDescriptor.TYPE_SINT32, pbd.FieldDescriptor.TYPE_SFIXED32):
        return st.integers(-(2**31), 2**31 - 1)
    if t in (pbd.FieldDescriptor.TYPE_INT64, pbd.FieldDescriptor.TYPE_SINT64, pbd.FieldDescriptor.TYPE_SFIXED64):
        return st.integers(-(2**63), 2**63 - 1)
    if t == pbd.FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == pbd.FieldDescriptor.TYPE_STRING:
        known = target.strings.get(fd.name, [])
        options = [st.text(max_size=24), RUN_IDS, st.just("x" * 300), st.just("\x00\u202e\U0001f600")]
        return st.one_of(*options, *([st.sampled_from(known)] if known else []))
    if t == pbd.FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if t == pbd.FieldDescriptor.TYPE_ENUM:
        return st.integers(-3, 10)
    raise AssertionError(f"no strategy for field {fd.full_name} of type {t}")  # a new field type: add one


def generic(desc: pbd.Descriptor, target: Target, depth: int = 0) -> st.SearchStrategy[Message]:
    """Any message of this type: every field may be missing; lengths and values from anywhere."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for fd in desc.fields:
        if _is_map(fd):
            fields[fd.name] = st.dictionaries(st.text(max_size=8), ANY_FLOAT, max_size=4)
        elif fd.type == pbd.FieldDescriptor.TYPE_MESSAGE:
            if depth >= 3:
                continue
            sub = generic(fd.message_type, target, depth + 1)
            if fd.is_repeated:
                fields[fd.name] = st.one_of(st.lists(sub, max_size=3), _huge(fd))
            else:
                fields[fd.name] = sub
        elif fd.is_repeated:
            lengths = sorted({0, 1, target.lengths.get(fd.name, 2), target.lengths.get(fd.name, 2) + 1})
            item = _scalar(fd, target)
            fields[fd.name] = st.one_of(
                st.sampled_from(lengths).flatmap(partial(_lists, item)),
                _huge(fd))
        else:
            fields[fd.name] = _scalar(fd, target)
    return st.fixed_dictionaries({}, optional=fields).map(lambda values: _build(desc, values))


_RUNS = itertools.count(1)


def fresh_key() -> st.SearchStrategy[common_pb2.RunKey]:
    """A valid RunKey of a run nobody used yet (so the call reaches the handler, not the ledger's cache)."""
    return st.integers(1, 1000).map(lambda n: common_pb2.RunKey(run_id=f"fz-{next(_RUNS)}", round=n))


def _surrogate(n_global: int) -> st.SearchStrategy[common_pb2.SurrogateTerm]:
    def make(n: int, h: int, pos: int, scale: float, special: tuple[int, float] | None) -> common_pb2.SurrogateTerm:
        rng = np.random.default_rng(pos)
        w = rng.normal(size=(h, n)) * scale
        weights = common_pb2.IcnnWeights(n_inputs=n, n_hidden=h, w=w.ravel().tolist(), b=rng.normal(size=h).tolist(),
                                         v=np.abs(rng.normal(size=h)).tolist(), a=rng.normal(size=n).tolist(),
                                         c=float(rng.normal()))
        if special is not None:
            weights.w[special[0] % (n * h)] = special[1]
        return common_pb2.SurrogateTerm(operator_id="fuzz", index=((np.arange(n) + pos) % n_global).tolist(),
                                        weights=weights)

    return st.builds(make, st.just(T_N), st.sampled_from(HIDDEN), st.integers(0, n_global), st.floats(0.0, 50.0),
                     st.one_of(st.none(), st.none(), st.tuples(st.integers(0, 10**6), SPECIAL_FLOATS)))


def _points(t_n: int) -> st.SearchStrategy[tso_pb2.DsoPoints]:
    """A DSO's point set for Merge: k boundary vectors (MW) and their costs ($), now and then a special float."""

    def make(k: int, s: int, special: tuple[int, float] | None) -> tso_pb2.DsoPoints:
        rng = np.random.default_rng(s)
        points, costs = rng.uniform(-5.0, 60.0, size=k * t_n), rng.uniform(0.0, 5000.0, size=k)
        if special is not None:
            points[special[0] % points.size] = special[1]
        return tso_pb2.DsoPoints(n_points=k, points_mw=points.tolist(), costs_usd=costs.tolist())

    return st.builds(make, st.integers(1, 3), st.integers(0, 2**32 - 1),
                     st.one_of(st.none(), st.none(), st.tuples(st.integers(0, 10**6), SPECIAL_FLOATS)))


def _shares(groups: np.ndarray) -> st.SearchStrategy[list[float]]:
    """Fractions >= 0 summing to 1 over each allocation group (random split per group)."""

    def make(s: int) -> list[float]:
        raw = np.random.default_rng(s).random(groups.size) + 1e-3
        return (raw / np.bincount(groups, weights=raw)[groups]).tolist()

    return st.integers(0, 2**32 - 1).map(make)


def valid_shaped(desc: pbd.Descriptor, target: Target) -> st.SearchStrategy[Message]:
    """Requests of the right shape (the lengths the server expects), plausible values, now and then one
    special float: these reach the models and solvers."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for fd in desc.fields:
        if fd.name == "key":
            fields[fd.name] = fresh_key()
        elif fd.name == "others":
            n_global = target.lengths.get("center_mw", N_GLOBAL)
            fields[fd.name] = st.lists(_surrogate(n_global), max_size=2)
        elif fd.name == "dsos":  # Merge: one point set per DSO, 1-3 points of n_periods each
            fields[fd.name] = _lists(_points(target.lengths["n_periods"]), target.lengths["dsos"])
        elif fd.name == "alloc_share" and target.groups is not None:
            fields[fd.name] = _shares(target.groups)
        elif fd.is_repeated and fd.type == pbd.FieldDescriptor.TYPE_DOUBLE:
            n = target.lengths.get(fd.name, 0)
            low, high = {"move_mw": (0.0, 20.0), "alloc_share": (0.0, 1.0), "p_ch_mw": (0.0, 0.5),
                         "p_dis_mw": (0.0, 0.05)}.get(fd.name, (-5.0, 60.0))
            fields[fd.name] = _vector(n, low, high)
        elif fd.type == pbd.FieldDescriptor.TYPE_DOUBLE:
            fields[fd.name] = st.one_of(st.floats(0.0, 100.0), st.floats(0.0, 1.0), SPECIAL_FLOATS)
        elif _is_map(fd):  # late_arrival_h: booked ev ids (or any text) -> an hour, now and then a special float
            ids = target.strings.get("ev_id", [])
            key = st.one_of(st.text(max_size=8), *([st.sampled_from(ids)] if ids else []))
            fields[fd.name] = st.dictionaries(key, st.one_of(st.floats(0.0, 24.0), SPECIAL_FLOATS), max_size=3)
        elif fd.is_repeated and fd.type == pbd.FieldDescriptor.TYPE_STRING:  # no_show: a few ids
            ids = target.strings.get("ev_id", [])
            item = st.one_of(_scalar(fd, target), *([st.sampled_from(ids)] if ids else []))
            fields[fd.name] = st.lists(item, max_size=3)
        elif fd.name == "t_from":
            fields[fd.name] = st.one_of(st.integers(0, 30), st.integers(0, 2**32 - 1))
        else:
            fields[fd.name] = _scalar(fd, target)
    if desc.full_name == "gridcoord.v1.ReservationRequest":
        fields.update(ev_id=RUN_IDS, arrival_h=st.floats(0.0, 23.99), departure_h=st.floats(0.0, 24.0),
                      energy_need_kwh=st.floats(1.0, 40.0), capacity_kwh=st.floats(50.0, 100.0),
                      soc_arrival_kwh=st.floats(0.0, 10.0), p_charge_kw=st.sampled_from([3.7, 7.4, 11.0, 22.0]),
                      p_discharge_kw=st.sampled_from([0.0, 7.4]), efficiency=st.floats(0.8, 1.0),
                      station=st.sampled_from(target.strings["station"]))
    return st.fixed_dictionaries(fields).map(lambda values: _build(desc, values))


def request_strategy(method: pbd.MethodDescriptor, target: Target) -> st.SearchStrategy[Message]:
    return st.one_of(valid_shaped(method.input_type, target), generic(method.input_type, target))


# --------------------------------------------------------------------------------------------------
# the property


COUNTS: Counter[str] = Counter()
CODES: Counter[str] = Counter()


def _targets() -> list[tuple[str, str, str]]:
    out = []
    for name, services in SERVICES.items():
        for service in services:
            for method in service.methods:
                if name == "agg-open" and method.name not in OPEN_BOOK_METHODS:
                    continue
                out.append((name, service.name, method.name))
    return out


def _lists(item: st.SearchStrategy[Any], n: int) -> st.SearchStrategy[list[Any]]:
    return st.lists(item, min_size=n, max_size=n)


def _finite(msg: Message) -> list[str]:
    """Names of non-finite double fields in an OK answer (OptimizeResponse.predicted_usd is NaN when ok=False)."""
    bad: list[str] = []
    for fd, value in msg.ListFields():
        if fd.type == pbd.FieldDescriptor.TYPE_MESSAGE:
            items = value.values() if _is_map(fd) else (value if fd.is_repeated else [value])
            for item in items:
                bad += _finite(item) if isinstance(item, Message) else ([] if math.isfinite(item) else [fd.name])
        elif fd.type == pbd.FieldDescriptor.TYPE_DOUBLE:
            values = value if fd.is_repeated else [value]
            if not all(math.isfinite(v) for v in values):
                if not (fd.name == "predicted_usd" and not getattr(msg, "ok", True)):
                    bad.append(fd.name)
    return bad


def send(target: Target, service: str, method: str, payload: bytes, response_desc: pbd.Descriptor) -> None:
    """One call with raw bytes (identity serializers); assert the property on the answer."""
    assert target.channel is not None
    path = f"/gridcoord.v1.{service}/{method}"
    rpc = target.channel.unary_unary(path, request_serializer=None, response_deserializer=None)
    label = f"{target.name}.{method}"
    COUNTS[label] += 1
    try:
        answer = rpc(payload, timeout=DEADLINE_S)
    except grpc.RpcError as exc:
        code, detail = exc.code(), exc.details()
        CODES[code.name] += 1
        if os.environ.get("GRIDCOORD_FUZZ_TRACE"):
            print(f"TRACE {label} {code.name} {detail[:160]}")
        assert code != grpc.StatusCode.DEADLINE_EXCEEDED, f"{label}: no answer within {DEADLINE_S} s"
        if code == grpc.StatusCode.INTERNAL:
            assert detail == RUNTIME_PARSE_FAILURE, f"{label}: INTERNAL from a handler: {detail}"
            return
        assert code in DELIBERATE, f"{label}: {code.name}: {detail}"
        if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
            assert detail and re.search(r"[a-z_]", detail), f"{label}: {code.name} without a message"
        return
    CODES["OK"] += 1
    if os.environ.get("GRIDCOORD_FUZZ_TRACE"):
        print(f"TRACE {label} OK")
    msg = _message_class(response_desc).FromString(answer)
    assert not _finite(msg), f"{label}: OK answer with non-finite {_finite(msg)}"


def _method(service: str, method: str) -> pbd.MethodDescriptor:
    for services in SERVICES.values():
        for s in services:
            if s.name == service:
                return s.methods_by_name[method]
    raise KeyError(service)


def _fuzz(target: Target, service: str, method: str, examples: int) -> Callable[[], None]:
    desc = _method(service, method)
    strategy = request_strategy(desc, target)

    @seed(SEED)
    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(strategy)
    def fuzz(request: Message) -> None:
        send(target, service, method, request.SerializeToString(), desc.output_type)

    return fuzz


def test_every_rpc_has_a_strategy() -> None:
    """Every method in the descriptors is fuzzed (a new RPC shows up here until it is looked at)."""
    for services in SERVICES.values():
        for service in services:
            assert {m.name for m in service.methods} == KNOWN_METHODS[service.name], (
                f"{service.name}: methods changed; add the new ones to KNOWN_METHODS/EXAMPLES after checking "
                "that the generic strategy reaches them")
    assert {(s, m) for _, s, m in _targets()} == {(s, m) for s, ms in KNOWN_METHODS.items() for m in ms}


@pytest.mark.parametrize(("server", "service", "method"), _targets(), ids=lambda x: str(x))
def test_fuzz_messages(fleet_servers: dict[str, Target], baseline: dict[str, Any], server: str, service: str,
                       method: str) -> None:
    examples = EXAMPLES.get(f"{service}.{method}", EXAMPLES.get(method, DEFAULT_EXAMPLES))
    _fuzz(fleet_servers[server], service, method, examples)()


@pytest.mark.parametrize(("server", "service", "method"), _targets(), ids=lambda x: str(x))
def test_fuzz_raw_bytes(fleet_servers: dict[str, Target], baseline: dict[str, Any], server: str, service: str,
                        method: str) -> None:
    target = fleet_servers[server]
    out = _method(service, method).output_type

    @seed(SEED)
    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(st.binary(max_size=256), st.builds(lambda n: bytes([0x12]) + b"\xff" * n, st.integers(0, 64))))
    @example(b"\x0a\xff\xff\xff\xff\x0f")  # a length prefix far past the end of the message
    @example(b"\x12\x05\x0a\x03abc")  # a nested key with a string where a message is expected
    def fuzz(payload: bytes) -> None:
        send(target, service, method, payload, out)

    fuzz()


# --------------------------------------------------------------------------------------------------
# before and after: SERVING, and a valid call answers as it did before the fuzzing


def _valid_answers(servers: dict[str, Target], run_id: str) -> dict[str, Any]:
    from gridcoord.v1 import aggregator_pb2_grpc, dso_pb2_grpc, tso_pb2_grpc

    key = common_pb2.RunKey(run_id=run_id, round=1)
    tso = tso_pb2_grpc.TsoServiceStub(servers["tso"].channel)
    dso = dso_pb2_grpc.DsoServiceStub(servers["dso1"].channel)
    agg = aggregator_pb2_grpc.AggregatorServiceStub(servers["agg-dso1"].channel)
    x = [2.0 + 0.1 * t for t in range(N_GLOBAL)]
    tso_eval = tso.Evaluate(common_pb2.EvaluateRequest(key=key, boundary_mw=x), timeout=DEADLINE_S)
    dso_eval = dso.Evaluate(common_pb2.EvaluateRequest(key=key, boundary_mw=x[:T_N]), timeout=DEADLINE_S)
    envelope = agg.GetEnvelope(aggregator_pb2.EnvelopeRequest(key=key), timeout=DEADLINE_S)
    return {"tso": (tso_eval.cost_usd, list(tso_eval.sensitivity_usd_per_mwh)),
            "dso1": (dso_eval.cost_usd, list(dso_eval.sensitivity_usd_per_mwh)),
            "agg-dso1": envelope.SerializeToString(deterministic=True)}


@pytest.fixture(scope="module")
def baseline(fleet_servers: dict[str, Target]) -> Iterator[dict[str, Any]]:
    """The undisturbed answers; after the module, every server is SERVING and answers the same."""
    before = _valid_answers(fleet_servers, "undisturbed-before")
    yield before
    for name, target in fleet_servers.items():
        reply = health_pb2_grpc.HealthStub(target.channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, f"{name} not SERVING after the fuzzing"
    after = _valid_answers(fleet_servers, "undisturbed-after")
    for name in ("tso", "dso1"):
        np.testing.assert_allclose(after[name][0], before[name][0], rtol=1e-6, err_msg=f"{name} cost changed")
        np.testing.assert_allclose(after[name][1], before[name][1], rtol=1e-5, atol=1e-6,
                                   err_msg=f"{name} sensitivities changed")
    assert after["agg-dso1"] == before["agg-dso1"], "agg-dso1's envelope changed"
    total = sum(COUNTS.values())
    per_rpc = ", ".join(f"{k} {v}" for k, v in sorted(COUNTS.items()))
    SUMMARY_LINES.append(f"fuzz (seed {SEED}): {total} cases over {len(COUNTS)} RPCs; answers "
                         f"{dict(sorted(CODES.items()))}; zero UNKNOWN, every server SERVING and answering as "
                         "before")
    SUMMARY_LINES.append(f"fuzz cases per RPC: {per_rpc}")


# --------------------------------------------------------------------------------------------------
# regressions: what the fuzzing found, each fixed at its source


def _key(run: str) -> common_pb2.RunKey:
    return common_pb2.RunKey(run_id=f"regression-{run}", round=1)


def _dispatch(name: str, p_ch: float, share: bool) -> tuple[str, str, str, Callable[[Target], Message]]:
    def make(t: Target) -> Message:
        n = t.lengths["p_ch_mw"]
        assert t.groups is not None
        shares = (1.0 / np.bincount(t.groups)[t.groups]).tolist() if share else []
        return aggregator_pb2.DispatchRequest(key=_key(name), p_ch_mw=[p_ch] * n, p_dis_mw=[0.0] * n,
                                              alloc_share=shares)

    return "agg-dso1", "AggregatorService", "Dispatch", make


REGRESSIONS: dict[str, tuple[tuple[str, str, str, Callable[[Target], Message]], grpc.StatusCode, str]] = {
    # rho * target overflowed inside cvxpy: INVALID_ARGUMENT "Problem data contains NaN or Inf" (no field named)
    "prox-huge-rho": (("tso", "TsoService", "Prox", lambda t: common_pb2.ProxRequest(
        key=_key("prox-huge-rho"), target_mw=[1.0] * N_GLOBAL, rho_usd_per_mw2=1e300)),
        grpc.StatusCode.INVALID_ARGUMENT, r"rho_usd_per_mw2 = 1e\+300 is outside"),
    # a denormal rho passed "> 0" and failed in the solver: FAILED_PRECONDITION "solver failed"
    "prox-denormal-rho": (("dso1", "DsoService", "Prox", lambda t: common_pb2.ProxRequest(
        key=_key("prox-denormal-rho"), target_mw=[1.0] * T_N, rho_usd_per_mw2=5e-324)),
        grpc.StatusCode.INVALID_ARGUMENT, r"rho_usd_per_mw2 = 5e-324 is outside"),
    # 1e300 MW reached the solver: FAILED_PRECONDITION "solver failed"
    "evaluate-huge-boundary": (("dso1", "DsoService", "Evaluate", lambda t: common_pb2.EvaluateRequest(
        key=_key("evaluate-huge-boundary"), boundary_mw=[1e300] * T_N)),
        grpc.StatusCode.INVALID_ARGUMENT, r"boundary_mw\[0\] = 1e\+300 is outside"),
    # surrogate weights of 1e300 overflowed W x + b inside the solver
    "optimize-huge-weights": (("tso", "TsoService", "Optimize", lambda t: common_pb2.OptimizeRequest(
        key=_key("optimize-huge-weights"), center_mw=[1.0] * N_GLOBAL, move_mw=[1.0] * N_GLOBAL, others=[
            common_pb2.SurrogateTerm(index=[0], weights=common_pb2.IcnnWeights(
                n_inputs=1, n_hidden=1, w=[1e300], b=[0.0], v=[1.0], a=[0.0], c=0.0))])),
        grpc.StatusCode.INVALID_ARGUMENT, r"others\[0\]\.weights\.w\[0\] = 1e\+300 is outside"),
    # a 10 000-character ev_id was kept in the book for the day
    "reserve-huge-id": (("agg-open", "AggregatorService", "Reserve", lambda t: aggregator_pb2.ReservationRequest(
        ev_id="e" * 10_000, station="dso1-s1")), grpc.StatusCode.INVALID_ARGUMENT, r"ev_id: 10000 characters"),
    # a dispatch of zero: NaN unit profiles, refused as "p_ch_mw: entry 0 is not finite" (an internal array)
    "dispatch-zero": (_dispatch("dispatch-zero", 0.0, True), grpc.StatusCode.INVALID_ARGUMENT,
                      r"allocation group \d+ .* gains 0 MWh"),
    # no alloc_share with spatial groups: "fractions of group 37 sum to 2" for a field the client never sent
    "dispatch-no-share": (_dispatch("dispatch-no-share", 0.01, False), grpc.StatusCode.INVALID_ARGUMENT,
                          r"alloc_share: required"),
}


@settings(max_examples=len(REGRESSIONS), deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(sorted(REGRESSIONS)))
@example("prox-huge-rho")
@example("prox-denormal-rho")
@example("evaluate-huge-boundary")
@example("optimize-huge-weights")
@example("reserve-huge-id")
@example("dispatch-zero")
@example("dispatch-no-share")
def test_regressions(fleet_servers: dict[str, Target], baseline: dict[str, Any], case: str) -> None:
    (server, service, method, make), code, detail = REGRESSIONS[case]
    target = fleet_servers[server]
    request = make(target)
    send(target, service, method, request.SerializeToString(), _method(service, method).output_type)
    assert target.channel is not None
    rpc = target.channel.unary_unary(f"/gridcoord.v1.{service}/{method}")
    with pytest.raises(grpc.RpcError) as info:
        rpc(request.SerializeToString(), timeout=DEADLINE_S)
    assert info.value.code() == code and re.search(detail, info.value.details()), info.value.details()


def test_surrogate_layouts_are_bounded(fleet_servers: dict[str, Target], baseline: dict[str, Any]) -> None:
    """Each new surrogate layout compiled a new problem, kept forever: a client could grow a server without
    end. Beyond MAX_SURROGATE_LAYOUTS the answer is RESOURCE_EXHAUSTED, and known layouts still work."""
    from core.service import MAX_SURROGATE_LAYOUTS
    from gridcoord.v1 import tso_pb2_grpc

    stub = tso_pb2_grpc.TsoServiceStub(fleet_servers["tso"].channel)

    def optimize(hidden: int, run: str) -> grpc.StatusCode:
        term = common_pb2.SurrogateTerm(index=[0], weights=common_pb2.IcnnWeights(
            n_inputs=1, n_hidden=hidden, w=[0.1] * hidden, b=[0.0] * hidden, v=[1.0] * hidden, a=[0.0], c=0.0))
        request = common_pb2.OptimizeRequest(key=_key(run), center_mw=[1.0] * N_GLOBAL, move_mw=[1.0] * N_GLOBAL,
                                             others=[term])
        try:
            stub.Optimize(request, timeout=DEADLINE_S)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc.details()
            assert "surrogate layouts" in exc.details()
            return exc.code()
        return grpc.StatusCode.OK

    codes = [optimize(h, f"layout-{h}") for h in range(1, MAX_SURROGATE_LAYOUTS + 3)]
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
    assert optimize(1, "layout-again") == grpc.StatusCode.OK
