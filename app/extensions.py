"""Unbound extension singletons; `create_app` binds them. Imports only the core base."""

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from app.core.db import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
# Limits are declared per route; the storage URI comes from config (memory or Redis).
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)
api = Api()
