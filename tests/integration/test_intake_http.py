"""The intake HTTP API: clear 422s for bad complaints, and accepted complaints on Kafka.

No Kafka is needed: refusals never reach the broker (the app's lifespan, which connects to
Kafka, is not run), and the accepted path uses FastStream's in-memory TestKafkaBroker.
"""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage
from httpx import ASGITransport, AsyncClient, Response
from prometheus_client import CollectorRegistry

from schemas import topics
from schemas.base import derive_event_id
from schemas.complaint import ComplaintCategory, ComplaintChannel, ComplaintReceived
from services.intake.api import build_api
from services.intake.main import create_app
from services.intake.settings import IntakeSettings

COMPLAINTS_URL = "/v1/complaints"
CONTACT_DETAILS = "联系电话13800138000"

VALID_COMPLAINT: dict[str, Any] = {
    "source_system": "portal",
    "source_ref": "WEB-2026-11-30-0042",
    "occurred_at": "2026-11-29T20:15:00",
    "channel": "portal",
    "category": "appointment_scalping",
    "accused_staff_id": "S30417",
    "accused_department": "OPD-PSY",
    "description": "挂号窗口工作人员统揽专家号，每个号加价三百元卖给患者家属。",
    "amount_cny": "300.00",
    "anonymous": False,
}


def _client() -> TestClient:
    # Not entered as a context manager: the lifespan (Kafka, MongoDB) does not run.
    return TestClient(create_app(IntakeSettings()))


def _post(body: dict[str, Any]) -> Response:
    response: Response = _client().post(COMPLAINTS_URL, json=body)
    return response


def _without(key: str) -> dict[str, Any]:
    return {name: value for name, value in VALID_COMPLAINT.items() if name != key}


def _problems(response: Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert detail
    for problem in detail:
        assert set(problem) == {"field", "reason"}
        assert isinstance(problem["reason"], str)
        assert problem["reason"]
    return detail


def _fields(response: Response) -> set[str]:
    return {problem["field"] for problem in _problems(response)}


# --- refusals -------------------------------------------------------------------------------


def test_a_complaint_without_a_category_is_refused_naming_the_category() -> None:
    assert _fields(_post(_without("category"))) == {"body.category"}


def test_a_complaint_with_an_unknown_category_is_refused_naming_the_category() -> None:
    assert _fields(_post({**VALID_COMPLAINT, "category": "bribery"})) == {"body.category"}


def test_a_complaint_with_an_unknown_field_is_refused_naming_that_field() -> None:
    response = _post({**VALID_COMPLAINT, "complainant_phone": "13800138000"})

    assert _fields(response) == {"body.complainant_phone"}


def test_a_complaint_with_a_negative_amount_is_refused_naming_the_amount() -> None:
    assert _fields(_post({**VALID_COMPLAINT, "amount_cny": "-300.00"})) == {"body.amount_cny"}


def test_a_complaint_with_a_wrongly_typed_anonymous_flag_is_refused() -> None:
    assert _fields(_post({**VALID_COMPLAINT, "anonymous": [True]})) == {"body.anonymous"}


def test_a_body_that_is_not_json_is_refused_as_a_body_problem() -> None:
    response = _client().post(
        COMPLAINTS_URL,
        content=b'{"source_system": "portal", "category": ',
        headers={"content-type": "application/json"},
    )

    fields = _fields(response)
    assert fields
    assert all(name == "body" or name.startswith("body.") for name in fields)


def test_every_problem_of_a_complaint_is_reported_at_once() -> None:
    body = {**_without("category"), "amount_cny": "-1", "channel": "fax"}

    assert _fields(_post(body)) == {"body.category", "body.amount_cny", "body.channel"}


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
    ],
)
def test_a_refusal_never_echoes_the_submitted_value(field_name: str) -> None:
    response = _post({**VALID_COMPLAINT, field_name: CONTACT_DETAILS})

    assert _fields(response) == {f"body.{field_name}"}
    assert CONTACT_DETAILS not in response.text
    assert "13800138000" not in response.text
    assert "13800138000" not in json.dumps(response.json(), ensure_ascii=True)


def test_a_refusal_for_an_unknown_field_does_not_echo_its_value() -> None:
    response = _post({**VALID_COMPLAINT, "complainant_contact": CONTACT_DETAILS})

    assert response.status_code == 422
    assert "13800138000" not in response.text


# --- accepted complaints --------------------------------------------------------------------


@dataclass
class Published:
    """What the test subscriber saw on the complaints topic."""

    bodies: list[bytes] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)


