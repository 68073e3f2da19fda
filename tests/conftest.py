"""Fixtures for tests that need the real Kafka broker and MongoDB-wire store.

deploy/local/test.sh starts both on their own ports and exports QINGLIAN_KAFKA_BOOTSTRAP and
QINGLIAN_MONGO_URL; without them the settings' defaults (the `make up` runtime) are used.
"""

import socket
import uuid
from collections.abc import AsyncIterator

import pytest
from hypothesis import settings as hypothesis_settings
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.common.settings import ServiceSettings
from services.common.store import Document

# Hypothesis fails an example slower than 200 ms by default: on a machine busy with other work
# that fails tests for their speed, which no test asserts (speed goals live in bench/).
hypothesis_settings.register_profile("qinglian", deadline=None)
hypothesis_settings.load_profile("qinglian")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fault tests (tests/integration/test_faults.py) run last: they stop and start the
    runtime's Kafka and FerretDB, and leave thousands of records in the shared topics that every
    later test starting the services with fresh consumer groups would have to read again."""
    items.sort(key=lambda item: item.get_closest_marker("faults") is not None)


class InfraSettings(ServiceSettings):
    http_port: int = 0


@pytest.fixture(scope="session")
def infra() -> InfraSettings:
    """Settings pointing at the real broker and store; fails if either is not listening."""
    settings = InfraSettings()
    endpoints = {
        "Kafka": settings.kafka_bootstrap.split(",")[0],
        "the MongoDB-wire store": settings.mongo_url.removeprefix("mongodb://").split("/")[0],
    }
    for name, endpoint in endpoints.items():
        host, port = endpoint.rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
        except OSError:
            pytest.fail(
                f"{name} is not reachable at {endpoint}: run the tests with `make test` "
                "(or start deploy/local/runtime.sh)"
            )
    return settings


@pytest.fixture
def unique() -> str:
    """A fresh suffix for topic, group and database names, so tests never share state."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
async def store(infra: InfraSettings, unique: str) -> AsyncIterator[AsyncDatabase[Document]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    db = client[f"test_{unique}"]
    yield db
    await client.drop_database(db.name)
    await client.close()
