"""Who is told of a decision, what they are told, and what follows when nobody acknowledges.
Pure: decisions, what is known of cases and staff, the directory and ``now`` in; the
notifications to record out.

- A decision is notified when the directory's ``send`` table names whom for what it is
  (``send_key``): an escalation by its target, a promotion refusal, a bar, a cut-off and its
  lifting, a removal alert, a measure, a criticism notice. A correction or a withdrawal of a
  decision is notified again, marked 更正 or 撤销.
- ``department_head`` is the head of the department the decision concerns: the department
  itself, the responsible department of a case, the department of the accused staff member.
- A case against a person never reaches that person: an addressee whose members include the
  accused is replaced by its ``instead`` (纪检监察室 for a head), and so on, never by one that
  includes the accused.
- Content is minimal and in Chinese: what, case or subject id, rule, what to do, the deadline,
  the link to the desk's case page. Never the reporter, a contact or the complaint's text.
- Each notification's id derives from the decision's id and the addressee, each reminder's and
  escalation's from the notification's, so a redelivered decision or a check run twice records
  nothing new.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from schemas.base import HOSPITAL_TIME_ZONE, derive_event_id
from schemas.decision import Decision, DecisionKind, SubjectKind
from schemas.notification import NotificationStatus, NotificationUpdated
from services.common.addressees import DEPARTMENT_HEAD, Addressee, AddresseeDirectory, SendKey
from services.common.departments import DepartmentCatalogue

_NOTIFICATION_NAMESPACE = uuid.UUID("3b8e5d0c-9f41-5a27-8c6e-2d71f04a9b15")
URGENT_TARGETS = ("judicial_organs", "superior_health_authority")
"""Escalations whose unacknowledged notifications are alerted on."""


class Purpose(StrEnum):
    """Why a notification is sent: a decision, a follow-up of one, or a periodic mail."""

    DECISION = "decision"
    REMINDER = "reminder"
    SUPERIOR = "superior"
    DIGEST = "digest"
    MONTHLY_REPORT = "monthly_report"


class Marker(StrEnum):
    """What a decision's notification says of it: new, correcting an earlier one, or
    withdrawing it."""

    NEW = "new"
    CORRECTION = "correction"
    WITHDRAWAL = "withdrawal"


class Status(StrEnum):
    """Where a notification stands in the outbox."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Notification(BaseModel):
    """One message to one addressee, as the outbox keeps it."""

    model_config = ConfigDict(frozen=True)

    notification_id: uuid.UUID
    purpose: Purpose
    marker: Marker
    send_key: str
    rule_id: str
    case_id: str | None
    subject_id: str
    addressee: str
    """The addressee's key in the directory (``group:…``, ``head:…``)."""
    title: str
    body: str
    deadline: datetime
    within_hours: float
    created_at: datetime
    status: Status = Status.PENDING
    attempts: int = 0
    next_attempt_at: datetime
    claimed_until: datetime | None = None
    """A sender is sending it until then (another leaves it alone)."""
    delivered: tuple[str, ...] = ()
    """The channels (``email:<address>``, ``robot:<url>``) that took it already."""
    sent_at: datetime | None = None
    awaiting_ack: bool = False
    """Sent, asks for an acknowledgement, not acknowledged yet (a query field)."""
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    followed_up: tuple[Purpose, ...] = ()
    """The reminder and the superior's notification already recorded for it."""
    urgent: bool = False
    """An escalation to the judicial organs or the superior health authority."""
    acknowledges: uuid.UUID | None = None
    """The notification its acknowledge link acknowledges (a reminder's: the one it recalls)."""
    accused: tuple[str, ...] = ()
    """Whom the decision and its case accuse: never told, nor by a follow-up."""
    announced: bool = False
    """Its status is published on the notifications topic (a query field: what is not)."""

    @property
    def acknowledged_one(self) -> uuid.UUID:
        return self.acknowledges or self.notification_id

    @property
    def asks_for_ack(self) -> bool:
        informs = self.purpose in (Purpose.DIGEST, Purpose.MONTHLY_REPORT)
        return self.marker is not Marker.WITHDRAWAL and not informs


class CaseFacts(BaseModel):
    """What the notifier needs of a case: whose it is, whom it accuses, whether its deadline
    still runs (for the heads' digests)."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    revision: int
    responsible_department: str
    concerned_department: str | None
    accused_staff_id: str | None
    awaiting_finding: bool = False
    deadline: datetime | None = None


@dataclass(frozen=True)
class Known:
    """What is known of a decision's case and subject when it is notified."""

    case: CaseFacts | None
    staff_department: str | None


def notification_id(*parts: object) -> uuid.UUID:
    return uuid.uuid5(_NOTIFICATION_NAMESPACE, ":".join(str(part) for part in parts))


