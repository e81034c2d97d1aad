"""Building footprints laid out on the blocks of the street plan, with heights, floors, uses and people counts.

Each block is cut into plots according to its kind (CBD plots of ~100 m, residential compounds of point towers
or slabs, urban-village "handshake" houses 2–4 m apart, factories, schools); one footprint per plot, so
footprints never overlap and always keep clear of the roads. The 138 super high-rises take CBD plots near the
station; every other building stays at or below 100 m (汇德大厦's sister tower is exactly 100 m: *not* over it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from twin.sample.common import FloatArray, IntArray
from twin.sample.district import CBD, COMMERCIAL, INDUSTRIAL, PUBLIC, RESIDENTIAL, VILLAGE, Layout, excluded
from twin.sample.district import STATION_HALF as HALL
from twin.sample.names import compound_names, park_names, tower_names
from twin.sample.towers import HUIDE, HUIDE_B, TowerPlan, plan_towers, tower_heights, tower_uses

N_TOWERS = 138
#: Plot styles: plot size u (lo, hi), v (lo, hi); fill fraction u, v; largest footprint u, v; margin; occupancy.
STYLES = {
    "cbd": ((85, 105), (94, 114), (0.45, 0.72), (0.4, 0.62), (70, 60), 4.0, 0.92),
    "res_tower": ((38, 46), (38, 46), (0.55, 0.72), (0.55, 0.72), (30, 30), 3.0, 0.9),
    "res_slab": ((55, 70), (26, 34), (0.72, 0.88), (0.45, 0.6), (60, 18), 3.0, 0.9),
    "village": ((14, 19), (14, 19), (0.8, 0.92), (0.8, 0.92), (17, 17), 1.0, 0.93),
    "commercial": ((55, 80), (55, 80), (0.6, 0.82), (0.6, 0.82), (65, 55), 4.0, 0.9),
    "industrial": ((70, 100), (45, 65), (0.62, 0.82), (0.55, 0.75), (80, 45), 4.0, 0.85),
    "public": ((70, 100), (70, 100), (0.45, 0.65), (0.35, 0.55), (60, 40), 4.0, 0.85),
}
STYLE_NAMES = tuple(STYLES)
_KIND_STYLE = {CBD: 0, RESIDENTIAL: 1, VILLAGE: 3, COMMERCIAL: 4, INDUSTRIAL: 5, PUBLIC: 6}
#: Where 汇德大厦 stands: across 致远中路 from the station's east plaza (street frame, m).
HUIDE_SITE = (560.0, -150.0)


@dataclass(frozen=True)
class Plots:
    """Candidate plots and the footprint drawn in each (street frame), with block and style."""

    parcel: FloatArray  # (n, 4)
    rect: FloatArray  # (n, 4)
    block: IntArray
    style: IntArray
    occupied: npt.NDArray[np.bool_]  # False: an empty CBD plot, kept only as a tower site


@dataclass(frozen=True)
class BuildingSet:
    """All buildings: index 0 the station, 1–138 the towers (汇德大厦 first), then the rest."""

    rect: FloatArray
    block: IntArray
    style: IntArray  # -1 station, -2 tower
    use: npt.NDArray[np.object_]
    height: FloatArray
    floors_above: IntArray
    floors_below: IntArray
    year_built: IntArray
    name: npt.NDArray[np.object_]
    towers: TowerPlan


def draw_plots(layout: Layout, rng: np.random.Generator) -> Plots:
    """Cut every block into plots and draw one footprint per occupied plot, clear of the station and railway."""
    b = layout.blocks
    style = np.array([_KIND_STYLE.get(int(k), -1) for k in b.kind], np.int64)
    style = np.where((style == 1) & (rng.random(len(style)) < 0.45), 2, style)  # slab compounds
    live = np.flatnonzero(style >= 0)
    params = [STYLES[STYLE_NAMES[s]] for s in style[live]]
    su = np.array([rng.uniform(*p[0]) for p in params])
    sv = np.array([rng.uniform(*p[1]) for p in params])
    w, h = b.u1[live] - b.u0[live], b.v1[live] - b.v0[live]
    nu = np.where(w >= 0.7 * su, np.maximum(1, np.floor(w / su)), 0).astype(np.int64)
    nv = np.where(h >= 0.7 * sv, np.maximum(1, np.floor(h / sv)), 0).astype(np.int64)
    counts = nu * nv
    blk = np.repeat(live, counts)
    local = np.repeat(np.arange(len(live)), counts)
    k = np.arange(len(blk)) - np.repeat(np.cumsum(counts) - counts, counts)
    iu, iv = k % nu[local], k // nu[local]
    pw, ph = w[local] / nu[local], h[local] / nv[local]
    pu0, pv0 = b.u0[blk] + iu * pw, b.v0[blk] + iv * ph
    st = style[blk]
    table = np.array([[*p[2], *p[3], *p[4], p[5], p[6]] for p in STYLES.values()])[st]
    n = len(blk)
    margin = table[:, 6]
    bw = np.minimum.reduce([pw * rng.uniform(table[:, 0], table[:, 1]), table[:, 4], pw - 2 * margin])
    bh = np.minimum.reduce([ph * rng.uniform(table[:, 2], table[:, 3]), table[:, 5], ph - 2 * margin])
    ou = margin + rng.random(n) * np.maximum(pw - 2 * margin - bw, 0)
    ov = margin + rng.random(n) * np.maximum(ph - 2 * margin - bh, 0)
    rect = np.stack([pu0 + ou, pu0 + ou + bw, pv0 + ov, pv0 + ov + bh], axis=1)
    parcel = np.stack([pu0, pu0 + pw, pv0, pv0 + ph], axis=1)
    occupied = (rng.random(n) < table[:, 7]) & (bw >= 6) & (bh >= 6) & ~excluded(*rect.T)
    keep = occupied | ((st == 0) & ~excluded(*parcel.T))  # CBD plots stay candidates for the towers
    return Plots(parcel[keep], rect[keep], blk[keep], st[keep], occupied[keep])


def _pick_towers(plots: Plots, rng: np.random.Generator) -> IntArray:
    """Indices of the plots for the 138 towers, 汇德大厦's first: CBD plots, the nearer the station the likelier."""
    pw = plots.parcel[:, 1] - plots.parcel[:, 0]
    ph = plots.parcel[:, 3] - plots.parcel[:, 2]
    ok = np.flatnonzero((plots.style == 0) & (pw >= 80) & (ph >= 90) & ~excluded(*plots.parcel.T))
    if len(ok) < N_TOWERS:
        raise ValueError(f"only {len(ok)} CBD plots for {N_TOWERS} towers; enlarge the extent")
    cu = (plots.parcel[ok, 0] + plots.parcel[ok, 1]) / 2
    cv = (plots.parcel[ok, 2] + plots.parcel[ok, 3]) / 2
    huide = ok[np.argmin(np.hypot(cu - HUIDE_SITE[0], cv - HUIDE_SITE[1]))]
    score = np.hypot(cu, cv) / 1300.0 + rng.uniform(0.0, 0.7, len(ok))
    order = [i for i in ok[np.argsort(score, kind="stable")] if i != huide]
    return np.asarray([huide, *order[: N_TOWERS - 1]], np.int64)


