"""Manage source systems' API keys.

    python -m services.intake.keys create --source portal --scopes complaint,satisfaction
    python -m services.intake.keys list
    python -m services.intake.keys revoke KEY_ID

A new key is printed once, at creation; only its SHA-256 is stored.
"""

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from pydantic import TypeAdapter, ValidationError

from schemas.base import SourceSystem
from schemas.catalogue import BY_TYPE
from services.common.store import connect, database
from services.intake.auth import FOLLOW_UP_REPLY_SCOPE, ApiKeys
from services.intake.repository import IntakeStore
from services.intake.settings import IntakeSettings

SCOPES = (*BY_TYPE, FOLLOW_UP_REPLY_SCOPE)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.intake.keys", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--source", required=True, help="the source system the key speaks for")
    create.add_argument(
        "--scopes", required=True, help=f"comma-separated, from: {', '.join(SCOPES)}"
    )
    create.add_argument("--label", default="", help="who holds the key, for the list")
    commands.add_parser("list", help="list keys (never the keys themselves)")
    revoke = commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    return parser


async def run(arguments: argparse.Namespace, settings: IntakeSettings) -> int:
    mongo = connect(settings)
    store = IntakeStore(database(mongo, settings))
    try:
        if arguments.command == "create":
            scopes = {scope.strip() for scope in arguments.scopes.split(",") if scope.strip()}
            unknown = sorted(scopes - set(SCOPES))
            if unknown or not scopes:
                print(f"unknown scopes: {', '.join(unknown) or '(none given)'}", file=sys.stderr)
                return 2
            try:
                source = TypeAdapter(SourceSystem).validate_python(arguments.source)
            except ValidationError:
                print("--source must be lower-case letters, digits, . _ -", file=sys.stderr)
                return 2
            key_id, api_key = await ApiKeys(store, cache_seconds=0).create(
                source_system=source, scopes=scopes, label=arguments.label, now=datetime.now(UTC)
            )
            print(f"key id {key_id} for {source}: {', '.join(sorted(scopes))}", file=sys.stderr)
            print("store this key now; it cannot be shown again:", file=sys.stderr)
            print(api_key)
        elif arguments.command == "list":
            for key in await store.list_api_keys():
                state = f"revoked {key['revoked_at']:%Y-%m-%d}" if key["revoked_at"] else "active"
                print(
                    f"{key['_id']}  {key['source_system']:<20} {state:<18} "
                    f"{','.join(key['scopes'])}  {key['label']}"
                )
        elif not await store.revoke_api_key(arguments.key_id, at=datetime.now(UTC)):
            print(f"no active key {arguments.key_id}", file=sys.stderr)
            return 1
        else:
            print(f"revoked {arguments.key_id}", file=sys.stderr)
        return 0
    finally:
        await mongo.close()


def main() -> int:
    return asyncio.run(run(_parser().parse_args(), IntakeSettings()))


if __name__ == "__main__":
    sys.exit(main())
