"""Monthly drug and consumable use rankings (药品耗材使用排名) from pharmacy.

000 §六(十四): staff at the top of the ranking without a justification get graded measures
(R-PRESCRIBE).
"""

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from schemas.base import YEAR_PATTERN, Code, Contract, Event, Flag, Submission
from schemas.labels import LabelledEnum


class ItemKind(LabelledEnum):
    DRUG = "drug", "药品"
    CONSUMABLE = "consumable", "耗材"


ItemName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Month = Annotated[
    str,
    StringConstraints(pattern=rf"^{YEAR_PATTERN}-(0[1-9]|1[0-2])$"),
    Field(description="The month ranked, YYYY-MM.", examples=["2026-11"]),
]
Rank = Annotated[int, Field(strict=True, ge=1, le=1_000_000, description="1 is the heaviest user.")]
Justification = Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class PrescriptionRankingFacts(Contract):
    staff_id: Code
    department: Code
    item_code: Code
    item_name: ItemName
    item_kind: ItemKind
    month: Month
    rank: Rank
    justified: Flag = Field(description="Pharmacy accepted a clinical justification for the use.")
    justification: Justification | None = None


class PrescriptionRankingSubmission(Submission, PrescriptionRankingFacts):
    """A ranking entry as pharmacy sends it."""

    event_type: Literal["prescription_ranking"] = "prescription_ranking"


class PrescriptionRankingReceived(Event, PrescriptionRankingFacts):
    """A ranking entry accepted by intake."""

    event_type: Literal["prescription_ranking"] = "prescription_ranking"
    schema_version: Literal[1] = 1
