"""Oversized request bodies get 413 with an OGC exception body, whether or not they announce their length."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.main import create_app
from tests.api.conftest import LiveServer
from twin.settings import ApiSettings, Settings
from twin.store.geopackage import GeoPackageStore


@pytest.fixture(scope="module")
def small_limit(sample_path: Path) -> Iterator[str]:
    store = GeoPackageStore(sample_path, readonly=True)
    settings = Settings(api=ApiSettings(max_body_bytes=2_000))
    with LiveServer(create_app(settings, store=store)) as live:
        yield live.url
    store.close()


def _polygon(points: int) -> dict:
    ring = [[114.02 + 0.00001 * i, 22.61] for i in range(points)] + [[114.02, 22.611], [114.02, 22.61]]
    return {"geometry": {"type": "Polygon", "coordinates": [ring]}}


def test_a_body_under_the_limit_is_served(small_limit: str) -> None:
    response = httpx.post(f"{small_limit}/rasters/dem/zonal", json=_polygon(3))
    assert response.status_code == 200


def test_a_body_over_the_limit_is_413(small_limit: str) -> None:
    response = httpx.post(f"{small_limit}/rasters/dem/zonal", json=_polygon(200))
    assert response.status_code == 413
    assert response.json() == {"code": "PayloadTooLarge", "status": 413,
                               "description": "request body is larger than 2,000 bytes"}


def test_a_streamed_body_over_the_limit_is_413(small_limit: str) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(50):
            yield b" " * 100

    response = httpx.post(f"{small_limit}/rasters/dem/zonal", content=chunks(),
                          headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["code"] == "PayloadTooLarge"


def test_a_streamed_body_under_the_limit_reaches_the_route(small_limit: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"geometry": {"type": "Point",'
        yield b' "coordinates": [114.0239, 22.6119]}}'

    response = httpx.post(f"{small_limit}/rasters/dem/zonal", content=chunks(),
                          headers={"content-type": "application/json"})
    assert response.status_code == 200 and response.json()["zones"][0]["count"] >= 1
