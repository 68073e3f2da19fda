"""The notifier's application layer on the in-memory store: who is told of a decision, once;
what they are told; retries, failure, acknowledgement, reminders and the superior."""

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from schemas.acknowledgement import NotificationAcknowledged
from schemas.base import derive_event_id
from schemas.decision import Decision, DecisionKind, EscalationTarget, SubjectKind
from schemas.notification import NotificationStatus, NotificationUpdated
from services.common.acknowledge_links import LinkRefusedError, sign, verify
from services.common.addressees import ADDRESSEES_FILE, Addressee, AddresseeDirectory
from services.common.datafile import DataFileError
from services.common.departments import DEPARTMENTS_FILE, DepartmentCatalogue
from services.common.documents import MemoryDocuments
from services.notifier.domain import Marker, Notification, Purpose, Status
from services.notifier.metrics import NotifierMetrics
from services.notifier.outbox import Notifier, Sending
from services.notifier.store import NotifierStore
from tests.factories import complaint_event, routed_case

CATALOGUE = DepartmentCatalogue.from_file(DEPARTMENTS_FILE)
DIRECTORY = AddresseeDirectory.load(ADDRESSEES_FILE, CATALOGUE)
START = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
CASE_ID = "CASE-0123456789ABCDEF0123"


def decision(**overrides: Any) -> Decision:
    values: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "key": f"case:{CASE_ID}:judicial",
        "rule_id": "R-KICKBACK",
        "rules_version": "2026-11-26.4",
        "kind": DecisionKind.ESCALATION,
        "subject_kind": SubjectKind.STAFF,
        "subject_id": "S9001",
        "case_id": CASE_ID,
        "escalate_to": EscalationTarget.JUDICIAL_ORGANS,
        "as_of": START,
        "source_event_ids": (uuid.uuid4(),),
        "facts": {"amount_cny": "50000.00"},
        "explanation_zh": "经查实收受回扣50000元，移送司法机关。",
        "explanation_en": "Transferred to the judicial organs.",
        "decided_at": START,
    }
    values.update(overrides)
    return Decision(**values)


@dataclass
class Outside:
    """The channels as the outbox sees them: what each took, and which refuse."""

    now: datetime = START
    taken: list[tuple[str, str, uuid.UUID]] = field(default_factory=list)
    refusing: set[str] = field(default_factory=set)
    published: list[NotificationUpdated] = field(default_factory=list)
    broker_down: bool = False

    async def publish(self, updates: Sequence[NotificationUpdated]) -> None:
        if self.broker_down:
            raise ConnectionRefusedError("broker down")
        self.published += updates

    def clock(self) -> datetime:
        return self.now

    async def deliver(
        self, notification: Notification, addressee: Addressee, channel: str, now: datetime
    ) -> None:
        if channel.split(":", 1)[0] in self.refusing:
            raise ConnectionRefusedError("down")
        self.taken.append((addressee.key, channel, notification.notification_id))

    def to(self, addressee: str) -> list[uuid.UUID]:
        return [nid for key, _, nid in self.taken if key == addressee]


@pytest.fixture
def outside() -> Outside:
    return Outside()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def notifier(outside: Outside, registry: CollectorRegistry) -> Notifier:
    return Notifier(
        NotifierStore(MemoryDocuments()),
        DIRECTORY,
        CATALOGUE,
        desk_url="https://desk.hospital.example/",
        clock=outside.clock,
        deliver=outside.deliver,
        channels_of=lambda a: (["email"] if a.email else []) + [f"robot:{r.url}" for r in a.robots],
        sending=Sending(max_attempts=3, first_pause=5, longest_pause=60),
        metrics=NotifierMetrics.on(registry),
        publish=outside.publish,
    )


async def outbox(notifier: Notifier, **equal: object) -> list[Notification]:
    found = await notifier.store.outbox.find(**equal)
    return [v.value for v in found.values() if v.value is not None]


async def test_a_judicial_transfer_reaches_the_liaison_and_discipline_once(
    notifier: Notifier, outside: Outside
) -> None:
    judicial = decision()
    await notifier.take_decisions([judicial])
    await notifier.take_decisions([judicial])  # redelivered
    await notifier.send_due()
    await notifier.send_due()
    assert sorted(key for key, _, _ in outside.taken) == [
        "group:discipline_inspection",
        "group:judicial_liaison",
    ]
    assert len(await outbox(notifier, status=Status.SENT)) == 2