def build(layout: Layout, plots: Plots, rng: np.random.Generator, n_target: int | None) -> BuildingSet:
    """Choose the towers and the other buildings (``n_target`` in all, or every plot) and give them attributes."""
    tower_idx = _pick_towers(plots, rng)
    is_tower = np.zeros(len(plots.block), bool)
    is_tower[tower_idx] = True
    others = np.flatnonzero(~is_tower & plots.occupied)
    cu = (plots.rect[tower_idx[0], 0] + plots.rect[tower_idx[0], 1]) / 2
    cv = (plots.rect[tower_idx[0], 2] + plots.rect[tower_idx[0], 3]) / 2
    cbd = others[plots.style[others] == 0]
    sister = int(cbd[np.argmin(np.hypot(plots.rect[cbd, :2].mean(1) - cu, plots.rect[cbd, 2:].mean(1) - cv))])
    if n_target is not None:
        free = others[others != sister]
        wanted = n_target - 1 - N_TOWERS - 1
        if wanted < 0 or wanted > len(free):
            raise ValueError(f"cannot place {n_target} buildings here (room for {len(free) + N_TOWERS + 2})")
        others = np.sort(np.concatenate([[sister], rng.choice(free, wanted, replace=False)]))
    heights, uses = tower_heights(rng, N_TOWERS), tower_uses(rng, N_TOWERS)
    small = rng.choice(np.arange(5, N_TOWERS), 4, replace=False)
    towers = plan_towers(rng, plots.parcel[tower_idx], heights, uses, small[:2], small[2:],
                         int(rng.choice(np.flatnonzero((heights > 140) & (np.arange(N_TOWERS) > 0)))))
    st = plots.style[others]
    n = len(others)
    floors, storey, use, below, year = _ordinary(rng, st, plots.rect[others])
    parapet = np.minimum(rng.uniform(0.6, 1.8, n), floors * (4.5 - storey))
    height = np.round(np.minimum(floors * storey + parapet, 99.8), 1)
    names = _names(rng, st, plots.block[others], use)
    is_sister = others == sister
    height[is_sister], floors[is_sister], use[is_sister], names[is_sister] = 100.0, 24, "office", HUIDE_B
    station = np.array([[-HALL[0], HALL[0], -HALL[1], HALL[1]]])
    tower_names_ = np.array([HUIDE, *tower_names(rng, N_TOWERS - 1, {HUIDE})], dtype=object)
    return BuildingSet(
        rect=np.concatenate([station, towers.footprint, plots.rect[others]]),
        block=np.concatenate([[-1], plots.block[tower_idx], plots.block[others]]),
        style=np.concatenate([[-1], np.full(N_TOWERS, -2), st]),
        use=np.concatenate([np.array(["transport"], dtype=object), uses, use]),
        height=np.concatenate([[43.6], heights, height]),
        floors_above=np.concatenate([[3], np.zeros(N_TOWERS, np.int64), floors]),  # towers: set from their levels
        floors_below=np.concatenate([[2], towers.floors_below, below]),
        year_built=np.concatenate([[2011], [2019], rng.integers(2014, 2026, N_TOWERS - 1), year]),
        name=np.concatenate([np.array(["深圳北站"], dtype=object), tower_names_, names]),
        towers=towers,
    )


