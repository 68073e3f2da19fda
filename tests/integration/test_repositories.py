"""Repositories against the real MongoDB-wire store: writes are idempotent and order-free."""

from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from services.common.store import Document
from services.escalation.domain import RuleBook, investigation_deadline
from services.escalation.repository import DecisionRepository
from services.escalation.settings import EscalationSettings
from services.reporting.repository import ReportRepository
from services.router.domain import RoutingTable, route_complaint
from services.router.repository import CaseRepository
from services.router.settings import RouterSettings
from tests.factories import complaint_event

TABLE = RoutingTable.from_toml(RouterSettings().routing_table.read_text(encoding="utf-8"))
RULES = RuleBook.from_toml(EscalationSettings().rules.read_text(encoding="utf-8"))
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


async def test_a_case_is_opened_once_and_keeps_its_first_routing(
    store: AsyncDatabase[Document],
) -> None:
    cases = CaseRepository(store)
    await cases.ensure_indexes()
    complaint = complaint_event(source_ref="R-1")
    first = await cases.open(route_complaint(complaint, TABLE, now=NOW))
    later = NOW.replace(hour=9)
    again = await cases.open(route_complaint(complaint, TABLE, now=later))

    assert first.created
    assert not again.created
    assert again.case == first.case  # the redelivery republishes the case as first routed
    assert again.case.routed_at == NOW
    assert await store["router_cases"].count_documents({}) == 1


async def test_a_deadline_is_recorded_once(store: AsyncDatabase[Document]) -> None:
    decisions = DecisionRepository(store)
    await decisions.ensure_indexes()
    case = route_complaint(complaint_event(), TABLE, now=NOW)
    first = await decisions.record_deadline(investigation_deadline(case, RULES, now=NOW))
    again = await decisions.record_deadline(
        investigation_deadline(case, RULES, now=NOW.replace(hour=9))
    )
    assert again == first
    assert await store["escalation_deadlines"].count_documents({}) == 1


async def test_report_counts_ignore_redeliveries_and_arrival_order(
    store: AsyncDatabase[Document],
) -> None:
    reports = ReportRepository(store)
    await reports.ensure_indexes()
    kickback = route_complaint(complaint_event(source_ref="K-1"), TABLE, now=NOW)
    attitude = route_complaint(
        complaint_event(source_ref="A-1", category="attitude"), TABLE, now=NOW
    )
    # The deadline arrives before its case, and every fact arrives twice.
    await reports.record_deadline(investigation_deadline(kickback, RULES, now=NOW))
    for case in (kickback, attitude, kickback, attitude):
        await reports.record_case(case)
    await reports.record_deadline(investigation_deadline(kickback, RULES, now=NOW))

    rows = await reports.case_counts(month="2026-11")
    counted = {(row.department_code, row.category): row.count for row in rows}
    assert counted == {("finance", "kickback"): 1, ("medical_affairs", "attitude"): 1}
    assert await reports.case_counts(month="2026-10") == []
    stored = await reports.case(kickback.case_id)
    assert stored is not None
    assert stored["deadline"] == investigation_deadline(kickback, RULES, now=NOW).deadline
