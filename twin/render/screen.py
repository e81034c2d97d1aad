"""A screen: a pydeck ``Deck`` plus what the page around it shows (title, legend, tooltips, live updates).

The renderers (:mod:`twin.render.district`, :mod:`~twin.render.tower`, :mod:`~twin.render.grid`) return a
:class:`Screen`. In a notebook, ``screen.deck`` is an ordinary ``pydeck.Deck``; the service sends
``screen.to_dict()`` to the page script (``static/screen.js``), and :func:`twin.render.offline.standalone_html`
writes it into one self-contained HTML file.

Feature properties carry a plain-text Chinese ``tip`` (shown on hover) and, where a click should open the side
panel, a ``panel`` (``{"title", "lines"}``). Layers fed by vector tiles instead name a tooltip template in
``Screen.tooltips`` (``{field}`` is replaced by the feature's property).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import pydeck as pdk
import shapely
from pydeck.bindings.json_tools import default_serialize
from shapely.geometry.base import BaseGeometry

from twin.render.colors import LABEL_COLOR, LABEL_OUTLINE, RGBA, css

#: The CJK font the screens ask the browser for (Debian's fonts-noto-cjk); nothing is downloaded.
FONT_FAMILY = "Noto Sans CJK SC, Noto Sans SC, Source Han Sans SC, WenQuanYi Micro Hei, sans-serif"
COORD_DIGITS = 6


@dataclass
class Screen:
    """What one screen shows: the deck.gl scene and the page furniture around it."""

    deck: pdk.Deck
    title: str
    subtitle: str = ""
    #: Legend blocks: ``{"title": str, "items": [{"color": css, "label": str}]}``.
    legend: list[dict[str, Any]] = field(default_factory=list)
    #: Tooltip templates by layer id, for features without a ``tip`` (vector tiles).
    tooltips: dict[str, str] = field(default_factory=dict)
    #: Live colouring: ``{"layers", "states", "colors", "labels", "severity", "since", "names"}`` (district screen).
    live: dict[str, Any] | None = None
    #: Choices the page offers (``{"figure": {"current", "choices": [[id, label], …]}}``).
    controls: dict[str, Any] = field(default_factory=dict)
    #: Side panel shown when the page opens (``{"title", "lines"}``) and the list of open alarms.
    panel: dict[str, Any] | None = None
    alarms: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, str]] = field(default_factory=list)
    #: Level of detail: below ``zoom`` the ``flat`` layer is not extruded and the ``detail`` layers are shown.
    lod: dict[str, Any] | None = None
    #: Features drawn in a baked image that the page tests the pointer against (``{"grids": …, "roads": …}``).
    hit: dict[str, Any] | None = None
    #: Layers the page adds only once the first frame with all the others is drawn.
    defer: list[str] = field(default_factory=list)
    #: The tower view's floor list, top first: ``{"id", "name", "refuge", "state", "summary", "panel"}``.
    floors: list[dict[str, Any]] = field(default_factory=list)

    def deck_json(self) -> dict[str, Any]:
        """The deck as the JSON document ``@deck.gl/json`` converts."""
        document: dict[str, Any] = orjson.loads(orjson.dumps(self.deck, default=default_serialize,
                                                             option=orjson.OPT_SERIALIZE_NUMPY))
        return document

    def meta(self) -> dict[str, Any]:
        """The page furniture as JSON."""
        return {"title": self.title, "subtitle": self.subtitle, "legend": self.legend, "tooltips": self.tooltips,
                "live": self.live, "controls": self.controls, "panel": self.panel, "alarms": self.alarms,
                "links": self.links, "lod": self.lod, "hit": self.hit, "defer": self.defer,
                "floors": self.floors}

    def to_dict(self) -> dict[str, Any]:
        """``{"deck": …, "twin": …}``: what the page script renders."""
        return {"deck": self.deck_json(), "twin": self.meta()}


def clean(value: Any) -> Any:
    """A JSON-ready scalar: NaN/NA → None, numpy scalars → Python, timestamps → ISO text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating):
        return None if not math.isfinite(float(value)) else round(float(value), 3)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat().replace("+00:00", "Z")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def rounded(geometry: BaseGeometry, digits: int = COORD_DIGITS) -> dict[str, Any]:
    """A shapely geometry as a GeoJSON dict with coordinates rounded to ``digits`` decimals (z kept)."""
    document: dict[str, Any] = json.loads(shapely.to_geojson(geometry))

    def walk(coords: Any) -> Any:
        if coords and isinstance(coords[0], int | float):
            return [round(float(c), digits) for c in coords]
        return [walk(c) for c in coords]

    document["coordinates"] = walk(document["coordinates"])
    return document


