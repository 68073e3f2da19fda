from pathlib import Path

from services.common.departments import DEPARTMENTS_FILE
from services.common.settings import ServiceSettings

_HERE = Path(__file__).parent


class RouterSettings(ServiceSettings):
    http_port: int = 8102
    departments: Path = DEPARTMENTS_FILE
    routing_table: Path = _HERE / "routing_table.toml"
