"""Study and warning-education sessions (专题学习, 警示教育) held by departments.

000 §三(三): at least one study session a month, covering every staff member (100% 覆盖);
004 §五: warning education of every clinical head. A month without one is a 存在问题
(R-MONTHLY-STUDY).
"""

from collections.abc import Hashable
from typing import Annotated, Literal, Self, TypeVar

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from schemas.base import Code, Contract, Event, EventDay, Submission
from schemas.labels import LabelledEnum

_Item = TypeVar("_Item", bound=Hashable)


def _distinct(items: tuple[_Item, ...]) -> tuple[_Item, ...]:
    if len(set(items)) != len(items):
        raise ValueError("each entry may appear only once")
    return items


class TrainingKind(LabelledEnum):
    STUDY = "study", "专题学习"
    WARNING_EDUCATION = "warning_education", "警示教育"


Topic = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Attendees = Annotated[tuple[Code, ...], Field(max_length=5000), AfterValidator(_distinct)]
Headcount = Annotated[int, Field(strict=True, ge=1, le=1_000_000)]


class TrainingHeldFacts(Contract):
    department: Code
    held_on: EventDay
    topic: Topic
    kind: TrainingKind
    attendee_ids: Attendees = Field(description="Staff who attended, each once.")
    headcount: Headcount = Field(
        description="Staff the department has; the coverage rate is attendees / headcount."
    )

    @model_validator(mode="after")
    def _no_more_attendees_than_staff(self) -> Self:
        if len(self.attendee_ids) > self.headcount:
            raise ValueError("more attendees than the department's headcount")
        return self


class TrainingHeldSubmission(Submission, TrainingHeldFacts):
    """A session as the department records it."""

    event_type: Literal["training_held"] = "training_held"


class TrainingHeldReceived(Event, TrainingHeldFacts):
    """A session accepted by intake."""

    event_type: Literal["training_held"] = "training_held"
    schema_version: Literal[1] = 1
