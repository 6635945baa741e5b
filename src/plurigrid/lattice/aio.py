"""asyncio helpers shared by the lattice's long-running tasks."""

from __future__ import annotations

import asyncio


async def cancel(task: asyncio.Task | None) -> None:
    """Cancels `task` and waits until it has stopped (no-op for None)."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
