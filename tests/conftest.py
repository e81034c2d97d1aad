"""Shared fixtures, and the rule that PostGIS tests may not be skipped when TWIN_REQUIRE_POSTGIS=1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from twin.samplebuild import copy_sample
from twin.settings import StoreSettings

_skipped_postgis: list[str] = []


def postgis_url() -> str:
    """The PostGIS test database URL; skips the test when there is none (which fails a required run)."""
    url = os.environ.get("TWIN_TEST_DATABASE_URL")
    if not url:
        pytest.skip("TWIN_TEST_DATABASE_URL is not set (scripts/test.sh sets it)")
    return url


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "postgis" in report.keywords:
        _skipped_postgis.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("TWIN_REQUIRE_POSTGIS") == "1" and _skipped_postgis:
        print(f"\nFAIL: {len(_skipped_postgis)} PostGIS test(s) were skipped but TWIN_REQUIRE_POSTGIS=1:")
        for nodeid in _skipped_postgis[:20]:
            print(f"  {nodeid}")
        session.exitstatus = 1


@pytest.fixture(scope="session")
def sample_path() -> Path:
    """The sample twin's GeoPackage, built once (into sample_gis/) and shared read-only by the tests."""
    from twin.samplebuild import ensure_sample

    return ensure_sample(StoreSettings().sample_dir)


@pytest.fixture
def sample_copy(sample_path: Path, tmp_path: Path) -> Iterator[Path]:
    """A private, writable copy of the sample twin (GeoPackage and rasters)."""
    copy_sample(sample_path, tmp_path)
    yield tmp_path / sample_path.name


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium (one per session) for the tests that open pages (see ``tests/browser.py``)."""
    from tests.browser import chromium

    with chromium() as instance:
        yield instance
