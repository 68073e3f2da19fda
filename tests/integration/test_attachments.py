"""A reporter's photo and PDF from the portal's form to the conduct office's case page, through
the real intake on the real broker and store: the office downloads the photo byte for byte
as the portal cleaned it (no EXIF) and the PDF as sent; nobody else gets them (not signed in,
another department's head, the portal's own key, no key); the store holds no plaintext of
either (a marker inside the PDF is found in no stored document).

The portal and the desk run in this process on the in-memory store (what they keep is not
at stake here) and reach intake's app over ASGI with the keys intake issued them."""

import base64
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from pymongo import AsyncMongoClient

from schemas.base import derive_event_id
from schemas.complaint import ComplaintReceived
from services.common.store import Document
from services.desk import signin
from services.portal.attachments import clean
from tests.conftest import InfraSettings
from tests.desk import running_desk
from tests.factories import routed_case
from tests.integration.intake_app import RunningIntake, intake_settings, running_intake
from tests.portal import hidden, running_portal
from tests.unit.test_attachments import MARKER, pdf, photo

pytestmark = pytest.mark.infra

NOW = datetime.now(UTC)
COMPLAINT = {
    "category": "kickback",
    "accused_department": "cardiology",
    "description": "医生收取医药代表回扣，照片和收据见附件。",
    "anonymous": "yes",
}


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signin, "HASHER", PasswordHasher(time_cost=1, memory_cost=64))


@pytest.fixture
async def intake(infra: InfraSettings, unique: str) -> AsyncIterator[RunningIntake]:
    settings = intake_settings(infra, unique)
    async with running_intake(settings) as running:
        yield running
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(infra.mongo_url)
    await mongo.drop_database(settings.mongo_db)
    await mongo.close()


async def _filed(intake: RunningIntake, tmp_path: Path, key: str) -> ComplaintReceived:
    """A complaint with a photo and a PDF, filed on the portal's form as a phone sends it."""
    transport = httpx.ASGITransport(app=intake.app)
    async with (
        running_portal(tmp_path, NOW, intake_key=key, intake_transport=transport) as portal,
        portal.browser() as phone,
    ):
        form = await phone.get("/")
        tokens = {"csrf_token": hidden(form.text), "form_token": hidden(form.text, "form_token")}
        files = [
            ("attachments", ("IMG_2041.JPG", photo(), "image/jpeg")),
            ("attachments", ("收据.pdf", pdf(), "application/pdf")),
        ]
        filed = await phone.post("/", data=tokens | COMPLAINT, files=files)
    assert filed.status_code == 200, filed.text
    assert "已收到附件 2 个" in filed.text
    event_id = derive_event_id("portal", f"portal-{tokens['form_token']}")
    accepted = await intake.store.accepted.get(str(event_id))
    assert accepted is not None
    assert isinstance(accepted.event, ComplaintReceived)
    return accepted.event


