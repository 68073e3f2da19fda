"""The delivery policy every service uses, against the real Kafka broker.

A message is committed only after its handler succeeded; a failure is retried, never skipped
(FastStream issues #2618 and #1980 describe the skip this guards against).
"""

import json
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from faststream.kafka import KafkaBroker, KafkaRouter
from prometheus_client import CollectorRegistry

from schemas.dead_letter import DeadLetter
from schemas.follow_up import ReporterAddition
from schemas.topics import DEAD_LETTERS
from services.common.broker import ensure_topics, make_broker, subscribe, subscriber_group
from tests.conftest import InfraSettings
from tests.integration.kafka_reading import Positions, end_offsets, published_since
from tests.waiting import eventually

Handler = Any


async def committed_total(settings: InfraSettings, service: str, topic: str) -> int:
    """What the service's subscriber of ``topic`` committed, over all partitions."""
    group = subscriber_group(f"qinglian-{service}", topic)
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
        raise ConnectionError("store unavailable")  # an outage: retried however long it lasts

    failing = broker_with(settings, topic, service, broken)
    await failing.start()
    await failing.publish({"n": 1}, topic, key=b"case-1")
    # More attempts than a poison message gets: an outage is never dead-lettered.
    await eventually(
        lambda: len(attempts) > settings.max_handler_attempts,
        what="the failing handler to be retried",
    )
    await failing.stop()

    assert attempts == [{"n": 1}] * len(attempts)
    assert await committed_total(settings, service, topic) == 0

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
    assert await committed_total(settings, service, topic) == 1


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
    assert await committed_total(settings, service, topic) == 2


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


async def dead_letters_of(
    settings: InfraSettings, topic: str, since: Positions
) -> list[DeadLetter]:
    return [
        letter
        for letter in (
            DeadLetter.model_validate_json(record.value)
            for record in await published_since(settings.kafka_bootstrap, DEAD_LETTERS, since)
        )
        if letter.source_topic == topic
    ]


async def test_a_poison_message_is_dead_lettered_after_bounded_retries_and_the_rest_flows(
    infra: InfraSettings, unique: str
) -> None:
    settings = infra.model_copy(
        update={"retry_backoff_max_seconds": 0.1, "max_handler_attempts": 3}
    )
    topic, service = f"test.delivery.{unique}", f"test-{unique}"
    await ensure_topics(settings, (topic, DEAD_LETTERS))
    since = await end_offsets(settings.kafka_bootstrap, DEAD_LETTERS)
    calls: list[str] = []

    async def chokes_on_poison(body: dict[str, str]) -> None:
        calls.append(body["name"])
        if body["name"] == "poison":
            raise KeyError("a bug this record triggers every time")

    broker = broker_with(settings, topic, service, chokes_on_poison)
    await broker.start()
    try:
        # Same key, same partition: the others sit right behind the poison.
        for name in ("before", "poison", "after-1", "after-2"):
            await broker.publish({"name": name}, topic, key=b"same-case")
        await eventually(lambda: "after-2" in calls, what="the records behind the poison")
    finally:
        await broker.stop()

    assert calls == ["before", "poison", "poison", "poison", "after-1", "after-2"]
    (letter,) = await dead_letters_of(settings, topic, since)
    assert (letter.reason, letter.attempts, letter.failed_in) == ("handler_failed", 3, service)
    assert letter.problems[0].reason == "KeyError"
    assert letter.original is not None
    assert json.loads(letter.original) == {"name": "poison"}
    assert letter.key == b"same-case"
    assert await committed_total(settings, service, topic) == 4  # nothing skipped, none stuck


async def test_a_record_that_breaks_its_contract_is_dead_lettered_at_once(
    infra: InfraSettings, unique: str
) -> None:
    settings = infra.model_copy(update={"retry_backoff_max_seconds": 0.1})
    topic, service = f"test.delivery.{unique}", f"test-{unique}"
    await ensure_topics(settings, (topic, DEAD_LETTERS))
    since = await end_offsets(settings.kafka_bootstrap, DEAD_LETTERS)
    handled: list[ReporterAddition] = []

    async def takes_additions(addition: ReporterAddition) -> None:
        handled.append(addition)

    broker = broker_with(settings, topic, service, takes_additions)
    await broker.start()
    try:
        await broker.publish({"not": "an addition"}, topic, key=b"k")
        letters: list[DeadLetter] = []

        async def dead_lettered() -> bool:
            letters[:] = await dead_letters_of(settings, topic, since)
            return bool(letters)

        await eventually(dead_lettered, what="the dead letter")
    finally:
        await broker.stop()
    assert handled == []
    assert letters[0].attempts == 1
    assert letters[0].problems[0].reason == "ValidationError"
