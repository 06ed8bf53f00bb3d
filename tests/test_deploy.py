"""Deployment manifests under deploy/: parsed and cross-checked (no container engine or cluster here)."""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator.case import load_case
from orchestrator.cli import DISTRIBUTED, build_parser
from orchestrator.remote import load_services
from orchestrator.serve import operators

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
CASE = "ieee30-3x33"
PORT = 50051
SERVICES_PATH = "/etc/gridcoord/services.yaml"


def _load_generate():  # deploy/ is not a package: load the script as a module
    spec = importlib.util.spec_from_file_location("deploy_k8s_generate", K8S / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


gen = _load_generate()


@pytest.fixture(scope="module")
def ops() -> list[tuple[str, str]]:
    """What `gridcoord operators --case ieee30-3x33` prints, via the CLI itself."""
    out = subprocess.run([sys.executable, "-m", "orchestrator.cli", "operators", "--case", CASE],
                         check=True, capture_output=True, text=True, cwd=ROOT).stdout
    pairs = [tuple(line.split()) for line in out.splitlines() if line.strip()]
    assert pairs == operators(load_case(CASE))
    return pairs  # type: ignore[return-value]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def k8s_docs() -> list[dict]:
    docs = []
    for p in sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(p.read_text()) if d is not None]
    return docs


def _parse(argv: list[str]):
    """Parse with the real CLI parser; argparse errors become test failures naming the argv."""
    try:
        return build_parser().parse_args(argv)
    except SystemExit as exc:  # pragma: no cover - the failure message is the point
        pytest.fail(f"`gridcoord {' '.join(argv)}` is not a valid command line ({exc})")


def _kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


# --- every YAML parses -------------------------------------------------------------------------------

def test_every_yaml_under_deploy_parses():
    files = sorted(DEPLOY.rglob("*.yaml"))
    assert {p.name for p in files} >= {"compose.yaml", "services.compose.yaml", "kustomization.yaml", "ray.yaml"}
    for p in files:
        docs = [d for d in yaml.safe_load_all(p.read_text()) if d is not None]
        assert docs, f"{p} has no document"
        assert all(isinstance(d, dict) for d in docs), p


# --- compose -----------------------------------------------------------------------------------------

def test_compose_services_are_exactly_the_operators_plus_orchestrator(compose, ops):
    names = set(compose["services"]) - {"orchestrator"}
    assert names == {oid for _, oid in ops}
    assert "orchestrator" in compose["services"]


def test_compose_operator_commands_parse_and_match_the_services_file(compose, ops):
    services = load_services(DEPLOY / "services.compose.yaml")
    assert services == {oid: f"{oid}:{PORT}" for _, oid in ops}
    for role, oid in ops:
        svc = compose["services"][oid]
        args = _parse([str(a) for a in svc["command"]])
        assert (args.command, args.role, args.id, args.case) == ("serve", role, oid, CASE), oid
        assert args.host == "0.0.0.0", f"{oid} must bind all interfaces inside its container"
        host, port = services[oid].rsplit(":", 1)
        assert host == oid and int(port) == args.port == PORT, oid
        assert args.services == SERVICES_PATH
        assert f"./services.compose.yaml:{SERVICES_PATH}:ro" in svc["volumes"], oid
        assert "50051" in " ".join(svc["healthcheck"]["test"]), oid
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / svc["build"]["context"]).resolve() == ROOT


def test_compose_orchestrator_runs_client_mode_after_every_operator_is_healthy(compose, ops):
    orch = compose["services"]["orchestrator"]
    args = _parse([str(a) for a in orch["command"]])
    assert args.command == "run" and args.strategy in DISTRIBUTED and args.case == CASE
    assert args.services == SERVICES_PATH
    assert f"./services.compose.yaml:{SERVICES_PATH}:ro" in orch["volumes"]
    assert orch["depends_on"] == {oid: {"condition": "service_healthy"} for _, oid in ops}
    out_volume = [v for v in orch["volumes"] if v.endswith(":/var/lib/gridcoord/runs")]
    assert out_volume and args.out.startswith("/var/lib/gridcoord/runs/")


