"""Contract: ``append`` is the idempotent insert — rows already stored (by unique key or id) are skipped."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.store.conftest import T0
from twin.errors import ValidationFailed
from twin.store.base import FeatureQuery, Filter, Op


def _readings(sensor: int, minutes: list[int], value: float = 1.5) -> pd.DataFrame:
    return pd.DataFrame({
        "sensor_id": [sensor] * len(minutes),
        "ts": [T0 + pd.Timedelta(minutes=m) for m in minutes],
        "value": [value + m for m in minutes],
    })


def test_new_rows_are_added_and_counted(store) -> None:
    before = store.count("readings")
    assert store.append("readings", _readings(9, [1, 2, 3])) == 3
    assert store.count("readings") == before + 3
    got = store.query("readings", FeatureQuery(filters=(Filter("sensor_id", Op.EQ, 9),)))
    assert list(got["value"]) == [2.5, 3.5, 4.5]


def test_redelivered_rows_are_stored_once(store) -> None:
    store.append("readings", _readings(9, [1, 2]))
    before = store.count("readings")
    # the same two again (a QoS 1 redelivery) plus one new: only the new one lands
    assert store.append("readings", _readings(9, [1, 2, 5], value=99.0)) == 1
    assert store.count("readings") == before + 1
    kept = store.query("readings", FeatureQuery(filters=(Filter("sensor_id", Op.EQ, 9),)))
    assert sorted(kept["value"]) == [2.5, 3.5, 104.0]  # the first delivery's values win


def test_duplicates_inside_one_batch_count_once(store) -> None:
    before = store.count("readings")
    assert store.append("readings", _readings(9, [7, 7, 7])) == 1
    assert store.count("readings") == before + 1


def test_rows_matching_the_fixture_history_are_skipped(store, twin_data) -> None:
    existing = twin_data.expected("readings").reset_index(drop=True).head(5)
    before = store.count("readings")
    assert store.append("readings", existing) == 0
    assert store.count("readings") == before


def test_an_invalid_row_fails_the_whole_append(store) -> None:
    frame = _readings(9, [1, 2, 3])
    frame["value"] = pd.Series([1.0, 2.0, "hot"], dtype=object)
    before = store.count("readings")
    with pytest.raises(ValidationFailed):
        store.append("readings", frame)
    assert store.count("readings") == before


def test_append_with_known_ids_skips_them(store, twin_data) -> None:
    buildings = twin_data.expected("buildings")
    before = store.count("buildings")
    assert store.append("buildings", buildings.head(3)) == 0
    assert store.count("buildings") == before


def test_empty_append(store) -> None:
    assert store.append("readings", _readings(9, [])) == 0
