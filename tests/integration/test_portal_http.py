"""The portal's API against the real broker and store, as a reporter uses it with the code
intake gave them: the complaint's status and the office's replies, additions, and wrong codes
counted per client and code group (also behind a proxy, with the portal as a real process).

Complaints come in through a running intake, or their codes as intake publishes them (the
digest only); cases come as the router publishes them.
"""

import asyncio
import hashlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from bson import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import AsyncMongoClient, MongoClient

from schemas import topics
from schemas.case import CaseUpdated
from schemas.complaint import ComplaintReceived
from schemas.follow_up import ReporterAddition
from services.common.kafka_access import SERVICES
from services.common.store import Document
from services.intake.crypto import new_follow_up_code
from services.portal.settings import PortalSettings
from services.portal.wrong_codes import code_group
from tests.conftest import InfraSettings
from tests.factories import complaint_payload, routed_case
from tests.integration.in_process import start_from_now
from tests.integration.intake_app import RunningIntake, intake_settings, running_intake
from tests.integration.kafka_reading import end_offsets, published_since, with_event_id
from tests.integration.portal_app import RunningPortal, issued_code, portal_settings, running_portal
from tests.logs import echoes_of, every_log_record_at_debug, logged_text
from tests.services import launch, stop_gracefully, wait_healthy
from tests.waiting import eventually

FOLLOW_UP_KEYS = {"status", "updated_at", "replies"}
BLANK_TEXT = "\u3000 \u3000"
"""Only spaces (ideographic ones, as a Chinese keyboard types them): no text at all."""


# --- fixtures and helpers -------------------------------------------------------------------


async def drop(infra: InfraSettings, name: str) -> None:
    client: AsyncMongoClient[Document] = AsyncMongoClient(infra.mongo_url)
    await client.drop_database(name)
    await client.close()


@pytest.fixture(scope="module")
async def intake(infra: InfraSettings) -> AsyncIterator[RunningIntake]:
    config = intake_settings(infra, uuid.uuid4().hex[:12])
    async with running_intake(config) as running:
        yield running
    await drop(infra, config.mongo_db)


@asynccontextmanager
async def portal_config(infra: InfraSettings, **overrides: Any) -> AsyncIterator[PortalSettings]:
    """Settings of portals of their own that read from the topics' ends (database dropped
    after)."""
    config = portal_settings(infra, uuid.uuid4().hex[:12], **overrides)
    await start_from_now(config, "portal", *SERVICES["portal"].reads)
    try:
        yield config
    finally:
        await drop(infra, config.mongo_db)


@asynccontextmanager
async def fresh_portal(infra: InfraSettings, **overrides: Any) -> AsyncIterator[RunningPortal]:
    async with portal_config(infra, **overrides) as config, running_portal(config) as running:
        yield running


@pytest.fixture(scope="module")
async def portal(infra: InfraSettings) -> AsyncIterator[RunningPortal]:
    async with fresh_portal(infra) as running:
        yield running


@pytest.fixture
def bootstrap(infra: InfraSettings) -> str:
    return infra.kafka_bootstrap


async def follow_up(client: httpx.AsyncClient, code: str) -> httpx.Response:
    return await client.get("/v1/follow-up", headers={"X-Follow-Up-Code": code})


async def add(client: httpx.AsyncClient, code: str, text: str) -> httpx.Response:
    return await client.post(
        "/v1/follow-up/additions", json={"text": text}, headers={"X-Follow-Up-Code": code}
    )


async def accepted_complaint(
    intake: RunningIntake, bootstrap: str
) -> tuple[ComplaintReceived, str]:
    """A complaint accepted by intake over HTTP: the event as published, and its code."""
    key = await intake.key_for("portal", {"complaint"})
    body = complaint_payload(source_ref=f"P-{uuid.uuid4().hex}")
    before = await end_offsets(bootstrap, topics.COMPLAINTS)
    response = await intake.post("/v1/complaints", body, key=key)
    assert response.status_code == 202, response.text
    records = await published_since(bootstrap, topics.COMPLAINTS, before)
    (record,) = with_event_id(records, response.json()["event_id"])
    return ComplaintReceived.model_validate_json(record.value), response.json()["follow_up_code"]


async def route(bootstrap: str, received: ComplaintReceived) -> CaseUpdated:
    """What the router publishes for the complaint."""
    case = routed_case(received, now=datetime.now(UTC))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topics.CASES, case.model_dump_json().encode(), key=case.case_id.encode()
        )
    finally:
        await producer.stop()
    return case


def codes_in_the_group_of(code: str, count: int) -> list[str]:
    """New codes that wrong-code counting puts with ``code`` (whose attempts count together)."""
    found: list[str] = []
    while len(found) < count:
        candidate = new_follow_up_code()
        if code_group(candidate) == code_group(code):
            found.append(candidate)
    return found


