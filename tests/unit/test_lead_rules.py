"""Escalation's lead rules (R-REP-VISIT, R-SATISFACTION-LEAD, R-RECTIFY) and the rule book they
read (rules.toml), without Kafka or a database.

Expected values come from the rule book as loaded, so a changed threshold, window or keyword
list changes what is expected with it; the shipped book's choices are pinned separately.
"""

import tomllib
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import opencc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.base import HOSPITAL_TIME_ZONE
from schemas.case import CaseKind
from schemas.complaint import ComplaintCategory, ComplaintChannel
from schemas.lead import Lead
from schemas.rectification import (
    RectificationStatus,
    RectificationStatusReceived,
    RectificationStatusSubmission,
)
from schemas.satisfaction import SatisfactionReceived, SatisfactionSubmission
from schemas.visitor_log import PlaceKind, VisitorLogReceived, VisitorLogSubmission
from services.common.datafile import DataFileError
from services.escalation.outcomes import RECTIFY, REP_VISIT, SATISFACTION_LEAD
from services.escalation.rulebook import RuleBook, normalise_text
from services.escalation.rules.leads import (
    lead_category,
    rectification_lead,
    satisfaction_lead,
    visit_breaches,
    visit_lead,
)
from services.escalation.settings import EscalationSettings
from services.escalation.wording import Words, breach

RULES_PATH: Path = EscalationSettings.model_fields["rules"].default
RULES_TEXT = RULES_PATH.read_text("utf-8")
BOOK = RuleBook.from_file(RULES_PATH)
VISIT_RULE = BOOK.rep_visit
LEAD_RULE = BOOK.satisfaction_lead

RECEIVED_AT = datetime(2026, 12, 20, 1, 30, tzinfo=UTC)
MONDAY = date(2026, 11, 23)
"""The week the visits below fall in: Monday 23 to Sunday 29 November 2026."""

NEUTRAL_COMMENT = "窗口排队时间较长，希望增加人手。"
TO_TRADITIONAL = opencc.OpenCC("s2t")

# (category, word) for every keyword, in the order the book lists its groups.
KEYWORDS = [(group.category, word) for group in LEAD_RULE.keywords for word in group.words]
KEYWORD_CHARS = frozenset("".join(word for _, word in KEYWORDS))


# --- builders --------------------------------------------------------------------------------


def _day(weekday: int) -> date:
    """The day of the test week with this ISO weekday (1 Monday … 7 Sunday)."""
    day = MONDAY + timedelta(days=weekday - 1)
    assert day.isoweekday() == weekday
    return day


def _hospital_time(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=HOSPITAL_TIME_ZONE)


def _inside_hours(weekday: int) -> datetime:
    """The middle of the visiting hours on that day, hospital time."""
    start = _hospital_time(_day(weekday), VISIT_RULE.allowed_from)
    end = _hospital_time(_day(weekday), VISIT_RULE.allowed_until)
    return start + (end - start) / 2


def _visit(started_at: datetime | str | None = None, **changes: Any) -> VisitorLogReceived:
    """A visit that keeps every visiting rule unless ``changes`` say otherwise."""
    start = _inside_hours(VISIT_RULE.allowed_weekdays[0]) if started_at is None else started_at
    payload: dict[str, Any] = {
        "source_system": "rep-desk",
        "source_ref": "VISIT-2026-11-23-031",
        "occurred_at": start,
        "rep_id": "REP-0417",
        "rep_name": "李明",
        "company_code": "YX-PHARMA-017",
        "company_name": "云南某医药有限公司",
        "host_staff_id": "S30417",
        "department": "PHARMACY",
        "place_code": "ADMIN-3F-RECEPTION",
        "place_kind": VISIT_RULE.allowed_place_kinds[0],
        "started_at": start,
        "appointment_id": "APT-88121",
        **changes,
    }
    return VisitorLogReceived.accept(
        VisitorLogSubmission.model_validate(payload), received_at=RECEIVED_AT
    )


def _rating(**changes: Any) -> SatisfactionReceived:
    """A rating just above the low-score threshold with a comment naming no keyword."""
    payload: dict[str, Any] = {
        "source_system": "his.settlement",
        "source_ref": "SAT-20261120-5531",
        "occurred_at": "2026-11-20T10:42:00+08:00",
        "touchpoint": "settlement",
        "department": "OPD-PSY",
        "staff_id": "S11873",
        "score": LEAD_RULE.low_score_at_most + 1,
        "comment": NEUTRAL_COMMENT,
        **changes,
    }
    return SatisfactionReceived.accept(
        SatisfactionSubmission.model_validate(payload), received_at=RECEIVED_AT
    )


