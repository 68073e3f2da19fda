"""Conduct files (医德档案): what escalation knows of a staff member, a company, a department
or a case, kept as the events themselves so that the rules can be applied again to the whole
file whenever anything arrives, in any order. Pure.
"""

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import Field

from schemas.base import Contract, Event
from schemas.case import CaseUpdated
from schemas.complaint import ComplaintReceived
from schemas.decision import Decision, SubjectKind
from schemas.finding import InvestigationFindingReceived
from schemas.prescription import PrescriptionRankingReceived
from schemas.promotion import PromotionApplicationReceived
from schemas.rectification import RectificationStatusReceived
from schemas.surrender import RedEnvelopeSurrenderReceived
from schemas.visitor_log import VisitorLogReceived
from services.escalation import wording
from services.escalation.outcomes import Outcome
from services.escalation.rulebook import RuleBook

FileEvent = Annotated[
    ComplaintReceived
    | InvestigationFindingReceived
    | PromotionApplicationReceived
    | PrescriptionRankingReceived
    | RedEnvelopeSurrenderReceived
    | VisitorLogReceived
    | RectificationStatusReceived,
    Field(discriminator="event_type"),
]

E = TypeVar("E", bound=Event)


class ConductFile(Contract):
    subject_kind: SubjectKind
    subject_id: str
    events: tuple[FileEvent, ...] = ()
    case: CaseUpdated | None = None
    """For a case: the case as the router last published it."""

    @classmethod
    def of_case(cls, case: CaseUpdated) -> "ConductFile":
        return cls(subject_kind=SubjectKind.CASE, subject_id=case.case_id)

    @property
    def key(self) -> str:
        return subject_key(self.subject_kind, self.subject_id)

    def of_type(self, model: type[E]) -> list[E]:
        """This file's events of one type, in event-time order."""
        return sorted(
            (event for event in self.events if isinstance(event, model)),
            key=lambda event: (event.occurred_at, str(event.event_id)),
        )

    def standing_findings(self) -> list[InvestigationFindingReceived]:
        """The finding that stands for each case: the latest recorded; an earlier one was
        revised by it."""
        latest: dict[str, InvestigationFindingReceived] = {}
        for finding in self.of_type(InvestigationFindingReceived):
            current = latest.get(finding.case_id)
            if current is None or (finding.occurred_at, finding.received_at) >= (
                current.occurred_at,
                current.received_at,
            ):
                latest[finding.case_id] = finding
        return sorted(latest.values(), key=lambda finding: (finding.occurred_at, finding.case_id))


def subject_key(kind: SubjectKind, subject_id: str) -> str:
    return f"{kind}:{subject_id}"


def subjects_of(event: FileEvent) -> list[ConductFile]:
    """The (blank) files an event belongs in: of the staff members, company or department
    it concerns."""
    match event:
        case ComplaintReceived(accused_staff_id=staff):
            wanted = [(SubjectKind.STAFF, staff)]
        case InvestigationFindingReceived():
            wanted = [(SubjectKind.STAFF, staff) for staff in event.staff_ids]
            wanted.append((SubjectKind.COMPANY, event.company_code))
        case VisitorLogReceived():
            wanted = [(SubjectKind.COMPANY, event.company_code)]
        case RectificationStatusReceived():
            wanted = [(SubjectKind.DEPARTMENT, event.department)]
        case _:  # promotion applications, prescription rankings, surrenders
            wanted = [(SubjectKind.STAFF, event.staff_id)]
    return [ConductFile(subject_kind=kind, subject_id=id_) for kind, id_ in wanted if id_]


# --- Decisions ----------------------------------------------------------------------------------

_DECISION_NAMESPACE = uuid.UUID("2b9f5f0e-3c1d-5e6a-8f7b-9d0c1e2f3a4b")
_NOT_CONTENT = {"event_id", "decided_at"}


def decide(
    book: RuleBook,
    *,
    rule_id: str,
    key: str,
    subject: ConductFile,
    as_of: datetime,
    sources: Iterable[Event],
    facts: Mapping[str, object],
    explanation_zh: str,
    explanation_en: str,
    now: datetime,
    **fields: Any,
) -> Decision:
    """A decision of ``rule_id`` about ``subject``, its id derived from what it says."""
    draft = Decision.model_validate(
        {
            **fields,
            "event_id": uuid.UUID(int=0),
            "key": f"{rule_id}:{key}",
            "rule_id": rule_id,
            "rules_version": book.version,
            "subject_kind": subject.subject_kind,
            "subject_id": subject.subject_id,
            "as_of": as_of,
            "source_event_ids": tuple(sorted({event.event_id for event in sources}, key=str)),
            "facts": {name: str(value) for name, value in facts.items()},
            "explanation_zh": explanation_zh,
            "explanation_en": explanation_en,
            "decided_at": now,
        }
    )
    return _with_id(draft)


_DECISION_FIELDS = (
    "case_id",
    "escalate_to",
    "measure",
    "allowed",
    "in_force_from",
    "in_force_until",
)
"""Fields of a decision that an outcome gives by an attribute of the same name."""


def decision_of(outcome: Outcome, file: ConductFile, book: RuleBook, *, now: datetime) -> Decision:
    """The decision ``outcome`` stands for on ``file``, worded."""
    said = wording.said(outcome, file.subject_id)
    fields = {name: getattr(outcome, name, None) for name in _DECISION_FIELDS}
    return decide(
        book,
        rule_id=outcome.rule_id,
        key=outcome.key,
        kind=outcome.kind,
        subject=file,
        as_of=outcome.as_of,
        sources=outcome.sources,
        facts=outcome.facts,
        explanation_zh=said.zh,
        explanation_en=said.en,
        now=now,
        **{name: value for name, value in fields.items() if value is not None},
    )


def _with_id(decision: Decision) -> Decision:
    content = decision.model_dump_json(exclude=_NOT_CONTENT)
    return decision.model_copy(update={"event_id": uuid.uuid5(_DECISION_NAMESPACE, content)})


def same_decision(first: Decision, second: Decision) -> bool:
    """Whether two decisions say the same, whenever they were made and whatever they correct."""
    ignored = {*_NOT_CONTENT, "corrects", "rules_version"}
    return first.model_dump(exclude=ignored) == second.model_dump(exclude=ignored)


def reconcile(
    emitted: Mapping[str, Decision], fresh: Sequence[Decision], *, now: datetime
) -> list[Decision]:
    """What to publish so that the published decisions come to say what ``fresh`` says.

    New decisions are published; a changed one is published as a correction of the one
    before; one that no longer holds is published again, withdrawn. Nothing changes silently.
    """
    published = []
    fresh_keys = set()
    for decision in fresh:
        fresh_keys.add(decision.key)
        before = emitted.get(decision.key)
        if before is not None and not before.withdrawn and same_decision(before, decision):
            continue
        if before is not None:
            decision = _with_id(decision.model_copy(update={"corrects": before.event_id}))
        published.append(decision)
    for key, before in emitted.items():
        if key in fresh_keys or before.withdrawn:
            continue
        said = wording.withdrawn(before)
        withdrawal = {
            "withdrawn": True,
            "corrects": before.event_id,
            "decided_at": now,
            "explanation_zh": said.zh,
            "explanation_en": said.en,
        }
        published.append(_with_id(before.model_copy(update=withdrawal)))
    return published
