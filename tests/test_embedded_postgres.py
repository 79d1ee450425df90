"""Embedded PostgreSQL started by root from folders its service user cannot enter."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess

import psycopg
import pytest

from tests.conftest import REPO
from videoq.embedded_postgres import (
    CLUSTER_LOCATION_FILE,
    EmbeddedPostgres,
    _copy_programs,
    _user_can_enter,
    postgres_bin_dir,
)

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
    # `make clean` finds the moved cluster through this file.
    location = (private / "data" / CLUSTER_LOCATION_FILE).read_text(encoding="utf-8")
    assert location.strip() == str(moved_to)
    shutil.rmtree(moved_to)


def test_make_clean_removes_moved_cluster(tmp_path):
    project = tmp_path / "project"
    data = project / ".videoq" / "postgres"
    data.mkdir(parents=True)
    moved = tmp_path / "videoq-postgres-data-0123456789ab"
    (moved / "pgdata").mkdir(parents=True)
    (data / CLUSTER_LOCATION_FILE).write_text(f"{moved}\n", encoding="utf-8")
    unrelated = tmp_path / "keep-me"
    unrelated.mkdir()
    (project / ".videoq" / "demo").mkdir()
    (project / ".videoq" / "demo" / CLUSTER_LOCATION_FILE).write_text(f"{unrelated}\n")

    subprocess.run(
        ["make", "-f", str(REPO / "Makefile"), "clean", "VENV=.venv-none"],
        cwd=project,
        check=True,
        capture_output=True,
    )

    assert not moved.exists()
    assert not (project / ".videoq").exists()
    # Only folders named like a moved cluster are removed.
    assert unrelated.exists()


def test_embedded_postgres_programs_copied_once(tmp_path):
    site = tmp_path / "private" / "site-packages"
    install = site / "embedded_postgres" / "pginstall"
    (install / "bin").mkdir(parents=True)
    (install / "bin" / "postgres").write_text("#!/bin/sh\n")
    (install / "bin" / "postgres").chmod(0o755)
    (site / "embedded_postgres.libs").mkdir()
    (site / "embedded_postgres.libs" / "libpq-test.so").write_text("")
    tmp_path.joinpath("private").chmod(0o700)

    first = _copy_programs(install)
    second = _copy_programs(install)

    root = first.parent.parent
    assert first == second
    assert first == root / "embedded_postgres" / "pginstall"
    assert (first / "bin" / "postgres").is_file()
    # The programs find libpq at $ORIGIN/../../../embedded_postgres.libs.
    assert (
        first / "bin" / ".." / ".." / ".." / "embedded_postgres.libs" / "libpq-test.so"
    ).is_file()
    assert _user_can_enter(NOBODY, first / "bin")
    assert stat.S_IMODE(first.stat().st_mode) == 0o755
    assert [path.name for path in root.iterdir() if path.name.startswith("staging")] == []
    shutil.rmtree(root)


def test_embedded_postgres_copied_programs_run_as_nobody():
    copy = _copy_programs(postgres_bin_dir().parent)

    result = subprocess.run(
        ["su", "-s", "/bin/sh", NOBODY.pw_name, "-c", f"{copy / 'bin' / 'initdb'} --version"],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 0, result.stderr
    assert "PostgreSQL" in result.stdout
