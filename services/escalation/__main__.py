from services.common.service import serve
from services.escalation.main import create_app
from services.escalation.settings import EscalationSettings

serve("escalation", EscalationSettings, create_app)
