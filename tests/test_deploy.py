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

from core.case import load_case, operators
from core.peers import load_services
from orchestrator.cli.main import DISTRIBUTED, build_parser

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
CASE = "ieee30-3x33"
PORT = 50051
SERVICES_PATH = "/etc/gridcoord/services.yaml"
TLS_DIR = "/etc/gridcoord-tls"


def _load_generate():  # deploy/ is not a package: load the script as a module
    spec = importlib.util.spec_from_file_location("deploy_k8s_generate", K8S / "generate.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gen = _load_generate()


@pytest.fixture(scope="module")
def ops() -> list[tuple[str, str]]:
    """What `gridcoord operators --case ieee30-3x33` prints, via the CLI itself."""
    out = subprocess.run([sys.executable, "-m", "orchestrator.cli", "operators", "--case", CASE],
                         check=True, capture_output=True, text=True, cwd=ROOT).stdout
    pairs = [(role, oid) for role, oid in (line.split() for line in out.splitlines() if line.strip())]
    assert pairs == operators(load_case(CASE))
    return pairs


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

def _tls_mounts(volumes: list[str]) -> dict[str, str]:
    """Container file -> host file of the compose bind mounts into the TLS directory (all read-only)."""
    out = {}
    for v in volumes:
        parts = v.split(":")
        if len(parts) == 3 and parts[1].startswith(TLS_DIR + "/"):
            assert parts[2] == "ro", v
            out[parts[1]] = parts[0]
    return out


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


def test_compose_every_container_mounts_only_its_own_certificate(compose, ops):
    """mTLS everywhere: --tls-dir (never --insecure); the TLS dir holds ca.pem and the container's own pair only."""
    for oid in [oid for _, oid in ops] + ["orchestrator"]:
        svc = compose["services"][oid]
        args = _parse([str(a) for a in svc["command"]])
        assert args.tls_dir == TLS_DIR and not args.insecure, oid
        assert _tls_mounts(svc["volumes"]) == {f"{TLS_DIR}/ca.pem": "./certs/ca.pem",
                                               f"{TLS_DIR}/{oid}.pem": f"./certs/{oid}.pem",
                                               f"{TLS_DIR}/{oid}.key": f"./certs/{oid}.key"}, oid
        if oid != "orchestrator":
            assert args.security_log.startswith("/var/lib/gridcoord/security/"), oid
            assert "security:/var/lib/gridcoord/security" in svc["volumes"], oid
    assert "security" in compose["volumes"]


def test_compose_certificates_come_from_gridcoord_certs(compose, ops, tmp_path):
    """Every host file the compose mounts is one `gridcoord certs --case CASE --out deploy/certs` writes."""
    from orchestrator.cli.certs import create_trial

    written = {p.name for p in create_trial(CASE, tmp_path / "certs")}
    for name, svc in compose["services"].items():
        for host in _tls_mounts(svc["volumes"]).values():
            assert host.startswith("./certs/") and host.removeprefix("./certs/") in written, (name, host)


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


def _probe_argv(command: list[str]) -> list[str]:
    """The arguments of `python -m core.tls ...` in a healthcheck / exec probe."""
    assert command[:3] == ["python", "-m", "core.tls"], command
    return command[3:]


def _container_tls_dir(tmp_path: Path, oid: str) -> Path:
    """What a container sees at TLS_DIR: ca.pem and its own pair from a real trial, nothing else."""
    from orchestrator.cli.certs import create_trial

    full, mounted = tmp_path / "all", tmp_path / "mounted"
    create_trial(CASE, full)
    mounted.mkdir()
    for name in ("ca.pem", f"{oid}.pem", f"{oid}.key"):
        shutil.copy(full / name, mounted / name)
    return mounted


def test_compose_healthcheck_probe_is_real_code(tmp_path):
    """The healthcheck runs `python -m core.tls health ...` with the container's own certificate: the
    same argv against a port where nothing listens must fail (exit 1), not pass."""
    from core import tls

    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    test = compose["services"]["tso"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    argv = _probe_argv(test[1:])
    assert argv[:2] == ["health", "127.0.0.1:50051"] and argv[argv.index("--tls-dir") + 1] == TLS_DIR
    mounted = _container_tls_dir(tmp_path, "tso")
    assert tls.sole_identity(str(mounted)) == "tso"
    argv = [a.replace(TLS_DIR, str(mounted)).replace("127.0.0.1:50051", "127.0.0.1:1") for a in argv]
    assert tls.main([*argv, "--deadline-s", "0.5"]) == 1


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
        assert args.tls_dir == TLS_DIR and not args.insecure, oid
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            argv = _probe_argv(c[probe]["exec"]["command"])
            assert argv[:2] == ["health", f"127.0.0.1:{args.port}"], (oid, probe)
            assert argv[argv.index("--tls-dir") + 1] == args.tls_dir, (oid, probe)
            assert c[probe]["timeoutSeconds"] >= 5, (oid, probe)  # a Python start + a TLS handshake
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        vols = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert vols[mounts[str(Path(args.services).parent)]]["configMap"]["name"] == "gridcoord-services"
        assert vols[mounts[args.tls_dir]]["secret"]["secretName"] == f"gridcoord-tls-{oid}", oid
        assert not args.tls_dir.startswith(str(Path(args.services).parent) + "/")  # no mount inside the ConfigMap
        assert str(Path(args.security_log).parent) in mounts, oid
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
    assert args.tls_dir == TLS_DIR and not args.insecure
    for group in [cluster["spec"]["headGroupSpec"], *cluster["spec"]["workerGroupSpecs"]]:
        spec = group["template"]["spec"]  # the driver and the actors holding the stubs: the orchestrator's pair
        mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
        vols = {v["name"]: v for v in spec["volumes"]}
        assert vols[mounts[args.tls_dir]]["secret"]["secretName"] == "gridcoord-tls-orchestrator"


def test_k8s_tls_secrets_hold_one_identity_each(k8s_docs, ops, tmp_path):
    """`generate.py --tls-secrets DIR`: one Secret per mounted secretName, holding ca.pem and its own pair only."""
    import base64

    from orchestrator.cli.certs import create_trial

    create_trial(CASE, tmp_path / "certs")
    secrets = {s["metadata"]["name"]: s for s in gen.tls_secrets(ops, tmp_path / "certs")}
    mounted = set()
    for d in k8s_docs:
        for tmpl in _pod_templates(d):
            mounted |= {v["secret"]["secretName"] for v in tmpl["spec"]["volumes"] if "secret" in v}
    assert mounted == set(secrets)
    for name, s in secrets.items():
        oid = name.removeprefix("gridcoord-tls-")
        assert set(s["data"]) == {"ca.pem", f"{oid}.pem", f"{oid}.key"}, name
        assert base64.b64decode(s["data"][f"{oid}.key"]) == (tmp_path / "certs" / f"{oid}.key").read_bytes()
    with pytest.raises(gen.ManifestError, match="missing"):
        gen.tls_secrets(ops, tmp_path / "nowhere")


def _pod_templates(doc: dict) -> list[dict]:
    if doc.get("kind") == "Deployment":
        return [doc["spec"]["template"]]
    if doc.get("kind") == "RayCluster":
        return [doc["spec"]["headGroupSpec"]["template"]] + [g["template"] for g in doc["spec"]["workerGroupSpecs"]]
    return []


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


def test_k8s_transport_case_runs_the_tno_over_mtls_in_its_own_namespace(tmp_path):
    """deploy/k8s/transport: `generate.py --case nguyen-dupuis-ieee33` (the TNO), committed and up to date."""
    from orchestrator.cli.certs import create_trial
    from orchestrator.cli.serve import TRANSPORT_CASE, case_operators

    ops = case_operators(TRANSPORT_CASE)
    assert ops == [("tno", "tno")]
    files = gen.render(TRANSPORT_CASE, ops)
    assert gen.stale(files, K8S / "transport") == [], \
        "run `python deploy/k8s/generate.py --case nguyen-dupuis-ieee33 --out deploy/k8s/transport`"
    docs = [d for text in files.values() for d in yaml.safe_load_all(text) if d]
    assert not _kind(docs, "RayCluster") and not _kind(docs, "RayJob")
    assert {d["metadata"]["namespace"] for d in docs if d["kind"] not in ("Namespace", "Kustomization")} == {
        "gridcoord-transport"}  # its services file and Secrets never replace the grid case's
    (dep,) = _kind(docs, "Deployment")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    args = _parse(c["args"])
    assert (args.command, args.role, args.id, args.case) == ("serve", "tno", "tno", TRANSPORT_CASE)
    assert args.tls_dir == TLS_DIR and not args.insecure
    (pol,) = _kind(docs, "NetworkPolicy")
    assert pol["spec"]["ingress"][0]["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/component": "orchestrator"}}}]
    create_trial(TRANSPORT_CASE, tmp_path / "certs")
    secrets = {s["metadata"]["name"]: set(s["data"]) for s in gen.tls_secrets(ops, tmp_path / "certs")}
    assert secrets == {"gridcoord-tls-tno": {"ca.pem", "tno.pem", "tno.key"},
                       "gridcoord-tls-orchestrator": {"ca.pem", "orchestrator.pem", "orchestrator.key"}}


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
    assert scripts["gridcoord"] == "orchestrator.cli.main:main"