def _ordinary(
    rng: np.random.Generator, st: IntArray, rect: FloatArray
) -> tuple[IntArray, FloatArray, npt.NDArray[np.object_], IntArray, IntArray]:
    """Floors, storey height, use, basements and year for ordinary buildings by plot style."""
    n = len(st)
    r = rng.random(n)
    floors = np.select(
        [st == 0, (st == 1) & (r < 0.6), st == 1, st == 2, st == 3, st == 4],
        [rng.integers(5, 23, n), rng.integers(26, 34, n), rng.integers(6, 19, n), rng.integers(6, 19, n),
         rng.choice([4, 5, 6, 6, 7, 7, 8, 8, 9], n), rng.integers(2, 7, n)],
        rng.integers(2, 7, n),
    ).astype(np.int64)
    floors = np.where(st == 6, rng.integers(3, 7, n), floors)
    low = np.array([3.9, 3.0, 3.0, 3.0, 4.2, 4.0, 3.6])[st]
    high = np.array([4.4, 3.15, 3.1, 3.3, 4.5, 4.5, 4.2])[st]
    storey = rng.uniform(low, high)
    pick = rng.random(n)
    use = np.select(
        [st == 0, st <= 2, st == 3, st == 4, st == 5],
        [np.where(pick < 0.55, "office", np.where(pick < 0.75, "commercial", "mixed")),
         np.where(pick < 0.93, "residential", "mixed"), np.where(pick < 0.7, "residential", "mixed"),
         "commercial", "industrial"],
        np.where(pick < 0.45, "public", "education"),
    ).astype(object)
    below = np.select(
        [st == 0, st <= 2, st == 3, st == 4], [rng.integers(2, 5, n), rng.integers(1, 3, n),
                                               (rng.random(n) < 0.15).astype(int), rng.integers(1, 4, n)],
        (rng.random(n) < 0.4).astype(int),
    ).astype(np.int64)
    first = np.array([2012, 1998, 1998, 1986, 2004, 1990, 1995])[st]
    last = np.array([2027, 2025, 2025, 2011, 2025, 2013, 2023])[st]
    return floors, storey, use, below, rng.integers(first, last).astype(np.int64)


def _names(
    rng: np.random.Generator, st: IntArray, block: IntArray, use: npt.NDArray[np.object_]
) -> npt.NDArray[np.object_]:
    """Names: compounds and parks per block with a building number; some offices, malls and schools; villages none."""
    names = np.full(len(st), None, dtype=object)
    n_blocks = int(block.max()) + 1 if len(block) else 0
    seq = np.zeros(len(st), np.int64)
    order = np.lexsort((np.arange(len(st)), block))
    starts = np.r_[0, np.flatnonzero(np.diff(block[order])) + 1]
    run = np.arange(len(st)) - np.repeat(starts, np.diff(np.r_[starts, len(st)]))
    seq[order] = run + 1
    number = np.strings.add(seq.astype(np.str_), "栋")
    compounds = compound_names(rng, n_blocks)[block]
    parks = park_names(rng, n_blocks)[block]
    res = st <= 2
    names[res] = np.strings.add(compounds[res], number[res]).astype(object)
    names[st == 5] = np.strings.add(parks[st == 5], number[st == 5]).astype(object)
    stem = np.strings.slice(compounds, 0, 2)
    school = rng.choice(np.array(["小学", "中学", "实验学校", "幼儿园"]), len(st))
    hall = rng.choice(np.array(["社区党群服务中心", "社区健康服务中心", "文体中心", "派出所", "供电所"]), len(st))
    names[use == "education"] = np.strings.add(stem, school)[use == "education"].astype(object)
    names[use == "public"] = np.strings.add(stem, hall)[use == "public"].astype(object)
    mall = np.strings.add(stem, rng.choice(np.array(["广场", "商业中心", "购物中心", "酒店"]), len(st)))
    named_shop = (st == 4) & (rng.random(len(st)) < 0.6)
    names[named_shop] = mall[named_shop].astype(object)
    office = np.strings.add(stem, rng.choice(np.array(["大厦", "商务大厦", "科技大厦", "中心"]), len(st)))
    named_office = (st == 0) & (rng.random(len(st)) < 0.5)
    names[named_office] = office[named_office].astype(object)
    return names
