from pathlib import Path

from services.common.settings import ServiceSettings


class RouterSettings(ServiceSettings):
    http_port: int = 8102
    routing_table: Path = Path(__file__).with_name("routing_table.toml")
