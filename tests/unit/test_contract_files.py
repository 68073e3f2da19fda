"""The JSON Schemas in schemas/json/ that source systems build against: generated from the
models, never edited by hand, with the Chinese labels of every enumeration."""

import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas.catalogue import CATALOGUE
from schemas.labels import LabelledEnum
from tools import generate_contracts
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


def test_the_asyncapi_document_shows_every_fact_topic_and_what_consumes_it() -> None:
    document = json.loads(RENDERED[JSON_DIR / "asyncapi.json"])

    assert document["asyncapi"].startswith("3.")
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert {kind.topic for kind in CATALOGUE} <= addresses
    consumed = {
        document["channels"][operation["channel"]["$ref"].split("/")[-1]]["address"]
        for operation in document["operations"].values()
        if operation["action"] == "receive"
    }
    assert {"qinglian.complaints.v1", "qinglian.intake.raw.his.v1"} <= consumed
