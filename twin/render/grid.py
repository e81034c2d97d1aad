"""The grid view: one management grid (网格) with its buildings, sensors and open alarms, for a grid officer.

:func:`load_grid` reads what a role may see (sensors and alarms are staff data); :func:`grid_screen` is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pydeck as pdk
import shapely

from layers import STAFF, Role
from twin.errors import NotFound
from twin.render import colors as c
from twin.render.basemap import BASEMAP_TEXTURE, Basemap
from twin.render.screen import (
    Screen,
    clean,
    color,
    deck,
    feature_collection,
    fit_zoom,
    legend,
    lines,
    map_view,
    number,
    point_records,
    text,
    text_layer,
)
from twin.render.state import OPEN_STATUSES, building_states, status_shares
from twin.store.base import BBox, FeatureQuery, Filter, Op, Store


@dataclass
class GridData:
    """One grid cell and what lies in it."""

    grid: pd.Series
    buildings: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame
    staff: bool = False
    #: Buildings around the grid, drawn as faint context.
    around: gpd.GeoDataFrame | None = None
    sensors: gpd.GeoDataFrame | None = None
    alarms: pd.DataFrame = field(default_factory=pd.DataFrame)
    states: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))
    basemap: Basemap | None = None


def load_grid(store: Store, code: str, *, role: Role = Role.ADMIN, basemap: Basemap | None = None) -> GridData:
    """Read grid ``code`` (any level) with its buildings, roads and — for staff — sensors and open alarms."""
    found = store.query("grids", FeatureQuery(filters=(Filter("code", Op.EQ, code),), limit=1))
    if found.empty:
        raise NotFound(f"no grid with code {code!r}")
    grid = found.iloc[0]
    area = grid.geometry
    minx, miny, maxx, maxy = area.bounds
    pad = 0.002  # about 200 m of surroundings
    nearby = store.query("buildings", FeatureQuery(bbox=BBox(minx - pad, miny - pad, maxx + pad, maxy + pad)))
    inside = nearby.geometry.representative_point().within(area).to_numpy()
    buildings = nearby[inside]
    data = GridData(grid=grid, buildings=buildings, roads=store.query("roads", FeatureQuery(geometry=area)),
                    staff=role in STAFF or role is Role.ADMIN, basemap=basemap, around=nearby[~inside])
    if data.staff:
        ids = [int(i) for i in buildings.index]
        data.sensors = store.query("sensors", FeatureQuery(geometry=area))
        alarms = store.query("alarms", FeatureQuery(filters=(Filter("status", Op.IN, list(OPEN_STATUSES)),
                                                             Filter("grid_code", Op.LIKE, f"{code}%"))))
        data.alarms = alarms
        faults = store.query("fire_facilities", FeatureQuery(filters=(Filter("building_id", Op.IN, ids),),
                                                            properties=("building_id", "status"))) if ids else None
        data.states = building_states(alarms, status_shares(faults, "fault") if faults is not None else None,
                                      status_shares(data.sensors, "offline"))
    return data


def _alarm_records(data: GridData) -> list[dict[str, Any]]:
    if data.alarms.empty:
        return []
    sensors = data.sensors if data.sensors is not None else gpd.GeoDataFrame(geometry=[])
    points = {int(i): (g.x, g.y, float(z) if z == z else 0.0) for i, g, z in
              zip(sensors.index, sensors.geometry, shapely.get_z(sensors.geometry.to_numpy()), strict=True)}
    centres = data.buildings.geometry.representative_point()
    records = []
    for alarm_id, row in data.alarms.iterrows():
        sensor, building = clean(row.get("sensor_id")), clean(row.get("building_id"))
        if sensor is not None and int(sensor) in points:
            x, y, z = points[int(sensor)]
        elif building is not None and int(building) in centres.index:
            point = centres[int(building)]
            x, y, z = point.x, point.y, 0.0
        else:
            continue
        state = c.SEVERITY_STATE.get(str(row["severity"]), "fault")
        name = data.buildings["name"].get(int(building)) if building is not None else None
        label = f"{c.SEVERITY_LABELS.get(str(row['severity']), '告警')} {text(name, '')}".strip()
        records.append({"id": int(alarm_id), "position": [round(x, 7), round(y, 7), round(z + 2, 1)], "label": label,
                        "color": color(c.state_color(state)),
                        "tip": lines(label, text(row.get("message"), c.alarm_text(str(row["alarm_type"]))),
                                     f"{c.ALARM_STATUS_LABELS.get(str(row['status']), row['status'])} · "
                                     f"{text(row.get('opened_at'))}")})
    return records


def grid_screen(data: GridData) -> Screen:
    """The grid view of ``data``."""
    g = data.grid
    states = data.states
    layers: list[pdk.Layer] = []
    if data.basemap is not None:
        layers.append(pdk.Layer("BitmapLayer", id="basemap", image=f'"{data.basemap.image}"',
                                bounds=list(data.basemap.bounds), texture_parameters=BASEMAP_TEXTURE, opacity=0.8))
    outline = feature_collection(gpd.GeoDataFrame([g], geometry="geometry", crs="EPSG:4326"), ("code", "name"),
                                 tip=lambda row: lines(text(row.get("name")), f"编码 {text(row.get('code'))}",
                                                       f"网格员 {text(row.get('officer'))}"))
    layers.append(pdk.Layer("GeoJsonLayer", id="grid", data=outline, filled=True, stroked=True,
                            get_fill_color=[33, 150, 243, 40], get_line_color=[130, 200, 255, 255],
                            line_width_min_pixels=3, pickable=False))
    layers.append(pdk.Layer("GeoJsonLayer", id="roads", data=feature_collection(
        data.roads, ("name",), tip=lambda row: text(row.get("name"))), get_line_color=[205, 215, 230, 160],
        get_line_width=10, line_width_units='"meters"', line_width_min_pixels=1, pickable=True))

    if data.around is not None and len(data.around):
        layers.append(pdk.Layer("GeoJsonLayer", id="around", data=feature_collection(
            data.around, ("name", "height_m"), tip=lambda row: lines(text(row.get("name"), "建筑"),
                                                                     f"高度 {number(row.get('height_m'))} 米")),
            extruded=True, get_elevation="properties.height_m", get_fill_color=[70, 90, 110, 90], pickable=True,
            material=False))

    def building_extra(row: Any) -> dict[str, Any]:
        state = states.get(int(row.name), "normal")
        return {"fill": color(c.state_color(state))} | (
            {"href": f"map/buildings/{int(row.name)}"} if float(row.get("height_m") or 0) > 100 else {})

    buildings = feature_collection(
        data.buildings, ("name", "height_m"), extra=building_extra,
        tip=lambda row: lines(text(row.get("name"), "建筑"), f"高度 {number(row.get('height_m'))} 米 · "
                              f"地上 {number(row.get('floors_above'))} 层",
                              f"居住人口 {number(row.get('residents'))} · 出租屋 {number(row.get('rental_units'))} · "
                              f"法人单位 {number(row.get('enterprises'))}", text(row.get("address"), ""),
                              f"状态 {c.STATE_LABELS.get(states.get(int(row.name), 'normal'), '正常')}"))
    layers.append(pdk.Layer("GeoJsonLayer", id="buildings", data=buildings, extruded=True,
                            get_elevation="properties.height_m", get_fill_color="properties.fill", pickable=True,
                            auto_highlight=True, highlight_color=[255, 255, 255, 90], opacity=0.75,
                            # see-through: the sensors inside stay visible
                            parameters={"depthWriteEnabled": False}))
    if data.sensors is not None and len(data.sensors):
        sensors = point_records(
            data.sensors, ("code", "type", "status"), z=shapely.get_z(data.sensors.geometry.to_numpy()).tolist(),
            tip=lambda row: lines(f"{c.SENSOR_LABELS.get(str(row['type']), '物联设备')} {text(row.get('code'))}",
                                  f"状态 {c.DEVICE_LABELS.get(str(row['status']), str(row['status']))}",
                                  f"最新读数 {number(row.get('last_value'), 2)} {text(row.get('unit'), '')}"),
            extra=lambda row: {"color": color(c.device_color(str(row["status"])))})
        layers.append(pdk.Layer("ScatterplotLayer", id="sensors", data=sensors, get_position="position",
                                get_radius=3, radius_units='"pixels"', get_fill_color="color", billboard=True,
                                pickable=True))
    alarms = _alarm_records(data)
    if alarms:
        layers.append(pdk.Layer("ScatterplotLayer", id="alarms", data=alarms, get_position="position",
                                get_radius=12, radius_units='"pixels"', filled=False, stroked=True,
                                get_line_color="color", line_width_min_pixels=3, billboard=True, pickable=True))
        layers.append(text_layer("alarm-labels", alarms, size=14, get_pixel_offset=[0, -22],
                                 get_color=[255, 220, 210, 255]))
    point = g.geometry.representative_point()
    layers.append(text_layer("grid-label", [{"position": [point.x, point.y], "label": text(g.get("name"))}], size=18))
    bounds = g.geometry.bounds
    tallest = float(data.buildings["height_m"].max()) if len(data.buildings) else 0.0
    zoom = fit_zoom(bounds) - 0.3 - max(0.0, float(np.log2(max(tallest, 1.0) / 80.0)))
    view = map_view((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, zoom, pitch=45, max_zoom=21)
    counts = data.states.value_counts() if len(data.states) else pd.Series(dtype=int)
    summary = [f"编码 {text(g.get('code'))} · 网格员 {text(g.get('officer'))}",
               f"人口 {number(g.get('population'))} · 户数 {number(g.get('households'))}",
               f"建筑 {len(data.buildings)} 栋 · 超高层 {int((data.buildings['height_m'] > 100).sum())} 栋"]
    if data.staff:
        summary += [f"物联设备 {len(data.sensors) if data.sensors is not None else 0} 个 · "
                    f"未处置告警 {len(data.alarms)} 条",
                    "建筑状态：" + (" · ".join(f"{c.STATE_LABELS[s]} {int(counts[s])}" for s in reversed(c.STATES)
                                            if s in counts.index) or "全部正常")]
        summary += [f"  {a['label']}：{a['tip'].splitlines()[1]}" for a in alarms[:12]]
    parent = clean(g.get("parent_code"))
    return Screen(
        deck=deck(layers, view, f"{text(g.get('name'))} 网格"),
        title=f"{text(g.get('name'))} · 网格视图", subtitle=summary[2],
        legend=[legend("建筑状态", [(c.state_color(s), c.STATE_LABELS[s]) for s in reversed(c.STATES)]),
                legend("物联设备", [(c.device_color(s), c.DEVICE_LABELS[s]) for s in
                                    ("online", "fault", "offline", "alarm")])],
        panel={"title": text(g.get("name")), "lines": summary},
        links=[{"href": "", "label": "← 全区态势"}] + ([{"href": f"map/grids/{parent}", "label": "上级网格"}]
                                                     if parent and len(str(parent)) > 9 else []),
    )
