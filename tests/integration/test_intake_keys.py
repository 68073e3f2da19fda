"""The API-key command (python -m services.intake.keys) as the IT staff run it, against the real
store, with the keys it makes used on a running intake."""

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.common.credentials import credential_id, digest
from services.common.store import Document
from services.intake.crypto import API_KEY_PREFIX
from tests.conftest import InfraSettings
from tests.integration.intake_app import RunningIntake, intake_settings, running_intake

ROOT = Path(__file__).resolve().parents[2]
COMPLAINT: dict[str, Any] = {
    "source_system": "portal",
    "occurred_at": "2026-11-20T09:30:00+08:00",
    "channel": "portal",
    "category": "appointment_scalping",
    "accused_staff_id": "S30417",
    "accused_department": "OPD",
    "description": "挂号窗口工作人员统揽专家号，每个号加价三百元卖给患者家属。",
}


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Keys:
    """The key command pointed at the same database as the running intake."""

    intake: RunningIntake
    env: dict[str, str]

    async def run(self, *arguments: str) -> Run:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.intake.keys",
            *arguments,
            cwd=ROOT,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        assert process.returncode is not None
        return Run(process.returncode, stdout.decode(), stderr.decode())

    async def create(self, *arguments: str) -> str:
        """Create a key; returns it as printed."""
        created = await self.run("create", *arguments)
        assert created.returncode == 0, created.stderr
        return created.stdout.strip()

    async def submit(self, api_key: str) -> int:
        body = {**COMPLAINT, "source_ref": f"K-{uuid.uuid4().hex}"}
        response = await self.intake.post("/v1/complaints", body, key=api_key)
        return response.status_code


@pytest.fixture(scope="module")
async def keys(infra: InfraSettings) -> AsyncIterator[Keys]:
    settings = intake_settings(infra, uuid.uuid4().hex[:12])
    env = {
        **os.environ,
        "QINGLIAN_MONGO_URL": infra.mongo_url,
        "QINGLIAN_MONGO_DB": settings.mongo_db,
    }
    async with running_intake(settings) as intake:
        yield Keys(intake, env)
    client: AsyncMongoClient[Document] = AsyncMongoClient(infra.mongo_url)
    await client.drop_database(settings.mongo_db)
    await client.close()


async def test_a_created_key_is_printed_once_on_stdout_and_lets_its_system_send(
    keys: Keys,
) -> None:
    created = await keys.run("create", "--source", "portal", "--scopes", "complaint,satisfaction")

    assert created.returncode == 0, created.stderr
    (api_key,) = created.stdout.splitlines()
    assert credential_id(api_key, API_KEY_PREFIX) is not None
    assert api_key not in created.stderr
    assert await keys.submit(api_key) == 202


async def test_a_created_key_may_send_only_its_scopes(keys: Keys) -> None:
    api_key = await keys.create("--source", "portal", "--scopes", "satisfaction")

    assert await keys.submit(api_key) == 403


async def test_the_list_shows_keys_by_id_but_never_a_key_or_its_digest(keys: Keys) -> None:
    api_key = await keys.create(
        "--source", "portal", "--scopes", "complaint", "--label", "网上平台"
    )
    key_id = credential_id(api_key, API_KEY_PREFIX)
    assert key_id is not None

    listed = await keys.run("list")

    assert listed.returncode == 0, listed.stderr
    (line,) = [line for line in listed.stdout.splitlines() if line.startswith(key_id)]
    assert "portal" in line
    assert "active" in line
    everything = listed.stdout + listed.stderr
    assert api_key not in everything
    assert api_key.rsplit("_", 1)[1] not in everything
    assert digest(api_key) not in everything


async def test_a_revoked_key_no_longer_works_and_is_listed_as_revoked(keys: Keys) -> None:
    api_key = await keys.create("--source", "portal", "--scopes", "complaint")
    key_id = credential_id(api_key, API_KEY_PREFIX)
    assert key_id is not None
    assert await keys.submit(api_key) == 202

    revoked = await keys.run("revoke", key_id)

    assert revoked.returncode == 0, revoked.stderr
    assert await keys.submit(api_key) == 401
    listed = await keys.run("list")
    (line,) = [line for line in listed.stdout.splitlines() if line.startswith(key_id)]
    assert "revoked" in line


async def test_revoking_a_key_that_does_not_exist_fails_with_a_message(keys: Keys) -> None:
    revoked = await keys.run("revoke", "000000000000")

    assert revoked.returncode == 1
    assert "000000000000" in revoked.stderr


async def test_an_unknown_scope_is_refused_with_exit_code_2_and_no_key_is_made(keys: Keys) -> None:
    before = await keys.intake.store.keys.listed()

    created = await keys.run("create", "--source", "portal", "--scopes", "complaint,bribery")

    assert created.returncode == 2
    assert "bribery" in created.stderr
    assert created.stdout == ""
    assert await keys.intake.store.keys.listed() == before


async def test_a_malformed_source_system_is_refused_with_exit_code_2(keys: Keys) -> None:
    created = await keys.run("create", "--source", "Portal System", "--scopes", "complaint")

    assert created.returncode == 2
    assert "--source" in created.stderr
    assert created.stdout == ""
