"""numberMatched: exact where cheap, a sampled estimate above the threshold — the same on every store."""

from __future__ import annotations

from twin.cql2 import parse_text
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
    query = FeatureQuery(expr=parse_text("code = 'B051'"), limit=1, offset=40)
    got = number_matched(store, "buildings", query, returned=1, threshold=10, sample_rows=5)
    assert got.value >= 41


def test_layer_size_follows_writes(store):
    assert layer_size(store, "roads") == (3, 1, 3)
    store.delete("roads", [1])
    assert layer_size(store, "roads") == (2, 2, 3)
