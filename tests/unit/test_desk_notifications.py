"""Notifications and their acknowledgements on the desk, as people meet them: the case page's
section 通知与确认 (who was told, when, where it stands, who acknowledged), the register
``/notifications`` with its CSV, and acknowledge links accepted only from an addressee. The
app on the in-memory store, fed the records the topics carry."""

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from schemas.acknowledgement import NotificationAcknowledged
from schemas.base import derive_event_id
from schemas.notification import NotificationStatus, NotificationUpdated
from services.common.acknowledge_links import DEVELOPMENT_KEY, sign
from services.common.addressees import ADDRESSEES_FILE, AddresseeDirectory
from services.common.documents import MemoryDocuments
from services.common.roles import Role
from services.desk import signin
from services.desk.access import Rules, Viewer, answers_for
from services.desk.readmodel import CaseIndex, ReadModel
from services.desk.store import DeskStore
from tests.desk import Running, complaint_and_case, hidden, running_desk
from tests.factories import ROUTING

NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
RECEIVED = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
SENT_AT = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
DIRECTORY = AddresseeDirectory.load(ADDRESSEES_FILE, ROUTING.catalogue)


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signin, "HASHER", PasswordHasher(time_cost=1, memory_cost=64))


class Published:
    def __init__(self) -> None:
        self.records: list[NotificationAcknowledged] = []

    async def publish(self, value: NotificationAcknowledged, **_: Any) -> None:
        self.records.append(value)


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async with running_desk(tmp_path, NOW) as desk:
        desk.http._transport.app.state.acknowledging.publisher = Published()  # type: ignore[attr-defined]
        yield desk


def notification(
    status: NotificationStatus = NotificationStatus.SENT, **overrides: Any
) -> NotificationUpdated:
    notification_id = overrides.pop("notification_id", None) or uuid.uuid4()
    values: dict[str, Any] = {
        "event_id": derive_event_id("notifier", f"{notification_id}:{status}"),
        "notification_id": notification_id,
        "purpose": "decision",
        "marker": "new",
        "send_key": "escalation_leadership_group",
        "rule_id": "R-EVERY-COMPLAINT",
        "case_id": None,
        "subject_id": "S9001",
        "addressee": "group:leadership",
        "addressee_zh": "院领导小组",
        "asks_for_ack": True,
        "accused": (),
        "status": status,
        "recorded_at": SENT_AT,
        "deadline": SENT_AT + timedelta(hours=72),
        "sent_at": SENT_AT if status is NotificationStatus.SENT else None,
        "changed_at": SENT_AT,
    }
    values.update(overrides)
    return NotificationUpdated(**values)


def acknowledgement(notification_id: uuid.UUID, **overrides: Any) -> NotificationAcknowledged:
    values: dict[str, Any] = {
        "event_id": derive_event_id("desk", f"ack:{notification_id}"),
        "notification_id": notification_id,
        "acknowledged_by": "li",
        "acknowledged_by_staff_id": "S0001",
        "acknowledged_by_name": "李院长",
        "acknowledged_at": SENT_AT + timedelta(hours=3),
    }
    values.update(overrides)
    return NotificationAcknowledged(**values)


def link(notification_id: uuid.UUID) -> str:
    return f"/ack/{sign(notification_id, NOW + timedelta(days=14), DEVELOPMENT_KEY)}"


# --- The read model ---------------------------------------------------------------------------


async def test_the_read_model_keeps_each_notifications_latest_state_and_its_acknowledgement() -> (
    None
):
    store = DeskStore(MemoryDocuments())
    read_model = ReadModel(store, CaseIndex(ROUTING.catalogue), clock=lambda: NOW)
    first = notification(NotificationStatus.PENDING)
    sent = notification(NotificationStatus.SENT, notification_id=first.notification_id)
    await read_model.notifications([first, sent])
    await read_model.notifications([first])  # a redelivered earlier state changes nothing
    kept = await store.notifications.get(str(first.notification_id))
    assert kept is not None
    assert kept.status is NotificationStatus.SENT
    ack = acknowledgement(first.notification_id)
    later = acknowledgement(first.notification_id, acknowledged_by="wangmin")
    await read_model.acknowledgements([ack])
    await read_model.acknowledgements([later])
    assert await store.acknowledgements.get(str(first.notification_id)) == ack


@pytest.mark.parametrize(
    ("role", "department", "staff_id", "addressee", "answers"),
    [
        ("department_head", "finance", "S0201", "head:finance", True),
        ("department_head", "nursing", "S0501", "head:finance", False),
        ("conduct_office", None, "S0106", "group:conduct_office", True),
        ("conduct_office", None, "S0106", "group:security_desk", True),
        ("conduct_office", None, "S0106", "head:finance", False),
        ("conduct_office", None, "S0106", "group:leadership", False),
        ("leadership", None, "S0001", "group:leadership", True),
        ("leadership", None, "S0401", "group:human_resources", True),  # a member
        ("discipline_inspection", None, "S0302", "group:judicial_liaison", True),
        ("discipline_inspection", None, "S0302", "group:human_resources", False),
    ],
)
def test_who_answers_for_an_addressee(
    role: str, department: str | None, staff_id: str, addressee: str, answers: bool
) -> None:
    viewer = Viewer("someone", "某人", Role(role), department, staff_id)
    assert answers_for(viewer, addressee, DIRECTORY) is answers


