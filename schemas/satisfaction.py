"""Instant satisfaction ratings (即时满意度评价) at the registration, settlement, admission and
discharge touchpoints.

000 §四(七): satisfaction surveys at the registration and settlement windows feed the leads
(线索) on red envelopes and kickbacks.
"""

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from schemas.base import Code, Contract, Event, Submission
from schemas.labels import LabelledEnum


class Touchpoint(LabelledEnum):
    REGISTRATION = "registration", "挂号"
    SETTLEMENT = "settlement", "结算"
    ADMISSION = "admission", "入院"
    DISCHARGE = "discharge", "出院"


Score = Annotated[int, Field(strict=True, ge=1, le=5)]
"""1 (very dissatisfied) to 5 (very satisfied); a whole number, not a string or a bool."""
Comment = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class SatisfactionFacts(Contract):
    touchpoint: Touchpoint
    department: Code
    staff_id: Code | None = Field(default=None, description="The staff member rated, if any.")
    score: Score
    comment: Comment | None = Field(default=None, description="The patient's own words, if any.")


class SatisfactionSubmission(Submission, SatisfactionFacts):
    """A rating as the touchpoint terminal sends it."""

    event_type: Literal["satisfaction"] = "satisfaction"


class SatisfactionReceived(Event, SatisfactionFacts):
    """A rating accepted by intake."""

    event_type: Literal["satisfaction"] = "satisfaction"
    schema_version: Literal[1] = 1
