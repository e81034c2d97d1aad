"""The tower view: one super high-rise in 3D for fire-safety inspectors.

Floors are stacked slabs at their real elevations (refuge floors in green, floors with an open alarm in the alarm's
colour), fire facilities and IoT sensors sit at their real heights coloured by status, and the rescue pads, fire
lanes and neighbouring buildings stand around. Hovering names a point; clicking a floor lists what is on it.

:func:`load_tower` reads one building's fire model from a store (staff data); :func:`tower_screen` is pure.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pydeck as pdk
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from twin.render import colors as c
from twin.render.basemap import BASEMAP_TEXTURE, Basemap
from twin.render.screen import (
    Screen,
    clean,
    color,
    deck,
    feature_collection,
    legend,
    lines,
    map_view,
    number,
    point_records,
    text,
    text_layer,
)
from twin.store.base import FeatureQuery, Filter, Op, Sort, Store

OPEN = ("open", "acknowledged")


@dataclass
class TowerData:
    """One building's fire model, as read from the store."""

    building_id: int
    building: pd.Series
    levels: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    sensors: gpd.GeoDataFrame
    alarms: pd.DataFrame
    neighbours: gpd.GeoDataFrame
    platforms: gpd.GeoDataFrame
    lanes: gpd.GeoDataFrame
    basemap: Basemap | None = None


def _by_building(store: Store, layer_id: str, building_id: int, *extra: Filter) -> Any:
    return store.query(layer_id, FeatureQuery(filters=(Filter("building_id", Op.EQ, building_id), *extra)))


def load_tower(store: Store, building_id: int, *, basemap: Basemap | None = None,
               neighbours_m: float = 250.0) -> TowerData:
    """Read building ``building_id``'s levels, facilities, sensors, open alarms and surroundings."""
    building = store.get("buildings", building_id)
    footprint = building.geometry.iloc[0]
    levels = store.query("levels", FeatureQuery(filters=(Filter("building_id", Op.EQ, building_id),),
                                                sort=(Sort("ordinal"),)))
    near = store.within_distance("buildings", footprint, neighbours_m)
    return TowerData(
        building_id=building_id, building=building.iloc[0], levels=levels,
        facilities=_by_building(store, "fire_facilities", building_id),
        sensors=_by_building(store, "sensors", building_id),
        alarms=_by_building(store, "alarms", building_id, Filter("status", Op.IN, list(OPEN))),
        neighbours=near[near.index != building_id], platforms=_by_building(store, "rescue_platforms", building_id),
        lanes=_by_building(store, "fire_lanes", building_id), basemap=basemap)


def estimated_levels(building: pd.Series, building_id: int) -> gpd.GeoDataFrame:
    """Uniform floors from the floor counts, for a building whose floor model is not mapped yet."""
    above = int(clean(building.get("floors_above")) or 1)
    below = int(clean(building.get("floors_below")) or 0)
    storey = float(clean(building.get("height_m")) or 3.0 * above) / max(above, 1)
    ordinals = [o for o in range(-below, above + 1) if o != 0]
    rows = [{"building_id": building_id, "ordinal": o, "name": f"B{-o}" if o < 0 else f"{o}F",
             "elevation_m": (o - 1) * storey if o > 0 else o * 3.6, "height_m": storey if o > 0 else 3.6,
             "is_refuge": False, "use": None} for o in ordinals]
    frame = pd.DataFrame(rows, index=pd.RangeIndex(-len(rows), 0, name="id"))
    return gpd.GeoDataFrame(frame, geometry=[building.geometry] * len(rows), crs="EPSG:4326")


def _outline(geometry: BaseGeometry) -> Polygon:
    if isinstance(geometry, Polygon):
        return geometry
    parts = list(getattr(geometry, "geoms", [geometry]))
    return max(parts, key=lambda g: g.area)


def _slab(geometry: BaseGeometry, z: float) -> list[list[float]]:
    ring = np.asarray(_outline(geometry).exterior.coords)[:, :2]
    return [[round(float(x), 7), round(float(y), 7), round(z, 2)] for x, y in ring]


def _z(frame: gpd.GeoDataFrame) -> np.ndarray:
    return np.nan_to_num(shapely.get_z(frame.geometry.to_numpy()), nan=0.0)


def _counts(values: pd.Series, labels: dict[str, str]) -> str:
    counter = Counter(str(v) for v in values)
    return " · ".join(f"{labels.get(k, k)} {n}" for k, n in counter.most_common())


