"""The shared message contracts in schemas/: event ids, complaint validation, Chinese labels."""

import importlib
import pkgutil
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

import schemas
from schemas.base import HOSPITAL_TIME_ZONE, Submission, derive_event_id
from schemas.case import DepartmentKind
from schemas.catalogue import CATALOGUE
from schemas.complaint import (
    ComplaintCategory,
    ComplaintChannel,
    ComplaintReceived,
    ComplaintSubmission,
)
from schemas.dead_letter import problems_of
from schemas.labels import LabelledEnum

source_systems = st.from_regex(r"[a-z][a-z0-9_.-]{0,20}", fullmatch=True)
TEXT = st.characters(codec="utf-8", exclude_characters="\x00")
"""Any character a text may hold: what UTF-8 can carry (no lone surrogate), but U+0000, which
the store cannot keep (contracts refuse it)."""
source_refs = st.text(min_size=1, max_size=40)

VALID_SUBMISSION: dict[str, Any] = {
    "source_system": "mailbox.clerk",
    "source_ref": "MB-2026-W48-007",
    "occurred_at": "2026-11-27T14:20:00+08:00",
    "channel": "mailbox",
    "category": "red_envelope",
    "accused_staff_id": "S20931",
    "accused_department": "PSY-WARD-2",
    "description": "家属反映：住院期间向主治医生送红包两千元，医生收下未退还。",
    "amount_cny": "2000.00",
    "anonymous": True,
}


def _submit(**changes: Any) -> ComplaintSubmission:
    return ComplaintSubmission.model_validate({**VALID_SUBMISSION, **changes})


def _refused_fields(**changes: Any) -> set[str]:
    with pytest.raises(ValidationError) as refused:
        ComplaintSubmission.model_validate({**VALID_SUBMISSION, **changes})
    return {str(error["loc"][0]) for error in refused.value.errors()}


def _has_cjk(text: str) -> bool:
    return any(unicodedata.name(char, "").startswith("CJK UNIFIED IDEOGRAPH") for char in text)


def _labelled_enums() -> list[type[LabelledEnum]]:
    """Every LabelledEnum subclass defined in the schemas package."""
    for module in pkgutil.walk_packages(schemas.__path__, f"{schemas.__name__}."):
        importlib.import_module(module.name)
    found: list[type[LabelledEnum]] = []
    pending: list[type[LabelledEnum]] = [LabelledEnum]
    while pending:
        for subclass in pending.pop().__subclasses__():
            pending.append(subclass)
            if subclass.__module__.startswith(f"{schemas.__name__}."):
                found.append(subclass)
    return found


LABELLED_ENUMS = _labelled_enums()
LABELLED_MEMBERS = [
    pytest.param(member, id=f"{enum.__name__}.{member.name}")
    for enum in LABELLED_ENUMS
    for member in enum
]


# --- derive_event_id -----------------------------------------------------------------------


@given(source_system=st.text(), source_ref=st.text())
def test_an_event_id_is_the_same_every_time_for_the_same_source(
    source_system: str, source_ref: str
) -> None:
    assert derive_event_id(source_system, source_ref) == derive_event_id(source_system, source_ref)


