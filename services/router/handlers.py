"""Consume the events that open and change cases; store each change; publish the case."""

from datetime import UTC, datetime

from faststream.kafka import KafkaRouter
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from schemas import topics
from schemas.case import CaseChange, CaseUpdated
from schemas.case_action import CaseActionReceived
from schemas.complaint import ComplaintReceived
from schemas.finding import InvestigationFindingReceived
from schemas.follow_up import ReporterAddition, ReporterReply
from schemas.lead import Lead
from services.common.broker import subscribe
from services.common.logs import note_case
from services.router.desk import CaseDesk, Outcome
from services.router.domain import Opening, Routing


def build_routes(
    desk: CaseDesk, routing: Routing, registry: CollectorRegistry, *, group_id: str
) -> KafkaRouter:
    routes = KafkaRouter()
    opened = Counter(
        "qinglian_cases_opened",
        "Cases opened, by responsible department, kind and category.",
        ["department", "kind", "category"],
        registry=registry,
    )
    changes = Counter(
        "qinglian_case_changes",
        "Changes recorded on cases, by change.",
        ["change"],
        registry=registry,
    )
    parked = Counter(
        "qinglian_case_updates_parked",
        "Updates that arrived before their case was open and wait for it.",
        registry=registry,
    )
    latency = Histogram(
        "qinglian_routing_latency_seconds",
        "From intake's receipt of an event to its case being opened or linked.",
        buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        registry=registry,
    )
    table_version = Gauge(
        "qinglian_routing_table_info", "Routing table loaded.", ["version"], registry=registry
    )
    table_version.labels(routing.version).set(1)
    publisher = routes.publisher(topics.CASES, schema=CaseUpdated)

    async def publish(outcome: Outcome) -> None:
        for entry in outcome.new_entries:
            changes.labels(entry.change).inc()
        case = outcome.case
        if case is None:
            parked.inc()
            return
        note_case(case.case_id)
        if any(entry.change is CaseChange.OPENED for entry in outcome.new_entries):
            opened.labels(case.responsible_department.code, case.kind, case.category or "").inc()
        # Published on every delivery, also when nothing changed: a crash after storing must
        # not lose the case; consumers keep the highest revision.
        await publisher.publish(case, key=case.case_id.encode())

    async def open_or_link(opening: Opening) -> None:
        now = datetime.now(UTC)
        outcome = await desk.open_or_link(opening, now=now)
        if outcome.new_entries:
            latency.observe(max(0.0, (now - opening.received_at).total_seconds()))
        await publish(outcome)

    @subscribe(routes, topics.COMPLAINTS, group_id=group_id)
    async def route_complaint(complaint: ComplaintReceived) -> None:
        await open_or_link(Opening.of_complaint(complaint))

    @subscribe(routes, topics.LEADS, group_id=group_id)
    async def route_lead(lead: Lead) -> None:
        await open_or_link(Opening.of_lead(lead))

    @subscribe(routes, topics.INVESTIGATION_FINDINGS, group_id=group_id)
    async def record_finding(finding: InvestigationFindingReceived) -> None:
        await publish(await desk.record(finding, now=datetime.now(UTC)))

    @subscribe(routes, topics.CASE_ACTIONS, group_id=group_id)
    async def take_action(action: CaseActionReceived) -> None:
        await publish(await desk.record(action, now=datetime.now(UTC)))

    @subscribe(routes, topics.REPORTER_ADDITIONS, group_id=group_id)
    async def add_reporter_information(addition: ReporterAddition) -> None:
        await publish(await desk.record(addition, now=datetime.now(UTC)))

    @subscribe(routes, topics.REPORTER_REPLIES, group_id=group_id)
    async def note_reply(reply: ReporterReply) -> None:
        await publish(await desk.record(reply, now=datetime.now(UTC)))

    return routes
