"""The deterministic sample twin of the Shenzhen North Station (深圳北站) business district.

>>> from twin.sample import generate
>>> sample = generate()                       # the district, about 2 s
>>> int((sample.frames["buildings"]["height_m"] > 100).sum())
138
>>> sample.frames["buildings"].crs.to_epsg()
4326

The same seed always gives the same twin, byte for byte (``now`` defaults to a fixed instant, 2026-11-25 08:00 UTC,
and readings, alarms, last-seen and inspection dates are relative to it). ``scale="shenzhen"`` builds a
city-sized set for benchmarks (1,000,000 buildings and 270,000 sensors by default) with the same schema.

Planted imperfections, so the code checks have something true to find: one tower whose first refuge floor is
above 50 m; a few outdoor hydrants more than 120 m from any other; two rescue platforms of 15 × 10 m; one fire
lane 3.5 m wide and one with 3.8 m clearance; faulty and disabled facilities, overdue inspections; offline and
faulty sensors; alarm stories in the readings (see :mod:`twin.sample.history`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers import RASTERS, FieldType, get_layer
from twin.sample import assemble as out
from twin.sample import buildings, district, facilities, grids, history, registry, sensors, towers, upkeep
from twin.sample.common import REFERENCE_NOW, FloatArray, IntArray, StreetFrame, make_frame, stream, utc_ms
from twin.sample.rasters import RasterData, make_dem, make_void_risk, write_cog
from twin.sample.terrain import elevation

__all__ = ["REFERENCE_NOW", "SCALES", "RasterData", "SampleTwin", "generate", "write_rasters"]

SCALES = ("district", "shenzhen")
DISTRICT_HALF_M = 2250.0  # the district square: 4.5 × 4.5 km around the station
SHENZHEN_BUILDINGS, SHENZHEN_SENSORS = 1_000_000, 270_000
BUILDINGS_PER_KM2 = 330.0  # typical yield of the plot layout outside the core
BUILDINGS_PER_GRID = 60


@dataclass
class SampleTwin:
    """The generated twin: one frame per catalogue layer (ids from 1, lon/lat) and the rasters (EPSG:4547)."""

    frames: dict[str, gpd.GeoDataFrame | pd.DataFrame]
    rasters: dict[str, RasterData]
    seed: int
    scale: str


def generate(
    seed: int = 20261125,
    scale: str = "district",
    *,
    n_buildings: int | None = None,
    n_sensors: int | None = None,
    now: dt.datetime | None = None,
) -> SampleTwin:
    """Build the sample twin.

    Parameters
    ----------
    seed
        Seed of every random stream; the same seed gives the same twin.
    scale
        ``"district"`` (the 4.5 × 4.5 km North Station district, ~7,300 buildings, ~40,000 sensors) or
        ``"shenzhen"`` (a city-sized extent for benchmarks; 1,000,000 buildings and 270,000 sensors by default).
    n_buildings, n_sensors
        Exactly this many buildings / sensors instead of the natural counts (the extent grows if needed;
        sensors beyond those on the tower floors go into ordinary buildings).
    now
        The instant the twin is "as of" (timezone-aware); defaults to :data:`REFERENCE_NOW`.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; use one of {', '.join(SCALES)}")
    now = REFERENCE_NOW if now is None else now
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(dt.UTC)
    city = scale == "shenzhen"
    n_b = n_buildings if n_buildings is not None else SHENZHEN_BUILDINGS if city else None
    n_s = n_sensors if n_sensors is not None else SHENZHEN_SENSORS if city else None
    frame = StreetFrame.at_station()
    layout, plots = _layout(seed, frame, n_b, city)
    cell = 250.0 if not city else max(250.0, float(np.sqrt(4 * layout.half_u * layout.half_v / (n_b or 1)
                                                         * BUILDINGS_PER_GRID)))
    gs = grids.build(stream(seed, "grids"), frame, layout.half_u, layout.half_v, shenzhen=city, grid_cell_m=cell)
    bs = buildings.build(layout, plots, stream(seed, "buildings"), n_b)
    lv = towers.build_levels(stream(seed, "levels"), bs.towers)
    dem = make_dem(frame, DISTRICT_HALF_M, DISTRICT_HALF_M)

    floors = bs.floors_above.copy()
    floors[1:1 + len(lv.floors_above)] = lv.floors_above
    footprints = out.polygons(frame, bs.rect)
    grid_geoms = out.metric_to_lonlat(gs.geometry)
    grid_row = gs.grid_rows[_locate(footprints, grid_geoms[gs.grid_rows])]
    area = (bs.rect[:, 1] - bs.rect[:, 0]) * (bs.rect[:, 3] - bs.rect[:, 2])
    residents, rental, enterprises = registry.people(stream(seed, "people"), bs.use, bs.style, floors, area)
    expressways = set(layout.roads.name[layout.roads.road_class == "expressway"])
    road, number = registry.addresses(bs.rect, bs.block, layout.blocks, max(layout.half_u, layout.half_v),
                                      expressways)
    subdistrict = gs.name[gs.parent_row[gs.parent_row[grid_row]]].astype(str)
    address = np.strings.add(np.strings.add(subdistrict, road.astype(str)), np.strings.add(number.astype(str), "号"))
    address[0] = "民治街道致远中路28号"
    grid_code = gs.code[grid_row]
    codes = np.strings.add(np.strings.slice(grid_code.astype(str), 0, 6),
                           np.strings.zfill(np.arange(1, len(floors) + 1).astype(str), 8)).astype(object)
    cu, cv = bs.rect[:, :2].mean(axis=1), bs.rect[:, 2:].mean(axis=1)
    frames: dict[str, gpd.GeoDataFrame | pd.DataFrame] = {}
    frames["grids"] = _grids_frame(gs, grid_geoms, grid_row, residents, stream(seed, "households"))
    frames["buildings"] = make_frame("buildings", {
        "code": codes, "name": bs.name, "address": address.astype(object), "use": bs.use, "height_m": bs.height,
        "floors_above": floors, "floors_below": bs.floors_below,
        "ground_elevation_m": np.round(_ground(frame, dem, cu, cv), 1), "year_built": bs.year_built,
        "residents": residents, "rental_units": rental, "enterprises": enterprises, "grid_code": grid_code,
    }, footprints)
    frames["levels"] = out.levels_frame(frame, lv)

    t = len(lv.floors_above)
    core = np.hypot(cu, cv) < facilities.CORE_RADIUS_M + 400
    hydrants, _ = facilities.outdoor_hydrants(stream(seed, "hydrants"), layout.roads, bs.towers, bs.rect[core])
    indoor = facilities.indoor(lv, bs.towers)
    fac = facilities.merge(indoor, hydrants)
    up = upkeep.upkeep(stream(seed, "upkeep"), fac, np.arange(t) + 1, now)
    frames["fire_facilities"] = out.facilities_frame(frame, fac, up, out.facility_codes(fac, lv, codes))
    rng = stream(seed, "pads")
    pad_status, lane_status = np.full(t, "normal", dtype=object), np.full(t, "normal", dtype=object)
    pad_status[rng.choice(np.arange(1, t), 2, replace=False)] = ["disabled", "fault"]
    lane_status[rng.choice(np.arange(1, t))] = "fault"
    frames["rescue_platforms"] = out.platforms_frame(frame, bs.towers, pad_status)
    frames["fire_lanes"] = out.lanes_frame(frame, bs.towers, lane_status)

    s, story = _sensors(seed, lv, indoor, bs, n_s, now)
    s, hist = history.readings(stream(seed, "readings"), s, story, now)
    frames["sensors"] = out.sensors_frame(frame, s)
    frames["roads"] = out.roads_frame(frame, layout.roads)
    frames["fire_stations"] = _stations(frame, gs, grid_geoms, layout, city)
    frames["readings"] = out.readings_frame(hist)
    frames["alarms"] = out.alarms_frame(hist, s, grid_code, bs.name, lv.name)
    frames["inspections"] = out.inspections_frame(up)
    frames["dead_letters"] = _dead_letters(now)
    # keys are secrets of a deployment (`twin keys create`), never sample data
    frames["api_keys"] = make_frame("api_keys", {
        f.name: utc_ms([]) if f.type is FieldType.DATETIME else [] for f in get_layer("api_keys").fields})
    void = make_void_risk(frame, DISTRICT_HALF_M, DISTRICT_HALF_M, layout.roads, stream(seed, "void"))
    return SampleTwin(frames, {"dem": dem, "void_risk": void}, seed, scale)


