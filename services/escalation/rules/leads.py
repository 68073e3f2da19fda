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
from services.escalation.rulebook import RuleBook, normalise_text

REP_VISIT = "R-REP-VISIT"
SATISFACTION_LEAD = "R-SATISFACTION-LEAD"
RECTIFY = "R-RECTIFY"
SURRENDER = "R-SURRENDER"


def surrendered_in_time(surrender: RedEnvelopeSurrenderReceived, book: RuleBook) -> bool:
    """Handed in within the window: a voluntary surrender (主动上缴), not a breach."""
    return (surrender.surrendered_on - surrender.received_on).days <= book.surrender.window_days


def visit_breaches(visit: VisitorLogReceived, book: RuleBook) -> list[tuple[str, str]]:
    """What a visit breaks, each as (Chinese, English)."""
    rule = book.rep_visit
    started = visit.started_at.astimezone(HOSPITAL_TIME_ZONE)
    breaches = []
    if visit.appointment_id is None:
        breaches.append(("无预约", "no appointment"))
    if started.isoweekday() not in rule.allowed_weekdays:
        breaches.append(("非接待日", "not on a visiting day"))
    if not rule.allowed_from <= started.time().replace(tzinfo=None) < rule.allowed_until:
        breaches.append(
            (
                f"不在接待时间（{rule.allowed_from:%H:%M}–{rule.allowed_until:%H:%M}）",
                f"outside visiting hours ({rule.allowed_from:%H:%M}–{rule.allowed_until:%H:%M})",
            )
        )
    if visit.place_kind in rule.clinical_place_kinds:
        breaches.append(
            (f"出现在{visit.place_kind.label_zh}，应驱离", f"in a {visit.place_kind}: remove")
        )
    elif visit.place_kind not in rule.allowed_place_kinds:
        breaches.append((f"不在指定地点（{visit.place_kind.label_zh}）", "not at an allowed place"))
    return breaches


def visit_lead(visit: VisitorLogReceived, book: RuleBook) -> Lead | None:
    """R-REP-VISIT: a visit that breaks 定时定点定人/有预约有流程有记录 opens a case for 医务部."""
    breaches = visit_breaches(visit, book)
    if not breaches:
        return None
    return _lead(
        visit,
        book,
        rule_id=REP_VISIT,
        case_kind=CaseKind.REP_VISIT,
        accused_staff_id=visit.host_staff_id,
        concerned_department=visit.department,
        company_code=visit.company_code,
        explanation_zh=(
            f"医药代表{visit.rep_name}（{visit.company_name}）来访违反“三定三有”："
            f"{'、'.join(zh for zh, _ in breaches)}。"
        ),
        explanation_en=(
            f"Rep {visit.rep_id} of company {visit.company_code} visited against the visiting "
            f"rules: {', '.join(en for _, en in breaches)}."
        ),
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
    rule = book.satisfaction_lead
    named = lead_category(rating.comment, book)
    low = rating.score <= rule.low_score_at_most
    if named is None and not low:
        return None
    category = named or rule.low_score_category
    reason_zh = f"评价内容涉及“{category.label_zh}”" if named else f"评分{rating.score}分"
    reason_en = f"the comment names {category}" if named else f"the score is {rating.score}"
    return _lead(
        rating,
        book,
        rule_id=SATISFACTION_LEAD,
        case_kind=CaseKind.COMPLAINT,
        category=category,
        channel=ComplaintChannel.SATISFACTION_LEAD,
        accused_staff_id=rating.staff_id,
        concerned_department=rating.department,
        explanation_zh=(
            f"{rating.touchpoint.label_zh}环节即时满意度评价{reason_zh}，"
            f"作为“{category.label_zh}”线索立案核查。"
        ),
        explanation_en=(
            f"A satisfaction rating at {rating.touchpoint} is a lead because {reason_en}; "
            f"a {category} case is opened."
        ),
    )


def rectification_lead(status: RectificationStatusReceived, book: RuleBook) -> Lead | None:
    """R-RECTIFY: perfunctory, ineffective or refused rectification opens a case."""
    if status.status not in book.rectify.opens_case:
        return None
    return _lead(
        status,
        book,
        rule_id=RECTIFY,
        case_kind=CaseKind.RECTIFICATION,
        concerned_department=status.department,
        explanation_zh=(
            f"科室{status.department}整改事项“{status.item}”被认定为{status.status.label_zh}，"
            "立案并予通报批评。"
        ),
        explanation_en=(
            f"Department {status.department}'s rectification of {status.item!r} was found "
            f"{status.status}: a case is opened and a criticism notice follows."
        ),
    )


def late_surrender_lead(surrender: RedEnvelopeSurrenderReceived, book: RuleBook) -> Lead | None:
    """R-SURRENDER: a red envelope handed in after the window opens a red-envelope case."""
    if surrendered_in_time(surrender, book):
        return None
    days = (surrender.surrendered_on - surrender.received_on).days
    window = book.surrender.window_days
    return _lead(
        surrender,
        book,
        rule_id=SURRENDER,
        case_kind=CaseKind.COMPLAINT,
        category=ComplaintCategory.RED_ENVELOPE,
        accused_staff_id=surrender.staff_id,
        explanation_zh=(
            f"{surrender.staff_id}收到红包{days}日后才上缴，超过{window}日，"
            "不视为主动上缴，立案核查。"
        ),
        explanation_en=(
            f"{surrender.staff_id} handed in a red envelope {days} days after receiving it, "
            f"beyond the {window}-day window: not a voluntary surrender; a case is opened."
        ),
    )


def _lead(event: Event, book: RuleBook, *, rule_id: str, **decided: object) -> Lead:
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
        }
    )
