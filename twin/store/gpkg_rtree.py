"""Bulk loading of a GeoPackage R-tree: a packed tree written straight into SQLite's R-tree shadow tables.

Inserting a million rows one by one into an SQLite R*-tree costs about 9 µs each. For bulk loads we instead build
a packed R-tree in numpy (entries in Hilbert order, nodes filled evenly bottom-up, as GDAL's bulk loader does) and
write its nodes in the on-disk format of SQLite's ``rtree`` module (``ext/rtree/rtree.c``):

* ``<name>_node(nodeno, data)``: one blob per node, ``iNodeSize`` bytes (4 + 24 × 51 for a 2-D tree when the page
  is large enough): a big-endian ``u16`` tree depth (root node only), a ``u16`` cell count, then cells of a
  big-endian ``i64`` (a rowid in leaves, a child node number above) and four big-endian ``float32`` bounds
  ``minx, maxx, miny, maxy``; node 1 is the root;
* ``<name>_rowid(rowid, nodeno)``: the leaf of every entry;
* ``<name>_parent(nodeno, parentnode)``: the parent of every node but the root.

Bounds are rounded outwards to float32, as the module itself does, so the index stays a superset. The result is an
ordinary R*-tree to SQLite: later inserts, updates and deletes through the triggers maintain it as usual, and
``rtreecheck()`` validates it (the tests call it).
"""

from __future__ import annotations

import sqlite3

import numpy as np

from twin.store.gpkg_schema import quote

MAX_CELLS = 51  # RTREE_MAXCELLS
_CELL = np.dtype([("ref", ">i8"), ("box", ">f4", (4,))])


def _outward(bounds: np.ndarray) -> np.ndarray:
    """``(n, 4)`` doubles ``minx, maxx, miny, maxy`` as float32 rounded outwards."""
    rounded = bounds.astype(np.float32)
    for column, direction in ((0, -np.inf), (1, np.inf), (2, -np.inf), (3, np.inf)):
        exact = bounds[:, column]
        value = rounded[:, column]
        wrong = value > exact if direction < 0 else value < exact
        value[wrong] = np.nextafter(value[wrong], np.float32(direction))
    return rounded


def _group_sizes(count: int, capacity: int) -> np.ndarray:
    """Split ``count`` entries into the fewest nodes of at most ``capacity``, as evenly as possible."""
    nodes = max(1, -(-count // capacity))
    sizes = np.full(nodes, count // nodes, dtype=np.int64)
    sizes[: count % nodes] += 1
    return sizes


def node_size(conn: sqlite3.Connection, name: str) -> int:
    """Bytes per node of an existing R-tree (SQLite fixes it when the table is created)."""
    return int(conn.execute(f"SELECT length(data) FROM {quote(name + '_node')} WHERE nodeno = 1").fetchone()[0])


def bulk_load(conn: sqlite3.Connection, name: str, ids: np.ndarray, bounds: np.ndarray) -> None:
    """Fill the empty R-tree ``name`` with ``ids`` and their ``(n, 4)`` bounds ``minx, miny, maxx, maxy``.

    ``ids`` should come in a spatially coherent order (e.g. along a Hilbert curve): consecutive entries share nodes.
    """
    size = node_size(conn, name)
    capacity = min(MAX_CELLS, (size - 4) // _CELL.itemsize)
    refs = np.asarray(ids, dtype=np.int64)
    boxes = _outward(np.asarray(bounds, dtype=np.float64)[:, [0, 2, 1, 3]])
    levels: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (refs, boxes, group sizes) per level, leaves first
    while True:
        sizes = _group_sizes(len(refs), capacity)
        levels.append((refs, boxes, sizes))
        if len(sizes) == 1:
            break
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        parent_boxes = np.column_stack([
            np.minimum.reduceat(boxes[:, 0], starts), np.maximum.reduceat(boxes[:, 1], starts),
            np.minimum.reduceat(boxes[:, 2], starts), np.maximum.reduceat(boxes[:, 3], starts),
        ])
        refs, boxes = np.arange(len(sizes), dtype=np.int64), parent_boxes  # placeholders, numbered below
    # number the nodes: the root is 1, the others follow from the top level down
    numbers: list[np.ndarray] = []
    next_number = 2
    for depth, (_, _, sizes) in enumerate(reversed(levels)):
        if depth == 0:
            numbers.append(np.array([1], dtype=np.int64))
        else:
            numbers.append(np.arange(next_number, next_number + len(sizes), dtype=np.int64))
            next_number += len(sizes)
    numbers.reverse()  # numbers[level] are the node numbers of that level, leaves first
    node_rows: list[tuple[int, bytes]] = []
    parent_rows: list[tuple[int, int]] = []
    tree_depth = len(levels) - 1
    for level, (level_refs, level_boxes, sizes) in enumerate(levels):
        if level > 0:
            level_refs = numbers[level - 1]  # cells above the leaves point at the nodes of the level below
        cells = np.zeros(len(level_refs), dtype=_CELL)
        cells["ref"] = level_refs
        cells["box"] = level_boxes
        raw = cells.tobytes()
        owner = np.repeat(numbers[level], sizes)
        if level == 0:
            conn.executemany(f"INSERT INTO {quote(name + '_rowid')} (rowid, nodeno) VALUES (?, ?)",
                             zip(level_refs.tolist(), owner.tolist(), strict=True))
        else:
            parent_rows.extend(zip(level_refs.tolist(), owner.tolist(), strict=True))
        offset = 0
        for number, count in zip(numbers[level].tolist(), sizes.tolist(), strict=True):
            header = (tree_depth if number == 1 else 0).to_bytes(2, "big") + count.to_bytes(2, "big")
            body = raw[offset * _CELL.itemsize : (offset + count) * _CELL.itemsize]
            node_rows.append((number, (header + body).ljust(size, b"\0")))
            offset += count
    conn.executemany(f"INSERT OR REPLACE INTO {quote(name + '_node')} (nodeno, data) VALUES (?, ?)", node_rows)
    conn.executemany(f"INSERT INTO {quote(name + '_parent')} (nodeno, parentnode) VALUES (?, ?)", parent_rows)
