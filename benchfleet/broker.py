"""A private mosquitto on a free loopback port, for the demo, tests and benchmarks.

The generated config persists sessions and queued messages on every change
(``autosave_on_changes``), because mosquitto's default snapshot loses or duplicates messages
when it is killed between autosaves (research/infra-feasibility.md §2).
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from benchfleet.processes import die_with_parent

INSTALL_HINT = (
    "mosquitto is not installed. On Debian/Ubuntu: sudo apt-get install -y mosquitto "
    "(or run `make demo` / `make test` as root or with sudo and it is installed for you)."
)


# The ACL of production brokers; the private broker's policy mode uses the same file.
DEPLOY_ACL = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto" / "acl"
HUB_USER = "hub"
# mosquitto 2's password-file hash ($7$: PBKDF2-SHA512), as mosquitto_passwd writes it.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12


class BrokerError(RuntimeError):
    """The private broker could not be started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mosquitto_binary() -> str:
    """Path of the mosquitto executable, or a :class:`BrokerError` that says how to get it."""
    found = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()),
        None,
    )
    if found is None:
        raise BrokerError(INSTALL_HINT)
    return found


def password_line(username: str, password: str, *, salt: bytes | None = None) -> str:
    """One mosquitto password-file line (``user:$7$101$salt$hash``, PBKDF2-SHA512)."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return f"{username}:$7${PBKDF2_ITERATIONS}${encoded[0]}${encoded[1]}"


def credentials_url(url: str, username: str, password: str) -> str:
    """``url`` (``mqtt://host:port``) with ``username:password@`` in it."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{quote(username, safe='')}:{quote(password, safe='')}@{rest}"


@dataclass
class PrivateBroker:
    """One mosquitto process with its own config, data and log under ``workdir``.

    With ``policy`` it runs like a production broker: no anonymous clients, a password per
    user (the hub is ``hub``, each station its own id) and the ACL of deploy/mosquitto/acl,
    which confines every station to its own namespace.
    """

    workdir: Path
    port: int = field(default_factory=free_port)
    extra_config: str = ""
    process: subprocess.Popen[bytes] | None = None
    policy: bool = False
    acl_source: Path = DEPLOY_ACL

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    # ---- policy: users and passwords ----------------------------------------------------------

    @property
    def _credentials_path(self) -> Path:
        return self.workdir / "credentials.json"

    def _credentials(self) -> dict[str, str]:
        if not self._credentials_path.exists():
            return {}
        return dict(json.loads(self._credentials_path.read_text()))

    def _save_credentials(self, users: dict[str, str]) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        write_private(self._credentials_path, json.dumps(users, indent=1))
        lines = [password_line(user, password) for user, password in sorted(users.items())]
        write_private(self.workdir / "passwd", "".join(f"{line}\n" for line in lines))

    def client_credentials(self, username: str) -> tuple[str, str]:
        """``(username, password)`` of ``username`` on this broker, created on first use (a
        running broker reloads its password file and accepts them before this returns)."""
        users = self._credentials()
        if username not in users:
            users[username] = secrets.token_urlsafe(18)
            self._save_credentials(users)
            self._reload_until_accepted(username, users[username])
        return username, users[username]

    def url_for(self, username: str) -> str:
        """The broker URL with ``username``'s credentials (the plain URL without a policy)."""
        if not self.policy:
            return self.url
        return credentials_url(self.url, *self.client_credentials(username))

    def remove_user(self, username: str) -> None:
        """Forget ``username``: its connections are refused from now on (a revoked station)."""
        users = self._credentials()
        if users.pop(username, None) is not None:
            self._save_credentials(users)
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGHUP)

    def _reload_until_accepted(self, username: str, password: str, timeout: float = 5.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return  # read at start
        self.process.send_signal(signal.SIGHUP)  # mosquitto reloads passwords and ACL
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if connack_code(self.host, self.port, username, password) == 0:
                return
            time.sleep(0.05)
        raise BrokerError(f"mosquitto did not accept the new user {username} in {timeout}s")

    def _policy_config(self) -> str:
        if not self.policy:
            return "allow_anonymous true\n"
        self.client_credentials(HUB_USER)
        acl = self.workdir / "acl"
        header = f"# generated by benchfleet.broker from {self.acl_source}; do not edit\n"
        acl.write_text(header + self.acl_source.read_text())
        return f"allow_anonymous false\npassword_file {self.workdir / 'passwd'}\nacl_file {acl}\n"

    def write_config(self) -> Path:
        """Write mosquitto.conf for this broker and return its path."""
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            f"# generated by benchfleet.broker; private, loopback only\n"
            f"user {getpass.getuser()}\n"
            f"listener {self.port} {self.host}\n"
            f"{self._policy_config()}"
            f"persistence true\n"
            f"persistence_location {data}/\n"
            f"autosave_on_changes true\n"
            f"autosave_interval 1\n"
            f"max_queued_messages 100000\n"
            f"log_dest file {self.log_path}\n"
            f"log_type error\nlog_type warning\nlog_type notice\n"
            f"{self.extra_config}"
        )
        return conf

    def start(self, timeout: float = 10.0) -> None:
        """Start mosquitto and wait until it accepts connections."""
        if self.process is not None and self.process.poll() is None:
            return
        conf = self.write_config()
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv, our own config
            [mosquitto_binary(), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl; no orphaned brokers
        )
        self._wait_listening(timeout)

    def stop(self, *, kill: bool = False, timeout: float = 10.0) -> None:
        """Stop mosquitto: SIGTERM (it saves its state) or SIGKILL (it does not)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def restart(self, *, kill: bool = False, down_for: float = 0.0) -> None:
        """Stop, optionally stay down for ``down_for`` seconds, and start again on the same port."""
        self.stop(kill=kill)
        if down_for:
            time.sleep(down_for)
        self.start()

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                log = self.log_path.read_text() if self.log_path.exists() else ""
                raise BrokerError(f"mosquitto exited with {self.process.returncode}: {err}{log}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop(kill=True)
        raise BrokerError(f"mosquitto did not listen on {self.host}:{self.port} in {timeout}s")

    def __enter__(self) -> PrivateBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def env_for(broker: PrivateBroker) -> dict[str, str]:
    """Environment variables that point the hub at ``broker`` (as ``hub`` with a policy)."""
    return {**os.environ, "BENCHFLEET_MQTT_URL": broker.url_for(HUB_USER)}


def write_private(path: Path, text: str) -> None:
    """Write a secret file readable by its owner only (0600 from the start)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    path.chmod(0o600)


def connack_code(host: str, port: int, username: str, password: str) -> int:
    """Connect once with MQTT 5 and return the CONNACK reason code (0: accepted)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    result: list[int] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    client.on_connect = lambda _c, _u, _f, code, _p: result.append(int(code.value))
    try:
        client.connect(host, port, keepalive=5)
        deadline = time.monotonic() + 2
        while not result and time.monotonic() < deadline:
            client.loop(0.05)
    except OSError:
        return -1
    finally:
        client.disconnect()
    return result[0] if result else -1
