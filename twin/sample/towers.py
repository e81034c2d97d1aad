"""The 138 super high-rises (超高层, over 100 m): their plots, podiums, tower outlines and floor-by-floor levels.

Each tower stands on its own plot: a podium (the footprint) set back from the plot's rear edge, a slimmer tower
above it flush with the front, and in front of it a rescue platform (GB 50016 7.2) and a fire lane ring
(GB 50016 7.1). Refuge floors follow GB 50016 5.5.23: the first at most 50 m above the platform, then every
≤ 50 m — except in one tower, whose first refuge floor is too high (a true finding for the code checks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from twin.sample.common import BoolArray, FloatArray, IntArray

HUIDE = "汇德大厦"
#: Its sister tower: exactly 100 m, so *not* a super high-rise (over 100 m).
HUIDE_B = "汇德大厦B座"
HUIDE_HEIGHT_M = 258.0
#: Storey heights (m): lobby, podium floors, typical floor by tower use; basements.
LOBBY_M = {"office": 5.4, "mixed": 5.4, "commercial": 5.4, "residential": 4.5}
PODIUM_M = 4.5
TYPICAL_M = {"office": (3.8, 4.0), "mixed": (3.7, 3.9), "commercial": (3.5, 3.7), "residential": (3.05, 3.15)}
ROOF_MIN_M = 2.5
BASEMENT_M = (5.4, 3.9)
REFUGE_LIMIT_M = 50.0


@dataclass(frozen=True)
class TowerPlan:
    """Per tower (index 0 is 汇德大厦): plot, footprint, tower outline, platform and lane, all street-frame metres."""

    parcel: FloatArray  # (t, 4) u0, u1, v0, v1
    footprint: FloatArray  # podium, or the tower itself when it has none
    outline: FloatArray  # the tower above the podium
    front: IntArray  # +1: platform on the +v side, -1: on the -v side
    podium_floors: IntArray
    use: npt.NDArray[np.object_]
    height: FloatArray
    floors_below: IntArray
    typical: FloatArray
    platform: FloatArray  # (t, 4)
    platform_size: FloatArray  # (t, 2) length, width
    lane_ring: FloatArray  # (t, 5, 2)
    lane_width: FloatArray
    lane_clear_height: FloatArray
    bad_refuge: BoolArray


@dataclass(frozen=True)
class Levels:
    """Every level of every tower, in tower then ordinal order."""

    tower: IntArray
    ordinal: IntArray
    name: npt.NDArray[np.object_]
    elevation: FloatArray
    height: FloatArray
    is_refuge: BoolArray
    use: npt.NDArray[np.object_]
    rect: FloatArray  # (n, 4) u0, u1, v0, v1
    floors_above: IntArray  # per tower
    refuge_first_m: FloatArray  # per tower


def tower_heights(rng: np.random.Generator, n: int) -> FloatArray:
    """``n`` heights over 100 m: 汇德大厦's 258 m first, the others mostly 110–180 m, a few up to ~235 m."""
    others = 101.5 + (236.0 - 101.5) * rng.beta(1.25, 3.0, n - 1)
    return np.round(np.concatenate([[HUIDE_HEIGHT_M], others]), 1)


def tower_uses(rng: np.random.Generator, n: int) -> npt.NDArray[np.object_]:
    """Uses of the towers: mostly office, then mixed, hotels (commercial) and residential; 汇德大厦 is offices."""
    uses = rng.choice(np.array(["office", "mixed", "commercial", "residential"], dtype=object), n,
                      p=[0.66, 0.16, 0.09, 0.09])
    uses[0] = "office"
    return uses


