"""Consume complaints, route them, store the case, publish the routed case."""

from datetime import UTC, datetime

from faststream.kafka import KafkaResponse, KafkaRouter
from prometheus_client import CollectorRegistry, Counter, Gauge

from schemas import topics
from schemas.case import CaseRouted
from schemas.complaint import ComplaintReceived
from services.common.broker import subscribe
from services.router.domain import RoutingTable, route_complaint
from services.router.repository import CaseRepository


def build_routes(
    cases: CaseRepository, table: RoutingTable, registry: CollectorRegistry, *, group_id: str
) -> KafkaRouter:
    routes = KafkaRouter()
    opened = Counter(
        "qinglian_cases_opened",
        "Cases opened, by responsible department and category.",
        ["department", "category"],
        registry=registry,
    )
    table_version = Gauge(
        "qinglian_routing_table_info", "Routing table loaded.", ["version"], registry=registry
    )
    table_version.labels(table.version).set(1)

    @routes.publisher(topics.CASES_ROUTED, schema=CaseRouted)
    @subscribe(routes, topics.COMPLAINTS, group_id=group_id)
    async def route(complaint: ComplaintReceived) -> KafkaResponse:
        result = await cases.open(route_complaint(complaint, table, now=datetime.now(UTC)))
        if result.created:
            opened.labels(result.case.responsible_department.code, result.case.category).inc()
        # Published on every delivery: a crash after storing must not lose the routed case;
        # consumers are idempotent on its event_id.
        return KafkaResponse(result.case, key=result.case.case_id.encode())

    return routes
