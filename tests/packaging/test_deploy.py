"""The container image (Dockerfile, entrypoint) and the Kubernetes manifests
(deploy/k8s) checked against the code they deploy: routes the app serves,
Settings fields, click command tables of eowatch and dask, pyproject extras.
Docker and a cluster are not available to the tests; everything that can be
checked without them is."""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from fastapi.testclient import TestClient

import eowatch
from eowatch.api import create_app
from eowatch.cli.main import cli
from eowatch.services import Services
from eowatch.settings import Settings

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
ENTRYPOINT = REPO / "deploy" / "container" / "entrypoint.sh"
IMAGE = f"eowatch:{eowatch.__version__}"
BIN = Path(sys.executable).parent

KNOWN_KINDS = {
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("v1", "PersistentVolumeClaim"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
}
WORKLOADS = {"Deployment", "StatefulSet"}


def _documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                doc["_file"] = path.name
                docs.append(doc)
    return docs


DOCS = _documents()


def _of_kind(*kinds: str) -> list[dict[str, Any]]:
    return [d for d in DOCS if d["kind"] in kinds]


def _containers() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for workload in _of_kind(*WORKLOADS):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            yield workload, container


def _named(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _of_kind(kind)}


def test_every_manifest_is_a_known_kind_and_listed_in_the_kustomization() -> None:
    assert len(DOCS) >= 12
    for doc in DOCS:
        assert (doc["apiVersion"], doc["kind"]) in KNOWN_KINDS, doc["_file"]
    (kustomization,) = _of_kind("Kustomization")
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    (namespace,) = _of_kind("Namespace")
    for doc in DOCS:
        if doc["kind"] not in {"Namespace", "Kustomization"}:
            assert doc["metadata"]["namespace"] == namespace["metadata"]["name"] == kustomization["namespace"]


def test_the_deployment_has_every_role() -> None:
    workloads = {d["metadata"]["name"]: d for d in _of_kind(*WORKLOADS)}
    roles = {name: [" ".join(c.get("command", [])[:2]) for c in w["spec"]["template"]["spec"]["containers"]]
             for name, w in workloads.items()}  # fmt: skip
    assert roles == {
        "eowatch-postgres": [""],  # the postgres image's own entrypoint
        "eowatch-api": ["eowatch serve"],
        "eowatch-scheduler": ["eowatch scheduler"],
        "eowatch-worker": ["eowatch worker"],
        "eowatch-dask-scheduler": ["dask scheduler"],
        "eowatch-dask-worker": ["dask worker"],
    }
    assert workloads["eowatch-postgres"]["kind"] == "StatefulSet"
    assert workloads["eowatch-postgres"]["spec"]["volumeClaimTemplates"]
    assert workloads["eowatch-scheduler"]["spec"]["replicas"] == 1


def test_selectors_match_their_pod_templates() -> None:
    for workload in _of_kind(*WORKLOADS):
        selector = workload["spec"]["selector"]["matchLabels"]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert selector and selector.items() <= labels.items(), workload["metadata"]["name"]
    for sts in _of_kind("StatefulSet"):
        assert sts["spec"]["serviceName"] in _named("Service")


def test_services_target_existing_pods_and_ports() -> None:
    for service in _of_kind("Service"):
        selector = service["spec"]["selector"]
        pods = [w for w in _of_kind(*WORKLOADS)
                if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()]  # fmt: skip
        assert pods, f"service {service['metadata']['name']} selects no pod"
        containers = [c for w in pods for c in w["spec"]["template"]["spec"]["containers"]]
        ports = {(p.get("name"), p["containerPort"]) for c in containers for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert any(target in pair for pair in ports), f"{service['metadata']['name']}: no port {target}"


def test_eowatch_configuration_ref_is_real() -> None:
    fields = {f"EOWATCH_{name.upper()}" for name in Settings.model_fields}
    configmaps, secrets = _named("ConfigMap"), _named("Secret")
    names = [k for cm in configmaps.values() for k in cm["data"]]
    names += [k for s in secrets.values() for k in s["stringData"]]
    for _, container in _containers():
        for source in container.get("envFrom", []):
            assert source["configMapRef"]["name"] in configmaps
        for var in container.get("env", []):
            names.append(var["name"])
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in secrets[ref["name"]]["stringData"]
            for used in re.findall(r"\$\((\w+)\)", str(var.get("value", ""))):
                earlier = [v["name"] for v in container["env"]]
                assert used in earlier[: earlier.index(var["name"])], f"$({used}) is not defined before"
    unknown = sorted({n for n in names if n.startswith("EOWATCH_")} - fields)
    assert not unknown, f"not Settings fields: {unknown}"
    assert "EOWATCH_DATABASE_URL" in names and "EOWATCH_DASK_SCHEDULER_ADDRESS" in names


def test_the_configuration_loads_into_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    (config,) = _of_kind("ConfigMap")
    for key, value in config["data"].items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.executor == "dask" and str(settings.output_dir) == "/data/products"


def test_volumes_and_claims_exist() -> None:
    claims = set(_named("PersistentVolumeClaim"))
    for workload in _of_kind(*WORKLOADS):
        spec = workload["spec"]["template"]["spec"]
        volumes = {v["name"] for v in spec.get("volumes", [])}
        volumes |= {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
        for v in spec.get("volumes", []):
            if "persistentVolumeClaim" in v:
                assert v["persistentVolumeClaim"]["claimName"] in claims
        for c in spec["containers"]:
            for mount in c.get("volumeMounts", []):
                assert mount["name"] in volumes
    (products,) = claims
    assert _named("PersistentVolumeClaim")[products]["spec"]["accessModes"] == ["ReadWriteMany"]


@pytest.fixture(scope="module")
def app_routes(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    tmp = tmp_path_factory.mktemp("api")
    app = create_app(Services(Settings(output_dir=tmp, database_url=f"sqlite:///{tmp / 'api.db'}")))
    try:
        with TestClient(app) as client:
            # The probes must answer without credentials on a fresh database.
            assert client.get("/healthz").status_code == 200
            assert client.get("/readyz").status_code == 200
        return _paths(app.routes)
    finally:
        app.state.catalog.close()


def _paths(routes: list[Any], prefix: str = "") -> set[str]:
    """Paths of ``routes``, into included routers (FastAPI wraps them; older versions flatten them)."""
    found: set[str] = set()
    for route in routes:
        if hasattr(route, "path"):
            found.add(prefix + route.path)
        elif hasattr(route, "original_router"):
            found |= _paths(route.original_router.routes, prefix + route.include_context.prefix)
    return found


def test_probes_hit_routes_the_app_serves(app_routes: set[str]) -> None:
    probes = 0
    for _, container in _containers():
        ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        for kind in ("livenessProbe", "readinessProbe"):
            probe = container.get(kind)
            if not probe:
                continue
            probes += 1
            if "httpGet" in probe:
                port = probe["httpGet"]["port"]
                assert port in ports or port in ports.values()
                if container["image"] == IMAGE and container["command"][:2] == ["eowatch", "serve"]:
                    assert probe["httpGet"]["path"] in app_routes
                    assert ports.get(port, port) == _serve_port(container["command"])
                else:  # Dask's HTTP servers
                    assert probe["httpGet"]["path"] in _dask_routes()
            if "tcpSocket" in probe:
                assert probe["tcpSocket"]["port"] in ports
    assert probes >= 7 and {"/healthz", "/readyz", "/metrics"} <= app_routes and "/nowhere" not in app_routes
    api = _named("Deployment")["eowatch-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"


def _serve_port(command: list[str]) -> int:
    ctx = cli.commands["serve"].make_context("serve", list(command[2:]))
    return int(ctx.params["port"])


def _dask_routes() -> set[str]:
    from distributed.http import health

    return {route[0] for route in health.routes}


def _dask_commands() -> dict[str, click.Command]:
    return {ep.name: ep.load() for ep in entry_points(group="dask_cli")}


def test_commands_are_real_and_parse() -> None:
    checked = 0
    for workload, container in _containers():
        command = [str(a) for a in container.get("command", [])]
        if container["image"] != IMAGE:
            continue
        program, sub, *args = command
        table = {"eowatch": cli.commands, "dask": _dask_commands()}[program]
        assert sub in table, f"{workload['metadata']['name']}: {program} has no command {sub!r}"
        table[sub].make_context(sub, args)  # raises on an unknown option or a bad value
        checked += 1
    assert checked == 5


def test_images_agree_with_the_dockerfile_and_the_cwl() -> None:
    images = {c["image"] for _, c in _containers()}
    assert images == {IMAGE, "postgres:16"}
    (kustomization,) = _of_kind("Kustomization")
    assert kustomization["images"] == [{"name": "eowatch", "newTag": eowatch.__version__}]
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f'org.opencontainers.image.version="{eowatch.__version__}"' in dockerfile
    assert f"docker build -t {IMAGE} ." in dockerfile
    for cwl in (REPO / "cwl").glob("*.cwl"):
        tool = next(p for p in yaml.safe_load(cwl.read_text())["$graph"] if p["class"] == "CommandLineTool")
        assert tool["hints"]["DockerRequirement"]["dockerPull"] == IMAGE


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def _dockerignored(path: str) -> bool:
    """Docker's rule: the last matching pattern wins, a path is excluded with its parent."""
    patterns = [p.strip() for p in (REPO / ".dockerignore").read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    parts = path.strip("/").split("/")
    for depth in range(1, len(parts) + 1):
        prefix, excluded = "/".join(parts[:depth]), False
        for pattern in patterns:
            negated, pat = pattern.startswith("!"), pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(prefix, pat) or fnmatch.fnmatch(prefix, pat.replace("**/", "")):
                excluded = not negated
        if excluded and depth < len(parts):
            # Docker still descends into an excluded folder when a later "!" pattern re-includes below it.
            if not any(p.startswith("!") and p[1:].startswith(prefix + "/") for p in patterns):
                return True
        if depth == len(parts):
            return excluded
    return False


def test_dockerfile_builds_from_files_that_exist() -> None:
    steps = _instructions()
    froms = [arg for op, arg in steps if op == "FROM"]
    assert len(froms) >= 2 and "ARG PYTHON_IMAGE=python:3.11-slim" in (REPO / "Dockerfile").read_text()
    copies = [shlex.split(arg) for op, arg in steps if op == "COPY"]
    sources = [src for c in copies if not c[0].startswith("--from") for src in c[:-1]]
    assert {"pyproject.toml", "src", "deploy/container/entrypoint.sh"} <= set(sources)
    for src in sources:
        assert (REPO / src).exists(), f"COPY {src}: no such file"
        assert not _dockerignored(src), f"COPY {src}: excluded by .dockerignore"
    assert _dockerignored(".venv") and _dockerignored("out") and _dockerignored("src/eowatch/__pycache__")
    assert os.access(ENTRYPOINT, os.X_OK)


def test_dockerfile_installs_existing_extras_and_runs_unprivileged() -> None:
    import tomllib

    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    steps = _instructions()
    (install,) = [arg for op, arg in steps if op == "RUN" and "pip install" in arg]
    wanted = set(re.search(r"\.\[([\w,]+)\]", install).group(1).split(","))  # type: ignore[union-attr]
    assert wanted == {"server", "monitor", "dask", "cloudmask"} and wanted <= extras
    users = [arg for op, arg in steps if op == "USER"]
    assert users and users[-1] not in {"root", "0"}
    assert ("EXPOSE", "8000") in steps
    (health,) = [arg for op, arg in steps if op == "HEALTHCHECK"]
    assert "/healthz" in health and ":8000/" in health
    cmd = [arg for op, arg in steps if op == "CMD"][-1]
    assert "serve" in cmd and "0.0.0.0" in cmd and "8000" in cmd


def _entrypoint(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}/usr/bin{os.pathsep}/bin"}
    return subprocess.run(["sh", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=60)


def test_entrypoint_runs_eowatch_subcommands_and_programs() -> None:
    assert "s1-flood" in _entrypoint("presets", "--sensor", "s1").stdout  # `docker run IMAGE presets`
    assert "s1-flood" in _entrypoint("eowatch", "presets", "--sensor", "s1").stdout  # what CWL runs
    assert _entrypoint("--version").stdout.strip().endswith(eowatch.__version__)
    assert _entrypoint("python", "-c", "print(6 * 7)").stdout.strip() == "42"
    # No eowatch subcommand may be shadowed by a program on PATH.
    path = f"{BIN}{os.pathsep}/usr/local/bin{os.pathsep}/usr/bin{os.pathsep}/bin"
    assert not [name for name in cli.commands if shutil.which(name, path=path)]
