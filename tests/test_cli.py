"""The `benchfleet` command line: help that helps, and `devices scan` against a simulator."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from benchfleet.cli import app
from drivers.scale.sim import MtSicsSimulator

runner = CliRunner()


def test_help_lists_every_subcommand() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("hub", "agent", "demo", "audit", "devices"):
        assert command in result.output


def test_devices_scan_names_a_scale_on_a_pty() -> None:
    simulator = MtSicsSimulator()
    port = simulator.start()
    try:
        result = runner.invoke(
            app, ["devices", "scan", "--port", port, "--within", "2"], env={"COLUMNS": "200"}
        )
    finally:
        simulator.stop()
    assert result.exit_code == 0, result.output
    assert "scale/mtsics" in result.output


def test_a_bad_station_config_names_the_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('station_id = "ST 1"\nmqtt_url = "mqtt://x"\ndata_dir = "d"\n')
    result = runner.invoke(app, ["agent", "-c", str(config)])
    assert result.exit_code == 2
    assert "station_id" in result.output
