"""R-EVERY-COMPLAINT (凡诉必查, 004 §四(三)1): every case gets an investigation deadline.

The time limit comes from the rule book, never from code; dates shown to people are dates in
hospital time (Asia/Shanghai).
"""

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.base import HOSPITAL_TIME_ZONE
from schemas.case import CaseRouted, Department, DepartmentKind
from schemas.complaint import ComplaintCategory, ComplaintChannel
from services.common.datafile import DataFileError
from services.escalation.domain import RuleBook, investigation_deadline

RULES_PATH = Path(__file__).resolve().parents[2] / "services" / "escalation" / "rules.toml"

CONDUCT_OFFICE = Department(
    code="medical_affairs",
    name_zh="医务部（行风办）",
    name_en="Medical Affairs Department (Conduct Office)",
    kind=DepartmentKind.FUNCTIONAL,
)
FINANCE = Department(
    code="finance", name_zh="财务部", name_en="Finance Department", kind=DepartmentKind.FUNCTIONAL
)
NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def _rules(days: int, *, version: str = "test-rules.1") -> RuleBook:
    return RuleBook.from_toml(
        f'version = "{version}"\n\n[every_complaint]\ninvestigation_days = {days}\n'
    )


def _case(
    opened_at: datetime,
    *,
    case_id: str = "CASE-0123456789ABCDEF0123",
    department: Department = CONDUCT_OFFICE,
) -> CaseRouted:
    return CaseRouted(
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"test:{case_id}"),
        case_id=case_id,
        source_event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"test-source:{case_id}"),
        category=ComplaintCategory.ATTITUDE,
        channel=ComplaintChannel.HOTLINE,
        responsible_department=department,
        cooperating_departments=(),
        routing_basis="004 §四(三)1",
        routing_table_version="test-table.1",
        opened_at=opened_at,
        routed_at=opened_at + timedelta(minutes=1),
    )


def _date_forms(day: date) -> tuple[str, ...]:
    """How a date may be written: ISO, or the Chinese 年月日 form."""
    return (day.isoformat(), f"{day.year}年{day.month}月{day.day}日")


def _mentions(text: str, day: date) -> bool:
    return any(form in text for form in _date_forms(day))


@pytest.mark.parametrize("days", [1, 7, 10, 15, 30, 90])
def test_the_deadline_is_the_opening_time_plus_the_rule_books_days(days: int) -> None:
    opened_at = datetime(2026, 3, 2, 8, 45, tzinfo=HOSPITAL_TIME_ZONE)

    decision = investigation_deadline(_case(opened_at), _rules(days), now=NOW)

    assert decision.deadline == opened_at + timedelta(days=days)


@given(
    days=st.integers(min_value=1, max_value=3650),
    opened_at=st.datetimes(
        min_value=datetime(2020, 1, 1),
        max_value=datetime(2040, 1, 1),
        timezones=st.sampled_from([UTC, HOSPITAL_TIME_ZONE]),
    ),
)
def test_the_investigation_lasts_exactly_the_configured_number_of_days(
    days: int, opened_at: datetime
) -> None:
    decision = investigation_deadline(_case(opened_at), _rules(days), now=NOW)

    assert decision.deadline - opened_at == timedelta(days=days)
    assert decision.deadline.utcoffset() is not None


def test_a_longer_time_limit_gives_a_later_deadline() -> None:
    case = _case(datetime(2026, 5, 6, 10, 0, tzinfo=HOSPITAL_TIME_ZONE))

    short = investigation_deadline(case, _rules(5), now=NOW)
    long = investigation_deadline(case, _rules(20), now=NOW)

    assert long.deadline - short.deadline == timedelta(days=15)


def test_the_decision_names_the_every_complaint_rule() -> None:
    decision = investigation_deadline(
        _case(datetime(2026, 5, 6, 10, 0, tzinfo=UTC)), _rules(10), now=NOW
    )

    assert decision.rule_id == "R-EVERY-COMPLAINT"


def test_the_decision_records_the_rule_book_version() -> None:
    decision = investigation_deadline(
        _case(datetime(2026, 5, 6, 10, 0, tzinfo=UTC)),
        _rules(10, version="2031-07-01.4"),
        now=NOW,
    )

    assert decision.rules_version == "2031-07-01.4"


def test_the_decision_is_about_the_case_and_made_now() -> None:
    case = _case(datetime(2026, 5, 6, 10, 0, tzinfo=UTC), case_id="CASE-FFFF0000AAAA11112222")

    decision = investigation_deadline(case, _rules(10), now=NOW)

    assert decision.case_id == "CASE-FFFF0000AAAA11112222"
    assert decision.decided_at == NOW


