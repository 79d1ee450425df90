"""API fixtures: the app on a test's settings and database, tokens, and workers with a projection.

They build on tests/conftest.py (Temporal dev server, settings) and tests/fixtures_postgres.py
(a migrated database per test).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client

from api.app import create_app
from api.auth import AuthSettings, issue_token
from videoq.settings import Settings
from worker import running_workers

# 64 characters, so that PyJWT does not warn about short keys even for the HS512 test token.
JWT_SECRET = "test-jwt-secret-" + "0123456789abcdef" * 3
BASE_URL = "http://videoq.test"


def bearer(user_id: str, *, admin: bool = False) -> dict[str, str]:
    """Authorization header with a fresh token for ``user_id``."""
    return {"Authorization": f"Bearer {issue_token(JWT_SECRET, user_id, admin=admin)}"}


@pytest.fixture
def auth_settings() -> AuthSettings:
    return AuthSettings(jwt_secret=JWT_SECRET)


@pytest.fixture
def api_settings(make_settings, projection_db_url: str) -> Callable[..., Settings]:
    """Build settings like ``make_settings``, with this test's projection database."""

    def make(**overrides) -> Settings:
        return make_settings(**{"database_url": projection_db_url, **overrides})

    return make


@pytest.fixture
async def api_client_for(
    auth_settings: AuthSettings, projection_db_url: str
) -> AsyncIterator[Callable[[Settings], Awaitable[httpx.AsyncClient]]]:
    """Start the app for given settings and return an HTTP client that calls it in-process.

    The app's lifespan runs as under uvicorn, and stops when the test ends. Depending on
    ``projection_db_url`` makes the app stop before the test's database is dropped.
    """
    async with contextlib.AsyncExitStack() as stack:

        async def start(settings: Settings) -> httpx.AsyncClient:
            app = create_app(settings, auth_settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)
            return await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url=BASE_URL)
            )

        yield start


@pytest.fixture
async def projection_worker_for(
    client: Client, projection_pool: AsyncConnectionPool
) -> AsyncIterator[Callable[[Settings], Awaitable[None]]]:
    """Start this process's workers for given settings, writing this test's projection."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(settings: Settings) -> None:
            await stack.enter_async_context(running_workers(client, settings, projection_pool))

        yield start
