"""The rule book's data (rules.toml): thresholds, windows, places, hours and keywords. Pure.

Each section is named after the rule that reads it; the rules themselves are in ``rules/``.
"""

import unicodedata
from datetime import time
from decimal import Decimal
from functools import cache
from typing import Annotated, Self

import opencc
from pydantic import Field, field_validator, model_validator

from schemas.complaint import ComplaintCategory
from schemas.rectification import RectificationStatus
from schemas.visitor_log import PlaceKind
from services.common.datafile import DataFile

Weekday = Annotated[int, Field(ge=1, le=7, strict=True)]
"""ISO weekday: 1 is Monday, 7 is Sunday."""
Score = Annotated[int, Field(ge=1, le=5, strict=True)]
Days = Annotated[int, Field(gt=0, strict=True)]
"""A whole number of days, written as a TOML integer (not "15", not 15.0, not true)."""
Count = Annotated[int, Field(gt=0, strict=True)]
Amount = Annotated[Decimal, Field(ge=0)]
"""Yuan, written as a TOML string ("30000.00") so it stays exact."""


@cache
def _to_simplified() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def _is_filler(character: str) -> bool:
    """Spaces, punctuation and invisible format characters: what evaders put inside words."""
    category = unicodedata.category(character)
    return character.isspace() or category[0] in "ZP" or category == "Cf"


def normalise_text(text: str) -> str:
    """Text as keywords are matched: simplified characters, half-width, lower case, without
    spaces, punctuation or invisible characters.

    So 紅包, 红 包, 红·包, 红\u200b包 and ＨＯＮＧＢＡＯ all read as the keyword 红包 or hongbao.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(character for character in folded if not _is_filler(character))
    simplified: str = _to_simplified().convert(kept)
    return simplified


class RepVisitRule(DataFile):
    """R-REP-VISIT: reps see staff at set times and places, by appointment (三定三有)."""

    allowed_weekdays: tuple[Weekday, ...] = Field(min_length=1)
    allowed_from: time
    allowed_until: time
    allowed_place_kinds: tuple[PlaceKind, ...] = Field(min_length=1)
    clinical_place_kinds: tuple[PlaceKind, ...]
    """Places where a rep on no clinical business is removed at once (驱离)."""

    @model_validator(mode="after")
    def _hours_in_order(self) -> Self:
        if self.allowed_from >= self.allowed_until:
            raise ValueError("allowed_from must be earlier than allowed_until")
        return self


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
    """R-RECTIFY: which rectification statuses open a case and earn a criticism notice
    (通报批评); that many notices within the window are reported upward."""

    opens_case: tuple[RectificationStatus, ...] = Field(min_length=1)
    report_upward_at: Count
    window_days: Days


class PromotionBarRule(DataFile):
    """R-PROMO-2Y: which substantiated findings bar promotion, and for how long."""

    categories: tuple[ComplaintCategory, ...] = Field(min_length=1)
    years: Count


class KickbackTier(DataFile):
    from_cny: Amount
    handling_zh: str = Field(min_length=1)
    handling_en: str = Field(min_length=1)


class KickbackRule(DataFile):
    """R-KICKBACK: reported upward; handling by amount; to the judicial organs from a
    threshold or when a crime is suspected."""

    judicial_transfer_from_cny: Amount
    tiers: tuple[KickbackTier, ...] = Field(min_length=1)

    @field_validator("tiers")
    @classmethod
    def _ascending_from_zero(cls, tiers: tuple[KickbackTier, ...]) -> tuple[KickbackTier, ...]:
        starts = [tier.from_cny for tier in tiers]
        if starts[0] != 0 or starts != sorted(set(starts)):
            raise ValueError("tiers start at 0 and rise, each from a different amount")
        return tiers


class VendorCutoffRule(DataFile):
    """R-VENDOR-CUTOFF: benefit transfers that cut a company off, and for how long."""

    categories: tuple[ComplaintCategory, ...] = Field(min_length=1)
    years: Count


class CountInWindow(DataFile):
    """Escalate when this many happen within the window (R-REP-REPEAT, R-REPEAT-COMPLAINT)."""

    at: Count
    window_days: Days


class PrescribeRule(DataFile):
    """R-PRESCRIBE: rankings at or above this rank, unjustified, count; measures by count
    within the window."""

    top_rank: Count
    window_days: Days


class EveryComplaintRule(DataFile):
    """R-EVERY-COMPLAINT: after the deadline to the department head; this much later to the
    leadership group."""

    leadership_after_days: Days


class SurrenderRule(DataFile):
    """R-SURRENDER: days from receiving to surrendering that still count as voluntary."""

    window_days: Days


class RuleBook(DataFile):
    version: str = Field(min_length=1)
    rep_visit: RepVisitRule
    rep_repeat: CountInWindow
    satisfaction_lead: SatisfactionLeadRule
    rectify: RectifyRule
    promotion_bar: PromotionBarRule
    kickback: KickbackRule
    vendor_cutoff: VendorCutoffRule
    prescribe: PrescribeRule
    every_complaint: EveryComplaintRule
    repeat_complaint: CountInWindow
    surrender: SurrenderRule
