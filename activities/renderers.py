"""Renderer selection: the argv each renderer runs and where its video appears."""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from videoq.jobs import Engine, Job
from videoq.settings import Settings

MANIM_SCENE_FILE = Path(__file__).with_name("manim_scene.py")
MANIM_SCENE_CLASS = "ExplainerScene"

# Exit code by which a renderer reports that the job's input is bad, so the failure is not retried.
EXIT_INVALID_INPUT = 3


@dataclass(frozen=True)
class RenderCommand:
    """One renderer process: its argv, extra environment and the file it writes."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    # The file the process writes; None means "search work_dir for the only .mp4 written".
    produces: Path | None = None


def renderer_name(settings: Settings, engine: Engine) -> str:
    if engine is Engine.MANIM:
        return settings.manim_renderer
    return settings.standard_renderer


def build_render_command(
    settings: Settings, job: Job, attempt: int, input_path: Path, work_dir: Path
) -> RenderCommand:
    """Build the process that renders ``job`` into ``work_dir``."""
    name = renderer_name(settings, job.engine)
    output = work_dir / f"{job.id}.mp4"

    if name == "command":
        values = {
            "job_id": job.id,
            "job_type": job.job_type.value,
            "engine": job.engine.value,
            "priority": job.priority.value,
            "attempt": str(attempt),
            "input": str(input_path),
            "output": str(output),
        }
        return RenderCommand(
            name, fill_command_template(settings.render_command, values), {}, output
        )

    if name == "slides":
        argv = [sys.executable, "-m", "activities.slides", str(input_path), str(output)]
        return RenderCommand(name, argv, {}, output)

    manim = shutil.which("manim", path=str(Path(sys.executable).parent)) or shutil.which("manim")
    if manim is None:
        raise FileNotFoundError("the manim command is not installed; run `make install`")
    argv = [
        manim,
        "render",
        "--quality",
        settings.manim_quality,
        "--media_dir",
        str(work_dir / "media"),
        "--output_file",
        job.id,
        "--disable_caching",
        "--progress_bar",
        "none",
        str(MANIM_SCENE_FILE),
        MANIM_SCENE_CLASS,
    ]
    return RenderCommand(name, argv, {"VIDEOQ_JOB_INPUT": str(input_path)}, None)


def fill_command_template(template: str, values: dict[str, str]) -> list[str]:
    """Split ``template`` like a shell and substitute ``{name}`` placeholders in each argument.

    Substitution happens after splitting, so a value with spaces or quotes stays one argument
    and is never interpreted by a shell.
    """
    argv = []
    for arg in shlex.split(template):
        for key, value in values.items():
            arg = arg.replace("{" + key + "}", value)
        argv.append(arg)
    return argv
