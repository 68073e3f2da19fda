"""Investigation findings (调查结论) of the department that investigated a case.

A substantiated finding drives the rules: the two-year promotion bar (004 §五(三)), reporting
upward and transfer to the judicial organs (000 §六(十五), 004 §四(三)2), and the vendor
cut-off (000 §二, §六(十二)). The finding date is ``occurred_at``.
"""

from collections.abc import Hashable
from typing import Annotated, Literal, Self, TypeVar

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from schemas.base import AmountCNY, Code, Contract, Event, Flag, Submission
from schemas.case import CaseId
from schemas.complaint import ComplaintCategory

_Item = TypeVar("_Item", bound=Hashable)


def _distinct(items: tuple[_Item, ...]) -> tuple[_Item, ...]:
    if len(set(items)) != len(items):
        raise ValueError("each entry may appear only once")
    return items


ConfirmedCategories = Annotated[
    tuple[ComplaintCategory, ...],
    Field(max_length=len(ComplaintCategory)),
    AfterValidator(_distinct),
]
Summary = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
CompanyName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class InvestigationFindingFacts(Contract):
    case_id: CaseId
    substantiated: Flag = Field(description="查实: the investigation confirmed the breach.")
    confirmed_categories: ConfirmedCategories = Field(
        default=(), description="What was confirmed; empty exactly when not substantiated."
    )
    staff_ids: tuple[Code, ...] = Field(
        default=(), max_length=50, description="Staff the finding concerns."
    )
    confirmed_amount_cny: AmountCNY | None = Field(
        default=None, description="Amount confirmed by the investigation, in yuan."
    )
    severe_social_impact: Flag = Field(default=False, description="造成严重社会影响.")
    suspected_crime: Flag = Field(default=False, description="涉嫌犯罪.")
    company_code: Code | None = Field(
        default=None, description="The company involved in a benefit transfer, if any."
    )
    company_name: CompanyName | None = None
    summary: Summary

    @model_validator(mode="after")
    def _categories_match_the_conclusion(self) -> Self:
        if self.substantiated and not self.confirmed_categories:
            raise ValueError("a substantiated finding names at least one confirmed category")
        if not self.substantiated and self.confirmed_categories:
            raise ValueError("a finding that is not substantiated confirms no category")
        return self

    @model_validator(mode="after")
    def _company_named_in_full(self) -> Self:
        if (self.company_code is None) != (self.company_name is None):
            raise ValueError("give both company_code and company_name, or neither")
        return self


class InvestigationFindingSubmission(Submission, InvestigationFindingFacts):
    """A finding as the investigating department records it."""

    event_type: Literal["investigation_finding"] = "investigation_finding"


class InvestigationFindingReceived(Event, InvestigationFindingFacts):
    """A finding accepted by intake."""

    event_type: Literal["investigation_finding"] = "investigation_finding"
    schema_version: Literal[1] = 1
