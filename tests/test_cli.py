"""The videoq command: one-line errors for bad input, and the demo end to end."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import av
import pytest

from tests.conftest import REPO
from videoq.embedded_postgres import CLUSTER_LOCATION_FILE

VIDEOQ = [sys.executable, "-m", "videoq.cli"]


def run_videoq(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 30):
    return subprocess.run(
        [*VIDEOQ, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--title", "t"], "videoq: missing --text (or pass --file JOB.json)\n"),
        (
            ["--title", "t" * 121, "--text", "x", "--token", "x"],
            "content.title: String should have at most 120 characters",
        ),
        (
            ["--file", "missing.json"],
            "videoq: cannot read missing.json: No such file or directory\n",
        ),
        (["--file", "bad.json"], "videoq: bad.json is not valid JSON"),
        (
            ["--file", "job.json"],
            "content.steps: Value error, step 0 must have 1 to 200 characters",
        ),
        (
            ["--title", "t", "--text", "x"],
            "videoq: missing API token: pass --token or set VIDEOQ_API_TOKEN",
        ),
    ],
    ids=["no-text", "long-title", "missing-file", "bad-json", "blank-step", "no-token"],
)
def test_cli_submit_rejects_bad_input(tmp_path, args, message):
    (tmp_path / "bad.json").write_text("{not json")
    job = {
        "job_type": "doubt",
        "engine": "manim",
        "content": {"title": "t", "text": "x", "steps": [""]},
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}

    result = run_videoq("submit", *args, cwd=tmp_path, env=env)

    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture
def moved_clusters_removed(tmp_path):
    """Remove, after the test, any PostgreSQL cluster moved out of ``tmp_path`` to /tmp."""
    yield
    for location in tmp_path.rglob(CLUSTER_LOCATION_FILE):
        moved = Path(location.read_text(encoding="utf-8").strip())
        if moved.name.startswith("videoq-postgres-data-"):
            shutil.rmtree(moved, ignore_errors=True)


def test_cli_demo_renders_every_job(tmp_path, moved_clusters_removed):
    result = run_videoq("demo", cwd=tmp_path, timeout=240)

    assert result.returncode == 0, result.stdout + result.stderr
    videos = sorted((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 6
    for video in videos:
        with av.open(str(video)) as container:
            assert container.streams.video[0].frames > 0 or any(container.decode(video=0))
    assert "6 jobs in" in result.stdout
    # The third daily_ca waited while the later doubts and topic_short started before it. The
    # worker's log has every start in order; the printed phases may skip a short render.
    lines = result.stdout.splitlines()
    submitted = [line.split()[1].rstrip(":") for line in lines if line.startswith("submitted ")]
    third_daily, topic_short, doubt, manim_doubt = submitted[2:]
    worker_log = (tmp_path / ".videoq" / "demo" / "worker.log").read_text(encoding="utf-8")
    started = re.findall(r"render started: job (job-[0-9a-f]+)", worker_log)
    assert sorted(started) == sorted(submitted)
    for overtaking in (topic_short, doubt, manim_doubt):
        assert started.index(overtaking) < started.index(third_daily), overtaking
