"""Cases: who handles them, and how each event changes them. Pure: no Kafka, no database, no
clock (``now`` is passed in).

Who handles what is data (services/router/routing.py loads and checks it); this module applies
it. Each function takes a case as it stands and returns it after one change, with one more
revision and the change in its history.
"""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Self

from schemas.base import hospital_day
from schemas.case import (
    CaseChange,
    CaseKind,
    CaseState,
    CaseUpdated,
    Department,
    HistoryEntry,
    derive_case_id,
    derive_output_event_id,
)
from schemas.case_action import TAKEN_IN, CaseActionKind, CaseActionReceived
from schemas.complaint import ComplaintCategory, ComplaintChannel, ComplaintReceived
from schemas.finding import InvestigationFindingReceived
from schemas.follow_up import ReporterAddition, ReporterReply
from schemas.lead import Lead
from services.router.routing import Routing

ROUTER = "router"
"""Who the history names for the router's own changes."""

Update = InvestigationFindingReceived | CaseActionReceived | ReporterAddition | ReporterReply
"""An event that changes an open case."""


# --- Opening a case ---------------------------------------------------------------------------


_NAMED_ALIKE = {"category", "channel", "accused_staff_id", "received_at"}
"""What a complaint and a lead give an opening under the opening's own names."""
_NAMED_ALIKE_IN_A_LEAD = {*_NAMED_ALIKE, "source_event_id", "concerned_department", "company_code"}
_KEPT_ON_THE_CASE = (
    "kind",
    "category",
    "channel",
    "accused_staff_id",
    "concerned_department",
    "company_code",
)


@dataclass(frozen=True)
class Opening:
    """What opens a case, whichever event it came from."""

    source_event_id: uuid.UUID
    kind: CaseKind
    category: ComplaintCategory | None
    channel: ComplaintChannel | None
    accused_staff_id: str | None
    concerned_department: str | None
    company_code: str | None
    received_at: datetime
    by: str
    note: str | None = None

    @classmethod
    def of_complaint(cls, complaint: ComplaintReceived) -> Self:
        return cls(
            **complaint.model_dump(include=_NAMED_ALIKE),
            source_event_id=complaint.event_id,
            kind=CaseKind.COMPLAINT,
            concerned_department=complaint.accused_department,
            company_code=None,
            by=complaint.source_system,
        )

    @classmethod
    def of_lead(cls, lead: Lead) -> Self:
        named = lead.model_dump(include=_NAMED_ALIKE_IN_A_LEAD)
        return cls(**named, kind=lead.case_kind, by=lead.rule_id, note=lead.explanation_zh)

    def case_fields(self) -> dict[str, Any]:
        """What the case it opens records of it as it is."""
        return {name: getattr(self, name) for name in _KEPT_ON_THE_CASE}

    @property
    def case_id(self) -> str:
        return derive_case_id(self.source_event_id)

    @property
    def related_key(self) -> str | None:
        """Complaints sharing this key may be one case (same staff member, same category)."""
        if self.kind is not CaseKind.COMPLAINT or self.accused_staff_id is None:
            return None
        return f"{self.accused_staff_id}|{self.category}"


@dataclass(frozen=True)
class Assignment:
    responsible: Department
    cooperating: tuple[Department, ...]
    handlers: tuple[str, ...]
    conflict_note: str | None

    def case_fields(self) -> dict[str, Any]:
        """The case's departments and handlers."""
        return {
            "responsible_department": self.responsible,
            "cooperating_departments": self.cooperating,
            "handlers": self.handlers,
        }


def assign(
    routing: Routing,
    *,
    responsible: str,
    cooperating: Iterable[str],
    accused_staff_id: str | None,
) -> Assignment:
    """Departments and handlers, keeping the accused out of their own case."""
    conflicted = routing.headed_by(accused_staff_id)
    conflict_note = None
    if responsible in conflicted:
        redirected = routing.table.conflict_of_interest_department
        conflict_note = (
            f"利益冲突：被反映人为{routing.catalogue.department(responsible).name_zh}负责人，"
            f"改由{routing.catalogue.department(redirected).name_zh}负责"
        )
        responsible = redirected
    kept = [
        code
        for code in dict.fromkeys(cooperating)
        if code != responsible and code not in conflicted
    ]
    codes = [responsible, *kept]
    handlers = dict.fromkeys(
        head
        for head in (routing.catalogue.departments[code].head_staff_id for code in codes)
        if head != accused_staff_id
    )
    return Assignment(
        responsible=routing.catalogue.department(responsible),
        cooperating=tuple(routing.catalogue.department(code) for code in kept),
        handlers=tuple(handlers),
        conflict_note=conflict_note,
    )