def _status(status: RectificationStatus, **changes: Any) -> RectificationStatusReceived:
    payload: dict[str, Any] = {
        "source_system": "leadership",
        "source_ref": "RECT-2026-Q4-07",
        "occurred_at": "2026-12-15T17:00:00+08:00",
        "department": "OPD-PSY",
        "item": "专家号统揽加价问题整改",
        "status": status,
        "note": "仅张贴告示，未调整放号机制。",
        **changes,
    }
    return RectificationStatusReceived.accept(
        RectificationStatusSubmission.model_validate(payload), received_at=RECEIVED_AT
    )


def _breaches(visit: VisitorLogReceived) -> list[Words]:
    """What the visit breaks, as its lead says it."""
    return [breach(kind, visit, VISIT_RULE) for kind in visit_breaches(visit, BOOK)]


def _breaches_en(visit: VisitorLogReceived) -> list[str]:
    return [en for _, en in _breaches(visit)]


def _visit_lead(visit: VisitorLogReceived) -> Lead:
    lead = visit_lead(visit, BOOK)
    assert lead is not None
    return lead


def _rating_lead(rating: SatisfactionReceived) -> Lead:
    lead = satisfaction_lead(rating, BOOK)
    assert lead is not None
    return lead


def _category_listing(word: str) -> ComplaintCategory:
    """The category of the keyword group that lists ``word``."""
    return next(category for category, listed in KEYWORDS if listed == word)


def _hours_en() -> str:
    return (
        f"outside visiting hours ({VISIT_RULE.allowed_from:%H:%M}–{VISIT_RULE.allowed_until:%H:%M})"
    )


def test_the_builders_start_from_events_that_open_no_case() -> None:
    assert visit_breaches(_visit(), BOOK) == []
    assert lead_category(NEUTRAL_COMMENT, BOOK) is None
    assert satisfaction_lead(_rating(), BOOK) is None


# --- R-REP-VISIT -----------------------------------------------------------------------------


@pytest.mark.parametrize("place_kind", VISIT_RULE.allowed_place_kinds)
@pytest.mark.parametrize("weekday", VISIT_RULE.allowed_weekdays)
def test_a_visit_by_appointment_on_a_visiting_day_in_hours_at_an_allowed_place_is_no_lead(
    weekday: int, place_kind: PlaceKind
) -> None:
    visit = _visit(_inside_hours(weekday), place_kind=place_kind)

    assert visit_breaches(visit, BOOK) == []
    assert visit_lead(visit, BOOK) is None


def test_a_visit_without_an_appointment_is_a_lead_naming_it() -> None:
    visit = _visit(appointment_id=None)

    assert _breaches_en(visit) == ["no appointment"]
    lead = _visit_lead(visit)
    assert "无预约" in lead.explanation_zh
    assert "no appointment" in lead.explanation_en


@pytest.mark.parametrize("weekday", range(1, 8))
def test_a_visit_is_a_lead_exactly_on_the_days_the_book_does_not_allow(weekday: int) -> None:
    visit = _visit(_inside_hours(weekday))

    if weekday in VISIT_RULE.allowed_weekdays:
        assert visit_lead(visit, BOOK) is None
    else:
        assert _breaches_en(visit) == ["not on a visiting day"]
        lead = _visit_lead(visit)
        assert "非接待日" in lead.explanation_zh
        assert "not on a visiting day" in lead.explanation_en


def test_the_shipped_book_receives_reps_on_weekdays_and_never_at_the_weekend() -> None:
    assert set(VISIT_RULE.allowed_weekdays) == {1, 2, 3, 4, 5}


