"""Client mode: subspaces that live in operator services, reached over gRPC.

``RemoteTso`` and ``RemoteDso`` implement the subspace contract (``core.subspace.Subspace``), so every
strategy and both executors run unchanged: in client mode the Ray actors hold these stubs and call the
services. ``report`` returns the operator's published report (``TsoReport`` / ``FeederReport``).
"""

from __future__ import annotations

import itertools
import math
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core import convert
from core.case import CaseSpec
from core.icnn import SurrogateTerm
from core.peers import require
from core.privacy import PrivacyConfig
from core.rpc import OperatorUnavailable, call, health_status
from core.subspace import BoundaryStep, Columns, Evaluation, Merge, Proposal
from core.tls import TlsIdentity
from core.tls import channel as tls_channel
from core.traffic import Traffic
from dso.report import FeederReport
from gridcoord.v1 import common_pb2, dso_pb2, dso_pb2_grpc, tso_pb2, tso_pb2_grpc
from orchestrator.system import SubspaceSet
from tso.report import TsoReport

#: Deadlines per call [s]: an evaluation or optimisation is one solve (< 1 s here); a report runs an AC
#: power flow per period; generous enough for a loaded machine, short enough to notice a dead operator.
DEADLINE_S = {"Describe": 5.0, "Evaluate": 30.0, "Optimize": 60.0, "Respond": 30.0, "Prox": 30.0,
              "Report": 120.0, "Forecast": 10.0, "Merge": 60.0}
#: default recovery window [s]: how long a run waits for an operator that died to come back (``--operator-timeout``)
OPERATOR_TIMEOUT_S = 120.0
#: how long a new run waits for every operator to answer grpc.health before it starts anything [s]
REACH_S = 3.0


@dataclass
class _Link:
    operator_id: str
    address: str
    run_id: str
    #: how long an idempotent call waits for this operator to come back after UNAVAILABLE [s] (None: 4 retries)
    recovery_s: float | None = None
    #: the orchestrator's certificate (mTLS; the server must prove it is ``operator_id``); None: plaintext
    tls: TlsIdentity | None = None
    #: the operator is known to exist (a resumed run: it answered this run before), so the recovery window
    #: applies from the first call
    known: bool = False

    def __post_init__(self) -> None:
        self.channel = tls_channel(self.address, self.tls, self.operator_id)
        self.stats = Traffic()
        self._counter = itertools.count(1)
        #: the recovery window applies once the operator has answered this link (or is ``known``): one that
        #: never did and has nothing listening (a wrong address, an operator not started) is reported at once
        self._reached = self.known

    def key(self) -> common_pb2.RunKey:
        """A fresh (run id, exchange number): a retry of one call reuses it, so it is never counted twice."""
        return convert.run_key(self.run_id, next(self._counter))

    def call(self, method: str, fn: Any, request: Any, idempotent_call: bool = True) -> Any:
        def send(recovery_s: float | None) -> Any:
            return call(self.operator_id, method, fn, request, deadline_s=DEADLINE_S[method],
                        idempotent_call=idempotent_call, stats=self.stats, recovery_s=recovery_s,
                        channel=self.channel)

        if self._reached or self.recovery_s is None or not idempotent_call:
            answer = send(self.recovery_s if self._reached else None)
        else:
            try:
                answer = send(None)
            except OperatorUnavailable:
                # a server that answers grpc.health (NOT_SERVING: still building its model) is there: it
                # gets the recovery window; nothing listening at the address is reported at once
                if health_status(self.channel, 2.0) is None:
                    raise
                answer = send(self.recovery_s)
        self._reached = True
        return answer

    def __getstate__(self) -> dict[str, Any]:  # a link is rebuilt on the Ray worker, not pickled live
        return {"operator_id": self.operator_id, "address": self.address, "run_id": self.run_id,
                "recovery_s": self.recovery_s, "tls": self.tls, "known": self._reached}

    def __setstate__(self, state: dict[str, Any]) -> None:
        rebuilt = _Link(**state)  # a fresh channel on this side
        self.__dict__.update(rebuilt.__dict__)


