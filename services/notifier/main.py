"""Wiring: the directory and catalogue, the outbox on the store, the channels, the
subscribers, and the periodic rounds (send what is due; remind and escalate)."""

from datetime import timedelta

import httpx
from fastapi import FastAPI

from schemas import topics
from schemas.notification import NotificationUpdated
from services.common.addressees import AddresseeDirectory
from services.common.departments import DepartmentCatalogue
from services.common.service import Clock, Service, system_clock
from services.notifier.channels import AckLinks, Channels, NotificationPublisher, Smtp
from services.notifier.metrics import NotifierMetrics
from services.notifier.outbox import Notifier, Sending
from services.notifier.settings import NotifierSettings
from services.notifier.store import NotifierStore


def create_app(settings: NotifierSettings, *, clock: Clock = system_clock) -> FastAPI:
    # A bad directory or catalogue stops the service here, before it consumes anything.
    catalogue = DepartmentCatalogue.from_file(settings.departments)
    directory = AddresseeDirectory.load(settings.addressees, catalogue)
    service = Service("notifier", settings, clock=clock)
    http = httpx.AsyncClient(timeout=settings.robot_timeout_seconds, trust_env=False)
    service.on_stop.append(http.aclose)
    channels = Channels(smtp=smtp_of(settings), links=links_of(settings), http=http)
    notifier = Notifier(
        NotifierStore(service.documents),
        directory,
        catalogue,
        desk_url=settings.desk_url,
        clock=service.clock,
        deliver=channels.deliver,
        channels_of=Channels.of,
        sending=Sending(
            max_attempts=settings.max_attempts,
            first_pause=settings.first_retry_seconds,
            longest_pause=settings.longest_retry_seconds,
            claim_seconds=settings.send_claim_seconds,
        ),
        metrics=NotifierMetrics.on(service.registry),
        publish=NotificationPublisher(
            service.broker.publisher(topics.NOTIFICATIONS, schema=NotificationUpdated)
        ).publish,
        decided_from=settings.notify_decided_from,
    )
    service.every(settings.send_every_seconds, notifier.send_due, what="sending the outbox")
    service.every(
        settings.send_every_seconds, notifier.announce, what="publishing notifications' states"
    )
    service.every(
        settings.follow_up_every_seconds, notifier.follow_up, what="reminding and escalating"
    )
    return service.app(
        title="Qinglian notifier",
        consumes={
            topics.DECISIONS: notifier.take_decisions,
            topics.CASES: notifier.take_cases,
            topics.ACKNOWLEDGEMENTS: notifier.take_acknowledgements,
        },
    )


def smtp_of(settings: NotifierSettings) -> Smtp:
    return Smtp(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.mail_from,
        message_id_domain=settings.message_id_domain,
        starttls=settings.smtp_starttls,
        credentials=settings.smtp_credentials(),
        timeout=settings.smtp_timeout_seconds,
        ca_file=settings.smtp_ca_file,
    )


def links_of(settings: NotifierSettings) -> AckLinks:
    return AckLinks(
        desk_url=settings.desk_url,
        key=settings.ack_link_key(),
        valid_for=timedelta(days=settings.ack_link_days),
    )
