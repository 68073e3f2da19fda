"""What the reports say, computed from stored facts. Pure: no Kafka, no database, no clock."""

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from schemas.base import HOSPITAL_TIME_ZONE
from schemas.case import CaseKind, CaseState, CaseUpdated
from schemas.complaint import ComplaintCategory


def report_month(moment: datetime) -> str:
    """The reporting month (YYYY-MM) of a moment, in hospital time."""
    return moment.astimezone(HOSPITAL_TIME_ZONE).strftime("%Y-%m")


def case_fact(case: CaseUpdated) -> dict[str, object]:
    """The fields of a case that reports count by, as of its revision."""
    department = case.responsible_department
    return {
        "revision": case.revision,
        "month": report_month(case.opened_at),
        "kind": str(case.kind),
        "category": None if case.category is None else str(case.category),
        "department": {
            "code": department.code,
            "name_zh": department.name_zh,
            "name_en": department.name_en,
        },
        "state": str(case.state),
        "events": len(case.source_event_ids),
        "opened_at": case.opened_at,
        "deadline": case.deadline,
    }


class CaseSummary(BaseModel):
    """What reporting knows of one case."""

    case_id: str
    month: str
    kind: CaseKind
    kind_zh: str
    category: ComplaintCategory | None
    category_zh: str | None
    department_code: str
    department_zh: str
    state: CaseState
    state_zh: str
    events: int
    """How many events the case rests on (related complaints are linked, not counted twice)."""
    opened_at: datetime
    deadline: datetime


def case_summary(case_id: str, fact: dict[str, Any]) -> CaseSummary:
    kind = CaseKind(fact["kind"])
    category = None if fact["category"] is None else ComplaintCategory(fact["category"])
    state = CaseState(fact["state"])
    return CaseSummary(
        case_id=case_id,
        month=fact["month"],
        kind=kind,
        kind_zh=kind.label_zh,
        category=category,
        category_zh=None if category is None else category.label_zh,
        department_code=fact["department"]["code"],
        department_zh=fact["department"]["name_zh"],
        state=state,
        state_zh=state.label_zh,
        events=fact["events"],
        opened_at=fact["opened_at"],
        deadline=fact["deadline"],
    )


class CaseCountRow(BaseModel):
    """How many cases one department received in one category in one month."""

    month: str
    department_code: str
    department_zh: str
    department_en: str
    kind: CaseKind
    category: ComplaintCategory | None
    count: int


class DepartmentCount(BaseModel):
    code: str
    name_zh: str
    name_en: str
    count: int


class KindCount(BaseModel):
    code: CaseKind
    label_zh: str
    count: int


class CategoryCount(BaseModel):
    code: ComplaintCategory
    label_zh: str
    count: int


class CaseCountReport(BaseModel):
    """基本情况: cases received, by responsible department, by kind and by complaint category."""

    month: str | None
    total: int
    by_department: list[DepartmentCount]
    by_kind: list[KindCount]
    by_category: list[CategoryCount]
    """Complaint cases only: other kinds have no category."""
    rows: list[CaseCountRow]


def case_count_report(rows: Iterable[CaseCountRow], *, month: str | None) -> CaseCountReport:
    rows = sorted(
        rows, key=lambda row: (row.month, row.department_code, row.kind, row.category or "")
    )
    departments: dict[str, DepartmentCount] = {}
    kinds: Counter[CaseKind] = Counter()
    categories: Counter[ComplaintCategory] = Counter()
    for row in rows:
        entry = departments.setdefault(
            row.department_code,
            DepartmentCount(
                code=row.department_code,
                name_zh=row.department_zh,
                name_en=row.department_en,
                count=0,
            ),
        )
        entry.count += row.count
        kinds[row.kind] += row.count
        if row.category is not None:
            categories[row.category] += row.count
    return CaseCountReport(
        month=month,
        total=sum(row.count for row in rows),
        by_department=sorted(departments.values(), key=lambda entry: (-entry.count, entry.code)),
        by_kind=[
            KindCount(code=kind, label_zh=kind.label_zh, count=count)
            for kind, count in sorted(kinds.items(), key=lambda item: (-item[1], item[0]))
        ],
        by_category=[
            CategoryCount(code=category, label_zh=category.label_zh, count=count)
            for category, count in sorted(categories.items(), key=lambda item: (-item[1], item[0]))
        ],
        rows=rows,
    )