def send_key(decision: Decision) -> SendKey | None:
    """What the decision is, as far as whom to tell goes; None: nobody is told."""
    kind = decision.kind
    if kind is DecisionKind.ESCALATION and decision.escalate_to is not None:
        return f"escalation_{decision.escalate_to.value}"  # type: ignore[return-value]
    if kind is DecisionKind.PROMOTION_DECISION:
        # A refusal, or a correction of an earlier decision (which may have been one).
        refused = decision.allowed is False or decision.corrects is not None
        return "promotion_refused" if refused else None
    named: dict[DecisionKind, SendKey] = {
        DecisionKind.PROMOTION_BAR: "promotion_bar",
        DecisionKind.VENDOR_CUTOFF: "vendor_cutoff",
        DecisionKind.VENDOR_CUTOFF_LIFTED: "vendor_cutoff_lifted",
        DecisionKind.REMOVAL_ALERT: "removal_alert",
        DecisionKind.MEASURE: "measure",
        DecisionKind.NOTICE: "notice",
    }
    return named.get(kind)


def needs_case(decision: Decision, directory: AddresseeDirectory) -> bool:
    """A decision about a case cannot be addressed before the case is known (its department
    and whom it accuses); others are addressed with what is known."""
    key = send_key(decision)
    return (
        key is not None
        and key in directory.send
        and decision.subject_kind is SubjectKind.CASE
        and decision.case_id is not None
    )


def concerned_department(decision: Decision, known: Known) -> str | None:
    if decision.subject_kind is SubjectKind.DEPARTMENT:
        return decision.subject_id
    if decision.subject_kind is SubjectKind.CASE and known.case is not None:
        return known.case.responsible_department
    if decision.subject_kind is SubjectKind.STAFF:
        from_case = known.case.concerned_department if known.case is not None else None
        return from_case or known.staff_department
    return None


def accused(decision: Decision, known: Known) -> frozenset[str]:
    people = {decision.subject_id} if decision.subject_kind is SubjectKind.STAFF else set()
    if known.case is not None and known.case.accused_staff_id is not None:
        people.add(known.case.accused_staff_id)
    return frozenset(people)


def addressees(
    decision: Decision,
    known: Known,
    directory: AddresseeDirectory,
    catalogue: DepartmentCatalogue,
) -> tuple[SendKey | None, list[Addressee]]:
    """The send key and whom to tell, none of them accused by the decision or its case."""
    key = send_key(decision)
    if key is None or key not in directory.send:
        return None, []
    people = accused(decision, known)
    chosen: dict[str, Addressee] = {}
    for name in directory.send[key].to:
        if name == DEPARTMENT_HEAD:
            department = concerned_department(decision, known)
            first = (
                directory.head(department, catalogue)
                if department in directory.department_heads and department in catalogue.departments
                else directory.group(directory.heads_instead)
            )
        else:
            first = directory.group(name)
        found = not_accused(first, people, directory)
        if found is not None:
            chosen.setdefault(found.key, found)
    return key, list(chosen.values())


def not_accused(
    addressee: Addressee, people: frozenset[str], directory: AddresseeDirectory
) -> Addressee | None:
    """``addressee``, or the first along its ``instead`` chain with none of ``people`` among
    its members; None when every one holds one of them."""
    seen: set[str] = set()
    current: Addressee | None = addressee
    while current is not None and current.key not in seen:
        if not people & set(current.members):
            return current
        seen.add(current.key)
        current = directory.group(current.instead) if current.instead else None
    return None


def marker_of(decision: Decision) -> Marker:
    if decision.withdrawn:
        return Marker.WITHDRAWAL
    return Marker.CORRECTION if decision.corrects is not None else Marker.NEW


_MARKS = {Marker.NEW: "", Marker.CORRECTION: "【更正】", Marker.WITHDRAWAL: "【撤销】"}


def about(decision: Decision) -> str:
    what = decision.kind.label_zh
    if decision.escalate_to is not None:
        what += f"（{decision.escalate_to.label_zh}）"
    return what


def subject_line(decision: Decision) -> str:
    if decision.case_id is not None:
        return f"案件 {decision.case_id}"
    return f"{decision.subject_kind.label_zh} {decision.subject_id}"


def hospital_minute(moment: datetime) -> str:
    return moment.astimezone(HOSPITAL_TIME_ZONE).strftime("%Y-%m-%d %H:%M")