class Row(dict[str, Any]):
    """A feature's attributes as a dict, with its key as ``name`` (like a pandas row) and its ``geometry``."""

    name: Any = None
    geometry: BaseGeometry | None = None


def rows(frame: pd.DataFrame) -> Iterable[Row]:
    """The rows of ``frame`` as :class:`Row` (much faster than ``iterrows`` on a GeoDataFrame)."""
    geometry_name = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
    columns = [c for c in frame.columns if c != geometry_name]
    records = pd.DataFrame(frame[columns]).to_dict("records") if columns else [{} for _ in range(len(frame))]
    geoms = frame.geometry.to_numpy() if geometry_name else [None] * len(frame)
    for key, record, geom in zip(frame.index, records, geoms, strict=True):
        row = Row(record)
        row.name, row.geometry = key, geom
        yield row


def feature_collection(
    frame: pd.DataFrame,
    columns: Sequence[str] = (),
    *,
    tip: Callable[[Row], str] | None = None,
    extra: Callable[[Row], Mapping[str, Any]] | None = None,
    simplify_m: float = 0.0,
) -> dict[str, Any]:
    """Rows of a GeoDataFrame as a GeoJSON FeatureCollection with ``id``, ``columns``, ``tip`` and ``extra``.

    ``simplify_m`` drops vertices that move the shape by less than that many metres (for display: software
    renderers pay for every vertex).
    """
    if simplify_m > 0 and len(frame):
        frame = frame.set_geometry(shapely.simplify(frame.geometry.to_numpy(), simplify_m / 111_000.0,
                                                    preserve_topology=True))
    features = []
    for row in rows(frame):
        key = clean(row.name)
        properties = {"id": key, **{c: clean(row.get(c)) for c in columns}}
        if tip is not None:
            properties["tip"] = tip(row)
        if extra is not None:
            properties.update(extra(row))
        assert row.geometry is not None
        features.append({"type": "Feature", "id": key, "geometry": rounded(row.geometry), "properties": properties})
    return {"type": "FeatureCollection", "features": features}


