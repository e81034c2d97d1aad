"""The district screen: the whole North Station district for a command centre.

Buildings extruded by height and coloured by state, the super high-rises marked and named, grids as a choropleth of a
chosen figure, roads, fire stations, outdoor hydrants and sensors, over a shaded relief of the twin's own DEM.

:func:`load_district` reads what a role may see from a store; :func:`district_screen` is a pure function of that data.
Buildings and sensors come inline (notebooks, standalone files) or, given a :class:`TileSource`, as vector tiles from
the service (``MVTLayer``), which the page recolours live from the alarm stream.

The service also bakes what lies flat on the ground (relief, grid choropleth, community lines, roads, footprints)
into one image (:mod:`twin.render.ground`, :mod:`twin.render.bake`): with ``DistrictData.ground`` set, the first
frame draws that image instead of five vector layers, low buildings in a non-normal state are drawn over it in their
state colour (``alarmed``; the image does not change with every alarm), the grids and roads stay hoverable through
``Screen.hit`` (tested on the page, not drawn), and the building tiles are added once the first frame is up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import pandas as pd
import pydeck as pdk

from layers import STAFF, Role
from twin.inspection import grid_summary
from twin.render import colors as c
from twin.render.basemap import BASEMAP_TEXTURE, Basemap
from twin.render.ground import (
    FIGURES,
    ROAD_COLOR,
    grid_fills,
    grid_tip,
    hit_features,
    road_tip,
    road_width,
)
from twin.render.screen import (
    ON_TOP,
    Screen,
    color,
    deck,
    feature_collection,
    fit_zoom,
    legend,
    lines,
    map_view,
    mvt_layer,
    number,
    point_records,
    text,
    text_layer,
)
from twin.render.state import StateBoard
from twin.store.base import FeatureQuery, Filter, Op, Sort, Store

SUPER_HIGH_RISE_M = 100.0
#: Class I high-rise public buildings (GB 50016 5.1.1: over 50 m) stay extruded at the district overview; lower
#: buildings are drawn flat there and rise from :data:`EXTRUDE_ALL_FROM_ZOOM` on. A software renderer (the CI's
#: SwiftShader) pays for every vertex: 7,000 extruded footprints cost it about a second per frame.
HIGH_RISE_M = 50.0
EXTRUDE_ALL_FROM_ZOOM = 15.5
BUILDING_COLUMNS = ("code", "name", "address", "use", "height_m", "floors_above", "grid_code")


@dataclass(frozen=True)
class TileSource:
    """URL templates (``{z}/{y}/{x}``) of the service's vector tiles for the large layers."""

    buildings: str
    sensors: str | None = None


@dataclass
class DistrictData:
    """Everything the district screen draws, already filtered to what the viewer may see."""

    grids: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame
    fire_stations: gpd.GeoDataFrame
    towers: gpd.GeoDataFrame
    high_rises: gpd.GeoDataFrame | None = None
    figure: str = "population"
    staff: bool = False
    states: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))
    buildings: gpd.GeoDataFrame | None = None
    hydrants: gpd.GeoDataFrame | None = None
    sensors: gpd.GeoDataFrame | None = None
    alarms: list[dict[str, Any]] = field(default_factory=list)
    basemap: Basemap | None = None
    since: int | None = None
    links: dict[str, str] = field(default_factory=dict)
    #: Every footprint (``height_m`` only), for the baked ground.
    footprints: gpd.GeoDataFrame | None = None
    #: Buildings up to :data:`HIGH_RISE_M` in a non-normal state, drawn over the baked ground (staff).
    flagged: gpd.GeoDataFrame | None = None
    #: The baked ground image (:func:`ground_layers` drawn over the relief); replaces the flat vector layers.
    ground: Basemap | None = None


def figure_choices(staff: bool) -> list[list[str]]:
    """The grid figures a viewer may choose, as ``[id, name]``."""
    return [[key, name] for key, (name, needs_staff) in FIGURES.items() if staff or not needs_staff]


