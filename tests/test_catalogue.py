"""The layer catalogue is internally consistent: every reference it makes points at something it declares."""

from __future__ import annotations

import re

import pytest

from layers import LAYERS, RASTERS, FieldType, GeometryType, Role, get_layer, get_raster

SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def test_ids_are_unique_snake_case() -> None:
    ids = [layer.id for layer in LAYERS] + [r.id for r in RASTERS]
    assert len(ids) == len(set(ids))
    assert all(SNAKE.match(i) for i in ids)


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.id)
def test_layer_fields_are_well_formed(layer) -> None:
    names = [f.name for f in layer.fields]
    assert len(names) == len(set(names))
    assert layer.key not in names and "geometry" not in names
    for f in layer.fields:
        assert SNAKE.match(f.name), f.name
        assert f.title_zh and f.title_en
        if f.choices is not None:
            assert f.type is FieldType.TEXT and len(f.choices) == len(set(f.choices)) > 0
        if f.minimum is not None and f.maximum is not None:
            assert f.minimum < f.maximum
        if f.name.endswith(("_m", "_mpa", "_s")):
            assert f.type in (FieldType.REAL, FieldType.INTEGER)


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.id)
def test_layer_references_resolve(layer) -> None:
    style = layer.style
    for name in (style.extrude_field, style.color_field, style.label_field, layer.temporal_field):
        if name is not None:
            assert layer.has_field(name), name
    for name in layer.search_fields:
        assert layer.field(name).type is FieldType.TEXT
    if layer.temporal_field:
        assert layer.field(layer.temporal_field).type is FieldType.DATETIME
    assert 0 <= layer.zoom.min_zoom <= layer.zoom.max_zoom <= 24
    assert layer.read_roles and Role.ADMIN in layer.read_roles | {Role.ADMIN}
    assert layer.is_spatial == (layer.geometry_type is not GeometryType.NONE)
    if layer.has_z:
        assert layer.geometry_type is GeometryType.POINT


def test_fire_detail_is_not_public() -> None:
    for layer_id in ("fire_facilities", "levels", "sensors", "alarms", "inspections", "readings"):
        assert not get_layer(layer_id).readable_by(Role.PUBLIC)
    for layer_id in ("buildings", "grids", "roads", "fire_stations"):
        assert get_layer(layer_id).readable_by(Role.PUBLIC)
    assert all(get_layer(layer.id).readable_by(Role.ADMIN) for layer in LAYERS)


def test_lookup_errors_name_the_unknown_id() -> None:
    with pytest.raises(KeyError, match="houses"):
        get_layer("houses")
    with pytest.raises(KeyError, match="lidar"):
        get_raster("lidar")


def test_rasters_are_metric_cogs() -> None:
    for raster in RASTERS:
        assert raster.storage_crs == "EPSG:4547"
        assert raster.filename.endswith(".tif")
        low, high = raster.value_range
        assert low < high and raster.resolution_m > 0


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.id)
def test_unique_keys_name_required_fields(layer) -> None:
    for name in layer.unique_key:
        assert layer.field(name).required
