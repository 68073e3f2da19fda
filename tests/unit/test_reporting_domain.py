"""What the monthly report counts (基本情况, 004 §七(三)), computed without Kafka or a database."""

from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.base import HOSPITAL_TIME_ZONE
from schemas.case import CaseKind, CaseUpdated
from schemas.complaint import ComplaintCategory
from services.reporting.domain import (
    CaseCountRow,
    case_count_report,
    case_fact,
    case_summary,
    report_month,
)
from tests.factories import complaint_event, routed_case

DEPARTMENTS = {
    "medical_affairs": ("医务部（行风办）", "Medical Affairs Department (Conduct Office)"),
    "finance": ("财务部", "Finance Department"),
    "discipline_inspection": ("纪检监察室", "Discipline Inspection Office"),
}


@st.composite
def case_count_rows(draw: st.DrawFn) -> CaseCountRow:
    code = draw(st.sampled_from(sorted(DEPARTMENTS)))
    name_zh, name_en = DEPARTMENTS[code]
    return CaseCountRow(
        month=draw(st.sampled_from(["2026-10", "2026-11", "2026-12"])),
        department_code=code,
        department_zh=name_zh,
        department_en=name_en,
        kind=CaseKind.COMPLAINT,
        category=draw(st.sampled_from(ComplaintCategory)),
        count=draw(st.integers(min_value=0, max_value=500)),
    )


def _row(
    code: str, category: ComplaintCategory, count: int, month: str = "2026-12"
) -> CaseCountRow:
    name_zh, name_en = DEPARTMENTS[code]
    return CaseCountRow(
        month=month,
        department_code=code,
        department_zh=name_zh,
        department_en=name_en,
        kind=CaseKind.COMPLAINT,
        category=category,
        count=count,
    )


def _case(opened_at: datetime, category: ComplaintCategory) -> CaseUpdated:
    return routed_case(complaint_event(received_at=opened_at, category=str(category)))


@pytest.mark.parametrize(
    ("moment", "month"),
    [
        # 16:30 UTC on 30 November is 00:30 on 1 December in Shanghai.
        (datetime(2026, 11, 30, 16, 30, tzinfo=UTC), "2026-12"),
        (datetime(2026, 11, 30, 15, 59, 59, tzinfo=UTC), "2026-11"),
        (datetime(2026, 12, 31, 16, 0, tzinfo=UTC), "2027-01"),
        (datetime(2026, 12, 1, 0, 0, tzinfo=HOSPITAL_TIME_ZONE), "2026-12"),
        # 01:00 on 1 December at UTC+10 is still 23:00 on 30 November in Shanghai.
        (datetime(2026, 12, 1, 1, 0, tzinfo=timezone(timedelta(hours=10))), "2026-11"),
    ],
)
def test_the_report_month_is_the_month_in_hospital_time(moment: datetime, month: str) -> None:
    assert report_month(moment) == month


def test_a_case_opened_late_on_the_last_utc_day_counts_in_the_next_shanghai_month() -> None:
    fact = case_fact(_case(datetime(2026, 11, 30, 16, 30, tzinfo=UTC), ComplaintCategory.KICKBACK))

    assert fact["month"] == "2026-12"
    assert fact["category"] == "kickback"


def test_a_case_summary_gives_the_chinese_category_label() -> None:
    opened_at = datetime(2026, 12, 2, 9, 0, tzinfo=HOSPITAL_TIME_ZONE)
    fact = case_fact(_case(opened_at, ComplaintCategory.PROCUREMENT))

    summary = case_summary("CASE-00000000000000000001", fact)

    assert summary.category_zh == "招采/期权腐败"
    assert summary.department_zh == "财务部"


@given(rows=st.lists(case_count_rows(), max_size=40))
def test_the_totals_of_the_report_agree_with_each_other(rows: list[CaseCountRow]) -> None:
    report = case_count_report(rows, month=None)

    expected = sum(row.count for row in rows)
    assert report.total == expected
    assert sum(entry.count for entry in report.by_department) == expected
    assert sum(entry.count for entry in report.by_category) == expected
    assert sum(row.count for row in report.rows) == expected


