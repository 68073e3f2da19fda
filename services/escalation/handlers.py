"""Consume events, add them to the conduct files they concern, apply the rules, publish the
decisions and leads."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from faststream.kafka import KafkaRouter
from prometheus_client import CollectorRegistry, Counter

from schemas import topics
from schemas.base import Event
from schemas.case import CaseUpdated
from schemas.complaint import ComplaintReceived
from schemas.decision import Decision, SubjectKind
from schemas.finding import InvestigationFindingReceived
from schemas.lead import Lead
from schemas.prescription import PrescriptionRankingReceived
from schemas.promotion import PromotionApplicationReceived
from schemas.rectification import RectificationStatusReceived
from schemas.satisfaction import SatisfactionReceived
from schemas.surrender import RedEnvelopeSurrenderReceived
from schemas.visitor_log import VisitorLogReceived
from services.common.broker import subscribe
from services.escalation.conduct import ConductFile, FileEvent
from services.escalation.desk import EscalationDesk
from services.escalation.repository import ConductFiles
from services.escalation.rulebook import RuleBook
from services.escalation.rules import leads

E = TypeVar("E", bound=Event)
Clock = Callable[[], datetime]


def _with_event(event: FileEvent) -> Callable[[ConductFile], ConductFile]:
    def change(file: ConductFile) -> ConductFile:
        if any(known.event_id == event.event_id for known in file.events):
            return file
        return file.model_copy(update={"events": (*file.events, event)})

    return change


def _with_case(case: CaseUpdated) -> Callable[[ConductFile], ConductFile]:
    def change(file: ConductFile) -> ConductFile:
        if file.case is not None and file.case.revision >= case.revision:
            return file
        return file.model_copy(update={"case": case})

    return change


def build_routes(
    files: ConductFiles,
    book: RuleBook,
    registry: CollectorRegistry,
    *,
    group_id: str,
    clock: Clock,
) -> tuple[KafkaRouter, EscalationDesk]:
    routes = KafkaRouter()
    decided = Counter(
        "qinglian_decisions",
        "Decisions published, by rule and kind (corrections and withdrawals included).",
        ["rule_id", "kind"],
        registry=registry,
    )
    corrected = Counter(
        "qinglian_decision_corrections",
        "Decisions that corrected or withdrew an earlier one, by rule.",
        ["rule_id"],
        registry=registry,
    )
    leads_raised = Counter(
        "qinglian_leads",
        "Leads raised (events that open a case), by rule.",
        ["rule_id"],
        registry=registry,
    )
    decision_publisher = routes.publisher(topics.DECISIONS, schema=Decision)
    lead_publisher = routes.publisher(topics.LEADS, schema=Lead)

    async def publish_decision(decision: Decision) -> None:
        await decision_publisher.publish(decision, key=decision.subject_id.encode())
        decided.labels(decision.rule_id, decision.kind).inc()
        if decision.corrects is not None:
            corrected.labels(decision.rule_id).inc()

    desk = EscalationDesk(files, book, publish_decision)

    async def file_under(event: FileEvent, kind: SubjectKind, subject_id: str | None) -> None:
        if subject_id is not None:
            blank = ConductFile(subject_kind=kind, subject_id=subject_id)
            await desk.update(blank, _with_event(event), now=clock())

    async def raise_lead(event: E, rule: Callable[[E, RuleBook], Lead | None]) -> None:
        lead = rule(event, book)
        if lead is None:
            return
        await files.record_lead(lead)
        # Published on every delivery: the router is idempotent on the source event.
        await lead_publisher.publish(lead, key=lead.source_event_id.bytes)
        leads_raised.labels(lead.rule_id).inc()

    @subscribe(routes, topics.COMPLAINTS, group_id=group_id)
    async def file_complaint(complaint: ComplaintReceived) -> None:
        await file_under(complaint, SubjectKind.STAFF, complaint.accused_staff_id)

    @subscribe(routes, topics.INVESTIGATION_FINDINGS, group_id=group_id)
    async def file_finding(finding: InvestigationFindingReceived) -> None:
        for staff_id in finding.staff_ids:
            await file_under(finding, SubjectKind.STAFF, staff_id)
        await file_under(finding, SubjectKind.COMPANY, finding.company_code)

    @subscribe(routes, topics.PROMOTION_APPLICATIONS, group_id=group_id)
    async def file_application(application: PromotionApplicationReceived) -> None:
        await file_under(application, SubjectKind.STAFF, application.staff_id)

    @subscribe(routes, topics.PRESCRIPTION_RANKINGS, group_id=group_id)
    async def file_ranking(ranking: PrescriptionRankingReceived) -> None:
        await file_under(ranking, SubjectKind.STAFF, ranking.staff_id)

    @subscribe(routes, topics.RED_ENVELOPE_SURRENDERS, group_id=group_id)
    async def file_surrender(surrender: RedEnvelopeSurrenderReceived) -> None:
        await raise_lead(surrender, leads.late_surrender_lead)
        await file_under(surrender, SubjectKind.STAFF, surrender.staff_id)

    @subscribe(routes, topics.VISITOR_LOGS, group_id=group_id)
    async def file_visit(visit: VisitorLogReceived) -> None:
        await raise_lead(visit, leads.visit_lead)
        await file_under(visit, SubjectKind.COMPANY, visit.company_code)

    @subscribe(routes, topics.SATISFACTION_RATINGS, group_id=group_id)
    async def check_rating(rating: SatisfactionReceived) -> None:
        await raise_lead(rating, leads.satisfaction_lead)

    @subscribe(routes, topics.RECTIFICATION_STATUSES, group_id=group_id)
    async def file_rectification(status: RectificationStatusReceived) -> None:
        await raise_lead(status, leads.rectification_lead)
        await file_under(status, SubjectKind.DEPARTMENT, status.department)

    @subscribe(routes, topics.CASES, group_id=group_id)
    async def file_case(case: CaseUpdated) -> None:
        blank = ConductFile(subject_kind=SubjectKind.CASE, subject_id=case.case_id)
        # A revision tells the case as it stood when it was made: judged later (a replay, a
        # lag), it would look overdue though its finding came in time in the next revision.
        # The periodic check judges the latest revision by the clock.
        await desk.update(blank, _with_case(case), now=min(clock(), case.updated_at))

    return routes, desk


def system_clock() -> datetime:
    return datetime.now(UTC)
