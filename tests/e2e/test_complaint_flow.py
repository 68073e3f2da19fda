"""Complaints in at intake, cases out at reporting, through the real broker and store."""

import json
import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from schemas import topics
from schemas.base import derive_event_id
from schemas.case import CaseKind, derive_case_id
from schemas.complaint import ComplaintCategory
from tests.conftest import InfraSettings
from tests.e2e.conftest import System
from tests.factories import ROUTING, complaint_payload
from tests.waiting import eventually


def fresh_ref() -> str:
    return f"E2E-{uuid.uuid4().hex[:10]}"


def fresh_staff() -> str:
    """An accused nobody else accuses, so the complaint opens a case of its own (not linked)."""
    return f"S-{uuid.uuid4().hex[:10]}"


def reporting(system: System) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=system.urls["reporting"],
        headers={"Authorization": f"Bearer {system.report_token}"},
    )


async def reported_case(system: System, case_id: str) -> dict[str, object]:
    async with reporting(system) as client:
        answer: dict[str, object] = {}

        async def known() -> bool:
            response = await client.get(f"/v1/reports/cases/{case_id}")
            if response.status_code == 200:
                answer.update(response.json()["case"])
            return bool(answer)

        # The services start from the beginning of topics that earlier tests filled; the case
        # comes once they caught up.
        await eventually(known, within=120, what=f"case {case_id} in reporting")
        return answer


async def department_count(system: System, month: str, department: str) -> int:
    """Cases the department's monthly report says it opened in ``month``."""
    async with reporting(system) as client:
        report = await client.get(
            "/v1/reports/monthly", params={"month": month, "department": department}
        )
    assert report.status_code == 200, report.text
    return int(report.json()["progress"]["cases_opened"])


async def test_a_posted_complaint_reaches_reporting_routed_to_the_seed_department(
    system: System,
) -> None:
    payload = complaint_payload(
        source_ref=fresh_ref(),
        accused_staff_id=fresh_staff(),
        channel="mailbox",
        category="outside_pharmacy",
        description="医生让患者到院外指定药店购药。",
    )
    async with httpx.AsyncClient(
        base_url=system.urls["intake"], headers={"X-API-Key": system.api_key}
    ) as client:
        answer = await client.post("/v1/complaints", json=payload)
    assert answer.status_code == 202
    event_id = derive_event_id(payload["source_system"], payload["source_ref"])
    receipt = answer.json()
    assert (receipt["event_id"], receipt["status"]) == (str(event_id), "accepted")
    assert receipt["follow_up_code"].startswith("QL-")

    case = await reported_case(system, derive_case_id(event_id))

    assert case["department"] == "medical_affairs"  # 004 §四(一)2 — 责任部门：医务部
    assert case["department_zh"] == "医务部（行风办）"
    assert case["category"] == "outside_pharmacy"
    opened_at = datetime.fromisoformat(str(case["opened_at"]))
    deadline = datetime.fromisoformat(str(case["deadline"]))
    days = ROUTING.table.route_for(CaseKind.COMPLAINT, ComplaintCategory.OUTSIDE_PHARMACY)
    assert deadline - opened_at == timedelta(days=days.investigation_days)
    assert await department_count(system, str(case["month"]), "medical_affairs") >= 1


async def test_the_same_complaint_posted_twice_is_counted_once(
    system: System, infra: InfraSettings
) -> None:
    payload = complaint_payload(
        source_ref=fresh_ref(), accused_staff_id=fresh_staff(), category="procurement"
    )
    async with httpx.AsyncClient(
        base_url=system.urls["intake"], headers={"X-API-Key": system.api_key}
    ) as client:
        first = await client.post("/v1/complaints", json=payload)
        event_id = derive_event_id("portal", payload["source_ref"])
        case = await reported_case(system, derive_case_id(event_id))
        before = await department_count(system, str(case["month"]), "finance")
        on_kafka = await complaints_on_kafka(infra)
        second = await client.post("/v1/complaints", json=payload)

    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["event_id"] == second.json()["event_id"] == str(event_id)
    assert second.json()["status"] == "duplicate"
    assert await complaints_on_kafka(infra) == on_kafka  # not published again
    assert await department_count(system, str(case["month"]), "finance") == before


