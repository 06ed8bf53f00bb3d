"""Every operator of a case as its own process talking real gRPC (deploy/local.py's launcher), on the
small test case (the reference case through services is ``gridcoord bench --services``).

One deployment per module; each test is a few rounds so the suite stays fast.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from core.case import load_case
from core.peers import load_services
from core.rpc import OperatorUnavailable
from core.tls import channel as tls_channel
from orchestrator.cli.launch import LocalDeployment
from orchestrator.results.run import summarize
from orchestrator.strategies import RunOptions, get_strategy
from orchestrator.system.embedded import build_system
from orchestrator.system.services import RemoteDso, ServicesSystem
from tests.helpers.cases import TINY_CASE

CASE = TINY_CASE  # the service plumbing, not the reference case's numbers
ROUNDS = 3


@pytest.fixture(scope="module")
def deployment(tiny_deployment: LocalDeployment) -> LocalDeployment:
    """The session's small-case operators (``tests/conftest.py``: they must exit 0 on SIGTERM at the end)."""
    assert tiny_deployment.case == CASE
    return tiny_deployment


def _options(executor: str) -> RunOptions:
    return RunOptions(progress=False, ac_check=False, extra={"executor": executor, "admm_max_rounds": ROUNDS})


def test_every_operator_serving(deployment: LocalDeployment) -> None:
    assert deployment.client_tls is not None, "LocalDeployment runs mTLS by default"
    for oid, address in deployment.services.items():
        with tls_channel(address, deployment.client_tls, oid) as ch:
            reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, oid


def test_service_mode_matches_embedded(deployment: LocalDeployment) -> None:
    """Same strategy, same rounds: objectives agree to 1e-6 (relative) and the rounds are the same."""
    spec = load_case(CASE)
    remote = ServicesSystem(spec, load_services(deployment.services_file), "equality", tls=deployment.client_tls)
    served = get_strategy("admm").run(remote, _options("serial"))
    system = build_system(CASE)
    embedded = get_strategy("admm").run(system, _options("serial"))
    j_served = summarize(spec, served)["objective_usd"]
    j_embedded = summarize(system.spec, embedded)["objective_usd"]
    assert served.traffic.rounds == embedded.traffic.rounds
    assert abs(j_served - j_embedded) <= 1e-6 * abs(j_embedded), (j_served, j_embedded)
    for k in system.feeder_ids:
        np.testing.assert_allclose(served.boundary_price_usd_per_mwh[k], embedded.boundary_price_usd_per_mwh[k],
                                   rtol=1e-6, atol=1e-6)