def point_records(frame: pd.DataFrame, columns: Sequence[str] = (), *, z: Iterable[float] | None = None,
                  tip: Callable[[Row], str] | None = None,
                  extra: Callable[[Row], Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Point rows as records with ``position`` [lon, lat(, z)], for Scatterplot/Text layers."""
    geoms = frame.geometry.to_numpy()
    xs, ys = shapely.get_x(geoms), shapely.get_y(geoms)
    zs = list(z) if z is not None else [None] * len(frame)
    records = []
    for row, x, y, height in zip(rows(frame), xs, ys, zs, strict=True):
        position = [round(float(x), COORD_DIGITS), round(float(y), COORD_DIGITS)]
        if height is not None and math.isfinite(height):
            position.append(round(float(height), 2))
        record = {"id": clean(row.name), "position": position, **{c: clean(row.get(c)) for c in columns}}
        if tip is not None:
            record["tip"] = tip(row)
        if extra is not None:
            record.update(extra(row))
        records.append(record)
    return records


def number(value: Any, digits: int = 1) -> str:
    """A number for a label ("—" when missing)."""
    value = clean(value)
    if value is None:
        return "—"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{float(value):,.{digits}f}"


def text(value: Any, fallback: str = "—") -> str:
    """A text value for a label ("—" when missing)."""
    value = clean(value)
    return fallback if value is None or value == "" else str(value)


def lines(*parts: str | None) -> str:
    """Non-empty parts, one per line (the tooltip and panel format)."""
    return "\n".join(p for p in parts if p)


def color(rgba: RGBA) -> list[int]:
    """A colour as the list deck.gl expects."""
    return [int(c) for c in rgba]


def legend(title: str, items: Iterable[tuple[RGBA, str]]) -> dict[str, Any]:
    """A legend block."""
    return {"title": title, "items": [{"color": css(c), "label": label} for c, label in items]}


def text_layer(layer_id: str, records: list[dict[str, Any]], *, size: float | str = 13, **kwargs: Any) -> pdk.Layer:
    """Chinese labels (``label`` at ``position``), drawn from the system CJK font, outlined for legibility."""
    props: dict[str, Any] = {
        "get_position": "position", "get_text": "label", "get_size": size, "size_units": '"pixels"',
        "get_color": color(LABEL_COLOR), "font_family": f'"{FONT_FAMILY}"', "character_set": '"auto"',
        "font_settings": {"sdf": True, "fontSize": 48, "buffer": 6}, "outline_width": 4,
        "outline_color": color(LABEL_OUTLINE), "billboard": True, "get_text_anchor": '"middle"',
        "get_alignment_baseline": '"center"', "pickable": False,
        # labels stay readable in front of the extruded buildings
        "parameters": {"depthCompare": "always", "depthWriteEnabled": False},
    }
    props.update(kwargs)
    return pdk.Layer("TextLayer", id=layer_id, data=records, **props)


#: Layer parameters that draw a layer over everything drawn before it (markers, labels).
ON_TOP = {"depthCompare": "always", "depthWriteEnabled": False}


def mvt_layer(layer_id: str, url: str, **kwargs: Any) -> pdk.Layer:
    """Features from the service's vector tiles (``url`` with ``{z}/{y}/{x}``), parsed on the main thread.

    Workers are off: loaders.gl would otherwise fetch its worker script from a CDN.
    """
    props: dict[str, Any] = {"binary": False, "load_options": {"worker": False}, "max_requests": 0,
                             "pickable": True, "unique_id_property": '"id"'}
    props.update(kwargs)
    return pdk.Layer("MVTLayer", id=layer_id, data=url, **props)


def map_view(longitude: float, latitude: float, zoom: float, *, pitch: float = 45, bearing: float = 0,
             max_zoom: float = 20, min_zoom: float = 10) -> tuple[pdk.ViewState, list[pdk.View]]:
    """The initial camera and a controllable map view."""
    state = pdk.ViewState(longitude=round(longitude, 6), latitude=round(latitude, 6), zoom=round(zoom, 2),
                          pitch=pitch, bearing=bearing, max_zoom=max_zoom, min_zoom=min_zoom, max_pitch=85)
    return state, [pdk.View(type="MapView", controller=True)]


def fit_zoom(bounds: Sequence[float], width_px: float = 1280, height_px: float = 760, padding: float = 0.1) -> float:
    """The Web-Mercator zoom that fits lon/lat ``bounds`` in a viewport of the given size."""
    minx, miny, maxx, maxy = bounds
    span_x = max(maxx - minx, 1e-6) * (1 + padding)
    lat_rad = [math.radians(v) for v in (miny, maxy)]
    merc = [math.log(math.tan(math.pi / 4 + r / 2)) for r in lat_rad]
    span_y = max(merc[1] - merc[0], 1e-9) * (1 + padding)
    zoom_x = math.log2(width_px * 360 / (256 * span_x))
    zoom_y = math.log2(height_px * 2 * math.pi / (256 * span_y))
    return max(0.0, min(zoom_x, zoom_y))


def deck(layers: list[pdk.Layer], view: tuple[pdk.ViewState, list[pdk.View]], description: str = "") -> pdk.Deck:
    """A pydeck Deck with no basemap provider: every pixel is drawn from the twin's own data."""
    state, views = view
    return pdk.Deck(layers=layers, views=views, initial_view_state=state, map_provider=None, map_style=None,
                    tooltip={"text": "{tip}"}, description=description or None)