@pytest.mark.parametrize(
    ("at", "allowed"),
    [
        pytest.param(
            lambda day: _hospital_time(day, VISIT_RULE.allowed_from) - timedelta(minutes=1),
            False,
            id="a-minute-before-allowed-from",
        ),
        pytest.param(
            lambda day: _hospital_time(day, VISIT_RULE.allowed_from),
            True,
            id="exactly-allowed-from",
        ),
        pytest.param(
            lambda day: _hospital_time(day, VISIT_RULE.allowed_until) - timedelta(minutes=1),
            True,
            id="a-minute-before-allowed-until",
        ),
        pytest.param(
            lambda day: _hospital_time(day, VISIT_RULE.allowed_until),
            False,
            id="exactly-allowed-until",
        ),
    ],
)
def test_visiting_hours_run_from_allowed_from_up_to_but_not_including_allowed_until(
    at: Callable[[date], datetime], allowed: bool
) -> None:
    visit = _visit(at(_day(VISIT_RULE.allowed_weekdays[0])))

    if allowed:
        assert visit_lead(visit, BOOK) is None
    else:
        assert _breaches_en(visit) == [_hours_en()]
        lead = _visit_lead(visit)
        assert "不在接待时间" in lead.explanation_zh
        assert f"{VISIT_RULE.allowed_from:%H:%M}" in lead.explanation_zh
        assert f"{VISIT_RULE.allowed_until:%H:%M}" in lead.explanation_zh
        assert _hours_en() in lead.explanation_en


@pytest.mark.parametrize("place_kind", list(PlaceKind))
def test_each_place_kind_is_allowed_removed_from_or_not_allowed_as_the_book_says(
    place_kind: PlaceKind,
) -> None:
    visit = _visit(place_kind=place_kind)
    lead = visit_lead(visit, BOOK)

    if place_kind in VISIT_RULE.allowed_place_kinds:
        assert lead is None
    elif place_kind in VISIT_RULE.clinical_place_kinds:
        assert _breaches_en(visit) == [f"in a {place_kind}: remove"]
        assert lead is not None
        assert f"出现在{place_kind.label_zh}，应驱离" in lead.explanation_zh
        assert "remove" in lead.explanation_en
        assert "not at an allowed place" not in lead.explanation_en
    else:
        assert _breaches_en(visit) == ["not at an allowed place"]
        assert lead is not None
        assert f"不在指定地点（{place_kind.label_zh}）" in lead.explanation_zh
        assert "驱离" not in lead.explanation_zh
        assert "not at an allowed place" in lead.explanation_en


def test_the_shipped_book_has_reps_met_in_meeting_rooms_and_removed_from_wards() -> None:
    assert set(VISIT_RULE.allowed_place_kinds) == {PlaceKind.RECEPTION_ROOM, PlaceKind.MEETING_ROOM}
    assert set(VISIT_RULE.clinical_place_kinds) == {PlaceKind.CLINICAL_AREA, PlaceKind.WARD}
    # An office or any other place is neither: the visit is a lead, but not a removal.
    other = (
        set(PlaceKind) - set(VISIT_RULE.allowed_place_kinds) - set(VISIT_RULE.clinical_place_kinds)
    )
    assert other == {PlaceKind.OFFICE, PlaceKind.OTHER}


def test_a_visit_given_in_utc_is_judged_by_its_hospital_time_of_day() -> None:
    friday = _inside_hours(5)
    utc_start = friday.astimezone(UTC)
    # Read as a UTC wall clock the visit would be outside hours: the test can tell the two apart.
    assert not VISIT_RULE.allowed_from <= utc_start.time() < VISIT_RULE.allowed_until

    visit = _visit(utc_start.isoformat().replace("+00:00", "Z"))

    assert visit.started_at == friday
    assert visit_lead(visit, BOOK) is None


def test_06_30_utc_is_14_30_in_shanghai_and_inside_the_shipped_visiting_hours() -> None:
    visit = _visit("2026-11-27T06:30:00Z")

    assert visit.started_at.astimezone(HOSPITAL_TIME_ZONE).time() == time(14, 30)
    assert visit_lead(visit, BOOK) is None


def test_a_visit_given_in_utc_is_judged_by_its_hospital_day() -> None:
    assert 5 in VISIT_RULE.allowed_weekdays
    assert 6 not in VISIT_RULE.allowed_weekdays
    assert 7 not in VISIT_RULE.allowed_weekdays
    assert 1 in VISIT_RULE.allowed_weekdays

    # Friday 23:00 UTC is Saturday 07:00 in Shanghai: not a visiting day.
    friday_night_utc = _visit("2026-11-27T23:00:00Z")
    assert "not on a visiting day" in _breaches_en(friday_night_utc)
    assert "非接待日" in _visit_lead(friday_night_utc).explanation_zh

    # Sunday 23:00 UTC is Monday 07:00 in Shanghai: a visiting day (though before hours).
    sunday_night_utc = _visit("2026-11-29T23:00:00Z")
    assert "not on a visiting day" not in _breaches_en(sunday_night_utc)
    assert _hours_en() in _breaches_en(sunday_night_utc)


