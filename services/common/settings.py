"""Settings from the environment (prefix ``QINGLIAN_``), with defaults for local runs."""

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every service needs; each service subclasses it with its own HTTP port."""

    model_config = SettingsConfigDict(env_prefix="QINGLIAN_", extra="ignore", frozen=True)

    env: Literal["development", "production"] = "development"
    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_partitions: int = 3
    kafka_replication: int = 1
    kafka_group_prefix: str = "qinglian-"
    """Consumer groups are named prefix + service; another prefix starts a separate reader."""
    mongo_url: str = "mongodb://127.0.0.1:27018/"
    mongo_db: str = "qinglian"
    http_host: str = "127.0.0.1"
    http_port: int
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    retry_backoff_max_seconds: float = 10.0
    """Longest pause before a failed message is handled again."""
    max_handler_attempts: int = 5
    """Attempts before a record that keeps failing (not for an outage) is dead-lettered."""

    def consumer_group(self, service: str) -> str:
        return f"{self.kafka_group_prefix}{service}"
