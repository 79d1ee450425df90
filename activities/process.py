"""Running one renderer process group under heartbeats, a deadline and cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

# How long a renderer gets after SIGTERM before its process group is killed.
TERMINATE_GRACE_SECONDS = 5.0
STDERR_TAIL_CHARS = 2000
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

# Fallback for machines without util-linux's setpriv: a Python that sets the parent-death signal
# and then becomes the renderer.
_PDEATHSIG_SHIM = (
    "import ctypes, os, sys; "
    f"ctypes.CDLL(None, use_errno=True).prctl({PR_SET_PDEATHSIG}, 9); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)


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
    full_env = {**os.environ, **env}
    program = _find_program(argv[0], cwd, full_env.get("PATH", os.defpath))
    with open(log_path, "ab") as log:
        process = await asyncio.create_subprocess_exec(
            *_dying_with_parent([program, *argv[1:]]),
            cwd=cwd,
            env=full_env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
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


def _find_program(name: str, cwd: Path, search_path: str) -> str:
    """Return the path of the program ``name``, found as ``execvp`` would find it.

    Raises ``FileNotFoundError`` when it is missing. Without this check the launcher in front of
    the renderer would report a missing program only as an exit code.
    """
    if os.sep in name:
        path = cwd / name
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    else:
        found = shutil.which(name, path=search_path)
        if found is not None:
            return found
    raise FileNotFoundError(errno.ENOENT, "renderer program not found", name)


def _dying_with_parent(argv: list[str]) -> list[str]:
    """Prefix ``argv`` so that the kernel kills the renderer if the worker dies, and no attempt
    of a job renders on after its worker is gone while the retry runs elsewhere.

    A program exec'd first sets the signal, not a ``preexec_fn``. The worker has threads, the
    Temporal core's among them, and Python code run between fork and exec can deadlock on a lock
    that one of them held. ``Popen`` then blocks the worker's event loop until the child dies.

    NOTE: Linux only, and it reaches the renderer process itself, not processes it spawns.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        return [setpriv, "--pdeathsig", "KILL", "--", *argv]
    return [sys.executable, "-I", "-S", "-c", _PDEATHSIG_SHIM, *argv]


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(0, size - STDERR_TAIL_CHARS))
            return file.read().decode("utf-8", errors="replace").strip()
    except OSError:
        return ""