def plan_towers(
    rng: np.random.Generator, parcel: FloatArray, height: FloatArray, use: npt.NDArray[np.object_],
    small_platforms: IntArray, narrow_lanes: IntArray, bad_refuge: int,
) -> TowerPlan:
    """Lay out podium, tower, platform and lane ring inside each plot (``parcel`` rows are u0, u1, v0, v1)."""
    t = len(height)
    pw, ph = parcel[:, 1] - parcel[:, 0], parcel[:, 3] - parcel[:, 2]
    has_podium = use != "residential"
    side = 25.0 + 0.05 * height + rng.uniform(-2.0, 2.0, t)
    gap, pad_w = np.round(rng.uniform(5.5, 9.5, t), 1), np.round(rng.uniform(10.0, 14.0, t), 1)
    pad_w[small_platforms] = 10.0
    lane_front = gap + pad_w + 3.5
    room_v = ph - 10.0 - lane_front - 4.0  # depth left for the footprint
    lu = np.where(has_podium, np.minimum(rng.uniform(42.0, 58.0, t), pw - 22.0), 0.0)
    lv = np.where(has_podium, np.minimum(rng.uniform(34.0, 46.0, t), room_v), 0.0)
    tu = np.minimum(side * rng.uniform(1.0, 1.15, t), np.where(has_podium, lu - 6.0, pw - 22.0))
    tv = np.minimum(side, np.where(has_podium, lv - 4.0, room_v))
    lu, lv = np.where(has_podium, lu, tu), np.where(has_podium, lv, tv)
    front = np.where(rng.random(t) < 0.5, 1, -1).astype(np.int64)
    cu = (parcel[:, 0] + parcel[:, 1]) / 2
    back = np.where(front > 0, parcel[:, 2], parcel[:, 3])  # the rear edge of the plot
    f_back = back + front * 10.0
    f_front = f_back + front * lv
    footprint = _rect(cu - lu / 2, cu + lu / 2, f_back, f_front)
    inset = np.where(has_podium, 2.0, 0.0)  # the tower face stands within 4 m of the podium edge
    outline = _rect(cu - tu / 2, cu + tu / 2, f_front - front * (tv + inset), f_front - front * inset)
    pad_l = np.floor(np.minimum(rng.uniform(22.0, 40.0, t), lu) * 10) / 10
    pad_l[small_platforms] = 15.0
    platform = _rect(cu - pad_l / 2, cu + pad_l / 2, f_front + front * gap, f_front + front * (gap + pad_w))
    ring_u0, ring_u1 = cu - lu / 2 - 7.0, cu + lu / 2 + 7.0
    ring_back, ring_front = f_back - front * 6.5, f_front + front * lane_front
    us = np.stack([ring_u0, ring_u1, ring_u1, ring_u0, ring_u0], axis=1)
    vs = np.stack([ring_back, ring_back, ring_front, ring_front, ring_back], axis=1)
    lane_width = np.round(rng.uniform(4.5, 7.0, t), 1)
    lane_height = np.round(rng.uniform(4.5, 6.0, t), 1)
    lane_width[narrow_lanes[:1]] = 3.5
    lane_height[narrow_lanes[1:]] = 3.8
    typical = np.array([rng.uniform(*TYPICAL_M[str(u)]) for u in use])
    floors_below = np.where(has_podium, rng.integers(3, 6, t), rng.integers(2, 4, t)).astype(np.int64)
    bad = np.zeros(t, dtype=bool)
    bad[bad_refuge] = True
    return TowerPlan(
        parcel=parcel, footprint=footprint, outline=outline, front=front,
        podium_floors=np.where(has_podium, rng.integers(4, 7, t), 0).astype(np.int64), use=use, height=height,
        floors_below=floors_below, typical=np.round(typical, 2), platform=platform,
        platform_size=np.stack([pad_l, pad_w], axis=1), lane_ring=np.stack([us, vs], axis=2),
        lane_width=lane_width, lane_clear_height=lane_height, bad_refuge=bad,
    )


def _rect(u0: FloatArray, u1: FloatArray, va: FloatArray, vb: FloatArray) -> FloatArray:
    return np.stack([u0, u1, np.minimum(va, vb), np.maximum(va, vb)], axis=1)


