"""The intake HTTP API against the real broker and store, as a source system uses it.

Every test talks to a running intake (its lifespan connected to Kafka and the MongoDB-wire
store) with a real API key, and checks what was published by reading the topics.
"""

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from bson import CodecOptions
from bson.raw_bson import RawBSONDocument
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from pymongo import AsyncMongoClient

from schemas import topics
from schemas.base import HOSPITAL_TIME_ZONE, derive_event_id
from schemas.catalogue import BY_TYPE, CATALOGUE, EventKind
from schemas.complaint import ComplaintCategory, ComplaintChannel, ComplaintReceived
from schemas.follow_up import FollowUpCodeIssued, ReporterReply
from services.common.credentials import credential_id, new_credential
from services.common.store import Document
from services.intake.crypto import API_KEY_PREFIX
from tests.conftest import InfraSettings
from tests.integration.intake_app import RunningIntake, intake_settings, running_intake
from tests.integration.kafka_reading import (
    Positions,
    Record,
    end_offsets,
    published_since,
    with_event_id,
)
from tests.logs import echoes_of, every_log_record_at_debug, logged_text

CONTACT_DETAILS = "联系电话13800138000"
"""Looks like what a complainant might write anywhere; must never come back in an answer."""

SHANGHAI_EVENING = "2026-11-20T20:15:00+08:00"
"""A past evening in hospital time: 12:15 UTC."""


def path_of(kind: EventKind) -> str:
    return f"/v1/{kind.topic.split('.')[1]}"


COMPLAINTS = path_of(BY_TYPE["complaint"])
SATISFACTION = path_of(BY_TYPE["satisfaction"])


# --- one valid submission of every event type (without its source_ref) ---------------------------

SAMPLES: dict[str, dict[str, Any]] = {
    "complaint": {
        "event_type": "complaint",
        "source_system": "portal",
        "occurred_at": "2026-11-19T16:40:00+08:00",
        "channel": "portal",
        "category": "red_envelope",
        "accused_staff_id": "D2019",
        "accused_department": "cardiology",
        "description": "患者家属反映主治医生在术前收受红包两千元，并暗示不给红包就推迟手术。",
        "amount_cny": "2000.00",
        "anonymous": False,
    },
    "visitor_log": {
        "event_type": "visitor_log",
        "source_system": "rep-desk",
        "occurred_at": "2026-11-20T14:00:00+08:00",
        "rep_id": "REP-0093",
        "rep_name": "王建国",
        "company_code": "HZ-PHARMA-07",
        "company_name": "杭州康泰医药有限公司",
        "host_staff_id": "D1001",
        "department": "pharmacy",
        "place_code": "RECEPTION-1",
        "place_kind": "reception_room",
        "started_at": "2026-11-20T14:00:00+08:00",
        "ended_at": "2026-11-20T14:30:00+08:00",
        "appointment_id": "APT-20261120-01",
    },
    "satisfaction": {
        "event_type": "satisfaction",
        "source_system": "his-settlement",
        "occurred_at": "2026-11-21T10:05:00+08:00",
        "touchpoint": "settlement",
        "department": "OPD",
        "staff_id": "N0107",
        "score": 2,
        "comment": "收费窗口态度冷淡，还暗示塞点钱可以快点办。",
    },
    "investigation_finding": {
        "event_type": "investigation_finding",
        "source_system": "discipline-office",
        "occurred_at": "2026-11-22T09:00:00+08:00",
        "case_id": "CASE-0123456789ABCDEF0123",
        "substantiated": True,
        "confirmed_categories": ["kickback"],
        "staff_ids": ["D1001"],
        "confirmed_amount_cny": "36000.00",
        "severe_social_impact": False,
        "suspected_crime": True,
        "company_code": "HZ-PHARMA-07",
        "company_name": "杭州康泰医药有限公司",
        "summary": "经查，该医生收受医药代表回扣三万六千元，涉嫌犯罪，移送司法机关。",
    },
    "promotion_application": {
        "event_type": "promotion_application",
        "source_system": "hr",
        "occurred_at": "2026-11-18T11:00:00+08:00",
        "staff_id": "D1001",
        "application_id": "HR-2026-0311",
        "target_position": "心内科副主任",
    },
    "red_envelope_surrender": {
        "event_type": "red_envelope_surrender",
        "source_system": "finance",
        "occurred_at": "2026-11-19T15:00:00+08:00",
        "staff_id": "N0107",
        "amount_cny": "600.00",
        "received_on": "2026-11-18",
        "surrendered_on": "2026-11-19",
        "patient_ref": "P-88231",
    },
    "prescription_ranking": {
        "event_type": "prescription_ranking",
        "source_system": "pharmacy",
        "occurred_at": "2026-11-05T08:00:00+08:00",
        "staff_id": "D1001",
        "department": "cardiology",
        "item_code": "DRUG-0042",
        "item_name": "注射用某某单抗",
        "item_kind": "drug",
        "month": "2026-10",
        "rank": 1,
        "justified": False,
    },
    "training_held": {
        "event_type": "training_held",
        "source_system": "cardiology-dept",
        "occurred_at": "2026-11-12T17:00:00+08:00",
        "department": "cardiology",
        "held_on": "2026-11-12",
        "topic": "医疗机构工作人员廉洁从业九项准则专题学习",
        "kind": "study",
        "attendee_ids": ["D1001", "D1002", "N0107"],
        "headcount": 12,
    },
    "kpi_observation": {
        "event_type": "kpi_observation",
        "source_system": "quality",
        "occurred_at": "2026-11-03T09:00:00+08:00",
        "metric": "test_mutual_recognition",
        "scope": "hospital",
        "period": "2026-10",
        "value": "0.83",
    },
    "rectification_status": {
        "event_type": "rectification_status",
        "source_system": "leadership-group",
        "occurred_at": "2026-11-25T16:00:00+08:00",
        "department": "OPD",
        "item": "挂号窗口专家号管理整改",
        "status": "perfunctory",
        "note": "仅张贴告示，未建立号源核查机制。",
    },
    "case_action": {
        "event_type": "case_action",
        "source_system": "conduct-office",
        "occurred_at": "2026-11-25T17:00:00+08:00",
        "case_id": "CASE-0123456789ABCDEF0123",
        "action": "close",
        "actor_staff_id": "S0101",
        "reason": "调查结论已送达，结案。",
    },
}


