"""The OpenAPI document intake serves, and schemathesis against the running app.

Other hospital systems build their clients from this document, so it must list every way in,
point each route at the right contract, and say how to authenticate; and the app must answer
what the document promises, never with a server error.

The app runs in this process, served by uvicorn on a thread of its own, against the real
broker and store. Not through ``schemathesis.openapi.from_asgi``: schemathesis's pytest plugin
ends every ASGI lifespan it started after each test, and intake's lifespan cannot start again
(it closes its store client), so one app could not serve the tests of all the operations.
"""

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import AsyncMongoClient
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from schemas.catalogue import CATALOGUE, EventKind
from services.common.documents import MongoDocuments
from services.common.store import Document, connect, database
from services.intake.main import create_app
from services.intake.settings import IntakeSettings
from services.intake.store import IntakeStore
from tests.conftest import InfraSettings
from tests.integration.in_process import start_from_now
from tests.integration.intake_app import TEST_RAW_TOPIC, intake_settings, issue_key
from tests.waiting import eventually

# Where each event type is posted: the URLs other hospital systems are configured with.
TYPE_PATHS = {
    "complaint": "/v1/complaints",
    "visitor_log": "/v1/visitor-logs",
    "satisfaction": "/v1/satisfaction-ratings",
    "investigation_finding": "/v1/investigation-findings",
    "promotion_application": "/v1/promotion-applications",
    "red_envelope_surrender": "/v1/red-envelope-surrenders",
    "prescription_ranking": "/v1/prescription-rankings",
    "training_held": "/v1/training-sessions",
    "kpi_observation": "/v1/kpi-observations",
    "rectification_status": "/v1/rectification-statuses",
    "case_action": "/v1/case-actions",
}

REPLIES = ("post", "/v1/follow-up/replies")
"""The conduct office's replies to reporters (whose own routes are the portal's)."""


@pytest.fixture(scope="module")
def module_settings(infra: InfraSettings) -> IntakeSettings:
    return intake_settings(infra, f"openapi{uuid.uuid4().hex[:8]}")


@dataclass
class ServedIntake:
    """The intake app served by uvicorn on a thread of its own (its own event loop)."""

    settings: IntakeSettings
    url: str


@pytest.fixture(scope="module")
async def served_intake(module_settings: IntakeSettings) -> AsyncIterator[ServedIntake]:
    await start_from_now(module_settings, "intake", TEST_RAW_TOPIC)
    server = uvicorn.Server(
        uvicorn.Config(create_app(module_settings), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="intake-under-test", daemon=True)
    thread.start()
    try:
        await eventually(
            lambda: server.started or not thread.is_alive(), within=60, what="intake to start"
        )
        assert server.started, "intake did not start (see the log above)"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield ServedIntake(module_settings, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 60)
        client: AsyncMongoClient[Document] = AsyncMongoClient(module_settings.mongo_url)
        await client.drop_database(module_settings.mongo_db)
        await client.close()


@pytest.fixture(scope="module")
async def openapi(served_intake: ServedIntake) -> dict[str, Any]:
    """The document as a client fetches it: GET /openapi.json."""
    async with httpx.AsyncClient(base_url=served_intake.url) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def resolve(document: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/")
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    assert isinstance(node, dict)
    return node


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in document["paths"].items() for method in item}


def test_the_document_lists_one_post_per_event_type_the_batch_and_the_replies(
    openapi: dict[str, Any],
) -> None:
    assert set(TYPE_PATHS) == {kind.event_type for kind in CATALOGUE}
    expected = {("post", path) for path in TYPE_PATHS.values()}
    expected |= {("post", "/v1/batch"), REPLIES}

    assert expected <= operations(openapi)
    assert not any("follow-up" in path for _, path in operations(openapi) - {REPLIES})


@pytest.mark.parametrize("kind", CATALOGUE, ids=[kind.event_type for kind in CATALOGUE])
def test_each_event_types_post_takes_that_types_submission_schema(
    openapi: dict[str, Any], kind: EventKind
) -> None:
    operation = openapi["paths"][TYPE_PATHS[kind.event_type]]["post"]
    body = operation["requestBody"]
    schema = body["content"]["application/json"]["schema"]

    assert body.get("required") is True
    assert schema == {"$ref": f"#/components/schemas/{kind.submission.__name__}"}
    submission = resolve(openapi, schema["$ref"])
    assert set(submission["properties"]) == set(kind.submission.model_fields)
    assert submission["properties"]["event_type"].get("const", kind.event_type) == kind.event_type
    assert submission["properties"]["event_type"].get("default") == kind.event_type
    assert {"source_system", "source_ref", "occurred_at"} <= set(submission["required"])
    # What the sender gets back: a receipt when accepted (202) or a duplicate (200).
    for status in ("200", "202"):
        answer = operation["responses"][status]["content"]["application/json"]["schema"]
        assert answer == {"$ref": "#/components/schemas/Receipt"}


def test_the_api_key_header_is_the_documented_security_scheme(openapi: dict[str, Any]) -> None:
    schemes = openapi["components"]["securitySchemes"]
    (name,) = [
        name
        for name, scheme in schemes.items()
        if scheme == {**scheme, "type": "apiKey", "in": "header", "name": "X-API-Key"}
    ]
    secured = {("post", path) for path in TYPE_PATHS.values()}
    secured |= {("post", "/v1/batch"), ("post", "/v1/follow-up/replies")}

    for method, path in secured:
        operation = openapi["paths"][path][method]
        assert {name: []} in operation.get("security", []), (method, path)
        assert "401" in operation["responses"], (method, path)


# --- schemathesis -----------------------------------------------------------------------


@pytest.fixture(scope="module")
async def portal_key(served_intake: ServedIntake) -> str:
    """A key of source system "portal" that may send every event type and reply."""
    mongo = connect(served_intake.settings)
    try:
        documents = MongoDocuments(database(mongo, served_intake.settings))
        return await issue_key(IntakeStore.on(documents, key_cache_seconds=0), "portal", None)
    finally:
        await mongo.close()


@pytest.fixture(scope="module")
def intake_schema(served_intake: ServedIntake) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{served_intake.url}/openapi.json")


POST_PATHS = [
    *TYPE_PATHS.values(),
    "/v1/batch",
    "/v1/follow-up/replies",
    "/v1/attachments",
]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def as_portal(case: Case[Any]) -> None:
    """Most generated source systems are not the key's: let a string one be "portal", so that
    the cases reach acceptance and Kafka instead of stopping at 403."""
    if isinstance(case.body, dict) and isinstance(case.body.get("source_system"), str):
        case.body["source_system"] = "portal"


def test_schemathesis_sees_every_post_operation_of_the_document(
    intake_schema: schemathesis.BaseSchema,
) -> None:
    posts = set()
    for result in intake_schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        if result.ok().method.upper() == "POST":
            posts.add(result.ok().path)

    assert posts == set(POST_PATHS)


# Not schemathesis.pytest.from_fixture(...).parametrize(): under pytest 9 it fails (it sets
# request.node._nodeid, which pytest 9's nodes no longer have). Each operation's cases are
# drawn with Hypothesis from the operation's own strategies instead, one test per operation.
@pytest.mark.parametrize("path", POST_PATHS)
def test_every_post_answers_as_documented_and_never_with_a_server_error(
    intake_schema: schemathesis.BaseSchema, portal_key: str, path: str
) -> None:
    operation = intake_schema[path]["POST"]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=cases)
    def answers_as_documented(case: Case[Any]) -> None:
        as_portal(case)
        case.call_and_validate(headers={"X-API-Key": portal_key}, checks=CHECKS)

    answers_as_documented()


