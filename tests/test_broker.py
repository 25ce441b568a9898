"""benchfleet.broker.PrivateBroker: a real mosquitto on a free loopback port."""

from __future__ import annotations

import queue
import socket
import time
from collections.abc import Iterator
from pathlib import Path, PosixPath

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from benchfleet import broker as broker_module
from benchfleet.broker import INSTALL_HINT, BrokerError, PrivateBroker, env_for

pytestmark = pytest.mark.broker


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Session:
    """A paho MQTT 5 client with a persistent session whose messages land in a queue."""

    def __init__(self, broker: PrivateBroker, client_id: str) -> None:
        self.broker = broker
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)

    def connect(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect(self.broker.host, self.broker.port, clean_start=False, properties=props)
        self.client.loop_start()
        deadline = time.monotonic() + 5
        while not self.client.is_connected():
            assert time.monotonic() < deadline, "MQTT connect timed out"
            time.sleep(0.01)

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    with PrivateBroker(tmp_path / "broker") as running:
        yield running


def test_starts_on_loopback_and_stops(tmp_path: Path) -> None:
    b = PrivateBroker(tmp_path / "b")
    b.start()
    try:
        assert _accepts(b.port)
        assert b.url == f"mqtt://127.0.0.1:{b.port}"
        assert env_for(b)["BENCHFLEET_MQTT_URL"] == b.url
        assert "autosave_on_changes true" in (tmp_path / "b" / "mosquitto.conf").read_text()
    finally:
        b.stop()
    assert b.process is not None
    assert b.process.returncode == 0
    assert not _accepts(b.port)


def test_restart_keeps_the_port(broker: PrivateBroker) -> None:
    port, first_pid = broker.port, broker.process.pid  # type: ignore[union-attr]
    broker.restart(down_for=0.1)
    assert broker.port == port
    assert broker.process is not None
    assert broker.process.pid != first_pid
    assert _accepts(port)


def test_sigkill_restart_keeps_queued_messages(broker: PrivateBroker) -> None:
    """autosave_on_changes: a QoS 1 message queued for an offline session survives a crash."""
    sub = Session(broker, "sub-1")
    sub.connect()
    sub.client.subscribe("bf/v1/test", qos=1)
    time.sleep(0.2)
    sub.disconnect()

    pub = Session(broker, "pub-1")
    pub.connect()
    pub.client.publish("bf/v1/test", b"queued", qos=1).wait_for_publish(5)
    pub.disconnect()

    time.sleep(0.2)
    broker.restart(kill=True)
    assert broker.process is not None
    assert broker.process.poll() is None

    sub2 = Session(broker, "sub-1")
    sub2.connect()
    try:
        assert sub2.messages.get(timeout=5).payload == b"queued"
        with pytest.raises(queue.Empty):
            sub2.messages.get(timeout=0.5)
    finally:
        sub2.disconnect()


def test_stop_when_not_started_is_a_no_op(tmp_path: Path) -> None:
    PrivateBroker(tmp_path / "never").stop()


class _NothingInSbin(PosixPath):
    def exists(self, *, follow_symlinks: bool = True) -> bool:
        return False


def test_missing_binary_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker_module.shutil, "which", lambda _name: None)
    monkeypatch.setattr(broker_module, "Path", _NothingInSbin)
    b = PrivateBroker(tmp_path / "b")
    with pytest.raises(BrokerError) as err:
        b.start()
    assert str(err.value) == INSTALL_HINT
    assert "apt-get install -y mosquitto" in str(err.value)
    assert b.process is None


def test_a_broken_config_is_reported(tmp_path: Path) -> None:
    b = PrivateBroker(tmp_path / "b", extra_config="no_such_option 1\n")
    with pytest.raises(BrokerError, match="mosquitto exited"):
        b.start()
