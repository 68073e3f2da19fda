"""Promotion applications (提职晋级申请) from HR.

004 §五(三): staff found to have breached conduct rules (医德医风), or for drunk driving or
gambling, may not be promoted for two years (两年内不得提职晋级). The application date is
``occurred_at``.
"""

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from schemas.base import Code, Contract, Event, Submission

Position = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class PromotionApplicationFacts(Contract):
    staff_id: Code
    application_id: Code = Field(description="HR's id for the application.")
    target_position: Position | None = Field(
        default=None, description="The post or title applied for (拟任职务/职称)."
    )


class PromotionApplicationSubmission(Submission, PromotionApplicationFacts):
    """A promotion application as HR sends it."""

    event_type: Literal["promotion_application"] = "promotion_application"


class PromotionApplicationReceived(Event, PromotionApplicationFacts):
    """A promotion application accepted by intake."""

    event_type: Literal["promotion_application"] = "promotion_application"
    schema_version: Literal[1] = 1
