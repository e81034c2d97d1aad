"""``twin ingest``: the MQTT ingester and the alarm engine on their own, without the HTTP API.

``twin serve`` runs the same pipeline inside the API process when ``TWIN_MQTT_URL`` is set; run ``twin ingest`` instead
to scale ingest separately. Several ingesters share the load through a shared subscription: give them one
``TWIN_MQTT_SHARE_GROUP`` and each a different ``TWIN_MQTT_CLIENT_ID`` (docs/iot.md says what that costs). Alarm and
sensor events are then published in the ingester's process: screens follow the stream of the process that runs the
engine.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from types import FrameType
from typing import Annotated

import typer

from twin.errors import InvalidQuery
from twin.iot.service import IotRuntime
from twin.iot.settings import IotSettings
from twin.settings import StoreSettings
from twin.store.opening import open_store


def ingest(
    store: Annotated[str | None, typer.Option("--store", help="GeoPackage path or PostgreSQL URL")] = None,
    mqtt: Annotated[str | None, typer.Option("--mqtt", help="broker URL (default: TWIN_MQTT_URL)")] = None,
    client_id: Annotated[str | None, typer.Option(help="MQTT client id (default: TWIN_MQTT_CLIENT_ID)")] = None,
    report_s: Annotated[float, typer.Option(help="print counters every this many seconds (0: never)")] = 30.0,
) -> None:
    """Ingest sensor readings from MQTT into the store and run the alarm engine until Ctrl-C or SIGTERM."""
    settings = IotSettings()
    if mqtt:
        settings.mqtt.url = mqtt
    if client_id:
        settings.mqtt.client_id = client_id
    if not settings.mqtt.enabled:
        raise InvalidQuery("no broker: set TWIN_MQTT_URL or pass --mqtt mqtt://host:1883")
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    opened = open_store(store, settings=StoreSettings())
    runtime = IotRuntime(opened, settings)
    started = time.monotonic()

    def report(when: str = "") -> None:
        s = runtime.stats
        rate = s.stored / max(time.monotonic() - started, 1e-9)
        print(f"twin ingest{when}: {s.received:,} received, {s.stored:,} stored ({rate:,.0f}/s), "
              f"{s.duplicates:,} duplicates, {s.dead_letters:,} dead letters, {s.alarms_opened:,} alarms",
              file=sys.stderr)

    try:
        runtime.start()
        print(f"twin ingest: {settings.mqtt.topic_filter} on {settings.mqtt.url} as {settings.mqtt.client_id}",
              file=sys.stderr)
        while not stop.wait(report_s if report_s > 0 else 3600):
            report()
    finally:
        runtime.stop()
        opened.close()
    report(" stopped")
