"""Wiring: the departments and routing table, the cases on the store, the routes, metrics."""

from fastapi import FastAPI

from schemas import topics
from schemas.case import CaseUpdated
from services.common.service import Service
from services.router.cases import Cases
from services.router.handlers import UPDATES, Handling, RouterMetrics
from services.router.routing import Routing
from services.router.settings import RouterSettings
from services.router.store import CaseStore


def create_app(settings: RouterSettings) -> FastAPI:
    # A bad catalogue or table stops the service here, before it consumes anything.
    routing = Routing.load(settings.departments, settings.routing_table)
    service = Service("router", settings)
    cases = Cases(CaseStore.on(service.documents), routing)
    metrics = RouterMetrics.with_routing(service.registry, routing)
    published = service.broker.publisher(topics.CASES, schema=CaseUpdated)
    handling = Handling(cases, metrics, published, service.clock)
    return service.app(
        title="Qinglian router",
        consumes={
            topics.COMPLAINTS: handling.open_for_complaints,
            topics.LEADS: handling.open_for_leads,
            **dict.fromkeys(UPDATES, handling.record),
        },
    )
