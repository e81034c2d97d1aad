"""The district screen's ground baked into one image: relief, grid choropleth, community lines, roads, footprints.

A software renderer (SwiftShader in CI and on GPU-less command-centre PCs) pays seconds for every distinct layer on a
page's first frame — each new shader and pipeline state is compiled on first use. Everything that lies flat on the
ground is therefore drawn here, on the server, into one Web-Mercator image that a single ``BitmapLayer`` shows;
the page keeps the grids and roads hoverable by testing the pointer against their outlines
(:func:`twin.render.district.hit_features`) instead of drawing them again.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from PIL import Image, ImageDraw
from shapely.geometry.base import BaseGeometry

from twin.render.colors import BACKGROUND, RGBA

#: Longest side of the baked image (about 2.8 m a pixel over the sample district).
BAKED_SIZE = 2048
#: Lines and polygons are drawn this many times larger, then averaged down (anti-aliasing).
SUPERSAMPLE = 2
WEBP_QUALITY = 78
#: libwebp effort (0–6): 2 is three times faster than the default 4 for a few per cent more bytes.
WEBP_METHOD = 2
#: Media type of the baked image.
MEDIA_TYPE = "image/webp"
EARTH_RADIUS_M = 6_378_137.0


@dataclass(frozen=True)
class Stroke:
    """Lines to draw: geometries, a colour each (or one), a width in metres each and a minimum width in pixels."""

    geometries: Sequence[BaseGeometry]
    colors: Sequence[RGBA] | RGBA
    width_m: Sequence[float] | float = 0.0
    min_px: float = 1.0


@dataclass(frozen=True)
class Fill:
    """Polygons to fill, a colour each (or one)."""

    geometries: Sequence[BaseGeometry]
    colors: Sequence[RGBA] | RGBA


def _mercator(lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]) -> tuple[Any, Any]:
    x = np.radians(lon) * EARTH_RADIUS_M
    y = np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) * EARTH_RADIUS_M
    return x, y


class Backdrop:
    """The relief enlarged to the drawing size, over lon/lat ``bounds``: made once, copied for every bake."""

    def __init__(self, relief: npt.NDArray[np.uint8], bounds: tuple[float, float, float, float],
                 size: int = BAKED_SIZE):
        west, south, east, north = bounds
        (self.x0, self.x1), (self.y0, self.y1) = (_mercator(np.array([west, east]), np.array([south, north])))
        span_x, span_y = self.x1 - self.x0, self.y1 - self.y0
        scale = size / max(span_x, span_y)
        self.width, self.height = max(round(span_x * scale), 1), max(round(span_y * scale), 1)
        self.k = SUPERSAMPLE
        ground = Image.fromarray(relief, "RGBA").resize((self.width * self.k, self.height * self.k),
                                                        Image.Resampling.BILINEAR)
        self.image = Image.new("RGB", ground.size, BACKGROUND[:3])
        self.image.paste(ground, mask=ground.getchannel("A"))
        mid_lat = math.radians((south + north) / 2)
        #: ground metres per drawing pixel
        self.m_per_px = span_x / (self.width * self.k) * math.cos(mid_lat)


class Canvas:
    """A copy of a :class:`Backdrop` that lines and polygons are blended onto."""

    def __init__(self, backdrop: Backdrop):
        self.x0, self.x1, self.y0, self.y1 = backdrop.x0, backdrop.x1, backdrop.y0, backdrop.y1
        self.width, self.height, self.k, self.m_per_px = backdrop.width, backdrop.height, backdrop.k, backdrop.m_per_px
        self.image = backdrop.image.copy()
        self.draw = ImageDraw.Draw(self.image, "RGBA")

    def pixels(self, coords: npt.NDArray[np.float64]) -> list[tuple[float, float]]:
        """Lon/lat coordinates as drawing-pixel positions."""
        x, y = _mercator(coords[:, 0], coords[:, 1])
        px = (x - self.x0) / (self.x1 - self.x0) * self.width * self.k
        py = (self.y1 - y) / (self.y1 - self.y0) * self.height * self.k
        return list(zip(px.tolist(), py.tolist(), strict=True))

    def fill(self, layer: Fill) -> None:
        """Blend filled polygons (exterior rings) onto the image."""
        for geometry, rgba in zip(layer.geometries, _each(layer.colors, len(layer.geometries)), strict=True):
            for part in _parts(geometry):
                ring = self.pixels(shapely.get_coordinates(part.exterior))
                if len(ring) >= 3:
                    self.draw.polygon(ring, fill=tuple(rgba))

    def stroke(self, layer: Stroke) -> None:
        """Blend lines (polygon outlines, linestrings) of the given widths onto the image."""
        count = len(layer.geometries)
        widths = _each(layer.width_m, count)
        for geometry, rgba, width_m in zip(layer.geometries, _each(layer.colors, count), widths, strict=True):
            width = max(float(width_m) / self.m_per_px, layer.min_px * self.k)
            for line in _lines(geometry):
                points = self.pixels(shapely.get_coordinates(line))
                if len(points) >= 2:
                    self.draw.line(points, fill=tuple(rgba), width=max(round(width), 1))

    def encode(self, quality: int = WEBP_QUALITY) -> bytes:
        """The image at its final size as a WebP (lossy: about half the bytes of a JPEG of the same look)."""
        final = self.image.reduce(self.k) if self.k > 1 else self.image
        out = io.BytesIO()
        final.save(out, "WEBP", quality=quality, method=WEBP_METHOD)
        return out.getvalue()


def _each(value: Any, count: int) -> list[Any]:
    if isinstance(value, tuple | float | int) or (isinstance(value, list) and value and isinstance(value[0], int)):
        return [value] * count
    out = list(value)
    if len(out) != count:
        raise ValueError(f"{len(out)} values for {count} geometries")
    return out


def _parts(geometry: BaseGeometry) -> Iterable[Any]:
    if geometry is None or geometry.is_empty:
        return []
    return list(getattr(geometry, "geoms", [geometry]))


def _lines(geometry: BaseGeometry) -> Iterable[Any]:
    out = []
    for part in _parts(geometry):
        if part.geom_type == "Polygon":
            out += [part.exterior, *part.interiors]
        elif part.geom_type in ("LineString", "LinearRing"):
            out.append(part)
    return out


def bake(backdrop: Backdrop, layers: Sequence[Fill | Stroke]) -> bytes:
    """The backdrop with ``layers`` drawn over it in order, as a WebP image covering its bounds."""
    canvas = Canvas(backdrop)
    for layer in layers:
        if isinstance(layer, Fill):
            canvas.fill(layer)
        else:
            canvas.stroke(layer)
    return canvas.encode()
