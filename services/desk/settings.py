import json
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from services.common.acknowledge_links import DEVELOPMENT_KEY
from services.common.addressees import ADDRESSEES_FILE
from services.common.departments import DEPARTMENTS_FILE
from services.common.roles import Role
from services.common.settings import ServiceSettings, read_secret


class DeskSettings(ServiceSettings):
    http_port: int = 8105
    departments: Path = DEPARTMENTS_FILE
    addressees: Path = ADDRESSEES_FILE
    """Who is told what (the notifier's directory): who may acknowledge which notification."""
    conduct_office_department: str = "medical_affairs"
    """The department the conduct office (行风办) belongs to: a case against its head is a
    conflict of the office's own, which it does not see (纪检监察室 does)."""

    intake_url: str = "http://127.0.0.1:8101"
    intake_api_key_file: Path | None = None
    """The desk's API key for intake (source system ``desk``, scopes case_action,
    investigation_finding, follow_up_reply, attachment_read). Without it the desk shows cases
    but cannot act or open the reporters' files; required outside development."""
    reporting_url: str = "http://127.0.0.1:8104"
    """Where the reports and dashboard are, for the link in the desk's menu."""
    session_reader_key_file: Path | None = None
    """A key that lets another service (reporting) ask ``GET /v1/session`` who a browser is.
    Unset: nobody may ask."""

    ack_link_key_file: Path | None = None
    """The key the notifier signs acknowledge links with (the same file as the notifier's);
    required outside development."""

    session_idle_minutes: float = 30.0
    session_hours: float = 12.0
    sign_in_failures_per_account: int = 5
    sign_in_failures_per_address: int = 20
    sign_in_failure_window_minutes: float = 15.0
    page_size: int = 50
    index_refresh_seconds: float = 2.0
    """How often the case list takes in what other desk instances stored."""

    ldap_url: str | None = None
    """The hospital's directory (ldap://host:389); unset: local accounts only."""
    ldap_base_dn: str = ""
    ldap_user_attribute: str = "uid"
    ldap_bind_dn: str | None = None
    """A service account to search the directory with; unset: anonymous search."""
    ldap_bind_password_file: Path | None = None
    ldap_group_roles: Annotated[dict[str, Role], NoDecode] = Field(default_factory=dict)
    """Directory group (its DN) → desk role, as JSON (``{"cn=xfb,ou=groups,dc=h":
    "conduct_office"}``); a person in several gets the first listed."""
    ldap_staff_id_attribute: str = "employeeNumber"
    ldap_department_attribute: str = "departmentNumber"
    ldap_name_attribute: str = "cn"

    _intake_api_key: SecretStr | None = PrivateAttr(default=None)
    _session_reader_key: SecretStr | None = PrivateAttr(default=None)
    _ldap_bind_password: SecretStr | None = PrivateAttr(default=None)
    _ack_link_key: SecretStr = PrivateAttr(default=SecretStr(DEVELOPMENT_KEY.decode()))

    @field_validator("ldap_group_roles", mode="before")
    @classmethod
    def _json_mapping(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError:
                raise ValueError("QINGLIAN_LDAP_GROUP_ROLES: not JSON") from None
        return value

    @model_validator(mode="after")
    def _read_key_files(self) -> Self:
        if self.intake_api_key_file is not None:
            self._intake_api_key = read_secret(self.intake_api_key_file, "intake_api_key_file")
        elif self.env != "development":
            raise ValueError("QINGLIAN_INTAKE_API_KEY_FILE is required outside development")
        if self.session_reader_key_file is not None:
            self._session_reader_key = read_secret(
                self.session_reader_key_file, "session_reader_key_file"
            )
        if self.ldap_bind_password_file is not None:
            self._ldap_bind_password = read_secret(
                self.ldap_bind_password_file, "ldap_bind_password_file"
            )
        if self.ack_link_key_file is not None:
            self._ack_link_key = read_secret(self.ack_link_key_file, "ack_link_key_file")
        elif self.env != "development":
            raise ValueError("QINGLIAN_ACK_LINK_KEY_FILE is required outside development")
        return self

    def intake_api_key(self) -> SecretStr | None:
        return self._intake_api_key

    def session_reader_key(self) -> SecretStr | None:
        return self._session_reader_key

    def ack_link_key(self) -> SecretStr:
        return self._ack_link_key

    def ldap_bind_password(self) -> SecretStr | None:
        return self._ldap_bind_password
