"""The ``/healthz`` route: whether Temporal and the projection database respond."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response, status

from api.backends import BackendsDependency
from api.models import Health

router = APIRouter(tags=["health"])

OK = "ok"
UNAVAILABLE = "unavailable"


@router.get("/healthz", responses={503: {"model": Health, "description": "A backend is down."}})
async def health(backends: BackendsDependency, response: Response) -> Health:
    """Check both backends; 200 when both respond, else 503 naming the one that does not."""
    temporal_ok, database_ok = await asyncio.gather(
        backends.check_temporal(), backends.check_database()
    )
    if not (temporal_ok and database_ok):
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(
        status=OK if temporal_ok and database_ok else UNAVAILABLE,
        temporal=OK if temporal_ok else UNAVAILABLE,
        database=OK if database_ok else UNAVAILABLE,
    )
