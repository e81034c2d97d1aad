"""MapLibre style documents built from the layer catalogue (one list of layers, no second one)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from layers import GeometryType, Layer, Style

RGBA = tuple[int, int, int, int]


def css(color: RGBA) -> str:
    """``rgba(r,g,b,a)`` for a catalogue colour."""
    r, g, b, a = color
    return f"rgba({r},{g},{b},{a / 255:.3f})"


def _color(style: Style, fallback: RGBA) -> Any:
    """A constant colour, or a ``match`` on the style's colour field."""
    if not style.color_field or not style.colors:
        return css(fallback)
    expression: list[Any] = ["match", ["get", style.color_field]]
    for value, color in style.colors:
        expression += [value, css(color)]
    return [*expression, css(fallback)]


def style_layers(layer: Layer, source: str) -> list[dict[str, Any]]:
    """The MapLibre layers that draw one catalogue layer from a vector source."""
    style, zoom = layer.style, layer.zoom
    common = {"source": source, "source-layer": layer.id, "minzoom": zoom.min_zoom,
              "maxzoom": min(zoom.max_zoom + 1, 24)}
    if layer.geometry_type in (GeometryType.POLYGON, GeometryType.MULTIPOLYGON):
        if style.extrude_field:
            fill: dict[str, Any] = {
                "id": f"{layer.id}-extrusion", "type": "fill-extrusion", **common,
                "paint": {"fill-extrusion-color": _color(style, style.fill),
                          "fill-extrusion-height": ["coalesce", ["get", style.extrude_field], 0],
                          "fill-extrusion-opacity": 0.85},
            }
        else:
            fill = {"id": f"{layer.id}-fill", "type": "fill", **common,
                    "paint": {"fill-color": _color(style, style.fill)}}
        outline = {"id": f"{layer.id}-outline", "type": "line", **common,
                   "paint": {"line-color": css(style.line), "line-width": style.line_width_px}}
        return [fill, outline]
    if layer.geometry_type is GeometryType.LINESTRING:
        return [{"id": f"{layer.id}-line", "type": "line", **common,
                 "paint": {"line-color": _color(style, style.line), "line-width": style.line_width_px}}]
    return [{"id": f"{layer.id}-circle", "type": "circle", **common,
             "paint": {"circle-color": _color(style, style.fill), "circle-radius": style.point_radius_px,
                       "circle-stroke-color": css(style.line), "circle-stroke-width": 0.5}}]


def _draw_order(layer: Layer) -> int:
    """Flat areas first, then lines, extruded buildings, and points on top."""
    if layer.geometry_type in (GeometryType.POLYGON, GeometryType.MULTIPOLYGON):
        return 2 if layer.style.extrude_field else 0
    return 1 if layer.geometry_type is GeometryType.LINESTRING else 3


def maplibre_style(
    name: str, layers: Sequence[Layer], tilejson_url: str, *, center: tuple[float, float], zoom: float = 14,
    background: RGBA = (236, 239, 241, 255),
) -> dict[str, Any]:
    """A MapLibre style (version 8) drawing ``layers`` from the twin's own vector tiles; no external resource."""
    source = "twin"
    drawn: list[dict[str, Any]] = [{"id": "background", "type": "background",
                                    "paint": {"background-color": css(background)}}]
    for layer in sorted(layers, key=_draw_order):
        drawn += style_layers(layer, source)
    return {
        "version": 8,
        "name": name,
        "center": list(center),
        "zoom": zoom,
        "sources": {source: {"type": "vector", "url": tilejson_url}},
        "layers": drawn,
    }
