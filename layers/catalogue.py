"""The catalogue: every layer, table and raster of the North Station twin, declared once.

The API, the stores, the tiles and the renderers all read this list; there is no second one.
"""

from __future__ import annotations

from layers.model import (
    STAFF,
    Field,
    FieldType,
    GeometryType,
    Layer,
    RasterLayer,
    Role,
    Style,
    ZoomRange,
)

F = FieldType
INT, REAL, TEXT, BOOL, DATE, DT = F.INTEGER, F.REAL, F.TEXT, F.BOOLEAN, F.DATE, F.DATETIME

GRID_LEVELS = ("district", "subdistrict", "community", "grid")
BUILDING_USES = ("residential", "office", "commercial", "mixed", "public", "industrial", "transport", "education")
FACILITY_STATUSES = ("normal", "fault", "disabled")
#: Indoor and outdoor point facilities of the fire model (see domain.md).
FACILITY_TYPES = (
    "hydrant_box",
    "hose_reel",
    "sprinkler_valve",
    "smoke_detector",
    "heat_detector",
    "manual_call_point",
    "extinguisher",
    "fire_door",
    "evacuation_stair",
    "fire_elevator",
    "smoke_exhaust_fan",
    "fire_phone",
    "broadcast_speaker",
    "fire_control_room",
    "fire_pump_room",
    "roof_water_tank",
    "outdoor_hydrant",
)
SENSOR_TYPES = (
    "smoke",
    "heat",
    "residual_current",
    "cable_temperature",
    "hydrant_pressure",
    "sprinkler_pressure",
    "tank_level",
    "gas",
    "door_state",
)
SENSOR_STATUSES = ("online", "offline", "fault", "alarm")
ALARM_SEVERITIES = ("pre_alarm", "fire_alarm", "fault", "offline", "threshold")
ALARM_STATUSES = ("open", "acknowledged", "resolved")
INSPECTION_RESULTS = ("pass", "fail", "rectified")
INGEST_SOURCES = ("mqtt", "http")

STATUS_COLORS = (
    ("normal", (76, 175, 80, 220)),
    ("online", (76, 175, 80, 220)),
    ("fault", (255, 152, 0, 230)),
    ("disabled", (158, 158, 158, 220)),
    ("offline", (158, 158, 158, 220)),
    ("alarm", (229, 57, 53, 255)),
)

GRIDS = Layer(
    id="grids",
    title_zh="网格",
    title_en="Management grids",
    description="District → subdistrict → community → grid (网格) polygons of the management hierarchy.",
    geometry_type=GeometryType.MULTIPOLYGON,
    fields=(
        Field("code", TEXT, "编码", "Code", required=True, indexed=True),
        Field("parent_code", TEXT, "上级编码", "Parent code", indexed=True),
        Field("level", TEXT, "层级", "Level", required=True, choices=GRID_LEVELS, indexed=True),
        Field("name", TEXT, "名称", "Name", required=True),
        Field("officer", TEXT, "网格员", "Grid officer"),
        Field("population", INT, "人口", "Population", minimum=0),
        Field("households", INT, "户数", "Households", minimum=0),
    ),
    style=Style(fill=(33, 150, 243, 40), line=(25, 118, 210, 200), line_width_px=1.5, label_field="name"),
    zoom=ZoomRange(10, 22),
    search_fields=("name", "code"),
)

BUILDINGS = Layer(
    id="buildings",
    title_zh="建筑",
    title_en="Buildings",
    description="Building footprints with height, floors and the people/house/legal-entity aggregates (人房法).",
    geometry_type=GeometryType.POLYGON,
    fields=(
        Field("code", TEXT, "楼栋编码", "Building code", required=True, indexed=True),
        Field("name", TEXT, "名称", "Name"),
        Field("address", TEXT, "地址", "Address"),
        Field("use", TEXT, "用途", "Use", required=True, choices=BUILDING_USES),
        Field("height_m", REAL, "高度(米)", "Height (m)", required=True, minimum=0, maximum=1000, indexed=True),
        Field("floors_above", INT, "地上层数", "Floors above ground", required=True, minimum=0, maximum=200),
        Field("floors_below", INT, "地下层数", "Floors below ground", minimum=0, maximum=20),
        Field("ground_elevation_m", REAL, "地面高程(米)", "Ground elevation (m)"),
        Field("year_built", INT, "建成年份", "Year built", minimum=1900, maximum=2100),
        Field("residents", INT, "居住人口", "Residents", minimum=0),
        Field("rental_units", INT, "出租屋", "Rental units", minimum=0),
        Field("enterprises", INT, "法人单位", "Enterprises", minimum=0),
        Field("grid_code", TEXT, "所属网格", "Grid code", indexed=True),
    ),
    style=Style(
        fill=(176, 190, 197, 230),
        line=(96, 125, 139, 255),
        extrude_field="height_m",
        label_field="name",
    ),
    zoom=ZoomRange(12, 22),
    search_fields=("name", "address", "code"),
)