# --- answers that once were bugs, each shown on its own ---------------------------------


def documented_statuses(document: dict[str, Any], path: str) -> set[str]:
    return set(document["paths"][path]["post"]["responses"])


@pytest.mark.parametrize("path", POST_PATHS)
async def test_a_body_that_is_not_utf8_gets_a_documented_answer(
    served_intake: ServedIntake, openapi: dict[str, Any], portal_key: str, path: str
) -> None:
    async with httpx.AsyncClient(base_url=served_intake.url) as client:
        response = await client.post(
            path,
            content='{"description": "投诉"}'.encode("gb18030"),
            headers={
                "content-type": "application/json",
                "X-API-Key": portal_key,
                "X-Follow-Up-Code": "QL-not-a-real-code",
            },
        )

    assert 400 <= response.status_code < 500
    assert str(response.status_code) in documented_statuses(openapi, path)


def test_the_replies_422_has_the_documented_shape(
    intake_schema: schemathesis.BaseSchema, portal_key: str
) -> None:
    case = intake_schema["/v1/follow-up/replies"]["POST"].Case(body={"unexpected": True})

    response = case.call(headers={"X-API-Key": portal_key})

    assert response.status_code == 422
    case.validate_response(response, checks=[response_schema_conformance])


BIG_INTEGERS = {
    "/v1/prescription-rankings": {
        "source_system": "portal",
        "source_ref": "RANK-BIG",
        "occurred_at": "2026-11-02T08:00:00+08:00",
        "staff_id": "S20931",
        "department": "CARDIO",
        "item_code": "D00123",
        "item_name": "注射用某某钠",
        "item_kind": "drug",
        "month": "2026-10",
        "rank": 2**64,
        "justified": False,
    },
    "/v1/training-sessions": {
        "source_system": "portal",
        "source_ref": "STUDY-BIG",
        "occurred_at": "2026-11-18T14:00:00+08:00",
        "department": "PSY-WARD-2",
        "held_on": "2026-11-18",
        "topic": "廉洁从业专题学习",
        "kind": "study",
        "attendee_ids": ["S20931"],
        "headcount": 2**64,
    },
}


@pytest.mark.parametrize("path", sorted(BIG_INTEGERS))
async def test_an_integer_too_big_to_store_is_refused_not_a_server_error(
    served_intake: ServedIntake, portal_key: str, path: str
) -> None:
    body = {**BIG_INTEGERS[path], "source_ref": f"BIG-{uuid.uuid4().hex}"}
    async with httpx.AsyncClient(base_url=served_intake.url) as client:
        response = await client.post(path, json=body, headers={"X-API-Key": portal_key})
        # Let the server finish logging a failure (a traceback, formatted with ast.parse) before
        # pytest formats this test's: CPython 3.11.7's ast module races between threads
        # (gh-106905) and pytest would stop with an INTERNALERROR. The server handles one
        # request's synchronous work before the next, so one more request is the barrier.
        await client.get("/healthz")

    assert response.status_code == 422, response.text