def content(
    decision: Decision, marker: Marker, action: str, deadline: datetime, desk_url: str
) -> list[str]:
    """What a notification of ``decision`` says, line by line: what, about whom, which rule,
    what to do by when, and where the case is on the desk. Nothing from the complaint."""
    if marker is Marker.WITHDRAWAL:
        action = "此前通知的决定已撤销，无需再办理"
    elif marker is Marker.CORRECTION:
        action = f"此前通知的决定已更正，请按本通知办理：{action}"
    lines = [
        f"事项：{about(decision)}",
        f"{'案件' if decision.case_id else decision.subject_kind.label_zh}："
        f"{decision.case_id or decision.subject_id}",
    ]
    if decision.case_id is not None:
        lines.append(f"{decision.subject_kind.label_zh}：{decision.subject_id}")
    lines += [
        f"规则：{decision.rule_id}（规则版本 {decision.rules_version}）",
        f"需办理：{action}",
        f"办理期限：{hospital_minute(deadline)}（北京时间）",
    ]
    if decision.case_id is not None:
        lines.append(f"案件页面：{desk_url.rstrip('/')}/cases/{decision.case_id}")
    return lines


def decision_notifications(
    decision: Decision,
    known: Known,
    directory: AddresseeDirectory,
    catalogue: DepartmentCatalogue,
    *,
    desk_url: str,
    now: datetime,
) -> list[Notification]:
    """The notifications a decision makes, one per addressee."""
    key, chosen = addressees(decision, known, directory, catalogue)
    if key is None or not chosen:
        return []
    sending = directory.send[key]
    marker = marker_of(decision)
    deadline = now + timedelta(hours=sending.within_hours)
    lines = content(decision, marker, sending.action_zh, deadline, desk_url)
    title = (
        f"【清廉】{_MARKS[marker]}{decision.rule_id} {about(decision)}：{subject_line(decision)}"
    )
    return [
        Notification(
            notification_id=notification_id(decision.event_id, addressee.key),
            purpose=Purpose.DECISION,
            marker=marker,
            send_key=key,
            rule_id=decision.rule_id,
            case_id=decision.case_id,
            subject_id=decision.subject_id,
            addressee=addressee.key,
            title=title,
            body="\n".join([f"收件：{addressee.name_zh}", *lines]),
            deadline=deadline,
            within_hours=sending.within_hours,
            created_at=now,
            next_attempt_at=now,
            urgent=key.removeprefix("escalation_") in URGENT_TARGETS,
            accused=tuple(sorted(accused(decision, known))),
        )
        for addressee in chosen
    ]


def follow_ups(
    sent: Notification,
    directory: AddresseeDirectory,
    catalogue: DepartmentCatalogue,
    *,
    now: datetime,
) -> tuple[Notification, ...]:
    """What an unacknowledged notification calls for at ``now``: a reminder to its addressee
    once its period has passed, its addressee's superior after another; both at once when a
    round finds both periods passed (the notifier was stopped), the reminder first."""
    if not sent.awaiting_ack or sent.sent_at is None or sent.purpose is not Purpose.DECISION:
        return ()
    period = timedelta(hours=sent.within_hours)
    due: list[Notification] = []
    if now >= sent.sent_at + period and not sent.followed_up:
        due.append(
            _follow_up(sent, Purpose.REMINDER, directory.by_key(sent.addressee, catalogue), now)
        )
    if now >= sent.sent_at + 2 * period and Purpose.SUPERIOR not in sent.followed_up:
        superior = directory.by_key(sent.addressee, catalogue).superior
        told = (
            None
            if superior is None
            else not_accused(directory.group(superior), frozenset(sent.accused), directory)
        )
        if told is not None and told.key != sent.addressee:  # else nobody above may be told
            due.append(_follow_up(sent, Purpose.SUPERIOR, told, now))
    return tuple(due)


def _follow_up(
    sent: Notification, purpose: Purpose, addressee: Addressee, now: datetime
) -> Notification:
    if purpose is Purpose.REMINDER:
        mark, first = "【提醒】", f"提醒：此通知发出后 {sent.within_hours:g} 小时仍未确认收到。"
    else:
        mark, first = "【督办】", f"督办：此通知发出后 {2 * sent.within_hours:g} 小时仍未确认收到。"
    body = sent.body.split("\n", 1)[1] if "\n" in sent.body else sent.body
    return sent.model_copy(
        update={
            "notification_id": notification_id(sent.notification_id, purpose.value),
            "purpose": purpose,
            "addressee": addressee.key,
            "title": sent.title.replace("【清廉】", f"【清廉】{mark}", 1),
            "body": "\n".join([f"收件：{addressee.name_zh}", first, body]),
            "created_at": now,
            "status": Status.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "claimed_until": None,
            "delivered": (),
            "sent_at": None,
            "awaiting_ack": False,
            "followed_up": (),
            "acknowledges": sent.notification_id,
            "announced": False,
        }
    )


_TOLD_AS_KEPT = (
    "notification_id",
    "send_key",
    "rule_id",
    "case_id",
    "subject_id",
    "addressee",
    "acknowledges",
    "asks_for_ack",
    "accused",
    "deadline",
    "sent_at",
)
"""What the notifications topic repeats of a notification as the outbox keeps it; never its
address, title or body."""