def open_case(opening: Opening, routing: Routing, *, now: datetime) -> CaseUpdated:
    """Open the case an event starts, and assign it from the routing table."""
    table = routing.table
    route = table.route_for(opening.kind, opening.category)
    cooperating = list(route.cooperating)
    basis = [route.basis]
    if route.with_concerned_department and opening.concerned_department in (
        routing.catalogue.departments
    ):
        cooperating.append(opening.concerned_department)
    for channel_route in table.channel:
        if channel_route.channel == opening.channel:
            cooperating += channel_route.add_cooperating
            basis.append(channel_route.basis)
    assignment = assign(
        routing,
        responsible=route.responsible,
        cooperating=cooperating,
        accused_staff_id=opening.accused_staff_id,
    )
    entry = _EntryMaker(opening.source_event_id, opening.received_at)
    history = (
        entry(CaseChange.OPENED, CaseState.OPENED, by=opening.by, note=opening.note),
        entry(
            CaseChange.ASSIGNED,
            CaseState.ASSIGNED,
            by=ROUTER,
            department=assignment.responsible.code,
            note=assignment.conflict_note,
        ),
    )
    case_id = opening.case_id
    return CaseUpdated(
        event_id=derive_output_event_id("case", case_id, 1),
        case_id=case_id,
        revision=1,
        **opening.case_fields(),
        **assignment.case_fields(),
        source_event_ids=(opening.source_event_id,),
        state=CaseState.ASSIGNED,
        deadline=opening.received_at + timedelta(days=route.investigation_days),
        routing_basis="；".join(basis),
        routing_table_version=routing.version,
        opened_at=opening.received_at,
        history=history,
        updated_at=now,
    )


def is_related(case: CaseUpdated, opening: Opening, routing: Routing) -> bool:
    """A complaint belongs to an open case against the same staff member in the same category
    received within the window (by event time, so a replay decides the same way), unless the
    case is full: every change rewrites the case, so a case may not grow without bound (a
    staff member with many low satisfaction ratings)."""
    window = timedelta(days=routing.table.related_complaint_window_days)
    return (
        opening.related_key is not None
        and case.kind is CaseKind.COMPLAINT
        and case.state is not CaseState.CLOSED
        and case.accused_staff_id == opening.accused_staff_id
        and case.category == opening.category
        and abs(opening.received_at - case.opened_at) <= window
        and len(case.source_event_ids) < routing.table.events_per_case_at_most
    )


def link(case: CaseUpdated, opening: Opening, *, now: datetime) -> CaseUpdated:
    """Add a related complaint to an open case instead of opening another."""
    entry = _EntryMaker(opening.source_event_id, opening.received_at)
    return _changed(
        case,
        entry(CaseChange.LINKED, case.state, by=opening.by, note=opening.note),
        now=now,
        source_event_ids=(*case.source_event_ids, opening.source_event_id),
    )


def place(
    holder: CaseUpdated | None, openings: Sequence[Opening], routing: Routing, *, now: datetime
) -> list[CaseUpdated]:
    """Where openings that may be related (one staff member, one category; or one event) go, in
    their order: each is linked to the open case holding their key when related to it, or
    opens a case that then holds the key. The cases they leave, the holder first (changed or
    not); an opening already in the holder changes nothing (a redelivery, a replay)."""
    cases = [] if holder is None else [holder]
    for opening in openings:
        current = cases[-1] if cases else None
        if current is not None and has_applied(current, opening.source_event_id):
            continue
        if current is not None and is_related(current, opening, routing):
            cases[-1] = link(current, opening, now=now)
        else:
            cases.append(open_case(opening, routing, now=now))
    return cases


# --- Changes to an open case ------------------------------------------------------------------


def has_applied(case: CaseUpdated, event_id: uuid.UUID) -> bool:
    """Whether an event already changed the case: a redelivery or a replay changes nothing."""
    return any(entry.source_event_id == event_id for entry in case.history)


def record_finding(
    case: CaseUpdated, finding: InvestigationFindingReceived, *, now: datetime
) -> CaseUpdated:
    entry = _EntryMaker(finding.event_id, finding.occurred_at)
    if case.state is CaseState.CLOSED:
        return _refused(case, entry, finding.source_system, "案件已结案，调查结论未计入", now)
    # Days, not instants: a department often records only the day of its finding (midnight),
    # and a finding on the day the case came in is possible; one dated earlier is a mistake.
    finding_day, received_day = hospital_day(finding.occurred_at), hospital_day(case.opened_at)
    if finding_day < received_day:
        reason = f"调查结论日期 {finding_day} 早于案件受理日期 {received_day}，调查结论未计入"
        return _refused(case, entry, finding.source_system, reason, now)
    confirmed = "、".join(category.label_zh for category in finding.confirmed_categories)
    note = f"查实：{confirmed}" if finding.substantiated else "经调查未查实"
    return _changed(
        case,
        entry(
            CaseChange.FINDING_RECORDED,
            CaseState.FINDING_RECORDED,
            by=finding.source_system,
            note=note,
        ),
        now=now,
    )