def test_a_visit_time_without_an_offset_is_hospital_time() -> None:
    inside = _inside_hours(VISIT_RULE.allowed_weekdays[0])
    naive = inside.replace(tzinfo=None)  # from code: JSON text without a zone is refused
    # Read as UTC the same wall clock would be 8 hours later, outside hours.
    as_utc = inside.replace(tzinfo=UTC).astimezone(HOSPITAL_TIME_ZONE).time()
    assert not VISIT_RULE.allowed_from <= as_utc < VISIT_RULE.allowed_until

    visit = _visit(naive)

    assert visit.started_at == inside
    assert visit_lead(visit, BOOK) is None


def test_a_visit_breaking_every_rule_names_every_breach_in_its_lead() -> None:
    weekend = next(day for day in range(1, 8) if day not in VISIT_RULE.allowed_weekdays)
    clinical = VISIT_RULE.clinical_place_kinds[0]
    start = _hospital_time(_day(weekend), VISIT_RULE.allowed_until)

    visit = _visit(start, appointment_id=None, place_kind=clinical)

    assert _breaches_en(visit) == [
        "no appointment",
        "not on a visiting day",
        _hours_en(),
        f"in a {clinical}: remove",
    ]
    lead = _visit_lead(visit)
    for zh, en in _breaches(visit):
        assert zh in lead.explanation_zh
        assert en in lead.explanation_en


def test_a_visit_lead_opens_a_rep_visit_case_against_the_host_and_the_company() -> None:
    visit = _visit(appointment_id=None)

    lead = _visit_lead(visit)

    assert lead.rule_id == REP_VISIT == "R-REP-VISIT"
    assert lead.rules_version == BOOK.version
    assert lead.case_kind is CaseKind.REP_VISIT
    assert lead.company_code == visit.company_code == "YX-PHARMA-017"
    assert lead.concerned_department == visit.department == "PHARMACY"
    assert lead.accused_staff_id == visit.host_staff_id == "S30417"
    assert lead.source_event_id == visit.event_id
    assert lead.source_event_type == "visitor_log"
    assert lead.occurred_at == visit.occurred_at
    assert lead.received_at == visit.received_at == RECEIVED_AT
    assert lead.category is None
    assert lead.channel is None
    assert lead.event_id != visit.event_id
    assert lead.explanation_zh.strip()
    assert lead.explanation_en.strip()
    assert visit.rep_name in lead.explanation_zh
    assert visit.company_code in lead.explanation_en


def test_a_visit_nobody_received_is_a_lead_accusing_nobody() -> None:
    lead = _visit_lead(_visit(appointment_id=None, host_staff_id=None))

    assert lead.accused_staff_id is None
    assert lead.concerned_department == "PHARMACY"


def test_the_same_visit_gives_the_same_lead_id_every_time() -> None:
    first = _visit_lead(_visit(appointment_id=None))
    again = _visit_lead(_visit(appointment_id=None))

    assert first.event_id == again.event_id
    assert first == again


def test_different_visits_give_different_lead_ids() -> None:
    one = _visit_lead(_visit(appointment_id=None))
    other = _visit_lead(_visit(appointment_id=None, source_ref="VISIT-2026-11-23-032"))

    assert one.source_event_id != other.source_event_id
    assert one.event_id != other.event_id


def test_leads_of_different_rules_never_share_an_id_even_for_the_same_source_event_id() -> None:
    # Events of different types sent with the same source system and reference get the same
    # event id; the rule that judged them keeps their leads apart.
    visit = _visit(source_system="shared", source_ref="REF-1", appointment_id=None)
    rating = _rating(source_system="shared", source_ref="REF-1", score=1)
    status = _status(RectificationStatus.REFUSED, source_system="shared", source_ref="REF-1")
    assert visit.event_id == rating.event_id == status.event_id

    leads = [_visit_lead(visit), _rating_lead(rating), rectification_lead(status, BOOK)]

    assert len({lead.event_id for lead in leads if lead is not None}) == 3


# --- R-SATISFACTION-LEAD ---------------------------------------------------------------------


@pytest.mark.parametrize("comment", [NEUTRAL_COMMENT, None])
@pytest.mark.parametrize("score", range(1, LEAD_RULE.low_score_at_most + 1))
def test_a_low_score_naming_no_keyword_is_a_lead_of_the_low_score_category(
    score: int, comment: str | None
) -> None:
    lead = _rating_lead(_rating(score=score, comment=comment))

    assert lead.category is LEAD_RULE.low_score_category
    assert f"评分{score}分" in lead.explanation_zh
    assert f"the score is {score}" in lead.explanation_en