def _storeys(plan: TowerPlan, i: int) -> tuple[list[float], float]:
    """Storey heights of the floors above ground and the height left for the roof level (parapet, crown)."""
    use, height, p = str(plan.use[i]), float(plan.height[i]), int(plan.podium_floors[i])
    storeys = [LOBBY_M[use]] + [PODIUM_M] * max(p - 1, 0)
    typical = float(plan.typical[i])
    count = int((height - ROOF_MIN_M - sum(storeys)) // typical)
    storeys += [typical] * count
    return storeys, round(height - sum(storeys), 2)


def _refuges(elevations: FloatArray, top: float, limit: float, bad: bool) -> list[int]:
    """Ordinals of refuge floors: the highest floor within ``limit`` of the previous one, until the top is near."""
    chosen: list[int] = []
    previous = 0.0
    if bad:  # the planted defect: the first refuge floor sits clearly above 50 m
        first = int(np.flatnonzero(elevations > REFUGE_LIMIT_M + 3.0)[0])
        chosen.append(first)
        previous = float(elevations[first])
    while top - previous > limit:
        reachable = np.flatnonzero((elevations <= previous + limit) & (elevations > previous + 8.0))
        if not len(reachable):
            break
        chosen.append(int(reachable[-1]))
        previous = float(elevations[reachable[-1]])
    return chosen


def build_levels(rng: np.random.Generator, plan: TowerPlan) -> Levels:
    """All levels of all towers: basements (negative ordinals), every floor above, and the roof."""
    cols: dict[str, list[object]] = {k: [] for k in ("tower", "ordinal", "name", "elev", "height", "refuge", "use")}
    rects: list[FloatArray] = []
    floors_above, refuge_first = [], []
    limits = rng.uniform(40.0, 47.0, len(plan.height))
    for i in range(len(plan.height)):
        storeys, roof = _storeys(plan, i)
        n, below, p = len(storeys), int(plan.floors_below[i]), int(plan.podium_floors[i])
        elevations = np.concatenate([[0.0], np.cumsum(storeys)[:-1]])
        top = float(np.sum(storeys))
        refuges = set(_refuges(elevations, top, float(limits[i]), bool(plan.bad_refuge[i])))
        floors_above.append(n)
        refuge_first.append(float(elevations[min(refuges)]))
        basement_h = [BASEMENT_M[0]] + [BASEMENT_M[1]] * (below - 1)
        basement_elev = -np.cumsum(basement_h)
        use = str(plan.use[i])
        for b in range(below, 0, -1):
            cols["ordinal"].append(-b)
            cols["name"].append(f"B{b}")
            cols["elev"].append(round(float(basement_elev[b - 1]), 2))
            cols["height"].append(basement_h[b - 1])
            cols["refuge"].append(False)
            cols["use"].append("mechanical" if b == below and below >= 3 else "parking")
        for k in range(n + 1):
            cols["ordinal"].append(k)
            cols["name"].append("RF" if k == n else f"{k + 1}F")
            cols["elev"].append(round(top if k == n else float(elevations[k]), 2))
            cols["height"].append(roof if k == n else storeys[k])
            cols["refuge"].append(k in refuges)
            cols["use"].append(_level_use(k, n, p, use, k in refuges))
        cols["tower"].extend([i] * (below + n + 1))
        above = np.arange(-below, n + 1)
        rects.append(np.where((above < p)[:, None], plan.footprint[i], plan.outline[i]))
    return Levels(
        tower=np.asarray(cols["tower"], np.int64), ordinal=np.asarray(cols["ordinal"], np.int64),
        name=np.asarray(cols["name"], dtype=object), elevation=np.asarray(cols["elev"], float),
        height=np.round(np.asarray(cols["height"], float), 2), is_refuge=np.asarray(cols["refuge"], bool),
        use=np.asarray(cols["use"], dtype=object), rect=np.concatenate(rects),
        floors_above=np.asarray(floors_above, np.int64), refuge_first_m=np.asarray(refuge_first, float),
    )


def _level_use(k: int, n: int, podium: int, use: str, refuge: bool) -> str:
    if k == n:
        return "roof"
    if refuge:
        return "refuge"
    if k == 0:
        return "lobby"
    if k < podium:
        return "commercial"
    if k == n - 1:
        return "mechanical"
    if use == "mixed":
        return "office" if k < n // 2 else "residential"
    return {"commercial": "hotel"}.get(use, use)
