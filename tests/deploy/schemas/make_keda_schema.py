"""Regenerate keda-v2.16.1-scaledobject.schema.json (run by hand, not by the tests).

Source: the PyPI package ``cloudcoil-models-keda==2.16.1.0``, pydantic models generated
from the CustomResourceDefinitions of KEDA v2.16.1 (keda.sh/v1alpha1). GitHub (where KEDA
publishes its CRD YAML) cannot be reached from the build machine; this package is how the
CRD's schema arrives here. Its models ignore unknown fields, as the API server's pruning
does; the test wants kubectl's strict field validation (a misspelt `cooldownPerod` must
fail), so every object with declared properties is closed with additionalProperties: false.

    pip install --target /tmp/keda-models cloudcoil-models-keda==2.16.1.0
    PYTHONPATH=/tmp/keda-models python tests/deploy/schemas/make_keda_schema.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VERSION = "2.16.1"


def _close(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _close(value)
    elif isinstance(node, list):
        for value in node:
            _close(value)


def main() -> None:
    from cloudcoil.models.keda.v1alpha1 import ScaledObject  # type: ignore[import-not-found]

    schema = ScaledObject.model_json_schema(by_alias=True, mode="validation")
    _close(schema)
    schema["$comment"] = (
        f"KEDA v{VERSION} ScaledObject (keda.sh/v1alpha1), from the PyPI package "
        f"cloudcoil-models-keda=={VERSION}.0 (models generated from KEDA's CRDs); objects "
        "closed (additionalProperties: false) for strict field validation. Regenerate with "
        "make_keda_schema.py."
    )
    out = Path(__file__).with_name(f"keda-v{VERSION}-scaledobject.schema.json")
    out.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