def _grid_figures(store: Store, grids: gpd.GeoDataFrame, staff: bool) -> gpd.GeoDataFrame:
    table = grids.copy()
    by_code = pd.Index(table["code"])
    if staff:
        summary = grid_summary(store, "grid")
        for name in ("buildings", "super_high_rises", "faulty_facilities", "offline_sensors", "open_alarms"):
            table[name] = summary[name].reindex(by_code).fillna(0).astype(int).to_numpy()
    else:
        counts = store.aggregate_by_grid("buildings", (), "grid")["count"]
        tall = store.aggregate_by_grid("buildings", (Filter("height_m", Op.GT, SUPER_HIGH_RISE_M),), "grid")["count"]
        table["buildings"] = counts.reindex(by_code).fillna(0).astype(int).to_numpy()
        table["super_high_rises"] = tall.reindex(by_code).fillna(0).astype(int).to_numpy()
    return table


def open_alarm_list(store: Store, alarms: pd.DataFrame, limit: int = 50) -> list[dict[str, Any]]:
    """Open alarms as the side list shows them (most urgent first), with building names."""
    if alarms.empty:
        return []
    ids = sorted({int(b) for b in alarms["building_id"].dropna()})
    names = store.query("buildings", FeatureQuery(filters=(Filter("id", Op.IN, ids),), properties=("name", "code")))
    rank = {s: i for i, s in enumerate(("fire_alarm", "pre_alarm", "threshold", "fault", "offline"))}
    rows = []
    for alarm_id, row in alarms.iterrows():
        building = None if pd.isna(row["building_id"]) else int(row["building_id"])
        name = text(names["name"].get(building) if building in names.index else None, f"建筑 {building}")
        message = text(row.get("message"), c.alarm_text(row["alarm_type"]))
        rows.append({"id": int(alarm_id), "building_id": building, "building": name,
                     "severity": row["severity"], "severity_zh": c.SEVERITY_LABELS.get(row["severity"], "告警"),
                     "status": row["status"], "text": message.removeprefix(name).strip(" ·:："),
                     "opened_at": pd.Timestamp(row["opened_at"]).isoformat().replace("+00:00", "Z")})
    rows.sort(key=lambda r: (rank.get(r["severity"], 9), r["opened_at"]), reverse=False)
    return rows[:limit]


def load_district(store: Store, *, role: Role = Role.ADMIN, figure: str = "population", inline: bool = True,
                  board: StateBoard | None = None, basemap: Basemap | None = None,
                  footprints: bool = False) -> DistrictData:
    """Read the district screen's data that ``role`` may see.

    ``inline`` also loads every building and sensor, ``footprints`` every building's outline for the baked ground.
    """
    staff = role in STAFF or role is Role.ADMIN
    if figure not in FIGURES or (FIGURES[figure][1] and not staff):
        figure = "population"
    grids_all = store.query("grids", FeatureQuery(filters=(Filter("level", Op.IN, ["grid", "community"]),)))
    grids = _grid_figures(store, grids_all[grids_all["level"] == "grid"], staff)
    towers = store.query("buildings", FeatureQuery(filters=(Filter("height_m", Op.GT, SUPER_HIGH_RISE_M),),
                                                   sort=(Sort("height_m", descending=True),)))
    data = DistrictData(
        grids=grids, communities=grids_all[grids_all["level"] == "community"], roads=store.query("roads"),
        fire_stations=store.query("fire_stations"), towers=towers, figure=figure, staff=staff, basemap=basemap)
    if inline:
        data.buildings = store.query("buildings")
    else:
        data.high_rises = store.query("buildings", FeatureQuery(filters=(Filter("height_m", Op.GT, HIGH_RISE_M),)))
    if footprints:
        data.footprints = store.query("buildings", FeatureQuery(properties=("height_m",)))
    if staff:
        board = board or StateBoard(store)
        data.states = board.states()
        if footprints and data.high_rises is not None:
            low = [int(i) for i in data.states.index if int(i) not in data.high_rises.index]
            data.flagged = store.query("buildings", FeatureQuery(filters=(Filter("id", Op.IN, low),))) if low \
                else data.high_rises.iloc[:0]
        data.alarms = open_alarm_list(store, board.open_alarms())
        data.hydrants = store.query("fire_facilities", FeatureQuery(
            filters=(Filter("type", Op.EQ, "outdoor_hydrant"),), properties=("code", "status", "building_id")))
        if inline:
            data.sensors = store.query("sensors", FeatureQuery(properties=("code", "type", "status", "building_id")))
    return data


