"""Intake from a raw Kafka topic: records accepted per second when many are published at once.

    .venv/bin/python -m bench.intake_raw_topic            # needs deploy/local/runtime.sh start
    .venv/bin/python -m bench.intake_raw_topic --records 2000

Starts intake on a free port (a database and consumer groups of its own, on the running
runtime named by QINGLIAN_KAFKA_BOOTSTRAP and QINGLIAN_MONGO_URL; its raw consumer group starts
at the topic's end, past what earlier runs left), sends one rating and waits until it is
accepted (the raw consumer has joined its group), then publishes ``--records`` satisfaction
ratings at once to the raw topic of the sender ``his`` and measures from the first send until
the last of them is on qinglian.satisfaction-ratings.v1. Prints JSON.
"""

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench._runtime import free_port, machine, start_service, stop_service, tag
from schemas import topics
from services.common.consuming import subscriber_group

SENDER = "his"
LOG_DIR = Path(".local/bench")


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


async def watching(bootstrap: str) -> AIOKafkaConsumer:
    """A consumer of the ratings topic, positioned at its current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:  # intake created the topic at its start
        (description,) = await admin.describe_topics([topics.SATISFACTION_RATINGS])
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topics.SATISFACTION_RATINGS, partition["partition"])
        for partition in description["partitions"]
    ]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for partition in partitions:  # resolved now, before anything is published
        await consumer.position(partition)
    return consumer


async def accepted(consumer: AIOKafkaConsumer, run: str, count: int, *, within: float) -> float:
    """Wait until ``count`` ratings of ``run`` came; when the last one was read."""
    seen, mark = 0, f"RAW-{run}-".encode()
    deadline = time.monotonic() + within
    while seen < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {seen} of {count} accepted within {within} s")
        batches = await consumer.getmany(timeout_ms=500)
        seen += sum(mark in (record.value or b"") for part in batches.values() for record in part)
    return time.perf_counter()


async def measure(bootstrap: str, records: int) -> dict[str, Any]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    consumer = await watching(bootstrap)
    try:
        warm = tag()  # one first: the raw consumer has joined its group once it is accepted
        await producer.send_and_wait(topics.raw_topic(SENDER), rating(warm, 0))
        await accepted(consumer, warm, 1, within=120)

        run = tag()
        started = time.perf_counter()
        sent = [
            await producer.send(topics.raw_topic(SENDER), rating(run, n)) for n in range(records)
        ]
        await asyncio.gather(*sent)
        published = time.perf_counter()
        finished = await accepted(consumer, run, records, within=1800)
    finally:
        await consumer.stop()
        await producer.stop()
    seconds = finished - started
    return {
        "records": records,
        "publish_seconds": round(published - started, 3),
        "seconds": round(seconds, 3),
        "records_per_s": round(records / seconds, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=10_000)
    options = parser.parse_args()
    load = [round(value, 2) for value in os.getloadavg()]
    bootstrap = os.environ.get("QINGLIAN_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    env = {
        "QINGLIAN_KAFKA_BOOTSTRAP": bootstrap,
        "QINGLIAN_MONGO_URL": os.environ.get("QINGLIAN_MONGO_URL", "mongodb://127.0.0.1:27018/"),
        "QINGLIAN_MONGO_DB": f"bench_{uuid.uuid4().hex[:8]}",
        "QINGLIAN_KAFKA_GROUP_PREFIX": f"bench-{uuid.uuid4().hex[:8]}-",
        "QINGLIAN_LOG_LEVEL": "WARNING",
    }
    asyncio.run(start_at_the_end(bootstrap, env["QINGLIAN_KAFKA_GROUP_PREFIX"]))
    intake = start_service("intake", env=env, port=free_port(range(8300, 8400)), log_dir=LOG_DIR)
    try:
        result = asyncio.run(measure(bootstrap, options.records))
    finally:
        stop_service(intake)
    print(
        json.dumps(
            {"benchmark": "intake_raw_topic", "raw": result, "machine": machine(load)}, indent=2
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
