"""Write the JSON Schemas of the contracts to schemas/json/, for the systems that send events.

    .venv/bin/python -m tools.generate_contracts           # (re)write the files
    .venv/bin/python -m tools.generate_contracts --check   # exit 1 if they are out of date

For every event type: ``<event_type>.submission.schema.json`` (what a source system sends) and
``<event_type>.event.schema.json`` (what travels on Kafka); and ``any-submission.schema.json``
for batches and the raw topic. Each enumeration carries its Chinese labels in
``x-labels-zh`` (code → label). And the AsyncAPI document of every topic: what it carries,
its key, who writes and who reads it (``asyncapi.json``, built by tools/asyncapi.py).
"""

import argparse
import json
import sys
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

import schemas
from schemas.catalogue import CATALOGUE, AnySubmission
from schemas.labels import LabelledEnum
from services.desk.main import create_app as desk_app
from services.desk.settings import DeskSettings
from services.escalation.main import create_app as escalation_app
from services.escalation.settings import EscalationSettings
from services.intake.crypto import new_key
from services.intake.main import create_app as intake_app
from services.intake.settings import IntakeSettings
from services.notifier.main import create_app as notifier_app
from services.notifier.settings import NotifierSettings
from services.portal.main import create_app as portal_app
from services.portal.settings import PortalSettings
from services.reporting.main import create_app as reporting_app
from services.reporting.settings import ReportingSettings
from services.router.main import create_app as router_app
from services.router.settings import RouterSettings
from tools import asyncapi

JSON_DIR = Path(schemas.__file__).resolve().parent / "json"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
REGENERATE = ".venv/bin/python -m tools.generate_contracts"
PRODUCTION_BOOTSTRAP = "kafka:9092"
"""Kafka as the services reach it in deploy/docker-compose.yml."""


class _LabelledJsonSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema, with each LabelledEnum's Chinese labels beside its codes."""

    def enum_schema(self, schema: core_schema.EnumSchema) -> JsonSchemaValue:
        json_schema = super().enum_schema(schema)
        enum = schema["cls"]
        if isinstance(enum, type) and issubclass(enum, LabelledEnum):
            json_schema["x-labels-zh"] = {member.value: member.label_zh for member in enum}
        return json_schema


def _document(json_schema: dict[str, Any]) -> str:
    document = {"$schema": JSON_SCHEMA_DIALECT, **json_schema}
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def render() -> dict[Path, str]:
    """Every schema file, path → content. Pure: reads and writes nothing."""
    files: dict[Path, str] = {}
    for kind in CATALOGUE:
        files[JSON_DIR / f"{kind.event_type}.submission.schema.json"] = _document(
            kind.submission.model_json_schema(
                mode="validation", schema_generator=_LabelledJsonSchema
            )
        )
        files[JSON_DIR / f"{kind.event_type}.event.schema.json"] = _document(
            kind.event.model_json_schema(mode="serialization", schema_generator=_LabelledJsonSchema)
        )
    any_submission = TypeAdapter[Any](AnySubmission).json_schema(
        mode="validation", schema_generator=_LabelledJsonSchema
    )
    files[JSON_DIR / "any-submission.schema.json"] = _document(
        {"title": "AnySubmission", **any_submission}
    )
    files[JSON_DIR / "asyncapi.json"] = _asyncapi()
    return files


def _asyncapi() -> str:
    """The AsyncAPI document of every topic, from the services' brokers."""
    # The production addresses, whatever this machine's environment says.
    common: dict[str, Any] = {
        "kafka_bootstrap": PRODUCTION_BOOTSTRAP,
        "kafka_group_prefix": "qinglian-",
    }
    apps = {
        "intake": intake_app(IntakeSettings(**common, contact_key=new_key())),  # no key file
        "router": router_app(RouterSettings(**common)),
        "escalation": escalation_app(EscalationSettings(**common)),
        "reporting": reporting_app(ReportingSettings(**common)),
        "portal": portal_app(PortalSettings(**common, portal_key="-" * 32)),  # no key file
        "desk": desk_app(DeskSettings(**common)),
        "notifier": notifier_app(NotifierSettings(**common)),
    }
    specification = asyncapi.document(
        {service: app.state.broker for service, app in apps.items()},
        version=version("qinglian"),
        production_bootstrap=PRODUCTION_BOOTSTRAP,
        schema_generator=_LabelledJsonSchema,
    )
    return json.dumps(specification, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def stale(files: dict[Path, str]) -> list[Path]:
    """Schema files on disk that ``files`` does not produce (an event type renamed or gone)."""
    return sorted(set(JSON_DIR.glob("*.schema.json")) - set(files))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a file is out of date"
    )
    options = parser.parse_args(argv)
    files = render()
    if options.check:
        differing = [
            path
            for path, content in files.items()
            if not path.is_file() or path.read_text(encoding="utf-8") != content
        ] + stale(files)
        for path in differing:
            print(f"out of date: {path}", file=sys.stderr)
        if differing:
            print(f"run `{REGENERATE}`", file=sys.stderr)
        return 1 if differing else 0
    JSON_DIR.mkdir(exist_ok=True)
    for path in stale(files):
        path.unlink()
        print(f"removed {path}")
    for path, content in sorted(files.items()):
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8", newline="\n")
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
