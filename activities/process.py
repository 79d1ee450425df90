"""Running one renderer process group under heartbeats, a deadline and cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

# How long a renderer gets after SIGTERM before its process group is killed.
TERMINATE_GRACE_SECONDS = 5.0
STDERR_TAIL_CHARS = 2000
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


@dataclass(frozen=True)
class ProcessOutcome:
    exit_code: int
    stderr_tail: str


async def run_process_group(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    log_path: Path,
    heartbeat: Callable[[], None],
    heartbeat_every: float,
    deadline: float | None,
    on_started: Callable[[int], Awaitable[None]] | None = None,
) -> ProcessOutcome:
    """Run ``argv`` in a new session and wait for it, heartbeating every ``heartbeat_every`` s.

    The process and everything it spawns share one process group. On cancellation of the caller,
    or when the event-loop time ``deadline`` passes, the whole group gets SIGTERM, then SIGKILL
    after a grace period, and the cancellation (or ``TimeoutError``) propagates.
    """
    with open(log_path, "ab") as log:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env={**os.environ, **env},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    if on_started is not None:
        await on_started(process.pid)

    loop = asyncio.get_running_loop()
    try:
        while True:
            heartbeat()
            wait_for = heartbeat_every
            if deadline is not None:
                wait_for = min(wait_for, deadline - loop.time())
                if wait_for <= 0:
                    raise TimeoutError(f"renderer still running at its deadline: {argv[0]}")
            try:
                exit_code = await asyncio.wait_for(asyncio.shield(process.wait()), wait_for)
                break
            except TimeoutError:
                continue
    except BaseException:
        await _stop_group(process)
        raise
    return ProcessOutcome(exit_code, _tail(log_path))


async def _stop_group(process: asyncio.subprocess.Process) -> None:
    """Terminate the renderer's whole process group, killing it if it ignores SIGTERM."""
    if process.returncode is not None:
        _signal_group(process.pid, signal.SIGKILL)  # reap any children left behind
        return
    _signal_group(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(process.wait()), TERMINATE_GRACE_SECONDS)
    except TimeoutError:
        pass
    _signal_group(process.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(process.wait()), TERMINATE_GRACE_SECONDS)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _die_with_parent() -> None:
    """Have the kernel kill the renderer if the worker dies, so that no attempt of a job
    renders on after its worker is gone while the retry runs elsewhere.

    NOTE: Linux only, and it reaches the renderer process itself, not processes it spawns.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(0, size - STDERR_TAIL_CHARS))
            return file.read().decode("utf-8", errors="replace").strip()
    except OSError:
        return ""