def sample(event_type: str, **overrides: Any) -> dict[str, Any]:
    """A valid submission with a source_ref no other test or run uses."""
    return {**SAMPLES[event_type], "source_ref": f"T-{uuid.uuid4().hex}", **overrides}


def complaint(**overrides: Any) -> dict[str, Any]:
    return sample("complaint", **overrides)


def event_id_of(body: dict[str, Any]) -> str:
    return str(derive_event_id(body["source_system"], body["source_ref"]))


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def intake(infra: InfraSettings) -> AsyncIterator[RunningIntake]:
    """One intake for the module, with its own database (dropped after) and consumer group."""
    intake_config = intake_settings(infra, uuid.uuid4().hex[:12])
    async with running_intake(intake_config) as running:
        yield running
    client: AsyncMongoClient[Document] = AsyncMongoClient(infra.mongo_url)
    await client.drop_database(intake_config.mongo_db)
    await client.close()


@pytest.fixture(scope="module")
async def portal_key(intake: RunningIntake) -> str:
    """The online portal's key, allowed every event type."""
    return await intake.key_for("portal")


@pytest.fixture
def bootstrap(infra: InfraSettings) -> str:
    return infra.kafka_bootstrap


# --- helpers -------------------------------------------------------------------------------------


def problems(response: httpx.Response) -> list[dict[str, str]]:
    """The refusal's problems, each a field and a non-empty reason."""
    assert 400 <= response.status_code < 500, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list), detail
    assert detail
    for problem in detail:
        assert set(problem) == {"field", "reason"}
        assert isinstance(problem["reason"], str)
        assert problem["reason"]
    return detail


def fields(response: httpx.Response) -> set[str]:
    return {problem["field"] for problem in problems(response)}


async def published(bootstrap: str, topic: str, since: Positions, event_id: object) -> list[Record]:
    """The records carrying ``event_id`` written to ``topic`` after ``since``."""
    return with_event_id(await published_since(bootstrap, topic, since), event_id)


def metric(text: str, sample_name: str, **labels: str) -> float:
    return sum(
        value.value
        for family in text_string_to_metric_families(text)
        for value in family.samples
        if value.name == sample_name and labels.items() <= value.labels.items()
    )


# --- 1. every event type -------------------------------------------------------------------------


def test_the_sample_table_has_a_valid_submission_of_every_catalogued_event_type() -> None:
    assert set(SAMPLES) == set(BY_TYPE)
    for kind in CATALOGUE:
        kind.submission.model_validate(sample(kind.event_type))


@pytest.mark.parametrize("kind", CATALOGUE, ids=lambda kind: kind.event_type)
async def test_every_event_type_is_accepted_and_published_on_its_topic_with_its_facts(
    intake: RunningIntake, bootstrap: str, kind: EventKind
) -> None:
    body = sample(kind.event_type)
    key = await intake.key_for(body["source_system"], {kind.event_type})
    before = await end_offsets(bootstrap, kind.topic)
    sent_at = datetime.now(UTC)

    response = await intake.post(path_of(kind), body, key=key)

    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "accepted"
    assert answer["event_id"] == event_id_of(body)
    (record,) = await published(bootstrap, kind.topic, before, answer["event_id"])
    event = kind.event.model_validate_json(record.value)
    assert record.key == kind.key(event)
    assert event.event_type == kind.event_type  # type: ignore[attr-defined]
    assert str(event.event_id) == answer["event_id"]
    assert sent_at <= event.received_at <= datetime.now(UTC)
    submission = kind.submission.model_validate(body)
    facts = submission.model_dump(exclude={"event_type", *submission.private_fields})
    assert {name: getattr(event, name) for name in facts} == facts


async def test_text_travels_as_utf8_chinese_on_the_topic(
    intake: RunningIntake, portal_key: str, bootstrap: str
) -> None:
    body = complaint()
    before = await end_offsets(bootstrap, topics.COMPLAINTS)

    response = await intake.post(COMPLAINTS, body, key=portal_key)

    assert response.status_code == 202, response.text
    (record,) = await published(bootstrap, topics.COMPLAINTS, before, event_id_of(body))
    assert body["description"].encode("utf-8") in record.value


async def test_a_time_with_its_offset_is_published_as_the_same_instant(
    intake: RunningIntake, portal_key: str, bootstrap: str
) -> None:
    body = complaint(occurred_at=SHANGHAI_EVENING)
    before = await end_offsets(bootstrap, topics.COMPLAINTS)

    response = await intake.post(COMPLAINTS, body, key=portal_key)

    assert response.status_code == 202, response.text
    (record,) = await published(bootstrap, topics.COMPLAINTS, before, event_id_of(body))
    event = ComplaintReceived.model_validate_json(record.value)
    assert event.occurred_at == datetime(2026, 11, 20, 12, 15, tzinfo=UTC)
    assert event.channel is ComplaintChannel.PORTAL
    assert event.category is ComplaintCategory.RED_ENVELOPE
    assert event.amount_cny == Decimal("2000.00")


async def test_submissions_are_counted_for_prometheus_by_event_type_and_outcome(
    intake: RunningIntake, portal_key: str
) -> None:
    def counted(text: str, outcome: str) -> float:
        return metric(
            text, "qinglian_intake_submissions_total", event_type="satisfaction", outcome=outcome
        )

    before = (await intake.client.get("/metrics")).text
    body = sample("satisfaction", source_system="portal")
    await intake.post(SATISFACTION, body, key=portal_key)
    await intake.post(SATISFACTION, body, key=portal_key)
    await intake.post(SATISFACTION, sample("satisfaction", source_system="portal"), key=portal_key)
    after = (await intake.client.get("/metrics")).text

    assert counted(after, "accepted") - counted(before, "accepted") == 2
    assert counted(after, "duplicate") - counted(before, "duplicate") == 1