def test_compose_network_is_internal_and_nothing_is_published(compose):
    assert compose["networks"]["operators"]["internal"] is True
    for name, svc in compose["services"].items():
        assert "ports" not in svc, f"{name} publishes ports to the host"
        assert svc["networks"] == ["operators"], name


def test_compose_healthcheck_probe_is_real_code():
    """The healthcheck runs `python -c CODE`: CODE must at least import what it calls."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    test = compose["services"]["tso"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    code = test[3]
    compile(code, "healthcheck", "exec")
    from gridcoord.rpc import wait_serving  # noqa: F401 - the import the probe does

    with pytest.raises(TimeoutError):  # nothing listens here: the probe must fail, not pass
        exec(code.replace("127.0.0.1:50051", "127.0.0.1:1").replace("deadline_s=4.0", "deadline_s=0.3"))


# --- Kubernetes --------------------------------------------------------------------------------------

def test_generate_output_equals_committed_manifests():
    files = gen.render(CASE)
    assert gen.stale(files, K8S) == [], "run `python deploy/k8s/generate.py`"
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kust["resources"]) == sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def test_generate_follows_the_operator_list():
    ops = [("tso", "tso"), ("dso", "north"), ("aggregator", "agg-north")]
    files = gen.render(CASE, ops)
    assert {n for n in files if n.startswith("operator-")} == {"operator-tso.yaml", "operator-north.yaml",
                                                                "operator-agg-north.yaml"}
    cm = yaml.safe_load(files["services-configmap.yaml"])
    assert yaml.safe_load(cm["data"]["services.yaml"]) == {
        "tso": "tso.gridcoord.svc:50051", "north": "north.gridcoord.svc:50051",
        "agg-north": "agg-north.gridcoord.svc:50051"}
    with pytest.raises(gen.ManifestError, match="Dso_1"):
        gen.parse_operators("dso Dso_1\n")
    with pytest.raises(gen.ManifestError, match="planner"):
        gen.parse_operators("planner p1\n")


def test_k8s_deployments_and_services_are_exactly_the_operators(k8s_docs, ops):
    ids = {oid for _, oid in ops}
    deployments = {d["metadata"]["name"]: d for d in _kind(k8s_docs, "Deployment")}
    services = {d["metadata"]["name"]: d for d in _kind(k8s_docs, "Service")}
    assert set(deployments) == ids
    assert set(services) == ids
    for d in k8s_docs:
        if d["kind"] not in ("Namespace", "Kustomization"):
            assert d["metadata"]["namespace"] == "gridcoord", d["metadata"]["name"]
    for role, oid in ops:
        dep, svc = deployments[oid], services[oid]
        pod = dep["spec"]["template"]
        assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items(), oid
        assert svc["spec"]["type"] == "ClusterIP"
        (c,) = pod["spec"]["containers"]
        args = _parse(c["args"])
        assert (args.command, args.role, args.id, args.case, args.host) == ("serve", role, oid, CASE, "0.0.0.0")
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports == {"grpc": args.port}
        (sp,) = svc["spec"]["ports"]
        assert sp["port"] == args.port and sp["targetPort"] == "grpc"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert c[probe]["grpc"] == {"port": args.port}, (oid, probe)
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        vols = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert vols[mounts[str(Path(args.services).parent)]]["configMap"]["name"] == "gridcoord-services"
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_k8s_services_configmap_matches_services(k8s_docs, ops, tmp_path):
    (cm,) = [d for d in _kind(k8s_docs, "ConfigMap") if d["metadata"]["name"] == "gridcoord-services"]
    path = tmp_path / "services.yaml"
    path.write_text(cm["data"]["services.yaml"])
    services = load_services(path)  # what `gridcoord run/serve --services` reads
    assert set(services) == {oid for _, oid in ops}
    svc_ports = {d["metadata"]["name"]: d["spec"]["ports"][0]["port"] for d in _kind(k8s_docs, "Service")}
    for oid, address in services.items():
        host, port = address.rsplit(":", 1)
        name, ns, suffix = host.split(".")
        assert (name, ns, suffix) == (oid, "gridcoord", "svc"), address
        assert svc_ports[name] == int(port), oid


def test_k8s_rayjob_entrypoint_is_a_client_mode_run(k8s_docs):
    (cluster,) = _kind(k8s_docs, "RayCluster")
    (job,) = _kind(k8s_docs, "RayJob")
    assert job["spec"]["clusterSelector"] == {"ray.io/cluster": cluster["metadata"]["name"]}
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[0] == "gridcoord"
    args = _parse(argv[1:])
    assert args.command == "run" and args.strategy in DISTRIBUTED and args.ray_address == "auto"
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in head["containers"][0]["volumeMounts"]}
    vols = {v["name"]: v for v in head["volumes"]}
    assert vols[mounts[str(Path(args.services).parent)]]["configMap"]["name"] == "gridcoord-services"
    assert any(args.out.startswith(m + "/") for m in mounts), "the run's --out must be a mounted volume"


def test_k8s_ray_token_auth_and_nothing_exposed(k8s_docs):
    (cluster,) = _kind(k8s_docs, "RayCluster")
    assert cluster["spec"]["authOptions"] == {"mode": "token"}
    major, minor, _ = (int(x) for x in cluster["spec"]["rayVersion"].split("."))
    assert (major, minor) >= (2, 52), "Ray token authentication needs Ray >= 2.52"
    assert cluster["spec"]["headGroupSpec"]["serviceType"] == "ClusterIP"
    assert not _kind(k8s_docs, "Ingress")
    for svc in _kind(k8s_docs, "Service"):
        assert svc["spec"].get("type", "ClusterIP") == "ClusterIP", svc["metadata"]["name"]
    (pol,) = _kind(k8s_docs, "NetworkPolicy")
    peers = pol["spec"]["ingress"][0]["from"]
    assert {"podSelector": {"matchLabels": {"ray.io/cluster": cluster["metadata"]["name"]}}} in peers
    assert pol["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": PORT}]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kubectl_kustomize_builds_offline(ops):
    out = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(out.stdout) if d]
    assert kinds.count("Deployment") == len(ops) and kinds.count("RayJob") == 1


# --- Dockerfile --------------------------------------------------------------------------------------

def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out, buf = [], ""
    for line in text.splitlines():
        s = line.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if s.startswith("#"):
            continue
        buf += " " + s.rstrip("\\").strip()
        if not s.endswith("\\"):
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            buf = ""
    return out


def test_dockerfile_torch_cpu_first_then_project_entrypoint_gridcoord():
    ins = _instructions((DEPLOY / "Dockerfile").read_text())
    assert ins[0] == ("FROM", "python:3.11-slim")
    runs = [(i, a) for i, (k, a) in enumerate(ins) if k == "RUN"]
    torch = [i for i, a in runs if "torch==2.13.0" in a and "download.pytorch.org/whl/cpu" in a]
    project = [i for i, a in runs if "pip install ." in a]
    assert torch and project and torch[0] < project[0], "CPU torch must be installed before the project"
    assert ("ENTRYPOINT", json.dumps(["gridcoord"])) in ins
    users = [a for k, a in ins if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    for k, a in ins:  # every COPY source exists in the build context (the repository root)
        if k == "COPY":
            for src in a.split()[:-1]:
                assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    for k, a in ins:
        if k == "COPY":
            for src in a.split()[:-1]:
                assert f"!{src}" in ignore, f"{src} is excluded by Dockerfile.dockerignore"
    # the image's ENTRYPOINT is the console script the project declares
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["gridcoord"] == "orchestrator.cli:main"
