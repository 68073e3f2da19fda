"""Wiring: the store, the follow-ups, the limits, intake, the Kafka readers, the pages and the
API."""

from datetime import timedelta

import httpx
from fastapi import FastAPI

from schemas import topics
from services.common.departments import DepartmentCatalogue
from services.common.documents import Documents
from services.common.intake_client import IntakeClient
from services.common.publishing import Publishing
from services.common.refusals import refuse_plainly
from services.common.service import Clock, Service, system_clock
from services.portal import api
from services.portal.follow_ups import FollowUps
from services.portal.pages import pages
from services.portal.ratings import RatingLimit
from services.portal.settings import PortalSettings
from services.portal.store import PortalStore
from services.portal.web import Portal, PortalMetrics, install
from services.portal.wrong_codes import WrongCodeLimit


def _limits(
    settings: PortalSettings, store: PortalStore, service: Service
) -> tuple[WrongCodeLimit, RatingLimit]:
    """The wrong-code and rating limits, each forgetting what its window left behind."""
    window = timedelta(seconds=settings.follow_up_failure_window_seconds)
    wrong_codes = WrongCodeLimit(
        store,
        address_key=settings.address_key(),
        allowed=settings.follow_up_failures_allowed,
        window=window,
    )
    ratings = RatingLimit(
        store,
        key=settings.address_key(),
        per_device=settings.ratings_per_device,
        per_address=settings.ratings_per_address,
        window=timedelta(seconds=settings.rating_window_seconds),
    )
    service.every(
        window.total_seconds(),
        lambda: wrong_codes.forget(now=service.clock()),
        what="forgetting old wrong follow-up codes",
    )
    service.every(
        3600, lambda: ratings.forget(now=service.clock()), what="forgetting old ratings' counts"
    )
    return wrong_codes, ratings


def create_app(
    settings: PortalSettings,
    *,
    clock: Clock = system_clock,
    documents: Documents | None = None,
    intake_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    # A bad catalogue stops the service here, before it consumes anything.
    catalogue = DepartmentCatalogue.from_file(settings.departments)
    service = Service("portal", settings, clock=clock, documents=documents)
    store = PortalStore(service.documents)
    publishing = Publishing(
        service.broker, api.PUBLISHED, kafka_check_seconds=settings.kafka_check_seconds
    )
    follow_ups = FollowUps(store, publish=publishing, kafka_reachable=publishing.kafka_reachable)
    wrong_codes, ratings = _limits(settings, store, service)
    intake = IntakeClient(
        settings.intake_url, settings.intake_api_key(), transport=intake_transport
    )
    service.on_stop.append(intake.close)
    app = service.app(
        title="Qinglian portal",
        consumes={
            topics.FOLLOW_UP_CODES: follow_ups.learn_codes,
            topics.CASES: follow_ups.follow_cases,
            topics.REPORTER_REPLIES: follow_ups.keep_replies,
        },
        apis=[pages, api.router],
    )
    portal = Portal(
        follow_ups,
        wrong_codes,
        ratings,
        intake,
        catalogue,
        qr_key=settings.qr_key(),
        secure_cookies=settings.env != "development",
        clock=service.clock,
        metrics=PortalMetrics.on(service.registry),
    )
    install(app, portal)
    with_files = settings.max_form_with_files_bytes
    refuse_plainly(
        app,
        max_body_bytes=settings.max_body_bytes,
        by_path={"/": with_files, "/follow-up/add": with_files},
    )
    return app
