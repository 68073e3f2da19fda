"""The whole system: the four services as real processes against the real broker and store."""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from schemas.catalogue import BY_TYPE
from tests.conftest import InfraSettings
from tests.services import created, running_services

SERVICES = {"intake": 8201, "router": 8202, "escalation": 8203, "reporting": 8204}


@dataclass
class System:
    urls: dict[str, str]
    api_key: str
    """A key of source system "portal" that may send every event type."""
    report_token: str
    """A conduct office (行风办) token for reporting."""
    logs: Path
    """Where each service's output goes: <name>.log."""


# Module scope: the services stop when the module's tests end, so their consumers (e.g.
# intake on the raw topic) never compete with the integration tests' own.
@pytest.fixture(scope="module")
def system(infra: InfraSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    run_id = os.urandom(4).hex()
    logs = tmp_path_factory.mktemp("service-logs")
    env = {
        **os.environ,
        "QINGLIAN_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "QINGLIAN_MONGO_URL": infra.mongo_url,
        "QINGLIAN_MONGO_DB": f"e2e_{run_id}",
        "QINGLIAN_KAFKA_GROUP_PREFIX": f"e2e-{run_id}-",
    }
    with running_services(SERVICES, env, logs) as urls:
        api_key = created(
            env, "services.intake.keys", "--source", "portal", "--scopes", ",".join(BY_TYPE)
        )
        report_token = created(env, "services.reporting.tokens", "--role", "conduct_office")
        yield System(urls=urls, api_key=api_key, report_token=report_token, logs=logs)