def test_the_shipped_book_makes_a_score_of_two_or_less_a_service_attitude_lead() -> None:
    # DESIGN.md, R-SATISFACTION-LEAD: "A low satisfaction score (≤ 2)".
    assert LEAD_RULE.low_score_at_most == 2
    assert LEAD_RULE.low_score_category is ComplaintCategory.ATTITUDE


@pytest.mark.parametrize("comment", [NEUTRAL_COMMENT, None])
@pytest.mark.parametrize("score", range(LEAD_RULE.low_score_at_most + 1, 6))
def test_a_score_above_the_threshold_naming_no_keyword_is_no_lead(
    score: int, comment: str | None
) -> None:
    assert satisfaction_lead(_rating(score=score, comment=comment), BOOK) is None


@pytest.mark.parametrize(("category", "word"), KEYWORDS)
def test_a_comment_naming_a_keyword_is_a_lead_of_its_category_even_at_the_top_score(
    category: ComplaintCategory, word: str
) -> None:
    lead = _rating_lead(_rating(score=5, comment=f"医生暗示{word}的事，希望查一查。"))

    assert lead.category is category
    assert f"评价内容涉及“{category.label_zh}”" in lead.explanation_zh
    assert f"the comment names {category}" in lead.explanation_en


def test_a_low_score_naming_a_keyword_takes_the_keywords_category() -> None:
    category, word = next(
        (category, word)
        for category, word in KEYWORDS
        if category is not LEAD_RULE.low_score_category
    )

    lead = _rating_lead(_rating(score=1, comment=f"窗口的人要{word}。"))

    assert lead.category is category


def test_a_comment_naming_several_groups_takes_the_category_listed_first_in_the_book() -> None:
    first, second = LEAD_RULE.keywords[0], LEAD_RULE.keywords[1]
    # The later group's word comes first in the text: the book's order decides, not the text's.
    comment = f"先说{second.words[0]}，再说{first.words[0]}。"

    assert lead_category(comment, BOOK) is first.category


@pytest.mark.parametrize(
    ("written", "listed"),
    [
        pytest.param("紅包", "红包", id="traditional-red-envelope"),
        pytest.param("回扣", "回扣", id="kickback-same-in-both-scripts"),
        pytest.param("迴扣", "回扣", id="kickback-variant-hui"),
        pytest.param("送禮", "送礼", id="traditional-gift"),
        pytest.param("送\uf9b6", "送礼", id="compatibility-ideograph-li"),
        pytest.param("加號費", "加号费", id="traditional-extra-slot-fee"),
        pytest.param("黃牛", "黄牛", id="traditional-scalper"),
        pytest.param("\u2fc8\u2f5c", "黄牛", id="kangxi-radicals-scalper"),
        pytest.param("红 包", "红包", id="space-inside"),
        pytest.param("紅\u3000包", "红包", id="ideographic-space-inside"),
        pytest.param("加 號\t費", "加号费", id="spaces-and-tab-inside-traditional"),
        pytest.param("红\n包", "红包", id="line-break-inside"),
        pytest.param("ＨＯＮＧＢＡＯ", "hongbao", id="full-width-upper-case-pinyin"),
        pytest.param("ｈｏｎｇｂａｏ", "hongbao", id="full-width-pinyin"),
        pytest.param("HONGBAO", "hongbao", id="upper-case-pinyin"),
        pytest.param("Hong Bao", "hongbao", id="spaced-mixed-case-pinyin"),
    ],
)
def test_traditional_forms_variants_width_case_and_spacing_match_the_listed_keyword(
    written: str, listed: str
) -> None:
    category = _category_listing(listed)

    lead = _rating_lead(_rating(score=5, comment=f"病人说只有{written}才行"))

    assert lead.category is category
    assert listed in normalise_text(written)


def test_normalise_text_folds_to_simplified_half_width_lower_case_without_spaces() -> None:
    assert normalise_text("紅 包") == "红包"
    assert normalise_text("ＨＯＮＧ ＢＡＯ") == "hongbao"
    assert normalise_text(" 加號費\u3000HongBao\n") == "加号费hongbao"


