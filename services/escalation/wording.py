"""How escalation says what its rules decide: one sentence in Chinese and one in English for
each outcome (``said``, from ``wording.toml``), lead, withdrawal and promotion answer. Every
word a decision or a lead carries is written here or in wording.toml; the rules only decide.
Pure (the sentences file is read once, as the package's own data).
"""

import re
from datetime import date
from functools import cache
from pathlib import Path
from string import Formatter
from typing import NamedTuple

from schemas.complaint import ComplaintCategory
from schemas.decision import Decision
from schemas.rectification import RectificationStatusReceived
from schemas.satisfaction import SatisfactionReceived
from schemas.surrender import RedEnvelopeSurrenderReceived
from schemas.visitor_log import VisitorLogReceived
from services.common.datafile import DataFile, Location
from services.escalation.outcomes import (
    JudicialTransfer,
    KickbackReported,
    Outcome,
    OverdueCase,
    PromotionBar,
    VisitBreach,
)
from services.escalation.rulebook import RepVisitRule


class Words(NamedTuple):
    zh: str
    en: str


class Sentence(DataFile):
    zh: str
    en: str


_MADE = ("categories_zh", "categories", "amount_zh", "amount_en", "why_zh", "why_en", "target")
"""The names a sentence may use besides ``subject`` and ``o`` (``_made``)."""


class Sentences(DataFile):
    """wording.toml: each decision's sentences, by the name of the outcome they word."""

    decision: dict[str, Sentence]

    def cross_check(self) -> list[tuple[Location, str]]:
        worded = _worded_outcomes()
        problems: list[tuple[Location, str]] = [
            (("decision",), f"no sentences for {name}")
            for name in sorted(worded - set(self.decision))
        ]
        problems += [
            (("decision", name), f"no outcome is named {name}")
            for name in sorted(set(self.decision) - worded)
        ]
        for name, sentence in self.decision.items():
            for language, text in (("zh", sentence.zh), ("en", sentence.en)):
                for _, field, _, _ in Formatter().parse(text):
                    if field is not None and re.split(r"[.\[]", field)[0] not in {
                        "subject",
                        "o",
                        *_MADE,
                    }:
                        problems.append((("decision", name, language), f"unknown {{{field}}}"))
        return problems


def _worded_outcomes() -> set[str]:
    """The outcomes a rule returns: those with a rule id."""
    found, waiting = set(), [Outcome]
    while waiting:
        for kind in waiting.pop().__subclasses__():
            waiting.append(kind)
            if hasattr(kind, "rule_id"):
                found.add(kind.__name__)
    return found


@cache
def sentences() -> Sentences:
    return Sentences.from_file(Path(__file__).with_name("wording.toml"))


def said(outcome: Outcome, subject_id: str) -> Words:
    """The sentences of ``outcome``'s decision on the file of ``subject_id``."""
    sentence = sentences().decision.get(type(outcome).__name__)
    if sentence is None:
        raise TypeError(f"no wording for {type(outcome).__name__}")
    values = {"subject": subject_id, "o": outcome, **_made(outcome)}
    return Words(sentence.zh.format_map(values), sentence.en.format_map(values))


def _made(outcome: Outcome) -> dict[str, object]:
    """What a sentence says that the outcome does not hold as it is said."""
    match outcome:
        case PromotionBar(finding=finding, categories=categories):
            return {
                "categories_zh": "、".join(c.label_zh for c in finding.confirmed_categories),
                "categories": ", ".join(categories),
            }
        case KickbackReported(finding=finding):
            amount = finding.confirmed_amount_cny
            return {
                "amount_zh": "金额未认定" if amount is None else f"金额{amount}元",
                "amount_en": "no amount confirmed" if amount is None else f"{amount} yuan",
            }
        case JudicialTransfer(over=True, threshold=threshold):
            return {
                "why_zh": f"金额达到{threshold}元",
                "why_en": f"the amount reaches {threshold} yuan",
            }
        case JudicialTransfer():
            return {"why_zh": "涉嫌犯罪", "why_en": "a crime is suspected"}
        case OverdueCase(escalate_to=target):
            return {"target": target.replace("_", " ")}
    return {}


