"""Using the portal as a reporter and a patient do, for the tests of services/portal: its pages
on the in-memory store, a recording stand-in for intake that answers as intake does (202 with a
follow-up code for a complaint, the same code again for a repeated source_ref), and a recording
Kafka."""

import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

from schemas.follow_up import FollowUpCodeIssued
from services.common.documents import MemoryDocuments
from services.intake.crypto import new_follow_up_code
from services.portal.main import create_app
from services.portal.settings import PortalSettings
from services.portal.web import Portal

INTAKE_KEY = "qlk_portal_key"
QR_KEY = "q" * 40
HIDDEN = re.compile(r'name="(csrf_token|form_token|code)" value="([^"]*)"')


def hidden(page: str, name: str = "csrf_token") -> str:
    """The first hidden field of that name in an HTML page."""
    for found, value in HIDDEN.findall(page):
        if found == name:
            return str(value)
    raise AssertionError(f"no {name} in the page")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Intake:
    """Records what the portal sends; answers as intake does."""

    sent: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)
    codes: dict[str, str] = field(default_factory=dict)
    """source_ref → the follow-up code given with it."""
    down: bool = False
    files: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    """The files sent (``/v1/attachments``): the query (complaint, addition, slot), the body."""
    events: dict[str, str] = field(default_factory=dict)
    """source_ref → the event id given with it."""
    files_down: bool = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            return httpx.Response(503, json={"detail": "unavailable"})
        if request.url.path == "/v1/attachments":
            return self._file(request)
        body = json.loads(request.content)
        self.sent.append((request.url.path, body, request.headers.get("x-api-key")))
        ref = body["source_ref"]
        repeated = ref in self.codes
        code = self.codes.setdefault(ref, new_follow_up_code())
        event_id = self.events.setdefault(ref, str(uuid.uuid4()))
        answer = {"event_id": event_id, "status": "accepted"}
        if request.url.path == "/v1/complaints":
            answer["follow_up_code"] = code
        return httpx.Response(200 if repeated else 202, json=answer)

    def _file(self, request: httpx.Request) -> httpx.Response:
        if self.files_down:
            return httpx.Response(503, json={"detail": "unavailable"})
        self.files.append((dict(request.url.params), request.content))
        return httpx.Response(201, json={"attachment_id": "0" * 32})


@dataclass
class Kafka:
    sent: list[tuple[str, bytes, BaseModel]] = field(default_factory=list)
    down: bool = False

    async def publish(self, message: BaseModel, topic: str, key: bytes) -> None:
        self.sent.append((topic, key, message))

    async def reachable(self) -> bool:
        return not self.down


@dataclass
class Running:
    app: Any
    portal: Portal
    intake: Intake
    kafka: Kafka
    clock: Clock

    def browser(self, address: str = "203.0.113.7") -> httpx.AsyncClient:
        """A browser of its own (its own cookies), connecting from ``address``."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://portal.test", timeout=10)

    async def learn(self, code: str, complaint_event_id: uuid.UUID) -> None:
        """The portal learns a code as intake publishes it (its digest)."""
        await self.portal.follow_ups.learn_codes(
            [
                FollowUpCodeIssued(
                    complaint_event_id=complaint_event_id,
                    code_digest=hashlib.sha256(code.encode()).hexdigest(),
                    received_at=self.clock(),
                )
            ]
        )


async def post_form(
    browser: httpx.AsyncClient, page_path: str, fields: dict[str, str], action: str | None = None
) -> httpx.Response:
    """Open a page and send its form as a browser does (its CSRF and form tokens)."""
    opened = await browser.get(page_path)
    tokens = {"csrf_token": hidden(opened.text)}
    if 'name="form_token"' in opened.text:
        tokens["form_token"] = hidden(opened.text, "form_token")
    return await browser.post(action or page_path, data=tokens | fields)


@asynccontextmanager
async def running_portal(
    tmp_path: Path,
    now: datetime,
    *,
    intake_key: str = INTAKE_KEY,
    intake_transport: httpx.AsyncBaseTransport | None = None,
    **settings: Any,
) -> AsyncIterator[Running]:
    """The portal app on the in-memory store, with a recording intake (or the intake that
    ``intake_transport`` reaches) and Kafka."""
    (tmp_path / "intake_key").write_text(intake_key + "\n")
    (tmp_path / "qr_key").write_text(QR_KEY)
    portal_settings = PortalSettings(
        portal_key="k" * 40,
        portal_qr_key_file=tmp_path / "qr_key",
        intake_api_key_file=tmp_path / "intake_key",
        kafka_bootstrap="127.0.0.1:9",
        mongo_url="mongodb://127.0.0.1:9/",
        **settings,
    )
    clock, intake, kafka = Clock(now), Intake(), Kafka()
    app = create_app(
        portal_settings,
        clock=clock,
        documents=MemoryDocuments(),
        intake_transport=intake_transport or httpx.MockTransport(intake.handle),
    )
    portal: Portal = app.state.portal
    portal.follow_ups.publish = kafka.publish
    portal.follow_ups.kafka_reachable = kafka.reachable
    yield Running(app, portal, intake, kafka, clock)
