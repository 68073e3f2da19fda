"""Red envelopes surrendered voluntarily (红包主动上缴), recorded by finance.

000 §四(七): a red envelope handed in of one's own accord is recorded as surrendered, not as a
breach (R-SURRENDER).
"""

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from schemas.base import AmountCNY, Code, Contract, Event, EventDay, Submission

PositiveAmountCNY = Annotated[AmountCNY, Field(gt=0)]


class RedEnvelopeSurrenderFacts(Contract):
    staff_id: Code
    amount_cny: PositiveAmountCNY = Field(description="Amount handed in, in yuan.")
    received_on: EventDay = Field(description="The day the staff member was given the envelope.")
    surrendered_on: EventDay = Field(description="The day finance took it in.")
    patient_ref: Code | None = Field(
        default=None, description="The patient or family it came from, as the hospital knows them."
    )

    @model_validator(mode="after")
    def _surrendered_after_received(self) -> Self:
        if self.surrendered_on < self.received_on:
            raise ValueError("surrendered_on must not precede received_on")
        return self


class RedEnvelopeSurrenderSubmission(Submission, RedEnvelopeSurrenderFacts):
    """A surrender as finance records it."""

    event_type: Literal["red_envelope_surrender"] = "red_envelope_surrender"


class RedEnvelopeSurrenderReceived(Event, RedEnvelopeSurrenderFacts):
    """A surrender accepted by intake."""

    event_type: Literal["red_envelope_surrender"] = "red_envelope_surrender"
    schema_version: Literal[1] = 1
