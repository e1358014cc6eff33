"""Following an operation: which updates to yield, and a progress bar for people.

In a terminal the bar is Rich's; in a notebook it is an HTML <progress> element updated in
place (IPython's display handle), which needs no widget extension."""

from __future__ import annotations

import html
import time
from typing import Any, Protocol

from ktrdr.client.models import Operation


class Bar(Protocol):
    def update(self, op: Operation) -> None: ...

    def close(self) -> None: ...


def _label(op: Operation) -> str:
    phase = op.progress.phase or op.status
    return f"{op.type} {op.id[:8]} {phase}"


class RichBar:
    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TaskProgressColumn()
        )
        self._task = self._progress.add_task("queued", total=100.0)
        self._progress.start()

    def update(self, op: Operation) -> None:
        self._progress.update(self._task, completed=op.progress.percent, description=_label(op))

    def close(self) -> None:
        self._progress.stop()


class NotebookBar:
    def __init__(self) -> None:
        from IPython.display import HTML, display

        self._html = HTML
        self._handle: Any = display(
            HTML("<progress value='0' max='100'></progress>"), display_id=True
        )

    def update(self, op: Operation) -> None:
        text = html.escape(f"{_label(op)} {op.progress.percent:.0f}%")
        self._handle.update(
            self._html(f"<progress value='{op.progress.percent}' max='100'></progress> {text}")
        )

    def close(self) -> None:
        pass


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def make_bar() -> Bar:
    return NotebookBar() if _in_notebook() else RichBar()


class Follower:
    """Decides what `follow()` yields: every change of status, phase or percent."""

    def __init__(self, *, bar: bool, timeout_s: float | None, poll_s: float):
        self.poll_s = poll_s
        self._deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self._bar: Bar | None = make_bar() if bar else None
        self._last: tuple[str, str | None, float] | None = None

    def changed(self, op: Operation) -> bool:
        if self._bar is not None:
            self._bar.update(op)
        key = (op.status, op.progress.phase, op.progress.percent)
        fresh, self._last = key != self._last, key
        return fresh

    def check_deadline(self, op: Operation) -> None:
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise TimeoutError(
                f"operation {op.id} still {op.status} ({op.progress.percent:.0f}%) "
                "when the follow timeout ran out"
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
