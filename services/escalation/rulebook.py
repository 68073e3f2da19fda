"""The rule book's data (rules.toml): thresholds, windows, places, hours and keywords. Pure.

Each section is named after the rule that reads it; the rules themselves are in ``rules/``.
"""

import unicodedata
from datetime import time
from functools import cache
from typing import Annotated

import opencc
from pydantic import Field, field_validator

from schemas.complaint import ComplaintCategory
from schemas.rectification import RectificationStatus
from schemas.visitor_log import PlaceKind
from services.common.datafile import DataFile

Weekday = Annotated[int, Field(ge=1, le=7, strict=True)]
"""ISO weekday: 1 is Monday, 7 is Sunday."""
Score = Annotated[int, Field(ge=1, le=5, strict=True)]


@cache
def _to_simplified() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def normalise_text(text: str) -> str:
    """Text as keywords are matched: simplified characters, half-width, no spaces, lower case.

    So 紅包, 红 包 and ＨＯＮＧＢＡＯ all read as the keyword written 红包 or hongbao.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    simplified: str = _to_simplified().convert("".join(folded.split()))
    return simplified


class RepVisitRule(DataFile):
    """R-REP-VISIT: reps see staff at set times and places, by appointment (三定三有)."""

    allowed_weekdays: tuple[Weekday, ...] = Field(min_length=1)
    allowed_from: time
    allowed_until: time
    allowed_place_kinds: tuple[PlaceKind, ...] = Field(min_length=1)
    clinical_place_kinds: tuple[PlaceKind, ...]
    """Places where a rep on no clinical business is removed at once (驱离)."""


class KeywordGroup(DataFile):
    category: ComplaintCategory
    words: tuple[str, ...] = Field(min_length=1)

    @field_validator("words")
    @classmethod
    def _normalised(cls, words: tuple[str, ...]) -> tuple[str, ...]:
        normalised = tuple(normalise_text(word) for word in words)
        if not all(normalised):
            raise ValueError("a keyword may not be empty")
        return normalised


class SatisfactionLeadRule(DataFile):
    """R-SATISFACTION-LEAD: a low score or a comment naming gifts, cash, kickbacks or
    scalping is a lead (线索)."""

    low_score_at_most: Score
    low_score_category: ComplaintCategory
    keywords: tuple[KeywordGroup, ...] = Field(min_length=1)


class RectifyRule(DataFile):
    """R-RECTIFY: which rectification statuses open a case (通报批评 follows)."""

    opens_case: tuple[RectificationStatus, ...] = Field(min_length=1)


class RuleBook(DataFile):
    version: str = Field(min_length=1)
    rep_visit: RepVisitRule
    satisfaction_lead: SatisfactionLeadRule
    rectify: RectifyRule