def test_keywords_the_book_writes_in_traditional_or_upper_case_are_folded_when_loaded() -> None:
    text = RULES_TEXT.replace('"返利"]', '"返利", "傭金", "KICKBACK"]')
    assert text != RULES_TEXT

    book = RuleBook.from_toml(text, source="rules.toml")

    kickback = _category_listing("回扣")
    assert lead_category("他收了佣金", book) is kickback
    assert lead_category("kickback again", book) is kickback


def test_a_satisfaction_lead_opens_a_complaint_case_against_the_rated_staff_member() -> None:
    rating = _rating(score=1)

    lead = _rating_lead(rating)

    assert lead.rule_id == SATISFACTION_LEAD == "R-SATISFACTION-LEAD"
    assert lead.rules_version == BOOK.version
    assert lead.case_kind is CaseKind.COMPLAINT
    assert lead.channel is ComplaintChannel.SATISFACTION_LEAD
    assert lead.category is not None
    assert lead.accused_staff_id == rating.staff_id == "S11873"
    assert lead.concerned_department == rating.department == "OPD-PSY"
    assert lead.company_code is None
    assert lead.source_event_id == rating.event_id
    assert lead.source_event_type == "satisfaction"
    assert lead.occurred_at == rating.occurred_at
    assert lead.received_at == RECEIVED_AT
    assert rating.touchpoint.label_zh in lead.explanation_zh
    assert lead.explanation_en.strip()
    assert _rating_lead(_rating(score=1)).event_id == lead.event_id


def test_a_rating_of_nobody_in_particular_is_a_lead_accusing_nobody() -> None:
    lead = _rating_lead(_rating(score=1, staff_id=None))

    assert lead.accused_staff_id is None
    assert lead.concerned_department == "OPD-PSY"


# Arbitrary Chinese and ASCII text, with the ideographic space and common Chinese punctuation.
ANY_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
        st.characters(min_codepoint=0x20, max_codepoint=0x7E),
        st.sampled_from("\u3000，。！？、“”"),
    ),
    max_size=40,
)


def _names_no_keyword_character(char: str) -> bool:
    return not set(normalise_text(char)) & KEYWORD_CHARS


@given(
    keyword=st.sampled_from(KEYWORDS),
    traditional=st.booleans(),
    before=ANY_TEXT,
    after=ANY_TEXT,
)
def test_a_keyword_anywhere_in_any_text_yields_its_category_or_an_earlier_listed_one(
    keyword: tuple[ComplaintCategory, str], traditional: bool, before: str, after: str
) -> None:
    category, word = keyword
    written = TO_TRADITIONAL.convert(word) if traditional else word
    groups = [group.category for group in LEAD_RULE.keywords]
    allowed = groups[: groups.index(category) + 1]

    comment = f"{before}{written}{after}"
    found = lead_category(comment, BOOK)

    assert found in allowed
    lead = _rating_lead(_rating(score=5, comment=comment))
    assert lead.category is found


@given(
    comment=st.text(
        alphabet=st.one_of(
            st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
            st.characters(min_codepoint=0x20, max_codepoint=0x7E),
            st.sampled_from("\u3000，。！？、“”"),
        ).filter(_names_no_keyword_character),
        min_size=1,
        max_size=60,
    ).filter(str.strip)
)
def test_a_comment_without_any_keyword_character_never_yields_a_keyword_category(
    comment: str,
) -> None:
    assert lead_category(comment, BOOK) is None
    assert satisfaction_lead(_rating(score=5, comment=comment), BOOK) is None


# --- R-RECTIFY -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(RectificationStatus))
def test_a_rectification_is_a_lead_exactly_when_the_book_says_its_status_opens_a_case(
    status: RectificationStatus,
) -> None:
    event = _status(status)

    lead = rectification_lead(event, BOOK)

    if status in BOOK.rectify.opens_case:
        assert lead is not None
        assert lead.rule_id == RECTIFY == "R-RECTIFY"
        assert lead.rules_version == BOOK.version
        assert lead.case_kind is CaseKind.RECTIFICATION
        assert lead.concerned_department == event.department == "OPD-PSY"
        assert lead.accused_staff_id is None
        assert lead.category is None
        assert lead.source_event_id == event.event_id
        assert lead.source_event_type == "rectification_status"
        assert status.label_zh in lead.explanation_zh
        assert event.item in lead.explanation_zh
        assert str(status) in lead.explanation_en
    else:
        assert lead is None