async def test_a_kickback_report_goes_to_the_superior_authority_liaison_and_leadership(
    notifier: Notifier, outside: Outside
) -> None:
    await notifier.take_decisions(
        [decision(escalate_to=EscalationTarget.SUPERIOR_HEALTH_AUTHORITY, key="r")]
    )
    await notifier.send_due()
    assert {key for key, _, _ in outside.taken} == {
        "group:superior_authority_liaison",
        "group:leadership",
    }


async def test_content_is_minimal_chinese_with_the_desk_link(notifier: Notifier) -> None:
    await notifier.take_decisions([decision()])
    [sent, *_] = await outbox(notifier)
    assert sent.title.startswith("【清廉】R-KICKBACK 上报（司法机关）")
    assert f"https://desk.hospital.example/cases/{CASE_ID}" in sent.body
    assert "需办理：办理移送司法机关手续" in sent.body
    assert "办理期限：2026-12-04 14:00" in sent.body  # 24 h, hospital time
    assert "回扣50000元" not in sent.body  # the explanation's facts stay on the desk


async def test_an_overdue_case_goes_to_the_responsible_head_then_leadership(
    notifier: Notifier, outside: Outside
) -> None:
    case = routed_case(complaint_event(accused_staff_id="S9001", accused_department="finance"))
    await notifier.take_cases([case])
    head = decision(
        subject_kind=SubjectKind.CASE,
        subject_id=case.case_id,
        case_id=case.case_id,
        escalate_to=EscalationTarget.DEPARTMENT_HEAD,
        rule_id="R-EVERY-COMPLAINT",
    )
    leaders = head.model_copy(
        update={"event_id": uuid.uuid4(), "escalate_to": EscalationTarget.LEADERSHIP_GROUP}
    )
    await notifier.take_decisions([head, leaders])
    await notifier.send_due()
    responsible = case.responsible_department.code
    assert {key for key, _, _ in outside.taken} == {f"head:{responsible}", "group:leadership"}


async def test_a_case_against_a_head_never_reaches_that_head(
    notifier: Notifier, outside: Outside
) -> None:
    head_of_finance = CATALOGUE.departments["finance"].head_staff_id
    case = routed_case(
        complaint_event(accused_staff_id=head_of_finance, accused_department="finance")
    )
    case = case.model_copy(
        update={"responsible_department": CATALOGUE.department("finance")}
    )  # routed to finance before they became its head
    await notifier.take_cases([case])
    await notifier.take_decisions(
        [
            decision(
                subject_kind=SubjectKind.CASE,
                subject_id=case.case_id,
                case_id=case.case_id,
                escalate_to=EscalationTarget.DEPARTMENT_HEAD,
                rule_id="R-EVERY-COMPLAINT",
            )
        ]
    )
    await notifier.send_due()
    assert [key for key, _, _ in outside.taken] == ["group:discipline_inspection"]


async def test_a_decision_about_a_case_not_seen_yet_waits_for_it(
    notifier: Notifier, outside: Outside
) -> None:
    case = routed_case(complaint_event(accused_staff_id="S9002", accused_department="pharmacy"))
    overdue = decision(
        subject_kind=SubjectKind.CASE,
        subject_id=case.case_id,
        case_id=case.case_id,
        escalate_to=EscalationTarget.DEPARTMENT_HEAD,
    )
    await notifier.take_decisions([overdue])
    assert await outbox(notifier) == []
    await notifier.take_cases([case])
    await notifier.send_due()
    assert [key for key, _, _ in outside.taken] == [f"head:{case.responsible_department.code}"]


async def test_corrections_and_withdrawals_are_sent_again_marked(
    notifier: Notifier, outside: Outside
) -> None:
    first = decision()
    corrected = decision(corrects=first.event_id)
    withdrawn = decision(corrects=corrected.event_id, withdrawn=True)
    for one in (first, corrected, withdrawn):
        await notifier.take_decisions([one])
    await notifier.send_due()
    sent = await outbox(notifier, status=Status.SENT)
    marks = sorted(
        (n.marker, n.title.split(" ")[0]) for n in sent if n.addressee == "group:judicial_liaison"
    )
    assert marks == [
        (Marker.CORRECTION, "【清廉】【更正】R-KICKBACK"),
        (Marker.NEW, "【清廉】R-KICKBACK"),
        (Marker.WITHDRAWAL, "【清廉】【撤销】R-KICKBACK"),
    ]
    assert not any(n.awaiting_ack for n in sent if n.marker is Marker.WITHDRAWAL)


