"""Rebuild the report facts from the start of the topics into a fresh database.

    python -m services.reporting.rebuild --into qinglian_rebuilt

Reads every topic the reports are built from, from its first record up to the end it had when
the rebuild started, through the same code the live service runs (``Ingest``), folding the facts
in memory (``services.reporting.fold``) and inserting each document once at the end, then
prints a JSON summary.
Point reporting at the new database (QINGLIAN_MONGO_DB) once it is done; the database must be
new or empty. Records that cannot be read are listed and make the rebuild fail.

What the topics do not hold is copied from the database reporting uses now (QINGLIAN_MONGO_DB):
the report tokens, the departments' confirmations and the log of case reads. Copied after the
replay, so only what changes between the copy and the switch is left behind.
"""

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from prometheus_client import CollectorRegistry
from pydantic import TypeAdapter, ValidationError
from pymongo.asynchronous.database import AsyncDatabase

from schemas import topics
from schemas.case import CaseUpdated
from schemas.catalogue import AnyEvent
from schemas.dead_letter import DeadLetter
from schemas.decision import Decision
from services.common.broker import kafka_client_options
from services.common.departments import DepartmentCatalogue
from services.common.store import Document, connect, database
from services.reporting.facts import report_month
from services.reporting.fold import FoldedReports
from services.reporting.ingest import REPORT_TOPICS, Ingest
from services.reporting.repository import ReportRepository
from services.reporting.settings import ReportingSettings

_ANY_EVENT: TypeAdapter[Any] = TypeAdapter(AnyEvent)

KEPT = ("reporting_tokens", "reporting_confirmations", "reporting_access_log")
"""Collections the topics cannot give back: copied from the current database."""


async def apply(ingest: Ingest, record: ConsumerRecord[bytes, bytes]) -> None:
    """Apply one record as the live service's handlers do."""
    position = (record.topic, record.partition, record.offset)
    value = record.value or b""
    if record.topic == topics.CASES:
        await ingest.case(CaseUpdated.model_validate_json(value))
    elif record.topic == topics.DECISIONS:
        await ingest.decision(Decision.model_validate_json(value))
    elif record.topic == topics.DEAD_LETTERS:
        letter = DeadLetter.model_validate_json(value)
        await ingest.dead_letter(report_month(letter.dead_lettered_at), position)
    else:
        await ingest.fact(_ANY_EVENT.validate_json(value), position)


@dataclass
class Progress:
    """A line on stderr every ``every`` seconds: a rebuild of millions of records takes minutes,
    and its database stays empty until the end."""

    total: int
    started: float
    every: float = 10.0
    last: float = field(default_factory=time.monotonic)

    def report(self, read: int) -> None:
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            print(
                f"rebuild: {read} of {self.total} records read in {now - self.started:.0f} s",
                file=sys.stderr,
                flush=True,
            )


async def _partitions(settings: ReportingSettings) -> list[TopicPartition]:
    """Every partition of the report topics (a topic not created yet has none)."""
    admin = AIOKafkaAdminClient(**kafka_client_options(settings))
    await admin.start()
    try:
        described = await admin.describe_topics(list(REPORT_TOPICS))
    finally:
        await admin.close()
    return [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in sorted(topic["partitions"], key=lambda p: int(p["partition"]))
    ]


async def _copy_kept(source: AsyncDatabase[Document], target: AsyncDatabase[Document]) -> int:
    copied = 0
    for name in KEPT:
        async for document in source[name].find({}):
            # One by one: FerretDB stalls on large bulk writes.
            await target[name].replace_one({"_id": document["_id"]}, document, upsert=True)
            copied += 1
    return copied


async def rebuild(settings: ReportingSettings, *, into: str) -> dict[str, Any]:
    started = time.monotonic()
    mongo = connect(settings)
    db = mongo[into]
    if await db.list_collection_names():
        await mongo.close()
        raise SystemExit(f"database {into!r} is not empty; rebuild into a new one")
    folded = FoldedReports()
    departments = DepartmentCatalogue.from_file(settings.departments)
    ingest = Ingest(folded, CollectorRegistry(), departments=departments)
    consumer = AIOKafkaConsumer(
        **kafka_client_options(settings),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    applied, unreadable, documents, copied = 0, [], 0, 0
    try:
        partitions = await _partitions(settings)
        ends = await consumer.end_offsets(partitions)
        pending = {tp for tp in partitions if ends[tp] > 0}
        progress = Progress(total=sum(ends.values()), started=started)
        consumer.assign(partitions)
        if partitions:
            await consumer.seek_to_beginning(*partitions)
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        pending.discard(tp)
                        break
                    try:
                        await apply(ingest, record)
                        applied += 1
                    except ValidationError as error:
                        unreadable.append(f"{tp.topic}[{tp.partition}]@{record.offset}: {error}")
                    if record.offset + 1 >= ends[tp]:
                        pending.discard(tp)
            progress.report(applied + len(unreadable))
        documents = await folded.write(ReportRepository(db))
        copied = await _copy_kept(database(mongo, settings), db)
    finally:
        await consumer.stop()
        await mongo.close()
    return {
        "database": into,
        "records": applied,
        "unreadable": unreadable,
        "documents": documents,
        "copied": copied,
        "seconds": round(time.monotonic() - started, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.reporting.rebuild", description=__doc__
    )
    parser.add_argument("--into", required=True, help="the new database to rebuild into")
    arguments = parser.parse_args()
    summary = asyncio.run(rebuild(ReportingSettings(), into=arguments.into))
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 1 if summary["unreadable"] else 0


if __name__ == "__main__":
    sys.exit(main())
