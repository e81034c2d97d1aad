"""Contract: ``update_many`` — many features' fields changed in one validated transaction (the IoT engine's
sensor-state writes), on every backend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point

from tests.store.conftest import T0
from tests.store.helpers import assert_same_frame
from twin.errors import NotFound, ValidationFailed


def _changes(ids: list[int], **columns: list) -> pd.DataFrame:
    return pd.DataFrame(columns, index=pd.Index(ids, name="id"))


def test_update_many_sets_the_given_fields_of_each_feature_and_nothing_else(store) -> None:
    before = store.query("sensors")
    seen = [T0 + pd.Timedelta(minutes=m) for m in (1, 2, 3)]
    changes = _changes([3, 1, 7], status=["alarm", "offline", "online"], last_value=[1.5, None, 42.0],
                       last_seen=seen)
    assert store.update_many("sensors", changes) == 3
    after = store.query("sensors")
    assert after.loc[3, "status"] == "alarm" and after.loc[3, "last_value"] == 1.5
    assert after.loc[1, "status"] == "offline" and pd.isna(after.loc[1, "last_value"])  # null clears
    assert after.loc[7, "last_value"] == 42.0 and after.loc[7, "last_seen"] == seen[2]
    assert after.loc[3, "last_seen"] == seen[0]
    untouched = [c for c in before.columns if c not in ("status", "last_value", "last_seen")]
    assert_same_frame(after[untouched], before[untouched])  # other fields and the geometry stay
    others = before.index.difference([1, 3, 7])
    assert_same_frame(after.loc[others], before.loc[others])


def test_update_many_of_one_column_matches_update_one_by_one(store) -> None:
    ids = [2, 4, 6, 8, 10]
    values = [10.0, 20.0, 30.0, 40.0, 50.0]
    version = store.layer_version("sensors")
    assert store.update_many("sensors", _changes(ids, last_value=values)) == 5
    assert store.layer_version("sensors") > version  # caches of tiles see the change
    assert store.query("sensors").loc[ids, "last_value"].tolist() == values


def test_unknown_ids_are_skipped_and_counted_out(store) -> None:
    assert store.update_many("sensors", _changes([5, 99_999], status=["fault", "offline"])) == 1
    assert store.get("sensors", 5).iloc[0]["status"] == "fault"
    with pytest.raises(NotFound):
        store.get("sensors", 99_999)


def test_an_invalid_row_writes_nothing(store) -> None:
    before = store.query("sensors")
    with pytest.raises(ValidationFailed) as err:
        store.update_many("sensors", _changes([1, 2], status=["online", "melted"]))  # outside the domain
    assert "status" in str(err.value)
    with pytest.raises(ValidationFailed):
        store.update_many("sensors", _changes([1], code=[None]))  # a required field cannot be cleared
    with pytest.raises(ValidationFailed):
        store.update_many("sensors", _changes([1], no_such_field=[1]))
    with pytest.raises(ValidationFailed):
        store.update_many("sensors", pd.DataFrame({"status": ["online"]}))  # no ids
    with pytest.raises(ValidationFailed):
        store.update_many("sensors", _changes([1, 1], status=["online", "fault"]))  # the same id twice
    import geopandas as gpd

    moved = gpd.GeoDataFrame({"status": ["online"]}, geometry=[Point(114.03, 22.61)], crs="EPSG:4326",
                             index=pd.Index([1], name="id"))
    with pytest.raises(ValidationFailed):
        store.update_many("sensors", moved)
    assert_same_frame(store.query("sensors"), before)


def test_an_empty_frame_changes_nothing(store) -> None:
    version = store.layer_version("sensors")
    assert store.update_many("sensors", _changes([], status=[])) == 0
    assert store.layer_version("sensors") == version


def test_update_many_on_a_table_and_survives_reopening(store, reopen) -> None:
    ids = list(range(1, 13))
    statuses = ["resolved"] * 12
    stamps = [T0 + pd.Timedelta(hours=30 + i) for i in range(12)]
    assert store.update_many("alarms", _changes(ids, status=statuses, resolved_at=stamps,
                                                resolved_by=[f"op {i}" for i in ids])) == 12
    again = reopen(store)
    try:
        alarms = again.query("alarms")
        assert (alarms["status"] == "resolved").all()
        assert alarms["resolved_at"].tolist() == stamps and alarms.loc[12, "resolved_by"] == "op 12"
    finally:
        again.close()


def test_every_row_in_one_call(store) -> None:
    n = len(store.query("sensors"))
    ids = np.arange(1, n + 1)
    rng = np.random.default_rng(7)
    values = rng.normal(size=n).round(3)
    assert store.update_many("sensors", _changes(ids.tolist(), last_value=values.tolist())) == n
    np.testing.assert_array_equal(store.query("sensors").loc[ids, "last_value"].to_numpy(float), values)
