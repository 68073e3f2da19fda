"""What every service starts with: the periodic loop."""

import asyncio
import logging

import pytest

from services.common.service import run_every


async def test_a_periodic_task_runs_again_after_a_failure_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rounds: list[int] = []
    six_rounds = asyncio.Event()

    async def flaky() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 6:
            six_rounds.set()
        if len(rounds) in (2, 3):
            raise RuntimeError("the store blinked")

    with caplog.at_level(logging.INFO, logger="services.common.service"):
        loop = asyncio.create_task(run_every(0.01, flaky, what="checking the clock"))
        await asyncio.wait_for(six_rounds.wait(), timeout=5)
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "checking the clock failed; trying again every 0 s",
        "checking the clock works again",
    ]


async def test_a_periodic_task_stops_when_cancelled_in_the_middle_of_a_round() -> None:
    started = asyncio.Event()

    async def slow() -> None:
        started.set()
        await asyncio.sleep(60)

    loop = asyncio.create_task(run_every(60, slow, what="a slow round"))
    await started.wait()
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(loop, timeout=1)
