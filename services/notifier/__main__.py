from services.common.service import serve
from services.notifier.main import create_app
from services.notifier.settings import NotifierSettings

serve("notifier", NotifierSettings, create_app)
