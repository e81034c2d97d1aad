"""The deterministic sample generator: schema, geometry, the fire model and the planted imperfections."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from shapely import affinity

from layers import LAYERS, RASTERS, FieldType, GeometryType, get_layer
from twin.sample import REFERENCE_NOW, SampleTwin, generate, write_rasters
from twin.validate import normalize_frame

METRIC = "EPSG:4547"


@pytest.fixture(scope="module")
def sample() -> SampleTwin:
    return generate()


@pytest.fixture(scope="module")
def frames(sample: SampleTwin) -> dict[str, pd.DataFrame]:
    return sample.frames


@pytest.fixture(scope="module")
def metric(frames: dict[str, pd.DataFrame]) -> dict[str, gpd.GeoDataFrame]:
    return {k: f.to_crs(METRIC) for k, f in frames.items() if isinstance(f, gpd.GeoDataFrame)}


def digest(frame: pd.DataFrame) -> str:
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(frame.drop(columns="geometry", errors="ignore").astype(str)).to_numpy())
    if isinstance(frame, gpd.GeoDataFrame):
        h.update(b"".join(shapely.to_wkb(frame.geometry.to_numpy(), include_srid=False)))
    return h.hexdigest()


# --- determinism and schema -------------------------------------------------------------------------------


def test_same_seed_same_twin(sample: SampleTwin) -> None:
    again = generate()
    for layer in LAYERS:
        assert digest(again.frames[layer.id]) == digest(sample.frames[layer.id]), layer.id
    for key, raster in sample.rasters.items():
        assert np.array_equal(raster.array, again.rasters[key].array)


def test_a_different_seed_gives_a_different_twin(frames: dict[str, pd.DataFrame]) -> None:
    other = generate(seed=7)
    assert digest(other.frames["buildings"]) != digest(frames["buildings"])
    assert (other.frames["buildings"]["height_m"] > 100).sum() == 138


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.id)
def test_frames_match_the_catalogue(frames: dict[str, pd.DataFrame], layer) -> None:
    frame = frames[layer.id]
    expected = list(layer.field_names) + (["geometry"] if layer.is_spatial else [])
    assert list(frame.columns) == expected
    assert frame.index.name == "id" and frame.index.dtype == np.int64
    assert frame.index.is_unique and frame.index.is_monotonic_increasing
    if layer.id == "api_keys":  # secrets of a deployment, never sample data
        assert len(frame) == 0
    else:
        assert len(frame) > 0 and frame.index[0] == 1
    for field in layer.fields:
        column = frame[field.name]
        kind = {FieldType.INTEGER: "Int64", FieldType.REAL: "float64", FieldType.TEXT: "str",
                FieldType.BOOLEAN: "boolean", FieldType.DATE: "object"}.get(field.type)
        if kind is not None:
            assert str(column.dtype) == kind, field.name
        else:
            assert str(column.dtype) == "datetime64[ms, UTC]", field.name
        if field.type is FieldType.DATE:
            assert all(isinstance(v, dt.date) for v in column.dropna().head(1000))
    # The stores' validator accepts every frame and changes nothing.
    pd.testing.assert_frame_equal(normalize_frame(layer, frame), frame, check_like=False)


@pytest.mark.parametrize("layer", [lay for lay in LAYERS if lay.is_spatial], ids=lambda layer: layer.id)
def test_geometries_valid_and_typed(frames: dict[str, pd.DataFrame], layer) -> None:
    frame = frames[layer.id]
    assert frame.crs.to_epsg() == 4326
    geoms = frame.geometry.to_numpy()
    assert shapely.is_valid(geoms).all()
    assert set(shapely.get_type_id(geoms)) == {
        {GeometryType.POINT: 0, GeometryType.LINESTRING: 1, GeometryType.POLYGON: 3,
         GeometryType.MULTIPOLYGON: 6}[layer.geometry_type]}
    assert (shapely.has_z(geoms) == layer.has_z).all()
    minx, miny, maxx, maxy = frame.total_bounds
    assert 113.95 < minx < maxx < 114.1 and 22.55 < miny < maxy < 22.67


@pytest.mark.parametrize(("layer_id", "column"), [("buildings", "code"), ("fire_facilities", "code"),
                                                  ("sensors", "code"), ("grids", "code")])
def test_codes_unique(frames: dict[str, pd.DataFrame], layer_id: str, column: str) -> None:
    assert frames[layer_id][column].is_unique


# --- place, roads, grids ----------------------------------------------------------------------------------


def test_station_at_its_real_place(frames: dict[str, pd.DataFrame], metric) -> None:
    station = frames["buildings"].loc[1]
    assert (station["name"], station["use"], station["height_m"]) == ("深圳北站", "transport", 43.6)
    centre = station.geometry.centroid
    assert abs(centre.x - 114.0239) < 3e-4 and abs(centre.y - 22.6119) < 3e-4
    ring = np.asarray(metric["buildings"].geometry.loc[1].exterior.coords)
    sides = np.hypot(*np.diff(ring, axis=0).T)
    assert np.allclose(sorted(sides), [208, 208, 413, 413], atol=0.5)


def test_named_roads(frames: dict[str, pd.DataFrame]) -> None:
    roads = frames["roads"]
    for name in ("新区大道", "留仙大道", "民塘路", "致远中路", "福龙路", "梅观高速"):
        assert name in set(roads["name"]), name
    assert set(roads.loc[roads["name"].isin(["福龙路", "梅观高速"]), "road_class"]) == {"expressway"}
    assert (roads["lanes"] >= 2).all() and (roads["width_m"] >= 6).all()


def test_grid_hierarchy(frames: dict[str, pd.DataFrame]) -> None:
    grids = frames["grids"]
    by_code = grids.set_index("code")
    assert (grids["level"] == "district").sum() == 1 and (grids["level"] == "subdistrict").sum() == 1
    communities = grids[grids["level"] == "community"]
    assert set(communities["name"].str.removesuffix("社区")) == {
        "北站", "民治", "民康", "民泰", "民乐", "民新", "民强", "新牛", "龙塘", "上芬", "樟坑", "白石龙", "大岭"}
    assert 250 <= (grids["level"] == "grid").sum() <= 400
    child = grids[grids["parent_code"].notna()]
    assert child["parent_code"].isin(grids["code"]).all()
    assert all(code.startswith(parent) and len(code) == len(parent) + 3
               for code, parent in zip(child["code"], child["parent_code"], strict=True))
    order = {"district": 0, "subdistrict": 1, "community": 2, "grid": 3}
    parent_level = by_code.loc[child["parent_code"], "level"].map(order).to_numpy()
    assert (child["level"].map(order).to_numpy() == parent_level + 1).all()
    assert grids.loc[grids["level"] == "grid", "officer"].notna().all()
    for column in ("population", "households"):
        sums = child.groupby("parent_code")[column].sum()
        assert (by_code.loc[sums.index, column] == sums).all(), column
    buildings = frames["buildings"]
    per_grid = buildings.groupby("grid_code")["residents"].sum()
    assert (by_code.loc[per_grid.index, "population"] == per_grid).all()


def test_grids_tessellate_without_gaps_or_overlaps(metric) -> None:
    grids = metric["grids"]
    cells = grids[grids["level"] == "grid"].geometry.to_numpy()
    district = grids[grids["level"] == "district"].geometry.iloc[0]
    assert shapely.coverage_is_valid(cells)
    assert abs(shapely.area(cells).sum() - district.area) < 1.0
    assert abs(shapely.union_all(cells).area - district.area) < 1.0
    assert 12.71e6 < district.area < 25e6
    for level in ("community", "subdistrict"):
        assert abs(shapely.area(grids[grids["level"] == level].geometry.to_numpy()).sum() - district.area) < 1.0


# --- buildings --------------------------------------------------------------------------------------------


def test_buildings_counts_and_towers(frames: dict[str, pd.DataFrame]) -> None:
    b = frames["buildings"]
    assert len(b) >= 3000
    assert (b["height_m"] > 100).sum() == 138
    huide = b[b["name"] == "汇德大厦"]
    assert len(huide) == 1 and huide["height_m"].iloc[0] == 258.0
    assert b.loc[b["name"] == "汇德大厦B座", "height_m"].tolist() == [100.0]  # exactly 100 m is not "over 100 m"
    assert set(b["use"]) <= set(get_layer("buildings").field("use").choices or ())
    assert {"residential", "office", "commercial", "industrial", "education", "transport"} <= set(b["use"])


def test_towers_cluster_near_the_station(metric) -> None:
    b = metric["buildings"]
    station = b.geometry.loc[1].centroid
    towers = b[b["height_m"] > 100].geometry.centroid
    assert towers.distance(station).median() < 1500
    assert towers.distance(station).max() < 2600


def test_floors_consistent_with_height(frames: dict[str, pd.DataFrame]) -> None:
    b = frames["buildings"]
    b = b[b["use"] != "transport"]  # the station hall is one tall concourse
    per_storey = b["height_m"] / b["floors_above"].astype(float)
    assert per_storey.between(3.0, 4.5).all(), per_storey.describe()
    assert b["floors_below"].notna().all() and b["year_built"].between(1980, 2026).all()
    homes = b[b["use"] == "residential"]
    assert (homes["residents"] > 0).all() and (b.loc[b["use"] == "office", "residents"] == 0).all()


def test_buildings_do_not_overlap_each_other_roads_or_the_station(metric) -> None:
    b = metric["buildings"]
    geoms = b.geometry.to_numpy()
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    assert (left == right).all()
    roads = metric["roads"].geometry.to_numpy()
    assert len(shapely.STRtree(geoms).query(roads, predicate="intersects")[0]) == 0


def test_buildings_lie_in_their_grid(frames: dict[str, pd.DataFrame]) -> None:
    b, grids = frames["buildings"], frames["grids"]
    district = grids[grids["level"] == "district"].geometry.iloc[0]
    assert shapely.covers(district, b.geometry.to_numpy()).all()
    cells = grids.set_index("code").geometry
    points = shapely.point_on_surface(b.geometry.to_numpy())
    assert shapely.covers(cells.loc[b["grid_code"]].to_numpy(), points).all()


def test_addresses_and_elevations(frames: dict[str, pd.DataFrame], sample: SampleTwin) -> None:
    b = frames["buildings"]
    assert b.loc[1, "address"] == "民治街道致远中路28号"
    assert b["address"].str.fullmatch(r"民治街道\D+[路街道]\d+号").all()
    assert b["ground_elevation_m"].between(40, 200).all()
    dem = sample.rasters["dem"]
    assert b["ground_elevation_m"].min() >= float(dem.array.min()) - 0.1


# --- the fire model of the 138 towers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def towers(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    b = frames["buildings"]
    return b[b["height_m"] > 100]


def test_every_tower_has_levels_refuges_and_key_rooms(frames: dict[str, pd.DataFrame], towers) -> None:
    levels, fac = frames["levels"], frames["fire_facilities"]
    assert set(levels["building_id"]) == set(towers.index)
    per_tower = levels.groupby("building_id")
    assert (per_tower["is_refuge"].sum() >= 1).all()
    above = levels[(levels["ordinal"] >= 0) & (levels["use"] != "roof")].groupby("building_id").size()
    assert (above.to_numpy() == towers.loc[above.index, "floors_above"].to_numpy()).all()
    below = levels[levels["ordinal"] < 0].groupby("building_id").size()
    assert (below.to_numpy() == towers.loc[below.index, "floors_below"].to_numpy()).all()
    top = levels[levels["use"] == "roof"].set_index("building_id")
    assert np.allclose(top["elevation_m"] + top["height_m"], towers.loc[top.index, "height_m"], atol=0.01)
    for kind in ("fire_control_room", "fire_pump_room", "roof_water_tank"):
        assert set(fac.loc[fac["type"] == kind, "building_id"]) == set(towers.index), kind
    assert (fac.loc[fac["type"] == "fire_pump_room", "level_id"].map(levels["ordinal"]) < 0).all()


def test_exactly_one_tower_with_its_first_refuge_floor_too_high(frames: dict[str, pd.DataFrame]) -> None:
    levels = frames["levels"]
    refuges = levels[levels["is_refuge"]].sort_values(["building_id", "elevation_m"])
    first = refuges.groupby("building_id")["elevation_m"].first()
    assert (first > 50).sum() == 1
    bad = first.idxmax()
    assert frames["buildings"].loc[bad, "name"] != "汇德大厦"
    spacing = refuges.groupby("building_id")["elevation_m"].diff().dropna()
    assert (spacing <= 50).all()


def test_refuge_floors_are_equipped(frames: dict[str, pd.DataFrame]) -> None:
    levels, fac = frames["levels"], frames["fire_facilities"]
    refuge_ids = levels.index[levels["is_refuge"]]
    on_refuge = fac[fac["level_id"].isin(refuge_ids)]
    for kind in ("fire_elevator", "hydrant_box", "fire_phone", "broadcast_speaker"):
        assert set(on_refuge.loc[on_refuge["type"] == kind, "level_id"]) == set(refuge_ids), kind
    assert (fac.loc[fac["level_id"].notna(), "type"] == "fire_elevator").sum() >= len(levels) - 138


def test_facilities_inside_their_level_outline(frames: dict[str, pd.DataFrame]) -> None:
    levels, fac = frames["levels"], frames["fire_facilities"]
    indoor = fac[fac["level_id"].notna()]
    assert 100_000 <= len(fac) <= 220_000
    outlines = levels.geometry.loc[indoor["level_id"].astype(int)].to_numpy()
    points = shapely.force_2d(indoor.geometry.to_numpy())
    assert shapely.contains(outlines, points).all()
    z = shapely.get_z(indoor.geometry.to_numpy())
    lv = levels.loc[indoor["level_id"].astype(int)]
    assert ((z >= lv["elevation_m"].to_numpy() - 1e-6) & (z <= (lv["elevation_m"] + lv["height_m"]).to_numpy() + 1.6)
            ).all()
    assert (indoor["building_id"].to_numpy() == lv["building_id"].to_numpy()).all()


def test_outdoor_hydrants_mostly_close_some_too_far(frames: dict[str, pd.DataFrame], metric) -> None:
    fac = metric["fire_facilities"]
    hydrants = fac[fac["type"] == "outdoor_hydrant"]
    assert hydrants["level_id"].isna().all()
    pts = shapely.force_2d(hydrants.geometry.to_numpy())
    tree = shapely.STRtree(pts)
    src, dst = tree.query(pts, predicate="dwithin", distance=120.0)
    has_neighbour = np.zeros(len(pts), bool)
    has_neighbour[src[src != dst]] = True
    assert 3 <= (~has_neighbour).sum() <= 15  # a few hydrants with no other within 120 m
    assert has_neighbour.mean() > 0.95
    walls = shapely.STRtree(metric["buildings"].geometry.to_numpy())
    near, _ = walls.query(pts, predicate="dwithin", distance=5.0)
    assert len(near) == 0
    station = metric["buildings"].geometry.loc[1].centroid
    towers = metric["buildings"][metric["buildings"]["height_m"] > 100]
    _, dist = tree.query_nearest(towers.geometry.to_numpy(), return_distance=True)
    assert (dist <= 150).all()
    assert shapely.distance(pts, station).max() < 2100


def test_rescue_platforms_and_fire_lanes(frames: dict[str, pd.DataFrame], metric, towers) -> None:
    pads, lanes = metric["rescue_platforms"], metric["fire_lanes"]
    assert set(pads["building_id"]) == set(towers.index) == set(lanes["building_id"])
    small = pads[(pads["length_m"] < 20) | (pads["width_m"] < 10)]
    assert len(small) == 2 and (small["length_m"] == 15).all()
    assert np.allclose(pads.geometry.area, pads["length_m"] * pads["width_m"], rtol=1e-3)
    footprints = metric["buildings"].geometry.loc[pads["building_id"]].to_numpy()
    gap = shapely.distance(pads.geometry.to_numpy(), footprints)
    assert ((gap >= 5) & (gap <= 10)).all()
    walls = shapely.STRtree(metric["buildings"].geometry.to_numpy())
    assert len(walls.query(pads.geometry.to_numpy(), predicate="intersects")[0]) == 0
    assert len(walls.query(lanes.geometry.to_numpy(), predicate="intersects")[0]) == 0
    assert ((lanes["width_m"] < 4) | (lanes["clear_height_m"] < 4)).sum() == 2
    assert (lanes["width_m"] >= 4).mean() > 0.95


def test_facility_upkeep_has_faults_and_overdue_inspections(frames: dict[str, pd.DataFrame]) -> None:
    fac, insp = frames["fire_facilities"], frames["inspections"]
    share = fac["status"].value_counts(normalize=True)
    assert share["normal"] > 0.93 and 0.01 < share["fault"] < 0.06 and 0 < share["disabled"] < 0.01
    today = REFERENCE_NOW.date()
    overdue = (fac["next_inspection"] < today).mean()
    assert 0.02 < overdue < 0.2
    assert (fac["last_inspected"] <= today).all() and (fac["next_inspection"] > fac["last_inspected"]).all()
    assert 2000 <= len(insp) <= 5000 and set(insp["result"]) == {"pass", "fail", "rectified"}
    assert (insp["inspected_at"] < pd.Timestamp(REFERENCE_NOW)).all()
    latest = insp.dropna(subset=["facility_id"]).sort_values("inspected_at").groupby("facility_id").last()
    failed = latest.index[latest["result"] == "fail"].astype(int)
    assert (fac.loc[failed, "status"] == "fault").all()


# --- sensors, readings, alarms ----------------------------------------------------------------------------


def test_sensors(frames: dict[str, pd.DataFrame]) -> None:
    s, fac, levels = frames["sensors"], frames["fire_facilities"], frames["levels"]
    assert len(s) >= 25_000
    assert set(s["type"]) == set(get_layer("sensors").field("type").choices or ())
    assert s["level_id"].notna().all() and s["reporting_interval_s"].between(60, 300).all()
    detectors = s[s["type"].isin(["smoke", "heat"])]
    linked = fac.loc[detectors["facility_id"].astype(int)]
    assert linked["type"].str.endswith("_detector").all()
    assert (linked["level_id"].to_numpy() == detectors["level_id"].to_numpy()).all()
    rc = s[s["type"] == "residual_current"]
    assert (rc["threshold_high"] == 300).all() and (rc["unit"] == "mA").all()
    hp = s[s["type"] == "hydrant_pressure"]
    assert set(hp["threshold_low"]) == {0.35, 0.15}
    assert set(hp.loc[hp["threshold_low"] == 0.15, "level_id"].map(levels["use"])) == {"roof"}
    counts = s["status"].value_counts()
    assert counts["online"] / len(s) > 0.95 and counts["offline"] > 0 and counts["fault"] > 0 and counts["alarm"] > 0
    now = pd.Timestamp(REFERENCE_NOW)
    age = (now - s["last_seen"]).dt.total_seconds()
    interval = s["reporting_interval_s"].astype(float)
    assert (age[s["status"] == "offline"] > 3 * interval[s["status"] == "offline"]).all()
    assert (age[s["status"] == "online"] <= interval[s["status"] == "online"]).all()
    assert s.loc[s["status"] == "fault", "last_value"].isna().all()
    assert s.loc[s["status"] != "fault", "last_value"].notna().all()


def test_readings_history(frames: dict[str, pd.DataFrame]) -> None:
    r, s = frames["readings"], frames["sensors"]
    assert len(r) <= 300_000
    assert not r.duplicated(["sensor_id", "ts"]).any()
    assert str(r["ts"].dtype) == "datetime64[ms, UTC]"
    now = pd.Timestamp(REFERENCE_NOW)
    assert (r["ts"] <= now).all() and (r["ts"] >= now - pd.Timedelta(hours=24)).all()
    assert r["sensor_id"].isin(s.index).all()
    last = r.sort_values("ts").groupby("sensor_id").last()
    assert (s.loc[last.index, "last_seen"].to_numpy() == last["ts"].to_numpy()).all()
    assert np.allclose(s.loc[last.index, "last_value"], last["value"])


def test_alarm_stories_are_in_the_readings(frames: dict[str, pd.DataFrame]) -> None:
    r, s, alarms = frames["readings"], frames["sensors"], frames["alarms"]
    assert 10 <= len(alarms) <= 100 and set(alarms["status"]) == {"open", "acknowledged", "resolved"}
    assert set(alarms.loc[alarms["status"] != "open", "acknowledged_by"].dropna()) and alarms["grid_code"].notna().all()
    assert set(s.index[s["status"] == "alarm"]) <= set(alarms.loc[alarms["status"] != "resolved", "sensor_id"])
    pressure = alarms[alarms["alarm_type"] == "hydrant_pressure_low"].iloc[-1]
    series = r[r["sensor_id"] == pressure["sensor_id"]].set_index("ts")["value"]
    assert series.iloc[0] > 0.35 > series.iloc[-1] and series[series < 0.35].index.min() == pressure["opened_at"]
    current = alarms[alarms["alarm_type"] == "residual_current_high"].iloc[-1]
    series = r[r["sensor_id"] == current["sensor_id"]].set_index("ts")["value"]
    assert series.iloc[0] < 300 < series.iloc[-1] and pressure["status"] == "open"
    smoke = alarms[(alarms["alarm_type"] == "smoke") & (alarms["status"] != "resolved")].sort_values("opened_at")
    assert list(smoke["severity"]) == ["pre_alarm", "fire_alarm"]
    assert smoke["level_id"].nunique() == 1 and smoke["building_id"].nunique() == 1
    assert smoke["opened_at"].diff().iloc[1] <= pd.Timedelta(minutes=1)
    for _, alarm in smoke.iterrows():
        assert r[(r["sensor_id"] == alarm["sensor_id"]) & (r["ts"] == alarm["opened_at"])]["value"].iloc[0] >= 3.0


# --- rasters ----------------------------------------------------------------------------------------------


def test_rasters_written_as_cogs(sample: SampleTwin, tmp_path: Path) -> None:
    paths = write_rasters(sample, tmp_path)
    assert set(paths) == {r.id for r in RASTERS}
    for raster in RASTERS:
        path = paths[raster.id]
        assert path.name == raster.filename
        with rasterio.open(path) as ds:
            assert ds.crs.to_epsg() == 4547
            assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            assert ds.profile["tiled"] and ds.block_shapes[0] == (256, 256)
            assert ds.compression.name.lower() == "deflate" and len(ds.overviews(1)) >= 1
            assert ds.res == (raster.resolution_m, raster.resolution_m)
            values = ds.read(1)
        lo, hi = raster.value_range
        assert values.dtype == np.float32 and lo <= values.min() and values.max() <= hi
    again = write_rasters(sample, tmp_path / "again")
    assert all(paths[k].read_bytes() == again[k].read_bytes() for k in paths)


def test_dem_and_void_risk_shapes(sample: SampleTwin, frames: dict[str, pd.DataFrame]) -> None:
    dem, void = sample.rasters["dem"], sample.rasters["void_risk"]
    with rasterio.MemoryFile() as mem, mem.open(driver="GTiff", width=dem.array.shape[1], height=dem.array.shape[0],
                                                count=1, dtype="float32", transform=dem.transform, crs=dem.crs) as ds:
        ds.write(dem.array, 1)
        station = frames["buildings"].to_crs(METRIC).geometry.loc[1]
        east = affinity.translate(station.centroid, 330 * 0.95, 330 * 0.31)
        west = affinity.translate(station.centroid, -330 * 0.95, -330 * 0.31)
        e, w = (float(next(ds.sample([(p.x, p.y)]))[0]) for p in (east, west))
    assert 76 <= e <= 84 and 86 <= w <= 94
    assert float(np.median(void.array)) < 0.15 and float(void.array.max()) > 0.6
    assert (void.array > 0.5).mean() < 0.01


# --- Shenzhen scale ---------------------------------------------------------------------------------------


def test_shenzhen_scale_smoke() -> None:
    city = generate(scale="shenzhen", n_buildings=20_000, n_sensors=5_000)
    b, s = city.frames["buildings"], city.frames["sensors"]
    assert len(b) == 20_000 and len(s) == 5_000
    assert (b["height_m"] > 100).sum() == 138
    assert b["code"].is_unique and s["code"].is_unique
    assert b["address"].str.fullmatch(r"\D+街道\D+[路街道]\d+号").all()
    assert set(city.frames) == {layer.id for layer in LAYERS}
    grids = city.frames["grids"]
    assert grids.loc[grids["level"] == "grid", "code"].isin(b["grid_code"]).mean() > 0.5
    assert city.frames["alarms"]["sensor_id"].isin(s.index).all()
    assert city.frames["readings"]["sensor_id"].isin(s.index).all()
    assert shapely.is_valid(grids.geometry.to_numpy()).all()


def test_unknown_scale_and_naive_now_are_refused() -> None:
    with pytest.raises(ValueError, match="scale"):
        generate(scale="planet")
    with pytest.raises(ValueError, match="timezone"):
        generate(now=dt.datetime(2026, 1, 1))
