"""The JSON Schemas in schemas/json/ that source systems build against: generated from the
models, never edited by hand, with the Chinese labels of every enumeration."""

import json
import re
import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import KafkaBroker

from schemas import topics
from schemas.catalogue import CATALOGUE
from schemas.labels import LabelledEnum
from services.common.consuming import subscriber_group
from tools import asyncapi, generate_contracts
from tools.generate_contracts import JSON_DIR, REGENERATE, main, render

RENDERED = render()


def _has_cjk(text: str) -> bool:
    return any(unicodedata.name(char, "").startswith("CJK UNIFIED IDEOGRAPH") for char in text)


def _files_on_disk() -> list[Path]:
    return sorted(JSON_DIR.glob("*.json"))


def _documents() -> list[Any]:
    """The JSON Schema files (the AsyncAPI document is checked on its own)."""
    return [
        pytest.param(path, id=path.name)
        for path in _files_on_disk()
        if path.name.endswith(".schema.json")
    ]


def _enum_definitions(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, definition in document.get("$defs", {}).items():
        if "enum" in definition:
            yield name, definition


def _labelled_enums_of_the_contracts() -> set[type[LabelledEnum]]:
    """Every LabelledEnum a catalogued model uses, found through the models' annotations."""
    found: set[type[LabelledEnum]] = set()
    pending: list[Any] = [model for kind in CATALOGUE for model in (kind.submission, kind.event)]
    seen: set[int] = set()
    while pending:
        annotation = pending.pop()
        if id(annotation) in seen:
            continue
        seen.add(id(annotation))
        if isinstance(annotation, type) and issubclass(annotation, LabelledEnum):
            found.add(annotation)
        elif isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            pending.extend(info.annotation for info in annotation.model_fields.values())
        else:
            pending.extend(getattr(annotation, "__args__", ()))
    return found


# --- generated, not edited ------------------------------------------------------------------


def test_the_schema_files_on_disk_are_what_the_models_generate() -> None:
    differing = sorted(
        path.name
        for path, content in RENDERED.items()
        if not path.is_file() or path.read_bytes() != content.encode("utf-8")
    )

    assert not differing, (
        f"schemas/json/ is out of date with the models ({', '.join(differing)}): run `{REGENERATE}`"
    )


def test_no_schema_file_is_left_over_from_an_old_model() -> None:
    left_over = sorted(path.name for path in _files_on_disk() if path not in RENDERED)

    assert not left_over, (
        f"schemas/json/ holds files no model generates ({', '.join(left_over)}): "
        f"run `{REGENERATE}`, which removes them"
    )


def test_every_event_type_has_a_submission_and_an_event_schema() -> None:
    expected = {"any-submission.schema.json", "asyncapi.json"} | {
        f"{kind.event_type}.{side}.schema.json"
        for kind in CATALOGUE
        for side in ("submission", "event")
    }

    assert {path.name for path in RENDERED} == expected
    assert all(path.parent == JSON_DIR for path in RENDERED)


def test_rendering_twice_gives_the_same_files() -> None:
    assert render() == RENDERED


def test_the_submission_schema_is_the_validation_schema_and_the_event_schema_the_output() -> None:
    submission = json.loads(RENDERED[JSON_DIR / "complaint.submission.schema.json"])
    event = json.loads(RENDERED[JSON_DIR / "complaint.event.schema.json"])

    assert submission["title"] == "ComplaintSubmission"
    assert "complainant_contact" in submission["properties"]
    assert event["title"] == "ComplaintReceived"
    assert "complainant_contact" not in event["properties"]
    assert {"event_id", "received_at", "schema_version"} <= set(event["properties"])
    assert {"event_id", "received_at"} <= set(event["required"])


def test_the_any_submission_schema_tells_the_types_apart_by_event_type() -> None:
    document = json.loads(RENDERED[JSON_DIR / "any-submission.schema.json"])

    assert document["discriminator"]["propertyName"] == "event_type"
    assert set(document["discriminator"]["mapping"]) == {kind.event_type for kind in CATALOGUE}


# --- the files themselves -------------------------------------------------------------------


def test_the_chinese_labels_are_in_the_files_as_written() -> None:
    text = (JSON_DIR / "kpi_observation.submission.schema.json").read_text(encoding="utf-8")

    assert '"inpatient_wait_days": "住院患者平均等待天数"' in text


@pytest.mark.parametrize("path", _documents())
def test_every_schema_file_is_a_json_schema_document(path: Path) -> None:
    text = path.read_text(encoding="utf-8")

    document = json.loads(text)

    assert isinstance(document, dict)
    assert document["$schema"] == generate_contracts.JSON_SCHEMA_DIALECT
    assert document["title"]
    assert text.endswith("}\n")


@pytest.mark.parametrize("path", _documents())
def test_every_schema_file_keeps_chinese_as_utf8_not_escapes(path: Path) -> None:
    text = path.read_text(encoding="utf-8")

    assert "\\u" not in text


@pytest.mark.parametrize("path", _documents())
def test_every_enum_in_a_schema_file_carries_its_chinese_labels(path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))

    for name, definition in _enum_definitions(document):
        labels = definition.get("x-labels-zh")
        assert isinstance(labels, dict), f"{path.name}: {name} has no x-labels-zh"
        assert set(labels) == set(definition["enum"]), name
        assert all(_has_cjk(label) for label in labels.values()), name


