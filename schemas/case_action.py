"""Actions the conduct office (行风办) takes on a case: reassign it, start or close the
investigation. The router records each in the case's history, or refuses it there with the
reason (closing a case that has no finding, reassigning to an unknown department, …).
"""

from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from schemas.base import Code, Contract, Event, Submission
from schemas.case import CaseId, CaseState
from schemas.labels import LabelledEnum

Reason = Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class CaseActionKind(LabelledEnum):
    REASSIGN = "reassign", "改派"
    START_INVESTIGATION = "start_investigation", "开始调查"
    CLOSE = "close", "结案"


TAKEN_IN: dict[CaseActionKind, frozenset[CaseState]] = {
    CaseActionKind.START_INVESTIGATION: frozenset({CaseState.ASSIGNED}),
    CaseActionKind.CLOSE: frozenset({CaseState.FINDING_RECORDED}),
}
"""The states in which the router takes each action that moves a case on; in another it
refuses it, and the desk does not offer it. (A reassignment fits any open case.)"""


class CaseActionFacts(Contract):
    case_id: CaseId
    action: CaseActionKind
    actor_staff_id: Code = Field(description="The officer who took the action.")
    to_department: Code | None = Field(
        default=None, description="For reassign: the department that takes the case over."
    )
    reason: Reason | None = None

    @model_validator(mode="after")
    def _reassign_names_a_department(self) -> Self:
        if (self.action is CaseActionKind.REASSIGN) != (self.to_department is not None):
            raise ValueError("to_department is given exactly when the action is reassign")
        if self.action is CaseActionKind.REASSIGN and self.reason is None:
            raise ValueError("a reassignment gives its reason")
        return self


class CaseActionSubmission(Submission, CaseActionFacts):
    """An action as the conduct office's system sends it."""

    event_type: Literal["case_action"] = "case_action"


class CaseActionReceived(Event, CaseActionFacts):
    """An action accepted by intake."""

    event_type: Literal["case_action"] = "case_action"
    schema_version: Literal[1] = 1
