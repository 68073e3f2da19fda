"""The desk's acknowledge links (``/ack/{token}``) as a person meets them: signed in, an
addressee's link asks to confirm; the confirmation publishes one acknowledgement per
notification; a forged, damaged or expired link is refused; a link used again publishes
nothing more."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from schemas.acknowledgement import NotificationAcknowledged
from schemas.notification import NotificationStatus, NotificationUpdated
from services.common.acknowledge_links import DEVELOPMENT_KEY, sign
from services.desk import signin
from tests.desk import Running, client, hidden, running_desk

NOW = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)


class Published:
    def __init__(self) -> None:
        self.records: list[tuple[NotificationAcknowledged, bytes]] = []

    async def publish(self, value: NotificationAcknowledged, *, key: bytes, **_: Any) -> None:
        self.records.append((value, key))


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signin, "HASHER", PasswordHasher(time_cost=1, memory_cost=64))


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[Running, Published]]:
    async with running_desk(tmp_path, NOW) as desk:
        published = Published()
        desk.http._transport.app.state.acknowledging.publisher = published  # type: ignore[attr-defined]
        yield desk, published


def to_the_office(notification_id: uuid.UUID) -> NotificationUpdated:
    return NotificationUpdated(
        event_id=uuid.uuid4(),
        notification_id=notification_id,
        purpose="decision",
        marker="new",
        send_key="removal_alert",
        rule_id="R-REP-VISIT",
        subject_id="C0001",
        addressee="group:conduct_office",
        addressee_zh="医务部（行风办）",
        asks_for_ack=True,
        status=NotificationStatus.SENT,
        recorded_at=NOW,
        deadline=NOW + timedelta(hours=1),
        sent_at=NOW,
        changed_at=NOW,
    )


async def test_a_signed_in_person_acknowledges_once_through_the_link(
    running: tuple[Running, Published],
) -> None:
    desk, published = running
    http = await desk.signed_in("wangmin", "conduct_office", staff_id="S0102", name="王敏")
    notification = uuid.uuid4()
    await desk.read_model.notifications([to_the_office(notification)])
    link = f"/ack/{sign(notification, NOW + timedelta(days=14), DEVELOPMENT_KEY)}"
    opened = await http.get(link)
    assert opened.status_code == 200
    assert published.records == [], "opening the link acknowledges nothing"
    confirm = {"csrf_token": hidden(opened.text)}
    done = await http.post(link, data=confirm)
    assert done.status_code == 200
    assert "已确认收到" in done.text
    again = await http.post(link, data=confirm)
    assert "此前已确认" in again.text
    [(ack, key)] = published.records
    assert ack.notification_id == notification
    assert ack.acknowledged_by == "wangmin"
    assert ack.acknowledged_by_staff_id == "S0102"
    assert ack.acknowledged_by_name == "王敏"
    assert ack.acknowledged_for == "group:conduct_office"
    assert key == notification.bytes, "the key AsyncAPI documents: the UUID's 16 bytes"


async def test_forged_damaged_and_expired_links_are_refused(
    running: tuple[Running, Published],
) -> None:
    desk, published = running
    http = await desk.signed_in("li", "leadership")
    notification = uuid.uuid4()
    expired = sign(notification, NOW, DEVELOPMENT_KEY)
    forged = sign(notification, NOW + timedelta(days=1), b"someone else's key")
    for token, reason in ((expired, "链接已过期"), (forged, "链接无效"), ("abc", "链接无效")):
        answer = await http.get(f"/ack/{token}")
        assert answer.status_code == 404
        assert reason in answer.text
    assert published.records == []


async def test_the_link_needs_a_signed_in_person(running: tuple[Running, Published]) -> None:
    desk, _ = running
    token = sign(uuid.uuid4(), NOW + timedelta(days=1), DEVELOPMENT_KEY)
    answer = await client(desk.http._transport).get(f"/ack/{token}")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