def write_rasters(sample: SampleTwin, directory: Path) -> dict[str, Path]:
    """Write the rasters as Cloud-Optimized GeoTIFFs (EPSG:4547) into ``directory``; returns id → path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return {r.id: write_cog(sample.rasters[r.id], directory / r.filename) for r in RASTERS}


def _layout(seed: int, frame: StreetFrame, n_b: int | None, city: bool) -> tuple[district.Layout, buildings.Plots]:
    """The street plan and plots, grown until there is room for ``n_b`` buildings."""
    half_u = half_v = DISTRICT_HALF_M
    if city and n_b is not None:
        area = n_b / BUILDINGS_PER_KM2 * 1e6
        half_v = max(DISTRICT_HALF_M, float(np.sqrt(area * 9 / 16)) / 2)
        half_u = max(DISTRICT_HALF_M, half_v * 16 / 9)
    for _ in range(6):
        layout = district.plan(seed, frame, half_u, half_v)
        plots = buildings.draw_plots(layout, stream(seed, "plots"))
        room = int(plots.occupied.sum())
        if n_b is None or room >= n_b * 1.02 + 300:
            return layout, plots
        grow = float(np.sqrt((n_b * 1.08 + 300) / max(room, 1)))
        half_u, half_v = half_u * grow, half_v * grow
    raise ValueError(f"could not make room for {n_b} buildings")


def _locate(points_of: np.ndarray, cells: np.ndarray) -> IntArray:
    """Index of the cell containing each footprint's representative point (nearest cell if on an edge)."""
    points = shapely.point_on_surface(points_of)
    tree = shapely.STRtree(cells)
    src, hit = tree.query(points, predicate="within")
    found = np.full(len(points), -1, np.int64)
    found[src[::-1]] = hit[::-1]
    missing = np.flatnonzero(found < 0)
    if len(missing):
        src, hit = tree.query_nearest(points[missing])
        found[missing[src[::-1]]] = hit[::-1]
    return found