async def test_decisions_nobody_is_told_of(notifier: Notifier) -> None:
    allowed = decision(
        kind=DecisionKind.PROMOTION_DECISION, escalate_to=None, allowed=True, case_id=None
    )
    surrender = decision(kind=DecisionKind.SURRENDER_RECORDED, escalate_to=None)
    await notifier.take_decisions([allowed, surrender])
    assert await outbox(notifier) == []


async def test_refusals_cutoffs_and_removals_reach_hr_procurement_and_security(
    notifier: Notifier, outside: Outside
) -> None:
    refused = decision(
        kind=DecisionKind.PROMOTION_DECISION, escalate_to=None, allowed=False, key="a"
    )
    cutoff = decision(
        kind=DecisionKind.VENDOR_CUTOFF, escalate_to=None, subject_kind=SubjectKind.COMPANY
    )
    lifted = decision(
        kind=DecisionKind.VENDOR_CUTOFF_LIFTED, escalate_to=None, subject_kind=SubjectKind.COMPANY
    )
    removal = decision(
        kind=DecisionKind.REMOVAL_ALERT,
        escalate_to=None,
        subject_kind=SubjectKind.COMPANY,
        case_id=None,
        rule_id="R-REP-VISIT",
    )
    await notifier.take_decisions([refused, cutoff, lifted, removal])
    await notifier.send_due()
    assert sorted((key, channel.split(":")[0]) for key, channel, _ in outside.taken) == [
        ("group:human_resources", "email"),
        ("group:procurement", "email"),
        ("group:procurement", "email"),
        ("group:security_desk", "robot"),
    ]


async def test_a_refusing_channel_is_retried_with_backoff_then_marked_failed(
    notifier: Notifier, outside: Outside, registry: CollectorRegistry
) -> None:
    outside.refusing.add("email")
    await notifier.take_decisions([decision()])
    await notifier.send_due()
    [first, *_] = await outbox(notifier, status=Status.PENDING)
    assert first.attempts == 1
    assert first.next_attempt_at == START + timedelta(seconds=5)
    await notifier.send_due()  # not due yet: no attempt
    assert (await outbox(notifier, status=Status.PENDING))[0].attempts == 1
    for seconds in (5, 15):
        outside.now = START + timedelta(seconds=seconds)
        await notifier.send_due()
    failed = await outbox(notifier, status=Status.FAILED)
    assert len(failed) == 2
    assert (
        registry.get_sample_value(
            "qinglian_notifications_failed_total", {"send_key": "escalation_judicial_organs"}
        )
        == 2
    )


async def test_a_channel_back_in_time_delivers_what_waited(
    notifier: Notifier, outside: Outside
) -> None:
    outside.refusing.add("email")
    await notifier.take_decisions([decision()])
    await notifier.send_due()
    outside.refusing.clear()
    outside.now = START + timedelta(seconds=5)
    await notifier.send_due()
    assert len(outside.taken) == 2
    assert len(await outbox(notifier, status=Status.SENT)) == 2


async def test_each_state_of_a_notification_is_published_once_without_an_address(
    notifier: Notifier, outside: Outside
) -> None:
    outside.broker_down = True
    await notifier.take_decisions([decision()])
    with pytest.raises(ConnectionRefusedError):
        await notifier.announce()
    await notifier.send_due()  # the broker down delays no email
    assert len(outside.taken) == 2
    outside.broker_down = False
    await notifier.announce()  # what the outage held back, in its latest state
    await notifier.take_decisions([decision(escalate_to=EscalationTarget.REGULATOR, key="r")])
    await notifier.announce()
    await notifier.send_due()
    for _ in range(2):
        await notifier.announce()
    states = sorted((u.addressee, u.status) for u in outside.published)
    assert states == [
        ("group:discipline_inspection", NotificationStatus.SENT),
        ("group:judicial_liaison", NotificationStatus.SENT),
        ("group:regulator_liaison", NotificationStatus.PENDING),
        ("group:regulator_liaison", NotificationStatus.SENT),
    ]
    sent = next(u for u in outside.published if u.addressee == "group:judicial_liaison")
    assert sent.case_id == CASE_ID
    assert sent.rule_id == "R-KICKBACK"
    assert sent.sent_at == START
    assert sent.accused == ("S9001",)
    assert {u.addressee_zh for u in outside.published} == {
        "纪检监察室",
        "司法机关移送联络人",
        "监管部门联络人",
    }
    for update in outside.published:
        text = update.model_dump_json()
        assert "@" not in text
        assert "回扣" not in text


