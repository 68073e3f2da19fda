"""Intake from a raw Kafka topic: records accepted per second when many are published at once.

    .venv/bin/python -m bench.intake_raw_topic            # needs deploy/local/runtime.sh start
    .venv/bin/python -m bench.intake_raw_topic --records 2000

Intake on the running runtime (its raw consumer group starts at the topic's end); one rating
first, until accepted (the raw consumer has joined its group); then --records ratings published
at once to the raw topic of the sender ``his``, timed until the last is on
qinglian.satisfaction-ratings.v1.
"""

import argparse
import asyncio
import json
import sys
import time
from contextlib import aclosing
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.harness import report
from bench.harness.kafka import Batches, batches_from, producer, topic_ends
from bench.harness.processes import start_service, stop_service
from bench.harness.runtime import ROOT, Deadline, free_port, running_runtime_env, tag
from schemas import topics
from services.common.consuming import subscriber_group

SENDER = "his"
LOG_DIR = ROOT / ".local" / "bench"


def rating(run: str, n: int) -> bytes:
    return json.dumps(
        {
            "event_type": "satisfaction",
            "source_system": SENDER,
            "source_ref": f"RAW-{run}-{n}",
            "occurred_at": "2026-11-21T10:05:00+08:00",
            "touchpoint": "settlement",
            "department": "OPD",
            "score": 4,
        }
    ).encode()


async def start_at_the_end(bootstrap: str, group_prefix: str) -> None:
    """Commit the raw topic's end for intake's consumer group on it, before intake starts."""
    topic = topics.raw_topic(SENDER)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            return  # intake creates it; there is nothing before
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in description["partitions"]]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=subscriber_group(f"{group_prefix}intake", topic),
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.commit(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def accepted(ratings: Batches, run: str, count: int, *, within: float) -> float:
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
    sender = producer(bootstrap, linger_ms=5)
    await sender.start()
    since = await topic_ends(bootstrap, [topics.SATISFACTION_RATINGS])  # intake made it
    try:
        async with aclosing(batches_from(bootstrap, since)) as ratings:
            warm = tag()  # one first: the raw consumer has joined its group once it is accepted
            await sender.send_and_wait(topics.raw_topic(SENDER), rating(warm, 0))
            await accepted(ratings, warm, 1, within=120)
            run = tag()
            started = time.perf_counter()
            sent = [
                await sender.send(topics.raw_topic(SENDER), rating(run, n)) for n in range(records)
            ]
            await asyncio.gather(*sent)
            published = time.perf_counter()
            finished = await accepted(ratings, run, records, within=1800)
    finally:
        await sender.stop()
    seconds = finished - started
    return {
        "records": records,
        "publish_seconds": round(published - started, 3),
        "seconds": round(seconds, 3),
        "records_per_s": round(records / seconds, 1),
    }


def measure(options: argparse.Namespace, deadline: Deadline, result: dict[str, Any]) -> None:
    env = running_runtime_env()
    bootstrap = env["QINGLIAN_KAFKA_BOOTSTRAP"]
    deadline.run(start_at_the_end(bootstrap, env["QINGLIAN_KAFKA_GROUP_PREFIX"]))
    intake = start_service("intake", env=env, port=free_port(range(8300, 8400)), log_dir=LOG_DIR)
    try:
        result["raw"] = deadline.run(measure_rate(bootstrap, options.records))
    finally:
        stop_service(intake)


def main() -> int:
    parser = report.parser(__doc__, timeout=3600)
    parser.add_argument("--records", type=int, default=10_000)
    return report.run("intake_raw_topic", parser.parse_args(), measure)


if __name__ == "__main__":
    sys.exit(main())
