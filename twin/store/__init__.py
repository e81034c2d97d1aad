"""Stores: one typed interface, one backend per engine."""

from twin.store.base import (
    METRIC_CRS,
    STORAGE_CRS,
    BBox,
    FeatureQuery,
    Filter,
    Op,
    Predicate,
    Sort,
    Store,
    TimeRange,
)

__all__ = [
    "METRIC_CRS",
    "STORAGE_CRS",
    "BBox",
    "FeatureQuery",
    "Filter",
    "Op",
    "Predicate",
    "Sort",
    "Store",
    "TimeRange",
]