async def test_a_notification_given_up_is_published_as_failed(
    notifier: Notifier, outside: Outside
) -> None:
    outside.refusing.add("email")
    await notifier.take_decisions([decision()])
    for seconds in (0, 5, 15, 35):
        outside.now = START + timedelta(seconds=seconds)
        await notifier.send_due()
    await notifier.announce()
    failed = [u for u in outside.published if u.status is NotificationStatus.FAILED]
    assert len(failed) == 2


def acknowledgement(notification: Notification, at: datetime) -> NotificationAcknowledged:
    return NotificationAcknowledged(
        event_id=derive_event_id("desk", str(notification.notification_id)),
        notification_id=notification.notification_id,
        acknowledged_by="wangmin",
        acknowledged_at=at,
    )


async def test_unacknowledged_a_reminder_then_the_superior_and_acknowledgement_stops_it(
    notifier: Notifier, outside: Outside, registry: CollectorRegistry
) -> None:
    await notifier.take_decisions([decision()])
    await notifier.send_due()
    sent = await outbox(notifier, awaiting_ack=True)
    liaison = next(n for n in sent if n.addressee == "group:judicial_liaison")
    discipline = next(n for n in sent if n.addressee == "group:discipline_inspection")
    await notifier.take_acknowledgements([acknowledgement(discipline, START)])
    await notifier.take_acknowledgements([acknowledgement(discipline, START)])  # redelivered
    assert (
        registry.get_sample_value(
            "qinglian_notifications_acknowledged_total",
            {"send_key": "escalation_judicial_organs"},
        )
        == 1
    ), "each notification acknowledged counts once"
    outside.now = START + timedelta(hours=24)
    await notifier.follow_up()
    await notifier.follow_up()
    await notifier.send_due()
    assert outside.to("group:judicial_liaison") == [
        liaison.notification_id,
        *[n.notification_id for n in await outbox(notifier) if n.purpose is Purpose.REMINDER],
    ]
    outside.now = START + timedelta(hours=48)
    await notifier.follow_up()
    await notifier.send_due()
    [superior] = [n for n in await outbox(notifier) if n.purpose is Purpose.SUPERIOR]
    assert superior.addressee == "group:leadership"
    assert superior.title.startswith("【清廉】【督办】")
    assert superior.acknowledged_one == liaison.notification_id
    assert outside.to("group:discipline_inspection") == [discipline.notification_id]


async def test_found_past_both_periods_the_addressee_is_reminded_with_the_superior_not_after(
    notifier: Notifier, outside: Outside
) -> None:
    # The notifier was stopped through both periods: its first round does both follow-ups, and
    # a later round does not remind an addressee whose superior was already told.
    await notifier.take_decisions([decision()])
    await notifier.send_due()
    [liaison] = [n for n in await outbox(notifier) if n.addressee == "group:judicial_liaison"]
    outside.now = START + timedelta(hours=49)
    await notifier.follow_up()
    await notifier.send_due()
    recalling = [n for n in await outbox(notifier) if n.acknowledges == liaison.notification_id]
    assert sorted(n.purpose for n in recalling) == [Purpose.REMINDER, Purpose.SUPERIOR]
    outside.now = START + timedelta(hours=200)
    await notifier.follow_up()
    later = [n for n in await outbox(notifier) if n.acknowledges == liaison.notification_id]
    assert sorted(n.notification_id for n in later) == sorted(n.notification_id for n in recalling)


async def test_a_group_with_nobody_above_is_still_reminded(
    notifier: Notifier, outside: Outside
) -> None:
    await notifier.take_decisions(
        [decision(escalate_to=EscalationTarget.SUPERIOR_HEALTH_AUTHORITY, rule_id="R-SEVERE")]
    )
    await notifier.send_due()
    [leadership] = [n for n in await outbox(notifier) if n.addressee == "group:leadership"]
    outside.now = START + timedelta(hours=49)
    await notifier.follow_up()
    await notifier.send_due()
    [reminder] = [n for n in await outbox(notifier) if n.acknowledges == leadership.notification_id]
    assert reminder.purpose is Purpose.REMINDER
    assert reminder.notification_id in outside.to("group:leadership")


