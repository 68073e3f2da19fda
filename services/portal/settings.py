import logging
import secrets
from pathlib import Path

from pydantic import SecretStr, model_validator

from services.common.settings import ServiceSettings, read_secret

logger = logging.getLogger(__name__)

MIN_KEY_CHARACTERS = 32


class PortalSettings(ServiceSettings):
    http_port: int = 8106

    portal_key: SecretStr | None = None
    """The key of the HMACs wrong follow-up codes are counted under (of the reporter's address
    and the code's group, never the address itself): 32 characters or more, the same for
    every portal instance."""
    portal_key_file: Path | None = None
    """A file holding that key, e.g. a container secret; used when portal_key is unset."""
    development_key_file: Path = Path(".local/secrets/portal.key")
    """Development only: where a generated key is kept when neither of the above is set."""

    max_body_bytes: int = 64 * 1024
    kafka_check_seconds: float = 5.0
    """How long the portal waits for Kafka to answer before it publishes; unanswered: 503."""

    follow_up_failures_allowed: int = 10
    follow_up_failure_window_seconds: int = 900
    """Wrong follow-up codes allowed per client address and code group in any window of this
    length, then 429 (counted in the store: every instance must be given the same values)."""

    @model_validator(mode="after")
    def _key_required_outside_development(self) -> "PortalSettings":
        if self.env != "development" and self.portal_key is None and self.portal_key_file is None:
            raise ValueError(
                "QINGLIAN_PORTAL_KEY or QINGLIAN_PORTAL_KEY_FILE must be set outside development"
            )
        return self

    def address_key(self) -> bytes:
        if self.portal_key is not None:
            key = self.portal_key
        elif self.portal_key_file is not None:
            key = read_secret(self.portal_key_file, "portal_key_file")
        else:
            key = SecretStr(self._development_key())
        if len(key.get_secret_value()) < MIN_KEY_CHARACTERS:
            raise ValueError(f"the portal key must be {MIN_KEY_CHARACTERS} characters or more")
        return key.get_secret_value().encode()

    def _development_key(self) -> str:
        path = self.development_key_file
        if not path.exists():
            logger.warning("development: generating a portal key in %s", path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_hex(32), encoding="ascii")
        return path.read_text(encoding="ascii").strip()
