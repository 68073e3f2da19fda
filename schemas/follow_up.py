"""The follow-up channel between the conduct office and a reporter (举报人), by follow-up code."""

import uuid
from typing import Annotated, Literal

from pydantic import StringConstraints

from schemas.base import Contract, EventTime

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
