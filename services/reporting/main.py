"""Wiring: data files, store, broker, metrics, HTTP routes, the dashboard."""

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Gauge

from services.common.broker import make_broker
from services.common.departments import DepartmentCatalogue
from services.common.kafka_access import SERVICES
from services.common.store import connect, database
from services.common.web import service_app
from services.escalation.rulebook import RuleBook
from services.reporting.access import DashboardSessions, ReportTokens
from services.reporting.api import ReportContext, build_api
from services.reporting.dashboard import build_dashboard
from services.reporting.handlers import build_routes
from services.reporting.ingest import Ingest
from services.reporting.kpi import KpiTargets
from services.reporting.repository import ReportRepository
from services.reporting.settings import ReportingSettings

logger = logging.getLogger(__name__)


def system_clock() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: ReportingSettings, *, clock: Callable[[], datetime] = system_clock
) -> FastAPI:
    # Bad data files stop the service here, before it consumes anything.
    departments = DepartmentCatalogue.from_file(settings.departments)
    targets, book = KpiTargets.from_file(settings.kpi_targets), RuleBook.from_file(settings.rules)
    registry = CollectorRegistry()
    mongo = connect(settings)
    reports = ReportRepository(database(mongo, settings))
    context = ReportContext(reports, departments, targets, book, clock=clock)
    broker = make_broker(settings, service="reporting", registry=registry)
    ingest = Ingest(reports, registry, departments=departments)
    broker.include_router(build_routes(ingest, group_id=settings.consumer_group("reporting")))
    cases = Gauge(
        "qinglian_cases", "Cases by state group: open or overdue.", ["status"], registry=registry
    )

    async def refresh_case_gauges() -> None:
        while True:
            try:
                now = clock()
                facts = await reports.all_cases()
                cases.labels("open").set(sum(fact.closed_at is None for fact in facts))
                cases.labels("overdue").set(sum(fact.overdue(now) for fact in facts))
            except Exception:  # the next round tries again; the reason is logged
                logger.exception("could not refresh the case gauges")
            await asyncio.sleep(settings.gauge_refresh_seconds)

    app = service_app(
        title="Qinglian reporting",
        settings=settings,
        broker=broker,
        mongo=mongo,
        registry=registry,
        topics=SERVICES["reporting"].topics,
        background=refresh_case_gauges,
    )
    app.state.report_tokens = ReportTokens(reports, cache_seconds=settings.token_cache_seconds)
    app.state.dashboard_sessions = DashboardSessions(
        reports,
        lifetime=timedelta(hours=settings.session_hours),
        secure=settings.env != "development",  # development runs plain HTTP on loopback
        clock=clock,
    )
    app.include_router(build_api(context))
    app.include_router(build_dashboard(context))
    return app
