"""A `kustomize build` for the features deploy/kubernetes uses (no registry ships the Go
binary for this machine: PyPI's `pykustomize` needs Python 3.14, the Go module would need
a Go toolchain the project does not otherwise use).

Implemented as kustomize documents them: resources (files and kustomization folders,
recursively), configMapGenerator (files) and secretGenerator (envs), generatorOptions
(labels), labels (metadata only, as without includeSelectors), images (newName / newTag),
namespace, and patches by path as strategic merges (maps merged, lists of named items merged
by name, other lists replaced). Not implemented: the name-suffix hash of generated objects
(kustomize appends one and rewrites the references; names here stay as written) and
anything else, which :func:`build` refuses rather than ignores.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

KNOWN = {"apiVersion", "kind", "resources", "configMapGenerator", "secretGenerator",
         "generatorOptions", "labels", "images", "namespace", "patches"}  # fmt: skip
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}

Reader = Callable[[Path], str]


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def kustomization(folder: Path) -> dict[str, Any]:
    data = yaml.safe_load(_read(folder / "kustomization.yaml"))
    assert isinstance(data, dict), folder
    unknown = set(data) - KNOWN
    assert not unknown, f"{folder}: kustomize features this renderer does not model: {unknown}"
    return data


def referenced_files(folder: Path) -> list[Path]:
    """Every file or folder a kustomization names (resources, generator inputs, patches)."""
    k = kustomization(folder)
    out = [folder / r for r in k.get("resources", [])]
    for gen in k.get("configMapGenerator", []) + k.get("secretGenerator", []):
        out += [folder / f.split("=", 1)[-1] for f in gen.get("files", [])]
        out += [folder / f for f in gen.get("envs", [])]
    out += [folder / p["path"] for p in k.get("patches", [])]
    return out


def merge(base: Any, patch: Any) -> Any:
    """Strategic merge of ``patch`` into ``base`` (a copy)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if (isinstance(base, list) and isinstance(patch, list) and base and patch
            and all(isinstance(i, dict) and "name" in i for i in base + patch)):  # fmt: skip
        out_list = [copy.deepcopy(i) for i in base]
        names = [i["name"] for i in out_list]
        for item in patch:
            if item["name"] in names:
                at = names.index(item["name"])
                out_list[at] = merge(out_list[at], item)
            else:
                out_list.append(copy.deepcopy(item))
        return out_list
    return copy.deepcopy(patch)


def _env_file(text: str) -> dict[str, str]:
    pairs = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value
    return pairs


def _images(obj: Any, images: list[dict[str, str]]) -> None:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in {"containers", "initContainers"} and isinstance(value, list):
                for container in value:
                    name, _, _ = container["image"].partition(":")
                    for image in images:
                        if image["name"] == name:
                            tag = image.get("newTag", container["image"].partition(":")[2])
                            container["image"] = f"{image.get('newName', name)}:{tag}"
            else:
                _images(value, images)
    elif isinstance(obj, list):
        for value in obj:
            _images(value, images)


def build(folder: Path, read: Reader = _read) -> list[dict[str, Any]]:
    """The objects ``kustomize build folder`` would print (see the module doc)."""
    k = kustomization(folder)
    objects: list[dict[str, Any]] = []
    for ref in k.get("resources", []):
        path = (folder / ref).resolve()
        if path.is_dir():
            objects += build(path, read)
        else:
            objects += [d for d in yaml.safe_load_all(read(path)) if d]
    objects += _generated(k, folder, read)
    _patch(objects, k, folder, read)
    _transform(objects, k, folder)
    return objects


def _generated(k: dict[str, Any], folder: Path, read: Reader) -> list[dict[str, Any]]:
    options = k.get("generatorOptions", {})
    assert set(options) <= {"disableNameSuffixHash", "labels"}, options
    objects: list[dict[str, Any]] = []
    for gen in k.get("configMapGenerator", []):
        data = {}
        for spec in gen.get("files", []):
            key, _, source = spec.rpartition("=")
            data[key or Path(source).name] = read(folder / source)
        labels = {**options.get("labels", {}), **gen.get("options", {}).get("labels", {})}
        meta: dict[str, Any] = {"name": gen["name"], **({"labels": labels} if labels else {})}
        objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data})
    for gen in k.get("secretGenerator", []):
        pairs: dict[str, str] = {}
        for env in gen.get("envs", []):
            pairs.update(_env_file(read(folder / env)))
        data = {key: base64.b64encode(v.encode()).decode() for key, v in pairs.items()}
        objects.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                        "metadata": {"name": gen["name"]}, "data": data})  # fmt: skip
    return objects


def _patch(objects: list[dict[str, Any]], k: dict[str, Any], folder: Path, read: Reader) -> None:
    for spec in k.get("patches", []):
        assert set(spec) == {"path"}, f"{folder}: only patches by path are modelled: {spec}"
        for patch in yaml.safe_load_all(read(folder / spec["path"])):
            key = (patch["kind"], patch["metadata"]["name"])
            matches = [i for i, o in enumerate(objects)
                       if (o["kind"], o["metadata"]["name"]) == key]  # fmt: skip
            assert matches, f"{folder / spec['path']}: patch for {key} matches no object"
            for i in matches:
                objects[i] = merge(objects[i], patch)


def _transform(objects: list[dict[str, Any]], k: dict[str, Any], folder: Path) -> None:
    for group in k.get("labels", []):
        assert set(group) <= {"pairs"}, f"{folder}: labels options not modelled: {group}"
        for obj in objects:
            meta = obj.setdefault("metadata", {})
            meta["labels"] = {**meta.get("labels", {}), **group["pairs"]}
    if "images" in k:
        for obj in objects:
            _images(obj, k["images"])
    if "namespace" in k:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = k["namespace"]
