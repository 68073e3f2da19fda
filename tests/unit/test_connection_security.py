"""Credentials for Kafka and MongoDB: read from files named by the settings, handed to every
client, and never shown (repr, str, dumps, validation errors, log lines).

Nothing here connects: clients are built, not started.
"""

import ast
import functools
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from faststream.security import SASLScram512
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

import services.common.broker as broker_module
from services.common.broker import (
    ensure_topics,
    kafka_client_options,
    kafka_security,
    make_broker,
)
from services.common.settings import ServiceSettings
from services.common.store import connect
from services.escalation.settings import EscalationSettings
from services.intake.settings import IntakeSettings
from services.reporting.settings import ReportingSettings
from services.router.settings import RouterSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
# Values to look for where they must never appear.
KAFKA_PASSWORD = "kafka-Pa55word-never-shown"  # noqa: S105
MONGO_USERNAME = "mongo-user-never-shown"
MONGO_PASSWORD = "mongo-Pa55word-never-shown"  # noqa: S105
MONGO_URL = "mongodb://url-user:url-Pa55word-never-shown@mongodb:27017/"
SECRETS = (KAFKA_PASSWORD, MONGO_USERNAME, MONGO_PASSWORD, "url-Pa55word-never-shown")


class Settings(ServiceSettings):
    http_port: int = 0


@pytest.fixture(autouse=True)
def no_qinglian_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets: a developer's QINGLIAN_* variables must not leak in."""
    for name in list(os.environ):
        if name.startswith("QINGLIAN_"):
            monkeypatch.delenv(name)


@pytest.fixture
def secret_files(tmp_path: Path) -> dict[str, Path]:
    """Secret files as an editor or `echo` writes them: with a trailing newline."""
    files = {
        "kafka_password": KAFKA_PASSWORD,
        "mongo_username": MONGO_USERNAME,
        "mongo_password": MONGO_PASSWORD,
        "mongo_url": MONGO_URL,
    }
    paths = {}
    for name, value in files.items():
        path = tmp_path / name
        path.write_text(f"{value}\n", encoding="utf-8")
        paths[name] = path
    return paths


@pytest.fixture
def secured(secret_files: dict[str, Path]) -> Settings:
    return Settings(
        kafka_bootstrap="kafka:9092",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="qinglian",
        kafka_sasl_password_file=secret_files["kafka_password"],
        mongo_url="mongodb://mongodb:27017/",
        mongo_username_file=secret_files["mongo_username"],
        mongo_password_file=secret_files["mongo_password"],
    )


