"""App assembly: routers, error handlers and a lifespan that opens and closes the store. Nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware

from api.errors import install_error_handlers
from api.limits import BodyLimit
from api.routes import alarms, buildings, collections, ingest, items, landing, rasters, screens, sensors, tiles
from twin.iot import IotRuntime, IotSettings
from twin.settings import Settings
from twin.store.base import Store
from twin.store.opening import open_store

#: Smallest response body worth compressing.
GZIP_MIN_BYTES = 1024


def create_app(settings: Settings | None = None, *, store: Store | None = None,
               iot: IotSettings | None = None) -> FastAPI:
    """Build the service. Pass ``store`` to serve an already-open store (the caller then closes it).

    The lifespan also runs the live IoT pipeline (``iot``, default from ``TWIN_IOT_*``/``TWIN_MQTT_*``): the MQTT
    ingester when ``TWIN_MQTT_URL`` is set, the alarm engine and the event stream.
    """
    settings = settings or Settings()
    iot = iot or IotSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = store is None
        app.state.store = store if store is not None else open_store(settings=settings.store)
        app.state.iot = IotRuntime(app.state.store, iot)
        app.state.iot.start()
        try:
            yield
        finally:
            app.state.iot.stop()
            if owned:
                app.state.store.close()

    app = FastAPI(title=settings.api.title, version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.api.max_body_bytes)
    # responses of 1 KiB or more go gzip-compressed to clients that accept it (JSON, GeoJSON, HTML, scripts);
    # event streams and PNGs are left alone, and tiles arrive already compressed (api.routes.tiles)
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES, compresslevel=6)
    app.include_router(landing.router)
    app.include_router(collections.router)
    app.include_router(items.router)
    app.include_router(tiles.router)
    app.include_router(rasters.router)
    app.include_router(buildings.router)
    app.include_router(ingest.router)
    app.include_router(alarms.router)
    app.include_router(sensors.router)
    app.include_router(screens.router)
    return app
