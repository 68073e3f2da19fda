"""Consume cases into report facts."""

from faststream.kafka import KafkaRouter

from schemas import topics
from schemas.case import CaseUpdated
from services.common.broker import subscribe
from services.reporting.repository import ReportRepository


def build_routes(reports: ReportRepository, *, group_id: str) -> KafkaRouter:
    routes = KafkaRouter()

    @subscribe(routes, topics.CASES, group_id=group_id)
    async def record_case(case: CaseUpdated) -> None:
        await reports.record_case(case)

    return routes
