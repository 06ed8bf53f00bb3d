"""Load benchmark of the aggregator's reservation service (``gridcoord bench --reservations``).

Many concurrent clients (threads, each with its own gRPC channel, i.e. its own HTTP/2 connection) send
thousands of reservations over loopback to a real ``gridcoord serve aggregator`` process, with deliberate
duplicates (the same id sent by two clients at once, and a client retrying the request it just sent) and
deliberate over-capacity requests (more power than the station has). Afterwards everything is verified
from the service itself, not from the client's bookkeeping:

- zero lost: every request got exactly one answer; every id answered "accepted" is in the book
  (``ListReservations``) and every booked reservation was answered "accepted";
- zero duplicated: every id is in the book once and was accepted once (other acceptances are replays);
- every accepted reservation is scheduled: the envelopes (``GetEnvelope``, which closes the book) are
  dispatched (an LP over the envelopes with the stations' limits and the spatial allocation shares, as the
  DSO's model does, without the feeder network), and ``Dispatch`` reports, per EV, the stored energy
  delivered inside its own plug-in window: it must reach the EV's need.

Latency is measured per request around the blocking call (queueing in the server included).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cvxpy as cp
import grpc
import numpy as np
import scipy.sparse as sp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from core import convert, windows
from core.solver import value
from gridcoord.v1 import aggregator_pb2, aggregator_pb2_grpc, common_pb2

#: delivered energy may fall short of the need by this much (solver tolerance) [kWh]
DELIVERY_TOL_KWH = 1e-3


@dataclass(frozen=True)
class Job:
    """One request a client sends; ``retry``: send it again right after the answer (a lost-reply retry)."""

    index: int
    kind: str  # "normal" | "over_capacity" | "duplicate" | "duplicate_other_data"
    request: aggregator_pb2.ReservationRequest
    retry: bool = False


@dataclass
class Answer:
    job: int
    ev_id: str
    kind: str
    accepted: bool
    replay: bool
    reason_code: str
    latency_s: float
    error: str = ""
    resent: int = 0  # times the client re-sent it after a deadline
    busy: int = 0  # times the server answered "busy" (shed, nothing booked) and the client retried


@dataclass
class LoadReport:
    clients: int
    requests: int
    answers: int
    wall_s: float
    latency_ms: dict[str, float]
    throughput_per_s: float
    accepted: int  # distinct reservation ids accepted
    replays: int
    resent: int  # requests re-sent after a deadline (answered by the retry)
    refused: dict[str, int]
    errors: dict[str, int]
    lost: int
    duplicated: int
    unscheduled: int
    booked: int
    outside_window_kwh: float
    min_margin_kwh: float
    problems: list[str] = field(default_factory=list)
    stations: int = 0
    busy_retries: int = 0  # "busy" answers (shed by the server, nothing booked) that the client retried

    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """The figures ``--out DIR/reservations.json`` holds."""
        return {"requests": self.requests, "answers": self.answers, "lost": self.lost, "duplicated": self.duplicated,
                "unscheduled": self.unscheduled, "p50_ms": self.latency_ms["p50"], "p90_ms": self.latency_ms["p90"],
                "p99_ms": self.latency_ms["p99"], "max_ms": self.latency_ms["max"],
                "requests_per_s": self.throughput_per_s, "stations": self.stations, "clients": self.clients,
                "wall_s": self.wall_s, "accepted": self.accepted, "booked": self.booked, "replays": self.replays,
                "refused": dict(self.refused), "errors": dict(self.errors), "resent_after_deadline": self.resent,
                "busy_retries": self.busy_retries, "outside_window_kwh": self.outside_window_kwh,
                "min_margin_kwh": self.min_margin_kwh, "problems": list(self.problems), "ok": self.ok()}

    def write_json(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n")
        return path

    def format(self) -> str:
        lat = self.latency_ms
        lines = [
            f"reservations: {self.requests} requests from {self.clients} clients (own channel each) in "
            f"{self.wall_s:.2f} s: {self.throughput_per_s:.0f} requests/s",
            f"latency [ms]: p50 {lat['p50']:.1f}  p90 {lat['p90']:.1f}  p99 {lat['p99']:.1f}  max {lat['max']:.1f}",
            f"accepted {self.accepted} distinct ids (+{self.replays} replays of an accepted request); refused "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.refused.items())),
            f"lost {self.lost}, duplicated {self.duplicated}, accepted but not scheduled {self.unscheduled} "
            f"(booked {self.booked}; energy outside windows {self.outside_window_kwh:.3g} kWh; smallest "
            f"delivered - need {self.min_margin_kwh:.3g} kWh); RPC errors {sum(self.errors.values())}; re-sent after "
            f"a deadline {self.resent}",
        ]
        lines += [f"PROBLEM: {p}" for p in self.problems]
        return "\n".join(lines)


def make_jobs(count: int, stations: list[str], seed: int, *, dup_share: float = 0.05, retry_share: float = 0.05,
              over_share: float = 0.01) -> list[Job]:
    """``count`` requests: plausible EVs, plus duplicates, retries and over-capacity ones (by share)."""
    rng = np.random.default_rng(seed)
    jobs: list[Job] = []
    i = 0
    while len(jobs) < count:
        ev_id = f"lb{seed}-{i}"
        arrival = float(rng.integers(0, 24 * 4)) / 4
        dwell = float(rng.uniform(4.0, 14.0))
        p_kw = float(rng.choice([7.4, 11.0, 22.0]))
        need = float(min(rng.uniform(5.0, 30.0), 0.8 * p_kw * (dwell - 2.0)))
        kind = "normal"
        if rng.random() < over_share:  # more than any station's connection, for more than an hour
            kind, p_kw, dwell, need = "over_capacity", 5000.0, 2.5, 4000.0
        request = aggregator_pb2.ReservationRequest(
            ev_id=ev_id, arrival_h=arrival, departure_h=(arrival + dwell) % 24.0, energy_need_kwh=need,
            capacity_kwh=max(80.0, need + 10.0), soc_arrival_kwh=5.0, p_charge_kw=p_kw,
            p_discharge_kw=0.0, efficiency=0.92, station=str(rng.choice(stations)))
        jobs.append(Job(len(jobs), kind, request, retry=bool(rng.random() < retry_share)))
        if len(jobs) < count and rng.random() < dup_share:
            jobs.append(Job(len(jobs), "duplicate", request))
            if len(jobs) < count and rng.random() < 0.5:
                other = aggregator_pb2.ReservationRequest()
                other.CopyFrom(request)
                other.energy_need_kwh = need / 2
                jobs.append(Job(len(jobs), "duplicate_other_data", other))
        i += 1
    return jobs


def _key(run_id: str) -> common_pb2.RunKey:
    return convert.run_key(run_id, 1)


#: a client re-sends a request whose answer did not come within its deadline (safe: a repeat is a replay)
DEADLINE_RETRIES = 3


#: the served aggregator's gRPC worker threads: the book's decisions are GIL-bound, and on the 2-core development
#: machine 2 workers gave the best throughput and tail (1, 2, 4, 8, 16 measured: 1655, 1743, 1497, 1253, 1228
#: requests/s, p99 232, 225, 276, 370, 317 ms at 200 clients, 20,000 requests, 24 stations)
SERVER_WORKERS = 2

#: a client retries a "busy" answer (the server shed it, nothing booked) this often, with jittered backoff
BUSY_RETRIES = 8
BUSY_BACKOFF_S = 0.005


def _reserve(stub: aggregator_pb2_grpc.AggregatorServiceStub, job: Job, timeout_s: float) -> Answer:
    """One request, re-sent on DEADLINE_EXCEEDED/UNAVAILABLE and after a "busy" answer (jittered exponential
    backoff); latency from the first send to the answer."""
    t0 = time.perf_counter()
    busy = 0
    attempt = 0
    while True:
        try:
            r = stub.Reserve(job.request, timeout=timeout_s)
            if r.reason_code == "busy" and busy < BUSY_RETRIES:
                time.sleep(random.uniform(0.5, 1.5) * BUSY_BACKOFF_S * 2**busy)
                busy += 1
                continue
            return Answer(job.index, job.request.ev_id, job.kind, r.accepted, r.replay, r.reason_code,
                          time.perf_counter() - t0, resent=attempt, busy=busy)
        except grpc.RpcError as exc:
            code = exc.code()
            if code not in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE) or \
                    attempt == DEADLINE_RETRIES:
                return Answer(job.index, job.request.ev_id, job.kind, False, False, "", time.perf_counter() - t0,
                              code.name, resent=attempt, busy=busy)
            attempt += 1


def run_clients(address: str, jobs: list[Job], clients: int, timeout_s: float = 30.0) -> tuple[list[Answer], float]:
    """Send ``jobs`` from ``clients`` threads (job k goes to client k % clients; a duplicate lands on another
    client than its original); returns every answer and the wall time [s]."""
    queues: list[list[Job]] = [[] for _ in range(clients)]
    for job in jobs:
        queues[job.index % clients].append(job)
    answers: list[Answer] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client(queue: list[Job]) -> None:
        with grpc.insecure_channel(address) as channel:
            stub = aggregator_pb2_grpc.AggregatorServiceStub(channel)
            grpc.channel_ready_future(channel).result(timeout=max(timeout_s, 60.0))
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=max(timeout_s, 60.0))
            start.wait()
            mine: list[Answer] = []
            for job in queue:
                for _ in range(2 if job.retry else 1):
                    mine.append(_reserve(stub, job, timeout_s))
        with lock:
            answers.extend(mine)

    with ThreadPoolExecutor(max_workers=clients) as pool:
        futures = [pool.submit(client, q) for q in queues]
        start.wait()
        t0 = time.perf_counter()
        for f in futures:
            f.result()
        wall = time.perf_counter() - t0
    return answers, wall


def envelope_dispatch(env: convert.EnvelopeData, dt_h: float, n_periods: int) -> tuple[np.ndarray, np.ndarray,
                                                                                     np.ndarray]:
    """A dispatch of the envelopes (p_ch_mw, p_dis_mw per entry, alloc_share per envelope): bounds of envelope
    e scaled by its share a_e of its group (shares of a group sum to 1), |net station power| <= the station's
    limit, charging spread toward the night (a valley-filling price). The EV part of the DSO's model."""
    owner = windows.owner(env.dwell)
    w = owner.size
    period = windows.periods(env.start, env.dwell, n_periods)
    lmat = windows.cumsum_matrix(env.dwell)  # cumulative sum inside each envelope's window
    station_row = np.array([env.stations.index(s) for s in env.station_id])
    amat = windows.period_map(env.start, env.dwell, n_periods, station_row, len(env.stations))
    groups = np.asarray(env.alloc_group)
    gmat = sp.csr_matrix((np.ones(groups.size), (groups, np.arange(groups.size))))
    share = cp.Variable(groups.size, nonneg=True)
    scale = sp.csr_matrix((np.ones(w), (np.arange(w), owner)), shape=(w, groups.size)) @ share
    p_ch, p_dis = cp.Variable(w, nonneg=True), cp.Variable(w, nonneg=True)
    stored = lmat @ (cp.multiply(env.eta_ch[owner] * dt_h, p_ch) - cp.multiply(dt_h / env.eta_dis[owner], p_dis))
    price = 50.0 + 30.0 * np.cos(2 * np.pi * (period - 3) / n_periods)  # cheapest at 03:00 [$/MWh]
    cons = [gmat @ share == 1.0, p_ch <= cp.multiply(env.p_ch_max_mw, scale),
            p_dis <= cp.multiply(env.p_dis_max_mw, scale), stored >= cp.multiply(env.e_min_mwh, scale),
            stored <= cp.multiply(env.e_max_mwh, scale),
            cp.abs(amat @ (p_ch - p_dis)) <= np.repeat(env.station_p_max_mw, n_periods)]
    problem = cp.Problem(cp.Minimize(price @ (p_ch + p_dis) * dt_h), cons)
    problem.solve(solver="HIGHS")
    if problem.status != cp.OPTIMAL:
        raise RuntimeError(f"no dispatch of the envelopes within the station limits (status {problem.status})")
    shares = np.clip(value(share), 0.0, None)
    return np.maximum(value(p_ch), 0.0), np.maximum(value(p_dis), 0.0), shares / np.asarray(gmat @ shares)[groups]