async def test_the_overdue_gauge_counts_urgent_unacknowledged(
    notifier: Notifier, outside: Outside, registry: CollectorRegistry
) -> None:
    await notifier.take_decisions([decision()])
    await notifier.send_due()
    outside.now = START + timedelta(hours=25)
    await notifier.follow_up()
    assert (
        registry.get_sample_value(
            "qinglian_notifications_unacknowledged_overdue", {"urgent": "true"}
        )
        == 2
    )


def test_a_bad_directory_stops_with_file_line_place_and_problem(tmp_path: Any) -> None:
    text = ADDRESSEES_FILE.read_text(encoding="utf-8")
    broken = tmp_path / "addressees.toml"
    broken.write_text(
        text.replace('to = ["judicial_liaison"', 'to = ["judicial"').replace(
            "[department_heads.imaging]", "[department_heads.radiology]"
        ),
        encoding="utf-8",
    )
    with pytest.raises(DataFileError) as refused:
        AddresseeDirectory.load(broken, CATALOGUE)
    line = next(
        number
        for number, content in enumerate(broken.read_text().splitlines(), start=1)
        if 'to = ["judicial"' in content
    )
    assert f"addressees.toml:{line} send.escalation_judicial_organs.to[1]: unknown group" in str(
        refused.value
    )


def test_heads_must_all_be_reachable(tmp_path: Any) -> None:
    text = ADDRESSEES_FILE.read_text(encoding="utf-8")
    broken = tmp_path / "addressees.toml"
    broken.write_text(
        text.replace("[department_heads.imaging]", "[department_heads.radiology]"),
        encoding="utf-8",
    )
    with pytest.raises(DataFileError, match="radiology: unknown department 'radiology'"):
        AddresseeDirectory.load(broken, CATALOGUE)


def test_an_acknowledge_link_is_signed_single_notification_and_expires() -> None:
    key = b"k" * 32
    nid = uuid.uuid4()
    token = sign(nid, START + timedelta(days=14), key)
    assert verify(token, key, now=START) == nid
    with pytest.raises(LinkRefusedError, match="expired"):
        verify(token, key, now=START + timedelta(days=14))
    with pytest.raises(LinkRefusedError, match="not one Qinglian made"):
        verify(token, b"another key", now=START)
    other = uuid.uuid4().hex
    with pytest.raises(LinkRefusedError, match="not one Qinglian made"):
        verify(other + token[32:], key, now=START)
    with pytest.raises(LinkRefusedError, match="damaged"):
        verify(token + "x", key, now=START)


def digests(notifications: list[Notification], purpose: Purpose) -> list[Notification]:
    return [n for n in notifications if n.purpose is purpose]


async def test_each_head_gets_one_digest_a_day_without_a_case_against_them(
    notifier: Notifier, outside: Outside
) -> None:
    head_of_pharmacy = CATALOGUE.departments["pharmacy"].head_staff_id
    against_the_head = routed_case(
        complaint_event(
            source_ref="R-HEAD", accused_staff_id=head_of_pharmacy, accused_department="pharmacy"
        )
    ).model_copy(update={"responsible_department": CATALOGUE.department("pharmacy")})
    overdue = routed_case(
        complaint_event(source_ref="R-1", accused_staff_id="S9", accused_department="pharmacy")
    ).model_copy(
        update={
            "responsible_department": CATALOGUE.department("pharmacy"),
            "deadline": START - timedelta(days=1),
        }
    )
    await notifier.take_cases([against_the_head, overdue])
    outside.now = datetime(2026, 12, 3, 23, 30, tzinfo=UTC)  # 07:30 on the 4th, hospital time
    await notifier.follow_up()
    assert digests(await outbox(notifier), Purpose.DIGEST) == [], "not before 08:00"
    outside.now = datetime(2026, 12, 4, 0, 30, tzinfo=UTC)  # 08:30
    await notifier.follow_up()
    await notifier.follow_up()
    made = digests(await outbox(notifier), Purpose.DIGEST)
    assert len(made) == len(CATALOGUE.departments)
    [pharmacy] = [n for n in made if n.addressee == "head:pharmacy"]
    assert pharmacy.title == "【清廉】每日案件提示 2026-12-04"
    assert "调查中的案件：1 件" in pharmacy.body
    assert f"已逾期：1 件：{overdue.case_id}" in pharmacy.body
    assert against_the_head.case_id not in pharmacy.body
    await notifier.send_due()
    sent = digests(await outbox(notifier, status=Status.SENT), Purpose.DIGEST)
    assert len(sent) == len(CATALOGUE.departments)
    assert not any(n.awaiting_ack for n in sent), "a digest asks for no acknowledgement"
    outside.now += timedelta(days=1)
    await notifier.follow_up()
    assert len(digests(await outbox(notifier), Purpose.DIGEST)) == 2 * len(CATALOGUE.departments)