def _building_tip(row: Any, state: str) -> str:
    return lines(text(row.get("name"), "建筑"), f"编码 {text(row.get('code'))}",
                 f"高度 {number(row.get('height_m'))} 米 · 地上 {number(row.get('floors_above'))} 层",
                 f"用途 {c.USE_LABELS.get(str(row.get('use')), text(row.get('use')))}", text(row.get("address"), ""),
                 f"状态 {c.STATE_LABELS.get(state, state)}")


_BUILDING_LOOK: dict[str, Any] = {
    "wireframe": False, "filled": True, "stroked": False, "pickable": True, "auto_highlight": True,
    "highlight_color": [255, 255, 255, 90], "material": {"ambient": 0.45, "diffuse": 0.6, "shininess": 24}}


def _inline_buildings(layer_id: str, frame: gpd.GeoDataFrame, states: pd.Series, *,
                      extruded: bool = True) -> pdk.Layer:
    def extra(row: Any) -> dict[str, Any]:
        state = states.get(int(row.name), "normal")
        return {"state": state, "fill": color(c.state_color(state))}

    collection = feature_collection(frame, ("name", "height_m"), extra=extra,
                                    tip=lambda row: _building_tip(row, states.get(int(row.name), "normal")))
    return pdk.Layer("GeoJsonLayer", id=layer_id, data=collection, extruded=extruded,
                     get_elevation="properties.height_m", get_fill_color="properties.fill", **_BUILDING_LOOK)


def _buildings_layers(data: DistrictData, tiles: TileSource | None) -> list[pdk.Layer]:
    if tiles is None:
        assert data.buildings is not None
        flat = _inline_buildings("buildings", data.buildings, data.states)
        tall = data.buildings[data.buildings["height_m"] > HIGH_RISE_M]
        return [flat, _inline_buildings("high-rises", tall, data.states)]
    # one zoom level coarser than the view: four times fewer (and still exact) tiles for the first frame
    layers = [mvt_layer("buildings", tiles.buildings, min_zoom=12, max_zoom=16, zoom_offset=-1, extruded=False,
                        get_elevation="properties.height_m", get_fill_color=color(c.STATE_COLORS["normal"]),
                        **_BUILDING_LOOK)]
    if data.flagged is not None and len(data.flagged):
        layers.append(_inline_buildings("alarmed", data.flagged, data.states, extruded=False))
    if data.high_rises is not None:
        layers.append(_inline_buildings("high-rises", data.high_rises, data.states))
    return layers


def _grid_layers(data: DistrictData) -> list[pdk.Layer]:
    fills = grid_fills(data)
    grids = feature_collection(data.grids, ("code", "name"), tip=lambda row: grid_tip(data, row), simplify_m=1.5,
                               extra=lambda row: {"fill": color(fills[data.grids.index.get_loc(row.name)]),
                                                  "figure": number(row.get(data.figure))})
    communities = feature_collection(data.communities, ("code", "name"), simplify_m=1.5)
    return [
        pdk.Layer("GeoJsonLayer", id="grids", data=grids, filled=True, stroked=True, get_fill_color="properties.fill",
                  get_line_color=color(c.GRID_LINE), line_width_min_pixels=0.6, pickable=True,
                  parameters={"depthWriteEnabled": False}),
        pdk.Layer("GeoJsonLayer", id="communities", data=communities, filled=False, stroked=True,
                  get_line_color=color(c.COMMUNITY_LINE), line_width_min_pixels=1.6, pickable=False),
    ]


def _road_layers(data: DistrictData) -> list[pdk.Layer]:
    roads = feature_collection(data.roads, ("name", "road_class"), tip=road_tip,
                               extra=lambda row: {"width": road_width(row)}, simplify_m=1.0)
    return [pdk.Layer("GeoJsonLayer", id="roads", data=roads, filled=False, stroked=True,
                      get_line_color=list(ROAD_COLOR), get_line_width="properties.width", line_width_units='"meters"',
                      line_width_min_pixels=1, pickable=True)]


