from services.common.web import serve
from services.reporting.main import create_app
from services.reporting.settings import ReportingSettings

settings = ReportingSettings()
serve(create_app(settings), settings)
