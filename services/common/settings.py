"""Settings from the environment (prefix ``QINGLIAN_``), with defaults for local runs.

Credentials are never settings values: settings name the files that hold them (container
secrets under ``/run/secrets/``). The files are read once, when the settings are built, so a
missing or empty one stops the service at start; what they hold is kept in private
``SecretStr`` attributes, out of ``repr``, ``str``, ``model_dump`` and therefore out of logs.
Local runs and tests set none of them: Kafka without authentication, MongoDB without login.
"""

import ipaddress
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

KafkaSaslMechanism = Literal["SCRAM-SHA-512"]


def read_secret(path: Path, setting: str) -> SecretStr:
    """What ``path`` holds, without surrounding whitespace (the newline an editor adds).

    Errors name the setting and the file, never what the file holds.
    """
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise ValueError(f"QINGLIAN_{setting.upper()}: cannot read {path} ({reason})") from None
    if not value:
        raise ValueError(f"QINGLIAN_{setting.upper()}: {path} is empty")
    return SecretStr(value)


class ServiceSettings(BaseSettings):
    """What every service needs; each service subclasses it with its own HTTP port."""

    model_config = SettingsConfigDict(env_prefix="QINGLIAN_", extra="ignore", frozen=True)

    env: Literal["development", "production"] = "development"
    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_partitions: int = 3
    kafka_replication: int = 1
    kafka_group_prefix: str = "qinglian-"
    """Consumer groups are named prefix + service; another prefix starts a separate reader."""
    kafka_sasl_mechanism: KafkaSaslMechanism | None = None
    """SASL mechanism of every Kafka client (broker, admin, rebuild and redrive consumers);
    unset, clients connect without authentication (the local runtime)."""
    kafka_sasl_username: str | None = None
    kafka_sasl_password_file: Path | None = None
    """The file holding the SASL user's password, e.g. /run/secrets/kafka_password."""
    mongo_url: str = "mongodb://127.0.0.1:27018/"
    mongo_url_file: Path | None = None
    """A file holding the whole MongoDB URL, credentials included; replaces mongo_url."""
    mongo_username_file: Path | None = None
    mongo_password_file: Path | None = None
    """Files holding the MongoDB user and password (authenticated against ``admin``); both or
    neither, and not with mongo_url_file."""
    mongo_db: str = "qinglian"
    http_host: str = "127.0.0.1"
    http_port: int
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    """Addresses or networks of the reverse proxies in front of the service, comma-separated
    ("10.0.0.5,172.18.0.0/16"): only from them is X-Forwarded-For believed about who the
    client is. Empty: the connecting address is the client, whatever a header claims."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    retry_backoff_max_seconds: float = 10.0
    """Longest pause before a failed message is handled again."""
    max_handler_attempts: int = 5
    """Attempts before a record that keeps failing (not for an outage) is dead-lettered."""

    _kafka_sasl_password: SecretStr | None = PrivateAttr(default=None)
    _mongo_url_secret: SecretStr | None = PrivateAttr(default=None)
    _mongo_username: SecretStr | None = PrivateAttr(default=None)
    _mongo_password: SecretStr | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _read_credential_files(self) -> Self:
        sasl_parts = (self.kafka_sasl_username, self.kafka_sasl_password_file)
        if self.kafka_sasl_mechanism is None:
            if any(part is not None for part in sasl_parts):
                raise ValueError(
                    "QINGLIAN_KAFKA_SASL_USERNAME and QINGLIAN_KAFKA_SASL_PASSWORD_FILE need "
                    "QINGLIAN_KAFKA_SASL_MECHANISM; without it Kafka clients would not log in"
                )
        else:
            if not self.kafka_sasl_username or self.kafka_sasl_password_file is None:
                raise ValueError(
                    "QINGLIAN_KAFKA_SASL_MECHANISM needs QINGLIAN_KAFKA_SASL_USERNAME and "
                    "QINGLIAN_KAFKA_SASL_PASSWORD_FILE"
                )
            self._kafka_sasl_password = read_secret(
                self.kafka_sasl_password_file, "kafka_sasl_password_file"
            )

        if (self.mongo_username_file is None) != (self.mongo_password_file is None):
            raise ValueError(
                "QINGLIAN_MONGO_USERNAME_FILE and QINGLIAN_MONGO_PASSWORD_FILE go together"
            )
        if self.mongo_url_file is not None and self.mongo_username_file is not None:
            raise ValueError(
                "QINGLIAN_MONGO_URL_FILE carries its own credentials; do not also set "
                "QINGLIAN_MONGO_USERNAME_FILE and QINGLIAN_MONGO_PASSWORD_FILE"
            )
        if self.mongo_url_file is not None:
            self._mongo_url_secret = read_secret(self.mongo_url_file, "mongo_url_file")
        if self.mongo_username_file is not None and self.mongo_password_file is not None:
            self._mongo_username = read_secret(self.mongo_username_file, "mongo_username_file")
            self._mongo_password = read_secret(self.mongo_password_file, "mongo_password_file")
        return self

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _addresses_or_networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        for proxy in value if isinstance(value, tuple | list) else ():
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"QINGLIAN_TRUSTED_PROXIES: {proxy!r} is not an IP address or network"
                ) from None
        return value

    def consumer_group(self, service: str) -> str:
        return f"{self.kafka_group_prefix}{service}"

    def kafka_credentials(self) -> tuple[str, SecretStr] | None:
        """The SASL user and password, or None when Kafka clients do not authenticate."""
        if self.kafka_sasl_username is None or self._kafka_sasl_password is None:
            return None
        return self.kafka_sasl_username, self._kafka_sasl_password

    def mongo_client_url(self) -> SecretStr:
        """The URL to connect to: mongo_url_file's when set (it may hold credentials)."""
        return self._mongo_url_secret or SecretStr(self.mongo_url)

    def mongo_credentials(self) -> tuple[SecretStr, SecretStr] | None:
        """The MongoDB user and password from their files, or None."""
        if self._mongo_username is None or self._mongo_password is None:
            return None
        return self._mongo_username, self._mongo_password
