"""Start every operator of a case as its own OS process on loopback (``deploy/local.py``, tests).

Each operator is ``python -m orchestrator.cli serve ROLE --id ID --port P --services FILE``; the
services file maps every operator id to its address. ``LocalDeployment`` waits until every server
reports SERVING on grpc.health.v1 and stops them all with SIGTERM (drain) on exit.

By default every operator runs with mTLS: a trial CA and one certificate per participant are created in
``WORKDIR/tls`` (kept across restarts of one operator), each operator writes its security-event log to
``WORKDIR/security-ID.jsonl``, and ``client_tls`` is the orchestrator's identity for ``ServicesSystem``.
``insecure=True`` runs plaintext (local development).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import yaml

from core.case import load_case, operators
from core.rpc import wait_serving
from core.tls import TlsIdentity, channel_credentials
from orchestrator.cli.certs import ORCHESTRATOR_ID, create_trial


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class LocalDeployment:
    """Operators of ``case`` as processes; ``services_file`` is what ``gridcoord run --services`` reads."""

    def __init__(self, case: str, workdir: Path, *, ac_check: bool = True, ready_timeout_s: float = 300.0,
                 extra_args: tuple[str, ...] = (), insecure: bool = False, dso_args: tuple[str, ...] = ()) -> None:
        self.case = case
        self.workdir = Path(workdir)
        self.insecure = insecure
        self.tls_dir = self.workdir / "tls"
        #: the orchestrator's certificate for ``ServicesSystem(..., tls=dep.client_tls)``; None when insecure
        self.client_tls = None if insecure else TlsIdentity(str(self.tls_dir), ORCHESTRATOR_ID)
        self.ac_check = ac_check
        self.ready_timeout_s = ready_timeout_s
        self.extra_args = extra_args
        #: arguments for the DSOs' ``gridcoord serve dso`` only (e.g. ``--privacy dp --epsilon 1 --dp-rounds 20``)
        self.dso_args = dso_args
        self.ops = operators(load_case(case))
        self.ports = dict(zip((oid for _, oid in self.ops), free_ports(len(self.ops)), strict=True))
        self.services = {oid: f"127.0.0.1:{port}" for oid, port in self.ports.items()}
        self.services_file = self.workdir / "services.yaml"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def command(self, role: str, oid: str) -> list[str]:
        cmd = [sys.executable, "-m", "orchestrator.cli", "serve", role, "--case", self.case, "--id", oid,
               "--port", str(self.ports[oid]), "--services", str(self.services_file), *self.extra_args]
        cmd += (["--insecure"] if self.insecure else
                ["--tls-dir", str(self.tls_dir), "--security-log", str(self.workdir / f"security-{oid}.jsonl")])
        if role == "aggregator":  # its reservation book survives a restart (``restart(oid)``)
            cmd += ["--state-dir", str(self.workdir / "state")]
        if role == "dso":
            cmd += [*self.dso_args, *([] if self.ac_check else ["--no-ac-check"])]
        return cmd

    def start(self, only: str | tuple[str, ...] | None = None) -> None:
        """Start every operator (or just ``only``: one id or several) and wait until each is SERVING."""
        chosen = None if only is None else ((only,) if isinstance(only, str) else only)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.services_file.write_text(yaml.safe_dump(self.services))
        if not self.insecure and not (self.tls_dir / "ca.pem").is_file():
            create_trial(self.case, self.tls_dir)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        for role, oid in self.ops:
            if chosen is not None and oid not in chosen:
                continue
            log = open(self.workdir / f"{oid}.log", "ab")  # noqa: SIM115 - owned by the process
            self.procs[oid] = subprocess.Popen(self.command(role, oid), stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.ready_timeout_s
        for oid in self.procs if chosen is None else chosen:
            left = max(1.0, deadline - time.monotonic())
            try:
                wait_serving(self.services[oid], deadline_s=left, target_name=oid,
                             credentials=None if self.client_tls is None else channel_credentials(self.client_tls))
            except TimeoutError:
                code = self.procs[oid].poll()
                tail = (self.workdir / f"{oid}.log").read_text()[-2000:]
                raise RuntimeError(f"operator {oid!r} not SERVING after {self.ready_timeout_s:.0f} s "
                                   f"(exit code {code}); log tail:\n{tail}") from None

    def kill(self, oid: str) -> None:
        """SIGKILL one operator (fault-injection in tests)."""
        proc = self.procs.pop(oid)
        proc.kill()
        proc.wait(10)

    def restart(self, oid: str) -> None:
        """Start operator ``oid`` again (same id and port, a new process that rebuilds its model and
        starts with an empty ledger) and wait until it is SERVING; kills it first if it is running."""
        if oid in self.procs:
            self.kill(oid)
        self.start(only=oid)

    def stop(self, grace_s: float = 10.0) -> dict[str, int]:
        """SIGTERM every operator, wait for a clean exit; returns exit codes."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {}
        for oid, proc in self.procs.items():
            try:
                codes[oid] = proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[oid] = proc.wait(5)
        self.procs = {}
        return codes

    def __enter__(self) -> LocalDeployment:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