def _assert_no_secret_in(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


# --- Settings read the files -------------------------------------------------------------------


def test_local_runs_need_no_credentials() -> None:
    settings = Settings()

    assert settings.kafka_credentials() is None
    assert settings.mongo_credentials() is None
    assert settings.mongo_client_url().get_secret_value() == settings.mongo_url
    assert kafka_security(settings) is None
    assert kafka_client_options(settings) == {"bootstrap_servers": settings.kafka_bootstrap}


def test_settings_read_the_kafka_password_and_mongodb_login_from_their_files(
    secured: Settings,
) -> None:
    kafka = secured.kafka_credentials()
    mongo = secured.mongo_credentials()

    assert kafka is not None
    assert (kafka[0], kafka[1].get_secret_value()) == ("qinglian", KAFKA_PASSWORD)
    assert mongo is not None
    assert [part.get_secret_value() for part in mongo] == [MONGO_USERNAME, MONGO_PASSWORD]
    assert secured.mongo_client_url().get_secret_value() == "mongodb://mongodb:27017/"


def test_settings_read_the_files_named_in_the_environment(
    secret_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QINGLIAN_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("QINGLIAN_KAFKA_SASL_USERNAME", "qinglian")
    monkeypatch.setenv("QINGLIAN_KAFKA_SASL_PASSWORD_FILE", str(secret_files["kafka_password"]))
    monkeypatch.setenv("QINGLIAN_MONGO_URL_FILE", str(secret_files["mongo_url"]))

    for settings_class in (IntakeSettings, RouterSettings, EscalationSettings, ReportingSettings):
        settings = settings_class(env="development")
        credentials = settings.kafka_credentials()
        assert credentials is not None
        assert credentials[1].get_secret_value() == KAFKA_PASSWORD
        assert settings.mongo_client_url().get_secret_value() == MONGO_URL
        assert settings.mongo_credentials() is None


def test_the_files_are_read_when_the_settings_are_built_not_later(
    secret_files: dict[str, Path],
) -> None:
    settings = Settings(
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="qinglian",
        kafka_sasl_password_file=secret_files["kafka_password"],
    )
    secret_files["kafka_password"].unlink()

    credentials = settings.kafka_credentials()
    assert credentials is not None
    assert credentials[1].get_secret_value() == KAFKA_PASSWORD


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"kafka_sasl_mechanism": "SCRAM-SHA-512"}, "QINGLIAN_KAFKA_SASL_USERNAME"),
        ({"kafka_sasl_username": "qinglian"}, "QINGLIAN_KAFKA_SASL_MECHANISM"),
        (
            {"kafka_sasl_mechanism": "SCRAM-SHA-512", "kafka_sasl_username": "qinglian"},
            "QINGLIAN_KAFKA_SASL_PASSWORD_FILE",
        ),
        ({"mongo_username_file": "mongo_username"}, "QINGLIAN_MONGO_PASSWORD_FILE"),
        ({"mongo_password_file": "mongo_password"}, "QINGLIAN_MONGO_USERNAME_FILE"),
        (
            {
                "mongo_url_file": "mongo_url",
                "mongo_username_file": "mongo_username",
                "mongo_password_file": "mongo_password",
            },
            "QINGLIAN_MONGO_URL_FILE",
        ),
    ],
)
def test_half_configured_credentials_stop_the_service_at_start(
    secret_files: dict[str, Path], settings: dict[str, str], problem: str
) -> None:
    values: dict[str, Any] = {
        key: secret_files[value] if key.endswith("_file") else value
        for key, value in settings.items()
    }

    with pytest.raises(ValidationError, match=problem) as raised:
        Settings(**values)
    _assert_no_secret_in(str(raised.value))