def _label_records(data: DistrictData, towers: list[dict[str, Any]],
                   stations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every Chinese label of the district screen, for one text layer: community, road, station and tower names."""
    out = [{"position": [round(p.x, 6), round(p.y, 6)], "label": str(n), "size": 15, "color": [190, 220, 255, 255],
            "offset": [0, 0]}
           for p, n in zip(data.communities.geometry.representative_point(), data.communities["name"], strict=True)]
    major = data.roads[data.roads["road_class"].isin(["expressway", "arterial"])]
    for name, group in major.groupby("name"):
        line = group.geometry.union_all()
        point = line.interpolate(0.5, normalized=True) if hasattr(line, "interpolate") else line.centroid
        out.append({"position": [round(point.x, 6), round(point.y, 6)], "label": str(name), "size": 12,
                    "color": [225, 232, 245, 255], "offset": [0, 0]})
    out += [{"position": s["position"], "label": s["label"], "size": 13, "color": [255, 205, 205, 255],
             "offset": [0, -18]} for s in stations]
    out += [{"position": t["position"], "label": t["label"], "size": 12, "color": [170, 245, 255, 255],
             "offset": [0, -16]} for t in towers[:40]]
    return out


def _tower_records(data: DistrictData, linked: bool) -> list[dict[str, Any]]:
    towers = data.towers
    return point_records(
        towers.set_geometry(towers.geometry.representative_point()), ("name", "height_m"),
        z=(towers["height_m"].astype(float) + 4).tolist(),
        tip=lambda row: lines(text(row.get("name")), f"超高层建筑 · {number(row.get('height_m'))} 米",
                              f"地上 {number(row.get('floors_above'))} 层 · 地下 {number(row.get('floors_below'))} 层",
                              text(row.get("address"), ""), "点击查看楼宇消防三维模型" if linked else ""),
        extra=lambda row: {"label": text(row.get("name"), ""),
                           **({"href": f"map/buildings/{int(row.name)}"} if linked else {})})


def _station_records(data: DistrictData) -> list[dict[str, Any]]:
    return point_records(
        data.fire_stations, ("name",),
        tip=lambda row: lines(text(row.get("name")), f"消防站 · 消防车辆 {number(row.get('engines'))} 辆",
                              text(row.get("address"), "")),
        extra=lambda row: {"label": text(row.get("name"), "")})


def _tower_layer(records: list[dict[str, Any]]) -> pdk.Layer:
    return pdk.Layer("ScatterplotLayer", id="towers", data=records, get_position="position", get_radius=7,
                     radius_units='"pixels"', stroked=True, filled=True, get_fill_color=[0, 229, 255, 70],
                     get_line_color=color(c.TOWER_MARK), line_width_min_pixels=2, billboard=True, pickable=True,
                     parameters=ON_TOP)


def _point_layers(data: DistrictData, tiles: TileSource | None, stations: list[dict[str, Any]]) -> list[pdk.Layer]:
    out = [
        pdk.Layer("ScatterplotLayer", id="fire-stations", data=stations, get_position="position", get_radius=9,
                  radius_units='"pixels"', get_fill_color=color(c.STATION_COLOR), get_line_color=[255, 255, 255, 255],
                  stroked=True, line_width_min_pixels=2, billboard=True, pickable=True, parameters=ON_TOP),
    ]
    if data.hydrants is not None:
        hydrants = point_records(
            data.hydrants, ("code", "status"),
            tip=lambda row: lines("室外消火栓", f"编码 {text(row.get('code'))}",
                                  f"状态 {c.DEVICE_LABELS.get(str(row.get('status')), text(row.get('status')))}"),
            extra=lambda row: {"color": color(c.HYDRANT_COLOR if row.get("status") == "normal"
                                              else c.device_color(str(row.get("status"))))})
        out.append(pdk.Layer("ScatterplotLayer", id="hydrants", data=hydrants, get_position="position",
                             get_radius=2.5, radius_units='"pixels"', get_fill_color="color", pickable=True))
    status_color = ("properties.status == 'offline' ? {offline} : properties.status == 'fault' ? {fault} : "
                    "properties.status == 'alarm' ? {alarm} : {online}").format(
        **{k: color(c.device_color(k)) for k in ("offline", "fault", "alarm", "online")})
    if tiles is not None and tiles.sensors is not None:
        out.append(mvt_layer("sensors", tiles.sensors, min_zoom=15, max_zoom=16, point_type='"circle"',
                             get_point_radius=2.5, point_radius_units='"pixels"', get_fill_color=status_color,
                             stroked=False))
    elif data.sensors is not None:
        sensors = point_records(
            data.sensors, ("code", "type", "status"),
            tip=lambda row: lines(f"{c.SENSOR_LABELS.get(str(row.get('type')), '物联设备')} {text(row.get('code'))}",
                                  f"状态 {c.DEVICE_LABELS.get(str(row.get('status')), text(row.get('status')))}"),
            extra=lambda row: {"color": color(c.device_color(str(row.get("status"))))})
        out.append(pdk.Layer("ScatterplotLayer", id="sensors", data=sensors, get_position="position", get_radius=2,
                             radius_units='"pixels"', get_fill_color="color", pickable=True))
    return out


def _legend(data: DistrictData) -> list[dict[str, Any]]:
    name, _ = FIGURES[data.figure]
    values = data.grids[data.figure].astype(float).to_numpy() if data.figure in data.grids else []
    cuts = c.breaks(values)
    classes = [(c.RAMP[0], f"≤ {number(cuts[0])}")] + [(c.RAMP[i + 1], f"> {number(b)}") for i, b in enumerate(cuts)]
    blocks = [legend("建筑状态", [(c.state_color(s), c.STATE_LABELS[s]) for s in reversed(c.STATES)]),
              legend(f"网格 · {name}", classes[::-1]),
              legend("图例", [(c.TOWER_MARK, "超高层建筑（>100 米）"), (c.STATION_COLOR, "消防站")]
                     + ([(c.HYDRANT_COLOR, "室外消火栓")] if data.hydrants is not None else []))]
    return blocks


def district_screen(data: DistrictData, tiles: TileSource | None = None) -> Screen:
    """The district screen for ``data``; with ``tiles``, buildings and sensors come from the service's tiles.

    With ``data.ground`` (the baked ground image) the flat layers are not sent as vectors: the image shows them,
    ``Screen.hit`` keeps the grids and roads hoverable, and the building tiles are deferred past the first frame.
    """
    layers: list[pdk.Layer] = []
    ground = data.ground or data.basemap
    if ground is not None:
        layers.append(pdk.Layer("BitmapLayer", id="basemap", image=f'"{ground.image}"', bounds=list(ground.bounds),
                                texture_parameters=BASEMAP_TEXTURE, opacity=1.0, pickable=False))
    if data.ground is None:
        layers += _grid_layers(data) + _road_layers(data)
    layers += _buildings_layers(data, tiles)
    towers, stations = _tower_records(data, linked=tiles is not None), _station_records(data)
    layers += [*_point_layers(data, tiles, stations), _tower_layer(towers)]
    # one text layer for every label: one font atlas and one pipeline to build before the first frame
    layers.append(text_layer("labels", _label_records(data, towers, stations), size="size", get_color="color",
                             get_pixel_offset="offset"))
    bounds = data.grids.total_bounds if len(data.grids) else data.towers.total_bounds
    center = ((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)
    view = map_view(center[0], center[1] - (bounds[3] - bounds[1]) * 0.08, fit_zoom(bounds) + 0.35, pitch=50,
                    bearing=-12)
    count = data.buildings if data.buildings is not None else data.footprints
    screen = Screen(
        deck=deck(layers, view, "深圳北站国际商务区 · 指挥中心"),
        title="深圳北站国际商务区数字孪生 · 消防安全一张图",
        subtitle=f"建筑 {number(len(count)) if count is not None else '7,000+'} 栋 · "
                 f"超高层 {len(data.towers)} 栋 · 网格 {len(data.grids)} 个",
        legend=_legend(data),
        tooltips={"buildings": "{name}\n编码 {code}\n高度 {height_m} 米 · 地上 {floors_above} 层\n{address}\n"
                               "状态 {_state}",
                  "sensors": "物联设备 {code}\n类型 {type}\n状态 {status}"},
        controls={"figure": {"current": data.figure, "choices": figure_choices(data.staff)}},
        lod={"zoom": EXTRUDE_ALL_FROM_ZOOM, "flat": "buildings", "detail": ["high-rises", "alarmed"],
             "near": ["sensors"]},
        alarms=data.alarms,
    )
    if data.ground is not None:
        screen.hit = hit_features(data)
        screen.defer = ["buildings"] if tiles is not None else []
    if data.staff:
        screen.live = {"layers": ["buildings", "alarmed", "high-rises"],
                       "states": {str(k): v for k, v in data.states.items()},
                       "colors": {s: color(c.state_color(s)) for s in c.STATES},
                       "labels": c.STATE_LABELS, "severity": c.SEVERITY_STATE, "since": data.since,
                       "names": {str(int(i)): text(n, "") for i, n in data.towers["name"].items()}}
    return screen
