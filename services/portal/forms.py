"""The portal's forms, read into what intake accepts from any system. Pure.

A complaint or a rating travels as an ordinary submission of source system ``portal`` (the
portal's API key), with ``source_ref`` made from the form's one-time token: a form sent twice
is one event, and intake gives the same follow-up code again. The contracts' own models check
the values, so a form is refused for what intake would refuse, naming the field in Chinese.
"""

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from schemas.base import HOSPITAL_TIME_ZONE
from schemas.complaint import ComplaintChannel, ComplaintSubmission
from schemas.follow_up import FollowUpText
from schemas.satisfaction import SatisfactionSubmission
from services.portal.touchpoints import Sheet

SOURCE_SYSTEM = "portal"
COMPLAINT_PATH = "/v1/complaints"
RATING_PATH = "/v1/satisfaction-ratings"

FIELD_LABELS = {
    "category": "反映类别",
    "accused_department": "涉及科室",
    "accused_staff_id": "涉及人员工号",
    "description": "具体情况",
    "amount_cny": "涉及金额",
    "occurred_at": "发生日期",
    "anonymous": "是否匿名",
    "complainant_contact": "联系方式",
    "name": "姓名",
    "phone": "电话",
    "email": "电子邮箱",
    "score": "评分",
    "comment": "意见",
    "staff_id": "工号",
    "text": "补充内容",
    "attachments": "附件",
    "form": "表单",
}
"""What each field is called on the pages."""

Form = Mapping[str, Sequence[str]]
"""A posted form: each field's values."""

_TEXT: TypeAdapter[str] = TypeAdapter(FollowUpText)


class FormError(ValueError):
    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        super().__init__("; ".join(field for field, _ in problems))
        self.problems = list(problems)

    def fields(self) -> set[str]:
        return {field for field, _ in self.problems}


def one(form: Form, name: str) -> str:
    values = form.get(name) or [""]
    return values[0].strip()


def complaint(form: Form, *, form_token: str, now: datetime) -> dict[str, Any]:
    """The complaint a form stands for (JSON-ready); raises FormError naming each field."""
    anonymous = one(form, "anonymous") != "no"
    contact = {key: one(form, key) or None for key in ("name", "phone", "email")}
    values: dict[str, Any] = {
        "source_system": SOURCE_SYSTEM,
        "source_ref": f"portal-{form_token}",
        "occurred_at": _day(one(form, "occurred_on"), now),
        "channel": ComplaintChannel.PORTAL,
        "category": one(form, "category"),
        "accused_department": one(form, "accused_department") or None,
        "accused_staff_id": one(form, "accused_staff_id") or None,
        "description": one(form, "description"),
        "amount_cny": one(form, "amount_cny") or None,
        "anonymous": anonymous,
        "complainant_contact": None if anonymous else contact,
    }
    if not anonymous and not any(contact.values()):
        raise FormError([("complainant_contact", "实名反映请至少留下一种联系方式")])
    return _checked(ComplaintSubmission, values)


def rating(form: Form, sheet: Sheet, *, form_token: str, now: datetime) -> dict[str, Any]:
    """The rating a form stands for (JSON-ready); raises FormError naming each field."""
    score = one(form, "score")
    if score not in ("1", "2", "3", "4", "5"):
        raise FormError([("score", "请选择 1 到 5 分")])
    values = {
        "source_system": SOURCE_SYSTEM,
        "source_ref": f"portal-rating-{form_token}",
        "occurred_at": now,
        "touchpoint": sheet.touchpoint,
        "department": sheet.department,
        "staff_id": one(form, "staff_id") or None,
        "score": int(score),
        "comment": one(form, "comment") or None,
    }
    return _checked(SatisfactionSubmission, values)


def added_text(form: Form) -> str:
    try:
        return _TEXT.validate_python(one(form, "text"))
    except ValidationError:
        raise FormError([("text", "请填写补充内容（不超过 5000 字）")]) from None


def _day(text: str, now: datetime) -> datetime | str:
    """When it happened: a day the reporter gives (noon, hospital time), or now."""
    if not text:
        return now
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return text  # refused by the contract, naming occurred_at
    if day > now.astimezone(HOSPITAL_TIME_ZONE).date():
        raise FormError([("occurred_at", "发生日期不能晚于今天")])
    return datetime.combine(day, time(12), tzinfo=HOSPITAL_TIME_ZONE)


def _checked(model: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` as the contract reads them (JSON-ready), or the problems, by form field."""
    try:
        return dict(model.model_validate(values).model_dump(mode="json", exclude_none=True))
    except ValidationError as error:
        problems = []
        for problem in error.errors(include_input=False):
            where = [str(part) for part in problem["loc"] if str(part) in FIELD_LABELS]
            problems.append((where[-1] if where else "form", _reason(problem["type"])))
        raise FormError(problems) from None


def _reason(kind: str) -> str:
    if kind in ("missing", "string_too_short", "enum", "literal_error"):
        return "请填写或选择"
    if kind == "string_too_long":
        return "内容过长"
    return "格式不正确"
