"""Load at a constant arrival rate (open loop: no coordinated omission) or from workers each
sending once answered (closed loop); latency percentiles by nearest rank."""

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any


def percentile(values: list[float], share: float) -> float:
    """Nearest rank: with 7 values, p95 is the largest."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def latency_summary(
    seconds: list[float], shares: Iterable[float] = (0.50, 0.90, 0.99)
) -> dict[str, Any]:
    """The count, percentiles (p50_ms, …) and max in milliseconds."""
    if not seconds:
        return {"count": 0}
    summary: dict[str, Any] = {"count": len(seconds)}
    for share in shares:
        summary[f"p{round(share * 100)}_ms"] = round(percentile(seconds, share) * 1000, 1)
    return summary | {"max_ms": round(max(seconds) * 1000, 1)}


def against_goal(seconds: list[float], goal_ms: float, flag: str) -> dict[str, Any]:
    """p50, p90, p95, p99 and max in ms, and ``flag``: whether the p95 is under the goal."""
    summary = latency_summary(seconds, (0.50, 0.90, 0.95, 0.99))
    return summary | {flag: summary.get("p95_ms", goal_ms) < goal_ms}


async def timed(call: Awaitable[Any], into: list[float]) -> Any:
    """Await ``call``; its wall time appended to ``into``."""
    started = time.perf_counter()
    try:
        return await call
    finally:
        into.append(time.perf_counter() - started)


async def open_loop(
    send: Callable[[int], Coroutine[Any, Any, None]], *, rate: float, count: int
) -> tuple[float, float]:
    """``send(n)`` for n in 0 .. count - 1 at ``rate`` a second, whatever the answers' latency;
    the seconds the sending took and the seconds until every send finished."""
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    for n in range(max(1, count)):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(n)))
    sending = time.perf_counter() - start
    await asyncio.gather(*tasks)
    return sending, time.perf_counter() - start


async def closed_loop(
    send: Callable[[Any], Awaitable[None]], items: list[Any], *, workers: int
) -> float:
    """``workers`` senders, each sending the next item once its last one is answered; seconds."""
    queue = iter(items)

    async def worker() -> None:
        for item in queue:
            await send(item)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return time.perf_counter() - started