# --- 2. duplicates and 3. conflicts --------------------------------------------------------------


async def test_a_repeated_complaint_is_a_duplicate_with_the_same_id_and_follow_up_code(
    intake: RunningIntake, portal_key: str, bootstrap: str
) -> None:
    body = complaint()
    first = await intake.post(COMPLAINTS, body, key=portal_key)
    assert first.status_code == 202, first.text
    before = await end_offsets(bootstrap, topics.COMPLAINTS)

    again = await intake.post(COMPLAINTS, body, key=portal_key)

    assert again.status_code == 200, again.text
    assert again.json() == {
        "event_id": first.json()["event_id"],
        "status": "duplicate",
        "follow_up_code": first.json()["follow_up_code"],
    }
    assert await published(bootstrap, topics.COMPLAINTS, before, first.json()["event_id"]) == []


async def test_a_retry_with_its_fields_in_another_order_is_still_a_duplicate(
    intake: RunningIntake, portal_key: str
) -> None:
    body = sample("satisfaction", source_system="portal")
    first = await intake.post(SATISFACTION, body, key=portal_key)

    again = await intake.post(SATISFACTION, dict(reversed(body.items())), key=portal_key)

    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["event_id"] == first.json()["event_id"]


async def test_a_duplicate_is_recognised_after_intake_restarts(
    infra: InfraSettings, unique: str, store: object, bootstrap: str
) -> None:
    config = intake_settings(infra, unique)  # ``store`` drops this database afterwards
    body = complaint()
    async with running_intake(config) as first_run:
        key = await first_run.key_for("portal", {"complaint"})
        first = await first_run.post(COMPLAINTS, body, key=key)
    assert first.status_code == 202, first.text

    async with running_intake(config) as second_run:
        before = await end_offsets(bootstrap, topics.COMPLAINTS)
        again = await second_run.post(COMPLAINTS, body, key=key)

    assert again.status_code == 200, again.text
    assert again.json()["status"] == "duplicate"
    assert again.json()["event_id"] == first.json()["event_id"]
    assert again.json()["follow_up_code"] == first.json()["follow_up_code"]
    assert await published(bootstrap, topics.COMPLAINTS, before, first.json()["event_id"]) == []


async def test_the_same_source_ref_with_other_content_is_a_conflict_and_not_published(
    intake: RunningIntake, portal_key: str, bootstrap: str
) -> None:
    body = complaint()
    first = await intake.post(COMPLAINTS, body, key=portal_key)
    assert first.status_code == 202, first.text
    before = await end_offsets(bootstrap, topics.COMPLAINTS)
    altered = {**body, "description": f"改口：其实没有收红包。{CONTACT_DETAILS}"}

    conflict = await intake.post(COMPLAINTS, altered, key=portal_key)

    assert conflict.status_code == 409, conflict.text
    assert "source_ref" in conflict.json()["detail"]
    assert "13800138000" not in conflict.text
    assert await published(bootstrap, topics.COMPLAINTS, before, first.json()["event_id"]) == []
    # The first content stands: sending it again is still a duplicate, not a conflict.
    original = await intake.post(COMPLAINTS, body, key=portal_key)
    assert original.status_code == 200, original.text


# --- 4. who may send what ------------------------------------------------------------------------


@pytest.mark.parametrize("path", [COMPLAINTS, "/v1/batch", "/v1/follow-up/replies"])
async def test_a_request_without_an_api_key_is_refused_saying_where_the_key_goes(
    intake: RunningIntake, path: str
) -> None:
    response = await intake.client.post(path, json=complaint())

    assert response.status_code == 401, response.text
    assert "X-API-Key" in response.json()["detail"]


@pytest.mark.parametrize(
    "api_key",
    [new_credential(API_KEY_PREFIX)[1], "qlk_000000000000_not-a-secret", "portal", ""],
    ids=["well-formed-but-never-issued", "unknown-key-id", "not-shaped-like-a-key", "empty"],
)
async def test_an_unknown_api_key_is_refused_with_401(
    intake: RunningIntake, bootstrap: str, api_key: str
) -> None:
    body = complaint()
    before = await end_offsets(bootstrap, topics.COMPLAINTS)

    response = await intake.client.post(COMPLAINTS, json=body, headers={"X-API-Key": api_key})

    assert response.status_code == 401, response.text
    assert "API key" in response.json()["detail"]
    assert await published(bootstrap, topics.COMPLAINTS, before, event_id_of(body)) == []


async def test_a_real_key_id_with_a_wrong_secret_is_refused(intake: RunningIntake) -> None:
    key = await intake.key_for("portal")
    forged = key[: key.rindex("_") + 1] + "x" * 43

    response = await intake.post(COMPLAINTS, complaint(), key=forged)

    assert response.status_code == 401, response.text


async def test_a_revoked_key_is_refused_from_the_next_request(intake: RunningIntake) -> None:
    key = await intake.key_for("portal", {"complaint"})
    assert (await intake.post(COMPLAINTS, complaint(), key=key)).status_code == 202
    key_id = credential_id(key, API_KEY_PREFIX)
    assert key_id is not None

    assert await intake.store.keys.revoke(key_id, now=datetime.now(UTC))
    response = await intake.post(COMPLAINTS, complaint(), key=key)

    assert response.status_code == 401, response.text
    assert "revoked" in response.json()["detail"]


async def test_a_key_without_the_event_types_scope_is_refused_naming_the_event_type(
    intake: RunningIntake, bootstrap: str
) -> None:
    key = await intake.key_for("portal", {"satisfaction"})
    body = complaint()
    before = await end_offsets(bootstrap, topics.COMPLAINTS)

    response = await intake.post(COMPLAINTS, body, key=key)

    assert response.status_code == 403, response.text
    assert "complaint" in response.json()["detail"]
    assert await published(bootstrap, topics.COMPLAINTS, before, event_id_of(body)) == []


