"""The PostGIS test database is there, and agrees with pyproj on the CRSs the twin measures in."""

from __future__ import annotations

import pytest
from pyproj import Transformer
from sqlalchemy import create_engine, text

from tests.conftest import postgis_url

pytestmark = pytest.mark.postgis


def test_postgis_extension_is_installed() -> None:
    engine = create_engine(postgis_url())
    with engine.connect() as conn:
        version = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
    engine.dispose()
    assert int(str(version).split(".")[0]) >= 3


def test_postgis_and_pyproj_agree_on_epsg_4547() -> None:
    lon, lat = 114.0239, 22.6119
    engine = create_engine(postgis_url())
    with engine.connect() as conn:
        x, y = conn.execute(
            text(
                "SELECT ST_X(g), ST_Y(g) FROM "
                "(SELECT ST_Transform(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), 4547) g) s"
            ),
            {"lon": lon, "lat": lat},
        ).one()
    engine.dispose()
    ex, ny = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True).transform(lon, lat)
    # PostGIS returns x = easting (it ignores the EPSG northing-first axis order), as pyproj with always_xy.
    assert abs(x - ex) < 0.01 and abs(y - ny) < 0.01
    assert 502_000 < x < 504_000 and 2_500_000 < y < 2_502_500