class _RemoteSubspace:
    """The coordination calls every subspace service answers; ``shape`` is the operator's boundary shape."""

    def __init__(self, operator_id: str, address: str, run_id: str, shape: tuple[int, ...], stub_cls: Any,
                 recovery_s: float | None = None, tls: TlsIdentity | None = None, known: bool = False) -> None:
        self.operator_id = self.name = operator_id
        self.link = _Link(operator_id, address, run_id, recovery_s, tls, known)
        self.stub = stub_cls(self.link.channel)
        self.shape = shape

    def evaluate(self, boundary: np.ndarray) -> Evaluation:
        req = common_pb2.EvaluateRequest(key=self.link.key(), boundary_mw=np.ravel(boundary).tolist())
        return convert.evaluation_from_proto(self.link.call("Evaluate", self.stub.Evaluate, req), self.shape)

    def evaluate_many(self, points: np.ndarray) -> list[Evaluation]:
        return [self.evaluate(p) for p in np.atleast_2d(points)]

    def optimize(self, others: Sequence[SurrogateTerm], center: np.ndarray, move: np.ndarray) -> Proposal:
        req = common_pb2.OptimizeRequest(key=self.link.key(), others=convert.others_to_proto(
            others, [f"surrogate{j}" for j in range(len(others))]), center_mw=np.ravel(center).tolist(),
            move_mw=np.ravel(move).tolist())
        return convert.proposal_from_proto(self.link.call("Optimize", self.stub.Optimize, req))

    def respond(self, price_usd_per_mwh: np.ndarray) -> BoundaryStep:
        req = common_pb2.RespondRequest(key=self.link.key(), price_usd_per_mwh=np.ravel(price_usd_per_mwh).tolist())
        return convert.boundary_step_from_proto(self.link.call("Respond", self.stub.Respond, req), self.shape)

    def prox(self, target_mw: np.ndarray, rho: float) -> BoundaryStep:
        req = common_pb2.ProxRequest(key=self.link.key(), target_mw=np.ravel(target_mw).tolist(),
                                     rho_usd_per_mw2=float(rho))
        return convert.boundary_step_from_proto(self.link.call("Prox", self.stub.Prox, req), self.shape)

    def merge(self, columns: Columns) -> Merge:
        raise NotImplementedError(f"operator {self.operator_id!r} sees only its own slice of the boundary: it does "
                                  "not merge")

    def wire_stats(self) -> Traffic:
        return self.link.stats


class RemoteTso(_RemoteSubspace):
    """The TSO service as a subspace over the boundary P (K, T)."""

    def __init__(self, operator_id: str, address: str, run_id: str, n_dso: int, n_periods: int,
                 recovery_s: float | None = None, tls: TlsIdentity | None = None, known: bool = False) -> None:
        super().__init__(operator_id, address, run_id, (n_dso, n_periods), tso_pb2_grpc.TsoServiceStub, recovery_s,
                         tls, known)

    def merge(self, columns: Columns) -> Merge:
        msg = self.link.call("Merge", self.stub.Merge, convert.columns_to_proto(self.link.key(), columns))
        return convert.merge_from_proto(msg, self.shape[0], self.shape)

    def report(self, boundary: np.ndarray) -> TsoReport:
        req = tso_pb2.TsoReportRequest(key=self.link.key(), boundary_mw=np.ravel(boundary).tolist())
        return convert.tso_report_from_proto(self.link.call("Report", self.stub.Report, req), TsoReport)


class RemoteDso(_RemoteSubspace):
    """A DSO service as a subspace over its import P_k (T,)."""

    def __init__(self, operator_id: str, address: str, run_id: str, n_periods: int,
                 recovery_s: float | None = None, tls: TlsIdentity | None = None, known: bool = False) -> None:
        super().__init__(operator_id, address, run_id, (n_periods,), dso_pb2_grpc.DsoServiceStub, recovery_s, tls,
                         known)

    def report(self, boundary: np.ndarray) -> FeederReport:
        req = dso_pb2.DsoReportRequest(key=self.link.key(), boundary_mw=np.ravel(boundary).tolist())
        msg = self.link.call("Report", self.stub.Report, req)
        return convert.dso_report_from_proto(msg, FeederReport, self.operator_id)

    def forecast(self, privacy: PrivacyConfig | None = None) -> np.ndarray:
        """The DSO's import forecast; refused (``PrivacyMismatch``) when the mechanism the DSO reports is not
        ``privacy``, the run's (None: the run expects exact values)."""
        req = dso_pb2.ForecastRequest(key=self.link.key())
        msg = self.link.call("Forecast", self.stub.Forecast, req)
        theirs = (msg.dp_epsilon, msg.dp_delta, int(msg.dp_releases)) if msg.dp_epsilon > 0 else None
        ours = None if privacy is None else (privacy.epsilon, privacy.delta, privacy.releases)
        if not _same_mechanism(theirs, ours):
            raise PrivacyMismatch(f"operator {self.operator_id!r} sends {_mechanism_text(theirs)}, but this run "
                                  f"expects {_mechanism_text(ours)}: start the DSO services and the run with the "
                                  "same --privacy settings (the run's epsilon accounting is what the DSOs release)")
        return np.asarray(list(msg.p_import_mw), dtype=float)


def _same_mechanism(a: tuple[float, float, int] | None, b: tuple[float, float, int] | None) -> bool:
    if a is None or b is None:
        return a is b
    return a[2] == b[2] and math.isclose(a[0], b[0], rel_tol=1e-12) and math.isclose(a[1], b[1], rel_tol=1e-12)


def _mechanism_text(m: tuple[float, float, int] | None) -> str:
    return "exact values (no mechanism)" if m is None else (
        f"the Gaussian mechanism at epsilon {m[0]:g}, delta {m[1]:g} over {m[2]} releases")


class PrivacyMismatch(ValueError):
    """A DSO service's privacy mechanism differs from the run's (``--privacy``/``--epsilon``/``--delta``/rounds)."""


