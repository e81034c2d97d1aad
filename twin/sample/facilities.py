"""The fire facilities of the towers, floor by floor, and the outdoor hydrants around them.

Indoor facilities sit at fixed spots of each level's outline (hydrant boxes by the stairs, detectors on a lattice
of about 80 m² each per GB 50116, fire phones and speakers on every refuge floor …); each tower also has its fire
control room (1F), pump room (lowest basement) and roof tank. Outdoor hydrants line the roads of the core about
every 85–110 m, at least 5 m from any wall — with a few deliberately left isolated (nearest neighbour > 120 m).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely

from twin.sample.common import FloatArray, IntArray
from twin.sample.district import STATION_HALF, Roads
from twin.sample.towers import Levels, TowerPlan

#: Code abbreviations (Chinese initials) of the facility types, in catalogue order.
ABBR = {
    "hydrant_box": "XHS", "hose_reel": "JP", "sprinkler_valve": "XHF", "smoke_detector": "YG", "heat_detector": "WG",
    "manual_call_point": "SB", "extinguisher": "MHQ", "fire_door": "FHM", "evacuation_stair": "LT",
    "fire_elevator": "XFDT", "smoke_exhaust_fan": "PYJ", "fire_phone": "DH", "broadcast_speaker": "GB",
    "fire_control_room": "XKS", "fire_pump_room": "BF", "roof_water_tank": "SX", "outdoor_hydrant": "SWXHS",
}
TYPES = tuple(ABBR)
#: Inspection period (days) by type; the rest are checked yearly.
PERIOD_DAYS = {"extinguisher": 90, "hydrant_box": 90, "outdoor_hydrant": 180}
DETECTOR_AREA_M2 = 80.0
CORE_RADIUS_M = 1700.0
HYDRANT_MIN_WALL_M = 5.0
ISOLATED_HYDRANTS = 5
CEILING = -1.0  # z offset marker: just under the ceiling
#: Facilities placed on levels: type index, level rows, slot on the level, u, v, z.
Placed = tuple[int, IntArray, IntArray, FloatArray, FloatArray, FloatArray]


@dataclass(frozen=True)
class Facilities:
    """Facility rows in id order (street-frame u, v; z above ground); tower and level are -1 where none."""

    type: IntArray  # index into TYPES
    tower: IntArray
    level: IntArray
    slot: IntArray
    u: FloatArray
    v: FloatArray
    z: FloatArray

    @property
    def type_name(self) -> npt.NDArray[np.object_]:
        """Type names."""
        return np.asarray(TYPES, dtype=object)[self.type]


def _at(lv: Levels, mask: npt.NDArray[np.bool_], spots: list[tuple[float, float]], dz: float, kind: str) -> Placed:
    levels = np.flatnonzero(mask)
    fu = np.tile([s[0] for s in spots], len(levels))
    fv = np.tile([s[1] for s in spots], len(levels))
    return _place(lv, np.repeat(levels, len(spots)), np.tile(np.arange(len(spots)), len(levels)), fu, fv, dz, kind)


def _place(lv: Levels, level: IntArray, slot: IntArray, fu: FloatArray, fv: FloatArray, dz: float, kind: str
           ) -> Placed:
    r = lv.rect[level]
    u = r[:, 0] + fu * (r[:, 1] - r[:, 0])
    v = r[:, 2] + fv * (r[:, 3] - r[:, 2])
    z = lv.elevation[level] + (lv.height[level] - 0.05 if dz == CEILING else dz)
    return TYPES.index(kind), level, slot, u, v, z


def _lattice(lv: Levels, mask: npt.NDArray[np.bool_], kind: str) -> Placed:
    """Detectors on a regular lattice, one per ~80 m² of floor."""
    levels = np.flatnonzero(mask)
    w = lv.rect[levels, 1] - lv.rect[levels, 0]
    h = lv.rect[levels, 3] - lv.rect[levels, 2]
    need = np.ceil(w * h / DETECTOR_AREA_M2)
    nx = np.maximum(1, np.ceil(np.sqrt(need * w / h))).astype(np.int64)
    ny = np.maximum(1, np.ceil(need / nx)).astype(np.int64)
    counts = nx * ny
    level = np.repeat(levels, counts)
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    gx, gy = np.repeat(nx, counts), np.repeat(ny, counts)
    return _place(lv, level, k, (k % gx + 0.5) / gx, (k // gx + 0.5) / gy, CEILING, kind)


def indoor(lv: Levels, plan: TowerPlan) -> Facilities:
    """Every indoor facility of every tower level."""
    roof = lv.use == "roof"
    storey = ~roof
    parking = lv.use == "parking"
    refuge = lv.is_refuge
    tall = plan.height[lv.tower] > 150.0
    lowest = lv.ordinal == -plan.floors_below[lv.tower]
    kitchen = np.isin(lv.use, ["commercial", "hotel"])
    corners = [(0.2, 0.25), (0.8, 0.25), (0.5, 0.8)]
    stairs = [(0.38, 0.42), (0.62, 0.58)]
    parts = [
        _at(lv, storey, corners, 1.1, "hydrant_box"),
        _at(lv, roof, [(0.5, 0.5)], 1.1, "hydrant_box"),  # the roof test hydrant
        _at(lv, storey, [(0.3, 0.2)], 1.1, "hose_reel"),
        _at(lv, storey, [(0.47, 0.5)], 1.2, "sprinkler_valve"),
        _lattice(lv, storey & ~parking, "smoke_detector"),
        _lattice(lv, parking, "heat_detector"),
        _at(lv, kitchen, [(0.88, 0.86), (0.94, 0.86), (0.91, 0.93)], CEILING, "heat_detector"),
        _at(lv, storey, [(0.3, 0.45), (0.7, 0.55)], 1.4, "manual_call_point"),
        _at(lv, storey, [(0.22, 0.27), (0.78, 0.27)], 0.1, "extinguisher"),
        _at(lv, np.ones(len(roof), bool), [(0.36, 0.4), (0.64, 0.6)], 0.0, "fire_door"),
        _at(lv, np.ones(len(roof), bool), stairs, 0.0, "evacuation_stair"),
        _at(lv, storey, [(0.5, 0.45)], 0.0, "fire_elevator"),
        _at(lv, storey & tall, [(0.5, 0.55)], 0.0, "fire_elevator"),
        _at(lv, (lv.ordinal < 0) | refuge | (lv.use == "mechanical"), [(0.1, 0.5), (0.9, 0.5)], CEILING,
            "smoke_exhaust_fan"),
        _at(lv, roof, [(0.3, 0.7)], 1.0, "smoke_exhaust_fan"),
        _at(lv, storey, [(0.55, 0.4)], 1.4, "fire_phone"),
        _at(lv, refuge, [(0.45, 0.62)], 1.4, "fire_phone"),
        _at(lv, storey, [(0.25, 0.5)], CEILING, "broadcast_speaker"),
        _at(lv, refuge, [(0.5, 0.2)], CEILING, "broadcast_speaker"),
        _at(lv, lv.ordinal == 0, [(0.12, 0.12)], 0.0, "fire_control_room"),
        _at(lv, lowest, [(0.85, 0.15)], 0.0, "fire_pump_room"),
        _at(lv, roof, [(0.7, 0.3)], 1.5, "roof_water_tank"),
    ]
    kind = np.concatenate([np.full(len(p[1]), p[0]) for p in parts]).astype(np.int64)
    level, slot, u, v, z = (np.concatenate([p[i] for p in parts]) for i in range(1, 6))
    order = np.lexsort((slot, u, kind, level))
    return Facilities(kind[order], lv.tower[level[order]], level[order], slot[order].astype(np.int64), u[order],
                      v[order], np.round(z[order], 2))


def outdoor_hydrants(
    rng: np.random.Generator, roads: Roads, plan: TowerPlan, walls: FloatArray
) -> tuple[Facilities, IntArray]:
    """Hydrants along the core's roads and at each tower's lane corners; returns them and the planted loners.

    ``walls`` are the footprints (u0, u1, v0, v1) of the buildings near the core, station included.
    """
    us, vs, towers = [], [], []
    for i in np.flatnonzero((roads.road_class != "expressway") & ~roads.curved):
        step = rng.uniform(85.0, 110.0)
        along = np.arange(roads.lo[i] + rng.uniform(0, step), roads.hi[i], step)
        side = rng.choice([-1.0, 1.0])
        across = np.full(len(along), roads.pos[i] + side * (roads.width[i] / 2 + 1.5))
        u, v = (across, along) if roads.axis[i] == 0 else (along, across)
        near = np.hypot(u, v) < CORE_RADIUS_M
        us.append(u[near])
        vs.append(v[near])
        towers.append(np.full(int(near.sum()), -1))
    ring = plan.lane_ring
    us += [ring[:, 2, 0], ring[:, 3, 0]]
    vs += [ring[:, 2, 1], ring[:, 3, 1]]
    towers += [np.arange(len(ring)), np.arange(len(ring))]
    u, v, tower = np.concatenate(us), np.concatenate(vs), np.concatenate(towers).astype(np.int64)
    in_hall = (np.abs(u) < STATION_HALF[0] + 5) & (np.abs(v) < STATION_HALF[1] + 5)
    tree = shapely.STRtree(shapely.box(walls[:, 0], walls[:, 2], walls[:, 1], walls[:, 3]))
    hits, _ = tree.query(shapely.points(u, v), predicate="dwithin", distance=HYDRANT_MIN_WALL_M)
    too_close = np.zeros(len(u), bool)
    too_close[hits] = True
    keep = ~in_hall & ~too_close
    u, v, tower = u[keep], v[keep], tower[keep]
    loners = _isolate(rng, u, v, tower)
    gone = np.zeros(len(u), bool)
    for k in loners:
        d = np.hypot(u - u[k], v - v[k])
        gone |= (d < 125.0) & (d > 0) & (tower < 0)
    kept = np.flatnonzero(~gone)
    new_index = np.cumsum(~gone) - 1
    n = len(kept)
    kind = np.full(n, TYPES.index("outdoor_hydrant"), np.int64)
    fac = Facilities(kind, tower[kept], np.full(n, -1), np.zeros(n, np.int64), u[kept], v[kept], np.zeros(n))
    return fac, new_index[np.asarray(loners, np.int64)]


def _isolate(rng: np.random.Generator, u: FloatArray, v: FloatArray, tower: IntArray) -> list[int]:
    """Pick road hydrants, far from towers and from each other, whose neighbours will be left out."""
    site = tower >= 0
    candidates = [int(i) for i in rng.permutation(np.flatnonzero(~site))]
    chosen: list[int] = []
    for i in candidates:
        far_from_sites = np.hypot(u[site] - u[i], v[site] - v[i]).min() > 260.0
        far_from_chosen = all(np.hypot(u[j] - u[i], v[j] - v[i]) > 600.0 for j in chosen)
        if far_from_sites and far_from_chosen:
            chosen.append(i)
        if len(chosen) == ISOLATED_HYDRANTS:
            break
    return chosen


def merge(first: Facilities, second: Facilities) -> Facilities:
    """Rows of ``first`` then ``second``."""
    return Facilities(*(np.concatenate([getattr(first, f), getattr(second, f)]) for f in Facilities.__annotations__))
