"""The follow-up channel between the conduct office and a reporter (举报人), by follow-up code."""

import uuid
from typing import Annotated, Literal

from pydantic import StringConstraints

from schemas.base import Contract, EventTime, Flag

CodeDigest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""A follow-up code's SHA-256, in hex: what finds a code without keeping it."""

FollowUpText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)
]
"""A message's text: surrounding spaces dropped, so a text of spaces alone is no text."""


class ReporterAddition(Contract):
    """Information a reporter added to their complaint, using its follow-up code."""

    schema_version: Literal[1] = 1
    event_id: uuid.UUID
    complaint_event_id: uuid.UUID
    text: FollowUpText
    received_at: EventTime


class ReporterReply(Contract):
    """A message the conduct office chose to send back to a reporter."""

    schema_version: Literal[1] = 1
    event_id: uuid.UUID
    case_id: str
    text: FollowUpText
    sent_by: str
    """The source system (API key holder) that sent it."""
    sent_at: EventTime
    shares_outcome: Flag = False
    """The office shares this text as the outcome of the case (调查结论) with the reporter: the
    portal shows the latest one apart from the messages."""


class FollowUpCodeIssued(Contract):
    """A complaint's follow-up code, as the reporters' portal recognises it: by its SHA-256.

    The code itself is in intake's answer to the sender alone; a code's SHA-256 does not give
    the code back (about 190 random bits)."""

    schema_version: Literal[1] = 1
    complaint_event_id: uuid.UUID
    code_digest: CodeDigest
    received_at: EventTime
    """When intake received the complaint: the reporter's follow-up starts there."""
