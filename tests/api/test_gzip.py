"""Compression: large JSON/GeoJSON answers and vector tiles go gzip-compressed to clients that accept it.

Checked on the raw bytes (``Content-Encoding``, the gzip magic, decoding to the identity body) and with real
clients that decode by themselves: httpx, GDAL's OAPIF driver and, for tiles, GDAL's MVT driver (MapLibre in
``test_maplibre.py``). Small answers, PNGs and the event stream are left alone.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import httpx
import mapbox_vector_tile
import morecantile
import pytest

from api.main import GZIP_MIN_BYTES
from tests.api.features_fixtures import *  # noqa: F403 - the fixtures

WMQ = morecantile.tms.get("WebMercatorQuad")
STATION = (114.0239, 22.6119)


def _raw(url: str, encoding: str | None) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and the body exactly as sent (urllib does not decode)."""
    headers = {"Accept-Encoding": encoding} if encoding else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as response:
        return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()


def _tile_path(z: int = 16) -> str:
    tile = WMQ.tile(*STATION, z)
    return f"/collections/buildings/tiles/WebMercatorQuad/{z}/{tile.y}/{tile.x}"


def test_large_geojson_is_gzipped_when_accepted(sample_server: str) -> None:
    url = f"{sample_server}/collections/buildings/items?limit=500"
    _, plain_headers, plain = _raw(url, None)
    assert "content-encoding" not in plain_headers and len(plain) > GZIP_MIN_BYTES
    _, headers, packed = _raw(url, "gzip")
    assert headers["content-encoding"] == "gzip" and "accept-encoding" in headers["vary"].lower()
    assert packed[:2] == b"\x1f\x8b" and len(packed) < len(plain) / 3
    document, expected = json.loads(gzip.decompress(packed)), json.loads(plain)
    document.pop("timeStamp"), expected.pop("timeStamp")
    assert document == expected
    assert headers["content-type"] == "application/geo+json"


def test_small_answers_and_refusals_stay_plain(sample_server: str) -> None:
    _, headers, body = _raw(f"{sample_server}/health", "gzip")
    assert len(body) < GZIP_MIN_BYTES and "content-encoding" not in headers
    _, headers, _ = _raw(f"{sample_server}/collections/buildings/items?limit=500", "identity")
    assert "content-encoding" not in headers
    _, headers, _ = _raw(f"{sample_server}{_tile_path()}", "gzip;q=0")
    assert "content-encoding" not in headers


def test_png_tiles_are_not_recompressed(sample_server: str) -> None:
    tile = WMQ.tile(*STATION, 14)
    status, headers, body = _raw(f"{sample_server}/rasters/dem/tiles/WebMercatorQuad/14/{tile.y}/{tile.x}.png", "gzip")
    assert status == 200 and "content-encoding" not in headers and body[:4] == b"\x89PNG"


def test_vector_tiles_are_gzipped_once_with_their_own_etag(sample_server: str) -> None:
    url = f"{sample_server}{_tile_path()}"
    _, plain_headers, plain = _raw(url, None)
    _, headers, packed = _raw(url, "gzip, deflate, br")
    assert "content-encoding" not in plain_headers
    assert headers["content-encoding"] == "gzip" and headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert "accept-encoding" in headers["vary"].lower() and "x-api-key" in headers["vary"].lower()
    assert gzip.decompress(packed) == plain and len(packed) < len(plain)
    assert headers["etag"] != plain_headers["etag"]  # two representations, two validators
    _, again, same = _raw(url, "gzip")
    assert same == packed and again["etag"] == headers["etag"]
    # a conditional request with either validator is answered 304
    for etag in (headers["etag"], plain_headers["etag"]):
        response = httpx.get(url, headers={"If-None-Match": etag})
        assert response.status_code == 304
    decoded = mapbox_vector_tile.decode(httpx.get(url).content)  # httpx decodes gzip by itself
    assert decoded["buildings"]["features"]


def _gdal(code: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run GDAL (pyogrio) in a child process: it holds the GIL while downloading from this process's server."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_gdal_reads_gzipped_tiles_and_pages(sample_server: str, tmp_path: Path) -> None:
    # GDAL's MVT driver takes a tile exactly as sent with Content-Encoding: gzip (as tile caches store them);
    # its /vsicurl/ reader sends no Accept-Encoding, so it is served plain tiles over HTTP
    z, tile = 16, WMQ.tile(*STATION, 16)
    _, _, packed = _raw(f"{sample_server}{_tile_path(z)}", "gzip")
    path = tmp_path / str(z) / str(tile.x) / f"{tile.y}.pbf"
    path.parent.mkdir(parents=True)
    path.write_bytes(packed)
    code = ("import sys, pyogrio; f = pyogrio.read_dataframe(sys.argv[1], layer='buildings', CLIP='NO'); "
            "print(len(f), int(f['height_m'].notna().sum()))")
    count, heights = map(int, _gdal(code, str(path)).split())
    expected = mapbox_vector_tile.decode(gzip.decompress(packed))["buildings"]
    assert count == len(expected["features"]) > 0 and heights == count
    # GDAL's OAPIF driver pages through gzip-compressed GeoJSON (10 items a page)
    pages = _gdal("import sys, pyogrio; print(len(pyogrio.read_dataframe(sys.argv[1], layer='roads')))",
                  f"OAPIF:{sample_server}")
    assert int(pages) == httpx.get(f"{sample_server}/collections/roads/items", params={"limit": 1}).json()[
        "numberMatched"]


@pytest.mark.parametrize("table", ["alarms", "inspections"])
def test_gdal_reads_a_table_with_a_key(staff: httpx.Client, table: str) -> None:
    key = staff.headers["x-api-key"]
    code = ("import sys, pyogrio; f = pyogrio.read_dataframe(sys.argv[1], layer=sys.argv[2], fid_as_index=True); "
            "print(len(f), int(f.geometry.isna().sum()), sorted(f.index)[:3])")
    out = _gdal(code, f"OAPIF:{staff.base_url}", table,
                env={"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": key})
    rows, missing, _ = out.split(" ", 2)
    expected = staff.get(f"/collections/{table}/items", params={"limit": 1}).json()["numberMatched"]
    assert int(rows) == expected == int(missing) and expected > 0


def test_the_event_stream_is_never_buffered_or_compressed(staff: httpx.Client) -> None:
    headers = {"Accept-Encoding": "gzip", "X-API-Key": staff.headers["x-api-key"]}
    with httpx.stream("GET", f"{staff.base_url}/alarms/stream", headers=headers, timeout=10) as response:
        # the headers arrive before any event (a buffering middleware would hold them back)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in response.headers