def test_every_enumeration_of_the_contracts_is_published_with_its_labels() -> None:
    published: dict[str, dict[str, str]] = {}
    for content in RENDERED.values():
        for name, definition in _enum_definitions(json.loads(content)):
            published[name] = definition["x-labels-zh"]

    enums = _labelled_enums_of_the_contracts()

    assert {enum.__name__ for enum in enums} == set(published)
    for enum in enums:
        assert published.get(enum.__name__) == {member.value: member.label_zh for member in enum}


# --- the generator --------------------------------------------------------------------------


def test_the_generator_writes_every_file_and_then_finds_them_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generate_contracts, "JSON_DIR", tmp_path / "json")

    assert main(["--check"]) == 1
    assert main([]) == 0

    written = sorted(path.name for path in (tmp_path / "json").iterdir())
    assert written == sorted(path.name for path in RENDERED)
    assert main(["--check"]) == 0


def test_the_generator_removes_a_schema_no_model_generates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generate_contracts, "JSON_DIR", tmp_path)
    main([])
    left_over = tmp_path / "retired_event.submission.schema.json"
    left_over.write_text("{}\n", encoding="utf-8")

    assert main(["--check"]) == 1
    assert main([]) == 0

    assert not left_over.exists()
    assert main(["--check"]) == 0


def test_the_generator_notices_a_hand_edited_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generate_contracts, "JSON_DIR", tmp_path)
    main([])
    edited = tmp_path / "satisfaction.submission.schema.json"
    edited.write_text(edited.read_text(encoding="utf-8").replace('"maximum": 5', '"maximum": 10'))

    assert main(["--check"]) == 1
    main([])

    assert '"maximum": 5' in edited.read_text(encoding="utf-8")


# --- the AsyncAPI document: what an integrator reads first ----------------------------------

ASYNCAPI = json.loads(RENDERED[JSON_DIR / "asyncapi.json"])


def _resolve(reference: str) -> Any:
    assert reference.startswith("#/"), reference
    found: Any = ASYNCAPI
    for part in reference[2:].split("/"):
        found = found[part.replace("~1", "/").replace("~0", "~")]
    return found


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for name, value in node.items():
            if name == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def _messages(topic: str) -> list[dict[str, Any]]:
    return [_resolve(ref["$ref"]) for ref in ASYNCAPI["channels"][topic]["messages"].values()]


def _payload(topic: str) -> Any:
    (message,) = _messages(topic)
    return _resolve(message["payload"]["$ref"])


def _operations(topic: str, action: str) -> dict[str, dict[str, Any]]:
    return {
        name: operation
        for name, operation in ASYNCAPI["operations"].items()
        if operation["action"] == action
        and _resolve(operation["channel"]["$ref"])["address"] == topic
    }


def test_the_asyncapi_document_is_version_3_and_every_reference_in_it_resolves() -> None:
    assert ASYNCAPI["asyncapi"] == "3.0.0"
    assert ASYNCAPI["defaultContentType"] == "application/json"
    for reference in _references(ASYNCAPI):
        _resolve(reference)


RAW_HIS = topics.raw_topic("his")
"""One raw sender's topic (services/common/raw_senders.toml)."""


def test_each_topic_is_one_channel_named_by_its_address() -> None:
    raw = {name for name in ASYNCAPI["channels"] if name.startswith(topics.RAW_PREFIX)}
    assert RAW_HIS in raw
    assert set(ASYNCAPI["channels"]) == set(topics.ALL) | raw
    for name, channel in ASYNCAPI["channels"].items():
        assert channel["address"] == name
        assert channel["bindings"]["kafka"]["topic"] == name


def test_the_raw_topic_carries_any_submission_told_apart_by_event_type() -> None:
    payload = _payload(RAW_HIS)

    assert payload["discriminator"] == "event_type"
    branches = [_resolve(branch["$ref"]) for branch in payload["oneOf"]]
    by_type = {branch["properties"]["event_type"]["const"]: branch for branch in branches}
    assert set(by_type) == {kind.event_type for kind in CATALOGUE}
    for kind in CATALOGUE:
        submission = json.loads(RENDERED[JSON_DIR / f"{kind.event_type}.submission.schema.json"])
        assert set(by_type[kind.event_type]["properties"]) == set(submission["properties"])
        assert set(by_type[kind.event_type]["required"]) == set(submission["required"])


