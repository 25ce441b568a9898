"""Signing and broker credentials for tests that publish as a station (or as the hub).

The test master secret is the hub's documented development default, so a hub built from
``HubSettings()`` in a test and the Floor's hub (which sets it explicitly) verify what these
helpers sign.
"""

from __future__ import annotations

from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from benchfleet.broker import PrivateBroker
from hub.settings import DEV_STATION_KEY_SECRET
from protocol import auth

TEST_STATION_SECRET = DEV_STATION_KEY_SECRET


def station_key(station_id: str, generation: int = 1) -> bytes:
    """The key the test hub expects from ``station_id``."""
    return auth.station_key(TEST_STATION_SECRET.encode(), station_id, generation)


def signed_properties(
    station_id: str, topic: str, payload: bytes, *, generation: int = 1
) -> Properties:
    """PUBLISH properties that sign ``payload`` on ``topic`` with ``station_id``'s key."""
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.UserProperty = auth.user_properties(
        station_key(station_id, generation), generation, topic, payload
    )
    return props


def write_key_file(path: Path, station_id: str, generation: int = 1) -> Path:
    """A station key file (0600) for ``station_id``, as `benchfleet station enroll` writes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(auth.key_to_hex(station_key(station_id, generation), generation))
    path.chmod(0o600)
    return path


def raw_client(broker: PrivateBroker, username: str, client_id: str) -> mqtt.Client:
    """A connected MQTT 5 paho client (network loop running) with ``username``'s credentials
    on a broker with a policy (none without one)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if broker.policy:
        client.username_pw_set(*broker.client_credentials(username))
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client