def level_panel(level: pd.Series, facilities: pd.DataFrame, sensors: pd.DataFrame, alarms: pd.DataFrame,
                sensor_codes: dict[int, str]) -> dict[str, Any]:
    """What is on one floor, for the side panel: facilities by type, faults, sensors by status, alarms."""
    title = f"{text(level.get('name'))} · 标高 {number(level.get('elevation_m'))} 米"
    out = [f"层高 {number(level.get('height_m'))} 米" + (" · 避难层" if bool(level.get("is_refuge")) else "")]
    if clean(level.get("use")):
        out.append(f"用途 {c.LEVEL_USE_LABELS.get(str(level.get('use')), str(level.get('use')))}")
    out.append(f"消防设施 {len(facilities)} 个" + (f"：{_counts(facilities['type'], c.FACILITY_LABELS)}"
                                                 if len(facilities) else ""))
    broken = facilities[facilities["status"] != "normal"] if len(facilities) else facilities
    for _, row in broken.iterrows():
        out.append(f"  ⚠ {c.FACILITY_LABELS.get(row['type'], row['type'])} {row['code']} "
                   f"{c.DEVICE_LABELS.get(row['status'], row['status'])}")
    out.append(f"物联设备 {len(sensors)} 个" + (f"：{_counts(sensors['status'], c.DEVICE_LABELS)}"
                                              if len(sensors) else ""))
    for _, row in sensors[sensors["status"] != "online"].iterrows() if len(sensors) else []:
        out.append(f"  · {c.SENSOR_LABELS.get(row['type'], row['type'])} {row['code']} "
                   f"{c.DEVICE_LABELS.get(row['status'], row['status'])}")
    for _, row in alarms.iterrows():
        sensor = sensor_codes.get(int(row["sensor_id"])) if not pd.isna(row.get("sensor_id")) else None
        out.append(f"  🔥 {c.SEVERITY_LABELS.get(row['severity'], '告警')} "
                   f"{text(row.get('message'), c.alarm_text(row['alarm_type']))}" + (f"（{sensor}）" if sensor else ""))
    return {"title": title, "lines": out}


def _floor_summary(facilities: pd.DataFrame, sensors: pd.DataFrame) -> str:
    faults = int((facilities["status"] != "normal").sum()) if len(facilities) else 0
    offline = int((sensors["status"] != "online").sum()) if len(sensors) else 0
    return (f"设施 {len(facilities)}" + (f"（异常 {faults}）" if faults else "")
            + f" · 设备 {len(sensors)}" + (f"（异常 {offline}）" if offline else ""))


