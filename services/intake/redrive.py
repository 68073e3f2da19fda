"""Send dead-lettered records back to where they came from, once their cause is fixed.

    python -m services.intake.redrive --reason handler_failed --dry-run
    python -m services.intake.redrive --reason handler_failed --source-topic qinglian.complaints.v1
    python -m services.intake.redrive --id 0b7c…  --id 5e21…
    python -m services.intake.redrive --reason invalid --since 2026-11-20T00:00:00+08:00

A record a service could not handle (``handler_failed``) goes back to its topic as it was, with
its key. A record intake refused (``invalid``, ``not_json``, ``conflict``, ``forbidden``) is
opened with intake's key and goes back to the raw topic it came from (its sender's), to be
judged again. Each dead letter is redriven once; ``--again`` sends already redriven ones too.
Prints a JSON summary; never prints a record's content.

With Kafka's ACLs on (production), it runs as the Kafka user ``redrive``, the only one besides
admin that may write back to every topic: ``docker compose run --rm redrive …``.
"""

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from schemas import topics
from schemas.dead_letter import DeadLetter
from services.common.broker import kafka_client_options
from services.common.documents import MongoDocuments
from services.common.settings import ServiceSettings
from services.common.store import connect, database
from services.intake.crypto import Vault
from services.intake.settings import IntakeSettings
from services.intake.store import IntakeStore, Redriven


@dataclass(frozen=True)
class Selection:
    reasons: frozenset[str] = frozenset()
    source_topics: frozenset[str] = frozenset()
    ids: frozenset[uuid.UUID] = frozenset()
    since: datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        return (
            (not self.reasons or letter.reason in self.reasons)
            and (not self.source_topics or letter.source_topic in self.source_topics)
            and (not self.ids or letter.dead_letter_id in self.ids)
            and (self.since is None or letter.dead_lettered_at >= self.since)
        )


@dataclass(frozen=True)
class Redrive:
    """Where a dead letter goes back to, and what is sent."""

    topic: str
    key: bytes | None
    value: bytes


def redrive_of(letter: DeadLetter, vault: Vault) -> Redrive:
    """The record to send back for ``letter``. Pure but for opening sealed bytes."""
    if letter.original is not None:
        return Redrive(topic=letter.source_topic, key=letter.key, value=letter.original)
    bound_to = str(letter.dead_letter_id)
    if letter.original_sealed is None:
        raise ValueError(f"dead letter {letter.dead_letter_id} keeps no original")
    return Redrive(
        topic=letter.source_topic,
        key=None if letter.key_sealed is None else vault.open(letter.key_sealed, bound_to=bound_to),
        value=vault.open(letter.original_sealed, bound_to=bound_to),
    )


@dataclass
class Summary:
    matched: int = 0
    redriven: list[str] = field(default_factory=list)
    skipped_already_redriven: list[str] = field(default_factory=list)
    dry_run: bool = False


async def _dead_letters(settings: ServiceSettings) -> list[DeadLetter]:
    """Every dead letter on the topic up to its current end."""
    admin = AIOKafkaAdminClient(**kafka_client_options(settings))
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topics.DEAD_LETTERS])
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topics.DEAD_LETTERS, partition["partition"])
        for partition in description["partitions"]
    ]
    consumer = AIOKafkaConsumer(**kafka_client_options(settings), enable_auto_commit=False)
    await consumer.start()
    letters = []
    try:
        ends = await consumer.end_offsets(partitions)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        pending = {tp for tp in partitions if ends[tp] > 0}
        while pending:
            for tp, records in (await consumer.getmany(*pending, timeout_ms=1000)).items():
                for record in records:
                    if record.offset < ends[tp]:
                        letters.append(DeadLetter.model_validate_json(record.value or b""))
                    if record.offset + 1 >= ends[tp]:
                        pending.discard(tp)
    finally:
        await consumer.stop()
    return letters


async def redrive(
    settings: IntakeSettings, selection: Selection, *, dry_run: bool, again: bool
) -> Summary:
    vault = Vault(settings.master_key())
    summary = Summary(dry_run=dry_run)
    letters = await _dead_letters(settings)
    chosen = [letter for letter in letters if selection.matches(letter)]
    summary.matched = len(chosen)
    mongo = connect(settings)
    redrives = IntakeStore.on(
        MongoDocuments(database(mongo, settings)), key_cache_seconds=0
    ).redrives
    producer = AIOKafkaProducer(
        **kafka_client_options(settings), acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        for letter in chosen:
            letter_id = str(letter.dead_letter_id)
            if not again and await redrives.get(letter_id) is not None:
                summary.skipped_already_redriven.append(letter_id)
                continue
            record = redrive_of(letter, vault)
            if dry_run:
                summary.redriven.append(letter_id)
                continue
            await producer.send_and_wait(record.topic, record.value, key=record.key)
            await redrives.put(letter_id, Redriven(at=datetime.now(UTC), topic=record.topic))
            summary.redriven.append(letter_id)
    finally:
        await producer.stop()
        await mongo.close()
    return summary


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.intake.redrive",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--reason", action="append", default=[], help="repeatable")
    parser.add_argument("--source-topic", action="append", default=[], help="repeatable")
    parser.add_argument("--id", action="append", default=[], type=uuid.UUID, help="repeatable")
    parser.add_argument("--since", type=datetime.fromisoformat, help="dead-lettered from")
    parser.add_argument("--dry-run", action="store_true", help="say what would be sent")
    parser.add_argument("--again", action="store_true", help="also those redriven before")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    selection = Selection(
        reasons=frozenset(arguments.reason),
        source_topics=frozenset(arguments.source_topic),
        ids=frozenset(arguments.id),
        since=arguments.since,
    )
    summary = asyncio.run(
        redrive(IntakeSettings(), selection, dry_run=arguments.dry_run, again=arguments.again)
    )
    report: dict[str, Any] = {
        "matched": summary.matched,
        "redriven": summary.redriven,
        "skipped_already_redriven": summary.skipped_already_redriven,
        "dry_run": summary.dry_run,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
