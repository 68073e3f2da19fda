from services.common.service import serve
from services.router.main import create_app
from services.router.settings import RouterSettings

serve("router", RouterSettings, create_app)
