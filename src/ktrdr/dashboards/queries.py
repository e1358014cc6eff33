"""Every PromQL expression on the dashboards, and Grafana's variables made concrete.

For tests that evaluate the dashboards against a real Prometheus::

    from ktrdr.dashboards.queries import all_panel_queries, substitute

    for q in all_panel_queries():
        promql = substitute(q.expr, {"__range": "15m"})
        ...  # GET /api/v1/query?query=promql; q.expectation says if it must return data
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ktrdr.dashboards.catalog import all_dashboards
from ktrdr.dashboards.constants import DEFAULT_ROUTE_EXCLUDE, JAEGER_UI_URL, KTRDR_JOBS_REGEX
from ktrdr.dashboards.model import Expectation, QueryVariable

# What "All" selects for each template variable, plus Grafana's built-in intervals at the
# default 1h window. Override any of them per call (e.g. a shorter $__rate_interval when
# Prometheus scrapes every few seconds).
DEFAULT_VARIABLES: Mapping[str, str] = {
    "job": KTRDR_JOBS_REGEX,
    "instance": ".*",
    "kind": ".*",
    "route": ".*",
    "route_exclude": DEFAULT_ROUTE_EXCLUDE,
    "strategy": ".*",
    "type": ".*",
    "jaeger_url": JAEGER_UI_URL,
    "__range": "1h",
    "__rate_interval": "1m",
    "__interval": "15s",
}

# $name, ${name} and ${name:format}; "$1" (label_replace groups) is not a variable.
_VARIABLE = re.compile(r"\$\{([A-Za-z_]\w*)(?::\w+)?\}|\$([A-Za-z_]\w*)")


@dataclass(frozen=True)
class PanelQuery:
    """One target of one panel."""

    dashboard_uid: str
    dashboard_title: str
    panel_title: str
    ref_id: str
    expr: str
    instant: bool
    expectation: Expectation

    @property
    def must_have_data(self) -> bool:
        """True when the reference backtest workload must fill this panel."""
        return self.expectation is Expectation.FILLED_BY_BACKTEST_WORKLOAD


@dataclass(frozen=True)
class VariableQuery:
    """A template variable: ``label_values(selector, label_name)``."""

    dashboard_uid: str
    name: str
    selector: str
    label_name: str

    @property
    def query(self) -> str:
        return f"label_values({self.selector}, {self.label_name})"


def all_panel_queries() -> list[PanelQuery]:
    """Every (dashboard, panel title, PromQL expression), in dashboard order."""
    out: list[PanelQuery] = []
    for dashboard in all_dashboards():
        for panel in dashboard.panels:
            for index, target in enumerate(panel.targets):
                out.append(
                    PanelQuery(
                        dashboard_uid=dashboard.uid,
                        dashboard_title=dashboard.title,
                        panel_title=panel.title,
                        ref_id=chr(ord("A") + index),
                        expr=target.expr,
                        instant=target.instant,
                        expectation=panel.expectation,
                    )
                )
    return out


def workload_panel_queries() -> list[PanelQuery]:
    """Queries that must return data after backtests (succeeding and failing) and a cancel."""
    return [q for q in all_panel_queries() if q.must_have_data]


def all_variable_queries() -> list[VariableQuery]:
    """Every template variable; its selector can go to ``/api/v1/series?match[]=``."""
    return [
        VariableQuery(d.uid, v.name, v.selector, v.label_name)
        for d in all_dashboards()
        for v in d.variables
        if isinstance(v, QueryVariable)
    ]


def substitute(expr: str, variables: Mapping[str, str] | None = None) -> str:
    """Replace Grafana variables with concrete values (defaults: :data:`DEFAULT_VARIABLES`).

    Raises ``KeyError`` naming any variable without a value, so a typo in a dashboard
    (``$instnace``) fails loudly instead of sending a literal ``$`` to Prometheus.
    """
    values = {**DEFAULT_VARIABLES, **(variables or {})}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(replace, expr)
