"""Ground elevation of the sample: a smooth analytic surface, so it can be sampled anywhere, raster or not."""

from __future__ import annotations

import numpy as np

from twin.sample.common import FloatArray

#: Hills and hollows of the terrain: amplitude (m), centre (u, v in m from the station), radius (m).
_RELIEF = (
    (100.0, -2000.0, -1850.0, 650.0),  # the foothills of 塘朗山 beyond 白石龙, south-west
    (62.0, 1650.0, 2050.0, 520.0),  # north-east ridge
    (48.0, -1800.0, 1450.0, 480.0),  # north-west knoll
    (34.0, 1900.0, -1750.0, 420.0),  # south-east hill
    (-30.0, 950.0, -1300.0, 650.0),  # the stream valley south-east of the station
    (-24.0, -350.0, 2150.0, 600.0),  # northern hollow
)


def elevation(u: FloatArray, v: FloatArray) -> FloatArray:
    """Ground elevation above sea level (m) at street-frame points: east plaza ≈ 80 m, west plaza ≈ 90 m."""
    e = 84.5 - 5.0 * np.tanh(u / 220.0)
    for amp, cu, cv, radius in _RELIEF:
        e = e + amp * np.exp(-((u - cu) ** 2 + (v - cv) ** 2) / (2.0 * radius**2))
    e = e + 3.0 * np.sin(u / 310.0 + 1.1) * np.cos(v / 270.0 - 0.4) + 2.0 * np.sin((u + v) / 530.0)
    return np.clip(e, 41.0, 199.0)
