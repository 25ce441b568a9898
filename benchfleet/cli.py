"""``benchfleet``: one command with a subcommand per process (hub, agent, demo).

Each subcommand imports its package only when it runs, so `benchfleet agent` on a station PC
never loads the hub's web stack.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="benchfleet: edge agents and a hub for jewelry VAS stations (see README.md).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

LogLevel = Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")]


def _setup_logging(level: str) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=level.upper(),
        format="%(name)s: %(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(show_path=False, rich_tracebacks=True)],
    )
    # Known personal values (engraving texts, gift messages) never reach a log line.
    from protocol.redaction import install

    install()


@app.command()
def hub(
    http_host: Annotated[
        str | None, typer.Option(help="Address the API listens on [env BENCHFLEET_HTTP_HOST].")
    ] = None,
    http_port: Annotated[
        int | None, typer.Option(help="Port the API listens on [env BENCHFLEET_HTTP_PORT].")
    ] = None,
    log_level: LogLevel = "info",
) -> None:
    """Run the hub: MQTT ingest, job engine, REST API.

    Settings come from BENCHFLEET_* environment variables or a .env file
    (deploy/hub.env.example lists them); the options here override them.
    """
    _setup_logging(log_level)
    from pydantic import ValidationError

    from hub.app import run_hub
    from hub.settings import HubSettings

    overrides = {k: v for k, v in {"http_host": http_host, "http_port": http_port}.items() if v}
    try:
        settings = HubSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as err:
        typer.secho(f"invalid hub settings:\n{err}", fg="red", err=True)
        raise typer.Exit(2) from err
    run_hub(settings)


@app.command()
def agent(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Station config file (TOML).", exists=True)
    ],
    log_level: LogLevel = "info",
) -> None:
    """Run one station agent: devices, job runner, MQTT link with a durable outbox."""
    _setup_logging(log_level)
    from agent.config import ConfigError, load_station_config
    from agent.main import run_agent

    try:
        station = load_station_config(config)
    except ConfigError as err:
        typer.secho(f"invalid station config {config}:\n{err}", fg="red", err=True)
        raise typer.Exit(2) from err
    run_agent(station)


@app.command()
def demo(
    stations: Annotated[int, typer.Option(min=1, max=20, help="Simulated stations.")] = 3,
    data_dir: Annotated[Path, typer.Option(help="Where broker, hub and agents keep state.")] = Path(
        "var/demo"
    ),
    http_port: Annotated[int, typer.Option(help="Hub API port (0: pick a free one).")] = 8000,
    fresh: Annotated[bool, typer.Option(help="Delete the data directory first.")] = False,
) -> None:
    """Run the whole floor on embedded defaults until Ctrl-C.

    Starts a private mosquitto, the hub on SQLite and simulated stations, and prints where
    to look.
    """
    from benchfleet.demo import run_demo

    raise typer.Exit(
        run_demo(stations=stations, data_dir=data_dir, http_port=http_port, fresh=fresh)
    )


@app.command()
def verify(
    image: Annotated[
        Path, typer.Argument(help="Photo of the engraving (PNG or JPEG).", dir_okay=False)
    ],
    text: Annotated[
        str, typer.Option("--text", help="The ordered text, exactly (case and spaces count).")
    ],
    font: Annotated[
        str | None,
        typer.Option(
            help="Hershey font (e.g. futural) or a .ttf/.otf path [default: the "
            "template's first font]."
        ),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(help="Item template id (e.g. ring_band) [default: search the whole photo]."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (verdict, read_text, diff, ...).")
    ] = False,
) -> None:
    """Check a photo of an engraving against the ordered text, as the hub does.

    PASS means every character was confirmed; FAIL a definite difference (shown per
    character); REVIEW not sure (nothing found, low confidence, glare): retake or ask a person.

    Exit codes: 0 PASS, 1 FAIL, 3 REVIEW, 4 the image or text cannot be used, 2 bad usage.
    """
    from benchfleet.verify_cli import run_verify

    raise typer.Exit(run_verify(image, text=text, font=font, template=template, as_json=as_json))


audit_app = typer.Typer(help="The hub's hash-chained audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    database_url: Annotated[
        str | None,
        typer.Option(help="The hub database [default: the hub's settings, BENCHFLEET_*]."),
    ] = None,
) -> None:
    """Check every entry of the audit chain: exit 0 when intact, 1 naming the first entry
    that was altered, removed or inserted."""
    from hub.audit import verify_database
    from hub.settings import HubSettings

    url = database_url or HubSettings().effective_database_url
    verdict = verify_database(url)
    if verdict.ok:
        typer.echo(f"audit chain intact: {verdict.entries} entries, head {verdict.head_hash}")
        return
    typer.secho(
        f"audit chain BROKEN at entry {verdict.bad_seq}: {verdict.problem} "
        f"({verdict.entries} entries verified before it)",
        fg="red",
        err=True,
    )
    raise typer.Exit(1)


pii_app = typer.Typer(help="Personal data the hub holds.", no_args_is_help=True)
app.add_typer(pii_app, name="pii")


@pii_app.command("expire")
def pii_expire(
    database_url: Annotated[
        str | None,
        typer.Option(help="The hub database [default: the hub's settings, BENCHFLEET_*]."),
    ] = None,
) -> None:
    """Expire personal data now, as the hub's sweeper does every pii_expiry_every_s: texts of
    orders finished more than pii_retention_days ago become their SHA-256, proof photos older
    than proof_retention_days are deleted; the audit chain keeps the hashes."""
    import asyncio

    from hub.pii import run_expiry
    from hub.settings import HubSettings

    settings = HubSettings()
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    report = asyncio.run(run_expiry(settings))
    typer.echo(
        f"expired: {report.orders} order(s), {report.texts} text(s), "
        f"{report.verifications} verification read-back(s), {report.proofs} proof photo(s), "
        f"{report.chunks} stalled chunk(s)"
    )


devices_app = typer.Typer(help="Serial devices on this machine.", no_args_is_help=True)
app.add_typer(devices_app, name="devices")

from benchfleet.station_cli import station_app  # noqa: E402  (typer only: imports stay lazy)

app.add_typer(station_app, name="station")


@devices_app.command("scan")
def devices_scan(
    probe: Annotated[
        bool,
        typer.Option(
            help="Also open each port and try the drivers' handshakes (sends bytes: never on a "
            "port a running agent uses)."
        ),
    ] = False,
    port: Annotated[
        list[str] | None,
        typer.Option("--port", help="Probe this port or URL too (e.g. a pty or socket://)."),
    ] = None,
    within: Annotated[float, typer.Option(help="Seconds each handshake may take.")] = 3.0,
) -> None:
    """List serial ports with their USB identity; with --probe, say what answers on each."""
    import asyncio

    from rich.console import Console
    from rich.table import Table

    from drivers.scan import list_serial_ports
    from drivers.scan import probe as probe_port

    listed = list_serial_ports()
    urls = [p.device for p in listed] if probe else []
    urls += [u for u in port or [] if u not in urls]
    found = {u: asyncio.run(probe_port(u, within=within)) for u in urls}
    table = Table("port", "USB VID:PID", "serial number", "description", "answers as")
    known = {p.device: p for p in listed}
    for url in [p.device for p in listed] + [u for u in urls if u not in known]:
        info, result = known.get(url), found.get(url)
        usb = (info.usb_id, info.serial_number, info.description) if info else ("", "", "")
        table.add_row(url, *usb, result.summary if result else "(not probed)")
    Console().print(table if table.rows else "no serial ports found")


def main() -> None:
    """Console-script entry point."""
    app()
