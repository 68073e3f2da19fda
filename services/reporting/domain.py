"""What the reports say, computed from stored facts. Pure: no Kafka, no database, no clock."""

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from schemas.base import HOSPITAL_TIME_ZONE
from schemas.case import CaseRouted
from schemas.complaint import ComplaintCategory


def report_month(moment: datetime) -> str:
    """The reporting month (YYYY-MM) of a moment, in hospital time."""
    return moment.astimezone(HOSPITAL_TIME_ZONE).strftime("%Y-%m")


def case_fact(case: CaseRouted) -> dict[str, object]:
    """The fields of a routed case that reports count by."""
    department = case.responsible_department
    return {
        "month": report_month(case.opened_at),
        "category": str(case.category),
        "department": {
            "code": department.code,
            "name_zh": department.name_zh,
            "name_en": department.name_en,
        },
        "opened_at": case.opened_at,
    }


class CaseSummary(BaseModel):
    """What reporting knows of one case."""

    case_id: str
    month: str
    category: ComplaintCategory
    category_zh: str
    department_code: str
    department_zh: str
    opened_at: datetime
    deadline: datetime | None


def case_summary(case_id: str, fact: dict[str, Any]) -> CaseSummary:
    category = ComplaintCategory(fact["category"])
    return CaseSummary(
        case_id=case_id,
        month=fact["month"],
        category=category,
        category_zh=category.label_zh,
        department_code=fact["department"]["code"],
        department_zh=fact["department"]["name_zh"],
        opened_at=fact["opened_at"],
        deadline=fact.get("deadline"),
    )


class CaseCountRow(BaseModel):
    """How many cases one department received in one category in one month."""

    month: str
    department_code: str
    department_zh: str
    department_en: str
    category: ComplaintCategory
    count: int


class DepartmentCount(BaseModel):
    code: str
    name_zh: str
    name_en: str
    count: int


class CategoryCount(BaseModel):
    code: ComplaintCategory
    label_zh: str
    count: int


class CaseCountReport(BaseModel):
    """基本情况: cases received, by responsible department and by category."""

    month: str | None
    total: int
    by_department: list[DepartmentCount]
    by_category: list[CategoryCount]
    rows: list[CaseCountRow]


def case_count_report(rows: Iterable[CaseCountRow], *, month: str | None) -> CaseCountReport:
    rows = sorted(rows, key=lambda row: (row.month, row.department_code, row.category))
    departments: dict[str, DepartmentCount] = {}
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
        categories[row.category] += row.count
    return CaseCountReport(
        month=month,
        total=sum(row.count for row in rows),
        by_department=sorted(departments.values(), key=lambda entry: (-entry.count, entry.code)),
        by_category=[
            CategoryCount(code=category, label_zh=category.label_zh, count=count)
            for category, count in sorted(categories.items(), key=lambda item: (-item[1], item[0]))
        ],
        rows=rows,
    )
