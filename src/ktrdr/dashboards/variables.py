"""Dashboard template variables: label_values() queries and free-text boxes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ktrdr.dashboards.constants import PROMETHEUS_DATASOURCE_UID

JSON = dict[str, Any]


def _datasource() -> JSON:
    return {"type": "prometheus", "uid": PROMETHEUS_DATASOURCE_UID}


@dataclass(frozen=True)
class QueryVariable:
    """A ``label_values(selector, label)`` template variable (multi-select with All)."""

    name: str
    label: str
    selector: str
    label_name: str
    all_value: str = ".*"

    @property
    def query(self) -> str:
        return f"label_values({self.selector}, {self.label_name})"

    def to_json(self) -> JSON:
        return {
            "name": self.name,
            "label": self.label,
            "type": "query",
            "datasource": _datasource(),
            "definition": self.query,
            "query": {"qryType": 1, "query": self.query, "refId": f"{self.name}-values"},
            "refresh": 2,  # on time-range change: new workers and kinds appear
            "includeAll": True,
            "multi": True,
            "allValue": self.all_value,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "options": [],
            "regex": "",
            "sort": 1,
            "hide": 0,
            "skipUrlSync": False,
        }


@dataclass(frozen=True)
class TextVariable:
    """A free-text template variable (e.g. a URL or a regex) with a default value.

    Grafana keeps the default in the JSON; a viewer can change it on the dashboard or
    with ``?var-<name>=`` in the URL, a deployment by regenerating with another default.
    """

    name: str
    label: str
    default: str
    description: str = ""

    def to_json(self) -> JSON:
        return {
            "name": self.name,
            "label": self.label,
            "description": self.description,
            "type": "textbox",
            "query": self.default,
            "current": {"selected": False, "text": self.default, "value": self.default},
            "options": [{"selected": True, "text": self.default, "value": self.default}],
            "hide": 0,
            "skipUrlSync": False,
        }