def test_third_party_client_from_protos_alone(deployment: LocalDeployment, tmp_path: Path) -> None:
    """Code generated from protos/ only (no project code) health-checks and calls every method; an
    empty request is INVALID_ARGUMENT or FAILED_PRECONDITION and the service stays SERVING."""
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "gen"
    out.mkdir()
    protos = sorted((root / "protos" / "gridcoord" / "v1").glob("*.proto"))
    from grpc_tools import protoc

    assert protoc.main(["protoc", f"-I{root / 'protos'}", f"--python_out={out}", f"--grpc_python_out={out}",
                        *[str(p.relative_to(root / "protos")) for p in protos]]) == 0
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    services = {oid: addr for oid, addr in deployment.services.items()}
    args = [str(deployment.tls_dir)] + [f"{oid}={addr}" for oid, addr in services.items()]
    proc = subprocess.run([sys.executable, str(script), str(out), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "methods called:" in proc.stdout
    calls = int(proc.stdout.split("methods called:")[1].split()[0])
    n_dso = len(load_case(CASE).feeders)
    # TSO 7 methods (Merge), each DSO 9 (Forecast, Dispatch, Redispatch), each aggregator 9 (Amend, Cancel,
    # PublishTariff, Redispatch)
    assert calls == 7 + n_dso * 9 + n_dso * 9


CLIENT = r'''
import importlib, sys
sys.path.insert(0, sys.argv[1])  # the freshly generated code comes first
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
calls = 0
tls_dir = sys.argv[2]  # mTLS: the trial CA and a participant's certificate and key (files only)
def creds(identity):
    return grpc.ssl_channel_credentials(open(f"{tls_dir}/ca.pem", "rb").read(),
                                        open(f"{tls_dir}/{identity}.key", "rb").read(),
                                        open(f"{tls_dir}/{identity}.pem", "rb").read())
for arg in sys.argv[3:]:
    oid, address = arg.split("=")
    role = "tso" if oid == "tso" else ("aggregator" if oid.startswith("agg-") else "dso")
    pb2 = importlib.import_module(f"gridcoord.v1.{role}_pb2")
    grpc_mod = importlib.import_module(f"gridcoord.v1.{role}_pb2_grpc")
    assert pb2.__file__.startswith(sys.argv[1]), pb2.__file__
    service = pb2.DESCRIPTOR.services_by_name[{"tso": "TsoService", "dso": "DsoService",
                                              "aggregator": "AggregatorService"}[role]]
    def stub_as(identity):
        ch = grpc.secure_channel(address, creds(identity), options=[("grpc.ssl_target_name_override", oid)])
        return ch, getattr(grpc_mod, service.name + "Stub")(ch)
    channel, stub = stub_as("orchestrator")
    _, own_dso = stub_as(oid.removeprefix("agg-")) if role == "aggregator" else (None, None)
    for method in service.methods:
        # an aggregator's envelopes, dispatch, tariff and re-booking belong to its own DSO only (core.tls.POLICY)
        own = role == "aggregator" and method.name in ("GetEnvelope", "Dispatch", "PublishTariff", "Redispatch")
        caller = own_dso if own else stub
        request_cls = getattr(importlib.import_module(method.input_type.file.name.replace("/", ".")[:-6] + "_pb2"),
                              method.input_type.name)
        try:
            getattr(caller, method.name)(request_cls(), timeout=30)
            raise AssertionError(f"{oid}.{method.name}: empty request was accepted")
        except grpc.RpcError as e:
            assert e.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION), \
                f"{oid}.{method.name}: {e.code()} {e.details()}"
        calls += 1
    status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
    assert status == health_pb2.HealthCheckResponse.SERVING, f"{oid} not SERVING after the calls"
print("methods called:", calls)
'''


def test_killed_dso_is_named_within_the_deadline(deployment: LocalDeployment) -> None:
    """Last in this module: a SIGKILLed DSO is reported as unavailable, by name, within the deadline."""
    t_n = load_case(CASE).periods
    dso = RemoteDso("dso2", deployment.services["dso2"], "kill-test", t_n, tls=deployment.client_tls)
    dso.forecast()
    deployment.kill("dso2")
    try:
        t0 = time.perf_counter()
        with pytest.raises(OperatorUnavailable, match="operator 'dso2' unavailable on Evaluate"):
            dso.evaluate(np.zeros(t_n))
        assert time.perf_counter() - t0 < 30.0
    finally:
        deployment.restart("dso2")  # the session's deployment serves other modules


importlib.invalidate_caches()


def test_dso_only_arguments_reach_the_dsos_alone(tmp_path: Path) -> None:
    """deploy/local.py --privacy dp starts the DSOs with the mechanism; the TSO and aggregators get no DP flags."""
    dp = ("--privacy", "dp", "--epsilon", "1.0", "--dp-rounds", "6")
    dep = LocalDeployment(CASE, tmp_path, ac_check=False, dso_args=dp)
    roles = dict((oid, role) for role, oid in dep.ops)
    assert sorted(set(roles.values())) == ["aggregator", "dso", "tso"]
    for oid, role in roles.items():
        cmd = dep.command(role, oid)
        has_dp = any(cmd[i:i + len(dp)] == list(dp) for i in range(len(cmd)))
        assert has_dp == (role == "dso"), (oid, cmd)
        assert ("--no-ac-check" in cmd) == (role == "dso")