def test_a_missing_or_empty_secret_file_stops_the_service_naming_the_file(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "missing"
    empty = tmp_path / "empty"
    empty.write_text("\n", encoding="utf-8")

    for path, reason in ((missing, "cannot read"), (empty, "is empty")):
        with pytest.raises(ValidationError) as raised:
            Settings(
                kafka_sasl_mechanism="SCRAM-SHA-512",
                kafka_sasl_username="qinglian",
                kafka_sasl_password_file=path,
            )
        message = str(raised.value)
        assert "QINGLIAN_KAFKA_SASL_PASSWORD_FILE" in message
        assert str(path) in message
        assert reason in message


def test_only_scram_sha_512_is_accepted() -> None:
    with pytest.raises(ValidationError, match="kafka_sasl_mechanism"):
        Settings(kafka_sasl_mechanism="PLAIN")


# --- ... and never show them ---------------------------------------------------------------


def test_secrets_are_not_in_the_settings_repr_str_or_dumps(
    secured: Settings, secret_files: dict[str, Path]
) -> None:
    with_url = Settings(mongo_url_file=secret_files["mongo_url"])

    for settings in (secured, with_url):
        for shown in (
            repr(settings),
            str(settings),
            f"{settings}",
            settings.model_dump_json(),
            repr(settings.model_dump()),
            repr(settings.kafka_credentials()),
            repr(settings.mongo_credentials()),
            repr(settings.mongo_client_url()),
        ):
            _assert_no_secret_in(shown)


def test_secrets_are_not_logged_while_building_the_clients(
    secured: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("qinglian.test")
    with caplog.at_level(logging.DEBUG):
        logger.info("settings: %s", secured)
        logger.info("settings: %r", secured)
        broker = make_broker(secured, service="router", registry=CollectorRegistry())
        logger.info("broker: %r", broker)
        client = connect(secured)
        logger.info("store client: %r", client)
        logger.info("kafka security: %r", kafka_security(secured))

    assert caplog.records, "nothing was logged: the test would prove nothing"
    _assert_no_secret_in(caplog.text)


# --- Every Kafka client gets the same security -----------------------------------------------


def test_make_broker_gets_the_sasl_security(secured: Settings) -> None:
    broker = make_broker(secured, service="router", registry=CollectorRegistry())

    security = broker.specification.security
    assert isinstance(security, SASLScram512)
    assert (security.username, security.password) == ("qinglian", KAFKA_PASSWORD)
    # The consumers FastStream builds for the subscribers (which the lag gauge reads) and
    # the producer connect with the same options.
    builder = broker.config.broker_config.builder
    assert isinstance(builder, functools.partial)
    for options in (builder.keywords, broker._connection_kwargs):
        assert options["security_protocol"] == "SASL_PLAINTEXT"
        assert options["sasl_mechanism"] == "SCRAM-SHA-512"
        assert options["sasl_plain_username"] == "qinglian"
        assert options["sasl_plain_password"] == KAFKA_PASSWORD


def test_make_broker_without_credentials_has_no_security() -> None:
    broker = make_broker(Settings(), service="router", registry=CollectorRegistry())

    builder = broker.config.broker_config.builder
    assert broker.specification.security is None
    assert isinstance(builder, functools.partial)
    assert "sasl_mechanism" not in builder.keywords


def test_the_client_options_carry_the_sasl_settings(secured: Settings) -> None:
    assert kafka_client_options(secured) == {
        "bootstrap_servers": "kafka:9092",
        "security_protocol": "SASL_PLAINTEXT",
        "ssl_context": None,
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "qinglian",
        "sasl_plain_password": KAFKA_PASSWORD,
    }


async def test_aiokafka_clients_take_the_client_options(secured: Settings) -> None:
    options = kafka_client_options(secured)
    clients = [
        AIOKafkaAdminClient(**options)._client,
        AIOKafkaConsumer(**options, enable_auto_commit=False)._client,
        AIOKafkaProducer(**options, acks="all", enable_idempotence=True).client,
    ]

    for client in clients:
        assert client._security_protocol == "SASL_PLAINTEXT"
        assert client._sasl_mechanism == "SCRAM-SHA-512"
        assert client._sasl_plain_username == "qinglian"
        assert client._sasl_plain_password == KAFKA_PASSWORD


class _RecordingAdmin:
    created_with: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any) -> None:
        _RecordingAdmin.created_with = options

    async def start(self) -> None:
        return None

    async def list_topics(self) -> list[str]:
        return ["qinglian.cases.v1"]

    async def create_topics(self, topics: list[Any]) -> None:
        return None

    async def close(self) -> None:
        return None


async def test_ensure_topics_creates_topics_with_the_sasl_settings(
    secured: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broker_module, "AIOKafkaAdminClient", _RecordingAdmin)

    await ensure_topics(secured, ("qinglian.cases.v1",))

    assert _RecordingAdmin.created_with == kafka_client_options(secured)


KAFKA_CLIENTS = {"AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient", "KafkaBroker"}


def _kafka_client_calls() -> Iterator[tuple[str, ast.Call]]:
    for path in sorted((REPO_ROOT / "services").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in KAFKA_CLIENTS:
                    yield f"{path.relative_to(REPO_ROOT)}:{node.lineno} {name}", node


def test_every_kafka_client_the_services_create_gets_its_security_from_the_helper() -> None:
    """A new client built with only bootstrap_servers would connect without logging in and
    be refused by the production broker: every one takes kafka_client_options (or, for the
    broker, kafka_security)."""
    calls = dict(_kafka_client_calls())
    unsecured = []
    for where, call in calls.items():
        if where.endswith("KafkaBroker"):
            helpers = [kw.value for kw in call.keywords if kw.arg == "security"]
            expected = "kafka_security"
        else:
            helpers = [kw.value for kw in call.keywords if kw.arg is None]  # **options
            expected = "kafka_client_options"
        if not any(
            isinstance(helper, ast.Call) and getattr(helper.func, "id", None) == expected
            for helper in helpers
        ):
            unsecured.append(where)

    assert len(calls) >= 7, f"the scan found too few Kafka clients: {sorted(calls)}"
    assert unsecured == [], f"Kafka clients built without the helper: {unsecured}"
