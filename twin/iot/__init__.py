"""Live IoT: device readings over MQTT and HTTP, the alarm engine, and the alarm event stream.

broker → :mod:`~twin.iot.mqtt` (or HTTP) → :mod:`~twin.iot.payload` → :class:`~twin.iot.service.IotRuntime`
(store, batched and committed) → :mod:`~twin.iot.engine` (pure rules, :mod:`~twin.iot.rules`) → :mod:`~twin.iot.events`
→ screens. The wire format and the broker settings production needs are in ``docs/iot.md``.
"""

from twin.iot.events import Event, EventFilter, EventHub
from twin.iot.service import IotRuntime
from twin.iot.settings import IotSettings, MqttSettings, RuleSettings

__all__ = ["Event", "EventFilter", "EventHub", "IotRuntime", "IotSettings", "MqttSettings", "RuleSettings"]
