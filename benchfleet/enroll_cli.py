"""``benchfleet station enroll | revoke | list``: a station's broker identity and message key.

``enroll`` records the station in the hub's database (a new key generation, audited) and writes,
all 0600, into ``--out``: the station config (broker URL with its credentials, ``key_file``),
the key file and the mosquitto password-file line; with ``--password-file`` the line also goes
into the broker's password file. ``revoke`` bumps the generation (the old key stops verifying
at the hub within seconds) and removes the station's line from ``--password-file``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from benchfleet.broker import HUB_USER, credentials_url, password_line, write_private

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")

DatabaseUrl = Annotated[
    str | None, typer.Option(help="The hub database [default: the hub's settings, BENCHFLEET_*].")
]
PasswordFile = Annotated[
    Path | None,
    typer.Option(help="The broker's mosquitto password file to update (reload mosquitto after)."),
]
By = Annotated[str, typer.Option("--by", help="Who does this (recorded in the audit log).")]


def _run_db(database_url: str | None, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction on the hub database (migrated to head first); a refused
    enrollment change is one red line and exit status 1, not a traceback."""
    from hub.enrollment import EnrollmentError
    from hub.settings import HubSettings
    from hub.store.engine import create_hub_engine, session_factory
    from hub.store.migrate import upgrade_to_head

    url = database_url or HubSettings().effective_database_url
    upgrade_to_head(url)

    async def run() -> T:
        engine = create_hub_engine(url)
        try:
            async with session_factory(engine).begin() as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except EnrollmentError as err:
        typer.secho(str(err), fg="red", err=True)
        raise typer.Exit(1) from err


def update_password_file(path: Path, username: str, line: str | None) -> None:
    """Replace (or, with ``line`` None, remove) ``username``'s line in a mosquitto password file."""
    existing = path.read_text().splitlines() if path.exists() else []
    kept = [row for row in existing if row.split(":", 1)[0] != username]
    if line is not None:
        kept.append(line)
    write_private(path, "".join(f"{row}\n" for row in kept))


def station_toml(station_id: str, broker_url: str, key_file: Path) -> str:
    """A station config in the shape of agent/station.example.toml, devices still to add."""
    return (
        f"# written by `benchfleet station enroll {station_id}`; holds the station's broker\n"
        "# password: keep it 0600. Add this station's [[devices]] (agent/station.example.toml).\n"
        f'station_id = "{station_id}"\n'
        f'mqtt_url = "{broker_url}"\n'
        f'key_file = "{key_file}"\n'
        f'data_dir = "var/station-{station_id}"\n'
        "keepalive_s = 3\n"
    )


def _check_name(name: str) -> None:
    from protocol.topics import STATION_ID_PATTERN, is_valid_station_id

    if not is_valid_station_id(name) or name == HUB_USER:
        typer.secho(
            f"station id {name!r} must match {STATION_ID_PATTERN} and not be {HUB_USER!r}",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)


def enroll_command(  # noqa: PLR0917 - typer options are parameters
    name: Annotated[str, typer.Argument(help="The station id (its MQTT username).")],
    out: Annotated[Path, typer.Option(help="Where to write the station's files.")] = Path("."),
    broker: Annotated[
        str, typer.Option(help="The broker URL the station dials.")
    ] = "mqtts://broker.example:8883",
    database_url: DatabaseUrl = None,
    password_file: PasswordFile = None,
    by: By = "cli",
) -> None:
    """Enroll a station: new broker password and message key, config written 0600."""
    from hub.enrollment import enroll
    from hub.settings import HubSettings
    from protocol import auth
    from protocol.models import utcnow

    _check_name(name)
    master = HubSettings().station_key_secret.get_secret_value().encode()
    password = secrets.token_urlsafe(24)
    line = password_line(name, password)
    out.mkdir(parents=True, exist_ok=True)
    key_file = (out / f"{name}.key").resolve()

    async def work(session: AsyncSession) -> int:
        generation = await enroll(session, station_id=name, by=by, now=utcnow())
        # Files are written inside the transaction: a failure leaves no enrollment behind.
        write_private(
            key_file, auth.key_to_hex(auth.station_key(master, name, generation), generation)
        )
        url = credentials_url(broker, name, password)
        write_private(out / f"{name}.toml", station_toml(name, url, key_file))
        write_private(out / f"{name}.passwd", f"{line}\n")
        if password_file is not None:
            update_password_file(password_file, name, line)
        return generation

    generation = _run_db(database_url, work)
    typer.echo(f"enrolled {name} (key generation {generation}); files in {out.resolve()}:")
    typer.echo(f"  {name}.toml    station config (broker credentials, key_file)")
    typer.echo(f"  {name}.key     message key")
    typer.echo(f"  {name}.passwd  line for the broker's password file")
    where = password_file or "the broker's password file"
    typer.echo(f"Then reload mosquitto so it reads {where} (systemctl reload mosquitto).")


def revoke_command(
    name: Annotated[str, typer.Argument(help="The station id.")],
    database_url: DatabaseUrl = None,
    password_file: PasswordFile = None,
    by: By = "cli",
) -> None:
    """Revoke a station: its key stops verifying, its broker password is removed."""
    from hub.enrollment import revoke
    from protocol.models import utcnow

    _check_name(name)

    async def work(session: AsyncSession) -> int:
        generation = await revoke(session, station_id=name, by=by, now=utcnow())
        if password_file is not None:
            update_password_file(password_file, name, None)
        return generation

    generation = _run_db(database_url, work)
    typer.echo(f"revoked {name}: key generation {generation} no longer verifies.")
    if password_file is not None:
        typer.echo(f"Removed from {password_file}: reload mosquitto to drop its access.")


def list_command(database_url: DatabaseUrl = None) -> None:
    """List enrollments: station, key generation, when, by whom, revoked."""
    from hub.enrollment import list_enrollments

    async def work(session: AsyncSession) -> list[tuple[str, int, str, str, str]]:
        return [
            (
                row.station_id,
                row.generation,
                row.enrolled_at.isoformat(timespec="seconds"),
                row.by,
                row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else "-",
            )
            for row in await list_enrollments(session)
        ]

    rows = _run_db(database_url, work)
    if not rows:
        typer.echo("no stations enrolled")
    for station_id, generation, enrolled_at, by, revoked in rows:
        typer.echo(
            f"{station_id}\tgen {generation}\tenrolled {enrolled_at} by {by}\trevoked {revoked}"
        )


def register(app: typer.Typer) -> None:
    """Add enroll, revoke and list to the ``benchfleet station`` command group."""
    app.command("enroll")(enroll_command)
    app.command("revoke")(revoke_command)
    app.command("list")(list_command)