def _ground(frame: StreetFrame, dem: RasterData, u: FloatArray, v: FloatArray) -> FloatArray:
    """Ground elevation from the DEM under each point, from the terrain model beyond the DEM."""
    x, y = frame.to_xy(u, v)
    col = np.floor((x - dem.transform.c) / dem.transform.a).astype(np.int64)
    row = np.floor((y - dem.transform.f) / dem.transform.e).astype(np.int64)
    h, w = dem.array.shape
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    values = elevation(u, v)
    values[inside] = dem.array[row[inside], col[inside]]
    return values


def _grids_frame(gs: grids.GridSet, geoms: np.ndarray, grid_row: IntArray, residents: IntArray,
                 rng: np.random.Generator) -> pd.DataFrame:
    """The grids layer with population and households summed up the hierarchy."""
    population = np.bincount(grid_row, weights=residents, minlength=len(gs.code)).astype(np.int64)
    households = np.zeros(len(gs.code), np.int64)
    households[gs.grid_rows] = np.round(population[gs.grid_rows] / rng.uniform(2.4, 2.9, len(gs.grid_rows)))
    for level in ("grid", "community", "subdistrict"):
        rows = np.flatnonzero(gs.level == level)
        np.add.at(population, gs.parent_row[rows], population[rows])
        np.add.at(households, gs.parent_row[rows], households[rows])
    return make_frame("grids", {
        "code": gs.code, "parent_code": gs.parent, "level": gs.level, "name": gs.name, "officer": gs.officer,
        "population": population, "households": households,
    }, geoms)