# --- following a complaint --------------------------------------------------------------------


async def test_a_reporter_follows_a_complaint_from_received_to_assigned_to_the_offices_reply(
    intake: RunningIntake, portal: RunningPortal, bootstrap: str
) -> None:
    received, code = await accepted_complaint(intake, bootstrap)
    await portal.learns(code)

    first = await follow_up(portal.client, code)
    assert first.status_code == 200, first.text
    assert set(first.json()) == FOLLOW_UP_KEYS
    assert first.json()["status"] == "received"
    assert first.json()["replies"] == []

    case = await route(bootstrap, received)

    async def assigned() -> bool:
        view = (await follow_up(portal.client, code)).json()
        return bool(view["status"] == "assigned")

    await eventually(assigned, within=30, what="the follow-up to show the case as assigned")

    office_key = await intake.key_for("conduct-office", {"follow_up_reply"})
    reply_text = "您反映的问题已转纪检监察室调查，感谢您的监督。"
    sent = await intake.client.post(
        "/v1/follow-up/replies",
        json={"case_id": case.case_id, "text": reply_text},
        headers={"X-API-Key": office_key},
    )
    assert sent.status_code == 202, sent.text

    async def replied() -> bool:
        return bool((await follow_up(portal.client, code)).json()["replies"])

    await eventually(replied, within=30, what="the portal to show the office's reply")
    shown = await follow_up(portal.client, code)
    assert shown.status_code == 200, shown.text
    view = shown.json()
    assert set(view) == FOLLOW_UP_KEYS
    assert view["status"] == "assigned"
    assert [reply["text"] for reply in view["replies"]] == [reply_text]
    assert all(set(reply) == {"at", "text"} for reply in view["replies"])
    for private in (
        case.case_id,
        str(received.event_id),
        received.description,
        case.responsible_department.name_zh,
        "D1001",
    ):
        assert private not in shown.text


async def test_a_reply_to_a_case_no_complaint_follows_is_shown_to_no_one(
    intake: RunningIntake, portal: RunningPortal, bootstrap: str
) -> None:
    received, code = await accepted_complaint(intake, bootstrap)
    await portal.learns(code)
    office_key = await intake.key_for("conduct-office", {"follow_up_reply"})
    other_case = f"CASE-{uuid.uuid4().hex[:20].upper()}"
    sent = await intake.client.post(
        "/v1/follow-up/replies",
        json={"case_id": other_case, "text": "这条答复不属于任何投诉。"},
        headers={"X-API-Key": office_key},
    )
    assert sent.status_code == 202, sent.text
    case = await route(bootstrap, received)

    async def assigned() -> bool:
        return bool((await follow_up(portal.client, code)).json()["status"] == "assigned")

    await eventually(assigned, within=30, what="the follow-up to show the case as assigned")
    assert case.case_id != other_case
    assert (await follow_up(portal.client, code)).json()["replies"] == []


async def test_a_reporters_addition_is_published_naming_the_complaint(
    portal: RunningPortal, bootstrap: str
) -> None:
    event_id, code = await issued_code(bootstrap)
    await portal.learns(code)
    before = await end_offsets(bootstrap, topics.REPORTER_ADDITIONS)
    text = "补充：当天还有另一位家属在场，可以作证。"

    response = await add(portal.client, code, text)

    assert response.status_code == 202, response.text
    additions = [
        ReporterAddition.model_validate_json(record.value)
        for record in await published_since(bootstrap, topics.REPORTER_ADDITIONS, before)
    ]
    mine = [a for a in additions if a.complaint_event_id == event_id]
    assert [a.text for a in mine] == [text]
    assert code not in response.text