@dataclass
class Intake:
    client: AsyncClient
    published: Published
    registry: CollectorRegistry


@asynccontextmanager
async def _intake() -> AsyncIterator[Intake]:
    broker = KafkaBroker()
    published = Published()

    @broker.subscriber(topics.COMPLAINTS)
    async def capture(message: KafkaMessage) -> None:
        published.bodies.append(message.body)
        record = message.raw_message
        assert not isinstance(record, tuple)  # one record: the subscriber is not batched
        published.keys.append(record.key)

    registry = CollectorRegistry()
    app = FastAPI()
    app.include_router(build_api(broker, registry))
    async with (
        TestKafkaBroker(broker),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://intake.test") as client,
    ):
        yield Intake(client=client, published=published, registry=registry)


async def test_an_accepted_complaint_is_answered_with_its_event_id() -> None:
    async with _intake() as intake:
        response = await intake.client.post(COMPLAINTS_URL, json=VALID_COMPLAINT)

    assert response.status_code == 202
    expected = derive_event_id(VALID_COMPLAINT["source_system"], VALID_COMPLAINT["source_ref"])
    assert response.json() == {"event_id": str(expected), "status": "accepted"}


async def test_an_accepted_complaint_is_published_with_its_content_intact() -> None:
    before = datetime.now(UTC)
    async with _intake() as intake:
        response = await intake.client.post(COMPLAINTS_URL, json=VALID_COMPLAINT)
    after = datetime.now(UTC)

    assert response.status_code == 202
    assert len(intake.published.bodies) == 1
    event = ComplaintReceived.model_validate_json(intake.published.bodies[0])
    assert str(event.event_id) == response.json()["event_id"]
    assert event.source_system == VALID_COMPLAINT["source_system"]
    assert event.source_ref == VALID_COMPLAINT["source_ref"]
    assert event.channel is ComplaintChannel.PORTAL
    assert event.category is ComplaintCategory.APPOINTMENT_SCALPING
    assert event.accused_staff_id == VALID_COMPLAINT["accused_staff_id"]
    assert event.accused_department == VALID_COMPLAINT["accused_department"]
    assert event.description == VALID_COMPLAINT["description"]
    assert event.amount_cny == Decimal(VALID_COMPLAINT["amount_cny"])
    assert event.anonymous is False
    # Sent without an offset: 20:15 in Shanghai, 12:15 UTC.
    assert event.occurred_at == datetime(2026, 11, 29, 12, 15, tzinfo=UTC)
    assert before <= event.received_at <= after


async def test_the_published_complaint_carries_chinese_as_utf8() -> None:
    async with _intake() as intake:
        await intake.client.post(COMPLAINTS_URL, json=VALID_COMPLAINT)

    assert VALID_COMPLAINT["description"].encode("utf-8") in intake.published.bodies[0]


async def test_the_kafka_key_of_a_complaint_is_its_event_id() -> None:
    async with _intake() as intake:
        response = await intake.client.post(COMPLAINTS_URL, json=VALID_COMPLAINT)

    expected = derive_event_id(VALID_COMPLAINT["source_system"], VALID_COMPLAINT["source_ref"])
    assert intake.published.keys == [expected.bytes]
    assert response.json()["event_id"] == str(expected)


async def test_a_retried_complaint_keeps_its_event_id_and_key() -> None:
    async with _intake() as intake:
        first = await intake.client.post(COMPLAINTS_URL, json=VALID_COMPLAINT)
        retry = await intake.client.post(COMPLAINTS_URL, json=VALID_COMPLAINT)

    assert first.json()["event_id"] == retry.json()["event_id"]
    assert len(set(intake.published.keys)) == 1


async def test_a_refused_complaint_is_not_published() -> None:
    async with _intake() as intake:
        response = await intake.client.post(
            COMPLAINTS_URL, json={**VALID_COMPLAINT, "category": "bribery"}
        )

    assert response.status_code == 422
    assert intake.published.bodies == []


async def test_accepted_complaints_are_counted_for_prometheus() -> None:
    async with _intake() as intake:
        await intake.client.post(COMPLAINTS_URL, json=VALID_COMPLAINT)
        await intake.client.post(
            COMPLAINTS_URL, json={**VALID_COMPLAINT, "source_ref": "WEB-2026-11-30-0043"}
        )
        await intake.client.post(COMPLAINTS_URL, json=_without("category"))

    accepted = intake.registry.get_sample_value(
        "qinglian_intake_accepted_total", {"event_type": "complaint"}
    )
    assert accepted == 2
