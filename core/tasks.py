"""Structured concurrency for the work one request starts.

``asyncio.gather`` lets the siblings of a failed task run on: a sample that
keeps generating, and being metered, after its request already failed. And
a task that is cancelled but not awaited may still be running when its
request has answered. :func:`gather_all` is gather without either: no task
it starts outlives the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def gather_all(*calls: Awaitable[T]) -> list[T]:
    """Every result in order; the first failure cancels the others, waits
    for them to end, and is raised as it was (not wrapped in a group, so
    the server still maps it to its status). When the caller is cancelled,
    so are they all, and they end before the cancellation goes on."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()  # a no-op for those that ended
        await asyncio.gather(*tasks, return_exceptions=True)
