"""Typed settings of the live IoT pipeline: the broker, ingest limits, the alarm rules and the event stream.

Each class reads its own ``TWIN_…`` prefix when an object is built (never at import time). Thresholds default to the
values of ``shared/domain.md``; those marked *(check)* there are defaults to be confirmed, not truths.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The Mosquitto settings production needs (``docs/iot.md`` explains each); a listener and paths are added per site.
#: The tests' and the benchmark's own brokers run with exactly these.
MOSQUITTO_PRODUCTION = """\
persistence true
autosave_interval 60
max_inflight_messages 0
max_queued_messages 1000000
max_queued_bytes 0
persistent_client_expiration 14d
"""


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker is, parsed from ``TWIN_MQTT_URL`` (``mqtt://[user:pass@]host[:port]``, ``mqtts://`` for TLS)."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


class MqttSettings(BaseSettings):
    """The MQTT ingester (``TWIN_MQTT_*``). It runs only when ``TWIN_MQTT_URL`` is set."""

    model_config = SettingsConfigDict(env_prefix="TWIN_MQTT_", extra="ignore")

    url: str | None = None
    #: Fixed client id: the broker keeps this id's persistent session (and its queued messages) across restarts.
    client_id: str = "twin-ingest"
    #: Topic root: devices publish to ``{topic_prefix}/sensors/{sensor}/readings``.
    topic_prefix: str = "twin"
    #: "" (the default): a plain subscription, which the broker keeps in the persistent session across its own
    #: restarts. A group name subscribes through ``$share/{share_group}/…`` so several ingesters split the load
    #: (MQTT 5) — but Mosquitto 2.0 does not restore shared subscriptions after a restart: readings published between
    #: a broker restart and the ingester's re-subscribe are dropped (measured here on 2.0.11; see docs/iot.md).
    share_group: str = ""
    #: How long the broker keeps the session of a disconnected ingester (MQTT 5 Session Expiry Interval).
    session_expiry_s: int = 7 * 24 * 3600
    #: Messages the broker may have in flight to us unacknowledged (MQTT 5 Receive Maximum; 1–65535). Two batches'
    #: worth keeps the next batch arriving while one commits; the rest waits at the broker. Mosquitto 2.0.11 holds to
    #: it only until PUBACKs flow (docs/iot.md); the ingester's own inbox bound holds either way.
    receive_maximum: int = 4_000
    #: Seconds without sending before a PINGREQ; a connection on which nothing arrives for twice this is dropped and
    #: made again (any packet counts: under a flood the PINGRESP may queue behind thousands of PUBLISH packets).
    keepalive_s: int = 60
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    #: A batch is committed when it holds this many messages or when its oldest message is this old.
    batch_messages: int = 2_000
    batch_window_ms: int = 50
    #: … or when its payloads reach this many bytes (a gateway's message of 100 readings is ~6 KB: 2 MB ≈ 30,000
    #: readings), so one commit stays short and alarms in it are not held back by the rest.
    batch_bytes: int = 2_000_000
    #: Threads storing batches side by side (evaluation and acknowledgement stay in arrival order). Two let PostGIS
    #: run two COPYs on two cores; the GeoPackage writes one at a time whatever this says.
    committers: int = Field(default=3, ge=1, le=16)

    @field_validator("receive_maximum")
    @classmethod
    def _receive_maximum(cls, value: int) -> int:
        if not 1 <= value <= 65_535:
            raise ValueError("receive_maximum must be 1..65535")
        return value

    @property
    def enabled(self) -> bool:
        """True when a broker is configured."""
        return bool(self.url)

    def address(self) -> BrokerAddress:
        """The broker's host, port, TLS flag and credentials."""
        if not self.url:
            raise ValueError("TWIN_MQTT_URL is not set")
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"TWIN_MQTT_URL must be mqtt://host:port or mqtts://host:port, got {self.url!r}")
        tls = parts.scheme in ("mqtts", "ssl")
        return BrokerAddress(parts.hostname or "127.0.0.1", parts.port or (8883 if tls else 1883), tls,
                             urllib.parse.unquote(parts.username) if parts.username else None,
                             urllib.parse.unquote(parts.password) if parts.password else None)

    @property
    def topic_filter(self) -> str:
        """The subscription: shared where a group is set."""
        plain = f"{self.topic_prefix}/sensors/+/readings"
        return f"$share/{self.share_group}/{plain}" if self.share_group else plain


