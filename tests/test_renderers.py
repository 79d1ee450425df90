"""Real renders through the workflow: Manim, slides and the operator's command renderer."""

from __future__ import annotations

import json

import av
import pytest

from activities.renderers import fill_command_template
from tests.conftest import fake_render_command
from tests.helpers import job_request, read_record
from videoq.jobs import Engine, JobType
from videoq.settings import Settings
from videoq.temporal import new_job, start_job


def _probe(path) -> tuple[int, float]:
    """Decode every frame of an MP4 and return the frame count and the duration in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        duration = float(container.duration / av.time_base) if container.duration else 0.0
    return frames, duration


@pytest.mark.parametrize("engine", [Engine.MANIM, Engine.STANDARD], ids=["manim", "slides"])
async def test_renderer_writes_decodable_mp4(client, make_settings, worker_for, engine):
    settings = make_settings()
    await worker_for(settings)
    job = new_job(job_request(engine=engine))

    result = await (await start_job(client, settings, job)).result()

    assert result.output == str((settings.output_dir / f"{job.id}.mp4").resolve())
    frames, duration = _probe(result.output)
    assert frames > 10
    assert duration > 1.0
    # Attempt folders and partial files are gone once the video is in place.
    assert list((settings.output_dir / ".partial").iterdir()) == []


async def test_command_renderer_receives_every_placeholder(
    client, make_settings, worker_for, tmp_path
):
    record = tmp_path / "record.jsonl"
    settings = make_settings(
        manim_renderer="command", render_command=fake_render_command(record, "ok", 0.2)
    )
    await worker_for(settings)
    job = new_job(job_request(job_type=JobType.TOPIC_SHORT, engine=Engine.MANIM))

    result = await (await start_job(client, settings, job)).result()

    start, finish = read_record(record)
    assert start["job_id"] == job.id
    assert start["input_id"] == job.id  # {input} held the job as JSON
    assert start["job_type"] == "topic_short"
    assert start["engine"] == "manim"
    assert start["priority"] == "medium"
    assert start["attempt"] == 1
    assert "/.partial/" in start["output"]
    assert finish["event"] == "finish"
    final = settings.output_dir.resolve() / f"{job.id}.mp4"
    assert result.output == str(final)
    assert final.read_bytes().startswith(b"\x00\x00\x00\x18ftyp")


def test_fill_command_template_keeps_values_whole():
    argv = fill_command_template(
        "render --title '{job_id} x' --out {output}",
        {"job_id": "a b; rm -rf /", "output": "/tmp/o.mp4"},
    )
    assert argv == ["render", "--title", "a b; rm -rf / x", "--out", "/tmp/o.mp4"]


def test_settings_reject_unknown_placeholder():
    with pytest.raises(ValueError, match=r"unknown placeholder \{user\}"):
        Settings(standard_renderer="command", render_command="render {user} {output}")


def test_settings_reject_command_renderer_without_command():
    with pytest.raises(ValueError, match="VIDEOQ_RENDER_COMMAND is empty"):
        Settings(manim_renderer="command", render_command="")


def test_slides_renderer_rejects_invalid_input(tmp_path):
    from activities import slides

    bad = tmp_path / "job.json"
    bad.write_text(json.dumps({"content": {"title": "", "text": "x"}}))
    assert slides.main([str(bad), str(tmp_path / "out.mp4")]) == 3
    assert slides.main([str(tmp_path / "missing.json"), str(tmp_path / "out.mp4")]) == 3
