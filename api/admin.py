"""The admin routes: queue statistics at ``/v1/admin/stats`` and the dashboard at ``/admin``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api import errors
from api.auth import CurrentUser, User
from api.backends import BackendsDependency
from api.stats import AdminStats, read_stats
from videoq.jobs import Engine, JobStatus

router = APIRouter(tags=["admin"])

STATIC_DIR = Path(__file__).resolve().parent / "static"
# URL path at which app.py mounts STATIC_DIR. admin.html loads its script and style sheet from it.
STATIC_PATH = "/admin/static"
ADMIN_ONLY_STATS = "only admins can read queue statistics"
# The page may load and call only this origin. Links to the Temporal Web UI still work,
# because CSP does not restrict where links lead.
DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def require_admin(user: CurrentUser) -> User:
    """Return the caller if the token has role admin; no token is a 401, another role a 403."""
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, ADMIN_ONLY_STATS)
    return user


AdminUser = Annotated[User, Depends(require_admin)]


@router.get("/v1/admin/stats")
async def get_stats(
    user: AdminUser,
    backends: BackendsDependency,
    status_filter: Annotated[JobStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AdminStats:
    """Return the queue's figures now and over the last hour, with a page of recent jobs.

    ``status``, ``limit`` and ``offset`` select the page of jobs. The projection database is
    required (503 without it). Temporal is not: without it the capacity assumes one worker per
    engine, as the queue positions do.
    """
    pool = await backends.database()
    try:
        client = await backends.temporal()
    except errors.TemporalUnavailable:
        client = None
    worker_counts = await asyncio.gather(
        *(backends.render_workers.count(client, engine) for engine in Engine)
    )
    return await read_stats(
        pool,
        backends.settings,
        dict(zip(Engine, worker_counts, strict=True)),
        now=datetime.now(UTC),
        status=status_filter,
        limit=limit,
        offset=offset,
    )


@router.get("/admin", include_in_schema=False)
async def dashboard() -> FileResponse:
    """Send the dashboard page, which prompts for an admin token and calls the API with it."""
    return FileResponse(
        STATIC_DIR / "admin.html",
        media_type="text/html",
        headers={"Content-Security-Policy": DASHBOARD_CSP, "Cache-Control": "no-cache"},
    )


def static_files() -> StaticFiles:
    """Build the app that serves the dashboard's script and style sheet at STATIC_PATH."""
    return StaticFiles(directory=STATIC_DIR)
