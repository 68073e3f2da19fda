"""The redrive command sends dead-lettered records back, once, against the real broker."""

import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from schemas import topics
from schemas.dead_letter import DeadLetter, Problem
from services.common.broker import ensure_topics
from services.intake.crypto import Vault
from services.intake.redrive import Selection, redrive
from tests.conftest import InfraSettings
from tests.integration.intake_app import TEST_RAW_TOPIC, intake_settings
from tests.integration.kafka_reading import end_offsets, published_since


async def publish(bootstrap: str, letter: DeadLetter) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topics.DEAD_LETTERS,
            letter.model_dump_json().encode(),
            key=letter.dead_letter_id.bytes,
        )
    finally:
        await producer.stop()


async def test_a_record_no_handler_could_process_goes_back_to_its_topic_once(
    infra: InfraSettings, unique: str
) -> None:
    settings = intake_settings(infra, unique)
    source = f"test.redrive.{unique}"
    await ensure_topics(settings, (source, topics.DEAD_LETTERS))
    letter = DeadLetter(
        dead_letter_id=uuid.uuid4(),
        source_topic=source,
        source_partition=0,
        source_offset=7,
        reason="handler_failed",
        problems=(Problem(field="handler", reason="KeyError"),),
        original=b'{"event_id": "x", "n": 1}',
        key=b"case-7",
        failed_in="router",
        attempts=5,
        dead_lettered_at=datetime.now(UTC),
    )
    await publish(settings.kafka_bootstrap, letter)
    chosen = Selection(ids=frozenset({letter.dead_letter_id}))
    before = await end_offsets(settings.kafka_bootstrap, source)

    dry = await redrive(settings, chosen, dry_run=True, again=False)
    assert (dry.matched, dry.redriven) == (1, [str(letter.dead_letter_id)])
    assert await published_since(settings.kafka_bootstrap, source, before) == []

    done = await redrive(settings, chosen, dry_run=False, again=False)
    (record,) = await published_since(settings.kafka_bootstrap, source, before)
    assert (record.key, record.value) == (b"case-7", letter.original)
    assert done.redriven == [str(letter.dead_letter_id)]

    repeated = await redrive(settings, chosen, dry_run=False, again=False)
    assert repeated.redriven == []
    assert repeated.skipped_already_redriven == [str(letter.dead_letter_id)]
    assert len(await published_since(settings.kafka_bootstrap, source, before)) == 1


async def test_a_record_intake_refused_is_opened_and_goes_back_to_its_senders_raw_topic(
    infra: InfraSettings, unique: str
) -> None:
    settings = intake_settings(infra, unique)
    await ensure_topics(settings, (TEST_RAW_TOPIC, topics.DEAD_LETTERS))
    vault = Vault(settings.master_key())
    letter_id = uuid.uuid4()
    original = f'{{"event_type": "complaint", "source_ref": "{unique}"}}'.encode()
    letter = DeadLetter(
        dead_letter_id=letter_id,
        source_topic=TEST_RAW_TOPIC,
        source_partition=1,
        source_offset=3,
        reason="invalid",
        original_sealed=vault.seal(original, bound_to=str(letter_id)),
        key_sealed=vault.seal(b"raw-key", bound_to=str(letter_id)),
        dead_lettered_at=datetime.now(UTC),
    )
    await publish(settings.kafka_bootstrap, letter)
    before = await end_offsets(settings.kafka_bootstrap, TEST_RAW_TOPIC)

    await redrive(settings, Selection(ids=frozenset({letter_id})), dry_run=False, again=False)

    (record,) = [
        record
        for record in await published_since(settings.kafka_bootstrap, TEST_RAW_TOPIC, before)
        if record.value == original
    ]
    assert record.key == b"raw-key"


async def test_a_selection_by_reason_and_topic_leaves_other_dead_letters_alone(
    infra: InfraSettings, unique: str
) -> None:
    settings = intake_settings(infra, unique)
    chosen_topic, other_topic = f"test.redrive.a.{unique}", f"test.redrive.b.{unique}"
    await ensure_topics(settings, (chosen_topic, other_topic, topics.DEAD_LETTERS))
    for topic in (chosen_topic, other_topic):
        await publish(
            settings.kafka_bootstrap,
            DeadLetter(
                dead_letter_id=uuid.uuid4(),
                source_topic=topic,
                source_partition=0,
                source_offset=0,
                reason="handler_failed",
                original=b"{}",
                dead_lettered_at=datetime.now(UTC),
            ),
        )

    summary = await redrive(
        settings,
        Selection(reasons=frozenset({"handler_failed"}), source_topics=frozenset({chosen_topic})),
        dry_run=True,
        again=False,
    )

    assert summary.matched == 1