LEVELS = Layer(
    id="levels",
    title_zh="楼层",
    title_en="Levels",
    description="Floors of the super high-rises (IMDF-like): ordinal, elevation, height and outline.",
    geometry_type=GeometryType.POLYGON,
    fields=(
        Field("building_id", INT, "建筑", "Building", required=True, indexed=True),
        Field("ordinal", INT, "楼层序号", "Ordinal", required=True, minimum=-20, maximum=200),
        Field("name", TEXT, "楼层名称", "Name", required=True),
        Field("elevation_m", REAL, "标高(米)", "Elevation above ground (m)", required=True),
        Field("height_m", REAL, "层高(米)", "Storey height (m)", required=True, minimum=0, maximum=50),
        Field("is_refuge", BOOL, "避难层", "Refuge floor", required=True),
        Field("use", TEXT, "用途", "Use"),
    ),
    read_roles=STAFF,
    style=Style(fill=(144, 202, 249, 120), extrude_field="height_m"),
    zoom=ZoomRange(15, 22),
)

FIRE_FACILITIES = Layer(
    id="fire_facilities",
    title_zh="消防设施",
    title_en="Fire facilities",
    description="Indoor and outdoor fire facilities (points with height) and their inspection state.",
    geometry_type=GeometryType.POINT,
    has_z=True,
    fields=(
        Field("code", TEXT, "设施编码", "Facility code", required=True, indexed=True),
        Field("type", TEXT, "类型", "Type", required=True, choices=FACILITY_TYPES, indexed=True),
        Field("building_id", INT, "建筑", "Building", indexed=True),
        Field("level_id", INT, "楼层", "Level", indexed=True),
        Field("status", TEXT, "状态", "Status", required=True, choices=FACILITY_STATUSES, indexed=True),
        Field("last_inspected", DATE, "上次检查", "Last inspected"),
        Field("next_inspection", DATE, "下次检查", "Next inspection"),
    ),
    read_roles=STAFF,
    write_roles=frozenset({Role.INSPECTOR, Role.ADMIN}),
    style=Style(point_radius_px=3, color_field="status", colors=STATUS_COLORS),
    zoom=ZoomRange(16, 22),
)

RESCUE_PLATFORMS = Layer(
    id="rescue_platforms",
    title_zh="消防车登高操作场地",
    title_en="Rescue platforms",
    description="Fire-engine aerial operation pads beside the super high-rises (GB 50016 7.2).",
    geometry_type=GeometryType.POLYGON,
    fields=(
        Field("building_id", INT, "建筑", "Building", required=True, indexed=True),
        Field("length_m", REAL, "长度(米)", "Length (m)", required=True, minimum=0),
        Field("width_m", REAL, "宽度(米)", "Width (m)", required=True, minimum=0),
        Field("status", TEXT, "状态", "Status", required=True, choices=FACILITY_STATUSES),
    ),
    read_roles=STAFF,
    write_roles=frozenset({Role.INSPECTOR, Role.ADMIN}),
    style=Style(fill=(255, 235, 59, 160), line=(251, 192, 45, 255)),
    zoom=ZoomRange(15, 22),
)

FIRE_LANES = Layer(
    id="fire_lanes",
    title_zh="消防车道",
    title_en="Fire lanes",
    description="Fire-engine access lanes around the super high-rises (GB 50016 7.1).",
    geometry_type=GeometryType.LINESTRING,
    fields=(
        Field("building_id", INT, "建筑", "Building", indexed=True),
        Field("width_m", REAL, "净宽(米)", "Clear width (m)", required=True, minimum=0),
        Field("clear_height_m", REAL, "净高(米)", "Clear height (m)", required=True, minimum=0),
        Field("status", TEXT, "状态", "Status", required=True, choices=FACILITY_STATUSES),
    ),
    read_roles=STAFF,
    write_roles=frozenset({Role.INSPECTOR, Role.ADMIN}),
    style=Style(line=(244, 67, 54, 220), line_width_px=3),
    zoom=ZoomRange(14, 22),
)

