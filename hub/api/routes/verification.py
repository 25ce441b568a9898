"""Engraving verification over HTTP: check a photo now, read a job's verifications, fetch a
proof photo. Read texts, diffs and photos show the engraving (personal data): floor roles only,
never integrators; nothing here logs them."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Path, UploadFile, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from hub.api.auth import FloorReader, Reviewer
from hub.api.deps import LinkDep, SessionDep, SettingsDep
from hub.pii import REDACTED
from hub.proofs import ProofConfig, proof_path
from hub.store.models import Job
from hub.store.proofs_tables import ProofRecord, VerificationRecord
from hub.verification import BadImageError, LayoutError, VerificationResult
from hub.verification_runner import run_verification

router = APIRouter(tags=["verification"])
MAX_TEXT = 200


class VerificationOut(BaseModel):
    """One stored verification of a job step's proof photo."""

    model_config = ConfigDict(from_attributes=True)

    job_id: uuid.UUID | None
    step: str | None
    proof_sha256: str
    verdict: str
    read_text: str
    diff: list[dict[str, Any]]
    reasons: list[str]
    engine: str
    elapsed_ms: float
    at: datetime


@router.post(
    "/verify",
    response_model=VerificationResult,
    summary="Verify a photo against a text",
    description="Reads the uploaded PNG/JPEG (multipart field `image`) against `text` "
    "(case-sensitive; optional `font` and `template`) in the hub's OCR worker pool and returns "
    "the verdict: PASS (every character confirmed), FAIL (a definite difference, see `diff`) or "
    "REVIEW (not sure). Nothing is stored.",
    responses={
        413: {"description": "Image larger than the hub's proof limit."},
        422: {"description": "Not a decodable image, or a text the font cannot render."},
    },
)
async def verify_photo(  # noqa: PLR0917 - FastAPI passes dependencies and form fields by name
    link: LinkDep,
    settings: SettingsDep,
    _: FloorReader,
    image: Annotated[UploadFile, File(description="The photo (PNG or JPEG).")],
    text: Annotated[str, Form(min_length=1, max_length=MAX_TEXT)],
    font: Annotated[str | None, Form(max_length=64)] = None,
    template: Annotated[str | None, Form(max_length=64)] = None,
) -> VerificationResult:
    data = await image.read(settings.proof_max_bytes + 1)
    if len(data) > settings.proof_max_bytes:
        raise HTTPException(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            f"image larger than {settings.proof_max_bytes} bytes",
        )
    try:
        return await run_verification(
            link.verifier.executor, data, text=text, font=font, template=template
        )
    except (BadImageError, LayoutError) as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err


@router.get(
    "/jobs/{job_id}/verification",
    response_model=list[VerificationOut],
    summary="A job's engraving verifications",
    description="Every verification of the job's proof photos, oldest first (empty while the "
    "job waits for its proof). `read_text` and `diff` spell the engraving: shown to reviewers "
    "(docs/security.md), blanked for other callers.",
    responses={404: {"description": "No such job."}},
)
async def job_verifications(
    job_id: uuid.UUID, session: SessionDep, principal: Reviewer
) -> list[VerificationOut]:
    job = await session.get(Job, job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id}")
    rows = await session.scalars(
        select(VerificationRecord)
        .where(VerificationRecord.job_id == job_id)
        .order_by(VerificationRecord.id)
    )
    found = [VerificationOut.model_validate(row) for row in rows]
    if principal.sees_personal_data(job.station_id):
        return found
    # Verdicts and reasons, not what was read: that spells the engraving.
    return [v.model_copy(update={"read_text": REDACTED, "diff": []}) for v in found]


@router.get(
    "/proofs/{sha256}",
    summary="A proof photo",
    description="The stored image whose SHA-256 is `sha256` (content-addressed: the bytes hash "
    "to the name).",
    response_class=FileResponse,
    responses={
        403: {"description": "Not a reviewer of this station's work."},
        404: {"description": "No complete proof with this hash (or it expired)."},
    },
)
async def get_proof(
    sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    session: SessionDep,
    settings: SettingsDep,
    principal: Reviewer,
) -> FileResponse:
    record = await session.get(ProofRecord, sha256)
    if record is not None and not principal.sees_personal_data(record.station_id):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "proof photos are for reviewers (docs/security.md)"
        )
    path = (
        proof_path(ProofConfig.from_settings(settings).proofs_dir, sha256, record.content_type)
        if record
        else None
    )
    if record is None or path is None or not path.exists():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no proof {sha256}")
    return FileResponse(path, media_type=record.content_type)