# --- Corrections -------------------------------------------------------------------------------


def withdrawn(decision: Decision) -> Words:
    """A decision published again because the facts it rested on no longer hold."""
    return Words(
        f"撤销：{decision.explanation_zh}（所依据的事实已更正）",
        f"Withdrawn: {decision.explanation_en} (the facts it rested on were corrected)",
    )


# --- Leads -------------------------------------------------------------------------------------


def breach(kind: VisitBreach, visit: VisitorLogReceived, rule: RepVisitRule) -> Words:
    """One thing a visit breaks."""
    hours = f"{rule.allowed_from:%H:%M}–{rule.allowed_until:%H:%M}"
    place = visit.place_kind
    return {
        VisitBreach.NO_APPOINTMENT: Words("无预约", "no appointment"),
        VisitBreach.NOT_A_VISITING_DAY: Words("非接待日", "not on a visiting day"),
        VisitBreach.OUTSIDE_HOURS: Words(
            f"不在接待时间（{hours}）", f"outside visiting hours ({hours})"
        ),
        VisitBreach.IN_A_CLINICAL_PLACE: Words(
            f"出现在{place.label_zh}，应驱离", f"in a {place}: remove"
        ),
        VisitBreach.NOT_AN_ALLOWED_PLACE: Words(
            f"不在指定地点（{place.label_zh}）", "not at an allowed place"
        ),
    }[kind]


def visit_lead(visit: VisitorLogReceived, breaches: list[Words]) -> Words:
    return Words(
        f"医药代表{visit.rep_name}（{visit.company_name}）来访违反“三定三有”："
        f"{'、'.join(zh for zh, _ in breaches)}。",
        f"Rep {visit.rep_id} of company {visit.company_code} visited against the visiting "
        f"rules: {', '.join(en for _, en in breaches)}.",
    )


def satisfaction_lead(
    rating: SatisfactionReceived, category: ComplaintCategory, *, named: bool
) -> Words:
    """``named``: the comment names the category (else the score is low)."""
    reason_zh = f"评价内容涉及“{category.label_zh}”" if named else f"评分{rating.score}分"
    reason_en = f"the comment names {category}" if named else f"the score is {rating.score}"
    return Words(
        f"{rating.touchpoint.label_zh}环节即时满意度评价{reason_zh}，"
        f"作为“{category.label_zh}”线索立案核查。",
        f"A satisfaction rating at {rating.touchpoint} is a lead because {reason_en}; "
        f"a {category} case is opened.",
    )


def rectification_lead(status: RectificationStatusReceived) -> Words:
    return Words(
        f"科室{status.department}整改事项“{status.item}”被认定为{status.status.label_zh}，"
        "立案并予通报批评。",
        f"Department {status.department}'s rectification of {status.item!r} was found "
        f"{status.status}: a case is opened and a criticism notice follows.",
    )


def late_surrender_lead(
    surrender: RedEnvelopeSurrenderReceived, *, days: int, window: int
) -> Words:
    return Words(
        f"{surrender.staff_id}收到红包{days}日后才上缴，超过{window}日，不视为主动上缴，立案核查。",
        f"{surrender.staff_id} handed in a red envelope {days} days after receiving it, "
        f"beyond the {window}-day window: not a voluntary surrender; a case is opened.",
    )


# --- The explain tool --------------------------------------------------------------------------


def promotion_answer(staff: str, day: date, bar: Decision | None) -> Words:
    """May ``staff`` be promoted on ``day``: ``bar`` is the bar in force then, if any."""
    if bar is None:
        return Words(
            f"{staff}于{day}可以提职晋级：无在期内的禁止记录。",
            f"{staff} may be promoted on {day}: no bar is in force.",
        )
    return Words(
        f"{staff}于{day}不得提职晋级：{bar.explanation_zh}",
        f"{staff} may not be promoted on {day}: {bar.explanation_en}",
    )