async def complaints_on_kafka(infra: InfraSettings) -> int:
    """How many records the complaints topic holds (the sum of its partitions' end offsets)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topics.COMPLAINTS])
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topics.COMPLAINTS, partition["partition"])
        for partition in description["partitions"]
    ]
    consumer = AIOKafkaConsumer(bootstrap_servers=infra.kafka_bootstrap)
    await consumer.start()
    try:
        offsets = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return sum(offsets.values())


async def test_malformed_complaints_get_422_naming_the_field_and_never_reach_kafka(
    system: System, infra: InfraSettings
) -> None:
    malformed = {
        "body.category": complaint_payload(source_ref=fresh_ref(), category="bribery"),
        "body.channel": complaint_payload(source_ref=fresh_ref(), channel=None),
        "body.amount_cny": complaint_payload(source_ref=fresh_ref(), amount_cny="-1"),
        "body.occurred_at": complaint_payload(source_ref=fresh_ref(), occurred_at="yesterday"),
        "body.reporter_phone": complaint_payload(source_ref=fresh_ref(), reporter_phone="138"),
        "body.description": complaint_payload(source_ref=fresh_ref(), description=""),
    }
    before = await complaints_on_kafka(infra)
    async with httpx.AsyncClient(
        base_url=system.urls["intake"], headers={"X-API-Key": system.api_key}
    ) as client:
        for field, payload in malformed.items():
            answer = await client.post("/v1/complaints", json=payload)
            assert answer.status_code == 422, field
            assert field in [problem["field"] for problem in answer.json()["detail"]]
        not_json = await client.post(
            "/v1/complaints", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert not_json.status_code == 422
        assert await complaints_on_kafka(infra) == before

        valid = await client.post("/v1/complaints", json=complaint_payload(source_ref=fresh_ref()))
    assert valid.status_code == 202
    assert await complaints_on_kafka(infra) == before + 1  # the count does see a publish


async def test_a_rep_visit_in_a_ward_and_a_rating_naming_a_red_envelope_open_cases(
    system: System,
) -> None:
    visit_ref, rating_ref = fresh_ref(), fresh_ref()
    visit = {
        "source_system": "portal",
        "source_ref": visit_ref,
        "occurred_at": "2026-11-24T10:05:00+08:00",
        "rep_id": "REP-0042",
        "rep_name": "王某",
        "company_code": "YX-PHARMA-017",
        "company_name": "某医药有限公司",
        "department": "general_psychiatry",
        "place_code": "WARD-3",
        "place_kind": "ward",
        "started_at": "2026-11-24T10:00:00+08:00",
    }
    rating = {
        "source_system": "portal",
        "source_ref": rating_ref,
        "occurred_at": "2026-11-24T11:00:00+08:00",
        "touchpoint": "discharge",
        "department": "general_psychiatry",
        "staff_id": fresh_staff(),
        "score": 4,
        "comment": "醫生暗示要給紅包才安排床位。",  # traditional characters
    }
    async with httpx.AsyncClient(
        base_url=system.urls["intake"], headers={"X-API-Key": system.api_key}
    ) as client:
        assert (await client.post("/v1/visitor-logs", json=visit)).status_code == 202
        assert (await client.post("/v1/satisfaction-ratings", json=rating)).status_code == 202

    visit_case = await reported_case(system, derive_case_id(derive_event_id("portal", visit_ref)))
    rating_case = await reported_case(system, derive_case_id(derive_event_id("portal", rating_ref)))

    # R-REP-VISIT: no appointment, in a ward → a case for 医务部 (000 §六(十五)).
    assert (visit_case["kind"], visit_case["department"]) == ("rep_visit", "medical_affairs")
    assert visit_case["state"] == "assigned"
    # R-SATISFACTION-LEAD: 紅包 is 红包 → a red-envelope complaint case.
    assert (rating_case["kind"], rating_case["category"]) == ("complaint", "red_envelope")


def test_every_log_line_is_json_and_handled_messages_carry_their_ids(system: System) -> None:
    handled: dict[str, set[str]] = {}
    routed: list[dict[str, object]] = []
    for name in system.urls:
        for number, line in enumerate(
            (system.logs / f"{name}.log").read_text("utf-8").splitlines(), start=1
        ):
            try:
                entry = json.loads(line)
            except ValueError:
                pytest.fail(f"{name}.log line {number} is not JSON: {line[:300]!r}")
            assert {"time", "level", "logger", "message", "service"} <= set(entry), (name, number)
            if entry["message"].startswith("handled ") and entry["message"].endswith(
                f" of {topics.COMPLAINTS}"
            ):
                handled.setdefault(name, set()).update(entry["event_ids"])
            if name == "router" and entry["message"].startswith("case "):
                routed.append(entry)
    # Each service that reads complaints names the events each batch it handled held.
    complaints = set(handled.get("router", set()))
    assert complaints, "the router logged no handled complaint"
    for name in ("escalation", "reporting"):
        assert complaints <= handled.get(name, set()), f"{name} did not name every complaint"
    # The router says which case each complaint opened or was linked to.
    assert {entry["event_id"] for entry in routed} >= complaints
    assert all(entry["case_id"] for entry in routed)
