"""numberMatched: exact where cheap, a sampled estimate above the threshold — the same on every store."""

from __future__ import annotations

import pytest

from twin.cql2 import parse_text
from twin.errors import InvalidQuery
from twin.store.base import BBox, FeatureQuery, Filter, Op
from twin.store.counting import layer_size, number_matched


def test_a_short_page_is_exact_without_counting(store):
    query = FeatureQuery(filters=(Filter("height_m", Op.GE, 36),), limit=100, offset=3)
    got = number_matched(store, "buildings", query, returned=5, threshold=1)
    assert got.exact and got.value == 8  # offset + returned, whatever the store holds


def test_unfiltered_queries_are_the_layer_size(store):
    got = number_matched(store, "buildings", FeatureQuery(limit=10), returned=10, threshold=1)
    assert got.exact and got.value == 51


def test_below_the_threshold_the_store_counts(store):
    query = FeatureQuery(bbox=BBox(114.021, 22.602, 114.036, 22.615), limit=3)
    got = number_matched(store, "buildings", query, returned=3, threshold=100)
    assert got.exact and got.value == store.count("buildings", query)


def test_above_the_threshold_a_sample_is_scaled(store):
    query = FeatureQuery(expr=parse_text("height_m >= 36"), limit=2)
    exact = store.count("buildings", query)
    whole = number_matched(store, "buildings", query, returned=2, threshold=10, sample_rows=1000)
    assert not whole.exact and whole.value == exact  # a sample that holds every id is exact
    sampled = number_matched(store, "buildings", query, returned=2, threshold=10, sample_rows=25)
    assert not sampled.exact and 0.4 * exact <= sampled.value <= 1.6 * exact
    again = number_matched(store, "buildings", query, returned=2, threshold=10, sample_rows=25)
    assert again == sampled  # seeded: every page of a result reports the same estimate


def test_estimates_never_fall_below_what_was_seen(store):
    query = FeatureQuery(expr=parse_text("height_m >= 0"), limit=1, offset=80)
    got = number_matched(store, "buildings", query, returned=1, threshold=10, sample_rows=5)
    assert not got.exact and got.value >= 81


def test_a_big_layer_counts_small_results_exactly(store):
    # 51 buildings, threshold 20: a query matching up to 20 of them is counted exactly, not estimated
    for text, expect_exact in (("height_m >= 100", True), ("height_m >= 0", False)):
        query = FeatureQuery(expr=parse_text(text), limit=2)
        exact = store.count("buildings", query)
        got = number_matched(store, "buildings", query, returned=2, threshold=20, sample_rows=5)
        assert got.exact is expect_exact and (exact <= 20) is expect_exact
        if expect_exact:
            assert got.value == exact


@pytest.mark.parametrize("cap", [1, 3, 10_000])
def test_capped_counts_stop_at_the_cap(store, cap):
    for query in (FeatureQuery(), FeatureQuery(bbox=BBox(114.021, 22.602, 114.036, 22.615)),
                  FeatureQuery(expr=parse_text("height_m >= 36")),
                  FeatureQuery(expr=parse_text("S_INTERSECTS(geometry, BBOX(114.021, 22.602, 114.036, 22.615))"))):
        exact = store.count("buildings", query)
        assert exact > 3
        assert store.count("buildings", query, cap=cap) == min(exact, cap)


@pytest.mark.parametrize("cap", [0, -1, 2.5, True, "3"])
def test_bad_caps_are_refused(store, cap):
    with pytest.raises(InvalidQuery):
        store.count("buildings", cap=cap)


def test_layer_size_follows_writes(store):
    assert layer_size(store, "roads") == (3, 1, 3)
    store.delete("roads", [1])
    assert layer_size(store, "roads") == (2, 2, 3)
