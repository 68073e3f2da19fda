"""The catalogue of event types in schemas/: every contract listed once, with its topic and key;
AnySubmission telling the types apart; each type's validation of its own facts."""

import importlib
import json
import pkgutil
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import schemas
from schemas import topics
from schemas.base import Event, Submission, derive_event_id
from schemas.case import derive_case_id
from schemas.catalogue import (
    ANY_SUBMISSION,
    BY_TYPE,
    CATALOGUE,
    AnySubmission,
    EventKind,
    EventType,
)
from schemas.complaint import ComplaintReceived, ComplaintSubmission
from schemas.satisfaction import SatisfactionReceived

RECEIVED_AT = datetime(2026, 12, 20, 1, 30, tzinfo=UTC)

# The case a complaint from the mailbox clerk opened; the finding below closes it.
CASE_ID = derive_case_id(derive_event_id("mailbox.clerk", "MB-2026-W48-007"))

EXAMPLES: dict[str, dict[str, Any]] = {
    "complaint": {
        "source_system": "mailbox.clerk",
        "source_ref": "MB-2026-W48-007",
        "occurred_at": "2026-11-27T14:20:00+08:00",
        "channel": "mailbox",
        "category": "kickback",
        "accused_staff_id": "S20931",
        "accused_department": "CARDIO",
        "description": "患者家属反映：主治医生开药后收受医药代表回扣。",
        "amount_cny": "12000.00",
        "anonymous": False,
        "complainant_contact": {"name": "王女士", "phone": "13800138000"},
    },
    "visitor_log": {
        "source_system": "rep-desk",
        "source_ref": "VISIT-2026-11-20-031",
        "occurred_at": "2026-11-20T09:00:00+08:00",
        "rep_id": "REP-0417",
        "rep_name": "李明",
        "company_code": "YX-PHARMA-017",
        "company_name": "云南某医药有限公司",
        "host_staff_id": "S30417",
        "department": "PHARMACY",
        "place_code": "ADMIN-3F-RECEPTION",
        "place_kind": "reception_room",
        "started_at": "2026-11-20T09:00:00+08:00",
        "ended_at": "2026-11-20T09:25:00+08:00",
        "appointment_id": "APT-88121",
    },
    "satisfaction": {
        "source_system": "his.settlement",
        "source_ref": "SAT-20261120-5531",
        "occurred_at": "2026-11-20T10:42:00+08:00",
        "touchpoint": "settlement",
        "department": "OPD-PSY",
        "staff_id": "S11873",
        "score": 2,
        "comment": "结算窗口工作人员暗示要给红包才能加快办理。",
    },
    "investigation_finding": {
        "source_system": "discipline",
        "source_ref": "FIND-2026-031",
        "occurred_at": "2026-12-10T16:00:00+08:00",
        "case_id": CASE_ID,
        "substantiated": True,
        "confirmed_categories": ["kickback"],
        "staff_ids": ["S20931"],
        "confirmed_amount_cny": "12000.00",
        "severe_social_impact": False,
        "suspected_crime": False,
        "company_code": "YX-PHARMA-017",
        "company_name": "云南某医药有限公司",
        "summary": "经查，该医生收受医药代表回扣一万二千元，情况属实。",
    },
    "promotion_application": {
        "source_system": "hr",
        "source_ref": "PROMO-2027-0012",
        "occurred_at": "2027-03-01T09:00:00+08:00",
        "staff_id": "S20931",
        "application_id": "APP-2027-0012",
        "target_position": "副主任医师",
    },
    "red_envelope_surrender": {
        "source_system": "finance",
        "source_ref": "RE-2026-0088",
        "occurred_at": "2026-11-21T15:00:00+08:00",
        "staff_id": "S11873",
        "amount_cny": "500.00",
        "received_on": "2026-11-20",
        "surrendered_on": "2026-11-21",
        "patient_ref": "P-778812",
    },
    "prescription_ranking": {
        "source_system": "pharmacy",
        "source_ref": "RANK-2026-11-S20931-D00123",
        "occurred_at": "2026-12-02T08:00:00+08:00",
        "staff_id": "S20931",
        "department": "CARDIO",
        "item_code": "D00123",
        "item_name": "注射用某某钠",
        "item_kind": "drug",
        "month": "2026-11",
        "rank": 1,
        "justified": False,
    },
    "training_held": {
        "source_system": "dept.psy-ward-2",
        "source_ref": "STUDY-2026-11",
        "occurred_at": "2026-11-18T14:00:00+08:00",
        "department": "PSY-WARD-2",
        "held_on": "2026-11-18",
        "topic": "《医疗机构工作人员廉洁从业九项准则》专题学习",
        "kind": "study",
        "attendee_ids": ["S20931", "S11873", "S30417"],
        "headcount": 4,
    },
    "kpi_observation": {
        "source_system": "quality",
        "source_ref": "KPI-2026-11-CIR",
        "occurred_at": "2026-12-01T00:00:00+08:00",
        "metric": "complaint_investigation_rate",
        "scope": "hospital",
        "period": "2026-11",
        "value": "0.9500",
    },
    "rectification_status": {
        "source_system": "leadership",
        "source_ref": "RECT-2026-Q4-07",
        "occurred_at": "2026-12-15T17:00:00+08:00",
        "department": "OPD-PSY",
        "item": "专家号统揽加价问题整改",
        "status": "perfunctory",
        "note": "仅张贴告示，未调整放号机制。",
    },
    "case_action": {
        "source_system": "conduct.office",
        "source_ref": "ACT-2026-1203-01",
        "occurred_at": "2026-12-03T10:00:00+08:00",
        "case_id": "CASE-0123456789ABCDEF0123",
        "action": "reassign",
        "actor_staff_id": "S0101",
        "to_department": "discipline_inspection",
        "reason": "涉及科室负责人，改由纪检监察室调查。",
    },
}
"""A valid submission of every event type, as a source system would post it (no event_type)."""

