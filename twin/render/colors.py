"""Colours and Chinese labels of the screens: building states, device statuses and the choropleth ramp.

Device statuses take their colours from the catalogue (``layers.catalogue.STATUS_COLORS``); building states and the
ramp are the screens' own. Every colour is RGBA, 0–255.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from layers.catalogue import STATUS_COLORS
from twin.iot.rules import ALARM_TEXT

RGBA = tuple[int, int, int, int]

#: Building states from least to most urgent; a building shows the most urgent one that applies.
STATES: tuple[str, ...] = ("normal", "offline", "fault", "pre_alarm", "fire_alarm")
STATE_LABELS = {"normal": "正常", "offline": "设备离线", "fault": "故障", "pre_alarm": "预警", "fire_alarm": "火警"}
STATE_COLORS: dict[str, RGBA] = {
    "normal": (96, 150, 186, 235),
    "offline": (150, 146, 170, 240),
    "fault": (253, 200, 48, 250),
    "pre_alarm": (255, 120, 40, 255),
    "fire_alarm": (235, 40, 40, 255),
}
#: The state an open alarm of each severity puts its building in.
SEVERITY_STATE = {"fire_alarm": "fire_alarm", "pre_alarm": "pre_alarm", "fault": "fault", "threshold": "fault",
                  "offline": "offline"}
SEVERITY_LABELS = {"fire_alarm": "火警", "pre_alarm": "预警", "fault": "故障", "threshold": "超限", "offline": "离线"}
ALARM_STATUS_LABELS = {"open": "未处置", "acknowledged": "已确认", "resolved": "已解除"}

#: Facility and sensor statuses (from the catalogue), with their Chinese names.
DEVICE_COLORS: dict[str, RGBA] = dict(STATUS_COLORS)
DEVICE_LABELS = {"normal": "正常", "online": "在线", "fault": "故障", "disabled": "停用", "offline": "离线",
                 "alarm": "报警"}
UNKNOWN_COLOR: RGBA = (120, 120, 120, 200)

FACILITY_LABELS = {
    "hydrant_box": "室内消火栓箱", "hose_reel": "消防软管卷盘", "sprinkler_valve": "喷淋报警阀",
    "smoke_detector": "感烟探测器", "heat_detector": "感温探测器", "manual_call_point": "手动报警按钮",
    "extinguisher": "灭火器", "fire_door": "防火门", "evacuation_stair": "疏散楼梯", "fire_elevator": "消防电梯",
    "smoke_exhaust_fan": "排烟风机", "fire_phone": "消防电话", "broadcast_speaker": "应急广播",
    "fire_control_room": "消防控制室", "fire_pump_room": "消防水泵房", "roof_water_tank": "屋顶消防水箱",
    "outdoor_hydrant": "室外消火栓",
}
SENSOR_LABELS = {
    "smoke": "烟感", "heat": "温感", "residual_current": "剩余电流", "cable_temperature": "线缆温度",
    "hydrant_pressure": "消火栓水压", "sprinkler_pressure": "喷淋水压", "tank_level": "水箱液位",
    "gas": "可燃气体", "door_state": "防火门状态",
}
USE_LABELS = {"residential": "住宅", "office": "办公", "commercial": "商业", "mixed": "综合", "public": "公共",
              "industrial": "工业", "transport": "交通", "education": "教育"}
LEVEL_USE_LABELS = {**USE_LABELS, "parking": "停车库", "refuge": "避难层", "mechanical": "设备层", "hotel": "酒店",
                    "lobby": "大堂", "roof": "屋面"}
ROAD_CLASS_LABELS = {"expressway": "高速", "arterial": "主干路", "secondary": "次干路", "local": "支路"}

#: Sequential ramp of the grid choropleth (low → high), pale to deep red-violet.
RAMP: tuple[RGBA, ...] = (
    (40, 60, 90, 90), (38, 96, 130, 120), (40, 140, 150, 140), (110, 180, 120, 150),
    (220, 200, 90, 165), (240, 140, 60, 180), (220, 60, 70, 195),
)
NO_DATA: RGBA = (40, 50, 70, 60)

BACKGROUND: RGBA = (11, 19, 32, 255)
TOWER_MARK: RGBA = (0, 229, 255, 255)
REFUGE_COLOR: RGBA = (76, 217, 100, 235)
SLAB_COLOR: RGBA = (120, 170, 210, 150)
HYDRANT_COLOR: RGBA = (41, 121, 255, 255)
STATION_COLOR: RGBA = (211, 47, 47, 255)
GRID_LINE: RGBA = (130, 180, 255, 120)
COMMUNITY_LINE: RGBA = (170, 210, 255, 230)
LABEL_COLOR: RGBA = (236, 242, 255, 255)
LABEL_OUTLINE: RGBA = (8, 14, 24, 255)


def alarm_text(alarm_type: str | None) -> str:
    """Chinese text of an alarm type (the type itself when it has none)."""
    return ALARM_TEXT.get(alarm_type or "", alarm_type or "告警")


def worst_state(states: Iterable[str]) -> str:
    """The most urgent of ``states`` (``normal`` for none)."""
    rank = {s: i for i, s in enumerate(STATES)}
    return max(states, key=lambda s: rank.get(s, 0), default="normal")


def state_color(state: str) -> RGBA:
    """Colour of a building state."""
    return STATE_COLORS.get(state, STATE_COLORS["normal"])


def device_color(status: str | None) -> RGBA:
    """Colour of a facility or sensor status."""
    return DEVICE_COLORS.get(status or "", UNKNOWN_COLOR)


def css(color: Sequence[int]) -> str:
    """``rgba(r,g,b,a)`` for CSS."""
    r, g, b, a = ([*list(color), 255])[:4]
    return f"rgba({r},{g},{b},{a / 255:.2f})"


def breaks(values: Sequence[float] | np.ndarray, classes: int = len(RAMP)) -> list[float]:
    """Class breaks for the ramp: quantiles of the positive values (equal steps when they are few), ascending.

    ``len(result) == classes - 1``; class 0 holds values up to ``result[0]``, class ``i`` those above
    ``result[i - 1]`` and up to ``result[i]`` (``searchsorted(result, v, side="left")``).
    """
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    if data.size == 0 or float(data.max()) == float(data.min()):
        top = float(data.max()) if data.size else 0.0
        return [top * (i + 1) / classes for i in range(classes - 1)] if top > 0 else [0.0] * (classes - 1)
    qs = np.quantile(data, np.linspace(0, 1, classes + 1)[1:-1])
    if len(np.unique(qs)) < classes - 1:  # many ties (counts of 0 and 1): equal steps instead
        low, high = float(data.min()), float(data.max())
        qs = np.linspace(low, high, classes + 1)[1:-1]
    return [float(q) for q in qs]


def ramp_colors(values: Sequence[float] | np.ndarray, cuts: Sequence[float]) -> list[RGBA]:
    """The ramp colour of each value for the class breaks ``cuts`` (``NO_DATA`` for NaN)."""
    data = np.asarray(values, dtype=float)
    classes = np.searchsorted(np.asarray(cuts, dtype=float), np.nan_to_num(data, nan=-np.inf), side="left")
    scale = (len(RAMP) - 1) / max(len(cuts), 1)
    return [NO_DATA if not np.isfinite(v) else RAMP[min(round(c * scale), len(RAMP) - 1)]
            for v, c in zip(data, classes, strict=True)]
