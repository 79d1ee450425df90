"""PostgreSQL fixtures: one embedded server per session, a fresh migrated database per test."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from videoq.db import migrate, open_pool
from videoq.embedded_postgres import EmbeddedPostgres

TEMPLATE_DATABASE = "videoq_template"


def database_url(server_url: str, dbname: str) -> str:
    """Return the connection string of another database on the same server."""
    return make_conninfo(server_url, dbname=dbname)


async def create_database(server_url: str, dbname: str, template: str) -> None:
    async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as conn:
        await conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(dbname), sql.Identifier(template)
            )
        )


async def drop_database(server_url: str, dbname: str) -> None:
    async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as conn:
        await conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[EmbeddedPostgres]:
    """An embedded PostgreSQL server for the whole session, with its data in a temporary folder."""
    # Not tmp_path_factory: as root the server runs as another user, which cannot enter
    # pytest's base folder (mode 0700), so the data goes to a world-enterable folder in /tmp.
    data_dir = Path(tempfile.mkdtemp(prefix="videoq-pg-"))
    data_dir.chmod(0o755)
    server = EmbeddedPostgres(data_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
async def postgres_template(postgres_server: EmbeddedPostgres) -> str:
    """Name of a database migrated once per session, from which each test's database is cloned."""
    await create_database(postgres_server.url, TEMPLATE_DATABASE, template="template0")
    await migrate(database_url(postgres_server.url, TEMPLATE_DATABASE))
    return TEMPLATE_DATABASE


@pytest.fixture
async def projection_db_url(
    postgres_server: EmbeddedPostgres, postgres_template: str
) -> AsyncIterator[str]:
    """Connection string of a migrated database that only this test uses."""
    dbname = f"test_{uuid.uuid4().hex[:16]}"
    await create_database(postgres_server.url, dbname, template=postgres_template)
    try:
        yield database_url(postgres_server.url, dbname)
    finally:
        await drop_database(postgres_server.url, dbname)


@pytest.fixture
async def empty_db_url(postgres_server: EmbeddedPostgres) -> AsyncIterator[str]:
    """Connection string of a database without any migration, that only this test uses."""
    dbname = f"test_empty_{uuid.uuid4().hex[:16]}"
    await create_database(postgres_server.url, dbname, template="template0")
    try:
        yield database_url(postgres_server.url, dbname)
    finally:
        await drop_database(postgres_server.url, dbname)


@pytest.fixture
async def projection_pool(projection_db_url: str) -> AsyncIterator[AsyncConnectionPool]:
    """An open pool on this test's migrated database."""
    pool = await open_pool(projection_db_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()