# DESIGN.md, "Events": the table's order.
DESIGN_ORDER = [
    "complaint",
    "visitor_log",
    "satisfaction",
    "investigation_finding",
    "promotion_application",
    "red_envelope_surrender",
    "prescription_ranking",
    "training_held",
    "kpi_observation",
    "rectification_status",
    "case_action",  # the conduct office's actions on cases (issue #4), after the design's table
]

# The field keying each type's Kafka records, as the brief of the catalogue documents it.
DOCUMENTED_KEY_FIELDS = {
    "complaint": "event_id",
    "visitor_log": "company_code",
    "satisfaction": "event_id",
    "investigation_finding": "case_id",
    "promotion_application": "staff_id",
    "red_envelope_surrender": "staff_id",
    "prescription_ranking": "staff_id",
    "training_held": "department",
    "kpi_observation": "metric",
    "rectification_status": "department",
    "case_action": "case_id",
}

EXPECTED_KEYS = {
    "complaint": derive_event_id("mailbox.clerk", "MB-2026-W48-007").bytes,
    "visitor_log": b"YX-PHARMA-017",
    "satisfaction": derive_event_id("his.settlement", "SAT-20261120-5531").bytes,
    "investigation_finding": CASE_ID.encode("ascii"),
    "promotion_application": b"S20931",
    "red_envelope_surrender": b"S11873",
    "prescription_ranking": b"S20931",
    "training_held": b"PSY-WARD-2",
    "kpi_observation": b"complaint_investigation_rate",
    "rectification_status": b"OPD-PSY",
    "case_action": b"CASE-0123456789ABCDEF0123",
}

# Fields an event adds to the facts it was submitted with (derived by intake).
ADDED_BY_INTAKE = {"complaint": {"contact_on_file"}}


def _defined_in_schemas(base: type[Any]) -> set[type[Any]]:
    """Every subclass of ``base`` defined in a module of the schemas package."""
    for module in pkgutil.walk_packages(schemas.__path__, f"{schemas.__name__}."):
        importlib.import_module(module.name)
    found: set[type[Any]] = set()
    pending = [base]
    while pending:
        for subclass in pending.pop().__subclasses__():
            pending.append(subclass)
            if subclass.__module__.startswith(f"{schemas.__name__}."):
                found.add(subclass)
    return found


def _has_cjk(text: str) -> bool:
    return any(unicodedata.name(char, "").startswith("CJK UNIFIED IDEOGRAPH") for char in text)


def _kinds() -> list[Any]:
    return [pytest.param(kind, id=kind.event_type) for kind in CATALOGUE]


def _submission(kind: EventKind) -> Submission:
    return kind.submission.model_validate(EXAMPLES[kind.event_type])


def _event(kind: EventKind) -> Event:
    return kind.event.accept(_submission(kind), received_at=RECEIVED_AT)


# --- the catalogue lists every contract once ------------------------------------------------


def test_every_event_type_has_an_example_in_these_tests() -> None:
    assert set(EXAMPLES) == set(BY_TYPE)


def test_the_catalogue_lists_the_event_types_in_the_order_of_the_design() -> None:
    assert [kind.event_type for kind in CATALOGUE] == DESIGN_ORDER


def test_every_submission_model_in_schemas_is_in_the_catalogue_exactly_once() -> None:
    catalogued = [kind.submission for kind in CATALOGUE]

    defined = _defined_in_schemas(Submission)

    assert defined == set(catalogued)
    assert len(catalogued) == len(set(catalogued))


def test_every_event_model_in_schemas_is_in_the_catalogue_exactly_once() -> None:
    catalogued = [kind.event for kind in CATALOGUE]

    defined = _defined_in_schemas(Event)

    assert defined == set(catalogued)
    assert len(catalogued) == len(set(catalogued))


