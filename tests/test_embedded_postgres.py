"""Embedded PostgreSQL started by root from folders its service user cannot enter."""

from __future__ import annotations

import os
import pwd
import shutil
import stat

import psycopg
import pytest

from videoq.embedded_postgres import EmbeddedPostgres, _copy_programs, _user_can_enter

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root hands PostgreSQL to nobody")
NOBODY = pwd.getpwnam("nobody")


def test_embedded_postgres_private_data_dir_moves(tmp_path):
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    assert not _user_can_enter(NOBODY, private)

    with EmbeddedPostgres(private / "data") as server:
        with psycopg.connect(server.url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        moved_to = server.pgdata.parent
        assert moved_to != private / "data"
        assert _user_can_enter(NOBODY, moved_to)
    shutil.rmtree(moved_to)


def test_embedded_postgres_programs_copied_once(tmp_path):
    install = tmp_path / "private" / "pginstall"
    (install / "bin").mkdir(parents=True)
    (install / "bin" / "postgres").write_text("#!/bin/sh\n")
    (install / "bin" / "postgres").chmod(0o755)
    tmp_path.joinpath("private").chmod(0o700)

    first = _copy_programs(install)
    second = _copy_programs(install)

    assert first == second
    assert (first / "bin" / "postgres").is_file()
    assert _user_can_enter(NOBODY, first / "bin")
    assert stat.S_IMODE(first.stat().st_mode) == 0o755
    shutil.rmtree(first.parent)
