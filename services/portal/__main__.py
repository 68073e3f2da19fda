from services.common.service import serve
from services.portal.main import create_app
from services.portal.settings import PortalSettings

serve("portal", PortalSettings, create_app)