class RuleSettings(BaseSettings):
    """Alarm thresholds by sensor type (``TWIN_ALARM_*``); a sensor's own thresholds win where it has them."""

    model_config = SettingsConfigDict(env_prefix="TWIN_ALARM_", extra="ignore")

    #: Photoelectric smoke obscuration that counts as a trigger (%/m) *(check)*.
    smoke_obscuration_pct_per_m: float = 3.0
    #: Fixed-temperature heat detector trigger (°C; class A1 static response is 54–65 °C) *(check)*.
    heat_c: float = 57.0
    #: Residual-current electrical fire alarm (mA); GB 50116 9.2.3 *(check)* sets it at 300–500 mA.
    residual_current_ma: float = 300.0
    #: Cable (conductor) temperature alarm (°C) *(check)*.
    cable_temperature_c: float = 70.0
    #: Minimum hydrant-main pressure (MPa): outlet dynamic pressure ≥ 0.35 MPa for high-rises, GB 50974 *(check)*.
    hydrant_pressure_min_mpa: float = 0.35
    #: Minimum sprinkler-riser pressure (MPa) *(check)*.
    sprinkler_pressure_min_mpa: float = 0.05
    #: Minimum roof-tank / fire-pool level (m) *(check)*.
    tank_level_min_m: float = 2.0
    #: Combustible gas, first alarm level (%LEL) *(check)*.
    gas_pct_lel: float = 20.0
    #: A normally-closed fire door reads 1 when open; above this it is open.
    door_open_above: float = 0.5
    #: Use the thresholds stored on each sensor (``threshold_low``/``threshold_high``) where they are set.
    prefer_sensor_thresholds: bool = True
    #: Detector types whose triggers count for GB 50116 4.1.6 two-trigger confirmation.
    fire_trigger_types: tuple[str, ...] = ("smoke", "heat")
    #: A second independent trigger on the same floor within this window confirms a fire alarm (s).
    confirm_window_s: float = 180.0
    #: A sensor silent for longer than this many reporting intervals is offline.
    offline_after_intervals: float = 3.0
    #: After an offline alarm, the same sensor raises no new one for this long (flapping debounce, s).
    offline_realarm_s: float = 1800.0
    #: A sensor's state changes are sent to screens at most once per this many seconds (the last one always is).
    state_event_min_s: float = 30.0
    #: If more than this share of the sensors (and at least 50) goes offline within ``offline_storm_window_s``, one
    #: outage alarm is raised instead of many, and no per-sensor offline alarms while it is unresolved.
    offline_storm_fraction: float = 0.2
    offline_storm_window_s: float = 600.0

    @field_validator("residual_current_ma")
    @classmethod
    def _residual_band(cls, value: float) -> float:
        if not 300.0 <= value <= 500.0:
            raise ValueError("residual_current_ma must be within 300–500 mA (GB 50116 9.2.3)")
        return value

    @field_validator("confirm_window_s", "offline_after_intervals", "offline_realarm_s", "state_event_min_s")
    @classmethod
    def _non_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError("must not be negative")
        return value


class IotSettings(BaseSettings):
    """Everything the live pipeline needs (``TWIN_IOT_*`` plus the nested groups)."""

    model_config = SettingsConfigDict(env_prefix="TWIN_IOT_", extra="ignore")

    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    rules: RuleSettings = Field(default_factory=RuleSettings)
    #: Readings stamped further ahead of the receiver's clock than this are refused (s).
    max_future_s: float = 300.0
    #: Refused payloads are kept up to this many bytes in the dead-letter table.
    dead_letter_payload_bytes: int = 4_096
    #: Events kept for ``Last-Event-ID`` replay.
    replay_events: int = 20_000
    #: Idle SSE connections get a comment line this often (s), so proxies keep them open.
    stream_ping_s: float = 15.0
    #: How often the offline sweep and the sensor-state writer run (s).
    tick_s: float = 5.0
    #: Sensor rows written to the store per tick at most, in slices of ``state_write_chunk`` (status changes first;
    #: the rest catch up later). 270,000 sensors reporting once a minute change 22,500 rows in a 5 s tick.
    state_writes_per_tick: int = 50_000
    #: Rows whose only change is a new last value / last seen are written in passes at most this often (s); status
    #: changes go at every tick. Each such row costs the store about as much as a reading: at 270,000 sensors a
    #: minute, 300 s writes each row once per five readings instead of every time. 0 writes them every tick.
    state_values_every_s: float = 300.0
    #: Sensor rows per store transaction when writing them, and the pause between two (s): reading commits wait
    #: for the store's write lock at most one slice.
    state_write_chunk: int = 1_000
    state_write_pause_s: float = 0.005
    #: Sensor rows written when the runtime stops (status changes first).
    state_writes_on_stop: int = 300_000
    #: Most points a reading-history response returns; longer ranges are bucketed to fit.
    history_max_points: int = 2_000
    #: An unknown sensor reloads the sensor directory at most this often (s), to pick up new devices.
    directory_refresh_s: float = 30.0

    @model_validator(mode="after")
    def _positive(self) -> IotSettings:
        if self.replay_events < 1 or self.tick_s <= 0 or self.history_max_points < 1:
            raise ValueError("replay_events, tick_s and history_max_points must be positive")
        return self