def test_the_catalogue_finds_each_kind_by_its_event_type() -> None:
    assert len(BY_TYPE) == len(CATALOGUE)
    for kind in CATALOGUE:
        assert BY_TYPE[kind.event_type] is kind


@pytest.mark.parametrize("kind", _kinds())
def test_each_kind_is_labelled_in_chinese_and_english(kind: EventKind) -> None:
    assert _has_cjk(kind.label_zh)
    assert kind.label_en.strip()
    assert kind.label_en.isascii()


@pytest.mark.parametrize("kind", _kinds())
def test_each_kinds_models_carry_its_event_type(kind: EventKind) -> None:
    assert _submission(kind).model_dump()["event_type"] == kind.event_type
    assert _event(kind).model_dump()["event_type"] == kind.event_type


def test_a_kind_whose_models_are_of_another_event_type_is_refused() -> None:
    with pytest.raises(ValueError, match="event type"):
        EventKind(
            event_type="satisfaction",
            label_zh="即时满意度评价",
            label_en="Instant satisfaction rating",
            submission=ComplaintSubmission,
            event=SatisfactionReceived,
            topic=topics.SATISFACTION_RATINGS,
            key_field="event_id",
        )


def test_a_kind_keyed_by_a_field_its_event_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match="key field"):
        EventKind(
            event_type="complaint",
            label_zh="投诉举报",
            label_en="Complaint",
            submission=ComplaintSubmission,
            event=ComplaintReceived,
            topic=topics.COMPLAINTS,
            key_field="staff_id",
        )


# --- topics ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", _kinds())
def test_each_kinds_topic_is_one_of_the_topics(kind: EventKind) -> None:
    assert kind.topic in topics.ALL
    assert kind.topic in topics.FACTS


def test_no_two_kinds_share_a_topic() -> None:
    kind_topics = [kind.topic for kind in CATALOGUE]

    assert len(set(kind_topics)) == len(kind_topics)


def test_the_fact_topics_are_the_kinds_topics_in_catalogue_order() -> None:
    assert tuple(kind.topic for kind in CATALOGUE) == topics.FACTS


def test_every_topic_name_is_listed_once() -> None:
    assert len(set(topics.ALL)) == len(topics.ALL)
    assert {
        topics.CASES,
        topics.LEADS,
        topics.DEAD_LETTERS,
    } <= set(topics.ALL)


def test_every_topic_is_a_versioned_qinglian_topic() -> None:
    for topic in topics.ALL:
        assert topic.startswith("qinglian."), topic
        assert topic.rsplit(".", 1)[1] == "v1", topic
        assert topic == topic.lower(), topic


# --- Kafka keys -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", _kinds())
def test_each_kind_is_keyed_by_its_documented_field(kind: EventKind) -> None:
    assert kind.key_field == DOCUMENTED_KEY_FIELDS[kind.event_type]


@pytest.mark.parametrize("kind", _kinds())
def test_the_kafka_key_of_an_event_is_the_value_of_its_key_field(kind: EventKind) -> None:
    assert kind.key(_event(kind)) == EXPECTED_KEYS[kind.event_type]


def test_a_uuid_key_is_its_sixteen_bytes_as_intake_has_always_sent() -> None:
    event = _event(BY_TYPE["complaint"])

    assert BY_TYPE["complaint"].key(event) == event.event_id.bytes
    assert len(BY_TYPE["complaint"].key(event)) == 16


def test_a_chinese_key_value_is_encoded_as_utf8() -> None:
    # Codes are ASCII today; the key must still be UTF-8 of the text if that changes.
    kind = BY_TYPE["visitor_log"]
    event = _event(kind).model_copy(update={"company_code": "云药017"})

    assert kind.key(event) == "云药017".encode()


def test_keying_an_event_of_another_kind_is_refused() -> None:
    with pytest.raises(TypeError):
        BY_TYPE["visitor_log"].key(_event(BY_TYPE["complaint"]))


def test_a_staff_members_events_of_one_kind_share_a_key() -> None:
    kind = BY_TYPE["promotion_application"]
    first = kind.event.accept(_submission(kind), received_at=RECEIVED_AT)
    second = kind.event.accept(
        kind.submission.model_validate(
            {**EXAMPLES[kind.event_type], "source_ref": "PROMO-2027-0099"}
        ),
        received_at=RECEIVED_AT,
    )

    assert first.event_id != second.event_id
    assert kind.key(first) == kind.key(second)


# --- AnySubmission --------------------------------------------------------------------------


def test_any_submission_is_the_union_of_the_catalogued_submissions() -> None:
    union, *_ = get_args(AnySubmission)

    assert set(get_args(union)) == {kind.submission for kind in CATALOGUE}


def test_the_event_type_literal_lists_the_catalogued_types() -> None:
    assert list(get_args(EventType)) == [kind.event_type for kind in CATALOGUE]


