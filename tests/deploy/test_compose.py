"""docker-compose.yml cross-checked against the Prometheus, Grafana and KTRDR settings.

Docker does not run in CI, so the compose file is parsed and every reference checked:
services, ports, URLs, mounts and the worker's advertised address.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from ktrdr.constants import API_PREFIX, DEFAULT_API_PORT, DEFAULT_WORKER_PORT
from ktrdr.dashboards.constants import API_JOB, JAEGER_DATASOURCE_UID, PROMETHEUS_DATASOURCE_UID
from tests.deploy.conftest import (
    COMPOSE_FILE,
    DASHBOARD_PROVIDERS_FILE,
    DATASOURCES_FILE,
    DEPLOY,
    REPO_ROOT,
    load_yaml,
)

REQUIRED_SERVICES = {"api", "worker", "postgres", "jaeger", "prometheus", "grafana"}
URL = re.compile(r"[a-z+]+://[^\s\"']+")


def env(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment", {})
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {k: str(v) for k, v in raw.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command", [])
    return [str(c) for c in (cmd.split() if isinstance(cmd, str) else cmd)]


def option(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        out.append((source, target))
    return out


def published_or_exposed(service: dict[str, Any]) -> set[int]:
    ports = {int(str(p).split(":")[-1].split("/")[0]) for p in service.get("ports", [])}
    return ports | {int(p) for p in service.get("expose", [])}


def expand_defaults(text: str) -> str:
    """``${VAR:-default}`` -> ``default`` (what compose uses when VAR is unset), and a
    required ``${VAR:?message}`` -> ``VAR`` (compose refuses to start without it)."""
    text = re.sub(r"\$\{([A-Z0-9_]+):\?[^}]*\}", r"\1", text)
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", text)


def test_required_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= REQUIRED_SERVICES


def test_every_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert "healthcheck" in service, name


def test_depends_on_and_links_name_existing_services(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        deps = service.get("depends_on", {})
        for dep in list(deps) + [str(link).split(":")[0] for link in service.get("links", [])]:
            assert dep in services, f"{name} depends on unknown service {dep}"
        if isinstance(deps, dict):
            for dep, spec in deps.items():
                if spec.get("condition") == "service_healthy":
                    assert "healthcheck" in services[dep], f"{dep} has no healthcheck"


def test_urls_in_environment_point_at_services_on_their_ports(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for key, value in env(service).items():
            for url in URL.findall(expand_defaults(value)):
                parts = urlsplit(url)
                if parts.hostname in {None, "localhost"}:
                    continue  # URLs for the user's browser (published ports)
                assert parts.hostname in services, f"{name}.{key}: unknown host in {url}"
                port = parts.port or 80
                assert port in published_or_exposed(services[parts.hostname]) | {
                    _listen_port(services[parts.hostname])
                }, f"{name}.{key}: {url} is not a port {parts.hostname} serves"


def _listen_port(service: dict[str, Any]) -> int:
    cmd = command(service)
    return int(option(cmd, "--port")) if "--port" in cmd else -1


def test_api_and_worker_ports_agree_with_prometheus(
    services: dict[str, dict[str, Any]],
) -> None:
    api_cmd = command(services["api"])
    assert api_cmd[:2] == ["ktrdr", "api"]
    assert option(api_cmd, "--host") == "0.0.0.0"
    api_port = int(option(api_cmd, "--port"))
    assert api_port == DEFAULT_API_PORT
    assert api_port in published_or_exposed(services["api"])

    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs[API_JOB]["static_configs"][0]["targets"] == [f"api:{api_port}"]
    sd_url = jobs["ktrdr-workers"]["http_sd_configs"][0]["url"]
    assert sd_url == f"http://api:{api_port}{API_PREFIX}/sd/workers"

    worker_env = env(services["worker"])
    assert worker_env["KTRDR_API_URL"] == f"http://api:{api_port}"
    worker_cmd = command(services["worker"])
    assert worker_cmd[:2] == ["ktrdr", "worker"]
    worker_port = int(option(worker_cmd, "--port"))
    assert worker_port == DEFAULT_WORKER_PORT
    assert worker_port in published_or_exposed(services["worker"])


def test_healthchecks_probe_the_ports_the_processes_listen_on(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ("api", "worker", "worker-training"):
        if name not in services:
            continue
        probe = " ".join(services[name]["healthcheck"]["test"])
        assert f"localhost:{_listen_port(services[name])}/" in probe, name
    assert f"{API_PREFIX}/health" in " ".join(services["api"]["healthcheck"]["test"])


def test_workers_scale_and_advertise_their_own_address(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if command(service)[:2] != ["ktrdr", "worker"]:
            continue
        worker_env = env(service)
        # A fixed URL, host or id would make every replica claim the same address.
        for key in ("KTRDR_WORKER_ADVERTISE_URL", "KTRDR_WORKER_URL", "KTRDR_WORKER_HOST",
                    "KTRDR_WORKER_ID"):  # fmt: skip
            assert key not in worker_env, f"{name}: {key} breaks scaling"
        assert option(command(service), "--host") == "0.0.0.0", name
        assert "ports" not in service, f"{name}: published ports collide when scaled"
        assert "container_name" not in service, f"{name}: container_name prevents --scale"
    assert services["worker"]["deploy"]["replicas"] >= 1


def test_processes_share_token_and_export_traces_to_jaeger(
    services: dict[str, dict[str, Any]],
) -> None:
    tokens = set()
    for name in ("api", "worker"):
        service_env = env(services[name])
        tokens.add(service_env["KTRDR_API_TOKEN"])
        assert urlsplit(service_env["OTEL_EXPORTER_OTLP_ENDPOINT"]).netloc == "jaeger:4318"
    assert len(tokens) == 1
    db_url = urlsplit(expand_defaults(env(services["api"])["KTRDR_DATABASE_URL"]))
    assert db_url.scheme == "postgresql+psycopg"
    assert (db_url.hostname, db_url.port) == ("postgres", 5432)


def test_jaeger_accepts_otlp_and_serves_its_ui(services: dict[str, dict[str, Any]]) -> None:
    jaeger = services["jaeger"]
    assert "all-in-one" in jaeger["image"]
    assert env(jaeger)["COLLECTOR_OTLP_ENABLED"] == "true"
    assert {16686, 4317, 4318} <= published_or_exposed(jaeger)


def test_prometheus_mounts_its_config_and_stores_exemplars(
    services: dict[str, dict[str, Any]],
) -> None:
    prometheus = services["prometheus"]
    cmd = command(prometheus)
    assert "--enable-feature=exemplar-storage" in cmd
    config_arg = next(c for c in cmd if c.startswith("--config.file="))
    config_path = config_arg.split("=", 1)[1]
    assert _host_path(prometheus, config_path).is_file()


def test_grafana_mounts_provisioning_and_dashboards(
    services: dict[str, dict[str, Any]],
) -> None:
    grafana = services["grafana"]
    assert _host_path(grafana, "/etc/grafana/provisioning/datasources/datasources.yml") == (
        DATASOURCES_FILE
    )
    assert _host_path(grafana, "/etc/grafana/provisioning/dashboards/dashboards.yml") == (
        DASHBOARD_PROVIDERS_FILE
    )
    (provider,) = load_yaml(DASHBOARD_PROVIDERS_FILE)["providers"]
    dashboards = _host_path(grafana, provider["options"]["path"])
    assert sorted(p.name for p in dashboards.glob("*.json")) == [
        "operations.json",
        "research.json",
        "system-overview.json",
        "worker-status.json",
    ]


def test_every_bind_mount_source_exists(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for source, _ in mounts(service):
            if source.startswith((".", "/")):
                assert (DEPLOY / source).resolve().exists(), f"{name}: missing {source}"


def test_grafana_datasources_point_at_compose_services(
    services: dict[str, dict[str, Any]],
) -> None:
    datasources = {ds["uid"]: ds for ds in load_yaml(DATASOURCES_FILE)["datasources"]}
    prometheus = urlsplit(datasources[PROMETHEUS_DATASOURCE_UID]["url"])
    assert prometheus.hostname == "prometheus"
    assert prometheus.port in published_or_exposed(services["prometheus"])
    jaeger = urlsplit(datasources[JAEGER_DATASOURCE_UID]["url"])
    assert jaeger.hostname == "jaeger"
    assert jaeger.port in published_or_exposed(services["jaeger"])


def test_dockerfile_builds_the_package_on_python_311_slim() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-\w+\s*$", dockerfile, re.M)
    assert re.search(r"^FROM \$\{PYTHON_IMAGE\}\s*$", dockerfile, re.MULTILINE)
    assert 'pip install -c deploy/constraints.txt ".${KTRDR_EXTRAS:+[$KTRDR_EXTRAS]}"' in (
        dockerfile
    )
    build = pytest.importorskip("tomllib").loads(
        (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    )
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    needed = {"pyproject.toml", "src"}
    readme = build["project"].get("readme")
    if isinstance(readme, str):
        needed.add(readme)
    assert needed <= kept, "the image build context lacks files `pip install .` needs"


def test_compose_builds_from_the_repo_root_with_the_deploy_dockerfile(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ("api", "worker"):
        build = services[name]["build"]
        assert (DEPLOY / build["context"]).resolve() == REPO_ROOT
        assert (REPO_ROOT / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"


def _host_path(service: dict[str, Any], container_path: str) -> Path:
    """The repository path a container path of ``service`` is bind-mounted from."""
    best: tuple[str, str] | None = None
    for source, target in mounts(service):
        covers = container_path == target or container_path.startswith(target.rstrip("/") + "/")
        longer = best is None or len(target) > len(best[1])
        if source.startswith(".") and covers and longer:
            best = (source, target)
    assert best is not None, f"{container_path} is not bind-mounted from the repository"
    source, target = best
    return (DEPLOY / source / container_path[len(target) :].lstrip("/")).resolve()


def test_every_worker_service_asks_only_for_kinds_this_build_runs(
    services: dict[str, dict[str, Any]],
) -> None:
    from ktrdr.worker.runners import RUNNERS

    runnable = {kind.value for kind in RUNNERS}
    for name, service in services.items():
        cmd = command(service)
        if cmd[:2] != ["ktrdr", "worker"]:
            continue
        kinds = {cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--kind"}
        assert kinds <= runnable, f"{name} asks for {sorted(kinds - runnable)}: no runner"


# ----------------------------------------------------------------- issue 17 (hygiene)

SECRETS = {
    "KTRDR_API_TOKEN": ("api", "worker", "worker-training"),
    "KTRDR_API_KEYS": ("api",),
    "POSTGRES_PASSWORD": ("postgres",),
    "GF_SECURITY_ADMIN_PASSWORD": ("grafana",),
}
REQUIRED = re.compile(r"^\$\{(?P<var>[A-Z0-9_]+):\?(?P<message>[^}]+)\}$")


def test_no_secret_has_a_default_and_each_names_its_variable(
    services: dict[str, dict[str, Any]],
) -> None:
    for key, names in SECRETS.items():
        for name in names:
            value = env(services[name])[key]
            match = REQUIRED.match(value)
            assert match, f"{name}.{key} = {value!r}: must be ${{VAR:?message}}, no default"
            assert match["var"] in match["message"], f"{name}.{key}: message must name it"
    # The database password inside the API's URL is required the same way.
    url = env(services["api"])["KTRDR_DATABASE_URL"]
    assert "${KTRDR_POSTGRES_PASSWORD:?" in url and ":-" not in url
    # No ${VAR:-default} anywhere supplies something secret-looking.
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for var in re.findall(r"\$\{([A-Z0-9_]+):-[^}]*\}", text):
        assert not re.search("TOKEN|PASSWORD|SECRET|KEY", var), f"{var} has a default"
    for placeholder in ("ktrdr-compose-dev-token", ":-admin}", ":-ktrdr}"):
        assert placeholder not in text
    # And outside local the services refuse to start without them (ktrdr.config).
    assert env(services["api"])["KTRDR_ENVIRONMENT"] == "${KTRDR_ENVIRONMENT:-staging}"


def test_docs_say_how_to_generate_every_secret() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    docs = (REPO_ROOT / "docs" / "observability.md").read_text(encoding="utf-8")
    generate = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    assert generate in text and generate in docs
    for var in ("KTRDR_API_TOKEN", "KTRDR_POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
        assert var in docs
    assert "ktrdr keys new" in docs and "KTRDR_API_KEYS" in docs


def _build_args(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in service["build"].get("args", {}).items()}


def test_training_image_builds_cpu_pytorch_by_default() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    cpu = "https://download.pytorch.org/whl/cpu"
    assert f"ARG TORCH_INDEX_URL={cpu}\n" in dockerfile
    assert '--index-url "$TORCH_INDEX_URL"' in dockerfile
    services = load_yaml(COMPOSE_FILE)["services"]
    args = _build_args(services["worker-training"])
    assert args["KTRDR_EXTRAS"] == "ml"
    assert args["TORCH_INDEX_URL"] == "${KTRDR_TORCH_INDEX_URL:-" + cpu + "}"
    docs = (REPO_ROOT / "docs" / "observability.md").read_text(encoding="utf-8")
    assert "KTRDR_TORCH_INDEX_URL" in docs and "not measured" in docs


def test_api_port_needs_user_keys_and_observability_ports_bind_to_localhost(
    services: dict[str, dict[str, Any]],
) -> None:
    assert REQUIRED.match(env(services["api"])["KTRDR_API_KEYS"])
    for name in ("prometheus", "grafana", "jaeger"):
        for port in services[name]["ports"]:
            host = expand_defaults(str(port)).split(":")[0]
            assert host == "127.0.0.1", f"{name} publishes {port} beyond this host"
    for name, service in services.items():
        for port in service.get("ports", []):
            bind = expand_defaults(str(port))
            assert bind.count(":") == 2, f"{name}: {port} names no bind address"


def test_images_are_pinned_in_one_place(compose: dict[str, Any]) -> None:
    images = compose["x-images"]
    for name, image in images.items():
        repo, _, tag = str(image).rpartition(":")
        assert repo and re.search(r"\d+\.\d+", tag) and tag != "latest", f"{name}: {image}"
    pinned = set(images.values())
    for name, service in compose["services"].items():
        if "build" in service:
            assert _build_args(service)["PYTHON_IMAGE"] == images["python"], name
            assert service["image"].startswith("ktrdr"), name  # our own build
        else:
            assert service["image"] in pinned, f"{name}: {service['image']} not in x-images"
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    service_text = text[text.index("\nservices:") :]
    assert not re.search(r"^\s+image: (?!\*|ktrdr)", service_text, re.M), "inline image tag"
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert f"ARG PYTHON_IMAGE={images['python']}\n" in dockerfile


def test_constraints_pin_every_runtime_requirement_exactly() -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = (DEPLOY / "constraints.txt").read_text(encoding="utf-8").splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    pins = {canonicalize_name(k): v for k, v in pins.items()}
    for text in project["dependencies"] + project["optional-dependencies"]["ml"]:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"{name} is not pinned in deploy/constraints.txt"
        assert req.specifier.contains(pins[name]), f"{name}=={pins[name]} breaks {req}"
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    assert "!deploy/constraints.txt" in ignore  # in the build context


def test_images_run_as_a_non_root_user_on_a_read_only_root(
    services: dict[str, dict[str, Any]],
) -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users, "the image runs as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert f"--uid {user}" in dockerfile or re.search(rf"useradd .*{user}", dockerfile)
    for name, service in services.items():
        if "build" in service:
            assert service.get("user") in (None, user), name
            assert service["read_only"] is True, name
            assert "/tmp" in service["tmpfs"], name
            assert "ALL" in service["cap_drop"], name
    assert services["prometheus"]["read_only"] is True


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    """Debian's docker-compose (1.29, installed by ./run test) as a second parser: it checks
    the schema, the anchors and that the required variables really are required."""
    import os
    import shutil
    import subprocess

    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose not installed: Debian's package (./run test installs it)")
    # 1.29 predates the top-level `name:` key; everything else is checked as written.
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    copy = tmp_path / "docker-compose.yml"
    copy.write_text(re.sub(r"^name: .*\n", "", text, flags=re.M), encoding="utf-8")
    base = {k: v for k, v in os.environ.items() if k not in SECRETS}
    args = [binary, "--project-directory", str(DEPLOY), "-f", str(copy), "config"]
    secrets_env = {
        "KTRDR_API_TOKEN": "t" * 43,
        "KTRDR_POSTGRES_PASSWORD": "p" * 43,
        "GRAFANA_ADMIN_PASSWORD": "g" * 43,
        "KTRDR_API_KEYS": "ci:read:sha256=x",
    }
    ok = subprocess.run(args, env={**base, **secrets_env}, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    rendered = yaml.safe_load(ok.stdout)["services"]
    assert rendered["api"]["environment"]["KTRDR_API_TOKEN"] == "t" * 43
    build = rendered["worker-training"]["build"]["args"]
    assert build["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    # One missing secret is enough to see the ${VAR:?} semantics (the parse test above
    # checks that every secret uses it); the user keys are the newest requirement.
    partial = {k: v for k, v in secrets_env.items() if k != "KTRDR_API_KEYS"}
    refused = subprocess.run(args, env={**base, **partial}, capture_output=True, text=True)
    assert refused.returncode != 0, "compose starts without KTRDR_API_KEYS"
    assert "set KTRDR_API_KEYS to the lines printed by ktrdr keys new NAME" in refused.stderr
