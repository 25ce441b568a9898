"""Prometheus scrape endpoint."""

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

router = APIRouter(prefix="/metrics", tags=["metrics"])


@router.get(
    "",
    summary="Prometheus metrics",
    description="Text exposition format: messages, rejections, duplicates, job transitions, "
    "stations online.",
    response_class=Response,
)
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