async def test_the_monthly_report_reminder_goes_once_on_its_day(
    notifier: Notifier, outside: Outside
) -> None:
    outside.now = datetime(2026, 12, 15, 1, 0, tzinfo=UTC)  # the 15th, 09:00 hospital time
    await notifier.follow_up()
    outside.now += timedelta(hours=5)
    await notifier.follow_up()
    made = digests(await outbox(notifier), Purpose.MONTHLY_REPORT)
    assert len(made) == len(CATALOGUE.departments)
    assert made[0].title == "【清廉】月度工作开展情况 2026-11 请于20日前报送"
    assert "办理期限：2026-12-20" in made[0].body
    outside.now = datetime(2026, 12, 16, 1, 0, tzinfo=UTC)
    await notifier.follow_up()
    assert len(digests(await outbox(notifier), Purpose.MONTHLY_REPORT)) == len(
        CATALOGUE.departments
    )


async def test_two_senders_at_once_send_each_notification_once(
    notifier: Notifier, outside: Outside, registry: CollectorRegistry
) -> None:
    other = Notifier(
        notifier.store,
        DIRECTORY,
        CATALOGUE,
        desk_url="https://desk.hospital.example/",
        clock=outside.clock,
        deliver=outside.deliver,
        channels_of=notifier.channels_of,
        sending=notifier.sending,
        metrics=NotifierMetrics.on(CollectorRegistry()),
        publish=outside.publish,
    )
    await notifier.take_decisions([decision()])
    await asyncio.gather(notifier.send_due(), other.send_due(), notifier.send_due())
    assert sorted(key for key, _, _ in outside.taken) == [
        "group:discipline_inspection",
        "group:judicial_liaison",
    ]


async def test_a_claim_left_by_a_killed_sender_runs_out_and_the_same_id_is_sent(
    notifier: Notifier, outside: Outside
) -> None:
    await notifier.take_decisions([decision()])
    pending = await notifier.store.outbox.find(status=Status.PENDING)
    for found in pending.values():  # claimed by a sender that died before it sent
        assert found.value is not None
        held = found.value.model_copy(update={"claimed_until": START + timedelta(seconds=60)})
        assert await notifier.store.outbox.save(found.key, held, over=found.revision)
    await notifier.send_due()
    assert outside.taken == []
    outside.now = START + timedelta(seconds=60)
    await notifier.send_due()
    assert sorted(str(nid) for _, _, nid in outside.taken) == sorted(pending)


async def test_the_superior_told_of_an_unacknowledged_notification_is_never_the_accused(
    notifier: Notifier, outside: Outside
) -> None:
    leader = DIRECTORY.groups["leadership"].members[0]
    await notifier.take_decisions([decision(subject_id=leader)])
    await notifier.send_due()
    outside.now = START + timedelta(hours=48)
    await notifier.follow_up()
    superiors = [n for n in await outbox(notifier) if n.purpose is Purpose.SUPERIOR]
    assert superiors
    assert {n.addressee for n in superiors} == {"group:discipline_inspection"}


async def test_decisions_made_before_the_notifier_was_added_are_not_sent(
    notifier: Notifier, outside: Outside
) -> None:
    notifier.decided_from = START
    await notifier.take_decisions(
        [decision(decided_at=START - timedelta(days=30)), decision(key="now", decided_at=START)]
    )
    await notifier.send_due()
    assert len(outside.taken) == 2  # the recent decision's two addressees only
