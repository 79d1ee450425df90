"""The render activity: runs the job's renderer and reports the attempt to its workflow."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.process import run_process_group
from activities.renderers import EXIT_INVALID_INPUT, RenderCommand, build_render_command
from videoq import errors
from videoq.jobs import Job
from videoq.settings import Settings
from videoq.slots import RenderSlots

# Renderers heartbeat this often at most; a third of the heartbeat timeout when that is shorter.
HEARTBEAT_EVERY_SECONDS = 5.0
DEADLINE_BACKSTOP_SECONDS = 5.0


class RenderInput(BaseModel):
    job: Job


class RenderResult(BaseModel):
    output: str
    attempt: int
    duration_seconds: float
    worker: str


class RenderStarted(BaseModel):
    """Signal sent by the render activity when an attempt starts."""

    attempt: int
    worker: str
    started_at: datetime


class RenderAttemptFailed(BaseModel):
    """Signal sent by the render activity when an attempt fails with an error it can report."""

    attempt: int
    error: str


# Signal names the activity sends to VideoJobWorkflow; the workflow declares handlers under them.
RENDER_STARTED_SIGNAL = "render_started"
RENDER_ATTEMPT_FAILED_SIGNAL = "render_attempt_failed"


def final_video_path(output_dir: Path, job_id: str) -> Path:
    return output_dir / f"{job_id}.mp4"


class RenderActivities:
    """Activities that need the worker's settings and a Temporal client."""

    def __init__(
        self, client: Client, settings: Settings, slots: RenderSlots | None = None
    ) -> None:
        self._client = client
        self._settings = settings
        # Notified when a renderer exits, so that its slot serves the next poll at once.
        self._slots = slots
        self._worker = f"{socket.gethostname()}:{os.getpid()}"

    @activity.defn(name="render_video")
    async def render_video(self, input: RenderInput) -> RenderResult:
        """Render one attempt of a job into the output folder.

        Raises:
            ApplicationError: type ``InvalidContent`` (non-retryable) when the renderer rejects
                the input, type ``RenderFailed`` for any other failure.
        """
        job, info = input.job, activity.info()
        started = time.monotonic()
        output_dir = self._settings.output_dir.resolve()
        work_dir = output_dir / ".partial" / f"{job.id}-attempt{info.attempt}"
        shutil.rmtree(work_dir, ignore_errors=True)
        work_dir.mkdir(parents=True)
        activity.logger.info(
            "render started: job %s attempt %d on %s",
            job.id,
            info.attempt,
            self._worker,
            extra={"action": "render_started", "job_id": job.id},
        )
        # The report goes out while the renderer starts: the signal costs a round trip to the
        # server, and a job that has its slot should not wait for it.
        reported = asyncio.create_task(
            self._notify(
                RENDER_STARTED_SIGNAL,
                RenderStarted(
                    attempt=info.attempt, worker=self._worker, started_at=datetime.now(UTC)
                ),
            )
        )
        try:
            produced = await self._run_renderer(job, info.attempt, work_dir)
            final = final_video_path(output_dir, job.id)
            # Same file system, so the video appears whole or not at all.
            os.replace(produced, final)
        except ApplicationError as err:
            activity.logger.warning(
                "render failed: job %s attempt %d after %.1f s: %s",
                job.id,
                info.attempt,
                time.monotonic() - started,
                err.message,
                extra={"action": "render_failed", "job_id": job.id},
            )
            await reported  # the workflow gets "started" before "failed"
            await self._notify(
                RENDER_ATTEMPT_FAILED_SIGNAL,
                RenderAttemptFailed(attempt=info.attempt, error=err.message),
            )
            raise
        except BaseException:
            reported.cancel()  # cancelled: the report no longer matters
            raise
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
        await reported

        duration = time.monotonic() - started
        activity.logger.info(
            "render finished: job %s attempt %d in %.1f s, video %s",
            job.id,
            info.attempt,
            duration,
            final,
            extra={"action": "render_finished", "job_id": job.id},
        )
        return RenderResult(
            output=str(final), attempt=info.attempt, duration_seconds=duration, worker=self._worker
        )

    async def _run_renderer(self, job: Job, attempt: int, work_dir: Path) -> Path:
        """Run the renderer in ``work_dir`` and return the video it wrote there."""
        input_path = work_dir / "job.json"
        input_path.write_text(job.model_dump_json(), encoding="utf-8")
        try:
            command = build_render_command(self._settings, job, attempt, input_path, work_dir)
        except FileNotFoundError as err:
            raise ApplicationError(str(err), type=errors.RENDER_FAILED) from err

        info = activity.info()
        loop_deadline = None
        if info.start_to_close_timeout is not None:
            # The server fails the attempt at its start-to-close timeout, and the next heartbeat
            # then cancels this activity. The local deadline, a little later, is a backstop that
            # keeps a hung renderer from outliving its attempt if that cancellation never comes.
            loop = asyncio.get_running_loop()
            elapsed = (datetime.now(UTC) - info.started_time).total_seconds()
            remaining = info.start_to_close_timeout.total_seconds() - elapsed
            loop_deadline = loop.time() + remaining + DEADLINE_BACKSTOP_SECONDS

        heartbeat_every = HEARTBEAT_EVERY_SECONDS
        if info.heartbeat_timeout is not None:
            heartbeat_every = min(heartbeat_every, info.heartbeat_timeout.total_seconds() / 3)

        try:
            outcome = await run_process_group(
                command.argv,
                env=command.env,
                cwd=work_dir,
                log_path=work_dir / "renderer.log",
                heartbeat=lambda: activity.heartbeat(attempt),
                heartbeat_every=heartbeat_every,
                deadline=loop_deadline,
            )
        except FileNotFoundError as err:
            raise ApplicationError(
                f"job {job.id}: renderer {command.name} could not start: {err}",
                type=errors.RENDER_FAILED,
            ) from err
        except TimeoutError as err:
            raise ApplicationError(
                f"job {job.id}: renderer {command.name} timed out after "
                f"{info.start_to_close_timeout} and was killed",
                type=errors.RENDER_FAILED,
            ) from err
        if self._slots is not None:
            self._slots.render_ended(job.engine)

        if outcome.exit_code == EXIT_INVALID_INPUT:
            raise ApplicationError(
                f"job {job.id}: renderer {command.name} rejected the content (exit code 3): "
                f"{_last_line(outcome.stderr_tail)}",
                type=errors.INVALID_CONTENT,
                non_retryable=True,
            )
        if outcome.exit_code != 0:
            raise ApplicationError(
                f"job {job.id}: renderer {command.name} exited with code {outcome.exit_code}: "
                f"{_last_line(outcome.stderr_tail)}",
                type=errors.RENDER_FAILED,
            )
        return _find_output(job, command, work_dir)

    async def _notify(self, signal: str, message: BaseModel) -> None:
        """Send a progress signal to the job's workflow; a failure only costs the live state."""
        job_id = activity.info().workflow_id
        try:
            await self._client.get_workflow_handle(job_id).signal(signal, message)
        except Exception as err:  # noqa: BLE001 - the render goes on without the report
            activity.logger.warning(
                "could not send %s to job %s: %s",
                signal,
                job_id,
                err,
                extra={"action": "signal_failed", "job_id": job_id},
            )


def _find_output(job: Job, command: RenderCommand, work_dir: Path) -> Path:
    if command.produces is not None:
        candidates = [command.produces] if command.produces.is_file() else []
    else:
        candidates = [
            path
            for path in work_dir.rglob(f"{job.id}.mp4")
            if "partial_movie_files" not in path.parts
        ]
    candidates = [path for path in candidates if path.stat().st_size > 0]
    if not candidates:
        expected = command.produces or work_dir / "**" / f"{job.id}.mp4"
        raise ApplicationError(
            f"job {job.id}: renderer {command.name} exited 0 but wrote no video at {expected}",
            type=errors.RENDER_FAILED,
        )
    return candidates[0]


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][-300:] if lines else "no output"