@pytest.mark.parametrize("kind", _kinds())
def test_a_submission_is_read_as_its_own_type_by_its_event_type(kind: EventKind) -> None:
    read = ANY_SUBMISSION.validate_python(
        {**EXAMPLES[kind.event_type], "event_type": kind.event_type}
    )

    assert type(read) is kind.submission
    assert read == _submission(kind)


@pytest.mark.parametrize("kind", _kinds())
def test_a_submission_round_trips_through_json_as_any_submission(kind: EventKind) -> None:
    submission = _submission(kind)

    read = ANY_SUBMISSION.validate_json(submission.model_dump_json())

    assert type(read) is kind.submission
    assert read == submission


def test_a_record_without_an_event_type_is_refused_at_event_type() -> None:
    record = dict(EXAMPLES["satisfaction"])

    with pytest.raises(ValidationError) as refused:
        ANY_SUBMISSION.validate_python(record)

    assert [(error["loc"], error["type"]) for error in refused.value.errors()] == [
        (("event_type",), "missing")
    ]


def test_a_json_record_without_an_event_type_is_refused_at_event_type() -> None:
    with pytest.raises(ValidationError) as refused:
        ANY_SUBMISSION.validate_json(b'{"source_system": "his", "score": 3}')

    assert [error["loc"] for error in refused.value.errors()] == [("event_type",)]


@pytest.mark.parametrize("event_type", ["bribery_report_机密", "Complaint", "", 7, None])
def test_a_record_of_an_unknown_event_type_is_refused_at_event_type(event_type: object) -> None:
    record = {**EXAMPLES["complaint"], "event_type": event_type}

    with pytest.raises(ValidationError) as refused:
        ANY_SUBMISSION.validate_python(record)

    errors = refused.value.errors()
    assert [error["loc"] for error in errors] == [("event_type",)]
    if isinstance(event_type, str) and event_type:
        assert event_type not in errors[0]["msg"]


def test_an_error_inside_a_record_is_located_under_its_event_type() -> None:
    record = {**EXAMPLES["satisfaction"], "event_type": "satisfaction", "score": 9}

    with pytest.raises(ValidationError) as refused:
        ANY_SUBMISSION.validate_python(record)

    assert [error["loc"] for error in refused.value.errors()] == [("satisfaction", "score")]


def test_a_record_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ValidationError):
        ANY_SUBMISSION.validate_json(b'["complaint"]')


# --- Event.accept ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", _kinds())
def test_accepting_a_submission_keeps_every_fact(kind: EventKind) -> None:
    submission = _submission(kind)

    event = kind.event.accept(submission, received_at=RECEIVED_AT)

    assert type(event) is kind.event
    for name in set(type(submission).model_fields) - submission.private_fields:
        assert getattr(event, name) == getattr(submission, name), name
    assert event.received_at == RECEIVED_AT
    assert event.schema_version == 1


@pytest.mark.parametrize("kind", _kinds())
def test_an_event_carries_the_submitted_facts_and_only_what_intake_adds(kind: EventKind) -> None:
    submitted = set(kind.submission.model_fields) - kind.submission.private_fields
    added = {"event_id", "received_at", "schema_version"} | ADDED_BY_INTAKE.get(
        kind.event_type, set()
    )

    assert set(kind.event.model_fields) == submitted | added


@pytest.mark.parametrize("kind", _kinds())
def test_an_accepted_event_never_carries_private_fields(kind: EventKind) -> None:
    submission = _submission(kind)

    event = kind.event.accept(submission, received_at=RECEIVED_AT)

    assert not submission.private_fields & set(kind.event.model_fields)
    published = event.model_dump_json()
    for name in submission.private_fields:
        assert name not in published


def test_the_complainants_contact_details_stay_out_of_the_complaint_event() -> None:
    event = _event(BY_TYPE["complaint"])

    published = event.model_dump_json()

    assert "13800138000" not in published
    assert "王女士" not in published


@pytest.mark.parametrize("kind", _kinds())
def test_an_accepted_event_is_identified_by_its_source(kind: EventKind) -> None:
    example = EXAMPLES[kind.event_type]

    event = _event(kind)

    assert event.event_id == derive_event_id(example["source_system"], example["source_ref"])
    assert isinstance(event.event_id, uuid.UUID)


@pytest.mark.parametrize("kind", _kinds())
def test_an_event_survives_a_json_round_trip_exactly(kind: EventKind) -> None:
    event = _event(kind)

    assert kind.event.model_validate_json(event.model_dump_json()) == event


@pytest.mark.parametrize("kind", _kinds())
def test_an_event_carries_chinese_as_utf8_not_escapes(kind: EventKind) -> None:
    encoded = _event(kind).model_dump_json().encode("utf-8")

    assert b"\\u" not in encoded


# --- each type's own validation -------------------------------------------------------------

_MISSING = object()
"""In a case's changes: leave the field out."""


