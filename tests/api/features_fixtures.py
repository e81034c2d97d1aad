"""Fixtures of the OGC API – Features tests: the sample store, a staff key, and a server with small page limits.

``staff`` and ``small`` follow ``api_backend`` (both stores); ``sample_store`` is the GeoPackage sample, the
reference every backend's answers are compared with.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.main import create_app
from tests.api.backends import private_store
from tests.api.conftest import LiveServer
from twin.auth import create_key
from twin.settings import ApiSettings, Settings
from twin.store.base import Store
from twin.store.geopackage import GeoPackageStore

__all__ = ["sample_store", "small", "staff"]  # what a test module's star import brings in: the fixtures


@pytest.fixture(scope="session")
def sample_store(sample_path: Path) -> Iterator[GeoPackageStore]:
    """The sample twin, read-only, to compare the API's answers with."""
    store = GeoPackageStore(sample_path, readonly=True)
    yield store
    store.close()


@pytest.fixture(scope="session")
def staff(api_backend: str, sample_path: Path, tmp_path_factory: pytest.TempPathFactory,
          request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    """A client with an inspector's API key, on a server over a private copy of the sample (backend's store)."""
    pg = request.getfixturevalue("pg_sample") if api_backend == "postgis" else None
    with private_store(api_backend, sample_path, tmp_path_factory.mktemp("staff"), pg) as (store, _):
        key = create_key(store, "inspector", "features tests")[1]
        with LiveServer(create_app(Settings(), store=store)) as live, \
                httpx.Client(base_url=live.url, timeout=60, headers={"X-API-Key": key}) as client:
            yield client


@pytest.fixture(scope="session")
def small(api_store: Store) -> Iterator[httpx.Client]:
    """A client on a server (over the backend's sample) whose default page is 7 items and whose maximum is 50."""
    settings = Settings(api=ApiSettings(default_limit=7, max_limit=50))
    with LiveServer(create_app(settings, store=api_store)) as live, \
            httpx.Client(base_url=live.url, timeout=60) as client:
        yield client


def assert_ogc_error(response: httpx.Response, status: int) -> dict:
    """An OGC exception body with the given status, and no traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"code", "description"} and body["status"] == status
    assert "Traceback" not in body["description"]
    return body