def take_action(
    case: CaseUpdated, action: CaseActionReceived, routing: Routing, *, now: datetime
) -> CaseUpdated:
    """Apply the conduct office's action, or record why it was refused."""
    entry = _EntryMaker(action.event_id, action.occurred_at)
    by = action.actor_staff_id

    def refuse(reason: str) -> CaseUpdated:
        return _refused(case, entry, by, f"{action.action.label_zh}被拒绝：{reason}", now)

    if case.state is CaseState.CLOSED:
        return refuse("案件已结案")
    if action.action is CaseActionKind.START_INVESTIGATION:
        if case.state not in TAKEN_IN[action.action]:
            return refuse(f"案件状态为{case.state.label_zh}")
        return _changed(
            case,
            entry(CaseChange.INVESTIGATION_STARTED, CaseState.INVESTIGATING, by=by),
            now=now,
        )
    if action.action is CaseActionKind.CLOSE:
        if case.state not in TAKEN_IN[action.action]:
            return refuse("尚无调查结论")
        return _changed(
            case, entry(CaseChange.CLOSED, CaseState.CLOSED, by=by, note=action.reason), now=now
        )
    to_department = action.to_department or ""
    if to_department not in routing.catalogue.departments:
        return refuse(f"未知科室 {to_department}")
    if to_department == case.responsible_department.code:
        return refuse("已由该科室负责")
    if to_department in routing.headed_by(case.accused_staff_id):
        return refuse("被反映人为该科室负责人（利益冲突）")
    assignment = assign(
        routing,
        responsible=to_department,
        cooperating=[department.code for department in case.cooperating_departments],
        accused_staff_id=case.accused_staff_id,
    )
    return _changed(
        case,
        entry(
            CaseChange.REASSIGNED,
            case.state,
            by=by,
            department=to_department,
            note=action.reason,
        ),
        now=now,
        **assignment.case_fields(),
    )


def add_reporter_information(
    case: CaseUpdated, addition: ReporterAddition, *, now: datetime
) -> CaseUpdated:
    # The text stays with intake's follow-up; the history only says that it came.
    entry = _EntryMaker(addition.event_id, addition.received_at)
    return _changed(case, entry(CaseChange.REPORTER_ADDED, case.state, by="reporter"), now=now)


def note_reply(case: CaseUpdated, reply: ReporterReply, *, now: datetime) -> CaseUpdated:
    entry = _EntryMaker(reply.event_id, reply.sent_at)
    return _changed(case, entry(CaseChange.REPORTER_REPLIED, case.state, by=reply.sent_by), now=now)


def apply(case: CaseUpdated, update: Update, routing: Routing, *, now: datetime) -> CaseUpdated:
    """The case after ``update``; the same case if the update changed it before (a redelivery
    or a replay changes nothing)."""
    if has_applied(case, update.event_id):
        return case
    if isinstance(update, InvestigationFindingReceived):
        return record_finding(case, update, now=now)
    if isinstance(update, CaseActionReceived):
        return take_action(case, update, routing, now=now)
    if isinstance(update, ReporterAddition):
        return add_reporter_information(case, update, now=now)
    return note_reply(case, update, now=now)


def happened_at(update: Update) -> datetime:
    """When the update happened: the order in which updates that waited for a case apply."""
    if isinstance(update, ReporterAddition):
        return update.received_at
    if isinstance(update, ReporterReply):
        return update.sent_at
    return update.occurred_at


# --- Helpers ----------------------------------------------------------------------------------


class _EntryMaker:
    """Makes the history entries of one source event."""

    def __init__(self, source_event_id: uuid.UUID, at: datetime) -> None:
        self.source_event_id = source_event_id
        self.at = at

    def __call__(
        self,
        change: CaseChange,
        state: CaseState,
        *,
        by: str,
        department: str | None = None,
        note: str | None = None,
    ) -> HistoryEntry:
        return HistoryEntry(
            change=change,
            state=state,
            at=self.at,
            by=by,
            source_event_id=self.source_event_id,
            department=department,
            note=note,
        )


def _refused(
    case: CaseUpdated, entry: _EntryMaker, by: str, reason: str, now: datetime
) -> CaseUpdated:
    return _changed(case, entry(CaseChange.REFUSED, case.state, by=by, note=reason), now=now)


def _changed(
    case: CaseUpdated, entry: HistoryEntry, *, now: datetime, **changes: object
) -> CaseUpdated:
    revision = case.revision + 1
    return case.model_copy(
        update={
            **changes,
            "event_id": derive_output_event_id("case", case.case_id, revision),
            "revision": revision,
            "state": entry.state,
            "history": (*case.history, entry),
            "updated_at": now,
        }
    )
