"""Wait on a condition, never on a fixed sleep: for the tests, make bench and make soak.

    wait_until(lambda: stack.stats().get("sync"), timeout=10)
    await until(lambda: client.received, timeout=10)

Both return the condition's first truthy value, or raise TimeoutError naming what was
awaited (pass `what=`), so a failure says which condition did not come true.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
POLL_S = 0.02


def _timeout(what: str, timeout: float) -> TimeoutError:
    return TimeoutError(f"not true after {timeout:g} s: {what}")


def wait_until(condition: Callable[[], T], timeout: float = 10.0, what: str = "the condition") -> T:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise _timeout(what, timeout)
        time.sleep(POLL_S)
    return value


async def until(condition: Callable[[], T], timeout: float = 10.0, what: str = "the condition") -> T:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise _timeout(what, timeout)
        await asyncio.sleep(POLL_S)
    return value
