"""Wiring: the rule book, the service's store and broker, publishing, the subscribers, the
periodic clock check and what it asks of the cases topic."""

from fastapi import FastAPI

from schemas import topics
from services.common.service import Clock, Service, system_clock
from services.escalation import wording
from services.escalation.filing import Escalation
from services.escalation.handlers import FILED, RAISING_LEADS, CasesTopic, Publishing
from services.escalation.rulebook import RuleBook
from services.escalation.settings import EscalationSettings
from services.escalation.store import EscalationStore


def create_app(settings: EscalationSettings, *, clock: Clock = system_clock) -> FastAPI:
    """``clock`` tells the time to the overdue and cut-off checks; tests set it."""
    # A bad rule book or wording file stops the service here, before it consumes anything.
    book = RuleBook.from_file(settings.rules)
    wording.sentences()
    service = Service("escalation", settings, clock=clock)
    publishing = Publishing(service.broker, service.registry)
    cases = CasesTopic(settings, service.group_id)
    service.on_stop.append(cases.offsets.close)
    escalation = Escalation(
        EscalationStore(service.documents),
        book,
        clock=service.clock,
        publish_decisions=publishing.decisions,
        publish_leads=publishing.leads,
        cases_all_read=cases.all_read,
    )
    service.every(
        settings.clock_check_seconds,
        escalation.recheck_watched,
        what="the periodic check of overdue cases and cut-offs",
    )
    return service.app(
        title="Qinglian escalation",
        consumes={
            **dict.fromkeys(FILED, escalation.file_events),
            **dict.fromkeys(RAISING_LEADS, escalation.raise_leads_and_file),
            topics.SATISFACTION_RATINGS: escalation.raise_leads,
            topics.CASES: escalation.file_cases,
        },
    )