async def test_a_key_of_another_source_system_may_not_send_in_its_name(
    intake: RunningIntake, bootstrap: str
) -> None:
    hotline_key = await intake.key_for("hotline")
    body = complaint(source_system="portal")
    before = await end_offsets(bootstrap, topics.COMPLAINTS)

    response = await intake.post(COMPLAINTS, body, key=hotline_key)

    assert response.status_code == 403, response.text
    assert "hotline" in response.json()["detail"]
    assert await published(bootstrap, topics.COMPLAINTS, before, event_id_of(body)) == []


# --- 5. privacy of complainants ------------------------------------------------------------------

CONTACT = {"name": "欧阳秀英", "phone": "13912345678", "email": "ouyang.tipoff@example.cn"}


def secrets_of(contact: dict[str, str]) -> list[bytes]:
    """The contact details as they could appear in bytes: UTF-8 and JSON's ASCII escapes."""
    forms = [value.encode() for value in contact.values()]
    forms += [json.dumps(value)[1:-1].encode() for value in contact.values()]
    return forms


async def test_contact_details_are_sealed_at_rest_and_never_published_logged_or_answered(
    intake: RunningIntake, portal_key: str, bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = complaint(complainant_contact=CONTACT)
    with every_log_record_at_debug(caplog):
        before = await end_offsets(bootstrap, topics.COMPLAINTS)
        response = await intake.post(COMPLAINTS, body, key=portal_key)
        duplicate = await intake.post(COMPLAINTS, body, key=portal_key)
        metrics_text = (await intake.client.get("/metrics")).text
        (record,) = await published(bootstrap, topics.COMPLAINTS, before, event_id_of(body))

    assert response.status_code == 202, response.text
    assert duplicate.status_code == 200, duplicate.text
    event_id = response.json()["event_id"]
    logged = [r.getMessage().encode() for r in caplog.records] + [caplog.text.encode()]
    assert len(logged) > 1, "nothing was logged: the log check would prove nothing"
    for secret in secrets_of(CONTACT):
        assert secret not in record.value
        assert secret not in (record.key or b"")
        assert secret not in response.content
        assert secret not in duplicate.content
        assert secret not in metrics_text.encode()
        for text in logged:
            assert secret not in text
    event = ComplaintReceived.model_validate_json(record.value)
    assert event.contact_on_file is True
    assert "complainant_contact" not in record.json()

    raw_events = intake.db["intake_events"].with_options(
        codec_options=CodecOptions(document_class=RawBSONDocument)
    )
    raw = await raw_events.find_one({"_id": event_id})
    assert raw is not None
    for secret in secrets_of(CONTACT):
        assert secret not in raw.raw
    stored = await intake.store.accepted.get(event_id)
    assert stored is not None
    assert stored.contact_sealed is not None
    opened = json.loads(intake.vault.open(stored.contact_sealed, bound_to=event_id))
    assert {name: opened[name] for name in CONTACT} == CONTACT


async def test_a_complaint_without_contact_details_has_none_on_file(
    intake: RunningIntake, portal_key: str, bootstrap: str
) -> None:
    body = complaint(anonymous=True)
    before = await end_offsets(bootstrap, topics.COMPLAINTS)

    response = await intake.post(COMPLAINTS, body, key=portal_key)

    assert response.status_code == 202, response.text
    (record,) = await published(bootstrap, topics.COMPLAINTS, before, event_id_of(body))
    assert ComplaintReceived.model_validate_json(record.value).contact_on_file is False
    stored = await intake.store.accepted.get(event_id_of(body))
    assert stored is not None
    assert stored.contact_sealed is None


async def test_an_anonymous_complaint_carrying_contact_details_is_refused(
    intake: RunningIntake, portal_key: str, bootstrap: str
) -> None:
    body = complaint(anonymous=True, complainant_contact=CONTACT)
    before = await end_offsets(bootstrap, topics.COMPLAINTS)

    response = await intake.post(COMPLAINTS, body, key=portal_key)

    assert response.status_code == 422, response.text
    assert any("complainant_contact" in p["field"] + p["reason"] for p in problems(response))
    for secret in secrets_of(CONTACT):
        assert secret not in response.content
    assert await published(bootstrap, topics.COMPLAINTS, before, event_id_of(body)) == []
    assert await intake.store.accepted.get(event_id_of(body)) is None


# --- 6. the reporters' follow-up: codes for the portal, the office's replies -----------------
# (What a reporter does with a code is the portal's: tests/integration/test_portal_http.py.)


async def test_a_complaints_follow_up_code_goes_to_the_portal_as_its_digest_only(
    intake: RunningIntake, portal_key: str, bootstrap: str
) -> None:
    body = complaint()
    watched = (topics.COMPLAINTS, topics.FOLLOW_UP_CODES)
    before = {topic: await end_offsets(bootstrap, topic) for topic in watched}

    response = await intake.post(COMPLAINTS, body, key=portal_key)
    duplicate = await intake.post(COMPLAINTS, body, key=portal_key)

    assert (response.status_code, duplicate.status_code) == (202, 200), response.text
    code, event_id = response.json()["follow_up_code"], response.json()["event_id"]
    after = {topic: await published_since(bootstrap, topic, before[topic]) for topic in watched}
    issued = [
        FollowUpCodeIssued.model_validate_json(record.value)
        for record in after[topics.FOLLOW_UP_CODES]
        if event_id.encode() in record.value
    ]
    assert [(str(i.complaint_event_id), i.code_digest) for i in issued] == [
        (event_id, hashlib.sha256(code.encode()).hexdigest())
    ]
    (record,) = [r for r in after[topics.FOLLOW_UP_CODES] if event_id.encode() in r.value]
    assert record.key == uuid.UUID(event_id).bytes
    for published_record in after[topics.COMPLAINTS] + after[topics.FOLLOW_UP_CODES]:
        assert code.encode() not in published_record.value
        assert code.encode() not in (published_record.key or b"")


async def test_the_offices_reply_is_published_for_the_reporters_portal(
    intake: RunningIntake, bootstrap: str
) -> None:
    office_key = await intake.key_for("conduct-office", {"follow_up_reply"})
    case_id = f"CASE-{uuid.uuid4().hex[:20].upper()}"
    text = "您反映的问题已转纪检监察室调查，感谢您的监督。"
    before = await end_offsets(bootstrap, topics.REPORTER_REPLIES)

    # Intake keeps no case map: any case id is taken, and the portal shows the reply to the
    # reporter of that case's complaint, if it has one.
    response = await intake.client.post(
        "/v1/follow-up/replies",
        json={"case_id": case_id, "text": text},
        headers={"X-API-Key": office_key},
    )

    assert response.status_code == 202, response.text
    replies = [
        ReporterReply.model_validate_json(record.value)
        for record in await published_since(bootstrap, topics.REPORTER_REPLIES, before)
    ]
    mine = [reply for reply in replies if reply.case_id == case_id]
    assert [(reply.text, reply.sent_by) for reply in mine] == [(text, "conduct-office")]
    assert (await published_since(bootstrap, topics.REPORTER_REPLIES, before))[0].key == (
        case_id.encode()
    )


async def test_a_reply_the_office_shares_as_the_outcome_is_published_as_such(
    intake: RunningIntake, bootstrap: str
) -> None:
    office_key = await intake.key_for("conduct-office", {"follow_up_reply"})
    case_id = f"CASE-{uuid.uuid4().hex[:20].upper()}"
    before = await end_offsets(bootstrap, topics.REPORTER_REPLIES)

    for text, outcome in (("已转科室调查。", None), ("经调查，反映属实，已严肃处理。", True)):
        body = {"case_id": case_id, "text": text} | (
            {} if outcome is None else {"shares_outcome": outcome}
        )
        response = await intake.client.post(
            "/v1/follow-up/replies", json=body, headers={"X-API-Key": office_key}
        )
        assert response.status_code == 202, response.text

    replies = [
        ReporterReply.model_validate_json(record.value)
        for record in await published_since(bootstrap, topics.REPORTER_REPLIES, before)
    ]
    assert [(r.text, r.shares_outcome) for r in replies if r.case_id == case_id] == [
        ("已转科室调查。", False),
        ("经调查，反映属实，已严肃处理。", True),
    ]


async def test_a_key_without_the_reply_scope_may_not_reply_to_reporters(
    intake: RunningIntake, bootstrap: str
) -> None:
    complaint_only = await intake.key_for("portal", {"complaint"})
    case_id = f"CASE-{uuid.uuid4().hex[:20].upper()}"
    before = await end_offsets(bootstrap, topics.REPORTER_REPLIES)

    response = await intake.client.post(
        "/v1/follow-up/replies",
        json={"case_id": case_id, "text": "您好。"},
        headers={"X-API-Key": complaint_only},
    )

    assert response.status_code == 403, response.text
    published_after = await published_since(bootstrap, topics.REPORTER_REPLIES, before)
    assert [record for record in published_after if case_id.encode() in record.value] == []


BLANK_TEXT = "\u3000 \u3000"
"""Only spaces (ideographic ones, as a Chinese keyboard types them): no text at all."""


async def test_a_reply_of_only_spaces_is_refused_at_the_text_and_not_logged(
    intake: RunningIntake, bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    case_id = f"CASE-{uuid.uuid4().hex[:20].upper()}"
    office_key = await intake.key_for("conduct-office", {"follow_up_reply"})
    before = await end_offsets(bootstrap, topics.REPORTER_REPLIES)

    with every_log_record_at_debug(caplog):
        response = await intake.client.post(
            "/v1/follow-up/replies",
            json={"case_id": case_id, "text": BLANK_TEXT},
            headers={"X-API-Key": office_key},
        )
        await intake.client.get("/healthz")  # something to log, whatever the answer

    assert response.status_code == 422, response.text
    assert fields(response) == {"body.text"}
    published_after = await published_since(bootstrap, topics.REPORTER_REPLIES, before)
    assert [record for record in published_after if case_id.encode() in record.value] == []
    logs = logged_text(caplog)
    for form in echoes_of(BLANK_TEXT):
        assert form not in logs


async def test_what_the_office_writes_and_the_code_intake_gives_never_reach_a_log_line(
    intake: RunningIntake, portal_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    office_key = await intake.key_for("conduct-office", {"follow_up_reply"})
    case_id = f"CASE-{uuid.uuid4().hex[:20].upper()}"
    reply, overlong = "已收到补充材料，我们会核实ZQ相关情况。", "回复" + "很长" * 2600

    with every_log_record_at_debug(caplog):
        accepted = await intake.post(COMPLAINTS, complaint(), key=portal_key)
        answers = [
            await intake.client.post(
                "/v1/follow-up/replies",
                json={"case_id": case_id, "text": text},
                headers={"X-API-Key": office_key},
            )
            for text in (reply, overlong)
        ]

    assert accepted.status_code == 202, accepted.text
    assert [answer.status_code for answer in answers] == [202, 422]
    logs = logged_text(caplog)
    for text in (reply, overlong, accepted.json()["follow_up_code"]):
        for form in echoes_of(text):
            assert form not in logs


# --- 7. bad input --------------------------------------------------------------------------------


def future(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def without(body: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != name}


BadCase = tuple[str, Callable[[], dict[str, Any]], set[str]]
BAD_SUBMISSIONS: list[BadCase] = [
    ("complaint", lambda: complaint(description="举" * 5001), {"body.description"}),
    ("complaint", lambda: complaint(amount_cny="-300.00"), {"body.amount_cny"}),
    ("complaint", lambda: complaint(anonymous=[True]), {"body.anonymous"}),
    ("complaint", lambda: complaint(category="bribery"), {"body.category"}),
    ("complaint", lambda: without(complaint(), "category"), {"body.category"}),
    ("complaint", lambda: complaint(complainant_phone="13800138000"), {"body.complainant_phone"}),
    ("complaint", lambda: complaint(occurred_at=future(timedelta(hours=1))), {"body.occurred_at"}),
    (
        "complaint",
        lambda: {**without(complaint(), "category"), "amount_cny": "-1", "channel": "fax"},
        {"body.category", "body.amount_cny", "body.channel"},
    ),
    ("satisfaction", lambda: sample("satisfaction", score=0), {"body.score"}),
    ("satisfaction", lambda: sample("satisfaction", score=6), {"body.score"}),
    ("satisfaction", lambda: sample("satisfaction", score="5"), {"body.score"}),
    ("satisfaction", lambda: sample("satisfaction", score=4.5), {"body.score"}),
    ("red_envelope_surrender", lambda: sample("red_envelope_surrender", amount_cny="-600"), set()),
    ("kpi_observation", lambda: sample("kpi_observation", value="很高"), {"body.value"}),
    ("visitor_log", lambda: sample("visitor_log", ended_at="2026-11-20T13:00:00+08:00"), set()),
    # What the JSON Schemas say, and nothing looser: a number is not a time, "yes" no boolean.
    ("complaint", lambda: complaint(occurred_at=12345), {"body.occurred_at"}),
    ("complaint", lambda: complaint(occurred_at="2026-11-20T20:15:00"), {"body.occurred_at"}),
    ("complaint", lambda: complaint(anonymous="yes"), {"body.anonymous"}),
    ("complaint", lambda: complaint(anonymous=1), {"body.anonymous"}),
    ("visitor_log", lambda: sample("visitor_log", started_at=0), {"body.started_at"}),
    ("training_held", lambda: sample("training_held", held_on=20261112), {"body.held_on"}),
    (
        "prescription_ranking",
        lambda: sample("prescription_ranking", justified="false"),
        {"body.justified"},
    ),
    # The store (PostgreSQL's jsonb under FerretDB) cannot keep U+0000: refused, not a 500.
    ("complaint", lambda: complaint(description="红包\x00两千"), {"body.description"}),
]


@pytest.mark.parametrize(
    ("event_type", "make", "expected"),
    BAD_SUBMISSIONS,
    ids=[
        "overlong-description",
        "negative-amount",
        "anonymous-as-a-list",
        "unknown-category",
        "missing-category",
        "unknown-field",
        "occurred-an-hour-in-the-future",
        "several-problems-at-once",
        "score-0",
        "score-6",
        "score-as-text",
        "score-as-fraction",
        "negative-surrendered-amount",
        "kpi-value-as-text",
        "visit-ending-before-it-starts",
        "occurred-at-as-a-number",
        "occurred-at-without-a-time-zone",
        "anonymous-as-yes",
        "anonymous-as-1",
        "visit-start-as-a-number",
        "study-day-as-a-number",
        "justified-as-text",
        "nul-in-the-description",
    ],
)
async def test_bad_input_is_refused_naming_the_field_and_nothing_is_published(
    intake: RunningIntake,
    portal_key: str,
    bootstrap: str,
    event_type: str,
    make: Callable[[], dict[str, Any]],
    expected: set[str],
) -> None:
    kind = BY_TYPE[event_type]
    body = {**make(), "source_system": "portal"}
    before = await end_offsets(bootstrap, kind.topic)

    response = await intake.post(path_of(kind), body, key=portal_key)

    assert response.status_code == 422, response.text
    named = fields(response)
    if expected:
        assert named == expected
    else:  # a rule across fields: named at the body or at one of the fields
        assert all(name == "body" or name.startswith("body.") for name in named)
    assert await published(bootstrap, kind.topic, before, event_id_of(body)) == []


def hospital_today() -> date:
    return datetime.now(HOSPITAL_TIME_ZONE).date()


@pytest.mark.parametrize(
    ("event_type", "make", "field_name"),
    [
        (
            "visitor_log",
            lambda: {"started_at": future(timedelta(days=365)), "ended_at": None},
            "started_at",
        ),
        (
            "red_envelope_surrender",
            lambda: {"surrendered_on": str(hospital_today() + timedelta(days=365))},
            "surrendered_on",
        ),
        (
            "training_held",
            lambda: {"held_on": str(hospital_today() + timedelta(days=365))},
            "held_on",
        ),
    ],
    ids=["visit-starting-next-year", "surrendered-next-year", "study-held-next-year"],
)
async def test_a_date_in_the_future_is_refused_in_every_date_field_not_only_occurred_at(
    intake: RunningIntake,
    portal_key: str,
    bootstrap: str,
    event_type: str,
    make: Callable[[], dict[str, Any]],
    field_name: str,
) -> None:
    kind = BY_TYPE[event_type]
    body = sample(event_type, source_system="portal", **make())
    before = await end_offsets(bootstrap, kind.topic)

    response = await intake.post(path_of(kind), body, key=portal_key)

    assert response.status_code == 422, response.text
    assert fields(response) == {f"body.{field_name}"}
    assert await published(bootstrap, kind.topic, before, event_id_of(body)) == []


async def test_a_time_two_minutes_ahead_is_within_the_clock_tolerance(
    intake: RunningIntake, portal_key: str
) -> None:
    body = complaint(occurred_at=future(timedelta(minutes=2)))

    response = await intake.post(COMPLAINTS, body, key=portal_key)

    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    "field_name",
    [
        "anonymous",
        "amount_cny",
        "category",
        "channel",
        "accused_staff_id",
        "source_system",
        "occurred_at",
        "complainant_contact",
    ],
)
async def test_a_refusal_never_echoes_the_submitted_value(
    intake: RunningIntake, portal_key: str, field_name: str
) -> None:
    response = await intake.post(
        COMPLAINTS, complaint(**{field_name: CONTACT_DETAILS}), key=portal_key
    )

    assert fields(response) == {f"body.{field_name}"}
    assert CONTACT_DETAILS not in response.text
    assert "13800138000" not in response.text


def raw_complaint(**overrides: Any) -> tuple[str, bytes]:
    """A complaint's event id and its JSON bytes, for bodies a JSON client would not send."""
    body = complaint(**overrides)
    return event_id_of(body), json.dumps(body, ensure_ascii=False).encode()


def invalid_utf8() -> tuple[str, bytes]:
    event_id, encoded = raw_complaint(description="MARK")
    return event_id, encoded.replace(b"MARK", b"\xff\xfe\xc3\x28")


def nested_10000_deep() -> tuple[str, bytes]:
    event_id, encoded = raw_complaint(description="MARK")
    return event_id, encoded.replace(b'"MARK"', b"[" * 10_000 + b"]" * 10_000)


def nested_objects_10000_deep() -> tuple[str, bytes]:
    event_id, encoded = raw_complaint(description="MARK")
    return event_id, encoded.replace(b'"MARK"', b'{"a":' * 10_000 + b"1" + b"}" * 10_000)


def truncated_json() -> tuple[str, bytes]:
    event_id, encoded = raw_complaint()
    return event_id, encoded[: len(encoded) // 2]


def not_json_at_all() -> tuple[str, bytes]:
    event_id, _ = raw_complaint()
    return event_id, f"投诉：{CONTACT_DETAILS}".encode()


def a_number_of_5000_digits() -> tuple[str, bytes]:
    event_id, encoded = raw_complaint(amount_cny="MARK")
    return event_id, encoded.replace(b'"MARK"', b"1" * 5000)


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (invalid_utf8, 400),
        (nested_10000_deep, None),
        (nested_objects_10000_deep, None),
        (truncated_json, None),
        (not_json_at_all, None),
        (a_number_of_5000_digits, None),
    ],
    ids=[
        "invalid-utf8",
        "arrays-nested-10000-deep",
        "objects-nested-10000-deep",
        "truncated-json",
        "not-json",
        "a-number-of-5000-digits",
    ],
)
async def test_an_unreadable_body_is_refused_as_a_body_problem_and_nothing_is_published(
    intake: RunningIntake,
    portal_key: str,
    bootstrap: str,
    make: Callable[[], tuple[str, bytes]],
    status: int | None,
) -> None:
    event_id, content = make()
    before = await end_offsets(bootstrap, topics.COMPLAINTS)

    response = await intake.client.post(
        COMPLAINTS,
        content=content,
        headers={"X-API-Key": portal_key, "Content-Type": "application/json"},
    )

    if status is not None:
        assert response.status_code == status, response.text
    assert 400 <= response.status_code < 500, response.text
    named = fields(response)
    assert all(name == "body" or name.startswith("body.") for name in named)
    assert "13800138000" not in response.text
    assert await published(bootstrap, topics.COMPLAINTS, before, event_id) == []


def oversized_complaint() -> tuple[str, bytes]:
    """Over 64 KiB (its description alone: 30,000 characters of three UTF-8 bytes)."""
    return raw_complaint(description="举" * 30_000)


async def test_a_body_over_the_limit_is_refused_with_413_when_its_length_is_declared(
    intake: RunningIntake, portal_key: str, bootstrap: str
) -> None:
    event_id, content = oversized_complaint()
    assert len(content) > intake.settings.max_event_bytes
    before = await end_offsets(bootstrap, topics.COMPLAINTS)

    response = await intake.client.post(
        COMPLAINTS,
        content=content,
        headers={"X-API-Key": portal_key, "Content-Type": "application/json"},
    )

    assert response.request.headers["Content-Length"] == str(len(content))
    assert response.status_code == 413, response.text
    assert await published(bootstrap, topics.COMPLAINTS, before, event_id) == []


async def test_a_streamed_body_over_the_limit_is_refused_with_413_without_a_declared_length(
    intake: RunningIntake, portal_key: str, bootstrap: str
) -> None:
    event_id, content = oversized_complaint()
    before = await end_offsets(bootstrap, topics.COMPLAINTS)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(content), 4096):
            yield content[start : start + 4096]

    response = await intake.client.post(
        COMPLAINTS,
        content=chunks(),
        headers={"X-API-Key": portal_key, "Content-Type": "application/json"},
    )

    assert "Content-Length" not in response.request.headers
    assert response.status_code == 413, response.text
    assert await published(bootstrap, topics.COMPLAINTS, before, event_id) == []


async def test_a_body_over_the_limit_is_refused_naming_the_body_field(
    intake: RunningIntake, portal_key: str
) -> None:
    _, content = oversized_complaint()

    response = await intake.client.post(
        COMPLAINTS,
        content=content,
        headers={"X-API-Key": portal_key, "Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert fields(response) == {"body"}


# --- 8. property: no input makes intake fail or echo ---------------------------------------------

ECHO_MARK = "回声"
"""Prefix of every generated string value, so an echoed value cannot be a coincidence."""

marked_text = st.text(max_size=16).map(lambda text: f"{ECHO_MARK}{text}")
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | marked_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
arbitrary_objects = st.dictionaries(st.text(max_size=12), json_values, max_size=6)
COMPLAINT_FIELDS = sorted(
    set(BY_TYPE["complaint"].submission.model_fields) | {"complainant_contact", "extra"}
)


@st.composite
def mutated_complaints(draw: st.DrawFn) -> dict[str, Any]:
    body = {**SAMPLES["complaint"], "source_ref": f"{ECHO_MARK}{draw(st.text(max_size=8))}"}
    for name in draw(st.lists(st.sampled_from(COMPLAINT_FIELDS), min_size=1, max_size=3)):
        if draw(st.booleans()):
            body.pop(name, None)
        else:
            body[name] = draw(marked_text | json_values)
    return body


PATHS = [*(path_of(kind) for kind in CATALOGUE), "/v1/batch"]
replies = st.fixed_dictionaries(
    {
        "case_id": st.just("CASE-0123456789ABCDEF0123") | marked_text,
        "text": st.text(" \t\n\u3000\u00a0\u2003", max_size=4) | marked_text,
    }
)
requests = st.one_of(
    st.tuples(st.just(COMPLAINTS), mutated_complaints()),
    st.tuples(st.sampled_from(PATHS), arbitrary_objects),
    st.tuples(
        st.just("/v1/batch"), st.builds(lambda item: {"events": [item]}, mutated_complaints())
    ),
    st.tuples(st.just("/v1/follow-up/replies"), replies | arbitrary_objects),
)


def marked_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str) and value.startswith(ECHO_MARK):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from marked_strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from marked_strings(item)


def all_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from all_strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from all_strings(item)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)
@given(request=requests)
async def test_no_submission_makes_intake_fail_or_echo_a_submitted_value(
    intake: RunningIntake, portal_key: str, request: tuple[str, dict[str, Any]]
) -> None:
    path, body = request

    response = await intake.post(path, body, key=portal_key)

    assert response.status_code < 500, response.text
    if response.status_code >= 400 or path == "/v1/batch":
        answered = [response.text, *all_strings(response.json())]
        for value in marked_strings(body):
            for form in echoes_of(value):
                assert not any(form in text for text in answered), (value, response.text)


# --- 9. batches ----------------------------------------------------------------------------------


async def test_a_batch_answers_each_item_in_order_and_publishes_only_the_accepted(
    intake: RunningIntake, bootstrap: str
) -> None:
    key = await intake.key_for("portal", {"complaint", "satisfaction"})
    first = complaint(source_system="portal")
    rating = sample("satisfaction", source_system="portal")
    invalid = sample("satisfaction", source_system="portal", score=9)
    not_in_scope = sample("investigation_finding", source_system="portal")
    other_source = complaint(source_system="hotline")
    items = [first, rating, invalid, first, not_in_scope, other_source]
    watched = (topics.COMPLAINTS, topics.SATISFACTION_RATINGS, topics.INVESTIGATION_FINDINGS)
    before = {topic: await end_offsets(bootstrap, topic) for topic in watched}

    response = await intake.post("/v1/batch", {"events": items}, key=key)

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(len(items)))
    assert [r["status"] for r in results] == [
        "accepted",
        "accepted",
        "invalid",
        "duplicate",
        "forbidden",
        "forbidden",
    ]
    assert results[0]["event_id"] == event_id_of(first)
    assert results[1]["event_id"] == event_id_of(rating)
    assert results[3]["event_id"] == results[0]["event_id"]
    assert results[3]["follow_up_code"] == results[0]["follow_up_code"]
    assert results[0]["follow_up_code"]
    assert any(p["field"].endswith("score") for p in results[2]["problems"])
    assert "investigation_finding" in results[4]["problems"][0]["reason"]
    assert "portal" in results[5]["problems"][0]["reason"]
    complaints = await published_since(bootstrap, topics.COMPLAINTS, before[topics.COMPLAINTS])
    ratings = await published_since(
        bootstrap, topics.SATISFACTION_RATINGS, before[topics.SATISFACTION_RATINGS]
    )
    findings = await published_since(
        bootstrap, topics.INVESTIGATION_FINDINGS, before[topics.INVESTIGATION_FINDINGS]
    )
    assert len(with_event_id(complaints, event_id_of(first))) == 1
    assert len(with_event_id(ratings, event_id_of(rating))) == 1
    assert with_event_id(ratings, event_id_of(invalid)) == []
    assert with_event_id(findings, event_id_of(not_in_scope)) == []
    assert with_event_id(complaints, event_id_of(other_source)) == []


