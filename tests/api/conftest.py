"""A real uvicorn server on a free local port, serving a store, for tests that speak HTTP."""

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
from twin.settings import Settings
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


@pytest.fixture(scope="session")
def sample_server(sample_path: Path) -> Iterator[str]:
    """The API over the (read-only) sample twin; yields its root URL."""
    store = GeoPackageStore(sample_path)
    with LiveServer(create_app(Settings(), store=store)) as live:
        yield live.url
    store.close()


@pytest.fixture
def http(sample_server: str) -> Iterator[httpx.Client]:
    """An HTTP client bound to the sample server."""
    with httpx.Client(base_url=sample_server, timeout=30) as client:
        yield client
