"""The district screen in headless Chromium: time to the first full frame, frames per second while 50 alarms
arrive, and bytes transferred for a first load. Goal: first full frame under 3 s on the sample.

Run: python bench/bench_screens.py [--loads N] [--alarms 50]
The service runs in-process (uvicorn on a free port) over a private copy of the sample; the browser is Debian's
Chromium with software WebGL (SwiftShader), the same as the screen tests. "First full frame" is the page's
``twinScreen.readyAt``: milliseconds from navigation until a frame was drawn with every layer loaded — the ground
image (relief, grid choropleth, roads, footprints in their state colours), the extruded high-rises, markers and
labels. "Complete" is ``twinScreen.completeAt``: the deferred building tiles (hover, live colours of low buildings,
extrusion on zooming in) loaded and drawn too. Bytes and requests count everything up to "complete"; the screen
JSON's time is when its response ended. The alarm storm starts once the screen is complete.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import free_port
from twin.auth import create_key
from twin.samplebuild import copy_sample
from twin.settings import Settings, StoreSettings
from twin.store.base import FeatureQuery, Filter, Op
from twin.store.geopackage import GeoPackageStore

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--use-gl=swiftshader", "--enable-unsafe-swiftshader"]
VIEWPORT = {"width": 1280, "height": 800}


class Service:
    """The API over a store, in a uvicorn thread."""

    def __init__(self, store: GeoPackageStore):
        from api.main import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(Settings(), store=store), host="127.0.0.1",
                                                    port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Service:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def wait(page: Any, expression: str, timeout_s: float = 120) -> None:
    started = time.monotonic()
    while not page.evaluate(expression):
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(expression)
        page.wait_for_timeout(20)


def first_load(browser: Any, url: str) -> dict[str, float]:
    """One cold-browser load: ms to the first full frame and to complete, bytes transferred, requests."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    sizes: list[int] = []
    page.on("requestfinished", lambda request: sizes.append(sum(request.sizes().get(k, 0) for k in (
        "requestHeadersSize", "requestBodySize", "responseHeadersSize", "responseBodySize"))))
    page.goto(url)
    wait(page, "!!(window.twinScreen && window.twinScreen.ready)")
    ready = float(page.evaluate("window.twinScreen.readyAt"))
    first_frame = float(page.evaluate("window.twinScreen.frameTimes[0]"))
    wait(page, "!!(window.twinScreen.complete || window.twinScreen.complete === undefined)")
    complete = page.evaluate("window.twinScreen.completeAt") or ready  # pages without deferred layers
    json_ms = page.evaluate("(performance.getEntriesByType('resource')"
                            ".find((r) => r.name.includes('/map/district.json')) || {responseEnd: NaN}).responseEnd")
    page.wait_for_timeout(300)
    context.close()
    return {"ready_ms": ready, "first_frame_ms": first_frame, "complete_ms": float(complete),
            "json_ms": float(json_ms), "bytes": float(sum(sizes)), "requests": len(sizes)}


def alarm_storm(browser: Any, service: Service, store: GeoPackageStore, keys: dict[str, str],
                n: int) -> dict[str, float]:
    """Frames per second on the operator's screen while ``n`` smoke pre-alarms arrive over one second."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(f"{service.url}/#key={keys['operator']}")
    wait(page, "!!(window.twinScreen && window.twinScreen.ready && window.twinScreen.streaming && "
               "window.twinScreen.complete !== false)")
    smoke = store.query("sensors", FeatureQuery(filters=(Filter("type", Op.EQ, "smoke"),
                                                         Filter("status", Op.EQ, "online"))))
    picks = smoke.groupby("building_id").head(1).index[:n].tolist()
    if len(picks) < n:
        picks += smoke.index.difference(picks)[: n - len(picks)].tolist()
    page.evaluate("""() => { window.__raf = 0; const loop = () => { window.__raf++; requestAnimationFrame(loop); };
                            requestAnimationFrame(loop); }""")
    events0 = page.evaluate("window.twinScreen.events")
    frames0, raf0 = page.evaluate("window.twinScreen.frames"), page.evaluate("window.__raf")
    started = time.monotonic()
    with httpx.Client(base_url=service.url, headers={"X-API-Key": keys["device"]}, timeout=30) as client:
        for i, sensor in enumerate(picks):
            ts = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
            client.post("/ingest/readings", json=[{"sensor_id": int(sensor), "ts": ts, "value": 8.0 + i % 5}])
            time.sleep(max(0.0, started + (i + 1) / n - time.monotonic()))  # n readings spread over one second
    wait(page, f"window.twinScreen.events - {events0} >= {n} && "
               "window.twinScreen.renderedVersion >= window.twinScreen.stateVersion()", 120)
    elapsed = time.monotonic() - started
    frames = page.evaluate("window.twinScreen.frames") - frames0
    raf = page.evaluate("window.__raf") - raf0
    coloured = page.evaluate(f"[{','.join(str(int(b)) for b in smoke.loc[picks, 'building_id'])}]"
                             ".filter((id) => window.twinScreen.stateOf(id) !== 'normal').length")
    context.close()
    return {"seconds": elapsed, "deck_fps": frames / elapsed, "browser_fps": raf / elapsed, "events": n,
            "buildings_coloured": coloured, "buildings": len(set(smoke.loc[picks, "building_id"]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=3, help="warm first loads to time (median)")
    parser.add_argument("--alarms", type=int, default=50)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from twin.samplebuild import ensure_sample

    sample = ensure_sample(StoreSettings().sample_dir)
    with tempfile.TemporaryDirectory() as folder:
        copy_sample(sample, Path(folder))
        store = GeoPackageStore(Path(folder) / sample.name)
        keys = {role: create_key(store, role, f"bench ({role})")[1] for role in ("operator", "device")}
        with Service(store) as service, sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            print(f"district screen, headless Chromium {browser.version} (SwiftShader), {VIEWPORT['width']}x"
                  f"{VIEWPORT['height']}, sample twin")
            for label, url in (("public", f"{service.url}/"), ("operator", f"{service.url}/#key={keys['operator']}")):
                cold = first_load(browser, url)
                warm = [first_load(browser, url) for _ in range(args.loads)]

                def median(name: str, runs: list[dict[str, float]] = warm) -> float:
                    return statistics.median(w[name] for w in runs)

                print(f"  {label:8} first full frame: cold service {cold['ready_ms']:,.0f} ms, warm median "
                      f"{median('ready_ms'):,.0f} ms (min {min(w['ready_ms'] for w in warm):,.0f}, max "
                      f"{max(w['ready_ms'] for w in warm):,.0f}, n={len(warm)}); first frame "
                      f"{median('first_frame_ms'):,.0f} ms; screen JSON in {median('json_ms'):,.0f} ms (cold "
                      f"{cold['json_ms']:,.0f}); complete {median('complete_ms'):,.0f} ms; "
                      f"{cold['bytes'] / 1e6:.2f} MB in {cold['requests']} requests")
            storm = alarm_storm(browser, service, store, keys, args.alarms)
            print(f"  {storm['events']} alarms over ~1 s: all drawn after {storm['seconds']:.2f} s; deck.gl "
                  f"{storm['deck_fps']:.1f} frames/s, browser {storm['browser_fps']:.1f} frames/s; "
                  f"{storm['buildings_coloured']}/{storm['buildings']} buildings recoloured")
            browser.close()
        store.close()


if __name__ == "__main__":
    main()
