"""Prometheus scrape endpoint."""

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from hub.api.auth import FloorReader

router = APIRouter(prefix="/metrics", tags=["metrics"])


@router.get(
    "",
    summary="Prometheus metrics",
    description="Text exposition format: messages, rejections, duplicates, job transitions, "
    "stations online. Needs a floor key (Prometheus: `authorization: {credentials: <key>}`).",
    response_class=Response,
)
async def metrics(_: FloorReader) -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
