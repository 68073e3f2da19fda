"""The action forms of the case page, read into what intake accepts from any system. Pure.

Each action travels as an ordinary submission of source system ``desk`` (the desk's API key)
in the name of the signed-in person (``actor_staff_id``), with ``source_ref`` made from the
form's one-time token: a form sent twice is one event, as a retried send from any system is.
The contracts' own models check the values, so a form is refused for what intake would
refuse, naming the field.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from pydantic import TypeAdapter, ValidationError

from schemas.base import HOSPITAL_TIME_ZONE, derive_event_id
from schemas.case import CaseUpdated
from schemas.case_action import CaseActionKind, CaseActionSubmission
from schemas.finding import InvestigationFindingSubmission
from schemas.follow_up import FollowUpText
from services.desk.access import ActionKind

SOURCE_SYSTEM = "desk"
CASE_ACTION_PATH = "/v1/case-actions"
FINDING_PATH = "/v1/investigation-findings"
REPLY_PATH = "/v1/follow-up/replies"

FIELD_LABELS = {
    "to_department": "改派至 Department",
    "reason": "理由 Reason",
    "substantiated": "是否查实 Substantiated",
    "confirmed_categories": "查实类别 Confirmed categories",
    "staff_ids": "涉及人员工号 Staff numbers",
    "confirmed_amount_cny": "查实金额 Amount (CNY)",
    "severe_social_impact": "造成严重社会影响 Severe social impact",
    "suspected_crime": "涉嫌犯罪 Suspected crime",
    "company_code": "企业代码 Company code",
    "company_name": "企业名称 Company name",
    "summary": "调查结论摘要 Summary",
    "finding_day": "结论日期 Date of the finding",
    "text": "答复内容 Reply",
    "form": "表单 Form",
}

_REPLY_TEXT: TypeAdapter[str] = TypeAdapter(FollowUpText)


class FormError(ValueError):
    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        super().__init__("; ".join(field for field, _ in problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Outgoing:
    """What is sent to intake for one form."""

    path: str
    body: dict[str, Any]
    event_id: Any
    """The event's id when intake derives it from ``source_ref`` (actions and findings)."""
    reply_text: str | None = None


Form = Mapping[str, Sequence[str]]
"""A posted form: each field's values (a checkbox group has several)."""


def one(form: Form, name: str) -> str:
    values = form.get(name) or [""]
    return values[0].strip()


def source_ref(form_token: str) -> str:
    return f"desk-{form_token}"


def outgoing(
    kind: ActionKind, form: Form, *, case: CaseUpdated, actor: str, form_token: str, now: datetime
) -> Outgoing:
    """The submission a form stands for; raises FormError naming each field at fault."""
    ref = source_ref(form_token)
    common = {"source_system": SOURCE_SYSTEM, "source_ref": ref, "occurred_at": now}
    event_id = derive_event_id(SOURCE_SYSTEM, ref)
    if kind is ActionKind.FINDING:
        body = _checked(InvestigationFindingSubmission, common | _finding(form, case, now))
        return Outgoing(FINDING_PATH, body, event_id)
    if kind is ActionKind.REPLY:
        try:
            text = _REPLY_TEXT.validate_python(one(form, "text"))
        except ValidationError:
            raise FormError([("text", "请填写答复内容（不超过 5000 字）")]) from None
        return Outgoing(REPLY_PATH, {"case_id": case.case_id, "text": text}, None, text)
    action = {
        ActionKind.REASSIGN: CaseActionKind.REASSIGN,
        ActionKind.START_INVESTIGATION: CaseActionKind.START_INVESTIGATION,
        ActionKind.CLOSE: CaseActionKind.CLOSE,
    }[kind]
    facts: dict[str, Any] = {"case_id": case.case_id, "action": action, "actor_staff_id": actor}
    if kind is ActionKind.REASSIGN:
        facts |= {"to_department": one(form, "to_department") or None}
    if kind in (ActionKind.REASSIGN, ActionKind.CLOSE):
        facts |= {"reason": one(form, "reason") or None}
    if kind is ActionKind.REASSIGN and not facts["reason"]:
        raise FormError([("reason", "改派须说明理由")])
    if kind is ActionKind.REASSIGN and not facts["to_department"]:
        raise FormError([("to_department", "请选择科室")])
    return Outgoing(CASE_ACTION_PATH, _checked(CaseActionSubmission, common | facts), event_id)


def _finding(form: Form, case: CaseUpdated, now: datetime) -> dict[str, Any]:
    problems = []
    substantiated = one(form, "substantiated")
    if substantiated not in ("yes", "no"):
        problems.append(("substantiated", "请选择是否查实"))
    occurred_at: datetime = now
    day_text = one(form, "finding_day")
    today = now.astimezone(HOSPITAL_TIME_ZONE).date()
    try:
        day = date.fromisoformat(day_text) if day_text else today
    except ValueError:
        problems.append(("finding_day", "日期格式为 YYYY-MM-DD"))
        day = today
    if day > today:
        problems.append(("finding_day", "结论日期不能晚于今天"))
    elif day < today:
        occurred_at = datetime.combine(day, time(), tzinfo=HOSPITAL_TIME_ZONE)
    if problems:
        raise FormError(problems)
    staff = [part for part in one(form, "staff_ids").replace("，", ",").split(",") if part.strip()]
    return {
        "occurred_at": occurred_at,
        "case_id": case.case_id,
        "substantiated": substantiated == "yes",
        "confirmed_categories": list(form.get("confirmed_categories") or []),
        "staff_ids": [part.strip() for part in staff],
        "confirmed_amount_cny": one(form, "confirmed_amount_cny") or None,
        "severe_social_impact": one(form, "severe_social_impact") == "1",
        "suspected_crime": one(form, "suspected_crime") == "1",
        "company_code": one(form, "company_code") or None,
        "company_name": one(form, "company_name") or None,
        "summary": one(form, "summary"),
    }


def _checked(model: Any, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` as the contract reads them (JSON-ready), or the problems, by form field."""
    try:
        return dict(model.model_validate(values).model_dump(mode="json", exclude_none=True))
    except ValidationError as error:
        problems = []
        for problem in error.errors(include_input=False):
            where = str(problem["loc"][0]) if problem["loc"] else "form"
            problems.append((where if where in FIELD_LABELS else "form", problem["msg"]))
        raise FormError(problems) from None
