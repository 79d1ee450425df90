"""The renderer's process group: the parent-death signal, a missing program, the deadline."""

from __future__ import annotations

import asyncio
import shutil
import sys

import pytest

from activities import process
from activities.process import run_process_group

# Prints the renderer's parent-death signal, as prctl(PR_GET_PDEATHSIG) reports it.
PRINT_PDEATHSIG = (
    "import ctypes; value = ctypes.c_int(); "
    "ctypes.CDLL(None).prctl(2, ctypes.byref(value)); print(value.value)"
)


async def _run(argv, tmp_path, deadline=None):
    return await run_process_group(
        argv,
        env={},
        cwd=tmp_path,
        log_path=tmp_path / "renderer.log",
        heartbeat=lambda: None,
        heartbeat_every=0.2,
        deadline=deadline,
    )


@pytest.mark.parametrize("launcher", ["setpriv", "python"])
async def test_renderer_dies_with_worker(tmp_path, monkeypatch, launcher):
    if launcher == "setpriv" and shutil.which("setpriv") is None:
        pytest.skip("util-linux setpriv is not installed")
    if launcher == "python":
        real_which = shutil.which
        monkeypatch.setattr(
            process.shutil,
            "which",
            lambda name, **kwargs: None if name == "setpriv" else real_which(name, **kwargs),
        )
    outcome = await _run([sys.executable, "-c", PRINT_PDEATHSIG], tmp_path)
    assert outcome.exit_code == 0
    assert outcome.stderr_tail == "9"  # SIGKILL


async def test_missing_program_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such-renderer"):
        await _run(["no-such-renderer", "--flag"], tmp_path)
    with pytest.raises(FileNotFoundError):
        await _run(["./missing.sh"], tmp_path)


async def test_relative_program_runs_in_cwd(tmp_path):
    script = tmp_path / "render.sh"
    script.write_text("#!/bin/sh\necho rendered $1\n")
    script.chmod(0o755)
    outcome = await _run(["./render.sh", "clip"], tmp_path)
    assert (outcome.exit_code, outcome.stderr_tail) == (0, "rendered clip")


async def test_deadline_kills_the_group(tmp_path):
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await _run(["sleep", "30"], tmp_path, deadline=loop.time() + 0.5)
    assert loop.time() - started < 10