async def test_a_batch_refuses_a_loosely_typed_item_like_its_own_endpoint(
    intake: RunningIntake, portal_key: str, bootstrap: str
) -> None:
    loose = complaint(source_system="portal", occurred_at=12345, anonymous="yes")
    good = complaint(source_system="portal")
    before = await end_offsets(bootstrap, topics.COMPLAINTS)

    response = await intake.post("/v1/batch", {"events": [loose, good]}, key=portal_key)

    assert response.status_code == 200, response.text
    refused, accepted = response.json()["results"]
    assert refused["status"] == "invalid"
    assert {p["field"] for p in refused["problems"]} == {
        "complaint.occurred_at",
        "complaint.anonymous",
    }
    assert accepted["status"] == "accepted"
    assert await published(bootstrap, topics.COMPLAINTS, before, event_id_of(loose)) == []


async def test_a_batch_of_more_than_500_events_is_refused_naming_the_events(
    intake: RunningIntake, portal_key: str
) -> None:
    items = [sample("satisfaction", source_system="portal") for _ in range(501)]

    response = await intake.post("/v1/batch", {"events": items}, key=portal_key)

    assert response.status_code == 422, response.text
    assert fields(response) == {"body.events"}
    assert await intake.store.accepted.get_many(event_id_of(item) for item in items) == {}


async def test_a_batch_of_500_ratings_is_accepted_whole_and_every_one_is_published_once(
    intake: RunningIntake, portal_key: str, bootstrap: str
) -> None:
    items = [sample("satisfaction", source_system="portal") for _ in range(500)]
    before = await end_offsets(bootstrap, topics.SATISFACTION_RATINGS)

    response = await intake.post("/v1/batch", {"events": items}, key=portal_key)

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted"] * 500
    assert [r["event_id"] for r in results] == [event_id_of(item) for item in items]
    records = await published_since(bootstrap, topics.SATISFACTION_RATINGS, before)
    published_ids = [record.event_id() for record in records]
    expected = {event_id_of(item) for item in items}
    assert sorted(i for i in published_ids if i in expected) == sorted(expected)
