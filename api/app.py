"""Build the FastAPI app: connections in the lifespan, the routers and the error handlers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import admin, health, jobs, metrics
from api.auth import AuthSettings
from api.backends import Backends
from api.errors import EXCEPTION_HANDLERS
from videoq.settings import Settings

logger = logging.getLogger("videoq.api")


def create_app(settings: Settings, auth_settings: AuthSettings | None = None) -> FastAPI:
    """Build the API for ``settings``; ``auth_settings`` defaults to the VIDEOQ_JWT_* variables.

    The app connects to Temporal and PostgreSQL when it starts. A backend that is down then
    does not stop it: requests that need that backend get a 503 response until a later
    request reconnects.

    Raises:
        pydantic.ValidationError: VIDEOQ_JWT_SECRET is unset or shorter than 32 characters.
    """
    auth_settings = auth_settings or AuthSettings()
    backends = Backends(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await backends.start()
        logger.info("API started", extra={"action": "api_started"})
        try:
            yield
        finally:
            await backends.close()
            logger.info("API stopped", extra={"action": "api_stopped"})

    app = FastAPI(
        title="videoq",
        summary="Queue explainer-video jobs, follow their position and download the videos.",
        version="1",
        lifespan=lifespan,
    )
    app.state.backends = backends
    app.state.auth_settings = auth_settings
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(admin.router)
    app.include_router(metrics.router)
    app.mount(admin.STATIC_PATH, admin.static_files(), name="admin-static")
    for exception, handler in EXCEPTION_HANDLERS.items():
        app.add_exception_handler(exception, handler)
    return app
