"""Wiring: the store, the vault, the publishers, acceptance, the HTTP routes, the raw topics."""

import functools
from datetime import timedelta

from fastapi import FastAPI

from schemas.attachment import MAX_ATTACHMENT_BYTES
from services.common.kafka_access import SERVICES
from services.common.publishing import Publishing
from services.common.raw_senders import RawSenders
from services.common.refusals import refuse_plainly
from services.common.service import Service
from services.intake import api, attachment_api, handlers
from services.intake.acceptance import Acceptance
from services.intake.attachments import Attachments
from services.intake.crypto import Vault
from services.intake.metrics import IntakeMetrics
from services.intake.settings import IntakeSettings
from services.intake.store import IntakeStore
from services.intake.upgrade import refuse_old_documents


def create_app(settings: IntakeSettings) -> FastAPI:
    # A bad senders file stops the service here, before it consumes anything.
    senders = RawSenders.from_file(settings.raw_senders)
    service = Service("intake", settings)
    store = IntakeStore.on(service.documents, key_cache_seconds=settings.api_key_cache_seconds)
    vault = Vault(settings.master_key())
    publishing = Publishing(
        service.broker, api.PUBLISHED, kafka_check_seconds=settings.kafka_check_seconds
    )
    metrics = IntakeMetrics.on(service.registry)
    acceptance = Acceptance(
        store=store,
        vault=vault,
        publish=publishing,
        kafka_reachable=publishing.kafka_reachable,
        future_tolerance=timedelta(seconds=settings.future_tolerance_seconds),
    )
    raw = handlers.RawIntake(acceptance, vault, publishing, metrics, service.clock)
    service.on_start.append(functools.partial(refuse_old_documents, service.mongo, settings))
    app = service.app(
        title="Qinglian intake",
        topics=(*senders.topics(), *SERVICES["intake"].topics),
        routers=[handlers.routes(service.group_id, raw, senders)],
        apis=[api.router, attachment_api.router],
    )
    app.state.intake = api.IntakeApi(acceptance, store.keys, publishing, metrics, service.clock)
    app.state.attachments = Attachments(store, vault)
    refuse_plainly(
        app,
        max_body_bytes=settings.max_event_bytes,
        by_path={
            "/v1/batch": settings.max_batch_bytes,
            attachment_api.PATH: MAX_ATTACHMENT_BYTES,
        },
    )
    return app