SENSORS = Layer(
    id="sensors",
    title_zh="物联感知设备",
    title_en="IoT sensors",
    description="IoT devices on the high-rise floors: type, position, thresholds, status and last report.",
    geometry_type=GeometryType.POINT,
    has_z=True,
    fields=(
        Field("code", TEXT, "设备编码", "Device code", required=True, indexed=True),
        Field("type", TEXT, "类型", "Type", required=True, choices=SENSOR_TYPES, indexed=True),
        Field("building_id", INT, "建筑", "Building", indexed=True),
        Field("level_id", INT, "楼层", "Level", indexed=True),
        Field("facility_id", INT, "关联设施", "Facility"),
        Field("unit", TEXT, "单位", "Unit"),
        Field("threshold_low", REAL, "下限", "Low threshold"),
        Field("threshold_high", REAL, "上限", "High threshold"),
        Field("reporting_interval_s", INT, "上报间隔(秒)", "Reporting interval (s)", required=True, minimum=1),
        Field("status", TEXT, "状态", "Status", required=True, choices=SENSOR_STATUSES, indexed=True),
        Field("last_value", REAL, "最新读数", "Last value"),
        Field("last_seen", DT, "最后上报", "Last seen"),
    ),
    read_roles=STAFF,
    write_roles=frozenset({Role.DEVICE, Role.OPERATOR, Role.ADMIN}),
    style=Style(point_radius_px=3, color_field="status", colors=STATUS_COLORS),
    zoom=ZoomRange(15, 22),
    temporal_field="last_seen",
)

ROADS = Layer(
    id="roads",
    title_zh="道路",
    title_en="Roads",
    description="Named roads of the North Station district.",
    geometry_type=GeometryType.LINESTRING,
    fields=(
        Field("name", TEXT, "路名", "Name", required=True),
        Field("road_class", TEXT, "等级", "Class", required=True,
              choices=("expressway", "arterial", "secondary", "local")),
        Field("width_m", REAL, "路宽(米)", "Width (m)", minimum=0),
        Field("lanes", INT, "车道数", "Lanes", minimum=0),
    ),
    style=Style(line=(255, 255, 255, 230), line_width_px=2, label_field="name"),
    zoom=ZoomRange(10, 22),
    search_fields=("name",),
)

FIRE_STATIONS = Layer(
    id="fire_stations",
    title_zh="消防站",
    title_en="Fire stations",
    description="Fire and rescue stations serving the district.",
    geometry_type=GeometryType.POINT,
    fields=(
        Field("name", TEXT, "名称", "Name", required=True),
        Field("station_type", TEXT, "类型", "Type", required=True, choices=("special", "standard", "small")),
        Field("address", TEXT, "地址", "Address"),
        Field("engines", INT, "消防车辆", "Engines", minimum=0),
    ),
    style=Style(fill=(211, 47, 47, 255), point_radius_px=8, label_field="name"),
    zoom=ZoomRange(10, 22),
    search_fields=("name",),
)

READINGS = Layer(
    id="readings",
    title_zh="监测读数",
    title_en="Sensor readings",
    description="Time series of sensor readings, keyed by (sensor, timestamp).",
    geometry_type=GeometryType.NONE,
    fields=(
        Field("sensor_id", INT, "设备", "Sensor", required=True, indexed=True),
        Field("ts", DT, "时间", "Timestamp", required=True, indexed=True),
        Field("value", REAL, "读数", "Value", required=True),
    ),
    read_roles=STAFF,
    write_roles=frozenset({Role.DEVICE, Role.ADMIN}),
    temporal_field="ts",
    unique_key=("sensor_id", "ts"),
)

ALARMS = Layer(
    id="alarms",
    title_zh="告警",
    title_en="Alarms",
    description="Alarms raised from sensor readings, with their lifecycle (open → acknowledged → resolved).",
    geometry_type=GeometryType.NONE,
    fields=(
        Field("sensor_id", INT, "设备", "Sensor", indexed=True),
        Field("building_id", INT, "建筑", "Building", indexed=True),
        Field("level_id", INT, "楼层", "Level"),
        Field("grid_code", TEXT, "所属网格", "Grid code", indexed=True),
        Field("alarm_type", TEXT, "告警类型", "Alarm type", required=True),
        Field("severity", TEXT, "级别", "Severity", required=True, choices=ALARM_SEVERITIES),
        Field("status", TEXT, "状态", "Status", required=True, choices=ALARM_STATUSES, indexed=True),
        Field("message", TEXT, "描述", "Message"),
        Field("opened_at", DT, "发生时间", "Opened at", required=True, indexed=True),
        Field("acknowledged_at", DT, "确认时间", "Acknowledged at"),
        Field("acknowledged_by", TEXT, "确认人", "Acknowledged by"),
        Field("resolved_at", DT, "解除时间", "Resolved at"),
        Field("resolved_by", TEXT, "解除人", "Resolved by"),
    ),
    read_roles=STAFF,
    write_roles=frozenset({Role.OPERATOR, Role.ADMIN}),
    temporal_field="opened_at",
)

