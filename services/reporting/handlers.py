"""Consume cases and decisions into report facts."""

from faststream.kafka import KafkaRouter

from schemas import topics
from schemas.case import CaseRouted, DeadlineSet
from services.common.broker import subscribe
from services.reporting.repository import ReportRepository


def build_routes(reports: ReportRepository, *, group_id: str) -> KafkaRouter:
    routes = KafkaRouter()

    @subscribe(routes, topics.CASES_ROUTED, group_id=group_id)
    async def record_case(case: CaseRouted) -> None:
        await reports.record_case(case)

    @subscribe(routes, topics.CASE_DEADLINES, group_id=group_id)
    async def record_deadline(decision: DeadlineSet) -> None:
        await reports.record_deadline(decision)

    return routes
