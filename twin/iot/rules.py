"""Threshold rules per sensor type: pure, vectorised, no I/O.

A reading *breaches* low when ``value < low`` and high when ``value >= high`` (a set point is reached when the value
gets to it). Each sensor's effective thresholds are its own ``threshold_low``/``threshold_high`` where set (and
:attr:`RuleSettings.prefer_sensor_thresholds`), else the type default from :class:`RuleSettings` (domain.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from twin.iot.directory import Directory
from twin.iot.settings import RuleSettings

FloatArray = npt.NDArray[np.float64]
Int8Array = npt.NDArray[np.int8]

#: Alarm type raised by a breach, by (sensor type, direction: -1 low, +1 high); others are ``{type}_{low|high}``.
ALARM_TYPES: dict[tuple[str, int], str] = {
    ("smoke", 1): "smoke",
    ("heat", 1): "heat",
    ("residual_current", 1): "residual_current_high",
    ("cable_temperature", 1): "cable_temperature_high",
    ("hydrant_pressure", -1): "hydrant_pressure_low",
    ("sprinkler_pressure", -1): "sprinkler_pressure_low",
    ("tank_level", -1): "tank_level_low",
    ("gas", 1): "gas_leak",
    ("door_state", 1): "fire_door_open",
}
#: Chinese text of each alarm type, for messages on the command-centre screens.
ALARM_TEXT = {
    "fire_alarm": "火警：同层两只独立探测器相继报警",
    "smoke": "烟感报警",
    "heat": "温感报警",
    "hydrant_pressure_low": "消火栓管网压力低于下限",
    "hydrant_pressure_high": "消火栓管网压力高于上限",
    "residual_current_high": "剩余电流超限",
    "cable_temperature_high": "线缆温度超限",
    "fire_door_open": "常闭防火门未关闭",
    "tank_level_low": "消防水箱水位低",
    "tank_level_high": "消防水箱水位高",
    "sprinkler_pressure_low": "喷淋管网压力低",
    "sprinkler_pressure_high": "喷淋管网压力高",
    "gas_leak": "可燃气体浓度超限",
    "offline": "设备离线",
    "ingest_outage": "大量设备同时离线：请检查网关、消息代理与接入服务",
    "device_fault": "设备故障",
}


def alarm_type(sensor_type: str, direction: int) -> str:
    """The alarm type a breach in ``direction`` (-1 low, +1 high) raises."""
    return ALARM_TYPES.get((sensor_type, direction), f"{sensor_type}_{'low' if direction < 0 else 'high'}")


def type_defaults(settings: RuleSettings) -> dict[str, tuple[float, float]]:
    """(low, high) per sensor type from the settings; NaN where a type has no threshold on that side."""
    nan = float("nan")
    return {
        "smoke": (nan, settings.smoke_obscuration_pct_per_m),
        "heat": (nan, settings.heat_c),
        "residual_current": (nan, settings.residual_current_ma),
        "cable_temperature": (nan, settings.cable_temperature_c),
        "hydrant_pressure": (settings.hydrant_pressure_min_mpa, nan),
        "sprinkler_pressure": (settings.sprinkler_pressure_min_mpa, nan),
        "tank_level": (settings.tank_level_min_m, nan),
        "gas": (nan, settings.gas_pct_lel),
        "door_state": (nan, settings.door_open_above),
    }


@dataclass(frozen=True)
class Thresholds:
    """Effective thresholds per directory row, and which rows are fire-alarm triggers (smoke, heat …)."""

    low: FloatArray
    high: FloatArray
    fire_trigger: npt.NDArray[np.bool_]

    def breach(self, rows: npt.NDArray[np.int64], values: FloatArray) -> Int8Array:
        """-1 (below low), +1 (at or above high) or 0 per reading."""
        low, high = self.low[rows], self.high[rows]
        with np.errstate(invalid="ignore"):
            return np.where(values < low, -1, np.where(values >= high, 1, 0)).astype(np.int8)


def thresholds(directory: Directory, settings: RuleSettings) -> Thresholds:
    """The effective thresholds of every sensor in ``directory``."""
    defaults = type_defaults(settings)
    types = directory.types.astype(str)
    low = np.full(len(types), np.nan)
    high = np.full(len(types), np.nan)
    for kind, (lo, hi) in defaults.items():
        mask = types == kind
        low[mask], high[mask] = lo, hi
    if settings.prefer_sensor_thresholds:
        low = np.where(np.isfinite(directory.low), directory.low, low)
        high = np.where(np.isfinite(directory.high), directory.high, high)
    trigger = np.isin(types, list(settings.fire_trigger_types))
    return Thresholds(low, high, trigger)
