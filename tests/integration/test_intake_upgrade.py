"""Upgrading a store intake wrote before the store adapter (python -m services.intake.upgrade):
its API keys keep working, its events stay accepted with their follow-up codes and sealed
contacts, and the portal learns the codes given then. Intake does not start before it."""

import hashlib
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from schemas import topics
from schemas.catalogue import ANY_SUBMISSION
from schemas.complaint import ComplaintReceived, ComplaintSubmission
from schemas.follow_up import FollowUpCodeIssued
from services.common.store import Document
from services.intake.crypto import Vault, new_follow_up_code
from services.intake.domain import canonical
from services.intake.upgrade import upgrade
from tests.conftest import InfraSettings
from tests.factories import complaint_payload
from tests.integration.intake_app import intake_settings, running_intake
from tests.integration.kafka_reading import end_offsets, published_since

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


async def store_as_before(db: AsyncDatabase[Document], vault: Vault) -> dict[str, Any]:
    """What intake stored before the adapter: a key, a complaint with a contact, the
    follow-up collections."""
    key_id = secrets.token_hex(6)
    key = f"qlk_{key_id}_{secrets.token_urlsafe(32)}"
    await db["intake_api_keys"].insert_one(
        {
            "_id": key_id,
            "source_system": "portal",
            "scopes": ["complaint"],
            "label": "网上平台",
            "secret_digest": hashlib.sha256(key.encode()).hexdigest(),
            "created_at": NOW,
            "revoked_at": None,
        }
    )
    body = complaint_payload(source_ref=f"OLD-{uuid.uuid4().hex}")
    body["complainant_contact"] = {"phone": "13912345678"}
    submission = ANY_SUBMISSION.validate_python({"event_type": "complaint", **body})
    assert isinstance(submission, ComplaintSubmission)
    event = ComplaintReceived.accept(submission, received_at=NOW, contact_on_file=True)
    event_id, code = str(event.event_id), new_follow_up_code()
    await db["intake_events"].insert_one(
        {
            "_id": event_id,
            "fingerprint": vault.fingerprint(canonical(submission)),
            "received_at": NOW,
            "published_at": NOW,
            "claim": uuid.uuid4().hex,
            "event_type": "complaint",
            "source_system": "portal",
            "event": event.model_dump(mode="json"),
            "follow_up": {
                "digest": hashlib.sha256(code.encode()).hexdigest(),
                "sealed": vault.seal(code.encode(), bound_to=event_id),
            },
            "contact_sealed": vault.seal(b'{"phone": "13912345678"}', bound_to=event_id),
        }
    )
    await db["intake_follow_ups"].insert_one({"_id": event_id, "status": "received"})
    return {"key": key, "body": body, "event_id": event_id, "code": code}


async def test_a_store_from_before_the_adapter_is_upgraded_and_nothing_is_lost(
    infra: InfraSettings, unique: str, store: AsyncDatabase[Document]
) -> None:
    settings = intake_settings(infra, unique)  # ``store`` is the same database: dropped after
    old = await store_as_before(store, Vault(settings.master_key()))

    with pytest.raises(RuntimeError, match=r"python -m services\.intake\.upgrade"):
        async with running_intake(settings):
            pass
    before = await end_offsets(infra.kafka_bootstrap, topics.FOLLOW_UP_CODES)
    counts = await upgrade(settings)
    assert counts == {"intake_api_keys": 1, "intake_redrives": 0, "intake_events": 1}
    assert await upgrade(settings) == dict.fromkeys(counts, 0)  # again: nothing left to do

    issued = [
        FollowUpCodeIssued.model_validate_json(record.value)
        for record in await published_since(infra.kafka_bootstrap, topics.FOLLOW_UP_CODES, before)
    ]
    assert [(str(i.complaint_event_id), i.code_digest) for i in issued] == [
        (old["event_id"], hashlib.sha256(old["code"].encode()).hexdigest())
    ]
    assert "intake_follow_ups" not in await store.list_collection_names()
    async with running_intake(settings) as intake:
        again = await intake.post("/v1/complaints", old["body"], key=old["key"])
        stored = await intake.store.accepted.get(old["event_id"])

    assert again.status_code == 200, again.text
    assert again.json() == {
        "event_id": old["event_id"],
        "status": "duplicate",
        "follow_up_code": old["code"],
    }
    assert stored is not None
    assert stored.contact_sealed is not None
    opened = intake.vault.open(stored.contact_sealed, bound_to=old["event_id"])
    assert b"13912345678" in opened