@dataclass(frozen=True)
class Case:
    event_type: str
    changes: dict[str, Any]
    at: tuple[str | int, ...]
    """Where the refusal is located: a field, or () for a check across fields."""
    secrets: tuple[str, ...] = field(default=())
    """Submitted text no error message may repeat (besides every string in changes)."""


def _refused(case: Case) -> Any:
    return pytest.param(case, id=f"{case.event_type}-{'.'.join(map(str, case.at)) or 'root'}")


LONG_CHINESE = "内部机密评语" * 200
REFUSALS = [
    # satisfaction
    Case("satisfaction", {"score": 0}, ("score",)),
    Case("satisfaction", {"score": 6}, ("score",)),
    Case("satisfaction", {"score": "3"}, ("score",)),
    Case("satisfaction", {"score": True}, ("score",)),
    Case("satisfaction", {"score": 4.0}, ("score",)),
    Case("satisfaction", {"comment": LONG_CHINESE[:501]}, ("comment",)),
    Case("satisfaction", {"touchpoint": "药房窗口-机密"}, ("touchpoint",)),
    Case("satisfaction", {"department": _MISSING}, ("department",)),
    # visitor_log
    Case(
        "visitor_log",
        {"started_at": "2026-11-20T10:00:00+08:00", "ended_at": "2026-11-20T09:15:00+08:00"},
        (),
    ),
    Case("visitor_log", {"place_kind": "走廊-机密"}, ("place_kind",)),
    Case("visitor_log", {"company_code": "云南某医药-机密"}, ("company_code",)),
    Case("visitor_log", {"rep_name": "李" * 65}, ("rep_name",)),
    Case("visitor_log", {"started_at": "下午三点-机密"}, ("started_at",)),
    # investigation_finding
    Case("investigation_finding", {"substantiated": True, "confirmed_categories": []}, ()),
    Case(
        "investigation_finding",
        {"substantiated": False, "confirmed_categories": ["kickback"]},
        (),
        secrets=("kickback",),
    ),
    Case(
        "investigation_finding",
        {"confirmed_categories": ["kickback", "kickback"]},
        ("confirmed_categories",),
        secrets=("kickback",),
    ),
    Case(
        "investigation_finding",
        {"confirmed_categories": ["bribery_机密"]},
        ("confirmed_categories", 0),
    ),
    Case("investigation_finding", {"confirmed_amount_cny": "-1.00"}, ("confirmed_amount_cny",)),
    Case("investigation_finding", {"case_id": "CASE-机密编号-0001"}, ("case_id",)),
    Case("investigation_finding", {"case_id": "CASE-" + "a1b2c3d4e5" * 2}, ("case_id",)),
    Case("investigation_finding", {"case_id": CASE_ID + "0"}, ("case_id",)),
    Case("investigation_finding", {"company_name": _MISSING}, ()),
    Case(
        "investigation_finding",
        {"company_code": _MISSING, "company_name": "某医药公司-机密"},
        (),
    ),
    Case("investigation_finding", {"staff_ids": [f"S{n}" for n in range(51)]}, ("staff_ids",)),
    Case("investigation_finding", {"summary": "  "}, ("summary",)),
    # promotion_application
    Case("promotion_application", {"staff_id": _MISSING}, ("staff_id",)),
    Case("promotion_application", {"target_position": "主任" * 51}, ("target_position",)),
    # red_envelope_surrender
    Case(
        "red_envelope_surrender", {"received_on": "2026-11-22", "surrendered_on": "2026-11-21"}, ()
    ),
    Case("red_envelope_surrender", {"amount_cny": "-500.00"}, ("amount_cny",)),
    Case("red_envelope_surrender", {"amount_cny": "0.00"}, ("amount_cny",)),
    Case("red_envelope_surrender", {"amount_cny": "500.001"}, ("amount_cny",)),
    Case("red_envelope_surrender", {"received_on": "上周三-机密"}, ("received_on",)),
    # prescription_ranking
    Case("prescription_ranking", {"month": "2026-13"}, ("month",)),
    Case("prescription_ranking", {"month": "2026-11-01"}, ("month",)),
    Case("prescription_ranking", {"rank": 0}, ("rank",)),
    Case("prescription_ranking", {"rank": "1"}, ("rank",)),
    Case("prescription_ranking", {"item_kind": "器械-机密"}, ("item_kind",)),
    Case("prescription_ranking", {"justification": LONG_CHINESE[:1001]}, ("justification",)),
    # training_held
    Case("training_held", {"attendee_ids": ["S1", "S2", "S3"], "headcount": 2}, ()),
    Case("training_held", {"attendee_ids": ["S-DUP-7731", "S-DUP-7731"]}, ("attendee_ids",)),
    Case("training_held", {"headcount": 0}, ("headcount",)),
    Case("training_held", {"kind": "讲座-机密"}, ("kind",)),
    Case("training_held", {"held_on": "2026-02-30"}, ("held_on",)),
    # kpi_observation
    Case("kpi_observation", {"period": "2026-13"}, ("period",)),
    Case("kpi_observation", {"period": "26-11"}, ("period",)),
    Case("kpi_observation", {"period": "2026-1"}, ("period",)),
    Case("kpi_observation", {"value": "NaN"}, ("value",)),
    Case("kpi_observation", {"value": "-Infinity"}, ("value",)),
    Case("kpi_observation", {"metric": "bed_occupancy_机密"}, ("metric",)),
    Case("kpi_observation", {"scope": "全院-机密"}, ("scope",)),
    # rectification_status
    Case("rectification_status", {"status": "部分整改-机密"}, ("status",)),
    Case("rectification_status", {"item": ""}, ("item",)),
    Case("rectification_status", {"note": LONG_CHINESE[:1001]}, ("note",)),
    # case_action
    Case("case_action", {"case_id": "CASE-机密"}, ("case_id",)),
    Case("case_action", {"action": "delete-机密"}, ("action",)),
    Case("case_action", {"to_department": None}, ()),  # a reassignment names where to
    Case("case_action", {"action": "close"}, ()),  # closing names no department
    Case("case_action", {"reason": None}, ()),  # a reassignment gives its reason
    # complaint
    Case("complaint", {"amount_cny": "-2000.00"}, ("amount_cny",)),
    Case("complaint", {"category": "受贿-机密"}, ("category",)),
]

