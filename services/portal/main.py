"""Wiring: the store, the follow-ups, the wrong-code limit, the Kafka readers, the HTTP routes."""

from datetime import timedelta

from fastapi import FastAPI

from services.common.kafka_access import SERVICES
from services.common.publishing import Publishing
from services.common.refusals import refuse_plainly
from services.common.service import Service
from services.portal import api, handlers
from services.portal.follow_ups import FollowUps
from services.portal.settings import PortalSettings
from services.portal.store import PortalStore
from services.portal.wrong_codes import WrongCodeLimit


def create_app(settings: PortalSettings) -> FastAPI:
    service = Service("portal", settings)
    store = PortalStore.on(service.documents)
    publishing = Publishing(
        service.broker, api.PUBLISHED, kafka_check_seconds=settings.kafka_check_seconds
    )
    follow_ups = FollowUps(store, publish=publishing, kafka_reachable=publishing.kafka_reachable)
    window = timedelta(seconds=settings.follow_up_failure_window_seconds)
    wrong_codes = WrongCodeLimit(
        store,
        address_key=settings.address_key(),
        allowed=settings.follow_up_failures_allowed,
        window=window,
    )
    service.every(
        window.total_seconds(),
        lambda: wrong_codes.forget(now=service.clock()),
        what="forgetting old wrong follow-up codes",
    )
    app = service.app(
        title="Qinglian portal",
        topics=SERVICES["portal"].topics,
        routers=[handlers.routes(service.group_id, follow_ups)],
        apis=[api.router],
    )
    app.state.portal = api.PortalApi(follow_ups, wrong_codes, service.clock)
    refuse_plainly(app, max_body_bytes=settings.max_body_bytes, by_path={})
    return app
