"""Operators (auto and screen), the queue order, and `benchfleet station add-technician`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from typer.testing import CliRunner

from agent.operator import AutoOperator, OperatorAbort, ScreenOperator, operator_for, queue_key
from agent.technicians import TechnicianBook, load_technicians
from benchfleet.cli import app
from protocol.models import JobAssignment, Piece, StationJobStatus, StepKind, StepSpec

STEP = StepSpec(name="pack", kind=StepKind.MANUAL, signoff_required=True)


def job(**fields: object) -> JobAssignment:
    return JobAssignment(
        job_id=uuid4(), version=1, order_ref="o", piece=Piece(sku="s", serial="n"),
        steps=[STEP], **fields,
    )  # fmt: skip


@pytest.mark.asyncio
async def test_auto_operator_signs_only_when_configured() -> None:
    signing = AutoOperator("st-01", signs=True)
    assert (await signing.signoff(job(), STEP)).by == "auto:st-01"
    silent = AutoOperator("st-01", signs=False)
    assert not silent.can_sign
    with pytest.raises(OperatorAbort):
        await silent.signoff(job(), STEP)


@pytest.mark.asyncio
async def test_screen_operator_waits_for_the_matching_answer() -> None:
    operator, assignment = ScreenOperator(), job()
    waiting = asyncio.create_task(operator.signoff(assignment, STEP))
    await asyncio.sleep(0)
    assert operator.resolve(assignment.job_id, "pack", "ready", "B1") is not None
    assert operator.resolve(uuid4(), "pack", "signoff", "B1") is not None
    assert not waiting.done()
    assert operator.resolve(assignment.job_id, "pack", "signoff", "B1") is None
    assert (await waiting).by == "B1"
    assert operator.request is None


@pytest.mark.asyncio
async def test_screen_operator_abort_reaches_the_runner() -> None:
    operator, assignment = ScreenOperator(), job()
    waiting = asyncio.create_task(operator.acknowledge(assignment))
    await asyncio.sleep(0)
    abort = OperatorAbort(StationJobStatus.BLOCKED, "blocked by B1: loose stone")
    assert operator.abort(assignment.job_id, abort)
    with pytest.raises(OperatorAbort, match="loose stone"):
        await waiting


def test_operator_from_config() -> None:
    class Config:
        station_id, operator, auto_signoff = "st-01", "screen", False

    assert isinstance(operator_for(Config()), ScreenOperator)
    Config.operator, Config.auto_signoff = "auto", True
    chosen = operator_for(Config())
    assert isinstance(chosen, AutoOperator)
    assert chosen.can_sign


def test_queue_order_rush_then_due_date() -> None:
    soon = datetime(2026, 1, 1, tzinfo=UTC)
    later, rush, undated = job(due_at=soon + timedelta(days=1)), job(rush=True), job()
    early = job(due_at=soon)
    ordered = sorted([undated, later, early, rush], key=queue_key)
    assert ordered == [rush, early, later, undated]


def test_add_technician_command(tmp_path: Path) -> None:
    config = tmp_path / "station.toml"
    config.write_text(
        f'station_id = "st-01"\nmqtt_url = "mqtt://127.0.0.1:1883"\ndata_dir = "{tmp_path}"\n'
    )
    runner = CliRunner()
    args = ["station", "add-technician", "B42", "Ana Test", "--config", str(config)]
    result = runner.invoke(app, args, input="2468\n2468\n")
    assert result.exit_code == 0, result.output
    people = load_technicians(tmp_path / "technicians.toml")
    assert people["B42"].name == "Ana Test"
    assert TechnicianBook(tmp_path / "technicians.toml").sign_in("B42", "2468").badge == "B42"
    again = runner.invoke(app, args, input="2468\n2468\n")
    assert again.exit_code == 2
    assert "already registered" in again.output
    mismatch = runner.invoke(app, [*args[:2], "B43", "Bo", *args[4:]], input="1111\n2222\n")
    assert mismatch.exit_code != 0
    assert "B43" not in load_technicians(tmp_path / "technicians.toml")
