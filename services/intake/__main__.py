from services.common.service import serve
from services.intake.main import create_app
from services.intake.settings import IntakeSettings

serve("intake", IntakeSettings, create_app)
