from services.common.service import serve
from services.reporting.main import create_app
from services.reporting.settings import ReportingSettings

serve("reporting", ReportingSettings, create_app)
