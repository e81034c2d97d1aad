"""Colour maps: the lookup tables and the value → RGBA step."""

from __future__ import annotations

import numpy as np
import pytest

from layers import RASTERS
from twin.errors import InvalidQuery
from twin.raster import COLORMAPS, colorize, colormap_lut
from twin.raster.colormap import check_colormap, check_value_range


def test_every_catalogue_raster_has_its_colour_map() -> None:
    assert {raster.colormap for raster in RASTERS} <= set(COLORMAPS)


def test_risk_runs_green_yellow_red() -> None:
    lut = colormap_lut("risk").astype(int)
    low, mid, high = lut[0], lut[128], lut[255]
    assert low[1] > low[0] and low[1] > low[2]  # green
    assert mid[0] > 200 and mid[1] > 200 and mid[2] < mid[0]  # yellow
    assert high[0] > high[1] and high[0] > high[2]  # red
    assert (lut[:, 3] == 255).all()


def test_gray_is_a_ramp_and_tables_are_read_only() -> None:
    lut = colormap_lut("gray")
    assert np.array_equal(lut[:, 0], np.arange(256)) and np.array_equal(lut[:, 0], lut[:, 2])
    with pytest.raises(ValueError):
        lut[0, 0] = 1


def test_colorize_stretches_clamps_and_hides_invalid() -> None:
    values = np.array([[-5.0, 0.0, 50.0], [100.0, 400.0, np.nan]], dtype=np.float32)
    valid = np.array([[True, True, True], [True, True, False]])
    rgba = colorize(values, valid, "gray", (0.0, 100.0))
    assert rgba.shape == (2, 3, 4) and rgba.dtype == np.uint8
    assert rgba[0, 0, 0] == 0 and rgba[0, 1, 0] == 0  # clamped below
    assert rgba[0, 2, 0] == 128  # 50 → 127.5 → nearest entry
    assert rgba[1, 0, 0] == 255 and rgba[1, 1, 0] == 255  # clamped above
    assert tuple(rgba[1, 2]) == (0, 0, 0, 0)
    assert (rgba[valid][:, 3] == 255).all()


def test_names_and_ranges_are_checked() -> None:
    assert check_colormap(None) == "gray"
    with pytest.raises(InvalidQuery, match="unknown colormap"):
        check_colormap("jet")
    assert check_value_range(None) is None
    assert check_value_range(["1", 2]) == (1.0, 2.0)
    for bad in [(2, 1), (0, float("inf")), (1,), "ab"]:
        with pytest.raises(InvalidQuery):
            check_value_range(bad)  # type: ignore[arg-type]