def test_every_fact_topic_carries_its_event_keyed_as_the_catalogue_says() -> None:
    for kind in CATALOGUE:
        assert _payload(kind.topic)["title"] == kind.event.__name__
        (message,) = _messages(kind.topic)
        key = message["bindings"]["kafka"]["key"]
        assert kind.key_field in key["description"]
        field = kind.event.model_fields[kind.key_field]
        if field.annotation is uuid.UUID:  # EventKind.key: a UUID's bytes, not its text
            assert (key["format"], "16 bytes" in key["description"]) == ("binary", True)
        else:
            assert "UTF-8" in key["description"]


def test_every_message_says_what_keys_its_records() -> None:
    for topic in ASYNCAPI["channels"]:
        for message in _messages(topic):
            assert message["bindings"]["kafka"]["key"]["description"], topic


def test_every_channel_says_what_it_carries_who_writes_it_who_reads_it_and_its_key() -> None:
    for topic, channel in ASYNCAPI["channels"].items():
        description = channel["description"]
        assert "Written by" in description, topic
        assert "Read by" in description, topic
        assert "Key" in description, topic
    raw = ASYNCAPI["channels"][RAW_HIS]["description"]
    assert "other hospital systems" in raw
    assert "`his`, the only one who may write it" in raw
    assert "intake" in raw
    assert topics.DEAD_LETTERS in raw  # where a refused record goes


def test_operations_are_named_for_what_they_do_not_for_internal_handlers() -> None:
    for name, operation in ASYNCAPI["operations"].items():
        assert re.fullmatch(r"publish[A-Z][A-Za-z]+|[a-z]+Reads[A-Z][A-Za-z]+", name), name
        assert operation["summary"], name
    assert set(_operations(RAW_HIS, "receive")) == {"intakeReadsIntakeRawHis"}
    assert _operations(RAW_HIS, "send") == {}  # other systems write it, not Qinglian
    assert set(_operations(topics.CASES, "send")) == {"publishCases"}


def test_each_reading_operation_names_its_consumer_group() -> None:
    operation = _operations(topics.COMPLAINTS, "receive")["routerReadsComplaints"]

    group = operation["bindings"]["kafka"]["groupId"]
    assert group["enum"] == [subscriber_group("qinglian-router", topics.COMPLAINTS)]


def test_every_service_that_dead_letters_is_listed_as_writing_the_dead_letter_topic() -> None:
    (publish,) = _operations(topics.DEAD_LETTERS, "send").values()

    for service in ("intake", "router", "escalation", "reporting", "portal"):
        assert service in publish["description"]


def test_the_local_server_needs_no_login_and_production_logs_in_with_scram_sha_512() -> None:
    local, production = ASYNCAPI["servers"]["local"], ASYNCAPI["servers"]["production"]

    assert (local["protocol"], local["host"]) == ("kafka", "127.0.0.1:19092")
    assert "security" not in local
    assert (production["protocol"], production["host"]) == ("kafka", "kafka:9092")
    (scheme,) = (_resolve(ref["$ref"]) for ref in production["security"])
    assert scheme["type"] == "scramSha512"
    assert "SASL_PLAINTEXT" in scheme["description"]


def test_a_topic_a_service_starts_reading_appears_by_itself_as_one_other_systems_write() -> None:
    # A raw topic of one sender's own, say: no service writes it, intake reads it.
    broker = KafkaBroker()

    @broker.subscriber("qinglian.intake.raw.his.v1", group_id="qinglian-intake.his")
    async def accept(body: bytes) -> None: ...

    document = asyncapi.document(
        {"intake": broker},
        version="0",
        production_bootstrap="kafka:9092",
        schema_generator=generate_contracts._LabelledJsonSchema,
    )

    channel = document["channels"]["qinglian.intake.raw.his.v1"]
    assert set(channel["messages"]) == {"AnySubmission"}
    assert "- **Written by**: other hospital systems" in channel["description"]
    assert "intake (consumer group `qinglian-intake.his`)" in channel["description"]
    assert "intakeReadsIntakeRawHis" in document["operations"]
    assert "`qinglian.intake.raw.his.v1`" in document["info"]["description"]


def test_a_topic_a_service_writes_without_saying_what_it_carries_stops_the_generator() -> None:
    broker = KafkaBroker()
    broker.publisher("qinglian.new-facts.v1")

    with pytest.raises(ValueError, match=r"qinglian\.new-facts\.v1.*schemas/catalogue\.py"):
        asyncapi.document(
            {"router": broker},
            version="0",
            production_bootstrap="kafka:9092",
            schema_generator=generate_contracts._LabelledJsonSchema,
        )
