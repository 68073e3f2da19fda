from services.common.web import serve
from services.intake.main import create_app
from services.intake.settings import IntakeSettings

settings = IntakeSettings()
serve(create_app(settings), settings)
