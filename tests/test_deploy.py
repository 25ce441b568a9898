"""deploy/mosquitto/acl, enforced by a real mosquitto: a station is confined to its own topics."""

from __future__ import annotations

import getpass
import queue
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from benchfleet.broker import PrivateBroker, free_port, mosquitto_binary
from benchfleet.processes import ManagedProcess

pytestmark = pytest.mark.broker

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
PASSWORDS = {"hub": "hub-secret", "st-01": "st01-secret", "st-02": "st02-secret"}
NOT_AUTHORIZED = 0x87


class Client:
    """A connected paho MQTT 5 client; received messages and PUBACK reasons land in queues."""

    def __init__(self, broker: PrivateBroker, user: str, password: str) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.acks: dict[int, ReasonCode] = {}
        self.connect_reason: ReasonCode | None = None
        self.mqtt = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"{user}-test", protocol=mqtt.MQTTv5
        )
        self.mqtt.username_pw_set(user, password)
        self.mqtt.on_message = lambda _c, _u, m: self.messages.put((m.topic, m.payload))
        self.mqtt.on_publish = self._on_publish
        self.mqtt.on_connect = self._on_connect
        self.mqtt.connect(broker.host, broker.port)
        self.mqtt.loop_start()
        _until(lambda: self.connect_reason is not None, "CONNACK")

    def _on_connect(
        self, _c: object, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        self.connect_reason = reason

    def _on_publish(self, _c: object, _u: object, mid: int, reason: ReasonCode, _p: object) -> None:
        self.acks[mid] = reason

    def publish(self, topic: str, payload: bytes = b"x", *, retain: bool = False) -> int:
        """Publish at QoS 1 and return the PUBACK reason code."""
        info = self.mqtt.publish(topic, payload, qos=1, retain=retain)
        _until(lambda: info.mid in self.acks, f"PUBACK for {topic}")
        return int(self.acks[info.mid].value)

    def subscribe(self, *filters: str) -> None:
        for topic_filter in filters:
            self.mqtt.subscribe(topic_filter, qos=1)
        time.sleep(0.3)

    def received(self, wait: float = 0.5) -> list[tuple[str, bytes]]:
        time.sleep(wait)
        out = []
        while not self.messages.empty():
            out.append(self.messages.get_nowait())
        return out

    def close(self) -> None:
        self.mqtt.disconnect()
        self.mqtt.loop_stop()


def _until(check: object, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def secured_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A private mosquitto with the production ACL and a password file, without TLS."""
    passwd_tool = shutil.which("mosquitto_passwd")
    if passwd_tool is None:
        pytest.skip("mosquitto_passwd is not installed")
    passwd = tmp_path / "passwd"
    passwd.touch()
    for user, password in PASSWORDS.items():
        subprocess.run([passwd_tool, "-b", str(passwd), user, password], check=True)
    extra = (
        f"allow_anonymous false\npassword_file {passwd}\nacl_file {DEPLOY / 'mosquitto' / 'acl'}\n"
    )
    with PrivateBroker(tmp_path / "broker", extra_config=extra) as broker:
        yield broker


@pytest.fixture
def clients(secured_broker: PrivateBroker) -> Iterator[dict[str, Client]]:
    opened = {user: Client(secured_broker, user, pw) for user, pw in PASSWORDS.items()}
    yield opened
    for client in opened.values():
        client.close()


def test_wrong_password_and_anonymous_are_refused(secured_broker: PrivateBroker) -> None:
    assert Client(secured_broker, "st-01", "wrong").connect_reason.is_failure  # type: ignore[union-attr]
    anonymous = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    reasons: list[ReasonCode] = []
    anonymous.on_connect = lambda _c, _u, _f, reason, _p: reasons.append(reason)
    anonymous.connect(secured_broker.host, secured_broker.port)
    anonymous.loop_start()
    _until(lambda: reasons, "CONNACK")
    anonymous.loop_stop()
    assert reasons[0].is_failure


def test_station_writes_only_its_own_up_topics(clients: dict[str, Client]) -> None:
    hub, st1 = clients["hub"], clients["st-01"]
    hub.subscribe("bf/v1/#")

    assert st1.publish("bf/v1/st/st-01/up/job", b"mine") < 0x80
    assert st1.publish("bf/v1/st/st-02/up/job", b"forged") == NOT_AUTHORIZED
    assert st1.publish("bf/v1/st/st-01/down/job", b"self-assign") == NOT_AUTHORIZED
    assert st1.publish("bf/v1/hub/state", b"fake hub") == NOT_AUTHORIZED

    assert hub.received() == [("bf/v1/st/st-01/up/job", b"mine")]


def test_station_reads_only_its_own_down_topics(clients: dict[str, Client]) -> None:
    hub, st1 = clients["hub"], clients["st-01"]
    assert hub.publish("bf/v1/hub/state", b"online", retain=True) < 0x80
    st1.subscribe("bf/v1/st/st-01/down/#", "bf/v1/st/st-02/down/#", "bf/v1/hub/state")

    assert hub.publish("bf/v1/st/st-02/down/job", b"for st-02") < 0x80
    assert hub.publish("bf/v1/st/st-01/down/job", b"for st-01") < 0x80

    got = st1.received()
    assert ("bf/v1/hub/state", b"online") in got
    assert ("bf/v1/st/st-01/down/job", b"for st-01") in got
    assert all("st-02" not in topic for topic, _ in got)


def test_hub_reads_and_writes_everything(clients: dict[str, Client]) -> None:
    hub, st2 = clients["hub"], clients["st-02"]
    hub.subscribe("bf/v1/#")
    assert st2.publish("bf/v1/st/st-02/up/telemetry", b"t") < 0x80
    assert hub.publish("bf/v1/st/st-02/down/cmd", b"c") < 0x80
    topics = {topic for topic, _ in hub.received()}
    assert topics == {"bf/v1/st/st-02/up/telemetry", "bf/v1/st/st-02/down/cmd"}


def _make_certs(folder: Path) -> None:
    """A throw-away CA and a server certificate for 127.0.0.1 (openssl, under a second)."""
    folder.mkdir()

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-extfile", "san.ext", "-out", "server.crt")  # fmt: skip


def test_production_config_serves_tls_with_auth(tmp_path: Path) -> None:
    """deploy/mosquitto/benchfleet.conf as shipped, with paths and port moved into tmp_path."""
    if shutil.which("openssl") is None or shutil.which("mosquitto_passwd") is None:
        pytest.skip("needs openssl and mosquitto_passwd")
    certs = tmp_path / "certs"
    _make_certs(certs)
    passwd = tmp_path / "passwd"
    passwd.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "hub", "hub-secret"], check=True)
    port = free_port()
    conf = (DEPLOY / "mosquitto" / "benchfleet.conf").read_text()
    conf = (
        conf.replace("listener 8883", f"listener {port} 127.0.0.1")
        .replace("/etc/mosquitto/certs", str(certs))
        .replace("/etc/mosquitto/benchfleet.passwd", str(passwd))
        .replace("/etc/mosquitto/benchfleet.acl", str(DEPLOY / "mosquitto" / "acl"))
    )
    assert str(port) in conf
    settings = [line for line in conf.splitlines() if line and not line.startswith("#")]
    assert not [line for line in settings if "/etc/" in line]
    data = tmp_path / "data"
    data.mkdir()
    conf_path = tmp_path / "mosquitto.conf"
    conf_path.write_text(
        f"user {getpass.getuser()}\npersistence_location {data}/\n"
        f"log_dest file {tmp_path / 'mosquitto.log'}\n{conf}"
    )
    proc = ManagedProcess("mosquitto", [mosquitto_binary(), "-c", str(conf_path)], tmp_path / "out")
    proc.start()
    try:
        tls = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        tls.tls_set(ca_certs=str(certs / "ca.crt"))
        tls.username_pw_set("hub", "hub-secret")
        deadline = time.monotonic() + 5
        while True:
            try:
                tls.connect("127.0.0.1", port)
                break
            except OSError:
                assert proc.alive, proc.tail() + (tmp_path / "mosquitto.log").read_text()
                assert time.monotonic() < deadline, "mosquitto did not listen"
                time.sleep(0.05)
        tls.loop_start()
        _until(tls.is_connected, "TLS CONNACK")
        info = tls.publish("bf/v1/hub/state", b"online", qos=1)
        info.wait_for_publish(5)
        assert info.is_published()
        tls.disconnect()
        tls.loop_stop()
    finally:
        proc.stop()


def test_every_hub_setting_is_documented_in_the_env_example() -> None:
    """deploy/hub.env.example names every BENCHFLEET_* setting the hub reads (docs match code)."""
    from hub.settings import HubSettings

    example = (Path(__file__).parent.parent / "deploy" / "hub.env.example").read_text()
    missing = [
        f"BENCHFLEET_{name.upper()}"
        for name in HubSettings.model_fields
        if f"BENCHFLEET_{name.upper()}=" not in example
    ]
    assert missing == []