class ServicesSystem:
    """What the orchestrator knows in client mode: the case's public structure (operator ids, periods)
    and where the operators are. It holds no operator's network, loads, costs or EVs.

    ``tls``: the orchestrator's certificate (mTLS to every operator); plaintext only with ``insecure=True``.
    ``privacy``: the DSOs' mechanism the run accounts for (``--privacy dp``); every DSO must report the same in its
    forecast, else the run is refused before any coordination (``PrivacyMismatch``)."""

    mode = "services"

    def __init__(self, spec: CaseSpec, services: dict[str, str], run_id: str,
                 operator_timeout_s: float | None = OPERATOR_TIMEOUT_S, *, tls: TlsIdentity | None = None,
                 insecure: bool = False, resumed: bool = False, privacy: PrivacyConfig | None = None) -> None:
        if (tls is None) == (not insecure):
            raise ValueError("ServicesSystem: give tls=TlsIdentity(DIR, 'orchestrator') (mTLS) or insecure=True "
                             "(plaintext, local development), not both or neither")
        self.tls = tls.check() if tls is not None else None
        self.spec = spec
        self.services = services
        self.run_id = run_id
        #: recovery window of every coordination call [s]: an operator that dies may come back within it
        self.operator_timeout_s = operator_timeout_s
        #: a resumed run: every operator answered this run before, so the window applies from the first call
        #: (services restarted together with the orchestrator may still be starting)
        self.resumed = resumed
        #: every operator answered grpc.health before the run (``check_reachable``): each is known to exist,
        #: so the window applies from the first call (CSSO and ADMM first call a DSO in round 2, after the
        #: TSO alone has evaluated the start: one that dies in between is waited for, not taken for a typo)
        self.reachable = False
        self.privacy = privacy
        require(services, "tso")
        for fid in spec.feeder_ids:
            require(services, fid)

    @property
    def feeder_ids(self) -> list[str]:
        return self.spec.feeder_ids

    @property
    def n_periods(self) -> int:
        return int(self.spec.periods)

    @property
    def dt_h(self) -> float:
        return float(self.spec.dt_h)

    def subspaces(self, solver: str, ac_check: bool) -> SubspaceSet:
        """Stubs that call the services (built on the Ray workers). ``solver`` and ``ac_check`` are each
        operator's own business (``gridcoord serve --solver/--no-ac-check``).

        Each call starts a new coordination (a fresh run id), whose exchanges are numbered from 1."""
        k, t = len(self.feeder_ids), self.n_periods
        run_id = f"{self.run_id}-{uuid.uuid4().hex[:8]}"
        w, known = self.operator_timeout_s, self.resumed or self.reachable
        facs: list[tuple[Any, tuple[Any, ...]]] = [(RemoteTso, ("tso", self.services["tso"], run_id, k, t, w,
                                                                self.tls, known))]
        facs += [(RemoteDso, (fid, self.services[fid], run_id, t, w, self.tls, known)) for fid in self.feeder_ids]
        return SubspaceSet(factories=facs, names=["tso", *self.feeder_ids], remote=True)

    def check_reachable(self, within_s: float = REACH_S) -> None:
        """Every operator answers grpc.health within ``within_s`` (NOT_SERVING, still building its model,
        counts: the recovery window covers it), else ``OperatorUnavailable`` naming every one that did not.

        A new run calls this before it starts Ray or writes anything, so a wrong address or an operator not
        started is one error in seconds; after it every operator is known (``reachable``). A resumed run
        skips it: its operators may be restarting."""
        if self.resumed:
            return
        ids = ["tso", *self.feeder_ids]
        silent: dict[str, str] = {}

        def probe(operator_id: str) -> None:
            channel = tls_channel(self.services[operator_id], self.tls, operator_id)
            try:
                end = time.monotonic() + within_s
                while health_status(channel, min(1.0, max(0.05, end - time.monotonic()))) is None:
                    if time.monotonic() >= end:
                        silent[operator_id] = self.services[operator_id]
                        return
                    time.sleep(0.2)
            finally:
                channel.close()

        threads = [threading.Thread(target=probe, args=(i,), daemon=True) for i in ids]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        missing = [i for i in ids if i in silent]  # the case's order, not the threads'
        if missing:
            names = ", ".join(f"{i} at {silent[i]}" for i in missing)
            how = "mTLS" if self.tls is not None else "plaintext"
            raise OperatorUnavailable(missing[0], "grpc.health Check",
                                      f"{len(missing)} of {len(ids)} operators did not answer within {within_s:g} s "
                                      f"({how}): {names} (not started, wrong address, or TLS handshake refused)")
        self.reachable = True

    def forecast_mw(self) -> np.ndarray:
        """The DSOs' naive import forecasts (K*T,), asked for directly (the start of every iterative strategy)."""
        run_id = f"{self.run_id}-forecast-{uuid.uuid4().hex[:8]}"
        return np.concatenate([RemoteDso(fid, self.services[fid], run_id, self.n_periods, self.operator_timeout_s,
                                         self.tls, self.resumed).forecast(self.privacy) for fid in self.feeder_ids])
