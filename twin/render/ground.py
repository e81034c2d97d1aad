"""What the district screen draws on the ground, as data.

The grid choropleth, grid and community lines, roads and footprints — in the normal colour: the image does not follow
alarms, the screen draws the buildings in other states over it. This is the recipe the service bakes into one image
(:func:`ground_layers`, drawn by :mod:`twin.render.bake`); :func:`hit_features` gives the outlines the page tests the
pointer against instead of drawing them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd
import shapely

from twin.render import colors as c
from twin.render.bake import Fill, Stroke
from twin.render.screen import clean, lines, number, rounded, text

if TYPE_CHECKING:
    from twin.render.district import DistrictData

#: Grid figures: id → (Chinese name, needs a staff role).
FIGURES: dict[str, tuple[str, bool]] = {
    "population": ("人口", False),
    "households": ("户数", False),
    "buildings": ("建筑数", False),
    "super_high_rises": ("超高层建筑数", False),
    "faulty_facilities": ("故障消防设施数", True),
    "offline_sensors": ("离线物联设备数", True),
    "open_alarms": ("未处置告警数", True),
}


def grid_fills(data: DistrictData) -> list[Any]:
    """The ramp colour of each grid for the chosen figure."""
    values = data.grids[data.figure].astype(float) if data.figure in data.grids else pd.Series(dtype=float)
    return list(c.ramp_colors(values.to_numpy(), c.breaks(values.to_numpy())))


def grid_tip(data: DistrictData, row: Any) -> str:
    """A grid's tooltip: name, code, officer and the chosen figure."""
    name, _ = FIGURES[data.figure]
    return lines(text(row.get("name")), f"网格编码 {text(row.get('code'))}", f"网格员 {text(row.get('officer'))}",
                 f"{name} {number(row.get(data.figure))}")


ROAD_WIDTHS_M = {"expressway": 30.0, "arterial": 22.0, "secondary": 14.0, "local": 8.0}
ROAD_COLOR = (205, 215, 230, 200)


def road_width(row: Any) -> float:
    """A road's width in metres (by its class when not mapped)."""
    return float(clean(row.get("width_m")) or ROAD_WIDTHS_M.get(str(row.get("road_class")), 8.0))


def road_tip(row: Any) -> str:
    """A road's tooltip: name, class, width and lanes."""
    return lines(text(row.get("name")), c.ROAD_CLASS_LABELS.get(str(row.get("road_class")), ""),
                 f"路宽 {number(row.get('width_m'))} 米 · {number(row.get('lanes'))} 车道")


def ground_layers(data: DistrictData) -> list[Fill | Stroke]:
    """What the service bakes into the ground image, bottom first.

    The grid choropleth and grid lines, community lines, roads by width, and every footprint in the normal state's
    colour (as the flat buildings layer draws them).
    """
    layers: list[Fill | Stroke] = [
        Fill(list(data.grids.geometry), grid_fills(data)),
        Stroke(list(data.grids.geometry), c.GRID_LINE, min_px=1.0),
        Stroke(list(data.communities.geometry), c.COMMUNITY_LINE, min_px=1.6),
        Stroke(list(data.roads.geometry), ROAD_COLOR, [road_width(r) for r in rows_of(data.roads)], min_px=1.0),
    ]
    if data.footprints is not None and len(data.footprints):
        layers.append(Fill(list(data.footprints.geometry), c.state_color("normal")))
    return layers


def rows_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as dicts (attributes only)."""
    columns = [col for col in frame.columns if col != getattr(frame.geometry, "name", None)] \
        if isinstance(frame, gpd.GeoDataFrame) else list(frame.columns)
    return pd.DataFrame(frame[columns]).to_dict("records")


def _rings(geometry: Any, key: str) -> list[Any]:
    document = rounded(geometry, 5)
    coords = document["coordinates"]
    if document["type"] in ("Polygon", "LineString"):
        coords = [coords]
    if key == "rings":  # outer rings of the polygons
        return [polygon[0] for polygon in coords]
    return list(coords)


def hit_features(data: DistrictData) -> dict[str, list[dict[str, Any]]]:
    """Grids and roads as the page tests the pointer against them (they are drawn in the baked ground)."""
    grids = data.grids.set_geometry(shapely.simplify(data.grids.geometry.to_numpy(), 3.0 / 111_000.0,
                                                     preserve_topology=True))
    roads = data.roads.set_geometry(shapely.simplify(data.roads.geometry.to_numpy(), 1.0 / 111_000.0))
    return {
        "grids": [{"tip": grid_tip(data, row), "rings": _rings(geom, "rings"),
                   "href": f"map/grids/{row.get('code')}"}
                  for row, geom in zip(rows_of(data.grids), grids.geometry, strict=True)],
        "roads": [{"tip": road_tip(row), "width": road_width(row), "paths": _rings(geom, "paths")}
                  for row, geom in zip(rows_of(data.roads), roads.geometry, strict=True)],
    }