def test_the_shipped_book_opens_a_case_unless_the_rectification_is_done() -> None:
    # DESIGN.md, R-RECTIFY; 004 §七(二): 敷衍整改、整治不力、拒不整改.
    assert set(BOOK.rectify.opens_case) == {
        RectificationStatus.PERFUNCTORY,
        RectificationStatus.INEFFECTIVE,
        RectificationStatus.REFUSED,
    }
    assert rectification_lead(_status(RectificationStatus.DONE), BOOK) is None


# --- the rule book's data --------------------------------------------------------------------


def test_the_service_loads_the_shipped_rule_book_with_the_version_written_in_it() -> None:
    assert RULES_PATH.name == "rules.toml"
    assert RULES_PATH.is_file()
    assert BOOK.version == tomllib.loads(RULES_TEXT)["version"]
    assert BOOK.version


def _edited_book(*edits: tuple[str, str]) -> RuleBook:
    """The shipped book with each ``(old, new)`` edit made to its text."""
    text = RULES_TEXT
    for old, new in edits:
        assert text.count(old) == 1
        text = text.replace(old, new)
    return RuleBook.from_toml(text, source="rules.toml")


def test_the_rules_read_their_days_hours_places_threshold_and_statuses_from_the_book() -> None:
    book = _edited_book(
        ('version = "', 'version = "edited-'),
        ("allowed_weekdays = [1, 2, 3, 4, 5]", "allowed_weekdays = [6]"),
        ("allowed_from = 14:00:00", "allowed_from = 08:00:00"),
        ("allowed_until = 17:00:00", "allowed_until = 09:00:00"),
        (
            'allowed_place_kinds = ["reception_room", "meeting_room"]',
            'allowed_place_kinds = ["office"]',
        ),
        ('clinical_place_kinds = ["clinical_area", "ward"]', "clinical_place_kinds = []"),
        ("low_score_at_most = 2", "low_score_at_most = 1"),
        ('low_score_category = "attitude"', 'low_score_category = "other"'),
        ('opens_case = ["perfunctory", "ineffective", "refused"]', 'opens_case = ["refused"]'),
    )
    saturday_morning = _hospital_time(_day(6), time(8, 30))

    assert visit_lead(_visit(saturday_morning, place_kind=PlaceKind.OFFICE), book) is None
    ward = _visit(saturday_morning, place_kind=PlaceKind.WARD)
    (only,) = visit_breaches(ward, book)
    assert breach(only, ward, book.rep_visit).en == "not at an allowed place"
    weekday_lead = visit_lead(_visit(_inside_hours(1), place_kind=PlaceKind.OFFICE), book)
    assert weekday_lead is not None
    assert weekday_lead.rules_version == book.version != BOOK.version
    assert "outside visiting hours (08:00–09:00)" in weekday_lead.explanation_en

    assert satisfaction_lead(_rating(score=2), book) is None
    low = satisfaction_lead(_rating(score=1), book)
    assert low is not None
    assert low.category is ComplaintCategory.OTHER

    assert rectification_lead(_status(RectificationStatus.PERFUNCTORY), book) is None
    assert rectification_lead(_status(RectificationStatus.REFUSED), book) is not None


def _refusal(old: str, new: str) -> tuple[str, int]:
    """The refusal of the shipped book with ``old`` replaced by ``new``, and the line number of
    the first line ``new`` changed or added."""
    assert RULES_TEXT.count(old) == 1
    text = RULES_TEXT.replace(old, new)
    shipped = RULES_TEXT.splitlines()
    changed = next(line for line in new.splitlines() if line not in shipped)
    lines = text.splitlines()
    assert lines.count(changed) == 1
    with pytest.raises(DataFileError) as refused:
        RuleBook.from_toml(text, source="rules.toml")
    return str(refused.value), lines.index(changed) + 1


