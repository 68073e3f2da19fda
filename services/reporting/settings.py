from services.common.settings import ServiceSettings


class ReportingSettings(ServiceSettings):
    http_port: int = 8104
