"""App assembly: routers, error handlers and a lifespan that opens and closes the store. Nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.limits import BodyLimit
from api.routes import buildings, collections, items, landing, rasters, tiles
from twin.settings import Settings
from twin.store.base import Store
from twin.store.opening import open_store


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> FastAPI:
    """Build the service. Pass ``store`` to serve an already-open store (the caller then closes it)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = store is None
        app.state.store = store if store is not None else open_store(settings=settings.store)
        try:
            yield
        finally:
            if owned:
                app.state.store.close()

    app = FastAPI(title=settings.api.title, version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.api.max_body_bytes)
    app.include_router(landing.router)
    app.include_router(collections.router)
    app.include_router(items.router)
    app.include_router(tiles.router)
    app.include_router(rasters.router)
    app.include_router(buildings.router)
    return app
