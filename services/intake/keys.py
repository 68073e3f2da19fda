"""Manage source systems' API keys.

    python -m services.intake.keys create --source portal --scopes complaint,satisfaction --label …
    python -m services.intake.keys list
    python -m services.intake.keys revoke KEY_ID

A new key is printed once, at creation, alone on standard output; only its SHA-256 is stored.
"""

import argparse
import asyncio
import sys
from collections.abc import Mapping, Sequence

from pydantic import TypeAdapter, ValidationError

from schemas.base import SourceSystem
from schemas.catalogue import BY_TYPE
from services.common.credentials import GrantOption, Grants, command_line, run_command
from services.common.documents import MongoDocuments
from services.common.store import connect, database
from services.intake.auth import (
    ATTACHMENT_READ_SCOPE,
    ATTACHMENT_WRITE_SCOPE,
    FOLLOW_UP_REPLY_SCOPE,
)
from services.intake.settings import IntakeSettings
from services.intake.store import IntakeStore

SCOPES = (*BY_TYPE, FOLLOW_UP_REPLY_SCOPE, ATTACHMENT_WRITE_SCOPE, ATTACHMENT_READ_SCOPE)
OPTIONS = (
    GrantOption("--source", "source_system", "the source system the key speaks for"),
    GrantOption("--scopes", "scopes", f"comma-separated, from: {', '.join(SCOPES)}"),
)


def grants_from(given: Mapping[str, str | None]) -> Grants:
    scopes = {scope.strip() for scope in (given["scopes"] or "").split(",") if scope.strip()}
    unknown = sorted(scopes - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"unknown scopes: {', '.join(unknown) or '(none given)'}")
    try:
        source = TypeAdapter(SourceSystem).validate_python(given["source_system"])
    except ValidationError:
        raise ValueError("--source must be lower-case letters, digits, . _ -") from None
    return {"source_system": source, "scopes": sorted(scopes)}


async def _run(arguments: argparse.Namespace) -> int:
    settings = IntakeSettings()
    mongo = connect(settings)
    store = IntakeStore.on(MongoDocuments(database(mongo, settings)), key_cache_seconds=0)
    return await run_command(
        arguments,
        store.keys,
        kind="key",
        options=OPTIONS,
        grants_from=grants_from,
        closing=mongo.close,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = command_line(
        prog="python -m services.intake.keys", doc=__doc__ or "", kind="key", options=OPTIONS
    )
    return asyncio.run(_run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