@given(rows=st.lists(case_count_rows(), max_size=40))
def test_each_department_counts_the_cases_of_its_rows(rows: list[CaseCountRow]) -> None:
    report = case_count_report(rows, month=None)

    expected: Counter[str] = Counter()
    for row in rows:
        expected[row.department_code] += row.count
    assert {entry.code: entry.count for entry in report.by_department} == dict(expected)
    assert len(report.by_department) == len({entry.code for entry in report.by_department})
    for entry in report.by_department:
        assert (entry.name_zh, entry.name_en) == DEPARTMENTS[entry.code]


@given(rows=st.lists(case_count_rows(), max_size=40))
def test_each_category_counts_the_cases_of_its_rows(rows: list[CaseCountRow]) -> None:
    report = case_count_report(rows, month=None)

    expected: Counter[ComplaintCategory] = Counter()
    for row in rows:
        assert row.category is not None
        expected[row.category] += row.count
    assert {entry.code: entry.count for entry in report.by_category} == dict(expected)


@given(rows=st.lists(case_count_rows(), max_size=40))
def test_departments_are_listed_from_most_to_fewest_cases(rows: list[CaseCountRow]) -> None:
    counts = [entry.count for entry in case_count_report(rows, month=None).by_department]

    assert counts == sorted(counts, reverse=True)


@given(rows=st.lists(case_count_rows(), max_size=40))
def test_the_report_keeps_every_row(rows: list[CaseCountRow]) -> None:
    report = case_count_report(rows, month="2026-12")

    assert sorted(report.rows, key=repr) == sorted(rows, key=repr)
    assert report.month == "2026-12"


@given(rows=st.lists(case_count_rows(), min_size=1, max_size=40))
def test_category_entries_carry_the_chinese_label_of_their_category(
    rows: list[CaseCountRow],
) -> None:
    for entry in case_count_report(rows, month=None).by_category:
        assert entry.label_zh == entry.code.label_zh


def test_category_labels_are_the_chinese_labels_of_the_design() -> None:
    rows = [
        _row("finance", ComplaintCategory.KICKBACK, 3),
        _row("medical_affairs", ComplaintCategory.APPOINTMENT_SCALPING, 2),
        _row("medical_affairs", ComplaintCategory.DRUNK_DRIVING, 1),
    ]

    labels = {
        entry.code: entry.label_zh for entry in case_count_report(rows, month="2026-12").by_category
    }

    assert labels == {
        ComplaintCategory.KICKBACK: "回扣",
        ComplaintCategory.APPOINTMENT_SCALPING: "倒卖专家号",
        ComplaintCategory.DRUNK_DRIVING: "酒驾",
    }


def test_a_small_report_adds_up_by_department_and_category() -> None:
    rows = [
        _row("finance", ComplaintCategory.KICKBACK, 4),
        _row("finance", ComplaintCategory.PROCUREMENT, 1),
        _row("medical_affairs", ComplaintCategory.ATTITUDE, 2),
        _row("medical_affairs", ComplaintCategory.KICKBACK, 7),
        _row("discipline_inspection", ComplaintCategory.OTHER, 1),
    ]

    report = case_count_report(rows, month="2026-12")

    assert report.total == 15
    assert [(entry.code, entry.count) for entry in report.by_department] == [
        ("medical_affairs", 9),
        ("finance", 5),
        ("discipline_inspection", 1),
    ]
    assert {entry.code: entry.count for entry in report.by_category} == {
        ComplaintCategory.KICKBACK: 11,
        ComplaintCategory.PROCUREMENT: 1,
        ComplaintCategory.ATTITUDE: 2,
        ComplaintCategory.OTHER: 1,
    }


def test_an_empty_month_reports_nothing() -> None:
    report = case_count_report([], month="2026-12")

    assert report.total == 0
    assert report.by_department == []
    assert report.by_category == []
