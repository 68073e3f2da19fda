from pathlib import Path
from typing import Self

from pydantic import PrivateAttr, SecretStr, model_validator

from services.common.departments import DEPARTMENTS_FILE
from services.common.settings import ServiceSettings, read_secret
from services.reporting.kpi import TARGETS_FILE
from services.reporting.study import STUDY_FILE


class ReportingSettings(ServiceSettings):
    http_port: int = 8104
    departments: Path = DEPARTMENTS_FILE
    kpi_targets: Path = TARGETS_FILE
    study_rule: Path = STUDY_FILE
    """R-MONTHLY-STUDY's data: which sessions count as a month's study."""
    token_cache_seconds: float = 30.0
    """How long a verified report token is trusted; revocation takes up to this long."""
    gauge_refresh_seconds: float = 30.0
    """How often the open and overdue case gauges are recomputed."""

    desk_url: str = "http://127.0.0.1:8105"
    """Where reporting asks the desk who a browser is signed in as (``GET /v1/session``)."""
    desk_public_url: str = "http://127.0.0.1:8105"
    """The desk as browsers reach it: where a person signs in, and the case lists the
    dashboard's tiles open."""
    session_reader_key_file: Path | None = None
    """The key the desk gives reporting to ask who is signed in (the desk is given the same
    file). Without it no browser can sign in to the reports; required outside development."""
    desk_session_cache_seconds: float = 10.0
    """How long the desk's answer about a session is kept: a sign-out at the desk ends the
    reports' pages within this time."""

    _session_reader_key: SecretStr | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _read_key_file(self) -> Self:
        if self.session_reader_key_file is not None:
            self._session_reader_key = read_secret(
                self.session_reader_key_file, "session_reader_key_file"
            )
        elif self.env != "development":
            raise ValueError("QINGLIAN_SESSION_READER_KEY_FILE is required outside development")
        return self

    def session_reader_key(self) -> SecretStr | None:
        return self._session_reader_key
