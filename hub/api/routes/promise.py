"""What the floor can promise: completion quotes, published cut-offs, the catalogue."""

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import ValidationError

from hub.api.auth import OrderReader
from hub.api.deps import SessionDep, SettingsDep
from hub.api.order_schemas import PromiseOut
from hub.catalogue import catalogue
from hub.intake import check_line
from hub.order_request import (
    CertificateRequest,
    CleaningRequest,
    DeclaredValue,
    EngravingRequest,
    OrderLine,
    PackagingRequest,
    Piece,
)
from hub.plan import build_steps, estimate_seconds
from hub.promise import cutoffs, quote
from protocol.models import CleaningMethod, utcnow

UNPROCESSABLE = 422  # starlette renamed the constant; the number is the contract
router = APIRouter(tags=["promise"])


@router.get(
    "/promise",
    response_model=PromiseOut,
    summary="Quote a completion time",
    description="When a prospective one-line order would be done if sent now, from the "
    "current queue, the stations able to do it and the published cut-offs. `basis` shows "
    "the numbers behind the quote. `feasible=false` when no online station can do it.",
    responses={422: {"description": "The prospective order itself is impossible."}},
)
async def get_promise(
    *,
    session: SessionDep,
    settings: SettingsDep,
    _: OrderReader,
    sku: str,
    template: str | None = None,
    font: str = "futural",
    text_length: Annotated[int, Query(ge=1, le=200)] = 20,
    cleaning: CleaningMethod | None = None,
    certificate: bool = False,
    box: str | None = None,
    rush: bool = False,
) -> PromiseOut:
    try:
        line = OrderLine(
            piece=Piece(
                sku=sku, serial="prospective", metal="gold", declared_value=DeclaredValue(amount=0)
            ),
            engraving=EngravingRequest(text="x" * text_length, font=font, template=template)
            if template
            else None,
            cleaning=CleaningRequest(method=cleaning) if cleaning else None,
            certificate=CertificateRequest(kind="coa", number="PROSPECTIVE")
            if certificate
            else None,
            packaging=PackagingRequest(box=box) if box else None,
        )
    except ValidationError as err:  # e.g. an empty or 65-character sku (found by schemathesis)
        detail = [
            {"loc": ["query", str(e["loc"][-1])], "msg": e["msg"], "type": e["type"]}
            for e in err.errors(include_url=False, include_input=False)
        ]
        raise HTTPException(UNPROCESSABLE, detail) from err
    # Stones are unknown for a prospective order: only the catalogue checks apply.
    problems = [p for p in check_line(line, (), catalogue()) if p.type != "contraindicated"]
    if problems:
        detail = [{**p.as_detail(), "loc": ["query", str(p.loc[-1])]} for p in problems]
        raise HTTPException(UNPROCESSABLE, detail)
    steps = build_steps(line, weigh=settings.inspection_weighs)
    offer = await quote(
        session,
        steps=steps,
        own_s=estimate_seconds(steps, text_length if template else 0),
        rush=rush,
        now=utcnow(),
        settings=settings,
    )
    return PromiseOut(
        feasible=offer.feasible,
        promised_by=offer.promised_by,
        reason=offer.reason,
        basis=offer.basis,
    )


@router.get(
    "/cutoffs",
    summary="Published cut-off times",
    description="Orders after the cut-off (local time) are promised from the next working day.",
)
async def get_cutoffs(settings: SettingsDep) -> dict[str, Any]:
    return cutoffs(settings)


@router.get(
    "/catalogue",
    summary="SKUs, item templates and packaging",
    description="What intake checks orders against: each SKU's templates, each template's "
    "engraving area, character limit, fonts and positions; boxes and inserts.",
)
async def get_catalogue(_: OrderReader) -> dict[str, Any]:
    cat = catalogue()
    return {
        "skus": {sku: list(templates) for sku, templates in cat.skus.items()},
        "templates": {
            t.id: {
                "area_mm": list(t.area_mm),
                "max_chars": t.max_chars,
                "fonts": list(t.fonts),
                "positions": list(t.positions),
            }
            for t in cat.templates.values()
        },
        "boxes": sorted(cat.boxes),
        "inserts": sorted(cat.inserts),
    }
