"""The hospital's rules as pure functions: (event, state, now) -> decisions.

Every decision names its rule id and the rule-book version, and explains itself in Chinese
and English. Values come from rules.toml, never from code.
"""

from datetime import datetime, timedelta
from typing import Annotated

from pydantic import Field

from schemas.base import HOSPITAL_TIME_ZONE
from schemas.case import CaseRouted, DeadlineSet, derive_output_event_id
from services.common.datafile import DataFile

EVERY_COMPLAINT = "R-EVERY-COMPLAINT"


Days = Annotated[int, Field(gt=0, strict=True)]
"""A whole number of days, written as a TOML integer (not "15", not 15.0, not true)."""


class EveryComplaintRule(DataFile):
    investigation_days: Days


class RuleBook(DataFile):
    version: str
    every_complaint: EveryComplaintRule


def investigation_deadline(case: CaseRouted, rules: RuleBook, *, now: datetime) -> DeadlineSet:
    """R-EVERY-COMPLAINT, first half: every complaint is investigated within a time limit."""
    days = rules.every_complaint.investigation_days
    deadline = case.opened_at + timedelta(days=days)
    opened_day = case.opened_at.astimezone(HOSPITAL_TIME_ZONE).date().isoformat()
    deadline_day = deadline.astimezone(HOSPITAL_TIME_ZONE).date().isoformat()
    department = case.responsible_department
    return DeadlineSet(
        event_id=derive_output_event_id(case.case_id, "deadline"),
        case_id=case.case_id,
        rule_id=EVERY_COMPLAINT,
        rules_version=rules.version,
        deadline=deadline,
        explanation_zh=(
            f"凡诉必查：案件{case.case_id}于{opened_day}受理，"
            f"须由{department.name_zh}在{days}日内（{deadline_day}前）完成调查。"
        ),
        explanation_en=(
            f"Every complaint is investigated: case {case.case_id}, received {opened_day}, "
            f"must be investigated by the {department.name_en} within {days} days "
            f"(by {deadline_day})."
        ),
        decided_at=now,
    )
