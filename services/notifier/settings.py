from pathlib import Path
from typing import Self

from pydantic import AwareDatetime, PrivateAttr, SecretStr, model_validator

from services.common.acknowledge_links import DEVELOPMENT_KEY
from services.common.addressees import ADDRESSEES_FILE
from services.common.departments import DEPARTMENTS_FILE
from services.common.settings import ServiceSettings, read_secret


class NotifierSettings(ServiceSettings):
    http_port: int = 8107
    departments: Path = DEPARTMENTS_FILE
    addressees: Path = ADDRESSEES_FILE
    desk_url: str = "http://127.0.0.1:8105"
    """The desk's address as people reach it: case pages and acknowledge links point there."""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_starttls: bool = False
    """Upgrade the connection with STARTTLS before anything is sent (required outside
    development unless the relay is on the same machine)."""
    smtp_ca_file: Path | None = None
    """CA certificates (PEM) the relay's certificate is checked against, e.g. the hospital's
    own CA; unset: the system's."""
    smtp_username_file: Path | None = None
    smtp_password_file: Path | None = None
    smtp_timeout_seconds: float = 20.0
    mail_from: str = "qinglian-notifier@hospital.example"
    message_id_domain: str = "qinglian.notifier"
    robot_timeout_seconds: float = 10.0

    send_every_seconds: float = 1.0
    """How often the outbox is looked at for what is due (a removal alert waits at most this)."""
    send_claim_seconds: float = 60.0
    """How long a sender holds a notification it sends; a notifier killed mid-send leaves it
    to be sent again (same id) once this has passed. Longer than an SMTP or robot timeout."""
    max_attempts: int = 10
    first_retry_seconds: float = 5.0
    longest_retry_seconds: float = 900.0
    follow_up_every_seconds: float = 60.0
    """How often unacknowledged notifications are looked at for reminders and escalation."""
    notify_decided_from: AwareDatetime | None = None
    """Decisions escalation made before this moment (RFC 3339) are not notified: set it to the
    time the notifier is added to a system that already holds decisions, which it would
    otherwise send all at once (it reads the decisions topic from its start)."""
    ack_link_key_file: Path | None = None
    """The key acknowledge links are signed with; the desk is given the same file."""
    ack_link_days: float = 14.0

    _smtp_credentials: tuple[SecretStr, SecretStr] | None = PrivateAttr(default=None)
    _ack_link_key: SecretStr = PrivateAttr(default=SecretStr(DEVELOPMENT_KEY.decode()))

    @model_validator(mode="after")
    def _read_secret_files(self) -> Self:
        if (self.smtp_username_file is None) != (self.smtp_password_file is None):
            raise ValueError(
                "QINGLIAN_SMTP_USERNAME_FILE and QINGLIAN_SMTP_PASSWORD_FILE go together"
            )
        if self.smtp_username_file is not None and self.smtp_password_file is not None:
            self._smtp_credentials = (
                read_secret(self.smtp_username_file, "smtp_username_file"),
                read_secret(self.smtp_password_file, "smtp_password_file"),
            )
        if self.ack_link_key_file is not None:
            self._ack_link_key = read_secret(self.ack_link_key_file, "ack_link_key_file")
        elif self.env != "development":
            raise ValueError("QINGLIAN_ACK_LINK_KEY_FILE is required outside development")
        return self

    def smtp_credentials(self) -> tuple[SecretStr, SecretStr] | None:
        return self._smtp_credentials

    def ack_link_key(self) -> SecretStr:
        return self._ack_link_key
