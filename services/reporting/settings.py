from pathlib import Path

from services.common.departments import DEPARTMENTS_FILE
from services.common.settings import ServiceSettings
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
    session_hours: float = 12.0
    """How long a dashboard sign-in lasts before the browser must sign in again."""
    gauge_refresh_seconds: float = 30.0
    """How often the open and overdue case gauges are recomputed."""
