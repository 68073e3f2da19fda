"""Rewrite what intake stored before the store adapter (before December 2026), once:

    python -m services.intake.upgrade

- API keys (``intake_api_keys``) and redrive marks (``intake_redrives``): the same values, in
  the adapter's form (services/common/documents.py);
- accepted events (``intake_events``): the same events, fingerprints and sealed values, with a
  published mark for each one Kafka had acknowledged; and each complaint's follow-up code's
  digest goes to qinglian.follow-up-codes.v1, so that the portal knows the codes given before
  it existed (the cases and the replies it reads from their topics' start by itself);
- the collections of the follow-up channel intake kept then (``intake_follow_ups``,
  ``intake_follow_up_codes``, ``intake_cases``, ``intake_wrong_follow_up_codes``) are dropped.

Intake does not start while a document of the old form is left. Running this again changes
nothing.
"""

import asyncio
import sys
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from pydantic import BaseModel
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from schemas import topics
from schemas.follow_up import FollowUpCodeIssued
from services.common.broker import kafka_client_options
from services.common.credentials import Credential
from services.common.documents import MongoDocuments, Records
from services.common.settings import ServiceSettings
from services.common.store import Document, connect, database
from services.intake.settings import IntakeSettings
from services.intake.store import Accepted, IntakeStore, Published, Redriven, SealedCode

OLD_FORM = {"value": {"$exists": False}}
"""A document the adapter did not write: its fields at the top, no ``value``."""
DROPPED = (
    "intake_follow_ups",
    "intake_follow_up_codes",
    "intake_cases",
    "intake_wrong_follow_up_codes",
)
BATCH = 500


async def refuse_old_documents(
    mongo: AsyncMongoClient[Document], settings: ServiceSettings
) -> None:
    """Stop intake's start while documents of the old form are left (it would fail on them)."""
    db = database(mongo, settings)
    for name in ("intake_events", "intake_api_keys", "intake_redrives"):
        if await db[name].find_one(OLD_FORM, {"_id": 1}) is not None:
            raise RuntimeError(
                f"{name} holds documents written before the store adapter: "
                "run `python -m services.intake.upgrade` once, then start intake"
            )


def _key(old: Document) -> Credential:
    return Credential(
        grants={"source_system": old["source_system"], "scopes": list(old["scopes"])},
        label=old.get("label", ""),
        secret_digest=old["secret_digest"],
        created_at=old["created_at"],
        revoked_at=old.get("revoked_at"),
    )


def _redriven(old: Document) -> Redriven:
    return Redriven(at=old["at"], topic=old["topic"])


def _accepted(old: Document) -> Accepted:
    follow_up = old.get("follow_up")
    return Accepted(
        event=old["event"],
        fingerprint=old["fingerprint"],
        claim=old.get("claim", "before the store adapter"),
        follow_up=None
        if follow_up is None
        else SealedCode(digest=follow_up["digest"], sealed=bytes(follow_up["sealed"])),
        contact_sealed=None if old.get("contact_sealed") is None else bytes(old["contact_sealed"]),
    )


async def _rewrite(
    db: AsyncDatabase[Document],
    name: str,
    records: Records[Any],
    convert: Callable[[Document], BaseModel],
) -> list[Document]:
    """Rewrite up to BATCH old documents of ``name`` in the adapter's form; the old ones."""
    old = await db[name].find(OLD_FORM).to_list(BATCH)
    if old:
        await records.put_many({document["_id"]: convert(document) for document in old})
    return old


async def _events(
    db: AsyncDatabase[Document], store: IntakeStore, producer: AIOKafkaProducer
) -> int:
    rewritten = 0
    while old := await db["intake_events"].find(OLD_FORM).to_list(BATCH):
        accepted = {document["_id"]: _accepted(document) for document in old}
        sending = [
            producer.send_and_wait(
                topics.FOLLOW_UP_CODES,
                FollowUpCodeIssued(
                    complaint_event_id=record.event.event_id,
                    code_digest=record.follow_up.digest,
                    received_at=record.event.received_at,
                )
                .model_dump_json()
                .encode(),
                key=record.event.event_id.bytes,
            )
            for record in accepted.values()
            if record.follow_up is not None
        ]
        await asyncio.gather(*sending)  # before the rewrite: an interrupted run sends again
        marks = {d["_id"]: Published(at=d["published_at"]) for d in old if d.get("published_at")}
        await store.published.insert_many(marks)
        await store.accepted.put_many(accepted)
        rewritten += len(old)
    return rewritten


async def upgrade(settings: IntakeSettings) -> dict[str, int]:
    """Rewrite every old document; how many of each kind."""
    mongo = connect(settings)
    db = database(mongo, settings)
    store = IntakeStore.on(MongoDocuments(db), key_cache_seconds=0)
    producer = AIOKafkaProducer(
        **kafka_client_options(settings), acks="all", enable_idempotence=True
    )
    await producer.start()
    counts = {"intake_api_keys": 0, "intake_redrives": 0}
    try:
        for name, records, convert in (
            ("intake_api_keys", store.keys.records, _key),
            ("intake_redrives", store.redrives, _redriven),
        ):
            while old := await _rewrite(db, name, records, convert):
                counts[name] += len(old)
        counts["intake_events"] = await _events(db, store, producer)
        for name in DROPPED:
            await db.drop_collection(name)
    finally:
        await producer.stop()
        await mongo.close()
    return counts


def main() -> int:
    counts = asyncio.run(upgrade(IntakeSettings()))
    for name, count in counts.items():
        print(f"{name}: {count} rewritten", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