def update_of(notification: Notification, addressee_zh: str, now: datetime) -> NotificationUpdated:
    """What the notifications topic says of ``notification``: what it is about, whom it
    addresses by role or group, and its state."""
    status = NotificationStatus(notification.status.value)
    changed = notification.sent_at if status is NotificationStatus.SENT else None
    if status is NotificationStatus.PENDING:
        changed = notification.created_at
    return NotificationUpdated(
        **{name: getattr(notification, name) for name in _TOLD_AS_KEPT},
        event_id=derive_event_id("notifier", f"{notification.notification_id}:{status}"),
        purpose=notification.purpose.value,
        marker=notification.marker.value,
        addressee_zh=addressee_zh,
        status=status,
        recorded_at=notification.created_at,
        changed_at=changed or now,
    )


def retry_at(attempts: int, now: datetime, *, first_pause: float, longest_pause: float) -> datetime:
    """When a notification that failed ``attempts`` times is tried again: pauses double."""
    return now + timedelta(seconds=min(first_pause * 2 ** (attempts - 1), longest_pause))


def overdue_unacknowledged(pending: Sequence[Notification], now: datetime) -> int:
    return sum(1 for n in pending if n.awaiting_ack and now >= n.deadline)


def digest(
    department: str,
    head: Addressee,
    cases: Sequence[CaseFacts],
    unacknowledged: int,
    *,
    desk_url: str,
    now: datetime,
) -> Notification:
    """A department head's digest of the day: their department's cases whose deadline runs,
    the overdue and those due within 7 days, and how many notifications they have not
    acknowledged. A case against the head is not in it (nor counted)."""
    day = now.astimezone(HOSPITAL_TIME_ZONE).date()
    mine = sorted(
        (c for c in cases if c.awaiting_finding and c.accused_staff_id not in head.members),
        key=lambda c: (c.deadline or now, c.case_id),
    )
    overdue = [c.case_id for c in mine if c.deadline is not None and c.deadline < now]
    soon = [
        c.case_id
        for c in mine
        if c.deadline is not None and now <= c.deadline <= now + timedelta(days=7)
    ]
    lines = [
        f"收件：{head.name_zh}",
        f"调查中的案件：{len(mine)} 件",
        f"已逾期：{len(overdue)} 件{'：' + '、'.join(overdue) if overdue else ''}",
        f"7日内到期：{len(soon)} 件{'：' + '、'.join(soon) if soon else ''}",
        f"未确认的通知：{unacknowledged} 件",
        f"案件台：{desk_url.rstrip('/')}/cases?department={department}",
    ]
    return _informing(
        Purpose.DIGEST, department, head, f"【清廉】每日案件提示 {day.isoformat()}", lines, now
    )


def monthly_report_reminder(department: str, head: Addressee, *, now: datetime) -> Notification:
    """The reminder that last month's report is due by the 20th (004 §七(三))."""
    today = now.astimezone(HOSPITAL_TIME_ZONE).date()
    last = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    lines = [
        f"收件：{head.name_zh}",
        f"需办理：报送并确认 {last} 月度工作开展情况",
        f"办理期限：{today.strftime('%Y-%m')}-20（北京时间）",
    ]
    title = f"【清廉】月度工作开展情况 {last} 请于20日前报送"
    return _informing(Purpose.MONTHLY_REPORT, department, head, title, lines, now, key=last)


def hospital_day_key(now: datetime) -> str:
    return now.astimezone(HOSPITAL_TIME_ZONE).date().isoformat()


def informing_id(purpose: Purpose, head: Addressee, period: str) -> uuid.UUID:
    """A digest's (period: the day) or a report reminder's (the month reported) id."""
    return notification_id(purpose.value, head.key, period)


def _informing(
    purpose: Purpose,
    department: str,
    head: Addressee,
    title: str,
    lines: list[str],
    now: datetime,
    *,
    key: str | None = None,
) -> Notification:
    """A notification that informs and asks for no acknowledgement: one per head and day (a
    digest) or month (the report's reminder), whoever records it first."""
    return Notification(
        notification_id=informing_id(purpose, head, key or hospital_day_key(now)),
        purpose=purpose,
        marker=Marker.NEW,
        send_key=purpose.value,
        # No rule decides these; the seed passage they follow stands in its place.
        rule_id="004 §七(三)" if purpose is Purpose.MONTHLY_REPORT else "004 §四(三)1",
        case_id=None,
        subject_id=department,
        addressee=head.key,
        title=title,
        body="\n".join(lines),
        deadline=now,
        within_hours=24,
        created_at=now,
        next_attempt_at=now,
    )
