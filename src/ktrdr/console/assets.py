"""Third-party browser assets, served from the installed Python packages (never a CDN).

Plotly's own distribution of plotly.js ships inside the `plotly` package
(`plotly/package_data/plotly.min.js`); the console serves that file as it is, so the
charting library is the one the `plotly` dependency pins, and nothing is copied here.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import version
from pathlib import Path

import plotly

PLOTLY_VERSION = version("plotly")
PLOTLY_URL = f"/ui/vendor/plotly-{PLOTLY_VERSION}.min.js"


@cache
def plotly_path() -> Path:
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: reinstall the `plotly` package")
    return path