def verify(address: str, answers: list[Answer], jobs: list[Job], clients: int, wall_s: float,
           dt_h: float = 1.0, n_periods: int = 24) -> LoadReport:
    """Check loss, duplication and scheduling against the service's own book and dispatch."""
    problems: list[str] = []
    sent = sum(2 if j.retry else 1 for j in jobs)
    per_job = Counter(a.job for a in answers)
    lost = sum(1 for j in jobs if per_job[j.index] != (2 if j.retry else 1))
    errors = Counter(a.error for a in answers if a.error)
    accepted_answers = Counter(a.ev_id for a in answers if a.accepted and not a.replay)
    accepted_ids = {a.ev_id for a in answers if a.accepted}
    with grpc.insecure_channel(address) as channel:
        stub = aggregator_pb2_grpc.AggregatorServiceStub(channel)
        book = stub.ListReservations(aggregator_pb2.ListReservationsRequest(key=_key("loadbench-audit")), timeout=60)
        booked_all = [e.ev_id for e in book.evs]
        ours = {j.request.ev_id for j in jobs}
        booked = [e for e in booked_all[book.preloaded:] if e in ours]
        envelope = stub.GetEnvelope(aggregator_pb2.EnvelopeRequest(key=_key("loadbench-envelope")), timeout=120)
        env = convert.envelope_from_proto(envelope)
        p_ch, p_dis, share = envelope_dispatch(env, dt_h, n_periods)
        outcome = stub.Dispatch(aggregator_pb2.DispatchRequest(
            key=_key("loadbench-dispatch"), p_ch_mw=p_ch.tolist(), p_dis_mw=p_dis.tolist(),
            alloc_share=share.tolist()), timeout=300)
        late = stub.Reserve(jobs[0].request, timeout=60)
        if late.accepted and not late.replay:
            problems.append("a reservation was accepted after the envelopes were sent")
    lost += len(accepted_ids - set(booked)) + len(set(booked) - accepted_ids)
    duplicated = (len(booked_all) - len(set(booked_all))) + sum(1 for n in accepted_answers.values() if n > 1)
    delivered = {o.ev_id: (o.delivered_kwh, o.need_kwh) for o in outcome.evs}
    margins = [delivered[i][0] - delivered[i][1] for i in booked if i in delivered]
    unscheduled = sum(1 for i in booked if i not in delivered) + sum(1 for m in margins if m < -DELIVERY_TOL_KWH)
    if lost:
        problems.append(f"{lost} reservations lost")
    if duplicated:
        problems.append(f"{duplicated} reservations duplicated")
    if unscheduled:
        problems.append(f"{unscheduled} accepted reservations not delivered in their window")
    if outcome.outside_window_kwh > DELIVERY_TOL_KWH:
        problems.append(f"{outcome.outside_window_kwh:.3g} kWh scheduled outside the EVs' windows")
    if errors:
        problems.append(f"RPC errors: {dict(errors)}")
    lat = np.array([a.latency_s for a in answers]) * 1e3
    refused = Counter(a.reason_code or "unknown" for a in answers if not a.accepted and not a.error)
    return LoadReport(
        clients=clients, requests=sent, answers=len(answers), wall_s=wall_s,
        latency_ms={q: float(np.percentile(lat, p)) for q, p in (("p50", 50), ("p90", 90), ("p99", 99))}
        | {"max": float(lat.max())},
        throughput_per_s=len(answers) / wall_s, accepted=len(accepted_ids),
        replays=sum(1 for a in answers if a.replay), resent=sum(a.resent for a in answers), refused=dict(refused),
        errors=dict(errors), lost=lost, busy_retries=sum(a.busy for a in answers),
        duplicated=duplicated, unscheduled=unscheduled, booked=len(booked),
        outside_window_kwh=float(outcome.outside_window_kwh), min_margin_kwh=float(min(margins, default=0.0)),
        problems=problems)