INSPECTIONS = Layer(
    id="inspections",
    title_zh="消防检查",
    title_en="Inspections",
    description="Fire-safety inspections of buildings and facilities.",
    geometry_type=GeometryType.NONE,
    fields=(
        Field("building_id", INT, "建筑", "Building", required=True, indexed=True),
        Field("facility_id", INT, "设施", "Facility", indexed=True),
        Field("inspector", TEXT, "检查人", "Inspector", required=True),
        Field("inspected_at", DT, "检查时间", "Inspected at", required=True),
        Field("result", TEXT, "结论", "Result", required=True, choices=INSPECTION_RESULTS),
        Field("notes", TEXT, "备注", "Notes"),
    ),
    read_roles=STAFF,
    write_roles=frozenset({Role.INSPECTOR, Role.ADMIN}),
    temporal_field="inspected_at",
)

DEAD_LETTERS = Layer(
    id="dead_letters",
    title_zh="死信",
    title_en="Dead letters",
    description="Device messages the ingester refused (bad JSON, unknown sensor, wrong value type, a timestamp "
    "in the future …), kept with the reason so nothing a device sent disappears silently.",
    geometry_type=GeometryType.NONE,
    fields=(
        Field("received_at", DT, "接收时间", "Received at", required=True, indexed=True),
        Field("source", TEXT, "来源", "Source", required=True, choices=INGEST_SOURCES),
        Field("topic", TEXT, "主题", "Topic", description="MQTT topic, or the HTTP route"),
        Field("payload", TEXT, "报文", "Payload", description="the refused message or item, as text (truncated)"),
        Field("reason", TEXT, "原因", "Reason", required=True, description="'category: detail'"),
    ),
    read_roles=frozenset({Role.OPERATOR, Role.ADMIN}),
    write_roles=frozenset({Role.DEVICE, Role.ADMIN}),
    temporal_field="received_at",
)

API_KEYS = Layer(
    id="api_keys",
    title_zh="接口密钥",
    title_en="API keys",
    description="API keys of the service: only a SHA-256 hash of each key is stored, with its role.",
    geometry_type=GeometryType.NONE,
    fields=(
        Field("name", TEXT, "名称", "Name", required=True),
        Field("role", TEXT, "角色", "Role", required=True, choices=tuple(r.value for r in Role)),
        Field("key_hash", TEXT, "密钥摘要", "Key hash (SHA-256)", required=True, indexed=True),
        Field("prefix", TEXT, "密钥前缀", "Key prefix", required=True),
        Field("created_at", DT, "创建时间", "Created at", required=True),
        Field("revoked_at", DT, "吊销时间", "Revoked at"),
    ),
    read_roles=frozenset({Role.ADMIN}),
    unique_key=("key_hash",),
)

LAYERS: tuple[Layer, ...] = (
    GRIDS,
    BUILDINGS,
    LEVELS,
    FIRE_FACILITIES,
    RESCUE_PLATFORMS,
    FIRE_LANES,
    SENSORS,
    ROADS,
    FIRE_STATIONS,
    READINGS,
    ALARMS,
    INSPECTIONS,
    DEAD_LETTERS,
    API_KEYS,
)

DEM = RasterLayer(
    id="dem",
    title_zh="数字高程模型",
    title_en="Digital elevation model",
    description="Ground elevation above sea level.",
    filename="dem.tif",
    storage_crs="EPSG:4547",
    unit="m",
    value_range=(40.0, 200.0),
    colormap="terrain",
    resolution_m=5.0,
)

VOID_RISK = RasterLayer(
    id="void_risk",
    title_zh="地下空洞风险",
    title_en="Underground void risk",
    description="Ground-penetrating-radar survey: probability of an underground void (0–1).",
    filename="void_risk.tif",
    storage_crs="EPSG:4547",
    unit="probability",
    value_range=(0.0, 1.0),
    colormap="risk",
    resolution_m=10.0,
)

RASTERS: tuple[RasterLayer, ...] = (DEM, VOID_RISK)

_BY_ID = {layer.id: layer for layer in LAYERS}
_RASTERS_BY_ID = {r.id: r for r in RASTERS}


def get_layer(layer_id: str) -> Layer:
    """The layer or table called ``layer_id``; raises ``KeyError`` for an unknown id."""
    try:
        return _BY_ID[layer_id]
    except KeyError:
        raise KeyError(f"unknown layer {layer_id!r}; known: {', '.join(_BY_ID)}") from None


def get_raster(raster_id: str) -> RasterLayer:
    """The raster called ``raster_id``; raises ``KeyError`` for an unknown id."""
    try:
        return _RASTERS_BY_ID[raster_id]
    except KeyError:
        raise KeyError(f"unknown raster {raster_id!r}; known: {', '.join(_RASTERS_BY_ID)}") from None


def spatial_layers() -> tuple[Layer, ...]:
    """The layers that carry geometries, in catalogue order."""
    return tuple(layer for layer in LAYERS if layer.is_spatial)
