"""A portal app running in this process against the real broker and store, and the follow-up
codes it learns, as intake publishes them."""

import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from schemas import topics
from schemas.follow_up import FollowUpCodeIssued
from services.common.documents import MongoDocuments
from services.common.store import Document, connect, database
from services.intake.crypto import new_follow_up_code
from services.portal.main import create_app
from services.portal.settings import PortalSettings
from services.portal.store import PortalStore
from tests.conftest import InfraSettings
from tests.integration.in_process import serving
from tests.waiting import eventually


@dataclass
class RunningPortal:
    app: FastAPI
    client: httpx.AsyncClient
    settings: PortalSettings
    store: PortalStore
    db: AsyncDatabase[Document]
    """The portal's database itself, for what a test must see as the store keeps it."""

    def client_at(self, address: str) -> httpx.AsyncClient:
        """A client of this portal that connects from ``address``."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://portal")

    async def learns(self, code: str) -> None:
        """Wait until the portal knows ``code`` (asking its store: a wrong code asked over
        HTTP would count against the client)."""

        async def known() -> bool:
            return await self.store.codes.get(hashlib.sha256(code.encode()).hexdigest()) is not None

        await eventually(known, within=30, what="the portal to learn the follow-up code")


def portal_settings(infra: InfraSettings, unique: str, **overrides: Any) -> PortalSettings:
    """Settings for an isolated portal: its own database, consumer groups and key."""
    values: dict[str, Any] = {
        "kafka_bootstrap": infra.kafka_bootstrap,
        "mongo_url": infra.mongo_url,
        "mongo_db": f"test_portal_{unique}",
        "kafka_group_prefix": f"test-{unique}-",
        "portal_key": uuid.uuid4().hex,
        "retry_backoff_max_seconds": 0.5,
    }
    values.update(overrides)
    return PortalSettings(http_port=0, **values)


@asynccontextmanager
async def running_portal(settings: PortalSettings) -> AsyncIterator[RunningPortal]:
    """Start the portal (lifespan: topics, indexes, broker and its consumers), yield, stop it."""
    app = create_app(settings)
    mongo = connect(settings)
    db = database(mongo, settings)
    try:
        async with serving(app, "http://portal") as client:
            yield RunningPortal(app, client, settings, PortalStore(MongoDocuments(db)), db)
    finally:
        await mongo.close()


async def issued_code(bootstrap: str) -> tuple[uuid.UUID, str]:
    """A complaint's event id and a fresh follow-up code, published as intake publishes it
    (its digest only)."""
    event_id, code = uuid.uuid4(), new_follow_up_code()
    issued = FollowUpCodeIssued(
        complaint_event_id=event_id,
        code_digest=hashlib.sha256(code.encode()).hexdigest(),
        received_at=datetime.now(UTC),
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topics.FOLLOW_UP_CODES, issued.model_dump_json().encode(), key=event_id.bytes
        )
    finally:
        await producer.stop()
    return event_id, code
