from pathlib import Path

from services.common.settings import ServiceSettings


class EscalationSettings(ServiceSettings):
    http_port: int = 8103
    rules: Path = Path(__file__).with_name("rules.toml")
    clock_check_seconds: float = 60.0
    """How often overdue cases and expiring cut-offs are looked at again."""
