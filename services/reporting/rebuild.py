"""Rebuild the report facts from the start of the topics into a fresh database.

    python -m services.reporting.rebuild --into qinglian_rebuilt

Reads every topic the reports are built from, from its first record up to the end it had when
the rebuild started, through the same code the live service runs (``Ingest``) on a store in
memory, writing each document once at the end, then prints a JSON summary.
Point reporting at the new database (QINGLIAN_MONGO_DB) once it is done; the database must be
new or empty. Records that cannot be read are listed and make the rebuild fail.

What the topics do not hold is copied from the database reporting uses now (QINGLIAN_MONGO_DB):
the report tokens, the departments' confirmations and the log of case reads. Copied after the
replay, so only what changes between the copy and the switch is left behind. Documents kept
in the layout reporting used before the store adapter are converted.
"""

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from pydantic import BaseModel, TypeAdapter, ValidationError
from pymongo.asynchronous.database import AsyncDatabase

from schemas import topics
from schemas.case import CaseUpdated
from schemas.catalogue import AnyEvent
from schemas.dead_letter import DeadLetter
from schemas.decision import Decision
from services.common.broker import kafka_client_options
from services.common.consuming import Received
from services.common.credentials import Credential
from services.common.departments import DepartmentCatalogue
from services.common.documents import MemoryDocuments, MongoDocuments, Records
from services.common.store import Document, connect, database
from services.reporting.access import report_tokens
from services.reporting.ingest import REPORT_TOPICS, Ingest
from services.reporting.monthly import Confirmation
from services.reporting.settings import ReportingSettings
from services.reporting.store import ACCESS_LOG, CONFIRMATIONS, TOKENS, CaseAccess, ReportStore

_ANY_EVENT: TypeAdapter[Any] = TypeAdapter(AnyEvent)
BATCH = 5000
"""Records of one partition applied at once: a rebuild holds its store in memory, where larger
batches cost less per record."""
Apply = Callable[[Ingest, list[Received[Any]]], Awaitable[object]]
APPLY: Mapping[str, tuple[Callable[[bytes], Any], Apply]] = {
    topics.CASES: (CaseUpdated.model_validate_json, Ingest.cases),
    topics.DECISIONS: (Decision.model_validate_json, Ingest.decisions),
    topics.DEAD_LETTERS: (DeadLetter.model_validate_json, Ingest.dead_letters),
}
"""How each topic's records are read and applied, as the live service's handlers do; the
fact topics': ``_ANY_EVENT`` and ``Ingest.facts``."""


async def apply(
    ingest: Ingest, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
) -> list[str]:
    """Apply records of one partition as one batch; the ones that could not be read."""
    parse, method = APPLY.get(tp.topic, (_ANY_EVENT.validate_json, Ingest.facts))
    batch: list[Received[Any]] = []
    unreadable = []
    for record in records:
        try:
            value = parse(record.value or b"")
        except ValidationError as error:
            unreadable.append(f"{tp.topic}[{tp.partition}]@{record.offset}: {error}")
            continue
        batch.append(Received(value, record.topic, record.partition, record.offset, record.key))
    if batch:
        await method(ingest, batch)
    return unreadable


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


def _former(name: str, document: Document) -> BaseModel:
    """A kept document as reporting stored it before the store adapter: converted once, by the
    first rebuild after the upgrade."""
    fields = {key: value for key, value in document.items() if key != "_id"}
    if name == TOKENS:
        return Credential(
            grants={"role": fields["role"], "department": fields.get("department")},
            label=fields.get("label", ""),
            secret_digest=fields["secret_digest"],
            created_at=fields["created_at"],
            revoked_at=fields.get("revoked_at"),
        )
    return (Confirmation if name == CONFIRMATIONS else CaseAccess).model_validate(fields)


async def _copy_kept(source: AsyncDatabase[Document], target: MongoDocuments) -> int:
    """What the topics cannot give back, from the database reporting uses now."""
    store = ReportStore(target)
    kept: dict[str, tuple[Records[Any], type[BaseModel]]] = {
        TOKENS: (report_tokens(target, cache_seconds=0).records, Credential),
        CONFIRMATIONS: (store.confirmations, Confirmation),
        ACCESS_LOG: (store.accesses, CaseAccess),
    }
    copied = 0
    for name, (records, model) in kept.items():
        # Read as stored, to convert the former layout: the adapter keeps a value under "value".
        values = {
            document["_id"]: model.model_validate(document["value"])
            if "value" in document
            else _former(name, document)
            async for document in source[name].find({})
        }
        await records.put_many(values)
        copied += len(values)
    return copied


async def _replay(
    consumer: AIOKafkaConsumer, ingest: Ingest, partitions: list[TopicPartition], started: float
) -> tuple[int, list[str]]:
    """Every record of ``partitions`` up to the end each had when the rebuild started,
    applied a fetched batch at a time; how many, and those that could not be read."""
    ends = await consumer.end_offsets(partitions)
    pending = {tp for tp in partitions if ends[tp] > 0}
    progress = Progress(total=sum(ends.values()), started=started)
    consumer.assign(partitions)
    if partitions:
        await consumer.seek_to_beginning(*partitions)
    applied, unreadable = 0, []
    while pending:
        fetched = await consumer.getmany(*pending, timeout_ms=1000, max_records=BATCH)
        for tp, records in fetched.items():
            wanted = [record for record in records if record.offset < ends[tp]]
            if not wanted or wanted[-1].offset + 1 >= ends[tp]:
                pending.discard(tp)
            failed = await apply(ingest, tp, wanted)
            applied += len(wanted) - len(failed)
            unreadable += failed
        progress.report(applied + len(unreadable))
    return applied, unreadable


async def rebuild(settings: ReportingSettings, *, into: str) -> dict[str, Any]:
    started = time.monotonic()
    mongo = connect(settings)
    if await mongo[into].list_collection_names():
        await mongo.close()
        raise SystemExit(f"database {into!r} is not empty; rebuild into a new one")
    folded = ReportStore(MemoryDocuments())
    ingest = Ingest(folded, departments=DepartmentCatalogue.from_file(settings.departments))
    consumer = AIOKafkaConsumer(
        **kafka_client_options(settings), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        applied, unreadable = await _replay(consumer, ingest, await _partitions(settings), started)
        target = MongoDocuments(mongo[into])
        documents = await folded.copy_into(ReportStore(target))
        copied = await _copy_kept(database(mongo, settings), target)
        await target.prepare()
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
