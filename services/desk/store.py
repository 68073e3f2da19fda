"""What the desk keeps, declared once on the store adapter.

The read model (cases, complaints, findings, decisions, reporters' additions, replies, the
notifier's notifications and their acknowledgements) is built from the topics alone and can
be rebuilt by replaying them into an empty database. The rest is the desk's own: accounts,
sessions, sign-in failures and the sign-in log, the actions people sent and who viewed which
case.
"""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from schemas.acknowledgement import NotificationAcknowledged
from schemas.case import CaseUpdated
from schemas.complaint import ComplaintReceived
from schemas.decision import Decision
from schemas.finding import InvestigationFindingReceived
from schemas.follow_up import ReporterAddition, ReporterReply
from schemas.notification import NotificationUpdated
from services.common.documents import Documents
from services.common.roles import Role
from services.desk.access import Account, ActionKind, CaseRow


class Session(BaseModel):
    """A signed-in browser. Kept under the SHA-256 of its random id; the cookie holds the id."""

    username: str
    created_at: datetime
    last_seen_at: datetime
    csrf_token: str = Field(repr=False)
    address: str


class SignInFailure(BaseModel):
    key: str
    """``account:<username>`` or ``address:<client address>``."""
    at: datetime


class SignInRecord(BaseModel):
    """Every sign-in, failure, lock-out and sign-out, for the record (never a password)."""

    kind: Literal["signed_in", "failed", "locked_out", "signed_out", "password_changed"]
    username: str
    address: str
    at: datetime
    detail: str = ""


class SentAction(BaseModel):
    """An action a person took on the desk, as sent to intake; its outcome is read from the
    case when the router has applied it."""

    form_token: str
    case_id: str
    kind: ActionKind
    actor_username: str
    actor_name: str
    actor_staff_id: str
    submitted_at: datetime
    event_id: uuid.UUID | None = None
    """The event intake accepted (derived from the form's token, so known before sending)."""
    text_digest: str | None = None
    """A reply: SHA-256 of its text, to know it when it comes back on the replies topic."""
    status: Literal["sending", "sent", "failed"] = "sending"
    problem: str | None = None


class CaseView(BaseModel):
    case_id: str
    username: str
    display_name: str
    role: Role
    at: datetime


class DeskStore:
    def __init__(self, documents: Documents) -> None:
        self.cases = documents.versioned("desk_cases", CaseUpdated)
        self.rows = documents.records("desk_case_rows", CaseRow, fields=("stored_minute",))
        self.complaints = documents.records("desk_complaints", ComplaintReceived)
        self.findings = documents.records(
            "desk_findings", InvestigationFindingReceived, fields=("case_id",)
        )
        self.decisions = documents.records("desk_decisions", Decision, fields=("case_id",))
        self.additions = documents.records(
            "desk_additions", ReporterAddition, fields=("complaint_event_id",)
        )
        self.replies = documents.records("desk_replies", ReporterReply, fields=("case_id",))
        # Each notification at its latest state; a follow-up names what it acknowledges.
        self.notifications = documents.records(
            "desk_notifications",
            NotificationUpdated,
            fields=("case_id", "acknowledges", "status"),
        )
        # The first acknowledgement of each notification, by its id (made here or on the topic).
        self.acknowledgements = documents.records("desk_acknowledgements", NotificationAcknowledged)
        self.accounts = documents.records("desk_accounts", Account, fields=("role",))
        self.sessions = documents.records("desk_sessions", Session)
        self.failures = documents.records("desk_sign_in_failures", SignInFailure, fields=("key",))
        self.sign_ins = documents.records("desk_sign_ins", SignInRecord, fields=("username",))
        self.actions = documents.records("desk_actions", SentAction, fields=("case_id",))
        self.views = documents.records("desk_case_views", CaseView, fields=("case_id",))
