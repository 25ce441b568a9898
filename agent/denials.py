"""Broker denials made visible: refused PUBACKs and CONNACKs (MQTT 5 reason codes).

aiomqtt waits for a PUBACK but ignores its reason code, so a publish the ACL refused (0x87
Not authorized) would look delivered. :func:`watch_pubacks` wraps the paho client under the
aiomqtt one to see each PUBACK's code with the topic it answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.reasoncodes import ReasonCode

FAILURE = 0x80  # MQTT 5: every reason code from 0x80 on is a failure
REFUSED_CONNECT = {0x04, 0x05, 0x86, 0x87, 0x8C}  # 3.1.1 and 5: bad credentials, not authorized

Denied = Callable[[str, int, str], None]  # (topic, reason code, reason name)


def watch_pubacks(client: aiomqtt.Client, on_denied: Denied) -> None:
    """Call ``on_denied`` for every PUBACK of ``client`` with a failure reason code."""
    paho = client._client  # aiomqtt exposes no PUBACK reason codes: wrap its paho client
    topics_by_mid: dict[int, str] = {}
    publish, on_publish = paho.publish, cast(Callable[..., None], paho.on_publish)

    def publish_and_remember(topic: str, *args: Any, **kwargs: Any) -> Any:
        info = publish(topic, *args, **kwargs)
        topics_by_mid[info.mid] = topic  # PUBACKs arrive on the event loop, after this returns
        return info

    def check_puback(c: Any, userdata: Any, mid: int, code: Any, properties: Any) -> None:
        topic = topics_by_mid.pop(mid, "?")
        value = int(getattr(code, "value", code) or 0)
        if value >= FAILURE:
            on_denied(topic, value, str(getattr(code, "getName", lambda: value)()))
        on_publish(c, userdata, mid, code, properties)

    paho.publish = publish_and_remember  # type: ignore[method-assign]
    paho.on_publish = check_puback


def connect_refusal(error: BaseException) -> int | None:
    """The CONNACK reason code if ``error`` is the broker refusing our credentials."""
    if not isinstance(error, MqttConnectError):
        return None
    code = error.rc
    value = code.value if isinstance(code, ReasonCode) else int(code or 0)
    return value if value in REFUSED_CONNECT else None
