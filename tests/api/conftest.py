"""A real uvicorn server on a free local port, serving the sample twin from each store, for tests that speak HTTP.

The read-only API tests run once per backend: ``api_backend`` is a session fixture parametrized over
``geopackage`` and ``postgis`` (the latter marked ``postgis``, so a run that requires PostGIS fails if it is
skipped). ``api_store`` is the sample twin in that backend, ``sample_server`` (alias ``api_server``) the service
over it; ``private_sample`` gives a test its own writable copy of the sample in the same backend.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from api.main import create_app
from tests.api.backends import NAMES, PostGISSample, private_store
from tests.conftest import postgis_url
from twin.settings import Settings
from twin.store.base import Store
from twin.store.geopackage import GeoPackageStore


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """uvicorn in a background thread; ``url`` is its root."""

    def __init__(self, app: object):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


#: The API tests' backends; the PostGIS one carries ``pytest.mark.postgis``.
API_BACKENDS = [pytest.param(name, marks=[pytest.mark.postgis] if name == "postgis" else []) for name in NAMES]


@pytest.fixture(scope="session")
def pg_sample(sample_path: Path) -> Iterator[PostGISSample]:
    """The sample twin loaded into a PostGIS template database (skips without ``TWIN_TEST_DATABASE_URL``)."""
    sample = PostGISSample(postgis_url(), sample_path)
    yield sample
    sample.close()


@pytest.fixture(scope="session", params=API_BACKENDS)
def api_backend(request: pytest.FixtureRequest) -> str:
    """The store engine the API is tested on: ``geopackage`` or ``postgis``."""
    return str(request.param)


def _pg(request: pytest.FixtureRequest, backend: str) -> PostGISSample | None:
    return request.getfixturevalue("pg_sample") if backend == "postgis" else None


@pytest.fixture(scope="session")
def api_store(api_backend: str, sample_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """The sample twin in the backend's store, served read-only by ``sample_server``."""
    pg = _pg(request, api_backend)
    if pg is None:
        store: Store = GeoPackageStore(sample_path)
        yield store
        store.close()
        return
    from twin.store.postgis import PostGISStore

    url = pg.copy()
    store = PostGISStore(url, raster_dir=pg.raster_dir)
    yield store
    store.close()


@pytest.fixture(scope="session")
def sample_server(api_store: Store) -> Iterator[str]:
    """The API over the (read-only) sample twin in the backend's store; yields its root URL."""
    with LiveServer(create_app(Settings(), store=api_store)) as live:
        yield live.url


@pytest.fixture(scope="session")
def api_server(sample_server: str) -> str:
    """The read-only server's root URL (``sample_server`` under the name the backend-parametrized tests use)."""
    return sample_server


@pytest.fixture
def private_sample(api_backend: str, sample_path: Path, tmp_path: Path,
                   request: pytest.FixtureRequest) -> Iterator[tuple[Store, str]]:
    """A private, writable copy of the sample in the backend's store, and where it lives (path or URL)."""
    with private_store(api_backend, sample_path, tmp_path, _pg(request, api_backend)) as made:
        yield made


@pytest.fixture
def http(sample_server: str) -> Iterator[httpx.Client]:
    """An HTTP client bound to the sample server."""
    with httpx.Client(base_url=sample_server, timeout=30) as client:
        yield client
