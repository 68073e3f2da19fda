"""Bearer credentials of machines: intake's API keys (a source system and the event types it
may send) and reporting's report tokens (a role, and a head's department). One kind of thing
with different grants, so one module keeps them, and one command-line shape manages them::

    python -m services.intake.keys create --source his --scopes complaint,satisfaction --label …
    python -m services.reporting.tokens create --role auditor --label …
    python -m services.<service>.<command> list
    python -m services.<service>.<command> revoke ID

A credential is ``<prefix>_<id>_<secret>``: shown once, at creation; only its SHA-256 is stored,
under its public id. A verified credential is remembered for ``cache_seconds``, so a request
does not cost a store round trip each time; revoking takes effect within that time.
"""

import argparse
import hashlib
import hmac
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from services.common.documents import Documents, Records

Grants = dict[str, str | list[str] | None]
"""What a credential allows, as its service reads it ({"source_system", "scopes"}, or
{"role", "department"})."""


class Credential(BaseModel):
    grants: Grants
    label: str = ""
    secret_digest: str = Field(repr=False)
    created_at: datetime
    revoked_at: datetime | None = None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_credential(prefix: str) -> tuple[str, str]:
    """A new credential as (its public id, the whole credential, shown once)."""
    credential_id = secrets.token_hex(6)
    return credential_id, f"{prefix}_{credential_id}_{secrets.token_urlsafe(32)}"


def credential_id(secret: str, prefix: str) -> str | None:
    """The id inside a credential, or None if it is not shaped like one of ``prefix``."""
    found_prefix, _, rest = secret.partition("_")
    found_id, _, random_part = rest.partition("_")
    if found_prefix != prefix or len(found_id) != 12 or not random_part:
        return None
    return found_id


class Credentials:
    """The credentials of one kind (one prefix), in their service's store."""

    def __init__(
        self, documents: Documents, *, collection: str, prefix: str, cache_seconds: float
    ) -> None:
        self.records: Records[Credential] = documents.records(collection, Credential)
        self.prefix = prefix
        self.cache_seconds = cache_seconds
        self._verified: dict[str, tuple[float, str, Credential]] = {}

    async def issue(self, grants: Grants, *, label: str, now: datetime) -> tuple[str, str]:
        """A new credential: (its id, the credential). The credential is never stored."""
        made_id, secret = new_credential(self.prefix)
        record = Credential(
            grants=grants, label=label, secret_digest=digest(secret), created_at=now
        )
        if not await self.records.insert(made_id, record):
            raise RuntimeError(f"credential id {made_id} exists; issue again")
        return made_id, secret

    async def verify(self, secret: str) -> tuple[str, Credential] | None:
        """The credential's id and record, or None: unknown, malformed or revoked."""
        secret_digest = digest(secret)
        cached = self._verified.get(secret_digest)
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1], cached[2]
        found_id = credential_id(secret, self.prefix)
        record = await self.records.get(found_id) if found_id else None
        if (
            found_id is None
            or record is None
            or record.revoked_at is not None
            or not hmac.compare_digest(record.secret_digest, secret_digest)
        ):
            self._verified.pop(secret_digest, None)
            return None
        self._verified[secret_digest] = (time.monotonic(), found_id, record)
        return found_id, record

    async def listed(self) -> list[tuple[str, Credential]]:
        return sorted((await self.records.find()).items())

    async def revoke(self, revoked_id: str, *, now: datetime) -> bool:
        """Revoke an active credential; False if there is none with this id."""
        record = await self.records.get(revoked_id)
        if record is None or record.revoked_at is not None:
            return False
        await self.records.put(revoked_id, record.model_copy(update={"revoked_at": now}))
        return True


# --- The command line --------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantOption:
    """One option of ``create`` that becomes a grant: ``--source`` → ``source_system``."""

    flag: str
    grant: str
    help: str
    required: bool = True
    choices: Sequence[str] | None = None


GrantsFrom = Callable[[Mapping[str, str | None]], Grants]
"""Checks the options given to ``create`` and makes the grants; raises ValueError with a
message for the operator."""


def command_line(
    *, prog: str, doc: str, kind: str, options: Sequence[GrantOption]
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help=f"create a {kind} and print it once")
    for option in options:
        create.add_argument(
            option.flag,
            dest=option.grant,
            required=option.required,
            choices=option.choices,
            help=option.help,
        )
    create.add_argument("--label", default="", help=f"who holds the {kind}, for the list")
    commands.add_parser("list", help=f"list them (never the {kind}s themselves)")
    revoke = commands.add_parser("revoke", help=f"revoke a {kind} by its id")
    revoke.add_argument("id")
    return parser


async def run_command(
    arguments: argparse.Namespace,
    credentials: Credentials,
    *,
    kind: str,
    options: Sequence[GrantOption],
    grants_from: GrantsFrom,
    closing: Callable[[], Awaitable[None]],
) -> int:
    """``create``, ``list`` or ``revoke``; the exit status. Only the credential itself goes to
    standard output (alone on its line), everything else to standard error."""
    try:
        if arguments.command == "create":
            given = {option.grant: getattr(arguments, option.grant) for option in options}
            try:
                grants = grants_from(given)
            except ValueError as error:
                print(error, file=sys.stderr)
                return 2
            made_id, secret = await credentials.issue(
                grants, label=arguments.label, now=datetime.now(UTC)
            )
            print(f"{kind} id {made_id}: {_describe(grants)}", file=sys.stderr)
            print(f"store this {kind} now; it cannot be shown again:", file=sys.stderr)
            print(secret)
        elif arguments.command == "list":
            for listed_id, record in await credentials.listed():
                print(_listed(listed_id, record))
        elif await credentials.revoke(arguments.id, now=datetime.now(UTC)):
            print(f"revoked {arguments.id}", file=sys.stderr)
        else:
            print(f"no active {kind} {arguments.id}", file=sys.stderr)
            return 1
        return 0
    finally:
        await closing()


def _describe(grants: Grants) -> str:
    return "; ".join(
        f"{name} {','.join(value) if isinstance(value, list) else value}"
        for name, value in grants.items()
        if value
    )


def _listed(listed_id: str, record: Credential) -> str:
    state = f"revoked {record.revoked_at:%Y-%m-%d}" if record.revoked_at else "active"
    return f"{listed_id}  {state:<18} {_describe(record.grants):<50} {record.label}"
