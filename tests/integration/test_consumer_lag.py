"""The consumer lag gauge of a service (services/common/lag.py, wired by services/common/service.py)
against the real Kafka broker: what operators read on /metrics must be the number of records
truly waiting, through a burst, behind a stuck handler, and after the consumer has left its
group.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI
from faststream.kafka import KafkaRouter
from prometheus_client.parser import text_string_to_metric_families

from services.common.consuming import Received, consume, parse_model, subscriber_group
from services.common.service import Service
from tests.conftest import InfraSettings
from tests.integration.test_batches import Item, committed
from tests.waiting import eventually

FIRST_WAVE = 300
"""Records there before the handler gets stuck: what the consumer prefetches and holds."""
BURST = 4000
"""Records that arrive while the handler is stuck."""
AFTER_LEAVING = 500
"""Records that arrive once the consumer has left its group."""
MAX_POLL_SECONDS = 4
"""A handler stuck longer than this makes its consumer leave the group (aiokafka's
max_poll_interval_ms; five minutes by default)."""


@dataclass
class StuckService:
    app: FastAPI
    group: str
    stuck: asyncio.Event
    """Set once the handler holds a record it will not finish."""
    release: asyncio.Event

    async def lag(self) -> dict[str, float]:
        """qinglian_consumer_lag as /metrics shows it, by partition, for this service's group."""
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            text = (await client.get("/metrics")).text
        return {
            sample.labels["partition"]: sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "qinglian_consumer_lag"
            for sample in family.samples
            if sample.labels["group"] == self.group
        }

    async def shows(self, waiting: int) -> None:
        async def showing() -> bool:
            return sum((await self.lag()).values()) == waiting

        await eventually(showing, within=20, what=f"the gauge to show {waiting}")


@asynccontextmanager
async def stuck_service(
    settings: InfraSettings, topic: str, name: str
) -> AsyncIterator[StuckService]:
    """A service whose one subscriber gets stuck on the first batch it is given."""
    stuck, release = asyncio.Event(), asyncio.Event()

    async def handle(_: list[Received[Item]]) -> None:
        stuck.set()
        await release.wait()

    service = Service(name, settings)
    routes = KafkaRouter()
    consume(
        routes,
        topic,
        group_id=service.group_id,
        parse=parse_model(Item),
        max_poll_interval_ms=MAX_POLL_SECONDS * 1000,
    )(handle)
    app = service.app(title=name, topics=(topic,), routers=[routes])
    async with app.router.lifespan_context(app):
        try:
            yield StuckService(app, subscriber_group(service.group_id, topic), stuck, release)
        finally:
            release.set()  # so the broker stops without waiting out its graceful timeout


async def publish(settings: InfraSettings, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        sent = [await producer.send(topic, b'{"n": %d}' % n, key=b"%d" % n) for n in range(count)]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def members(settings: InfraSettings, group: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        (description,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    return len(description.groups[0][5])  # (error, group, state, protocol type, protocol, members)


@dataclass
class Stuck:
    service: StuckService
    settings: InfraSettings
    topic: str
    name: str


@pytest.fixture
async def stuck(infra: InfraSettings, unique: str) -> AsyncIterator[Stuck]:
    """A service whose handler holds the first of FIRST_WAVE records and never finishes it."""
    settings = infra.model_copy(update={"kafka_group_prefix": f"test-{unique}-"})
    topic, name = f"test.lag.{unique}", f"lag-{unique}"
    async with stuck_service(settings, topic, name) as service:
        await publish(settings, topic, FIRST_WAVE)
        await eventually(lambda: service.stuck.is_set(), what="the handler to take a record")
        yield Stuck(service, settings, topic, name)


async def test_the_lag_is_every_record_waiting_behind_a_stuck_handler_even_after_its_consumer_left(
    stuck: Stuck,
) -> None:
    # Nothing is committed while the handler is stuck: every record waits.
    await publish(stuck.settings, stuck.topic, BURST)
    await stuck.service.shows(FIRST_WAVE + BURST)

    # A handler stuck past max_poll_interval: its consumer leaves the group and is given no
    # partition any more; the records still wait, and more keep coming.
    async def left() -> bool:
        return await members(stuck.settings, stuck.service.group) == 0

    await eventually(left, within=MAX_POLL_SECONDS + 20, what="the consumer to leave its group")
    await publish(stuck.settings, stuck.topic, AFTER_LEAVING)
    await stuck.service.shows(FIRST_WAVE + BURST + AFTER_LEAVING)
    assert set(await stuck.service.lag()) == {"0", "1", "2"}


async def test_records_keep_showing_as_waiting_once_the_subscribers_consumer_has_stopped(
    stuck: Stuck,
) -> None:
    (subscriber,) = stuck.service.app.state.broker.subscribers
    stuck.service.release.set()
    await subscriber.stop()  # the consumer is gone; the service still runs

    await publish(stuck.settings, stuck.topic, AFTER_LEAVING)
    handled = await committed(
        stuck.settings, stuck.settings.consumer_group(stuck.name), stuck.topic
    )
    await stuck.service.shows(FIRST_WAVE + AFTER_LEAVING - handled)
