"""Machines' credentials (API keys, report tokens): shown once, stored as a digest, verified,
revoked; and the one command-line shape that manages both."""

import argparse
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest

from services.common.credentials import (
    Credentials,
    GrantOption,
    Grants,
    command_line,
    credential_id,
    digest,
    run_command,
)
from services.common.documents import MemoryDocuments

NOW = datetime(2026, 12, 3, 9, tzinfo=UTC)


def credentials(cache_seconds: float = 0) -> Credentials:
    return Credentials(
        MemoryDocuments(), collection="keys", prefix="qlk", cache_seconds=cache_seconds
    )


async def test_an_issued_credential_verifies_and_only_its_digest_is_kept() -> None:
    keys = credentials()
    made_id, secret = await keys.issue({"source_system": "his"}, label="HIS", now=NOW)
    assert secret.startswith(f"qlk_{made_id}_")
    assert credential_id(secret, "qlk") == made_id
    found = await keys.verify(secret)
    assert found is not None
    assert found[0] == made_id
    assert found[1].grants == {"source_system": "his"}
    stored = await keys.records.get(made_id)
    assert stored is not None
    assert stored.secret_digest == digest(secret)
    assert secret not in stored.model_dump_json()


@pytest.mark.parametrize(
    "forged",
    ["", "qlk", "qlk__x", "qlr_000000000000_x", "qlk_000000000000_x", "qlk_{id}_wrong"],
)
async def test_a_forged_or_malformed_credential_is_refused(forged: str) -> None:
    keys = credentials()
    made_id, _ = await keys.issue({"source_system": "his"}, label="", now=NOW)
    assert await keys.verify(forged.format(id=made_id)) is None


async def test_a_revoked_credential_is_refused_once_the_cache_forgets_it() -> None:
    keys = credentials(cache_seconds=0)
    made_id, secret = await keys.issue({"role": "auditor"}, label="", now=NOW)
    assert await keys.revoke(made_id, now=NOW) is True
    assert await keys.revoke(made_id, now=NOW) is False  # not active any more
    assert await keys.revoke("unknown", now=NOW) is False
    assert await keys.verify(secret) is None
    ((listed_id, record),) = await keys.listed()
    assert (listed_id, record.revoked_at) == (made_id, NOW)


async def test_a_verified_credential_is_remembered_for_the_cache_time() -> None:
    keys = credentials(cache_seconds=60)
    made_id, secret = await keys.issue({"role": "auditor"}, label="", now=NOW)
    assert await keys.verify(secret) is not None
    await keys.revoke(made_id, now=NOW)
    assert await keys.verify(secret) is not None  # within the minute: still remembered


OPTIONS = (GrantOption("--role", "role", "the role", choices=("auditor", "department_head")),)


def grants_from(given: Mapping[str, str | None]) -> Grants:
    if given["role"] == "department_head":
        raise ValueError("a department head's token names the department")
    return dict(given)


async def run(keys: Credentials, *argv: str) -> int:
    parser = command_line(prog="tokens", doc="", kind="token", options=OPTIONS)

    async def closing() -> None:
        return None

    arguments: argparse.Namespace = parser.parse_args(argv)
    return await run_command(
        arguments, keys, kind="token", options=OPTIONS, grants_from=grants_from, closing=closing
    )


async def test_the_command_prints_the_new_credential_alone_on_standard_output(
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys = credentials()
    assert await run(keys, "create", "--role", "auditor", "--label", "审计 王五") == 0
    printed = capsys.readouterr()
    assert len(printed.out.splitlines()) == 1
    assert await keys.verify(printed.out.strip()) is not None
    assert "cannot be shown again" in printed.err

    assert await run(keys, "list") == 0
    listing = capsys.readouterr().out
    assert "审计 王五" in listing
    assert "active" in listing
    assert printed.out.strip() not in listing


async def test_the_command_refuses_what_its_grants_refuse(
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys = credentials()
    assert await run(keys, "create", "--role", "department_head") == 2
    assert "names the department" in capsys.readouterr().err
    assert await keys.listed() == []
    assert await run(keys, "revoke", "000000000000") == 1
