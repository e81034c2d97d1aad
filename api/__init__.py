"""The FastAPI service of the North Station twin: thin routers over ``twin``."""

from api.main import create_app

__all__ = ["create_app"]