async def test_the_office_downloads_a_reporters_files_and_nobody_else_can(
    intake: RunningIntake, tmp_path: Path
) -> None:
    portal_key = await intake.key_for("portal", {"complaint", "attachment_write"})
    desk_key = await intake.key_for("desk", {"follow_up_reply", "attachment_read"})
    complaint = await _filed(intake, tmp_path, portal_key)
    case = routed_case(complaint)
    transport = httpx.ASGITransport(app=intake.app)
    async with running_desk(tmp_path, NOW, intake_key=desk_key, intake_transport=transport) as desk:
        await desk.publish(cases=[case], complaints=[complaint])
        office = await desk.signed_in("zheng", "conduct_office", staff_id="S0106")
        page = await office.get(f"/cases/{case.case_id}")
        prefix = f'href="/cases/{case.case_id}/attachments/'
        links = [part.split('"')[0] for part in page.text.split(prefix)[1:]]
        assert len(links) == 2, page.text
        photo_link, pdf_link = (f"/cases/{case.case_id}/attachments/{i}" for i in links)

        got_photo, got_pdf = await office.get(photo_link), await office.get(pdf_link)
        assert got_photo.status_code == 200
        assert got_photo.content == clean(photo()).content, "the photo as the portal cleaned it"
        assert MARKER.encode() not in got_photo.content
        assert got_photo.headers["content-type"] == "image/jpeg"
        assert got_photo.headers["content-disposition"] == 'attachment; filename="attachment-1.jpg"'
        assert got_photo.headers["x-content-type-options"] == "nosniff"
        assert got_pdf.content == pdf()
        assert got_pdf.headers["content-type"] == "application/pdf"

        assert (await desk.http.get(photo_link)).headers["location"] == "/login"
        head = await desk.signed_in(
            "nursing-head", "department_head", department="nursing", staff_id="S0501"
        )
        assert (await head.get(photo_link)).status_code == 404

    direct = f"/v1/attachments/{links[0]}"
    assert (await intake.client.get(direct)).status_code == 401
    refused = await intake.client.get(direct, headers={"X-API-Key": portal_key})
    assert refused.status_code == 403
    listing = {"complaint_event_id": str(complaint.event_id)}
    refused = await intake.client.get(
        "/v1/attachments", params=listing, headers={"X-API-Key": portal_key}
    )
    assert refused.status_code == 403
    await _nothing_stored_in_plaintext(intake)


async def _nothing_stored_in_plaintext(intake: RunningIntake) -> None:
    """Every document intake keeps of the complaint and its files, as the store holds them."""
    stored, chunks = "", 0
    for name in ("intake_attachments", "intake_attachment_chunks", "intake_events"):
        async for document in intake.db[name].find({}):
            stored += json.dumps(document, default=str)
            chunks += name == "intake_attachment_chunks"
    assert chunks == 2, "one sealed chunk per file: the check reads what holds them"
    for plain in (MARKER, base64.b64encode(pdf()).decode()[:24], "IMG_2041", "收据"):
        assert plain not in stored
    assert base64.b64encode(clean(photo()).content[:60]).decode() not in stored


async def test_intake_takes_files_only_of_its_complaints_by_content_and_within_limits(
    intake: RunningIntake,
) -> None:
    key = await intake.key_for("portal", {"complaint", "attachment_write"})
    headers = {"X-API-Key": key}
    filed = await intake.post(
        "/v1/complaints",
        {
            **COMPLAINT,
            "source_system": "portal",
            "source_ref": "ATT-1",
            "occurred_at": "2026-11-20T09:30:00+08:00",
            "channel": "portal",
            "anonymous": True,
        },
        key=key,
    )
    assert filed.status_code == 202, filed.text
    complaint = filed.json()["event_id"]

    async def send(content: bytes, slot: int = 1, on: str = complaint) -> httpx.Response:
        params = {"complaint_event_id": on, "slot": str(slot)}
        return await intake.client.post(
            "/v1/attachments", params=params, content=content, headers=headers
        )

    assert (await send(pdf())).status_code == 201
    assert (await send(pdf())).status_code == 200  # the same file again: a duplicate
    assert (await send(pdf("another"))).status_code == 409
    wrong_type = await send(b"<html><body>a page named photo.jpg</body></html>", slot=2)
    assert wrong_type.status_code == 415
    assert wrong_type.json()["detail"][0]["field"] == "body"
    assert (await send(pdf(), slot=6)).status_code == 422
    assert (await send(pdf(), on=str(uuid.uuid4()))).status_code == 404
    too_big = await send(pdf() + b" " * (10 * 1024 * 1024), slot=3)
    assert too_big.status_code == 413
    no_scope = await intake.key_for("his", {"complaint"})
    refused = await intake.client.post(
        "/v1/attachments",
        params={"complaint_event_id": complaint, "slot": "4"},
        content=pdf(),
        headers={"X-API-Key": no_scope},
    )
    assert refused.status_code == 403