ACCEPTED_VARIANTS = [
    ("satisfaction", {"score": 1}),
    ("satisfaction", {"score": 5, "comment": _MISSING, "staff_id": None}),
    ("visitor_log", {"ended_at": None, "appointment_id": None, "host_staff_id": None}),
    ("visitor_log", {"ended_at": "2026-11-20T09:00:00+08:00"}),
    ("visitor_log", {"place_kind": "clinical_area"}),
    (
        "investigation_finding",
        {
            "substantiated": False,
            "confirmed_categories": [],
            "confirmed_amount_cny": None,
            "company_code": None,
            "company_name": None,
        },
    ),
    ("investigation_finding", {"confirmed_categories": ["improper_relationship", "gambling"]}),
    ("promotion_application", {"target_position": _MISSING}),
    ("red_envelope_surrender", {"surrendered_on": "2026-11-20", "patient_ref": None}),
    ("red_envelope_surrender", {"amount_cny": "0.01"}),
    ("prescription_ranking", {"justified": True, "justification": "危重患者抢救用药。"}),
    ("training_held", {"attendee_ids": ["S1", "S2"], "headcount": 2}),
    ("training_held", {"attendee_ids": [], "kind": "warning_education"}),
    ("kpi_observation", {"period": "2026", "scope": "CARDIO"}),
    ("kpi_observation", {"metric": "expert_slots_growth", "value": "-0.0300"}),
    ("kpi_observation", {"metric": "inpatient_wait_days", "value": 6.5}),
    ("rectification_status", {"status": "done", "note": _MISSING}),
    ("case_action", {"action": "close", "to_department": None, "reason": _MISSING}),
    ("case_action", {"action": "start_investigation", "to_department": _MISSING}),
]


def _apply(event_type: str, changes: dict[str, Any]) -> dict[str, Any]:
    payload = {**EXAMPLES[event_type], **changes}
    return {name: value for name, value in payload.items() if value is not _MISSING}


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def test_every_event_type_has_refusals_in_the_table() -> None:
    assert {case.event_type for case in REFUSALS} == set(BY_TYPE)


@pytest.mark.parametrize("case", [_refused(case) for case in REFUSALS])
def test_an_invalid_submission_is_refused_at_the_faulty_field(case: Case) -> None:
    with pytest.raises(ValidationError) as refused:
        BY_TYPE[case.event_type].submission.model_validate(_apply(case.event_type, case.changes))

    assert {error["loc"] for error in refused.value.errors()} == {case.at}


@pytest.mark.parametrize("case", [_refused(case) for case in REFUSALS])
def test_a_refusal_never_repeats_the_submitted_value(case: Case) -> None:
    with pytest.raises(ValidationError) as refused:
        BY_TYPE[case.event_type].submission.model_validate(_apply(case.event_type, case.changes))

    secrets = {text for text in _strings(list(case.changes.values())) if len(text) >= 4}
    secrets |= set(case.secrets)
    for error in refused.value.errors(include_input=False):
        reported = f"{error['msg']} {error.get('ctx', '')}"
        for secret in secrets:
            assert secret not in reported, error


@pytest.mark.parametrize("case", [_refused(case) for case in REFUSALS])
def test_an_invalid_event_is_refused_like_its_submission(case: Case) -> None:
    kind = BY_TYPE[case.event_type]
    event = {**_event(kind).model_dump(mode="json"), **case.changes}

    with pytest.raises(ValidationError) as refused:
        kind.event.model_validate(
            {name: value for name, value in event.items() if value is not _MISSING}
        )

    assert {error["loc"] for error in refused.value.errors()} == {case.at}


