"""Wiring: departments, store, read model and its consumers, accounts and sessions, intake,
the pages and the session endpoint."""

from datetime import timedelta

import httpx
from fastapi import FastAPI

from schemas import topics
from schemas.acknowledgement import NotificationAcknowledged
from services.common.addressees import AddresseeDirectory
from services.common.consuming import Take
from services.common.departments import DepartmentCatalogue
from services.common.documents import Documents
from services.common.intake_client import IntakeClient
from services.common.service import Clock, Service, system_clock
from services.desk.access import Rules
from services.desk.acknowledgements import Acknowledging, ack_pages
from services.desk.api import session_api
from services.desk.attachments import attachment_pages
from services.desk.casework import Casework
from services.desk.directory import Directory
from services.desk.notifications import Notifications
from services.desk.pages import pages
from services.desk.readmodel import CaseIndex, ReadModel
from services.desk.register import register_pages
from services.desk.settings import DeskSettings
from services.desk.signin import Accounts, Limits, Sessions, SignIn
from services.desk.store import DeskStore
from services.desk.web import Desk, install


def create_app(
    settings: DeskSettings,
    *,
    clock: Clock = system_clock,
    documents: Documents | None = None,
    intake_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    # A bad catalogue or directory stops the service here, before it consumes anything.
    catalogue = DepartmentCatalogue.from_file(settings.departments)
    addressees = AddresseeDirectory.load(settings.addressees, catalogue)
    service = Service("desk", settings, clock=clock, documents=documents)
    store = DeskStore(service.documents)
    index = CaseIndex(catalogue)
    read_model = ReadModel(store, index, clock=clock)
    service.on_start.append(read_model.load_index)
    service.every(
        settings.index_refresh_seconds,
        read_model.refresh_index,
        what="taking in the cases other desk instances stored",
    )
    app = service.app(
        title="Qinglian desk 案件台",
        consumes=_read_model_inputs(read_model),
        apis=[pages, session_api, ack_pages, register_pages, attachment_pages],
    )
    rules = Rules(catalogue, settings.conduct_office_department)
    app.state.acknowledging = Acknowledging(
        store.acknowledgements,
        Notifications(store, index, rules),
        addressees,
        service.broker.publisher(topics.ACKNOWLEDGEMENTS, schema=NotificationAcknowledged),
        settings.ack_link_key().get_secret_value().encode(),
        clock,
    )
    accounts = Accounts(store, catalogue)
    limits = Limits(
        per_account=settings.sign_in_failures_per_account,
        per_address=settings.sign_in_failures_per_address,
        window=timedelta(minutes=settings.sign_in_failure_window_minutes),
    )
    directory = Directory(settings) if settings.ldap_url else None
    intake = IntakeClient(
        settings.intake_url, settings.intake_api_key(), transport=intake_transport
    )
    casework = Casework(store, index, rules, intake, clock=clock, page_size=settings.page_size)
    sessions = Sessions(
        store,
        idle=timedelta(minutes=settings.session_idle_minutes),
        lifetime=timedelta(hours=settings.session_hours),
        clock=clock,
    )
    sign_in = SignIn(store, accounts, limits=limits, directory=directory, clock=clock)
    install(app, Desk(settings, catalogue, casework, accounts, sign_in, sessions))
    return app


def _read_model_inputs(read_model: ReadModel) -> dict[str, Take]:
    """Each topic the read model is made from, with the method that keeps its records."""
    return {
        topics.CASES: read_model.cases,
        topics.COMPLAINTS: read_model.complaints,
        topics.INVESTIGATION_FINDINGS: read_model.findings,
        topics.DECISIONS: read_model.decisions,
        topics.REPORTER_ADDITIONS: read_model.additions,
        topics.REPORTER_REPLIES: read_model.replies,
        topics.NOTIFICATIONS: read_model.notifications,
        topics.ACKNOWLEDGEMENTS: read_model.acknowledgements,
    }
