"""Grafana dashboards as code: typed builders that render deploy/grafana/dashboards/*.json.

``python -m ktrdr.dashboards`` writes the files, ``--check`` verifies them. The PromQL on
the dashboards is listed by :func:`ktrdr.dashboards.queries.all_panel_queries`.
"""

from ktrdr.dashboards.catalog import all_dashboards, render, rendered_files

__all__ = ["all_dashboards", "render", "rendered_files"]
