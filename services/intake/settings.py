import logging
from pathlib import Path

from pydantic import SecretStr, model_validator

from services.common.raw_senders import RAW_SENDERS_FILE
from services.common.settings import ServiceSettings
from services.intake.crypto import new_key, parse_key

logger = logging.getLogger(__name__)


class IntakeSettings(ServiceSettings):
    http_port: int = 8101

    contact_key: SecretStr | None = None
    """Master key (32 bytes, base64) sealing complainants' contact details and follow-up codes."""
    contact_key_file: Path | None = None
    """A file holding the master key, e.g. a container secret; used when contact_key is unset."""
    development_key_file: Path = Path(".local/secrets/contact.key")
    """Development only: where a generated key is kept when neither of the above is set."""

    max_event_bytes: int = 64 * 1024
    max_batch_events: int = 500
    max_batch_bytes: int = 8 * 1024 * 1024
    future_tolerance_seconds: int = 300
    """How far in the future an occurred_at may lie (clocks of other systems drift)."""

    kafka_check_seconds: float = 5.0
    """How long intake waits for Kafka to answer before it publishes; unanswered: 503."""

    api_key_cache_seconds: float = 30.0
    """How long a verified API key is trusted without asking the store; bounds revocation delay."""

    raw_senders: Path = RAW_SENDERS_FILE
    """The systems that publish to Kafka directly: their topics, source systems, event types."""

    @model_validator(mode="after")
    def _key_required_outside_development(self) -> "IntakeSettings":
        if self.env != "development" and self.contact_key is None and self.contact_key_file is None:
            raise ValueError(
                "QINGLIAN_CONTACT_KEY or QINGLIAN_CONTACT_KEY_FILE must be set outside development"
            )
        return self

    def master_key(self) -> bytes:
        if self.contact_key is not None:
            return parse_key(self.contact_key.get_secret_value())
        if self.contact_key_file is not None:
            return parse_key(self.contact_key_file.read_text(encoding="ascii"))
        path = self.development_key_file
        if not path.exists():
            logger.warning("development: generating a contact key in %s", path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(new_key(), encoding="ascii")
        return parse_key(path.read_text(encoding="ascii"))
