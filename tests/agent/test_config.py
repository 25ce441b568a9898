"""Station config: the example loads; every problem is a ConfigError naming its field."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import MQTT_URL_ENV, ConfigError, StationConfig, load_station_config

EXAMPLE = Path(__file__).parents[2] / "agent" / "station.example.toml"

VALID = """
station_id = "st-01"
mqtt_url = "mqtt://127.0.0.1:1883"
data_dir = "var/st-01"
[[devices]]
name = "laser-1"
family = "laser"
"""


@pytest.fixture(autouse=True)
def _no_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MQTT_URL_ENV, raising=False)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(text)
    return path


def test_example_config_loads() -> None:
    config = load_station_config(EXAMPLE)
    assert isinstance(config, StationConfig)
    assert config.keepalive_s == 3
    assert [d.family for d in config.devices] == ["laser", "camera"]


def test_defaults(tmp_path: Path) -> None:
    config = load_station_config(write(tmp_path, VALID))
    assert (config.inflight_window, config.resend_after_s, config.telemetry_interval_s) == (
        100,
        5.0,
        5.0,
    )
    assert config.devices[0].backend == "sim"


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (("station_id", '"St 01"'), "station_id", "should match pattern"),
        (("mqtt_url", '"http://x"'), "mqtt_url", "must start with mqtt://"),
        (("mqtt_url", '"mqtt://host:99999"'), "mqtt_url", "invalid port"),
        (("keepalive_s", "1"), "keepalive_s", "greater than or equal to 2"),
        (("keepalive_s", "61"), "keepalive_s", "less than or equal to 60"),
        (("inflight_window", "0"), "inflight_window", "greater than or equal to 1"),
        (("inflight_window", "1001"), "inflight_window", "less than or equal to 1000"),
        (("resend_after_s", "0"), "resend_after_s", "greater than 0"),
        (("telemetry_interval_s", '"soon"'), "telemetry_interval_s", "valid number"),
        (("colour", '"blue"'), "colour", "Extra inputs are not permitted"),
    ],
)
def test_bad_values_name_the_field(
    tmp_path: Path, change: tuple[str, str], field: str, problem: str
) -> None:
    key, value = change
    lines = [line for line in VALID.splitlines() if not line.startswith(f"{key} =")]
    text = f"{key} = {value}\n" + "\n".join(lines)
    with pytest.raises(ConfigError) as caught:
        load_station_config(write(tmp_path, text))
    assert f"{field}: " in str(caught.value)
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("device", "message"),
    [
        (
            'name = "x"\nfamily = "toaster"',
            "devices.0.family: Input should be 'laser', 'scale', 'cleaner' or 'camera'",
        ),
        ('family = "laser"', "devices.0.name: Field required"),
        ('name = "x"\nfamily = "laser"\nspeed = 3', "devices.0.speed: Extra inputs"),
        ('name = ""\nfamily = "laser"', "devices.0.name: String should have at least 1"),
    ],
)
def test_bad_devices_name_the_field(tmp_path: Path, device: str, message: str) -> None:
    text = VALID.split("[[devices]]", maxsplit=1)[0] + "[[devices]]\n" + device + "\n"
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(")):
        load_station_config(write(tmp_path, text))


def test_duplicate_device_names(tmp_path: Path) -> None:
    text = VALID + '[[devices]]\nname = "laser-1"\nfamily = "camera"\n'
    with pytest.raises(
        ConfigError, match="devices: device names must be unique; repeated: laser-1"
    ):
        load_station_config(write(tmp_path, text))


def test_missing_required_fields_are_all_listed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_station_config(write(tmp_path, 'station_id = "st-01"\n'))
    assert "mqtt_url: Field required" in str(caught.value)
    assert "data_dir: Field required" in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_station_config(tmp_path / "nope.toml")


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"TOML syntax error: .*line 3"):
        load_station_config(write(tmp_path, 'station_id = "a"\n\nmqtt_url = = "x"\n'))


def test_env_overrides_mqtt_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MQTT_URL_ENV, "mqtts://st-01:secret@broker.example:8883")
    config = load_station_config(write(tmp_path, VALID))
    assert config.mqtt_url == "mqtts://st-01:secret@broker.example:8883"
    assert config.broker.tls
    assert "secret" not in str(config.broker)


def test_bad_env_url_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MQTT_URL_ENV, "tcp://nowhere")
    with pytest.raises(ConfigError, match="mqtt_url: "):
        load_station_config(write(tmp_path, VALID))


def test_bad_url_error_never_shows_the_password(tmp_path: Path) -> None:
    text = VALID.replace("mqtt://127.0.0.1:1883", "mqtt://st-01:hunter2@host:99999")
    with pytest.raises(ConfigError) as caught:
        load_station_config(write(tmp_path, text))
    assert "mqtt_url: " in str(caught.value)
    assert "hunter2" not in str(caught.value)