def _sensors(seed: int, lv: towers.Levels, fac: facilities.Facilities, bs: buildings.BuildingSet, n_s: int | None,
             now: dt.datetime) -> tuple[sensors.Sensors, dict[str, int]]:
    """Tower sensors (thinned or topped up with sensors in ordinary buildings to ``n_s``) and the story cast."""
    rng = stream(seed, "sensors")
    s = sensors.on_towers(rng, lv, fac)
    story = history.choose_stories(rng, s, lv)
    cast = np.array(sorted(story.values()), np.int64)
    if n_s is not None and n_s < len(s.type):
        if n_s < 2 * len(cast):
            raise ValueError(f"n_sensors must be at least {2 * len(cast)}")
        rest = np.setdiff1d(np.arange(len(s.type)), cast)
        keep = np.sort(np.concatenate([cast, rng.choice(rest, n_s - len(cast), replace=False)]))
        s = s.take(keep)
        story = {k: int(np.searchsorted(keep, v)) for k, v in story.items()}
    elif n_s is not None and n_s > len(s.type):
        ordinary = np.flatnonzero((np.arange(len(bs.use)) > len(lv.floors_above)) & np.isin(
            bs.use, ["residential", "mixed", "commercial", "office"]))
        s = sensors.concat(s, sensors.in_buildings(rng, n_s - len(s.type), bs.rect, bs.height, ordinary))
    s = sensors.finish(rng, s, now, np.array(list(story.values()), np.int64))
    return s, story


def _stations(frame: StreetFrame, gs: grids.GridSet, grid_geoms: np.ndarray, layout: district.Layout,
              city: bool) -> gpd.GeoDataFrame:
    """Fire stations: the district's five, plus one about every 5 km across the city at Shenzhen scale."""
    rows = [(n, kind, addr, engines, u, v) for n, kind, engines, (u, v), addr in district.FIRE_STATIONS]
    if city:
        lattice = np.arange(-layout.half_u + 2500, layout.half_u - 2000, 5000.0)
        rows_v = np.arange(-layout.half_v + 2500, layout.half_v - 2000, 5000.0)
        uu, vv = (a.ravel() for a in np.meshgrid(lattice, rows_v))
        far = np.hypot(uu, vv) > 3000
        lon, lat = frame.to_lonlat(uu[far], vv[far])
        cells = gs.grid_rows[_locate(shapely.points(lon, lat), grid_geoms[gs.grid_rows])]
        sub = gs.name[gs.parent_row[gs.parent_row[cells]]]
        seen: dict[str, int] = {}
        for name, u, v in zip(sub, uu[far], vv[far], strict=True):
            seen[name] = seen.get(name, 0) + 1
            label = f"{name[:-2]}{'' if seen[name] == 1 else seen[name]}消防站"
            rows.append((label, "standard", str(name), 6, float(u), float(v)))
    names, kinds, addrs, engines, us, vs = (list(c) for c in zip(*rows, strict=True))
    lon, lat = frame.to_lonlat(np.array(us), np.array(vs))
    return make_frame("fire_stations", {"name": names, "station_type": kinds, "address": addrs, "engines": engines},
                      np.asarray(shapely.points(lon, lat), dtype=object))



def _dead_letters(now: dt.datetime) -> pd.DataFrame:
    """Three messages the ingester refused in the last hour (see :mod:`twin.iot.payload` for the reasons)."""
    ago = now.timestamp() - np.array([3100.0, 1900.0, 420.0])
    return make_frame("dead_letters", {
        "received_at": utc_ms(ago), "source": np.array(["mqtt", "mqtt", "http"], dtype=object),
        "topic": np.array(["twin/sensors/YG9999999/readings", "twin/sensors/17/readings", "POST /ingest/readings"],
                          dtype=object),
        "payload": np.array(['{"ts": "2026-11-25T07:08:20Z", "value": 0.2}', '{"ts": "2026-11-25T07:28:20Z", '
                             '"value": "high"}', '{"sensor_id": 6, "ts": "2027-01-01T00:00:00Z", "value": 150}'],
                            dtype=object),
        "reason": np.array(["unknown_sensor: no sensor with code 'YG9999999'",
                            "bad_value: value must be a number, got str",
                            "future_timestamp: 2027-01-01T00:00:00Z is more than 300 s ahead of the receiver clock"],
                           dtype=object),
    })
