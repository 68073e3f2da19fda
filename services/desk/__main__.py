from services.common.service import serve
from services.desk.main import create_app
from services.desk.settings import DeskSettings

serve("desk", DeskSettings, create_app)
