"""The street plan of the sample: the station, the named roads, super-blocks, local roads and buildable blocks.

All coordinates here are street-frame metres (see :mod:`twin.sample.common`). Through roads run the whole
extent; each super-block between them is cut by local roads into blocks whose buildable interiors keep a setback
from every road. The station hall with its plazas and the railway corridor are kept free of other buildings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from twin.sample.common import BoolArray, FloatArray, IntArray, StreetFrame, stream
from twin.sample.names import road_names
from twin.sample.terrain import elevation

KINDS = ("cbd", "residential", "village", "commercial", "industrial", "public", "park")
CBD, RESIDENTIAL, VILLAGE, COMMERCIAL, INDUSTRIAL, PUBLIC, PARK = range(len(KINDS))

#: The station hall: roof about 413 × 208 m, 43.6 m high (domain.md). The railway's own description puts the long
#: side east–west, across the tracks (which run NNW–SSE here), so it lies along u.
STATION_HALF = (206.5, 104.0)
#: Hall, plazas and bus/taxi hubs between 新区大道 and 致远中路: no other building here.
STATION_ZONE = (-600.0, 400.0, -240.0, 240.0)

#: Through roads of the North Station district: axis (0 = runs north–south at u = pos, 1 = east–west at v = pos),
#: position, name (None = made-up), class, width (m), lanes, curve amplitude (m).
NAMED_ROADS: tuple[tuple[int, float, str | None, str, float, int, float], ...] = (
    (0, -2000.0, "福龙路", "expressway", 50.0, 8, 45.0),
    (0, -1330.0, None, "secondary", 30.0, 4, 0.0),
    (0, -640.0, "新区大道", "arterial", 56.0, 8, 0.0),
    (0, 430.0, "致远中路", "arterial", 40.0, 6, 0.0),
    (0, 1150.0, "民塘路", "arterial", 40.0, 6, 0.0),
    (0, 1640.0, None, "secondary", 30.0, 4, 0.0),
    (0, 2060.0, "梅观高速", "expressway", 60.0, 8, 40.0),
    (1, -1700.0, None, "secondary", 30.0, 4, 0.0),
    (1, -960.0, "留仙大道", "arterial", 60.0, 8, 0.0),
    (1, -380.0, None, "secondary", 32.0, 4, 0.0),
    (1, 380.0, None, "secondary", 32.0, 4, 0.0),
    (1, 1020.0, "民治大道", "arterial", 50.0, 8, 0.0),
    (1, 1720.0, None, "secondary", 30.0, 4, 0.0),
)
_SETBACK = {"expressway": 25.0, "arterial": 10.0, "secondary": 8.0, "local": 5.0}
#: Target block size (m) of each kind, and the zone mixes by distance from the station.
_BLOCK_SIZE = {CBD: 240.0, RESIDENTIAL: 210.0, VILLAGE: 115.0, COMMERCIAL: 190.0, INDUSTRIAL: 260.0, PUBLIC: 220.0,
               PARK: 1e9}
_MIX_CORE = (0.86, 0.0, 0.0, 0.09, 0.0, 0.05, 0.0)
_MIX_RING = (0.5, 0.28, 0.04, 0.1, 0.0, 0.08, 0.0)
_MIX_OUTER = (0.0, 0.36, 0.24, 0.08, 0.14, 0.1, 0.08)


@dataclass(frozen=True)
class Roads:
    """Road centre lines: straight ones are ``pos`` across, ``lo``–``hi`` along; expressways curve gently."""

    name: npt.NDArray[np.object_]
    road_class: npt.NDArray[np.object_]
    width: FloatArray
    lanes: IntArray
    axis: IntArray
    pos: FloatArray
    lo: FloatArray
    hi: FloatArray
    curved: BoolArray
    amp: FloatArray

    def lines(self) -> list[FloatArray]:
        """Street-frame coordinates ``(k, 2)`` of each centre line."""
        out = []
        for i in range(len(self.pos)):
            along = np.linspace(self.lo[i], self.hi[i], max(2, int((self.hi[i] - self.lo[i]) // 40) + 1))
            across = self.pos[i] + self.amp[i] * np.sin(along / 420.0 + 0.6) if self.curved[i] else self.pos[i]
            across = np.broadcast_to(across, along.shape)
            out.append(np.stack([across, along] if self.axis[i] == 0 else [along, across], axis=1))
        return out


@dataclass(frozen=True)
class Blocks:
    """Buildable block interiors, their kind and the names of the roads on their four sides (w, e, s, n)."""

    u0: FloatArray
    u1: FloatArray
    v0: FloatArray
    v1: FloatArray
    kind: IntArray
    sides: npt.NDArray[np.object_]


@dataclass(frozen=True)
class Layout:
    """The street plan: frame, half-extent (m), roads and blocks."""

    frame: StreetFrame
    half_u: float
    half_v: float
    roads: Roads
    blocks: Blocks


def corridor_half_width(v: FloatArray) -> FloatArray:
    """Half-width (m) of the railway corridor at ``v``: wide under the station, about 60 m away from it."""
    return 32.0 + 120.0 * np.exp(-((v / 450.0) ** 2))


def excluded(u0: FloatArray, u1: FloatArray, v0: FloatArray, v1: FloatArray) -> BoolArray:
    """Rectangles that touch the station zone or the railway corridor."""
    zu0, zu1, zv0, zv1 = STATION_ZONE
    in_zone = (u1 > zu0) & (u0 < zu1) & (v1 > zv0) & (v0 < zv1)
    nearest_v = np.clip(0.0, v0, v1)
    hw = corridor_half_width(nearest_v)
    return in_zone | ((u1 > -hw) & (u0 < hw))


def _through_roads(half: float, axis: int, rng: np.random.Generator) -> list[tuple[float, str | None, str, float, int,
                                                                                  float]]:
    named = [(p, n, c, w, ln, a) for ax, p, n, c, w, ln, a in NAMED_ROADS if ax == axis and abs(p) < half - 150]
    lo = min(p for p, *_ in named)
    hi = max(p for p, *_ in named)
    extra: list[tuple[float, str | None, str, float, int, float]] = []
    pos = hi
    while (pos := pos + rng.uniform(850.0, 1350.0)) < half - 300:
        arterial = rng.random() < 0.4
        extra.append((pos, None, "arterial" if arterial else "secondary", 44.0 if arterial else 30.0,
                      6 if arterial else 4, 0.0))
    pos = lo
    while (pos := pos - rng.uniform(850.0, 1350.0)) > -half + 300:
        arterial = rng.random() < 0.4
        extra.append((pos, None, "arterial" if arterial else "secondary", 44.0 if arterial else 30.0,
                      6 if arterial else 4, 0.0))
    return sorted(named + extra)


def _split(axis: int, pos: float, lo: float, hi: float) -> list[tuple[float, float]]:
    """Pieces of a local road outside the station zone and the railway corridor."""
    zu0, zu1, zv0, zv1 = STATION_ZONE
    gaps: list[tuple[float, float]] = []
    if axis == 0:
        if zu0 - 5 < pos < zu1 + 5:
            gaps.append((zv0 - 5, zv1 + 5))
        if abs(pos) <= 40:
            return []
        if abs(pos) - 32 < 120:
            reach = 450.0 * np.sqrt(np.log(120.0 / (abs(pos) - 32.0)))
            gaps.append((-reach - 5, reach + 5))
    else:
        if zv0 - 5 < pos < zv1 + 5:
            gaps.append((zu0 - 5, zu1 + 5))
        hw = float(corridor_half_width(np.array(pos)))
        gaps.append((-hw - 5, hw + 5))
    pieces = [(lo, hi)]
    for g0, g1 in gaps:
        pieces = [q for a, b in pieces for q in ((a, min(b, g0)), (max(a, g1), b))]
    return [(a, b) for a, b in pieces if b - a > 60]


def plan(seed: int, frame: StreetFrame, half_u: float, half_v: float) -> Layout:
    """The street plan of a ``2·half_u × 2·half_v`` m extent centred on the station."""
    rng = stream(seed, "district")
    through = [_through_roads(half_u, 0, rng), _through_roads(half_v, 1, rng)]
    pending = 0  # made-up names are drawn at the end, in one go: "#k" stands for the k-th
    for axis in (0, 1):
        for k, (pos, name, cls, width, lanes, amp) in enumerate(through[axis]):
            if name is None:
                through[axis][k] = (pos, f"#{pending}", cls, width, lanes, amp)
                pending += 1
    halves = (half_u, half_v)
    rows: list[tuple[str, str, float, int, int, float, float, float, float]] = []
    for axis in (0, 1):
        for pos, name, cls, width, lanes, amp in through[axis]:
            rows.append((str(name), cls, width, lanes, axis, pos, -halves[1 - axis], halves[1 - axis], amp))
    # Each side of a super-block: (centre line, clearance from it to buildable land, road name).
    edges = []
    for axis in (0, 1):
        line = [(-halves[axis], 3.0, "")]
        for pos, name, cls, width, _, amp in through[axis]:
            line.append((pos, width / 2 + amp + _SETBACK[cls], str(name)))
        line.append((halves[axis], 3.0, ""))
        edges.append(line)
    block_rows: list[tuple[float, float, float, float, int, str, str, str, str]] = []
    for (ua, ca, na), (ub, cb, nb) in zip(edges[0][:-1], edges[0][1:], strict=True):
        for (va, da, ma), (vb, db, mb) in zip(edges[1][:-1], edges[1][1:], strict=True):
            d = np.hypot((ua + ub) / 2, (va + vb) / 2)
            mix = _MIX_CORE if d < 1000 else _MIX_RING if d < 1800 else _MIX_OUTER
            zone = int(rng.choice(len(KINDS), p=mix))
            cuts = []
            for a, b in ((ua + ca, ub - cb), (va + da, vb - db)):
                target = _BLOCK_SIZE[zone] * rng.uniform(0.85, 1.15)
                n = max(1, round((b - a) / target))
                inner = a + (b - a) * (np.arange(1, n) + rng.uniform(-0.12, 0.12, n - 1)) / n
                village = zone == VILLAGE
                widths = rng.choice([7.0, 8.0], n - 1) if village else rng.choice([16.0, 20.0, 24.0], n - 1)
                cuts.append([(float(p), float(w)) for p, w in zip(inner, widths, strict=True)])
            names = [f"#{pending + k}" for k in range(len(cuts[0]) + len(cuts[1]))]
            pending += len(names)
            sides_u = [(ua + ca, na)] + [(p, names[k]) for k, (p, _) in enumerate(cuts[0])] + [(ub - cb, nb)]
            sides_v = [(va + da, ma)] + [(p, names[len(cuts[0]) + k]) for k, (p, _) in enumerate(cuts[1])]
            sides_v.append((vb - db, mb))
            half_w_u = [0.0] + [w / 2 + (2.0 if w < 9 else _SETBACK["local"]) for _, w in cuts[0]] + [0.0]
            half_w_v = [0.0] + [w / 2 + (2.0 if w < 9 else _SETBACK["local"]) for _, w in cuts[1]] + [0.0]
            for axis, cut in enumerate(cuts):
                lo, hi = ((va, vb), (ua, ub))[axis]
                for k, (p, w) in enumerate(cut):
                    for a, b in _split(axis, p, lo, hi):
                        rows.append((names[k + axis * len(cuts[0])], "local", w, 2 if w < 9 else 4, axis, p, a, b, 0.0))
            for i in range(len(sides_u) - 1):
                for j in range(len(sides_v) - 1):
                    kind = zone if rng.random() < 0.8 else int(rng.choice(len(KINDS), p=mix))
                    block_rows.append((
                        sides_u[i][0] + half_w_u[i], sides_u[i + 1][0] - half_w_u[i + 1],
                        sides_v[j][0] + half_w_v[j], sides_v[j + 1][0] - half_w_v[j + 1],
                        kind, sides_u[i][1], sides_u[i + 1][1], sides_v[j][1], sides_v[j + 1][1],
                    ))
    taken = {r[0] for r in rows if not r[0].startswith("#")}
    fresh = road_names(rng, pending, taken)
    made_up = {f"#{k}": fresh[k] for k in range(pending)}
    return Layout(frame, half_u, half_v, _roads(rows, made_up), _blocks(block_rows, made_up))


def _roads(rows: list[tuple[str, str, float, int, int, float, float, float, float]], made_up: dict[str, str]) -> Roads:
    names = np.array([made_up.get(r[0], r[0]) for r in rows], dtype=object)
    col = list(zip(*rows, strict=True))
    amp = np.asarray(col[8], float)
    return Roads(names, np.asarray(col[1], dtype=object), np.asarray(col[2], float), np.asarray(col[3], np.int64),
                 np.asarray(col[4], np.int64), np.asarray(col[5], float), np.asarray(col[6], float),
                 np.asarray(col[7], float), amp > 0, amp)


def _blocks(rows: list[tuple[float, float, float, float, int, str, str, str, str]], local: dict[str, str]) -> Blocks:
    col = list(zip(*rows, strict=True))
    u0, u1, v0, v1 = (np.asarray(c, float) for c in col[:4])
    kind = np.asarray(col[4], np.int64)
    sides = np.array([[local.get(name, name) for name in side] for side in col[5:9]], dtype=object).T
    keep = (u1 - u0 > 12) & (v1 - v0 > 12)
    centre_elevation = elevation((u0 + u1) / 2, (v0 + v1) / 2)
    kind = np.where(centre_elevation > 128.0, PARK, kind)
    return Blocks(u0[keep], u1[keep], v0[keep], v1[keep], kind[keep], sides[keep])


#: Fire stations serving the district: name, type, engines, (u, v) in m, address.
FIRE_STATIONS = (
    ("北站小型消防站", "small", 3, (-470.0, 290.0), "民治街道北站社区新区大道东侧"),
    ("民治消防站", "standard", 7, (-900.0, 1390.0), "民治街道上芬社区"),
    ("龙华特勤消防站", "special", 12, (420.0, 2150.0), "民治街道大岭社区"),
    ("新牛消防站", "standard", 6, (2170.0, -600.0), "民治街道梅观高速东侧"),
    ("白石龙小型消防站", "small", 3, (-1500.0, -1480.0), "民治街道白石龙社区"),
)