@pytest.mark.parametrize(
    ("event_type", "changes"),
    [pytest.param(event_type, changes, id=event_type) for event_type, changes in ACCEPTED_VARIANTS],
)
def test_a_valid_variant_is_accepted(event_type: str, changes: dict[str, Any]) -> None:
    kind = BY_TYPE[event_type]

    submission = kind.submission.model_validate(_apply(event_type, changes))

    assert type(kind.event.accept(submission, received_at=RECEIVED_AT)) is kind.event


def test_a_kpi_value_is_kept_exact() -> None:
    kind = BY_TYPE["kpi_observation"]

    event = kind.event.accept(
        kind.submission.model_validate(_apply("kpi_observation", {"value": "0.8005"})),
        received_at=RECEIVED_AT,
    )

    assert event.model_dump()["value"] == Decimal("0.8005")
    assert '"value":"0.8005"' in event.model_dump_json()


# --- strict types: a number is not a date, "yes" is not a boolean ----------------------------
#
# FastAPI validates a JSON body as Python objects (json.loads first), the batch endpoint too;
# the raw topic validates the JSON bytes. Both paths must accept and refuse the same values,
# and accept nothing the published JSON Schema (with its formats) refuses.

JSON_DIR = Path(schemas.__file__).resolve().parent / "json"
"""The JSON Schemas source systems build against."""
PUBLISHED_SCHEMAS = {
    kind.event_type: jsonschema_rs.validator_for(
        json.loads((JSON_DIR / f"{kind.event_type}.submission.schema.json").read_bytes()),
        validate_formats=True,
    )
    for kind in CATALOGUE
}

LOOSELY_TYPED = [
    ("complaint", "occurred_at", 12345),
    ("complaint", "occurred_at", "12345"),
    ("complaint", "occurred_at", 1.7e9),
    ("complaint", "occurred_at", True),
    ("complaint", "occurred_at", "2026-11-27T14:20:00"),  # no time zone
    ("complaint", "occurred_at", "2026-11-27 14:20:00+08:00"),
    ("complaint", "occurred_at", "2026-11-27T14:20+08:00"),  # no seconds
    ("complaint", "occurred_at", "2026-11-27"),
    ("complaint", "occurred_at", " 2026-11-27T14:20:00+08:00"),
    ("complaint", "occurred_at", "2026-11-27T14:20:00+08:00\n"),
    ("complaint", "occurred_at", "２０２６-11-27T14:20:00+08:00"),  # full-width digits
    ("complaint", "anonymous", "yes"),
    ("complaint", "anonymous", "true"),
    ("complaint", "anonymous", "off"),
    ("complaint", "anonymous", 1),
    ("complaint", "anonymous", 0),
    ("complaint", "anonymous", 0.0),
    ("complaint", "category", "KICKBACK"),
    ("complaint", "channel", " mailbox"),
    ("complaint", "amount_cny", True),
    ("visitor_log", "started_at", 0),
    ("visitor_log", "started_at", "2026-11-20T09:00:00"),
    ("visitor_log", "ended_at", "1732083300"),
    ("satisfaction", "score", "5"),
    ("satisfaction", "score", 4.5),
    ("satisfaction", "score", True),
    ("investigation_finding", "substantiated", "true"),
    ("investigation_finding", "severe_social_impact", "no"),
    ("investigation_finding", "suspected_crime", 1),
    ("red_envelope_surrender", "received_on", 0),
    ("red_envelope_surrender", "received_on", 1732060800),
    ("red_envelope_surrender", "surrendered_on", "2026-11-21T00:00:00"),
    ("prescription_ranking", "justified", 0),
    ("prescription_ranking", "justified", "N"),
    ("prescription_ranking", "rank", "1"),
    ("prescription_ranking", "rank", 1.5),
    ("training_held", "held_on", "2026-11-18T00:00:00+08:00"),
    ("training_held", "held_on", 20261118),
    ("training_held", "held_on", "2026-11-18 "),
    ("training_held", "headcount", "4"),
    ("training_held", "headcount", 4.5),
    ("kpi_observation", "value", False),
    ("rectification_status", "status", "Done"),
    ("case_action", "action", "CLOSE"),
    ("case_action", "occurred_at", "2026-12-03T10:00:00"),
]


def _both_paths(body: object) -> tuple[ValidationError | None, ValidationError | None]:
    """What HTTP (Python objects) and the raw topic (JSON bytes) make of one record."""
    try:
        ANY_SUBMISSION.validate_python(body)
        from_objects = None
    except ValidationError as error:
        from_objects = error
    try:
        ANY_SUBMISSION.validate_json(json.dumps(body))
        from_bytes = None
    except ValidationError as error:
        from_bytes = error
    return from_objects, from_bytes


