"""``numberMatched`` for a page of features: exact where that is cheap, a sampled estimate on big layers.

The rules, in order (``returned`` is the size of the page just read):

1. A page shorter than its limit ends the result, so ``offset + returned`` is exact and nothing is counted.
2. A query without any filter matches the whole layer: its row count, cached per layer version.
3. Otherwise the store counts the query exactly but stops at ``threshold + 1`` matches (a capped count reads at
   most that many rows), so any query matching up to ``threshold`` features gets its exact count, however big the
   layer — a bbox page of a few thousand buildings out of a million costs milliseconds.
4. Only a query matching more than ``threshold`` features on a layer bigger than that is counted on a simple
   random sample of the id space — ``SAMPLE_ROWS`` distinct ids drawn
   uniformly between the lowest and the highest id, seeded by the layer version so every page of a result
   reports the same estimate — and scaled by (layer rows / sampled ids that exist). Ids are the primary key, so
   both stores probe only the sampled rows (plus the spatial index for spatial filters). With 10,000 ids the
   standard error is at most 0.5 % of the layer's rows. Random rather than evenly spaced ids, because ids follow
   load order (readings by sensor, then time) and a regular grid aliases with such periodic data. The estimate
   is never below what the client has already seen (``offset + returned``).

The sampling uses only ``Store.count`` with a CQL2 expression, so every backend gets the same estimate.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, replace

import numpy as np

from twin.cql2 import ast
from twin.store.base import FeatureQuery, Sort, Store

#: Filtered queries matching more than this many features (on a bigger layer) get an estimated ``numberMatched``.
EXACT_COUNT_LIMIT = 100_000
#: Number of ids in the sample an estimate counts on.
SAMPLE_ROWS = 10_000

#: store -> layer -> (version, rows, lowest id, highest id)
_CACHE: weakref.WeakKeyDictionary[Store, dict[str, tuple[int, int, int, int]]] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Matched:
    """A ``numberMatched`` value and whether it is exact."""

    value: int
    exact: bool


def _is_filtered(query: FeatureQuery) -> bool:
    return any((query.bbox is not None, query.geometry is not None, query.filters, query.time is not None,
                query.expr is not None))


def layer_size(store: Store, layer_id: str) -> tuple[int, int, int]:
    """``(rows, lowest id, highest id)`` of a layer, cached until its version changes."""
    version = store.layer_version(layer_id)
    with _CACHE_LOCK:
        cached = _CACHE.get(store, {}).get(layer_id)
    if cached is not None and cached[0] == version:
        return cached[1], cached[2], cached[3]
    rows = store.count(layer_id)
    ids = [store.query(layer_id, FeatureQuery(sort=(Sort("id", descending=d),), limit=1, properties=())).index
           for d in (False, True)]
    low, high = (int(i[0]) if len(i) else 0 for i in ids)
    with _CACHE_LOCK:
        _CACHE.setdefault(store, {})[layer_id] = (version, rows, low, high)
    return rows, low, high


def id_sample(low: int, high: int, size: int, seed: int) -> ast.Expr:
    """``id IN (…)`` for ``size`` distinct ids drawn uniformly (seeded, so pages agree) from ``[low, high]``."""
    span = high - low + 1
    rng = np.random.default_rng(seed)
    ids = np.arange(low, high + 1) if span <= size else np.sort(rng.choice(span, size=size, replace=False)) + low
    return ast.In(ast.Property("id"), tuple(ast.Literal(int(i)) for i in ids))


def number_matched(store: Store, layer_id: str, query: FeatureQuery, returned: int,
                   threshold: int = EXACT_COUNT_LIMIT, sample_rows: int | None = None) -> Matched:
    """``numberMatched`` for a page of ``returned`` rows read with ``query`` (see the module docstring)."""
    seen = query.offset + returned
    if query.limit is not None and returned < query.limit and (returned > 0 or query.offset == 0):
        return Matched(seen, True)
    if not _is_filtered(query):
        return Matched(layer_size(store, layer_id)[0], True)
    rows, low, high = layer_size(store, layer_id)
    if rows <= threshold:
        return Matched(store.count(layer_id, query), True)
    capped = store.count(layer_id, query, cap=threshold + 1)
    if capped <= threshold:
        return Matched(max(capped, seen), True)
    sample = id_sample(low, high, sample_rows or SAMPLE_ROWS, seed=store.layer_version(layer_id))
    sampled = store.count(layer_id, FeatureQuery(expr=sample))
    if sampled == 0:
        return Matched(max(seen, 0), False)
    expr = sample if query.expr is None else ast.And((query.expr, sample))
    hits = store.count(layer_id, replace(query, expr=expr, limit=None, offset=0))
    return Matched(max(seen, round(hits * rows / sampled)), False)
