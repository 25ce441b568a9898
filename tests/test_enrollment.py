"""`benchfleet station enroll | revoke | list` against a real mosquitto and a real database."""

from __future__ import annotations

import signal
import stat
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.config import load_station_config
from benchfleet.broker import PrivateBroker, connack_code, password_line
from benchfleet.cli import app
from hub.audit import verify_database
from hub.settings import DEV_STATION_KEY_SECRET
from protocol import auth

pytestmark = pytest.mark.broker
runner = CliRunner()


def reload(broker: PrivateBroker) -> None:
    assert broker.process is not None
    broker.process.send_signal(signal.SIGHUP)
    time.sleep(0.5)  # mosquitto re-reads its password file between network loops


def test_our_password_line_is_mosquitto_passwd_format() -> None:
    line = password_line("st-01", "secret", salt=b"0123456789ab")
    user, rest = line.split(":", 1)
    _, scheme, iterations, salt, digest = rest.split("$")
    assert (user, scheme, iterations) == ("st-01", "7", "101")
    assert len(salt) == 16  # 12 bytes base64, as mosquitto_passwd writes them
    assert len(digest) == 88  # 64 bytes of PBKDF2-SHA512


def test_enroll_connect_revoke_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCHFLEET_STATION_KEY_SECRET", DEV_STATION_KEY_SECRET)
    db_url = f"sqlite:///{tmp_path / 'hub.db'}"
    out = tmp_path / "out"
    with PrivateBroker(tmp_path / "broker", policy=True) as broker:
        passwd = broker.workdir / "passwd"
        common = ["--database-url", db_url, "--password-file", str(passwd), "--by", "alice"]
        result = runner.invoke(
            app,
            ["station", "enroll", "st-07", "--out", str(out), "--broker", broker.url, *common],
        )
        assert result.exit_code == 0, result.output
        assert "key generation 1" in result.output

        files = [out / "st-07.toml", out / "st-07.key", out / "st-07.passwd", passwd]
        assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in files)
        config = load_station_config(out / "st-07.toml")
        assert config.message_key() == (
            auth.station_key(DEV_STATION_KEY_SECRET.encode(), "st-07", 1),
            1,
        )
        creds = config.broker
        assert creds.username == "st-07"
        assert creds.password is not None
        reload(broker)
        assert connack_code(broker.host, broker.port, "st-07", creds.password) == 0

        again = runner.invoke(app, ["station", "enroll", "st-07", "--out", str(out), *common])
        assert again.exit_code == 1
        assert "already enrolled" in again.output

        result = runner.invoke(app, ["station", "revoke", "st-07", *common])
        assert result.exit_code == 0, result.output
        assert "generation 1 no longer verifies" in result.output
        assert "st-07:" not in passwd.read_text()
        reload(broker)
        assert connack_code(broker.host, broker.port, "st-07", creds.password) == 0x87

    listed = runner.invoke(app, ["station", "list", "--database-url", db_url])
    assert listed.exit_code == 0, listed.output
    assert "st-07\tgen 1\tenrolled" in listed.output
    assert "by alice" in listed.output
    assert "revoked -" not in listed.output
    verdict = verify_database(db_url)
    assert verdict.ok
    assert verdict.entries == 2  # station_enrolled, station_revoked


def test_enroll_refuses_bad_names(tmp_path: Path) -> None:
    for bad in ("hub", "St 1", "a/b"):
        result = runner.invoke(app, ["station", "enroll", bad, "--out", str(tmp_path)])
        assert result.exit_code == 2
        assert "must match" in result.output
    assert list(tmp_path.iterdir()) == []
