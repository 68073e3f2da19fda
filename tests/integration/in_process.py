"""A service's app run in this process against the real broker and store, as the tests of
intake and portal start them."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI

from services.common.broker import ensure_topics
from services.common.consuming import subscriber_group
from services.common.settings import ServiceSettings
from tests.integration.kafka_reading import end_offsets


@asynccontextmanager
async def serving(app: FastAPI, base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s lifespan (topics, indexes, broker and consumers); a client of it."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url) as client,
    ):
        yield client


async def start_from_now(settings: ServiceSettings, service: str, *topics: str) -> None:
    """Commit the end of each topic for the service's consumer group on it, as if it had read
    everything published before: every run leaves records on the shared topics, and a test
    should not wait for a fresh service to work through all of them."""
    await ensure_topics(settings, topics)  # a fresh broker has none before the service
    for topic in topics:
        ends = await end_offsets(settings.kafka_bootstrap, topic)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=subscriber_group(settings.consumer_group(service), topic),
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            partitions = {TopicPartition(topic, number): end for number, end in ends.items()}
            consumer.assign(list(partitions))
            await consumer.commit(partitions)
        finally:
            await consumer.stop()