def test_the_chinese_explanation_names_the_case_the_department_and_the_deadline() -> None:
    opened_at = datetime(2026, 6, 10, 9, 0, tzinfo=HOSPITAL_TIME_ZONE)
    case = _case(opened_at, case_id="CASE-ABCDEF0123456789ABCD", department=FINANCE)

    decision = investigation_deadline(case, _rules(12), now=NOW)

    assert "CASE-ABCDEF0123456789ABCD" in decision.explanation_zh
    assert "财务部" in decision.explanation_zh
    assert _mentions(decision.explanation_zh, date(2026, 6, 22))


def test_the_english_explanation_names_the_case_the_department_and_the_deadline() -> None:
    opened_at = datetime(2026, 6, 10, 9, 0, tzinfo=HOSPITAL_TIME_ZONE)
    case = _case(opened_at, case_id="CASE-ABCDEF0123456789ABCD", department=FINANCE)

    decision = investigation_deadline(case, _rules(12), now=NOW)

    assert "CASE-ABCDEF0123456789ABCD" in decision.explanation_en
    assert "Finance Department" in decision.explanation_en
    assert "财务部" not in decision.explanation_en
    assert _mentions(decision.explanation_en, date(2026, 6, 22))


def test_the_explanations_give_shanghai_dates_when_utc_is_still_the_day_before() -> None:
    # 2026-11-30T17:00Z is 2026-12-01 01:00 in Shanghai: the hospital received it on 1 December.
    opened_at = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)

    decision = investigation_deadline(_case(opened_at), _rules(15), now=NOW)

    shanghai_deadline = date(2026, 12, 16)  # 2026-12-01 (Shanghai) + 15 days
    utc_deadline = date(2026, 12, 15)
    for explanation in (decision.explanation_zh, decision.explanation_en):
        assert _mentions(explanation, shanghai_deadline)
        assert not _mentions(explanation, utc_deadline)
        assert not _mentions(explanation, date(2026, 11, 30))
    assert "医务部" in decision.explanation_zh
    assert "Medical Affairs Department" in decision.explanation_en


def test_the_same_case_always_yields_the_same_decision_id() -> None:
    case = _case(datetime(2026, 5, 6, 10, 0, tzinfo=UTC))

    first = investigation_deadline(case, _rules(10), now=NOW)
    again = investigation_deadline(case, _rules(10), now=NOW + timedelta(days=1))

    assert again.event_id == first.event_id


def test_different_cases_yield_different_decision_ids() -> None:
    opened_at = datetime(2026, 5, 6, 10, 0, tzinfo=UTC)

    first = investigation_deadline(_case(opened_at, case_id="CASE-1"), _rules(10), now=NOW)
    other = investigation_deadline(_case(opened_at, case_id="CASE-2"), _rules(10), now=NOW)

    assert other.event_id != first.event_id


def test_the_decision_id_differs_from_the_routed_case_event_id() -> None:
    case = _case(datetime(2026, 5, 6, 10, 0, tzinfo=UTC))

    decision = investigation_deadline(case, _rules(10), now=NOW)

    assert decision.event_id != case.event_id


def test_the_shipped_rule_book_loads_with_a_positive_time_limit() -> None:
    rules = RuleBook.from_toml(RULES_PATH.read_text("utf-8"))

    assert rules.every_complaint.investigation_days > 0
    assert rules.version


@pytest.mark.parametrize("days", [0, -1, -15])
def test_a_rule_book_with_no_or_negative_investigation_days_is_refused(days: int) -> None:
    with pytest.raises(DataFileError) as refused:
        _rules(days)

    assert "investigation_days" in str(refused.value)


def test_a_rule_book_with_an_unknown_top_level_key_is_refused() -> None:
    text = 'version = "v1"\nescalate_after_days = 7\n\n[every_complaint]\ninvestigation_days = 15\n'

    with pytest.raises(DataFileError) as refused:
        RuleBook.from_toml(text)

    assert "escalate_after_days" in str(refused.value)


def test_a_rule_book_with_an_unknown_key_in_a_rule_is_refused() -> None:
    text = 'version = "v1"\n\n[every_complaint]\ninvestigation_days = 15\nworking_days = true\n'

    with pytest.raises(DataFileError) as refused:
        RuleBook.from_toml(text)

    assert "working_days" in str(refused.value)


@pytest.mark.parametrize("written", ['"15"', "15.0", "true"])
def test_investigation_days_must_be_written_as_a_whole_number(written: str) -> None:
    text = f'version = "v1"\n\n[every_complaint]\ninvestigation_days = {written}\n'

    with pytest.raises(DataFileError) as refused:
        RuleBook.from_toml(text, source="rules.toml")

    assert "rules.toml" in str(refused.value)
    assert "investigation_days" in str(refused.value)
