"""Connections to the projection database: schema migrations, the pool and error translation."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool

logger = logging.getLogger(__name__)

MIGRATION_FILE_NAME = re.compile(r"^(?P<number>\d{4})_[a-z0-9_]+\.sql$")
# Key of the session-level advisory lock that serialises migration runs. The value is "videoq"
# in ASCII. No other code in this project takes advisory locks.
MIGRATION_LOCK_KEY = 0x766964656F71
CONNECT_TIMEOUT_SECONDS = 10
POOL_TIMEOUT_SECONDS = 5.0

CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
SELECT_APPLIED_MIGRATIONS = "SELECT version FROM schema_migrations"
INSERT_APPLIED_MIGRATION = "INSERT INTO schema_migrations (version) VALUES (%s)"
LOCK_MIGRATIONS = "SELECT pg_advisory_lock(%s)"


class ProjectionUnavailable(Exception):
    """The projection database cannot be reached, or lost the connection during a query."""


class MigrationError(Exception):
    """A migration file is misnamed, or two files share a number."""


@dataclass(frozen=True)
class Migration:
    """One SQL file of the schema, whose ``version`` is its file name without ``.sql``."""

    version: str
    sql: str


@contextmanager
def unavailable_on_connection_error(conninfo: str) -> Iterator[None]:
    """Re-raise psycopg's OperationalError, which includes pool timeouts, as ProjectionUnavailable.

    This is the one place where database errors become ProjectionUnavailable. The message names
    the host, port and database, never the password.
    """
    try:
        yield
    except psycopg.OperationalError as err:
        raise ProjectionUnavailable(
            f"projection database {describe_target(conninfo)} is unavailable: {err}"
        ) from err


def describe_target(conninfo: str) -> str:
    """Return ``host:port/dbname`` of a connection string, with libpq's defaults where unset."""
    params = conninfo_to_dict(conninfo)
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port") or "5432"
    return f"{host}:{port}/{params.get('dbname') or params.get('user') or ''}"


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """Read the migration files of ``directory`` (default: the package's), ordered by number.

    Raises:
        MigrationError: a ``.sql`` file is not named ``NNNN_name.sql``, or two share a number.
    """
    folder = directory if directory is not None else files("videoq") / "migrations"
    by_number: dict[str, Migration] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = MIGRATION_FILE_NAME.match(entry.name)
        if match is None:
            raise MigrationError(
                f"migration file {entry.name!r} must be named NNNN_name.sql, with four digits "
                "and a lowercase name"
            )
        number = match["number"]
        if number in by_number:
            raise MigrationError(
                f"migration files {by_number[number].version}.sql and {entry.name} share the "
                f"number {number}. Renumber one of them."
            )
        version = entry.name.removesuffix(".sql")
        by_number[number] = Migration(version=version, sql=entry.read_text())
    return [by_number[number] for number in sorted(by_number)]


async def migrate(conninfo: str, *, directory: Path | None = None) -> list[str]:
    """Apply the migrations that the database has not recorded yet and return their versions.

    Each file runs in its own transaction together with its row in ``schema_migrations``, so a
    failing file leaves no trace and the error propagates. Because of that transaction, a file
    cannot contain statements that refuse to run in one, such as CREATE INDEX CONCURRENTLY.
    Concurrent runs wait for each other on an advisory lock, and the later run applies nothing.

    Raises:
        ProjectionUnavailable: the database cannot be reached.
        MigrationError: the migration files are misnamed.
        psycopg.Error: a migration failed.
    """
    migrations = load_migrations(directory)
    applied_now: list[str] = []
    with unavailable_on_connection_error(conninfo):
        # Closing the connection releases the advisory lock, also when a migration fails.
        async with await psycopg.AsyncConnection.connect(
            with_connect_timeout(conninfo), autocommit=True
        ) as conn:
            await conn.execute(LOCK_MIGRATIONS, (MIGRATION_LOCK_KEY,))
            await conn.execute(CREATE_MIGRATIONS_TABLE)
            cursor = await conn.execute(SELECT_APPLIED_MIGRATIONS)
            applied = {row[0] for row in await cursor.fetchall()}

            for migration in migrations:
                if migration.version in applied:
                    continue
                # Without parameters psycopg sends the file as one simple query, which may hold
                # several statements.
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(INSERT_APPLIED_MIGRATION, (migration.version,))
                applied_now.append(migration.version)
                logger.info(
                    "migration %s applied to %s",
                    migration.version,
                    describe_target(conninfo),
                    extra={"action": "migration_applied"},
                )
    return applied_now


async def open_pool(
    conninfo: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    timeout: float = POOL_TIMEOUT_SECONDS,
) -> AsyncConnectionPool:
    """Open a pool of autocommit connections and wait until ``min_size`` of them are connected.

    ``timeout`` (seconds) bounds both that wait and each later wait for a free connection.
    Connections are checked before each loan, so a server restart costs one round trip, not a
    failed query. Close the pool with ``await pool.close()``.

    Raises:
        ProjectionUnavailable: the connections could not be opened within ``timeout``.
    """
    pool = AsyncConnectionPool(
        with_connect_timeout(conninfo),
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        kwargs={"autocommit": True},
        check=AsyncConnectionPool.check_connection,
        open=False,
        name="videoq-projection",
    )
    try:
        with unavailable_on_connection_error(conninfo):
            await pool.open(wait=True, timeout=timeout)
    except ProjectionUnavailable:
        await pool.close()
        raise
    return pool


@asynccontextmanager
async def connection(pool: AsyncConnectionPool) -> AsyncIterator[psycopg.AsyncConnection]:
    """Lend a connection of the pool, and raise ProjectionUnavailable for connection failures
    inside the block."""
    with unavailable_on_connection_error(pool.conninfo):
        async with pool.connection() as conn:
            yield conn


def with_connect_timeout(conninfo: str) -> str:
    """Add ``connect_timeout`` to a connection string that sets none, so that an unreachable
    host fails within CONNECT_TIMEOUT_SECONDS instead of the operating system's TCP timeout."""
    if "connect_timeout" in conninfo_to_dict(conninfo):
        return conninfo
    return make_conninfo(conninfo, connect_timeout=CONNECT_TIMEOUT_SECONDS)
