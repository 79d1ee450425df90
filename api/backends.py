"""The API's connections to Temporal and PostgreSQL, opened at start and retried while down.

Once open, both stay open: the Temporal client and the psycopg pool reconnect on their own, and
a call made while the server is down fails with RPCError or ProjectionUnavailable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Generic, TypeVar

import psycopg
from fastapi import Depends, Request
from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client
from temporalio.service import RPCError

from api.errors import TemporalUnavailable
from api.estimates import RenderWorkerCounter
from videoq.db import ProjectionUnavailable, describe_target, open_pool
from videoq.settings import Settings
from videoq.temporal import connect

logger = logging.getLogger("videoq.api")

# While a backend is down, requests get a 503 response at once. Only the first request after
# this many seconds tries to connect again.
RECONNECT_INTERVAL_SECONDS = 5.0
TEMPORAL_CONNECT_TIMEOUT_SECONDS = 5.0
# Bounds the pool's first connection at start and on each retry, and every later wait for a
# free connection.
DATABASE_TIMEOUT_SECONDS = 2.0
DATABASE_POOL_SIZE = 10
HEALTH_TIMEOUT = timedelta(seconds=2)

T = TypeVar("T")


class _Connection(Generic[T]):
    """One backend connection: opened on demand, at most once per reconnect interval."""

    def __init__(self, name: str, open_connection: Callable[[], Awaitable[T]]) -> None:
        self.name = name
        self._open = open_connection
        self._value: T | None = None
        self._failed_at: float | None = None
        self._error: TemporalUnavailable | ProjectionUnavailable | None = None
        self._lock = asyncio.Lock()

    @property
    def value(self) -> T | None:
        return self._value

    async def get(self) -> T:
        """Return the open connection, opening it first if it is not open and may be retried.

        Raises:
            TemporalUnavailable, ProjectionUnavailable: the error of the last failed attempt,
                while the backend is down.
        """
        if self._value is not None:
            return self._value
        async with self._lock:
            if self._value is not None:
                return self._value
            retry_at = (self._failed_at or 0.0) + RECONNECT_INTERVAL_SECONDS
            if self._error is not None and time.monotonic() < retry_at:
                raise self._error
            try:
                self._value = await self._open()
            except (TemporalUnavailable, ProjectionUnavailable) as err:
                first_failure = self._error is None
                self._failed_at, self._error = time.monotonic(), err
                # Warn at the first failure only, so that a long outage logs one line per
                # recovery, not one per request.
                log = logger.warning if first_failure else logger.debug
                log(
                    "cannot connect to %s, retrying in %.0f s: %s",
                    self.name,
                    RECONNECT_INTERVAL_SECONDS,
                    err,
                    extra={"action": f"{self.name}_unavailable"},
                )
                raise
            if self._error is not None:
                logger.info("%s connected again", self.name, extra={"action": "backend_connected"})
            self._failed_at, self._error = None, None
            return self._value


class Backends:
    """The Temporal client and the PostgreSQL pool of one app instance, with its settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.render_workers = RenderWorkerCounter(settings)
        self._temporal = _Connection("temporal", self._connect_temporal)
        self._database = _Connection("database", self._open_database)

    async def start(self) -> None:
        """Try both connections once; a backend that is down is retried by later requests."""
        results = await asyncio.gather(
            self._temporal.get(), self._database.get(), return_exceptions=True
        )
        down = [
            connection.name
            for connection, result in zip((self._temporal, self._database), results, strict=True)
            if isinstance(result, BaseException)
        ]
        if down:
            logger.warning(
                "API started without %s; requests that need it get 503 until it is back",
                " and ".join(down),
                extra={"action": "api_started_degraded"},
            )

    async def close(self) -> None:
        pool = self._database.value
        if pool is not None:
            await pool.close()

    async def temporal(self) -> Client:
        """Return the Temporal client.

        Raises:
            TemporalUnavailable: the server could not be reached at the last attempt.
        """
        return await self._temporal.get()

    async def database(self) -> AsyncConnectionPool:
        """Return the projection pool.

        Raises:
            ProjectionUnavailable: the database could not be reached at the last attempt, or
                VIDEOQ_DATABASE_URL is not set.
        """
        return await self._database.get()

    async def check_temporal(self) -> bool:
        try:
            client = await self.temporal()
            return await client.service_client.check_health(timeout=HEALTH_TIMEOUT)
        except (TemporalUnavailable, RPCError) as err:
            logger.debug("health check: %s", err, extra={"action": "temporal_unavailable"})
            return False

    async def check_database(self) -> bool:
        try:
            pool = await self.database()
            async with pool.connection(timeout=HEALTH_TIMEOUT.total_seconds()) as conn:
                await conn.execute("SELECT 1")
        except (ProjectionUnavailable, psycopg.Error) as err:
            logger.debug("health check: %s", err, extra={"action": "database_unavailable"})
            return False
        return True

    async def _connect_temporal(self) -> Client:
        try:
            return await asyncio.wait_for(
                connect(self.settings), timeout=TEMPORAL_CONNECT_TIMEOUT_SECONDS
            )
        except (RuntimeError, TimeoutError) as err:
            # Client.connect raises RuntimeError ("Failed client connect: ...") when the server
            # refuses the connection.
            raise TemporalUnavailable(
                f"Temporal at {self.settings.effective_temporal_address} is unavailable: {err}"
            ) from err

    async def _open_database(self) -> AsyncConnectionPool:
        url = self.settings.database_url
        if not url:
            raise ProjectionUnavailable("VIDEOQ_DATABASE_URL is not set")
        pool = await open_pool(url, max_size=DATABASE_POOL_SIZE, timeout=DATABASE_TIMEOUT_SECONDS)
        logger.info(
            "projection database %s connected",
            describe_target(url),
            extra={"action": "database_connected"},
        )
        return pool


def get_backends(request: Request) -> Backends:
    return request.app.state.backends


BackendsDependency = Annotated[Backends, Depends(get_backends)]
