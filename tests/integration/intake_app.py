"""An intake app running in this process against the real broker and store, with API keys."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from schemas import topics
from schemas.catalogue import BY_TYPE
from services.common.credentials import Grants
from services.common.documents import MongoDocuments
from services.common.store import Document, connect, database
from services.intake.auth import (
    ATTACHMENT_READ_SCOPE,
    ATTACHMENT_WRITE_SCOPE,
    FOLLOW_UP_REPLY_SCOPE,
)
from services.intake.crypto import Vault, new_key
from services.intake.main import create_app
from services.intake.settings import IntakeSettings
from services.intake.store import IntakeStore
from tests.conftest import InfraSettings
from tests.integration.in_process import serving

ALL_SCOPES = {*BY_TYPE, FOLLOW_UP_REPLY_SCOPE, ATTACHMENT_WRITE_SCOPE, ATTACHMENT_READ_SCOPE}
TEST_SENDERS_FILE = Path(__file__).with_name("raw_senders.toml")
TEST_SENDER = "webform"
"""The one raw sender of the tests' intake (its Kafka user)…"""
TEST_SOURCE = "portal"
"""… and the source system it sends as."""
TEST_RAW_TOPIC = topics.raw_topic(TEST_SENDER)


@dataclass
class RunningIntake:
    app: FastAPI
    client: httpx.AsyncClient
    settings: IntakeSettings
    vault: Vault
    store: IntakeStore
    db: AsyncDatabase[Document]
    """Intake's database itself, for what a test must see as the store keeps it."""

    async def key_for(self, source_system: str, scopes: set[str] | None = None) -> str:
        """A fresh API key for a source system (all scopes unless given)."""
        return await issue_key(self.store, source_system, scopes)

    async def post(self, path: str, body: Any, *, key: str) -> httpx.Response:
        return await self.client.post(path, json=body, headers={"X-API-Key": key})


async def issue_key(store: IntakeStore, source_system: str, scopes: set[str] | None) -> str:
    """A fresh API key, as the keys command makes one."""
    grants: Grants = {
        "source_system": source_system,
        "scopes": sorted(ALL_SCOPES if scopes is None else scopes),
    }
    _, api_key = await store.keys.issue(grants, label="test", now=datetime.now(UTC))
    return api_key


def intake_settings(infra: InfraSettings, unique: str, **overrides: Any) -> IntakeSettings:
    """Settings for an isolated intake: its own database, consumer group and contact key."""
    values: dict[str, Any] = {
        "kafka_bootstrap": infra.kafka_bootstrap,
        "mongo_url": infra.mongo_url,
        "mongo_db": f"test_{unique}",
        "kafka_group_prefix": f"test-{unique}-",
        "contact_key": new_key(),
        "api_key_cache_seconds": 0,
        "retry_backoff_max_seconds": 0.5,
        "raw_senders": TEST_SENDERS_FILE,
    }
    values.update(overrides)
    return IntakeSettings(http_port=0, **values)


@asynccontextmanager
async def running_intake(settings: IntakeSettings) -> AsyncIterator[RunningIntake]:
    """Start intake (lifespan: topics, indexes, broker and its consumers), yield, stop it."""
    app = create_app(settings)
    mongo = connect(settings)
    db = database(mongo, settings)
    try:
        async with serving(app, "http://intake") as client:
            yield RunningIntake(
                app=app,
                client=client,
                settings=settings,
                vault=Vault(settings.master_key()),
                store=IntakeStore.on(MongoDocuments(db), key_cache_seconds=0),
                db=db,
            )
    finally:
        await mongo.close()
