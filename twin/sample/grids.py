"""The management hierarchy: district (区) → subdistrict (街道) → community (社区) → grid (网格).

Grids are the Voronoi cells of a jittered lattice clipped to the extent, snapped to the millimetre so that
neighbours share their vertices exactly; each higher level is the coverage union of its children, so the
levels nest without gaps or overlaps. At district scale this is 龙华区 → 民治街道 → Minzhi's 13 communities →
a few hundred grids; at Shenzhen scale the ten districts sit roughly where they are in the real city.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely

from twin.sample.common import FloatArray, IntArray, StreetFrame, rect_rings, to_metric
from twin.sample.names import COMMUNITIES, DISTRICT, SHENZHEN_DISTRICTS, SUBDISTRICT, numeral, person_names

ObjArray = npt.NDArray[np.object_]


@dataclass(frozen=True)
class GridSet:
    """Rows of the grids layer, parents first; geometries in EPSG:4547 metres."""

    code: ObjArray
    parent: ObjArray
    level: ObjArray
    name: ObjArray
    officer: ObjArray
    geometry: ObjArray
    grid_rows: IntArray  # rows that are grids (网格)
    parent_row: IntArray  # row of each row's parent, -1 for the top level


def _lattice(rng: np.random.Generator, half_u: float, half_v: float, cell: float) -> tuple[FloatArray, FloatArray]:
    nu, nv = max(1, round(2 * half_u / cell)), max(1, round(2 * half_v / cell))
    cu, cv = 2 * half_u / nu, 2 * half_v / nv
    iu, iv = np.meshgrid(np.arange(nu), np.arange(nv), indexing="xy")
    u = -half_u + (iu.ravel() + 0.5 + rng.uniform(-0.33, 0.33, iu.size)) * cu
    v = -half_v + (iv.ravel() + 0.5 + rng.uniform(-0.33, 0.33, iv.size)) * cv
    return u, v


def _nearest(u: FloatArray, v: FloatArray, su: FloatArray, sv: FloatArray) -> IntArray:
    """Index of the nearest seed ``(su, sv)`` for every point, in chunks to bound memory."""
    out = np.empty(len(u), np.int64)
    step = max(1, 4_000_000 // max(len(su), 1))
    for start in range(0, len(u), step):
        d = (u[start:start + step, None] - su[None, :]) ** 2 + (v[start:start + step, None] - sv[None, :]) ** 2
        out[start:start + step] = np.argmin(d, axis=1)
    return out


def _cells(frame: StreetFrame, u: FloatArray, v: FloatArray, half_u: float, half_v: float) -> ObjArray:
    x, y = frame.to_xy(u, v)
    ring = rect_rings(np.array([-half_u]), np.array([half_u]), np.array([-half_v]), np.array([half_v]))[0]
    ex, ey = frame.to_xy(ring[:, 0], ring[:, 1])
    extent = shapely.Polygon(np.stack([ex, ey], axis=1))
    voronoi = shapely.voronoi_polygons(shapely.multipoints(np.stack([x, y], axis=1)), extend_to=extent, ordered=True)
    cells = shapely.intersection(np.asarray(shapely.get_parts(voronoi)), extent)
    return np.asarray(shapely.set_precision(cells, 0.001), dtype=object)


def _union(parts: ObjArray, group: IntArray, n: int) -> ObjArray:
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(n + 1))
    return np.array([shapely.coverage_union_all(parts[order[bounds[k]:bounds[k + 1]]]) for k in range(n)],
                    dtype=object)


def _compact(parent: IntArray, n: int) -> tuple[IntArray, IntArray]:
    """Drop parents without children: (kept parent indices, children's parent renumbered)."""
    used = np.unique(parent)
    remap = np.full(n, -1, np.int64)
    remap[used] = np.arange(len(used))
    return used, remap[parent]


def build(
    seed_rng: np.random.Generator, frame: StreetFrame, half_u: float, half_v: float, *, shenzhen: bool,
    grid_cell_m: float,
) -> GridSet:
    """The hierarchy over the ``2·half_u × 2·half_v`` m extent; grids about ``grid_cell_m`` across."""
    rng = seed_rng
    gu, gv = _lattice(rng, half_u, half_v, grid_cell_m)
    grids = _cells(frame, gu, gv, half_u, half_v)
    if shenzhen:
        cu, cv = _lattice(rng, half_u, half_v, grid_cell_m * 5)
        su, sv = _lattice(rng, half_u, half_v, grid_cell_m * 15)
        lon, lat = np.array([d[2] for d in SHENZHEN_DISTRICTS]), np.array([d[3] for d in SHENZHEN_DISTRICTS])
        du, dv = frame.to_uv(*to_metric(lon, lat))
        shrink = min(1.0, 0.9 * half_u / np.abs(du).max(), 0.9 * half_v / np.abs(dv).max())
        du, dv = du * shrink, dv * shrink
    else:
        cu = np.array([a for _, a, _ in COMMUNITIES]) * half_u + rng.uniform(-40, 40, len(COMMUNITIES))
        cv = np.array([b for _, _, b in COMMUNITIES]) * half_v + rng.uniform(-40, 40, len(COMMUNITIES))
        su, sv, du, dv = np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1)
    comm_of_grid = _nearest(gu, gv, cu, cv)
    comms, comm_of_grid = _compact(comm_of_grid, len(cu))
    sub_of_comm = _nearest(cu[comms], cv[comms], su, sv)
    subs, sub_of_comm = _compact(sub_of_comm, len(su))
    dist_of_sub = _nearest(su[subs], sv[subs], du, dv)
    dists, dist_of_sub = _compact(dist_of_sub, len(du))

    comm_geom = _union(grids, comm_of_grid, len(comms))
    sub_geom = _union(comm_geom, sub_of_comm, len(subs))
    dist_geom = _union(sub_geom, dist_of_sub, len(dists))

    if shenzhen:
        d_name = [SHENZHEN_DISTRICTS[int(k)][0] for k in dists]
        d_code = [SHENZHEN_DISTRICTS[int(k)][1] for k in dists]
    else:
        d_name, d_code = [DISTRICT[0]], [DISTRICT[1]]
    if shenzhen:
        given = [SHENZHEN_DISTRICTS[int(k)][4] for k in dists]
        s_name, s_code = _children_names(dist_of_sub, d_code, given, "街道", d_name)
        c_name, c_code = _children_names(sub_of_comm, s_code, None, "社区", s_name)
    else:
        s_name, s_code = [SUBDISTRICT[0]], [SUBDISTRICT[1]]
        c_name = [COMMUNITIES[int(k)][0] + "社区" for k in comms]
        c_code = [f"{SUBDISTRICT[1]}{int(k) + 1:03d}" for k in comms]
    g_name = [f"{c_name[c]}第{k:02d}网格" for c, k in zip(comm_of_grid, _rank(comm_of_grid), strict=True)]
    g_code = [f"{c_code[c]}{k:03d}" for c, k in zip(comm_of_grid, _rank(comm_of_grid), strict=True)]
    nd, ns, nc, ng = len(dists), len(subs), len(comms), len(grids)
    order = np.argsort(np.array(g_code), kind="stable")  # grids by code
    parent_row = np.concatenate([
        np.full(nd, -1), dist_of_sub, nd + sub_of_comm, nd + ns + comm_of_grid[order]
    ]).astype(np.int64)
    codes = np.array(d_code + s_code + c_code + [g_code[i] for i in order], dtype=object)
    parents = np.array([None if p < 0 else codes[p] for p in parent_row], dtype=object)
    levels = np.array(["district"] * nd + ["subdistrict"] * ns + ["community"] * nc + ["grid"] * ng, dtype=object)
    names = np.array(d_name + s_name + c_name + [g_name[i] for i in order], dtype=object)
    officers = np.full(len(codes), None, dtype=object)
    officers[nd + ns + nc:] = person_names(rng, ng).astype(object)
    geometry = np.concatenate([dist_geom, sub_geom, comm_geom, grids[order]])
    geometry = np.array([g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g]) for g in geometry],
                        dtype=object)
    return GridSet(codes, parents, levels, names, officers, geometry, np.arange(nd + ns + nc, len(codes)), parent_row)


def _rank(group: IntArray) -> IntArray:
    """1-based rank of each item within its group, in input order."""
    rank = np.zeros(len(group), np.int64)
    counts: dict[int, int] = {}
    for i, g in enumerate(group.tolist()):
        counts[g] = counts.get(g, 0) + 1
        rank[i] = counts[g]
    return rank


def _children_names(
    parent: IntArray, parent_codes: list[str], given: list[tuple[str, ...]] | None, suffix: str,
    parent_names: list[str],
) -> tuple[list[str], list[str]]:
    """Names and codes of children: the given names of each parent in order, then made-up ones."""
    names, codes = [], []
    for child, k in zip(parent.tolist(), _rank(parent).tolist(), strict=True):
        pool = given[child] if given is not None else ()
        if k <= len(pool):
            names.append(pool[k - 1] + suffix)
        else:
            stem = parent_names[child][:2]
            names.append(f"{stem}{numeral(k) if k < 100 else k}{suffix}")
        codes.append(f"{parent_codes[child]}{k:03d}")
    return names, codes
