"""Headless Chromium (Debian's, driven by Playwright) against a live twin over a private copy of the sample.

Every page a test opens records its requests and fails the test on any that leaves localhost, on console errors and
on uncaught exceptions. Screenshots are kept in ``tests/artifacts/`` (git-ignored) to look at after a run.
"""

from __future__ import annotations

import datetime as dt
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from api.main import create_app
from tests.api.conftest import LiveServer
from tests.browser import is_local
from twin.auth import create_key
from twin.samplebuild import copy_sample
from twin.settings import Settings
from twin.store.base import FeatureQuery, Filter, Op
from twin.store.geopackage import GeoPackageStore

pytest.importorskip("playwright.sync_api", reason="pip install playwright (see pyproject dev deps)")

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
VIEWPORT = {"width": 1280, "height": 800}
READY_TIMEOUT_S = 90.0


@dataclass
class ScreenServer:
    """The live twin the screens are served from, with keys for each role."""

    url: str
    store: GeoPackageStore
    keys: dict[str, str]


@pytest.fixture(scope="session")
def screen_server(sample_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScreenServer]:
    """The API over a writable copy of the sample (keys are written to it, readings ingested)."""
    folder = tmp_path_factory.mktemp("screens")
    copy_sample(sample_path, folder)
    store = GeoPackageStore(folder / sample_path.name)
    keys = {role: create_key(store, role, f"screen tests ({role})")[1] for role in ("operator", "inspector", "device")}
    with LiveServer(create_app(Settings(), store=store)) as live:
        yield ScreenServer(live.url, store, keys)
    store.close()


@dataclass
class Screen:
    """An open page and what it did: every request, console errors, page errors."""

    page: Any
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def js(self, expression: str, arg: Any = None) -> Any:
        """Evaluate in the page (the pages' CSP forbids eval-based waits, so tests poll with this)."""
        return self.page.evaluate(expression, arg)

    def wait_for(self, expression: str, timeout_s: float = READY_TIMEOUT_S, what: str = "") -> float:
        """Poll ``expression`` until truthy; returns the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.js(expression):
                return time.monotonic() - started
            self.page.wait_for_timeout(50)
        raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what or expression}; "
                             f"errors: {self.errors[:5]}")

    def wait_ready(self) -> float:
        """Wait for the first full frame (every layer and tile loaded and drawn)."""
        return self.wait_for("!!(window.twinScreen && window.twinScreen.ready)", what="the first full frame")

    def external(self) -> list[str]:
        """Requests that left this machine."""
        return [url for url in self.requests if not is_local(url)]

    def screenshot(self, name: str, **kwargs: Any) -> np.ndarray:
        """A PNG kept as ``tests/artifacts/NAME.png``, returned as an (h, w, 3) array."""
        from PIL import Image

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        data = self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), **kwargs)
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

    def assert_clean(self) -> None:
        """No request left the machine, no console error, no uncaught exception."""
        assert not self.external(), f"requests left localhost: {self.external()}"
        assert not self.errors, f"console errors: {self.errors}"


@pytest.fixture
def open_screen(browser: Any) -> Iterator[Callable[[str], Screen]]:
    """Open a URL in a fresh browser context; the returned :class:`Screen` records what the page does."""
    contexts = []

    def opener(url: str) -> Screen:
        context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
        contexts.append(context)
        page = context.new_page()
        screen = Screen(page)
        page.on("request", lambda request: screen.requests.append(request.url))
        page.on("console", lambda message: screen.errors.append(message.text)
                if message.type == "error" else None)
        page.on("pageerror", lambda error: screen.errors.append(f"uncaught: {error}"))
        page.goto(url)
        return screen

    yield opener
    for context in contexts:
        context.close()


def blank_share(pixels: np.ndarray, background: tuple[int, int, int] = (11, 19, 32)) -> float:
    """Share of pixels within a few levels of the screens' background colour."""
    distance = np.abs(pixels.astype(int) - np.array(background)).sum(axis=2)
    return float((distance <= 12).mean())


def distinct_colours(pixels: np.ndarray) -> int:
    """Number of distinct RGB colours."""
    flat = pixels.reshape(-1, 3).astype(np.uint32)
    return len(np.unique((flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]))


def visible_normal_tower(store: GeoPackageStore, screen: Screen) -> tuple[int, int, float, float]:
    """A super high-rise in plain view on the screen, in the normal state, with an online smoke detector:
    ``(building id, sensor id, x, y)`` with (x, y) a pixel where the building is the object drawn on top."""
    towers = store.query("buildings", FeatureQuery(filters=(Filter("height_m", Op.GT, 100.0),)))
    smoke = store.query("sensors", FeatureQuery(filters=(Filter("type", Op.EQ, "smoke"),
                                                         Filter("status", Op.EQ, "online"))))
    for building_id, row in towers.sort_values("height_m", ascending=False).iterrows():
        if screen.js("(id) => window.twinScreen.stateOf(id)", int(building_id)) != "normal":
            continue
        sensors = smoke[smoke["building_id"] == building_id]
        if sensors.empty:
            continue
        point = row.geometry.representative_point()
        x, y = screen.js("(p) => window.twinScreen.project(p)", [point.x, point.y, float(row["height_m"]) * 0.5])[:2]
        if not (260 < x < 900 and 120 < y < 740):
            continue
        picked = screen.js("([x, y]) => { const o = window.twinScreen.deck.pickObject({x, y, radius: 0}); "
                           "return o && o.object ? (o.object.properties || o.object).id : null; }", [x, y])
        if picked == int(building_id):
            return int(building_id), int(sensors.index[0]), x, y
    raise AssertionError("no normal super high-rise in plain view")


def orange(pixel: np.ndarray) -> bool:
    """True for the pre-alarm/fire colours (red well above blue), false for the normal blue-grey."""
    r, _g, b = (int(v) for v in pixel)
    return r > b + 60 and r > 120


def assert_recoloured_within_two_seconds(screen: Screen, store: GeoPackageStore, send: Callable[[int, str], str],
                                         name: str) -> int:
    """Send a smoke reading for a tower in plain view and require its pre-alarm colour drawn within 2 s.

    The screen is first brought to rest (first frame, alarm stream, deferred tiles). ``send(sensor, ts)`` delivers the
    reading and returns a note for the failure message; the clock starts before it. Screenshots before and after are
    kept as ``NAME-before`` and ``NAME-after``. Returns the sensor the reading was for.
    """
    screen.wait_ready()
    screen.wait_for("window.twinScreen.streaming", 30, "the alarm stream")
    screen.wait_for("window.twinScreen.complete", 60, "the deferred layers")
    building, sensor, x, y = visible_normal_tower(store, screen)
    before = screen.screenshot(f"{name}-before")
    assert not orange(before[int(y), int(x)]), before[int(y), int(x)]

    ts = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    sent = time.monotonic()
    note = send(sensor, ts)
    screen.wait_for(f"window.twinScreen.stateOf({building}) === 'pre_alarm' && "
                    "window.twinScreen.renderedVersion >= window.twinScreen.stateVersion()", 10,
                    "the pre-alarm colour drawn")
    took = time.monotonic() - sent
    on_page = screen.js("window.twinScreen.renderedAt - window.twinScreen.lastEventAt") / 1000
    after = screen.screenshot(f"{name}-after")
    assert orange(after[int(y), int(x)]), f"building {building} at ({x:.0f}, {y:.0f}) is {after[int(y), int(x)]}"
    assert took < 2.0, (f"the building changed colour {took:.2f} s after the reading was sent ({note}; "
                        f"{on_page:.2f} s from the alarm event's arrival on the page to the frame drawn)")
    return sensor
