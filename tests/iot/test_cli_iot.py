"""``twin ingest`` on its own: ingests from the broker until SIGTERM, then stops cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid

from tests.iot.conftest import Broker, Publisher, TwinStore, wait_until
from tests.iot.test_live import stamp
from twin.store.base import FeatureQuery, Filter, Op

#: The command as twin/cli.py registers it (``app.command("ingest")(ingest)``).
RUNNER = "import typer; from twin.cli_iot import ingest; app = typer.Typer(); app.command('ingest')(ingest); " \
         "app.command('noop')(lambda: None); app()"


def test_twin_ingest_runs_until_sigterm(broker: Broker, iot_store: TwinStore) -> None:
    run = uuid.uuid4().hex[:8]
    env = {"TWIN_MQTT_TOPIC_PREFIX": f"cli-{run}", "TWIN_MQTT_SESSION_EXPIRY_S": "60", "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, "ingest", "--store", iot_store.location, "--mqtt",
                             broker.url, "--client-id", f"cli-{run}", "--report-s", "0.5"],
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        store = iot_store.store
        publisher = Publisher(broker.port, f"cli-{run}")
        ts = stamp()
        sensor_code = store.get("sensors", 17).iloc[0]["code"]

        def stored() -> int:
            publisher.send(sensor_code, {"ts": ts, "value": 0.5})  # the same reading until it lands: stored once
            return store.count("readings", FeatureQuery(filters=(Filter("sensor_id", Op.EQ, 17),
                                                                 Filter("ts", Op.EQ, ts))))

        assert wait_until(stored, timeout=30, every=0.5) == 1
        publisher.close()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"on {broker.url} as cli-{run}" in err and "1 stored" in err