def city_case(n_stations: int, path: Path, p_max_kw: float = 400.0) -> Path:
    """A case file whose one feeder (the bundled ``ieee33-sched`` feeder) carries ``n_stations`` charging
    stations of ``p_max_kw`` each (nodes 2..33 in turn, every fourth a workplace) and no preloaded EVs: the
    book starts empty, every EV comes by reservation (a city aggregator for the reservations benchmark)."""
    import yaml

    from core.case import CASES_DIR

    if n_stations < 1:
        raise ValueError(f"--stations {n_stations} must be >= 1")
    data = yaml.safe_load((CASES_DIR / "ieee33-sched.yaml").read_text())
    f = data["feeders"][0]
    f["stations"] = [{"id": f"city-s{k + 1}", "node": 2 + k % 32, "p_max_kw": p_max_kw,
                      **({"kind": "work"} if k % 4 == 3 else {})} for k in range(n_stations)]
    f["evs"] = {"count": 0, "seed": 0}
    data["name"] = f"city-{n_stations}-stations"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def bench_reservations(case: str = "ieee30-3x33", operator_id: str = "agg-dso1", clients: int = 200,
                       count: int = 2000, seed: int = 1, workdir: Path | None = None, stations: int = 0,
                       deadline_s: float = 30.0) -> LoadReport:
    """Start ``gridcoord serve aggregator`` as its own process, load it, verify, stop it (SIGTERM).

    ``stations`` > 0: a generated city case (:func:`city_case`) instead of ``case``. ``deadline_s``: each
    request's deadline (the server answers "busy", nothing booked, what it cannot decide in time)."""
    from aggregator.inputs import stations_from_case
    from core.case import load_case
    from core.rpc import wait_serving
    from orchestrator.cli.launch import free_ports

    if clients < 1 or count < 1:
        raise ValueError(f"--clients {clients} and --count {count} must be >= 1")
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    if stations:
        case = str(city_case(stations, (workdir or Path(".")) / f"city-{stations}-stations.yaml"))
    spec = load_case(case)
    station_list = stations_from_case(spec, operator_id.removeprefix("agg-"))
    port = free_ports(1)[0]
    address = f"127.0.0.1:{port}"
    log_path = (workdir or Path(".")) / f"loadbench-{operator_id}.log"
    cmd = [sys.executable, "-m", "orchestrator.cli", "serve", "aggregator", "--case", case, "--id", operator_id,
           "--port", str(port), "--insecure",  # plaintext on loopback: the benchmark measures the book, not TLS
           "--workers", str(SERVER_WORKERS)]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        wait_serving(address, deadline_s=120.0)
        jobs = make_jobs(count, [s.station_id for s in station_list], seed)
        answers, wall = run_clients(address, jobs, clients, timeout_s=deadline_s)
        report = verify(address, answers, jobs, clients, wall, spec.dt_h, spec.periods)
        report.stations = len(station_list)
        return report
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
