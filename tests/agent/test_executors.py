"""The weigh, clean and scan executors against the real drivers and their simulators."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from agent.config import DeviceConfig
from agent.executors import CleanExecutor, ScanExecutor, WeighExecutor
from agent.steps import StepContext, StepError
from drivers.camera.barcode import make_code_png
from drivers.cleaner.config import FIRMWARE_CONFIGS
from protocol.models import JobAssignment, Piece, StepKind, StepSpec

QUICK_PROGRAM = """
[programs.quick]
duration_s = 0.5
max_temp_c = 60
"""


def quick_cleaner_config(tmp_path: Path) -> Path:
    base = (FIRMWARE_CONFIGS / "generic-relay-pt100.toml").read_text()
    path = tmp_path / "cleaner.toml"
    path.write_text(base + QUICK_PROGRAM)
    return path


def step_context(ctx: Any, step: StepSpec, tmp_path: Path) -> StepContext:
    assignment = JobAssignment(
        job_id=uuid.uuid4(),
        version=1,
        order_ref="o-1",
        piece=Piece(sku="RING", serial="SN1"),
        steps=[step],
    )
    return StepContext(
        job_id=assignment.job_id,
        assignment=assignment,
        devices=ctx.devices,
        proofs_dir=tmp_path / "proofs",
    )


@pytest.mark.asyncio
async def test_weigh_reports_a_stable_weight_in_grams(make_context: Any, tmp_path: Path) -> None:
    ctx = await make_context(
        devices=[DeviceConfig(name="scale", family="scale", backend="sim", options={"load_g": 4.2})]
    )
    step = StepSpec(name="inspect_in_weight", kind=StepKind.WEIGH, evidence=["weight"])
    executor = WeighExecutor()
    assert executor.missing(step, ctx.devices) is None
    [evidence] = await executor.execute(step, step_context(ctx, step, tmp_path))
    assert evidence.kind == "weight"
    assert evidence.unit == "g"
    assert evidence.value == pytest.approx(4.2, abs=0.01)


@pytest.mark.asyncio
async def test_clean_runs_the_named_program_and_refuses_an_unknown_one(
    make_context: Any, tmp_path: Path
) -> None:
    options = {"config_path": str(quick_cleaner_config(tmp_path)), "time_scale": 60}
    ctx = await make_context(
        devices=[DeviceConfig(name="cleaner", family="cleaner", backend="sim", options=options)]
    )
    executor = CleanExecutor()
    unknown = StepSpec(name="clean", kind=StepKind.CLEAN, params={"program": "sparkle"})
    reason = executor.refusal(unknown, step_context(ctx, unknown, tmp_path))
    assert reason is not None
    assert "sparkle" in reason
    quick = StepSpec(name="clean", kind=StepKind.CLEAN, params={"program": "quick"})
    assert executor.refusal(quick, step_context(ctx, quick, tmp_path)) is None
    assert await executor.execute(quick, step_context(ctx, quick, tmp_path)) == []


@pytest.mark.asyncio
async def test_scan_reads_the_certificate_code_and_keeps_the_photo(
    make_context: Any, tmp_path: Path
) -> None:
    label = tmp_path / "label.png"
    label.write_bytes(make_code_png("GIA 2141438167"))
    camera = DeviceConfig(
        name="camera", family="camera", backend="sim", options={"scene_path": str(label)}
    )
    ctx = await make_context(devices=[camera])
    step = StepSpec(name="certificate_match", kind=StepKind.SCAN, evidence=["scan"])
    photo, scan = await ScanExecutor().execute(step, step_context(ctx, step, tmp_path))
    assert scan.code == "GIA 2141438167"
    assert (tmp_path / "proofs" / f"{photo.sha256}.png").exists()


@pytest.mark.asyncio
async def test_scan_without_a_code_in_view_is_a_step_error(
    make_context: Any, tmp_path: Path
) -> None:
    ctx = await make_context(devices=[DeviceConfig(name="camera", family="camera")])
    step = StepSpec(name="certificate_match", kind=StepKind.SCAN, evidence=["scan"])
    with pytest.raises(StepError, match="no readable code"):
        await ScanExecutor().execute(step, step_context(ctx, step, tmp_path))