@pytest.mark.parametrize(
    ("event_type", "name", "value"),
    [pytest.param(*case, id=f"{case[0]}.{case[1]}={case[2]!r}") for case in LOOSELY_TYPED],
)
def test_a_loosely_typed_value_is_refused_at_its_field_on_both_paths(
    event_type: str, name: str, value: object
) -> None:
    body = {**_apply(event_type, {name: value}), "event_type": event_type}

    for refused in _both_paths(body):
        assert refused is not None, f"{name}={value!r} was accepted"
        assert {error["loc"] for error in refused.errors()} == {(event_type, name)}
    assert not PUBLISHED_SCHEMAS[event_type].is_valid(body)


@pytest.mark.parametrize(
    ("event_type", "changes"),
    [
        ("complaint", {"occurred_at": "2026-11-27T06:20:00Z"}),
        ("complaint", {"occurred_at": "2026-11-27t06:20:00.250z"}),
        (
            "complaint",
            {
                "occurred_at": "2026-11-27T14:20:00.123456+08:00",
                "anonymous": True,
                "complainant_contact": _MISSING,
            },
        ),
        ("visitor_log", {"started_at": "2026-11-20T01:00:00-00:00", "ended_at": None}),
        ("red_envelope_surrender", {"received_on": "2026-11-20", "surrendered_on": "2026-11-20"}),
        ("prescription_ranking", {"justified": True, "rank": 3}),
        ("kpi_observation", {"value": 0.95}),
    ],
)
def test_rfc_3339_times_iso_days_and_json_booleans_are_accepted_on_both_paths(
    event_type: str, changes: dict[str, Any]
) -> None:
    body = {**_apply(event_type, changes), "event_type": event_type}

    assert _both_paths(body) == (None, None)
    assert PUBLISHED_SCHEMAS[event_type].is_valid(body)


def test_a_time_with_an_offset_keeps_its_instant() -> None:
    kind = BY_TYPE["visitor_log"]

    submission = kind.submission.model_validate(
        _apply("visitor_log", {"started_at": "2026-11-20T09:00:00+08:00", "ended_at": None})
    )

    assert submission.model_dump()["started_at"] == datetime(2026, 11, 20, 1, 0, tzinfo=UTC)


_NEAR_MISSES = st.sampled_from(
    [
        "yes", "no", "true", "false", "on", "1", "0", "5", "4.5", "12345", "1e3", "NaN",
        "2026-11-27", "2026-11-27T14:20:00", "2026-11-27T14:20", "2026-11-27 14:20:00+08:00",
        "2026-11-27T14:20:00Z", "2026-11-27T14:20:00+08:00", "20261127", "kickback", "KICKBACK",
    ]
)  # fmt: skip
_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**66), max_value=2**66)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _NEAR_MISSES
    # Without surrounding whitespace: stripping it is the one leniency a schema cannot state.
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=12).filter(
        lambda text: text == text.strip()
    )
)
_JSON_VALUES = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)


@st.composite
def _retyped_submissions(draw: st.DrawFn) -> dict[str, Any]:
    """A valid submission with a few of its fields given other JSON values."""
    kind = draw(st.sampled_from(CATALOGUE))
    body = {**EXAMPLES[kind.event_type], "event_type": kind.event_type}
    names = sorted(kind.submission.model_fields)
    for name in draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True)):
        body[name] = draw(_JSON_VALUES)
    return body


@pytest.mark.parametrize(
    "body",
    [
        {"source_system": "portal", "description": "举报人电话13911112222"},
        {"event_type": "kickback_ledger", "note": "举报人电话13911112222"},
        {**EXAMPLES["complaint"], "event_type": "complaint", "anonymous": "举报人电话13911112222"},
        {**EXAMPLES["complaint"], "event_type": "complaint", "channel": None, "occurred_at": 5},
        "举报人电话13911112222",
    ],
    ids=["no-event-type", "unknown-event-type", "wrong-field", "missing-field", "not-an-object"],
)
def test_a_refusal_printed_whole_shows_none_of_the_record(body: object) -> None:
    refusals = [error for error in _both_paths(body) if error is not None]

    assert len(refusals) == 2
    for refused in refusals:
        printed = f"{refused}\n{refused!r}"
        for private in ("13911112222", "13800138000", "S20931", "回扣"):
            assert private not in printed


@settings(max_examples=400, deadline=None)
@given(body=_retyped_submissions())
def test_both_paths_agree_and_accept_nothing_the_published_schema_refuses(
    body: dict[str, Any],
) -> None:
    from_objects, from_bytes = _both_paths(body)

    assert (from_objects is None) == (from_bytes is None)
    if from_objects is None and isinstance(body.get("event_type"), str):
        assert PUBLISHED_SCHEMAS[body["event_type"]].is_valid(body), body
