"""Wiring: data files, store, broker, metrics, HTTP routes, the dashboard, the desk that says
who is signed in."""

import functools

import httpx
from fastapi import FastAPI

from services.common.departments import DepartmentCatalogue
from services.common.desk_sessions import DeskSessions
from services.common.pages import page_headers, page_policy
from services.common.service import Clock, Service, system_clock
from services.reporting.access import Access, report_tokens
from services.reporting.api import api
from services.reporting.dashboard import pages
from services.reporting.handlers import Metrics, refresh_case_gauges, routes
from services.reporting.ingest import Ingest
from services.reporting.kpi import KpiTargets
from services.reporting.reports import Reports
from services.reporting.settings import ReportingSettings
from services.reporting.store import ReportStore
from services.reporting.study import StudyRule


def create_app(
    settings: ReportingSettings,
    *,
    clock: Clock = system_clock,
    desk_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    # Bad data files stop the service here, before it consumes anything.
    departments = DepartmentCatalogue.from_file(settings.departments)
    targets, study = (
        KpiTargets.from_file(settings.kpi_targets),
        StudyRule.from_file(settings.study_rule),
    )
    service = Service("reporting", settings, clock=clock)
    store = ReportStore(service.documents)
    reports = Reports(store, catalogue=departments, targets=targets, study=study, clock=clock)
    metrics = Metrics(service.registry)
    service.every(
        settings.gauge_refresh_seconds,
        functools.partial(refresh_case_gauges, reports, metrics),
        what="refreshing the case gauges",
    )
    ingest = Ingest(store, departments=departments)
    app = service.app(
        title="Qinglian reporting",
        routers=[routes(service.group_id, ingest=ingest, metrics=metrics)],
        apis=[api, pages],
    )
    desk = DeskSessions(
        settings.desk_url,
        settings.session_reader_key(),
        cache_seconds=settings.desk_session_cache_seconds,
        transport=desk_transport,
    )
    service.on_stop.append(desk.close)
    app.state.reports = reports
    app.state.access = Access(
        report_tokens(service.documents, cache_seconds=settings.token_cache_seconds),
        desk,
        desk_page_url=settings.desk_public_url.rstrip("/"),
    )
    # The sign-out form on the pages goes to the desk.
    app.middleware("http")(page_headers(page_policy(settings.desk_public_url)))
    return app