def floor_list(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The floors as the page lists them, top first: name, refuge, alarm state, a summary and the floor's panel."""
    keys = ("id", "name", "refuge", "state", "summary", "panel")
    ordered = sorted(records, key=lambda r: r["polygon"][0][2] if r["polygon"] else 0.0, reverse=True)
    return [{k: r[k] for k in keys} for r in ordered]


def _level_state(alarms: pd.DataFrame) -> str:
    return c.worst_state(c.SEVERITY_STATE.get(str(s), "normal") for s in alarms["severity"]) if len(alarms) else ""


def _levels_layer(data: TowerData, levels: gpd.GeoDataFrame) -> tuple[pdk.Layer, list[dict[str, Any]]]:
    by_level = {kind: frame.groupby("level_id") if len(frame) else None
                for kind, frame in (("f", data.facilities), ("s", data.sensors), ("a", data.alarms))}
    codes = {int(i): str(code) for i, code in data.sensors["code"].items()} if len(data.sensors) else {}

    def part(kind: str, frame: pd.DataFrame, level_id: int) -> pd.DataFrame:
        groups = by_level[kind]
        return groups.get_group(level_id) if groups is not None and level_id in groups.groups else frame.iloc[:0]

    records = []
    for level_id, level in levels.iterrows():
        alarms = part("a", data.alarms, int(level_id))
        facilities, sensors = part("f", data.facilities, int(level_id)), part("s", data.sensors, int(level_id))
        panel = level_panel(level, facilities, sensors, alarms, codes)
        state = _level_state(alarms)
        refuge = bool(level.get("is_refuge"))
        fill = c.state_color(state) if state and state != "normal" else c.REFUGE_COLOR if refuge else c.SLAB_COLOR
        height = float(clean(level.get("height_m")) or 3.0)
        records.append({"id": int(level_id), "polygon": _slab(level.geometry, float(level["elevation_m"])),
                        "thickness": round(height if refuge or state else max(0.8, height * 0.3), 2),
                        "fill": color(fill), "name": text(level.get("name")), "refuge": refuge,
                        "state": state if state and state != "normal" else "",
                        "summary": _floor_summary(facilities, sensors),
                        "tip": lines(panel["title"], *panel["lines"][:3], "点击查看本层详情"), "panel": panel})
    layer = pdk.Layer("PolygonLayer", id="levels", data=records, get_polygon="polygon", extruded=True,
                      get_elevation="thickness", get_fill_color="fill", get_line_color=[200, 230, 255, 120],
                      wireframe=True, pickable=True, auto_highlight=True, highlight_color=[255, 255, 255, 120],
                      material={"ambient": 0.5, "diffuse": 0.6},
                      # see-through: the facilities and sensors inside stay visible between the slabs
                      parameters={"depthWriteEnabled": False})
    return layer, records


def _point_layers(data: TowerData, level_names: dict[int, str]) -> list[pdk.Layer]:
    def where(row: Any) -> str:
        level = row.get("level_id")
        return level_names.get(int(level), "") if level is not None and not pd.isna(level) else "室外"

    facilities = point_records(
        data.facilities, ("code", "type", "status"), z=_z(data.facilities).tolist(),
        tip=lambda row: lines(f"{c.FACILITY_LABELS.get(str(row['type']), str(row['type']))} {text(row.get('code'))}",
                              f"状态 {c.DEVICE_LABELS.get(str(row['status']), str(row['status']))} · {where(row)}",
                              f"上次检查 {text(row.get('last_inspected'))} · 下次 {text(row.get('next_inspection'))}"),
        extra=lambda row: {"color": color(c.device_color(str(row["status"])))})
    sensors = point_records(
        data.sensors, ("code", "type", "status"), z=_z(data.sensors).tolist(),
        tip=lambda row: lines(f"{c.SENSOR_LABELS.get(str(row['type']), '物联设备')} {text(row.get('code'))}",
                              f"状态 {c.DEVICE_LABELS.get(str(row['status']), str(row['status']))} · {where(row)}",
                              f"最新读数 {number(row.get('last_value'), 2)} {text(row.get('unit'), '')}",
                              f"最后上报 {text(row.get('last_seen'))}"),
        extra=lambda row: {"color": color(c.device_color(str(row["status"])))})
    return [
        pdk.Layer("ScatterplotLayer", id="facilities", data=facilities, get_position="position", get_radius=2.2,
                  radius_units='"pixels"', get_fill_color="color", billboard=True, pickable=True),
        pdk.Layer("ScatterplotLayer", id="sensors", data=sensors, get_position="position", get_radius=3.2,
                  radius_units='"pixels"', get_fill_color="color", billboard=True, pickable=True),
    ]


def _alarm_layers(data: TowerData, levels: gpd.GeoDataFrame) -> list[pdk.Layer]:
    if data.alarms.empty:
        return []
    sensor_xyz = {int(i): (g.x, g.y, z) for i, g, z in zip(data.sensors.index, data.sensors.geometry,
                                                            _z(data.sensors), strict=True)}
    centre = data.building.geometry.representative_point()
    records = []
    for alarm_id, row in data.alarms.iterrows():
        sensor = row.get("sensor_id")
        x, y, z = sensor_xyz.get(int(sensor), (centre.x, centre.y, 0.0)) if not pd.isna(sensor) else \
            (centre.x, centre.y, 0.0)
        level = levels["name"].get(int(row["level_id"])) if not pd.isna(row.get("level_id")) else None
        label = f"{c.SEVERITY_LABELS.get(row['severity'], '告警')} {text(level, '')}".strip()
        records.append({"id": int(alarm_id), "position": [round(x, 7), round(y, 7), round(float(z) + 1.5, 2)],
                        "label": label, "color": color(c.state_color(c.SEVERITY_STATE.get(row["severity"], "fault"))),
                        "tip": lines(label, text(row.get("message"), c.alarm_text(row["alarm_type"])),
                                     f"{c.ALARM_STATUS_LABELS.get(row['status'], row['status'])} · "
                                     f"{text(row.get('opened_at'))}")})
    return [
        pdk.Layer("ScatterplotLayer", id="alarms", data=records, get_position="position", get_radius=11,
                  radius_units='"pixels"', filled=False, stroked=True, get_line_color="color",
                  line_width_min_pixels=3, billboard=True, pickable=True),
        text_layer("alarm-labels", records, size=14, get_pixel_offset=[0, -22], get_color=[255, 220, 210, 255]),
    ]


def _ground_layers(data: TowerData) -> list[pdk.Layer]:
    near = feature_collection(
        data.neighbours, ("name", "height_m"),
        tip=lambda row: lines(text(row.get("name"), "建筑"), f"高度 {number(row.get('height_m'))} 米"))
    out = [pdk.Layer("GeoJsonLayer", id="neighbours", data=near, extruded=True, get_elevation="properties.height_m",
                     get_fill_color=[70, 90, 110, 70], pickable=True, material=False)]
    if len(data.platforms):
        out.append(pdk.Layer("GeoJsonLayer", id="rescue-platforms", data=feature_collection(
            data.platforms, ("status",), tip=lambda row: lines(
                "消防车登高操作场地", f"{number(row.get('length_m'))} × {number(row.get('width_m'))} 米",
                f"状态 {c.DEVICE_LABELS.get(str(row.get('status')), text(row.get('status')))}")),
            get_fill_color=[255, 235, 59, 150], get_line_color=[251, 192, 45, 255], line_width_min_pixels=1,
            pickable=True))
    if len(data.lanes):
        out.append(pdk.Layer("GeoJsonLayer", id="fire-lanes", data=feature_collection(
            data.lanes, ("status",), tip=lambda row: lines(
                "消防车道", f"净宽 {number(row.get('width_m'))} 米 · 净高 {number(row.get('clear_height_m'))} 米")),
            get_line_color=[244, 67, 54, 220], get_line_width=4, line_width_units='"meters"', pickable=True))
    return out


def _summary(data: TowerData, levels: gpd.GeoDataFrame, estimated: bool) -> dict[str, Any]:
    b = data.building
    refuge = [str(n) for n in levels.loc[levels["is_refuge"].fillna(False).astype(bool), "name"]]
    faults = int((data.facilities["status"] == "fault").sum()) if len(data.facilities) else 0
    offline = int((data.sensors["status"] == "offline").sum()) if len(data.sensors) else 0
    return {"title": text(b.get("name"), f"建筑 {data.building_id}"), "lines": [
        f"编码 {text(b.get('code'))} · 高度 {number(b.get('height_m'))} 米",
        f"地上 {number(b.get('floors_above'))} 层 · 地下 {number(b.get('floors_below'))} 层",
        text(b.get("address"), ""),
        "楼层模型未建立：按层数估算" if estimated else f"避难层 {'、'.join(refuge) if refuge else '无'}",
        f"消防设施 {len(data.facilities)} 个 · 故障 {faults}",
        f"物联设备 {len(data.sensors)} 个 · 离线 {offline}",
        f"未处置告警 {len(data.alarms)} 条", "点击楼层（三维模型或楼层列表）查看本层设施与设备"]}


def tower_screen(data: TowerData) -> Screen:
    """The 3D tower view of ``data``."""
    estimated = data.levels.empty
    levels = estimated_levels(data.building, data.building_id) if estimated else data.levels
    level_layer, records = _levels_layer(data, levels)
    names = {int(i): str(n) for i, n in levels["name"].items()}
    layers: list[pdk.Layer] = []
    if data.basemap is not None:
        layers.append(pdk.Layer("BitmapLayer", id="basemap", image=f'"{data.basemap.image}"',
                                bounds=list(data.basemap.bounds), texture_parameters=BASEMAP_TEXTURE, opacity=0.55))
    layers += [*_ground_layers(data), level_layer, *_point_layers(data, names), *_alarm_layers(data, levels)]
    top = float(clean(data.building.get("height_m")) or 50.0)
    labels = [{"position": [*_slab(data.building.geometry, 0)[0][:2], round(top + 12, 1)],
               "label": text(data.building.get("name"), "")}]
    layers.append(text_layer("tower-label", labels, size=16, get_color=[170, 245, 255, 255]))
    centre = data.building.geometry.representative_point()
    zoom = 17.9 - float(np.log2(max(top, 60.0) / 150.0))
    view = map_view(centre.x, centre.y, zoom, pitch=58, bearing=28, max_zoom=22, min_zoom=13)
    view[0].position = [0, 0, round(top * 0.45, 1)]
    grid_code = clean(data.building.get("grid_code"))
    return Screen(
        deck=deck(layers, view, f"{text(data.building.get('name'))} 消防三维模型"),
        title=f"{text(data.building.get('name'), '建筑')} · 消防设施三维模型",
        subtitle=f"{number(top)} 米 · {len(levels)} 层 · 消防设施 {len(data.facilities)} · "
                 f"物联设备 {len(data.sensors)}",
        legend=[legend("楼层", [(c.SLAB_COLOR, "楼层"), (c.REFUGE_COLOR, "避难层"),
                                (c.state_color("fire_alarm"), "有火警/预警的楼层")]),
                legend("设施与设备状态", [(c.device_color(s), c.DEVICE_LABELS[s])
                                          for s in ("normal", "online", "fault", "disabled", "offline", "alarm")])],
        panel=_summary(data, levels, estimated),
        floors=floor_list(records),
        links=[{"href": "", "label": "← 全区态势"}]
        + ([{"href": f"map/grids/{grid_code}", "label": "所在网格"}] if grid_code else []),
    )
