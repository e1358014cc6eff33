"""The thread pool the API's routes run their synchronous store calls on.

Not asyncio's default executor: the dispatcher's rounds run there, and a burst of
starts and reports queued in front of them (the default has cpu + 4 threads) held the
dispatch back. Sized like the anyio pool FastAPI gives plain ``def`` routes.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

_ROUTES = ThreadPoolExecutor(max_workers=40, thread_name_prefix="ktrdr-route")


async def in_thread(func: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """``asyncio.to_thread`` on the routes' own pool (the context, so the request's span,
    goes along)."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, func, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_ROUTES, call)