async def test_an_addition_of_only_spaces_is_refused_at_the_text_and_not_logged(
    portal: RunningPortal, bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    event_id, code = await issued_code(bootstrap)
    await portal.learns(code)
    before = await end_offsets(bootstrap, topics.REPORTER_ADDITIONS)

    with every_log_record_at_debug(caplog):
        response = await add(portal.client, code, BLANK_TEXT)
        await portal.client.get("/healthz")  # something to log, whatever the answer

    assert response.status_code == 422, response.text
    assert {problem["field"] for problem in response.json()["detail"]} == {"body.text"}
    published_after = await published_since(bootstrap, topics.REPORTER_ADDITIONS, before)
    assert [r for r in published_after if str(event_id).encode() in r.value] == []
    logs = logged_text(caplog)
    for form in echoes_of(BLANK_TEXT):
        assert form not in logs


async def test_what_a_reporter_writes_and_their_code_never_reach_a_log_line(
    portal: RunningPortal, bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    _, code = await issued_code(bootstrap)
    await portal.learns(code)
    addition, overlong = "补充：收红包的医生姓名缩写为ZQ。", "补充" + "很长" * 2600

    with every_log_record_at_debug(caplog):
        answers = [await add(portal.client, code, text) for text in (addition, overlong)]
        await follow_up(portal.client, code)
        await follow_up(portal.client, new_follow_up_code())  # a wrong code, counted

    assert [answer.status_code for answer in answers] == [202, 422]
    logs = logged_text(caplog)
    for text in (addition, overlong, code):
        for form in echoes_of(text):
            assert form not in logs


# --- wrong codes ------------------------------------------------------------------------------


async def test_a_wrong_code_and_a_never_issued_code_get_the_identical_answer(
    portal: RunningPortal, bootstrap: str
) -> None:
    _, code = await issued_code(bootstrap)
    await portal.learns(code)
    altered = code[:-1] + ("A" if code[-1] != "A" else "B")
    async with portal.client_at("198.51.100.7") as client:
        wrong = await follow_up(client, altered)
        never_issued = await follow_up(client, new_follow_up_code())
        right = await follow_up(client, code)

    assert wrong.status_code == never_issued.status_code
    assert 400 <= wrong.status_code < 500
    assert wrong.content == never_issued.content
    assert right.status_code == 200, right.text


async def test_after_too_many_wrong_codes_even_the_right_code_is_refused_for_that_client(
    infra: InfraSettings, bootstrap: str
) -> None:
    async with fresh_portal(infra, follow_up_failures_allowed=3) as limited:
        _, code = await issued_code(bootstrap)
        await limited.learns(code)
        async with limited.client_at("203.0.113.9") as guesser:
            assert (await follow_up(guesser, code)).status_code == 200
            wrong = [
                (await follow_up(guesser, guess)).status_code
                for guess in codes_in_the_group_of(code, 3)
            ]
            right = await follow_up(guesser, code)
            addition = await add(guesser, code, "补充")
        async with limited.client_at("203.0.113.10") as reporter:
            elsewhere = await follow_up(reporter, code)

    assert wrong == [404, 404, 404]
    assert right.status_code == 429, right.text
    assert addition.status_code == 429, addition.text
    assert elsewhere.status_code == 200, elsewhere.text


async def test_wrong_codes_count_at_every_portal_on_the_store_and_through_a_restart(
    infra: InfraSettings, bootstrap: str
) -> None:
    async with portal_config(infra, follow_up_failures_allowed=3) as config:
        async with running_portal(config) as first, running_portal(config) as second:
            _, code = await issued_code(bootstrap)
            await first.learns(code)
            guesses = codes_in_the_group_of(code, 3)
            async with first.client_at("203.0.113.21") as at_first:
                wrong_at_first = [
                    (await follow_up(at_first, guess)).status_code for guess in guesses[:2]
                ]
            async with second.client_at("203.0.113.21") as at_second:
                wrong_at_second = (await follow_up(at_second, guesses[2])).status_code
                right_at_second = (await follow_up(at_second, code)).status_code
            async with first.client_at("203.0.113.21") as at_first:
                right_at_first = (await follow_up(at_first, code)).status_code
        async with running_portal(config) as restarted:
            async with restarted.client_at("203.0.113.21") as guesser:
                right_after_restart = (await follow_up(guesser, code)).status_code
            async with restarted.client_at("203.0.113.22") as reporter:
                elsewhere = (await follow_up(reporter, code)).status_code

    assert wrong_at_first == [404, 404]
    assert wrong_at_second == 404
    assert (right_at_second, right_at_first, right_after_restart) == (429, 429, 429)
    assert elsewhere == 200


async def test_wrong_codes_from_one_address_lock_out_only_codes_of_their_own_group(
    infra: InfraSettings, bootstrap: str
) -> None:
    """Behind one address (a proxy, the hospital's Wi-Fi) are many reporters: one guesser's
    wrong codes must not lock every one of them out."""
    async with fresh_portal(infra, follow_up_failures_allowed=3) as limited:
        _, code = await issued_code(bootstrap)
        _, other_code = await issued_code(bootstrap)
        while code_group(other_code) == code_group(code):
            _, other_code = await issued_code(bootstrap)
        await limited.learns(code)
        await limited.learns(other_code)
        async with limited.client_at("198.51.100.80") as shared_address:
            wrong = [
                (await follow_up(shared_address, guess)).status_code
                for guess in codes_in_the_group_of(other_code, 3)
            ]
            other_group_right = await follow_up(shared_address, other_code)
            right = await follow_up(shared_address, code)

    assert wrong == [404, 404, 404]
    assert other_group_right.status_code == 429, other_group_right.text
    assert right.status_code == 200, right.text


async def test_wrong_codes_sent_all_at_once_are_not_all_answered(
    infra: InfraSettings, bootstrap: str
) -> None:
    async with (
        portal_config(infra, follow_up_failures_allowed=3) as config,
        running_portal(config) as first,
        running_portal(config) as second,
    ):
        _, code = await issued_code(bootstrap)
        await first.learns(code)
        guesses = codes_in_the_group_of(code, 16)
        async with (
            first.client_at("203.0.113.50") as at_first,
            second.client_at("203.0.113.50") as at_second,
        ):
            answers = await asyncio.gather(
                *(
                    follow_up(at_first if n % 2 else at_second, guess)
                    for n, guess in enumerate(guesses)
                )
            )
            right = await follow_up(at_first, code)

    statuses = sorted(answer.status_code for answer in answers)
    assert set(statuses) <= {404, 429}, statuses
    assert 1 <= statuses.count(404) <= 3, statuses
    assert right.status_code == 429, right.text


async def test_the_store_keeps_neither_a_wrong_code_nor_the_address_it_came_from(
    infra: InfraSettings,
) -> None:
    wrong_codes = [new_follow_up_code() for _ in range(3)]
    address = "192.0.2.77"
    async with fresh_portal(infra) as running, running.client_at(address) as guesser:
        answers = [(await follow_up(guesser, code)).status_code for code in wrong_codes]
        raw = running.db.with_options(codec_options=CodecOptions(document_class=RawBSONDocument))
        stored = [
            document.raw
            for name in await raw.list_collection_names()
            async for document in raw[name].find()
        ]

    assert answers == [404, 404, 404]
    assert stored, "nothing stored: the check would prove nothing"
    digest = hashlib.sha256(wrong_codes[0].encode()).hexdigest()
    for secret in [*wrong_codes, address, digest]:
        assert not any(secret.encode() in document for document in stored)


# --- the client address behind a proxy (the portal as a real process: uvicorn reads headers)


@contextmanager
def portal_process(infra: InfraSettings, logs: Path, **settings_env: str) -> Iterator[str]:
    """``python -m services.portal`` on a free port, with its own database (dropped after)."""
    run_id = uuid.uuid4().hex[:12]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("QINGLIAN_")},
        "QINGLIAN_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "QINGLIAN_MONGO_URL": infra.mongo_url,
        "QINGLIAN_MONGO_DB": f"test_{run_id}",
        "QINGLIAN_KAFKA_GROUP_PREFIX": f"test-{run_id}-",
        "QINGLIAN_PORTAL_KEY": uuid.uuid4().hex,
        **settings_env,
    }
    log = logs / "portal.log"
    process = launch("portal", port, env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy("portal", url, process, log)
        yield url
    finally:
        stop_gracefully({"portal": process}, logs)
        mongo: MongoClient[Document] = MongoClient(infra.mongo_url)
        mongo.drop_database(env["QINGLIAN_MONGO_DB"])
        mongo.close()


def guess_with_forwarded_for(url: str, codes: list[str], forwarded_for: list[str]) -> list[int]:
    """Wrong codes sent from this machine, each with its own X-Forwarded-For header."""
    with httpx.Client(base_url=url) as client:
        return [
            client.get(
                "/v1/follow-up", headers={"X-Follow-Up-Code": code, "X-Forwarded-For": claimed}
            ).status_code
            for code, claimed in zip(codes, forwarded_for, strict=True)
        ]


def test_a_forwarded_for_header_from_an_untrusted_address_does_not_reset_the_count(
    infra: InfraSettings, tmp_path: Path
) -> None:
    guesses = codes_in_the_group_of(new_follow_up_code(), 11)
    claimed = [f"198.51.100.{n}" for n in range(1, 12)]

    with portal_process(infra, tmp_path) as url:  # no proxy configured: trust no header
        answers = guess_with_forwarded_for(url, guesses, claimed)

    assert answers == [404] * 10 + [429]


def test_a_configured_proxys_forwarded_for_names_the_client(
    infra: InfraSettings, tmp_path: Path
) -> None:
    guesses = codes_in_the_group_of(new_follow_up_code(), 12)
    guesser, reporter = "198.51.100.7", "198.51.100.8"

    with portal_process(infra, tmp_path, QINGLIAN_TRUSTED_PROXIES="127.0.0.1") as url:
        answers = guess_with_forwarded_for(
            url, guesses, [guesser] * 11 + [f"{guesser}, {reporter}"]
        )

    assert answers == [404] * 10 + [429, 404]
