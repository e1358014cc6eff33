"""deploy/kubernetes: rendered like `kustomize build`, validated offline, cross-checked.

Every object of both overlays is validated against the Kubernetes 1.33 schemas
(kubernetes-validate, strict: unknown fields fail) and the KEDA ScaledObjects against
KEDA v2.16.1's schema (vendored in tests/deploy/schemas, with where it came from). The
checks are cross-checked against the code: the gauges and operation types the autoscaling
queries name exist, each worker Deployment's drain fits its grace period, the ConfigMaps
hold the repository's rule and dashboard files byte for byte, and no secret has a default.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from ktrdr.jobs.specs import get_spec, types_run_by
from ktrdr.operations.model import OperationType
from tests.deploy.conftest import DASHBOARDS_DIR, DEPLOY, REPO_ROOT, RULE_FILES
from tests.support import kustomize

K8S_VERSION = "1.33.0"
KUBERNETES = DEPLOY / "kubernetes"
OVERLAYS = ("local", "production")
KEDA_SCHEMA = Path(__file__).parent / "schemas" / "keda-v2.16.1-scaledobject.schema.json"
SRC_TELEMETRY = REPO_ROOT / "src" / "ktrdr" / "telemetry"
# runtime.shutdown: after the grace the job gets 10 s to stop, the reports 5 s to go out.
DRAIN_MARGIN_S = 15
OPERATOR_FILE = "secrets.env"  # made by the operator from secrets.env.example, git-ignored


def _reader(path: Path) -> str:
    # The operator's secrets.env does not exist in the repository: render with the example.
    if path.name == OPERATOR_FILE and not path.exists():
        path = path.with_name(OPERATOR_FILE + ".example")
    return path.read_text(encoding="utf-8")


def render(overlay: str) -> list[dict[str, Any]]:
    return kustomize.build(KUBERNETES / "overlays" / overlay, _reader)


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def keda_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(KEDA_SCHEMA.read_text(encoding="utf-8")))


def _kustomization_dirs() -> list[Path]:
    return sorted(p.parent for p in DEPLOY.rglob("kustomization.yaml"))


def test_kustomizations_reference_only_files_that_exist() -> None:
    assert {p.relative_to(DEPLOY).as_posix() for p in _kustomization_dirs()} == {
        ".", "kubernetes/base", "kubernetes/overlays/local", "kubernetes/overlays/production"
    }  # fmt: skip
    for folder in _kustomization_dirs():
        for path in kustomize.referenced_files(folder):
            if path.name == OPERATOR_FILE:
                example = path.with_name(OPERATOR_FILE + ".example")
                assert example.is_file(), f"{folder}: {OPERATOR_FILE} has no example"
                ignored = (folder / ".gitignore").read_text(encoding="utf-8").split()
                assert OPERATOR_FILE in ignored, f"{folder}: {OPERATOR_FILE} must be git-ignored"
                continue
            assert path.exists(), f"{folder / 'kustomization.yaml'} names {path}, which is missing"
            if path.is_dir():
                assert (path / "kustomization.yaml").is_file(), path


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_offline(overlay: str) -> None:
    objects = render(overlay)
    keda = keda_validator()
    kinds = {o["kind"] for o in objects}
    expected = {"ConfigMap", "Deployment", "PodDisruptionBudget", "ScaledObject", "Secret",
                "Service"}  # fmt: skip
    assert kinds == expected | ({"Namespace"} if overlay == "local" else set())
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["apiVersion"] == "keda.sh/v1alpha1":
            errors = [e.message for e in keda.iter_errors(obj)]
            assert not errors, f"{overlay} {name}: {errors}"
        else:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        assert obj["metadata"].get("namespace") == "ktrdr" or obj["kind"] == "Namespace", name


def test_the_validators_can_fail() -> None:
    objects = render("production")
    scaled = dict(by_kind(objects, "ScaledObject")["ktrdr-worker-training"])
    scaled["spec"] = {**scaled["spec"], "cooldownPerod": 60}
    assert any("cooldownPerod" in e.message for e in keda_validator().iter_errors(scaled))
    deployment = json.loads(json.dumps(by_kind(objects, "Deployment")["ktrdr-api"]))
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_the_api_runs_twice_on_postgresql_with_health_probes_and_a_pdb() -> None:
    objects = render("production")
    api = by_kind(objects, "Deployment")["ktrdr-api"]
    assert api["spec"]["replicas"] == 2
    (container,) = api["spec"]["template"]["spec"]["containers"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/api/v1/health", "port": "http"}
    env = {e["name"]: e for e in container["env"]}
    assert env["KTRDR_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "ktrdr-secrets"
    pdb = by_kind(objects, "PodDisruptionBudget")["ktrdr-api"]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == api["spec"]["selector"]["matchLabels"]
    service = by_kind(objects, "Service")["ktrdr-api"]
    assert service["spec"]["selector"] == api["spec"]["selector"]["matchLabels"]
    config = by_kind(objects, "ConfigMap")["ktrdr-config"]["data"]
    assert config["KTRDR_API_URL"] == "http://ktrdr-api:8000"
    assert config["KTRDR_ARTIFACTS_URL"].startswith("s3://")


def _worker_kinds(deployment: dict[str, Any]) -> list[OperationType]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    cmd = container["command"]
    return [OperationType(cmd[i + 1]) for i, arg in enumerate(cmd) if arg == "--kind"]


def _workers(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: d for n, d in by_kind(objects, "Deployment").items() if n.startswith("ktrdr-worker")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_worker_deployment_per_kind_each_draining_within_its_grace(overlay: str) -> None:
    workers = _workers(render(overlay))
    offered = {t for t in OperationType if get_spec(t).worker_kind == t}
    kinds = [k for d in workers.values() for k in _worker_kinds(d)]
    assert sorted(kinds) == sorted(offered), "every kind on exactly one Deployment"
    for name, deployment in workers.items():
        pod = deployment["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        grace = float(env["KTRDR_SHUTDOWN_GRACE_S"])
        assert pod["terminationGracePeriodSeconds"] >= grace + DRAIN_MARGIN_S, name
        assert env["KTRDR_WORKER_ADVERTISE_URL"] == "http://$(POD_IP):5003", name
        names = [e["name"] for e in pod["containers"][0]["env"]]
        assert names.index("POD_IP") < names.index("KTRDR_WORKER_ADVERTISE_URL"), (
            "Kubernetes expands $(POD_IP) only from variables defined before"
        )
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == "5003", name
        image = pod["containers"][0]["image"]
        assert ("ktrdr-ml" in image) == (OperationType.TRAINING in _worker_kinds(deployment))


_METRIC = re.compile(r"\b(ktrdr_[a-z_]+)\{type=~\"([^\"]+)\"\}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaled_objects_follow_the_queue_of_their_own_kinds(overlay: str, promtool: str,
                                                            tmp_path: Path) -> None:  # fmt: skip
    objects = render(overlay)
    workers = _workers(objects)
    scaled = by_kind(objects, "ScaledObject")
    assert set(scaled) == set(workers), "one ScaledObject per worker Deployment"
    telemetry = "".join(p.read_text(encoding="utf-8") for p in SRC_TELEMETRY.glob("*.py"))
    rules = []
    for name, obj in scaled.items():
        spec = obj["spec"]
        assert spec["scaleTargetRef"]["name"] == name
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "prometheus"
        query = trigger["metadata"]["query"]
        found = _METRIC.findall(query)
        assert {m for m, _ in found} == {"ktrdr_operations_queued", "ktrdr_operations_active"}
        for metric, types in found:
            assert f'"{metric}"' in telemetry, f"{metric} is not exported by src/ktrdr/telemetry"
            runs = {t.value for t in types_run_by(_worker_kinds(workers[name]))}
            assert set(types.split("|")) == runs, f"{name}: queries {types}, its pods run {runs}"
        assert float(trigger["metadata"]["threshold"]) >= 1
        assert spec["cooldownPeriod"] >= 60
        rules.append({"record": f"ktrdr:scaling_{name.replace('-', '_')}", "expr": query})
    assert scaled["ktrdr-worker-training"]["spec"]["minReplicaCount"] == 0, "training to zero"
    # promtool parses every query (as recording rules).
    path = tmp_path / "scaling.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "scaling", "rules": rules}]}))
    checked = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_rules_and_dashboards_are_the_repository_files() -> None:
    config_maps = by_kind(render("production"), "ConfigMap")
    rules = config_maps["ktrdr-prometheus-rules"]["data"]
    assert rules == {p.name: p.read_text(encoding="utf-8") for p in RULE_FILES}
    dashboards = config_maps["ktrdr-grafana-dashboards"]
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    expected = {p.name: p.read_text(encoding="utf-8") for p in DASHBOARDS_DIR.glob("*.json")}
    assert dashboards["data"] == expected


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_have_no_default_values(overlay: str) -> None:
    objects = render(overlay)
    (secret,) = by_kind(objects, "Secret").values()
    assert secret["metadata"]["name"] == "ktrdr-secrets"
    assert {base64.b64decode(v).decode() for v in secret["data"].values()} == {""}, (
        "the example ships keys only"
    )
    referenced = {
        e["valueFrom"]["secretKeyRef"]["key"]
        for d in by_kind(objects, "Deployment").values()
        for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert referenced == set(secret["data"]), "the example names exactly the keys pods read"
    for d in by_kind(objects, "Deployment").values():
        for e in d["spec"]["template"]["spec"]["containers"][0]["env"]:
            if any(w in e["name"] for w in ("TOKEN", "KEYS", "SECRET", "DATABASE_URL")):
                assert "value" not in e, f"{e['name']} has a literal value"
    base = kustomize.build(KUBERNETES / "base", _reader)
    assert not by_kind(base, "Secret"), "the base carries no Secret (the overlay makes it)"
