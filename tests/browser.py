"""Debian's Chromium driven by Playwright, for the tests that open pages: how it starts and what counts as local."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
#: Debian's Chromium, software WebGL (deck.gl and MapLibre draw with SwiftShader here), no network chatter of its own.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--use-gl=swiftshader", "--enable-unsafe-swiftshader"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def is_local(url: str) -> bool:
    """True for URLs served by this machine (and inline ``data:``/``blob:``/``about:`` or ``file:`` ones)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "file"):
        return True
    return parts.hostname in LOCAL_HOSTS


@contextmanager
def chromium() -> Iterator[Any]:
    """A Playwright ``Browser`` on Debian's Chromium; never a browser downloaded by ``playwright install``."""
    playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (pyproject dev deps)")
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run scripts/ensure_browser.sh (scripts/test.sh does)")
    with playwright_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()