def test_the_register_never_shows_a_person_what_concerns_them() -> None:
    rules = Rules(ROUTING.catalogue, "medical_affairs")
    office = Viewer("zheng", "郑", Role.CONDUCT_OFFICE, None, "S0106")
    leader = Viewer("li", "李", Role.LEADERSHIP, None, "S0001")
    head = Viewer("qian", "钱", Role.DEPARTMENT_HEAD, "finance", "S0201")
    assert rules.may_see_notification(office, ("S9001",), None)
    assert not rules.may_see_notification(office, ("S0101",), None), "the office's own head"
    assert rules.may_see_notification(leader, ("S0101",), None)
    assert not rules.may_see_notification(leader, ("S0001",), None)
    assert not rules.may_see_notification(head, (), None), "no register for heads"


async def test_digests_ask_no_acknowledgement_and_are_not_kept() -> None:
    store = DeskStore(MemoryDocuments())
    read_model = ReadModel(store, CaseIndex(ROUTING.catalogue), clock=lambda: NOW)
    digest = notification(purpose="digest", asks_for_ack=False, subject_id="finance")
    reminder = notification(purpose="monthly_report", asks_for_ack=False, subject_id="finance")
    withdrawal = notification(marker="withdrawal", asks_for_ack=False)
    await read_model.notifications([digest, reminder, withdrawal])
    assert set(await store.notifications.find()) == {str(withdrawal.notification_id)}


# --- The case page ----------------------------------------------------------------------------


async def test_the_case_page_shows_who_was_told_when_and_who_acknowledged(
    running: Running,
) -> None:
    complaint, case = complaint_and_case("N-1", received_at=RECEIVED)
    await running.publish(cases=[case], complaints=[complaint])
    head = notification(
        case_id=case.case_id,
        addressee=f"head:{case.responsible_department.code}",
        addressee_zh="医务部负责人",
        send_key="escalation_department_head",
    )
    leadership = notification(case_id=case.case_id)
    failed = notification(
        NotificationStatus.FAILED,
        case_id=case.case_id,
        addressee="group:discipline_inspection",
        addressee_zh="纪检监察室",
    )
    await running.read_model.notifications([head, leadership, failed])
    await running.read_model.acknowledgements([acknowledgement(leadership.notification_id)])
    http = await running.signed_in("zheng", "conduct_office", staff_id="S0106")

    page = (await http.get(f"/cases/{case.case_id}")).text
    section = page[page.index('id="notifications-heading"') :]
    section = section[: section.index("</section>")]
    assert "通知与确认" in section
    assert "医务部负责人" in section
    assert "已发送" in section
    assert "院领导小组" in section
    assert "已确认" in section
    assert "李院长" in section
    assert "2026-11-24 13:00" in section, "acknowledged at, hospital time"
    assert "纪检监察室" in section
    assert "失败" in section
    assert "@" not in section, "never an address"


# --- The register -----------------------------------------------------------------------------


async def test_the_register_lists_unacknowledged_first_filters_and_exports_neutralised(
    running: Running,
) -> None:
    acknowledged = notification(subject_id="S9101")
    waiting = notification(subject_id="S9102", addressee_zh='=HYPERLINK("x")院领导小组')
    failed = notification(NotificationStatus.FAILED, subject_id="S9103")
    await running.read_model.notifications([acknowledged, waiting, failed])
    await running.read_model.acknowledgements(
        [acknowledgement(acknowledged.notification_id, acknowledged_by_name="+SUM(A1)")]
    )
    http = await running.signed_in("li", "leadership", staff_id="S0002")

    page = await http.get("/notifications")
    assert page.status_code == 200
    assert 'href="/notifications"' in (await http.get("/cases")).text, "in the menu"
    text = page.text
    assert text.index("S9102") < text.index("S9101"), "unacknowledged first"
    only = (await http.get("/notifications", params={"state": "unacknowledged"})).text
    assert "S9102" in only
    assert "S9101" not in only
    assert "S9103" not in only
    failed_only = (await http.get("/notifications", params={"state": "failed"})).text
    assert "S9103" in failed_only
    assert "S9102" not in failed_only

    export = await http.get("/notifications", params={"format": "csv"})
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    cells = [cell for row in rows for cell in row]
    assert '\'=HYPERLINK("x")院领导小组' in cells
    assert any(cell.startswith("'+SUM(A1)") for cell in cells)
    assert not [cell for cell in cells if cell and cell[0] in "=+-@"]
    assert rows[0][:3] == ["通知编号", "案件编号", "对象"]
    assert [row[2] for row in rows[1:]] == ["S9102", "S9103", "S9101"], "unacknowledged first"