@pytest.mark.parametrize(
    ("old", "new", "where", "problem"),
    [
        pytest.param(
            "allowed_weekdays = [1, 2, 3, 4, 5]",
            "allowed_weekdays = [1, 2, 3, 4, 8]",
            "rep_visit.allowed_weekdays[5]",
            "less than or equal to 7",
            id="weekday-8",
        ),
        pytest.param(
            "allowed_weekdays = [1, 2, 3, 4, 5]",
            "allowed_weekdays = [0, 1, 2, 3, 4]",
            "rep_visit.allowed_weekdays[1]",
            "greater than or equal to 1",
            id="weekday-0",
        ),
        pytest.param(
            "allowed_weekdays = [1, 2, 3, 4, 5]",
            "allowed_weekdays = []",
            "rep_visit.allowed_weekdays",
            "at least 1 item",
            id="no-weekday",
        ),
        pytest.param(
            "low_score_at_most = 2",
            'low_score_at_most = "2"',
            "satisfaction_lead.low_score_at_most",
            "valid integer",
            id="score-as-a-string",
        ),
        pytest.param(
            "low_score_at_most = 2",
            "low_score_at_most = 6",
            "satisfaction_lead.low_score_at_most",
            "less than or equal to 5",
            id="score-6",
        ),
        pytest.param(
            'allowed_place_kinds = ["reception_room", "meeting_room"]',
            'allowed_place_kinds = ["reception_room", "lobby"]',
            "rep_visit.allowed_place_kinds[2]",
            "Input should be 'reception_room'",
            id="unknown-allowed-place-kind",
        ),
        pytest.param(
            'clinical_place_kinds = ["clinical_area", "ward"]',
            'clinical_place_kinds = ["clinical_area", "operating_theatre"]',
            "rep_visit.clinical_place_kinds[2]",
            "Input should be 'reception_room'",
            id="unknown-clinical-place-kind",
        ),
        pytest.param(
            'words = ["回扣", "囘扣", "提成", "返点", "好处费", "返利"]',
            "words = []",
            "satisfaction_lead.keywords[2].words",
            "at least 1 item",
            id="empty-keyword-list",
        ),
        pytest.param(
            'words = ["回扣", "囘扣", "提成", "返点", "好处费", "返利"]',
            'words = ["回扣", "", "返点"]',
            "satisfaction_lead.keywords[2].words",
            "a keyword may not be empty",
            id="empty-keyword",
        ),
        pytest.param(
            'words = ["回扣", "囘扣", "提成", "返点", "好处费", "返利"]',
            'words = ["回扣", " \u3000 "]',
            "satisfaction_lead.keywords[2].words",
            "a keyword may not be empty",
            id="blank-keyword",
        ),
        pytest.param(
            'category = "kickback"',
            'category = "bribery"',
            "satisfaction_lead.keywords[2].category",
            "Input should be 'red_envelope'",
            id="unknown-keyword-category",
        ),
        pytest.param(
            'opens_case = ["perfunctory", "ineffective", "refused"]',
            'opens_case = ["perfunctory", "late"]',
            "rectify.opens_case[2]",
            "Input should be 'done'",
            id="unknown-rectification-status",
        ),
        pytest.param(
            "allowed_until = 17:00:00",
            "allowed_until = 17:00:00\nallowed_hours = 3",
            "rep_visit.allowed_hours",
            "Extra inputs are not permitted",
            id="unknown-key-in-a-section",
        ),
        pytest.param(
            "[rectify]",
            "[visiting_hours]\nfrom = 14\n\n[rectify]",
            "visiting_hours",
            "Extra inputs are not permitted",
            id="unknown-section",
        ),
    ],
)
def test_a_bad_rule_book_is_refused_naming_the_line_the_place_and_the_problem(
    old: str, new: str, where: str, problem: str
) -> None:
    message, line = _refusal(old, new)

    assert message.startswith(f"rules.toml:{line} {where}: ")
    assert problem in message
    assert len(message.splitlines()) == 1


def test_a_rule_book_with_a_missing_section_is_refused_naming_it() -> None:
    text = RULES_TEXT.replace("[rectify]", "[rectify_old]")
    assert text != RULES_TEXT

    with pytest.raises(DataFileError) as refused:
        RuleBook.from_toml(text, source="rules.toml")

    assert "rectify: Field required" in str(refused.value)


@pytest.mark.parametrize(
    ("comment", "why"),
    [
        ("医生收了红\u200b包", "a zero-width space inside the word"),
        ("医生收了红·包", "a middle dot inside the word"),
        ("医生收了紅，包！", "punctuation inside the word, traditional form"),
        ("醫生拿囘扣", "囘, a variant the simplified/traditional folding does not know"),
    ],
)
def test_fillers_and_listed_variants_do_not_hide_a_keyword(comment: str, why: str) -> None:
    assert lead_category(comment, BOOK) is not None, why


def test_a_rule_book_whose_visiting_hours_run_backwards_is_refused() -> None:
    text = RULES_TEXT.replace("allowed_from = 14:00:00", "allowed_from = 18:00:00")
    assert text != RULES_TEXT

    with pytest.raises(DataFileError) as refused:
        RuleBook.from_toml(text, source="rules.toml")

    assert "allowed_from must be earlier than allowed_until" in str(refused.value)
    assert "rules.toml:" in str(refused.value)
