import logging
import secrets
from pathlib import Path

from pydantic import SecretStr, model_validator

from schemas.attachment import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS
from services.common.departments import DEPARTMENTS_FILE
from services.common.settings import ServiceSettings, read_secret

logger = logging.getLogger(__name__)

MIN_KEY_CHARACTERS = 32


class PortalSettings(ServiceSettings):
    http_port: int = 8106
    departments: Path = DEPARTMENTS_FILE

    portal_key: SecretStr | None = None
    """The key of the HMACs wrong follow-up codes and ratings are counted under (of the
    reporter's address and the code's group, of a device: never the address itself): 32
    characters or more, the same for every portal instance."""
    portal_key_file: Path | None = None
    """A file holding that key, e.g. a container secret; used when portal_key is unset."""
    development_key_file: Path = Path(".local/secrets/portal.key")
    """Development only: where a generated key is kept when neither of the above is set."""

    portal_qr_key_file: Path | None = None
    """The key the 扫码评价 QR codes are signed with (32 characters or more). A key of its own,
    so that the printed sheets stay valid when the counting key changes; replacing it voids
    every printed sheet. Required outside development."""
    development_qr_key_file: Path = Path(".local/secrets/portal_qr.key")

    intake_url: str = "http://127.0.0.1:8101"
    intake_api_key_file: Path | None = None
    """The portal's API key for intake (source system ``portal``, scopes complaint,
    satisfaction and attachment_write): complaints, their files and ratings go through intake,
    which seals the contact and the files and gives the follow-up code. Without it the forms
    answer that nothing could be sent; required outside development."""
    public_url: str = "http://127.0.0.1:8106"
    """Where patients reach the portal: the QR codes point there."""

    max_body_bytes: int = 64 * 1024
    max_form_with_files_bytes: int = MAX_ATTACHMENTS * MAX_ATTACHMENT_BYTES + 256 * 1024
    """The complaint form and the addition form, with their files (5 of 10 MB at most, each
    refused by name on the page when over; a body over this is refused before it is read)."""
    kafka_check_seconds: float = 5.0
    """How long the portal waits for Kafka to answer before it publishes; unanswered: 503."""

    follow_up_failures_allowed: int = 10
    follow_up_failure_window_seconds: int = 900
    """Wrong follow-up codes allowed per client address and code group in any window of this
    length, then 429 (counted in the store: every instance must be given the same values)."""
    ratings_per_device: int = 1
    ratings_per_address: int = 60
    rating_window_seconds: int = 6 * 3600
    """Ratings allowed in any window of this length from one device (its cookie) for one
    sheet (touchpoint and department), and from one address for all sheets together."""

    @model_validator(mode="after")
    def _keys_required_outside_development(self) -> "PortalSettings":
        if self.env == "development":
            return self
        if self.portal_key is None and self.portal_key_file is None:
            raise ValueError(
                "QINGLIAN_PORTAL_KEY or QINGLIAN_PORTAL_KEY_FILE must be set outside development"
            )
        for setting in ("portal_qr_key_file", "intake_api_key_file"):
            if getattr(self, setting) is None:
                raise ValueError(f"QINGLIAN_{setting.upper()} must be set outside development")
        return self

    def address_key(self) -> bytes:
        if self.portal_key is not None:
            key = self.portal_key
        elif self.portal_key_file is not None:
            key = read_secret(self.portal_key_file, "portal_key_file")
        else:
            key = SecretStr(_development_key(self.development_key_file))
        return _long_enough(key, "the portal key")

    def qr_key(self) -> bytes:
        if self.portal_qr_key_file is not None:
            key = read_secret(self.portal_qr_key_file, "portal_qr_key_file")
        else:
            key = SecretStr(_development_key(self.development_qr_key_file))
        return _long_enough(key, "the portal's QR key")

    def intake_api_key(self) -> SecretStr | None:
        if self.intake_api_key_file is None:
            return None
        return read_secret(self.intake_api_key_file, "intake_api_key_file")


def _long_enough(key: SecretStr, what: str) -> bytes:
    if len(key.get_secret_value()) < MIN_KEY_CHARACTERS:
        raise ValueError(f"{what} must be {MIN_KEY_CHARACTERS} characters or more")
    return key.get_secret_value().encode()


def _development_key(path: Path) -> str:
    if not path.exists():
        logger.warning("development: generating a key in %s", path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32), encoding="ascii")
    return path.read_text(encoding="ascii").strip()