@given(first=st.tuples(source_systems, source_refs), second=st.tuples(source_systems, source_refs))
def test_different_sources_get_different_event_ids(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    assume(first != second)

    assert derive_event_id(*first) != derive_event_id(*second)


@given(source_system=source_systems.filter(lambda s: len(s) >= 2), data=st.data())
def test_moving_characters_between_system_and_reference_changes_the_event_id(
    source_system: str, data: st.DataObject
) -> None:
    split = data.draw(st.integers(min_value=1, max_value=len(source_system) - 1))
    source_ref = data.draw(source_refs)

    joined = derive_event_id(source_system, source_ref)
    moved = derive_event_id(source_system[:split], source_system[split:] + source_ref)

    assert joined != moved


def test_pairs_with_the_same_concatenation_get_different_event_ids() -> None:
    assert derive_event_id("ab", "c") != derive_event_id("a", "bc")


def test_an_event_id_is_a_uuid() -> None:
    assert isinstance(derive_event_id("portal", "P-1"), uuid.UUID)


# --- ComplaintSubmission --------------------------------------------------------------------


def test_a_valid_complaint_submission_is_accepted() -> None:
    submission = _submit()

    assert submission.category is ComplaintCategory.RED_ENVELOPE
    assert submission.channel is ComplaintChannel.MAILBOX
    assert submission.amount_cny == Decimal("2000.00")


def test_a_time_without_offset_is_refused_rather_than_guessed() -> None:
    assert _refused_fields(occurred_at="2026-11-30T09:00:00") == {"occurred_at"}


def test_a_naive_datetime_object_is_read_as_shanghai_time() -> None:
    submission = _submit(occurred_at=datetime(2026, 12, 1, 0, 30))

    assert submission.occurred_at == datetime(2026, 11, 30, 16, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sent", "offset"),
    [
        ("2026-11-30T09:00:00+02:00", timedelta(hours=2)),
        ("2026-11-30T09:00:00Z", timedelta(0)),
        ("2026-11-30T09:00:00-05:30", timedelta(hours=-5, minutes=-30)),
    ],
)
def test_an_explicit_offset_is_kept(sent: str, offset: timedelta) -> None:
    submission = _submit(occurred_at=sent)

    assert submission.occurred_at.utcoffset() == offset
    assert submission.occurred_at.replace(tzinfo=None) == datetime(2026, 11, 30, 9, 0)


def test_an_unknown_field_is_refused() -> None:
    assert _refused_fields(complainant_phone="13800138000") == {"complainant_phone"}


@pytest.mark.parametrize("amount", ["-0.01", "-100", -5])
def test_a_negative_amount_is_refused(amount: object) -> None:
    assert _refused_fields(amount_cny=amount) == {"amount_cny"}


@pytest.mark.parametrize("amount", ["12.345", "0.001", "30000.999"])
def test_an_amount_with_more_than_two_decimals_is_refused(amount: str) -> None:
    assert _refused_fields(amount_cny=amount) == {"amount_cny"}


@pytest.mark.parametrize("amount", ["0", "0.5", "30000.00", "12.34"])
def test_an_amount_in_yuan_and_fen_is_accepted(amount: str) -> None:
    assert _submit(amount_cny=amount).amount_cny == Decimal(amount)


@pytest.mark.parametrize("description", ["", "   ", "\n\t"])
def test_an_empty_description_is_refused(description: str) -> None:
    assert _refused_fields(description=description) == {"description"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("description", "红包\x00两千元"),
        ("source_ref", "MB-\x00"),
        ("accused_staff_id", "S2\x00"),
    ],
)
def test_a_nul_character_is_refused_naming_the_field(field: str, value: str) -> None:
    """PostgreSQL's jsonb (under FerretDB) cannot keep U+0000: refused at the boundary, 422
    naming the field, never a 500 from the store."""
    assert _refused_fields(**{field: value}) == {field}


@given(
    model=st.sampled_from(
        sorted((entry.submission for entry in CATALOGUE), key=lambda model: model.__name__)
    ),
    data=st.data(),
)
def test_no_submission_of_any_event_type_keeps_a_nul_character(
    model: type[Submission], data: st.DataObject
) -> None:
    text_fields = [
        name
        for name, field in model.model_fields.items()
        if field.annotation is str or "str" in repr(field.annotation)
    ]
    assume(text_fields)
    field = data.draw(st.sampled_from(text_fields))
    with pytest.raises(ValidationError) as refused:
        model.model_validate({field: "a\x00b"})
    assert any(error["loc"][:1] == (field,) for error in refused.value.errors())


def test_an_invalid_category_is_refused() -> None:
    assert _refused_fields(category="bribery") == {"category"}


def test_an_invalid_channel_is_refused() -> None:
    assert _refused_fields(channel="fax") == {"channel"}


def test_a_chinese_category_label_is_not_a_category_code() -> None:
    assert _refused_fields(category="红包") == {"category"}


# --- ComplaintReceived.accept ----------------------------------------------------------------

submissions = st.builds(
    ComplaintSubmission,
    source_system=source_systems,
    source_ref=st.text(TEXT, min_size=1, max_size=40).filter(str.strip),
    occurred_at=st.datetimes(
        min_value=datetime(2020, 1, 1),
        max_value=datetime(2040, 1, 1),
        timezones=st.sampled_from([UTC, HOSPITAL_TIME_ZONE]),
    ),
    channel=st.sampled_from(ComplaintChannel),
    category=st.sampled_from(ComplaintCategory),
    accused_staff_id=st.none() | st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True),
    accused_department=st.none() | st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True),
    description=st.text(TEXT, min_size=1, max_size=200).filter(str.strip),
    amount_cny=st.none()
    | st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False),
    anonymous=st.booleans(),
)


@given(submission=submissions)
def test_accepting_a_complaint_keeps_every_submitted_field(
    submission: ComplaintSubmission,
) -> None:
    received_at = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)

    event = ComplaintReceived.accept(submission, received_at=received_at)

    for field in set(ComplaintSubmission.model_fields) - ComplaintSubmission.private_fields:
        assert getattr(event, field) == getattr(submission, field), field
    assert event.received_at == received_at


def test_an_accepted_complaint_never_carries_the_complainants_contact_details() -> None:
    submission = ComplaintSubmission.model_validate(
        {
            **_submit().model_dump(mode="json", exclude={"complainant_contact"}),
            "anonymous": False,
            "complainant_contact": {"name": "张三", "phone": "13800138000"},
        }
    )

    event = ComplaintReceived.accept(submission, received_at=datetime(2026, 1, 1, tzinfo=UTC))

    published = event.model_dump_json()
    assert "13800138000" not in published
    assert "张三" not in published
    assert "complainant_contact" not in ComplaintReceived.model_fields


