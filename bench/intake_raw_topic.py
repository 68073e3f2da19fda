"""Intake from a raw Kafka topic: records accepted per second when many are published at once.

    .venv/bin/python -m bench.intake_raw_topic --records 2000  # needs deploy/local/runtime.sh start

Intake on the running runtime, its raw consumer group set to the topic's end; one rating until
accepted (the consumer has joined its group); then --records ratings published at once to the
raw topic of the sender ``his``, timed until the last is on qinglian.satisfaction-ratings.v1.
"""

import argparse
import asyncio
import json
import sys
import time
from contextlib import aclosing
from typing import Any

from bench.harness import kafka, processes, report, runtime
from bench.harness.runtime import Deadline
from schemas import topics
from services.common.consuming import subscriber_group

RAW_TOPIC = topics.raw_topic("his")


def rating(run: str, n: int) -> bytes:
    return json.dumps(
        {
            "event_type": "satisfaction",
            "source_system": "his",
            "source_ref": f"RAW-{run}-{n}",
            "occurred_at": "2026-11-21T10:05:00+08:00",
            "touchpoint": "settlement",
            "department": "OPD",
            "score": 4,
        }
    ).encode()


async def accepted(ratings: kafka.Batches, run: str, count: int, *, within: float) -> float:
    """Wait until ``count`` ratings of ``run`` came; when the last one was read."""
    seen, mark = 0, f"RAW-{run}-".encode()
    deadline = time.monotonic() + within
    async for batch in ratings:
        seen += sum(mark in (record.value or b"") for part in batch.values() for record in part)
        if seen >= count:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {seen} of {count} accepted within {within} s")
    return time.perf_counter()


async def measure_rate(bootstrap: str, records: int) -> dict[str, Any]:
    sender = kafka.producer(bootstrap, linger_ms=5)
    await sender.start()
    since = await kafka.topic_ends(bootstrap, [topics.SATISFACTION_RATINGS])  # intake made it
    try:
        async with aclosing(kafka.batches_from(bootstrap, since)) as ratings:
            warm = runtime.tag()
            await sender.send_and_wait(RAW_TOPIC, rating(warm, 0))
            await accepted(ratings, warm, 1, within=120)
            run = runtime.tag()
            started = time.perf_counter()
            sent = [await sender.send(RAW_TOPIC, rating(run, n)) for n in range(records)]
            await asyncio.gather(*sent)
            published = time.perf_counter()
            finished = await accepted(ratings, run, records, within=1800)
    finally:
        await sender.stop()
    return {
        "records": records,
        "publish_seconds": round(published - started, 3),
        "seconds": round(finished - started, 3),
        "records_per_s": round(records / (finished - started), 1),
    }


def measure(options: argparse.Namespace, deadline: Deadline, result: dict[str, Any]) -> None:
    env = runtime.running_runtime_env()
    bootstrap = env["QINGLIAN_KAFKA_BOOTSTRAP"]
    group = subscriber_group(f"{env['QINGLIAN_KAFKA_GROUP_PREFIX']}intake", RAW_TOPIC)
    deadline.run(kafka.commit_ends(bootstrap, group, [RAW_TOPIC]))
    log_dir = runtime.ROOT / ".local" / "bench"
    with processes.running("intake", env=env, ports=range(8300, 8400), log_dir=log_dir):
        result["raw"] = deadline.run(measure_rate(bootstrap, options.records))


if __name__ == "__main__":
    sys.exit(report.main("intake_raw_topic", __doc__, measure, {"records": 10_000}, timeout=3600))
