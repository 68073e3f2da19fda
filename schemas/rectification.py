"""Rectification status (整改) of a department's task, set by the leadership group.

004 §七(二): perfunctory (敷衍整改), ineffective (整治不力) or refused (拒不整改) rectification
is criticised in a notice (通报批评), and reported upward when repeated (R-RECTIFY).
"""

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from schemas.base import Code, Contract, Event, Submission
from schemas.labels import LabelledEnum


class RectificationStatus(LabelledEnum):
    DONE = "done", "已整改"
    PERFUNCTORY = "perfunctory", "敷衍整改"
    INEFFECTIVE = "ineffective", "整治不力"
    REFUSED = "refused", "拒不整改"


Item = Annotated[str, StringConstraints(min_length=1, max_length=300)]
Note = Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class RectificationStatusFacts(Contract):
    department: Code
    item: Item = Field(description="The rectification task, as the task list words it.")
    status: RectificationStatus
    note: Note | None = None


class RectificationStatusSubmission(Submission, RectificationStatusFacts):
    """A status as the leadership group records it."""

    event_type: Literal["rectification_status"] = "rectification_status"


class RectificationStatusReceived(Event, RectificationStatusFacts):
    """A status accepted by intake."""

    event_type: Literal["rectification_status"] = "rectification_status"
    schema_version: Literal[1] = 1
