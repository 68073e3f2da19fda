"""Rules that turn an event into a lead (线索) for the router to open a case. Pure.

- R-REP-VISIT (000 §六(十五)): a rep visit without an appointment, outside the allowed days,
  hours or places, or in a clinical area.
- R-SATISFACTION-LEAD (000 §四(七)): a low score, or a comment naming gifts, cash, kickbacks
  or appointment scalping.
- R-RECTIFY (004 §七(二)): a rectification that is perfunctory, ineffective or refused.
- R-SURRENDER (000 §四(七)): a red envelope handed in after the window is not a voluntary
  surrender; it is investigated as a red-envelope complaint.
"""

from schemas.base import HOSPITAL_TIME_ZONE, Event
from schemas.case import CaseKind, derive_output_event_id
from schemas.complaint import ComplaintCategory, ComplaintChannel
from schemas.lead import Lead
from schemas.rectification import RectificationStatusReceived
from schemas.satisfaction import SatisfactionReceived
from schemas.surrender import RedEnvelopeSurrenderReceived
from schemas.visitor_log import VisitorLogReceived
from services.escalation import wording
from services.escalation.outcomes import (
    RECTIFY,
    REP_VISIT,
    SATISFACTION_LEAD,
    SURRENDER,
    VisitBreach,
)
from services.escalation.rulebook import RuleBook, normalise_text


def surrendered_in_time(surrender: RedEnvelopeSurrenderReceived, book: RuleBook) -> bool:
    """Handed in within the window: a voluntary surrender (主动上缴), not a breach."""
    return (surrender.surrendered_on - surrender.received_on).days <= book.surrender.window_days


def visit_breaches(visit: VisitorLogReceived, book: RuleBook) -> list[VisitBreach]:
    """What a visit breaks."""
    rule = book.rep_visit
    started = visit.started_at.astimezone(HOSPITAL_TIME_ZONE)
    breaches = []
    if visit.appointment_id is None:
        breaches.append(VisitBreach.NO_APPOINTMENT)
    if started.isoweekday() not in rule.allowed_weekdays:
        breaches.append(VisitBreach.NOT_A_VISITING_DAY)
    if not rule.allowed_from <= started.time().replace(tzinfo=None) < rule.allowed_until:
        breaches.append(VisitBreach.OUTSIDE_HOURS)
    if visit.place_kind in rule.clinical_place_kinds:
        breaches.append(VisitBreach.IN_A_CLINICAL_PLACE)
    elif visit.place_kind not in rule.allowed_place_kinds:
        breaches.append(VisitBreach.NOT_AN_ALLOWED_PLACE)
    return breaches


def visit_lead(visit: VisitorLogReceived, book: RuleBook) -> Lead | None:
    """R-REP-VISIT: a visit that breaks 定时定点定人/有预约有流程有记录 opens a case for 医务部."""
    breaches = visit_breaches(visit, book)
    if not breaches:
        return None
    said = [wording.breach(breach, visit, book.rep_visit) for breach in breaches]
    return _lead(
        visit,
        book,
        wording.visit_lead(visit, said),
        rule_id=REP_VISIT,
        case_kind=CaseKind.REP_VISIT,
        accused_staff_id=visit.host_staff_id,
        concerned_department=visit.department,
        company_code=visit.company_code,
    )


def lead_category(comment: str | None, book: RuleBook) -> ComplaintCategory | None:
    """The category whose keyword a comment names first, if any."""
    if comment is None:
        return None
    text = normalise_text(comment)
    for group in book.satisfaction_lead.keywords:
        if any(word in text for word in group.words):
            return group.category
    return None


def satisfaction_lead(rating: SatisfactionReceived, book: RuleBook) -> Lead | None:
    """R-SATISFACTION-LEAD: a low score or a comment naming gifts, cash, kickbacks or scalping
    becomes a lead and opens a complaint case."""
    named = lead_category(rating.comment, book)
    if named is None and rating.score > book.satisfaction_lead.low_score_at_most:
        return None
    category = named or book.satisfaction_lead.low_score_category
    return _lead(
        rating,
        book,
        wording.satisfaction_lead(rating, category, named=named is not None),
        rule_id=SATISFACTION_LEAD,
        case_kind=CaseKind.COMPLAINT,
        category=category,
        channel=ComplaintChannel.SATISFACTION_LEAD,
        accused_staff_id=rating.staff_id,
        concerned_department=rating.department,
    )


def rectification_lead(status: RectificationStatusReceived, book: RuleBook) -> Lead | None:
    """R-RECTIFY: perfunctory, ineffective or refused rectification opens a case."""
    if status.status not in book.rectify.opens_case:
        return None
    return _lead(
        status,
        book,
        wording.rectification_lead(status),
        rule_id=RECTIFY,
        case_kind=CaseKind.RECTIFICATION,
        concerned_department=status.department,
    )


def late_surrender_lead(surrender: RedEnvelopeSurrenderReceived, book: RuleBook) -> Lead | None:
    """R-SURRENDER: a red envelope handed in after the window opens a red-envelope case."""
    if surrendered_in_time(surrender, book):
        return None
    days = (surrender.surrendered_on - surrender.received_on).days
    return _lead(
        surrender,
        book,
        wording.late_surrender_lead(surrender, days=days, window=book.surrender.window_days),
        rule_id=SURRENDER,
        case_kind=CaseKind.COMPLAINT,
        category=ComplaintCategory.RED_ENVELOPE,
        accused_staff_id=surrender.staff_id,
    )


def lead_of(event: Event, book: RuleBook) -> Lead | None:
    """The lead an event makes, if any."""
    match event:
        case VisitorLogReceived():
            return visit_lead(event, book)
        case SatisfactionReceived():
            return satisfaction_lead(event, book)
        case RectificationStatusReceived():
            return rectification_lead(event, book)
        case RedEnvelopeSurrenderReceived():
            return late_surrender_lead(event, book)
    return None


def _lead(
    event: Event, book: RuleBook, said: wording.Words, *, rule_id: str, **decided: object
) -> Lead:
    return Lead.model_validate(
        {
            **decided,
            "event_id": derive_output_event_id("lead", rule_id, event.event_id),
            "source_event_id": event.event_id,
            "source_event_type": getattr(event, "event_type", type(event).__name__),
            "rule_id": rule_id,
            "rules_version": book.version,
            "occurred_at": event.occurred_at,
            "received_at": event.received_at,
            "explanation_zh": said.zh,
            "explanation_en": said.en,
        }
    )
