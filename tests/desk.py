"""Using the desk as a person does, for the tests of services/desk: signing in through its
forms (CSRF tokens read from the pages), and cases as the router makes them."""

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from schemas.attachment import AttachmentInfo
from schemas.base import derive_event_id
from schemas.case import CaseUpdated
from schemas.complaint import ComplaintReceived
from schemas.decision import Decision
from services.common.documents import MemoryDocuments
from services.common.roles import Role
from services.desk.main import create_app
from services.desk.readmodel import ReadModel
from services.desk.settings import DeskSettings
from services.desk.web import Desk
from tests.factories import complaint_event, routed_case

PASSWORD = "correct horse battery"  # noqa: S105 (the test people's chosen password)
READER_KEY = "reader-key-for-reporting"

HIDDEN = re.compile(r'name="(csrf_token|form_token)" value="([^"]+)"')


def hidden(page: str, name: str = "csrf_token") -> str:
    """The first hidden field of that name in an HTML page."""
    for found, value in HIDDEN.findall(page):
        if found == name:
            return str(value)
    raise AssertionError(f"no {name} in the page")


def form_token(page: str, form: str) -> str:
    """The idempotency token of one action form on a case page (``form-<kind>``)."""
    start = page.index(f'id="form-{form}"')
    return hidden(page[start:], "form_token")


async def sign_in(http: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    """Post the sign-in form as a browser does (its CSRF token from the page and cookie)."""
    login = await http.get("/login")
    return await http.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": hidden(login.text)},
    )


async def sign_in_anew(
    http: httpx.AsyncClient, username: str, one_time: str, chosen: str
) -> httpx.Response:
    """First sign-in with a one-time password, then choosing one's own; the list's page."""
    answer = await sign_in(http, username, one_time)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/password"
    form = await http.get("/password")
    chosen_answer = await http.post(
        "/password",
        data={"password": chosen, "repeated": chosen, "csrf_token": hidden(form.text)},
    )
    assert chosen_answer.status_code == 303, chosen_answer.text
    return await http.get("/cases")


def complaint_and_case(
    ref: str, *, received_at: datetime, **complaint: object
) -> tuple[ComplaintReceived, CaseUpdated]:
    event = complaint_event(received_at=received_at, source_ref=ref, **complaint)
    return event, routed_case(event)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Intake:
    """Records what the desk sends; answers as intake does."""

    sent: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)
    down: bool = False
    files: dict[str, tuple[AttachmentInfo, bytes]] = field(default_factory=dict)
    """The reporters' files intake keeps, by attachment id."""

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            return httpx.Response(503, json={"detail": "unavailable"})
        if request.method == "GET" and request.url.path.startswith("/v1/attachments"):
            return self._file(request)
        body = json.loads(request.content)
        key = request.headers.get("x-api-key")
        earlier = [
            sent for sent in self.sent if sent[1].get("source_ref") == body.get("source_ref")
        ]
        self.sent.append((request.url.path, body, key))
        if "source_ref" not in body:
            return httpx.Response(202, json={"status": "sent"})
        event_id = derive_event_id(body["source_system"], body["source_ref"])
        status = 200 if earlier and "source_ref" in body else 202
        return httpx.Response(status, json={"event_id": str(event_id), "status": "accepted"})

    def _file(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/attachments":
            asked = set(request.url.params.get_list("complaint_event_id"))
            listed = [
                info.model_dump(mode="json")
                for info, _ in self.files.values()
                if str(info.complaint_event_id) in asked
            ]
            return httpx.Response(200, json={"attachments": listed})
        info, content = self.files[request.url.path.rsplit("/", 1)[-1]]
        headers = {
            "Content-Type": info.content_type.value,
            "Content-Disposition": f'attachment; filename="attachment-{info.slot}.jpg"',
        }
        return httpx.Response(200, content=content, headers=headers)


@dataclass
class Running:
    http: httpx.AsyncClient
    desk: Desk
    read_model: ReadModel
    intake: Intake
    clock: Clock

    async def account(self, username: str, role: str, **options: Any) -> str:
        """A local account; its one-time password."""
        return await self.desk.accounts.create(
            username,
            role=Role(role),
            display_name=options.pop("name", username),
            department=options.get("department"),
            staff_id=options.get("staff_id"),
            now=self.clock(),
        )

    async def signed_in(self, username: str, role: str, **options: Any) -> httpx.AsyncClient:
        one_time = await self.account(username, role, **options)
        http = client(self.http._transport)
        page = await sign_in_anew(http, username, one_time, PASSWORD)
        assert page.status_code == 200, page.text
        return http

    async def publish(
        self,
        *,
        cases: list[CaseUpdated] = (),  # type: ignore[assignment]
        complaints: list[ComplaintReceived] = (),  # type: ignore[assignment]
        decisions: list[Decision] = (),  # type: ignore[assignment]
    ) -> None:
        await self.read_model.complaints(complaints)
        await self.read_model.cases(cases)
        await self.read_model.decisions(decisions)


def client(transport: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, base_url="http://desk.test", timeout=10)


@asynccontextmanager
async def running_desk(
    tmp_path: Path,
    now: datetime,
    *,
    intake_key: str = "qlk_desk_key",
    intake_transport: httpx.AsyncBaseTransport | None = None,
    **settings: Any,
) -> AsyncIterator[Running]:
    """The desk app on the in-memory store, with a recording intake (or the intake that
    ``intake_transport`` reaches), served in process."""
    (tmp_path / "intake_key").write_text(f"{intake_key}\n")
    (tmp_path / "reader_key").write_text(READER_KEY)
    desk_settings = DeskSettings(
        intake_api_key_file=tmp_path / "intake_key",
        session_reader_key_file=tmp_path / "reader_key",
        kafka_bootstrap="127.0.0.1:9",
        mongo_url="mongodb://127.0.0.1:9/",
        **settings,
    )
    clock, intake = Clock(now), Intake()
    app = create_app(
        desk_settings,
        clock=clock,
        documents=MemoryDocuments(),
        intake_transport=intake_transport or httpx.MockTransport(intake.handle),
    )
    desk: Desk = app.state.desk
    read_model = ReadModel(desk.casework.store, desk.casework.index, clock=clock)
    async with client(httpx.ASGITransport(app=app)) as http:
        yield Running(http, desk, read_model, intake, clock)
