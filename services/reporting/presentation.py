"""How people read what reporting keeps: department names instead of codes, rates as
percentages, a case's history in Chinese. Pages and exports show these; the JSON API keeps the
codes and fractions (0.1429 is 14.29 %) beside them for programs. Pure.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel

from schemas.case import CaseChange, CaseState, HistoryEntry
from services.common.departments import DepartmentCatalogue
from services.reporting.kpi import Comparison, KpiStatus, Unit


class DepartmentName(BaseModel):
    department: str
    department_zh: str
    department_en: str


def department_name(code: str, catalogue: DepartmentCatalogue) -> DepartmentName:
    """A department's names; its code for both when the catalogue no longer lists it."""
    entry = catalogue.departments.get(code)
    if entry is None:
        return DepartmentName(department=code, department_zh=code, department_en=code)
    return DepartmentName(department=code, department_zh=entry.name_zh, department_en=entry.name_en)


_HUNDREDTH = Decimal("0.01")


@dataclass(frozen=True)
class Percent:
    """A fraction shown as a percentage with two decimals: 0.1429 is "14.29%"."""

    fraction: Decimal

    def __str__(self) -> str:
        return f"{(self.fraction * 100).quantize(_HUNDREDTH, ROUND_HALF_UP)}%"


def figure(value: Decimal | None, unit: Unit) -> Percent | Decimal | None:
    """A KPI value or target as exports write it: rates and growths as percentages, days as
    numbers."""
    return value if value is None or unit is Unit.DAYS else Percent(value)


def shown(value: Decimal | None, unit: Unit) -> str:
    """A KPI value or target as a page shows it: "66.67%", "7.5 天", or "—" for none."""
    if value is None:
        return "—"
    return f"{value} 天" if unit is Unit.DAYS else str(Percent(value))


COMPARISON_SIGN = {Comparison.AT_LEAST: "≥", Comparison.AT_MOST: "≤"}
SOURCE_ZH = {"observed": "系统上报", "computed": "本系统计算"}


def target(status: KpiStatus) -> str:
    """A KPI target as pages and exports show it: "≥ 80.00%", "≤ 7 天"."""
    return f"{COMPARISON_SIGN[status.comparison]} {shown(status.target, status.unit)}"


class CaseStep(BaseModel):
    """One change of a case as the case view shows it, refusals with their reason."""

    change: CaseChange
    change_zh: str
    state: CaseState
    """The case's state after the change."""
    state_zh: str
    at: datetime
    by: str
    department: str | None
    """The responsible department after an assignment or reassignment."""
    department_zh: str | None
    department_en: str | None
    note: str | None
    """What the change says: a refusal's reason, a reassignment's, a finding's outcome."""


def case_steps(history: Iterable[HistoryEntry], catalogue: DepartmentCatalogue) -> list[CaseStep]:
    steps = []
    for entry in history:
        named = None if entry.department is None else department_name(entry.department, catalogue)
        steps.append(
            CaseStep(
                change=entry.change,
                change_zh=entry.change.label_zh,
                state=entry.state,
                state_zh=entry.state.label_zh,
                at=entry.at,
                by=entry.by,
                department=entry.department,
                department_zh=None if named is None else named.department_zh,
                department_en=None if named is None else named.department_en,
                note=entry.note,
            )
        )
    return steps
