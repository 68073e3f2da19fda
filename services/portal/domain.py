"""What a reporter may see of their complaint, and how the portal keeps track of it. Pure: no
Kafka, no database, no clock.

A reporter sees the state of the case their complaint is part of (or "received" before it has
one), when it last changed, and the replies the conduct office sent on that case: to the
reporter of the case's first complaint, as intake did (the others of a case linked to it see
its state). Nothing else: no case id, department, accused, or anybody's text but the office's.
"""

import uuid
from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel

from schemas.case import CaseKind, CaseState, CaseUpdated

RECEIVED = "received"
"""A complaint's status before the router has opened or linked its case."""


class KnownCode(BaseModel):
    """A follow-up code the portal knows (stored under the code's SHA-256)."""

    complaint_event_id: uuid.UUID
    received_at: datetime


class CaseLink(BaseModel):
    """The case a complaint is part of (stored under the complaint's event id)."""

    case_id: str


class CaseProgress(BaseModel):
    """A complaint case as far as reporters may see it, at its latest revision."""

    revision: int
    state: CaseState
    updated_at: datetime
    source_event_ids: tuple[uuid.UUID, ...]
    """In the case's order: the first opened it, later ones were linked."""
    deadline: datetime | None = None
    """When the investigation is due (kept since the pages show it; None in what was stored
    before)."""


class Reply(BaseModel):
    """A message the conduct office sent on a case (stored under its event id)."""

    case_id: str
    text: str
    sent_at: datetime
    outcome: bool = False
    """The office shared it as the case's outcome."""


class Added(BaseModel):
    """What a reporter added to their complaint (stored under its event id)."""

    complaint_event_id: uuid.UUID
    text: str
    at: datetime
    attachments: int = 0
    """How many files came with it (kept by intake, sealed; the page shows only the count)."""


class ReplyView(BaseModel):
    at: datetime
    text: str


class FollowUpView(BaseModel):
    """What a reporter may see: the case's status and the replies sent to them. Nothing else."""

    status: str
    updated_at: datetime
    replies: list[ReplyView]


def latest_progress(cases: Iterable[CaseUpdated]) -> dict[str, CaseProgress]:
    """The highest revision of each complaint case among ``cases`` (other cases, of rep visits
    and rectifications, have no reporter)."""
    latest: dict[str, CaseProgress] = {}
    for case in cases:
        if case.kind is not CaseKind.COMPLAINT:
            continue
        known = latest.get(case.case_id)
        if known is None or known.revision < case.revision:
            latest[case.case_id] = CaseProgress(
                revision=case.revision,
                state=case.state,
                updated_at=case.updated_at,
                source_event_ids=case.source_event_ids,
                deadline=case.deadline,
            )
    return latest


def newer(
    latest: dict[str, CaseProgress], stored: dict[str, CaseProgress]
) -> dict[str, CaseProgress]:
    """Those of ``latest`` past what is stored (a replay or a redelivery brings older ones)."""
    return {
        case_id: progress
        for case_id, progress in latest.items()
        if case_id not in stored or stored[case_id].revision < progress.revision
    }


def follow_up_view(
    known: KnownCode, progress: CaseProgress | None, replies: Iterable[Reply]
) -> FollowUpView:
    """``replies``: those the reporter may read (see the module's docstring)."""
    shown = sorted(replies, key=lambda reply: reply.sent_at)
    moments = [known.received_at, *(reply.sent_at for reply in shown)]
    if progress is not None:
        moments.append(progress.updated_at)
    return FollowUpView(
        status=RECEIVED if progress is None else str(progress.state),
        updated_at=max(moments),
        replies=[ReplyView(at=reply.sent_at, text=reply.text) for reply in shown],
    )


STATUS_ZH = {
    RECEIVED: "已受理",
    CaseState.OPENED: "已受理",
    CaseState.ASSIGNED: "已受理",
    CaseState.INVESTIGATING: "调查中",
    CaseState.FINDING_RECORDED: "已有调查结论",
    CaseState.CLOSED: "已结案",
}
"""The status as a reporter reads it: the office's inner steps (opened, assigned) are one."""
STATUS_EN = {
    "已受理": "received",
    "调查中": "under investigation",
    "已有调查结论": "investigated",
    "已结案": "closed",
}


class Message(BaseModel):
    at: datetime
    from_reporter: bool
    text: str
    attachments: int = 0


class FollowUpPage(BaseModel):
    """What the follow-up page shows: the status in plain Chinese, the deadline once the case
    has one, and the messages both ways, oldest first."""

    status_zh: str
    status_en: str
    updated_at: datetime
    deadline: datetime | None
    outcome: str | None
    """The latest text the office shared as the case's outcome."""
    messages: list[Message]


def follow_up_page(
    known: KnownCode,
    progress: CaseProgress | None,
    replies: Iterable[Reply],
    added: Iterable[Added],
) -> FollowUpPage:
    """``replies`` as for ``follow_up_view``; ``added``: what this complaint's reporter added."""
    replies = list(replies)
    view = follow_up_view(known, progress, replies)
    shared = sorted((r for r in replies if r.outcome), key=lambda reply: reply.sent_at)
    messages = [Message(at=r.at, from_reporter=False, text=r.text) for r in view.replies]
    messages += [
        Message(at=a.at, from_reporter=True, text=a.text, attachments=a.attachments) for a in added
    ]
    status_zh = STATUS_ZH.get(view.status, "已受理")
    closed = progress is not None and progress.state in (
        CaseState.FINDING_RECORDED,
        CaseState.CLOSED,
    )
    return FollowUpPage(
        status_zh=status_zh,
        status_en=STATUS_EN[status_zh],
        updated_at=max([view.updated_at, *(a.at for a in added)]),
        deadline=None if progress is None or closed else progress.deadline,
        outcome=shared[-1].text if shared else None,
        messages=sorted(messages, key=lambda message: message.at),
    )
