"""The delivery policy every service uses, against the real Kafka broker.

A message is committed only after its handler succeeded; a failure is retried, never skipped
(FastStream issues #2618 and #1980 describe the skip this guards against).
"""

from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from faststream.kafka import KafkaBroker, KafkaRouter
from prometheus_client import CollectorRegistry

from services.common.broker import ensure_topics, make_broker, subscribe
from tests.conftest import InfraSettings
from tests.waiting import eventually

Handler = Any


async def committed_total(settings: InfraSettings, group: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(max(meta.offset, 0) for tp, meta in offsets.items() if tp.topic == topic)


def broker_with(settings: InfraSettings, topic: str, service: str, handler: Handler) -> KafkaBroker:
    broker = make_broker(settings, service=service, registry=CollectorRegistry())
    routes = KafkaRouter()
    subscribe(routes, topic, group_id=f"qinglian-{service}")(handler)
    broker.include_router(routes)
    return broker


async def test_a_failed_message_stays_uncommitted_and_is_handled_after_a_restart(
    infra: InfraSettings, unique: str
) -> None:
    settings = infra.model_copy(update={"retry_backoff_max_seconds": 0.2})
    topic, service = f"test.delivery.{unique}", f"test-{unique}"
    await ensure_topics(settings, (topic,))
    attempts: list[dict[str, int]] = []

    async def broken(body: dict[str, int]) -> None:
        attempts.append(body)
        raise RuntimeError("store unavailable")

    failing = broker_with(settings, topic, service, broken)
    await failing.start()
    await failing.publish({"n": 1}, topic, key=b"case-1")
    await eventually(lambda: len(attempts) >= 3, what="the failing handler to be retried")
    await failing.stop()

    assert attempts == [{"n": 1}] * len(attempts)
    assert await committed_total(settings, f"qinglian-{service}", topic) == 0

    handled: list[dict[str, int]] = []

    async def working(body: dict[str, int]) -> None:
        handled.append(body)

    restarted = broker_with(settings, topic, service, working)
    await restarted.start()
    try:
        await eventually(lambda: bool(handled), what="the message after the restart")
    finally:
        await restarted.stop()
    assert handled == [{"n": 1}]
    assert await committed_total(settings, f"qinglian-{service}", topic) == 1


async def test_a_later_success_does_not_skip_an_earlier_failure(
    infra: InfraSettings, unique: str
) -> None:
    settings = infra.model_copy(update={"retry_backoff_max_seconds": 0.2})
    topic, service = f"test.delivery.{unique}", f"test-{unique}"
    await ensure_topics(settings, (topic,))
    calls: list[tuple[str, str]] = []

    async def fails_once_on_first(body: dict[str, str]) -> None:
        name = body["name"]
        if name == "first" and ("first", "failed") not in calls:
            calls.append((name, "failed"))
            raise RuntimeError("transient failure")
        calls.append((name, "handled"))

    broker = broker_with(settings, topic, service, fails_once_on_first)
    await broker.start()
    try:
        # Same key, same partition: the second message sits right behind the first.
        await broker.publish({"name": "first"}, topic, key=b"same-case")
        await broker.publish({"name": "second"}, topic, key=b"same-case")
        await eventually(lambda: ("second", "handled") in calls, what="the second message")
    finally:
        await broker.stop()
    assert calls == [("first", "failed"), ("first", "handled"), ("second", "handled")]
    assert await committed_total(settings, f"qinglian-{service}", topic) == 2


async def test_topics_are_created_once_with_unlimited_retention(
    infra: InfraSettings, unique: str
) -> None:
    topic = f"test.topics.{unique}"
    await ensure_topics(infra, (topic,))
    await ensure_topics(infra, (topic,))  # a second start finds it and leaves it alone
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    assert len(description["partitions"]) == infra.kafka_partitions
    entries = {entry[0]: entry[1] for entry in configs[0].resources[0][4]}
    assert entries["retention.ms"] == "-1"
