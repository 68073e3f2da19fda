from services.common.web import serve
from services.escalation.main import create_app
from services.escalation.settings import EscalationSettings

settings = EscalationSettings()
serve(create_app(settings), settings)
