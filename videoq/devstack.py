"""The embedded stack of ``videoq dev``: a Temporal dev server and a worker as child processes."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from videoq.binaries import dev_server_config_args, sqlite_pragma_args, temporal_cli
from videoq.db import describe_target
from videoq.embedded_postgres import EmbeddedPostgres, EmbeddedPostgresError

logger = logging.getLogger("videoq.devstack")

STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0


class StackError(RuntimeError):
    """The embedded stack could not start; the message names the setting to change."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, what: str, log: Path | None) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            where = log or "its output above"
            raise StackError(
                f"{what} exited with code {process.returncode} while starting; see {where}"
            )
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise StackError(f"{what} did not listen on port {port} within {STARTUP_TIMEOUT_SECONDS} s")


@dataclass
class DevStack:
    """Child processes that this process owns; ``stop`` ends them in reverse start order."""

    data_dir: Path
    temporal_port: int = 7233
    ui_port: int = 8233
    temporal_address: str | None = None
    database_url: str | None = None
    api_port: int = 8000
    fairness: bool = False
    children: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    postgres: EmbeddedPostgres | None = None

    @property
    def address(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def ui_url(self) -> str | None:
        return None if self.temporal_address else f"http://127.0.0.1:{self.ui_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def child_env(self) -> dict[str, str]:
        env = {**os.environ, "VIDEOQ_TEMPORAL_ADDRESS": self.address}
        if self.database_url:
            env["VIDEOQ_DATABASE_URL"] = self.database_url
        if self.ui_url:
            env["VIDEOQ_TEMPORAL_UI_URL"] = self.ui_url
        return env

    def start_postgres(self) -> None:
        """Start the embedded PostgreSQL unless a database URL was given."""
        if self.database_url:
            logger.info("using PostgreSQL at %s", describe_target(self.database_url))
            return
        self.postgres = EmbeddedPostgres(self.data_dir / "postgres")
        try:
            self.database_url = self.postgres.start()
        except EmbeddedPostgresError as err:
            raise StackError(f"embedded PostgreSQL did not start: {err}") from err

    def start_api(self, log: Path | None = None, env: dict[str, str] | None = None) -> None:
        if not port_is_free(self.api_port):
            raise StackError(
                f"port {self.api_port} is already in use; choose another with --api-port"
            )
        argv = [sys.executable, "-m", "videoq.cli", "api", "--port", str(self.api_port)]
        process = self._spawn("api", argv, log, env)
        wait_for_port(self.api_port, process, "the API", log)

    def start_temporal(self) -> None:
        if self.temporal_address:
            logger.info("using Temporal at %s", self.temporal_address, extra={"action": "stack"})
            return
        for port, flag in ((self.temporal_port, "--temporal-port"), (self.ui_port, "--ui-port")):
            if not port_is_free(port):
                raise StackError(f"port {port} is already in use; choose another with {flag}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            temporal_cli(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.temporal_port),
            "--ui-port",
            str(self.ui_port),
            "--db-filename",
            str(self.data_dir / "temporal.sqlite"),
            *sqlite_pragma_args(),
            "--log-level",
            "warn",
            *dev_server_config_args(fairness=self.fairness),
        ]
        log = self.data_dir / "temporal.log"
        process = self._spawn("temporal", argv, log)
        wait_for_port(self.temporal_port, process, "the Temporal dev server", log)
        logger.info(
            "Temporal dev server on %s, Web UI %s",
            self.address,
            self.ui_url,
            extra={"action": "stack_temporal_started"},
        )

    def start_worker(self, log: Path | None = None, env: dict[str, str] | None = None) -> None:
        """Start a worker process; it logs to ``log``, or to this terminal when None."""
        self._spawn("worker", [sys.executable, "-m", "worker"], log, env)

    def _spawn(
        self, name: str, argv: list[str], log: Path | None, env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        output = open(log, "ab") if log else None  # noqa: SIM115 - closed by the child's exit
        process = subprocess.Popen(
            argv,
            env={**self.child_env(), **(env or {})},
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            # Own process group: Ctrl-C in the terminal reaches only this process, which then
            # stops the children in order.
            start_new_session=True,
        )
        self.children.append((name, process))
        return process

    def check_children(self) -> None:
        for name, process in self.children:
            if process.poll() is not None:
                raise StackError(f"{name} exited unexpectedly with code {process.returncode}")

    def stop(self) -> None:
        for name, process in reversed(self.children):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    logger.warning("%s did not stop in time; killing it", name)
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        self.children.clear()
        # PostgreSQL stops after the worker, which writes the projection until it exits.
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None
