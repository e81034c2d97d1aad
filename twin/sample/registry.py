"""The people/house/legal-entity (人房法) aggregates and the door-plate addresses of the buildings."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from twin.sample.common import FloatArray, IntArray
from twin.sample.district import Blocks

ObjArray = npt.NDArray[np.object_]


def people(
    rng: np.random.Generator, use: ObjArray, style: IntArray, floors: IntArray, area: FloatArray
) -> tuple[IntArray, IntArray, IntArray]:
    """Residents, rental units and enterprises per building, plausible for its use and size.

    Homes hold ~2.4–3 people per flat of ~95 m²; urban-village houses (style 3) are let room by room, almost all
    rented; offices count one firm per ~600 m² of let floor, shops one per ~250 m².
    """
    n = len(use)
    home = (use == "residential") | (use == "mixed")
    village = style == 3
    flats = np.maximum(1, np.round(area / 95.0)) * floors * np.where(use == "mixed", 0.5, 1.0)
    rooms = np.maximum(2, np.round(area / 28.0)) * np.maximum(floors - 1, 1)
    units = np.where(village, rooms, flats)
    residents = np.where(home, np.round(units * rng.uniform(0.8, 0.95, n) * np.where(village, rng.uniform(
        1.3, 1.9, n), rng.uniform(2.4, 3.0, n))), 0)
    rental = np.where(home, np.round(units * np.where(village, rng.uniform(0.9, 1.0, n), rng.uniform(0.1, 0.35, n))),
                      0)
    office_floor = area * floors * np.where(use == "mixed", 0.5, 1.0)
    enterprises = np.select(
        [use == "office", use == "mixed", use == "commercial", use == "industrial", use == "transport"],
        [np.round(office_floor / 600.0 * rng.uniform(0.4, 0.9, n)),
         np.where(village, rng.poisson(2.0, n), np.round(office_floor / 600.0 * rng.uniform(0.3, 0.8, n))),
         np.round(office_floor / 250.0 * rng.uniform(0.3, 0.7, n)), 1 + rng.poisson(3.0, n), 86],
        np.where(home, rng.poisson(0.3, n), 1),
    )
    dorm = (use == "industrial") & (rng.random(n) < 0.3)
    residents = np.where(dorm, rng.integers(50, 300, n), residents)
    return residents.astype(np.int64), rental.astype(np.int64), enterprises.astype(np.int64)


def addresses(
    rect: FloatArray, block: IntArray, blocks: Blocks, half: float, expressways: set[str]
) -> tuple[ObjArray, IntArray]:
    """The road each building fronts (the nearest side of its block on a street) and its door number there.

    Expressways give no addresses. Numbers run from the south or west end; odd on one side, even on the other.
    """
    cu, cv = (rect[:, 0] + rect[:, 1]) / 2, (rect[:, 2] + rect[:, 3]) / 2
    b = np.maximum(block, 0)
    gaps = np.stack([cu - blocks.u0[b], blocks.u1[b] - cu, cv - blocks.v0[b], blocks.v1[b] - cv], axis=1)
    sides = blocks.sides[b]
    street = (sides != "") & ~np.isin(sides, list(expressways))
    gaps = np.where(street | ~street.any(axis=1, keepdims=True) & (sides != ""), gaps, np.inf)
    side = np.argmin(gaps, axis=1)
    road = sides[np.arange(len(b)), side]
    along = np.where(side < 2, cv, cu) + half
    number = 2 * np.floor(np.maximum(along, 0) / 30.0).astype(np.int64) + np.where(side % 2 == 0, 2, 1)
    return road.astype(object), number
