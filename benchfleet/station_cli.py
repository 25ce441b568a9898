"""``benchfleet station``: station-side administration (technicians who may sign in)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

station_app = typer.Typer(
    help="Station administration (run on the station PC).", no_args_is_help=True
)


@station_app.command("add-technician")
def add_technician_command(
    badge: Annotated[str, typer.Argument(help="Badge id (letters, digits, - and _).")],
    name: Annotated[str, typer.Argument(help="The technician's name, shown on the screen.")],
    config: Annotated[Path, typer.Option("--config", "-c", help="The station's TOML config.")],
    role: Annotated[list[str] | None, typer.Option(help="Role (repeatable).")] = None,
) -> None:
    """Add a technician to the station's technicians file; asks for the PIN twice."""
    from agent.config import ConfigError, load_station_config
    from agent.technicians import TechniciansError, add_technician, check_pin_format

    try:
        path = load_station_config(config).technicians_path
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    pin = typer.prompt("PIN (4-12 digits)", hide_input=True, confirmation_prompt=True)
    try:
        check_pin_format(pin)
        add_technician(path, badge, name, pin, role or ["technician"])
    except (ValueError, TechniciansError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"technician {badge} added to {path}")


# Hub-side identity commands (enroll, revoke, list): benchfleet/enroll_cli.py.
from benchfleet.enroll_cli import register  # noqa: E402

register(station_app)