async def test_the_register_hides_what_concerns_the_person_and_is_not_for_every_role(
    running: Running,
) -> None:
    about_them = notification(subject_id="S0002", accused=("S0002",))
    other = notification(subject_id="S9200")
    await running.read_model.notifications([about_them, other])
    http = await running.signed_in("li", "leadership", staff_id="S0002")
    text = (await http.get("/notifications")).text
    assert "S9200" in text
    assert "S0002（" not in text
    assert str(about_them.notification_id) not in text
    export = (await http.get("/notifications", params={"format": "csv"})).text
    assert str(about_them.notification_id) not in export
    assert "S0002" not in export.split("\n", 1)[1]
    head = await running.signed_in(
        "finance-head", "department_head", department="finance", staff_id="S0201"
    )
    assert (await head.get("/notifications")).status_code == 403


async def test_a_notification_about_a_hidden_case_stays_hidden(running: Running) -> None:
    # A complaint against the conduct office's own head (S0101): 纪检监察室 handles it.
    complaint, case = complaint_and_case(
        "N-2", received_at=RECEIVED, accused_staff_id="S0101", accused_department="medical_affairs"
    )
    await running.publish(cases=[case], complaints=[complaint])
    hidden_one = notification(case_id=case.case_id, subject_id=case.case_id)
    await running.read_model.notifications([hidden_one])
    office = await running.signed_in("zheng", "conduct_office", staff_id="S0106")
    assert case.case_id not in (await office.get("/notifications")).text
    assert case.case_id not in (await office.get("/notifications?format=csv")).text
    inspector = await running.signed_in("jijian", "discipline_inspection", staff_id="S0302")
    assert case.case_id in (await inspector.get("/notifications")).text


# --- Acknowledging ----------------------------------------------------------------------------


async def test_only_an_addressee_acknowledges_and_the_acknowledgement_names_them(
    running: Running,
) -> None:
    to_finance = notification(addressee="head:finance", addressee_zh="财务科负责人")
    await running.read_model.notifications([to_finance])
    published: Published = running.http._transport.app.state.acknowledging.publisher  # type: ignore[attr-defined]

    nursing = await running.signed_in(
        "nursing-head", "department_head", department="nursing", staff_id="S0501"
    )
    refused = await nursing.get(link(to_finance.notification_id))
    assert refused.status_code == 403
    assert "不是发给您" in refused.text
    tried = await nursing.post(
        link(to_finance.notification_id),
        data={"csrf_token": hidden((await nursing.get("/cases")).text)},
    )
    assert tried.status_code == 403
    assert published.records == []

    finance = await running.signed_in(
        "finance-head", "department_head", department="finance", staff_id="S0201", name="钱主任"
    )
    opened = await finance.get(link(to_finance.notification_id))
    assert opened.status_code == 200
    done = await finance.post(
        link(to_finance.notification_id), data={"csrf_token": hidden(opened.text)}
    )
    assert "已确认收到" in done.text
    [ack] = published.records
    assert (ack.acknowledged_by, ack.acknowledged_by_staff_id) == ("finance-head", "S0201")
    assert ack.acknowledged_by_name == "钱主任"
    assert ack.acknowledged_for == "head:finance"


async def test_the_office_acknowledges_for_its_groups_and_a_superior_for_a_follow_up(
    running: Running,
) -> None:
    to_security = notification(addressee="group:security_desk", addressee_zh="保卫科值班室")
    to_head = notification(addressee="head:finance", addressee_zh="财务科负责人")
    superior = notification(
        purpose="superior",
        acknowledges=to_head.notification_id,
        addressee="group:leadership",
        addressee_zh="院领导小组",
    )
    await running.read_model.notifications([to_security, to_head, superior])
    office = await running.signed_in("zheng", "conduct_office", staff_id="S0106")
    assert (await office.get(link(to_security.notification_id))).status_code == 200
    assert (await office.get(link(to_head.notification_id))).status_code == 403
    leader = await running.signed_in("li", "leadership", staff_id="S0001")
    assert (await leader.get(link(to_head.notification_id))).status_code == 200


async def test_the_accused_never_acknowledges_and_an_unknown_notification_waits(
    running: Running,
) -> None:
    about_leader = notification(accused=("S0001",))
    await running.read_model.notifications([about_leader])
    leader = await running.signed_in("li", "leadership", staff_id="S0001")
    assert (await leader.get(link(about_leader.notification_id))).status_code == 403
    unknown = await leader.get(link(uuid.uuid4()))
    assert unknown.status_code == 409
    assert "稍后" in unknown.text