def test_an_anonymous_complaint_with_contact_details_is_refused() -> None:
    with pytest.raises(ValidationError, match="anonymous"):
        ComplaintSubmission.model_validate(
            {
                **_submit().model_dump(mode="json", exclude={"complainant_contact"}),
                "anonymous": True,
                "complainant_contact": {"phone": "13800138000"},
            }
        )


@given(submission=submissions)
def test_an_accepted_complaint_is_identified_by_its_source(
    submission: ComplaintSubmission,
) -> None:
    event = ComplaintReceived.accept(submission, received_at=datetime(2026, 1, 1, tzinfo=UTC))

    assert event.event_id == derive_event_id(submission.source_system, submission.source_ref)


def test_a_retried_complaint_is_the_same_event_whenever_it_arrives() -> None:
    submission = _submit()

    first = ComplaintReceived.accept(submission, received_at=datetime(2026, 1, 1, tzinfo=UTC))
    retry = ComplaintReceived.accept(submission, received_at=datetime(2026, 1, 2, tzinfo=UTC))

    assert retry.event_id == first.event_id


# --- Chinese labels --------------------------------------------------------------------------


def test_the_labelled_enums_of_the_contracts_are_all_found() -> None:
    assert {ComplaintCategory, ComplaintChannel, DepartmentKind} <= set(LABELLED_ENUMS)


@pytest.mark.parametrize("member", LABELLED_MEMBERS)
def test_every_labelled_enum_member_has_a_chinese_label(member: LabelledEnum) -> None:
    assert member.label_zh.strip()
    assert _has_cjk(member.label_zh)


def test_the_complaint_categories_carry_the_labels_of_the_design() -> None:
    # DESIGN.md, "Complaint categories (enum, with Chinese labels)".
    assert {category.value: category.label_zh for category in ComplaintCategory} == {
        "red_envelope": "红包",
        "kickback": "回扣",
        "procurement": "招采/期权腐败",
        "outside_pharmacy": "院外购药",
        "appointment_scalping": "倒卖专家号",
        "duplicate_test": "重复检查",
        "unreasonable_test": "不合理检查",
        "attitude": "服务态度",
        "improper_relationship": "不正当关系",
        "drunk_driving": "酒驾",
        "gambling": "赌博",
        "other": "其他",
    }


def test_a_code_looks_up_its_member_and_keeps_its_label() -> None:
    assert ComplaintCategory("kickback").label_zh == "回扣"


def test_defining_a_member_without_a_label_is_refused() -> None:
    with pytest.raises(TypeError, match="label"):

        class Unlabelled(LabelledEnum):
            SOMETHING = "something"


def test_defining_a_member_with_an_empty_label_is_refused() -> None:
    with pytest.raises(TypeError, match="label"):

        class EmptyLabel(LabelledEnum):
            SOMETHING = "something", ""


# --- JSON ------------------------------------------------------------------------------------


def _chinese_complaint() -> ComplaintReceived:
    return ComplaintReceived.accept(
        _submit(description="医生暗示“意思意思”，收下红包两千元；患者家属（张女士）已录音。"),
        received_at=datetime(2026, 11, 30, 17, 0, tzinfo=UTC),
    )


def test_a_json_round_trip_preserves_a_complaint_exactly() -> None:
    event = _chinese_complaint()

    restored = ComplaintReceived.model_validate_json(event.model_dump_json())

    assert restored == event
    assert restored.description == event.description
    assert restored.occurred_at.utcoffset() == event.occurred_at.utcoffset()
    assert restored.amount_cny == event.amount_cny


def test_json_carries_chinese_as_utf8_not_escapes() -> None:
    event = _chinese_complaint()

    encoded = event.model_dump_json().encode("utf-8")

    assert "收下红包两千元".encode() in encoded
    assert b"\\u" not in encoded


def test_a_refusal_whose_reason_quotes_a_nul_is_reported_without_it() -> None:
    """Pydantic quotes the character it trips on (``complaint_event_id=%00`` in a query):
    the 422 names the field with the reason escaped, instead of failing to say it (a 500)."""
    with pytest.raises(ValidationError) as refused:
        TypeAdapter(uuid.UUID).validate_python("\x00")
    (problem,) = problems_of(refused.value.errors())
    assert "\x00" not in problem.reason
    assert "\\u0000" in problem.reason


def test_a_refused_field_whose_name_holds_a_nul_is_named_without_it() -> None:
    """A sender's unknown field named with U+0000 is refused like any other (the name shown
    escaped), not turned into a second refusal while the first is reported."""
    (problem,) = problems_of([{"loc": ("body", "a\x00b"), "msg": "Extra inputs are not permitted"}])
    assert problem.field == "body.a\\u0000b"
